/* bench/pipechain/libevent.c: libevent 2.1, persistent EV_READ events. */
#include "pipechain.h"

#include <stdio.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "bench.h"
#include "libevent_check.h"

struct libevent_ctx {
    struct event_base *base;
    struct chain *ch;
    struct event *ev;
};

static void
libevent_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct libevent_ctx *c = arg;

    (void) what;
    if (chain_readable(c->ch, fd)) {
        event_base_loopbreak(c->base);
    }
}

static void *
libevent_create(const void *param, char *err, size_t errlen)
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
    return c;
}

static void
libevent_add_all(void *ctx, struct chain *ch)
{
    struct libevent_ctx *c = ctx;

    c->ch = ch;
    c->ev = bench_calloc((size_t) ch->n, sizeof(*c->ev));
    for (int i = 0; i < ch->n; i++) {
        if (event_assign(&c->ev[i], c->base, ch->rd[i],
                         EV_READ | EV_PERSIST, libevent_on_read, c) < 0
            || event_add(&c->ev[i], NULL) < 0) {
            bench_die("event_add");
        }
    }
}

static void
libevent_run(void *ctx)
{
    struct libevent_ctx *c = ctx;

    event_base_loop(c->base, 0);
}

static void
libevent_destroy(void *ctx)
{
    struct libevent_ctx *c = ctx;

    for (int i = 0; i < c->ch->n; i++) {
        event_del(&c->ev[i]);
    }
    event_base_free(c->base);
    free(c->ev);
    free(c);
}

const struct pc_ops pc_libevent = {
    .name = "libevent",
    .create = libevent_create,
    .add_all = libevent_add_all,
    .run = libevent_run,
    .destroy = libevent_destroy,
};
