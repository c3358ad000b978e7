/*
 * host/runtime/http_server.c: the loop's HTTP servers (contract:
 * http_server.h): listeners and accept, TLS contexts, the manifest's
 * routes and the plugins' own (http_handle), drain, reload, an
 * instance's release, and the loop slot that holds it all.
 */
#include "http_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "net.h"
#include "tls.h"

/* Connections one listener event accepts at most. */
#define HTTP_ACCEPT_BATCH 64

static void slot_free(ioloop_loop_t *loop, void *data);
static void handler_free(struct http_loop *hl, struct http_handler *h);

/* The loop's HTTP state, NULL when it runs no server. */
static struct http_loop *
http_loop(const ioloop_loop_t *loop)
{
    return ioloop__slot(loop, IOLOOP_SLOT_HTTP);
}

/*
 * Parses a methods list ("GET,POST") into a bit per enum http_method
 * (GET implies HEAD) and the Allow header's value. -EINVAL: an unknown
 * method; -ENOMEM.
 */
static int
methods_parse(const char *list, uint64_t *bits, char **allow)
{
    size_t len = strlen(list);
    const char *p = list;
    char *a;

    *bits = 0;
    a = malloc(2 * len + sizeof(", HEAD")); /* ", " for each ',' */
    if (a == NULL) {
        return -ENOMEM;
    }
    a[0] = '\0';
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        unsigned m;
        const char *name = NULL;

        for (m = 0; m < 64; m++) {
            name = http_method_str((enum http_method) m);
            if (strcmp(name, "<unknown>") == 0) {
                break;
            }
            if (strlen(name) == n && strncmp(name, p, n) == 0) {
                break;
            }
        }
        if (m == 64 || strcmp(name, "<unknown>") == 0) {
            free(a);
            return -EINVAL;
        }
        *bits |= UINT64_C(1) << m;
        if (a[0] != '\0') {
            strcat(a, ", ");
        }
        strcat(a, name);
        p += n;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                free(a);
                return -EINVAL;
            }
        }
    }
    if (*bits == 0) {
        free(a);
        return -EINVAL;
    }
    if ((*bits & (UINT64_C(1) << HTTP_GET))
        && !(*bits & (UINT64_C(1) << HTTP_HEAD))) {
        *bits |= UINT64_C(1) << HTTP_HEAD;
        strcat(a, ", HEAD");
    }
    *allow = a;
    return 0;
}

/* Readable listener: accepts a batch, each a new connection. */
static int
on_accept(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct http_server *srv = arg;
    int fds[HTTP_ACCEPT_BATCH];
    int n, rc = 0;

    (void) events;
    n = ioloop__accept_batch(loop, fd, fds, HTTP_ACCEPT_BATCH);
    for (int i = 0; i < n; i++) {
        int r = ioloop__http_conn_open(srv, fds[i]);

        if (r < 0 && rc == 0) {
            rc = r;
        }
    }
    /* A failed accept is not the handler failing: out of fds, the
     * helper shed the connection and logged it (rate-limited); the rest
     * (ECONNABORTED, ENOBUFS...) concern one connection. */
    return rc;
}

/* The shortest of a server's timeouts: its deadlines' step. */
static ioloop_time_t
limits_step(const struct ioloop_http_limits *l)
{
    ioloop_time_t t = l->header_timeout;

    t = l->body_timeout < t ? l->body_timeout : t;
    t = l->send_timeout < t ? l->send_timeout : t;
    t = l->keepalive_timeout < t ? l->keepalive_timeout : t;
    return t > 0 ? t : IOLOOP_NS_PER_S;
}

/* "servers[0].tls.cert: /x/cert.pem: reason" from tls.c's
 * "tls: /x/cert.pem: reason" (the key's path: .tls.key). */
static void
tls_error(const struct ioloop_http_server_spec *s, const char *why,
          char *err, size_t errlen)
{
    const char *k = s->tls_key != NULL ? strstr(why, s->tls_key) : NULL;
    const char *c = strstr(why, s->tls_cert);

    if (strncmp(why, "tls: ", 5) == 0) {
        why += 5;
    }
    snprintf(err, errlen, "%s.tls.%s: %s", s->where,
             k != NULL && (c == NULL || k < c) ? "key"
             : c != NULL                      ? "cert"
                                              : "min_version",
             why);
}

