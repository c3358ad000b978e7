/*
 * bench/pipechain/raw_epoll.c: the reference, a minimal level-triggered
 * epoll loop with nothing between epoll_wait() and the handler.
 */
#include "pipechain.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sys/epoll.h>

#include "bench.h"

#define RAW_MAX_EVENTS 1024

struct raw_ctx {
    int epfd;
    struct chain *ch;
    struct epoll_event events[RAW_MAX_EVENTS];
};

static void *
raw_create(const void *param, char *err, size_t errlen)
{
    struct raw_ctx *c = bench_calloc(1, sizeof(*c));

    (void) param;
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        free(c);
        return NULL;
    }
    return c;
}

static void
raw_add_all(void *ctx, struct chain *ch)
{
    struct raw_ctx *c = ctx;

    c->ch = ch;
    for (int i = 0; i < ch->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = ch->rd[i]};

        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, ch->rd[i], &ev) < 0) {
            bench_die("epoll_ctl(ADD)");
        }
    }
}

static void
raw_run(void *ctx)
{
    struct raw_ctx *c = ctx;
    int done = 0;

    while (!done) {
        int n = epoll_wait(c->epfd, c->events, RAW_MAX_EVENTS, -1);

        if (n < 0 && errno != EINTR) {
            bench_die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            done |= chain_readable(c->ch, c->events[i].data.fd);
        }
    }
}

static void
raw_destroy(void *ctx)
{
    struct raw_ctx *c = ctx;

    close(c->epfd);
    free(c);
}

const struct pc_ops pc_raw_epoll = {
    .name = "raw epoll",
    .create = raw_create,
    .add_all = raw_add_all,
    .run = raw_run,
    .destroy = raw_destroy,
};
