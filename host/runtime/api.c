/*
 * host/runtime/api.c: the host API table (struct ioloop_api) a plugin's init
 * receives: the loop's own functions plus an owner-tagged logger.
 */
#include "api.h"

#include <stdarg.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "signals.h"
#include "stream.h"
#include "tls.h"

static void api_log(ioloop_loop_t *loop, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const struct ioloop_api api = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_api),
    .add_handler = ioloop_add_handler,
    .update_handler = ioloop_update_handler,
    .remove_handler = ioloop_remove_handler,
    .add_callback = ioloop_add_callback,
    .add_callback_from_signal = ioloop_add_callback_from_signal,
    .call_at = ioloop_call_at,
    .call_later = ioloop_call_later,
    .cancel = ioloop_cancel,
    .periodic_start = ioloop_periodic_start,
    .periodic_stop = ioloop_periodic_stop,
    .time = ioloop_time,
    .log = api_log,
    .listen_tcp = ioloop__listen_tcp,
    .accept = ioloop__accept,
    .stop = ioloop_stop,
    .accept_batch = ioloop__accept_batch,
    .listen_unix = ioloop__listen_unix,
    .signal_subscribe = ioloop_signal_subscribe,
    .signal_unsubscribe = ioloop_signal_unsubscribe,
    .stream_new = ioloop__tls_stream_new, /* plain without opts->tls */
    .stream_read_until = ioloop_stream_read_until,
    .stream_read_bytes = ioloop_stream_read_bytes,
    .stream_read_some = ioloop_stream_read_some,
    .stream_read_until_close = ioloop_stream_read_until_close,
    .stream_write = ioloop_stream_write,
    .stream_close = ioloop_stream_close,
    .stream_error = ioloop_stream_error,
    .stream_fd = ioloop_stream_fd,
    .stream_pending = ioloop_stream_pending,
    .metrics_render = ioloop__metrics_render,
    .counter_register = ioloop__metrics_counter_register,
    .counter_add = ioloop__metrics_counter_add,
    .stream_timeout = ioloop_stream_timeout,
    .stream_writev = ioloop_stream_writev,
    .tls_new = ioloop__tls_new,
    .tls_reload = ioloop__tls_reload,
    .tls_free = ioloop__tls_free,
};

const struct ioloop_api *
ioloop__api(void)
{
    return &api;
}

/* Logs as the current owner, up to its own level when it has one. */
static void
api_log(ioloop_loop_t *loop, int level, const char *fmt, ...)
{
    const struct ioloop_owner *owner = ioloop__current_owner(loop);
    va_list ap;

    if (level > ioloop__log_threshold
        || level > (owner != NULL && owner->has_log_level
                        ? owner->log_level
                        : ioloop__log_level())) {
        return;
    }
    va_start(ap, fmt);
    ioloop__vlog_write(level, ioloop__owner_name(loop), fmt, ap);
    va_end(ap);
}
