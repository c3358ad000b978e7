/*
 * tests/integration/test_faults.c: faults stay contained, with the real
 * host, two worker processes and real sockets on 127.0.0.1:
 *   - a plugin instance that segfaults at every connection is quarantined
 *     (its port then refuses connections, the metrics say so) while
 *     hello, beside it in the same workers, answers every request and the
 *     master stays up; a reload that leaves it unchanged keeps it
 *     quarantined, one that changes its config lifts the quarantine;
 *   - a reload whose new plugin init fails is refused as one transaction:
 *     READY=1 with "reload failed: <reason>" on a fake NOTIFY_SOCKET, one
 *     error line, the old workers untouched and serving, no quarantine;
 *     the next good reload commits with "reloaded: generation 2".
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client.h"
#include "fixture.h"
#include "host_process.h"

#define MODULES IOLOOP_BUILD_DIR "/tests/modules"
#define HELLO HOST_HELLO_ENTRY
#define STATUS HOST_STATUS_ENTRY
#define CRASHER                                                            \
    "{\"name\": \"crasher\", \"path\": \"" MODULES                          \
    "/test_plugin_default.so\", \"config\": {\"listen\": \"127.0.0.1:0\", " \
    "\"on_accept\": \"crash\"}}"
/* The same test plugin, healthy: its init fails only when told to. */
#define DB                                                                 \
    "{\"name\": \"db\", \"path\": \"" MODULES "/test_plugin_default.so\", " \
    "\"config\": {}}"

/* A fake service manager: a datagram socket NOTIFY_SOCKET names. */
static struct {
    int fd;
    char dir[64];
    char path[128];
} notify = {.fd = -1};

/* GET /metrics from the status instance into r; 0 or -1. */
static int
get_metrics(int port, struct http_response *r)
{
    static struct http_conn hc;
    int rc;

    if (http_connect(&hc, port) < 0) {
        return -1;
    }
    rc = http_get(&hc, "/metrics", r);
    close(hc.fd);
    return rc == 0 && r->status == 200 ? 0 : -1;
}

/* Connects to the crasher and waits for its worker to drop the
 * connection (the worker dies). */
static void
hit_crasher(int port)
{
    int fd = client_connect(port);
    char c;

    if (fd >= 0) {
        (void) client_read_some(fd, &c, 1, CLIENT_TIMEOUT_MS);
        close(fd);
    }
}

/* Whether a connection to port is refused (nothing listens any more). */
static int
refused(int port)
{
    int fd = client_connect(port);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return 1;
}

/* Replaces the config of instance name in the running host's manifest
 * with config_json. */
static void
set_config(const char *name, const char *config_json)
{
    json_error_t jerr;
    json_t *root = json_load_file(hp.manifest, 0, &jerr), *p;
    size_t i;

    assert_non_null(root);
    json_array_foreach(json_object_get(root, "plugins"), i, p) {
        if (strcmp(json_string_value(json_object_get(p, "name")), name)
            == 0) {
            json_t *config = json_loads(config_json, 0, &jerr);

            assert_non_null(config);
            assert_int_equal(json_object_set_new(p, "config", config), 0);
        }
    }
    assert_int_equal(json_dump_file(root, hp.manifest, JSON_INDENT(2)), 0);
    json_decref(root);
}

/* Binds the fake NOTIFY_SOCKET and exports it to the host to come. */
static int
setup_notify(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    (void) state;
    snprintf(notify.dir, sizeof(notify.dir), "/tmp/ioloop-faults-XXXXXX");
    assert_non_null(mkdtemp(notify.dir));
    snprintf(notify.path, sizeof(notify.path), "%s/notify", notify.dir);
    assert_true(strlen(notify.path) < sizeof(sun.sun_path));
    memcpy(sun.sun_path, notify.path, strlen(notify.path) + 1);
    notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(notify.fd >= 0);
    assert_int_equal(bind(notify.fd, (struct sockaddr *) &sun, sizeof(sun)),
                     0);
    assert_int_equal(setenv("NOTIFY_SOCKET", notify.path, 1), 0);
    return 0;
}

static int
teardown(void **state)
{
    host_teardown(state);
    unsetenv("NOTIFY_SOCKET");
    if (notify.fd >= 0) {
        close(notify.fd);
        notify.fd = -1;
        unlink(notify.path);
        rmdir(notify.dir);
    }
    return 0;
}

/*
 * The next datagram the host sent, NUL-terminated in buf, waiting up to
 * timeout_ms; 0, or -1 when none came.
 */
