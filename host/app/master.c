/* host/app/master.c: forks, supervises and reloads the worker processes. */
#include "master.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
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
#define RELOAD_TIMEOUT (60 * IOLOOP_NS_PER_S) /* for the new inits */
#define CRASH_LOG 64

/* Written by a worker's fatal-signal handler, read by the master. */
struct worker_page {
    char culprit[64]; /* the plugin instance running when it crashed */
};

/*
 * A slot. Its epoch says which set of instances its worker runs: every
 * reload and every quarantine starts a new epoch; the workers of older
 * epochs drain once those of the current one are ready.
 */
struct worker {
    pid_t pid; /* 0: no process */
    unsigned generation; /* of the manifest it runs (reloads count) */
    unsigned epoch;      /* 0: a free slot */
    int channel; /* the master's end of the broker socketpair, or -1 */
    bool ready;
    bool draining;   /* told to stop: its exit is expected */
    bool restarting; /* a restart is scheduled in this slot */
    unsigned index;  /* worker index within its epoch: 0 to workers - 1 */
    int crashes; /* in a row, for the backoff */
    ioloop_time_t started;
    char failure[512]; /* why its init failed, from the worker */
};

/* Crashes are counted per manifest generation: a reload starts afresh. */
struct crash {
    char culprit[64];
    unsigned generation;
    ioloop_time_t at;
};

static struct {
    struct ioloop_setup *s;    /* the manifest being served */
    struct ioloop_setup *next; /* a reload's, until it commits or fails */
    ioloop_loop_t *loop;
    struct ioloop_backend_lib *backend;
    const char *config;
    const char *backend_override;
    struct worker *w; /* 2 x workers slots: room for two generations */
    size_t nslots;
    struct worker_page *pages; /* shared with the workers */
    struct ioloop_metrics *metrics; /* one slot per worker slot */
    unsigned generation; /* of s */
    unsigned epoch;      /* the workers s should have */
    unsigned next_epoch; /* next's workers */
    unsigned epochs;     /* the last epoch handed out */
    bool announced;      /* READY=1 sent for the start */
    bool stopping;
    int status;
    struct crash crashes[CRASH_LOG];
    size_t ncrashes;
} master;

/* Set in a worker only: its page and loop, for the crash handler. */
static struct worker_page *my_page;
static ioloop_loop_t *my_loop;

static int spawn(size_t slot, struct ioloop_setup *s, unsigned epoch,
                 unsigned generation);
static unsigned free_index(size_t slot, unsigned epoch);
static void worker_main(size_t slot, unsigned index, int channel,
                        const sigset_t *mask,
                        struct ioloop_setup *s);
static void on_fatal_signal(int signo);
static int on_channel(ioloop_loop_t *loop, int fd, unsigned events,
                      void *arg);
static void drain_channel(struct worker *w);
static void close_channel(struct worker *w);
static void on_ready(struct worker *w);
static void on_init_failed(struct worker *w);
static int on_sigchld(ioloop_loop_t *loop, int signo, void *arg);
static void on_exit_of(struct worker *w, int status);
static void restart_later(struct worker *w);
static void free_slot(struct worker *w);
static void fill_slots(void);
static const char *culprit_of(struct worker *w, size_t slot);
static ioloop_instance_t *find_instance(struct ioloop_setup *s,
                                        const char *name);
static ioloop_instance_t *record_crash(const char *culprit,
                                       unsigned generation);
static void quarantine(ioloop_instance_t *p);
static void carry_quarantine(struct ioloop_setup *next);
static int restart_cb(ioloop_loop_t *loop, void *arg);
static int hang_check(ioloop_loop_t *loop, void *arg);
static int on_stop(ioloop_loop_t *loop, int signo, void *arg);
static int on_reload(ioloop_loop_t *loop, int signo, void *arg);
static int reload_timeout(ioloop_loop_t *loop, void *arg);
static void commit_reload(void);
static void abort_reload(const char *reason, int sig);
static int on_forward(ioloop_loop_t *loop, int signo, void *arg);
static bool all_ready(unsigned epoch);
static void retire_stale(void);
static size_t running_count(void);
static void describe(int status, char *buf, size_t len);

