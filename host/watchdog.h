/*
 * host/watchdog.h: the blocking-callback watchdog (DESIGN.md item 9,
 * tornado's set_blocking_signal_threshold, the manifest's "watchdog_ms").
 * A monitor thread samples the loop's activity record; when one callback,
 * timer or handler holds the loop for the threshold, it logs once per
 * stall, at warn, tagged with the owner's name:
 *   ... warn [hello] blocked the loop for 31 ms in handler for fd 7
 *   (watchdog_ms=30)
 * counts the stall in owner->stalls, and makes the loop thread write its
 * own stack to stderr (backtrace_symbols_fd, one frame per line) from an
 * IOLOOP_WATCHDOG_SIGNAL handler. One watchdog per process.
 */
#ifndef IOLOOP_HOST_WATCHDOG_H
#define IOLOOP_HOST_WATCHDOG_H

#include <signal.h>

#include "loop.h"

/*
 * The signal that asks the loop thread for its stack. SIGURG is ignored
 * by default, so one still in flight after ioloop__watchdog_stop() is
 * harmless (a real-time signal would kill the process), and a host that
 * uses no socket out-of-band data has no other use for it (Go's runtime
 * took SIGURG for its preemption for the same reasons).
 * ioloop_signal_subscribe must refuse it to plugins.
 */
#define IOLOOP_WATCHDOG_SIGNAL SIGURG

/*
 * Starts watching loop: a stall is one callback, timer or handler that
 * runs for threshold_ms or more. Call it from the thread that runs
 * ioloop_start (its stack is the one dumped), after the loop is created,
 * in the process that runs the loop (a child of fork() must start its
 * own). The loop and every owner must outlive ioloop__watchdog_stop().
 * Owners are counted through a cast: none may be defined const.
 * Returns 0 (also for threshold_ms <= 0: the watchdog stays off); -EBUSY
 * when a watchdog runs already or IOLOOP_WATCHDOG_SIGNAL has a handler;
 * -errno from pthread_create or sigaction, logged.
 */
int ioloop__watchdog_start(ioloop_loop_t *loop, int threshold_ms);

/*
 * Stops the monitor thread (at once, whatever the threshold), joins it
 * and restores the signal's previous disposition. Safe when never
 * started, and in a child of fork() whose parent started one.
 */
void ioloop__watchdog_stop(void);

#endif /* IOLOOP_HOST_WATCHDOG_H */
