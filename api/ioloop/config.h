/*
 * ioloop/config.h: a plugin's config, declared as a table the host reads.
 *
 * A plugin describes its config struct with one entry per key (in the
 * spirit of nginx's ngx_command_t with offsetof):
 *
 *     struct echo_config {
 *         const char *listen;
 *         int64_t backlog;
 *         ioloop_time_t idle_timeout;
 *     };
 *
 *     static const struct ioloop_config_field echo_schema[] = {
 *         IOLOOP_CONFIG_LISTEN(struct echo_config, listen, NULL,
 *                              IOLOOP_CONFIG_REQUIRED, "Where to listen."),
 *         IOLOOP_CONFIG_INT(struct echo_config, backlog, 0, INT32_MAX, "0",
 *                           0, "listen(2) backlog; 0: SOMAXCONN."),
 *         IOLOOP_CONFIG_DURATION(struct echo_config, idle_timeout,
 *                                0, 86400 * IOLOOP_NS_PER_S, "300s", 0,
 *                                "Close a connection idle this long."),
 *         IOLOOP_CONFIG_END
 *     };
 *
 * and points the descriptor's config_schema at the table and config_size
 * at sizeof(struct echo_config). Before any init runs (and under --check,
 * without running plugin code), the host validates the instance's
 * "config" object against the table, refuses unknown keys, applies the
 * defaults and fills a zeroed struct of config_size bytes, which init
 * receives as its const void *config. Errors name the manifest file, the
 * line:column and the JSON path of the offending value. The struct and
 * every string, list and map it points to belong to the host and stay
 * valid until fini returns.
 *
 * The key is the member's name. A key that is absent, not required and
 * without a default leaves the member zero (NULL, 0, false, count 0).
 */
#ifndef IOLOOP_CONFIG_H
#define IOLOOP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ioloop/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The types of a key, and the C type of the member each fills. */
enum ioloop_config_type {
    IOLOOP_CONFIG_T_END = 0,  /* terminates a schema (zeroed entry) */
    IOLOOP_CONFIG_T_STRING,   /* const char *: any JSON string */
    IOLOOP_CONFIG_T_BOOL,     /* bool: true or false */
    IOLOOP_CONFIG_T_INT,      /* int64_t: an integer in [min, max] */
    IOLOOP_CONFIG_T_ENUM,     /* int: index in choices of the string given */
    IOLOOP_CONFIG_T_DURATION, /* ioloop_time_t, ns: "10s", "250ms", "1m",
                                 "2h", "1d" or a number of seconds; in
                                 [min, max] ns; never in (0, 1 ms) */
    IOLOOP_CONFIG_T_SIZE,     /* uint64_t, bytes: "512", "64KiB", "1MiB",
                                 "1GiB" or an integer; in [min, max] */
    IOLOOP_CONFIG_T_LISTEN,   /* const char *: "HOST:PORT" or "[V6]:PORT",
                                 checked as listen_tcp checks it */
    IOLOOP_CONFIG_T_PATH,     /* const char *: a non-empty path; a relative
                                 one is resolved against the manifest's
                                 folder */
    IOLOOP_CONFIG_T_MAP,      /* struct ioloop_config_map: an object of
                                 string values */
    IOLOOP_CONFIG_T_LIST,     /* struct ioloop_config_list: an array of
                                 strings */
    IOLOOP_CONFIG_T_JSON      /* const char *: any JSON value, as its
                                 compact JSON text (free-form values) */
};

/* Flags of a field. */
#define IOLOOP_CONFIG_REQUIRED 0x1u /* the key must be present */

/* An object of string -> string, in the order the manifest gives. */
struct ioloop_config_map {
    size_t count;
    const char *const *keys;
    const char *const *values;
};

/* An array of strings. */
struct ioloop_config_list {
    size_t count;
    const char *const *items;
};

