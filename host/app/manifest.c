/*
 * host/app/manifest.c: reads the JSON manifest with jansson, checks it against
 * the schema (README.md, "The manifest") and fills struct ioloop_manifest.
 * Nothing is loaded or bound here: this file validates, resolves relative
 * paths against the manifest's folder (never the working directory) and
 * writes one-line messages that name the file, the line:column of the
 * offending value and its JSON path. The typed keys (paths, durations,
 * integers, log level and format) go through the config engine the
 * plugins' configs use (config_schema.h); the structure (backend lists,
 * plugin entries, cross-key rules) is checked here.
 */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ioloop/config.h>
#include <ioloop/loop.h>

#include "config_schema.h"
#include "json_path.h"

/* A manifest is a few hundred bytes. Anything this large is a mistake (or
 * /dev/zero) and is refused with EFBIG instead of being read forever. */
#define MANIFEST_MAX_BYTES (4u << 20)

/* Room for one JSON path ("plugins[12].config") and for one quoted value
 * in a message. Longer ones are cut; a message stays one line anyway. */
#define MANIFEST_PATH_MAX  256
#define MANIFEST_QUOTE_MAX 128

/* An instance name is in every log line and metric label of the
 * instance: short enough to read, and never cut. */
#define MANIFEST_NAME_MAX 64

/* The state of one load: what is being filled and where messages go. */
struct manifest_parse {
    const char *file;           /* the path as given: prefix of messages */
    const char *text;           /* the file's text, to locate values */
    size_t len;
    char *err;
    size_t errlen;
    struct ioloop_manifest *m;
};

/* The typed top-level keys, as the config engine fills them. */
struct manifest_top {
    const char *backend_dir;
    const char *plugin_dir;
    const char *pid_file;
    ioloop_time_t shutdown_timeout;
    int64_t watchdog_ms;
    int64_t watchdog_kill_ms;
};

/* The typed keys of "log". */
struct manifest_log {
    int level;  /* index in manifest_level_names */
    int format; /* index in manifest_formats: 0 plain, 1 json */
};

/* A growing list of backend names without duplicates. */
struct manifest_names {
    char **v;
    size_t n;
    size_t cap;
};

static int manifest_read(struct manifest_parse *p, char **text, size_t *len);
static int manifest_find_dir(struct manifest_parse *p);
static int manifest_check_keys(struct manifest_parse *p, json_t *obj,
                               const char *base,
                               const char *const allowed[]);
static int manifest_parse_backend(struct manifest_parse *p, const char *key,
                                  const json_t *v, char ***out, size_t *nout);
static int manifest_take_backend(struct manifest_parse *p,
                                 struct manifest_names *names,
                                 const char *where, const char *name);
static int manifest_typed(struct manifest_parse *p, json_t *obj,
                          const char *base,
                          const struct ioloop_config_field *schema,
                          size_t size, void *out,
                          struct ioloop__config *c);
static int manifest_parse_log(struct manifest_parse *p, json_t *v);
static int manifest_level(struct manifest_parse *p, const json_t *v,
                          const char *where, int *level);
static int manifest_parse_plugin_levels(struct manifest_parse *p, json_t *v);
static int manifest_parse_process(struct manifest_parse *p, json_t *root);
static int manifest_parse_plugins(struct manifest_parse *p, json_t *v);
static int manifest_parse_plugin(struct manifest_parse *p, json_t *v,
                                 size_t i);
static int manifest_plugin_string(struct manifest_parse *p, json_t *v,
                                  const char *where, const char *key,
                                  const char **out);
