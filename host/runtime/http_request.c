/*
 * host/runtime/http_request.c: the request object and the request
 * accessors of the API (http_method ... http_on_close).
 *
 * One allocation per request: the struct, then its strings, copied from
 * the head the connection gathered in the loop's scratch: the target,
 * then "name\0value\0" per header (values without surrounding blanks),
 * then the path, then the decoded query as "name\0value\0" pairs. Header
 * and query lookups walk those strings: a head has a few dozen at most.
 *
 * Life: the connection queues the request; a plugin holds it from its
 * handler's call until http_finish (REQ_PLUGIN, on the loop's live list,
 * so an instance's release finds its requests). It is freed once nobody
 * holds it: not queued (req->conn NULL), not held by a plugin, no
 * callback of ours queued with it, and no plugin callback running on it
 * (ioloop__http_request_release).
 *
 * Reuse: the loop keeps one freed request (hl->spare) and the next
 * request that fits takes it instead of a calloc and a free; requests
 * are allocated with room for a common head (HTTP_REQ_MIN), so one spare
 * serves a keep-alive connection's stream of requests. Under ASan the
 * spare is poisoned while it waits: a use after free still shows.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "loader.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define SPARE_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SPARE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SPARE_POISON(p, n) ((void) (p), (void) (n))
#define SPARE_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

/* Room a request is allocated with at least: the struct and a common
 * head's strings; a spare larger than HTTP_REQ_SPARE_MAX is not kept. */
#define HTTP_REQ_MIN 1024
#define HTTP_REQ_SPARE_MAX (8 * 1024)

static size_t query_decode(const char *q, size_t len, char *out);
static int gone_cb(ioloop_loop_t *loop, void *arg);
static int end_cb(ioloop_loop_t *loop, void *arg);

/* Where a request's target is routed: path bytes (not decoded). */
static void
req_route(ioloop_http_request_t *req, struct http_conn *c)
{
    struct http_server *srv = c->srv;
    const struct http_route *r;
    struct http_handler *h;
    uint64_t methods;

    r = ioloop__http_routes_match(&srv->routes, req->path,
                                  strlen(req->path));
    req->max_body = r != NULL && r->max_body != 0
                        ? r->max_body
                        : srv->limits.max_body_size;
    if (r == NULL) {
        req->status = 404;
        return;
    }
    req->route = r->key;
    req->metrics = r->metrics;
    req->path_rest = req->path + (r->prefix ? r->len : strlen(req->path));
    h = r->handler;
    if (h == NULL) {
        req->status = 503;
        return;
    }
    methods = r->methods != 0 ? r->methods : h->methods;
    if (methods != 0 && req->method_id < 64
        && !(methods & (UINT64_C(1) << req->method_id))) {
        req->status = 405;
        req->allow = r->methods != 0 ? r->allow : h->allow;
        return;
    }
    req->handler = h;
    req->inst = h->inst;
    if (h->flags & IOLOOP_HTTP_STREAM_BODY) {
        req->flags |= REQ_STREAM;
    }
}

/* The path of target: origin form up to '?' or '#', absolute form's
 * path component ("/" when it has none). len 0: none (400). */
static const char *
target_path(const char *target, size_t *len, const char **query,
            size_t *qlen)
{
    struct http_parser_url u;
    size_t n = strlen(target), i;

    *query = NULL;
    *qlen = 0;
    if (target[0] == '/' || strcmp(target, "*") == 0) {
        for (i = 0; i < n && target[i] != '?' && target[i] != '#'; i++) {
        }
        *len = i;
        if (i < n && target[i] == '?') {
            *query = target + i + 1;
            *qlen = strcspn(*query, "#");
        }
        return target;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(target, n, 0, &u) != 0) {
        *len = 0;
        return NULL;
    }
    if (u.field_set & (1u << UF_QUERY)) {
        *query = target + u.field_data[UF_QUERY].off;
        *qlen = u.field_data[UF_QUERY].len;
    }
    if (!(u.field_set & (1u << UF_PATH))) {
        *len = 1;
        return "/";
    }
    *len = u.field_data[UF_PATH].len;
    return target + u.field_data[UF_PATH].off;
}

/* Copies the gathered strings to dst, trimming the values' blanks;
 * returns the bytes written. */
static size_t
head_copy(char *dst, const char *src, size_t len)
{
    size_t i = 0, o = 0, k = 0; /* k: index of the string */

    while (i < len) {
        const char *s = src + i;
        size_t n = strnlen(s, len - i);

        i += n + 1;
        if (k > 0 && k % 2 == 0) { /* a value */
            while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
                s++;
                n--;
            }
            while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
                n--;
            }
        }
        memcpy(dst + o, s, n);
        o += n;
        dst[o++] = '\0';
        k++;
    }
    return o;
}

