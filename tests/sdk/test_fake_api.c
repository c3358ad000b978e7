/*
 * tests/sdk/test_fake_api.c: the SDK's fake host API table
 * (api/ioloop/testing/fake_api.h), member by member and for each test
 * hook: handlers fired by hand and by a real poll, callbacks and timers on
 * the fake clock, periodics, the captured log, real listeners, signals,
 * the stream stubs and the leftovers count.
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <ioloop/testing/fake_api.h>

/* What the callbacks below saw. */
static struct {
    int calls;
    int order[16];
    int norder;
    unsigned events;
    int fd;
    int signo;
    int rc; /* what the next callback returns */
} seen;

static const struct ioloop_api *api;
static ioloop_instance_t *loop;

static int
setup(void **state)
{
    (void) state;
    memset(&seen, 0, sizeof(seen));
    api = fake_api_setup();
    loop = fake_api_instance();
    return 0;
}

/* Records its argument (an int tag) in seen.order. */
static int
tag_cb(ioloop_loop_t *l, void *arg)
{
    assert_ptr_equal(l, loop);
    seen.calls++;
    if (seen.norder < 16) {
        seen.order[seen.norder++] = (int) (intptr_t) arg;
    }
    return seen.rc;
}

static int
io_cb(ioloop_loop_t *l, int fd, unsigned events, void *arg)
{
    (void) l;
    (void) arg;
    seen.calls++;
    seen.fd = fd;
    seen.events = events;
    return seen.rc;
}

static void
test_table_is_complete(void **state)
{
    void (*const *fn)(void);
    size_t n;

    (void) state;
    assert_int_equal(api->abi_version, IOLOOP_PLUGIN_ABI);
    assert_int_equal(api->size, sizeof(struct ioloop_api));
    /* Every member after the two version fields is a function pointer. */
    n = (sizeof(*api) - offsetof(struct ioloop_api, add_handler))
        / sizeof(void (*)(void));
    fn = (void (*const *)(void)) (const void *) &api->add_handler;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(fn[i]);
    }
    assert_ptr_equal(fake_api_table(), api);
    assert_int_equal(fake_api_now(), FAKE_API_EPOCH);
    assert_int_equal(api->time(loop), FAKE_API_EPOCH);
}

static void
test_handlers_fire_by_hand(void **state)
{
    int sv[2];

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(api->add_handler(loop, sv[0], IOLOOP_READ, io_cb, NULL),
                     0);
    assert_int_equal(api->add_handler(loop, sv[0], IOLOOP_READ, io_cb, NULL),
                     -EEXIST);
    assert_int_equal(api->add_handler(loop, 999, IOLOOP_READ, io_cb, NULL),
                     -EBADF);
    assert_int_equal(fake_api_handler_events(sv[0]), IOLOOP_READ);
    assert_int_equal(fake_api_handler_events(sv[1]), -1);
    assert_int_equal(fake_api_handler_count(), 1);

    /* Filtered as the host filters: asked-for bits plus ERROR/HUP. */
    assert_int_equal(fake_api_fire(sv[0], IOLOOP_WRITE), -EAGAIN);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(fake_api_fire(sv[0], IOLOOP_READ | IOLOOP_WRITE), 0);
    assert_int_equal(seen.events, IOLOOP_READ);
    assert_int_equal(seen.fd, sv[0]);
    assert_int_equal(fake_api_fire(sv[0], IOLOOP_WRITE | IOLOOP_HUP), 0);
    assert_int_equal(seen.events, IOLOOP_HUP);
    seen.rc = -EIO;
    assert_int_equal(fake_api_fire(sv[0], IOLOOP_READ), -EIO);

    assert_int_equal(api->update_handler(loop, sv[0], IOLOOP_WRITE), 0);
    assert_int_equal(fake_api_handler_events(sv[0]), IOLOOP_WRITE);
    assert_int_equal(api->update_handler(loop, sv[1], IOLOOP_WRITE),
                     -ENOENT);
    assert_int_equal(api->remove_handler(loop, sv[0]), 0);
    assert_int_equal(api->remove_handler(loop, sv[0]), -ENOENT);
    assert_int_equal(fake_api_fire(sv[0], IOLOOP_READ), -ENOENT);
    assert_int_equal(fake_api_leftovers(), 0);
    close(sv[0]);
    close(sv[1]);
}

