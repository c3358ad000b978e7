/*
 * host/app/setup.h: what a manifest asks for, loaded and checked but nothing
 * started: the manifest, every plugin .so (opened and ABI-checked) and
 * the backend folder. --check, start-up and a reload all go through it.
 */
#ifndef IOLOOP_HOST_SETUP_H
#define IOLOOP_HOST_SETUP_H

#include <limits.h>
#include <stddef.h>

#include "loader.h"
#include "loop.h"
#include "manifest.h"

struct ioloop_setup {
    struct ioloop_manifest m;
    struct ioloop_plugin_set plugins;
    char backend_dir[PATH_MAX];
};

/*
 * Loads config (backend replaced by backend_override when not NULL) and
 * every plugin it names. Returns 0, or -1 with one line in err that names
 * the manifest and the place, and *s zeroed.
 */
int ioloop__setup_load(struct ioloop_setup *s, const char *config,
                       const char *backend_override, char *err,
                       size_t errlen);

/*
 * --check, short of binding: runs every plugin's real init on loop with
 * the listen helpers in check mode (they validate their address exactly
 * as a start does and bind nothing), then every fini, last first; on an
 * init failure the instances already started are stopped as in a start.
 * Returns 0, or -1 with err worded as a start words it:
 * "plugins[1] \"name\": init failed: <reason>".
 */
int ioloop__setup_check(struct ioloop_setup *s, ioloop_loop_t *loop,
                        char *err, size_t errlen);

/*
 * ioloop__log_configure with the manifest's log level, format and
 * per-instance levels (log.plugins). Returns 0 or -errno, as that does.
 */
int ioloop__setup_log(const struct ioloop_manifest *m);

/* Unloads the plugins and frees the manifest. Safe on a zeroed struct. */
void ioloop__setup_free(struct ioloop_setup *s);

/*
 * Writes the line for err, a failure of ioloop__setup_check or of
 * ioloop__plugins_init on s->plugins: "<manifest>:<line>:<column>: err"
 * when the init refused a config value it named (see refused_at in
 * loader.h: its reason started with that value's path), else
 * "<manifest>: err".
 */
void ioloop__setup_message(const struct ioloop_setup *s, const char *err,
                           char *out, size_t len);

#endif /* IOLOOP_HOST_SETUP_H */