ioloop_http_request_t *
ioloop__http_request_new(struct http_conn *c, bool bare)
{
    struct http_loop *hl = c->srv->hl;
    ioloop_http_request_t *req;
    const char *target = "", *path, *query;
    size_t slen = 0, plen, qlen, qcap, size;
    char *strs;

    if (!bare) {
        hl->head[hl->head_len] = '\0';
        target = hl->head;
        slen = hl->head_len + 1;
    }
    path = target_path(target, &plen, &query, &qlen);
    qcap = query != NULL ? qlen + 2 * (qlen + 1) : 0;
    size = sizeof(*req) + slen + plen + 1 + qcap;
    if (hl->spare != NULL && hl->spare_cap >= size) {
        req = hl->spare;
        hl->spare = NULL;
        SPARE_UNPOISON(req, hl->spare_cap);
        memset(req, 0, size);
        req->cap = hl->spare_cap;
    } else {
        size = size > HTTP_REQ_MIN ? size : HTTP_REQ_MIN;
        req = calloc(1, size);
        if (req == NULL) {
            return NULL;
        }
        req->cap = size;
    }
    strs = (char *) (req + 1);
    req->hl = hl;
    req->srv = c->srv;
    req->conn = c;
    /* The host's own: no body to read, the last on its connection. */
    req->flags = bare ? REQ_BODY_DONE : REQ_KEEP_ALIVE;
    req->started = ioloop_time(hl->loop);
    req->when = time(NULL);
    req->method_id = (uint16_t) c->parser.method;
    req->method = bare ? "" : http_method_str(c->parser.method);
    req->version_minor = (uint8_t) c->parser.http_minor;
    req->path_rest = "";
    req->strs = "";
    req->target = "";
    if (!bare) {
        /* The target is copied as is: offsets into it stay valid. */
        slen = head_copy(strs, hl->head, slen);
        req->strs = strs;
        req->target = strs;
        req->nhdr = hl->head_hdrs;
        if (c->parser.method == HTTP_HEAD) {
            req->flags |= REQ_HEAD;
        }
    }
    req->path = memcpy(strs + slen, path != NULL ? path : "", plen);
    strs[slen + plen] = '\0';
    if (query != NULL) {
        req->query = strs + slen + plen + 1;
        req->nquery = (uint32_t) query_decode(query, qlen, req->query);
    }
    hl->head_len = 0;
    hl->head_hdrs = 0;
    hl->head_state = HTTP_HEAD_URL;
    req->max_body = c->srv->limits.max_body_size;
    if (!bare) {
        if (path == NULL || plen == 0) {
            req->status = 400;
        } else {
            req_route(req, c);
        }
    }
    if (c->last != NULL) {
        c->last->next = req;
    } else {
        c->first = req;
    }
    c->last = req;
    c->nreq++;
    return req;
}

static int
hex(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Decodes the n bytes of query q into out as name\0value\0 pairs
 * (percent and '+'; an empty pair is skipped); returns the bytes
 * written: at most len + 2 per pair. */
static size_t
query_decode(const char *q, size_t len, char *out)
{
    size_t o = 0, pair = 0;
    bool in_value = false;

    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? q[i] : '&';

        if (ch == '&') {
            if (i > pair) {
                out[o++] = '\0';
                if (!in_value) {
                    out[o++] = '\0';
                }
            }
            in_value = false;
            pair = i + 1;
        } else if (ch == '=' && !in_value) {
            out[o++] = '\0';
            in_value = true;
        } else if (ch == '+') {
            out[o++] = ' ';
        } else if (ch == '%' && i + 2 < len && hex(q[i + 1]) >= 0
                   && hex(q[i + 2]) >= 0) {
            out[o++] = (char) (hex(q[i + 1]) << 4 | hex(q[i + 2]));
            i += 2;
        } else {
            out[o++] = ch;
        }
    }
    return o;
}

void
ioloop__http_request_free(ioloop_http_request_t *req)
{
    struct http_loop *hl = req->hl;

    if (req->flags & REQ_PLUGIN) {
        if (req->live_prev != NULL) {
            req->live_prev->live_next = req->live_next;
        } else {
            hl->live = req->live_next;
        }
        if (req->live_next != NULL) {
            req->live_next->live_prev = req->live_prev;
        }
    }
    free(req->body);
    free(req->rhdrs);
    free(req->pending);
    if (req->cap <= HTTP_REQ_SPARE_MAX
        && (hl->spare == NULL || hl->spare_cap < req->cap)) {
        ioloop__http_request_spare_free(hl); /* the larger one stays */
        hl->spare = req;
        hl->spare_cap = req->cap;
        SPARE_POISON(req, req->cap);
        return;
    }
    free(req);
}

