/*
 * plugins/hello_http/hello_http.h: private types of the hello_http plugin
 * (the tornado "hello world" demo): the instance, its routes and canned
 * responses, and one HTTP/1.1 connection. Shared by plugin.c (descriptor,
 * init/fini, listener), config.c (config -> routes) and conn.c (HTTP).
 */
#ifndef IOLOOP_PLUGIN_HELLO_HTTP_H
#define IOLOOP_PLUGIN_HELLO_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <http_parser.h>
#include <ioloop/plugin.h>

#include "../http_common/http_limits.h"

/* One read() lands here; http_parser is fed straight from it. */
#define HELLO_IN_SIZE (64 * 1024)
/* Responses are built here and written at once. */
#define HELLO_OUT_SIZE (64 * 1024)
/* Largest max_header_size. libhttp-parser refuses heads over its own
 * compiled-in HTTP_MAX_HEADER_SIZE (80 KiB) whatever we allow. */
#define HELLO_MAX_HEAD_LIMIT HTTP_MAX_HEADER_SIZE
/* Smallest max_header_size: room for a short request line and Host. */
#define HELLO_MAX_HEAD_MIN 64
/* Largest max_connections and max_body_size. */
#define HELLO_MAX_CONNS_LIMIT (1 << 20)
#define HELLO_MAX_BODY_LIMIT (INT64_C(1) << 62)

/* The status classes requests are counted by (ioloop_http_requests_total). */
enum hello_class {
    HELLO_2XX,
    HELLO_4XX,
    HELLO_5XX,
    HELLO_NCLASSES
};

/* Why a connection timed out (ioloop_connections_timed_out_total). */
enum hello_timeout {
    HELLO_T_HEADER, /* a request head took longer than header_timeout */
    HELLO_T_BODY,   /* no body byte for body_timeout */
    HELLO_T_IDLE,   /* kept alive with no request for keepalive_timeout */
    HELLO_T_SEND,   /* the client read no response byte for body_timeout */
    HELLO_NTIMEOUTS
};

/*
 * A canned response: everything but the Date and Connection headers, the
 * blank line and the body, pre-rendered at init.
 */
struct hello_response {
    char *head; /* status line, Server, Content-Type, Content-Length... */
    size_t head_len;
    char *body;
    size_t body_len;
    enum hello_class cls; /* counted under this status class */
};

/* An exact path match, answered with 200 and the route's body. */
struct hello_route {
    char *path;
    size_t path_len;
    struct hello_response ok;
};

/* The error statuses the plugin answers with. */
enum hello_error {
    HELLO_400, /* parse error; the connection closes */
    HELLO_404, /* no such route */
    HELLO_405, /* a method other than GET or HEAD on a route */
    HELLO_413, /* body over max_body_size; the connection closes */
    HELLO_431, /* request head over max_header_size; the connection closes */
    HELLO_505, /* HTTP major version other than 1; the connection closes */
    HELLO_NERRORS
};

struct hello_conn;

/* One plugin instance (a manifest entry): a listener and its connections. */
struct hello {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;

    /* --- Configuration, fixed after init. --- */
    struct hello_route *routes;
    size_t nroutes;
    struct hello_response errors[HELLO_NERRORS];
    uint32_t max_head; /* request line + headers, bytes */
    int backlog;       /* 0: SOMAXCONN */
    uint32_t max_conns;
    uint64_t max_body;
    ioloop_time_t header_timeout; /* the whole head, from its first byte */
    ioloop_time_t body_timeout;   /* between body reads, response writes */
    ioloop_time_t keepalive_timeout; /* between requests */
    ioloop_time_t step; /* the shortest of the three (http_deadline) */

    /* --- Counters (handles, -1: not counted). --- */
    int requests[HELLO_NCLASSES];
    int timed_out[HELLO_NTIMEOUTS];
    int shed;

    /* --- The listener and its connections (linked, for fini). --- */
    int listen_fd;
    int draining; /* graceful stop: answer with Connection: close */
    struct hello_conn *conns;
    uint32_t nconns;
    struct http_shed shed_log;

    /* --- Scratch state of the connection being served. --- */
    time_t date_sec;  /* the second that date[] shows */
    char date[48];    /* "Date: <IMF-fixdate>\r\n" */
    size_t date_len;
    const char *url_at; /* URL bytes seen in the current read, not copied */
    size_t url_len;
    int feed_err;       /* -errno raised inside a parser callback */
    size_t out_len;
    char out[HELLO_OUT_SIZE];
    char in[HELLO_IN_SIZE];
};

/* Adds 1 to the counter of handle (-1: not counted). */
static inline void
hello__count(const struct hello *h, int handle)
{
    if (handle >= 0) {
        h->api->counter_add(h->inst, handle, 1);
    }
}

/* What the config sets (hello__schema, which the host validates). */
struct hello_config {
    const char *listen;
    struct ioloop_config_map routes; /* path -> body */
    int64_t backlog;
    uint64_t max_header_size;
    uint64_t max_body_size;
    int64_t max_connections;
    ioloop_time_t header_timeout;
    ioloop_time_t body_timeout;
    ioloop_time_t keepalive_timeout;
};

/* hello_http's config schema. */
extern const struct ioloop_config_field hello__schema[];

/*
 * Renders the routes of c into h->routes and h->errors, and copies
 * h->backlog and the limits. Returns 0, or -EINVAL (a route that can
 * never match) / -ENOMEM with one line in err. On failure the caller
 * still calls hello__config_free.
 */
int hello__config_load(struct hello *h, const struct hello_config *c,
                       char *err, size_t errlen);

/* Frees what hello__config_load allocated. Safe on a zeroed instance. */
void hello__config_free(struct hello *h);

/*
 * Takes ownership of the accepted socket fd: allocates its connection,
 * registers it for reading and arms its header timeout; past
 * max_connections it closes fd at once instead (counted and logged).
 * On failure closes fd and returns -errno.
 */
int hello__conn_open(struct hello *h, int fd);

/*
 * Graceful stop: every response from now on carries "Connection: close"
 * and ends its connection; connections that send nothing for a short
 * grace are closed.
 */
void hello__conn_drain(struct hello *h);

/* Removes, closes and frees every connection of h (fini). */
void hello__conn_close_all(struct hello *h);

#endif /* IOLOOP_PLUGIN_HELLO_HTTP_H */
