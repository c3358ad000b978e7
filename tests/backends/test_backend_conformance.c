/*
 * test_backend_conformance.c: the one conformance suite every poller
 * backend must pass. Run as `test_backend_conformance <name> [<path>]`: it
 * loads <path>, by default IOLOOP_BUILD_DIR/backends/<name>.so, the way the
 * host does and checks, over real socketpair() fds, what
 * api/ioloop/backend.h promises. (<path> serves builds kept out of the
 * backend dir, such as kqueue.so over the Linux kqueue emulation.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ioloop/backend.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#define MS IOLOOP_NS_PER_MS
#define MAX_EVENTS 64
#define MANY_PAIRS 1000
#define HUGE_PAIRS 5000 /* 10,000 registered fds */
#define ALL_BITS (IOLOOP_READ | IOLOOP_WRITE | IOLOOP_ERROR | IOLOOP_HUP)

static const char *g_name;                /* argv[1], e.g. "epoll" */
static const char *g_path;                /* argv[2], or NULL */
static void *g_dl;                        /* dlopen() handle */
static const struct ioloop_backend *g_be; /* the backend under test */
static volatile sig_atomic_t g_alarms;    /* SIGALRMs seen by on_alarm */

/* ---- helpers ---------------------------------------------------------- */

static int64_t
now_ns(void)
{
    struct timespec ts;

    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (int64_t) ts.tv_sec * IOLOOP_NS_PER_S + ts.tv_nsec;
}

static int
is_select(void)
{
    return strcmp(g_name, "select") == 0;
}

/* A connected, non-blocking, close-on-exec AF_UNIX stream pair. */
static void
make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX,
                                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                                sv),
                     0);
}

static void
close_pair(int sv[2])
{
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0) {
            assert_int_equal(close(sv[i]), 0);
            sv[i] = -1;
        }
    }
}

static void
put(int fd, size_t len)
{
    char buf[64];

    assert_true(len <= sizeof(buf));
    memset(buf, 'x', len);
    assert_int_equal(write(fd, buf, len), (ssize_t) len);
}

/* Reads fd until it would block; returns how many bytes it read. */
static size_t
drain(int fd)
{
    char buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        total += (size_t) n;
    }
    assert_true(n == -1 && errno == EAGAIN);
    return total;
}

/*
 * Polls once and checks the batch is well formed: 0 <= n <= max, known
 * bits only, no empty entry and no fd twice. Returns n.
 */
static int
poll_once(void *st, struct ioloop_event *ev, int max, int64_t timeout_ns)
{
    int n = g_be->poll(st, ev, max, timeout_ns);

    assert_in_range(n, 0, max);
    for (int i = 0; i < n; i++) {
        assert_true(ev[i].fd >= 0);
        assert_int_not_equal(ev[i].events, 0);
        assert_int_equal(ev[i].events & ~ALL_BITS, 0);
        for (int j = i + 1; j < n; j++) {
            assert_int_not_equal(ev[i].fd, ev[j].fd);
        }
    }
    return n;
}

/* The bits reported for fd in ev[0, n), or 0 if it is absent. */
static unsigned
events_of(const struct ioloop_event *ev, int n, int fd)
{
    for (int i = 0; i < n; i++) {
        if (ev[i].fd == fd) {
            return ev[i].events;
        }
    }
    return 0;
}

/* Polls without waiting and returns what was reported for fd. */
static unsigned
poll_fd(void *st, int fd)
{
    struct ioloop_event ev[MAX_EVENTS];
    int n = poll_once(st, ev, MAX_EVENTS, 0);

    return events_of(ev, n, fd);
}

/* Polls without waiting and asserts that nothing at all is reported. */
static void
assert_quiet(void *st)
{
    struct ioloop_event ev[MAX_EVENTS];

    assert_int_equal(poll_once(st, ev, MAX_EVENTS, 0), 0);
}

/* Raises the soft fd limit to at least want if the hard limit allows. */
static rlim_t
fd_limit(rlim_t want)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return rl.rlim_cur;
}

static void
on_alarm(int sig)
{
    (void) sig;
    g_alarms++;
}

/* ---- fixtures --------------------------------------------------------- */

