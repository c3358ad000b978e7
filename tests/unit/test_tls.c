/*
 * tests/unit/test_tls.c: host/runtime/tls.c on a real epoll loop. The
 * server is a TLS stream made as a plugin's would be (the API's
 * stream_new); the client is OpenSSL (or a plain socket) on its own thread
 * with a non-blocking socket: each of its steps waits in poll() until
 * CLIENT_DEADLINE, so a broken server fails the test in seconds instead of
 * hanging it. The certificates come from tests/tls_certs.sh,
 * run at test time.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "loader.h"
#include "loop.h"
#include "stream.h"
#include "tls.h"
#include "tls_certs.h"

#define CHUNK 16384
#define ROUNDS 20 /* CHUNK-sized round trips: 320 KiB each way */
/* The most a client waits for anything, from its start (the loop's own
 * watchdog, in new_server, is 20 s: the client gives up first). */
#define CLIENT_DEADLINE (10 * IOLOOP_NS_PER_S)

static char ca[128];     /* dir/ca.pem, the CA the clients trust */
static char ca2[128];    /* dir/ca2.pem, the other CA */
static struct ioloop_backend_lib epoll_lib;

/* The client thread: what it does and what it saw. */
struct client {
    pthread_t thread;
    int fd;
    const char *ca;      /* CA file it trusts; NULL: a plain TCP client */
    const char *alpn;    /* ALPN it offers (wire format), or NULL */
    int max_version;     /* 0: any */
    const char *plain;   /* plain client: what it sends (NULL: nothing) */
    int rounds;          /* TLS: CHUNK round trips */
    sem_t *pause;        /* TLS: waited for after the first round */
    int expect_greeting; /* TLS: "hi\n" arrives first */
    int expect_close;    /* TLS: then the server's close_notify */
    /* results */
    int handshake_ok;
    int verify_failed;
    int echoed_ok;
    int saw_close_notify;
    int timed_out; /* a step passed CLIENT_DEADLINE */
    char issuer[128];
    char alpn_got[32];
    ioloop_time_t deadline; /* set by client_main */
};

/* The server side. */
static struct server {
    ioloop_loop_t *loop;
    ioloop_tls_t *tls;
    ioloop_tls_t *owned; /* the contexts' owner list, as an instance's */
    int closes;
    int error;
    int timeout;
    size_t echoed;
    size_t close_after; /* close once this much was echoed (0: never) */
    int watchdog_fired;
} S;

static ioloop_time_t
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ioloop_time_t) ts.tv_sec * IOLOOP_NS_PER_S + ts.tv_nsec;
}

/* Waits until fd is ready for events or c's deadline passes (then
 * c->timed_out). Returns 1 when ready, 0 on the deadline. */
static int
client_wait(struct client *c, short events)
{
    struct pollfd p = {.fd = c->fd, .events = events};

    for (;;) {
        ioloop_time_t t = now();
        int rc;

        if (t >= c->deadline) {
            c->timed_out = 1;
            return 0;
        }
        rc = poll(&p, 1, (int) ((c->deadline - t) / IOLOOP_NS_PER_MS) + 1);
        if (rc > 0) {
            return 1;
        }
        if (rc < 0 && errno != EINTR) {
            c->timed_out = 1; /* not expected: fail the test the same way */
            return 0;
        }
    }
}

/* One SSL_connect, SSL_read or SSL_write step (op 'c', 'r', 'w') on the
 * non-blocking socket, waiting in poll() for what OpenSSL wants. Returns
 * what OpenSSL returned last; -1 (and c->timed_out) on the deadline. */
static int
client_ssl(struct client *c, SSL *ssl, int op, void *buf, int len)
{
    for (;;) {
        int n = op == 'c'   ? SSL_connect(ssl)
                : op == 'r' ? SSL_read(ssl, buf, len)
                            : SSL_write(ssl, buf, len);
        int e;

        if (n > 0) {
            return n;
        }
        e = SSL_get_error(ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            return n;
        }
        if (!client_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT)) {
            return -1;
        }
    }
}

