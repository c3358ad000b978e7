/*
 * host/app/manifest_servers.c: the manifest's "servers". The tables below
 * are read by the config engine (types, ranges, defaults, the help the
 * reference shows); ioloop__manifest_servers_build then checks what no
 * table can say and builds the struct ioloop_http_server_spec array that
 * host/runtime/http_server.h takes. Every string a spec points to lives
 * in the manifest's values.
 *
 * Defaults follow nginx where it has one (keepalive_timeout 75s,
 * client_max_body_size 1m, an 8k header buffer) and are shorter where
 * nginx's 60 s invites slow clients to hold connections (header 10 s,
 * body and send 30 s).
 */
#include "manifest_servers.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <jansson.h>

#include "json_path.h"
#include "manifest.h"
#include "net.h"

/* A server's name is in its access log lines and metric labels. */
#define SERVERS_NAME_MAX  64
#define SERVERS_QUOTE_MAX 128
#define SERVERS_PATH_MAX  256

/* One entry of "routes" as the table fills it. */
struct manifest_route {
    const char *path;
    const char *prefix;
    const char *plugin;
    struct ioloop_config_list methods;
    uint64_t max_body_size;
};

struct ioloop__manifest_server {
    const char *name;
    const char **listen;
    size_t nlisten;
    int64_t backlog;
    int64_t max_connections;
    uint64_t max_header_size;
    uint64_t max_body_size;
    int64_t max_pipeline;
    ioloop_time_t header_timeout;
    ioloop_time_t body_timeout;
    ioloop_time_t send_timeout;
    ioloop_time_t keepalive_timeout;
    const char *tls_cert;
    const char *tls_key;
    int tls_min_version;
    const char *access_log;
    int access_log_format;
    struct manifest_route *routes;
    size_t nroutes;
};

/* A listen address of some server, to find one given twice. */
struct servers_addr {
    struct sockaddr_storage ss;
    char where[SERVERS_PATH_MAX];
};

static int servers_check_name(const struct ioloop__config_hook *h,
                              const json_t *v);
static int servers_check_listen(const struct ioloop__config_hook *h,
                                const json_t *v);
static int servers_check_log_path(const struct ioloop__config_hook *h,
                                  const json_t *v);
static int servers_build_one(struct ioloop_manifest *m, size_t i,
                             struct ioloop_http_server_spec *spec,
                             struct ioloop__config_error *e);
static int servers_build_route(struct ioloop_manifest *m, size_t i,
                               size_t r, struct ioloop_http_route_spec *spec,
                               struct ioloop__config_error *e);
static int servers_route_plugin(const struct ioloop_manifest *m,
                                const struct manifest_route *rt,
                                const char *where,
                                struct ioloop__config_error *e);
static int servers_check_target(const char *s, const char *path,
                                struct ioloop__config_error *e);
static int servers_methods(const struct manifest_route *rt, const char *where,
                           struct ioloop__config *c, const char **out,
                           struct ioloop__config_error *e);
static int servers_addrs(const struct ioloop_manifest *m,
                         struct ioloop__config_error *e);
static bool servers_addr_clash(const struct sockaddr_storage *a,
                               const struct sockaddr_storage *b);
static bool servers_is_token(const char *s);
static bool servers_is_method(const char *s);

static const char *const servers_tls_versions[] = {"1.2", "1.3", NULL};
static const char *const servers_log_formats[] = {"common", "json", NULL};

static const struct ioloop__config_ext servers_name_ext = {
    NULL, 0, 0, servers_check_name, "string"
};
static const struct ioloop__config_ext servers_listen_ext = {
    NULL, 0, offsetof(struct ioloop__manifest_server, nlisten),
    servers_check_listen, "address or list of addresses"
};
static const struct ioloop__config_ext servers_log_path_ext = {
    NULL, 0, 0, servers_check_log_path, "path or \"-\""
};

