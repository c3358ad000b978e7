/*
 * tests/integration/test_hostile.c: hello_http and status behind the
 * host's HTTP server (the manifest's "servers") in a real ioloop-host
 * against hostile clients and careless operators, over real sockets on
 * 127.0.0.1. argv[1] names the backend. With argv[2] "check", only the
 * config refusals are run, through `ioloop-host --check`.
 *
 * Clients: slowloris (a head sent a byte at a time), a stalled body, an
 * idle keep-alive connection, more connections than max_connections, and
 * smuggling-shaped heads (whitespace before the colon, two
 * Content-Lengths, Content-Length with Transfer-Encoding, HTTP/2.0).
 * Timeouts are configured short (1 s) on the server except in the test
 * of the default config; every wait has a margin of 2 s or more over the
 * timeout. The requests answered are checked in the per-route counters
 * status serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"
#include "prom_text.h"

#define PLUGINS "[" HOST_HELLO_ENTRY ", " HOST_STATUS_ENTRY "]"
/* The server "web": "/" to hello, "/metrics" to status, with limits. */
#define SERVERS(limits)                                                      \
    "{\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","         \
    " \"routes\": [{\"path\": \"/\", \"plugin\": \"hello\"},"                \
    "  {\"path\": \"/metrics\", \"plugin\": \"status\"}]" limits "}]}"

/* Timeouts of 1 s, small bodies. */
#define SHORT_LIMITS                                                         \
    ", \"header_timeout\": 1, \"body_timeout\": 1,"                          \
    " \"keepalive_timeout\": 1, \"max_body_size\": 1024"
#define SHORT_TIMEOUT_MS 1000
#define SERVERS_SHORT SERVERS(SHORT_LIMITS)
/* A few connections at most. */
#define SHED_MAX 8
#define SERVERS_SHED SERVERS(", \"max_connections\": 8")
/* No limit configured: the defaults. */
#define SERVERS_DEFAULT SERVERS("")
#define DEFAULT_HEADER_TIMEOUT_MS 10000

#define MARGIN_MS 2000
#define MAX_CONNS 128

struct fixture {
    struct host_process host;
    int port; /* the server's: hello and status */
    struct http_conn *conns[MAX_CONNS];
    int nconns;
    struct http_response r;
};

/* The backend under test (argv[1]). */
static const char *backend = "epoll";

/* The test's manifest "servers" is its cmocka prestate. */
static int
setup(void **state)
{
    const char *servers = *state;
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    *state = f;
    if (host_start_ex(&f->host, backend, servers, PLUGINS, 0) < 0
        || (f->port = host_port(&f->host, "host", HOST_TIMEOUT_MS)) <= 0) {
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
    free(f);
    return rc;
}

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* How many times text is in the host's stderr, waiting up to 2 s for
 * the first (another thread reads it). */
static int
wait_log(struct fixture *f, const char *text)
{
    for (int i = 0; i < 20 && host_log_count(&f->host, text) == 0; i++) {
        sleep_ms(100);
    }
    return host_log_count(&f->host, text);
}

/* A new connection to port, closed by teardown. */
static struct http_conn *
conn_open(struct fixture *f, int port)
{
    struct http_conn *hc = malloc(sizeof(*hc));

    assert_non_null(hc);
    assert_true(f->nconns < MAX_CONNS);
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

/* The server closes hc within timeout_ms, sending nothing (more). */
static void
expect_silent_close(struct http_conn *hc, int timeout_ms)
{
    assert_int_equal(hc->len, 0);
    assert_int_equal(client_expect_eof(hc->fd, timeout_ms), 0);
}

/* Sends req on a new connection: the answer is status with Connection:
 * close, then EOF. */
static void
expect_refused_request(struct fixture *f, int port, const char *req,
                       int status)
{
    struct http_conn *hc = conn_open(f, port);
    char value[64];

    send_str(hc, req);
    if (http_read_response(hc, 0, &f->r) < 0) {
        fail_msg("no response to %s", req);
    }
    if (f->r.status != status) {
        fail_msg("%d instead of %d for %s", f->r.status, status, req);
    }
    assert_int_equal(http_header(&f->r, "Connection", value, sizeof(value)),
                     0);
    assert_string_equal(value, "close");
    assert_int_equal(client_expect_eof(hc->fd, CLIENT_TIMEOUT_MS), 0);
}

/* curl on hello's / prints exactly "hello". */
static void
expect_curl_hello(int port)
{
    char cmd[256], out[64];
    size_t n;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "curl -s --max-time 5 http://127.0.0.1:%d/ 2>/dev/null", port);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, "hello");
}

