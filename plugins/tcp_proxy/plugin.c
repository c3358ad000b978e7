/*
 * plugins/tcp_proxy/plugin.c: a TCP proxy on the host's streams and
 * connect_tcp. Each client accepted on "listen" gets its own connection
 * to "upstream", and bytes are spliced both ways with backpressure.
 * Config: "listen" and "upstream" (required, "HOST:PORT"), "backlog",
 * "idle_timeout", "connect_timeout", "max_connections".
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "tcp_proxy.h"

/* Connections accepted per readiness event. */
#define PROXY_ACCEPT_BATCH 64
/* Defaults (docs/operations.md). */
#define PROXY_IDLE_TIMEOUT_DEFAULT (300 * IOLOOP_NS_PER_S)
#define PROXY_CONNECT_TIMEOUT_DEFAULT (10 * IOLOOP_NS_PER_S)
#define PROXY_MAX_CONNS_DEFAULT 10240
#define PROXY_MAX_CONNS_MAX (1u << 20)

static int proxy_init(const struct ioloop_api *api, ioloop_loop_t *loop,
                      const struct json_t *config, void **state, char *err,
                      size_t errlen);
static void proxy_fini(void *state);
static int proxy_config(const struct json_t *config, struct proxy_limits *l,
                        char *err, size_t errlen);
static int proxy_address(const struct json_t *config, const char *key,
                         const char **out, char *err, size_t errlen);
static int proxy_upstream_check(const char *s, char *err, size_t errlen);
static int proxy_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                           void *arg);

static const char *const proxy_config_keys[] = {
    "listen", "upstream", "backlog", "idle_timeout", "connect_timeout",
    "max_connections", NULL
};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .name = "tcp_proxy",
    .version = "1.0.0",
    .description = "TCP proxy: each client spliced to its own upstream "
                   "connection",
    .config_keys = proxy_config_keys,
    .init = proxy_init,
    .fini = proxy_fini,
    /* No drain: the host stops the listener and lets clients finish
     * until shutdown_timeout. */
};

/*
 * Starts one instance: validates config, listens and registers the
 * listener. Returns 0 with *state set, or -errno with one line in err and
 * nothing left behind.
 */
static int
proxy_init(const struct ioloop_api *api, ioloop_loop_t *loop,
           const struct json_t *config, void **state, char *err,
           size_t errlen)
{
    struct proxy *p;
    struct proxy_limits l;
    int rc;

    if (!IOLOOP_API_HAS(api, connect_cancel)) {
        snprintf(err, errlen, "the host has no connect_tcp (API 1.2)");
        return -ENOTSUP;
    }
    rc = proxy_config(config, &l, err, errlen);
    if (rc < 0) {
        return rc;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->api = api;
    p->loop = loop;
    p->limits = l;
    p->limits.upstream = strdup(l.upstream);
    if (p->limits.upstream == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    p->shed_counter = api->counter_register(loop, HTTP_SHED_COUNTER,
                                            HTTP_SHED_HELP, NULL, NULL);
    p->refused_counter = api->counter_register(
        loop, "ioloop_proxy_upstream_failures_total",
        "Upstream connections that failed or timed out.", NULL, NULL);
    rc = api->listen_tcp(loop, l.listen, l.backlog, 0, err, errlen);
    if (rc < 0) {
        goto fail;
    }
    p->listen_fd = rc;
    rc = api->add_handler(loop, p->listen_fd, IOLOOP_READ, proxy_on_accept,
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
    free(p->limits.upstream);
    free(p);
    return rc;
}

static void
proxy_fini(void *state)
{
    struct proxy *p = state;

    proxy_conns_free(p);
    p->api->remove_handler(p->loop, p->listen_fd);
    close(p->listen_fd);
    free(p->limits.upstream);
    free(p);
}

/*
 * Validates config into *l (upstream borrowed: the caller copies it).
 * Returns 0, or -EINVAL with one line in err naming the key.
 */
static int
proxy_config(const struct json_t *config, struct proxy_limits *l, char *err,
             size_t errlen)
{
    uint64_t backlog = 0, max = PROXY_MAX_CONNS_DEFAULT;
    const char *upstream;
    int rc;

    if (config != NULL && !json_is_object(config)) {
        snprintf(err, errlen, "config: expected an object");
        return -EINVAL;
    }
    /* Unknown keys were refused by the host (config_keys). */
    rc = proxy_address(config, "listen", &l->listen, err, errlen);
    if (rc == 0) {
        rc = proxy_address(config, "upstream", &upstream, err, errlen);
    }
    if (rc == 0) {
        rc = proxy_upstream_check(upstream, err, errlen);
        l->upstream = (char *) upstream; /* copied by proxy_init */
    }
    l->idle_timeout = PROXY_IDLE_TIMEOUT_DEFAULT;
    l->connect_timeout = PROXY_CONNECT_TIMEOUT_DEFAULT;
    if (rc == 0) {
        rc = http__config_uint(config, "backlog", 0, INT_MAX, &backlog, err,
                               errlen);
    }
    if (rc == 0) {
        rc = http__config_duration(config, "idle_timeout", &l->idle_timeout,
                                   err, errlen);
    }
    if (rc == 0) {
        rc = http__config_duration(config, "connect_timeout",
                                   &l->connect_timeout, err, errlen);
    }
    if (rc == 0) {
        rc = http__config_uint(config, "max_connections", 1,
                               PROXY_MAX_CONNS_MAX, &max, err, errlen);
    }
    l->backlog = (int) backlog;
    l->max_connections = (uint32_t) max;
    return rc;
}

/* config[key] must be a string "HOST:PORT" or "[V6]:PORT" (listen_tcp
 * and connect_tcp check the rest). Returns 0 or -EINVAL with err set. */
static int
proxy_address(const struct json_t *config, const char *key, const char **out,
              char *err, size_t errlen)
{
    const json_t *v = json_object_get(config, key);
    const char *s = json_string_value(v), *colon;

    colon = s != NULL ? strrchr(s, ':') : NULL;
    if (colon == NULL || colon == s || colon[1] == '\0') {
        snprintf(err, errlen, "config.%s: %s a string \"HOST:PORT\"", key,
                 v == NULL ? "missing, expected" : "expected");
        return -EINVAL;
    }
    *out = s;
    return 0;
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

    for (p = colon + 1; *p >= '0' && *p <= '9' && p - colon <= 5; p++) {
        port = port * 10 + (unsigned long) (*p - '0');
    }
    if (*p != '\0' || port == 0 || port > 65535
        || (s[0] == '[') != (colon[-1] == ']')) {
        snprintf(err, errlen,
                 "config.upstream: \"%s\": expected \"HOST:PORT\" or "
                 "\"[IPV6]:PORT\", PORT 1 to 65535",
                 s);
        return -EINVAL;
    }
    return 0;
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

    (void) events;
    n = p->api->accept_batch(loop, fd, fds, PROXY_ACCEPT_BATCH);
    if (n == -ECONNABORTED || n == -EPROTO || n == -EMFILE || n == -ENFILE) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int r;

        if (p->nconns >= p->limits.max_connections) {
            http__shed(p->api, loop, &p->shed, fds[i],
                       p->limits.max_connections);
            p->api->counter_add(loop, p->shed_counter, 1);
            continue;
        }
        r = proxy_conn_open(p, fds[i]);
        rc = rc < 0 ? rc : r;
    }
    return n < 0 ? n : rc;
}
