/*
 * tests/integration/test_status.c: the bundled status plugin behind the
 * host's HTTP server (the manifest's "servers"), beside hello_http on the
 * same server, in a real ioloop-host over real sockets on 127.0.0.1.
 * argv[1] names the backend; argv[2], when given, is a worker count put
 * in the manifest ("workers": N), else the host runs as one process.
 * /metrics is checked by the strict parser of tests/prom_text.c and, when
 * installed, by `promtool check metrics`; its counters must move with
 * the traffic the test makes. /healthz answers while the process runs,
 * /readyz until a drain begins.
 */
#include <errno.h>
#include <math.h>
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
#include "host_process.h"
#include "prom_text.h"

/* "/" to hello; the recommended exact routes to status, and a prefix
 * (its last path segment picks the answer there too). */
#define SERVERS                                                              \
    "\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","          \
    " \"routes\": [{\"path\": \"/\", \"plugin\": \"hello\"},"                \
    "  {\"path\": \"/metrics\", \"plugin\": \"status\"},"                   \
    "  {\"path\": \"/healthz\", \"plugin\": \"status\"},"                   \
    "  {\"path\": \"/readyz\", \"plugin\": \"status\"},"                    \
    "  {\"prefix\": \"/status/\", \"plugin\": \"status\"}]}]"
#define PLUGINS "[" HOST_HELLO_ENTRY ", " HOST_STATUS_ENTRY "]"

#define HELLO_CONNS 10
#define HELLO_REQUESTS 50 /* over HELLO_CONNS keep-alive connections */

struct fixture {
    struct host_process host;
    int port; /* the server's: hello and status */
    struct http_conn *conns[HELLO_CONNS + 4];
    int nconns;
    struct http_response r;
    struct prom_doc before; /* freed by teardown, even after a failure */
    struct prom_doc after;
};

/* The backend under test (argv[1]) and the worker count (argv[2], 0:
 * no "workers" key). */
static const char *backend = "epoll";
static int workers;

/* Starts the host with servers (the "servers" member) and plugins. */
static int
start(struct fixture *f, const char *servers, const char *plugins)
{
    char extra[1024], count[32] = "";

    if (workers > 0) {
        snprintf(count, sizeof(count), "\"workers\": %d, ", workers);
    }
    snprintf(extra, sizeof(extra), "{%s%s}", count, servers);
    return host_start_ex(&f->host, backend, extra, plugins, 0);
}

/* Waits until every serving process logged that it started (its plugins
 * are up and its signals subscribed). 0, or -1 after HOST_TIMEOUT_MS. */
static int
wait_started(struct fixture *f)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    int want = workers > 0 ? workers : 1;

    for (int i = 0; i < HOST_TIMEOUT_MS / 10; i++) {
        if (host_log_count(&f->host, "[host] started: backend") >= want) {
            return 0;
        }
        nanosleep(&tick, NULL);
    }
    return -1;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    *state = f;
    if (start(f, SERVERS, PLUGINS) < 0
        || (f->port = host_port(&f->host, "host", HOST_TIMEOUT_MS)) <= 0
        || wait_started(f) < 0) {
        fprintf(stderr, "setup: the host did not start on backend %s\n",
                backend);
        host_dump_log(&f->host);
        return -1;
    }
    return 0;
}

/* Stops the host with SIGTERM and requires a clean exit (status 0). */
static int
teardown(void **state)
{
    struct fixture *f = *state;
    int rc = 0;

    for (int i = 0; i < f->nconns; i++) {
        if (f->conns[i]->fd >= 0) {
            close(f->conns[i]->fd);
        }
        free(f->conns[i]);
    }
    if (f->host.pid > 0) {
        rc = host_stop_clean(&f->host);
    }
    host_cleanup(&f->host);
    prom_free(&f->before);
    prom_free(&f->after);
    free(f);
    return rc;
}

