/* bench/common/bench.c: clock, statistics and limits for the drivers. */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include <valgrind/callgrind.h>

static int cmp_double(const void *a, const void *b);

int64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
bench_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
bench_sleep_until(int64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = deadline_ns / 1000000000,
        .tv_nsec = deadline_ns % 1000000000,
    };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
           == EINTR) {
    }
}

struct bench_stats
bench_stats(double *v, size_t n)
{
    struct bench_stats s;

    qsort(v, n, sizeof(*v), cmp_double);
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

void
bench_print_cell(double *v, size_t n, double ref)
{
    struct bench_stats s = bench_stats(v, n);
    char range[32];

    snprintf(range, sizeof(range), "[%.1f-%.1f]", s.min, s.max);
    printf(" %6.1f %-12s %5.2fx", s.median, range, s.median / ref);
}

long
bench_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        bench_die("getrlimit(RLIMIT_NOFILE)");
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            bench_die("setrlimit(RLIMIT_NOFILE)");
        }
    }
    return (long) rl.rlim_cur;
}

int
bench_quick(void)
{
    const char *q = getenv("BENCH_QUICK");

    return q != NULL && q[0] != '\0' && strcmp(q, "0") != 0;
}

int
bench_ircount(void)
{
    static int on = -1; /* read once: a getenv per phase would count */

    if (on < 0) {
        const char *q = getenv("BENCH_IRCOUNT");

        on = q != NULL && q[0] != '\0' && strcmp(q, "0") != 0;
    }
    return on;
}

static char ir_label[160];

void
bench_ir_begin(const char *bench, const char *op, const char *contender,
               size_t nops)
{
    snprintf(ir_label, sizeof(ir_label), "IR;%s;%s;%s;%zu", bench, op,
             contender, nops);
    CALLGRIND_ZERO_STATS;
}

void
bench_ir_end(void)
{
    CALLGRIND_DUMP_STATS_AT(ir_label);
}

uint64_t
bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void
bench_die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

void *
bench_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        bench_die("calloc");
    }
    return p;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a;
    double y = *(const double *) b;

    return (x > y) - (x < y);
}
