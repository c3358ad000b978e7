/*
 * ioloop/testing.h: libioloop_testing, unit tests for plugins on the real
 * loop.
 *
 * The library is the host's own loop, timers, streams, sockets, API table
 * and plugin lifecycle, with two things replaced: the clock, which moves
 * only when the test says so, and the backend, whose readiness the test
 * scripts (or the real epoll backend, on request). A plugin started here
 * goes through the host's checks and init path, so it sees the same API
 * table and a bad config gets the same message as from the host.
 *
 *     ioloop_testing_t *t = ioloop_testing_new(0);
 *     ioloop_testing_instance_t *kv;
 *
 *     if (ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
 *                              "{\"listen\": \"127.0.0.1:0\"}", &kv) < 0) {
 *         puts(ioloop_testing_error(t));  - the host's own message
 *     }
 *     ioloop_testing_fire(t, fd, IOLOOP_READ); - fd polled ready once
 *     ioloop_testing_advance(t, IOLOOP_NS_PER_S); - timers due on the way
 *     ioloop_testing_log_count(t, "listening"); - what the plugin logged
 *     ioloop_testing_stop(kv);                 - fini, then the host's
 *     ioloop_testing_free(t);                    clean-up of the instance
 *
 * Streams, listeners and accept are the host's: a socketpair or a TCP
 * connection to the plugin's listener carries real bytes. In the default
 * (scripted) mode only readiness is scripted: a handler runs when the test
 * fires its fd. With IOLOOP_TESTING_EPOLL the real epoll backend reports
 * real readiness, and ioloop_testing_run waits for it.
 *
 * One harness per process at a time: signals, the metrics the API's
 * counters count into, and the log are process-wide in the host. While a
 * harness exists the host's log lines go to its buffer, not stderr, and
 * SIGPIPE is ignored (as the host ignores it). Loop thread only: call
 * everything from the thread that made the harness.
 *
 * Link with -lioloop_testing (CMake: ioloop::testing; pkg-config:
 * ioloop-testing).
 */
#ifndef IOLOOP_TESTING_H
#define IOLOOP_TESTING_H

#include <stddef.h>

#include <ioloop/loop.h>
#include <ioloop/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A loop on a fake clock with the host's runtime around it. Opaque. */
typedef struct ioloop_testing_s ioloop_testing_t;

/* One plugin instance started in a harness. Opaque. */
typedef struct ioloop_testing_instance_s ioloop_testing_instance_t;

/* The fake clock's value in a new harness: not 0, so that code which
 * takes 0 for "never" shows. */
#define IOLOOP_TESTING_EPOCH ((ioloop_time_t) 1000 * IOLOOP_NS_PER_S)

/* Flags for ioloop_testing_new. */
#define IOLOOP_TESTING_EPOLL 0x01u /* real readiness from the epoll backend */

/*
 * Makes a harness: a loop on a scripted backend (or epoll, with
 * IOLOOP_TESTING_EPOLL) and a fake clock at IOLOOP_TESTING_EPOCH, with
 * the host's metrics attached. Returns NULL with errno set: EBUSY (another
 * harness exists), EINVAL (unknown flag), ENOMEM, or the backend's error.
 */
ioloop_testing_t *ioloop_testing_new(unsigned flags);

/*
 * Stops every instance still started (last started first, as the host
 * does at exit), then frees the loop, the log and the harness: the host
 * holds no fd and no allocation afterwards. NULL is a no-op.
 */
void ioloop_testing_free(ioloop_testing_t *t);

/*
 * Starts an instance named name of plugin (the descriptor a plugin
 * exports, usually &ioloop_plugin_v1 linked into the test) with config,
 * the JSON text of the manifest entry's "config" (NULL: no "config"), as
 * the host starts the first entry of a manifest: the descriptor's ABI
 * checks, the manifest's and the host's config checks, then init, with
 * the host's clean-up when init fails. On success *out (may be NULL) gets
 * the instance and 0 is returned. On failure *out gets NULL, -errno is
 * returned (init's value, or -EINVAL for a refused descriptor or config)
 * and ioloop_testing_error gives the host's one-line message, the part it
 * prints after "ioloop-host: MANIFEST: ", with this start as plugins[0]:
 *   plugins[0] "kv": init failed: config.listen: expected a string
 */
