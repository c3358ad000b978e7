/* kqueue.c: BSD and macOS kqueue(2) poller backend, loaded by the host as
 * kqueue.so (on Linux: over libkqueue, or tests/fakes' emulation). */
#include <ioloop/backend.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/types.h>
#include <sys/event.h>
#include <sys/stat.h>

#include "backend_util.h"

#define KQUEUE_BACKEND_CHANGES 256    /* changelist size: flushed when full */
#define KQUEUE_BACKEND_MIN_CAP 256    /* events buffer: >= a flush's receipts */
#define KQUEUE_BACKEND_MAX_HINT 65536 /* larger size_hints are not trusted */
#define KQUEUE_BACKEND_MAX_SEC 100000000 /* macOS: longer timeouts: EINVAL */

#define KQ_READ 0x1u  /* a read knote for IOLOOP_READ */
#define KQ_WATCH 0x2u /* a read knote only EOF and errors fire (quirk 4) */
#define KQ_WRITE 0x4u /* a write knote for IOLOOP_WRITE */
#define KQ_HUNG 0x8u  /* the watcher made level-triggered by EOF (4b) */
#define KQ_READS (KQ_READ | KQ_WATCH | KQ_HUNG) /* read knote kinds */

#define SLOT_USED 0x1u  /* added and not yet removed */
#define SLOT_SOCK 0x2u  /* a socket: gets a watching knote (quirk 4) */
#define SLOT_ERROR 0x4u /* a change failed: IOLOOP_ERROR until modify */

#ifdef NOTE_LOWAT
/* The watching knote: a read knote with an unreachable low-water mark. */
#define KQ_WATCH_FLAGS 0
#define KQ_WATCH_FFLAGS NOTE_LOWAT
#define KQ_WATCH_DATA INT_MAX
#define KQUEUE_BACKEND_WAIT_MAX INT_MAX
#else
/* No NOTE_LOWAT (libkqueue): an edge-triggered read knote (quirk 4b). */
#define KQ_WATCH_FLAGS EV_CLEAR
#define KQ_WATCH_FFLAGS 0
#define KQ_WATCH_DATA 0
/* Each event of a wait may queue two changes, which must fit unflushed:
 * a flush would overwrite the events being read. */
#define KQUEUE_BACKEND_WAIT_MAX (KQUEUE_BACKEND_CHANGES / 2)
#endif

/*
 * Kernel quirks worth knowing:
 *
 * 1. kqueue watches (fd, filter) pairs: READ and WRITE are two knotes that
 *    come back as two kevents, which poll() merges into one event per fd
 *    through the slot map's stamps.
 * 2. add/modify/remove only append to a changelist, which poll() applies in
 *    one kevent() call. Every change carries EV_RECEIPT, so every change is
 *    answered by an EV_ERROR entry (data 0: done) and the call then returns
 *    without waiting (FreeBSD, macOS); without room for a receipt, FreeBSD
 *    stops applying changes. So the flush is a kevent() of its own, with
 *    room for every receipt and a zero timeout, and the wait a second one.
 * 3. Closing an fd drops its knotes, whatever dup()s remain. A queued
 *    change for an fd closed meanwhile fails with EBADF (libkqueue: EV_ADD
 *    fails with EFAULT, as for any failure to create a knote, so EFAULT
 *    counts only if the fd is really closed), or ENOENT for a delete:
 *    ignored, the host removes closed fds. Other failures mark the fd,
 *    which poll() then reports as IOLOOP_ERROR until modify or remove.
 * 4. No filter reports only hang-ups. A socket with no interest gets a read
 *    knote with an unreachable NOTE_LOWAT, so that only EOF and errors fire
 *    it: without EV_EOF it means a pending error, IOLOOP_ERROR. (macOS
 *    clamps the mark to the buffer size, so a full buffer looks the same.)
 *    Pipes, fifos and ttys ignore NOTE_LOWAT and get no knote.
 * 4b. libkqueue (Linux) has no NOTE_LOWAT: its header leaves it undefined.
 *    There the watcher is an EV_CLEAR read knote, which fires once per
 *    change: new data (nothing is reported: no interest) or EOF, which is
 *    reported and turns it into a level knote (KQ_HUNG) so that HUP stays
 *    level-triggered; should that fire without EOF, it goes back to
 *    EV_CLEAR. Neither libkqueue nor FreeBSD changes an existing knote's
 *    EV_CLEAR, so each switch is an EV_DELETE and an EV_ADD. Errors come
 *    with EV_EOF there (libkqueue sets it with every socket error).
 * 5. EV_EOF on a read knote: the peer will send no more (read() returns
 *    0), READ|HUP, even after a mere shutdown(SHUT_WR): kqueue cannot tell
 *    a half-close from a hang-up there. On a write knote: no more can be
 *    sent, WRITE|HUP. fflags then holds the socket error, if any: ERROR.
 *    libkqueue returns the knote's own input fflags on EOF without an
 *    error, so fflags equal to what we passed is not an error; and it
 *    reads SO_ERROR itself to fill fflags, which clears it on Linux: the
 *    application then finds 0 there (docs/backends.md).
 * 6. Knotes are level-triggered unless EV_CLEAR is given, and a reported
 *    knote goes back to the tail of the queue, so no fd starves.
 * 7. A fork()ed child does not inherit the kqueue (BSD), and its fd number
 *    may be reused there: destroy() closes it only in the creating process.
 * 8. kqueue() is not close-on-exec: kqueue1(O_CLOEXEC) where it exists
 *    (NetBSD, FreeBSD 14), else fcntl().
 */

