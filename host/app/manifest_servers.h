/*
 * host/app/manifest_servers.h: the manifest's "servers" (the host's HTTP
 * servers), as the config engine reads them and as they are handed to
 * host/runtime/http_server.h: the tables, then the rules no table can say
 * (routes naming instances, duplicates, addresses listened on twice).
 */
#ifndef IOLOOP_HOST_MANIFEST_SERVERS_H
#define IOLOOP_HOST_MANIFEST_SERVERS_H

#include "config_schema.h"

struct ioloop_manifest;

/* One entry of "servers" as the tables fill it (manifest_servers.c). */
struct ioloop__manifest_server;

/* The ext of the manifest's "servers" field (an array of objects, each
 * filled into a struct ioloop__manifest_server). */
extern const struct ioloop__config_ext ioloop__manifest_servers_ext;

/*
 * Checks m's filled servers (m->server_conf, read by the tables) against
 * the rules and against m's plugin instances, and builds m->servers and
 * m->nservers in memory owned by m->values. Returns 0, or -1 with *e set
 * to the JSON path of the offending value and the reason.
 */
int ioloop__manifest_servers_build(struct ioloop_manifest *m,
                                   struct ioloop__config_error *e);

#endif /* IOLOOP_HOST_MANIFEST_SERVERS_H */