/* Plain client: sends what it has, then reads until EOF or the deadline. */
static void
client_plain(struct client *c)
{
    char buf[CHUNK];

    if (c->plain != NULL && client_wait(c, POLLOUT)) {
        (void) !write(c->fd, c->plain, strlen(c->plain));
    }
    while (client_wait(c, POLLIN)) {
        ssize_t n = read(c->fd, buf, sizeof(buf));

        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            break;
        }
    }
}

static void *
client_main(void *arg)
{
    struct client *c = arg;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[CHUNK], back[CHUNK];

    /* No cmocka assertion on this thread: it would jump into the main
     * thread's stack. Failures land in c's results. */
    c->deadline = now() + CLIENT_DEADLINE;
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0) {
        c->timed_out = 1;
        close(c->fd);
        return NULL;
    }
    if (c->ca == NULL) {
        client_plain(c);
        close(c->fd);
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, c->ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (c->max_version != 0) {
        SSL_CTX_set_max_proto_version(ctx, c->max_version);
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c->fd);
    SSL_set1_host(ssl, "localhost");
    if (c->alpn != NULL) {
        SSL_set_alpn_protos(ssl, (const unsigned char *) c->alpn,
                            (unsigned) strlen(c->alpn));
    }
    if (client_ssl(c, ssl, 'c', NULL, 0) != 1) {
        c->verify_failed = SSL_get_verify_result(ssl) != X509_V_OK;
        goto done;
    }
    c->handshake_ok = 1;
    {
        X509 *cert = SSL_get1_peer_certificate(ssl);
        const unsigned char *proto;
        unsigned plen;

        X509_NAME_oneline(X509_get_issuer_name(cert), c->issuer,
                          sizeof(c->issuer));
        X509_free(cert);
        SSL_get0_alpn_selected(ssl, &proto, &plen);
        snprintf(c->alpn_got, sizeof(c->alpn_got), "%.*s", (int) plen,
                 (const char *) proto);
    }
    if (c->expect_greeting
        && (client_ssl(c, ssl, 'r', back, 3) != 3
            || memcmp(back, "hi\n", 3) != 0)) {
        goto done;
    }
    c->echoed_ok = 1;
    for (int r = 0; r < c->rounds && c->echoed_ok; r++) {
        size_t got = 0;

        if (r == 1 && c->pause != NULL) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += CLIENT_DEADLINE / IOLOOP_NS_PER_S;
            if (sem_timedwait(c->pause, &ts) != 0) {
                c->timed_out = 1;
                c->echoed_ok = 0;
                break;
            }
        }
        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = (char) (i * 7 + (size_t) r);
        }
        c->echoed_ok = client_ssl(c, ssl, 'w', buf, CHUNK) == CHUNK;
        while (c->echoed_ok && got < sizeof(back)) {
            int n = client_ssl(c, ssl, 'r', back + got,
                               (int) (sizeof(back) - got));

            c->echoed_ok = n > 0;
            got += n > 0 ? (size_t) n : 0;
        }
        c->echoed_ok = c->echoed_ok && memcmp(buf, back, CHUNK) == 0;
    }
    if (c->expect_close) {
        int n = client_ssl(c, ssl, 'r', back, 1);

        c->saw_close_notify = n == 0
                              && SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
    } else {
        SSL_shutdown(ssl); /* best effort: the socket buffer takes it */
    }

done:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(c->fd);
    return NULL;
}

/* Waits for the client thread, which ends by its deadline: a client
 * that waited that long failed the test. */
static void
join(struct client *c)
{
    assert_int_equal(pthread_join(c->thread, NULL), 0);
    assert_false(c->timed_out);
}

static void on_data(ioloop_stream_t *s, const char *data, size_t len,
                    void *arg);

