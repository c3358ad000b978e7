/*
 * plugins/echo.c: TCP echo plugin. Every byte a client sends is written
 * back. Config: "listen" (required, "HOST:PORT"), "backlog" (optional
 * integer).
 *
 * A read lands in the instance's scratch buffer and is written back at
 * once. Only when the socket does not take it all is the rest copied to a
 * per-connection buffer; the connection then stops reading (backpressure:
 * it watches IOLOOP_WRITE only) until that buffer drained. An idle
 * connection is one small struct.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ioloop/plugin.h>
#include <jansson.h>

/* One read() lands here. */
#define ECHO_IN_SIZE (64 * 1024)
/* Connections accepted per readiness event. */
#define ECHO_ACCEPT_BATCH 64

struct echo_conn;

/* One plugin instance: a listener and its connections. */
struct echo {
    const struct ioloop_api *api;
    ioloop_loop_t *loop;
    int listen_fd;
    struct echo_conn *conns;     /* doubly linked, for fini */
    char in[ECHO_IN_SIZE];
};

struct echo_conn {
    struct echo_conn *prev;
    struct echo_conn *next;
    struct echo *e;
    char *out;      /* bytes not yet written back, NULL: none */
    size_t out_off; /* out[out_off..out_len) is pending */
    size_t out_len;
    int fd;
};

static int echo_init(const struct ioloop_api *api, ioloop_loop_t *loop,
                     const struct json_t *config, void **state, char *err,
                     size_t errlen);
static void echo_fini(void *state);
static int echo_config(const struct json_t *config, const char **listen,
                       int *backlog, char *err, size_t errlen);
static int echo_on_accept(ioloop_loop_t *loop, int fd, unsigned events,
                          void *arg);
static int echo_conn_open(struct echo *e, int fd);
static int echo_conn_on_io(ioloop_loop_t *loop, int fd, unsigned events,
                           void *arg);
static int echo_conn_read(struct echo_conn *c);
static int echo_conn_write(struct echo_conn *c);
static int echo_conn_done(struct echo_conn *c, int rc);
static void echo_conn_free(struct echo_conn *c);

static const char *const echo_config_keys[] = { "listen", "backlog", NULL };

IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .name = "echo",
    .version = "1.0.0",
    .description = "TCP echo server",
    .config_keys = echo_config_keys,
    .init = echo_init,
    .fini = echo_fini,
};

/*
 * Starts one instance: validates config, listens and registers the
 * listener. Returns 0 with *state set, or -errno with one line in err and
 * nothing left behind.
 */
static int
echo_init(const struct ioloop_api *api, ioloop_loop_t *loop,
          const struct json_t *config, void **state, char *err,
          size_t errlen)
{
    struct echo *e;
    const char *listen;
    int backlog, rc;

    rc = echo_config(config, &listen, &backlog, err, errlen);
    if (rc < 0) {
        return rc;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    e->api = api;
    e->loop = loop;
    rc = api->listen_tcp(loop, listen, backlog, 0, err, errlen);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->listen_fd = rc;
    rc = api->add_handler(loop, e->listen_fd, IOLOOP_READ, echo_on_accept,
                          e);
    if (rc < 0) {
        snprintf(err, errlen, "add_handler(%d): %s", e->listen_fd,
                 strerror(-rc));
        close(e->listen_fd);
        free(e);
        return rc;
    }
    *state = e;
    return 0;
}

static void
echo_fini(void *state)
{
    struct echo *e = state;

    while (e->conns != NULL) {
        echo_conn_free(e->conns);
    }
    e->api->remove_handler(e->loop, e->listen_fd);
    close(e->listen_fd);
    free(e);
}

/*
 * Validates config: *listen (borrowed) and *backlog (0 when absent).
 * Returns 0, or -EINVAL with one line in err naming the key.
 */
static int
echo_config(const struct json_t *config, const char **listen, int *backlog,
            char *err, size_t errlen)
{
    /* jansson's iterators take a non-const object; nothing is modified. */
    json_t *cfg = (json_t *) config;
    const char *const *known;
    const char *key;
    json_t *v;

    if (cfg != NULL && !json_is_object(cfg)) {
        snprintf(err, errlen, "config: expected an object");
        return -EINVAL;
    }
    json_object_foreach(cfg, key, v) {
        for (known = echo_config_keys; *known != NULL; known++) {
            if (strcmp(key, *known) == 0) {
                break;
            }
        }
        if (*known == NULL) {
            snprintf(err, errlen, "config.%s: unknown key", key);
            return -EINVAL;
        }
    }
    v = json_object_get(cfg, "listen");
    if (!json_is_string(v)) {
        snprintf(err, errlen, "config.listen: %s a string \"HOST:PORT\"",
                 v == NULL ? "missing, expected" : "expected");
        return -EINVAL;
    }
    *listen = json_string_value(v);
    *backlog = 0;
    v = json_object_get(cfg, "backlog");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > INT_MAX) {
            snprintf(err, errlen,
                     "config.backlog: expected an integer in [0, %d]",
                     INT_MAX);
            return -EINVAL;
        }
        *backlog = (int) json_integer_value(v);
    }
    return 0;
}