int
ioloop__master_run(struct ioloop_setup *s, ioloop_loop_t *loop,
                   struct ioloop_backend_lib *backend, const char *config,
                   const char *backend_override)
{
    size_t n = (size_t) s->m.workers;
    char err[1024];

    /* Every plugin's init and fini in check mode, nothing bound, before
     * any fork: a config that cannot start fails here once, with the
     * message --check prints, instead of in every worker and restart. */
    if (ioloop__setup_check(s, loop, err, sizeof(err)) < 0) {
        char line[sizeof(err) + PATH_MAX];

        ioloop__setup_message(s, err, line, sizeof(line));
        ioloop__log_cli("%s", line);
        return 1;
    }
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
    master.epoch = master.epochs = 1;
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
    ioloop__metrics_set_quarantined(master.metrics, &master.s->plugins);
    fill_slots();
    ioloop_start(loop);
    ioloop__signal_unsubscribe_owner(loop, NULL);
    for (size_t i = 0; i < master.nslots; i++) {
        close_channel(&master.w[i]);
    }
    ioloop__broker_close_all();
    munmap(master.pages, master.nslots * sizeof(*master.pages));
    ioloop__metrics_free(master.metrics);
    free(master.w);
    if (master.next != NULL) { /* stopped during a reload */
        ioloop__setup_free(master.next);
        free(master.next);
    }
    ioloop__setup_free(master.s);
    free(master.s);
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "master stopped");
    return master.status;
}

/* Forks the worker of slot to serve s, in epoch and generation. 0 or
 * -1. */
static int
spawn(size_t slot, struct ioloop_setup *s, unsigned epoch,
      unsigned generation)
{
    struct worker *w = &master.w[slot];
    unsigned index = free_index(slot, epoch);
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
        worker_main(slot, index, sv[1], &old, s);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    *w = (struct worker){.pid = pid, .generation = generation,
                         .epoch = epoch, .channel = sv[0],
                         .crashes = w->crashes, .index = index,
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
 * The lowest worker index that no other slot of epoch holds (running or
 * about to restart): a worker replacing a crashed one gets its index back,
 * so that worker 0, which alone runs the one_process instances, always
 * exists. Linear in the slots: once per fork.
 */
static unsigned
free_index(size_t slot, unsigned epoch)
{
    unsigned index = 0;
    size_t i = 0;

    while (i < master.nslots) {
        const struct worker *o = &master.w[i];

        if (i != slot && o->epoch == epoch && (o->pid > 0 || o->restarting)
            && o->index == index) {
            index++;
            i = 0; /* index changed: look again from the first slot */
        } else {
            i++;
        }
    }
    return index;
}

/*
 * The child: drops the master's loop, channels and listeners (copies
 * only: the kernel objects stay the master's), then serves on a loop of
 * its own as worker index (its log lines say so; a one_process instance
 * runs in worker 0 only). Never returns.
 */
static void
worker_main(size_t slot, unsigned index, int channel, const sigset_t *mask,
            struct ioloop_setup *s)
{
    struct ioloop_backend_lib backend;
    struct sigaction sa = {0};
    ioloop_loop_t *loop = NULL;
    char err[2048];
    int status = 1;

    ioloop__log_set_worker((int) index);
    ioloop__plugins_place(&s->plugins, index, (unsigned) s->m.workers);
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
    if (ioloop__backend_choose(s->m.backends, s->m.nbackends,
                               s->backend_dir, &backend, &loop, err,
                               sizeof(err)) < 0) {
        ioloop__broker_note(IOLOOP_BROKER_FAILED, err); /* logged there */
    } else {
        my_loop = loop;
        ioloop__metrics_attach(loop, master.metrics, (unsigned) slot);
        status = ioloop__serve(s, loop, &backend);
        ioloop__metrics_detach(loop);
        my_loop = NULL;
        ioloop_loop_free(loop);
        ioloop__backend_close(&backend);
    }
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
        on_init_failed(w);
    } else if (op == IOLOOP_BROKER_READY) {
        w->ready = true;
        w->failure[0] = '\0';
        on_ready(w);
    }
    return 0;
}

/* The worker of w exited: what it sent before is read now, since the
 * SIGCHLD may be handled before its channel. Its end is closed, so no
 * read blocks. */
static void
drain_channel(struct worker *w)
{
    struct pollfd pfd = {.fd = w->channel, .events = POLLIN};

    while (w->channel >= 0 && poll(&pfd, 1, 0) == 1) {
        on_channel(master.loop, w->channel, IOLOOP_READ, w);
    }
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

/* A worker finished its init: a reload commits once all of its workers
 * did; the first start is announced; older epochs drain. */
static void
on_ready(struct worker *w)
{
    if (master.next != NULL && w->epoch == master.next_epoch) {
        if (all_ready(master.next_epoch)) {
            commit_reload();
        }
        return;
    }
    if (w->epoch != master.epoch || !all_ready(master.epoch)) {
        return;
    }
    if (!master.announced) {
        master.announced = true;
        ioloop__sd_notifyf("READY=1\nSTATUS=generation %u serving",
                           master.generation);
        ioloop__listenfds_warn_unused();
    }
    retire_stale();
}

/* A worker's init failed (its exit follows): a reload's worker fails
 * the reload; any other is logged here, the worker printing nothing. */
static void
on_init_failed(struct worker *w)
{
    if (master.next != NULL && w->epoch == master.next_epoch) {
        abort_reload(w->failure, SIGTERM);
    } else if (!w->draining) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "worker %zu: %s",
                   (size_t) (w - master.w), w->failure);
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

/*
 * A worker is gone: expected (drained); a reload's worker that died
 * before its generation committed (the reload fails); or a crash,
 * counted against the plugin to blame, then restarted after a backoff.
 */
static void
on_exit_of(struct worker *w, int status)
{
    size_t slot = (size_t) (w - master.w);
    ioloop_instance_t *p;
    const char *culprit;
    char how[128], reason[768];

    drain_channel(w);
    close_channel(w);
    w->pid = 0;
    describe(status, how, sizeof(how));
    if (w->draining || master.stopping) {
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "worker %zu: %s", slot, how);
        free_slot(w);
        fill_slots();
        return;
    }
    culprit = culprit_of(w, slot);
    if (master.next != NULL && w->epoch == master.next_epoch) {
        snprintf(reason, sizeof(reason), "worker %zu: %s%s%s%s", slot, how,
                 culprit[0] ? " (in plugin \"" : "", culprit,
                 culprit[0] ? "\")" : "");
        free_slot(w);
        abort_reload(reason, SIGTERM);
        return;
    }
    IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "worker %zu: %s%s%s%s", slot, how,
               culprit[0] ? " (in plugin \"" : "", culprit,
               culprit[0] ? "\")" : "");
    p = record_crash(culprit, w->generation);
    if (p != NULL) {
        free_slot(w);
        quarantine(p);
    } else if (w->epoch == master.epoch) {
        restart_later(w);
    } else { /* an older epoch's, due to drain: a current one replaces it */
        free_slot(w);
        fill_slots();
    }
}

