/*
 * test_kv.c: the kv plugin on libioloop_testing (<ioloop/testing.h>), the
 * host's real loop with a fake clock: the protocol as plain functions,
 * config validation (the host's own messages), the listener, a real
 * conversation over TCP, the idle timeout on the fake clock, and clean-up.
 * test_kv_e2e.c loads kv.so into the installed host.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ioloop/testing.h>

#include "kv_store.h"

/* The plugin's descriptor, linked in from kv.c. */
extern const struct ioloop_plugin ioloop_plugin_v1;

/* --- The protocol (kv_store.c), no I/O ---------------------------------- */

/* Runs line on kv and returns the reply line, without its "\n". */
static const char *
run(struct kv_store *kv, const char *line)
{
    static char out[512];
    struct kv_reply r;

    kv_execute(kv, line, strlen(line), &r);
    snprintf(out, sizeof(out), "%s%.*s", r.head, (int) r.body_len,
             r.body != NULL ? r.body : "");
    return out;
}

static void
test_protocol(void **state)
{
    struct kv_store *kv = kv_store_new(2);
    char longkey[KV_MAX_KEY + 16];

    (void) state;
    assert_non_null(kv);
    assert_string_equal(run(kv, "COUNT"), "VALUE 0");
    assert_string_equal(run(kv, "SET a 1"), "OK");
    assert_string_equal(run(kv, "GET a"), "VALUE 1");
    assert_string_equal(run(kv, "SET a one two\r"), "OK");
    assert_string_equal(run(kv, "GET a"), "VALUE one two");
    assert_string_equal(run(kv, "SET b "), "OK"); /* an empty value */
    assert_string_equal(run(kv, "GET b"), "VALUE ");
    assert_string_equal(run(kv, "COUNT"), "VALUE 2");
    assert_string_equal(run(kv, "SET c 3"), "ERR store full (max_keys 2)");
    assert_string_equal(run(kv, "SET a 3"), "OK"); /* replacing is fine */
    assert_string_equal(run(kv, "DEL a"), "OK");
    assert_string_equal(run(kv, "DEL a"), "NOT_FOUND");
    assert_string_equal(run(kv, "GET a"), "NOT_FOUND");
    assert_string_equal(run(kv, "COUNT"), "VALUE 1");

    assert_string_equal(run(kv, ""), "ERR empty command");
    assert_string_equal(run(kv, "SET a"), "ERR usage: SET key value");
    assert_string_equal(run(kv, "SET  v"), "ERR usage: SET key value");
    assert_string_equal(run(kv, "GET"), "ERR usage: GET key");
    assert_string_equal(run(kv, "GET a b"), "ERR usage: GET key");
    assert_string_equal(run(kv, "DEL "), "ERR usage: DEL key");
    assert_string_equal(run(kv, "COUNT x"), "ERR usage: COUNT");
    assert_string_equal(run(kv, "get a"), "ERR unknown command 'get'");
    assert_string_equal(run(kv, "FLUSHALL"),
                        "ERR unknown command 'FLUSHALL'");
    memset(longkey, 'k', sizeof(longkey));
    memcpy(longkey, "GET ", 4);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_string_equal(run(kv, longkey), "ERR key longer than 256 bytes");
    kv_store_free(kv);
}

static void
test_store_grows_and_empties(void **state)
{
    struct kv_store *kv = kv_store_new(5000);
    char key[32], val[32];
    size_t vlen;

    (void) state;
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);

        snprintf(val, sizeof(val), "v%d", i);
        assert_int_equal(kv_store_set(kv, key, (size_t) n, val, strlen(val)),
                         0);
    }
    assert_int_equal(kv_store_set(kv, "more", 4, "x", 1), -ENOSPC);
    assert_int_equal(kv_store_count(kv), 5000);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);
        const char *v = kv_store_get(kv, key, (size_t) n, &vlen);

        snprintf(val, sizeof(val), "v%d", i);
        assert_non_null(v);
        assert_memory_equal(v, val, vlen);
        assert_int_equal(kv_store_del(kv, key, (size_t) n), 0);
    }
    assert_int_equal(kv_store_count(kv), 0);
    kv_store_free(kv);
}

/* --- The plugin, on the real loop ---------------------------------------- */

static ioloop_testing_t *t;

static int
setup(void **state)
{
    (void) state;
    t = ioloop_testing_new(IOLOOP_TESTING_EPOLL);
    return t != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    ioloop_testing_free(t);
    return 0;
}

/* The lowest fd number not in use: equal before and after means that
 * nothing leaked an fd. */
static int
lowest_free_fd(void)
{
    int fd = dup(0);

    close(fd);
    return fd;
}

/* The port a listening socket is bound to. */
static int
local_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    return ntohs(sin.sin_port);
}

static void
test_descriptor(void **state)
{
    (void) state;
    assert_int_equal(IOLOOP_ABI_MAJOR(ioloop_plugin_v1.abi_version),
                     IOLOOP_PLUGIN_ABI_MAJOR);
    assert_int_equal(ioloop_plugin_v1.size, sizeof(struct ioloop_plugin));
    assert_string_equal(ioloop_plugin_v1.name, "kv");
    assert_string_equal(ioloop_plugin_v1.config_schema[0].name, "listen");
    assert_non_null(ioloop_plugin_v1.init);
    assert_non_null(ioloop_plugin_v1.fini);
}