/* "tls": its keys fill the server's struct itself (offset 0). */
static const struct ioloop_config_field servers_tls_schema[] = {
    IOLOOP__CONFIG_AT("cert", IOLOOP_CONFIG_T_PATH,
                      struct ioloop__manifest_server, tls_cert, const char *,
                      0, 0, NULL, NULL, 0,
                      "PEM certificate chain, relative to the manifest's "
                      "folder; needs key. Re-read on SIGHUP."),
    IOLOOP__CONFIG_AT("key", IOLOOP_CONFIG_T_PATH,
                      struct ioloop__manifest_server, tls_key, const char *,
                      0, 0, NULL, NULL, 0,
                      "PEM private key of cert, relative to the "
                      "manifest's folder; needs cert."),
    IOLOOP__CONFIG_AT("min_version", IOLOOP_CONFIG_T_ENUM,
                      struct ioloop__manifest_server, tls_min_version, int,
                      0, 0, servers_tls_versions, "1.2", 0,
                      "The oldest TLS version accepted. ALPN offers "
                      "http/1.1."),
    IOLOOP_CONFIG_END,
};

static const struct ioloop__config_ext servers_tls_ext = {
    servers_tls_schema, 0, 0, NULL, NULL
};

/* "access_log": its keys fill the server's struct itself (offset 0). */
static const struct ioloop_config_field servers_log_schema[] = {
    IOLOOP__CONFIG_AT("path", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop__manifest_server, access_log,
                      const char *, 0, 0,
                      IOLOOP__CONFIG_EXT(&servers_log_path_ext), NULL,
                      IOLOOP_CONFIG_REQUIRED,
                      "The log file, opened for appending (relative to the "
                      "manifest's folder), or \"-\": stderr. Reopened on "
                      "SIGHUP, after logrotate renamed it."),
    IOLOOP__CONFIG_AT("format", IOLOOP_CONFIG_T_ENUM,
                      struct ioloop__manifest_server, access_log_format, int,
                      0, 0, servers_log_formats, "common", 0,
                      "\"common\": nginx's combined format; \"json\": one "
                      "object per line (time, remote_ip, method, target, "
                      "version, status, bytes, duration_us, referer, "
                      "user_agent, server)."),
    IOLOOP_CONFIG_END,
};

static const struct ioloop__config_ext servers_log_ext = {
    servers_log_schema, 0, 0, NULL, NULL
};

/* One entry of "routes". */
static const struct ioloop_config_field servers_route_schema[] = {
    IOLOOP_CONFIG_STRING(struct manifest_route, path, NULL, 0,
                         "An exact path (\"/\", \"/healthz\"): matches that "
                         "path only, query aside. Give path or prefix, not "
                         "both."),
    IOLOOP_CONFIG_STRING(struct manifest_route, prefix, NULL, 0,
                         "A path prefix (\"/api/\"): matches every path "
                         "that starts with it. An exact path wins over any "
                         "prefix, then the longest prefix wins."),
    IOLOOP_CONFIG_STRING(struct manifest_route, plugin, NULL,
                         IOLOOP_CONFIG_REQUIRED,
                         "The instance (a name in plugins) whose HTTP "
                         "handler answers; one that registers none is "
                         "refused at start."),
    IOLOOP_CONFIG_LIST(struct manifest_route, methods, 0,
                       "The methods routed here (\"GET\", \"PUT\"; the "
                       "parser's method names); others get 405. Absent: "
                       "every method goes to the handler."),
    IOLOOP_CONFIG_SIZE(struct manifest_route, max_body_size, 1,
                       INT64_C(1) << 40, NULL, 0,
                       "The largest request body of this route (413 past "
                       "it); absent: the server's."),
    IOLOOP_CONFIG_END,
};

static const struct ioloop__config_ext servers_routes_ext = {
    servers_route_schema, sizeof(struct manifest_route),
    offsetof(struct ioloop__manifest_server, nroutes), NULL, NULL
};

