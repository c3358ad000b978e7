/* io_uring.c: Linux io_uring(7) poller backend, loaded by the host as
 * io_uring.so (built when pkg-config finds liburing). */
#include <ioloop/backend.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "backend_util.h"

#define IO_URING_BACKEND_MIN_CAP 64     /* first size of the fd arrays */
#define IO_URING_BACKEND_MAX_HINT 65536 /* larger size_hints are not trusted */
#define IO_URING_BACKEND_SQ 256         /* SQ ring: SQEs per submit */
#define IO_URING_BACKEND_CQ 4096        /* CQ ring; the kernel keeps more */
#define IO_URING_BACKEND_OWN 0xffffffffu /* fd half of our POLL_REMOVEs */

/*
 * Kernel quirks worth knowing:
 *
 * 1. IORING_OP_POLL_ADD is one-shot. For level-triggered semantics poll()
 *    re-arms every fd it reported at the start of its next call; the kernel
 *    checks readiness as it arms a poll, so an fd that is still ready
 *    completes at once, during that same submit.
 * 2. A completion can outlive its purpose: a poll that fired before the
 *    POLL_REMOVE of a remove() or modify() got to it, or one left in the
 *    CQ ring when max was reached. user_data carries the fd and the fd's
 *    generation, bumped at every (re-)arm and remove, and a completion
 *    whose generation is not current is dropped here.
 * 3. A pending poll holds a reference to its file: close() neither cancels
 *    it nor lets the file go (the peer does not see the close) until the
 *    poll completes or is removed. remove() before close() matters even
 *    more than with epoll; its POLL_REMOVE goes out with the next poll().
 *    An fd closed before its POLL_ADD went out completes with -EBADF and
 *    is dropped silently.
 * 4. The kernel adds POLLERR, POLLHUP and POLLRDHUP to every mask (since
 *    5.1). We report READ and WRITE only when asked; an fd whose half-
 *    closed peer (RDHUP) is all there is waits, unarmed, for the next call.
 * 5. One io_uring_enter() per poll(): it submits, runs the task work that
 *    posts completions and waits. add/modify/remove submit early only when
 *    the SQ ring is full. The kernel keeps CQ overflow (IORING_FEAT_NODROP,
 *    5.5). An enter that submitted and then caught a signal returns the
 *    submit count, not -EINTR: an enter that brings no completion back is
 *    a timeout or a signal, 0 either way.
 * 6. The kernel opens the ring fd O_CLOEXEC (checked anyway). After fork()
 *    a child shares the rings' memory with its parent: destroy() there only
 *    unmaps and closes the child's copies; only the creator cancels polls.
 * 7. Since 6.6, kernel.io_uring_disabled=1 or 2 makes io_uring_setup()
 *    fail with EPERM (seccomp and older kernels: EPERM or ENOSYS).
 */

enum { SLOT_FREE, SLOT_ARMED, SLOT_FIRED, SLOT_DEAD };

/* What we know of one fd: indexed by fd. */
struct io_uring_slot {
    uint32_t gen;   /* generation, the high half of user_data */
    uint8_t events; /* IOLOOP_READ | IOLOOP_WRITE asked for */
    uint8_t state;  /* SLOT_*: FIRED waits for its re-arm, DEAD was closed */
};

/* Private state: the ring, the fd map and the fds to re-arm. */
struct io_uring_state {
    struct io_uring ring;        /* rings mapped, fd close-on-exec */
    pid_t pid;                   /* the creator: see quirk 6 */
    int nfds;                    /* fds added and not yet removed */
    int cap;                     /* entries in slots and fired */
    struct io_uring_slot *slots; /* fd -> slot */
    int *fired;                  /* fds reported by the last poll */
    int nfired;                  /* entries in use in fired */
};

static void *io_uring_backend_create(unsigned size_hint, char *err,
                                     size_t errlen);
static void io_uring_backend_destroy(void *state);
static int io_uring_backend_add(void *state, int fd, unsigned events);
static int io_uring_backend_modify(void *state, int fd, unsigned old_events,
                                   unsigned new_events);
static int io_uring_backend_remove(void *state, int fd, unsigned old_events);
static int io_uring_backend_poll(void *state, struct ioloop_event *events,
                                 int max, int64_t timeout_ns);
static int io_uring_backend_ctl(struct io_uring_state *st, int fd, int arm);
static int io_uring_backend_enter(struct io_uring_state *st,
                                  int64_t timeout_ns, int64_t deadline);
static int io_uring_backend_reap(struct io_uring_state *st,
                                 struct ioloop_event *events, int max,
                                 int *seen);
