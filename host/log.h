/*
 * host/log.h: the host's logger. One line per message on stderr:
 *   2026-11-27T11:23:45.123Z info [hello] listening on 127.0.0.1:8888
 */
#ifndef IOLOOP_HOST_LOG_H
#define IOLOOP_HOST_LOG_H

#include <stdarg.h>

#include <ioloop/loop.h>

/* Messages above this level (less severe) are dropped before formatting. */
extern int ioloop__log_threshold;

/* Parses "error", "warn", "info" or "debug"; -1 for anything else. */
int ioloop__log_level_parse(const char *name);
const char *ioloop__log_level_name(int level);

/*
 * Formats and writes one line with a single write(2), so that lines from
 * several processes sharing stderr do not interleave. tag names the
 * subsystem or plugin instance ("host", "hello", ...).
 */
void ioloop__log(int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ioloop__vlog(int level, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define IOLOOP_LOG(level, tag, ...)                                        \
    do {                                                                   \
        if ((level) <= ioloop__log_threshold) {                            \
            ioloop__log((level), (tag), __VA_ARGS__);                      \
        }                                                                  \
    } while (0)

#endif /* IOLOOP_HOST_LOG_H */