/* One entry of "servers". */
static const struct ioloop_config_field servers_schema[] = {
    IOLOOP__CONFIG_AT("name", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop__manifest_server, name, const char *, 0,
                      0, IOLOOP__CONFIG_EXT(&servers_name_ext), NULL,
                      IOLOOP_CONFIG_REQUIRED,
                      "Server name, unique: 1 to 64 of [a-z0-9_-]; in its "
                      "access log and metrics."),
    IOLOOP__CONFIG_AT("listen", IOLOOP__CONFIG_T_CUSTOM,
                      struct ioloop__manifest_server, listen, const char **,
                      0, 0, IOLOOP__CONFIG_EXT(&servers_listen_ext), NULL,
                      IOLOOP_CONFIG_REQUIRED,
                      "\"HOST:PORT\" or \"[V6]:PORT\", or a list of them; "
                      "no address twice across the servers ([::] and "
                      "0.0.0.0 take the port on every address; port 0 is "
                      "an ephemeral port, never a clash)."),
    IOLOOP_CONFIG_INT(struct ioloop__manifest_server, backlog, 0, 65535, "0",
                      0, "listen(2) backlog; 0: SOMAXCONN."),
    IOLOOP_CONFIG_INT(struct ioloop__manifest_server, max_connections, 1,
                      1000000, "10000", 0,
                      "Open connections per process; past it a new "
                      "connection is closed at once."),
    IOLOOP_CONFIG_SIZE(struct ioloop__manifest_server, max_header_size,
                       1024, 80 * 1024, "8KiB", 0,
                       "Request line and headers together; 431 past it "
                       "(80KiB is the parser's own limit)."),
    IOLOOP_CONFIG_SIZE(struct ioloop__manifest_server, max_body_size, 1,
                       INT64_C(1) << 40, "1MiB", 0,
                       "The largest request body (413 past it), for "
                       "routes without their own."),
    IOLOOP_CONFIG_INT(struct ioloop__manifest_server, max_pipeline, 1, 1024,
                      "16", 0,
                      "Pipelined requests read ahead of the oldest "
                      "unanswered one; reading pauses past it."),
    IOLOOP_CONFIG_DURATION(struct ioloop__manifest_server, header_timeout,
                           IOLOOP_NS_PER_MS, 3600 * IOLOOP_NS_PER_S, "10s",
                           0, "Time to receive a request's whole head, "
                           "from its first byte (from accept for the "
                           "first); 408 past it."),
    IOLOOP_CONFIG_DURATION(struct ioloop__manifest_server, body_timeout,
                           IOLOOP_NS_PER_MS, 3600 * IOLOOP_NS_PER_S, "30s",
                           0, "Longest wait between two reads of a request "
                           "body."),
    IOLOOP_CONFIG_DURATION(struct ioloop__manifest_server, send_timeout,
                           IOLOOP_NS_PER_MS, 3600 * IOLOOP_NS_PER_S, "30s",
                           0, "Longest wait for the client to take more of "
                           "a response."),
    IOLOOP_CONFIG_DURATION(struct ioloop__manifest_server, keepalive_timeout,
                           IOLOOP_NS_PER_MS, 3600 * IOLOOP_NS_PER_S, "75s",
                           0, "How long an idle keep-alive connection "
                           "stays open between requests."),
    {"tls", IOLOOP__CONFIG_T_OBJECT, 0, 0, 0, 0,
     IOLOOP__CONFIG_EXT(&servers_tls_ext), NULL,
     "Serve HTTPS: cert and key (both required), min_version. Absent: "
     "plain HTTP."},
    {"access_log", IOLOOP__CONFIG_T_OBJECT, 0, 0, 0, 0,
     IOLOOP__CONFIG_EXT(&servers_log_ext), NULL,
     "One line per request: path, format. Absent: no access log."},
    IOLOOP__CONFIG_AT("routes", IOLOOP__CONFIG_T_OBJECTS,
                      struct ioloop__manifest_server, routes,
                      struct manifest_route *, 0, 0,
                      IOLOOP__CONFIG_EXT(&servers_routes_ext), NULL,
                      IOLOOP_CONFIG_REQUIRED,
                      "Which instance answers which path; at least one. "
                      "Refused as unreachable: a path or a prefix given "
                      "twice in one server, one with '?', '#' or a byte no "
                      "request path holds, an empty methods list or a "
                      "method the parser does not know. Overlapping "
                      "prefixes are fine (the longest wins); a route to an "
                      "instance that registers no HTTP handler is refused "
                      "at start."),
    IOLOOP_CONFIG_END,
};

