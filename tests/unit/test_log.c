/*
 * tests/unit/test_log.c: the logger (host/core/log.c). stderr is captured into
 * a temp file with dup2; plain lines are checked by shape, JSON lines are
 * parsed back with jansson (a strict parser: it rejects invalid UTF-8 and
 * raw control characters). Also: nasty messages round-trip, long lines
 * stay within PIPE_BUF and valid, lines from concurrent processes never
 * interleave, and per-plugin level overrides, both by tag (IOLOOP_LOG)
 * and by owner (the plugin API's log).
 */
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "fakes/fake_backend.h"
#include "loader.h"
#include "log.h"
#include "loop.h"

#define TS_RE                                                              \
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

/* Concurrent writers: processes, lines each, message size. */
#define WRITERS 4
#define WRITER_LINES 200
#define WRITER_MSG 3000

/* stderr redirected into a temp file. */
struct capture {
    int saved;
    int fd;
};

static void
capture_begin(struct capture *c)
{
    char path[] = "/tmp/ioloop-test-log-XXXXXX";

    c->fd = mkstemp(path);
    assert_true(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr; returns what was written (free it). */
static char *
capture_end(struct capture *c)
{
    off_t size;
    char *text;

    assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
    close(c->saved);
    size = lseek(c->fd, 0, SEEK_END);
    assert_true(size >= 0);
    text = calloc(1, (size_t) size + 1);
    assert_non_null(text);
    assert_int_equal(pread(c->fd, text, (size_t) size, 0), size);
    close(c->fd);
    return text;
}

static void
assert_matches(const char *text, const char *re)
{
    regex_t rx;
    int rc;

    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    rc = regexec(&rx, text, 0, NULL, 0);
    regfree(&rx);
    if (rc != 0) {
        fail_msg("\"%s\" does not match /%s/", text, re);
    }
}

/* Parses one JSON line (with its newline) into an object. */
static json_t *
parse_line(const char *line, size_t len)
{
    json_error_t jerr;
    json_t *obj;

    assert_true(len > 0 && line[len - 1] == '\n');
    obj = json_loadb(line, len, 0, &jerr);
    if (obj == NULL) {
        fail_msg("not JSON (%d:%d %s): %.*s", jerr.line, jerr.column,
                 jerr.text, (int) len, line);
    }
    assert_true(json_is_object(obj));
    return obj;
}

static const char *
field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* Logs one JSON line of msg and returns its parsed "msg" (free it). */
static char *
json_roundtrip(const char *tag, const char *msg, size_t *len)
{
    struct capture c;
    json_t *obj, *m;
    char *text, *out;

    capture_begin(&c);
    ioloop__log(IOLOOP_LOG_ERROR, tag, "%s", msg);
    text = capture_end(&c);
    assert_non_null(strchr(text, '\n'));
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    obj = parse_line(text, strlen(text));
    assert_string_equal(field(obj, "tag"), tag);
    m = json_object_get(obj, "msg");
    assert_true(json_is_string(m));
    *len = json_string_length(m);
    out = malloc(*len + 1);
    assert_non_null(out);
    memcpy(out, json_string_value(m), *len + 1);
    json_decref(obj);
    free(text);
    return out;
}

static int
reset(void **state)
{
    (void) state;
    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_INFO, 0, NULL, 0), 0);
    return 0;
}

static void
test_level_names(void **state)
{
    (void) state;
    assert_int_equal(ioloop__log_level_parse("error"), IOLOOP_LOG_ERROR);
    assert_int_equal(ioloop__log_level_parse("debug"), IOLOOP_LOG_DEBUG);
    assert_int_equal(ioloop__log_level_parse("verbose"), -1);
    assert_string_equal(ioloop__log_level_name(IOLOOP_LOG_WARN), "warn");
    assert_string_equal(ioloop__log_level_name(7), "?");
}

