/* epoll.c: Linux epoll(7) poller backend, loaded by the host as epoll.so. */
#include <ioloop/backend.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/epoll.h>

#include "backend_util.h"

#define EPOLL_BACKEND_MIN_CAP 64     /* first size of the events buffer */
#define EPOLL_BACKEND_MAX_HINT 65536 /* larger size_hints are not trusted */

/*
 * Kernel quirks worth knowing:
 *
 * 1. epoll watches an open file description, not an fd number. A closed fd
 *    leaves the set by itself only when it was the last reference to that
 *    description: while a dup() (or a fork()ed child's copy) stays open,
 *    epoll goes on reporting events under the closed fd number, and
 *    EPOLL_CTL_DEL can no longer reach it (EBADF). So the host must remove
 *    an fd *before* closing it whenever a dup may exist; remove() after
 *    close() is only safe for an fd without dups.
 * 2. epoll_ctl() refuses regular files and directories with EPERM (they are
 *    always ready; poll and select report them as such).
 * 3. Kernels before 2.6.9 require a non-NULL event for EPOLL_CTL_DEL, so we
 *    always pass one.
 */

/* Private state: the epoll fd and the buffer epoll_wait() fills. */
struct epoll_state {
    int epfd;                   /* the epoll instance, close-on-exec */
    int nfds;                   /* fds added and not yet removed */
    int cap;                    /* entries in events */
    struct epoll_event *events; /* filled by epoll_wait(), reused by poll */
};

static void *epoll_backend_create(unsigned size_hint, char *err,
                                  size_t errlen);
static void epoll_backend_destroy(void *state);
static int epoll_backend_add(void *state, int fd, unsigned events);
static int epoll_backend_modify(void *state, int fd, unsigned old_events,
                                unsigned new_events);
static int epoll_backend_remove(void *state, int fd, unsigned old_events);
static int epoll_backend_poll(void *state, struct ioloop_event *events,
                              int max, int64_t timeout_ns);
static int epoll_backend_ctl(struct epoll_state *st, int op, int fd,
                             unsigned events);
static int epoll_backend_grow(struct epoll_state *st, int need);

IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "epoll",
    .create = epoll_backend_create,
    .destroy = epoll_backend_destroy,
    .add = epoll_backend_add,
    .modify = epoll_backend_modify,
    .remove = epoll_backend_remove,
    .poll = epoll_backend_poll,
};

/*
 * Creates the epoll instance (close-on-exec) and an event buffer sized
 * from size_hint. Returns the state, or NULL with errno set and the failed
 * call named in err.
 */
static void *
epoll_backend_create(unsigned size_hint, char *err, size_t errlen)
{
    struct epoll_state *st;
    int saved;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        backend_error(err, errlen, "calloc");
        return NULL;
    }
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd == -1) {
        backend_error(err, errlen, "epoll_create1");
        goto fail;
    }
    if (size_hint > EPOLL_BACKEND_MAX_HINT) {
        size_hint = EPOLL_BACKEND_MAX_HINT;
    }
    if (epoll_backend_grow(st, (int) size_hint) != 0) {
        errno = ENOMEM;
        backend_error(err, errlen, "realloc");
        goto fail;
    }
    return st;

fail:
    saved = errno;
    epoll_backend_destroy(st);
    errno = saved;
    return NULL;
}

/* Closes the epoll fd and frees the state. state may be NULL. */
static void
epoll_backend_destroy(void *state)
{
    struct epoll_state *st = state;

    if (st == NULL) {
        return;
    }
    if (st->epfd >= 0) {
        close(st->epfd);
    }
    free(st->events);
    free(st);
}

/*
 * Registers fd with the kernel. Returns 0 or -errno from epoll_ctl():
 * -EEXIST if fd is already watched, -EBADF if it is not open, -EPERM for a
 * regular file (quirk 2).
 */
