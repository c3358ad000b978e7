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

const char *
ioloop__http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
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
    n = (size_t) snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n%s",
                          req->status, ioloop__http_reason(req->status),
                          (req->flags & REQ_SERVER_SET)
                              ? ""
                              : "Server: ioloop-host\r\n");
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
            n = (size_t) snprintf(line, sizeof(line),
                                  "Transfer-Encoding: chunked\r\n");
        } else if (!(req->flags & REQ_CLOSE_BODY)) {
            n = (size_t) snprintf(line, sizeof(line),
                                  "Content-Length: %" PRIu64 "\r\n", len);
        }
    }
    n += (size_t) snprintf(line + n, sizeof(line) - n, "%s\r\n",
                           close ? "Connection: close\r\n"
                           : req->version_minor == 0
                               ? "Connection: keep-alive\r\n"
                               : "");
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
    int rc;

    if (len == 0 || (req->flags & REQ_HEAD) || no_body(req->status)) {
        return 0;
    }
    req->sent += len;
    if (!(req->flags & REQ_CHUNKED)) {
        return emit(req, data, len);
    }
    rc = emit(req, size, (size_t) snprintf(size, sizeof(size), "%zx\r\n",
                                           len));
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
