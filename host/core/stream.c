/*
 * host/core/stream.c: buffered streams (tornado's IOStream) on the central
 * loop. Contract: stream_* in api/ioloop/plugin.h, details in stream.h.
 *
 * Memory. An idle stream is its struct, a handler slot and, with an idle
 * timeout, one timer. read(2) goes to a per-thread scratch buffer and the
 * pending read is served straight from it; only the bytes past what it
 * took are copied to the stream's input buffer (freed once drained). A
 * write goes to the fd at once when nothing is queued; only what the
 * kernel did not take is copied to the output buffer (freed once
 * drained). read_bytes too large for the scratch reads into the input
 * buffer directly, sized once.
 *
 * Lifetime. close_with marks the stream closed and queues finish_close,
 * which frees it in a later iteration; a stream whose loop is freed first
 * (closed by a plugin's fini) is freed by ioloop__streams_reap, without
 * its close callback. Every path that
 * runs a user callback checks F_CLOSED after it and then touches nothing,
 * so a callback may close its stream. Callbacks queued before the close
 * run before finish_close (the loop runs callbacks in order) and see the
 * flag.
 */
#include "stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "loop.h"

#define INLINE_DELIM 8 /* longer delimiters are copied to the heap */

enum read_kind { R_NONE = 0, R_UNTIL, R_BYTES, R_SOME, R_CLOSE };

#define F_CLOSED 0x01u /* closed; finish_close is queued */
#define F_QUEUED 0x02u /* run_deferred is queued */
#define F_SERVE  0x04u /* the input buffer satisfies the pending read */

/* A heap buffer holding len bytes at p + off; p is NULL when empty. */
struct buf {
    char *p;
    uint32_t off, len, cap;
};

struct ioloop_stream_s {
    ioloop_loop_t *loop;
    const struct ioloop_owner *owner; /* current at stream_new */
    ioloop_stream_cb close_cb;
    void *arg;
    union {
        struct {
            ioloop_stream_read_cb read_cb; /* the pending read's */
            ioloop_stream_cb done_cb;      /* the latest write's */
        } open;
        struct { /* closed, waiting for finish_close: the loop's list */
            struct ioloop_stream_s *prev;
            struct ioloop_stream_s *next;
        } closed;
    } u;
    union {
        char inl[INLINE_DELIM];
        char *heap;
    } delim;
    ioloop_timer_t timer; /* the idle timer, 0: none */
    ioloop_time_t idle_timeout;
    ioloop_time_t last_active; /* last read or write of >= 1 byte */
    struct buf in;
    struct buf out;
    uint32_t max_buffer;
    uint32_t want; /* R_UNTIL: delimiter length; R_BYTES: n; R_SOME: max */
    uint32_t scan; /* R_UNTIL: input bytes already searched */
    int fd;
    int error;
    uint8_t kind;
    uint8_t flags;
};

_Static_assert(sizeof(struct ioloop_stream_s) <= 160, "stream too large");
_Static_assert(IOLOOP_STREAM_MAX_BUFFER <= UINT32_MAX / 2,
               "buffer sizes must double within uint32_t");

static _Thread_local char scratch[IOLOOP_STREAM_SCRATCH];

/* Closed streams whose finish_close has not run yet. If their loop is
 * freed first (streams closed by a plugin's fini, or in the last
 * iteration), ioloop__streams_reap frees them. Loop thread only, as the
 * whole stream API. */
static ioloop_stream_t *closing;

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
static void flush(ioloop_stream_t *s);
static int on_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg);
static int on_idle(ioloop_loop_t *loop, void *arg);
static int run_deferred(ioloop_loop_t *loop, void *arg);
static int finish_close(ioloop_loop_t *loop, void *arg);
static int defer(ioloop_stream_t *s);
static int queue_as_owner(ioloop_stream_t *s, ioloop_cb cb);
static int update_interest(ioloop_stream_t *s);
static void close_with(ioloop_stream_t *s, int error);
static void unlink_closed(ioloop_stream_t *s);
static void release(void *arg);
static ssize_t write_fd(int fd, const void *data, size_t len);
static int socket_error(int fd);
static int buf_reserve(struct buf *b, size_t need, size_t limit);
static int buf_append(struct buf *b, const char *data, size_t len,
                      size_t limit);
static void buf_drop(struct buf *b);

