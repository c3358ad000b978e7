/* examples/json_api/kv.c: JSON values at keys (the path after the prefix). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ioloop/plugin.h>
#include <jansson.h>

static const struct ioloop_api *api;

static void
handle(ioloop_http_request_t *req, void *store)
{
    const char *key = api->http_path_rest(req), *body;
    int put = strcmp(api->http_method(req), "PUT") == 0;
    json_t *value = put ? NULL : json_incref(json_object_get(store, key));
    size_t len;

    if (put) {
        body = api->http_body(req, &len);
        value = json_loadb(body, len, JSON_DECODE_ANY, NULL);
        json_object_set_nocheck(store, key, value); /* no-op if NULL */
    } else if (value && strcmp(api->http_method(req), "DELETE") == 0) {
        json_object_del(store, key);
    }
    if (value == NULL) { /* a body that is not JSON, or no such key */
        api->http_set_status(req, put ? 400 : 404);
        value = json_pack("{s:s}", "error", put ? "bad JSON" : "no such key");
    }
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    api->http_add_header(req, "Content-Type", "application/json");
    api->http_finish(req, text, text != NULL ? strlen(text) : 0);
    free(text);
    json_decref(value);
}

static int
kv_init(const struct ioloop_api *host, ioloop_instance_t *inst,
        const void *config, void **state, char *err, size_t errlen)
{
    struct ioloop_http_handler h = {.size = sizeof(h), .cb = handle,
                                    .methods = "GET,PUT,DELETE"};
    int rc = -ENOMEM;

    (void) config;
    api = host;
    if ((h.arg = *state = json_object()) != NULL
        && (rc = api->http_handle(inst, &h, err, errlen)) < 0) {
        json_decref(*state); /* init failed: fini will not run */
    }
    return rc;
}

static void
kv_fini(void *store)
{
    json_decref(store);
}

IOLOOP_PLUGIN_DEFINE(.name = "kv", .init = kv_init, .fini = kv_fini);
