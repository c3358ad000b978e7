/*
 * ioloop/testing/fake_api.h: a fake host API table for plugin unit tests.
 *
 * Header-only: include it in one test file and hand fake_api_setup() to
 * your plugin's init instead of the host's table. Nothing here runs on its
 * own: the test drives everything, deterministically.
 *
 *     const struct ioloop_api *api = fake_api_setup();
 *     void *state;
 *     char err[256];
 *
 *     rc = ioloop_plugin_v1.init(api, fake_api_instance(), config, &state,
 *                                err, sizeof(err));
 *     fake_api_fire(fd, IOLOOP_READ);   - call fd's handler by hand
 *     fake_api_poll(1000);              - or poll the real fds once
 *     fake_api_advance(IOLOOP_NS_PER_S) - move the clock, run what is due
 *     fake_api_log_count("listening")   - what the plugin logged
 *     fake_api_counter("x_total", "2xx") - what it counted
 *     ioloop_plugin_v1.fini(state);
 *     assert(fake_api_leftovers() == 0) - fini removed everything
 *
 * What is real and what is fake:
 * - Handlers, callbacks, timers, periodics and signal subscriptions are
 *   only recorded. A handler runs when the test fires its fd (fire) or
 *   when a real poll() over the recorded fds says so (poll); callbacks and
 *   timers run from run() and advance(), on a fake clock that starts at
 *   FAKE_API_EPOCH and moves only through advance(). Periodics ignore
 *   jitter; a signal "arrives" through fake_api_deliver_signal().
 * - listen_tcp, listen_unix, accept and accept_batch make real sockets: a
 *   plugin needs real fds, and a test can connect() to them. accept does
 *   not keep the host's reserve fd: on EMFILE it just returns -EMFILE.
 * - The buffered stream functions are not implemented: stream_new returns
 *   NULL with errno ENOSYS, the others -ENOSYS (stream_close does nothing).
 *   Test a stream-based plugin's logic here (config, listener, errors,
 *   the protocol as plain functions) and its streams end to end against
 *   the real host; or assign your own functions to the members of
 *   fake_api_table() (any member may be replaced, e.g. to inject a
 *   failure).
 * - counter_register and counter_add keep a count per series, read with
 *   fake_api_counter(); the fake renders no metrics.
 * - log() appends "<level> [<name>] <message>\n" to a buffer (name:
 *   fake_api_set_name(), default "test"); see fake_api_log_text().
 *
 * A callback, timer or polled handler that returns -errno is logged at
 * error, as the host does (except -EPIPE and -ECONNRESET), and counted in
 * fake_api_failures(). fire() returns the handler's value instead.
 *
 * Single-threaded: unlike the host's, the fake's add_callback is not safe
 * from other threads. State is static, one fake per test program; the
 * sizes below are fixed (no allocation: nothing to leak) and may be raised
 * by defining them before the #include. Needs POSIX.1-2008: define
 * _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before any #include, or build
 * with -std=gnu11.
 */
#ifndef IOLOOP_TESTING_FAKE_API_H
#define IOLOOP_TESTING_FAKE_API_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__GLIBC__) && !defined(_POSIX_C_SOURCE)
#error "fake_api.h needs POSIX.1-2008: define _POSIX_C_SOURCE 200809L \
before any #include, or build with -std=gnu11"
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ioloop/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FAKE_API_MAX_HANDLERS
#define FAKE_API_MAX_HANDLERS 256 /* handlers registered at once */
#endif
#ifndef FAKE_API_MAX_TIMERS
#define FAKE_API_MAX_TIMERS 256 /* pending timers, periodics included */
#endif
#ifndef FAKE_API_MAX_CALLBACKS
#define FAKE_API_MAX_CALLBACKS 256 /* queued callbacks */
#endif
#ifndef FAKE_API_MAX_PERIODICS
#define FAKE_API_MAX_PERIODICS 32 /* running periodics */
#endif
#ifndef FAKE_API_MAX_SIGNALS
#define FAKE_API_MAX_SIGNALS 32 /* signal subscriptions */
#endif
#ifndef FAKE_API_MAX_COUNTERS
#define FAKE_API_MAX_COUNTERS 64 /* counter_register series */
#endif
#ifndef FAKE_API_LOG_SIZE
#define FAKE_API_LOG_SIZE 65536 /* captured log bytes; the rest is dropped */
#endif

/* The fake clock's value after fake_api_setup(). */
#define FAKE_API_EPOCH (1000 * IOLOOP_NS_PER_S)

struct fake_api_handler {
    int used;
    int fd;
    unsigned events;
    ioloop_io_cb cb;
    void *arg;
    uint64_t serial; /* tells a re-registered fd from the polled one */
};

struct fake_api_timer {
    ioloop_timer_t id; /* 0: free slot */
    ioloop_time_t deadline;
    ioloop_cb cb;
    void *arg;
};

