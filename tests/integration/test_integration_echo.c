/*
 * tests/integration/test_integration_echo.c: the echo plugin in a real
 * ioloop-host, over real sockets on 127.0.0.1. argv[1] names the backend.
 * Every test starts its own host; teardown requires a clean SIGTERM exit.
 */
#include <errno.h>
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

#define PLUGINS                                                              \
    "[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR "/echo.so\","       \
    "  \"config\": {\"listen\": \"127.0.0.1:0\"}}]"

/* Short limits, for the idle and max_connections tests. */
#define PLUGINS_LIMITED                                                      \
    "[{\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR "/echo.so\","       \
    "  \"config\": {\"listen\": \"127.0.0.1:0\", \"idle_timeout\": 0.5,"     \
    "  \"max_connections\": 2}}]"

#define MAX_FDS 64

struct fixture {
    struct host_process host;
    int port;
    int fds[MAX_FDS];
    int nfds;
};

/* The backend under test (argv[1]). */
static const char *backend = "epoll";

static int
setup_with(void **state, const char *plugins)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    *state = f;
    if (host_start(&f->host, backend, plugins) < 0
        || (f->port = host_port(&f->host, "echo", HOST_TIMEOUT_MS)) <= 0) {
        fprintf(stderr, "setup: the host did not start on backend %s\n",
                backend);
        host_dump_log(&f->host);
        return -1;
    }
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, PLUGINS);
}

static int
setup_limited(void **state)
{
    return setup_with(state, PLUGINS_LIMITED);
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    double elapsed;
    int i, rc = 0;

    for (i = 0; i < f->nfds; i++) {
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
        }
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

/* A new connection, closed by teardown; returns its slot in f->fds. */
static int
conn_open(struct fixture *f)
{
    int fd = client_connect(f->port);

    assert_true(fd >= 0);
    assert_true(f->nfds < MAX_FDS);
    f->fds[f->nfds] = fd;
    return f->nfds++;
}

/* Closes the connection in slot i now. */
static void
conn_close(struct fixture *f, int i)
{
    close(f->fds[i]);
    f->fds[i] = -1;
}

/*
 * Sends len bytes of data and reads len bytes back into back, at the same
 * time (poll), since the server stops reading while it cannot write.
 */
static void
round_trip(int fd, const unsigned char *data, unsigned char *back,
           size_t len)
{
    size_t sent = 0, got = 0;
    struct pollfd pfd = { .fd = fd };
    ssize_t n;
    int rc;

    while (got < len) {
        pfd.events = (short) (POLLIN | (sent < len ? POLLOUT : 0));
        rc = poll(&pfd, 1, CLIENT_TIMEOUT_MS);
        assert_true(rc > 0);
        if (sent < len && (pfd.revents & POLLOUT)) {
            n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
            assert_true(n > 0 || errno == EAGAIN);
            sent += n > 0 ? (size_t) n : 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = read(fd, back + got, len - got);
            assert_true(n > 0 || (n < 0 && errno == EAGAIN));
            got += n > 0 ? (size_t) n : 0;
        }
    }
}

/* 1 MiB of pseudo-random bytes comes back exactly. */
static void
test_echo_1mib(void **state)
{
    struct fixture *f = *state;
    const size_t len = 1u << 20;
    unsigned char *data = malloc(len), *back = malloc(len);
    uint32_t x = 2463534242u;
    size_t i;
    int c = conn_open(f);

    assert_non_null(data);
    assert_non_null(back);
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char) x;
    }
    round_trip(f->fds[c], data, back, len);
    assert_memory_equal(data, back, len);
    free(data);
    free(back);
}

/* Byte i of the backpressure stream (not periodic below 16 MiB). */
static unsigned char
pattern(size_t i)
{
    return (unsigned char) (i ^ (i >> 8) ^ ((i >> 16) * 31));
}

/*
 * Backpressure: a client that writes without reading soon finds the
 * server no longer reading (its send stalls), long before 64 MiB, because
 * the server holds at most one read of unsent data. Reading then lets
 * everything through, in order.
 */
