/*
 * host/app/manifest.c: reads the JSON manifest with jansson, checks it against
 * the schema (README.md, "The manifest") and fills struct ioloop_manifest.
 * Nothing is loaded or bound here: this file validates, resolves relative
 * paths against the manifest's folder (never the working directory) and
 * writes one-line messages that name the file, the line:column of the
 * offending value and its JSON path. Every key is one entry of the tables
 * below, read by the config engine the plugins' configs use
 * (config_schema.h); the unions (a name or a list of names, a number or
 * "auto") are small checks the tables point to, and what no table can say
 * (unique instance names, log levels of named instances, a key that needs
 * another) is checked once the tables have filled the struct.
 */
#include "manifest.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ioloop/config.h>
#include <ioloop/loop.h>

#include "config_schema.h"
#include "file_read.h"
#include "json_path.h"
#include "manifest_servers.h"

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

/* The names "auto" expands to (ioloop__auto_backends without its NULL). */
#define MANIFEST_NAUTO 4

/* The state of one load: what is being filled and where messages go. */
struct manifest_parse {
    const char *file;           /* the path as given: prefix of messages */
    const char *text;           /* the file's text, to locate values */
    size_t len;
    char *err;
    size_t errlen;
    struct ioloop_manifest *m;
};

/* A list of backend names without duplicates, in room for all of them. */
struct manifest_names {
    char **v;
    size_t n;
};

static int manifest_find_dir(struct manifest_parse *p);
static int manifest_check_backends(const struct ioloop__config_hook *h,
                                   const json_t *v);
static int manifest_take_backend(const struct ioloop__config_hook *h,
                                 struct manifest_names *l, const char *where,
                                 const char *name);
static int manifest_check_workers(const struct ioloop__config_hook *h,
                                  const json_t *v);
static int manifest_check_name(const struct ioloop__config_hook *h,
                               const json_t *v);
static int manifest_check_path(const struct ioloop__config_hook *h,
                               const json_t *v);
static int manifest_check_string(const struct ioloop__config_hook *h,
                                 const json_t *v);
static int manifest_check_object(const struct ioloop__config_hook *h,
                                 const json_t *v);
static int manifest_check_rules(struct manifest_parse *p);
static int manifest_apply_levels(struct manifest_parse *p);
static int manifest_names_add(struct ioloop__config *c,
                              struct manifest_names *l, const char *name);