const struct ioloop__config_ext ioloop__manifest_servers_ext = {
    servers_schema, sizeof(struct ioloop__manifest_server),
    offsetof(struct ioloop_manifest, nserver_conf), NULL, NULL
};

int
ioloop__manifest_servers_build(struct ioloop_manifest *m,
                               struct ioloop__config_error *e)
{
    const struct ioloop__manifest_server *raw = m->server_conf;
    struct ioloop_http_server_spec *specs;
    size_t n = m->nserver_conf;
    char q[SERVERS_QUOTE_MAX];

    if (n == 0) {
        return 0;
    }
    specs = ioloop__config_alloc(&m->values, n * sizeof(*specs));
    if (specs == NULL) {
        return ioloop__config_fail(e, "servers", "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(raw[j].name, raw[i].name) == 0) {
                char at[SERVERS_PATH_MAX];

                snprintf(at, sizeof(at), "servers[%zu].name", i);
                ioloop__json_quote(q, sizeof(q), raw[i].name);
                return ioloop__config_fail(e, at, "duplicate of "
                                           "servers[%zu].name %s", j, q);
            }
        }
        if (servers_build_one(m, i, &specs[i], e) != 0) {
            return -1;
        }
    }
    if (servers_addrs(m, e) != 0) {
        return -1;
    }
    m->servers = specs;
    m->nservers = n;
    return 0;
}

/* servers[i].name: 1 to SERVERS_NAME_MAX bytes of [a-z0-9_-]. */
static int
servers_check_name(const struct ioloop__config_hook *h, const json_t *v)
{
    char q[SERVERS_QUOTE_MAX];
    const char *s;
    size_t len;

    if (v == NULL) {
        return ioloop__config_fail(h->e, h->base, "missing key \"name\"");
    }
    if (!json_is_string(v)) {
        return ioloop__config_fail(h->e, h->path, "expected a string, got %s",
                                   ioloop__config_json_type(v));
    }
    s = json_string_value(v);
    len = strlen(s);
    if (len == 0 || len > SERVERS_NAME_MAX
        || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
        ioloop__json_quote(q, sizeof(q), s);
        return ioloop__config_fail(h->e, h->path, "invalid server name %s "
                                   "(expected 1 to %d of a-z, 0-9, '_', "
                                   "'-')", q, SERVERS_NAME_MAX);
    }
    *(const char **) h->member = ioloop__config_strdup(h->c, s);
    if (*(const char **) h->member == NULL) {
        return ioloop__config_fail(h->e, h->path, "out of memory");
    }
    return 0;
}

/* servers[i].listen: an address or a non-empty array of them, each
 * checked as listen_tcp checks it. */
