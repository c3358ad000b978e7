/*
 * plugins/tcp_proxy/tcp_proxy.h: what plugin.c (lifecycle, config,
 * accept) and conn.c (one client and its upstream) share.
 */
#ifndef IOLOOP_PLUGIN_TCP_PROXY_H
#define IOLOOP_PLUGIN_TCP_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include <ioloop/plugin.h>

#include "../http_common/http_limits.h"

/* Most bytes one read hands over; also each direction's high-water mark,
 * so at most about two chunks are queued per direction. */
#define PROXY_CHUNK (64 * 1024)

struct proxy_conn;

/* What the config sets (proxy_schema in plugin.c). */
struct proxy_config {
    const char *listen;
    const char *upstream;
    int64_t backlog;
    ioloop_time_t idle_timeout;
    ioloop_time_t connect_timeout;
    int64_t max_connections;
    bool upstream_tls;                /* speak TLS to upstream */
    const char *upstream_ca;          /* NULL: the system's store */
    const char *upstream_server_name; /* NULL: upstream's host */
    const char *upstream_cert;        /* mutual TLS: both or neither */
    const char *upstream_key;
};

/* One plugin instance: a listener and its clients. */
struct proxy {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int listen_fd;
    struct proxy_conn *conns; /* doubly linked, for fini */
    uint32_t nconns;
    const struct proxy_config *cfg; /* the host's, valid until fini */
    struct http_shed shed;
    int shed_counter;    /* counter_register handles, < 0: none */
    int refused_counter; /* upstream connects that failed */
    ioloop_tls_t *up_tls; /* upstream_tls's client context, or NULL */
};

/* Takes ownership of fd, a client: connects upstream, then splices.
 * Returns 0 or -errno (fd closed). */
int proxy_conn_open(struct proxy *p, int fd);

/* Closes every client at once (fini: no close callback comes). */
void proxy_conns_free(struct proxy *p);

#endif /* IOLOOP_PLUGIN_TCP_PROXY_H */
