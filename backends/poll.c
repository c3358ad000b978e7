/* poll.c: POSIX poll(2) poller backend, loaded by the host as poll.so. */
#include <ioloop/backend.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <poll.h>

#include "backend_util.h"

#define POLL_BACKEND_MIN_CAP 64     /* first size of both arrays */
#define POLL_BACKEND_MAX_HINT 65536 /* larger size_hints are not trusted */

/*
 * Kernel quirks worth knowing:
 *
 * 1. poll() always reports POLLERR, POLLHUP and POLLNVAL, whatever events
 *    asks for, and ignores an entry whose fd is negative (revents = 0).
 * 2. An fd closed without remove() comes back as POLLNVAL at once, on every
 *    call: a loop that reported it would spin. Like epoll, which forgets a
 *    closed fd, we report nothing and park the entry by storing ~fd (always
 *    negative, and reversible) until remove() or add() reclaims it.
 */

/* Private state: a packed pollfd array and an fd -> position index. */
struct poll_state {
    struct pollfd *pfds; /* the interest set, packed in [0, n) */
    int n;               /* entries in use */
    int cap;             /* entries allocated in pfds */
    int *index;          /* fd -> position in pfds, -1 when not watched */
    int icap;            /* entries allocated in index */
    int next;            /* where the next scan starts, see poll */
};

static void *poll_backend_create(unsigned size_hint, char *err,
                                 size_t errlen);
static void poll_backend_destroy(void *state);
static int poll_backend_add(void *state, int fd, unsigned events);
static int poll_backend_modify(void *state, int fd, unsigned old_events,
                               unsigned new_events);
static int poll_backend_remove(void *state, int fd, unsigned old_events);
static int poll_backend_poll(void *state, struct ioloop_event *events,
                             int max, int64_t timeout_ns);
static int poll_backend_find(struct poll_state *st, int fd);
static int poll_backend_grow(struct poll_state *st, int n, int fd);

IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "poll",
    .create = poll_backend_create,
    .destroy = poll_backend_destroy,
    .add = poll_backend_add,
    .modify = poll_backend_modify,
    .remove = poll_backend_remove,
    .poll = poll_backend_poll,
};

/*
 * Allocates both arrays, sized from size_hint. Returns the state, or NULL
 * with errno set and the failed call named in err. Opens no fd.
 */
static void *
poll_backend_create(unsigned size_hint, char *err, size_t errlen)
{
    struct poll_state *st;
    int hint;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        backend_error(err, errlen, "calloc");
        return NULL;
    }
    hint = size_hint > POLL_BACKEND_MAX_HINT ? POLL_BACKEND_MAX_HINT
                                             : (int) size_hint;
    if (poll_backend_grow(st, hint, hint) != 0) {
        poll_backend_destroy(st);
        errno = ENOMEM;
        backend_error(err, errlen, "realloc");
        return NULL;
    }
    return st;
}

/* Frees the state. state may be NULL. */
static void
poll_backend_destroy(void *state)
{
    struct poll_state *st = state;

    if (st == NULL) {
        return;
    }
    free(st->pfds);
    free(st->index);
    free(st);
}

/*
 * Appends fd to the pollfd array in O(1) amortized. Returns 0; -EBADF if
 * fd is negative or not open (as epoll_ctl() does); -EEXIST if fd is
 * watched already; -ENOMEM. An entry parked by quirk 2 is taken over.
 */
static int
poll_backend_add(void *state, int fd, unsigned events)
{
    struct poll_state *st = state;
    int i;

    if (fd < 0) {
        return -EBADF;
    }
    if (fcntl(fd, F_GETFD) == -1) {
        return -errno;
    }
    i = poll_backend_find(st, fd);
    if (i >= 0 && st->pfds[i].fd >= 0) {
        return -EEXIST;
    }
    if (i < 0) {
        if (poll_backend_grow(st, st->n + 1, fd) != 0) {
            return -ENOMEM;
        }
        i = st->n++;
        st->index[fd] = i;
    }
    st->pfds[i].fd = fd; /* a new entry, or a parked one taken over */
    st->pfds[i].revents = 0;
    return poll_backend_modify(st, fd, 0, events);
}

/*
 * Changes the events of fd's entry in place, in O(1). Returns 0, or -ENOENT
 * if fd is not watched or was parked (as epoll forgets a closed fd).
 */
