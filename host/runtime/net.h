/* host/runtime/net.h: the listen and accept helpers of the plugin API. */
#ifndef IOLOOP_HOST_NET_H
#define IOLOOP_HOST_NET_H

#include <limits.h>
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

/* Whether --check's mode is on: what else would create a file or bind
 * only validates then. */
int ioloop__net_check_mode(void);

/*
 * Where a listener comes from when this process does not bind it itself:
 * the process model installs a source (a worker asks its master; a
 * socket-activated host takes a socket systemd passed), so that these
 * helpers know nothing of either. listen_tcp and listen_unix ask it first
 * (not in --check mode). It returns a listening fd (non-blocking,
 * close-on-exec, the caller's), IOLOOP_LISTENER_NONE to let the helper
 * bind here, or -errno with one line in err.
 */
#define IOLOOP_LISTENER_NONE INT_MIN
enum ioloop_listener_kind {
    IOLOOP_LISTENER_TCP = 1, /* addr "HOST:PORT", flags IOLOOP_LISTEN_* */
    IOLOOP_LISTENER_UNIX     /* addr is the path, flags the mode */
};

struct ioloop_listener_request {
    enum ioloop_listener_kind kind;
    const char *owner; /* the instance asking */
    const char *addr;
    int backlog;
    unsigned flags;
};

typedef int (*ioloop_listener_source_fn)(
    const struct ioloop_listener_request *req, char *err, size_t errlen);

/* Installs fn (NULL: none, every listener is bound here). Call it before
 * any loop runs. */
void ioloop__net_set_listener_source(ioloop_listener_source_fn fn);

/*
 * Graceful stop of a plugin without a drain of its own: removes the
 * handlers of the listeners it got from listen_tcp/listen_unix on loop.
 * Returns how many. The helpers keep their state per loop (the listeners
 * and the spare fd for accept's EMFILE recovery); ioloop_loop_free frees
 * it.
 */
int ioloop__listeners_stop(ioloop_loop_t *loop,
                           const struct ioloop_owner *owner);

/*
 * Forgets owner's listeners on loop (an instance that failed init or
 * stopped), first closing, and removing the handler of, each one it left
 * open (the same socket by inode, not merely the fd number). Returns how
 * many it closed.
 */
size_t ioloop__listeners_release(ioloop_loop_t *loop,
                                 const struct ioloop_owner *owner);

#endif /* IOLOOP_HOST_NET_H */
