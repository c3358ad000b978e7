/*
 * host/app/serve.c: one serving process. A graceful stop (SIGTERM, SIGINT)
 * drains: every plugin stops accepting and finishes what is in flight;
 * the loop stops once no handler is left or shutdown_timeout passed, then
 * every fini runs. A second SIGINT stops the loop at once.
 */
#include "serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "http_server.h"
#include "listenfds.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "signals.h"
#include "watchdog.h"

/* How often a drain checks whether the handlers are all gone. */
#define DRAIN_CHECK (20 * IOLOOP_NS_PER_MS)

/* A process serves one setup: the signal callbacks find it here. */
static struct {
    struct ioloop_setup *s;
    struct ioloop_backend_lib *backend;
    size_t next_swap;
    bool draining;
    ioloop_time_t drain_deadline;
} serving;

static int on_stop_signal(ioloop_loop_t *loop, int signo, void *arg);
static int drain_check(ioloop_loop_t *loop, void *arg);
static int on_swap_signal(ioloop_loop_t *loop, int signo, void *arg);
static int on_reload_signal(ioloop_loop_t *loop, int signo, void *arg);
static void report(const struct ioloop_setup *s, const char *err);

int
ioloop__serve(struct ioloop_setup *s, ioloop_loop_t *loop,
              struct ioloop_backend_lib *backend)
{
    char err[2048];
    int rc;

    serving.s = s;
    serving.backend = backend;
    serving.next_swap = 0;
    serving.draining = false;
    if (ioloop__signal_subscribe_host(loop, SIGINT, on_stop_signal, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGTERM, on_stop_signal, NULL)
               < 0
        || ioloop__signal_subscribe_host(loop, SIGUSR2, on_swap_signal, NULL)
               < 0
        /* Without a master, SIGHUP re-reads the servers' certificates
         * (a master reloads by starting new workers instead). */
        || (ioloop__broker_fd() < 0
            && ioloop__signal_subscribe_host(loop, SIGHUP, on_reload_signal,
                                             NULL)
                   < 0)) {
        ioloop__log_cli("cannot subscribe to signals");
        return 1;
    }
    ioloop__metrics_set_plugins(loop, &s->plugins);
    /* The servers exist before any init (which may declare routes on
     * them) and accept once every instance has started. */
    if (ioloop__http_servers_create(loop, s->m.servers, s->m.nservers, err,
                                    sizeof(err))
        < 0) {
        report(s, err);
        ioloop__signal_unsubscribe_owner(loop, NULL);
        return 1;
    }
    if (ioloop__plugins_init(&s->plugins, loop, err, sizeof(err)) < 0) {
        report(s, err);
        ioloop__http_servers_free(loop);
        ioloop__signal_unsubscribe_owner(loop, NULL);
        return 1;
    }
    if (ioloop__http_servers_start(loop, &s->plugins, err, sizeof(err))
        < 0) {
        report(s, err);
        ioloop__plugins_fini(&s->plugins, loop);
        ioloop__http_servers_free(loop);
        ioloop__signal_unsubscribe_owner(loop, NULL);
        return 1;
    }
    ioloop__broker_note(IOLOOP_BROKER_READY, NULL);
    if (ioloop__broker_fd() < 0) { /* no master: we talk to systemd */
        ioloop__sd_notifyf("READY=1\nSTATUS=serving %zu plugin%s",
                           s->plugins.n, s->plugins.n == 1 ? "" : "s");
        ioloop__listenfds_warn_unused();
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "started: backend %s (%s), %zu plugin%s", backend->ops->name,
               backend->path, s->plugins.n, s->plugins.n == 1 ? "" : "s");
    rc = ioloop__watchdog_start(loop, s->m.watchdog_ms,
                                s->m.watchdog_kill_ms);
    if (rc == 0) {
        rc = ioloop_start(loop);
        ioloop__watchdog_stop();
    }
    ioloop__plugins_fini(&s->plugins, loop);
    ioloop__http_servers_free(loop);
    ioloop__signal_unsubscribe_owner(loop, NULL);
    if (rc < 0) {
        return 1;
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "stopped");
    return 0;
}

/* The first SIGTERM/SIGINT drains; a second SIGINT stops at once. */
static int
on_stop_signal(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) arg;
    if (serving.draining) {
        if (signo == SIGINT) {
            IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                       "second SIGINT: stopping without waiting");
            ioloop_stop(loop);
        }
        return 0;
    }
    serving.draining = true;
    if (ioloop__broker_fd() < 0) {
        ioloop__sd_notify("STOPPING=1");
    }
    serving.drain_deadline = ioloop_time(loop) + serving.s->m.shutdown_timeout;
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "%s: draining (up to %.1f s for what is in flight)",
               signo == SIGINT ? "SIGINT" : "SIGTERM",
               (double) serving.s->m.shutdown_timeout / IOLOOP_NS_PER_S);
    ioloop__http_servers_drain(loop);
    ioloop__plugins_drain(&serving.s->plugins, loop);
    return drain_check(loop, NULL);
}

/* Stops the loop once no handler is left, or at the deadline. */
static int
drain_check(ioloop_loop_t *loop, void *arg)
{
    size_t left = ioloop__handler_count(loop);

    (void) arg;
    if (left == 0) {
        ioloop_stop(loop);
        return 0;
    }
    if (ioloop_time(loop) >= serving.drain_deadline) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "shutdown_timeout passed with %zu handler%s left: "
                   "stopping them",
                   left, left == 1 ? "" : "s");
        ioloop_stop(loop);
        return 0;
    }
    return ioloop_call_later(loop, DRAIN_CHECK, drain_check, NULL) != 0
               ? 0
               : -ENOMEM;
}

/* Runs at the top of an iteration (the callbacks phase), between polls. */
static int
on_swap_signal(ioloop_loop_t *loop, int signo, void *arg)
{
    const struct ioloop_manifest *m = &serving.s->m;
    char err[2048];
    const char *name;

    (void) signo;
    (void) arg;
    if (m->nswap == 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "SIGUSR2: no \"backend_swap\" list in %s; ignored",
                   m->file);
        return 0;
    }
    name = m->swap[serving.next_swap];
    serving.next_swap = (serving.next_swap + 1) % m->nswap;
    if (ioloop__backend_swap(loop, serving.backend, serving.s->backend_dir,
                             name, err, sizeof(err)) < 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "%s", err);
    }
    return 0;
}

/* SIGHUP without a master: new certificates for new connections. */
static int
on_reload_signal(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) signo;
    (void) arg;
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "SIGHUP: reloading the servers' "
               "certificates");
    ioloop__http_servers_reload(loop);
    return 0;
}

/* A start that failed: the master logs it (once), or we do. */
static void
report(const struct ioloop_setup *s, const char *err)
{
    if (ioloop__broker_fd() >= 0) {
        ioloop__broker_note(IOLOOP_BROKER_FAILED, err);
    } else {
        char line[2048 + PATH_MAX];

        ioloop__setup_message(s, err, line, sizeof(line));
        ioloop__log_cli("%s", line);
    }
}
