/*
 * tests/unit/test_tls_client.c: connect_tcp over TLS (host/runtime/
 * connect.c and the client side of tls.c) on the real loop over epoll.so.
 * The servers are real: `openssl s_server` in a child process, and the
 * host's own TLS stream (the server side of tls.c) echoing on the same
 * loop; every socket is on 127.0.0.1 or ::1 with an ephemeral port. The
 * certificates come from tests/tls_certs.sh, run at test time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "connect.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "stream.h"
#include "tls.h"
#include "tls_certs.h"

/* The most a test waits for its loop (the callbacks stop it sooner). */
#define WATCHDOG (20 * IOLOOP_NS_PER_S)

static struct ioloop_backend_lib epoll_lib;
static ioloop_connect_t *owned; /* pending attempts, as an instance's */
static ioloop_tls_t *contexts;  /* TLS contexts, as an instance's */

/* What one test's callbacks saw. */
static struct probe {
    int calls; /* connect callbacks */
    int status;
    ioloop_stream_t *s;
    int closes; /* client stream closes */
    int close_error;
    int watchdog;
    char got[128]; /* what the client read */
    char log[4096];
} P;

/* The host's own TLS echo server on the test's loop. */
static struct echo {
    int fd;
    ioloop_tls_t *tls;
    int accepted;
} E;

/* An `openssl s_server` child. */
struct s_server {
    pid_t pid;
    int port;
    char out[128]; /* its stdout and stderr */
};

static void
log_sink(const char *line, size_t len, void *arg)
{
    size_t used = strlen(P.log);

    (void) arg;
    if (used + len < sizeof(P.log)) {
        memcpy(P.log + used, line, len);
        P.log[used + len] = '\0';
    }
}

static int
on_watchdog(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    P.watchdog = 1;
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
    ioloop_call_later(loop, WATCHDOG, on_watchdog, NULL);
    return loop;
}

static ioloop_time_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ioloop_time_t) ts.tv_sec * IOLOOP_NS_PER_S
           + (ioloop_time_t) ts.tv_nsec;
}

/* A client context trusting ca (NULL: the system's store), with an
 * optional client certificate and ALPN list. */
static ioloop_tls_t *
client_ctx(const char *ca, const char *cert, const char *key,
           const char *alpn)
{
    struct ioloop_tls_options o = {
        .size = sizeof(o),
        .ca = ca,
        .cert = cert,
        .key = key,
        .alpn = alpn,
    };
    char err[256] = "";
    ioloop_tls_t *tls = ioloop__tls_client_new(&contexts, &o, err,
                                               sizeof(err));

    if (tls == NULL) {
        fail_msg("tls_client_new: %s", err);
    }
    return tls;
}

static void
on_client_close(ioloop_stream_t *s, void *arg)
{
    P.closes++;
    P.close_error = ioloop_stream_error(s);
    ioloop_stop(arg);
}

static void
on_connect(ioloop_loop_t *loop, ioloop_stream_t *s, int status, void *arg)
{
    (void) arg;
    P.calls++;
    P.status = status;
    P.s = s;
    ioloop_stop(loop);
}

/* connect_tcp to addr with tls and server_name, run until its callback.
 * Returns the status. */
static int
connect_tls(ioloop_loop_t *loop, const char *addr, ioloop_tls_t *tls,
            const char *server_name, ioloop_time_t timeout)
{
    struct ioloop_stream_options o = {
        .size = sizeof(o),
        .tls = tls,
        .tls_server_name = server_name,
        .close_cb = on_client_close,
        .arg = loop,
    };

    P.calls = 0;
    P.s = NULL;
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr, timeout, &o,
                                        on_connect, NULL));
    ioloop_start(loop);
    assert_false(P.watchdog);
    assert_int_equal(P.calls, 1);
    assert_null(owned);
    return P.status;
}

static void
on_line(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    (void) s;
    if (len < sizeof(P.got)) {
        memcpy(P.got, data, len);
        P.got[len] = '\0';
    }
    ioloop_stop(arg);
}

/* Over P.s: sends "hello\n", returns the line that comes back. */
static const char *
round_trip(ioloop_loop_t *loop)
{
    P.got[0] = '\0';
    assert_int_equal(ioloop_stream_write(P.s, "hello\n", 6, NULL), 0);
    assert_int_equal(ioloop_stream_read_until(P.s, "\n", 1, on_line), 0);
    ioloop_start(loop);
    assert_false(P.watchdog);
    return P.got;
}

