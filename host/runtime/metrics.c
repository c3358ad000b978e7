/*
 * host/runtime/metrics.c: the shared metrics segment (one slot per worker) and
 * its Prometheus text rendering. Contract in metrics.h.
 *
 * Concurrency. Every shared integer is a plain, naturally aligned 64-bit
 * (or 32-bit) field accessed with the __atomic builtins, relaxed: the
 * loop writes struct ioloop_stats with plain stores (loop.c), and the
 * builtins let a reader in another process load those same fields whole.
 * Each field has one writer: the slot's worker (its loop thread; its
 * watchdog for the stall counters), or the master for the restart count.
 * The names (backend, plugin instances) are strings, published under a
 * per-slot sequence lock (odd while being written); a reader retries a
 * torn copy, and after MAX_TRIES (a writer killed mid-write) renders it
 * anyway: it is NUL-terminated and clamped, so at worst a label is wrong.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clock.h"
#include "loader.h"
#include "log.h"
#include "metrics_series.h"

#define METRICS_MAGIC UINT64_C(0x52544d504f4f4c49) /* "ILOOPMTR" */
#define METRICS_VERSION 1u
#define MAX_TRIES 100 /* torn-name retries, see the file comment */

_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
               "count_stall must be async-signal-safe");

/* One worker. Aligned to a cache line: workers do not share lines. */
struct metrics_slot {
    /* --- Identity: the worker writes it, under seq. --- */
    uint32_t seq;      /* odd while the names are being written */
    uint32_t nplugins; /* names in plugins[] */
    char backend[IOLOOP_METRICS_NAME_LEN];
    char plugins[IOLOOP_METRICS_MAX_PLUGINS][IOLOOP_METRICS_NAME_LEN];
    /* --- Values: one writer each, relaxed. --- */
    uint64_t pid;        /* 0: not rendered; stored last by attach */
    uint64_t started_at; /* CLOCK_MONOTONIC ns (system-wide) */
    uint64_t restarts;   /* the master's */
    uint64_t accepted;
    uint64_t stalls[IOLOOP_METRICS_MAX_PLUGINS]; /* by plugins[] index */
    struct ioloop_stats stats; /* the loop counts here */
    /* --- Registered series (metrics_series.c): its own protocol. --- */
    struct ioloop__series_table series;
    /* --- The watchdog's (watchdog_kill_ms), read by the master. --- */
    uint64_t blocked_since; /* CLOCK_MONOTONIC ns; 0: not blocked */
    uint64_t blocked_by;    /* plugins[] index + 1; 0: the host */
} __attribute__((aligned(64)));

/* The master's instances and which it quarantined: it alone writes this,
 * under seq, as a slot's names. */
struct quarantine {
    uint32_t seq;
    uint32_t n;
    uint8_t on[IOLOOP_METRICS_MAX_PLUGINS];
    char names[IOLOOP_METRICS_MAX_PLUGINS][IOLOOP_METRICS_NAME_LEN];
};

struct ioloop_metrics {
    uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint32_t nworkers; /* worker labels: slot i is worker i % nworkers */
    size_t size; /* of the mapping */
    struct quarantine quarantine;
    struct metrics_slot slots[];
};

/* A copy of a slot's names, taken under its sequence lock. */
struct identity {
    uint32_t nplugins;
    char backend[IOLOOP_METRICS_NAME_LEN];
    char plugins[IOLOOP_METRICS_MAX_PLUGINS][IOLOOP_METRICS_NAME_LEN];
};

struct family;
typedef void (*family_fn)(struct ioloop__metrics_out *o,
                          const struct family *f,
                          const struct ioloop_metrics *m);

/* One metric family: its HELP and TYPE lines, then the samples fn prints
 * (for u64_samples, the 64-bit field at offset of each slot). */
struct family {
    const char *name;
    const char *type;
    const char *help;
    family_fn fn;
    size_t offset;
};

static void u64_samples(struct ioloop__metrics_out *o,
                        const struct family *f,
                        const struct ioloop_metrics *m);
static void poll_wait_samples(struct ioloop__metrics_out *o,
                              const struct family *f,
                              const struct ioloop_metrics *m);
static void stall_samples(struct ioloop__metrics_out *o,
                          const struct family *f,
                          const struct ioloop_metrics *m);
static void backend_samples(struct ioloop__metrics_out *o,
                            const struct family *f,
                            const struct ioloop_metrics *m);
