/*
 * plugins/status/conn.c: one HTTP/1.1 connection of the status plugin,
 * on a host stream. Each read is fed to libhttp-parser; every request it
 * completes is answered at once (the stream copies the response), and the
 * next read starts only once those responses reached the kernel, so a
 * client that pipelines is held back by TCP rather than buffered here.
 * The connection closes after a response when the request asked for it
 * (HTTP/1.0 without keep-alive, "Connection: close"), after a malformed
 * request, after keepalive_timeout without traffic (the stream's idle
 * timeout), and when a request head takes longer than header_timeout
 * from its first byte (from the accept for the first request; one lazy
 * timer, http_deadline). A graceful stop
 * (drain) closes idle connections at once, the others after their
 * response.
 *
 * GET or HEAD on the metrics path: 200 with api->metrics_render's text
 * (503 when the host keeps no metrics); on /health: 200 "ok"; any other
 * path 404, any other method 405. A query string is ignored.
 */
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Most bytes one read hands to the parser. */
#define STATUS_READ 4096
/* Most response bytes queued on one connection (a big segment's text). */
#define STATUS_MAX_BUFFER ((size_t) 64 << 20)

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

struct status_conn {
    struct status_conn *prev;
    struct status_conn *next;
    struct status *st;
    ioloop_stream_t *s;
    http_parser parser; /* parser.data points back here */
    size_t url_len;
    bool url_too_long;
    bool in_request; /* between the first byte of a request and its end */
    bool head_timed; /* dl holds the current head's deadline */
    struct http_deadline dl;
    bool wrote;   /* this read's responses are queued: read on once written */
    bool closing; /* close once they are written */
    char url[STATUS_MAX_URL];
};

/* One response; body is sent unless the request was HEAD. */
struct response {
    int code;
    const char *reason;
    const char *type;
    const char *extra; /* more header lines, "" for none */
    const char *body;
    size_t len;
};

static void conn_on_data(ioloop_stream_t *s, const char *data, size_t len,
                         void *arg);
static void conn_on_written(ioloop_stream_t *s, void *arg);
static void conn_on_close(ioloop_stream_t *s, void *arg);
static void conn_read(struct status_conn *c);
static void conn_unlink(struct status_conn *c);
static int conn_on_timer(ioloop_loop_t *loop, void *arg);
static int on_message_begin(http_parser *p);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);
static int answer(struct status_conn *c);
static int respond(struct status_conn *c, const struct response *r,
                   bool keep_alive);
static int render(struct status *st);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

