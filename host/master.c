/* host/master.c: forks, supervises and reloads the worker processes. */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "log.h"
#include "listenfds.h"
#include "metrics.h"
#include "net.h"
#include "sdnotify.h"
#include "serve.h"
#include "signals.h"

#define BACKOFF_MIN (100 * IOLOOP_NS_PER_MS)
#define BACKOFF_MAX_SHIFT 6                  /* 100 ms << 6 = 6.4 s */
#define STABLE_AFTER (10 * IOLOOP_NS_PER_S)  /* resets the backoff */
#define CRASH_LOG 64

/* Written by a worker's fatal-signal handler, read by the master. */
struct worker_page {
    char culprit[64]; /* the plugin instance running when it crashed */
};

struct worker {
    pid_t pid; /* 0: no process */
    unsigned generation;
    int channel; /* the master's end of the broker socketpair, or -1 */
    bool ready;
    bool draining; /* told to stop: its exit is expected */
    bool quarantined;
    int crashes; /* in a row, for the backoff */
    ioloop_time_t started;
    char failure[512]; /* why its init failed, from the worker */
};

struct crash {
    char culprit[64];
    ioloop_time_t at;
};

static struct {
    struct ioloop_setup *s;
    ioloop_loop_t *loop;
    struct ioloop_backend_lib *backend;
    const char *config;
    const char *backend_override;
    struct worker *w; /* 2 x workers slots: room for two generations */
    size_t nslots;
    struct worker_page *pages; /* shared with the workers */
    struct ioloop_metrics *metrics; /* one slot per worker slot */
    unsigned generation;
    bool stopping;
    int status;
    size_t pending_restarts;
    struct crash crashes[CRASH_LOG];
    size_t ncrashes;
} master;

/* Set in a worker only: its page and loop, for the crash handler. */
static struct worker_page *my_page;
static ioloop_loop_t *my_loop;

static int spawn(size_t slot);
static void worker_main(size_t slot, int channel, const sigset_t *mask);
static void on_fatal_signal(int signo);
static int on_channel(ioloop_loop_t *loop, int fd, unsigned events,
                      void *arg);
static void close_channel(struct worker *w);
static int on_sigchld(ioloop_loop_t *loop, int signo, void *arg);
static void on_exit_of(struct worker *w, int status);
static const char *culprit_of(struct worker *w, size_t slot);
static bool record_crash(const char *culprit);
static int restart_cb(ioloop_loop_t *loop, void *arg);
static int hang_check(ioloop_loop_t *loop, void *arg);
static int on_stop(ioloop_loop_t *loop, int signo, void *arg);
static int on_reload(ioloop_loop_t *loop, int signo, void *arg);
static int on_forward(ioloop_loop_t *loop, int signo, void *arg);
static void retire_old_generations(void);
static size_t running_count(void);
static void describe(int status, char *buf, size_t len);

int
ioloop__master_run(struct ioloop_setup *s, ioloop_loop_t *loop,
                   struct ioloop_backend_lib *backend, const char *config,
                   const char *backend_override)
{
    size_t n = (size_t) s->m.workers;

    master.s = malloc(sizeof(*master.s));
    if (master.s == NULL) {
        return 1;
    }
    *master.s = *s; /* ours from now on: a reload replaces it */
    memset(s, 0, sizeof(*s));
    master.loop = loop;
    master.backend = backend;
    master.config = config;
    master.backend_override = backend_override;
    master.nslots = 2 * n;
    master.generation = 1;
    master.w = calloc(master.nslots, sizeof(*master.w));
    master.pages = mmap(NULL, master.nslots * sizeof(*master.pages),
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                        -1, 0);
    master.metrics = ioloop__metrics_create((unsigned) master.nslots);
    if (master.w == NULL || master.pages == MAP_FAILED
        || master.metrics == NULL) {
        ioloop__log_cli("out of memory for %zu workers", n);
        free(master.w);
        return 1;
    }
    for (size_t i = 0; i < master.nslots; i++) {
        master.w[i].channel = -1;
    }
    ioloop__metrics_set_workers(master.metrics, (unsigned) n);
    hang_check(loop, NULL);
    if (ioloop__signal_subscribe_host(loop, SIGCHLD, on_sigchld, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGTERM, on_stop, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGINT, on_stop, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGHUP, on_reload, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGUSR2, on_forward, NULL)
               < 0) {
        ioloop__log_cli("cannot subscribe to signals");
        return 1;
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "master %d: starting %zu worker%s",
               (int) getpid(), n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        spawn(i);
    }
    ioloop_start(loop);
    ioloop__signal_unsubscribe_owner(loop, NULL);
    for (size_t i = 0; i < master.nslots; i++) {
        close_channel(&master.w[i]);
    }
    ioloop__broker_close_all();
    munmap(master.pages, master.nslots * sizeof(*master.pages));
    ioloop__metrics_free(master.metrics);
    free(master.w);
    ioloop__setup_free(master.s);
    free(master.s);
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "master stopped");
    return master.status;
}

