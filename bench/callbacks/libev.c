/* bench/callbacks/libev.c: libev ev_feed_event on distinct watchers. */
#include "callbacks.h"

#include <stdio.h>
#include <stdlib.h>

#include <ev.h>

#include "bench.h"

struct libev_ctx {
    struct ev_loop *loop;
    ev_idle *w;
    size_t ran;
    size_t target;
};

static void
libev_on_callback(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct libev_ctx *c = w->data;

    (void) revents;
    if (++c->ran == c->target) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
libev_create(const void *param, size_t n, char *err, size_t errlen)
{
    struct libev_ctx *c = bench_calloc(1, sizeof(*c));

    (void) param;
    c->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (c->loop == NULL) {
        snprintf(err, errlen, "ev_loop_new(EVBACKEND_EPOLL) failed");
        free(c);
        return NULL;
    }
    c->w = bench_calloc(n, sizeof(*c->w));
    for (size_t i = 0; i < n; i++) {
        ev_idle_init(&c->w[i], libev_on_callback);
        c->w[i].data = c;
    }
    return c;
}

static void
libev_post_all(void *ctx, size_t n)
{
    struct libev_ctx *c = ctx;

    for (size_t i = 0; i < n; i++) {
        ev_feed_event(c->loop, &c->w[i], EV_CUSTOM);
    }
}

static size_t
libev_dispatch(void *ctx, size_t n)
{
    struct libev_ctx *c = ctx;

    c->ran = 0;
    c->target = n;
    ev_run(c->loop, EVRUN_NOWAIT);
    return c->ran;
}

static void
libev_destroy(void *ctx)
{
    struct libev_ctx *c = ctx;

    ev_loop_destroy(c->loop);
    free(c->w);
    free(c);
}

const struct cb_ops cb_libev = {
    .name = "libev",
    .create = libev_create,
    .post_all = libev_post_all,
    .dispatch = libev_dispatch,
    .destroy = libev_destroy,
};
