/*
 * tests/unit/test_stream.c: buffered streams (host/core/stream.c) on the real
 * loop. I/O runs on socketpairs over the real epoll.so; the timeouts run
 * on the fake backend and fake clock, so their deadlines are exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes/fake_backend.h"
#include "loader.h"
#include "loop.h"
#include "stream.h"

#define MiB ((size_t) 1 << 20)
#define KiB ((size_t) 1 << 10)
#define MAX_MSGS 16
#define MAX_STEPS 16

/* What the test's stream does next from its read callback. */
enum { S_UNTIL = 1, S_BYTES, S_SOME, S_CLOSE, S_END };

struct step {
    int op;
    size_t n;          /* S_BYTES, S_SOME */
    const char *delim; /* S_UNTIL */
};

/* What one test's callbacks saw. */
static struct probe {
    ioloop_loop_t *loop;
    ioloop_stream_t *s;
    struct step steps[MAX_STEPS];
    int step;
    int depth; /* > 0 inside a stream call: callbacks must not run then */
    int reads, closes, dones, dones_a, owner_errors;
    int overflows, drains;
    size_t drained_pending; /* stream_pending in drained_cb */
    ioloop_time_t overflow_time;
    const char *overflow_reply; /* overflow_cb writes it */
    size_t overflow_len;
    int close_error;
    int close_timeout; /* ioloop_stream_timeout in the close callback */
    ioloop_time_t close_time;
    char msgs[MAX_MSGS][64];
    size_t msglen[MAX_MSGS];
    uint64_t msg_iter[MAX_MSGS];
    size_t buffered_at[MAX_MSGS]; /* ioloop__stream_buffered in each cb */
    char *data; /* every byte read, in order */
    size_t len, cap;
    size_t done_pending;
    struct fake_backend *fake; /* cleared READ level after each read */
    int fake_fd;
} P;

/* The raw end of the socketpair: writes and reads as the test says. */
static struct peer {
    int fd;
    const char *src;
    size_t slen, off, wchunk;
    bool close_after_write;
    char *dst;
    size_t got, dcap, rchunk;
    size_t close_after_read; /* 0: never */
    size_t stop_at;          /* close the stream once this much arrived */
    bool eof;
} peer;

static struct ioloop_owner plugin = {.name = "plugin"};
static struct ioloop_backend_lib epoll_lib;
static int watchdog_fired;

static void issue(ioloop_stream_t *s);

static int
cb_watchdog(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    watchdog_fired = 1;
    ioloop_stop(loop);
    return 0;
}

static void
check_owner(void)
{
    if (ioloop__current_owner(P.loop) != &plugin) {
        P.owner_errors++;
    }
}

static void
cb_read(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    assert_ptr_equal(arg, &P);
    assert_int_equal(P.depth, 0);
    assert_true(len > 0);
    check_owner();
    if (P.reads < MAX_MSGS) {
        size_t n = len < 63 ? len : 63;

        memcpy(P.msgs[P.reads], data, n);
        P.msgs[P.reads][n] = '\0';
        P.msglen[P.reads] = len;
        P.msg_iter[P.reads] = ioloop__stats(P.loop)->iterations;
        P.buffered_at[P.reads] = ioloop__stream_buffered(s);
    }
    assert_true(P.len + len <= P.cap);
    memcpy(P.data + P.len, data, len);
    P.len += len;
    P.reads++;
    if (P.fake != NULL) {
        P.fake->level[P.fake_fd] = 0;
    }
    if (P.steps[P.step].op != S_CLOSE) {
        P.step++;
        P.depth++;
        issue(s);
        P.depth--;
    }
}

static void
cb_close(ioloop_stream_t *s, void *arg)
{
    assert_ptr_equal(arg, &P);
    assert_int_equal(P.depth, 0);
    assert_int_equal(ioloop_stream_fd(s), -1);
    assert_int_equal(ioloop_stream_pending(s), 0);
    check_owner();
    P.closes++;
    P.close_error = ioloop_stream_error(s);
    P.close_timeout = ioloop_stream_timeout(s);
    P.close_time = ioloop_time(P.loop);
    ioloop_stop(P.loop);
}

static int
cb_close_stream(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    ioloop_stream_close(arg);
    return 0;
}

/* Issues a read_until "\n" and stops the loop, which then ends the
 * iteration with the read pending or just served. */
static int
cb_read_stop(ioloop_loop_t *loop, void *arg)
{
    ioloop_stream_read_until(arg, "\n", 1, cb_read);
    ioloop_stop(loop);
    return 0;
}

static void
cb_done(ioloop_stream_t *s, void *arg)
{
    assert_ptr_equal(arg, &P);
    assert_int_equal(P.depth, 0);
    check_owner();
    P.dones++;
    P.done_pending = ioloop_stream_pending(s);
}

static void
cb_done_a(ioloop_stream_t *s, void *arg)
{
    (void) s;
    (void) arg;
    P.dones_a++;
}

static void
cb_done_close(ioloop_stream_t *s, void *arg)
{
    cb_done(s, arg);
    ioloop_stream_close(s);
}

/* Runs the next step of P.steps on s. */
static void
issue(ioloop_stream_t *s)
{
    const struct step *st = &P.steps[P.step];
    int rc = 0;

    switch (st->op) {
    case S_UNTIL:
        rc = ioloop_stream_read_until(s, st->delim, strlen(st->delim),
                                      cb_read);
        break;
    case S_BYTES:
        rc = ioloop_stream_read_bytes(s, st->n, cb_read);
        break;
    case S_SOME:
        rc = ioloop_stream_read_some(s, st->n, cb_read);
        break;
    case S_CLOSE:
        rc = ioloop_stream_read_until_close(s, cb_read);
        break;
    default:
        ioloop_stream_close(s);
        ioloop_stream_close(s); /* twice is harmless */
        break;
    }
    assert_int_equal(rc, 0);
}

static void
reset(ioloop_loop_t *loop, size_t cap)
{
    free(P.data);
    memset(&P, 0, sizeof(P));
    P.loop = loop;
    P.cap = cap;
    P.data = malloc(cap > 0 ? cap : 1);
    assert_non_null(P.data);
    free(peer.dst);
    memset(&peer, 0, sizeof(peer));
    peer.fd = -1;
    watchdog_fired = 0;
}

static ioloop_loop_t *
new_epoll_loop(size_t cap)
{
    char err[256];
    ioloop_loop_t *loop = ioloop_loop_new(epoll_lib.ops, err, sizeof(err));

    assert_non_null(loop);
    reset(loop, cap);
    ioloop_call_later(loop, 20 * IOLOOP_NS_PER_S, cb_watchdog, NULL);
    return loop;
}

