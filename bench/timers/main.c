/*
 * bench/timers/main.c: the timers driver. Usage: timers BACKEND_DIR
 *
 * For T timers with pseudo-random delays in [0, 50 ms) (the same sequence
 * for everyone), each iteration of each contender: add all (ns/add),
 * cancel every other one (ns/cancel), sleep until every deadline has
 * passed, then time the loop passes that fire the T/2 survivors
 * (ns/fire), each phase timed in thread CPU time (bench_cpu_ns).
 * Contenders take turns iteration by iteration, the order rotated each
 * time. Prints medians [min-max] and ratios to libev. With BENCH_IRCOUNT
 * (bench/ircount.sh, under callgrind): T = 10^4 only, 2 warm-up + 1 timed
 * iteration, each timed phase marked for callgrind.
 */
#include "timers_bench.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ioloop_open.h"

#define MAX_DELAY_NS (50 * 1000000LL)
#define SLACK_NS (2 * 1000000LL) /* past the last deadline, for ms clocks */
#define NCONTENDERS 4
#define REFERENCE 1 /* libev */
#define IR_TIMERS 10000 /* under callgrind (BENCH_IRCOUNT) */

enum { ADD, CANCEL, FIRE, NPHASES };

struct contender {
    const struct tm_ops *ops;
    void *ctx;
    double *ns[NPHASES]; /* per timed iteration */
};

struct plan {
    size_t t;
    int warmups;
    int timed;
};

static void run_size(const struct plan *p, const void *epoll_ops);
static void iterate(struct contender *c, const int64_t *delay, size_t t,
                    int record, int iter);
static void ir_begin(const struct contender *c, const char *op, size_t nops,
                     int record);
static void ir_end(int record);
static void print_table(struct contender *c, const struct plan *p);

int
main(int argc, char **argv)
{
    struct ioloop_backend_lib lib;
    struct plan plans[2] = {{10000, 3, 25}, {1000000, 2, 7}};
    int nplans = 2;
    char err[256];

    if (argc != 2) {
        fprintf(stderr, "usage: %s BACKEND_DIR\n", argv[0]);
        return 2;
    }
    if (bench_quick()) {
        plans[0] = (struct plan){10000, 1, 5};
        plans[1] = (struct plan){1000000, 1, 3};
    }
    if (bench_ircount()) {
        plans[0] = (struct plan){IR_TIMERS, 2, 1};
        nplans = 1;
    }
    if (bench_ioloop_open(argv[1], "epoll", &lib, err, sizeof(err)) < 0) {
        fprintf(stderr, "timers: %s\n", err);
        return 1;
    }
    printf("timers: delays pseudo-random in [0, 50 ms); add all, cancel "
           "every other one, fire the survivors after every deadline "
           "passed\n");
    printf("  ns per timer (thread CPU time): median [min-max] over the "
           "timed iterations; x libev = median / libev median\n");
    for (int i = 0; i < nplans; i++) {
        run_size(&plans[i], lib.ops);
    }
    return 0;
}

static void
run_size(const struct plan *p, const void *epoll_ops)
{
    struct contender c[NCONTENDERS] = {
        {.ops = &tm_ioloop}, {.ops = &tm_libev}, {.ops = &tm_libevent},
        {.ops = &tm_libuv},
    };
    int64_t *delay = bench_calloc(p->t, sizeof(*delay));
    uint64_t seed = 42;
    char err[256];

    for (size_t i = 0; i < p->t; i++) {
        delay[i] = (int64_t) (bench_rand(&seed) % MAX_DELAY_NS);
    }
    for (int i = 0; i < NCONTENDERS; i++) {
        c[i].ctx = c[i].ops->create(c[i].ops == &tm_ioloop ? epoll_ops : NULL,
                                    p->t, err, sizeof(err));
        if (c[i].ctx == NULL) {
            fprintf(stderr, "timers: %s: %s\n", c[i].ops->name, err);
            exit(1);
        }
        for (int ph = 0; ph < NPHASES; ph++) {
            c[i].ns[ph] = bench_calloc((size_t) p->timed, sizeof(double));
        }
    }
    for (int it = 0; it < p->warmups + p->timed; it++) {
        for (int k = 0; k < NCONTENDERS; k++) {
            iterate(&c[(k + it) % NCONTENDERS], delay, p->t,
                    it >= p->warmups, it - p->warmups);
        }
    }
    print_table(c, p);
    for (int i = 0; i < NCONTENDERS; i++) {
        c[i].ops->destroy(c[i].ctx);
        for (int ph = 0; ph < NPHASES; ph++) {
            free(c[i].ns[ph]);
        }
    }
    free(delay);
}

static void
iterate(struct contender *c, const int64_t *delay, size_t t, int record,
        int iter)
{
    size_t survivors = t - t / 2;
    int64_t t0, t1, t2, t3, t4, t5, added;

    /* Outside valgrind the markers are two untimed no-op calls. */
    ir_begin(c, "timer add", t, record);
    t0 = bench_cpu_ns();
    c->ops->add_all(c->ctx, delay, t);
    added = bench_now_ns();
    t1 = bench_cpu_ns();
    ir_end(record);
    ir_begin(c, "timer cancel", t / 2, record);
    t2 = bench_cpu_ns();
    c->ops->cancel_odd(c->ctx, t);
    t3 = bench_cpu_ns();
    ir_end(record);
    bench_sleep_until(added + MAX_DELAY_NS + SLACK_NS);
    ir_begin(c, "timer fire", survivors, record);
    t4 = bench_cpu_ns();
    c->ops->fire(c->ctx, survivors);
    t5 = bench_cpu_ns();
    ir_end(record);
    if (record) {
        c->ns[ADD][iter] = (double) (t1 - t0) / (double) t;
        c->ns[CANCEL][iter] = (double) (t3 - t2) / (double) (t / 2);
        c->ns[FIRE][iter] = (double) (t5 - t4) / (double) survivors;
    }
}

/* Marks a timed phase for callgrind (BENCH_IRCOUNT only). */
static void
ir_begin(const struct contender *c, const char *op, size_t nops, int record)
{
    if (record && bench_ircount()) {
        bench_ir_begin("timers", op, c->ops->name, nops);
    }
}

static void
ir_end(int record)
{
    if (record && bench_ircount()) {
        bench_ir_end();
    }
}

static void
print_table(struct contender *c, const struct plan *p)
{
    double ref[NPHASES];

    for (int ph = 0; ph < NPHASES; ph++) {
        ref[ph] = bench_stats(c[REFERENCE].ns[ph], (size_t) p->timed).median;
    }
    printf("\n  T=%zu: %d warm-up + %d timed iterations per contender\n",
           p->t, p->warmups, p->timed);
    printf("  %-10s  %-26s %-26s %s\n", "contender", "ns/add", "ns/cancel",
           "ns/fire");
    for (int i = 0; i < NCONTENDERS; i++) {
        printf("  %-10s", c[i].ops->name);
        for (int ph = 0; ph < NPHASES; ph++) {
            bench_print_cell(c[i].ns[ph], (size_t) p->timed, ref[ph]);
        }
        printf("\n");
    }
    fflush(stdout);
}
