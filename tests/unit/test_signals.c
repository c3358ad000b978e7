/*
 * tests/unit/test_signals.c: signal subscriptions (host/core/signals.c): a
 * delivered signal runs every subscriber on the loop thread, reserved
 * signals are refused, unsubscribing restores the default disposition,
 * and an owner's subscriptions go with it.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "loop.h"
#include "signals.h"

static int seen[4];

static int
on_sig(ioloop_loop_t *loop, int signo, void *arg)
{
    seen[(intptr_t) arg]++;
    if ((intptr_t) arg == 0) {
        ioloop_stop(loop);
    }
    return signo == SIGUSR1 ? 0 : -EIO;
}

static int
cb_stop(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

static ioloop_loop_t *
new_loop(void)
{
    char err[256];
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));

    assert_non_null(loop);
    ioloop__set_clock(loop, fake_clock, NULL);
    memset(seen, 0, sizeof(seen));
    return loop;
}

static void
test_subscribers_run_on_the_loop(void **state)
{
    ioloop_loop_t *loop = new_loop();
    int a, b;

    (void) state;
    a = ioloop_signal_subscribe(loop, SIGUSR1, on_sig, (void *) 0);
    b = ioloop_signal_subscribe(loop, SIGUSR1, on_sig, (void *) 1);
    assert_true(a > 0 && b > 0 && a != b);
    raise(SIGUSR1);
    raise(SIGUSR1); /* before the loop runs: may be reported once */
    assert_int_equal(seen[0], 0); /* nothing runs inside the handler */
    ioloop_call_later(loop, 10 * IOLOOP_NS_PER_S, cb_stop, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(ioloop_signal_unsubscribe(loop, a), 0);
    assert_int_equal(ioloop_signal_unsubscribe(loop, a), -ENOENT);
    assert_int_equal(ioloop_signal_unsubscribe(loop, b), 0);
    ioloop_loop_free(loop);
}

static void
test_reserved_signals_refused(void **state)
{
    ioloop_loop_t *loop = new_loop();
    static const int reserved[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,
                                   SIGFPE,  SIGILL,  SIGUSR2, SIGPIPE};

    (void) state;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        assert_int_equal(ioloop_signal_subscribe(loop, reserved[i], on_sig,
                                                 NULL),
                         -EINVAL);
    }
    assert_int_equal(ioloop_signal_subscribe(loop, 0, on_sig, NULL), -EINVAL);
    assert_int_equal(ioloop_signal_subscribe(loop, SIGUSR1, NULL, NULL),
                     -EINVAL);
    ioloop_loop_free(loop);
}

static void
test_default_disposition_restored(void **state)
{
    ioloop_loop_t *loop = new_loop();
    struct sigaction sa;
    int id;

    (void) state;
    id = ioloop_signal_subscribe(loop, SIGHUP, on_sig, (void *) 0);
    sigaction(SIGHUP, NULL, &sa);
    assert_true(sa.sa_handler != SIG_DFL);
    ioloop_signal_unsubscribe(loop, id);
    sigaction(SIGHUP, NULL, &sa);
    assert_true(sa.sa_handler == SIG_DFL);
    ioloop_loop_free(loop);
}

static void
test_one_loop_owns_signals(void **state)
{
    ioloop_loop_t *a = new_loop(), *b = new_loop();
    int id;

    (void) state;
    id = ioloop_signal_subscribe(a, SIGUSR1, on_sig, NULL);
    assert_true(id > 0);
    assert_int_equal(ioloop_signal_subscribe(b, SIGUSR1, on_sig, NULL),
                     -EBUSY);
    ioloop_signal_unsubscribe(a, id);
    id = ioloop_signal_subscribe(b, SIGUSR1, on_sig, NULL);
    assert_true(id > 0);
    ioloop_signal_unsubscribe(b, id);
    ioloop_loop_free(a);
    ioloop_loop_free(b);
}

static void
test_owner_subscriptions_removed(void **state)
{
    ioloop_loop_t *loop = new_loop();
    static struct ioloop_owner plugin = {.name = "plugin"};
    int host_id;

    (void) state;
    host_id = ioloop__signal_subscribe_host(loop, SIGUSR2, on_sig,
                                            (void *) 0);
    assert_true(host_id > 0);
    ioloop__set_owner(loop, &plugin);
    assert_true(ioloop_signal_subscribe(loop, SIGUSR1, on_sig, NULL) > 0);
    assert_true(ioloop_signal_subscribe(loop, SIGHUP, on_sig, NULL) > 0);
    ioloop__set_owner(loop, NULL);
    assert_int_equal(ioloop__signal_unsubscribe_owner(loop, &plugin), 2);
    /* The host's own subscription stays and still works. */
    raise(SIGUSR2);
    ioloop_call_later(loop, 10 * IOLOOP_NS_PER_S, cb_stop, NULL);
    ioloop_start(loop);
    assert_int_equal(seen[0], 1);
    assert_int_equal(ioloop_signal_unsubscribe(loop, host_id), 0);
    ioloop_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscribers_run_on_the_loop),
        cmocka_unit_test(test_reserved_signals_refused),
        cmocka_unit_test(test_default_disposition_restored),
        cmocka_unit_test(test_one_loop_owns_signals),
        cmocka_unit_test(test_owner_subscriptions_removed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