/* A socketpair: sv[0] for the stream, sv[1] for the peer. */
static void
new_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX,
                                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                0, sv),
                     0);
    peer.fd = sv[1];
}

/* A stream owned by the "plugin" owner, as a plugin's would be. */
static ioloop_stream_t *
new_stream(ioloop_loop_t *loop, int fd, size_t max_buffer,
           ioloop_time_t idle_timeout)
{
    struct ioloop_stream_options o = {
        .size = sizeof(o),
        .max_buffer_size = max_buffer,
        .idle_timeout = idle_timeout,
        .close_cb = cb_close,
        .arg = &P,
    };
    const struct ioloop_owner *previous = ioloop__set_owner(loop, &plugin);

    P.s = ioloop_stream_new(loop, fd, &o);
    ioloop__set_owner(loop, previous);
    assert_non_null(P.s);
    return P.s;
}

static void
finish(ioloop_loop_t *loop)
{
    assert_int_equal(watchdog_fired, 0);
    assert_int_equal(P.owner_errors, 0);
    if (peer.fd >= 0) {
        close(peer.fd);
    }
    ioloop_loop_free(loop);
}

static void
fill(char *p, size_t len, size_t seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (char) ((i + seed) * 7 % 251);
    }
}

static void
peer_shut(ioloop_loop_t *loop)
{
    ioloop_remove_handler(loop, peer.fd);
    close(peer.fd);
    peer.fd = -1;
}

/* Writes wchunk bytes per event; reads rchunk bytes per event. */
static int
peer_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    ssize_t n;

    (void) arg;
    if ((events & IOLOOP_WRITE) && peer.off < peer.slen) {
        size_t len = peer.slen - peer.off;

        n = write(fd, peer.src + peer.off,
                  len < peer.wchunk ? len : peer.wchunk);
        if (n > 0) {
            peer.off += (size_t) n;
        }
        if (peer.off == peer.slen) {
            if (peer.close_after_write) {
                peer_shut(loop);
                return 0;
            }
            ioloop_update_handler(loop, fd, peer.dst ? IOLOOP_READ : 0);
        }
    }
    if ((events & (IOLOOP_READ | IOLOOP_HUP)) && peer.dst != NULL) {
        size_t room = peer.dcap - peer.got;

        n = read(fd, peer.dst + peer.got,
                 room < peer.rchunk ? room : peer.rchunk);
        if (n > 0) {
            peer.got += (size_t) n;
        } else if (n == 0 || errno != EAGAIN) {
            peer.eof = true;
            ioloop_update_handler(loop, fd, 0);
        }
        if (peer.close_after_read && peer.got >= peer.close_after_read) {
            peer_shut(loop);
        } else if (peer.stop_at && peer.got == peer.stop_at) {
            assert_int_equal(P.dones, 1); /* done ran before the last byte
                                             could arrive */
            ioloop_stream_close(P.s);
        }
    }
    return 0;
}

static void
peer_write(ioloop_loop_t *loop, const char *src, size_t len, size_t chunk,
           bool close_after)
{
    peer.src = src;
    peer.slen = len;
    peer.wchunk = chunk;
    peer.close_after_write = close_after;
    assert_int_equal(ioloop_add_handler(loop, peer.fd, IOLOOP_WRITE, peer_io,
                                        NULL),
                     0);
}

static void
peer_read(ioloop_loop_t *loop, size_t cap, size_t chunk)
{
    peer.dst = malloc(cap);
    assert_non_null(peer.dst);
    peer.dcap = cap;
    peer.rchunk = chunk;
    assert_int_equal(ioloop_add_handler(loop, peer.fd, IOLOOP_READ, peer_io,
                                        NULL),
                     0);
}

/* Starts the steps, runs the loop until the stream's close callback. */
static void
run_steps(ioloop_loop_t *loop, ioloop_stream_t *s)
{
    issue(s);
    assert_int_equal(ioloop_start(loop), 0);
}

/* The delimiter spans reads: the peer sends one byte per iteration. */
static void
test_read_until_one_byte_at_a_time(void **state)
{
    static const char msg[] = "abc\r\n\r\nde\r\n\r\n";
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.steps[0] = (struct step){S_UNTIL, 0, "\r\n\r\n"};
    P.steps[1] = (struct step){S_UNTIL, 0, "\r\n\r\n"};
    P.steps[2] = (struct step){S_END, 0, NULL};
    peer_write(loop, msg, strlen(msg), 1, false);
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 2);
    assert_string_equal(P.msgs[0], "abc\r\n\r\n");
    assert_string_equal(P.msgs[1], "de\r\n\r\n");
    assert_true(P.msg_iter[1] >= P.msg_iter[0] + 6); /* byte by byte */
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, 0);
    finish(loop);
}

/* With a read pending and nothing buffered: no buffer held; closes. */
static int
cb_check_drained(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    assert_int_equal(P.reads, 3);
    assert_int_equal(ioloop__stream_buffered(P.s), 0);
    ioloop_stream_close(P.s);
    return 0;
}

/* Several messages in one write: the first from the I/O handler, each
 * next one from the buffer, one iteration later, never re-entrantly. */
static void
test_read_until_pipelined(void **state)
{
    static const char msg[] = "one\ntwo\nthree\n";
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    for (int i = 0; i < 4; i++) {
        P.steps[i] = (struct step){S_UNTIL, 0, "\n"};
    }
    assert_int_equal(write(sv[1], msg, strlen(msg)), (ssize_t) strlen(msg));
    ioloop_call_later(loop, 50 * IOLOOP_NS_PER_MS, cb_check_drained, NULL);
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 3);
    assert_string_equal(P.msgs[0], "one\n");
    assert_string_equal(P.msgs[1], "two\n");
    assert_string_equal(P.msgs[2], "three\n");
    assert_int_equal(P.msg_iter[1], P.msg_iter[0] + 1);
    assert_int_equal(P.msg_iter[2], P.msg_iter[1] + 1);
    /* Only the leftover was copied, and the copy is gone once drained
     * (cb_check_drained). */
    assert_int_equal(P.buffered_at[0], strlen("two\nthree\n"));
    assert_int_equal(P.closes, 1);
    finish(loop);
}