static int io_uring_backend_grow(struct io_uring_state *st, int fd);
static int64_t io_uring_backend_now(void);

IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "io_uring",
    .create = io_uring_backend_create,
    .destroy = io_uring_backend_destroy,
    .add = io_uring_backend_add,
    .modify = io_uring_backend_modify,
    .remove = io_uring_backend_remove,
    .poll = io_uring_backend_poll,
};

/*
 * Sets up the ring and the fd map, sized from size_hint. Returns the
 * state, or NULL with errno set and the failed call named in err, with
 * kernel.io_uring_disabled when the kernel refused (quirk 7).
 */
static void *
io_uring_backend_create(unsigned size_hint, char *err, size_t errlen)
{
    struct io_uring_params p;
    struct io_uring_state *st;
    size_t len;
    FILE *f;
    int rc, v;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        backend_error(err, errlen, "calloc");
        return NULL;
    }
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = IO_URING_BACKEND_CQ;
    rc = io_uring_queue_init_params(IO_URING_BACKEND_SQ, &st->ring, &p);
    if (rc == -EINVAL) { /* SUBMIT_ALL is 5.18: do without */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = IO_URING_BACKEND_CQ;
        rc = io_uring_queue_init_params(IO_URING_BACKEND_SQ, &st->ring, &p);
    }
    if (rc < 0) {
        free(st);
        errno = -rc;
        backend_error(err, errlen, "io_uring_setup");
        f = (rc == -EPERM || rc == -ENOSYS)
                ? fopen("/proc/sys/kernel/io_uring_disabled", "re") : NULL;
        if (f != NULL && fscanf(f, "%d", &v) == 1 && err != NULL
            && errlen > 0)
        {
            len = strlen(err);
            snprintf(err + len, errlen - len,
                     " (kernel.io_uring_disabled=%d)", v);
        }
        if (f != NULL) {
            fclose(f);
        }
        errno = -rc;
        return NULL;
    }
    st->pid = getpid();
    v = fcntl(st->ring.ring_fd, F_GETFD);
    if (v == -1 || (!(v & FD_CLOEXEC)
                    && fcntl(st->ring.ring_fd, F_SETFD, v | FD_CLOEXEC) == -1))
    {
        backend_error(err, errlen, "fcntl");
        goto fail;
    }
    if (size_hint > IO_URING_BACKEND_MAX_HINT) {
        size_hint = IO_URING_BACKEND_MAX_HINT;
    }
    if (io_uring_backend_grow(st, (int) size_hint - 1) != 0) {
        errno = ENOMEM;
        backend_error(err, errlen, "realloc");
        goto fail;
    }
    return st;

fail:
    v = errno;
    io_uring_backend_destroy(st);
    errno = v;
    return NULL;
}

/*
 * In the creating process, cancels every poll (so their files go now, not
 * when the kernel gets round to it), then unmaps and closes the ring. In a
 * forked child only unmaps and closes (quirk 6). state may be NULL.
 */
static void
io_uring_backend_destroy(void *state)
{
    struct io_uring_state *st = state;
    struct io_uring_sqe *sqe;

    if (st == NULL) {
        return;
    }
    if (st->pid == getpid() && st->nfds > 0
        && (sqe = io_uring_get_sqe(&st->ring)) != NULL)
    {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, IO_URING_BACKEND_OWN);
        (void) io_uring_submit_and_get_events(&st->ring);
    }
    io_uring_queue_exit(&st->ring);
    free(st->slots);
    free(st->fired);
    free(st);
}

/*
 * Queues a POLL_ADD for fd. Returns 0; -EBADF if fd is negative or not
 * open (checked now: the ring would only say so later); -EEXIST if fd is
 * watched already; -ENOMEM; -EBUSY if the SQ ring is full and cannot be
 * submitted.
 */
static int
io_uring_backend_add(void *state, int fd, unsigned events)
{
    struct io_uring_state *st = state;
    int rc;

    if (fd < 0) {
        return -EBADF;
    }
    if (fcntl(fd, F_GETFD) == -1) {
        return -errno;
    }
    if (io_uring_backend_grow(st, fd) != 0) {
        return -ENOMEM;
    }
    if (st->slots[fd].state != SLOT_FREE) {
        return -EEXIST;
    }
    st->slots[fd].events = (uint8_t) events;
    rc = io_uring_backend_ctl(st, fd, 1);
    if (rc == 0) {
        st->nfds++;
    }
    return rc;
}