static void uptime_samples(struct ioloop__metrics_out *o,
                           const struct family *f,
                           const struct ioloop_metrics *m);
static void u64_sum(struct ioloop__metrics_out *o, const char *name,
                    const struct ioloop_metrics *m, unsigned w,
                    size_t offset, int counter);
static uint64_t stall_sum(const struct ioloop_metrics *m, unsigned w,
                          const char *plugin);
static int worker_live(const struct ioloop_metrics *m, unsigned w);
static void carry_counters(ioloop_loop_t *loop, struct metrics_slot *s);
static void quarantine_samples(struct ioloop__metrics_out *o,
                               const struct family *f,
                               const struct ioloop_metrics *m);
static uint64_t load(const uint64_t *p);
static void bump(uint64_t *p, int64_t delta);
static int slot_live(const struct metrics_slot *s);
static int slot_used(const struct metrics_slot *s);
static void names_begin(struct metrics_slot *s);
static void names_end(struct metrics_slot *s);
static void names_read(const struct metrics_slot *s, struct identity *id);
static void name_copy(char *dst, const char *src, size_t index);
static void timeout_samples(struct ioloop__metrics_out *o,
                            const struct family *f,
                            const struct ioloop_metrics *m);
static const struct ioloop__series_table *slot_table(const void *m,
                                                     unsigned i, int *live);
static int host_family(const char *name);

#define SLOT_FIELD(field) offsetof(struct metrics_slot, field)

/* The families, in the order of issue 6's list. Counters end in _total. */
static const struct family families[] = {
    {"ioloop_loop_iterations_total", "counter", "Loop iterations run.",
     u64_samples, SLOT_FIELD(stats.iterations)},
    {"ioloop_poll_wait_seconds_total", "counter",
     "Time spent waiting in the backend's poll.", poll_wait_samples, 0},
    {"ioloop_callbacks_run_total", "counter", "Callbacks run.", u64_samples,
     SLOT_FIELD(stats.callbacks_run)},
    {"ioloop_timers_run_total", "counter", "Timers run.", u64_samples,
     SLOT_FIELD(stats.timers_run)},
    {"ioloop_timers_pending", "gauge", "Live timers in the heap.",
     u64_samples, SLOT_FIELD(stats.timers_pending)},
    {"ioloop_timers_cancelled", "gauge",
     "Cancelled timers still in the heap, awaiting lazy removal.",
     u64_samples, SLOT_FIELD(stats.timers_cancelled)},
    {"ioloop_timer_compactions_total", "counter",
     "Compactions of the timer heap (cancelled timers dropped at once).",
     u64_samples, SLOT_FIELD(stats.compactions)},
    {"ioloop_handlers", "gauge", "I/O handlers registered.", u64_samples,
     SLOT_FIELD(stats.handlers)},
    {"ioloop_watchdog_stalls_total", "counter",
     "Callbacks or handlers of a plugin instance that held the loop past "
     "watchdog_ms.",
     stall_samples, 0},
    {"ioloop_connections_accepted_total", "counter",
     "Connections accepted through the host's accept helpers.",
     u64_samples, SLOT_FIELD(accepted)},
    {"ioloop_connections_open", "gauge",
     "Connections open on the host's buffered streams.", u64_samples,
     SLOT_FIELD(stats.streams_open)},
    {"ioloop_stream_timeouts_total", "counter",
     "Buffered streams closed by a timeout, by which one: idle, read "
     "(a pending read got no byte), write (queued output made no "
     "progress).",
     timeout_samples, 0},
    {"ioloop_backend_info", "gauge", "The poller backend a worker runs on.",
     backend_samples, 0},
    {"ioloop_uptime_seconds", "gauge", "Seconds since the worker started.",
     uptime_samples, 0},
    {"ioloop_worker_restarts_total", "counter",
     "Times the master replaced this worker after a crash or a hang.",
     u64_samples, SLOT_FIELD(restarts)},
    {"ioloop_instance_quarantined", "gauge",
     "1 when the master quarantined the plugin instance (the workers run "
     "without it), else 0.",
     quarantine_samples, 0},
};

/* This process's attachment (one loop at a time). Written only by attach,
 * set_plugins and detach, before and after the watchdog runs. */
