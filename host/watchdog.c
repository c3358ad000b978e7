/*
 * host/watchdog.c: the blocking-callback watchdog of watchdog.h. The loop
 * pays only the relaxed stores of its activity record; a monitor thread
 * samples it every threshold / 4 (at least 1 ms). The reported time counts
 * from the first sample that saw the stall: low by at most one period.
 *
 * The stack is taken by the loop thread itself, in a signal handler, as
 * tornado does from SIGALRM. glibc documents backtrace() as AS-unsafe
 * because its first call dlopen()s libgcc_s (malloc, locks); start() makes
 * that first call. Later calls only walk .eh_frame under the dynamic
 * linker's recursive lock, and backtrace_symbols_fd() only adds dladdr()
 * and write(2): safe enough, unless the stalled code was itself in the
 * middle of dlopen(). The signal may cut short a system call of the
 * stalled code: SA_RESTART restarts most, not sleeps nor polls (signal(7)).
 */
#include "watchdog.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define STACK_DEPTH 64

/* What the monitor remembers between two samples. */
struct sampler {
    uint64_t seq;        /* the last seq seen */
    ioloop_time_t since; /* when seq was first seen */
    bool reported;       /* seq was reported as a stall */
};

static struct {
    bool running;
    pid_t pid;                 /* the process that started the monitor */
    pthread_t monitor;
    pthread_t loop_thread;     /* receives IOLOOP_WATCHDOG_SIGNAL */
    const struct ioloop_activity *activity;
    int threshold_ms;
    ioloop_time_t threshold;   /* ns */
    ioloop_time_t period;      /* ns between samples */
    pthread_mutex_t lock;      /* guards stopping */
    pthread_cond_t wake;       /* signalled by stop, on CLOCK_MONOTONIC */
    bool stopping;
    struct sigaction saved;    /* the disposition stop() restores */
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The stalled seq whose stack the handler is asked for. */
static _Atomic uint64_t dump_seq;

static void *monitor(void *arg);
static void sample(struct sampler *s);
static void report(uint64_t seq, ioloop_time_t held);
static void on_dump_signal(int signo);
static void forget_after_fork(void);

int
ioloop__watchdog_start(ioloop_loop_t *loop, int threshold_ms)
{
    struct sigaction sa = {0};
    pthread_condattr_t attr;
    sigset_t all, old;
    void *probe[1];
    int rc;

    forget_after_fork();
    if (threshold_ms <= 0) {
        return 0;
    }
    if (wd.running) {
        return -EBUSY;
    }
    sigaction(IOLOOP_WATCHDOG_SIGNAL, NULL, &wd.saved); /* a query */
    if ((wd.saved.sa_flags & SA_SIGINFO)
        || (wd.saved.sa_handler != SIG_DFL
            && wd.saved.sa_handler != SIG_IGN)) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "watchdog: signal %d already has a handler",
                   IOLOOP_WATCHDOG_SIGNAL);
        return -EBUSY;
    }
    (void) backtrace(probe, 1); /* loads libgcc_s here, not in the handler */
    wd.pid = getpid();
    wd.loop_thread = pthread_self();
    wd.activity = ioloop__activity(loop);
    wd.threshold_ms = threshold_ms;
    wd.threshold = threshold_ms * IOLOOP_NS_PER_MS;
    wd.period = wd.threshold / 4 > IOLOOP_NS_PER_MS ? wd.threshold / 4
                                                    : IOLOOP_NS_PER_MS;
    wd.stopping = false;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd.wake, &attr);
    pthread_condattr_destroy(&attr);

    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(IOLOOP_WATCHDOG_SIGNAL, &sa, NULL);
    /* The monitor inherits a mask that blocks every signal. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&wd.monitor, NULL, monitor, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "watchdog: pthread_create: %s", strerror(rc));
        sigaction(IOLOOP_WATCHDOG_SIGNAL, &wd.saved, NULL);
        pthread_cond_destroy(&wd.wake);
        return -rc;
    }
    wd.running = true;
    return 0;
}

void
ioloop__watchdog_stop(void)
{
    forget_after_fork();
    if (!wd.running) {
        return;
    }
    pthread_mutex_lock(&wd.lock);
    wd.stopping = true;
    pthread_cond_signal(&wd.wake);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.monitor, NULL);
    pthread_cond_destroy(&wd.wake);
    sigaction(IOLOOP_WATCHDOG_SIGNAL, &wd.saved, NULL);
    wd.running = false;
}

/* The monitor thread: one sample per period until stop(). */
static void *
monitor(void *arg)
{
    struct sampler s = {0};
    bool stopping;

    (void) arg;
    do {
        ioloop_time_t at = ioloop__monotonic_now() + wd.period;
        struct timespec ts = {.tv_sec = at / IOLOOP_NS_PER_S,
                              .tv_nsec = at % IOLOOP_NS_PER_S};

        pthread_mutex_lock(&wd.lock);
        while (!wd.stopping
               && pthread_cond_timedwait(&wd.wake, &wd.lock, &ts) == 0) {
            /* a spurious wake-up: wait on until the deadline */
        }
        stopping = wd.stopping;
        pthread_mutex_unlock(&wd.lock);
        if (!stopping) {
            sample(&s);
        }
    } while (!stopping);
    return NULL;
}

