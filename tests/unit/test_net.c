/*
 * tests/unit/test_net.c: the socket helpers of the plugin API (host/runtime/net.c)
 * on real sockets: TCP listeners on IPv4 and IPv6, Unix listeners with a
 * mode, stale and live socket files, address errors, accept and
 * accept_batch, and accept surviving EMFILE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "log.h"
#include "loop.h"
#include "net.h"

static char err[512];

static ioloop_loop_t *
new_loop(void)
{
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));

    assert_non_null(loop);
    return loop;
}

static int
bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
    return ss.ss_family == AF_INET6
               ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
               : ntohs(((struct sockaddr_in *) &ss)->sin_port);
}

static int
connect_tcp(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc;

    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                                 .sin6_port = htons((uint16_t) port),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT};

        rc = connect(fd, (struct sockaddr *) &a, sizeof(a));
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t) port)};

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd, (struct sockaddr *) &a, sizeof(a));
    }
    assert_int_equal(rc, 0);
    return fd;
}

/* Waits up to 1 s for fd to be readable. */
static void
wait_readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};

    assert_int_equal(poll(&p, 1, 1000), 1);
}

static void
test_listen_tcp_v4_and_v6(void **state)
{
    ioloop_loop_t *loop = new_loop();
    int fd, c, a, flags;

    (void) state;
    fd = ioloop__listen_tcp(loop, "127.0.0.1:0", 0, 0, err, sizeof(err));
    assert_true(fd >= 0);
    flags = fcntl(fd, F_GETFL);
    assert_true(flags & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(ioloop__accept(loop, fd), -EAGAIN);
    c = connect_tcp(AF_INET, bound_port(fd));
    wait_readable(fd);
    a = ioloop__accept(loop, fd);
    assert_true(a >= 0);
    assert_true(fcntl(a, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);
    close(a);
    close(c);
    close(fd);

    fd = ioloop__listen_tcp(loop, "[::1]:0", 16, IOLOOP_LISTEN_REUSEPORT, err,
                            sizeof(err));
    if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT) {
        print_message("no IPv6 loopback here: %s\n", err);
    } else {
        int second;

        assert_true(fd >= 0);
        c = connect_tcp(AF_INET6, bound_port(fd));
        wait_readable(fd);
        a = ioloop__accept(loop, fd);
        assert_true(a >= 0);
        close(a);
        close(c);
        /* SO_REUSEPORT: a second listener may share the port. */
        {
            char addr[64];

            snprintf(addr, sizeof(addr), "[::1]:%d", bound_port(fd));
            second = ioloop__listen_tcp(loop, addr, 16,
                                        IOLOOP_LISTEN_REUSEPORT, err,
                                        sizeof(err));
        }
        assert_true(second >= 0);
        close(second);
        close(fd);
    }
    ioloop_loop_free(loop);
}

static void
test_listen_tcp_errors(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char addr[64];
    int fd, taken;

    (void) state;
    assert_int_equal(ioloop__listen_tcp(loop, "nonsense", 0, 0, err,
                                        sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "listen \"nonsense\": expected HOST:PORT or "
                             "[IPV6]:PORT");
    assert_int_equal(ioloop__listen_tcp(loop, "::1:80", 0, 0, err,
                                        sizeof(err)),
                     -EINVAL);
    assert_int_equal(ioloop__listen_tcp(loop, "127.0.0.1:http", 0, 0, err,
                                        sizeof(err)),
                     -EINVAL);
    taken = ioloop__listen_tcp(loop, "127.0.0.1:0", 0, 0, err, sizeof(err));
    assert_true(taken >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(taken));
    fd = ioloop__listen_tcp(loop, addr, 0, 0, err, sizeof(err));
    assert_int_equal(fd, -EADDRINUSE);
    {
        char expected[128];

        snprintf(expected, sizeof(expected),
                 "listen %s: Address already in use", addr);
        assert_string_equal(err, expected);
    }
    close(taken);
    ioloop_loop_free(loop);
}

/*
 * Every malformed address is refused before anything is bound, with the
 * message pinned: ports are 0-65535 in decimal digits (99999 used to wrap
 * to 34463), the host is never empty, brackets hold IPv6 only.
 */
static void
test_listen_addr_refused(void **state)
{
    static const struct {
        const char *addr;
        const char *want;
    } cases[] = {
        {"127.0.0.1:99999", "listen \"127.0.0.1:99999\": the port must be "
                            "0 to 65535 in decimal digits"},
        {"127.0.0.1:65536", "listen \"127.0.0.1:65536\": the port must be "
                            "0 to 65535 in decimal digits"},
        {"127.0.0.1:4294967376", "listen \"127.0.0.1:4294967376\": the "
                                 "port must be 0 to 65535 in decimal digits"},
        {"127.0.0.1:-1", "listen \"127.0.0.1:-1\": the port must be 0 to "
                         "65535 in decimal digits"},
        {"127.0.0.1:+80", "listen \"127.0.0.1:+80\": the port must be 0 "
                          "to 65535 in decimal digits"},
        {"127.0.0.1: 80", "listen \"127.0.0.1: 80\": the port must be 0 "
                          "to 65535 in decimal digits"},
        {"127.0.0.1:0x50", "listen \"127.0.0.1:0x50\": the port must be 0 "
                           "to 65535 in decimal digits"},
        {"127.0.0.1:", "listen \"127.0.0.1:\": the port must be 0 to "
                       "65535 in decimal digits"},
        {"[]:8080", "listen \"[]:8080\": empty host (write 0.0.0.0:8080 or "
                    "[::]:8080 for every address)"},
        {":8080", "listen \":8080\": empty host (write 0.0.0.0:8080 or "
                  "[::]:8080 for every address)"},
        {"[127.0.0.1]:80", "listen \"[127.0.0.1]:80\": the host in brackets "
                           "is not an IPv6 address"},
        {"[::1]80", "listen \"[::1]80\": expected HOST:PORT or "
                    "[IPV6]:PORT"},
        {"[::1:80", "listen \"[::1:80\": expected HOST:PORT or "
                    "[IPV6]:PORT"},
        {"::1:80", "listen \"::1:80\": expected HOST:PORT or "
                   "[IPV6]:PORT"},
        {"", "listen \"\": expected HOST:PORT or [IPV6]:PORT"},
        /* Found by fuzz_plugin_config: a control character of the address
         * went raw into the one-line message. */
        {"127.0.0.1:1\n0", "listen \"127.0.0.1:1\\n0\": the port must be "
                           "0 to 65535 in decimal digits"},
        {"a\x7f\tb", "listen \"a\\x7f\\tb\": expected HOST:PORT or "
                     "[IPV6]:PORT"},
    };
    ioloop_loop_t *loop = new_loop();
    struct sockaddr_storage ss;
    socklen_t len;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ioloop__listen_addr_parse(cases[i].addr, &ss, &len,
                                                   err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, cases[i].want);
        /* A start and --check refuse it the same way. */
        err[0] = '\0';
        assert_int_equal(ioloop__listen_tcp(loop, cases[i].addr, 0, 0, err,
                                            sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, cases[i].want);
        ioloop__net_set_check_mode(1);
        err[0] = '\0';
        assert_int_equal(ioloop__listen_tcp(loop, cases[i].addr, 0, 0, err,
                                            sizeof(err)),
                         -EINVAL);
        ioloop__net_set_check_mode(0);
        assert_string_equal(err, cases[i].want);
    }
    ioloop_loop_free(loop);
}

/* The edges that are valid: port 65535 and 0, leading zeros, wildcards. */
static void
test_listen_addr_accepted(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;

    (void) state;
    assert_int_equal(ioloop__listen_addr_parse("127.0.0.1:65535", &ss, &len,
                                               err, sizeof(err)),
                     0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 65535);
    assert_int_equal(ioloop__listen_addr_parse("0.0.0.0:0080", &ss, &len, err,
                                               sizeof(err)),
                     0);
    assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 80);
    assert_int_equal(((struct sockaddr_in *) &ss)->sin_addr.s_addr,
                     htonl(INADDR_ANY));
    assert_int_equal(ioloop__listen_addr_parse("[::]:0", &ss, &len, err,
                                               sizeof(err)),
                     0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
}

/*
 * --check: a valid address gives an unbound, non-listening socket of the
 * right family (nothing is bound, so a taken port is no error), and a
 * Unix path is checked for length only.
 */
static void
test_check_mode_binds_nothing(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[64], path[200];
    int taken, fd, listening;

    (void) state;
    taken = ioloop__listen_tcp(loop, "127.0.0.1:0", 0, 0, err, sizeof(err));
    assert_true(taken >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(taken));
    ioloop__net_set_check_mode(1);
    fd = ioloop__listen_tcp(loop, addr, 0, 0, err, sizeof(err));
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 0);
    len = sizeof(listening);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
                                &len),
                     0);
    assert_int_equal(listening, 0);
    close(fd);

    fd = ioloop__listen_tcp(loop, "[::1]:0", 0, 0, err, sizeof(err));
    if (fd != -EAFNOSUPPORT) {
        assert_true(fd >= 0);
        len = sizeof(ss);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        close(fd);
    }

    snprintf(path, sizeof(path), "/nonexistent-dir-%d/s.sock", getpid());
    fd = ioloop__listen_unix(loop, path, 0600, 0, err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(ioloop__listen_unix(loop, path, 0, 0, err, sizeof(err)),
                     -ENAMETOOLONG);
    ioloop__net_set_check_mode(0);
    close(taken);
    ioloop_loop_free(loop);
}

