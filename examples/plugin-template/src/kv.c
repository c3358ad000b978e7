/*
 * kv.c: a line-based key/value store over TCP, as an ioloop-host plugin.
 * This is the plugin template: copy the folder, rename, and keep the shape.
 *
 * Config (the manifest entry's "config" object):
 *   "listen"        "HOST:PORT" or "[IPV6]:PORT" (required; port 0 picks
 *                   a free one, which the host logs)
 *   "max_keys"      most keys the instance holds (default 10000)
 *   "idle_timeout"  seconds without traffic before a connection is closed
 *                   (default 0: never)
 *
 * Each instance (a manifest entry) has its own listener and store. Every
 * connection is a host stream: read a line, run it (kv_store.c), write the
 * reply, and read the next line only once the reply reached the kernel, so
 * a client that sends without reading is held back by TCP, not buffered.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ioloop/plugin.h>
#include <jansson.h>

#include "kv_store.h"

/* Connections accepted per readiness event of the listener. */
#define KV_ACCEPT_BATCH 16
/* Longest command line, "\n" included; longer closes the connection. */
#define KV_MAX_LINE (64 * 1024)
#define KV_DEFAULT_MAX_KEYS 10000
#define KV_MAX_MAX_KEYS 100000000
#define KV_MAX_IDLE_TIMEOUT 86400.0

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
};

/* One connection; freed by its stream's close callback, or by fini. */
struct kv_conn {
    struct kv_conn *prev;
    struct kv_conn *next;
    struct kv *kv;
    ioloop_stream_t *s;
};

struct kv_config {
    const char *listen; /* borrowed from the config object */
    size_t max_keys;
    ioloop_time_t idle_timeout;
};

static int kv_init(const struct ioloop_api *api, ioloop_instance_t *inst,
                   const struct json_t *config, void **state, char *err,
                   size_t errlen);
static void kv_fini(void *state);
static void kv_drain(void *state);
static int kv_parse_config(const struct json_t *config, struct kv_config *c,
                           char *err, size_t errlen);
static int kv_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                        void *arg);
static int kv_conn_open(struct kv *kv, int fd);
static void kv_conn_on_line(ioloop_stream_t *s, const char *data,
                            size_t len, void *arg);
static void kv_conn_replied(ioloop_stream_t *s, void *arg);
static void kv_conn_closed(ioloop_stream_t *s, void *arg);

static const char *const kv_config_keys[] = {"listen", "max_keys",
                                             "idle_timeout", NULL};

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "kv",
    .version = "1.0.0",
    .description = "line-based key/value store over TCP (SET/GET/DEL/COUNT)",
    .config_keys = kv_config_keys,
    .init = kv_init,
    .fini = kv_fini,
    .drain = kv_drain,
};

/*
 * Starts one instance: validates config, creates the store, listens and
 * watches the listener. Returns 0 with *state set, or -errno with one line
 * in err and nothing left behind.
 */
static int
kv_init(const struct ioloop_api *api, ioloop_instance_t *inst,
        const struct json_t *config, void **state, char *err, size_t errlen)
{
    struct kv_config c;
    struct kv *kv;
    int rc;

    rc = kv_parse_config(config, &c, err, errlen);
    if (rc < 0) {
        return rc;
    }
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL || (kv->store = kv_store_new(c.max_keys)) == NULL) {
        free(kv);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    kv->api = api;
    kv->inst = inst;
    kv->idle_timeout = c.idle_timeout;
    kv->listen_fd = api->listen_tcp(inst, c.listen, 0, 0, err, errlen);
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
 * Validates config into *c (defaults filled in). Returns 0, or -EINVAL
 * with one line in err that names the key and the reason.
 */
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

static int
kv_parse_config(const struct json_t *config, struct kv_config *c, char *err,
                size_t errlen)
{
    /* jansson's getters take a non-const object; nothing is modified. */
    json_t *cfg = (json_t *) config, *v;
    const char *const *known;
    const char *key;

    if (!json_is_object(cfg)) {
        snprintf(err, errlen, "config: %s",
                 cfg == NULL ? "missing (\"listen\" is required)"
                             : "expected an object");
        return -EINVAL;
    }
    json_object_foreach(cfg, key, v) {
        for (known = kv_config_keys; *known != NULL; known++) {
            if (strcmp(key, *known) == 0) {
                break;
            }
        }
        if (*known == NULL) {
            snprintf(err, errlen,
                     "config.%s: unknown key (expected listen, max_keys, "
                     "idle_timeout)",
                     key);
            return -EINVAL;
        }
    }

    v = json_object_get(cfg, "listen");
    if (!json_is_string(v)) {
        snprintf(err, errlen, "config.listen: %s a string \"HOST:PORT\"",
                 v == NULL ? "missing, expected" : "expected");
        return -EINVAL;
    }
    c->listen = json_string_value(v);

    c->max_keys = KV_DEFAULT_MAX_KEYS;
    v = json_object_get(cfg, "max_keys");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1
            || json_integer_value(v) > KV_MAX_MAX_KEYS) {
            snprintf(err, errlen,
                     "config.max_keys: expected an integer in [1, %d]",
                     KV_MAX_MAX_KEYS);
            return -EINVAL;
        }
        c->max_keys = (size_t) json_integer_value(v);
    }

    c->idle_timeout = 0;
    v = json_object_get(cfg, "idle_timeout");
    if (v != NULL) {
        double secs = json_number_value(v);

        if (!json_is_number(v) || !isfinite(secs) || secs < 0
            || secs > KV_MAX_IDLE_TIMEOUT) {
            snprintf(err, errlen,
                     "config.idle_timeout: expected seconds in [0, %.0f]",
                     KV_MAX_IDLE_TIMEOUT);
            return -EINVAL;
        }
        c->idle_timeout = (ioloop_time_t) (secs * (double) IOLOOP_NS_PER_S);
    }
    return 0;
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
        .max_buffer_size = KV_MAX_LINE,
        .idle_timeout = kv->idle_timeout,
        .close_cb = kv_conn_closed,
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
 * A line arrived ("\n" included): runs it and writes the reply in one
 * write (several small writes would meet Nagle's algorithm and the peer's
 * delayed ACK: 40 ms per reply).
 */
static void
kv_conn_on_line(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct kv_conn *c = arg;
    const struct ioloop_api *api = c->kv->api;
    struct kv_reply reply;
    char small[256], *out = small;
    size_t hlen, n;
    int rc;

    kv_execute(c->kv->store, data, len - 1, &reply);
    hlen = strlen(reply.head);
    n = hlen + reply.body_len + 1;
    if (n > sizeof(small) && (out = malloc(n)) == NULL) {
        api->stream_close(s);
        return;
    }
    memcpy(out, reply.head, hlen);
    if (reply.body_len > 0) {
        memcpy(out + hlen, reply.body, reply.body_len);
    }
    out[n - 1] = '\n';
    rc = api->stream_write(s, out, n, kv_conn_replied);
    if (out != small) {
        free(out);
    }
    if (rc < 0) {
        api->stream_close(s); /* a no-op if the write closed it already */
    }
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
