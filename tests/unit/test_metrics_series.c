/*
 * tests/unit/test_metrics_series.c: the registered series of the metrics
 * segment (host/runtime/metrics_series.c): counters, gauges and histograms
 * with labels, their rules and limits, their hot calls, their text (checked
 * by the strict parser of tests/prom_text.c and by `promtool check
 * metrics`), across a fork and across the workers of a slot.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "loop.h"
#include "metrics.h"
#include "prom_text.h"

#define TEXT_MAX (512 * 1024)

static const struct ioloop_owner plugin = {.name = "p"};

/* A loop on the fake backend, attached to slot of m, running as the
 * instance "p". */
static ioloop_loop_t *
attached_loop(struct ioloop_metrics *m, unsigned slot)
{
    char err[256];
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));

    if (loop == NULL || ioloop__metrics_attach(loop, m, slot) < 0) {
        return NULL;
    }
    ioloop__set_owner(loop, &plugin);
    return loop;
}

static void
release(ioloop_loop_t *loop)
{
    ioloop__set_owner(loop, NULL);
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
}

/* Renders loop's metrics and parses them strictly; promtool must agree
 * (and be installed: make test installs it). */
static void
render_and_parse(ioloop_loop_t *loop, char *text, struct prom_doc *doc)
{
    char err[256];
    int n = ioloop__metrics_render(loop, text, TEXT_MAX);

    assert_true(n > 0);
    if (prom_parse(text, doc, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n--- text ---\n%s", err, text);
        fail();
    }
    assert_int_equal(prom_promtool_check(text), 1);
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

/* What registration refuses, and what it takes as the same series. */
static void
test_rules(void **state)
{
    static const double b3[] = {0.1, 1, 10};
    static const double unsorted[] = {1, 0.1};
    static const double repeated[] = {1, 1};
    const double nan_bound[] = {NAN};
    const double inf_bound[] = {INFINITY};
    double many[IOLOOP_METRICS_MAX_BUCKETS + 1];
    const char *nine[2 * 9 + 1];
    char names[9][4], longv[IOLOOP_METRICS_LABELS_LEN], text_err[256];
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    ioloop_loop_t *loop;
    int c, g;

    (void) state;
    assert_non_null(m);
    loop = attached_loop(m, 0);
    assert_non_null(loop);
    /* Names by kind. */
    assert_int_equal(ioloop__metrics_gauge_register(loop, "q_total", "h.",
                                                    NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_labels(loop, "q", "h.", NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_counter_labels(loop, "_total", "h.",
                                                    NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "9q", "h.", NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "ioloop_handlers",
                                                    "h.", NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(loop, NULL, "h.", NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "q", NULL, NULL),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "q", "a\\b",
                                                    NULL),
                     -EINVAL);
    for (int i = 0; i < 3; i++) {
        static const char *const bad[] = {"q_bucket", "q_sum", "q_count"};

        assert_int_equal(ioloop__metrics_histogram_register(
                             loop, bad[i], "h.", NULL, b3, 3),
                         -EINVAL);
    }
    /* Labels. */
    assert_int_equal(ioloop__metrics_gauge_register(
                         loop, "q", "h.",
                         (const char *[]){"worker", "1", NULL}),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(
                         loop, "q", "h.",
                         (const char *[]){"instance", "1", NULL}),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(
                         loop, "q", "h.",
                         (const char *[]){"a", "1", "a", "2", NULL}),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(
                         loop, "q", "h.", (const char *[]){"a", NULL}),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(
                         loop, "q", "h.", (const char *[]){"a-b", "1", NULL}),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(
                         loop, "q", "h.", (const char *[]){"le", "1", NULL},
                         b3, 3),
                     -EINVAL);
    /* Label values and help are UTF-8 (the format's rule): a stray byte,
     * an overlong form, a surrogate, a truncated sequence are refused. */
    for (int i = 0; i < 5; i++) {
        static const char *const bad[] = {"\xff", "\xc0\xaf",
                                          "\xed\xa0\x80", "\xe2\x82",
                                          "a\x80"};

        assert_int_equal(ioloop__metrics_gauge_register(
                             loop, "q", "h.",
                             (const char *[]){"a", bad[i], NULL}),
                         -EINVAL);
        assert_int_equal(ioloop__metrics_gauge_register(loop, "q", bad[i],
                                                        NULL),
                         -EINVAL);
    }
    assert_true(ioloop__metrics_gauge_register(
                    loop, "q_utf8", "\xc3\xa9t\xc3\xa9.",
                    (const char *[]){"a", "\xe2\x82\xac \xf0\x9f\x98\x80",
                                     NULL})
                >= 0);
    for (int i = 0; i < 9; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        nine[2 * i] = names[i];
        nine[2 * i + 1] = "v";
    }
    nine[18] = NULL;
    assert_int_equal(ioloop__metrics_gauge_register(loop, "q", "h.", nine),
                     -EINVAL);
    nine[16] = NULL; /* eight are fine */
    assert_true(ioloop__metrics_gauge_register(loop, "q8", "h.", nine) >= 0);
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    assert_int_equal(ioloop__metrics_gauge_register(
                         loop, "q", "h.", (const char *[]){"a", longv, NULL}),
                     -EINVAL);
    /* Bounds. */
    for (size_t i = 0; i < IOLOOP_METRICS_MAX_BUCKETS + 1; i++) {
        many[i] = (double) i;
    }
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, b3, 0),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, NULL, 3),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, unsorted, 2),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, repeated, 2),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, nan_bound, 1),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, inf_bound, 1),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_histogram_register(
                         loop, "q", "h.", NULL, many,
                         IOLOOP_METRICS_MAX_BUCKETS + 1),
                     -EINVAL);
    assert_true(ioloop__metrics_histogram_register(
                    loop, "q16", "h.", NULL, many, IOLOOP_METRICS_MAX_BUCKETS)
                >= 0);
    /* One family, one type and help; a label set in another order, or
     * registered again, is the same series. */
    c = ioloop__metrics_counter_labels(
        loop, "r_total", "h.", (const char *[]){"b", "2", "a", "1", NULL});
    assert_true(c >= 0);
    assert_int_equal(ioloop__metrics_counter_labels(
                         loop, "r_total", "h.",
                         (const char *[]){"a", "1", "b", "2", NULL}),
                     c);
    assert_int_equal(ioloop__metrics_counter_register(loop, "r_total",
                                                      "other.", "a", "3"),
                     -EINVAL);
    g = ioloop__metrics_gauge_register(loop, "r", "h.", NULL);
    assert_true(g >= 0 && g != c);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "r", "h.",
                                                        NULL, b3, 3),
                     -EINVAL);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "r", "h.", NULL),
                     g);
    release(loop);
    /* Not attached. */
    loop = ioloop_loop_new(&fake_backend_ops, text_err, sizeof(text_err));
    assert_non_null(loop);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "q", "h.", NULL),
                     -ENOTSUP);
    assert_int_equal(ioloop__metrics_histogram_register(loop, "q", "h.",
                                                        NULL, b3, 3),
                     -ENOTSUP);
    ioloop__metrics_gauge_set(loop, 0, 1); /* no-ops */
    ioloop__metrics_observe(loop, 0, 1);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
}

