/*
 * tests/fuzz/json_path/fuzz_json_path.c: libFuzzer harness for the JSON
 * path locator (host/runtime/json_path.c), which gives the line:column of
 * a value in a manifest's text. Two properties:
 *   - on any bytes, a few fixed paths are located without a crash, and a
 *     place found lies inside the text;
 *   - on a document jansson accepts (duplicate keys refused, as the
 *     manifest does), every value up to depth 3 is found by the path the
 *     host writes for it (ioloop__json_key_path, "[i]"), at the first
 *     byte of that value's text.
 * A broken property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_path.h"

/* Values checked per input, and their depth. */
#define CHECK_MAX 256
#define DEPTH_MAX 3
/* Keys longer than this once escaped are left out: the path of a message
 * cuts them ("...", ioloop__json_key_path quotes into 256 bytes). */
#define KEY_ESCAPED_MAX 200

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_any(const char *text, size_t len, const char *path);
static void check_tree(const char *text, size_t len, const json_t *v,
                       const char *path, int depth, int *budget);
static size_t offset_of(const char *text, size_t len, int line, int column);
static size_t escaped_len(const char *key);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {
        "", "a", "a[0]", "a.b", "[\"x y\"]", "a[1][\"\\u00e9\"].c",
        "[0]", "[1]", "[5]", "b", "a[99999999999999999999]",
    };
    const char *text = (const char *) data;
    json_t *root;
    int budget = CHECK_MAX;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        check_any(text, size, paths[i]);
    }
    root = json_loadb(text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                      NULL);
    if (root != NULL) {
        check_tree(text, size, root, "", 0, &budget);
        json_decref(root);
    }
    return 0;
}

/* Any bytes: rc in [-1, 1], and a place inside the text. */
static void
check_any(const char *text, size_t len, const char *path)
{
    int line = 0, column = 0, rc;

    rc = ioloop__json_locate(text, len, path, &line, &column);
    if (rc < -1 || rc > 1) {
        abort();
    }
    if (rc >= 0 && offset_of(text, len, line, column) == (size_t) -1) {
        fprintf(stderr, "fuzz_json_path: %s at %d:%d is outside\n", path,
                line, column);
        abort();
    }
}

/* v (at path) and its children: found, at the first byte of their text. */
static void
check_tree(const char *text, size_t len, const json_t *v, const char *path,
           int depth, int *budget)
{
    static const char first[] = {
        [JSON_OBJECT] = '{', [JSON_ARRAY] = '[', [JSON_STRING] = '"',
        [JSON_TRUE] = 't', [JSON_FALSE] = 'f', [JSON_NULL] = 'n',
    };
    char child[1024];
    const char *key;
    json_t *item;
    size_t at, i;
    int line, column;

    if ((*budget)-- <= 0) {
        return;
    }
    if (ioloop__json_locate(text, len, path, &line, &column) != 0) {
        fprintf(stderr, "fuzz_json_path: %s not found\n", path);
        abort();
    }
    at = offset_of(text, len, line, column);
    if (at == (size_t) -1
        || (json_is_number(v)
                ? (text[at] != '-' && (text[at] < '0' || text[at] > '9'))
                : text[at] != first[json_typeof(v)])) {
        fprintf(stderr, "fuzz_json_path: %s at %d:%d is not its value\n",
                path, line, column);
        abort();
    }
    if (depth == DEPTH_MAX) {
        return;
    }
    if (json_is_object(v)) {
        /* jansson's iterator takes a non-const object; nothing changes. */
        json_object_foreach((json_t *) v, key, item) {
            if (escaped_len(key) > KEY_ESCAPED_MAX) {
                continue;
            }
            ioloop__json_key_path(child, sizeof(child), path, key);
            check_tree(text, len, item, child, depth + 1, budget);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            snprintf(child, sizeof(child), "%s[%zu]", path, i);
            check_tree(text, len, item, child, depth + 1, budget);
        }
    }
}

/*
 * The byte offset of line:column (from 1; the column counts characters:
 * a UTF-8 continuation byte adds none), or -1 when the text has no such
 * place.
 */
static size_t
offset_of(const char *text, size_t len, int line, int column)
{
    size_t o = 0;

    for (int l = 1; l < line; l++) {
        while (o < len && text[o] != '\n') {
            o++;
        }
        if (o == len) {
            return (size_t) -1;
        }
        o++;
    }
    for (int c = 1; c < column; c++) {
        if (o == len || text[o] == '\n') {
            return (size_t) -1;
        }
        o++;
        while (o < len && ((unsigned char) text[o] & 0xc0) == 0x80) {
            o++;
        }
    }
    return o < len ? o : (size_t) -1;
}

/* The length of key as ioloop__json_quote writes it, quotes left out. */
static size_t
escaped_len(const char *key)
{
    size_t n = 0;

    for (const unsigned char *c = (const unsigned char *) key; *c != '\0';
         c++) {
        n += *c == '"' || *c == '\\' || *c == '\n' || *c == '\t' ? 2
             : *c < 0x20 || *c == 0x7f                           ? 6
                                                                   : 1;
    }
    return n;
}
