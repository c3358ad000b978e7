/*
 * tests/unit/test_http_access_log.c: host/runtime/http_access_log.c on
 * real files in a mkdtemp() folder: both formats line for line, hostile
 * strings escaped (each line parsed back), buffering then flush, reopen
 * after a logrotate-style rename, failures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http_access_log.h"
#include "log.h"

static char g_dir[64];
static char g_path[128];

/* 2026-12-05T19:00:00Z */
static time_t
when(void)
{
    struct tm tm = {.tm_year = 126, .tm_mon = 11, .tm_mday = 5,
                    .tm_hour = 19};

    return timegm(&tm);
}

static struct ioloop_http_access
curl_get(void)
{
    struct ioloop_http_access rec = {
        .remote_ip = "127.0.0.1", .method = "GET", .target = "/",
        .version_minor = 1, .status = 200, .body_bytes = 5,
        .duration_us = 42, .when = when(), .referer = NULL,
        .user_agent = "curl/8.0", .server = "web"
    };

    return rec;
}

/* The file's whole text (NUL-terminated, malloc'd); "" when absent. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1 << 20);
    size_t n = 0;

    assert_non_null(text);
    if (f != NULL) {
        n = fread(text, 1, (1 << 20) - 1, f);
        fclose(f);
    }
    if (len != NULL) {
        *len = n;
    }
    return text;
}

static off_t
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}

static struct ioloop_http_access_log *
open_ok(const char *path, enum ioloop_http_log_format format)
{
    char err[256] = "";
    struct ioloop_http_access_log *log;

    log = ioloop__http_access_log_open(path, format, err, sizeof(err));
    if (log == NULL) {
        fail_msg("%s", err);
    }
    return log;
}

/* Writes rec alone to a fresh log in format and returns its text. */
static char *
one_line(enum ioloop_http_log_format format,
         const struct ioloop_http_access *rec)
{
    struct ioloop_http_access_log *log;

    unlink(g_path);
    log = open_ok(g_path, format);
    ioloop__http_access_log_write(log, rec);
    ioloop__http_access_log_close(log);
    return slurp(g_path, NULL);
}

/* Parses one JSON line (exactly one, newline-terminated) as an object. */
static json_t *
parse_line(const char *text)
{
    json_error_t jerr;
    size_t len = strlen(text);
    json_t *o;

    assert_true(len > 0 && text[len - 1] == '\n');
    assert_ptr_equal(strchr(text, '\n'), text + len - 1);
    o = json_loadb(text, len - 1, 0, &jerr);
    if (o == NULL) {
        fail_msg("not JSON (%s): %s", jerr.text, text);
    }
    assert_true(json_is_object(o));
    return o;
}

static int
setup(void **state)
{
    (void) state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/ioloop-alog-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof(g_path), "%s/access.log", g_dir);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_common_format(void **state)
{
    struct ioloop_http_access rec = curl_get();
    char *text;

    (void) state;
    text = one_line(IOLOOP_HTTP_LOG_COMMON, &rec);
    assert_string_equal(text, "127.0.0.1 - - [05/Dec/2026:19:00:00 +0000] "
                              "\"GET / HTTP/1.1\" 200 5 \"-\" "
                              "\"curl/8.0\"\n");
    free(text);

    /* Nothing parsed (a 400 before the request line): "-" everywhere. */
    memset(&rec, 0, sizeof(rec));
    rec.status = 400;
    rec.when = when() + 3600 * 24 * 30;
    text = one_line(IOLOOP_HTTP_LOG_COMMON, &rec);
    assert_string_equal(text, "- - - [04/Jan/2027:19:00:00 +0000] \"-\" "
                              "400 0 \"-\" \"-\"\n");
    free(text);
}