static void
test_echo_backpressure(void **state)
{
    struct fixture *f = *state;
    const size_t total = (size_t) 64 << 20;
    unsigned char out[64 * 1024], in[64 * 1024];
    struct pollfd pfd = { .events = POLLOUT };
    size_t sent = 0, got = 0, i;
    int c = conn_open(f), bufsize = 64 * 1024, stalled = 0;
    ssize_t n;

    pfd.fd = f->fds[c];
    setsockopt(pfd.fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    setsockopt(pfd.fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    while (!stalled && sent < total) {
        for (i = 0; i < sizeof(out); i++) {
            out[i] = pattern(sent + i);
        }
        n = send(pfd.fd, out, sizeof(out), MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t) n;
            continue;
        }
        assert_true(n < 0 && errno == EAGAIN);
        stalled = poll(&pfd, 1, 300) == 0;
    }
    print_message("the server stopped reading after %zu KiB\n", sent >> 10);
    assert_true(stalled);
    assert_true(sent < total);

    while (got < total) {
        pfd.events = (short) (POLLIN | (sent < total ? POLLOUT : 0));
        assert_true(poll(&pfd, 1, CLIENT_TIMEOUT_MS) > 0);
        if (sent < total && (pfd.revents & POLLOUT)) {
            for (i = 0; i < sizeof(out); i++) {
                out[i] = pattern(sent + i);
            }
            n = send(pfd.fd, out, total - sent < sizeof(out) ? total - sent
                                                              : sizeof(out),
                     MSG_NOSIGNAL);
            assert_true(n > 0 || errno == EAGAIN);
            sent += n > 0 ? (size_t) n : 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = read(pfd.fd, in, sizeof(in));
            assert_true(n > 0 || (n < 0 && errno == EAGAIN));
            for (i = 0; n > 0 && i < (size_t) n; i++) {
                if (in[i] != pattern(got + i)) {
                    fail_msg("byte %zu: got 0x%02x, expected 0x%02x",
                             got + i, in[i], pattern(got + i));
                }
            }
            got += n > 0 ? (size_t) n : 0;
        }
    }
}

/* The client's EOF: what it sent still comes back, then EOF. */
static void
test_echo_half_close(void **state)
{
    struct fixture *f = *state;
    int c = conn_open(f);
    char buf[16];
    ssize_t n;

    assert_int_equal(client_write_all(f->fds[c], "ping", 4,
                                      CLIENT_TIMEOUT_MS),
                     0);
    assert_int_equal(shutdown(f->fds[c], SHUT_WR), 0);
    n = client_read_some(f->fds[c], buf, sizeof(buf), CLIENT_TIMEOUT_MS);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(client_expect_eof(f->fds[c], CLIENT_TIMEOUT_MS), 0);
}

/*
 * A client that sends a lot without reading and then resets the
 * connection (SO_LINGER 0): the server drops it and keeps serving.
 */
static void
test_echo_peer_reset(void **state)
{
    struct fixture *f = *state;
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    static char junk[256 * 1024];
    unsigned char back[5];
    int c = conn_open(f), d;
    size_t sent = 0;
    ssize_t n;

    while (sent < sizeof(junk)
           && (n = send(f->fds[c], junk, sizeof(junk) - sent,
                        MSG_NOSIGNAL)) > 0) {
        sent += (size_t) n;
    }
    assert_true(sent > 0);
    assert_int_equal(setsockopt(f->fds[c], SOL_SOCKET, SO_LINGER, &lg,
                                sizeof(lg)),
                     0);
    conn_close(f, c);

    d = conn_open(f);
    round_trip(f->fds[d], (const unsigned char *) "alive", back, 5);
    assert_memory_equal(back, "alive", 5);
}

/* Several clients at once, each getting its own bytes back. */
static void
test_echo_many_clients(void **state)
{
    struct fixture *f = *state;
    unsigned char msg[32], back[32];
    int c[40], i, round;

    for (i = 0; i < 40; i++) {
        c[i] = conn_open(f);
    }
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 40; i++) {
            memset(msg, 'A' + (i + round) % 26, sizeof(msg));
            round_trip(f->fds[c[i]], msg, back, sizeof(msg));
            assert_memory_equal(msg, back, sizeof(msg));
        }
    }
}

/* Milliseconds until the peer closes fd (read returns 0 or an error), at
 * most limit_ms; -1 when it stays open. */
static long
ms_until_closed(int fd, int limit_ms)
{
    struct timespec t0, t1;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char buf[64];

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000
                  + (t1.tv_nsec - t0.tv_nsec) / 1000000;

        if (ms >= limit_ms) {
            return -1;
        }
        if (poll(&pfd, 1, (int) (limit_ms - ms)) > 0
            && read(fd, buf, sizeof(buf)) <= 0) {
            return ms;
        }
    }
}

/* idle_timeout 0.5 s: an idle connection is closed by the host while an
 * active one, kept busy past it, still echoes. */
static void
test_echo_idle_timeout(void **state)
{
    struct fixture *f = *state;
    int idle = conn_open(f), busy = conn_open(f);
    unsigned char back[4];

    for (int i = 0; i < 8; i++) {
        round_trip(f->fds[busy], (const unsigned char *) "ping", back, 4);
        assert_memory_equal(back, "ping", 4);
        usleep(150 * 1000);
    }
    /* 1.2 s have passed: the idle one is gone, the busy one is not. */
    assert_true(ms_until_closed(f->fds[idle], 2000) >= 0);
    round_trip(f->fds[busy], (const unsigned char *) "pong", back, 4);
    assert_memory_equal(back, "pong", 4);
}

/* max_connections 2: a third connection is accepted and closed at once,
 * while the two open ones keep echoing. */
static void
test_echo_max_connections(void **state)
{
    struct fixture *f = *state;
    int a = conn_open(f), b = conn_open(f);
    unsigned char back[2];

    round_trip(f->fds[a], (const unsigned char *) "a1", back, 2);
    round_trip(f->fds[b], (const unsigned char *) "b1", back, 2);
    int c = conn_open(f);

    assert_true(ms_until_closed(f->fds[c], 2000) >= 0);
    round_trip(f->fds[a], (const unsigned char *) "a2", back, 2);
    assert_memory_equal(back, "a2", 2);
    /* stderr is read by another thread: give the line time to arrive. */
    for (int i = 0; i < 100 && host_log_count(&f->host, "max_connections "
                                              "(2) reached") == 0; i++) {
        usleep(20 * 1000);
    }
    assert_true(host_log_count(&f->host, "max_connections (2) reached") >= 1);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_echo_1mib),
        T(test_echo_backpressure),
        T(test_echo_half_close),
        T(test_echo_peer_reset),
        T(test_echo_many_clients),
#undef T
        cmocka_unit_test_setup_teardown(test_echo_idle_timeout,
                                        setup_limited, teardown),
        cmocka_unit_test_setup_teardown(test_echo_max_connections,
                                        setup_limited, teardown),
    };

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name(backend, tests, NULL, NULL);
}
