/* host/runtime/json_path.c: JSON paths written, quoted and located. */
#include "json_path.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Deepest nesting the locator walks (jansson's own limit is 2048). */
#define LOCATE_DEPTH_MAX 2048
/* Longest key the locator compares, decoded. */
#define KEY_MAX 1024

/* A position in the text being walked. */
struct scan {
    const char *p;
    const char *end;
    int line;
    int column;
};

/* One step of a path: a key of an object, or an index of an array. */
struct step {
    const char *key; /* NULL for an index */
    size_t key_len;
    bool quoted;     /* key is written with JSON escapes */
    size_t index;
};

static int path_step(const char **path, struct step *s);
static bool key_matches(struct scan *sc, const struct step *s);
static int decode(const char *p, const char *end, bool escaped, char *out);
static int skip_value(struct scan *sc, int depth);
static int skip_string(struct scan *sc);
static void skip_ws(struct scan *sc);
static bool is_delimiter(char c);
static void advance(struct scan *sc);
static int unescape(const char **p, const char *end, uint32_t *cp);
static size_t utf8_put(uint32_t cp, char *out);

void
ioloop__json_quote(char *buf, size_t len, const char *s)
{
    char esc[8];
    size_t elen;
    size_t o = 0;
    unsigned char c;

    buf[o++] = '"';
    for (; *s != '\0'; s++) {
        c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            esc[2] = '\0';
        } else if (c == '\n') {
            strcpy(esc, "\\n");
        } else if (c == '\t') {
            strcpy(esc, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        } else {
            esc[0] = (char) c;
            esc[1] = '\0';
        }
        elen = strlen(esc);
        /* Keep room for ..." and the NUL whatever comes next. */
        if (o + elen + 5 > len) {
            /* Do not cut a UTF-8 sequence: drop its partial bytes. */
            while (o > 1 && ((unsigned char) buf[o - 1] & 0xc0) == 0x80) {
                o--;
            }
            if (o > 1 && (unsigned char) buf[o - 1] >= 0xc0) {
                o--;
            }
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc, elen);
        o += elen;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

void
ioloop__json_key_path(char *buf, size_t len, const char *base,
                      const char *key)
{
    char q[256];
    const char *c;

    for (c = key; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-')) {
            break;
        }
    }
    if (*key != '\0' && *c == '\0') {
        snprintf(buf, len, "%s%s%s", base, base[0] != '\0' ? "." : "", key);
    } else {
        ioloop__json_quote(q, sizeof(q), key);
        snprintf(buf, len, "%s[%s]", base, q);
    }
}

size_t
ioloop__json_path_span(const char *s)
{
    const char *p = s;

    for (;;) {
        const char *q = p;

        if (q[0] == '[' && q[1] == '"') {
            for (q += 2; *q != '\0' && *q != '"'; q++) {
                if (*q == '\\' && q[1] != '\0') {
                    q++;
                }
            }
            if (q[0] != '"' || q[1] != ']') {
                break;
            }
            p = q + 2;
            continue;
        }
        if (q[0] == '[') {
            for (q++; *q >= '0' && *q <= '9'; q++) {
            }
            if (q == p + 1 || *q != ']') {
                break;
            }
            p = q + 1;
            continue;
        }
        if (p != s && *q++ != '.') {
            break;
        }
        while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')
               || (*q >= '0' && *q <= '9') || *q == '_' || *q == '-') {
            q++;
        }
        if (q == p || q[-1] == '.') {
            break;
        }
        p = q;
    }
    return (size_t) (p - s);
}