/* What we know of one fd: indexed by fd. */
struct kqueue_slot {
    uint32_t gen;   /* bumped by add; rides in udata */
    uint32_t stamp; /* the poll() that last reported the fd */
    int out;        /* the fd's index in that poll's events */
    uint8_t events; /* IOLOOP_READ | IOLOOP_WRITE asked for */
    uint8_t knotes; /* KQ_* registered or queued */
    uint8_t flags;  /* SLOT_* */
};

/* Private state: the kqueue, its changelist and the fd map. */
struct kqueue_state {
    int kqfd;                  /* the kqueue, close-on-exec */
    pid_t pid;                 /* its creator, see quirk 7 */
    int nfds;                  /* fds added and not yet removed */
    int cap;                   /* entries in events */
    struct kevent *events;     /* filled by kevent(), reused by poll */
    int nslots;                /* entries in slots */
    struct kqueue_slot *slots; /* fd -> slot */
    uint32_t stamp;            /* poll() calls so far */
    int nerrors;               /* slots with SLOT_ERROR */
    int nchanges;              /* entries queued in changes */
    struct kevent changes[KQUEUE_BACKEND_CHANGES];
};

static void *kqueue_backend_create(unsigned size_hint, char *err,
                                   size_t errlen);
static void kqueue_backend_destroy(void *state);
static int kqueue_backend_add(void *state, int fd, unsigned events);
static int kqueue_backend_modify(void *state, int fd, unsigned old_events,
                                 unsigned new_events);
static int kqueue_backend_remove(void *state, int fd, unsigned old_events);
static int kqueue_backend_poll(void *state, struct ioloop_event *events,
                               int max, int64_t timeout_ns);
static int kqueue_backend_merge(struct kqueue_state *st, int n,
                                struct ioloop_event *events, int out);
static int kqueue_backend_ctl(struct kqueue_state *st, int fd,
                              unsigned events, int used);
static int kqueue_backend_read_knote(struct kqueue_state *st, int fd,
                                     unsigned from, unsigned to);
static unsigned kqueue_backend_bits(struct kqueue_state *st, int fd,
                                    const struct kevent *kev);
static int kqueue_backend_change(struct kqueue_state *st, int fd,
                                 short filter, unsigned short flags,
                                 unsigned fflags, int64_t data);
static int kqueue_backend_flush(struct kqueue_state *st);
static int kqueue_backend_closed(const struct kevent *kev);
static int kqueue_backend_report(struct kqueue_state *st, int fd,
                                 unsigned bits, struct ioloop_event *events,
                                 int out);
static int kqueue_backend_grow(struct kqueue_state *st, int need, int fd);

IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "kqueue",
    .create = kqueue_backend_create,
    .destroy = kqueue_backend_destroy,
    .add = kqueue_backend_add,
    .modify = kqueue_backend_modify,
    .remove = kqueue_backend_remove,
    .poll = kqueue_backend_poll,
};

