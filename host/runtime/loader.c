/* host/runtime/loader.c: dlopen, ABI checks and the plugin lifecycle. */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "connect.h"
#include "http_server.h"
#include "json_path.h"
#include "log.h"
#include "net.h"
#include "path.h"
#include "signals.h"
#include "stream.h"
#include "tls.h"

/* The smallest descriptors ABI 1.0 allows: every 1.0 member present. */
#define BACKEND_MIN_SIZE \
    (offsetof(struct ioloop_backend, poll) + sizeof(void *))
#define PLUGIN_MIN_SIZE (offsetof(struct ioloop_plugin, fini) + sizeof(void *))

/* Whether descriptor d is large enough to have member (a newer one). */
#define PLUGIN_HAS(d, member)                                              \
    ((d)->size >= offsetof(struct ioloop_plugin, member) + sizeof(void *))

_Static_assert(BACKEND_MIN_SIZE <= sizeof(struct ioloop_backend),
               "backend ABI 1.0 layout");
_Static_assert(PLUGIN_MIN_SIZE <= sizeof(struct ioloop_plugin),
               "plugin ABI 1.0 layout");

static void *open_symbol(const char *path, const char *symbol,
                         const char *kind, void **dl, char *err,
                         size_t errlen);
static void note_config_place(ioloop_instance_t *p, const char *reason);
static void release(ioloop_instance_t *p, const char *after);
static int check_abi(const char *path, const char *kind, const void *table,
                     uint32_t abi, uint32_t size, uint32_t host_abi,
                     size_t min_size, size_t host_size, char *err,
                     size_t errlen);
static int check_build(const char *path, uint32_t build, char *err,
                       size_t errlen);

int
ioloop__backend_open(const char *path, struct ioloop_backend_lib *lib,
                     char *err, size_t errlen)
{
    const struct ioloop_backend *ops;
    const char *missing = NULL;

    memset(lib, 0, sizeof(*lib));
    ops = open_symbol(path, IOLOOP_BACKEND_SYMBOL, "backend", &lib->dl, err,
                      errlen);
    if (ops == NULL) {
        return -1;
    }
    if (check_abi(path, "backend", ops, ops->abi_version, ops->size,
                  IOLOOP_BACKEND_ABI, BACKEND_MIN_SIZE,
                  sizeof(struct ioloop_backend), err, errlen) < 0) {
        goto fail;
    }
    missing = ops->name == NULL      ? "name"
              : ops->create == NULL  ? "create"
              : ops->destroy == NULL ? "destroy"
              : ops->add == NULL     ? "add"
              : ops->modify == NULL  ? "modify"
              : ops->remove == NULL  ? "remove"
              : ops->poll == NULL    ? "poll"
                                     : NULL;
    if (missing != NULL) {
        snprintf(err, errlen, "%s: backend table lacks the mandatory '%s'",
                 path, missing);
        goto fail;
    }
    lib->ops = ops;
    snprintf(lib->path, sizeof(lib->path), "%s", path);
    return 0;

fail:
    dlclose(lib->dl);
    lib->dl = NULL;
    return -1;
}

void
ioloop__backend_close(struct ioloop_backend_lib *lib)
{
    if (lib->dl != NULL) {
        dlclose(lib->dl);
    }
    memset(lib, 0, sizeof(*lib));
}

int
ioloop__plugin_open(const char *path, void **dl,
                    const struct ioloop_plugin **desc, char *err,
                    size_t errlen)
{
    const struct ioloop_plugin *d;

    d = open_symbol(path, IOLOOP_PLUGIN_SYMBOL, "plugin", dl, err, errlen);
    if (d == NULL) {
        return -1;
    }
    if (ioloop__plugin_check(path, d, err, errlen) < 0) {
        dlclose(*dl);
        *dl = NULL;
        return -1;
    }
    *desc = d;
    return 0;
}