/* Each bad config is refused, before init runs, with the line the host
 * would print after "ioloop-host: MANIFEST:LINE:COLUMN: ". */
static void
test_config_errors_name_the_key(void **state)
{
    static const struct {
        const char *config;
        const char *err;
    } cases[] = {
        {NULL, "listen: missing (a required listen address)"},
        {"[]", NULL},
        {"{}", "listen: missing (a required listen address)"},
        {"{\"listen\": 80}",
         "listen: expected a listen address (\"HOST:PORT\" or "
         "\"[IPV6]:PORT\"), got 80"},
        {"{\"listen\": \"127.0.0.1:0\", \"max_key\": 1}",
         "max_key: unknown key (kv accepts: listen, max_keys, idle_timeout)"},
        {"{\"listen\": \"127.0.0.1:0\", \"max_keys\": 0}",
         "max_keys: expected an integer in [1, 100000000], got 0"},
        {"{\"listen\": \"127.0.0.1:0\", \"max_keys\": \"10\"}",
         "max_keys: expected an integer in [1, 100000000], got \"10\""},
        {"{\"listen\": \"127.0.0.1:0\", \"idle_timeout\": -1}",
         "idle_timeout: expected a duration (\"10s\", \"250ms\" or seconds), "
         "got -1"},
        {"{\"listen\": \"127.0.0.1:0\", \"idle_timeout\": \"5x\"}",
         "idle_timeout: expected a duration (\"10s\", \"250ms\" or seconds), "
         "got \"5x\""},
        {"{\"listen\": \"nowhere\"}",
         "listen: listen \"nowhere\": expected HOST:PORT or [IPV6]:PORT"},
        {"{\"listen\": \"::1:80\"}",
         "listen: listen \"::1:80\": expected HOST:PORT or [IPV6]:PORT"},
    };
    int fd0 = lowest_free_fd();
    char want[256];

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ioloop_testing_instance_t *kv = (void *) &cases; /* to be cleared */

        assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
                                              cases[i].config, &kv),
                         -EINVAL);
        assert_null(kv);
        if (cases[i].err == NULL) {
            snprintf(want, sizeof(want),
                     "plugins[0].config: expected an object, got array");
        } else {
            snprintf(want, sizeof(want), "plugins[0].config.%s",
                     cases[i].err);
        }
        assert_string_equal(ioloop_testing_error(t), want);
    }
    assert_int_equal(ioloop_testing_handlers(t), 0);
    assert_int_equal(lowest_free_fd(), fd0);
}

static void
test_init_listens_and_stop_cleans_up(void **state)
{
    ioloop_testing_instance_t *kv;
    int fd0 = lowest_free_fd(), lfd = fd0;
    char line[96];

    (void) state;
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
                                          "{\"listen\": \"127.0.0.1:0\", "
                                          "\"max_keys\": 5, "
                                          "\"idle_timeout\": 2.5}",
                                          &kv),
                     0);
    assert_int_equal(ioloop_testing_handler_events(t, lfd), IOLOOP_READ);
    snprintf(line, sizeof(line), "info [kv] listening on 127.0.0.1:%d\n",
             local_port(lfd));
    assert_string_equal(ioloop_testing_log(t), line);

    ioloop_testing_stop(kv);
    assert_int_equal(ioloop_testing_handlers(t), 0);
    assert_int_equal(ioloop_testing_log_count(t, "fini left"), 0);
    assert_int_equal(lowest_free_fd(), fd0);
}

static void
test_listen_failure_is_reported(void **state)
{
    ioloop_testing_instance_t *kv;
    char cfg[96], want[128];
    int lfd = lowest_free_fd();

    (void) state;
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
                                          "{\"listen\": \"127.0.0.1:0\"}",
                                          &kv),
                     0);
    snprintf(cfg, sizeof(cfg), "{\"listen\": \"127.0.0.1:%d\"}",
             local_port(lfd));
    snprintf(want, sizeof(want),
             "plugins[0] \"kv2\": init failed: listen 127.0.0.1:%d: "
             "Address already in use",
             local_port(lfd));
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv2", cfg,
                                          NULL),
                     -EADDRINUSE);
    assert_string_equal(ioloop_testing_error(t), want);
    ioloop_testing_stop(kv);
    assert_int_equal(ioloop_testing_handlers(t), 0);
}

/* Connects a client to the listener on fd lfd. */
static int
client_of(int lfd)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int c = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) local_port(lfd));
    assert_int_equal(connect(c, (struct sockaddr *) &sin, sizeof(sin)), 0);
    return c;
}

/* Sends lines, runs the loop until as many reply lines are back (at most
 * 50 iterations of up to 100 ms each). */
