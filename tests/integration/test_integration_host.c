/*
 * tests/integration/test_integration_host.c: the host process as a whole,
 * with the bundled plugins: stopping on SIGTERM/SIGINT with connections
 * open, two instances of one plugin, and refusing a bad plugin config.
 * argv[1] names the backend.
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"

#define HELLO_SO "\"" HOST_PLUGIN_DIR "/hello_http.so\""
/* hello behind the server "web" (its port: port_of(f, "host")). */
#define HELLO_SERVERS "{" HOST_HELLO_SERVERS "}"
#define HELLO_PLUGINS "[" HOST_HELLO_ENTRY "]"
#define ECHO_SO "\"" HOST_PLUGIN_DIR "/echo.so\""

/* How fast the host must exit on SIGTERM. */
#define STOP_LIMIT_MS 1000.0

struct fixture {
    struct host_process host;
    struct http_conn *hc[4];
    int fds[4];
};

/* The backend under test (argv[1]). */
static const char *backend = "epoll";

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int i;

    if (f == NULL) {
        return -1;
    }
    for (i = 0; i < 4; i++) {
        f->fds[i] = -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    int i;

    for (i = 0; i < 4; i++) {
        if (f->hc[i] != NULL) {
            close(f->hc[i]->fd);
            free(f->hc[i]);
        }
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
        }
    }
    host_cleanup(&f->host);
    free(f);
    return 0;
}

/* Starts the host with plugins, dumping its log if it fails. */
static void
start(struct fixture *f, const char *plugins)
{
    int rc = host_start(&f->host, backend, plugins);

    if (rc < 0) {
        host_dump_log(&f->host);
    }
    assert_int_equal(rc, 0);
}

/* Starts the host with hello on the server "web", as start does. */
static void
start_hello(struct fixture *f)
{
    int rc = host_start_ex(&f->host, backend, HELLO_SERVERS, HELLO_PLUGINS,
                           0);

    if (rc < 0) {
        host_dump_log(&f->host);
    }
    assert_int_equal(rc, 0);
}

/* The port instance name listens on ("host": the server's). */
static int
port_of(struct fixture *f, const char *name)
{
    int port = host_port(&f->host, name, HOST_TIMEOUT_MS);

    if (port <= 0) {
        host_dump_log(&f->host);
    }
    assert_true(port > 0);
    return port;
}

/* A keep-alive connection to port in slot i, after one request. */
static void
http_open(struct fixture *f, int i, int port, const char *body)
{
    struct http_response *r = malloc(sizeof(*r));

    assert_non_null(r);
    f->hc[i] = malloc(sizeof(*f->hc[i]));
    assert_non_null(f->hc[i]);
    assert_int_equal(http_connect(f->hc[i], port), 0);
    assert_int_equal(http_get(f->hc[i], "/", r), 0);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, body);
    free(r);
}

/* Signals the host and requires exit status 0 within STOP_LIMIT_MS. */
static void
stop_cleanly(struct fixture *f, int sig)
{
    double elapsed = 0;
    int rc = host_stop(&f->host, sig, HOST_TIMEOUT_MS, &elapsed);

    if (rc < 0 || !WIFEXITED(f->host.status)
        || WEXITSTATUS(f->host.status) != 0 || elapsed > STOP_LIMIT_MS) {
        fprintf(stderr, "stop: signal %d: rc %d, status 0x%x, %.1f ms\n",
                sig, rc, f->host.status, elapsed);
        host_dump_log(&f->host);
    }
    print_message("signal %d: exit status %d after %.1f ms\n", sig,
                  WIFEXITED(f->host.status) ? WEXITSTATUS(f->host.status)
                                            : -1,
                  elapsed);
    assert_int_equal(rc, 0);
    assert_true(WIFEXITED(f->host.status));
    assert_int_equal(WEXITSTATUS(f->host.status), 0);
    assert_true(elapsed <= STOP_LIMIT_MS);
}

/*
 * SIGTERM drains: an idle keep-alive connection is closed at once, a
 * half-sent request still gets its answer (with Connection: close) when
 * the client finishes it, then the host exits 0.
 */