static struct {
    ioloop_loop_t *loop; /* NULL: none */
    struct ioloop_metrics *m;
    struct metrics_slot *slot;
    const struct ioloop_owner *owners[IOLOOP_METRICS_MAX_PLUGINS];
    size_t nowners;
} self;

struct ioloop_metrics *
ioloop__metrics_create(unsigned nslots)
{
    struct ioloop_metrics *m;
    size_t size;

    if (nslots == 0 || nslots > IOLOOP_METRICS_MAX_SLOTS) {
        errno = EINVAL;
        return NULL;
    }
    size = sizeof(*m) + (size_t) nslots * sizeof(m->slots[0]);
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    m->magic = METRICS_MAGIC;
    m->version = METRICS_VERSION;
    m->nslots = nslots;
    m->nworkers = nslots;
    m->size = size;
    return m;
}

int
ioloop__metrics_set_workers(struct ioloop_metrics *m, unsigned nworkers)
{
    if (m == NULL || nworkers == 0 || nworkers > m->nslots) {
        return -EINVAL;
    }
    m->nworkers = nworkers;
    return 0;
}

void
ioloop__metrics_free(struct ioloop_metrics *m)
{
    if (m != NULL) {
        munmap(m, m->size);
    }
}

int
ioloop__metrics_attach(ioloop_loop_t *loop, struct ioloop_metrics *m,
                       unsigned slot)
{
    struct metrics_slot *s;

    if (m == NULL || m->magic != METRICS_MAGIC
        || m->version != METRICS_VERSION || slot >= m->nslots) {
        return -EINVAL;
    }
    if (self.loop != NULL) {
        return -EBUSY;
    }
    s = &m->slots[slot];
    names_begin(s);
    name_copy(s->backend, ioloop__backend(loop)->name, SIZE_MAX);
    names_end(s);
    __atomic_store_n(&s->blocked_since, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->started_at, (uint64_t) ioloop__monotonic_now(),
                     __ATOMIC_RELAXED);
    carry_counters(loop, s);
    ioloop__series_attach(&s->series);
    ioloop__set_stats(loop, &s->stats);
    __atomic_store_n(&s->pid, (uint64_t) getpid(), __ATOMIC_RELEASE);
    self.loop = loop;
    self.m = m;
    self.slot = s;
    self.nowners = 0;
    return 0;
}

void
ioloop__metrics_detach(ioloop_loop_t *loop)
{
    if (loop == NULL || loop != self.loop) {
        return;
    }
    ioloop__set_stats(loop, NULL);
    memset(&self, 0, sizeof(self));
}

void
ioloop__metrics_set_plugins(ioloop_loop_t *loop,
                            const struct ioloop_plugin_set *set)
{
    static struct identity old; /* big: not on the stack */
    uint64_t old_stalls[IOLOOP_METRICS_MAX_PLUGINS];
    struct metrics_slot *s = self.slot;
    size_t n;

    if (loop == NULL || loop != self.loop) {
        return;
    }
    for (size_t k = 0; k < IOLOOP_METRICS_MAX_PLUGINS; k++) {
        old_stalls[k] = load(&s->stalls[k]);
    }
    n = set->n;
    if (n > IOLOOP_METRICS_MAX_PLUGINS) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "metrics: %zu plugin instances; watchdog stalls are "
                   "counted for the first %d only",
                   n, IOLOOP_METRICS_MAX_PLUGINS);
        n = IOLOOP_METRICS_MAX_PLUGINS;
    }
    /* The stall counts of the slot's previous worker follow their
     * instance names; a name no longer there takes its count away. */
    names_read(s, &old);
    names_begin(s);
    for (size_t i = 0; i < n; i++) {
        uint64_t kept = 0;

        name_copy(s->plugins[i], set->v[i].owner.name, i);
        for (uint32_t k = 0; k < old.nplugins; k++) {
            if (strcmp(old.plugins[k], s->plugins[i]) == 0) {
                kept = old_stalls[k];
            }
        }
        __atomic_store_n(&s->stalls[i], kept, __ATOMIC_RELAXED);
        self.owners[i] = &set->v[i].owner;
    }
    s->nplugins = (uint32_t) n;
    names_end(s);
    self.nowners = n;
}

void
ioloop__metrics_note_backend(ioloop_loop_t *loop)
{
    if (loop == NULL || loop != self.loop) {
        return;
    }
    names_begin(self.slot);
    name_copy(self.slot->backend, ioloop__backend(loop)->name, SIZE_MAX);
    names_end(self.slot);
}

