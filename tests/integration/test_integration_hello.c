/*
 * tests/integration/test_integration_hello.c: the hello_http plugin in a
 * real ioloop-host, behind the manifest's "servers" (the host's HTTP
 * server), over real sockets on 127.0.0.1. argv[1] names the backend to
 * run on. Every test starts its own host, and its teardown
 * stops it with SIGTERM and requires a clean exit (status 0), which also
 * checks fini (and, in sanitizer builds, leaks) after each scenario.
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"

/* One server "web" routing four exact paths to the one hello instance,
 * with a small head limit, to check the 431 boundary to the byte. */
#define MAX_HEAD 1024
#define SERVERS                                                              \
    "{\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","          \
    "  \"max_header_size\": \"1KiB\", \"routes\": ["                         \
    "    {\"path\": \"/\", \"plugin\": \"hello\"},"                          \
    "    {\"path\": \"/a\", \"plugin\": \"hello\"},"                         \
    "    {\"path\": \"/b\", \"plugin\": \"hello\"},"                         \
    "    {\"path\": \"/c\", \"plugin\": \"hello\"}]}]}"
#define PLUGINS                                                              \
    "[{\"name\": \"hello\","                                                 \
    "  \"path\": \"" HOST_PLUGIN_DIR "/hello_http.so\"}]"

#define MAX_CONNS 128

struct fixture {
    struct host_process host;
    int port; /* "web" */
    struct http_conn *conns[MAX_CONNS];
    int nconns;
    struct http_response r;
};

/* The backend under test (argv[1]). */
static const char *backend = "epoll";

/* The routed paths, pipelined in turn. */
static const char *const pipe_paths[] = { "/a", "/b", "/c" };

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    *state = f;
    if (host_start_ex(&f->host, backend, SERVERS, PLUGINS, 0) < 0
        || (f->port = host_port(&f->host, "host", HOST_TIMEOUT_MS)) <= 0) {
        fprintf(stderr, "setup: the host did not start on backend %s\n",
                backend);
        host_dump_log(&f->host);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    double elapsed;
    int i, rc = 0;

    for (i = 0; i < f->nconns; i++) {
        if (f->conns[i]->fd >= 0) {
            close(f->conns[i]->fd);
        }
        free(f->conns[i]);
    }
    if (f->host.pid > 0) {
        if (host_stop(&f->host, SIGTERM, HOST_TIMEOUT_MS, &elapsed) < 0) {
            fprintf(stderr, "teardown: no exit %d ms after SIGTERM\n",
                    HOST_TIMEOUT_MS);
            rc = -1;
        } else if (!WIFEXITED(f->host.status)
                   || WEXITSTATUS(f->host.status) != 0) {
            fprintf(stderr, "teardown: the host ended with status 0x%x\n",
                    f->host.status);
            rc = -1;
        }
    }
    if (rc < 0) {
        host_dump_log(&f->host);
    }
    host_cleanup(&f->host);
    free(f);
    return rc;
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

/* Reads one response and checks its status and (unless NULL) body. */
static void
expect(struct http_conn *hc, int head_only, struct http_response *r,
       int status, const char *body)
{
    assert_int_equal(http_read_response(hc, head_only, r), 0);
    assert_int_equal(r->status, status);
    if (body != NULL) {
        assert_string_equal(r->body, body);
    }
}

static void
expect_header(const struct http_response *r, const char *name,
              const char *value)
{
    char got[256];

    assert_int_equal(http_header(r, name, got, sizeof(got)), 0);
    assert_string_equal(got, value);
}

/* The server closes: EOF, with no more bytes (buffered or not). */
static void
expect_closed(struct http_conn *hc)
{
    assert_int_equal(hc->len, 0);
    assert_int_equal(client_expect_eof(hc->fd, CLIENT_TIMEOUT_MS), 0);
}

/* The real curl prints exactly the body. */
static void
test_curl_hello(void **state)
{
    struct fixture *f = *state;
    char cmd[256], out[256];
    size_t n;
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd),
             "curl -s -S --max-time 5 http://127.0.0.1:%d/", f->port);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    st = pclose(p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(out, "hello");
}

