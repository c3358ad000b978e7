/*
 * plugins/tcp_proxy/plugin.c: a TCP proxy on the host's streams and
 * connect_tcp. Each client accepted on "listen" gets its own connection
 * to "upstream", and bytes are spliced both ways with backpressure.
 * Config: proxy_schema below.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcp_proxy.h"

/* Connections accepted per readiness event. */
#define PROXY_ACCEPT_BATCH 64
/* Largest max_connections. */
#define PROXY_MAX_CONNS_MAX (1 << 20)

static int proxy_init(const struct ioloop_api *api, ioloop_instance_t *inst,
                      const void *config, void **state, char *err,
                      size_t errlen);
static void proxy_fini(void *state);
static int proxy_upstream_check(const char *s, char *err, size_t errlen);
static int proxy_tls_start(struct proxy *p, char *err, size_t errlen);
static int proxy_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                           void *arg);

static const struct ioloop_config_field proxy_schema[] = {
    IOLOOP_CONFIG_LISTEN(struct proxy_config, listen, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "Address to listen on: HOST:PORT or [IPV6]:PORT."),
    IOLOOP_CONFIG_STRING(struct proxy_config, upstream, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "Where each client is connected to: HOST:PORT "
                         "or [IPV6]:PORT, PORT 1 to 65535; a name is "
                         "resolved without blocking the loop."),
    IOLOOP_CONFIG_INT(struct proxy_config, backlog, 0, INT_MAX, "0", 0,
                      "listen(2) backlog; 0: SOMAXCONN."),
    IOLOOP_CONFIG_DURATION(struct proxy_config, idle_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "300s", 0,
                           "Close a side with no byte either way for this "
                           "long (then the other, once flushed)."),
    IOLOOP_CONFIG_DURATION(struct proxy_config, connect_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "10s", 0,
                           "Close a client whose upstream has not connected "
                           "within this long."),
    IOLOOP_CONFIG_INT(struct proxy_config, max_connections, 1,
                      PROXY_MAX_CONNS_MAX, "10240", 0,
                      "Clients past this many are closed at accept."),
    IOLOOP_CONFIG_BOOL(struct proxy_config, upstream_tls, "false", 0,
                       "Speak TLS to upstream, verifying its certificate "
                       "chain and name; connect_timeout covers the "
                       "handshake."),
    IOLOOP_CONFIG_PATH(struct proxy_config, upstream_ca, NULL, 0,
                       "PEM file of the CAs trusted for upstream's "
                       "certificate (upstream_tls); default: the system's "
                       "store."),
    IOLOOP_CONFIG_STRING(struct proxy_config, upstream_server_name, NULL, 0,
                         "Name sent as SNI and verified in upstream's "
                         "certificate (upstream_tls); default: upstream's "
                         "host (an IP address is verified as one, without "
                         "SNI)."),
    IOLOOP_CONFIG_PATH(struct proxy_config, upstream_cert, NULL, 0,
                       "PEM client certificate for an upstream that asks "
                       "for one (upstream_tls, mutual TLS); needs "
                       "upstream_key."),
    IOLOOP_CONFIG_PATH(struct proxy_config, upstream_key, NULL, 0,
                       "PEM private key of upstream_cert."),
    IOLOOP_CONFIG_END,
};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "tcp_proxy",
    .version = "1.1.0",
    .description = "TCP proxy: each client spliced to its own upstream "
                   "connection",
    .config_schema = proxy_schema,
    .config_size = sizeof(struct proxy_config),
    .init = proxy_init,
    .fini = proxy_fini,
    /* No drain: the host stops the listener and lets clients finish
     * until shutdown_timeout. */
};

/*
 * Starts one instance: checks upstream, listens and registers the
 * listener (the host validated the rest of config). Returns 0 with
 * *state set, or -errno with one line in err and nothing left behind.
 */
