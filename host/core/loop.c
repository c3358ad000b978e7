/*
 * host/core/loop.c: the central loop (tornado's PollIOLoop in C): callbacks,
 * timers and level-triggered dispatch of the events a backend polled.
 *
 * One iteration (run_iteration) is, phase by phase:
 *   1. read the clock; take callbacks queued by other threads and signal
 *      handlers; fix which timers are due (tornado: before the callbacks,
 *      so a call_later(0) made by a callback or a timer waits for the
 *      next iteration, after ready I/O had its turn);
 *   2. run the callbacks queued before this iteration (starvation guard),
 *      then finish what was closed before it (the close queue: after the
 *      callbacks that may still reach it);
 *   3. run the due timers fixed in 1, popped one by one;
 *   4. leave if stopped, else poll with a timeout of 0 when callbacks are
 *      pending, else until the next deadline (capped);
 *   5. dispatch each event to its handler unless the handler went away or
 *      was registered after the poll (the stale-event guard).
 * Steady state allocates nothing: every array only grows.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "timers.h"
#include "waker.h"

#define SIGNAL_SLOTS 64

struct handler {
    ioloop_io_cb cb; /* NULL: no handler */
    void *arg;
    const struct ioloop_owner *owner;
    uint32_t events;
    /* Low bits of loop->poll_seq when registered: an event from a poll
     * that came back before the handler existed is not for it. Wrapping
     * is harmless: level-triggered readiness is reported again. */
    uint32_t poll_seq;
};

struct callback {
    ioloop_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
};

struct cbvec {
    struct callback *v;
    size_t len;
    size_t cap;
};

/* A callback posted from a signal handler: no lock, no allocation. */
struct signal_slot {
    atomic_int state; /* SIG_FREE, SIG_WRITING, SIG_READY */
    ioloop_cb cb;
    void *arg;
    const struct ioloop_owner *owner;
};

enum { SIG_FREE = 0, SIG_WRITING, SIG_READY };

/* A FIFO of close nodes; tail points at the last next (or at head). */
struct close_queue {
    struct ioloop_close_node *head;
    struct ioloop_close_node **tail;
};

struct slot {
    void *data;
    ioloop_slot_free_fn free_fn;
};

struct ioloop_loop_s {
    const struct ioloop_backend *backend;
    void *backend_state;

    struct handler *handlers; /* indexed by fd */
    size_t handlers_cap;
    size_t handler_count; /* the waker's excluded */
    uint64_t poll_seq;
    struct ioloop_event events[IOLOOP_MAX_EVENTS];

    struct cbvec pending; /* run next iteration */
    struct cbvec batch;   /* being run this iteration */
    struct ioloop_timers timers;
    struct close_queue closing; /* closed since this iteration began */
    struct slot slots[IOLOOP_SLOT_COUNT];

    pthread_mutex_t remote_lock;
    struct cbvec remote; /* from other threads, under remote_lock */
    atomic_int remote_pending;
    struct signal_slot signal_slots[SIGNAL_SLOTS];
    atomic_int signal_pending;
    struct ioloop_waker waker;

    ioloop_clock_fn clock;
    void *clock_arg;
    ioloop_time_t now;

    const struct ioloop_owner *current;
    struct ioloop_activity activity;
    uint64_t activity_seq; /* the loop's own copy of activity.seq */
    /* &thread_tag of the thread inside ioloop_start, NULL when none is:
     * see ioloop_add_callback. */
    _Atomic(const char *) thread;
    unsigned fork_generation;
    bool running;
    bool stopped;
    struct ioloop_stats *stats; /* own_stats, or a shared segment's slot */
    struct ioloop_stats own_stats;
};

/* Bumped in every child after fork(); a loop remembers its value. */
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static struct ioloop_owner host_owner = {.name = "host"};

/* Its address differs in every thread: comparing it with the loop's copy
 * tells the loop's thread apart without a call (add_callback's fast path). */
static _Thread_local char thread_tag;

/* The owner this thread last set with ioloop__set_owner, and on which
 * loop: a callback posted through the lock (before the loop runs, as a
 * plugin's init does) keeps it. */
static _Thread_local const ioloop_loop_t *owner_loop;
static _Thread_local const struct ioloop_owner *owner_set;

static void run_iteration(ioloop_loop_t *loop);
static void activity_begin(ioloop_loop_t *loop,
                           const struct ioloop_owner *owner, int kind,
                           int fd);
