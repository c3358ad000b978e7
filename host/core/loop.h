/*
 * host/core/loop.h: the central loop, host side. Plugins reach these functions
 * only through the API table (api.c); the host and the tests call them
 * directly. Semantics follow tornado's PollIOLoop (docs in
 * api/ioloop/plugin.h and docs/architecture.md).
 */
#ifndef IOLOOP_HOST_LOOP_H
#define IOLOOP_HOST_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ioloop/backend.h>
#include <ioloop/loop.h>
#include <ioloop/plugin.h>

/*
 * Who registered a handler, callback or timer: a plugin instance (its
 * manifest name) or the host. The loop switches to the owner before each
 * dispatch, so that log lines and failures name the right instance and
 * whatever the code registers belongs to it too.
 */
struct ioloop_owner {
    const char *name;
    bool has_log_level;      /* log_level overrides the global threshold */
    int log_level;           /* IOLOOP_LOG_*: lines above it are dropped */
    _Atomic unsigned stalls; /* watchdog reports against this owner */
    /* The owner's periodic callbacks, linked through themselves at
     * periodic_start (no allocation, no scan), so that the host can free
     * what an instance left behind. Loop thread only. */
    struct ioloop_periodic_s *periodics;
};

/* The most events one poll reports; more ready fds wait for the next. */
#define IOLOOP_MAX_EVENTS 1024

/*
 * The longest poll: with no timer pending, or the next one further away.
 * 60 s, as libev (MAX_BLOCKTIME, 59.743 s); tornado waited 3600 s. The
 * cap is not needed for timers to be on time: their deadlines and every
 * backend's wait both run on CLOCK_MONOTONIC, which never jumps. It is
 * there because the loop's counters move only when a poll returns
 * (poll_wait_ns, iterations): an idle loop that slept an hour showed a
 * flat ioloop_poll_wait_seconds_total and then a one-hour step, which
 * breaks any rate() over the usual 1-5 min scrape windows. One extra
 * wake-up a minute costs nothing measurable. See docs/performance.md.
 */
#define IOLOOP_MAX_TIMEOUT (60 * IOLOOP_NS_PER_S)

/*
 * Counters for metrics and tests. The loop writes them in place, possibly
 * into a segment shared with a metrics reader in another process
 * (ioloop__set_stats), so readers see each value whole but not a
 * consistent snapshot.
 */
struct ioloop_stats {
    uint64_t iterations;
    uint64_t callbacks_run;
    uint64_t timers_run;
    uint64_t events_dispatched;
    uint64_t stale_events;   /* polled events dropped by the stale guard */
    uint64_t failures;       /* callbacks and handlers that returned < 0 */
    uint64_t poll_wait_ns;   /* time spent inside the backend's poll */
    uint64_t timers_pending; /* live timers in the heap (a gauge) */
    uint64_t timers_cancelled; /* cancelled, awaiting lazy removal */
    uint64_t compactions;    /* timer heap compactions */
    uint64_t handlers;       /* handlers registered (a gauge) */
    /* Buffered streams closed by their idle, read, write timeout
     * (IOLOOP_STREAM_TIMEOUT_* - 1); stream.c counts them. */
    uint64_t stream_timeouts[3];
    uint64_t streams_open;   /* buffered streams open (a gauge) */
};

/*
 * What the loop is running now, for the blocking watchdog (another
 * thread). seq is odd while a callback, timer or handler runs and even
 * between them and in poll; it changes at every start and end. what is
 * kind | fd << 8 of the run (fd -1 for callbacks and timers). Two stores
 * per run: the hot path pays little for it.
 */
enum ioloop_activity_kind {
    IOLOOP_RUN_CALLBACK,
    IOLOOP_RUN_TIMER,
    IOLOOP_RUN_HANDLER
};

struct ioloop_activity {
    _Atomic uint64_t seq;
    _Atomic int64_t what;
    const struct ioloop_owner *_Atomic owner;
};

#define IOLOOP_ACTIVITY_KIND(what) ((int) ((what) & 0xff))
#define IOLOOP_ACTIVITY_FD(what)                                           \
    ((int) (((int64_t) (what) - ((int64_t) (what) & 0xff)) / 256))

typedef ioloop_time_t (*ioloop_clock_fn)(void *arg);

/*
 * The loop's close queue (libuv's closing_handles). An object that
 * callbacks already queued may still reach (a closed stream) is not freed
 * at once: it links its node here, and the loop calls finish(loop, node,
 * false) in its next iteration, once the callbacks queued before that
 * iteration have run, as owner. ioloop_loop_free calls finish(loop, node,
 * true) for the nodes still queued: their owners have stopped, so finish
 * then only frees. The node is the caller's memory; finish may free it.
 */