/*
 * Creates the kqueue (close-on-exec, quirk 8), an event buffer sized from
 * size_hint and the fd map. Returns the state, or NULL with errno set and
 * the failed call named in err.
 */
static void *
kqueue_backend_create(unsigned size_hint, char *err, size_t errlen)
{
    struct kqueue_state *st;
    int saved;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        backend_error(err, errlen, "calloc");
        return NULL;
    }
#ifdef IOLOOP_HAVE_KQUEUE1
    st->kqfd = kqueue1(O_CLOEXEC);
#else
    st->kqfd = kqueue();
#endif
    if (st->kqfd == -1) {
        backend_error(err, errlen, "kqueue");
        goto fail;
    }
#ifndef IOLOOP_HAVE_KQUEUE1
    if (fcntl(st->kqfd, F_SETFD, FD_CLOEXEC) == -1) {
        backend_error(err, errlen, "fcntl");
        goto fail;
    }
#endif
    st->pid = getpid();
    if (size_hint > KQUEUE_BACKEND_MAX_HINT) {
        size_hint = KQUEUE_BACKEND_MAX_HINT;
    }
    if (kqueue_backend_grow(st, (int) size_hint, -1) != 0) {
        errno = ENOMEM;
        backend_error(err, errlen, "realloc");
        goto fail;
    }
    return st;

fail:
    saved = errno;
    kqueue_backend_destroy(st);
    errno = saved;
    return NULL;
}

/*
 * Closes the kqueue, in its creator only (quirk 7), and frees the state.
 * Queued changes are dropped with it. state may be NULL.
 */
static void
kqueue_backend_destroy(void *state)
{
    struct kqueue_state *st = state;

    if (st == NULL) {
        return;
    }
    if (st->kqfd >= 0 && st->pid == getpid()) {
        close(st->kqfd);
    }
    free(st->events);
    free(st->slots);
    free(st);
}

/*
 * Queues fd's knotes. Returns 0; -EBADF if fd is negative or not open
 * (checked now: the kernel would only say so at the flush); -EEXIST if
 * fd is watched already; -ENOMEM; -errno if a full changelist could not
 * be flushed.
 */
static int
kqueue_backend_add(void *state, int fd, unsigned events)
{
    struct kqueue_state *st = state;
    struct kqueue_slot *slot;
    struct stat sb;
    int rc;

    if (fd < 0) {
        return -EBADF;
    }
    if (fstat(fd, &sb) == -1) {
        return -errno;
    }
    if (kqueue_backend_grow(st, st->nfds + 1, fd) != 0) {
        return -ENOMEM;
    }
    slot = &st->slots[fd];
    if (slot->flags & SLOT_USED) {
        return -EEXIST;
    }
    slot->gen++;
    slot->flags = SLOT_USED | (S_ISSOCK(sb.st_mode) ? SLOT_SOCK : 0);
    slot->knotes = 0;
    rc = kqueue_backend_ctl(st, fd, events, 1);
    if (rc != 0) {
        slot->flags = 0;
        return rc;
    }
    st->nfds++;
    return 0;
}

/* Queues the knote changes for the new mask. Returns 0 or -errno. */
static int
kqueue_backend_modify(void *state, int fd, unsigned old_events,
                      unsigned new_events)
{
    struct kqueue_state *st = state;

    (void) old_events;
    if (fd < 0 || fd >= st->nslots || !(st->slots[fd].flags & SLOT_USED)) {
        return -ENOENT;
    }
    return kqueue_backend_ctl(st, fd, new_events, 1);
}

/*
 * Queues the deletion of fd's knotes and forgets fd. Works the same after
 * close() (quirk 3). Returns 0, -ENOENT if fd is not watched, or -errno if
 * a full changelist could not be flushed.
 */
static int
kqueue_backend_remove(void *state, int fd, unsigned old_events)
{
    struct kqueue_state *st = state;
    int rc;

    (void) old_events;
    if (fd < 0 || fd >= st->nslots || !(st->slots[fd].flags & SLOT_USED)) {
        return -ENOENT;
    }
    rc = kqueue_backend_ctl(st, fd, 0, 0);
    st->slots[fd].flags = 0;
    st->nfds--;
    return rc;
}

