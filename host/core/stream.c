/*
 * host/core/stream.c: buffered streams (tornado's IOStream) on the central
 * loop. Contract: stream_* in api/ioloop/plugin.h, details in stream.h.
 *
 * Memory. An idle stream is its struct, a handler slot and, with a
 * timeout, one timer. read(2) goes to a per-thread scratch buffer and the
 * pending read is served straight from it; only the bytes past what it
 * took are copied to the stream's input buffer (freed once drained). A
 * write goes to the fd at once when nothing is queued; only what the
 * kernel did not take is copied to the output buffer (freed once
 * drained). read_bytes too large for the scratch reads into the input
 * buffer directly, sized once.
 *
 * Timeouts. idle, read and write share one timer, armed for the earliest
 * deadline. Progress only stores the time in mark[]; the timer, when it
 * fires before a deadline passed, re-arms itself for the earliest one
 * still ahead, so a busy stream costs one timer run per timeout period
 * instead of a cancel and an add per read or write. A deadline that
 * starts earlier than the armed one (a write timeout shorter than the
 * read timeout, say) re-arms at once: the rare case.
 *
 * Lifetime. close_with marks the stream closed and puts it on the loop's
 * close queue, whose finish_close runs the close callback and frees it in
 * the next iteration; a stream whose loop is freed first is freed by
 * ioloop_loop_free, and one whose plugin instance is released (failed
 * init, fini) by ioloop__streams_release_owner, both without its close
 * callback. Every path that runs a user callback checks F_CLOSED after it
 * and then touches nothing, so a callback may close its stream. Callbacks
 * queued before the close run before finish_close (the loop finishes the
 * close queue after them) and see the flag.
 */
#include "stream.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define INLINE_DELIM 8 /* longer delimiters are copied to the heap */

/* The timeouts, indexed as mark[] and timeout[]: IOLOOP_STREAM_TIMEOUT_*
 * minus 1. */
enum { T_IDLE = 0, T_READ, T_WRITE, T_COUNT };
#define NO_DEADLINE INT64_MAX

enum read_kind { R_NONE = 0, R_UNTIL, R_BYTES, R_SOME, R_CLOSE };

#define F_CLOSED 0x01u /* closed; on the loop's close queue */
#define F_QUEUED 0x02u /* run_deferred is queued */
#define F_SERVE  0x04u /* the input buffer satisfies the pending read */
#define F_HIGH   0x08u /* output passed write_high_water: drained_cb due */
#define F_LINGER 0x10u /* read limit passed: flushing, then ENOBUFS */
#define F_HANDSHAKE 0x20u /* the transport's handshake runs */
#define F_HS_TIMEOUT 0x40u /* read_timeout is the handshake's default */

/* How long an overflow reply may make no progress when the stream has no
 * write_timeout. */
#define OVERFLOW_GRACE (5 * IOLOOP_NS_PER_S)

/* A heap buffer holding len bytes at p + off; p is NULL when empty. */
struct buf {
    char *p;
    uint32_t off, len, cap;
};

struct ioloop_stream_s {
    ioloop_loop_t *loop;
    const struct ioloop_owner *owner; /* current at stream_new */
    ioloop_stream_cb close_cb;
    ioloop_stream_cb overflow_cb;
    ioloop_stream_cb drained_cb;
    void *arg;
    struct ioloop_transport *tr; /* NULL: read(2) and write(2) */
    union {
        struct {
            ioloop_stream_read_cb read_cb; /* the pending read's */
            ioloop_stream_cb done_cb;      /* the latest write's */
        } open;
        /* closed, waiting for finish_close: the loop's close queue */
        struct ioloop_close_node closed;
    } u;
    union {
        char inl[INLINE_DELIM];
        char *heap;
    } delim;
    ioloop_timer_t timer;   /* the timeout timer, 0: none armed */
    ioloop_time_t timer_at; /* when it fires */
    ioloop_time_t timeout[T_COUNT]; /* 0: off */
    /* Since when each timeout runs. T_IDLE: the last read or write of a
     * byte; T_READ: the read call or its last byte; T_WRITE: when output
     * was queued or its last byte left. */
    ioloop_time_t mark[T_COUNT];
    struct buf in;
    struct buf out;
    uint32_t max_read;   /* most bytes buffered for reading */
    uint32_t max_write;  /* most bytes queued for writing */
    uint32_t high_water; /* write_high_water, 0: none */
    uint32_t want; /* R_UNTIL: delimiter length; R_BYTES: n; R_SOME: max */
    uint32_t scan; /* R_UNTIL: input bytes already searched */
    int fd;
    int error;
    uint8_t kind;
    uint8_t flags;
    uint8_t timed_out; /* IOLOOP_STREAM_TIMEOUT_* that closed it */
    uint8_t tr_want;   /* events the transport's blocked calls wait for */
};