static int
next_notify(char *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd = {.fd = notify.fd, .events = POLLIN};
    ssize_t n;

    if (poll(&pfd, 1, timeout_ms) != 1) {
        return -1;
    }
    n = recv(notify.fd, buf, len - 1, MSG_DONTWAIT);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

/* Reads datagrams until one starts with prefix (into buf); 0 or -1. */
static int
wait_notify(const char *prefix, char *buf, size_t len, int timeout_ms)
{
    while (next_notify(buf, len, timeout_ms) == 0) {
        if (strncmp(buf, prefix, strlen(prefix)) == 0) {
            return 0;
        }
    }
    return -1;
}

/*
 * crasher, hello and status in each of 2 workers; the crasher is hit
 * until quarantined, with a GET to hello before each hit: every GET is
 * answered. Then the crasher's port refuses, hello serves on new
 * workers, the metrics say which instance is quarantined, the master
 * runs on and stops with 0.
 */
static void
test_quarantine_keeps_the_others(void **state)
{
    static struct http_response r;
    int hello, crasher, status, asked = 0, answered = 0;

    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 2, "
                                   HOST_HELLO_STATUS_SERVERS "}",
                                   "[" HELLO ", " CRASHER ", " STATUS "]",
                                   0),
                     0);
    assert_int_equal(wait_log("started: backend", 2, HOST_TIMEOUT_MS), 0);
    hello = host_port(&hp, "host", HOST_TIMEOUT_MS);
    crasher = host_port(&hp, "crasher", HOST_TIMEOUT_MS);
    status = hello;
    assert_true(hello > 0 && crasher > 0 && status > 0);
    for (int i = 1; i <= 5; i++) {
        for (int k = 0; k < 20; k++) {
            asked++;
            answered += get_root(hello, "hello") == 0;
        }
        hit_crasher(crasher);
        assert_int_equal(wait_log("(in plugin \"crasher\")", i, 10000), 0);
    }
    assert_int_equal(wait_log("plugin \"crasher\" crashed its worker 5 "
                              "times in 60 s: quarantined",
                              1, 10000),
                     0);
    assert_int_equal(answered, asked);
    assert_int_equal(host_log_count(&hp, "(in plugin \"crasher\")"), 5);

    /* The workers still running the crasher drain once new ones (without
     * it) are ready; then nothing listens on its port. */
    for (int t = 0; t < 10000 && !refused(crasher); t += 100) {
        sleep_ms(100);
    }
    assert_true(refused(crasher));
    for (int i = 0; i < 50; i++) {
        asked++;
        answered += get_root(hello, "hello") == 0;
    }
    print_message("%d of %d GETs to hello answered around the quarantine\n",
                  answered, asked);
    assert_int_equal(answered, asked);
    assert_int_equal(get_metrics(status, &r), 0);
    assert_non_null(strstr(r.body,
                           "ioloop_instance_quarantined{instance=\"crasher\""
                           "} 1\n"));
    assert_non_null(strstr(r.body,
                           "ioloop_instance_quarantined{instance=\"hello\"}"
                           " 0\n"));
    assert_int_equal(host_log_count(&hp, "quarantined: its listeners"), 1);
    assert_int_equal(host_log_count(&hp, "no worker can run"), 0);
    assert_true(host_wait(&hp, 0) < 0); /* the master runs on */
    stop_ok();
}

/* Hits the crasher of a 1-worker host until it is quarantined and the
 * worker without it serves; returns hello's port. */
static int
quarantine_crasher(void)
{
    int hello, crasher;

    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 1, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO ", " CRASHER "]", 0),
                     0);
    hello = host_port(&hp, "host", HOST_TIMEOUT_MS);
    crasher = host_port(&hp, "crasher", HOST_TIMEOUT_MS);
    assert_true(hello > 0 && crasher > 0);
    for (int i = 1; i <= 5; i++) {
        hit_crasher(crasher);
        assert_int_equal(wait_log("(in plugin \"crasher\")", i, 10000), 0);
    }
    assert_int_equal(wait_log("quarantined: its listeners", 1, 10000), 0);
    /* The start, 4 restarts after a backoff, then one without it. */
    assert_int_equal(wait_log("started: backend", 6, 10000), 0);
    assert_int_equal(get_root(hello, "hello"), 0);
    assert_true(refused(crasher));
    return hello;
}

/* A reload that leaves the crasher as it was keeps it quarantined; one
 * that changes its config lifts the quarantine: it listens again. */
