/*
 * tests/integration/test_tls_echo.c: the echo plugin over TLS in a real
 * ioloop-host, on 127.0.0.1. Clients: `openssl s_client`, and OpenSSL
 * linked here for exact byte counts. Certificates come from
 * tests/tls_certs.sh at test time. argv[1] names the backend.
 */
#include <errno.h>
#include <fcntl.h>
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

#define CHUNK 16384

static const char *backend = "epoll";

struct fixture {
    struct host_process host;
    int port;
};

/* A verified TLS connection of this test. */
struct conn {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
};

/* The plugins array: echo on 127.0.0.1:0 over TLS with dir/cert, dir/key. */
static const char *
plugins(const char *cert, const char *key)
{
    static char json[1024];

    snprintf(json, sizeof(json),
             "[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR
             "/echo.so\", \"config\": {\"listen\": \"127.0.0.1:0\", "
             "\"tls_cert\": \"%s/%s\", \"tls_key\": \"%s/%s\"}}]",
             tls_dir, cert, tls_dir, key);
    return json;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    *state = f;
    tls_copy("srv.pem", "live.pem");
    tls_copy("srv.key", "live.key");
    if (host_start(&f->host, backend, plugins("live.pem", "live.key")) < 0
        || (f->port = host_port(&f->host, "echo", HOST_TIMEOUT_MS)) <= 0) {
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
    int rc = 0;

    if (host_stop(&f->host, SIGTERM, HOST_TIMEOUT_MS, &elapsed) < 0
        || !WIFEXITED(f->host.status) || WEXITSTATUS(f->host.status) != 0) {
        fprintf(stderr, "teardown: no clean exit after SIGTERM\n");
        host_dump_log(&f->host);
        rc = -1;
    }
    host_cleanup(&f->host);
    free(f);
    return rc;
}

/* Connects and completes a handshake verified against dir/ca_file.
 * Returns 0, or -1 (closed) when the handshake fails. */
static int
tls_connect(struct conn *c, int port, const char *ca_file)
{
    struct timeval tv = {CLIENT_TIMEOUT_MS / 1000, 0};

    c->fd = client_connect(port);
    assert_true(c->fd >= 0);
    /* Blocking, with a bound on every wait. */
    assert_int_equal(fcntl(c->fd, F_SETFL, 0), 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, tls_path(ca_file),
                                                   NULL),
                     1);
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

static void
tls_close(struct conn *c)
{
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    ERR_clear_error();
    close(c->fd);
}

/* n CHUNK-sized round trips of pseudo-random bytes come back exactly. */
static void
tls_round_trips(struct conn *c, int n, uint32_t seed)
{
    unsigned char data[CHUNK], back[CHUNK];

    for (int r = 0; r < n; r++) {
        size_t got = 0;

        for (size_t i = 0; i < sizeof(data); i++) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            data[i] = (unsigned char) seed;
        }
        assert_int_equal(SSL_write(c->ssl, data, sizeof(data)), CHUNK);
        while (got < sizeof(back)) {
            int k = SSL_read(c->ssl, back + got, (int) (sizeof(back) - got));

            assert_true(k > 0);
            got += (size_t) k;
        }
        assert_memory_equal(data, back, sizeof(data));
    }
}

/* The issuer of the connection's server certificate. */
static void
issuer(struct conn *c, char *out, int len)
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);

    assert_non_null(cert);
    X509_NAME_oneline(X509_get_issuer_name(cert), out, len);
    X509_free(cert);
}

/* Waits up to HOST_TIMEOUT_MS for text to appear count times in the log. */
static void
wait_log(struct fixture *f, const char *text, int count)
{
    for (int ms = 0; host_log_count(&f->host, text) < count; ms += 10) {
        if (ms >= HOST_TIMEOUT_MS) {
            host_dump_log(&f->host);
            fail_msg("no \"%s\" in the host's log", text);
        }
        usleep(10000);
    }
}

/* openssl s_client verifies the chain against the test CA and gets its
 * line back. */
static void
test_s_client(void **state)
{
    struct fixture *f = *state;
    char cmd[512], line[512];
    int verified = 0, echoed = 0;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "(printf 'ping over tls\\n'; sleep 1) | timeout 10 openssl "
             "s_client -no_ign_eof -verify_return_error -CAfile %s "
             "-verify_ip 127.0.0.1 -connect 127.0.0.1:%d 2>&1",
             tls_path("ca.pem"), f->port);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        verified |= strstr(line, "Verification: OK") != NULL;
        echoed |= strcmp(line, "ping over tls\n") == 0;
    }
    assert_int_equal(pclose(p), 0);
    assert_true(verified);
    assert_true(echoed);
}

/* 1 MiB through TLS in 64 round trips, then a second connection. */
static void
test_echo_1mib(void **state)
{
    struct fixture *f = *state;
    struct conn c;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(tls_connect(&c, f->port, "ca.pem"), 0);
        tls_round_trips(&c, 64, 2463534242u + (uint32_t) i);
        tls_close(&c);
    }
}

/* A client trusting another CA refuses the server; a plain TCP client
 * is closed at once; neither disturbs the next TLS client. */
