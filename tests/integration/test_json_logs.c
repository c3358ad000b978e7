/*
 * tests/integration/test_json_logs.c: logs and metrics keep their
 * promises. With "log": {"format": "json"} every line on stderr is one
 * JSON object (parsed with jansson): the lines logged before the manifest
 * is read, master and worker lines, a watchdog stall and its stack (the
 * frames as an array), a reload, worker init failures. Metric series keep
 * their labels across a SIGHUP reload and no counter goes back.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
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

#include "client.h"
#include "fixture.h"
#include "host_process.h"
#include "prom_text.h"

#define HELLO HOST_HELLO_ENTRY
#define STATUS HOST_STATUS_ENTRY
#define SLEEPER(config)                                                    \
    "{\"name\": \"sleeper\", \"path\": \"" IOLOOP_BUILD_DIR               \
    "/tests/modules/sleeper.so\", \"config\": " config "}"
#define JSON_LOG "\"log\": {\"format\": \"json\"}"

static struct http_response resp;

static int
teardown(void **state)
{
    unsetenv("LISTEN_FDS");
    return host_teardown(state);
}

/*
 * Every line of the captured stderr is a JSON object with the logger's
 * fields; returns how many lines carry a "frames" array (the stacks).
 */
static int
every_line_is_json(void)
{
    char *text, *line, *next;
    int lines = 0, stacks = 0;

    pthread_mutex_lock(&hp.lock);
    text = strdup(hp.log);
    pthread_mutex_unlock(&hp.lock);
    assert_non_null(text);
    for (line = text; *line != '\0'; line = next) {
        json_error_t error;
        json_t *doc, *frames;

        next = strchr(line, '\n');
        if (next == NULL) {
            fail_msg("unterminated last line: %s", line);
        }
        *next++ = '\0';
        doc = json_loads(line, 0, &error);
        if (!json_is_object(doc)) {
            fail_msg("stderr line %d is not JSON: %s (%s)", lines + 1, line,
                     error.text);
        }
        assert_true(json_is_string(json_object_get(doc, "ts")));
        assert_true(json_is_string(json_object_get(doc, "level")));
        assert_true(json_is_integer(json_object_get(doc, "pid")));
        assert_true(json_is_string(json_object_get(doc, "tag")));
        assert_true(json_is_string(json_object_get(doc, "msg")));
        frames = json_object_get(doc, "frames");
        if (frames != NULL) {
            assert_true(json_is_array(frames));
            assert_true(json_array_size(frames) >= 1);
            stacks++;
        }
        json_decref(doc);
        lines++;
    }
    free(text);
    print_message("%d lines, all JSON, %d stacks\n", lines, stacks);
    assert_true(lines > 0);
    return stacks;
}

/* host_port for JSON lines: the port of instance name's "listening on"
 * line, waiting up to 5 s; -1 without one. */
static int
json_port(const char *name)
{
    char needle[128], *p;
    int port = -1;

    snprintf(needle, sizeof(needle),
             "\"tag\":\"%s\",\"msg\":\"listening on 127.0.0.1:", name);
    for (int t = 0; t < 5000 && port < 0; t += 10) {
        pthread_mutex_lock(&hp.lock);
        p = strstr(hp.log, needle);
        if (p != NULL) {
            port = atoi(p + strlen(needle));
        }
        pthread_mutex_unlock(&hp.lock);
        if (port < 0) {
            sleep_ms(10);
        }
    }
    return port;
}

static int
get(int port, const char *path)
{
    static struct http_conn hc;
    int rc;

    if (http_connect(&hc, port) < 0) {
        return -1;
    }
    rc = http_get(&hc, path, &resp);
    close(hc.fd);
    return rc == 0 && resp.status == 200 ? 0 : -1;
}

/* GET /metrics until want workers report, parsed strictly into doc. */
static void
scrape(int port, int want, struct prom_doc *doc)
{
    char err[256];

    for (int i = 0; i < 250; i++) {
        assert_int_equal(get(port, "/metrics"), 0);
        if (prom_parse(resp.body, doc, err, sizeof(err)) < 0) {
            fail_msg("%s\n%s", err, resp.body);
        }
        if (prom_family(doc, "ioloop_backend_info")->nsamples == want) {
            return;
        }
        prom_free(doc);
        sleep_ms(20);
    }
    fail_msg("never %d workers in /metrics", want);
}

