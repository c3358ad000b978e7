/*
 * host/core/waker.h: wakes a loop blocked in poll from another thread or from a
 * signal handler: an eventfd on Linux, a non-blocking self-pipe elsewhere
 * (as tornado's Waker and Python's signal.set_wakeup_fd).
 */
#ifndef IOLOOP_HOST_WAKER_H
#define IOLOOP_HOST_WAKER_H

struct ioloop_waker {
    int read_fd;  /* registered for IOLOOP_READ in the loop */
    int write_fd; /* equal to read_fd for an eventfd */
};

/* Opens the waker (close-on-exec, non-blocking). 0 or -errno. */
int ioloop__waker_open(struct ioloop_waker *w);
void ioloop__waker_close(struct ioloop_waker *w);

/* Makes read_fd readable. Async-signal-safe; preserves errno. */
void ioloop__waker_wake(const struct ioloop_waker *w);

/* Consumes every pending wake-up so read_fd is no longer readable. */
void ioloop__waker_drain(const struct ioloop_waker *w);

#endif /* IOLOOP_HOST_WAKER_H */