struct fake_api_periodic {
    int used;
    uint64_t serial; /* tells a reused slot from the running one */
    ioloop_time_t period;
    ioloop_cb cb;
    void *arg;
    ioloop_timer_t timer;
};

struct fake_api_signal {
    int id; /* 0: free slot */
    int signo;
    ioloop_signal_cb cb;
    void *arg;
};

struct fake_api_callback {
    ioloop_cb cb;
    void *arg;
};

/* A counter series: its strings are kept (truncated) to look it up. */
struct fake_api_counter {
    char name[64];
    char value[32];
    uint64_t count;
};

struct fake_api_state {
    struct ioloop_api api;
    const char *name;
    ioloop_time_t now;
    uint64_t serial;
    ioloop_timer_t next_timer;
    int next_signal;
    int stopped;
    int failures;
    struct fake_api_handler handlers[FAKE_API_MAX_HANDLERS];
    struct fake_api_timer timers[FAKE_API_MAX_TIMERS];
    struct fake_api_periodic periodics[FAKE_API_MAX_PERIODICS];
    struct fake_api_signal signals[FAKE_API_MAX_SIGNALS];
    struct fake_api_callback callbacks[FAKE_API_MAX_CALLBACKS];
    int ncallbacks;
    struct fake_api_counter counters[FAKE_API_MAX_COUNTERS];
    int ncounters;
    char log[FAKE_API_LOG_SIZE];
    size_t log_len;
};

static struct fake_api_state fake_api__s;

static inline void fake_api__reset_table(struct ioloop_api *api);

/* --- The test's side --------------------------------------------------- */

/*
 * Forgets every registration (it closes no fd: the plugin owns them),
 * clears the log, resets the clock to FAKE_API_EPOCH and the table to the
 * fake's own functions. Returns the table to pass to init.
 */
static inline const struct ioloop_api *
fake_api_setup(void)
{
    memset(&fake_api__s, 0, sizeof(fake_api__s));
    fake_api__s.name = "test";
    fake_api__s.now = FAKE_API_EPOCH;
    fake_api__reset_table(&fake_api__s.api);
    return &fake_api__s.api;
}

/* The table itself, writable: replace a member to inject a failure or
 * plug in your own implementation. Valid after fake_api_setup(). */
static inline struct ioloop_api *
fake_api_table(void)
{
    return &fake_api__s.api;
}

/* The loop handle the fake passes to callbacks. */
static inline ioloop_loop_t *
fake_api_loop(void)
{
    return (ioloop_loop_t *) (void *) &fake_api__s;
}

/* The instance context to pass to init. Every fake function checks that
 * it is given this handle (a wrong one is logged and counted as a
 * failure); callbacks receive fake_api_loop(). */
static inline ioloop_instance_t *
fake_api_instance(void)
{
    return (ioloop_instance_t *) (void *) &fake_api__s;
}

/* The instance name that log lines carry (borrowed; default "test"). */
static inline void
fake_api_set_name(const char *name)
{
    fake_api__s.name = name;
}

/* The fake clock (what api->time returns). */
static inline ioloop_time_t
fake_api_now(void)
{
    return fake_api__s.now;
}

/* Everything logged since setup or the last fake_api_log_clear(). */
static inline const char *
fake_api_log_text(void)
{
    return fake_api__s.log;
}

/*
 * The count of the counter series registered as name with label value
 * value (NULL for a series without a label), or -1 when there is none.
 */
static inline long long
fake_api_counter(const char *name, const char *value)
{
    for (int i = 0; i < fake_api__s.ncounters; i++) {
        const struct fake_api_counter *c = &fake_api__s.counters[i];

        if (strcmp(c->name, name) == 0
            && strcmp(c->value, value != NULL ? value : "") == 0) {
            return (long long) c->count;
        }
    }
    return -1;
}

/* How many times text occurs in the captured log. */
static inline int
fake_api_log_count(const char *text)
{
    const char *p = fake_api__s.log;
    size_t tl = strlen(text);
    int n = 0;

    if (tl == 0) {
        return 0;
    }
    while ((p = strstr(p, text)) != NULL) {
        n++;
        p += tl;
    }
    return n;
}

static inline void
fake_api_log_clear(void)
{
    fake_api__s.log_len = 0;
    fake_api__s.log[0] = '\0';
}

/* The event mask of fd's handler, or -1 when fd has none. */
static inline int
fake_api_handler_events(int fd)
{
    for (int i = 0; i < FAKE_API_MAX_HANDLERS; i++) {
        if (fake_api__s.handlers[i].used && fake_api__s.handlers[i].fd == fd) {
            return (int) fake_api__s.handlers[i].events;
        }
    }
    return -1;
}

/* How many handlers are registered. */
static inline int
fake_api_handler_count(void)
{
    int n = 0;

    for (int i = 0; i < FAKE_API_MAX_HANDLERS; i++) {
        n += fake_api__s.handlers[i].used;
    }
    return n;
}

