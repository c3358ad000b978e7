/*
 * tests/integration/client.h: raw TCP and HTTP/1.1 client helpers for the
 * integration tests. Sockets are non-blocking and close-on-exec; every
 * wait is bounded (poll with a timeout). The HTTP response reader is
 * deliberately independent of the server's parser (plain string
 * handling), and keeps bytes read past one response for the next, so
 * pipelined responses are read one by one.
 */
#ifndef IOLOOP_TEST_CLIENT_H
#define IOLOOP_TEST_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

/* Bound on every socket wait. */
#define CLIENT_TIMEOUT_MS 5000

/* Connects to 127.0.0.1:port. Returns the fd (non-blocking), or -1. */
int client_connect(int port);

/* Writes all len bytes, waiting for room when needed. 0, or -1. */
int client_write_all(int fd, const void *buf, size_t len, int timeout_ms);

/*
 * Waits for data and reads up to len bytes. Returns the count, 0 on EOF,
 * or -1 (errno ETIMEDOUT on timeout, ECONNRESET...).
 */
ssize_t client_read_some(int fd, void *buf, size_t len, int timeout_ms);

/*
 * Waits for EOF. Returns 0 on EOF (or a reset after it), 1 when data came
 * instead, -1 on timeout.
 */
int client_expect_eof(int fd, int timeout_ms);

/* One connection with its read buffer. */
struct http_conn {
    int fd;
    size_t len;              /* buffered bytes */
    char buf[128 * 1024];
};

/* One parsed response. */
struct http_response {
    int status;
    char head[8192];         /* status line and headers, NUL-terminated */
    size_t body_len;
    char body[64 * 1024];    /* body_len bytes, NUL-terminated */
};

/* Connects hc to 127.0.0.1:port. 0, or -1. */
int http_connect(struct http_conn *hc, int port);

/*
 * Reads one response into r; with head_only (a response to HEAD) no body
 * is read whatever Content-Length says. Returns 0, or -1 with a reason
 * printed (timeout, EOF, malformed).
 */
int http_read_response(struct http_conn *hc, int head_only,
                       struct http_response *r);

/*
 * Copies the value of header name (case-insensitive) of r into value.
 * Returns 0, or -1 when absent.
 */
int http_header(const struct http_response *r, const char *name,
                char *value, size_t len);

/*
 * Takes one complete response out of hc's buffer, if there is one, without
 * reading. Returns 1 when r was filled, 0 when more bytes are needed, -1
 * when the response is malformed (printed).
 */
int http_take_response(struct http_conn *hc, int head_only,
                       struct http_response *r);

/*
 * Waits for and appends more bytes to hc's buffer. Returns 0, or -1 with
 * the reason printed (timeout, EOF, error, buffer full).
 */
int http_fill(struct http_conn *hc);

/* Sends "GET path HTTP/1.1" with a Host header and reads the response. */
int http_get(struct http_conn *hc, const char *path,
             struct http_response *r);

#endif /* IOLOOP_TEST_CLIENT_H */
