/*
 * plugins/http_common/http_limits.c: config limits, the lazy deadline
 * timer, header-name checking and shedding, shared by hello_http and
 * status. Contract in http_limits.h.
 */
#include "http_limits.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

static int deadline_arm(const struct ioloop_api *api, ioloop_instance_t *inst,
                        struct http_deadline *d, ioloop_time_t step,
                        ioloop_cb cb, void *arg);

int
http__config_duration(const struct json_t *config, const char *key,
                      ioloop_time_t *ns, char *err, size_t errlen)
{
    /* jansson's getters take a non-const object; nothing is modified. */
    json_t *v = json_object_get((json_t *) config, key);
    double s;

    if (v == NULL) {
        return 0;
    }
    s = json_number_value(v);
    if (!json_is_number(v) || !isfinite(s)
        || s < HTTP_DURATION_MIN_MS / 1e3 || s > HTTP_DURATION_MAX_S) {
        snprintf(err, errlen,
                 "config.%s: expected seconds in [%g, %d]", key,
                 HTTP_DURATION_MIN_MS / 1e3, HTTP_DURATION_MAX_S);
        return -EINVAL;
    }
    *ns = (ioloop_time_t) llround(s * (double) IOLOOP_NS_PER_S);
    return 0;
}

int
http__config_uint(const struct json_t *config, const char *key,
                  uint64_t min, uint64_t max, uint64_t *value, char *err,
                  size_t errlen)
{
    json_t *v = json_object_get((json_t *) config, key);
    json_int_t n = json_integer_value(v);

    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v) || n < 0 || (uint64_t) n < min
        || (uint64_t) n > max) {
        snprintf(err, errlen,
                 "config.%s: expected an integer in [%" PRIu64 ", %" PRIu64
                 "]",
                 key, min, max);
        return -EINVAL;
    }
    *value = (uint64_t) n;
    return 0;
}

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
