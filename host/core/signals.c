/* host/core/signals.c: signal subscriptions dispatched on the loop thread. */
#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct subscription {
    int id; /* 0: free */
    int signo;
    ioloop_signal_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
};

/* A loop's subscriptions (its IOLOOP_SLOT_SIGNALS): the loop thread alone
 * reads and writes them. */
struct loop_signals {
    struct subscription subs[IOLOOP_MAX_SIGNAL_SUBS];
    int next_id;
};

/*
 * What is process-wide because signals are: which loop each signal posts
 * to, and the disposition to restore. lock serializes subscribe and
 * unsubscribe of every loop (not the handler, which only loads).
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(ioloop_loop_t *) signal_loop[NSIG];
static atomic_int pending[NSIG];     /* delivered, dispatch is posted */
static struct sigaction saved[NSIG]; /* dispositions to restore */
/* Handlers running now, on any thread: see release_signal. */
static atomic_int in_handler;

static struct loop_signals *loop_signals(ioloop_loop_t *loop, bool create);
static void free_signals(ioloop_loop_t *loop, void *data);
static int subscribe(ioloop_loop_t *loop, int signo, ioloop_signal_cb cb,
                     void *arg);
static void release_signal(int signo);
static void on_signal(int signo);
static int dispatch(ioloop_loop_t *loop, void *arg);
static bool watched(const struct loop_signals *ls, int signo);

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
    struct loop_signals *ls = loop_signals(loop, false);

    if (ls == NULL || id <= 0) {
        return -ENOENT;
    }
    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        int signo = ls->subs[i].signo;

        if (ls->subs[i].id != id) {
            continue;
        }
        pthread_mutex_lock(&lock);
        ls->subs[i] = (struct subscription){0};
        if (!watched(ls, signo)) {
            release_signal(signo);
        }
        pthread_mutex_unlock(&lock);
        return 0;
    }
    return -ENOENT;
}

int
ioloop__signal_unsubscribe_owner(ioloop_loop_t *loop,
                                 const struct ioloop_owner *owner)
{
    struct loop_signals *ls = loop_signals(loop, false);
    int n = 0;

    for (int i = 0; ls != NULL && i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        if (ls->subs[i].id != 0 && ls->subs[i].owner == owner
            && ioloop_signal_unsubscribe(loop, ls->subs[i].id) == 0) {
            n++;
        }
    }
    return n;
}

/* The loop's subscriptions; created on first use when create is set
 * (NULL with errno ENOMEM when that fails), else NULL when none. */
static struct loop_signals *
loop_signals(ioloop_loop_t *loop, bool create)
{
    struct loop_signals *ls = ioloop__slot(loop, IOLOOP_SLOT_SIGNALS);

    if (ls == NULL && create) {
        ls = calloc(1, sizeof(*ls));
        if (ls == NULL) {
            return NULL;
        }
        ls->next_id = 1;
        ioloop__slot_set(loop, IOLOOP_SLOT_SIGNALS, ls, free_signals);
    }
    return ls;
}

/* ioloop_loop_free: ends the loop's subscriptions, then frees them. */
static void
free_signals(ioloop_loop_t *loop, void *data)
{
    struct loop_signals *ls = data;

    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        if (ls->subs[i].id != 0) {
            ioloop_signal_unsubscribe(loop, ls->subs[i].id);
        }
    }
    free(ls);
}

static int
subscribe(ioloop_loop_t *loop, int signo, ioloop_signal_cb cb, void *arg)
{
    struct loop_signals *ls;
    ioloop_loop_t *taken = NULL;
    int slot = -1, rc;

    if (signo <= 0 || signo >= NSIG || cb == NULL) {
        return -EINVAL;
    }
    ls = loop_signals(loop, true);
    if (ls == NULL) {
        return -ENOMEM;
    }
    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS && slot < 0; i++) {
        if (ls->subs[i].id == 0) {
            slot = i;
        }
    }
    if (slot < 0) {
        return -ENOSPC;
    }
    pthread_mutex_lock(&lock);
    if (!atomic_compare_exchange_strong(&signal_loop[signo], &taken, loop)
        && taken != loop) {
        rc = -EBUSY; /* another loop has it */
        goto out;
    }
    if (taken == NULL) {
        struct sigaction sa = {0};

        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(signo, &sa, &saved[signo]) < 0) {
            rc = -errno;
            atomic_store(&signal_loop[signo], NULL);
            goto out;
        }
    }
    ls->subs[slot] = (struct subscription){ls->next_id++, signo, cb, arg,
                                           ioloop__current_owner(loop)};
    rc = ls->subs[slot].id;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

/*
 * The loop's last subscriber to signo left: the default disposition comes
 * back and another loop may take the signal. A handler that loaded this
 * loop just before may still be posting to it, on another thread: wait
 * for it, so that the loop can be freed once this returns (a handler
 * interrupting this thread has finished before it resumes). Its dispatch
 * may never run: the pending flag is cleared for the next holder.
 */
static void
release_signal(int signo)
{
    sigaction(signo, &saved[signo], NULL);
    atomic_store(&signal_loop[signo], NULL);
    while (atomic_load(&in_handler) != 0) {
        sched_yield();
    }
    atomic_store(&pending[signo], 0);
}

/* Async-signal-safe: a flag, and at most one posted dispatch per signal
 * until it runs. A post that fails clears the flag: the next delivery
 * tries again. */
static void
on_signal(int signo)
{
    ioloop_loop_t *loop;

    atomic_fetch_add(&in_handler, 1);
    loop = atomic_load(&signal_loop[signo]);
    if (loop != NULL && atomic_exchange(&pending[signo], 1) == 0
        && ioloop_add_callback_from_signal(loop, dispatch,
                                           (void *) (intptr_t) signo)
               < 0) {
        atomic_store(&pending[signo], 0);
    }
    atomic_fetch_sub(&in_handler, 1);
}

/* Runs every subscriber of the delivered signal, in subscription order
 * (by slot). A subscriber may unsubscribe anything meanwhile. */
static int
dispatch(ioloop_loop_t *loop, void *arg)
{
    int signo = (int) (intptr_t) arg;
    struct loop_signals *ls = loop_signals(loop, false);

    atomic_store(&pending[signo], 0);
    for (int i = 0; ls != NULL && i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        struct subscription s = ls->subs[i];
        const struct ioloop_owner *previous;
        int rc;

        if (s.id == 0 || s.signo != signo) {
            continue;
        }
        previous = ioloop__set_owner(loop, s.owner);
        rc = s.cb(loop, signo, s.arg);
        if (rc < 0) {
            IOLOOP_LOG(IOLOOP_LOG_ERROR, ioloop__owner_name(loop),
                       "signal %d handler failed: %s", signo, strerror(-rc));
        }
        ioloop__set_owner(loop, previous);
    }
    return 0;
}

static bool
watched(const struct loop_signals *ls, int signo)
{
    for (int i = 0; i < IOLOOP_MAX_SIGNAL_SUBS; i++) {
        if (ls->subs[i].id != 0 && ls->subs[i].signo == signo) {
            return true;
        }
    }
    return false;
}
