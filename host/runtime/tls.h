/*
 * host/runtime/tls.h: server TLS contexts (OpenSSL) and the stream
 * transport that speaks TLS over a stream's fd. Contract: tls_* and
 * ioloop_stream_options.tls in api/ioloop/plugin.h; what follows adds the
 * details this implementation settles.
 *
 * - A context is one SSL_CTX at a time. tls_reload builds a new one from
 *   the same files and swaps it in only when it loaded; every stream's
 *   SSL object holds a reference to the SSL_CTX it was made from, so
 *   established streams keep the old certificate until they close.
 * - Renegotiation is refused, a peer closing TCP without close_notify is
 *   EOF (as on a plain stream: framing is the protocol's business), and
 *   OpenSSL releases a stream's record buffers while it is idle.
 * - A failed handshake or a protocol error closes the stream with
 *   EPROTO; the peer leaving mid-handshake with ECONNRESET.
 */
#ifndef IOLOOP_HOST_TLS_H
#define IOLOOP_HOST_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <ioloop/plugin.h>

struct ssl_st;

/*
 * tls_new: the context is linked into *owned (the instance's list), so
 * that the host frees what an instance leaves (ioloop__tls_release_owned).
 */
ioloop_tls_t *ioloop__tls_new(ioloop_tls_t **owned,
                              const struct ioloop_tls_options *opts,
                              char *err, size_t errlen);
int ioloop__tls_reload(ioloop_tls_t *tls, char *err, size_t errlen);

/* tls_free: unlinks the context from its owner's list and frees it. */
void ioloop__tls_free(ioloop_tls_t *tls);

/* Frees every context still on *owned; returns how many. */
size_t ioloop__tls_release_owned(ioloop_tls_t **owned);

/* The API's stream_new: ioloop_stream_new, over TLS when opts->tls is
 * set. On failure (errno set) the fd stays the caller's. */
ioloop_stream_t *ioloop__tls_stream_new(ioloop_loop_t *loop, int fd,
                                  const struct ioloop_stream_options *opts);

/*
 * TLS on a raw fd, for a connection that does its own I/O (the HTTP
 * server): an SSL object in accept state over fd (NULL: out of memory),
 * its reads and writes (bytes, 0 for the peer's end of a read, -EAGAIN
 * with *want the fd event to wait for, -errno), and its end (a
 * close_notify first when clean). The fd stays the caller's.
 */
struct ssl_st *ioloop__tls_ssl_new(ioloop_tls_t *tls, int fd);
ssize_t ioloop__tls_ssl_read(struct ssl_st *ssl, void *buf, size_t len,
                             unsigned *want);
ssize_t ioloop__tls_ssl_write(struct ssl_st *ssl, const void *buf,
                              size_t len, unsigned *want);
void ioloop__tls_ssl_free(struct ssl_st *ssl, int clean);

#endif /* IOLOOP_HOST_TLS_H */