static void activity_end(ioloop_loop_t *loop);
static void take_foreign_callbacks(ioloop_loop_t *loop);
static void run_callbacks(ioloop_loop_t *loop);
static void run_closing(ioloop_loop_t *loop, struct ioloop_close_node *node);
static void close_queue_init(struct close_queue *q);
static void run_timers(ioloop_loop_t *loop);
static int64_t poll_timeout(ioloop_loop_t *loop);
static void dispatch(ioloop_loop_t *loop, int n);
static void report_failure(ioloop_loop_t *loop, int rc, const char *what,
                           int fd);
static int add_remote_callback(ioloop_loop_t *loop, ioloop_cb cb, void *arg,
                               const struct ioloop_owner *owner)
    __attribute__((noinline));
static int dropped_callback(ioloop_loop_t *loop, void *arg);
static size_t drop_owned(struct cbvec *q, const struct ioloop_owner *owner);
static inline int cbvec_push(struct cbvec *q, ioloop_cb cb, void *arg,
                             const struct ioloop_owner *owner);
static int cbvec_grow(struct cbvec *q) __attribute__((noinline));
static int reserve_fd(ioloop_loop_t *loop, int fd);
static int waker_handler(ioloop_loop_t *loop, int fd, unsigned events,
                         void *arg);
static ioloop_time_t monotonic_clock(void *arg);
static void count_fork(void);
static void install_atfork(void);

ioloop_loop_t *
ioloop_loop_new(const struct ioloop_backend *backend, char *err,
                size_t errlen)
{
    ioloop_loop_t *loop;
    int rc;

    pthread_once(&atfork_once, install_atfork);
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        snprintf(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    loop->backend = backend;
    loop->stats = &loop->own_stats;
    loop->clock = monotonic_clock;
    loop->now = monotonic_clock(NULL);
    loop->fork_generation = atomic_load(&fork_generation);
    loop->waker.read_fd = -1;
    loop->waker.write_fd = -1;
    ioloop__timers_init(&loop->timers);
    close_queue_init(&loop->closing);
    pthread_mutex_init(&loop->remote_lock, NULL);

    err[0] = '\0';
    loop->backend_state = backend->create(64, err, errlen);
    if (loop->backend_state == NULL) {
        rc = errno ? -errno : -EINVAL;
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s: create failed: %s", backend->name,
                     strerror(-rc));
        }
        goto fail;
    }
    rc = ioloop__waker_open(&loop->waker);
    if (rc < 0) {
        snprintf(err, errlen, "waker: %s", strerror(-rc));
        goto fail;
    }
    loop->current = &host_owner;
    rc = ioloop_add_handler(loop, loop->waker.read_fd, IOLOOP_READ,
                            waker_handler, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot watch the waker fd: %s",
                 backend->name, strerror(-rc));
        goto fail;
    }
    loop->handler_count--; /* the waker is not a user handler */
    loop->current = NULL;
    return loop;

fail:
    ioloop_loop_free(loop);
    errno = -rc;
    return NULL;
}

void
ioloop_loop_free(ioloop_loop_t *loop)
{
    struct ioloop_close_node *node, *next;

    if (loop == NULL) {
        return;
    }
    for (node = loop->closing.head; node != NULL; node = next) {
        next = node->next;
        node->finish(loop, node, true);
    }
    for (int i = 0; i < IOLOOP_SLOT_COUNT; i++) {
        if (loop->slots[i].free_fn != NULL) {
            loop->slots[i].free_fn(loop, loop->slots[i].data);
        }
    }
    if (loop->backend_state != NULL) {
        loop->backend->destroy(loop->backend_state);
    }
    ioloop__waker_close(&loop->waker);
    ioloop__timers_free(&loop->timers);
    pthread_mutex_destroy(&loop->remote_lock);
    free(loop->handlers);
    free(loop->pending.v);
    free(loop->batch.v);
    free(loop->remote.v);
    free(loop);
}

int
ioloop_start(ioloop_loop_t *loop)
{
    if (loop->fork_generation != atomic_load(&fork_generation)) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "loop start refused: the loop belongs to the parent "
                   "process (created before fork)");
        return -ECHILD;
    }
    if (loop->running) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "loop start refused: already running");
        return -EBUSY;
    }
    if (loop->stopped) {
        loop->stopped = false;
        return 0;
    }
    /* Only this thread ever sees its own tag here, and it clears the tag
     * before returning: no other thread can take the lock-free path while
     * this one runs the loop, nor after it stopped. Relaxed is enough. */
    atomic_store_explicit(&loop->thread, &thread_tag, memory_order_relaxed);
    loop->running = true;
    loop->now = loop->clock(loop->clock_arg);
    while (loop->running) {
        run_iteration(loop);
    }
    atomic_store_explicit(&loop->thread, NULL, memory_order_relaxed);
    loop->stopped = false;
    return 0;
}

