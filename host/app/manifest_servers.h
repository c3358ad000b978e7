/*
 * host/app/manifest_servers.h: the manifest's "servers" (the host's HTTP
 * servers), as the config engine reads them and as they are handed to
 * host/runtime/http_server.h: the tables, then the rules no table can say
 * (routes naming instances, duplicates, addresses listened on twice).
 */
#ifndef IOLOOP_HOST_MANIFEST_SERVERS_H
#define IOLOOP_HOST_MANIFEST_SERVERS_H

#include <stddef.h>

#include <jansson.h>

#include "config_schema.h"
#include "http_server.h"

struct ioloop_manifest_plugin;

/* One entry of "servers" as the tables fill it (manifest_servers.c). */
struct ioloop__manifest_server;

/* The ext of the manifest's "servers" field (an array of objects, each
 * filled into a struct ioloop__manifest_server). */
extern const struct ioloop__config_ext ioloop__manifest_servers_ext;

/*
 * Checks the filled servers (raw, n of them; json: the manifest's
 * "servers" array, to tell a given object from an absent one) against
 * the rules and against the plugin instances, and builds their specs in
 * memory owned by c. Returns 0 with *out (NULL when n is 0), or -1 with
 * *e set to the JSON path of the offending value and the reason.
 */
int ioloop__manifest_servers_build(
    const struct ioloop__manifest_server *raw, size_t n, const json_t *json,
    const struct ioloop_manifest_plugin *plugins, size_t nplugins,
    struct ioloop__config *c, struct ioloop_http_server_spec **out,
    struct ioloop__config_error *e);

#endif /* IOLOOP_HOST_MANIFEST_SERVERS_H */
