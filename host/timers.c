/* host/timers.c: min-heap of one-shot timers, lazy cancel, compaction. */
#include "timers.h"

#include <errno.h>
#include <stdlib.h>

enum {
    SLOT_FREE = 0,
    SLOT_PENDING,   /* in the heap */
    SLOT_CANCELLED, /* in the heap, will be dropped */
    SLOT_DUE,       /* collected, about to run */
    SLOT_DUE_CANCELLED
};

#define NO_SLOT UINT32_MAX

static int grow(void **p, size_t *cap, size_t elem, size_t need);
static void sift_up(struct ioloop_heap_entry *h, size_t i);
static void sift_down(struct ioloop_heap_entry *h, size_t len, size_t i);
static void heap_pop(struct ioloop_timers *t);
static void compact(struct ioloop_timers *t);
static void slot_release(struct ioloop_timers *t, uint32_t i);

void
ioloop__timers_init(struct ioloop_timers *t)
{
    *t = (struct ioloop_timers){.free_head = NO_SLOT};
}

void
ioloop__timers_free(struct ioloop_timers *t)
{
    free(t->heap);
    free(t->slots);
    free(t->due);
    ioloop__timers_init(t);
}

ioloop_timer_t
ioloop__timers_add(struct ioloop_timers *t, ioloop_time_t deadline,
                   ioloop_cb cb, void *arg, const struct ioloop_owner *owner)
{
    struct ioloop_timer_slot *s;
    uint32_t i;

    if (t->len == t->cap
        && grow((void **) &t->heap, &t->cap, sizeof(*t->heap), t->len + 1)
               < 0) {
        return 0;
    }
    if (t->len == 0 && t->ndue == 0) {
        /* Every slot is free: hand them out in address order again (a
         * fire pass leaves the free list shuffled, and bulk adds into
         * random slots miss the cache). Generations go on. */
        t->free_head = NO_SLOT;
        t->bump = 0;
    }
    if (t->free_head != NO_SLOT) {
        i = t->free_head;
        t->free_head = t->slots[i].next_free;
    } else if (t->bump < t->nslots) {
        i = t->bump++;
    } else {
        size_t cap = t->slots_cap;

        if (t->nslots == UINT32_MAX - 1) {
            errno = ENOMEM;
            return 0;
        }
        if (t->nslots == cap
            && grow((void **) &t->slots, &cap, sizeof(*t->slots),
                    (size_t) t->nslots + 1) < 0) {
            return 0;
        }
        t->slots_cap = (uint32_t) cap;
        i = t->nslots++;
        t->bump = t->nslots;
        t->slots[i].gen = 1;
    }
    s = &t->slots[i];
    s->cb = cb;
    s->arg = arg;
    s->owner = owner;
    s->state = SLOT_PENDING;
    t->heap[t->len] = (struct ioloop_heap_entry){deadline, t->seq++, i};
    sift_up(t->heap, t->len++);
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
    if (s->gen != (uint32_t) (handle >> 32)) {
        return -ENOENT;
    }
    switch (s->state) {
    case SLOT_PENDING:
        s->state = SLOT_CANCELLED;
        s->cb = NULL;
        s->arg = NULL;
        t->ncancelled++;
        if (t->ncancelled > IOLOOP_COMPACT_MIN && t->ncancelled > t->len / 2) {
            compact(t);
        }
        return 0;
    case SLOT_DUE:
        s->state = SLOT_DUE_CANCELLED;
        return 0;
    default:
        return -ENOENT;
    }
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

size_t
ioloop__timers_collect_due(struct ioloop_timers *t, ioloop_time_t now)
{
    while (t->len > 0 && t->heap[0].deadline <= now) {
        uint32_t i = t->heap[0].slot;

        heap_pop(t);
        if (t->slots[i].state == SLOT_CANCELLED) {
            t->ncancelled--;
            slot_release(t, i);
            continue;
        }
        /* Grows only when more timers are due at once than ever before. */
        if (t->ndue == t->due_cap
            && grow((void **) &t->due, &t->due_cap, sizeof(*t->due),
                    t->ndue + 1) < 0) {
            /* Out of memory: put it back and run it on a later pass. */
            t->heap[t->len] = (struct ioloop_heap_entry){now, t->seq++, i};
            sift_up(t->heap, t->len++);
            break;
        }
        t->slots[i].state = SLOT_DUE;
        t->due[t->ndue++] = i;
    }
    return t->ndue;
}

int
ioloop__timers_take(struct ioloop_timers *t, size_t i,
                    struct ioloop_due_timer *out)
{
    uint32_t si = t->due[i];
    struct ioloop_timer_slot *s = &t->slots[si];
    int run = (s->state == SLOT_DUE);

    out->cb = s->cb;
    out->arg = s->arg;
    out->owner = s->owner;
    /* Released before it runs, so cancelling its own handle is a no-op. */
    slot_release(t, si);
    return run;
}

void
ioloop__timers_clear_due(struct ioloop_timers *t)
{
    t->ndue = 0;
}

/* Doubles *cap until it holds need elements. 0, or -1 with errno. */
static int
grow(void **p, size_t *cap, size_t elem, size_t need)
{
    size_t n = *cap ? *cap : 16;
    void *q;

    while (n < need) {
        n *= 2;
    }
    q = realloc(*p, n * elem);
    if (q == NULL) {
        errno = ENOMEM;
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

static inline int
entry_less(const struct ioloop_heap_entry *a, const struct ioloop_heap_entry *b)
{
    return a->deadline < b->deadline
           || (a->deadline == b->deadline && a->seq < b->seq);
}

static void
sift_up(struct ioloop_heap_entry *h, size_t i)
{
    struct ioloop_heap_entry e = h[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!entry_less(&e, &h[parent])) {
            break;
        }
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static void
sift_down(struct ioloop_heap_entry *h, size_t len, size_t i)
{
    struct ioloop_heap_entry e = h[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= len) {
            break;
        }
        if (child + 1 < len && entry_less(&h[child + 1], &h[child])) {
            child++;
        }
        if (!entry_less(&h[child], &e)) {
            break;
        }
        h[i] = h[child];
        i = child;
    }
    h[i] = e;
}

static void
heap_pop(struct ioloop_timers *t)
{
    t->len--;
    if (t->len > 0) {
        t->heap[0] = t->heap[t->len];
        sift_down(t->heap, t->len, 0);
    }
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
    for (size_t i = kept / 2; i-- > 0;) {
        sift_down(t->heap, t->len, i);
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
    s->next_free = t->free_head;
    t->free_head = i;
}
