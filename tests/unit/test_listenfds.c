/*
 * tests/unit/test_listenfds.c: socket activation (host/app/listenfds.c) with
 * real sockets. The parent binds them (127.0.0.1:0, 0.0.0.0:0, a Unix
 * path, an unused one, a UDP one, [::1]:0 when IPv6 is there); each
 * scenario runs in a forked child that moves them to fds 3, 4, ... and
 * sets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES as systemd would before
 * exec. The table is parsed once per process, hence one child per
 * scenario; a child reports a failed check on stderr and by its exit
 * status.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "listen_source.h"
#include "listenfds.h"
#include "log.h"
#include "loop.h"
#include "net.h"

/* A check inside a child: on failure, say where and exit 1. */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: child: CHECK(%s) failed\n", __FILE__,  \
                    __LINE__, #cond);                                      \
            _exit(1);                                                      \
        }                                                                  \
    } while (0)

/* The passed sockets, in LISTEN_FDS order (fd 3 + index). */
enum { TCP4, WILD, UNIX, UNUSED, UDP, TCP6, NSOCKETS };

struct sockets {
    int fd[NSOCKETS];
    int n;                       /* NSOCKETS, or TCP6 without IPv6 */
    struct sockaddr_storage addr[NSOCKETS];
    socklen_t len[NSOCKETS];
    char dir[64];
    char path[128];              /* UNIX's socket file */
};

static struct sockets sockets;

/* Binds a socket of type on the address a (len bytes); listens if TCP. */
static int
bound(int type, struct sockaddr_storage *a, socklen_t *len)
{
    int fd = socket(a->ss_family, type | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *) a, *len) < 0
        || (type == SOCK_STREAM && listen(fd, 16) < 0)
        || getsockname(fd, (struct sockaddr *) a, len) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static void
inet(struct sockets *s, int i, int type, uint32_t addr)
{
    struct sockaddr_in *in = (struct sockaddr_in *) &s->addr[i];

    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(addr);
    s->len[i] = sizeof(*in);
    s->fd[i] = bound(type, &s->addr[i], &s->len[i]);
    assert_true(s->fd[i] >= 0);
}

