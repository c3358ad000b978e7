/*
 * plugins/tcp_proxy/conn.c: one client and its upstream connection.
 *
 * Splicing: each direction has one read pending at a time. What it reads
 * is written to the other stream; when that write leaves the queue past
 * its high-water mark (PROXY_CHUNK), the direction stops reading until
 * the other stream's drained_cb, so a slow reader holds the fast side
 * back through TCP flow control instead of growing a buffer here.
 *
 * Closing: when one side closes (EOF, error, idle timeout), the other is
 * closed once what was queued for it is flushed. The conn is freed when
 * both streams closed and no connect is pending.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcp_proxy.h"

struct proxy_conn {
    struct proxy_conn *prev;
    struct proxy_conn *next;
    struct proxy *p;
    ioloop_stream_t *down;        /* the client */
    ioloop_stream_t *up;          /* upstream, once connected */
    ioloop_connect_t *connecting; /* until connect_tcp's callback */
};

static void on_connected(ioloop_loop_t *loop, ioloop_stream_t *s, int status,
                         void *arg);
static void on_data(ioloop_stream_t *s, const char *data, size_t len,
                    void *arg);
static void on_drained(ioloop_stream_t *s, void *arg);
static void on_flushed(ioloop_stream_t *s, void *arg);
static void on_close(ioloop_stream_t *s, void *arg);
static ioloop_stream_t *other(struct proxy_conn *c, ioloop_stream_t *s);
static void conn_free(struct proxy_conn *c);

int
proxy_conn_open(struct proxy *p, int fd)
{
    const struct ioloop_api *api = p->api;
    struct proxy_conn *c = calloc(1, sizeof(*c));
    struct ioloop_stream_options opts = {
        .size = sizeof(opts),
        .close_cb = on_close,
        .idle_timeout = p->cfg->idle_timeout,
        .write_high_water = PROXY_CHUNK,
        .drained_cb = on_drained,
    };
    int rc;

    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->p = p;
    opts.arg = c;
    c->down = api->stream_new(p->inst, fd, &opts);
    if (c->down == NULL) {
        rc = -errno;
        close(fd);
        free(c);
        return rc;
    }
    /* The client is not read until upstream answers. */
    opts.tls = p->up_tls;
    opts.tls_server_name = p->cfg->upstream_server_name;
    c->connecting = api->connect_tcp(p->inst, p->cfg->upstream,
                                     p->cfg->connect_timeout, &opts,
                                     on_connected, c);
    if (c->connecting == NULL) {
        rc = -errno;
        api->log(p->inst, IOLOOP_LOG_WARN, "connect %s: %s",
                 p->cfg->upstream, strerror(-rc));
        api->stream_close(c->down); /* on_close frees c */
    }
    p->nconns++;
    c->next = p->conns;
    if (p->conns != NULL) {
        p->conns->prev = c;
    }
    p->conns = c;
    return 0;
}

void
proxy_conns_free(struct proxy *p)
{
    /* Closed streams are freed by the host; no close callback comes. */
    while (p->conns != NULL) {
        struct proxy_conn *c = p->conns;

        p->conns = c->next;
        p->api->connect_cancel(p->inst, c->connecting);
        p->api->stream_close(c->down);
        p->api->stream_close(c->up);
        free(c);
    }
    p->nconns = 0;
}

/* Upstream answered: splice both ways, or close the client (a clean
 * close: nothing was read from it). */
static void
on_connected(ioloop_loop_t *loop, ioloop_stream_t *s, int status, void *arg)
{
    struct proxy_conn *c = arg;
    const struct ioloop_api *api = c->p->api;

    (void) loop;
    /* The client is still open: its close would have cancelled us. */
    c->connecting = NULL;
    if (status < 0) {
        api->log(c->p->inst, IOLOOP_LOG_WARN, "upstream %s: %s",
                 c->p->cfg->upstream, strerror(-status));
        api->counter_add(c->p->inst, c->p->refused_counter, 1);
        api->stream_close(c->down);
        return;
    }
    c->up = s;
    if (api->stream_read_some(c->down, PROXY_CHUNK, on_data) < 0
        || api->stream_read_some(c->up, PROXY_CHUNK, on_data) < 0) {
        api->stream_close(c->down);
    }
}

/* Bytes from one side: to the other, and read on unless that passed its
 * high-water mark. */
static void
on_data(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct proxy_conn *c = arg;
    const struct ioloop_api *api = c->p->api;
    ioloop_stream_t *to = other(c, s);
    int rc;

    if (to == NULL) {
        /* The other side closed and s is flushing what it sent before
         * (on_close): drop this, read no more, let the flush finish. */
        return;
    }
    rc = api->stream_write(to, data, len, NULL);
    if (rc == 0) {
        rc = api->stream_read_some(s, PROXY_CHUNK, on_data);
    }
    if (rc < 0) { /* to closed (its close callback follows) */
        api->stream_close(s);
    }
}

/* s flushed what passed its mark: the side that feeds it reads again. */
static void
on_drained(ioloop_stream_t *s, void *arg)
{
    struct proxy_conn *c = arg;
    ioloop_stream_t *from = other(c, s);

    if (from != NULL
        && c->p->api->stream_read_some(from, PROXY_CHUNK, on_data) < 0) {
        c->p->api->stream_close(s);
    }
}

static void
on_flushed(ioloop_stream_t *s, void *arg)
{
    struct proxy_conn *c = arg;

    c->p->api->stream_close(s);
}

static void
on_close(ioloop_stream_t *s, void *arg)
{
    struct proxy_conn *c = arg;
    const struct ioloop_api *api = c->p->api;
    ioloop_stream_t *rest;

    if (s == c->down) {
        c->down = NULL;
    } else {
        c->up = NULL;
    }
    rest = c->down != NULL ? c->down : c->up;
    if (rest != NULL) {
        /* Flush what the closed side sent, then close; a write with no
         * bytes just waits for the queue to drain. */
        if (api->stream_pending(rest) == 0
            || api->stream_write(rest, NULL, 0, on_flushed) < 0) {
            api->stream_close(rest);
        }
        return;
    }
    if (c->connecting != NULL) {
        api->connect_cancel(c->p->inst, c->connecting);
        c->connecting = NULL;
    }
    conn_free(c);
}

/* The other stream of c than s: NULL when that one closed (or s is the
 * client and upstream has not connected yet). */
static ioloop_stream_t *
other(struct proxy_conn *c, ioloop_stream_t *s)
{
    return s == c->down ? c->up : c->down;
}

static void
conn_free(struct proxy_conn *c)
{
    struct proxy *p = c->p;

    p->nconns--;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        p->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}