void
ioloop__metrics_note_restart(struct ioloop_metrics *m, unsigned slot)
{
    if (m != NULL && slot < m->nslots) {
        bump(&m->slots[slot].restarts, 1);
    }
}

void
ioloop__metrics_retire(struct ioloop_metrics *m, unsigned slot)
{
    if (m != NULL && slot < m->nslots) {
        __atomic_store_n(&m->slots[slot].pid, 0, __ATOMIC_RELEASE);
    }
}

void
ioloop__metrics_note_blocked(const struct ioloop_owner *owner,
                             ioloop_time_t since)
{
    uint64_t by = 0;

    if (self.slot == NULL) {
        return;
    }
    for (size_t i = 0; owner != NULL && i < self.nowners; i++) {
        if (self.owners[i] == owner) {
            by = i + 1;
        }
    }
    __atomic_store_n(&self.slot->blocked_by, by, __ATOMIC_RELAXED);
    __atomic_store_n(&self.slot->blocked_since, (uint64_t) since,
                     __ATOMIC_RELEASE);
}

ioloop_time_t
ioloop__metrics_blocked(const struct ioloop_metrics *m, unsigned slot,
                        pid_t pid, char *plugin, size_t len)
{
    static struct identity id; /* big: not on the stack (master only) */
    const struct metrics_slot *s;
    uint64_t since, by;

    if (m == NULL || slot >= m->nslots) {
        return 0;
    }
    s = &m->slots[slot];
    /* attach clears blocked_since before it stores the new pid. */
    if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != (uint64_t) pid) {
        return 0;
    }
    since = __atomic_load_n(&s->blocked_since, __ATOMIC_ACQUIRE);
    by = load(&s->blocked_by);
    if (since == 0) {
        return 0;
    }
    names_read(s, &id);
    snprintf(plugin, len, "%s",
             by > 0 && by <= id.nplugins ? id.plugins[by - 1] : "host");
    return (ioloop_time_t) since;
}