/* A delimiter longer than the inline copy, spanning reads. */
static void
test_read_until_long_delimiter(void **state)
{
    static const char msg[] = "a--boundary--bb--boundary--";
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.steps[0] = (struct step){S_UNTIL, 0, "--boundary--"};
    P.steps[1] = (struct step){S_UNTIL, 0, "--boundary--"};
    P.steps[2] = (struct step){S_END, 0, NULL};
    peer_write(loop, msg, strlen(msg), 5, false);
    issue(P.s);
    assert_int_equal(ioloop__stream_buffered(P.s), strlen("--boundary--"));
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.reads, 2);
    assert_string_equal(P.msgs[0], "a--boundary--");
    assert_string_equal(P.msgs[1], "bb--boundary--");
    finish(loop);
}

/* read_bytes beyond the 64 KiB scratch accumulates; what follows stays
 * for the next read. */
static void
test_read_bytes_larger_than_scratch(void **state)
{
    size_t big = 300000, len = big + 10;
    char *src = malloc(len);
    ioloop_loop_t *loop = new_epoll_loop(len);
    int sv[2];

    (void) state;
    assert_true(big > IOLOOP_STREAM_SCRATCH);
    fill(src, len, 0);
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.steps[0] = (struct step){S_BYTES, big, NULL};
    P.steps[1] = (struct step){S_BYTES, 10, NULL};
    P.steps[2] = (struct step){S_END, 0, NULL};
    peer_write(loop, src, len, 70000, false);
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 2);
    assert_int_equal(P.msglen[0], big);
    assert_int_equal(P.msglen[1], 10);
    assert_int_equal(P.len, len);
    assert_memory_equal(P.data, src, len);
    finish(loop);
    free(src);
}

static int
cb_peer_more(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    assert_int_equal(P.reads, 3);
    assert_int_equal(write(peer.fd, "klmnop", 6), 6);
    return 0;
}

/* read_some gives what is there, at most max, from the fd or the
 * buffer. */
static void
test_read_some(void **state)
{
    static const char msg[] = "ab\ncdefghij";
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    P.steps[1] = (struct step){S_SOME, 3, NULL};
    P.steps[2] = (struct step){S_SOME, 100, NULL};
    P.steps[3] = (struct step){S_SOME, 4, NULL};
    P.steps[4] = (struct step){S_SOME, 100, NULL};
    P.steps[5] = (struct step){S_END, 0, NULL};
    assert_int_equal(write(sv[1], msg, strlen(msg)), (ssize_t) strlen(msg));
    /* The leftover "cdefghij" serves two reads; then more arrives. */
    ioloop_call_later(loop, 50 * IOLOOP_NS_PER_MS, cb_peer_more, NULL);
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 5);
    assert_string_equal(P.msgs[0], "ab\n");
    assert_string_equal(P.msgs[1], "cde");
    assert_string_equal(P.msgs[2], "fghij");
    assert_string_equal(P.msgs[3], "klmn");
    assert_string_equal(P.msgs[4], "op");
    finish(loop);
}

/* A chunk per read until the peer closes, then the close callback. */
static void
test_read_until_close(void **state)
{
    size_t len = 200 * KiB;
    char *src = malloc(len);
    ioloop_loop_t *loop = new_epoll_loop(len);
    int sv[2];

    (void) state;
    fill(src, len, 3);
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.steps[0] = (struct step){S_CLOSE, 0, NULL};
    peer_write(loop, src, len, 50000, true);
    run_steps(loop, P.s);
    assert_true(P.reads >= 4); /* at most 64 KiB per read */
    assert_int_equal(P.len, len);
    assert_memory_equal(P.data, src, len);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, 0);
    finish(loop);
    free(src);
}

/* 4 MiB to a peer that reads 4 KiB at a time: partial writes, the exact
 * bytes, done once after the last byte reached the kernel. */
static void
test_write_large_to_slow_peer(void **state)
{
    size_t len = 4 * MiB;
    char *src = malloc(len);
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    fill(src, len, 5);
    new_pair(sv);
    new_stream(loop, sv[0], 8 * MiB, 0);
    peer_read(loop, len, 4 * KiB);
    peer.stop_at = len;
    P.depth++;
    assert_int_equal(ioloop_stream_write(P.s, src, len, cb_done), 0);
    P.depth--;
    assert_true(ioloop_stream_pending(P.s) > 0);
    assert_true(ioloop_stream_pending(P.s) < len);
    assert_int_equal(ioloop__stream_buffered(P.s), ioloop_stream_pending(P.s));
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.dones, 1);
    assert_int_equal(P.done_pending, 0);
    assert_int_equal(peer.got, len);
    assert_memory_equal(peer.dst, src, len);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, 0);
    finish(loop);
    free(src);
}

/* Several writes queued with done callbacks: only the latest runs. */
static void
test_write_done_latest_only(void **state)
{
    size_t len = 1 * MiB;
    char *src = malloc(len + 10);
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    fill(src, len + 10, 9);
    new_pair(sv);
    new_stream(loop, sv[0], 2 * MiB, 0);
    assert_int_equal(ioloop_stream_write(P.s, src, len, cb_done_a), 0);
    assert_true(ioloop_stream_pending(P.s) > 0);
    assert_int_equal(ioloop_stream_write(P.s, src + len, 10, cb_done), 0);
    assert_int_equal(ioloop_stream_write(P.s, NULL, 0, NULL), 0);
    peer_read(loop, len + 10, 64 * KiB);
    peer.stop_at = len + 10;
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.dones_a, 0);
    assert_int_equal(P.dones, 1);
    assert_memory_equal(peer.dst, src, len + 10);
    finish(loop);
    free(src);
}

/* A write the kernel takes at once runs done in a later iteration, not
 * inside stream_write; the output buffer is never allocated. */
static void
test_write_done_deferred(void **state)
{
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.depth++;
    assert_int_equal(ioloop_stream_write(P.s, "hello", 5, cb_done_close), 0);
    P.depth--;
    assert_int_equal(P.dones, 0);
    assert_int_equal(ioloop_stream_pending(P.s), 0);
    assert_int_equal(ioloop__stream_buffered(P.s), 0);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.dones, 1);
    assert_int_equal(P.closes, 1);
    finish(loop);
}

/* The peer closes while 4 MiB are queued: the stream closes with EPIPE
 * (or ECONNRESET), done never runs. */
static void
test_peer_closes_mid_write(void **state)
{
    size_t len = 4 * MiB;
    char *src = malloc(len);
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    fill(src, len, 1);
    new_pair(sv);
    new_stream(loop, sv[0], 8 * MiB, 0);
    peer_read(loop, len, 16 * KiB);
    peer.close_after_read = 100 * KiB;
    assert_int_equal(ioloop_stream_write(P.s, src, len, cb_done), 0);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    assert_true(P.close_error == EPIPE || P.close_error == ECONNRESET);
    assert_int_equal(P.dones, 0);
    finish(loop);
    free(src);
}

