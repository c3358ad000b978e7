/*
 * host/runtime/http_access_log.h: a server's access log, one line per
 * finished request, in the common log format or as JSON. Lines are
 * buffered and written when the buffer fills or on flush (the server
 * flushes once a second and when it stops), so a request costs no
 * syscall; reopen follows logrotate's rename (SIGHUP).
 */
#ifndef IOLOOP_HOST_HTTP_ACCESS_LOG_H
#define IOLOOP_HOST_HTTP_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http_server.h"

/* One finished request, as the log shows it. Strings may be NULL ("-"). */
struct ioloop_http_access {
    const char *remote_ip;
    const char *method;
    const char *target;     /* as sent */
    unsigned version_minor; /* HTTP/1.x */
    int status;
    uint64_t body_bytes;    /* response body bytes sent */
    uint64_t duration_us;   /* head received to response queued */
    time_t when;            /* wall-clock second the request arrived */
    const char *referer;
    const char *user_agent;
    const char *server;     /* the server's name (JSON only) */
};

struct ioloop_http_access_log;

/* Opens path for appending (O_APPEND, O_CLOEXEC; "-": stderr). NULL
 * with one line in err naming the file. */
struct ioloop_http_access_log *ioloop__http_access_log_open(
    const char *path, enum ioloop_http_log_format format, char *err,
    size_t errlen);

/* Appends one line (quotes and control bytes in strings escaped). */
void ioloop__http_access_log_write(struct ioloop_http_access_log *log,
                                   const struct ioloop_http_access *rec);

/* Writes out what is buffered. */
void ioloop__http_access_log_flush(struct ioloop_http_access_log *log);

/* Flushes and reopens the path (after logrotate renamed it). On failure
 * keeps the old file and returns -errno with err. */
int ioloop__http_access_log_reopen(struct ioloop_http_access_log *log,
                                   char *err, size_t errlen);

/* Flushes and closes. NULL: no-op. */
void ioloop__http_access_log_close(struct ioloop_http_access_log *log);

#endif /* IOLOOP_HOST_HTTP_ACCESS_LOG_H */
