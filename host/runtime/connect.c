/*
 * host/runtime/connect.c: non-blocking TCP connect to "HOST:PORT" with a
 * deadline, handing the caller a stream (see connect.h).
 *
 * One attempt: parse; a literal address starts from a zero-delay timer
 * (so the callback never runs inside connect_tcp), a name from the
 * resolver's answer; then socket + connect(2) and a write handler that
 * reads SO_ERROR; with TLS, the client handshake on the same handler;
 * then the fd becomes a stream. The deadline timer covers all of it.
 */
#include "connect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "resolve.h"
#include "stream.h"
#include "tls.h"

/* Longest host part: a DNS name, or an IPv6 literal with a zone. */
#define CONNECT_HOST_MAX 256

struct ioloop_connect_s {
    /* The owner's pending attempts (*owned), doubly linked: O(1) */
    struct ioloop_connect_s *prev_owned;
    struct ioloop_connect_s *next_owned;
    struct ioloop_connect_s **owned;
    ioloop_loop_t *loop;
    const struct ioloop_owner *owner; /* who called connect_tcp */
    ioloop_connect_cb cb;
    void *arg;
    struct ioloop_stream_options opts;
    ioloop_timer_t deadline;
    ioloop_timer_t soon;              /* a literal's start */
    struct ioloop_resolve *resolve;   /* a lookup in flight */
    struct addrinfo *list;            /* the resolver's, owned */
    struct addrinfo *next;            /* the next address to try */
    struct addrinfo literal;          /* a literal's one address */
    struct sockaddr_storage literal_ss;
    int fd;                           /* connecting, or -1 */
    int error;                        /* the last attempt's, -errno */
    struct ioloop_tls_client *hs;     /* TLS: the handshake to run */
    int handshaking;                  /* TLS: connected, hs is running */
    char *addr;                       /* TLS: addr as given, for the log */
};

static int parse_addr(const char *addr, char *host, char *port,
                      struct ioloop_connect_s *c);
static int on_literal(ioloop_loop_t *loop, void *arg);
static void on_resolved(ioloop_loop_t *loop, struct addrinfo *res,
                        int status, void *arg);
static int on_deadline(ioloop_loop_t *loop, void *arg);
static int on_writable(ioloop_loop_t *loop, int fd, unsigned events,
                       void *arg);
static int tls_setup(struct ioloop_connect_s *c, const char *addr,
                     const char *host);
static int on_handshake(ioloop_loop_t *loop, int fd, unsigned events,
                        void *arg);
static void connected(struct ioloop_connect_s *c);
static void try_next(struct ioloop_connect_s *c);
static void close_attempt(struct ioloop_connect_s *c);
static void release(struct ioloop_connect_s *c);
static void finish(struct ioloop_connect_s *c, ioloop_stream_t *s,
                   int status);

