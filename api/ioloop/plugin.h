/*
 * ioloop/plugin.h: the plugin ABI.
 *
 * A plugin is a shared object that exports one symbol,
 *
 *     IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = { ... };
 *
 * The host calls init() once per manifest entry (instance) that names the
 * .so, handing it the host API table below, the instance context and the
 * entry's config, validated against the plugin's schema and filled into
 * the plugin's own struct (<ioloop/config.h>). A plugin never links
 * against the host: everything it needs from the host is in struct
 * ioloop_api, so it can be unit-tested on libioloop_testing
 * (<ioloop/testing.h>).
 *
 * Ownership: every API function takes the instance context first, and
 * whatever is registered through it (handlers, timers, periodic callbacks,
 * streams, listeners, signal subscriptions, callbacks posted from any
 * thread or from a signal handler) belongs to that instance: it runs, logs
 * and counts under the instance's manifest name, and the host releases
 * whatever is left of it when the instance fails init or is stopped (after
 * fini), so nothing can call into a plugin whose code is unloaded.
 *
 * Threading: everything runs on the loop's thread, except the two
 * add_callback functions, which are marked as safe elsewhere.
 *
 * Forward compatibility: members of both structs are only ever appended,
 * each marked with the minor version that added it. The host accepts a
 * plugin built for an older minor (smaller size: the host never reads
 * past it), and one built for a newer minor (larger size) when every byte
 * of the tail the host does not know is zero, i.e. the plugin leaves the
 * newer members unset (the rule of Linux's copy_struct_from_user); a
 * non-zero byte there is refused, naming its offset. The descriptor's
 * build signature must equal the host's (IOLOOP_BUILD_SIGNATURE).
 */
#ifndef IOLOOP_PLUGIN_H
#define IOLOOP_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include <ioloop/config.h>
#include <ioloop/http.h>
#include <ioloop/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOLOOP_PLUGIN_ABI_MAJOR 1
#define IOLOOP_PLUGIN_ABI_MINOR 1
#define IOLOOP_PLUGIN_ABI \
    IOLOOP_ABI_VERSION(IOLOOP_PLUGIN_ABI_MAJOR, IOLOOP_PLUGIN_ABI_MINOR)

/*
 * The build signature (struct ioloop_plugin.build): what must match
 * between the host and a plugin besides the ABI version, because it
 * changes the layout or the runtime of both sides. One byte each: the
 * pointer size, the size of time_t, the sanitizers built in (ASan 1,
 * TSan 2: a sanitized plugin in a plain host, or the reverse, crashes or
 * reports false leaks), and the ABI major. The host refuses a plugin
 * whose signature differs, naming both.
 */
#if defined(__SANITIZE_ADDRESS__)
#define IOLOOP__ASAN 1u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IOLOOP__ASAN 1u
#endif
#endif
#ifndef IOLOOP__ASAN
#define IOLOOP__ASAN 0u
#endif
#if defined(__SANITIZE_THREAD__)
#define IOLOOP__TSAN 2u
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IOLOOP__TSAN 2u
#endif
#endif
#ifndef IOLOOP__TSAN
#define IOLOOP__TSAN 0u
#endif

#define IOLOOP_BUILD_SIGNATURE                                             \
    ((uint32_t) sizeof(void *) | (uint32_t) sizeof(time_t) << 8            \
     | (IOLOOP__ASAN | IOLOOP__TSAN) << 16                                  \
     | (uint32_t) IOLOOP_PLUGIN_ABI_MAJOR << 24)

/* The parts of a build signature, for messages. */
#define IOLOOP_BUILD_POINTER(sig)   ((unsigned) ((sig) & 0xffu))
#define IOLOOP_BUILD_TIME_T(sig)    ((unsigned) ((sig) >> 8 & 0xffu))
#define IOLOOP_BUILD_SANITIZER(sig) ((unsigned) ((sig) >> 16 & 0xffu))
#define IOLOOP_BUILD_MAJOR(sig)     ((unsigned) ((sig) >> 24 & 0xffu))

/* Descriptor flags (struct ioloop_plugin.flags). */
/* Run one instance in one process only: with "workers": N, the master
 * places it in worker 0 alone (and in worker 0's replacement). For a
 * plugin whose state must not split across processes. */
#define IOLOOP_PLUGIN_ONE_PROCESS 0x01u

/* The name of the symbol the host looks up with dlsym(). */
#define IOLOOP_PLUGIN_SYMBOL "ioloop_plugin_v1"

/*
 * The instance context: one per manifest entry, handed to init and valid
 * until fini returns (keep it in the instance state, next to the API
 * table; fini and drain get the state only). Opaque.
 */
typedef struct ioloop_instance_s ioloop_instance_t;

/* A periodic callback (see periodic_start). Opaque. */
typedef struct ioloop_periodic_s ioloop_periodic_t;

/* A TLS context: certificate, key and settings, for the server side
 * (tls_new) or the client side (tls_client_new, since 1.1). Opaque. */
typedef struct ioloop_tls_s ioloop_tls_t;

/* Options of tls_new and tls_client_new; zero members take the
 * default. */
