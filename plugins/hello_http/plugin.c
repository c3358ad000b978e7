/*
 * plugins/hello_http/plugin.c: the hello_http plugin descriptor, instance
 * init/fini and the listener (accept loop). HTTP itself is in conn.c.
 */
#include "hello_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connections accepted per readiness event, so one busy listener cannot
 * starve the established connections. */
#define HELLO_ACCEPT_BATCH 64

static int hello_init(const struct ioloop_api *api, ioloop_instance_t *inst,
                      const void *config, void **state, char *err,
                      size_t errlen);
static void hello_fini(void *state);
static void hello_drain(void *state);
static int hello_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                           void *arg);
static void hello_counters(struct hello *h);

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "hello_http",
    .version = "1.0.0",
    .description = "HTTP/1.1 server answering fixed routes with fixed "
                   "bodies (the tornado hello demo)",
    .config_schema = hello__schema,
    .config_size = sizeof(struct hello_config),
    .init = hello_init,
    .fini = hello_fini,
    .drain = hello_drain,
};

/*
 * Starts one instance: renders the routes of config (validated by the
 * host), listens and registers the listener. Returns 0 with *state set,
 * or -errno with one line in err and nothing left behind.
 */
static int
hello_init(const struct ioloop_api *api, ioloop_instance_t *inst,
           const void *config, void **state, char *err, size_t errlen)
{
    const struct hello_config *cfg = config;
    struct hello *h;
    int rc;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    h->api = api;
    h->inst = inst;
    h->listen_fd = -1;
    h->date_sec = (time_t) -1;

    rc = hello__config_load(h, cfg, err, errlen);
    if (rc < 0) {
        goto fail;
    }
    hello_counters(h);
    rc = api->listen_tcp(inst, cfg->listen, h->backlog, 0, err, errlen);
    if (rc < 0) {
        goto fail;
    }
    h->listen_fd = rc;
    rc = api->add_handler(inst, h->listen_fd, IOLOOP_READ, hello_on_accept,
                          h);
    if (rc < 0) {
        snprintf(err, errlen, "add_handler(%d): %s", h->listen_fd,
                 strerror(-rc));
        goto fail;
    }
    *state = h;
    return 0;

fail:
    if (h->listen_fd >= 0) {
        close(h->listen_fd);
    }
    hello__config_free(h);
    free(h);
    return rc;
}

static void
hello_fini(void *state)
{
    struct hello *h = state;

    hello__conn_close_all(h);
    h->api->remove_handler(h->inst, h->listen_fd);
    close(h->listen_fd);
    hello__config_free(h);
    free(h);
}

/* Graceful stop: no new connections; idle ones close now, busy ones after
 * their response. */
static void
hello_drain(void *state)
{
    struct hello *h = state;

    h->api->remove_handler(h->inst, h->listen_fd);
    hello__conn_drain(h);
}

/*
 * Registers the instance's counters; one the host cannot keep (an older
 * host, no metrics) stays -1 and is simply not counted.
 */
static void
hello_counters(struct hello *h)
{
    static const char *const classes[HELLO_NCLASSES] = {"2xx", "4xx", "5xx"};
    static const char *const reasons[HELLO_NTIMEOUTS] = {
        "header", "body", "idle", "send"
    };
    const struct ioloop_api *api = h->api;
    int has = IOLOOP_API_HAS(api, counter_add);
    size_t i;

    for (i = 0; i < HELLO_NCLASSES; i++) {
        h->requests[i] = has ? api->counter_register(
                                   h->inst, "ioloop_http_requests_total",
                                   "HTTP requests answered, by status class.",
                                   "code", classes[i])
                             : -1;
    }
    for (i = 0; i < HELLO_NTIMEOUTS; i++) {
        h->timed_out[i] = has ? api->counter_register(
                                    h->inst, HTTP_TIMED_OUT_COUNTER,
                                    HTTP_TIMED_OUT_HELP, "reason",
                                    reasons[i])
                              : -1;
    }
    h->shed = has ? api->counter_register(h->inst, HTTP_SHED_COUNTER,
                                          HTTP_SHED_HELP, NULL, NULL)
                  : -1;
}

/*
 * The listener is readable: accepts up to HELLO_ACCEPT_BATCH connections.
 * Out of descriptors (EMFILE, ENFILE) the host has already closed the
 * pending connection and warned (at most once a second), so the
 * listener does not stay readable and nothing is logged here. Returns 0,
 * or -errno for any other accept or registration failure.
 */
static int
hello_on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct hello *h = arg;
    int fds[HELLO_ACCEPT_BATCH], n, rc = 0;

    (void) loop;
    (void) events;
    n = h->api->accept_batch(h->inst, fd, fds, HELLO_ACCEPT_BATCH);
    if (n == -ECONNABORTED || n == -EPROTO || n == -EMFILE || n == -ENFILE) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int r = hello__conn_open(h, fds[i]); /* closes fds[i] on failure */

        rc = rc < 0 ? rc : r;
    }
    return n < 0 ? n : rc;
}
