/*
 * tests/integration/test_access_log.c: the servers' access logs through a
 * real ioloop-host: a JSON log and a common one (hostile strings escaped,
 * one line per request, 404s included), logrotate's rename then SIGHUP
 * (the next lines go to a new file), and --check refusing a log it could
 * not open without creating one.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client.h"
#include "fixture.h"

#define MODULE IOLOOP_BUILD_DIR "/tests/modules/http_test.so"

static char dir[64];

/* Sends one raw request on a new connection, reads the response. */
static int
request(int port, const char *text, struct http_response *r)
{
    struct http_conn c;
    int rc;

    if (http_connect(&c, port) < 0) {
        return -1;
    }
    rc = client_write_all(c.fd, text, strlen(text), 2000) == 0
                 && http_read_response(&c, 0, r) == 0
             ? 0
             : -1;
    close(c.fd);
    return rc;
}

/* The lines of path once it has at least n (the log is flushed within a
 * second of its first unflushed line), NUL-terminated in buf. */
static int
read_lines(const char *path, int n, char *buf, size_t cap)
{
    for (int ms = 0; ms < 5000; ms += 50) {
        FILE *f = fopen(path, "r");
        size_t len = 0;
        int lines = 0;

        if (f != NULL) {
            len = fread(buf, 1, cap - 1, f);
            fclose(f);
        }
        buf[len] = '\0';
        for (size_t i = 0; i < len; i++) {
            lines += buf[i] == '\n';
        }
        if (lines >= n) {
            return lines;
        }
        sleep_ms(50);
    }
    return -1;
}

static int
start(int workers)
{
    char extra[2048], w[32] = "";

    if (workers > 0) {
        snprintf(w, sizeof(w), "\"workers\": %d, ", workers);
    }
    snprintf(extra, sizeof(extra),
             "{%s\"servers\": ["
             "{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","
             " \"access_log\": {\"path\": \"%s/json.log\", \"format\": "
             "\"json\"},"
             " \"routes\": [{\"prefix\": \"/a/\", \"plugin\": \"a\"}]},"
             "{\"name\": \"old\", \"listen\": \"%s\","
             " \"access_log\": {\"path\": \"%s/common.log\"},"
             " \"routes\": [{\"prefix\": \"/a/\", \"plugin\": \"a\"}]}]}",
             w, dir,
             /* With workers the master hands out one listener per
              * address text: "127.0.0.1:0" twice would be one socket. */
             workers > 0 ? "127.0.0.2:0" : "127.0.0.1:0", dir);
    return host_start_ex(&hp, "epoll", extra,
                         "[{\"name\": \"a\", \"path\": \"" MODULE "\","
                         " \"config\": {\"name\": \"a\"}}]",
                         0);
}

/* The ports of the two servers (both on 127.0.0.1, no workers), from
 * their "listening on" lines, in manifest order. */
static void
ports(int *web, int *old)
{
    static const char v4[] = "[host] listening on 127.0.0.1:";
    const char *line;

    assert_int_equal(wait_log(v4, 2, HOST_TIMEOUT_MS), 0);
    pthread_mutex_lock(&hp.lock);
    line = strstr(hp.log, v4);
    *web = atoi(line + strlen(v4));
    *old = atoi(strstr(line + 1, v4) + strlen(v4));
    pthread_mutex_unlock(&hp.lock);
}

static void
test_formats(void **state)
{
    static char buf[16 * 1024];
    struct http_response r;
    json_error_t jerr;
    json_t *line;
    char path[128];
    int web, old;

    (void) state;
    assert_int_equal(start(0), 0);
    ports(&web, &old);
    assert_int_equal(request(web, "GET /a/hello?x=1 HTTP/1.1\r\nHost: h\r\n"
                                  "User-Agent: evil\"\\\r\n\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(request(web, "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n",
                             &r),
                     0);
    assert_int_equal(r.status, 404);
    assert_int_equal(request(old, "GET /a/hello HTTP/1.0\r\n"
                                  "Referer: http://x/\"y\r\n\r\n", &r),
                     0);

    snprintf(path, sizeof(path), "%s/json.log", dir);
    assert_int_equal(read_lines(path, 2, buf, sizeof(buf)), 2);
    line = json_loadb(buf, strcspn(buf, "\n"), 0, &jerr);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "method")),
                        "GET");
    assert_string_equal(json_string_value(json_object_get(line, "target")),
                        "/a/hello?x=1");
    assert_int_equal(json_integer_value(json_object_get(line, "status")),
                     200);
    assert_int_equal(json_integer_value(json_object_get(line, "bytes")),
                     strlen("a: hello"));
    assert_string_equal(
        json_string_value(json_object_get(line, "user_agent")),
        "evil\"\\");
    assert_string_equal(json_string_value(json_object_get(line, "server")),
                        "web");
    assert_string_equal(
        json_string_value(json_object_get(line, "remote_ip")), "127.0.0.1");
    json_decref(line);
    line = json_loads(strchr(buf, '\n') + 1, JSON_DISABLE_EOF_CHECK, &jerr);
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")),
                     404);
    json_decref(line);

    snprintf(path, sizeof(path), "%s/common.log", dir);
    assert_int_equal(read_lines(path, 1, buf, sizeof(buf)), 1);
    assert_non_null(strstr(buf, "127.0.0.1 - - ["));
    assert_non_null(strstr(buf, "] \"GET /a/hello HTTP/1.0\" 200 8 "
                                "\"http://x/\\x22y\" \"-\"\n"));
    stop_ok();    unlink(path);
    snprintf(path, sizeof(path), "%s/json.log", dir);
    unlink(path);
}

