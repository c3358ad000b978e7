/* host/core/log.c: timestamped, levelled log lines on stderr, plain or JSON. */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* How a line ends; the buffer keeps room for the longest ending. */
#define PLAIN_END "\n"
#define PLAIN_CUT "...\n"
#define JSON_END "}\n"
#define JSON_CUT ",\"truncated\":true}\n"
/* Lines kept by ioloop__log_hold until the format is known. */
#define HELD_MAX 16

/* A line being built. Pieces go in only while they fit before end. */
struct line {
    char buf[PIPE_BUF]; /* one write of <= PIPE_BUF bytes is atomic */
    size_t len;
    size_t end;         /* pieces stop here, leaving room for the ending */
    bool full;          /* a piece did not fit: the line is cut */
};

/* A line logged while held: written once the format is known. */
struct held {
    int level;
    char ts[40];
    char *tag;
    char *msg;
};

/* A per-plugin level: lines tagged tag pass up to level. */
struct override {
    const char *tag;
    int level;
};

int ioloop__log_threshold = IOLOOP_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static int base_level = IOLOOP_LOG_INFO; /* log.level */
static int min_level = IOLOOP_LOG_INFO;  /* the least verbose of all */
static struct override *overrides;       /* one block: entries, then names */
static size_t noverrides;
static int json_format;
static int worker_tag = -1; /* ioloop__log_set_worker */
static bool holding;
static struct held held[HELD_MAX];
static size_t nheld;
static size_t held_dropped;
static ioloop_log_sink_fn sink; /* NULL: stderr */
static void *sink_arg;

static bool tag_enabled(int level, const char *tag);
static void hold_line(int level, const char *tag, const char *ts,
                      const char *msg);
static void line_begin(struct line *l, int level, const char *tag,
                       const char *ts, const char *msg);
static void line_end(struct line *l, bool cut, bool in_string);
static void format_time(char *buf, size_t len);
static void put(struct line *l, const void *s, size_t n, bool partial);
static void put_plain_text(struct line *l, const char *s);
static void put_json_text(struct line *l, const char *s);
static size_t json_escape(unsigned char c, char *esc);
static size_t utf8_sequence(const unsigned char *s, size_t n);

int
ioloop__log_level_parse(const char *name)
{
    for (int i = 0; i < (int) (sizeof(level_names) / sizeof(level_names[0]));
         i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *
ioloop__log_level_name(int level)
{
    if (level < IOLOOP_LOG_ERROR || level > IOLOOP_LOG_DEBUG) {
        return "?";
    }
    return level_names[level];
}

int
ioloop__log_configure(int level, int json,
                      const struct ioloop_log_override *plugins, size_t n)
{
    struct override *v = NULL;
    size_t count = 0, bytes = 0, k = 0;
    int max = level, min = level;
    char *names;

    if (level < IOLOOP_LOG_ERROR || level > IOLOOP_LOG_DEBUG) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (plugins[i].level > IOLOOP_LOG_DEBUG) {
            return -EINVAL;
        }
        if (plugins[i].level >= 0) {
            count++;
            bytes += strlen(plugins[i].name) + 1;
        }
    }
    if (count > 0) {
        v = malloc(count * sizeof(*v) + bytes);
        if (v == NULL) {
            return -ENOMEM;
        }
        names = (char *) (v + count);
        for (size_t i = 0; i < n; i++) {
            int lv = plugins[i].level;

            if (lv < 0) {
                continue;
            }
            v[k].tag = strcpy(names, plugins[i].name);
            v[k++].level = lv;
            names += strlen(names) + 1;
            max = lv > max ? lv : max;
            min = lv < min ? lv : min;
        }
    }
    free(overrides);
    overrides = v;
    noverrides = count;
    base_level = level;
    min_level = min;
    ioloop__log_threshold = max;
    ioloop__log_set_format(json);
    ioloop__log_release();
    return 0;
}

void
ioloop__log_hold(void)
{
    holding = true;
}

void
ioloop__log_release(void)
{
    struct line l;

    holding = false;
    for (size_t i = 0; i < nheld; i++) {
        line_begin(&l, held[i].level, held[i].tag, held[i].ts, held[i].msg);
        line_end(&l, false, true);
        free(held[i].tag);
        free(held[i].msg);
    }
    nheld = 0;
    if (held_dropped > 0) {
        ioloop__log(IOLOOP_LOG_WARN, "host",
                    "%zu early log lines were dropped", held_dropped);
        held_dropped = 0;
    }
}

void
ioloop__log_cli(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (json_format && !holding) {
        ioloop__vlog_write(IOLOOP_LOG_ERROR, "host", fmt, ap);
    } else {
        int saved = errno;

        fputs("ioloop-host: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        errno = saved;
    }
    va_end(ap);
}

void
ioloop__log_frames(int level, const char *tag, const char *msg,
                   const char *const *frames, size_t n)
{
    struct line l, frame;
    bool in_msg = true, cut = false;
    char ts[40];
    int saved = errno;

    if (!tag_enabled(level, tag)) {
        return;
    }
    format_time(ts, sizeof(ts));
    line_begin(&l, level, tag, ts, msg);
    /* Room for "]" once the array is open. */
    l.end -= 1;
    if (json_format && !l.full) {
        put(&l, "\",\"frames\":[", 12, false);
        in_msg = l.full;
    }
    for (size_t i = 0; i < n && !l.full; i++) {
        /* Each frame whole or not at all: escaped apart, then copied. */
        frame.len = 0;
        frame.full = false;
        frame.end = sizeof(frame.buf);
        if (json_format) {
            put(&frame, i == 0 ? "\"" : ",\"", i == 0 ? 1 : 2, false);
            put_json_text(&frame, frames[i]);
            put(&frame, "\"", 1, false);
        } else {
            put(&frame, "\n    ", 5, false);
            put_plain_text(&frame, frames[i]);
        }
        put(&l, frame.buf, frame.len, false);
    }
    cut = l.full;
    if (json_format && !in_msg) {
        l.end += 1;
        l.full = false;
        put(&l, "]", 1, false);
    }
    line_end(&l, cut, in_msg);
    errno = saved;
}

void
ioloop__log_set_sink(ioloop_log_sink_fn fn, void *arg)
{
    sink = fn;
    sink_arg = arg;
}

void
ioloop__log_set_format(int json)
{
    json_format = json != 0;
}

void
ioloop__log_set_worker(int index)
{
    worker_tag = index;
}

int
ioloop__log_level(void)
{
    return noverrides > 0 ? base_level : ioloop__log_threshold;
}

void
ioloop__vlog(int level, const char *tag, const char *fmt, va_list ap)
{
    if (tag_enabled(level, tag)) {
        ioloop__vlog_write(level, tag, fmt, ap);
    }
}

void
ioloop__log(int level, const char *tag, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ioloop__vlog(level, tag, fmt, ap);
    va_end(ap);
}

void
ioloop__vlog_write(int level, const char *tag, const char *fmt, va_list ap)
{
    char msg[PIPE_BUF], ts[40];
    struct line l;
    int saved = errno, rc;

    rc = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "(unprintable message: %s)", fmt);
    }
    format_time(ts, sizeof(ts));
    if (holding) {
        hold_line(level, tag, ts, msg);
    } else {
        line_begin(&l, level, tag, ts, msg);
        line_end(&l, rc >= (int) sizeof(msg), true);
    }
    errno = saved;
}