static int
servers_check_listen(const struct ioloop__config_hook *h, const json_t *v)
{
    const struct ioloop__config_ext *x = ioloop__config_field_ext(h->fd);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    char at[SERVERS_PATH_MAX], why[256];
    struct sockaddr_storage ss;
    socklen_t sslen;
    const char **list;

    if (v == NULL) {
        return ioloop__config_fail(h->e, h->base, "missing key \"listen\"");
    }
    if (!json_is_string(v) && !json_is_array(v)) {
        return ioloop__config_fail(h->e, h->path, "expected an address or an "
                                   "array of addresses, got %s",
                                   ioloop__config_json_type(v));
    }
    if (n == 0) {
        return ioloop__config_fail(h->e, h->path, "empty list");
    }
    list = ioloop__config_alloc(h->c, n * sizeof(*list));
    if (list == NULL) {
        return ioloop__config_fail(h->e, h->path, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_is_array(v) ? json_array_get(v, i) : v;

        if (json_is_array(v)) {
            snprintf(at, sizeof(at), "%s[%zu]", h->path, i);
        } else {
            snprintf(at, sizeof(at), "%s", h->path);
        }
        if (!json_is_string(item)) {
            return ioloop__config_fail(h->e, at, "expected an address "
                                       "(\"HOST:PORT\" or \"[IPV6]:PORT\"), "
                                       "got %s",
                                       ioloop__config_json_type(item));
        }
        if (ioloop__listen_addr_parse(json_string_value(item), &ss, &sslen,
                                      why, sizeof(why)) < 0) {
            return ioloop__config_fail(h->e, at, "%s", why);
        }
        list[i] = ioloop__config_strdup(h->c, json_string_value(item));
        if (list[i] == NULL) {
            return ioloop__config_fail(h->e, at, "out of memory");
        }
    }
    *(const char ***) h->member = list;
    *(size_t *) ((char *) h->obj + x->count_offset) = n;
    return 0;
}

/* access_log.path: "-" (stderr), or a path relative to the manifest's
 * folder. Absent is told apart by servers_build_one, which sees whether
 * "access_log" was given at all. */
static int
servers_check_log_path(const struct ioloop__config_hook *h, const json_t *v)
{
    const char *s;
    size_t need;
    char *p;

    if (v == NULL) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return ioloop__config_fail(h->e, h->path, "expected a path or \"-\", "
                                   "got %s", json_is_string(v) ? "\"\""
                                   : ioloop__config_json_type(v));
    }
    s = json_string_value(v);
    if (strcmp(s, "-") == 0 || s[0] == '/') {
        p = ioloop__config_strdup(h->c, s);
    } else {
        need = strlen(h->dir) + 1 + strlen(s) + 1;
        p = ioloop__config_alloc(h->c, need);
        if (p != NULL) {
            snprintf(p, need, "%s/%s", h->dir, s);
        }
    }
    if (p == NULL) {
        return ioloop__config_fail(h->e, h->path, "out of memory");
    }
    *(const char **) h->member = p;
    return 0;
}

/* Checks servers[i] and fills its spec. */
static int
servers_build_one(struct ioloop_manifest *m, size_t i,
                  struct ioloop_http_server_spec *spec,
                  struct ioloop__config_error *e)
{
    const struct ioloop__manifest_server *s = &m->server_conf[i];
    const json_t *js = json_array_get(json_object_get(m->root, "servers"),
                                      i);
    struct ioloop__config *c = &m->values;
    char where[48], at[SERVERS_PATH_MAX];
    struct ioloop_http_route_spec *routes;

    snprintf(where, sizeof(where), "servers[%zu]", i);
    spec->where = ioloop__config_strdup(c, where);
    if (spec->where == NULL) {
        return ioloop__config_fail(e, where, "out of memory");
    }
    snprintf(at, sizeof(at), "%s.tls", where);
    if (json_object_get(js, "tls") != NULL
        && (s->tls_cert == NULL || s->tls_key == NULL)) {
        return ioloop__config_fail(e, at, "missing key \"%s\" (TLS needs "
                                   "cert and key)",
                                   s->tls_cert == NULL ? "cert" : "key");
    }
    snprintf(at, sizeof(at), "%s.access_log", where);
    if (json_object_get(js, "access_log") != NULL && s->access_log == NULL) {
        return ioloop__config_fail(e, at, "missing key \"path\"");
    }
    snprintf(at, sizeof(at), "%s.routes", where);
    if (s->nroutes == 0) {
        return ioloop__config_fail(e, at, "empty list (a server without "
                                   "routes could only answer 404)");
    }
    routes = ioloop__config_alloc(c, s->nroutes * sizeof(*routes));
    if (routes == NULL) {
        return ioloop__config_fail(e, at, "out of memory");
    }
    for (size_t r = 0; r < s->nroutes; r++) {
        if (servers_build_route(m, i, r, &routes[r], e) != 0) {
            return -1;
        }
    }

