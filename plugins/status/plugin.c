/*
 * plugins/status/plugin.c: the status plugin descriptor, its config,
 * instance init/fini and the listener. HTTP itself is in conn.c.
 *
 * Config: status_schema below (the limits are hello_http's).
 * /health always answers "ok".
 */
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connections accepted per readiness event. */
#define STATUS_ACCEPT_BATCH 16

/* What the config sets (status_schema). */
struct status_config {
    const char *listen;
    const char *path;
    ioloop_time_t header_timeout;
    ioloop_time_t keepalive_timeout;
    int64_t max_connections;
};

static int status_init(const struct ioloop_api *api, ioloop_instance_t *inst,
                       const void *config, void **state, char *err,
                       size_t errlen);
static void status_fini(void *state);
static void status_drain(void *state);
static int status_config(struct status *st, const struct status_config *c,
                         char *err, size_t errlen);
static int status_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                            void *arg);

/* The most connections max_connections allows. */
#define STATUS_MAX_CONNS_LIMIT (1 << 20)

static const struct ioloop_config_field status_schema[] = {
    IOLOOP_CONFIG_LISTEN(struct status_config, listen, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "Address to listen on: HOST:PORT or [IPV6]:PORT."),
    IOLOOP_CONFIG_STRING(struct status_config, path, STATUS_DEFAULT_PATH, 0,
                         "Where the metrics are served: starts with '/', "
                         "no query, not /health."),
    IOLOOP_CONFIG_DURATION(struct status_config, header_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "10s", 0,
                           "Longest a request head may take to arrive."),
    IOLOOP_CONFIG_DURATION(struct status_config, keepalive_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "75s", 0,
                           "Close a kept-alive connection idle this long."),
    IOLOOP_CONFIG_INT(struct status_config, max_connections, 1,
                      STATUS_MAX_CONNS_LIMIT, "10240", 0,
                      "Connections past this many are closed at accept."),
    IOLOOP_CONFIG_END,
};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "status",
    .version = "1.0.0",
    .description = "Prometheus metrics (GET /metrics) and a health check "
                   "(GET /health) over HTTP",
    .config_schema = status_schema,
    .config_size = sizeof(struct status_config),
    .init = status_init,
    .fini = status_fini,
    .drain = status_drain,
};

/*
 * Starts one instance: checks that the host renders metrics, validates
 * config, listens and registers the listener. Returns 0 with *state set,
 * or -errno with one line in err and nothing left behind.
 */
static int
status_init(const struct ioloop_api *api, ioloop_instance_t *inst,
            const void *config, void **state, char *err, size_t errlen)
{
    const struct status_config *cfg = config;
    struct status *st;
    int rc;

    if (!IOLOOP_API_HAS(api, metrics_render)) {
        snprintf(err, errlen, "this host has no metrics_render (its API "
                              "table is older than the plugin's)");
        return -ENOTSUP;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->api = api;
    st->inst = inst;
    rc = status_config(st, cfg, err, errlen);
    if (rc < 0) {
        free(st);
        return rc;
    }
    /* The same series as hello_http's; -1 (not counted) on an old host. */
    st->shed = -1;
    st->timed_out = -1;
    if (IOLOOP_API_HAS(api, counter_add)) {
        st->shed = api->counter_register(inst, HTTP_SHED_COUNTER,
                                         HTTP_SHED_HELP, NULL, NULL);
        st->timed_out = api->counter_register(inst, HTTP_TIMED_OUT_COUNTER,
                                              HTTP_TIMED_OUT_HELP, "reason",
                                              "header");
    }
    rc = api->listen_tcp(inst, cfg->listen, 0, 0, err, errlen);
    if (rc < 0) {
        free(st);
        return rc;
    }
    st->listen_fd = rc;
    rc = api->add_handler(inst, st->listen_fd, IOLOOP_READ, status_on_accept,
                          st);
    if (rc < 0) {
        snprintf(err, errlen, "add_handler(%d): %s", st->listen_fd,
                 strerror(-rc));
        close(st->listen_fd);
        free(st);
        return rc;
    }
    *state = st;
    return 0;
}

static void
status_fini(void *state)
{
    struct status *st = state;

    status__conn_close_all(st);
    if (st->listen_fd >= 0) {
        st->api->remove_handler(st->inst, st->listen_fd);
        close(st->listen_fd);
    }
    free(st->body);
    free(st);
}

/* Graceful stop: no new connection; scrapers' kept-alive connections
 * close once idle, so the stop need not wait for shutdown_timeout. */
static void
status_drain(void *state)
{
    struct status *st = state;

    st->draining = true;
    if (st->listen_fd >= 0) {
        st->api->remove_handler(st->inst, st->listen_fd);
        close(st->listen_fd);
        st->listen_fd = -1;
    }
    status__conn_drain(st);
}

/*
 * Takes the config into st, checking what the schema cannot: that path
 * is one a request can ask for. Returns 0, or -EINVAL with err set.
 */
static int
status_config(struct status *st, const struct status_config *c, char *err,
              size_t errlen)
{
    const char *path = c->path;

    if (path[0] != '/' || strlen(path) >= STATUS_MAX_URL
        || strpbrk(path, "? \t\r\n") != NULL
        || strcmp(path, STATUS_HEALTH_PATH) == 0) {
        snprintf(err, errlen,
                 "config.path: expected a path such as \"/metrics\" "
                 "(starting with '/', no query, shorter than %d "
                 "bytes, not \"%s\")",
                 STATUS_MAX_URL, STATUS_HEALTH_PATH);
        return -EINVAL;
    }
    memcpy(st->path, path, strlen(path) + 1);
    st->header_timeout = c->header_timeout;
    st->keepalive_timeout = c->keepalive_timeout;
    st->max_conns = (uint32_t) c->max_connections;
    return 0;
}

/*
 * The listener is readable: accepts up to STATUS_ACCEPT_BATCH
 * connections. On EMFILE/ENFILE the host already closed the pending
 * connection and warned, so that is not an error here.
 */
static int
status_on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct status *st = arg;
    int fds[STATUS_ACCEPT_BATCH], n, rc = 0;

    (void) loop;
    (void) events;
    n = st->api->accept_batch(st->inst, fd, fds, STATUS_ACCEPT_BATCH);
    if (n == -ECONNABORTED || n == -EPROTO || n == -EMFILE || n == -ENFILE) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int r = status__conn_open(st, fds[i]); /* closes fds[i] on failure */

        rc = rc < 0 ? rc : r;
    }
    return n < 0 ? n : rc;
}