static int manifest_names_add(struct manifest_names *l, const char *name);
static void manifest_names_free(char **v, size_t n);
static int manifest_backend_name_ok(const char *s);
static int manifest_plugin_name_ok(const char *s);
static char *manifest_resolve(const char *dir, const char *value);
static const char *manifest_type(const json_t *v);
static int manifest_fail(struct manifest_parse *p, const char *path,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void manifest_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *const ioloop__auto_backends[] = {
    "epoll", "kqueue", "poll", "select", NULL
};

/* The keys each object of the schema may hold. */
static const char *const manifest_top_keys[] = {
    "backend", "backend_swap", "backend_dir", "plugin_dir", "log", "plugins",
    "workers", "shutdown_timeout", "watchdog_ms", "watchdog_kill_ms",
    "pid_file", NULL
};
static const char *const manifest_log_keys[] = {
    "level", "format", "plugins", NULL
};
static const char *const manifest_plugin_keys[] = {
    "name", "path", "config", "one_process", NULL
};

/* The level names, in the order of IOLOOP_LOG_* (error is 0). */
static const char *const manifest_level_names[] = {
    "error", "warn", "info", "debug", NULL
};
static const char *const manifest_formats[] = {"plain", "json", NULL};

/*
 * The typed top-level keys. The loop's clock ticks in 1 ms (backends wait
 * in milliseconds), so no duration is below 1 ms: 1e-12 would round to 0.
 */
static const struct ioloop_config_field manifest_top_schema[] = {
    IOLOOP_CONFIG_PATH(struct manifest_top, backend_dir, NULL, 0,
                       "Folder of the backend .so files."),
    IOLOOP_CONFIG_PATH(struct manifest_top, plugin_dir, NULL, 0,
                       "Folder where bare plugin file names are found."),
    IOLOOP_CONFIG_PATH(struct manifest_top, pid_file, NULL, 0,
                       "Where the host writes its pid, locked."),
    IOLOOP_CONFIG_DURATION(struct manifest_top, shutdown_timeout,
                           IOLOOP_NS_PER_MS, 3600 * IOLOOP_NS_PER_S, "10s",
                           0, "How long a graceful stop waits."),
    IOLOOP_CONFIG_INT(struct manifest_top, watchdog_ms, 0, 3600000, "0", 0,
                      "Blocking-callback threshold; 0: off."),
    IOLOOP_CONFIG_INT(struct manifest_top, watchdog_kill_ms, 0, 3600000, "0",
                      0, "The master replaces a worker blocked so long."),
    IOLOOP_CONFIG_END,
};

static const struct ioloop_config_field manifest_log_schema[] = {
    IOLOOP_CONFIG_ENUM(struct manifest_log, level, manifest_level_names,
                       "info", 0, "The least severe level logged."),
    IOLOOP_CONFIG_ENUM(struct manifest_log, format, manifest_formats,
                       "plain", 0, "Plain lines or JSON lines."),
    IOLOOP_CONFIG_END,
};

/*
 * Reads and validates the manifest at path. Everything is built in a
 * local struct and copied into *m only on success, so that every failure
 * path frees through ioloop__manifest_free() and leaves *m zeroed. *m is
 * overwritten, not freed: pass a zeroed or already freed struct.
 */
int
ioloop__manifest_load(const char *path, struct ioloop_manifest *m,
                      char *err, size_t errlen)
{
    struct ioloop_manifest tmp;
    struct manifest_parse p;
    json_error_t jerr;
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    memset(m, 0, sizeof *m);
    memset(&tmp, 0, sizeof tmp);
    p.file = path;
    p.text = NULL;
    p.len = 0;
    p.err = err;
    p.errlen = errlen;
    p.m = &tmp;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }

    if (manifest_read(&p, &text, &len) != 0) {
        goto cleanup;
    }
    p.text = text;
    p.len = len;

    /* JSON_DECODE_ANY lets `42` or `"x"` reach the clearer top-level type
     * message below instead of jansson's "'[' or '{' expected". */
    tmp.root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                          &jerr);
    if (tmp.root == NULL) {
        manifest_set_err(err, errlen, "%s:%d:%d: syntax error: %s", path,
                         jerr.line, jerr.column, jerr.text);
        goto cleanup;
    }
    if (!json_is_object(tmp.root)) {
        manifest_fail(&p, "", "expected an object at the top level, got %s",
                      manifest_type(tmp.root));
        goto cleanup;
    }

    tmp.file = strdup(path);
    if (tmp.file == NULL) {
        manifest_fail(&p, NULL, "out of memory");
        goto cleanup;
    }
    if (manifest_find_dir(&p) != 0
        || manifest_check_keys(&p, tmp.root, "", manifest_top_keys) != 0
        || manifest_parse_backend(&p, "backend",
                                  json_object_get(tmp.root, "backend"),
                                  &tmp.backends, &tmp.nbackends) != 0
        || manifest_parse_backend(&p, "backend_swap",
                                  json_object_get(tmp.root, "backend_swap"),
                                  &tmp.swap, &tmp.nswap) != 0
        || manifest_parse_log(&p, json_object_get(tmp.root, "log")) != 0
        || manifest_parse_plugins(&p, json_object_get(tmp.root, "plugins"))
           != 0
        || manifest_parse_plugin_levels(&p, json_object_get(tmp.root, "log"))
           != 0
        || manifest_parse_process(&p, tmp.root) != 0)
    {
        goto cleanup;
    }

    tmp.text = text;
    tmp.text_len = len;
    text = NULL;
    *m = tmp;
    memset(&tmp, 0, sizeof tmp);
    rc = 0;