/* The limits: IOLOOP_METRICS_MAX_SERIES series, IOLOOP_METRICS_MAX_CELLS
 * cells; -ENOSPC past them, and the handles before still count. */
static void
test_limits(void **state)
{
    double bounds[IOLOOP_METRICS_MAX_BUCKETS];
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    ioloop_loop_t *loop;
    char v[16];
    int h, n = 0, cells = 0, counters = 0;

    (void) state;
    for (size_t i = 0; i < IOLOOP_METRICS_MAX_BUCKETS; i++) {
        bounds[i] = (double) i;
    }
    assert_non_null(m);
    loop = attached_loop(m, 0);
    assert_non_null(loop);
    /* Cells first: 16-bucket histograms take 18 each. */
    for (;; n++) {
        snprintf(v, sizeof(v), "%d", n);
        h = ioloop__metrics_histogram_register(
            loop, "big", "h.", (const char *[]){"n", v, NULL}, bounds,
            IOLOOP_METRICS_MAX_BUCKETS);
        if (h < 0) {
            break;
        }
        assert_int_equal(h, n);
        cells += IOLOOP_METRICS_MAX_BUCKETS + 2;
    }
    assert_int_equal(h, -ENOSPC);
    assert_true(cells + IOLOOP_METRICS_MAX_BUCKETS + 2
                > IOLOOP_METRICS_MAX_CELLS);
    /* A counter still fits in the cells left, until the series run out. */
    for (;; n++) {
        snprintf(v, sizeof(v), "%d", n);
        h = ioloop__metrics_counter_register(loop, "small_total", "h.", "n",
                                             v);
        if (h < 0) {
            break;
        }
        counters++;
    }
    assert_int_equal(h, -ENOSPC);
    assert_true(counters > 0);
    assert_true(n == IOLOOP_METRICS_MAX_SERIES
                || cells + counters == IOLOOP_METRICS_MAX_CELLS);
    ioloop__metrics_observe(loop, 0, 3.5);
    ioloop__metrics_observe(loop, -ENOSPC, 1); /* ignored */
    release(loop);

    /* The other slot has room of its own. */
    loop = attached_loop(m, 1);
    assert_non_null(loop);
    assert_int_equal(ioloop__metrics_gauge_register(loop, "g", "h.", NULL),
                     0);
    release(loop);
    ioloop__metrics_free(m);
}