static void
test_listen_unix(void **state)
{
    ioloop_loop_t *loop = new_loop();
    char dir[] = "/tmp/ioloop-net-XXXXXX", path[128], file[128];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, again, c, a;

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    fd = ioloop__listen_unix(loop, path, 0600, 0, err, sizeof(err));
    assert_true(fd >= 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A live server answers there: refused, and the file is kept. */
    again = ioloop__listen_unix(loop, path, 0, 0, err, sizeof(err));
    assert_int_equal(again, -EADDRINUSE);
    strcpy(sun.sun_path, path);
    c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c, (struct sockaddr *) &sun, sizeof(sun)), 0);
    wait_readable(fd);
    a = ioloop__accept(loop, fd);
    assert_true(a >= 0);
    close(a);
    close(c);
    /* The process died (fd closed, file left): the stale file is
     * replaced. */
    close(fd);
    fd = ioloop__listen_unix(loop, path, 0, 0, err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    /* Not a socket: never removed. */
    snprintf(file, sizeof(file), "%s/plain", dir);
    close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    assert_int_equal(ioloop__listen_unix(loop, file, 0, 0, err, sizeof(err)),
                     -EEXIST);
    assert_non_null(strstr(err, "exists and is not a socket"));
    unlink(file);
    rmdir(dir);
    ioloop_loop_free(loop);
}

