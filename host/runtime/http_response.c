/*
 * host/runtime/http_response.c: the response side of a request: status
 * and headers (checked as the contract says), the head's rendering (Date,
 * Server, framing, Connection), the body as is, chunked, or delimited by
 * the close (HTTP/1.0), HEAD without a body, and the host's own answers.
 *
 * Output order: only the oldest request of a connection writes to it;
 * a later one keeps its bytes in req->pending until it is the oldest
 * (ioloop__http_response_promote).
 */
#include "http_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The status codes the host knows a reason phrase of. */
#define HTTP_STATUSES(X) \
    X(100, "Continue") \
    X(101, "Switching Protocols") \
    X(200, "OK") \
    X(201, "Created") \
    X(202, "Accepted") \
    X(204, "No Content") \
    X(206, "Partial Content") \
    X(301, "Moved Permanently") \
    X(302, "Found") \
    X(303, "See Other") \
    X(304, "Not Modified") \
    X(307, "Temporary Redirect") \
    X(308, "Permanent Redirect") \
    X(400, "Bad Request") \
    X(401, "Unauthorized") \
    X(403, "Forbidden") \
    X(404, "Not Found") \
    X(405, "Method Not Allowed") \
    X(408, "Request Timeout") \
    X(409, "Conflict") \
    X(410, "Gone") \
    X(411, "Length Required") \
    X(412, "Precondition Failed") \
    X(413, "Content Too Large") \
    X(414, "URI Too Long") \
    X(415, "Unsupported Media Type") \
    X(416, "Range Not Satisfiable") \
    X(422, "Unprocessable Content") \
    X(429, "Too Many Requests") \
    X(431, "Request Header Fields Too Large") \
    X(500, "Internal Server Error") \
    X(501, "Not Implemented") \
    X(502, "Bad Gateway") \
    X(503, "Service Unavailable") \
    X(504, "Gateway Timeout") \
    X(505, "HTTP Version Not Supported")

const char *
ioloop__http_reason(int status)
{
#define HTTP_REASON(code, reason) \
    case code: return reason;

    switch (status) {
    HTTP_STATUSES(HTTP_REASON)
    default: return "";
    }
#undef HTTP_REASON
}

/* A literal and its length, for memcpy. */
#define LIT(s) s, sizeof(s) - 1

/* Writes the status line of status (100..999) at p: a literal per known
 * code, rendered at compile time; returns its length. */
