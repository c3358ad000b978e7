/*
 * host/runtime/json_path.h: JSON paths for one-line messages
 * ("plugins[1].config.header_timeout"), written and found again: jansson
 * keeps no position for a value, so the locator walks the document's text
 * to give the line:column of the value a path names.
 */
#ifndef IOLOOP_HOST_JSON_PATH_H
#define IOLOOP_HOST_JSON_PATH_H

#include <stddef.h>

/*
 * Writes s into buf (len >= 8) between double quotes, with '"', '\' and
 * control characters escaped the JSON way, so that a value never breaks
 * a one-line message. A value too long for buf ends with ..." instead
 * (never in the middle of a UTF-8 sequence).
 */
void ioloop__json_quote(char *buf, size_t len, const char *s);

/*
 * Writes the JSON path of key inside the object at base: "base.key", just
 * "key" when base is "", or base["k ey"] when the key is not made of
 * [A-Za-z0-9_-] (so that "a.b" or "" cannot be mistaken for a path),
 * quoted as ioloop__json_quote does. Cut to len.
 */
void ioloop__json_key_path(char *buf, size_t len, const char *base,
                           const char *key);

/*
 * The length of the JSON path that s starts with ("config.routes[\"/x\"]"
 * in "config.routes[\"/x\"]: a path must ..."), as ioloop__json_key_path
 * writes paths; 0 when s does not start with one.
 */
size_t ioloop__json_path_span(const char *s);

/*
 * Finds the value that path names (as ioloop__json_key_path writes it,
 * with "[N]" for array elements; "" is the whole document) in the JSON
 * text of len bytes, and sets *line and *column (both from 1; the column
 * counts characters, as jansson's do) to its first character. When the
 * path goes further than the document (a missing key), the deepest value
 * that exists is given instead. Returns 0 when the whole path was found,
 * 1 when only a prefix was, -1 when not even the document's first value
 * could be found (empty or unreadable text).
 */
int ioloop__json_locate(const char *text, size_t len, const char *path,
                        int *line, int *column);

#endif /* IOLOOP_HOST_JSON_PATH_H */
