/*
 * ioloop/loop.h: the vocabulary shared by the host, its backends and its
 * plugins: event bits, the opaque loop handle, time and callback types.
 *
 * This header is part of the installed SDK. It depends on libc only.
 */
#ifndef IOLOOP_LOOP_H
#define IOLOOP_LOOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Packs an ABI version: the major changes on any incompatible change, the
 * minor when members are appended to a table. */
#define IOLOOP_ABI_VERSION(major, minor) \
    ((uint32_t) (((uint32_t) (major) << 16) | ((uint32_t) (minor) & 0xffffu)))
#define IOLOOP_ABI_MAJOR(v) ((uint32_t) (v) >> 16)
#define IOLOOP_ABI_MINOR(v) ((uint32_t) (v) & 0xffffu)

/* Marks the one symbol a backend or plugin .so exports. Build modules with
 * -fvisibility=hidden so that nothing else leaks into the host's namespace. */
#define IOLOOP_EXPORT __attribute__((visibility("default")))

/*
 * Readiness bits. Level-triggered: a bit is reported on every poll for as
 * long as the condition holds. IOLOOP_ERROR and IOLOOP_HUP are always
 * reported, whether or not they were asked for, by every backend but
 * select, where an error or hang-up shows only as READ/WRITE (a read or
 * write then returns the error or EOF).
 */
#define IOLOOP_READ  0x01u /* readable, or the peer closed its write side */
#define IOLOOP_WRITE 0x02u /* writable without blocking */
#define IOLOOP_ERROR 0x04u /* an error is pending on the fd (SO_ERROR) */
#define IOLOOP_HUP   0x08u /* hang-up: both directions are closed */

/* The loop handle. Opaque: only the host knows its layout. */
typedef struct ioloop_loop_s ioloop_loop_t;

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC); never steps backwards. */
typedef int64_t ioloop_time_t;

#define IOLOOP_NS_PER_MS ((ioloop_time_t) 1000000)
#define IOLOOP_NS_PER_S  ((ioloop_time_t) 1000000000)

/*
 * A timer handle. 0 is never a valid handle. A handle stays safe to cancel
 * after its timer fired or was cancelled: it is then simply stale.
 */
typedef uint64_t ioloop_timer_t;

/*
 * A callback or timer function. Returns 0, or -errno when it failed: the
 * loop logs the failure with the owning plugin's name (except -EPIPE and
 * -ECONNRESET, a peer that went away) and goes on.
 */
typedef int (*ioloop_cb)(ioloop_loop_t *loop, void *arg);

/*
 * A readiness handler. events holds the IOLOOP_* bits that are ready and
 * were asked for, plus IOLOOP_ERROR/IOLOOP_HUP. Returns 0 or -errno, as
 * ioloop_cb does.
 */
typedef int (*ioloop_io_cb)(ioloop_loop_t *loop, int fd, unsigned events,
                            void *arg);

/* Log levels, most severe first. */
enum ioloop_log_level {
    IOLOOP_LOG_ERROR = 0,
    IOLOOP_LOG_WARN = 1,
    IOLOOP_LOG_INFO = 2,
    IOLOOP_LOG_DEBUG = 3
};

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_LOOP_H */
