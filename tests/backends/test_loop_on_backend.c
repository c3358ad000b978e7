/*
 * tests/backends/test_loop_on_backend.c: the central loop on one real
 * backend .so (argv[1]): a loop adopted in a forked child, a live swap to
 * every other built backend with a connection in flight, an fd closed
 * without remove_handler, and a 1 ms timer honoured without spinning.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
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

#include "backends.h"
#include "clock.h"
#include "loader.h"
#include "log.h"
#include "loop.h"

#define BACKEND_DIR IOLOOP_BUILD_DIR "/backends"

static const char *name;
static char err[2048];

struct reader {
    int fd;
    int bytes;       /* read so far */
    int stop_at;     /* stop the loop once this many were read */
};

static int
on_readable(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct reader *r = arg;
    char buf[64];
    ssize_t n;

    (void) events;
    n = read(fd, buf, sizeof(buf));
    if (n > 0) {
        r->bytes += (int) n;
    }
    if (r->bytes >= r->stop_at) {
        ioloop_stop(loop);
    }
    return n < 0 ? -errno : 0;
}

static int
cb_stop(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

static ioloop_loop_t *
open_loop(struct ioloop_backend_lib *lib)
{
    char *names[] = {(char *) name};
    ioloop_loop_t *loop = NULL;

    assert_int_equal(ioloop__backend_choose(names, 1, BACKEND_DIR, lib, &loop,
                                            err, sizeof(err)),
                     0);
    return loop;
}

/* Runs the loop until the reader saw stop_at bytes or 5 s passed. */
static void
run_until_read(ioloop_loop_t *loop, struct reader *r, int stop_at)
{
    ioloop_timer_t guard = ioloop_call_later(loop, 5 * IOLOOP_NS_PER_S,
                                             cb_stop, NULL);

    r->stop_at = stop_at;
    assert_int_equal(ioloop_start(loop), 0);
    ioloop_cancel(loop, guard);
    assert_int_equal(r->bytes, stop_at);
}

static void
test_fork_child_adopts_loop(void **state)
{
    struct ioloop_backend_lib lib;
    ioloop_loop_t *loop = open_loop(&lib);
    struct reader r = {0};
    int sv[2], status;
    pid_t pid;

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                                    | SOCK_CLOEXEC, 0, sv),
                     0);
    r.fd = sv[0];
    assert_int_equal(ioloop_add_handler(loop, sv[0], IOLOOP_READ, on_readable,
                                        &r),
                     0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct reader *cr = &r;
        int ok = ioloop_start(loop) == -ECHILD
                 && ioloop_loop_after_fork(loop, err, sizeof(err)) == 0;

        if (ok) {
            ioloop_call_later(loop, 5 * IOLOOP_NS_PER_S, cb_stop, NULL);
            cr->stop_at = 3;
            ok = write(sv[1], "abc", 3) == 3 && ioloop_start(loop) == 0
                 && cr->bytes == 3;
        }
        ioloop_loop_free(loop);
        ioloop__backend_close(&lib);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's registrations were not touched by the child. */
    assert_int_equal(write(sv[1], "de", 2), 2);
    run_until_read(loop, &r, 2);
    ioloop_remove_handler(loop, sv[0]);
    close(sv[0]);
    close(sv[1]);
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
}

/* The backends built beside this one. */
static int
other_backends(char names[][32], int max)
{
    DIR *d = opendir(BACKEND_DIR);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);

        if (len > 3 && len < 32 && strcmp(e->d_name + len - 3, ".so") == 0
            && strncmp(e->d_name, name, len - 3) != 0) {
            snprintf(names[n++], 32, "%.*s", (int) (len - 3), e->d_name);
        }
    }
    closedir(d);
    return n;
}

static void
test_live_swap_keeps_handlers(void **state)
{
    struct ioloop_backend_lib lib;
    ioloop_loop_t *loop = open_loop(&lib);
    struct reader r = {0};
    char others[16][32];
    int sv[2], n = other_backends(others, 16), total = 0;

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                                    | SOCK_CLOEXEC, 0, sv),
                     0);
    r.fd = sv[0];
    assert_int_equal(ioloop_add_handler(loop, sv[0], IOLOOP_READ, on_readable,
                                        &r),
                     0);
    for (int i = 0; i <= n; i++) {
        const char *next = i < n ? others[i] : name;

        /* A byte in flight across the swap is not lost. */
        assert_int_equal(write(sv[1], "x", 1), 1);
        if (ioloop__backend_swap(loop, &lib, BACKEND_DIR, next, err,
                                 sizeof(err)) < 0) {
            /* io_uring may be refused by this kernel: then it is skipped. */
            print_message("swap to %s refused: %s\n", next, err);
        }
        total++;
        run_until_read(loop, &r, total);
        assert_int_equal(ioloop__handler_count(loop), 1);
    }
    assert_string_equal(ioloop__backend(loop)->name, name);
    ioloop_remove_handler(loop, sv[0]);
    close(sv[0]);
    close(sv[1]);
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
}

