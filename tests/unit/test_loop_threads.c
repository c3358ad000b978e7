/*
 * tests/unit/test_loop_threads.c: a loop handed from the thread that made
 * it to the thread that runs it, with callbacks posted from both at once,
 * on the real epoll.so. Run under ThreadSanitizer by `make test`.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "loader.h"
#include "loop.h"

#define ROUNDS 100
#define POSTS 20000

/* Touched only by callbacks, on the loop's thread. */
struct tally {
    long count;
    const struct ioloop_owner *owner_seen;
};

static struct ioloop_backend_lib lib;

static int
setup(void **state)
{
    char err[512];

    (void) state;
    return ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so", &lib,
                                err, sizeof(err));
}

static int
teardown(void **state)
{
    (void) state;
    ioloop__backend_close(&lib);
    return 0;
}

static ioloop_loop_t *
new_loop(void)
{
    char err[512];
    ioloop_loop_t *loop = ioloop_loop_new(lib.ops, err, sizeof(err));

    assert_non_null(loop);
    return loop;
}

static int
cb_count(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    ((struct tally *) arg)->count++;
    return 0;
}

static int
cb_stop(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

static void *
run_loop(void *arg)
{
    return (void *) (intptr_t) ioloop_start(arg);
}

/* The documented pattern: made on main, started on T while main keeps
 * posting. Every callback runs exactly once, on T, and nothing races
 * (the double free in the callback queue this used to end in). */
static void
test_start_on_other_thread_while_posting(void **state)
{
    (void) state;
    for (int round = 0; round < ROUNDS; round++) {
        ioloop_loop_t *loop = new_loop();
        struct tally t = {0};
        pthread_t runner;
        void *rc;

        assert_int_equal(pthread_create(&runner, NULL, run_loop, loop), 0);
        for (int i = 0; i < POSTS; i++) {
            assert_int_equal(ioloop_add_callback(loop, cb_count, &t), 0);
        }
        assert_int_equal(ioloop_add_callback(loop, cb_stop, NULL), 0);
        assert_int_equal(pthread_join(runner, &rc), 0);
        assert_int_equal((intptr_t) rc, 0);
        assert_int_equal(t.count, POSTS);
        ioloop_loop_free(loop);
    }
}

static int
cb_post_more(ioloop_loop_t *loop, void *arg)
{
    struct tally *t = arg;

    /* On the loop's own thread: the lock-free path. */
    if (++t->count < 1000) {
        return ioloop_add_callback(loop, cb_post_more, t);
    }
    ioloop_stop(loop);
    return 0;
}

/* A loop run by one thread, stopped, then run by another: each run's
 * thread gets the fast path, and the previous one goes through the lock. */
static void
test_run_by_one_thread_then_another(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct tally t = {0};
    pthread_t runner;

    (void) state;
    assert_int_equal(ioloop_add_callback(loop, cb_post_more, &t), 0);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(t.count, 1000);

    t.count = 0;
    assert_int_equal(pthread_create(&runner, NULL, run_loop, loop), 0);
    assert_int_equal(ioloop_add_callback(loop, cb_post_more, &t), 0);
    assert_int_equal(pthread_join(runner, NULL), 0);
    assert_int_equal(t.count, 1000);
    ioloop_loop_free(loop);
}

static int
cb_note_owner(ioloop_loop_t *loop, void *arg)
{
    struct tally *t = arg;

    t->owner_seen = ioloop__current_owner(loop);
    t->count++;
    ioloop_stop(loop);
    return 0;
}

/* A callback posted before the loop runs (a plugin's init) keeps the
 * owner set on the posting thread, though it goes through the lock. */
static void
test_callback_before_start_keeps_owner(void **state)
{
    static const struct ioloop_owner plugin = {.name = "plugin"};
    ioloop_loop_t *loop = new_loop();
    struct tally t = {0};
    const struct ioloop_owner *previous;
    pthread_t runner;

    (void) state;
    previous = ioloop__set_owner(loop, &plugin);
    assert_int_equal(ioloop_add_callback(loop, cb_note_owner, &t), 0);
    ioloop__set_owner(loop, previous);
    assert_int_equal(pthread_create(&runner, NULL, run_loop, loop), 0);
    assert_int_equal(pthread_join(runner, NULL), 0);
    assert_int_equal(t.count, 1);
    assert_ptr_equal(t.owner_seen, &plugin);
    ioloop_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_on_other_thread_while_posting),
        cmocka_unit_test(test_run_by_one_thread_then_another),
        cmocka_unit_test(test_callback_before_start_keeps_owner),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