static void
test_sigterm_drains(void **state)
{
    struct fixture *f = *state;
    static struct http_response r;
    char buf[16];
    int hello;

    start_hello(f);
    hello = port_of(f, "host");
    http_open(f, 0, hello, "hello");
    f->fds[0] = client_connect(hello);
    assert_true(f->fds[0] >= 0);
    assert_int_equal(client_write_all(f->fds[0], "GET / HTTP/1.1\r\nHo", 18,
                                      CLIENT_TIMEOUT_MS),
                     0);
    usleep(50 * 1000);
    assert_int_equal(kill(f->host.pid, SIGTERM), 0);
    /* The idle one is closed by the drain. */
    assert_int_equal(client_expect_eof(f->hc[0]->fd, CLIENT_TIMEOUT_MS), 0);
    /* The busy one is answered, told to close, and closed. */
    assert_true(host_wait(&f->host, 200) < 0); /* still draining */
    assert_int_equal(client_write_all(f->fds[0], "st: x\r\n\r\n", 9,
                                      CLIENT_TIMEOUT_MS),
                     0);
    {
        struct http_conn *hc = calloc(1, sizeof(*hc));

        assert_non_null(hc);
        hc->fd = f->fds[0];
        f->fds[0] = -1;
        f->hc[1] = hc;
        assert_int_equal(http_read_response(hc, 0, &r), 0);
    }
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(read(f->hc[1]->fd, buf, sizeof(buf)) <= 0);
    assert_int_equal(host_wait(&f->host, HOST_TIMEOUT_MS), 0);
    assert_true(WIFEXITED(f->host.status));
    assert_int_equal(WEXITSTATUS(f->host.status), 0);
}

/*
 * What never finishes is cut at shutdown_timeout: a half-sent request
 * and an echo client that does not read its output; exit 0 after about
 * the timeout (0.3 s here), every fini run.
 */
static void
test_sigterm_timeout(void **state)
{
    struct fixture *f = *state;
    static char junk[512 * 1024];
    double elapsed = 0;
    int hello, echo, rc;
    size_t sent = 0;
    ssize_t n;

    rc = host_start_ex(&f->host, backend,
                       "{\"shutdown_timeout\": 0.3, " HOST_HELLO_SERVERS "}",
                       "[" HOST_HELLO_ENTRY ", {\"name\": \"echo\", "
                       "\"path\": " ECHO_SO ", \"config\": {\"listen\": "
                       "\"127.0.0.1:0\"}}]",
                       0);
    assert_int_equal(rc, 0);
    hello = port_of(f, "host");
    echo = port_of(f, "echo");
    f->fds[0] = client_connect(hello);
    assert_int_equal(client_write_all(f->fds[0], "GET / HTTP/1.1\r\nHo", 18,
                                      CLIENT_TIMEOUT_MS),
                     0);
    f->fds[1] = client_connect(echo);
    while (sent < sizeof(junk)
           && (n = send(f->fds[1], junk, sizeof(junk) - sent,
                        MSG_NOSIGNAL)) > 0) {
        sent += (size_t) n;
    }
    usleep(100 * 1000);
    assert_int_equal(host_stop(&f->host, SIGTERM, HOST_TIMEOUT_MS, &elapsed),
                     0);
    print_message("drain cut after %.1f ms\n", elapsed);
    assert_true(WIFEXITED(f->host.status));
    assert_int_equal(WEXITSTATUS(f->host.status), 0);
    assert_true(elapsed >= 250 && elapsed <= STOP_LIMIT_MS);
    assert_true(host_log_count(&f->host, "shutdown_timeout passed") > 0);
}

/* A second SIGINT stops at once, without waiting for the drain. */
static void
test_second_sigint(void **state)
{
    struct fixture *f = *state;
    double elapsed = 0;
    int hello;

    start_hello(f);
    hello = port_of(f, "host");
    f->fds[0] = client_connect(hello);
    assert_int_equal(client_write_all(f->fds[0], "GET / HTTP/1.1\r\nHo", 18,
                                      CLIENT_TIMEOUT_MS),
                     0);
    usleep(50 * 1000);
    assert_int_equal(kill(f->host.pid, SIGINT), 0);
    usleep(100 * 1000);
    assert_true(host_wait(&f->host, 0) < 0); /* draining: 10 s budget */
    assert_int_equal(host_stop(&f->host, SIGINT, HOST_TIMEOUT_MS, &elapsed),
                     0);
    assert_true(WIFEXITED(f->host.status));
    assert_int_equal(WEXITSTATUS(f->host.status), 0);
    assert_true(elapsed <= STOP_LIMIT_MS);
    assert_true(host_log_count(&f->host, "second SIGINT") > 0);
}

