/*
 * tests/fuzz/http_server/harness.c: fuzzes the host's HTTP server
 * (host/runtime/http_*.c): a real server from ioloop__http_servers_create
 * on the host's loop core and the epoll backend (compiled in), and a
 * real connection of it on a socketpair.
 *
 * Each input is sent as the client side of one connection three times:
 *   1. in one piece;
 *   2. in pieces of 1 to 17 bytes (sizes taken from the input itself),
 *      each consumed by the server before the next is sent, so its
 *      parser sees every split;
 *   3. in one piece through the smallest socket buffers, so responses go
 *      out in short writes and the server holds input back.
 * The client then shuts its write side and reads until the server
 * closes. The three response streams must be identical once the Date
 * header's value is masked; a difference, a crash, a sanitizer report or
 * a connection that does not end within HARNESS_HANG_NS aborts.
 *
 * The handlers answer at once (a timer's finish would race the client's
 * end differently in each mode): by the path's last segment, "hello",
 * "echo" (the buffered body back, or under /s/ the streamed byte count),
 * "chunks" (three writes: chunked), "big" (more than the smallest socket
 * buffer); anything else 404 from the plugin. Small limits put 413 and
 * 431 within reach; /s/ allows a larger body.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "loader.h"
#include "loop.h"

/* The backend's descriptor, compiled into this binary. */
extern const struct ioloop_backend ioloop_backend_v1;

/* The body of /big: more than the smallest socket buffer. */
#define HARNESS_BIG_LEN 20000
/* Most response bytes kept per run (the rest is compared by length). */
#define HARNESS_OUT_MAX (256u << 10)
/* A run that has not ended by then is a hang. */
#define HARNESS_HANG_NS (10 * IOLOOP_NS_PER_S)

enum mode {
    MODE_WHOLE,
    MODE_PIECES,
    MODE_TINY,
    NMODES
};

/* One run: the client side of a connection. */
struct run {
    enum mode mode;
    int fd;
    const uint8_t *data;
    size_t size;
    size_t sent;
    int shut;   /* write side shut */
    char *out;  /* the responses read */
    size_t out_len;
};

static ioloop_loop_t *loop;
static ioloop_instance_t instance = {.owner = {.name = "fz"}};
static struct http_server *server;
static char big[HARNESS_BIG_LEN];

static const char *const listen_addrs[] = {"127.0.0.1:0"};
static const struct ioloop_http_route_spec routes[] = {
    {.prefix = "/", .plugin = "fz", .where = "servers[0].routes[0]"},
};
static const struct ioloop_http_server_spec spec = {
    .name = "fuzz",
    .where = "servers[0]",
    .listen = listen_addrs,
    .nlisten = 1,
    .limits = {
        .max_connections = 16,
        .max_header_size = 256,
        .max_body_size = 64,
        .max_pipeline = 4,
        .header_timeout = 60 * IOLOOP_NS_PER_S,
        .body_timeout = 60 * IOLOOP_NS_PER_S,
        .send_timeout = 60 * IOLOOP_NS_PER_S,
        .keepalive_timeout = 60 * IOLOOP_NS_PER_S,
    },
    .routes = routes,
    .nroutes = 1,
};

static int setup(void);
static int run_once(struct run *r);
static int client_io(ioloop_loop_t *l, int fd, unsigned events, void *arg);
static int client_send(struct run *r);
static int hang(ioloop_loop_t *l, void *arg);
static void mask_dates(char *out, size_t len);
static void dump(const char *what, const char *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run runs[NMODES];
    int m;

    if (loop == NULL && setup() < 0) {
        abort();
    }
    for (m = 0; m < NMODES; m++) {
        runs[m] = (struct run){.mode = (enum mode) m, .fd = -1, .data = data,
                               .size = size};
        runs[m].out = malloc(HARNESS_OUT_MAX);
        if (runs[m].out == NULL || run_once(&runs[m]) < 0) {
            abort();
        }
        mask_dates(runs[m].out, runs[m].out_len);
    }
    for (m = 1; m < NMODES; m++) {
        if (runs[m].out_len != runs[0].out_len
            || memcmp(runs[m].out, runs[0].out, runs[0].out_len) != 0) {
            dump("input", (const char *) data, size);
            dump("whole", runs[0].out, runs[0].out_len);
            dump(m == MODE_PIECES ? "pieces" : "tiny buffers", runs[m].out,
                 runs[m].out_len);
            abort();
        }
    }
    for (m = 0; m < NMODES; m++) {
        free(runs[m].out);
    }
    return 0;
}

