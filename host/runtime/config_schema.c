/*
 * host/runtime/config_schema.c: validates a plugin's (or the manifest's)
 * config object against its schema and fills the struct it describes.
 * Everything the struct points to lives in one chain of chunks, freed at
 * once after fini.
 */
#include "config_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_units.h"
#include "json_path.h"
#include "net.h"

/* One allocation of a filled config. */
struct ioloop__config_chunk {
    struct ioloop__config_chunk *next;
    max_align_t data[];
};

/* What one fill works with. */
struct fill {
    struct ioloop__config *c;
    struct ioloop__config_error *e;
    const char *dir;
    const char *owner;
    char *obj; /* the struct the current schema fills */
};

static int fill_object(struct fill *f,
                       const struct ioloop_config_field *schema,
                       const json_t *obj, const char *base, void *dst);
static int fill_field(struct fill *f, const struct ioloop_config_field *fd,
                      const json_t *v, const char *path);
static int fill_host(struct fill *f, const struct ioloop_config_field *fd,
                     const json_t *v, const char *base, const char *path);
static int fill_objects(struct fill *f, const struct ioloop_config_field *fd,
                        const json_t *v, const char *path);
static int fill_duration(struct fill *f, const struct ioloop_config_field *fd,
                         const json_t *v, const char *path, int64_t *out);
static int fill_size(struct fill *f, const struct ioloop_config_field *fd,
                     const json_t *v, const char *path, uint64_t *out);
static int fill_strings(struct fill *f, const json_t *v, const char *path,
                        bool map, void *member);
static json_t *default_value(const struct ioloop_config_field *fd);
static void describe(char *buf, size_t len, const json_t *v);
static int vfail(struct ioloop__config_error *e, const char *path,
                 const char *fmt, va_list ap);
static int fail(struct fill *f, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int
ioloop__config_schema_check(const struct ioloop_config_field *schema,
                            size_t size, char *err, size_t errlen)
{
    static const size_t member_size[] = {
        [IOLOOP_CONFIG_T_STRING] = sizeof(const char *),
        [IOLOOP_CONFIG_T_BOOL] = sizeof(bool),
        [IOLOOP_CONFIG_T_INT] = sizeof(int64_t),
        [IOLOOP_CONFIG_T_ENUM] = sizeof(int),
        [IOLOOP_CONFIG_T_DURATION] = sizeof(ioloop_time_t),
        [IOLOOP_CONFIG_T_SIZE] = sizeof(uint64_t),
        [IOLOOP_CONFIG_T_LISTEN] = sizeof(const char *),
        [IOLOOP_CONFIG_T_PATH] = sizeof(const char *),
        [IOLOOP_CONFIG_T_MAP] = sizeof(struct ioloop_config_map),
        [IOLOOP_CONFIG_T_LIST] = sizeof(struct ioloop_config_list),
        [IOLOOP_CONFIG_T_JSON] = sizeof(const char *),
    };

    if (schema == NULL) {
        return 0;
    }
    for (const struct ioloop_config_field *fd = schema; fd->name != NULL;
         fd++) {
        const char *why = NULL;
        const char *c = fd->name;

        while ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
               || *c == '_') {
            c++;
        }
        for (const struct ioloop_config_field *o = schema; o < fd; o++) {
            if (strcmp(o->name, fd->name) == 0) {
                why = "declared twice";
            }
        }
        if (c == fd->name || *c != '\0') {
            why = "not a key name ([a-z0-9_]+)";
        } else if (fd->type == IOLOOP_CONFIG_T_END
                   || fd->type > IOLOOP_CONFIG_T_JSON) {
            why = "unknown type";
        } else if (fd->offset > size
                   || size - fd->offset < member_size[fd->type]) {
            why = "member outside config_size";
        } else if (fd->min > fd->max) {
            why = "min above max";
        } else if (fd->type == IOLOOP_CONFIG_T_ENUM
                   && (fd->choices == NULL || fd->choices[0] == NULL)) {
            why = "enum without choices";
        } else if (fd->type == IOLOOP_CONFIG_T_DURATION && fd->min < 0) {
            why = "negative duration range";
        } else if (fd->type == IOLOOP_CONFIG_T_SIZE && fd->min < 0) {
            why = "negative size range";
        }
        if (why == NULL && fd->def != NULL) {
            struct ioloop__config scratch = {0};
            struct ioloop__config_error e;
            struct fill f = {&scratch, &e, NULL, NULL, NULL};
            json_t *v = default_value(fd);
            int rc;

            scratch.data = ioloop__config_alloc(&scratch, size);
            f.obj = scratch.data;
            rc = scratch.data == NULL ? fail(&f, "", "out of memory")
                 : v == NULL          ? fail(&f, "", "not valid JSON text")
                             : fill_field(&f, fd, v, "default");
            json_decref(v);
            ioloop__config_free(&scratch);
            if (rc < 0) {
                snprintf(err, errlen, "schema: key \"%.64s\": default: %s",
                         fd->name, e.msg);
                return -1;
            }
        }
        if (why != NULL) {
            snprintf(err, errlen, "schema: key \"%.64s\": %s", fd->name,
                     why);
            return -1;
        }
    }
    return 0;
}

