/*
 * bench/common/bench.h: what every benchmark driver shares: the clock,
 * medians, the fd limit, a reproducible random sequence and the knobs
 * read from the environment (BENCH_QUICK).
 */
#ifndef IOLOOP_BENCH_COMMON_H
#define IOLOOP_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The median, min and max of a set of samples. */
struct bench_stats {
    double median;
    double min;
    double max;
};

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/*
 * The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID) in nanoseconds.
 * The in-process benchmarks time their phases with it: the machine may be
 * shared, and time another process stole from the benchmark's CPU is then
 * not counted. Their loops never block in a timed phase, so on an idle
 * machine it equals the wall-clock time.
 */
int64_t bench_cpu_ns(void);

/* Sleeps until the monotonic clock reads at least deadline_ns. */
void bench_sleep_until(int64_t deadline_ns);

/* Sorts v in place and returns its median (mean of the middle two when n
 * is even), min and max. n > 0. */
struct bench_stats bench_stats(double *v, size_t n);

/* Prints " <median> [<min>-<max>] <median/ref>x", 27 columns (sorts v). */
void bench_print_cell(double *v, size_t n, double ref);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft
 * limit. */
long bench_raise_nofile(void);

/* 1 when BENCH_QUICK is set to anything but "" or "0". */
int bench_quick(void);

/*
 * 1 when BENCH_IRCOUNT is set to anything but "" or "0": the drivers then
 * run one short plan (bench/ircount.sh runs them under callgrind) and
 * mark each timed phase with bench_ir_begin / bench_ir_end.
 */
int bench_ircount(void);

/*
 * Zeroes callgrind's counters for one timed phase; bench_ir_end dumps
 * them as one profile described "IR;<bench>;<op>;<contender>;<nops>", and
 * bench/ircount.sh divides its instruction total by nops. The label is
 * formatted here, before the zeroing, so that it is not counted. Both
 * are no-ops outside valgrind.
 */
void bench_ir_begin(const char *bench, const char *op, const char *contender,
                    size_t nops);
void bench_ir_end(void);

/* A splitmix64 step: the same seed gives every contender the same
 * sequence. */
uint64_t bench_rand(uint64_t *state);

/* Prints "what: strerror(errno)" to stderr and exits 1. */
void bench_die(const char *what) __attribute__((noreturn));

/* malloc/calloc that exit on failure (a benchmark has no plan B). */
void *bench_calloc(size_t n, size_t size);

#endif /* IOLOOP_BENCH_COMMON_H */
