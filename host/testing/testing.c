/*
 * host/testing/testing.c: libioloop_testing (api/ioloop/testing.h): the
 * host's loop and plugin lifecycle on a fake clock and the scripted
 * backend of script.h, with the host's log captured.
 */
#include <ioloop/testing.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "loader.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "script.h"

/* What advance runs at one time at most before it gives up (-ELOOP). */
#define SETTLE_MAX 10000

/* The host's epoll backend, compiled in by epoll.c. */
extern const struct ioloop_backend ioloop__testing_epoll;

struct ioloop_testing_instance_s {
    struct ioloop_instance_s p; /* the host's record; owners point in */
    ioloop_testing_t *t;
    ioloop_testing_instance_t *prev; /* started before this one */
    ioloop_testing_instance_t *next;
    char name[];
};

struct ioloop_testing_s {
    ioloop_loop_t *loop;
    struct ioloop__script script;
    struct ioloop_metrics *metrics;
    ioloop_testing_instance_t *last; /* the last started */
    ioloop_time_t now;               /* the fake clock */
    char *log;                       /* NUL-terminated */
    size_t loglen;
    size_t logcap;
    char error[2048];
    char *render; /* metrics_render's buffer for ioloop_testing_counter */
    size_t rendercap;
};

/* Signals, metrics and the log are process-wide in the host. */
static ioloop_testing_t *current;

static ioloop_time_t fake_clock(void *arg);
static void capture(const char *line, size_t len, void *arg);
static int run_once(ioloop_testing_t *t, int wait_ms);
static uint64_t ran_so_far(const ioloop_testing_t *t);
static const char *json_type_name(const json_t *v);
static void instance_free(ioloop_testing_instance_t *inst);
static bool series_is(const char *labels, const char *end,
                      const char *value);
static char *render(ioloop_testing_t *t);

