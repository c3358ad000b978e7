/*
 * host/runtime/http_internal.h: private types of the host's HTTP server,
 * shared by its files, one job each:
 *   http_server.c   servers, listeners, accept, drain, reload, the loop
 *                   slot, http_handle and the instance's release;
 *   http_conn.c     a connection: reads, the parser, deadlines, output;
 *   http_request.c  the request object and its accessors;
 *   http_response.c the response: head rendering, chunks, finish;
 *   http_routes.c   a server's route table;
 *   http_date.c     the Date header, formatted once a second.
 *
 * Memory: an idle keep-alive connection is one struct http_conn. Reads
 * land in the loop's scratch (in), a request head is gathered in the
 * loop's scratch (head) and becomes one allocation with its request at
 * the head's end, and responses are built in the loop's scratch (out) and
 * written at once. Only what one event cannot finish goes to the heap.
 */
#ifndef IOLOOP_HOST_HTTP_INTERNAL_H
#define IOLOOP_HOST_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <http_parser.h>
#include <ioloop/http.h>
#include <ioloop/plugin.h>

#include "http_server.h"
#include "loop.h"

struct ssl_st;

/* One read() lands here; the parser is fed straight from it. */
#define HTTP_IN_SIZE (64 * 1024)
/* Responses are built here and written at once. */
#define HTTP_OUT_SIZE (64 * 1024)
/* http_write's backpressure threshold (see its contract). */
#define HTTP_WRITE_HIGH (1024 * 1024)
/* Response headers a plugin may add: count and bytes. */
#define HTTP_RESP_HEADERS_MAX 64
#define HTTP_RESP_HEADERS_BYTES (16 * 1024)

/* A heap buffer of bytes data[off..len) still to be used, cap bytes of
 * room (grown geometrically: a large response appended in small writes
 * is not copied over and over). */
struct http_buf {
    size_t off;
    size_t len;
    size_t cap;
    char data[];
};

/* A registered handler (http_handle); owned by its instance. */
struct http_handler {
    struct http_handler *next; /* the loop's list */
    ioloop_instance_t *inst;
    uint64_t methods;  /* bit per enum http_method, 0: every method */
    char *allow;       /* the Allow header's value for a 405 */
    unsigned flags;    /* IOLOOP_HTTP_* */
    ioloop_http_cb cb;
    void *arg;
    struct http_route *route; /* its own route (NULL: manifest's) */
};

/* A route: an exact path or a prefix, and who answers it. */
struct http_route {
    struct http_route *next; /* hash chain */
    const char *key;          /* path or prefix bytes (not owned) */
    size_t len;
    bool prefix;
    const struct ioloop_http_route_spec *spec; /* manifest route, or NULL */
    struct http_handler *handler; /* NULL: not registered (yet) */
    uint64_t methods;             /* the spec's, 0: the handler's */
    char *allow;                  /* the spec's Allow value, or NULL */
    uint64_t max_body;            /* 0: the server's */
    int metrics;                  /* its series (metrics_http.h), or < 0 */
};

/* A server's routes: exact paths and prefixes in one hash table; the
 * prefix lengths that exist, longest first, are the only ones tried. */
struct http_routes {
    struct http_route **buckets;
    size_t nbuckets; /* a power of 2 */
    size_t n;
    size_t *prefix_lens; /* distinct, descending */
    size_t nprefix_lens;
};

/* Lazily re-armed deadline of a connection: one timer, never armed
 * further than `step` ahead, so moving the deadline later is a store. */
struct http_deadline {
    ioloop_time_t at;    /* 0: none */
    ioloop_time_t armed; /* 0: no timer armed */
    ioloop_timer_t timer;
};

/* Rate-limited log of connections shed past max_connections. */
struct http_shed {
    ioloop_time_t logged;
    uint64_t pending;
};

struct http_loop;
struct http_conn;

