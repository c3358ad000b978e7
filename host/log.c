/* host/log.c: timestamped, levelled log lines on stderr. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ioloop__log_threshold = IOLOOP_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

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

void
ioloop__vlog(int level, const char *tag, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int rc;

    if (level > ioloop__log_threshold) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    rc = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s [%s] ",
                  ts.tv_nsec / 1000000L, ioloop__log_level_name(level),
                  tag != NULL ? tag : "host");
    n += (rc > 0) ? (size_t) rc : 0;
    rc = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    n += (rc > 0) ? (size_t) rc : 0;
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2; /* truncated: keep the newline */
    }
    line[n++] = '\n';
    /* One write per line; a short write to a full pipe is not retried. */
    if (write(STDERR_FILENO, line, n) < 0) {
        return;
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