static void
on_written(ioloop_stream_t *s, void *arg)
{
    (void) arg;
    if (S.close_after > 0 && S.echoed >= S.close_after) {
        ioloop_stream_close(s);
        return;
    }
    assert_int_equal(ioloop_stream_read_some(s, 65536, on_data), 0);
}

/* Echoes in three gathered pieces. */
static void
on_data(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct iovec iov[3] = {
        {(void *) data, len / 3},
        {(void *) (data + len / 3), len / 3},
        {(void *) (data + 2 * (len / 3)), len - 2 * (len / 3)},
    };

    (void) arg;
    S.echoed += len;
    assert_true(ioloop_stream_writev(s, iov, 3, on_written) >= 0);
}

static void
on_close(ioloop_stream_t *s, void *arg)
{
    (void) arg;
    S.closes++;
    S.error = ioloop_stream_error(s);
    S.timeout = ioloop_stream_timeout(s);
    ioloop_stop(S.loop);
}

static int
on_watchdog(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    S.watchdog_fired = 1;
    ioloop_stop(loop);
    return 0;
}

/* A server TLS stream on one end of a socketpair and the client on the
 * other, on its thread. read_timeout 0: the handshake default. */
static ioloop_stream_t *
serve(struct client *c, ioloop_time_t read_timeout, int greet)
{
    struct ioloop_stream_options o = {
        .size = sizeof(o),
        .close_cb = on_close,
        .read_timeout = read_timeout,
        .tls = S.tls,
    };
    ioloop_stream_t *s;
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    s = ioloop__tls_stream_new(S.loop, sv[0], &o);
    assert_non_null(s);
    if (greet) {
        assert_int_equal(ioloop_stream_write(s, "hi\n", 3, NULL), 0);
    }
    assert_int_equal(ioloop_stream_read_some(s, 65536, on_data), 0);
    c->fd = sv[1];
    assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
    return s;
}

static void
new_server(const char *cert, const char *key, const char *min_version,
           const char *alpn)
{
    struct ioloop_tls_options o = {
        .size = sizeof(o),
        .cert = tls_path(cert),
        .key = tls_path(key),
        .min_version = min_version,
        .alpn = alpn,
    };
    char err[256];

    memset(&S, 0, sizeof(S));
    S.loop = ioloop_loop_new(epoll_lib.ops, err, sizeof(err));
    assert_non_null(S.loop);
    ioloop_call_later(S.loop, 20 * IOLOOP_NS_PER_S, on_watchdog, NULL);
    S.tls = ioloop__tls_new(&S.owned, &o, err, sizeof(err));
    if (S.tls == NULL) {
        fail_msg("%s", err);
    }
}

static void
free_server(void)
{
    assert_int_equal(S.watchdog_fired, 0);
    ioloop__tls_free(S.tls);
    assert_null(S.owned);
    ioloop_loop_free(S.loop);
}

/* Runs the loop until a stream closes. */
static void
run(void)
{
    assert_int_equal(ioloop_start(S.loop), 0);
}

/* A verified handshake, then CHUNK round trips (several records each way,
 * gathered writes), a write issued before the handshake ended, and
 * close_notify from stream_close. */
static void
test_echo_and_close_notify(void **state)
{
    struct client c = {.ca = ca, .rounds = ROUNDS,
                       .expect_greeting = 1, .expect_close = 1};

    (void) state;
    new_server("srv.pem", "srv.key", NULL, NULL);
    S.close_after = (size_t) ROUNDS * CHUNK;
    serve(&c, 0, 1);
    run();
    join(&c);
    assert_true(c.handshake_ok);
    assert_true(c.echoed_ok);
    assert_true(c.saw_close_notify);
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.error, 0);
    assert_int_equal(S.echoed, (size_t) ROUNDS * CHUNK);
    free_server();
}

/* A client that does not trust the server's CA refuses it: the stream
 * closes with EPROTO. */
