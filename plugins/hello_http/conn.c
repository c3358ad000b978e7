/*
 * plugins/hello_http/conn.c: one HTTP/1.1 connection of hello_http:
 * keep-alive, pipelining, backpressure, parsed by libhttp-parser.
 *
 * Memory: an idle connection is one small struct hello_conn (its
 * http_parser and a few counters). A read lands in the instance's scratch
 * h->in and is fed to the parser from there; responses are built in
 * h->out and written at once. Only what one event cannot finish goes to
 * the heap, and is freed as soon as it is done with:
 *   - url: the URL of a request whose head spans reads;
 *   - out: response bytes the socket would not take (a short write).
 *     While output is pending the connection watches IOLOOP_WRITE only
 *     and reads nothing (backpressure);
 *   - in: requests pipelined behind the one whose response went pending,
 *     parsed once the output drained. So a connection holds at most one
 *     scratch of output plus one response, and one read of input.
 *
 * Head size: the parser pauses in on_headers_complete and
 * on_message_complete, so conn_feed knows exactly which bytes belong to a
 * request head (request line and headers) and can answer 431.
 *
 * Strict framing on top of libhttp-parser (lenient mode off, which
 * already refuses two Content-Lengths and Content-Length with
 * Transfer-Encoding): header names must be tokens (so "Content-Length :"
 * is 400, not a Content-Length), a major version other than 1 is 505, a
 * body announced or grown past max_body_size is 413.
 *
 * Timeouts: one deadline per connection (http_deadline: one timer,
 * re-armed lazily), set by conn_deadline after each event from the
 * connection's state: the whole head within header_timeout of its first
 * byte (of the accept, for the first request), body_timeout between body
 * reads and between response writes, keepalive_timeout between requests,
 * HELLO_LINGER for a lingering close.
 */
#include "hello_http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long a lingering close waits for the client to stop sending. */
#define HELLO_LINGER (2 * IOLOOP_NS_PER_S)

/* hello_conn.flags */
#define CONN_IN_HEAD      0x01u /* the parser is inside a request head */
#define CONN_AT_HEAD_END  0x02u /* paused in on_headers_complete */
#define CONN_AT_MSG_END   0x04u /* paused in on_message_complete */
#define CONN_CLOSING      0x08u /* close once the output is flushed */
#define CONN_LINGER       0x10u /* ... by a lingering close */
#define CONN_LINGERING    0x20u /* write side shut, discarding input */
#define CONN_WRITING      0x40u /* registered for IOLOOP_WRITE, not READ */
#define CONN_URL_TOO_LONG 0x80u /* the URL alone exceeded max_head */
#define CONN_QUIET        0x100u /* draining: nothing read since it began */
#define CONN_SERVED       0x200u /* answered a request: idle is keep-alive */
#define CONN_HEAD_TIMED   0x400u /* the head's deadline is set */
#define CONN_TOO_LARGE    0x800u /* body over max_body: answer 413 */
#define CONN_BAD_VERSION  0x1000u /* HTTP major != 1: answer 505 */

/* A drain closes the connections that stay quiet this long: a client
 * that sends a request meanwhile gets it answered with Connection: close,
 * so a busy keep-alive client never sees its connection vanish. */
#define HELLO_DRAIN_GRACE (300 * IOLOOP_NS_PER_MS)

/* A heap buffer of bytes data[off..len) still to be used. */
struct hello_buf {
    size_t off;
    size_t len;
    char data[];
};

struct hello_conn {
    struct hello_conn *prev;
    struct hello_conn *next;
    struct hello *h;
    http_parser parser;     /* parser.data points back here */
    struct hello_buf *out;  /* pending output, see the file comment */
    struct hello_buf *in;   /* unparsed pipelined input */
    char *url;              /* URL of a head that spans reads */
    struct http_deadline dl; /* see the file comment */
    uint64_t body;          /* chunked body bytes announced so far */
    uint32_t url_len;
    uint32_t head;          /* bytes of the current request head so far */
    int32_t route;          /* index into h->routes, -1: no such route */
    int fd;
    unsigned flags;
};

static int conn_on_io(ioloop_loop_t *loop, int fd, unsigned events,
                      void *arg);