    spec->name = s->name;
    spec->listen = s->listen;
    spec->nlisten = s->nlisten;
    spec->backlog = (int) s->backlog;
    spec->limits.max_connections = (uint32_t) s->max_connections;
    spec->limits.max_header_size = (uint32_t) s->max_header_size;
    spec->limits.max_body_size = s->max_body_size;
    spec->limits.max_pipeline = (uint32_t) s->max_pipeline;
    spec->limits.header_timeout = s->header_timeout;
    spec->limits.body_timeout = s->body_timeout;
    spec->limits.send_timeout = s->send_timeout;
    spec->limits.keepalive_timeout = s->keepalive_timeout;
    spec->tls_cert = s->tls_cert;
    spec->tls_key = s->tls_key;
    spec->tls_min_version = s->tls_cert != NULL
                            ? servers_tls_versions[s->tls_min_version]
                            : NULL;
    spec->access_log = s->access_log;
    spec->access_log_format = s->access_log_format == 1
                              ? IOLOOP_HTTP_LOG_JSON
                              : IOLOOP_HTTP_LOG_COMMON;
    spec->routes = routes;
    spec->nroutes = s->nroutes;
    return 0;
}

/*
 * Checks routes[r] of servers[i] and fills its spec: exactly one of path
 * and prefix, a path a request can carry, not given before in this
 * server, an instance that serves in every worker, and methods the parser
 * knows.
 */
static int
servers_build_route(struct ioloop_manifest *m, size_t i, size_t r,
                    struct ioloop_http_route_spec *spec,
                    struct ioloop__config_error *e)
{
    const struct ioloop__manifest_server *s = &m->server_conf[i];
    const struct manifest_route *rt = &s->routes[r];
    const json_t *jr = json_array_get(
        json_object_get(json_array_get(json_object_get(m->root, "servers"),
                                       i), "routes"), r);
    struct ioloop__config *c = &m->values;
    char at[SERVERS_PATH_MAX], q[SERVERS_QUOTE_MAX];
    const char *key = rt->path != NULL ? "path" : "prefix";
    const char *value = rt->path != NULL ? rt->path : rt->prefix;

    snprintf(at, sizeof(at), "servers[%zu].routes[%zu]", i, r);
    spec->where = ioloop__config_strdup(c, at);
    if (spec->where == NULL) {
        return ioloop__config_fail(e, at, "out of memory");
    }
    if ((rt->path == NULL) == (rt->prefix == NULL)) {
        return ioloop__config_fail(e, at, "expected exactly one of \"path\" "
                                   "and \"prefix\", got %s",
                                   rt->path == NULL ? "neither" : "both");
    }
    snprintf(at, sizeof(at), "%s.%s", spec->where, key);
    if (servers_check_target(value, at, e) != 0) {
        return -1;
    }
    for (size_t j = 0; j < r; j++) {
        const char *other = rt->path != NULL ? s->routes[j].path
                                             : s->routes[j].prefix;

        if (other != NULL && strcmp(other, value) == 0) {
            ioloop__json_quote(q, sizeof(q), value);
            return ioloop__config_fail(e, at, "duplicate of "
                                       "servers[%zu].routes[%zu].%s %s (this "
                                       "route could never be reached)", i, j,
                                       key, q);
        }
    }
    if (servers_route_plugin(m, rt, spec->where, e) != 0) {
        return -1;
    }
    spec->methods = NULL;
    if (json_object_get(jr, "methods") != NULL
        && servers_methods(rt, spec->where, c, &spec->methods, e) != 0) {
        return -1;
    }
    spec->path = rt->path;
    spec->prefix = rt->prefix;
    spec->plugin = rt->plugin;
    spec->max_body_size = rt->max_body_size;
    return 0;
}

/*
 * The route's instance is in plugins, and not one_process when there are
 * workers: every worker accepts on the server's sockets, and only worker
 * 0 would have the handler.
 */