struct ioloop_tls_options {
    /* sizeof(struct ioloop_tls_options), for forward compatibility. */
    size_t size;
    /* PEM files: the certificate (chain, leaf first) and its private
     * key. Required by tls_new; for tls_client_new, both or neither: the
     * client certificate (mutual TLS). Re-read from the same paths by
     * tls_reload. */
    const char *cert;
    const char *key;
    /* The lowest protocol version accepted: "1.2" (default) or "1.3". */
    const char *min_version;
    /* ALPN protocols the server offers, comma-separated in order of
     * preference ("h2,http/1.1"); a client offering none of them is
     * refused. NULL: no ALPN. A client context (tls_client_new) offers
     * them in this order; the server may pick one or none
     * (stream_tls_alpn tells which). */
    const char *alpn;
    /* Since 1.1, client contexts only (tls_new refuses it): the PEM file
     * of the certificate authorities that may sign the server's
     * certificate, re-read by tls_reload. NULL: the system's store
     * (OpenSSL's default paths). */
    const char *ca;
};

/* Called on the loop thread after signo was delivered. Returns 0 or
 * -errno, as ioloop_cb does. */
typedef int (*ioloop_signal_cb)(ioloop_loop_t *loop, int signo, void *arg);

/* A buffered stream over a connected fd (see stream_new). Opaque. */
typedef struct ioloop_stream_s ioloop_stream_t;

/* Receives data read by a stream: valid only during the call. */
typedef void (*ioloop_stream_read_cb)(ioloop_stream_t *s, const char *data,
                                      size_t len, void *arg);

/* Write completion and close notification. */
typedef void (*ioloop_stream_cb)(ioloop_stream_t *s, void *arg);

/* Options of stream_new; zero members take the default. */
struct ioloop_stream_options {
    /* sizeof(struct ioloop_stream_options), for forward compatibility. */
    uint32_t size;
    /* Most bytes buffered for reading, and for writing, unless
     * max_read_buffer or max_write_buffer says otherwise (default 1 MiB;
     * tornado's max_buffer_size is 100 MiB). */
    size_t max_buffer_size;
    /* Closes the stream with ETIMEDOUT after this long without reading
     * or writing a byte (0: never). */
    ioloop_time_t idle_timeout;
    /* Runs once, in a later iteration, when the stream closed for any
     * reason; the stream is freed when it returns. */
    ioloop_stream_cb close_cb;
    /* Passed to every callback of this stream. */
    void *arg;
    /* Closes the stream with ETIMEDOUT when a pending read gets no byte
     * for this long, counted from the read call or its last byte
     * (0: never). */
    ioloop_time_t read_timeout;
    /* Closes the stream with ETIMEDOUT when queued output makes no
     * progress for this long, counted from when it was queued or from the
     * last byte the kernel took (0: never). */
    ioloop_time_t write_timeout;
    /* Most bytes buffered for reading: the longest line read_until
     * accepts, the largest read_bytes (0: max_buffer_size's value). */
    size_t max_read_buffer;
    /* Most bytes queued for writing (0: max_buffer_size's value). */
    size_t max_write_buffer;
    /* Runs when a read_until passes max_read_buffer without its
     * delimiter, before the stream closes with ENOBUFS. It may write a
     * reply ("-ERR line too long\r\n"): the stream flushes it, refusing
     * reads (-EPIPE), then closes with ENOBUFS (write done callbacks do
     * not run); if the reply makes no progress for write_timeout (5 s
     * without one), it closes then. NULL: close at once. */
    ioloop_stream_cb overflow_cb;
    /* Backpressure: once queued output passes this many bytes, stream_write
     * and stream_writev return 1 instead of 0: stop producing until
     * drained_cb (0: no mark; clamped to max_write_buffer). */
    size_t write_high_water;
    /* Runs once when queued output falls to 0 after having passed
     * write_high_water, after the write's done callback (not if done
     * queued past the mark again). May be NULL. */
    ioloop_stream_cb drained_cb;
    /* Speak TLS as the server on this fd with this context (tls_new):
     * the handshake runs first, bounded by read_timeout (10 s
     * without one), then reads and writes carry plaintext exactly as on a
     * plain stream; stream_close sends close_notify. The stream keeps
     * what it needs of the context: tls_free and tls_reload do not touch
     * it. NULL: plain. With connect_tcp (since 1.1): a client context
     * (tls_client_new), and the stream speaks TLS as the client (what it
     * needs of the context is kept likewise from the connect_tcp call
     * on); a server context is refused there, as a client context is by
     * stream_new. */
    ioloop_tls_t *tls;
    /* Since 1.1, connect_tcp with tls only: the name sent as SNI and that
     * the server's certificate must carry (copied). NULL: the host part
     * of connect_tcp's addr. An IPv4 or IPv6 address literal is verified
     * as an IP address (the certificate's IP subjectAltName), and no SNI
     * is sent for it (RFC 6066, section 3). */
    const char *tls_server_name;
};

/* An outbound connection being made (see connect_tcp). Opaque. */
typedef struct ioloop_connect_s ioloop_connect_t;

/*
 * The end of a connect_tcp, on the loop thread: status 0 and s, the
 * connected stream (now the plugin's, with the options given to
 * connect_tcp), or status -errno and s NULL.
 */
typedef void (*ioloop_connect_cb)(ioloop_loop_t *loop, ioloop_stream_t *s,
                                  int status, void *arg);