void
ioloop_stop(ioloop_loop_t *loop)
{
    loop->running = false;
    loop->stopped = true;
}

int
ioloop_add_handler(ioloop_loop_t *loop, int fd, unsigned events,
                   ioloop_io_cb cb, void *arg)
{
    struct handler *h;
    int rc;

    if (fd < 0 || cb == NULL) {
        return fd < 0 ? -EBADF : -EINVAL;
    }
    if (loop->fork_generation != atomic_load(&fork_generation)) {
        return -ECHILD;
    }
    if (loop->backend->max_fd != 0 && (unsigned) fd >= loop->backend->max_fd) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, ioloop__owner_name(loop),
                   "backend %s cannot watch fd %d: its limit is fd < %u "
                   "(FD_SETSIZE); use the poll or epoll backend",
                   loop->backend->name, fd, loop->backend->max_fd);
        return -EINVAL;
    }
    rc = reserve_fd(loop, fd);
    if (rc < 0) {
        return rc;
    }
    h = &loop->handlers[fd];
    if (h->cb != NULL) {
        return -EEXIST;
    }
    events &= IOLOOP_READ | IOLOOP_WRITE;
    rc = loop->backend->add(loop->backend_state, fd, events);
    if (rc < 0) {
        return rc;
    }
    *h = (struct handler){cb, arg, loop->current, events,
                          (uint32_t) loop->poll_seq};
    loop->handler_count++;
    return 0;
}

int
ioloop_update_handler(ioloop_loop_t *loop, int fd, unsigned events)
{
    struct handler *h;
    int rc;

    if (fd < 0 || (size_t) fd >= loop->handlers_cap
        || loop->handlers[fd].cb == NULL) {
        return -ENOENT;
    }
    h = &loop->handlers[fd];
    events &= IOLOOP_READ | IOLOOP_WRITE;
    if (events == h->events) {
        return 0;
    }
    rc = loop->backend->modify(loop->backend_state, fd, h->events, events);
    if (rc < 0) {
        return rc;
    }
    h->events = events;
    return 0;
}

int
ioloop_remove_handler(ioloop_loop_t *loop, int fd)
{
    struct handler *h;

    if (fd < 0 || (size_t) fd >= loop->handlers_cap
        || loop->handlers[fd].cb == NULL) {
        return -ENOENT;
    }
    h = &loop->handlers[fd];
    /* -EBADF/-ENOENT: the fd was closed first; the kernel forgot it. */
    (void) loop->backend->remove(loop->backend_state, fd, h->events);
    *h = (struct handler){0};
    loop->handler_count--;
    return 0;
}

/* The pending queue belongs to the thread running the loop. Any other
 * thread, and every thread before the loop runs (the one that will start
 * it may be another), goes through the lock: a thread that made the loop
 * cannot tell when another thread's ioloop_start takes it over. */
int
ioloop_add_callback(ioloop_loop_t *loop, ioloop_cb cb, void *arg)
{
    if (atomic_load_explicit(&loop->thread, memory_order_relaxed)
        == &thread_tag) {
        return cbvec_push(&loop->pending, cb, arg, loop->current);
    }
    return add_remote_callback(loop, cb, arg,
                               owner_loop == loop ? owner_set : NULL);
}

int
ioloop__add_callback_as(ioloop_loop_t *loop,
                        const struct ioloop_owner *owner, ioloop_cb cb,
                        void *arg)
{
    if (atomic_load_explicit(&loop->thread, memory_order_relaxed)
        == &thread_tag) {
        return cbvec_push(&loop->pending, cb, arg, owner);
    }
    return add_remote_callback(loop, cb, arg, owner);
}

/* add_callback from another thread: under the lock, then wake the loop. */
static int
add_remote_callback(ioloop_loop_t *loop, ioloop_cb cb, void *arg,
                    const struct ioloop_owner *owner)
{
    int rc;

    pthread_mutex_lock(&loop->remote_lock);
    rc = cbvec_push(&loop->remote, cb, arg, owner);
    pthread_mutex_unlock(&loop->remote_lock);
    if (rc == 0 && atomic_exchange(&loop->remote_pending, 1) == 0) {
        ioloop__waker_wake(&loop->waker);
    }
    return rc;
}