static void
test_json_format(void **state)
{
    struct ioloop_http_access rec = curl_get();
    char *text;
    json_t *o;

    (void) state;
    rec.referer = "http://example.com/";
    rec.version_minor = 0;
    text = one_line(IOLOOP_HTTP_LOG_JSON, &rec);
    assert_string_equal(text, "{\"time\":\"2026-12-05T19:00:00Z\","
                              "\"remote_ip\":\"127.0.0.1\",\"method\":\"GET\","
                              "\"target\":\"/\",\"version\":\"1.0\","
                              "\"status\":200,\"bytes\":5,"
                              "\"duration_us\":42,"
                              "\"referer\":\"http://example.com/\","
                              "\"user_agent\":\"curl/8.0\","
                              "\"server\":\"web\"}\n");
    o = parse_line(text);
    assert_int_equal(json_object_size(o), 11);
    json_decref(o);
    free(text);

    /* Found by fuzz_access_log: numbers past INT64_MAX are clamped, or
     * jansson refuses the line. */
    memset(&rec, 0, sizeof(rec));
    rec.status = 408;
    rec.body_bytes = UINT64_MAX;
    rec.duration_us = (uint64_t) INT64_MAX + 1;
    text = one_line(IOLOOP_HTTP_LOG_JSON, &rec);
    o = parse_line(text);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")),
                     INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(o, "duration_us")),
                     INT64_MAX);
    assert_true(json_is_null(json_object_get(o, "method")));
    assert_true(json_is_null(json_object_get(o, "server")));
    assert_string_equal(json_string_value(json_object_get(o, "time")),
                        "1970-01-01T00:00:00Z");
    json_decref(o);
    free(text);
}

/* What a hostile client sends cannot add a line, end a field early or
 * make a JSON line invalid. */