/* Which timeout closed a stream (stream_timeout). */
#define IOLOOP_STREAM_TIMEOUT_NONE 0  /* none: not closed by a timeout */
#define IOLOOP_STREAM_TIMEOUT_IDLE 1  /* idle_timeout */
#define IOLOOP_STREAM_TIMEOUT_READ 2  /* read_timeout */
#define IOLOOP_STREAM_TIMEOUT_WRITE 3 /* write_timeout */

/* Flags for listen_tcp. */
#define IOLOOP_LISTEN_REUSEPORT 0x01u /* set SO_REUSEPORT before bind */

/*
 * The host API table, passed to init(). Every function but the stream_*
 * ones (a stream remembers its instance) takes the instance context that
 * init was given; what it registers belongs to that instance. Callbacks
 * still receive the loop handle as their first argument, which plugins
 * only pass back as is: call the API with the instance kept in the state.
 * Functions that return int return 0 (or a non-negative value where
 * stated) on success and -errno on failure.
 */
struct ioloop_api {
    /* IOLOOP_PLUGIN_ABI of the host. */
    uint32_t abi_version;
    /* sizeof(struct ioloop_api) in the host: members past it are absent. */
    uint32_t size;

    /* --- Handlers (since 1.0). Loop thread only. --- */

    /*
     * Calls cb(loop, fd, events, arg) whenever fd is ready for one of
     * events (IOLOOP_READ | IOLOOP_WRITE; IOLOOP_ERROR and IOLOOP_HUP are
     * always reported). Level-triggered. The handler belongs to the plugin
     * instance that registers it. The plugin keeps ownership of fd.
     * Errors: -EEXIST (fd already has a handler), -EBADF, -EINVAL (the
     * backend cannot watch this fd, e.g. select and fd >= FD_SETSIZE),
     * -ENOMEM.
     */
    int (*add_handler)(ioloop_instance_t *inst, int fd, unsigned events,
                       ioloop_io_cb cb, void *arg);

    /* Replaces the event mask of fd's handler. -ENOENT: no handler. */
    int (*update_handler)(ioloop_instance_t *inst, int fd, unsigned events);

    /*
     * Removes fd's handler. No event for fd is dispatched after this
     * returns, even one already polled in the current batch, and not to a
     * new handler registered on the same fd number either. Remove the
     * handler before closing the fd. -ENOENT: no handler.
     */
    int (*remove_handler)(ioloop_instance_t *inst, int fd);

    /* --- Callbacks (since 1.0). --- */

    /*
     * Runs cb(loop, arg) on the next loop iteration. Safe from any thread:
     * from a thread other than the loop's it wakes a sleeping poll. The
     * callback belongs to inst whichever thread posts it.
     * Callbacks added during an iteration run in the next one, in the
     * order they were added. -ENOMEM on allocation failure.
     */
    int (*add_callback)(ioloop_instance_t *inst, ioloop_cb cb, void *arg);

    /*
     * Like add_callback, but async-signal-safe: call it from a signal
     * handler. It neither locks nor allocates; -EAGAIN when its fixed
     * number of slots (64) is full.
     */
    int (*add_callback_from_signal)(ioloop_instance_t *inst, ioloop_cb cb,
                                    void *arg);

    /* --- Timers (since 1.0). Loop thread only. --- */

    /*
     * Runs cb(loop, arg) once, at the first iteration at or after the
     * monotonic time deadline (see time()). Timers with equal deadlines run
     * in the order they were added. Returns the timer handle, or 0 with
     * errno = ENOMEM.
     */
    ioloop_timer_t (*call_at)(ioloop_instance_t *inst, ioloop_time_t deadline,
                              ioloop_cb cb, void *arg);

    /* call_at(loop, time(loop) + delay, cb, arg). */
    ioloop_timer_t (*call_later)(ioloop_instance_t *inst, ioloop_time_t delay,
                                 ioloop_cb cb, void *arg);

    /*
     * Cancels a timer. Safe on a timer that already fired or was cancelled
     * (returns -ENOENT then), and from inside another timer's callback: a
     * timer cancelled before its turn in the current iteration does not
     * run.
     */
    int (*cancel)(ioloop_instance_t *inst, ioloop_timer_t timer);

    /*
     * Calls cb every period ns, starting one period from now. Missed runs
     * (a loop that was blocked) are skipped rather than run in a burst.
     * jitter in [0, 1): each interval is scaled by a random factor in
     * [1 - jitter/2, 1 + jitter/2] (tornado's PeriodicCallback), to spread
     * the work of many instances. cb may stop its own periodic. Returns
     * NULL with errno set (EINVAL, ENOMEM) on failure.
     */
    ioloop_periodic_t *(*periodic_start)(ioloop_instance_t *inst,
                                         ioloop_time_t period, double jitter,
                                         ioloop_cb cb, void *arg);

    /* Stops and frees a periodic callback. NULL is a no-op. */
    void (*periodic_stop)(ioloop_instance_t *inst,
                          ioloop_periodic_t *periodic);

    /*
     * The loop's monotonic time in ns, read once per iteration (cached), as
     * tornado's IOLoop.time().
     */
    ioloop_time_t (*time)(ioloop_instance_t *inst);

    /* --- Logging (since 1.0). --- */

