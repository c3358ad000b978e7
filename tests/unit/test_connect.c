/*
 * tests/unit/test_connect.c: outbound connections (host/runtime/connect.c
 * and resolve.c) on the real loop over epoll.so, against real sockets on
 * 127.0.0.1 and ::1 with ephemeral ports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "connect.h"
#include "resolve.h"
#include "loader.h"
#include "loop.h"
#include "stream.h"

static struct ioloop_backend_lib epoll_lib;
/* The attempts pending, as an instance keeps them. */
static ioloop_connect_t *owned;

/* What one test's callbacks saw. */
static struct probe {
    int calls;                        /* connect callbacks */
    int status;
    ioloop_stream_t *s;
    const struct ioloop_owner *owner; /* current in the callback */
    int inside;                       /* > 0 during connect_tcp */
    int called_inside;
    int closes;                       /* stream close callbacks */
    int watchdog;
    char got[16];
} P;

static int
on_watchdog(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    P.watchdog = 1;
    ioloop_stop(loop);
    return 0;
}

static void
on_connect(ioloop_loop_t *loop, ioloop_stream_t *s, int status, void *arg)
{
    (void) arg;
    P.calls++;
    P.status = status;
    P.s = s;
    P.owner = ioloop__current_owner(loop);
    P.called_inside += P.inside > 0;
    ioloop_stop(loop);
}

static void
on_close(ioloop_stream_t *s, void *arg)
{
    (void) s;
    P.closes++;
    ioloop_stop(arg);
}

static int
on_stop(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

static ioloop_loop_t *
new_loop(void)
{
    char err[256];
    ioloop_loop_t *loop = ioloop_loop_new(epoll_lib.ops, err, sizeof(err));

    assert_non_null(loop);
    memset(&P, 0, sizeof(P));
    ioloop_call_later(loop, 20 * IOLOOP_NS_PER_S, on_watchdog, NULL);
    return loop;
}

/* Runs the loop for about ms (lets a cancelled lookup end). */
static void
run_for(ioloop_loop_t *loop, int ms)
{
    ioloop_call_later(loop, (ioloop_time_t) ms * 1000000, on_stop, NULL);
    ioloop_start(loop);
}

/* A TCP socket of family bound to loopback on an ephemeral port, listening
 * with backlog unless backlog < 0. Returns the fd; *port its port. */
static int
loopback_socket(int family, int backlog, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof(*sin6);
    }
    assert_int_equal(bind(fd, (struct sockaddr *) &ss, len), 0);
    if (backlog >= 0) {
        assert_int_equal(listen(fd, backlog), 0);
    }
    len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                    : ((struct sockaddr_in6 *) &ss)->sin6_port);
    return fd;
}

static ioloop_time_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ioloop_time_t) ts.tv_sec * IOLOOP_NS_PER_S
           + (ioloop_time_t) ts.tv_nsec;
}

static void
noop_read(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    (void) s;
    (void) data;
    (void) len;
    (void) arg;
}

/* Closes P.s once the peer is gone: the close callback of opts runs. */
static void
expect_close(ioloop_loop_t *loop)
{
    assert_int_equal(ioloop_stream_read_until_close(P.s, noop_read), 0);
    ioloop_start(loop);
    assert_int_equal(P.closes, 1);
}

static void
test_literal_ipv4(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct ioloop_stream_options opts = {
        .size = sizeof(opts), .close_cb = on_close, .arg = loop,
    };
    char addr[64];
    int port, lsn = loopback_socket(AF_INET, 16, &port), peer;

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    P.inside = 1;
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr,
                                        5 * IOLOOP_NS_PER_S, &opts,
                                        on_connect, NULL));
    P.inside = 0;
    assert_int_equal(P.calls, 0);
    ioloop_start(loop);
    assert_int_equal(P.watchdog, 0);
    assert_int_equal(P.calls, 1);
    assert_int_equal(P.called_inside, 0);
    assert_int_equal(P.status, 0);
    assert_non_null(P.s);

    peer = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
    assert_true(peer >= 0);
    assert_int_equal(ioloop_stream_write(P.s, "ping", 4, NULL), 0);
    assert_int_equal(read(peer, P.got, sizeof(P.got)), 4);
    assert_memory_equal(P.got, "ping", 4);
    close(peer);
    expect_close(loop);
    ioloop_loop_free(loop);
    close(lsn);
}

