/*
 * plugins/echo.c: TCP echo plugin on the host's buffered streams. Every
 * byte a client sends is written back. Config: echo_schema below;
 * with tls_cert and tls_key it echoes over TLS, and SIGHUP re-reads them.
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

#include "http_common/http_limits.h"

/* Most bytes one read hands over (and so queued per connection). */
#define ECHO_CHUNK (64 * 1024)
/* Connections accepted per readiness event. */
#define ECHO_ACCEPT_BATCH 64
/* Largest max_connections. */
#define ECHO_MAX_CONNS_MAX (1 << 20)

struct echo_conn;

/* What the config sets (echo_schema). */
struct echo_config {
    const char *listen;
    int64_t backlog;
    ioloop_time_t idle_timeout;
    int64_t max_connections;
    const char *tls_cert; /* NULL: plain TCP */
    const char *tls_key;
    int tls_min_version; /* index in echo_tls_versions */
};

/* One plugin instance: a listener and its connections. */
struct echo {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int listen_fd;
    int draining;            /* graceful stop: close once flushed */
    struct echo_conn *conns; /* doubly linked, for fini */
    uint32_t nconns;
    const struct echo_config *cfg; /* the host's, valid until fini */
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

static int echo_init(const struct ioloop_api *api, ioloop_instance_t *inst,
                     const void *config, void **state, char *err,
                     size_t errlen);
static void echo_fini(void *state);
static void echo_drain(void *state);
static int echo_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                          void *arg);
static int echo_conn_open(struct echo *e, int fd);
static void echo_on_data(ioloop_stream_t *s, const char *data, size_t len,
                         void *arg);
static void echo_on_written(ioloop_stream_t *s, void *arg);
static void echo_on_close(ioloop_stream_t *s, void *arg);
static int echo_tls_start(struct echo *e, char *err, size_t errlen);
static void echo_tls_stop(struct echo *e);
static int echo_on_sighup(ioloop_loop_t *loop, int signo, void *arg);

/* tls_min_version's choices; the index is echo_config.tls_min_version. */
static const char *const echo_tls_versions[] = {"1.2", "1.3", NULL};

static const struct ioloop_config_field echo_schema[] = {
    IOLOOP_CONFIG_LISTEN(struct echo_config, listen, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "Address to listen on: HOST:PORT or [IPV6]:PORT."),
    IOLOOP_CONFIG_INT(struct echo_config, backlog, 0, INT_MAX, "0", 0,
                      "listen(2) backlog; 0: SOMAXCONN."),
    IOLOOP_CONFIG_DURATION(struct echo_config, idle_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "300s", 0,
                           "Close a connection with no byte either way for "
                           "this long."),
    IOLOOP_CONFIG_INT(struct echo_config, max_connections, 1,
                      ECHO_MAX_CONNS_MAX, "10240", 0,
                      "Connections past this many are closed at accept."),
    IOLOOP_CONFIG_PATH(struct echo_config, tls_cert, NULL, 0,
                       "PEM certificate chain (leaf first): echo over TLS. "
                       "Needs tls_key; SIGHUP re-reads both."),
    IOLOOP_CONFIG_PATH(struct echo_config, tls_key, NULL, 0,
                       "PEM private key of tls_cert."),
    IOLOOP_CONFIG_ENUM(struct echo_config, tls_min_version,
                       echo_tls_versions, "1.2", 0,
                       "Lowest TLS version accepted."),
    IOLOOP_CONFIG_END,
};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "echo",
    .version = "1.0.0",
    .description = "TCP echo server",
    .config_schema = echo_schema,
    .config_size = sizeof(struct echo_config),
    .init = echo_init,
    .fini = echo_fini,
    .drain = echo_drain,
};

/*
 * Starts one instance: listens and registers the listener (the host
 * validated config). Returns 0 with *state set, or -errno with one line
 * in err and nothing left behind.
 */
