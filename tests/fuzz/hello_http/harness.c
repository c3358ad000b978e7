/*
 * tests/fuzz/hello_http/harness.c: fuzzes hello_http's connection
 * handling (plugins/hello_http/conn.c, compiled in) on the host's real
 * loop core and epoll backend, through a socketpair.
 *
 * Each input is sent as the client side of one connection three times:
 *   1. in one piece;
 *   2. in pieces of 1 to 17 bytes (sizes taken from the input itself),
 *      each consumed by the server before the next is sent, so its
 *      parser sees every split;
 *   3. in one piece through the smallest socket buffers (SO_SNDBUF and
 *      SO_RCVBUF at their minimum), so responses go out in short writes
 *      and the server holds input back (backpressure).
 * The client then shuts its write side and reads until the server
 * closes. The three response streams must be identical, byte for byte,
 * once the Date header's value (the clock) is masked; a difference, a
 * crash, a sanitizer report or a connection that does not end within
 * HARNESS_HANG_NS aborts.
 *
 * The instance has a small max_header_size and max_body_size so that the
 * 431 and 413 paths are within a fuzzer's reach, and a route with a body
 * larger than the minimal socket buffer.
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

#include <jansson.h>

#include "api.h"
#include "config_schema.h"
#include "hello_http.h"
#include "loader.h"
#include "loop.h"

/* The backend and plugin descriptors, compiled into this binary. */
extern const struct ioloop_backend ioloop_backend_v1;
extern const struct ioloop_plugin ioloop_plugin_v1;

#define HARNESS_CONFIG                                                      \
    "{\"listen\": \"127.0.0.1:0\", \"max_header_size\": 256,"              \
    " \"max_body_size\": 64, \"routes\": {\"/\": \"hello\","               \
    " \"/a\": \"body-a\", \"/big\": \"%s\"}}"
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
static ioloop_instance_t instance = {.owner = {.name = "hello_http"}};
static struct hello *hello;

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

/* Once per process: the loop on epoll and one hello_http instance. */
static int
setup(void)
{
    static struct ioloop__config filled;
    struct ioloop__config_error bad = {"", "json_loads"};
    char err[256], *big, *text;
    json_t *config;
    void *state;
    int rc;

    loop = ioloop_loop_new(&ioloop_backend_v1, err, sizeof(err));
    big = malloc(HARNESS_BIG_LEN + 1);
    text = malloc(sizeof(HARNESS_CONFIG) + HARNESS_BIG_LEN);
    if (loop == NULL || big == NULL || text == NULL) {
        fprintf(stderr, "harness: setup: %s\n", loop ? "no memory" : err);
        return -1;
    }
    for (size_t i = 0; i < HARNESS_BIG_LEN; i++) {
        big[i] = "0123456789abcdef"[i % 16];
    }
    big[HARNESS_BIG_LEN] = '\0';
    snprintf(text, sizeof(HARNESS_CONFIG) + HARNESS_BIG_LEN, HARNESS_CONFIG,
             big);
    config = json_loads(text, 0, NULL);
    free(big);
    free(text);
    /* Filled as the host fills it before init; kept for the process. */
    rc = config == NULL
             ? -EINVAL
             : ioloop__config_fill(ioloop_plugin_v1.config_schema,
                                   ioloop_plugin_v1.config_size, config,
                                   "config", NULL, "hello_http", &filled,
                                   &bad);
    json_decref(config);
    if (rc < 0) {
        fprintf(stderr, "harness: config: %s: %s\n", bad.path, bad.msg);
        return -1;
    }
    instance.loop = loop;
    instance.workers = 1;
    rc = ioloop_plugin_v1.init(ioloop__api(), &instance, filled.data,
                               &state, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "harness: init: %s\n", err);
        return -1;
    }
    hello = state; /* lives as long as the process, as the loop does */
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
    if (hello__conn_open(hello, sv[0]) < 0
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