void
ioloop__metrics_set_quarantined(struct ioloop_metrics *m,
                                const struct ioloop_plugin_set *set)
{
    struct quarantine *q;
    size_t n;

    if (m == NULL) {
        return;
    }
    q = &m->quarantine;
    n = set->n < IOLOOP_METRICS_MAX_PLUGINS ? set->n
                                            : IOLOOP_METRICS_MAX_PLUGINS;
    __atomic_store_n(&q->seq, q->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (size_t i = 0; i < n; i++) {
        name_copy(q->names[i], set->v[i].owner.name, i);
        q->on[i] = set->v[i].quarantined;
    }
    q->n = (uint32_t) n;
    __atomic_store_n(&q->seq, q->seq + 1, __ATOMIC_RELEASE);
}

void
ioloop__metrics_count_accept(ioloop_loop_t *loop)
{
    if (loop == self.loop && loop != NULL) {
        bump(&self.slot->accepted, 1);
    }
}

void
ioloop__metrics_count_stall(const struct ioloop_owner *owner)
{
    for (size_t i = 0; i < self.nowners; i++) {
        if (self.owners[i] == owner) {
            __atomic_fetch_add(&self.slot->stalls[i], 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

int
ioloop__metrics_counter_register(ioloop_loop_t *loop, const char *name,
                                 const char *help, const char *label,
                                 const char *value)
{
    const char *labels[] = {label, value, NULL};

    if (loop == NULL || loop != self.loop) {
        return -ENOTSUP;
    }
    /* Its own rules on top of counter_register_labels': one label or
     * none, both under IOLOOP_METRICS_LABEL_LEN. */
    if ((label == NULL) != (value == NULL)
        || (label != NULL && strlen(value) >= IOLOOP_METRICS_LABEL_LEN)) {
        return -EINVAL;
    }
    return ioloop__metrics_counter_labels(loop, name, help,
                                          label != NULL ? labels : NULL);
}

int
ioloop__metrics_counter_labels(ioloop_loop_t *loop, const char *name,
                               const char *help, const char *const *labels)
{
    if (loop == NULL || loop != self.loop) {
        return -ENOTSUP;
    }
    if (name == NULL || host_family(name)) {
        return -EINVAL;
    }
    return ioloop__series_register(&self.slot->series,
                                   IOLOOP__SERIES_COUNTER, name, help,
                                   ioloop__owner_name(loop), labels, NULL, 0);
}

int
ioloop__metrics_gauge_register(ioloop_loop_t *loop, const char *name,
                               const char *help, const char *const *labels)
{
    if (loop == NULL || loop != self.loop) {
        return -ENOTSUP;
    }
    if (name == NULL || host_family(name)) {
        return -EINVAL;
    }
    return ioloop__series_register(&self.slot->series, IOLOOP__SERIES_GAUGE,
                                   name, help, ioloop__owner_name(loop),
                                   labels, NULL, 0);
}

int
ioloop__metrics_histogram_register(ioloop_loop_t *loop, const char *name,
                                   const char *help,
                                   const char *const *labels,
                                   const double *bounds, size_t nbounds)
{
    if (loop == NULL || loop != self.loop) {
        return -ENOTSUP;
    }
    if (name == NULL || host_family(name)) {
        return -EINVAL;
    }
    return ioloop__series_register(&self.slot->series,
                                   IOLOOP__SERIES_HISTOGRAM, name, help,
                                   ioloop__owner_name(loop), labels, bounds,
                                   nbounds);
}

void
ioloop__metrics_counter_add(ioloop_loop_t *loop, int handle, uint64_t n)
{
    if (loop == self.loop && loop != NULL) {
        ioloop__series_add(&self.slot->series, handle, n);
    }
}

void
ioloop__metrics_gauge_set(ioloop_loop_t *loop, int handle, double v)
{
    if (loop == self.loop && loop != NULL) {
        ioloop__series_set(&self.slot->series, handle, v);
    }
}

void
ioloop__metrics_gauge_add(ioloop_loop_t *loop, int handle, double delta)
{
    if (loop == self.loop && loop != NULL) {
        ioloop__series_gauge_add(&self.slot->series, handle, delta);
    }
}

void
ioloop__metrics_observe(ioloop_loop_t *loop, int handle, double v)
{
    if (loop == self.loop && loop != NULL) {
        ioloop__series_observe(&self.slot->series, handle, v);
    }
}

struct ioloop__series_table *
ioloop__metrics_series(ioloop_loop_t *loop)
{
    return loop != NULL && loop == self.loop ? &self.slot->series : NULL;
}

int
ioloop__metrics_render(ioloop_loop_t *loop, char *buf, size_t len)
{
    struct ioloop__metrics_out o = {buf, len, 0};
    struct ioloop__series_view view;

    if (loop == NULL || loop != self.loop) {
        return -ENOTSUP;
    }
    if (buf == NULL && len > 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family *f = &families[i];

        ioloop__metrics_printf(&o, "# HELP %s %s\n# TYPE %s %s\n", f->name,
                               f->help, f->name, f->type);
        f->fn(&o, f, self.m);
    }
    view.m = self.m;
    view.nslots = self.m->nslots;
    view.nworkers = self.m->nworkers;
    view.table = slot_table;
    ioloop__series_render(&o, &view);
    if (o.pos > INT_MAX) {
        return -EOVERFLOW;
    }
    if (buf == NULL) {
        return (int) o.pos;
    }
    if (o.pos >= len) {
        if (len > 0) {
            buf[0] = '\0';
        }
        return -ENOBUFS;
    }
    return (int) o.pos;
}

/*
 * Worker labels. A master's segment has two slots per worker (room for
 * two generations, see ioloop__metrics_set_workers): slots w and
 * w + nworkers are worker="w" before and after a reload. A label is
 * rendered while a live slot has it. A counter is the sum over every
 * slot of the label that a worker ever attached, retired ones included,
 * and a slot carries its counts over from one worker to the next
 * (attach): so a counter never goes back, across reloads and restarts
 * alike, as Prometheus expects. A gauge is summed over the live slots.
 */
static int
worker_live(const struct ioloop_metrics *m, unsigned w)
{
    for (unsigned i = w; i < m->nslots; i += m->nworkers) {
        if (slot_live(&m->slots[i])) {
            return 1;
        }
    }
    return 0;
}

/* name{worker="w"} <the sum of the uint64_t at offset of w's slots>. */
static void
u64_sum(struct ioloop__metrics_out *o, const char *name,
        const struct ioloop_metrics *m, unsigned w, size_t offset,
        int counter)
{
    uint64_t sum = 0;

    for (unsigned i = w; i < m->nslots; i += m->nworkers) {
        const struct metrics_slot *s = &m->slots[i];

        if (counter ? slot_used(s) : slot_live(s)) {
            sum += load((const uint64_t *) ((const char *) s + offset));
        }
    }
    ioloop__metrics_printf(o, "%s{worker=\"%u\"} %" PRIu64 "\n", name, w, sum);
}

static void
u64_samples(struct ioloop__metrics_out *o, const struct family *f,
            const struct ioloop_metrics *m)
{
    for (unsigned w = 0; w < m->nworkers; w++) {
        if (worker_live(m, w)) {
            u64_sum(o, f->name, m, w, f->offset,
                    strcmp(f->type, "counter") == 0);
        }
    }
}

/* Nanoseconds printed as exact decimal seconds. */
static void
poll_wait_samples(struct ioloop__metrics_out *o, const struct family *f,
                  const struct ioloop_metrics *m)
{
    for (unsigned w = 0; w < m->nworkers; w++) {
        uint64_t ns = 0;

        if (!worker_live(m, w)) {
            continue;
        }
        for (unsigned i = w; i < m->nslots; i += m->nworkers) {
            if (slot_used(&m->slots[i])) {
                ns += load(&m->slots[i].stats.poll_wait_ns);
            }
        }
        ioloop__metrics_printf(o,
                               "%s{worker=\"%u\"} %" PRIu64 ".%09" PRIu64
                               "\n",
                               f->name, w, ns / 1000000000u,
                               ns % 1000000000u);
    }
}

/* One series per worker and plugin instance name any of its slots had. */
/* ioloop_stream_timeouts_total: one sample per worker and reason. */
static void
timeout_samples(struct ioloop__metrics_out *o, const struct family *f,
                const struct ioloop_metrics *m)
{
    static const char *const reasons[] = {"idle", "read", "write"};

    for (unsigned w = 0; w < m->nworkers; w++) {
        if (!worker_live(m, w)) {
            continue;
        }
        for (unsigned r = 0; r < 3; r++) {
            uint64_t sum = 0;

            for (unsigned i = w; i < m->nslots; i += m->nworkers) {
                if (slot_used(&m->slots[i])) {
                    sum += load(&m->slots[i].stats.stream_timeouts[r]);
                }
            }
            ioloop__metrics_printf(o,
                                   "%s{worker=\"%u\",reason=\"%s\"} %" PRIu64
                                   "\n",
                                   f->name, w, reasons[r], sum);
        }
    }
}

static void
stall_samples(struct ioloop__metrics_out *o, const struct family *f,
              const struct ioloop_metrics *m)
{
    struct identity id, seen;

    for (unsigned w = 0; w < m->nworkers; w++) {
        if (!worker_live(m, w)) {
            continue;
        }
        for (unsigned i = w; i < m->nslots; i += m->nworkers) {
            if (!slot_used(&m->slots[i])) {
                continue;
            }
            names_read(&m->slots[i], &id);
            for (uint32_t k = 0; k < id.nplugins; k++) {
                int dup = 0;

                /* Rendered with the first slot that has the name. */
                for (unsigned j = w; j < i && !dup; j += m->nworkers) {
                    if (!slot_used(&m->slots[j])) {
                        continue;
                    }
                    names_read(&m->slots[j], &seen);
                    for (uint32_t q = 0; q < seen.nplugins && !dup; q++) {
                        dup = strcmp(seen.plugins[q], id.plugins[k]) == 0;
                    }
                }
                if (dup) {
                    continue;
                }
                ioloop__metrics_printf(o, "%s{worker=\"%u\",plugin=\"",
                                       f->name, w);
                ioloop__metrics_label_value(o, id.plugins[k]);
                ioloop__metrics_printf(o, "\"} %" PRIu64 "\n",
                           stall_sum(m, w, id.plugins[k]));
            }
        }
    }
}

/* The stalls of plugin over every used slot of worker w. */
static uint64_t
stall_sum(const struct ioloop_metrics *m, unsigned w, const char *plugin)
{
    struct identity id;
    uint64_t sum = 0;

    for (unsigned i = w; i < m->nslots; i += m->nworkers) {
        if (!slot_used(&m->slots[i])) {
            continue;
        }
        names_read(&m->slots[i], &id);
        for (uint32_t k = 0; k < id.nplugins; k++) {
            if (strcmp(id.plugins[k], plugin) == 0) {
                sum += load(&m->slots[i].stalls[k]);
            }
        }
    }
    return sum;
}

/* An info metric: the value is always 1, the backend is a label (one
 * series per backend the worker's live slots run). */
static void
backend_samples(struct ioloop__metrics_out *o, const struct family *f,
                const struct ioloop_metrics *m)
{
    struct identity id, seen;

    for (unsigned w = 0; w < m->nworkers; w++) {
        for (unsigned i = w; i < m->nslots; i += m->nworkers) {
            int dup = 0;

            if (!slot_live(&m->slots[i])) {
                continue;
            }
            names_read(&m->slots[i], &id);
            for (unsigned j = w; j < i && !dup; j += m->nworkers) {
                if (slot_live(&m->slots[j])) {
                    names_read(&m->slots[j], &seen);
                    dup = strcmp(seen.backend, id.backend) == 0;
                }
            }
            if (!dup) {
                ioloop__metrics_printf(o, "%s{worker=\"%u\",backend=\"",
                                       f->name, w);
                ioloop__metrics_label_value(o, id.backend);
                ioloop__metrics_printf(o, "\"} 1\n");
            }
        }
    }
}

/* The newest live process of the worker. CLOCK_MONOTONIC is system-wide,
 * so any process can subtract. */
static void
uptime_samples(struct ioloop__metrics_out *o, const struct family *f,
               const struct ioloop_metrics *m)
{
    uint64_t now = (uint64_t) ioloop__monotonic_now();

    for (unsigned w = 0; w < m->nworkers; w++) {
        uint64_t ms = UINT64_MAX;

        for (unsigned i = w; i < m->nslots; i += m->nworkers) {
            uint64_t start = load(&m->slots[i].started_at);
            uint64_t age = now > start ? (now - start) / 1000000u : 0;

            if (slot_live(&m->slots[i]) && age < ms) {
                ms = age;
            }
        }
        if (ms != UINT64_MAX) {
            ioloop__metrics_printf(o,
                                   "%s{worker=\"%u\"} %" PRIu64 ".%03" PRIu64
                                   "\n",
                                   f->name, w, ms / 1000u, ms % 1000u);
        }
    }
}

/* ioloop__series_view's table: slot i's series, NULL when no worker ever
 * attached it. */
static const struct ioloop__series_table *
slot_table(const void *m, unsigned i, int *live)
{
    const struct ioloop_metrics *segment = m;
    const struct metrics_slot *s = &segment->slots[i];

    if (!slot_used(s)) {
        return NULL;
    }
    *live = slot_live(s);
    return &s->series;
}

/* Whether name is one of the host's own families (a plugin's series may
 * not take it). */
static int
host_family(const char *name)
{
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (strcmp(families[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, colon 1) or label
 * name ([a-zA-Z_][a-zA-Z0-9_]*, colon 0). */
int
ioloop__metrics_valid_name(const char *s, int colon)
{
    for (size_t i = 0; s[i] != '\0'; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || ch == '_' || (colon && ch == ':')
              || (i > 0 && ch >= '0' && ch <= '9'))) {
            return 0;
        }
    }
    return s[0] != '\0';
}

/*
 * Before the loop counts into s: adds the counters s holds from its
 * previous workers to the loop's. The loop counts into a local first, so
 * that the sums, never less than what s holds, are what land in s.
 */
static void
carry_counters(ioloop_loop_t *loop, struct metrics_slot *s)
{
    struct ioloop_stats sum;

    ioloop__set_stats(loop, &sum);
    sum.iterations += load(&s->stats.iterations);
    sum.callbacks_run += load(&s->stats.callbacks_run);
    sum.timers_run += load(&s->stats.timers_run);
    sum.events_dispatched += load(&s->stats.events_dispatched);
    sum.stale_events += load(&s->stats.stale_events);
    sum.failures += load(&s->stats.failures);
    sum.poll_wait_ns += load(&s->stats.poll_wait_ns);
    sum.compactions += load(&s->stats.compactions);
    ioloop__set_stats(loop, &s->stats);
}

/* One series per instance of the master's manifest; none without one. */
static void
quarantine_samples(struct ioloop__metrics_out *o, const struct family *f,
                   const struct ioloop_metrics *m)
{
    struct quarantine q; /* a copy, taken under the sequence lock */
    uint32_t before, after;
    int tries = 0;

    do {
        before = __atomic_load_n(&m->quarantine.seq, __ATOMIC_ACQUIRE);
        memcpy(&q, &m->quarantine, sizeof(q));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        after = __atomic_load_n(&m->quarantine.seq, __ATOMIC_RELAXED);
    } while ((before != after || (before & 1u)) && ++tries < MAX_TRIES);
    for (uint32_t i = 0; i < q.n && i < IOLOOP_METRICS_MAX_PLUGINS; i++) {
        q.names[i][IOLOOP_METRICS_NAME_LEN - 1] = '\0';
        ioloop__metrics_printf(o, "%s{instance=\"", f->name);
        ioloop__metrics_label_value(o, q.names[i]);
        ioloop__metrics_printf(o, "\"} %d\n", q.on[i] != 0);
    }
}

static uint64_t
load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Single writer: a load and a store, no read-modify-write (no lock
 * prefix on x86). */
static void
bump(uint64_t *p, int64_t delta)
{
    __atomic_store_n(p, load(p) + (uint64_t) delta, __ATOMIC_RELAXED);
}

/* A slot a worker attached, not retired since. */
static int
slot_live(const struct metrics_slot *s)
{
    return __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != 0;
}

/* A slot a worker attached at least once: its counters count. */
static int
slot_used(const struct metrics_slot *s)
{
    return __atomic_load_n(&s->started_at, __ATOMIC_ACQUIRE) != 0;
}

/* The writer's side of the sequence lock (one writer per slot). */
static void
names_begin(struct metrics_slot *s)
{
    __atomic_store_n(&s->seq, __atomic_load_n(&s->seq, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
names_end(struct metrics_slot *s)
{
    __atomic_store_n(&s->seq, __atomic_load_n(&s->seq, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELEASE);
}

/* The reader's side: copies the names, retrying a torn copy. */
static void
names_read(const struct metrics_slot *s, struct identity *id)
{
    uint32_t before, after;
    int tries = 0;

    do {
        before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        id->nplugins = s->nplugins;
        if (id->nplugins > IOLOOP_METRICS_MAX_PLUGINS) {
            id->nplugins = IOLOOP_METRICS_MAX_PLUGINS;
        }
        memcpy(id->backend, s->backend, sizeof(id->backend));
        memcpy(id->plugins, s->plugins, id->nplugins * sizeof(id->plugins[0]));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        after = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    } while ((before != after || (before & 1u)) && ++tries < MAX_TRIES);
    id->backend[sizeof(id->backend) - 1] = '\0';
    for (uint32_t k = 0; k < id->nplugins; k++) {
        id->plugins[k][IOLOOP_METRICS_NAME_LEN - 1] = '\0';
    }
}

/*
 * Copies src into a name field. A name too long is cut; with index !=
 * SIZE_MAX the cut ends in "~<index>" ('~' never occurs in an instance
 * name), so two long instance names sharing a prefix stay two series.
 */
static void
name_copy(char *dst, const char *src, size_t index)
{
    size_t n = strlen(src), keep;
    char suffix[24] = "";
    int k = 0;

    if (n < IOLOOP_METRICS_NAME_LEN) {
        memcpy(dst, src, n + 1);
        return;
    }
    if (index != SIZE_MAX) {
        k = snprintf(suffix, sizeof(suffix), "~%zu", index);
    }
    keep = IOLOOP_METRICS_NAME_LEN - 1 - (size_t) k;
    memcpy(dst, src, keep);
    memcpy(dst + keep, suffix, (size_t) k);
    dst[IOLOOP_METRICS_NAME_LEN - 1] = '\0';
}

/* snprintf at o->pos; counts what did not fit, writes nothing past len. */
void
ioloop__metrics_printf(struct ioloop__metrics_out *o, const char *fmt, ...)
{
    size_t room = o->pos < o->len ? o->len - o->pos : 0;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(room > 0 ? o->buf + o->pos : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) {
        o->pos += (size_t) n;
    }
}

/* A label value, with \, " and newline escaped as the format requires. */
void
ioloop__metrics_label_value(struct ioloop__metrics_out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '\\':
            ioloop__metrics_printf(o, "\\\\");
            break;
        case '"':
            ioloop__metrics_printf(o, "\\\"");
            break;
        case '\n':
            ioloop__metrics_printf(o, "\\n");
            break;
        default:
            ioloop__metrics_printf(o, "%c", *s);
        }
    }
}
