/*
 * host/runtime/http_conn.c: one HTTP/1.1 connection of the host's
 * servers: reads, the parser (libhttp-parser, strict), deadlines,
 * pipelining, output and backpressure, lingering close.
 *
 * Memory: an idle connection is one struct http_conn. A read lands in the
 * loop's scratch hl->in and is fed to the parser from there; the head's
 * target and headers are gathered in hl->head and become, at the head's
 * end, one allocation with the request (http_request.c). A head that
 * spans reads is kept in c->in (CONN_PARTIAL) between them. Responses are built in
 * hl->out and written at once; what the socket does not take goes to
 * c->out, and while it is there the connection reads nothing
 * (backpressure). Requests read ahead of a pending response, or past
 * max_pipeline requests in flight, wait unparsed in c->in.
 *
 * Order: requests queue on the connection (c->first..c->last); only the
 * oldest writes to the socket, later ones keep their bytes in
 * req->pending until they are the oldest (http_response.c).
 *
 * Reentrancy: a plugin's handler runs inside the connection's event and
 * may finish another connection's request, or its own. c->busy defers
 * the flush, the queue's advance and any close to the end of the event
 * (conn_settle); an API call outside the event settles at once
 * (ioloop__http_conn_kick).
 *
 * Head size: the parser pauses in on_headers_complete and
 * on_message_complete, so conn_feed knows which bytes are head bytes
 * (431) and never shows the parser more than max_header_size + 1 of them.
 *
 * Timeouts: one lazily re-armed deadline per connection (conn_deadline):
 * the whole head within header_timeout of its first byte (of the accept
 * for the first request; 408 when nothing is pending), body_timeout
 * between body reads, send_timeout while output waits, keepalive_timeout
 * between requests, none while only handlers are pending.
 */
#include "http_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "tls.h"

/* How long a lingering close waits for the client to stop sending. */
#define HTTP_LINGER (2 * IOLOOP_NS_PER_S)
/* A drain closes the connections that stay quiet this long. */
#define HTTP_DRAIN_GRACE (300 * IOLOOP_NS_PER_MS)

static int conn_on_io(ioloop_loop_t *loop, int fd, unsigned events,
                      void *arg);
static int conn_on_timer(ioloop_loop_t *loop, void *arg);
static void conn_read(struct http_conn *c);
static void conn_write(struct http_conn *c);
static void conn_eof(struct http_conn *c);
static void conn_linger_read(struct http_conn *c);
static void conn_settle(struct http_conn *c);
static int conn_feed(struct http_conn *c, const char *data, size_t len);
static int conn_fail(struct http_conn *c, int status);
static int conn_deadline(struct http_conn *c);
static int conn_flush(struct http_conn *c);
static void conn_advance(struct http_conn *c);
static int dl_set(struct http_conn *c, ioloop_time_t at);
static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_chunk_header(http_parser *p);
static int on_message_complete(http_parser *p);
static int head_done(struct http_conn *c);
static int msg_done(struct http_conn *c);
#define buf_append ioloop__http_buf_append

static const http_parser_settings conn_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