static int
proxy_init(const struct ioloop_api *api, ioloop_instance_t *inst,
           const void *config, void **state, char *err, size_t errlen)
{
    const struct proxy_config *cfg = config;
    struct proxy *p;
    int rc;

    rc = proxy_upstream_check(cfg->upstream, err, errlen);
    if (rc < 0) {
        return rc;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->api = api;
    p->inst = inst;
    p->cfg = cfg;
    rc = proxy_tls_start(p, err, errlen);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->shed_counter = api->counter_register(inst, HTTP_SHED_COUNTER,
                                            HTTP_SHED_HELP, NULL, NULL);
    p->refused_counter = api->counter_register(
        inst, "ioloop_proxy_upstream_failures_total",
        "Upstream connections that failed or timed out.", NULL, NULL);
    rc = api->listen_tcp(inst, cfg->listen, (int) cfg->backlog, 0, err,
                         errlen);
    if (rc < 0) {
        goto fail;
    }
    p->listen_fd = rc;
    rc = api->add_handler(inst, p->listen_fd, IOLOOP_READ, proxy_on_accept,
                          p);
    if (rc < 0) {
        snprintf(err, errlen, "add_handler(%d): %s", p->listen_fd,
                 strerror(-rc));
        close(p->listen_fd);
        goto fail;
    }
    *state = p;
    return 0;

fail:
    if (p->up_tls != NULL) {
        api->tls_free(inst, p->up_tls);
    }
    free(p);
    return rc;
}

static void
proxy_fini(void *state)
{
    struct proxy *p = state;

    proxy_conns_free(p);
    p->api->remove_handler(p->inst, p->listen_fd);
    close(p->listen_fd);
    if (p->up_tls != NULL) {
        p->api->tls_free(p->inst, p->up_tls);
    }
    free(p);
}

/*
 * upstream_tls: the client context every upstream connection uses,
 * loaded now so that --check refuses a bad file. The other upstream_*
 * keys need it. Returns 0 or -errno with err set.
 */
static int
proxy_tls_start(struct proxy *p, char *err, size_t errlen)
{
    const struct proxy_config *cfg = p->cfg;
    struct ioloop_tls_options o = {
        .size = sizeof(o),
        .ca = cfg->upstream_ca,
        .cert = cfg->upstream_cert,
        .key = cfg->upstream_key,
    };
    const char *stray = cfg->upstream_ca != NULL     ? "upstream_ca"
                        : cfg->upstream_server_name ? "upstream_server_name"
                        : cfg->upstream_cert != NULL ? "upstream_cert"
                        : cfg->upstream_key != NULL  ? "upstream_key"
                                                     : NULL;

    if (!cfg->upstream_tls) {
        if (stray != NULL) {
            snprintf(err, errlen, "config.%s: needs \"upstream_tls\": true",
                     stray);
            return -EINVAL;
        }
        return 0;
    }
    if ((cfg->upstream_cert == NULL) != (cfg->upstream_key == NULL)) {
        snprintf(err, errlen,
                 "config.%s: upstream_cert and upstream_key go together: "
                 "set both or neither",
                 cfg->upstream_cert == NULL ? "upstream_key"
                                            : "upstream_cert");
        return -EINVAL;
    }
    if (!IOLOOP_API_HAS(p->api, tls_client_new)) {
        snprintf(err, errlen, "config.upstream_tls: this host has no TLS "
                              "client (plugin ABI 1.1)");
        return -ENOTSUP;
    }
    p->up_tls = p->api->tls_client_new(p->inst, &o, err, errlen);
    return p->up_tls != NULL ? 0 : -errno;
}

/*
 * upstream's PORT must be 1 to 65535 and its brackets balanced, so that a
 * bad one is refused at start rather than at every client (connect_tcp
 * checks the host). Returns 0 or -EINVAL with err set.
 */
static int
proxy_upstream_check(const char *s, char *err, size_t errlen)
{
    const char *colon = strrchr(s, ':'), *p;
    unsigned long port = 0;

    if (colon == NULL || colon == s) {
        goto bad;
    }
    for (p = colon + 1; *p >= '0' && *p <= '9' && p - colon <= 5; p++) {
        port = port * 10 + (unsigned long) (*p - '0');
    }
    if (*p != '\0' || port == 0 || port > 65535
        || (s[0] == '[') != (colon[-1] == ']')) {
        goto bad;
    }
    return 0;

bad:
    snprintf(err, errlen,
             "config.upstream: \"%s\": expected \"HOST:PORT\" or "
             "\"[IPV6]:PORT\", PORT 1 to 65535",
             s);
    return -EINVAL;
}

/*
 * The listener is readable: accepts up to PROXY_ACCEPT_BATCH clients.
 * On EMFILE/ENFILE the host already closed the pending connection and
 * warned, so that is not an error here.
 */
static int
proxy_on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct proxy *p = arg;
    int fds[PROXY_ACCEPT_BATCH], n, rc = 0;

    (void) loop;
    (void) events;
    n = p->api->accept_batch(p->inst, fd, fds, PROXY_ACCEPT_BATCH);
    if (n == -ECONNABORTED || n == -EPROTO || n == -EMFILE || n == -ENFILE) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int r;

        if (p->nconns >= (uint64_t) p->cfg->max_connections) {
            http__shed(p->api, p->inst, &p->shed, fds[i],
                       (uint32_t) p->cfg->max_connections);
            p->api->counter_add(p->inst, p->shed_counter, 1);
            continue;
        }
        r = proxy_conn_open(p, fds[i]);
        rc = rc < 0 ? rc : r;
    }
    return n < 0 ? n : rc;
}
