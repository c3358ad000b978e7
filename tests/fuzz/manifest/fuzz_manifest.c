/*
 * tests/fuzz/manifest/fuzz_manifest.c: libFuzzer harness for the manifest
 * parser. Each input is written to a memfd and loaded through the real
 * ioloop__manifest_load (the file is read by path, as a start reads it).
 * Beyond "no crash, no leak", it checks the contract of every outcome:
 *   - a refusal is one line, starting with the file name, the manifest
 *     zeroed; a syntax error reads "<file>:<line>:<column>: syntax error";
 *     any other "<file>:<line>:<column>: " (a value located by
 *     host/runtime/json_path.c) points inside the input;
 *   - an accepted manifest holds only what validation promises: names of
 *     1 to 64 bytes of [A-Za-z0-9_.-], durations of at least 1 ms; each
 *     server with a name, addresses, limits in range and routes of
 *     exactly one path or prefix starting with '/' to an instance.
 * A broken contract aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "manifest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int memfd = -1;

static void check_refusal(const struct ioloop_manifest *m, const char *err,
                          const uint8_t *data, size_t size);
static void check_accepted(const struct ioloop_manifest *m);
static void check_server(const struct ioloop_manifest *m,
                         const struct ioloop_http_server_spec *s);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    memfd = memfd_create("manifest.json", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ioloop_manifest m;
    char err[1024];

    if (ftruncate(memfd, 0) < 0
        || (size > 0 && pwrite(memfd, data, size, 0) != (ssize_t) size)) {
        abort();
    }
    if (ioloop__manifest_load(path, &m, err, sizeof(err)) == 0) {
        if (err[0] != '\0') {
            abort();
        }
        check_accepted(&m);
    } else {
        check_refusal(&m, err, data, size);
    }
    ioloop__manifest_free(&m);
    return 0;
}

/* One line, naming the file; a syntax error also names line and column,
 * and so does a refused value, one inside the input. */
static void
check_refusal(const struct ioloop_manifest *m, const char *err,
              const uint8_t *data, size_t size)
{
    static const struct ioloop_manifest zero;
    size_t plen = strlen(path), at = 0, width;
    int line, column, used = 0;

    if (memcmp(m, &zero, sizeof(zero)) != 0 || strncmp(err, path, plen) != 0
        || err[plen] != ':') {
        abort();
    }
    for (const char *c = err; *c != '\0'; c++) {
        if ((unsigned char) *c < 0x20 || *c == 0x7f) {
            abort();
        }
    }
    /* "<file>:" then a digit is a place; the rest must follow. */
    if (err[plen + 1] < '0' || err[plen + 1] > '9') {
        return;
    }
    if (sscanf(err + plen, ":%d:%d: %n", &line, &column, &used) != 2
        || used == 0 || line < 1 || column < 0) {
        abort();
    }
    if (strncmp(err + plen + used, "syntax error: ", 14) == 0) {
        return;
    }
    /* A located value: its line exists and its column is within it
     * (columns count characters, at most the line's bytes). */
    for (int l = 1; l < line; l++) {
        while (at < size && data[at] != '\n') {
            at++;
        }
        if (at == size) {
            abort();
        }
        at++;
    }
    for (width = 0; at + width < size && data[at + width] != '\n'; width++) {
    }
    if (column < 1 || (size_t) column > width) {
        abort();
    }
}

/* What validation promises about an accepted manifest. */
static void
check_accepted(const struct ioloop_manifest *m)
{
    if (m->shutdown_timeout < IOLOOP_NS_PER_MS || m->nbackends == 0
        || m->watchdog_ms < 0 || m->workers < 0) {
        abort();
    }
    for (size_t i = 0; i < m->nplugins; i++) {
        const char *n = m->plugins[i].name;
        size_t len = strlen(n);

        if (len < 1 || len > 64
            || strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_.-") != len
            || m->plugins[i].path == NULL || m->plugins[i].path[0] == '\0') {
            abort();
        }
    }
    if ((m->nservers == 0) != (m->servers == NULL)) {
        abort();
    }
    for (size_t i = 0; i < m->nservers; i++) {
        check_server(m, &m->servers[i]);
    }
}

/* One server of an accepted manifest. */
static void
check_server(const struct ioloop_manifest *m,
             const struct ioloop_http_server_spec *s)
{
    const struct ioloop_http_limits *l = &s->limits;
    size_t len = strlen(s->name);

    if (len < 1 || len > 64
        || strspn(s->name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len
        || s->nlisten == 0 || s->nroutes == 0 || s->where == NULL
        || l->max_header_size < 1024 || l->max_header_size > 80 * 1024
        || l->max_connections < 1 || l->max_pipeline < 1
        || l->max_body_size < 1 || l->header_timeout < IOLOOP_NS_PER_MS
        || l->body_timeout < IOLOOP_NS_PER_MS
        || l->send_timeout < IOLOOP_NS_PER_MS
        || l->keepalive_timeout < IOLOOP_NS_PER_MS
        || (s->tls_cert == NULL) != (s->tls_key == NULL)) {
        abort();
    }
    for (size_t r = 0; r < s->nroutes; r++) {
        const struct ioloop_http_route_spec *rt = &s->routes[r];
        const char *p = rt->path != NULL ? rt->path : rt->prefix;
        size_t i;

        if ((rt->path == NULL) == (rt->prefix == NULL) || p[0] != '/'
            || strpbrk(p, "?# ") != NULL
            || (rt->methods != NULL && rt->methods[0] == '\0')) {
            abort();
        }
        for (i = 0; i < m->nplugins; i++) {
            if (strcmp(m->plugins[i].name, rt->plugin) == 0) {
                break;
            }
        }
        if (i == m->nplugins) {
            abort();
        }
    }
}
