/* tests/unit/test_timers.c: the timer heap of host/core/timers.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "timers.h"

static int
nop(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    return 0;
}

/* Runs one fire pass at now and returns the args in firing order. */
static size_t
fire_all(struct ioloop_timers *t, ioloop_time_t now, uintptr_t *out,
         size_t max)
{
    struct ioloop_due_timer d;
    size_t fired = 0;

    ioloop__timers_begin_pass(t, now);
    if (!ioloop__timers_in_pass(t)) {
        return 0;
    }
    while (ioloop__timers_pop_due(t, &d)) {
        if (fired < max) {
            out[fired++] = (uintptr_t) d.arg;
        }
    }
    assert_false(ioloop__timers_in_pass(t));
    return fired;
}

static void
test_random_deadlines_fire_in_order(void **state)
{
    struct ioloop_timers t;
    static uintptr_t order[5000];
    ioloop_time_t deadline[5000];

    (void) state;
    ioloop__timers_init(&t);
    srand(42);
    for (uintptr_t i = 0; i < 5000; i++) {
        deadline[i] = rand() % 1000;
        assert_true(ioloop__timers_add(&t, deadline[i], nop, (void *) i,
                                       NULL) != 0);
    }
    assert_int_equal(fire_all(&t, 1000, order, 5000), 5000);
    for (size_t i = 1; i < 5000; i++) {
        ioloop_time_t a = deadline[order[i - 1]], b = deadline[order[i]];

        assert_true(a < b || (a == b && order[i - 1] < order[i]));
    }
    ioloop__timers_free(&t);
}

static void
test_equal_deadlines_are_fifo(void **state)
{
    struct ioloop_timers t;
    uintptr_t order[100];

    (void) state;
    ioloop__timers_init(&t);
    for (uintptr_t i = 0; i < 100; i++) {
        ioloop__timers_add(&t, 7, nop, (void *) i, NULL);
    }
    assert_int_equal(fire_all(&t, 7, order, 100), 100);
    for (uintptr_t i = 0; i < 100; i++) {
        assert_int_equal(order[i], i);
    }
    ioloop__timers_free(&t);
}

static void
test_only_due_timers_are_collected(void **state)
{
    struct ioloop_timers t;
    uintptr_t order[4];
    ioloop_time_t next;

    (void) state;
    ioloop__timers_init(&t);
    ioloop__timers_add(&t, 10, nop, (void *) 1, NULL);
    ioloop__timers_add(&t, 20, nop, (void *) 2, NULL);
    assert_int_equal(fire_all(&t, 15, order, 4), 1);
    assert_int_equal(order[0], 1);
    assert_int_equal(ioloop__timers_next(&t, &next), 0);
    assert_int_equal(next, 20);
    assert_int_equal(fire_all(&t, 20, order, 4), 1);
    assert_int_equal(ioloop__timers_next(&t, &next), -1);
    ioloop__timers_free(&t);
}

static void
test_cancel_and_stale_handles(void **state)
{
    struct ioloop_timers t;
    uintptr_t order[4];
    ioloop_timer_t a, b, c;
    ioloop_time_t next;

    (void) state;
    ioloop__timers_init(&t);
    a = ioloop__timers_add(&t, 10, nop, (void *) 1, NULL);
    b = ioloop__timers_add(&t, 20, nop, (void *) 2, NULL);
    assert_int_equal(ioloop__timers_cancel(&t, a), 0);
    assert_int_equal(ioloop__timers_cancel(&t, a), -ENOENT);
    assert_int_equal(ioloop__timers_pending(&t), 1);
    /* The cancelled top is dropped lazily when the next deadline is asked. */
    assert_int_equal(ioloop__timers_next(&t, &next), 0);
    assert_int_equal(next, 20);
    assert_int_equal(fire_all(&t, 30, order, 4), 1);
    assert_int_equal(order[0], 2);
    /* b fired; its slot is reused by c; b's handle must not cancel c. */
    c = ioloop__timers_add(&t, 40, nop, (void *) 3, NULL);
    assert_int_not_equal(b, c);
    assert_int_equal(ioloop__timers_cancel(&t, b), -ENOENT);
    assert_int_equal(ioloop__timers_cancel(&t, 0), -ENOENT);
    assert_int_equal(ioloop__timers_cancel(&t, ~(uint64_t) 0), -ENOENT);
    assert_int_equal(fire_all(&t, 40, order, 4), 1);
    assert_int_equal(order[0], 3);
    ioloop__timers_free(&t);
}

