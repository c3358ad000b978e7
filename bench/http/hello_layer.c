/*
 * bench/http/hello_layer.c: the tornado demo (tornado_hello.py) on the
 * host's HTTP layer, for bench/http/run.sh and bench/tls/run.sh: a route
 * of the manifest's "servers" sends requests here and each is answered
 * "hello". No config. The layer does the rest (parsing, limits, keep-alive,
 * Date, TLS), which is what these benchmarks measure.
 */

#include <ioloop/plugin.h>

static void
hello_get(ioloop_http_request_t *req, void *arg)
{
    const struct ioloop_api *api = arg;

    api->http_finish(req, "hello", 5);
}

static int
hello_init(const struct ioloop_api *api, ioloop_instance_t *inst,
           const void *config, void **state, char *err, size_t errlen)
{
    struct ioloop_http_handler h = {
        .size = sizeof(h),
        .methods = "GET",
        .cb = hello_get,
        .arg = (void *) api,
    };

    (void) config;
    *state = NULL;
    return api->http_handle(inst, &h, err, errlen);
}

/* Nothing to free: the host drops the handler with the instance. */
static void
hello_fini(void *state)
{
    (void) state;
}

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "hello_layer",
    .version = "1.0.0",
    .description = "Answers \"hello\" through the host's HTTP layer "
                   "(benchmarks only)",
    .init = hello_init,
    .fini = hello_fini,
};