/* Closes P.s and lets its close callback run. */
static void
close_client(ioloop_loop_t *loop)
{
    int closes = P.closes;

    ioloop_stream_close(P.s);
    ioloop_start(loop);
    assert_int_equal(P.closes, closes + 1);
    P.s = NULL;
}

/* A listening TCP socket on loopback (AF_INET or AF_INET6), port 0. */
static int
listen_loopback(int family, int *port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
    socklen_t len;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*sin);
    } else {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof(*sin6);
    }
    assert_int_equal(bind(fd, (struct sockaddr *) &ss, len), 0);
    assert_int_equal(listen(fd, 16), 0);
    len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
    *port = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
    return fd;
}

static void
echo_read(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    (void) arg;
    ioloop_stream_write(s, data, len, NULL);
}

static int
echo_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct ioloop_stream_options o = {.size = sizeof(o), .tls = E.tls};
    ioloop_stream_t *s;
    int c;

    (void) events;
    (void) arg;
    c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
        return 0;
    }
    E.accepted++;
    s = ioloop__tls_stream_new(loop, c, &o);
    assert_non_null(s);
    assert_int_equal(ioloop_stream_read_until_close(s, echo_read), 0);
    return 0;
}

/* The host's TLS echo server with cert/key (and ALPN list alpn) on
 * loopback of family. Returns its port. */
static int
echo_start(ioloop_loop_t *loop, int family, const char *cert,
           const char *key, const char *alpn)
{
    struct ioloop_tls_options o = {
        .size = sizeof(o), .cert = cert, .key = key, .alpn = alpn};
    char err[256] = "";
    int port;

    memset(&E, 0, sizeof(E));
    E.tls = ioloop__tls_new(&contexts, &o, err, sizeof(err));
    if (E.tls == NULL) {
        fail_msg("tls_new: %s", err);
    }
    E.fd = listen_loopback(family, &port);
    assert_int_equal(ioloop_add_handler(loop, E.fd, IOLOOP_READ,
                                        echo_accept, NULL),
                     0);
    return port;
}

/* Frees the echo server's listener and streams, the loop and every
 * context. */
static void
finish_loop(ioloop_loop_t *loop)
{
    if (E.fd > 0) {
        ioloop_remove_handler(loop, E.fd);
        close(E.fd);
        E.fd = 0;
    }
    /* The echo's streams (the test's own owner), open or closing. */
    ioloop__streams_release_owner(loop, ioloop__current_owner(loop));
    ioloop_loop_free(loop);
    ioloop__tls_release_owned(&contexts);
    assert_null(owned);
}

/*
 * Starts `openssl s_server -accept 127.0.0.1:0 -cert srv.pem -key srv.key
 * -rev EXTRA...` (-rev: each line comes back reversed) and waits for its
 * "ACCEPT 127.0.0.1:PORT" line.
 */
