/* bench/pipechain/libuv.c: libuv, uv_poll handles (level-triggered). */
#include "pipechain.h"

#include <errno.h>
#include <stdio.h>

#include <uv.h>

#include "bench.h"

struct libuv_ctx {
    uv_loop_t loop;
    struct chain *ch;
    uv_poll_t *h;
};

static void
libuv_on_read(uv_poll_t *h, int status, int events)
{
    struct libuv_ctx *c = h->data;

    (void) status;
    (void) events;
    if (chain_readable(c->ch, c->ch->rd[h - c->h])) {
        uv_stop(&c->loop);
    }
}

static void *
libuv_create(const void *param, char *err, size_t errlen)
{
    struct libuv_ctx *c = bench_calloc(1, sizeof(*c));
    int rc;

    (void) param;
    rc = uv_loop_init(&c->loop);
    if (rc < 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        free(c);
        return NULL;
    }
    return c;
}

/* libuv hands watcher changes to the kernel on its next pass: run one. */
static void
libuv_add_all(void *ctx, struct chain *ch)
{
    struct libuv_ctx *c = ctx;

    c->ch = ch;
    c->h = bench_calloc((size_t) ch->n, sizeof(*c->h));
    for (int i = 0; i < ch->n; i++) {
        int rc = uv_poll_init(&c->loop, &c->h[i], ch->rd[i]);

        if (rc == 0) {
            rc = uv_poll_start(&c->h[i], UV_READABLE, libuv_on_read);
        }
        if (rc < 0) {
            errno = -rc; /* libuv's codes are -errno on Unix */
            bench_die("uv_poll_start");
        }
        c->h[i].data = c;
    }
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

static void
libuv_run(void *ctx)
{
    struct libuv_ctx *c = ctx;

    uv_run(&c->loop, UV_RUN_DEFAULT);
}

static void
libuv_destroy(void *ctx)
{
    struct libuv_ctx *c = ctx;

    for (int i = 0; i < c->ch->n; i++) {
        uv_close((uv_handle_t *) &c->h[i], NULL);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c->h);
    free(c);
}

const struct pc_ops pc_libuv = {
    .name = "libuv",
    .create = libuv_create,
    .add_all = libuv_add_all,
    .run = libuv_run,
    .destroy = libuv_destroy,
};
