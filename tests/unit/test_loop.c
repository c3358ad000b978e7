/*
 * tests/unit/test_loop.c: the central loop's semantics
 * (docs/architecture.md, items 1-8, 10, 11) on the scripted fake backend and the fake clock; the
 * cross-thread wake-up on the real epoll.so.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "fakes/fake_backend.h"
#include "loader.h"
#include "log.h"
#include "loop.h"

/* What the callbacks saw, in order. */
static int trace[256];
static int ntrace;
static uint64_t trace_iter[256];

static ioloop_loop_t *
new_fake_loop(void)
{
    char err[256];
    ioloop_loop_t *loop;

    fake_now = 1000 * IOLOOP_NS_PER_S;
    loop = ioloop_loop_new(&fake_backend_ops, err, sizeof(err));
    assert_non_null(loop);
    ioloop__set_clock(loop, fake_clock, NULL);
    ntrace = 0;
    return loop;
}

static void
record(ioloop_loop_t *loop, int id)
{
    trace_iter[ntrace] = ioloop__stats(loop)->iterations;
    trace[ntrace++] = id;
}

static int
cb_record(ioloop_loop_t *loop, void *arg)
{
    record(loop, (int) (intptr_t) arg);
    return 0;
}

static int
cb_stop(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

static int
cb_record_and_add(ioloop_loop_t *loop, void *arg)
{
    record(loop, (int) (intptr_t) arg);
    ioloop_add_callback(loop, cb_record, (void *) (intptr_t) 99);
    return 0;
}

static void
test_callbacks_run_in_order(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();

    (void) state;
    for (intptr_t i = 1; i <= 5; i++) {
        assert_int_equal(ioloop_add_callback(loop, cb_record, (void *) i), 0);
    }
    ioloop_add_callback(loop, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(trace[i], i + 1);
    }
    ioloop_loop_free(loop);
}

static int self_count;

/* Re-adds itself forever; stops the loop at run *arg when arg is set. */
static int
cb_readd_self(ioloop_loop_t *loop, void *arg)
{
    self_count++;
    if (arg != NULL && self_count == *(int *) arg) {
        ioloop_stop(loop);
    }
    return ioloop_add_callback(loop, cb_readd_self, arg);
}

/* A callback added by a callback runs in the next iteration, so one that
 * re-adds itself forever starves neither timers nor I/O. */
static void
test_starvation_guard(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();

    (void) state;
    ioloop_add_callback(loop, cb_record_and_add, (void *) 1);
    ioloop_add_callback(loop, cb_readd_self, NULL);
    ioloop_call_later(loop, 0, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 1); /* 99 was queued but the loop stopped */
    assert_int_equal(self_count, 1);

    ioloop_loop_free(loop);

    /* 99 and 2 run in one iteration, the 99 that 2 added in the next. */
    loop = new_fake_loop();
    self_count = 0;
    ioloop_add_callback(loop, cb_record, (void *) 99);
    ioloop_add_callback(loop, cb_record_and_add, (void *) 2);
    ioloop_add_callback(loop, cb_readd_self, &(int){3});
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 3);
    assert_int_equal(trace[0], 99);
    assert_int_equal(trace[1], 2);
    assert_int_equal(trace[2], 99);
    assert_int_equal(trace_iter[1], trace_iter[0]);
    assert_int_equal(trace_iter[2], trace_iter[1] + 1);
    assert_int_equal(self_count, 3);
    ioloop_loop_free(loop);
}

static int
cb_poll_timeout_probe(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    record(loop, (int) (fake_backend_last()->last_timeout / IOLOOP_NS_PER_MS));
    return 0;
}