static void
test_plain_format(void **state)
{
    struct capture c;
    struct tm tm = {0};
    char *text;
    time_t now = time(NULL), logged;

    (void) state;
    capture_begin(&c);
    errno = EDOM;
    ioloop__log(IOLOOP_LOG_INFO, "hello", "listening on %s:%d", "127.0.0.1",
                8888);
    assert_int_equal(errno, EDOM);
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, "hello", "dropped");
    ioloop__log(IOLOOP_LOG_DEBUG, "hello", "dropped too");
    IOLOOP_LOG(IOLOOP_LOG_WARN, NULL, "no tag");
    text = capture_end(&c);
    assert_matches(text, "^" TS_RE " info \\[hello\\] listening on "
                         "127\\.0\\.0\\.1:8888\n" TS_RE
                         " warn \\[host\\] no tag\n$");
    assert_non_null(strptime(text, "%Y-%m-%dT%H:%M:%S", &tm));
    logged = timegm(&tm);
    assert_true(logged >= now - 5 && logged <= now + 5);
    free(text);
}

/* A message is one line: control bytes are shown, not obeyed. */
static void
test_plain_escapes(void **state)
{
    struct capture c;
    char *text, *msg;

    (void) state;
    capture_begin(&c);
    ioloop__log(IOLOOP_LOG_ERROR, "x", "a\nb\rc%cd\x7f\te \xff end", 1);
    text = capture_end(&c);
    msg = strstr(text, "[x] ");
    assert_non_null(msg);
    assert_string_equal(msg, "[x] a\\nb\\rc\\x01d\\x7f\te \xff end\n");
    free(text);
}

static void
test_json_format(void **state)
{
    struct capture c;
    json_t *obj;
    char *text;

    (void) state;
    ioloop__log_set_format(1);
    capture_begin(&c);
    ioloop__log(IOLOOP_LOG_WARN, "hello", "listening on %s", "127.0.0.1");
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, "hello", "dropped");
    text = capture_end(&c);
    assert_true(strncmp(text, "{\"ts\":\"", 7) == 0);
    obj = parse_line(text, strlen(text));
    assert_int_equal(json_object_size(obj), 5);
    assert_matches(field(obj, "ts"), "^" TS_RE "$");
    assert_string_equal(field(obj, "level"), "warn");
    assert_true(json_is_integer(json_object_get(obj, "pid")));
    assert_int_equal(json_integer_value(json_object_get(obj, "pid")),
                     getpid());
    assert_string_equal(field(obj, "tag"), "hello");
    assert_string_equal(field(obj, "msg"), "listening on 127.0.0.1");
    json_decref(obj);
    free(text);
}

/* A worker tags every line with its index, in both formats. */
static void
test_worker_tag(void **state)
{
    struct capture c;
    json_t *obj;
    char *text;

    (void) state;
    ioloop__log_set_worker(3);
    capture_begin(&c);
    ioloop__log(IOLOOP_LOG_INFO, "hello", "plain");
    text = capture_end(&c);
    assert_matches(text, "^" TS_RE " w3 info \\[hello\\] plain\n$");
    free(text);
    ioloop__log_set_format(1);
    capture_begin(&c);
    ioloop__log(IOLOOP_LOG_INFO, "hello", "json");
    text = capture_end(&c);
    obj = parse_line(text, strlen(text));
    assert_int_equal(json_object_size(obj), 6);
    assert_int_equal(json_integer_value(json_object_get(obj, "worker")), 3);
    assert_string_equal(field(obj, "msg"), "json");
    json_decref(obj);
    free(text);
    ioloop__log_set_worker(-1);
}

/* What goes in comes back out of a strict parser, bit for bit. */
static void
test_json_escaping_roundtrip(void **state)
{
    static const char *const msgs[] = {
        "quote \" backslash \\ slash / \\\" \"\\",
        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"
        "\x7f",
        "UTF-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 "
        "\xf4\x8f\xbf\xbf \xef\xbf\xbd",
        "{\"msg\":\"injected\"}\n{\"level\":\"error\"",
    };
    char *out;
    size_t len;

    (void) state;
    ioloop__log_set_format(1);
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        out = json_roundtrip("t", msgs[i], &len);
        assert_int_equal(len, strlen(msgs[i]));
        assert_string_equal(out, msgs[i]);
        free(out);
    }
    out = json_roundtrip("we\"ird\n\\tag", "m", &len);
    assert_string_equal(out, "m");
    free(out);
}