_Static_assert(sizeof(struct ioloop_stream_s) <= 232, "stream too large");
_Static_assert(IOLOOP_STREAM_MAX_BUFFER <= UINT32_MAX / 2,
               "buffer sizes must double within uint32_t");

static _Thread_local char scratch[IOLOOP_STREAM_SCRATCH];

static int start_read(ioloop_stream_t *s, enum read_kind kind,
                      const void *delim, size_t want,
                      ioloop_stream_read_cb cb);
static char *delim_of(ioloop_stream_t *s);
static void end_read(ioloop_stream_t *s);
static size_t match(ioloop_stream_t *s, const char *data, size_t len,
                    size_t from);
static void do_read(ioloop_stream_t *s);
static void deliver(ioloop_stream_t *s, const char *data, size_t k,
                    size_t len, bool in_buf);
static void overflow(ioloop_stream_t *s);
static void discard_input(ioloop_stream_t *s);
static void flush(ioloop_stream_t *s);
static ssize_t writev_fd(int fd, const struct iovec *iov, int iovcnt);
static void handshake(ioloop_stream_t *s);
static ssize_t io_read(ioloop_stream_t *s, void *dst, size_t len);
static ssize_t io_writev(ioloop_stream_t *s, const struct iovec *iov,
                         int iovcnt);
static int on_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg);
static int on_timer(ioloop_loop_t *loop, void *arg);
static ioloop_time_t next_deadline(const ioloop_stream_t *s, int *which);
static int arm(ioloop_stream_t *s, ioloop_time_t deadline);
static int run_deferred(ioloop_loop_t *loop, void *arg);
static void finish_close(ioloop_loop_t *loop, struct ioloop_close_node *node,
                         bool discard);
static int defer(ioloop_stream_t *s);
static int queue_as_owner(ioloop_stream_t *s, ioloop_cb cb);
static int update_interest(ioloop_stream_t *s);
static void close_with(ioloop_stream_t *s, int error);
static void release(void *arg);
static ssize_t write_fd(int fd, const void *data, size_t len);
static size_t limit_of(size_t size, size_t fallback);
static int socket_error(int fd);
static int buf_reserve(struct buf *b, size_t need, size_t limit);
static int buf_append(struct buf *b, const char *data, size_t len,
                      size_t limit);
static void buf_drop(struct buf *b);

ioloop_stream_t *
ioloop_stream_new(ioloop_loop_t *loop, int fd,
                  const struct ioloop_stream_options *opts)
{
    return ioloop__stream_new_over(loop, fd, opts, NULL);
}

ioloop_stream_t *
ioloop__stream_new_over(ioloop_loop_t *loop, int fd,
                        const struct ioloop_stream_options *opts,
                        struct ioloop_transport *t)
{
    struct ioloop_stream_options o = {0};
    ioloop_stream_t *s;
    int rc;