int
ioloop__plugin_check(const char *path, const struct ioloop_plugin *d,
                     char *err, size_t errlen)
{
    const char *missing;
    char reason[512];

    if (check_abi(path, "plugin", d, d->abi_version, d->size,
                  IOLOOP_PLUGIN_ABI, PLUGIN_MIN_SIZE,
                  sizeof(struct ioloop_plugin), err, errlen)
            < 0
        || check_build(path, d->build, err, errlen) < 0) {
        return -1;
    }
    missing = d->name == NULL   ? "name"
              : d->init == NULL ? "init"
              : d->fini == NULL ? "fini"
                                : NULL;
    if (missing != NULL) {
        snprintf(err, errlen, "%s: plugin descriptor lacks the mandatory '%s'",
                 path, missing);
        return -1;
    }
    if (ioloop__config_schema_check(d->config_schema, d->config_size, reason,
                                    sizeof(reason)) < 0) {
        snprintf(err, errlen, "%s: %s", path, reason);
        return -1;
    }
    return 0;
}

int
ioloop__plugins_load(struct ioloop_plugin_set *set,
                     const struct ioloop_instance_spec *specs, size_t n,
                     const char *plugin_dir, const char *config_dir,
                     char *err, size_t errlen, char *at, size_t atlen)
{
    struct ioloop__config_error bad;
    char reason[1024], base[sizeof(bad.path)];

    at[0] = '\0';
    set->n = 0;
    set->v = calloc(n ? n : 1, sizeof(*set->v));
    if (set->v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ioloop_instance_spec *e = &specs[i];
        ioloop_instance_t *p = &set->v[i];
        int rc = 0;

        p->owner.name = e->name;
        p->owner.has_log_level = e->log_level >= 0;
        p->owner.log_level = e->log_level;
        p->where = e->where;
        p->config = e->config;
        p->workers = 1;
        if (strchr(e->path, '/') != NULL) {
            snprintf(p->path, sizeof(p->path), "%s", e->path);
        } else {
            rc = ioloop__path_join(p->path, sizeof(p->path), plugin_dir,
                                   e->path);
        }
        if (rc < 0) {
            snprintf(reason, sizeof(reason), "%s: path too long", e->path);
        } else {
            rc = ioloop__plugin_open(p->path, &p->dl, &p->desc, reason,
                                     sizeof(reason));
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s \"%s\": %s", e->where, e->name, reason);
            ioloop__plugins_unload(set);
            return -1;
        }
        set->n++;
        p->one_process = e->one_process
                         || (p->desc->flags & IOLOOP_PLUGIN_ONE_PROCESS);
        snprintf(base, sizeof(base), "%s.config", e->where);
        if (ioloop__config_fill(p->desc->config_schema, p->desc->config_size,
                                e->config, base, config_dir, p->desc->name,
                                &p->values, &bad) < 0) {
            snprintf(err, errlen, "%s: %s", bad.path, bad.msg);
            snprintf(at, atlen, "%s", bad.path);
            ioloop__plugins_unload(set);
            return -1;
        }
    }
    return 0;
}

int
ioloop__plugins_init(struct ioloop_plugin_set *set, ioloop_loop_t *loop,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < set->n; i++) {
        ioloop_instance_t *p = &set->v[i];
        const struct ioloop_owner *previous;
        char reason[1024] = "", shown[1024];
        int rc;

        if (p->quarantined || p->elsewhere) {
            continue;
        }
        p->refused_at[0] = '\0';
        p->loop = loop;
        previous = ioloop__set_owner(loop, &p->owner);
        rc = p->desc->init(ioloop__api(), p, p->values.data, &p->state,
                           reason, sizeof(reason));
        ioloop__set_owner(loop, previous);
        if (rc == 0) {
            p->started = true;
            IOLOOP_LOG(IOLOOP_LOG_DEBUG, p->owner.name, "started (%s %s)",
                       p->desc->name, p->desc->version ? p->desc->version
                                                       : "?");
            continue;
        }
        release(p, "init failed");
        /* Whatever the plugin wrote, the message stays one line. */
        ioloop__escape_line(shown, sizeof(shown),
                            reason[0] ? reason
                                      : strerror(rc < 0 ? -rc : EINVAL));
        note_config_place(p, shown);
        snprintf(err, errlen, "%s \"%s\": init failed: %s", p->where,
                 p->owner.name, shown);
        ioloop__plugins_fini(set, loop);
        return rc < 0 ? rc : -EINVAL;
    }
    return 0;
}

