/*
 * plugins/http_common/http_limits.c: shedding past max_connections, shared
 * by echo and tcp_proxy. Contract in http_limits.h.
 */
#include "http_limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
http__shed(const struct ioloop_api *api, ioloop_instance_t *inst,
           struct http_shed *s, int fd, uint32_t max)
{
    ioloop_time_t now = api->time(inst);

    close(fd);
    s->pending++;
    if (s->logged == 0 || now - s->logged >= IOLOOP_NS_PER_S) {
        api->log(inst, IOLOOP_LOG_WARN,
                 "max_connections (%" PRIu32 ") reached: closed %" PRIu64
                 " new connection(s) since the last such line",
                 max, s->pending);
        s->logged = now;
        s->pending = 0;
    }
}