/* Status line and headers of a 200, with a current IMF-fixdate Date. */
static void
test_response_headers(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    char date[64], *end;
    struct tm tm = { 0 };
    time_t t;

    assert_int_equal(http_get(hc, "/", &f->r), 0);
    assert_int_equal(strncmp(f->r.head, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_string_equal(f->r.body, "hello");
    expect_header(&f->r, "Server", "ioloop-host");
    expect_header(&f->r, "Content-Type", "text/plain; charset=UTF-8");
    expect_header(&f->r, "Content-Length", "5");
    assert_int_equal(http_header(&f->r, "Connection", date, sizeof(date)),
                     -1);
    assert_int_equal(http_header(&f->r, "Date", date, sizeof(date)), 0);
    assert_int_equal(strlen(date), 29);
    end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_non_null(end);
    assert_int_equal(*end, '\0');
    t = timegm(&tm);
    assert_true(labs((long) (t - time(NULL))) <= 5);
}

/* 404 for an unknown path; the connection stays usable. */
static void
test_not_found(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    assert_int_equal(http_get(hc, "/nope", &f->r), 0);
    assert_int_equal(f->r.status, 404);
    assert_int_equal(http_get(hc, "/", &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_string_equal(f->r.body, "hello");
}

/* 405 with Allow for POST on a route; its body is consumed, not parsed
 * as the next request. */
static void
test_method_not_allowed(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
                 "x=1");
    expect(hc, 0, &f->r, 405, NULL);
    assert_non_null(strstr(f->r.head, "\r\nAllow: GET"));
    send_str(hc, "DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(hc, 0, &f->r, 405, NULL);
    assert_int_equal(http_get(hc, "/a", &f->r), 0);
    assert_string_equal(f->r.body, "hello");
}

/* HEAD: the GET headers (Content-Length: 5) and no body bytes: the next
 * response on the connection starts right after the head. */
static void
test_head(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(hc, 1, &f->r, 200, NULL);
    expect_header(&f->r, "Content-Length", "5");
    send_str(hc, "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(hc, 1, &f->r, 404, NULL);
    assert_int_equal(http_get(hc, "/b", &f->r), 0);
    assert_int_equal(f->r.status, 200);
    assert_string_equal(f->r.body, "hello");
}

/* The query string is ignored; the absolute form is matched by path. */
static void
test_query_and_absolute_url(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    assert_int_equal(http_get(hc, "/a?x=1&y=2", &f->r), 0);
    assert_string_equal(f->r.body, "hello");
    assert_int_equal(http_get(hc, "/?", &f->r), 0);
    assert_string_equal(f->r.body, "hello");
    assert_int_equal(http_get(hc, "http://127.0.0.1/c?q", &f->r), 0);
    assert_string_equal(f->r.body, "hello");
    assert_int_equal(http_get(hc, "/a/", &f->r), 0);
    assert_int_equal(f->r.status, 404);
}

/* A malformed request: 400, Connection: close, then EOF. */
static void
test_bad_request(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n");
    expect(hc, 0, &f->r, 400, NULL);
    expect_header(&f->r, "Connection", "close");
    expect_closed(hc);

    hc = conn_open(f, f->port);
    send_str(hc, "\x01\x02 garbage\r\n\r\n");
    expect(hc, 0, &f->r, 400, NULL);
    expect_closed(hc);
}

/*
 * After an error response the server closes gracefully (lingering: it
 * shuts its side and drops input), but not forever: a client that keeps
 * sending is cut off (its sends fail) within a few seconds.
 */
static void
test_bad_request_linger_bounded(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    struct timespec tick = { 0, 50 * 1000000L };
    char junk[512];
    int i;

    memset(junk, 'j', sizeof(junk));
    send_str(hc, "NOT-HTTP\r\n\r\n");
    expect(hc, 0, &f->r, 400, NULL);
    for (i = 0; i < 100; i++) { /* up to 5 s */
        if (send(hc->fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0
            && errno != EAGAIN) {
            break;
        }
        nanosleep(&tick, NULL);
    }
    print_message("cut off after %d ms\n", i * 50);
    assert_true(i < 100);
}

/* Sends a GET / whose head (request line + headers) is exactly len bytes
 * (len >= 64), padded with one header. */
static void
send_head_of(struct http_conn *hc, size_t len)
{
    static const char start[] = "GET / HTTP/1.1\r\nX-Pad: ";
    char *req = malloc(len + 1);
    size_t pad = len - (sizeof(start) - 1) - 4;

    assert_non_null(req);
    memcpy(req, start, sizeof(start) - 1);
    memset(req + sizeof(start) - 1, 'p', pad);
    memcpy(req + len - 4, "\r\n\r\n", 5);
    assert_int_equal(strlen(req), len);
    send_str(hc, req);
    free(req);
}

/* A head over max_header_size: 431 and close; a head of exactly the
 * limit passes, also as the second request on a connection. */
static void
test_header_too_large(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_head_of(hc, 9000);
    expect(hc, 0, &f->r, 431, NULL);
    expect_header(&f->r, "Connection", "close");
    expect_closed(hc);

    hc = conn_open(f, f->port);
    send_head_of(hc, MAX_HEAD);
    expect(hc, 0, &f->r, 200, "hello");
    send_head_of(hc, MAX_HEAD);
    expect(hc, 0, &f->r, 200, "hello");
    send_head_of(hc, MAX_HEAD + 1);
    expect(hc, 0, &f->r, 431, NULL);
    expect_closed(hc);

    /* A head that never ends is cut off as well (past MAX_HEAD). */
    hc = conn_open(f, f->port);
    send_str(hc, "GET /");
    for (int i = 0; i < 2 * MAX_HEAD / 63; i++) {
        char chunk[64];

        memset(chunk, 'u', sizeof(chunk) - 1);
        chunk[sizeof(chunk) - 1] = '\0';
        if (client_write_all(hc->fd, chunk, strlen(chunk), 1000) < 0) {
            break; /* the server may have closed already */
        }
    }
    expect(hc, 0, &f->r, 431, NULL);
    expect_closed(hc);

    /* Past the limit, then a byte the parser refuses, in one write: 431,
     * as when the same bytes come in small reads (found by the old
     * hello_http parser's fuzz harness; was 400). */
    hc = conn_open(f, f->port);
    {
        char req[MAX_HEAD + 64];
        int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Pad: ");

        memset(req + n, 'p', MAX_HEAD);
        memcpy(req + n + MAX_HEAD, "\x01\r\n\r\n", 6);
        assert_int_equal(client_write_all(hc->fd, req,
                                          (size_t) n + MAX_HEAD + 5,
                                          CLIENT_TIMEOUT_MS),
                         0);
    }
    expect(hc, 0, &f->r, 431, NULL);
    expect_closed(hc);
}

/* One keep-alive connection serves 1000 sequential requests. */
static void
test_keepalive_1000(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    int i;

    for (i = 0; i < 1000; i++) {
        assert_int_equal(http_get(hc, pipe_paths[i % 3], &f->r), 0);
        assert_int_equal(f->r.status, 200);
        assert_string_equal(f->r.body, "hello");
    }
}

/* Appends request i of a pipelining sequence to buf: GETs of /a /b /c in
 * turn, with a HEAD and a 404 mixed in. */
static size_t
pipe_request(char *buf, size_t cap, int i)
{
    const char *method = i % 7 == 5 ? "HEAD" : "GET";
    const char *path = i % 11 == 7 ? "/nope" : pipe_paths[i % 3];

    return (size_t) snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n",
                             method, path);
}

/* Reads and checks the response to request i of pipe_request. */
static void
pipe_expect(struct http_conn *hc, struct http_response *r, int i)
{
    int head = i % 7 == 5;

    if (i % 11 == 7) {
        expect(hc, head, r, 404, NULL);
    } else {
        expect(hc, head, r, 200, head ? "" : "hello");
    }
}

/* 12 requests in one write are answered in order; so are the same
 * requests sent one byte per write. */
static void
test_pipelining(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    struct timespec pause = { 0, 100000 };
    char buf[4096];
    size_t len = 0, i;
    int n = 12, k;

    for (k = 0; k < n; k++) {
        len += pipe_request(buf + len, sizeof(buf) - len, k);
    }
    assert_int_equal(client_write_all(hc->fd, buf, len, CLIENT_TIMEOUT_MS),
                     0);
    for (k = 0; k < n; k++) {
        pipe_expect(hc, &f->r, k);
    }

    for (i = 0; i < len; i++) {
        assert_int_equal(client_write_all(hc->fd, buf + i, 1,
                                          CLIENT_TIMEOUT_MS),
                         0);
        nanosleep(&pause, NULL);
    }
    for (k = 0; k < n; k++) {
        pipe_expect(hc, &f->r, k);
    }
}

/*
 * Far more pipelined requests than the socket buffers hold the responses
 * of (about 1.5 MiB), from a client that reads nothing at first: the
 * server's output goes pending, it stops reading (backpressure), and
 * still answers everything in order.
 */
static void
test_pipelining_backpressure(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);
    struct timespec settle = { 0, 200 * 1000000L };
    const int n = 10000;
    size_t len = 0, sent = 0, cap = (size_t) n * 64;
    char *buf = malloc(cap);
    int k, done = 0;
    ssize_t w;

    assert_non_null(buf);
    for (k = 0; k < n; k++) {
        len += pipe_request(buf + len, cap - len, k);
    }
    /* Write what the sockets take without reading anything. */
    while (sent < len
           && (w = send(hc->fd, buf + sent, len - sent, MSG_NOSIGNAL)) > 0) {
        sent += (size_t) w;
    }
    nanosleep(&settle, NULL);
    while (done < n) {
        int rc = http_take_response(hc, done % 7 == 5, &f->r);

        assert_int_not_equal(rc, -1);
        if (rc == 1) {
            if (done % 11 == 7) {
                assert_int_equal(f->r.status, 404);
            } else {
                assert_int_equal(f->r.status, 200);
                assert_string_equal(f->r.body, done % 7 == 5 ? "" : "hello");
            }
            done++;
            continue;
        }
        if (sent < len) {
            w = send(hc->fd, buf + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t) w;
            }
        }
        assert_int_equal(http_fill(hc), 0);
    }
    assert_int_equal(sent, len);
    free(buf);
}

/* Connection: close: the response says so, then EOF. */
static void
test_connection_close(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(hc, 0, &f->r, 200, "hello");
    expect_header(&f->r, "Connection", "close");
    expect_closed(hc);

    /* Requests pipelined after it are not answered. */
    hc = conn_open(f, f->port);
    send_str(hc, "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"
                 "GET /b HTTP/1.1\r\n\r\n");
    expect(hc, 0, &f->r, 200, "hello");
    expect_closed(hc);
}

/* HTTP/1.0 closes unless asked to keep alive, and is told when kept. */
static void
test_http10(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "GET /b HTTP/1.0\r\n\r\n");
    expect(hc, 0, &f->r, 200, "hello");
    expect_header(&f->r, "Connection", "close");
    expect_closed(hc);

    hc = conn_open(f, f->port);
    send_str(hc, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect(hc, 0, &f->r, 200, "hello");
    expect_header(&f->r, "Connection", "keep-alive");
    send_str(hc, "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect(hc, 0, &f->r, 200, "hello");
}

/* Request bodies (Content-Length, chunked) are consumed and ignored. */
static void
test_request_bodies(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = conn_open(f, f->port);

    send_str(hc, "GET / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"
                 "POST /nope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n3\r\nGET\r\n0\r\n\r\n"
                 "GET /a HTTP/1.1\r\n\r\n");
    expect(hc, 0, &f->r, 200, "hello");
    expect(hc, 0, &f->r, 404, NULL);
    expect(hc, 0, &f->r, 200, "hello");
}

/* Many connections open at once, each answered. */
static void
test_many_connections(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc[100];
    int i;

    for (i = 0; i < 100; i++) {
        hc[i] = conn_open(f, f->port);
        send_str(hc[i], "GET /c HTTP/1.1\r\n\r\n");
    }
    for (i = 99; i >= 0; i--) {
        expect(hc[i], 0, &f->r, 200, "hello");
    }
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_curl_hello),
        T(test_response_headers),
        T(test_not_found),
        T(test_method_not_allowed),
        T(test_head),
        T(test_query_and_absolute_url),
        T(test_bad_request),
        T(test_bad_request_linger_bounded),
        T(test_header_too_large),
        T(test_keepalive_1000),
        T(test_pipelining),
        T(test_pipelining_backpressure),
        T(test_connection_close),
        T(test_http10),
        T(test_request_bodies),
        T(test_many_connections),
#undef T
    };

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name(backend, tests, NULL, NULL);
}
