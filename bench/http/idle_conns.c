/*
 * bench/http/idle_conns.c: holds COUNT idle keep-alive connections to
 * 127.0.0.1:PORT and reports how much the server's RSS grew.
 *
 * Usage: idle_conns [--tls] PORT COUNT PID...
 *
 * With --tls each connection does a TLS handshake first (any version and
 * cipher the server picks, no verification: the server is our own) and
 * speaks HTTP inside it (bench/tls/run.sh).
 *
 * Sums VmRSS of the PIDs (the server's processes), then opens the
 * connections one after the other; each sends one GET / and waits for
 * the response's first bytes, so the server has really accepted and
 * served it. Then it waits a moment, sums VmRSS again, prints one line
 *   connections=N rss_before_kb=B rss_after_kb=A
 * and resets every connection (SO_LINGER 0: no TIME_WAIT left behind).
 * Bounded: 5 s per connection, 120 s in all; stops early (and says how
 * many it got) when the server or the fd limit refuses more.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "bench.h"

#define IO_TIMEOUT_S 5
#define TOTAL_TIMEOUT_NS (120 * 1000000000LL)
#define SETTLE_NS (500 * 1000000LL)

static int open_one(const struct sockaddr_in *addr, SSL_CTX *ctx,
                    SSL **ssl);
static long rss_kb(char **pids, int n);

int
main(int argc, char **argv)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    struct linger rst = {.l_onoff = 1, .l_linger = 0};
    long before, after, limit;
    int64_t deadline;
    int count, n;
    int *fds;
    SSL_CTX *ctx = NULL;
    SSL **ssls;

    if (argc > 1 && strcmp(argv[1], "--tls") == 0) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == NULL) {
            fprintf(stderr, "idle_conns: SSL_CTX_new failed\n");
            return 2;
        }
        signal(SIGPIPE, SIG_IGN); /* SSL_write to a server that left */
        argv++;
        argc--;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: %s [--tls] PORT COUNT PID...\n", argv[0]);
        return 2;
    }
    addr.sin_port = htons((uint16_t) atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    count = atoi(argv[2]);
    limit = bench_raise_nofile();
    if (count > limit - 16) {
        fprintf(stderr, "idle_conns: RLIMIT_NOFILE %ld allows %ld "
                        "connections, not %d\n", limit, limit - 16, count);
        count = (int) (limit - 16);
    }
    fds = bench_calloc((size_t) count, sizeof(*fds));
    ssls = bench_calloc((size_t) count, sizeof(*ssls));
    before = rss_kb(argv + 3, argc - 3);
    deadline = bench_now_ns() + TOTAL_TIMEOUT_NS;
    for (n = 0; n < count && bench_now_ns() < deadline; n++) {
        fds[n] = open_one(&addr, ctx, &ssls[n]);
        if (fds[n] < 0) {
            fprintf(stderr, "idle_conns: connection %d: %s\n", n + 1,
                    strerror(errno));
            break;
        }
    }
    bench_sleep_until(bench_now_ns() + SETTLE_NS);
    after = rss_kb(argv + 3, argc - 3);
    printf("connections=%d rss_before_kb=%ld rss_after_kb=%ld\n", n, before,
           after);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        SSL_free(ssls[i]);
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
        close(fds[i]);
    }
    free(ssls);
    free(fds);
    SSL_CTX_free(ctx);
    return n == count ? 0 : 1;
}

/* Connects (and with ctx does the TLS handshake, *ssl set), sends one
 * request and waits for the response; returns the fd, or -1 with errno
 * set and *ssl NULL. */
static int
open_one(const struct sockaddr_in *addr, SSL_CTX *ctx, SSL **ssl)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    char buf[512];
    ssize_t got;
    int fd, saved;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0
        || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0
        || connect(fd, (const struct sockaddr *) addr, sizeof(*addr)) < 0) {
        goto fail;
    }
    if (ctx != NULL) {
        errno = 0;
        *ssl = SSL_new(ctx);
        if (*ssl == NULL || SSL_set_fd(*ssl, fd) != 1
            || SSL_connect(*ssl) != 1
            || SSL_write(*ssl, req, (int) sizeof(req) - 1)
                   != (int) sizeof(req) - 1) {
            errno = errno != 0 ? errno : EPROTO;
            goto fail;
        }
        got = SSL_read(*ssl, buf, (int) sizeof(buf));
    } else {
        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL)
            != (ssize_t) sizeof(req) - 1) {
            goto fail;
        }
        got = recv(fd, buf, sizeof(buf), 0);
    }
    if (got <= 0) {
        errno = got == 0 || errno == 0 ? ECONNRESET : errno;
        goto fail;
    }
    return fd;

fail:
    saved = errno;
    SSL_free(*ssl);
    *ssl = NULL;
    close(fd);
    errno = saved;
    return -1;
}

/* The sum of VmRSS (kB) over the pids; a vanished pid counts 0. */
static long
rss_kb(char **pids, int n)
{
    long sum = 0;

    for (int i = 0; i < n; i++) {
        char path[64], line[256];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%s/status", pids[i]);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            long kb;

            if (sscanf(line, "VmRSS: %ld", &kb) == 1) {
                sum += kb;
            }
        }
        fclose(f);
    }
    return sum;
}