static void
on_data(ioloop_http_request_t *req, const char *data, size_t len, void *arg)
{
    (void) req;
    (void) data;
    *(size_t *) arg += len;
}

static void
on_end(ioloop_http_request_t *req, void *arg)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%zu bytes", *(size_t *) arg);

    free(arg);
    ioloop_http_finish(req, text, (size_t) n);
}

static void
on_close(ioloop_http_request_t *req, void *arg)
{
    free(arg);
    ioloop_http_finish(req, NULL, 0);
}

/* Answers at once, by the path's last segment (see the file comment). */
static void
handle(ioloop_http_request_t *req, void *arg)
{
    const char *path = ioloop_http_path(req);
    const char *what = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1
                                                  : path;
    size_t len;

    (void) arg;
    if (strcmp(what, "hello") == 0) {
        ioloop_http_add_header(req, "Content-Type", "text/plain");
        ioloop_http_finish(req, "hello", 5);
    } else if (strcmp(what, "echo") == 0) {
        const char *body = ioloop_http_body(req, &len);
        size_t *count;

        if (strncmp(path, "/s/", 3) != 0) {
            ioloop_http_finish(req, body, len);
            return;
        }
        count = calloc(1, sizeof(*count));
        if (count == NULL
            || ioloop_http_read_body(req, on_data, on_end, count) < 0) {
            free(count);
            ioloop_http_finish(req, NULL, 0);
            return;
        }
        ioloop_http_on_close(req, on_close, count);
    } else if (strcmp(what, "chunks") == 0) {
        ioloop_http_write(req, "one ", 4);
        ioloop_http_write(req, "two ", 4);
        ioloop_http_write(req, ioloop_http_query(req, "x") ? "x" : "-", 1);
        ioloop_http_finish(req, NULL, 0);
    } else if (strcmp(what, "big") == 0) {
        ioloop_http_finish(req, big, sizeof(big));
    } else {
        ioloop_http_set_status(req, 404);
        ioloop_http_finish(req, "none", 4);
    }
}

/* Once per process: the loop on epoll, one server, the handlers. */
static int
setup(void)
{
    struct http_loop *hl;
    char err[256];

    loop = ioloop_loop_new(&ioloop_backend_v1, err, sizeof(err));
    if (loop == NULL
        || ioloop__http_servers_create(loop, &spec, 1, err, sizeof(err))
               < 0) {
        fprintf(stderr, "harness: setup: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = "0123456789abcdef"[i % 16];
    }
    instance.loop = loop;
    instance.workers = 1;
    if (ioloop__http_handle(&instance, &(struct ioloop_http_handler) {
                                .size = sizeof(struct ioloop_http_handler),
                                .cb = handle}, err, sizeof(err))
            < 0
        || ioloop__http_handle(&instance, &(struct ioloop_http_handler) {
                                   .size = sizeof(struct ioloop_http_handler),
                                   .server = "fuzz", .prefix = "/s/",
                                   .flags = IOLOOP_HTTP_STREAM_BODY,
                                   .cb = handle}, err, sizeof(err))
               < 0
        || ioloop__http_servers_start(loop, err, sizeof(err)) < 0) {
        fprintf(stderr, "harness: setup: %s\n", err);
        return -1;
    }
    hl = ioloop__slot(loop, IOLOOP_SLOT_HTTP);
    server = &hl->servers[0];
    return 0;
}

/* Serves one connection fed as r->mode says; 0, or -1 (setup failure). */
static int
run_once(struct run *r)
{
    ioloop_timer_t guard;
    int sv[2], min = 1;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv)
        < 0) {
        perror("harness: socketpair");
        return -1;
    }
    if (r->mode == MODE_TINY) {
        /* The kernel raises 1 to its minimum. */
        for (int i = 0; i < 2; i++) {
            setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &min, sizeof(min));
            setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &min, sizeof(min));
        }
    }
    r->fd = sv[1];
    if (ioloop__http_conn_open(server, sv[0]) < 0
        || ioloop_add_handler(loop, r->fd, IOLOOP_READ | IOLOOP_WRITE,
                              client_io, r)
               < 0) {
        fprintf(stderr, "harness: cannot open the connection\n");
        close(r->fd);
        return -1;
    }
    guard = ioloop_call_later(loop, HARNESS_HANG_NS, hang, r);
    if (guard == 0 || ioloop_start(loop) < 0) {
        return -1;
    }
    ioloop_cancel(loop, guard);
    return 0;
}