/*
 * The listener is readable: accepts up to ECHO_ACCEPT_BATCH connections.
 * On EMFILE/ENFILE the host already closed the pending connection and
 * warned, so that is not an error here.
 */
static int
echo_on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct echo *e = arg;
    int i, cfd, rc;

    (void) events;
    for (i = 0; i < ECHO_ACCEPT_BATCH; i++) {
        cfd = e->api->accept(loop, fd);
        if (cfd == -EAGAIN || cfd == -ECONNABORTED || cfd == -EPROTO
            || cfd == -EMFILE || cfd == -ENFILE) {
            return 0;
        }
        if (cfd < 0) {
            return cfd;
        }
        rc = echo_conn_open(e, cfd);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* Takes ownership of fd: a new connection, registered for reading. */
static int
echo_conn_open(struct echo *e, int fd)
{
    struct echo_conn *c;
    int rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->e = e;
    c->fd = fd;
    rc = e->api->add_handler(e->loop, fd, IOLOOP_READ, echo_conn_on_io, c);
    if (rc < 0) {
        close(fd);
        free(c);
        return rc;
    }
    c->next = e->conns;
    if (e->conns != NULL) {
        e->conns->prev = c;
    }
    e->conns = c;
    return 0;
}

/* Reading when nothing is pending, else writing the pending bytes. An
 * error or hang-up surfaces in read() or send(). */
static int
echo_conn_on_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct echo_conn *c = arg;

    (void) loop;
    (void) fd;
    (void) events;
    return c->out != NULL ? echo_conn_write(c) : echo_conn_read(c);
}

/*
 * One read, written straight back; a remainder the socket does not take
 * is kept and the connection switches to IOLOOP_WRITE. EOF closes (no
 * output is pending while reading).
 */
static int
echo_conn_read(struct echo_conn *c)
{
    struct echo *e = c->e;
    ssize_t n, w;
    int rc;

    n = read(c->fd, e->in, sizeof(e->in));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0) {
        return echo_conn_done(c, n < 0 ? -errno : 0);
    }
    w = send(c->fd, e->in, (size_t) n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            return echo_conn_done(c, -errno);
        }
        w = 0;
    }
    if (w == n) {
        return 0;
    }
    c->out_len = (size_t) (n - w);
    c->out_off = 0;
    c->out = malloc(c->out_len);
    if (c->out == NULL) {
        return echo_conn_done(c, -ENOMEM);
    }
    memcpy(c->out, e->in + w, c->out_len);
    rc = e->api->update_handler(e->loop, c->fd, IOLOOP_WRITE);
    return rc < 0 ? echo_conn_done(c, rc) : 0;
}

/* Writable with bytes pending: send them; once drained, read again. */
static int
echo_conn_write(struct echo_conn *c)
{
    struct echo *e = c->e;
    ssize_t w;
    int rc;

    w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
             MSG_NOSIGNAL);
    if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return 0;
        }
        return echo_conn_done(c, -errno);
    }
    c->out_off += (size_t) w;
    if (c->out_off < c->out_len) {
        return 0;
    }
    free(c->out);
    c->out = NULL;
    rc = e->api->update_handler(e->loop, c->fd, IOLOOP_READ);
    return rc < 0 ? echo_conn_done(c, rc) : 0;
}

/* Drops c. Returns rc for the loop to log, except for a peer that went
 * away, which is normal life. */
static int
echo_conn_done(struct echo_conn *c, int rc)
{
    echo_conn_free(c);
    return rc == -EPIPE || rc == -ECONNRESET ? 0 : rc;
}

static void
echo_conn_free(struct echo_conn *c)
{
    struct echo *e = c->e;

    e->api->remove_handler(e->loop, c->fd);
    close(c->fd);
    free(c->out);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        e->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}
