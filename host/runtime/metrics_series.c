/*
 * host/runtime/metrics_series.c: the registered series of a metrics slot
 * (counters, gauges, histograms with labels): registration, the hot calls,
 * and their Prometheus text across every slot. Contract in
 * metrics_series.h; the rules a plugin sees are in metrics.h.
 *
 * Gauges and histogram sums are doubles, kept as their bits in a 64-bit
 * cell: Prometheus samples are float64 anyway, one type then serves
 * integers (exact up to 2^53) and fractions (seconds, ratios), and with
 * one writer per cell an add is a load, an add and a store, no
 * compare-and-swap loop. A histogram keeps one count per bucket, not
 * cumulative ones: observe touches two cells, and the text sums them up
 * (so _count always equals the +Inf bucket, whenever it is read).
 */
#include "metrics_series.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int series_get(struct ioloop__series_table *t, int kind,
                      const char *name, const char *help,
                      const char *instance, const char *const *labels,
                      const double *bounds, size_t nbounds, int add);
static int valid_metric_name(const char *s, int kind);
static int label_name_ok(const char *s, int kind);
static int render_labels(char *dst, const char *const *labels, int kind);
static int append(char *dst, size_t *pos, const char *s, int escape);
static int utf8_valid(const char *s);
static int same_series(const struct ioloop__series *a,
                       const struct ioloop__series *b);
static uint32_t count(const struct ioloop__series_table *t);
static int shown(const struct ioloop__series_table *t, uint32_t k, int live);
static int family_seen(const struct ioloop__series_view *v, unsigned i,
                       uint32_t k, const struct ioloop__series *f);
static int series_before(const struct ioloop__series_view *v, unsigned j,
                         uint32_t q, const struct ioloop__series *s);
static void family_samples(struct ioloop__metrics_out *o,
                           const struct ioloop__series_view *v, unsigned w,
                           const struct ioloop__series *f);
static void sample(struct ioloop__metrics_out *o,
                   const struct ioloop__series_view *v, unsigned j,
                   const struct ioloop__series *s);
static void print_labels(struct ioloop__metrics_out *o, unsigned w,
                         const struct ioloop__series *s);
static void print_double(struct ioloop__metrics_out *o, double d);
static uint32_t fnv1a(uint32_t h, const char *s);

int
ioloop__series_register(struct ioloop__series_table *t, int kind,
                        const char *name, const char *help,
                        const char *instance, const char *const *labels,
                        const double *bounds, size_t nbounds)
{
    return series_get(t, kind, name, help, instance, labels, bounds, nbounds,
                      1);
}

int
ioloop__series_find(struct ioloop__series_table *t, int kind,
                    const char *name, const char *help, const char *instance,
                    const char *const *labels, const double *bounds,
                    size_t nbounds)
{
    return series_get(t, kind, name, help, instance, labels, bounds, nbounds,
                      0);
}

