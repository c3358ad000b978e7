/*
 * tests/unit/test_manifest_servers.c: the manifest's "servers"
 * (host/app/manifest_servers.c) through ioloop__manifest_load, against
 * real files in a mkdtemp() folder that is also the working directory, so
 * that messages read "m.json:..." and are pinned whole: what a valid
 * server turns into (defaults, paths, methods) and every refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest.h"

static char g_tmp[PATH_MAX];
static char g_cwd[PATH_MAX];

/* A manifest with one plugin instance "h" (and "k"), then servers. The
 * ' in servers become ", so tests read {'name': 'web'}. */
#define PLUGINS "{'plugins': [{'name': 'h', 'path': 'h.so'}, " \
                "{'name': 'k', 'path': 'k.so'}], 'servers': "

static void
write_json(const char *text)
{
    FILE *f = fopen("m.json", "w");

    assert_non_null(f);
    for (const char *c = text; *c != '\0'; c++) {
        assert_int_not_equal(fputc(*c == '\'' ? '"' : *c, f), EOF);
    }
    assert_int_equal(fclose(f), 0);
}

static void
load_ok(const char *json, struct ioloop_manifest *m)
{
    char err[512] = "left over";

    write_json(json);
    if (ioloop__manifest_load("m.json", m, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_string_equal(err, "");
}

/*
 * json must be refused with exactly "m.json:1:COL: " want, one line, *m
 * zeroed; COL is where the value refused starts: just after the last
 * occurrence of at in json (the servers come after the plugins).
 */
static void
refused(const char *json, const char *at, const char *want)
{
    static const struct ioloop_manifest zero;
    struct ioloop_manifest m;
    char err[512], full[512];
    const char *found = strstr(json, at);

    assert_non_null(found);
    for (const char *next = found; next != NULL;
         next = strstr(next + 1, at)) {
        found = next;
    }
    snprintf(full, sizeof(full), "m.json:1:%d: %s",
             (int) (found - json + strlen(at)) + 1, want);
    write_json(json);
    memset(&m, 0xa5, sizeof(m));
    assert_int_equal(ioloop__manifest_load("m.json", &m, err, sizeof(err)),
                     -1);
    assert_string_equal(err, full);
    assert_null(strchr(err, '\n'));
    assert_memory_equal(&m, &zero, sizeof(m));
}

/* One server "web" on 127.0.0.1:8000 with its other keys (text that ends
 * with ", " or is empty) and its routes. */
#define SERVER(keys, routes)                                               \
    PLUGINS "[{'name': 'web', 'listen': '127.0.0.1:8000', " keys          \
    "'routes': " routes "}]}"

static int
setup(void **state)
{
    char made[64] = "/tmp/ioloop-mservers-XXXXXX";

    assert_non_null(mkdtemp(made));
    (void) state;
    assert_non_null(getcwd(g_cwd, sizeof(g_cwd)));
    assert_non_null(realpath(made, g_tmp));
    assert_int_equal(chdir(g_tmp), 0);
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    unlink("m.json");
    assert_int_equal(chdir(g_cwd), 0);
    assert_int_equal(rmdir(g_tmp), 0);
    return 0;
}

static void
test_defaults(void **state)
{
    const struct ioloop_http_server_spec *s;
    struct ioloop_manifest m;

    (void) state;
    load_ok(SERVER("", "[{'path': '/', 'plugin': 'h'}]"), &m);
    assert_int_equal(m.nservers, 1);
    s = &m.servers[0];
    assert_string_equal(s->name, "web");
    assert_string_equal(s->where, "servers[0]");
    assert_int_equal(s->nlisten, 1);
    assert_string_equal(s->listen[0], "127.0.0.1:8000");
    assert_int_equal(s->backlog, 0);
    assert_int_equal(s->limits.max_connections, 10000);
    assert_int_equal(s->limits.max_header_size, 8192);
    assert_int_equal(s->limits.max_body_size, 1 << 20);
    assert_int_equal(s->limits.max_pipeline, 16);
    assert_int_equal(s->limits.header_timeout, 10 * IOLOOP_NS_PER_S);
    assert_int_equal(s->limits.body_timeout, 30 * IOLOOP_NS_PER_S);
    assert_int_equal(s->limits.send_timeout, 30 * IOLOOP_NS_PER_S);
    assert_int_equal(s->limits.keepalive_timeout, 75 * IOLOOP_NS_PER_S);
    assert_null(s->tls_cert);
    assert_null(s->tls_key);
    assert_null(s->tls_min_version);
    assert_null(s->access_log);
    assert_int_equal(s->nroutes, 1);
    assert_string_equal(s->routes[0].path, "/");
    assert_null(s->routes[0].prefix);
    assert_string_equal(s->routes[0].plugin, "h");
    assert_null(s->routes[0].methods);
    assert_int_equal(s->routes[0].max_body_size, 0);
    assert_string_equal(s->routes[0].where, "servers[0].routes[0]");
    ioloop__manifest_free(&m);

    /* Without workers, one_process changes nothing. */
    load_ok("{'plugins': [{'name': 'h', 'path': 'h.so', 'one_process': "
            "true}], 'servers': [{'name': 'web', 'listen': '127.0.0.1:0', "
            "'routes': [{'path': '/', 'plugin': 'h'}]}]}", &m);
    assert_int_equal(m.nservers, 1);
    ioloop__manifest_free(&m);

    load_ok("{}", &m);
    assert_int_equal(m.nservers, 0);
    assert_null(m.servers);
    ioloop__manifest_free(&m);
}

static void
test_every_key(void **state)
{
    const struct ioloop_http_server_spec *s;
    struct ioloop_manifest m;
    char want[PATH_MAX + 32];

    (void) state;
    load_ok(PLUGINS "[{'name': 'web', 'listen': ['127.0.0.1:8000', "
            "'[::1]:8000'], 'backlog': 511, 'max_connections': 20, "
            "'max_header_size': '1KiB', 'max_body_size': 100, "
            "'max_pipeline': 1, 'header_timeout': '250ms', "
            "'body_timeout': 2, 'send_timeout': '1m', "
            "'keepalive_timeout': '1h', "
            "'tls': {'cert': 'c.pem', 'key': '/k.pem', "
            "'min_version': '1.3'}, "
            "'access_log': {'path': 'logs/a.log', 'format': 'json'}, "
            "'routes': [{'path': '/', 'plugin': 'h'}, "
            "{'prefix': '/api/', 'plugin': 'k', 'methods': ['GET', 'PUT', "
            "'M-SEARCH'], 'max_body_size': '8MiB'}]}, "
            "{'name': 'b', 'listen': '127.0.0.1:8001', 'access_log': "
            "{'path': '-'}, 'routes': [{'prefix': '/', 'plugin': 'k'}]}]}",
            &m);
    assert_int_equal(m.nservers, 2);
    s = &m.servers[0];
    assert_int_equal(s->nlisten, 2);
    assert_string_equal(s->listen[1], "[::1]:8000");
    assert_int_equal(s->backlog, 511);
    assert_int_equal(s->limits.max_connections, 20);
    assert_int_equal(s->limits.max_header_size, 1024);
    assert_int_equal(s->limits.max_body_size, 100);
    assert_int_equal(s->limits.max_pipeline, 1);
    assert_int_equal(s->limits.header_timeout, 250 * IOLOOP_NS_PER_MS);
    assert_int_equal(s->limits.body_timeout, 2 * IOLOOP_NS_PER_S);
    assert_int_equal(s->limits.send_timeout, 60 * IOLOOP_NS_PER_S);
    assert_int_equal(s->limits.keepalive_timeout, 3600 * IOLOOP_NS_PER_S);
    snprintf(want, sizeof(want), "%s/c.pem", g_tmp);
    assert_string_equal(s->tls_cert, want);
    assert_string_equal(s->tls_key, "/k.pem");
    assert_string_equal(s->tls_min_version, "1.3");
    snprintf(want, sizeof(want), "%s/logs/a.log", g_tmp);
    assert_string_equal(s->access_log, want);
    assert_int_equal(s->access_log_format, IOLOOP_HTTP_LOG_JSON);
    assert_null(s->routes[1].path);
    assert_string_equal(s->routes[1].prefix, "/api/");
    assert_string_equal(s->routes[1].plugin, "k");
    assert_string_equal(s->routes[1].methods, "GET,PUT,M-SEARCH");
    assert_int_equal(s->routes[1].max_body_size, 8 << 20);
    assert_string_equal(s->routes[1].where, "servers[0].routes[1]");

    s = &m.servers[1];
    assert_string_equal(s->where, "servers[1]");
    assert_string_equal(s->access_log, "-");
    assert_int_equal(s->access_log_format, IOLOOP_HTTP_LOG_COMMON);
    ioloop__manifest_free(&m);

    /* TLS without min_version: 1.2. */
    load_ok(SERVER("'tls': {'cert': 'c', 'key': 'k'}, ",
                   "[{'path': '/', 'plugin': 'h'}]"), &m);
    assert_string_equal(m.servers[0].tls_min_version, "1.2");
    ioloop__manifest_free(&m);
}

/* Port 0 is ephemeral: two servers on 127.0.0.1:0 do not clash; two
 * families or two addresses on one port do not either. */
static void
test_addresses_that_do_not_clash(void **state)
{
    struct ioloop_manifest m;

    (void) state;
    load_ok(PLUGINS "[{'name': 'a', 'listen': ['127.0.0.1:0', '[::1]:0', "
            "'127.0.0.1:9000', '127.0.0.2:9000', '[::1]:9000'], "
            "'routes': [{'path': '/', 'plugin': 'h'}]}, "
            "{'name': 'b', 'listen': '127.0.0.1:0', "
            "'routes': [{'path': '/', 'plugin': 'h'}]}]}", &m);
    assert_int_equal(m.nservers, 2);
    ioloop__manifest_free(&m);
}

/* An item of routes: one route to h at / */
#define ROOT "[{'path': '/', 'plugin': 'h'}]"

static void
test_refused_servers(void **state)
{
    (void) state;
    refused(PLUGINS "{}}", "'servers': ",
            "servers: expected an array, got object");
    refused(PLUGINS "[{'listen': '127.0.0.1:1', 'routes': []}]}",
            "'servers': [", "servers[0]: missing key \"name\"");
    refused(PLUGINS "[{'name': 'Web', 'listen': '1.2.3.4:1'}]}",
            "'name': ", "servers[0].name: invalid server name \"Web\" "
            "(expected 1 to 64 of a-z, 0-9, '_', '-')");
    refused(PLUGINS "[{'name': 'web'}]}", "'servers': [",
            "servers[0]: missing key \"listen\"");
    refused(PLUGINS "[{'name': 'web', 'listen': '127.0.0.1:1'}]}",
            "'servers': [", "servers[0].routes: missing (a required array "
            "of objects)");
    refused(SERVER("", "[]"), "'routes': ",
            "servers[0].routes: empty list (a server without routes could "
            "only answer 404)");
    refused(PLUGINS "[{'name': 'web', 'listen': 'nowhere', 'routes': []}]}",
            "'listen': ", "servers[0].listen: listen \"nowhere\": expected "
            "HOST:PORT or [IPV6]:PORT");
    refused(PLUGINS "[{'name': 'web', 'listen': [], 'routes': []}]}",
            "'listen': ", "servers[0].listen: empty list");
    refused(PLUGINS "[{'name': 'web', 'listen': ['127.0.0.1:1', 7]}]}",
            "'127.0.0.1:1', ", "servers[0].listen[1]: expected an address "
            "(\"HOST:PORT\" or \"[IPV6]:PORT\"), got integer");
    refused(PLUGINS "[{'name': 'web', 'listen': '127.0.0.1:1', 'x': 1}]}",
            "'x': ", "servers[0].x: unknown key");
}

static void
test_refused_duplicates(void **state)
{
    (void) state;
    refused(PLUGINS "[{'name': 'w', 'listen': '127.0.0.1:1', "
            "'routes': " ROOT "}, {'name': 'w', 'listen': '127.0.0.1:2', "
            "'routes': " ROOT "}]}", "}, {'name': ",
            "servers[1].name: duplicate of servers[0].name \"w\"");
    /* The same address twice in one server, then across servers. */
    refused(PLUGINS "[{'name': 'w', 'listen': ['127.0.0.1:1', "
            "'127.0.0.1:1'], 'routes': " ROOT "}]}", "'127.0.0.1:1', ",
            "servers[0].listen[1]: \"127.0.0.1:1\" is also listened on at "
            "servers[0].listen[0]");
    refused(PLUGINS "[{'name': 'w', 'listen': '[::1]:80', "
            "'routes': " ROOT "}, {'name': 'x', 'listen': ['127.0.0.1:81', "
            "'[::]:80'], 'routes': " ROOT "}]}", "'127.0.0.1:81', ",
            "servers[1].listen[1]: \"[::]:80\" is also listened on at "
            "servers[0].listen");
    /* 0.0.0.0 takes the port on every IPv4 address, [::] on all. */
    refused(PLUGINS "[{'name': 'w', 'listen': ['127.0.0.1:80', "
            "'0.0.0.0:80'], 'routes': " ROOT "}]}", "'127.0.0.1:80', ",
            "servers[0].listen[1]: \"0.0.0.0:80\" is also listened on at "
            "servers[0].listen[0]");
    refused(PLUGINS "[{'name': 'w', 'listen': ['[::]:80', "
            "'127.0.0.1:80'], 'routes': " ROOT "}]}", "'[::]:80', ",
            "servers[0].listen[1]: \"127.0.0.1:80\" is also listened on at "
            "servers[0].listen[0]");
}

static void
test_refused_routes(void **state)
{
    (void) state;
    refused(SERVER("", "[{'plugin': 'h'}]"), "'routes': [",
            "servers[0].routes[0]: expected exactly one of \"path\" and "
            "\"prefix\", got neither");
    refused(SERVER("", "[{'path': '/', 'prefix': '/a', 'plugin': 'h'}]"),
            "'routes': [", "servers[0].routes[0]: expected exactly one of "
            "\"path\" and \"prefix\", got both");
    refused(SERVER("", "[{'path': 'a', 'plugin': 'h'}]"), "'path': ",
            "servers[0].routes[0].path: \"a\" does not start with '/'");
    refused(SERVER("", "[{'prefix': '', 'plugin': 'h'}]"), "'prefix': ",
            "servers[0].routes[0].prefix: \"\" does not start with '/'");
    refused(SERVER("", "[{'path': '/a?b', 'plugin': 'h'}]"), "'path': ",
            "servers[0].routes[0].path: \"/a?b\": no request path holds a "
            "'?' (this route could never be reached)");
    refused(SERVER("", "[{'prefix': '/a#', 'plugin': 'h'}]"), "'prefix': ",
            "servers[0].routes[0].prefix: \"/a#\": no request path holds a "
            "'#' (this route could never be reached)");
    refused(SERVER("", "[{'prefix': '/a b', 'plugin': 'h'}]"), "'prefix': ",
            "servers[0].routes[0].prefix: \"/a b\": no request path holds a "
            "space, control or non-ASCII byte (this route could never be "
            "reached)");
    refused(SERVER("", "[{'path': '/', 'plugin': 'nobody'}]"), "'plugin': ",
            "servers[0].routes[0].plugin: no plugin instance named "
            "\"nobody\"");
    /* With workers, a one_process instance runs in worker 0 only. */
    refused("{'workers': 2, 'plugins': [{'name': 'h', 'path': 'h.so', "
            "'one_process': true}], 'servers': [{'name': 'web', 'listen': "
            "'127.0.0.1:0', 'routes': " ROOT "}]}", "'plugin': ",
            "servers[0].routes[0].plugin: instance \"h\" is one_process: "
            "the other workers, which accept on this server too, could not "
            "answer its route");
    refused(SERVER("", "[{'path': '/'}]"), "'routes': [",
            "servers[0].routes[0].plugin: missing (a required string)");
    refused(SERVER("", "[{'path': '/x', 'plugin': 'h'}, "
                   "{'prefix': '/x', 'plugin': 'k'}, "
                   "{'path': '/x', 'plugin': 'k'}]"), "'k'}, {'path': ",
            "servers[0].routes[2].path: duplicate of "
            "servers[0].routes[0].path \"/x\" (this route could never be "
            "reached)");
    refused(SERVER("", "[{'prefix': '/x/', 'plugin': 'h'}, "
                   "{'prefix': '/x/', 'plugin': 'h'}]"), "}, {'prefix': ",
            "servers[0].routes[1].prefix: duplicate of "
            "servers[0].routes[0].prefix \"/x/\" (this route could never be "
            "reached)");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'max_body_size': 0}]"),
            "'max_body_size': ", "servers[0].routes[0].max_body_size: "
            "expected a size in [1, 1TiB], got 0");
}

