/*
 * tests/integration/test_workers.c: the master/worker process model with
 * the real host: workers share the load; a worker killed under load is
 * restarted while the others answer; a plugin that crashes its worker at
 * every connection is quarantined by name; SIGHUP under a wrk run loses
 * no request; a broken manifest on SIGHUP leaves the old generation
 * serving; SIGTERM drains an in-flight request; -s stop|reload; a plugin
 * config that fails init stops the master before any fork.
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

#include "client.h"
#include "fixture.h"
#include "host_process.h"

#define HELLO HOST_HELLO_ENTRY
#define MODULES IOLOOP_BUILD_DIR "/tests/modules"

static const char *backend = "epoll";

static int
start_workers(const char *extra, const char *plugins, int workers_ready)
{
    int rc = host_start_ex(&hp, backend, extra, plugins, 0);

    if (rc < 0) {
        return -1;
    }
    return wait_log("started: backend", workers_ready, 5000);
}

/* Counts the sockets pid has open. */
static int
sockets_of(pid_t pid)
{
    char cmd[128], line[64];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd),
             "ls -l /proc/%d/fd 2>/dev/null | grep -c socket:", (int) pid);
    f = popen(cmd, "r");
    if (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n = atoi(line);
    }
    if (f != NULL) {
        pclose(f);
    }
    return n;
}

