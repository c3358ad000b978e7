/*
 * plugins/hello_http/plugin.c: tornado's hello demo in C. The manifest's
 * "servers" route requests to the instance (config/host.json: "/" on
 * 127.0.0.1:8888) and own the limits; GET (and HEAD) gets "hello", any
 * other method 405 from the host. bench/http/tornado_hello.py is the
 * Python side.
 */
#include <ioloop/plugin.h>

static const struct ioloop_api *api;

static void
get(ioloop_http_request_t *req, void *arg)
{
    (void) arg;
    api->http_add_header(req, "Content-Type", "text/plain; charset=UTF-8");
    api->http_finish(req, "hello", 5);
}

static int
hello_init(const struct ioloop_api *host, ioloop_instance_t *inst,
           const void *config, void **state, char *err, size_t errlen)
{
    struct ioloop_http_handler h = {.size = sizeof(h), .methods = "GET",
                                    .cb = get};

    (void) config;
    (void) state;
    api = host;
    return api->http_handle(inst, &h, err, errlen);
}

static void
hello_fini(void *state)
{
    (void) state;
}

IOLOOP_PLUGIN_DEFINE(.name = "hello_http", .version = "2.0.0",
                     .description = "Answers \"hello\" to GET on the routes "
                                    "the manifest gives it (the tornado "
                                    "hello demo)",
                     .init = hello_init, .fini = hello_fini);