/* register (add 1) or find (add 0: -ENOENT when t lacks the series). */
static int
series_get(struct ioloop__series_table *t, int kind, const char *name,
           const char *help, const char *instance, const char *const *labels,
           const double *bounds, size_t nbounds, int add)
{
    struct ioloop__series want;
    uint32_t n = count(t), ncells;
    size_t ilen;

    memset(&want, 0, sizeof(want));
    if (name == NULL || !valid_metric_name(name, kind) || help == NULL
        || strlen(help) >= sizeof(want.help) || strchr(help, '\n') != NULL
        || strchr(help, '\\') != NULL || !utf8_valid(help)
        || render_labels(want.labels, labels, kind) < 0) {
        return -EINVAL;
    }
    if (kind == IOLOOP__SERIES_HISTOGRAM) {
        if (bounds == NULL || nbounds == 0
            || nbounds > IOLOOP_METRICS_MAX_BUCKETS) {
            return -EINVAL;
        }
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
                return -EINVAL;
            }
            want.bounds[i] = bounds[i];
        }
        for (size_t i = nbounds; i < IOLOOP_METRICS_MAX_BUCKETS; i++) {
            want.bounds[i] = INFINITY; /* see ioloop__series_observe */
        }
        want.nbuckets = (uint8_t) nbounds;
    } else if (bounds != NULL || nbounds != 0) {
        return -EINVAL;
    }
    memcpy(want.name, name, strlen(name) + 1);
    memcpy(want.help, help, strlen(help) + 1);
    ilen = strlen(instance);
    ilen = ilen < sizeof(want.instance) ? ilen : sizeof(want.instance) - 1;
    memcpy(want.instance, instance, ilen);
    want.kind = (uint8_t) kind;
    want.family_hash = fnv1a(2166136261u, want.name);
    want.series_hash = fnv1a(fnv1a(want.family_hash, want.instance),
                             want.labels);

    for (uint32_t k = 0; k < n; k++) {
        const struct ioloop__series *s = &t->series[k];

        if (strcmp(s->name, name) != 0) {
            continue;
        }
        if (s->kind != kind || strcmp(s->help, help) != 0) {
            return -EINVAL; /* one family, one TYPE and one HELP line */
        }
        if (same_series(s, &want)) {
            if (s->nbuckets != want.nbuckets
                || memcmp(s->bounds, want.bounds, sizeof(want.bounds)) != 0) {
                return -EINVAL;
            }
            /* Carried on from the slot's earlier worker, or registered
             * again: the same handle and, but for a gauge, its values. */
            __atomic_store_n(&t->gens[k], t->gen, __ATOMIC_RELAXED);
            return (int) k;
        }
    }
    if (!add) {
        return -ENOENT;
    }
    ncells = kind == IOLOOP__SERIES_HISTOGRAM ? want.nbuckets + 2u : 1u;
    if (n == IOLOOP_METRICS_MAX_SERIES
        || t->ncells + ncells > IOLOOP_METRICS_MAX_CELLS) {
        return -ENOSPC;
    }
    want.cell = (uint16_t) t->ncells;
    for (uint32_t c = 0; c < ncells; c++) {
        ioloop__cell_set(&t->cells[want.cell + c], 0);
    }
    t->series[n] = want;
    __atomic_store_n(&t->gens[n], t->gen, __ATOMIC_RELAXED);
    t->ncells += ncells;
    __atomic_store_n(&t->nseries, n + 1, __ATOMIC_RELEASE);
    return (int) n;
}

void
ioloop__series_attach(struct ioloop__series_table *t)
{
    uint32_t n = count(t);

    __atomic_store_n(&t->gen, t->gen + 1, __ATOMIC_RELAXED);
    for (uint32_t k = 0; k < n; k++) {
        if (t->series[k].kind == IOLOOP__SERIES_GAUGE) {
            ioloop__cell_set(&t->cells[t->series[k].cell], 0);
        }
    }
}

/*
 * One family at a time, as the format requires: its HELP and TYPE where
 * its name first occurs (slot by slot), then its series, one per worker
 * label: the slots of one label are summed (counters and histograms over
 * every slot a worker used, so they never go back across restarts and
 * reloads; gauges over the live workers that registered them). A
 * histogram series is summed with the later slots' series of the same
 * labels and bounds only. Quadratic in the series, which only the scrape
 * pays (IOLOOP_METRICS_MAX_SERIES per slot bounds it).
 */
void
ioloop__series_render(struct ioloop__metrics_out *o,
                      const struct ioloop__series_view *v)
{
    static const char *const types[] = {"", "counter", "gauge", "histogram"};

    for (unsigned i = 0; i < v->nslots; i++) {
        const struct ioloop__series_table *t;
        uint32_t n;
        int live;

        if ((t = v->table(v->m, i, &live)) == NULL) {
            continue;
        }
        n = count(t);
        for (uint32_t k = 0; k < n; k++) {
            const struct ioloop__series *f = &t->series[k];

            if (family_seen(v, i, k, f)) {
                continue;
            }
            /* register refused a help that would need escaping */
            ioloop__metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n",
                                   f->name, f->help, f->name,
                                   types[f->kind]);
            for (unsigned w = 0; w < v->nworkers; w++) {
                family_samples(o, v, w, f);
            }
        }
    }
}