    if (opts != NULL) {
        if (opts->size == 0) {
            errno = EINVAL;
            return NULL;
        }
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->loop = loop;
    s->owner = ioloop__current_owner(loop);
    s->close_cb = o.close_cb;
    s->overflow_cb = o.overflow_cb;
    s->drained_cb = o.drained_cb;
    s->arg = o.arg;
    o.max_buffer_size = limit_of(o.max_buffer_size,
                                 IOLOOP_STREAM_DEFAULT_BUFFER);
    s->max_read = (uint32_t) limit_of(o.max_read_buffer, o.max_buffer_size);
    s->max_write = (uint32_t) limit_of(o.max_write_buffer, o.max_buffer_size);
    s->high_water = (uint32_t) (o.write_high_water < s->max_write
                                    ? o.write_high_water
                                    : s->max_write);
    s->fd = fd;
    s->tr = t;
    if (t != NULL && t->ops->handshake != NULL) {
        /* The server's handshake starts with the client's hello. */
        s->tr_want = IOLOOP_READ;
        s->flags = F_HANDSHAKE;
    }
    rc = ioloop_add_handler(loop, fd, s->tr_want, on_io, s);
    if (rc < 0) {
        goto fail;
    }
    s->timeout[T_IDLE] = o.idle_timeout > 0 ? o.idle_timeout : 0;
    s->timeout[T_READ] = o.read_timeout > 0 ? o.read_timeout : 0;
    s->timeout[T_WRITE] = o.write_timeout > 0 ? o.write_timeout : 0;
    if ((s->flags & F_HANDSHAKE) && s->timeout[T_READ] == 0) {
        s->timeout[T_READ] = IOLOOP_STREAM_HANDSHAKE_TIMEOUT;
        s->flags |= F_HS_TIMEOUT;
    }
    s->mark[T_IDLE] = s->mark[T_READ] = ioloop_time(loop);
    if ((s->timeout[T_IDLE] > 0
         && arm(s, s->mark[T_IDLE] + s->timeout[T_IDLE]) < 0)
        || ((s->flags & F_HANDSHAKE)
            && arm(s, s->mark[T_READ] + s->timeout[T_READ]) < 0)) {
        rc = -ENOMEM;
        if (s->timer != 0) {
            ioloop_cancel(loop, s->timer);
        }
        ioloop_remove_handler(loop, fd);
        goto fail;
    }
    ioloop__count_streams(loop, 1);
    return s;

fail:
    free(s);
    errno = -rc;
    return NULL;
}

int
ioloop_stream_read_until(ioloop_stream_t *s, const void *delim, size_t dlen,
                         ioloop_stream_read_cb cb)
{
    return start_read(s, R_UNTIL, delim, dlen, cb);
}

int
ioloop_stream_read_bytes(ioloop_stream_t *s, size_t n,
                         ioloop_stream_read_cb cb)
{
    return n > s->max_read ? -ENOBUFS : start_read(s, R_BYTES, NULL, n, cb);
}

int
ioloop_stream_read_some(ioloop_stream_t *s, size_t max,
                        ioloop_stream_read_cb cb)
{
    if (max > IOLOOP_STREAM_SCRATCH) {
        max = IOLOOP_STREAM_SCRATCH;
    }
    return start_read(s, R_SOME, NULL, max, cb);
}

int
ioloop_stream_read_until_close(ioloop_stream_t *s, ioloop_stream_read_cb cb)
{
    return start_read(s, R_CLOSE, NULL, 1, cb);
}

int
ioloop_stream_write(ioloop_stream_t *s, const void *data, size_t len,
                    ioloop_stream_cb done)
{
    struct iovec iov = {(void *) (uintptr_t) data, len};

    return ioloop_stream_writev(s, &iov, 1, done);
}

int
ioloop_stream_writev(ioloop_stream_t *s, const struct iovec *iov, int iovcnt,
                     ioloop_stream_cb done)
{
    size_t room, len = 0, skip;
    ssize_t n = 0;
    int rc;

    if (s->flags & F_CLOSED) {
        return -EPIPE;
    }
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && iov == NULL)) {
        return -EINVAL;
    }
    room = s->max_write - s->out.len;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > room - len) {
            return -ENOBUFS;
        }
        len += iov[i].iov_len;
    }
    if (s->out.len == 0 && len > 0 && !(s->flags & F_HANDSHAKE)) {
        n = io_writev(s, iov, iovcnt);
        if (n == -EAGAIN) {
            n = 0;
        } else if (n < 0) {
            close_with(s, (int) -n);
            return (int) n;
        } else {
            s->mark[T_IDLE] = ioloop_time(s->loop);
        }
    }
    if ((size_t) n < len) {
        if (buf_reserve(&s->out, s->out.len + len - (size_t) n, s->max_write)
            < 0) {
            if (n > 0) {
                close_with(s, ENOMEM); /* the output is cut: give up */
            }
            return -ENOMEM;
        }
        if (s->out.len == 0 && s->timeout[T_WRITE] > 0) {
            /* Output is queued from now on. */
            s->mark[T_WRITE] = ioloop_time(s->loop);
            if (arm(s, s->mark[T_WRITE] + s->timeout[T_WRITE]) < 0) {
                close_with(s, ENOMEM);
                return -ENOMEM;
            }
        }
        /* One copy: what the kernel did not take, from every iovec. */
        skip = (size_t) n;
        for (int i = 0; i < iovcnt; i++) {
            size_t k = iov[i].iov_len;

            if (skip >= k) {
                skip -= k;
                continue;
            }
            memcpy(s->out.p + s->out.off + s->out.len,
                   (const char *) iov[i].iov_base + skip, k - skip);
            s->out.len += (uint32_t) (k - skip);
            skip = 0;
        }
    }
    if (done != NULL) {
        s->u.open.done_cb = done;
    }
    if (s->out.len == 0) {
        return s->u.open.done_cb != NULL ? defer(s) : 0;
    }
    rc = update_interest(s);
    if (rc < 0) {
        return rc;
    }
    if (s->high_water > 0 && s->out.len > s->high_water) {
        s->flags |= F_HIGH;
        return 1;
    }
    return 0;
}

void
ioloop_stream_close(ioloop_stream_t *s)
{
    if (s != NULL) {
        close_with(s, 0);
    }
}

int
ioloop_stream_error(const ioloop_stream_t *s)
{
    return s->error;
}

int
ioloop_stream_timeout(const ioloop_stream_t *s)
{
    return s->timed_out;
}

int
ioloop_stream_fd(const ioloop_stream_t *s)
{
    return s->fd;
}