/* Bytes that are not UTF-8 become U+FFFD, one per byte. */
static void
test_json_invalid_utf8(void **state)
{
#define FFFD "\xef\xbf\xbd"
    static const char *const cases[][2] = {
        {"a\xff" "b", "a" FFFD "b"},
        {"\x80 lone continuation", FFFD " lone continuation"},
        {"\xc0\xaf overlong /", FFFD FFFD " overlong /"},
        {"\xe0\x80\xaf overlong 3", FFFD FFFD FFFD " overlong 3"},
        {"\xed\xa0\x80 surrogate", FFFD FFFD FFFD " surrogate"},
        {"\xf4\x90\x80\x80 > U+10FFFF", FFFD FFFD FFFD FFFD " > U+10FFFF"},
        {"\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD},
        {"cut \xe2\x82", "cut " FFFD FFFD},
        {"\xe2\x82x \xc3\xa9", FFFD FFFD "x \xc3\xa9"},
    };
    char *out;
    size_t len;

    (void) state;
    ioloop__log_set_format(1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        out = json_roundtrip("t", cases[i][0], &len);
        assert_string_equal(out, cases[i][1]);
        free(out);
    }
#undef FFFD
}

/* The escapes themselves, as written. */
static void
test_json_escapes_as_written(void **state)
{
    struct capture c;
    char *text;

    (void) state;
    ioloop__log_set_format(1);
    capture_begin(&c);
    ioloop__log(IOLOOP_LOG_ERROR, "t", "\"\\\b\f\n\r\t%c\x1f\x7f\xff/", 1);
    text = capture_end(&c);
    assert_non_null(strstr(text, "\"msg\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001"
                                 "\\u001f\\u007f\\ufffd/\"}\n"));
    free(text);
}

/* Too long: cut to PIPE_BUF bytes, never inside an escape or a UTF-8
 * sequence, and still one valid line that says it was cut. */
static void
test_long_lines(void **state)
{
    static const char *const units[] = {"x", "\x01", "\xc3\xa9", "\""};
    char *msg = malloc(3 * PIPE_BUF + 1), *text;
    struct capture c;
    json_t *obj;

    (void) state;
    assert_non_null(msg);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t ulen = strlen(units[u]), n, len;
        const char *m;

        for (n = 0; n + ulen <= 3 * PIPE_BUF; n += ulen) {
            memcpy(msg + n, units[u], ulen);
        }
        msg[n] = '\0';
        ioloop__log_set_format(1);
        capture_begin(&c);
        ioloop__log(IOLOOP_LOG_ERROR, "long", "%s", msg);
        text = capture_end(&c);
        len = strlen(text);
        assert_true(len <= PIPE_BUF && len > PIPE_BUF - 16);
        obj = parse_line(text, len);
        assert_true(json_is_true(json_object_get(obj, "truncated")));
        m = field(obj, "msg");
        assert_true(strlen(m) > 0 && strlen(m) % ulen == 0);
        assert_memory_equal(m, msg, strlen(m));
        json_decref(obj);
        free(text);

        ioloop__log_set_format(0);
        capture_begin(&c);
        ioloop__log(IOLOOP_LOG_ERROR, "long", "%s", msg);
        text = capture_end(&c);
        len = strlen(text);
        assert_true(len <= PIPE_BUF && len > PIPE_BUF - 16);
        assert_string_equal(text + len - 4, "...\n");
        assert_ptr_equal(strchr(text, '\n'), text + len - 1);
        free(text);
    }
    free(msg);
}

/* Writes WRITER_LINES JSON lines of WRITER_MSG bytes of letter to fd. */
static void
writer(int fd, char letter)
{
    char msg[WRITER_MSG + 1];

    memset(msg, letter, WRITER_MSG);
    msg[WRITER_MSG] = '\0';
    if (dup2(fd, STDERR_FILENO) < 0) {
        _exit(1);
    }
    for (int i = 0; i < WRITER_LINES; i++) {
        ioloop__log(IOLOOP_LOG_INFO, "w", "%c%d %s", letter, i, msg);
    }
    _exit(0);
}