static void
s_server_start(struct s_server *srv, const char *const *extra)
{
    const char *argv[24] = {"openssl", "s_server", "-accept", "127.0.0.1:0",
                            "-cert", NULL, "-key", NULL, "-rev"};
    static int n;
    pid_t parent;
    int i = 9;
    ioloop_time_t deadline = now_ns() + 10 * IOLOOP_NS_PER_S;

    argv[5] = strdup(tls_path("srv.pem"));
    argv[7] = strdup(tls_path("srv.key"));
    for (; extra != NULL && *extra != NULL; extra++) {
        argv[i++] = *extra;
    }
    snprintf(srv->out, sizeof(srv->out), "%s/s_server.%d.out", tls_dir,
             n++);
    srv->port = 0;
    parent = getpid();
    srv->pid = fork();
    assert_true(srv->pid >= 0);
    if (srv->pid == 0) {
        int out = open(srv->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);

        /* A failed assertion skips s_server_stop: the server then ends
         * with this process, not later. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent
            || out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0
            || dup2(out, 2) < 0) {
            _exit(127);
        }
        execvp("openssl", (char *const *) argv);
        _exit(127);
    }
    free((char *) argv[5]);
    free((char *) argv[7]);
    while (srv->port == 0 && now_ns() < deadline) {
        char line[256];
        FILE *f = fopen(srv->out, "r");

        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            sscanf(line, "ACCEPT 127.0.0.1:%d", &srv->port);
        }
        if (f != NULL) {
            fclose(f);
        }
        if (srv->port == 0) {
            usleep(20000);
        }
    }
    if (srv->port == 0) {
        kill(srv->pid, SIGTERM);
        waitpid(srv->pid, NULL, 0);
        fail_msg("openssl s_server did not start (see %s)", srv->out);
    }
}

static void
s_server_stop(struct s_server *srv)
{
    kill(srv->pid, SIGTERM);
    assert_int_equal(waitpid(srv->pid, NULL, 0), srv->pid);
}

/* Waits (10 s at most) for an s_server started with -naccept to exit by
 * itself: its output is complete only then (it is buffered). Then
 * whether that output holds text. */
static int
s_server_said(const struct s_server *srv, const char *text)
{
    ioloop_time_t deadline = now_ns() + 10 * IOLOOP_NS_PER_S;
    char buf[16384];
    FILE *f;
    size_t n;

    while (waitpid(srv->pid, NULL, WNOHANG) == 0) {
        if (now_ns() > deadline) {
            kill(srv->pid, SIGTERM);
            waitpid(srv->pid, NULL, 0);
            fail_msg("openssl s_server did not exit (see %s)", srv->out);
        }
        usleep(20000);
    }
    f = fopen(srv->out, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* openssl s_server, verified by the test CA through a name ("localhost",
 * resolved without blocking) and through an IP literal. */
static void
test_s_server_verified(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct s_server srv;
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    char addr[64];

    (void) state;
    s_server_start(&srv, NULL);
    snprintf(addr, sizeof(addr), "localhost:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), 0);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), 0);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    assert_null(strstr(P.log, "tls:"));
    s_server_stop(&srv);
    finish_loop(loop);
}

/* A server whose CA the client does not trust: -EPROTO, the reason
 * logged once. */
static void
test_unknown_ca(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct s_server srv;
    ioloop_tls_t *tls = client_ctx(tls_path("ca2.pem"), NULL, NULL, NULL);
    char addr[64], *first;

    (void) state;
    s_server_start(&srv, NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), -EPROTO);
    assert_null(P.s);
    first = strstr(P.log, "certificate verify failed: unable to get local "
                          "issuer certificate");
    assert_non_null(first);
    assert_non_null(strstr(P.log, addr));
    assert_null(strstr(first + 1, "certificate verify failed"));
    s_server_stop(&srv);
    finish_loop(loop);
}

/* A name the certificate does not carry: -EPROTO, "hostname mismatch".
 * The same server is fine under its own name. */
static void
test_wrong_name(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    int port = echo_start(loop, AF_INET, tls_path("srv.pem"),
                          tls_path("srv.key"), NULL);
    char addr[64];

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(connect_tls(loop, addr, tls, "upstream.example", 0),
                     -EPROTO);
    assert_non_null(strstr(P.log, "certificate verify failed: hostname "
                                  "mismatch"));
    /* An IP the certificate does not carry either. */
    P.log[0] = '\0';
    assert_int_equal(connect_tls(loop, addr, tls, "127.0.0.2", 0), -EPROTO);
    assert_non_null(strstr(P.log, "certificate verify failed: IP address "
                                  "mismatch"));
    assert_int_equal(connect_tls(loop, addr, tls, "localhost", 0), 0);
    assert_string_equal(round_trip(loop), "hello\n");
    close_client(loop);
    finish_loop(loop);
}

/* A certificate whose notAfter has passed (tls_certs.sh: exp.pem). */
static void
test_expired(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    int port = echo_start(loop, AF_INET, tls_path("exp.pem"),
                          tls_path("exp.key"), NULL);
    char addr[64];

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), -EPROTO);
    assert_non_null(strstr(P.log, "certificate verify failed: certificate "
                                  "has expired"));
    finish_loop(loop);
}

/*
 * SNI: an s_server that refuses any other name (-servername_fatal) takes
 * the client naming it, and refuses one naming something else; an IP
 * literal sends no SNI, so a server expecting another name still takes
 * it (s_server lets a hello without SNI through).
 */
static void
test_sni(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    const char *other[] = {"-servername", "other.example",
                           "-servername_fatal", "-cert2", NULL, "-key2",
                           NULL, NULL};
    struct s_server srv;
    char addr[64], cert[128], key[128];

    (void) state;
    snprintf(cert, sizeof(cert), "%s", tls_path("srv.pem"));
    snprintf(key, sizeof(key), "%s", tls_path("srv.key"));
    other[4] = cert;
    other[6] = key;
    s_server_start(&srv, other);
    snprintf(addr, sizeof(addr), "localhost:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), -EPROTO);
    assert_non_null(strstr(P.log, "handshake failed: tlsv1 unrecognized "
                                  "name"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), 0);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    s_server_stop(&srv);

    other[1] = "localhost";
    s_server_start(&srv, other);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, tls, "localhost", 0), 0);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    s_server_stop(&srv);
    finish_loop(loop);
}

/* ALPN: the protocol s_server picked is what stream_tls_alpn says; a
 * list the server has nothing of is refused in the handshake. */
static void
test_alpn(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *ok = client_ctx(tls_path("ca.pem"), NULL, NULL,
                                  "x-none,bar");
    ioloop_tls_t *none = client_ctx(tls_path("ca.pem"), NULL, NULL,
                                    "x-none");
    ioloop_tls_t *plain = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    const char *extra[] = {"-alpn", "foo,bar", "-naccept", "3", NULL};
    struct s_server srv;
    char addr[64], buf[16];

    (void) state;
    s_server_start(&srv, extra);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, ok, NULL, 0), 0);
    assert_int_equal(ioloop__tls_stream_alpn(P.s, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "bar");
    assert_int_equal(ioloop__tls_stream_alpn(P.s, buf, 3), -ENOBUFS);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    assert_int_equal(connect_tls(loop, addr, none, NULL, 0), -EPROTO);
    assert_non_null(strstr(P.log, "no application protocol"));
    /* No ALPN offered: none chosen. */
    assert_int_equal(connect_tls(loop, addr, plain, NULL, 0), 0);
    assert_int_equal(ioloop__tls_stream_alpn(P.s, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    close_client(loop);
    /* What s_server saw the client offer and what it chose. */
    assert_true(s_server_said(&srv, "ALPN protocols advertised by the "
                                    "client: x-none, bar"));
    assert_true(s_server_said(&srv, "ALPN protocols selected: bar"));
    finish_loop(loop);
}

/*
 * Mutual TLS: an s_server that demands a client certificate from the
 * test CA (-Verify) echoes for a client with one (srv.pem serves as a
 * client certificate: it has no extended key usage to forbid it), and
 * refuses one without: under TLS 1.3 the refusal comes after the
 * client's handshake, as the stream closing with EPROTO.
 */
static void
test_mutual_tls(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *with = client_ctx(tls_path("ca.pem"), tls_path("srv.pem"),
                                    tls_path("srv.key"), NULL);
    ioloop_tls_t *without = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    const char *extra[] = {"-Verify", "1", "-CAfile", NULL, NULL};
    struct s_server srv;
    char addr[64], ca[128];

    (void) state;
    snprintf(ca, sizeof(ca), "%s", tls_path("ca.pem"));
    extra[3] = ca;
    s_server_start(&srv, extra);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, with, NULL, 0), 0);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    assert_int_equal(connect_tls(loop, addr, without, NULL, 0), 0);
    P.got[0] = '\0';
    ioloop_stream_write(P.s, "hello\n", 6, NULL);
    assert_int_equal(ioloop_stream_read_until(P.s, "\n", 1, on_line), 0);
    ioloop_start(loop);
    assert_false(P.watchdog);
    assert_int_equal(P.closes, 2);
    assert_int_equal(P.close_error, EPROTO);
    assert_string_equal(P.got, "");
    s_server_stop(&srv);
    finish_loop(loop);
}