void
ioloop__http_request_spare_free(struct http_loop *hl)
{
    if (hl->spare != NULL) {
        SPARE_UNPOISON(hl->spare, hl->spare_cap);
        free(hl->spare);
        hl->spare = NULL;
    }
}

void
ioloop__http_request_release(ioloop_http_request_t *req)
{
    if (req->conn == NULL
        && (!(req->flags & REQ_PLUGIN) || (req->flags & REQ_FINISHED))
        && !(req->flags & (REQ_CLOSE_CB | REQ_FLUSH_CB | REQ_END_CB
                           | REQ_CALLING))) {
        ioloop__http_request_free(req);
    }
}

void
ioloop__http_request_call(ioloop_http_request_t *req, ioloop_http_cb cb,
                          void *arg)
{
    ioloop_loop_t *loop = req->hl->loop;
    const struct ioloop_owner *previous;
    unsigned calling;

    if (!(req->flags & REQ_PLUGIN)) {
        req->flags |= REQ_PLUGIN;
        req->live_next = req->hl->live;
        if (req->hl->live != NULL) {
            req->hl->live->live_prev = req;
        }
        req->hl->live = req;
    }
    previous = ioloop__set_owner(loop, &req->inst->owner);
    calling = req->flags & REQ_CALLING;
    req->flags |= REQ_CALLING; /* not freed under the caller's feet */
    cb(req, arg);
    req->flags = (req->flags & ~REQ_CALLING) | calling;
    ioloop__set_owner(loop, previous);
}

int
ioloop__http_request_later(ioloop_http_request_t *req, ioloop_cb cb)
{
    ioloop_loop_t *loop = req->hl->loop;
    const struct ioloop_owner *previous = ioloop__set_owner(loop, NULL);
    int rc = ioloop_add_callback(loop, cb, req);

    ioloop__set_owner(loop, previous);
    return rc;
}

