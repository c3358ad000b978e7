/*
 * host/runtime/http_access_log.c: a server's access log
 * (http_access_log.h). Lines are formatted straight into a 64 KiB buffer,
 * which is written when the next line might not fit and on flush.
 *
 * A client controls the target, the referer and the user agent, so every
 * string is escaped and one request is always one line:
 * - common (nginx's combined format): '"', '\\', control bytes, spaces in
 *   the unquoted remote address and every byte >= 0x7f become \xHH, as
 *   nginx writes them;
 * - JSON: as the host's own JSON log lines (log.h): '"' and '\\' escaped,
 *   control bytes and 0x7f as \u00HH, valid UTF-8 as is, and each byte of
 *   invalid UTF-8 as \ufffd; numbers stop at INT64_MAX; so that strict
 *   parsers (jansson) accept every line.
 * A string is cut after ACCESS_LOG_FIELD_MAX bytes of output (it then ends
 * with "..."), which bounds a line: each is written whole, in one write(2)
 * with the lines before it, so two workers appending to one file (O_APPEND)
 * never interleave inside a line. On a pipe or terminal ("-"), the buffer
 * goes out in writes of at most PIPE_BUF bytes cut at line ends, which a
 * pipe keeps whole.
 */
#include "http_access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define ACCESS_LOG_BUF       (64 * 1024)
#define ACCESS_LOG_FIELD_MAX 4096
/* Six strings at their longest (with quotes and "..."), the numbers, the
 * time and the JSON keys. */
#define ACCESS_LOG_LINE_MAX  (6 * (ACCESS_LOG_FIELD_MAX + 8) + 512)

struct ioloop_http_access_log {
    char *path;              /* as given; "-": stderr */
    int fd;
    size_t chunk;            /* the largest write: PIPE_BUF but to a file */
    enum ioloop_http_log_format format;
    bool failing;            /* the last write failed, and said so */
    bool have_time;          /* the times below are of the second when */
    time_t when;
    char common_time[80];    /* "05/Dec/2026:19:00:00 +0000" */
    char json_time[80];      /* "2026-12-05T19:00:00Z" */
    size_t len;
    char buf[ACCESS_LOG_BUF];
};

static int access_log_open_fd(const char *path, size_t *chunk, char *err,
                              size_t errlen);
static void access_log_common(struct ioloop_http_access_log *log,
                              const struct ioloop_http_access *rec);
static void access_log_json(struct ioloop_http_access_log *log,
                            const struct ioloop_http_access *rec);