static int conn_read(struct hello_conn *c);
static int conn_close_quiet(ioloop_loop_t *loop, void *arg);
static int conn_write(struct hello_conn *c);
static int conn_linger_read(struct hello_conn *c);
static int conn_on_timer(ioloop_loop_t *loop, void *arg);
static int conn_deadline(struct hello_conn *c);
static int conn_feed(struct hello_conn *c, const char *data, size_t len);
static int conn_fail(struct hello_conn *c, enum hello_error e);
static int conn_settle(struct hello_conn *c);
static int conn_done(struct hello_conn *c, int rc);
static void conn_free(struct hello_conn *c);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_chunk_header(http_parser *p);
static int on_headers_complete(http_parser *p);
static int on_message_complete(http_parser *p);
static int url_save(struct hello_conn *c, const char *at, size_t len);
static int32_t route_find(const struct hello *h, const char *url,
                          size_t len);
static int respond(struct hello_conn *c, const struct hello_response *r,
                   int with_body, int keep_alive);
static void date_refresh(struct hello *h);
static int out_append(struct hello_conn *c, const char *p, size_t n);
static int out_flush(struct hello_conn *c);
static int buf_append(struct hello_buf **bp, const char *p, size_t n);

/* Body bytes are not asked for: the parser skips them. */
static const http_parser_settings conn_parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

int
hello__conn_open(struct hello *h, int fd)
{
    struct hello_conn *c;
    int rc;

    if (h->nconns >= h->max_conns) {
        http__shed(h->api, h->inst, &h->shed_log, fd, h->max_conns);
        hello__count(h, h->shed);
        return 0;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->h = h;
    c->fd = fd;
    c->route = -1;
    c->flags = CONN_IN_HEAD | CONN_HEAD_TIMED;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    rc = h->api->add_handler(h->inst, fd, IOLOOP_READ, conn_on_io, c);
    if (rc == 0) {
        rc = http__deadline_set(h->api, h->inst, &c->dl,
                                h->api->time(h->inst) + h->header_timeout,
                                h->step, conn_on_timer, c);
        if (rc < 0) {
            h->api->remove_handler(h->inst, fd);
        }
    }
    if (rc < 0) {
        close(fd);
        free(c);
        return rc;
    }
    h->nconns++;
    c->next = h->conns;
    if (h->conns != NULL) {
        h->conns->prev = c;
    }
    h->conns = c;
    return 0;
}

void
hello__conn_close_all(struct hello *h)
{
    while (h->conns != NULL) {
        conn_free(h->conns);
    }
}

void
hello__conn_drain(struct hello *h)
{
    h->draining = 1;
    for (struct hello_conn *c = h->conns; c != NULL; c = c->next) {
        c->flags |= CONN_QUIET;
    }
    if (h->api->call_later(h->inst, HELLO_DRAIN_GRACE, conn_close_quiet, h)
        == 0) {
        hello__conn_close_all(h); /* out of memory: no grace */
    }
}

/* The drain's grace is over: closes what stayed quiet and idle. */
static int
conn_close_quiet(ioloop_loop_t *loop, void *arg)
{
    struct hello *h = arg;
    struct hello_conn *c, *next;

    (void) loop;
    for (c = h->conns; c != NULL; c = next) {
        next = c->next;
        if ((c->flags & CONN_QUIET) && c->head == 0
            && !(c->flags & CONN_CLOSING) && c->out == NULL && c->in == NULL) {
            conn_free(c);
        }
    }
    return 0;
}

/* The one handler of a connection; its state says what it waits for. */
static int
conn_on_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct hello_conn *c = arg;

    (void) loop;
    (void) fd;
    (void) events; /* an error or hang-up surfaces in read() or send() */
    if (c->flags & CONN_WRITING) {
        return conn_write(c);
    }
    if (c->flags & CONN_LINGERING) {
        return conn_linger_read(c);
    }
    return conn_read(c);
}

/* Readable: one read, answer every request it completes. */
static int
conn_read(struct hello_conn *c)
{
    struct hello *h = c->h;
    ssize_t n;
    int rc;

    n = read(c->fd, h->in, sizeof(h->in));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0) {
        return conn_done(c, n < 0 ? -errno : 0);
    }
    c->flags &= ~CONN_QUIET;
    rc = conn_feed(c, h->in, (size_t) n);
    if (rc == 0) {
        rc = out_flush(c);
    }
    if (rc < 0) {
        return conn_done(c, rc);
    }
    return conn_settle(c);
}