/* SIGINT stops the host as SIGTERM does. */
static void
test_sigint(void **state)
{
    struct fixture *f = *state;

    start(f, "[{\"name\": \"echo\", \"path\": " ECHO_SO ", \"config\": "
             "{\"listen\": \"127.0.0.1:0\"}}]");
    port_of(f, "echo");
    stop_cleanly(f, SIGINT);
}

/* Sends text on a new connection to port (slot i of fds) and requires
 * it echoed back. */
static void
echo_open(struct fixture *f, int i, int port, const char *text)
{
    char buf[64];
    size_t n = 0, len = strlen(text);
    ssize_t r;

    f->fds[i] = client_connect(port);
    assert_true(f->fds[i] >= 0);
    assert_int_equal(client_write_all(f->fds[i], text, len,
                                      CLIENT_TIMEOUT_MS),
                     0);
    while (n < len && (r = client_read_some(f->fds[i], buf + n,
                                            sizeof(buf) - n,
                                            CLIENT_TIMEOUT_MS))
                          > 0) {
        n += (size_t) r;
    }
    assert_int_equal(n, len);
    assert_memory_equal(buf, text, len);
}

/* The same .so twice, with different configs: separate state (each
 * instance its own listener); then the HTTP plugin twice, on two routes
 * of one server. */
static void
test_two_instances(void **state)
{
    struct fixture *f = *state;
    int rc;

    start(f, "[{\"name\": \"one\", \"path\": " ECHO_SO ", \"config\": "
             "{\"listen\": \"127.0.0.1:0\"}},"
             " {\"name\": \"two\", \"path\": " ECHO_SO ", \"config\": "
             "{\"listen\": \"127.0.0.1:0\", \"max_connections\": 1}}]");
    echo_open(f, 0, port_of(f, "one"), "first");
    echo_open(f, 1, port_of(f, "two"), "second");
    stop_cleanly(f, SIGTERM);
    host_cleanup(&f->host);
    close(f->fds[0]);
    close(f->fds[1]);
    f->fds[0] = f->fds[1] = -1;

    rc = host_start_ex(&f->host, backend,
                       "{\"servers\": [{\"name\": \"web\", "
                       "\"listen\": \"127.0.0.1:0\", \"routes\": ["
                       "{\"path\": \"/\", \"plugin\": \"one\"}, "
                       "{\"path\": \"/two\", \"plugin\": \"two\"}]}]}",
                       "[{\"name\": \"one\", \"path\": " HELLO_SO "},"
                       " {\"name\": \"two\", \"path\": " HELLO_SO "}]",
                       0);
    assert_int_equal(rc, 0);
    http_open(f, 0, port_of(f, "host"), "hello");
    stop_cleanly(f, SIGTERM);
}

/* Waits for a host that must refuse to start: non-zero exit, and a log
 * that says why. */
static void
expect_refused(struct fixture *f, const char *why)
{
    assert_int_equal(host_wait(&f->host, HOST_TIMEOUT_MS), 0);
    if (!WIFEXITED(f->host.status) || WEXITSTATUS(f->host.status) == 0
        || host_log_count(&f->host, why) == 0) {
        fprintf(stderr, "expected a refusal mentioning '%s'\n", why);
        host_dump_log(&f->host);
    }
    assert_true(WIFEXITED(f->host.status));
    assert_int_not_equal(WEXITSTATUS(f->host.status), 0);
    assert_true(host_log_count(&f->host, why) > 0);
}

/* Bad configs are refused with the key named. */
static void
test_bad_config_refused(void **state)
{
    struct fixture *f = *state;

    start(f, "[{\"name\": \"hello\", \"path\": " HELLO_SO ", \"config\": "
             "{\"listen\": \"127.0.0.1:0\"}}]");
    expect_refused(f, "config.listen: unknown key (hello_http accepts: "
                      "nothing)");
    host_cleanup(&f->host);

    start(f, HELLO_PLUGINS);
    expect_refused(f, "http_handle: the host runs no HTTP server");
    host_cleanup(&f->host);

    start(f, "[{\"name\": \"echo\", \"path\": " ECHO_SO ", \"config\": "
             "{\"listen\": 80}}]");
    expect_refused(f, "config.listen: expected a listen address "
                      "(\"HOST:PORT\" or \"[IPV6]:PORT\"), got 80");
    host_cleanup(&f->host);

    start(f, "[{\"name\": \"echo\", \"path\": " ECHO_SO ", \"config\": "
             "{\"listen\": \"127.0.0.1:0\", \"lisen\": 1}}]");
    expect_refused(f, "config.lisen: unknown key");
}

