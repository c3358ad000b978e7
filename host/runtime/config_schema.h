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
 * the plugin in "unknown key (owner accepts: ...)". Returns 0; or -1
 * with *e set and *c empty. The schema must have passed
 * ioloop__config_schema_check.
 */
int ioloop__config_fill(const struct ioloop_config_field *schema,
                        size_t size, const json_t *obj, const char *base,
                        const char *dir, const char *owner,
                        struct ioloop__config *c,
                        struct ioloop__config_error *e);

/* Frees everything c owns and zeroes it. Safe on a zeroed struct. */
void ioloop__config_free(struct ioloop__config *c);

/* The name of a type as messages and --plugin-info show it ("duration"). */
const char *ioloop__config_type_name(uint32_t type);

/*
 * Writes what a field accepts, for --plugin-info and the docs: the range
 * of an integer, duration or size ("1ms..1d"), an enum's choices
 * ("a|b|c"), or "" when anything of the type goes.
 */
void ioloop__config_field_range(const struct ioloop_config_field *f,
                                char *buf, size_t len);

#endif /* IOLOOP_HOST_CONFIG_SCHEMA_H */