static void
test_cancel_during_a_pass(void **state)
{
    struct ioloop_timers t;
    struct ioloop_due_timer d;
    ioloop_timer_t a, b;

    (void) state;
    ioloop__timers_init(&t);
    a = ioloop__timers_add(&t, 5, nop, (void *) 1, NULL);
    b = ioloop__timers_add(&t, 5, nop, (void *) 2, NULL);
    ioloop__timers_begin_pass(&t, 5);
    assert_int_equal(ioloop__timers_pop_due(&t, &d), 1);
    assert_ptr_equal(d.arg, (void *) 1);
    /* The first one cancels itself (already released: harmless) and the
     * second before its turn. */
    assert_int_equal(ioloop__timers_cancel(&t, a), -ENOENT);
    assert_int_equal(ioloop__timers_cancel(&t, b), 0);
    assert_int_equal(ioloop__timers_pop_due(&t, &d), 0);
    assert_int_equal(ioloop__timers_pending(&t), 0);
    assert_int_equal(t.len, 0);
    ioloop__timers_free(&t);
}

/* tornado's ordering: what a pass runs is fixed when it opens. */
static void
test_timers_added_during_a_pass_wait_for_the_next(void **state)
{
    struct ioloop_timers t;
    struct ioloop_due_timer d;
    uintptr_t order[4];

    (void) state;
    ioloop__timers_init(&t);
    ioloop__timers_add(&t, 5, nop, (void *) 1, NULL);
    ioloop__timers_add(&t, 10, nop, (void *) 2, NULL);
    ioloop__timers_begin_pass(&t, 10);
    assert_true(ioloop__timers_in_pass(&t));
    /* Added after the pass opened, one even with a deadline in the past. */
    ioloop__timers_add(&t, 3, nop, (void *) 3, NULL);
    ioloop__timers_add(&t, 10, nop, (void *) 4, NULL);
    assert_int_equal(ioloop__timers_pop_due(&t, &d), 1);
    assert_ptr_equal(d.arg, (void *) 1);
    assert_int_equal(ioloop__timers_pop_due(&t, &d), 1);
    assert_ptr_equal(d.arg, (void *) 2);
    assert_int_equal(ioloop__timers_pop_due(&t, &d), 0);
    /* The next pass runs them, in the order they were added. */
    assert_int_equal(fire_all(&t, 10, order, 4), 2);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 4);
    /* Nothing due: no pass opens. */
    ioloop__timers_add(&t, 20, nop, (void *) 5, NULL);
    ioloop__timers_begin_pass(&t, 19);
    assert_false(ioloop__timers_in_pass(&t));
    ioloop__timers_free(&t);
}

static void
test_compaction_thresholds(void **state)
{
    struct ioloop_timers t;
    static ioloop_timer_t h[2000];
    uintptr_t order[2000];

    (void) state;
    ioloop__timers_init(&t);
    for (uintptr_t i = 0; i < 2000; i++) {
        h[i] = ioloop__timers_add(&t, (ioloop_time_t) (i % 97), nop,
                                  (void *) i, NULL);
    }
    /* 600 cancelled of 2000: over 512, under half: no compaction. */
    for (size_t i = 0; i < 600; i++) {
        ioloop__timers_cancel(&t, h[i]);
    }
    assert_int_equal(t.compactions, 0);
    assert_int_equal(t.len, 2000);
    /* 1001 cancelled: over half of 2000: compacted once, heap shrinks. */
    for (size_t i = 600; i < 1001; i++) {
        ioloop__timers_cancel(&t, h[i]);
    }
    assert_int_equal(t.compactions, 1);
    assert_int_equal(t.len, 999);
    assert_int_equal(t.ncancelled, 0);
    /* The survivors still fire, in order, and only they. */
    assert_int_equal(fire_all(&t, 1000, order, 2000), 999);
    for (size_t i = 1; i < 999; i++) {
        ioloop_time_t a = (ioloop_time_t) (order[i - 1] % 97);
        ioloop_time_t b = (ioloop_time_t) (order[i] % 97);

        assert_true(order[i] >= 1001);
        assert_true(a < b || (a == b && order[i - 1] < order[i]));
    }
    ioloop__timers_free(&t);
}