/* One key of a plugin's config. Use the macros below to fill it. */
struct ioloop_config_field {
    /* The key, also the member's name. NULL ends the table. */
    const char *name;
    /* enum ioloop_config_type. */
    uint32_t type;
    /* IOLOOP_CONFIG_*. */
    uint32_t flags;
    /* offsetof(struct, member). */
    size_t offset;
    /* The accepted range (INT, DURATION in ns, SIZE in bytes). */
    int64_t min;
    int64_t max;
    /* ENUM: the accepted strings, NULL-terminated. */
    const char *const *choices;
    /* The value when the key is absent, written as in the manifest
     * ("10s", "1MiB", "128", "true", a choice, a string, "[]" for a list,
     * any JSON text for JSON), or NULL for none. The host checks it when
     * it loads the plugin. */
    const char *def;
    /* One line for --plugin-info and the docs. */
    const char *doc;
};

/*
 * Compiles to offsetof(type, member) and fails to compile (with
 * -Werror: "comparison of distinct pointer types") when the member is
 * not of ctype.
 */
#define IOLOOP_CONFIG_OFFSET_(type, member, ctype)                         \
    (offsetof(type, member)                                                \
     + 0 * sizeof((ctype *) 0 == &((type *) 0)->member))

#define IOLOOP_CONFIG_FIELD_(t, type, member, ctype, lo, hi, ch, def, fl,  \
                             doc)                                          \
    {#member, (t), (fl), IOLOOP_CONFIG_OFFSET_(type, member, ctype), (lo), \
     (hi), (ch), (def), (doc)}

#define IOLOOP_CONFIG_STRING(type, member, def, flags, doc)                \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_STRING, type, member,             \
                         const char *, 0, 0, NULL, def, flags, doc)
#define IOLOOP_CONFIG_BOOL(type, member, def, flags, doc)                  \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_BOOL, type, member, bool, 0, 1,   \
                         NULL, def, flags, doc)
#define IOLOOP_CONFIG_INT(type, member, lo, hi, def, flags, doc)           \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_INT, type, member, int64_t, lo,   \
                         hi, NULL, def, flags, doc)
#define IOLOOP_CONFIG_ENUM(type, member, choices, def, flags, doc)         \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_ENUM, type, member, int, 0, 0,    \
                         choices, def, flags, doc)
#define IOLOOP_CONFIG_DURATION(type, member, lo, hi, def, flags, doc)      \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_DURATION, type, member,           \
                         ioloop_time_t, lo, hi, NULL, def, flags, doc)
#define IOLOOP_CONFIG_SIZE(type, member, lo, hi, def, flags, doc)          \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_SIZE, type, member, uint64_t, lo, \
                         hi, NULL, def, flags, doc)
#define IOLOOP_CONFIG_LISTEN(type, member, def, flags, doc)                \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_LISTEN, type, member,             \
                         const char *, 0, 0, NULL, def, flags, doc)
#define IOLOOP_CONFIG_PATH(type, member, def, flags, doc)                  \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_PATH, type, member, const char *, \
                         0, 0, NULL, def, flags, doc)
#define IOLOOP_CONFIG_MAP(type, member, flags, doc)                        \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_MAP, type, member,                \
                         struct ioloop_config_map, 0, 0, NULL, NULL,       \
                         flags, doc)
#define IOLOOP_CONFIG_LIST(type, member, flags, doc)                       \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_LIST, type, member,               \
                         struct ioloop_config_list, 0, 0, NULL, NULL,      \
                         flags, doc)
#define IOLOOP_CONFIG_JSON(type, member, def, flags, doc)                  \
    IOLOOP_CONFIG_FIELD_(IOLOOP_CONFIG_T_JSON, type, member, const char *, \
                         0, 0, NULL, def, flags, doc)

/* Ends a schema. */
#define IOLOOP_CONFIG_END                                                  \
    {NULL, IOLOOP_CONFIG_T_END, 0, 0, 0, 0, NULL, NULL, NULL}

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_CONFIG_H */