/* One server: its listeners, limits, TLS context and routes. */
struct http_server {
    struct http_loop *hl;
    const struct ioloop_http_server_spec *spec;
    struct ioloop_http_limits limits;
    ioloop_time_t step; /* the shortest timeout: the deadline's step */
    int *fds;           /* listening sockets, -1 once closed */
    size_t nfds;
    ioloop_tls_t *tls;       /* NULL: plain HTTP */
    ioloop_tls_t *tls_owned; /* the list tls.c links it into */
    struct http_routes routes;
    uint32_t nconns;
    struct http_shed shed;
    /* What each finished request is recorded in (http_record.c). */
    struct ioloop_http_access_log *log; /* NULL: no access log */
    ioloop_timer_t log_flush;           /* 0: nothing waits in log */
    int metrics_none;   /* the series of requests no route matched */
};

/* The loop's HTTP state (its slot). */
struct http_loop {
    ioloop_loop_t *loop;
    struct http_server *servers;
    size_t nservers;
    struct http_handler *handlers;
    struct http_conn *conns;       /* every open connection */
    size_t nconns;
    ioloop_http_request_t *live;   /* requests a plugin holds */
    ioloop_http_request_t *spare;  /* a freed request kept for the next
                                      (http_request.c) */
    size_t spare_cap;              /* its bytes (poisoned under ASan) */
    bool draining;
    int feed_err;        /* -errno raised inside a parser callback */
    /* The Date header of this second. */
    time_t date_sec;
    char date[48];
    size_t date_len;
    /* Scratch of the connection being served. */
    struct http_conn *out_conn; /* whose bytes out holds */
    size_t out_len;
    char *head;          /* the head being gathered (see http_conn.c) */
    size_t head_len;
    size_t head_cap;
    uint32_t head_hdrs;   /* header fields gathered so far */
    uint8_t head_state;   /* what the last callback appended */
    char out[HTTP_OUT_SIZE];
    char in[HTTP_IN_SIZE];
};

/* struct http_conn.flags */
#define CONN_IN_HEAD      0x0001u /* the parser is inside a request head */
#define CONN_AT_HEAD_END  0x0002u /* paused in on_headers_complete */
#define CONN_AT_MSG_END   0x0004u /* paused in on_message_complete */
#define CONN_CLOSING      0x0008u /* close once the output is flushed */
#define CONN_LINGER       0x0010u /* ... by a lingering close */
#define CONN_LINGERING    0x0020u /* write side shut, discarding input */
#define CONN_WANT_WRITE   0x0040u /* registered for IOLOOP_WRITE */
#define CONN_WANT_READ    0x0080u /* registered for IOLOOP_READ */
#define CONN_QUIET        0x0100u /* draining: nothing read since */
#define CONN_HEAD_TIMED   0x0200u /* the head's deadline is set */
#define CONN_TOO_LARGE    0x0400u /* body over the limit: 413 */
#define CONN_BAD_VERSION  0x0800u /* HTTP major != 1: 505 */
#define CONN_DEAD         0x1000u /* a send failed: drop it */
#define CONN_TLS_WRITE    0x2000u /* TLS wants the fd writable to read */
#define CONN_STOPPED      0x4000u /* no more requests: stop parsing */
#define CONN_TLS          0x8000u /* a struct http_tls_conn */
#define CONN_PARTIAL      0x10000u /* c->in holds a partial head */

/* One connection: 120 bytes, a 128-byte heap chunk per idle keep-alive
 * connection (docs/performance.md). */
struct http_conn {
    struct http_conn *next;     /* hl->conns; the previous one is
                                   parser.data (see ioloop__http_conn_of) */
    struct http_server *srv;
    http_parser parser;
    struct http_buf *out;       /* bytes the socket would not take */
    struct http_buf *in;        /* unparsed input (reading paused), or
                                   with CONN_PARTIAL a head that spans
                                   reads (never both at once) */
    ioloop_http_request_t *first; /* requests, oldest first; the last is
                                     being read while !REQ_BODY_DONE */
    ioloop_http_request_t *last;
    struct http_deadline dl;
    uint32_t head;       /* bytes of the current head so far */
    uint16_t nreq;       /* requests queued */
    uint16_t busy;       /* inside the connection's event: defer close */
    int fd;
    unsigned flags;
};