    /*
     * Logs one line (no trailing newline needed) at the given
     * IOLOOP_LOG_* level, tagged with the plugin instance's manifest name.
     */
    void (*log)(ioloop_instance_t *inst, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* --- Sockets (since 1.0). --- */

    /*
     * Creates a non-blocking, close-on-exec TCP listening socket on addr,
     * "HOST:PORT" for IPv4 or a name, "[V6ADDR]:PORT" for IPv6; PORT is
     * 0 to 65535 in decimal (0 picks a free port), the host is never
     * empty. backlog <= 0 means SOMAXCONN. flags: IOLOOP_LISTEN_*. Logs
     * "listening on ADDR:PORT" at info. Returns the fd, or -errno with a
     * one-line reason in err ("listen 127.0.0.1:8888: Address already in
     * use"). Under `ioloop-host --check` (init then fini, nothing served)
     * the address is validated the same way but the fd returned is a
     * socket of its family that is neither bound nor listening: register
     * and close it as usual.
     */
    int (*listen_tcp)(ioloop_instance_t *inst, const char *addr, int backlog,
                      unsigned flags, char *err, size_t errlen);

    /*
     * Accepts one connection on a listening socket; the new fd is
     * non-blocking and close-on-exec. Returns the fd, -EAGAIN when no
     * connection is pending, or -errno. Survives running out of fds: on
     * EMFILE/ENFILE the host frees its reserve fd, accepts and closes the
     * pending connection (so the client sees a close instead of a hang
     * and the listener stops being readable), takes the reserve back and
     * returns -EMFILE (logged at warn at most once a second).
     */
    int (*accept)(ioloop_instance_t *inst, int listen_fd);

    /*
     * Accepts up to max pending connections into fds[] (each as accept()
     * returns them). Returns how many (0 when none is pending), or -errno
     * when the first accept failed (-EMFILE as for accept).
     */
    int (*accept_batch)(ioloop_instance_t *inst, int listen_fd, int *fds,
                        int max);

    /*
     * Like listen_tcp for a Unix stream socket at path. A stale socket
     * file left by a dead process is replaced; any other existing file is
     * an error. mode (e.g. 0660) is applied to the socket file; 0 keeps
     * the umask's. Logs "listening on unix:PATH" at info. Returns the fd
     * or -errno with err set.
     */
    int (*listen_unix)(ioloop_instance_t *inst, const char *path,
                       unsigned mode, int backlog, char *err, size_t errlen);

    /*
     * Connects to addr, "HOST:PORT" (an IPv4 address or a name) or
     * "[V6ADDR]:PORT", PORT 1 to 65535. A name is resolved without
     * blocking the loop (getaddrinfo_a on glibc's thread) and its
     * addresses are tried in turn. cb runs exactly once, in a later
     * iteration (never inside this call), unless connect_cancel comes
     * first: with the connected stream, made with opts (NULL: defaults;
     * its timeouts start then), or with -ETIMEDOUT (nothing connected
     * within timeout; 0 means 30 s), -ECONNREFUSED, -ENETUNREACH, ...
     * (the last address's failure), -ENOENT (the name has no address),
     * -EAGAIN (the resolver failed for now). With opts->tls (a client
     * context; since 1.1) cb runs once the TLS handshake is done, and
     * timeout covers it too; a handshake that fails, the server's
     * certificate failing verification included, is -EPROTO (-ECONNRESET:
     * the server hung up during it), its reason logged once at warn
     * ("tls: HOST:PORT: certificate verify failed: self-signed
     * certificate"). Returns the attempt, or NULL with errno set: EINVAL
     * (a bad addr, cb NULL, a server context in opts->tls), ENOMEM. Loop
     * thread
     * only. The attempt belongs to inst: one still pending when init
     * fails or after fini is cancelled by the host (cb never runs).
     */
    ioloop_connect_t *(*connect_tcp)(ioloop_instance_t *inst,
                                     const char *addr, ioloop_time_t timeout,
                                     const struct ioloop_stream_options *opts,
                                     ioloop_connect_cb cb, void *arg);

    /*
     * Abandons an attempt whose cb has not run: cb never runs, its socket
     * is closed. Not after cb (the attempt is gone then). A plugin
     * cancels its attempts in fini. NULL is a no-op. Loop thread only.
     */
    void (*connect_cancel)(ioloop_instance_t *inst, ioloop_connect_t *c);

    /* --- Loop control (since 1.0). --- */

    /* Stops the loop after the current iteration (the host then exits). */
    void (*stop)(ioloop_instance_t *inst);

    /* --- Signals (since 1.0). --- */

    /*
     * Calls cb(loop, signo, arg) on the loop thread, in a later iteration,
     * whenever signo is delivered to the process (several deliveries
     * before the loop gets to run may be reported once). Several
     * subscribers may share a signal. Refused with -EINVAL: SIGKILL,
     * SIGSTOP, the synchronous SIGSEGV/SIGBUS/SIGFPE/SIGILL, and the
     * host's own SIGUSR2 (live backend swap), SIGURG (reserved for the
     * host) and SIGPIPE (ignored). SIGINT
     * and SIGTERM may be subscribed: the host still stops after them.
     * Returns a subscription id (> 0) or -errno.
     */
    int (*signal_subscribe)(ioloop_instance_t *inst, int signo,
                            ioloop_signal_cb cb, void *arg);

    /* Ends a subscription. -ENOENT: unknown id. */
    int (*signal_unsubscribe)(ioloop_instance_t *inst, int id);

    /* --- Buffered streams (since 1.0), in the spirit of tornado's
     * IOStream. Loop thread only. --- */

    /*
     * Wraps a connected non-blocking fd, which the stream then owns (it
     * closes it). opts may be NULL for the defaults. Returns NULL with
     * errno set (ENOMEM, EEXIST when fd already has a handler).
     *
     * Reads: one read is pending at a time (a second returns -EBUSY).
     * Data is handed to the read callback as (data, len), valid only
     * during the call. A read that the buffered data satisfies runs from a
     * callback in the next iteration, never from inside the read call.
     * Writes are copied into the stream's buffer and flushed as the fd
     * allows; the done callback runs once everything written so far has
     * reached the kernel. A stream holds no buffer while it is idle.
     */
    ioloop_stream_t *(*stream_new)(ioloop_instance_t *inst, int fd,
                                   const struct ioloop_stream_options *opts);

    /* Calls cb with everything up to and including the first delim
     * (dlen bytes). When max_read_buffer passes with no delim the stream
     * closes with ENOBUFS (after overflow_cb's reply, if any). */
    int (*stream_read_until)(ioloop_stream_t *s, const void *delim,
                             size_t dlen, ioloop_stream_read_cb cb);

    /* Calls cb with exactly n bytes. */
    int (*stream_read_bytes)(ioloop_stream_t *s, size_t n,
                             ioloop_stream_read_cb cb);

    /* Calls cb with whatever is available, at least 1 and at most max
     * bytes (tornado's read_bytes(partial=True)). */
    int (*stream_read_some)(ioloop_stream_t *s, size_t max,
                            ioloop_stream_read_cb cb);

    /* Calls cb, possibly several times, with data as it arrives until the
     * peer closes; then the close callback runs. */
    int (*stream_read_until_close)(ioloop_stream_t *s,
                                   ioloop_stream_read_cb cb);

    /* Queues len bytes (copied). done (may be NULL) runs when all queued
     * data reached the kernel. Returns 0, or 1 when the queued output is
     * now above write_high_water (stop producing until drained_cb).
     * -ENOBUFS when the queue would exceed max_write_buffer (the stream
     * is not closed: back off and retry from done). -EPIPE once the
     * stream is closed. */
    int (*stream_write)(ioloop_stream_t *s, const void *data, size_t len,
                        ioloop_stream_cb done);

    /* Closes the stream now (queued output is dropped: close from the
     * write's done callback to flush first). The close callback runs in a
     * later iteration, then the stream is freed. Safe to call twice. A
     * stream closed in fini (the loop has stopped) is freed by the host
     * without its close callback: free your per-connection state in fini
     * yourself. */
    void (*stream_close)(ioloop_stream_t *s);

    /* Why the stream closed: 0 (peer closed, or stream_close), or a
     * positive errno (ETIMEDOUT idle, ENOBUFS, ECONNRESET, ...). */
    int (*stream_error)(const ioloop_stream_t *s);

    /* The fd, or -1 once closed. */
    int (*stream_fd)(const ioloop_stream_t *s);

    /* Bytes waiting to be written. */
    size_t (*stream_pending)(const ioloop_stream_t *s);

    /* Which timeout closed the stream: IOLOOP_STREAM_TIMEOUT_IDLE, _READ
     * or _WRITE (stream_error is then ETIMEDOUT), or _NONE. Valid until
     * the close callback returns. */
    int (*stream_timeout)(const ioloop_stream_t *s);

    /* stream_write of iovcnt buffers (gathered: at most one copy, of what
     * the kernel did not take at once; writev(2) straight to the fd when
     * nothing is queued). The buffers are the caller's again on return.
     * -EINVAL for iovcnt < 0 or > IOV_MAX; -ENOBUFS when their sum would
     * pass max_write_buffer (nothing is written). */
    int (*stream_writev)(ioloop_stream_t *s, const struct iovec *iov,
                         int iovcnt, ioloop_stream_cb done);

    /* --- Metrics (since 1.0). Loop thread only. --- */

    /*
     * Renders the host's metrics (every worker's) in the Prometheus text
     * exposition format 0.0.4 into buf, NUL-terminated; serve it as
     * "text/plain; version=0.0.4". buf stays the caller's. Returns the
     * length (without the NUL). With buf NULL and len 0, returns the
     * length it would need, as snprintf does: allocate that plus 1 and
     * some slack, since the values keep growing. -ENOBUFS when len is too
     * small (buf then holds ""); -ENOTSUP when the host keeps no metrics
     * for this loop; -EINVAL for a NULL buf with len > 0.
     */
    int (*metrics_render)(ioloop_instance_t *inst, char *buf, size_t len);

    /* --- Counters (since 1.0). Loop thread only. --- */

    /*
     * Registers a counter series owned by the calling instance (call it
     * from init; the strings are copied). metrics_render shows it as
     *
     *     NAME{worker="W",instance="INSTANCE",LABEL="VALUE"} N
     *
     * under "# HELP NAME help" and "# TYPE NAME counter" (without LABEL
     * when label and value are NULL). name: [a-zA-Z_:][a-zA-Z0-9_:]*
     * ending in "_total", under 64 bytes, not one of the host's own; help:
     * one line under 128 bytes without a backslash, the same for every
     * series of name; label: [a-zA-Z_][a-zA-Z0-9_]*, not "worker" nor
     * "instance"; label and value under 32 bytes. Register each label
     * value as its own series. Returns a handle (>= 0) for counter_add;
     * -EINVAL (a bad string), -ENOSPC (the host's table of 128 series per
     * worker is full), or -ENOTSUP (the host keeps no metrics for this
     * loop). A plugin may ignore a failure: counter_add ignores a
     * negative handle.
     */
    int (*counter_register)(ioloop_instance_t *inst, const char *name,
                            const char *help, const char *label,
                            const char *value);

    /*
     * Adds n to the series of handle. O(1): no lookup, no lock, no
     * allocation, so it may be called per request. A negative handle
     * (failed registration) is a no-op.
     */
    void (*counter_add)(ioloop_instance_t *inst, int handle, uint64_t n);

    /* --- Workers (since 1.0). --- */

    /*
     * The worker process this instance runs in, 0 to worker_count() - 1
     * (0 without workers), and how many workers the manifest asks for (1
     * without workers). Each worker runs its own copy of every instance,
     * with its own state: with "workers": 2 an instance's state splits in
     * two. A plugin whose state must not split sets
     * IOLOOP_PLUGIN_ONE_PROCESS (or the manifest entry "one_process":
     * true), and then only worker 0 runs it.
     */
    unsigned (*worker_index)(ioloop_instance_t *inst);
    unsigned (*worker_count)(ioloop_instance_t *inst);

    /* --- TLS (since 1.0; OpenSSL in the host). Loop thread only. --- */

    /*
     * A server TLS context from opts (see struct ioloop_tls_options):
     * loads and checks the certificate and key now, so a plugin calling it
     * from init has a bad file refused by --check too. Returns NULL with
     * one line in err naming the file ("tls: /x/key.pem: No such file or
     * directory", "tls: /x/key.pem: key does not match certificate
     * /x/cert.pem") and errno set (ENOENT, EACCES, EINVAL, ENOMEM).
     * The context belongs to inst: one not freed by tls_free when init
     * fails or fini returns is freed by the host (with a warning).
     */
    ioloop_tls_t *(*tls_new)(ioloop_instance_t *inst,
                             const struct ioloop_tls_options *opts,
                             char *err, size_t errlen);

    /*
     * Re-reads the certificate and key from the paths given to tls_new
     * (certificate rotation): streams made from now on use the new ones,
     * established streams keep theirs. On failure the context keeps the
     * old ones and err has the same one line as tls_new. Returns 0 or
     * -errno.
     */
    int (*tls_reload)(ioloop_instance_t *inst, ioloop_tls_t *tls, char *err,
                      size_t errlen);

    /* Frees the context (NULL: no-op); streams made from it go on. */
    void (*tls_free)(ioloop_instance_t *inst, ioloop_tls_t *tls);

    /* --- HTTP (since 1.1; <ioloop/http.h>). Loop thread only. --- */

    /*
     * Registers a request handler (see struct ioloop_http_handler and
     * <ioloop/http.h>). Call it from init: the servers accept only once
     * every instance has started, and a route of the manifest whose
     * instance registered no handler is refused then. Errors, with one
     * line in err: -EINVAL (cb NULL, both path and prefix, a path not
     * starting with "/", a bad methods list), -ENOENT (no server of that
     * name), -EEXIST (a second manifest-route handler for the instance,
     * or a route another handler already has: same path, or same
     * prefix), -ENOTSUP (the host runs no HTTP server: no "servers" in
     * the manifest).
     */
    int (*http_handle)(ioloop_instance_t *inst,
                       const struct ioloop_http_handler *handler, char *err,
                       size_t errlen);

    /* The request's method ("GET"), its target as sent ("/a%20b?x=1"),
     * its path (the target up to "?", not decoded: "/a%20b"), and what
     * follows the matched prefix ("b" for prefix "/a%20", "" for an
     * exact path). */
    const char *(*http_method)(const ioloop_http_request_t *req);
    const char *(*http_target)(const ioloop_http_request_t *req);
    const char *(*http_path)(const ioloop_http_request_t *req);
    const char *(*http_path_rest)(const ioloop_http_request_t *req);

    /* The first query argument called name, percent- and "+"-decoded
     * (NULL: none; "" for "?name" or "?name="). */
    const char *(*http_query)(const ioloop_http_request_t *req,
                              const char *name);

    /* Iterates over the query arguments in order, decoded: set *it = 0,
     * then each call stores one pair and returns 1, and 0 past the last. */
    int (*http_query_next)(const ioloop_http_request_t *req, size_t *it,
                           const char **name, const char **value);

    /* The first header called name (case-insensitive), its value
     * without surrounding blanks; NULL: none. */
    const char *(*http_header)(const ioloop_http_request_t *req,
                               const char *name);

    /* Iterates over the headers in the order received (names as sent),
     * as http_query_next does. */
    int (*http_header_next)(const ioloop_http_request_t *req, size_t *it,
                            const char **name, const char **value);

    /* The client's address ("127.0.0.1", "::1"), and "http" or "https". */
    const char *(*http_remote_ip)(const ioloop_http_request_t *req);
    const char *(*http_scheme)(const ioloop_http_request_t *req);

    /* The buffered body and its length (NULL and 0: none, or the handler
     * streams it). Binary: may contain NUL bytes; a NUL follows it. */
    const char *(*http_body)(const ioloop_http_request_t *req, size_t *len);

    /*
     * For a IOLOOP_HTTP_STREAM_BODY handler, from the handler itself:
     * on_data runs with each piece of the body as it arrives, then on_end
     * once after the last (at once, in a later iteration, when there is
     * no body). A body past max_body_size ends the request: on_close runs
     * and the host answers 413. -EALREADY: not the handler's first call,
     * or the handler is not a streaming one.
     */
    int (*http_read_body)(ioloop_http_request_t *req,
                          ioloop_http_body_cb on_data, ioloop_http_cb on_end,
                          void *arg);

    /* Runs cb once, in the iteration after the client closed the
     * connection or it was closed for a timeout or a limit, if that
     * happens before http_finish. The request stays valid: finish it. */
    void (*http_on_close)(ioloop_http_request_t *req, ioloop_http_cb cb,
                          void *arg);

    /* Sets the status (100..999, else -EINVAL; the reason phrase is the
     * standard one). Default 200. -EALREADY once the head was sent. */
    int (*http_set_status)(ioloop_http_request_t *req, int status);

    /*
     * Adds a response header. The host writes Date, Server,
     * Content-Length (unless set here: then exactly that many bytes must
     * be written), Transfer-Encoding and Connection itself; setting
     * Transfer-Encoding or Date is -EPERM, "Connection: close" closes the
     * connection after this response, a Server replaces the host's.
     * -EINVAL: a name that is not a token, a value with CR, LF or NUL, a
     * Content-Length that is not decimal; -EALREADY once the head was sent;
     * -ENOBUFS past 64 headers or 16 KiB of them.
     */
    int (*http_add_header)(ioloop_http_request_t *req, const char *name,
                           const char *value);

    /*
     * Writes a piece of the body (copied): the first write sends the head
     * too. Without Content-Length the body goes chunked (to an HTTP/1.0
     * client: delimited by closing the connection). Nothing is written
     * for HEAD. Returns 0, or 1 when the response's queued output passed
     * 1 MiB: wait for http_flush's callback before writing more.
     * -EPIPE: the client is gone; -EINVAL: past a Content-Length the
     * plugin set.
     */
    int (*http_write)(ioloop_http_request_t *req, const void *data,
                      size_t len);

    /* Runs cb once everything written so far reached the kernel (or the
     * client went away: then after on_close). -EALREADY: a flush is
     * already pending. */
    int (*http_flush)(ioloop_http_request_t *req, ioloop_http_cb cb,
                      void *arg);

    /*
     * Ends the response, writing data first (len 0: nothing). Nothing
     * written before: the response goes out whole, with Content-Length
     * len. The request is the host's again: the plugin must not touch it
     * any more. Returns 0, or -EPIPE (the client went away: the request
     * is freed all the same), -EPROTO (fewer bytes than a Content-Length
     * the plugin set: the connection is closed).
     */
    int (*http_finish)(ioloop_http_request_t *req, const void *data,
                       size_t len);

    /* --- Metrics with labels (since 1.1). Loop thread only. --- */

    /*
     * Registers a counter series owned by the calling instance, as
     * counter_register does, with any number of labels up to 8: labels
     * holds name, value pairs and ends with NULL, e.g.
     * (const char *[]){"method", "GET", "code", "200", NULL} (NULL: no
     * label). Call it from init; the strings are copied. Label names as
     * counter_register's, each at most once; the labels are rendered
     * sorted by name, after worker and instance, and must fit 191 bytes
     * once escaped (a value is UTF-8 and may hold any character: \, "
     * and newline are escaped). Register each label set as its own
     * series. Returns a handle for counter_add (>= 0), -EINVAL, -ENOSPC
     * (the worker's 256 series or their values are used up), or -ENOTSUP
     * (the host keeps no metrics for this loop). A plugin may ignore a
     * failure: the calls below ignore a negative handle.
     */
    int (*counter_register_labels)(ioloop_instance_t *inst, const char *name,
                                   const char *help,
                                   const char *const *labels);

    /*
     * Registers a gauge series (a double, starting at 0): as
     * counter_register_labels, but name must not end in "_total". Rendered
     * under "# TYPE NAME gauge" with the value of each live worker that
     * registered it. Returns a handle for gauge_set and gauge_add.
     */
    int (*gauge_register)(ioloop_instance_t *inst, const char *name,
                          const char *help, const char *const *labels);

    /*
     * Registers a histogram series: as gauge_register, name ending in
     * none of "_total", "_bucket", "_sum", "_count", and no label "le".
     * bounds: the upper bounds of its buckets, 1 to 16 finite values in
     * strictly increasing order, copied (+Inf is implied), fixed for the
     * series' life. Rendered as NAME_bucket{...,le="B"} (cumulative),
     * NAME_sum and NAME_count. Returns a handle for histogram_observe.
     */
    int (*histogram_register)(ioloop_instance_t *inst, const char *name,
                              const char *help, const char *const *labels,
                              const double *bounds, size_t nbounds);

    /* Sets a gauge, or adds delta (maybe negative) to it. O(1): no
     * lookup, lock or allocation. A handle that is not a gauge's is a
     * no-op. */
    void (*gauge_set)(ioloop_instance_t *inst, int handle, double value);
    void (*gauge_add)(ioloop_instance_t *inst, int handle, double delta);

    /*
     * Counts value in its bucket (the first bound >= value) and adds it to
     * the sum. O(1): a binary search over the bounds, no lookup, lock or
     * allocation, fine per request. NaN is ignored; a handle that is not a
     * histogram's is a no-op.
     */
    void (*histogram_observe)(ioloop_instance_t *inst, int handle,
                              double value);

    /* --- TLS clients (since 1.1; OpenSSL in the host). Loop thread
     * only. --- */

    /*
     * A client TLS context from opts, for connect_tcp's opts->tls: the
     * server's certificate chain is verified against opts->ca (NULL: the
     * system's store), and its name against the server name (see
     * ioloop_stream_options.tls_server_name); there is no switch to turn
     * verification off (trust a self-signed server by naming its
     * certificate as ca). cert and key, both or neither, are the client
     * certificate for servers that ask for one (mutual TLS); min_version
     * and alpn as for tls_new. Loads every file now; errors as tls_new's
     * ("tls: /x/ca.pem: No such file or directory"). tls_reload re-reads
     * ca, cert and key; tls_free frees it; owned by inst as tls_new's.
     */
    ioloop_tls_t *(*tls_client_new)(ioloop_instance_t *inst,
                                    const struct ioloop_tls_options *opts,
                                    char *err, size_t errlen);

    /*
     * The protocol ALPN chose on a TLS stream (client or server side),
     * copied NUL-terminated into buf. Returns its length, 0 when none was
     * chosen or s is not a TLS stream (buf then holds ""), -ENOBUFS when
     * len cannot hold it and its NUL.
     */
    int (*stream_tls_alpn)(const ioloop_stream_t *s, char *buf, size_t len);
};

/*
 * Whether the host's table has member (one appended by a later minor than
 * the host may have): `if (IOLOOP_API_HAS(api, listen_unix)) ...`.
 */
#define IOLOOP_API_HAS(api, member)                                        \
    ((api)->size >= offsetof(struct ioloop_api, member)                    \
                        + sizeof((api)->member))

/* The descriptor a plugin exports as ioloop_plugin_v1. */
struct ioloop_plugin {
    /* IOLOOP_PLUGIN_ABI at build time. The host refuses another major. */
    uint32_t abi_version;
    /* sizeof(struct ioloop_plugin) at build time. */
    uint32_t size;
    /* IOLOOP_BUILD_SIGNATURE at build time; the host refuses another. */
    uint32_t build;
    /* IOLOOP_PLUGIN_* flags (0: none). */
    uint32_t flags;
    /* Short name of the plugin (not of the instance), e.g. "hello_http". */
    const char *name;
    /* The plugin's own version string, e.g. "1.0.0". */
    const char *version;
    /* One line saying what the plugin does. May be NULL. */
    const char *description;
    /*
     * The plugin's config, declared as a table (see <ioloop/config.h>),
     * terminated by IOLOOP_CONFIG_END; NULL when it takes no config. The
     * host validates the instance's "config" object against it before any
     * init runs (and under --check), refuses unknown keys, applies the
     * defaults, and prints it with --plugin-info.
     */
    const struct ioloop_config_field *config_schema;
    /* sizeof the struct config_schema describes (0 without a schema). */
    size_t config_size;

