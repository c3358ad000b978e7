/*
 * host/app/master.h: the master process of "workers": N (the nginx model). It
 * serves nothing itself: it forks the workers, binds listeners for them
 * (broker.h), restarts a worker that crashes (with backoff), quarantines
 * a plugin instance that keeps crashing them (the workers restart without
 * it, every other instance serving on), reloads the manifest on SIGHUP as
 * one transaction (a new generation starts; the old one drains once every
 * new worker finished its init, and stays untouched when one failed), and
 * stops gracefully on SIGTERM/SIGINT.
 */
#ifndef IOLOOP_HOST_MASTER_H
#define IOLOOP_HOST_MASTER_H

#include "backends.h"
#include "setup.h"

/* A plugin instance is quarantined after this many crashes of workers of
 * one generation within the window. */
#define IOLOOP_QUARANTINE_CRASHES 5
#define IOLOOP_QUARANTINE_WINDOW (60 * IOLOOP_NS_PER_S)

/*
 * Runs the master on loop (made on backend) until every worker exited
 * after a stop. config and backend_override are what a reload loads
 * again. Takes ownership of *s (a reload replaces it). Returns the exit
 * status: 0 after a graceful stop, 1 when every plugin instance is
 * quarantined. First runs --check's validation (every init and fini in
 * check mode): when it fails, prints --check's one line and returns 1
 * before forking anything, *s still the caller's.
 */
int ioloop__master_run(struct ioloop_setup *s, ioloop_loop_t *loop,
                       struct ioloop_backend_lib *backend, const char *config,
                       const char *backend_override);

#endif /* IOLOOP_HOST_MASTER_H */
