/*
 * kv.c: a line-based key/value store over TCP, as an ioloop-host plugin.
 * This is the plugin template: copy the folder, rename, and keep the shape.
 *
 * Config: kv_schema below declares every key (type, range, default,
 * doc); the host validates the manifest entry's "config" against it and
 * hands init a filled struct kv_config (kv_config.h).
 *
 * Each instance (a manifest entry) has its own listener and store. Every
 * connection is a host stream: read a line, run it (kv_store.c), write the
 * reply, and read the next line only once the reply reached the kernel, so
 * a client that sends without reading is held back by TCP, not buffered.
 *
 * Metrics (status's /metrics): kv_commands_total{command,outcome}, the
 * kv_keys gauge and the kv_line_bytes histogram, registered at init and
 * counted per command through their handles.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ioloop/plugin.h>

#include "kv_config.h"
#include "kv_store.h"

/* Connections accepted per readiness event of the listener. */
#define KV_ACCEPT_BATCH 16
/* Longest command line, "\n" included; longer is answered with an error
 * and closes the connection. */
#define KV_MAX_LINE (64 * 1024)
#define KV_MAX_MAX_KEYS 100000000
/* The commands counted by name; anything else counts as "other". */
#define KV_NCOMMANDS 5

static const char *const kv_commands[KV_NCOMMANDS] = {"SET", "GET", "DEL",
                                                      "COUNT", "other"};
/* kv_line_bytes's buckets. */
static const double kv_line_bounds[] = {8, 32, 128, 512, 2048, 8192, 65536};

struct kv_conn;

/* One instance. */
struct kv {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int listen_fd;
    ioloop_time_t idle_timeout;
    struct kv_store *store;
    int draining;          /* graceful stop: close after each reply */
    struct kv_conn *conns; /* doubly linked, for fini */
    /* Metric handles (< 0: not registered, then every call ignores it):
     * commands[command][0: ok, 1: error]. */
    int commands[KV_NCOMMANDS][2];
    int keys;
    int line_bytes;
};

/* One connection; freed by its stream's close callback, or by fini. */
struct kv_conn {
    struct kv_conn *prev;
    struct kv_conn *next;
    struct kv *kv;
    ioloop_stream_t *s;
};

static int kv_init(const struct ioloop_api *api, ioloop_instance_t *inst,
                   const void *config, void **state, char *err,
                   size_t errlen);
static void kv_fini(void *state);
static void kv_drain(void *state);
static int kv_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                        void *arg);
static int kv_conn_open(struct kv *kv, int fd);
static void kv_conn_on_line(ioloop_stream_t *s, const char *data,
                            size_t len, void *arg);
static void kv_conn_replied(ioloop_stream_t *s, void *arg);
static void kv_conn_overflow(ioloop_stream_t *s, void *arg);
static void kv_conn_closed(ioloop_stream_t *s, void *arg);
static void kv_metrics_register(struct kv *kv);
static void kv_metrics_count(struct kv *kv, const char *line, size_t len,
                             const struct kv_reply *reply);

/* The config: one line per key; the member's name is the key. */
static const struct ioloop_config_field kv_schema[] = {
    IOLOOP_CONFIG_LISTEN(struct kv_config, listen, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "HOST:PORT or [IPV6]:PORT; port 0 picks a free "
                         "one, which the host logs."),
    IOLOOP_CONFIG_INT(struct kv_config, max_keys, 1, KV_MAX_MAX_KEYS,
                      "10000", 0,
                      "Most keys the instance holds; a SET of a new key "
                      "beyond it replies ERR store full."),
    IOLOOP_CONFIG_DURATION(struct kv_config, idle_timeout, 0,
                           86400 * IOLOOP_NS_PER_S, "0s", 0,
                           "Close a connection without traffic this long "
                           "(0: never)."),
    IOLOOP_CONFIG_END,
};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "kv",
    .version = "1.0.0",
    .description = "line-based key/value store over TCP (SET/GET/DEL/COUNT)",
    .config_schema = kv_schema,
    .config_size = sizeof(struct kv_config),
    .init = kv_init,
    .fini = kv_fini,
    .drain = kv_drain,
};

/*
 * Starts one instance: creates the store, listens and watches the
 * listener (the host validated config). Returns 0 with *state set, or
 * -errno with one line in err and nothing left behind.
 */