/* Every counter series of before is in after, not lower. */
static void
counters_went_on(const struct prom_doc *before, const struct prom_doc *after)
{
    int checked = 0;

    for (size_t i = 0; i < before->nsamples; i++) {
        const struct prom_sample *s = &before->samples[i];
        double v;

        if (strstr(s->name, "_total") == NULL) {
            continue;
        }
        v = prom_value(after, s->name, s->labels);
        if (!(v >= s->value)) {
            fail_msg("%s{%s}: %g before the reload, %g after", s->name,
                     s->labels, s->value, v);
        }
        checked++;
    }
    print_message("%d counter series kept and not lower\n", checked);
    assert_true(checked > 10);
}

/* Two workers in JSON format: an early line (a malformed LISTEN_FDS,
 * logged before the manifest is read), a stall with its stack, a
 * reload; then every line parses, and the counters went on. */
static void
test_json_run_with_reload(void **state)
{
    struct prom_doc before, after;
    int hello, status, sleeper, fd;
    char c;
    double ms;

    (void) state;
    setenv("LISTEN_FDS", "junk", 1);
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 2, \"watchdog_ms\": 30, "
                                   JSON_LOG ", " HOST_HELLO_STATUS_SERVERS "}",
                                   "[" HELLO ", " STATUS ", "
                                   SLEEPER("{\"listen\": \"127.0.0.1:0\", "
                                           "\"sleep_ms\": 150}") "]",
                                   0),
                     0);
    unsetenv("LISTEN_FDS");
    assert_int_equal(wait_log("\"msg\":\"started: backend", 2, 5000), 0);
    hello = json_port("host");
    status = hello;
    sleeper = json_port("sleeper");
    assert_true(hello > 0 && status > 0 && sleeper > 0);
    assert_int_equal(host_log_count(&hp, "ignoring malformed LISTEN_PID"),
                     1);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(get(hello, "/"), 0);
    }
    fd = client_connect(sleeper);
    assert_true(fd >= 0);
    (void) client_read_some(fd, &c, 1, 5000);
    close(fd);
    assert_int_equal(wait_log("blocked the loop for", 1, 5000), 0);
    assert_int_equal(wait_log("\"frames\":[", 1, 5000), 0);
    scrape(status, 2, &before);

    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    assert_int_equal(wait_log("(generation 1): draining", 2, 5000), 0);
    assert_int_equal(wait_log("exited with status 0", 2, 5000), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(get(hello, "/"), 0);
    }
    scrape(status, 2, &after);
    counters_went_on(&before, &after);
    prom_free(&before);
    prom_free(&after);
    assert_int_equal(host_stop(&hp, SIGTERM, HOST_TIMEOUT_MS, &ms), 0);
    assert_int_equal(WEXITSTATUS(hp.status), 0);
    assert_true(every_line_is_json() >= 1);
}

/* With workers, a plugin init that fails, in JSON format: the master
 * checks every init before forking and its one error line is JSON too. */
static void
test_json_init_failure(void **state)
{
    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 1, " JSON_LOG ", "
                                   HOST_HELLO_SERVERS "}",
                                   "[" HELLO ", "
                                   SLEEPER("{\"fail\": \"no database\"}")
                                   "]",
                                   0),
                     0);
    assert_int_equal(host_wait(&hp, HOST_TIMEOUT_MS), 0);
    assert_int_equal(WEXITSTATUS(hp.status), 1);
    assert_int_equal(host_log_count(&hp, "init failed: no database"), 1);
    assert_int_equal(host_log_count(&hp, "worker"), 0);
    every_line_is_json();
}

/* A single process whose init fails: its one error line is JSON. */
static void
test_json_init_failure_single(void **state)
{
    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll", "{" JSON_LOG "}",
                                   "[" SLEEPER("{\"fail\": \"no database\"}")
                                   "]",
                                   0),
                     0);
    assert_int_equal(host_wait(&hp, HOST_TIMEOUT_MS), 0);
    assert_int_equal(WEXITSTATUS(hp.status), 1);
    assert_int_equal(host_log_count(&hp, "init failed: no database"), 1);
    every_line_is_json();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_json_run_with_reload, teardown),
        cmocka_unit_test_teardown(test_json_init_failure, teardown),
        cmocka_unit_test_teardown(test_json_init_failure_single, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