int
ioloop_add_callback_from_signal(ioloop_loop_t *loop, ioloop_cb cb, void *arg)
{
    return ioloop__add_callback_from_signal_as(loop, NULL, cb, arg);
}

int
ioloop__add_callback_from_signal_as(ioloop_loop_t *loop,
                                    const struct ioloop_owner *owner,
                                    ioloop_cb cb, void *arg)
{
    for (int i = 0; i < SIGNAL_SLOTS; i++) {
        struct signal_slot *s = &loop->signal_slots[i];
        int expected = SIG_FREE;

        if (atomic_compare_exchange_strong(&s->state, &expected,
                                           SIG_WRITING)) {
            s->cb = cb;
            s->arg = arg;
            s->owner = owner;
            atomic_store(&s->state, SIG_READY);
            atomic_store(&loop->signal_pending, 1);
            ioloop__waker_wake(&loop->waker);
            return 0;
        }
    }
    return -EAGAIN;
}

ioloop_timer_t
ioloop_call_at(ioloop_loop_t *loop, ioloop_time_t deadline, ioloop_cb cb,
               void *arg)
{
    return ioloop__timers_add(&loop->timers, deadline, cb, arg,
                              loop->current);
}

ioloop_timer_t
ioloop_call_later(ioloop_loop_t *loop, ioloop_time_t delay, ioloop_cb cb,
                  void *arg)
{
    return ioloop__timers_add(&loop->timers, loop->now + delay, cb, arg,
                              loop->current);
}

int
ioloop_cancel(ioloop_loop_t *loop, ioloop_timer_t timer)
{
    return ioloop__timers_cancel(&loop->timers, timer);
}

ioloop_time_t
ioloop_time(ioloop_loop_t *loop)
{
    return loop->now;
}

ioloop_time_t
ioloop__update_time(ioloop_loop_t *loop)
{
    loop->now = loop->clock(loop->clock_arg);
    return loop->now;
}

int
ioloop__switch_backend(ioloop_loop_t *loop,
                       const struct ioloop_backend *backend, char *err,
                       size_t errlen)
{
    void *state;
    int rc = 0;

    err[0] = '\0';
    state = backend->create((unsigned) loop->handler_count + 1, err, errlen);
    if (state == NULL) {
        rc = errno ? -errno : -EINVAL;
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s: create failed: %s", backend->name,
                     strerror(-rc));
        }
        return rc;
    }
    for (size_t fd = 0; fd < loop->handlers_cap; fd++) {
        struct handler *h = &loop->handlers[fd];

        if (h->cb == NULL) {
            continue;
        }
        if (backend->max_fd != 0 && fd >= backend->max_fd) {
            snprintf(err, errlen,
                     "%s cannot watch fd %zu: its limit is fd < %u "
                     "(FD_SETSIZE)",
                     backend->name, fd, backend->max_fd);
            rc = -EINVAL;
            break;
        }
        rc = backend->add(state, (int) fd, h->events);
        if (rc == -EBADF) {
            IOLOOP_LOG(IOLOOP_LOG_WARN, h->owner ? h->owner->name : "host",
                       "fd %zu was closed without remove_handler; dropped "
                       "its handler",
                       fd);
            *h = (struct handler){0};
            loop->handler_count--;
            rc = 0;
        } else if (rc < 0) {
            snprintf(err, errlen, "%s: cannot watch fd %zu: %s",
                     backend->name, fd, strerror(-rc));
            break;
        }
    }
    if (rc < 0) {
        backend->destroy(state);
        return rc;
    }
    loop->backend->destroy(loop->backend_state);
    loop->backend = backend;
    loop->backend_state = state;
    return 0;
}