ioloop_stream_t *
ioloop_stream_new(ioloop_loop_t *loop, int fd,
                  const struct ioloop_stream_options *opts)
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
    s->arg = o.arg;
    if (o.max_buffer_size == 0) {
        o.max_buffer_size = IOLOOP_STREAM_DEFAULT_BUFFER;
    }
    s->max_buffer = (uint32_t) (o.max_buffer_size < IOLOOP_STREAM_MAX_BUFFER
                                    ? o.max_buffer_size
                                    : IOLOOP_STREAM_MAX_BUFFER);
    s->fd = fd;
    rc = ioloop_add_handler(loop, fd, 0, on_io, s);
    if (rc < 0) {
        goto fail;
    }
    if (o.idle_timeout > 0) {
        s->idle_timeout = o.idle_timeout;
        s->last_active = ioloop_time(loop);
        s->timer = ioloop_call_later(loop, o.idle_timeout, on_idle, s);
        if (s->timer == 0) {
            rc = -ENOMEM;
            ioloop_remove_handler(loop, fd);
            goto fail;
        }
    }
    ioloop__metrics_stream_opened(loop);
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
    return n > s->max_buffer ? -ENOBUFS : start_read(s, R_BYTES, NULL, n, cb);
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
    ssize_t n = 0;

    if (s->flags & F_CLOSED) {
        return -EPIPE;
    }
    if (len > s->max_buffer - s->out.len) {
        return -ENOBUFS;
    }
    if (s->out.len == 0 && len > 0) {
        n = write_fd(s->fd, data, len);
        if (n == -EAGAIN) {
            n = 0;
        } else if (n < 0) {
            close_with(s, (int) -n);
            return (int) n;
        } else {
            s->last_active = ioloop_time(s->loop);
        }
    }
    if ((size_t) n < len
        && buf_append(&s->out, (const char *) data + n, len - (size_t) n,
                      s->max_buffer)
               < 0) {
        if (n > 0) {
            close_with(s, ENOMEM); /* the output is cut: give up */
        }
        return -ENOMEM;
    }
    if (done != NULL) {
        s->u.open.done_cb = done;
    }
    if (s->out.len == 0) {
        return s->u.open.done_cb != NULL ? defer(s) : 0;
    }
    return update_interest(s);
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
ioloop_stream_fd(const ioloop_stream_t *s)
{
    return s->fd;
}