/* Group setup: dlopen() the backend and look up its one symbol. */
static int
load_backend(void **state)
{
    char path[4096];

    (void) state;
    if (g_path != NULL) {
        snprintf(path, sizeof(path), "%s", g_path);
    } else {
        snprintf(path, sizeof(path), "%s/backends/%s.so", IOLOOP_BUILD_DIR,
                 g_name);
    }
    g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (g_dl == NULL) {
        print_error("dlopen(%s): %s\n", path, dlerror());
        return -1;
    }
    g_be = dlsym(g_dl, IOLOOP_BACKEND_SYMBOL);
    if (g_be == NULL) {
        print_error("dlsym(%s): %s\n", IOLOOP_BACKEND_SYMBOL, dlerror());
        return -1;
    }
    return 0;
}

static int
unload_backend(void **state)
{
    (void) state;
    if (g_dl != NULL) {
        dlclose(g_dl);
    }
    return 0;
}

/*
 * True, with a note, when the kernel refuses the backend outright (io_uring
 * under kernel.io_uring_disabled or a container's seccomp profile): create()
 * fails with EPERM or ENOSYS. The suite is then skipped, not failed.
 */
static int
kernel_refuses(void)
{
    char err[256] = "";
    void *st;

    errno = 0;
    st = g_be->create(64, err, sizeof(err));
    if (st != NULL) {
        g_be->destroy(st);
        return 0;
    }
    if (errno != EPERM && errno != ENOSYS) {
        return 0;
    }
    print_message("note: the kernel refuses %s (%s): suite skipped\n",
                  g_name, err);
    return 1;
}

/* Per test: a fresh backend state in *state. */
static int
create_state(void **state)
{
    char err[256] = "";

    *state = g_be->create(64, err, sizeof(err));
    if (*state == NULL) {
        print_error("%s: create: %s\n", g_name, err);
        return -1;
    }
    return 0;
}

static int
destroy_state(void **state)
{
    g_be->destroy(*state);
    return 0;
}

/* ---- ABI and lifecycle ------------------------------------------------ */

/* The symbol the host looks up is well formed, and nothing else leaks. */
static void
test_abi(void **state)
{
    char internal[64];

    (void) state;
    assert_int_equal(g_be->abi_version, IOLOOP_BACKEND_ABI);
    assert_int_equal(g_be->size, sizeof(struct ioloop_backend));
    assert_non_null(g_be->name);
    assert_string_equal(g_be->name, g_name);
    assert_non_null(g_be->create);
    assert_non_null(g_be->destroy);
    assert_non_null(g_be->add);
    assert_non_null(g_be->modify);
    assert_non_null(g_be->remove);
    assert_non_null(g_be->poll);
    /* Built with -fvisibility=hidden: the static ops are not exported. */
    snprintf(internal, sizeof(internal), "%s_backend_create", g_name);
    assert_null(dlsym(g_dl, internal));
}

/*
 * create() takes any hint; destroy(NULL) is a no-op; with no fd left to
 * open, create() either needs none or fails with errno and a one-line
 * reason.
 */
static void
test_create_destroy(void **state)
{
    struct rlimit saved, rl;
    char err[256];
    void *st;
    int lowest, saved_errno;

    (void) state;
    g_be->destroy(NULL);
    st = g_be->create(0, NULL, 0);
    assert_non_null(st);
    g_be->destroy(st);
    st = g_be->create(1u << 30, NULL, 0);
    assert_non_null(st);
    g_be->destroy(st);

    lowest = dup(0);
    assert_true(lowest >= 0);
    assert_int_equal(close(lowest), 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rl = saved;
    rl.rlim_cur = (rlim_t) lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    err[0] = '\0';
    errno = 0;
    st = g_be->create(64, err, sizeof(err));
    saved_errno = errno;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    if (st != NULL) {
        g_be->destroy(st);
        return;
    }
    assert_int_equal(saved_errno, EMFILE);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
}

/* ---- readiness --------------------------------------------------------- */

static void
test_readable(void **state)
{
    int sv[2];

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_quiet(*state);
    put(sv[1], 1);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/* Writable while the socket buffer has room, not when it is full. */
static void
test_writable(void **state)
{
    char buf[4096];
    int sv[2];

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_WRITE), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_WRITE);
    memset(buf, 'x', sizeof(buf));
    while (write(sv[0], buf, sizeof(buf)) > 0) {
        continue;
    }
    assert_int_equal(errno, EAGAIN);
    assert_quiet(*state);
    assert_true(drain(sv[1]) > 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_WRITE);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_WRITE), 0);
    close_pair(sv);
}

