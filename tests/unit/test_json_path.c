/*
 * tests/unit/test_json_path.c: host/runtime/json_path.c: paths written
 * and quoted, and found again in a document's text with line:column.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "json_path.h"

/* The value of path in text must start at line:column (found: rc). */
static void
at(const char *text, const char *path, int rc, int line, int column)
{
    int l = 0, c = 0;

    assert_int_equal(ioloop__json_locate(text, strlen(text), path, &l, &c),
                     rc);
    assert_int_equal(l, line);
    assert_int_equal(c, column);
}

static const char doc[] =
    "{\n"
    "  \"backend\": \"epoll\",\n"
    "  \"plugins\": [\n"
    "    {\"name\": \"a\", \"path\": \"a.so\"},\n"
    "    {\"name\": \"b\", \"path\": \"b.so\",\n"
    "     \"config\": {\"listen\": \"x\", \"k ey\": [1, {\"\\u00e9\": 2}],\n"
    "                \"h\\\"q\": {\"n\": true}, \"\xc3\xa9t\xc3\xa9\": 5}}\n"
    "  ]\n"
    "}\n";

static void
test_locate(void **state)
{
    (void) state;
    at(doc, "", 0, 1, 1);
    at(doc, "backend", 0, 2, 14);
    at(doc, "plugins", 0, 3, 14);
    at(doc, "plugins[0]", 0, 4, 5);
    at(doc, "plugins[0].path", 0, 4, 27);
    at(doc, "plugins[1].config", 0, 6, 16);
    at(doc, "plugins[1].config.listen", 0, 6, 27);
    at(doc, "plugins[1].config[\"k ey\"][1]", 0, 6, 44);
    at(doc, "plugins[1].config[\"k ey\"][1][\"\xc3\xa9\"]", 0, 6, 55);
    at(doc, "plugins[1].config[\"h\\\"q\"].n", 0, 7, 31);
    /* Columns count characters: "été" is 3 wide, as jansson counts. */
    at(doc, "plugins[1].config[\"\xc3\xa9t\xc3\xa9\"]", 0, 7, 45);
}

static void
test_locate_missing(void **state)
{
    (void) state;
    /* A missing key: the object it belongs in. */
    at(doc, "plugins[1].config.port", 1, 6, 16);
    at(doc, "plugins[0].config", 1, 4, 5);
    at(doc, "plugins[5]", 1, 3, 14);
    at(doc, "backend.x", 1, 2, 14);
    at(doc, "plugins[x]", 1, 3, 14);
    at(doc, "plugins[\"unterminated", 1, 3, 14);
    at("  ", "", -1, 0, 0);
    at("", "a", -1, 0, 0);
    /* Cut text: as far as it goes. */
    at("{\"a\": [1, 2", "a[5]", 1, 1, 7);
    at("{\"a\": \"x", "b", 1, 1, 1);
}

/* Text jansson would refuse (a NUL, a stray bracket) is walked past, not
 * looped on: each step of the walk moves. */
static void
test_locate_junk(void **state)
{
    static const struct {
        const char *text;
        size_t len;
        const char *path;
        int rc, line, column;
    } cases[] = {
        {"[\0, 1]", 6, "[1]", 0, 1, 5},
        {"{\"a\": [\0], \"b\": 1}", 18, "b", 0, 1, 17},
        {"[}, 2]", 6, "[1]", 0, 1, 5},
        {"{\"a\": {]}, \"b\": 2}", 18, "b", 0, 1, 17},
        {"[}}}}", 5, "[9]", 1, 1, 1},
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int l = 0, c = 0;

        assert_int_equal(ioloop__json_locate(cases[i].text, cases[i].len,
                                             cases[i].path, &l, &c),
                         cases[i].rc);
        assert_int_equal(l, cases[i].line);
        assert_int_equal(c, cases[i].column);
    }
}

static void
test_key_path(void **state)
{
    char buf[64];

    (void) state;
    ioloop__json_key_path(buf, sizeof(buf), "", "a");
    assert_string_equal(buf, "a");
    ioloop__json_key_path(buf, sizeof(buf), "p[1]", "x_y-z");
    assert_string_equal(buf, "p[1].x_y-z");
    ioloop__json_key_path(buf, sizeof(buf), "p", "a.b");
    assert_string_equal(buf, "p[\"a.b\"]");
    ioloop__json_key_path(buf, sizeof(buf), "p", "");
    assert_string_equal(buf, "p[\"\"]");
    ioloop__json_key_path(buf, sizeof(buf), "p", "a\n\"");
    assert_string_equal(buf, "p[\"a\\n\\\"\"]");
    ioloop__json_quote(buf, 12, "abcdefghijklmnop");
    assert_string_equal(buf, "\"abcdef...\"");
    ioloop__json_quote(buf, 12, "abcde\xc3\xa9xyzzz");
    assert_string_equal(buf, "\"abcde...\"");
}

/* The path a plugin's message starts with, as far as it goes. */
static void
test_path_span(void **state)
{
    static const struct {
        const char *s;
        size_t span;
    } cases[] = {
        {"config.routes[\"/x?y\"]: can never match", 21},
        {"config.path: expected", 11},
        {"config[\"a\\\"b\"].c[2]: x", 19},
        {"config: expected an object", 6},
        {"[\"k\"]: top", 5},
        {"listen \"x\": expected", 6},
        {"a..b", 1},
        {"a[x]", 1},
        {"a[\"open", 1},
        {".a", 0},
        {": a", 0},
        {"", 0},
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ioloop__json_path_span(cases[i].s), cases[i].span);
    }
}

/* Every path the engine writes is found again in the text. */
static void
test_round_trip(void **state)
{
    const char text[] = "{\"a.b\": {\"\": [0, {\"\\n\": 1}]}}";
    char p1[64], p2[64], p3[80];

    (void) state;
    ioloop__json_key_path(p1, sizeof(p1), "", "a.b");
    ioloop__json_key_path(p2, sizeof(p2), p1, "");
    snprintf(p3, sizeof(p3), "%s[1]", p2);
    ioloop__json_key_path(p1, sizeof(p1), p3, "\n");
    at(text, p1, 0, 1, 25);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locate),
        cmocka_unit_test(test_locate_missing),
        cmocka_unit_test(test_locate_junk),
        cmocka_unit_test(test_key_path),
        cmocka_unit_test(test_path_span),
        cmocka_unit_test(test_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
