/*
 * bench/pipechain/ioloop.c: ioloop-host's central loop on a backend .so
 * loaded through dlopen (param: its ops table), driven through the same
 * calls the host makes for a plugin.
 */
#include "pipechain.h"

#include <errno.h>

#include "bench.h"
#include "ioloop_open.h"

struct ioloop_ctx {
    ioloop_loop_t *loop;
    struct chain *ch;
};

static int
ioloop_on_read(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct ioloop_ctx *c = arg;

    (void) events;
    if (chain_readable(c->ch, fd)) {
        ioloop_stop(loop);
    }
    return 0;
}

static void *
ioloop_create(const void *param, char *err, size_t errlen)
{
    struct ioloop_ctx *c = bench_calloc(1, sizeof(*c));

    c->loop = bench_ioloop_new(param, err, errlen);
    if (c->loop == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

static void
ioloop_add_all(void *ctx, struct chain *ch)
{
    struct ioloop_ctx *c = ctx;

    c->ch = ch;
    for (int i = 0; i < ch->n; i++) {
        int rc = ioloop_add_handler(c->loop, ch->rd[i], IOLOOP_READ,
                                    ioloop_on_read, c);

        if (rc < 0) {
            errno = -rc;
            bench_die("ioloop_add_handler");
        }
    }
}

static void
ioloop_run(void *ctx)
{
    struct ioloop_ctx *c = ctx;

    ioloop_start(c->loop);
}

static void
ioloop_destroy(void *ctx)
{
    struct ioloop_ctx *c = ctx;

    for (int i = 0; i < c->ch->n; i++) {
        ioloop_remove_handler(c->loop, c->ch->rd[i]);
    }
    ioloop_loop_free(c->loop);
    free(c);
}

const struct pc_ops pc_ioloop = {
    .name = "ioloop",
    .create = ioloop_create,
    .add_all = ioloop_add_all,
    .run = ioloop_run,
    .destroy = ioloop_destroy,
};
