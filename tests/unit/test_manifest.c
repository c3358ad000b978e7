/*
 * tests/unit/test_manifest.c: host/app/manifest.c against real files. Every
 * manifest is written into a mkdtemp() folder, which is also the working
 * directory during the tests, so that messages read "m.json: ..." and can
 * be pinned whole. The folder is removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ioloop/loop.h>

#include "manifest.h"

static char g_tmp[PATH_MAX];    /* realpath of the mkdtemp() folder */
static char g_cwd[PATH_MAX];    /* the working directory to go back to */


/*
 * Writes text to the file name (relative to the test folder), with every
 * ' turned into ", so that manifests read {'log': {'level': 'info'}}
 * here. Columns are unchanged, which the syntax tests rely on.
 */
static void
write_json(const char *name, const char *text)
{
    FILE *f;
    const char *c;

    f = fopen(name, "w");
    assert_non_null(f);
    for (c = text; *c != '\0'; c++) {
        assert_int_not_equal(fputc(*c == '\'' ? '"' : *c, f), EOF);
    }
    assert_int_equal(fclose(f), 0);
}

static int
is_zeroed(const struct ioloop_manifest *m)
{
    static const struct ioloop_manifest zero;

    return memcmp(m, &zero, sizeof zero) == 0;
}

/* Loads name, which must succeed, and checks that err was cleared. */
static void
load_ok(const char *name, struct ioloop_manifest *m)
{
    char err[512] = "left over";

    if (ioloop__manifest_load(name, m, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    assert_string_equal(err, "");
}

/* Loads name, which must fail with exactly want, leaving *m zeroed. */
static void
expect_load_error(const char *name, const char *want)
{
    struct ioloop_manifest m;
    char err[512];

    memset(&m, 0xa5, sizeof m); /* garbage: a failed load must zero it */
    assert_int_equal(ioloop__manifest_load(name, &m, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_null(strchr(err, '\n'));
    assert_true(is_zeroed(&m));
}

/* Writes json to m.json, which must then fail to load with want. */
static void
expect_error(const char *json, const char *want)
{
    write_json("m.json", json);
    expect_load_error("m.json", want);
}

/* Joins the test folder and rel into buf. */
static const char *
tmp_path(char *buf, size_t len, const char *rel)
{
    int n;

    n = snprintf(buf, len, "%s/%s", g_tmp, rel);
    assert_true(n > 0 && (size_t) n < len);
    return buf;
}


/* ---- what a good manifest turns into ---------------------------------- */

static void
test_design_sample(void **state)
{
    struct ioloop_manifest m;
    char want[PATH_MAX + 32];
    json_t *config;

    (void) state;
    write_json("m.json",
        "{\n"
        "  'backend': 'auto',\n"
        "  'backend_dir': 'backends',\n"
        "  'plugin_dir': 'plugins',\n"
        "  'log': { 'level': 'info' },\n"
        "  'plugins': [\n"
        "    { 'name': 'hello', 'path': 'hello_http.so',\n"
        "      'config': { 'listen': '127.0.0.1:8888',"
        " 'routes': { '/': 'hello' } } }\n"
        "  ]\n"
        "}\n");
    load_ok("m.json", &m);

    assert_string_equal(m.file, "m.json");
    assert_string_equal(m.dir, g_tmp);
    assert_int_equal(m.nbackends, 4);
    assert_string_equal(m.backends[0], "epoll");
    assert_string_equal(m.backends[1], "kqueue");
    assert_string_equal(m.backends[2], "poll");
    assert_string_equal(m.backends[3], "select");
    assert_string_equal(m.backend_dir, tmp_path(want, sizeof want,
                                                "backends"));
    assert_string_equal(m.plugin_dir, tmp_path(want, sizeof want,
                                               "plugins"));
    assert_int_equal(m.log_level, IOLOOP_LOG_INFO);
    assert_int_equal(m.nplugins, 1);
    assert_string_equal(m.plugins[0].name, "hello");
    assert_string_equal(m.plugins[0].path, "hello_http.so");
    assert_string_equal(m.plugins[0].where, "plugins[0]");
    config = m.plugins[0].config;
    assert_true(json_is_object(config));
    assert_string_equal(json_string_value(json_object_get(config, "listen")),
                        "127.0.0.1:8888");
    assert_non_null(m.root);

    ioloop__manifest_free(&m);
    assert_true(is_zeroed(&m));
}

static void
test_empty_object_defaults(void **state)
{
    struct ioloop_manifest m;
    size_t i;

    (void) state;
    write_json("m.json", "{}");
    load_ok("m.json", &m);

    assert_string_equal(m.dir, g_tmp);
    for (i = 0; ioloop__auto_backends[i] != NULL; i++) {
        assert_true(i < m.nbackends);
        assert_string_equal(m.backends[i], ioloop__auto_backends[i]);
    }
    assert_int_equal(m.nbackends, i);
    assert_null(m.backend_dir);
    assert_null(m.plugin_dir);
    assert_int_equal(m.log_level, IOLOOP_LOG_INFO);
    assert_null(m.plugins);
    assert_int_equal(m.nplugins, 0);

    ioloop__manifest_free(&m);
}

static void
test_empty_lists_and_log(void **state)
{
    struct ioloop_manifest m;

    (void) state;
    write_json("m.json", "{'plugins': [], 'log': {}}");
    load_ok("m.json", &m);
    assert_int_equal(m.nplugins, 0);
    assert_null(m.plugins);
    assert_int_equal(m.log_level, IOLOOP_LOG_INFO);
    ioloop__manifest_free(&m);
}

static void
test_backend_single_name(void **state)
{
    struct ioloop_manifest m;

    (void) state;
    write_json("m.json", "{'backend': 'select'}");
    load_ok("m.json", &m);
    assert_int_equal(m.nbackends, 1);
    assert_string_equal(m.backends[0], "select");
    ioloop__manifest_free(&m);
}

static void
test_backend_list_order_and_dedupe(void **state)
{
    struct ioloop_manifest m;

    (void) state;
    write_json("m.json",
               "{'backend': ['poll', 'my_poller2', 'auto', 'select', 'poll',"
               " 'my_poller2']}");
    load_ok("m.json", &m);
    assert_int_equal(m.nbackends, 5);
    assert_string_equal(m.backends[0], "poll");
    assert_string_equal(m.backends[1], "my_poller2");
    assert_string_equal(m.backends[2], "epoll");
    assert_string_equal(m.backends[3], "kqueue");
    assert_string_equal(m.backends[4], "select");
    ioloop__manifest_free(&m);
}

static void
test_log_levels(void **state)
{
    static const struct {
        const char *json;
        int level;
    } cases[] = {
        { "{'log': {'level': 'error'}}", IOLOOP_LOG_ERROR },
        { "{'log': {'level': 'warn'}}", IOLOOP_LOG_WARN },
        { "{'log': {'level': 'info'}}", IOLOOP_LOG_INFO },
        { "{'log': {'level': 'debug'}}", IOLOOP_LOG_DEBUG },
    };
    struct ioloop_manifest m;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_json("m.json", cases[i].json);
        load_ok("m.json", &m);
        assert_int_equal(m.log_level, cases[i].level);
        ioloop__manifest_free(&m);
    }
}

/* Relative paths follow the manifest's folder even when the cwd is "/". */
static void
test_paths_ignore_cwd(void **state)
{
    struct ioloop_manifest m;
    char file[PATH_MAX];
    char want[PATH_MAX + 32];

    (void) state;
    assert_int_equal(mkdir("sub", 0755), 0);
    write_json("sub/m.json",
               "{'backend_dir': '../be', 'plugin_dir': 'p/q',"
               " 'plugins': ["
               "  {'name': 'rel', 'path': './x/a.so'},"
               "  {'name': 'abs', 'path': '/opt/b.so'},"
               "  {'name': 'bare', 'path': 'bare.so'},"
               "  {'name': 'sub', 'path': 'lib/c.so'}]}");
    tmp_path(file, sizeof file, "sub/m.json");

    assert_int_equal(chdir("/"), 0);
    load_ok(file, &m);
    assert_int_equal(chdir(g_tmp), 0);

    assert_string_equal(m.file, file);
    assert_string_equal(m.dir, tmp_path(want, sizeof want, "sub"));
    assert_string_equal(m.backend_dir, tmp_path(want, sizeof want,
                                                "sub/../be"));
    assert_string_equal(m.plugin_dir, tmp_path(want, sizeof want,
                                               "sub/p/q"));
    assert_int_equal(m.nplugins, 4);
    assert_string_equal(m.plugins[0].path, tmp_path(want, sizeof want,
                                                    "sub/./x/a.so"));
    assert_string_equal(m.plugins[1].path, "/opt/b.so");
    assert_string_equal(m.plugins[2].path, "bare.so");
    assert_string_equal(m.plugins[3].path, tmp_path(want, sizeof want,
                                                    "sub/lib/c.so"));
    assert_string_equal(m.plugins[3].where, "plugins[3]");
    ioloop__manifest_free(&m);
}

/* A relative manifest path still gives an absolute m->dir. */
static void
test_relative_manifest_path(void **state)
{
    struct ioloop_manifest m;
    char want[PATH_MAX + 32];

    (void) state;
    assert_int_equal(mkdir("rel", 0755), 0);
    write_json("rel/m.json", "{'backend_dir': '/usr/lib/ioloop'}");
    load_ok("rel/m.json", &m);
    assert_string_equal(m.file, "rel/m.json");
    assert_string_equal(m.dir, tmp_path(want, sizeof want, "rel"));
    assert_string_equal(m.backend_dir, "/usr/lib/ioloop");
    ioloop__manifest_free(&m);
}

/* "config" is borrowed from root and its content is not validated. */
static void
test_plugin_config_borrowed(void **state)
{
    struct ioloop_manifest m;
    json_t *entries;

    (void) state;
    write_json("m.json",
               "{'plugins': ["
               " {'name': 'a', 'path': 'a.so'},"
               " {'name': 'b.v2-x_Y', 'path': 'b.so',"
               "  'config': {'anything': [1, null], 'pth': {}}}]}");
    load_ok("m.json", &m);
    assert_int_equal(m.nplugins, 2);
    assert_null(m.plugins[0].config);
    entries = json_object_get(m.root, "plugins");
    assert_ptr_equal(m.plugins[1].config,
                     json_object_get(json_array_get(entries, 1), "config"));
    assert_string_equal(m.plugins[1].name, "b.v2-x_Y");
    ioloop__manifest_free(&m);
}

static void
test_free_is_idempotent(void **state)
{
    struct ioloop_manifest m;

    (void) state;
    memset(&m, 0, sizeof m);
    ioloop__manifest_free(&m);
    ioloop__manifest_free(NULL);
    write_json("m.json", "{'plugins': [{'name': 'a', 'path': 'a.so'}]}");
    load_ok("m.json", &m);
    ioloop__manifest_free(&m);
    assert_true(is_zeroed(&m));
    ioloop__manifest_free(&m);
    assert_true(is_zeroed(&m));
}


/* ---- reading and syntax ----------------------------------------------- */

static void
test_err_missing_file(void **state)
{
    (void) state;
    expect_load_error("nope.json",
                      "nope.json: cannot read: No such file or directory");
}

static void
test_err_unreadable_file(void **state)
{
    (void) state;
    if (geteuid() == 0) {
        skip();                 /* root reads a mode 000 file anyway */
    }
    write_json("locked.json", "{}");
    assert_int_equal(chmod("locked.json", 0), 0);
    expect_load_error("locked.json",
                      "locked.json: cannot read: Permission denied");
}

static void
test_err_directory(void **state)
{
    (void) state;
    assert_int_equal(mkdir("adir", 0755), 0);
    expect_load_error("adir", "adir: cannot read: Is a directory");
}

static void
test_err_syntax_line_column(void **state)
{
    (void) state;
    expect_error("{\n  'backend': 'auto',\n}\n",
                 "m.json:3:1: syntax error: string or '}' expected"
                 " near '}'");
}

static void
test_err_syntax_mid_line(void **state)
{
    (void) state;
    expect_error("{'plugins': [1 2]}",
                 "m.json:1:16: syntax error: ']' expected near '2'");
}

static void
test_err_empty_file(void **state)
{
    (void) state;
    expect_error("", "m.json:1:0: syntax error: unexpected token near end"
                 " of file");
}

static void
test_err_duplicate_json_key(void **state)
{
    (void) state;
    expect_error("{'log': {},\n 'log': {}}",
                 "m.json:2:6: syntax error: duplicate object key near"
                 " '\"log\"'");
}

static void
test_err_top_level_array(void **state)
{
    (void) state;
    expect_error("[{'backend': 'auto'}]",
                 "m.json:1:1: expected an object at the top level, got array");
}

static void
test_err_top_level_string(void **state)
{
    (void) state;
    expect_error("'auto'",
                 "m.json:1:1: expected an object at the top level, got string");
}


/* ---- unknown keys ----------------------------------------------------- */

static void
test_err_unknown_key_top(void **state)
{
    (void) state;
    expect_error("{'bakend': 'auto'}", "m.json:1:12: bakend: unknown key");
}

/* "workers" and "pid_file" are not part of the schema yet. */
static void
test_err_unknown_key_not_yet(void **state)
{
    (void) state;
    expect_error("{'threads': 4}", "m.json:1:13: threads: unknown key");
    expect_error("{'daemon': true}", "m.json:1:12: daemon: unknown key");
}

/* The process model and logging keys, and their defaults. */
static void
test_process_and_log_keys(void **state)
{
    struct ioloop_manifest m;
    char pid[PATH_MAX];

    (void) state;
    write_json("m.json", "{}");
    load_ok("m.json", &m);
    assert_int_equal(m.workers, 0);
    assert_int_equal(m.shutdown_timeout, 10 * IOLOOP_NS_PER_S);
    assert_int_equal(m.watchdog_ms, 0);
    assert_null(m.pid_file);
    assert_int_equal(m.log_json, 0);
    ioloop__manifest_free(&m);

    write_json("m.json", "{'workers': 3, 'shutdown_timeout': 0.25, "
                         "'watchdog_ms': 50, 'pid_file': 'run/h.pid', "
                         "'log': {'format': 'json', 'plugins': {'b': 'debug'}},"
                         " 'plugins': [{'name': 'a', 'path': 'a.so'},"
                         " {'name': 'b', 'path': 'b.so'}]}");
    load_ok("m.json", &m);
    assert_int_equal(m.workers, 3);
    assert_int_equal(m.shutdown_timeout, IOLOOP_NS_PER_S / 4);
    assert_int_equal(m.watchdog_ms, 50);
    tmp_path(pid, sizeof pid, "run/h.pid");
    assert_string_equal(m.pid_file, pid);
    assert_int_equal(m.log_json, 1);
    assert_int_equal(m.plugins[0].log_level, -1);
    assert_int_equal(m.plugins[1].log_level, IOLOOP_LOG_DEBUG);
    ioloop__manifest_free(&m);

    write_json("m.json", "{'workers': 'auto'}");
    load_ok("m.json", &m);
    assert_true(m.workers >= 1);
    assert_int_equal(m.watchdog_kill_ms, 0);
    ioloop__manifest_free(&m);

    write_json("m.json", "{'workers': 2, 'watchdog_kill_ms': 5000}");
    load_ok("m.json", &m);
    assert_int_equal(m.watchdog_kill_ms, 5000);
    ioloop__manifest_free(&m);

    /* Durations with a unit, as plugin configs write them. */
    write_json("m.json", "{'shutdown_timeout': '1.5m', "
                         "'log': {'level': 'warn'}}");
    load_ok("m.json", &m);
    assert_int_equal(m.shutdown_timeout, 90 * IOLOOP_NS_PER_S);
    assert_int_equal(m.log_level, IOLOOP_LOG_WARN);
    ioloop__manifest_free(&m);
}

/* A value on a later line is located there, columns in characters. */
static void
test_err_located_multiline(void **state)
{
    (void) state;
    expect_error("{\n  'plugins': [\n    {'name': '\xc3\xa9', 'path': 'a.so'}\n"
                 "  ]\n}\n",
                 "m.json:3:14: plugins[0].name: invalid plugin name "
                 "\"\xc3\xa9\" (expected 1 to 64 letters, digits, '_', '.' "
                 "or '-')");
    expect_error("{\n  'log': {\n    'level': 'loud'}\n}\n",
                 "m.json:3:14: log.level: expected one of "
                 "error|warn|info|debug, got \"loud\"");
    expect_error("{\n  'plugins': [{'name': 'a', 'path': 'a.so'}],\n"
                 "  'log': {'plugins': {'b': 'debug'}}\n}\n",
                 "m.json:3:28: log.plugins.b: no plugin instance named "
                 "\"b\"");
}

static void
test_err_process_and_log_keys(void **state)
{
    (void) state;
    expect_error("{'workers': 0}", "m.json:1:13: workers: expected an integer "
                                   "in [1, 1024] or \"auto\", got integer");
    expect_error("{'workers': 'many'}", "m.json:1:13: workers: expected an "
                                        "integer in [1, 1024] or \"auto\", got "
                                        "string");
    expect_error("{'shutdown_timeout': -1}", "m.json:1:22: shutdown_timeout: "
                                             "expected a duration (\"10s\", "
                                             "\"250ms\" or seconds), got -1");
    expect_error("{'watchdog_ms': 'x'}", "m.json:1:17: watchdog_ms: expected "
                                         "an integer in [0, 3600000], got "
                                         "\"x\"");
    expect_error("{'workers': 1, 'watchdog_kill_ms': -1}",
                 "m.json:1:36: watchdog_kill_ms: expected an integer in [0, "
                 "3600000], got -1");
    expect_error("{'watchdog_kill_ms': 100}",
                 "m.json:1:22: watchdog_kill_ms: needs \"workers\" (the master "
                 "replaces a blocked worker)");
    expect_error("{'pid_file': 3}", "m.json:1:14: pid_file: expected a path "
                                    "string, got 3");
    expect_error("{'log': {'format': 'xml'}}", "m.json:1:20: log.format: "
                                               "expected one of plain|json, "
                                               "got \"xml\"");
    expect_error("{'log': {'plugins': {'x': 'debug'}}}",
                 "m.json:1:27: log.plugins.x: no plugin instance named \"x\"");
    expect_error("{'log': {'plugins': {'a': 'loud'}}, 'plugins': [{'name': "
                 "'a', 'path': 'a.so'}]}",
                 "m.json:1:27: log.plugins.a: unknown level \"loud\" (expected "
                 "error, warn, info or debug)");
}

/*
 * Durations below the clock's 1 ms resolution would be stored as 0 (or
 * round to it) and are refused with the range and the value given.
 */
static void
test_err_duration_ranges(void **state)
{
    (void) state;
    expect_error("{'shutdown_timeout': 1e-12}", "m.json:1:22: "
                                                "shutdown_timeout: expected a "
                                                "duration in [1ms, 1h], got "
                                                "1e-12");
    expect_error("{'shutdown_timeout': 0}", "m.json:1:22: shutdown_timeout: "
                                            "expected a duration in [1ms, 1h], "
                                            "got 0");
    expect_error("{'shutdown_timeout': 0.0009}", "m.json:1:22: "
                                                 "shutdown_timeout: expected a "
                                                 "duration in [1ms, 1h], got "
                                                 "0.0009");
    expect_error("{'shutdown_timeout': 3600.5}", "m.json:1:22: "
                                                 "shutdown_timeout: expected a "
                                                 "duration in [1ms, 1h], got "
                                                 "3600.5");
    expect_error("{'shutdown_timeout': '10'}", "m.json:1:22: shutdown_timeout: "
                                               "expected a duration (\"10s\", "
                                               "\"250ms\" or seconds), got "
                                               "\"10\"");
    expect_error("{'watchdog_ms': -1}", "m.json:1:17: watchdog_ms: expected an "
                                        "integer in [0, 3600000], got -1");
    expect_error("{'watchdog_ms': 3600001}", "m.json:1:17: watchdog_ms: "
                                             "expected an integer in [0, "
                                             "3600000], got 3600001");
    expect_error("{'watchdog_ms': 0.5}", "m.json:1:17: watchdog_ms: expected "
                                         "an integer in [0, 3600000], got 0.5");
    expect_error("{'watchdog_ms': 9223372036854775807}", "m.json:1:17: "
                                                         "watchdog_ms: "
                                                         "expected an integer "
                                                         "in [0, 3600000], got "
                                                         "9223372036854775807");
}

/* The bounds themselves are accepted. */
static void
test_duration_bounds(void **state)
{
    struct ioloop_manifest m;

    (void) state;
    write_json("m.json", "{'shutdown_timeout': 0.001, 'watchdog_ms': 1}");
    load_ok("m.json", &m);
    assert_int_equal(m.shutdown_timeout, IOLOOP_NS_PER_MS);
    assert_int_equal(m.watchdog_ms, 1);
    ioloop__manifest_free(&m);
    write_json("m.json", "{'shutdown_timeout': 3600, 'watchdog_ms': 3600000}");
    load_ok("m.json", &m);
    assert_int_equal(m.shutdown_timeout, 3600 * IOLOOP_NS_PER_S);
    assert_int_equal(m.watchdog_ms, 3600000);
    ioloop__manifest_free(&m);
}

/* Instance names: 64 bytes pass, 65 (or 10,000) are refused by rule. */
static void
test_err_plugin_name_length(void **state)
{
    struct ioloop_manifest m;
    char name[10001], text[10100], want[512];

    (void) state;
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(text, sizeof text,
             "{'plugins': [{'name': '%s', 'path': 'a.so'}]}", name);
    write_json("m.json", text);
    load_ok("m.json", &m);
    assert_string_equal(m.plugins[0].name, name);
    ioloop__manifest_free(&m);

    name[64] = 'n';
    name[65] = '\0';
    snprintf(text, sizeof text,
             "{'plugins': [{'name': '%s', 'path': 'a.so'}]}", name);
    snprintf(want, sizeof want, "m.json:1:23: plugins[0].name: invalid plugin "
             "name \"%.65s\" (expected 1 to 64 letters, digits, '_', '.' or "
             "'-')", name);
    expect_error(text, want);

    memset(name, 'n', 10000);
    name[10000] = '\0';
    snprintf(text, sizeof text,
             "{'plugins': [{'name': '%s', 'path': 'a.so'}]}", name);
    snprintf(want, sizeof want, "m.json:1:23: plugins[0].name: invalid plugin "
             "name \"%.*s...\" (expected 1 to 64 letters, digits, '_', '.' "
             "or '-')", 122, name);
    expect_error(text, want);
}

/* The first unknown key in document order is the one named. */
static void
test_err_unknown_key_document_order(void **state)
{
    (void) state;
    expect_error("{'log': {}, 'zzz': 1, 'aaa': 2}",
                 "m.json:1:20: zzz: unknown key");
}

static void
test_err_unknown_key_log(void **state)
{
    (void) state;
    expect_error("{'log': {'levl': 'info'}}", "m.json:1:18: log.levl: unknown "
                                              "key");
}

static void
test_err_unknown_key_plugin(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a', 'path': 'a.so'},"
                 " {'name': 'b', 'pth': 'b.so'}]}",
                 "m.json:1:66: plugins[1].pth: unknown key");
}

/* A key that is not a plain word is quoted, so it cannot pass for a path
 * and cannot break the line. */
static void
test_err_unknown_key_quoted(void **state)
{
    (void) state;
    expect_error("{'log.level': 'info'}",
                 "m.json:1:15: [\"log.level\"]: unknown key");
    expect_error("{'': 1}", "m.json:1:6: [\"\"]: unknown key");
    expect_error("{'log': {'a\\nb': 1}}",
                 "m.json:1:18: log[\"a\\nb\"]: unknown key");
}


/* ---- wrong types ------------------------------------------------------ */

static void
test_err_type_backend(void **state)
{
    (void) state;
    expect_error("{'backend': 1}", "m.json:1:13: backend: expected a string or "
                                   "an array of strings, got integer");
    expect_error("{'backend': null}", "m.json:1:13: backend: expected a string "
                                      "or an array of strings, got null");
}

static void
test_err_type_backend_item(void **state)
{
    (void) state;
    expect_error("{'backend': ['epoll', ['poll']]}",
                 "m.json:1:23: backend[1]: expected a string, got array");
}

static void
test_err_type_backend_dir(void **state)
{
    (void) state;
    expect_error("{'backend_dir': true}",
                 "m.json:1:17: backend_dir: expected a path string, got true");
}

static void
test_err_type_plugin_dir(void **state)
{
    (void) state;
    expect_error("{'plugin_dir': 1.5}",
                 "m.json:1:16: plugin_dir: expected a path string, got 1.5");
}

static void
test_err_type_log(void **state)
{
    (void) state;
    expect_error("{'log': 'info'}",
                 "m.json:1:9: log: expected an object, got string");
}

static void
test_err_type_log_level(void **state)
{
    (void) state;
    expect_error("{'log': {'level': 2}}",
                 "m.json:1:19: log.level: expected one of "
                 "error|warn|info|debug, got 2");
}

static void
test_err_type_plugins(void **state)
{
    (void) state;
    expect_error("{'plugins': {'name': 'a'}}",
                 "m.json:1:13: plugins: expected an array, got object");
}

static void
test_err_type_plugin_entry(void **state)
{
    (void) state;
    expect_error("{'plugins': ['hello_http.so']}",
                 "m.json:1:14: plugins[0]: expected an object, got string");
}

static void
test_err_type_plugin_name(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': false, 'path': 'a.so'}]}",
                 "m.json:1:23: plugins[0].name: expected a string, got false");
}

static void
test_err_type_plugin_path(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a', 'path': ['a.so']}]}",
                 "m.json:1:36: plugins[0].path: expected a string, got array");
}

