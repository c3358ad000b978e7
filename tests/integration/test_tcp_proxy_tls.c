/*
 * tests/integration/test_tcp_proxy_tls.c: tcp_proxy with upstream_tls in
 * a real ioloop-host, taking plain clients to echo over TLS in another
 * real host, on 127.0.0.1 with ephemeral ports. The certificates come
 * from tests/tls_certs.sh at test time.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"
#include "tls_certs.h"

/* Bytes a client sends through the proxy and expects back. */
#define PAYLOAD (256 * 1024)
#define STEP (16 * 1024)

struct fixture {
    struct host_process upstream; /* echo over TLS */
    struct host_process proxy;
    int ok_port;  /* trusts the upstream's CA */
    int bad_port; /* trusts the other CA */
};

/* One tcp_proxy instance to 127.0.0.1:port over TLS trusting dir/ca. */
static int
proxy_json(char *buf, size_t len, const char *name, int port, const char *ca)
{
    return snprintf(buf, len,
                    "{\"name\": \"%s\", \"path\": \"" HOST_PLUGIN_DIR
                    "/tcp_proxy.so\", \"config\": {\"listen\": "
                    "\"127.0.0.1:0\", \"upstream\": \"127.0.0.1:%d\", "
                    "\"connect_timeout\": 3, \"upstream_tls\": true, "
                    "\"upstream_ca\": \"%s\", \"upstream_server_name\": "
                    "\"localhost\"}}",
                    name, port, tls_path(ca));
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char upstream[1024], ok[512], bad[512], plugins[1200];
    int echo;

    if (f == NULL) {
        return -1;
    }
    *state = f;
    snprintf(upstream, sizeof(upstream),
             "[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR
             "/echo.so\", \"config\": {\"listen\": \"127.0.0.1:0\", "
             "\"tls_cert\": \"%s\", \"tls_key\": \"%s\"}}]",
             tls_path("srv.pem"), tls_path("srv.key"));
    if (host_start(&f->upstream, "epoll", upstream) < 0
        || (echo = host_port(&f->upstream, "echo", HOST_TIMEOUT_MS)) <= 0) {
        fprintf(stderr, "setup: the upstream host did not start\n");
        host_dump_log(&f->upstream);
        return -1;
    }
    proxy_json(ok, sizeof(ok), "p_ok", echo, "ca.pem");
    proxy_json(bad, sizeof(bad), "p_bad", echo, "ca2.pem");
    snprintf(plugins, sizeof(plugins), "[%s, %s]", ok, bad);
    if (host_start(&f->proxy, "epoll", plugins) < 0
        || (f->ok_port = host_port(&f->proxy, "p_ok", HOST_TIMEOUT_MS)) <= 0
        || (f->bad_port = host_port(&f->proxy, "p_bad", HOST_TIMEOUT_MS))
               <= 0) {
        fprintf(stderr, "setup: the proxy host did not start\n");
        host_dump_log(&f->proxy);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    int rc = 0;

    if (f->proxy.pid > 0) {
        rc |= host_stop_clean(&f->proxy);
    }
    if (f->upstream.pid > 0) {
        rc |= host_stop_clean(&f->upstream);
    }
    host_cleanup(&f->proxy);
    host_cleanup(&f->upstream);
    free(f);
    return rc;
}

/* Waits (5 s at most) until hp's log holds text. */
static int
log_has(struct host_process *hp, const char *text)
{
    for (int i = 0; i < 500; i++) {
        if (host_log_count(hp, text) > 0) {
            return 1;
        }
        usleep(10 * 1000);
    }
    return 0;
}

/* A plain client through the proxy: 256 KiB go to echo over TLS, in
 * 16 KiB steps each waited for, and come back whole, on two connections
 * in turn. */
static void
test_plain_to_tls(void **state)
{
    struct fixture *f = *state;
    static unsigned char out[PAYLOAD], in[PAYLOAD];

    for (size_t i = 0; i < PAYLOAD; i++) {
        out[i] = (unsigned char) (i * 7 + i / 251);
    }
    for (int round = 0; round < 2; round++) {
        int fd = client_connect(f->ok_port);
        size_t got = 0;

        assert_true(fd >= 0);
        for (size_t sent = 0; sent < PAYLOAD; sent += STEP) {
            assert_int_equal(client_write_all(fd, out + sent, STEP,
                                              CLIENT_TIMEOUT_MS),
                             0);
            while (got < sent + STEP) {
                ssize_t n = client_read_some(fd, in + got, PAYLOAD - got,
                                             CLIENT_TIMEOUT_MS);

                assert_true(n > 0);
                got += (size_t) n;
            }
        }
        assert_memory_equal(in, out, PAYLOAD);
        close(fd);
    }
    assert_int_equal(host_log_count(&f->proxy, "tls:"), 0);
}

/* An upstream whose certificate the proxy does not trust: the client
 * sees a clean close, the proxy logs the reason once per attempt. */
static void
test_untrusted_upstream(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f->bad_port);

    assert_true(fd >= 0);
    assert_int_equal(client_expect_eof(fd, CLIENT_TIMEOUT_MS), 0);
    close(fd);
    assert_true(log_has(&f->proxy, "Protocol error"));
    assert_int_equal(host_log_count(&f->proxy,
                                    "certificate verify failed: unable "
                                    "to get local issuer certificate"),
                     1);
    assert_int_equal(host_log_count(&f->proxy, "upstream 127.0.0.1:"), 1);
}

/* A host with one tcp_proxy whose config has extra (JSON members) must
 * exit 1 with one line holding want, having served nothing. */
static void
expect_refused(const char *extra, const char *want)
{
    char plugins[1024];

    snprintf(plugins, sizeof(plugins),
             "[{\"name\": \"p\", \"path\": \"" HOST_PLUGIN_DIR
             "/tcp_proxy.so\", \"config\": {\"listen\": "
             "\"127.0.0.1:0\", \"upstream\": \"127.0.0.1:9\", %s}}]",
             extra);
    if (host_refuses(plugins, want) < 0) {
        fail_msg("%s was not refused with \"%s\"", extra, want);
    }
}

/* Bad upstream TLS settings are refused at start, naming the key or the
 * file. */
static void
test_config_refused(void **state)
{
    char extra[512], want[256];

    (void) state;
    expect_refused("\"upstream_server_name\": \"x.example\"",
                   "init failed: config.upstream_server_name: needs "
                   "\"upstream_tls\": true");
    expect_refused("\"upstream_tls\": true, \"upstream_key\": \"/k.pem\"",
                   "config.upstream_key: upstream_cert and upstream_key go "
                   "together");
    snprintf(extra, sizeof(extra),
             "\"upstream_tls\": true, \"upstream_ca\": \"%s\"",
             tls_path("missing.pem"));
    snprintf(want, sizeof(want), "tls: %s: No such file or directory",
             tls_path("missing.pem"));
    expect_refused(extra, want);
    expect_refused("\"upstream_tls\": \"yes\"",
                   "plugins[0].config.upstream_tls: expected");
}

static int
group_setup(void **state)
{
    (void) state;
    return tls_certs_make("ioloop-proxy-tls");
}

static int
group_teardown(void **state)
{
    (void) state;
    return tls_certs_remove();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_to_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_upstream, setup,
                                        teardown),
        cmocka_unit_test(test_config_refused),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