/* Removes the handler of the fd in arg: its pending event must not run. */
static int
remove_other_cb(ioloop_loop_t *l, int fd, unsigned events, void *arg)
{
    (void) l;
    (void) fd;
    (void) events;
    seen.calls++;
    return api->remove_handler(loop, *(int *) arg);
}

static void
test_poll_dispatches_real_readiness(void **state)
{
    int a[2], b[2];

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    assert_int_equal(api->add_handler(loop, a[0], IOLOOP_READ, io_cb, NULL),
                     0);
    assert_int_equal(fake_api_poll(0), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(fake_api_poll(1000), 1);
    assert_int_equal(seen.fd, a[0]);
    assert_int_equal(seen.events, IOLOOP_READ);
    /* Level-triggered: still unread, reported again. */
    assert_int_equal(fake_api_poll(0), 1);

    /* Both ready; whichever runs first removes the other's handler. */
    assert_int_equal(api->remove_handler(loop, a[0]), 0);
    assert_int_equal(api->add_handler(loop, a[0], IOLOOP_READ,
                                      remove_other_cb, &b[0]),
                     0);
    assert_int_equal(api->add_handler(loop, b[0], IOLOOP_READ,
                                      remove_other_cb, &a[0]),
                     0);
    assert_int_equal(write(b[1], "y", 1), 1);
    seen.calls = 0;
    assert_int_equal(fake_api_poll(1000), 1);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(fake_api_handler_count(), 1);
    assert_int_equal(fake_api_failures(), 0);

    /* A failing handler is logged and counted, as in the host. */
    api->remove_handler(loop, a[0]);
    api->remove_handler(loop, b[0]);
    assert_int_equal(api->add_handler(loop, a[0], IOLOOP_READ, io_cb, NULL),
                     0);
    seen.rc = -EIO;
    assert_int_equal(fake_api_poll(1000), 1);
    assert_int_equal(fake_api_failures(), 1);
    assert_int_equal(fake_api_log_count("error [test] handler failed"), 1);
    api->remove_handler(loop, a[0]);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}

/* Queues tag 99 from inside a callback: it must run next iteration. */
static int
requeue_cb(ioloop_loop_t *l, void *arg)
{
    tag_cb(l, arg);
    return api->add_callback(loop, tag_cb, (void *) 99);
}

static void
test_callbacks_in_order_with_starvation_guard(void **state)
{
    (void) state;
    assert_int_equal(api->add_callback(loop, tag_cb, (void *) 1), 0);
    assert_int_equal(api->add_callback(loop, requeue_cb, (void *) 2), 0);
    assert_int_equal(api->add_callback_from_signal(loop, tag_cb, (void *) 3),
                     0);
    assert_int_equal(fake_api_callback_count(), 3);
    assert_int_equal(fake_api_run(), 3);
    assert_int_equal(seen.norder, 3);
    assert_int_equal(seen.order[0], 1);
    assert_int_equal(seen.order[1], 2);
    assert_int_equal(seen.order[2], 3);
    assert_int_equal(fake_api_callback_count(), 1);
    assert_int_equal(fake_api_run(), 1);
    assert_int_equal(seen.order[3], 99);
    assert_int_equal(fake_api_run(), 0);

    /* Failures are logged and counted; a peer that went away is not. */
    seen.rc = -EPIPE;
    api->add_callback(loop, tag_cb, NULL);
    fake_api_run();
    assert_int_equal(fake_api_failures(), 0);
    seen.rc = -ENOMEM;
    api->add_callback(loop, tag_cb, NULL);
    fake_api_run();
    assert_int_equal(fake_api_failures(), 1);
    assert_int_equal(fake_api_log_count("callback failed: "), 1);
}

/* Re-arms itself one second later, three times in all. */
static int
rearm_cb(ioloop_loop_t *l, void *arg)
{
    tag_cb(l, arg);
    if (seen.calls < 3) {
        assert_int_not_equal(api->call_later(loop, IOLOOP_NS_PER_S, rearm_cb,
                                             arg),
                             0);
    }
    return 0;
}

/* Adds a timer due now: it must not run in the same iteration. */
static int
adds_due_timer_cb(ioloop_loop_t *l, void *arg)
{
    tag_cb(l, arg);
    api->call_at(loop, api->time(loop), tag_cb, (void *) 42);
    return 0;
}

static void
test_timers_on_the_fake_clock(void **state)
{
    ioloop_timer_t t1, t2, t3, t4;

    (void) state;
    t1 = api->call_later(loop, 2 * IOLOOP_NS_PER_S, tag_cb, (void *) 1);
    t2 = api->call_later(loop, IOLOOP_NS_PER_S, tag_cb, (void *) 2);
    t3 = api->call_later(loop, IOLOOP_NS_PER_S, tag_cb, (void *) 3);
    t4 = api->call_at(loop, FAKE_API_EPOCH + 3 * IOLOOP_NS_PER_S, tag_cb,
                      (void *) 4);
    assert_true(t1 != 0 && t2 != 0 && t3 != 0 && t4 != 0);
    assert_int_equal(fake_api_timer_count(), 4);
    assert_int_equal(api->cancel(loop, t4), 0);
    assert_int_equal(api->cancel(loop, t4), -ENOENT);

    assert_int_equal(fake_api_advance(IOLOOP_NS_PER_S - 1), 0);
    assert_int_equal(fake_api_advance(1), 2); /* ties in added order */
    assert_int_equal(seen.order[0], 2);
    assert_int_equal(seen.order[1], 3);
    assert_int_equal(api->time(loop), FAKE_API_EPOCH + IOLOOP_NS_PER_S);
    assert_int_equal(fake_api_advance(10 * IOLOOP_NS_PER_S), 1);
    assert_int_equal(seen.order[2], 1);
    assert_int_equal(fake_api_now(), FAKE_API_EPOCH + 11 * IOLOOP_NS_PER_S);
    assert_int_equal(api->cancel(loop, t1), -ENOENT); /* stale: fired */

    /* advance stops at each deadline on the way. */
    memset(&seen, 0, sizeof(seen));
    api->call_later(loop, IOLOOP_NS_PER_S, rearm_cb, (void *) 7);
    assert_int_equal(fake_api_advance(10 * IOLOOP_NS_PER_S), 3);
    assert_int_equal(fake_api_timer_count(), 0);

    /* A timer added by a due timer waits for the next iteration. */
    memset(&seen, 0, sizeof(seen));
    api->call_later(loop, 0, adds_due_timer_cb, (void *) 1);
    assert_int_equal(fake_api_run(), 1);
    assert_int_equal(fake_api_run(), 1);
    assert_int_equal(seen.order[1], 42);
}

static ioloop_periodic_t *self_stopping;

static int
periodic_cb(ioloop_loop_t *l, void *arg)
{
    tag_cb(l, arg);
    if (seen.calls == 4 && self_stopping != NULL) {
        api->periodic_stop(loop, self_stopping);
        self_stopping = NULL;
    }
    return 0;
}

static void
test_periodics(void **state)
{
    ioloop_periodic_t *p;

    (void) state;
    errno = 0;
    assert_null(api->periodic_start(loop, 0, 0.0, periodic_cb, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(api->periodic_start(loop, IOLOOP_NS_PER_S, 1.0, periodic_cb,
                                    NULL));
    assert_int_equal(errno, EINVAL);

    p = api->periodic_start(loop, IOLOOP_NS_PER_S, 0.1, periodic_cb, NULL);
    assert_non_null(p);
    assert_int_equal(fake_api_periodic_count(), 1);
    assert_int_equal(fake_api_timer_count(), 0); /* not a one-shot */
    assert_int_equal(fake_api_leftovers(), 1);
    assert_int_equal(fake_api_advance(IOLOOP_NS_PER_S / 2), 0);
    assert_int_equal(fake_api_advance(3 * IOLOOP_NS_PER_S), 3);
    api->periodic_stop(loop, p);
    api->periodic_stop(loop, NULL);
    assert_int_equal(fake_api_leftovers(), 0);
    assert_int_equal(fake_api_advance(3 * IOLOOP_NS_PER_S), 0);

    /* A periodic may stop itself from its callback. */
    memset(&seen, 0, sizeof(seen));
    self_stopping = api->periodic_start(loop, IOLOOP_NS_PER_MS, 0.0,
                                        periodic_cb, NULL);
    assert_non_null(self_stopping);
    assert_int_equal(fake_api_advance(IOLOOP_NS_PER_S), 4);
    assert_int_equal(fake_api_leftovers(), 0);
}

static void
test_log_is_captured(void **state)
{
    (void) state;
    fake_api_set_name("kv");
    api->log(loop, IOLOOP_LOG_INFO, "hello %d", 42);
    api->log(loop, IOLOOP_LOG_WARN, "careful");
    assert_string_equal(fake_api_log_text(),
                        "info [kv] hello 42\nwarn [kv] careful\n");
    assert_int_equal(fake_api_log_count("[kv]"), 2);
    assert_int_equal(fake_api_log_count("absent"), 0);
    fake_api_log_clear();
    assert_string_equal(fake_api_log_text(), "");
}

static int
is_nonblock_cloexec(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK)
           && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void
test_listen_tcp_and_accept(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    char err[256] = "", line[64];
    int lfd, port, c1, c2, fds[4], other;

    (void) state;
    lfd = api->listen_tcp(loop, "127.0.0.1:0", 0, 0, err, sizeof(err));
    assert_true(lfd >= 0);
    assert_true(is_nonblock_cloexec(lfd));
    port = fake_api_local_port(lfd);
    assert_true(port > 0);
    snprintf(line, sizeof(line), "info [test] listening on 127.0.0.1:%d\n",
             port);
    assert_int_equal(fake_api_log_count(line), 1);
    assert_int_equal(api->accept(loop, lfd), -EAGAIN);
    assert_int_equal(api->accept_batch(loop, lfd, fds, 4), 0);

    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(0x7f000001);
    c1 = socket(AF_INET, SOCK_STREAM, 0);
    c2 = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c1, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(connect(c2, (struct sockaddr *) &sin, sizeof(sin)), 0);

    /* The listener's handler runs through a real poll. */
    assert_int_equal(api->add_handler(loop, lfd, IOLOOP_READ, io_cb, NULL),
                     0);
    assert_int_equal(fake_api_poll(1000), 1);
    assert_int_equal(seen.fd, lfd);
    assert_int_equal(api->accept_batch(loop, lfd, fds, 4), 2);
    assert_true(is_nonblock_cloexec(fds[0]));
    assert_true(is_nonblock_cloexec(fds[1]));
    assert_int_equal(write(c1, "ping", 4), 4);
    assert_int_equal(api->remove_handler(loop, lfd), 0);

    /* Errors name the address and the reason. */
    snprintf(line, sizeof(line), "127.0.0.1:%d", port);
    other = api->listen_tcp(loop, line, 0, 0, err, sizeof(err));
    assert_int_equal(other, -EADDRINUSE);
    assert_non_null(strstr(err, "Address already in use"));
    assert_non_null(strstr(err, line));
    assert_int_equal(api->listen_tcp(loop, "no-port", 0, 0, err,
                                     sizeof(err)),
                     -EINVAL);
    assert_string_equal(err,
                        "listen \"no-port\": expected HOST:PORT or "
                        "[IPV6]:PORT");
    assert_int_equal(api->listen_tcp(loop, "[::1", 0, 0, err, sizeof(err)),
                     -EINVAL);

    /* SO_REUSEPORT lets a second listener share the port. */
    close(lfd);
    lfd = api->listen_tcp(loop, "127.0.0.1:0", 8, IOLOOP_LISTEN_REUSEPORT,
                          err, sizeof(err));
    assert_true(lfd >= 0);
    snprintf(line, sizeof(line), "127.0.0.1:%d", fake_api_local_port(lfd));
    other = api->listen_tcp(loop, line, 8, IOLOOP_LISTEN_REUSEPORT, err,
                            sizeof(err));
    assert_true(other >= 0);
    close(other);
    close(lfd);
    close(fds[0]);
    close(fds[1]);
    close(c1);
    close(c2);
}

static void
test_listen_tcp_ipv6(void **state)
{
    char err[256], line[64];
    int lfd;

    (void) state;
    lfd = api->listen_tcp(loop, "[::1]:0", 0, 0, err, sizeof(err));
    if (lfd == -EAFNOSUPPORT || lfd == -EADDRNOTAVAIL || lfd == -EINVAL) {
        skip(); /* no IPv6 loopback here */
    }
    assert_true(lfd >= 0);
    snprintf(line, sizeof(line), "listening on [::1]:%d",
             fake_api_local_port(lfd));
    assert_int_equal(fake_api_log_count(line), 1);
    close(lfd);
}

static void
test_listen_unix(void **state)
{
    char dir[] = "/tmp/fake_api_XXXXXX", path[64], err[256];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    int lfd, again, c, fd;

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    lfd = api->listen_unix(loop, path, 0600, 0, err, sizeof(err));
    assert_true(lfd >= 0);
    assert_true(is_nonblock_cloexec(lfd));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fake_api_log_count("listening on unix:"), 1);

    /* A live server is not replaced. */
    again = api->listen_unix(loop, path, 0, 0, err, sizeof(err));
    assert_int_equal(again, -EADDRINUSE);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *) &sun, sizeof(sun)), 0);
    fd = api->accept(loop, lfd);
    assert_true(fd >= 0);
    close(fd);
    close(c);

    /* A stale socket file (its server died) is. */
    close(lfd);
    lfd = api->listen_unix(loop, path, 0, 0, err, sizeof(err));
    assert_true(lfd >= 0);
    close(lfd);
    unlink(path);

    /* Any other file is not. */
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    assert_int_equal(api->listen_unix(loop, path, 0, 0, err, sizeof(err)),
                     -EEXIST);
    assert_non_null(strstr(err, "exists and is not a socket"));
    unlink(path);
    rmdir(dir);
}

