/*
 * tests/integration/modules/sleeper.c: a plugin that blocks its loop on
 * purpose, for the watchdog tests. Config:
 *   {"listen": "H:P", "sleep_ms": N}  each accepted connection gets one
 *       nanosleep(N ms) in the accept handler, never retried, then the
 *       line "slept <ms> rc <rc> errno <errno>\n" (measured here, around
 *       the call) and a close
 *   {"fail": "why"}                   init fails with that message
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ioloop/plugin.h>

struct sleeper_config {
    const char *listen;
    int64_t sleep_ms;
    const char *fail;
};

static const struct ioloop_config_field sleeper_schema[] = {
    IOLOOP_CONFIG_STRING(struct sleeper_config, listen, NULL, 0,
                         "Listen there."),
    IOLOOP_CONFIG_INT(struct sleeper_config, sleep_ms, 0, 3600000, "0", 0,
                      "How long each accept blocks the loop."),
    IOLOOP_CONFIG_STRING(struct sleeper_config, fail, NULL, 0,
                         "Fail init with this message."),
    IOLOOP_CONFIG_END,
};

struct sleeper {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int listen_fd;
    int sleep_ms;
};

static long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int
on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct sleeper *in = arg;
    struct timespec ts = {in->sleep_ms / 1000,
                          (long) (in->sleep_ms % 1000) * 1000000L};
    int c = in->api->accept(in->inst, fd), rc, e;
    char line[96];
    long t0, took;
    ssize_t n;

    (void) loop;
    (void) events;
    if (c < 0) {
        return 0;
    }
    t0 = now_ms();
    rc = nanosleep(&ts, NULL);
    e = rc < 0 ? errno : 0;
    took = now_ms() - t0;
    in->api->log(in->inst, IOLOOP_LOG_INFO,
                 "slept %ld ms: nanosleep returned %d (%s)", took, rc,
                 e != 0 ? strerror(e) : "ok");
    snprintf(line, sizeof(line), "slept %ld rc %d errno %d\n", took, rc, e);
    n = write(c, line, strlen(line));
    (void) n;
    close(c);
    return 0;
}

static int
sleeper_init(const struct ioloop_api *api, ioloop_instance_t *inst,
             const void *config, void **state, char *err, size_t errlen)
{
    const struct sleeper_config *cfg = config;
    struct sleeper *in;

    if (cfg->fail != NULL) {
        snprintf(err, errlen, "%s", cfg->fail);
        return -EINVAL;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        return -ENOMEM;
    }
    in->api = api;
    in->inst = inst;
    in->sleep_ms = (int) cfg->sleep_ms;
    in->listen_fd = api->listen_tcp(inst, cfg->listen, 0, 0, err, errlen);
    if (in->listen_fd < 0
        || api->add_handler(inst, in->listen_fd, IOLOOP_READ, on_accept, in)
               < 0) {
        if (in->listen_fd >= 0) {
            close(in->listen_fd);
        }
        free(in);
        return -EIO;
    }
    *state = in;
    return 0;
}

static void
sleeper_fini(void *state)
{
    struct sleeper *in = state;

    in->api->remove_handler(in->inst, in->listen_fd);
    close(in->listen_fd);
    free(in);
}

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "sleeper",
    .version = "0.0.1",
    .description = "blocks its loop on purpose (watchdog tests)",
    .config_schema = sleeper_schema,
    .config_size = sizeof(struct sleeper_config),
    .init = sleeper_init,
    .fini = sleeper_fini,
};
