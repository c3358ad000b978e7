/*
 * host/runtime/metrics_http.h: the host HTTP layer's per-route metrics,
 * two families in the metrics segment (metrics.h), owned by the host
 * (no instance label):
 *
 *   ioloop_http_requests_total{worker,server,route,code="1xx".."5xx"}
 *   ioloop_http_request_duration_seconds{worker,server,route}  histogram,
 *       buckets 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 (+Inf)
 *
 * The HTTP server registers each route once, at setup, and counts each
 * response with one O(1) call.
 */
#ifndef IOLOOP_HOST_METRICS_HTTP_H
#define IOLOOP_HOST_METRICS_HTTP_H

#include <ioloop/loop.h>

/*
 * Registers the series of route (its label, e.g. the manifest's prefix or
 * path) of server (its name) in loop's attached slot: five request
 * counters, one per status class, and one duration histogram, all at 0.
 * The same server and route again (also by the next worker in the slot)
 * is the same handle, its totals carried on. Returns the handle (>= 0),
 * -EINVAL (a NULL string, or one too long for the labels), -ENOSPC (the
 * slot's series are used up: the route is then not counted), -ENOTSUP
 * (loop not attached). Loop thread only.
 */
int ioloop__metrics_http_route(ioloop_loop_t *loop, const char *server,
                               const char *route);

/*
 * Counts one response of the route of handle: status by its class (below
 * 200: 1xx, 600 and above: 5xx) and duration (ns) in the histogram. O(1):
 * no lock, no allocation, no lookup. A handle that is not one (e.g. a
 * failed registration's) is a no-op; so is a loop not attached.
 */
void ioloop__metrics_http_observe(ioloop_loop_t *loop, int handle,
                                  int status, ioloop_time_t duration);

#endif /* IOLOOP_HOST_METRICS_HTTP_H */
