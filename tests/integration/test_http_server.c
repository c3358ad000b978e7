/*
 * tests/integration/test_http_server.c: the host's HTTP server
 * (host/runtime/http_*.c) without a manifest: a real loop on the epoll
 * backend running on its own thread, servers from
 * ioloop__http_servers_create on 127.0.0.1 port 0, real http_test
 * plugins (tests/integration/modules/http_test.c) loaded and started by
 * the loader, and a real client over sockets on the test's thread.
 *
 * One server "web": prefix /a/ -> instance a, prefix /b/ -> b (methods
 * GET), prefix /s/ -> s (streams bodies), and b's own prefix /own/.
 * Small limits, so that every one is reached quickly.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client.h"
#include "http_server.h"
#include "loader.h"
#include "log.h"
#include "loop.h"

#define MODULES IOLOOP_BUILD_DIR "/tests/modules/"

static struct {
    struct ioloop_backend_lib be;
    ioloop_loop_t *loop;
    struct ioloop_plugin_set set;
    json_t *configs[3];
    pthread_t thread;
    int port;
} F;

static const struct ioloop_http_route_spec routes[] = {
    {.prefix = "/a/", .plugin = "a", .where = "servers[0].routes[0]"},
    {.prefix = "/b/", .plugin = "b", .where = "servers[0].routes[1]"},
    {.prefix = "/s/", .plugin = "s", .where = "servers[0].routes[2]",
     .max_body_size = 100000},
    {.path = "/", .plugin = "a", .where = "servers[0].routes[3]"},
};

static const char *const listen_addrs[] = {"127.0.0.1:0"};

static const struct ioloop_http_server_spec server = {
    .name = "web",
    .where = "servers[0]",
    .listen = listen_addrs,
    .nlisten = 1,
    .limits = {
        .max_connections = 8,
        .max_header_size = 1024,
        .max_body_size = 1000,
        .max_pipeline = 4,
        .header_timeout = 600 * IOLOOP_NS_PER_MS,
        .body_timeout = 600 * IOLOOP_NS_PER_MS,
        .send_timeout = 2 * IOLOOP_NS_PER_S,
        .keepalive_timeout = 1200 * IOLOOP_NS_PER_MS,
    },
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
};

static void *
run_loop(void *arg)
{
    (void) arg;
    ioloop_start(F.loop);
    return NULL;
}

static int
stop_cb(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

/* The port the kernel gave the server's listener. */
static int
server_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    /* The listener is the lowest fd bound to 127.0.0.1 by this test:
     * scan ours for a listening TCP socket. */
    for (int fd = 3; fd < 1024; fd++) {
        int listening = 0;
        socklen_t l = sizeof(listening);

        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) == 0
            && listening
            && getsockname(fd, (struct sockaddr *) &sin, &len) == 0
            && sin.sin_family == AF_INET) {
            return ntohs(sin.sin_port);
        }
        len = sizeof(sin);
    }
    return -1;
}

static int
setup(void **state)
{
    static const char *const names[] = {"a", "b", "s"};
    static const char *const configs[] = {
        "{\"name\": \"a\"}",
        "{\"name\": \"b\", \"methods\": \"GET,PUT\", \"server\": \"web\","
        " \"prefix\": \"/own/\"}",
        "{\"name\": \"s\", \"stream\": true}",
    };
    struct ioloop_instance_spec specs[3];
    char err[1024], at[256];

    (void) state;
    ioloop__log_threshold = IOLOOP_LOG_ERROR;
    assert_int_equal(ioloop__backend_open(IOLOOP_BUILD_DIR
                                          "/backends/epoll.so",
                                          &F.be, err, sizeof(err)),
                     0);
    F.loop = ioloop_loop_new(F.be.ops, err, sizeof(err));
    assert_non_null(F.loop);
    for (int i = 0; i < 3; i++) {
        F.configs[i] = json_loads(configs[i], 0, NULL);
        specs[i] = (struct ioloop_instance_spec) {
            .name = names[i],
            .path = MODULES "http_test.so",
            .where = "plugins[0]",
            .config = F.configs[i],
            .log_level = -1,
        };
    }
    if (ioloop__plugins_load(&F.set, specs, 3, MODULES, ".", err,
                             sizeof(err), at, sizeof(at))
        != 0) {
        fail_msg("load: %s", err);
    }
    if (ioloop__http_servers_create(F.loop, &server, 1, err, sizeof(err))
        != 0) {
        fail_msg("create: %s", err);
    }
    if (ioloop__plugins_init(&F.set, F.loop, err, sizeof(err)) != 0) {
        fail_msg("init: %s", err);
    }
    if (ioloop__http_servers_start(F.loop, NULL, err, sizeof(err)) != 0) {
        fail_msg("start: %s", err);
    }
    F.port = server_port();
    assert_true(F.port > 0);
    assert_int_equal(pthread_create(&F.thread, NULL, run_loop, NULL), 0);
    return 0;
}

