/*
 * host/core/timers.h: one-shot timers in a 4-ary min-heap (libev's) ordered by
 * (deadline, sequence), so equal deadlines fire in the order they were
 * added (libuv's start_id).
 *
 * Cancellation is lazy (tornado): cancel flags the timer's slot in O(1)
 * and the entry stays in the heap until it reaches the top or the heap is
 * compacted. Compaction (drop every cancelled entry, rebuild in O(n)) runs
 * in cancel once cancelled entries exceed 512 and half the heap, which
 * bounds memory when timers are cancelled without ever firing, and before
 * a fire pass once they exceed 512 and a quarter of it, because popping a
 * dead entry costs a whole sift-down while compaction costs a sequential
 * step per entry.
 *
 * Timer state lives in a slot array indexed by the handle; a handle
 * carries the slot's generation, so a stale handle (fired or cancelled)
 * is recognised and cancelling it is harmless.
 *
 * A fire pass (tornado's ordering): ioloop__timers_begin_pass fixes, at
 * the top of an iteration, which timers are due (deadline <= now, added
 * before that point); ioloop__timers_pop_due then pops and returns them
 * one by one, after the iteration's callbacks ran. A timer added in
 * between, even with a deadline in the past, waits for the next pass.
 */
#ifndef IOLOOP_HOST_TIMERS_H
#define IOLOOP_HOST_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include <ioloop/loop.h>

struct ioloop_owner;

#define IOLOOP_COMPACT_MIN 512

/* ioloop_timers.cut when no pass is open: below every deadline. */
#define IOLOOP_NO_PASS INT64_MIN

struct ioloop_timer_slot {
    ioloop_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
    union {
        uint64_t seq;       /* pending or cancelled: order of addition */
        uint32_t next_free; /* free: the next free slot */
    } u;
    uint32_t gen;   /* bumped each time the slot is freed */
    uint32_t state; /* enum in timers.c */
};

/* 16 bytes: a node's four children share one 64-byte cache line. */
struct ioloop_heap_entry {
    ioloop_time_t deadline;
    uint32_t slot;
};

struct ioloop_timers {
    struct ioloop_heap_entry *heap; /* 64-byte aligned groups of children */
    size_t len;
    size_t cap;
    struct ioloop_timer_slot *slots;
    uint32_t nslots;
    uint32_t slots_cap;
    uint32_t free_head; /* UINT32_MAX when empty */
    uint32_t bump;      /* slots from here to nslots are free, unlisted */
    uint64_t seq;
    size_t ncancelled; /* cancelled entries still in the heap */
    ioloop_time_t cut; /* the open pass's now, or IOLOOP_NO_PASS */
    uint64_t cut_seq;  /* the first seq the open pass leaves out */
    uint64_t compactions;
};

/* A due timer, its slot already released: what to run and for whom. */
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
 * Cancels a pending timer: 0, or -ENOENT when the handle is stale
 * (already fired, being run or cancelled) or was never valid.
 */
int ioloop__timers_cancel(struct ioloop_timers *t, ioloop_timer_t handle);

/*
 * Cancels every pending timer of owner (an instance being released);
 * returns how many. Linear in the slots: teardown only, never per event.
 */
size_t ioloop__timers_cancel_owner(struct ioloop_timers *t,
                                   const struct ioloop_owner *owner);

/*
 * Drops cancelled timers from the top of the heap and stores the earliest
 * live deadline in *deadline. Returns 0, or -1 when no timer is pending.
 */
int ioloop__timers_next(struct ioloop_timers *t, ioloop_time_t *deadline);

void ioloop__timers_open_pass(struct ioloop_timers *t, ioloop_time_t now);

/*
 * Opens a fire pass when a timer may be due at now: the pass will run the
 * timers with deadline <= now added before this call, and no other.
 * Inline: the common "nothing due" case costs two loads.
 */
static inline void
ioloop__timers_begin_pass(struct ioloop_timers *t, ioloop_time_t now)
{
    if (t->len > 0 && t->heap[0].deadline <= now) {
        ioloop__timers_open_pass(t, now);
    }
}

/* 1 while a pass is open (ioloop__timers_pop_due has more to say). */
static inline int
ioloop__timers_in_pass(const struct ioloop_timers *t)
{
    return t->cut != IOLOOP_NO_PASS;
}

/*
 * Pops the open pass's next due timer, releases its slot (so cancelling
 * its own handle from its callback is a harmless -ENOENT) and copies what
 * to run into *out: 1. Timers cancelled meanwhile are skipped. 0 when the
 * pass is over; the pass is then closed.
 */
int ioloop__timers_pop_due(struct ioloop_timers *t,
                           struct ioloop_due_timer *out);

/* Live (not cancelled) timers waiting in the heap. */
static inline size_t
ioloop__timers_pending(const struct ioloop_timers *t)
{
    return t->len - t->ncancelled;
}

#endif /* IOLOOP_HOST_TIMERS_H */
