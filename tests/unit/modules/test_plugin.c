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
 *   {"report_worker": true}  logs "worker I of N" (worker_index and
 *                            worker_count) at info
 *   {"everything": "fail" | "keep"}
 *                            registers one of everything the API hands
 *                            out (handler, timer, periodic, an open and a
 *                            closed stream, listener, signal subscription,
 *                            callbacks from this thread, another thread
 *                            and "a signal handler", a connect_tcp to an
 *                            address and one to a name), then fails init, or
 *                            succeeds and has a fini that releases
 *                            nothing: the host must free it all, and none
 *                            of it may ever run
 *   {"tls_cert": PATH, "tls_key": PATH}
 *                            makes a server TLS context from them (tls_new)
 *                            and a client one trusting tls_cert
 *                            (tls_client_new), then fails init without
 *                            freeing either
 *   {"listen": "H:P", "on_accept": "crash" | "sleep", "sleep_ms": N}
 *                            listens; each accepted connection crashes
 *                            the process (SIGSEGV) or blocks the loop
 *                            for sleep_ms, then is closed
 * "listen" is a plain string, so that a bad address reaches listen_tcp.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ioloop/plugin.h>

struct test_config {
    const char *fail;
    bool register_then_fail;
    bool pipe;
    const char *listen;
    int on_accept; /* index in on_accept_choices */
    int64_t sleep_ms;
    bool report_worker;
    int everything; /* index in everything_choices */
    const char *tls_cert;
    const char *tls_key;
};

static const char *const on_accept_choices[] = {"close", "crash", "sleep",
                                                NULL};
static const char *const everything_choices[] = {"none", "fail", "keep",
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
        IOLOOP_CONFIG_BOOL(struct test_config, report_worker, "false", 0,
                           "Log the worker index and count."),
        IOLOOP_CONFIG_ENUM(struct test_config, everything,
                           everything_choices, "none", 0,
                           "Register one of everything, then fail init "
                           "or keep it all past fini."),
        IOLOOP_CONFIG_PATH(struct test_config, tls_cert, NULL, 0,
                           "Make a TLS context, then fail init."),
        IOLOOP_CONFIG_PATH(struct test_config, tls_key, NULL, 0,
                           "The key of tls_cert."),
        IOLOOP_CONFIG_END,
};

struct instance {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int fds[2];
    int listen_fd;
    int crash;    /* on_accept: "crash" */
    int sleep_ms; /* on_accept: "sleep" */
    int leave;    /* "everything": fini releases nothing */
};

/* A connection arrived: misbehave as configured, then close it. */
static int
on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct instance *in = arg;
    int c = in->api->accept(in->inst, fd);

    (void) loop;
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

/* What "everything" registers must never run: the host released it. */
static int
must_not_run(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    abort();
}

static int
must_not_run_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) fd;
    (void) events;
    return must_not_run(loop, arg);
}

static void
must_not_run_connect(ioloop_loop_t *loop, ioloop_stream_t *s, int status,
                     void *arg)
{
    (void) s;
    (void) status;
    must_not_run(loop, arg);
}

static int
must_not_run_signal(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) signo;
    return must_not_run(loop, arg);
}

static void
must_not_run_stream(ioloop_stream_t *s, void *arg)
{
    (void) s;
    (void) arg;
    abort();
}

static void
must_not_run_read(ioloop_stream_t *s, const char *data, size_t len,
                  void *arg)
{
    (void) data;
    (void) len;
    must_not_run_stream(s, arg);
}

struct poster {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int rc;
};

static void *
post_from_thread(void *arg)
{
    struct poster *p = arg;

    p->rc = p->api->add_callback(p->inst, must_not_run, NULL);
    return NULL;
}

/* Registers one of everything; 0 or -EIO with err set. The fds the host
 * does not own (the pipe, the streams' peers) are closed here. */
static int
register_everything(struct instance *in, char *err, size_t errlen)
{
    const struct ioloop_api *api = in->api;
    struct ioloop_stream_options opts = {.size = sizeof(opts),
                                         .close_cb = must_not_run_stream};
    struct poster poster = {api, in->inst, -1};
    ioloop_stream_t *open_s, *closed_s;
    int a[2], b[2], lfd;
    pthread_t t;

    if (pipe2(in->fds, O_CLOEXEC) < 0
        || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0
        || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) < 0) {
        snprintf(err, errlen, "no fds");
        return -EIO;
    }
    open_s = api->stream_new(in->inst, a[0], &opts);
    closed_s = api->stream_new(in->inst, b[0], &opts);
    lfd = api->listen_tcp(in->inst, "127.0.0.1:0", 0, 0, err, errlen);
    close(a[1]);
    close(b[1]);
    if (open_s == NULL || closed_s == NULL || lfd < 0
        || api->stream_read_some(open_s, 16, must_not_run_read) < 0
        || api->add_handler(in->inst, in->fds[0], IOLOOP_READ,
                            must_not_run_io, in) < 0
        || api->add_handler(in->inst, lfd, IOLOOP_READ, must_not_run_io, in)
               < 0
        || api->call_later(in->inst, IOLOOP_NS_PER_S, must_not_run, in) == 0
        || api->periodic_start(in->inst, IOLOOP_NS_PER_S, 0.0, must_not_run,
                               in) == NULL
        || api->signal_subscribe(in->inst, SIGUSR1, must_not_run_signal, in)
               <= 0
        || api->add_callback(in->inst, must_not_run, in) < 0
        || api->add_callback_from_signal(in->inst, must_not_run, in) < 0
        /* One starts from a timer, the other waits for the resolver. */
        || api->connect_tcp(in->inst, "127.0.0.1:9", 0, NULL,
                            must_not_run_connect, in) == NULL
        || api->connect_tcp(in->inst, "localhost:9", 0, NULL,
                            must_not_run_connect, in) == NULL
        || pthread_create(&t, NULL, post_from_thread, &poster) != 0) {
        snprintf(err, errlen, "cannot register everything");
        return -EIO;
    }
    pthread_join(t, NULL);
    /* Closed: it waits for its close callback in a later iteration. */
    api->stream_close(closed_s);
    return poster.rc;
}

