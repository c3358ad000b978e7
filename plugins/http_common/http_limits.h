/*
 * plugins/http_common/http_limits.h: what echo and tcp_proxy share as
 * endpoints facing hostile clients (HTTP itself is the host's now): the
 * range of their timeouts and shedding past max_connections.
 *
 * The plugins cannot link the host, so this source is compiled into each
 * .so (hidden visibility: nothing here is exported).
 */
#ifndef IOLOOP_PLUGIN_HTTP_LIMITS_H
#define IOLOOP_PLUGIN_HTTP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include <ioloop/plugin.h>

/* The range of every timeout in the plugins' schemas: 1 ms (below it
 * nothing could be served) to a day. */
#define HTTP_DURATION_MIN IOLOOP_NS_PER_MS
#define HTTP_DURATION_MAX (86400 * IOLOOP_NS_PER_S)

/* The counter both plugins register (counter_register): one HELP text
 * per family, so they must agree. */
#define HTTP_SHED_COUNTER "ioloop_connections_shed_total"
#define HTTP_SHED_HELP "Connections closed at accept: max_connections reached."

/* Rate-limited log of connections shed past max_connections. */
struct http_shed {
    ioloop_time_t logged; /* when the last line was logged */
    uint64_t pending;     /* shed since, not logged yet */
};

/*
 * Closes fd, accepted past max connections, and logs it at warn at most
 * once a second (with the count since the last line).
 */
void http__shed(const struct ioloop_api *api, ioloop_instance_t *inst,
                struct http_shed *s, int fd, uint32_t max);

#endif /* IOLOOP_PLUGIN_HTTP_LIMITS_H */