int
status__conn_open(struct status *st, int fd)
{
    struct ioloop_stream_options opts = {
        .size = sizeof(opts),
        .max_buffer_size = STATUS_MAX_BUFFER,
        .idle_timeout = st->keepalive_timeout,
        .close_cb = conn_on_close,
    };
    struct status_conn *c;
    int rc;

    if (st->nconns >= st->max_conns) {
        http__shed(st->api, st->inst, &st->shed_log, fd, st->max_conns);
        if (st->shed >= 0) {
            st->api->counter_add(st->inst, st->shed, 1);
        }
        return 0;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    opts.arg = c;
    c->s = st->api->stream_new(st->inst, fd, &opts);
    if (c->s == NULL) {
        rc = -errno;
        close(fd);
        free(c);
        return rc;
    }
    c->st = st;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = st->conns;
    if (st->conns != NULL) {
        st->conns->prev = c;
    }
    st->conns = c;
    st->nconns++;
    c->head_timed = true;
    if (http__deadline_set(st->api, st->inst, &c->dl,
                           st->api->time(st->inst) + st->header_timeout,
                           st->header_timeout, conn_on_timer, c)
        < 0) {
        st->api->stream_close(c->s);
        return -ENOMEM;
    }
    conn_read(c);
    return 0;
}

void
status__conn_close_all(struct status *st)
{
    /* Closed in fini: the host frees the streams, no close callback. */
    while (st->conns != NULL) {
        struct status_conn *c = st->conns;

        conn_unlink(c);
        http__deadline_cancel(st->api, st->inst, &c->dl);
        st->api->stream_close(c->s);
        free(c);
    }
}

void
status__conn_drain(struct status *st)
{
    struct status_conn *c, *next;

    for (c = st->conns; c != NULL; c = next) {
        int fd = st->api->stream_fd(c->s);
        char byte;

        next = c->next; /* closing frees c only in a later iteration */
        /* Idle: no request begun, nothing queued, and none arrived
         * unread (a peek, so that a request racing the drain is
         * answered, with Connection: close). */
        if (!c->in_request && !c->wrote && fd >= 0
            && recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0
            && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            st->api->stream_close(c->s);
        }
    }
}

/*
 * Feeds one read to the parser, which answers each complete request
 * (on_message_complete). A parse error is answered 400 and closes.
 * Reads on at once unless responses are queued (then conn_on_written
 * does) or the stream closed.
 */
static void
conn_on_data(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct status_conn *c = arg;
    const struct response bad = {400, "Bad Request", TEXT_TYPE, "",
                                 "Bad Request\n", 12};
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);

    if (c->st->api->stream_fd(s) < 0) {
        return; /* a response could not be queued: closed */
    }
    if (!c->closing
        && (n != len || c->parser.upgrade
            || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        && respond(c, &bad, false) < 0) {
        return;
    }
    if (!c->wrote) {
        conn_read(c);
    }
}

/* The responses reached the kernel: close, or read the next request. */
static void
conn_on_written(ioloop_stream_t *s, void *arg)
{
    struct status_conn *c = arg;

    c->wrote = false;
    if (c->closing || c->st->draining) {
        c->st->api->stream_close(s);
    } else {
        conn_read(c);
    }
}

/* The stream closed for any reason (peer, idle, us): forget it. */
static void
conn_on_close(ioloop_stream_t *s, void *arg)
{
    struct status_conn *c = arg;

    (void) s;
    conn_unlink(c);
    http__deadline_cancel(c->st->api, c->st->inst, &c->dl);
    free(c);
}

/* The head deadline: a head still incomplete when it passes closes the
 * connection (no response: the request was never received). */
static int
conn_on_timer(ioloop_loop_t *loop, void *arg)
{
    struct status_conn *c = arg;
    int rc = http__deadline_fired(c->st->api, c->st->inst, &c->dl,
                                  c->st->header_timeout, conn_on_timer, c);

    (void) loop;
    if (rc == 1 && c->st->timed_out >= 0) {
        c->st->api->counter_add(c->st->inst, c->st->timed_out, 1);
    }
    if (rc != 0) {
        c->st->api->stream_close(c->s);
    }
    return rc < 0 ? rc : 0;
}

static void
conn_read(struct status_conn *c)
{
    if (c->st->api->stream_read_some(c->s, STATUS_READ, conn_on_data) < 0) {
        c->st->api->stream_close(c->s);
    }
}

static void
conn_unlink(struct status_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->st->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->st->nconns--;
}

static int
on_message_begin(http_parser *p)
{
    struct status_conn *c = p->data;

    c->url_len = 0;
    c->url_too_long = false;
    c->in_request = true;
    if (!c->head_timed) {
        c->head_timed = true;
        return http__deadline_set(c->st->api, c->st->inst, &c->dl,
                                  c->st->api->time(c->st->inst)
                                      + c->st->header_timeout,
                                  c->st->header_timeout, conn_on_timer, c);
    }
    return 0;
}

/* A header name: RFC 9110 tchar only (no whitespace before the colon). */
static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    (void) p;
    return http__is_token(at, len) ? 0 : -1;
}

/* The head is in: only the stream's idle timeout applies from here. */
static int
on_headers_complete(http_parser *p)
{
    struct status_conn *c = p->data;

    c->head_timed = false;
    /* at 0: the armed timer finds nothing to do (never fails) */
    return http__deadline_set(c->st->api, c->st->inst, &c->dl, 0,
                              c->st->header_timeout, conn_on_timer, c);
}

/* The URL may come in pieces (a request split across reads). */
static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct status_conn *c = p->data;

    if (len >= sizeof(c->url) - c->url_len) {
        c->url_too_long = true;
    } else {
        memcpy(c->url + c->url_len, at, len);
        c->url_len += len;
    }
    return 0;
}