/* max_buffer_size bytes with no delimiter: closed with ENOBUFS; a
 * read_bytes that could never fit is refused and the stream stays. */
static void
test_read_until_max_buffer(void **state)
{
    char junk[4096];
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    memset(junk, 'x', sizeof(junk));
    new_pair(sv);
    new_stream(loop, sv[0], 1024, 0);
    assert_int_equal(ioloop_stream_read_bytes(P.s, 1025, cb_read), -ENOBUFS);
    assert_int_equal(ioloop_stream_fd(P.s), sv[0]);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    assert_int_equal(write(sv[1], junk, sizeof(junk)), (ssize_t) sizeof(junk));
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, ENOBUFS);
    finish(loop);
}

/* A write that would queue past max_buffer_size is refused whole; the
 * stream stays open and usable. */
static void
test_write_max_buffer(void **state)
{
    static char chunk[64 * KiB];
    ioloop_loop_t *loop = new_epoll_loop(0);
    size_t max = sizeof(chunk), queued;
    int sv[2];

    (void) state;
    memset(chunk, 'w', sizeof(chunk));
    new_pair(sv);
    new_stream(loop, sv[0], max, 0);
    assert_int_equal(ioloop_stream_write(P.s, chunk, max + 1, NULL),
                     -ENOBUFS);
    while (ioloop_stream_pending(P.s) == 0) {
        assert_int_equal(ioloop_stream_write(P.s, chunk, 16 * KiB, NULL), 0);
    }
    queued = ioloop_stream_pending(P.s);
    assert_int_equal(ioloop_stream_write(P.s, chunk, max - queued + 1, NULL),
                     -ENOBUFS);
    assert_int_equal(ioloop_stream_pending(P.s), queued);
    assert_int_equal(ioloop_stream_write(P.s, chunk, max - queued, cb_done),
                     0);
    assert_int_equal(ioloop_stream_pending(P.s), max);
    assert_int_equal(ioloop_stream_write(P.s, chunk, 1, NULL), -ENOBUFS);
    assert_int_equal(ioloop_stream_fd(P.s), sv[0]);
    assert_int_equal(ioloop_stream_error(P.s), 0);
    ioloop_stream_close(P.s); /* drops the queue: done never runs */
    assert_int_equal(ioloop_stream_pending(P.s), 0);
    assert_int_equal(ioloop_stream_write(P.s, chunk, 1, NULL), -EPIPE);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, 0);
    assert_int_equal(P.dones, 0);
    finish(loop);
}

static int
cb_poke_read(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    assert_int_equal(write(peer.fd, "x", 1), 1);
    P.fake->level[P.fake_fd] = IOLOOP_READ;
    return 0;
}

static int
cb_poke_write(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    assert_int_equal(ioloop_stream_write(P.s, "y", 1, NULL), 0);
    return 0;
}

static int
cb_assert_open(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    assert_int_equal(P.closes, 0);
    return 0;
}

static ioloop_loop_t *
new_fake_loop(void)
{
    char err[256];
    ioloop_loop_t *loop;

    fake_now = 1000 * IOLOOP_NS_PER_S;
    loop = ioloop_loop_new(&fake_backend_ops, err, sizeof(err));
    assert_non_null(loop);
    ioloop__set_clock(loop, fake_clock, NULL);
    reset(loop, 64);
    return loop;
}

/* ETIMEDOUT exactly idle_timeout after the last activity, not before: a
 * read at 6 s and a write at 12 s move a 10 s deadline to 22 s, with one
 * timer re-armed lazily (3 runs, not one per read). */
static void
test_idle_timeout(void **state)
{
    const ioloop_time_t s = IOLOOP_NS_PER_S;
    ioloop_time_t t0;
    ioloop_loop_t *loop = new_fake_loop();
    int sv[2];

    (void) state;
    /* No activity: closed at t0 + 10 s. */
    t0 = ioloop_time(loop);
    new_pair(sv);
    new_stream(loop, sv[0], 0, 10 * s);
    /* No read pending: the fd is not watched for input (backpressure). */
    assert_int_equal(fake_backend_last()->interest[sv[0]], 0);
    ioloop_call_at(loop, t0 + 10 * s - 1, cb_assert_open, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_time, t0 + 10 * s);
    finish(loop);

    loop = new_fake_loop();
    t0 = ioloop_time(loop);
    new_pair(sv);
    new_stream(loop, sv[0], 0, 10 * s);
    P.fake = fake_backend_last();
    P.fake_fd = sv[0];
    for (int i = 0; i < MAX_STEPS; i++) {
        P.steps[i] = (struct step){S_SOME, 100, NULL};
    }
    issue(P.s);
    assert_int_equal(P.fake->interest[sv[0]], IOLOOP_READ);
    ioloop_call_at(loop, t0 + 6 * s, cb_poke_read, NULL);
    ioloop_call_at(loop, t0 + 12 * s, cb_poke_write, NULL);
    ioloop_call_at(loop, t0 + 22 * s - 1, cb_assert_open, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.reads, 1);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_time, t0 + 22 * s);
    assert_int_equal(ioloop__stats(loop)->timers_run, 3 + 3);
    finish(loop);
}

/* A stream with read and write timeouts, owned by the "plugin". */
static ioloop_stream_t *
new_timed_stream(ioloop_loop_t *loop, int fd, ioloop_time_t read_timeout,
                 ioloop_time_t write_timeout)
{
    struct ioloop_stream_options o = {
        .size = sizeof(o),
        .max_buffer_size = 8 * MiB,
        .read_timeout = read_timeout,
        .write_timeout = write_timeout,
        .close_cb = cb_close,
        .arg = &P,
    };
    const struct ioloop_owner *previous = ioloop__set_owner(loop, &plugin);

    P.s = ioloop_stream_new(loop, fd, &o);
    ioloop__set_owner(loop, previous);
    assert_non_null(P.s);
    P.fake = fake_backend_last();
    P.fake_fd = fd;
    return P.s;
}

/* One byte from the peer, reported once by the next poll. */
static int
cb_send_byte(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    assert_int_equal(write(peer.fd, arg, 1), 1);
    fake_backend_script(P.fake, P.fake_fd, IOLOOP_READ);
    return 0;
}

static int
cb_start_read(ioloop_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    assert_int_equal(P.closes, 0);
    issue(P.s);
    return 0;
}

