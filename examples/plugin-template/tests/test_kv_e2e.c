/*
 * test_kv_e2e.c: kv.so in the real, installed ioloop-host, over real
 * sockets. The host gets a manifest with two instances of the plugin on
 * ephemeral ports, which it reports on stderr ("[kv] listening on
 * 127.0.0.1:PORT"). KV_HOST and KV_PLUGIN are set by CMakeLists.txt.
 *
 * Every wait is bounded by TIMEOUT_MS. A test closes its connections
 * before the host is stopped (SIGTERM), and the host must exit 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
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

#define TIMEOUT_MS 5000

#define INSTANCES                                                           \
    "{\"name\": \"kv\", \"path\": \"" KV_PLUGIN "\","                       \
    " \"config\": {\"listen\": \"127.0.0.1:0\", \"max_keys\": 2}},"         \
    "{\"name\": \"kv_idle\", \"path\": \"" KV_PLUGIN "\","                  \
    " \"config\": {\"listen\": \"127.0.0.1:0\", \"idle_timeout\": 0.2}}"

extern char **environ;

struct host {
    pid_t pid;
    int err_fd;        /* the read end of the host's stderr */
    char log[16384];   /* what it wrote there */
    size_t len;
    char dir[32];
    char manifest[64];
};

static struct host host;
static int port_kv, port_idle;

static long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads the host's stderr until text shows up (1), EOF or the time runs
 * out (0). */
static int
host_wait_for(struct host *h, const char *text, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    struct pollfd p = {.fd = h->err_fd, .events = POLLIN};

    while (strstr(h->log, text) == NULL) {
        long left = deadline - now_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int) left) <= 0) {
            return 0;
        }
        n = read(h->err_fd, h->log + h->len, sizeof(h->log) - 1 - h->len);
        if (n <= 0) {
            return 0;
        }
        h->len += (size_t) n;
        h->log[h->len] = '\0';
    }
    return 1;
}

/* Writes a manifest with these plugin entries and starts the host. */
static int
host_start(struct host *h, const char *plugins)
{
    char *argv[] = {KV_HOST, "--config", h->manifest, NULL};
    posix_spawn_file_actions_t fa;
    int pipefd[2], rc;
    FILE *f;

    memset(h, 0, sizeof(*h));
    h->err_fd = -1;
    strcpy(h->dir, "/tmp/kv_e2e_XXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        return -1;
    }
    snprintf(h->manifest, sizeof(h->manifest), "%s/host.json", h->dir);
    f = fopen(h->manifest, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "{\"plugins\": [%s]}\n", plugins);
    fclose(f);
    if (pipe(pipefd) < 0) {
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    rc = posix_spawn(&h->pid, KV_HOST, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    h->err_fd = pipefd[0];
    return rc == 0 ? 0 : -1;
}

/* The port instance name listens on, or -1. */
static int
host_port(struct host *h, const char *name)
{
    char text[64];
    const char *at;

    snprintf(text, sizeof(text), "[%s] listening on 127.0.0.1:", name);
    if (!host_wait_for(h, text, TIMEOUT_MS)) {
        return -1;
    }
    at = strstr(h->log, text) + strlen(text);
    return atoi(at);
}

/* Waits for the host to exit. Returns its wait status, or -1. */
static int
host_exit(struct host *h, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    int status;

    while (now_ms() < deadline) {
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            h->pid = 0;
            host_wait_for(h, "\x01", 100); /* collect the last lines */
            return status;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    return -1;
}

static void
host_cleanup(struct host *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
        h->pid = 0;
    }
    if (h->err_fd >= 0) {
        close(h->err_fd);
        h->err_fd = -1;
    }
    if (h->dir[0] != '\0') {
        unlink(h->manifest);
        rmdir(h->dir);
        h->dir[0] = '\0';
    }
}

static int
connect_to(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    return fd;
}

/* Reads one reply line (without its "\n"); "" on EOF or timeout. */
static const char *
reply(int fd)
{
    static char line[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t n = 0;

    while (n < sizeof(line) - 1 && poll(&p, 1, TIMEOUT_MS) == 1
           && read(fd, line + n, 1) == 1) {
        if (line[n] == '\n') {
            break;
        }
        n++;
    }
    line[n] = '\0';
    return line;
}

/* Sends one command line and returns the reply line. */
static const char *
ask(int fd, const char *command)
{
    char line[256];
    int len = snprintf(line, sizeof(line), "%s\n", command);

    assert_int_equal(write(fd, line, (size_t) len), len);
    return reply(fd);
}

/* Closes our side and waits until the plugin closed its side too. */
static void
hang_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    shutdown(fd, SHUT_WR);
    assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
    assert_int_equal(read(fd, &c, 1), 0);
    close(fd);
}

static int
group_setup(void **state)
{
    (void) state;
    if (host_start(&host, INSTANCES) < 0
        || (port_kv = host_port(&host, "kv")) <= 0
        || (port_idle = host_port(&host, "kv_idle")) <= 0) {
        fprintf(stderr, "the host did not start:\n%s\n", host.log);
        host_cleanup(&host);
        return -1;
    }
    return 0;
}

/* SIGTERM: the host runs every fini and exits 0. */
static int
group_teardown(void **state)
{
    int status;

    (void) state;
    kill(host.pid, SIGTERM);
    status = host_exit(&host, TIMEOUT_MS);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the host did not exit 0 on SIGTERM (status %d):\n"
                        "%s\n", status, host.log);
        host_cleanup(&host);
        return -1;
    }
    host_cleanup(&host);
    return 0;
}

