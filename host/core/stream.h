/*
 * host/core/stream.h: buffered streams over a connected non-blocking fd
 * (tornado's IOStream in C). Plugins reach these functions through the
 * stream_* members of struct ioloop_api, whose comments are the contract;
 * what follows adds the details this implementation settles.
 *
 * - Reads happen only while a read is pending, so a peer that sends
 *   faster than the plugin reads is held back by the kernel (TCP flow
 *   control) rather than buffered here.
 * - read_bytes(n) with n > max_read_buffer returns -ENOBUFS (the stream
 *   stays open); read_bytes(0), read_some(0), a NULL callback and a
 *   delimiter that is empty or longer than max_read_buffer return
 *   -EINVAL. The delimiter is copied: it need not outlive the call.
 * - A read that data arriving from the fd satisfies runs from the I/O
 *   handler; one that data already buffered satisfies runs from a
 *   callback in the next iteration. Reads and writes after the stream
 *   closed return -EPIPE.
 * - EOF: a pending read_until_close ends; any other pending read is
 *   abandoned (its callback never runs, even with a partial message
 *   buffered) and the stream closes with error 0. A hang-up or socket
 *   error reported while no read or write is pending closes the stream
 *   with the socket's pending error (0 for a plain hang-up).
 * - Writes: stream_write tries write(2) at once when nothing is queued
 *   and copies only what the kernel did not take (writev likewise, with
 *   writev(2)). A write whose data would bring the queue past
 *   max_write_buffer is refused whole
 *   (-ENOBUFS), before any byte is written. When several writes with a
 *   done callback are queued before the queue drains, only the latest
 *   callback runs (as tornado's write callback); a NULL done keeps the
 *   earlier one. done runs from the I/O handler when the queue drains
 *   there, else from a callback in the next iteration, never from inside
 *   stream_write. A write that fails (EPIPE, ECONNRESET, ...) closes the
 *   stream with that error and returns it; done does not run.
 * - Timeouts: idle_timeout counts from stream_new or the last byte read
 *   or written; read_timeout from the read call or the read's last byte
 *   (a read served from the buffer passes it at once); write_timeout from
 *   when output was queued or its last byte left. All three share one
 *   timer, so a deadline may be reported up to the loop's timer slack
 *   late, never early.
 * - max_buffer_size, max_read_buffer and max_write_buffer are clamped to
 *   IOLOOP_STREAM_MAX_BUFFER, write_high_water to max_write_buffer.
 *   Running out of memory while buffering closes the stream with ENOMEM.
 * - Overflow: overflow_cb runs from the I/O handler with the input
 *   already dropped; a timeout while its reply is flushed closes the
 *   stream with ENOBUFS, not ETIMEDOUT, and is not counted as a timeout.
 *   Before that close the stream reads and drops up to 256 KiB the peer
 *   already sent, so that the close does not reset the connection (TCP
 *   RST) under the reply.
 * - The stream's callbacks run as the plugin instance that was current
 *   at stream_new (the loop's owner), whoever triggered them.
 * - The close callback runs from the loop's close queue in the next
 *   iteration, after the callbacks queued before it: a stream closed
 *   while the loop is not running is freed by the next iteration, or by
 *   ioloop_loop_free without its callback; one of a plugin instance that
 *   failed init or stopped (closed in its fini or not) is freed by
 *   ioloop__streams_release_owner, without its callbacks.
 * - SIGPIPE must be ignored (the host does): a write to a peer that went
 *   away then fails with EPIPE.
 */
#ifndef IOLOOP_HOST_STREAM_H
#define IOLOOP_HOST_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <ioloop/plugin.h>

#include "loop.h"

/* Default and largest max_buffer_size. */
#define IOLOOP_STREAM_DEFAULT_BUFFER ((size_t) 1 << 20)
#define IOLOOP_STREAM_MAX_BUFFER ((size_t) 1 << 30)

/* Bytes read(2) asks for at once, into a per-thread scratch buffer. */
#define IOLOOP_STREAM_SCRATCH ((size_t) 64 * 1024)

/* Also fails with EINVAL (opts->size is 0) and EBADF (fd < 0). On
 * failure the fd stays the caller's. */
ioloop_stream_t *ioloop_stream_new(ioloop_loop_t *loop, int fd,
                                   const struct ioloop_stream_options *opts);

