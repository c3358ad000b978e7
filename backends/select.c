/* select.c: POSIX select(2) poller backend, loaded by the host as select.so. */
#include <ioloop/backend.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/select.h>
#include <sys/time.h>

#include "backend_util.h"

/*
 * Kernel quirks worth knowing:
 *
 * 1. An fd_set is a fixed bitmap of FD_SETSIZE (1024 on glibc) bits, and
 *    FD_SET() on a larger fd writes past it. add() refuses such an fd with
 *    -EINVAL and no other op ever puts one in a set; the host then suggests
 *    poll or epoll.
 * 2. select() has no error or hang-up set: an fd with a pending error or a
 *    closed peer shows up readable (and writable), and only if it was asked
 *    for. exceptfds means out-of-band data, not errors, so we leave it out.
 * 3. select() fails with EBADF, for every fd, when any fd in the sets is not
 *    open. Linux checks this before it sleeps, so when the host closed an fd
 *    without remove(), poll drops the closed fds and calls select() again
 *    with the same timeout.
 */

/* Private state: the interest set, kept as in redis ae_select.c. */
struct select_state {
    fd_set rfds; /* master sets, changed only by add/modify/remove; */
    fd_set wfds; /* poll hands select() copies, which it overwrites */
    int maxfd;   /* highest fd in either master set, -1 when both are empty */
    int next;    /* where the next scan starts, see poll */
};

static void *select_backend_create(unsigned size_hint, char *err,
                                   size_t errlen);
static void select_backend_destroy(void *state);
static int select_backend_add(void *state, int fd, unsigned events);
static int select_backend_modify(void *state, int fd, unsigned old_events,
                                 unsigned new_events);
static int select_backend_remove(void *state, int fd, unsigned old_events);
static int select_backend_poll(void *state, struct ioloop_event *events,
                               int max, int64_t timeout_ns);
static void select_backend_shrink(struct select_state *st);
static int select_backend_prune(struct select_state *st);

IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "select",
    .max_fd = FD_SETSIZE,
    .create = select_backend_create,
    .destroy = select_backend_destroy,
    .add = select_backend_add,
    .modify = select_backend_modify,
    .remove = select_backend_remove,
    .poll = select_backend_poll,
};

/*
 * Allocates empty master sets. size_hint is ignored: the sets have a fixed
 * size. Returns the state, or NULL with errno set and the failed call named
 * in err. select needs no fd of its own.
 */
static void *
select_backend_create(unsigned size_hint, char *err, size_t errlen)
{
    struct select_state *st;

    (void) size_hint;
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        backend_error(err, errlen, "calloc");
        return NULL;
    }
    FD_ZERO(&st->rfds);
    FD_ZERO(&st->wfds);
    st->maxfd = -1;
    return st;
}

/* Frees the state. state may be NULL. */
static void
select_backend_destroy(void *state)
{
    free(state);
}

/*
 * Starts watching fd. Returns 0; -EBADF if fd is negative or not open (as
 * epoll_ctl() does: better now than an EBADF from every poll); -EINVAL if
 * fd >= FD_SETSIZE (quirk 1). Adding a watched fd replaces its mask.
 */
static int
select_backend_add(void *state, int fd, unsigned events)
{
    if (fd < 0) {
        return -EBADF;
    }
    if (fd >= FD_SETSIZE) {
        return -EINVAL;
    }
    if (fcntl(fd, F_GETFD) == -1) {
        return -errno;
    }
    return select_backend_modify(state, fd, 0, events);
}

/*
 * Sets fd's bits in the master sets to new_events and keeps maxfd exact.
 * Returns 0, or -EINVAL for an fd that add() would have refused.
 */