static void
loop_stop(void)
{
    assert_int_equal(ioloop_add_callback(F.loop, stop_cb, NULL), 0);
    pthread_join(F.thread, NULL);
}

static int
teardown(void **state)
{
    (void) state;
    ioloop__plugins_fini(&F.set, F.loop);
    ioloop__http_servers_free(F.loop);
    ioloop__plugins_unload(&F.set);
    ioloop_loop_free(F.loop);
    ioloop__backend_close(&F.be);
    for (int i = 0; i < 3; i++) {
        json_decref(F.configs[i]);
    }
    memset(&F, 0, sizeof(F));
    return 0;
}

static struct http_conn hc;
static struct http_response r;

static void
send_raw(struct http_conn *c, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t) n < sizeof(buf));
    assert_int_equal(client_write_all(c->fd, buf, (size_t) n,
                                      CLIENT_TIMEOUT_MS),
                     0);
}

static void
get_ok(const char *path, const char *body)
{
    assert_int_equal(http_get(&hc, path, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, body);
}

static void
expect_header(const char *name, const char *value)
{
    char v[256];

    if (http_header(&r, name, v, sizeof(v)) != 0) {
        fail_msg("no %s in:\n%s", name, r.head);
    }
    assert_string_equal(v, value);
}

static void
expect_no_header(const char *name)
{
    char v[256];

    assert_int_not_equal(http_header(&r, name, v, sizeof(v)), 0);
}

/* Reads until EOF; returns everything read (NUL-terminated). */
static size_t
read_to_eof(struct http_conn *c, char *out, size_t cap)
{
    size_t len = c->len < cap - 1 ? c->len : cap - 1;
    ssize_t n;

    memcpy(out, c->buf, len);
    c->len = 0;
    while ((n = client_read_some(c->fd, out + len, cap - 1 - len,
                                 CLIENT_TIMEOUT_MS))
           > 0) {
        len += (size_t) n;
    }
    assert_int_equal(n, 0); /* EOF, not a timeout */
    out[len] = '\0';
    return len;
}

/* Routes: two plugins on one port, a route of a plugin's own, 404. */
static void
test_routes(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    get_ok("/a/hello", "a: hello");
    expect_header("Server", "ioloop-host");
    expect_header("Content-Length", "8");
    expect_no_header("Connection");
    {
        char date[64];

        assert_int_equal(http_header(&r, "Date", date, sizeof(date)), 0);
        assert_non_null(strstr(date, " GMT"));
    }
    get_ok("/b/hello", "b: hello");
    get_ok("/own/x/hello", "b: hello");
    assert_int_equal(http_get(&hc, "/hello", &r), 0); /* "/" is exact */
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "404 Not Found\n");
    assert_int_equal(http_get(&hc, "/", &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "a: no such thing");
    close(hc.fd);
}

/* Request accessors: path, rest, decoded query, headers, address. */
static void
test_request(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "GET /a/x%%20y/info?b=1&a=h%%C3%%A9+llo%%21&a=2 "
             "HTTP/1.1\r\nHost: h\r\nx-TEST:   spaced value  \r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "a: GET\npath=/a/x%20y/info\nrest=x%20y/info\n"
                        "a=h\xc3\xa9 llo!\nx-test=spaced value\n"
                        "scheme=http\nip=127.0.0.1\n");
    /* The absolute form routes by its path. */
    send_raw(&hc, "GET http://h/b/info?a= HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_non_null(strstr(r.body, "path=/b/info\nrest=info\na=\n"));
    close(hc.fd);
}

/* The server's end of the client's connection fd: the socket of this
 * process whose local and peer addresses are fd's peer and local ones. */
static int
server_end(int fd)
{
    struct sockaddr_in local, peer, l, p;
    socklen_t len = sizeof(local);

    assert_int_equal(getsockname(fd, (struct sockaddr *) &local, &len), 0);
    len = sizeof(peer);
    assert_int_equal(getpeername(fd, (struct sockaddr *) &peer, &len), 0);
    for (int s = 3; s < 1024; s++) {
        socklen_t ll = sizeof(l), pl = sizeof(p);

        if (s != fd && getsockname(s, (struct sockaddr *) &l, &ll) == 0
            && getpeername(s, (struct sockaddr *) &p, &pl) == 0
            && l.sin_family == AF_INET && ll == sizeof(l)
            && l.sin_port == peer.sin_port && p.sin_port == local.sin_port
            && l.sin_addr.s_addr == peer.sin_addr.s_addr
            && p.sin_addr.s_addr == local.sin_addr.s_addr) {
            return s;
        }
    }
    return -1;
}

/* Every accepted connection has Nagle off (TCP_NODELAY): a response
 * written after a small unacknowledged write (TLS 1.3's tickets) would
 * otherwise wait for the client's delayed ACK. */
static void
test_nodelay(void **state)
{
    int s, on = 0;
    socklen_t len = sizeof(on);

    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    get_ok("/a/hello", "a: hello"); /* accepted by now */
    s = server_end(hc.fd);
    assert_true(s >= 0);
    assert_int_equal(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    assert_int_not_equal(on, 0);
    close(hc.fd);
}

/* Methods: 405 with Allow (GET implies HEAD), HEAD without a body. */
static void
test_methods(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "POST /b/hello HTTP/1.1\r\nHost: h\r\n"
             "Content-Length: 3\r\n\r\nabc");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 405);
    expect_header("Allow", "GET, PUT, HEAD");
    send_raw(&hc, "HEAD /b/hello HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 1, &r), 0);
    assert_int_equal(r.status, 200);
    expect_header("Content-Length", "8");
    get_ok("/b/hello", "b: hello"); /* nothing of HEAD's body came */
    send_raw(&hc, "GET /a/status?code=201 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 201);
    expect_header("X-Plugin", "a");
    close(hc.fd);
}

/* Asynchronous finish from a timer; out of order finish with
 * pipelining: responses in request order. */
static void
test_async_pipeline(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    get_ok("/a/later?ms=50", "a: later");
    send_raw(&hc, "GET /a/later?ms=300 HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /b/hello HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /a/later?ms=100 HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /a/info?a=last HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "a: later");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "b: hello");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "a: later");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_non_null(strstr(r.body, "a=last"));
    close(hc.fd);
}

/* Chunked download; HTTP/1.0 gets it delimited by the close. */
static void
test_chunked(void **state)
{
    char all[4096];

    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "GET /a/chunks?n=3 HTTP/1.1\r\nHost: h\r\n"
             "Connection: close\r\n\r\n");
    read_to_eof(&hc, all, sizeof(all));
    assert_non_null(strstr(all, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(all, "Connection: close\r\n"));
    assert_non_null(strstr(all, "\r\n\r\n8\r\nchunk 0\n\r\n8\r\nchunk 1\n"
                                "\r\n8\r\nchunk 2\n\r\n0\r\n\r\n"));
    close(hc.fd);
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "GET /a/chunks?n=2 HTTP/1.0\r\n\r\n");
    read_to_eof(&hc, all, sizeof(all));
    assert_null(strstr(all, "Transfer-Encoding"));
    assert_null(strstr(all, "Content-Length"));
    assert_non_null(strstr(all, "\r\n\r\nchunk 0\nchunk 1\n"));
    close(hc.fd);
}

/* Bodies: buffered echo, 100-continue, 413 at once, a chunked upload
 * streamed, a streamed body past the route's limit. */
static void
test_bodies(void **state)
{
    char body[2000];

    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "POST /a/echo HTTP/1.1\r\nHost: h\r\n"
             "Content-Length: 5\r\n\r\nhello");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "hello");
    send_raw(&hc, "POST /a/echo HTTP/1.1\r\nHost: h\r\n"
             "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
             "0\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "abcde");
    /* 100-continue: the interim response only when the length fits. */
    send_raw(&hc, "POST /a/echo HTTP/1.1\r\nHost: h\r\n"
             "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 100);
    send_raw(&hc, "ok");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    send_raw(&hc, "POST /a/echo HTTP/1.1\r\nHost: h\r\n"
             "Expect: 100-continue\r\nContent-Length: 1001\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 413);
    expect_header("Connection", "close");
    close(hc.fd);

    /* Streamed: the route's own limit (100000) instead of 1000. */
    assert_int_equal(http_connect(&hc, F.port), 0);
    memset(body, 'x', sizeof(body));
    send_raw(&hc, "POST /s/echo HTTP/1.1\r\nHost: h\r\n"
             "Transfer-Encoding: chunked\r\n\r\n7d0\r\n%.2000s\r\n"
             "7d0\r\n%.2000s\r\n0\r\n\r\n", body, body);
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "s: 4000 bytes");
    send_raw(&hc, "POST /s/echo HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "s: 0 bytes");
    send_raw(&hc, "POST /s/echo HTTP/1.1\r\nHost: h\r\n"
             "Transfer-Encoding: chunked\r\n\r\n186a1\r\n%.2000s",
             body);
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 413);
    close(hc.fd);
    /* The streaming handler heard on_close. */
    assert_int_equal(http_connect(&hc, F.port), 0);
    get_ok("/s/stats", "s: closed=1 epipe=0");
    close(hc.fd);
}

/* A client that leaves: on_close runs, writes and finish get -EPIPE. */
static void
test_client_gone(void **state)
{
    struct http_conn other;

    (void) state;
    assert_int_equal(http_connect(&other, F.port), 0);
    send_raw(&other, "GET /b/wait HTTP/1.1\r\nHost: h\r\n\r\n");
    usleep(100 * 1000);
    close(other.fd);
    assert_int_equal(http_connect(&hc, F.port), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(http_get(&hc, "/b/stats", &r), 0);
        if (strcmp(r.body, "b: closed=0 epipe=0") != 0) {
            break;
        }
        usleep(20 * 1000);
    }
    assert_string_equal(r.body, "b: closed=1 epipe=1");
    close(hc.fd);
}

/* Backpressure: 8 MiB through http_write's 1 and http_flush. */
static void
test_big(void **state)
{
    static char all[9 << 20];
    size_t len, body;
    char *p;

    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "GET /a/big?kb=8192 HTTP/1.1\r\nHost: h\r\n"
             "Connection: close\r\n\r\n");
    usleep(200 * 1000); /* let the server meet a full socket */
    len = read_to_eof(&hc, all, sizeof(all));
    p = strstr(all, "\r\n\r\n");
    assert_non_null(p);
    /* Chunked: count the payload bytes. */
    body = 0;
    p += 4;
    while (p < all + len) {
        size_t n = strtoul(p, &p, 16);

        if (n == 0) {
            break;
        }
        p += 2 + n + 2;
        body += n;
    }
    assert_int_equal(body, 8192 * 1024);
    close(hc.fd);
}

static void
expect_status_then_eof(const char *request, int status)
{
    char all[8192];

    assert_int_equal(http_connect(&hc, F.port), 0);
    assert_int_equal(client_write_all(hc.fd, request, strlen(request),
                                      CLIENT_TIMEOUT_MS),
                     0);
    read_to_eof(&hc, all, sizeof(all));
    if (atoi(all + 9) != status) {
        fail_msg("expected %d, got: %.200s", status, all);
    }
    assert_non_null(strstr(all, "Connection: close\r\n"));
    close(hc.fd);
}

/* The host's answers: 400, 431, 505, 408; timeouts; max_connections. */
static void
test_limits(void **state)
{
    char big[2048];
    int fds[8];
    struct timespec t0, t1;

    (void) state;
    expect_status_then_eof("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400);
    expect_status_then_eof("GARBAGE\r\n\r\n", 400);
    expect_status_then_eof("GET /a/hello HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    {
        char req[4096];

        snprintf(req, sizeof(req),
                 "GET /a/hello HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n",
                 big);
        expect_status_then_eof(req, 431);
    }
    /* A head that never ends: 408 within header_timeout (+ margin). */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_status_then_eof("GET /a/hello HTTP/1.1\r\nHost: h\r\n", 408);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec <= 3);
    /* Keep-alive timeout: an idle connection closes, without a word. */
    assert_int_equal(http_connect(&hc, F.port), 0);
    get_ok("/a/hello", "a: hello");
    assert_int_equal(client_expect_eof(hc.fd, 4000), 0);
    close(hc.fd);
    /* max_connections (8): the 9th is closed at once. */
    for (int i = 0; i < 8; i++) {
        fds[i] = client_connect(F.port);
        assert_true(fds[i] >= 0);
    }
    usleep(100 * 1000);
    assert_int_equal(http_connect(&hc, F.port), 0);
    assert_int_equal(client_expect_eof(hc.fd, 2000), 0);
    close(hc.fd);
    for (int i = 0; i < 8; i++) {
        close(fds[i]);
    }
    usleep(100 * 1000);
    assert_int_equal(http_connect(&hc, F.port), 0);
    get_ok("/a/hello", "a: hello");
    close(hc.fd);
}

/* An instance stopping with a request unfinished: the host answers 503. */
static void
test_release_503(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, F.port), 0);
    send_raw(&hc, "GET /a/never HTTP/1.1\r\nHost: h\r\n\r\n");
    usleep(200 * 1000);
    loop_stop();
    ioloop__plugins_fini(&F.set, F.loop);
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 503);
    close(hc.fd);
}

static void
test_stop(void **state)
{
    (void) state;
    loop_stop();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_nodelay),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_async_pipeline),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_client_gone),
        cmocka_unit_test(test_big),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop),
    };
    const struct CMUnitTest release[] = {
        cmocka_unit_test(test_release_503),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);

    return failed + cmocka_run_group_tests(release, setup, teardown);
}