/* Each idle keep-alive connection pays for this struct: keep it in a
 * 128-byte malloc chunk (120 bytes + glibc's 8-byte header). */
_Static_assert(sizeof(struct http_conn) <= 120,
               "struct http_conn outgrew its 128-byte heap chunk");

/* The connection of parser p; its parser.data holds the previous
 * connection on hl->conns instead (a pointer less per connection). */
static inline struct http_conn *
ioloop__http_conn_of(http_parser *p)
{
    return (struct http_conn *) ((char *) p
                                 - offsetof(struct http_conn, parser));
}

/* The previous connection of c on hl->conns, NULL: c is the first. */
static inline struct http_conn *
ioloop__http_conn_prev(const struct http_conn *c)
{
    return c->parser.data;
}

/* A TLS connection: the plain one and its SSL object (plain connections
 * do not pay for the pointer). */
struct http_tls_conn {
    struct http_conn c;
    struct ssl_st *ssl; /* NULL once shut down (lingering close) */
};

/* The SSL object of c, NULL: plain. */
static inline struct ssl_st *
ioloop__http_conn_ssl(const struct http_conn *c)
{
    return (c->flags & CONN_TLS) ? ((const struct http_tls_conn *) c)->ssl
                                 : NULL;
}

/* ioloop_http_request_s.flags */
#define REQ_HEAD         0x0001u /* a HEAD request: no body is sent */
#define REQ_KEEP_ALIVE   0x0002u /* the client lets the connection live */
#define REQ_HEAD_SENT    0x0004u /* the response head was rendered */
#define REQ_CHUNKED      0x0008u /* the body goes chunked */
#define REQ_CLOSE_BODY   0x0010u /* the body ends with the connection */
#define REQ_FINISHED     0x0020u /* the plugin gave it back */
#define REQ_DONE         0x0040u /* the response is complete */
#define REQ_GONE         0x0080u /* the client went away */
#define REQ_CLOSE_CB     0x0100u /* a callback of ours is queued */
#define REQ_STREAM       0x0200u /* the handler streams the body */
#define REQ_READ_BODY    0x0400u /* http_read_body was called */
#define REQ_BODY_DONE    0x0800u /* the whole body was read */
#define REQ_RESP_CLOSE   0x1000u /* response says Connection: close */
#define REQ_LENGTH_SET   0x2000u /* the plugin set Content-Length */
#define REQ_SERVER_SET   0x4000u /* the plugin set Server */
#define REQ_HANDLED      0x8000u /* the handler ran */
#define REQ_PLUGIN       0x20000u /* a plugin holds it (on hl->live) */
#define REQ_FLUSH_CB     0x40000u /* a flush callback is queued */
#define REQ_END_CB       0x80000u /* an on_end callback is queued */
#define REQ_CALLING      0x100000u /* a plugin callback runs on it */

/* http_loop.head_state: what the last head callback appended. */
enum { HTTP_HEAD_URL, HTTP_HEAD_FIELD, HTTP_HEAD_VALUE };

struct ioloop_http_request_s {
    ioloop_http_request_t *next;      /* the connection's queue */
    ioloop_http_request_t *live_prev; /* hl->live */
    ioloop_http_request_t *live_next;
    struct http_conn *conn;           /* NULL once the client is gone */
    struct http_loop *hl;
    struct http_server *srv;
    struct http_handler *handler;     /* NULL: the host answers */
    ioloop_instance_t *inst;          /* the handler's, kept for logs */
    const char *method;
    const char *target;
    const char *path;
    const char *path_rest;
    const char *route;      /* the matched route's key, or NULL */
    int metrics;            /* the matched route's series, or the
                               server's metrics_none */
    const char *allow;      /* a 405's Allow value */
    const char *strs;       /* target\0name\0value\0... */
    uint32_t *hdr;          /* name, value offsets into strs */
    uint32_t nhdr;
    uint32_t nquery;
    char *query;            /* decoded: name\0value\0..., or NULL */
    char *body;
    size_t body_len;
    size_t body_cap;
    uint64_t max_body;
    uint64_t announced;     /* body bytes announced so far (chunked) */
    ioloop_http_body_cb on_data;
    ioloop_http_cb on_end;
    void *body_arg;
    ioloop_http_cb on_close;
    void *close_arg;
    ioloop_http_cb on_flush;
    void *flush_arg;
    char *rhdrs;            /* "Name: value\r\n"... the plugin added */
    size_t rhdrs_len;
    uint32_t nrhdrs;
    int status;
    uint64_t length;        /* Content-Length, when REQ_LENGTH_SET */
    uint64_t sent;          /* body bytes sent */
    struct http_buf *pending; /* output held until it is the oldest */
    ioloop_time_t started;  /* head received */
    time_t when;            /* wall-clock second it arrived */
    char remote_ip[48];
    uint16_t method_id;     /* enum http_method */
    uint8_t version_minor;
    unsigned flags;
    size_t cap;             /* bytes of its allocation */
};