/* Every type's text, the hot calls, label escaping, and calls on a handle
 * of another kind (no-ops). */
static void
test_render(void **state)
{
    static const double bounds[] = {0.005, 0.1, 1};
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    char *text = malloc(TEXT_MAX);
    struct prom_doc doc;
    ioloop_loop_t *loop;
    int c, g, h, h2;

    (void) state;
    assert_non_null(m);
    assert_non_null(text);
    loop = attached_loop(m, 0);
    assert_non_null(loop);
    c = ioloop__metrics_counter_labels(
        loop, "t_requests_total", "Requests.",
        (const char *[]){"verb", "get", "path", "a\"b\\c\nd", NULL});
    g = ioloop__metrics_gauge_register(loop, "t_depth", "Depth.", NULL);
    h = ioloop__metrics_histogram_register(
        loop, "t_seconds", "Latency.", (const char *[]){"op", "r", NULL},
        bounds, 3);
    h2 = ioloop__metrics_histogram_register(
        loop, "t_seconds", "Latency.", (const char *[]){"op", "w", NULL},
        bounds, 3);
    assert_true(c >= 0 && g >= 0 && h >= 0 && h2 >= 0);

    ioloop__metrics_counter_add(loop, c, 5);
    ioloop__metrics_counter_add(loop, c, 2);
    ioloop__metrics_gauge_set(loop, g, 10);
    ioloop__metrics_gauge_add(loop, g, -2.5);
    ioloop__metrics_observe(loop, h, 0.005); /* a bound is inclusive */
    ioloop__metrics_observe(loop, h, 0.05);
    ioloop__metrics_observe(loop, h, 0.5);
    ioloop__metrics_observe(loop, h, 7);
    ioloop__metrics_observe(loop, h, -1);
    ioloop__metrics_observe(loop, h, NAN); /* ignored */
    ioloop__metrics_observe(loop, h, INFINITY);
    /* Another kind's handle, or none: no-ops. */
    ioloop__metrics_counter_add(loop, g, 100);
    ioloop__metrics_counter_add(loop, h, 100);
    ioloop__metrics_gauge_set(loop, c, 100);
    ioloop__metrics_gauge_add(loop, h, 100);
    ioloop__metrics_observe(loop, g, 100);
    ioloop__metrics_observe(loop, -1, 100);
    ioloop__metrics_observe(loop, IOLOOP_METRICS_MAX_SERIES, 100);
    render_and_parse(loop, text, &doc);

    assert_int_equal(value(&doc, "t_requests_total",
                           "instance=\"p\",path=\"a\\\"b\\\\c\\nd\","
                           "verb=\"get\",worker=\"0\""),
                     7);
    assert_true(value(&doc, "t_depth", "instance=\"p\",worker=\"0\"")
                == 7.5);
    assert_string_equal(prom_family(&doc, "t_seconds")->type, "histogram");
    assert_int_equal(value(&doc, "t_seconds_bucket",
                           "instance=\"p\",le=\"0.005\",op=\"r\","
                           "worker=\"0\""),
                     2);
    assert_int_equal(value(&doc, "t_seconds_bucket",
                           "instance=\"p\",le=\"0.1\",op=\"r\",worker=\"0\""),
                     3);
    assert_int_equal(value(&doc, "t_seconds_bucket",
                           "instance=\"p\",le=\"1\",op=\"r\",worker=\"0\""),
                     4);
    assert_int_equal(value(&doc, "t_seconds_bucket",
                           "instance=\"p\",le=\"+Inf\",op=\"r\","
                           "worker=\"0\""),
                     6);
    assert_int_equal(value(&doc, "t_seconds_count",
                           "instance=\"p\",op=\"r\",worker=\"0\""),
                     6);
    assert_true(isinf(value(&doc, "t_seconds_sum",
                            "instance=\"p\",op=\"r\",worker=\"0\"")));
    assert_int_equal(value(&doc, "t_seconds_count",
                           "instance=\"p\",op=\"w\",worker=\"0\""),
                     0);
    /* The series of a family are grouped under one HELP and TYPE. */
    assert_int_equal(prom_family(&doc, "t_seconds")->nsamples, 2 * (3 + 3));
    assert_non_null(strstr(text, "# HELP t_seconds Latency.\n"
                                 "# TYPE t_seconds histogram\n"));
    prom_free(&doc);

    /* A finite sum, printed exactly. */
    ioloop__metrics_observe(loop, h2, 0.25);
    ioloop__metrics_observe(loop, h2, 0.5);
    render_and_parse(loop, text, &doc);
    assert_true(value(&doc, "t_seconds_sum",
                      "instance=\"p\",op=\"w\",worker=\"0\"")
                == 0.75);
    assert_non_null(strstr(
        text, "t_seconds_sum{worker=\"0\",instance=\"p\",op=\"w\"} 0.75\n"));
    prom_free(&doc);
    release(loop);
    ioloop__metrics_free(m);
    free(text);
}