/* Forks the worker of slot for the current generation. 0 or -1. */
static int
spawn(size_t slot)
{
    struct worker *w = &master.w[slot];
    sigset_t all, old;
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "socketpair: %s",
                   strerror(errno));
        return -1;
    }
    memset(&master.pages[slot], 0, sizeof(master.pages[slot]));
    /* Signals wait until the child has its own dispositions: a SIGTERM
     * caught by the master's inherited handler would be lost. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        worker_main(slot, sv[1], &old);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    *w = (struct worker){.pid = pid, .generation = master.generation,
                         .channel = sv[0], .crashes = w->crashes,
                         .started = ioloop_time(master.loop)};
    if (ioloop_add_handler(master.loop, sv[0], IOLOOP_READ, on_channel, w)
        < 0) {
        close(sv[0]);
        w->channel = -1;
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "worker %zu: pid %d (generation %u)",
               slot, (int) pid, w->generation);
    return 0;
}

/*
 * The child: drops the master's loop, channels and listeners (copies
 * only: the kernel objects stay the master's), then serves on a loop of
 * its own. Never returns.
 */
static void
worker_main(size_t slot, int channel, const sigset_t *mask)
{
    struct ioloop_backend_lib backend;
    struct sigaction sa = {0};
    ioloop_loop_t *loop = NULL;
    char err[2048];
    int status = 1;

    ioloop__signal_unsubscribe_owner(master.loop, NULL);
    /* A worker whose master died (even by SIGKILL) stops gracefully. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigprocmask(SIG_SETMASK, mask, NULL);
    if (getppid() == 1) {
        _exit(1); /* the master died before prctl */
    }
    for (size_t i = 0; i < master.nslots; i++) {
        if (master.w[i].channel >= 0) {
            close(master.w[i].channel);
        }
    }
    ioloop_loop_free(master.loop);
    ioloop__broker_close_all();
    ioloop__broker_set(channel);
    my_page = &master.pages[slot];
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    if (ioloop__backend_choose(master.s->m.backends, master.s->m.nbackends,
                               master.s->backend_dir, &backend, &loop, err,
                               sizeof(err)) < 0) {
        ioloop__log_cli("worker %zu: %s", slot, err);
        ioloop__broker_note(IOLOOP_BROKER_FAILED, err);
    } else {
        my_loop = loop;
        ioloop__metrics_attach(loop, master.metrics, (unsigned) slot);
        status = ioloop__serve(master.s, loop, &backend);
        ioloop__metrics_detach(loop);
        my_loop = NULL;
        ioloop_loop_free(loop);
        ioloop__backend_close(&backend);
    }
    ioloop__net_close_reserve();
    close(channel);
    _exit(status);
}

/* Async-signal-safe: notes whose code was running, then dies of signo. */
static void
on_fatal_signal(int signo)
{
    const struct ioloop_owner *owner =
        my_loop != NULL ? atomic_load_explicit(&ioloop__activity(my_loop)
                                                    ->owner,
                                               memory_order_relaxed)
                        : NULL;
    const char *name = owner != NULL ? owner->name : "host";
    size_t i;

    for (i = 0; name[i] != '\0' && i + 1 < sizeof(my_page->culprit); i++) {
        my_page->culprit[i] = name[i];
    }
    my_page->culprit[i] = '\0';
    raise(signo); /* SA_RESETHAND: the default action now */
}

