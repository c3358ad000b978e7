/*
 * host/core/signals.h: signal subscriptions. A delivered signal only sets a
 * flag and posts one signal-safe callback to the loop (the self-pipe idea
 * of tornado and Python's set_wakeup_fd); subscribers run on the loop
 * thread. The subscriptions are the loop's; a signal is process-wide, so
 * it posts to one loop at a time: the loop of its first subscriber, until
 * its last one leaves. Two loops on two threads may hold different
 * signals at once.
 */
#ifndef IOLOOP_HOST_SIGNALS_H
#define IOLOOP_HOST_SIGNALS_H

#include <signal.h>

#include <ioloop/plugin.h>

#include "loop.h"

/*
 * Reserved: ioloop_signal_subscribe refuses it to plugins, as plugin ABI
 * 1.0 documents. The watchdog sent it to take stacks until it learnt to
 * read them without disturbing the thread.
 */
#define IOLOOP_WATCHDOG_SIGNAL SIGURG

/* At most this many subscriptions at once per loop, over all signals. */
#define IOLOOP_MAX_SIGNAL_SUBS 64

/*
 * Subscribes cb to signo; the subscription belongs to the loop's current
 * owner. Returns an id > 0, or -EINVAL (a signal nobody may catch, or one
 * the host keeps: see the API docs), -EBUSY (another loop holds signo),
 * -ENOSPC (table full), -errno from sigaction.
 */
int ioloop_signal_subscribe(ioloop_loop_t *loop, int signo,
                            ioloop_signal_cb cb, void *arg);

/*
 * The host's own subscriptions (SIGINT/SIGTERM stop, SIGUSR2 swap): like
 * ioloop_signal_subscribe without the reserved-signal check.
 */
int ioloop__signal_subscribe_host(ioloop_loop_t *loop, int signo,
                                  ioloop_signal_cb cb, void *arg);

/* Ends a subscription; the signal's default disposition comes back with
 * its last subscriber. -ENOENT for an unknown id. */
int ioloop_signal_unsubscribe(ioloop_loop_t *loop, int id);

/* Ends every subscription of owner (a plugin instance that stopped);
 * returns how many. */
int ioloop__signal_unsubscribe_owner(ioloop_loop_t *loop,
                                     const struct ioloop_owner *owner);

#endif /* IOLOOP_HOST_SIGNALS_H */
