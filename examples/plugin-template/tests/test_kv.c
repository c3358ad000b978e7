/*
 * test_kv.c: the kv plugin against the SDK's fake host API table
 * (<ioloop/testing/fake_api.h>): the protocol as plain functions, config
 * validation, the listener, the accept path, failures and clean-up.
 *
 * The fake does not implement streams (stream_new fails with ENOSYS), so
 * the conversation over a socket is tested against the real host, in
 * test_kv_e2e.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ioloop/testing/fake_api.h>
#include <jansson.h>

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

/* --- The plugin, through its descriptor and the fake table -------------- */

static const struct ioloop_api *api;

static int
setup(void **state)
{
    (void) state;
    api = fake_api_setup();
    fake_api_set_name("kv");
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

/* init with the JSON text config; returns init's value. */
static int
init_with(const char *config, void **st, char *err, size_t errlen)
{
    json_t *cfg = config != NULL ? json_loads(config, 0, NULL) : NULL;
    int rc;

    if (config != NULL) {
        assert_non_null(cfg);
    }
    err[0] = '\0';
    rc = ioloop_plugin_v1.init(api, fake_api_instance(), cfg, st, err, errlen);
    json_decref(cfg);
    return rc;
}

static void
test_descriptor(void **state)
{
    (void) state;
    assert_int_equal(IOLOOP_ABI_MAJOR(ioloop_plugin_v1.abi_version),
                     IOLOOP_PLUGIN_ABI_MAJOR);
    assert_int_equal(ioloop_plugin_v1.size, sizeof(struct ioloop_plugin));
    assert_string_equal(ioloop_plugin_v1.name, "kv");
    assert_string_equal(ioloop_plugin_v1.config_keys[0], "listen");
    assert_non_null(ioloop_plugin_v1.init);
    assert_non_null(ioloop_plugin_v1.fini);
}

static void
test_config_errors_name_the_key(void **state)
{
    static const struct {
        const char *config;
        const char *err;
    } cases[] = {
        {NULL, "config: missing (\"listen\" is required)"},
        {"[]", "config: expected an object"},
        {"{}", "config.listen: missing, expected a string \"HOST:PORT\""},
        {"{\"listen\": 80}", "config.listen: expected a string \"HOST:PORT\""},
        {"{\"listen\": \"127.0.0.1:0\", \"max_key\": 1}",
         "config.max_key: unknown key (expected listen, max_keys, "
         "idle_timeout)"},
        {"{\"listen\": \"127.0.0.1:0\", \"max_keys\": 0}",
         "config.max_keys: expected an integer in [1, 100000000]"},
        {"{\"listen\": \"127.0.0.1:0\", \"max_keys\": \"10\"}",
         "config.max_keys: expected an integer in [1, 100000000]"},
        {"{\"listen\": \"127.0.0.1:0\", \"idle_timeout\": -1}",
         "config.idle_timeout: expected seconds in [0, 86400]"},
        {"{\"listen\": \"127.0.0.1:0\", \"idle_timeout\": \"5s\"}",
         "config.idle_timeout: expected seconds in [0, 86400]"},
        {"{\"listen\": \"nowhere\"}",
         "listen \"nowhere\": expected HOST:PORT or [IPV6]:PORT"},
    };
    int fd0 = lowest_free_fd();
    char err[256];
    void *st = NULL;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(init_with(cases[i].config, &st, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, cases[i].err);
    }
    assert_null(st);
    assert_int_equal(fake_api_leftovers(), 0);
    assert_int_equal(lowest_free_fd(), fd0);
}

static void
test_init_listens_and_fini_cleans_up(void **state)
{
    char err[256], line[96];
    void *st = NULL;
    int fd0 = lowest_free_fd(), lfd = fd0;

    (void) state;
    assert_int_equal(init_with("{\"listen\": \"127.0.0.1:0\", \"max_keys\": 5,"
                               " \"idle_timeout\": 2.5}",
                               &st, err, sizeof(err)),
                     0);
    assert_non_null(st);
    assert_int_equal(fake_api_handler_events(lfd), IOLOOP_READ);
    snprintf(line, sizeof(line), "info [kv] listening on 127.0.0.1:%d\n",
             fake_api_local_port(lfd));
    assert_string_equal(fake_api_log_text(), line);

    ioloop_plugin_v1.fini(st);
    assert_int_equal(fake_api_leftovers(), 0);
    assert_int_equal(lowest_free_fd(), fd0);
}

static void
test_listen_failure_is_reported(void **state)
{
    char err[256], cfg[96], want[96];
    void *st1 = NULL, *st2 = NULL;
    int lfd = lowest_free_fd();

    (void) state;
    assert_int_equal(init_with("{\"listen\": \"127.0.0.1:0\"}", &st1, err,
                               sizeof(err)),
                     0);
    snprintf(cfg, sizeof(cfg), "{\"listen\": \"127.0.0.1:%d\"}",
             fake_api_local_port(lfd));
    snprintf(want, sizeof(want),
             "listen 127.0.0.1:%d: Address already in use",
             fake_api_local_port(lfd));
    assert_int_equal(init_with(cfg, &st2, err, sizeof(err)), -EADDRINUSE);
    assert_string_equal(err, want);
    ioloop_plugin_v1.fini(st1);
    assert_int_equal(fake_api_leftovers(), 0);
}

static int
no_handlers(ioloop_instance_t *loop, int fd, unsigned events, ioloop_io_cb cb,
            void *arg)
{
    (void) loop;
    (void) fd;
    (void) events;
    (void) cb;
    (void) arg;
    return -ENOMEM;
}

static void
test_add_handler_failure_leaks_nothing(void **state)
{
    char err[256], want[64];
    void *st = NULL;
    int fd0 = lowest_free_fd();

    (void) state;
    fake_api_table()->add_handler = no_handlers;
    assert_int_equal(init_with("{\"listen\": \"127.0.0.1:0\"}", &st, err,
                               sizeof(err)),
                     -ENOMEM);
    snprintf(want, sizeof(want), "add_handler(%d): %s", fd0,
             strerror(ENOMEM));
    assert_string_equal(err, want);
    assert_int_equal(lowest_free_fd(), fd0);
}

/* A client connects: the listener's handler accepts it. The fake has no
 * streams, so stream_new fails: the plugin must say so, close the
 * connection and keep nothing. */
static void
test_accept_path_and_stream_failure(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    char err[256], buf[8];
    void *st = NULL;
    int lfd = lowest_free_fd(), client;

    (void) state;
    assert_int_equal(init_with("{\"listen\": \"127.0.0.1:0\"}", &st, err,
                               sizeof(err)),
                     0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) fake_api_local_port(lfd));
    client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(client, (struct sockaddr *) &sin, sizeof(sin)),
                     0);

    assert_int_equal(fake_api_poll(1000), 1);
    assert_int_equal(fake_api_log_count("warn [kv] stream_new("), 1);
    assert_int_equal(fake_api_log_count("Function not implemented"), 2);
    assert_int_equal(fake_api_failures(), 1); /* the handler's -ENOSYS */
    assert_int_equal(read(client, buf, sizeof(buf)), 0); /* closed */
    assert_int_equal(fake_api_handler_count(), 1);     /* the listener */

    ioloop_plugin_v1.fini(st);
    assert_int_equal(fake_api_leftovers(), 0);
    close(client);
}

