/*
 * host/runtime/loader.h: dlopen()s backends and plugins, checks their ABI, and
 * runs the plugins' lifecycle: every plugin is loaded and checked before
 * any init runs; fini runs in reverse order.
 */
#ifndef IOLOOP_HOST_LOADER_H
#define IOLOOP_HOST_LOADER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <ioloop/backend.h>
#include <ioloop/plugin.h>

#include <jansson.h>

#include "config_schema.h"
#include "loop.h"

struct ioloop_backend_lib {
    void *dl;
    const struct ioloop_backend *ops;
    char path[PATH_MAX];
};

/*
 * What the loader is asked to start: one plugin instance, as the process
 * model's config gave it. The strings and config are borrowed and must
 * outlive the plugin set.
 */
struct ioloop_instance_spec {
    const char *name;     /* instance name, unique */
    const char *path;     /* the .so; a bare file name is found in the
                             plugin folder */
    const char *where;    /* JSON path of the entry, e.g. "plugins[1]" */
    const json_t *config; /* the raw "config" object, or NULL */
    int log_level;        /* IOLOOP_LOG_* for its lines, or -1: default */
    bool one_process;     /* run in worker 0 only (the descriptor's
                             IOLOOP_PLUGIN_ONE_PROCESS also says so) */
};

/*
 * A plugin instance: one manifest entry. The API table's context
 * (ioloop_instance_t): every API call names it, and everything registered
 * through it is owned by owner.
 */
struct ioloop_instance_s {
    struct ioloop_owner owner; /* name: the manifest's instance name */
    ioloop_loop_t *loop;       /* set by ioloop__plugins_init */
    unsigned worker;           /* this process's worker index */
    unsigned workers;          /* the manifest's worker count (1: none) */
    bool one_process;          /* the descriptor's flag or the manifest's */
    const char *where;         /* "plugins[1]" */
    const json_t *config;      /* raw, as the spec gave it (reload diffs) */
    struct ioloop__config values; /* config filled from the schema: what
                                     init gets, freed at unload */
    char path[PATH_MAX];
    void *dl;
    const struct ioloop_plugin *desc;
    void *state;
    ioloop_connect_t *connects; /* pending connect_tcp attempts */
    ioloop_tls_t *tls;          /* its TLS contexts (tls_new) */
    bool started; /* init succeeded; fini is due */
    bool quarantined; /* set by the master before it forks: the workers
                         run without this instance (init never runs) */
    bool elsewhere;   /* one_process, and this is not worker 0: another
                         process runs it (init never runs here) */
    /* After its init failed naming a config value ("config.routes[\"x\"]:
     * ..."), that value's JSON path in the manifest
     * ("plugins[1].config.routes[\"x\"]"), else "". */
    char refused_at[320];
};

struct ioloop_plugin_set {
    struct ioloop_instance_s *v; /* never moves: owners point in */
    size_t n;
};

/*
 * Opens a backend .so and checks its ABI (major, size, mandatory ops).
 * Returns 0, or -1 with one line in err that names the file, the versions
 * and the failed check.
 */
int ioloop__backend_open(const char *path, struct ioloop_backend_lib *lib,
                         char *err, size_t errlen);
void ioloop__backend_close(struct ioloop_backend_lib *lib);

/*
 * Opens and checks a plugin .so (no init), its config schema included.
 * Returns 0, or -1 with err. Exposed for --plugin-info and the loader
 * tests.
 */
int ioloop__plugin_open(const char *path, void **dl,
                        const struct ioloop_plugin **desc, char *err,
                        size_t errlen);

/*
 * The checks of ioloop__plugin_open on a descriptor already in memory
 * (libioloop_testing's): ABI major and size, mandatory members. Returns 0,
 * or -1 with err naming path.
 */
int ioloop__plugin_check(const char *path, const struct ioloop_plugin *d,
                         char *err, size_t errlen);

/*
 * Loads and checks the n plugins of specs, and validates and fills each
 * one's config against its schema (relative PATH values resolved against
 * config_dir), all before any init. Bare file names are found in
 * plugin_dir. On failure nothing stays loaded and err reads
 * "plugins[1] \"name\": <reason>", or for a refused config value
 * "plugins[1].config.KEY: <reason>" with the value's JSON path in at
 * (at is "" otherwise), for the caller to turn into a line:column.
 * Returns 0 or -1.
 */
int ioloop__plugins_load(struct ioloop_plugin_set *set,
                         const struct ioloop_instance_spec *specs, size_t n,
                         const char *plugin_dir, const char *config_dir,
                         char *err, size_t errlen, char *at, size_t atlen);

/*
 * Runs every init in manifest order, skipping quarantined instances
 * (they stay not started: no drain, no fini). When one fails, releases
 * what it registered (as after fini), runs fini for those already
 * started (in reverse), and returns init's -errno (-EINVAL for any other
 * failure) with
 * err = "plugins[1] \"name\": init failed: <its reason>".
 */
int ioloop__plugins_init(struct ioloop_plugin_set *set, ioloop_loop_t *loop,
                         char *err, size_t errlen);

/*
 * Tells every instance which worker this process is (index in [0,
 * count)); a one_process instance is then started by worker 0 only (the
 * others skip it as if quarantined). Without workers the host serves as
 * worker 0 of 1, the default after ioloop__plugins_load.
 */
void ioloop__plugins_place(struct ioloop_plugin_set *set, unsigned index,
                           unsigned count);

/* Runs fini for every started instance, last first, then releases what
 * each fini left registered. */
void ioloop__plugins_fini(struct ioloop_plugin_set *set, ioloop_loop_t *loop);

/*
 * Starts the graceful stop of every started instance, last first: its
 * drain, or for a plugin without one, the host stops its listeners.
 */
void ioloop__plugins_drain(struct ioloop_plugin_set *set,
                           ioloop_loop_t *loop);

/* dlclose()s everything and frees the set. */
void ioloop__plugins_unload(struct ioloop_plugin_set *set);

#endif /* IOLOOP_HOST_LOADER_H */