static int
servers_route_plugin(const struct ioloop_manifest *m,
                     const struct manifest_route *rt, const char *where,
                     struct ioloop__config_error *e)
{
    char at[SERVERS_PATH_MAX], q[SERVERS_QUOTE_MAX];

    snprintf(at, sizeof(at), "%s.plugin", where);
    ioloop__json_quote(q, sizeof(q), rt->plugin);
    for (size_t p = 0; p < m->nplugins; p++) {
        if (strcmp(m->plugins[p].name, rt->plugin) != 0) {
            continue;
        }
        if (m->plugins[p].one_process && m->workers > 0) {
            return ioloop__config_fail(e, at, "instance %s is one_process: "
                                       "the other workers, which accept on "
                                       "this server too, could not answer "
                                       "its route", q);
        }
        return 0;
    }
    return ioloop__config_fail(e, at, "no plugin instance named %s", q);
}

/*
 * A path or prefix as a request target's path can hold it: it starts with
 * '/', and has no '?' or '#' (the query is not part of the path) and no
 * byte a request line cannot carry (controls, spaces, non-ASCII: a
 * client sends those percent-encoded).
 */
static int
servers_check_target(const char *s, const char *path,
                     struct ioloop__config_error *e)
{
    char q[SERVERS_QUOTE_MAX];

    ioloop__json_quote(q, sizeof(q), s);
    if (s[0] != '/') {
        return ioloop__config_fail(e, path, "%s does not start with '/'", q);
    }
    for (const unsigned char *b = (const unsigned char *) s; *b != '\0';
         b++) {
        if (*b <= 0x20 || *b >= 0x7f || *b == '?' || *b == '#') {
            return ioloop__config_fail(e, path, "%s: no request path holds "
                                       "a %s (this route could never be "
                                       "reached)", q,
                                       *b == '?' ? "'?'"
                                       : *b == '#' ? "'#'"
                                       : "space, control or non-ASCII byte");
        }
    }
    return 0;
}

/* The route's methods, given: not empty, each a method the parser knows
 * and given once; joined as "GET,PUT" into *out. */
static int
servers_methods(const struct manifest_route *rt, const char *where,
                struct ioloop__config *c, const char **out,
                struct ioloop__config_error *e)
{
    char at[SERVERS_PATH_MAX], q[SERVERS_QUOTE_MAX];
    size_t len = 0;
    char *joined;

    snprintf(at, sizeof(at), "%s.methods", where);
    if (rt->methods.count == 0) {
        return ioloop__config_fail(e, at, "empty list (this route could "
                                   "never be reached)");
    }
    for (size_t i = 0; i < rt->methods.count; i++) {
        const char *m = rt->methods.items[i];

        snprintf(at, sizeof(at), "%s.methods[%zu]", where, i);
        ioloop__json_quote(q, sizeof(q), m);
        if (!servers_is_token(m)) {
            return ioloop__config_fail(e, at, "%s is not a method token",
                                       q);
        }
        if (!servers_is_method(m)) {
            return ioloop__config_fail(e, at, "unknown method %s (methods "
                                       "are upper case: GET, POST, ...)", q);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rt->methods.items[j], m) == 0) {
                return ioloop__config_fail(e, at, "%s listed twice", q);
            }
        }
        len += strlen(m) + 1;
    }
    joined = ioloop__config_alloc(c, len);
    if (joined == NULL) {
        return ioloop__config_fail(e, at, "out of memory");
    }
    len = 0;
    for (size_t i = 0; i < rt->methods.count; i++) {
        len += (size_t) sprintf(joined + len, "%s%s", i > 0 ? "," : "",
                                rt->methods.items[i]);
    }
    *out = joined;
    return 0;
}

/*
 * No address is listened on twice across the servers (two sockets on one
 * address and port cannot both listen: the second start would fail with
 * EADDRINUSE, after the first had bound). Port 0 is an ephemeral port and
 * never clashes. O(n^2) over a handful of addresses.
 */
