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

/* One read() lands here; http_parser is fed straight from it. */
#define HELLO_IN_SIZE (64 * 1024)
/* Responses are built here and written at once. */
#define HELLO_OUT_SIZE (64 * 1024)
/* Default and largest max_header_size. libhttp-parser refuses heads over
 * its own compiled-in HTTP_MAX_HEADER_SIZE (80 KiB) whatever we allow. */
#define HELLO_MAX_HEAD_DEFAULT 8192
#define HELLO_MAX_HEAD_LIMIT HTTP_MAX_HEADER_SIZE

/*
 * A canned response: everything but the Date and Connection headers, the
 * blank line and the body, pre-rendered at init.
 */
struct hello_response {
    char *head; /* status line, Server, Content-Type, Content-Length... */
    size_t head_len;
    char *body;
    size_t body_len;
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
    HELLO_431, /* request head over max_header_size; the connection closes */
    HELLO_NERRORS
};

struct hello_conn;

/* One plugin instance (a manifest entry): a listener and its connections. */
struct hello {
    const struct ioloop_api *api;
    ioloop_loop_t *loop;

    /* --- Configuration, fixed after init. --- */
    struct hello_route *routes;
    size_t nroutes;
    struct hello_response errors[HELLO_NERRORS];
    uint32_t max_head; /* request line + headers, bytes */
    int backlog;       /* 0: SOMAXCONN */

    /* --- The listener and its connections (linked, for fini). --- */
    int listen_fd;
    int draining; /* graceful stop: answer with Connection: close */
    struct hello_conn *conns;

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

/* The config keys hello_http accepts, NULL-terminated. */
extern const char *const hello__config_keys[];

/*
 * Validates config and fills h->routes, h->errors, h->max_head and
 * h->backlog; *listen receives the borrowed "listen" string. Returns 0, or
 * -EINVAL / -ENOMEM with one line in err naming the key. On failure the
 * caller still calls hello__config_free.
 */
int hello__config_load(struct hello *h, const struct json_t *config,
                       const char **listen, char *err, size_t errlen);

/* Frees what hello__config_load allocated. Safe on a zeroed instance. */
void hello__config_free(struct hello *h);

/*
 * Takes ownership of the accepted socket fd: allocates its connection and
 * registers it for reading. On failure closes fd and returns -errno.
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
