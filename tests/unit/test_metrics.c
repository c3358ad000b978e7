/*
 * tests/unit/test_metrics.c: the metrics segment and its Prometheus text
 * (host/runtime/metrics.c). Loops run on the fake backend and clock; the text is
 * checked by the strict parser of tests/prom_text.c and, when installed,
 * by the real `promtool check metrics` (Debian package prometheus).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "loader.h"
#include "loop.h"
#include "metrics.h"
#include "prom_text.h"
#include "stream.h"

#define TEXT_MAX (64 * 1024)

/* Every family the host renders, in order, with its type. */
static const char *const families[][2] = {
    {"ioloop_loop_iterations_total", "counter"},
    {"ioloop_poll_wait_seconds_total", "counter"},
    {"ioloop_callbacks_run_total", "counter"},
    {"ioloop_timers_run_total", "counter"},
    {"ioloop_timers_pending", "gauge"},
    {"ioloop_timers_cancelled", "gauge"},
    {"ioloop_timer_compactions_total", "counter"},
    {"ioloop_handlers", "gauge"},
    {"ioloop_watchdog_stalls_total", "counter"},
    {"ioloop_connections_accepted_total", "counter"},
    {"ioloop_connections_open", "gauge"},
    {"ioloop_stream_timeouts_total", "counter"},
    {"ioloop_backend_info", "gauge"},
    {"ioloop_uptime_seconds", "gauge"},
    {"ioloop_worker_restarts_total", "counter"},
    {"ioloop_instance_quarantined", "gauge"},
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

static int runs_left;

static ioloop_loop_t *
new_fake_loop(void)
{
    char err[256];
    ioloop_loop_t *loop;

    fake_now = 1000 * IOLOOP_NS_PER_S;
    loop = ioloop_loop_new(&fake_backend_ops, err, sizeof(err));
    if (loop != NULL) {
        ioloop__set_clock(loop, fake_clock, NULL);
    }
    return loop;
}

static int
cb_nop(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    return 0;
}

/* Re-adds itself until runs_left reaches 0, then stops the loop: one
 * callback per iteration. */
static int
cb_countdown(ioloop_loop_t *loop, void *arg)
{
    if (--runs_left == 0) {
        ioloop_stop(loop);
        return 0;
    }
    return ioloop_add_callback(loop, cb_countdown, arg);
}

/* Runs exactly n iterations (n >= 1). */
static int
run_iterations(ioloop_loop_t *loop, int n)
{
    runs_left = n;
    if (ioloop_add_callback(loop, cb_countdown, NULL) < 0) {
        return -1;
    }
    return ioloop_start(loop);
}

/* A plugin set with the given instance names (no .so behind them). */
static struct ioloop_plugin_set
fake_set(const char *const *names, size_t n)
{
    struct ioloop_plugin_set set = {calloc(n, sizeof(set.v[0])), n};

    assert_non_null(set.v);
    for (size_t i = 0; i < n; i++) {
        set.v[i].owner.name = names[i];
    }
    return set;
}

/* Renders loop's metrics into text (TEXT_MAX) and parses them strictly;
 * with promtool installed it must agree. */
static void
render_and_parse(ioloop_loop_t *loop, char *text, struct prom_doc *doc)
{
    char err[256];
    int n = ioloop__metrics_render(loop, text, TEXT_MAX);

    assert_true(n > 0);
    assert_int_equal(strlen(text), n);
    if (prom_parse(text, doc, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n--- text ---\n%s", err, text);
        fail();
    }
    assert_int_not_equal(prom_promtool_check(text), 0);
}

static double
value(const struct prom_doc *doc, const char *name, const char *labels)
{
    double v = prom_value(doc, name, labels);

    if (isnan(v)) {
        fprintf(stderr, "missing series %s{%s}\n", name, labels);
        fail();
    }
    return v;
}

/* Two slots, each written by its own loop, rendered by the second: every
 * family once, typed as documented, with each worker's values; a retired
 * slot disappears. */
static void
test_two_slots(void **state)
{
    static const char *const names[] = {"hello", "status"};
    struct ioloop_plugin_set set = fake_set(names, 2);
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    ioloop_loop_t *a = new_fake_loop(), *b = new_fake_loop();
    struct ioloop_stats sa;
    ioloop_timer_t t;
    struct prom_doc doc;
    char *text = malloc(TEXT_MAX);

    (void) state;
    assert_non_null(m);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(text);

    /* Worker 0: timers (one cancelled), accepts, streams, stalls. */
    assert_int_equal(ioloop__metrics_attach(a, m, 0), 0);
    ioloop__metrics_set_plugins(a, &set);
    assert_true(ioloop_call_later(a, 0, cb_nop, NULL) != 0);
    assert_true(ioloop_call_later(a, 3600 * IOLOOP_NS_PER_S, cb_nop, NULL)
                != 0);
    t = ioloop_call_later(a, 7200 * IOLOOP_NS_PER_S, cb_nop, NULL);
    assert_int_equal(ioloop_cancel(a, t), 0);
    for (int i = 0; i < 3; i++) {
        ioloop__metrics_count_accept(a);
    }
    ioloop__count_streams(a, 1);
    ioloop__count_streams(a, 1);
    ioloop__count_streams(a, -1);
    ioloop__metrics_count_stall(&set.v[0].owner);
    ioloop__metrics_count_stall(&set.v[0].owner);
    ioloop__metrics_count_stall(&set.v[1].owner);
    ioloop__metrics_count_stall(NULL); /* the host: not counted */
    assert_int_equal(run_iterations(a, 5), 0);
    sa = *ioloop__stats(a);
    ioloop__metrics_detach(a);
    assert_int_equal(ioloop__stats(a)->iterations, sa.iterations);

    /* Worker 1: restarted twice by the master, renders both; the master
     * quarantined "status". */
    ioloop__metrics_note_restart(m, 1);
    ioloop__metrics_note_restart(m, 1);
    set.v[1].quarantined = true;
    ioloop__metrics_set_quarantined(m, &set);
    assert_int_equal(ioloop__metrics_attach(b, m, 1), 0);
    assert_int_equal(run_iterations(b, 2), 0);
    render_and_parse(b, text, &doc);

    /* One sample per worker; for stalls, one per worker and instance:
     * worker 0 has two instances, worker 1 none; for stream timeouts one
     * per worker and reason. */
    assert_int_equal(doc.nfamilies, NFAMILIES);
    for (size_t i = 0; i < NFAMILIES; i++) {
        assert_string_equal(doc.families[i].name, families[i][0]);
        assert_string_equal(doc.families[i].type, families[i][1]);
        assert_int_equal(doc.families[i].nsamples,
                         strcmp(families[i][0],
                                "ioloop_stream_timeouts_total")
                                 == 0
                             ? 6
                             : 2);
    }
    assert_int_equal(value(&doc, "ioloop_loop_iterations_total",
                           "worker=\"0\""),
                     5);
    assert_int_equal(value(&doc, "ioloop_loop_iterations_total",
                           "worker=\"1\""),
                     2);
    assert_int_equal(value(&doc, "ioloop_callbacks_run_total",
                           "worker=\"0\""),
                     sa.callbacks_run);
    assert_int_equal(value(&doc, "ioloop_timers_run_total", "worker=\"0\""),
                     1);
    assert_int_equal(value(&doc, "ioloop_timers_pending", "worker=\"0\""),
                     sa.timers_pending);
    assert_int_equal(value(&doc, "ioloop_timers_cancelled", "worker=\"0\""),
                     sa.timers_cancelled);
    assert_int_equal(value(&doc, "ioloop_timer_compactions_total",
                           "worker=\"0\""),
                     0);
    assert_int_equal(value(&doc, "ioloop_handlers", "worker=\"0\""), 0);
    assert_true(fabs(value(&doc, "ioloop_poll_wait_seconds_total",
                           "worker=\"0\"")
                     - (double) sa.poll_wait_ns / 1e9)
                < 1e-9);
    assert_int_equal(value(&doc, "ioloop_watchdog_stalls_total",
                           "plugin=\"hello\",worker=\"0\""),
                     2);
    assert_int_equal(value(&doc, "ioloop_watchdog_stalls_total",
                           "plugin=\"status\",worker=\"0\""),
                     1);
    assert_int_equal(value(&doc, "ioloop_connections_accepted_total",
                           "worker=\"0\""),
                     3);
    assert_int_equal(value(&doc, "ioloop_connections_open", "worker=\"0\""),
                     1);
    assert_int_equal(value(&doc, "ioloop_connections_accepted_total",
                           "worker=\"1\""),
                     0);
    assert_int_equal(value(&doc, "ioloop_backend_info",
                           "backend=\"fake\",worker=\"0\""),
                     1);
    assert_int_equal(value(&doc, "ioloop_backend_info",
                           "backend=\"fake\",worker=\"1\""),
                     1);
    assert_true(value(&doc, "ioloop_uptime_seconds", "worker=\"1\"") >= 0);
    assert_int_equal(value(&doc, "ioloop_worker_restarts_total",
                           "worker=\"0\""),
                     0);
    assert_int_equal(value(&doc, "ioloop_worker_restarts_total",
                           "worker=\"1\""),
                     2);
    assert_int_equal(value(&doc, "ioloop_instance_quarantined",
                           "instance=\"hello\""),
                     0);
    assert_int_equal(value(&doc, "ioloop_instance_quarantined",
                           "instance=\"status\""),
                     1);

    prom_free(&doc);

    /* Worker 0 is retired: no longer rendered. */
    ioloop__metrics_retire(m, 0);
    render_and_parse(b, text, &doc);
    assert_int_equal(prom_family(&doc, "ioloop_loop_iterations_total")
                         ->nsamples,
                     1);
    assert_int_equal(prom_family(&doc, "ioloop_watchdog_stalls_total")
                         ->nsamples,
                     0);
    assert_int_equal(value(&doc, "ioloop_worker_restarts_total",
                           "worker=\"1\""),
                     2);
    prom_free(&doc);
    ioloop__metrics_detach(b);
    ioloop_loop_free(a);
    ioloop_loop_free(b);
    ioloop__metrics_free(m);
    free(set.v);
    free(text);
}

static int streams_closed;

static void
cb_stream_closed(ioloop_stream_t *s, void *arg)
{
    assert_int_equal(ioloop_stream_error(s), ETIMEDOUT);
    if (++streams_closed == 4) {
        ioloop_stop(arg);
    }
}

static void
cb_stream_read(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    (void) s;
    (void) data;
    (void) len;
    (void) arg;
    fail(); /* nothing is ever sent */
}

/*
 * Real streams on socketpairs time out in worker 0: two idle, one
 * reading, one writing. Each is counted by reason, in the loop's stats
 * and in ioloop_stream_timeouts_total{worker,reason}.
 */
static void
test_stream_timeouts(void **state)
{
    const ioloop_time_t sec = IOLOOP_NS_PER_S;
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    ioloop_loop_t *a = new_fake_loop();
    struct ioloop_stream_options o[4] = {
        {.size = sizeof(o[0]), .idle_timeout = sec},
        {.size = sizeof(o[0]), .idle_timeout = 2 * sec},
        {.size = sizeof(o[0]), .read_timeout = sec},
        {.size = sizeof(o[0]), .write_timeout = sec,
         .max_buffer_size = 16 << 20},
    };
    size_t big = 8 << 20;
    char *junk = calloc(1, big), *text = malloc(TEXT_MAX);
    ioloop_stream_t *s[4];
    struct prom_doc doc;
    int sv[4][2];

    (void) state;
    assert_non_null(m);
    assert_non_null(a);
    assert_non_null(junk);
    assert_non_null(text);
    assert_int_equal(ioloop__metrics_attach(a, m, 0), 0);
    streams_closed = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(socketpair(AF_UNIX,
                                    SOCK_STREAM | SOCK_NONBLOCK
                                        | SOCK_CLOEXEC,
                                    0, sv[i]),
                         0);
        o[i].close_cb = cb_stream_closed;
        o[i].arg = a;
        s[i] = ioloop_stream_new(a, sv[i][0], &o[i]);
        assert_non_null(s[i]);
    }
    assert_int_equal(ioloop_stream_read_until(s[2], "\n", 1, cb_stream_read),
                     0);
    assert_int_equal(ioloop_stream_write(s[3], junk, big, NULL), 0);
    assert_true(ioloop_stream_pending(s[3]) > 0);
    assert_int_equal(ioloop_start(a), 0);
    assert_int_equal(streams_closed, 4);
    assert_int_equal(ioloop__stats(a)->stream_timeouts[0], 2);
    assert_int_equal(ioloop__stats(a)->stream_timeouts[1], 1);
    assert_int_equal(ioloop__stats(a)->stream_timeouts[2], 1);

    render_and_parse(a, text, &doc);
    assert_int_equal(prom_family(&doc, "ioloop_stream_timeouts_total")
                         ->nsamples,
                     3);
    assert_int_equal(value(&doc, "ioloop_stream_timeouts_total",
                           "reason=\"idle\",worker=\"0\""),
                     2);
    assert_int_equal(value(&doc, "ioloop_stream_timeouts_total",
                           "reason=\"read\",worker=\"0\""),
                     1);
    assert_int_equal(value(&doc, "ioloop_stream_timeouts_total",
                           "reason=\"write\",worker=\"0\""),
                     1);
    prom_free(&doc);
    ioloop__metrics_detach(a);
    ioloop_loop_free(a);
    ioloop__metrics_free(m);
    for (int i = 0; i < 4; i++) {
        close(sv[i][1]);
    }
    free(junk);
    free(text);
}

/*
 * A master's segment: 2 workers, 4 slots. Worker 0 runs in slot 0, is
 * replaced by a reload into slot 2 (both live for a while, then slot 0
 * retired), and crashes and restarts in slot 2: its series keep the label
 * worker="0" throughout and no counter goes back; stalls follow the
 * instance name.
 */
static void
test_generations_keep_counters(void **state)
{
    static const char *const gen1[] = {"hello"};
    static const char *const gen2[] = {"status", "hello"};
    struct ioloop_plugin_set set1 = fake_set(gen1, 1);
    struct ioloop_plugin_set set2 = fake_set(gen2, 2);
    struct ioloop_metrics *m = ioloop__metrics_create(4);
    ioloop_loop_t *a = new_fake_loop(), *b = new_fake_loop();
    ioloop_loop_t *c = new_fake_loop();
    char *text = malloc(TEXT_MAX);
    struct prom_doc doc;
    double iterations;

    (void) state;
    assert_non_null(m);
    assert_non_null(text);
    assert_int_equal(ioloop__metrics_set_workers(m, 0), -EINVAL);
    assert_int_equal(ioloop__metrics_set_workers(m, 5), -EINVAL);
    assert_int_equal(ioloop__metrics_set_workers(m, 2), 0);

    /* Generation 1 in slot 0. */
    assert_int_equal(ioloop__metrics_attach(a, m, 0), 0);
    ioloop__metrics_set_plugins(a, &set1);
    assert_int_equal(run_iterations(a, 5), 0);
    for (int i = 0; i < 3; i++) {
        ioloop__metrics_count_accept(a);
    }
    ioloop__metrics_count_stall(&set1.v[0].owner);
    ioloop__metrics_count_stall(&set1.v[0].owner);
    ioloop__metrics_detach(a);

    /* Generation 2 in slot 2 while slot 0 still drains: one series. */
    assert_int_equal(ioloop__metrics_attach(b, m, 2), 0);
    ioloop__metrics_set_plugins(b, &set2);
    assert_int_equal(run_iterations(b, 2), 0);
    ioloop__metrics_count_accept(b);
    ioloop__metrics_count_stall(&set2.v[1].owner);
    render_and_parse(b, text, &doc);
    assert_int_equal(prom_family(&doc, "ioloop_loop_iterations_total")
                         ->nsamples,
                     1);
    iterations = value(&doc, "ioloop_loop_iterations_total", "worker=\"0\"");
    assert_true(iterations >= 7);
    assert_int_equal(value(&doc, "ioloop_connections_accepted_total",
                           "worker=\"0\""),
                     4);
    assert_int_equal(value(&doc, "ioloop_watchdog_stalls_total",
                           "plugin=\"hello\",worker=\"0\""),
                     3);
    assert_int_equal(value(&doc, "ioloop_watchdog_stalls_total",
                           "plugin=\"status\",worker=\"0\""),
                     0);
    assert_int_equal(prom_family(&doc, "ioloop_backend_info")->nsamples, 1);
    prom_free(&doc);

    /* Slot 0 drained; slot 2's worker crashes and restarts there. */
    ioloop__metrics_retire(m, 0);
    ioloop__metrics_detach(b);
    ioloop__metrics_note_restart(m, 2);
    assert_int_equal(ioloop__metrics_attach(c, m, 2), 0);
    ioloop__metrics_set_plugins(c, &set2);
    assert_int_equal(run_iterations(c, 1), 0);
    render_and_parse(c, text, &doc);
    assert_true(value(&doc, "ioloop_loop_iterations_total", "worker=\"0\"")
                > iterations);
    assert_int_equal(value(&doc, "ioloop_connections_accepted_total",
                           "worker=\"0\""),
                     4);
    assert_int_equal(value(&doc, "ioloop_watchdog_stalls_total",
                           "plugin=\"hello\",worker=\"0\""),
                     3);
    assert_int_equal(value(&doc, "ioloop_worker_restarts_total",
                           "worker=\"0\""),
                     1);
    assert_true(isnan(prom_value(&doc, "ioloop_loop_iterations_total",
                                 "worker=\"2\"")));
    prom_free(&doc);
    ioloop__metrics_detach(c);
    ioloop_loop_free(a);
    ioloop_loop_free(b);
    ioloop_loop_free(c);
    ioloop__metrics_free(m);
    free(set1.v);
    free(set2.v);
    free(text);
}

/* watchdog_kill_ms: the watchdog publishes a long run of an instance;
 * the master reads it for that worker's pid only. */
static void
test_blocked(void **state)
{
    static const char *const names[] = {"hello", "sleeper"};
    struct ioloop_plugin_set set = fake_set(names, 2);
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    ioloop_loop_t *loop = new_fake_loop();
    char plugin[64];

    (void) state;
    ioloop__metrics_note_blocked(&set.v[1].owner, 42); /* not attached */
    assert_int_equal(ioloop__metrics_attach(loop, m, 1), 0);
    assert_int_equal(ioloop__metrics_blocked(m, 1, getpid(), plugin,
                                             sizeof(plugin)),
                     0);
    ioloop__metrics_set_plugins(loop, &set);
    ioloop__metrics_note_blocked(&set.v[1].owner, 12345);
    assert_int_equal(ioloop__metrics_blocked(m, 1, getpid(), plugin,
                                             sizeof(plugin)),
                     12345);
    assert_string_equal(plugin, "sleeper");
    assert_int_equal(ioloop__metrics_blocked(m, 1, getpid() + 1, plugin,
                                             sizeof(plugin)),
                     0);
    assert_int_equal(ioloop__metrics_blocked(m, 0, getpid(), plugin,
                                             sizeof(plugin)),
                     0);
    ioloop__metrics_note_blocked(NULL, 777); /* the host's own code */
    assert_int_equal(ioloop__metrics_blocked(m, 1, getpid(), plugin,
                                             sizeof(plugin)),
                     777);
    assert_string_equal(plugin, "host");
    ioloop__metrics_note_blocked(NULL, 0);
    assert_int_equal(ioloop__metrics_blocked(m, 1, getpid(), plugin,
                                             sizeof(plugin)),
                     0);
    ioloop__metrics_detach(loop);
    /* A new worker in the slot starts unblocked. */
    ioloop__metrics_note_blocked(NULL, 5); /* detached: a no-op */
    assert_int_equal(ioloop__metrics_attach(loop, m, 1), 0);
    assert_int_equal(ioloop__metrics_blocked(m, 1, getpid(), plugin,
                                             sizeof(plugin)),
                     0);
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
    free(set.v);
}

/* snprintf's idiom: NULL/0 sizes, a buffer one byte short is refused
 * with "" in it, the exact size works. */
static void
test_buffer_sizes(void **state)
{
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    ioloop_loop_t *loop = new_fake_loop();
    char *buf;
    int need;

    (void) state;
    assert_int_equal(ioloop__metrics_attach(loop, m, 0), 0);
    need = ioloop__metrics_render(loop, NULL, 0);
    assert_true(need > 0);
    buf = malloc((size_t) need + 1);
    assert_non_null(buf);
    memset(buf, 'x', (size_t) need + 1);
    assert_int_equal(ioloop__metrics_render(loop, buf, (size_t) need),
                     -ENOBUFS);
    assert_string_equal(buf, "");
    assert_int_equal(ioloop__metrics_render(loop, buf, 1), -ENOBUFS);
    assert_int_equal(ioloop__metrics_render(loop, NULL, 10), -EINVAL);
    assert_int_equal(ioloop__metrics_render(loop, buf, (size_t) need + 1),
                     need);
    assert_int_equal(strlen(buf), need);
    free(buf);
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
}

/* A loop with no segment renders nothing and counts nothing; one
 * attachment per process; bad slots and sizes are refused. */
static void
test_unattached_and_errors(void **state)
{
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    ioloop_loop_t *a = new_fake_loop(), *b = new_fake_loop();
    static _Alignas(64) char junk[4096]; /* zeroes: no magic */
    char buf[64];

    (void) state;
    errno = 0;
    assert_null(ioloop__metrics_create(0));
    assert_int_equal(errno, EINVAL);
    assert_null(ioloop__metrics_create(IOLOOP_METRICS_MAX_SLOTS + 1));
    assert_int_equal(ioloop__metrics_render(a, buf, sizeof(buf)), -ENOTSUP);
    ioloop__metrics_count_accept(a); /* no-ops, no crash */
    ioloop__metrics_note_backend(a);
    ioloop__metrics_detach(a);
    ioloop__metrics_note_restart(m, 2);
    assert_int_equal(ioloop__metrics_attach(a, m, 2), -EINVAL);
    assert_int_equal(ioloop__metrics_attach(a, (void *) junk, 0), -EINVAL);
    assert_int_equal(ioloop__metrics_attach(a, m, 0), 0);
    assert_int_equal(ioloop__metrics_attach(b, m, 1), -EBUSY);
    assert_int_equal(ioloop__metrics_attach(a, m, 1), -EBUSY);
    assert_int_equal(ioloop__metrics_render(b, buf, sizeof(buf)), -ENOTSUP);
    ioloop__metrics_detach(a);
    assert_int_equal(ioloop__metrics_attach(b, m, 1), 0);
    ioloop__metrics_detach(b);
    ioloop_loop_free(a);
    ioloop_loop_free(b);
    ioloop__metrics_free(m);
}

/* The segment is shared: a child process (a worker) counts into slot 1,
 * the parent renders it. */
static void
test_shared_across_fork(void **state)
{
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    char *text = malloc(TEXT_MAX), labels[64];
    struct prom_doc doc;
    ioloop_loop_t *loop;
    pid_t pid;
    int status;

    (void) state;
    assert_non_null(m);
    assert_non_null(text);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The worker: no cmocka here, only an exit status. */
        loop = new_fake_loop();
        if (loop == NULL || ioloop__metrics_attach(loop, m, 1) < 0
            || run_iterations(loop, 7) < 0) {
            _exit(1);
        }
        for (int i = 0; i < 5; i++) {
            ioloop__metrics_count_accept(loop);
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    loop = new_fake_loop();
    assert_int_equal(ioloop__metrics_attach(loop, m, 0), 0);
    render_and_parse(loop, text, &doc);
    assert_int_equal(value(&doc, "ioloop_loop_iterations_total",
                           "worker=\"1\""),
                     7);
    assert_int_equal(value(&doc, "ioloop_connections_accepted_total",
                           "worker=\"1\""),
                     5);
    assert_int_equal(value(&doc, "ioloop_loop_iterations_total",
                           "worker=\"0\""),
                     0);
    snprintf(labels, sizeof(labels), "backend=\"fake\",worker=\"1\"");
    assert_int_equal(value(&doc, "ioloop_backend_info", labels), 1);
    prom_free(&doc);
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
    free(text);
}

/* Label values: instance names too long for a slot stay distinct series;
 * a backend name with a quote and a backslash is escaped; a live swap is
 * reported after note_backend. */
static void
test_names(void **state)
{
    static char long1[101], long2[101];
    static const char *const names[] = {long1, long2, "ok"};
    struct ioloop_plugin_set set;
    struct ioloop_backend odd = fake_backend_ops;
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    ioloop_loop_t *loop = new_fake_loop();
    char *text = malloc(TEXT_MAX), err[256], labels[128];
    struct prom_doc doc;

    (void) state;
    memset(long1, 'a', 100);
    memset(long2, 'a', 100);
    long2[99] = 'b';
    set = fake_set(names, 3);
    assert_int_equal(ioloop__metrics_attach(loop, m, 0), 0);
    ioloop__metrics_set_plugins(loop, &set);
    ioloop__metrics_count_stall(&set.v[1].owner);

    odd.name = "we\"ird\\one";
    assert_int_equal(ioloop__switch_backend(loop, &odd, err, sizeof(err)),
                     0);
    ioloop__metrics_note_backend(loop);
    render_and_parse(loop, text, &doc);
    assert_int_equal(prom_family(&doc, "ioloop_watchdog_stalls_total")
                         ->nsamples,
                     3);
    snprintf(labels, sizeof(labels), "plugin=\"%.61s~1\",worker=\"0\"",
             long2);
    assert_int_equal(value(&doc, "ioloop_watchdog_stalls_total", labels), 1);
    assert_int_equal(value(&doc, "ioloop_backend_info",
                           "backend=\"we\\\"ird\\\\one\",worker=\"0\""),
                     1);
    prom_free(&doc);
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
    free(set.v);
    free(text);
}

/* The strict parser itself: what it must accept and refuse. */
static void
test_parser_is_strict(void **state)
{
    static const char *const good[] = {
        "",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n",
        "# TYPE g gauge\n# HELP g G \\\\ \\n.\ng{x=\"1\",y=\"a\\\"b\"} -2.5e3\n"
        "g{x=\"2\"} NaN\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 2\nh_count 1\n",
        "# some comment\n\n# HELP e E.\n# TYPE e gauge\n",
    };
    static const char *const bad[] = {
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a_total A.\na_total 1\n",
        "# HELP a A.\n# TYPE a counter\na 1\n",
        "# HELP a_total A.\n# TYPE a_total gauge\na_total 1\n",
        "# HELP a_total A.\n# HELP a_total A.\n# TYPE a_total counter\n",
        "# HELP a_total A.\n# TYPE a_total counter\n# TYPE a_total counter\n",
        "# HELP g G.\n# TYPE g gauge\ng 1\n# HELP g G.\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"1\"} 1\ng{x=\"1\"} 2\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"1\",y=\"2\"} 1\n"
        "g{y=\"2\",x=\"1\"} 2\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"1\",x=\"2\"} 1\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=1} 1\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"1\",} 1\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"1\"}  1\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"1\"} 1 1700000000\n",
        "# HELP g G.\n# TYPE g gauge\ng{x=\"\\t\"} 1\n",
        "# HELP g G.\n# TYPE g gauge\ng{__x=\"1\"} 1\n",
        "# HELP g G.\n# TYPE g gauge\ng{1x=\"1\"} 1\n",
        "# HELP g G.\n# TYPE g gauge\ng 0x10\n",
        "# HELP g G.\n# TYPE g gauge\ng 1.2.3\n",
        "# HELP g G.\n# TYPE g gauge\ng inf\n",
        "# HELP g G.\n# TYPE g gauge\ng\n",
        "# HELP 1g G.\n# TYPE 1g gauge\n",
        "# HELP g G.\n# TYPE g gauges\n",
        "# HELP g\n# TYPE g gauge\n",
        "# HELP g G \\t.\n# TYPE g gauge\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
        "# HELP g G.\n# TYPE g gauge\n# HELP f F.\n# TYPE f gauge\n"
        "g 1\nf 1\ng 2\n",
        "# HELP g G.\n# TYPE g gauge\nh 1\n",
    };
    struct prom_doc doc;
    char err[256];

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (prom_parse(good[i], &doc, err, sizeof(err)) < 0) {
            fprintf(stderr, "good[%zu] refused: %s\n", i, err);
            fail();
        }
        prom_free(&doc);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (prom_parse(bad[i], &doc, err, sizeof(err)) == 0) {
            fprintf(stderr, "bad[%zu] accepted:\n%s\n", i, bad[i]);
            prom_free(&doc);
            fail();
        }
    }
    /* The promtool bridge, when there is one, reports a complaint. */
    if (prom_promtool_check(good[1]) >= 0) {
        assert_int_equal(prom_promtool_check(good[1]), 1);
        assert_int_equal(prom_promtool_check(bad[3]), 0);
    }
}

/*
 * Plugin counters (counter_register/add): owned by the instance current
 * at registration, rendered after the host's families, each family once
 * with its series from every slot; bad names refused, the table bounded.
 */
static void
test_plugin_counters(void **state)
{
    static const char *const names[] = {"hello", "other"};
    struct ioloop_plugin_set set = fake_set(names, 2);
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    ioloop_loop_t *a = new_fake_loop(), *b = new_fake_loop();
    const struct ioloop_owner *prev;
    const char *help = "Requests.";
    char *text = malloc(TEXT_MAX);
    struct prom_doc doc;
    int ok, bad, shed, b_ok, b_shed, h;

    (void) state;
    assert_non_null(m);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(text);
    assert_int_equal(ioloop__metrics_counter_register(a, "x_total", help,
                                                      NULL, NULL),
                     -ENOTSUP);

    assert_int_equal(ioloop__metrics_attach(a, m, 0), 0);
    prev = ioloop__set_owner(a, &set.v[0].owner);
    ok = ioloop__metrics_counter_register(a, "ioloop_http_requests_total",
                                          help, "code", "2xx");
    bad = ioloop__metrics_counter_register(a, "ioloop_http_requests_total",
                                           help, "code", "4xx");
    shed = ioloop__metrics_counter_register(a, "x_shed_total", "Shed.",
                                            NULL, NULL);
    assert_true(ok >= 0 && bad >= 0 && shed >= 0);
    /* Refused: not a metric name, no _total, a host family, a reserved
     * or bad label, a help that needs escaping or differs, half a label. */
    assert_int_equal(ioloop__metrics_counter_register(a, "bad name_total",
                                                      help, NULL, NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "requests", help,
                                                      NULL, NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "_total", help,
                                                      NULL, NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(
                         a, "ioloop_loop_iterations_total", help, NULL,
                         NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "y_total", help,
                                                      "worker", "1"),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "y_total", help,
                                                      "instance", "1"),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "y_total", help,
                                                      "1x", "1"),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "y_total", "a\nb",
                                                      NULL, NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(
                         a, "ioloop_http_requests_total", "Other help.",
                         "code", "5xx"),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_register(a, "y_total", help,
                                                      "code", NULL),
                     -EINVAL);
    ioloop__set_owner(a, prev);
    ioloop__metrics_counter_add(a, ok, 3);
    ioloop__metrics_counter_add(a, bad, 1);
    ioloop__metrics_counter_add(a, shed, 2);
    ioloop__metrics_counter_add(a, -1, 100);    /* failed registration */
    ioloop__metrics_counter_add(a, 1000, 100);  /* not a handle */
    ioloop__metrics_detach(a);

    /* Worker 1: another instance, the families in the other order. */
    assert_int_equal(ioloop__metrics_attach(b, m, 1), 0);
    prev = ioloop__set_owner(b, &set.v[1].owner);
    b_shed = ioloop__metrics_counter_register(b, "x_shed_total", "Shed.",
                                              NULL, NULL);
    b_ok = ioloop__metrics_counter_register(b, "ioloop_http_requests_total",
                                            help, "code", "2xx");
    ioloop__set_owner(b, prev);
    ioloop__metrics_counter_add(b, b_ok, 7);
    ioloop__metrics_counter_add(b, b_shed, 1);
    render_and_parse(b, text, &doc);
    assert_int_equal(doc.nfamilies, NFAMILIES + 2);
    assert_int_equal(value(&doc, "ioloop_http_requests_total",
                           "code=\"2xx\",instance=\"hello\",worker=\"0\""),
                     3);
    assert_int_equal(value(&doc, "ioloop_http_requests_total",
                           "code=\"4xx\",instance=\"hello\",worker=\"0\""),
                     1);
    assert_int_equal(value(&doc, "ioloop_http_requests_total",
                           "code=\"2xx\",instance=\"other\",worker=\"1\""),
                     7);
    assert_int_equal(value(&doc, "x_shed_total",
                           "instance=\"hello\",worker=\"0\""),
                     2);
    assert_int_equal(value(&doc, "x_shed_total",
                           "instance=\"other\",worker=\"1\""),
                     1);
    assert_int_equal(prom_family(&doc, "ioloop_http_requests_total")
                         ->nsamples,
                     3);
    prom_free(&doc);

    /* The table is bounded. The same series registered again is the same
     * handle, also by the next worker in the slot, which carries on from
     * its predecessor's total. */
    for (h = 2; h < IOLOOP_METRICS_MAX_SERIES; h++) {
        char v[16];

        snprintf(v, sizeof(v), "%d", h);
        assert_int_equal(ioloop__metrics_counter_register(b, "z_total", help,
                                                          "n", v),
                         h);
    }
    assert_int_equal(ioloop__metrics_counter_register(b, "z_total", help,
                                                      "n", "x"),
                     -ENOSPC);
    ioloop__metrics_detach(b);
    assert_int_equal(ioloop__metrics_attach(b, m, 1), 0);
    prev = ioloop__set_owner(b, &set.v[1].owner);
    assert_int_equal(ioloop__metrics_counter_register(
                         b, "ioloop_http_requests_total", help, "code",
                         "2xx"),
                     b_ok);
    ioloop__set_owner(b, prev);
    ioloop__metrics_counter_add(b, b_ok, 1);
    render_and_parse(b, text, &doc);
    assert_int_equal(value(&doc, "ioloop_http_requests_total",
                           "code=\"2xx\",instance=\"other\",worker=\"1\""),
                     8);
    prom_free(&doc);
    ioloop__metrics_detach(b);

    ioloop_loop_free(a);
    ioloop_loop_free(b);
    ioloop__metrics_free(m);
    free(set.v);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_slots),
        cmocka_unit_test(test_generations_keep_counters),
        cmocka_unit_test(test_stream_timeouts),
        cmocka_unit_test(test_blocked),
        cmocka_unit_test(test_buffer_sizes),
        cmocka_unit_test(test_unattached_and_errors),
        cmocka_unit_test(test_shared_across_fork),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_plugin_counters),
        cmocka_unit_test(test_parser_is_strict),
    };

    if (prom_promtool_check("") < 0) {
        fprintf(stderr, "promtool not installed (Debian package "
                        "prometheus): the strict parser alone checks\n");
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
