/*
 * plugins/status/plugin.c: the host's health through its HTTP server.
 * The manifest routes paths to the instance (recommended: the exact paths
 * "/healthz", "/readyz" and "/metrics"; a prefix such as "/status/" works
 * too), and the last segment of the request's path picks the answer:
 *
 *   metrics  200 with the host's metrics (every worker's) in the
 *            Prometheus text format 0.0.4 (503 if the host keeps none)
 *   healthz  200 "ok" while the process runs its loop (liveness)
 *   readyz   200 "ready", or 503 "draining" once a graceful stop began
 *            (readiness: a load balancer stops sending new requests)
 *   other    404
 *
 * /readyz cannot answer 200 before every instance has started: the
 * host's servers accept their first connection only after every init of
 * the process returned (a route whose instance failed to start stops the
 * process instead), so any answer at all comes from a fully started
 * process. Only GET (and HEAD) is served; the host answers 405 to others.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ioloop/plugin.h>

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* One instance: whether it drains, and the last rendering, reused. */
struct status {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    bool draining;
    char *body;
    size_t body_cap;
};

/*
 * Renders the metrics into st->body, growing it when the text outgrew it
 * (by a quarter more than needed, so growth is rare). Returns the length
 * or -errno.
 */
static int
render(struct status *st)
{
    const struct ioloop_api *api = st->api;
    int n = -ENOBUFS, need;
    size_t cap;
    char *body;

    if (st->body != NULL) {
        n = api->metrics_render(st->inst, st->body, st->body_cap);
    }
    if (n != -ENOBUFS) {
        return n;
    }
    need = api->metrics_render(st->inst, NULL, 0);
    if (need < 0) {
        return need;
    }
    cap = (size_t) need + (size_t) need / 4 + 1024;
    body = realloc(st->body, cap);
    if (body == NULL) {
        return -ENOMEM;
    }
    st->body = body;
    st->body_cap = cap;
    return api->metrics_render(st->inst, st->body, st->body_cap);
}

/* Finishes req with status and a text/plain body. */
static void
text(struct status *st, ioloop_http_request_t *req, int status,
     const char *body)
{
    st->api->http_set_status(req, status);
    st->api->http_add_header(req, "Content-Type", TEXT_TYPE);
    st->api->http_finish(req, body, strlen(body));
}

static void
metrics(struct status *st, ioloop_http_request_t *req)
{
    int n = render(st);

    if (n < 0) {
        st->api->log(st->inst, IOLOOP_LOG_WARN, "metrics_render failed: %s",
                     strerror(-n));
        text(st, req, 503, "metrics unavailable\n");
        return;
    }
    st->api->http_add_header(req, "Content-Type", METRICS_TYPE);
    st->api->http_finish(req, st->body, (size_t) n);
}

static void
get(ioloop_http_request_t *req, void *arg)
{
    struct status *st = arg;
    const char *path = st->api->http_path(req);
    const char *slash = strrchr(path, '/');
    const char *last = slash != NULL ? slash + 1 : path;

    if (strcmp(last, "metrics") == 0) {
        metrics(st, req);
    } else if (strcmp(last, "healthz") == 0) {
        text(st, req, 200, "ok\n");
    } else if (strcmp(last, "readyz") == 0) {
        text(st, req, st->draining ? 503 : 200,
             st->draining ? "draining\n" : "ready\n");
    } else {
        text(st, req, 404, "Not Found\n");
    }
}

/*
 * Starts one instance: checks that the host has an HTTP server and
 * metrics, and registers the handler of the instance's routes. Returns
 * 0 with *state set, or -errno with one line in err.
 */
static int
status_init(const struct ioloop_api *api, ioloop_instance_t *inst,
            const void *config, void **state, char *err, size_t errlen)
{
    struct status *st;
    int rc;

    (void) config;
    if (!IOLOOP_API_HAS(api, http_handle)) {
        snprintf(err, errlen, "this host has no HTTP server (its API table "
                              "is older than the plugin's)");
        return -ENOTSUP;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->api = api;
    st->inst = inst;
    rc = api->http_handle(inst, &(struct ioloop_http_handler) {
        .size = sizeof(struct ioloop_http_handler),
        .methods = "GET",
        .cb = get,
        .arg = st,
    }, err, errlen);
    if (rc < 0) {
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

    free(st->body);
    free(st);
}

/* A graceful stop began: /readyz answers 503 from now on (the host stops
 * accepting and closes the connections as they go idle). */
static void
status_drain(void *state)
{
    struct status *st = state;

    st->draining = true;
}

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "status",
    .version = "2.0.0",
    .description = "Prometheus metrics (/metrics), liveness (/healthz) and "
                   "readiness (/readyz) on the routes the manifest gives it",
    .init = status_init,
    .fini = status_fini,
    .drain = status_drain,
};