static int
setup(void **state)
{
    struct sockets *s = &sockets;
    struct sockaddr_un *sun = (struct sockaddr_un *) &s->addr[UNIX];
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &s->addr[TCP6];

    (void) state;
    inet(s, TCP4, SOCK_STREAM, INADDR_LOOPBACK);
    inet(s, WILD, SOCK_STREAM, INADDR_ANY);
    inet(s, UNUSED, SOCK_STREAM, INADDR_LOOPBACK);
    inet(s, UDP, SOCK_DGRAM, INADDR_LOOPBACK);
    snprintf(s->dir, sizeof(s->dir), "/tmp/ioloop-listenfds-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    assert_true(strlen(s->dir) + sizeof("/s.sock") <= sizeof(s->path));
    strcpy(s->path, s->dir);
    strcat(s->path, "/s.sock");
    sun->sun_family = AF_UNIX;
    assert_true(strlen(s->path) < sizeof(sun->sun_path));
    memcpy(sun->sun_path, s->path, strlen(s->path));
    s->len[UNIX] = sizeof(*sun);
    s->fd[UNIX] = bound(SOCK_STREAM, &s->addr[UNIX], &s->len[UNIX]);
    assert_true(s->fd[UNIX] >= 0);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    s->len[TCP6] = sizeof(*in6);
    s->fd[TCP6] = bound(SOCK_STREAM, &s->addr[TCP6], &s->len[TCP6]);
    s->n = s->fd[TCP6] >= 0 ? NSOCKETS : TCP6;
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    for (int i = 0; i < sockets.n; i++) {
        close(sockets.fd[i]);
    }
    unlink(sockets.path);
    rmdir(sockets.dir);
    return 0;
}

/*
 * In the child: moves the first n sockets to fds 3.. (whatever fd
 * numbers they had) and sets the variables; LISTEN_FDS says nfds.
 */
static void
activate(const struct sockets *s, int n, int nfds, long pid,
         const char *names)
{
    char buf[32];
    int high[NSOCKETS];

    for (int i = 0; i < n; i++) {
        high[i] = fcntl(s->fd[i], F_DUPFD, 100);
        CHECK(high[i] >= 100);
    }
    for (int i = 0; i < s->n; i++) {
        close(s->fd[i]);
    }
    for (int i = 0; i < n; i++) {
        CHECK(dup2(high[i], IOLOOP_LISTEN_FDS_START + i)
              == IOLOOP_LISTEN_FDS_START + i);
        close(high[i]);
    }
    snprintf(buf, sizeof(buf), "%ld", pid);
    CHECK(setenv("LISTEN_PID", buf, 1) == 0);
    snprintf(buf, sizeof(buf), "%d", nfds);
    CHECK(setenv("LISTEN_FDS", buf, 1) == 0);
    if (names != NULL) {
        CHECK(setenv("LISTEN_FDNAMES", names, 1) == 0);
    }
}

static bool
env_clear(void)
{
    return getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL
           && getenv("LISTEN_FDNAMES") == NULL;
}

/* Whether a and b are fds on the same socket. */
static bool
same_socket(int a, int b)
{
    struct stat sa, sb;

    return a >= 0 && b >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0
           && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int
take(const struct sockets *s, int i)
{
    return ioloop__listenfds_take_tcp((const struct sockaddr *) &s->addr[i],
                                      s->len[i]);
}

/* Socket i's address with another port (0: any) or another host. */
static int
take_other(const struct sockets *s, int i, int port, uint32_t host)
{
    struct sockaddr_in in;

    memcpy(&in, &s->addr[i], sizeof(in));
    if (port >= 0) {
        in.sin_port = htons((uint16_t) port);
    }
    if (host != 0) {
        in.sin_addr.s_addr = htonl(host);
    }
    return ioloop__listenfds_take_tcp((struct sockaddr *) &in, sizeof(in));
}

/* Counts lines containing text in the file open at fd (from the start). */
static int
count_in(int fd, const char *text)
{
    char buf[8192], *p;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    int count = 0;

    CHECK(n >= 0);
    buf[n] = '\0';
    for (p = strstr(buf, text); p != NULL; p = strstr(p + 1, text)) {
        count++;
    }
    return count;
}

/* Run in a child: the sockets are ours; take them in every way. */
static void
child_activated(const struct sockets *s)
{
    const int start = IOLOOP_LISTEN_FDS_START;
    char err[256], addr[64], path[] = "/tmp/ioloop-listenfds-log-XXXXXX";
    ioloop_loop_t *loop;
    int fd, fd2, c, logfd;

    activate(s, s->n, s->n, (long) getpid(),
             "tcp4:wild:unix:unused:udp:tcp6");
    CHECK(ioloop__listenfds_init() == s->n);
    CHECK(env_clear());
    CHECK(ioloop__listenfds_init() == s->n);
    for (int i = 0; i < s->n; i++) {
        CHECK(fcntl(start + i, F_GETFD) & FD_CLOEXEC);
    }

    /* Exact match: a fresh non-blocking, close-on-exec fd each time, on
     * the same socket; closing one leaves the others working. */
    fd = take(s, TCP4);
    CHECK(fd >= start + s->n && same_socket(fd, start + TCP4));
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    fd2 = take(s, TCP4);
    CHECK(fd2 >= 0 && fd2 != fd && same_socket(fd2, start + TCP4));
    close(fd);
    close(fd2);
    fd = take(s, TCP4);
    CHECK(same_socket(fd, start + TCP4));
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(c, (const struct sockaddr *) &s->addr[TCP4], s->len[TCP4])
          == 0);
    fd2 = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    CHECK(fd2 >= 0);
    close(fd2);
    close(c);
    close(fd);

    /* No match: another port, port 0, a specific address for a wildcard
     * socket, a socket that does not listen (UDP), another path. */
    CHECK(take_other(s, TCP4, 1, 0) == -1);
    CHECK(take_other(s, TCP4, 0, 0) == -1);
    CHECK(take_other(s, WILD, -1, INADDR_LOOPBACK) == -1);
    CHECK(take(s, UDP) == -1);
    CHECK(ioloop__listenfds_take_unix("/tmp/elsewhere.sock") == -1);
    fd = take(s, WILD);
    CHECK(same_socket(fd, start + WILD));
    close(fd);
    fd = ioloop__listenfds_take_unix(s->path);
    CHECK(same_socket(fd, start + UNIX));
    close(fd);
    if (s->n > TCP6) {
        fd = take(s, TCP6);
        CHECK(same_socket(fd, start + TCP6));
        close(fd);
    }

    /* Through the plugin API, with the listener source main installs: the
     * passed socket instead of a bind, which would fail (the address is
     * taken, a server answers at the path). */
    ioloop__net_set_listener_source(ioloop__listen_source);
    loop = ioloop_loop_new(&fake_backend_ops, err, sizeof(err));
    CHECK(loop != NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d",
             ntohs(((const struct sockaddr_in *) &s->addr[TCP4])->sin_port));
    fd = ioloop__listen_tcp(loop, addr, 0, 0, err, sizeof(err));
    CHECK(same_socket(fd, start + TCP4));
    close(fd);
    fd = ioloop__listen_unix(loop, s->path, 0600, 0, err, sizeof(err));
    CHECK(same_socket(fd, start + UNIX));
    close(fd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d",
             ntohs(((const struct sockaddr_in *) &s->addr[WILD])->sin_port));
    CHECK(ioloop__listen_tcp(loop, addr, 0, 0, err, sizeof(err))
          == -EADDRINUSE);
    ioloop_loop_free(loop);

    /* UNUSED and UDP were never taken: reported once each. */
    logfd = mkstemp(path);
    CHECK(logfd >= 0);
    unlink(path);
    CHECK(dup2(logfd, STDERR_FILENO) == STDERR_FILENO);
    CHECK(ioloop__listenfds_warn_unused() == 2);
    CHECK(ioloop__listenfds_warn_unused() == 2);
    CHECK(count_in(logfd, "matches no listener") == 2);
    CHECK(count_in(logfd, "fd 6 \"unused\"") == 1);
    CHECK(count_in(logfd, "fd 7 \"udp\"") == 1);
}

/* LISTEN_PID names another process (our parent): not ours, untouched. */
static void
child_other_pid(const struct sockets *s)
{
    activate(s, 2, 2, (long) getppid(), "a:b");
    CHECK(ioloop__listenfds_init() == 0);
    CHECK(env_clear());
    CHECK((fcntl(IOLOOP_LISTEN_FDS_START, F_GETFD) & FD_CLOEXEC) == 0);
    CHECK(take(s, TCP4) == -1);
    CHECK(ioloop__listenfds_warn_unused() == 0);
}

/* No LISTEN_PID, or garbage: ignored; the variables go anyway. */
static void
child_malformed(const struct sockets *s)
{
    activate(s, 1, 1, 0, NULL);
    CHECK(unsetenv("LISTEN_PID") == 0);
    CHECK(take(s, TCP4) == -1);
    CHECK(env_clear());
}

static void
child_garbage(const struct sockets *s)
{
    activate(s, 1, 1, (long) getpid(), NULL);
    CHECK(setenv("LISTEN_FDS", "1x", 1) == 0);
    CHECK(ioloop__listenfds_init() == 0);
    CHECK(env_clear());
    CHECK(take(s, TCP4) == -1);
}

/* LISTEN_FDS counts an fd that is not open (and no names are given):
 * that one is skipped, the others still work. */
static void
child_closed_fd(const struct sockets *s)
{
    activate(s, 1, 2, (long) getpid(), NULL);
    close(IOLOOP_LISTEN_FDS_START + 1);
    CHECK(ioloop__listenfds_init() == 1);
    CHECK(same_socket(take(s, TCP4), IOLOOP_LISTEN_FDS_START));
}

static void
run_child(void (*scenario)(const struct sockets *))
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        scenario(&sockets);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_activated(void **state)
{
    (void) state;
    run_child(child_activated);
}

static void
test_other_pid(void **state)
{
    (void) state;
    run_child(child_other_pid);
}

static void
test_malformed(void **state)
{
    (void) state;
    run_child(child_malformed);
    run_child(child_garbage);
}

static void
test_closed_fd(void **state)
{
    (void) state;
    run_child(child_closed_fd);
}

/* Without the variables there is nothing to take. */
static void
test_not_activated(void **state)
{
    (void) state;
    assert_true(env_clear());
    assert_int_equal(ioloop__listenfds_init(), 0);
    assert_int_equal(take(&sockets, TCP4), -1);
    assert_int_equal(ioloop__listenfds_warn_unused(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activated),
        cmocka_unit_test(test_other_pid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_closed_fd),
        cmocka_unit_test(test_not_activated),
    };

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    ioloop__log_threshold = IOLOOP_LOG_WARN;
    return cmocka_run_group_tests(tests, setup, teardown);
}