/* Writable with output pending: send it; once drained, parse what was
 * held back and go back to reading. */
static int
conn_write(struct hello_conn *c)
{
    struct hello_buf *b = c->out;
    ssize_t n;
    int rc = 0;

    n = send(c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return 0;
        }
        return conn_done(c, -errno);
    }
    b->off += (size_t) n;
    if (b->off < b->len) {
        rc = conn_deadline(c); /* the client reads: give it more time */
        return rc < 0 ? conn_done(c, rc) : 0;
    }
    free(b);
    c->out = NULL;
    if (c->in != NULL) {
        b = c->in;
        c->in = NULL;
        rc = conn_feed(c, b->data + b->off, b->len - b->off);
        free(b);
        if (rc == 0) {
            rc = out_flush(c);
        }
    }
    if (rc < 0) {
        return conn_done(c, rc);
    }
    return conn_settle(c);
}

/*
 * Lingering close: our side is shut; read and drop what the client still
 * sends until it closes (or the timer fires), so that closing with unread
 * input does not reset the connection and destroy the error response in
 * flight.
 */
static int
conn_linger_read(struct hello_conn *c)
{
    ssize_t n = read(c->fd, c->h->in, sizeof(c->h->in));

    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
        return 0;
    }
    return conn_done(c, 0);
}

/* The deadline timer: re-arms if the deadline moved, else times out
 * (counted by reason, except a lingering close, already answered). */
static int
conn_on_timer(ioloop_loop_t *loop, void *arg)
{
    struct hello_conn *c = arg;
    struct hello *h = c->h;
    enum hello_timeout why;
    int rc;

    (void) loop;
    rc = http__deadline_fired(h->api, h->inst, &c->dl, h->step,
                              conn_on_timer, c);
    if (rc == 0) {
        return 0;
    }
    if (rc == 1 && !(c->flags & CONN_LINGERING)) {
        if (c->out != NULL) {
            why = HELLO_T_SEND;
        } else if (!(c->flags & CONN_IN_HEAD)) {
            why = HELLO_T_BODY;
        } else if (c->flags & CONN_HEAD_TIMED) {
            why = HELLO_T_HEADER;
        } else {
            why = HELLO_T_IDLE;
        }
        hello__count(h, h->timed_out[why]);
    }
    return conn_done(c, rc < 0 ? rc : 0);
}

/*
 * Sets the deadline the connection's state calls for (see the file
 * comment); a store, unless the timer must be armed. Returns 0 or
 * -ENOMEM.
 */
static int
conn_deadline(struct hello_conn *c)
{
    struct hello *h = c->h;
    ioloop_time_t t;

    if (c->flags & CONN_LINGERING) {
        return 0; /* its deadline is fixed */
    }
    if (c->out != NULL || !(c->flags & CONN_IN_HEAD)) {
        t = h->body_timeout;
    } else if (c->flags & CONN_HEAD_TIMED) {
        return 0; /* the whole head has one deadline */
    } else if (c->head > 0 || c->url != NULL) {
        c->flags |= CONN_HEAD_TIMED;
        t = h->header_timeout;
    } else {
        t = h->keepalive_timeout;
    }
    return http__deadline_set(h->api, h->inst, &c->dl,
                              h->api->time(h->inst) + t, h->step,
                              conn_on_timer, c);
}

/*
 * Parses data, appending a response to h->out for every request it
 * completes. Stops early when the connection is to close, or after a
 * request whose response went pending (the rest is kept in c->in).
 * Returns 0 or -errno (allocation, or a failed send); on error the
 * connection is to be dropped.
 */