/*
 * The client: sends as its mode says while reading every response byte;
 * at EOF (the server closed) ends the run.
 */
static int
client_io(ioloop_loop_t *l, int fd, unsigned events, void *arg)
{
    struct run *r = arg;
    char buf[4096];
    ssize_t n;

    (void) events;
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            size_t keep = HARNESS_OUT_MAX - r->out_len;

            keep = (size_t) n < keep ? (size_t) n : keep;
            memcpy(r->out + r->out_len, buf, keep);
            r->out_len += keep;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        /* EOF or reset: the server closed. */
        ioloop_remove_handler(l, fd);
        close(fd);
        r->fd = -1;
        ioloop_stop(l);
        return 0;
    }
    if (!r->shut) {
        return client_send(r);
    }
    return 0;
}

/* Sends the next piece of input (or all of it), then shuts the write
 * side. A server that closed early makes the send fail: then only read. */
static int
client_send(struct run *r)
{
    size_t want = r->size - r->sent;
    int queued = 0;
    ssize_t n;

    if (r->mode == MODE_PIECES) {
        /* The server consumed the last piece before the next is sent. */
        if (ioctl(r->fd, SIOCOUTQ, &queued) < 0 || queued > 0) {
            return 0;
        }
        if (want > 0) {
            size_t piece = 1 + r->data[r->sent * 7 % r->size] % 17;

            want = want < piece ? want : piece;
        }
    }
    if (want > 0) {
        n = send(r->fd, r->data + r->sent, want, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0;
        }
        if (n < 0) {
            r->sent = r->size; /* the server is gone: read the rest */
        } else {
            r->sent += (size_t) n;
        }
    }
    if (r->sent == r->size) {
        shutdown(r->fd, SHUT_WR);
        r->shut = 1;
        ioloop_update_handler(loop, r->fd, IOLOOP_READ);
    }
    return 0;
}

static int
hang(ioloop_loop_t *l, void *arg)
{
    struct run *r = arg;

    (void) l;
    fprintf(stderr, "harness: mode %d: the connection did not end within "
                    "%d s (sent %zu of %zu)\n",
            (int) r->mode, (int) (HARNESS_HANG_NS / IOLOOP_NS_PER_S),
            r->sent, r->size);
    dump("input", (const char *) r->data, r->size);
    abort();
}

/* Blanks the value of every "Date: " header (the clock, not the input). */
static void
mask_dates(char *out, size_t len)
{
    static const char tag[] = "\r\nDate: ";
    char *p = out, *end = out + len;

    while ((p = memmem(p, (size_t) (end - p), tag, sizeof(tag) - 1))
           != NULL) {
        p += sizeof(tag) - 1;
        while (p < end && *p != '\r') {
            *p++ = 'D';
        }
    }
}

static void
dump(const char *what, const char *p, size_t n)
{
    fprintf(stderr, "--- %s (%zu bytes) ---\n", what, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) p[i];

        if (ch == '\n' || (ch >= 0x20 && ch < 0x7f)) {
            fputc(ch, stderr);
        } else {
            fprintf(stderr, "\\x%02x", ch);
        }
    }
    fputc('\n', stderr);
}