size_t
ioloop_stream_pending(const ioloop_stream_t *s)
{
    return s->out.len;
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
 * with want 0 or a delimiter longer than max_buffer_size, -ENOMEM. The
 * read is served by run_deferred in the next iteration if the input
 * buffer satisfies it; else READ interest is turned on (on failure the
 * stream closes).
 */
static int
start_read(ioloop_stream_t *s, enum read_kind kind, const void *delim,
           size_t want, ioloop_stream_read_cb cb)
{
    if (s->flags & F_CLOSED) {
        return -EPIPE;
    }
    if (s->kind != R_NONE) {
        return -EBUSY;
    }
    if (cb == NULL || want == 0 || (kind == R_UNTIL && want > s->max_buffer)) {
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
 * Reads once for the pending read, never more than it or max_buffer_size
 * allows, and serves it when satisfied. read_bytes with part of its data
 * buffered, or larger than the scratch, reads into the input buffer;
 * everything else into the scratch, appended to the input buffer only
 * when not served. Closes the stream on EOF (error 0), on a read error,
 * and with ENOBUFS when read_until fills max_buffer_size.
 */
static void
do_read(ioloop_stream_t *s)
{
    bool direct = s->kind == R_BYTES
                  && (s->in.len > 0 || s->want > IOLOOP_STREAM_SCRATCH);
    size_t room = IOLOOP_STREAM_SCRATCH, len, k;
    char *dst = scratch;
    const char *data;
    ssize_t n;

    if (direct) {
        if (buf_reserve(&s->in, s->want, s->max_buffer) < 0) {
            close_with(s, ENOMEM);
            return;
        }
        dst = s->in.p + s->in.off + s->in.len;
        room = s->want - s->in.len;
    } else if (s->kind == R_UNTIL && s->max_buffer - s->in.len < room) {
        room = s->max_buffer - s->in.len;
    } else if (s->kind == R_BYTES || s->kind == R_SOME) {
        room = s->want; /* <= the scratch here; nothing is buffered */
    }
    do {
        n = read(s->fd, dst, room);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            close_with(s, n == 0 ? 0 : errno);
        }
        return;
    }
    s->last_active = ioloop_time(s->loop);
    if (direct) {
        s->in.len += (uint32_t) n;
    } else if (s->in.len > 0
               && buf_append(&s->in, scratch, (size_t) n, s->max_buffer)
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
        && buf_append(&s->in, scratch, (size_t) n, s->max_buffer) < 0) {
        close_with(s, ENOMEM);
    } else if (s->kind == R_UNTIL && s->in.len >= s->max_buffer) {
        close_with(s, ENOBUFS);
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
               && buf_append(&s->in, data + k, len - k, s->max_buffer) < 0) {
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

/* Writes what is queued once; when it drains, frees it and runs done. */
static void
flush(ioloop_stream_t *s)
{
    ioloop_stream_cb done;
    ssize_t n = write_fd(s->fd, s->out.p + s->out.off, s->out.len);

    if (n < 0) {
        if (n != -EAGAIN) {
            close_with(s, (int) -n);
        }
        return;
    }
    s->last_active = ioloop_time(s->loop);
    s->out.off += (uint32_t) n;
    s->out.len -= (uint32_t) n;
    if (s->out.len > 0) {
        return;
    }
    buf_drop(&s->out);
    if (update_interest(s) < 0) {
        return;
    }
    done = s->u.open.done_cb;
    s->u.open.done_cb = NULL;
    if (done != NULL) {
        done(s, s->arg);
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

    (void) loop;
    if (s->kind != R_NONE && !(s->flags & F_SERVE)
        && ((events & IOLOOP_READ) || failed)) {
        do_read(s);
    }
    if (!(s->flags & F_CLOSED) && s->out.len > 0
        && ((events & IOLOOP_WRITE) || failed)) {
        flush(s);
    }
    if (!(s->flags & F_CLOSED) && failed && s->kind == R_NONE
        && s->out.len == 0) {
        close_with(s, socket_error(fd));
    }
    return 0;
}

/*
 * The idle timer. Activity only stores a time; the timer, when it fires
 * early, re-arms itself for the rest of the timeout, so a busy stream
 * costs one timer run per timeout period instead of a cancel and an add
 * per read.
 */
static int
on_idle(ioloop_loop_t *loop, void *arg)
{
    ioloop_stream_t *s = arg;
    ioloop_time_t deadline = s->last_active + s->idle_timeout;

    s->timer = 0;
    if (ioloop_time(loop) >= deadline) {
        close_with(s, ETIMEDOUT);
        return 0;
    }
    s->timer = ioloop_call_at(loop, deadline, on_idle, s);
    if (s->timer == 0) {
        close_with(s, ENOMEM);
    }
    return 0;
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

/* Runs the close callback, then frees the stream. */
static int
finish_close(ioloop_loop_t *loop, void *arg)
{
    ioloop_stream_t *s = arg;

    (void) loop;
    unlink_closed(s);
    if (s->close_cb != NULL) {
        s->close_cb(s, s->arg);
    }
    buf_drop(&s->in);
    free(s);
    return 0;
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

/* READ while a read waits for the fd, WRITE while output is queued.
 * Returns 0 or -errno (the stream is then closed). */
static int
update_interest(ioloop_stream_t *s)
{
    unsigned events = 0;
    int rc;

    if (s->kind != R_NONE && !(s->flags & F_SERVE)) {
        events |= IOLOOP_READ;
    }
    if (s->out.len > 0) {
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
 * queues finish_close. The input buffer lives on until then: a read
 * callback may be using it. No-op when already closed.
 */
static void
close_with(ioloop_stream_t *s, int error)
{
    int rc;

    if (s->flags & F_CLOSED) {
        return;
    }
    s->flags |= F_CLOSED;
    s->error = error;
    ioloop__metrics_stream_closed(s->loop);
    ioloop_remove_handler(s->loop, s->fd);
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
     * links the stream into the closing list. */
    s->u.closed.prev = NULL;
    s->u.closed.next = closing;
    if (closing != NULL) {
        closing->u.closed.prev = s;
    }
    closing = s;
    rc = queue_as_owner(s, finish_close);
    if (rc < 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, ioloop__owner_name(s->loop),
                   "stream: cannot queue the close callback: %s; the "
                   "stream leaks",
                   strerror(-rc));
    }
}

void
ioloop__streams_reap(ioloop_loop_t *loop)
{
    ioloop_stream_t *s = closing, *next;

    for (; s != NULL; s = next) {
        next = s->u.closed.next;
        if (s->loop == loop) {
            unlink_closed(s);
            buf_drop(&s->in);
            free(s);
        }
    }
}

size_t
ioloop__streams_release_owner(ioloop_loop_t *loop,
                              const struct ioloop_owner *owner)
{
    /* An open stream always has its handler (with events 0 when idle):
     * the handler table finds them without a list in every stream. */
    size_t open = ioloop__each_owner_handler(loop, owner, on_io, release);
    ioloop_stream_t *s = closing, *next;

    for (; s != NULL; s = next) {
        next = s->u.closed.next;
        if (s->loop == loop && s->owner == owner) {
            release(s);
        }
    }
    return open;
}

static void
unlink_closed(ioloop_stream_t *s)
{
    if (s->u.closed.prev != NULL) {
        s->u.closed.prev->u.closed.next = s->u.closed.next;
    } else {
        closing = s->u.closed.next;
    }
    if (s->u.closed.next != NULL) {
        s->u.closed.next->u.closed.prev = s->u.closed.prev;
    }
}

/* Frees stream arg at once, without its callbacks: closed first (no-op
 * when it is), then taken off the closing list. The finish_close that
 * close_with queued is the caller's to drop. */
static void
release(void *arg)
{
    ioloop_stream_t *s = arg;

    close_with(s, ECANCELED);
    unlink_closed(s);
    buf_drop(&s->in);
    free(s);
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
