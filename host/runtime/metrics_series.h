/*
 * host/runtime/metrics_series.h: the registered series of one slot of the
 * metrics segment (counters, gauges and histograms with labels, the
 * plugins' and the host's HTTP layer's), their hot calls and their
 * Prometheus text. Private to metrics.c, metrics_series.c and
 * metrics_http.c: everyone else goes through metrics.h.
 *
 * A table lives in shared memory, inside its slot, and has one writer
 * (the slot's worker, on its loop thread). A descriptor is written once,
 * before nseries is raised past it with a release store, and never again:
 * a reader in any process loads nseries with acquire and reads the
 * descriptors below it in place, without a lock. The cells (values) are
 * 64-bit fields, stored with relaxed atomics by their one writer and
 * loaded whole by readers, as the rest of the segment.
 */
#ifndef IOLOOP_HOST_METRICS_SERIES_H
#define IOLOOP_HOST_METRICS_SERIES_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "metrics.h"

/* What a series counts. */
enum ioloop__series_kind {
    IOLOOP__SERIES_COUNTER = 1, /* one cell, uint64_t */
    IOLOOP__SERIES_GAUGE,       /* one cell, a double's bits */
    IOLOOP__SERIES_HISTOGRAM    /* nbuckets + 1 counts (the last: +Inf),
                                   then the sum (a double's bits) */
};

/* One series: immutable once published (see the file comment). */
struct ioloop__series {
    char name[IOLOOP_METRICS_NAME_LEN];
    char help[IOLOOP_METRICS_HELP_LEN];
    char instance[IOLOOP_METRICS_NAME_LEN]; /* "": the host's own */
    /* The labels as rendered, sorted by name and escaped:
     * a="1",b="x" ("" without labels). */
    char labels[IOLOOP_METRICS_LABELS_LEN];
    /* FNV-1a of name, and of name, instance and labels: the scrape's
     * comparisons (quadratic in the series) look at these first. */
    uint32_t family_hash;
    uint32_t series_hash;
    uint8_t kind;     /* enum ioloop__series_kind */
    uint8_t nbuckets; /* histograms: bounds in use */
    uint16_t cell;    /* the first of its cells */
    /* Strictly increasing; past nbuckets, +Inf. */
    double bounds[IOLOOP_METRICS_MAX_BUCKETS];
};

struct ioloop__series_table {
    uint32_t nseries; /* published with release */
    uint32_t ncells;
    uint32_t gen;     /* the slot's attach count */
    /* gens[k]: gen when series k was last registered. A gauge is rendered
     * only while its slot's current worker registered it. */
    uint32_t gens[IOLOOP_METRICS_MAX_SERIES];
    struct ioloop__series series[IOLOOP_METRICS_MAX_SERIES];
    uint64_t cells[IOLOOP_METRICS_MAX_CELLS];
};

/* The render buffer: pos counts every byte asked for, even past len. */
struct ioloop__metrics_out {
    char *buf;
    size_t len;
    size_t pos;
};

/* metrics.c's writers: snprintf at o->pos (what does not fit is counted,
 * not written), and a label value escaped as the format requires. */
void ioloop__metrics_printf(struct ioloop__metrics_out *o, const char *fmt,
                            ...) __attribute__((format(printf, 2, 3)));
void ioloop__metrics_label_value(struct ioloop__metrics_out *o,
                                 const char *s);

/* A Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, colon 1) or label
 * name ([a-zA-Z_][a-zA-Z0-9_]*, colon 0). */
int ioloop__metrics_valid_name(const char *s, int colon);

/* The series table of loop's attached slot; NULL when loop is not
 * attached. For the host's own series (metrics_http.c). */
struct ioloop__series_table *ioloop__metrics_series(ioloop_loop_t *loop);

/*
 * The tables of a segment, for ioloop__series_render: table(m, i, &live)
 * is slot i's table when a worker ever attached the slot (else NULL), and
 * live says whether one runs there now. Slot i renders as worker
 * i % nworkers.
 */
struct ioloop__series_view {
    const void *m;
    unsigned nslots;
    unsigned nworkers;
    const struct ioloop__series_table *(*table)(const void *m, unsigned i,
                                                int *live);
};

/*
 * Registers a series in t (or finds it: the same kind, name, instance and
 * labels, registered by this worker or an earlier one of the slot, is the
 * same handle and keeps its values, except a gauge, which restarts at 0).
 * instance: the owner's name, "" for the host's own series. labels: name,
 * value pairs, NULL-terminated (NULL: none). bounds/nbounds: histograms
 * only. Returns the handle (>= 0), -EINVAL (see metrics.h for the rules),
 * or -ENOSPC (t has no series or cells left).
 */
int ioloop__series_register(struct ioloop__series_table *t, int kind,
                            const char *name, const char *help,
                            const char *instance, const char *const *labels,
                            const double *bounds, size_t nbounds);