cleanup:
    ioloop__manifest_free(&tmp);
    free(text);
    return rc;
}


/*
 * Replaces m->backends with name ("auto" expands). On failure m is left
 * as it was and err says "--backend: ...".
 */
int
ioloop__manifest_set_backend(struct ioloop_manifest *m, const char *name,
                             char *err, size_t errlen)
{
    struct manifest_names names = { NULL, 0, 0 };
    char q[MANIFEST_QUOTE_MAX];

    if (name == NULL || !manifest_backend_name_ok(name)) {
        ioloop__json_quote(q, sizeof q, name != NULL ? name : "");
        manifest_set_err(err, errlen, "--backend: invalid backend name %s", q);
        return -1;
    }
    if (manifest_names_add(&names, name) != 0) {
        manifest_names_free(names.v, names.n);
        manifest_set_err(err, errlen, "--backend: out of memory");
        return -1;
    }

    manifest_names_free(m->backends, m->nbackends);
    m->backends = names.v;
    m->nbackends = names.n;
    return 0;
}


void
ioloop__manifest_free(struct ioloop_manifest *m)
{
    size_t i;

    if (m == NULL) {
        return;
    }
    for (i = 0; i < m->nplugins; i++) {
        free(m->plugins[i].name);
        free(m->plugins[i].path);
    }
    free(m->plugins);
    manifest_names_free(m->backends, m->nbackends);
    manifest_names_free(m->swap, m->nswap);
    free(m->backend_dir);
    free(m->plugin_dir);
    free(m->pid_file);
    free(m->dir);
    free(m->file);
    free(m->text);
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}


/*
 * Reads the whole file p->file into a malloc'ed buffer (*text, *len; not
 * NUL-terminated). Returns 0, or -1 with "<file>: cannot read: <strerror>"
 * in the message: a folder fails with EISDIR, a file of MANIFEST_MAX_BYTES
 * or more with EFBIG.
 */
static int
manifest_read(struct manifest_parse *p, char **text, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    char *nbuf;
    size_t cap = 0;
    size_t n = 0;
    ssize_t r;
    int fd;
    int e;

    fd = open(p->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        e = EISDIR;
        goto fail;
    }

    for ( ;; ) {
        if (n == cap) {
            if (cap >= MANIFEST_MAX_BYTES) {
                e = EFBIG;
                goto fail;
            }
            cap = cap == 0 ? 4096 : cap * 2;
            nbuf = realloc(buf, cap);
            if (nbuf == NULL) {
                e = ENOMEM;
                goto fail;
            }
            buf = nbuf;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            e = errno;
            goto fail;
        }
        if (r == 0) {
            break;
        }
        n += (size_t) r;
    }

    close(fd);
    *text = buf;
    *len = n;
    return 0;

fail:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    return manifest_fail(p, NULL, "cannot read: %s", strerror(e));
}


/* Sets m->dir to the realpath of the manifest's dirname. Returns 0 or -1. */
static int
manifest_find_dir(struct manifest_parse *p)
{
    char *copy;
    char *dir;
    int e;

    copy = strdup(p->file);
    if (copy == NULL) {
        return manifest_fail(p, NULL, "out of memory");
    }
    dir = realpath(dirname(copy), NULL);
    e = errno;
    free(copy);
    if (dir == NULL) {
        return manifest_fail(p, NULL,
                             "cannot resolve the manifest's folder: %s",
                             strerror(e));
    }
    p->m->dir = dir;
    return 0;
}


/*
 * Checks every key of obj against the NULL-terminated allowed list, in
 * document order. Returns 0, or -1 naming the first unknown key as
 * "<base>.<key>: unknown key" (just "<key>" when base is "").
 */