int
ioloop_loop_after_fork(ioloop_loop_t *loop, char *err, size_t errlen)
{
    struct ioloop_waker old = loop->waker;
    int rc;

    /* The parent's waker and backend fds are only copies here: swap in new
     * ones, then close the copies without touching the kernel objects. */
    rc = ioloop__waker_open(&loop->waker);
    if (rc < 0) {
        loop->waker = old;
        snprintf(err, errlen, "waker: %s", strerror(-rc));
        return rc;
    }
    loop->handlers[old.read_fd] = (struct handler){0};
    ioloop__waker_close(&old);
    rc = reserve_fd(loop, loop->waker.read_fd);
    if (rc < 0) {
        snprintf(err, errlen, "waker: %s", strerror(-rc));
        return rc;
    }
    loop->handlers[loop->waker.read_fd] =
        (struct handler){waker_handler, NULL, &host_owner, IOLOOP_READ, 0};
    rc = ioloop__switch_backend(loop, loop->backend, err, errlen);
    if (rc < 0) {
        return rc;
    }
    /* Other threads did not come along: their lock and queue are ours. */
    pthread_mutex_init(&loop->remote_lock, NULL);
    /* Only the thread that forked came along: it still runs the loop if it
     * did in the parent (its tag has the same address here). */
    if (atomic_load_explicit(&loop->thread, memory_order_relaxed)
        != &thread_tag) {
        atomic_store_explicit(&loop->thread, NULL, memory_order_relaxed);
    }
    loop->fork_generation = atomic_load(&fork_generation);
    return 0;
}

const struct ioloop_owner *
ioloop__set_owner(ioloop_loop_t *loop, const struct ioloop_owner *owner)
{
    const struct ioloop_owner *previous = loop->current;

    loop->current = owner;
    owner_loop = loop;
    owner_set = owner;
    /* A run of the host's (an HTTP connection's handler) that calls into
     * a plugin switches owner here: the watchdog and a crash report then
     * name the plugin, not the host. A relaxed store: the watchdog reads
     * the owner after the run's seq (release) and tolerates either. */
    atomic_store_explicit(&loop->activity.owner, owner,
                          memory_order_relaxed);
    return previous;
}

const struct ioloop_owner *
ioloop__current_owner(const ioloop_loop_t *loop)
{
    return loop->current;
}

const char *
ioloop__owner_name(const ioloop_loop_t *loop)
{
    return loop->current != NULL ? loop->current->name : "host";
}

size_t
ioloop__remove_owner_handlers(ioloop_loop_t *loop,
                              const struct ioloop_owner *owner)
{
    size_t removed = 0;

    for (size_t fd = 0; fd < loop->handlers_cap; fd++) {
        if (loop->handlers[fd].cb != NULL
            && loop->handlers[fd].owner == owner) {
            ioloop_remove_handler(loop, (int) fd);
            removed++;
        }
    }
    return removed;
}

size_t
ioloop__each_owner_handler(ioloop_loop_t *loop,
                           const struct ioloop_owner *owner, ioloop_io_cb cb,
                           void (*fn)(void *arg))
{
    size_t n = 0;

    for (size_t fd = 0; fd < loop->handlers_cap; fd++) {
        const struct handler *h = &loop->handlers[fd];

        if (h->cb == cb && h->owner == owner) {
            fn(h->arg);
            n++;
        }
    }
    return n;
}

size_t
ioloop__cancel_owner_timers(ioloop_loop_t *loop,
                            const struct ioloop_owner *owner)
{
    return ioloop__timers_cancel_owner(&loop->timers, owner);
}

size_t
ioloop__drop_owner_callbacks(ioloop_loop_t *loop,
                             const struct ioloop_owner *owner)
{
    size_t n = drop_owned(&loop->pending, owner)
               + drop_owned(&loop->batch, owner);

    pthread_mutex_lock(&loop->remote_lock);
    n += drop_owned(&loop->remote, owner);
    pthread_mutex_unlock(&loop->remote_lock);
    /* A READY slot is the loop thread's alone: a signal handler only ever
     * claims FREE ones. */
    for (int i = 0; i < SIGNAL_SLOTS; i++) {
        struct signal_slot *s = &loop->signal_slots[i];

        if (atomic_load(&s->state) == SIG_READY && s->owner == owner) {
            s->cb = dropped_callback;
            s->owner = NULL;
            n++;
        }
    }
    return n;
}

size_t
ioloop__handler_count(const ioloop_loop_t *loop)
{
    return loop->handler_count;
}

void
ioloop__close_later(ioloop_loop_t *loop, struct ioloop_close_node *node,
                    ioloop_close_fn finish, const struct ioloop_owner *owner)
{
    node->next = NULL;
    node->finish = finish;
    node->owner = owner;
    *loop->closing.tail = node;
    loop->closing.tail = &node->next;
}

