/*
 * host/runtime/config_schema.h: the config engine. Checks a schema
 * (struct ioloop_config_field, <ioloop/config.h>), validates a JSON
 * object against it and fills the struct it describes, before any plugin
 * code runs.
 */
#ifndef IOLOOP_HOST_CONFIG_SCHEMA_H
#define IOLOOP_HOST_CONFIG_SCHEMA_H

#include <stddef.h>

#include <jansson.h>

#include <ioloop/config.h>

struct ioloop__config_chunk;
struct ioloop__config_hook;

/*
 * Host-only types, for the manifest's own keys: a plugin's schema never
 * holds them (ioloop__config_schema_check refuses them). Their extra
 * description (struct ioloop__config_ext) rides in the field's choices
 * pointer; write them with IOLOOP__CONFIG_AT and IOLOOP__CONFIG_EXT.
 */
enum {
    /* A nested object: ext->schema fills the same struct, its offsets
     * taken from the field's offset (0: the JSON nests, the C struct does
     * not). Absent: the sub-schema's defaults apply. */
    IOLOOP__CONFIG_T_OBJECT = 64,
    /* An array of objects: ext->schema fills each of an allocated array
     * of ext->size-byte structs, stored as a pointer at the field's offset
     * with its count (size_t) at ext->count_offset. */
    IOLOOP__CONFIG_T_OBJECTS,
    /* ext->check validates and stores the value: the unions a schema
     * cannot say (a name or a list of names; a number or "auto"), within
     * the field's min and max if it has a range. Also
     * called when the key is absent, with v NULL, to apply its default or
     * refuse (IOLOOP_CONFIG_REQUIRED on it only shows in the docs). */
    IOLOOP__CONFIG_T_CUSTOM
};

/* A wrong type is named by its type ("got integer"), not by its value
 * ("got 1"), as the manifest's messages always did. */
#define IOLOOP__CONFIG_GOT_TYPE 0x100u

/* What one IOLOOP__CONFIG_T_CUSTOM check works with. */
struct ioloop__config_hook {
    const struct ioloop_config_field *fd;
    void *obj;             /* the struct being filled */
    void *member;          /* obj + fd->offset */
    const char *base;      /* JSON path of the enclosing object */
    const char *path;      /* JSON path of the value (or where it would be) */
    const char *dir;       /* relative paths are resolved against it */
    struct ioloop__config *c;   /* owns what the check allocates */
    struct ioloop__config_error *e;
};

/* Returns 0, or -1 with h->e set (ioloop__config_fail). v: NULL if absent. */
typedef int (*ioloop__config_check_fn)(const struct ioloop__config_hook *h,
                                       const json_t *v);

/* The rest of a host-only field. */
struct ioloop__config_ext {
    const struct ioloop_config_field *schema; /* OBJECT, OBJECTS */
    size_t size;                   /* OBJECTS: one item's struct */
    size_t count_offset;           /* OBJECTS, CUSTOM lists: the count */
    ioloop__config_check_fn check; /* CUSTOM */
    const char *type;              /* CUSTOM: the type the docs show */
};

/* A field keyed by key (not by the member's name), of any type. */
#define IOLOOP__CONFIG_AT(key, t, type, member, ctype, lo, hi, ch, def, fl, \
                          doc)                                             \
    {(key), (t), (fl), IOLOOP_CONFIG_OFFSET_(type, member, ctype), (lo),   \
     (hi), (ch), (def), (doc)}

/* The choices pointer of a host-only field, carrying its ext. */
#define IOLOOP__CONFIG_EXT(ext) ((const char *const *) (const void *) (ext))

/* A filled config: the struct and everything it points to. */
struct ioloop__config {
    void *data; /* config_size bytes; NULL until filled */
    struct ioloop__config_chunk *chunks; /* every allocation, freed at once */
};

/* Why a value was refused. */
struct ioloop__config_error {
    /* JSON path of the offending value ("plugins[1].config.port"); for
     * a missing key, of the key it should be at. */
    char path[320];
    /* The reason, one line: "expected an integer in [1, 65535], got
     * 70000". */
    char msg[640];
};

/*
 * Checks a plugin's schema: names unique and made of [a-z0-9_], types
 * known, members inside size, ranges ordered, enums with choices, and
 * every default valid for its own field. Returns 0, or -1 with one line
 * in err ("schema: key \"x\": ...").
 */
int ioloop__config_schema_check(const struct ioloop_config_field *schema,
                                size_t size, char *err, size_t errlen);

/*
 * Validates obj (an object, or NULL for none) against schema and fills
 * c->data, a zeroed struct of size bytes, with the defaults applied.
 * base is the JSON path of obj, used in messages; dir, when not NULL,
 * is the folder relative PATH values are resolved against; owner names
 * the plugin in "unknown key (owner accepts: ...)" (NULL: just "unknown
 * key"). Host-only types are accepted here. Returns 0; or -1
 * with *e set and *c empty. The schema must have passed
 * ioloop__config_schema_check.
 */
int ioloop__config_fill(const struct ioloop_config_field *schema,
                        size_t size, const json_t *obj, const char *base,
                        const char *dir, const char *owner,
                        struct ioloop__config *c,
                        struct ioloop__config_error *e);

/* n zeroed bytes owned by c, or NULL when out of memory. */
void *ioloop__config_alloc(struct ioloop__config *c, size_t n);

/* A copy of s owned by c, or NULL when out of memory. */
char *ioloop__config_strdup(struct ioloop__config *c, const char *s);

/* Sets e to (path, the message). Always returns -1. */
int ioloop__config_fail(struct ioloop__config_error *e, const char *path,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The JSON type of v as messages name it: "object", "integer", "null". */
const char *ioloop__config_json_type(const json_t *v);

/* The extra description of a host-only field. */
const struct ioloop__config_ext *
ioloop__config_field_ext(const struct ioloop_config_field *f);

/* Frees everything c owns and zeroes it. Safe on a zeroed struct. */
void ioloop__config_free(struct ioloop__config *c);

/* The name of a type as messages and --plugin-info show it ("duration"). */
const char *ioloop__config_type_name(uint32_t type);

/* The name of f's type, a host-only one included. */
const char *ioloop__config_field_type(const struct ioloop_config_field *f);

/*
 * Writes what a field accepts, for --plugin-info and the docs: the range
 * of an integer, duration or size ("1ms..1d"), an enum's choices
 * ("a|b|c"), a custom field's range when it has one, or "" when anything
 * of the type goes.
 */
void ioloop__config_field_range(const struct ioloop_config_field *f,
                                char *buf, size_t len);

#endif /* IOLOOP_HOST_CONFIG_SCHEMA_H */