struct ioloop_close_node;
typedef void (*ioloop_close_fn)(ioloop_loop_t *loop,
                                struct ioloop_close_node *node, bool discard);

struct ioloop_close_node {
    struct ioloop_close_node *next;
    ioloop_close_fn finish;
    const struct ioloop_owner *owner;
};

/* Queues node (see above); O(1), no allocation. */
void ioloop__close_later(ioloop_loop_t *loop, struct ioloop_close_node *node,
                         ioloop_close_fn finish,
                         const struct ioloop_owner *owner);

/*
 * Takes owner's nodes off the close queue and calls finish(loop, node,
 * true) for each (an instance being released: its code is about to be
 * unloaded). Teardown only, while the loop is not running: linear in the
 * queue.
 */
void ioloop__close_discard_owner(ioloop_loop_t *loop,
                                 const struct ioloop_owner *owner);

/*
 * Per-loop state of the modules built on the loop, one slot each (libuv
 * keeps its signal and EMFILE state in uv_loop_t): two loops on two
 * threads then share nothing. ioloop_loop_free calls the slot's free
 * function after the close queue.
 */
enum ioloop_loop_slot {
    IOLOOP_SLOT_SIGNALS, /* core/signals.c: the loop's subscriptions */
    IOLOOP_SLOT_NET,     /* the socket helpers: listeners, EMFILE reserve */
    IOLOOP_SLOT_RESOLVE, /* runtime/resolve.c: lookups the loop may see */
    IOLOOP_SLOT_HTTP,    /* runtime/http_server.c: the HTTP servers */
    IOLOOP_SLOT_COUNT
};

typedef void (*ioloop_slot_free_fn)(ioloop_loop_t *loop, void *data);

/* The slot's data, NULL until set. O(1): the hot path may call it. */
void *ioloop__slot(const ioloop_loop_t *loop, enum ioloop_loop_slot slot);
/* Sets the slot (it must be empty) and the function that frees it. */
void ioloop__slot_set(ioloop_loop_t *loop, enum ioloop_loop_slot slot,
                      void *data, ioloop_slot_free_fn free_fn);

/* Adds delta to the open-streams gauge of the loop's stats. */
void ioloop__count_streams(ioloop_loop_t *loop, int delta);

/*
 * Creates a loop on the given backend (whose create() is called here).
 * Returns NULL with errno set and one line in err on failure.
 */
ioloop_loop_t *ioloop_loop_new(const struct ioloop_backend *backend,
                               char *err, size_t errlen);

/*
 * Frees the loop and closes its waker and backend. Handlers still
 * registered are dropped (their fds belong to their owners). Must not be
 * called while the loop runs.
 */
void ioloop_loop_free(ioloop_loop_t *loop);

/*
 * A loop belongs to the thread that created it or last started it: only
 * add_callback may be called from other threads. It may be started on a
 * thread other than its creator's while the creator keeps posting
 * callbacks: until a thread runs the loop, every add_callback takes the
 * lock, and only the running thread uses the lock-free path.
 *
 * Runs iterations until ioloop_stop. Returns 0; -EBUSY when the loop is
 * already running; -ECHILD when the loop was made by another process
 * (before a fork). A stop() issued before start() makes it return at once.
 */
int ioloop_start(ioloop_loop_t *loop);
void ioloop_stop(ioloop_loop_t *loop);

int ioloop_add_handler(ioloop_loop_t *loop, int fd, unsigned events,
                       ioloop_io_cb cb, void *arg);
int ioloop_update_handler(ioloop_loop_t *loop, int fd, unsigned events);
int ioloop_remove_handler(ioloop_loop_t *loop, int fd);

int ioloop_add_callback(ioloop_loop_t *loop, ioloop_cb cb, void *arg);
int ioloop_add_callback_from_signal(ioloop_loop_t *loop, ioloop_cb cb,
                                    void *arg);

ioloop_timer_t ioloop_call_at(ioloop_loop_t *loop, ioloop_time_t deadline,
                              ioloop_cb cb, void *arg);
ioloop_timer_t ioloop_call_later(ioloop_loop_t *loop, ioloop_time_t delay,
                                 ioloop_cb cb, void *arg);
int ioloop_cancel(ioloop_loop_t *loop, ioloop_timer_t timer);

ioloop_periodic_t *ioloop_periodic_start(ioloop_loop_t *loop,
                                         ioloop_time_t period, double jitter,
                                         ioloop_cb cb, void *arg);
void ioloop_periodic_stop(ioloop_loop_t *loop, ioloop_periodic_t *periodic);

/*
 * Stops and frees every periodic callback of owner (they belong to the
 * owner that was current at periodic_start); returns how many.
 */