/* A request is complete: answer it; stop parsing when closing. */
static int
on_message_complete(http_parser *p)
{
    struct status_conn *c = p->data;

    if (answer(c) < 0 || c->closing) {
        http_parser_pause(p, 1);
    }
    return 0;
}

/* Routes the request in c->url and queues its response. */
static int
answer(struct status_conn *c)
{
    struct status *st = c->st;
    bool keep_alive = http_should_keep_alive(&c->parser) != 0
                      && !st->draining;
    struct response r = {404, "Not Found", TEXT_TYPE, "", "Not Found\n", 10};
    size_t path_len;
    int n;

    c->in_request = false;
    c->url[c->url_len] = '\0';
    path_len = strcspn(c->url, "?");
    if (c->parser.method != HTTP_GET && c->parser.method != HTTP_HEAD) {
        r = (struct response){405, "Method Not Allowed", TEXT_TYPE,
                              "Allow: GET, HEAD\r\n", "Method Not Allowed\n",
                              19};
    } else if (c->url_too_long) {
        /* No route is that long: the 404 above. */
    } else if (path_len == strlen(st->path)
               && memcmp(c->url, st->path, path_len) == 0) {
        n = render(st);
        if (n >= 0) {
            r = (struct response){200, "OK", METRICS_TYPE, "", st->body,
                                  (size_t) n};
        } else {
            r = (struct response){503, "Service Unavailable", TEXT_TYPE, "",
                                  "metrics unavailable\n", 20};
            st->api->log(st->inst, IOLOOP_LOG_WARN,
                         "metrics_render failed: %s", strerror(-n));
        }
    } else if (path_len == strlen(STATUS_HEALTH_PATH)
               && memcmp(c->url, STATUS_HEALTH_PATH, path_len) == 0) {
        r = (struct response){200, "OK", TEXT_TYPE, "", "ok\n", 3};
    }
    return respond(c, &r, keep_alive);
}

/*
 * Queues r's head and (unless HEAD) body; conn_on_written runs once they
 * reached the kernel. Returns 0, or -errno after closing the stream (a
 * client that let more than STATUS_MAX_BUFFER of responses pile up).
 */
static int
respond(struct status_conn *c, const struct response *r, bool keep_alive)
{
    const struct ioloop_api *api = c->st->api;
    const char *connection = !keep_alive ? "Connection: close\r\n"
                             : c->parser.http_minor == 0
                                 ? "Connection: keep-alive\r\n"
                                 : "";
    char head[512];
    int n, rc;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n"
                 "Server: ioloop-host\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "%s%s\r\n",
                 r->code, r->reason, r->type, r->len, r->extra, connection);
    rc = api->stream_write(c->s, head, (size_t) n, conn_on_written);
    if (rc == 0 && c->parser.method != HTTP_HEAD && r->len > 0) {
        rc = api->stream_write(c->s, r->body, r->len, conn_on_written);
    }
    if (rc < 0) {
        api->stream_close(c->s);
        return rc;
    }
    c->wrote = true;
    c->closing = !keep_alive;
    return 0;
}

/*
 * Renders the metrics into st->body, growing it when the text outgrew it
 * (by a quarter more than needed, so growth is rare). Returns the length
 * or -errno.
 */
static int
render(struct status *st)
{
    const struct ioloop_api *api = st->api;
    int n = -ENOBUFS, need;
    char *body;

    if (st->body != NULL) {
        n = api->metrics_render(st->inst, st->body, st->body_cap);
    }
    if (n != -ENOBUFS) {
        return n;
    }
    need = api->metrics_render(st->inst, NULL, 0);
    if (need < 0) {
        return need;
    }
    body = realloc(st->body, (size_t) need + (size_t) need / 4 + 1024);
    if (body == NULL) {
        return -ENOMEM;
    }
    st->body = body;
    st->body_cap = (size_t) need + (size_t) need / 4 + 1024;
    return api->metrics_render(st->inst, st->body, st->body_cap);
}