static void
test_err_config_not_object(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a', 'path': 'a.so',"
                 " 'config': []}]}",
                 "m.json:1:54: plugins[0].config: expected an object, got "
                 "array");
    expect_error("{'plugins': [{'name': 'a', 'path': 'a.so',"
                 " 'config': null}]}",
                 "m.json:1:54: plugins[0].config: expected an object, got "
                 "null");
}

static void
test_err_one_process_not_boolean(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a', 'path': 'a.so',"
                 " 'one_process': 1}]}",
                 "m.json:1:59: plugins[0].one_process: expected true or "
                 "false, got integer");
}


/* ---- bad values ------------------------------------------------------- */

static void
test_err_bad_level(void **state)
{
    (void) state;
    expect_error("{'log': {'level': 'verbose'}}",
                 "m.json:1:19: log.level: expected one of "
                 "error|warn|info|debug, got \"verbose\"");
}

static void
test_err_bad_backend_name_in_list(void **state)
{
    (void) state;
    expect_error("{'backend': ['epoll', 'poll', 'ep oll']}",
                 "m.json:1:31: backend[2]: invalid backend name \"ep oll\"");
}

static void
test_err_bad_backend_name(void **state)
{
    (void) state;
    expect_error("{'backend': 'EPOLL'}",
                 "m.json:1:13: backend: invalid backend name \"EPOLL\"");
    expect_error("{'backend': '../evil'}",
                 "m.json:1:13: backend: invalid backend name \"../evil\"");
    expect_error("{'backend': 'epoll.so'}",
                 "m.json:1:13: backend: invalid backend name \"epoll.so\"");
    expect_error("{'backend': ''}",
                 "m.json:1:13: backend: invalid backend name \"\"");
}