int
ioloop__http_conn_open(struct http_server *srv, int fd)
{
    struct http_loop *hl = srv->hl;
    const struct ioloop_owner *previous;
    struct http_conn *c;
    ioloop_time_t now;
    int rc;

    if (srv->nconns >= srv->limits.max_connections) {
        now = ioloop_time(hl->loop);
        close(fd);
        srv->shed.pending++;
        if (srv->shed.logged == 0
            || now - srv->shed.logged >= IOLOOP_NS_PER_S) {
            IOLOOP_LOG(IOLOOP_LOG_WARN, "http",
                       "%s: max_connections (%" PRIu32 ") reached: closed "
                       "%" PRIu64 " new connection(s) since the last such "
                       "line", srv->spec->where,
                       srv->limits.max_connections, srv->shed.pending);
            srv->shed.logged = now;
            srv->shed.pending = 0;
        }
        return 0;
    }
    /* No Nagle (nginx's tcp_nodelay): a response written after another
     * small write still unacknowledged (TLS 1.3's session tickets, a
     * chunk) would wait for the client's delayed ACK, ~40 ms. Best
     * effort: a connection without it is only slower. */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) {1},
                      sizeof(int));
    c = calloc(1, srv->tls != NULL ? sizeof(struct http_tls_conn)
                                    : sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->srv = srv;
    c->fd = fd;
    c->flags = CONN_IN_HEAD | CONN_HEAD_TIMED | CONN_WANT_READ;
    http_parser_init(&c->parser, HTTP_REQUEST);
    if (srv->tls != NULL) {
        struct http_tls_conn *t = (struct http_tls_conn *) c;

        t->ssl = ioloop__tls_ssl_new(srv->tls, fd);
        if (t->ssl == NULL) {
            close(fd);
            free(c);
            return -ENOMEM;
        }
        c->flags |= CONN_TLS;
    }
    previous = ioloop__set_owner(hl->loop, NULL);
    rc = ioloop_add_handler(hl->loop, fd, IOLOOP_READ, conn_on_io, c);
    if (rc == 0) {
        rc = dl_set(c, ioloop_time(hl->loop) + srv->limits.header_timeout);
        if (rc < 0) {
            ioloop_remove_handler(hl->loop, fd);
        }
    }
    ioloop__set_owner(hl->loop, previous);
    if (rc < 0) {
        if (ioloop__http_conn_ssl(c) != NULL) {
            ioloop__tls_ssl_free(ioloop__http_conn_ssl(c), 0);
        }
        close(fd);
        free(c);
        return rc;
    }
    srv->nconns++;
    hl->nconns++;
    c->next = hl->conns; /* parser.data (the previous one) is NULL */
    if (hl->conns != NULL) {
        hl->conns->parser.data = c;
    }
    hl->conns = c;
    return 0;
}

void
ioloop__http_conn_close(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;
    ioloop_http_request_t *req, *next;

    if (hl->out_conn == c) {
        hl->out_conn = NULL;
        hl->out_len = 0;
    }
    for (req = c->first; req != NULL; req = next) {
        next = req->next;
        req->next = NULL;
        ioloop__http_request_gone(req);
    }
    c->first = c->last = NULL;
    ioloop_remove_handler(hl->loop, c->fd);
    if (ioloop__http_conn_ssl(c) != NULL) {
        ioloop__tls_ssl_free(ioloop__http_conn_ssl(c),
                             !(c->flags & (CONN_DEAD | CONN_LINGERING)));
    }
    close(c->fd);
    if (c->dl.armed != 0) {
        ioloop_cancel(hl->loop, c->dl.timer);
    }
    free(c->out);
    free(c->in);
    c->srv->nconns--;
    hl->nconns--;
    if (ioloop__http_conn_prev(c) != NULL) {
        ioloop__http_conn_prev(c)->next = c->next;
    } else {
        hl->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->parser.data = c->parser.data;
    }
    free(c);
}

void
ioloop__http_conn_kick(struct http_conn *c)
{
    if (c->busy == 0) {
        conn_settle(c);
    }
}

size_t
ioloop__http_conn_queued(const struct http_conn *c)
{
    const struct http_loop *hl = c->srv->hl;

    return (c->out != NULL ? c->out->len - c->out->off : 0)
           + (hl->out_conn == c ? hl->out_len : 0);
}

/* The drain's grace is over: closes what stayed quiet and idle. */
static int
conn_close_quiet(ioloop_loop_t *loop, void *arg)
{
    struct http_loop *hl = arg;
    struct http_conn *c, *next;

    (void) loop;
    for (c = hl->conns; c != NULL; c = next) {
        next = c->next;
        if ((c->flags & CONN_QUIET) && c->head == 0 && c->first == NULL
            && c->out == NULL && c->in == NULL
            && c->busy == 0) {
            ioloop__http_conn_close(c);
        }
    }
    return 0;
}

void
ioloop__http_conns_drain(struct http_loop *hl)
{
    for (struct http_conn *c = hl->conns; c != NULL; c = c->next) {
        c->flags |= CONN_QUIET;
    }
    if (ioloop_call_later(hl->loop, HTTP_DRAIN_GRACE, conn_close_quiet, hl)
        == 0) {
        conn_close_quiet(hl->loop, hl); /* out of memory: no grace */
    }
}