/*
 * Under TLS 1.2 (s_server -tls1_2) the server judges the client's
 * certificate inside the handshake: a client without one fails in
 * connect_tcp. And a client whose min_version is 1.3 refuses that server.
 */
static void
test_tls12(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *with = client_ctx(tls_path("ca.pem"), tls_path("srv.pem"),
                                    tls_path("srv.key"), NULL);
    ioloop_tls_t *without = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    struct ioloop_tls_options o13 = {
        .size = sizeof(o13), .ca = tls_path("ca.pem"), .min_version = "1.3"};
    const char *extra[] = {"-tls1_2", "-Verify", "1", "-CAfile", NULL, NULL};
    struct s_server srv;
    ioloop_tls_t *only13;
    char addr[64], ca[128], err[256];

    (void) state;
    only13 = ioloop__tls_client_new(&contexts, &o13, err, sizeof(err));
    assert_non_null(only13);
    snprintf(ca, sizeof(ca), "%s", tls_path("ca.pem"));
    extra[4] = ca;
    s_server_start(&srv, extra);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    assert_int_equal(connect_tls(loop, addr, with, NULL, 0), 0);
    assert_string_equal(round_trip(loop), "olleh\n");
    close_client(loop);
    assert_int_equal(connect_tls(loop, addr, without, NULL, 0), -EPROTO);
    assert_non_null(strstr(P.log, "handshake failed: sslv3 alert handshake "
                                  "failure"));
    P.log[0] = '\0';
    assert_int_equal(connect_tls(loop, addr, only13, NULL, 0), -EPROTO);
    assert_non_null(strstr(P.log, "handshake failed: tlsv1 alert protocol "
                                  "version"));
    s_server_stop(&srv);
    finish_loop(loop);
}