size_t
ioloop_stream_pending(const ioloop_stream_t *s)
{
    return s->out.len;
}

struct ioloop_transport *
ioloop__stream_transport(const ioloop_stream_t *s)
{
    return s->tr;
}

size_t
ioloop__stream_buffered(const ioloop_stream_t *s)
{
    size_t delim = s->kind == R_UNTIL && s->want > INLINE_DELIM ? s->want : 0;

    return (size_t) s->in.cap + s->out.cap + delim;
}

size_t
ioloop__stream_struct_size(void)
{
    return sizeof(struct ioloop_stream_s);
}

/*
 * Makes a read pending, copying the delimiter of read_until. Returns
 * -EPIPE once closed, -EBUSY while a read is pending, -EINVAL without cb,
 * with want 0 or a delimiter longer than the read limit, -ENOMEM; -EPIPE
 * also while an overflow reply is flushed. The
 * read is served by run_deferred in the next iteration if the input
 * buffer satisfies it; else READ interest is turned on (on failure the
 * stream closes).
 */
static int
start_read(ioloop_stream_t *s, enum read_kind kind, const void *delim,
           size_t want, ioloop_stream_read_cb cb)
{
    if (s->flags & (F_CLOSED | F_LINGER)) {
        return -EPIPE;
    }
    if (s->kind != R_NONE) {
        return -EBUSY;
    }
    if (cb == NULL || want == 0 || (kind == R_UNTIL && want > s->max_read)) {
        return -EINVAL;
    }
    s->want = (uint32_t) want;
    if (kind == R_UNTIL) {
        if (want > INLINE_DELIM && (s->delim.heap = malloc(want)) == NULL) {
            return -ENOMEM;
        }
        memcpy(delim_of(s), delim, want);
    }
    s->kind = (uint8_t) kind;
    s->u.open.read_cb = cb;
    s->scan = 0;
    if (s->timeout[T_READ] > 0) {
        s->mark[T_READ] = ioloop_time(s->loop);
        if (arm(s, s->mark[T_READ] + s->timeout[T_READ]) < 0) {
            close_with(s, ENOMEM);
            return -ENOMEM;
        }
    }
    if (s->in.len > 0 && match(s, s->in.p + s->in.off, s->in.len, 0) > 0) {
        s->flags |= F_SERVE;
        return defer(s);
    }
    return update_interest(s);
}

/* The copy of read_until's delimiter (s->want bytes). */
static char *
delim_of(ioloop_stream_t *s)
{
    return s->want > INLINE_DELIM ? s->delim.heap : s->delim.inl;
}

/* Ends the pending read (read_until_close ends only at close). */
static void
end_read(ioloop_stream_t *s)
{
    if (s->kind == R_UNTIL && s->want > INLINE_DELIM) {
        free(s->delim.heap);
    }
    s->kind = R_NONE;
    s->u.open.read_cb = NULL;
}

/*
 * How many of the len bytes at data the pending read takes, searching for
 * the delimiter from offset from; 0 when they do not satisfy it yet.
 */
static size_t
match(ioloop_stream_t *s, const char *data, size_t len, size_t from)
{
    const char *p;

    switch (s->kind) {
    case R_UNTIL:
        p = memmem(data + from, len - from, delim_of(s), s->want);
        return p != NULL ? (size_t) (p - data) + s->want : 0;
    case R_BYTES:
        return len >= s->want ? s->want : 0;
    case R_SOME:
        return len < s->want ? len : s->want;
    default:
        return len;
    }
}

/*
 * Reads once for the pending read, never more than it or the read limit
 * allows, and serves it when satisfied. read_bytes with part of its data
 * buffered, or larger than the scratch, reads into the input buffer;
 * everything else into the scratch, appended to the input buffer only
 * when not served. Closes the stream on EOF (error 0), on a read error,
 * and with ENOBUFS (see overflow) when read_until fills the read limit.
 */
