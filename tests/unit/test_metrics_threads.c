/*
 * tests/unit/test_metrics_threads.c: the registered series' hot calls
 * against a concurrent reader. In the host the reader is another worker
 * process rendering the shared segment; here it is a second thread
 * rendering the same segment, so that ThreadSanitizer (label "threads")
 * sees every access: the cells are relaxed atomics with one writer, the
 * descriptors are published by a release store of their count. The
 * reader also checks what a scrape may rely on: counts never go back,
 * and a histogram's _count is its +Inf bucket.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "loop.h"
#include "metrics.h"
#include "prom_text.h"

#define TEXT_MAX (256 * 1024)
#define ROUNDS 200000

static const struct ioloop_owner plugin = {.name = "p"};

struct reader {
    ioloop_loop_t *loop;
    int stop;     /* atomic: set by the writer when done */
    int renders;  /* atomic: how many it parsed */
    int failures; /* what it found wrong (printed) */
};

/* Renders and checks until told to stop. */
static void *
reader_main(void *arg)
{
    struct reader *r = arg;
    char *text = malloc(TEXT_MAX), err[256];
    double last_count = 0, last_total = 0;
    struct prom_doc doc;

    if (text == NULL) {
        r->failures++;
        return NULL;
    }
    do {
        double count, inf, total;

        if (ioloop__metrics_render(r->loop, text, TEXT_MAX) <= 0
            || prom_parse(text, &doc, err, sizeof(err)) < 0) {
            fprintf(stderr, "render %d: %s\n", r->renders, err);
            r->failures++;
            break;
        }
        count = prom_value(&doc, "t_seconds_count",
                           "instance=\"p\",worker=\"0\"");
        inf = prom_value(&doc, "t_seconds_bucket",
                         "instance=\"p\",le=\"+Inf\",worker=\"0\"");
        total = prom_value(&doc, "t_total", "instance=\"p\",worker=\"0\"");
        if (count != inf || count < last_count || total < last_total) {
            fprintf(stderr, "render %d: count %g, +Inf %g, total %g\n",
                    r->renders, count, inf, total);
            r->failures++;
        }
        last_count = count;
        last_total = total;
        prom_free(&doc);
        __atomic_store_n(&r->renders, r->renders + 1, __ATOMIC_RELAXED);
    } while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE));
    free(text);
    return NULL;
}

static void
test_hot_calls_under_a_reader(void **state)
{
    static const double bounds[] = {0.25, 0.5, 0.75};
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    char err[256];
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));
    struct reader r = {0};
    char *text = malloc(TEXT_MAX);
    struct prom_doc doc;
    pthread_t thread;
    int c, g, h, n;

    (void) state;
    assert_non_null(m);
    assert_non_null(loop);
    assert_non_null(text);
    assert_int_equal(ioloop__metrics_attach(loop, m, 0), 0);
    ioloop__set_owner(loop, &plugin);
    c = ioloop__metrics_counter_labels(loop, "t_total", "T.", NULL);
    g = ioloop__metrics_gauge_register(loop, "t_level", "T.", NULL);
    h = ioloop__metrics_histogram_register(loop, "t_seconds", "T.", NULL,
                                           bounds, 3);
    assert_true(c >= 0 && g >= 0 && h >= 0);

    r.loop = loop;
    assert_int_equal(pthread_create(&thread, NULL, reader_main, &r), 0);
    /* At least ROUNDS, and on until the reader rendered ten times, four
     * at a time (one per bucket). */
    for (n = 0; n < ROUNDS || __atomic_load_n(&r.renders, __ATOMIC_RELAXED)
                                  < 10;
         n += 4) {
        for (int k = 0; k < 4; k++) {
            ioloop__metrics_counter_add(loop, c, 1);
            ioloop__metrics_gauge_set(loop, g, n + k);
            ioloop__metrics_observe(loop, h, k * 0.25);
        }
        /* Registered while the reader reads: published whole, or not. */
        if (n == ROUNDS / 2) {
            assert_true(ioloop__metrics_gauge_register(loop, "t_late", "T.",
                                                       NULL)
                        >= 0);
        }
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(r.failures, 0);
    assert_true(r.renders > 0);

    assert_true(ioloop__metrics_render(loop, text, TEXT_MAX) > 0);
    assert_int_equal(prom_parse(text, &doc, err, sizeof(err)), 0);
    assert_true(prom_value(&doc, "t_total", "instance=\"p\",worker=\"0\"")
                == n);
    assert_true(prom_value(&doc, "t_level", "instance=\"p\",worker=\"0\"")
                == n - 1);
    assert_true(prom_value(&doc, "t_seconds_bucket",
                           "instance=\"p\",le=\"0.25\",worker=\"0\"")
                == n / 2);
    assert_true(prom_value(&doc, "t_seconds_sum",
                           "instance=\"p\",worker=\"0\"")
                == n / 4 * (0.25 + 0.5 + 0.75));
    prom_free(&doc);
    ioloop__set_owner(loop, NULL);
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_calls_under_a_reader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
