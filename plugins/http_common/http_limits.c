/*
 * plugins/http_common/http_limits.c: the lazy deadline timer, header-name
 * checking and shedding, shared by hello_http, status and echo. Contract
 * in http_limits.h.
 */
#include "http_limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int deadline_arm(const struct ioloop_api *api, ioloop_instance_t *inst,
                        struct http_deadline *d, ioloop_time_t step,
                        ioloop_cb cb, void *arg);

int
http__deadline_set(const struct ioloop_api *api, ioloop_instance_t *inst,
                   struct http_deadline *d, ioloop_time_t at,
                   ioloop_time_t step, ioloop_cb cb, void *arg)
{
    d->at = at;
    if (at == 0 || (d->armed != 0 && d->armed <= at)) {
        return 0; /* the armed timer comes first and will look again */
    }
    if (d->armed != 0) {
        /* Only a deadline shorter than step (the lingering close) gets
         * here: not the per-request path. */
        api->cancel(inst, d->timer);
        d->armed = 0;
    }
    return deadline_arm(api, inst, d, step, cb, arg);
}

int
http__deadline_fired(const struct ioloop_api *api, ioloop_instance_t *inst,
                     struct http_deadline *d, ioloop_time_t step,
                     ioloop_cb cb, void *arg)
{
    d->armed = 0;
    if (d->at == 0) {
        return 0; /* nothing to wait for: armed again when needed */
    }
    if (api->time(inst) >= d->at) {
        return 1;
    }
    return deadline_arm(api, inst, d, step, cb, arg);
}

void
http__deadline_cancel(const struct ioloop_api *api, ioloop_instance_t *inst,
                      struct http_deadline *d)
{
    if (d->armed != 0) {
        api->cancel(inst, d->timer);
        d->armed = 0;
    }
    d->at = 0;
}

/* Arms the timer at d->at, or step from now if that is sooner. */
static int
deadline_arm(const struct ioloop_api *api, ioloop_instance_t *inst,
             struct http_deadline *d, ioloop_time_t step, ioloop_cb cb,
             void *arg)
{
    ioloop_time_t due = api->time(inst) + step;

    if (d->at < due) {
        due = d->at;
    }
    d->timer = api->call_at(inst, due, cb, arg);
    if (d->timer == 0) {
        return -ENOMEM;
    }
    d->armed = due;
    return 0;
}

int
http__is_token(const char *name, size_t n)
{
    /* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" /
     * "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
    static const char extra[] = "!#$%&'*+-.^_`|~";

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9')
              || (ch != '\0' && memchr(extra, ch, sizeof(extra) - 1)))) {
            return 0;
        }
    }
    return 1;
}

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
