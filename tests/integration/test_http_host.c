/*
 * tests/integration/test_http_host.c: the host's HTTP server in a real
 * ioloop-host process, from the manifest's "servers": several http_test
 * instances (tests/integration/modules/http_test.c) on one port,
 * asynchronous and out-of-order finish with pipelining, streamed upload
 * and chunked download (curl), a client leaving, every limit and timeout,
 * a drain; then HTTPS with a throwaway CA (curl --cacert, and OpenSSL
 * linked here) and certificate rotation on SIGHUP under load with no
 * failed request. argv[1] names the backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "client.h"
#include "host_process.h"
#include "tls_certs.h"

#define MODULE IOLOOP_BUILD_DIR "/tests/modules/http_test.so"

static const char *backend = "epoll";
static struct host_process host;
static int port;
static struct http_conn hc;
static struct http_response r;

static const char plugins_json[] =
    "[{\"name\": \"a\", \"path\": \"" MODULE "\","
    "  \"config\": {\"name\": \"a\"}},"
    " {\"name\": \"b\", \"path\": \"" MODULE "\","
    "  \"config\": {\"name\": \"b\", \"server\": \"web\","
    "              \"prefix\": \"/own/\"}},"
    " {\"name\": \"s\", \"path\": \"" MODULE "\","
    "  \"config\": {\"name\": \"s\", \"stream\": true}}]";

/* The "servers" member: one server "web" on 127.0.0.1:0, tls (an object's
 * text) or none. */
static const char *
servers_json(const char *tls)
{
    static char json[2048];

    snprintf(json, sizeof(json),
             "{\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","
             " \"max_connections\": 6, \"max_header_size\": \"1KiB\","
             " \"max_body_size\": 1000, \"max_pipeline\": 4,"
             " \"header_timeout\": \"500ms\", \"body_timeout\": \"500ms\","
             " \"send_timeout\": \"2s\", \"keepalive_timeout\": \"%s\"%s%s,"
             " \"routes\": [{\"prefix\": \"/a/\", \"plugin\": \"a\"},"
             "  {\"prefix\": \"/b/\", \"plugin\": \"b\","
             "   \"methods\": [\"GET\"]},"
             "  {\"prefix\": \"/s/\", \"plugin\": \"s\","
             "   \"max_body_size\": \"1MiB\"}]}]}",
             /* The TLS tests keep a connection across many handshakes,
              * which a loaded machine makes slow. */
             tls != NULL ? "30s" : "1s", tls != NULL ? ", \"tls\": " : "",
             tls != NULL ? tls : "");
    return json;
}

static int
start(const char *tls)
{
    if (host_start_ex(&host, backend, servers_json(tls), plugins_json, 0)
            < 0
        || (port = host_port(&host, "host", HOST_TIMEOUT_MS)) <= 0) {
        host_dump_log(&host);
        return -1;
    }
    return 0;
}

static int
setup_plain(void **state)
{
    (void) state;
    return start(NULL);
}

static int
setup_tls(void **state)
{
    char tls[512];

    (void) state;
    tls_copy("srv.pem", "live.pem");
    tls_copy("srv.key", "live.key");
    snprintf(tls, sizeof(tls), "{\"cert\": \"%s/live.pem\", \"key\": "
             "\"%s/live.key\"}", tls_dir, tls_dir);
    return start(tls);
}

static int
teardown(void **state)
{
    int rc = 0;

    (void) state;
    if (host_stop_clean(&host) < 0) {
        rc = -1;
    }
    host_cleanup(&host);
    return rc;
}