/* Keeps a copy of one line for ioloop__log_release; counts the lines
 * past HELD_MAX (or without memory), which are dropped. */
static void
hold_line(int level, const char *tag, const char *ts, const char *msg)
{
    struct held *h = &held[nheld];

    if (nheld == HELD_MAX) {
        held_dropped++;
        return;
    }
    h->level = level;
    snprintf(h->ts, sizeof(h->ts), "%s", ts);
    h->tag = strdup(tag != NULL ? tag : "host");
    h->msg = strdup(msg);
    if (h->tag == NULL || h->msg == NULL) {
        free(h->tag);
        free(h->msg);
        held_dropped++;
        return;
    }
    nheld++;
}

/*
 * Starts a line in the current format: everything up to the message,
 * which is left open (a JSON string without its closing quote) so that
 * ioloop__log_frames can add fields.
 */
static void
line_begin(struct line *l, int level, const char *tag, const char *ts,
           const char *msg)
{
    char head[128];

    l->len = 0;
    l->full = false;
    /* Room for the longest ending: a quote and the cut mark. */
    l->end = sizeof(l->buf) - 1 - strlen(json_format ? JSON_CUT : PLAIN_CUT);
    tag = tag != NULL ? tag : "host";
    if (json_format) {
        int n = snprintf(head, sizeof(head),
                         "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,", ts,
                         ioloop__log_level_name(level), (long) getpid());

        if (worker_tag >= 0 && n > 0 && (size_t) n < sizeof(head)) {
            snprintf(head + n, sizeof(head) - (size_t) n, "\"worker\":%d,",
                     worker_tag);
        }
        put(l, head, strlen(head), false);
        put(l, "\"tag\":\"", 7, false);
        put_json_text(l, tag);
        put(l, "\",\"msg\":\"", 9, false);
        put_json_text(l, msg);
    } else {
        if (worker_tag >= 0) {
            snprintf(head, sizeof(head), "%s w%d %s [", ts, worker_tag,
                     ioloop__log_level_name(level));
        } else {
            snprintf(head, sizeof(head), "%s %s [", ts,
                     ioloop__log_level_name(level));
        }
        put(l, head, strlen(head), false);
        put_plain_text(l, tag);
        put(l, "] ", 2, false);
        put_plain_text(l, msg);
    }
}

/*
 * Ends the line and writes it: cut says the message was already cut;
 * in_string, that a JSON line still has its message string open.
 */
