/*
 * tests/unit/modules/test_plugin.c: one small plugin built in several
 * variants (-DVARIANT_*) to exercise the loader's checks and the plugin
 * lifecycle. The default variant is a well-formed plugin whose config
 * (test_schema) drives what init does:
 *   {"fail": "why"}          init fails with that message
 *   {"register_then_fail": true}
 *                            registers a handler on a pipe, closes the
 *                            pipe, then fails without removing the handler
 *   {"pipe": true}           registers a handler on a pipe and succeeds
 *   {"listen": "H:P", "on_accept": "crash" | "sleep", "sleep_ms": N}
 *                            listens; each accepted connection crashes
 *                            the process (SIGSEGV) or blocks the loop
 *                            for sleep_ms, then is closed
 * "listen" is a plain string, so that a bad address reaches listen_tcp.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ioloop/plugin.h>

struct test_config {
    const char *fail;
    bool register_then_fail;
    bool pipe;
    const char *listen;
    int on_accept; /* index in on_accept_choices */
    int64_t sleep_ms;
};

static const char *const on_accept_choices[] = {"close", "crash", "sleep",
                                                NULL};

/* unused: some variants leave it out of their descriptor. */
__attribute__((unused)) static const struct ioloop_config_field
    test_schema[] = {
        IOLOOP_CONFIG_STRING(struct test_config, fail, NULL, 0,
                             "Fail init with this message."),
        IOLOOP_CONFIG_BOOL(struct test_config, register_then_fail, "false",
                           0, "Fail init leaving a handler registered."),
        IOLOOP_CONFIG_BOOL(struct test_config, pipe, "false", 0,
                           "Watch a pipe."),
        IOLOOP_CONFIG_STRING(struct test_config, listen, NULL, 0,
                             "Listen there."),
        IOLOOP_CONFIG_ENUM(struct test_config, on_accept, on_accept_choices,
                           "close", 0, "What to do with a connection."),
        IOLOOP_CONFIG_INT(struct test_config, sleep_ms, 0, 60000, "0", 0,
                          "How long on_accept \"sleep\" blocks."),
        IOLOOP_CONFIG_END,
};

struct instance {
    const struct ioloop_api *api;
    ioloop_loop_t *loop;
    int fds[2];
    int listen_fd;
    int crash;    /* on_accept: "crash" */
    int sleep_ms; /* on_accept: "sleep" */
};

/* A connection arrived: misbehave as configured, then close it. */
static int
on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct instance *in = arg;
    int c = in->api->accept(loop, fd);

    (void) events;
    if (c < 0) {
        return 0;
    }
    if (in->crash) {
        raise(SIGSEGV);
    }
    usleep((useconds_t) in->sleep_ms * 1000);
    close(c);
    return 0;
}

static int
on_read(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) loop;
    (void) fd;
    (void) events;
    (void) arg;
    return 0;
}

/* unused: the NO_INIT variant leaves it out of its descriptor. */
__attribute__((unused)) static int
test_init(const struct ioloop_api *api, ioloop_loop_t *loop,
          const void *config, void **state, char *err, size_t errlen)
{
    const struct test_config *cfg = config;
    const char *why = cfg->fail;
    struct instance *in;

    if (why != NULL) {
        snprintf(err, errlen, "%s", why);
        return -EINVAL;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        return -ENOMEM;
    }
    in->api = api;
    in->loop = loop;
    in->fds[0] = in->fds[1] = -1;
    in->listen_fd = -1;
    if (cfg->pipe || cfg->register_then_fail) {
        if (pipe2(in->fds, O_CLOEXEC) < 0
            || api->add_handler(loop, in->fds[0], IOLOOP_READ, on_read, in)
                   < 0) {
            snprintf(err, errlen, "cannot watch a pipe");
            return -EIO;
        }
    }
    if (cfg->listen != NULL) {
        in->crash = cfg->on_accept == 1;
        in->sleep_ms = cfg->on_accept == 2 ? (int) cfg->sleep_ms : 0;
        in->listen_fd = api->listen_tcp(loop, cfg->listen, 0, 0, err,
                                        errlen);
        if (in->listen_fd < 0
            || api->add_handler(loop, in->listen_fd, IOLOOP_READ, on_accept,
                                in) < 0) {
            free(in);
            return -EIO;
        }
    }
    if (cfg->register_then_fail) {
        /* A sloppy plugin: frees its fds but leaves the handler. */
        close(in->fds[0]);
        close(in->fds[1]);
        free(in);
        snprintf(err, errlen, "failed after registering a handler");
        return -EIO;
    }
    *state = in;
    return 0;
}

static void
test_fini(void *state)
{
    struct instance *in = state;

    in->api->log(in->loop, IOLOOP_LOG_INFO, "fini");
    if (in->listen_fd >= 0) {
        in->api->remove_handler(in->loop, in->listen_fd);
        close(in->listen_fd);
    }
    if (in->fds[0] >= 0) {
        in->api->remove_handler(in->loop, in->fds[0]);
        close(in->fds[0]);
        close(in->fds[1]);
    }
    free(in);
}

#define TEST_PLUGIN_FIELDS                                                 \
    .name = "test_plugin", .version = "0.0.1",                             \
    .description = "loader test plugin", .config_schema = test_schema,     \
    .config_size = sizeof(struct test_config), .init = test_init,          \
    .fini = test_fini

#if defined(VARIANT_MAJOR2)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_ABI_VERSION(2, 0),
    .size = sizeof(struct ioloop_plugin),
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_NEWER_MINOR_LARGER)
/* A plugin from a future 1.1 SDK whose descriptor grew a member. */
IOLOOP_EXPORT const struct {
    struct ioloop_plugin base;
    void (*since_1_1)(void *state);
} ioloop_plugin_v1 = {
    .base = {
        .abi_version = IOLOOP_ABI_VERSION(IOLOOP_PLUGIN_ABI_MAJOR,
                                          IOLOOP_PLUGIN_ABI_MINOR + 1),
        .size = sizeof(struct ioloop_plugin) + sizeof(void (*)(void *)),
        TEST_PLUGIN_FIELDS,
    },
};
#elif defined(VARIANT_NEWER_MINOR_SAME_SIZE)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_ABI_VERSION(IOLOOP_PLUGIN_ABI_MAJOR,
                                      IOLOOP_PLUGIN_ABI_MINOR + 1),
    .size = sizeof(struct ioloop_plugin),
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_OLDER_SMALLER)
/* A plugin built before drain was appended: its table ends at fini. */
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = offsetof(struct ioloop_plugin, drain),
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_TOO_SMALL)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = 8,
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_NO_INIT)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .name = "test_plugin",
    .fini = test_fini,
};
#elif defined(VARIANT_BAD_SCHEMA)
/* A schema whose default is outside its own range. */
static const struct ioloop_config_field bad_schema[] = {
    IOLOOP_CONFIG_INT(struct test_config, sleep_ms, 0, 10, "11", 0, "x"),
    IOLOOP_CONFIG_END,
};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .name = "test_plugin",
    .config_schema = bad_schema,
    .config_size = sizeof(struct test_config),
    .init = test_init,
    .fini = test_fini,
};
#elif defined(VARIANT_NO_SYMBOL)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v0 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    TEST_PLUGIN_FIELDS,
};
#else
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    TEST_PLUGIN_FIELDS,
};
#endif
