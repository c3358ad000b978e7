/*
 * tests/unit/test_hello_http.c: hello_http's connection limits on
 * libioloop_testing (plugins/hello_http compiled in), where the clock
 * moves only when the test says so: each timeout fires exactly when due,
 * by reason; a connection costs one timer, not one per request or byte;
 * max_connections sheds and logs at most once a second. Connections are
 * socketpairs handed to hello__conn_open; their readiness is fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ioloop/testing.h>

#include "hello_http.h"

#define MS IOLOOP_NS_PER_MS
#define REACHED "max_connections (2) reached"

/* The plugin's descriptor (plugin.c). */
extern const struct ioloop_plugin ioloop_plugin_v1;

/* Timeouts of 1, 2 and 3 s; two connections at most. */
#define CONFIG                                                              \
    "{\"listen\": \"127.0.0.1:0\", \"routes\": {\"/\": \"hello\"},"        \
    " \"header_timeout\": 1, \"body_timeout\": 2,"                         \
    " \"keepalive_timeout\": 3, \"max_connections\": 2}"

static ioloop_testing_t *t;
static ioloop_testing_instance_t *inst;
static struct hello *h;
/* The host's table, and a copy the plugin is switched to that counts the
 * timer operations before passing them on. */
static const struct ioloop_api *host_api;
static struct ioloop_api counting_api;
static int timer_ops; /* call_at, call_later and cancel calls */

static ioloop_timer_t
counting_call_at(ioloop_instance_t *instance, ioloop_time_t deadline,
                 ioloop_cb cb, void *arg)
{
    timer_ops++;
    return host_api->call_at(instance, deadline, cb, arg);
}

static ioloop_timer_t
counting_call_later(ioloop_instance_t *instance, ioloop_time_t delay,
                    ioloop_cb cb, void *arg)
{
    timer_ops++;
    return host_api->call_later(instance, delay, cb, arg);
}

static int
counting_cancel(ioloop_instance_t *instance, ioloop_timer_t timer)
{
    timer_ops++;
    return host_api->cancel(instance, timer);
}

static int
setup(void **state)
{
    (void) state;
    t = ioloop_testing_new(0);
    if (t == NULL
        || ioloop_testing_start(t, &ioloop_plugin_v1, "hello", CONFIG, &inst)
               < 0) {
        fprintf(stderr, "start: %s\n", t ? ioloop_testing_error(t) : "");
        return -1;
    }
    h = ioloop_testing_state(inst);
    host_api = h->api;
    counting_api = *host_api;
    counting_api.call_at = counting_call_at;
    counting_api.call_later = counting_call_later;
    counting_api.cancel = counting_cancel;
    h->api = &counting_api;
    timer_ops = 0;
    return 0;
}

/* fini closes every connection: no handler stays registered. */
static int
teardown(void **state)
{
    int left;

    (void) state;
    ioloop_testing_stop(inst);
    left = ioloop_testing_handlers(t)
           + ioloop_testing_log_count(t, "fini left");
    ioloop_testing_free(t);
    return left == 0 ? 0 : -1;
}

/* A connection: returns the client's end; *server gets the plugin's. */
static int
conn(int *server)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX,
                                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                0, sv),
                     0);
    assert_int_equal(hello__conn_open(h, sv[0]), 0);
    *server = sv[0];
    return sv[1];
}

/* Sends s from the client and lets the server read it. */
static void
send_fire(int client, int server, const char *s)
{
    assert_int_equal(write(client, s, strlen(s)), (ssize_t) strlen(s));
    assert_int_equal(ioloop_testing_fire(t, server, IOLOOP_READ), 1);
}

/* Reads what the server sent; expects it to start with prefix. */
static void
expect_response(int client, const char *prefix)
{
    char buf[1024];
    ssize_t n = read(client, buf, sizeof(buf) - 1);

    assert_true(n > 0);
    buf[n] = '\0';
    assert_memory_equal(buf, prefix, strlen(prefix));
}

/* The server closed the connection: EOF, nothing more. */
static void
expect_closed(int client)
{
    char c;

    assert_int_equal(read(client, &c, 1), 0);
}