int
ioloop__config_fill(const struct ioloop_config_field *schema, size_t size,
                    const json_t *obj, const char *base, const char *dir,
                    const char *owner, struct ioloop__config *c,
                    struct ioloop__config_error *e)
{
    struct fill f = {c, e, dir, owner, NULL};

    memset(c, 0, sizeof(*c));
    c->data = ioloop__config_alloc(c, size);
    if (c->data == NULL) {
        return fail(&f, base, "out of memory");
    }
    if (fill_object(&f, schema, obj, base, c->data) < 0) {
        ioloop__config_free(c);
        return -1;
    }
    return 0;
}

void
ioloop__config_free(struct ioloop__config *c)
{
    while (c->chunks != NULL) {
        struct ioloop__config_chunk *next = c->chunks->next;

        free(c->chunks);
        c->chunks = next;
    }
    c->data = NULL;
}

void *
ioloop__config_alloc(struct ioloop__config *c, size_t n)
{
    struct ioloop__config_chunk *k;

    k = calloc(1, sizeof(*k) + (n ? n : 1));
    if (k == NULL) {
        return NULL;
    }
    k->next = c->chunks;
    c->chunks = k;
    return k->data;
}

char *
ioloop__config_strdup(struct ioloop__config *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ioloop__config_alloc(c, n);

    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

int
ioloop__config_fail(struct ioloop__config_error *e, const char *path,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(e, path, fmt, ap);
    va_end(ap);
    return -1;
}

const char *
ioloop__config_json_type(const json_t *v)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "object", [JSON_ARRAY] = "array",
        [JSON_STRING] = "string", [JSON_INTEGER] = "integer",
        [JSON_REAL] = "real",     [JSON_TRUE] = "true",
        [JSON_FALSE] = "false",   [JSON_NULL] = "null",
    };

    return names[json_typeof(v)];
}

const struct ioloop__config_ext *
ioloop__config_field_ext(const struct ioloop_config_field *f)
{
    return (const struct ioloop__config_ext *) (const void *) f->choices;
}

const char *
ioloop__config_field_type(const struct ioloop_config_field *f)
{
    switch (f->type) {
    case IOLOOP__CONFIG_T_OBJECT:
        return "object";
    case IOLOOP__CONFIG_T_OBJECTS:
        return "array of objects";
    case IOLOOP__CONFIG_T_CUSTOM:
        return ioloop__config_field_ext(f)->type;
    default:
        return ioloop__config_type_name(f->type);
    }
}

const char *
ioloop__config_type_name(uint32_t type)
{
    static const char *const names[] = {
        [IOLOOP_CONFIG_T_STRING] = "string",
        [IOLOOP_CONFIG_T_BOOL] = "bool",
        [IOLOOP_CONFIG_T_INT] = "integer",
        [IOLOOP_CONFIG_T_ENUM] = "enum",
        [IOLOOP_CONFIG_T_DURATION] = "duration",
        [IOLOOP_CONFIG_T_SIZE] = "size",
        [IOLOOP_CONFIG_T_LISTEN] = "listen address",
        [IOLOOP_CONFIG_T_PATH] = "path",
        [IOLOOP_CONFIG_T_MAP] = "map of strings",
        [IOLOOP_CONFIG_T_LIST] = "list of strings",
        [IOLOOP_CONFIG_T_JSON] = "JSON",
    };

    return type > 0 && type <= IOLOOP_CONFIG_T_JSON ? names[type] : "?";
}