void
ioloop__close_discard_owner(ioloop_loop_t *loop,
                            const struct ioloop_owner *owner)
{
    /* Not running: every node is on closing (an iteration finishes the
     * ones it takes). The others keep their order. */
    struct ioloop_close_node *node = loop->closing.head, *next;

    close_queue_init(&loop->closing);
    for (; node != NULL; node = next) {
        next = node->next; /* finish may free node */
        if (node->owner == owner) {
            node->finish(loop, node, true);
        } else {
            node->next = NULL;
            *loop->closing.tail = node;
            loop->closing.tail = &node->next;
        }
    }
}

void *
ioloop__slot(const ioloop_loop_t *loop, enum ioloop_loop_slot slot)
{
    return loop->slots[slot].data;
}

void
ioloop__slot_set(ioloop_loop_t *loop, enum ioloop_loop_slot slot, void *data,
                 ioloop_slot_free_fn free_fn)
{
    loop->slots[slot] = (struct slot){data, free_fn};
}

void
ioloop__count_streams(ioloop_loop_t *loop, int delta)
{
    loop->stats->streams_open += (uint64_t) (int64_t) delta;
}

const struct ioloop_stats *
ioloop__stats(const ioloop_loop_t *loop)
{
    return loop->stats;
}

struct ioloop_stats *
ioloop__stats_w(ioloop_loop_t *loop)
{
    return loop->stats;
}

void
ioloop__set_stats(ioloop_loop_t *loop, struct ioloop_stats *stats)
{
    if (stats == NULL) {
        stats = &loop->own_stats;
    }
    if (stats != loop->stats) {
        *stats = *loop->stats;
        loop->stats = stats;
    }
}

const struct ioloop_activity *
ioloop__activity(const ioloop_loop_t *loop)
{
    return &loop->activity;
}

const struct ioloop_backend *
ioloop__backend(const ioloop_loop_t *loop)
{
    return loop->backend;
}

void
ioloop__set_clock(ioloop_loop_t *loop, ioloop_clock_fn fn, void *arg)
{
    loop->clock = fn;
    loop->clock_arg = arg;
    loop->now = fn(arg);
}

static void
run_iteration(ioloop_loop_t *loop)
{
    /* What was closed before this iteration: finished after its callbacks
     * (which may still reach it); what they close waits for the next. */
    struct ioloop_close_node *closed = loop->closing.head;
    ioloop_time_t before;
    int n;

    /* loop->now was read after the last poll (or by start). */
    loop->stats->iterations++;
    take_foreign_callbacks(loop);
    ioloop__timers_begin_pass(&loop->timers, loop->now);
    if (closed != NULL) {
        close_queue_init(&loop->closing);
    }
    run_callbacks(loop);
    if (closed != NULL) {
        run_closing(loop, closed);
    }
    run_timers(loop);
    if (!loop->running) {
        return;
    }
    loop->stats->timers_pending = ioloop__timers_pending(&loop->timers);
    loop->stats->timers_cancelled = loop->timers.ncancelled;
    loop->stats->compactions = loop->timers.compactions;
    loop->stats->handlers = loop->handler_count;
    before = loop->clock(loop->clock_arg);
    n = loop->backend->poll(loop->backend_state, loop->events,
                            IOLOOP_MAX_EVENTS, poll_timeout(loop));
    loop->poll_seq++;
    if (n < 0) {
        /* EINTR is the backend's to hide; anything else is logged once per
         * poll and the loop goes on, as tornado does. */
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "%s: poll failed: %s",
                   loop->backend->name, strerror(-n));
        return;
    }
    loop->now = loop->clock(loop->clock_arg);
    loop->stats->poll_wait_ns += (uint64_t) (loop->now - before);
    dispatch(loop, n);
}

/* The watchdog reads owner and what once it sees seq odd (release). */
static void
activity_begin(ioloop_loop_t *loop, const struct ioloop_owner *owner,
               int kind, int fd)
{
    struct ioloop_activity *a = &loop->activity;

    atomic_store_explicit(&a->owner, owner, memory_order_relaxed);
    /* fd may be -1: shift it as unsigned, IOLOOP_ACTIVITY_FD undoes it. */
    atomic_store_explicit(&a->what,
                          (int64_t) ((uint64_t) (int64_t) fd << 8
                                     | (uint64_t) kind),
                          memory_order_relaxed);
    atomic_store_explicit(&a->seq, ++loop->activity_seq,
                          memory_order_release);
}