static int
on_channel(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct worker *w = arg;
    char note[512];
    int op;

    (void) events;
    op = ioloop__broker_serve(loop, fd, note, sizeof(note));
    if (op < 0) {
        close_channel(w); /* the worker is exiting */
    } else if (op == IOLOOP_BROKER_FAILED) {
        snprintf(w->failure, sizeof(w->failure), "%s", note);
    } else if (op == IOLOOP_BROKER_READY) {
        w->ready = true;
        w->failure[0] = '\0';
        retire_old_generations();
    }
    return 0;
}

static void
close_channel(struct worker *w)
{
    if (w->channel >= 0) {
        ioloop_remove_handler(master.loop, w->channel);
        close(w->channel);
        w->channel = -1;
    }
}

/* Reaps every worker that exited. */
static int
on_sigchld(ioloop_loop_t *loop, int signo, void *arg)
{
    int status;
    pid_t pid;

    (void) signo;
    (void) arg;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < master.nslots; i++) {
            if (master.w[i].pid == pid) {
                on_exit_of(&master.w[i], status);
                break;
            }
        }
    }
    if (master.stopping && running_count() == 0) {
        ioloop_stop(loop);
    }
    return 0;
}

/* A worker is gone: expected (drained), or a crash to restart from. */
static void
on_exit_of(struct worker *w, int status)
{
    size_t slot = (size_t) (w - master.w);
    ioloop_time_t now = ioloop_time(master.loop);
    const char *culprit;
    char how[128];
    int delay_shift;

    close_channel(w);
    w->pid = 0;
    describe(status, how, sizeof(how));
    if (w->draining || master.stopping) {
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "worker %zu: %s", slot, how);
        w->generation = 0;
        ioloop__metrics_retire(master.metrics, (unsigned) slot);
        return;
    }
    culprit = culprit_of(w, slot);
    IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "worker %zu: %s%s%s%s", slot, how,
               culprit[0] ? " (in plugin \"" : "", culprit,
               culprit[0] ? "\")" : "");
    if (record_crash(culprit)) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "plugin \"%s\" crashed its worker %d times in %d s: "
                   "quarantined, worker %zu is not restarted",
                   culprit, IOLOOP_QUARANTINE_CRASHES,
                   (int) (IOLOOP_QUARANTINE_WINDOW / IOLOOP_NS_PER_S), slot);
        w->quarantined = true;
        w->generation = 0;
        ioloop__metrics_retire(master.metrics, (unsigned) slot);
        if (running_count() == 0) {
            IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                       "no worker can run: stopping");
            master.status = 1;
            ioloop_stop(master.loop);
        }
        return;
    }
    w->crashes = (now - w->started >= STABLE_AFTER) ? 1 : w->crashes + 1;
    delay_shift = w->crashes - 1 < BACKOFF_MAX_SHIFT ? w->crashes - 1
                                                     : BACKOFF_MAX_SHIFT;
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "worker %zu: restarting in %d ms",
               slot, (int) ((BACKOFF_MIN << delay_shift) / IOLOOP_NS_PER_MS));
    if (ioloop_call_later(master.loop, BACKOFF_MIN << delay_shift,
                          restart_cb, w) != 0) {
        master.pending_restarts++;
    }
}

/* The plugin instance to blame: the one a fatal signal interrupted, or
 * the one whose init failed; "" when unknown. */
static const char *
culprit_of(struct worker *w, size_t slot)
{
    char *q;

    if (master.pages[slot].culprit[0] != '\0') {
        return master.pages[slot].culprit;
    }
    /* "plugins[1] \"name\": init failed: ..." */
    q = strchr(w->failure, '"');
    if (q != NULL && strchr(q + 1, '"') != NULL) {
        *strchr(q + 1, '"') = '\0';
        memmove(w->failure, q + 1, strlen(q + 1) + 1);
        return w->failure;
    }
    return "";
}