/* 0 with callbacks pending; the time to the next deadline; else the cap. */
static void
test_poll_timeout(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct fake_backend *b = fake_backend_last();

    (void) state;
    ioloop_call_later(loop, 250 * IOLOOP_NS_PER_MS, cb_stop, NULL);
    ioloop_add_callback(loop, cb_record, (void *) 1);
    assert_int_equal(ioloop_start(loop), 0);
    /* One poll, until the timer; the stop iteration never polls. */
    assert_int_equal(b->polls, 1);
    assert_int_equal(b->last_timeout, 250 * IOLOOP_NS_PER_MS);
    ioloop_loop_free(loop);

    /* Callbacks always pending: every poll has a timeout of 0. */
    loop = new_fake_loop();
    b = fake_backend_last();
    self_count = 0;
    ioloop_call_later(loop, IOLOOP_NS_PER_S, cb_stop, NULL);
    ioloop_add_callback(loop, cb_readd_self, &(int){5});
    ioloop_start(loop);
    assert_int_equal(b->polls, 4);
    assert_int_equal(b->last_timeout, 0);
    ioloop_loop_free(loop);

    loop = new_fake_loop();
    b = fake_backend_last();
    ioloop_call_later(loop, 250 * IOLOOP_NS_PER_MS, cb_poll_timeout_probe,
                      NULL);
    ioloop_call_later(loop, 250 * IOLOOP_NS_PER_MS, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 1);
    assert_int_equal(trace[0], 250);
    /* A deadline beyond the 60 s cap (libev's) waits the cap, again and
     * again: 120 polls of 60 s, then the timer. */
    b->polls = 0;
    ioloop_call_later(loop, 7200 * IOLOOP_NS_PER_S, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(IOLOOP_MAX_TIMEOUT, 60 * IOLOOP_NS_PER_S);
    assert_int_equal(b->last_timeout, 60 * IOLOOP_NS_PER_S);
    assert_int_equal(b->polls, 120);
    ioloop_loop_free(loop);
}

static void
test_equal_deadline_timers_fifo(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();

    (void) state;
    for (intptr_t i = 1; i <= 10; i++) {
        ioloop_call_at(loop, fake_now + IOLOOP_NS_PER_S, cb_record,
                       (void *) i);
    }
    ioloop_call_at(loop, fake_now + IOLOOP_NS_PER_S / 2, cb_record,
                   (void *) 0);
    ioloop_call_at(loop, fake_now + IOLOOP_NS_PER_S, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 11);
    for (int i = 0; i <= 10; i++) {
        assert_int_equal(trace[i], i);
    }
    ioloop_loop_free(loop);
}

static ioloop_timer_t victim;

static int
cb_cancel_victim(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    record(loop, ioloop_cancel(loop, victim) == 0 ? 1 : -1);
    return 0;
}

static void
test_cancel(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    ioloop_timer_t fired;

    (void) state;
    /* Before fire: never runs. */
    victim = ioloop_call_later(loop, 10, cb_record, (void *) 7);
    assert_int_equal(ioloop_cancel(loop, victim), 0);
    /* After fire: a harmless -ENOENT. */
    fired = ioloop_call_later(loop, 5, cb_record, (void *) 5);
    ioloop_call_later(loop, 20, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 1);
    assert_int_equal(trace[0], 5);
    assert_int_equal(ioloop_cancel(loop, fired), -ENOENT);

    /* From inside another timer due in the same pass. */
    ntrace = 0;
    ioloop_call_later(loop, 10, cb_cancel_victim, NULL);
    victim = ioloop_call_later(loop, 10, cb_record, (void *) 8);
    ioloop_call_later(loop, 10, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 1);
    assert_int_equal(trace[0], 1);
    ioloop_loop_free(loop);
}

static int
cb_add_timer_now(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    record(loop, 1);
    ioloop_call_later(loop, 0, cb_record, (void *) 2);
    return 0;
}

/* Due timers are collected before any runs: a 0-delay timer added by a
 * timer waits for the next iteration. */
static void
test_timer_added_by_timer_runs_next_iteration(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();

    (void) state;
    ioloop_call_later(loop, 0, cb_add_timer_now, NULL);
    ioloop_call_later(loop, 1, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 2);
    assert_int_equal(trace[1], 2);
    assert_true(trace_iter[1] > trace_iter[0]);
    ioloop_loop_free(loop);
}

static void
test_compaction_through_the_loop(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    static ioloop_timer_t h[1200];

    (void) state;
    for (int i = 0; i < 1200; i++) {
        h[i] = ioloop_call_later(loop, (i + 1) * IOLOOP_NS_PER_MS, cb_record,
                                 (void *) (intptr_t) i);
    }
    for (int i = 0; i < 1200; i += 2) {
        assert_int_equal(ioloop_cancel(loop, h[i]), 0);
    }
    for (int i = 1; i < 1200 && i < 1100; i += 2) {
        assert_int_equal(ioloop_cancel(loop, h[i]), 0);
    }
    ioloop_call_later(loop, 2 * IOLOOP_NS_PER_S, cb_stop, NULL);
    ioloop_start(loop);
    /* Only the 50 survivors (odd i >= 1101) fired, in deadline order. */
    assert_int_equal(ntrace, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(trace[i], 1101 + 2 * i);
    }
    ioloop_loop_free(loop);
}

static void
test_stop_before_start(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();

    (void) state;
    ioloop_add_callback(loop, cb_record, (void *) 1);
    ioloop_stop(loop);
    assert_int_equal(ioloop_start(loop), 0); /* returns at once */
    assert_int_equal(ntrace, 0);
    ioloop_add_callback(loop, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0); /* runs normally again */
    assert_int_equal(ntrace, 1);
    ioloop_loop_free(loop);
}

static int
cb_start_again(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    record(loop, ioloop_start(loop));
    ioloop_stop(loop);
    return 0;
}

static void
test_start_while_running(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();

    (void) state;
    ioloop_add_callback(loop, cb_start_again, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 1);
    assert_int_equal(trace[0], -EBUSY);
    ioloop_loop_free(loop);
}

struct pair {
    int fd;
    int other;
    int reuse; /* re-register other's fd number with a fresh handler */
};

static int
io_record(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) events;
    record(loop, fd + (int) (intptr_t) arg);
    return 0;
}