void
ioloop__config_field_range(const struct ioloop_config_field *f, char *buf,
                           size_t len)
{
    char lo[32], hi[32];
    size_t used = 0;

    buf[0] = '\0';
    switch (f->type) {
    case IOLOOP_CONFIG_T_INT:
        snprintf(buf, len, "%" PRId64 "..%" PRId64, f->min, f->max);
        break;
    case IOLOOP_CONFIG_T_DURATION:
        ioloop__duration_format(lo, sizeof(lo), f->min);
        ioloop__duration_format(hi, sizeof(hi), f->max);
        snprintf(buf, len, "%s..%s", lo, hi);
        break;
    case IOLOOP_CONFIG_T_SIZE:
        ioloop__size_format(lo, sizeof(lo), (uint64_t) f->min);
        ioloop__size_format(hi, sizeof(hi), (uint64_t) f->max);
        snprintf(buf, len, "%s..%s", lo, hi);
        break;
    case IOLOOP__CONFIG_T_CUSTOM:
        if (f->min < f->max) {
            snprintf(buf, len, "%" PRId64 "..%" PRId64, f->min, f->max);
        }
        break;
    case IOLOOP_CONFIG_T_ENUM:
        for (const char *const *ch = f->choices; *ch != NULL && used < len;
             ch++) {
            used += (size_t) snprintf(buf + used, len - used, "%s%s",
                                      ch == f->choices ? "" : "|", *ch);
        }
        break;
    default:
        break;
    }
}

/*
 * Fills dst (a zeroed struct) from obj (an object at base, or NULL for
 * none) against schema: the keys given in document order, then the
 * absent ones (required, defaults, host-only checks). 0, or -1 with e set.
 */
static int
fill_object(struct fill *f, const struct ioloop_config_field *schema,
            const json_t *obj, const char *base, void *dst)
{
    char path[sizeof(f->e->path)];
    char *outer = f->obj;
    const char *key;
    json_t *v;
    int rc = -1;

    f->obj = dst;
    if (obj != NULL && !json_is_object(obj)) {
        describe(path, sizeof(path), obj);
        fail(f, base, "expected an object, got %s", path);
        goto done;
    }
    /* jansson's iterator takes a non-const object; nothing is changed. */
    json_object_foreach((json_t *) obj, key, v) {
        const struct ioloop_config_field *fd = schema;
        struct ioloop__config_error *e = f->e;
        size_t used;

        while (fd != NULL && fd->name != NULL && strcmp(fd->name, key) != 0) {
            fd++;
        }
        ioloop__json_key_path(path, sizeof(path), base, key);
        if (fd != NULL && fd->name != NULL) {
            if (fill_host(f, fd, v, base, path) < 0) {
                goto done;
            }
            continue;
        }
        if (f->owner == NULL) {
            fail(f, path, "unknown key");
            goto done;
        }
        used = (size_t) snprintf(e->msg, sizeof(e->msg),
                                 "unknown key (%s accepts:", f->owner);
        for (fd = schema; fd != NULL && fd->name != NULL
                          && used < sizeof(e->msg); fd++) {
            used += (size_t) snprintf(e->msg + used, sizeof(e->msg) - used,
                                      "%s %s", fd == schema ? "" : ",",
                                      fd->name);
        }
        if (fd == schema || schema == NULL) {
            snprintf(e->msg + used, sizeof(e->msg) - used, " nothing)");
        } else if (used < sizeof(e->msg)) {
            snprintf(e->msg + used, sizeof(e->msg) - used, ")");
        }
        snprintf(e->path, sizeof(e->path), "%s", path);
        goto done;
    }
    for (const struct ioloop_config_field *fd = schema;
         fd != NULL && fd->name != NULL; fd++) {
        json_t *def;
        int r;

        if (obj != NULL && json_object_get(obj, fd->name) != NULL) {
            continue;
        }
        ioloop__json_key_path(path, sizeof(path), base, fd->name);
        if (fd->type == IOLOOP__CONFIG_T_OBJECT
            || fd->type == IOLOOP__CONFIG_T_CUSTOM) {
            if (fill_host(f, fd, NULL, base, path) < 0) {
                goto done;
            }
            continue;
        }
        if (fd->flags & IOLOOP_CONFIG_REQUIRED) {
            fail(f, path, "missing (a required %s)",
                 ioloop__config_field_type(fd));
            goto done;
        }
        if (fd->def == NULL) {
            continue;
        }
        def = default_value(fd);
        r = def == NULL ? fail(f, path, "out of memory")
                        : fill_field(f, fd, def, path);
        json_decref(def);
        if (r < 0) {
            goto done;
        }
    }
    rc = 0;

done:
    f->obj = outer;
    return rc;
}

