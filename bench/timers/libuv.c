/*
 * bench/timers/libuv.c: libuv uv_timer (a binary heap). Its timeouts are
 * whole milliseconds: the delays are truncated to ms.
 */
#include "timers_bench.h"

#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "bench.h"

struct libuv_ctx {
    uv_loop_t loop;
    uv_timer_t *h;
    size_t t;
    size_t fired;
    size_t target;
};

static void
libuv_on_timer(uv_timer_t *h)
{
    struct libuv_ctx *c = h->data;

    if (++c->fired == c->target) {
        uv_stop(&c->loop);
    }
}

/* uv_timer_init (handle bookkeeping) is preallocation, not adding. */
static void *
libuv_create(const void *param, size_t t, char *err, size_t errlen)
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
    c->t = t;
    c->h = bench_calloc(t, sizeof(*c->h));
    for (size_t i = 0; i < t; i++) {
        uv_timer_init(&c->loop, &c->h[i]);
        c->h[i].data = c;
    }
    return c;
}

static void
libuv_add_all(void *ctx, const int64_t *delay_ns, size_t t)
{
    struct libuv_ctx *c = ctx;

    uv_update_time(&c->loop);
    for (size_t i = 0; i < t; i++) {
        uv_timer_start(&c->h[i], libuv_on_timer,
                       (uint64_t) (delay_ns[i] / 1000000), 0);
    }
}

static void
libuv_cancel_odd(void *ctx, size_t t)
{
    struct libuv_ctx *c = ctx;

    for (size_t i = 1; i < t; i += 2) {
        uv_timer_stop(&c->h[i]);
    }
}

static void
libuv_fire(void *ctx, size_t survivors)
{
    struct libuv_ctx *c = ctx;

    c->fired = 0;
    c->target = survivors;
    uv_run(&c->loop, UV_RUN_DEFAULT);
}

static void
libuv_destroy(void *ctx)
{
    struct libuv_ctx *c = ctx;

    for (size_t i = 0; i < c->t; i++) {
        uv_close((uv_handle_t *) &c->h[i], NULL);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c->h);
    free(c);
}

const struct tm_ops tm_libuv = {
    .name = "libuv",
    .create = libuv_create,
    .add_all = libuv_add_all,
    .cancel_odd = libuv_cancel_odd,
    .fire = libuv_fire,
    .destroy = libuv_destroy,
};