/* The peer drains 64 KiB; the stream's fd is reported writable once. */
static int
cb_peer_drains(ioloop_loop_t *loop, void *arg)
{
    static char sink[64 * KiB];
    size_t got = 0;
    ssize_t n;

    (void) loop;
    (void) arg;
    while (got < sizeof(sink)
           && (n = read(peer.fd, sink, sizeof(sink) - got)) > 0) {
        got += (size_t) n;
    }
    assert_true(got > 0);
    fake_backend_script(P.fake, P.fake_fd, IOLOOP_WRITE);
    return 0;
}

/* read_timeout runs only while a read waits: a stream with no read
 * pending outlives it; a pending read_until that gets no byte closes 5 s
 * after the read call, with ETIMEDOUT and reason READ; a byte that does
 * not complete the read still pushes the deadline back; a read served
 * restarts it for the next read. */
static void
test_read_timeout(void **state)
{
    const ioloop_time_t s = IOLOOP_NS_PER_S;
    ioloop_loop_t *loop = new_fake_loop();
    ioloop_time_t t0 = ioloop_time(loop);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_timed_stream(loop, sv[0], 5 * s, 0);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    ioloop_call_at(loop, t0 + 20 * s, cb_start_read, NULL);
    ioloop_call_at(loop, t0 + 25 * s - 1, cb_assert_open, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_READ);
    assert_int_equal(P.close_time, t0 + 25 * s);
    finish(loop);

    /* "x" at 3 s (no delimiter yet) moves the deadline to 8 s; "\n" at
     * 7 s serves the read, the next read_until starts then: 12 s. */
    loop = new_fake_loop();
    t0 = ioloop_time(loop);
    new_pair(sv);
    new_timed_stream(loop, sv[0], 5 * s, 0);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    P.steps[1] = (struct step){S_UNTIL, 0, "\n"};
    ioloop_call_at(loop, t0 + 3 * s, cb_send_byte, "x");
    ioloop_call_at(loop, t0 + 7 * s, cb_send_byte, "\n");
    ioloop_call_at(loop, t0 + 12 * s - 1000, cb_assert_open, NULL);
    issue(P.s);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.reads, 1);
    assert_string_equal(P.msgs[0], "x\n");
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_READ);
    assert_true(P.close_time > t0 + 12 * s);
    assert_true(P.close_time < t0 + 12 * s + IOLOOP_NS_PER_S / 1000);
    finish(loop);
}

/* write_timeout runs only while output is queued: 4 MiB to a peer that
 * reads nothing close 5 s after the write, with reason WRITE; the peer
 * draining 64 KiB at 4 s (progress) moves the deadline to 9 s. An
 * idle_timeout and read_timeout that run longer stay out of the way. */
static void
test_write_timeout(void **state)
{
    const ioloop_time_t s = IOLOOP_NS_PER_S;
    size_t len = 4 * MiB;
    char *src = calloc(1, len);
    ioloop_loop_t *loop = new_fake_loop();
    ioloop_time_t t0 = ioloop_time(loop);
    int sv[2];

    (void) state;
    assert_non_null(src);
    new_pair(sv);
    new_timed_stream(loop, sv[0], 0, 5 * s);
    assert_int_equal(ioloop_stream_write(P.s, src, len, cb_done), 0);
    assert_true(ioloop_stream_pending(P.s) > 0);
    ioloop_call_at(loop, t0 + 5 * s - 1, cb_assert_open, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_WRITE);
    assert_int_equal(P.close_time, t0 + 5 * s);
    assert_int_equal(P.dones, 0);
    finish(loop);

    loop = new_fake_loop();
    t0 = ioloop_time(loop);
    new_pair(sv);
    new_timed_stream(loop, sv[0], 30 * s, 5 * s);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    issue(P.s); /* a read waits too, with a longer timeout */
    assert_int_equal(ioloop_stream_write(P.s, src, len, cb_done), 0);
    ioloop_call_at(loop, t0 + 4 * s, cb_peer_drains, NULL);
    ioloop_call_at(loop, t0 + 9 * s - 1000, cb_assert_open, NULL);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_WRITE);
    assert_true(P.close_time > t0 + 9 * s);
    assert_true(P.close_time < t0 + 9 * s + IOLOOP_NS_PER_S / 1000);
    finish(loop);
    free(src);
}

/* A stream closed by its peer or by the plugin reports no timeout; the
 * idle timeout reports IDLE. */
static void
test_timeout_reason_none(void **state)
{
    ioloop_loop_t *loop = new_fake_loop();
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, IOLOOP_NS_PER_S);
    ioloop_add_callback(loop, cb_close_stream, P.s);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.close_error, 0);
    assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_NONE);
    finish(loop);

    loop = new_fake_loop();
    new_pair(sv);
    new_stream(loop, sv[0], 0, IOLOOP_NS_PER_S);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.close_error, ETIMEDOUT);
    assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_IDLE);
    finish(loop);
}

static void
cb_overflow(ioloop_stream_t *s, void *arg)
{
    assert_ptr_equal(arg, &P);
    check_owner();
    P.overflows++;
    P.overflow_time = ioloop_time(P.loop);
    assert_int_equal(ioloop__stream_buffered(s), 0); /* input dropped */
    assert_int_equal(ioloop_stream_read_some(s, 1, cb_read), -EPIPE);
    if (P.overflow_reply != NULL) {
        assert_true(ioloop_stream_write(s, P.overflow_reply, P.overflow_len,
                                        NULL)
                    >= 0);
    }
}

static void
cb_drained(ioloop_stream_t *s, void *arg)
{
    assert_ptr_equal(arg, &P);
    assert_int_equal(P.depth, 0);
    check_owner();
    P.drains++;
    P.drained_pending = ioloop_stream_pending(s);
}

static void
cb_drained_tail(ioloop_stream_t *s, void *arg)
{
    cb_drained(s, arg);
    /* Below the mark: no second drained_cb. */
    assert_int_equal(ioloop_stream_write(s, "tail", 4, NULL), 0);
}

/* A stream with every option of issue 10's stream API. */
static ioloop_stream_t *
new_full_stream(ioloop_loop_t *loop, int fd,
                const struct ioloop_stream_options *base)
{
    struct ioloop_stream_options o = *base;
    const struct ioloop_owner *previous = ioloop__set_owner(loop, &plugin);

    o.size = sizeof(o);
    o.close_cb = cb_close;
    o.arg = &P;
    P.s = ioloop_stream_new(loop, fd, &o);
    ioloop__set_owner(loop, previous);
    assert_non_null(P.s);
    return P.s;
}

/* A small read limit beside a large write limit (a subscriber): 4 MiB
 * queue for writing while reads stop at 1 KiB; a read limit of 0 takes
 * max_buffer_size's value. */
