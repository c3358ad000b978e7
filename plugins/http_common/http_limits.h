/*
 * plugins/http_common/http_limits.h: what hello_http and status share as
 * HTTP endpoints facing hostile clients: reading their limits from the
 * config (durations, sizes, counts, each validated with its accepted
 * range in the message), one lazily re-armed deadline timer per
 * connection, header-name checking, and shedding past max_connections.
 *
 * The plugins cannot link the host, so this source is compiled into each
 * .so (hidden visibility: nothing here is exported).
 */
#ifndef IOLOOP_PLUGIN_HTTP_LIMITS_H
#define IOLOOP_PLUGIN_HTTP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include <ioloop/plugin.h>

/* Defaults, nginx's where nginx has one. */
#define HTTP_HEADER_TIMEOUT_DEFAULT (10 * IOLOOP_NS_PER_S)
#define HTTP_BODY_TIMEOUT_DEFAULT (30 * IOLOOP_NS_PER_S)
#define HTTP_KEEPALIVE_TIMEOUT_DEFAULT (75 * IOLOOP_NS_PER_S)
#define HTTP_MAX_BODY_DEFAULT ((uint64_t) 1 << 20)
#define HTTP_MAX_CONNS_DEFAULT 10240

/* The counters both plugins register (counter_register): one HELP text
 * per family, so they must agree. */
#define HTTP_SHED_COUNTER "ioloop_connections_shed_total"
#define HTTP_SHED_HELP "Connections closed at accept: max_connections reached."
#define HTTP_TIMED_OUT_COUNTER "ioloop_connections_timed_out_total"
#define HTTP_TIMED_OUT_HELP \
    "Connections closed by a timeout, by what they were waiting for."

/* Accepted durations: 1 ms (below it nothing could be served) to a day. */
#define HTTP_DURATION_MIN_MS 1
#define HTTP_DURATION_MAX_S 86400

/*
 * Reads the optional config[key], a number of seconds (fractions allowed),
 * into *ns (left alone when absent). Returns 0, or -EINVAL with err set
 * ("config.KEY: expected seconds in [0.001, 86400]").
 */
int http__config_duration(const struct json_t *config, const char *key,
                          ioloop_time_t *ns, char *err, size_t errlen);

/*
 * Reads the optional integer config[key] into *value (left alone when
 * absent). Returns 0, or -EINVAL with err set naming the key and [min,
 * max].
 */
int http__config_uint(const struct json_t *config, const char *key,
                      uint64_t min, uint64_t max, uint64_t *value, char *err,
                      size_t errlen);

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