static void
test_err_empty_backend_list(void **state)
{
    (void) state;
    expect_error("{'backend': []}", "m.json:1:13: backend: empty list");
}

static void
test_err_empty_dir(void **state)
{
    (void) state;
    expect_error("{'plugin_dir': ''}", "m.json:1:16: plugin_dir: expected a "
                                       "path, got \"\"");
}

static void
test_err_duplicate_plugin_name(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'hello', 'path': 'a.so'},"
                 " {'name': 'other', 'path': 'b.so'},"
                 " {'name': 'hello', 'path': 'c.so'}]}",
                 "m.json:1:93: plugins[2].name: duplicate of plugins[0].name "
                 "\"hello\"");
}

static void
test_err_empty_plugin_name(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': '', 'path': 'a.so'}]}",
                 "m.json:1:23: plugins[0].name: empty name");
}

static void
test_err_invalid_plugin_name(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a/b', 'path': 'a.so'}]}",
                 "m.json:1:23: plugins[0].name: invalid plugin name \"a/b\" "
                 "(expected 1 to 64 letters, digits, '_', '.' or '-')");
}

static void
test_err_missing_plugin_keys(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'path': 'a.so'}]}",
                 "m.json:1:14: plugins[0]: missing key \"name\"");
    expect_error("{'plugins': [{'name': 'a'}]}",
                 "m.json:1:14: plugins[0]: missing key \"path\"");
}