static void
test_hostile_strings(void **state)
{
    struct ioloop_http_access rec = curl_get();
    char *text;
    json_t *o;

    (void) state;
    rec.target = "/a\"b\\c\r\n1.2.3.4 - - [x] \"GET /admin\x1b[31m\x7f";
    rec.user_agent = "caf\xc3\xa9 \xff\xc3(\xed\xa0\x80";
    rec.referer = "\"";
    rec.remote_ip = "1 2";
    text = one_line(IOLOOP_HTTP_LOG_COMMON, &rec);
    assert_string_equal(text,
                        "1\\x202 - - [05/Dec/2026:19:00:00 +0000] \"GET "
                        "/a\\x22b\\x5cc\\x0d\\x0a1.2.3.4 - - [x] "
                        "\\x22GET /admin\\x1b[31m\\x7f HTTP/1.1\" 200 5 "
                        "\"\\x22\" \"caf\\xc3\\xa9 \\xff\\xc3(\\xed\\xa0"
                        "\\x80\"\n");
    free(text);

    text = one_line(IOLOOP_HTTP_LOG_JSON, &rec);
    o = parse_line(text);
    assert_string_equal(json_string_value(json_object_get(o, "target")),
                        rec.target);
    /* Valid UTF-8 kept; each invalid byte (a stray 0xff, a truncated
     * sequence, an encoded surrogate) is U+FFFD. */
    assert_string_equal(json_string_value(json_object_get(o, "user_agent")),
                        "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd"
                        "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(o);
    free(text);
}

/* A string is cut after 4096 bytes of output, with "...". */
static void
test_long_strings_cut(void **state)
{
    struct ioloop_http_access rec = curl_get();
    char *target = malloc(100001);
    char *text;
    json_t *o;
    const char *got;

    (void) state;
    memset(target, '"', 100000);
    target[0] = '/';
    target[100000] = '\0';
    rec.target = target;
    text = one_line(IOLOOP_HTTP_LOG_COMMON, &rec);
    assert_true(strlen(text) < 4096 + 200);
    assert_non_null(strstr(text, "\\x22... HTTP/1.1\" 200"));
    free(text);

    text = one_line(IOLOOP_HTTP_LOG_JSON, &rec);
    o = parse_line(text);
    got = json_string_value(json_object_get(o, "target"));
    assert_int_equal(strlen(got), 1 + 2047 + 3);
    assert_string_equal(got + 2048, "...");
    json_decref(o);
    free(text);

    /* Plain bytes: 4096 of them, then "...". */
    memset(target + 1, 'a', 99999);
    text = one_line(IOLOOP_HTTP_LOG_COMMON, &rec);
    assert_non_null(strstr(text, "\"GET /aaa"));
    assert_int_equal(strstr(text, "... HTTP/1.1\"") - strstr(text, "/aaa"),
                     4096);
    free(text);
    text = one_line(IOLOOP_HTTP_LOG_JSON, &rec);
    o = parse_line(text);
    got = json_string_value(json_object_get(o, "target"));
    assert_int_equal(strlen(got), 4096 + 3);
    json_decref(o);
    free(text);
    free(target);
}

/* Lines wait in the buffer until a flush, or until the buffer is full:
 * then whole lines are written, none cut. */
static void
test_buffering_then_flush(void **state)
{
    struct ioloop_http_access rec = curl_get();
    struct ioloop_http_access_log *log;
    char *text, *line;
    size_t len, lines = 0, n;

    (void) state;
    unlink(g_path);
    log = open_ok(g_path, IOLOOP_HTTP_LOG_COMMON);
    ioloop__http_access_log_write(log, &rec);
    assert_int_equal(file_size(g_path), 0);
    ioloop__http_access_log_flush(log);
    text = slurp(g_path, &len);
    assert_int_equal(len, strlen("127.0.0.1 - - [05/Dec/2026:19:00:00 "
                                 "+0000] \"GET / HTTP/1.1\" 200 5 \"-\" "
                                 "\"curl/8.0\"\n"));
    free(text);

    /* 2,000 lines of about 80 bytes: more than the 64 KiB buffer. */
    for (n = 0; n < 2000 && file_size(g_path) == (off_t) len; n++) {
        ioloop__http_access_log_write(log, &rec);
    }
    assert_true(n < 2000);
    assert_true(file_size(g_path) > 32 * 1024);
    text = slurp(g_path, &len);
    assert_int_equal(text[len - 1], '\n');
    for (line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
        assert_memory_equal(line, "127.0.0.1 - - [", 15);
        lines++;
    }
    free(text);
    ioloop__http_access_log_close(log);
    text = slurp(g_path, &len);
    for (line = text, lines = 0; *line != '\0';
         line = strchr(line, '\n') + 1) {
        lines++;
    }
    assert_int_equal(lines, n + 1);
    free(text);
}

/* logrotate renames the file, then SIGHUP reopens: what was buffered
 * goes to the renamed file, what follows to a new one. */
static void
test_reopen_after_rename(void **state)
{
    struct ioloop_http_access rec = curl_get();
    struct ioloop_http_access_log *log;
    char rotated[160], err[256] = "";
    char *text;

    (void) state;
    snprintf(rotated, sizeof(rotated), "%s.1", g_path);
    unlink(g_path);
    log = open_ok(g_path, IOLOOP_HTTP_LOG_JSON);
    rec.target = "/one";
    ioloop__http_access_log_write(log, &rec);
    ioloop__http_access_log_flush(log);
    assert_int_equal(rename(g_path, rotated), 0);
    rec.target = "/two";
    ioloop__http_access_log_write(log, &rec);
    assert_int_equal(ioloop__http_access_log_reopen(log, err, sizeof(err)),
                     0);
    rec.target = "/three";
    ioloop__http_access_log_write(log, &rec);
    ioloop__http_access_log_close(log);

    text = slurp(rotated, NULL);
    assert_non_null(strstr(text, "\"/one\""));
    assert_non_null(strstr(text, "\"/two\""));
    assert_null(strstr(text, "\"/three\""));
    free(text);
    text = slurp(g_path, NULL);
    assert_null(strstr(text, "\"/two\""));
    json_decref(parse_line(text));
    assert_non_null(strstr(text, "\"/three\""));
    free(text);
}

/* A reopen that fails keeps the old file and says why. */
static void
test_reopen_fails_keeps_old(void **state)
{
    struct ioloop_http_access rec = curl_get();
    struct ioloop_http_access_log *log;
    char sub[128], path[160], moved[160], err[256] = "", want[320];
    char *text;

    (void) state;
    snprintf(sub, sizeof(sub), "%s/logs", g_dir);
    snprintf(path, sizeof(path), "%s/a.log", sub);
    snprintf(moved, sizeof(moved), "%s/kept.log", g_dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    log = open_ok(path, IOLOOP_HTTP_LOG_COMMON);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(ioloop__http_access_log_reopen(log, err, sizeof(err)),
                     -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    ioloop__http_access_log_write(log, &rec);
    ioloop__http_access_log_close(log);
    text = slurp(moved, NULL);
    assert_non_null(strstr(text, "\"GET / HTTP/1.1\""));
    free(text);
}

static void
test_open_fails(void **state)
{
    char path[160], err[256] = "", want[320];

    (void) state;
    snprintf(path, sizeof(path), "%s/none/a.log", g_dir);
    errno = 0;
    assert_null(ioloop__http_access_log_open(path, IOLOOP_HTTP_LOG_COMMON,
                                             err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
}

/* The file is opened O_APPEND and O_CLOEXEC (found in /proc/self/fd). */
static void
test_fd_flags(void **state)
{
    struct ioloop_http_access_log *log;
    char link[64], target[PATH_MAX];
    int found = -1;

    (void) state;
    log = open_ok(g_path, IOLOOP_HTTP_LOG_COMMON);
    for (int fd = 3; fd < 1024 && found < 0; fd++) {
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, g_path) == 0) {
                found = fd;
            }
        }
    }
    assert_true(found >= 0);
    assert_true(fcntl(found, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(found, F_GETFL) & O_APPEND);
    ioloop__http_access_log_close(log);
    assert_int_equal(fcntl(found, F_GETFD), -1);
}

/* "-" is stderr, never closed. */
static void
test_stderr(void **state)
{
    struct ioloop_http_access rec = curl_get();
    struct ioloop_http_access_log *log;
    char err[256] = "", got[512];
    int saved = dup(STDERR_FILENO), p[2];
    ssize_t n;

    (void) state;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    log = open_ok("-", IOLOOP_HTTP_LOG_COMMON);
    ioloop__http_access_log_write(log, &rec);
    assert_int_equal(ioloop__http_access_log_reopen(log, err, sizeof(err)),
                     0);
    ioloop__http_access_log_close(log);
    assert_int_equal(write(STDERR_FILENO, "x", 1), 1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    n = read(p[0], got, sizeof(got) - 1);
    close(p[0]);
    assert_true(n > 0);
    got[n] = '\0';
    assert_string_equal(got, "127.0.0.1 - - [05/Dec/2026:19:00:00 +0000] "
                             "\"GET / HTTP/1.1\" 200 5 \"-\" \"curl/8.0\"\n"
                             "x");
}

static int g_warnings;

static void
count_warnings(const char *line, size_t len, void *arg)
{
    (void) arg;
    (void) len;
    if (strstr(line, "access log /dev/full: write: No space left on device")
        != NULL) {
        g_warnings++;
    }
}

/* A full disk drops what is buffered, with one warning per run of
 * failures; the loop never waits for it. */
static void
test_write_failure_warns_once(void **state)
{
    struct ioloop_http_access rec = curl_get();
    struct ioloop_http_access_log *log;

    (void) state;
    ioloop__log_set_sink(count_warnings, NULL);
    log = open_ok("/dev/full", IOLOOP_HTTP_LOG_COMMON);
    for (int i = 0; i < 3; i++) {
        ioloop__http_access_log_write(log, &rec);
        ioloop__http_access_log_flush(log);
    }
    ioloop__http_access_log_close(log);
    ioloop__log_set_sink(NULL, NULL);
    assert_int_equal(g_warnings, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_format),
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_long_strings_cut),
        cmocka_unit_test(test_buffering_then_flush),
        cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_reopen_fails_keeps_old),
        cmocka_unit_test(test_open_fails),
        cmocka_unit_test(test_fd_flags),
        cmocka_unit_test(test_stderr),
        cmocka_unit_test(test_write_failure_warns_once),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
