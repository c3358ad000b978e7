/* host/runtime/net.h: the listen and accept helpers of the plugin API. */
#ifndef IOLOOP_HOST_NET_H
#define IOLOOP_HOST_NET_H

#include <stddef.h>
#include <sys/socket.h>

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
 * Parses a listen_tcp address: "HOST:PORT" (an IPv4 address or a name)
 * or "[IPV6]:PORT", PORT 0 to 65535 in decimal digits, the host not empty
 * (0.0.0.0 and [::] are every address). Resolves it into *ss and *sslen.
 * Returns 0, or -EINVAL with one line in err naming the address. A start
 * and --check both go through it.
 */
int ioloop__listen_addr_parse(const char *addr, struct sockaddr_storage *ss,
                              socklen_t *sslen, char *err, size_t errlen);

/*
 * --check (on != 0): from then on listen_tcp and listen_unix validate
 * their address exactly as a start does, then return a socket of the
 * right family that is neither bound nor listening (the caller closes it
 * as it would a listener). Nothing is bound, no systemd socket or master
 * listener is taken, nothing is logged at info.
 */
void ioloop__net_set_check_mode(int on);

/*
 * Graceful stop of a plugin without a drain of its own: removes the
 * handlers of the listeners it got from listen_tcp/listen_unix. Returns
 * how many.
 */
int ioloop__listeners_stop(ioloop_loop_t *loop,
                           const struct ioloop_owner *owner);

/* Closes the spare fd kept for accept's EMFILE recovery (at exit). */
void ioloop__net_close_reserve(void);

/*
 * Forgets owner's listeners (an instance that failed init or stopped),
 * first closing, and removing the handler of, each one it left open (the
 * same socket by inode, not merely the fd number). Returns how many it
 * closed.
 */
size_t ioloop__listeners_release(ioloop_loop_t *loop,
                                 const struct ioloop_owner *owner);

#endif /* IOLOOP_HOST_NET_H */
