/* bench/timers/libevent.c: libevent evtimer (a binary min-heap). */
#include "timers_bench.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "bench.h"
#include "libevent_check.h"

struct libevent_ctx {
    struct event_base *base;
    struct event *ev;
    size_t fired;
    size_t target;
};

static void
libevent_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct libevent_ctx *c = arg;

    (void) fd;
    (void) what;
    if (++c->fired == c->target) {
        event_base_loopbreak(c->base);
    }
}

static void *
libevent_create(const void *param, size_t t, char *err, size_t errlen)
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
    c->ev = bench_calloc(t, sizeof(*c->ev));
    for (size_t i = 0; i < t; i++) {
        evtimer_assign(&c->ev[i], c->base, libevent_on_timer, c);
    }
    return c;
}

static void
libevent_add_all(void *ctx, const int64_t *delay_ns, size_t t)
{
    struct libevent_ctx *c = ctx;

    for (size_t i = 0; i < t; i++) {
        struct timeval tv = {
            .tv_sec = (time_t) (delay_ns[i] / 1000000000),
            .tv_usec = (suseconds_t) (delay_ns[i] % 1000000000 / 1000),
        };

        evtimer_add(&c->ev[i], &tv);
    }
}

static void
libevent_cancel_odd(void *ctx, size_t t)
{
    struct libevent_ctx *c = ctx;

    for (size_t i = 1; i < t; i += 2) {
        evtimer_del(&c->ev[i]);
    }
}

static void
libevent_fire(void *ctx, size_t survivors)
{
    struct libevent_ctx *c = ctx;

    c->fired = 0;
    c->target = survivors;
    event_base_loop(c->base, 0);
}

static void
libevent_destroy(void *ctx)
{
    struct libevent_ctx *c = ctx;

    event_base_free(c->base);
    free(c->ev);
    free(c);
}

const struct tm_ops tm_libevent = {
    .name = "libevent",
    .create = libevent_create,
    .add_all = libevent_add_all,
    .cancel_odd = libevent_cancel_odd,
    .fire = libevent_fire,
    .destroy = libevent_destroy,
};