void
ioloop__plugins_place(struct ioloop_plugin_set *set, unsigned index,
                      unsigned count)
{
    for (size_t i = 0; i < set->n; i++) {
        set->v[i].worker = index;
        set->v[i].workers = count;
        set->v[i].elsewhere = set->v[i].one_process && index != 0;
    }
}

void
ioloop__plugins_fini(struct ioloop_plugin_set *set, ioloop_loop_t *loop)
{
    for (size_t i = set->n; i-- > 0;) {
        ioloop_instance_t *p = &set->v[i];
        const struct ioloop_owner *previous;

        if (!p->started) {
            continue;
        }
        previous = ioloop__set_owner(loop, &p->owner);
        p->desc->fini(p->state);
        ioloop__set_owner(loop, previous);
        p->started = false;
        p->state = NULL;
        release(p, "fini");
    }
}

void
ioloop__plugins_drain(struct ioloop_plugin_set *set, ioloop_loop_t *loop)
{
    for (size_t i = set->n; i-- > 0;) {
        ioloop_instance_t *p = &set->v[i];
        const struct ioloop_owner *previous;

        if (!p->started) {
            continue;
        }
        previous = ioloop__set_owner(loop, &p->owner);
        if (PLUGIN_HAS(p->desc, drain) && p->desc->drain != NULL) {
            p->desc->drain(p->state);
        } else {
            ioloop__listeners_stop(loop, &p->owner);
        }
        ioloop__set_owner(loop, previous);
    }
}

void
ioloop__plugins_unload(struct ioloop_plugin_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        ioloop__config_free(&set->v[i].values);
        if (set->v[i].dl != NULL) {
            dlclose(set->v[i].dl);
        }
    }
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

/*
 * Releases what instance p still has registered after a failed init or
 * its fini: its code is about to be unloaded, so nothing may call into it
 * any more. Streams go first (they close their own handlers and timers),
 * then the callbacks they and the plugin queued. Logs one warning listing
 * what the plugin left behind, if anything.
 */
static void
release(ioloop_instance_t *p, const char *after)
{
    const struct ioloop_owner *o = &p->owner;
    size_t connects, streams, periodics, timers, callbacks, handlers;
    size_t listeners, tls;
    int signals;

    /* Its HTTP handlers go, its unfinished requests are answered 503. */
    ioloop__http_release_instance(p->loop, p);
    /* First: an attempt cancels its own timers, handler and lookup. */
    connects = ioloop__connect_release_owned(&p->connects);
    streams = ioloop__streams_release_owner(p->loop, o);
    periodics = ioloop__periodics_release_owner(p->loop, o);
    timers = ioloop__cancel_owner_timers(p->loop, o);
    callbacks = ioloop__drop_owner_callbacks(p->loop, o);
    signals = ioloop__signal_unsubscribe_owner(p->loop, o);
    handlers = ioloop__remove_owner_handlers(p->loop, o);
    listeners = ioloop__listeners_release(p->loop, o);
    /* Streams keep their own reference to a context: freeing it is safe
     * in any order. */
    tls = ioloop__tls_release_owned(&p->tls);
    if (connects + streams + periodics + timers + callbacks + handlers
                + listeners + tls > 0
        || signals > 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, o->name,
                   "%s left %zu connect attempt(s), %zu stream(s), %zu "
                   "periodic(s), %zu timer(s), %zu callback(s), %d signal "
                   "subscription(s), %zu handler(s), %zu open listener(s) "
                   "and %zu TLS context(s); released them",
                   after, connects, streams, periodics, timers, callbacks,
                   signals, handlers, listeners, tls);
    }
}

/*
 * An init that refuses a config value names it first, as the host's own
 * checks do ("config.routes[\"x\"]: a path must start with '/'"): keep
 * its place in the manifest, p->where + "." + that path, for the message.
 */
static void
note_config_place(ioloop_instance_t *p, const char *reason)
{
    size_t span = ioloop__json_path_span(reason);

    if (span >= 6 && strncmp(reason, "config", 6) == 0
        && (span == 6 || reason[6] == '.' || reason[6] == '[')
        && strncmp(reason + span, ": ", 2) == 0) {
        snprintf(p->refused_at, sizeof(p->refused_at), "%s.%.*s", p->where,
                 (int) span, reason);
    }
}

