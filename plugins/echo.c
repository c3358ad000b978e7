/*
 * plugins/echo.c: TCP echo plugin on the host's buffered streams. Every
 * byte a client sends is written back. Config: "listen" (required,
 * "HOST:PORT"), "backlog" (optional integer), "tls" (optional: {"cert",
 * "key", "min_version"}: echo over TLS; SIGHUP re-reads cert and key).
 *
 * Each connection reads some bytes, writes them back, and reads again
 * only once the write reached the kernel: backpressure with at most one
 * read's worth of data queued per connection.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ioloop/plugin.h>
#include <jansson.h>

#include "http_common/http_limits.h"

/* Most bytes one read hands over (and so queued per connection). */
#define ECHO_CHUNK (64 * 1024)
/* Connections accepted per readiness event. */
#define ECHO_ACCEPT_BATCH 64
/* Defaults: a connection with no byte either way for 300 s is closed. */
#define ECHO_IDLE_TIMEOUT_DEFAULT (300 * IOLOOP_NS_PER_S)
#define ECHO_MAX_CONNS_DEFAULT 10240
#define ECHO_MAX_CONNS_MAX (1u << 20)

struct echo_conn;

/* What the config sets. */
struct echo_limits {
    const char *listen; /* borrowed from the config */
    int backlog;
    ioloop_time_t idle_timeout;
    uint32_t max_connections;
    struct ioloop_tls_options tls; /* .cert NULL: plain TCP; borrowed */
};

/* One plugin instance: a listener and its connections. */
struct echo {
    const struct ioloop_api *api;
    ioloop_loop_t *loop;
    int listen_fd;
    int draining;            /* graceful stop: close once flushed */
    struct echo_conn *conns; /* doubly linked, for fini */
    uint32_t nconns;
    struct echo_limits limits;
    struct http_shed shed;
    int shed_counter; /* counter_register handle, < 0: none */
    ioloop_tls_t *tls; /* NULL: plain TCP */
    int sighup;        /* signal_subscribe id (reloads tls), < 0: none */
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
static int echo_config(const struct json_t *config, struct echo_limits *l,
                       char *err, size_t errlen);
static int echo_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                          void *arg);
static int echo_conn_open(struct echo *e, int fd);
static void echo_on_data(ioloop_stream_t *s, const char *data, size_t len,
                         void *arg);
static void echo_on_written(ioloop_stream_t *s, void *arg);
static void echo_on_close(ioloop_stream_t *s, void *arg);
static int echo_tls_config(const json_t *cfg, struct ioloop_tls_options *o,
                           char *err, size_t errlen);
static int echo_tls_start(struct echo *e, char *err, size_t errlen);
static void echo_tls_stop(struct echo *e);
static int echo_on_sighup(ioloop_loop_t *loop, int signo, void *arg);

