/*
 * host/runtime/connect.h: outbound TCP connections (connect_tcp and
 * connect_cancel of struct ioloop_api, whose comments are the contract).
 *
 * - A literal IPv4 or [IPv6] address is used as it is; a name goes
 *   through resolve.c (getaddrinfo_a), never a blocking getaddrinfo.
 * - The addresses of a name are tried one after the other, in
 *   getaddrinfo's order, all within the one timeout; the last failure is
 *   the one reported.
 * - With TLS (opts->tls, a client context), the handshake runs on the
 *   connected fd under the same deadline, before the stream exists (see
 *   tls.h); its failure is logged once at warn, as the instance, and
 *   the other addresses are not tried.
 * - The callback, the handler and the timers run as the instance that
 *   called connect_tcp, also after a lookup answered from glibc's
 *   thread, so the stream belongs to that instance.
 */
#ifndef IOLOOP_HOST_CONNECT_H
#define IOLOOP_HOST_CONNECT_H

#include <ioloop/plugin.h>

/* The timeout connect_tcp uses when given 0. */
#define IOLOOP_CONNECT_DEFAULT_TIMEOUT (30 * IOLOOP_NS_PER_S)

/*
 * connect_tcp on loop, as the loop's current owner. The attempt is linked
 * into *owned (the instance's list of pending attempts; O(1)) until its
 * callback runs or it is cancelled.
 */
ioloop_connect_t *ioloop__connect_tcp(ioloop_loop_t *loop,
                                      ioloop_connect_t **owned,
                                      const char *addr, ioloop_time_t timeout,
                                      const struct ioloop_stream_options *opts,
                                      ioloop_connect_cb cb, void *arg);
void ioloop__connect_cancel(ioloop_connect_t *c);

/*
 * Cancels every attempt still in *owned (an instance that failed init or
 * stopped: its callbacks must never run). Returns how many.
 */
size_t ioloop__connect_release_owned(ioloop_connect_t **owned);

#endif /* IOLOOP_HOST_CONNECT_H */