ioloop_connect_t *
ioloop__connect_tcp(ioloop_loop_t *loop, ioloop_connect_t **owned,
                    const char *addr, ioloop_time_t timeout,
                    const struct ioloop_stream_options *opts,
                    ioloop_connect_cb cb, void *arg)
{
    char host[CONNECT_HOST_MAX], port[8];
    struct ioloop_connect_s *c;
    int rc;

    if (addr == NULL || cb == NULL || (opts != NULL && opts->size == 0)) {
        errno = EINVAL;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->loop = loop;
    c->owned = owned;
    c->next_owned = *owned;
    if (*owned != NULL) {
        (*owned)->prev_owned = c;
    }
    *owned = c;
    c->owner = ioloop__current_owner(loop);
    c->cb = cb;
    c->arg = arg;
    c->fd = -1;
    c->error = -ECONNREFUSED;
    if (opts != NULL) {
        /* An older, smaller struct leaves the newer members zero. */
        memcpy(&c->opts, opts,
               opts->size < sizeof(c->opts) ? opts->size : sizeof(c->opts));
    }
    c->opts.size = sizeof(c->opts);
    rc = parse_addr(addr, host, port, c);
    if (rc < 0) {
        goto fail;
    }
    if (c->opts.tls != NULL) {
        rc = tls_setup(c, addr, host);
        if (rc < 0) {
            goto fail;
        }
    }
    c->deadline = ioloop_call_later(
        loop, timeout > 0 ? timeout : IOLOOP_CONNECT_DEFAULT_TIMEOUT,
        on_deadline, c);
    if (c->deadline == 0) {
        rc = -ENOMEM;
        goto fail;
    }
    if (c->next != NULL) {
        c->soon = ioloop_call_later(loop, 0, on_literal, c);
        rc = c->soon == 0 ? -ENOMEM : 0;
    } else {
        rc = ioloop__resolve_start(loop, host, port, on_resolved, c,
                                   &c->resolve);
    }
    if (rc < 0) {
        goto fail;
    }
    return c;

fail:
    release(c);
    errno = -rc;
    return NULL;
}

void
ioloop__connect_cancel(ioloop_connect_t *c)
{
    if (c != NULL) {
        release(c);
    }
}

size_t
ioloop__connect_release_owned(ioloop_connect_t **owned)
{
    size_t n = 0;

    while (*owned != NULL) {
        release(*owned); /* unlinks it */
        n++;
    }
    return n;
}

/*
 * "HOST:PORT" or "[V6]:PORT", PORT 1 to 65535, into host and port. A
 * literal address is stored in c (c->next points at it). Returns 0 or
 * -EINVAL.
 */
static int
parse_addr(const char *addr, char *host, char *port,
           struct ioloop_connect_s *c)
{
    struct sockaddr_in *sin = (struct sockaddr_in *) &c->literal_ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &c->literal_ss;
    const char *colon, *h = addr, *p;
    size_t hlen;
    unsigned long v = 0;
    int bracketed = addr[0] == '[';

    if (bracketed) {
        const char *close = strchr(addr, ']');

        if (close == NULL || close[1] != ':') {
            return -EINVAL;
        }
        h = addr + 1;
        hlen = (size_t) (close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t) (colon - addr))) {
            return -EINVAL; /* a bare IPv6 address needs brackets */
        }
        hlen = (size_t) (colon - addr);
    }
    if (hlen == 0 || hlen >= CONNECT_HOST_MAX) {
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    /* At most 5 digits, so that port (8 bytes) holds them. */
    for (p = colon + 1; *p >= '0' && *p <= '9' && p - colon <= 5; p++) {
        v = v * 10 + (unsigned long) (*p - '0');
    }
    if (*p != '\0' || p == colon + 1 || v == 0 || v > 65535) {
        return -EINVAL;
    }
    memcpy(port, colon + 1, (size_t) (p - colon));
    if (!bracketed && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) v);
        c->literal.ai_addrlen = sizeof(*sin);
    } else if (bracketed && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) v);
        c->literal.ai_addrlen = sizeof(*sin6);
    } else if (bracketed) {
        return -EINVAL; /* brackets hold an IPv6 address only */
    } else {
        return 0; /* a name */
    }
    c->literal.ai_family = c->literal_ss.ss_family;
    c->literal.ai_socktype = SOCK_STREAM;
    c->literal.ai_addr = (struct sockaddr *) &c->literal_ss;
    c->next = &c->literal;
    return 0;
}

static int
on_literal(ioloop_loop_t *loop, void *arg)
{
    struct ioloop_connect_s *c = arg;

    (void) loop;
    c->soon = 0;
    try_next(c);
    return 0;
}

/* The resolver's answer, posted from glibc's thread: runs as the host,
 * so the caller's instance is made current for what follows. */
static void
on_resolved(ioloop_loop_t *loop, struct addrinfo *res, int status,
            void *arg)
{
    struct ioloop_connect_s *c = arg;
    const struct ioloop_owner *previous = ioloop__set_owner(loop, c->owner);

    c->resolve = NULL;
    c->list = res;
    c->next = res;
    if (status < 0) {
        finish(c, NULL, status);
    } else {
        try_next(c);
    }
    ioloop__set_owner(loop, previous);
}

static int
on_deadline(ioloop_loop_t *loop, void *arg)
{
    struct ioloop_connect_s *c = arg;

    (void) loop;
    c->deadline = 0;
    finish(c, NULL, -ETIMEDOUT);
    return 0;
}

/* The connecting socket is writable: connected, or failed (SO_ERROR). */
static int
on_writable(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct ioloop_connect_s *c = arg;
    socklen_t len = sizeof(int);
    int error = 0, rc;

    if (c->handshaking) {
        return on_handshake(loop, fd, events, c);
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0) {
        error = errno;
    }
    if (error != 0) {
        c->error = -error;
        close_attempt(c);
        try_next(c);
        return 0;
    }
    if (c->hs == NULL) {
        connected(c);
        return 0;
    }
    rc = ioloop__tls_client_attach(c->hs, fd);
    if (rc < 0) {
        close_attempt(c);
        finish(c, NULL, rc);
        return 0;
    }
    c->handshaking = 1; /* no other address is tried from here */
    return on_handshake(loop, fd, events, c);
}