/*
 * The end of a connection whose head timed out, n and byte being the
 * last read of one byte: EOF or a reset, or a 408 (the server answers it
 * when no byte of the connection was answered yet) and then EOF.
 */
static void
expect_408_or_close(struct fixture *f, struct http_conn *hc, ssize_t n,
                    char byte)
{
    if (n == 1) {
        hc->buf[0] = byte;
        hc->len = 1;
        assert_int_equal(http_read_response(hc, 0, &f->r), 0);
        assert_int_equal(f->r.status, 408);
        assert_int_equal(hc->len, 0);
        n = client_expect_eof(hc->fd, MARGIN_MS) == 0 ? 0 : -1;
    }
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/*
 * Slowloris: a head sent a byte every 200 ms is cut off by the 1 s
 * header timeout (the whole head, not per byte), with a 408 at most,
 * while curl is served meanwhile.
 */
static void
test_slowloris(void **state)
{
    struct fixture *f = *state;
    static const char head[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct http_conn *hc = conn_open(f, f->port);
    double start = now_ms(), took;
    char byte;
    ssize_t n = -1;
    size_t i;

    for (i = 0; i < sizeof(head) - 1; i++) {
        if (send(hc->fd, &head[i], 1, MSG_NOSIGNAL) < 0) {
            break; /* reset: closed */
        }
        if (i == 2) {
            expect_curl_hello(f->port);
        }
        n = client_read_some(hc->fd, &byte, 1, 200);
        if (n >= 0 || errno != ETIMEDOUT) {
            break;
        }
    }
    took = now_ms() - start;
    print_message("slowloris cut off after %.0f ms, %zu bytes\n", took, i);
    assert_true(i < sizeof(head) - 1); /* cut off before the end */
    expect_408_or_close(f, hc, n, byte);
    assert_true(took >= SHORT_TIMEOUT_MS / 2);
    assert_true(took <= SHORT_TIMEOUT_MS + MARGIN_MS);
}

/* The same with no limit configured: the default header timeout (10 s)
 * applies, and curl still gets hello meanwhile. A head to status too. */
static void
test_slowloris_default_config(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    struct http_conn *sc = conn_open(f, f->port);
    double start = now_ms(), took;
    char byte;
    ssize_t n;

    send_str(hc, "GET / HTTP/1.1\r\nHost: x\r\n");
    send_str(sc, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    do {
        (void) send(hc->fd, "X", 1, MSG_NOSIGNAL);
        expect_curl_hello(f->port);
        n = client_read_some(hc->fd, &byte, 1, 1000);
    } while (n < 0 && errno == ETIMEDOUT
             && now_ms() - start < DEFAULT_HEADER_TIMEOUT_MS + MARGIN_MS);
    took = now_ms() - start;
    print_message("cut off after %.0f ms by default\n", took);
    expect_408_or_close(f, hc, n, byte);
    assert_true(took >= DEFAULT_HEADER_TIMEOUT_MS - 1000);
    assert_true(took <= DEFAULT_HEADER_TIMEOUT_MS + MARGIN_MS);
    n = client_read_some(sc->fd, &byte, 1, MARGIN_MS);
    expect_408_or_close(f, sc, n, byte);
}

/* A body announced past max_body_size, then nothing: 413 at once; one
 * announced within it and stalled: closed by the body timeout. */
static void
test_stalled_body(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc;
    double start;

    expect_refused_request(f, f->port,
                           "POST / HTTP/1.1\r\nHost: x\r\n"
                           "Content-Length: 9223372036854775807\r\n\r\n",
                           413);
    hc = conn_open(f, f->port);
    start = now_ms();
    send_str(hc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                 "0123456789");
    expect_silent_close(hc, SHORT_TIMEOUT_MS + MARGIN_MS);
    assert_true(now_ms() - start >= SHORT_TIMEOUT_MS / 2);
}

/* A chunked body grown past max_body_size (1024) chunk by chunk: 413. */
static void
test_chunked_body_too_large(void **state)
{
    struct fixture *f = *state;

    expect_refused_request(f, f->port,
                           "POST / HTTP/1.1\r\nHost: x\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n"
                           "401\r\n",
                           413);
    /* The sizes add up: 1 + 1024 is past 1024. */
    expect_refused_request(f, f->port,
                           "POST / HTTP/1.1\r\nHost: x\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n"
                           "1\r\nx\r\n400\r\n",
                           413);
    /* Exactly 1024 in two chunks is served. */
    {
        struct http_conn *hc = conn_open(f, f->port);
        char req[1200];
        int n = snprintf(req, sizeof(req),
                         "POST / HTTP/1.1\r\nHost: x\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "1\r\nx\r\n3ff\r\n%01023d\r\n0\r\n\r\n",
                         0);

        assert_true(n > 0 && (size_t) n < sizeof(req));
        send_str(hc, req);
        assert_int_equal(http_read_response(hc, 0, &f->r), 0);
        assert_int_equal(f->r.status, 405); /* POST on a route */
    }
}

/* A kept-alive connection with no next request goes after the keep-alive
 * timeout. */
static void
test_idle_keepalive(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    double start;

    assert_int_equal(http_get(hc, "/", &f->r), 0);
    assert_int_equal(f->r.status, 200);
    start = now_ms();
    expect_silent_close(hc, SHORT_TIMEOUT_MS + MARGIN_MS);
    assert_true(now_ms() - start >= SHORT_TIMEOUT_MS / 2);
}

/*
 * Past max_connections new connections are accepted and closed at once,
 * logged at most once a second, while the connections
 * already open are still served; a closed one frees a place.
 */
static void
test_max_connections(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc[SHED_MAX], *extra;
    int i, served = 0;
    double start;

    for (i = 0; i < SHED_MAX; i++) {
        hc[i] = conn_open(f, f->port);
        assert_int_equal(http_get(hc[i], "/", &f->r), 0);
    }
    start = now_ms();
    for (i = 0; i < 5; i++) {
        extra = conn_open(f, f->port);
        expect_silent_close(extra, MARGIN_MS);
    }
    start = now_ms() - start; /* how long the 5 sheds took */
    for (i = 0; i < SHED_MAX; i++) {
        assert_int_equal(http_get(hc[i], "/", &f->r), 0);
        assert_string_equal(f->r.body, "hello");
    }
    /* At most once a second: one line, plus one per second they took. */
    i = wait_log(f, "max_connections (8) reached");
    if (i < 1 || i > 1 + (int) (start / 1000)) {
        host_dump_log(&f->host);
        fail_msg("%d lines for 5 sheds in %.0f ms", i, start);
    }

    close(hc[0]->fd);
    hc[0]->fd = -1;
    for (i = 0; i < 20 && !served; i++) { /* the close takes a moment */
        extra = conn_open(f, f->port);
        if (http_get(extra, "/", &f->r) == 0) {
            served = 1;
        } else {
            sleep_ms(100);
        }
    }
    assert_true(served);
}

/* Smuggling-shaped heads and other framing errors: 400 (505 for another
 * major version) and close, from the host. */
static void
test_strict_framing(void **state)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
         "0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
         400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         "Content-Length: 5\r\n\r\nhello",
         400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHo\"st: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX-A\tB: 1\r\n\r\n", 400},
        /* A method libhttp-parser does not know is a malformed request
         * line (README: 405 is for known methods other than GET/HEAD). */
        {"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_refused_request(f, f->port, cases[i].req, cases[i].status);
    }
    /* Known but not allowed: 405, the connection stays. */
    {
        struct http_conn *hc = conn_open(f, f->port);

        send_str(hc, "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(http_read_response(hc, 0, &f->r), 0);
        assert_int_equal(f->r.status, 405);
        assert_int_equal(http_get(hc, "/", &f->r), 0);
        assert_int_equal(f->r.status, 200);
    }
}

/* --- Config refusals: exit 1, one line naming the place and the range,
 * at its line:column when the schema refuses it. */

struct refusal {
    const char *plugin; /* hello_http, status or echo */
    const char *config; /* the members of its "config" */
    const char *key;    /* refused by the schema, at this key's value
                           ("host.json:1:COL: plugins[0].config.KEY: ") */
    const char *needle;
};

/* hello_http and status take no config: the server has their limits. */
static const struct refusal refusals[] = {
    {"hello_http", "\"listen\": \"127.0.0.1:0\"", "listen",
     "unknown key (hello_http accepts: nothing)"},
    {"status", "\"path\": \"/metrics\"", "path",
     "unknown key (status accepts: nothing)"},
    {"echo", "\"listen\": \"127.0.0.1:0\", \"idle_timeout\": \"5 s\"",
     "idle_timeout",
     "expected a duration (\"10s\", \"250ms\" or seconds), got \"5 s\""},
    {"echo", "\"listen\": \"127.0.0.1:0\", \"backlog\": true", "backlog",
     "expected an integer in [0, 2147483647], got true"},
    {"echo", "\"listen\": \"127.0.0.1:0\", \"max_connections\": 1.5",
     "max_connections", "expected an integer in [1, 1048576], got 1.5"},
};

/*
 * Writes a manifest with one instance "bad" of r to dir and runs the
 * host on it (with --check when check); expects exit 1 and exactly one
 * stderr line "PATH:1:COL: plugins[0].config.KEY: NEEDLE" with COL the
 * column of KEY's value, counted here in the text; within 10 s.
 */
static void
expect_config_refused(const struct refusal *r, int check)
{
    char dir[] = "/tmp/ioloop-hostile.XXXXXX", path[64], err[4096];
    char text[2048], want[1024], key[64];
    const char *at;
    const char *argv[] = {HOST_BINARY, "--config", path,
                          check ? "--check" : NULL, NULL};
    int pipefd[2], status, lines = 0;
    size_t len = 0;
    FILE *m;
    pid_t pid;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/host.json", dir);
    snprintf(text, sizeof(text),
             "{\"backend\": \"%s\", \"backend_dir\": \"" HOST_BACKEND_DIR
             "\", \"plugins\": [{\"name\": \"bad\", \"path\": \""
             HOST_PLUGIN_DIR "/%s.so\", \"config\": {%s}}]}\n",
             backend, r->plugin, r->config);
    snprintf(key, sizeof(key), "\"%s\": ", r->key);
    at = strstr(strstr(text, "\"config\": "), key);
    assert_non_null(at);
    snprintf(want, sizeof(want), "%s:1:%d: plugins[0].config.%s: %s", path,
             (int) (at - text + strlen(key)) + 1, r->key, r->needle);
    m = fopen(path, "w");
    assert_non_null(m);
    fputs(text, m);
    fclose(m);
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        execv(HOST_BINARY, (char *const *) argv);
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, 10000) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        n = read(pipefd[0], err + len, sizeof(err) - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t) n;
    }
    close(pipefd[0]);
    err[len] = '\0';
    waitpid(pid, &status, 0);
    unlink(path);
    rmdir(dir);
    for (size_t i = 0; i < len; i++) {
        lines += err[i] == '\n';
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 || lines != 1
        || strstr(err, want) == NULL) {
        fail_msg("%s{%s}%s: status 0x%x, want \"%s\", stderr:\n%s",
                 r->plugin, r->config, check ? " --check" : "", status, want,
                 err);
    }
}