static size_t
put_status_line(char *p, int status)
{
#define HTTP_LINE(code, reason) \
    case code: memcpy(p, LIT("HTTP/1.1 " #code " " reason "\r\n")); \
        return sizeof("HTTP/1.1 " #code " " reason "\r\n") - 1;

    switch (status) {
    HTTP_STATUSES(HTTP_LINE)
    default:
        /* As "HTTP/1.1 %d %s\r\n" with an empty reason. */
        memcpy(p, LIT("HTTP/1.1 000 \r\n"));
        p[9] = (char) ('0' + status / 100 % 10);
        p[10] = (char) ('0' + status / 10 % 10);
        p[11] = (char) ('0' + status % 10);
        return sizeof("HTTP/1.1 000 \r\n") - 1;
    }
#undef HTTP_LINE
}

/* Writes v in decimal at p (at most 20 bytes); returns its length. */
static size_t
put_dec(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        p[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Writes v in lowercase hex at p (at most 16 bytes); returns its
 * length. */
static size_t
put_hex(char *p, uint64_t v)
{
    char tmp[16];
    size_t n = 0, i;

    do {
        tmp[n++] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        p[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Whether a response of this status has no body (RFC 9110 6.4.1). */
static bool
no_body(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* Output of req: to the connection when it is the oldest, else held. */
static int
emit(ioloop_http_request_t *req, const char *p, size_t n)
{
    struct http_conn *c = req->conn;

    if (c == NULL || (req->flags & REQ_GONE)) {
        return -EPIPE;
    }
    if (c->first == req) {
        return ioloop__http_conn_out(c, p, n);
    }
    return ioloop__http_buf_append(&req->pending, p, n);
}

int
ioloop__http_response_promote(ioloop_http_request_t *req)
{
    struct http_buf *b = req->pending;
    int rc;

    if (b == NULL) {
        return 0;
    }
    req->pending = NULL;
    rc = ioloop__http_conn_out(req->conn, b->data + b->off, b->len - b->off);
    free(b);
    return rc;
}

/* Bytes req has queued and not yet handed to the kernel. */
static size_t
queued(const ioloop_http_request_t *req)
{
    if (req->conn->first == req) {
        return ioloop__http_conn_queued(req->conn);
    }
    return req->pending != NULL ? req->pending->len - req->pending->off : 0;
}

/*
 * Renders the head: the status line, Server, Date, the plugin's headers,
 * the framing (len: Content-Length; UINT64_MAX: chunked, or for HTTP/1.0
 * the close), Connection.
 */
static int
render_head(ioloop_http_request_t *req, uint64_t len)
{
    struct http_loop *hl = req->hl;
    char line[160];
    size_t n = 0;
    bool close;
    int rc;

    req->flags |= REQ_HEAD_SENT;
    ioloop__http_date_refresh(hl);
    if (req->status == 0) {
        req->status = 200;
    }
    if (no_body(req->status)) {
        len = 0;
    } else if (req->flags & REQ_LENGTH_SET) {
        len = req->length;
    } else if (len == UINT64_MAX) {
        if (req->version_minor >= 1) {
            req->flags |= REQ_CHUNKED;
        } else {
            req->flags |= REQ_CLOSE_BODY;
        }
    }
    close = !(req->flags & REQ_KEEP_ALIVE)
            || (req->flags & (REQ_RESP_CLOSE | REQ_CLOSE_BODY))
            || hl->draining;
    n = put_status_line(line, req->status);
    if (!(req->flags & REQ_SERVER_SET)) {
        memcpy(line + n, LIT("Server: ioloop-host\r\n"));
        n += sizeof("Server: ioloop-host\r\n") - 1;
    }
    rc = emit(req, line, n);
    if (rc == 0) {
        rc = emit(req, hl->date, hl->date_len);
    }
    if (rc == 0 && req->rhdrs_len > 0) {
        rc = emit(req, req->rhdrs, req->rhdrs_len);
    }
    n = 0;
    if (req->status >= 200 && req->status != 204 && req->status != 304) {
        if (req->flags & REQ_CHUNKED) {
            memcpy(line, LIT("Transfer-Encoding: chunked\r\n"));
            n = sizeof("Transfer-Encoding: chunked\r\n") - 1;
        } else if (!(req->flags & REQ_CLOSE_BODY)) {
            memcpy(line, LIT("Content-Length: "));
            n = sizeof("Content-Length: ") - 1;
            n += put_dec(line + n, len);
            line[n++] = '\r';
            line[n++] = '\n';
        }
    }
    if (close) {
        memcpy(line + n, LIT("Connection: close\r\n"));
        n += sizeof("Connection: close\r\n") - 1;
    } else if (req->version_minor == 0) {
        memcpy(line + n, LIT("Connection: keep-alive\r\n"));
        n += sizeof("Connection: keep-alive\r\n") - 1;
    }
    line[n++] = '\r';
    line[n++] = '\n';
    if (rc == 0) {
        rc = emit(req, line, n);
    }
    if (close) {
        req->flags |= REQ_RESP_CLOSE;
    }
    return rc;
}

/* Body bytes, framed as the head said. */
static int
body_out(ioloop_http_request_t *req, const char *data, size_t len)
{
    char size[24];
    size_t n;
    int rc;

    if (len == 0 || (req->flags & REQ_HEAD) || no_body(req->status)) {
        return 0;
    }
    req->sent += len;
    if (!(req->flags & REQ_CHUNKED)) {
        return emit(req, data, len);
    }
    n = put_hex(size, len);
    size[n++] = '\r';
    size[n++] = '\n';
    rc = emit(req, size, n);
    if (rc == 0) {
        rc = emit(req, data, len);
    }
    if (rc == 0) {
        rc = emit(req, "\r\n", 2);
    }
    return rc;
}

/* The response is complete: recorded, and the queue may move on. */
static void
response_done(ioloop_http_request_t *req)
{
    req->flags |= REQ_DONE;
    ioloop__http_record(req);
}

int
ioloop__http_respond_error(ioloop_http_request_t *req, int status)
{
    char body[64];
    int n, rc;

    free(req->rhdrs);
    req->rhdrs = NULL;
    req->rhdrs_len = 0;
    req->nrhdrs = 0;
    req->flags &= ~(REQ_LENGTH_SET | REQ_SERVER_SET | REQ_CHUNKED);
    req->status = status;
    rc = ioloop_http_add_header(req, "Content-Type",
                                 "text/plain; charset=utf-8");
    if (rc == 0 && status == 405 && req->allow != NULL) {
        rc = ioloop_http_add_header(req, "Allow", req->allow);
    }
    n = snprintf(body, sizeof(body), "%d %s\n", status,
                 ioloop__http_reason(status));
    if (rc == 0) {
        rc = render_head(req, (uint64_t) n);
    }
    if (rc == 0) {
        rc = body_out(req, body, (size_t) n);
    }
    response_done(req);
    return rc == -EPIPE ? 0 : rc;
}

int
ioloop_http_set_status(ioloop_http_request_t *req, int status)
{
    if (req->flags & (REQ_HEAD_SENT | REQ_FINISHED)) {
        return -EALREADY;
    }
    if (status < 100 || status > 999) {
        return -EINVAL;
    }
    req->status = status;
    return 0;
}

/* Whether value is a decimal Content-Length; stores it. */
static bool
parse_length(const char *value, uint64_t *len)
{
    uint64_t v = 0;

    if (*value == '\0') {
        return false;
    }
    for (const char *p = value; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t) (*p - '0');
    }
    *len = v;
    return true;
}

int
ioloop_http_add_header(ioloop_http_request_t *req, const char *name,
                        const char *value)
{
    size_t ln, lv;
    char *h;

    if (req->flags & (REQ_HEAD_SENT | REQ_FINISHED)) {
        return -EALREADY;
    }
    ln = strlen(name);
    lv = strlen(value);
    if (ln == 0 || !ioloop__http_is_token(name, ln)
        || strpbrk(value, "\r\n") != NULL) {
        return -EINVAL;
    }
    if (strcasecmp(name, "Transfer-Encoding") == 0
        || strcasecmp(name, "Date") == 0) {
        return -EPERM;
    }
    if (strcasecmp(name, "Connection") == 0) {
        if (strcasecmp(value, "close") == 0) {
            req->flags |= REQ_RESP_CLOSE;
        }
        return 0; /* the host writes it */
    }
    if (strcasecmp(name, "Content-Length") == 0) {
        if (!parse_length(value, &req->length)) {
            return -EINVAL;
        }
        req->flags |= REQ_LENGTH_SET;
        return 0; /* the host writes it */
    }
    if (req->nrhdrs >= HTTP_RESP_HEADERS_MAX
        || req->rhdrs_len + ln + lv + 4 > HTTP_RESP_HEADERS_BYTES) {
        return -ENOBUFS;
    }
    h = realloc(req->rhdrs, req->rhdrs_len + ln + lv + 4);
    if (h == NULL) {
        return -ENOMEM;
    }
    memcpy(h + req->rhdrs_len, name, ln);
    memcpy(h + req->rhdrs_len + ln, ": ", 2);
    memcpy(h + req->rhdrs_len + ln + 2, value, lv);
    memcpy(h + req->rhdrs_len + ln + 2 + lv, "\r\n", 2);
    req->rhdrs = h;
    req->rhdrs_len += ln + lv + 4;
    req->nrhdrs++;
    if (strcasecmp(name, "Server") == 0) {
        req->flags |= REQ_SERVER_SET;
    }
    return 0;
}

int
ioloop_http_write(ioloop_http_request_t *req, const void *data, size_t len)
{
    struct http_conn *c = req->conn;
    int rc = 0;

    if (req->flags & REQ_FINISHED) {
        return -EALREADY;
    }
    if (c == NULL || (req->flags & (REQ_GONE | REQ_DONE))) {
        return -EPIPE;
    }
    if ((req->flags & REQ_LENGTH_SET) && len > req->length - req->sent) {
        return -EINVAL;
    }
    if (!(req->flags & REQ_HEAD_SENT)) {
        rc = render_head(req, UINT64_MAX);
    }
    if (rc == 0) {
        rc = body_out(req, data, len);
    }
    if (rc < 0) {
        return rc == -ENOMEM ? rc : -EPIPE;
    }
    rc = queued(req) > HTTP_WRITE_HIGH;
    ioloop__http_conn_kick(c); /* may close c: req stays */
    return rc;
}

int
ioloop_http_flush(ioloop_http_request_t *req, ioloop_http_cb cb, void *arg)
{
    if (req->flags & REQ_FINISHED) {
        return -EALREADY;
    }
    if (req->on_flush != NULL) {
        return -EALREADY;
    }
    req->on_flush = cb;
    req->flush_arg = arg;
    if (req->flags & REQ_GONE) {
        ioloop_http_on_close(req, req->on_close, req->close_arg);
        return 0;
    }
    if (req->conn != NULL && queued(req) == 0 && req->conn->first == req) {
        return ioloop__http_request_flushed(req);
    }
    return 0; /* conn_settle queues it once the bytes are out */
}

int
ioloop_http_finish(ioloop_http_request_t *req, const void *data,
                    size_t len)
{
    struct http_conn *c = req->conn;
    int rc = 0;

    if (req->flags & REQ_FINISHED) {
        return -EALREADY;
    }
    req->flags |= REQ_FINISHED;
    if (c == NULL || (req->flags & (REQ_GONE | REQ_DONE))) {
        ioloop__http_request_release(req);
        return -EPIPE;
    }
    if (!(req->flags & REQ_HEAD_SENT)) {
        rc = render_head(req, len);
    }
    if (rc == 0 && (req->flags & REQ_LENGTH_SET)
        && len > req->length - req->sent) {
        len = (size_t) (req->length - req->sent);
    }
    if (rc == 0) {
        rc = body_out(req, data, len);
    }
    if (rc == 0 && (req->flags & REQ_CHUNKED)
        && !(req->flags & REQ_HEAD)) {
        rc = emit(req, "0\r\n\r\n", 5);
    }
    if (rc == 0 && (req->flags & REQ_LENGTH_SET)
        && !(req->flags & REQ_HEAD) && req->sent < req->length) {
        req->flags |= REQ_RESP_CLOSE; /* the client cannot frame it */
        rc = -EPROTO;
    }
    response_done(req);
    ioloop__http_conn_kick(c); /* may free req and c */
    return rc == -ENOMEM || rc == -EPROTO ? rc : rc < 0 ? -EPIPE : 0;
}
