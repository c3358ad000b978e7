/*
 * tests/fuzz/access_log/fuzz_access_log.c: libFuzzer harness for the
 * access log (host/runtime/http_access_log.c). The input is cut at NUL
 * bytes into the strings of one request (remote_ip, method, target,
 * referer, user_agent, server; the ones past the last NUL are NULL), its
 * first bytes also give the status and sizes. The request is logged twice
 * in each format, to a memfd opened by path as a start opens a log file,
 * and what was written is read back:
 *   - exactly two lines, each ending in '\n';
 *   - common: only printable ASCII, exactly six '"' (a client's quote is
 *     escaped, so it cannot end a field), starting "<ip> - - [";
 *   - JSON: each line is an object jansson accepts (valid UTF-8, no stray
 *     control byte) with the 11 keys, and a string that was valid UTF-8
 *     without control bytes and not cut reads back as given.
 * A broken property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "http_access_log.h"

#define FIELDS 6
/* A string escapes to at most 6 bytes a byte, and the log cuts it after
 * 4096: shorter ones are compared whole. */
#define FIELD_KEEP 600

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int memfd = -1;
static char out[1 << 20];

static size_t log_twice(enum ioloop_http_log_format format,
                        const struct ioloop_http_access *rec);
static void check_common(const char *line, size_t len);
static void check_json(const char *line, size_t len,
                       const char *const *fields);
static int plain_utf8(const char *s);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    memfd = memfd_create("access.log", MFD_CLOEXEC);
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
    const char *fields[FIELDS] = {NULL};
    struct ioloop_http_access rec;
    char *copy = malloc(size + 1);
    size_t start = 0, nf = 0;
    uint64_t seed = 0;

    if (copy == NULL) {
        abort();
    }
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t i = 0; i <= size && nf < FIELDS; i++) {
        if (i == size || copy[i] == '\0') {
            if (i < size) {
                fields[nf++] = copy + start;
            }
            start = i + 1;
        }
    }
    memcpy(&seed, data, size < sizeof(seed) ? size : sizeof(seed));
    memset(&rec, 0, sizeof(rec));
    rec.remote_ip = fields[0];
    rec.method = fields[1];
    rec.target = fields[2];
    rec.referer = fields[3];
    rec.user_agent = fields[4];
    rec.server = fields[5];
    rec.version_minor = (unsigned) (seed & 0xff);
    rec.status = (int) (seed >> 8 & 0xffff) - 1000;
    rec.body_bytes = seed;
    rec.duration_us = ~seed;
    rec.when = (time_t) (int32_t) (seed >> 16);

    for (int format = 0; format < 2; format++) {
        size_t len = log_twice(format == 0 ? IOLOOP_HTTP_LOG_COMMON
                                           : IOLOOP_HTTP_LOG_JSON, &rec);
        const char *nl = memchr(out, '\n', len);

        if (nl == NULL || out[len - 1] != '\n'
            || memchr(nl + 1, '\n', len - (size_t) (nl + 1 - out)) !=
               out + len - 1) {
            abort();
        }
        for (const char *line = out; line < out + len;) {
            size_t n = (size_t) ((const char *) memchr(
                                     line, '\n', (size_t) (out + len - line))
                                 - line);

            if (format == 0) {
                check_common(line, n);
            } else {
                check_json(line, n, fields);
            }
            line += n + 1;
        }
    }
    free(copy);
    return 0;
}

/* Logs rec twice in format to the memfd; returns the bytes written. */
static size_t
log_twice(enum ioloop_http_log_format format,
          const struct ioloop_http_access *rec)
{
    struct ioloop_http_access_log *log;
    char err[256];
    ssize_t n;

    if (ftruncate(memfd, 0) < 0) {
        abort();
    }
    log = ioloop__http_access_log_open(path, format, err, sizeof(err));
    if (log == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    ioloop__http_access_log_write(log, rec);
    ioloop__http_access_log_write(log, rec);
    ioloop__http_access_log_close(log);
    n = pread(memfd, out, sizeof(out), 0);
    if (n <= 0 || (size_t) n == sizeof(out)) {
        abort();
    }
    return (size_t) n;
}

static void
check_common(const char *line, size_t len)
{
    size_t quotes = 0;
    const char *sp = memchr(line, ' ', len);

    for (size_t i = 0; i < len; i++) {
        if (line[i] < 0x20 || line[i] > 0x7e) {
            abort();
        }
        quotes += line[i] == '"';
    }
    if (quotes != 6 || sp == NULL || sp == line
        || strncmp(sp, " - - [", 6) != 0) {
        abort();
    }
}

/* fields[0..2] (remote_ip, method, target) are compared; the others
 * only parsed. */
static void
check_json(const char *line, size_t len, const char *const *fields)
{
    static const char *const keys[] = {"remote_ip", "method", "target"};
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);

    if (o == NULL || !json_is_object(o) || json_object_size(o) != 11) {
        fprintf(stderr, "%s: %.*s\n", o == NULL ? jerr.text : "keys",
                (int) len, line);
        abort();
    }
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get(o, keys[i]);

        if (fields[i] == NULL ? !json_is_null(v) : !json_is_string(v)) {
            abort();
        }
        if (fields[i] != NULL && strlen(fields[i]) < FIELD_KEEP
            && plain_utf8(fields[i])
            && strcmp(json_string_value(v), fields[i]) != 0) {
            abort();
        }
    }
    json_decref(o);
}

/* Valid UTF-8 (as jansson reads it), so it must come back unchanged. */
static int
plain_utf8(const char *s)
{
    json_t *j = json_string(s);

    json_decref(j);
    return j != NULL;
}