static void
test_refused_methods(void **state)
{
    (void) state;
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': []}]"),
            "'methods': ", "servers[0].routes[0].methods: empty list (this "
            "route could never be reached)");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': ['G T']}]"),
            "'methods': [", "servers[0].routes[0].methods[0]: \"G T\" is not "
            "a method token");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': ['']}]"),
            "'methods': [", "servers[0].routes[0].methods[0]: \"\" is not a "
            "method token");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': "
                   "['GET', 'BREW']}]"), "'GET', ",
            "servers[0].routes[0].methods[1]: unknown method \"BREW\" "
            "(methods are upper case: GET, POST, ...)");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': ['get']}]"),
            "'methods': [", "servers[0].routes[0].methods[0]: unknown method "
            "\"get\" (methods are upper case: GET, POST, ...)");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': "
                   "['GET', 'GET']}]"), "'GET', ",
            "servers[0].routes[0].methods[1]: \"GET\" listed twice");
    refused(SERVER("", "[{'path': '/', 'plugin': 'h', 'methods': 'GET'}]"),
            "'methods': ", "servers[0].routes[0].methods: expected an array "
            "of strings, got \"GET\"");
}

static void
test_refused_tls_and_log(void **state)
{
    (void) state;
    refused(SERVER("'tls': {'cert': 'c.pem'}, ", ROOT), "'tls': ",
            "servers[0].tls: missing key \"key\" (TLS needs cert and key)");
    refused(SERVER("'tls': {'key': 'k.pem'}, ", ROOT), "'tls': ",
            "servers[0].tls: missing key \"cert\" (TLS needs cert and key)");
    refused(SERVER("'tls': {}, ", ROOT), "'tls': ",
            "servers[0].tls: missing key \"cert\" (TLS needs cert and key)");
    refused(SERVER("'tls': {'cert': 'c', 'key': 'k', 'min_version': '1.1'}, ",
                   ROOT), "'min_version': ",
            "servers[0].tls.min_version: expected one of 1.2|1.3, got "
            "\"1.1\"");
    refused(SERVER("'access_log': {'format': 'json'}, ", ROOT),
            "'access_log': ", "servers[0].access_log: missing key \"path\"");
    refused(SERVER("'access_log': {'path': ''}, ", ROOT),
            "'access_log': {'path': ",
            "servers[0].access_log.path: expected a path or \"-\", got "
            "\"\"");
    refused(SERVER("'access_log': {'path': '-', 'format': 'combined'}, ",
                   ROOT), "'format': ", "servers[0].access_log.format: "
            "expected one of common|json, got \"combined\"");
}