static int
kv_init(const struct ioloop_api *api, ioloop_instance_t *inst,
        const void *config, void **state, char *err, size_t errlen)
{
    const struct kv_config *c = config;
    struct kv *kv;
    int rc;

    kv = calloc(1, sizeof(*kv));
    if (kv == NULL
        || (kv->store = kv_store_new((size_t) c->max_keys)) == NULL) {
        free(kv);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    kv->api = api;
    kv->inst = inst;
    kv->idle_timeout = c->idle_timeout;
    kv_metrics_register(kv);
    kv->listen_fd = api->listen_tcp(inst, c->listen, 0, 0, err, errlen);
    if (kv->listen_fd < 0) {
        rc = kv->listen_fd;
        goto fail;
    }
    rc = api->add_handler(inst, kv->listen_fd, IOLOOP_READ, kv_on_accept, kv);
    if (rc < 0) {
        snprintf(err, errlen, "add_handler(%d): %s", kv->listen_fd,
                 strerror(-rc));
        close(kv->listen_fd);
        goto fail;
    }
    *state = kv;
    return 0;

fail:
    kv_store_free(kv->store);
    free(kv);
    return rc;
}

/*
 * Stops the instance. The close callbacks of the streams closed here never
 * run (the host frees such streams itself once the plugin has stopped), so
 * the connections are freed here.
 */
static void
kv_fini(void *state)
{
    struct kv *kv = state;
    struct kv_conn *c, *next;

    for (c = kv->conns; c != NULL; c = next) {
        next = c->next;
        kv->api->stream_close(c->s);
        free(c);
    }
    kv->api->remove_handler(kv->inst, kv->listen_fd);
    close(kv->listen_fd);
    kv_store_free(kv->store);
    free(kv);
}

/*
 * Graceful stop (SIGTERM, or a reload): no new connections; a connection
 * waiting for its next command closes now, one being answered after its
 * reply. The host calls fini once none is left (or at shutdown_timeout).
 */
static void
kv_drain(void *state)
{
    struct kv *kv = state;

    kv->draining = 1;
    kv->api->remove_handler(kv->inst, kv->listen_fd);
    for (struct kv_conn *c = kv->conns; c != NULL; c = c->next) {
        if (kv->api->stream_pending(c->s) == 0) {
            kv->api->stream_close(c->s); /* kv_conn_closed frees c later */
        }
    }
}

/*
 * The listener is readable: accepts a batch of connections. Out of fds
 * (EMFILE), the host already dropped the pending connection and warned.
 * Returns 0, or the first -errno to let the host log it.
 */
static int
kv_on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct kv *kv = arg;
    int fds[KV_ACCEPT_BATCH];
    int n, rc, first = 0;

    (void) loop;
    (void) events;
    n = kv->api->accept_batch(kv->inst, fd, fds, KV_ACCEPT_BATCH);
    if (n == -EAGAIN || n == -ECONNABORTED || n == -EMFILE
        || n == -ENFILE) {
        return 0;
    }
    if (n < 0) {
        return n;
    }
    for (int i = 0; i < n; i++) {
        rc = kv_conn_open(kv, fds[i]);
        if (rc < 0 && first == 0) {
            first = rc;
        }
    }
    return first;
}

/* Takes fd over: wraps it in a stream and starts reading the first line.
 * Returns 0, or -errno with fd closed. */
static int
kv_conn_open(struct kv *kv, int fd)
{
    struct ioloop_stream_options opts = {
        .size = sizeof(opts),
        .max_read_buffer = KV_MAX_LINE,
        .idle_timeout = kv->idle_timeout,
        .close_cb = kv_conn_closed,
        .overflow_cb = kv_conn_overflow,
    };
    struct kv_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    opts.arg = c;
    c->kv = kv;
    c->s = kv->api->stream_new(kv->inst, fd, &opts);
    if (c->s == NULL) {
        rc = -errno;
        kv->api->log(kv->inst, IOLOOP_LOG_WARN, "stream_new(%d): %s", fd,
                     strerror(errno));
        close(fd); /* on failure the fd is still ours */
        free(c);
        return rc;
    }
    c->next = kv->conns;
    if (kv->conns != NULL) {
        kv->conns->prev = c;
    }
    kv->conns = c;
    rc = kv->api->stream_read_until(c->s, "\n", 1, kv_conn_on_line);
    if (rc < 0) {
        kv->api->stream_close(c->s); /* kv_conn_closed frees c */
    }
    return rc;
}

/*
 * A line arrived ("\n" included): runs it and writes the reply's parts in
 * one gathered write, without assembling them (several small writes would
 * meet Nagle's algorithm and the peer's delayed ACK: 40 ms per reply).
 */