static int
manifest_check_keys(struct manifest_parse *p, json_t *obj, const char *base,
                    const char *const allowed[])
{
    char path[MANIFEST_PATH_MAX];
    const char *key;
    void *it;
    size_t i;

    for (it = json_object_iter(obj); it != NULL;
         it = json_object_iter_next(obj, it))
    {
        key = json_object_iter_key(it);
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                break;
            }
        }
        if (allowed[i] == NULL) {
            ioloop__json_key_path(path, sizeof path, base, key);
            return manifest_fail(p, path, "unknown key");
        }
    }
    return 0;
}


/*
 * Fills *out from the list of backend names at key (v; NULL when absent:
 * "auto" for "backend", an empty list otherwise): a name or a non-empty
 * array of names, "auto" expanded, duplicates dropped after their first
 * appearance. Returns 0 or -1.
 */
static int
manifest_parse_backend(struct manifest_parse *p, const char *key,
                       const json_t *v, char ***out, size_t *nout)
{
    struct manifest_names names = { NULL, 0, 0 };
    char where[MANIFEST_PATH_MAX];
    const json_t *item;
    size_t i;
    int rc = -1;

    if (v == NULL) {
        if (strcmp(key, "backend") == 0
            && manifest_take_backend(p, &names, key, "auto") != 0) {
            goto cleanup;
        }
    } else if (json_is_string(v)) {
        if (manifest_take_backend(p, &names, key, json_string_value(v))
            != 0)
        {
            goto cleanup;
        }
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0) {
            manifest_fail(p, key, "empty list");
            goto cleanup;
        }
        json_array_foreach(v, i, item) {
            snprintf(where, sizeof where, "%s[%zu]", key, i);
            if (!json_is_string(item)) {
                manifest_fail(p, where, "expected a string, got %s",
                              manifest_type(item));
                goto cleanup;
            }
            if (manifest_take_backend(p, &names, where,
                                      json_string_value(item)) != 0)
            {
                goto cleanup;
            }
        }
    } else {
        manifest_fail(p, key, "expected a string or an array of strings,"
                      " got %s", manifest_type(v));
        goto cleanup;
    }

    *out = names.v;
    *nout = names.n;
    names.v = NULL;
    names.n = 0;
    rc = 0;

cleanup:
    manifest_names_free(names.v, names.n);
    return rc;
}


/* Validates one backend name found at where and appends it to names. */
static int
manifest_take_backend(struct manifest_parse *p, struct manifest_names *names,
                      const char *where, const char *name)
{
    char q[MANIFEST_QUOTE_MAX];

    if (!manifest_backend_name_ok(name)) {
        ioloop__json_quote(q, sizeof q, name);
        return manifest_fail(p, where, "invalid backend name %s", q);
    }
    if (manifest_names_add(names, name) != 0) {
        return manifest_fail(p, NULL, "out of memory");
    }
    return 0;
}


/*
 * Fills out (a struct of size bytes) from the keys of obj that schema
 * declares, with the config engine (types, ranges, defaults, relative
 * paths resolved against the manifest's folder); the other keys of obj
 * are the caller's. c keeps what out points to until
 * ioloop__config_free. Returns 0, or -1 with the engine's message at the
 * value's place.
 */
static int
manifest_typed(struct manifest_parse *p, json_t *obj, const char *base,
               const struct ioloop_config_field *schema, size_t size,
               void *out, struct ioloop__config *c)
{
    struct ioloop__config_error e;
    json_t *typed = json_object();
    int rc = -1;

    if (typed == NULL) {
        return manifest_fail(p, NULL, "out of memory");
    }
    for (const struct ioloop_config_field *f = schema; f->name != NULL;
         f++) {
        json_t *v = json_object_get(obj, f->name);

        if (v != NULL && json_object_set(typed, f->name, v) != 0) {
            manifest_fail(p, NULL, "out of memory");
            goto cleanup;
        }
    }
    if (ioloop__config_fill(schema, size, typed, base, p->m->dir, "manifest",
                            c, &e) < 0) {
        manifest_fail(p, e.path, "%s", e.msg);
        goto cleanup;
    }
    memcpy(out, c->data, size);
    rc = 0;

cleanup:
    json_decref(typed);
    return rc;
}


/* Sets m->log_level and m->log_json from "log" (v, NULL when absent);
 * log.plugins is checked once the plugins are known. */