static void
activity_end(ioloop_loop_t *loop)
{
    atomic_store_explicit(&loop->activity.seq, ++loop->activity_seq,
                          memory_order_relaxed);
}

/* Moves callbacks posted by other threads and signal handlers into the
 * pending queue. Two atomic loads when there are none. */
static void
take_foreign_callbacks(ioloop_loop_t *loop)
{
    if (atomic_load_explicit(&loop->remote_pending, memory_order_relaxed)
        && atomic_exchange(&loop->remote_pending, 0)) {
        pthread_mutex_lock(&loop->remote_lock);
        for (size_t i = 0; i < loop->remote.len; i++) {
            const struct callback *c = &loop->remote.v[i];

            if (cbvec_push(&loop->pending, c->cb, c->arg, c->owner) < 0) {
                IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                           "out of memory: dropped a callback");
            }
        }
        loop->remote.len = 0;
        pthread_mutex_unlock(&loop->remote_lock);
    }
    if (atomic_load_explicit(&loop->signal_pending, memory_order_relaxed)
        && atomic_exchange(&loop->signal_pending, 0)) {
        for (int i = 0; i < SIGNAL_SLOTS; i++) {
            struct signal_slot *s = &loop->signal_slots[i];

            if (atomic_load(&s->state) == SIG_READY) {
                ioloop_cb cb = s->cb;
                void *arg = s->arg;
                const struct ioloop_owner *owner = s->owner;

                atomic_store(&s->state, SIG_FREE);
                if (cbvec_push(&loop->pending, cb, arg, owner) < 0) {
                    IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                               "out of memory: dropped a signal callback");
                }
            }
        }
    }
}

/* Runs only what was queued before this point: callbacks added by these
 * callbacks land in the other vector and wait for the next iteration. */
static void
run_callbacks(ioloop_loop_t *loop)
{
    struct cbvec batch = loop->pending;

    if (batch.len == 0) {
        return;
    }
    loop->pending = loop->batch;
    loop->batch = batch;
    for (size_t i = 0; i < batch.len; i++) {
        const struct callback *c = &batch.v[i];
        int rc;

        loop->current = c->owner;
        activity_begin(loop, c->owner, IOLOOP_RUN_CALLBACK, -1);
        rc = c->cb(loop, c->arg);
        activity_end(loop);
        if (rc < 0) {
            report_failure(loop, rc, "callback", -1);
        }
    }
    loop->current = NULL;
    loop->stats->callbacks_run += batch.len;
    loop->batch.len = 0;
}

/* Finishes the close nodes from node on, as their owners. */
static void
run_closing(ioloop_loop_t *loop, struct ioloop_close_node *node)
{
    struct ioloop_close_node *next;

    for (; node != NULL; node = next) {
        next = node->next; /* finish may free node */
        loop->current = node->owner;
        activity_begin(loop, node->owner, IOLOOP_RUN_CALLBACK, -1);
        node->finish(loop, node, false);
        activity_end(loop);
    }
    loop->current = NULL;
}

static void
close_queue_init(struct close_queue *q)
{
    q->head = NULL;
    q->tail = &q->head;
}

static void
run_timers(ioloop_loop_t *loop)
{
    struct ioloop_due_timer t;

    if (!ioloop__timers_in_pass(&loop->timers)) {
        return; /* nothing due: the common case, without a call */
    }
    while (ioloop__timers_pop_due(&loop->timers, &t)) {
        int rc;

        loop->current = t.owner;
        activity_begin(loop, t.owner, IOLOOP_RUN_TIMER, -1);
        rc = t.cb(loop, t.arg);
        activity_end(loop);
        if (rc < 0) {
            report_failure(loop, rc, "timer", -1);
        }
        loop->stats->timers_run++;
    }
    loop->current = NULL;
}

/* 0 with callbacks pending, else the time to the next timer, capped. */
static int64_t
poll_timeout(ioloop_loop_t *loop)
{
    ioloop_time_t deadline;
    int64_t timeout;

    if (loop->pending.len > 0 || loop->closing.head != NULL
        || atomic_load_explicit(&loop->remote_pending, memory_order_relaxed)
        || atomic_load_explicit(&loop->signal_pending,
                                memory_order_relaxed)) {
        return 0;
    }
    if (loop->timers.len == 0
        || ioloop__timers_next(&loop->timers, &deadline) < 0) {
        return IOLOOP_MAX_TIMEOUT;
    }
    timeout = deadline - loop->clock(loop->clock_arg);
    if (timeout < 0) {
        return 0;
    }
    return timeout < IOLOOP_MAX_TIMEOUT ? timeout : IOLOOP_MAX_TIMEOUT;
}

