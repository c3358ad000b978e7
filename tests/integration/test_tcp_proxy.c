/*
 * tests/integration/test_tcp_proxy.c: the tcp_proxy plugin in a real
 * ioloop-host, in front of hello_http and echo in another real host, over
 * real sockets on 127.0.0.1 with ephemeral ports. Two hosts, since the
 * proxy's upstream port is only known once the first host listens.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"

#define UPSTREAMS                                                            \
    "[" HOST_HELLO_ENTRY ","                                                 \
    " {\"name\": \"echo\", \"path\": \"" HOST_PLUGIN_DIR "/echo.so\","       \
    "  \"config\": {\"listen\": \"127.0.0.1:0\"}}]"

#define PROXY(name, port)                                                    \
    "{\"name\": \"" name "\", \"path\": \"" HOST_PLUGIN_DIR                  \
    "/tcp_proxy.so\", \"config\": {\"listen\": \"127.0.0.1:0\", "            \
    "\"upstream\": \"127.0.0.1:%d\", \"connect_timeout\": 2}}"

struct fixture {
    struct host_process upstream;
    struct host_process proxy;
    int down_fd;    /* bound, never listening: a port that refuses */
    int http_port;  /* the proxy in front of hello */
    int echo_port;  /* the proxy in front of echo */
    int down_port;  /* the proxy in front of down_fd */
};

/* A socket bound to 127.0.0.1 on an ephemeral port that never listens
 * (a SYN to it is refused); *port gets its port. */
static int
refusing_socket(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0
        || getsockname(fd, (struct sockaddr *) &sin, &len) < 0) {
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char plugins[2048];
    int hello, echo, down;

    if (f == NULL) {
        return -1;
    }
    *state = f;
    f->down_fd = refusing_socket(&down);
    if (f->down_fd < 0 || host_start_ex(&f->upstream, "epoll",
                         "{" HOST_HELLO_SERVERS "}", UPSTREAMS, 0) < 0
        || (hello = host_port(&f->upstream, "host", HOST_TIMEOUT_MS)) <= 0
        || (echo = host_port(&f->upstream, "echo", HOST_TIMEOUT_MS)) <= 0) {
        fprintf(stderr, "setup: the upstream host did not start\n");
        host_dump_log(&f->upstream);
        return -1;
    }
    snprintf(plugins, sizeof(plugins),
             "[" PROXY("p_http", "%d") "," PROXY("p_echo", "%d") ","
             PROXY("p_down", "%d") "]",
             hello, echo, down);
    if (host_start(&f->proxy, "epoll", plugins) < 0
        || (f->http_port = host_port(&f->proxy, "p_http", HOST_TIMEOUT_MS))
               <= 0
        || (f->echo_port = host_port(&f->proxy, "p_echo", HOST_TIMEOUT_MS))
               <= 0
        || (f->down_port = host_port(&f->proxy, "p_down", HOST_TIMEOUT_MS))
               <= 0) {
        fprintf(stderr, "setup: the proxy host did not start\n");
        host_dump_log(&f->proxy);
        return -1;
    }
    return 0;
}

/* Stops hp with SIGTERM; -1 unless it exits 0 in time. */
static int
stop_clean(struct host_process *hp)
{
    double elapsed;

    if (hp->pid <= 0) {
        return 0;
    }
    if (host_stop(hp, SIGTERM, HOST_TIMEOUT_MS, &elapsed) < 0
        || !WIFEXITED(hp->status) || WEXITSTATUS(hp->status) != 0) {
        fprintf(stderr, "teardown: no clean exit after SIGTERM\n");
        host_dump_log(hp);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    int rc = stop_clean(&f->proxy);

    rc |= stop_clean(&f->upstream);
    host_cleanup(&f->proxy);
    host_cleanup(&f->upstream);
    if (f->down_fd >= 0) {
        close(f->down_fd);
    }
    free(f);
    return rc;
}

/* curl through the proxy prints exactly hello's "hello". */
static void
test_curl_hello(void **state)
{
    struct fixture *f = *state;
    char cmd[256], out[64];
    size_t n;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "curl -s --max-time 5 http://127.0.0.1:%d/ 2>/dev/null",
             f->http_port);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, "hello");
}

