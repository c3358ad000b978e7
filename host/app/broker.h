/*
 * host/app/broker.h: the master binds listeners on behalf of its workers.
 *
 * A worker's listen_tcp/listen_unix becomes a request over its socketpair
 * with the master; the master binds the address once (or takes a socket
 * passed by systemd), keeps it, and passes the fd back (SCM_RIGHTS). Every
 * worker of every generation gets the same listening socket for the same
 * address, so a reload never closes a listener: connections queued in it
 * wait for whichever worker accepts next, and none is lost (the nginx
 * model, without having to bind before knowing what plugins want).
 *
 * The same channel carries the worker's "ready" (init done) and "failed"
 * (init failed: the reason) notes to the master.
 */
#ifndef IOLOOP_HOST_BROKER_H
#define IOLOOP_HOST_BROKER_H

#include <stddef.h>

#include "loop.h"

enum ioloop_broker_op {
    IOLOOP_BROKER_TCP = 1, /* addr "HOST:PORT", backlog, flags */
    IOLOOP_BROKER_UNIX,    /* addr = path, backlog, flags = mode */
    IOLOOP_BROKER_READY,   /* every plugin's init succeeded */
    IOLOOP_BROKER_FAILED   /* addr = the one-line reason */
};

/* Worker side: the channel to the master, or -1 (not a worker). */
void ioloop__broker_set(int fd);
int ioloop__broker_fd(void);

/*
 * Worker side: asks the master for instance owner's listener on addr.
 * Blocks (plugin init only). Returns the fd (non-blocking, close-on-exec)
 * or -errno with err set.
 */
int ioloop__broker_listen(enum ioloop_broker_op op, const char *owner,
                          const char *addr, int backlog, unsigned flags,
                          char *err, size_t errlen);

/* Worker side: tells the master init succeeded, or failed and why. */
void ioloop__broker_note(enum ioloop_broker_op op, const char *text);

/*
 * Master side: serves one message from a worker's channel fd. Returns the
 * op served (READY and FAILED are for the caller to act on, with text
 * copied into note), or -1 when the channel closed or failed.
 */
int ioloop__broker_serve(ioloop_loop_t *loop, int fd, char *note,
                         size_t notelen);

/*
 * Master side: closes the listeners kept for instance owner (it was
 * quarantined): once no worker holds a copy either, its addresses refuse
 * connections. A later request from an instance of that name binds anew.
 */
void ioloop__broker_close_owner(const char *owner);

/* Master side: closes every listener kept (at exit). */
void ioloop__broker_close_all(void);

#endif /* IOLOOP_HOST_BROKER_H */