/* A server's TLS context (none without a certificate). -errno with err. */
static int
server_tls(struct http_server *srv, const struct ioloop_http_server_spec *s,
           char *err, size_t errlen)
{
    char why[512];
    int rc;

    if (s->tls_cert != NULL) {
        struct ioloop_tls_options o = {
            .size = sizeof(o),
            .cert = s->tls_cert,
            .key = s->tls_key,
            .min_version = s->tls_min_version,
            .alpn = "http/1.1",
        };

        srv->tls = ioloop__tls_new(&srv->tls_owned, &o, why, sizeof(why));
        if (srv->tls == NULL) {
            rc = -errno;
            tls_error(s, why, err, errlen);
            return rc;
        }
    }
    return 0;
}

/* Sets up one server from its spec. -errno with err. */
static int
server_create(struct http_server *srv, const struct ioloop_http_server_spec *s,
              char *err, size_t errlen)
{
    char why[512];
    int rc;

    srv->spec = s;
    srv->limits = s->limits;
    srv->step = limits_step(&s->limits);
    srv->fds = malloc((s->nlisten ? s->nlisten : 1) * sizeof(int));
    if (srv->fds == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->nlisten; i++) {
        rc = ioloop__listen_tcp(srv->hl->loop, s->listen[i], s->backlog, 0,
                                why, sizeof(why));
        if (rc < 0) {
            snprintf(err, errlen, "%s.listen[%zu]: %s", s->where, i, why);
            return rc;
        }
        srv->fds[srv->nfds++] = rc;
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct ioloop_http_route_spec *rs = &s->routes[i];
        struct http_route *r = calloc(1, sizeof(*r));

        if (r == NULL) {
            return -ENOMEM;
        }
        r->spec = rs;
        r->prefix = rs->prefix != NULL;
        r->key = r->prefix ? rs->prefix : rs->path;
        r->len = strlen(r->key);
        r->max_body = rs->max_body_size;
        if (rs->methods != NULL
            && methods_parse(rs->methods, &r->methods, &r->allow) < 0) {
            snprintf(err, errlen, "%s: methods \"%s\": not a list of HTTP "
                     "methods", rs->where, rs->methods);
            free(r);
            return -EINVAL;
        }
        if (ioloop__http_routes_get(&srv->routes, r->key, r->len, r->prefix)
            != NULL) {
            snprintf(err, errlen, "%s: %s \"%s\" is routed twice", rs->where,
                     r->prefix ? "prefix" : "path", r->key);
            free(r->allow);
            free(r);
            return -EEXIST;
        }
        if (ioloop__http_routes_add(&srv->routes, r) < 0) {
            free(r->allow);
            free(r);
            return -ENOMEM;
        }
        ioloop__http_record_route(srv, r);
    }
    return ioloop__http_record_open(srv, err, errlen);
}

/* Closes a server's listeners, connections' server stays. */
static void
server_listeners_close(struct http_server *srv)
{
    for (size_t i = 0; i < srv->nfds; i++) {
        if (srv->fds[i] >= 0) {
            ioloop_remove_handler(srv->hl->loop, srv->fds[i]);
            close(srv->fds[i]);
            srv->fds[i] = -1;
        }
    }
}

/* Frees a server's routes, listeners and TLS context. */
static void
server_free(struct http_server *srv)
{
    struct http_routes *t = &srv->routes;

    server_listeners_close(srv);
    free(srv->fds);
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct http_route *r, *next;

        for (r = t->buckets[i]; r != NULL; r = next) {
            next = r->next;
            if (r->handler != NULL && r->handler->route == r) {
                r->handler->route = NULL;
            }
            free(r->allow);
            free(r);
        }
    }
    ioloop__http_routes_free(t);
    ioloop__tls_release_owned(&srv->tls_owned);
    ioloop__http_record_close(srv);
}