/* With 2 workers on one listener, both take connections. */
static void
test_workers_share_load(void **state)
{
    static struct http_conn hc[64];
    pid_t a, b;
    int port, base_a, base_b, n = 0;

    (void) state;
    assert_int_equal(start_workers("{\"workers\": 2, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 2), 0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    a = worker_pid(0);
    b = worker_pid(1);
    assert_true(a > 0 && b > 0 && a != b);
    base_a = sockets_of(a);
    base_b = sockets_of(b);
    /* Hold connections open until each worker holds at least one. */
    while (n < 64 && (sockets_of(a) == base_a || sockets_of(b) == base_b)) {
        static struct http_response r;

        assert_int_equal(http_connect(&hc[n], port), 0);
        assert_int_equal(http_get(&hc[n], "/", &r), 0);
        n++;
    }
    print_message("%d connections until both workers served\n", n);
    assert_true(sockets_of(a) > base_a);
    assert_true(sockets_of(b) > base_b);
    for (int i = 0; i < n; i++) {
        close(hc[i].fd);
    }
    stop_ok();
}

/*
 * A plugin whose init fails (its config passes the schema), with 2
 * workers: the master runs --check's validation, every init and fini,
 * first and exits 1 at once with its one line naming the instance; no
 * worker is forked (before, each worker failed and was restarted, for
 * about 3 s).
 */
static void
test_bad_plugin_config_fails_before_fork(void **state)
{
    static const char echo[] =
        "[{\"name\": \"e\", \"path\": \"" MODULES "/sleeper.so\","
        " \"config\": {\"fail\": \"no database\"}}]";
    struct timespec t0, t1;
    char want[512];
    double ms;

    (void) state;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(host_start_ex(&hp, backend, "{\"workers\": 2}", echo, 0),
                     0);
    assert_int_equal(host_wait(&hp, HOST_TIMEOUT_MS), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3
         + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("exited after %.0f ms\n", ms);
    assert_true(WIFEXITED(hp.status));
    assert_int_equal(WEXITSTATUS(hp.status), 1);
    snprintf(want, sizeof(want),
             "ioloop-host: %s: plugins[0] \"e\": init failed: ", hp.manifest);
    if (strncmp(hp.log, want, strlen(want)) != 0
        || strchr(hp.log, '\n') != hp.log + strlen(hp.log) - 1) {
        host_dump_log(&hp);
        fail_msg("want one line starting with %s", want);
    }
    assert_int_equal(host_log_count(&hp, "worker"), 0);
    assert_true(ms < 2000); /* the old restarts took about 3 s */
}

/* kill -SEGV one worker under load: it is restarted; the other kept
 * answering meanwhile. */
static void
test_killed_worker_restarted(void **state)
{
    pid_t victim, replacement;
    int port, ok = 0, failed = 0;

    (void) state;
    assert_int_equal(start_workers("{\"workers\": 2, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 2), 0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    victim = worker_pid(0);
    for (int i = 0; i < 300; i++) {
        if (i == 50) {
            assert_int_equal(kill(victim, SIGSEGV), 0);
        }
        if (get_root(port, "hello") == 0) {
            ok++;
        } else {
            failed++;
        }
    }
    assert_int_equal(wait_log("worker 0: killed by signal 11", 1, 5000), 0);
    assert_int_equal(wait_log("worker 0: pid", 2, 5000), 0);
    replacement = worker_pid(0);
    assert_true(replacement > 0 && replacement != victim);
    print_message("%d answered, %d failed around the kill\n", ok, failed);
    assert_true(ok >= 290); /* at most what was in flight on the victim */
    assert_int_equal(wait_log("started: backend", 3, 5000), 0);
    assert_int_equal(get_root(port, "hello"), 0);
    stop_ok();
}

/* A plugin that crashes at every connection: named, quarantined, and the
 * master exits non-zero when no worker can run. */
static void
test_crashing_plugin_quarantined(void **state)
{
    int port;

    (void) state;
    assert_int_equal(
        start_workers("{\"workers\": 1}",
                      "[{\"name\": \"crasher\", \"path\": \"" MODULES
                      "/test_plugin_default.so\", \"config\": {\"listen\": "
                      "\"127.0.0.1:0\", \"on_accept\": \"crash\"}}]",
                      1),
        0);
    port = host_port(&hp, "crasher", HOST_TIMEOUT_MS);
    assert_true(port > 0);
    for (int i = 0; i < 100 && host_log_count(&hp, "quarantined") == 0;
         i++) {
        int fd = client_connect(port);

        if (fd >= 0) {
            char c;

            (void) client_read_some(fd, &c, 1, 2000);
            close(fd);
        }
        sleep_ms(20);
    }
    assert_int_equal(wait_log("plugin \"crasher\" crashed its worker 5 times "
                              "in 60 s: quarantined",
                              1, 10000),
                     0);
    assert_int_equal(host_log_count(&hp, "(in plugin \"crasher\")"), 5);
    assert_int_equal(host_wait(&hp, 5000), 0);
    assert_true(WIFEXITED(hp.status));
    assert_int_equal(WEXITSTATUS(hp.status), 1);
    assert_true(host_log_count(&hp, "no worker can run") > 0);
}

/* wrk for seconds against port, SIGHUP after 1 s; its report in out. */
static void
wrk_with_reload(int port, char *out, size_t len)
{
    char cmd[256];
    FILE *f;
    size_t n = 0;

    snprintf(cmd, sizeof(cmd),
             "timeout 20 wrk -t1 -c16 -d3s http://127.0.0.1:%d/ 2>&1", port);
    f = popen(cmd, "r");
    assert_non_null(f);
    sleep_ms(1000);
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    while (n + 1 < len && fgets(out + n, (int) (len - n), f) != NULL) {
        n += strlen(out + n);
    }
    assert_int_equal(pclose(f), 0);
}

/* SIGHUP under load: a new generation, the old one drained, and wrk sees
 * no non-2xx answer and no socket error. */
static void
test_reload_under_load(void **state)
{
    char report[4096];
    pid_t old0;
    int port;

    (void) state;
    if (system("command -v wrk >/dev/null") != 0) {
        fail_msg("wrk is not installed (make setup installs it)");
    }
    assert_int_equal(start_workers("{\"workers\": 2, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 2), 0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    old0 = worker_pid(0);
    wrk_with_reload(port, report, sizeof(report));
    print_message("%s", report);
    assert_int_equal(wait_log("generation 2", 1, 5000), 0);
    assert_int_equal(wait_log("(generation 1): draining", 2, 5000), 0);
    assert_null(strstr(report, "Non-2xx"));
    assert_null(strstr(report, "Socket errors"));
    assert_non_null(strstr(report, "requests in"));
    assert_true(worker_pid(0) != old0 || worker_pid(2) > 0);
    assert_int_equal(get_root(port, "hello"), 0);
    stop_ok();
}

/* A broken manifest on SIGHUP: refused, the old generation serves on. */
static void
test_broken_reload_keeps_serving(void **state)
{
    pid_t w0;
    FILE *f;
    int port;

    (void) state;
    assert_int_equal(start_workers("{\"workers\": 2, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 2), 0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    w0 = worker_pid(0);
    f = fopen(hp.manifest, "w");
    assert_non_null(f);
    fputs("{\"plugins\": [,]}\n", f);
    fclose(f);
    assert_int_equal(kill(hp.pid, SIGHUP), 0);
    assert_int_equal(wait_log("reload refused, the running workers go on", 1,
                              5000),
                     0);
    assert_true(host_log_count(&hp, "syntax error") > 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(get_root(port, "hello"), 0);
    }
    assert_int_equal(worker_pid(0), w0);
    assert_int_equal(host_log_count(&hp, "generation 2"), 0);
    stop_ok();
}

/* SIGTERM to the master: a request in flight in a worker is answered
 * before the worker (and then the master) exits 0. */
static void
test_sigterm_drains_in_flight(void **state)
{
    static struct http_conn hc;
    static struct http_response r;
    int port;

    (void) state;
    assert_int_equal(start_workers("{\"workers\": 1, " HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 1), 0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    assert_int_equal(http_connect(&hc, port), 0);
    assert_int_equal(client_write_all(hc.fd, "GET / HTTP/1.1\r\nHo", 18,
                                      5000),
                     0);
    sleep_ms(100);
    assert_int_equal(kill(hp.pid, SIGTERM), 0);
    assert_int_equal(wait_log("draining", 1, 5000), 0);
    sleep_ms(200);
    assert_true(host_wait(&hp, 0) < 0); /* waits for the request */
    assert_int_equal(client_write_all(hc.fd, "st: x\r\n\r\n", 9, 5000), 0);
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: close"));
    close(hc.fd);
    assert_int_equal(host_wait(&hp, 5000), 0);
    assert_true(WIFEXITED(hp.status));
    assert_int_equal(WEXITSTATUS(hp.status), 0);
}

/* -s reload and -s stop find the master through pid_file. */
static void
test_signal_through_pid_file(void **state)
{
    char extra[256], cmd[512];

    (void) state;
    assert_int_equal(start_workers("{\"workers\": 1, \"pid_file\": "
                                   "\"host.pid\", " HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 1),
                     0);
    snprintf(cmd, sizeof(cmd), "%s --config %s -s reload", HOST_BINARY,
             hp.manifest);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(wait_log("generation 2", 1, 5000), 0);
    snprintf(cmd, sizeof(cmd), "%s --config %s -s stop", HOST_BINARY,
             hp.manifest);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(host_wait(&hp, 5000), 0);
    assert_int_equal(WEXITSTATUS(hp.status), 0);
    snprintf(extra, sizeof(extra), "%s/host.pid", hp.dir);
    assert_int_equal(access(extra, F_OK), -1); /* removed at exit */
}

/* watchdog_ms: a handler that sleeps is named, in a worker, with its
 * stack; the worker serves on. */
static void
test_watchdog_names_the_plugin(void **state)
{
    int port;

    (void) state;
    assert_int_equal(
        start_workers("{\"workers\": 1, \"watchdog_ms\": 50}",
                      "[{\"name\": \"sleeper\", \"path\": \"" MODULES
                      "/test_plugin_default.so\", \"config\": {\"listen\": "
                      "\"127.0.0.1:0\", \"on_accept\": \"sleep\", "
                      "\"sleep_ms\": 300}}]",
                      1),
        0);
    port = host_port(&hp, "sleeper", HOST_TIMEOUT_MS);
    {
        int fd = client_connect(port);
        char c;

        assert_true(fd >= 0);
        assert_true(client_read_some(fd, &c, 1, 5000) <= 0); /* closed */
        close(fd);
    }
    assert_int_equal(wait_log("warn [sleeper] blocked the loop for", 1,
                              5000),
                     0);
    assert_true(host_log_count(&hp, "in handler for fd") > 0);
    assert_true(host_log_count(&hp, "(watchdog_ms=50)") > 0);
    assert_int_equal(host_log_count(&hp, "blocked the loop"), 1);
    stop_ok();
}

/*
 * Workers are visible to plugins: every instance learns its worker index
 * and the count; one that must not split (the manifest's "one_process",
 * or the descriptor's IOLOOP_PLUGIN_ONE_PROCESS) runs in worker 0 only,
 * again in worker 0's replacement; every worker line carries its index.
 */
#define REPORTER(name, so, extra)                                          \
    "{\"name\": \"" name "\", \"path\": \"" MODULES "/test_plugin_" so    \
    ".so\", " extra "\"config\": {\"report_worker\": true}}"

static void
test_one_process_in_worker_zero(void **state)
{
    pid_t victim;

    (void) state;
    assert_int_equal(
        start_workers("{\"workers\": 2}",
                      "[" REPORTER("a", "default", "") ","
                      REPORTER("b", "default", "\"one_process\": true, ")
                      "," REPORTER("c", "one_process", "") "]",
                      2),
        0);
    assert_int_equal(wait_log("w0 info [a] worker 0 of 2", 1, 5000), 0);
    assert_int_equal(wait_log("w1 info [a] worker 1 of 2", 1, 5000), 0);
    assert_int_equal(wait_log("w0 info [b] worker 0 of 2", 1, 5000), 0);
    assert_int_equal(wait_log("w0 info [c] worker 0 of 2", 1, 5000), 0);
    victim = worker_pid(0);
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    assert_int_equal(wait_log("worker 0: killed by signal 9", 1, 5000), 0);
    assert_int_equal(wait_log("w0 info [b] worker 0 of 2", 2, 5000), 0);
    assert_int_equal(wait_log("w0 info [c] worker 0 of 2", 2, 5000), 0);
    assert_int_equal(wait_log("w0 info [a] worker 0 of 2", 2, 5000), 0);
    assert_int_equal(host_log_count(&hp, "[b] worker 1"), 0);
    assert_int_equal(host_log_count(&hp, "[c] worker 1"), 0);
    assert_int_equal(host_log_count(&hp, "w1 info [a] worker 1 of 2"), 1);
    stop_ok();
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_workers_share_load, host_teardown),
        cmocka_unit_test_teardown(test_bad_plugin_config_fails_before_fork,
                                  host_teardown),
        cmocka_unit_test_teardown(test_killed_worker_restarted, host_teardown),
        cmocka_unit_test_teardown(test_crashing_plugin_quarantined,
                                  host_teardown),
        cmocka_unit_test_teardown(test_reload_under_load, host_teardown),
        cmocka_unit_test_teardown(test_broken_reload_keeps_serving,
                                  host_teardown),
        cmocka_unit_test_teardown(test_sigterm_drains_in_flight, host_teardown),
        cmocka_unit_test_teardown(test_signal_through_pid_file, host_teardown),
        cmocka_unit_test_teardown(test_watchdog_names_the_plugin,
                                  host_teardown),
        cmocka_unit_test_teardown(test_one_process_in_worker_zero,
                                  host_teardown),
    };

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