/* fill_field, and the host-only types; v NULL: absent. */
static int
fill_host(struct fill *f, const struct ioloop_config_field *fd,
          const json_t *v, const char *base, const char *path)
{
    const struct ioloop__config_ext *x = ioloop__config_field_ext(fd);
    struct ioloop__config_hook h = {
        fd, f->obj, f->obj + fd->offset, base, path, f->dir, f->c, f->e
    };

    switch (fd->type) {
    case IOLOOP__CONFIG_T_OBJECT:
        if (v != NULL && !json_is_object(v)) {
            return fail(f, path, "expected an object, got %s",
                        ioloop__config_json_type(v));
        }
        return fill_object(f, x->schema, v, path, f->obj + fd->offset);
    case IOLOOP__CONFIG_T_OBJECTS:
        return fill_objects(f, fd, v, path);
    case IOLOOP__CONFIG_T_CUSTOM:
        return x->check(&h, v);
    default:
        return fill_field(f, fd, v, path);
    }
}

/* An array of objects, each filled into its own item of an array. */
static int
fill_objects(struct fill *f, const struct ioloop_config_field *fd,
             const json_t *v, const char *path)
{
    const struct ioloop__config_ext *x = ioloop__config_field_ext(fd);
    char at[sizeof(f->e->path)];
    char *items = NULL;
    json_t *item;
    size_t i;

    if (!json_is_array(v)) {
        return fail(f, path, "expected an array, got %s",
                    ioloop__config_json_type(v));
    }
    if (json_array_size(v) > SIZE_MAX / x->size) {
        return fail(f, path, "out of memory");
    }
    if (json_array_size(v) > 0) {
        items = ioloop__config_alloc(f->c, json_array_size(v) * x->size);
        if (items == NULL) {
            return fail(f, path, "out of memory");
        }
    }
    json_array_foreach(v, i, item) {
        snprintf(at, sizeof(at), "%s[%zu]", path, i);
        if (!json_is_object(item)) {
            return fail(f, at, "expected an object, got %s",
                        ioloop__config_json_type(item));
        }
        if (fill_object(f, x->schema, item, at, items + i * x->size) < 0) {
            return -1;
        }
    }
    *(void **) (f->obj + fd->offset) = items;
    *(size_t *) (f->obj + x->count_offset) = json_array_size(v);
    return 0;
}

/* Checks v against fd and stores it in the member. 0, or -1 with e set. */
static int
fill_field(struct fill *f, const struct ioloop_config_field *fd,
           const json_t *v, const char *path)
{
    char *member = f->obj + fd->offset;
    char got[96], why[256];
    const char *s = json_string_value(v);
    struct sockaddr_storage ss;
    socklen_t sslen;
    json_int_t n;

    if (fd->flags & IOLOOP__CONFIG_GOT_TYPE) {
        snprintf(got, sizeof(got), "%s", ioloop__config_json_type(v));
    } else {
        describe(got, sizeof(got), v);
    }
    switch (fd->type) {
    case IOLOOP_CONFIG_T_BOOL:
        if (!json_is_boolean(v)) {
            return fail(f, path, "expected true or false, got %s", got);
        }
        *(bool *) member = json_is_true(v);
        return 0;
    case IOLOOP_CONFIG_T_INT:
        n = json_integer_value(v);
        if (!json_is_integer(v) || n < fd->min || n > fd->max) {
            return fail(f, path,
                        "expected an integer in [%" PRId64 ", %" PRId64
                        "], got %s",
                        fd->min, fd->max, got);
        }
        *(int64_t *) member = n;
        return 0;
    case IOLOOP_CONFIG_T_DURATION:
        return fill_duration(f, fd, v, path, (int64_t *) member);
    case IOLOOP_CONFIG_T_SIZE:
        return fill_size(f, fd, v, path, (uint64_t *) member);
    case IOLOOP_CONFIG_T_MAP:
    case IOLOOP_CONFIG_T_LIST:
        return fill_strings(f, v, path, fd->type == IOLOOP_CONFIG_T_MAP,
                            member);
    case IOLOOP_CONFIG_T_JSON: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        s = text != NULL ? ioloop__config_strdup(f->c, text) : NULL;
        free(text);
        if (s == NULL) {
            return fail(f, path, "out of memory");
        }
        *(const char **) member = s;
        return 0;
    }
    default:
        break;
    }

    /* The rest are strings. */
    if (s == NULL && fd->type == IOLOOP_CONFIG_T_ENUM) {
        ioloop__config_field_range(fd, why, sizeof(why));
        return fail(f, path, "expected one of %s, got %s", why, got);
    }
    if (s == NULL) {
        return fail(f, path, "expected %s, got %s",
                    fd->type == IOLOOP_CONFIG_T_LISTEN
                        ? "a listen address (\"HOST:PORT\" or "
                          "\"[IPV6]:PORT\")"
                    : fd->type == IOLOOP_CONFIG_T_PATH ? "a path string"
                                                       : "a string",
                    got);
    }
    if (fd->type == IOLOOP_CONFIG_T_ENUM) {
        for (const char *const *ch = fd->choices; *ch != NULL; ch++) {
            if (strcmp(*ch, s) == 0) {
                *(int *) member = (int) (ch - fd->choices);
                return 0;
            }
        }
        ioloop__config_field_range(fd, why, sizeof(why));
        return fail(f, path, "expected one of %s, got %s", why, got);
    }
    if (fd->type == IOLOOP_CONFIG_T_LISTEN
        && ioloop__listen_addr_parse(s, &ss, &sslen, why, sizeof(why)) < 0) {
        return fail(f, path, "%s", why);
    }
    if (fd->type == IOLOOP_CONFIG_T_PATH && s[0] == '\0') {
        return fail(f, path, "expected a path, got \"\"");
    }
    if (fd->type == IOLOOP_CONFIG_T_PATH && s[0] != '/' && f->dir != NULL) {
        size_t need = strlen(f->dir) + strlen(s) + 2;
        char *joined = ioloop__config_alloc(f->c, need);

        if (joined == NULL) {
            return fail(f, path, "out of memory");
        }
        snprintf(joined, need, "%s/%s", f->dir, s);
        *(const char **) member = joined;
        return 0;
    }
    s = ioloop__config_strdup(f->c, s);
    if (s == NULL) {
        return fail(f, path, "out of memory");
    }
    *(const char **) member = s;
    return 0;
}

