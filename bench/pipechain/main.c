/*
 * bench/pipechain/main.c: the pipechain driver (libevent's bench.c, run
 * side by side). Usage: pipechain BACKEND_DIR
 *
 * For each N (pairs) and A (active chains), rounds of every contender in
 * turn, the order rotated each round; a contender's turn: make a loop,
 * register N handlers (timed: ns/add), run warm-up then timed iterations,
 * free the loop. Only one contender watches the pairs at a time, so no
 * other epoll set is woken by a write; and with one timed iteration per
 * turn, a burst of noise from elsewhere on the machine hits one sample of
 * one contender, not a whole series. One iteration seeds A bytes at pairs
 * k*(N/A) and times the run until A + W bytes were read. Prints one table
 * per (N, A) with ratios to raw epoll. With BENCH_IRCOUNT
 * (bench/ircount.sh, under callgrind): N = 1000, A = 1, ioloop on epoll
 * only, one round of 2 warm-up + 1 timed iteration marked for callgrind.
 */
#include "pipechain.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include <sys/socket.h>

#include "bench.h"
#include "ioloop_open.h"

#define WRITES 1000
#define MAX_CONTENDERS 16
#define FD_RESERVE 64 /* stdio, loops' own fds, libraries' extras */
#define LONG_WARMUP_US 100000.0 /* one such warm-up iteration is enough */

struct contender {
    const struct pc_ops *ops;
    const void *param;
    uint32_t max_fd; /* 0: none */
    char label[32];
    char skipped[160]; /* why it did not run this N; "" when it did */
    double *iter_us;   /* timed iterations of the current (N, A), CPU */
    double *wall_us;   /* the same, wall-clock */
    double *add_ns;    /* one per round */
    size_t niter;
    size_t nadd;
    double spent_us; /* in iterations of the current (N, A) */
};

/* A contender past budget_us in one (N, A) runs no more iterations once
 * it has one timed sample: poll and select are O(N) per pass. */
struct plan {
    int rounds;
    int warmups; /* per round */
    int timed;   /* per round */
    double budget_us;
};

static size_t add_contenders(struct contender *c, const char *dir,
                             struct ioloop_backend_lib *libs,
                             const struct plan *p);
static int backend_names(const char *dir, char names[][32], int max);
static void chain_open(struct chain *ch, int n);
static void chain_close(struct chain *ch);
static void run_contender(struct contender *c, struct chain *ch, int active,
                          const struct plan *p);
static double iterate(const struct pc_ops *ops, void *ctx, struct chain *ch,
                      int active, double *wall_us, const char *ir_label);
static void print_group(struct contender *c, size_t nc, int n, int active);

int
main(int argc, char **argv)
{
    static struct ioloop_backend_lib libs[MAX_CONTENDERS];
    static const int sizes_all[] = {100, 1000, 10000};
    static const int actives_all[] = {1, 100};
    /* Under callgrind (BENCH_IRCOUNT): N = 1000, A = 1, one event per
     * loop iteration, where the per-event overhead shows most. */
    static const int sizes_ir[] = {1000};
    static const int actives_ir[] = {1};
    const int *sizes = sizes_all, *actives = actives_all;
    size_t nsizes = 3, nactives = 2;
    struct contender c[MAX_CONTENDERS];
    struct plan p = {25, 2, 1, 10e6};
    long nofile;
    int max_pairs;
    size_t nc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s BACKEND_DIR\n", argv[0]);
        return 2;
    }
    if (bench_quick()) {
        p = (struct plan){5, 1, 1, 2e6};
    }
    if (bench_ircount()) {
        p = (struct plan){1, 2, 1, 10e6};
        sizes = sizes_ir;
        actives = actives_ir;
        nsizes = nactives = 1;
    }
    nofile = bench_raise_nofile();
    max_pairs = (int) ((nofile - FD_RESERVE) / 2 / 100 * 100);
    nc = add_contenders(c, argv[1], libs, &p);
    printf("pipechain: W=%d writes; %d rounds; in each, every contender "
           "in turn (order rotated): register N handlers, %d warm-up + %d "
           "timed iteration(s)\n",
           WRITES, p.rounds, p.warmups, p.timed);
    printf("  us = thread CPU time of one iteration (seed excluded), "
           "median/min/max; ns/read = median / (A + W); x raw = median / "
           "raw epoll median; wall us = wall-clock median; ns/add = "
           "registering N handlers / N (median over rounds); runs = timed "
           "iterations (fewer once a contender spent %.0f s on one (N, A))"
           "\n", p.budget_us / 1e6);
    for (size_t s = 0; s < nsizes; s++) {
        struct chain ch;
        int n = sizes[s];

        if (n > max_pairs) {
            printf("  N=%d needs %d fds; RLIMIT_NOFILE is %ld (soft raised "
                   "to hard): running N=%d instead\n",
                   n, 2 * n + FD_RESERVE, nofile, max_pairs);
            n = max_pairs;
        }
        chain_open(&ch, n);
        for (size_t a = 0; a < nactives; a++) {
            for (size_t i = 0; i < nc; i++) {
                c[i].niter = c[i].nadd = 0;
                c[i].spent_us = 0;
                c[i].skipped[0] = '\0';
            }
            for (int r = 0; r < p.rounds; r++) {
                for (size_t k = 0; k < nc; k++) {
                    run_contender(&c[(k + (size_t) r) % nc], &ch,
                                  actives[a], &p);
                }
            }
            print_group(c, nc, n, actives[a]);
        }
        chain_close(&ch);
    }
    return 0;
}