/* Workers share stderr: each line is one write of < PIPE_BUF bytes, so
 * lines arrive whole whatever the scheduling. */
static void
test_lines_do_not_interleave(void **state)
{
    int fds[2], counts[WRITERS] = {0}, status;
    size_t len = 0, cap = 1 << 20;
    char *all = malloc(cap), *line, *eol;
    pid_t pids[WRITERS];
    ssize_t n;

    (void) state;
    assert_non_null(all);
    ioloop__log_set_format(1);
    assert_int_equal(pipe(fds), 0);
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            close(fds[0]);
            writer(fds[1], (char) ('a' + w));
        }
    }
    close(fds[1]);
    while ((n = read(fds[0], all + len, cap - len)) != 0) {
        if (n < 0) {
            assert_int_equal(errno, EINTR);
            continue;
        }
        len += (size_t) n;
        if (len == cap) {
            cap *= 2;
            all = realloc(all, cap);
            assert_non_null(all);
        }
    }
    close(fds[0]);
    for (int w = 0; w < WRITERS; w++) {
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (line = all; line < all + len; line = eol + 1) {
        json_t *obj;
        const char *m;
        int w;

        eol = memchr(line, '\n', (size_t) (all + len - line));
        assert_non_null(eol);
        obj = parse_line(line, (size_t) (eol - line + 1));
        m = field(obj, "msg");
        w = m[0] - 'a';
        assert_true(w >= 0 && w < WRITERS);
        assert_int_equal(json_integer_value(json_object_get(obj, "pid")),
                         pids[w]);
        assert_int_equal(strspn(strchr(m, ' ') + 1, (char[]){m[0], '\0'}),
                         WRITER_MSG);
        counts[w]++;
        json_decref(obj);
    }
    for (int w = 0; w < WRITERS; w++) {
        assert_int_equal(counts[w], WRITER_LINES);
    }
    free(all);
}

/* The manifest's log.plugins, as (name, level) pairs. */
static void
plugin_levels(struct ioloop_log_override *p, char names[3][8])
{
    static const char *const n[] = {"chatty", "quiet", "plain"};
    static const int levels[] = {IOLOOP_LOG_DEBUG, IOLOOP_LOG_ERROR, -1};

    memset(p, 0, 3 * sizeof(*p));
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], 8, "%s", n[i]);
        p[i].name = names[i];
        p[i].level = levels[i];
    }
}

static void
test_configure(void **state)
{
    struct ioloop_log_override p[3];
    char names[3][8];

    (void) state;
    plugin_levels(p, names);
    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_INFO, 0, p, 3), 0);
    assert_int_equal(ioloop__log_threshold, IOLOOP_LOG_DEBUG);
    assert_int_equal(ioloop__log_level(), IOLOOP_LOG_INFO);

    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_DEBUG + 1, 0, p, 3),
                     -EINVAL);
    p[1].level = IOLOOP_LOG_DEBUG + 1;
    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_WARN, 0, p, 3),
                     -EINVAL);
    assert_int_equal(ioloop__log_threshold, IOLOOP_LOG_DEBUG);
    assert_int_equal(ioloop__log_level(), IOLOOP_LOG_INFO);

    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_WARN, 0, NULL, 0), 0);
    assert_int_equal(ioloop__log_threshold, IOLOOP_LOG_WARN);
    assert_int_equal(ioloop__log_level(), IOLOOP_LOG_WARN);
}

/* Lines the host writes with a plugin's name follow that plugin's level;
 * the names were copied (the manifest may go away). */
static void
test_overrides_by_tag(void **state)
{
    struct ioloop_log_override p[3];
    char names[3][8], *text;
    struct capture c;

    (void) state;
    plugin_levels(p, names);
    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_INFO, 0, p, 3), 0);
    memset(names, 0, sizeof(names));
    capture_begin(&c);
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, "chatty", "c-debug");
    IOLOOP_LOG(IOLOOP_LOG_INFO, "quiet", "q-info");
    IOLOOP_LOG(IOLOOP_LOG_ERROR, "quiet", "q-error");
    IOLOOP_LOG(IOLOOP_LOG_INFO, "plain", "p-info");
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, "plain", "p-debug");
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, "host", "h-debug");
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, NULL, "null-debug");
    IOLOOP_LOG(IOLOOP_LOG_INFO, NULL, "null-info");
    text = capture_end(&c);
    assert_matches(text, "^" TS_RE " debug \\[chatty\\] c-debug\n"
                         TS_RE " error \\[quiet\\] q-error\n"
                         TS_RE " info \\[plain\\] p-info\n"
                         TS_RE " info \\[host\\] null-info\n$");
    free(text);
}