int
ioloop__http_conn_out(struct http_conn *c, const char *p, size_t n)
{
    struct http_loop *hl = c->srv->hl;
    size_t k;
    int rc;

    if (c->flags & CONN_DEAD) {
        return -EPIPE;
    }
    if (hl->out_conn != c && hl->out_len > 0) {
        rc = conn_flush(hl->out_conn); /* another connection's bytes */
        (void) rc;                     /* its settle sees CONN_DEAD */
    }
    hl->out_conn = c;
    if (c->out != NULL) {
        return buf_append(&c->out, p, n); /* behind what waits */
    }
    while (n > 0) {
        if (hl->out_len == sizeof(hl->out)) {
            rc = conn_flush(c);
            if (rc < 0) {
                return rc;
            }
            if (c->out != NULL) {
                return buf_append(&c->out, p, n);
            }
            hl->out_conn = c;
        }
        k = sizeof(hl->out) - hl->out_len;
        k = n < k ? n : k;
        memcpy(hl->out + hl->out_len, p, k);
        hl->out_len += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* One send (plain or TLS): bytes taken, 0 when the socket is full, or
 * -errno. */
static ssize_t
conn_send(struct http_conn *c, const char *p, size_t n)
{
    unsigned want;
    ssize_t w;

    if (c->flags & CONN_TLS) {
        w = ioloop__tls_ssl_write(ioloop__http_conn_ssl(c), p, n, &want);
        return w == -EAGAIN ? 0 : w;
    }
    w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    }
    return w;
}

/*
 * Writes the scratch (when it holds c's bytes) to the socket and empties
 * it; what the socket does not take goes to c->out. On a failed send the
 * connection is marked dead (settle closes it). 0 or -errno.
 */
static int
conn_flush(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;
    const char *p = hl->out;
    size_t n = hl->out_len;
    ssize_t w;

    if (hl->out_conn != c) {
        return 0;
    }
    hl->out_len = 0;
    hl->out_conn = NULL;
    if (n == 0) {
        return 0;
    }
    if (c->out == NULL) {
        w = conn_send(c, p, n);
        if (w < 0) {
            c->flags |= CONN_DEAD;
            return (int) w;
        }
        p += w;
        n -= (size_t) w;
        if (n == 0) {
            return 0;
        }
    }
    if (buf_append(&c->out, p, n) < 0) {
        c->flags |= CONN_DEAD;
        return -ENOMEM;
    }
    return 0;
}

/* The one handler of a connection; its state says what it waits for. */
static int
conn_on_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct http_conn *c = arg;

    (void) loop;
    (void) fd;
    c->busy++;
    if (c->flags & CONN_LINGERING) {
        conn_linger_read(c);
    } else {
        if ((events & IOLOOP_WRITE) && c->out != NULL) {
            conn_write(c);
        }
        if (!(c->flags & CONN_DEAD)
            && ((events & IOLOOP_READ)
                || ((events & IOLOOP_WRITE) && (c->flags & CONN_TLS_WRITE)))
            && (c->flags & CONN_WANT_READ)) {
            conn_read(c);
        }
        if ((events & (IOLOOP_ERROR | IOLOOP_HUP))
            && !(c->flags & CONN_WANT_READ) && c->out == NULL) {
            c->flags |= CONN_DEAD; /* hang-up with nothing to read */
        }
    }
    c->busy--;
    conn_settle(c);
    return 0;
}

/* Whether reading must wait (backpressure, pipeline full, stopping). */
static bool
conn_paused(const struct http_conn *c)
{
    return (c->flags & (CONN_CLOSING | CONN_STOPPED | CONN_DEAD))
           || (ioloop__http_conn_cur(c) == NULL
               && (c->out != NULL
                   || c->nreq > c->srv->limits.max_pipeline));
}

/* Readable: reads and feeds once (level-triggered: the next event reads
 * on), and over TLS again while OpenSSL holds input the poll cannot see:
 * not until EAGAIN, which costs a read per request. */
static void
conn_read(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;
    unsigned want = 0;
    ssize_t n;

    while (!conn_paused(c)) {
        if (c->flags & CONN_TLS) {
            n = ioloop__tls_ssl_read(ioloop__http_conn_ssl(c), hl->in,
                                     sizeof(hl->in), &want);
            if (n == -EAGAIN) {
                if (want == IOLOOP_WRITE) {
                    c->flags |= CONN_TLS_WRITE;
                } else {
                    c->flags &= ~CONN_TLS_WRITE;
                }
                return;
            }
        } else {
            n = read(c->fd, hl->in, sizeof(hl->in));
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return;
                }
                n = -errno;
            }
        }
        if (n == 0) {
            conn_eof(c);
            return;
        }
        if (n < 0) {
            c->flags |= CONN_DEAD; /* the client left */
            return;
        }
        c->flags &= ~(CONN_QUIET | CONN_TLS_WRITE);
        if (conn_feed(c, hl->in, (size_t) n) < 0) {
            c->flags |= CONN_DEAD;
            return;
        }
        if (!(c->flags & CONN_TLS)
            || !ioloop__tls_ssl_has_pending(ioloop__http_conn_ssl(c))) {
            return;
        }
    }
}

