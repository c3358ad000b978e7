/* host/core/signals.c: signal subscriptions dispatched on the loop thread. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "log.h"
#include "watchdog.h"

struct subscription {
    int id; /* 0: free */
    int signo;
    ioloop_signal_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
};

static struct subscription subs[IOLOOP_MAX_SIGNAL_SUBS];
static int next_id = 1;
static ioloop_loop_t *owner_loop;           /* the loop signals post to */
static volatile sig_atomic_t pending[NSIG]; /* delivered, not dispatched */
static atomic_int posted;                   /* dispatch is queued */
static struct sigaction saved[NSIG];        /* dispositions to restore */

static int subscribe(ioloop_loop_t *loop, int signo, ioloop_signal_cb cb,
                     void *arg);
static void on_signal(int signo);
static int dispatch(ioloop_loop_t *loop, void *arg);
static bool watched(int signo);

int
ioloop_signal_subscribe(ioloop_loop_t *loop, int signo, ioloop_signal_cb cb,
                        void *arg)
{
    switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGUSR2:
    case SIGPIPE:
    case IOLOOP_WATCHDOG_SIGNAL:
        return -EINVAL;
    default:
        return subscribe(loop, signo, cb, arg);
    }
}

int
ioloop__signal_subscribe_host(ioloop_loop_t *loop, int signo,
                              ioloop_signal_cb cb, void *arg)
{
    return subscribe(loop, signo, cb, arg);
}

int
ioloop_signal_unsubscribe(ioloop_loop_t *loop, int id)
{
    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        int signo = subs[i].signo;

        if (subs[i].id != id || id == 0 || loop != owner_loop) {
            continue;
        }
        subs[i] = (struct subscription){0};
        if (!watched(signo)) {
            sigaction(signo, &saved[signo], NULL);
        }
        for (int j = 0; j < IOLOOP_MAX_SIGNAL_SUBS; j++) {
            if (subs[j].id != 0) {
                return 0;
            }
        }
        owner_loop = NULL; /* the last one: another loop may take over */
        return 0;
    }
    return -ENOENT;
}

int
ioloop__signal_unsubscribe_owner(ioloop_loop_t *loop,
                                 const struct ioloop_owner *owner)
{
    int n = 0;

    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        if (subs[i].id != 0 && subs[i].owner == owner
            && ioloop_signal_unsubscribe(loop, subs[i].id) == 0) {
            n++;
        }
    }
    return n;
}

static int
subscribe(ioloop_loop_t *loop, int signo, ioloop_signal_cb cb, void *arg)
{
    struct sigaction sa = {0};
    int slot = -1;

    if (signo <= 0 || signo >= NSIG || cb == NULL) {
        return -EINVAL;
    }
    if (owner_loop != NULL && owner_loop != loop) {
        return -EBUSY;
    }
    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS && slot < 0; i++) {
        if (subs[i].id == 0) {
            slot = i;
        }
    }
    if (slot < 0) {
        return -ENOSPC;
    }
    if (!watched(signo)) {
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(signo, &sa, &saved[signo]) < 0) {
            return -errno;
        }
    }
    owner_loop = loop;
    subs[slot] = (struct subscription){next_id++, signo, cb, arg,
                                       ioloop__current_owner(loop)};
    return subs[slot].id;
}

/* Async-signal-safe: a flag, and at most one posted dispatch. */
static void
on_signal(int signo)
{
    ioloop_loop_t *loop = owner_loop;

    pending[signo] = 1;
    if (loop != NULL && atomic_exchange(&posted, 1) == 0
        && ioloop_add_callback_from_signal(loop, dispatch, NULL) < 0) {
        atomic_store(&posted, 0);
    }
}

/* Runs every subscriber of every delivered signal, in subscription order
 * (by slot). A subscriber may unsubscribe anything meanwhile. */
static int
dispatch(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    atomic_store(&posted, 0);
    for (int signo = 1; signo < NSIG; signo++) {
        if (!pending[signo]) {
            continue;
        }
        pending[signo] = 0;
        for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
            struct subscription s = subs[i];
            const struct ioloop_owner *previous;
            int rc;

            if (s.id == 0 || s.signo != signo) {
                continue;
            }
            previous = ioloop__set_owner(loop, s.owner);
            rc = s.cb(loop, signo, s.arg);
            if (rc < 0) {
                IOLOOP_LOG(IOLOOP_LOG_ERROR, ioloop__owner_name(loop),
                           "signal %d handler failed: %s", signo,
                           strerror(-rc));
            }
            ioloop__set_owner(loop, previous);
        }
    }
    return 0;
}

static bool
watched(int signo)
{
    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        if (subs[i].id != 0 && subs[i].signo == signo) {
            return true;
        }
    }
    return false;
}