static int
conn_feed(struct hello_conn *c, const char *data, size_t len)
{
    struct hello *h = c->h;
    enum http_errno e;
    size_t n, feed;

    date_refresh(h);
    h->url_at = NULL;
    h->feed_err = 0;
    while (len > 0 && !(c->flags & CONN_CLOSING)) {
        /* The parser never sees a head byte past max_head + 1: whether
         * a head is 400 or 431 then depends on those bytes only, not on
         * how reads split them (some errors, such as a bad header name,
         * are found only where a read ends). */
        feed = len;
        if ((c->flags & CONN_IN_HEAD) && feed > h->max_head + 1 - c->head) {
            feed = h->max_head + 1 - c->head;
        }
        n = http_parser_execute(&c->parser, &conn_parser_settings, data,
                                feed);
        e = HTTP_PARSER_ERRNO(&c->parser);
        data += n;
        len -= n;
        if (c->flags & CONN_IN_HEAD) {
            c->head += (uint32_t) n;
        }
        if (h->feed_err < 0) {
            return h->feed_err;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->flags & CONN_AT_HEAD_END) {
                /* n stopped short of the head's final LF. */
                c->flags &= ~(CONN_AT_HEAD_END | CONN_IN_HEAD);
                if (c->head + 1 > h->max_head) {
                    return conn_fail(c, HELLO_431);
                }
                if (c->flags & CONN_BAD_VERSION) {
                    return conn_fail(c, HELLO_505);
                }
                if (c->flags & CONN_TOO_LARGE) {
                    return conn_fail(c, HELLO_413);
                }
            } else {
                c->flags &= ~(CONN_AT_MSG_END | CONN_HEAD_TIMED);
                c->flags |= CONN_IN_HEAD | CONN_SERVED;
                c->head = 0;
                if ((c->flags & CONN_CLOSING) && len > 0) {
                    c->flags |= CONN_LINGER; /* the client sent more */
                } else if (c->out != NULL && len > 0) {
                    return buf_append(&c->in, data, len);
                }
            }
        } else if (e != HPE_OK) {
            return conn_fail(c, (c->flags & CONN_TOO_LARGE) ? HELLO_413
                                : e == HPE_HEADER_OVERFLOW
                                        || (c->flags & CONN_URL_TOO_LONG)
                                    ? HELLO_431
                                    : HELLO_400);
        } else if (c->head > h->max_head) {
            return conn_fail(c, HELLO_431);
        }
    }
    if (h->url_at != NULL && !(c->flags & CONN_CLOSING)
        && url_save(c, NULL, 0) < 0) {
        return h->feed_err < 0 ? h->feed_err : conn_fail(c, HELLO_431);
    }
    return 0;
}

/* Queues the error response e and closes after it (lingering). */
static int
conn_fail(struct hello_conn *c, enum hello_error e)
{
    c->flags |= CONN_CLOSING | CONN_LINGER;
    return respond(c, &c->h->errors[e], 1, 0);
}

/*
 * After an event whose output went out or pending: closes a finished
 * connection or watches it for what it waits for next. Returns 0, or the
 * -errno of a failed update_handler (the connection is then dropped).
 * c may be freed on return.
 */
static int
conn_settle(struct hello_conn *c)
{
    struct hello *h = c->h;
    unsigned want;
    int rc;

    if (c->out == NULL && (c->flags & CONN_CLOSING)
        && !(c->flags & CONN_LINGERING)) {
        if (!(c->flags & CONN_LINGER)) {
            return conn_done(c, 0);
        }
        shutdown(c->fd, SHUT_WR);
        c->flags |= CONN_LINGERING;
        rc = http__deadline_set(h->api, h->inst, &c->dl,
                                h->api->time(h->inst) + HELLO_LINGER,
                                h->step, conn_on_timer, c);
        if (rc < 0) {
            return conn_done(c, 0);
        }
    }
    rc = conn_deadline(c);
    if (rc < 0) {
        return conn_done(c, rc);
    }
    want = c->out != NULL ? IOLOOP_WRITE : IOLOOP_READ;
    if ((want == IOLOOP_WRITE) == ((c->flags & CONN_WRITING) != 0)) {
        return 0;
    }
    rc = h->api->update_handler(h->inst, c->fd, want);
    if (rc < 0) {
        return conn_done(c, rc);
    }
    c->flags ^= CONN_WRITING;
    return 0;
}

/* Drops c. Returns rc for the loop to log, except for a peer that went
 * away, which is normal life. */
static int
conn_done(struct hello_conn *c, int rc)
{
    c->h->out_len = 0;
    conn_free(c);
    return rc == -EPIPE || rc == -ECONNRESET ? 0 : rc;
}