static void
send_raw(struct http_conn *c, const char *text)
{
    assert_int_equal(client_write_all(c->fd, text, strlen(text),
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

/* Runs a shell command, returns its exit status and output. */
static int
run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *p;
    size_t n = 0;
    int status;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (n < cap - 1 && !feof(p)) {
        n += fread(out + n, 1, cap - 1 - n, p);
    }
    out[n] = '\0';
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Two plugin instances and a route of a plugin's own on one port. */
static void
test_two_plugins_one_port(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, port), 0);
    get_ok("/a/hello", "a: hello");
    get_ok("/b/hello", "b: hello");
    get_ok("/own/hello", "b: hello");
    get_ok("/s/hello", "s: hello");
    assert_int_equal(http_get(&hc, "/c/hello", &r), 0);
    assert_int_equal(r.status, 404);
    close(hc.fd);
}

/* A handler that finishes from a timer; pipelined requests finished out
 * of order come back in order. */
static void
test_async_pipelining(void **state)
{
    (void) state;
    assert_int_equal(http_connect(&hc, port), 0);
    get_ok("/a/later?ms=100", "a: later");
    send_raw(&hc, "GET /a/later?ms=300 HTTP/1.1\r\nHost: h\r\n\r\n"
                  "GET /b/hello HTTP/1.1\r\nHost: h\r\n\r\n"
                  "GET /a/later?ms=50 HTTP/1.1\r\nHost: h\r\n\r\n"
                  "GET /own/hello HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "a: later");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "b: hello");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "a: later");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "b: hello");
    close(hc.fd);
}

/* curl uploads 300 KiB chunked to a streaming handler and downloads a
 * chunked response. */
static void
test_stream_upload_chunked_download(void **state)
{
    static char out[64 * 1024];
    char file[128];
    FILE *f;

    (void) state;
    snprintf(file, sizeof(file), "%s/upload", host.dir);
    f = fopen(file, "w");
    assert_non_null(f);
    for (int i = 0; i < 300 * 1024; i++) {
        fputc('u', f);
    }
    fclose(f);
    assert_int_equal(run(out, sizeof(out),
                         "curl -sS -H 'Transfer-Encoding: chunked' "
                         "--data-binary @%s http://127.0.0.1:%d/s/echo",
                         file, port),
                     0);
    assert_string_equal(out, "s: 307200 bytes");
    assert_int_equal(run(out, sizeof(out),
                         "curl -sS -D - http://127.0.0.1:%d/a/chunks?n=500",
                         port),
                     0);
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nchunk 0\nchunk 1\n"));
    assert_non_null(strstr(out, "chunk 498\nchunk 499\n"));
}

/* A client that leaves: the handler hears on_close; its write and finish
 * get -EPIPE. */
static void
test_client_disconnect(void **state)
{
    struct http_conn other;

    (void) state;
    assert_int_equal(http_connect(&other, port), 0);
    send_raw(&other, "GET /b/wait HTTP/1.1\r\nHost: h\r\n\r\n");
    usleep(100 * 1000);
    close(other.fd);
    assert_int_equal(http_connect(&hc, port), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(http_get(&hc, "/b/stats", &r), 0);
        if (strcmp(r.body, "b: closed=0 epipe=0") != 0) {
            break;
        }
        usleep(20 * 1000);
    }
    assert_string_equal(r.body, "b: closed=1 epipe=1");
    close(hc.fd);
}

/* Sends request on a new connection; the host answers status and closes
 * the connection. */
static void
expect_close(const char *request, int status)
{
    char all[8192];
    size_t len = 0;
    ssize_t n;

    assert_int_equal(http_connect(&hc, port), 0);
    send_raw(&hc, request);
    while ((n = client_read_some(hc.fd, all + len, sizeof(all) - 1 - len,
                                 CLIENT_TIMEOUT_MS))
           > 0) {
        len += (size_t) n;
    }
    assert_int_equal(n, 0);
    all[len] = '\0';
    if (len < 12 || atoi(all + 9) != status) {
        fail_msg("expected %d, got: %.200s", status, all);
    }
    close(hc.fd);
}

static void
wait_log(const char *text, int count)
{
    for (int ms = 0; host_log_count(&host, text) < count; ms += 10) {
        if (ms >= HOST_TIMEOUT_MS) {
            host_dump_log(&host);
            fail_msg("no \"%s\" in the host's log", text);
        }
        usleep(10000);
    }
}

/* Every limit and timeout of the server. */
static void
test_limits(void **state)
{
    char req[2048], big[1100];
    int fds[6];

    (void) state;
    expect_close("GET /a/hello HTTP/1.1\r\nHost h\r\n\r\n", 400);
    expect_close("GET /a/hello HTTP/3.0\r\nHost: h\r\n\r\n", 505);
    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req), "GET /a/hello HTTP/1.1\r\nX: %s\r\n\r\n",
             big);
    expect_close(req, 431);
    expect_close("POST /a/echo HTTP/1.1\r\nHost: h\r\n"
                 "Content-Length: 1001\r\n\r\n", 413);
    expect_close("POST /a/echo HTTP/1.1\r\nHost: h\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n3e9\r\n", 413);
    expect_close("GET /a/hello HTTP/1.1\r\nHost: h\r\n", 408);
    /* A body that stops coming: closed after body_timeout. */
    assert_int_equal(http_connect(&hc, port), 0);
    send_raw(&hc, "POST /a/echo HTTP/1.1\r\nHost: h\r\n"
                  "Content-Length: 10\r\n\r\nabc");
    assert_int_equal(client_expect_eof(hc.fd, 3000), 0);
    close(hc.fd);
    /* 405 from the route's methods, with Allow. */
    assert_int_equal(http_connect(&hc, port), 0);
    send_raw(&hc, "DELETE /b/hello HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD\r\n"));
    /* Idle past keepalive_timeout: closed. */
    assert_int_equal(client_expect_eof(hc.fd, 3000), 0);
    close(hc.fd);
    /* max_connections: the 7th is closed at once, and counted. */
    for (int i = 0; i < 6; i++) {
        fds[i] = client_connect(port);
        assert_true(fds[i] >= 0);
    }
    usleep(100 * 1000);
    assert_int_equal(http_connect(&hc, port), 0);
    /* At once: well before header_timeout (500 ms) could close it. */
    assert_int_equal(client_expect_eof(hc.fd, 300), 0);
    close(hc.fd);
    for (int i = 0; i < 6; i++) {
        close(fds[i]);
    }
    /* The host closes the shed connection before it logs it. */
    wait_log("max_connections (6) reached", 1);
    /* Room again once the host saw the six close (up to 2 s). */
    for (int i = 0;; i++) {
        assert_int_equal(http_connect(&hc, port), 0);
        if (client_expect_eof(hc.fd, 100) == -1) { /* not shed */
            break;
        }
        close(hc.fd);
        assert_true(i < 20);
    }
    get_ok("/a/hello", "a: hello");
    close(hc.fd);
}

