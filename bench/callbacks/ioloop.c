/* bench/callbacks/ioloop.c: ioloop_add_callback from the loop thread. */
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

static void
ioloop_post_all(void *ctx, size_t n)
{
    struct ioloop_ctx *c = ctx;

    for (size_t i = 0; i < n; i++) {
        int rc = ioloop_add_callback(c->loop, ioloop_on_callback, c);

        if (rc < 0) {
            errno = -rc;
            bench_die("ioloop_add_callback");
        }
    }
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