/*
 * The client closed its side. When every request it sent is answered
 * (a streaming handler may answer before the body's end), what is queued
 * still goes out before the close; otherwise the client is gone (their
 * handlers hear on_close).
 */
static void
conn_eof(struct http_conn *c)
{
    ioloop_http_request_t *cur = ioloop__http_conn_cur(c);

    c->flags |= CONN_STOPPED;
    for (ioloop_http_request_t *req = c->first; req != NULL;
         req = req->next) {
        if (!(req->flags & REQ_DONE)) {
            c->flags |= CONN_DEAD;
            return;
        }
    }
    if (cur != NULL) {
        cur->flags |= REQ_BODY_DONE; /* the rest of it never comes */
    }
    c->flags |= CONN_CLOSING;
}

/* Writable with output pending: writes what it can. */
static void
conn_write(struct http_conn *c)
{
    struct http_buf *b = c->out;
    ssize_t w;

    w = conn_send(c, b->data + b->off, b->len - b->off);
    if (w < 0) {
        c->flags |= CONN_DEAD;
        return;
    }
    b->off += (size_t) w;
    if (b->off < b->len) {
        return;
    }
    free(b);
    c->out = NULL;
}

/* Lingering close: reads and discards until EOF or the deadline. */
static void
conn_linger_read(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;
    ssize_t n = read(c->fd, hl->in, sizeof(hl->in));

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->flags |= CONN_DEAD;
    }
}

static int
conn_on_timer(ioloop_loop_t *loop, void *arg)
{
    struct http_conn *c = arg;
    ioloop_http_request_t *req;

    c->dl.armed = 0;
    if (c->dl.at == 0) {
        return 0;
    }
    if (ioloop_time(loop) < c->dl.at) {
        if (dl_set(c, c->dl.at) < 0) {
            ioloop__http_conn_close(c);
        }
        return 0;
    }
    if ((c->flags & (CONN_IN_HEAD | CONN_HEAD_TIMED | CONN_LINGERING))
            == (CONN_IN_HEAD | CONN_HEAD_TIMED)
        && c->first == NULL && c->out == NULL && c->busy == 0
        && (c->head > 0 || (c->flags & CONN_PARTIAL))) {
        /* A head too slow: 408, nothing of it was answered. */
        req = ioloop__http_request_new(c, true);
        if (req != NULL) {
            c->flags |= CONN_STOPPED | CONN_CLOSING;
            ioloop__http_respond_error(req, 408);
            conn_settle(c);
            return 0;
        }
    }
    ioloop__http_conn_close(c);
    return 0;
}

/*
 * After an event or an API call: flushes c's output, moves the queue on,
 * parses what waited, closes a finished or dead connection, and sets the
 * deadline and the watch its state calls for. c may be freed on return.
 */