/* READ and WRITE on one fd come back as one event with both bits. */
static void
test_read_write(void **state)
{
    unsigned rw = IOLOOP_READ | IOLOOP_WRITE;
    int sv[2];

    make_pair(sv);
    put(sv[1], 1);
    assert_int_equal(g_be->add(*state, sv[0], rw), 0);
    assert_int_equal(poll_fd(*state, sv[0]), rw);
    assert_int_equal(g_be->remove(*state, sv[0], rw), 0);
    close_pair(sv);
}

/* On a readable and writable fd, only the bits asked for are reported. */
static void
test_modify(void **state)
{
    int sv[2];

    make_pair(sv);
    put(sv[1], 1);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(
        g_be->modify(*state, sv[0], IOLOOP_READ, IOLOOP_WRITE), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_WRITE);
    assert_int_equal(g_be->modify(*state, sv[0], IOLOOP_WRITE, 0), 0);
    assert_quiet(*state);
    assert_int_equal(g_be->modify(*state, sv[0], 0, IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/* A removed fd is never reported again, and can be added back. */
static void
test_remove(void **state)
{
    int sv[2];

    make_pair(sv);
    put(sv[1], 1);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    assert_quiet(*state);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/*
 * Removing fds from the front and middle leaves the others watched and
 * modifiable (poll moves its last entry into the hole).
 */
static void
test_remove_many(void **state)
{
    enum { N = 5 };
    struct ioloop_event ev[MAX_EVENTS];
    int pairs[N][2], n;

    for (int i = 0; i < N; i++) {
        make_pair(pairs[i]);
        put(pairs[i][1], 1);
        assert_int_equal(g_be->add(*state, pairs[i][0], IOLOOP_READ), 0);
    }
    assert_int_equal(g_be->remove(*state, pairs[0][0], IOLOOP_READ), 0);
    assert_int_equal(g_be->remove(*state, pairs[2][0], IOLOOP_READ), 0);
    for (int i = 1; i < N; i += 2) {
        assert_int_equal(g_be->modify(*state, pairs[i][0], IOLOOP_READ, 0),
                         0);
    }
    assert_int_equal(g_be->modify(*state, pairs[4][0], IOLOOP_READ, 0), 0);
    assert_quiet(*state);
    for (int i = 1; i < N; i += 2) {
        assert_int_equal(g_be->modify(*state, pairs[i][0], 0, IOLOOP_READ),
                         0);
    }
    n = poll_once(*state, ev, MAX_EVENTS, 0);
    assert_int_equal(n, 2);
    assert_int_equal(events_of(ev, n, pairs[1][0]), IOLOOP_READ);
    assert_int_equal(events_of(ev, n, pairs[3][0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, pairs[3][0], IOLOOP_READ), 0);
    assert_int_equal(g_be->remove(*state, pairs[1][0], IOLOOP_READ), 0);
    assert_int_equal(g_be->remove(*state, pairs[4][0], 0), 0);
    assert_quiet(*state);
    for (int i = 0; i < N; i++) {
        close_pair(pairs[i]);
    }
}

/* add() of a closed fd fails at once; remove() of an unknown fd is safe. */
static void
test_bad_fds(void **state)
{
    int closed, rc, sv[2];

    make_pair(sv);
    rc = g_be->remove(*state, sv[0], IOLOOP_READ);
    assert_true(rc == 0 || rc == -ENOENT);
    assert_int_equal(g_be->add(*state, -1, IOLOOP_READ), -EBADF);
    closed = sv[0];
    close_pair(sv);
    assert_int_equal(g_be->add(*state, closed, IOLOOP_READ), -EBADF);
    assert_quiet(*state);
}

/* The survivor of a closed pair sees READ (EOF) and/or HUP, repeatedly. */
static void
test_peer_close(void **state)
{
    char c;
    unsigned ev;
    int sv[2];

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_quiet(*state);
    assert_int_equal(close(sv[1]), 0);
    sv[1] = -1;
    ev = poll_fd(*state, sv[0]);
    assert_int_not_equal(ev & (IOLOOP_READ | IOLOOP_HUP), 0);
    assert_int_equal(ev & IOLOOP_WRITE, 0);
    assert_int_equal(read(sv[0], &c, 1), 0);
    assert_int_equal(poll_fd(*state, sv[0]), ev);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/* HUP comes without being asked for (select has no way to report it). */
static void
test_hup_unasked(void **state)
{
    int sv[2];

    if (is_select()) {
        print_message("note: select reports a hang-up only as READ/WRITE, "
                      "and only when asked for\n");
        skip();
    }
    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], 0), 0);
    assert_quiet(*state);
    assert_int_equal(close(sv[1]), 0);
    sv[1] = -1;
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_HUP);
    assert_int_equal(g_be->remove(*state, sv[0], 0), 0);
    close_pair(sv);
}

/*
 * A paused reader (READ dropped with data unread) hears nothing of that
 * data, old or new, yet still sees the hang-up, on every poll.
 */
static void
test_paused_reader(void **state)
{
    char buf[4];
    int sv[2];

    if (is_select()) {
        print_message("note: select reports a hang-up only as READ/WRITE, "
                      "and only when asked for\n");
        skip();
    }
    make_pair(sv);
    put(sv[1], 1);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(g_be->modify(*state, sv[0], IOLOOP_READ, 0), 0);
    assert_quiet(*state);
    put(sv[1], 1);
    assert_quiet(*state);
    assert_quiet(*state);
    assert_int_equal(close(sv[1]), 0);
    sv[1] = -1;
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_HUP);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_HUP);
    assert_int_equal(g_be->modify(*state, sv[0], 0, IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ | IOLOOP_HUP);
    assert_int_equal(read(sv[0], buf, sizeof(buf)), 2);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/*
 * A refused TCP connect leaves SO_ERROR pending: reported as ERROR without
 * being asked for (select: as WRITE, which it was asked for).
 */
static void
test_error(void **state)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    struct ioloop_event ev[MAX_EVENTS];
    unsigned asked = is_select() ? IOLOOP_WRITE : 0, got = 0;
    int64_t deadline;
    int l, s, so_error;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l == -1 || bind(l, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        print_message("note: no loopback TCP (%s), skipped\n",
                      strerror(errno));
        if (l != -1) {
            close(l);
        }
        skip();
    }
    assert_int_equal(getsockname(l, (struct sockaddr *) &sin, &len), 0);
    assert_int_equal(close(l), 0); /* nobody listens on that port now */
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    if (connect(s, (struct sockaddr *) &sin, sizeof(sin)) == 0
        || errno != EINPROGRESS)
    {
        print_message("note: connect did not go async (%s), skipped\n",
                      strerror(errno));
        close(s);
        skip();
    }
    assert_int_equal(g_be->add(*state, s, asked), 0);
    deadline = now_ns() + 5000 * MS;
    while (got == 0 && now_ns() < deadline) {
        int n = poll_once(*state, ev, MAX_EVENTS, 100 * MS);
        got = events_of(ev, n, s);
    }
    if (is_select()) {
        assert_int_equal(got, IOLOOP_WRITE);
    } else {
        assert_int_not_equal(got & IOLOOP_ERROR, 0);
        assert_int_equal(got & (IOLOOP_READ | IOLOOP_WRITE), 0);
    }
    len = sizeof(so_error);
    assert_int_equal(getsockopt(s, SOL_SOCKET, SO_ERROR, &so_error, &len), 0);
    /* Set where the poller itself reads SO_ERROR, clearing it (libkqueue:
     * docs/backends.md): then the error is known to be gone by now. */
    assert_int_equal(so_error, getenv("IOLOOP_TEST_SO_ERROR_CONSUMED") != NULL
                                   ? 0 : ECONNREFUSED);
    assert_int_equal(g_be->remove(*state, s, asked), 0);
    assert_int_equal(close(s), 0);
}

/*
 * A UDP error (ICMP port unreachable) on an fd with no interest: ERROR
 * comes unasked; once SO_ERROR is read, data that then arrives is neither
 * reported nor makes a 500 ms wait spin (under 25 ms of CPU).
 */
static void
test_udp_error_then_data(void **state)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    struct ioloop_event ev[MAX_EVENTS];
    struct timespec c0, c1;
    unsigned got = 0;
    int64_t cpu, deadline;
    int err, p, u;

    if (is_select()) {
        print_message("note: select reports errors only as READ/WRITE, "
                      "and only when asked for\n");
        skip();
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(p >= 0 && u >= 0);
    assert_int_equal(bind(p, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(p, (struct sockaddr *) &sin, &len), 0);
    assert_int_equal(close(p), 0); /* nobody listens on that port now */
    assert_int_equal(connect(u, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(g_be->add(*state, u, 0), 0);
    put(u, 1);
    deadline = now_ns() + 5000 * MS;
    while (got == 0 && now_ns() < deadline) {
        got = events_of(ev, poll_once(*state, ev, MAX_EVENTS, 100 * MS), u);
    }
    if (got == 0) {
        print_message("note: no ICMP error on loopback UDP, skipped\n");
        assert_int_equal(g_be->remove(*state, u, 0), 0);
        assert_int_equal(close(u), 0);
        skip();
    }
    assert_int_not_equal(got & IOLOOP_ERROR, 0);
    assert_int_equal(got & (IOLOOP_READ | IOLOOP_WRITE), 0);
    len = sizeof(err);
    assert_int_equal(getsockopt(u, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    /* The port comes back, and sends to u, which does not ask for it. */
    p = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(p >= 0);
    assert_int_equal(bind(p, (struct sockaddr *) &sin, sizeof(sin)), 0);
    len = sizeof(sin);
    assert_int_equal(getsockname(u, (struct sockaddr *) &sin, &len), 0);
    assert_int_equal(sendto(p, "x", 1, 0, (struct sockaddr *) &sin, len), 1);
    assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(poll_once(*state, ev, MAX_EVENTS, 100 * MS), 0);
    }
    assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1), 0);
    cpu = (int64_t) (c1.tv_sec - c0.tv_sec) * IOLOOP_NS_PER_S
          + (c1.tv_nsec - c0.tv_nsec);
    if (cpu >= 25 * MS) {
        fail_msg("500 ms of waits with unread data took %lld ns of CPU",
                 (long long) cpu);
    }
    assert_int_equal(g_be->remove(*state, u, 0), 0);
    assert_int_equal(close(u), 0);
    assert_int_equal(close(p), 0);
}

/*
 * An fd closed without remove() is not reported, does not cut a wait short
 * and does not make poll() fail for the others; remove() afterwards is
 * safe, and the fd number can then be reused.
 */
static void
test_closed_without_remove(void **state)
{
    struct ioloop_event ev[MAX_EVENTS];
    int64_t t0;
    int closed, n, p[2], q[2], r[2], rc;

    make_pair(q);
    make_pair(p);
    assert_int_equal(g_be->add(*state, q[0], IOLOOP_READ), 0);
    assert_int_equal(g_be->add(*state, p[0], IOLOOP_READ), 0);
    put(p[1], 1);
    closed = p[0];
    assert_int_equal(close(p[0]), 0);
    p[0] = -1;
    t0 = now_ns();
    assert_int_equal(poll_once(*state, ev, MAX_EVENTS, 20 * MS), 0);
    assert_true(now_ns() - t0 >= 20 * MS);
    put(q[1], 1);
    for (int i = 0; i < 2; i++) {
        n = poll_once(*state, ev, MAX_EVENTS, 0);
        assert_int_equal(n, 1);
        assert_int_equal(ev[0].fd, q[0]);
        assert_int_equal(ev[0].events, IOLOOP_READ);
    }
    /* Removing q first moves the closed fd's entry, if any, in the map. */
    assert_int_equal(g_be->remove(*state, q[0], IOLOOP_READ), 0);
    assert_quiet(*state);
    rc = g_be->remove(*state, closed, IOLOOP_READ);
    assert_true(rc == 0 || rc == -EBADF || rc == -ENOENT);
    assert_quiet(*state);

    make_pair(r); /* most likely reuses the closed fd's number */
    assert_int_equal(g_be->add(*state, r[0], IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, r[0]), 0);
    put(r[1], 1);
    assert_int_equal(poll_fd(*state, r[0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, r[0], IOLOOP_READ), 0);
    close_pair(p);
    close_pair(q);
    close_pair(r);
}

/* Level-triggered: unread data is reported on every poll until read. */
static void
test_level_triggered(void **state)
{
    char c;
    int sv[2];

    make_pair(sv);
    put(sv[1], 2);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(read(sv[0], &c, 1), 1);
    assert_int_equal(poll_fd(*state, sv[0]), IOLOOP_READ);
    assert_int_equal(read(sv[0], &c, 1), 1);
    assert_quiet(*state);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/*
 * With more fds ready than max, poll() fills exactly max entries and
 * writes nothing past them; successive polls get round to every fd.
 */
static void
test_max(void **state)
{
    enum { N = 8, MAX = 3, GUARD = 4 };
    struct ioloop_event ev[MAX + GUARD];
    int pairs[N][2], seen[N] = { 0 }, nseen = 0, n;

    for (int i = 0; i < N; i++) {
        make_pair(pairs[i]);
        put(pairs[i][1], 1);
        assert_int_equal(g_be->add(*state, pairs[i][0], IOLOOP_READ), 0);
    }
    for (int round = 0; round < N && nseen < N; round++) {
        for (int i = 0; i < MAX + GUARD; i++) {
            ev[i].fd = -42;
            ev[i].events = 0xdead;
        }
        n = poll_once(*state, ev, MAX, 0);
        assert_int_equal(n, MAX);
        for (int i = MAX; i < MAX + GUARD; i++) {
            assert_int_equal(ev[i].fd, -42);
            assert_int_equal(ev[i].events, 0xdead);
        }
        for (int i = 0; i < N; i++) {
            if (!seen[i] && events_of(ev, n, pairs[i][0]) == IOLOOP_READ) {
                seen[i] = 1;
                nseen++;
            }
        }
    }
    assert_int_equal(nseen, N); /* no ready fd starves */
    assert_int_equal(poll_once(*state, ev, 1, 0), 1);
    assert_int_equal(g_be->poll(*state, ev, 0, 0), -EINVAL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g_be->remove(*state, pairs[i][0], IOLOOP_READ), 0);
        close_pair(pairs[i]);
    }
}

/*
 * Many fds: every other pair is readable and exactly those are reported.
 * select refuses fds >= FD_SETSIZE with -EINVAL and watches the rest.
 */
static void
test_many_fds(void **state)
{
    struct ioloop_event *ev;
    int (*pairs)[2], *added, npairs = MANY_PAIRS, nadded = 0, nready = 0, n;
    rlim_t lim;

    lim = fd_limit(2 * MANY_PAIRS + 64);
    if (lim < 2 * MANY_PAIRS + 64) {
        npairs = (int) (lim > 128 ? (lim - 64) / 2 : 32);
        print_message("note: RLIMIT_NOFILE is %lu, using %d pairs\n",
                      (unsigned long) lim, npairs);
    }
    pairs = calloc((size_t) npairs, sizeof(*pairs));
    added = calloc((size_t) npairs, sizeof(*added));
    ev = calloc((size_t) npairs, sizeof(*ev));
    assert_true(pairs != NULL && added != NULL && ev != NULL);
    for (int i = 0; i < npairs; i++) {
        make_pair(pairs[i]);
        int rc = g_be->add(*state, pairs[i][0], IOLOOP_READ);
        if (is_select() && pairs[i][0] >= FD_SETSIZE) {
            assert_int_equal(rc, -EINVAL);
            continue;
        }
        assert_int_equal(rc, 0);
        added[i] = 1;
        nadded++;
        if (i % 2 == 0) {
            put(pairs[i][1], 1);
            nready++;
        }
    }
    assert_true(nadded > 0);
    n = poll_once(*state, ev, npairs, 0);
    assert_int_equal(n, nready);
    for (int i = 0; i < npairs; i++) {
        unsigned want = added[i] && i % 2 == 0 ? IOLOOP_READ : 0;
        assert_int_equal(events_of(ev, n, pairs[i][0]), want);
    }
    for (int i = 0; i < npairs; i++) {
        if (added[i]) {
            assert_int_equal(g_be->remove(*state, pairs[i][0], IOLOOP_READ),
                             0);
        }
        close_pair(pairs[i]);
    }
    assert_quiet(*state);
    free(ev);
    free(added);
    free(pairs);
}

/*
 * 10,000 registered fds (both ends of 5,000 pairs), a few of them active:
 * exactly those are reported, in one poll and after a wait. select refuses
 * every fd >= FD_SETSIZE with -EINVAL and watches the rest.
 */
static void
test_huge_fds(void **state)
{
    static const int active[] = { 0, 1, 2, 2500, HUGE_PAIRS - 1 };
    enum { NACTIVE = sizeof(active) / sizeof(active[0]) };
    struct ioloop_event ev[MAX_EVENTS];
    int (*pairs)[2], fd, n, want;
    unsigned bits;
    rlim_t lim;

    lim = fd_limit(2 * HUGE_PAIRS + 64);
    if (lim < 2 * HUGE_PAIRS + 64) {
        print_message("note: RLIMIT_NOFILE is %lu (hard limit too low for "
                      "%d fds), skipped\n", (unsigned long) lim,
                      2 * HUGE_PAIRS);
        skip();
    }
    pairs = calloc(HUGE_PAIRS, sizeof(*pairs));
    assert_non_null(pairs);
    for (int i = 0; i < HUGE_PAIRS; i++) {
        make_pair(pairs[i]);
        for (int j = 0; j < 2; j++) {
            int rc = g_be->add(*state, pairs[i][j], IOLOOP_READ);

            assert_int_equal(rc, is_select() && pairs[i][j] >= FD_SETSIZE
                                     ? -EINVAL : 0);
        }
    }
    assert_quiet(*state);
    /* Pair i makes end i % 2 readable: both ends of the set get a turn. */
    for (int k = 0; k < NACTIVE; k++) {
        put(pairs[active[k]][1 - active[k] % 2], 1);
    }
    for (int round = 0; round < 2; round++) {
        n = poll_once(*state, ev, MAX_EVENTS, round == 0 ? 0 : 1000 * MS);
        want = 0;
        for (int k = 0; k < NACTIVE; k++) {
            fd = pairs[active[k]][active[k] % 2];
            bits = is_select() && fd >= FD_SETSIZE ? 0 : IOLOOP_READ;
            assert_int_equal(events_of(ev, n, fd), bits);
            want += bits != 0;
        }
        assert_int_equal(n, want);
    }
    for (int i = 0; i < HUGE_PAIRS; i++) {
        for (int j = 0; j < 2; j++) {
            if (!is_select() || pairs[i][j] < FD_SETSIZE) {
                assert_int_equal(
                    g_be->remove(*state, pairs[i][j], IOLOOP_READ), 0);
            }
        }
        close_pair(pairs[i]);
    }
    assert_quiet(*state);
    free(pairs);
}

/* An fd >= FD_SETSIZE: select refuses it, the others watch it. */
static void
test_fd_setsize(void **state)
{
    int big, rc, sv[2];

    if (fd_limit(FD_SETSIZE + 16) <= FD_SETSIZE) {
        print_message("note: RLIMIT_NOFILE <= FD_SETSIZE (%d): cannot open "
                      "an fd >= FD_SETSIZE, skipped\n", FD_SETSIZE);
        skip();
    }
    make_pair(sv);
    big = fcntl(sv[0], F_DUPFD_CLOEXEC, FD_SETSIZE);
    assert_true(big >= FD_SETSIZE);
    rc = g_be->add(*state, big, IOLOOP_READ);
    if (is_select()) {
        assert_int_equal(rc, -EINVAL);
        assert_quiet(*state);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(poll_fd(*state, big), 0);
        put(sv[1], 1);
        assert_int_equal(poll_fd(*state, big), IOLOOP_READ);
        assert_int_equal(g_be->remove(*state, big, IOLOOP_READ), 0);
    }
    assert_int_equal(close(big), 0);
    close_pair(sv);
}

/* ---- timeouts --------------------------------------------------------- */

/* Timeout 0 returns at once, with and without fds. */
static void
test_timeout_zero(void **state)
{
    struct ioloop_event ev[MAX_EVENTS];
    int64_t t0;
    int sv[2];

    t0 = now_ns();
    assert_int_equal(poll_once(*state, ev, MAX_EVENTS, 0), 0);
    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_int_equal(poll_once(*state, ev, MAX_EVENTS, 0), 0);
    assert_true(now_ns() - t0 < 100 * MS);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/*
 * A 1 ms timeout (the host's shortest timer) is honoured: never early, and
 * not wildly late either (the best of five under 50 ms, so that one
 * preemption on a busy machine does not fail the test).
 */
static void
test_timeout_1ms(void **state)
{
    struct ioloop_event ev[MAX_EVENTS];
    int64_t best = INT64_MAX, elapsed, t0;
    int sv[2];

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    for (int rep = 0; rep < 5; rep++) {
        t0 = now_ns();
        assert_int_equal(poll_once(*state, ev, MAX_EVENTS, MS), 0);
        elapsed = now_ns() - t0;
        if (elapsed < MS) {
            fail_msg("1 ms timeout returned after %lld ns",
                     (long long) elapsed);
        }
        best = elapsed < best ? elapsed : best;
    }
    if (best >= 50 * MS) {
        fail_msg("1 ms timeout took %lld ns at best", (long long) best);
    }
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/*
 * One poll with a 20 ms timeout returns 0 only after 20 ms have passed,
 * with an idle fd and with none: never early, so the loop does not spin.
 */
static void
test_timeout_20ms(void **state)
{
    struct ioloop_event ev[MAX_EVENTS];
    int64_t elapsed, t0;
    int sv[2];

    make_pair(sv);
    for (int with_fd = 0; with_fd < 2; with_fd++) {
        if (with_fd) {
            assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
        }
        t0 = now_ns();
        assert_int_equal(poll_once(*state, ev, MAX_EVENTS, 20 * MS), 0);
        elapsed = now_ns() - t0;
        assert_true(elapsed >= 20 * MS);
        assert_true(elapsed < 2000 * MS);
    }
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/* Timeouts below or between the backend's ticks are rounded up, not down. */
static void
test_timeout_rounds_up(void **state)
{
    static const int64_t timeouts[] = { 1, 999999, MS, 1500000, 2000001 };
    struct ioloop_event ev[MAX_EVENTS];
    int64_t elapsed, t0;
    int sv[2];

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        for (int rep = 0; rep < 3; rep++) {
            t0 = now_ns();
            assert_int_equal(poll_once(*state, ev, MAX_EVENTS, timeouts[i]),
                             0);
            elapsed = now_ns() - t0;
            if (elapsed < timeouts[i]) {
                fail_msg("timeout %lld ns returned after %lld ns",
                         (long long) timeouts[i], (long long) elapsed);
            }
        }
    }
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/* A signal during a wait is not an error: 0 (or a count), never -EINTR. */
static void
test_eintr(void **state)
{
    struct sigaction sa, old;
    struct itimerval it, off;
    struct ioloop_event ev[MAX_EVENTS];
    int n, sv[2];

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the wait must see EINTR */
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    memset(&it, 0, sizeof(it));
    memset(&off, 0, sizeof(off));
    it.it_value.tv_usec = 5000;
    g_alarms = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    n = g_be->poll(*state, ev, MAX_EVENTS, 200 * MS);
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_int_equal(g_alarms, 1);
    assert_int_equal(n, 0);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

/* ---- processes -------------------------------------------------------- */

/* Every fd that create() opens is close-on-exec. */
static void
test_cloexec(void **state)
{
    char before[4096] = { 0 };
    void *st;
    int flags, nfds = 0;

    (void) state;
    for (int fd = 0; fd < (int) sizeof(before); fd++) {
        before[fd] = fcntl(fd, F_GETFD) != -1;
    }
    st = g_be->create(64, NULL, 0);
    assert_non_null(st);
    for (int fd = 0; fd < (int) sizeof(before); fd++) {
        flags = fcntl(fd, F_GETFD);
        if (flags != -1 && !before[fd]) {
            nfds++;
            if (!(flags & FD_CLOEXEC)) {
                fail_msg("fd %d opened by create() is not close-on-exec", fd);
            }
        }
    }
    g_be->destroy(st);
    print_message("note: create() opened %d fd(s)\n", nfds);
}

/*
 * A forked child that destroys its copy of the state (as a loop adopted
 * after fork does) leaves the parent's registrations working: destroy()
 * releases only the child's copies.
 */
static void
test_fork_child_destroy(void **state)
{
    struct ioloop_event ev[MAX_EVENTS];
    int n, sv[2], status;
    pid_t pid;

    make_pair(sv);
    assert_int_equal(g_be->add(*state, sv[0], IOLOOP_READ), 0);
    assert_quiet(*state); /* registered with the kernel before the fork */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        g_be->destroy(*state);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    put(sv[1], 1);
    n = poll_once(*state, ev, MAX_EVENTS, 1000 * MS);
    assert_int_equal(events_of(ev, n, sv[0]), IOLOOP_READ);
    assert_int_equal(g_be->remove(*state, sv[0], IOLOOP_READ), 0);
    close_pair(sv);
}

int
main(int argc, char **argv)
{
#define T(f) cmocka_unit_test_setup_teardown(f, create_state, destroy_state)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abi),
        cmocka_unit_test(test_create_destroy),
        T(test_readable),
        T(test_writable),
        T(test_read_write),
        T(test_modify),
        T(test_remove),
        T(test_remove_many),
        T(test_bad_fds),
        T(test_peer_close),
        T(test_hup_unasked),
        T(test_paused_reader),
        T(test_error),
        T(test_udp_error_then_data),
        T(test_closed_without_remove),
        T(test_level_triggered),
        T(test_max),
        T(test_many_fds),
        T(test_huge_fds),
        T(test_fd_setsize),
        T(test_timeout_zero),
        T(test_timeout_1ms),
        T(test_timeout_20ms),
        T(test_timeout_rounds_up),
        T(test_eintr),
        T(test_cloexec),
        T(test_fork_child_destroy),
    };
#undef T

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s <backend name> [<path to .so>]\n",
                argv[0]);
        return 2;
    }
    g_name = argv[1];
    g_path = argc == 3 ? argv[2] : NULL;
    if (load_backend(NULL) != 0) {
        return 1;
    }
    if (kernel_refuses()) {
        unload_backend(NULL);
        return 0;
    }
    return cmocka_run_group_tests_name(g_name, tests, NULL, unload_backend);
}
