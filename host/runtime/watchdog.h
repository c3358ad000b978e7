/*
 * host/runtime/watchdog.h: the blocking-callback watchdog (tornado's
 * set_blocking_signal_threshold, the manifest's "watchdog_ms" and
 * "watchdog_kill_ms"). A monitor thread samples the loop's activity
 * record; when one callback, timer or handler holds the loop for
 * watchdog_ms, it logs once per stall, at warn, tagged with the owner:
 *   ... warn [hello] blocked the loop for 31 ms in handler for fd 7
 *   (watchdog_ms=30)
 * counts the stall in owner->stalls and in the metrics, and logs where
 * the loop thread is, read from outside it (stackread.h): one line with
 * the frames as a list.
 *
 * The guarantee: the watchdog never signals, stops or traces the loop
 * thread. It reads memory and /proc only, so every system call the
 * stalled code makes returns exactly what it would without a watchdog (a
 * 2 s nanosleep sleeps 2 s; a read is not cut short by EINTR).
 *
 * With watchdog_kill_ms, the monitor also publishes the start of every
 * run that spans two samples in the metrics segment
 * (ioloop__metrics_note_blocked), where the master finds a worker blocked
 * for too long and replaces it. One watchdog per process.
 */
#ifndef IOLOOP_HOST_WATCHDOG_H
#define IOLOOP_HOST_WATCHDOG_H

#include <signal.h>

#include "loop.h"
#include "signals.h" /* IOLOOP_WATCHDOG_SIGNAL, reserved */

/*
 * Starts watching loop: a stall is one callback, timer or handler that
 * runs for threshold_ms or more (0: none reported); kill_ms > 0 publishes
 * long runs for the master (see above). Call it from the thread that runs
 * ioloop_start (the one whose stack is read), after the loop is created,
 * in the process that runs the loop (a child of fork() must start its
 * own). The loop and every owner must outlive ioloop__watchdog_stop().
 * Owners are counted through a cast: none may be defined const.
 * Returns 0 (also when both are <= 0: the watchdog stays off); -EBUSY
 * when a watchdog runs already; -errno from pthread_create, logged.
 */
int ioloop__watchdog_start(ioloop_loop_t *loop, int threshold_ms,
                           int kill_ms);

/*
 * Stops the monitor thread (at once, whatever the threshold) and joins
 * it. Safe when never started, and in a child of fork() whose parent
 * started one.
 */
void ioloop__watchdog_stop(void);

#endif /* IOLOOP_HOST_WATCHDOG_H */