/* The host's own TLS echo over IPv6: the IP literal [::1] is verified
 * against the certificate's IP:::1, and 256 KiB go both ways. */
static void
test_own_server_ipv6(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, "x-echo");
    int port = echo_start(loop, AF_INET6, tls_path("srv.pem"),
                          tls_path("srv.key"), "x-echo");
    char addr[64], buf[16];

    (void) state;
    snprintf(addr, sizeof(addr), "[::1]:%d", port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), 0);
    assert_int_equal(ioloop__tls_stream_alpn(P.s, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "x-echo");
    for (int i = 0; i < 4096; i++) {
        assert_int_equal(ioloop_stream_write(
                             P.s, "0123456789abcdef0123456789abcdef"
                                  "0123456789abcdef0123456789abcde\n",
                             64, NULL),
                         0);
    }
    for (int i = 0; i < 4096; i++) {
        assert_int_equal(ioloop_stream_read_until(P.s, "\n", 1, on_line), 0);
        ioloop_start(loop);
        assert_false(P.watchdog);
        assert_int_equal(strlen(P.got), 64);
    }
    close_client(loop);
    assert_int_equal(E.accepted, 1);
    finish_loop(loop);
}

/* A server that accepts TCP (the kernel's backlog) but never answers the
 * handshake: the connect timeout ends it, not sooner, not much later. */
static void
test_handshake_timeout(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    const ioloop_time_t timeout = 300 * IOLOOP_NS_PER_MS;
    ioloop_time_t t0, took;
    int port, fd = listen_loopback(AF_INET, &port);
    char addr[64];

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    t0 = now_ns();
    assert_int_equal(connect_tls(loop, addr, tls, NULL, timeout),
                     -ETIMEDOUT);
    took = now_ns() - t0;
    assert_true(took >= timeout - 10 * IOLOOP_NS_PER_MS);
    assert_true(took < timeout + 2 * IOLOOP_NS_PER_S);
    close(fd);
    finish_loop(loop);
}

static int
on_cancel(ioloop_loop_t *loop, void *arg)
{
    ioloop__connect_cancel(arg);
    ioloop_stop(loop);
    return 0;
}

/* Cancelled in the middle of the handshake: no callback, nothing left
 * (the sanitizer build checks the SSL object is freed). */
static void
test_cancel_in_handshake(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    struct ioloop_stream_options o = {.size = sizeof(o), .tls = tls};
    int port, fd = listen_loopback(AF_INET, &port);
    ioloop_connect_t *c;
    char addr[64];

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    c = ioloop__connect_tcp(loop, &owned, addr, 0, &o, on_connect, NULL);
    assert_non_null(c);
    ioloop_call_later(loop, 200 * IOLOOP_NS_PER_MS, on_cancel, c);
    ioloop_start(loop);
    assert_int_equal(P.calls, 0);
    close(fd);
    finish_loop(loop);
}

/* A context freed (tls_free) while an attempt made with it is pending:
 * the attempt goes on with what it took of it, as a stream would. */