int
ioloop__http_servers_create(ioloop_loop_t *loop,
                            const struct ioloop_http_server_spec *specs,
                            size_t n, char *err, size_t errlen)
{
    struct http_loop *hl = http_loop(loop);
    uint32_t max_head = 0;
    int rc;

    if (hl == NULL) {
        hl = calloc(1, sizeof(*hl));
        if (hl == NULL) {
            snprintf(err, errlen, "servers: out of memory");
            return -ENOMEM;
        }
        hl->loop = loop;
        ioloop__slot_set(loop, IOLOOP_SLOT_HTTP, hl, slot_free);
    }
    if (hl->nservers > 0) {
        snprintf(err, errlen, "servers: already created");
        return -EEXIST;
    }
    for (size_t i = 0; i < n; i++) {
        if (specs[i].limits.max_header_size > max_head) {
            max_head = specs[i].limits.max_header_size;
        }
    }
    hl->servers = calloc(n ? n : 1, sizeof(*hl->servers));
    hl->head_cap = (size_t) max_head + 64;
    hl->head = malloc(hl->head_cap);
    if (hl->servers == NULL || hl->head == NULL) {
        snprintf(err, errlen, "servers: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    /* Every certificate first: a bad one binds nothing. */
    for (size_t i = 0; i < n; i++) {
        hl->servers[i].hl = hl;
        hl->nservers = i + 1;
        rc = server_tls(&hl->servers[i], &specs[i], err, errlen);
        if (rc < 0) {
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        err[0] = '\0';
        rc = server_create(&hl->servers[i], &specs[i], err, errlen);
        if (rc < 0) {
            if (err[0] == '\0') {
                snprintf(err, errlen, "%s: out of memory", specs[i].where);
            }
            goto fail;
        }
    }
    return 0;

fail:
    ioloop__http_servers_free(loop);
    return rc;
}

/* Whether set has an instance called name that the master quarantined. */
static bool
quarantined(const struct ioloop_plugin_set *set, const char *name)
{
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        if (strcmp(set->v[i].owner.name, name) == 0) {
            return set->v[i].quarantined;
        }
    }
    return false;
}

int
ioloop__http_servers_start(ioloop_loop_t *loop,
                           const struct ioloop_plugin_set *set, char *err,
                           size_t errlen)
{
    struct http_loop *hl = http_loop(loop);
    const struct ioloop_owner *previous;
    int rc = 0;

    if (hl == NULL) {
        return 0;
    }
    for (size_t i = 0; i < hl->nservers; i++) {
        const struct ioloop_http_server_spec *s = hl->servers[i].spec;

        for (size_t k = 0; k < s->nroutes; k++) {
            const struct ioloop_http_route_spec *rs = &s->routes[k];
            const struct http_route *r = ioloop__http_routes_get(
                &hl->servers[i].routes, rs->prefix ? rs->prefix : rs->path,
                strlen(rs->prefix ? rs->prefix : rs->path),
                rs->prefix != NULL);

            if (r != NULL && r->handler == NULL
                && quarantined(set, rs->plugin)) {
                IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                           "%s: plugin \"%s\" is quarantined: its requests "
                           "are answered 503", rs->where, rs->plugin);
                continue;
            }
            if (r == NULL || r->handler == NULL) {
                snprintf(err, errlen, "%s: plugin \"%s\" registers no HTTP "
                         "handler", rs->where, rs->plugin);
                return -ENOENT;
            }
        }
    }
    previous = ioloop__set_owner(loop, NULL);
    for (size_t i = 0; i < hl->nservers && rc == 0; i++) {
        struct http_server *srv = &hl->servers[i];

        for (size_t k = 0; k < srv->nfds && rc == 0; k++) {
            rc = ioloop_add_handler(loop, srv->fds[k], IOLOOP_READ,
                                    on_accept, srv);
            if (rc < 0) {
                snprintf(err, errlen, "%s.listen[%zu]: %s", srv->spec->where,
                         k, strerror(-rc));
            }
        }
    }
    ioloop__set_owner(loop, previous);
    return rc;
}

void
ioloop__http_servers_drain(ioloop_loop_t *loop)
{
    struct http_loop *hl = http_loop(loop);

    if (hl == NULL || hl->draining) {
        return;
    }
    hl->draining = true;
    for (size_t i = 0; i < hl->nservers; i++) {
        server_listeners_close(&hl->servers[i]);
    }
    ioloop__http_conns_drain(hl);
}

size_t
ioloop__http_servers_connections(ioloop_loop_t *loop)
{
    struct http_loop *hl = http_loop(loop);

    return hl != NULL ? hl->nconns : 0;
}

void
ioloop__http_servers_reload(ioloop_loop_t *loop)
{
    struct http_loop *hl = http_loop(loop);
    char why[512];

    for (size_t i = 0; hl != NULL && i < hl->nservers; i++) {
        struct http_server *srv = &hl->servers[i];

        ioloop__http_record_reload(srv);
        if (srv->tls != NULL
            && ioloop__tls_reload(srv->tls, why, sizeof(why)) < 0) {
            char line[768];

            tls_error(srv->spec, why, line, sizeof(line));
            IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                       "%s (the previous certificate stays in use)", line);
        }
    }
}

