/*
 * bench/callbacks/main.c: the callbacks driver. Usage: callbacks
 * BACKEND_DIR
 *
 * Each iteration of each contender posts 10^6 callbacks from the loop
 * thread (ns/post), then runs the loop until all of them ran
 * (ns/dispatch); both timed in thread CPU time (bench_cpu_ns).
 * Contenders take turns iteration by iteration, the order rotated each
 * time. Prints medians [min-max] and ratios to libev. With BENCH_IRCOUNT
 * (bench/ircount.sh, under callgrind): 10^4 callbacks, 2 warm-up + 1 timed
 * iteration, post + dispatch marked for callgrind.
 */
#include "callbacks.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ioloop_open.h"

#define NCALLBACKS 1000000
#define IR_CALLBACKS 10000 /* under callgrind (BENCH_IRCOUNT) */
#define NCONTENDERS 4
#define REFERENCE 1 /* libev */

enum { POST, DISPATCH, TOTAL, NPHASES };

struct contender {
    const struct cb_ops *ops;
    void *ctx;
    double *ns[NPHASES]; /* per timed iteration */
};

static size_t ncallbacks = NCALLBACKS;

static void iterate(struct contender *c, int record, int iter);
static void print_table(struct contender *c, int timed);

int
main(int argc, char **argv)
{
    struct contender c[NCONTENDERS] = {
        {.ops = &cb_ioloop}, {.ops = &cb_libev}, {.ops = &cb_libevent},
        {.ops = &cb_libuv},
    };
    struct ioloop_backend_lib lib;
    int warmups = 3, timed = 25;
    char err[256];

    if (argc != 2) {
        fprintf(stderr, "usage: %s BACKEND_DIR\n", argv[0]);
        return 2;
    }
    if (bench_quick()) {
        warmups = 1;
        timed = 5;
    }
    if (bench_ircount()) {
        warmups = 2; /* both callback vectors grown: the steady state */
        timed = 1;
        ncallbacks = IR_CALLBACKS;
    }
    if (bench_ioloop_open(argv[1], "epoll", &lib, err, sizeof(err)) < 0) {
        fprintf(stderr, "callbacks: %s\n", err);
        return 1;
    }
    for (int i = 0; i < NCONTENDERS; i++) {
        c[i].ctx = c[i].ops->create(c[i].ops == &cb_ioloop ? lib.ops : NULL,
                                    ncallbacks, err, sizeof(err));
        if (c[i].ctx == NULL) {
            fprintf(stderr, "callbacks: %s: %s\n", c[i].ops->name, err);
            return 1;
        }
        for (int ph = 0; ph < NPHASES; ph++) {
            c[i].ns[ph] = bench_calloc((size_t) timed, sizeof(double));
        }
    }
    for (int it = 0; it < warmups + timed; it++) {
        for (int k = 0; k < NCONTENDERS; k++) {
            iterate(&c[(k + it) % NCONTENDERS], it >= warmups,
                    it - warmups);
        }
    }
    print_table(c, timed);
    for (int i = 0; i < NCONTENDERS; i++) {
        c[i].ops->destroy(c[i].ctx);
    }
    return 0;
}

static void
iterate(struct contender *c, int record, int iter)
{
    int64_t t0, t1, t2;
    size_t ran;

    if (record && bench_ircount()) {
        bench_ir_begin("callbacks", "callback (post+dispatch)",
                       c->ops->name, ncallbacks);
    }
    t0 = bench_cpu_ns();
    c->ops->post_all(c->ctx, ncallbacks);
    t1 = bench_cpu_ns();
    ran = c->ops->dispatch(c->ctx, ncallbacks);
    t2 = bench_cpu_ns();
    if (record && bench_ircount()) {
        bench_ir_end();
    }
    if (ran != ncallbacks) {
        fprintf(stderr, "callbacks: %s ran %zu of %zu callbacks\n",
                c->ops->name, ran, ncallbacks);
        exit(1);
    }
    if (record) {
        c->ns[POST][iter] = (double) (t1 - t0) / (double) ncallbacks;
        c->ns[DISPATCH][iter] = (double) (t2 - t1) / (double) ncallbacks;
        c->ns[TOTAL][iter] = (double) (t2 - t0) / (double) ncallbacks;
    }
}

static void
print_table(struct contender *c, int timed)
{
    double ref[NPHASES];

    for (int ph = 0; ph < NPHASES; ph++) {
        ref[ph] = bench_stats(c[REFERENCE].ns[ph], (size_t) timed).median;
    }
    printf("callbacks: %zu callbacks posted from the loop thread, then "
           "dispatched; %d timed iterations per contender (after warm-up)\n",
           ncallbacks, timed);
    printf("  ns per callback (thread CPU time): median [min-max]; x libev = "
           "median / libev median\n");
    printf("  ioloop: ioloop_add_callback; libev: ev_feed_event; libevent: "
           "event_active; libuv: uv_idle_start + uv_idle_stop\n\n");
    printf("  %-10s  %-26s %-26s %s\n", "contender", "ns/post",
           "ns/dispatch", "ns/post+dispatch");
    for (int i = 0; i < NCONTENDERS; i++) {
        printf("  %-10s", c[i].ops->name);
        for (int ph = 0; ph < NPHASES; ph++) {
            bench_print_cell(c[i].ns[ph], (size_t) timed, ref[ph]);
        }
        printf("\n");
    }
    fflush(stdout);
}
