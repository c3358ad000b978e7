/* bench/pipechain/libev.c: libev, ev_io watchers on its epoll backend. */
#include "pipechain.h"

#include <stdio.h>

#include <ev.h>

#include "bench.h"

struct libev_ctx {
    struct ev_loop *loop;
    struct chain *ch;
    ev_io *w;
};

static void
libev_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct libev_ctx *c = w->data;

    (void) revents;
    if (chain_readable(c->ch, w->fd)) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
libev_create(const void *param, char *err, size_t errlen)
{
    struct libev_ctx *c = bench_calloc(1, sizeof(*c));

    (void) param;
    c->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (c->loop == NULL) {
        snprintf(err, errlen, "ev_loop_new(EVBACKEND_EPOLL) failed");
        free(c);
        return NULL;
    }
    return c;
}

/* libev hands fd changes to the kernel on its next pass: run one. */
static void
libev_add_all(void *ctx, struct chain *ch)
{
    struct libev_ctx *c = ctx;

    c->ch = ch;
    c->w = bench_calloc((size_t) ch->n, sizeof(*c->w));
    for (int i = 0; i < ch->n; i++) {
        ev_io_init(&c->w[i], libev_on_read, ch->rd[i], EV_READ);
        c->w[i].data = c;
        ev_io_start(c->loop, &c->w[i]);
    }
    ev_run(c->loop, EVRUN_NOWAIT);
}

static void
libev_run(void *ctx)
{
    struct libev_ctx *c = ctx;

    ev_run(c->loop, 0);
}

static void
libev_destroy(void *ctx)
{
    struct libev_ctx *c = ctx;

    for (int i = 0; i < c->ch->n; i++) {
        ev_io_stop(c->loop, &c->w[i]);
    }
    ev_loop_destroy(c->loop);
    free(c->w);
    free(c);
}

const struct pc_ops pc_libev = {
    .name = "libev",
    .create = libev_create,
    .add_all = libev_add_all,
    .run = libev_run,
    .destroy = libev_destroy,
};
