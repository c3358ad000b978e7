/*
 * plugins/hello_http/config.c: validates a hello_http instance's config
 * and pre-renders its responses, so that serving a request is a few
 * memcpy()s.
 *
 * Config: "listen" (required, "HOST:PORT"), "routes" (required, an object
 * path -> body string), "backlog" (optional integer), and the limits,
 * each optional with a default (README lists them): "max_header_size",
 * "max_body_size", "max_connections" (integers) and "header_timeout",
 * "body_timeout", "keepalive_timeout" (seconds).
 */
#include "hello_http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Headers every response carries (Date and Connection are added live). */
#define HELLO_COMMON_HEADERS \
    "Server: ioloop-host\r\n" \
    "Content-Type: text/plain; charset=UTF-8\r\n"

static int config_routes(struct hello *h, json_t *routes, char *err,
                         size_t errlen);
static int config_limits(struct hello *h, json_t *cfg, char *err,
                         size_t errlen);
static int route_can_match(const char *path);
static int response_init(struct hello_response *r, const char *status,
                         const char *extra, const char *body,
                         size_t body_len);
static void response_free(struct hello_response *r);

const char *const hello__config_keys[] = {
    "listen", "routes", "backlog", "max_header_size", "max_body_size",
    "max_connections", "header_timeout", "body_timeout",
    "keepalive_timeout", NULL
};

int
hello__config_load(struct hello *h, const struct json_t *config,
                   const char **listen, char *err, size_t errlen)
{
    /* jansson's iterators take a non-const object; nothing is modified. */
    json_t *cfg = (json_t *) config;
    json_t *v;
    uint64_t n;
    int rc;

    if (cfg != NULL && !json_is_object(cfg)) {
        snprintf(err, errlen, "config: expected an object");
        return -EINVAL;
    }
    /* Unknown keys were refused by the host (config_keys). */
    v = json_object_get(cfg, "listen");
    if (!json_is_string(v)) {
        snprintf(err, errlen, "config.listen: %s a string \"HOST:PORT\"",
                 v == NULL ? "missing, expected" : "expected");
        return -EINVAL;
    }
    *listen = json_string_value(v);

    n = 0;
    rc = http__config_uint(cfg, "backlog", 0, INT_MAX, &n, err, errlen);
    if (rc < 0) {
        return rc;
    }
    h->backlog = (int) n;
    rc = config_limits(h, cfg, err, errlen);
    if (rc < 0) {
        return rc;
    }

    v = json_object_get(cfg, "routes");
    if (!json_is_object(v)) {
        snprintf(err, errlen, "config.routes: %s an object of path -> body",
                 v == NULL ? "missing, expected" : "expected");
        return -EINVAL;
    }
    rc = config_routes(h, v, err, errlen);
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

/*
 * Reads the limits, each defaulted, into h; step is the shortest timeout.
 * Returns 0, or -EINVAL with err naming the key and its range.
 */
static int
config_limits(struct hello *h, json_t *cfg, char *err, size_t errlen)
{
    uint64_t head = HELLO_MAX_HEAD_DEFAULT, conns = HTTP_MAX_CONNS_DEFAULT;
    int rc;

    h->max_body = HTTP_MAX_BODY_DEFAULT;
    h->header_timeout = HTTP_HEADER_TIMEOUT_DEFAULT;
    h->body_timeout = HTTP_BODY_TIMEOUT_DEFAULT;
    h->keepalive_timeout = HTTP_KEEPALIVE_TIMEOUT_DEFAULT;
    rc = http__config_uint(cfg, "max_header_size", HELLO_MAX_HEAD_MIN,
                           HELLO_MAX_HEAD_LIMIT, &head, err, errlen);
    if (rc == 0) {
        rc = http__config_uint(cfg, "max_body_size", 1, HELLO_MAX_BODY_LIMIT,
                               &h->max_body, err, errlen);
    }
    if (rc == 0) {
        rc = http__config_uint(cfg, "max_connections", 1,
                               HELLO_MAX_CONNS_LIMIT, &conns, err, errlen);
    }
    if (rc == 0) {
        rc = http__config_duration(cfg, "header_timeout", &h->header_timeout,
                                   err, errlen);
    }
    if (rc == 0) {
        rc = http__config_duration(cfg, "body_timeout", &h->body_timeout,
                                   err, errlen);
    }
    if (rc == 0) {
        rc = http__config_duration(cfg, "keepalive_timeout",
                                   &h->keepalive_timeout, err, errlen);
    }
    h->max_head = (uint32_t) head;
    h->max_conns = (uint32_t) conns;
    h->step = h->header_timeout;
    if (h->body_timeout < h->step) {
        h->step = h->body_timeout;
    }
    if (h->keepalive_timeout < h->step) {
        h->step = h->keepalive_timeout;
    }
    return rc;
}

/*
 * Builds h->routes from the "routes" object: each key a path starting
 * with '/', each value the body string. Returns 0 or -errno with err set;
 * what was built so far stays in h for hello__config_free.
 */
static int
config_routes(struct hello *h, json_t *routes, char *err, size_t errlen)
{
    struct hello_route *r;
    const char *path;
    json_t *body;

    h->routes = calloc(json_object_size(routes) + 1, sizeof(*h->routes));
    if (h->routes == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    json_object_foreach(routes, path, body) {
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
        if (!json_is_string(body)) {
            snprintf(err, errlen,
                     "config.routes[\"%s\"]: expected a string (the body)",
                     path);
            return -EINVAL;
        }
        r = &h->routes[h->nroutes];
        r->path_len = strlen(path);
        r->path = strdup(path);
        h->nroutes++;
        if (r->path == NULL
            || response_init(&r->ok, "200 OK", "", json_string_value(body),
                             json_string_length(body)) < 0) {
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
