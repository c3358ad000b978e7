/* host/core/timers.c: 4-ary min-heap of one-shot timers, lazy cancel. */
#include "timers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    SLOT_FREE = 0,
    SLOT_PENDING,  /* in the heap */
    SLOT_CANCELLED /* in the heap, will be dropped */
};

#define NO_SLOT UINT32_MAX

/*
 * The heap is 4-ary with the root at index 0: the children of i are
 * 4i+1 .. 4i+4. The array starts HEAP_PAD entries into a 64-byte aligned
 * block, so that every group of four children fills one cache line.
 */
#define HEAP_PAD 3
#define PARENT(i) (((i) - 1) / 4)
#define FIRST_CHILD(i) (4 * (i) + 1)

static int heap_grow(struct ioloop_timers *t);
static int slots_grow(struct ioloop_timers *t);
static void sift_up(struct ioloop_timers *t, size_t i);
static void sift_down(struct ioloop_timers *t, size_t i);
static void heap_pop(struct ioloop_timers *t);
static void compact(struct ioloop_timers *t);
static void slot_release(struct ioloop_timers *t, uint32_t i);

void
ioloop__timers_init(struct ioloop_timers *t)
{
    *t = (struct ioloop_timers){.free_head = NO_SLOT, .cut = IOLOOP_NO_PASS};
}

void
ioloop__timers_free(struct ioloop_timers *t)
{
    if (t->heap != NULL) {
        free(t->heap - HEAP_PAD);
    }
    free(t->slots);
    ioloop__timers_init(t);
}

ioloop_timer_t
ioloop__timers_add(struct ioloop_timers *t, ioloop_time_t deadline,
                   ioloop_cb cb, void *arg, const struct ioloop_owner *owner)
{
    struct ioloop_timer_slot *s;
    uint32_t i;

    if (t->len == t->cap && heap_grow(t) < 0) {
        return 0;
    }
    if (t->len == 0) {
        /* Every slot is free: hand them out in address order again (a
         * fire pass leaves the free list shuffled, and bulk adds into
         * random slots miss the cache). Generations go on. */
        t->free_head = NO_SLOT;
        t->bump = 0;
    }
    if (t->free_head != NO_SLOT) {
        i = t->free_head;
        t->free_head = t->slots[i].u.next_free;
    } else if (t->bump < t->nslots) {
        i = t->bump++;
    } else {
        if (t->nslots == t->slots_cap && slots_grow(t) < 0) {
            return 0;
        }
        i = t->nslots++;
        t->bump = t->nslots;
        t->slots[i].gen = 1;
    }
    /* A timer added while a pass is open never joins it (see timers.h):
     * with the pass's now as its deadline at the earliest, it sorts after
     * every timer the pass took, and its seq excludes it. */
    if (deadline < t->cut) {
        deadline = t->cut;
    }
    s = &t->slots[i];
    s->cb = cb;
    s->arg = arg;
    s->owner = owner;
    s->u.seq = t->seq++;
    s->state = SLOT_PENDING;
    t->heap[t->len] = (struct ioloop_heap_entry){deadline, i};
    sift_up(t, t->len++);
    return ((uint64_t) s->gen << 32) | ((uint64_t) i + 1);
}

int
ioloop__timers_cancel(struct ioloop_timers *t, ioloop_timer_t handle)
{
    uint64_t low = handle & 0xffffffffu;
    struct ioloop_timer_slot *s;

    if (low == 0 || low > t->nslots) {
        return -ENOENT;
    }
    s = &t->slots[low - 1];
    if (s->gen != (uint32_t) (handle >> 32) || s->state != SLOT_PENDING) {
        return -ENOENT;
    }
    s->state = SLOT_CANCELLED;
    s->cb = NULL;
    s->arg = NULL;
    t->ncancelled++;
    /* The memory bound: never more dead entries than live ones + 512. */
    if (t->ncancelled > IOLOOP_COMPACT_MIN && t->ncancelled > t->len / 2) {
        compact(t);
    }
    return 0;
}

size_t
ioloop__timers_cancel_owner(struct ioloop_timers *t,
                            const struct ioloop_owner *owner)
{
    size_t n = 0;

    for (uint32_t i = 0; i < t->nslots; i++) {
        const struct ioloop_timer_slot *s = &t->slots[i];

        if (s->state == SLOT_PENDING && s->owner == owner
            && ioloop__timers_cancel(t, ((uint64_t) s->gen << 32)
                                            | ((uint64_t) i + 1))
                   == 0) {
            n++;
        }
    }
    return n;
}

int
ioloop__timers_next(struct ioloop_timers *t, ioloop_time_t *deadline)
{
    while (t->len > 0) {
        uint32_t i = t->heap[0].slot;

        if (t->slots[i].state != SLOT_CANCELLED) {
            *deadline = t->heap[0].deadline;
            return 0;
        }
        heap_pop(t);
        t->ncancelled--;
        slot_release(t, i);
    }
    return -1;
}

void
ioloop__timers_open_pass(struct ioloop_timers *t, ioloop_time_t now)
{
    /* Cheaper than popping the dead entries one by one: a pop walks
     * log4(len) cache lines, a compaction touches each entry once. */
    if (t->ncancelled > IOLOOP_COMPACT_MIN && t->ncancelled > t->len / 4) {
        compact(t);
    }
    t->cut = now;
    t->cut_seq = t->seq;
}