static int
io_remove_other(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct pair *p = arg;

    (void) events;
    record(loop, fd);
    assert_int_equal(ioloop_remove_handler(loop, p->other), 0);
    if (p->reuse) {
        /* As if the fd was closed and the number reused at once. */
        assert_int_equal(ioloop_add_handler(loop, p->other, IOLOOP_READ,
                                            io_record, (void *) 1000),
                         0);
    }
    return 0;
}

/* fd 5's handler removes fd 6, whose event is already in the batch. */
static void
run_stale_case(int reuse)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct fake_backend *b = fake_backend_last();
    struct pair p = {5, 6, reuse};

    assert_int_equal(ioloop_add_handler(loop, 5, IOLOOP_READ, io_remove_other,
                                        &p),
                     0);
    assert_int_equal(ioloop_add_handler(loop, 6, IOLOOP_READ, io_record,
                                        (void *) 0),
                     0);
    fake_backend_script(b, 5, IOLOOP_READ);
    fake_backend_script(b, 6, IOLOOP_READ);
    ioloop_call_later(loop, 1, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 1);
    assert_int_equal(trace[0], 5);
    assert_true(ioloop__stats(loop)->stale_events >= 1);
    if (reuse) {
        /* The new handler gets events from the next poll on. */
        ntrace = 0;
        b->level[6] = IOLOOP_READ;
        ioloop_remove_handler(loop, 5);
        ioloop_call_later(loop, 1, cb_stop, NULL);
        ioloop_start(loop);
        assert_true(ntrace >= 1);
        assert_int_equal(trace[0], 1006);
        ioloop_remove_handler(loop, 6);
    } else {
        ioloop_remove_handler(loop, 5);
    }
    assert_int_equal(ioloop__handler_count(loop), 0);
    ioloop_loop_free(loop);
}

static void
test_removed_handler_gets_no_stale_event(void **state)
{
    (void) state;
    run_stale_case(0);
}

static void
test_reused_fd_gets_no_stale_event(void **state)
{
    (void) state;
    run_stale_case(1);
}

static void
test_handler_registration(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct fake_backend *b = fake_backend_last();

    (void) state;
    assert_int_equal(ioloop_add_handler(loop, 9, IOLOOP_READ, io_record, 0), 0);
    assert_int_equal(ioloop_add_handler(loop, 9, IOLOOP_READ, io_record, 0),
                     -EEXIST);
    assert_int_equal(ioloop_add_handler(loop, -1, IOLOOP_READ, io_record, 0),
                     -EBADF);
    b->fail_add_fd = 10;
    assert_int_equal(ioloop_add_handler(loop, 10, IOLOOP_READ, io_record, 0),
                     -EINVAL);
    assert_int_equal(ioloop_update_handler(loop, 9, IOLOOP_WRITE), 0);
    assert_int_equal(b->interest[9], IOLOOP_WRITE);
    assert_int_equal(ioloop_update_handler(loop, 11, IOLOOP_WRITE), -ENOENT);
    /* Only asked-for bits (plus ERROR/HUP) reach the handler. */
    b->level[9] = IOLOOP_READ;
    ioloop_call_later(loop, 1, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 0);
    b->level[9] = IOLOOP_READ | IOLOOP_HUP;
    ioloop_call_later(loop, 1, cb_stop, NULL);
    ioloop_start(loop);
    assert_true(ntrace >= 1);
    assert_int_equal(ioloop_remove_handler(loop, 9), 0);
    assert_int_equal(ioloop_remove_handler(loop, 9), -ENOENT);
    assert_false(b->registered[9]);
    assert_int_equal(ioloop__handler_count(loop), 0);
    ioloop_loop_free(loop);
}