static void
test_literal_ipv6(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char addr[64];
    int port, lsn = loopback_socket(AF_INET6, 16, &port), peer;

    (void) state;
    snprintf(addr, sizeof(addr), "[::1]:%d", port);
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr, 0, NULL,
                                        on_connect, NULL));
    ioloop_start(loop);
    assert_int_equal(P.calls, 1);
    assert_int_equal(P.status, 0);
    peer = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
    assert_true(peer >= 0);
    ioloop_stream_close(P.s);
    run_for(loop, 10);
    ioloop_loop_free(loop);
    close(peer);
    close(lsn);
}

/* "localhost" goes through getaddrinfo_a; the callback runs as the
 * instance that called, not as the host that received the answer. Only
 * 127.0.0.1 listens: an ::1 tried first is refused, then 127.0.0.1
 * connects. */
static void
test_resolve_localhost(void **state)
{
    static const struct ioloop_owner owner = {.name = "inst"};
    ioloop_loop_t *loop = new_loop();
    const struct ioloop_owner *previous;
    char addr[64];
    int port, lsn = loopback_socket(AF_INET, 16, &port), peer;

    (void) state;
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    previous = ioloop__set_owner(loop, &owner);
    P.inside = 1;
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr,
                                        5 * IOLOOP_NS_PER_S, NULL,
                                        on_connect, NULL));
    P.inside = 0;
    ioloop__set_owner(loop, previous);
    ioloop_start(loop);
    assert_int_equal(P.watchdog, 0);
    assert_int_equal(P.calls, 1);
    assert_int_equal(P.called_inside, 0);
    assert_int_equal(P.status, 0);
    assert_ptr_equal(P.owner, &owner);
    peer = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
    assert_true(peer >= 0);
    assert_int_equal(write(peer, "pong", 4), 4);
    ioloop_stream_close(P.s);
    run_for(loop, 10);
    ioloop_loop_free(loop);
    close(peer);
    close(lsn);
}

/* A bound socket that does not listen answers a SYN with a reset. */
static void
test_refused(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char addr[64];
    int port, bound = loopback_socket(AF_INET, -1, &port);

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr,
                                        5 * IOLOOP_NS_PER_S, NULL,
                                        on_connect, NULL));
    ioloop_start(loop);
    assert_int_equal(P.calls, 1);
    assert_int_equal(P.status, -ECONNREFUSED);
    assert_null(P.s);
    ioloop_loop_free(loop);
    close(bound);
}

/* A listener whose accept queue is full drops further SYNs, so the
 * connect never completes and the deadline ends it. */
static void
test_timeout(void **state)
{
    ioloop_loop_t *loop;
    char addr[64];
    int port, lsn = loopback_socket(AF_INET, 0, &port), fill[4];
    struct sockaddr_in sin = {.sin_family = AF_INET};
    ioloop_time_t t0, elapsed;

    (void) state;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         0);
        assert_true(fill[i] >= 0);
        connect(fill[i], (struct sockaddr *) &sin, sizeof(sin));
    }
    usleep(50 * 1000); /* the handshakes that fit complete */
    /* After the sleep: the loop's cached clock starts now. */
    loop = new_loop();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    t0 = now_ns();
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr, 300 * 1000000,
                                        NULL, on_connect, NULL));
    ioloop_start(loop);
    elapsed = now_ns() - t0;
    assert_int_equal(P.watchdog, 0);
    assert_int_equal(P.calls, 1);
    assert_int_equal(P.status, -ETIMEDOUT);
    assert_null(P.s);
    assert_true(elapsed >= 300 * 1000000);
    assert_true(elapsed < 300 * 1000000 + 2 * IOLOOP_NS_PER_S);
    ioloop_loop_free(loop);
    for (int i = 0; i < 4; i++) {
        close(fill[i]);
    }
    close(lsn);
}

/* Cancelled before the start (literal), while connecting (literal, after
 * one iteration), and while resolving (name): no callback, no fd and
 * nothing left allocated (LSan in the sanitizer build). */
static void
test_cancel(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char addr[64], named[64];
    int port, lsn = loopback_socket(AF_INET, -1, &port);
    ioloop_connect_t *c;

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(named, sizeof(named), "localhost:%d", port);
    c = ioloop__connect_tcp(loop, &owned, addr, 0, NULL, on_connect, NULL);
    assert_non_null(c);
    ioloop__connect_cancel(c);
    c = ioloop__connect_tcp(loop, &owned, named, 0, NULL, on_connect, NULL);
    assert_non_null(c);
    ioloop__connect_cancel(c);
    ioloop__connect_cancel(NULL);
    run_for(loop, 300);
    assert_int_equal(P.calls, 0);
    ioloop_loop_free(loop);
    close(lsn);
}