/* A plugin logs through the API as the instance it names, whatever the
 * loop's current owner: its own level when the manifest gave one, else
 * log.level. The threshold stays the cap. */
static void
test_overrides_by_owner(void **state)
{
    ioloop_instance_t chatty = {.owner = {.name = "chatty",
                                          .has_log_level = true,
                                          .log_level = IOLOOP_LOG_DEBUG}};
    ioloop_instance_t quiet = {.owner = {.name = "quiet",
                                         .has_log_level = true,
                                         .log_level = IOLOOP_LOG_ERROR}};
    ioloop_instance_t plain = {.owner = {.name = "plain"}};
    const struct ioloop_api *api = ioloop__api();
    struct ioloop_log_override p[3];
    char names[3][8], err[256], *text;
    ioloop_loop_t *loop;
    struct capture c;

    (void) state;
    loop = ioloop_loop_new(&fake_backend_ops, err, sizeof(err));
    assert_non_null(loop);
    chatty.loop = quiet.loop = plain.loop = loop;
    plugin_levels(p, names);
    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_INFO, 0, p, 3), 0);
    capture_begin(&c);
    ioloop__set_owner(loop, &quiet.owner); /* not who logs next */
    api->log(&chatty, IOLOOP_LOG_DEBUG, "chatty %s", "debug");
    ioloop__set_owner(loop, NULL);
    api->log(&quiet, IOLOOP_LOG_INFO, "quiet info");
    api->log(&quiet, IOLOOP_LOG_WARN, "quiet warn");
    api->log(&quiet, IOLOOP_LOG_ERROR, "quiet error");
    api->log(&plain, IOLOOP_LOG_DEBUG, "plain debug");
    api->log(&plain, IOLOOP_LOG_INFO, "plain info");
    ioloop__log_threshold = IOLOOP_LOG_WARN;
    api->log(&chatty, IOLOOP_LOG_DEBUG, "chatty capped");
    text = capture_end(&c);
    assert_matches(text, "^" TS_RE " debug \\[chatty\\] chatty debug\n"
                         TS_RE " error \\[quiet\\] quiet error\n"
                         TS_RE " info \\[plain\\] plain info\n$");
    free(text);
    ioloop_loop_free(loop);
}

/* Lines logged before the format is known are held, then written in
 * the format configure sets, in order, with their own times. */
static void
test_hold_until_configured(void **state)
{
    struct capture c;
    char *text, *second;
    json_t *obj;

    (void) state;
    capture_begin(&c);
    ioloop__log_hold();
    IOLOOP_LOG(IOLOOP_LOG_WARN, "host", "early one");
    IOLOOP_LOG(IOLOOP_LOG_INFO, "hello", "early \"two\"");
    assert_int_equal(lseek(c.fd, 0, SEEK_END), 0); /* nothing yet */
    assert_int_equal(ioloop__log_configure(IOLOOP_LOG_INFO, 1, NULL, 0), 0);
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "after");
    text = capture_end(&c);
    second = strchr(text, '\n') + 1;
    obj = parse_line(text, (size_t) (second - text));
    assert_string_equal(field(obj, "level"), "warn");
    assert_string_equal(field(obj, "msg"), "early one");
    json_decref(obj);
    obj = parse_line(second, (size_t) (strchr(second, '\n') + 1 - second));
    assert_string_equal(field(obj, "tag"), "hello");
    assert_string_equal(field(obj, "msg"), "early \"two\"");
    json_decref(obj);
    assert_non_null(strstr(strchr(second, '\n'), "\"msg\":\"after\""));
    free(text);
}

/* More held lines than fit: the extra ones are counted, not lost
 * silently; release writes them in the current (plain) format. */