static void
test_err_empty_plugin_path(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a', 'path': ''}]}",
                 "m.json:1:36: plugins[0].path: empty path");
}

/* A value with a newline or a quote is escaped: the message is one line. */
static void
test_err_value_escaped(void **state)
{
    (void) state;
    expect_error("{'plugins': [{'name': 'a\\nb\\'c', 'path': 'a.so'}]}",
                 "m.json:1:23: plugins[0].name: invalid plugin name "
                 "\"a\\nb\\\"c\" (expected 1 to 64 letters, digits, '_', '.' "
                 "or '-')");
}

/* A short buffer gets a cut, terminated message; no buffer is fine. */
static void
test_err_truncated(void **state)
{
    struct ioloop_manifest m;
    char err[16];

    (void) state;
    write_json("m.json", "{'bakend': 'auto'}");
    memset(err, 'x', sizeof err);
    assert_int_equal(ioloop__manifest_load("m.json", &m, err, sizeof err),
                     -1);
    assert_string_equal(err, "m.json:1:12: ba");
    assert_true(is_zeroed(&m));
    assert_int_equal(ioloop__manifest_load("m.json", &m, NULL, 0), -1);
    assert_true(is_zeroed(&m));
}


/* ---- --backend -------------------------------------------------------- */

static void
test_set_backend_name(void **state)
{
    struct ioloop_manifest m;
    char err[256];

    (void) state;
    write_json("m.json", "{'backend': ['epoll', 'poll']}");
    load_ok("m.json", &m);
    assert_int_equal(ioloop__manifest_set_backend(&m, "select", err,
                                                  sizeof err), 0);
    assert_int_equal(m.nbackends, 1);
    assert_string_equal(m.backends[0], "select");
    ioloop__manifest_free(&m);
}