static void
conn_settle(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;
    const struct ioloop_owner *previous;
    unsigned want = 0;
    struct http_buf *in;
    int rc;

    for (;;) {
        conn_advance(c);
        conn_flush(c);
        if (c->flags & CONN_DEAD) {
            ioloop__http_conn_close(c);
            return;
        }
        if (c->out == NULL && c->first != NULL
            && c->first->on_flush != NULL
            && ioloop__http_request_flushed(c->first) < 0) {
            ioloop__http_conn_close(c);
            return;
        }
        if (c->in == NULL || (c->flags & CONN_PARTIAL) || conn_paused(c)) {
            break;
        }
        in = c->in; /* parse what waited, then read on */
        c->in = NULL;
        c->busy++;
        rc = conn_feed(c, in->data + in->off, in->len - in->off);
        free(in);
        if (rc < 0) {
            c->flags |= CONN_DEAD;
        } else if (c->in == NULL && !conn_paused(c)) {
            conn_read(c);
        }
        c->busy--;
    }
    if (c->out == NULL && c->first == NULL && (c->flags & CONN_CLOSING)
        && !(c->flags & CONN_LINGERING)) {
        if (!(c->flags & CONN_LINGER)) {
            ioloop__http_conn_close(c);
            return;
        }
        if (c->flags & CONN_TLS) {
            ioloop__tls_ssl_free(ioloop__http_conn_ssl(c), 1);
            c->flags &= ~CONN_TLS;
        }
        shutdown(c->fd, SHUT_WR);
        c->flags |= CONN_LINGERING;
        previous = ioloop__set_owner(hl->loop, NULL);
        rc = dl_set(c, ioloop_time(hl->loop) + HTTP_LINGER);
        ioloop__set_owner(hl->loop, previous);
        if (rc < 0) {
            ioloop__http_conn_close(c);
            return;
        }
    }
    previous = ioloop__set_owner(hl->loop, NULL);
    rc = conn_deadline(c);
    ioloop__set_owner(hl->loop, previous);
    if (rc < 0) {
        ioloop__http_conn_close(c);
        return;
    }
    if (c->flags & CONN_LINGERING) {
        want = IOLOOP_READ;
    } else {
        if (c->out != NULL || (c->flags & CONN_TLS_WRITE)) {
            want |= IOLOOP_WRITE;
        }
        if (!conn_paused(c)) {
            want |= IOLOOP_READ;
        }
    }
    if (want == (((c->flags & CONN_WANT_READ) ? IOLOOP_READ : 0)
                 | ((c->flags & CONN_WANT_WRITE) ? IOLOOP_WRITE : 0))) {
        return;
    }
    if (ioloop_update_handler(hl->loop, c->fd, want) < 0) {
        ioloop__http_conn_close(c);
        return;
    }
    c->flags = (c->flags & ~(CONN_WANT_READ | CONN_WANT_WRITE))
               | ((want & IOLOOP_WRITE) ? CONN_WANT_WRITE : 0)
               | ((want & IOLOOP_READ) ? CONN_WANT_READ : 0);
}

/*
 * Pops the oldest requests whose response is complete: their bytes are
 * out (or in c->out), so the next one may write. A response that ends the
 * connection stops it.
 */
static void
conn_advance(struct http_conn *c)
{
    ioloop_http_request_t *req;

    while ((req = c->first) != NULL && (req->flags & REQ_DONE)
           && (req->flags & REQ_BODY_DONE)) {
        c->first = req->next;
        if (c->first == NULL) {
            c->last = NULL;
        }
        req->next = NULL;
        c->nreq--;
        if (!(req->flags & REQ_KEEP_ALIVE)
            || (req->flags & (REQ_RESP_CLOSE | REQ_CLOSE_BODY))
            || c->srv->hl->draining) {
            c->flags |= CONN_CLOSING | CONN_STOPPED;
        }
        ioloop__http_request_gone(req);
        if (c->flags & CONN_CLOSING) {
            /* What follows is never answered. */
            while ((req = c->first) != NULL) {
                c->first = req->next;
                req->next = NULL;
                c->nreq--;
                ioloop__http_request_gone(req);
            }
            c->last = NULL;
            return;
        }
        if (c->first != NULL
            && ioloop__http_response_promote(c->first) < 0) {
            c->flags |= CONN_DEAD;
            return;
        }
    }
}

/* Sets d's deadline to at (0: none), arming the timer only when none is
 * armed or at comes first. -ENOMEM. Run as the host. */
static int
dl_set(struct http_conn *c, ioloop_time_t at)
{
    struct http_loop *hl = c->srv->hl;
    ioloop_time_t due;

    c->dl.at = at;
    if (at == 0 || (c->dl.armed != 0 && c->dl.armed <= at)) {
        return 0; /* the armed timer comes first and will look again */
    }
    if (c->dl.armed != 0) {
        ioloop_cancel(hl->loop, c->dl.timer); /* the linger only */
        c->dl.armed = 0;
    }
    due = ioloop_time(hl->loop) + c->srv->step;
    if (at < due) {
        due = at;
    }
    c->dl.timer = ioloop_call_at(hl->loop, due, conn_on_timer, c);
    if (c->dl.timer == 0) {
        return -ENOMEM;
    }
    c->dl.armed = due;
    return 0;
}