/* A new connection to port, closed by teardown. */
static struct http_conn *
conn_open(struct fixture *f, int port)
{
    struct http_conn *hc = malloc(sizeof(*hc));

    assert_non_null(hc);
    assert_true(f->nconns < (int) (sizeof(f->conns) / sizeof(f->conns[0])));
    f->conns[f->nconns++] = hc;
    hc->fd = -1;
    assert_int_equal(http_connect(hc, port), 0);
    return hc;
}

static void
send_str(struct http_conn *hc, const char *s)
{
    assert_int_equal(client_write_all(hc->fd, s, strlen(s),
                                      CLIENT_TIMEOUT_MS),
                     0);
}

static void
expect_header(const struct http_response *r, const char *name,
              const char *value)
{
    char got[256];

    assert_int_equal(http_header(r, name, got, sizeof(got)), 0);
    assert_string_equal(got, value);
}

/* GET /metrics on hc: 200, the Prometheus content type, a strict parse
 * (and promtool's, when installed) into doc. */
static void
scrape(struct fixture *f, struct http_conn *hc, struct prom_doc *doc)
{
    char err[256];

    assert_int_equal(http_get(hc, "/metrics", &f->r), 0);
    if (f->r.status != 200) {
        fprintf(stderr, "GET /metrics: %d %s\n", f->r.status, f->r.body);
        fail();
    }
    expect_header(&f->r, "Content-Type",
                  "text/plain; version=0.0.4; charset=utf-8");
    if (prom_parse(f->r.body, doc, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n--- /metrics ---\n%s", err, f->r.body);
        fail();
    }
    assert_int_not_equal(prom_promtool_check(f->r.body), 0);
}

/* The sum of a family's samples over every worker (and plugin). */
static double
total(const struct prom_doc *doc, const char *name)
{
    double sum = 0;
    int n = 0;

    for (size_t i = 0; i < doc->nsamples; i++) {
        if (strcmp(doc->samples[i].name, name) == 0) {
            sum += doc->samples[i].value;
            n++;
        }
    }
    if (n == 0) {
        fprintf(stderr, "no sample of %s\n", name);
        fail();
    }
    return sum;
}

/* Scrapes until every worker reports (a worker attaches its slot while
 * starting), at most HOST_TIMEOUT_MS. */
static void
scrape_all_workers(struct fixture *f, struct http_conn *hc,
                   struct prom_doc *doc)
{
    int want = workers > 0 ? workers : 1;
    struct timespec tick = {0, 20 * 1000 * 1000};

    for (int i = 0; i < HOST_TIMEOUT_MS / 20; i++) {
        scrape(f, hc, doc);
        if (prom_family(doc, "ioloop_backend_info")->nsamples >= want) {
            break;
        }
        prom_free(doc);
        nanosleep(&tick, NULL);
    }
    assert_int_equal(prom_family(doc, "ioloop_backend_info")->nsamples,
                     want);
}

/* /healthz answers "ok" (liveness), on a kept-alive connection. */
static void
test_healthz(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_get(hc, "/healthz", &f->r), 0);
        assert_int_equal(f->r.status, 200);
        assert_string_equal(f->r.body, "ok\n");
        expect_header(&f->r, "Content-Type", "text/plain; charset=utf-8");
    }
}

/* /readyz answers "ready" once the host serves: the server accepts only
 * after every init of the process returned. */
static void
test_readyz(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_get(hc, "/readyz", &f->r), 0);
        assert_int_equal(f->r.status, 200);
        assert_string_equal(f->r.body, "ready\n");
    }
}

/* The counters move with traffic: HELLO_REQUESTS hello requests over
 * HELLO_CONNS connections, kept open through the second scrape. */