static void
test_set_backend_auto(void **state)
{
    struct ioloop_manifest m;
    char err[256];

    (void) state;
    write_json("m.json", "{'backend': 'select'}");
    load_ok("m.json", &m);
    assert_int_equal(ioloop__manifest_set_backend(&m, "auto", err,
                                                  sizeof err), 0);
    assert_int_equal(m.nbackends, 4);
    assert_string_equal(m.backends[0], "epoll");
    assert_string_equal(m.backends[3], "select");
    ioloop__manifest_free(&m);
}

/* An invalid name leaves the list as it was. */
static void
test_set_backend_invalid(void **state)
{
    struct ioloop_manifest m;
    char err[256];
    char **before;

    (void) state;
    write_json("m.json", "{'backend': 'poll'}");
    load_ok("m.json", &m);
    before = m.backends;
    assert_int_equal(ioloop__manifest_set_backend(&m, "ep oll", err,
                                                  sizeof err), -1);
    assert_string_equal(err, "--backend: invalid backend name \"ep oll\"");
    assert_int_equal(ioloop__manifest_set_backend(&m, "", err, sizeof err),
                     -1);
    assert_string_equal(err, "--backend: invalid backend name \"\"");
    assert_ptr_equal(m.backends, before);
    assert_int_equal(m.nbackends, 1);
    assert_string_equal(m.backends[0], "poll");
    ioloop__manifest_free(&m);
}