/*
 * Flushes the changelist (quirk 2), then waits with kevent() and merges
 * what it returns into at most max events, after the fds whose changes
 * failed (quirk 3). A batch cut short by the wait's cap (quirk 4b), not
 * by the kernel, is followed by more kevent() calls that do not wait.
 * Wake-ups that yield nothing wait again for the rest of timeout_ns.
 * Returns the number of events, 0 on timeout or EINTR, -errno on failure.
 * Never allocates.
 */
static int
kqueue_backend_poll(void *state, struct ioloop_event *events, int max,
                    int64_t timeout_ns)
{
    struct kqueue_state *st = state;
    struct timespec ts, t0, t1;
    int64_t left = timeout_ns, wait;
    int before, fd, n, out, rc, want;

    if (max <= 0) {
        return -EINVAL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        st->stamp++;
        out = 0;
        for (fd = 0; st->nerrors > 0 && fd < st->nslots && out < max; fd++) {
            if (st->slots[fd].flags & SLOT_ERROR) {
                out = kqueue_backend_report(st, fd, IOLOOP_ERROR, events, out);
            }
        }
        wait = out > 0 ? 0 : left;
        do {
            if (st->nchanges > 0 && (rc = kqueue_backend_flush(st)) != 0) {
                return rc;
            }
            want = max - out < st->cap ? max - out : st->cap;
            if (want > KQUEUE_BACKEND_WAIT_MAX) {
                want = KQUEUE_BACKEND_WAIT_MAX;
            }
            n = kevent(st->kqfd, NULL, 0, st->events, want,
                       backend_timeout_timespec(wait, &ts,
                                                KQUEUE_BACKEND_MAX_SEC));
            if (n == -1) {
                return errno == EINTR ? out : -errno;
            }
            before = out;
            out = kqueue_backend_merge(st, n, events, out);
            wait = 0;
        } while (n == want && out > before && out < max);
        if (out > 0 || n == 0 || timeout_ns == 0) {
            return out;
        }
        if (timeout_ns > 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            left = timeout_ns - (int64_t) (t1.tv_sec - t0.tv_sec)
                                    * IOLOOP_NS_PER_S
                   - (t1.tv_nsec - t0.tv_nsec);
            if (left <= 0) {
                return 0;
            }
        }
    }
}

/*
 * Merges the n kevents in st->events into the batch in events[0, out),
 * skipping those of fds removed or re-added since. Returns the new out.
 */
static int
kqueue_backend_merge(struct kqueue_state *st, int n,
                     struct ioloop_event *events, int out)
{
    struct kevent *kev;
    int fd, i;

    for (i = 0; i < n; i++) {
        kev = &st->events[i];
        fd = kev->ident < (uintptr_t) st->nslots ? (int) kev->ident : -1;
        if (fd < 0 || st->slots[fd].gen != (uint32_t) (uintptr_t) kev->udata) {
            continue; /* not ours any more */
        }
        out = kqueue_backend_report(st, fd, kqueue_backend_bits(st, fd, kev),
                                    events, out);
    }
    return out;
}

/*
 * Queues the changes that take fd's knotes to what events needs, or to
 * none if !used: a read knote for READ, a watching one (quirks 4, 4b) for
 * a socket with neither READ nor WRITE, a write knote for WRITE. After a
 * failed change (quirk 3) every knote is deleted and re-added. Returns 0
 * or -errno from a flush.
 */
static int
kqueue_backend_ctl(struct kqueue_state *st, int fd, unsigned events,
                   int used)
{
    struct kqueue_slot *slot = &st->slots[fd];
    unsigned have = slot->knotes, want = 0;
    int rc = 0;

    if (used && (events & IOLOOP_READ)) {
        want |= KQ_READ;
    } else if (used && !(events & IOLOOP_WRITE)
               && (slot->flags & SLOT_SOCK)) {
        want |= (have & KQ_HUNG) ? KQ_HUNG : KQ_WATCH; /* EOF stays */
    }
    if (used && (events & IOLOOP_WRITE)) {
        want |= KQ_WRITE;
    }
    if (slot->flags & SLOT_ERROR) {
        slot->flags &= ~SLOT_ERROR;
        st->nerrors--;
        rc = kqueue_backend_change(st, fd, EVFILT_READ, EV_DELETE, 0, 0);
        if (rc == 0) {
            rc = kqueue_backend_change(st, fd, EVFILT_WRITE, EV_DELETE, 0,
                                       0);
        }
        have = 0;
    }
    if (rc == 0) {
        rc = kqueue_backend_read_knote(st, fd, have & KQ_READS,
                                       want & KQ_READS);
    }
    if (rc == 0 && ((have ^ want) & KQ_WRITE)) {
        rc = kqueue_backend_change(st, fd, EVFILT_WRITE,
                                   (want & KQ_WRITE) ? EV_ADD : EV_DELETE, 0,
                                   0);
    }
    slot->events = (uint8_t) events;
    slot->knotes = (uint8_t) want;
    return rc;
}