static void
test_metrics_move(void **state)
{
    struct fixture *f = *state;
    struct http_conn *st = conn_open(f, f->port), *hc[HELLO_CONNS];
    struct prom_doc *before = &f->before, *after = &f->after;
    char labels[64];

    scrape_all_workers(f, st, before);
    snprintf(labels, sizeof(labels), "backend=\"%s\",worker=\"0\"", backend);
    if (workers == 0) {
        assert_int_equal(prom_value(before, "ioloop_backend_info", labels),
                         1);
    }
    for (int i = 0; i < HELLO_CONNS; i++) {
        hc[i] = conn_open(f, f->port);
    }
    for (int i = 0; i < HELLO_REQUESTS; i++) {
        assert_int_equal(http_get(hc[i % HELLO_CONNS], "/", &f->r), 0);
        assert_int_equal(f->r.status, 200);
    }
    scrape(f, st, after);

    assert_true(total(after, "ioloop_loop_iterations_total")
                >= total(before, "ioloop_loop_iterations_total")
                       + HELLO_CONNS);
    assert_true(total(after, "ioloop_poll_wait_seconds_total")
                >= total(before, "ioloop_poll_wait_seconds_total"));
    assert_true(total(after, "ioloop_uptime_seconds") > 0);
    assert_int_equal(total(after, "ioloop_worker_restarts_total"), 0);
    assert_int_equal(total(after, "ioloop_watchdog_stalls_total"), 0);
    /* One stall series per worker and instance (hello, status). */
    assert_int_equal(prom_family(after, "ioloop_watchdog_stalls_total")
                         ->nsamples,
                     2 * (workers > 0 ? workers : 1));
    /* The server's accepts count as the host's. */
    assert_true(total(after, "ioloop_connections_accepted_total")
                >= total(before, "ioloop_connections_accepted_total")
                       + HELLO_CONNS);
}

/* 404 elsewhere, 405 for other methods, HEAD without a body, a query
 * ignored, the last segment under a prefix route, pipelined requests
 * answered in order. */