/* Each refusal through a real start. */
static void
test_config_refused_at_start(void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        expect_config_refused(&refusals[i], 0);
    }
}

/* Each refusal through --check (needs --check to run the plugins'
 * validation, as a start does). */
static void
test_config_refused_by_check(void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        expect_config_refused(&refusals[i], 1);
    }
}

int
main(int argc, char **argv)
{
#define T(fn, servers)                                                       \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,            \
                                             (void *) (servers))
    const struct CMUnitTest tests[] = {
        T(test_slowloris, SERVERS_SHORT),
        T(test_slowloris_default_config, SERVERS_DEFAULT),
        T(test_stalled_body, SERVERS_SHORT),
        T(test_chunked_body_too_large, SERVERS_SHORT),
        T(test_idle_keepalive, SERVERS_SHORT),
        T(test_max_connections, SERVERS_SHED),
        T(test_strict_framing, SERVERS_DEFAULT),
        cmocka_unit_test(test_config_refused_at_start),
    };
    const struct CMUnitTest check_tests[] = {
        cmocka_unit_test(test_config_refused_by_check),
    };
#undef T

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    if (argc > 2 && strcmp(argv[2], "check") == 0) {
        return cmocka_run_group_tests_name("check", check_tests, NULL, NULL);
    }
    return cmocka_run_group_tests_name(backend, tests, NULL, NULL);
}