static int
echo_init(const struct ioloop_api *api, ioloop_instance_t *inst,
          const void *config, void **state, char *err, size_t errlen)
{
    const struct echo_config *cfg = config;
    struct echo *e;
    int rc;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    e->api = api;
    e->inst = inst;
    e->cfg = cfg;
    e->shed_counter = IOLOOP_API_HAS(api, counter_register)
                          ? api->counter_register(inst, HTTP_SHED_COUNTER,
                                                  HTTP_SHED_HELP, NULL, NULL)
                          : -1;
    e->sighup = -1;
    rc = echo_tls_start(e, err, errlen);
    if (rc < 0) {
        free(e);
        return rc;
    }
    rc = api->listen_tcp(inst, cfg->listen, (int) cfg->backlog, 0, err,
                         errlen);
    if (rc < 0) {
        echo_tls_stop(e);
        free(e);
        return rc;
    }
    e->listen_fd = rc;
    rc = api->add_handler(inst, e->listen_fd, IOLOOP_READ, echo_on_accept,
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
    e->api->remove_handler(e->inst, e->listen_fd);
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
    e->api->remove_handler(e->inst, e->listen_fd);
    for (struct echo_conn *c = e->conns; c != NULL; c = c->next) {
        if (e->api->stream_pending(c->s) == 0) {
            e->api->stream_close(c->s); /* echo_on_close unlinks it later */
        }
    }
}

/*
 * The TLS context when tls_cert and tls_key are set (loaded now, so
 * --check refuses bad files too) and its reload on SIGHUP. Returns 0 or
 * -errno with one line in err.
 */
static int
echo_tls_start(struct echo *e, char *err, size_t errlen)
{
    const struct echo_config *cfg = e->cfg;
    struct ioloop_tls_options o = {
        .size = sizeof(o),
        .cert = cfg->tls_cert,
        .key = cfg->tls_key,
        .min_version = echo_tls_versions[cfg->tls_min_version],
    };

    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, errlen, "config.%s: tls_cert and tls_key go together: "
                 "set both or neither",
                 cfg->tls_cert == NULL ? "tls_key" : "tls_cert");
        return -EINVAL;
    }
    if (cfg->tls_cert == NULL) {
        return 0;
    }
    if (!IOLOOP_API_HAS(e->api, tls_free)) {
        snprintf(err, errlen, "config.tls_cert: this host has no TLS");
        return -ENOTSUP;
    }
    e->tls = e->api->tls_new(e->inst, &o, err, errlen);
    if (e->tls == NULL) {
        return -errno;
    }
    e->sighup = e->api->signal_subscribe(e->inst, SIGHUP, echo_on_sighup, e);
    if (e->sighup < 0) {
        snprintf(err, errlen, "signal_subscribe(SIGHUP): %s",
                 strerror(-e->sighup));
        e->api->tls_free(e->inst, e->tls);
        e->tls = NULL;
        return e->sighup;
    }
    return 0;
}

static void
echo_tls_stop(struct echo *e)
{
    if (e->sighup >= 0) {
        e->api->signal_unsubscribe(e->inst, e->sighup);
    }
    if (e->tls != NULL) {
        e->api->tls_free(e->inst, e->tls);
    }
}

/* Certificate rotation: new connections get the files' current cert and
 * key, established ones keep theirs; bad files keep the old ones. */
static int
echo_on_sighup(ioloop_loop_t *loop, int signo, void *arg)
{
    struct echo *e = arg;
    char err[256];

    (void) loop;
    (void) signo;
    if (e->api->tls_reload(e->inst, e->tls, err, sizeof(err)) < 0) {
        e->api->log(e->inst, IOLOOP_LOG_ERROR,
                    "%s (the old ones stay in use)", err);
    } else {
        e->api->log(e->inst, IOLOOP_LOG_INFO, "tls: certificate reloaded");
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

    (void) loop;
    (void) events;
    n = e->api->accept_batch(e->inst, fd, fds, ECHO_ACCEPT_BATCH);
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
        .idle_timeout = e->cfg->idle_timeout,
        .tls = e->tls,
    };

    if (e->nconns >= (uint64_t) e->cfg->max_connections) {
        free(c);
        http__shed(e->api, e->inst, &e->shed, fd,
                   (uint32_t) e->cfg->max_connections);
        if (e->shed_counter >= 0) {
            e->api->counter_add(e->inst, e->shed_counter, 1);
        }
        return 0;
    }
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->e = e;
    c->s = e->api->stream_new(e->inst, fd, &opts);
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
        e->api->log(e->inst, IOLOOP_LOG_WARN, "connection closed: %s",
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