static void
test_separate_limits(void **state)
{
    struct ioloop_stream_options o = {
        .max_read_buffer = 1024,
        .max_write_buffer = 8 * MiB,
    };
    size_t len = 4 * MiB;
    char *src = calloc(1, len), junk[2048];
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    assert_non_null(src);
    memset(junk, 'x', sizeof(junk));
    new_pair(sv);
    new_full_stream(loop, sv[0], &o);
    assert_int_equal(ioloop_stream_read_bytes(P.s, 1025, cb_read), -ENOBUFS);
    assert_int_equal(ioloop_stream_write(P.s, src, len, NULL), 0);
    assert_true(ioloop_stream_pending(P.s) > 1024);
    assert_int_equal(ioloop_stream_write(P.s, src, 8 * MiB, NULL), -ENOBUFS);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    assert_int_equal(write(sv[1], junk, sizeof(junk)), (ssize_t) sizeof(junk));
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 0);
    assert_int_equal(P.close_error, ENOBUFS);
    finish(loop);

    /* max_buffer_size 2 KiB, max_write_buffer 0: 2 KiB both ways. */
    loop = new_epoll_loop(64);
    new_pair(sv);
    o = (struct ioloop_stream_options){.max_buffer_size = 2048,
                                       .max_read_buffer = 4096};
    new_full_stream(loop, sv[0], &o);
    assert_int_equal(ioloop_stream_read_bytes(P.s, 4097, cb_read), -ENOBUFS);
    while (ioloop_stream_pending(P.s) == 0) {
        assert_int_equal(ioloop_stream_write(P.s, src, 1024, NULL), 0);
    }
    assert_int_equal(ioloop_stream_write(P.s, src, 2049, NULL), -ENOBUFS);
    ioloop_add_callback(loop, cb_close_stream, P.s);
    assert_int_equal(ioloop_start(loop), 0);
    finish(loop);
    free(src);
}

/* Reads everything the peer end holds now, into buf; the length. */
static size_t
drain_peer(int fd, char *buf, size_t cap, bool *eof)
{
    size_t got = 0;
    ssize_t n;

    *eof = false;
    while (got < cap && (n = read(fd, buf + got, cap - got)) != 0) {
        if (n < 0) {
            return got; /* ECONNRESET: closed with input unread */
        }
        got += (size_t) n;
    }
    *eof = got < cap;
    return got;
}

/* A line past the read limit: overflow_cb runs once, its reply reaches
 * the peer, then the stream closes with ENOBUFS (not a timeout). Without
 * a reply it closes at once. */
static void
test_overflow_reply(void **state)
{
    static const char reply[] = "-ERR line too long\r\n";
    struct ioloop_stream_options o = {
        .max_read_buffer = 1024,
        .overflow_cb = cb_overflow,
    };
    char junk[4096], got[64];
    ioloop_loop_t *loop;
    bool eof;
    int sv[2];

    (void) state;
    memset(junk, 'x', sizeof(junk));
    for (int with_reply = 1; with_reply >= 0; with_reply--) {
        loop = new_epoll_loop(64);
        new_pair(sv);
        new_full_stream(loop, sv[0], &o);
        P.overflow_reply = with_reply ? reply : NULL;
        P.overflow_len = strlen(reply);
        P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
        assert_int_equal(write(sv[1], junk, sizeof(junk)),
                         (ssize_t) sizeof(junk));
        run_steps(loop, P.s);
        assert_int_equal(P.overflows, 1);
        assert_int_equal(P.reads, 0);
        assert_int_equal(P.closes, 1);
        assert_int_equal(P.close_error, ENOBUFS);
        assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_NONE);
        assert_int_equal(drain_peer(sv[1], got, sizeof(got), &eof),
                         with_reply ? strlen(reply) : 0);
        assert_true(eof);
        if (with_reply) {
            assert_memory_equal(got, reply, strlen(reply));
        }
        finish(loop);
    }
}

/* An overflow reply the peer does not read is bounded: the stream closes
 * with ENOBUFS 5 s after the overflow without a write_timeout, after
 * write_timeout with one. */
static void
test_overflow_reply_bounded(void **state)
{
    const ioloop_time_t sec = IOLOOP_NS_PER_S;
    struct ioloop_stream_options o = {
        .max_read_buffer = 1024,
        .max_write_buffer = 8 * MiB,
        .overflow_cb = cb_overflow,
    };
    size_t len = 4 * MiB;
    char *big = calloc(1, len), junk[2048];
    ioloop_loop_t *loop;
    int sv[2];

    (void) state;
    assert_non_null(big);
    memset(junk, 'x', sizeof(junk));
    for (int i = 0; i < 2; i++) {
        o.write_timeout = i == 0 ? 0 : 2 * sec;
        loop = new_fake_loop();
        new_pair(sv);
        new_full_stream(loop, sv[0], &o);
        P.fake = fake_backend_last();
        P.fake_fd = sv[0];
        P.overflow_reply = big;
        P.overflow_len = len;
        P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
        issue(P.s);
        assert_int_equal(write(sv[1], junk, sizeof(junk)),
                         (ssize_t) sizeof(junk));
        fake_backend_script(P.fake, sv[0], IOLOOP_READ);
        assert_int_equal(ioloop_start(loop), 0);
        assert_int_equal(P.overflows, 1);
        assert_int_equal(P.close_error, ENOBUFS);
        assert_int_equal(P.close_timeout, IOLOOP_STREAM_TIMEOUT_NONE);
        assert_int_equal(P.close_time,
                         P.overflow_time + (i == 0 ? 5 : 2) * sec);
        assert_int_equal(ioloop__stats(loop)->stream_timeouts[2], 0);
        finish(loop);
    }
    free(big);
}

/* writev: small buffers go out in one writev(2) with nothing copied;
 * large ones to a slow peer copy only what the kernel did not take, once,
 * and arrive whole and in order. Bad counts and a sum past the write
 * limit are refused before any byte is written. */