int ioloop_testing_start(ioloop_testing_t *t,
                         const struct ioloop_plugin *plugin, const char *name,
                         const char *config, ioloop_testing_instance_t **out);

/* The message of the last failed start ("" when none failed). */
const char *ioloop_testing_error(const ioloop_testing_t *t);

/*
 * Stops an instance as the host stops it: its fini, then the host
 * releases whatever the instance still had registered (streams, timers,
 * periodics, queued callbacks, signal subscriptions, handlers, open
 * listeners; a "fini left ..." warning names what), and frees the
 * instance. NULL is a no-op. As in the host, none of the instance's
 * callbacks runs afterwards: a stream it closed in fini is freed without
 * its close callback.
 */
void ioloop_testing_stop(ioloop_testing_instance_t *inst);

/* The state the instance's init stored (for white-box tests). */
void *ioloop_testing_state(const ioloop_testing_instance_t *inst);

/*
 * Has the next poll report events on fd, once, then runs one iteration
 * (ioloop_testing_run(t, 0)). The loop filters them as always: a handler
 * sees the bits it asked for plus IOLOOP_ERROR and IOLOOP_HUP. Returns
 * what ioloop_testing_run returns; -ENOENT when fd has no handler.
 */
int ioloop_testing_fire(ioloop_testing_t *t, int fd, unsigned events);

/*
 * One loop iteration at the current fake time: the queued callbacks, the
 * due timers, one poll (scripted: the fired events; epoll: real readiness,
 * waiting up to wait_ms ms of real time unless callbacks are pending),
 * then dispatch. Returns how many callbacks, timers and handlers ran.
 */
int ioloop_testing_run(ioloop_testing_t *t, int wait_ms);

/*
 * Moves the fake clock forward by ns, running an iteration at each timer
 * deadline on the way, as many as there is work due at that time, and at
 * the end (a timer that re-arms itself runs once per period crossed).
 * Polls do not wait. Returns how many callbacks, timers and handlers ran,
 * or -ELOOP when the work due at one time did not settle in 10000
 * iterations (a callback that re-adds itself forever).
 */
int ioloop_testing_advance(ioloop_testing_t *t, ioloop_time_t ns);

/* The fake clock (what the API's time returns). */
ioloop_time_t ioloop_testing_now(const ioloop_testing_t *t);

/*
 * The host's log since the harness was made or last cleared, one
 * "LEVEL [TAG] MESSAGE\n" per line (the host's plain format without its
 * timestamp); a plugin's lines are tagged with its instance name.
 */
const char *ioloop_testing_log(const ioloop_testing_t *t);

/* How many times text occurs in the captured log. */
int ioloop_testing_log_count(const ioloop_testing_t *t, const char *text);

/* Empties the captured log. */
void ioloop_testing_log_clear(ioloop_testing_t *t);

/* How many handlers the instances have registered, over all of them. */
int ioloop_testing_handlers(const ioloop_testing_t *t);

/* The event mask of fd's handler, or -1 when fd has none. */
int ioloop_testing_handler_events(const ioloop_testing_t *t, int fd);

/* How many callbacks, timers and handlers returned -errno, as the loop
 * counts them (its failures statistic; EPIPE and ECONNRESET included). */
int ioloop_testing_failures(const ioloop_testing_t *t);

/*
 * The value of the first counter series registered (counter_register)
 * as name, with label value value (NULL: a series without a label), as
 * the API's metrics_render shows it; -1 when there is none.
 */
long long ioloop_testing_counter(ioloop_testing_t *t, const char *name,
                                 const char *value);

/*
 * The value of the first sample name{worker="0",instance="I",LABELS} (any
 * instance I) as the API's metrics_render shows it, of any type: labels is
 * what follows the instance label, exactly as rendered (the series' own
 * labels sorted by name and escaped, then le for a histogram's bucket),
 * e.g. "command=\"GET\",outcome=\"ok\"" or "le=\"+Inf\"", NULL for
 * none; NaN when there is no such sample. Since 1.1.
 */
double ioloop_testing_metric(ioloop_testing_t *t, const char *name,
                             const char *labels);

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_TESTING_H */