static int
manifest_parse_log(struct manifest_parse *p, json_t *v)
{
    struct ioloop__config c;
    struct manifest_log log;
    const json_t *plugins;

    if (v != NULL && !json_is_object(v)) {
        return manifest_fail(p, "log", "expected an object, got %s",
                             manifest_type(v));
    }
    if (v != NULL && manifest_check_keys(p, v, "log", manifest_log_keys) != 0) {
        return -1;
    }
    if (manifest_typed(p, v, "log", manifest_log_schema, sizeof log, &log,
                       &c) != 0) {
        return -1;
    }
    ioloop__config_free(&c);
    p->m->log_level = log.level;
    p->m->log_json = log.format == 1;
    plugins = json_object_get(v, "plugins");
    if (plugins != NULL && !json_is_object(plugins)) {
        return manifest_fail(p, "log.plugins", "expected an object, got %s",
                             manifest_type(plugins));
    }
    return 0;
}


/* Parses a level name at where into *level. */
static int
manifest_level(struct manifest_parse *p, const json_t *v, const char *where,
               int *level)
{
    char q[MANIFEST_QUOTE_MAX];
    const char *s;

    if (!json_is_string(v)) {
        return manifest_fail(p, where, "expected a string, got %s",
                             manifest_type(v));
    }
    s = json_string_value(v);
    for (int i = 0; manifest_level_names[i] != NULL; i++) {
        if (strcmp(manifest_level_names[i], s) == 0) {
            *level = i; /* the names follow IOLOOP_LOG_* */
            return 0;
        }
    }
    ioloop__json_quote(q, sizeof q, s);
    return manifest_fail(p, where, "unknown level %s"
                         " (expected error, warn, info or debug)", q);
}


/* Applies log.plugins ({"instance": "level"}) to the plugin entries. */
static int
manifest_parse_plugin_levels(struct manifest_parse *p, json_t *log)
{
    json_t *levels = json_object_get(log, "plugins"), *v;
    char where[MANIFEST_PATH_MAX], q[MANIFEST_QUOTE_MAX];
    const char *name;

    for (size_t i = 0; i < p->m->nplugins; i++) {
        p->m->plugins[i].log_level = -1;
    }
    json_object_foreach(levels, name, v) {
        size_t i;

        ioloop__json_key_path(where, sizeof where, "log.plugins", name);
        for (i = 0; i < p->m->nplugins; i++) {
            if (strcmp(p->m->plugins[i].name, name) == 0) {
                break;
            }
        }
        if (i == p->m->nplugins) {
            ioloop__json_quote(q, sizeof q, name);
            return manifest_fail(p, where, "no plugin instance named %s", q);
        }
        if (manifest_level(p, v, where, &p->m->plugins[i].log_level) != 0) {
            return -1;
        }
    }
    return 0;
}


/*
 * The process model: "workers" (a positive integer or "auto": one per
 * online CPU; absent: serve in this process), then the typed keys of
 * manifest_top_schema, of which "watchdog_kill_ms" (0: off) needs
 * workers: the master replaces the worker.
 */
static int
manifest_parse_process(struct manifest_parse *p, json_t *root)
{
    struct ioloop__config c;
    struct manifest_top top;
    const json_t *v;
    int rc = 0;

    v = json_object_get(root, "workers");
    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        p->m->workers = n > 0 ? (int) n : 1;
    } else if (json_is_integer(v) && json_integer_value(v) >= 1
               && json_integer_value(v) <= 1024) {
        p->m->workers = (int) json_integer_value(v);
    } else if (v != NULL) {
        return manifest_fail(p, "workers", "expected an integer in [1, 1024]"
                             " or \"auto\", got %s", manifest_type(v));
    }
    if (manifest_typed(p, root, "", manifest_top_schema, sizeof top, &top,
                       &c) != 0) {
        return -1;
    }
    if (top.watchdog_kill_ms > 0 && p->m->workers == 0) {
        rc = manifest_fail(p, "watchdog_kill_ms", "needs \"workers\" (the "
                           "master replaces a blocked worker)");
    }
    p->m->shutdown_timeout = top.shutdown_timeout;
    p->m->watchdog_ms = (int) top.watchdog_ms;
    p->m->watchdog_kill_ms = (int) top.watchdog_kill_ms;
    if (rc == 0
        && ((top.backend_dir != NULL
             && (p->m->backend_dir = strdup(top.backend_dir)) == NULL)
            || (top.plugin_dir != NULL
                && (p->m->plugin_dir = strdup(top.plugin_dir)) == NULL)
            || (top.pid_file != NULL
                && (p->m->pid_file = strdup(top.pid_file)) == NULL))) {
        rc = manifest_fail(p, NULL, "out of memory");
    }
    ioloop__config_free(&c);
    return rc;
}