static int
io_fail(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) events;
    record(loop, fd);
    return (int) (intptr_t) arg;
}

/* Runs fn with stderr captured into buf. */
static void
capture_stderr(void (*fn)(void), char *buf, size_t len)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, len - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

static void
run_failing_handlers(void)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct fake_backend *b = fake_backend_last();
    static struct ioloop_owner owner = {.name = "myplugin"};

    ioloop__set_owner(loop, &owner);
    ioloop_add_handler(loop, 3, IOLOOP_READ, io_fail, (void *) (intptr_t) -EIO);
    ioloop_add_handler(loop, 4, IOLOOP_READ, io_fail,
                       (void *) (intptr_t) -EPIPE);
    ioloop__set_owner(loop, NULL);
    b->level[3] = IOLOOP_READ;
    b->level[4] = IOLOOP_READ;
    ioloop_call_later(loop, 1, cb_stop, NULL);
    ioloop_start(loop);
    ioloop_loop_free(loop);
}

static void
test_failing_handler_is_logged_and_loop_goes_on(void **state)
{
    char log[4096];

    (void) state;
    capture_stderr(run_failing_handlers, log, sizeof(log));
    /* Both handlers ran at every poll until the timer stopped the loop. */
    assert_true(ntrace >= 2);
    assert_non_null(strstr(log, "error [myplugin] handler for fd 3 failed: "
                                "Input/output error"));
    /* EPIPE is a peer that went away: not logged. */
    assert_null(strstr(log, "fd 4"));
}

static ioloop_loop_t *limit_loop;
static int limit_fd, limit_rc;

static void
add_past_limit(void)
{
    limit_rc = ioloop_add_handler(limit_loop, limit_fd, IOLOOP_READ,
                                  io_record, NULL);
}

static pthread_t poster;

static void *
post_later(void *arg)
{
    struct timespec ts = {0, 50 * 1000 * 1000};

    nanosleep(&ts, NULL);
    assert_int_equal(ioloop_add_callback(arg, cb_stop, NULL), 0);
    return NULL;
}

static int
cb_watchdog(ioloop_loop_t *loop, void *arg)
{
    *(int *) arg = 1;
    ioloop_stop(loop);
    return 0;
}

/* A thread's add_callback wakes a poll blocked with no timers (real
 * epoll.so: the fake backend never blocks). */
static void
test_add_callback_from_thread_wakes_poll(void **state)
{
    struct ioloop_backend_lib lib;
    ioloop_loop_t *loop;
    char err[512];
    int timed_out = 0;
    ioloop_time_t t0, t1;

    (void) state;
    assert_int_equal(ioloop__backend_open(IOLOOP_BUILD_DIR
                                          "/backends/epoll.so",
                                          &lib, err, sizeof(err)),
                     0);
    loop = ioloop_loop_new(lib.ops, err, sizeof(err));
    assert_non_null(loop);
    /* A safety net far beyond the 50 ms the thread waits. */
    ioloop_call_later(loop, 10 * IOLOOP_NS_PER_S, cb_watchdog, &timed_out);
    t0 = ioloop_time(loop);
    pthread_create(&poster, NULL, post_later, loop);
    assert_int_equal(ioloop_start(loop), 0);
    pthread_join(poster, NULL);
    t1 = ioloop_time(loop);
    assert_int_equal(timed_out, 0);
    assert_true(t1 - t0 < 5 * IOLOOP_NS_PER_S);
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
}

/* select.so declares max_fd = FD_SETSIZE: a larger fd is refused before
 * it reaches the backend, with a message that names the way out. */
static void
test_fd_past_backend_limit_refused(void **state)
{
    struct ioloop_backend_lib lib;
    ioloop_loop_t *loop;
    char err[512], log[4096];
    int fd;

    (void) state;
    assert_int_equal(ioloop__backend_open(IOLOOP_BUILD_DIR
                                          "/backends/select.so",
                                          &lib, err, sizeof(err)),
                     0);
    loop = ioloop_loop_new(lib.ops, err, sizeof(err));
    assert_non_null(loop);
    fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, (int) lib.ops->max_fd);
    if (fd < 0) {
        ioloop_loop_free(loop);
        ioloop__backend_close(&lib);
        skip(); /* the fd limit is below FD_SETSIZE here */
    }
    limit_loop = loop;
    limit_fd = fd;
    capture_stderr(add_past_limit, log, sizeof(log));
    assert_int_equal(limit_rc, -EINVAL);
    assert_non_null(strstr(log, "backend select cannot watch fd"));
    assert_non_null(strstr(log, "use the poll or epoll backend"));
    close(fd);
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
}

