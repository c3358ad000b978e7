/*
 * host/runtime/resolve.h: asynchronous name resolution for connect_tcp.
 * glibc's getaddrinfo_a looks the name up on its own thread; the result
 * comes back to the loop thread through add_callback, so the loop never
 * blocks in getaddrinfo.
 */
#ifndef IOLOOP_HOST_RESOLVE_H
#define IOLOOP_HOST_RESOLVE_H

#include <netdb.h>

#include <ioloop/loop.h>

/* One lookup in flight. Opaque. */
struct ioloop_resolve;

/*
 * The result, on the loop thread: status 0 and res (a getaddrinfo list
 * the callee now owns: freeaddrinfo it), or -errno and res NULL:
 * -ENOENT (the name has no address), -EAGAIN (temporary failure, as
 * EAI_AGAIN), -ENOMEM, -EIO (any other resolver failure).
 */
typedef void (*ioloop__resolve_cb)(ioloop_loop_t *loop, struct addrinfo *res,
                                   int status, void *arg);

/*
 * Looks up host and port (TCP, any family, numeric port) and calls cb in
 * a later iteration of loop, never from inside this call. Returns the
 * lookup (*out) and 0, or -errno (-ENOMEM, -EAGAIN: glibc refused the
 * request); cb then never runs. Freeing the loop first ends the lookup
 * too: cb never runs, and its memory goes with the loop (or with glibc's
 * thread, when that is still resolving). Loop thread only.
 */
int ioloop__resolve_start(ioloop_loop_t *loop, const char *host,
                          const char *port, ioloop__resolve_cb cb, void *arg,
                          struct ioloop_resolve **out);

/*
 * Forgets a lookup whose cb has not run yet: cb never runs. The lookup
 * itself may go on in glibc's thread; its memory is freed when it ends.
 * Loop thread only.
 */
void ioloop__resolve_cancel(struct ioloop_resolve *r);

#endif /* IOLOOP_HOST_RESOLVE_H */
