/*
 * plugins/status/status.h: private types of the status plugin, which
 * serves the host's metrics in the Prometheus text format (GET /metrics)
 * and a liveness probe for orchestrators (GET /health) over HTTP/1.1 with
 * keep-alive. Shared by plugin.c (descriptor, config, init/fini, the
 * listener) and conn.c (one connection: libhttp-parser on a host stream).
 */
#ifndef IOLOOP_PLUGIN_STATUS_H
#define IOLOOP_PLUGIN_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>
#include <ioloop/plugin.h>

#include "../http_common/http_limits.h"

/* Longest path (query string included) kept for matching; a longer one
 * matches no route. */
#define STATUS_MAX_URL 256
/* The default metrics path. */
#define STATUS_DEFAULT_PATH "/metrics"
/* The liveness path. */
#define STATUS_HEALTH_PATH "/health"

struct status_conn;

/* One plugin instance: a listener, its connections and a render buffer. */
struct status {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    char path[STATUS_MAX_URL]; /* the metrics path */
    int listen_fd;             /* -1 once drained */
    bool draining;             /* every response closes its connection */
    struct status_conn *conns; /* doubly linked, for fini */
    uint32_t nconns;
    uint32_t max_conns;
    ioloop_time_t header_timeout;    /* the whole head, from its first byte */
    ioloop_time_t keepalive_timeout; /* the stream's idle timeout */
    struct http_shed shed_log;
    int shed;      /* counter handles (-1: not counted) */
    int timed_out; /* ... reason="header" */
    char *body;                /* the last rendering, reused */
    size_t body_cap;
};

/*
 * Takes ownership of the accepted socket fd: wraps it in a stream and
 * starts reading requests; past max_connections closes it at once
 * instead (logged). On failure closes fd and returns -errno.
 */
int status__conn_open(struct status *st, int fd);

/* Closes and frees every connection of st (fini). */
void status__conn_close_all(struct status *st);

/* Graceful stop: closes the idle connections now; the others close
 * after their response (st->draining is set). */
void status__conn_drain(struct status *st);

#endif /* IOLOOP_PLUGIN_STATUS_H */