static int
poll_backend_modify(void *state, int fd, unsigned old_events,
                    unsigned new_events)
{
    struct poll_state *st = state;
    int ev, i;

    (void) old_events;
    i = poll_backend_find(st, fd);
    if (i < 0 || st->pfds[i].fd < 0) {
        return -ENOENT;
    }
    /* POLLERR and POLLHUP need not be asked for (quirk 1). */
    ev = ((new_events & IOLOOP_READ) ? POLLIN : 0)
         | ((new_events & IOLOOP_WRITE) ? POLLOUT : 0);
    st->pfds[i].events = (short) ev;
    return 0;
}

/*
 * Drops fd's entry in O(1): the last entry moves into the hole and its
 * index follows. Works the same after close(). Returns 0, or -ENOENT if fd
 * is not watched.
 */
static int
poll_backend_remove(void *state, int fd, unsigned old_events)
{
    struct poll_state *st = state;
    int i, last, moved;

    (void) old_events;
    i = poll_backend_find(st, fd);
    if (i < 0) {
        return -ENOENT;
    }
    last = --st->n;
    if (i != last) {
        st->pfds[i] = st->pfds[last];
        moved = st->pfds[i].fd;
        st->index[moved >= 0 ? moved : ~moved] = i;
    }
    st->index[fd] = -1;
    return 0;
}

/*
 * Waits with poll() and turns revents into at most max events. A scan cut
 * short by max resumes there next time, so no entry starves. POLLNVAL
 * entries are parked (quirk 2); if nothing else was ready, poll() runs
 * again with the same timeout, since POLLNVAL came back before it slept.
 * Returns the number of events, 0 on timeout or EINTR, -errno on failure.
 * Never allocates.
 */
static int
poll_backend_poll(void *state, struct ioloop_event *events, int max,
                  int64_t timeout_ns)
{
    struct poll_state *st = state;
    struct pollfd *pfd;
    int i, k, n, out, parked, start;
    short re;

    if (max <= 0) {
        return -EINVAL;
    }
    do {
        n = poll(st->pfds, (nfds_t) st->n, backend_timeout_ms(timeout_ns));
        if (n == -1) {
            return errno == EINTR ? 0 : -errno;
        }
        start = st->next < st->n ? st->next : 0;
        out = 0;
        parked = 0;
        for (k = 0; k < st->n && n > 0 && out < max; k++) {
            i = (start + k) % st->n;
            pfd = &st->pfds[i];
            re = pfd->revents;
            if (re == 0) {
                continue;
            }
            n--;
            if (re & POLLNVAL) {
                pfd->fd = ~pfd->fd;
                parked++;
                continue;
            }
            events[out].fd = pfd->fd;
            events[out].events = ((re & POLLIN) ? IOLOOP_READ : 0)
                                 | ((re & POLLOUT) ? IOLOOP_WRITE : 0)
                                 | ((re & POLLERR) ? IOLOOP_ERROR : 0)
                                 | ((re & POLLHUP) ? IOLOOP_HUP : 0);
            out++;
        }
        st->next = n > 0 ? (start + k) % st->n : 0;
    } while (out == 0 && parked > 0);
    return out;
}

/* Returns fd's position in pfds, or -1 if fd is not watched. */
static int
poll_backend_find(struct poll_state *st, int fd)
{
    return fd >= 0 && fd < st->icap ? st->index[fd] : -1;
}

/*
 * Makes pfds hold n entries and index cover fd, doubling each array so
 * that adding fds costs O(1) amortized; new index slots read -1. Returns 0,
 * or -ENOMEM with both arrays still valid.
 */
static int
poll_backend_grow(struct poll_state *st, int n, int fd)
{
    struct pollfd *pfds;
    int cap, *index;

    cap = st->cap > 0 ? st->cap : POLL_BACKEND_MIN_CAP;
    while (cap < n) {
        cap = cap > INT_MAX / 2 ? n : cap * 2;
    }
    if (cap != st->cap) {
        pfds = realloc(st->pfds, (size_t) cap * sizeof(*pfds));
        if (pfds == NULL) {
            return -ENOMEM;
        }
        st->pfds = pfds;
        st->cap = cap;
    }
    cap = st->icap > 0 ? st->icap : POLL_BACKEND_MIN_CAP;
    while (cap <= fd) {
        cap = cap > INT_MAX / 2 ? fd + 1 : cap * 2;
    }
    if (cap != st->icap) {
        index = realloc(st->index, (size_t) cap * sizeof(*index));
        if (index == NULL) {
            return -ENOMEM;
        }
        st->index = index;
        while (st->icap < cap) {
            st->index[st->icap++] = -1;
        }
    }
    return 0;
}