/*
 * Queues what turns fd's read knote of kind from into one of kind to
 * (KQ_READ, KQ_WATCH, KQ_HUNG or 0: none). A level read knote serves READ
 * and KQ_HUNG alike; otherwise an EV_ADD updates a knote in place, unless
 * EV_CLEAR must change, which takes an EV_DELETE first (quirk 4b).
 * Returns 0 or -errno from a flush.
 */
static int
kqueue_backend_read_knote(struct kqueue_state *st, int fd, unsigned from,
                          unsigned to)
{
    int rc = 0;

    if (from == to || (from | to) == (KQ_READ | KQ_HUNG)) {
        return 0;
    }
    if (from != 0 && (to == 0 || KQ_WATCH_FLAGS != 0)) {
        rc = kqueue_backend_change(st, fd, EVFILT_READ, EV_DELETE, 0, 0);
    }
    if (rc == 0 && to == KQ_WATCH) {
        rc = kqueue_backend_change(st, fd, EVFILT_READ,
                                   EV_ADD | KQ_WATCH_FLAGS, KQ_WATCH_FFLAGS,
                                   KQ_WATCH_DATA);
    } else if (rc == 0 && to != 0) {
        rc = kqueue_backend_change(st, fd, EVFILT_READ, EV_ADD, 0, 0);
    }
    return rc;
}

/*
 * The IOLOOP_* bits that kev means for fd (quirks 4, 4b and 5). Without
 * NOTE_LOWAT it also queues the watcher's switch to level-triggered at
 * EOF, and back to EV_CLEAR if the level knote fires without EOF: the
 * wait's cap leaves room for these without a flush.
 */
static unsigned
kqueue_backend_bits(struct kqueue_state *st, int fd, const struct kevent *kev)
{
    struct kqueue_slot *slot = &st->slots[fd];
    unsigned bits, kind;

    bits = kev->filter == EVFILT_WRITE ? IOLOOP_WRITE : IOLOOP_READ;
    bits &= slot->events;
    kind = kev->filter == EVFILT_READ ? slot->knotes & KQ_READS : 0;
    if (kev->flags & EV_EOF) {
        bits |= IOLOOP_HUP;
        if (kev->fflags != 0
            && !(kind == KQ_WATCH && kev->fflags == KQ_WATCH_FFLAGS))
        {
            bits |= IOLOOP_ERROR; /* not merely our input echoed back */
        }
        if (kind == KQ_WATCH && KQ_WATCH_FLAGS != 0) {
            (void) kqueue_backend_read_knote(st, fd, KQ_WATCH, KQ_HUNG);
            slot->knotes = (uint8_t) ((slot->knotes & ~KQ_READS) | KQ_HUNG);
        }
        return bits;
    }
    if (kind == KQ_HUNG) {
        (void) kqueue_backend_read_knote(st, fd, KQ_HUNG, KQ_WATCH);
        slot->knotes = (uint8_t) ((slot->knotes & ~KQ_READS) | KQ_WATCH);
        return bits;
    }
    if (bits == 0 && KQ_WATCH_FLAGS == 0) {
        bits = IOLOOP_ERROR; /* a NOTE_LOWAT watcher: an error (quirk 4) */
    }
    return bits;
}

/*
 * Appends one change, with EV_RECEIPT and fd's generation as udata, in
 * O(1); flushes first only when the changelist is full. Returns 0 or
 * -errno from the flush.
 */
