/*
 * tests/integration/test_pid_file.c: the pid_file is a lock. A second
 * host started with the same manifest while the first runs exits 1 at
 * once, with one line naming the running pid, and leaves the first alone:
 * its pid_file still names it, -s stop still stops it, and it removes the
 * file when it exits.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "fixture.h"
#include "host_process.h"

#define HELLO HOST_HELLO_ENTRY

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The pid written in path, or -1. */
static long
pid_in(const char *path)
{
    FILE *f = fopen(path, "re");
    long pid = -1;

    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1) {
            pid = -1;
        }
        fclose(f);
    }
    return pid;
}

/* Runs `ioloop-host --config manifest` to its end (at most 10 s): its
 * exit status, its stderr in err, the time it took in *ms. */
static int
run_second(const char *manifest, char *err, size_t len, double *ms)
{
    int pipefd[2], status = -1;
    double t0 = now_ms();
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        alarm(10);
        execl(HOST_BINARY, HOST_BINARY, "--config", manifest, (char *) NULL);
        _exit(127);
    }
    close(pipefd[1]);
    while (n + 1 < len && (r = read(pipefd[0], err + n, len - n - 1)) > 0) {
        n += (size_t) r;
    }
    err[n] = '\0';
    close(pipefd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *ms = now_ms() - t0;
    return status;
}

static void
second_start_refused(const char *extra)
{
    char path[192], cmd[512], err[4096], expected[128];
    int port, status;
    double ms;

    assert_int_equal(host_start_ex(&hp, "epoll", extra, "[" HELLO "]", 0),
                     0);
    port = host_port(&hp, "host", HOST_TIMEOUT_MS);
    assert_true(port > 0);
    snprintf(path, sizeof(path), "%s/host.pid", hp.dir);
    assert_int_equal(pid_in(path), (long) hp.pid);

    status = run_second(hp.manifest, err, sizeof(err), &ms);
    print_message("second start: exit %d after %.0f ms: %s",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, ms, err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(ms < 1000);
    snprintf(expected, sizeof(expected), "(pid %d)", (int) hp.pid);
    assert_non_null(strstr(err, expected));
    assert_non_null(strstr(err, "host.pid"));
    assert_non_null(strchr(err, '\n'));
    assert_string_equal(strchr(err, '\n'), "\n"); /* one line */

    /* The first host is untouched: same pid_file, still serving. */
    assert_int_equal(pid_in(path), (long) hp.pid);
    assert_int_equal(get_root(port, NULL), 0);
    snprintf(cmd, sizeof(cmd), "%s --config %s -s stop", HOST_BINARY,
             hp.manifest);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(host_wait(&hp, HOST_TIMEOUT_MS), 0);
    assert_true(WIFEXITED(hp.status));
    assert_int_equal(WEXITSTATUS(hp.status), 0);
    assert_int_equal(access(path, F_OK), -1); /* removed by its owner */
}

static void
test_second_start_refused_workers(void **state)
{
    (void) state;
    second_start_refused("{\"workers\": 1, \"pid_file\": \"host.pid\", "
                         HOST_HELLO_SERVERS "}");
}

static void
test_second_start_refused_single(void **state)
{
    (void) state;
    second_start_refused("{\"pid_file\": \"host.pid\", "
                         HOST_HELLO_SERVERS "}");
}

/* A stale pid_file (its host died without removing it) holds no lock:
 * the next start takes it over. */
static void
test_stale_pid_file_taken_over(void **state)
{
    char path[192];
    FILE *f;

    (void) state;
    assert_int_equal(host_start_ex(&hp, "epoll",
                                   "{\"pid_file\": \"host.pid\", "
                                   HOST_HELLO_SERVERS "}",
                                   "[" HELLO "]", 0),
                     0);
    assert_true(host_port(&hp, "host", HOST_TIMEOUT_MS) > 0);
    snprintf(path, sizeof(path), "%s/host.pid", hp.dir);
    assert_int_equal(kill(hp.pid, SIGKILL), 0);
    assert_int_equal(host_wait(&hp, HOST_TIMEOUT_MS), 0);
    assert_int_equal(access(path, F_OK), 0); /* left behind */
    f = fopen(hp.manifest, "re");
    assert_non_null(f);
    fclose(f);
    /* Same folder and manifest: host_start_ex would make a new folder, so
     * restart by hand through the helper's fields. */
    {
        char err[4096];
        double ms;
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

            dup2(null, STDERR_FILENO);
            alarm(10);
            execl(HOST_BINARY, HOST_BINARY, "--config", hp.manifest,
                  (char *) NULL);
            _exit(127);
        }
        for (int i = 0; i < 500 && pid_in(path) != (long) pid; i++) {
            usleep(10 * 1000);
        }
        assert_int_equal(pid_in(path), (long) pid);
        status = run_second(hp.manifest, err, sizeof(err), &ms);
        assert_int_equal(WEXITSTATUS(status), 1);
        assert_int_equal(kill(pid, SIGTERM), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(access(path, F_OK), -1);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_second_start_refused_workers,
                                  host_teardown),
        cmocka_unit_test_teardown(test_second_start_refused_single,
                                  host_teardown),
        cmocka_unit_test_teardown(test_stale_pid_file_taken_over,
                                  host_teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