/* raw epoll (the reference) first, then ioloop on every backend .so of
 * dir (epoll first), then the libraries. */
static size_t
add_contenders(struct contender *c, const char *dir,
               struct ioloop_backend_lib *libs, const struct plan *p)
{
    char names[MAX_CONTENDERS][32];
    int nb = backend_names(dir, names, MAX_CONTENDERS - 4);

    if (bench_ircount()) {
        nb = nb > 0 ? 1 : 0; /* epoll only (it comes first) */
    }
    size_t nc = 0;
    char err[256];

    memset(c, 0, sizeof(*c) * MAX_CONTENDERS);
    c[nc].ops = &pc_raw_epoll;
    snprintf(c[nc++].label, sizeof(c->label), "raw epoll");
    for (int i = 0; i < nb; i++) {
        if (bench_ioloop_open(dir, names[i], &libs[i], err, sizeof(err))
            < 0) {
            printf("  ioloop/%s: not loaded: %s\n", names[i], err);
            continue;
        }
        c[nc].ops = &pc_ioloop;
        c[nc].param = libs[i].ops;
        c[nc].max_fd = libs[i].ops->max_fd;
        snprintf(c[nc++].label, sizeof(c->label), "ioloop/%.24s",
                 names[i]);
    }
    c[nc].ops = &pc_libev;
    snprintf(c[nc++].label, sizeof(c->label), "libev");
    c[nc].ops = &pc_libevent;
    snprintf(c[nc++].label, sizeof(c->label), "libevent");
    c[nc].ops = &pc_libuv;
    snprintf(c[nc++].label, sizeof(c->label), "libuv");
    for (size_t i = 0; i < nc; i++) {
        c[i].iter_us = bench_calloc((size_t) (p->rounds * p->timed),
                                    sizeof(double));
        c[i].wall_us = bench_calloc((size_t) (p->rounds * p->timed),
                                    sizeof(double));
        c[i].add_ns = bench_calloc((size_t) p->rounds, sizeof(double));
    }
    return nc;
}

/* The names of dir's *.so files, "epoll" first, the rest sorted. */
static int
backend_names(const char *dir, char names[][32], int max)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    int count = 0;

    if (n < 0) {
        bench_die(dir);
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(list[i]->d_name);

        if (len > 3 && len - 3 < 32 && count < max
            && strcmp(list[i]->d_name + len - 3, ".so") == 0) {
            snprintf(names[count], 32, "%.*s", (int) (len - 3),
                     list[i]->d_name);
            if (strcmp(names[count], "epoll") == 0 && count > 0) {
                memmove(names[1], names[0], 32 * (size_t) count);
                snprintf(names[0], 32, "epoll");
            }
            count++;
        }
        free(list[i]);
    }
    free(list);
    return count;
}

static void
chain_open(struct chain *ch, int n)
{
    int max_fd = 0;

    ch->n = n;
    ch->rd = bench_calloc((size_t) n, sizeof(int));
    ch->wr = bench_calloc((size_t) n, sizeof(int));
    for (int i = 0; i < n; i++) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       sv) < 0) {
            bench_die("socketpair");
        }
        ch->rd[i] = sv[0];
        ch->wr[i] = sv[1];
        max_fd = sv[0] > max_fd ? sv[0] : max_fd;
    }
    ch->max_fd = max_fd;
    ch->next_wr = bench_calloc((size_t) max_fd + 1, sizeof(int));
    for (int i = 0; i < n; i++) {
        ch->next_wr[ch->rd[i]] = ch->wr[(i + 1) % n];
    }
}