    /*
     * Starts one instance. api and inst stay valid until fini returns;
     * keep both in the instance state. config is the plugin's config
     * struct (of config_size bytes), filled and validated from the
     * manifest entry's "config" by the host: it and every string, list
     * and map it points to are the host's and stay valid until fini
     * returns, so keep the pointer rather than copies. On success store
     * the instance state in *state and return 0. On failure write one
     * line to err (the host prefixes the instance name and manifest
     * place), release what was acquired, and return -errno; the host then
     * releases whatever the instance still has registered (handlers,
     * timers, periodics, streams, listeners, signal subscriptions, queued
     * callbacks) and logs how much it found. Mandatory.
     */
    int (*init)(const struct ioloop_api *api, ioloop_instance_t *inst,
                const void *config, void **state, char *err, size_t errlen);

    /*
     * Stops the instance: remove its handlers, close its fds, free state.
     * Called in reverse order of init, on the loop thread, while the loop
     * is not running. What fini leaves registered is released by the host
     * as after a failed init (with a warning). Mandatory.
     */
    void (*fini)(void *state);

    /*
     * Graceful stop has begun (SIGTERM, or a reload replacing this
     * worker): stop accepting, let requests in flight finish, and close
     * connections as they become idle. The loop keeps running until the
     * instance has no handler left or the manifest's shutdown_timeout
     * passes; then fini runs. Optional (NULL): the host then only removes
     * the handlers of the listeners the instance made with listen_tcp or
     * listen_unix, and waits the same way. Since 1.0.
     */
    void (*drain)(void *state);
};

/*
 * Defines the descriptor, ioloop_plugin_v1, with abi_version, size and
 * build filled in for this build and the members given (the others 0):
 *
 *     IOLOOP_PLUGIN_DEFINE(.name = "kv", .init = kv_init, .fini = kv_fini);
 */
#define IOLOOP_PLUGIN_DEFINE(...)                                          \
    IOLOOP_EXPORT const struct ioloop_plugin ioloop_plugin_v1 = {          \
        .abi_version = IOLOOP_PLUGIN_ABI,                                  \
        .size = sizeof(struct ioloop_plugin),                              \
        .build = IOLOOP_BUILD_SIGNATURE, __VA_ARGS__}

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_PLUGIN_H */