/* How many one-shot timers are pending (periodics not included). */
static inline int
fake_api_timer_count(void)
{
    int n = 0;

    for (int i = 0; i < FAKE_API_MAX_TIMERS; i++) {
        n += fake_api__s.timers[i].id != 0;
    }
    for (int i = 0; i < FAKE_API_MAX_PERIODICS; i++) {
        n -= fake_api__s.periodics[i].used && fake_api__s.periodics[i].timer;
    }
    return n;
}

/* How many periodics are running. */
static inline int
fake_api_periodic_count(void)
{
    int n = 0;

    for (int i = 0; i < FAKE_API_MAX_PERIODICS; i++) {
        n += fake_api__s.periodics[i].used;
    }
    return n;
}

/* How many signal subscriptions are active. */
static inline int
fake_api_signal_count(void)
{
    int n = 0;

    for (int i = 0; i < FAKE_API_MAX_SIGNALS; i++) {
        n += fake_api__s.signals[i].id != 0;
    }
    return n;
}

/* How many callbacks are queued. */
static inline int
fake_api_callback_count(void)
{
    return fake_api__s.ncallbacks;
}

/*
 * What a plugin's fini must leave behind: 0. Counts the handlers, timers,
 * periodics and signal subscriptions still registered (queued callbacks
 * are not counted: the host never runs them after fini).
 */
static inline int
fake_api_leftovers(void)
{
    return fake_api_handler_count() + fake_api_timer_count()
           + fake_api_periodic_count() + fake_api_signal_count();
}

/* How many times api->stop was called. */
static inline int
fake_api_stopped(void)
{
    return fake_api__s.stopped;
}

/* How many callbacks, timers and polled handlers returned -errno (EPIPE
 * and ECONNRESET aside), plus calls made with a wrong loop handle. */
static inline int
fake_api_failures(void)
{
    return fake_api__s.failures;
}

/* The local port of a TCP socket (e.g. a listener on port 0), or -errno. */
static inline int
fake_api_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
        return -errno;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *) &ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    }
    return -EAFNOSUPPORT;
}

