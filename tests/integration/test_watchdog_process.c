/*
 * tests/integration/test_watchdog_process.c: the watchdog in real worker
 * processes. It observes without disturbing: a handler's 2 s nanosleep,
 * measured inside the plugin, still takes 2 s and returns 0 while the
 * watchdog reports the stall and its stack. watchdog_kill_ms: a worker
 * blocked longer is replaced by the master, which names the plugin, and
 * the other plugins serve again.
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
#define SLEEPER(ms)                                                        \
    "{\"name\": \"sleeper\", \"path\": \"" IOLOOP_BUILD_DIR               \
    "/tests/modules/sleeper.so\", \"config\": {\"listen\": "              \
    "\"127.0.0.1:0\", \"sleep_ms\": " #ms "}}"

/* A 2 s sleep in a handler, with watchdog_ms 50: reported while it lasts
 * (the warn line and the stack line), and it still sleeps 2 s. Before the
 * watchdog read stacks from outside, its signal cut the sleep short:
 * "slept 0 rc -1 errno 4". */
static void
test_sleep_not_cut_short(void **state)
{
    char line[128] = "";
    long took = -1;
    double ms;
    int fd, port, rc = -2, err = -1, n = 0;
    ssize_t r;

    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 1, \"watchdog_ms\": 50}",
                                   "[" SLEEPER(2000) "]", 0),
                     0);
    assert_int_equal(wait_log("started: backend", 1, HOST_TIMEOUT_MS), 0);
    port = host_port(&hp, "sleeper", HOST_TIMEOUT_MS);
    assert_true(port > 0);
    fd = client_connect(port);
    assert_true(fd >= 0);
    while ((r = client_read_some(fd, line + n, sizeof(line) - 1 - n, 10000))
           > 0) {
        n += (int) r;
    }
    close(fd);
    line[n] = '\0';
    print_message("the plugin says: %s", line);
    assert_int_equal(sscanf(line, "slept %ld rc %d errno %d", &took, &rc,
                            &err),
                     3);
    assert_int_equal(rc, 0);
    assert_int_equal(err, 0);
    assert_true(took >= 1990); /* ms, truncated at both ends */
    assert_int_equal(wait_log("warn [sleeper] blocked the loop for", 1,
                              HOST_TIMEOUT_MS),
                     0);
    assert_true(host_log_count(&hp, "[sleeper] stack: in system call") > 0);
    assert_true(host_log_count(&hp, "sleeper.so(") > 0);
    assert_int_equal(host_stop(&hp, SIGTERM, HOST_TIMEOUT_MS, &ms), 0);
    assert_int_equal(WEXITSTATUS(hp.status), 0);
}

/* watchdog_kill_ms 300: a worker stuck in a 60 s sleep is killed and
 * replaced; the master names the plugin; hello, in the same worker,
 * answers again from the replacement. */
static void
test_hung_worker_replaced(void **state)
{
    struct timespec t0, t1;
    int fd, hello, sleeper, first_pid;
    double ms;

    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 1, "
                                   "\"watchdog_kill_ms\": 300, "
                                   HOST_HELLO_SERVERS "}",
                                   "[" HELLO ", " SLEEPER(60000) "]", 0),
                     0);
    assert_int_equal(wait_log("started: backend", 1, HOST_TIMEOUT_MS), 0);
    hello = host_port(&hp, "host", HOST_TIMEOUT_MS);
    sleeper = host_port(&hp, "sleeper", HOST_TIMEOUT_MS);
    assert_true(hello > 0 && sleeper > 0);
    assert_int_equal(get_root(hello, NULL), 0);
    first_pid = host_log_count(&hp, "worker 0: pid");
    assert_int_equal(first_pid, 1);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    fd = client_connect(sleeper);
    assert_true(fd >= 0);
    assert_int_equal(wait_log("worker 0: plugin \"sleeper\" blocked its "
                              "loop for ",
                              1, 5000),
                     0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("replaced %.0f ms after the connection\n", ms);
    assert_true(ms < 300 + 2000);
    assert_true(host_log_count(&hp, "(watchdog_kill_ms=300): replacing the "
                                    "worker")
                == 1);
    assert_int_equal(wait_log("worker 0: killed by signal 9", 1, 5000), 0);
    assert_true(host_log_count(&hp, "(in plugin \"sleeper\")") >= 1);
    assert_int_equal(wait_log("worker 0: pid", 2, 5000), 0);
    assert_int_equal(wait_log("started: backend", 2, 5000), 0);
    close(fd);
    assert_int_equal(get_root(hello, NULL), 0);
    assert_int_equal(host_stop(&hp, SIGTERM, HOST_TIMEOUT_MS, &ms), 0);
    assert_int_equal(WEXITSTATUS(hp.status), 0);
}

/* watchdog_kill_ms needs workers: refused with one line, exit 1. */
static void
test_kill_needs_workers(void **state)
{
    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"watchdog_kill_ms\": 300, "
                                   HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 0),
                     0);
    assert_int_equal(host_wait(&hp, HOST_TIMEOUT_MS), 0);
    assert_true(WIFEXITED(hp.status));
    assert_int_equal(WEXITSTATUS(hp.status), 1);
    assert_int_equal(host_log_count(&hp, "watchdog_kill_ms: needs "
                                         "\"workers\""),
                     1);
    assert_int_equal(host_log_count(&hp, "listening on"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sleep_not_cut_short, host_teardown),
        cmocka_unit_test_teardown(test_hung_worker_replaced, host_teardown),
        cmocka_unit_test_teardown(test_kill_needs_workers, host_teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