/* Notes a crash; true when culprit reached the quarantine threshold. */
static bool
record_crash(const char *culprit)
{
    ioloop_time_t now = ioloop_time(master.loop);
    struct crash *c;
    int recent = 0;
    size_t len;

    if (culprit[0] == '\0') {
        return false; /* unknown: never quarantined, only backed off */
    }
    c = &master.crashes[master.ncrashes % CRASH_LOG];
    len = strnlen(culprit, sizeof(c->culprit) - 1);
    memcpy(c->culprit, culprit, len); /* names are cut to fit, as pages */
    c->culprit[len] = '\0';
    c->at = now;
    master.ncrashes++;
    for (size_t i = 0; i < CRASH_LOG && i < master.ncrashes; i++) {
        if (strcmp(master.crashes[i].culprit, culprit) == 0
            && now - master.crashes[i].at < IOLOOP_QUARANTINE_WINDOW) {
            recent++;
        }
    }
    return recent >= IOLOOP_QUARANTINE_CRASHES;
}

static int
restart_cb(ioloop_loop_t *loop, void *arg)
{
    struct worker *w = arg;

    master.pending_restarts--;
    if (!master.stopping && w->pid == 0 && w->generation == master.generation) {
        ioloop__metrics_note_restart(master.metrics,
                                     (unsigned) (w - master.w));
        spawn((size_t) (w - master.w));
    } else if (master.stopping && running_count() == 0) {
        ioloop_stop(loop);
    }
    return 0;
}

/*
 * watchdog_kill_ms: a worker whose loop has been blocked in one run that
 * long (its watchdog publishes the run's start in the metrics segment) is
 * killed and blamed on the plugin, so that on_exit_of replaces it as it
 * does a crash. Runs every watchdog_kill_ms / 4, or every second while
 * it is off (a reload may turn it on).
 */
static int
hang_check(ioloop_loop_t *loop, void *arg)
{
    int kill_ms = master.s->m.watchdog_kill_ms;
    ioloop_time_t now = ioloop__monotonic_now(), period = IOLOOP_NS_PER_S;
    char plugin[64];

    (void) arg;
    for (size_t i = 0; kill_ms > 0 && i < master.nslots; i++) {
        struct worker *w = &master.w[i];
        ioloop_time_t since;

        if (w->pid <= 0 || master.pages[i].culprit[0] != '\0') {
            continue; /* none, or killed already */
        }
        since = ioloop__metrics_blocked(master.metrics, (unsigned) i, w->pid,
                                        plugin, sizeof(plugin));
        if (since == 0 || now - since < kill_ms * IOLOOP_NS_PER_MS) {
            continue;
        }
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "worker %zu: plugin \"%s\" blocked its loop for %lld ms "
                   "(watchdog_kill_ms=%d): replacing the worker",
                   i, plugin, (long long) ((now - since) / IOLOOP_NS_PER_MS),
                   kill_ms);
        snprintf(master.pages[i].culprit, sizeof(master.pages[i].culprit),
                 "%s", plugin);
        kill(w->pid, SIGKILL);
    }
    if (kill_ms > 0) {
        period = kill_ms * IOLOOP_NS_PER_MS / 4 > 10 * IOLOOP_NS_PER_MS
                     ? kill_ms * IOLOOP_NS_PER_MS / 4
                     : 10 * IOLOOP_NS_PER_MS;
    }
    ioloop_call_later(loop, period, hang_check, NULL);
    return 0;
}

/* SIGTERM/SIGINT: every worker drains; a second SIGINT kills them. */
static int
on_stop(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) arg;
    if (master.stopping && signo == SIGINT) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "second SIGINT: killing the workers");
        for (size_t i = 0; i < master.nslots; i++) {
            if (master.w[i].pid > 0) {
                kill(master.w[i].pid, SIGKILL);
            }
        }
        master.status = 1;
        ioloop_stop(loop);
        return 0;
    }
    master.stopping = true;
    ioloop__sd_notify("STOPPING=1");
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "%s: stopping the workers",
               signo == SIGINT ? "SIGINT" : "SIGTERM");
    for (size_t i = 0; i < master.nslots; i++) {
        if (master.w[i].pid > 0) {
            master.w[i].draining = true;
            kill(master.w[i].pid, SIGTERM);
        }
    }
    if (running_count() == 0) {
        ioloop_stop(loop);
    }
    return 0;
}