int
ioloop__json_locate(const char *text, size_t len, const char *path,
                    int *line, int *column)
{
    struct scan sc = {text, text + len, 1, 1};
    struct step s;
    int depth = 0;

    skip_ws(&sc);
    if (sc.p == sc.end) {
        return -1;
    }
    for (;;) {
        bool found = false;
        int rc;

        *line = sc.line;
        *column = sc.column;
        rc = path_step(&path, &s);
        if (rc <= 0) {
            return rc == 0 ? 0 : 1;
        }
        if (++depth > LOCATE_DEPTH_MAX) {
            return 1;
        }
        if (*sc.p == '{' && s.key != NULL) {
            advance(&sc);
            skip_ws(&sc);
            while (sc.p < sc.end && *sc.p == '"') {
                found = key_matches(&sc, &s);
                skip_ws(&sc);
                if (sc.p == sc.end || *sc.p != ':') {
                    return 1;
                }
                advance(&sc);
                skip_ws(&sc);
                if (found || sc.p == sc.end || skip_value(&sc, depth) < 0) {
                    break;
                }
                skip_ws(&sc);
                if (sc.p < sc.end && *sc.p == ',') {
                    advance(&sc);
                    skip_ws(&sc);
                }
            }
        } else if (*sc.p == '[' && s.key == NULL) {
            advance(&sc);
            skip_ws(&sc);
            for (size_t i = 0; sc.p < sc.end && *sc.p != ']'; i++) {
                if (i == s.index) {
                    found = true;
                    break;
                }
                if (skip_value(&sc, depth) < 0) {
                    break;
                }
                skip_ws(&sc);
                if (sc.p < sc.end && *sc.p == ',') {
                    advance(&sc);
                    skip_ws(&sc);
                }
            }
        }
        if (!found || sc.p == sc.end) {
            return 1;
        }
    }
}

/*
 * Reads the next step of *path and moves past it. Returns 1 with *s set,
 * 0 at the end of the path, -1 for a path that cannot be read (the
 * caller then stops where it is).
 */
static int
path_step(const char **path, struct step *s)
{
    const char *p = *path;

    if (*p == '\0') {
        return 0;
    }
    memset(s, 0, sizeof(*s));
    if (*p == '.') {
        p++;
    }
    if (*p == '[' && p[1] == '"') {
        s->key = p + 2;
        s->quoted = true;
        for (p += 2; *p != '\0' && *p != '"'; p++) {
            if (*p == '\\' && p[1] != '\0') {
                p++;
            }
        }
        s->key_len = (size_t) (p - s->key);
        if (p[0] != '"' || p[1] != ']') {
            return -1;
        }
        *path = p + 2;
        return 1;
    }
    if (*p == '[') {
        if (p[1] < '0' || p[1] > '9') {
            return -1;
        }
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (s->index > (SIZE_MAX - 9) / 10) {
                return -1;
            }
            s->index = s->index * 10 + (size_t) (*p - '0');
        }
        if (*p != ']') {
            return -1;
        }
        *path = p + 1;
        return 1;
    }
    s->key = p;
    while (*p != '\0' && *p != '.' && *p != '[') {
        p++;
    }
    s->key_len = (size_t) (p - s->key);
    if (s->key_len == 0) {
        return -1;
    }
    *path = p;
    return 1;
}

/*
 * Reads the JSON string at sc (a key) and says whether it decodes to the
 * key of step s. Both sides decode their escapes (\uXXXX to UTF-8) into
 * bounded buffers: a key longer than KEY_MAX never matches, and the
 * paths in messages are shorter than that.
 */
static bool
key_matches(struct scan *sc, const struct step *s)
{
    char have[KEY_MAX], want[KEY_MAX];
    const char *start = sc->p + 1;
    int hlen, wlen;

    if (skip_string(sc) < 0) {
        return false;
    }
    hlen = decode(start, sc->p - 1, true, have);
    wlen = decode(s->key, s->key + s->key_len, s->quoted, want);
    return hlen >= 0 && hlen == wlen && memcmp(have, want, (size_t) hlen) == 0;
}

/*
 * Copies [p, end) into out (KEY_MAX bytes), decoding the JSON escapes
 * when escaped. Returns the length, or -1 when too long or malformed.
 */
static int
decode(const char *p, const char *end, bool escaped, char *out)
{
    size_t n = 0;
    uint32_t cp;

    while (p < end) {
        if (n + 4 > KEY_MAX) {
            return -1;
        }
        if (escaped && *p == '\\') {
            if (unescape(&p, end, &cp) < 0) {
                return -1;
            }
            n += utf8_put(cp, out + n);
        } else {
            out[n++] = *p++;
        }
    }
    return (int) n;
}

