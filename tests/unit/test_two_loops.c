/*
 * tests/unit/test_two_loops.c: two loops on two threads at once, each with
 * its own listener (accept), buffered streams on both ends of every
 * connection, and signal subscriptions, on the real epoll.so. Nothing is
 * shared between them but the process's signals: the close queue, the
 * listener table, the EMFILE reserve and the subscriptions are per loop.
 * Run under ThreadSanitizer by `make test` (label threads).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "loader.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "signals.h"
#include "stream.h"

#define CONNS 64
#define MSG "ping\n"

/* One thread's loop and what happened on it; main reads it after join. */
struct side {
    int signo; /* its own signal */
    int listen_fd;
    struct ioloop_owner owner;
    ioloop_loop_t *loop;
    /* Results, written on the loop's thread only. */
    int setup_rc;
    int contended_rc; /* subscribing SIGHUP, which both loops try */
    int accepted;
    int echoed;       /* server side: writes done */
    int replies;      /* client side: echoes read back */
    int server_closed;
    int client_closed;
    int signals;
    int timed_out;
};

static struct ioloop_backend_lib lib;
static pthread_barrier_t barrier;

static void maybe_done(struct side *sd);

static int
setup(void **state)
{
    char err[512];

    (void) state;
    ioloop__log_threshold = IOLOOP_LOG_WARN; /* no "listening on" */
    return ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so", &lib,
                                err, sizeof(err));
}

static int
teardown(void **state)
{
    (void) state;
    ioloop__backend_close(&lib);
    return 0;
}

static void
on_server_close(ioloop_stream_t *s, void *arg)
{
    struct side *sd = arg;

    (void) s;
    sd->server_closed++;
    maybe_done(sd);
}

static void
on_client_close(ioloop_stream_t *s, void *arg)
{
    struct side *sd = arg;

    (void) s;
    sd->client_closed++;
    maybe_done(sd);
}

static void
on_echoed(ioloop_stream_t *s, void *arg)
{
    ((struct side *) arg)->echoed++;
    ioloop_stream_close(s);
}

static void
on_request(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    if (ioloop_stream_write(s, data, len, on_echoed) < 0) {
        ((struct side *) arg)->setup_rc = -EIO;
    }
}

static void
on_reply(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct side *sd = arg;

    if (len == strlen(MSG) && memcmp(data, MSG, len) == 0) {
        sd->replies++;
    }
    ioloop_stream_close(s);
    if (sd->replies == CONNS) {
        /* Process-directed: whichever thread takes it, it posts to the
         * loop that holds the signal. */
        kill(getpid(), sd->signo);
    }
}

static int
on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct side *sd = arg;
    struct ioloop_stream_options o = {.size = sizeof(o),
                                      .close_cb = on_server_close,
                                      .arg = sd};
    int c;

    (void) events;
    while ((c = ioloop__accept(loop, fd)) >= 0) {
        ioloop_stream_t *s = ioloop_stream_new(loop, c, &o);

        sd->accepted++;
        if (s == NULL || ioloop_stream_read_until(s, "\n", 1, on_request)
                             < 0) {
            sd->setup_rc = -EIO;
        }
    }
    return c == -EAGAIN ? 0 : c;
}

static int
on_signal(ioloop_loop_t *loop, int signo, void *arg)
{
    struct side *sd = arg;

    (void) loop;
    if (signo == sd->signo) {
        sd->signals++;
        maybe_done(sd);
    }
    return 0;
}

static int
on_deadline(ioloop_loop_t *loop, void *arg)
{
    ((struct side *) arg)->timed_out = 1;
    ioloop_stop(loop);
    return 0;
}

/* Stops the loop once every connection went both ways and closed on both
 * ends (close callbacks run from the close queue) and the signal came. */
static void
maybe_done(struct side *sd)
{
    if (sd->server_closed == CONNS && sd->client_closed == CONNS
        && sd->signals > 0) {
        ioloop_stop(sd->loop);
    }
}

/* A blocking connect to the loop's own listener (the kernel completes it
 * into the backlog), then a client stream that sends MSG. */
