/*
 * tests/unit/test_config_schema.c: host/runtime/config_schema.c and
 * config_units.c: every type accepted and refused with its message,
 * defaults, required and unknown keys, and the schema checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include <ioloop/config.h>

#include "config_schema.h"
#include "config_units.h"

struct conf {
    const char *name;
    bool on;
    int64_t count;
    int mode;
    ioloop_time_t timeout;
    uint64_t limit;
    const char *listen;
    const char *file;
    struct ioloop_config_map headers;
    struct ioloop_config_list tags;
    const char *extra;
};

static const char *const modes[] = {"fast", "safe", NULL};

static const struct ioloop_config_field schema[] = {
    IOLOOP_CONFIG_STRING(struct conf, name, NULL, IOLOOP_CONFIG_REQUIRED,
                         "A name."),
    IOLOOP_CONFIG_BOOL(struct conf, on, "true", 0, "On or off."),
    IOLOOP_CONFIG_INT(struct conf, count, 1, 100, "10", 0, "A count."),
    IOLOOP_CONFIG_ENUM(struct conf, mode, modes, "safe", 0, "A mode."),
    IOLOOP_CONFIG_DURATION(struct conf, timeout, 0, 86400 * IOLOOP_NS_PER_S,
                           "10s", 0, "A timeout."),
    IOLOOP_CONFIG_SIZE(struct conf, limit, 64, INT64_C(1) << 30, "1MiB", 0,
                       "A size."),
    IOLOOP_CONFIG_LISTEN(struct conf, listen, NULL, 0, "An address."),
    IOLOOP_CONFIG_PATH(struct conf, file, NULL, 0, "A file."),
    IOLOOP_CONFIG_MAP(struct conf, headers, 0, "Headers."),
    IOLOOP_CONFIG_LIST(struct conf, tags, 0, "Tags."),
    IOLOOP_CONFIG_JSON(struct conf, extra, NULL, 0, "Anything."),
    IOLOOP_CONFIG_END,
};

/* Fills text (JSON, ' for ") against schema: 0 or -1 with *e. */
static int
fill(const char *text, struct ioloop__config *c,
     struct ioloop__config_error *e)
{
    char buf[1024];
    json_t *obj;
    int rc;