static void
test_refused_ranges(void **state)
{
    (void) state;
    refused(SERVER("'max_header_size': '81KiB', ", ROOT),
            "'max_header_size': ", "servers[0].max_header_size: expected a "
            "size in [1KiB, 80KiB], got \"81KiB\"");
    refused(SERVER("'max_header_size': 1023, ", ROOT),
            "'max_header_size': ", "servers[0].max_header_size: expected a "
            "size in [1KiB, 80KiB], got 1023");
    refused(SERVER("'max_body_size': '2TiB', ", ROOT), "'max_body_size': ",
            "servers[0].max_body_size: expected a size in [1, 1TiB], got "
            "\"2TiB\"");
    refused(SERVER("'max_connections': 0, ", ROOT), "'max_connections': ",
            "servers[0].max_connections: expected an integer in [1, "
            "1000000], got 0");
    refused(SERVER("'max_pipeline': 1025, ", ROOT), "'max_pipeline': ",
            "servers[0].max_pipeline: expected an integer in [1, 1024], got "
            "1025");
    refused(SERVER("'backlog': -1, ", ROOT), "'backlog': ",
            "servers[0].backlog: expected an integer in [0, 65535], got -1");
    refused(SERVER("'header_timeout': 0, ", ROOT), "'header_timeout': ",
            "servers[0].header_timeout: expected a duration in [1ms, 1h], "
            "got 0");
    refused(SERVER("'body_timeout': '2h', ", ROOT), "'body_timeout': ",
            "servers[0].body_timeout: expected a duration in [1ms, 1h], got "
            "\"2h\"");
    refused(SERVER("'send_timeout': '0.5ms', ", ROOT), "'send_timeout': ",
            "servers[0].send_timeout: expected a duration in [1ms, 1h], got "
            "\"0.5ms\"");
    refused(SERVER("'keepalive_timeout': 'soon', ", ROOT),
            "'keepalive_timeout': ", "servers[0].keepalive_timeout: expected "
            "a duration (\"10s\", \"250ms\" or seconds), got \"soon\"");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_addresses_that_do_not_clash),
        cmocka_unit_test(test_refused_servers),
        cmocka_unit_test(test_refused_duplicates),
        cmocka_unit_test(test_refused_routes),
        cmocka_unit_test(test_refused_methods),
        cmocka_unit_test(test_refused_tls_and_log),
        cmocka_unit_test(test_refused_ranges),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