static void
test_hold_overflow_and_release(void **state)
{
    struct capture c;
    char *text;

    (void) state;
    capture_begin(&c);
    ioloop__log_hold();
    for (int i = 0; i < 20; i++) {
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "held %d", i);
    }
    ioloop__log_release();
    ioloop__log_release(); /* a no-op */
    text = capture_end(&c);
    assert_non_null(strstr(text, " info [host] held 0\n"));
    assert_non_null(strstr(text, " info [host] held 15\n"));
    assert_null(strstr(text, "held 16"));
    assert_non_null(strstr(text, " warn [host] 4 early log lines were "
                                 "dropped\n"));
    free(text);
}

/* A command-line error: "ioloop-host: ..." in plain format, an error line
 * in JSON format. */
static void
test_cli_lines(void **state)
{
    struct capture c;
    char *text;
    json_t *obj;

    (void) state;
    capture_begin(&c);
    ioloop__log_cli("%s: bad %d", "m.json", 7);
    text = capture_end(&c);
    assert_string_equal(text, "ioloop-host: m.json: bad 7\n");
    free(text);
    ioloop__log_set_format(1);
    capture_begin(&c);
    ioloop__log_cli("%s: bad %d", "m.json", 7);
    text = capture_end(&c);
    obj = parse_line(text, strlen(text));
    assert_string_equal(field(obj, "level"), "error");
    assert_string_equal(field(obj, "msg"), "m.json: bad 7");
    json_decref(obj);
    free(text);
}

/* Frames: one JSON line with an array (also when too many to fit: cut,
 * still valid, marked truncated), or plain indented lines in one write. */
static void
test_frames(void **state)
{
    static char big[64][200];
    const char *frames[64];
    const json_t *arr;
    struct capture c;
    char *text;
    json_t *obj;

    (void) state;
    for (int i = 0; i < 64; i++) {
        snprintf(big[i], sizeof(big[i]), "lib%d.so(f\"%d+0x1) %0150d", i, i,
                 0);
        frames[i] = big[i];
    }
    capture_begin(&c);
    ioloop__log_frames(IOLOOP_LOG_WARN, "plug", "stack: here", frames, 2);
    text = capture_end(&c);
    assert_matches(text, "^" TS_RE " warn \\[plug\\] stack: here\n    lib0"
                         "[^\n]*\n    lib1[^\n]*\n$");
    free(text);

    ioloop__log_set_format(1);
    capture_begin(&c);
    ioloop__log_frames(IOLOOP_LOG_WARN, "plug", "stack: here", frames, 2);
    text = capture_end(&c);
    obj = parse_line(text, strlen(text));
    arr = json_object_get(obj, "frames");
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_array_get(arr, 1)), big[1]);
    assert_null(json_object_get(obj, "truncated"));
    json_decref(obj);
    free(text);

    capture_begin(&c);
    ioloop__log_frames(IOLOOP_LOG_WARN, "plug", "stack: here", frames, 64);
    text = capture_end(&c);
    assert_true(strlen(text) <= PIPE_BUF);
    obj = parse_line(text, strlen(text));
    arr = json_object_get(obj, "frames");
    assert_true(json_array_size(arr) > 2 && json_array_size(arr) < 64);
    assert_true(json_is_true(json_object_get(obj, "truncated")));
    json_decref(obj);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_names, reset, reset),
        cmocka_unit_test_setup_teardown(test_plain_format, reset, reset),
        cmocka_unit_test_setup_teardown(test_plain_escapes, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_format, reset, reset),
        cmocka_unit_test_setup_teardown(test_worker_tag, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_escaping_roundtrip, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_json_invalid_utf8, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_json_escapes_as_written, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_long_lines, reset, reset),
        cmocka_unit_test_setup_teardown(test_lines_do_not_interleave, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_configure, reset, reset),
        cmocka_unit_test_setup_teardown(test_overrides_by_tag, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_overrides_by_owner, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_hold_until_configured, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(test_hold_overflow_and_release,
                                        reset, reset),
        cmocka_unit_test_setup_teardown(test_cli_lines, reset, reset),
        cmocka_unit_test_setup_teardown(test_frames, reset, reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