static void
do_read(ioloop_stream_t *s)
{
    bool direct = s->kind == R_BYTES && s->tr == NULL
                  && (s->in.len > 0 || s->want > IOLOOP_STREAM_SCRATCH);
    size_t room = IOLOOP_STREAM_SCRATCH, len, k;
    char *dst = scratch;
    const char *data;
    ssize_t n;

    if (direct) {
        if (buf_reserve(&s->in, s->want, s->max_read) < 0) {
            close_with(s, ENOMEM);
            return;
        }
        dst = s->in.p + s->in.off + s->in.len;
        room = s->want - s->in.len;
    } else if (s->tr != NULL) {
        /* The whole scratch: see stream.h on transports. */
    } else if (s->kind == R_UNTIL && s->max_read - s->in.len < room) {
        room = s->max_read - s->in.len;
    } else if (s->kind == R_BYTES || s->kind == R_SOME) {
        room = s->want; /* <= the scratch here; nothing is buffered */
    }
    n = io_read(s, dst, room);
    if (n <= 0) {
        if (n != -EAGAIN) {
            close_with(s, (int) -n);
        }
        return;
    }
    s->mark[T_IDLE] = s->mark[T_READ] = ioloop_time(s->loop);
    if (direct) {
        s->in.len += (uint32_t) n;
    } else if (s->in.len > 0
               && buf_append(&s->in, scratch, (size_t) n, s->max_read)
                      < 0) {
        close_with(s, ENOMEM);
        return;
    }
    data = s->in.len > 0 ? s->in.p + s->in.off : scratch;
    len = s->in.len > 0 ? s->in.len : (size_t) n;
    k = match(s, data, len, s->in.len > 0 ? s->scan : 0);
    if (k > 0) {
        deliver(s, data, k, len, data != scratch);
        return;
    }
    if (data == scratch
        && buf_append(&s->in, scratch, (size_t) n, s->max_read) < 0) {
        close_with(s, ENOMEM);
    } else if (s->kind == R_UNTIL && s->in.len >= s->max_read) {
        overflow(s);
    } else if (s->kind == R_UNTIL) {
        /* The delimiter may start in the last want - 1 bytes. */
        s->scan = s->in.len - (s->in.len < s->want ? s->in.len : s->want - 1);
    }
}

/*
 * Hands the first k of the len bytes at data to the pending read, which
 * ends (read_until_close stays pending). in_buf: data is the input
 * buffer's content, consumed here; else the bytes past k are kept in the
 * input buffer first. The buffer is freed once drained.
 */
static void
deliver(ioloop_stream_t *s, const char *data, size_t k, size_t len,
        bool in_buf)
{
    ioloop_stream_read_cb cb = s->u.open.read_cb;

    if (in_buf) {
        s->in.off += (uint32_t) k;
        s->in.len -= (uint32_t) k;
    } else if (k < len
               && buf_append(&s->in, data + k, len - k, s->max_read) < 0) {
        close_with(s, ENOMEM);
        return;
    }
    s->scan = 0;
    if (s->kind != R_CLOSE) {
        end_read(s);
    }
    cb(s, data, k, s->arg);
    if (s->in.len == 0) {
        buf_drop(&s->in);
    }
    if (!(s->flags & F_CLOSED)) {
        /* After the callback: one that reads again keeps READ on without
         * a system call. */
        update_interest(s);
    }
}

/*
 * read_until passed the read limit without its delimiter. Without an
 * overflow_cb the stream closes with ENOBUFS at once. With one, the input
 * is dropped and overflow_cb runs; what it writes is flushed (reads are
 * refused meanwhile), then the stream closes with ENOBUFS. The flush is
 * bounded by write_timeout, or OVERFLOW_GRACE without one.
 */
static void
overflow(ioloop_stream_t *s)
{
    if (s->overflow_cb == NULL) {
        close_with(s, ENOBUFS);
        return;
    }
    end_read(s);
    buf_drop(&s->in);
    s->scan = 0;
    s->flags |= F_LINGER;
    s->overflow_cb(s, s->arg);
    if (s->flags & F_CLOSED) {
        return;
    }
    if (s->out.len == 0) {
        discard_input(s);
        close_with(s, ENOBUFS);
        return;
    }
    if (s->timeout[T_WRITE] == 0) {
        s->timeout[T_WRITE] = OVERFLOW_GRACE;
        s->mark[T_WRITE] = ioloop_time(s->loop);
    }
    if (arm(s, s->mark[T_WRITE] + s->timeout[T_WRITE]) < 0) {
        close_with(s, ENOMEM);
        return;
    }
    update_interest(s);
}

/*
 * Reads and drops what the peer already sent, up to 4 scratch buffers
 * (256 KiB), before an overflow close: a socket closed with unread input
 * resets the connection (TCP sends RST), and the peer may then lose the
 * reply it has not read yet. What arrives later still resets; this is not
 * nginx's lingering close.
 */
static void
discard_input(ioloop_stream_t *s)
{
    ssize_t n;

    for (int reads = 0; reads < 4;) {
        n = read(s->fd, scratch, sizeof(scratch));
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            return;
        }
        reads += n > 0;
    }
}

/*
 * Writes what is queued once. When it drains: frees it, closes a lingering
 * stream (ENOBUFS), else runs done, then drained_cb if the output had
 * passed the high-water mark and done did not queue past it again.
 */
