/*
 * host/runtime/watchdog.c: the blocking-callback watchdog of watchdog.h. The loop
 * pays only the relaxed stores of its activity record; a monitor thread
 * samples it every threshold / 4 (the smaller of the two thresholds; at
 * least 1 ms). The reported time counts from the first sample that saw
 * the stall: low by at most one period.
 *
 * Where the loop thread is comes from outside it (stackread.c). We gave
 * up the stack a signal handler on the loop thread can take (tornado's
 * way, and ours until then): a signal makes a blocking system call of the
 * stalled code fail with EINTR, and SA_RESTART does not help nanosleep,
 * poll and the like (signal(7)); a plugin waiting on a database would
 * fail its request instead of finishing late.
 */
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "stackread.h"

/* What the monitor remembers between two samples. */
struct sampler {
    uint64_t seq;        /* the last seq seen */
    ioloop_time_t since; /* when seq was first seen */
    bool reported;       /* seq was reported as a stall */
    bool published;      /* seq was published as a long run */
};

static struct {
    bool running;
    pid_t pid;                 /* the process that started the monitor */
    pthread_t monitor;
    pid_t loop_tid;            /* the loop thread, for /proc */
    uintptr_t stack_end;       /* the top of its stack */
    const struct ioloop_activity *activity;
    int threshold_ms;
    ioloop_time_t threshold;   /* ns; 0: stalls are not reported */
    bool publish;              /* watchdog_kill_ms: publish long runs */
    ioloop_time_t period;      /* ns between samples */
    pthread_mutex_t lock;      /* guards stopping */
    pthread_cond_t wake;       /* signalled by stop, on CLOCK_MONOTONIC */
    bool stopping;
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *monitor(void *arg);
static void sample(struct sampler *s);
static void report(uint64_t seq, ioloop_time_t held);
static void report_stack(uint64_t seq, const char *tag);
static uintptr_t stack_end_of_this_thread(void);
static void forget_after_fork(void);

int
ioloop__watchdog_start(ioloop_loop_t *loop, int threshold_ms, int kill_ms)
{
    pthread_condattr_t attr;
    sigset_t all, old;
    int rc, shortest;

    forget_after_fork();
    threshold_ms = threshold_ms > 0 ? threshold_ms : 0;
    kill_ms = kill_ms > 0 ? kill_ms : 0;
    if (threshold_ms == 0 && kill_ms == 0) {
        return 0;
    }
    if (wd.running) {
        return -EBUSY;
    }
    shortest = threshold_ms == 0 || (kill_ms > 0 && kill_ms < threshold_ms)
                   ? kill_ms
                   : threshold_ms;
    wd.pid = getpid();
    wd.loop_tid = (pid_t) syscall(SYS_gettid);
    wd.stack_end = stack_end_of_this_thread();
    wd.activity = ioloop__activity(loop);
    wd.threshold_ms = threshold_ms;
    wd.threshold = threshold_ms * IOLOOP_NS_PER_MS;
    wd.publish = kill_ms > 0;
    wd.period = shortest * IOLOOP_NS_PER_MS / 4 > IOLOOP_NS_PER_MS
                    ? shortest * IOLOOP_NS_PER_MS / 4
                    : IOLOOP_NS_PER_MS;
    wd.stopping = false;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd.wake, &attr);
    pthread_condattr_destroy(&attr);

    /* The monitor inherits a mask that blocks every signal. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&wd.monitor, NULL, monitor, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "watchdog: pthread_create: %s", strerror(rc));
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
    if (wd.publish) {
        ioloop__metrics_note_blocked(NULL, 0);
    }
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
        if (s->published) {
            ioloop__metrics_note_blocked(NULL, 0);
        }
        *s = (struct sampler){.seq = seq, .since = now};
        return;
    }
    if (wd.publish && !s->published) {
        /* A run spans two samples: the master times it from here. */
        s->published = true;
        ioloop__metrics_note_blocked(atomic_load(&wd.activity->owner),
                                     s->since);
    }
    if (wd.threshold > 0 && !s->reported && now - s->since >= wd.threshold) {
        s->reported = true;
        report(seq, now - s->since);
    }
}

/* Logs one stall, counts it, and logs where the loop thread is. */
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
    report_stack(seq, owner != NULL ? owner->name : "host");
}

/*
 * One line: where the loop thread waits and the frames found on its
 * stack, unless the stalled run ended meanwhile (a stack of the next one
 * would mislead).
 */
static void
report_stack(uint64_t seq, const char *tag)
{
    static struct ioloop_stack st; /* the monitor thread's only */
    const char *frames[IOLOOP_STACK_FRAMES];
    char msg[160];
    int rc;

    if (IOLOOP_LOG_WARN > ioloop__log_threshold) {
        return; /* the cheap early-out: nothing would be written */
    }
    rc = ioloop__stack_read(wd.loop_tid, wd.stack_end, &st);
    if (atomic_load(&wd.activity->seq) != seq) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, tag,
                   "stack: the stalled run ended before it was read");
        return;
    }
    if (rc < 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, tag, "stack: cannot read /proc: %s",
                   strerror(-rc));
        return;
    }
    if (!st.in_syscall) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, tag,
                   "stack: running on the CPU, not in a system call (no "
                   "stack without interrupting it)");
        return;
    }
    snprintf(msg, sizeof(msg), "stack: in system call %ld%s%s%s",
             st.syscall_nr, st.wchan[0] ? " (waiting in " : "", st.wchan,
             st.wchan[0] ? ")" : "");
    for (size_t i = 0; i < st.nframes; i++) {
        frames[i] = st.frames[i];
    }
    ioloop__log_frames(IOLOOP_LOG_WARN, tag, msg, frames, st.nframes);
}

/* The highest address of the calling thread's stack (0: unknown). */
static uintptr_t
stack_end_of_this_thread(void)
{
    pthread_attr_t attr;
    void *lo = NULL;
    size_t size = 0;

    if (pthread_getattr_np(pthread_self(), &attr) != 0) {
        return 0;
    }
    pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
    return (uintptr_t) lo + size;
}

/* A child of fork() has wd but not the monitor, which may have held the
 * lock at the fork: start afresh. */
static void
forget_after_fork(void)
{
    if (wd.running && wd.pid != getpid()) {
        pthread_mutex_init(&wd.lock, NULL);
        wd.running = false;
    }
}