static void
test_wrong_ca(void **state)
{
    struct client c = {.ca = ca2, .rounds = 1};

    (void) state;
    new_server("srv.pem", "srv.key", NULL, NULL);
    serve(&c, 0, 0);
    run();
    join(&c);
    assert_false(c.handshake_ok);
    assert_true(c.verify_failed);
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.error, EPROTO);
    free_server();
}

/* Plain TCP to a TLS stream: closed at once with EPROTO. */
static void
test_plain_client(void **state)
{
    struct client c = {.plain = "GET / HTTP/1.0\r\n\r\n"};

    (void) state;
    new_server("srv.pem", "srv.key", NULL, NULL);
    serve(&c, 0, 0);
    run();
    join(&c);
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.error, EPROTO);
    free_server();
}

/* A client that connects and says nothing: the handshake is bounded by
 * read_timeout. */
static void
test_silent_client_times_out(void **state)
{
    struct client c = {0};
    ioloop_time_t start;

    (void) state;
    start = now(); /* before the loop: its clock starts there */
    new_server("srv.pem", "srv.key", NULL, NULL);
    serve(&c, 300 * IOLOOP_NS_PER_MS, 0);
    run();
    assert_true(now() - start < (300 + 2000) * IOLOOP_NS_PER_MS);
    assert_true(now() - start >= 300 * IOLOOP_NS_PER_MS);
    join(&c);
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.error, ETIMEDOUT);
    assert_int_equal(S.timeout, IOLOOP_STREAM_TIMEOUT_READ);
    free_server();
}

/* min_version "1.3" refuses a TLS 1.2 client; ALPN picks the server's
 * protocol and refuses a client offering none of them. */
static void
test_min_version_and_alpn(void **state)
{
    struct client old = {.ca = ca, .max_version = TLS1_2_VERSION};
    struct client h11 = {.ca = ca, .rounds = 1,
                         .alpn = "\x02h2\x08http/1.1"};
    struct client h2 = {.ca = ca, .rounds = 1, .alpn = "\x02h2"};

    (void) state;
    new_server("srv.pem", "srv.key", "1.3", "http/1.1");
    serve(&old, 0, 0);
    run();
    join(&old);
    assert_false(old.handshake_ok);
    assert_int_equal(S.error, EPROTO);
    serve(&h11, 0, 0);
    run();
    join(&h11);
    assert_true(h11.echoed_ok);
    assert_string_equal(h11.alpn_got, "http/1.1");
    serve(&h2, 0, 0);
    run();
    join(&h2);
    assert_false(h2.handshake_ok);
    assert_int_equal(S.error, EPROTO);
    assert_int_equal(S.closes, 3);
    free_server();
}

/* Bad files: one line naming the file, errno set, nothing made. */
static void
test_context_errors(void **state)
{
    struct {
        const char *cert, *key, *min, *want;
        int err;
    } cases[] = {
        {"nope.pem", "srv.key", NULL, "tls: %s/nope.pem: No such file or "
         "directory", ENOENT},
        {"srv.pem", "nope.key", NULL, "tls: %s/nope.key: No such file or "
         "directory", ENOENT},
        {"srv.pem", "other.key", NULL, "tls: %s/other.key: key does not "
         "match certificate %s/srv.pem", EINVAL},
        {"san.ext", "srv.key", NULL, "tls: %s/san.ext: not a PEM "
         "certificate", EINVAL},
        {"srv.pem", "srv.pem", NULL, "tls: %s/srv.pem: not a PEM private "
         "key", EINVAL},
        {"srv.pem", "srv.key", "1.1", "tls: min_version \"1.1\": expected "
         "\"1.2\" or \"1.3\"", EINVAL},
    };
    char err[512], want[512];
    ioloop_tls_t *owned = NULL;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ioloop_tls_options o = {
            .size = sizeof(o),
            .cert = tls_path(cases[i].cert),
            .key = tls_path(cases[i].key),
            .min_version = cases[i].min,
        };

        snprintf(want, sizeof(want), cases[i].want, tls_dir, tls_dir);
        errno = 0;
        assert_null(ioloop__tls_new(&owned, &o, err, sizeof(err)));
        assert_null(owned);
        assert_int_equal(errno, cases[i].err);
        assert_int_equal(strncmp(err, want, strlen(want)), 0);
        assert_null(strchr(err, '\n'));
    }
}