static int manifest_backend_name_ok(const char *s);
static int manifest_plugin_name_ok(const char *s);
static int manifest_fail(struct manifest_parse *p, const char *path,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void manifest_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *const ioloop__auto_backends[MANIFEST_NAUTO + 1] = {
    "epoll", "kqueue", "poll", "select", NULL
};

/* The level names, in the order of IOLOOP_LOG_* (error is 0). */
static const char *const manifest_level_names[] = {
    "error", "warn", "info", "debug", NULL
};
static const char *const manifest_formats[] = {"plain", "json", NULL};

/* The checks of the keys a plain type cannot describe. */
static const struct ioloop__config_ext manifest_backend_ext = {
    NULL, 0, offsetof(struct ioloop_manifest, nbackends),
    manifest_check_backends, "name or list of names"
};
static const struct ioloop__config_ext manifest_swap_ext = {
    NULL, 0, offsetof(struct ioloop_manifest, nswap),
    manifest_check_backends, "name or list of names"
};
static const struct ioloop__config_ext manifest_workers_ext = {
    NULL, 0, 0, manifest_check_workers, "integer or \"auto\""
};
static const struct ioloop__config_ext manifest_name_ext = {
    NULL, 0, 0, manifest_check_name, "string"
};
static const struct ioloop__config_ext manifest_path_ext = {
    NULL, 0, 0, manifest_check_path, "path"
};
static const struct ioloop__config_ext manifest_object_ext = {
    NULL, 0, 0, manifest_check_object, "object"
};

/* One entry of "plugins". */
static const struct ioloop_config_field manifest_plugin_schema[] = {
    IOLOOP__CONFIG_AT("name", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest_plugin, name, const char *, 0,
                      0, IOLOOP__CONFIG_EXT(&manifest_name_ext), NULL,
                      IOLOOP_CONFIG_REQUIRED,
                      "Instance name, unique: 1 to 64 letters, digits, '_', "
                      "'.' or '-'; every log line of the instance carries "
                      "it."),
    IOLOOP__CONFIG_AT("path", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest_plugin, path, const char *, 0,
                      0, IOLOOP__CONFIG_EXT(&manifest_path_ext), NULL,
                      IOLOOP_CONFIG_REQUIRED,
                      "The plugin's .so: a bare file name is found in "
                      "plugin_dir, a path with a '/' is relative to the "
                      "manifest."),
    IOLOOP__CONFIG_AT("config", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest_plugin, config, const json_t *,
                      0, 0, IOLOOP__CONFIG_EXT(&manifest_object_ext), NULL, 0,
                      "The instance's config, validated against the "
                      "plugin's schema before any plugin code runs "
                      "(--plugin-info shows it)."),
    IOLOOP_CONFIG_BOOL(struct ioloop_manifest_plugin, one_process, "false",
                       IOLOOP__CONFIG_GOT_TYPE,
                       "With workers: run this instance in worker 0 only."),
    IOLOOP_CONFIG_END,
};

static const struct ioloop__config_ext manifest_plugins_ext = {
    manifest_plugin_schema, sizeof(struct ioloop_manifest_plugin),
    offsetof(struct ioloop_manifest, nplugins), NULL, NULL
};

/* "log": its keys fill struct ioloop_manifest itself (offset 0). */
static const struct ioloop_config_field manifest_log_schema[] = {
    IOLOOP__CONFIG_AT("level", IOLOOP_CONFIG_T_ENUM, struct ioloop_manifest,
                      log_level, int, 0, 0, manifest_level_names, "info", 0,
                      "The least severe level logged."),
    IOLOOP__CONFIG_AT("format", IOLOOP_CONFIG_T_ENUM, struct ioloop_manifest,
                      log_json, int, 0, 0, manifest_formats, "plain", 0,
                      "Plain lines or JSON lines."),
    IOLOOP__CONFIG_AT("plugins", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest, log_levels, const json_t *, 0,
                      0, IOLOOP__CONFIG_EXT(&manifest_object_ext), NULL, 0,
                      "A level per instance name, e.g. {\"hello\": "
                      "\"debug\"}."),
    IOLOOP_CONFIG_END,
};

static const struct ioloop__config_ext manifest_log_ext = {
    manifest_log_schema, 0, 0, NULL, NULL
};

/*
 * The manifest. The loop's clock ticks in 1 ms (backends wait in
 * milliseconds), so no duration is below 1 ms: 1e-12 would round to 0.
 */
const struct ioloop_config_field ioloop__manifest_schema[] = {
    IOLOOP__CONFIG_AT("backend", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest, backends, char **, 0, 0,
                      IOLOOP__CONFIG_EXT(&manifest_backend_ext), "auto", 0,
                      "Backends to try in order (names of [a-z0-9_]); the "
                      "first that loads and starts wins. \"auto\": epoll, "
                      "kqueue, poll, select."),
    IOLOOP__CONFIG_AT("backend_swap", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest, swap, char **, 0, 0,
                      IOLOOP__CONFIG_EXT(&manifest_swap_ext), NULL, 0,
                      "Each SIGUSR2 moves the running loop to the next of "
                      "these, cyclically; each must be a backend of "
                      "backend_dir."),
    IOLOOP_CONFIG_PATH(struct ioloop_manifest, backend_dir, NULL, 0,
                       "Folder of the backend .so files; absent: backends/ "
                       "beside the executable, or <prefix>/lib/ioloop/"
                       "backends installed."),
    IOLOOP_CONFIG_PATH(struct ioloop_manifest, plugin_dir, NULL, 0,
                       "Folder where bare plugin file names are found; "
                       "absent: plugins/ beside the executable, or "
                       "<prefix>/lib/ioloop/plugins installed."),
    {"log", IOLOOP__CONFIG_T_OBJECT, 0, 0, 0, 0,
     IOLOOP__CONFIG_EXT(&manifest_log_ext), NULL,
     "Logging: level, format, plugins."},
    IOLOOP__CONFIG_AT("plugins", IOLOOP__CONFIG_T_OBJECTS,
                      struct ioloop_manifest, plugins,
                      struct ioloop_manifest_plugin *, 0, 0,
                      IOLOOP__CONFIG_EXT(&manifest_plugins_ext), NULL, 0,
                      "The plugin instances, started in this order and "
                      "stopped in reverse."),
    IOLOOP__CONFIG_AT("servers", IOLOOP__CONFIG_T_OBJECTS,
                      struct ioloop_manifest, server_conf,
                      struct ioloop__manifest_server *, 0, 0,
                      IOLOOP__CONFIG_EXT(&ioloop__manifest_servers_ext), NULL,
                      0,
                      "The host's HTTP servers: each listens on its "
                      "addresses and routes requests to the HTTP handlers "
                      "of plugin instances."),
    IOLOOP__CONFIG_AT("workers", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop_manifest, workers, int, 1, 1024,
                      IOLOOP__CONFIG_EXT(&manifest_workers_ext), NULL, 0,
                      "Run a master and this many worker processes, or "
                      "\"auto\": one per CPU; absent: serve in one "
                      "process."),
    IOLOOP_CONFIG_DURATION(struct ioloop_manifest, shutdown_timeout,
                           IOLOOP_NS_PER_MS, 3600 * IOLOOP_NS_PER_S, "10s",
                           0, "How long a graceful stop waits for requests "
                           "in flight."),
    IOLOOP_CONFIG_INT(struct ioloop_manifest, watchdog_ms, 0, 3600000, "0", 0,
                      "Log the plugin and stack of any callback that holds "
                      "the loop longer; 0: off."),
    IOLOOP_CONFIG_INT(struct ioloop_manifest, watchdog_kill_ms, 0, 3600000,
                      "0", 0,
                      "With workers: the master replaces a worker blocked "
                      "in one callback this long; 0: off."),
    IOLOOP_CONFIG_PATH(struct ioloop_manifest, pid_file, NULL, 0,
                       "Where the host writes its pid, for -s stop|reload; "
                       "locked, so a second start exits 1."),
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
    struct ioloop__config_error e;
    struct ioloop__config values;
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

    rc = ioloop__file_read(path, MANIFEST_MAX_BYTES, &text, &len);
    if (rc < 0) {
        manifest_fail(&p, NULL, "cannot read: %s", strerror(-rc));
        rc = -1;
        goto cleanup;
    }
    rc = -1;
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
                      ioloop__config_json_type(tmp.root));
        goto cleanup;
    }
    tmp.file = strdup(path);
    if (tmp.file == NULL) {
        manifest_fail(&p, NULL, "out of memory");
        goto cleanup;
    }
    if (manifest_find_dir(&p) != 0) {
        goto cleanup;
    }
    if (ioloop__config_fill(ioloop__manifest_schema, sizeof tmp, tmp.root, "",
                            tmp.dir, NULL, &values, &e) != 0) {
        manifest_fail(&p, e.path, "%s", e.msg);
        goto cleanup;
    }
    /* The filled struct, with what the load itself owns. */
    {
        struct ioloop_manifest *filled = values.data;

        filled->file = tmp.file;
        filled->dir = tmp.dir;
        filled->root = tmp.root;
        tmp = *filled;
        tmp.values = values;
    }
    if (manifest_check_rules(&p) != 0) {
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
 * as it was and err says "--backend: ...". The old list stays in
 * m->values until the manifest is freed.
 */
int
ioloop__manifest_set_backend(struct ioloop_manifest *m, const char *name,
                             char *err, size_t errlen)
{
    struct manifest_names l = { NULL, 0 };
    char q[MANIFEST_QUOTE_MAX];

    if (name == NULL || !manifest_backend_name_ok(name)) {
        ioloop__json_quote(q, sizeof q, name != NULL ? name : "");
        manifest_set_err(err, errlen, "--backend: invalid backend name %s", q);
        return -1;
    }
    l.v = ioloop__config_alloc(&m->values, MANIFEST_NAUTO * sizeof l.v[0]);
    if (l.v == NULL || manifest_names_add(&m->values, &l, name) != 0) {
        manifest_set_err(err, errlen, "--backend: out of memory");
        return -1;
    }
    m->backends = l.v;
    m->nbackends = l.n;
    return 0;
}


void
ioloop__manifest_free(struct ioloop_manifest *m)
{
    if (m == NULL) {
        return;
    }
    ioloop__config_free(&m->values);
    free(m->dir);
    free(m->file);
    free(m->text);
    json_decref(m->root);
    memset(m, 0, sizeof *m);
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
 * "backend" and "backend_swap" (v; NULL when absent: the field's default,
 * "auto" for backend, none for backend_swap): a name or a non-empty array
 * of names, "auto" expanded, duplicates dropped after their first
 * appearance. Fills the names and their count. Returns 0 or -1.
 */
static int
manifest_check_backends(const struct ioloop__config_hook *h, const json_t *v)
{
    const struct ioloop__config_ext *x = ioloop__config_field_ext(h->fd);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    char where[MANIFEST_PATH_MAX];
    struct manifest_names l;
    const json_t *item;
    size_t i;

    if (v == NULL && h->fd->def == NULL) {
        return 0;               /* no list: zero names */
    }
    if (v != NULL && !json_is_string(v) && !json_is_array(v)) {
        return ioloop__config_fail(h->e, h->path, "expected a string or an "
                                   "array of strings, got %s",
                                   ioloop__config_json_type(v));
    }
    if (n == 0) {
        return ioloop__config_fail(h->e, h->path, "empty list");
    }
    /* Distinct names: at most the array's plus those of one "auto". */
    l.n = 0;
    l.v = ioloop__config_alloc(h->c, (n + MANIFEST_NAUTO) * sizeof l.v[0]);
    if (l.v == NULL) {
        return ioloop__config_fail(h->e, h->path, "out of memory");
    }
    if (!json_is_array(v)
        && manifest_take_backend(h, &l, h->path,
                                 v != NULL ? json_string_value(v)
                                           : h->fd->def) != 0) {
        return -1;
    }
    json_array_foreach(v, i, item) {
        snprintf(where, sizeof where, "%s[%zu]", h->path, i);
        if (!json_is_string(item)) {
            return ioloop__config_fail(h->e, where, "expected a string, got "
                                       "%s", ioloop__config_json_type(item));
        }
        if (manifest_take_backend(h, &l, where, json_string_value(item))
            != 0) {
            return -1;
        }
    }
    *(char ***) h->member = l.v;
    *(size_t *) ((char *) h->obj + x->count_offset) = l.n;
    return 0;
}


/* Validates one backend name found at where and appends it to l. */
static int
manifest_take_backend(const struct ioloop__config_hook *h,
                      struct manifest_names *l, const char *where,
                      const char *name)
{
    char q[MANIFEST_QUOTE_MAX];

    if (!manifest_backend_name_ok(name)) {
        ioloop__json_quote(q, sizeof q, name);
        return ioloop__config_fail(h->e, where, "invalid backend name %s", q);
    }
    if (manifest_names_add(h->c, l, name) != 0) {
        return ioloop__config_fail(h->e, where, "out of memory");
    }
    return 0;
}


/* "workers": an integer in the field's range or "auto" (one per online
 * CPU); absent: 0, serve in this process. */
static int
manifest_check_workers(const struct ioloop__config_hook *h, const json_t *v)
{
    int *workers = h->member;
    long n;

    if (v == NULL) {
        return 0;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        *workers = n > 0 ? (int) n : 1;
        return 0;
    }
    if (json_is_integer(v) && json_integer_value(v) >= h->fd->min
        && json_integer_value(v) <= h->fd->max) {
        *workers = (int) json_integer_value(v);
        return 0;
    }
    return ioloop__config_fail(h->e, h->path, "expected an integer in [%lld, "
                               "%lld] or \"auto\", got %s",
                               (long long) h->fd->min, (long long) h->fd->max,
                               ioloop__config_json_type(v));
}


/* plugins[].name: a string of MANIFEST_NAME_MAX safe characters at most. */
static int
manifest_check_name(const struct ioloop__config_hook *h, const json_t *v)
{
    char q[MANIFEST_QUOTE_MAX];

    if (manifest_check_string(h, v) != 0) {
        return -1;
    }
    if (!manifest_plugin_name_ok(json_string_value(v))) {
        ioloop__json_quote(q, sizeof q, json_string_value(v));
        return ioloop__config_fail(h->e, h->path, "invalid plugin name %s "
                                   "(expected 1 to %d letters, digits, '_', "
                                   "'.' or '-')", q, MANIFEST_NAME_MAX);
    }
    return 0;
}


/* plugins[].path: a bare file name is left for the loader to find in the
 * plugin dir; a path with a '/' is resolved against the manifest's. */
static int
manifest_check_path(const struct ioloop__config_hook *h, const json_t *v)
{
    const char *s;
    size_t dlen;
    char *joined;

    if (manifest_check_string(h, v) != 0) {
        return -1;
    }
    s = json_string_value(v);
    if (strchr(s, '/') == NULL || s[0] == '/') {
        return 0;
    }
    dlen = strlen(h->dir);
    if (dlen > 0 && h->dir[dlen - 1] == '/') {
        dlen--;                 /* the manifest sits in "/" */
    }
    joined = ioloop__config_alloc(h->c, dlen + 1 + strlen(s) + 1);
    if (joined == NULL) {
        return ioloop__config_fail(h->e, h->path, "out of memory");
    }
    memcpy(joined, h->dir, dlen);
    joined[dlen] = '/';
    strcpy(joined + dlen + 1, s);
    *(const char **) h->member = joined;
    return 0;
}


/*
 * A required, non-empty string, copied into the member. Returns 0, or -1:
 * "<base>: missing key \"<key>\"", "<path>: expected a string, got <type>"
 * or "<path>: empty <key>".
 */
static int
manifest_check_string(const struct ioloop__config_hook *h, const json_t *v)
{
    if (v == NULL) {
        return ioloop__config_fail(h->e, h->base, "missing key \"%s\"",
                                   h->fd->name);
    }
    if (!json_is_string(v)) {
        return ioloop__config_fail(h->e, h->path, "expected a string, got %s",
                                   ioloop__config_json_type(v));
    }
    if (json_string_length(v) == 0) {
        return ioloop__config_fail(h->e, h->path, "empty %s", h->fd->name);
    }
    *(const char **) h->member = ioloop__config_strdup(h->c,
                                                       json_string_value(v));
    if (*(const char **) h->member == NULL) {
        return ioloop__config_fail(h->e, h->path, "out of memory");
    }
    return 0;
}


/* An object kept as it is (borrowed from the document), or NULL. */
static int
manifest_check_object(const struct ioloop__config_hook *h, const json_t *v)
{
    if (v != NULL && !json_is_object(v)) {
        return ioloop__config_fail(h->e, h->path, "expected an object, got %s",
                                   ioloop__config_json_type(v));
    }
    *(const json_t **) h->member = v;
    return 0;
}


/*
 * What the tables cannot say: instance names are unique (O(n^2), and n
 * is a handful), log.plugins names instances, the servers' rules
 * (manifest_servers.c), and watchdog_kill_ms needs workers (the master
 * replaces the worker). Also sets each entry's where.
 */
static int
manifest_check_rules(struct manifest_parse *p)
{
    struct ioloop_manifest *m = p->m;
    char q[MANIFEST_QUOTE_MAX], where[MANIFEST_PATH_MAX];
    struct ioloop__config_error e;

    for (size_t i = 0; i < m->nplugins; i++) {
        snprintf(m->plugins[i].where, sizeof m->plugins[i].where,
                 "plugins[%zu]", i);
        m->plugins[i].log_level = -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m->plugins[j].name, m->plugins[i].name) == 0) {
                snprintf(where, sizeof where, "plugins[%zu].name", i);
                ioloop__json_quote(q, sizeof q, m->plugins[i].name);
                return manifest_fail(p, where, "duplicate of %s.name %s",
                                     m->plugins[j].where, q);
            }
        }
    }
    if (manifest_apply_levels(p) != 0) {
        return -1;
    }
    if (ioloop__manifest_servers_build(m, &e) != 0) {
        return manifest_fail(p, e.path, "%s", e.msg);
    }
    if (m->watchdog_kill_ms > 0 && m->workers == 0) {
        return manifest_fail(p, "watchdog_kill_ms", "needs \"workers\" (the "
                             "master replaces a blocked worker)");
    }
    return 0;
}