/*
 * Decodes the escape at *p (a backslash) into *cp and moves past it;
 * a surrogate pair becomes one code point. Returns 0 or -1.
 */
static int
unescape(const char **p, const char *end, uint32_t *cp)
{
    const char *s = *p + 1;
    uint32_t v = 0;

    if (s >= end) {
        return -1;
    }
    switch (*s) {
    case 'b': *cp = '\b'; break;
    case 'f': *cp = '\f'; break;
    case 'n': *cp = '\n'; break;
    case 'r': *cp = '\r'; break;
    case 't': *cp = '\t'; break;
    case 'u':
        if (end - s < 5) {
            return -1;
        }
        for (int i = 1; i <= 4; i++) {
            char c = s[i];

            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= (uint32_t) (c - '0');
            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                v |= (uint32_t) ((c | 0x20) - 'a' + 10);
            } else {
                return -1;
            }
        }
        s += 4;
        if (v >= 0xd800 && v < 0xdc00 && end - s >= 7 && s[1] == '\\'
            && s[2] == 'u') {
            const char *lo = s + 1;
            uint32_t low;

            if (unescape(&lo, end, &low) == 0 && low >= 0xdc00
                && low < 0xe000) {
                v = 0x10000 + ((v - 0xd800) << 10) + (low - 0xdc00);
                s = lo - 1;
            }
        }
        *cp = v;
        break;
    default:
        *cp = (unsigned char) *s; /* '"', '\\', '/' */
        break;
    }
    *p = s + 1;
    return 0;
}

/* Writes cp as UTF-8 into out (4 bytes); returns the length. */
static size_t
utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xc0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xe0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char) (0xf0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

/* Moves past the value at sc. Returns 0, or -1 on text it cannot read. */
static int
skip_value(struct scan *sc, int depth)
{
    char open;

    if (sc->p == sc->end) {
        return -1;
    }
    if (*sc->p == '"') {
        return skip_string(sc);
    }
    if (*sc->p != '{' && *sc->p != '[') {
        /* A number or a literal: up to the next delimiter. A stray byte
         * (a NUL, a '}' in an array) is passed over: every call moves. */
        const char *start = sc->p;

        while (sc->p < sc->end && !is_delimiter(*sc->p)) {
            advance(sc);
        }
        if (sc->p == start) {
            advance(sc);
        }
        return 0;
    }
    if (depth > LOCATE_DEPTH_MAX) {
        return -1;
    }
    open = *sc->p;
    advance(sc);
    for (;;) {
        skip_ws(sc);
        if (sc->p == sc->end) {
            return -1;
        }
        if (*sc->p == (open == '{' ? '}' : ']')) {
            advance(sc);
            return 0;
        }
        if (*sc->p == ',' || *sc->p == ':') {
            advance(sc);
            continue;
        }
        if (skip_value(sc, depth + 1) < 0) {
            return -1;
        }
    }
}

/* Moves past the string at sc (at its opening quote). 0 or -1. */
static int
skip_string(struct scan *sc)
{
    advance(sc);
    while (sc->p < sc->end && *sc->p != '"') {
        if (*sc->p == '\\') {
            advance(sc);
            if (sc->p == sc->end) {
                return -1;
            }
        }
        advance(sc);
    }
    if (sc->p == sc->end) {
        return -1;
    }
    advance(sc);
    return 0;
}

static void
skip_ws(struct scan *sc)
{
    while (sc->p < sc->end
           && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n'
               || *sc->p == '\r')) {
        advance(sc);
    }
}

/* What ends a number or a literal. */
static bool
is_delimiter(char c)
{
    return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t'
           || c == '\r' || c == '\n';
}

/* One byte on; a UTF-8 continuation byte adds no column. */
static void
advance(struct scan *sc)
{
    if (*sc->p == '\n') {
        sc->line++;
        sc->column = 1;
    } else if (sc->p + 1 == sc->end
               || ((unsigned char) sc->p[1] & 0xc0) != 0x80) {
        sc->column++;
    }
    sc->p++;
}