/*
 * A duration: a JSON number of seconds or a string with a unit, in
 * [min, max]; nothing between 0 and 1 ms, which no timer could honour.
 */
static int
fill_duration(struct fill *f, const struct ioloop_config_field *fd,
              const json_t *v, const char *path, int64_t *out)
{
    char got[96], lo[32], hi[32];
    int64_t ns = 0;
    int rc = -EINVAL;

    describe(got, sizeof(got), v);
    if (json_is_string(v)) {
        rc = ioloop__duration_parse(json_string_value(v), &ns);
    } else if (json_is_number(v)) {
        double secs = json_number_value(v);

        rc = !isfinite(secs) || secs < 0 ? -EINVAL
             : secs >= (double) INT64_MAX / 1e9 ? -ERANGE
                                                : 0;
        ns = rc == 0 ? (int64_t) (secs * 1e9 + 0.5) : 0;
    }
    if (rc == -EINVAL) {
        return fail(f, path,
                    "expected a duration (\"10s\", \"250ms\" or seconds), "
                    "got %s",
                    got);
    }
    if (rc < 0 || ns < fd->min || ns > fd->max
        || (ns > 0 && ns < IOLOOP_NS_PER_MS)) {
        ioloop__duration_format(lo, sizeof(lo),
                                fd->min > 0 ? fd->min : 0);
        ioloop__duration_format(hi, sizeof(hi), fd->max);
        return fail(f, path, "expected a duration in [%s, %s]%s, got %s",
                    lo, hi,
                    fd->min < IOLOOP_NS_PER_MS && fd->max >= IOLOOP_NS_PER_MS
                        ? " (0 or at least 1ms)"
                        : "",
                    got);
    }
    *out = ns;
    return 0;
}

/* A size: a JSON integer of bytes or a string with an IEC unit. */
static int
fill_size(struct fill *f, const struct ioloop_config_field *fd,
          const json_t *v, const char *path, uint64_t *out)
{
    char got[96], lo[32], hi[32];
    uint64_t bytes = 0;
    int rc = -EINVAL;

    describe(got, sizeof(got), v);
    if (json_is_string(v)) {
        rc = ioloop__size_parse(json_string_value(v), &bytes);
    } else if (json_is_integer(v) && json_integer_value(v) >= 0) {
        bytes = (uint64_t) json_integer_value(v);
        rc = 0;
    }
    if (rc == -EINVAL) {
        return fail(f, path,
                    "expected a size (\"64KiB\", \"1MiB\" or bytes), got %s",
                    got);
    }
    if (rc < 0 || bytes < (uint64_t) fd->min || bytes > (uint64_t) fd->max) {
        ioloop__size_format(lo, sizeof(lo), (uint64_t) fd->min);
        ioloop__size_format(hi, sizeof(hi), (uint64_t) fd->max);
        return fail(f, path, "expected a size in [%s, %s], got %s", lo, hi,
                    got);
    }
    *out = bytes;
    return 0;
}