static void
test_accept_batch(void **state)
{
    ioloop_loop_t *loop = new_loop();
    int fd, c[5], got[8], n, total = 0;

    (void) state;
    fd = ioloop__listen_tcp(loop, "127.0.0.1:0", 0, 0, err, sizeof(err));
    assert_int_equal(ioloop__accept_batch(loop, fd, got, 8), 0);
    for (int i = 0; i < 5; i++) {
        c[i] = connect_tcp(AF_INET, bound_port(fd));
    }
    wait_readable(fd);
    n = ioloop__accept_batch(loop, fd, got, 3);
    assert_int_equal(n, 3);
    total += n;
    for (int i = 0; i < n; i++) {
        close(got[i]);
    }
    while (total < 5) {
        wait_readable(fd);
        n = ioloop__accept_batch(loop, fd, got, 8);
        assert_true(n >= 1);
        total += n;
        for (int i = 0; i < n; i++) {
            close(got[i]);
        }
    }
    assert_int_equal(ioloop__accept_batch(loop, fd, got, 8), 0);
    for (int i = 0; i < 5; i++) {
        close(c[i]);
    }
    close(fd);
    ioloop_loop_free(loop);
}

/* Out of fds: the pending connection is accepted and closed (the client
 * sees EOF instead of a hang), -EMFILE is returned, the listener is no
 * longer readable, and accept works again once fds are free. */