/* ---- fixture ---------------------------------------------------------- */

static int
remove_entry(const char *path, const struct stat *st, int flag,
             struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

static int
group_setup(void **state)
{
    char tmpl[] = "/tmp/test_manifest.XXXXXX";

    (void) state;
    if (getcwd(g_cwd, sizeof g_cwd) == NULL || mkdtemp(tmpl) == NULL
        || realpath(tmpl, g_tmp) == NULL || chdir(g_tmp) != 0)
    {
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    int rc = 0;

    (void) state;
    if (chdir(g_cwd) != 0) {
        rc = -1;
    }
    if (nftw(g_tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        rc = -1;
    }
    return rc;
}

/* A test that failed half-way may have left the cwd elsewhere. */
static int
test_teardown(void **state)
{
    (void) state;
    return chdir(g_tmp);
}

#define TEST(f) cmocka_unit_test_teardown(f, test_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_design_sample),
        TEST(test_empty_object_defaults),
        TEST(test_empty_lists_and_log),
        TEST(test_backend_single_name),
        TEST(test_backend_list_order_and_dedupe),
        TEST(test_log_levels),
        TEST(test_paths_ignore_cwd),
        TEST(test_relative_manifest_path),
        TEST(test_plugin_config_borrowed),
        TEST(test_free_is_idempotent),
        TEST(test_err_missing_file),
        TEST(test_err_unreadable_file),
        TEST(test_err_directory),
        TEST(test_err_syntax_line_column),
        TEST(test_err_syntax_mid_line),
        TEST(test_err_empty_file),
        TEST(test_err_duplicate_json_key),
        TEST(test_err_top_level_array),
        TEST(test_err_top_level_string),
        TEST(test_err_unknown_key_top),
        TEST(test_err_unknown_key_not_yet),
        TEST(test_process_and_log_keys),
        TEST(test_err_located_multiline),
        TEST(test_err_process_and_log_keys),
        TEST(test_err_duration_ranges),
        TEST(test_duration_bounds),
        TEST(test_err_plugin_name_length),
        TEST(test_err_unknown_key_document_order),
        TEST(test_err_unknown_key_log),
        TEST(test_err_unknown_key_plugin),
        TEST(test_err_unknown_key_quoted),
        TEST(test_err_type_backend),
        TEST(test_err_type_backend_item),
        TEST(test_err_type_backend_dir),
        TEST(test_err_type_plugin_dir),
        TEST(test_err_type_log),
        TEST(test_err_type_log_level),
        TEST(test_err_type_plugins),
        TEST(test_err_type_plugin_entry),
        TEST(test_err_type_plugin_name),
        TEST(test_err_type_plugin_path),
        TEST(test_err_config_not_object),
        TEST(test_err_one_process_not_boolean),
        TEST(test_err_bad_level),
        TEST(test_err_bad_backend_name_in_list),
        TEST(test_err_bad_backend_name),
        TEST(test_err_empty_backend_list),
        TEST(test_err_empty_dir),
        TEST(test_err_duplicate_plugin_name),
        TEST(test_err_empty_plugin_name),
        TEST(test_err_invalid_plugin_name),
        TEST(test_err_missing_plugin_keys),
        TEST(test_err_empty_plugin_path),
        TEST(test_err_value_escaped),
        TEST(test_err_truncated),
        TEST(test_set_backend_name),
        TEST(test_set_backend_auto),
        TEST(test_set_backend_invalid),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