static void
test_free_context_while_pending(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls = client_ctx(tls_path("ca.pem"), NULL, NULL, NULL);
    struct ioloop_stream_options o = {
        .size = sizeof(o), .tls = tls, .close_cb = on_client_close,
        .arg = loop};
    int port = echo_start(loop, AF_INET, tls_path("srv.pem"),
                          tls_path("srv.key"), NULL);
    char addr[64];

    (void) state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_non_null(ioloop__connect_tcp(loop, &owned, addr, 0, &o,
                                        on_connect, NULL));
    ioloop__tls_free(tls);
    ioloop_start(loop);
    assert_int_equal(P.calls, 1);
    assert_int_equal(P.status, 0);
    assert_string_equal(round_trip(loop), "hello\n");
    close_client(loop);
    finish_loop(loop);
}

/* Contexts on the wrong side, and bad options, are refused at once. */
static void
test_refusals(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *client = client_ctx(NULL, NULL, NULL, NULL); /* system */
    struct ioloop_tls_options srv_opts = {
        .size = sizeof(srv_opts), .cert = tls_path("srv.pem"),
        .key = tls_path("srv.key")};
    struct ioloop_tls_options o = {.size = sizeof(o)};
    struct ioloop_stream_options so = {.size = sizeof(so)};
    char err[256];
    ioloop_tls_t *server = ioloop__tls_new(&contexts, &srv_opts, err,
                                           sizeof(err));
    int sv[2];

    (void) state;
    assert_non_null(server);
    so.tls = server;
    errno = 0;
    assert_null(ioloop__connect_tcp(loop, &owned, "127.0.0.1:1", 0, &so,
                                    on_connect, NULL));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    so.tls = client;
    errno = 0;
    assert_null(ioloop__tls_stream_new(loop, sv[0], &so));
    assert_int_equal(errno, EINVAL);
    close(sv[0]);
    close(sv[1]);
    o.cert = tls_path("srv.pem");
    assert_null(ioloop__tls_client_new(&contexts, &o, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    assert_string_equal(err, "tls: cert without key: set both or neither");
    o.cert = NULL;
    o.ca = tls_path("missing.pem");
    assert_null(ioloop__tls_client_new(&contexts, &o, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, "missing.pem: No such file or directory"));
    o.ca = tls_path("srv.key");
    assert_null(ioloop__tls_client_new(&contexts, &o, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "srv.key: no PEM certificate"));
    srv_opts.ca = tls_path("ca.pem");
    assert_null(ioloop__tls_new(&contexts, &srv_opts, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    assert_string_equal(err, "tls: ca is for client contexts only");
    finish_loop(loop);
}

/* tls_reload re-reads the client's ca: once it names the other CA, the
 * same server fails verification. */
static void
test_reload_ca(void **state)
{
    ioloop_loop_t *loop = new_loop();
    ioloop_tls_t *tls;
    int port = echo_start(loop, AF_INET, tls_path("srv.pem"),
                          tls_path("srv.key"), NULL);
    char addr[64], err[256];

    (void) state;
    tls_copy("ca.pem", "trust.pem");
    tls = client_ctx(tls_path("trust.pem"), NULL, NULL, NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), 0);
    close_client(loop);
    tls_copy("ca2.pem", "trust.pem");
    assert_int_equal(ioloop__tls_reload(tls, err, sizeof(err)), 0);
    assert_int_equal(connect_tls(loop, addr, tls, NULL, 0), -EPROTO);
    assert_non_null(strstr(P.log, "certificate verify failed"));
    finish_loop(loop);
}

static int
group_setup(void **state)
{
    char err[512];

    (void) state;
    signal(SIGPIPE, SIG_IGN); /* as the host does */
    ioloop__log_set_sink(log_sink, NULL);
    if (tls_certs_make("ioloop-tls-client") < 0) {
        return -1;
    }
    return ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so",
                                &epoll_lib, err, sizeof(err));
}

static int
group_teardown(void **state)
{
    (void) state;
    ioloop__backend_close(&epoll_lib);
    ioloop__log_set_sink(NULL, NULL);
    return tls_certs_remove();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s_server_verified),
        cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_tls12),
        cmocka_unit_test(test_own_server_ipv6),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_cancel_in_handshake),
        cmocka_unit_test(test_free_context_while_pending),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_reload_ca),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