static void
expect_open(int client)
{
    char c;

    assert_int_equal(read(client, &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
}

/* 1000 keep-alive requests cost no timer operation beyond the
 * connection's one; the idle deadline then counts from the last. */
static void
test_one_timer_per_connection(void **state)
{
    int server, client = conn(&server);

    (void) state;
    assert_int_equal(timer_ops, 1);
    for (int i = 0; i < 1000; i++) {
        send_fire(client, server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        expect_response(client, "HTTP/1.1 200 OK\r\n");
    }
    assert_int_equal(timer_ops, 1);
    assert_int_equal(
        ioloop_testing_counter(t, "ioloop_http_requests_total", "2xx"), 1000);

    /* The timer fires every second (the shortest timeout) and re-arms
     * until the 3 s keep-alive deadline. */
    ioloop_testing_advance(t, 2999 * MS);
    expect_open(client);
    ioloop_testing_advance(t, 1 * MS);
    expect_closed(client);
    assert_int_equal(ioloop_testing_counter(
                         t, "ioloop_connections_timed_out_total", "idle"),
                     1);
    /* No timer left behind: nothing more ever runs. */
    assert_int_equal(ioloop_testing_advance(t, 60 * IOLOOP_NS_PER_S), 0);
    close(client);
}

/* The header timeout covers the whole head, however slowly it comes. */
static void
test_header_timeout_whole_head(void **state)
{
    int server, client = conn(&server);

    (void) state;
    send_fire(client, server, "GET / HT");
    ioloop_testing_advance(t, 600 * MS);
    send_fire(client, server, "TP/1.1\r\nHost");
    ioloop_testing_advance(t, 399 * MS);
    send_fire(client, server, ": x\r\n");
    expect_open(client);
    ioloop_testing_advance(t, 1 * MS);
    expect_closed(client);
    assert_int_equal(ioloop_testing_counter(
                         t, "ioloop_connections_timed_out_total", "header"),
                     1);
    close(client);

    /* A later request's head counts from its own first byte. */
    client = conn(&server);
    send_fire(client, server, "GET / HTTP/1.1\r\n\r\n");
    expect_response(client, "HTTP/1.1 200 OK\r\n");
    ioloop_testing_advance(t, 2500 * MS);
    send_fire(client, server, "GET / HTTP/1.1\r\n");
    ioloop_testing_advance(t, 999 * MS);
    expect_open(client);
    ioloop_testing_advance(t, 1 * MS);
    expect_closed(client);
    assert_int_equal(ioloop_testing_counter(
                         t, "ioloop_connections_timed_out_total", "header"),
                     2);
    close(client);
}

/* The body timeout runs between reads: each body byte restarts it. */
static void
test_body_timeout_between_reads(void **state)
{
    int server, client = conn(&server);

    (void) state;
    send_fire(client, server,
              "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");
    for (int i = 0; i < 4; i++) {
        ioloop_testing_advance(t, 1999 * MS);
        expect_open(client);
        send_fire(client, server, "6");
    }
    ioloop_testing_advance(t, 2000 * MS);
    expect_closed(client);
    assert_int_equal(ioloop_testing_counter(
                         t, "ioloop_connections_timed_out_total", "body"),
                     1);
    close(client);
}

/* Past max_connections: closed at once, counted, logged once a second. */
static void
test_max_connections(void **state)
{
    int s[5], c[5];

    (void) state;
    for (int i = 0; i < 2; i++) { /* served: idle until keep-alive's 3 s */
        c[i] = conn(&s[i]);
        send_fire(c[i], s[i], "GET / HTTP/1.1\r\n\r\n");
        expect_response(c[i], "HTTP/1.1 200 OK\r\n");
    }
    c[2] = conn(&s[2]);
    expect_closed(c[2]);
    c[3] = conn(&s[3]);
    expect_closed(c[3]);
    assert_int_equal(
        ioloop_testing_counter(t, "ioloop_connections_shed_total", NULL), 2);
    assert_int_equal(ioloop_testing_log_count(t, REACHED), 1);
    ioloop_testing_advance(t, 999 * MS); /* below every timeout */
    c[4] = conn(&s[4]);
    expect_closed(c[4]);
    assert_int_equal(ioloop_testing_log_count(t, REACHED), 1);
    ioloop_testing_advance(t, 1 * MS);
    close(c[4]);
    c[4] = conn(&s[4]);
    expect_closed(c[4]);
    assert_int_equal(ioloop_testing_log_count(t, REACHED), 2);
    assert_int_equal(ioloop_testing_log_count(t, "closed 3 new connection(s)"),
                     1);
    assert_int_equal(
        ioloop_testing_counter(t, "ioloop_connections_shed_total", NULL), 4);
    expect_open(c[0]); /* served meanwhile */
    send_fire(c[0], s[0], "GET / HTTP/1.1\r\n\r\n");
    expect_response(c[0], "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 5; i++) {
        close(c[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_timer_per_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_header_timeout_whole_head,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_timeout_between_reads,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