/* The request whose body c is reading, NULL: between requests. */
static inline ioloop_http_request_t *
ioloop__http_conn_cur(const struct http_conn *c)
{
    return c->last != NULL && !(c->last->flags & REQ_BODY_DONE) ? c->last
                                                                : NULL;
}

/* --- http_record.c: the access log and the per-route metrics --- */

/* Opens srv's access log (under --check: only checks that it can be
 * written) and registers the series of unrouted requests. -errno with
 * one line in err naming the place. */
int ioloop__http_record_open(struct http_server *srv, char *err,
                             size_t errlen);

/* Registers the series of r, a route of srv (a failure leaves it
 * uncounted: metrics never stop a request). */
void ioloop__http_record_route(struct http_server *srv, struct http_route *r);

/* SIGHUP: reopens srv's access log (logrotate). */
void ioloop__http_record_reload(struct http_server *srv);

/* Flushes and closes srv's access log. */
void ioloop__http_record_close(struct http_server *srv);

/* --- http_date.c --- */

/* Brings hl->date up to this second (one gmtime a second at most). */
void ioloop__http_date_refresh(struct http_loop *hl);

/* --- http_routes.c --- */

/* Adds r (its key, len and prefix set). -ENOMEM. */
int ioloop__http_routes_add(struct http_routes *t, struct http_route *r);
/* The route r with the same kind and key, or NULL. */
struct http_route *ioloop__http_routes_get(const struct http_routes *t,
                                           const char *key, size_t len,
                                           bool prefix);
/* Unlinks r (the caller frees it). */
void ioloop__http_routes_del(struct http_routes *t, struct http_route *r);
/* The longest route matching path[0..len): an exact path before a
 * prefix of the same length. NULL: none. */
struct http_route *ioloop__http_routes_match(const struct http_routes *t,
                                             const char *path, size_t len);
/* Frees the table (not the routes). */
void ioloop__http_routes_free(struct http_routes *t);

/* --- http_conn.c --- */

/* Takes the accepted fd: a new connection of srv (closed and counted
 * past max_connections). Returns 0 or -errno (fd closed). */
int ioloop__http_conn_open(struct http_server *srv, int fd);
/* Closes c, telling its requests' plugins (on_close). */
void ioloop__http_conn_close(struct http_conn *c);
/* Appends n bytes to *bp, allocating it if NULL. 0 or -ENOMEM. */
int ioloop__http_buf_append(struct http_buf **bp, const char *p, size_t n);
/* Output of c: appended to the scratch, flushed when it fills. */
int ioloop__http_conn_out(struct http_conn *c, const char *p, size_t n);
/* After an API call touched c outside its own event: flush the output,
 * move on the queue, settle the watch. c may be gone on return. */
void ioloop__http_conn_kick(struct http_conn *c);
/* Drain: mark every connection quiet, close idle ones after a grace. */
void ioloop__http_conns_drain(struct http_loop *hl);
/* Bytes of output queued for c (scratch and heap). */
size_t ioloop__http_conn_queued(const struct http_conn *c);

/* --- http_request.c --- */

/*
 * Makes the request of the head gathered in hl->head (one allocation),
 * resolves its route and queues it on c; bare: a request of the host's
 * own (a 400, a 408), nothing gathered. NULL: out of memory.
 */