static int
servers_addrs(const struct ioloop_manifest *m, struct ioloop__config_error *e)
{
    const struct ioloop__manifest_server *raw = m->server_conf;
    const json_t *json = json_object_get(m->root, "servers");
    size_t n = m->nserver_conf;
    struct servers_addr *seen;
    size_t total = 0, k = 0;
    socklen_t sslen;
    char why[256];
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        total += raw[i].nlisten;
    }
    seen = calloc(total, sizeof(*seen));
    if (seen == NULL) {
        return ioloop__config_fail(e, "servers", "out of memory");
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *jl = json_object_get(json_array_get(json, i), "listen");

        for (size_t l = 0; l < raw[i].nlisten && rc == 0; l++, k++) {
            struct servers_addr *a = &seen[k];

            if (json_is_array(jl)) {
                snprintf(a->where, sizeof(a->where),
                         "servers[%zu].listen[%zu]", i, l);
            } else {
                snprintf(a->where, sizeof(a->where), "servers[%zu].listen",
                         i);
            }
            if (ioloop__listen_addr_parse(raw[i].listen[l], &a->ss, &sslen,
                                          why, sizeof(why)) < 0) {
                rc = ioloop__config_fail(e, a->where, "%s", why);
                break;
            }
            for (size_t j = 0; j < k; j++) {
                if (servers_addr_clash(&seen[j].ss, &a->ss)) {
                    rc = ioloop__config_fail(e, a->where, "\"%s\" is also "
                                             "listened on at %s",
                                             raw[i].listen[l],
                                             seen[j].where);
                    break;
                }
            }
        }
    }
    free(seen);
    return rc;
}

/* Whether two listening sockets on a and b could not both be bound: the
 * same port (not 0), and the same address, or a wildcard taking the
 * other's (a v6 wildcard takes IPv4 too: the host does not set
 * IPV6_V6ONLY, and Linux defaults to dual stack). */
static bool
servers_addr_clash(const struct sockaddr_storage *a,
                   const struct sockaddr_storage *b)
{
    const struct sockaddr_in *a4 = (const struct sockaddr_in *) a;
    const struct sockaddr_in *b4 = (const struct sockaddr_in *) b;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *) a;
    const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *) b;
    in_port_t pa = a->ss_family == AF_INET ? a4->sin_port : a6->sin6_port;
    in_port_t pb = b->ss_family == AF_INET ? b4->sin_port : b6->sin6_port;
    bool wa = a->ss_family == AF_INET
              ? a4->sin_addr.s_addr == htonl(INADDR_ANY)
              : IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
    bool wb = b->ss_family == AF_INET
              ? b4->sin_addr.s_addr == htonl(INADDR_ANY)
              : IN6_IS_ADDR_UNSPECIFIED(&b6->sin6_addr);

    if (pa != pb || pa == 0) {
        return false;
    }
    if (a->ss_family != b->ss_family) {
        return (a->ss_family == AF_INET6 && wa)
               || (b->ss_family == AF_INET6 && wb);
    }
    if (wa || wb) {
        return true;
    }
    return a->ss_family == AF_INET
           ? a4->sin_addr.s_addr == b4->sin_addr.s_addr
           : memcmp(&a6->sin6_addr, &b6->sin6_addr,
                    sizeof(a6->sin6_addr)) == 0;
}

/* RFC 9110 token: 1*tchar. */
static bool
servers_is_token(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz";

    return s[0] != '\0' && strspn(s, tchar) == strlen(s);
}

/* A method libhttp-parser accepts: a request with any other is refused
 * before routing, so a route for it could never be reached. */
static bool
servers_is_method(const char *s)
{
    static const char *const methods[] = {
#define SERVERS_METHOD(num, name, string) #string,
        HTTP_METHOD_MAP(SERVERS_METHOD)
#undef SERVERS_METHOD
    };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i], s) == 0) {
            return true;
        }
    }
    return false;
}
