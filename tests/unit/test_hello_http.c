/*
 * tests/unit/test_hello_http.c: hello_http's connection limits on the
 * SDK's fake API (plugins/hello_http compiled in), where the clock moves
 * only when the test says so: each timeout fires exactly when due, by
 * reason; a connection costs one timer, not one per request or byte;
 * max_connections sheds and logs at most once a second. Connections are
 * socketpairs handed to hello__conn_open; their handler is fired by hand.
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
#include <ioloop/testing/fake_api.h>
#include <jansson.h>

#include "hello_http.h"

#define MS IOLOOP_NS_PER_MS

/* The plugin's descriptor (plugin.c). */
extern const struct ioloop_plugin ioloop_plugin_v1;

/* Timeouts of 1, 2 and 3 s; two connections at most. */
#define CONFIG                                                              \
    "{\"listen\": \"127.0.0.1:0\", \"routes\": {\"/\": \"hello\"},"        \
    " \"header_timeout\": 1, \"body_timeout\": 2,"                         \
    " \"keepalive_timeout\": 3, \"max_connections\": 2}"

static const struct ioloop_api *api;
static struct hello *h;
static int timer_ops; /* call_at, call_later and cancel calls */

static ioloop_timer_t
counting_call_at(ioloop_instance_t *loop, ioloop_time_t deadline, ioloop_cb cb,
                 void *arg)
{
    timer_ops++;
    return fake_api__call_at(loop, deadline, cb, arg);
}

static ioloop_timer_t
counting_call_later(ioloop_instance_t *loop, ioloop_time_t delay, ioloop_cb cb,
                    void *arg)
{
    timer_ops++;
    return fake_api__call_later(loop, delay, cb, arg);
}

static int
counting_cancel(ioloop_instance_t *loop, ioloop_timer_t timer)
{
    timer_ops++;
    return fake_api__cancel(loop, timer);
}

static int
setup(void **state)
{
    json_t *config = json_loads(CONFIG, 0, NULL);
    char err[256];
    void *st;
    int rc;

    (void) state;
    api = fake_api_setup();
    fake_api_table()->call_at = counting_call_at;
    fake_api_table()->call_later = counting_call_later;
    fake_api_table()->cancel = counting_cancel;
    rc = ioloop_plugin_v1.init(api, fake_api_instance(), config, &st, err,
                               sizeof(err));
    json_decref(config);
    if (rc < 0) {
        fprintf(stderr, "init: %s\n", err);
        return -1;
    }
    h = st;
    timer_ops = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    ioloop_plugin_v1.fini(h);
    return fake_api_leftovers() == 0 ? 0 : -1;
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
    assert_int_equal(fake_api_fire(server, IOLOOP_READ), 0);
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
    assert_int_equal(fake_api_timer_count(), 1);
    assert_int_equal(fake_api_counter("ioloop_http_requests_total", "2xx"),
                     1000);

    /* The timer fires every second (the shortest timeout) and re-arms
     * until the 3 s keep-alive deadline. */
    fake_api_advance(2999 * MS);
    expect_open(client);
    fake_api_advance(1 * MS);
    expect_closed(client);
    assert_int_equal(fake_api_counter("ioloop_connections_timed_out_total",
                                      "idle"),
                     1);
    assert_int_equal(fake_api_timer_count(), 0);
    close(client);
}

/* The header timeout covers the whole head, however slowly it comes. */
static void
test_header_timeout_whole_head(void **state)
{
    int server, client = conn(&server);

    (void) state;
    send_fire(client, server, "GET / HT");
    fake_api_advance(600 * MS);
    send_fire(client, server, "TP/1.1\r\nHost");
    fake_api_advance(399 * MS);
    send_fire(client, server, ": x\r\n");
    expect_open(client);
    fake_api_advance(1 * MS);
    expect_closed(client);
    assert_int_equal(fake_api_counter("ioloop_connections_timed_out_total",
                                      "header"),
                     1);
    close(client);

    /* A later request's head counts from its own first byte. */
    client = conn(&server);
    send_fire(client, server, "GET / HTTP/1.1\r\n\r\n");
    expect_response(client, "HTTP/1.1 200 OK\r\n");
    fake_api_advance(2500 * MS);
    send_fire(client, server, "GET / HTTP/1.1\r\n");
    fake_api_advance(999 * MS);
    expect_open(client);
    fake_api_advance(1 * MS);
    expect_closed(client);
    assert_int_equal(fake_api_counter("ioloop_connections_timed_out_total",
                                      "header"),
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
        fake_api_advance(1999 * MS);
        expect_open(client);
        send_fire(client, server, "6");
    }
    fake_api_advance(2000 * MS);
    expect_closed(client);
    assert_int_equal(fake_api_counter("ioloop_connections_timed_out_total",
                                      "body"),
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
    assert_int_equal(fake_api_counter("ioloop_connections_shed_total", NULL),
                     2);
    assert_int_equal(fake_api_log_count("max_connections (2) reached"), 1);
    fake_api_advance(999 * MS); /* below every timeout */
    c[4] = conn(&s[4]);
    expect_closed(c[4]);
    assert_int_equal(fake_api_log_count("max_connections (2) reached"), 1);
    fake_api_advance(1 * MS);
    close(c[4]);
    c[4] = conn(&s[4]);
    expect_closed(c[4]);
    assert_int_equal(fake_api_log_count("max_connections (2) reached"), 2);
    assert_int_equal(fake_api_log_count("closed 3 new connection(s)"), 1);
    assert_int_equal(fake_api_counter("ioloop_connections_shed_total", NULL),
                     4);
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