/* Applies log.plugins ({"instance": "level"}) to the plugin entries. */
static int
manifest_apply_levels(struct manifest_parse *p)
{
    char where[MANIFEST_PATH_MAX], q[MANIFEST_QUOTE_MAX];
    struct ioloop_manifest *m = p->m;
    const char *name, *s;
    json_t *v;
    size_t i;
    int l;

    /* jansson's iterator takes a non-const object; nothing is changed. */
    json_object_foreach((json_t *) m->log_levels, name, v) {
        ioloop__json_key_path(where, sizeof where, "log.plugins", name);
        for (i = 0; i < m->nplugins; i++) {
            if (strcmp(m->plugins[i].name, name) == 0) {
                break;
            }
        }
        if (i == m->nplugins) {
            ioloop__json_quote(q, sizeof q, name);
            return manifest_fail(p, where, "no plugin instance named %s", q);
        }
        if (!json_is_string(v)) {
            return manifest_fail(p, where, "expected a string, got %s",
                                 ioloop__config_json_type(v));
        }
        s = json_string_value(v);
        for (l = 0; manifest_level_names[l] != NULL; l++) {
            if (strcmp(manifest_level_names[l], s) == 0) {
                break;
            }
        }
        if (manifest_level_names[l] == NULL) {
            ioloop__json_quote(q, sizeof q, s);
            return manifest_fail(p, where, "unknown level %s (expected "
                                 "error, warn, info or debug)", q);
        }
        m->plugins[i].log_level = l; /* the names follow IOLOOP_LOG_* */
    }
    return 0;
}


/*
 * Appends name to l unless it is already there; "auto" appends each of
 * ioloop__auto_backends instead. l has room for every distinct name;
 * copies live in c. Returns 0, or -1 when out of memory.
 */
static int
manifest_names_add(struct ioloop__config *c, struct manifest_names *l,
                   const char *name)
{
    size_t i;

    if (strcmp(name, "auto") == 0) {
        for (i = 0; ioloop__auto_backends[i] != NULL; i++) {
            if (manifest_names_add(c, l, ioloop__auto_backends[i]) != 0) {
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
    l->v[l->n] = ioloop__config_strdup(c, name);
    if (l->v[l->n] == NULL) {
        return -1;
    }
    l->n++;
    return 0;
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