static void
flush(ioloop_stream_t *s)
{
    ioloop_stream_cb done;
    bool drained = s->flags & F_HIGH;
    struct iovec iov = {s->out.p + s->out.off, s->out.len};
    ssize_t n = io_writev(s, &iov, 1);

    if (n < 0) {
        if (n != -EAGAIN) {
            close_with(s, (int) -n);
        }
        return;
    }
    s->mark[T_IDLE] = s->mark[T_WRITE] = ioloop_time(s->loop);
    s->out.off += (uint32_t) n;
    s->out.len -= (uint32_t) n;
    if (s->out.len > 0) {
        return;
    }
    buf_drop(&s->out);
    if (s->flags & F_LINGER) {
        discard_input(s);
        close_with(s, ENOBUFS);
        return;
    }
    if (update_interest(s) < 0) {
        return;
    }
    s->flags &= (uint8_t) ~F_HIGH;
    done = s->u.open.done_cb;
    s->u.open.done_cb = NULL;
    if (done != NULL) {
        done(s, s->arg);
        if (s->flags & F_CLOSED) {
            return;
        }
    }
    if (drained && !(s->flags & F_HIGH) && s->drained_cb != NULL) {
        s->drained_cb(s, s->arg);
    }
}

/*
 * The fd's handler: reads for a pending read, flushes queued output, and
 * closes the stream on an error or hang-up that neither consumed (the
 * level-triggered report would otherwise spin). Always returns 0: errors
 * reach the plugin through the close callback.
 */
static int
on_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    ioloop_stream_t *s = arg;
    unsigned failed = events & (IOLOOP_ERROR | IOLOOP_HUP);
    /* Over a transport either event may be what a read or a write waits
     * for: both are retried (a call that still waits says EAGAIN). */
    unsigned rd = s->tr != NULL ? IOLOOP_READ | IOLOOP_WRITE : IOLOOP_READ;
    unsigned wr = s->tr != NULL ? IOLOOP_READ | IOLOOP_WRITE : IOLOOP_WRITE;

    (void) loop;
    if (s->flags & F_HANDSHAKE) {
        handshake(s);
        if (s->flags & (F_CLOSED | F_HANDSHAKE)) {
            return 0;
        }
    }
    s->tr_want = 0;
    if (s->kind != R_NONE && !(s->flags & F_SERVE)
        && ((events & rd) || failed)) {
        do_read(s);
    }
    if (!(s->flags & F_CLOSED) && s->out.len > 0
        && ((events & wr) || failed)) {
        flush(s);
    }
    if (!(s->flags & F_CLOSED) && failed && s->kind == R_NONE
        && s->out.len == 0) {
        close_with(s, socket_error(fd));
    }
    if (!(s->flags & F_CLOSED) && s->tr != NULL) {
        update_interest(s); /* with what the calls above wait for now */
    }
    return 0;
}

/*
 * One step of the transport's handshake: on completion the stream works
 * as any other from here (the handshake's default read timeout ends),
 * while it waits the fd is watched for what it waits for, and a failure
 * closes the stream with its error.
 */
static void
handshake(ioloop_stream_t *s)
{
    unsigned want = 0;
    int rc = s->tr->ops->handshake(s->tr, &want);

    if (rc == -EAGAIN) {
        s->tr_want = (uint8_t) want;
        update_interest(s);
        return;
    }
    if (rc < 0) {
        close_with(s, -rc);
        return;
    }
    s->flags &= (uint8_t) ~F_HANDSHAKE;
    if (s->flags & F_HS_TIMEOUT) {
        s->flags &= (uint8_t) ~F_HS_TIMEOUT;
        s->timeout[T_READ] = 0;
    }
    s->tr_want = 0;
    s->mark[T_IDLE] = s->mark[T_READ] = ioloop_time(s->loop);
    update_interest(s);
}

/* Reads up to len bytes from the fd or the transport. Returns the bytes
 * read, 0 at EOF, or -errno (-EAGAIN: try again when the fd is ready). */