static void access_log_times(struct ioloop_http_access_log *log, time_t when);
static void put(struct ioloop_http_access_log *log, const char *s, size_t n);
static void putf(struct ioloop_http_access_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put_common(struct ioloop_http_access_log *log, const char *s,
                       bool quoted);
static bool common_plain(unsigned char c, bool quoted);
static void put_json(struct ioloop_http_access_log *log, const char *key,
                     const char *s);
static ssize_t access_log_write(int fd, const char *p, size_t n);

struct ioloop_http_access_log *
ioloop__http_access_log_open(const char *path,
                             enum ioloop_http_log_format format, char *err,
                             size_t errlen)
{
    struct ioloop_http_access_log *log;
    size_t chunk;
    int fd;

    fd = access_log_open_fd(path, &chunk, err, errlen);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    log = malloc(sizeof(*log));
    if (log == NULL || (log->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(log);
        if (fd != STDERR_FILENO) {
            close(fd);
        }
        errno = ENOMEM;
        return NULL;
    }
    log->fd = fd;
    log->chunk = chunk;
    log->format = format;
    log->failing = false;
    log->have_time = false;
    log->len = 0;
    return log;
}

void
ioloop__http_access_log_write(struct ioloop_http_access_log *log,
                              const struct ioloop_http_access *rec)
{
    if (sizeof(log->buf) - log->len < ACCESS_LOG_LINE_MAX) {
        ioloop__http_access_log_flush(log);
    }
    access_log_times(log, rec->when);
    if (log->format == IOLOOP_HTTP_LOG_JSON) {
        access_log_json(log, rec);
    } else {
        access_log_common(log, rec);
    }
}

/*
 * Writes the buffer out, in writes of at most log->chunk bytes that end
 * at a line's end (a line longer than that goes alone). A failed write
 * drops what is buffered, with one warning until a write succeeds again:
 * the loop never waits for a full disk or a stuck pipe.
 */
void
ioloop__http_access_log_flush(struct ioloop_http_access_log *log)
{
    size_t off = 0;

    while (off < log->len) {
        size_t n = log->len - off;
        ssize_t w;

        if (n > log->chunk) {
            const char *end = memrchr(log->buf + off, '\n', log->chunk);

            if (end == NULL) {
                end = memchr(log->buf + off + log->chunk, '\n',
                             n - log->chunk);
            }
            n = end != NULL ? (size_t) (end - (log->buf + off)) + 1 : n;
        }
        w = access_log_write(log->fd, log->buf + off, n);
        if (w < 0) {
            if (!log->failing) {
                IOLOOP_LOG(IOLOOP_LOG_WARN, "http", "access log %s: write: "
                           "%s (%zu bytes dropped; the next failures are "
                           "not logged)", log->path, strerror((int) -w),
                           log->len - off);
            }
            log->failing = true;
            break;
        }
        log->failing = false;
        off += n;
    }
    log->len = 0;
}

int
ioloop__http_access_log_reopen(struct ioloop_http_access_log *log, char *err,
                               size_t errlen)
{
    size_t chunk;
    int fd;

    ioloop__http_access_log_flush(log);
    if (log->fd == STDERR_FILENO) {
        return 0;
    }
    fd = access_log_open_fd(log->path, &chunk, err, errlen);
    if (fd < 0) {
        return fd;
    }
    close(log->fd);
    log->fd = fd;
    log->chunk = chunk;
    log->failing = false;
    return 0;
}

void
ioloop__http_access_log_close(struct ioloop_http_access_log *log)
{
    if (log == NULL) {
        return;
    }
    ioloop__http_access_log_flush(log);
    if (log->fd != STDERR_FILENO) {
        close(log->fd);
    }
    free(log->path);
    free(log);
}

/* Opens path for appending ("-": stderr), and says how large one write
 * may be. Returns the fd, or -errno with err "PATH: reason". */
static int
access_log_open_fd(const char *path, size_t *chunk, char *err,
                   size_t errlen)
{
    struct stat st;
    int fd, e;

    if (strcmp(path, "-") == 0) {
        fd = STDERR_FILENO;
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            e = errno;
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            return -e;
        }
    }
    *chunk = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? SIZE_MAX
                                                         : PIPE_BUF;
    return fd;
}

/* 127.0.0.1 - - [05/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 200 5 "-"
 * "curl/8.0" */
static void
access_log_common(struct ioloop_http_access_log *log,
                  const struct ioloop_http_access *rec)
{
    put_common(log, rec->remote_ip, false);
    putf(log, " - - [%s] \"", log->common_time);
    if (rec->method == NULL && rec->target == NULL) {
        put(log, "-", 1);
    } else {
        put_common(log, rec->method, true);
        put(log, " ", 1);
        put_common(log, rec->target, true);
        putf(log, " HTTP/1.%u", rec->version_minor);
    }
    putf(log, "\" %d %" PRIu64 " \"", rec->status, rec->body_bytes);
    put_common(log, rec->referer, true);
    put(log, "\" \"", 3);
    put_common(log, rec->user_agent, true);
    put(log, "\"\n", 2);
}

/* {"time":"2026-12-05T19:00:00Z","remote_ip":"127.0.0.1",...} */
static void
access_log_json(struct ioloop_http_access_log *log,
                const struct ioloop_http_access *rec)
{
    putf(log, "{\"time\":\"%s\"", log->json_time);
    put_json(log, "remote_ip", rec->remote_ip);
    put_json(log, "method", rec->method);
    put_json(log, "target", rec->target);
    /* jansson (json_int_t) and most readers stop at INT64_MAX. */
    putf(log, ",\"version\":\"1.%u\",\"status\":%d,\"bytes\":%" PRIu64
         ",\"duration_us\":%" PRIu64, rec->version_minor, rec->status,
         rec->body_bytes < INT64_MAX ? rec->body_bytes : INT64_MAX,
         rec->duration_us < INT64_MAX ? rec->duration_us : INT64_MAX);
    put_json(log, "referer", rec->referer);
    put_json(log, "user_agent", rec->user_agent);
    put_json(log, "server", rec->server);
    put(log, "}\n", 2);
}

/* Formats the times of second when, once per second (in UTC: the
 * month's name from a table, not the locale). */
static void
access_log_times(struct ioloop_http_access_log *log, time_t when)
{
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    struct tm tm;

    if (log->have_time && log->when == when) {
        return;
    }
    if (gmtime_r(&when, &tm) == NULL) {
        memset(&tm, 0, sizeof(tm)); /* a year past int: the epoch */
        tm.tm_year = 70;
        tm.tm_mday = 1;
    }
    snprintf(log->common_time, sizeof(log->common_time),
             "%02d/%s/%04ld:%02d:%02d:%02d +0000", tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900L, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    snprintf(log->json_time, sizeof(log->json_time),
             "%04ld-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900L,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    log->when = when;
    log->have_time = true;
}

/* Appends n bytes; the room for a whole line was made before it began. */
static void
put(struct ioloop_http_access_log *log, const char *s, size_t n)
{
    if (n <= sizeof(log->buf) - log->len) {
        memcpy(log->buf + log->len, s, n);
        log->len += n;
    }
}

static void
putf(struct ioloop_http_access_log *log, const char *fmt, ...)
{
    char tmp[160];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    put(log, tmp, n < (int) sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
}

/* s in the common format: NULL or "" as "-", escaped, cut. */
static void
put_common(struct ioloop_http_access_log *log, const char *s, bool quoted)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = (const unsigned char *) s;
    size_t used = 0;

    if (s == NULL || s[0] == '\0') {
        put(log, "-", 1);
        return;
    }
    while (*b != '\0') {
        char esc[4] = {'\\', 'x', hex[*b >> 4], hex[*b & 0xf]};
        size_t run = 0;

        /* A run of bytes written as they are, in one copy. */
        while (b[run] != '\0' && common_plain(b[run], quoted)
               && used + run < ACCESS_LOG_FIELD_MAX) {
            run++;
        }
        if (run > 0) {
            put(log, (const char *) b, run);
            used += run;
            b += run;
            continue;
        }
        /* An escape, or a plain byte past the field's room. */
        if (common_plain(*b, quoted) || used + 4 > ACCESS_LOG_FIELD_MAX) {
            put(log, "...", 3);
            return;
        }
        put(log, esc, 4);
        used += 4;
        b++;
    }
}

/* Whether c goes into a common format line as it is. */
static bool
common_plain(unsigned char c, bool quoted)
{
    return (c > 0x20 || (c == ' ' && quoted)) && c < 0x7f && c != '"'
           && c != '\\';
}

/* ,"key":"s" (or null), escaped as the host's JSON log lines, cut. */
static void
put_json(struct ioloop_http_access_log *log, const char *key, const char *s)
{
    size_t left, used = 0;
    const unsigned char *b;

    put(log, ",\"", 2);
    put(log, key, strlen(key));
    put(log, "\":", 2);
    if (s == NULL) {
        put(log, "null", 4);
        return;
    }
    put(log, "\"", 1);
    left = strlen(s);
    for (b = (const unsigned char *) s; left > 0;) {
        char esc[8];
        const char *out = esc;
        size_t in = 1, n = 0;

        /* A run of bytes written as they are, in one copy. */
        while (n < left && used + n < ACCESS_LOG_FIELD_MAX && b[n] >= 0x20
               && b[n] < 0x7f && b[n] != '"' && b[n] != '\\') {
            n++;
        }
        if (n > 0) {
            out = (const char *) b;
            in = n;
        } else if (*b == '"' || *b == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *b;
            n = 2;
        } else if (*b < 0x20 || *b == 0x7f) {
            n = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", *b);
        } else if (*b < 0x80) {
            out = (const char *) b; /* plain, past the field's room */
            n = 1;
        } else if ((in = ioloop__utf8_sequence(b, left)) > 0) {
            out = (const char *) b;
            n = in;
        } else {
            memcpy(esc, "\\ufffd", 6);
            in = 1;
            n = 6;
        }
        if (used + n > ACCESS_LOG_FIELD_MAX) {
            put(log, "...", 3);
            break;
        }
        put(log, out, n);
        used += n;
        b += in;
        left -= in;
    }
    put(log, "\"", 1);
}

/* write(2) of all n bytes, again after EINTR or a short write. Returns n
 * or -errno. */
static ssize_t
access_log_write(int fd, const char *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return w < 0 ? -errno : -EIO;
        }
        done += (size_t) w;
    }
    return (ssize_t) n;
}
