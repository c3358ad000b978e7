/*
 * tests/integration/modules/http_test.c: a plugin on the host's HTTP
 * server (the http_* members of the API), for the HTTP tests. Config:
 *   {"name": "a"}            put in every answer ("a: ...")
 *   {"server": "web", "prefix": "/own/"}
 *                            also declares a route of its own there
 *   {"stream": true}         its manifest-route handler streams bodies
 *   {"methods": "GET,POST"}  its manifest-route handler's methods
 * The last path segment says what a request gets:
 *   hello                "NAME: hello"
 *   info                 method, path, path_rest, query "a", header
 *                        "X-Test", scheme, remote ip, one per line
 *   echo                 the body back (buffered), or with "stream" its
 *                        byte count once on_end ran ("NAME: N bytes")
 *   later?ms=N           finished from a timer N ms later
 *   chunks?n=K           K writes "chunk I\n", then finish
 *   big?kb=N             N KiB written with http_write/http_flush
 *                        backpressure
 *   wait                 never finished until the client leaves: on_close
 *                        counts it, then finishes (expects -EPIPE)
 *   never                never finished (the host answers 503 at fini)
 *   status?code=N        status N, header X-Plugin: NAME, body "x"
 *   stats                "closed=C epipe=E" so far
 *   crash                raises SIGSEGV (the fault containment tests)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ioloop/plugin.h>

struct http_test_config {
    const char *name;
    const char *server;
    const char *prefix;
    bool stream;
    const char *methods;
};

static const struct ioloop_config_field http_test_schema[] = {
    IOLOOP_CONFIG_STRING(struct http_test_config, name, "t", 0,
                         "Put in every answer."),
    IOLOOP_CONFIG_STRING(struct http_test_config, server, NULL, 0,
                         "Server of the route of its own."),
    IOLOOP_CONFIG_STRING(struct http_test_config, prefix, NULL, 0,
                         "Prefix of the route of its own."),
    IOLOOP_CONFIG_BOOL(struct http_test_config, stream, "false", 0,
                       "Stream request bodies."),
    IOLOOP_CONFIG_STRING(struct http_test_config, methods, NULL, 0,
                         "Methods of the manifest-route handler."),
    IOLOOP_CONFIG_END,
};

struct http_test {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    const char *name;
    unsigned closed; /* on_close calls */
    unsigned epipe;  /* finish after on_close returned -EPIPE */
};

/* A request in progress (later, big, streamed echo). */
struct job {
    struct http_test *t;
    ioloop_http_request_t *req;
    size_t left;   /* big: KiB to write */
    size_t bytes;  /* streamed echo: bytes seen */
};

static const char *
last_segment(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

static void
answer(struct http_test *t, ioloop_http_request_t *req, const char *text)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s: %s", t->name, text);

    t->api->http_finish(req, buf, (size_t) n);
}

static int
later_fired(ioloop_loop_t *loop, void *arg)
{
    struct job *j = arg;

    (void) loop;
    answer(j->t, j->req, "later");
    free(j);
    return 0;
}

static void
big_write(ioloop_http_request_t *req, void *arg)
{
    struct job *j = arg;
    static char kib[1024];
    int rc = 0;

    memset(kib, 'b', sizeof(kib));
    while (j->left > 0 && rc == 0) {
        rc = j->t->api->http_write(req, kib, sizeof(kib));
        if (rc >= 0) {
            j->left--;
        }
    }
    if (rc == 1 && j->left > 0) {
        j->t->api->http_flush(req, big_write, j); /* wait for room */
        return;
    }
    j->t->api->http_finish(req, NULL, 0);
    free(j);
}

static void
waited_close(ioloop_http_request_t *req, void *arg)
{
    struct http_test *t = arg;

    t->closed++;
    if (t->api->http_write(req, "x", 1) == -EPIPE
        && t->api->http_finish(req, NULL, 0) == -EPIPE) {
        t->epipe++;
    }
}

static void
stream_data(ioloop_http_request_t *req, const char *data, size_t len,
            void *arg)
{
    struct job *j = arg;

    (void) req;
    (void) data;
    j->bytes += len;
}

static void
stream_end(ioloop_http_request_t *req, void *arg)
{
    struct job *j = arg;
    char text[64];

    snprintf(text, sizeof(text), "%zu bytes", j->bytes);
    answer(j->t, req, text);
    free(j);
}

static void
stream_closed(ioloop_http_request_t *req, void *arg)
{
    struct job *j = arg;

    j->t->closed++;
    j->t->api->http_finish(req, NULL, 0);
    free(j);
}

static struct job *
job_new(struct http_test *t, ioloop_http_request_t *req)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        t->api->http_set_status(req, 500);
        t->api->http_finish(req, NULL, 0);
        return NULL;
    }
    j->t = t;
    j->req = req;
    return j;
}