static ioloop_loop_t *signal_target;

static void
on_usr1(int signo)
{
    (void) signo;
    ioloop_add_callback_from_signal(signal_target, cb_record, (void *) 42);
    ioloop_add_callback_from_signal(signal_target, cb_stop, NULL);
}

static void
test_add_callback_from_signal(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct sigaction sa = {0}, old;
    int filled = 0;

    (void) state;
    signal_target = loop;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, &old);
    raise(SIGUSR1);
    sigaction(SIGUSR1, &old, NULL);
    ioloop_call_later(loop, 10 * IOLOOP_NS_PER_S, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 1);
    assert_int_equal(trace[0], 42);
    assert_true(fake_now < 1001 * IOLOOP_NS_PER_S); /* not the 10 s net */
    /* The slots are fixed: the 65th post without a drain is refused. */
    for (int i = 0; i < 100; i++) {
        if (ioloop_add_callback_from_signal(loop, cb_record, NULL) == 0) {
            filled++;
        }
    }
    assert_int_equal(filled, 64);
    ioloop_loop_free(loop);
}

static int periodic_runs;
static ioloop_time_t periodic_at[16];

static int
cb_periodic(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    periodic_at[periodic_runs++] = ioloop_time(loop);
    if (periodic_runs == 2) {
        fake_now += 350 * IOLOOP_NS_PER_MS; /* the loop blocked */
    }
    return 0;
}

/* Missed runs are skipped, not run in a burst. */
static void
test_periodic_skips_missed_runs(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    ioloop_time_t start = fake_now, ms = IOLOOP_NS_PER_MS;
    ioloop_periodic_t *p;

    (void) state;
    periodic_runs = 0;
    p = ioloop_periodic_start(loop, 100 * ms, 0.0, cb_periodic, NULL);
    assert_non_null(p);
    ioloop_call_at(loop, start + 750 * ms, cb_stop, NULL);
    ioloop_start(loop);
    /* 100, 200, (blocked until 550: 300, 400, 500 skipped), 600, 700. */
    assert_int_equal(periodic_runs, 4);
    assert_int_equal(periodic_at[0] - start, 100 * ms);
    assert_int_equal(periodic_at[1] - start, 200 * ms);
    assert_int_equal(periodic_at[2] - start, 600 * ms);
    assert_int_equal(periodic_at[3] - start, 700 * ms);
    ioloop_periodic_stop(loop, p);
    assert_null(ioloop_periodic_start(loop, 0, 0.0, cb_periodic, NULL));
    assert_null(ioloop_periodic_start(loop, ms, 1.0, cb_periodic, NULL));
    ioloop_loop_free(loop);
}

static void
test_periodic_jitter_stays_in_bounds(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    ioloop_time_t ms = IOLOOP_NS_PER_MS, prev;
    ioloop_periodic_t *p;
    int distinct = 0;

    (void) state;
    periodic_runs = 0;
    p = ioloop_periodic_start(loop, 100 * ms, 0.5, cb_record, NULL);
    prev = fake_now;
    for (int i = 0; i < 10; i++) {
        ioloop_time_t gap;

        ntrace = 0;
        ioloop_call_later(loop, 125 * ms + 1, cb_stop, NULL);
        ioloop_start(loop);
        gap = fake_now - prev;
        prev = fake_now;
        (void) gap;
        distinct += (ntrace == 1);
    }
    /* Interval in [75, 125] ms: every 125 ms window holds at most 1 run
     * once scheduling settles, and most hold exactly one. */
    assert_true(distinct >= 5);
    ioloop_periodic_stop(loop, p);
    ioloop_loop_free(loop);
}

static int
cb_stop_periodic_inside(ioloop_loop_t *loop, void *arg)
{
    ioloop_periodic_t **p = arg;

    record(loop, 1);
    ioloop_periodic_stop(loop, *p);
    return 0;
}