static void
test_reload_lifts_quarantine_of_a_changed_plugin(void **state)
{
    int hello;

    (void) state;
    hello = quarantine_crasher();
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    assert_int_equal(wait_log("reloaded: generation 2", 1, HOST_TIMEOUT_MS),
                     0);
    assert_int_equal(host_log_count(&hp, "plugin \"crasher\": stays "
                                         "quarantined"),
                     1);
    assert_int_equal(host_log_count(&hp, "[crasher] listening on"), 5);
    assert_int_equal(get_root(hello, "hello"), 0);
    /* A reload waits until the previous generation has drained. */
    assert_int_equal(wait_log("worker 0: exited", 1, HOST_TIMEOUT_MS), 0);

    set_config("crasher", "{\"listen\": \"127.0.0.1:0\", \"on_accept\": "
                          "\"sleep\", \"sleep_ms\": 0}");
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    assert_int_equal(wait_log("reloaded: generation 3", 1, HOST_TIMEOUT_MS),
                     0);
    assert_int_equal(host_log_count(&hp, "plugin \"crasher\": quarantine "
                                         "lifted"),
                     1);
    assert_int_equal(wait_log("[crasher] listening on", 6, HOST_TIMEOUT_MS),
                     0);
    assert_int_equal(get_root(hello, "hello"), 0);
    stop_ok();
}

/*
 * With a fake NOTIFY_SOCKET: a reload whose "db" init fails gives
 * RELOADING=1 then READY=1 with the reason; exactly one line names the
 * failure; the old workers are the same processes and serve; nothing is
 * quarantined. Then a good reload commits as generation 2.
 */
static void
test_failed_init_refuses_the_reload(void **state)
{
    char msg[4096];
    pid_t w0, w1;
    int hello;

    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 2, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO ", " DB "]", 0),
                     0);
    assert_int_equal(wait_notify("READY=1", msg, sizeof(msg),
                                 HOST_TIMEOUT_MS),
                     0);
    assert_string_equal(msg, "READY=1\nSTATUS=generation 1 serving");
    hello = host_port(&hp, "host", HOST_TIMEOUT_MS);
    w0 = worker_pid(0);
    w1 = worker_pid(1);

    set_config("db", "{\"fail\": \"connection to db:5432 refused\"}");
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    assert_int_equal(next_notify(msg, sizeof(msg), HOST_TIMEOUT_MS), 0);
    assert_true(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    assert_int_equal(next_notify(msg, sizeof(msg), HOST_TIMEOUT_MS), 0);
    assert_string_equal(msg, "READY=1\nSTATUS=reload failed: plugins[1] "
                             "\"db\": init failed: connection to db:5432 "
                             "refused");
    /* Both new workers are gone, then count: one line says it. */
    assert_int_equal(wait_log("worker 3: ", 2, HOST_TIMEOUT_MS), 0);
    assert_int_equal(wait_log("worker 2: ", 2, HOST_TIMEOUT_MS), 0);
    assert_int_equal(host_log_count(&hp, "connection to db:5432 refused"), 1);
    assert_int_equal(host_log_count(&hp, "error [host] reload failed, the "
                                         "running workers go on: plugins[1] "
                                         "\"db\": init failed: connection "
                                         "to db:5432 refused"),
                     1);
    assert_int_equal(host_log_count(&hp, "quarantine"), 0);
    assert_int_equal(host_log_count(&hp, "(generation 1): draining"), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(get_root(hello, "hello"), 0);
    }
    assert_int_equal(worker_pid(0), w0);
    assert_int_equal(worker_pid(1), w1);
    assert_int_equal(kill(w0, 0), 0);
    assert_int_equal(kill(w1, 0), 0);

    set_config("db", "{}");
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    assert_int_equal(wait_notify("READY=1", msg, sizeof(msg),
                                 HOST_TIMEOUT_MS),
                     0);
    assert_string_equal(msg, "READY=1\nSTATUS=reloaded: generation 2");
    assert_int_equal(wait_log("(generation 1): draining", 2,
                              HOST_TIMEOUT_MS),
                     0);
    assert_int_equal(get_root(hello, "hello"), 0);
    stop_ok();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_quarantine_keeps_the_others,
                                  teardown),
        cmocka_unit_test_teardown(
            test_reload_lifts_quarantine_of_a_changed_plugin, teardown),
        cmocka_unit_test_setup_teardown(test_failed_init_refuses_the_reload,
                                        setup_notify, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
