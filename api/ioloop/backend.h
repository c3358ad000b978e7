/*
 * ioloop/backend.h: the poller backend ABI.
 *
 * A backend is a shared object that exports one symbol,
 *
 *     IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = { ... };
 *
 * It is a pure poller: it knows nothing of handlers, callbacks or timers. The
 * host registers fds with add/modify/remove and asks poll() for a batch of
 * (fd, events) pairs, which it dispatches itself. Every backend gives
 * level-triggered semantics.
 *
 * Forward compatibility: members are only ever appended, each marked with
 * the minor version that added it; `size` tells the host how many a backend
 * has. A backend must never call exit() or print: it reports errors through
 * its return values and the err buffers it is given.
 */
#ifndef IOLOOP_BACKEND_H
#define IOLOOP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <ioloop/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOLOOP_BACKEND_ABI_MAJOR 1
#define IOLOOP_BACKEND_ABI_MINOR 0
#define IOLOOP_BACKEND_ABI \
    IOLOOP_ABI_VERSION(IOLOOP_BACKEND_ABI_MAJOR, IOLOOP_BACKEND_ABI_MINOR)

/* The name of the symbol the host looks up with dlsym(). */
#define IOLOOP_BACKEND_SYMBOL "ioloop_backend_v1"

/* One ready fd, as poll() reports it. */
struct ioloop_event {
    int32_t fd;
    uint32_t events; /* IOLOOP_READ | IOLOOP_WRITE | IOLOOP_ERROR | ... */
};

struct ioloop_backend {
    /* IOLOOP_BACKEND_ABI at build time. The host refuses another major. */
    uint32_t abi_version;
    /* sizeof(struct ioloop_backend) at build time. */
    uint32_t size;
    /* Short lowercase name, equal to the file name without ".so". */
    const char *name;
    /* fds >= max_fd cannot be watched (select: FD_SETSIZE); 0: no limit.
     * The host refuses such an fd with a message that names the limit. */
    uint32_t max_fd;

    /*
     * Creates the kernel state (epoll fd, fd_sets, ...). size_hint is the
     * number of fds the host expects; it is only a hint. Returns the
     * backend's state, or NULL with errno set and a one-line reason
     * (without a trailing newline) written to err, e.g. "io_uring_setup:
     * Operation not permitted (kernel.io_uring_disabled=2)". Every fd the
     * backend opens is close-on-exec.
     */
    void *(*create)(unsigned size_hint, char *err, size_t errlen);

    /* Frees the state and closes its fds. state may be NULL. */
    void (*destroy)(void *state);

    /*
     * Starts watching fd for the given IOLOOP_READ/IOLOOP_WRITE bits
     * (possibly none). Returns 0 or -errno; -EINVAL when the backend cannot
     * represent this fd (select: fd >= FD_SETSIZE).
     */
    int (*add)(void *state, int fd, unsigned events);

    /*
     * Changes the interest set of a watched fd from old_events to
     * new_events. Passing the old mask lets a backend keep no copy of the
     * interest set unless it needs one. Returns 0 or -errno.
     */
    int (*modify)(void *state, int fd, unsigned old_events,
                  unsigned new_events);

    /*
     * Stops watching fd. May be called after fd was closed, in which case
     * the backend drops its own state and may return -EBADF or -ENOENT,
     * which the host ignores. (The host API tells plugins to remove before
     * closing: epoll cannot forget a closed fd while a dup of it is open.)
     */
    int (*remove)(void *state, int fd, unsigned old_events);

    /*
     * Waits until at least one watched fd is ready or timeout_ns passes
     * (-1: no timeout, 0: do not block). The timeout is rounded *up* to the
     * backend's granularity, never down, so the host never wakes just
     * before a timer is due and spins. Fills at most max entries of events
     * and returns how many; 0 on timeout or EINTR; -errno on failure. The
     * backend never calls a handler.
     */
    int (*poll)(void *state, struct ioloop_event *events, int max,
                int64_t timeout_ns);
};

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_BACKEND_H */