/* dlopen(RTLD_NOW | RTLD_LOCAL) and dlsym(symbol); NULL with err set. */
static void *
open_symbol(const char *path, const char *symbol, const char *kind,
            void **dl, char *err, size_t errlen)
{
    void *sym;

    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (*dl == NULL) {
        /* dlerror() already names the file: "x.so: invalid ELF header". */
        snprintf(err, errlen, "%s", dlerror());
        return NULL;
    }
    sym = dlsym(*dl, symbol);
    if (sym == NULL) {
        snprintf(err, errlen,
                 "%s: no symbol '%s': not an ioloop %s (or built without "
                 "IOLOOP_EXPORT)",
                 path, symbol, kind);
        dlclose(*dl);
        *dl = NULL;
    }
    return sym;
}

/*
 * The ABI rules: same major; a size below the 1.0 minimum is corrupt; an
 * older minor (smaller size) is accepted; a size above the host's (a newer
 * minor) is accepted when the bytes the host does not know are all zero,
 * so that the plugin uses no member the host lacks (Linux's
 * copy_struct_from_user), and refused naming the first non-zero one.
 */
static int
check_abi(const char *path, const char *kind, const void *table,
          uint32_t abi, uint32_t size, uint32_t host_abi, size_t min_size,
          size_t host_size, char *err, size_t errlen)
{
    const unsigned char *bytes = table;

    if (IOLOOP_ABI_MAJOR(abi) != IOLOOP_ABI_MAJOR(host_abi)) {
        snprintf(err, errlen,
                 "%s: %s ABI %u.%u, host %s ABI %u.%u: major versions "
                 "differ (rebuild it against this host's headers)",
                 path, kind, IOLOOP_ABI_MAJOR(abi), IOLOOP_ABI_MINOR(abi),
                 kind, IOLOOP_ABI_MAJOR(host_abi), IOLOOP_ABI_MINOR(host_abi));
        return -1;
    }
    if (size < min_size) {
        snprintf(err, errlen,
                 "%s: %s ABI %u.%u declares a %u-byte table, smaller than "
                 "the %zu bytes every %u.x table has (corrupt descriptor)",
                 path, kind, IOLOOP_ABI_MAJOR(abi), IOLOOP_ABI_MINOR(abi),
                 size, min_size, IOLOOP_ABI_MAJOR(host_abi));
        return -1;
    }
    for (size_t off = host_size; off < size; off++) {
        if (bytes[off] != 0) {
            snprintf(err, errlen,
                     "%s: %s ABI %u.%u with a %u-byte table sets byte %zu, "
                     "past the %zu bytes host %s ABI %u.%u knows: it needs "
                     "members this host lacks (upgrade the host)",
                     path, kind, IOLOOP_ABI_MAJOR(abi),
                     IOLOOP_ABI_MINOR(abi), size, off, host_size, kind,
                     IOLOOP_ABI_MAJOR(host_abi), IOLOOP_ABI_MINOR(host_abi));
            return -1;
        }
    }
    return 0;
}

/* A plugin must share the host's build signature; -1 naming both. */
static int
check_build(const char *path, uint32_t build, char *err, size_t errlen)
{
    static const char *const sanitizers[] = {"none", "ASan", "TSan",
                                             "ASan+TSan"};
    const uint32_t host = IOLOOP_BUILD_SIGNATURE;

    if (build == host) {
        return 0;
    }
    snprintf(err, errlen,
             "%s: plugin built for %u-byte pointers, %u-byte time_t, "
             "sanitizer %s, ABI major %u; host: %u-byte pointers, %u-byte "
             "time_t, sanitizer %s, ABI major %u (rebuild it with this "
             "host's headers and sanitizer flags)",
             path, IOLOOP_BUILD_POINTER(build), IOLOOP_BUILD_TIME_T(build),
             IOLOOP_BUILD_SANITIZER(build) < 4
                 ? sanitizers[IOLOOP_BUILD_SANITIZER(build)]
                 : "unknown",
             IOLOOP_BUILD_MAJOR(build), IOLOOP_BUILD_POINTER(host),
             IOLOOP_BUILD_TIME_T(host),
             sanitizers[IOLOOP_BUILD_SANITIZER(host)],
             IOLOOP_BUILD_MAJOR(host));
    return -1;
}