static int
signal_cb(ioloop_loop_t *l, int signo, void *arg)
{
    (void) l;
    (void) arg;
    seen.calls++;
    seen.signo = signo;
    return 0;
}

static void
test_signals(void **state)
{
    int id1, id2;

    (void) state;
    assert_int_equal(api->signal_subscribe(loop, SIGKILL, signal_cb, NULL),
                     -EINVAL);
    assert_int_equal(api->signal_subscribe(loop, SIGUSR2, signal_cb, NULL),
                     -EINVAL);
    assert_int_equal(api->signal_subscribe(loop, SIGPIPE, signal_cb, NULL),
                     -EINVAL);
    id1 = api->signal_subscribe(loop, SIGHUP, signal_cb, NULL);
    id2 = api->signal_subscribe(loop, SIGHUP, signal_cb, NULL);
    assert_true(id1 > 0 && id2 > 0 && id1 != id2);
    assert_int_equal(fake_api_signal_count(), 2);
    assert_int_equal(fake_api_deliver_signal(SIGHUP), 2);
    assert_int_equal(seen.signo, SIGHUP);
    assert_int_equal(fake_api_deliver_signal(SIGUSR1), 0);
    assert_int_equal(api->signal_unsubscribe(loop, id1), 0);
    assert_int_equal(api->signal_unsubscribe(loop, id1), -ENOENT);
    assert_int_equal(fake_api_leftovers(), 1);
    assert_int_equal(api->signal_unsubscribe(loop, id2), 0);
    assert_int_equal(fake_api_leftovers(), 0);
}

