/*
 * host/core/log.h: the host's logger. One line per message on stderr, either
 * plain (the default):
 *   2026-11-27T11:23:45.123Z info [hello] listening on 127.0.0.1:8888
 * or JSON lines (manifest "log": {"format": "json"}), every line written
 * to stderr then, including the ones logged before the manifest was read
 * (ioloop__log_hold) and the watchdog's stacks (ioloop__log_frames):
 *   {"ts":"2026-11-27T11:23:45.123Z","level":"info","pid":4242,
 *    "tag":"hello","msg":"listening on 127.0.0.1:8888"}
 * (one line; shown folded here). ts is UTC with milliseconds. A worker
 * process (ioloop__log_set_worker) tags each of its lines with its index:
 * "2026-11-27T11:23:45.123Z w1 info [hello] ..." and "worker":1 after
 * "pid" in JSON.
 *
 * Each line is written with a single write(2) of at most PIPE_BUF bytes,
 * so lines from workers sharing stderr (a pipe to journald or a container
 * runtime) never interleave. A longer message is cut: a plain line then
 * ends with "...", a JSON line gets "truncated":true.
 *
 * Escaping. A message is one line whatever it holds:
 * - plain: newline and carriage return become \n and \r, other control
 *   bytes (0x00-0x1f but tab, and 0x7f) become \xNN; every other byte,
 *   invalid UTF-8 included, is written as is (plain is for humans);
 * - JSON: '"' and '\\' are escaped, \b \f \n \r \t by name, other control
 *   bytes and 0x7f as \u00NN. Valid UTF-8 passes through. Each byte that
 *   is not part of a valid UTF-8 sequence (a stray continuation byte, a
 *   truncated sequence, an overlong form, a surrogate, a code point past
 *   U+10FFFF) becomes \ufffd, one per byte, so every line is valid JSON
 *   that strict parsers (jansson) accept. The original byte is lost: \u00NN
 *   would claim a code point (U+00NN) the message never had.
 * The tag is escaped the same way.
 *
 * Levels. IOLOOP_LOG checks ioloop__log_threshold before formatting
 * anything: that is the cheap early-out. With per-plugin overrides
 * ("log": {"plugins": {"hello": "debug"}}) the threshold is the most
 * verbose of all the levels, and a line that passes it is then checked
 * against the level of its tag: the override of the plugin instance the
 * tag names, or log.level for anything else. Plugins log through api_log
 * (host/runtime/api.c), which checks the owner's own level instead of looking the
 * tag up.
 *
 * Configuration is process-wide and not synchronised with logging: call
 * ioloop__log_configure before starting threads or workers (they inherit
 * it) or from the thread that logs.
 */
#ifndef IOLOOP_HOST_LOG_H
#define IOLOOP_HOST_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include <ioloop/loop.h>

/* A log level for the lines tagged name (a plugin instance's). */
struct ioloop_log_override {
    const char *name;
    int level; /* IOLOOP_LOG_*, or < 0: none (the global level) */
};

/*
 * Messages above this level (less severe) are dropped before formatting.
 * Without overrides it is the level itself, so tests and benches may
 * still assign it directly to quieten the log.
 */
extern int ioloop__log_threshold;

/* Parses "error", "warn", "info" or "debug"; -1 for anything else. */
int ioloop__log_level_parse(const char *name);
const char *ioloop__log_level_name(int level);

/*
 * Sets the level (IOLOOP_LOG_*), the format (json: 1 for JSON lines, 0
 * plain) and the per-instance overrides: every entry of v[0..n) whose
 * level is >= 0 gives the level of lines tagged with its name. The names
 * are copied, so v may be freed afterwards; a later call replaces
 * everything, and a call with n == 0 frees the copy. Returns 0, -EINVAL
 * for a level out of range or -ENOMEM; on failure nothing changes.
 */
int ioloop__log_configure(int level, int json,
                          const struct ioloop_log_override *v, size_t n);

/*
 * Holds every line logged from now on until the format is known: the
 * first ioloop__log_configure (or ioloop__log_release) writes them, in
 * order, with the time they were logged, in the format it sets. Up to 16
 * lines are kept; later ones are counted and reported as dropped. main
 * calls it first thing, so that the lines logged before the manifest is
 * read follow its "log" format too.
 */
void ioloop__log_hold(void);

/* Writes the held lines in the current format and stops holding (for a
 * process that exits before reading a manifest). No-op when not held. */
void ioloop__log_release(void);

/*
 * A command-line error (bad manifest, refused start): in plain format,
 * or while lines are held, "ioloop-host: <message>" as a CLI prints it
 * (a manifest that cannot be read has no format to follow); in JSON
 * format an error line tagged "host". errno is preserved.
 */
void ioloop__log_cli(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * One message with a list of frames (the watchdog's stack), written with
 * a single write(2) like every line, if level passes the level of tag
 * (as ioloop__log). JSON: the
 * line gets "frames":["...", ...]; plain: each frame follows on its own
 * indented line, in the same write. Frames that do not fit in PIPE_BUF
 * are left out and the line is marked cut. Callable from any thread.
 */
void ioloop__log_frames(int level, const char *tag, const char *msg,
                        const char *const *frames, size_t n);

/*
 * Where finished lines go instead of stderr: fn(line, len, arg) gets each
 * whole line, newline included, as it would be written (libioloop_testing
 * captures the log so). NULL goes back to stderr. Process-wide, like the
 * rest of the configuration.
 */
typedef void (*ioloop_log_sink_fn)(const char *line, size_t len, void *arg);
void ioloop__log_set_sink(ioloop_log_sink_fn fn, void *arg);

/* Switches between plain (0) and JSON lines (1). */
void ioloop__log_set_format(int json);

/* Tags every line of this process with worker index (>= 0), or with
 * nothing (-1, the default: the master, or a host without workers). */
void ioloop__log_set_worker(int index);

/*
 * The level of lines that no override covers (log.level): api_log uses
 * it for an owner without a level of its own.
 */
int ioloop__log_level(void);

/*
 * Formats and writes one line with a single write(2), if level passes the
 * threshold and the level of tag. tag names the subsystem or plugin
 * instance ("host", "hello", ...); NULL means "host". errno is preserved.
 */
void ioloop__log(int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ioloop__vlog(int level, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ioloop__vlog without any level check: the caller has filtered. */
void ioloop__vlog_write(int level, const char *tag, const char *fmt,
                        va_list ap) __attribute__((format(printf, 3, 0)));

/*
 * Copies s into buf (len > 0), NUL-terminated and cut to fit, with every
 * control character written as an escape (\n, \r, \t, \x1b...), so that
 * text from a config or a plugin cannot break a one-line message.
 */
void ioloop__escape_line(char *buf, size_t len, const char *s);

/*
 * The length of the well-formed UTF-8 sequence of a non-ASCII code point
 * at s (n > 0 bytes left), or 0 for a byte JSON text cannot carry as is:
 * a continuation byte, a truncated sequence, an overlong form, a
 * surrogate or past U+10FFFF (the access log's JSON escapes as this log's).
 */
size_t ioloop__utf8_sequence(const unsigned char *s, size_t n);

#define IOLOOP_LOG(level, tag, ...)                                        \
    do {                                                                   \
        if ((level) <= ioloop__log_threshold) {                            \
            ioloop__log((level), (tag), __VA_ARGS__);                      \
        }                                                                  \
    } while (0)

#endif /* IOLOOP_HOST_LOG_H */