/* A connect in progress (its SYN dropped by a full queue) cancelled from
 * a timer: its socket is closed, the callback never runs. */
static ioloop_connect_t *pending;

static int
on_cancel(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    ioloop__connect_cancel(pending);
    return 0;
}

static void
test_cancel_in_progress(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char addr[64];
    int port, lsn = loopback_socket(AF_INET, 0, &port), fill[4];
    struct sockaddr_in sin = {.sin_family = AF_INET};

    (void) state;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         0);
        connect(fill[i], (struct sockaddr *) &sin, sizeof(sin));
    }
    usleep(50 * 1000);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    pending = ioloop__connect_tcp(loop, &owned, addr, 200 * 1000000, NULL,
                                  on_connect, NULL);
    assert_non_null(pending);
    ioloop_call_later(loop, 50 * 1000000, on_cancel, NULL);
    run_for(loop, 400); /* past the 200 ms deadline it no longer has */
    assert_int_equal(P.calls, 0);
    ioloop_loop_free(loop);
    for (int i = 0; i < 4; i++) {
        close(fill[i]);
    }
    close(lsn);
}

/* An instance stopped or failed init with an attempt of each kind
 * pending: the host's release cancels both, and neither calls back. */
static void
test_release_owned(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char addr[64], named[64];
    int port, lsn = loopback_socket(AF_INET, 16, &port);

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(named, sizeof(named), "localhost:%d", port);
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr, 0, NULL,
                                        on_connect, NULL));
    assert_non_null(ioloop__connect_tcp(loop, &owned, named, 0, NULL,
                                        on_connect, NULL));
    assert_int_equal(ioloop__connect_release_owned(&owned), 2);
    assert_null(owned);
    run_for(loop, 300);
    assert_int_equal(P.calls, 0);
    ioloop_loop_free(loop);
    close(lsn);
}

static void
on_resolved(ioloop_loop_t *loop, struct addrinfo *res, int status,
            void *arg)
{
    (void) loop;
    (void) res;
    (void) status;
    (void) arg;
    P.calls++;
}

/*
 * The loop is freed with resolver answers posted to it but not run: one
 * of an attempt cancelled meanwhile (as the host's release does), one of
 * a lookup still live. Nothing calls back and nothing is left allocated
 * (LSan in the sanitizer build).
 */
static void
test_free_with_answers_posted(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct ioloop_resolve *r;
    ioloop_connect_t *c;

    (void) state;
    c = ioloop__connect_tcp(loop, &owned, "localhost:9", 0, NULL, on_connect,
                            NULL);
    assert_non_null(c);
    assert_int_equal(ioloop__resolve_start(loop, "localhost", "9",
                                           on_resolved, NULL, &r),
                     0);
    /* localhost comes from /etc/hosts: both answers are posted well
     * within this. */
    usleep(1000 * 1000);
    ioloop__connect_cancel(c);
    ioloop_loop_free(loop);
    assert_int_equal(P.calls, 0);
}

static void
test_bad_addresses(void **state)
{
    static const char *const bad[] = {
        "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:80x", ":80", "::1:80", "[::1]", "[127.0.0.1]:80",
        "[::1]x:80", "127.0.0.1:000000000080",
    };
    ioloop_loop_t *loop = new_loop();

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(ioloop__connect_tcp(loop, &owned, bad[i], 0, NULL,
                                        on_connect, NULL));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(ioloop__connect_tcp(loop, &owned, "127.0.0.1:80", 0, NULL,
                                    NULL, NULL));
    assert_int_equal(errno, EINVAL);
    run_for(loop, 10);
    assert_int_equal(P.calls, 0);
    ioloop_loop_free(loop);
}

static int
group_setup(void **state)
{
    char err[512];

    (void) state;
    signal(SIGPIPE, SIG_IGN); /* as the host does */
    return ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so",
                                &epoll_lib, err, sizeof(err));
}

static int
group_teardown(void **state)
{
    (void) state;
    ioloop__backend_close(&epoll_lib);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_ipv4),
        cmocka_unit_test(test_literal_ipv6),
        cmocka_unit_test(test_resolve_localhost),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_in_progress),
        cmocka_unit_test(test_release_owned),
        cmocka_unit_test(test_free_with_answers_posted),
        cmocka_unit_test(test_bad_addresses),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
