/*
 * bench/callbacks/ioloop.c: ioloop_add_callback from the loop thread while
 * the loop runs (from inside a callback), the path plugins take. A post
 * made while no thread runs the loop takes its lock instead (another
 * thread may be about to start it): see docs/architecture.md.
 */
#include "callbacks.h"

#include <errno.h>
#include <stdlib.h>

#include "bench.h"
#include "ioloop_open.h"

struct ioloop_ctx {
    ioloop_loop_t *loop;
    size_t ran;
    size_t target;
};

static int
ioloop_on_callback(ioloop_loop_t *loop, void *arg)
{
    struct ioloop_ctx *c = arg;

    if (++c->ran == c->target) {
        ioloop_stop(loop);
    }
    return 0;
}

static void *
ioloop_create(const void *param, size_t n, char *err, size_t errlen)
{
    struct ioloop_ctx *c = bench_calloc(1, sizeof(*c));

    (void) n;
    c->loop = bench_ioloop_new(param, err, errlen);
    if (c->loop == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

/* Runs on the loop: posts n callbacks (they run in the next iteration,
 * the dispatch) and stops the loop after this iteration. */
static int
ioloop_post_from_loop(ioloop_loop_t *loop, void *arg)
{
    struct ioloop_ctx *c = arg;

    for (size_t i = 0; i < c->target; i++) {
        int rc = ioloop_add_callback(loop, ioloop_on_callback, c);

        if (rc < 0) {
            errno = -rc;
            bench_die("ioloop_add_callback");
        }
    }
    ioloop_stop(loop);
    return 0;
}

static void
ioloop_post_all(void *ctx, size_t n)
{
    struct ioloop_ctx *c = ctx;
    int rc;

    c->target = n;
    rc = ioloop_add_callback(c->loop, ioloop_post_from_loop, c);
    if (rc < 0) {
        errno = -rc;
        bench_die("ioloop_add_callback");
    }
    ioloop_start(c->loop);
}

static size_t
ioloop_dispatch(void *ctx, size_t n)
{
    struct ioloop_ctx *c = ctx;

    c->ran = 0;
    c->target = n;
    ioloop_start(c->loop);
    return c->ran;
}

static void
ioloop_destroy(void *ctx)
{
    struct ioloop_ctx *c = ctx;

    ioloop_loop_free(c->loop);
    free(c);
}

const struct cb_ops cb_ioloop = {
    .name = "ioloop",
    .create = ioloop_create,
    .post_all = ioloop_post_all,
    .dispatch = ioloop_dispatch,
    .destroy = ioloop_destroy,
};