static inline void fake_api__logf(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void fake_api__failed(const char *what, int rc);
static inline struct fake_api_handler *fake_api__handler(int fd);

/*
 * Calls fd's handler with events, filtered as the host filters them: the
 * bits it asked for plus IOLOOP_ERROR and IOLOOP_HUP. Returns the
 * handler's return value; -ENOENT when fd has no handler; -EAGAIN when
 * none of events is for it (the handler is not called).
 */
static inline int
fake_api_fire(int fd, unsigned events)
{
    struct fake_api_handler *h = fake_api__handler(fd);
    unsigned wanted;

    if (h == NULL) {
        return -ENOENT;
    }
    wanted = events & (h->events | IOLOOP_ERROR | IOLOOP_HUP);
    if (wanted == 0) {
        return -EAGAIN;
    }
    return h->cb(fake_api_loop(), fd, wanted, h->arg);
}

/*
 * One real poll() over the fds that have handlers, for at most timeout_ms
 * (-1: no limit), then dispatch like the host: level-triggered, and no
 * event for a handler that was removed or replaced meanwhile. Returns the
 * number of handlers called, or -errno from poll().
 */
static inline int
fake_api_poll(int timeout_ms)
{
    struct pollfd pfd[FAKE_API_MAX_HANDLERS];
    uint64_t serial[FAKE_API_MAX_HANDLERS];
    int n = 0, called = 0, rc;

    for (int i = 0; i < FAKE_API_MAX_HANDLERS; i++) {
        struct fake_api_handler *h = &fake_api__s.handlers[i];

        if (h->used) {
            pfd[n].fd = h->fd;
            pfd[n].events = (short) (((h->events & IOLOOP_READ) ? POLLIN : 0)
                                     | ((h->events & IOLOOP_WRITE) ? POLLOUT
                                                                   : 0));
            pfd[n].revents = 0;
            serial[n++] = h->serial;
        }
    }
    do {
        rc = poll(pfd, (nfds_t) n, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        return -errno;
    }
    for (int i = 0; i < n; i++) {
        struct fake_api_handler *h = fake_api__handler(pfd[i].fd);
        unsigned ev = 0;

        if (pfd[i].revents == 0 || h == NULL || h->serial != serial[i]) {
            continue; /* idle, or removed or replaced meanwhile */
        }
        ev |= (pfd[i].revents & POLLIN) ? IOLOOP_READ : 0u;
        ev |= (pfd[i].revents & POLLOUT) ? IOLOOP_WRITE : 0u;
        ev |= (pfd[i].revents & (POLLERR | POLLNVAL)) ? IOLOOP_ERROR : 0u;
        ev |= (pfd[i].revents & POLLHUP) ? IOLOOP_HUP : 0u;
        rc = fake_api_fire(pfd[i].fd, ev);
        if (rc != -EAGAIN) {
            called++;
        }
        if (rc < 0 && rc != -EAGAIN) {
            fake_api__failed("handler", rc);
        }
    }
    return called;
}

/*
 * One loop iteration at the current fake time, as the host runs it: the
 * callbacks queued before the call (in order), then every timer due now,
 * all collected before the first runs (earliest deadline first, ties in
 * the order they were added). Returns how many ran.
 */
static inline int
fake_api_run(void)
{
    struct fake_api_callback batch[FAKE_API_MAX_CALLBACKS];
    struct fake_api_timer due[FAKE_API_MAX_TIMERS];
    int nbatch = fake_api__s.ncallbacks, ndue = 0, ran = 0;

    memcpy(batch, fake_api__s.callbacks, sizeof(batch[0]) * (size_t) nbatch);
    fake_api__s.ncallbacks = 0;
    for (int i = 0; i < nbatch; i++) {
        int rc = batch[i].cb(fake_api_loop(), batch[i].arg);

        if (rc < 0) {
            fake_api__failed("callback", rc);
        }
        ran++;
    }
    /* Collect, then sort by (deadline, id) (insertion: the list is short
     * and ids grow in the order timers were added). */
    for (int i = 0; i < FAKE_API_MAX_TIMERS; i++) {
        struct fake_api_timer t = fake_api__s.timers[i];
        int j = ndue++;

        if (t.id == 0 || t.deadline > fake_api__s.now) {
            ndue--;
            continue;
        }
        for (; j > 0 && (due[j - 1].deadline > t.deadline
                         || (due[j - 1].deadline == t.deadline
                             && due[j - 1].id > t.id));
             j--) {
            due[j] = due[j - 1];
        }
        due[j] = t;
    }
    for (int i = 0; i < ndue; i++) {
        for (int k = 0; k < FAKE_API_MAX_TIMERS; k++) {
            int rc;

            if (fake_api__s.timers[k].id != due[i].id) {
                continue; /* not found: cancelled by an earlier one */
            }
            fake_api__s.timers[k].id = 0;
            rc = due[i].cb(fake_api_loop(), due[i].arg);
            if (rc < 0) {
                fake_api__failed("timer", rc);
            }
            ran++;
            break;
        }
    }
    return ran;
}

/*
 * Moves the fake clock forward by ns, stopping at each timer deadline on
 * the way to run one iteration there (fake_api_run), and once more at the
 * end. A timer that re-arms itself runs once per period crossed. Returns
 * how many callbacks and timers ran.
 */
static inline int
fake_api_advance(ioloop_time_t ns)
{
    ioloop_time_t target = fake_api__s.now + ns;
    int ran = 0, spins = 0;

    for (;;) {
        ioloop_time_t next = target + 1;

        for (int i = 0; i < FAKE_API_MAX_TIMERS; i++) {
            if (fake_api__s.timers[i].id != 0
                && fake_api__s.timers[i].deadline < next) {
                next = fake_api__s.timers[i].deadline;
            }
        }
        if (next > target) {
            break;
        }
        if (next > fake_api__s.now) {
            fake_api__s.now = next;
            spins = 0;
        } else if (++spins > 10000) {
            fake_api__logf(IOLOOP_LOG_ERROR, "fake_api_advance: timers keep "
                                             "re-arming at the same time");
            fake_api__s.failures++;
            break;
        }
        ran += fake_api_run();
    }
    fake_api__s.now = target;
    return ran + fake_api_run();
}

/*
 * As if signo had been delivered and the loop had run: calls every
 * subscriber of signo, in subscription order. No real signal is raised.
 * Returns how many were called.
 */
static inline int
fake_api_deliver_signal(int signo)
{
    int n = 0;

    for (int i = 0; i < FAKE_API_MAX_SIGNALS; i++) {
        struct fake_api_signal s = fake_api__s.signals[i];

        if (s.id != 0 && s.signo == signo) {
            int rc = s.cb(fake_api_loop(), signo, s.arg);

            if (rc < 0) {
                fake_api__failed("signal callback", rc);
            }
            n++;
        }
    }
    return n;
}

/* --- The plugin's side: the table's functions ---------------------------- */

static inline int
fake_api__check(ioloop_instance_t *inst, const char *fn)
{
    if (inst == fake_api_instance()) {
        return 0;
    }
    fake_api__logf(IOLOOP_LOG_ERROR, "%s: not the fake loop handle", fn);
    fake_api__s.failures++;
    return -EINVAL;
}

static inline struct fake_api_handler *
fake_api__handler(int fd)
{
    for (int i = 0; i < FAKE_API_MAX_HANDLERS; i++) {
        if (fake_api__s.handlers[i].used && fake_api__s.handlers[i].fd == fd) {
            return &fake_api__s.handlers[i];
        }
    }
    return NULL;
}

static inline int
fake_api__add_handler(ioloop_instance_t *loop, int fd, unsigned events,
                      ioloop_io_cb cb, void *arg)
{
    if (fake_api__check(loop, "add_handler") < 0) {
        return -EINVAL;
    }
    if (fd < 0 || cb == NULL || fcntl(fd, F_GETFD) < 0) {
        return fd < 0 || cb == NULL ? -EINVAL : -EBADF;
    }
    if (fake_api__handler(fd) != NULL) {
        return -EEXIST;
    }
    for (int i = 0; i < FAKE_API_MAX_HANDLERS; i++) {
        struct fake_api_handler *h = &fake_api__s.handlers[i];

        if (!h->used) {
            h->used = 1;
            h->fd = fd;
            h->events = events & (IOLOOP_READ | IOLOOP_WRITE);
            h->cb = cb;
            h->arg = arg;
            h->serial = ++fake_api__s.serial;
            return 0;
        }
    }
    return -ENOMEM;
}

static inline int
fake_api__update_handler(ioloop_instance_t *loop, int fd, unsigned events)
{
    struct fake_api_handler *h = fake_api__handler(fd);

    if (fake_api__check(loop, "update_handler") < 0) {
        return -EINVAL;
    }
    if (h == NULL) {
        return -ENOENT;
    }
    h->events = events & (IOLOOP_READ | IOLOOP_WRITE);
    return 0;
}

static inline int
fake_api__remove_handler(ioloop_instance_t *loop, int fd)
{
    struct fake_api_handler *h = fake_api__handler(fd);

    if (fake_api__check(loop, "remove_handler") < 0) {
        return -EINVAL;
    }
    if (h == NULL) {
        return -ENOENT;
    }
    memset(h, 0, sizeof(*h));
    return 0;
}

static inline int
fake_api__add_callback(ioloop_instance_t *loop, ioloop_cb cb, void *arg)
{
    if (fake_api__check(loop, "add_callback") < 0 || cb == NULL) {
        return -EINVAL;
    }
    if (fake_api__s.ncallbacks == FAKE_API_MAX_CALLBACKS) {
        return -ENOMEM;
    }
    fake_api__s.callbacks[fake_api__s.ncallbacks].cb = cb;
    fake_api__s.callbacks[fake_api__s.ncallbacks].arg = arg;
    fake_api__s.ncallbacks++;
    return 0;
}

static inline int
fake_api__add_callback_from_signal(ioloop_instance_t *loop, ioloop_cb cb,
                                   void *arg)
{
    int rc = fake_api__add_callback(loop, cb, arg);

    return rc == -ENOMEM ? -EAGAIN : rc;
}

static inline ioloop_timer_t
fake_api__call_at(ioloop_instance_t *loop, ioloop_time_t deadline, ioloop_cb cb,
                  void *arg)
{
    if (fake_api__check(loop, "call_at") < 0 || cb == NULL) {
        errno = EINVAL;
        return 0;
    }
    for (int i = 0; i < FAKE_API_MAX_TIMERS; i++) {
        struct fake_api_timer *t = &fake_api__s.timers[i];

        if (t->id == 0) {
            t->id = ++fake_api__s.next_timer;
            t->deadline = deadline;
            t->cb = cb;
            t->arg = arg;
            return t->id;
        }
    }
    errno = ENOMEM;
    return 0;
}

static inline ioloop_timer_t
fake_api__call_later(ioloop_instance_t *loop, ioloop_time_t delay, ioloop_cb cb,
                     void *arg)
{
    return fake_api__call_at(loop, fake_api__s.now + delay, cb, arg);
}

static inline int
fake_api__cancel(ioloop_instance_t *loop, ioloop_timer_t timer)
{
    if (fake_api__check(loop, "cancel") < 0) {
        return -EINVAL;
    }
    for (int i = 0; i < FAKE_API_MAX_TIMERS; i++) {
        if (timer != 0 && fake_api__s.timers[i].id == timer) {
            fake_api__s.timers[i].id = 0;
            return 0;
        }
    }
    return -ENOENT;
}

/* A periodic's timer: runs the periodic, then re-arms it at the next
 * multiple of its period after now (missed runs are skipped). */
static inline int
fake_api__periodic_tick(ioloop_loop_t *loop, void *arg)
{
    struct fake_api_periodic *p = (struct fake_api_periodic *) arg;
    uint64_t serial = p->serial;
    ioloop_time_t next = fake_api__s.now + p->period;
    int rc;

    p->timer = 0;
    rc = p->cb(loop, p->arg);
    if (p->used && p->serial == serial && p->timer == 0) {
        p->timer = fake_api__call_at(fake_api_instance(), next,
                                     fake_api__periodic_tick, p);
    }
    return rc;
}

static inline ioloop_periodic_t *
fake_api__periodic_start(ioloop_instance_t *loop, ioloop_time_t period,
                         double jitter, ioloop_cb cb, void *arg)
{
    if (fake_api__check(loop, "periodic_start") < 0 || period <= 0
        || !(jitter >= 0.0 && jitter < 1.0) || cb == NULL) {
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; i < FAKE_API_MAX_PERIODICS; i++) {
        struct fake_api_periodic *p = &fake_api__s.periodics[i];

        if (!p->used) {
            p->timer = fake_api__call_later(loop, period,
                                            fake_api__periodic_tick, p);
            if (p->timer == 0) {
                return NULL;
            }
            p->used = 1;
            p->serial = ++fake_api__s.serial;
            p->period = period;
            p->cb = cb;
            p->arg = arg;
            return (ioloop_periodic_t *) (void *) p;
        }
    }
    errno = ENOMEM;
    return NULL;
}

static inline void
fake_api__periodic_stop(ioloop_instance_t *loop, ioloop_periodic_t *periodic)
{
    struct fake_api_periodic *p = (struct fake_api_periodic *) (void *)
        periodic;

    if (fake_api__check(loop, "periodic_stop") < 0 || p == NULL) {
        return;
    }
    if (p->timer != 0) {
        fake_api__cancel(loop, p->timer);
    }
    memset(p, 0, sizeof(*p));
}

static inline ioloop_time_t
fake_api__time(ioloop_instance_t *loop)
{
    fake_api__check(loop, "time");
    return fake_api__s.now;
}

static inline void
fake_api__vlog(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    size_t room = sizeof(fake_api__s.log) - fake_api__s.log_len;
    char *p = fake_api__s.log + fake_api__s.log_len;
    int n;

    n = snprintf(p, room, "%s [%s] ",
                 level >= 0 && level <= 3 ? names[level] : "?",
                 fake_api__s.name);
    if (n < 0 || (size_t) n >= room) {
        *p = '\0';
        return; /* full: drop the line */
    }
    room -= (size_t) n;
    p += n;
    n = vsnprintf(p, room, fmt, ap);
    if (n < 0 || (size_t) n + 1 >= room) {
        fake_api__s.log[fake_api__s.log_len] = '\0';
        return;
    }
    p[n] = '\n';
    p[n + 1] = '\0';
    fake_api__s.log_len = (size_t) (p + n + 1 - fake_api__s.log);
}

static inline void
fake_api__log(ioloop_instance_t *loop, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void
fake_api__log(ioloop_instance_t *loop, int level, const char *fmt, ...)
{
    va_list ap;

    fake_api__check(loop, "log");
    va_start(ap, fmt);
    fake_api__vlog(level, fmt, ap);
    va_end(ap);
}

static inline void
fake_api__logf(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fake_api__vlog(level, fmt, ap);
    va_end(ap);
}

static inline void
fake_api__failed(const char *what, int rc)
{
    if (rc == -EPIPE || rc == -ECONNRESET) {
        return;
    }
    fake_api__logf(IOLOOP_LOG_ERROR, "%s failed: %s", what, strerror(-rc));
    fake_api__s.failures++;
}

/* Non-blocking and close-on-exec, as the host makes its sockets. */
static inline int
fake_api__nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0
        || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        return -errno;
    }
    return 0;
}

/* "host:port" or "[v6]:port" -> host ("" for any address) and port. */
static inline int
fake_api__split(const char *addr, char *host, size_t hostlen, char *port,
                size_t portlen)
{
    const char *h = addr, *colon;
    size_t hl;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (end == NULL || end[1] != ':') {
            return -1;
        }
        h = addr + 1;
        hl = (size_t) (end - h);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL) {
            return -1;
        }
        hl = (size_t) (colon - addr);
    }
    if (hl >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0') {
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static inline int
fake_api__listen_tcp(ioloop_instance_t *loop, const char *addr, int backlog,
                     unsigned flags, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[256], port[16], shown[INET6_ADDRSTRLEN];
    int fd = -1, one = 1, rc;

    if (fake_api__check(loop, "listen_tcp") < 0) {
        return -EINVAL;
    }
    if (fake_api__split(addr, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, errlen,
                 "listen \"%s\": expected HOST:PORT or [IPV6]:PORT", addr);
        return -EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", addr, gai_strerror(rc));
        return -EINVAL;
    }
    fd = socket(res->ai_family, SOCK_STREAM, 0);
    rc = fd < 0 ? -errno : fake_api__nonblock_cloexec(fd);
    if (rc == 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#ifdef SO_REUSEPORT
        if ((flags & IOLOOP_LISTEN_REUSEPORT)
            && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))
                   < 0) {
            rc = -errno;
        }
#else
        /* Strict POSIX headers hide it: build the test with _GNU_SOURCE. */
        rc = (flags & IOLOOP_LISTEN_REUSEPORT) ? -ENOPROTOOPT : 0;
#endif
    }
    if (rc == 0
        && (bind(fd, res->ai_addr, res->ai_addrlen) < 0
            || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0
            || getsockname(fd, (struct sockaddr *) &ss, &sslen) < 0)) {
        rc = -errno;
    }
    freeaddrinfo(res);
    if (rc < 0) {
        snprintf(err, errlen, "listen %s: %s", addr, strerror(-rc));
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, shown,
                  sizeof(shown));
        fake_api__logf(IOLOOP_LOG_INFO, "listening on [%s]:%d", shown,
                       fake_api_local_port(fd));
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, shown,
                  sizeof(shown));
        fake_api__logf(IOLOOP_LOG_INFO, "listening on %s:%d", shown,
                       fake_api_local_port(fd));
    }
    return fd;
}