/* The deadline c's state calls for (see the file comment). */
static int
conn_deadline(struct http_conn *c)
{
    const struct ioloop_http_limits *l = &c->srv->limits;
    ioloop_time_t t;

    if (c->flags & CONN_LINGERING) {
        return 0; /* its deadline is fixed */
    }
    if (c->out != NULL) {
        t = l->send_timeout;
    } else if (ioloop__http_conn_cur(c) != NULL
               && !(c->flags & CONN_IN_HEAD)) {
        t = l->body_timeout;
    } else if (c->flags & CONN_HEAD_TIMED) {
        return 0; /* the whole head has one deadline */
    } else if (c->head > 0 || (c->flags & CONN_PARTIAL)) {
        c->flags |= CONN_HEAD_TIMED;
        t = l->header_timeout;
    } else if (c->first != NULL) {
        return dl_set(c, 0); /* handlers at work: the client waits */
    } else {
        t = l->keepalive_timeout;
    }
    return dl_set(c, ioloop_time(c->srv->hl->loop) + t);
}

/* Moves a head that spans reads into the scratch, and back. */
static int
head_restore(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;
    struct http_buf *b = c->in;

    hl->head_len = 0;
    hl->head_hdrs = 0;
    hl->head_state = HTTP_HEAD_URL;
    if (!(c->flags & CONN_PARTIAL)) {
        return 0;
    }
    /* off holds the state: header count << 8 | head_state. */
    memcpy(hl->head, b->data, b->len);
    hl->head_len = b->len;
    hl->head_hdrs = (uint32_t) (b->off >> 8);
    hl->head_state = (uint8_t) (b->off & 0xff);
    free(b);
    c->in = NULL;
    c->flags &= ~CONN_PARTIAL;
    return 0;
}

static int
head_stash(struct http_conn *c)
{
    struct http_loop *hl = c->srv->hl;

    if (!(c->flags & CONN_IN_HEAD) || c->head == 0
        || (c->flags & (CONN_CLOSING | CONN_STOPPED))) {
        return 0;
    }
    if (buf_append(&c->in, hl->head, hl->head_len) < 0) {
        return -ENOMEM;
    }
    c->flags |= CONN_PARTIAL;
    c->in->off = (size_t) hl->head_hdrs << 8 | hl->head_state;
    hl->head_len = 0;
    return 0;
}

/*
 * Parses data: requests go to their handlers, host answers are queued.
 * Stops when the connection stops, or when reading must wait (the rest
 * goes to c->in). Returns 0 or -errno (the connection is to be dropped).
 */
static int
conn_feed(struct http_conn *c, const char *data, size_t len)
{
    struct http_loop *hl = c->srv->hl;
    uint32_t max_head = c->srv->limits.max_header_size;
    enum http_errno e;
    size_t n, feed;
    int rc = 0;

    head_restore(c);
    hl->feed_err = 0;
    while (len > 0 && rc == 0) {
        if (c->flags & (CONN_CLOSING | CONN_STOPPED)) {
            c->flags |= CONN_LINGER; /* the client sent more */
            break;
        }
        if (conn_paused(c)) {
            return buf_append(&c->in, data, len);
        }
        feed = len;
        if ((c->flags & CONN_IN_HEAD) && feed > max_head + 1 - c->head) {
            feed = max_head + 1 - c->head;
        }
        n = http_parser_execute(&c->parser, &conn_parser_settings, data,
                                feed);
        e = HTTP_PARSER_ERRNO(&c->parser);
        data += n;
        len -= n;
        if (c->flags & CONN_IN_HEAD) {
            c->head += (uint32_t) n;
        }
        if (hl->feed_err < 0) {
            return hl->feed_err;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->flags & CONN_AT_HEAD_END) {
                /* n stopped short of the head's final LF. */
                c->flags &= ~(CONN_AT_HEAD_END | CONN_IN_HEAD);
                if (c->head + 1 > max_head) {
                    rc = conn_fail(c, 431);
                } else if (c->flags & CONN_BAD_VERSION) {
                    rc = conn_fail(c, 505);
                } else {
                    rc = head_done(c);
                }
            } else {
                c->flags &= ~(CONN_AT_MSG_END | CONN_HEAD_TIMED);
                c->flags |= CONN_IN_HEAD;
                c->head = 0;
                rc = msg_done(c);
            }
        } else if (e != HPE_OK) {
            rc = conn_fail(c, (c->flags & CONN_TOO_LARGE) ? 413
                              : e == HPE_HEADER_OVERFLOW ? 431 : 400);
        } else if (c->head > max_head) {
            rc = conn_fail(c, 431);
        }
    }
    if (rc == 0) {
        rc = head_stash(c);
    }
    return rc;
}