static void
test_handshake_failures(void **state)
{
    struct fixture *f = *state;
    struct pollfd pfd = {.events = POLLIN};
    char buf[4096];
    struct conn c;
    ssize_t n;

    assert_int_equal(tls_connect(&c, f->port, "ca2.pem"), -1);
    pfd.fd = client_connect(f->port);
    assert_true(pfd.fd >= 0);
    assert_true(send(pfd.fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL)
                == 18);
    do { /* an alert may come first, then EOF */
        assert_int_equal(poll(&pfd, 1, 2000), 1);
        n = read(pfd.fd, buf, sizeof(buf));
    } while (n > 0);
    assert_true(n == 0 || errno == ECONNRESET);
    close(pfd.fd);
    assert_int_equal(tls_connect(&c, f->port, "ca.pem"), 0);
    tls_round_trips(&c, 1, 7);
    tls_close(&c);
}

/* SIGHUP re-reads the files: new connections get the new certificate, an
 * established one goes on with its session; a bad key is refused with one
 * line naming the file and the previous certificate stays in use. */
static void
test_sighup_rotation(void **state)
{
    struct fixture *f = *state;
    struct conn old, fresh, after_bad;
    char name[256];

    assert_int_equal(tls_connect(&old, f->port, "ca.pem"), 0);
    tls_round_trips(&old, 1, 1);
    tls_copy("srv2.pem", "live.pem");
    tls_copy("srv2.key", "live.key");
    assert_int_equal(kill(f->host.pid, SIGHUP), 0);
    wait_log(f, "[echo] tls: certificate reloaded", 1);
    assert_int_equal(tls_connect(&fresh, f->port, "ca2.pem"), 0);
    issuer(&fresh, name, sizeof(name));
    assert_non_null(strstr(name, "ioloop test ca2"));
    tls_round_trips(&fresh, 1, 2);
    tls_round_trips(&old, 4, 3);

    tls_copy("other.key", "live.key");
    assert_int_equal(kill(f->host.pid, SIGHUP), 0);
    wait_log(f, "live.key: key does not match certificate", 1);
    assert_int_equal(tls_connect(&after_bad, f->port, "ca2.pem"), 0);
    tls_round_trips(&after_bad, 1, 4);
    tls_round_trips(&old, 1, 5);
    tls_close(&after_bad);
    tls_close(&fresh);
    tls_close(&old);
}

/* Runs --check on a manifest in tls_dir with these plugins; returns its
 * output, which must be one line, and expects exit 1. */
static const char *
check_refused(const char *plugins_json)
{
    static char out[1024];
    char cmd[1024];
    FILE *m;
    size_t len;
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/bad.json", tls_dir);
    m = fopen(cmd, "w");
    assert_non_null(m);
    fprintf(m, "{\"backend_dir\": \"%s\", \"plugins\": %s}\n",
            HOST_BACKEND_DIR, plugins_json);
    fclose(m);
    snprintf(cmd, sizeof(cmd), "%s --config %s/bad.json --check 2>&1",
             HOST_BINARY, tls_dir);
    m = popen(cmd, "r");
    assert_non_null(m);
    len = fread(out, 1, sizeof(out) - 1, m);
    out[len] = '\0';
    rc = pclose(m);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    assert_non_null(strchr(out, '\n'));
    assert_ptr_equal(strchr(out, '\n'), out + len - 1); /* one line */
    return out;
}

/* --check loads the certificate and key: a key that does not match is
 * refused with exit 1 and one line naming the file; relative paths are
 * resolved against the manifest's folder; tls_cert without tls_key (or
 * the reverse) is refused naming both keys. */
static void
test_check_refuses_bad_key(void **state)
{
    char want[256];

    (void) state;
    snprintf(want, sizeof(want),
             "tls: %s/other.key: key does not match certificate %s/srv.pem",
             tls_dir, tls_dir);
    assert_non_null(strstr(check_refused(plugins("srv.pem", "other.key")),
                           want));
    assert_non_null(strstr(
        check_refused("[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR
                      "/echo.so\", \"config\": {\"listen\": "
                      "\"127.0.0.1:0\", \"tls_cert\": \"srv.pem\", "
                      "\"tls_key\": \"other.key\"}}]"),
        want));
    assert_non_null(strstr(
        check_refused("[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR
                      "/echo.so\", \"config\": {\"listen\": "
                      "\"127.0.0.1:0\", \"tls_cert\": \"srv.pem\"}}]"),
        "config.tls_cert: tls_cert and tls_key go together: set both or "
        "neither"));
    assert_non_null(strstr(
        check_refused("[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR
                      "/echo.so\", \"config\": {\"listen\": "
                      "\"127.0.0.1:0\", \"tls_cert\": \"srv.pem\", "
                      "\"tls_key\": \"srv.key\", \"tls_min_version\": "
                      "\"1.1\"}}]"),
        "tls_min_version"));
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_s_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_1mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_failures, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sighup_rotation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_refuses_bad_key, setup,
                                        teardown),
    };
    int failed;

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    failed = tls_certs_make("test_tls_echo") < 0
                 ? 1
                 : cmocka_run_group_tests(tests, NULL, NULL);
    return tls_certs_remove() == 0 ? failed : 1;
}