static void
test_periodic_stops_itself(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    ioloop_periodic_t *p;

    (void) state;
    p = ioloop_periodic_start(loop, IOLOOP_NS_PER_MS, 0.0,
                              cb_stop_periodic_inside, &p);
    ioloop_call_later(loop, 10 * IOLOOP_NS_PER_MS, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(ntrace, 1);
    ioloop_loop_free(loop);
}

/* A loop belongs to the process that made it. */
static void
test_loop_refused_after_fork(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    int status;
    pid_t pid;

    (void) state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = ioloop_start(loop);
        int rc2 = ioloop_add_handler(loop, 3, IOLOOP_READ, io_record, 0);

        _exit(rc == -ECHILD && rc2 == -ECHILD ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's loop still works. */
    ioloop_add_callback(loop, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    ioloop_loop_free(loop);
}

static int
cb_record_and_call_later_zero(ioloop_loop_t *loop, void *arg)
{
    int id = (int) (intptr_t) arg;

    record(loop, id);
    ioloop_call_later(loop, 0, cb_record, (void *) (intptr_t) (id + 1));
    return 0;
}

/*
 * tornado's order: the due timers are fixed before the iteration's
 * callbacks run, so a call_later(0) made by a callback (1 -> 2) or by a
 * timer (3 -> 4) runs in the next iteration, after the I/O that became
 * ready (fd 7) had its turn.
 */
static void
test_zero_timers_wait_for_ready_io(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct fake_backend *b = fake_backend_last();
    static const int expect[] = {1, 3, 7, 2, 4};

    (void) state;
    assert_int_equal(ioloop_add_handler(loop, 7, IOLOOP_READ, io_record,
                                        (void *) 0),
                     0);
    fake_backend_script(b, 7, IOLOOP_READ);
    ioloop_add_callback(loop, cb_record_and_call_later_zero, (void *) 1);
    ioloop_call_later(loop, 0, cb_record_and_call_later_zero, (void *) 3);
    ioloop_call_later(loop, IOLOOP_NS_PER_MS, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(trace[i], expect[i]);
    }
    assert_int_equal(trace_iter[2], trace_iter[0]);
    assert_int_equal(trace_iter[3], trace_iter[0] + 1);
    assert_int_equal(trace_iter[4], trace_iter[0] + 1);
    ioloop_loop_free(loop);
}

static int rearm_left;

static int
cb_rearm_zero(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    record(loop, 100);
    if (--rearm_left > 0) {
        ioloop_call_later(loop, 0, cb_rearm_zero, NULL);
    } else {
        ioloop_stop(loop);
    }
    return 0;
}

/* A timer that re-arms itself with delay 0 does not starve ready I/O:
 * the fd's handler runs once between any two of its runs. */
static void
test_rearming_zero_timer_does_not_starve_io(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    struct fake_backend *b = fake_backend_last();

    (void) state;
    assert_int_equal(ioloop_add_handler(loop, 9, IOLOOP_READ, io_record,
                                        (void *) 0),
                     0);
    b->level[9] = IOLOOP_READ;
    rearm_left = 5;
    ioloop_call_later(loop, 0, cb_rearm_zero, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ntrace, 9);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(trace[i], i % 2 == 0 ? 100 : 9);
    }
    ioloop_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_run_in_order),
        cmocka_unit_test(test_starvation_guard),
        cmocka_unit_test(test_poll_timeout),
        cmocka_unit_test(test_equal_deadline_timers_fifo),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_timer_added_by_timer_runs_next_iteration),
        cmocka_unit_test(test_compaction_through_the_loop),
        cmocka_unit_test(test_zero_timers_wait_for_ready_io),
        cmocka_unit_test(test_rearming_zero_timer_does_not_starve_io),
        cmocka_unit_test(test_stop_before_start),
        cmocka_unit_test(test_start_while_running),
        cmocka_unit_test(test_removed_handler_gets_no_stale_event),
        cmocka_unit_test(test_reused_fd_gets_no_stale_event),
        cmocka_unit_test(test_handler_registration),
        cmocka_unit_test(test_failing_handler_is_logged_and_loop_goes_on),
        cmocka_unit_test(test_add_callback_from_thread_wakes_poll),
        cmocka_unit_test(test_fd_past_backend_limit_refused),
        cmocka_unit_test(test_add_callback_from_signal),
        cmocka_unit_test(test_periodic_skips_missed_runs),
        cmocka_unit_test(test_periodic_jitter_stays_in_bounds),
        cmocka_unit_test(test_periodic_stops_itself),
        cmocka_unit_test(test_loop_refused_after_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
