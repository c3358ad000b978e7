/* tests/unit/test_timers.c: the timer heap of host/timers.c. */
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

/* Collects everything due at now and returns the args in firing order. */
static size_t
fire_all(struct ioloop_timers *t, ioloop_time_t now, uintptr_t *out,
         size_t max)
{
    size_t n = ioloop__timers_collect_due(t, now), fired = 0;

    for (size_t i = 0; i < n; i++) {
        struct ioloop_due_timer d;

        if (ioloop__timers_take(t, i, &d) && fired < max) {
            out[fired++] = (uintptr_t) d.arg;
        }
    }
    ioloop__timers_clear_due(t);
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
test_cancel_of_a_collected_timer(void **state)
{
    struct ioloop_timers t;
    struct ioloop_due_timer d;
    ioloop_timer_t b;

    (void) state;
    ioloop__timers_init(&t);
    ioloop__timers_add(&t, 5, nop, (void *) 1, NULL);
    b = ioloop__timers_add(&t, 5, nop, (void *) 2, NULL);
    assert_int_equal(ioloop__timers_collect_due(&t, 5), 2);
    assert_int_equal(ioloop__timers_take(&t, 0, &d), 1);
    /* The first one cancels the second before its turn. */
    assert_int_equal(ioloop__timers_cancel(&t, b), 0);
    assert_int_equal(ioloop__timers_take(&t, 1, &d), 0);
    ioloop__timers_clear_due(&t);
    assert_int_equal(ioloop__timers_pending(&t), 0);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_deadlines_fire_in_order),
        cmocka_unit_test(test_equal_deadlines_are_fifo),
        cmocka_unit_test(test_only_due_timers_are_collected),
        cmocka_unit_test(test_cancel_and_stale_handles),
        cmocka_unit_test(test_cancel_of_a_collected_timer),
        cmocka_unit_test(test_compaction_thresholds),
        cmocka_unit_test(test_small_heaps_never_compact),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
