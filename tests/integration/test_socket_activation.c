/*
 * tests/integration/test_socket_activation.c: the real ioloop-host under
 * a fake systemd socket activation. The test binds 127.0.0.1:0 itself,
 * then forks, moves the socket to fd 3, sets LISTEN_PID (the child's pid,
 * which exec keeps), LISTEN_FDS=1 and LISTEN_FDNAMES, and execs the host
 * with a server listening on that very address, routing / to hello_http:
 * in one process, and as a master with two workers (the master takes the
 * socket for them). The host must serve GET / on the passed socket and
 * say so in its log; a bind of its own would fail, the address being in
 * use.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"

#define MANIFEST_FMT                                                         \
    "{\"backend\": \"auto\", \"backend_dir\": \"" HOST_BACKEND_DIR "\","     \
    " %s \"plugins\": [" HOST_HELLO_ENTRY "],"                              \
    " \"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:%d\","         \
    " \"routes\": [{\"path\": \"/\", \"plugin\": \"hello\"}]}]}"

/* The host under a fake activation, and what it wrote to stderr. */
struct activated {
    pid_t pid;
    int err_fd;          /* read end of its stderr */
    int port;            /* of the passed socket */
    char dir[64];
    char manifest[128];
    char log[64 * 1024]; /* NUL-terminated */
    size_t len;
};

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* A listening socket on 127.0.0.1, port chosen by the kernel. */
static int
listening_socket(int *port)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    socklen_t len = sizeof(in);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &in, sizeof(in)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &in, &len), 0);
    *port = ntohs(in.sin_port);
    return fd;
}

/*
 * Starts the host as systemd would after binding lfd: fd 3, LISTEN_*.
 * extra is spliced into the manifest's top level ("" or "k": v,).
 */
static void
start(struct activated *a, const char *extra)
{
    char *argv[] = {"ioloop-host", "--config", a->manifest, NULL};
    pid_t parent = getpid();
    int lfd, pipefd[2];
    FILE *f;

    memset(a, 0, sizeof(*a));
    lfd = listening_socket(&a->port);
    snprintf(a->dir, sizeof(a->dir), "/tmp/ioloop-activation-XXXXXX");
    assert_non_null(mkdtemp(a->dir));
    snprintf(a->manifest, sizeof(a->manifest), "%s/host.json", a->dir);
    f = fopen(a->manifest, "w");
    assert_non_null(f);
    fprintf(f, MANIFEST_FMT, extra, a->port);
    fclose(f);
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    fflush(NULL);
    a->pid = fork();
    assert_true(a->pid >= 0);
    if (a->pid == 0) {
        char pid[24];

        /* This process is single-threaded: setenv is safe after fork. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        snprintf(pid, sizeof(pid), "%ld", (long) getpid());
        if (getppid() != parent || dup2(pipefd[1], STDERR_FILENO) < 0
            || (lfd == 3 ? fcntl(3, F_SETFD, 0) : dup2(lfd, 3)) < 0
            || setenv("LISTEN_PID", pid, 1) < 0
            || setenv("LISTEN_FDS", "1", 1) < 0
            || setenv("LISTEN_FDNAMES", "http", 1) < 0) {
            _exit(127);
        }
        execv(HOST_BINARY, argv);
        _exit(127);
    }
    close(pipefd[1]);
    close(lfd); /* the host holds the only copy now */
    a->err_fd = pipefd[0];
}

/*
 * Appends what the host wrote to a->log, waiting up to timeout_ms for
 * it. Returns 0, or -1 on timeout, EOF (the host and its workers exited)
 * or a full log.
 */
static int
read_log(struct activated *a, int timeout_ms)
{
    struct pollfd pfd = {.fd = a->err_fd, .events = POLLIN};
    ssize_t n;

    if (a->len + 1 >= sizeof(a->log) || poll(&pfd, 1, timeout_ms) <= 0) {
        return -1;
    }
    n = read(a->err_fd, a->log + a->len, sizeof(a->log) - 1 - a->len);
    if (n <= 0) {
        return -1;
    }
    a->len += (size_t) n;
    a->log[a->len] = '\0';
    return 0;
}

/* Reads the host's stderr until text shows up: 0, or -1 (timeout, EOF). */
static int
wait_log(struct activated *a, const char *text, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;

    while (strstr(a->log, text) == NULL) {
        int left = (int) (deadline - now_ms());

        if (left <= 0 || read_log(a, left) < 0) {
            return -1;
        }
    }
    return 0;
}

/* SIGTERM and the exit status (-1: still running after the timeout). */
static int
stop(struct activated *a)
{
    double deadline = now_ms() + HOST_TIMEOUT_MS;
    int status;
    pid_t r;

    kill(a->pid, SIGTERM);
    while ((r = waitpid(a->pid, &status, WNOHANG)) == 0
           && now_ms() < deadline) {
        usleep(1000);
    }
    if (r != a->pid) {
        return -1;
    }
    a->pid = 0;
    return status;
}

static void
cleanup(struct activated *a)
{
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
    }
    close(a->err_fd);
    unlink(a->manifest);
    rmdir(a->dir);
}

static void
dump(const struct activated *a)
{
    fprintf(stderr, "----- ioloop-host stderr -----\n%s"
            "----- end of ioloop-host stderr -----\n", a->log);
}

/* Runs the host on a passed socket and GETs / on it conns times. */
static void
serve_on_passed_socket(const char *extra, int conns)
{
    struct activated *a = malloc(sizeof(*a));
    struct http_conn *hc = malloc(sizeof(*hc));
    struct http_response *r = malloc(sizeof(*r));
    char took[128], listening[128];
    int status;

    assert_true(a != NULL && hc != NULL && r != NULL);
    start(a, extra);
    snprintf(took, sizeof(took), "fd 3 \"http\" serves 127.0.0.1:%d",
             a->port);
    snprintf(listening, sizeof(listening),
             "[host] listening on 127.0.0.1:%d\n", a->port);
    if (wait_log(a, took, HOST_TIMEOUT_MS) < 0
        || wait_log(a, listening, HOST_TIMEOUT_MS) < 0) {
        dump(a);
        fail_msg("the host did not take the passed socket");
    }
    for (int i = 0; i < conns; i++) {
        assert_int_equal(http_connect(hc, a->port), 0);
        assert_int_equal(http_get(hc, "/", r), 0);
        assert_int_equal(r->status, 200);
        assert_string_equal(r->body, "hello");
        close(hc->fd);
    }
    status = stop(a);
    while (read_log(a, HOST_TIMEOUT_MS) == 0) {
        /* collect what is left, up to EOF, for the checks and the dump */
    }
    if (status != 0) {
        dump(a);
    }
    assert_int_equal(status, 0);
    assert_null(strstr(a->log, "Address already in use"));
    cleanup(a);
    free(a);
    free(hc);
    free(r);
}

static void
test_in_process(void **state)
{
    (void) state;
    serve_on_passed_socket("", 3);
}

static void
test_workers(void **state)
{
    (void) state;
    serve_on_passed_socket("\"workers\": 2,", 8);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_process),
        cmocka_unit_test(test_workers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