/* SIGTERM with a request in flight: it is answered (Connection: close),
 * then the host exits 0. */
static void
test_drain(void **state)
{
    (void) state;
    /* Accepted and served first: a connection still in the listen queue
     * when the drain closes the listener is reset, as nginx's would be. */
    assert_int_equal(http_connect(&hc, port), 0);
    get_ok("/a/hello", "a: hello");
    send_raw(&hc, "GET /a/later?ms=400 HTTP/1.1\r\nHost: h\r\n\r\n");
    usleep(100 * 1000);
    assert_int_equal(kill(host.pid, SIGTERM), 0);
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    assert_string_equal(r.body, "a: later");
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_int_equal(client_expect_eof(hc.fd, 2000), 0);
    close(hc.fd);
    assert_int_equal(host_wait(&host, HOST_TIMEOUT_MS), 0);
    if (!WIFEXITED(host.status) || WEXITSTATUS(host.status) != 0) {
        host_dump_log(&host);
        fail_msg("the drained host exited with status 0x%x", host.status);
    }
    /* Started again for the teardown's clean stop. */
    host_cleanup(&host);
    assert_int_equal(start(NULL), 0);
}

/* HTTPS: curl verifies the chain against the test CA; ALPN http/1.1. */
static void
test_https_curl(void **state)
{
    static char out[16 * 1024];

    (void) state;
    assert_int_equal(run(out, sizeof(out),
                         "curl -sS -v --cacert %s https://127.0.0.1:%d/a/info"
                         " 2>&1", tls_path("ca.pem"), port),
                     0);
    assert_non_null(strstr(out, "scheme=https\n"));
    assert_non_null(strstr(out, "ALPN"));
    assert_non_null(strstr(out, "http/1.1"));
    /* Another CA: refused. */
    assert_int_not_equal(run(out, sizeof(out),
                             "curl -sS --cacert %s "
                             "https://127.0.0.1:%d/a/hello 2>&1",
                             tls_path("ca2.pem"), port),
                         0);
}

/* A verified TLS client of this test, one request per call. */
struct tls_client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
};

static int
tls_open(struct tls_client *c, const char *ca)
{
    struct timeval tv = {CLIENT_TIMEOUT_MS / 1000, 0};

    c->fd = client_connect(port);
    assert_true(c->fd >= 0);
    assert_int_equal(fcntl(c->fd, F_SETFL, 0), 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set1_host(c->ssl, "127.0.0.1");
    if (SSL_connect(c->ssl) != 1) {
        SSL_free(c->ssl);
        SSL_CTX_free(c->ctx);
        ERR_clear_error();
        close(c->fd);
        return -1;
    }
    return 0;
}

/* GET /a/hello on c; 0 when "a: hello" came back. */
static int
tls_hello(struct tls_client *c)
{
    static const char req[] = "GET /a/hello HTTP/1.1\r\nHost: h\r\n\r\n";
    char buf[1024];
    int len = 0, n;

    if (SSL_write(c->ssl, req, sizeof(req) - 1) != sizeof(req) - 1) {
        return -1;
    }
    while (len < (int) sizeof(buf) - 1) {
        n = SSL_read(c->ssl, buf + len, (int) sizeof(buf) - 1 - len);
        if (n <= 0) {
            return -1;
        }
        len += n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\na: hello") != NULL) {
            return 0;
        }
    }
    return -1;
}

static void
tls_shut(struct tls_client *c)
{
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    ERR_clear_error();
    close(c->fd);
}

