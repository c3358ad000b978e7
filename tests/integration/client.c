/* tests/integration/client.c: raw TCP and HTTP/1.1 client helpers. */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int wait_fd(int fd, short events, int timeout_ms);

int
client_connect(int port)
{
    struct sockaddr_in sin = { 0 };
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) {
        socklen_t len = sizeof(int);
        int err = 0;

        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, CLIENT_TIMEOUT_MS)
            || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0
            || err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

int
client_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;
    ssize_t n;

    while (len > 0) {
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                return -1;
            }
            if (wait_fd(fd, POLLOUT, timeout_ms) < 0) {
                return -1;
            }
            continue;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

ssize_t
client_read_some(int fd, void *buf, size_t len, int timeout_ms)
{
    ssize_t n;

    for (;;) {
        n = read(fd, buf, len);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
            return n;
        }
        if (wait_fd(fd, POLLIN, timeout_ms) < 0) {
            return -1;
        }
    }
}

int
client_expect_eof(int fd, int timeout_ms)
{
    char c;
    ssize_t n = client_read_some(fd, &c, 1, timeout_ms);

    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        return 0;
    }
    return n > 0 ? 1 : -1;
}

int
http_connect(struct http_conn *hc, int port)
{
    hc->len = 0;
    hc->fd = client_connect(port);
    return hc->fd < 0 ? -1 : 0;
}

int
http_take_response(struct http_conn *hc, int head_only,
                   struct http_response *r)
{
    char value[32], *end;
    size_t head_len, need;

    end = memmem(hc->buf, hc->len, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }
    head_len = (size_t) (end - hc->buf) + 4;
    if (head_len >= sizeof(r->head)) {
        fprintf(stderr, "http: response head too large\n");
        return -1;
    }
    memcpy(r->head, hc->buf, head_len);
    r->head[head_len] = '\0';
    if (sscanf(r->head, "HTTP/1.%*1d %3d ", &r->status) != 1) {
        fprintf(stderr, "http: bad status line: %.60s\n", r->head);
        return -1;
    }
    r->body_len = 0;
    if (!head_only && http_header(r, "Content-Length", value,
                                  sizeof(value)) == 0) {
        r->body_len = strtoul(value, NULL, 10);
    }
    if (r->body_len >= sizeof(r->body)) {
        fprintf(stderr, "http: body too large: %zu\n", r->body_len);
        return -1;
    }
    need = head_len + r->body_len;
    if (hc->len < need) {
        return 0;
    }
    memcpy(r->body, hc->buf + head_len, r->body_len);
    r->body[r->body_len] = '\0';
    memmove(hc->buf, hc->buf + need, hc->len - need);
    hc->len -= need;
    return 1;
}

int
http_read_response(struct http_conn *hc, int head_only,
                   struct http_response *r)
{
    int rc;

    while ((rc = http_take_response(hc, head_only, r)) == 0) {
        if (http_fill(hc) < 0) {
            return -1;
        }
    }
    return rc < 0 ? -1 : 0;
}

int
http_header(const struct http_response *r, const char *name, char *value,
            size_t len)
{
    size_t nlen = strlen(name), vlen;
    const char *line, *v;

    line = strstr(r->head, "\r\n");
    while (line != NULL && line[2] != '\r') {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            v = line + nlen + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            vlen = strcspn(v, "\r");
            if (vlen >= len) {
                return -1;
            }
            memcpy(value, v, vlen);
            value[vlen] = '\0';
            return 0;
        }
        line = strstr(line, "\r\n");
    }
    return -1;
}

int
http_get(struct http_conn *hc, const char *path, struct http_response *r)
{
    char req[1024];
    int n;

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (client_write_all(hc->fd, req, (size_t) n, CLIENT_TIMEOUT_MS) < 0) {
        fprintf(stderr, "http: write: %s\n", strerror(errno));
        return -1;
    }
    return http_read_response(hc, 0, r);
}

/* Waits until fd is ready for events. 0, or -1 (errno ETIMEDOUT). */
static int
wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int n;

    do {
        n = poll(&pfd, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    return n < 0 ? -1 : 0;
}

int
http_fill(struct http_conn *hc)
{
    ssize_t n;

    if (hc->len == sizeof(hc->buf)) {
        fprintf(stderr, "http: read buffer full\n");
        return -1;
    }
    n = client_read_some(hc->fd, hc->buf + hc->len, sizeof(hc->buf) - hc->len,
                         CLIENT_TIMEOUT_MS);
    if (n <= 0) {
        fprintf(stderr, "http: read: %s\n",
                n == 0 ? "unexpected EOF" : strerror(errno));
        return -1;
    }
    hc->len += (size_t) n;
    return 0;
}
