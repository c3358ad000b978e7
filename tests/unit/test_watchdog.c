/*
 * tests/unit/test_watchdog.c: the blocking watchdog on a real loop
 * (epoll.so, the real clock: stalls are real sleeps), with stderr
 * captured. The threshold is 30 ms; a stall sleeps 90 ms. The watchdog
 * must not change what it watches: a sleep it reports sleeps its time.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include "clock.h"
#include "log.h"
#include "loader.h"
#include "loop.h"
#include "watchdog.h"

#define THRESHOLD_MS 30
#define STALL_MS (3 * THRESHOLD_MS)

static struct ioloop_backend_lib lib;
static ioloop_loop_t *loop;
static struct ioloop_owner owner;
static int chain_left; /* short callbacks still to run */
static int pipe_fds[2];
static char log_text[16384];

/* Sleeps ms of real time, whatever interrupts nanosleep. */
static void
sleep_ms(int ms)
{
    ioloop_time_t end = ioloop__monotonic_now() + ms * IOLOOP_NS_PER_MS;
    ioloop_time_t left;

    while ((left = end - ioloop__monotonic_now()) > 0) {
        struct timespec ts = {left / IOLOOP_NS_PER_S,
                              left % IOLOOP_NS_PER_S};

        nanosleep(&ts, NULL);
    }
}

/* Not static: with -rdynamic its name shows in the dumped stack. */
int wd_test_stall_timer(ioloop_loop_t *l, void *arg);

int
wd_test_stall_timer(ioloop_loop_t *l, void *arg)
{
    (void) arg;
    sleep_ms(STALL_MS);
    ioloop_stop(l);
    return 0;
}

static int
stall_then_stall_again(ioloop_loop_t *l, void *arg)
{
    (void) arg;
    sleep_ms(STALL_MS);
    ioloop_add_callback(l, wd_test_stall_timer, NULL);
    return 0;
}

static int
stall_handler(ioloop_loop_t *l, int fd, unsigned events, void *arg)
{
    char c;

    (void) events;
    (void) arg;
    assert_int_equal(read(fd, &c, 1), 1);
    sleep_ms(STALL_MS);
    ioloop_stop(l);
    return 0;
}

/* What one nanosleep in a stalled callback returned, and took. */
static int nap_rc, nap_errno;
static ioloop_time_t nap_took;

/* One nanosleep of 500 ms, not retried: a signal would cut it short. */
static int
nap_once(ioloop_loop_t *l, void *arg)
{
    struct timespec ts = {0, 500 * 1000000L};
    ioloop_time_t t0 = ioloop__monotonic_now();

    (void) arg;
    nap_rc = nanosleep(&ts, NULL);
    nap_errno = errno;
    nap_took = ioloop__monotonic_now() - t0;
    ioloop_stop(l);
    return 0;
}

/* Busy on the CPU, no system call, for STALL_MS. */
static int
spin(ioloop_loop_t *l, void *arg)
{
    ioloop_time_t end = ioloop__monotonic_now() + STALL_MS * IOLOOP_NS_PER_MS;

    (void) arg;
    while (ioloop__monotonic_now() < end) {
    }
    ioloop_stop(l);
    return 0;
}

/* Many short runs, one after another, last far past the threshold. */
static int
short_callback(ioloop_loop_t *l, void *arg)
{
    (void) arg;
    sleep_ms(3);
    if (--chain_left > 0) {
        ioloop_add_callback(l, short_callback, NULL);
    } else {
        ioloop_stop(l);
    }
    return 0;
}

static int
stop_cb(ioloop_loop_t *l, void *arg)
{
    (void) arg;
    ioloop_stop(l);
    return 0;
}

static int
setup(void **state)
{
    char err[512];

    (void) state;
    if (ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so", &lib,
                             err, sizeof(err))
        < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    loop = ioloop_loop_new(lib.ops, err, sizeof(err));
    owner = (struct ioloop_owner){.name = "slowplug"};
    log_text[0] = '\0';
    return loop != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
    return 0;
}

