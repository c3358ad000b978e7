/* host/core/clock.h: the monotonic clock the loop reads once per iteration. */
#ifndef IOLOOP_HOST_CLOCK_H
#define IOLOOP_HOST_CLOCK_H

#include <time.h>

#include <ioloop/loop.h>

/* CLOCK_MONOTONIC in ns (vDSO on Linux: no system call). */
static inline ioloop_time_t
ioloop__monotonic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ioloop_time_t) ts.tv_sec * IOLOOP_NS_PER_S + ts.tv_nsec;
}

#endif /* IOLOOP_HOST_CLOCK_H */