static void
kv_conn_on_line(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct kv_conn *c = arg;
    const struct ioloop_api *api = c->kv->api;
    struct kv_reply reply;
    struct iovec iov[3];
    int rc;

    kv_execute(c->kv->store, data, len - 1, &reply);
    kv_metrics_count(c->kv, data, len, &reply);
    iov[0] = (struct iovec){(void *) reply.head, strlen(reply.head)};
    iov[1] = (struct iovec){(void *) reply.body, reply.body_len};
    iov[2] = (struct iovec){"\n", 1};
    rc = api->stream_writev(s, iov, 3, kv_conn_replied);
    if (rc < 0) {
        api->stream_close(s); /* a no-op if the write closed it already */
    }
}

/* A line longer than KV_MAX_LINE: the host flushes this reply, then
 * closes the stream with ENOBUFS. */
static void
kv_conn_overflow(ioloop_stream_t *s, void *arg)
{
    static const char msg[] = "ERR line too long\n";
    struct kv_conn *c = arg;

    c->kv->api->stream_write(s, msg, sizeof(msg) - 1, NULL);
}

/* The reply reached the kernel: reads the next line. */
static void
kv_conn_replied(ioloop_stream_t *s, void *arg)
{
    struct kv_conn *c = arg;

    if (c->kv->draining
        || c->kv->api->stream_read_until(s, "\n", 1, kv_conn_on_line) < 0) {
        c->kv->api->stream_close(s);
    }
}

/* The stream closed (peer, error, idle timeout, our own stream_close
 * outside fini) and is about to be freed: says why when it matters, and
 * frees the connection. */
static void
kv_conn_closed(ioloop_stream_t *s, void *arg)
{
    struct kv_conn *c = arg;
    struct kv *kv = c->kv;
    int error = kv->api->stream_error(s);

    if (error == ETIMEDOUT) {
        kv->api->log(kv->inst, IOLOOP_LOG_DEBUG, "idle connection closed");
    } else if (error == ENOBUFS) {
        kv->api->log(kv->inst, IOLOOP_LOG_WARN,
                     "connection closed: a line longer than %d bytes",
                     KV_MAX_LINE);
    } else if (error != 0 && error != ECONNRESET && error != EPIPE) {
        kv->api->log(kv->inst, IOLOOP_LOG_INFO, "connection closed: %s",
                     strerror(error));
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        kv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}

/*
 * Registers the instance's series (the host labels each with worker and
 * instance). Failures are not fatal: a host without metrics (or without
 * this 1.1 API) leaves the handles at -1, which every call ignores.
 */
static void
kv_metrics_register(struct kv *kv)
{
    static const char *const outcomes[2] = {"ok", "error"};
    const struct ioloop_api *api = kv->api;
    int has = IOLOOP_API_HAS(api, histogram_observe);

    for (int i = 0; i < KV_NCOMMANDS; i++) {
        for (int o = 0; o < 2; o++) {
            kv->commands[i][o] =
                has ? api->counter_register_labels(
                          kv->inst, "kv_commands_total",
                          "Commands run, by command and outcome.",
                          (const char *[]){"command", kv_commands[i],
                                           "outcome", outcomes[o], NULL})
                    : -1;
        }
    }
    kv->keys = has ? api->gauge_register(kv->inst, "kv_keys",
                                         "Keys stored.", NULL)
                   : -1;
    kv->line_bytes =
        has ? api->histogram_register(
                  kv->inst, "kv_line_bytes",
                  "Command lines received, by length in bytes.", NULL,
                  kv_line_bounds,
                  sizeof(kv_line_bounds) / sizeof(kv_line_bounds[0]))
            : -1;
}

/* Counts one command line (len bytes, "\n" included) and its reply: O(1),
 * through the handles. */
static void
kv_metrics_count(struct kv *kv, const char *line, size_t len,
                 const struct kv_reply *reply)
{
    const struct ioloop_api *api = kv->api;
    int i = 0;

    if (!IOLOOP_API_HAS(api, histogram_observe)) {
        return;
    }
    for (; i < KV_NCOMMANDS - 1; i++) {
        size_t n = strlen(kv_commands[i]);

        if (len > n && memcmp(line, kv_commands[i], n) == 0
            && (line[n] == ' ' || line[n] == '\r' || line[n] == '\n')) {
            break;
        }
    }
    api->counter_add(kv->inst,
                     kv->commands[i][strncmp(reply->head, "ERR", 3) == 0],
                     1);
    api->gauge_set(kv->inst, kv->keys, (double) kv_store_count(kv->store));
    api->histogram_observe(kv->inst, kv->line_bytes, (double) len);
}