/* Every bucket of histograms of 1 to IOLOOP_METRICS_MAX_BUCKETS bounds
 * (1, 2, ... n): values on and between the bounds land where they
 * belong, cumulatively. */
static void
test_buckets(void **state)
{
    static const int sizes[] = {1, 2, 3, 5, 11, 15, IOLOOP_METRICS_MAX_BUCKETS};
    double bounds[IOLOOP_METRICS_MAX_BUCKETS];
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    char *text = malloc(TEXT_MAX), name[32], labels[64];
    struct prom_doc doc;
    ioloop_loop_t *loop;
    int h[sizeof(sizes) / sizeof(sizes[0])];

    (void) state;
    assert_non_null(m);
    assert_non_null(text);
    loop = attached_loop(m, 0);
    assert_non_null(loop);
    for (int k = 0; k < IOLOOP_METRICS_MAX_BUCKETS; k++) {
        bounds[k] = k + 1;
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(name, sizeof(name), "b%d", sizes[i]);
        h[i] = ioloop__metrics_histogram_register(loop, name, "B.", NULL,
                                                  bounds, (size_t) sizes[i]);
        assert_true(h[i] >= 0);
        /* 0, 0.5, 1, ..., n + 1: two values per bucket, one on its bound. */
        for (int j = 0; j <= 2 * sizes[i] + 2; j++) {
            ioloop__metrics_observe(loop, h[i], j * 0.5);
        }
    }
    render_and_parse(loop, text, &doc);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(name, sizeof(name), "b%d_bucket", sizes[i]);
        for (int k = 0; k < sizes[i]; k++) {
            snprintf(labels, sizeof(labels),
                     "instance=\"p\",le=\"%d\",worker=\"0\"", k + 1);
            /* 0, 0.5, ..., k + 1: 2k + 3 values. */
            assert_int_equal(value(&doc, name, labels), 2 * k + 3);
        }
        assert_int_equal(value(&doc, name,
                               "instance=\"p\",le=\"+Inf\",worker=\"0\""),
                         2 * sizes[i] + 3);
    }
    prom_free(&doc);
    release(loop);
    ioloop__metrics_free(m);
    free(text);
}