int
ioloop__timers_pop_due(struct ioloop_timers *t, struct ioloop_due_timer *out)
{
    while (t->len > 0 && t->heap[0].deadline <= t->cut) {
        uint32_t i = t->heap[0].slot;
        struct ioloop_timer_slot *s = &t->slots[i];

        if (s->state == SLOT_CANCELLED) {
            heap_pop(t);
            t->ncancelled--;
            slot_release(t, i);
            continue;
        }
        if (s->u.seq >= t->cut_seq) {
            break; /* added during the pass, clamped to its now */
        }
        heap_pop(t);
        out->cb = s->cb;
        out->arg = s->arg;
        out->owner = s->owner;
        /* Released before it runs, so cancelling its own handle is a
         * no-op. */
        slot_release(t, i);
        return 1;
    }
    t->cut = IOLOOP_NO_PASS;
    return 0;
}

/* Doubles the heap into a fresh aligned block. 0, or -1 with errno. */
static int
heap_grow(struct ioloop_timers *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    size_t bytes = (cap + HEAP_PAD) * sizeof(*t->heap);
    struct ioloop_heap_entry *block;

    if (cap > SIZE_MAX / sizeof(*t->heap) - HEAP_PAD) {
        errno = ENOMEM;
        return -1;
    }
    block = aligned_alloc(64, (bytes + 63) & ~(size_t) 63);
    if (block == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (t->heap != NULL) {
        memcpy(block + HEAP_PAD, t->heap, t->len * sizeof(*t->heap));
        free(t->heap - HEAP_PAD);
    }
    t->heap = block + HEAP_PAD;
    t->cap = cap;
    return 0;
}

/* Doubles the slot array. 0, or -1 with errno. */
static int
slots_grow(struct ioloop_timers *t)
{
    uint32_t cap;
    struct ioloop_timer_slot *s;

    if (t->slots_cap > UINT32_MAX / 4) {
        errno = ENOMEM; /* handles keep slot + 1 in 32 bits */
        return -1;
    }
    cap = t->slots_cap ? t->slots_cap * 2 : 64;
    s = realloc(t->slots, (size_t) cap * sizeof(*s));
    if (s == NULL) {
        errno = ENOMEM;
        return -1;
    }
    t->slots = s;
    t->slots_cap = cap;
    return 0;
}

/* (deadline, seq) order; seq is read only on a tie. */
static inline int
entry_less(const struct ioloop_timers *t, const struct ioloop_heap_entry *a,
           const struct ioloop_heap_entry *b)
{
    if (a->deadline != b->deadline) {
        return a->deadline < b->deadline;
    }
    return t->slots[a->slot].u.seq < t->slots[b->slot].u.seq;
}

static void
sift_up(struct ioloop_timers *t, size_t i)
{
    struct ioloop_heap_entry *h = t->heap;
    struct ioloop_heap_entry e = h[i];

    while (i > 0) {
        size_t parent = PARENT(i);

        if (!entry_less(t, &e, &h[parent])) {
            break;
        }
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

/* The smallest of the children from c (c < len): a tournament of three
 * compares when all four exist, the common case. */
static inline size_t
min_child(const struct ioloop_timers *t, size_t c, size_t len)
{
    const struct ioloop_heap_entry *h = t->heap;
    size_t min = c;

    if (c + 3 < len) {
        size_t a = entry_less(t, &h[c + 1], &h[c]) ? c + 1 : c;
        size_t b = entry_less(t, &h[c + 3], &h[c + 2]) ? c + 3 : c + 2;

        return entry_less(t, &h[b], &h[a]) ? b : a;
    }
    for (size_t k = c + 1; k < len; k++) {
        if (entry_less(t, &h[k], &h[min])) {
            min = k;
        }
    }
    return min;
}

static void
sift_down(struct ioloop_timers *t, size_t i)
{
    struct ioloop_heap_entry *h = t->heap;
    struct ioloop_heap_entry e = h[i];
    size_t len = t->len;

    while (FIRST_CHILD(i) < len) {
        size_t min = min_child(t, FIRST_CHILD(i), len);

        if (!entry_less(t, &h[min], &e)) {
            break;
        }
        h[i] = h[min];
        i = min;
    }
    h[i] = e;
}

/*
 * Removes the root. Floyd's way: the hole goes down to a leaf along the
 * smaller children, then the last entry fills it and sifts up. The last
 * entry nearly always belongs near the bottom, so this saves comparing
 * it at every level on the way down.
 */
static void
heap_pop(struct ioloop_timers *t)
{
    struct ioloop_heap_entry *h = t->heap;
    size_t len = --t->len, i = 0;

    if (len == 0) {
        return;
    }
    while (FIRST_CHILD(i) < len) {
        size_t min = min_child(t, FIRST_CHILD(i), len);

        h[i] = h[min];
        i = min;
    }
    h[i] = h[len];
    sift_up(t, i);
}

/* Drops every cancelled entry and rebuilds the heap in O(n). */
static void
compact(struct ioloop_timers *t)
{
    size_t kept = 0;

    for (size_t i = 0; i < t->len; i++) {
        uint32_t si = t->heap[i].slot;

        if (t->slots[si].state == SLOT_CANCELLED) {
            slot_release(t, si);
        } else {
            t->heap[kept++] = t->heap[i];
        }
    }
    t->len = kept;
    t->ncancelled = 0;
    for (size_t i = kept > 1 ? PARENT(kept - 1) + 1 : 0; i-- > 0;) {
        sift_down(t, i);
    }
    t->compactions++;
}

static void
slot_release(struct ioloop_timers *t, uint32_t i)
{
    struct ioloop_timer_slot *s = &t->slots[i];

    s->state = SLOT_FREE;
    s->cb = NULL;
    s->arg = NULL;
    s->owner = NULL;
    s->gen++;
    if (s->gen == 0) {
        s->gen = 1; /* keeps every handle non-zero */
    }
    s->u.next_free = t->free_head;
    t->free_head = i;
}