size_t
ioloop__http_release_instance(ioloop_loop_t *loop, ioloop_instance_t *inst)
{
    struct http_loop *hl = loop != NULL ? http_loop(loop) : NULL;
    ioloop_http_request_t *req, *next;
    struct http_handler **pp;
    struct http_conn *c, *cnext;
    size_t n = 0;

    if (hl == NULL) {
        return 0;
    }
    /* Its requests: the host finishes them (503 when nothing was sent). */
    for (req = hl->live; req != NULL; req = next) {
        next = req->live_next;
        if (req->inst != inst || (req->flags & REQ_FINISHED)) {
            continue;
        }
        n++;
        req->on_close = NULL;
        req->on_flush = NULL;
        req->on_end = NULL;
        req->on_data = NULL;
        if (req->conn != NULL && !(req->flags & (REQ_GONE | REQ_DONE))) {
            if (!(req->flags & REQ_HEAD_SENT)) {
                ioloop__http_respond_error(req, 503);
            } else {
                req->conn->flags |= CONN_DEAD; /* cut off mid-body */
                req->flags |= REQ_DONE;
            }
        }
        req->flags |= REQ_FINISHED;
        ioloop__http_request_release(req);
    }
    /* Requests whose handler has not run yet: the host answers them. */
    for (c = hl->conns; c != NULL; c = c->next) {
        req = ioloop__http_conn_cur(c);
        if (req != NULL && req->handler != NULL && req->handler->inst == inst
            && !(req->flags & REQ_HANDLED)) {
            req->handler = NULL;
            req->status = 503;
        }
    }
    for (c = hl->conns; c != NULL; c = cnext) {
        cnext = c->next;
        ioloop__http_conn_kick(c);
    }
    for (pp = &hl->handlers; *pp != NULL;) {
        struct http_handler *h = *pp;

        if (h->inst != inst) {
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        handler_free(hl, h);
    }
    if (n > 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, inst->owner.name,
                   "stopped with %zu unfinished HTTP request(s): answered "
                   "503", n);
    }
    return n;
}

/* Unbinds h from its routes and frees it (and its own route). */
static void
handler_free(struct http_loop *hl, struct http_handler *h)
{
    for (size_t i = 0; i < hl->nservers; i++) {
        struct http_routes *t = &hl->servers[i].routes;

        for (size_t b = 0; b < t->nbuckets; b++) {
            for (struct http_route *r = t->buckets[b]; r != NULL;
                 r = r->next) {
                if (r->handler == h && r->spec != NULL) {
                    r->handler = NULL;
                }
            }
        }
    }
    if (h->route != NULL) {
        for (size_t i = 0; i < hl->nservers; i++) {
            if (ioloop__http_routes_get(&hl->servers[i].routes, h->route->key,
                                        h->route->len, h->route->prefix)
                == h->route) {
                ioloop__http_routes_del(&hl->servers[i].routes, h->route);
                break;
            }
        }
        free(h->route);
    }
    free(h->allow);
    free(h);
}

void
ioloop__http_servers_free(ioloop_loop_t *loop)
{
    struct http_loop *hl = http_loop(loop);

    if (hl == NULL) {
        return;
    }
    while (hl->conns != NULL) {
        ioloop__http_conn_close(hl->conns);
    }
    while (hl->live != NULL) {
        ioloop__http_request_free(hl->live);
    }
    while (hl->handlers != NULL) {
        struct http_handler *h = hl->handlers;

        hl->handlers = h->next;
        handler_free(hl, h);
    }
    for (size_t i = 0; i < hl->nservers; i++) {
        server_free(&hl->servers[i]);
    }
    ioloop__http_request_spare_free(hl);
    free(hl->servers);
    free(hl->head);
    hl->servers = NULL;
    hl->nservers = 0;
    hl->head = NULL;
    hl->draining = false;
}

static void
slot_free(ioloop_loop_t *loop, void *data)
{
    ioloop__http_servers_free(loop);
    free(data);
}