static int
connect_client(struct side *sd, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t) port)};
    struct ioloop_stream_options o = {.size = sizeof(o),
                                      .close_cb = on_client_close,
                                      .arg = sd};
    ioloop_stream_t *s;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
        return -errno;
    }
    s = ioloop_stream_new(sd->loop, fd, &o);
    if (s == NULL) {
        close(fd);
        return -ENOMEM;
    }
    if (ioloop_stream_write(s, MSG, strlen(MSG), NULL) < 0
        || ioloop_stream_read_until(s, "\n", 1, on_reply) < 0) {
        return -EIO;
    }
    return 0;
}

static int
bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    if (getsockname(fd, (struct sockaddr *) &a, &len) < 0) {
        return -1;
    }
    return ntohs(a.sin_port);
}

static void *
run_side(void *arg)
{
    struct side *sd = arg;
    char err[512];
    int rc;

    sd->loop = ioloop_loop_new(lib.ops, err, sizeof(err));
    if (sd->loop == NULL) {
        sd->setup_rc = -ENOMEM;
        return NULL;
    }
    /* Both threads at once from here: listeners, subscriptions. */
    pthread_barrier_wait(&barrier);
    ioloop__set_owner(sd->loop, &sd->owner);
    sd->listen_fd = ioloop__listen_tcp(sd->loop, "127.0.0.1:0", 0, 0, err,
                                       sizeof(err));
    rc = sd->listen_fd;
    if (rc >= 0) {
        rc = ioloop_add_handler(sd->loop, sd->listen_fd, IOLOOP_READ,
                                on_accept, sd);
    }
    if (rc >= 0) {
        rc = ioloop__signal_subscribe_host(sd->loop, sd->signo, on_signal,
                                           sd);
    }
    sd->contended_rc = ioloop__signal_subscribe_host(sd->loop, SIGHUP,
                                                     on_signal, sd);
    /* Both tried SIGHUP before either loop runs (and frees its own). */
    pthread_barrier_wait(&barrier);
    for (int i = 0; rc >= 0 && i < CONNS; i++) {
        rc = connect_client(sd, bound_port(sd->listen_fd));
    }
    if (rc >= 0 && ioloop_call_later(sd->loop, 30 * IOLOOP_NS_PER_S,
                                     on_deadline, sd)
                       == 0) {
        rc = -ENOMEM;
    }
    ioloop__set_owner(sd->loop, NULL);
    if (rc < 0) {
        sd->setup_rc = rc;
    } else {
        ioloop_start(sd->loop);
    }
    if (sd->listen_fd >= 0) {
        ioloop_remove_handler(sd->loop, sd->listen_fd);
        close(sd->listen_fd);
    }
    /* Frees the loop's subscriptions (SIGHUP's disposition comes back)
     * and its listener table and reserve fd. */
    ioloop_loop_free(sd->loop);
    return NULL;
}

static void
test_two_loops_at_once(void **state)
{
    struct side sides[2] = {
        {.signo = SIGUSR1, .listen_fd = -1, .owner = {.name = "left"}},
        {.signo = SIGWINCH, .listen_fd = -1, .owner = {.name = "right"}},
    };
    pthread_t t[2];
    struct sigaction sa;
    int won = 0;

    (void) state;
    pthread_barrier_init(&barrier, NULL, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, run_side, &sides[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        struct side *sd = &sides[i];

        assert_int_equal(sd->setup_rc, 0);
        assert_int_equal(sd->timed_out, 0);
        assert_int_equal(sd->accepted, CONNS);
        assert_int_equal(sd->echoed, CONNS);
        assert_int_equal(sd->replies, CONNS);
        assert_int_equal(sd->server_closed, CONNS);
        assert_int_equal(sd->client_closed, CONNS);
        assert_int_equal(sd->signals, 1);
        if (sd->contended_rc > 0) {
            won++;
        } else {
            assert_int_equal(sd->contended_rc, -EBUSY);
        }
    }
    /* A signal posts to one loop at a time: one of the two got SIGHUP. */
    assert_int_equal(won, 1);
    /* Freeing the loops gave every signal its default back. */
    sigaction(SIGHUP, NULL, &sa);
    assert_true(sa.sa_handler == SIG_DFL);
    sigaction(SIGUSR1, NULL, &sa);
    assert_true(sa.sa_handler == SIG_DFL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_loops_at_once),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
