/*
 * tests/unit/test_metrics_http.c: the HTTP layer's per-route families
 * (host/runtime/metrics_http.c): a route's series, each status class and
 * duration bucket, the same route again, a plugin's series in the same
 * family, and the limits.
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

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "loop.h"
#include "metrics.h"
#include "metrics_http.h"
#include "prom_text.h"

#define TEXT_MAX (256 * 1024)
#define MS IOLOOP_NS_PER_MS

static ioloop_loop_t *
attached_loop(struct ioloop_metrics *m, unsigned slot)
{
    char err[256];
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));

    if (loop == NULL || ioloop__metrics_attach(loop, m, slot) < 0) {
        return NULL;
    }
    return loop;
}

static void
release(ioloop_loop_t *loop)
{
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
}

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

/* requests_total of route "/api/" on server "web", worker 0. */
static double
requests(const struct prom_doc *doc, const char *code)
{
    char labels[128];

    snprintf(labels, sizeof(labels),
             "code=\"%s\",route=\"/api/\",server=\"web\",worker=\"0\"", code);
    return prom_value(doc, "ioloop_http_requests_total", labels);
}

static double
bucket(const struct prom_doc *doc, const char *le)
{
    char labels[128];

    snprintf(labels, sizeof(labels),
             "le=\"%s\",route=\"/api/\",server=\"web\",worker=\"0\"", le);
    return prom_value(doc, "ioloop_http_request_duration_seconds_bucket",
                      labels);
}

/* Each status class, each duration bucket; the host's series have no
 * instance label; the same route again is the same handle; a plugin's
 * own series of ioloop_http_requests_total (same HELP) join the family. */
static void
test_route(void **state)
{
    static const struct ioloop_owner hello = {.name = "hello"};
    static const char *const les[] = {"0.005", "0.01", "0.025", "0.05",
                                      "0.1",   "0.25", "0.5",   "1",
                                      "2.5",   "5",    "10",    "+Inf"};
    static const double want[] = {2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 5};
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    char *text = malloc(TEXT_MAX);
    struct prom_doc doc;
    ioloop_loop_t *loop;
    const struct ioloop_owner *prev;
    int api, root, plugin;

    (void) state;
    assert_non_null(m);
    assert_non_null(text);
    loop = attached_loop(m, 0);
    assert_non_null(loop);
    /* A plugin's own counter of the family (the raw hello_http's). */
    prev = ioloop__set_owner(loop, &hello);
    plugin = ioloop__metrics_counter_register(
        loop, "ioloop_http_requests_total",
        "HTTP requests answered, by status class.", "code", "2xx");
    ioloop__set_owner(loop, prev);
    assert_true(plugin >= 0);

    api = ioloop__metrics_http_route(loop, "web", "/api/");
    root = ioloop__metrics_http_route(loop, "web", "/");
    assert_true(api >= 0 && root >= 0 && api != root);
    assert_int_equal(ioloop__metrics_http_route(loop, "web", "/api/"), api);

    ioloop__metrics_http_observe(loop, api, 200, 1 * MS);
    ioloop__metrics_http_observe(loop, api, 204, 5 * MS); /* inclusive */
    ioloop__metrics_http_observe(loop, api, 301, 6 * MS);
    ioloop__metrics_http_observe(loop, api, 404, 1000 * MS);
    ioloop__metrics_http_observe(loop, api, 503, 60000 * MS);
    ioloop__metrics_http_observe(loop, root, 101, 0);
    ioloop__metrics_http_observe(loop, root, 42, 0);  /* below: 1xx */
    ioloop__metrics_http_observe(loop, root, 700, 0); /* above: 5xx */
    ioloop__metrics_http_observe(loop, -1, 200, 0);   /* not a route */
    ioloop__metrics_http_observe(loop, IOLOOP_METRICS_MAX_SERIES + 1, 200,
                                 0);
    ioloop__metrics_counter_add(loop, plugin, 9);
    render_and_parse(loop, text, &doc);

    assert_true(requests(&doc, "1xx") == 0);
    assert_true(requests(&doc, "2xx") == 2);
    assert_true(requests(&doc, "3xx") == 1);
    assert_true(requests(&doc, "4xx") == 1);
    assert_true(requests(&doc, "5xx") == 1);
    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        assert_true(bucket(&doc, les[i]) == want[i]);
    }
    assert_true(prom_value(&doc, "ioloop_http_request_duration_seconds_sum",
                           "route=\"/api/\",server=\"web\",worker=\"0\"")
                == 0.001 + 0.005 + 0.006 + 1 + 60);
    assert_true(prom_value(&doc, "ioloop_http_requests_total",
                           "code=\"1xx\",route=\"/\",server=\"web\","
                           "worker=\"0\"")
                == 2);
    assert_true(prom_value(&doc, "ioloop_http_requests_total",
                           "code=\"5xx\",route=\"/\",server=\"web\","
                           "worker=\"0\"")
                == 1);
    assert_true(prom_value(&doc, "ioloop_http_requests_total",
                           "code=\"2xx\",instance=\"hello\",worker=\"0\"")
                == 9);
    /* One family: hello's series and two routes' five each. */
    assert_int_equal(prom_family(&doc, "ioloop_http_requests_total")
                         ->nsamples,
                     1 + 2 * 5);
    assert_int_equal(prom_family(&doc,
                                 "ioloop_http_request_duration_seconds")
                         ->nsamples,
                     2 * (12 + 2));
    prom_free(&doc);
    release(loop);

    /* The next worker of the slot: the same handles, totals carried on. */
    loop = attached_loop(m, 0);
    assert_non_null(loop);
    assert_int_equal(ioloop__metrics_http_route(loop, "web", "/"), root);
    assert_int_equal(ioloop__metrics_http_route(loop, "web", "/api/"), api);
    ioloop__metrics_http_observe(loop, api, 200, 1 * MS);
    render_and_parse(loop, text, &doc);
    assert_true(requests(&doc, "2xx") == 3);
    assert_true(bucket(&doc, "+Inf") == 6);
    prom_free(&doc);
    release(loop);
    ioloop__metrics_free(m);
    free(text);
}