/* The series of family f in the slots of worker label w. */
static void
family_samples(struct ioloop__metrics_out *o,
               const struct ioloop__series_view *v, unsigned w,
               const struct ioloop__series *f)
{
    for (unsigned j = w; j < v->nslots; j += v->nworkers) {
        int live;
        const struct ioloop__series_table *u = v->table(v->m, j, &live);
        uint32_t n = u != NULL ? count(u) : 0;

        for (uint32_t q = 0; q < n; q++) {
            const struct ioloop__series *s = &u->series[q];

            if (s->family_hash == f->family_hash
                && strcmp(s->name, f->name) == 0 && s->kind == f->kind
                && shown(u, q, live) && !series_before(v, j, q, s)) {
                sample(o, v, j, s);
            }
        }
    }
}

/*
 * A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, shorter than
 * IOLOOP_METRICS_NAME_LEN) fit for kind: a counter's ends in _total, no
 * other's does, and a histogram's does not end as its samples do.
 */
static int
valid_metric_name(const char *s, int kind)
{
    static const char *const suffixes[] = {"_total", "_bucket", "_sum",
                                           "_count"};
    size_t n = strlen(s);

    if (n >= IOLOOP_METRICS_NAME_LEN || !ioloop__metrics_valid_name(s, 1)) {
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        size_t m = strlen(suffixes[i]);
        int ends = n >= m && strcmp(s + n - m, suffixes[i]) == 0;

        if (i == 0 && kind == IOLOOP__SERIES_COUNTER) {
            if (!ends || n == m) {
                return 0;
            }
        } else if (ends && (i == 0 || kind == IOLOOP__SERIES_HISTOGRAM)) {
            return 0;
        }
    }
    return kind >= IOLOOP__SERIES_COUNTER && kind <= IOLOOP__SERIES_HISTOGRAM;
}

/* A label name a series may carry: the host adds worker and instance,
 * the histogram's samples le. */
static int
label_name_ok(const char *s, int kind)
{
    return strlen(s) < IOLOOP_METRICS_LABEL_LEN
           && ioloop__metrics_valid_name(s, 0) && strcmp(s, "worker") != 0
           && strcmp(s, "instance") != 0
           && (kind != IOLOOP__SERIES_HISTOGRAM || strcmp(s, "le") != 0);
}

/* labels (pairs, NULL-terminated) into dst as a="1",b="x": sorted by name
 * so that one label set is one series whatever the order it came in.
 * -1 for a bad or repeated name, a missing value, too many or too long. */
static int
render_labels(char *dst, const char *const *labels, int kind)
{
    size_t order[IOLOOP_METRICS_MAX_LABELS], n = 0, pos = 0;

    dst[0] = '\0';
    for (; labels != NULL && labels[2 * n] != NULL; n++) {
        size_t i = n;

        if (n == IOLOOP_METRICS_MAX_LABELS || labels[2 * n + 1] == NULL
            || !label_name_ok(labels[2 * n], kind)
            || !utf8_valid(labels[2 * n + 1])) {
            return -1;
        }
        for (; i > 0; i--) { /* insertion sort: eight at most */
            int cmp = strcmp(labels[2 * order[i - 1]], labels[2 * n]);

            if (cmp == 0) {
                return -1;
            }
            if (cmp < 0) {
                break;
            }
            order[i] = order[i - 1];
        }
        order[i] = n;
    }
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && append(dst, &pos, ",", 0) < 0)
            || append(dst, &pos, labels[2 * order[i]], 0) < 0
            || append(dst, &pos, "=\"", 0) < 0
            || append(dst, &pos, labels[2 * order[i] + 1], 1) < 0
            || append(dst, &pos, "\"", 0) < 0) {
            return -1;
        }
    }
    return 0;
}

/* s at dst + *pos (IOLOOP_METRICS_LABELS_LEN in all), escaped as a label
 * value when escape is set. -1 when it does not fit. */