ioloop_http_request_t *ioloop__http_request_new(struct http_conn *c,
                                                bool bare);
/* Frees req (its body, pending output, headers); the request object
 * itself may be kept as the loop's spare. */
void ioloop__http_request_free(ioloop_http_request_t *req);
/* Frees the loop's spare request. */
void ioloop__http_request_spare_free(struct http_loop *hl);
/* Calls the plugin's cb (req, arg) as the request's instance. */
void ioloop__http_request_call(ioloop_http_request_t *req, ioloop_http_cb cb,
                               void *arg);
/* req leaves its connection (its response is out, or the connection
 * closed): freed unless a plugin still holds it, which then hears
 * on_close (in a later iteration) and gets -EPIPE from its writes. */
void ioloop__http_request_gone(ioloop_http_request_t *req);
/* Frees req if nobody holds it any more (see http_request.c). */
void ioloop__http_request_release(ioloop_http_request_t *req);
/* Queues cb(req) for the next iteration, host-owned. -errno. */
int ioloop__http_request_later(ioloop_http_request_t *req, ioloop_cb cb);
/* Queues the flush callback of req (its bytes reached the kernel). */
int ioloop__http_request_flushed(ioloop_http_request_t *req);
/* Queues on_end of a streamed request that had no body. */
int ioloop__http_request_body_end(ioloop_http_request_t *req);

/* --- http_response.c --- */

/* The reason phrase of status ("OK"), "" when unknown. */
const char *ioloop__http_reason(int status);
/* The host answers req itself with status (a line of text/plain). Marks
 * the response done. -errno. */
int ioloop__http_respond_error(ioloop_http_request_t *req, int status);
/* Moves req's held output to the connection (req is the oldest now). */
int ioloop__http_response_promote(ioloop_http_request_t *req);

/* --- The API members: http_handle (api.c's adapter calls it) and the
 * request functions the table points at. --- */
int ioloop__http_handle(ioloop_instance_t *inst,
                        const struct ioloop_http_handler *handler, char *err,
                        size_t errlen);
const char *ioloop_http_method(const ioloop_http_request_t *req);
const char *ioloop_http_target(const ioloop_http_request_t *req);
const char *ioloop_http_path(const ioloop_http_request_t *req);
const char *ioloop_http_path_rest(const ioloop_http_request_t *req);
const char *ioloop_http_query(const ioloop_http_request_t *req,
                               const char *name);
int ioloop_http_query_next(const ioloop_http_request_t *req, size_t *it,
                            const char **name, const char **value);
const char *ioloop_http_header(const ioloop_http_request_t *req,
                                const char *name);
int ioloop_http_header_next(const ioloop_http_request_t *req, size_t *it,
                             const char **name, const char **value);
const char *ioloop_http_remote_ip(const ioloop_http_request_t *req);
const char *ioloop_http_scheme(const ioloop_http_request_t *req);
const char *ioloop_http_body(const ioloop_http_request_t *req,
                              size_t *len);
int ioloop_http_read_body(ioloop_http_request_t *req,
                           ioloop_http_body_cb on_data, ioloop_http_cb on_end,
                           void *arg);
void ioloop_http_on_close(ioloop_http_request_t *req, ioloop_http_cb cb,
                           void *arg);
int ioloop_http_set_status(ioloop_http_request_t *req, int status);
int ioloop_http_add_header(ioloop_http_request_t *req, const char *name,
                            const char *value);
int ioloop_http_write(ioloop_http_request_t *req, const void *data,
                       size_t len);
int ioloop_http_flush(ioloop_http_request_t *req, ioloop_http_cb cb,
                       void *arg);
int ioloop_http_finish(ioloop_http_request_t *req, const void *data,
                        size_t len);

/* A finished request: written to the access log and counted in its
 * route's series (http_record.c). */
void ioloop__http_record(const ioloop_http_request_t *req);

/* RFC 9110 tchar only. */
bool ioloop__http_is_token(const char *p, size_t n);

#endif /* IOLOOP_HOST_HTTP_INTERNAL_H */