static inline int
fake_api__accept(ioloop_instance_t *loop, int listen_fd)
{
    int fd, rc;

    if (fake_api__check(loop, "accept") < 0) {
        return -EINVAL;
    }
    do {
        fd = accept(listen_fd, NULL, NULL);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    rc = fake_api__nonblock_cloexec(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static inline void
fake_api__stop(ioloop_instance_t *loop)
{
    fake_api__check(loop, "stop");
    fake_api__s.stopped++;
}

static inline int
fake_api__accept_batch(ioloop_instance_t *loop, int listen_fd, int *fds,
                       int max)
{
    int n = 0;

    while (n < max) {
        int fd = fake_api__accept(loop, listen_fd);

        if (fd < 0) {
            return n > 0 ? n : (fd == -EAGAIN ? 0 : fd);
        }
        fds[n++] = fd;
    }
    return n;
}

static inline int
fake_api__listen_unix(ioloop_instance_t *loop, const char *path, unsigned mode,
                      int backlog, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (fake_api__check(loop, "listen_unix") < 0) {
        return -EINVAL;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "listen unix:%s: path longer than %zu bytes",
                 path, sizeof(sun.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "listen unix:%s: exists and is not a socket",
                     path);
            return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        rc = fd < 0 || connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0
                     || errno != ECONNREFUSED;
        if (fd >= 0) {
            close(fd);
        }
        if (rc) {
            snprintf(err, errlen, "listen unix:%s: Address already in use",
                     path);
            return -EADDRINUSE;
        }
        unlink(path); /* stale */
    }
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    rc = fd < 0 ? -errno : fake_api__nonblock_cloexec(fd);
    if (rc == 0
        && (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
            || (mode != 0 && chmod(path, (mode_t) mode) < 0)
            || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)) {
        rc = -errno;
    }
    if (rc < 0) {
        snprintf(err, errlen, "listen unix:%s: %s", path, strerror(-rc));
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    fake_api__logf(IOLOOP_LOG_INFO, "listening on unix:%s", path);
    return fd;
}

static inline int
fake_api__signal_subscribe(ioloop_instance_t *loop, int signo,
                           ioloop_signal_cb cb, void *arg)
{
    if (fake_api__check(loop, "signal_subscribe") < 0 || cb == NULL
        || signo <= 0 || signo > 64 || signo == SIGKILL || signo == SIGSTOP
        || signo == SIGSEGV || signo == SIGBUS || signo == SIGFPE
        || signo == SIGILL || signo == SIGUSR2 || signo == SIGPIPE) {
        return -EINVAL;
    }
    for (int i = 0; i < FAKE_API_MAX_SIGNALS; i++) {
        struct fake_api_signal *s = &fake_api__s.signals[i];

        if (s->id == 0) {
            s->id = ++fake_api__s.next_signal;
            s->signo = signo;
            s->cb = cb;
            s->arg = arg;
            return s->id;
        }
    }
    return -ENOMEM;
}

static inline int
fake_api__signal_unsubscribe(ioloop_instance_t *loop, int id)
{
    if (fake_api__check(loop, "signal_unsubscribe") < 0) {
        return -EINVAL;
    }
    for (int i = 0; i < FAKE_API_MAX_SIGNALS; i++) {
        if (id > 0 && fake_api__s.signals[i].id == id) {
            memset(&fake_api__s.signals[i], 0, sizeof(fake_api__s.signals[i]));
            return 0;
        }
    }
    return -ENOENT;
}

/* Streams: not faked (see the top of this file). */

static inline ioloop_stream_t *
fake_api__stream_new(ioloop_instance_t *loop, int fd,
                     const struct ioloop_stream_options *opts)
{
    (void) loop;
    (void) fd;
    (void) opts;
    errno = ENOSYS;
    return NULL;
}

static inline int
fake_api__stream_read_until(ioloop_stream_t *s, const void *delim,
                            size_t dlen, ioloop_stream_read_cb cb)
{
    (void) s;
    (void) delim;
    (void) dlen;
    (void) cb;
    return -ENOSYS;
}

static inline int
fake_api__stream_read_bytes(ioloop_stream_t *s, size_t n,
                            ioloop_stream_read_cb cb)
{
    (void) s;
    (void) n;
    (void) cb;
    return -ENOSYS;
}

static inline int
fake_api__stream_read_until_close(ioloop_stream_t *s,
                                  ioloop_stream_read_cb cb)
{
    (void) s;
    (void) cb;
    return -ENOSYS;
}

static inline int
fake_api__stream_write(ioloop_stream_t *s, const void *data, size_t len,
                       ioloop_stream_cb done)
{
    (void) s;
    (void) data;
    (void) len;
    (void) done;
    return -ENOSYS;
}

static inline void
fake_api__stream_close(ioloop_stream_t *s)
{
    (void) s;
}

static inline int
fake_api__stream_error(const ioloop_stream_t *s)
{
    (void) s;
    return ENOSYS;
}

static inline int
fake_api__stream_fd(const ioloop_stream_t *s)
{
    (void) s;
    return -1;
}

static inline size_t
fake_api__stream_pending(const ioloop_stream_t *s)
{
    (void) s;
    return 0;
}

/* The fake keeps no metrics. */
static inline int
fake_api__metrics_render(ioloop_instance_t *loop, char *buf, size_t len)
{
    (void) loop;
    (void) buf;
    (void) len;
    return -ENOTSUP;
}

/* Counters are recorded (fake_api_counter reads them); strings are only
 * checked for presence, not against the host's full rules. */
static inline int
fake_api__counter_register(ioloop_instance_t *loop, const char *name,
                           const char *help, const char *label,
                           const char *value)
{
    struct fake_api_counter *c;

    if (fake_api__check(loop, "counter_register") < 0) {
        return -EINVAL;
    }
    if (name == NULL || help == NULL || (label == NULL) != (value == NULL)) {
        return -EINVAL;
    }
    if (fake_api__s.ncounters == FAKE_API_MAX_COUNTERS) {
        return -ENOSPC;
    }
    c = &fake_api__s.counters[fake_api__s.ncounters];
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->value, sizeof(c->value), "%s", value != NULL ? value : "");
    c->count = 0;
    return fake_api__s.ncounters++;
}

static inline void
fake_api__counter_add(ioloop_instance_t *loop, int handle, uint64_t n)
{
    if (fake_api__check(loop, "counter_add") == 0 && handle >= 0
        && handle < fake_api__s.ncounters) {
        fake_api__s.counters[handle].count += n;
    }
}

/* The fake is one process without workers: worker 0 of 1. */
static inline unsigned
fake_api__worker_index(ioloop_instance_t *loop)
{
    fake_api__check(loop, "worker_index");
    return 0;
}

static inline unsigned
fake_api__worker_count(ioloop_instance_t *loop)
{
    fake_api__check(loop, "worker_count");
    return 1;
}

static inline void
fake_api__reset_table(struct ioloop_api *api)
{
    api->abi_version = IOLOOP_PLUGIN_ABI;
    api->size = sizeof(*api);
    api->add_handler = fake_api__add_handler;
    api->update_handler = fake_api__update_handler;
    api->remove_handler = fake_api__remove_handler;
    api->add_callback = fake_api__add_callback;
    api->add_callback_from_signal = fake_api__add_callback_from_signal;
    api->call_at = fake_api__call_at;
    api->call_later = fake_api__call_later;
    api->cancel = fake_api__cancel;
    api->periodic_start = fake_api__periodic_start;
    api->periodic_stop = fake_api__periodic_stop;
    api->time = fake_api__time;
    api->log = fake_api__log;
    api->listen_tcp = fake_api__listen_tcp;
    api->accept = fake_api__accept;
    api->stop = fake_api__stop;
    api->accept_batch = fake_api__accept_batch;
    api->listen_unix = fake_api__listen_unix;
    api->signal_subscribe = fake_api__signal_subscribe;
    api->signal_unsubscribe = fake_api__signal_unsubscribe;
    api->stream_new = fake_api__stream_new;
    api->stream_read_until = fake_api__stream_read_until;
    api->stream_read_bytes = fake_api__stream_read_bytes;
    api->stream_read_some = fake_api__stream_read_bytes;
    api->stream_read_until_close = fake_api__stream_read_until_close;
    api->stream_write = fake_api__stream_write;
    api->stream_close = fake_api__stream_close;
    api->stream_error = fake_api__stream_error;
    api->stream_fd = fake_api__stream_fd;
    api->stream_pending = fake_api__stream_pending;
    api->metrics_render = fake_api__metrics_render;
    api->counter_register = fake_api__counter_register;
    api->counter_add = fake_api__counter_add;
    api->worker_index = fake_api__worker_index;
    api->worker_count = fake_api__worker_count;
}

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_TESTING_FAKE_API_H */
