/*
 * host/core/periodic.c: periodic callbacks on top of one-shot timers
 * (tornado's PeriodicCallback): missed runs are skipped rather than run in
 * a burst, and jitter spreads the runs of many instances.
 */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct ioloop_periodic_s {
    ioloop_time_t period;
    double jitter;
    ioloop_cb cb;
    void *arg;
    ioloop_time_t next; /* deadline of the next run */
    ioloop_timer_t timer;
    uint64_t rng;        /* xorshift64 state for the jitter */
    bool in_callback;    /* cb is running: stop must not free yet */
    bool stop_requested; /* stopped from inside cb: free after it */
    /* The owner's list (struct ioloop_owner.periodics); NULL owner: the
     * host's, unlisted. */
    struct ioloop_owner *owner;
    ioloop_periodic_t *owner_prev;
    ioloop_periodic_t *owner_next;
};

static int periodic_run(ioloop_loop_t *loop, void *arg);
static int schedule_next(ioloop_loop_t *loop, ioloop_periodic_t *p);
static void periodic_free(ioloop_periodic_t *p);

ioloop_periodic_t *
ioloop_periodic_start(ioloop_loop_t *loop, ioloop_time_t period,
                      double jitter, ioloop_cb cb, void *arg)
{
    ioloop_periodic_t *p;

    if (period <= 0 || cb == NULL || !(jitter >= 0.0 && jitter < 1.0)) {
        errno = EINVAL;
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->period = period;
    p->jitter = jitter;
    p->cb = cb;
    p->arg = arg;
    p->next = ioloop_time(loop);
    p->rng = (uint64_t) (uintptr_t) p ^ (uint64_t) p->next
             ^ 0x9e3779b97f4a7c15ull;
    if (schedule_next(loop, p) < 0) {
        free(p);
        return NULL;
    }
    /* Owners are the host's objects; the API hands them out as const. */
    p->owner = (struct ioloop_owner *) ioloop__current_owner(loop);
    if (p->owner != NULL) {
        p->owner_next = p->owner->periodics;
        if (p->owner_next != NULL) {
            p->owner_next->owner_prev = p;
        }
        p->owner->periodics = p;
    }
    return p;
}

void
ioloop_periodic_stop(ioloop_loop_t *loop, ioloop_periodic_t *p)
{
    if (p == NULL) {
        return;
    }
    if (p->in_callback) {
        p->stop_requested = true;
        return;
    }
    ioloop_cancel(loop, p->timer);
    periodic_free(p);
}

size_t
ioloop__periodics_release_owner(ioloop_loop_t *loop,
                                const struct ioloop_owner *owner)
{
    size_t n = 0;

    while (owner->periodics != NULL) {
        ioloop_periodic_t *p = owner->periodics;

        ioloop_cancel(loop, p->timer);
        periodic_free(p);
        n++;
    }
    return n;
}

static int
periodic_run(ioloop_loop_t *loop, void *arg)
{
    ioloop_periodic_t *p = arg;
    int rc;

    p->in_callback = true;
    rc = p->cb(loop, p->arg);
    p->in_callback = false;
    if (p->stop_requested) {
        periodic_free(p);
        return rc;
    }
    if (schedule_next(loop, p) < 0) {
        return -ENOMEM;
    }
    return rc;
}

/*
 * Advances p->next by one (jittered) period; when that is already in the
 * past, skips whole periods so the next run is in the future. A deadline
 * more than a period ahead (a clock that stepped back) restarts from now.
 */
static int
schedule_next(ioloop_loop_t *loop, ioloop_periodic_t *p)
{
    /* Fresh, not the iteration's cached time: cb may have blocked. */
    ioloop_time_t now = ioloop__update_time(loop);
    ioloop_time_t period = p->period;

    if (p->jitter > 0.0) {
        double r;

        p->rng ^= p->rng << 13;
        p->rng ^= p->rng >> 7;
        p->rng ^= p->rng << 17;
        r = (double) (p->rng >> 11) / 9007199254740992.0; /* [0, 1) */
        period = (ioloop_time_t) ((double) period
                                  * (1.0 + p->jitter * (r - 0.5)));
        if (period < 1) {
            period = 1;
        }
    }
    if (p->next > now + p->period) {
        p->next = now;
    }
    if (p->next <= now) {
        p->next += ((now - p->next) / period + 1) * period;
    } else {
        p->next += period;
    }
    p->timer = ioloop_call_at(loop, p->next, periodic_run, p);
    return p->timer != 0 ? 0 : -1;
}

/* Unlinks p from its owner's list and frees it. */
static void
periodic_free(ioloop_periodic_t *p)
{
    if (p->owner != NULL) {
        if (p->owner_prev != NULL) {
            p->owner_prev->owner_next = p->owner_next;
        } else {
            p->owner->periodics = p->owner_next;
        }
        if (p->owner_next != NULL) {
            p->owner_next->owner_prev = p->owner_prev;
        }
    }
    free(p);
}