/*
 * TLS: the handshake to run once connected, made now with the server
 * name (opts' tls_server_name, or addr's host), so that it holds what it
 * needs of the context; and a copy of addr for the log line. The caller's
 * pointers are not kept. Returns 0, -EINVAL (a server context, a name
 * SNI cannot carry) or -ENOMEM.
 */
static int
tls_setup(struct ioloop_connect_s *c, const char *addr, const char *host)
{
    /* c->opts is a zero-padded copy: an older caller's has no name. */
    const char *name = c->opts.tls_server_name != NULL
                           ? c->opts.tls_server_name
                           : host;
    int rc = ioloop__tls_client_new_handshake(c->opts.tls, name, &c->hs);

    c->opts.tls = NULL;
    c->opts.tls_server_name = NULL;
    if (rc < 0) {
        return rc;
    }
    c->addr = strdup(addr);
    return c->addr != NULL ? 0 : -ENOMEM;
}

/* TLS: the next step of the handshake, when the fd is ready for it. */
static int
on_handshake(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct ioloop_connect_s *c = arg;
    char why[256];
    unsigned want = 0;
    int rc;

    (void) events;
    rc = ioloop__tls_client_step(c->hs, &want, why, sizeof(why));
    if (rc == -EAGAIN) {
        rc = ioloop_update_handler(loop, fd, want);
        if (rc == 0) {
            return 0;
        }
        snprintf(why, sizeof(why), "update_handler(%d): %s", fd,
                 strerror(-rc));
    }
    if (rc < 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, ioloop__owner_name(loop), "tls: %s: %s",
                   c->addr, why);
        close_attempt(c);
        finish(c, NULL, rc);
        return 0;
    }
    connected(c);
    return 0;
}

/* The connection is ready (TLS: handshake done): hands it over as a
 * stream made with the caller's options. */
static void
connected(struct ioloop_connect_s *c)
{
    ioloop_stream_t *s;
    int fd = c->fd;

    ioloop_remove_handler(c->loop, fd);
    s = c->hs != NULL ? ioloop__tls_client_stream(c->loop, fd, &c->opts, c->hs)
                      : ioloop_stream_new(c->loop, fd, &c->opts);
    if (s == NULL) {
        int rc = -errno;

        close_attempt(c);
        finish(c, NULL, rc);
        return;
    }
    c->fd = -1; /* the stream's now, with the handshake's state */
    c->hs = NULL;
    finish(c, s, 0);
}

/* Starts connecting to the next address; with none left, reports the
 * last failure. */
static void
try_next(struct ioloop_connect_s *c)
{
    while (c->next != NULL) {
        struct addrinfo *ai = c->next;
        int fd, rc;

        c->next = ai->ai_next;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
        if (fd < 0) {
            c->error = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0
            && errno != EINPROGRESS) {
            c->error = -errno;
            close(fd);
            continue;
        }
        /* Connected at once (loopback may) or in progress: either way
         * the socket turns writable. */
        rc = ioloop_add_handler(c->loop, fd, IOLOOP_WRITE, on_writable, c);
        if (rc < 0) {
            c->error = rc;
            close(fd);
            continue;
        }
        c->fd = fd;
        return;
    }
    finish(c, NULL, c->error);
}

static void
close_attempt(struct ioloop_connect_s *c)
{
    if (c->fd >= 0) {
        ioloop_remove_handler(c->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
}

/* Unlinks c from its owner and frees it and everything it holds, without
 * the callback. */
static void
release(struct ioloop_connect_s *c)
{
    if (c->prev_owned != NULL) {
        c->prev_owned->next_owned = c->next_owned;
    } else {
        *c->owned = c->next_owned;
    }
    if (c->next_owned != NULL) {
        c->next_owned->prev_owned = c->prev_owned;
    }
    close_attempt(c);
    if (c->deadline != 0) {
        ioloop_cancel(c->loop, c->deadline);
    }
    if (c->soon != 0) {
        ioloop_cancel(c->loop, c->soon);
    }
    if (c->resolve != NULL) {
        ioloop__resolve_cancel(c->resolve);
    }
    if (c->list != NULL) {
        freeaddrinfo(c->list);
    }
    ioloop__tls_client_free(c->hs);
    free(c->addr);
    free(c);
}

/* Ends the attempt: frees c, then calls back with the stream or the
 * error. */
static void
finish(struct ioloop_connect_s *c, ioloop_stream_t *s, int status)
{
    ioloop_loop_t *loop = c->loop;
    ioloop_connect_cb cb = c->cb;
    void *arg = c->arg;

    release(c);
    cb(loop, s, status, arg);
}
