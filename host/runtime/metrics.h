/*
 * host/runtime/metrics.h: the metrics segment, shared by the master and its
 * workers, and its rendering in the Prometheus text format (0.0.4) for
 * the API's metrics_render (the bundled status plugin serves it).
 *
 * The master maps one segment (MAP_SHARED | MAP_ANONYMOUS) before it
 * forks and gives each worker a slot; the single-process host uses a
 * segment of one slot. Each slot is written by the worker that owns it
 * (its loop counts straight into the slot, see ioloop__set_stats), and by
 * the master for the restart count only; any worker reads every slot, so
 * the status instance that receives a scrape reports all the workers,
 * labelled worker="<slot>". Readers see each value whole (64-bit relaxed
 * atomics) but not one consistent snapshot, as Prometheus expects of a
 * live process.
 *
 * A slot is self-describing: its worker writes its own backend name and
 * plugin instance names (under a sequence lock), so a reload that changes
 * the manifest needs no agreement between processes on instance indexes.
 *
 * A process attaches one loop at a time (a worker has one): the counting
 * hooks below take the loop and do nothing for a loop that is not
 * attached, so unit tests with bare loops need no segment.
 */
#ifndef IOLOOP_HOST_METRICS_H
#define IOLOOP_HOST_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ioloop/loop.h>

#include "loop.h"

/* Most slots (workers) one segment holds. */
#define IOLOOP_METRICS_MAX_SLOTS 4096
/* Plugin instances per slot whose watchdog stalls are counted. */
#define IOLOOP_METRICS_MAX_PLUGINS 64
/* Room for a backend or instance name, NUL included. */
#define IOLOOP_METRICS_NAME_LEN 64
/* Registered series (counters, gauges, histograms: the plugins' and the
 * host's HTTP layer's) per slot, and the 64-bit cells holding their values
 * (a counter or gauge takes one, a histogram its buckets + 2). Both are
 * kept across the workers that use a slot, so a reload that renames
 * series uses up room: 256 series of about 600 bytes and 32 KiB of cells
 * make a slot about 190 KiB, touched only as far as it is used. */
#define IOLOOP_METRICS_MAX_SERIES 256
#define IOLOOP_METRICS_MAX_CELLS 4096
/* Bounds per histogram (+Inf aside), label pairs per series, the room for
 * a series' labels as rendered (escaped), HELP text, and a label name or
 * (counter_register) value, NUL included. */
#define IOLOOP_METRICS_MAX_BUCKETS 16
#define IOLOOP_METRICS_MAX_LABELS 8
#define IOLOOP_METRICS_LABELS_LEN 192
#define IOLOOP_METRICS_HELP_LEN 128
#define IOLOOP_METRICS_LABEL_LEN 32

struct ioloop_metrics;
struct ioloop_plugin_set;

/*
 * Maps a zeroed shared segment of nslots slots, 1 to
 * IOLOOP_METRICS_MAX_SLOTS. Call it before fork(): children inherit the
 * mapping. Returns NULL with errno set (EINVAL, or mmap's ENOMEM).
 */
struct ioloop_metrics *ioloop__metrics_create(unsigned nslots);

/*
 * The master: slots i, i + nworkers, i + 2 nworkers... hold generations
 * of the same worker i, rendered as worker="i" (default: every slot is a
 * worker of its own). Returns 0, or -EINVAL for 0 or more than the slots.
 */
int ioloop__metrics_set_workers(struct ioloop_metrics *m, unsigned nworkers);

/* Unmaps the segment (in each process that has it). NULL is a no-op. */
void ioloop__metrics_free(struct ioloop_metrics *m);

/*
 * Makes loop count into slot (< nslots) of m, in this process, from now
 * on: the loop's counters, added to those the slot kept from its previous
 * workers, move into the slot (ioloop__set_stats), and the slot is
 * stamped with this process's pid, the start time and the loop's backend;
 * the gauges (open connections) restart at 0, every counter goes on
 * (stalls by instance name, in set_plugins). Attach before the loop's first
 * stream, so that the open-connections gauge sees every close. Returns 0,
 * -EINVAL (bad slot, or m is not a segment), or -EBUSY (this process
 * already has an attached loop, maybe inherited through fork: detach it
 * first).
 */
int ioloop__metrics_attach(ioloop_loop_t *loop, struct ioloop_metrics *m,
                           unsigned slot);

/*
 * Undoes attach: the loop counts into its own stats again (the slot keeps
 * its last values). Call it before ioloop_loop_free. No-op for a loop that
 * is not attached.
 */
void ioloop__metrics_detach(ioloop_loop_t *loop);

/*
 * Publishes the instance names of set in the attached slot and remembers
 * their owners for ioloop__metrics_count_stall. Instances past
 * IOLOOP_METRICS_MAX_PLUGINS are not counted (logged once at warn); a
 * name too long for the slot is cut and suffixed "~<index>" so that
 * series stay distinct. set must outlive the attachment (its instances
 * never move). Call it before the watchdog starts. No-op when loop is not
 * attached.
 */
void ioloop__metrics_set_plugins(ioloop_loop_t *loop,
                                 const struct ioloop_plugin_set *set);

/* Re-reads the loop's backend name into its slot: call it after a live
 * swap (ioloop__switch_backend). No-op when loop is not attached. */
void ioloop__metrics_note_backend(ioloop_loop_t *loop);

/* The master: counts one restart of the worker in slot (a crashed
 * worker replaced in the same slot). */
void ioloop__metrics_note_restart(struct ioloop_metrics *m, unsigned slot);