/* A map (object of strings) or a list (array of strings). */
static int
fill_strings(struct fill *f, const json_t *v, const char *path, bool map,
             void *member)
{
    char got[96], at[sizeof(f->e->path)];
    const char **keys = NULL, **values;
    size_t n, i = 0;
    const char *key;
    json_t *item;

    if (map ? !json_is_object(v) : !json_is_array(v)) {
        describe(got, sizeof(got), v);
        return fail(f, path, "expected %s of strings, got %s",
                    map ? "an object" : "an array", got);
    }
    n = map ? json_object_size(v) : json_array_size(v);
    values = ioloop__config_alloc(f->c, (n + 1) * sizeof(*values));
    if (map) {
        keys = ioloop__config_alloc(f->c, (n + 1) * sizeof(*keys));
    }
    if (values == NULL || (map && keys == NULL)) {
        return fail(f, path, "out of memory");
    }
    for (i = 0; !map && i < n; i++) {
        item = json_array_get(v, i);
        snprintf(at, sizeof(at), "%s[%zu]", path, i);
        if (!json_is_string(item)) {
            describe(got, sizeof(got), item);
            return fail(f, at, "expected a string, got %s", got);
        }
        values[i] = ioloop__config_strdup(f->c, json_string_value(item));
        if (values[i] == NULL) {
            return fail(f, at, "out of memory");
        }
    }
    if (map) {
        /* Iteration follows insertion order (jansson >= 2.8). */
        i = 0;
        json_object_foreach((json_t *) v, key, item) {
            ioloop__json_key_path(at, sizeof(at), path, key);
            if (!json_is_string(item)) {
                describe(got, sizeof(got), item);
                return fail(f, at, "expected a string, got %s", got);
            }
            keys[i] = ioloop__config_strdup(f->c, key);
            values[i] = ioloop__config_strdup(f->c, json_string_value(item));
            if (keys[i] == NULL || values[i] == NULL) {
                return fail(f, at, "out of memory");
            }
            i++;
        }
        ((struct ioloop_config_map *) member)->count = n;
        ((struct ioloop_config_map *) member)->keys = keys;
        ((struct ioloop_config_map *) member)->values = values;
        return 0;
    }
    ((struct ioloop_config_list *) member)->count = n;
    ((struct ioloop_config_list *) member)->items = values;
    return 0;
}

/*
 * The JSON value of fd's default text: the text itself for the
 * string-like types, parsed as JSON for the others (a number of seconds
 * such as "0.5" stays a string, which durations refuse: defaults carry
 * their unit). NULL on bad text or no memory.
 */
static json_t *
default_value(const struct ioloop_config_field *fd)
{
    switch (fd->type) {
    case IOLOOP_CONFIG_T_BOOL:
    case IOLOOP_CONFIG_T_INT:
    case IOLOOP_CONFIG_T_MAP:
    case IOLOOP_CONFIG_T_LIST:
    case IOLOOP_CONFIG_T_JSON:
        return json_loads(fd->def, JSON_DECODE_ANY, NULL);
    default:
        return json_string(fd->def);
    }
}

/* How a value shows in a message: "abc" quoted, 42, 1.5, true, an array. */
static void
describe(char *buf, size_t len, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        ioloop__json_quote(buf, len, json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, len, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        break;
    case JSON_NULL:
        snprintf(buf, len, "null");
        break;
    case JSON_OBJECT:
        snprintf(buf, len, "an object");
        break;
    case JSON_ARRAY:
        snprintf(buf, len, "an array");
        break;
    }
}

/* Sets the error at path. Always returns -1. */
static int
fail(struct fill *f, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(f->e, path, fmt, ap);
    va_end(ap);
    return -1;
}

static int
vfail(struct ioloop__config_error *e, const char *path, const char *fmt,
      va_list ap)
{
    snprintf(e->path, sizeof(e->path), "%s", path);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return -1;
}
