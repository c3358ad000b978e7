/* bench/timers/libev.c: libev ev_timer (a 4-ary heap). */
#include "timers_bench.h"

#include <stdio.h>
#include <stdlib.h>

#include <ev.h>

#include "bench.h"

struct libev_ctx {
    struct ev_loop *loop;
    ev_timer *w;
    size_t fired;
    size_t target;
};

static void
libev_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct libev_ctx *c = w->data;

    (void) revents;
    if (++c->fired == c->target) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
libev_create(const void *param, size_t t, char *err, size_t errlen)
{
    struct libev_ctx *c = bench_calloc(1, sizeof(*c));

    (void) param;
    c->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (c->loop == NULL) {
        snprintf(err, errlen, "ev_loop_new(EVBACKEND_EPOLL) failed");
        free(c);
        return NULL;
    }
    c->w = bench_calloc(t, sizeof(*c->w));
    for (size_t i = 0; i < t; i++) {
        ev_init(&c->w[i], libev_on_timer);
        c->w[i].data = c;
    }
    return c;
}

static void
libev_add_all(void *ctx, const int64_t *delay_ns, size_t t)
{
    struct libev_ctx *c = ctx;

    ev_now_update(c->loop);
    for (size_t i = 0; i < t; i++) {
        ev_timer_set(&c->w[i], (ev_tstamp) delay_ns[i] / 1e9, 0.);
        ev_timer_start(c->loop, &c->w[i]);
    }
}

static void
libev_cancel_odd(void *ctx, size_t t)
{
    struct libev_ctx *c = ctx;

    for (size_t i = 1; i < t; i += 2) {
        ev_timer_stop(c->loop, &c->w[i]);
    }
}

static void
libev_fire(void *ctx, size_t survivors)
{
    struct libev_ctx *c = ctx;

    c->fired = 0;
    c->target = survivors;
    ev_run(c->loop, 0);
}

static void
libev_destroy(void *ctx)
{
    struct libev_ctx *c = ctx;

    ev_loop_destroy(c->loop);
    free(c->w);
    free(c);
}

const struct tm_ops tm_libev = {
    .name = "libev",
    .create = libev_create,
    .add_all = libev_add_all,
    .cancel_odd = libev_cancel_odd,
    .fire = libev_fire,
    .destroy = libev_destroy,
};