static void
test_streams_are_not_faked(void **state)
{
    int sv[2];

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    errno = 0;
    assert_null(api->stream_new(loop, sv[0], NULL));
    assert_int_equal(errno, ENOSYS);
    assert_int_equal(api->stream_read_until(NULL, "\n", 1, NULL), -ENOSYS);
    assert_int_equal(api->stream_read_bytes(NULL, 1, NULL), -ENOSYS);
    assert_int_equal(api->stream_read_some(NULL, 1, NULL), -ENOSYS);
    assert_int_equal(api->stream_read_until_close(NULL, NULL), -ENOSYS);
    assert_int_equal(api->stream_write(NULL, "x", 1, NULL), -ENOSYS);
    api->stream_close(NULL);
    assert_int_equal(api->stream_fd(NULL), -1);
    assert_int_equal(api->stream_pending(NULL), 0);
    assert_int_equal(api->stream_error(NULL), ENOSYS);
    /* The fd stays the caller's: still open. */
    assert_true(fcntl(sv[0], F_GETFD) >= 0);
    close(sv[0]);
    close(sv[1]);
}

/* Counters are kept per series and read back by name and label value;
 * a negative handle (failed registration) is ignored. */
static void
test_counters(void **state)
{
    int a, b, c;

    (void) state;
    assert_int_equal(fake_api_counter("req_total", "2xx"), -1);
    a = api->counter_register(loop, "req_total", "Requests.", "code", "2xx");
    b = api->counter_register(loop, "req_total", "Requests.", "code", "4xx");
    c = api->counter_register(loop, "shed_total", "Shed.", NULL, NULL);
    assert_true(a >= 0 && b >= 0 && c >= 0 && a != b && b != c);
    assert_int_equal(api->counter_register(loop, "x_total", NULL, NULL,
                                           NULL),
                     -EINVAL);
    api->counter_add(loop, a, 1);
    api->counter_add(loop, a, 2);
    api->counter_add(loop, c, 5);
    api->counter_add(loop, -1, 7);
    assert_int_equal(fake_api_counter("req_total", "2xx"), 3);
    assert_int_equal(fake_api_counter("req_total", "4xx"), 0);
    assert_int_equal(fake_api_counter("shed_total", NULL), 5);
    api = fake_api_setup();
    assert_int_equal(fake_api_counter("req_total", "2xx"), -1);
}