/* Schedules the restart of w's slot, backing off while it keeps
 * crashing. */
static void
restart_later(struct worker *w)
{
    size_t slot = (size_t) (w - master.w);
    ioloop_time_t now = ioloop_time(master.loop);
    int shift;

    w->crashes = (now - w->started >= STABLE_AFTER) ? 1 : w->crashes + 1;
    shift = w->crashes - 1 < BACKOFF_MAX_SHIFT ? w->crashes - 1
                                               : BACKOFF_MAX_SHIFT;
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "worker %zu: restarting in %d ms",
               slot, (int) ((BACKOFF_MIN << shift) / IOLOOP_NS_PER_MS));
    w->restarting = ioloop_call_later(master.loop, BACKOFF_MIN << shift,
                                      restart_cb, w)
                    != 0;
    if (!w->restarting) {
        free_slot(w);
    }
}

/* The slot has no worker and none coming: reusable. */
static void
free_slot(struct worker *w)
{
    w->epoch = 0;
    w->generation = 0;
    w->ready = false;
    w->draining = false;
    w->crashes = 0;
    ioloop__metrics_retire(master.metrics, (unsigned) (w - master.w));
}

/* Starts workers for the current epoch in free slots, up to the count
 * the manifest asks for. */
static void
fill_slots(void)
{
    size_t want = (size_t) master.s->m.workers, have = 0;

    if (master.stopping) {
        return;
    }
    for (size_t i = 0; i < master.nslots; i++) {
        const struct worker *w = &master.w[i];

        have += w->epoch == master.epoch && (w->pid > 0 || w->restarting);
    }
    for (size_t i = 0; i < master.nslots && have < want; i++) {
        if (master.w[i].pid == 0 && !master.w[i].restarting
            && master.w[i].epoch == 0
            && spawn(i, master.s, master.epoch, master.generation) == 0) {
            have++;
        }
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

/* The instance of s named name (as cut in a crash page), or NULL. */
static ioloop_instance_t *
find_instance(struct ioloop_setup *s, const char *name)
{
    char cut[sizeof(((struct worker_page *) NULL)->culprit)];

    for (size_t i = 0; i < s->plugins.n; i++) {
        snprintf(cut, sizeof(cut), "%s", s->plugins.v[i].owner.name);
        if (strcmp(cut, name) == 0) {
            return &s->plugins.v[i];
        }
    }
    return NULL;
}

/*
 * Notes a crash of a worker of generation blamed on culprit. Returns the
 * instance to quarantine when culprit, an instance of the manifest being
 * served, reached IOLOOP_QUARANTINE_CRASHES in that generation; NULL
 * otherwise (the host's own code, an older generation, an instance
 * quarantined already: never quarantined, only backed off).
 */
static ioloop_instance_t *
record_crash(const char *culprit, unsigned generation)
{
    ioloop_time_t now = ioloop_time(master.loop);
    ioloop_instance_t *p;
    struct crash *c;
    int recent = 0;
    size_t len;

    p = find_instance(master.s, culprit);
    if (p == NULL || p->quarantined || generation != master.generation) {
        return NULL;
    }
    c = &master.crashes[master.ncrashes % CRASH_LOG];
    len = strnlen(culprit, sizeof(c->culprit) - 1);
    memcpy(c->culprit, culprit, len);
    c->culprit[len] = '\0';
    c->generation = generation;
    c->at = now;
    master.ncrashes++;
    for (size_t i = 0; i < CRASH_LOG && i < master.ncrashes; i++) {
        c = &master.crashes[i];
        if (c->generation == generation && strcmp(c->culprit, culprit) == 0
            && now - c->at < IOLOOP_QUARANTINE_WINDOW) {
            recent++;
        }
    }
    return recent >= IOLOOP_QUARANTINE_CRASHES ? p : NULL;
}

/*
 * Removes p from the workers: its listeners close, and a new epoch of
 * workers that skip it replaces the running ones (which drain once the
 * new ones are ready). Stops the master when no instance is left.
 */
static void
quarantine(ioloop_instance_t *p)
{
    size_t left = 0;

    p->quarantined = true;
    for (size_t i = 0; i < master.s->plugins.n; i++) {
        left += !master.s->plugins.v[i].quarantined;
    }
    IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
               "plugin \"%s\" crashed its worker %d times in %d s: "
               "quarantined: %s",
               p->owner.name, IOLOOP_QUARANTINE_CRASHES,
               (int) (IOLOOP_QUARANTINE_WINDOW / IOLOOP_NS_PER_S),
               left > 0 ? "its listeners are closed and the workers "
                          "restart without it"
                        : "it was the last instance");
    ioloop__metrics_set_quarantined(master.metrics, &master.s->plugins);
    ioloop__broker_close_owner(p->owner.name);
    if (left == 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "no worker can run: every plugin instance is "
                   "quarantined: stopping");
        master.status = 1;
        ioloop_stop(master.loop);
        return;
    }
    master.epoch = ++master.epochs;
    fill_slots();
}