static void
test_small_heaps_never_compact(void **state)
{
    struct ioloop_timers t;
    static ioloop_timer_t h[600];

    (void) state;
    ioloop__timers_init(&t);
    for (uintptr_t i = 0; i < 600; i++) {
        h[i] = ioloop__timers_add(&t, 1, nop, NULL, NULL);
    }
    for (size_t i = 0; i < 512; i++) {
        ioloop__timers_cancel(&t, h[i]);
    }
    assert_int_equal(t.compactions, 0); /* 512 is not over 512 */
    ioloop__timers_cancel(&t, h[512]);
    assert_int_equal(t.compactions, 1);
    ioloop__timers_free(&t);
}

/* A fire pass compacts first when over a quarter of the heap is dead. */
static void
test_fire_pass_compacts(void **state)
{
    struct ioloop_timers t;
    static ioloop_timer_t h[2000];
    static uintptr_t order[2000];
    struct ioloop_due_timer d;
    size_t n;

    (void) state;
    ioloop__timers_init(&t);
    for (uintptr_t i = 0; i < 2000; i++) {
        h[i] = ioloop__timers_add(&t, (ioloop_time_t) (i % 89), nop,
                                  (void *) i, NULL);
    }
    for (size_t i = 0; i < 2000; i += 3) {
        ioloop__timers_cancel(&t, h[i]); /* 667: over a quarter */
    }
    assert_int_equal(t.compactions, 0);
    ioloop__timers_begin_pass(&t, 50);
    assert_int_equal(t.compactions, 1);
    assert_int_equal(t.ncancelled, 0);
    assert_int_equal(t.len, 1333);
    /* The survivors fire in (deadline, order of addition) order, and
     * only they: this pass the ones due at 50, the next one the rest. */
    n = 0;
    while (ioloop__timers_pop_due(&t, &d)) {
        order[n++] = (uintptr_t) d.arg;
    }
    n += fire_all(&t, 100, order + n, 2000 - n);
    assert_int_equal(n, 1333);
    for (size_t i = 0; i < n; i++) {
        assert_true(order[i] % 3 != 0);
        if (i > 0) {
            ioloop_time_t a = (ioloop_time_t) (order[i - 1] % 89);
            ioloop_time_t b = (ioloop_time_t) (order[i] % 89);

            assert_true(a < b || (a == b && order[i - 1] < order[i]));
        }
    }
    ioloop__timers_free(&t);
}

/*
 * Timers cancelled without ever firing (a timeout per request, cancelled
 * when the request completes) must not grow memory without bound: three
 * million of them beside one long-lived timer.
 */
static void
test_mass_cancellation_keeps_memory_bounded(void **state)
{
    struct ioloop_timers t;
    static ioloop_timer_t h[1000];
    uintptr_t order[2];

    (void) state;
    ioloop__timers_init(&t);
    assert_true(ioloop__timers_add(&t, 1000000, nop, (void *) 1, NULL) != 0);
    for (int round = 0; round < 3000; round++) {
        for (size_t i = 0; i < 1000; i++) {
            h[i] = ioloop__timers_add(&t, 500 + (ioloop_time_t) i, nop,
                                      NULL, NULL);
            assert_true(h[i] != 0);
        }
        for (size_t i = 0; i < 1000; i++) {
            assert_int_equal(ioloop__timers_cancel(&t, h[i]), 0);
        }
        assert_true(t.len <= 1 + 2 * IOLOOP_COMPACT_MIN + 2);
    }
    assert_true(t.cap <= 2048);
    assert_true(t.slots_cap <= 2048);
    assert_int_equal(ioloop__timers_pending(&t), 1);
    assert_int_equal(fire_all(&t, 1000000, order, 2), 1);
    assert_int_equal(order[0], 1);
    ioloop__timers_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_deadlines_fire_in_order),
        cmocka_unit_test(test_equal_deadlines_are_fifo),
        cmocka_unit_test(test_only_due_timers_are_collected),
        cmocka_unit_test(test_cancel_and_stale_handles),
        cmocka_unit_test(test_cancel_during_a_pass),
        cmocka_unit_test(test_timers_added_during_a_pass_wait_for_the_next),
        cmocka_unit_test(test_compaction_thresholds),
        cmocka_unit_test(test_small_heaps_never_compact),
        cmocka_unit_test(test_fire_pass_compacts),
        cmocka_unit_test(test_mass_cancellation_keeps_memory_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