static ssize_t
io_read(ioloop_stream_t *s, void *dst, size_t len)
{
    unsigned want = 0;
    ssize_t n;

    if (s->tr != NULL) {
        n = s->tr->ops->read(s->tr, dst, len, &want);
        s->tr_want |= (uint8_t) (n == -EAGAIN ? want : 0);
        return n;
    }
    do {
        n = read(s->fd, dst, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return n;
}

/* writev_fd through the transport when there is one. */
static ssize_t
io_writev(ioloop_stream_t *s, const struct iovec *iov, int iovcnt)
{
    unsigned want = 0;
    ssize_t n;

    if (s->tr == NULL) {
        return writev_fd(s->fd, iov, iovcnt);
    }
    n = s->tr->ops->writev(s->tr, iov, iovcnt, &want);
    s->tr_want |= (uint8_t) (n == -EAGAIN ? want : 0);
    return n;
}

/*
 * The timeout timer (see the file comment): closes the stream with
 * ETIMEDOUT when the earliest running deadline has passed, else re-arms
 * for it; stays unarmed when no timeout runs.
 */
static int
on_timer(ioloop_loop_t *loop, void *arg)
{
    ioloop_stream_t *s = arg;
    int which;
    ioloop_time_t deadline = next_deadline(s, &which);

    s->timer = 0;
    if (deadline == NO_DEADLINE) {
        return 0;
    }
    if (ioloop_time(loop) >= deadline && (s->flags & F_LINGER)) {
        close_with(s, ENOBUFS); /* the overflow reply did not get out */
        return 0;
    }
    if (ioloop_time(loop) >= deadline) {
        s->timed_out = (uint8_t) (which + 1);
        ioloop__stats_w(loop)->stream_timeouts[which]++;
        close_with(s, ETIMEDOUT);
        return 0;
    }
    if (arm(s, deadline) < 0) {
        close_with(s, ENOMEM);
    }
    return 0;
}

/*
 * The earliest deadline of the timeouts that run now, and in *which its
 * T_* index; NO_DEADLINE when none runs. The read timeout runs while a
 * read waits for the fd, the write timeout while output is queued, the
 * idle timeout always.
 */
static ioloop_time_t
next_deadline(const ioloop_stream_t *s, int *which)
{
    bool runs[T_COUNT] = {
        true,
        (s->kind != R_NONE && !(s->flags & F_SERVE))
            || (s->flags & F_HANDSHAKE),
        s->out.len > 0,
    };
    ioloop_time_t best = NO_DEADLINE;

    *which = T_IDLE;
    for (int k = 0; k < T_COUNT; k++) {
        if (runs[k] && s->timeout[k] > 0
            && s->mark[k] + s->timeout[k] < best) {
            best = s->mark[k] + s->timeout[k];
            *which = k;
        }
    }
    return best;
}

/* Makes the timer fire no later than deadline: a no-op when it is armed
 * for then or earlier. Returns 0 or -ENOMEM (the timer is then unarmed). */
static int
arm(ioloop_stream_t *s, ioloop_time_t deadline)
{
    if (s->timer != 0) {
        if (s->timer_at <= deadline) {
            return 0;
        }
        ioloop_cancel(s->loop, s->timer);
    }
    s->timer_at = deadline;
    s->timer = ioloop_call_at(s->loop, deadline, on_timer, s);
    return s->timer != 0 ? 0 : -ENOMEM;
}

/*
 * Runs what must not run inside the call that caused it: the done callback
 * of a write that completed at once, and a read served from the input
 * buffer. A read that done starts is served by the next run.
 */
static int
run_deferred(ioloop_loop_t *loop, void *arg)
{
    ioloop_stream_t *s = arg;
    unsigned flags = s->flags;
    ioloop_stream_cb done;

    (void) loop;
    s->flags &= (uint8_t) ~F_QUEUED;
    if (flags & F_CLOSED) {
        return 0;
    }
    done = s->u.open.done_cb;
    if (done != NULL && s->out.len == 0) {
        s->u.open.done_cb = NULL;
        done(s, s->arg);
        if (s->flags & F_CLOSED) {
            return 0;
        }
    }
    if (flags & F_SERVE) {
        s->flags &= (uint8_t) ~F_SERVE;
        deliver(s, s->in.p + s->in.off,
                match(s, s->in.p + s->in.off, s->in.len, 0), s->in.len, true);
    }
    return 0;
}

/* Runs the close callback (unless the loop is being freed: discard),
 * then frees the stream. */
static void
finish_close(ioloop_loop_t *loop, struct ioloop_close_node *node,
             bool discard)
{
    ioloop_stream_t *s = (ioloop_stream_t *) (void *) ((char *) node
                         - offsetof(ioloop_stream_t, u.closed));

    (void) loop;
    if (!discard && s->close_cb != NULL) {
        s->close_cb(s, s->arg);
    }
    buf_drop(&s->in);
    free(s);
}

/* Queues run_deferred unless it is already. Returns 0, or -ENOMEM after
 * closing the stream. */
static int
defer(ioloop_stream_t *s)
{
    int rc;

    if (s->flags & F_QUEUED) {
        return 0;
    }
    rc = queue_as_owner(s, run_deferred);
    if (rc < 0) {
        close_with(s, -rc);
        return rc;
    }
    s->flags |= F_QUEUED;
    return 0;
}

/* add_callback as the stream's owner: the loop runs a callback as the
 * owner current when it was added, and the caller may be someone else
 * (the host closing a plugin's stream). */
static int
queue_as_owner(ioloop_stream_t *s, ioloop_cb cb)
{
    return ioloop__add_callback_as(s->loop, s->owner, cb, s);
}

/* READ while a read waits for the fd, WRITE while output is queued,
 * plus what the transport waits for (only that during its handshake).
 * Returns 0 or -errno (the stream is then closed). */
static int
update_interest(ioloop_stream_t *s)
{
    unsigned events = s->tr_want;
    int rc;

    if (!(s->flags & F_HANDSHAKE) && s->kind != R_NONE
        && !(s->flags & F_SERVE)) {
        events |= IOLOOP_READ;
    }
    if (!(s->flags & F_HANDSHAKE) && s->out.len > 0) {
        events |= IOLOOP_WRITE;
    }
    rc = ioloop_update_handler(s->loop, s->fd, events);
    if (rc < 0) {
        close_with(s, -rc);
    }
    return rc;
}

/*
 * Closes the stream with error (0 or a positive errno): drops the
 * handler, the fd, the timer, the pending read and the queued output, and
 * puts the stream on the loop's close queue. The input buffer lives on
 * until finish_close: a read callback may be using it. No-op when already
 * closed.
 */
static void
close_with(ioloop_stream_t *s, int error)
{
    if (s->flags & F_CLOSED) {
        return;
    }
    s->flags |= F_CLOSED;
    s->error = error;
    ioloop__count_streams(s->loop, -1);
    ioloop_remove_handler(s->loop, s->fd);
    if (s->tr != NULL) {
        s->tr->ops->close(s->tr);
        s->tr = NULL;
    }
    close(s->fd);
    s->fd = -1;
    if (s->timer != 0) {
        ioloop_cancel(s->loop, s->timer);
        s->timer = 0;
    }
    end_read(s);
    s->in.len = 0;
    buf_drop(&s->out);
    /* The open-state callbacks are dead from here on: their memory now
     * links the stream into the loop's close queue. */
    ioloop__close_later(s->loop, &s->u.closed, finish_close, s->owner);
}

/* writev(2) (write(2) for one buffer), retried on EINTR. Returns the
 * bytes written or -errno (-EAGAIN for EWOULDBLOCK too). */
static ssize_t
writev_fd(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t n;

    if (iovcnt == 1) {
        return write_fd(fd, iov[0].iov_base, iov[0].iov_len);
    }
    do {
        n = writev(fd, iov, iovcnt);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return n;
}

/* A buffer limit from the options: fallback for 0, clamped to
 * IOLOOP_STREAM_MAX_BUFFER. */
static size_t
limit_of(size_t size, size_t fallback)
{
    if (size == 0) {
        size = fallback;
    }
    return size < IOLOOP_STREAM_MAX_BUFFER ? size : IOLOOP_STREAM_MAX_BUFFER;
}

size_t
ioloop__streams_release_owner(ioloop_loop_t *loop,
                              const struct ioloop_owner *owner)
{
    /* An open stream always has its handler (with events 0 when idle):
     * the handler table finds them without a list in every stream. */
    size_t open = ioloop__each_owner_handler(loop, owner, on_io, release);

    /* Every stream of owner is now on the close queue: free them there. */
    ioloop__close_discard_owner(loop, owner);
    return open;
}

/* Closes open stream arg for ioloop__streams_release_owner. */
static void
release(void *arg)
{
    close_with(arg, ECANCELED);
}

/* write(2), retried on EINTR. Returns the bytes written or -errno
 * (-EAGAIN for EWOULDBLOCK too). */
static ssize_t
write_fd(int fd, const void *data, size_t len)
{
    ssize_t n;

    do {
        n = write(fd, data, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return n;
}

/* The socket's pending error (SO_ERROR), 0 if none or not a socket. */
static int
socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return 0;
    }
    return err;
}

/*
 * Makes room for need bytes from the start of the data, moving the data
 * to the front or into a larger block (doubling, up to limit, or need if
 * larger). Returns 0 or -ENOMEM (b unchanged).
 */
static int
buf_reserve(struct buf *b, size_t need, size_t limit)
{
    size_t cap = (size_t) b->cap * 2 < limit ? (size_t) b->cap * 2 : limit;
    char *p;

    if (b->off + need <= b->cap) {
        return 0;
    }
    if (need <= b->cap) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
        return 0;
    }
    if (cap < need) {
        cap = need;
    }
    p = malloc(cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    if (b->len > 0) {
        memcpy(p, b->p + b->off, b->len);
    }
    free(b->p);
    *b = (struct buf){p, 0, b->len, (uint32_t) cap};
    return 0;
}

/* Appends len bytes. Returns 0 or -ENOMEM (b unchanged). */
static int
buf_append(struct buf *b, const char *data, size_t len, size_t limit)
{
    if (buf_reserve(b, (size_t) b->len + len, limit) < 0) {
        return -ENOMEM;
    }
    memcpy(b->p + b->off + b->len, data, len);
    b->len += (uint32_t) len;
    return 0;
}

static void
buf_drop(struct buf *b)
{
    free(b->p);
    *b = (struct buf){0};
}