/* unused: the NO_INIT variant leaves it out of its descriptor. */
__attribute__((unused)) static int
test_init(const struct ioloop_api *api, ioloop_instance_t *inst,
          const void *config, void **state, char *err, size_t errlen)
{
    const struct test_config *cfg = config;
    const char *why = cfg->fail;
    struct instance *in;

    if (why != NULL) {
        snprintf(err, errlen, "%s", why);
        return -EINVAL;
    }
    if (cfg->tls_cert != NULL) {
        struct ioloop_tls_options o = {
            .size = sizeof(o), .cert = cfg->tls_cert, .key = cfg->tls_key};

        struct ioloop_tls_options c = {
            .size = sizeof(c), .ca = cfg->tls_cert};

        /* A sloppy plugin: leaves the contexts to the host. */
        if (api->tls_new(inst, &o, err, errlen) == NULL
            || api->tls_client_new(inst, &c, err, errlen) == NULL) {
            return -errno;
        }
        snprintf(err, errlen, "failed after making TLS contexts");
        return -EIO;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        return -ENOMEM;
    }
    in->api = api;
    in->inst = inst;
    in->fds[0] = in->fds[1] = -1;
    in->listen_fd = -1;
    if (cfg->report_worker) {
        api->log(inst, IOLOOP_LOG_INFO, "worker %u of %u",
                 api->worker_index(inst), api->worker_count(inst));
    }
    if (cfg->everything != 0) {
        int rc = register_everything(in, err, errlen);

        if (rc < 0 || cfg->everything == 1) {
            /* A sloppy plugin: closes its pipe, leaves the rest. */
            close(in->fds[0]);
            close(in->fds[1]);
            free(in);
            if (rc == 0) {
                snprintf(err, errlen, "failed after registering everything");
            }
            return -EIO;
        }
        in->leave = 1;
        *state = in;
        return 0;
    }
    if (cfg->pipe || cfg->register_then_fail) {
        if (pipe2(in->fds, O_CLOEXEC) < 0
            || api->add_handler(inst, in->fds[0], IOLOOP_READ, on_read, in)
                   < 0) {
            snprintf(err, errlen, "cannot watch a pipe");
            return -EIO;
        }
    }
    if (cfg->listen != NULL) {
        in->crash = cfg->on_accept == 1;
        in->sleep_ms = cfg->on_accept == 2 ? (int) cfg->sleep_ms : 0;
        in->listen_fd = api->listen_tcp(inst, cfg->listen, 0, 0, err,
                                        errlen);
        if (in->listen_fd < 0
            || api->add_handler(inst, in->listen_fd, IOLOOP_READ, on_accept,
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

    in->api->log(in->inst, IOLOOP_LOG_INFO, "fini");
    if (in->leave) {
        close(in->fds[0]);
        close(in->fds[1]);
        free(in);
        return;
    }
    if (in->listen_fd >= 0) {
        in->api->remove_handler(in->inst, in->listen_fd);
        close(in->listen_fd);
    }
    if (in->fds[0] >= 0) {
        in->api->remove_handler(in->inst, in->fds[0]);
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
    .build = IOLOOP_BUILD_SIGNATURE,
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_NEWER_MINOR_LARGER) || defined(VARIANT_NEWER_MINOR_SETS)
/* A plugin from a future 1.1 SDK whose descriptor grew a member: left
 * unset (zero, acceptable to a 1.0 host) or set (refused). */
IOLOOP_EXPORT const struct {
    struct ioloop_plugin base;
    uint64_t since_1_1;
} ioloop_plugin_v1 = {
    .base = {
        .abi_version = IOLOOP_ABI_VERSION(IOLOOP_PLUGIN_ABI_MAJOR,
                                          IOLOOP_PLUGIN_ABI_MINOR + 1),
        .size = sizeof(struct ioloop_plugin) + sizeof(uint64_t),
        .build = IOLOOP_BUILD_SIGNATURE,
        TEST_PLUGIN_FIELDS,
    },
#if defined(VARIANT_NEWER_MINOR_SETS)
    .since_1_1 = 0x0101010101010101u, /* every byte set, either endian */
#endif
};
#elif defined(VARIANT_ONE_PROCESS)
/* Asks for one process: only worker 0 runs it. */
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .flags = IOLOOP_PLUGIN_ONE_PROCESS,
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_OTHER_BUILD)
/* Built with the sanitizer setting the host does not have. */
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE ^ 1u << 16, /* ASan flipped */
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_NEWER_MINOR_SAME_SIZE)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_ABI_VERSION(IOLOOP_PLUGIN_ABI_MAJOR,
                                      IOLOOP_PLUGIN_ABI_MINOR + 1),
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_OLDER_SMALLER)
/* A plugin built before drain was appended: its table ends at fini. */
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = offsetof(struct ioloop_plugin, drain),
    .build = IOLOOP_BUILD_SIGNATURE,
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_TOO_SMALL)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = 8,
    .build = IOLOOP_BUILD_SIGNATURE,
    TEST_PLUGIN_FIELDS,
};
#elif defined(VARIANT_NO_INIT)
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
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
    .build = IOLOOP_BUILD_SIGNATURE,
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
    .build = IOLOOP_BUILD_SIGNATURE,
    TEST_PLUGIN_FIELDS,
};
#else
IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    TEST_PLUGIN_FIELDS,
};
#endif
