/* bench/callbacks/libevent.c: libevent event_active on distinct events. */
#include "callbacks.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "bench.h"
#include "libevent_check.h"

struct libevent_ctx {
    struct event_base *base;
    struct event *ev;
    size_t ran;
    size_t target;
};

static void
libevent_on_callback(evutil_socket_t fd, short what, void *arg)
{
    struct libevent_ctx *c = arg;

    (void) fd;
    (void) what;
    if (++c->ran == c->target) {
        event_base_loopbreak(c->base);
    }
}

static void *
libevent_create(const void *param, size_t n, char *err, size_t errlen)
{
    struct libevent_ctx *c = bench_calloc(1, sizeof(*c));

    (void) param;
    c->base = event_base_new();
    if (c->base == NULL) {
        snprintf(err, errlen, "event_base_new failed");
        free(c);
        return NULL;
    }
    if (bench_libevent_check(c->base, err, errlen) < 0) {
        event_base_free(c->base);
        free(c);
        return NULL;
    }
    c->ev = bench_calloc(n, sizeof(*c->ev));
    for (size_t i = 0; i < n; i++) {
        event_assign(&c->ev[i], c->base, -1, 0, libevent_on_callback, c);
    }
    return c;
}

static void
libevent_post_all(void *ctx, size_t n)
{
    struct libevent_ctx *c = ctx;

    for (size_t i = 0; i < n; i++) {
        event_active(&c->ev[i], EV_TIMEOUT, 1);
    }
}

static size_t
libevent_dispatch(void *ctx, size_t n)
{
    struct libevent_ctx *c = ctx;

    c->ran = 0;
    c->target = n;
    event_base_loop(c->base, EVLOOP_NONBLOCK);
    return c->ran;
}

static void
libevent_destroy(void *ctx)
{
    struct libevent_ctx *c = ctx;

    event_base_free(c->base);
    free(c->ev);
    free(c);
}

const struct cb_ops cb_libevent = {
    .name = "libevent",
    .create = libevent_create,
    .post_all = libevent_post_all,
    .dispatch = libevent_dispatch,
    .destroy = libevent_destroy,
};
