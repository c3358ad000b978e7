/* bench/callbacks/libuv.c: libuv idle handles that stop themselves. */
#include "callbacks.h"

#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "bench.h"

struct libuv_ctx {
    uv_loop_t loop;
    uv_idle_t *h;
    size_t n;
    size_t ran;
    size_t target;
};

static void
libuv_on_callback(uv_idle_t *h)
{
    struct libuv_ctx *c = h->data;

    uv_idle_stop(h);
    if (++c->ran == c->target) {
        uv_stop(&c->loop);
    }
}

static void *
libuv_create(const void *param, size_t n, char *err, size_t errlen)
{
    struct libuv_ctx *c = bench_calloc(1, sizeof(*c));
    int rc;

    (void) param;
    rc = uv_loop_init(&c->loop);
    if (rc < 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        free(c);
        return NULL;
    }
    c->n = n;
    c->h = bench_calloc(n, sizeof(*c->h));
    for (size_t i = 0; i < n; i++) {
        uv_idle_init(&c->loop, &c->h[i]);
        c->h[i].data = c;
    }
    return c;
}

static void
libuv_post_all(void *ctx, size_t n)
{
    struct libuv_ctx *c = ctx;

    for (size_t i = 0; i < n; i++) {
        uv_idle_start(&c->h[i], libuv_on_callback);
    }
}

static size_t
libuv_dispatch(void *ctx, size_t n)
{
    struct libuv_ctx *c = ctx;

    c->ran = 0;
    c->target = n;
    uv_run(&c->loop, UV_RUN_NOWAIT);
    return c->ran;
}

static void
libuv_destroy(void *ctx)
{
    struct libuv_ctx *c = ctx;

    for (size_t i = 0; i < c->n; i++) {
        uv_close((uv_handle_t *) &c->h[i], NULL);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c->h);
    free(c);
}

const struct cb_ops cb_libuv = {
    .name = "libuv",
    .create = libuv_create,
    .post_all = libuv_post_all,
    .dispatch = libuv_dispatch,
    .destroy = libuv_destroy,
};