/* Bad arguments, a loop not attached, and a full slot: a route is all six
 * series or refused. */
static void
test_errors(void **state)
{
    struct ioloop_metrics *m = ioloop__metrics_create(1);
    char err[256], route[16], big[IOLOOP_METRICS_LABELS_LEN];
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));
    int h = 0, n = 0;

    (void) state;
    assert_non_null(m);
    assert_non_null(loop);
    assert_int_equal(ioloop__metrics_http_route(loop, "web", "/"), -ENOTSUP);
    ioloop__metrics_http_observe(loop, 0, 200, 0); /* no-op */
    assert_int_equal(ioloop__metrics_attach(loop, m, 0), 0);
    assert_int_equal(ioloop__metrics_http_route(loop, NULL, "/"), -EINVAL);
    assert_int_equal(ioloop__metrics_http_route(loop, "web", NULL), -EINVAL);
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ioloop__metrics_http_route(loop, "web", big), -EINVAL);
    /* Fill the slot but four series: the next route cannot be whole. */
    while (n < IOLOOP_METRICS_MAX_SERIES - 4 && h >= 0) {
        snprintf(route, sizeof(route), "%d", n);
        h = ioloop__metrics_counter_register(loop, "x_total", "X.", "n",
                                             route);
        n++;
    }
    assert_true(h >= 0);
    assert_int_equal(ioloop__metrics_http_route(loop, "web", "/late"),
                     -ENOSPC);
    /* Nothing of it was left behind: the four series are still free. */
    for (int i = 0; i < 4; i++) {
        snprintf(route, sizeof(route), "late%d", i);
        assert_true(ioloop__metrics_counter_register(loop, "x_total", "X.",
                                                     "n", route)
                    >= 0);
    }
    ioloop__metrics_detach(loop);
    ioloop_loop_free(loop);
    ioloop__metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
