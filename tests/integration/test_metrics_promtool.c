/*
 * tests/integration/test_metrics_promtool.c: /metrics of a real
 * ioloop-host with two workers, each running the metrics_probe test
 * plugin (a series of every kind) and status, scraped over HTTP from
 * 127.0.0.1 and checked by the real `promtool check metrics` (Debian
 * package prometheus, which `make test` installs: its absence fails the
 * test) and by the strict parser of tests/prom_text.c; whichever worker
 * answers shows both workers' values.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"
#include "prom_text.h"

#define WORKERS 2
#define PLUGINS                                                              \
    "[{\"name\": \"probe\", \"path\": \"" IOLOOP_BUILD_DIR                   \
    "/tests/modules/metrics_probe.so\"},"                                    \
    " " HOST_STATUS_ENTRY "]"
/* status on a server "web" of its own, at /metrics. */
#define SERVERS                                                              \
    "\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","          \
    " \"routes\": [{\"path\": \"/metrics\", \"plugin\": \"status\"}]}]"

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

/* Every worker's series, of every kind, from one scrape. */
static void
test_promtool(void **state)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    struct host_process hp = {0};
    static struct http_conn hc;
    static struct http_response r;
    struct prom_doc doc = {0};
    char err[256], labels[256];
    int port, i;

    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"workers\": 2, " SERVERS "}", PLUGINS,
                                   0),
                     0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    if (port <= 0) {
        host_dump_log(&hp);
        fail();
    }
    for (i = 0; i < HOST_TIMEOUT_MS / 10
                && host_log_count(&hp, "[host] started: backend") < WORKERS;
         i++) {
        nanosleep(&tick, NULL);
    }
    assert_true(host_log_count(&hp, "[host] started: backend") >= WORKERS);

    assert_int_equal(http_connect(&hc, port), 0);
    assert_int_equal(http_get(&hc, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(prom_promtool_check(r.body), 1);
    if (prom_parse(r.body, &doc, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n--- /metrics ---\n%s", err, r.body);
        fail();
    }
    assert_string_equal(prom_family(&doc, "probe_events_total")->type,
                        "counter");
    assert_string_equal(prom_family(&doc, "probe_queue_depth")->type,
                        "gauge");
    assert_string_equal(prom_family(&doc, "probe_latency_seconds")->type,
                        "histogram");
    for (int w = 0; w < WORKERS; w++) {
        snprintf(labels, sizeof(labels),
                 "instance=\"probe\",kind=\"a\",worker=\"%d\"", w);
        assert_true(value(&doc, "probe_events_total", labels) == w + 1);
        snprintf(labels, sizeof(labels),
                 "instance=\"probe\",method=\"GET\","
                 "path=\"/a\\\"b\\\\c\\nd\",worker=\"%d\"",
                 w);
        assert_true(value(&doc, "probe_requests_total", labels) == w + 1);
        snprintf(labels, sizeof(labels),
                 "instance=\"probe\",queue=\"in\",worker=\"%d\"", w);
        assert_true(value(&doc, "probe_queue_depth", labels) == w + 0.5);
        snprintf(labels, sizeof(labels),
                 "instance=\"probe\",le=\"0.005\",op=\"read\",worker=\"%d\"",
                 w);
        assert_true(value(&doc, "probe_latency_seconds_bucket", labels)
                    == (w == 0 ? 1 : 0));
        snprintf(labels, sizeof(labels),
                 "instance=\"probe\",op=\"read\",worker=\"%d\"", w);
        assert_true(value(&doc, "probe_latency_seconds_count", labels) == 1);
        assert_true(fabs(value(&doc, "probe_latency_seconds_sum", labels)
                         - 0.003 * (w + 1))
                    < 1e-12);
    }
    prom_free(&doc);
    close(hc.fd);
    assert_int_equal(host_stop_clean(&hp), 0);
    host_cleanup(&hp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promtool),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
