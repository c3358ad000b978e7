/*
 * plugins/http_common/http_limits.h: what hello_http, status and echo
 * share as endpoints facing hostile clients: the range of their timeouts,
 * one lazily re-armed deadline timer per connection, header-name
 * checking, and shedding past max_connections.
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

/* The counters both plugins register (counter_register): one HELP text
 * per family, so they must agree. */
#define HTTP_SHED_COUNTER "ioloop_connections_shed_total"
#define HTTP_SHED_HELP "Connections closed at accept: max_connections reached."
#define HTTP_TIMED_OUT_COUNTER "ioloop_connections_timed_out_total"
#define HTTP_TIMED_OUT_HELP \
    "Connections closed by a timeout, by what they were waiting for."

/*
 * A connection's deadline, with one timer re-armed lazily: moving the
 * deadline later costs nothing, the timer finds out when it fires.
 *
 * The timer is never armed further than `step` ahead (the shortest
 * timeout the connection uses), so any deadline set later with a timeout
 * of at least `step` lies after it: setting a deadline only arms a timer
 * when none is armed, never per byte or per request. An idle connection
 * pays one timer run per step.
 */
struct http_deadline {
    ioloop_time_t at;    /* when the connection times out, 0: never */
    ioloop_time_t armed; /* when the armed timer fires, 0: none armed */
    ioloop_timer_t timer;
};

/*
 * Sets d's deadline to at (0: none). Arms the timer (cb, arg) when none
 * is armed, or re-arms it when at comes before it. Returns 0, or -ENOMEM
 * when no timer could be armed.
 */
int http__deadline_set(const struct ioloop_api *api, ioloop_instance_t *inst,
                       struct http_deadline *d, ioloop_time_t at,
                       ioloop_time_t step, ioloop_cb cb, void *arg);

/*
 * Call first thing in d's timer callback. Returns 1 when the deadline
 * passed (the connection is to time out), 0 when it moved or was cleared
 * (re-armed as needed), -ENOMEM when re-arming failed.
 */
int http__deadline_fired(const struct ioloop_api *api, ioloop_instance_t *inst,
                         struct http_deadline *d, ioloop_time_t step,
                         ioloop_cb cb, void *arg);

/* Cancels d's timer (connection close). */
void http__deadline_cancel(const struct ioloop_api *api,
                           ioloop_instance_t *inst, struct http_deadline *d);

/*
 * Whether the n bytes at name are all RFC 9110 §5.6.2 tchar, as a header
 * field name must be (no whitespace before the colon).
 */
int http__is_token(const char *name, size_t n);

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