/* SIGHUP rotates the certificate under a stream of requests: none fails,
 * an established connection keeps working, new ones get the new one. */
static void
test_rotation_under_load(void **state)
{
    struct tls_client kept, c;
    char both[128];
    int failed = 0, ok = 0;

    (void) state;
    snprintf(both, sizeof(both), "%s/both.pem", tls_dir);
    {
        char out[256];

        assert_int_equal(run(out, sizeof(out), "cat %s %s > %s",
                             tls_path("ca.pem"), tls_path("ca2.pem"), both),
                         0);
    }
    assert_int_equal(tls_open(&kept, tls_path("ca.pem")), 0);
    assert_int_equal(tls_hello(&kept), 0);
    for (int i = 0; i < 120; i++) {
        if (i % 10 == 0) {
            assert_int_equal(tls_hello(&kept), 0); /* kept alive */
        }
        if (i == 40) {
            tls_copy("srv2.pem", "live.pem");
            tls_copy("srv2.key", "live.key");
            assert_int_equal(kill(host.pid, SIGHUP), 0);
        }
        if (tls_open(&c, both) < 0) {
            failed++;
            continue;
        }
        if (tls_hello(&c) < 0) {
            failed++;
        } else {
            ok++;
        }
        tls_shut(&c);
    }
    assert_int_equal(failed, 0);
    assert_int_equal(ok, 120);
    wait_log("SIGHUP: reloading", 1);
    /* The old connection goes on; new ones verify against ca2 only. */
    assert_int_equal(tls_hello(&kept), 0);
    tls_shut(&kept);
    assert_int_equal(tls_open(&c, tls_path("ca2.pem")), 0);
    assert_int_equal(tls_hello(&c), 0);
    tls_shut(&c);
    /* A bad key on reload: one line naming it, the current pair stays. */
    tls_copy("other.key", "live.key");
    assert_int_equal(kill(host.pid, SIGHUP), 0);
    wait_log("servers[0].tls.key: ", 1);
    assert_int_equal(tls_open(&c, tls_path("ca2.pem")), 0);
    assert_int_equal(tls_hello(&c), 0);
    tls_shut(&c);
}

/* --check and a start refuse a key that does not match its certificate,
 * and a missing certificate: one line naming the file, exit 1. */
static void
test_check_bad_tls(void **state)
{
    static const char *const cases[][3] = {
        {"srv.pem", "other.key", "servers[0].tls.key: "},
        {"missing.pem", "srv.key", "servers[0].tls.cert: "},
    };
    char manifest[128], out[4096];
    FILE *f;

    (void) state;
    snprintf(manifest, sizeof(manifest), "%s/check.json", tls_dir);
    for (size_t i = 0; i < 2; i++) {
        for (int check = 0; check < 2; check++) {
            f = fopen(manifest, "w");
            assert_non_null(f);
            fprintf(f, "{\"backend_dir\": \"%s\", \"plugins\": [{\"name\": "
                    "\"a\", \"path\": \"%s\"}], \"servers\": [{\"name\": "
                    "\"web\", \"listen\": \"127.0.0.1:0\", \"tls\": "
                    "{\"cert\": \"%s/%s\", \"key\": \"%s/%s\"}, \"routes\": "
                    "[{\"prefix\": \"/\", \"plugin\": \"a\"}]}]}",
                    HOST_BACKEND_DIR, MODULE, tls_dir, cases[i][0], tls_dir,
                    cases[i][1]);
            fclose(f);
            assert_int_equal(run(out, sizeof(out),
                                 HOST_BINARY " --config %s %s 2>&1",
                                 manifest, check ? "--check" : ""),
                             1);
            if (strstr(out, cases[i][2]) == NULL
                || strstr(out, cases[i][1][0] == 'o' ? cases[i][1]
                                                     : cases[i][0])
                       == NULL
                || strchr(out, '\n') != out + strlen(out) - 1) {
                fail_msg("expected one line with %s, got:\n%s",
                         cases[i][2], out);
            }
        }
    }
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_two_plugins_one_port),
        cmocka_unit_test(test_async_pipelining),
        cmocka_unit_test(test_stream_upload_chunked_download),
        cmocka_unit_test(test_client_disconnect),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_drain),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_https_curl),
        cmocka_unit_test(test_rotation_under_load),
        cmocka_unit_test(test_check_bad_tls),
    };
    int failed;

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    failed = cmocka_run_group_tests_name("plain", plain, setup_plain,
                                         teardown);
    if (tls_certs_make("http_host") < 0) {
        return 1;
    }
    failed += cmocka_run_group_tests_name("tls", tls, setup_tls, teardown);
    tls_certs_remove();
    return failed;
}