/* 200 requests on one keep-alive connection through the proxy. */
static void
test_keepalive_200(void **state)
{
    struct fixture *f = *state;
    static struct http_conn hc;
    static struct http_response r;

    assert_int_equal(http_connect(&hc, f->http_port), 0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(http_get(&hc, "/", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
    }
    close(hc.fd);
}

/* An upstream that refuses: the client sees a clean close (EOF, not a
 * reset), the proxy logs why and goes on serving. */
static void
test_upstream_down(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f->down_port);

    assert_true(fd >= 0);
    assert_int_equal(client_expect_eof(fd, CLIENT_TIMEOUT_MS), 0);
    close(fd);
    /* The line was written before the close, but is read from the
     * host's stderr by another thread: wait for it. */
    for (int i = 0; i < 500; i++) {
        if (host_log_count(&f->proxy, "Connection refused") > 0) {
            break;
        }
        usleep(10 * 1000);
    }
    assert_true(host_log_count(&f->proxy, "upstream 127.0.0.1:") >= 1);
    assert_true(host_log_count(&f->proxy, "Connection refused") >= 1);
    test_curl_hello(state);
}

/* Byte i of the backpressure stream (not periodic below 16 MiB). */
static unsigned char
pattern(size_t i)
{
    return (unsigned char) (i ^ (i >> 8) ^ ((i >> 16) * 31));
}

/* The proxy host's resident set in KiB, from /proc. */
static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    fp = fopen(path, "r");
    if (fp == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) {
            break;
        }
    }
    fclose(fp);
    return kib;
}

/*
 * A client that writes through the proxy to echo without reading: the
 * proxy stops reading from it (the client's send stalls) while holding
 * little (its resident set grows by under 4 MiB, where a proxy writing
 * without backpressure would queue 1 MiB per stream and then drop the
 * connection with ENOBUFS). Reading then lets all of it through, in
 * order.
 */
static void
test_slow_reader(void **state)
{
    struct fixture *f = *state;
    const size_t total = (size_t) 64 << 20;
    unsigned char out[64 * 1024], in[64 * 1024];
    struct pollfd pfd = {.events = POLLOUT};
    size_t sent = 0, got = 0, i;
    int bufsize = 64 * 1024, stalled = 0;
    long rss0 = rss_kib(f->proxy.pid), rss1;
    ssize_t n;

    pfd.fd = client_connect(f->echo_port);
    assert_true(pfd.fd >= 0);
    assert_true(rss0 > 0);
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
    rss1 = rss_kib(f->proxy.pid);
    print_message("the proxy stopped reading after %zu KiB; its RSS "
                  "went from %ld to %ld KiB\n",
                  sent >> 10, rss0, rss1);
    assert_true(stalled);
    assert_true(sent < total);
    assert_true(rss1 - rss0 < 4096);

    while (got < total) {
        pfd.events = (short) (POLLIN | (sent < total ? POLLOUT : 0));
        assert_true(poll(&pfd, 1, CLIENT_TIMEOUT_MS) > 0);
        if (sent < total && (pfd.revents & POLLOUT)) {
            for (i = 0; i < sizeof(out); i++) {
                out[i] = pattern(sent + i);
            }
            n = send(pfd.fd, out,
                     total - sent < sizeof(out) ? total - sent : sizeof(out),
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
    close(pfd.fd);
}

/* A host with one tcp_proxy whose upstream is upstream_json must exit 1
 * with one line saying why (want), having served nothing. */
static void
expect_refused(const char *upstream_json, const char *want)
{
    char plugins[512];

    snprintf(plugins, sizeof(plugins),
             "[{\"name\": \"p\", \"path\": \"" HOST_PLUGIN_DIR
             "/tcp_proxy.so\", \"config\": {\"listen\": "
             "\"127.0.0.1:0\", \"upstream\": %s}}]",
             upstream_json);
    if (host_refuses(plugins, want) < 0) {
        fail_msg("upstream %s was not refused with \"%s\"", upstream_json,
                 want);
    }
}

/* A bad upstream is refused at start, naming the manifest place and the
 * key, not at every client. */
static void
test_config_refused(void **state)
{
    (void) state;
    expect_refused("\"127.0.0.1\"",
                   "plugins[0] \"p\": init failed: config.upstream: "
                   "\"127.0.0.1\": expected \"HOST:PORT\"");
    /* The schema's own check, before init. */
    expect_refused("80", "plugins[0].config.upstream: expected a string, "
                         "got 80");
    expect_refused("\"127.0.0.1:0\"",
                   "config.upstream: \"127.0.0.1:0\": expected "
                   "\"HOST:PORT\" or \"[IPV6]:PORT\", PORT 1 to 65535");
    expect_refused("\"127.0.0.1:65536\"", "PORT 1 to 65535");
    expect_refused("\"[::1:80\"", "PORT 1 to 65535");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curl_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_200, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_upstream_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
        cmocka_unit_test(test_config_refused),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