/*
 * A child (a worker) registers and counts in slot 1 and exits; the parent
 * renders it. Retired, its gauge goes and its counter and histogram stay;
 * the next worker of the slot carries them on, its gauge from 0.
 */
static void
test_across_fork(void **state)
{
    static const double bounds[] = {1, 2};
    struct ioloop_metrics *m = ioloop__metrics_create(2);
    char *text = malloc(TEXT_MAX);
    struct prom_doc doc;
    ioloop_loop_t *loop;
    pid_t pid;
    int status, c, g, h;

    (void) state;
    assert_non_null(m);
    assert_non_null(text);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The worker: no cmocka here, only an exit status. */
        loop = attached_loop(m, 1);
        if (loop == NULL
            || (c = ioloop__metrics_counter_labels(
                    loop, "f_total", "F.", (const char *[]){"k", "v", NULL}))
                   < 0
            || (g = ioloop__metrics_gauge_register(loop, "f_open", "F.",
                                                   NULL))
                   < 0
            || (h = ioloop__metrics_histogram_register(loop, "f_size", "F.",
                                                       NULL, bounds, 2))
                   < 0) {
            _exit(1);
        }
        ioloop__metrics_counter_add(loop, c, 4);
        ioloop__metrics_gauge_set(loop, g, 3);
        ioloop__metrics_observe(loop, h, 1.5);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    loop = attached_loop(m, 0);
    assert_non_null(loop);
    render_and_parse(loop, text, &doc);
    assert_int_equal(value(&doc, "f_total",
                           "instance=\"p\",k=\"v\",worker=\"1\""),
                     4);
    assert_int_equal(value(&doc, "f_open", "instance=\"p\",worker=\"1\""), 3);
    assert_int_equal(value(&doc, "f_size_bucket",
                           "instance=\"p\",le=\"2\",worker=\"1\""),
                     1);
    prom_free(&doc);

    ioloop__metrics_retire(m, 1);
    render_and_parse(loop, text, &doc);
    assert_true(isnan(prom_value(&doc, "f_open",
                                 "instance=\"p\",worker=\"1\"")));
    assert_int_equal(value(&doc, "f_total",
                           "instance=\"p\",k=\"v\",worker=\"1\""),
                     4);
    prom_free(&doc);
    release(loop);

    /* The next worker of slot 1 (here, in this process). */
    loop = attached_loop(m, 1);
    assert_non_null(loop);
    c = ioloop__metrics_counter_labels(loop, "f_total", "F.",
                                       (const char *[]){"k", "v", NULL});
    h = ioloop__metrics_histogram_register(loop, "f_size", "F.", NULL,
                                           bounds, 2);
    render_and_parse(loop, text, &doc);
    /* Not registered again yet: not shown. */
    assert_true(isnan(prom_value(&doc, "f_open",
                                 "instance=\"p\",worker=\"1\"")));
    prom_free(&doc);
    g = ioloop__metrics_gauge_register(loop, "f_open", "F.", NULL);
    assert_true(c >= 0 && g >= 0 && h >= 0);
    ioloop__metrics_counter_add(loop, c, 1);
    ioloop__metrics_observe(loop, h, 0.5);
    render_and_parse(loop, text, &doc);
    assert_int_equal(value(&doc, "f_total",
                           "instance=\"p\",k=\"v\",worker=\"1\""),
                     5);
    assert_int_equal(value(&doc, "f_open", "instance=\"p\",worker=\"1\""), 0);
    assert_int_equal(value(&doc, "f_size_count", "instance=\"p\",worker=\"1\""),
                     2);
    assert_true(value(&doc, "f_size_sum", "instance=\"p\",worker=\"1\"")
                == 2.0);
    prom_free(&doc);
    release(loop);
    ioloop__metrics_free(m);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_across_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