static const char *
ask(int c, const char *lines)
{
    static char reply[512];
    size_t len = 0;
    int want = 0, got = 0;

    for (const char *p = lines; *p != '\0'; p++) {
        want += *p == '\n';
    }
    assert_int_equal(write(c, lines, strlen(lines)), (ssize_t) strlen(lines));
    for (int i = 0; i < 50 && got < want; i++) {
        ssize_t n;

        ioloop_testing_run(t, 100);
        n = recv(c, reply + len, sizeof(reply) - 1 - len, MSG_DONTWAIT);
        for (ssize_t j = 0; j < n; j++) {
            got += reply[len + (size_t) j] == '\n';
        }
        len += n > 0 ? (size_t) n : 0;
    }
    reply[len] = '\0';
    return reply;
}

/* A real conversation over TCP, through the host's streams. */
static void
test_conversation(void **state)
{
    ioloop_testing_instance_t *kv;
    int lfd = lowest_free_fd(), c;

    (void) state;
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
                                          "{\"listen\": \"127.0.0.1:0\"}",
                                          &kv),
                     0);
    c = client_of(lfd);
    assert_string_equal(ask(c, "SET a 1\n"), "OK\n");
    assert_string_equal(ask(c, "GET a\n"), "VALUE 1\n");
    assert_string_equal(ask(c, "COUNT\nGET b\n"), "VALUE 1\nNOT_FOUND\n");
    assert_string_equal(ask(c, "nope\n"), "ERR unknown command 'nope'\n");
    close(c);
    ioloop_testing_stop(kv);
}

/* The instance's metrics move with the commands: a counter with labels,
 * a gauge and a histogram, read back through metrics_render. */
static void
test_metrics(void **state)
{
    ioloop_testing_instance_t *kv;
    int lfd = lowest_free_fd(), c;

    (void) state;
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
                                          "{\"listen\": \"127.0.0.1:0\"}",
                                          &kv),
                     0);
    c = client_of(lfd);
    assert_string_equal(ask(c, "SET a 1\nSET b 2\nGET a\nGET\nnope\n"),
                        "OK\nOK\nVALUE 1\nERR usage: GET key\n"
                        "ERR unknown command 'nope'\n");
    assert_true(ioloop_testing_metric(t, "kv_commands_total",
                                      "command=\"SET\",outcome=\"ok\"")
                == 2);
    assert_true(ioloop_testing_metric(t, "kv_commands_total",
                                      "command=\"GET\",outcome=\"ok\"")
                == 1);
    assert_true(ioloop_testing_metric(t, "kv_commands_total",
                                      "command=\"GET\",outcome=\"error\"")
                == 1);
    assert_true(ioloop_testing_metric(t, "kv_commands_total",
                                      "command=\"other\",outcome=\"error\"")
                == 1);
    assert_true(ioloop_testing_metric(t, "kv_commands_total",
                                      "command=\"DEL\",outcome=\"ok\"")
                == 0);
    assert_true(ioloop_testing_metric(t, "kv_keys", NULL) == 2);
    /* Lines of 8, 8, 6, 4 and 5 bytes ("\n" included). */
    assert_true(ioloop_testing_metric(t, "kv_line_bytes_bucket",
                                      "le=\"8\"")
                == 5);
    assert_true(ioloop_testing_metric(t, "kv_line_bytes_count", NULL) == 5);
    assert_true(ioloop_testing_metric(t, "kv_line_bytes_sum", NULL) == 31);
    close(c);
    ioloop_testing_stop(kv);
}

/* idle_timeout runs on the fake clock: the connection closes exactly when
 * it is due, and not a nanosecond before. */
static void
test_idle_timeout(void **state)
{
    ioloop_testing_instance_t *kv;
    int lfd = lowest_free_fd(), c;
    char buf[8];

    (void) state;
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "kv",
                                          "{\"listen\": \"127.0.0.1:0\", "
                                          "\"idle_timeout\": 2}",
                                          &kv),
                     0);
    c = client_of(lfd);
    assert_string_equal(ask(c, "COUNT\n"), "VALUE 0\n");
    ioloop_testing_advance(t, 2 * IOLOOP_NS_PER_S - 1);
    assert_int_equal(recv(c, buf, sizeof(buf), MSG_DONTWAIT), -1);
    ioloop_testing_advance(t, 1);
    assert_int_equal(recv(c, buf, sizeof(buf), 0), 0); /* closed */
    close(c);
    ioloop_testing_stop(kv);
}

/* Two manifest entries, two independent instances. */
static void
test_two_instances(void **state)
{
    ioloop_testing_instance_t *a, *b;

    (void) state;
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "a",
                                          "{\"listen\": \"127.0.0.1:0\"}",
                                          &a),
                     0);
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "b",
                                          "{\"listen\": \"127.0.0.1:0\"}",
                                          &b),
                     0);
    assert_ptr_not_equal(ioloop_testing_state(a), ioloop_testing_state(b));
    assert_int_equal(ioloop_testing_handlers(t), 2);
    ioloop_testing_stop(b);
    assert_int_equal(ioloop_testing_handlers(t), 1);
    ioloop_testing_stop(a);
    assert_int_equal(ioloop_testing_handlers(t), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_store_grows_and_empties),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test_setup_teardown(test_config_errors_name_the_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_listens_and_stop_cleans_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_failure_is_reported,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