static void
test_writev(void **state)
{
    size_t part = 1 * MiB, len = 3 * part;
    char *src = malloc(len);
    struct iovec small[3] = {{"a", 1}, {"bc", 2}, {"def", 3}};
    struct iovec large[3];
    ioloop_loop_t *loop = new_epoll_loop(0);
    char got[8];
    bool eof;
    int sv[2];

    (void) state;
    assert_non_null(src);
    fill(src, len, 3);
    new_pair(sv);
    new_stream(loop, sv[0], 4 * MiB, 0);
    assert_int_equal(ioloop_stream_writev(P.s, small, -1, NULL), -EINVAL);
    assert_int_equal(ioloop_stream_writev(P.s, NULL, 1, NULL), -EINVAL);
    assert_int_equal(ioloop_stream_writev(P.s, small, IOV_MAX + 1, NULL),
                     -EINVAL);
    assert_int_equal(ioloop_stream_writev(P.s, small, 0, NULL), 0);
    assert_int_equal(ioloop_stream_writev(P.s, small, 3, NULL), 0);
    assert_int_equal(ioloop__stream_buffered(P.s), 0);
    assert_int_equal(drain_peer(sv[1], got, sizeof(got), &eof), 6);
    assert_memory_equal(got, "abcdef", 6);
    for (int i = 0; i < 3; i++) {
        large[i] = (struct iovec){src + (size_t) i * part, part};
    }
    large[1].iov_len = 4 * MiB; /* the sum passes the limit */
    assert_int_equal(ioloop_stream_writev(P.s, large, 3, NULL), -ENOBUFS);
    assert_int_equal(drain_peer(sv[1], got, sizeof(got), &eof), 0);
    large[1].iov_len = part;
    P.depth++;
    assert_int_equal(ioloop_stream_writev(P.s, large, 3, cb_done), 0);
    P.depth--;
    assert_true(ioloop_stream_pending(P.s) > 0);
    assert_true(ioloop_stream_pending(P.s) < len);
    /* One block, exactly what is pending: a single copy. */
    assert_int_equal(ioloop__stream_buffered(P.s), ioloop_stream_pending(P.s));
    peer_read(loop, len + 6, 16 * KiB);
    memcpy(peer.dst, "abcdef", 6); /* read above */
    peer.got = 6;
    peer.stop_at = len + 6;
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.dones, 1);
    assert_int_equal(peer.got, len + 6);
    assert_memory_equal(peer.dst + 6, src, len);
    finish(loop);
    free(src);
}

/* Backpressure: writes return 1 once the queue passes write_high_water;
 * drained_cb runs once, after done, when the queue is empty again; a
 * write that stays below the mark never triggers it. */
static void
test_high_water(void **state)
{
    struct ioloop_stream_options o = {
        .max_buffer_size = 4 * MiB,
        .write_high_water = 64 * KiB,
        .drained_cb = cb_drained_tail,
    };
    size_t len = 2 * MiB;
    char *src = malloc(len);
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    assert_non_null(src);
    fill(src, len, 4);
    new_pair(sv);
    new_full_stream(loop, sv[0], &o);
    assert_int_equal(ioloop_stream_write(P.s, src, 1024, NULL), 0);
    P.depth++;
    assert_int_equal(ioloop_stream_write(P.s, src + 1024, len - 1024,
                                         cb_done),
                     1);
    P.depth--;
    assert_true(ioloop_stream_pending(P.s) > 64 * KiB);
    assert_int_equal(ioloop_stream_write(P.s, src, 1, NULL), 1);
    peer_read(loop, len + 1 + 4, 16 * KiB);
    peer.stop_at = len + 1 + 4; /* closes the stream */
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.dones, 1);
    assert_int_equal(P.drains, 1);
    assert_int_equal(P.drained_pending, 0);
    assert_int_equal(P.closes, 1);
    assert_memory_equal(peer.dst, src, len);
    assert_memory_equal(peer.dst + len, src, 1);
    assert_memory_equal(peer.dst + len + 1, "tail", 4);
    finish(loop);
    free(src);
}

/* A read callback closes its stream, from the I/O handler and from the
 * buffer; nothing touches the stream after, the close callback runs
 * once. */
static void
test_close_inside_read_callback(void **state)
{
    static const char msg[] = "a\nb\nc\n";
    ioloop_loop_t *loop;
    int sv[2];

    (void) state;
    for (int from_buffer = 0; from_buffer <= 1; from_buffer++) {
        loop = new_epoll_loop(64);
        new_pair(sv);
        new_stream(loop, sv[0], 0, 0);
        P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
        P.steps[1] = (struct step){from_buffer ? S_UNTIL : S_END, 0, "\n"};
        P.steps[2] = (struct step){S_END, 0, NULL};
        assert_int_equal(write(sv[1], msg, strlen(msg)), (ssize_t) strlen(msg));
        run_steps(loop, P.s);
        assert_int_equal(P.reads, 1 + from_buffer);
        assert_int_equal(P.closes, 1);
        assert_int_equal(P.close_error, 0);
        finish(loop);
    }
}

/* EOF with a read_until pending: the partial message is abandoned and the
 * stream closes with error 0. */
static void
test_eof_with_pending_read_until(void **state)
{
    static const char msg[] = "partial";
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    P.steps[0] = (struct step){S_UNTIL, 0, "\n"};
    peer_write(loop, msg, strlen(msg), 3, true);
    run_steps(loop, P.s);
    assert_int_equal(P.reads, 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, 0);
    finish(loop);
}

/* A peer that hangs up while nothing is pending closes the stream (the
 * level-triggered hang-up would otherwise spin). */
static void
test_peer_hangup_while_idle(void **state)
{
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    close(sv[1]);
    peer.fd = -1;
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.close_error, 0);
    assert_true(ioloop__stats(loop)->iterations < 10);
    finish(loop);
}

/* One read at a time; bad arguments; everything refused once closed. */
static void
test_second_read_busy(void **state)
{
    ioloop_loop_t *loop = new_epoll_loop(0);
    int sv[2];

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    assert_int_equal(ioloop_stream_read_bytes(P.s, 0, cb_read), -EINVAL);
    assert_int_equal(ioloop_stream_read_some(P.s, 0, cb_read), -EINVAL);
    assert_int_equal(ioloop_stream_read_until(P.s, "", 0, cb_read), -EINVAL);
    assert_int_equal(ioloop_stream_read_some(P.s, 1, NULL), -EINVAL);
    assert_int_equal(ioloop_stream_read_until(P.s, "\n", 1, cb_read), 0);
    assert_int_equal(ioloop_stream_read_until(P.s, "\n", 1, cb_read), -EBUSY);
    assert_int_equal(ioloop_stream_read_bytes(P.s, 1, cb_read), -EBUSY);
    assert_int_equal(ioloop_stream_read_some(P.s, 1, cb_read), -EBUSY);
    assert_int_equal(ioloop_stream_read_until_close(P.s, cb_read), -EBUSY);
    ioloop_stream_close(P.s);
    assert_int_equal(ioloop_stream_read_some(P.s, 1, cb_read), -EPIPE);
    assert_int_equal(ioloop_stream_write(P.s, "x", 1, NULL), -EPIPE);
    assert_int_equal(ioloop_stream_fd(P.s), -1);
    assert_int_equal(P.closes, 0); /* not from inside stream_close */
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    assert_int_equal(P.reads, 0);
    finish(loop);
}