static int
cb_count(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (*(int *) arg)++;
    return 0;
}

/* An fd closed without remove_handler: no crash, no spin, and a swap
 * drops its handler. */
static void
test_closed_without_remove(void **state)
{
    struct ioloop_backend_lib lib;
    ioloop_loop_t *loop = open_loop(&lib);
    struct reader r = {0};
    uint64_t before;
    int sv[2], fd;

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                                    | SOCK_CLOEXEC, 0, sv),
                     0);
    /* A high number, so that no fd opened below (such as the new backend
     * state's) reuses it: a reused number is a different, live file. */
    fd = fcntl(sv[0], F_DUPFD_CLOEXEC, 900);
    assert_true(fd >= 900);
    assert_int_equal(ioloop_add_handler(loop, fd, IOLOOP_READ, on_readable,
                                        &r),
                     0);
    assert_int_equal(write(sv[1], "x", 1), 1); /* pending, never read */
    close(fd);
    close(sv[0]);
    close(sv[1]);
    before = ioloop__stats(loop)->iterations;
    ioloop_call_later(loop, 50 * IOLOOP_NS_PER_MS, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    /* Waiting 50 ms takes a handful of iterations, not thousands. */
    assert_true(ioloop__stats(loop)->iterations - before < 10);
    assert_int_equal(r.bytes, 0);
    /* Re-registering everything (as a swap does) drops the dead handler. */
    assert_int_equal(ioloop__switch_backend(loop, lib.ops, err, sizeof(err)),
                     0);
    assert_int_equal(ioloop__handler_count(loop), 0);
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
}

static void
test_one_ms_timer(void **state)
{
    struct ioloop_backend_lib lib;
    ioloop_loop_t *loop = open_loop(&lib);
    ioloop_time_t t0, t1;
    int fired = 0;

    (void) state;
    for (int i = 0; i < 5; i++) {
        uint64_t before = ioloop__stats(loop)->iterations;

        fired = 0;
        t0 = ioloop__monotonic_now();
        ioloop__update_time(loop);
        ioloop_call_later(loop, IOLOOP_NS_PER_MS, cb_count, &fired);
        ioloop_call_later(loop, IOLOOP_NS_PER_MS, cb_stop, NULL);
        assert_int_equal(ioloop_start(loop), 0);
        t1 = ioloop__monotonic_now();
        assert_int_equal(fired, 1);
        assert_true(t1 - t0 >= IOLOOP_NS_PER_MS);       /* never early */
        assert_true(t1 - t0 < 100 * IOLOOP_NS_PER_MS); /* nor wildly late */
        /* Rounded up, not down: no busy iterations before the deadline. */
        assert_true(ioloop__stats(loop)->iterations - before <= 3);
    }
    ioloop_loop_free(loop);
    ioloop__backend_close(&lib);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_child_adopts_loop),
        cmocka_unit_test(test_live_swap_keeps_handlers),
        cmocka_unit_test(test_closed_without_remove),
        cmocka_unit_test(test_one_ms_timer),
    };

    struct ioloop_backend_lib lib;
    ioloop_loop_t *probe;

    if (argc != 2) {
        fprintf(stderr, "usage: %s BACKEND\n", argv[0]);
        return 2;
    }
    name = argv[1];
    ioloop__log_threshold = IOLOOP_LOG_WARN;
    /* A kernel may refuse a backend (io_uring under seccomp, or with
     * kernel.io_uring_disabled): nothing to test then, as in the
     * conformance suite. */
    {
        char path[512];

        snprintf(path, sizeof(path), BACKEND_DIR "/%s.so", name);
        if (ioloop__backend_open(path, &lib, err, sizeof(err)) == 0) {
            probe = ioloop_loop_new(lib.ops, err, sizeof(err));
            if (probe == NULL && (errno == EPERM || errno == ENOSYS)) {
                printf("%s refused by this kernel (%s): skipped\n", name,
                       err);
                ioloop__backend_close(&lib);
                return 0;
            }
            ioloop_loop_free(probe);
            ioloop__backend_close(&lib);
        }
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