static void
handle(ioloop_http_request_t *req, void *arg)
{
    struct http_test *t = arg;
    const struct ioloop_api *api = t->api;
    const char *what = last_segment(api->http_path(req));
    const char *q;
    struct job *j;
    char text[1024];
    size_t len;

    if (strcmp(what, "hello") == 0) {
        answer(t, req, "hello");
    } else if (strcmp(what, "info") == 0) {
        q = api->http_query(req, "a");
        snprintf(text, sizeof(text),
                 "%s\npath=%s\nrest=%s\na=%s\nx-test=%s\nscheme=%s\nip=%s\n",
                 api->http_method(req), api->http_path(req),
                 api->http_path_rest(req), q != NULL ? q : "(none)",
                 api->http_header(req, "x-test") != NULL
                     ? api->http_header(req, "x-test")
                     : "(none)",
                 api->http_scheme(req), api->http_remote_ip(req));
        answer(t, req, text);
    } else if (strcmp(what, "crash") == 0) {
        raise(SIGSEGV);
    } else if (strcmp(what, "echo") == 0) {
        const char *body = api->http_body(req, &len);

        if (body != NULL) {
            api->http_finish(req, body, len);
            return;
        }
        j = job_new(t, req);
        if (j == NULL) {
            return;
        }
        if (api->http_read_body(req, stream_data, stream_end, j) < 0) {
            free(j);
            api->http_finish(req, NULL, 0); /* no body, not streaming */
            return;
        }
        api->http_on_close(req, stream_closed, j);
    } else if (strcmp(what, "later") == 0) {
        q = api->http_query(req, "ms");
        j = job_new(t, req);
        if (j != NULL
            && api->call_later(t->inst,
                               (ioloop_time_t) atoi(q != NULL ? q : "10")
                                   * IOLOOP_NS_PER_MS,
                               later_fired, j)
                   == 0) {
            free(j);
            api->http_finish(req, NULL, 0);
        }
    } else if (strcmp(what, "chunks") == 0) {
        q = api->http_query(req, "n");
        for (int i = 0, n = atoi(q != NULL ? q : "3"); i < n; i++) {
            int k = snprintf(text, sizeof(text), "chunk %d\n", i);

            api->http_write(req, text, (size_t) k);
        }
        api->http_finish(req, NULL, 0);
    } else if (strcmp(what, "big") == 0) {
        q = api->http_query(req, "kb");
        j = job_new(t, req);
        if (j != NULL) {
            j->left = (size_t) atoi(q != NULL ? q : "1");
            big_write(req, j);
        }
    } else if (strcmp(what, "wait") == 0) {
        api->http_on_close(req, waited_close, t);
    } else if (strcmp(what, "never") == 0) {
        /* the host answers 503 when the instance stops */
    } else if (strcmp(what, "status") == 0) {
        q = api->http_query(req, "code");
        api->http_set_status(req, atoi(q != NULL ? q : "200"));
        api->http_add_header(req, "X-Plugin", t->name);
        api->http_finish(req, "x", 1);
    } else if (strcmp(what, "stats") == 0) {
        snprintf(text, sizeof(text), "closed=%u epipe=%u", t->closed,
                 t->epipe);
        answer(t, req, text);
    } else {
        api->http_set_status(req, 404);
        answer(t, req, "no such thing");
    }
}

static int
http_test_init(const struct ioloop_api *api, ioloop_instance_t *inst,
               const void *config, void **state, char *err, size_t errlen)
{
    const struct http_test_config *cfg = config;
    struct http_test *t;
    int rc;

    if (!IOLOOP_API_HAS(api, http_finish)) {
        snprintf(err, errlen, "the host has no HTTP API");
        return -ENOTSUP;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    t->api = api;
    t->inst = inst;
    t->name = cfg->name;
    rc = api->http_handle(inst, &(struct ioloop_http_handler) {
                              .size = sizeof(struct ioloop_http_handler),
                              .methods = cfg->methods,
                              .flags = cfg->stream ? IOLOOP_HTTP_STREAM_BODY
                                                   : 0,
                              .cb = handle,
                              .arg = t,
                          }, err, errlen);
    if (rc == 0 && cfg->prefix != NULL) {
        rc = api->http_handle(inst, &(struct ioloop_http_handler) {
                                  .size = sizeof(struct ioloop_http_handler),
                                  .server = cfg->server,
                                  .prefix = cfg->prefix,
                                  .cb = handle,
                                  .arg = t,
                              }, err, errlen);
    }
    if (rc < 0) {
        free(t);
        return rc;
    }
    *state = t;
    return 0;
}

static void
http_test_fini(void *state)
{
    free(state);
}

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "http_test",
    .version = "0.0.1",
    .description = "answers requests through the host's HTTP server "
                   "(HTTP tests)",
    .config_schema = http_test_schema,
    .config_size = sizeof(struct http_test_config),
    .init = http_test_init,
    .fini = http_test_fini,
};