ioloop_testing_t *
ioloop_testing_new(unsigned flags)
{
    ioloop_testing_t *t;
    char err[256];
    int rc;

    if (current != NULL) {
        errno = EBUSY;
        return NULL;
    }
    if (flags & ~IOLOOP_TESTING_EPOLL) {
        errno = EINVAL;
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->now = IOLOOP_TESTING_EPOCH;
    t->script.inner = flags & IOLOOP_TESTING_EPOLL ? &ioloop__testing_epoll
                                                   : NULL;
    ioloop__script_next(&t->script);
    t->loop = ioloop_loop_new(&ioloop__script_ops, err, sizeof(err));
    if (t->loop == NULL) {
        goto fail;
    }
    t->script.loop = t->loop;
    ioloop__set_clock(t->loop, fake_clock, t);
    /* A segment of one slot, as the single-process host has: the API's
     * counters and metrics_render work. */
    t->metrics = ioloop__metrics_create(1);
    if (t->metrics == NULL) {
        goto fail;
    }
    rc = ioloop__metrics_attach(t->loop, t->metrics, 0);
    if (rc < 0) {
        errno = -rc;
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN); /* as the host: a gone peer gives EPIPE */
    ioloop__log_set_sink(capture, t);
    current = t;
    return t;

fail:
    rc = errno;
    if (t->loop != NULL) {
        ioloop__metrics_detach(t->loop);
        ioloop_loop_free(t->loop);
    }
    ioloop__metrics_free(t->metrics);
    ioloop__script_free(&t->script);
    free(t);
    errno = rc;
    return NULL;
}

void
ioloop_testing_free(ioloop_testing_t *t)
{
    if (t == NULL) {
        return;
    }
    while (t->last != NULL) {
        ioloop_testing_stop(t->last);
    }
    ioloop__metrics_detach(t->loop);
    ioloop_loop_free(t->loop);
    ioloop__metrics_free(t->metrics);
    ioloop__script_free(&t->script);
    ioloop__log_set_sink(NULL, NULL);
    current = NULL;
    free(t->log);
    free(t->render);
    free(t);
}

int
ioloop_testing_start(ioloop_testing_t *t, const struct ioloop_plugin *plugin,
                     const char *name, const char *config,
                     ioloop_testing_instance_t **out)
{
    struct ioloop_plugin_set one;
    ioloop_testing_instance_t *inst = NULL;
    json_t *cfg = NULL;
    json_error_t jerr;
    struct ioloop__config_error bad;
    char reason[1024];
    size_t nlen;
    int rc = -EINVAL;

    t->error[0] = '\0';
    if (out != NULL) {
        *out = NULL;
    }
    if (plugin == NULL) {
        snprintf(t->error, sizeof(t->error), "no plugin descriptor");
        return -EINVAL;
    }
    if (name == NULL || name[0] == '\0') {
        snprintf(t->error, sizeof(t->error),
                 "plugins[0].name: expected a non-empty string");
        return -EINVAL;
    }
    /* As the manifest (host/app/manifest.c) reads the entry's config. */
    if (config != NULL) {
        cfg = json_loads(config, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                         &jerr);
        if (cfg == NULL) {
            snprintf(t->error, sizeof(t->error),
                     "config:%d:%d: syntax error: %s", jerr.line,
                     jerr.column, jerr.text);
            return -EINVAL;
        }
        if (!json_is_object(cfg)) {
            snprintf(t->error, sizeof(t->error),
                     "plugins[0].config: expected an object, got %s",
                     json_type_name(cfg));
            goto cleanup;
        }
    }
    /* As the loader checks a plugin it opened and fills its config. */
    if (ioloop__plugin_check(plugin->name != NULL ? plugin->name : "plugin",
                             plugin, reason, sizeof(reason)) < 0) {
        snprintf(t->error, sizeof(t->error), "plugins[0] \"%s\": %s", name,
                 reason);
        goto cleanup;
    }
    nlen = strlen(name) + 1;
    inst = calloc(1, sizeof(*inst) + nlen);
    if (inst == NULL) {
        snprintf(t->error, sizeof(t->error), "out of memory");
        rc = -ENOMEM;
        goto cleanup;
    }
    /* Relative PATH values resolve against the test's working folder. */
    if (ioloop__config_fill(plugin->config_schema, plugin->config_size, cfg,
                            "plugins[0].config", ".", plugin->name,
                            &inst->p.values, &bad) < 0) {
        snprintf(t->error, sizeof(t->error), "%s: %s", bad.path, bad.msg);
        ioloop__config_free(&inst->p.values);
        free(inst);
        inst = NULL;
        goto cleanup;
    }
    memcpy(inst->name, name, nlen);
    inst->t = t;
    inst->p.owner.name = inst->name;
    inst->p.where = "plugins[0]";
    inst->p.desc = plugin;
    inst->p.workers = 1; /* worker 0 of 1, as a host without workers */
    one = (struct ioloop_plugin_set){&inst->p, 1};
    rc = ioloop__plugins_init(&one, t->loop, t->error, sizeof(t->error));
    if (rc < 0) {
        ioloop__config_free(&inst->p.values);
        free(inst);
        inst = NULL;
        goto cleanup;
    }
    inst->prev = t->last;
    if (t->last != NULL) {
        t->last->next = inst;
    }
    t->last = inst;
    rc = 0;

cleanup:
    json_decref(cfg);
    if (out != NULL) {
        *out = inst;
    }
    return rc;
}

const char *
ioloop_testing_error(const ioloop_testing_t *t)
{
    return t->error;
}

void
ioloop_testing_stop(ioloop_testing_instance_t *inst)
{
    struct ioloop_plugin_set one;

    if (inst == NULL) {
        return;
    }
    one = (struct ioloop_plugin_set){&inst->p, 1};
    ioloop__plugins_fini(&one, inst->t->loop);
    instance_free(inst);
}

void *
ioloop_testing_state(const ioloop_testing_instance_t *inst)
{
    return inst->p.state;
}

int
ioloop_testing_fire(ioloop_testing_t *t, int fd, unsigned events)
{
    int rc;

    if (ioloop__script_interest(&t->script, fd) < 0) {
        return -ENOENT;
    }
    rc = ioloop__script_fire(&t->script, fd, events);
    if (rc < 0) {
        return rc;
    }
    return run_once(t, 0);
}

int
ioloop_testing_run(ioloop_testing_t *t, int wait_ms)
{
    return run_once(t, wait_ms);
}

int
ioloop_testing_advance(ioloop_testing_t *t, ioloop_time_t ns)
{
    ioloop_time_t target = t->now + (ns > 0 ? ns : 0);
    uint64_t before = ran_so_far(t);
    int settle = 0;

    for (;;) {
        int64_t asked;

        run_once(t, 0);
        asked = t->script.asked_ns;
        /* 0: more is due now (or a plugin stopped the loop before its
         * poll, -1): run again at the same time. */
        if (asked <= 0) {
            if (++settle == SETTLE_MAX) {
                return -ELOOP;
            }
            continue;
        }
        settle = 0;
        if (t->now >= target) {
            break;
        }
        t->now += asked < target - t->now ? asked : target - t->now;
    }
    return (int) (ran_so_far(t) - before);
}

ioloop_time_t
ioloop_testing_now(const ioloop_testing_t *t)
{
    return t->now;
}

const char *
ioloop_testing_log(const ioloop_testing_t *t)
{
    return t->log != NULL ? t->log : "";
}

int
ioloop_testing_log_count(const ioloop_testing_t *t, const char *text)
{
    const char *p = ioloop_testing_log(t);
    size_t len = strlen(text);
    int n = 0;

    if (len == 0) {
        return 0;
    }
    while ((p = strstr(p, text)) != NULL) {
        n++;
        p += len;
    }
    return n;
}

void
ioloop_testing_log_clear(ioloop_testing_t *t)
{
    t->loglen = 0;
    if (t->log != NULL) {
        t->log[0] = '\0';
    }
}

int
ioloop_testing_handlers(const ioloop_testing_t *t)
{
    return (int) ioloop__handler_count(t->loop);
}

int
ioloop_testing_handler_events(const ioloop_testing_t *t, int fd)
{
    return ioloop__script_interest(&t->script, fd);
}

int
ioloop_testing_failures(const ioloop_testing_t *t)
{
    return (int) ioloop__stats(t->loop)->failures;
}

long long
ioloop_testing_counter(ioloop_testing_t *t, const char *name,
                       const char *value)
{
    size_t nlen = strlen(name);
    char *line = render(t);

    /* NAME{worker="0",instance="I"[,LABEL="VALUE"]} N, one per line. */
    for (; line != NULL; line = strchr(line, '\n')) {
        const char *close;

        line += line[0] == '\n';
        if (strncmp(line, name, nlen) != 0 || line[nlen] != '{'
            || (close = strchr(line, '}')) == NULL) {
            continue;
        }
        if (series_is(line + nlen + 1, close, value)) {
            return strtoll(close + 2, NULL, 10);
        }
    }
    return -1;
}

double
ioloop_testing_metric(ioloop_testing_t *t, const char *name,
                      const char *labels)
{
    size_t nlen = strlen(name), llen = labels != NULL ? strlen(labels) : 0;
    char *line = render(t);

    /* NAME{worker="0",instance="I"[,LABELS]} V: I holds no quote. */
    for (; line != NULL; line = strchr(line, '\n')) {
        const char *rest, *close;

        line += line[0] == '\n';
        if (strncmp(line, name, nlen) != 0 || line[nlen] != '{'
            || (rest = strstr(line, ",instance=\"")) == NULL
            || (rest = strchr(rest + 11, '"')) == NULL
            || (close = strchr(rest, '}')) == NULL
            || memchr(line, '\n', (size_t) (close - line)) != NULL) {
            continue;
        }
        rest++;
        if (labels == NULL ? rest == close
                           : (size_t) (close - rest) == llen + 1
                                 && rest[0] == ','
                                 && memcmp(rest + 1, labels, llen) == 0) {
            return strtod(close + 2, NULL);
        }
    }
    return NAN;
}

/* metrics_render into t->render (grown as needed): the text, or NULL. */
static char *
render(ioloop_testing_t *t)
{
    int len = ioloop__metrics_render(t->loop, NULL, 0);

    if (len < 0) {
        return NULL;
    }
    if ((size_t) len + 256 > t->rendercap) {
        char *p = realloc(t->render, (size_t) len + 256);

        if (p == NULL) {
            return NULL;
        }
        t->render = p;
        t->rendercap = (size_t) len + 256;
    }
    if (ioloop__metrics_render(t->loop, t->render, t->rendercap) < 0) {
        return NULL;
    }
    return t->render;
}

static ioloop_time_t
fake_clock(void *arg)
{
    const ioloop_testing_t *t = arg;

    return t->now;
}

/* Keeps a line as "LEVEL [TAG] MESSAGE\n": the plain format's timestamp
 * (its first word) differs from run to run, so it goes. */
static void
capture(const char *line, size_t len, void *arg)
{
    ioloop_testing_t *t = arg;
    const char *space = memchr(line, ' ', len);

    if (line[0] != '{' && space != NULL) {
        len -= (size_t) (space + 1 - line);
        line = space + 1;
    }
    if (t->loglen + len + 1 > t->logcap) {
        size_t cap = t->logcap ? t->logcap : 1024;
        char *p;

        while (cap < t->loglen + len + 1) {
            cap *= 2;
        }
        p = realloc(t->log, cap);
        if (p == NULL) {
            return; /* the line is lost; the test reads what was kept */
        }
        t->log = p;
        t->logcap = cap;
    }
    memcpy(t->log + t->loglen, line, len);
    t->loglen += len;
    t->log[t->loglen] = '\0';
}

/* One iteration: the script's poll stops the loop after it. */
static int
run_once(ioloop_testing_t *t, int wait_ms)
{
    uint64_t before = ran_so_far(t);

    t->script.asked_ns = -1;
    t->script.wait_ns = (int64_t) (wait_ms > 0 ? wait_ms : 0)
                        * IOLOOP_NS_PER_MS;
    ioloop_start(t->loop);
    return (int) (ran_so_far(t) - before);
}

/* Callbacks, timers and handlers run so far (events the stale-event
 * guard dropped are not runs). */
static uint64_t
ran_so_far(const ioloop_testing_t *t)
{
    const struct ioloop_stats *st = ioloop__stats(t->loop);

    return st->callbacks_run + st->timers_run + st->events_dispatched
           - st->stale_events;
}

static const char *
json_type_name(const json_t *v)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "object", [JSON_ARRAY] = "array",
        [JSON_STRING] = "string", [JSON_INTEGER] = "integer",
        [JSON_REAL] = "real",     [JSON_TRUE] = "true",
        [JSON_FALSE] = "false",   [JSON_NULL] = "null",
    };

    return names[json_typeof(v)];
}

/*
 * Whether the labels [labels, end) of a series (label="value" pairs, the
 * renderer escaping quotes inside values) are worker's and instance's
 * alone (value NULL), or end with a third label of value value.
 */
static bool
series_is(const char *labels, const char *end, const char *value)
{
    size_t vlen = value != NULL ? strlen(value) : 0;
    int pairs = 0;

    for (const char *p = labels; p + 1 < end; p++) {
        pairs += p[0] == '=' && p[1] == '"';
    }
    if (value == NULL) {
        return pairs == 2;
    }
    return pairs == 3 && (size_t) (end - labels) > vlen + 2
           && end[-1] == '"' && end[-(long) vlen - 2] == '"'
           && memcmp(end - vlen - 1, value, vlen) == 0;
}

static void
instance_free(ioloop_testing_instance_t *inst)
{
    ioloop_testing_t *t = inst->t;

    if (inst->prev != NULL) {
        inst->prev->next = inst->next;
    }
    if (inst->next != NULL) {
        inst->next->prev = inst->prev;
    } else {
        t->last = inst->prev;
    }
    ioloop__config_free(&inst->p.values);
    free(inst);
}