static int
on_ready(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) loop;
    (void) fd;
    (void) events;
    (void) arg;
    return 0;
}

/* A graceful stop reaches every listener of its plugin, however many: the
 * table once held 256 and silently dropped the 257th and later ones. */
static void
test_listeners_stop_reaches_every_listener(void **state)
{
    enum { N = 300 };
    struct ioloop_owner owner = {.name = "many"};
    ioloop_loop_t *loop = new_loop();
    const struct ioloop_owner *previous;
    int fds[N], level = ioloop__log_threshold;

    (void) state;
    ioloop__log_threshold = IOLOOP_LOG_WARN; /* no "listening on" x 300 */
    previous = ioloop__set_owner(loop, &owner);
    for (int i = 0; i < N; i++) {
        fds[i] = ioloop__listen_tcp(loop, "127.0.0.1:0", 0, 0, err,
                                    sizeof(err));
        assert_true(fds[i] >= 0);
        assert_int_equal(ioloop_add_handler(loop, fds[i], IOLOOP_READ,
                                            on_ready, NULL),
                         0);
    }
    ioloop__set_owner(loop, previous);
    ioloop__log_threshold = level;
    assert_int_equal(ioloop__listeners_stop(loop, &owner), N);
    assert_int_equal(ioloop__handler_count(loop), 0);
    /* Still open: released (closed) and forgotten, every one. */
    assert_int_equal(ioloop__listeners_release(loop, &owner), N);
    assert_int_equal(ioloop__listeners_stop(loop, &owner), 0);
    assert_int_equal(ioloop__listeners_release(loop, &owner), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fcntl(fds[i], F_GETFD), -1);
    }
    ioloop_loop_free(loop);
}

static void
test_accept_survives_emfile(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct rlimit old, low;
    int fd, c, filler[64], nfill = 0, rc;
    char buf[8];

    (void) state;
    fd = ioloop__listen_tcp(loop, "127.0.0.1:0", 0, 0, err, sizeof(err));
    c = connect_tcp(AF_INET, bound_port(fd));
    wait_readable(fd);
    getrlimit(RLIMIT_NOFILE, &old);
    /* Use up every fd below a low limit. */
    low = old;
    low.rlim_cur = (rlim_t) fcntl(fd, F_DUPFD_CLOEXEC, 0);
    close((int) low.rlim_cur);
    low.rlim_cur += 8;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (nfill < 64 && (filler[nfill] = dup(fd)) >= 0) {
        nfill++;
    }
    rc = ioloop__accept(loop, fd);
    for (int i = 0; i < nfill; i++) {
        close(filler[i]);
    }
    setrlimit(RLIMIT_NOFILE, &old);
    assert_int_equal(rc, -EMFILE);
    /* The client was closed, not left waiting. */
    wait_readable(c);
    assert_true(read(c, buf, sizeof(buf)) <= 0);
    assert_int_equal(ioloop__accept(loop, fd), -EAGAIN);
    close(c);
    /* The reserve is back: the next connection is accepted normally. */
    c = connect_tcp(AF_INET, bound_port(fd));
    wait_readable(fd);
    rc = ioloop__accept(loop, fd);
    assert_true(rc >= 0);
    close(rc);
    close(c);
    close(fd);
    ioloop_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_tcp_v4_and_v6),
        cmocka_unit_test(test_listen_tcp_errors),
        cmocka_unit_test(test_listen_addr_refused),
        cmocka_unit_test(test_listen_addr_accepted),
        cmocka_unit_test(test_check_mode_binds_nothing),
        cmocka_unit_test(test_listen_unix),
        cmocka_unit_test(test_accept_batch),
        cmocka_unit_test(test_listeners_stop_reaches_every_listener),
        cmocka_unit_test(test_accept_survives_emfile),
    };

    ioloop__log_threshold = IOLOOP_LOG_ERROR;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