static void
conn_free(struct hello_conn *c)
{
    struct hello *h = c->h;

    h->api->remove_handler(h->inst, c->fd);
    close(c->fd);
    http__deadline_cancel(h->api, h->inst, &c->dl);
    h->nconns--;
    free(c->out);
    free(c->in);
    free(c->url);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}

/*
 * URL bytes. The parser hands over the URL once per read it spans: while
 * it fits in one read it is only pointed at (h->url_at); a URL that spans
 * reads is copied to c->url.
 */
static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct hello_conn *c = p->data;
    struct hello *h = c->h;

    if (c->url == NULL && h->url_at == NULL) {
        h->url_at = at;
        h->url_len = len;
        return 0;
    }
    return url_save(c, at, len);
}

/* The head is complete: resolve the route, pause to count head bytes. */
static int
on_headers_complete(http_parser *p)
{
    struct hello_conn *c = p->data;
    struct hello *h = c->h;

    if (c->url != NULL) {
        c->route = route_find(h, c->url, c->url_len);
        free(c->url);
        c->url = NULL;
        c->url_len = 0;
    } else {
        c->route = route_find(h, h->url_at, h->url_at ? h->url_len : 0);
    }
    h->url_at = NULL;
    c->body = 0;
    if (p->http_major != 1) {
        c->flags |= CONN_BAD_VERSION;
    } else if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX
               && p->content_length > h->max_body) {
        c->flags |= CONN_TOO_LARGE;
    }
    c->flags |= CONN_AT_HEAD_END;
    http_parser_pause(p, 1);
    return 0;
}

/* A header name: RFC 9110 tchar only (no whitespace before the colon). */
static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    (void) p;
    return http__is_token(at, len) ? 0 : -1;
}

/* A chunk of a chunked body: its size counts against max_body. */
static int
on_chunk_header(http_parser *p)
{
    struct hello_conn *c = p->data;

    if (p->content_length > c->h->max_body - c->body) {
        c->flags |= CONN_TOO_LARGE;
        return -1;
    }
    c->body += p->content_length;
    return 0;
}

/* The request is complete (body skipped): answer it. */
static int
on_message_complete(http_parser *p)
{
    struct hello_conn *c = p->data;
    struct hello *h = c->h;
    const struct hello_response *r;
    int keep_alive = http_should_keep_alive(p) && !p->upgrade
                     && !h->draining;
    int rc;

    if (c->route < 0) {
        r = &h->errors[HELLO_404];
    } else if (p->method == HTTP_GET || p->method == HTTP_HEAD) {
        r = &h->routes[c->route].ok;
    } else {
        r = &h->errors[HELLO_405];
    }
    if (!keep_alive) {
        c->flags |= CONN_CLOSING;
    }
    c->flags |= CONN_AT_MSG_END;
    http_parser_pause(p, 1);
    rc = respond(c, r, p->method != HTTP_HEAD, keep_alive);
    if (rc < 0) {
        h->feed_err = rc;
        return -1;
    }
    return 0;
}

/*
 * Appends the URL bytes at..at+len to c->url, first moving there what
 * h->url_at points at (pass len 0 to just do that at the end of a read).
 * Returns 0; or -1 (a parser callback failure) with h->feed_err = -ENOMEM
 * or CONN_URL_TOO_LONG set.
 */
static int
url_save(struct hello_conn *c, const char *at, size_t len)
{
    struct hello *h = c->h;
    size_t need;
    char *url;

    if (h->url_at != NULL) {
        const char *first = h->url_at;

        h->url_at = NULL;
        if (url_save(c, first, h->url_len) < 0) {
            return -1;
        }
    }
    need = c->url_len + len;
    if (need > h->max_head) {
        c->flags |= CONN_URL_TOO_LONG;
        return -1;
    }
    if (len == 0) {
        return 0;
    }
    url = realloc(c->url, need);
    if (url == NULL) {
        h->feed_err = -ENOMEM;
        return -1;
    }
    memcpy(url + c->url_len, at, len);
    c->url = url;
    c->url_len = (uint32_t) need;
    return 0;
}

/*
 * Returns the index of the route matching the path of url (origin form
 * "/path?query", or absolute form "http://host/path"), or -1.
 */
