/*
 * backends/backend_util.h: what every poller backend shares, compiled into
 * each .so (a backend links nothing of the host): the host's timeout in
 * the unit of the wait call, and a failed call named in err. Internal to
 * backends/: not part of the SDK.
 */
#ifndef IOLOOP_BACKEND_UTIL_H
#define IOLOOP_BACKEND_UTIL_H

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <ioloop/backend.h>

/*
 * The host's timeout in milliseconds (epoll_wait, poll): negative is
 * forever (-1), 0 no wait, anything else rounded *up* (1 ns waits 1 ms,
 * not 0, or the host would spin until its timer is due). Clamped to
 * INT_MAX ms.
 */
static inline int
backend_timeout_ms(int64_t timeout_ns)
{
    int64_t ms;

    if (timeout_ns < 0) {
        return -1;
    }
    ms = timeout_ns / IOLOOP_NS_PER_MS + (timeout_ns % IOLOOP_NS_PER_MS != 0);
    return ms > INT_MAX ? INT_MAX : (int) ms;
}

/*
 * The host's timeout as a timeval in tv (select): negative is forever
 * (NULL), 0 no wait, anything else rounded *up* to the microsecond, for
 * the same reason.
 */
static inline struct timeval *
backend_timeout_timeval(int64_t timeout_ns, struct timeval *tv)
{
    int64_t us;

    if (timeout_ns < 0) {
        return NULL;
    }
    us = timeout_ns / 1000 + (timeout_ns % 1000 != 0);
    tv->tv_sec = (time_t) (us / 1000000);
    tv->tv_usec = (suseconds_t) (us % 1000000);
    return tv;
}

/*
 * The host's timeout as a timespec in ts (kevent): negative is forever
 * (NULL), anything else exact to the nanosecond, so nothing needs
 * rounding. Clamped to max_sec seconds.
 */
static inline struct timespec *
backend_timeout_timespec(int64_t timeout_ns, struct timespec *ts,
                         int64_t max_sec)
{
    if (timeout_ns < 0) {
        return NULL;
    }
    if (timeout_ns / IOLOOP_NS_PER_S >= max_sec) {
        ts->tv_sec = (time_t) max_sec;
        ts->tv_nsec = 0;
    } else {
        ts->tv_sec = (time_t) (timeout_ns / IOLOOP_NS_PER_S);
        ts->tv_nsec = (long) (timeout_ns % IOLOOP_NS_PER_S);
    }
    return ts;
}

/* Writes "call: strerror(errno)" to err, leaving errno as it was. */
static inline void
backend_error(char *err, size_t errlen, const char *call)
{
    int saved = errno;

    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s: %s", call, strerror(saved));
    }
    errno = saved;
}

#endif /* IOLOOP_BACKEND_UTIL_H */