/* A reload keeps the quarantine of an instance it leaves unchanged (same
 * name, .so and config) and lifts it for one it changes. */
static void
carry_quarantine(struct ioloop_setup *next)
{
    for (size_t i = 0; i < master.s->plugins.n; i++) {
        const ioloop_instance_t *p = &master.s->plugins.v[i];
        ioloop_instance_t *q;
        json_t *a = (json_t *) p->config, *b;

        if (!p->quarantined) {
            continue;
        }
        q = find_instance(next, p->owner.name);
        if (q == NULL) {
            continue;
        }
        b = (json_t *) q->config;
        q->quarantined = strcmp(p->path, q->path) == 0
                         && (a == b || (a != NULL && b != NULL
                                        && json_equal(a, b)));
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "plugin \"%s\": %s",
                   p->owner.name,
                   q->quarantined ? "stays quarantined (the reload does "
                                    "not change it)"
                                  : "quarantine lifted (the reload "
                                    "changes it)");
    }
}

static int
restart_cb(ioloop_loop_t *loop, void *arg)
{
    struct worker *w = arg;

    w->restarting = false;
    if (!master.stopping && w->pid == 0 && w->epoch == master.epoch) {
        ioloop__metrics_note_restart(master.metrics,
                                     (unsigned) (w - master.w));
        if (spawn((size_t) (w - master.w), master.s, master.epoch,
                  master.generation)
            < 0) {
            restart_later(w);
        }
        return 0;
    }
    if (w->pid == 0) { /* an older epoch's, or stopping */
        free_slot(w);
        fill_slots();
    }
    if (master.stopping && running_count() == 0) {
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
 * the free slots, as one transaction: it commits once every new worker
 * reported its init done (the old generation then drains), and fails,
 * leaving the old generation as it was, when one reports a failure, dies
 * first, or RELOAD_TIMEOUT passes.
 */
static int
on_reload(ioloop_loop_t *loop, int signo, void *arg)
{
    struct ioloop_setup *next;
    struct ioloop_backend_lib lib;
    ioloop_loop_t *probe = NULL;
    char err[2048];
    size_t want, free_slots = 0;
    unsigned spawned = 0;

    (void) signo;
    (void) arg;
    if (master.stopping) {
        return 0;
    }
    if (master.next != NULL) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "reload refused: generation %u is still starting",
                   master.generation + 1);
        return 0;
    }
    next = calloc(1, sizeof(*next));
    if (next == NULL) {
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
        free_slots += master.w[i].pid == 0 && !master.w[i].restarting;
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
    carry_quarantine(next);
    /* The new workers inherit the new logging; a failure restores it. */
    ioloop__setup_log(&next->m);
    master.next = next;
    master.next_epoch = ++master.epochs;
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "SIGHUP: reloading %s: generation %u, %zu worker%s",
               next->m.file, master.generation + 1, want,
               want == 1 ? "" : "s");
    for (size_t i = 0; i < master.nslots && spawned < want; i++) {
        if (master.w[i].pid == 0 && !master.w[i].restarting) {
            master.w[i].crashes = 0;
            if (spawn(i, next, master.next_epoch, master.generation + 1)
                < 0) {
                abort_reload("cannot start its workers", SIGTERM);
                return 0;
            }
            spawned++;
        }
    }
    if (ioloop_call_later(loop, RELOAD_TIMEOUT, reload_timeout,
                          (void *) (uintptr_t) master.next_epoch)
        == 0) {
        abort_reload("out of memory for its timer", SIGTERM);
    }
    return 0;
}