static int
epoll_backend_add(void *state, int fd, unsigned events)
{
    struct epoll_state *st = state;
    int rc;

    rc = epoll_backend_ctl(st, EPOLL_CTL_ADD, fd, events);
    if (rc != 0) {
        return rc;
    }
    st->nfds++;
    /*
     * A short buffer only makes batches smaller: level-triggered fds that
     * did not fit are reported by the next poll. So failing to grow is
     * not an error.
     */
    (void) epoll_backend_grow(st, st->nfds);
    return 0;
}

/* Changes the interest set in place. Returns 0 or -errno. */
static int
epoll_backend_modify(void *state, int fd, unsigned old_events,
                     unsigned new_events)
{
    (void) old_events;
    return epoll_backend_ctl(state, EPOLL_CTL_MOD, fd, new_events);
}

/*
 * Unregisters fd. Our own bookkeeping is dropped whatever the kernel says:
 * after close() the kernel answers -EBADF (or -ENOENT when the fd number
 * was reused), which the host ignores. See quirk 1.
 */
static int
epoll_backend_remove(void *state, int fd, unsigned old_events)
{
    struct epoll_state *st = state;

    (void) old_events;
    if (st->nfds > 0) {
        st->nfds--;
    }
    return epoll_backend_ctl(st, EPOLL_CTL_DEL, fd, 0);
}

/*
 * Waits with epoll_wait() and translates what it returns. At most
 * min(max, buffer size) events are taken at once; the kernel moves the
 * level-triggered fds it reported to the tail of its ready list, so fds
 * left over are reported first next time and none starves. Returns the
 * number of events, 0 on timeout or EINTR, -errno on failure. Never
 * allocates.
 */
static int
epoll_backend_poll(void *state, struct ioloop_event *events, int max,
                   int64_t timeout_ns)
{
    struct epoll_state *st = state;
    uint32_t ev;
    int i, n;

    if (max <= 0) {
        return -EINVAL;
    }
    n = epoll_wait(st->epfd, st->events, max < st->cap ? max : st->cap,
                   backend_timeout_ms(timeout_ns));
    if (n == -1) {
        return errno == EINTR ? 0 : -errno;
    }
    for (i = 0; i < n; i++) {
        ev = st->events[i].events;
        events[i].fd = st->events[i].data.fd;
        events[i].events = ((ev & (EPOLLIN | EPOLLRDHUP)) ? IOLOOP_READ : 0)
                           | ((ev & EPOLLOUT) ? IOLOOP_WRITE : 0)
                           | ((ev & EPOLLERR) ? IOLOOP_ERROR : 0)
                           | ((ev & EPOLLHUP) ? IOLOOP_HUP : 0);
    }
    return n;
}

/*
 * Runs epoll_ctl(op) for fd with the IOLOOP_* bits in events. EPOLLERR and
 * EPOLLHUP need not be asked for: the kernel always reports them. With
 * IOLOOP_READ we also ask for EPOLLRDHUP, reported as IOLOOP_READ, so a
 * peer's shutdown(SHUT_WR) reads as EOF on every socket type. Returns 0 or
 * -errno.
 */
static int
epoll_backend_ctl(struct epoll_state *st, int op, int fd, unsigned events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev)); /* all of data, for valgrind's sake */
    ev.events = ((events & IOLOOP_READ) ? EPOLLIN | EPOLLRDHUP : 0)
                | ((events & IOLOOP_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    if (epoll_ctl(st->epfd, op, fd, &ev) == -1) {
        return -errno;
    }
    return 0;
}

/*
 * Makes the epoll_wait() buffer hold at least need entries, doubling its
 * size so that adding n fds costs O(n) overall. Returns 0, or -ENOMEM and
 * keeps the old buffer.
 */
static int
epoll_backend_grow(struct epoll_state *st, int need)
{
    struct epoll_event *events;
    int cap;

    cap = st->cap > 0 ? st->cap : EPOLL_BACKEND_MIN_CAP;
    while (cap < need) {
        cap = cap > INT_MAX / 2 ? need : cap * 2;
    }
    if (cap == st->cap) {
        return 0;
    }
    events = realloc(st->events, (size_t) cap * sizeof(*events));
    if (events == NULL) {
        return -ENOMEM;
    }
    st->events = events;
    st->cap = cap;
    return 0;
}