/* Rotation: a reload with a bad key keeps the old certificate; a good one
 * serves the new certificate to new streams while an established stream
 * goes on with the old one. */
static void
test_reload(void **state)
{
    struct client a = {.ca = ca, .rounds = 2};
    struct client b = {.ca = ca, .rounds = 1};
    struct client c = {.ca = ca2, .rounds = 1};
    sem_t pause;
    char err[256];

    (void) state;
    tls_copy("srv.pem", "live.pem");
    tls_copy("srv.key", "live.key");
    new_server("live.pem", "live.key", NULL, NULL);
    assert_int_equal(sem_init(&pause, 0, 0), 0);
    a.pause = &pause;
    serve(&a, 0, 0); /* stays open across the reloads below */

    tls_copy("other.key", "live.key");
    assert_int_equal(ioloop__tls_reload(S.tls, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "key does not match certificate"));
    serve(&b, 0, 0);
    run(); /* b closes: the old certificate still served */
    join(&b);
    assert_true(b.echoed_ok);

    tls_copy("srv2.pem", "live.pem");
    tls_copy("srv2.key", "live.key");
    assert_int_equal(ioloop__tls_reload(S.tls, err, sizeof(err)), 0);
    serve(&c, 0, 0);
    run();
    join(&c);
    assert_true(c.echoed_ok);
    assert_non_null(strstr(c.issuer, "ioloop test ca2"));

    sem_post(&pause); /* a's second round, over the old session */
    run();
    join(&a);
    assert_true(a.echoed_ok);
    assert_non_null(strstr(a.issuer, "ioloop test ca"));
    assert_null(strstr(a.issuer, "ca2"));
    assert_int_equal(S.closes, 3);
    sem_destroy(&pause);
    free_server();
}

/* The owner's list: tls_free unlinks from anywhere in it, and
 * release_owned frees the rest and counts them. */
static void
test_owned_contexts_released(void **state)
{
    struct ioloop_tls_options o = {
        .size = sizeof(o),
        .cert = tls_path("srv.pem"),
        .key = tls_path("srv.key"),
    };
    ioloop_tls_t *owned = NULL, *t[3];
    char err[256];

    (void) state;
    for (int i = 0; i < 3; i++) {
        t[i] = ioloop__tls_new(&owned, &o, err, sizeof(err));
        assert_non_null(t[i]);
    }
    ioloop__tls_free(t[1]);
    ioloop__tls_free(NULL);
    assert_int_equal(ioloop__tls_release_owned(&owned), 2);
    assert_null(owned);
    assert_int_equal(ioloop__tls_release_owned(&owned), 0);
}

static int
group_setup(void **state)
{
    char err[512];

    (void) state;
    signal(SIGPIPE, SIG_IGN); /* as the host does */
    if (tls_certs_make("test_tls") < 0) {
        return -1;
    }
    snprintf(ca, sizeof(ca), "%s", tls_path("ca.pem"));
    snprintf(ca2, sizeof(ca2), "%s", tls_path("ca2.pem"));
    return ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so",
                                &epoll_lib, err, sizeof(err));
}

static int
group_teardown(void **state)
{
    (void) state;
    ioloop__backend_close(&epoll_lib);
    return tls_certs_remove();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_and_close_notify),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_plain_client),
        cmocka_unit_test(test_silent_client_times_out),
        cmocka_unit_test(test_min_version_and_alpn),
        cmocka_unit_test(test_context_errors),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_owned_contexts_released),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