/*
 * Cancels fd's pending poll and queues one with the new mask. Returns 0,
 * -ENOENT if fd is not watched, or -EBUSY as add() does (then the old mask
 * stays in force).
 */
static int
io_uring_backend_modify(void *state, int fd, unsigned old_events,
                        unsigned new_events)
{
    struct io_uring_state *st = state;
    uint8_t old;
    int rc;

    (void) old_events;
    if (fd < 0 || fd >= st->cap || st->slots[fd].state == SLOT_FREE) {
        return -ENOENT;
    }
    old = st->slots[fd].events;
    st->slots[fd].events = (uint8_t) new_events;
    rc = io_uring_backend_ctl(st, fd, 1);
    if (rc != 0) {
        st->slots[fd].events = old;
    }
    return rc;
}

/*
 * Cancels fd's pending poll and forgets fd; its completions, if any, are
 * dropped (quirk 2). Works the same after close(). Returns 0, -ENOENT if
 * fd is not watched, or -EBUSY (then only the kernel side lingers).
 */
static int
io_uring_backend_remove(void *state, int fd, unsigned old_events)
{
    struct io_uring_state *st = state;
    int rc;

    (void) old_events;
    if (fd < 0 || fd >= st->cap || st->slots[fd].state == SLOT_FREE) {
        return -ENOENT;
    }
    rc = io_uring_backend_ctl(st, fd, 0);
    if (rc != 0) {
        st->slots[fd].gen++; /* what still comes from the kernel is stale */
        st->slots[fd].state = SLOT_FREE;
    }
    st->nfds--;
    return rc;
}

/*
 * Re-arms the fds the last call reported (quirk 1), then submits, waits
 * and reaps in a loop until something is reported, the wait was
 * interrupted or timeout_ns passed: stale completions (quirk 2) do not
 * end the wait early. Returns the number of events, 0 on timeout or EINTR,
 * -errno on failure. Never allocates.
 */
static int
io_uring_backend_poll(void *state, struct ioloop_event *events, int max,
                      int64_t timeout_ns)
{
    struct io_uring_state *st = state;
    int64_t deadline;
    int fd, i, out, rc, seen;

    if (max <= 0) {
        return -EINVAL;
    }
    for (i = 0; i < st->nfired; i++) {
        fd = st->fired[i];
        if (st->slots[fd].state == SLOT_FIRED
            && (rc = io_uring_backend_ctl(st, fd, 1)) != 0)
        {
            memmove(st->fired, st->fired + i,
                    (size_t) (st->nfired - i) * sizeof(*st->fired));
            st->nfired -= i;
            return rc;
        }
    }
    st->nfired = 0;
    deadline = timeout_ns > 0 ? io_uring_backend_now() + timeout_ns : 0;
    for (;;) {
        rc = io_uring_backend_enter(st, timeout_ns, deadline);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY
            && rc != -EAGAIN)
        {
            return rc;
        }
        out = io_uring_backend_reap(st, events, max, &seen);
        if (out > 0 || rc == -EINTR || seen == 0 || timeout_ns == 0
            || (timeout_ns > 0 && io_uring_backend_now() >= deadline))
        {
            return out;
        }
    }
}

/*
 * Cancels fd's pending poll, if any, and bumps its generation; then, if
 * arm, queues a POLL_ADD for its events (ERR and HUP come unasked), else
 * frees the slot. Submits early only when the SQ ring is full. Returns 0,
 * or -EBUSY with nothing changed.
 */
static int
io_uring_backend_ctl(struct io_uring_state *st, int fd, int arm)
{
    struct io_uring_slot *slot = &st->slots[fd];
    struct io_uring_sqe *sqe;
    unsigned mask, need;

    need = (slot->state == SLOT_ARMED) + (arm != 0);
    if (io_uring_sq_space_left(&st->ring) < need) {
        (void) io_uring_submit(&st->ring);
        if (io_uring_sq_space_left(&st->ring) < need) {
            return -EBUSY;
        }
    }
    if (slot->state == SLOT_ARMED) {
        sqe = io_uring_get_sqe(&st->ring);
        io_uring_prep_poll_remove(sqe, (uint64_t) slot->gen << 32
                                           | (uint32_t) fd);
        io_uring_sqe_set_data64(sqe, IO_URING_BACKEND_OWN);
    }
    slot->gen++;
    slot->state = arm ? SLOT_ARMED : SLOT_FREE;
    if (arm) {
        mask = ((slot->events & IOLOOP_READ) ? POLLIN | POLLRDHUP : 0)
               | ((slot->events & IOLOOP_WRITE) ? POLLOUT : 0);
        sqe = io_uring_get_sqe(&st->ring);
        io_uring_prep_poll_add(sqe, fd, mask);
        io_uring_sqe_set_data64(sqe, (uint64_t) slot->gen << 32
                                         | (uint32_t) fd);
    }
    return 0;
}