int
ioloop__http_handle(ioloop_instance_t *inst,
                    const struct ioloop_http_handler *handler, char *err,
                    size_t errlen)
{
    struct http_loop *hl = http_loop(inst->loop);
    struct ioloop_http_handler hd = {0};
    struct http_server *srv = NULL;
    struct http_handler *h;
    struct http_route *r;
    const char *key;
    size_t klen;
    int rc;

    if (hl == NULL || hl->nservers == 0) {
        snprintf(err, errlen, "http_handle: the host runs no HTTP server "
                 "(no \"servers\" in the manifest)");
        return -ENOTSUP;
    }
    if (handler != NULL && handler->size > 0) {
        memcpy(&hd, handler,
               handler->size < sizeof(hd) ? handler->size : sizeof(hd));
    }
    if (hd.cb == NULL) {
        snprintf(err, errlen, "http_handle: cb is required");
        return -EINVAL;
    }
    if (hd.server == NULL && hd.path == NULL && hd.prefix == NULL) {
        for (h = hl->handlers; h != NULL; h = h->next) {
            if (h->inst == inst && h->route == NULL) {
                snprintf(err, errlen, "http_handle: the instance already "
                         "has its handler for the manifest's routes");
                return -EEXIST;
            }
        }
    } else {
        if (hd.server == NULL || (hd.path == NULL) == (hd.prefix == NULL)) {
            snprintf(err, errlen, "http_handle: a route of its own needs a "
                     "server and exactly one of path and prefix");
            return -EINVAL;
        }
        key = hd.path != NULL ? hd.path : hd.prefix;
        if (key[0] != '/') {
            snprintf(err, errlen, "http_handle: \"%s\" must start with '/'",
                     key);
            return -EINVAL;
        }
        for (size_t i = 0; i < hl->nservers; i++) {
            if (strcmp(hl->servers[i].spec->name, hd.server) == 0) {
                srv = &hl->servers[i];
            }
        }
        if (srv == NULL) {
            snprintf(err, errlen, "http_handle: no server \"%s\"", hd.server);
            return -ENOENT;
        }
        klen = strlen(key);
        if (ioloop__http_routes_get(&srv->routes, key, klen,
                                    hd.prefix != NULL) != NULL) {
            snprintf(err, errlen, "http_handle: server \"%s\" already routes "
                     "%s \"%s\"", hd.server,
                     hd.prefix != NULL ? "prefix" : "path", key);
            return -EEXIST;
        }
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "http_handle: out of memory");
        return -ENOMEM;
    }
    h->inst = inst;
    h->flags = hd.flags;
    h->cb = hd.cb;
    h->arg = hd.arg;
    if (hd.methods != NULL) {
        rc = methods_parse(hd.methods, &h->methods, &h->allow);
        if (rc < 0) {
            snprintf(err, errlen, "http_handle: methods \"%s\": %s",
                     hd.methods, rc == -EINVAL ? "not a list of HTTP methods"
                                               : "out of memory");
            free(h);
            return rc;
        }
    }
    if (srv != NULL) {
        klen = strlen(key);
        r = calloc(1, sizeof(*r) + klen + 1);
        if (r != NULL) {
            r->key = memcpy((char *) (r + 1), key, klen + 1);
            r->len = klen;
            r->prefix = hd.prefix != NULL;
            r->handler = h;
        }
        if (r == NULL || ioloop__http_routes_add(&srv->routes, r) < 0) {
            free(r);
            free(h->allow);
            free(h);
            snprintf(err, errlen, "http_handle: out of memory");
            return -ENOMEM;
        }
        ioloop__http_record_route(srv, r);
        h->route = r;
    } else {
        for (size_t i = 0; i < hl->nservers; i++) {
            struct http_routes *t = &hl->servers[i].routes;

            for (size_t b = 0; b < t->nbuckets; b++) {
                for (r = t->buckets[b]; r != NULL; r = r->next) {
                    if (r->spec != NULL
                        && strcmp(r->spec->plugin, inst->owner.name) == 0) {
                        r->handler = h;
                    }
                }
            }
        }
    }
    h->next = hl->handlers;
    hl->handlers = h;
    return 0;
}

bool
ioloop__http_is_token(const char *p, size_t n)
{
    /* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" /
     * "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
    static const char extra[] = "!#$%&'*+-.^_`|~";

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) p[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9')
              || (ch != '\0' && memchr(extra, ch, sizeof(extra) - 1)))) {
            return false;
        }
    }
    return true;
}