/*
 * A transport the stream reads and writes through instead of the fd (TLS,
 * filled by the runtime: the core knows no protocol). Each call returns
 * 0 (handshake done), the bytes moved, 0 at EOF (read), or -errno;
 * -EAGAIN with *want set to IOLOOP_READ and/or IOLOOP_WRITE, what it
 * waits for (a TLS read may have to write first). close sends what a
 * clean end needs, best effort and without blocking, then frees the
 * transport; the stream closes the fd after it.
 *
 * On a stream with a transport: the handshake runs first (reads and
 * writes issued meanwhile wait for it), bounded by read_timeout, or
 * IOLOOP_STREAM_HANDSHAKE_TIMEOUT without one (a timeout is reported as
 * IOLOOP_STREAM_TIMEOUT_READ); every read asks the transport for a whole
 * scratch buffer, so decrypted bytes never wait inside the transport
 * unseen by the poller, and the input buffer may pass max_read_buffer by
 * up to one such read. A transport whose handshake is NULL comes with
 * its handshake done (a TLS client's, run by connect_tcp before the
 * stream exists): reads and writes go through it at once.
 */
struct ioloop_transport;
struct ioloop_transport_ops {
    int (*handshake)(struct ioloop_transport *t, unsigned *want);
    ssize_t (*read)(struct ioloop_transport *t, void *buf, size_t len,
                    unsigned *want);
    ssize_t (*writev)(struct ioloop_transport *t, const struct iovec *iov,
                      int iovcnt, unsigned *want);
    void (*close)(struct ioloop_transport *t);
};
struct ioloop_transport {
    const struct ioloop_transport_ops *ops;
};

#define IOLOOP_STREAM_HANDSHAKE_TIMEOUT (10 * IOLOOP_NS_PER_S)

/* ioloop_stream_new over transport t (NULL: the fd itself). On success
 * the stream owns t; on failure t stays the caller's. */
ioloop_stream_t *ioloop__stream_new_over(ioloop_loop_t *loop, int fd,
                                   const struct ioloop_stream_options *opts,
                                   struct ioloop_transport *t);
int ioloop_stream_read_until(ioloop_stream_t *s, const void *delim,
                             size_t dlen, ioloop_stream_read_cb cb);
int ioloop_stream_read_bytes(ioloop_stream_t *s, size_t n,
                             ioloop_stream_read_cb cb);
int ioloop_stream_read_some(ioloop_stream_t *s, size_t max,
                            ioloop_stream_read_cb cb);
int ioloop_stream_read_until_close(ioloop_stream_t *s,
                                   ioloop_stream_read_cb cb);
int ioloop_stream_write(ioloop_stream_t *s, const void *data, size_t len,
                        ioloop_stream_cb done);
int ioloop_stream_writev(ioloop_stream_t *s, const struct iovec *iov,
                         int iovcnt, ioloop_stream_cb done);
void ioloop_stream_close(ioloop_stream_t *s);
int ioloop_stream_error(const ioloop_stream_t *s);
int ioloop_stream_timeout(const ioloop_stream_t *s);
int ioloop_stream_fd(const ioloop_stream_t *s);
size_t ioloop_stream_pending(const ioloop_stream_t *s);

/* The stream's transport (NULL: none). */
struct ioloop_transport *ioloop__stream_transport(const ioloop_stream_t *s);

/* For tests: heap bytes the stream holds besides its struct (read and
 * write buffers, a long delimiter's copy); 0 while idle. */
size_t ioloop__stream_buffered(const ioloop_stream_t *s);

/* For tests: sizeof(struct ioloop_stream_s). */
size_t ioloop__stream_struct_size(void);

/*
 * Frees every stream of owner on loop (an instance that failed init or
 * stopped), open or waiting for its close callback, without running any
 * of its callbacks; open ones are closed with ECANCELED first (fd closed,
 * handler and timer removed). Their queued callbacks must then be dropped
 * (ioloop__drop_owner_callbacks). Returns how many were still open.
 * Teardown only: linear in the handler table and the close queue.
 */
size_t ioloop__streams_release_owner(ioloop_loop_t *loop,
                                     const struct ioloop_owner *owner);

#endif /* IOLOOP_HOST_STREAM_H */