static void
line_end(struct line *l, bool cut, bool in_string)
{
    const char *ending;

    cut = cut || l->full;
    l->end = sizeof(l->buf);
    l->full = false;
    if (json_format) {
        ending = cut ? JSON_CUT : JSON_END;
        if (in_string) {
            put(l, "\"", 1, false);
        }
    } else {
        ending = cut ? PLAIN_CUT : PLAIN_END;
    }
    put(l, ending, strlen(ending), false);
    if (sink != NULL) {
        sink(l->buf, l->len, sink_arg);
        return;
    }
    /* One write per line; a short write to a full pipe is not retried. */
    while (write(STDERR_FILENO, l->buf, l->len) < 0 && errno == EINTR) {
    }
}

/*
 * Whether a line of level tagged tag is wanted. Past the threshold, only
 * a line more verbose than every level needs the override table (linear:
 * a manifest has a handful of instances).
 */
static bool
tag_enabled(int level, const char *tag)
{
    if (level > ioloop__log_threshold) {
        return false;
    }
    if (noverrides == 0 || level <= min_level) {
        return true;
    }
    for (size_t i = 0; i < noverrides; i++) {
        if (tag != NULL && strcmp(overrides[i].tag, tag) == 0) {
            return level <= overrides[i].level;
        }
    }
    return level <= base_level;
}

/* "2026-11-27T11:23:45.123Z": UTC, milliseconds. */
static void
format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/*
 * Appends n bytes of s if they fit before l->end; with partial, as many
 * as fit. Whatever does not fit marks the line full, and nothing more
 * goes in (so an escape sequence is never cut in two).
 */
static void
put(struct line *l, const void *s, size_t n, bool partial)
{
    size_t room = l->end - l->len;

    if (l->full) {
        return;
    }
    if (n > room) {
        l->full = true;
        n = partial ? room : 0;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Appends s for a plain line: control bytes escaped, the rest as is. */
static void
put_plain_text(struct line *l, const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    char esc[8];
    size_t n;

    while (*p != '\0' && !l->full) {
        for (n = 0; p[n] != '\0' && (p[n] >= 0x20 || p[n] == '\t')
                    && p[n] != 0x7f;
             n++) {
        }
        if (n > 0) {
            put(l, p, n, true);
            p += n;
            continue;
        }
        if (*p == '\n' || *p == '\r') {
            snprintf(esc, sizeof(esc), "\\%c", *p == '\n' ? 'n' : 'r');
        } else {
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
        }
        put(l, esc, strlen(esc), false);
        p++;
    }
}

/* Appends s as the inside of a JSON string (see log.h for the rules). */
static void
put_json_text(struct line *l, const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t left = strlen(s), n;
    char esc[8];

    while (left > 0 && !l->full) {
        for (n = 0; n < left && p[n] >= 0x20 && p[n] < 0x7f && p[n] != '"'
                    && p[n] != '\\';
             n++) {
        }
        if (n > 0) {
            put(l, p, n, true); /* plain ASCII: may be cut anywhere */
        } else if (*p < 0x80) {
            put(l, esc, json_escape(*p, esc), false);
            n = 1;
        } else if ((n = utf8_sequence(p, left)) > 0) {
            put(l, p, n, false);
        } else {
            put(l, "\\ufffd", 6, false);
            n = 1;
        }
        p += n;
        left -= n;
    }
}

void
ioloop__escape_line(char *buf, size_t len, const char *s)
{
    size_t o = 0;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char) *s;
        char esc[8];
        size_t n = 1;

        esc[0] = (char) c;
        if (c == '\n' || c == '\r' || c == '\t') {
            n = (size_t) snprintf(esc, sizeof(esc), "\\%c",
                                  c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t) snprintf(esc, sizeof(esc), "\\x%02x", c);
        }
        if (o + n >= len) {
            break;
        }
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o] = '\0';
}

size_t
ioloop__utf8_sequence(const unsigned char *s, size_t n)
{
    return utf8_sequence(s, n);
}

/* Writes the JSON escape of ASCII c ('"', '\\', a control byte or 0x7f)
 * to esc (8 bytes); returns its length. */
static size_t
json_escape(unsigned char c, char *esc)
{
    char named;

    switch (c) {
    case '"':
    case '\\':
        named = (char) c;
        break;
    case '\b':
        named = 'b';
        break;
    case '\f':
        named = 'f';
        break;
    case '\n':
        named = 'n';
        break;
    case '\r':
        named = 'r';
        break;
    case '\t':
        named = 't';
        break;
    default:
        return (size_t) snprintf(esc, 8, "\\u%04x", c);
    }
    esc[0] = '\\';
    esc[1] = named;
    return 2;
}

/*
 * The length of the well-formed UTF-8 sequence of a non-ASCII code point
 * at s (n bytes left), or 0: a continuation byte, a truncated sequence,
 * an overlong form, a surrogate or past U+10FFFF.
 */
static size_t
utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned long cp, min;
    size_t len;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}
