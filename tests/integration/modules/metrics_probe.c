/*
 * tests/integration/modules/metrics_probe.c: a plugin that registers a
 * series of every kind the API has (a 1.0 counter with one label, a
 * counter with several, a gauge, a histogram) and counts into each once at
 * init, with values that depend on its worker: worker W adds W + 1 to the
 * counters, sets the gauge to W + 0.5 and observes 0.003 * (W + 1) s.
 * No config.
 */
#include <stddef.h>

#include <ioloop/plugin.h>

static const double bounds[] = {0.001, 0.005, 0.01, 0.1, 1};

static int
probe_init(const struct ioloop_api *api, ioloop_instance_t *inst,
           const void *config, void **state, char *err, size_t errlen)
{
    unsigned w = api->worker_index(inst);
    int events, requests, depth, latency;

    (void) config;
    (void) err;
    (void) errlen;
    events = api->counter_register(inst, "probe_events_total", "Events.",
                                   "kind", "a");
    requests = api->counter_register_labels(
        inst, "probe_requests_total", "Requests, by method and path.",
        (const char *[]){"method", "GET", "path", "/a\"b\\c\nd", NULL});
    depth = api->gauge_register(inst, "probe_queue_depth", "Queue depth.",
                                (const char *[]){"queue", "in", NULL});
    latency = api->histogram_register(
        inst, "probe_latency_seconds", "Latency, in seconds.",
        (const char *[]){"op", "read", NULL}, bounds,
        sizeof(bounds) / sizeof(bounds[0]));
    /* Failures are ignored (-ENOTSUP in the master's check-mode init,
     * which keeps no metrics): the test looks for every series in
     * /metrics. */
    api->counter_add(inst, events, w + 1);
    api->counter_add(inst, requests, w + 1);
    api->gauge_set(inst, depth, w + 1.0);
    api->gauge_add(inst, depth, -0.5);
    api->histogram_observe(inst, latency, 0.003 * (w + 1));
    *state = NULL;
    return 0;
}

static void
probe_fini(void *state)
{
    (void) state;
}

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "metrics_probe",
    .version = "0.0.1",
    .description = "registers a metric series of every kind (tests)",
    .init = probe_init,
    .fini = probe_fini,
};