static int
append(char *dst, size_t *pos, const char *s, int escape)
{
    for (; *s != '\0'; s++) {
        const char *piece = NULL;
        size_t len;

        if (escape) {
            piece = *s == '\\' ? "\\\\"
                    : *s == '"' ? "\\\""
                    : *s == '\n' ? "\\n"
                                 : NULL;
        }
        len = piece != NULL ? 2 : 1;
        if (*pos + len >= IOLOOP_METRICS_LABELS_LEN) {
            return -1;
        }
        memcpy(dst + *pos, piece != NULL ? piece : s, len);
        *pos += len;
    }
    dst[*pos] = '\0';
    return 0;
}

/* Whether s is UTF-8 (no overlong form, surrogate or code point past
 * U+10FFFF), as the format requires of label values and HELP text: one
 * bad byte would fail the whole scrape. */
static int
utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;

    while (*p != '\0') {
        unsigned c = *p, n, cp;

        if (c < 0x80) {
            p++;
            continue;
        }
        n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
        if (n == 0 || c > 0xf4) {
            return 0;
        }
        cp = c & (0x3fu >> n);
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0; /* also stops at the NUL */
            }
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800)
            || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        p += n + 1;
    }
    return 1;
}

/* One series, the worker label aside. */
static int
same_series(const struct ioloop__series *a, const struct ioloop__series *b)
{
    return a->series_hash == b->series_hash && a->kind == b->kind
           && strcmp(a->name, b->name) == 0
           && strcmp(a->instance, b->instance) == 0
           && strcmp(a->labels, b->labels) == 0;
}

/* The published series of t (a reader's view, or the writer's own). */
static uint32_t
count(const struct ioloop__series_table *t)
{
    uint32_t n = __atomic_load_n(&t->nseries, __ATOMIC_ACQUIRE);

    return n < IOLOOP_METRICS_MAX_SERIES ? n : IOLOOP_METRICS_MAX_SERIES;
}

/* Whether series k of t counts in its worker label's sums: counters and
 * histograms always; a gauge while the slot's current, live worker
 * registered it. */
static int
shown(const struct ioloop__series_table *t, uint32_t k, int live)
{
    return t->series[k].kind != IOLOOP__SERIES_GAUGE
           || (live
               && __atomic_load_n(&t->gens[k], __ATOMIC_RELAXED)
                      == __atomic_load_n(&t->gen, __ATOMIC_RELAXED));
}