/* A test may replace any member, e.g. to make add_handler fail. */
static int
failing_add_handler(ioloop_instance_t *l, int fd, unsigned events,
                    ioloop_io_cb cb, void *arg)
{
    (void) l;
    (void) fd;
    (void) events;
    (void) cb;
    (void) arg;
    return -ENOMEM;
}

static void
test_table_members_can_be_replaced_and_setup_resets(void **state)
{
    int sv[2];

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fake_api_table()->add_handler = failing_add_handler;
    assert_int_equal(api->add_handler(loop, sv[0], IOLOOP_READ, io_cb, NULL),
                     -ENOMEM);
    api->stop(loop);
    assert_int_equal(fake_api_stopped(), 1);
    api->call_later(loop, 5, tag_cb, NULL);
    api->log(loop, IOLOOP_LOG_ERROR, "x");

    /* The wrong loop handle is caught. */
    assert_int_equal(api->remove_handler((ioloop_instance_t *) (void *) &seen,
                                         sv[0]),
                                         -EINVAL);
    assert_int_equal(fake_api_failures(), 1);

    api = fake_api_setup();
    assert_int_equal(api->add_handler(loop, sv[0], IOLOOP_READ, io_cb, NULL),
                     0);
    assert_int_equal(fake_api_stopped(), 0);
    assert_int_equal(fake_api_failures(), 0);
    assert_int_equal(fake_api_timer_count(), 0);
    assert_string_equal(fake_api_log_text(), "");
    assert_int_equal(fake_api_leftovers(), 1);
    close(sv[0]);
    close(sv[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_table_is_complete, setup),
        cmocka_unit_test_setup(test_handlers_fire_by_hand, setup),
        cmocka_unit_test_setup(test_poll_dispatches_real_readiness, setup),
        cmocka_unit_test_setup(test_callbacks_in_order_with_starvation_guard,
                               setup),
        cmocka_unit_test_setup(test_timers_on_the_fake_clock, setup),
        cmocka_unit_test_setup(test_periodics, setup),
        cmocka_unit_test_setup(test_log_is_captured, setup),
        cmocka_unit_test_setup(test_listen_tcp_and_accept, setup),
        cmocka_unit_test_setup(test_listen_tcp_ipv6, setup),
        cmocka_unit_test_setup(test_listen_unix, setup),
        cmocka_unit_test_setup(test_signals, setup),
        cmocka_unit_test_setup(test_streams_are_not_faked, setup),
        cmocka_unit_test_setup(test_counters, setup),
        cmocka_unit_test_setup(
            test_table_members_can_be_replaced_and_setup_resets, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
