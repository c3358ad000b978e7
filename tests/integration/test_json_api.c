/*
 * tests/integration/test_json_api.c: the tutorial plugin of
 * docs/plugins.md (examples/json_api/kv.c) in a real ioloop-host whose
 * manifest routes the prefix "/kv/" to it, over a real socket on
 * 127.0.0.1: each verb, a missing key (404), a body that is not JSON
 * (400), a method it does not serve (405 from the host), two keys kept
 * apart, and the value gone after DELETE.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "host_process.h"

#define SERVERS                                                              \
    "{\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","         \
    " \"routes\": [{\"prefix\": \"/kv/\", \"plugin\": \"kv\"}]}]}"
#define PLUGINS                                                              \
    "[{\"name\": \"kv\", \"path\": \"" IOLOOP_BUILD_DIR                      \
    "/tests/modules/kv.so\"}]"

static struct host_process host;
static struct http_conn hc;
static struct http_response r;

/* Sends method path with body (NULL: none) on the kept-alive connection;
 * expects status and, unless NULL, exactly the JSON text want. */
static void
call(const char *method, const char *path, const char *body, int status,
     const char *want)
{
    char req[1024];
    int n;

    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n"
                 "%s",
                 method, path, body != NULL ? strlen(body) : 0,
                 body != NULL ? body : "");
    assert_true(n > 0 && (size_t) n < sizeof(req));
    assert_int_equal(client_write_all(hc.fd, req, (size_t) n,
                                      CLIENT_TIMEOUT_MS),
                     0);
    assert_int_equal(http_read_response(&hc, 0, &r), 0);
    if (r.status != status || (want != NULL && strcmp(r.body, want) != 0)) {
        fail_msg("%s %s: %d %s, expected %d %s", method, path, r.status,
                 r.body, status, want != NULL ? want : "");
    }
}

static void
test_each_verb(void **state)
{
    char type[64];

    (void) state;
    call("GET", "/kv/a", NULL, 404, "{\"error\":\"no such key\"}");
    assert_int_equal(http_header(&r, "Content-Type", type, sizeof(type)),
                     0);
    assert_string_equal(type, "application/json");
    call("PUT", "/kv/a", "{\"n\": [1, 2]}", 200, "{\"n\":[1,2]}");
    call("PUT", "/kv/b", "\"bee\"", 200, "\"bee\"");
    call("GET", "/kv/a", NULL, 200, "{\"n\":[1,2]}");
    call("GET", "/kv/b", NULL, 200, "\"bee\"");
    call("PUT", "/kv/a", "{\"n\": ", 400, "{\"error\":\"bad JSON\"}");
    call("PUT", "/kv/a", NULL, 400, "{\"error\":\"bad JSON\"}");
    call("GET", "/kv/a", NULL, 200, "{\"n\":[1,2]}"); /* unchanged */
    call("PUT", "/kv/a", "42", 200, "42");
    call("GET", "/kv/a?x=1", NULL, 200, "42"); /* the query is no key */
    call("POST", "/kv/a", "1", 405, NULL);
    call("DELETE", "/kv/a", NULL, 200, "42");
    call("DELETE", "/kv/a", NULL, 404, "{\"error\":\"no such key\"}");
    call("GET", "/kv/a", NULL, 404, "{\"error\":\"no such key\"}");
    call("GET", "/kv/b", NULL, 200, "\"bee\"");
    call("GET", "/other", NULL, 404, NULL); /* no route: the host's */
}

static int
setup(void **state)
{
    int port;

    (void) state;
    hc.fd = -1;
    if (host_start_ex(&host, "epoll", SERVERS, PLUGINS, 0) < 0
        || (port = host_port(&host, "host", HOST_TIMEOUT_MS)) <= 0
        || http_connect(&hc, port) < 0) {
        host_dump_log(&host);
        return -1;
    }
    return 0;
}

/* Stops the host: exit 0 (and, under ASan, no leak of the store). */
static int
teardown(void **state)
{
    int rc;

    (void) state;
    if (hc.fd >= 0) {
        close(hc.fd);
    }
    rc = host_stop_clean(&host);
    host_cleanup(&host);
    return rc;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_verb, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