/* Runs the loop under a 30 ms watchdog with stderr in log_text. */
static void
run_watched(void)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    assert_int_equal(ioloop__watchdog_start(loop, THRESHOLD_MS, 0), 0);
    assert_int_equal(ioloop_start(loop), 0);
    ioloop__watchdog_stop();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(log_text, 1, sizeof(log_text) - 1, tmp);
    log_text[n] = '\0';
    fclose(tmp);
    fputs(log_text, stderr); /* for whoever reads the test's output */
}

static int
count(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void
test_timer_stall_reported_once_with_stack(void **state)
{
    const char *line, *frame;

    (void) state;
    ioloop__set_owner(loop, &owner);
    ioloop_call_later(loop, IOLOOP_NS_PER_MS, wd_test_stall_timer, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    assert_int_equal(count(log_text, "blocked the loop"), 1);
    line = strstr(log_text, " warn [slowplug] blocked the loop for ");
    assert_non_null(line);
    assert_non_null(strstr(line, " ms in timer (watchdog_ms=30)\n"));
    frame = strstr(log_text, "(wd_test_stall_timer+");
    assert_non_null(frame);
    assert_true(frame > line);
    assert_int_equal(atomic_load(&owner.stalls), 1);
}

static void
test_handler_stall_names_fd(void **state)
{
    char expected[64];

    (void) state;
    assert_int_equal(pipe(pipe_fds), 0);
    assert_int_equal(write(pipe_fds[1], "x", 1), 1);
    ioloop__set_owner(loop, &owner);
    assert_int_equal(ioloop_add_handler(loop, pipe_fds[0], IOLOOP_READ,
                                        stall_handler, NULL),
                     0);
    ioloop__set_owner(loop, NULL);
    run_watched();
    ioloop_remove_handler(loop, pipe_fds[0]);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    snprintf(expected, sizeof(expected), " ms in handler for fd %d ",
             pipe_fds[0]);
    assert_int_equal(count(log_text, "blocked the loop"), 1);
    assert_non_null(strstr(log_text, "[slowplug] blocked the loop for "));
    assert_non_null(strstr(log_text, expected));
    assert_int_equal(atomic_load(&owner.stalls), 1);
}

static void
test_short_callbacks_not_reported(void **state)
{
    (void) state;
    chain_left = 40; /* 40 x 3 ms: four times the threshold in all */
    ioloop__set_owner(loop, &owner);
    ioloop_add_callback(loop, short_callback, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    assert_int_equal(chain_left, 0);
    assert_null(strstr(log_text, "blocked the loop"));
    assert_int_equal(atomic_load(&owner.stalls), 0);
}

/* Back to back: the second stall starts as the first one ends. */
static void
test_two_stalls_two_reports(void **state)
{
    (void) state;
    ioloop__set_owner(loop, &owner);
    ioloop_add_callback(loop, stall_then_stall_again, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    assert_int_equal(count(log_text, "blocked the loop"), 2);
    assert_int_equal(count(log_text, " ms in callback (watchdog_ms=30)"), 2);
    assert_int_equal(atomic_load(&owner.stalls), 2);
}

/* The loop waits 200 ms in epoll_wait: idle, not blocked. */
static void
test_idle_poll_not_reported(void **state)
{
    (void) state;
    ioloop__set_owner(loop, &owner);
    ioloop_call_later(loop, 200 * IOLOOP_NS_PER_MS, stop_cb, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    assert_null(strstr(log_text, "blocked the loop"));
    assert_int_equal(atomic_load(&owner.stalls), 0);
}

/* Start and stop, twice; no signal disposition is touched. */
static void
test_start_stop_twice(void **state)
{
    struct sigaction before, sa;

    (void) state;
    sigaction(IOLOOP_WATCHDOG_SIGNAL, NULL, &before);
    ioloop__watchdog_stop(); /* never started */
    assert_int_equal(ioloop__watchdog_start(loop, 0, 0), 0); /* off */
    ioloop__watchdog_stop();
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ioloop__watchdog_start(loop, THRESHOLD_MS, 0), 0);
        assert_int_equal(ioloop__watchdog_start(loop, THRESHOLD_MS, 0),
                         -EBUSY);
        sigaction(IOLOOP_WATCHDOG_SIGNAL, NULL, &sa);
        assert_true(sa.sa_handler == before.sa_handler);
        ioloop__watchdog_stop();
    }
    ioloop__watchdog_stop();
}

/* The stall is reported while it lasts, and the sleep still sleeps its
 * 500 ms: nanosleep is not restarted after a signal handler even with
 * SA_RESTART, so this failed while the watchdog signalled the thread. */
static void
test_sleep_not_cut_short(void **state)
{
    (void) state;
    ioloop__set_owner(loop, &owner);
    ioloop_add_callback(loop, nap_once, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    assert_int_equal(count(log_text, "blocked the loop"), 1);
    assert_non_null(strstr(log_text, "[slowplug] stack: in system call "));
    assert_int_equal(nap_rc, 0);
    (void) nap_errno;
    assert_true(nap_took >= 500 * IOLOOP_NS_PER_MS);
}

/* A run busy on the CPU is reported; its stack cannot be read from
 * outside, and the report says so. */
static void
test_spin_reported_without_stack(void **state)
{
    (void) state;
    ioloop__set_owner(loop, &owner);
    ioloop_add_callback(loop, spin, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    assert_int_equal(count(log_text, "blocked the loop"), 1);
    assert_non_null(strstr(log_text, "stack: running on the CPU"));
}

/* JSON logs: the stall and its stack are one JSON line each, the frames
 * an array of strings naming the stalled timer. */
static void
test_json_stack_is_one_line(void **state)
{
    char *line, *next;
    int lines = 0, stacks = 0, named = 0;

    (void) state;
    ioloop__log_set_format(1);
    ioloop__set_owner(loop, &owner);
    ioloop_call_later(loop, IOLOOP_NS_PER_MS, wd_test_stall_timer, NULL);
    ioloop__set_owner(loop, NULL);
    run_watched();
    ioloop__log_set_format(0);
    for (line = log_text; *line != '\0'; line = next) {
        json_error_t error;
        json_t *doc, *frames;

        next = strchr(line, '\n');
        assert_non_null(next);
        *next++ = '\0';
        doc = json_loads(line, 0, &error);
        if (doc == NULL) {
            fail_msg("not JSON: %s (%s)", line, error.text);
        }
        frames = json_object_get(doc, "frames");
        if (frames != NULL) {
            stacks++;
            assert_true(json_is_array(frames));
            assert_true(json_array_size(frames) >= 2);
            for (size_t i = 0; i < json_array_size(frames); i++) {
                const char *f = json_string_value(json_array_get(frames, i));

                assert_non_null(f);
                named += strstr(f, "(wd_test_stall_timer+") != NULL;
            }
        }
        json_decref(doc);
        lines++;
    }
    assert_int_equal(lines, 2);
    assert_int_equal(stacks, 1);
    assert_true(named >= 1);
}

/* A stop with a 10 s threshold (a 2.5 s period) does not wait for it. */
static void
test_stop_is_prompt(void **state)
{
    ioloop_time_t t0;

    (void) state;
    assert_int_equal(ioloop__watchdog_start(loop, 10000, 0), 0);
    t0 = ioloop__monotonic_now();
    ioloop__watchdog_stop();
    assert_true(ioloop__monotonic_now() - t0 < 500 * IOLOOP_NS_PER_MS);
}

/* A child inherits the parent's watchdog but not its thread: stop() there
 * must not join a thread that does not exist, and a new one starts. */
static void
test_fork_child_starts_its_own(void **state)
{
    int status;
    pid_t pid;

    (void) state;
#ifdef __SANITIZE_THREAD__
    /* TSan cannot start a thread in the child of a threaded process; the
     * plain and ASan builds run this case. */
    skip();
#endif
    assert_int_equal(ioloop__watchdog_start(loop, THRESHOLD_MS, 0), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(5); /* a hang dies of SIGALRM */
        ioloop__watchdog_stop();
        if (ioloop__watchdog_start(loop, THRESHOLD_MS, 0) != 0) {
            _exit(1);
        }
        ioloop__watchdog_stop();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    ioloop__watchdog_stop();
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_timer_stall_reported_once_with_stack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_stall_names_fd, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_callbacks_not_reported,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_stalls_two_reports, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_poll_not_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_start_stop_twice, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_prompt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sleep_not_cut_short, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spin_reported_without_stack,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_stack_is_one_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_starts_its_own,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