/* As register, but never adds: -ENOENT when t lacks the series. */
int ioloop__series_find(struct ioloop__series_table *t, int kind,
                        const char *name, const char *help,
                        const char *instance, const char *const *labels,
                        const double *bounds, size_t nbounds);

/* Whether t has room for nseries more series holding ncells cells. */
static inline int
ioloop__series_room(const struct ioloop__series_table *t, unsigned nseries,
                    unsigned ncells)
{
    return __atomic_load_n(&t->nseries, __ATOMIC_RELAXED) + nseries
               <= IOLOOP_METRICS_MAX_SERIES
           && t->ncells + ncells <= IOLOOP_METRICS_MAX_CELLS;
}

/* A new worker took the slot: its gauges restart at 0 and are not
 * rendered until it registers them. */
void ioloop__series_attach(struct ioloop__series_table *t);

/* A cell: one writer (a plain store, no read-modify-write), readers load
 * it whole; a double is kept as its bits. */
static inline uint64_t
ioloop__cell(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void
ioloop__cell_set(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline double
ioloop__cell_double(const uint64_t *p)
{
    uint64_t bits = ioloop__cell(p);
    double d;

    memcpy(&d, &bits, sizeof(d));
    return d;
}

static inline void
ioloop__cell_set_double(uint64_t *p, double d)
{
    uint64_t bits;

    memcpy(&bits, &d, sizeof(bits));
    ioloop__cell_set(p, bits);
}

/* The hot calls (static inline: the API's adapters compile them in, one
 * call less per count): O(1), no lock, no allocation, no lookup; a handle
 * that is not a series of that kind in t is a no-op. */

/* The series of handle h when it is of kind, else NULL. */
static inline const struct ioloop__series *
ioloop__series_hot(const struct ioloop__series_table *t, int h, int kind)
{
    uint32_t n = __atomic_load_n(&t->nseries, __ATOMIC_ACQUIRE);

    if (h < 0 || (uint32_t) h >= n || t->series[h].kind != kind) {
        return NULL;
    }
    return &t->series[h];
}

static inline void
ioloop__series_add(struct ioloop__series_table *t, int h, uint64_t n)
{
    const struct ioloop__series *s;

    s = ioloop__series_hot(t, h, IOLOOP__SERIES_COUNTER);
    if (s != NULL) {
        uint64_t *c = &t->cells[s->cell];

        ioloop__cell_set(c, ioloop__cell(c) + n);
    }
}

static inline void
ioloop__series_set(struct ioloop__series_table *t, int h, double v)
{
    const struct ioloop__series *s;

    s = ioloop__series_hot(t, h, IOLOOP__SERIES_GAUGE);
    if (s != NULL) {
        ioloop__cell_set_double(&t->cells[s->cell], v);
    }
}

static inline void
ioloop__series_gauge_add(struct ioloop__series_table *t, int h,
                         double delta)
{
    const struct ioloop__series *s;

    s = ioloop__series_hot(t, h, IOLOOP__SERIES_GAUGE);
    if (s != NULL) {
        uint64_t *c = &t->cells[s->cell];

        ioloop__cell_set_double(c, ioloop__cell_double(c) + delta);
    }
}

/*
 * The first bound >= v (nbuckets: the +Inf bucket), then one count and the
 * sum. The bounds are padded with +Inf to IOLOOP_METRICS_MAX_BUCKETS, so
 * the search is the same five steps whatever the histogram, without a
 * branch to mispredict: fewer instructions than a plain binary search.
 * NaN is dropped: it would poison the sum for good.
 */
static inline void
ioloop__series_observe(struct ioloop__series_table *t, int h, double v)
{
    const struct ioloop__series *s;
    const double *b;
    unsigned i = 0;
    uint64_t *c;

    s = ioloop__series_hot(t, h, IOLOOP__SERIES_HISTOGRAM);
    if (s == NULL || isnan(v)) {
        return;
    }
    b = s->bounds;
    _Static_assert(IOLOOP_METRICS_MAX_BUCKETS == 16, "four halvings");
    i += (v > b[i + 7]) * 8u;
    i += (v > b[i + 3]) * 4u;
    i += (v > b[i + 1]) * 2u;
    i += v > b[i];
    i += v > b[i]; /* past a sixteenth finite bound: +Inf */
    c = &t->cells[s->cell];
    ioloop__cell_set(&c[i], ioloop__cell(&c[i]) + 1);
    c += s->nbuckets + 1; /* the sum */
    ioloop__cell_set_double(c, ioloop__cell_double(c) + v);
}

/* Every series of every table of v, one family at a time (HELP and TYPE
 * once), after the host's families. */
void ioloop__series_render(struct ioloop__metrics_out *o,
                           const struct ioloop__series_view *v);

#endif /* IOLOOP_HOST_METRICS_SERIES_H */