static int
select_backend_modify(void *state, int fd, unsigned old_events,
                      unsigned new_events)
{
    struct select_state *st = state;

    (void) old_events;
    if (fd < 0 || fd >= FD_SETSIZE) {
        return -EINVAL;
    }
    if (new_events & IOLOOP_READ) {
        FD_SET(fd, &st->rfds);
    } else {
        FD_CLR(fd, &st->rfds);
    }
    if (new_events & IOLOOP_WRITE) {
        FD_SET(fd, &st->wfds);
    } else {
        FD_CLR(fd, &st->wfds);
    }
    if ((new_events & (IOLOOP_READ | IOLOOP_WRITE)) && fd > st->maxfd) {
        st->maxfd = fd;
    } else if (fd == st->maxfd) {
        select_backend_shrink(st);
    }
    return 0;
}

/*
 * Stops watching fd: clears its bits. Works the same after close(), since
 * select keeps no kernel state. Returns 0, or -ENOENT for an fd that add()
 * would have refused.
 */
static int
select_backend_remove(void *state, int fd, unsigned old_events)
{
    if (fd < 0 || fd >= FD_SETSIZE) {
        return -ENOENT;
    }
    return select_backend_modify(state, fd, old_events, 0);
}

/*
 * Copies the master sets, waits with select() and turns the bits it sets
 * into at most max events, one per fd, scanning no further than maxfd. A
 * scan cut short by max resumes where it stopped on the next poll, so low
 * fds cannot starve high ones. Returns the number of events, 0 on timeout
 * or EINTR, -errno on failure. Never allocates.
 */
static int
select_backend_poll(void *state, struct ioloop_event *events, int max,
                    int64_t timeout_ns)
{
    struct select_state *st = state;
    struct timeval tv, *tvp;
    fd_set rfds, wfds;
    int err, fd, i, n, nfds, out;
    unsigned bits;

    if (max <= 0) {
        return -EINVAL;
    }
    for (;;) {
        rfds = st->rfds;
        wfds = st->wfds;
        tvp = backend_timeout_timeval(timeout_ns, &tv);
        n = select(st->maxfd + 1, &rfds, &wfds, NULL, tvp);
        if (n != -1) {
            break;
        }
        err = errno;
        if (err == EINTR) {
            return 0;
        }
        if (err != EBADF || select_backend_prune(st) == 0) {
            return -err;
        }
    }
    nfds = st->maxfd + 1;
    out = 0;
    for (i = 0; i < nfds && n > 0 && out < max; i++) {
        fd = (st->next + i) % nfds;
        bits = 0;
        if (FD_ISSET(fd, &rfds)) {
            bits |= IOLOOP_READ;
            n--;
        }
        if (FD_ISSET(fd, &wfds)) {
            bits |= IOLOOP_WRITE;
            n--;
        }
        if (bits != 0) {
            events[out].fd = fd;
            events[out].events = bits;
            out++;
        }
    }
    st->next = n > 0 ? (st->next + i) % nfds : 0;
    return out;
}

/* Lowers maxfd to the highest fd still in either master set, or -1. */
static void
select_backend_shrink(struct select_state *st)
{
    while (st->maxfd >= 0 && !FD_ISSET(st->maxfd, &st->rfds)
           && !FD_ISSET(st->maxfd, &st->wfds))
    {
        st->maxfd--;
    }
}

/*
 * Drops from the master sets every fd that is no longer open (quirk 3).
 * Costs one fcntl() per watched fd, but only on that error path. Returns
 * how many fds were dropped.
 */
static int
select_backend_prune(struct select_state *st)
{
    int dropped, fd;

    dropped = 0;
    for (fd = 0; fd <= st->maxfd; fd++) {
        if ((FD_ISSET(fd, &st->rfds) || FD_ISSET(fd, &st->wfds))
            && fcntl(fd, F_GETFD) == -1 && errno == EBADF)
        {
            FD_CLR(fd, &st->rfds);
            FD_CLR(fd, &st->wfds);
            dropped++;
        }
    }
    select_backend_shrink(st);
    return dropped;
}
