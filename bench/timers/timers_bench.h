/*
 * bench/timers/timers_bench.h: the timers benchmark's contender interface
 * (named so as not to shadow host/core/timers.h).
 *
 * A contender preallocates T timers at create(); add_all() starts timer i
 * with delay_ns[i]; cancel_odd() cancels timers 1, 3, 5, ...; once every
 * deadline has passed, fire() runs the loop until the survivors fired.
 */
#ifndef IOLOOP_BENCH_TIMERS_H
#define IOLOOP_BENCH_TIMERS_H

#include <stddef.h>
#include <stdint.h>

struct tm_ops {
    const char *name;
    /* NULL with the reason in err when it cannot run here. */
    void *(*create)(const void *param, size_t t, char *err, size_t errlen);
    void (*add_all)(void *ctx, const int64_t *delay_ns, size_t t);
    void (*cancel_odd)(void *ctx, size_t t);
    /* Returns once `survivors` timers fired. */
    void (*fire)(void *ctx, size_t survivors);
    void (*destroy)(void *ctx);
};

extern const struct tm_ops tm_ioloop;
extern const struct tm_ops tm_libev;
extern const struct tm_ops tm_libevent;
extern const struct tm_ops tm_libuv;

#endif /* IOLOOP_BENCH_TIMERS_H */