/*
 * seq is odd while a run is on and changes at every start and end: the
 * same odd seq in two samples is one run that spans them. Each seq is
 * reported at most once.
 */
static void
sample(struct sampler *s)
{
    const struct ioloop_activity *a = wd.activity;
    ioloop_time_t now = ioloop__monotonic_now();
    uint64_t seq = atomic_load_explicit(&a->seq, memory_order_acquire);

    if (!(seq & 1) || seq != s->seq) {
        *s = (struct sampler){.seq = seq, .since = now};
        return;
    }
    if (!s->reported && now - s->since >= wd.threshold) {
        s->reported = true;
        report(seq, now - s->since);
    }
}

/* Logs one stall, counts it, and asks the loop thread for its stack. */
static void
report(uint64_t seq, ioloop_time_t held)
{
    const struct ioloop_activity *a = wd.activity;
    struct ioloop_owner *owner;
    int64_t packed;
    int kind, fd;
    char what[48];

    /* These are seq's unless its run ended meanwhile; then seq moved, so
     * checking it again rejects a mix (exactly on x86; as the loop's
     * stores of owner and what are relaxed, a weaker memory model leaves
     * a window of a few instructions). */
    owner = (struct ioloop_owner *) atomic_load(&a->owner);
    packed = atomic_load(&a->what);
    kind = IOLOOP_ACTIVITY_KIND(packed);
    fd = IOLOOP_ACTIVITY_FD(packed);
    if (atomic_load(&a->seq) != seq) {
        return;
    }
    if (kind == IOLOOP_RUN_HANDLER) {
        snprintf(what, sizeof(what), "handler for fd %d", fd);
    } else {
        snprintf(what, sizeof(what), "%s",
                 kind == IOLOOP_RUN_TIMER ? "timer" : "callback");
    }
    if (owner != NULL) {
        atomic_fetch_add_explicit(&owner->stalls, 1, memory_order_relaxed);
        ioloop__metrics_count_stall(owner);
    }
    IOLOOP_LOG(IOLOOP_LOG_WARN, owner != NULL ? owner->name : "host",
               "blocked the loop for %lld ms in %s (watchdog_ms=%d)",
               (long long) (held / IOLOOP_NS_PER_MS), what, wd.threshold_ms);
    atomic_store(&dump_seq, seq);
    pthread_kill(wd.loop_thread, IOLOOP_WATCHDOG_SIGNAL);
}

/*
 * Runs on the loop thread: writes its stack, without this frame and the
 * kernel's signal trampoline (sanitizers intercept backtrace(), so one
 * more frame shows there), unless the stalled run is over (a stack of the
 * next one would mislead).
 */
static void
on_dump_signal(int signo)
{
    static const char gone[] = "(the stalled run ended before its stack "
                               "was taken)\n";
    const struct ioloop_activity *a = wd.activity;
    void *frames[STACK_DEPTH];
    int saved_errno = errno;
    int n;

    (void) signo;
    if (atomic_load(&a->seq) == atomic_load(&dump_seq)) {
        n = backtrace(frames, STACK_DEPTH);
        if (n > 2) {
            backtrace_symbols_fd(frames + 2, n - 2, STDERR_FILENO);
        }
    } else if (write(STDERR_FILENO, gone, sizeof(gone) - 1) < 0) {
        /* nothing to do about a failed write in a signal handler */
    }
    errno = saved_errno;
}

/* A child of fork() has wd but not the monitor, which may have held the
 * lock at the fork: start afresh, with the disposition restored. */
static void
forget_after_fork(void)
{
    if (wd.running && wd.pid != getpid()) {
        sigaction(IOLOOP_WATCHDOG_SIGNAL, &wd.saved, NULL);
        pthread_mutex_init(&wd.lock, NULL);
        wd.running = false;
    }
}
