/*
 * tests/unit/test_sdnotify.c: sd_notify without libsystemd
 * (host/app/sdnotify.c), against a real AF_UNIX datagram socket standing in
 * for systemd's: one bound to a path in a temp folder, one in the
 * abstract namespace ('@'). Each message must arrive exactly, with our
 * pid in its credentials (what NotifyAccess=main checks); with
 * NOTIFY_SOCKET unset nothing is sent.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

/* The stand-in for systemd's notify socket. */
struct fixture {
    int fd;
    char dir[64];
    char path[128]; /* the socket file, "" for an abstract socket */
    char env[128];  /* what NOTIFY_SOCKET says */
};

/* A datagram socket that receives its senders' credentials. */
static int
notify_socket(const struct sockaddr_un *sun, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one,
                                sizeof(one)),
                     0);
    assert_int_equal(bind(fd, (const struct sockaddr *) sun, len), 0);
    return fd;
}

static int
setup_path(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ioloop-sdnotify-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/notify", f->dir);
    assert_true(strlen(f->path) < sizeof(sun.sun_path));
    memcpy(sun.sun_path, f->path, strlen(f->path));
    f->fd = notify_socket(&sun, sizeof(sun));
    snprintf(f->env, sizeof(f->env), "%s", f->path);
    assert_int_equal(setenv("NOTIFY_SOCKET", f->env, 1), 0);
    *state = f;
    return 0;
}

static int
setup_abstract(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n;

    assert_non_null(f);
    n = snprintf(f->env, sizeof(f->env), "@ioloop-sdnotify-%ld-%ld",
                 (long) getpid(), (long) time(NULL));
    memcpy(sun.sun_path, f->env, (size_t) n);
    sun.sun_path[0] = '\0';
    f->fd = notify_socket(&sun, (socklen_t) (offsetof(struct sockaddr_un,
                                                      sun_path)
                                             + (size_t) n));
    assert_int_equal(setenv("NOTIFY_SOCKET", f->env, 1), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    unsetenv("NOTIFY_SOCKET");
    close(f->fd);
    if (f->path[0] != '\0') {
        unlink(f->path);
    }
    if (f->dir[0] != '\0') {
        rmdir(f->dir);
    }
    free(f);
    return 0;
}

/*
 * Receives one datagram (waiting up to 1 s) into buf, NUL-terminated;
 * returns its length and the sender's pid, or -1 when none came.
 */
static ssize_t
receive(int fd, char *buf, size_t len, pid_t *pid)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    struct cmsghdr *c;
    ssize_t n;

    if (poll(&pfd, 1, 1000) != 1) {
        return -1;
    }
    n = recvmsg(fd, &msg, MSG_DONTWAIT);
    assert_true(n >= 0);
    assert_false(msg.msg_flags & MSG_TRUNC);
    buf[n] = '\0';
    *pid = 0;
    for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;

            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            *pid = cred.pid;
        }
    }
    return n;
}

/* Asserts that the next datagram is exactly expected, sent by us. */
static void
expect(struct fixture *f, const char *expected)
{
    char buf[8192];
    pid_t pid;

    assert_int_equal(receive(f->fd, buf, sizeof(buf), &pid),
                     strlen(expected));
    assert_string_equal(buf, expected);
    assert_int_equal(pid, getpid());
}

static void
expect_nothing(struct fixture *f)
{
    char buf[64];

    assert_int_equal(recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
}

/* Every state the host sends, exactly as given. */
static void
test_states(void **state)
{
    struct fixture *f = *state;
    char mainpid[32];

    assert_int_equal(ioloop__sd_notify("READY=1"), 1);
    expect(f, "READY=1");
    assert_int_equal(ioloop__sd_notify("STOPPING=1"), 1);
    expect(f, "STOPPING=1");
    assert_int_equal(ioloop__sd_notifyf("STATUS=serving on %d workers", 4),
                     1);
    expect(f, "STATUS=serving on 4 workers");
    snprintf(mainpid, sizeof(mainpid), "MAINPID=%ld", (long) getpid());
    assert_int_equal(ioloop__sd_notifyf("MAINPID=%ld", (long) getpid()), 1);
    expect(f, mainpid);
    assert_int_equal(ioloop__sd_notify("READY=1\nSTATUS=reloaded"), 1);
    expect(f, "READY=1\nSTATUS=reloaded");
    expect_nothing(f);
}

/* RELOADING=1 carries the CLOCK_MONOTONIC time it was sent at. */
static void
test_reloading(void **state)
{
    struct fixture *f = *state;
    struct timespec a, b;
    unsigned long long usec, lo, hi;
    char buf[256], expected[64];
    pid_t pid;

    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(ioloop__sd_notify_reloading(), 1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(receive(f->fd, buf, sizeof(buf), &pid) > 0);
    assert_int_equal(pid, getpid());
    assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec),
                     1);
    snprintf(expected, sizeof(expected), "RELOADING=1\nMONOTONIC_USEC=%llu",
             usec);
    assert_string_equal(buf, expected);
    lo = (unsigned long long) a.tv_sec * 1000000ULL
         + (unsigned long long) a.tv_nsec / 1000;
    hi = (unsigned long long) b.tv_sec * 1000000ULL
         + (unsigned long long) b.tv_nsec / 1000;
    assert_true(usec >= lo && usec <= hi);
}

/* Not under systemd: a no-op that returns 0 and sends nothing. */
static void
test_unset(void **state)
{
    struct fixture *f = *state;

    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(ioloop__sd_notify("READY=1"), 0);
    assert_int_equal(ioloop__sd_notify_reloading(), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(ioloop__sd_notifyf("STATUS=%s", "x"), 0);
    expect_nothing(f);
}

static void
test_errors(void **state)
{
    struct fixture *f = *state;
    char name[160], big[5000];

    assert_int_equal(setenv("NOTIFY_SOCKET", "run/notify", 1), 0);
    assert_int_equal(ioloop__sd_notify("READY=1"), -EAFNOSUPPORT);
    assert_int_equal(setenv("NOTIFY_SOCKET", "vsock:2:1234", 1), 0);
    assert_int_equal(ioloop__sd_notify("READY=1"), -EAFNOSUPPORT);

    /* A path needs room for its NUL; an abstract name fills sun_path. */
    memset(name, 'a', sizeof(name));
    name[0] = '/';
    name[sizeof(((struct sockaddr_un *) 0)->sun_path)] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(ioloop__sd_notify("READY=1"), -ENAMETOOLONG);
    name[0] = '@';
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(ioloop__sd_notify("READY=1"), -ECONNREFUSED);
    name[sizeof(((struct sockaddr_un *) 0)->sun_path)] = 'a';
    name[sizeof(((struct sockaddr_un *) 0)->sun_path) + 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(ioloop__sd_notify("READY=1"), -ENAMETOOLONG);

    assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1), 0);
    assert_int_equal(ioloop__sd_notify("READY=1"), -ENOENT);

    assert_int_equal(setenv("NOTIFY_SOCKET", f->env, 1), 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ioloop__sd_notifyf("STATUS=%s", big), -EMSGSIZE);
    expect_nothing(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup_path, teardown),
        cmocka_unit_test_setup_teardown(test_reloading, setup_path,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unset, setup_path, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup_path, teardown),
        cmocka_unit_test_setup_teardown(test_states, setup_abstract,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reloading, setup_abstract,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unset, setup_abstract,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
