/*
 * plugins/echo.c: TCP echo plugin on the host's buffered streams. Every
 * byte a client sends is written back. Config: "listen" (required,
 * "HOST:PORT"), "backlog" (optional integer).
 *
 * Each connection reads some bytes, writes them back, and reads again
 * only once the write reached the kernel: backpressure with at most one
 * read's worth of data queued per connection.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ioloop/plugin.h>
#include <jansson.h>

/* Most bytes one read hands over (and so queued per connection). */
#define ECHO_CHUNK (64 * 1024)
/* Connections accepted per readiness event. */
#define ECHO_ACCEPT_BATCH 64

struct echo_conn;

/* One plugin instance: a listener and its connections. */
struct echo {
    const struct ioloop_api *api;
    ioloop_loop_t *loop;
    int listen_fd;
    int draining;            /* graceful stop: close once flushed */
    struct echo_conn *conns; /* doubly linked, for fini */
};

struct echo_conn {
    struct echo_conn *prev;
    struct echo_conn *next;
    struct echo *e;
    ioloop_stream_t *s;
};

static int echo_init(const struct ioloop_api *api, ioloop_loop_t *loop,
                     const struct json_t *config, void **state, char *err,
                     size_t errlen);
static void echo_fini(void *state);
static void echo_drain(void *state);
static int echo_config(const struct json_t *config, const char **listen,
                       int *backlog, char *err, size_t errlen);
static int echo_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                          void *arg);
static int echo_conn_open(struct echo *e, int fd);
static void echo_on_data(ioloop_stream_t *s, const char *data, size_t len,
                         void *arg);
static void echo_on_written(ioloop_stream_t *s, void *arg);
static void echo_on_close(ioloop_stream_t *s, void *arg);

static const char *const echo_config_keys[] = { "listen", "backlog", NULL };

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .name = "echo",
    .version = "1.0.0",
    .description = "TCP echo server",
    .config_keys = echo_config_keys,
    .init = echo_init,
    .fini = echo_fini,
    .drain = echo_drain,
};

/*
 * Starts one instance: validates config, listens and registers the
 * listener. Returns 0 with *state set, or -errno with one line in err and
 * nothing left behind.
 */
static int
echo_init(const struct ioloop_api *api, ioloop_loop_t *loop,
          const struct json_t *config, void **state, char *err,
          size_t errlen)
{
    struct echo *e;
    const char *listen;
    int backlog, rc;

    rc = echo_config(config, &listen, &backlog, err, errlen);
    if (rc < 0) {
        return rc;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    e->api = api;
    e->loop = loop;
    rc = api->listen_tcp(loop, listen, backlog, 0, err, errlen);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->listen_fd = rc;
    rc = api->add_handler(loop, e->listen_fd, IOLOOP_READ, echo_on_accept,
                          e);
    if (rc < 0) {
        snprintf(err, errlen, "add_handler(%d): %s", e->listen_fd,
                 strerror(-rc));
        close(e->listen_fd);
        free(e);
        return rc;
    }
    *state = e;
    return 0;
}

static void
echo_fini(void *state)
{
    struct echo *e = state;

    /* Closed streams are freed by the host; no close callback comes. */
    while (e->conns != NULL) {
        struct echo_conn *c = e->conns;

        e->conns = c->next;
        e->api->stream_close(c->s);
        free(c);
    }
    e->api->remove_handler(e->loop, e->listen_fd);
    close(e->listen_fd);
    free(e);
}

/* Graceful stop: no new connections; those with nothing left to echo
 * close now, the others once their data is written back. */
static void
echo_drain(void *state)
{
    struct echo *e = state;

    e->draining = 1;
    e->api->remove_handler(e->loop, e->listen_fd);
    for (struct echo_conn *c = e->conns; c != NULL; c = c->next) {
        if (e->api->stream_pending(c->s) == 0) {
            e->api->stream_close(c->s); /* echo_on_close unlinks it later */
        }
    }
}

/*
 * Validates config: *listen (borrowed) and *backlog (0 when absent).
 * Returns 0, or -EINVAL with one line in err naming the key.
 */
static int
echo_config(const struct json_t *config, const char **listen, int *backlog,
            char *err, size_t errlen)
{
    /* jansson's iterators take a non-const object; nothing is modified. */
    json_t *cfg = (json_t *) config;
    json_t *v;

    if (cfg != NULL && !json_is_object(cfg)) {
        snprintf(err, errlen, "config: expected an object");
        return -EINVAL;
    }
    /* Unknown keys were refused by the host (config_keys). */
    v = json_object_get(cfg, "listen");
    if (!json_is_string(v)) {
        snprintf(err, errlen, "config.listen: %s a string \"HOST:PORT\"",
                 v == NULL ? "missing, expected" : "expected");
        return -EINVAL;
    }
    *listen = json_string_value(v);
    *backlog = 0;
    v = json_object_get(cfg, "backlog");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > INT_MAX) {
            snprintf(err, errlen,
                     "config.backlog: expected an integer in [0, %d]",
                     INT_MAX);
            return -EINVAL;
        }
        *backlog = (int) json_integer_value(v);
    }
    return 0;
}

/*
 * The listener is readable: accepts up to ECHO_ACCEPT_BATCH connections.
 * On EMFILE/ENFILE the host already closed the pending connection and
 * warned, so that is not an error here.
 */
static int
echo_on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct echo *e = arg;
    int fds[ECHO_ACCEPT_BATCH], n, rc = 0;

    (void) events;
    n = e->api->accept_batch(loop, fd, fds, ECHO_ACCEPT_BATCH);
    if (n == -ECONNABORTED || n == -EPROTO || n == -EMFILE || n == -ENFILE) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int r = echo_conn_open(e, fds[i]);

        rc = rc < 0 ? rc : r;
    }
    return n < 0 ? n : rc;
}

/* Takes ownership of fd: a stream, reading. Returns 0 or -errno. */
static int
echo_conn_open(struct echo *e, int fd)
{
    struct echo_conn *c = calloc(1, sizeof(*c));
    struct ioloop_stream_options opts = {
        .size = sizeof(opts),
        .close_cb = echo_on_close,
        .arg = c,
    };

    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->e = e;
    c->s = e->api->stream_new(e->loop, fd, &opts);
    if (c->s == NULL) {
        int rc = -errno;

        close(fd);
        free(c);
        return rc;
    }
    c->next = e->conns;
    if (e->conns != NULL) {
        e->conns->prev = c;
    }
    e->conns = c;
    return e->api->stream_read_some(c->s, ECHO_CHUNK, echo_on_data);
}

static void
echo_on_data(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct echo_conn *c = arg;

    /* Fails only on a closed stream, whose close callback then runs. */
    c->e->api->stream_write(s, data, len, echo_on_written);
}

static void
echo_on_written(ioloop_stream_t *s, void *arg)
{
    struct echo_conn *c = arg;

    if (c->e->draining) {
        c->e->api->stream_close(s);
        return;
    }
    c->e->api->stream_read_some(s, ECHO_CHUNK, echo_on_data);
}

/* The peer closed (after its data came back) or went away. */
static void
echo_on_close(ioloop_stream_t *s, void *arg)
{
    struct echo_conn *c = arg;
    struct echo *e = c->e;
    int error = e->api->stream_error(s);

    if (error != 0 && error != ECONNRESET && error != EPIPE) {
        e->api->log(e->loop, IOLOOP_LOG_WARN, "connection closed: %s",
                    strerror(error));
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        e->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}