/* Delivers each polled event unless its handler was removed meanwhile, or
 * replaced by one registered after the poll on a reused fd number. */
static void
dispatch(ioloop_loop_t *loop, int n)
{
    uint32_t seq = (uint32_t) loop->poll_seq;

    for (int i = 0; i < n; i++) {
        int fd = loop->events[i].fd;
        struct handler *h;
        unsigned ready;
        int rc;

        if (fd < 0 || (size_t) fd >= loop->handlers_cap) {
            loop->stats->stale_events++;
            continue;
        }
        h = &loop->handlers[fd];
        ready = loop->events[i].events
                & (h->events | IOLOOP_ERROR | IOLOOP_HUP);
        if (h->cb == NULL || h->poll_seq == seq || ready == 0) {
            loop->stats->stale_events++;
            continue;
        }
        loop->current = h->owner;
        activity_begin(loop, h->owner, IOLOOP_RUN_HANDLER, fd);
        rc = h->cb(loop, fd, ready, h->arg);
        activity_end(loop);
        if (rc < 0) {
            report_failure(loop, rc, "handler", fd);
        }
    }
    loop->stats->events_dispatched += (uint64_t) n;
    loop->current = NULL;
}

/* A peer that went away (EPIPE, ECONNRESET) is normal life, not logged. */
static void
report_failure(ioloop_loop_t *loop, int rc, const char *what, int fd)
{
    loop->stats->failures++;
    if (rc == -EPIPE || rc == -ECONNRESET) {
        return;
    }
    if (fd >= 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, ioloop__owner_name(loop),
                   "%s for fd %d failed: %s", what, fd, strerror(-rc));
    } else {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, ioloop__owner_name(loop),
                   "%s failed: %s", what, strerror(-rc));
    }
}

static inline int
cbvec_push(struct cbvec *q, ioloop_cb cb, void *arg,
           const struct ioloop_owner *owner)
{
    if (q->len == q->cap && cbvec_grow(q) < 0) {
        return -ENOMEM;
    }
    q->v[q->len++] = (struct callback){cb, arg, owner};
    return 0;
}

/* Neuters owner's callbacks in q in place rather than removing them, so
 * that a queue being run (the batch) keeps its length and order. */
static size_t
drop_owned(struct cbvec *q, const struct ioloop_owner *owner)
{
    size_t n = 0;

    for (size_t i = 0; i < q->len; i++) {
        if (q->v[i].owner == owner && q->v[i].cb != dropped_callback) {
            q->v[i] = (struct callback){dropped_callback, NULL, NULL};
            n++;
        }
    }
    return n;
}

static int
dropped_callback(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    return 0;
}

/* Doubles q (off the fast path: the queues only grow to their peak). */
static int
cbvec_grow(struct cbvec *q)
{
    size_t cap = q->cap ? q->cap * 2 : 64;
    struct callback *v = realloc(q->v, cap * sizeof(*v));

    if (v == NULL) {
        return -ENOMEM;
    }
    q->v = v;
    q->cap = cap;
    return 0;
}

/* Grows the fd-indexed handler table to hold fd. */
static int
reserve_fd(ioloop_loop_t *loop, int fd)
{
    size_t cap = loop->handlers_cap ? loop->handlers_cap : 64;
    struct handler *h;

    if ((size_t) fd < loop->handlers_cap) {
        return 0;
    }
    while (cap <= (size_t) fd) {
        cap *= 2;
    }
    h = realloc(loop->handlers, cap * sizeof(*h));
    if (h == NULL) {
        return -ENOMEM;
    }
    memset(h + loop->handlers_cap, 0,
           (cap - loop->handlers_cap) * sizeof(*h));
    loop->handlers = h;
    loop->handlers_cap = cap;
    return 0;
}

static int
waker_handler(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) fd;
    (void) events;
    (void) arg;
    ioloop__waker_drain(&loop->waker);
    return 0;
}

static ioloop_time_t
monotonic_clock(void *arg)
{
    (void) arg;
    return ioloop__monotonic_now();
}

static void
count_fork(void)
{
    atomic_fetch_add(&fork_generation, 1);
}

static void
install_atfork(void)
{
    pthread_atfork(NULL, NULL, count_fork);
}
