/*
 * host/app/listen_source.h: where the socket helpers (host/runtime/net.c)
 * get a listener this process does not bind itself, as the process model
 * decides: in a worker, from the master (broker.h); in a socket-activated
 * host, from the sockets systemd passed (listenfds.h).
 */
#ifndef IOLOOP_HOST_LISTEN_SOURCE_H
#define IOLOOP_HOST_LISTEN_SOURCE_H

#include <stddef.h>

#include "net.h"

/*
 * The listener source main installs (ioloop__net_set_listener_source).
 * A worker's request goes to the master, whatever the answer; otherwise a
 * passed socket bound to exactly req->addr is taken; otherwise
 * IOLOOP_LISTENER_NONE: the helper binds. See ioloop_listener_source_fn.
 */
int ioloop__listen_source(const struct ioloop_listener_request *req,
                          char *err, size_t errlen);

#endif /* IOLOOP_HOST_LISTEN_SOURCE_H */
