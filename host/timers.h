/*
 * host/timers.h: one-shot timers in an array min-heap ordered by
 * (deadline, sequence), so equal deadlines fire in the order they were
 * added (libuv's start_id). Cancellation is lazy: a cancelled timer stays
 * in the heap until it reaches the top or the heap is compacted, which
 * happens when cancelled entries exceed 512 and half the heap (tornado).
 *
 * Timer state lives in a slot array indexed by the handle; a handle
 * carries the slot's generation, so a stale handle (fired or cancelled)
 * is recognised and cancelling it is harmless.
 */
#ifndef IOLOOP_HOST_TIMERS_H
#define IOLOOP_HOST_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include <ioloop/loop.h>

struct ioloop_owner;

#define IOLOOP_COMPACT_MIN 512

struct ioloop_timer_slot {
    ioloop_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
    uint32_t gen;   /* bumped each time the slot is freed */
    uint32_t state; /* enum in timers.c */
    uint32_t next_free;
};

struct ioloop_heap_entry {
    ioloop_time_t deadline;
    uint64_t seq;
    uint32_t slot;
};

struct ioloop_timers {
    struct ioloop_heap_entry *heap;
    size_t len;
    size_t cap;
    struct ioloop_timer_slot *slots;
    uint32_t nslots;
    uint32_t slots_cap;
    uint32_t free_head; /* UINT32_MAX when empty */
    uint32_t bump;      /* slots from here to nslots are free, unlisted */
    uint64_t seq;
    size_t ncancelled; /* cancelled entries still in the heap */
    uint32_t *due;     /* slots collected by ioloop__timers_collect_due */
    size_t ndue;
    size_t due_cap;
    uint64_t compactions;
};

/* A due timer, ready to run once ioloop__timers_take released its slot. */
struct ioloop_due_timer {
    ioloop_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
};

void ioloop__timers_init(struct ioloop_timers *t);
void ioloop__timers_free(struct ioloop_timers *t);

/* Adds a timer; returns its handle, or 0 with errno = ENOMEM. */
ioloop_timer_t ioloop__timers_add(struct ioloop_timers *t,
                                  ioloop_time_t deadline, ioloop_cb cb,
                                  void *arg, const struct ioloop_owner *owner);

/*
 * Cancels a pending or collected timer: 0, or -ENOENT when the handle is
 * stale (already fired or cancelled) or was never valid.
 */
int ioloop__timers_cancel(struct ioloop_timers *t, ioloop_timer_t handle);

/*
 * Drops cancelled timers from the top of the heap and stores the earliest
 * live deadline in *deadline. Returns 0, or -1 when no timer is pending.
 */
int ioloop__timers_next(struct ioloop_timers *t, ioloop_time_t *deadline);

/*
 * Moves every timer due at now out of the heap into the due list, before
 * any of them runs, so that a timer added by one of them cannot run in
 * the same pass. Returns the number collected.
 */
size_t ioloop__timers_collect_due(struct ioloop_timers *t, ioloop_time_t now);

/*
 * Releases the i-th collected slot and copies what to run into *out.
 * Returns 1 when it must run, 0 when it was cancelled meanwhile. After the
 * last index, call ioloop__timers_clear_due.
 */
int ioloop__timers_take(struct ioloop_timers *t, size_t i,
                        struct ioloop_due_timer *out);
void ioloop__timers_clear_due(struct ioloop_timers *t);

/* Live (not cancelled) timers waiting in the heap. */
static inline size_t
ioloop__timers_pending(const struct ioloop_timers *t)
{
    return t->len - t->ncancelled;
}

#endif /* IOLOOP_HOST_TIMERS_H */