static void
chain_close(struct chain *ch)
{
    for (int i = 0; i < ch->n; i++) {
        close(ch->rd[i]);
        close(ch->wr[i]);
    }
    free(ch->rd);
    free(ch->wr);
    free(ch->next_wr);
}

/* One round of one contender: loop, handlers, iterations, teardown. */
static void
run_contender(struct contender *c, struct chain *ch, int active,
              const struct plan *p)
{
    char err[256] = "";
    int64_t t0;
    void *ctx;

    if (c->skipped[0] != '\0'
        || (c->niter > 0 && c->spent_us > p->budget_us)) {
        return;
    }
    if (c->max_fd != 0 && (uint32_t) ch->max_fd >= c->max_fd) {
        snprintf(c->skipped, sizeof(c->skipped),
                 "skipped: its fds must stay below %u", c->max_fd);
        return;
    }
    ctx = c->ops->create(c->param, err, sizeof(err));
    if (ctx == NULL) {
        snprintf(c->skipped, sizeof(c->skipped), "skipped: %s", err);
        return;
    }
    t0 = bench_cpu_ns();
    c->ops->add_all(ctx, ch);
    c->add_ns[c->nadd++] = (double) (bench_cpu_ns() - t0) / ch->n;
    for (int i = 0; i < p->warmups; i++) {
        double wall;
        double us = iterate(c->ops, ctx, ch, active, &wall, NULL);

        c->spent_us += us;
        if (us > LONG_WARMUP_US) {
            break;
        }
    }
    for (int i = 0; i < p->timed; i++) {
        if (c->niter > 0 && c->spent_us > p->budget_us) {
            break;
        }
        c->iter_us[c->niter] = iterate(c->ops, ctx, ch, active,
                                       &c->wall_us[c->niter], c->label);
        c->spent_us += c->iter_us[c->niter++];
    }
    c->ops->destroy(ctx);
}

/* Seeds the chains and times the run: returns its thread CPU time and
 * stores its wall-clock time in *wall_us (microseconds). With ir_label
 * (a timed iteration) and BENCH_IRCOUNT, the run is marked for callgrind
 * as A + W events. */
static double
iterate(const struct pc_ops *ops, void *ctx, struct chain *ch, int active,
        double *wall_us, const char *ir_label)
{
    int ir = ir_label != NULL && bench_ircount();
    int space = ch->n / active;
    int64_t t0, t1, w0;

    ch->writes_left = WRITES;
    ch->reads_left = active + WRITES;
    for (int k = 0; k < active; k++) {
        if (write(ch->wr[k * space], "e", 1) != 1) {
            bench_die("seed write");
        }
    }
    if (ir) {
        char op[48];

        snprintf(op, sizeof(op), "event (N=%d A=%d)", ch->n, active);
        bench_ir_begin("pipechain", op, ir_label, (size_t) (active + WRITES));
    }
    w0 = bench_now_ns();
    t0 = bench_cpu_ns();
    ops->run(ctx);
    t1 = bench_cpu_ns();
    if (ir) {
        bench_ir_end();
    }
    *wall_us = (double) (bench_now_ns() - w0) / 1e3;
    if (ch->reads_left != 0 || ch->writes_left != 0) {
        fprintf(stderr, "pipechain: a run stopped early\n");
        exit(1);
    }
    return (double) (t1 - t0) / 1e3;
}

static void
print_group(struct contender *c, size_t nc, int n, int active)
{
    struct bench_stats ref = bench_stats(c[0].iter_us, c[0].niter);
    struct bench_stats wref = bench_stats(c[0].wall_us, c[0].niter);

    printf("\n  N=%d A=%d\n", n, active);
    printf("  %-15s %9s %9s %9s %7s %6s %9s %6s %6s %4s\n", "contender",
           "median us", "min us", "max us", "ns/read", "x raw", "wall us",
           "x raw", "ns/add", "runs");
    for (size_t i = 0; i < nc; i++) {
        struct bench_stats t, w, add;

        if (c[i].skipped[0] != '\0') {
            printf("  %-15s %s\n", c[i].label, c[i].skipped);
            continue;
        }
        t = bench_stats(c[i].iter_us, c[i].niter);
        w = bench_stats(c[i].wall_us, c[i].niter);
        add = bench_stats(c[i].add_ns, c[i].nadd);
        printf("  %-15s %9.0f %9.0f %9.0f %7.0f %6.3f %9.0f %6.3f %6.0f "
               "%4zu\n",
               c[i].label, t.median, t.min, t.max,
               t.median * 1e3 / (active + WRITES), t.median / ref.median,
               w.median, w.median / wref.median, add.median, c[i].niter);
    }
    fflush(stdout);
}