    snprintf(buf, sizeof(buf), "%s", text);
    for (char *p = buf; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    obj = json_loads(buf, 0, NULL);
    assert_non_null(obj);
    rc = ioloop__config_fill(schema, sizeof(struct conf), obj,
                             "plugins[0].config", "/etc/x", "demo", c, e);
    json_decref(obj);
    return rc;
}

/* text must be refused at path with msg. */
static void
refused(const char *text, const char *path, const char *msg)
{
    struct ioloop__config c;
    struct ioloop__config_error e;

    assert_int_equal(fill(text, &c, &e), -1);
    assert_null(c.data);
    assert_string_equal(e.path, path);
    assert_string_equal(e.msg, msg);
}

static void
test_schema_is_valid(void **state)
{
    char err[256];

    (void) state;
    assert_int_equal(ioloop__config_schema_check(schema, sizeof(struct conf),
                                                 err, sizeof(err)),
                     0);
}

static void
test_defaults(void **state)
{
    struct ioloop__config c;
    struct ioloop__config_error e;
    const struct conf *k;

    (void) state;
    assert_int_equal(fill("{'name': 'n'}", &c, &e), 0);
    k = c.data;
    assert_string_equal(k->name, "n");
    assert_true(k->on);
    assert_int_equal(k->count, 10);
    assert_int_equal(k->mode, 1);
    assert_int_equal(k->timeout, 10 * IOLOOP_NS_PER_S);
    assert_int_equal(k->limit, 1 << 20);
    assert_null(k->listen);
    assert_null(k->file);
    assert_int_equal(k->headers.count, 0);
    assert_int_equal(k->tags.count, 0);
    assert_null(k->extra);
    ioloop__config_free(&c);
    assert_null(c.data);
}

static void
test_every_type(void **state)
{
    struct ioloop__config c;
    struct ioloop__config_error e;
    const struct conf *k;

    (void) state;
    assert_int_equal(
        fill("{'name': 'n', 'on': false, 'count': 100, 'mode': 'fast',"
             " 'timeout': '250ms', 'limit': '64KiB',"
             " 'listen': '127.0.0.1:0', 'file': 'a/b',"
             " 'headers': {'X-A': '1', 'X-B': '2'}, 'tags': ['t1', 't2'],"
             " 'extra': {'k': [1, 2]}}",
             &c, &e),
        0);
    k = c.data;
    assert_false(k->on);
    assert_int_equal(k->count, 100);
    assert_int_equal(k->mode, 0);
    assert_int_equal(k->timeout, 250 * IOLOOP_NS_PER_MS);
    assert_int_equal(k->limit, 64 * 1024);
    assert_string_equal(k->listen, "127.0.0.1:0");
    assert_string_equal(k->file, "/etc/x/a/b");
    assert_int_equal(k->headers.count, 2);
    assert_string_equal(k->headers.keys[0], "X-A");
    assert_string_equal(k->headers.values[0], "1");
    assert_string_equal(k->headers.keys[1], "X-B");
    assert_string_equal(k->headers.values[1], "2");
    assert_int_equal(k->tags.count, 2);
    assert_string_equal(k->tags.items[1], "t2");
    assert_string_equal(k->extra, "{\"k\":[1,2]}");
    ioloop__config_free(&c);

    /* Seconds as a number; an absolute path stays as given. */
    assert_int_equal(fill("{'name': 'n', 'timeout': 1.5, 'file': '/f',"
                          " 'limit': 512}",
                          &c, &e),
                     0);
    k = c.data;
    assert_int_equal(k->timeout, 1500 * IOLOOP_NS_PER_MS);
    assert_string_equal(k->file, "/f");
    assert_int_equal(k->limit, 512);
    ioloop__config_free(&c);
}

static void
test_refused(void **state)
{
    (void) state;
    refused("{}", "plugins[0].config.name", "missing (a required string)");
    refused("{'name': 1}", "plugins[0].config.name",
            "expected a string, got 1");
    refused("{'name': 'n', 'on': 'yes'}", "plugins[0].config.on",
            "expected true or false, got \"yes\"");
    refused("{'name': 'n', 'count': 101}", "plugins[0].config.count",
            "expected an integer in [1, 100], got 101");
    refused("{'name': 'n', 'count': 1.0}", "plugins[0].config.count",
            "expected an integer in [1, 100], got 1");
    refused("{'name': 'n', 'mode': 'slow'}", "plugins[0].config.mode",
            "expected one of fast|safe, got \"slow\"");
    refused("{'name': 'n', 'timeout': 'abc'}", "plugins[0].config.timeout",
            "expected a duration (\"10s\", \"250ms\" or seconds), got "
            "\"abc\"");
    refused("{'name': 'n', 'timeout': '10'}", "plugins[0].config.timeout",
            "expected a duration (\"10s\", \"250ms\" or seconds), got "
            "\"10\"");
    refused("{'name': 'n', 'timeout': 0.0005}", "plugins[0].config.timeout",
            "expected a duration in [0s, 1d] (0 or at least 1ms), got "
            "0.0005");
    refused("{'name': 'n', 'timeout': '2d'}", "plugins[0].config.timeout",
            "expected a duration in [0s, 1d] (0 or at least 1ms), got "
            "\"2d\"");
    refused("{'name': 'n', 'timeout': -1}", "plugins[0].config.timeout",
            "expected a duration (\"10s\", \"250ms\" or seconds), got -1");
    refused("{'name': 'n', 'limit': '1.5MiB'}", "plugins[0].config.limit",
            "expected a size (\"64KiB\", \"1MiB\" or bytes), got "
            "\"1.5MiB\"");
    refused("{'name': 'n', 'limit': 2}", "plugins[0].config.limit",
            "expected a size in [64, 1GiB], got 2");
    refused("{'name': 'n', 'limit': '99999999999999999999'}",
            "plugins[0].config.limit",
            "expected a size in [64, 1GiB], got \"99999999999999999999\"");
    refused("{'name': 'n', 'listen': ':80'}", "plugins[0].config.listen",
            "listen \":80\": empty host (write 0.0.0.0:80 or [::]:80 for "
            "every address)");
    refused("{'name': 'n', 'listen': '::1:80'}", "plugins[0].config.listen",
            "listen \"::1:80\": expected HOST:PORT or [IPV6]:PORT");
    refused("{'name': 'n', 'file': ''}", "plugins[0].config.file",
            "expected a path, got \"\"");
    refused("{'name': 'n', 'file': 1}", "plugins[0].config.file",
            "expected a path string, got 1");
    refused("{'name': 'n', 'listen': null}", "plugins[0].config.listen",
            "expected a listen address (\"HOST:PORT\" or \"[IPV6]:PORT\"), "
            "got null");
    refused("{'name': 'n', 'mode': 0}", "plugins[0].config.mode",
            "expected one of fast|safe, got 0");
    refused("{'name': 'n', 'headers': {'a': 1}}",
            "plugins[0].config.headers.a", "expected a string, got 1");
    refused("{'name': 'n', 'headers': {'a b': null}}",
            "plugins[0].config.headers[\"a b\"]",
            "expected a string, got null");
    refused("{'name': 'n', 'headers': []}", "plugins[0].config.headers",
            "expected an object of strings, got an array");
    refused("{'name': 'n', 'tags': ['a', true]}",
            "plugins[0].config.tags[1]", "expected a string, got true");
    refused("{'name': 'n', 'nme': 'x'}", "plugins[0].config.nme",
            "unknown key (demo accepts: name, on, count, mode, timeout, "
            "limit, listen, file, headers, tags, extra)");
    refused("[]", "plugins[0].config", "expected an object, got an array");
}

static void
test_no_config(void **state)
{
    static const struct ioloop_config_field none[] = {IOLOOP_CONFIG_END};
    struct ioloop__config c;
    struct ioloop__config_error e;
    json_t *obj = json_pack("{s:i}", "x", 1);

    (void) state;
    /* Absent config: defaults only. */
    assert_int_equal(ioloop__config_fill(none, 0, NULL, "p.config", NULL,
                                         "demo", &c, &e),
                     0);
    assert_non_null(c.data);
    ioloop__config_free(&c);
    assert_int_equal(ioloop__config_fill(none, 0, obj, "p.config", NULL,
                                         "demo", &c, &e),
                     -1);
    assert_string_equal(e.msg, "unknown key (demo accepts: nothing)");
    assert_int_equal(ioloop__config_fill(NULL, 0, obj, "p.config", NULL,
                                         "demo", &c, &e),
                     -1);
    json_decref(obj);
}

struct small {
    int64_t n;
};

static void
test_bad_schemas(void **state)
{
    static const struct ioloop_config_field bad_default[] = {
        IOLOOP_CONFIG_INT(struct small, n, 1, 10, "11", 0, "n"),
        IOLOOP_CONFIG_END,
    };
    static const struct ioloop_config_field bad_json[] = {
        IOLOOP_CONFIG_INT(struct small, n, 1, 10, "x", 0, "n"),
        IOLOOP_CONFIG_END,
    };
    static const struct ioloop_config_field twice[] = {
        IOLOOP_CONFIG_INT(struct small, n, 1, 10, NULL, 0, "n"),
        IOLOOP_CONFIG_INT(struct small, n, 1, 10, NULL, 0, "n"),
        IOLOOP_CONFIG_END,
    };
    static const struct ioloop_config_field range[] = {
        IOLOOP_CONFIG_INT(struct small, n, 10, 1, NULL, 0, "n"),
        IOLOOP_CONFIG_END,
    };
    char err[256];

    (void) state;
    assert_int_equal(ioloop__config_schema_check(bad_default,
                                                 sizeof(struct small), err,
                                                 sizeof(err)),
                     -1);
    assert_string_equal(err, "schema: key \"n\": default: expected an "
                             "integer in [1, 10], got 11");
    assert_int_equal(ioloop__config_schema_check(bad_json,
                                                 sizeof(struct small), err,
                                                 sizeof(err)),
                     -1);
    assert_string_equal(err, "schema: key \"n\": default: not valid JSON "
                             "text");
    assert_int_equal(ioloop__config_schema_check(twice, sizeof(struct small),
                                                 err, sizeof(err)),
                     -1);
    assert_string_equal(err, "schema: key \"n\": declared twice");
    assert_int_equal(ioloop__config_schema_check(range, sizeof(struct small),
                                                 err, sizeof(err)),
                     -1);
    assert_string_equal(err, "schema: key \"n\": min above max");
    /* A config_size that does not hold the member. */
    assert_int_equal(ioloop__config_schema_check(range, 4, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "schema: key \"n\": member outside config_size");
}

static void
test_units(void **state)
{
    int64_t ns;
    uint64_t b;
    char buf[32];

    (void) state;
    assert_int_equal(ioloop__duration_parse("1m", &ns), 0);
    assert_int_equal(ns, 60 * IOLOOP_NS_PER_S);
    assert_int_equal(ioloop__duration_parse("0.1s", &ns), 0);
    assert_int_equal(ns, 100 * IOLOOP_NS_PER_MS);
    assert_int_equal(ioloop__duration_parse("1.5d", &ns), 0);
    assert_int_equal(ns, 36 * 3600 * IOLOOP_NS_PER_S);
    assert_int_equal(ioloop__duration_parse("0.0000001ms", &ns), 0);
    assert_int_equal(ns, 0);
    assert_int_equal(ioloop__duration_parse("2h", &ns), 0);
    assert_int_equal(ns, 7200 * IOLOOP_NS_PER_S);
    assert_int_equal(ioloop__duration_parse("10", &ns), -EINVAL);
    assert_int_equal(ioloop__duration_parse("s", &ns), -EINVAL);
    assert_int_equal(ioloop__duration_parse("1.s", &ns), -EINVAL);
    assert_int_equal(ioloop__duration_parse(" 1s", &ns), -EINVAL);
    assert_int_equal(ioloop__duration_parse("1 s", &ns), -EINVAL);
    assert_int_equal(ioloop__duration_parse("107000d", &ns), -ERANGE);
    assert_int_equal(ioloop__duration_parse("106751d", &ns), 0);
    assert_int_equal(ioloop__duration_parse("99999999999999999999s", &ns),
                     -ERANGE);
    assert_int_equal(ioloop__size_parse("512", &b), 0);
    assert_int_equal(b, 512);
    assert_int_equal(ioloop__size_parse("3GiB", &b), 0);
    assert_int_equal(b, UINT64_C(3) << 30);
    assert_int_equal(ioloop__size_parse("1KB", &b), -EINVAL);
    assert_int_equal(ioloop__size_parse("8388608TiB", &b), -ERANGE);

    ioloop__duration_format(buf, sizeof(buf), 90 * IOLOOP_NS_PER_S);
    assert_string_equal(buf, "90s");
    ioloop__duration_format(buf, sizeof(buf), 86400 * IOLOOP_NS_PER_S);
    assert_string_equal(buf, "1d");
    ioloop__duration_format(buf, sizeof(buf), 250 * IOLOOP_NS_PER_MS);
    assert_string_equal(buf, "250ms");
    ioloop__duration_format(buf, sizeof(buf), 0);
    assert_string_equal(buf, "0s");
    ioloop__size_format(buf, sizeof(buf), 1536);
    assert_string_equal(buf, "1536");
    ioloop__size_format(buf, sizeof(buf), 1 << 20);
    assert_string_equal(buf, "1MiB");
    ioloop__size_format(buf, sizeof(buf), 0);
    assert_string_equal(buf, "0");
}

static void
test_field_range(void **state)
{
    char buf[64];

    (void) state;
    ioloop__config_field_range(&schema[2], buf, sizeof(buf));
    assert_string_equal(buf, "1..100");
    ioloop__config_field_range(&schema[3], buf, sizeof(buf));
    assert_string_equal(buf, "fast|safe");
    ioloop__config_field_range(&schema[4], buf, sizeof(buf));
    assert_string_equal(buf, "0s..1d");
    ioloop__config_field_range(&schema[5], buf, sizeof(buf));
    assert_string_equal(buf, "64..1GiB");
    ioloop__config_field_range(&schema[0], buf, sizeof(buf));
    assert_string_equal(buf, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_is_valid),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_no_config),
        cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_field_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