/* The new workers of epoch (arg) are still in their inits: they hang. */
static int
reload_timeout(ioloop_loop_t *loop, void *arg)
{
    char reason[128];

    (void) loop;
    if (master.next != NULL && master.next_epoch == (uintptr_t) arg) {
        snprintf(reason, sizeof(reason),
                 "its workers did not finish their init within %d s",
                 (int) (RELOAD_TIMEOUT / IOLOOP_NS_PER_S));
        abort_reload(reason, SIGKILL); /* a hung init never sees SIGTERM */
    }
    return 0;
}

/* Every worker of the reload is ready: it becomes the generation served;
 * the older workers drain. */
static void
commit_reload(void)
{
    ioloop__setup_free(master.s);
    free(master.s);
    master.s = master.next;
    master.next = NULL;
    master.generation++;
    master.epoch = master.next_epoch;
    master.announced = true;
    ioloop__metrics_set_quarantined(master.metrics, &master.s->plugins);
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "reloaded: generation %u",
               master.generation);
    ioloop__sd_notifyf("READY=1\nSTATUS=reloaded: generation %u",
                       master.generation);
    ioloop__listenfds_warn_unused();
    retire_stale();
}

/*
 * The reload fails: one error line, READY=1 with the reason, its workers
 * stopped (sig: SIGTERM, or SIGKILL for hung ones) and the generation
 * served left as it was. Nothing of it counts as a crash.
 */
static void
abort_reload(const char *reason, int sig)
{
    IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
               "reload failed, the running workers go on: %s", reason);
    ioloop__sd_notifyf("READY=1\nSTATUS=reload failed: %s", reason);
    for (size_t i = 0; i < master.nslots; i++) {
        struct worker *w = &master.w[i];

        if (w->pid > 0 && w->epoch == master.next_epoch) {
            w->draining = true;
            kill(w->pid, sig);
        }
    }
    ioloop__setup_log(&master.s->m);
    ioloop__setup_free(master.next);
    free(master.next);
    master.next = NULL;
    fill_slots(); /* when a quarantine came meanwhile */
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

/* Some worker of epoch runs, and every one that runs is ready. */
static bool
all_ready(unsigned epoch)
{
    size_t live = 0;

    for (size_t i = 0; i < master.nslots; i++) {
        const struct worker *w = &master.w[i];

        if (w->pid > 0 && w->epoch == epoch) {
            if (!w->ready) {
                return false;
            }
            live++;
        }
    }
    return live > 0;
}

/* The workers of older epochs drain (the current one is ready); the
 * listeners stay open in the master meanwhile. */
static void
retire_stale(void)
{
    for (size_t i = 0; i < master.nslots; i++) {
        struct worker *w = &master.w[i];

        if (w->pid > 0 && w->epoch != master.epoch && !w->draining
            && (master.next == NULL || w->epoch != master.next_epoch)) {
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
    size_t n = 0;

    for (size_t i = 0; i < master.nslots; i++) {
        n += master.w[i].pid > 0 || master.w[i].restarting;
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