static void
test_routes(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    char len[32];

    assert_int_equal(http_get(hc, "/nope", &f->r), 0);
    assert_int_equal(f->r.status, 404);
    assert_int_equal(http_get(hc, "/metrics/", &f->r), 0);
    assert_int_equal(f->r.status, 404);
    assert_int_equal(http_get(hc, "/healthz?probe=1", &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_int_equal(http_get(hc, "/status/healthz", &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_string_equal(f->r.body, "ok\n");
    assert_int_equal(http_get(hc, "/status/readyz", &f->r), 0);
    assert_string_equal(f->r.body, "ready\n");
    assert_int_equal(http_get(hc, "/status/metrics", &f->r), 0);
    assert_non_null(strstr(f->r.body, "ioloop_loop_iterations_total"));
    assert_int_equal(http_get(hc, "/status/other", &f->r), 0);
    assert_int_equal(f->r.status, 404); /* from status itself */
    assert_int_equal(http_get(hc, "/status/", &f->r), 0);
    assert_int_equal(f->r.status, 404);
    send_str(hc, "POST /metrics HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 3\r\n\r\nx=1");
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 405);
    expect_header(&f->r, "Allow", "GET, HEAD");
    send_str(hc, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(http_read_response(hc, 1, &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_int_equal(http_header(&f->r, "Content-Length", len, sizeof(len)),
                     0);
    assert_true(atoi(len) > 0);
    send_str(hc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 404);
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 200);
}

/*
 * A graceful stop (SIGTERM, to the master with workers) flips /readyz to
 * 503 "draining" while /healthz stays 200: requests whose heads were
 * half sent before the signal, on kept-alive connections, are completed
 * once every serving process logged its drain, and answered (then their
 * connections close). An idle kept-alive connection is closed by the
 * drain, and the host exits 0 within HOST_TIMEOUT_MS (5 s), well before
 * shutdown_timeout (10 s).
 */
static void
test_readyz_draining(void **state)
{
    struct fixture *f = *state;
    struct http_conn *ready = conn_open(f, f->port);
    struct http_conn *live = conn_open(f, f->port);
    struct http_conn *idle = conn_open(f, f->port);
    int want = workers > 0 ? workers : 1;

    assert_int_equal(http_get(ready, "/readyz", &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_int_equal(http_get(live, "/healthz", &f->r), 0);
    assert_int_equal(http_get(idle, "/healthz", &f->r), 0);
    send_str(ready, "GET /readyz HTTP/1.1\r\nHost: x\r\n");
    send_str(live, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    assert_int_equal(kill(f->host.pid, SIGTERM), 0);
    for (int i = 0; i < HOST_TIMEOUT_MS / 10
                && host_log_count(&f->host, "SIGTERM: draining") < want;
         i++) {
        struct timespec tick = {0, 10 * 1000 * 1000};

        nanosleep(&tick, NULL);
    }
    assert_int_equal(host_log_count(&f->host, "SIGTERM: draining"), want);
    send_str(ready, "\r\n");
    send_str(live, "\r\n");
    assert_int_equal(http_read_response(ready, 0, &f->r), 0);
    assert_int_equal(f->r.status, 503);
    assert_string_equal(f->r.body, "draining\n");
    expect_header(&f->r, "Connection", "close");
    assert_int_equal(http_read_response(live, 0, &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_string_equal(f->r.body, "ok\n");
    assert_int_equal(client_expect_eof(ready->fd, CLIENT_TIMEOUT_MS), 0);
    assert_int_equal(client_expect_eof(idle->fd, CLIENT_TIMEOUT_MS), 0);
    assert_int_equal(host_wait(&f->host, HOST_TIMEOUT_MS), 0);
    assert_true(WIFEXITED(f->host.status));
    assert_int_equal(WEXITSTATUS(f->host.status), 0);
}

/* Connection: close, HTTP/1.0 and a malformed request end the
 * connection after the response. */
static void
test_close(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                 "Connection: close\r\n\r\n");
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 200);
    expect_header(&f->r, "Connection", "close");
    assert_int_equal(client_expect_eof(hc->fd, CLIENT_TIMEOUT_MS), 0);

    hc = conn_open(f, f->port);
    send_str(hc, "GET /healthz HTTP/1.0\r\n\r\n");
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_int_equal(client_expect_eof(hc->fd, CLIENT_TIMEOUT_MS), 0);

    hc = conn_open(f, f->port);
    send_str(hc, "GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n");
    assert_int_equal(http_read_response(hc, 0, &f->r), 0);
    assert_int_equal(f->r.status, 400);
    assert_int_equal(client_expect_eof(hc->fd, CLIENT_TIMEOUT_MS), 0);
}

/* Runs a host that must refuse to start; its log must name the reason. */
static void
expect_refused(const char *servers, const char *plugins, const char *reason)
{
    struct fixture f = {0};

    assert_int_equal(start(&f, servers, plugins), 0);
    assert_int_equal(host_wait(&f.host, HOST_TIMEOUT_MS), 0);
    if (!WIFEXITED(f.host.status) || WEXITSTATUS(f.host.status) == 0
        || host_log_count(&f.host, reason) == 0) {
        fprintf(stderr, "expected a refusal naming \"%s\"\n", reason);
        host_dump_log(&f.host);
        fail();
    }
    host_cleanup(&f.host);
}

/* status takes no config (the server has the limits), and needs a
 * server. */
static void
test_config(void **state)
{
    (void) state;
    expect_refused(SERVERS,
                   "[" HOST_HELLO_ENTRY ", {\"name\": \"status\", \"path\": \""
                   HOST_PLUGIN_DIR "/status.so\", \"config\": {\"path\": "
                   "\"/m\"}}]",
                   "config.path: unknown key (status accepts: nothing)");
    expect_refused("\"log\": {\"level\": \"info\"}", "[" HOST_STATUS_ENTRY "]",
                   "init failed: http_handle: the host runs no HTTP server");
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_draining, setup,
                                        teardown),
        cmocka_unit_test(test_config),
    };

    if (argc > 1) {
        backend = argv[1];
    }
    if (argc > 2) {
        workers = atoi(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