/*
 * The host answers status and closes after it (lingering): on the
 * request being read if there is one, else on a request of its own.
 */
static int
conn_fail(struct http_conn *c, int status)
{
    ioloop_http_request_t *req = ioloop__http_conn_cur(c);

    c->flags |= CONN_STOPPED | CONN_LINGER;
    c->srv->hl->head_len = 0;
    if (req == NULL) {
        req = ioloop__http_request_new(c, true);
        if (req == NULL) {
            return -ENOMEM;
        }
    }
    req->flags |= REQ_BODY_DONE;
    req->flags &= ~REQ_KEEP_ALIVE;
    if (req->flags & REQ_PLUGIN) {
        /* A streaming handler holds it: it hears on_close, the client
         * hears the host; a response already complete goes out as it
         * is, one begun cannot end well: the connection is dropped. */
        if (!(req->flags & (REQ_HEAD_SENT | REQ_DONE))) {
            ioloop__http_respond_error(req, status);
        } else if (!(req->flags & REQ_DONE)) {
            c->flags |= CONN_DEAD;
        }
        req->flags |= REQ_DONE;
        return 0;
    }
    return ioloop__http_respond_error(req, status);
}

/* Appends at..len to the gathered head, NUL-separating the strings. */
static int
head_add(struct http_conn *c, int state, const char *at, size_t len)
{
    struct http_loop *hl = c->srv->hl;

    if (!(c->flags & CONN_IN_HEAD)) {
        return 0; /* trailers of a chunked body: not kept */
    }
    if (hl->head_state != state && hl->head_len > 0) {
        hl->head[hl->head_len++] = '\0';
    }
    if (state == HTTP_HEAD_FIELD && hl->head_state != HTTP_HEAD_FIELD) {
        hl->head_hdrs++;
    }
    hl->head_state = (uint8_t) state;
    if (hl->head_len + len + 2 > hl->head_cap) {
        return -1; /* past max_header_size: 431 */
    }
    memcpy(hl->head + hl->head_len, at, len);
    hl->head_len += len;
    return 0;
}

static int
on_message_begin(http_parser *p)
{
    struct http_conn *c = ioloop__http_conn_of(p);

    c->flags &= ~(CONN_TOO_LARGE | CONN_BAD_VERSION);
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    return head_add(ioloop__http_conn_of(p), HTTP_HEAD_URL, at, len);
}

/* A header name: RFC 9110 tchar only (no whitespace before the colon). */
static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    if (!ioloop__http_is_token(at, len)) {
        return -1;
    }
    return head_add(ioloop__http_conn_of(p), HTTP_HEAD_FIELD, at, len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    return head_add(ioloop__http_conn_of(p), HTTP_HEAD_VALUE, at, len);
}

/* The head is complete: pause so conn_feed counts its bytes. */
static int
on_headers_complete(http_parser *p)
{
    struct http_conn *c = ioloop__http_conn_of(p);

    if (p->http_major != 1) {
        c->flags |= CONN_BAD_VERSION;
    }
    c->flags |= CONN_AT_HEAD_END;
    http_parser_pause(p, 1);
    return 0;
}