/* Fills req->remote_ip from its connection's socket, once. */
static void
remote_fill(ioloop_http_request_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const void *a;

    if (req->remote_ip[0] != '\0' || req->conn == NULL
        || getpeername(req->conn->fd, (struct sockaddr *) &ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET6) {
        a = &((struct sockaddr_in6 *) &ss)->sin6_addr;
    } else if (ss.ss_family == AF_INET) {
        a = &((struct sockaddr_in *) &ss)->sin_addr;
    } else {
        return;
    }
    inet_ntop(ss.ss_family, a, req->remote_ip, sizeof(req->remote_ip));
}

void
ioloop__http_request_gone(ioloop_http_request_t *req)
{
    bool held = (req->flags & REQ_PLUGIN) && !(req->flags & REQ_FINISHED);

    if (held && !(req->flags & REQ_GONE)) {
        remote_fill(req);
        req->flags |= REQ_GONE;
        if ((req->on_close != NULL || req->on_flush != NULL)
            && !(req->flags & REQ_CLOSE_CB)
            && ioloop__http_request_later(req, gone_cb) == 0) {
            req->flags |= REQ_CLOSE_CB;
        }
    }
    req->conn = NULL;
    req->next = NULL;
    ioloop__http_request_release(req);
}

/* The iteration after the client left: on_close, then a pending flush's
 * callback ("after on_close"). */
static int
gone_cb(ioloop_loop_t *loop, void *arg)
{
    ioloop_http_request_t *req = arg;
    ioloop_http_cb cb;

    (void) loop;
    if (!(req->flags & REQ_FINISHED) && req->on_close != NULL) {
        cb = req->on_close;
        req->on_close = NULL;
        ioloop__http_request_call(req, cb, req->close_arg);
    }
    if (!(req->flags & REQ_FINISHED) && req->on_flush != NULL) {
        cb = req->on_flush;
        req->on_flush = NULL;
        ioloop__http_request_call(req, cb, req->flush_arg);
    }
    req->flags &= ~REQ_CLOSE_CB;
    ioloop__http_request_release(req);
    return 0;
}

/* on_end of a streamed request without a body. */
static int
end_cb(ioloop_loop_t *loop, void *arg)
{
    ioloop_http_request_t *req = arg;
    ioloop_http_cb cb = req->on_end;

    (void) loop;
    req->flags &= ~REQ_END_CB;
    req->on_end = NULL;
    if (cb != NULL && !(req->flags & (REQ_FINISHED | REQ_GONE))) {
        ioloop__http_request_call(req, cb, req->body_arg);
    }
    ioloop__http_request_release(req);
    return 0;
}

/* A flush whose bytes reached the kernel. */
static int
flush_cb(ioloop_loop_t *loop, void *arg)
{
    ioloop_http_request_t *req = arg;
    ioloop_http_cb cb = req->on_flush;

    (void) loop;
    req->flags &= ~REQ_FLUSH_CB;
    if (cb != NULL && !(req->flags & (REQ_FINISHED | REQ_GONE))) {
        req->on_flush = NULL;
        ioloop__http_request_call(req, cb, req->flush_arg);
    }
    ioloop__http_request_release(req);
    return 0;
}

int
ioloop__http_request_flushed(ioloop_http_request_t *req)
{
    if (req->flags & REQ_FLUSH_CB) {
        return 0;
    }
    if (ioloop__http_request_later(req, flush_cb) < 0) {
        return -ENOMEM;
    }
    req->flags |= REQ_FLUSH_CB;
    return 0;
}

int
ioloop__http_request_body_end(ioloop_http_request_t *req)
{
    if (ioloop__http_request_later(req, end_cb) < 0) {
        return -ENOMEM;
    }
    req->flags |= REQ_END_CB;
    return 0;
}

/* --- The API's accessors. --- */

const char *
ioloop_http_method(const ioloop_http_request_t *req)
{
    return req->method;
}

const char *
ioloop_http_target(const ioloop_http_request_t *req)
{
    return req->target;
}

const char *
ioloop_http_path(const ioloop_http_request_t *req)
{
    return req->path;
}

const char *
ioloop_http_path_rest(const ioloop_http_request_t *req)
{
    return req->path_rest;
}

int
ioloop_http_query_next(const ioloop_http_request_t *req, size_t *it,
                        const char **name, const char **value)
{
    const char *q = req->query;

    if (q == NULL || *it >= req->nquery) {
        return 0;
    }
    *name = q + *it;
    *value = *name + strlen(*name) + 1;
    *it = (size_t) (*value + strlen(*value) + 1 - q);
    return 1;
}

const char *
ioloop_http_query(const ioloop_http_request_t *req, const char *name)
{
    const char *n, *v;
    size_t it = 0;

    while (ioloop_http_query_next(req, &it, &n, &v)) {
        if (strcmp(n, name) == 0) {
            return v;
        }
    }
    return NULL;
}

int
ioloop_http_header_next(const ioloop_http_request_t *req, size_t *it,
                         const char **name, const char **value)
{
    const char *s;

    if (*it >= req->nhdr) {
        return 0;
    }
    /* it counts headers; the strings are walked from the target (a head
     * has a few dozen at most). */
    s = req->strs + strlen(req->strs) + 1;
    for (size_t i = 0; i < *it; i++) {
        s += strlen(s) + 1;
        s += strlen(s) + 1;
    }
    *name = s;
    *value = s + strlen(s) + 1;
    (*it)++;
    return 1;
}

const char *
ioloop_http_header(const ioloop_http_request_t *req, const char *name)
{
    const char *s = req->strs + strlen(req->strs) + 1;

    for (uint32_t i = 0; i < req->nhdr; i++) {
        const char *v = s + strlen(s) + 1;

        if (strcasecmp(s, name) == 0) {
            return v;
        }
        s = v + strlen(v) + 1;
    }
    return NULL;
}

const char *
ioloop_http_remote_ip(const ioloop_http_request_t *req)
{
    remote_fill((ioloop_http_request_t *) req);
    return req->remote_ip;
}

const char *
ioloop_http_scheme(const ioloop_http_request_t *req)
{
    return req->srv->tls != NULL ? "https" : "http";
}

const char *
ioloop_http_body(const ioloop_http_request_t *req, size_t *len)
{
    if (req->body == NULL || (req->flags & REQ_STREAM)) {
        *len = 0;
        return NULL;
    }
    *len = req->body_len;
    return req->body;
}

int
ioloop_http_read_body(ioloop_http_request_t *req,
                       ioloop_http_body_cb on_data, ioloop_http_cb on_end,
                       void *arg)
{
    if (!(req->flags & REQ_STREAM) || (req->flags & REQ_READ_BODY)) {
        return -EALREADY;
    }
    req->flags |= REQ_READ_BODY;
    req->on_data = on_data;
    req->on_end = on_end;
    req->body_arg = arg;
    return 0;
}

void
ioloop_http_on_close(ioloop_http_request_t *req, ioloop_http_cb cb,
                      void *arg)
{
    req->on_close = cb;
    req->close_arg = arg;
    if ((req->flags & REQ_GONE) && cb != NULL
        && !(req->flags & REQ_CLOSE_CB)
        && ioloop__http_request_later(req, gone_cb) == 0) {
        req->flags |= REQ_CLOSE_CB;
    }
}