/* The struct stays small and an idle stream, even with a read pending,
 * holds no buffer; a stream on an fd that has a handler is refused. */
static void
test_idle_stream_is_small(void **state)
{
    ioloop_loop_t *loop = new_epoll_loop(0);
    struct ioloop_stream_options bad = {0};
    int sv[2];

    (void) state;
    assert_true(ioloop__stream_struct_size() <= 232);
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    assert_int_equal(ioloop__stream_buffered(P.s), 0);
    assert_int_equal(ioloop_stream_read_until(P.s, "\r\n\r\n", 4, cb_read),
                     0);
    assert_int_equal(ioloop__stream_buffered(P.s), 0);
    assert_int_equal(ioloop_stream_write(P.s, "hi", 2, NULL), 0);
    assert_int_equal(ioloop__stream_buffered(P.s), 0);
    errno = 0;
    assert_null(ioloop_stream_new(loop, sv[0], NULL));
    assert_int_equal(errno, EEXIST);
    assert_null(ioloop_stream_new(loop, sv[1], &bad));
    assert_int_equal(errno, EINVAL);
    ioloop_add_callback(loop, cb_close_stream, P.s);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(P.closes, 1);
    finish(loop);
}

/* A stream closed while the loop is stopped gets its close callback when
 * the loop runs again; when the loop is freed first (a plugin's fini),
 * the loop frees it without the callback (LSan checks) -- also with a
 * deferred read queued. */
static void
test_close_while_stopped(void **state)
{
    ioloop_loop_t *loop = new_epoll_loop(64);
    int sv[2], fd;

    (void) state;
    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    fd = sv[0];
    ioloop_stream_close(P.s);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* the fd is closed now */
    assert_int_equal(P.closes, 0);
    assert_int_equal(ioloop_start(loop), 0); /* cb_close stops it */
    assert_int_equal(P.closes, 1);
    close(sv[1]);

    new_pair(sv);
    new_stream(loop, sv[0], 0, 0);
    assert_int_equal(write(sv[1], "a\n", 2), 2);
    P.steps[0].op = S_CLOSE; /* no follow-up read */
    ioloop_add_callback(loop, cb_read_stop, P.s);
    assert_int_equal(ioloop_start(loop), 0);
    ioloop_stream_close(P.s);
    close(sv[1]);
    peer.fd = -1;
    ioloop_loop_free(loop); /* reaps the closed stream */
    assert_int_equal(P.closes, 1);
}

/* The close callback of another owner's stream. */
static int other_closes;

static void
cb_other_close(ioloop_stream_t *s, void *arg)
{
    (void) s;
    (void) arg;
    other_closes++;
    ioloop_stop(P.loop);
}

/* Releasing an instance's streams (it failed init, or its fini ran)
 * frees its open and its closed ones at once, without any of their
 * callbacks, and leaves another owner's closed stream on the close queue:
 * that one's close callback still runs (LSan checks the frees). */
static void
test_release_owner(void **state)
{
    static struct ioloop_owner other = {.name = "other"};
    struct ioloop_stream_options o = {.size = sizeof(o),
                                      .close_cb = cb_other_close};
    ioloop_loop_t *loop = new_epoll_loop(64);
    const struct ioloop_owner *previous;
    ioloop_stream_t *kept;
    int a[2], b[2], c[2];

    (void) state;
    other_closes = 0;
    new_pair(a);
    ioloop_stream_close(new_stream(loop, a[0], 0, 0)); /* closed */
    new_pair(b);
    new_stream(loop, b[0], 0, 0); /* open, a read pending */
    assert_int_equal(ioloop_stream_read_some(P.s, 16, cb_read), 0);
    new_pair(c);
    previous = ioloop__set_owner(loop, &other);
    kept = ioloop_stream_new(loop, c[0], &o);
    ioloop__set_owner(loop, previous);
    assert_non_null(kept);
    ioloop_stream_close(kept);

    assert_int_equal(ioloop__streams_release_owner(loop, &plugin), 1);
    assert_int_equal(fcntl(b[0], F_GETFD), -1);
    assert_int_equal(ioloop__handler_count(loop), 0);
    assert_int_equal(ioloop_start(loop), 0); /* cb_other_close stops it */
    assert_int_equal(other_closes, 1);
    assert_int_equal(P.closes + P.reads, 0);
    close(a[1]);
    close(b[1]);
    finish(loop); /* closes c[1], the last peer */
}

static int
group_setup(void **state)
{
    char err[512];

    (void) state;
    signal(SIGPIPE, SIG_IGN); /* as the host does */
    return ioloop__backend_open(IOLOOP_BUILD_DIR "/backends/epoll.so",
                                &epoll_lib, err, sizeof(err));
}

static int
group_teardown(void **state)
{
    (void) state;
    ioloop__backend_close(&epoll_lib);
    free(P.data);
    free(peer.dst);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_until_one_byte_at_a_time),
        cmocka_unit_test(test_read_until_pipelined),
        cmocka_unit_test(test_read_until_long_delimiter),
        cmocka_unit_test(test_read_bytes_larger_than_scratch),
        cmocka_unit_test(test_read_some),
        cmocka_unit_test(test_read_until_close),
        cmocka_unit_test(test_write_large_to_slow_peer),
        cmocka_unit_test(test_write_done_latest_only),
        cmocka_unit_test(test_write_done_deferred),
        cmocka_unit_test(test_peer_closes_mid_write),
        cmocka_unit_test(test_read_until_max_buffer),
        cmocka_unit_test(test_write_max_buffer),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_write_timeout),
        cmocka_unit_test(test_timeout_reason_none),
        cmocka_unit_test(test_separate_limits),
        cmocka_unit_test(test_overflow_reply),
        cmocka_unit_test(test_overflow_reply_bounded),
        cmocka_unit_test(test_writev),
        cmocka_unit_test(test_high_water),
        cmocka_unit_test(test_close_inside_read_callback),
        cmocka_unit_test(test_eof_with_pending_read_until),
        cmocka_unit_test(test_peer_hangup_while_idle),
        cmocka_unit_test(test_second_read_busy),
        cmocka_unit_test(test_idle_stream_is_small),
        cmocka_unit_test(test_close_while_stopped),
        cmocka_unit_test(test_release_owner),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