/* Two manifest entries, two independent instances. */
static void
test_two_instances(void **state)
{
    char err[256];
    void *a = NULL, *b = NULL;

    (void) state;
    assert_int_equal(init_with("{\"listen\": \"127.0.0.1:0\"}", &a, err,
                               sizeof(err)),
                     0);
    assert_int_equal(init_with("{\"listen\": \"127.0.0.1:0\"}", &b, err,
                               sizeof(err)),
                     0);
    assert_ptr_not_equal(a, b);
    assert_int_equal(fake_api_handler_count(), 2);
    ioloop_plugin_v1.fini(b);
    assert_int_equal(fake_api_handler_count(), 1);
    ioloop_plugin_v1.fini(a);
    assert_int_equal(fake_api_leftovers(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_store_grows_and_empties),
        cmocka_unit_test_setup(test_descriptor, setup),
        cmocka_unit_test_setup(test_config_errors_name_the_key, setup),
        cmocka_unit_test_setup(test_init_listens_and_fini_cleans_up, setup),
        cmocka_unit_test_setup(test_listen_failure_is_reported, setup),
        cmocka_unit_test_setup(test_add_handler_failure_leaks_nothing, setup),
        cmocka_unit_test_setup(test_accept_path_and_stream_failure, setup),
        cmocka_unit_test_setup(test_two_instances, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