size_t ioloop__periodics_release_owner(ioloop_loop_t *loop,
                                       const struct ioloop_owner *owner);

ioloop_time_t ioloop_time(ioloop_loop_t *loop);

/* Reads the clock now, updates the cached time and returns it. */
ioloop_time_t ioloop__update_time(ioloop_loop_t *loop);

/*
 * Moves every handler onto a fresh state of backend: create(), re-add each
 * fd with its current mask, then destroy() the old state. Used for a live
 * swap (another backend) and after fork (the same one). A handler whose fd
 * was closed without remove_handler is dropped with a warning. On any other
 * failure the old state stays in use and err says why. Returns 0 or -errno.
 * Call it from a callback or timer, not from an I/O handler.
 */
int ioloop__switch_backend(ioloop_loop_t *loop,
                           const struct ioloop_backend *backend, char *err,
                           size_t errlen);

/*
 * Adopts a loop inherited through fork() in the child: new waker, new
 * backend state (the parent's kernel objects are left alone), and the loop
 * then belongs to this process. Without it the child's start() and
 * add_handler() are refused (-ECHILD). Returns 0 or -errno with err set.
 */
int ioloop_loop_after_fork(ioloop_loop_t *loop, char *err, size_t errlen);

/* Sets the owner of what runs next (and of the run in progress, as the
 * watchdog and crash reports see it); returns the previous one. */
const struct ioloop_owner *ioloop__set_owner(ioloop_loop_t *loop,
                                             const struct ioloop_owner *owner);
/* The owner of what runs now (NULL: the host). */
const struct ioloop_owner *ioloop__current_owner(const ioloop_loop_t *loop);
/* The name to tag log lines with: the current owner's, or "host". */
const char *ioloop__owner_name(const ioloop_loop_t *loop);

/*
 * Removes every handler owned by owner (a plugin instance whose init
 * failed); returns how many. Linear in the handler table: not a hot path.
 */
size_t ioloop__remove_owner_handlers(ioloop_loop_t *loop,
                                     const struct ioloop_owner *owner);

/*
 * add_callback and add_callback_from_signal on behalf of owner, whichever
 * thread posts (the API table's: the instance is explicit, not the
 * loop's current owner).
 */
int ioloop__add_callback_as(ioloop_loop_t *loop,
                            const struct ioloop_owner *owner, ioloop_cb cb,
                            void *arg);
int ioloop__add_callback_from_signal_as(ioloop_loop_t *loop,
                                        const struct ioloop_owner *owner,
                                        ioloop_cb cb, void *arg);

/* Cancels every pending timer of owner; returns how many. Teardown only:
 * linear in the timer slots. */
size_t ioloop__cancel_owner_timers(ioloop_loop_t *loop,
                                   const struct ioloop_owner *owner);

/*
 * Drops the callbacks owner queued that have not run yet (from any thread
 * or a signal handler); returns how many. Teardown only: linear in the
 * queues.
 */
size_t ioloop__drop_owner_callbacks(ioloop_loop_t *loop,
                                    const struct ioloop_owner *owner);

/*
 * Calls fn(arg) for every handler of owner whose callback is cb (the
 * objects a module hangs on its handlers, e.g. streams); fn may remove
 * the handler. Returns how many. Teardown only: linear in the table.
 */
size_t ioloop__each_owner_handler(ioloop_loop_t *loop,
                                  const struct ioloop_owner *owner,
                                  ioloop_io_cb cb, void (*fn)(void *arg));

/* Handlers registered by plugins and the host (the waker excluded). */
size_t ioloop__handler_count(const ioloop_loop_t *loop);
const struct ioloop_stats *ioloop__stats(const ioloop_loop_t *loop);
/* The same, writable: other core modules count into it. */
struct ioloop_stats *ioloop__stats_w(ioloop_loop_t *loop);

/*
 * Makes the loop count into *stats (e.g. a worker's slot of a shared
 * metrics segment) from now on; the current values are copied there.
 * NULL goes back to the loop's own counters.
 */
void ioloop__set_stats(ioloop_loop_t *loop, struct ioloop_stats *stats);

/* The loop's activity record, for the watchdog thread. */
const struct ioloop_activity *ioloop__activity(const ioloop_loop_t *loop);
const struct ioloop_backend *ioloop__backend(const ioloop_loop_t *loop);

/*
 * Replaces the clock (tests use a fake one) and reads it at once. The
 * default is CLOCK_MONOTONIC.
 */
void ioloop__set_clock(ioloop_loop_t *loop, ioloop_clock_fn fn, void *arg);

#endif /* IOLOOP_HOST_LOOP_H */
