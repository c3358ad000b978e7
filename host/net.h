/* host/net.h: the listen and accept helpers of the plugin API. */
#ifndef IOLOOP_HOST_NET_H
#define IOLOOP_HOST_NET_H

#include <stddef.h>

#include <ioloop/loop.h>

#include "loop.h"

/* See struct ioloop_api in <ioloop/plugin.h>. */
int ioloop__listen_tcp(ioloop_loop_t *loop, const char *addr, int backlog,
                       unsigned flags, char *err, size_t errlen);
int ioloop__accept(ioloop_loop_t *loop, int listen_fd);
int ioloop__accept_batch(ioloop_loop_t *loop, int listen_fd, int *fds,
                         int max);
int ioloop__listen_unix(ioloop_loop_t *loop, const char *path, unsigned mode,
                        int backlog, char *err, size_t errlen);

/*
 * Graceful stop of a plugin without a drain of its own: removes the
 * handlers of the listeners it got from listen_tcp/listen_unix. Returns
 * how many.
 */
int ioloop__listeners_stop(ioloop_loop_t *loop,
                           const struct ioloop_owner *owner);

/* Closes the spare fd kept for accept's EMFILE recovery (at exit). */
void ioloop__net_close_reserve(void);

/* Forgets owner's listeners (its fini closed them). */
void ioloop__listeners_forget(const struct ioloop_owner *owner);

#endif /* IOLOOP_HOST_NET_H */