/* Body bytes: to the streaming handler, or buffered. */
static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = ioloop__http_conn_of(p);
    ioloop_http_request_t *req = ioloop__http_conn_cur(c);
    char *b;
    size_t cap;

    if (req == NULL || req->handler == NULL) {
        return 0; /* the host answers it: skipped */
    }
    if (req->flags & REQ_STREAM) {
        if (req->on_data != NULL
            && !(req->flags & (REQ_FINISHED | REQ_GONE))) {
            const struct ioloop_owner *previous =
                ioloop__set_owner(c->srv->hl->loop, &req->inst->owner);

            req->body_len += len;
            req->on_data(req, at, len, req->body_arg);
            ioloop__set_owner(c->srv->hl->loop, previous);
        }
        return 0;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        cap = req->body_cap ? req->body_cap * 2 : 4096;
        while (cap < req->body_len + len + 1) {
            cap *= 2;
        }
        b = realloc(req->body, cap);
        if (b == NULL) {
            c->srv->hl->feed_err = -ENOMEM;
            return -1;
        }
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

/* A chunk of a chunked body: its size counts against the limit. */
static int
on_chunk_header(http_parser *p)
{
    struct http_conn *c = ioloop__http_conn_of(p);
    ioloop_http_request_t *req = ioloop__http_conn_cur(c);

    if (req == NULL || p->content_length > req->max_body - req->announced) {
        c->flags |= CONN_TOO_LARGE;
        return -1;
    }
    req->announced += p->content_length;
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct http_conn *c = ioloop__http_conn_of(p);

    c->flags |= CONN_AT_MSG_END;
    http_parser_pause(p, 1);
    return 0;
}

/*
 * The head of a request is in: makes the request (route, method, body
 * limit, 100-continue), runs a streaming handler at once. 0 or -errno.
 */
static int
head_done(struct http_conn *c)
{
    http_parser *p = &c->parser;
    ioloop_http_request_t *req;
    const char *expect;

    req = ioloop__http_request_new(c, false);
    if (req == NULL) {
        return -ENOMEM;
    }
    if (!http_should_keep_alive(p) || p->upgrade || c->srv->hl->draining) {
        req->flags &= ~REQ_KEEP_ALIVE;
    }
    if (!(p->flags & F_CHUNKED)
        && p->content_length != ULLONG_MAX
        && p->content_length > req->max_body) {
        return conn_fail(c, 413);
    }
    if (req->status != 0 || req->handler == NULL) {
        return 0; /* the host answers at the end of the message */
    }
    expect = (p->flags & F_CHUNKED)
                     || (p->content_length > 0
                         && p->content_length != ULLONG_MAX)
                 ? ioloop_http_header(req, "Expect")
                 : NULL; /* no body: nothing to continue */
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0
        && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

        /* Its place in the request's output: after earlier responses. */
        if (c->first == req) {
            if (ioloop__http_conn_out(c, cont, sizeof(cont) - 1) < 0) {
                return -EPIPE;
            }
        } else if (buf_append(&req->pending, cont, sizeof(cont) - 1) < 0) {
            return -ENOMEM;
        }
    }
    if (req->flags & REQ_STREAM) {
        req->flags |= REQ_HANDLED;
        ioloop__http_request_call(req, req->handler->cb, req->handler->arg);
    }
    return 0;
}

/* A request is complete: the handler runs (buffered), on_end runs
 * (streamed), or the host answers. 0 or -errno. */
static int
msg_done(struct http_conn *c)
{
    ioloop_http_request_t *req = ioloop__http_conn_cur(c);

    if (req == NULL) {
        return 0;
    }
    req->flags |= REQ_BODY_DONE;
    if (!(req->flags & REQ_KEEP_ALIVE)) {
        c->flags |= CONN_STOPPED;
    }
    if (req->handler == NULL) {
        return ioloop__http_respond_error(req, req->status ? req->status
                                                           : 404);
    }
    if (req->flags & REQ_STREAM) {
        if (req->on_end == NULL
            || (req->flags & (REQ_FINISHED | REQ_GONE))) {
            return 0;
        }
        if (req->body_len == 0) {
            return ioloop__http_request_body_end(req); /* a later one */
        }
        ioloop_http_cb cb = req->on_end;

        req->on_end = NULL;
        ioloop__http_request_call(req, cb, req->body_arg);
        return 0;
    }
    req->flags |= REQ_HANDLED;
    ioloop__http_request_call(req, req->handler->cb, req->handler->arg);
    return 0;
}

int
ioloop__http_buf_append(struct http_buf **bp, const char *p, size_t n)
{
    struct http_buf *b = *bp;
    size_t cap;

    if (b != NULL && b->off > 0 && b->len + n > b->cap) {
        /* What was written makes room first. */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b == NULL || b->len + n > b->cap) {
        cap = b != NULL ? b->cap * 2 : 0;
        if (cap < (b != NULL ? b->len : 0) + n) {
            cap = (b != NULL ? b->len : 0) + n;
        }
        b = realloc(b, sizeof(*b) + cap);
        if (b == NULL) {
            return -ENOMEM;
        }
        if (*bp == NULL) {
            b->off = 0;
            b->len = 0;
        }
        b->cap = cap;
        *bp = b;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}