/* A port in use is refused with the reason. */
static void
test_listen_failure_refused(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    char plugins[512];

    f->fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->fds[0] >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fds[0], (struct sockaddr *) &sin, sizeof(sin)),
                     0);
    assert_int_equal(listen(f->fds[0], 1), 0);
    assert_int_equal(getsockname(f->fds[0], (struct sockaddr *) &sin, &len),
                     0);
    snprintf(plugins, sizeof(plugins),
             "[{\"name\": \"echo\", \"path\": " ECHO_SO ", \"config\": "
             "{\"listen\": \"127.0.0.1:%d\"}}]",
             ntohs(sin.sin_port));
    start(f, plugins);
    expect_refused(f, "Address already in use");
}

/*
 * Out of descriptors (RLIMIT_NOFILE 24 in the host): the host's accept
 * sheds connections it has no fd for and warns at most once a second;
 * the plugin neither spins nor logs per connection; the connections it
 * did accept are served; once fds are free, new connections are served.
 */
static void
test_emfile(void **state)
{
    struct fixture *f = *state;
    struct http_conn *hc = calloc(40, sizeof(*hc));
    struct http_response *r = malloc(sizeof(*r));
    struct timespec idle = { 0, 500 * 1000000L };
    int port, i, served = 0, warnings;
    long cpu;

    assert_non_null(hc);
    assert_non_null(r);
    f->hc[0] = hc; /* freed (and hc[0] closed) by teardown */
    hc[0].fd = -1;
    assert_int_equal(host_start_ex(&f->host, backend, HELLO_SERVERS,
                                   HELLO_PLUGINS, 24),
                     0);
    port = port_of(f, "host");
    for (i = 0; i < 40; i++) {
        assert_int_equal(http_connect(&hc[i], port), 0);
    }
    /* Let the host hit the limit, then measure it idling. */
    nanosleep(&idle, NULL);
    cpu = host_cpu_ms(&f->host);
    nanosleep(&idle, NULL);
    cpu = host_cpu_ms(&f->host) - cpu;
    warnings = host_log_count(&f->host, "Too many open files");
    for (i = 0; i < 40; i++) {
        if (client_write_all(hc[i].fd, "GET / HTTP/1.1\r\n\r\n", 18,
                             CLIENT_TIMEOUT_MS) == 0
            && http_read_response(&hc[i], 0, r) == 0) {
            assert_int_equal(r->status, 200);
            served++;
        }
    }
    print_message("EMFILE: %d of 40 served, %d warnings, %ld ms CPU in "
                  "500 ms\n",
                  served, warnings, cpu);
    if (served == 0 || served == 40 || warnings < 1 || warnings > 3
        || cpu < 0 || cpu > 200) {
        host_dump_log(&f->host);
    }
    assert_true(served > 0 && served < 40);
    assert_true(warnings >= 1 && warnings <= 3);
    assert_true(cpu >= 0 && cpu <= 200);

    for (i = 1; i < 40; i++) {
        close(hc[i].fd);
    }
    close(hc[0].fd);
    /* The host frees the fds as it sees the closes: retry until then. */
    for (i = 0; i < 50; i++) {
        assert_int_equal(http_connect(&hc[0], port), 0);
        if (http_get(&hc[0], "/", r) == 0) {
            break;
        }
        close(hc[0].fd);
        hc[0].fd = -1;
        usleep(100 * 1000);
    }
    assert_true(i < 50);
    assert_int_equal(r->status, 200);
    free(r);
    stop_cleanly(f, SIGTERM);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_sigterm_drains),
        T(test_sigterm_timeout),
        T(test_second_sigint),
        T(test_sigint),
        T(test_two_instances),
        T(test_bad_config_refused),
        T(test_listen_failure_refused),
        T(test_emfile),
#undef T
    };

    if (argc > 1) {
        backend = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name(backend, tests, NULL, NULL);
}