static const char *const echo_config_keys[] = {
    "listen", "backlog", "idle_timeout", "max_connections", "tls", NULL
};

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
    struct echo_limits l;
    int rc;

    rc = echo_config(config, &l, err, errlen);
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
    e->limits = l;
    e->shed_counter = IOLOOP_API_HAS(api, counter_register)
                          ? api->counter_register(loop, HTTP_SHED_COUNTER,
                                                  HTTP_SHED_HELP, NULL, NULL)
                          : -1;
    e->sighup = -1;
    rc = l.tls.cert != NULL ? echo_tls_start(e, err, errlen) : 0;
    if (rc < 0) {
        free(e);
        return rc;
    }
    rc = api->listen_tcp(loop, l.listen, l.backlog, 0, err, errlen);
    if (rc < 0) {
        echo_tls_stop(e);
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
        echo_tls_stop(e);
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
    echo_tls_stop(e);
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
 * Validates config into *l: listen (required), backlog (0 when absent),
 * idle_timeout and max_connections (defaults above). Returns 0, or
 * -EINVAL with one line in err naming the key.
 */
static int
echo_config(const struct json_t *config, struct echo_limits *l, char *err,
            size_t errlen)
{
    /* jansson's iterators take a non-const object; nothing is modified. */
    json_t *cfg = (json_t *) config;
    json_t *v;
    uint64_t backlog = 0, max = ECHO_MAX_CONNS_DEFAULT;
    int rc;

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
    l->listen = json_string_value(v);
    l->idle_timeout = ECHO_IDLE_TIMEOUT_DEFAULT;
    rc = http__config_uint(cfg, "backlog", 0, INT_MAX, &backlog, err, errlen);
    if (rc == 0) {
        rc = http__config_duration(cfg, "idle_timeout", &l->idle_timeout, err,
                                   errlen);
    }
    if (rc == 0) {
        rc = http__config_uint(cfg, "max_connections", 1, ECHO_MAX_CONNS_MAX,
                               &max, err, errlen);
    }
    l->backlog = (int) backlog;
    l->max_connections = (uint32_t) max;
    return rc == 0 ? echo_tls_config(cfg, &l->tls, err, errlen) : rc;
}

/* "tls": {"cert": PATH, "key": PATH, "min_version": "1.2"|"1.3"} into
 * *o (o->cert stays NULL without "tls"). The host checks the files and
 * the version (tls_new). Returns 0 or -EINVAL with one line in err. */
static int
echo_tls_config(const json_t *cfg, struct ioloop_tls_options *o, char *err,
                size_t errlen)
{
    static const char *const keys[] = {"cert", "key", "min_version"};
    const char **dst[] = {&o->cert, &o->key, &o->min_version};
    json_t *tls = json_object_get(cfg, "tls");
    const char *key;
    json_t *v;

    *o = (struct ioloop_tls_options){.size = sizeof(*o)};
    if (tls == NULL) {
        return 0;
    }
    if (!json_is_object(tls)) {
        snprintf(err, errlen, "config.tls: expected an object");
        return -EINVAL;
    }
    json_object_foreach(tls, key, v) {
        size_t k = 0;

        while (k < 3 && strcmp(key, keys[k]) != 0) {
            k++;
        }
        if (k == 3 || !json_is_string(v)) {
            snprintf(err, errlen, "config.tls.%s: %s", key,
                     k == 3 ? "unknown key (cert, key, min_version)"
                            : "expected a string");
            return -EINVAL;
        }
        *dst[k] = json_string_value(v);
    }
    if (o->cert == NULL || o->key == NULL) {
        snprintf(err, errlen, "config.tls.%s: missing, expected a path",
                 o->cert == NULL ? "cert" : "key");
        return -EINVAL;
    }
    return 0;
}

/* The TLS context (cert and key are loaded now, so --check refuses bad
 * ones too) and its reload on SIGHUP. Returns 0 or -errno with err. */
static int
echo_tls_start(struct echo *e, char *err, size_t errlen)
{
    if (!IOLOOP_API_HAS(e->api, tls_free)) {
        snprintf(err, errlen, "config.tls: this host has no TLS");
        return -ENOTSUP;
    }
    e->tls = e->api->tls_new(e->loop, &e->limits.tls, err, errlen);
    if (e->tls == NULL) {
        return -errno;
    }
    e->sighup = e->api->signal_subscribe(e->loop, SIGHUP, echo_on_sighup, e);
    if (e->sighup < 0) {
        snprintf(err, errlen, "signal_subscribe(SIGHUP): %s",
                 strerror(-e->sighup));
        e->api->tls_free(e->loop, e->tls);
        return e->sighup;
    }
    return 0;
}

static void
echo_tls_stop(struct echo *e)
{
    if (e->sighup >= 0) {
        e->api->signal_unsubscribe(e->loop, e->sighup);
    }
    if (e->tls != NULL) {
        e->api->tls_free(e->loop, e->tls);
    }
}

/* Certificate rotation: new connections get the files' current cert and
 * key, established ones keep theirs; bad files keep the old ones. */
static int
echo_on_sighup(ioloop_loop_t *loop, int signo, void *arg)
{
    struct echo *e = arg;
    char err[256];

    (void) signo;
    if (e->api->tls_reload(loop, e->tls, err, sizeof(err)) < 0) {
        e->api->log(loop, IOLOOP_LOG_ERROR, "%s (the old ones stay in use)",
                    err);
    } else {
        e->api->log(loop, IOLOOP_LOG_INFO, "tls: certificate reloaded");
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
        .idle_timeout = e->limits.idle_timeout,
        .tls = e->tls,
    };

    if (e->nconns >= e->limits.max_connections) {
        free(c);
        http__shed(e->api, e->loop, &e->shed, fd, e->limits.max_connections);
        if (e->shed_counter >= 0) {
            e->api->counter_add(e->loop, e->shed_counter, 1);
        }
        return 0;
    }
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
    e->nconns++;
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

    e->nconns--;
    if (error != 0 && error != ECONNRESET && error != EPIPE
        && error != ETIMEDOUT && error != EPROTO) {
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