/*
 * The master: the worker of slot is gone for good (an old generation
 * drained, a quarantine, the end): its gauges are no longer rendered; its
 * counters still count in its worker label's sums, and go on with the
 * next worker placed there. Call it after the worker was reaped, never
 * while it runs.
 */
void ioloop__metrics_retire(struct ioloop_metrics *m, unsigned slot);

/*
 * The watchdog (watchdog_kill_ms), from its monitor thread: the loop has
 * been running one callback, timer or handler of owner since since
 * (CLOCK_MONOTONIC ns); owner NULL with since 0: it is not any more.
 * No-op when no loop is attached.
 */
void ioloop__metrics_note_blocked(const struct ioloop_owner *owner,
                                  ioloop_time_t since);

/*
 * The master: since when worker pid, in slot, has been blocked in one
 * run (CLOCK_MONOTONIC ns); 0 when it is not, or when the slot does not
 * hold pid's values (yet). plugin gets the instance name ("host" for the
 * host's own code).
 */
ioloop_time_t ioloop__metrics_blocked(const struct ioloop_metrics *m,
                                      unsigned slot, pid_t pid, char *plugin,
                                      size_t len);

/*
 * The master: publishes the instances of its manifest (set) and which of
 * them it quarantined, rendered as ioloop_instance_quarantined (the
 * first IOLOOP_METRICS_MAX_PLUGINS). Call it again after a change.
 */
void ioloop__metrics_set_quarantined(struct ioloop_metrics *m,
                                     const struct ioloop_plugin_set *set);

/*
 * A connection accept() returned (net.c): O(1), no lock, no system call;
 * loop thread only; a no-op when loop is not attached. The open-streams
 * gauge needs no hook: the core counts it in the loop's stats.
 */
void ioloop__metrics_count_accept(ioloop_loop_t *loop);

/*
 * Counts one watchdog stall against owner, an instance given to
 * ioloop__metrics_set_plugins (any other owner, e.g. the host's, is not
 * counted). Async-signal-safe and callable from any thread: a scan of at
 * most IOLOOP_METRICS_MAX_PLUGINS pointers and one atomic add.
 */
void ioloop__metrics_count_stall(const struct ioloop_owner *owner);

/*
 * The API's counter_register: a series of the calling instance (the
 * loop's current owner) in the attached slot, rendered after the host's
 * families as name{worker="W",instance="OWNER",label="value"}. Returns
 * its handle, -EINVAL (a name that is not [a-zA-Z_:][a-zA-Z0-9_:]*_total
 * or is a host family; a label that is not [a-zA-Z_][a-zA-Z0-9_]* or is
 * "worker" or "instance"; a help with a newline or backslash, or other
 * than the family's; a string too long), -ENOSPC (the slot holds
 * IOLOOP_METRICS_MAX_SERIES series or its cells are used up), -ENOTSUP
 * (loop not attached).
 */
int ioloop__metrics_counter_register(ioloop_loop_t *loop, const char *name,
                                     const char *help, const char *label,
                                     const char *value);

/*
 * The API's counter_register_labels, gauge_register and
 * histogram_register: as counter_register, with labels given as name,
 * value pairs, NULL-terminated (NULL: none; at most
 * IOLOOP_METRICS_MAX_LABELS, rendered sorted by name, together under
 * IOLOOP_METRICS_LABELS_LEN bytes once escaped; a name at most once).
 * A gauge's or histogram's name must not end in _total, a histogram's
 * neither in _bucket, _sum nor _count, nor may it use the label le; its
 * bounds are 1 to IOLOOP_METRICS_MAX_BUCKETS finite, strictly increasing
 * values (+Inf is implied). The same series registered again (by the same
 * worker, or by the next one in the slot) is the same handle: a counter
 * and a histogram carry on from their totals, a gauge starts at 0.
 */
int ioloop__metrics_counter_labels(ioloop_loop_t *loop, const char *name,
                                   const char *help,
                                   const char *const *labels);
int ioloop__metrics_gauge_register(ioloop_loop_t *loop, const char *name,
                                   const char *help,
                                   const char *const *labels);
int ioloop__metrics_histogram_register(ioloop_loop_t *loop, const char *name,
                                       const char *help,
                                       const char *const *labels,
                                       const double *bounds, size_t nbounds);

/* The hot calls (counter_add, gauge_set, gauge_add, histogram_observe):
 * O(1), no lock, no allocation, no lookup; loop thread only; a handle
 * that is not a series of that kind (e.g. negative) is a no-op. */
void ioloop__metrics_counter_add(ioloop_loop_t *loop, int handle, uint64_t n);
void ioloop__metrics_gauge_set(ioloop_loop_t *loop, int handle, double v);
void ioloop__metrics_gauge_add(ioloop_loop_t *loop, int handle,
                               double delta);
void ioloop__metrics_observe(ioloop_loop_t *loop, int handle, double v);

/*
 * The API's metrics_render: renders every slot of loop's segment that a
 * worker attached (and the master did not retire since) into buf as
 * Prometheus text (0.0.4), NUL-terminated. Returns the length (without
 * the NUL); with buf NULL and len 0, the length it would need (snprintf's
 * idiom: allocate that plus 1, and some slack, since values keep
 * growing); -ENOBUFS when len is too small (buf then holds ""); -EINVAL
 * for a NULL buf with len > 0; -ENOTSUP when loop is not attached. Loop
 * thread only.
 */
int ioloop__metrics_render(ioloop_loop_t *loop, char *buf, size_t len);

#endif /* IOLOOP_HOST_METRICS_H */
