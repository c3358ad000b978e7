/*
 * host/runtime/tls.h: TLS contexts (OpenSSL), server and client, and the
 * stream transport that speaks TLS over a stream's fd. Contract: tls_*,
 * connect_tcp and ioloop_stream_options.tls in api/ioloop/plugin.h; what
 * follows adds the details this implementation settles.
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
 * - Client side: connect_tcp runs the handshake itself on the connected
 *   fd (ioloop__tls_client_*, under its own deadline), and only
 *   then makes the stream, over a transport without a handshake. The
 *   server's name is checked by OpenSSL's X509_VERIFY_PARAM (host name
 *   without partial wildcards, or IP address); the chain against the
 *   context's CAs. With TLS 1.3 the server checks a client certificate
 *   after the client's handshake ended: a refusal then closes the stream
 *   with EPROTO on its first read, not connect_tcp.
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

/* tls_client_new, owned as tls_new's. */
ioloop_tls_t *ioloop__tls_client_new(ioloop_tls_t **owned,
                                     const struct ioloop_tls_options *opts,
                                     char *err, size_t errlen);

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
/* Whether ssl holds input it has read from the fd but not handed out
 * (decrypted or not): a level-triggered poll would not report it. */
int ioloop__tls_ssl_has_pending(const struct ssl_st *ssl);
ssize_t ioloop__tls_ssl_write(struct ssl_st *ssl, const void *buf,
                              size_t len, unsigned *want);
void ioloop__tls_ssl_free(struct ssl_st *ssl, int clean);
/* A client handshake (from connect_tcp on), then its stream's
 * transport. */
struct ioloop_tls_client;

/*
 * A client handshake with tls (a client context), made when connect_tcp
 * is called: it holds its own reference to the context's SSL_CTX, so
 * tls_free and tls_reload meanwhile do not touch it. SNI and the name to
 * verify are name (for an address literal: no SNI, and the address).
 * Returns 0 and *out, or -EINVAL (tls is a server context, or name
 * cannot be sent), -ENOMEM.
 */
int ioloop__tls_client_new_handshake(ioloop_tls_t *tls, const char *name,
                                     struct ioloop_tls_client **out);

/* Binds the handshake to the connected fd (which stays the caller's).
 * 0 or -ENOMEM. */
int ioloop__tls_client_attach(struct ioloop_tls_client *h, int fd);

/*
 * One step of the handshake: 0 once done, -EAGAIN with *want (IOLOOP_READ
 * or IOLOOP_WRITE) to call again when the fd is ready for it, or the
 * failure with one line in why: -EPROTO ("certificate verify failed:
 * REASON", "handshake failed: REASON"), -ECONNRESET (the server closed the
 * connection), -errno (a socket error).
 */
int ioloop__tls_client_step(struct ioloop_tls_client *h, unsigned *want,
                            char *why, size_t whylen);

/* The stream over fd once the handshake is done: on success it owns h
 * (and fd); on failure (errno set) both stay the caller's. */
ioloop_stream_t *ioloop__tls_client_stream(ioloop_loop_t *loop, int fd,
                                   const struct ioloop_stream_options *opts,
                                   struct ioloop_tls_client *h);

/* Frees a handshake that did not become a stream (NULL: no-op). */
void ioloop__tls_client_free(struct ioloop_tls_client *h);

/* stream_tls_alpn. */
int ioloop__tls_stream_alpn(const ioloop_stream_t *s, char *buf, size_t len);

#endif /* IOLOOP_HOST_TLS_H */