static void
test_round_trip(void **state)
{
    int fd = connect_to(port_kv);

    (void) state;
    assert_string_equal(ask(fd, "COUNT"), "VALUE 0");
    assert_string_equal(ask(fd, "SET greeting hello world"), "OK");
    assert_string_equal(ask(fd, "GET greeting"), "VALUE hello world");
    assert_string_equal(ask(fd, "SET n 1"), "OK");
    assert_string_equal(ask(fd, "COUNT"), "VALUE 2");
    assert_string_equal(ask(fd, "SET third 3"), "ERR store full (max_keys 2)");
    assert_string_equal(ask(fd, "DEL n"), "OK");
    assert_string_equal(ask(fd, "DEL n"), "NOT_FOUND");
    assert_string_equal(ask(fd, "GET n"), "NOT_FOUND");
    assert_string_equal(ask(fd, "PING"), "ERR unknown command 'PING'");
    assert_string_equal(ask(fd, "DEL greeting"), "OK");
    hang_up(fd);
}

/* Several commands in one write: one reply each, in order. */
static void
test_pipelined(void **state)
{
    const char batch[] = "SET a 1\r\nGET a\nDEL a\nCOUNT\n";
    int fd = connect_to(port_kv);

    (void) state;
    assert_int_equal(write(fd, batch, sizeof(batch) - 1),
                     (ssize_t) sizeof(batch) - 1);
    assert_string_equal(reply(fd), "OK");
    assert_string_equal(reply(fd), "VALUE 1");
    assert_string_equal(reply(fd), "OK");
    assert_string_equal(reply(fd), "VALUE 0");
    hang_up(fd);
}

/* A value longer than a small reply buffer, and a line longer than the
 * plugin's limit (64 KiB), which is answered with an error before the
 * connection closes. */
static void
test_long_lines(void **state)
{
    static char big[70 * 1024];
    struct pollfd p = {.fd = connect_to(port_kv), .events = POLLIN};
    char want[256], c;

    (void) state;
    memset(big, 'v', 200);
    big[200] = '\0';
    assert_int_equal(dprintf(p.fd, "SET big %s\n", big), 209);
    assert_string_equal(reply(p.fd), "OK");
    assert_int_equal(dprintf(p.fd, "GET big\n"), 8);
    snprintf(want, sizeof(want), "VALUE %.200s", big);
    assert_string_equal(reply(p.fd), want);
    assert_string_equal(ask(p.fd, "DEL big"), "OK");

    memset(big, 'x', sizeof(big));
    assert_int_equal(write(p.fd, big, sizeof(big)), (ssize_t) sizeof(big));
    assert_string_equal(reply(p.fd), "ERR line too long");
    assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
    assert_true(read(p.fd, &c, 1) == 0 || errno == ECONNRESET);
    close(p.fd);
    assert_true(host_wait_for(&host, "[kv] connection closed: a line longer "
                                     "than 65536 bytes", TIMEOUT_MS));
}

/* Two manifest entries of one .so: two stores. */
static void
test_instances_are_separate(void **state)
{
    int a = connect_to(port_kv), b = connect_to(port_idle);

    (void) state;
    assert_string_equal(ask(a, "SET only-in-kv 1"), "OK");
    assert_string_equal(ask(b, "GET only-in-kv"), "NOT_FOUND");
    assert_string_equal(ask(a, "DEL only-in-kv"), "OK");
    hang_up(a);
    hang_up(b);
}

/* kv_idle closes a connection quiet for 0.2 s. */
static void
test_idle_timeout(void **state)
{
    struct pollfd p = {.fd = connect_to(port_idle), .events = POLLIN};
    long start = now_ms();
    char c;

    (void) state;
    assert_string_equal(ask(p.fd, "COUNT"), "VALUE 0");
    assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
    assert_int_equal(read(p.fd, &c, 1), 0);
    assert_true(now_ms() - start >= 150);
    close(p.fd);
}

/* A bad config: the host refuses it before init, naming the manifest's
 * line:column, the key's JSON path and the reason, and exits 1. */
static void
test_bad_config_is_refused(void **state)
{
    struct host bad;
    int status;

    (void) state;
    assert_int_equal(host_start(&bad, "{\"name\": \"broken\", \"path\": \""
                                      KV_PLUGIN "\", \"config\": "
                                      "{\"listen\": \"127.0.0.1:0\", "
                                      "\"max_keys\": 0}}"),
                     0);
    status = host_exit(&bad, TIMEOUT_MS);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(bad.log, ": plugins[0].config.max_keys: "
                                    "expected an integer in [1, 100000000], "
                                    "got 0"));
    host_cleanup(&bad);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_instances_are_separate),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_bad_config_is_refused),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
