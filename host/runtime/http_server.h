/*
 * host/runtime/http_server.h: the host's HTTP servers (the manifest's
 * "servers"), what the app layer drives. The plugin side is the HTTP
 * group of struct ioloop_api (<ioloop/http.h>); this header is the
 * process side: create the servers from their specs before any plugin
 * init (so init can declare routes on them), start them once every
 * instance has started, drain and free them.
 *
 * A loop has its servers in a loop slot: every function takes the loop.
 */
#ifndef IOLOOP_HOST_HTTP_SERVER_H
#define IOLOOP_HOST_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ioloop/plugin.h>

/* Limits and timeouts of one server; every connection it accepts. */
struct ioloop_http_limits {
    uint32_t max_connections;  /* per process; past it a new connection
                                  is closed at once (counted, logged) */
    uint32_t max_header_size;  /* request line + headers, bytes */
    uint64_t max_body_size;    /* routes without their own */
    uint32_t max_pipeline;     /* requests read ahead of the oldest
                                  unfinished one; reading pauses past it */
    ioloop_time_t header_timeout;    /* the whole head, from its first
                                        byte (from accept, for the
                                        first request): 408 */
    ioloop_time_t body_timeout;      /* between two reads of a body */
    ioloop_time_t send_timeout;      /* between two writes the client
                                        takes */
    ioloop_time_t keepalive_timeout; /* idle between requests */
};

/* The access log's line format. */
enum ioloop_http_log_format {
    IOLOOP_HTTP_LOG_COMMON, /* NCSA common log format, as nginx's */
    IOLOOP_HTTP_LOG_JSON    /* one JSON object per line */
};

/* One route the manifest gives: exactly one of path and prefix. */
struct ioloop_http_route_spec {
    const char *path;       /* exact path, or NULL */
    const char *prefix;     /* prefix, or NULL */
    const char *plugin;     /* the instance's manifest name */
    const char *methods;    /* "GET,POST", or NULL: the handler's */
    uint64_t max_body_size; /* 0: the server's */
    const char *where;      /* its JSON path, "servers[0].routes[1]" */
};

/* One server of the manifest, validated (manifest.c). */
struct ioloop_http_server_spec {
    const char *name;            /* unique among the servers */
    const char *where;           /* "servers[0]" */
    const char *const *listen;   /* "HOST:PORT" / "[V6]:PORT" each */
    size_t nlisten;
    int backlog;                 /* <= 0: SOMAXCONN */
    struct ioloop_http_limits limits;
    /* TLS: cert NULL means plain HTTP. ALPN offers "http/1.1". */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_min_version; /* "1.2" or "1.3"; NULL: "1.2" */
    /* Access log: path NULL means none ("-": stderr). */
    const char *access_log;
    enum ioloop_http_log_format access_log_format;
    const struct ioloop_http_route_spec *routes;
    size_t nroutes;
};

/*
 * Creates the loop's servers: listening sockets (through the socket
 * helpers, so workers get them from the master and --check only
 * validates), TLS contexts, access logs, the manifest's routes (their
 * handlers come later, from http_handle). Nothing is accepted before
 * ioloop__http_servers_start. Returns 0 or -errno with one line in err
 * naming the place ("servers[0].tls.cert: /x/cert.pem: No such file or
 * directory"); on failure nothing is left behind.
 */
int ioloop__http_servers_create(ioloop_loop_t *loop,
                                const struct ioloop_http_server_spec *specs,
                                size_t n, char *err, size_t errlen);

struct ioloop_plugin_set;

/*
 * After every instance's init: checks that each manifest route's
 * instance registered its handler ("servers[0].routes[1]: plugin \"kv\"
 * registers no HTTP handler"), then starts accepting. A route to an
 * instance of set that the master quarantined (its init never ran) is
 * kept, answered 503, with one warning. Returns 0 or -errno with err.
 */
int ioloop__http_servers_start(ioloop_loop_t *loop,
                               const struct ioloop_plugin_set *set,
                               char *err, size_t errlen);

/* Graceful stop: stop accepting; every response from now on closes its
 * connection, idle connections close. */
void ioloop__http_servers_drain(ioloop_loop_t *loop);

/* Connections still open on the loop's servers (a drain waits for 0). */
size_t ioloop__http_servers_connections(ioloop_loop_t *loop);

/* SIGHUP: re-reads every server's certificate and key (established
 * connections keep theirs; on failure the old ones stay, and one line
 * naming the file is logged) and reopens the access logs. */
void ioloop__http_servers_reload(ioloop_loop_t *loop);

/*
 * An instance is stopping (after its fini, or a failed init): its
 * handlers and routes go, and its unfinished requests are answered 503
 * (with one warning saying how many). Returns how many it had.
 */
size_t ioloop__http_release_instance(ioloop_loop_t *loop,
                                     ioloop_instance_t *inst);

/* Closes every connection and frees the servers (the loop has stopped).
 * Also done by the loop slot when the loop is freed. */
void ioloop__http_servers_free(ioloop_loop_t *loop);

#endif /* IOLOOP_HOST_HTTP_SERVER_H */