/* Whether a series before (slot i, k) already has f's name. */
static int
family_seen(const struct ioloop__series_view *v, unsigned i, uint32_t k,
            const struct ioloop__series *f)
{
    for (unsigned j = 0; j <= i; j++) {
        int live;
        const struct ioloop__series_table *t = v->table(v->m, j, &live);
        uint32_t n = t != NULL ? count(t) : 0;

        for (uint32_t q = 0; q < n && (j < i || q < k); q++) {
            if (t->series[q].family_hash == f->family_hash
                && strcmp(t->series[q].name, f->name) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* Whether series q of slot j was already rendered: from an earlier slot
 * of its worker label, or earlier in slot j. */
static int
series_before(const struct ioloop__series_view *v, unsigned j, uint32_t q,
              const struct ioloop__series *s)
{
    for (unsigned i = j % v->nworkers; i <= j; i += v->nworkers) {
        int live;
        const struct ioloop__series_table *t = v->table(v->m, i, &live);
        uint32_t n = t != NULL ? count(t) : 0;

        for (uint32_t k = 0; k < n && (i < j || k < q); k++) {
            if (same_series(&t->series[k], s) && shown(t, k, live)) {
                return 1;
            }
        }
    }
    return 0;
}

/* s's samples, summed over slot j and the later slots of its label. */
static void
sample(struct ioloop__metrics_out *o, const struct ioloop__series_view *v,
       unsigned j, const struct ioloop__series *s)
{
    uint64_t counts[IOLOOP_METRICS_MAX_BUCKETS + 1] = {0}, cum = 0;
    double sum = 0;
    unsigned w = j % v->nworkers;

    for (unsigned i = j; i < v->nslots; i += v->nworkers) {
        int live;
        const struct ioloop__series_table *t = v->table(v->m, i, &live);
        uint32_t n = t != NULL ? count(t) : 0;

        for (uint32_t k = 0; k < n; k++) {
            const struct ioloop__series *d = &t->series[k];
            const uint64_t *c = &t->cells[d->cell];

            if (!same_series(d, s) || !shown(t, k, live)
                || d->nbuckets != s->nbuckets
                || memcmp(d->bounds, s->bounds, sizeof(d->bounds)) != 0) {
                continue;
            }
            if (s->kind == IOLOOP__SERIES_GAUGE) {
                sum += ioloop__cell_double(c);
                continue;
            }
            for (unsigned b = 0; b <= d->nbuckets; b++) {
                counts[b] += ioloop__cell(&c[b]);
            }
            if (s->kind == IOLOOP__SERIES_HISTOGRAM) {
                sum += ioloop__cell_double(&c[d->nbuckets + 1]);
            }
        }
    }
    if (s->kind != IOLOOP__SERIES_HISTOGRAM) {
        ioloop__metrics_printf(o, "%s{", s->name);
        print_labels(o, w, s);
        if (s->kind == IOLOOP__SERIES_COUNTER) {
            ioloop__metrics_printf(o, "} %" PRIu64 "\n", counts[0]);
        } else {
            ioloop__metrics_printf(o, "} ");
            print_double(o, sum);
            ioloop__metrics_printf(o, "\n");
        }
        return;
    }
    for (unsigned b = 0; b <= s->nbuckets; b++) {
        cum += counts[b];
        ioloop__metrics_printf(o, "%s_bucket{", s->name);
        print_labels(o, w, s);
        ioloop__metrics_printf(o, ",le=\"");
        print_double(o, b < s->nbuckets ? s->bounds[b] : INFINITY);
        ioloop__metrics_printf(o, "\"} %" PRIu64 "\n", cum);
    }
    ioloop__metrics_printf(o, "%s_sum{", s->name);
    print_labels(o, w, s);
    ioloop__metrics_printf(o, "} ");
    print_double(o, sum);
    ioloop__metrics_printf(o, "\n%s_count{", s->name);
    print_labels(o, w, s);
    ioloop__metrics_printf(o, "} %" PRIu64 "\n", cum);
}

/* worker="W"[,instance="I"][,the series' labels]: the instance is absent
 * from the host's own series. */
static void
print_labels(struct ioloop__metrics_out *o, unsigned w,
             const struct ioloop__series *s)
{
    ioloop__metrics_printf(o, "worker=\"%u\"", w);
    if (s->instance[0] != '\0') {
        ioloop__metrics_printf(o, ",instance=\"");
        ioloop__metrics_label_value(o, s->instance);
        ioloop__metrics_printf(o, "\"");
    }
    if (s->labels[0] != '\0') {
        ioloop__metrics_printf(o, ",%s", s->labels);
    }
}

/* A float as the format spells it: the shortest of %.15g and %.17g that
 * reads back exactly (0.005, not 0.0050000000000000001), NaN, +Inf, -Inf. */
static void
print_double(struct ioloop__metrics_out *o, double d)
{
    char text[32];

    if (isnan(d)) {
        ioloop__metrics_printf(o, "NaN");
    } else if (isinf(d)) {
        ioloop__metrics_printf(o, "%cInf", d > 0 ? '+' : '-');
    } else {
        snprintf(text, sizeof(text), "%.15g", d);
        if (strtod(text, NULL) != d) {
            snprintf(text, sizeof(text), "%.17g", d);
        }
        ioloop__metrics_printf(o, "%s", text);
    }
}

/* FNV-1a over s, NUL included (so that "ab","c" and "a","bc" differ). */
static uint32_t
fnv1a(uint32_t h, const char *s)
{
    do {
        h = (h ^ (uint8_t) *s) * 16777619u;
    } while (*s++ != '\0');
    return h;
}
