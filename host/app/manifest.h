/*
 * host/app/manifest.h: the JSON manifest, parsed and validated into a plain
 * struct (jansson). Nothing here loads or binds anything.
 */
#ifndef IOLOOP_HOST_MANIFEST_H
#define IOLOOP_HOST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ioloop/loop.h>

#include "config_schema.h"
#include "http_server.h"

struct ioloop__manifest_server;

/* One entry of "plugins". */
struct ioloop_manifest_plugin {
    const char *name; /* instance name, unique within the manifest */
    const char *path; /* absolute when the manifest gave a path with a
                         '/', else the bare file name to find in the
                         plugin dir */
    const json_t *config; /* the "config" value (an object) or NULL;
                             owned by the manifest's root */
    int log_level;  /* from log.plugins, or -1: the manifest's level */
    bool one_process; /* "one_process": run in worker 0 only */
    char where[48]; /* JSON path of the entry, e.g. "plugins[1]" */
};

struct ioloop_manifest {
    char *file;          /* the path as given (for messages) */
    char *dir;           /* absolute folder of the manifest */
    char **backends;     /* names to try in order; "auto" is expanded */
    size_t nbackends;
    char **swap;         /* "backend_swap": each SIGUSR2 moves the loop to
                            the next of these, cyclically; may be empty */
    size_t nswap;
    const char *backend_dir; /* absolute, or NULL for the host's default */
    const char *plugin_dir;  /* absolute, or NULL for the host's default */
    int log_level;       /* IOLOOP_LOG_*; IOLOOP_LOG_INFO when absent */
    int log_json;        /* log.format: 1 for "json" lines, 0 "plain" */
    int workers;         /* worker processes; 0: none, serve in-process */
    ioloop_time_t shutdown_timeout; /* graceful stop budget; default 10 s */
    int64_t watchdog_ms; /* blocking-callback threshold; 0: off */
    int64_t watchdog_kill_ms; /* the master replaces a worker blocked so
                                 long; 0: off; needs workers */
    const char *pid_file; /* absolute, or NULL */
    struct ioloop_manifest_plugin *plugins;
    size_t nplugins;
    struct ioloop_http_server_spec *servers; /* "servers", validated: routes
                                               name instances of plugins */
    size_t nservers;
    struct ioloop__manifest_server *server_conf; /* "servers" as the tables
                                                    read it (the specs'
                                                    source) */
    size_t nserver_conf;
    const json_t *log_levels; /* "log.plugins" as given, or NULL; applied
                                 to plugins[].log_level */
    struct ioloop__config values; /* owns what the strings and arrays
                                     above point to (not file, dir) */
    json_t *root;        /* the parsed document; owns every json_t above */
    char *text;          /* the file's text (not NUL-terminated), to give
                            the line:column of a value in messages */
    size_t text_len;
};

/* The order "auto" expands to. */
extern const char *const ioloop__auto_backends[];

/* The manifest's keys, as the config engine reads them (host-only types
 * included), for the generated reference. */
extern const struct ioloop_config_field ioloop__manifest_schema[];

/*
 * Reads and validates the manifest at path into *m. On failure returns
 * -1 with *m zeroed and one line in err, naming the file and the place
 * (the line:column of the offending value and its JSON path):
 *   "config/x.json:3:14: syntax error: '}' expected near ','"
 *   "config/x.json:4:13: plugins[0].pth: unknown key"
 *   "config/x.json:2:14: backend: expected a string or an array of
 *    strings, got integer"
 *   "config/x.json: cannot read: No such file or directory"
 */
int ioloop__manifest_load(const char *path, struct ioloop_manifest *m,
                          char *err, size_t errlen);

/*
 * Replaces the backend list with the one name given on the command line
 * (--backend NAME; "auto" expands). Returns 0, or -1 with err set.
 */
int ioloop__manifest_set_backend(struct ioloop_manifest *m, const char *name,
                                 char *err, size_t errlen);

/* Frees everything *m owns and zeroes it. Safe on a zeroed struct. */
void ioloop__manifest_free(struct ioloop_manifest *m);

#endif /* IOLOOP_HOST_MANIFEST_H */
