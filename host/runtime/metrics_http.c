/*
 * host/runtime/metrics_http.c: the HTTP layer's per-route series on the
 * metrics segment's registered series (metrics_series.c). Contract in
 * metrics_http.h.
 *
 * A route is six consecutive series of its slot: the counters of classes
 * 1xx to 5xx, then the histogram; its handle is the first one's, so that
 * observe finds them all with no lookup. Registration makes all six in
 * one go or none (it checks the room first), so a route from an earlier
 * worker of the slot is found consecutive too; should it not be (a
 * plugin's series of the same name and labels in between), the route is
 * refused (-ENOSPC) rather than counted wrongly.
 */
#include "metrics_http.h"

#include <errno.h>

#include "metrics.h"
#include "metrics_series.h"

#define NCLASSES 5
#define NBOUNDS (sizeof(duration_bounds) / sizeof(duration_bounds[0]))

/* A family has one HELP line: a plugin may register series of
 * requests_total too (the raw hello_http of ABI 1.0 did) only with this
 * one. */
#define REQUESTS "ioloop_http_requests_total"
#define REQUESTS_HELP "HTTP requests answered, by status class."
#define DURATION "ioloop_http_request_duration_seconds"
#define DURATION_HELP \
    "Time from a request's head to the end of its response, in seconds."

/* Prometheus's default buckets, nginx-VTS's too: 5 ms to 10 s. */
static const double duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10};

int
ioloop__metrics_http_route(ioloop_loop_t *loop, const char *server,
                           const char *route)
{
    static const char *const classes[NCLASSES] = {"1xx", "2xx", "3xx", "4xx",
                                                  "5xx"};
    struct ioloop__series_table *t = ioloop__metrics_series(loop);
    const char *labels[] = {"server", server, "route", route, "code", NULL,
                            NULL};
    int first = -1, h;

    if (t == NULL) {
        return -ENOTSUP;
    }
    if (server == NULL || route == NULL) {
        return -EINVAL;
    }
    /* All six or none: without room for a whole route, only one made
     * earlier in the slot (then every series is found, none added). */
    labels[5] = classes[0];
    if (!ioloop__series_room(t, NCLASSES + 1, NCLASSES + NBOUNDS + 2)
        && (h = ioloop__series_find(t, IOLOOP__SERIES_COUNTER, REQUESTS,
                                    REQUESTS_HELP, "", labels, NULL, 0))
               < 0) {
        return h == -ENOENT ? -ENOSPC : h;
    }
    for (int c = 0; c <= NCLASSES; c++) {
        if (c < NCLASSES) {
            labels[5] = classes[c];
            h = ioloop__series_register(t, IOLOOP__SERIES_COUNTER, REQUESTS,
                                        REQUESTS_HELP, "", labels, NULL, 0);
        } else {
            labels[4] = NULL; /* no code label */
            h = ioloop__series_register(
                t, IOLOOP__SERIES_HISTOGRAM, DURATION, DURATION_HELP, "",
                labels, duration_bounds, NBOUNDS);
        }
        if (h < 0) {
            return h;
        }
        if (c == 0) {
            first = h;
        } else if (h != first + c) {
            return -ENOSPC; /* see the file comment */
        }
    }
    return first;
}

void
ioloop__metrics_http_observe(ioloop_loop_t *loop, int handle, int status,
                             ioloop_time_t duration)
{
    struct ioloop__series_table *t = ioloop__metrics_series(loop);
    int c = status / 100 - 1;

    if (t == NULL || handle < 0 || handle > IOLOOP_METRICS_MAX_SERIES) {
        return;
    }
    c = c < 0 ? 0 : c >= NCLASSES ? NCLASSES - 1 : c;
    ioloop__series_add(t, handle + c, 1);
    ioloop__series_observe(t, handle + NCLASSES,
                           (double) duration / (double) IOLOOP_NS_PER_S);
}
