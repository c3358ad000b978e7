/*
 * plugins/hello_http/config.c: a hello_http instance's config schema
 * (validated by the host), and its routes pre-rendered into responses,
 * so that serving a request is a few memcpy()s.
 */
#include "hello_http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Headers every response carries (Date and Connection are added live). */
#define HELLO_COMMON_HEADERS \
    "Server: ioloop-host\r\n" \
    "Content-Type: text/plain; charset=UTF-8\r\n"

static int config_routes(struct hello *h,
                         const struct ioloop_config_map *routes, char *err,
                         size_t errlen);
static void config_limits(struct hello *h, const struct hello_config *c);
static int route_can_match(const char *path);
static int response_init(struct hello_response *r, const char *status,
                         const char *extra, const char *body,
                         size_t body_len);
static void response_free(struct hello_response *r);

const struct ioloop_config_field hello__schema[] = {
    IOLOOP_CONFIG_LISTEN(struct hello_config, listen, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "Address to listen on: HOST:PORT or [IPV6]:PORT."),
    IOLOOP_CONFIG_MAP(struct hello_config, routes, IOLOOP_CONFIG_REQUIRED,
                      "Exact request path (starting with '/') -> the body "
                      "answered with 200."),
    IOLOOP_CONFIG_INT(struct hello_config, backlog, 0, INT_MAX, "0", 0,
                      "listen(2) backlog; 0: SOMAXCONN."),
    IOLOOP_CONFIG_SIZE(struct hello_config, max_header_size,
                       HELLO_MAX_HEAD_MIN, HELLO_MAX_HEAD_LIMIT, "8KiB", 0,
                       "Largest request line and headers; past it: 431."),
    IOLOOP_CONFIG_SIZE(struct hello_config, max_body_size, 1,
                       HELLO_MAX_BODY_LIMIT, "1MiB", 0,
                       "Largest request body; past it: 413."),
    IOLOOP_CONFIG_INT(struct hello_config, max_connections, 1,
                      HELLO_MAX_CONNS_LIMIT, "10240", 0,
                      "Connections past this many are closed at accept."),
    IOLOOP_CONFIG_DURATION(struct hello_config, header_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "10s", 0,
                           "Longest a request head may take, from its "
                           "first byte."),
    IOLOOP_CONFIG_DURATION(struct hello_config, body_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "30s", 0,
                           "Longest wait for a body byte, or for the "
                           "client to read the response."),
    IOLOOP_CONFIG_DURATION(struct hello_config, keepalive_timeout,
                           HTTP_DURATION_MIN, HTTP_DURATION_MAX, "75s", 0,
                           "Close a kept-alive connection idle this long."),
    IOLOOP_CONFIG_END,
};