/* Fills m->plugins from "plugins" (v, NULL when absent: no plugins). */
static int
manifest_parse_plugins(struct manifest_parse *p, json_t *v)
{
    json_t *item;
    size_t n;
    size_t i;

    if (v == NULL) {
        return 0;
    }
    if (!json_is_array(v)) {
        return manifest_fail(p, "plugins", "expected an array, got %s",
                             manifest_type(v));
    }
    n = json_array_size(v);
    if (n == 0) {
        return 0;
    }
    p->m->plugins = calloc(n, sizeof p->m->plugins[0]);
    if (p->m->plugins == NULL) {
        return manifest_fail(p, NULL, "out of memory");
    }
    json_array_foreach(v, i, item) {
        if (manifest_parse_plugin(p, item, i) != 0) {
            return -1;
        }
    }
    return 0;
}


/*
 * Fills m->plugins[i] from entry v. The entry counts in m->nplugins from
 * the start, so that a failure half-way is freed like any other. Names are
 * checked for uniqueness against the entries before it (O(n^2), and n is a
 * handful).
 */
static int
manifest_parse_plugin(struct manifest_parse *p, json_t *v, size_t i)
{
    struct ioloop_manifest_plugin *pl;
    char q[MANIFEST_QUOTE_MAX], where[MANIFEST_PATH_MAX];
    json_t *config;
    const char *s;
    size_t j;

    pl = &p->m->plugins[i];
    p->m->nplugins = i + 1;
    snprintf(pl->where, sizeof pl->where, "plugins[%zu]", i);

    if (!json_is_object(v)) {
        return manifest_fail(p, pl->where, "expected an object, got %s",
                             manifest_type(v));
    }
    if (manifest_check_keys(p, v, pl->where, manifest_plugin_keys) != 0) {
        return -1;
    }

    if (manifest_plugin_string(p, v, pl->where, "name", &s) != 0) {
        return -1;
    }
    snprintf(where, sizeof where, "%s.name", pl->where);
    if (!manifest_plugin_name_ok(s)) {
        ioloop__json_quote(q, sizeof q, s);
        return manifest_fail(p, where, "invalid plugin name %s (expected"
                             " 1 to %d letters, digits, '_', '.' or '-')",
                             q, MANIFEST_NAME_MAX);
    }
    for (j = 0; j < i; j++) {
        if (strcmp(p->m->plugins[j].name, s) == 0) {
            ioloop__json_quote(q, sizeof q, s);
            return manifest_fail(p, where, "duplicate of %s.name %s",
                                 p->m->plugins[j].where, q);
        }
    }
    pl->name = strdup(s);
    if (pl->name == NULL) {
        return manifest_fail(p, NULL, "out of memory");
    }

    if (manifest_plugin_string(p, v, pl->where, "path", &s) != 0) {
        return -1;
    }
    /* A bare file name is left for the loader to find in the plugin dir. */
    pl->path = strchr(s, '/') != NULL ? manifest_resolve(p->m->dir, s)
                                      : strdup(s);
    if (pl->path == NULL) {
        return manifest_fail(p, NULL, "out of memory");
    }

    config = json_object_get(v, "config");
    if (config != NULL && !json_is_object(config)) {
        snprintf(where, sizeof where, "%s.config", pl->where);
        return manifest_fail(p, where, "expected an object, got %s",
                             manifest_type(config));
    }
    pl->config = config;

    config = json_object_get(v, "one_process");
    if (config != NULL && !json_is_boolean(config)) {
        snprintf(where, sizeof where, "%s.one_process", pl->where);
        return manifest_fail(p, where, "expected true or false, got %s",
                             manifest_type(config));
    }
    pl->one_process = json_is_true(config);
    return 0;
}


/*
 * Sets *out to the value of the required, non-empty string key of the
 * plugin entry v (borrowed from v). Returns 0, or -1 with a message:
 * "<where>: missing key", "<where>.<key>: expected a string" or
 * "<where>.<key>: empty <key>".
 */