/*
 * SIGHUP: loads and checks the manifest as --check does; on any error the
 * running generation goes on untouched. Else a new generation starts in
 * the free slots, and the old one drains once the new one is ready.
 */
static int
on_reload(ioloop_loop_t *loop, int signo, void *arg)
{
    struct ioloop_setup *next = calloc(1, sizeof(*next));
    struct ioloop_backend_lib lib;
    ioloop_loop_t *probe = NULL;
    char err[2048];
    size_t want, free_slots = 0;

    (void) loop;
    (void) signo;
    (void) arg;
    if (next == NULL || master.stopping) {
        free(next);
        return 0;
    }
    ioloop__sd_notify_reloading();
    if (ioloop__setup_load(next, master.config, master.backend_override, err,
                           sizeof(err)) < 0
        || ioloop__backend_choose(next->m.backends, next->m.nbackends,
                                  next->backend_dir, &lib, &probe, err,
                                  sizeof(err)) < 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "reload refused, the running workers go on: %s", err);
        ioloop__sd_notifyf("READY=1\nSTATUS=reload failed: %s", err);
        ioloop__setup_free(next);
        free(next);
        return 0;
    }
    ioloop_loop_free(probe);
    ioloop__backend_close(&lib);
    want = (size_t) next->m.workers;
    for (size_t i = 0; i < master.nslots; i++) {
        free_slots += master.w[i].pid == 0;
    }
    if (want == 0 || want > master.nslots / 2 || want > free_slots) {
        if (want > free_slots && want <= master.nslots / 2) {
            IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                       "reload refused, the running workers go on: the "
                       "previous generation is still draining; try again "
                       "when it is gone");
        } else {
            IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                       "reload refused, the running workers go on: %s: "
                       "workers: a reload can run 1 to %zu workers "
                       "(restart the master for more)",
                       next->m.file, master.nslots / 2);
        }
        ioloop__sd_notify("READY=1\nSTATUS=reload failed");
        ioloop__setup_free(next);
        free(next);
        return 0;
    }
    /* The new workers inherit the new logging; the old ones keep theirs. */
    ioloop__log_configure(next->m.log_level, next->m.log_json,
                          next->m.plugins, next->m.nplugins);
    /* The old workers run their own copies: the master moves on. */
    ioloop__setup_free(master.s);
    free(master.s);
    master.s = next;
    master.generation++;
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "SIGHUP: reloading %s: generation %u, %zu worker%s",
               next->m.file, master.generation, want, want == 1 ? "" : "s");
    for (size_t i = 0; i < master.nslots && want > 0; i++) {
        if (master.w[i].pid == 0) {
            master.w[i].crashes = 0;
            master.w[i].quarantined = false;
            spawn(i);
            want--;
        }
    }
    return 0;
}

/* SIGUSR2 (live backend swap) goes to every worker. */
static int
on_forward(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) loop;
    (void) arg;
    for (size_t i = 0; i < master.nslots; i++) {
        if (master.w[i].pid > 0 && !master.w[i].draining) {
            kill(master.w[i].pid, signo);
        }
    }
    return 0;
}

/* Once every worker of the current generation is ready, the older ones
 * drain: the listeners stay open in the master meanwhile. */
static void
retire_old_generations(void)
{
    for (size_t i = 0; i < master.nslots; i++) {
        const struct worker *w = &master.w[i];

        if (w->pid > 0 && w->generation == master.generation && !w->ready) {
            return;
        }
    }
    ioloop__sd_notifyf("READY=1\nSTATUS=generation %u serving",
                       master.generation);
    ioloop__listenfds_warn_unused();
    for (size_t i = 0; i < master.nslots; i++) {
        struct worker *w = &master.w[i];

        if (w->pid > 0 && w->generation != master.generation
            && !w->draining) {
            IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
                       "worker %zu (generation %u): draining", i,
                       w->generation);
            w->draining = true;
            kill(w->pid, SIGTERM);
        }
    }
}

/* Workers alive, or about to be restarted. */
static size_t
running_count(void)
{
    size_t n = master.pending_restarts;

    for (size_t i = 0; i < master.nslots; i++) {
        n += master.w[i].pid > 0;
    }
    return n;
}

static void
describe(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    }
}