/* logrotate: rename, then SIGHUP; with workers the reload's new workers
 * open the new file. */
static void
rotate(int workers)
{
    static char buf[16 * 1024];
    struct http_response r;
    char path[128], moved[128];
    int web;

    assert_int_equal(start(workers), 0);
    web = host_port(&hp, "host", HOST_TIMEOUT_MS);
    assert_true(web > 0);
    assert_int_equal(request(web, "GET /a/hello HTTP/1.1\r\nHost: h\r\n\r\n",
                             &r),
                     0);
    snprintf(path, sizeof(path), "%s/json.log", dir);
    snprintf(moved, sizeof(moved), "%s/json.log.1", dir);
    if (read_lines(path, 1, buf, sizeof(buf)) != 1) {
        host_dump_log(&hp);
        fail_msg("%s: no line", path);
    }
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    if (workers > 0) {
        assert_int_equal(wait_log("reloaded: generation", 1, 10000), 0);
    } else {
        assert_int_equal(wait_log("SIGHUP", 1, HOST_TIMEOUT_MS), 0);
    }
    /* Workers: the old one may still answer while it drains. */
    for (int ms = 0; ms < 5000; ms += 100) {
        (void) request(web, "GET /a/hello HTTP/1.1\r\nHost: h\r\n\r\n", &r);
        if (access(path, F_OK) == 0) {
            break;
        }
        sleep_ms(100);
    }
    assert_true(read_lines(path, 1, buf, sizeof(buf)) >= 1);
    assert_int_equal(read_lines(moved, 1, buf, sizeof(buf)), 1);
    stop_ok();
    unlink(path);
    unlink(moved);
}

static void
test_rotate(void **state)
{
    (void) state;
    rotate(0);
}

static void
test_rotate_workers(void **state)
{
    (void) state;
    rotate(1);
}

/* --check refuses a log in a folder that does not exist, and creates no
 * log it could. */
static void
test_check(void **state)
{
    char cmd[1024], out[1024], path[128];
    FILE *p;
    size_t n;
    int status;

    (void) state;
    snprintf(path, sizeof(path), "%s/m.json", dir);
    p = fopen(path, "w");
    assert_non_null(p);
    fprintf(p,
            "{\"backend_dir\": \"" HOST_BACKEND_DIR "\", \"servers\": ["
            "{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","
            " \"access_log\": {\"path\": \"%s/ok.log\"},"
            " \"routes\": [{\"prefix\": \"/\", \"plugin\": \"a\"}]},"
            "{\"name\": \"bad\", \"listen\": \"127.0.0.1:0\","
            " \"access_log\": {\"path\": \"%s/none/x.log\"},"
            " \"routes\": [{\"prefix\": \"/\", \"plugin\": \"a\"}]}],"
            " \"plugins\": [{\"name\": \"a\", \"path\": \"" MODULE "\"}]}\n",
            dir, dir);
    fclose(p);
    snprintf(cmd, sizeof(cmd), HOST_BINARY " --check --config %s 2>&1",
             path);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    assert_non_null(strstr(out, "servers[1].access_log.path: "));
    assert_non_null(strstr(out, "/none/x.log: No such file or directory"));
    snprintf(path, sizeof(path), "%s/ok.log", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/m.json", dir);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_formats, host_teardown),
        cmocka_unit_test_teardown(test_rotate, host_teardown),
        cmocka_unit_test_teardown(test_rotate_workers, host_teardown),
        cmocka_unit_test(test_check),
    };
    char cmd[128];
    int failed;

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/ioloop-alog-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    return failed;
}