static int
manifest_plugin_string(struct manifest_parse *p, json_t *v, const char *where,
                       const char *key, const char **out)
{
    char path[MANIFEST_PATH_MAX];
    const json_t *s;

    s = json_object_get(v, key);
    if (s == NULL) {
        return manifest_fail(p, where, "missing key \"%s\"", key);
    }
    snprintf(path, sizeof path, "%s.%s", where, key);
    if (!json_is_string(s)) {
        return manifest_fail(p, path, "expected a string, got %s",
                             manifest_type(s));
    }
    if (json_string_length(s) == 0) {
        return manifest_fail(p, path, "empty %s", key);
    }
    *out = json_string_value(s);
    return 0;
}


/*
 * Appends name to l unless it is already there; "auto" appends each of
 * ioloop__auto_backends instead. Returns 0, or -1 when out of memory (l
 * keeps what it had and stays freeable).
 */
static int
manifest_names_add(struct manifest_names *l, const char *name)
{
    char **v;
    size_t cap;
    size_t i;

    if (strcmp(name, "auto") == 0) {
        for (i = 0; ioloop__auto_backends[i] != NULL; i++) {
            if (manifest_names_add(l, ioloop__auto_backends[i]) != 0) {
                return -1;
            }
        }
        return 0;
    }
    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], name) == 0) {
            return 0;
        }
    }
    if (l->n == l->cap) {
        cap = l->cap == 0 ? 8 : l->cap * 2;
        v = realloc(l->v, cap * sizeof v[0]);
        if (v == NULL) {
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(name);
    if (l->v[l->n] == NULL) {
        return -1;
    }
    l->n++;
    return 0;
}


static void
manifest_names_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}


/* [a-z0-9_]+: a backend name becomes the file name "<name>.so". */
static int
manifest_backend_name_ok(const char *s)
{
    if (*s == '\0') {
        return 0;
    }
    for ( ; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || *s == '_'))
        {
            return 0;
        }
    }
    return 1;
}


/* 1 to MANIFEST_NAME_MAX bytes of [A-Za-z0-9_.-] */
static int
manifest_plugin_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > MANIFEST_NAME_MAX) {
        return 0;
    }
    for ( ; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'
              || *s == '-'))
        {
            return 0;
        }
    }
    return 1;
}


/*
 * Returns a malloc'ed copy of value when it is absolute, else
 * "<dir>/<value>" (dir is absolute). NULL when out of memory.
 */
static char *
manifest_resolve(const char *dir, const char *value)
{
    size_t dlen;
    size_t vlen;
    char *s;

    if (value[0] == '/') {
        return strdup(value);
    }
    dlen = strlen(dir);
    if (dlen > 0 && dir[dlen - 1] == '/') {
        dlen--;                 /* the manifest sits in "/" */
    }
    vlen = strlen(value);
    s = malloc(dlen + 1 + vlen + 1);
    if (s == NULL) {
        return NULL;
    }
    memcpy(s, dir, dlen);
    s[dlen] = '/';
    memcpy(s + dlen + 1, value, vlen + 1);
    return s;
}


/* jansson's type of v, in the words the messages use. */
static const char *
manifest_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}


/*
 * Writes "<file>:<line>:<column>: <path>: <fmt...>" into p->err, the
 * place being the value at path in the file's text ("" is the whole
 * document, and then no path is shown); "<file>: <fmt...>" when path is
 * NULL (the file itself, no memory) or cannot be located. Always returns
 * -1.
 */
static int
manifest_fail(struct manifest_parse *p, const char *path, const char *fmt,
              ...)
{
    char body[512];
    int line, column;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (path != NULL && p->text != NULL
        && ioloop__json_locate(p->text, p->len, path, &line, &column) >= 0) {
        manifest_set_err(p->err, p->errlen, "%s:%d:%d: %s%s%s", p->file,
                         line, column, path, path[0] != '\0' ? ": " : "",
                         body);
    } else if (path != NULL && path[0] != '\0') {
        manifest_set_err(p->err, p->errlen, "%s: %s: %s", p->file, path,
                         body);
    } else {
        manifest_set_err(p->err, p->errlen, "%s: %s", p->file, body);
    }
    return -1;
}


/*
 * Formats into err, cut to errlen, and turns any control character left
 * (from a file name or jansson's text) into '?': the result is one line.
 */
static void
manifest_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    char *c;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (c = err; *c != '\0'; c++) {
        if ((unsigned char) *c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
}