/*
 * One io_uring_enter(): submits what is queued and waits for one
 * completion, until deadline for a positive timeout_ns (quirk 5). Returns
 * what liburing returns: >= 0, -ETIME, -EINTR or -errno.
 */
static int
io_uring_backend_enter(struct io_uring_state *st, int64_t timeout_ns,
                       int64_t deadline)
{
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    int64_t left;

    if (timeout_ns == 0) {
        return io_uring_submit_and_get_events(&st->ring);
    }
    if (timeout_ns < 0) {
        return io_uring_submit_and_wait(&st->ring, 1);
    }
    left = deadline - io_uring_backend_now();
    left = left > 0 ? left : 1; /* 0 would not submit: wait 1 ns */
    ts.tv_sec = left / IOLOOP_NS_PER_S;
    ts.tv_nsec = left % IOLOOP_NS_PER_S;
    return io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, &ts, NULL);
}

/*
 * Turns up to max current completions into events, dropping stale ones
 * and our own POLL_REMOVEs, and records the fds to re-arm. Completions
 * left over stay in the ring for the next call. *seen counts the
 * completions consumed. Returns the number of events.
 */
static int
io_uring_backend_reap(struct io_uring_state *st, struct ioloop_event *events,
                      int max, int *seen)
{
    struct io_uring_cqe *cqe;
    struct io_uring_slot *slot;
    unsigned head, n = 0, re;
    uint32_t fd;
    int out = 0;

    io_uring_for_each_cqe(&st->ring, head, cqe) {
        if (out == max) {
            break;
        }
        n++;
        fd = (uint32_t) cqe->user_data;
        slot = fd < (uint32_t) st->cap ? &st->slots[fd] : NULL;
        if (slot == NULL || slot->state != SLOT_ARMED
            || slot->gen != (uint32_t) (cqe->user_data >> 32))
        {
            continue; /* stale, or a POLL_REMOVE of ours (quirk 2) */
        }
        if (cqe->res == -EBADF) {
            slot->state = SLOT_DEAD; /* closed before it was armed */
            continue;
        }
        slot->state = SLOT_FIRED; /* re-armed by the next call */
        st->fired[st->nfired++] = (int) fd;
        if (cqe->res == -ECANCELED) {
            continue; /* cancelled by someone else, e.g. a forked child */
        }
        re = cqe->res < 0 ? POLLERR : (unsigned) cqe->res;
        events[out].fd = (int32_t) fd;
        events[out].events = ((re & (POLLIN | POLLRDHUP)) ? IOLOOP_READ : 0)
                             | ((re & POLLOUT) ? IOLOOP_WRITE : 0);
        events[out].events &= slot->events;
        events[out].events |= ((re & POLLERR) ? IOLOOP_ERROR : 0)
                              | ((re & POLLHUP) ? IOLOOP_HUP : 0);
        out += events[out].events != 0;
    }
    io_uring_cq_advance(&st->ring, n);
    *seen = (int) n;
    return out;
}

/*
 * Makes slots and fired cover fd, doubling both so that adding fds costs
 * O(1) amortized; new slots are free. Returns 0, or -ENOMEM with both
 * arrays still valid.
 */
static int
io_uring_backend_grow(struct io_uring_state *st, int fd)
{
    struct io_uring_slot *slots;
    int cap, *fired;

    cap = st->cap > 0 ? st->cap : IO_URING_BACKEND_MIN_CAP;
    while (cap <= fd) {
        cap = cap > INT_MAX / 2 ? fd + 1 : cap * 2;
    }
    if (cap == st->cap) {
        return 0;
    }
    fired = realloc(st->fired, (size_t) cap * sizeof(*fired));
    if (fired == NULL) {
        return -ENOMEM;
    }
    st->fired = fired;
    slots = realloc(st->slots, (size_t) cap * sizeof(*slots));
    if (slots == NULL) {
        return -ENOMEM;
    }
    memset(slots + st->cap, 0, (size_t) (cap - st->cap) * sizeof(*slots));
    st->slots = slots;
    st->cap = cap;
    return 0;
}

/* CLOCK_MONOTONIC in nanoseconds, the clock the ring's timeouts use. */
static int64_t
io_uring_backend_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * IOLOOP_NS_PER_S + ts.tv_nsec;
}