static int32_t
route_find(const struct hello *h, const char *url, size_t len)
{
    struct http_parser_url u;
    size_t i;

    if (len > 0 && url[0] != '/') {
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, len, 0, &u) != 0
            || !(u.field_set & (1u << UF_PATH))) {
            return -1;
        }
        url += u.field_data[UF_PATH].off;
        len = u.field_data[UF_PATH].len;
    }
    for (i = 0; i < len; i++) {
        if (url[i] == '?' || url[i] == '#') {
            len = i;
            break;
        }
    }
    for (i = 0; i < h->nroutes; i++) {
        if (h->routes[i].path_len == len
            && memcmp(h->routes[i].path, url, len) == 0) {
            return (int32_t) i;
        }
    }
    return -1;
}

/* Appends response r to the output, with its body unless with_body is 0. */
static int
respond(struct hello_conn *c, const struct hello_response *r, int with_body,
        int keep_alive)
{
    static const char close_hdr[] = "Connection: close\r\n\r\n";
    static const char keep_hdr[] = "Connection: keep-alive\r\n\r\n";
    struct hello *h = c->h;
    const char *tail = close_hdr;
    size_t tail_len = sizeof(close_hdr) - 1;
    int rc;

    if (keep_alive) {
        /* HTTP/1.0 clients are told when the connection persists. */
        if (c->parser.http_major == 1 && c->parser.http_minor == 0) {
            tail = keep_hdr;
            tail_len = sizeof(keep_hdr) - 1;
        } else {
            tail = "\r\n";
            tail_len = 2;
        }
    }
    hello__count(h, h->requests[r->cls]);
    rc = out_append(c, r->head, r->head_len);
    if (rc == 0) {
        rc = out_append(c, h->date, h->date_len);
    }
    if (rc == 0) {
        rc = out_append(c, tail, tail_len);
    }
    if (rc == 0 && with_body) {
        rc = out_append(c, r->body, r->body_len);
    }
    return rc;
}

/* Formats the Date header (RFC 7231 IMF-fixdate) once per second. */
static void
date_refresh(struct hello *h)
{
    static const char days[7][4] = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
    };
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (now == h->date_sec || gmtime_r(&now, &tm) == NULL) {
        return;
    }
    n = snprintf(h->date, sizeof(h->date),
                 "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n > 0 && (size_t) n < sizeof(h->date)) {
        h->date_len = (size_t) n;
        h->date_sec = now;
    }
}

/* Copies n bytes to h->out, flushing it whenever it fills up. */
static int
out_append(struct hello_conn *c, const char *p, size_t n)
{
    struct hello *h = c->h;
    size_t k;
    int rc;

    while (n > 0) {
        if (h->out_len == sizeof(h->out)) {
            rc = out_flush(c);
            if (rc < 0) {
                return rc;
            }
        }
        k = sizeof(h->out) - h->out_len;
        k = n < k ? n : k;
        memcpy(h->out + h->out_len, p, k);
        h->out_len += k;
        p += k;
        n -= k;
    }
    return 0;
}

/*
 * Writes h->out to the socket and empties it; what the socket does not
 * take is appended to c->out (as is everything once c->out exists, to
 * keep the order). Returns 0 or -errno.
 */
static int
out_flush(struct hello_conn *c)
{
    struct hello *h = c->h;
    const char *p = h->out;
    size_t n = h->out_len;
    ssize_t w;

    h->out_len = 0;
    if (n == 0) {
        return 0;
    }
    if (c->out == NULL) {
        w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                return -errno;
            }
            w = 0;
        }
        p += w;
        n -= (size_t) w;
        if (n == 0) {
            return 0;
        }
    }
    return buf_append(&c->out, p, n);
}

/* Appends n bytes to *bp, allocating it if NULL. 0 or -ENOMEM. */
static int
buf_append(struct hello_buf **bp, const char *p, size_t n)
{
    struct hello_buf *b = *bp;
    size_t len = b != NULL ? b->len : 0;

    b = realloc(b, sizeof(*b) + len + n);
    if (b == NULL) {
        return -ENOMEM;
    }
    if (*bp == NULL) {
        b->off = 0;
    }
    memcpy(b->data + len, p, n);
    b->len = len + n;
    *bp = b;
    return 0;
}
