/* bench/timers/ioloop.c: ioloop-host's call_later / cancel / timer pass. */
#include "timers_bench.h"

#include <stdlib.h>

#include "bench.h"
#include "ioloop_open.h"

struct ioloop_ctx {
    ioloop_loop_t *loop;
    ioloop_timer_t *handles;
    size_t fired;
    size_t target;
};

static int
ioloop_on_timer(ioloop_loop_t *loop, void *arg)
{
    struct ioloop_ctx *c = arg;

    if (++c->fired == c->target) {
        ioloop_stop(loop);
    }
    return 0;
}

static void *
ioloop_create(const void *param, size_t t, char *err, size_t errlen)
{
    struct ioloop_ctx *c = bench_calloc(1, sizeof(*c));

    c->loop = bench_ioloop_new(param, err, errlen);
    if (c->loop == NULL) {
        free(c);
        return NULL;
    }
    c->handles = bench_calloc(t, sizeof(*c->handles));
    return c;
}

static void
ioloop_add_all(void *ctx, const int64_t *delay_ns, size_t t)
{
    struct ioloop_ctx *c = ctx;

    ioloop__update_time(c->loop);
    for (size_t i = 0; i < t; i++) {
        c->handles[i] = ioloop_call_later(c->loop, delay_ns[i],
                                          ioloop_on_timer, c);
        if (c->handles[i] == 0) {
            bench_die("ioloop_call_later");
        }
    }
}

static void
ioloop_cancel_odd(void *ctx, size_t t)
{
    struct ioloop_ctx *c = ctx;

    for (size_t i = 1; i < t; i += 2) {
        ioloop_cancel(c->loop, c->handles[i]);
    }
}

static void
ioloop_fire(void *ctx, size_t survivors)
{
    struct ioloop_ctx *c = ctx;

    c->fired = 0;
    c->target = survivors;
    ioloop_start(c->loop);
}

static void
ioloop_destroy(void *ctx)
{
    struct ioloop_ctx *c = ctx;

    ioloop_loop_free(c->loop);
    free(c->handles);
    free(c);
}

const struct tm_ops tm_ioloop = {
    .name = "ioloop",
    .create = ioloop_create,
    .add_all = ioloop_add_all,
    .cancel_odd = ioloop_cancel_odd,
    .fire = ioloop_fire,
    .destroy = ioloop_destroy,
};
