/*
 * host/runtime/http_record.c: what the HTTP servers keep of each finished
 * request: a line in the server's access log (http_access_log.h) and a
 * count in its route's series (metrics_http.h). Both cost no syscall per
 * request: the log is buffered, and flushed by a one-shot timer armed
 * when its first line since the last flush arrives (an idle server never
 * wakes up for it), at reload and when the server goes.
 */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http_access_log.h"
#include "log.h"
#include "metrics_http.h"
#include "net.h"

/* How long a logged line may wait in the buffer. */
#define HTTP_LOG_FLUSH_DELAY IOLOOP_NS_PER_S

/* The label of requests no route matched (routes start with '/'). */
#define HTTP_NO_ROUTE "-"

/*
 * --check: whether the log could be opened for appending, creating
 * nothing: the file is writable, or it is absent and its folder is.
 */
static int
log_check(const char *path, const char *where, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int fd;

    if (strcmp(path, "-") == 0) {
        return 0;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == ENOENT) {
        snprintf(dir, sizeof(dir), "%s", path);
        if (access(dirname(dir), W_OK | X_OK) == 0) {
            return 0;
        }
    }
    snprintf(err, errlen, "%s.access_log.path: %s: %s", where, path,
             strerror(errno));
    return -errno;
}

int
ioloop__http_record_open(struct http_server *srv, char *err, size_t errlen)
{
    const struct ioloop_http_server_spec *s = srv->spec;
    char why[512];

    srv->metrics_none =
        ioloop__metrics_http_route(srv->hl->loop, s->name, HTTP_NO_ROUTE);
    if (s->access_log == NULL) {
        return 0;
    }
    if (ioloop__net_check_mode()) {
        return log_check(s->access_log, s->where, err, errlen);
    }
    srv->log = ioloop__http_access_log_open(s->access_log,
                                            s->access_log_format, why,
                                            sizeof(why));
    if (srv->log == NULL) {
        snprintf(err, errlen, "%s.access_log.path: %s", s->where, why);
        return -errno;
    }
    return 0;
}

void
ioloop__http_record_route(struct http_server *srv, struct http_route *r)
{
    r->metrics = ioloop__metrics_http_route(srv->hl->loop, srv->spec->name,
                                            r->key);
}

static int
log_flush(ioloop_loop_t *loop, void *arg)
{
    struct http_server *srv = arg;

    (void) loop;
    srv->log_flush = 0;
    ioloop__http_access_log_flush(srv->log);
    return 0;
}

void
ioloop__http_record(const ioloop_http_request_t *req)
{
    struct http_server *srv = req->srv;
    ioloop_loop_t *loop = req->hl->loop;
    ioloop_time_t took = ioloop_time(loop) - req->started;

    ioloop__metrics_http_observe(loop,
                                 req->route != NULL ? req->metrics
                                                    : srv->metrics_none,
                                 req->status, took);
    if (srv->log == NULL) {
        return;
    }
    ioloop__http_access_log_write(srv->log, &(struct ioloop_http_access) {
        .remote_ip = ioloop_http_remote_ip(req),
        .method = req->method,
        .target = req->target,
        .version_minor = req->version_minor,
        .status = req->status,
        .body_bytes = req->sent,
        .duration_us = (uint64_t) took / 1000,
        .when = req->when,
        .referer = req->strs != NULL ? ioloop_http_header(req, "Referer")
                                     : NULL,
        .user_agent = req->strs != NULL
                          ? ioloop_http_header(req, "User-Agent")
                          : NULL,
        .server = srv->spec->name,
    });
    if (srv->log_flush == 0) {
        /* The host's own timer (no instance owns it). */
        const struct ioloop_owner *previous = ioloop__set_owner(loop, NULL);

        srv->log_flush =
            ioloop_call_later(loop, HTTP_LOG_FLUSH_DELAY, log_flush, srv);
        ioloop__set_owner(loop, previous);
        if (srv->log_flush == 0) {
            ioloop__http_access_log_flush(srv->log); /* no timer: now */
        }
    }
}

void
ioloop__http_record_reload(struct http_server *srv)
{
    char why[512];

    if (srv->log != NULL
        && ioloop__http_access_log_reopen(srv->log, why, sizeof(why)) < 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "%s.access_log.path: %s (logging on to the old file)",
                   srv->spec->where, why);
    }
}

void
ioloop__http_record_close(struct http_server *srv)
{
    if (srv->log_flush != 0) {
        ioloop_cancel(srv->hl->loop, srv->log_flush);
        srv->log_flush = 0;
    }
    ioloop__http_access_log_close(srv->log);
    srv->log = NULL;
}