static int
kqueue_backend_change(struct kqueue_state *st, int fd, short filter,
                      unsigned short flags, unsigned fflags, int64_t data)
{
    int rc;

    if (st->nchanges == KQUEUE_BACKEND_CHANGES
        && (rc = kqueue_backend_flush(st)) != 0)
    {
        return rc;
    }
    EV_SET(&st->changes[st->nchanges], (uintptr_t) fd, filter,
           flags | EV_RECEIPT, fflags, data,
           (void *) (uintptr_t) st->slots[fd].gen);
    st->nchanges++;
    return 0;
}

/*
 * Applies the changelist in a kevent() that does not wait and reads the
 * receipts (quirks 2 and 3): a failed change marks its fd SLOT_ERROR, if
 * it still belongs to the fd's current registration. Returns 0, or -errno
 * if kevent() itself failed (the changes are lost then).
 */
static int
kqueue_backend_flush(struct kqueue_state *st)
{
    static const struct timespec zero = { 0, 0 };
    struct kqueue_slot *slot;
    struct kevent *kev;
    int i, n;

    n = kevent(st->kqfd, st->changes, st->nchanges, st->events,
               st->nchanges, &zero);
    st->nchanges = 0;
    if (n == -1) {
        return -errno;
    }
    for (i = 0; i < n; i++) {
        kev = &st->events[i];
        if (!(kev->flags & EV_ERROR) || kev->data == 0 || kev->data == ENOENT
            || kev->ident >= (uintptr_t) st->nslots
            || kqueue_backend_closed(kev))
        {
            continue;
        }
        slot = &st->slots[kev->ident];
        if ((slot->flags & (SLOT_USED | SLOT_ERROR)) == SLOT_USED
            && slot->gen == (uint32_t) (uintptr_t) kev->udata)
        {
            slot->flags |= SLOT_ERROR;
            st->nerrors++;
        }
    }
    return 0;
}

/*
 * True if the failed change kev was for an fd closed meanwhile (quirk 3):
 * EBADF, or libkqueue's EFAULT for an fd that is indeed not open.
 */
static int
kqueue_backend_closed(const struct kevent *kev)
{
    return kev->data == EBADF
           || (kev->data == EFAULT && fcntl((int) kev->ident, F_GETFD) == -1
               && errno == EBADF);
}

/*
 * Adds bits for fd to the batch in events[0, out): merged into fd's entry
 * if this poll() made one already (its other filter came first; quirk 1),
 * else appended. Returns the new out.
 */
static int
kqueue_backend_report(struct kqueue_state *st, int fd, unsigned bits,
                      struct ioloop_event *events, int out)
{
    struct kqueue_slot *slot = &st->slots[fd];

    if (bits == 0 || !(slot->flags & SLOT_USED)) {
        return out;
    }
    if (slot->stamp == st->stamp && slot->out < out
        && events[slot->out].fd == fd)
    {
        events[slot->out].events |= bits;
        return out;
    }
    slot->stamp = st->stamp;
    slot->out = out;
    events[out].fd = fd;
    events[out].events = bits;
    return out + 1;
}

/*
 * Makes the events buffer hold need entries and the fd map cover fd,
 * doubling each so that adding fds costs O(1) amortized; new slots are
 * zero. Returns 0, or -ENOMEM with both arrays still valid.
 */
static int
kqueue_backend_grow(struct kqueue_state *st, int need, int fd)
{
    struct kqueue_slot *slots;
    struct kevent *events;
    int cap;

    cap = st->cap > 0 ? st->cap : KQUEUE_BACKEND_MIN_CAP;
    while (cap < need) {
        cap = cap > INT_MAX / 2 ? need : cap * 2;
    }
    if (cap != st->cap) {
        events = realloc(st->events, (size_t) cap * sizeof(*events));
        if (events == NULL) {
            return -ENOMEM;
        }
        st->events = events;
        st->cap = cap;
    }
    cap = st->nslots > 0 ? st->nslots : KQUEUE_BACKEND_MIN_CAP;
    while (cap <= fd) {
        cap = cap > INT_MAX / 2 ? fd + 1 : cap * 2;
    }
    if (cap != st->nslots) {
        slots = realloc(st->slots, (size_t) cap * sizeof(*slots));
        if (slots == NULL) {
            return -ENOMEM;
        }
        memset(slots + st->nslots, 0,
               (size_t) (cap - st->nslots) * sizeof(*slots));
        st->slots = slots;
        st->nslots = cap;
    }
    return 0;
}
