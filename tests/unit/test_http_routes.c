/*
 * tests/unit/test_http_routes.c: host/runtime/http_routes.c, a server's
 * route table: the longest match wins, an exact path before a prefix of
 * the same length, only the prefix lengths that exist are tried, and
 * routes come and go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http_internal.h"

static struct http_route *
route(const char *key, bool prefix)
{
    static struct http_route v[64];
    static size_t n;
    struct http_route *r = &v[n++ % 64];

    *r = (struct http_route){.key = key, .len = strlen(key),
                             .prefix = prefix};
    return r;
}

static const char *
match(const struct http_routes *t, const char *path)
{
    const struct http_route *r =
        ioloop__http_routes_match(t, path, strlen(path));

    return r == NULL ? "none" : r->prefix ? r->key : "exact";
}

static void
test_longest_match(void **state)
{
    struct http_routes t = {0};
    struct http_route *api = route("/api/", true);

    (void) state;
    assert_int_equal(ioloop__http_routes_add(&t, route("/", true)), 0);
    assert_int_equal(ioloop__http_routes_add(&t, api), 0);
    assert_int_equal(ioloop__http_routes_add(&t, route("/api/v2/", true)),
                     0);
    assert_int_equal(ioloop__http_routes_add(&t, route("/api/", false)), 0);
    assert_int_equal(ioloop__http_routes_add(&t, route("/healthz", false)),
                     0);
    assert_string_equal(match(&t, "/api/v2/x"), "/api/v2/");
    assert_string_equal(match(&t, "/api/v1/x"), "/api/");
    assert_string_equal(match(&t, "/api/"), "exact"); /* same length */
    assert_string_equal(match(&t, "/api"), "/");
    assert_string_equal(match(&t, "/healthz"), "exact");
    assert_string_equal(match(&t, "/healthzz"), "/");
    assert_string_equal(match(&t, ""), "none");
    assert_ptr_equal(ioloop__http_routes_get(&t, "/api/", 5, true), api);
    assert_null(ioloop__http_routes_get(&t, "/api/v3/", 8, true));
    assert_int_equal(t.nprefix_lens, 3); /* 8, 5, 1 */
    assert_int_equal(t.prefix_lens[0], 8);
    assert_int_equal(t.prefix_lens[2], 1);
    /* Gone: its length too, unless another prefix has it. */
    ioloop__http_routes_del(&t, api);
    assert_string_equal(match(&t, "/api/v1/x"), "/");
    assert_int_equal(t.nprefix_lens, 2);
    ioloop__http_routes_free(&t);
}

/* Many routes: the table grows and every one is still found. */
static void
test_growth(void **state)
{
    static char keys[200][16];
    static struct http_route v[200];
    struct http_routes t = {0};

    (void) state;
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof(keys[i]), "/r%d", i);
        v[i] = (struct http_route){.key = keys[i], .len = strlen(keys[i])};
        assert_int_equal(ioloop__http_routes_add(&t, &v[i]), 0);
    }
    for (int i = 0; i < 200; i++) {
        assert_ptr_equal(ioloop__http_routes_match(&t, keys[i],
                                                   strlen(keys[i])),
                         &v[i]);
    }
    assert_null(ioloop__http_routes_match(&t, "/r200", 5));
    assert_true(t.nbuckets >= 400);
    ioloop__http_routes_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longest_match),
        cmocka_unit_test(test_growth),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