int
hello__config_load(struct hello *h, const struct hello_config *c, char *err,
                   size_t errlen)
{
    int rc;

    h->backlog = (int) c->backlog;
    config_limits(h, c);
    rc = config_routes(h, &c->routes, err, errlen);
    if (rc < 0) {
        return rc;
    }

    if (response_init(&h->errors[HELLO_400], "400 Bad Request", "",
                      "Bad Request\n", 12) < 0
        || response_init(&h->errors[HELLO_404], "404 Not Found", "",
                         "Not Found\n", 10) < 0
        || response_init(&h->errors[HELLO_405], "405 Method Not Allowed",
                         "Allow: GET, HEAD\r\n", "Method Not Allowed\n",
                         19) < 0
        || response_init(&h->errors[HELLO_413], "413 Content Too Large", "",
                         "Content Too Large\n", 18) < 0
        || response_init(&h->errors[HELLO_431],
                         "431 Request Header Fields Too Large", "",
                         "Request Header Fields Too Large\n", 32) < 0
        || response_init(&h->errors[HELLO_505],
                         "505 HTTP Version Not Supported", "",
                         "HTTP Version Not Supported\n", 27) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

void
hello__config_free(struct hello *h)
{
    size_t i;

    for (i = 0; i < h->nroutes; i++) {
        free(h->routes[i].path);
        response_free(&h->routes[i].ok);
    }
    free(h->routes);
    h->routes = NULL;
    h->nroutes = 0;
    for (i = 0; i < HELLO_NERRORS; i++) {
        response_free(&h->errors[i]);
    }
}

/* Copies the limits into h; step is the shortest timeout. */
static void
config_limits(struct hello *h, const struct hello_config *c)
{
    h->max_head = (uint32_t) c->max_header_size;
    h->max_body = c->max_body_size;
    h->max_conns = (uint32_t) c->max_connections;
    h->header_timeout = c->header_timeout;
    h->body_timeout = c->body_timeout;
    h->keepalive_timeout = c->keepalive_timeout;
    h->step = h->header_timeout;
    if (h->body_timeout < h->step) {
        h->step = h->body_timeout;
    }
    if (h->keepalive_timeout < h->step) {
        h->step = h->keepalive_timeout;
    }
}

/*
 * Builds h->routes from the routes map: each key a path starting with
 * '/', each value the body. Returns 0 or -errno with err set; what was
 * built so far stays in h for hello__config_free.
 */
static int
config_routes(struct hello *h, const struct ioloop_config_map *routes,
              char *err, size_t errlen)
{
    h->routes = calloc(routes->count + 1, sizeof(*h->routes));
    if (h->routes == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < routes->count; i++) {
        const char *path = routes->keys[i], *body = routes->values[i];
        struct hello_route *r;

        if (path[0] != '/') {
            snprintf(err, errlen,
                     "config.routes[\"%s\"]: a path must start with '/'",
                     path);
            return -EINVAL;
        }
        if (!route_can_match(path)) {
            snprintf(err, errlen,
                     "config.routes[\"%s\"]: can never match (a request's "
                     "path has no '?', '#', space or control character)",
                     path);
            return -EINVAL;
        }
        r = &h->routes[h->nroutes];
        r->path_len = strlen(path);
        r->path = strdup(path);
        h->nroutes++;
        if (r->path == NULL
            || response_init(&r->ok, "200 OK", "", body, strlen(body)) < 0) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

/* A route is matched against a request's path, which ends at '?' or '#'
 * and cannot hold whitespace or control characters. */
static int
route_can_match(const char *path)
{
    for (const unsigned char *p = (const unsigned char *) path; *p != '\0';
         p++) {
        if (*p == '?' || *p == '#' || *p <= ' ' || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/*
 * Renders r: "HTTP/1.1 <status>", the common headers, extra (whole header
 * lines, possibly ""), Content-Length; copies the body. Returns 0 or
 * -ENOMEM.
 */
static int
response_init(struct hello_response *r, const char *status,
              const char *extra, const char *body, size_t body_len)
{
    int n;

    n = snprintf(NULL, 0,
                 "HTTP/1.1 %s\r\n" HELLO_COMMON_HEADERS "%sContent-Length: "
                 "%zu\r\n",
                 status, extra, body_len);
    r->head = malloc((size_t) n + 1);
    r->body = malloc(body_len + 1);
    if (r->head == NULL || r->body == NULL) {
        return -ENOMEM;
    }
    r->head_len = (size_t) snprintf(r->head, (size_t) n + 1,
                                    "HTTP/1.1 %s\r\n" HELLO_COMMON_HEADERS
                                    "%sContent-Length: %zu\r\n",
                                    status, extra, body_len);
    memcpy(r->body, body, body_len);
    r->body_len = body_len;
    r->cls = status[0] == '2' ? HELLO_2XX
             : status[0] == '4' ? HELLO_4XX
                                : HELLO_5XX;
    return 0;
}

static void
response_free(struct hello_response *r)
{
    free(r->head);
    free(r->body);
    r->head = NULL;
    r->body = NULL;
}
