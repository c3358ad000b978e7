/*
 * ioloop/http.h: the host's HTTP/1.1 server, as plugins see it (since
 * ABI 1.1). The functions are members of struct ioloop_api
 * (<ioloop/plugin.h>, group "HTTP"); this header has their types.
 *
 * The host owns the HTTP: the manifest's "servers" listen (plain or TLS),
 * parse requests with libhttp-parser in strict mode, enforce every limit
 * and timeout, keep connections alive, answer 400/404/405/408/413/431/505
 * themselves, keep the access log and count every route. A plugin only
 * answers requests, the way a tornado RequestHandler does:
 *
 *     static void get(ioloop_http_request_t *req, void *arg)
 *     {
 *         api->http_finish(req, "hello", 5);
 *     }
 *     ... in init: api->http_handle(inst, &(struct ioloop_http_handler) {
 *             .size = sizeof(struct ioloop_http_handler), .cb = get }, ...);
 *
 * Which requests reach a handler: the manifest's routes name plugin
 * instances ({"path": "/", "plugin": "hello"}, {"prefix": "/api/",
 * "plugin": "kv"}), and each such instance registers one handler with
 * neither server nor path nor prefix set; or a plugin declares a route of
 * its own on a named server. The longest matching route wins, an exact
 * path before a prefix of the same length.
 *
 * The life of a request: the handler runs once the head is parsed and
 * (unless IOLOOP_HTTP_STREAM_BODY) the whole body is buffered. It answers
 * at once or later, from a timer, a callback or another connection's
 * event (asynchronous handlers): the request stays valid until the
 * plugin calls http_finish, exactly once, whatever happens to the client.
 * If the client goes away first, on_close runs (see http_on_close), writes
 * fail with -EPIPE and http_finish only frees the request. Pipelined
 * requests may be finished in any order: responses go out in request
 * order. An instance that is stopped with requests unfinished has them
 * finished with 503 by the host (with a warning).
 *
 * Every function here runs on the loop thread only. Strings the request
 * returns are NUL-terminated and stay valid until http_finish.
 */
#ifndef IOLOOP_HTTP_H
#define IOLOOP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One request and its response. Opaque. */
typedef struct ioloop_http_request_s ioloop_http_request_t;

/* A request handler, and the shape of the request's other notifications
 * (end of a streamed body, client gone, flush done). */
typedef void (*ioloop_http_cb)(ioloop_http_request_t *req, void *arg);

/* Receives a piece of a streamed body: valid only during the call. */
typedef void (*ioloop_http_body_cb)(ioloop_http_request_t *req,
                                    const char *data, size_t len, void *arg);

/* struct ioloop_http_handler.flags */
/* Run the handler as soon as the head is parsed and hand it the body in
 * pieces (http_read_body) instead of buffering it: for large uploads.
 * The route's max_body_size still bounds the total. */
#define IOLOOP_HTTP_STREAM_BODY 0x01u

/* What http_handle registers; zero members take the default. */
struct ioloop_http_handler {
    /* sizeof(struct ioloop_http_handler), for forward compatibility. */
    size_t size;
    /*
     * Where: server NULL, path NULL and prefix NULL register the
     * instance's handler for the routes the manifest gives it (one such
     * handler per instance). Otherwise server names a manifest server and
     * exactly one of path (an exact path: "/healthz") or prefix ("/api/",
     * matched byte for byte against the start of the path) is set: a
     * route the plugin declares itself.
     */
    const char *server;
    const char *path;
    const char *prefix;
    /* The methods served, comma-separated ("GET,POST"); any other gets
     * 405 with an Allow header from the host. GET implies HEAD (the host
     * drops the body). NULL: every method. */
    const char *methods;
    /* IOLOOP_HTTP_* flags. */
    unsigned flags;
    /* The handler and its argument. Required. */
    ioloop_http_cb cb;
    void *arg;
};

/*
 * Status codes the host answers with itself: 400 (malformed request),
 * 404 (no route), 405 (method not served), 408 (head not received within
 * header_timeout; sent only before any byte of a request was answered),
 * 413 (body over max_body_size), 431 (head over max_header_size), 505
 * (HTTP major version other than 1), 503 (the instance stopped before
 * finishing). Bodies are one short line of text/plain.
 */

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_HTTP_H */
