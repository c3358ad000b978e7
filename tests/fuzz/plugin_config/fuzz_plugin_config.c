/*
 * tests/fuzz/plugin_config/fuzz_plugin_config.c: libFuzzer harness for the
 * bundled plugins' config validation, through exactly what --check runs:
 * a manifest naming one plugin with the fuzzed config is loaded by
 * ioloop__setup_load (the config validated and filled from the plugin's
 * schema, a refusal located in the manifest's text), then
 * ioloop__setup_check runs the plugin's real init and fini against the
 * real API table, the listen helpers in check mode.
 *
 * Input: one byte that picks the plugin ('e' echo, 'h' hello_http,
 * 's' status, any other byte by its value mod 3), then the config as JSON
 * text. Checked beyond "no crash, no leak": every refusal is one line
 * naming the manifest, and a located one points inside it (the manifest
 * is one line); nothing is left behind (no handler on the loop, no fd
 * open). The harness stays offline: a listen host that is not a
 * numeric IPv4 address (getaddrinfo would ask DNS) becomes 127.0.0.1.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "loader.h"
#include "log.h"
#include "loop.h"
#include "setup.h"

#define BACKENDS IOLOOP_BUILD_DIR "/backends"
#define PLUGINS IOLOOP_BUILD_DIR "/plugins"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const plugins[] = {
    PLUGINS "/echo.so", PLUGINS "/hello_http.so", PLUGINS "/status.so",
};

static char path[64];
static int memfd = -1;
static struct ioloop_backend_lib backend;
static ioloop_loop_t *loop;

static void keep_offline(json_t *config);
static void check_one_line(const char *err, size_t text_len);
static int lowest_free_fd(void);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[1024];

    (void) argc;
    (void) argv;
    ioloop__log_configure(IOLOOP_LOG_WARN, 0, NULL, 0);
    memfd = memfd_create("host.json", MFD_CLOEXEC);
    if (memfd < 0
        || ioloop__backend_open(BACKENDS "/epoll.so", &backend, err,
                                sizeof(err)) < 0
        || (loop = ioloop_loop_new(backend.ops, err, sizeof(err))) == NULL) {
        fprintf(stderr, "fuzz_plugin_config: setup: %s\n", err);
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    /* Held for the whole run: each input's dlopen is then a refcount. */
    for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
        if (dlopen(plugins[i], RTLD_NOW | RTLD_LOCAL) == NULL) {
            fprintf(stderr, "fuzz_plugin_config: %s\n", dlerror());
            abort();
        }
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ioloop_setup s;
    json_t *config, *manifest;
    json_error_t jerr;
    char err[2048], *text;
    size_t which, len;
    int fd_before;

    if (size < 1) {
        return 0;
    }
    which = data[0] == 'e' ? 0 : data[0] == 'h' ? 1 : data[0] == 's' ? 2
                                                      : data[0] % 3u;
    config = json_loadb((const char *) data + 1, size - 1,
                        JSON_REJECT_DUPLICATES, &jerr);
    if (config == NULL) {
        return 0; /* the manifest harness covers syntax */
    }
    keep_offline(config);
    manifest = json_pack("{s:s, s:[{s:s, s:s, s:o}]}", "backend_dir",
                         BACKENDS, "plugins", "name", "p", "path",
                         plugins[which], "config", config);
    text = manifest != NULL ? json_dumps(manifest, 0) : NULL;
    json_decref(manifest);
    if (text == NULL || ftruncate(memfd, 0) < 0
        || pwrite(memfd, text, strlen(text), 0) != (ssize_t) strlen(text)) {
        abort();
    }
    len = strlen(text);
    free(text);

    fd_before = lowest_free_fd();
    if (ioloop__setup_load(&s, path, NULL, err, sizeof(err)) < 0) {
        check_one_line(err, len);
        return 0;
    }
    if (ioloop__setup_check(&s, loop, err, sizeof(err)) < 0) {
        check_one_line(err, len);
    }
    ioloop__setup_free(&s);
    if (ioloop__handler_count(loop) != 0 || lowest_free_fd() != fd_before) {
        fprintf(stderr, "fuzz_plugin_config: init/fini left a handler or "
                        "an fd behind\n");
        abort();
    }
    return 0;
}

/* Replaces the host of a string "listen" unless it is numeric (or in
 * brackets, which the parser resolves numerically). */
static void
keep_offline(json_t *config)
{
    json_t *v = json_object_get(config, "listen");
    const char *s, *colon;
    char host[64], *fixed;
    struct in_addr a;
    size_t hlen;

    if (!json_is_string(v)) {
        return;
    }
    s = json_string_value(v);
    colon = strrchr(s, ':');
    if (s[0] == '[' || colon == NULL) {
        return;
    }
    hlen = (size_t) (colon - s);
    if (hlen == 0) {
        return; /* an empty host is refused before any lookup */
    }
    if (hlen < sizeof(host)) {
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &a) == 1) {
            return;
        }
    }
    if (asprintf(&fixed, "127.0.0.1%s", colon) < 0) {
        abort();
    }
    json_object_set_new(config, "listen", json_string(fixed));
    free(fixed);
}

/* A refusal is one line that names the manifest; "PATH:1:COL: " points
 * inside the text_len bytes of the one-line manifest. */
static void
check_one_line(const char *err, size_t text_len)
{
    size_t n = strlen(path);
    unsigned long line, col;
    char *end;

    if (strncmp(err, path, n) != 0 && strncmp(err, "plugins[0]", 10) != 0) {
        fprintf(stderr, "fuzz_plugin_config: unprefixed: %s\n", err);
        abort();
    }
    if (strncmp(err, path, n) == 0 && err[n] == ':' && err[n + 1] != ' ') {
        line = strtoul(err + n + 1, &end, 10);
        col = *end == ':' ? strtoul(end + 1, &end, 10) : 0;
        if (line != 1 || col < 1 || col > text_len || *end != ':') {
            fprintf(stderr, "fuzz_plugin_config: bad place: %s\n", err);
            abort();
        }
    }
    for (const char *c = err; *c != '\0'; c++) {
        if ((unsigned char) *c < 0x20 || *c == 0x7f) {
            fprintf(stderr, "fuzz_plugin_config: not one line: %s\n", err);
            abort();
        }
    }
}

/* The fd the next socket() would get: a leaked fd moves it. */
static int
lowest_free_fd(void)
{
    int fd = dup(0);

    if (fd >= 0) {
        close(fd);
    }
    return fd;
}
