/*
 * host/runtime/api.c: the host API table (struct ioloop_api) a plugin's init
 * receives. Each member takes the instance context and runs the loop's own
 * function on the instance's loop as the instance's owner, so that what it
 * registers belongs to the instance whichever thread calls.
 *
 * Naming: the table holds only this file's api_* adapters (members that
 * take the instance), the core's public ioloop_stream_* functions
 * (members that take a stream, which remembers its owner) and the HTTP
 * layer's public ioloop_http_* functions (members that take a request,
 * which knows its instance); never a private ioloop__ function.
 */
#include "api.h"

#include <stdarg.h>

#include "connect.h"
#include "http_internal.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "signals.h"
#include "stream.h"
#include "tls.h"

/*
 * Runs expr on the instance's loop with the instance as the loop's
 * current owner (two stores: the owner is then stored with whatever expr
 * registers, and its log lines carry the instance's name). Loop thread
 * only: add_callback, the one member callable from anywhere, names its
 * owner explicitly instead.
 */
#define AS_INSTANCE(inst, type, expr)                                      \
    do {                                                                   \
        const struct ioloop_owner *previous_ =                             \
            ioloop__set_owner((inst)->loop, &(inst)->owner);               \
        type result_ = (expr);                                             \
                                                                           \
        ioloop__set_owner((inst)->loop, previous_);                        \
        return result_;                                                    \
    } while (0)

static int api_add_handler(ioloop_instance_t *inst, int fd, unsigned events,
                           ioloop_io_cb cb, void *arg);
static int api_update_handler(ioloop_instance_t *inst, int fd,
                              unsigned events);
static int api_remove_handler(ioloop_instance_t *inst, int fd);
static int api_add_callback(ioloop_instance_t *inst, ioloop_cb cb,
                            void *arg);
static int api_add_callback_from_signal(ioloop_instance_t *inst,
                                        ioloop_cb cb, void *arg);
static ioloop_timer_t api_call_at(ioloop_instance_t *inst,
                                  ioloop_time_t deadline, ioloop_cb cb,
                                  void *arg);
static ioloop_timer_t api_call_later(ioloop_instance_t *inst,
                                     ioloop_time_t delay, ioloop_cb cb,
                                     void *arg);
static int api_cancel(ioloop_instance_t *inst, ioloop_timer_t timer);
static ioloop_periodic_t *api_periodic_start(ioloop_instance_t *inst,
                                             ioloop_time_t period,
                                             double jitter, ioloop_cb cb,
                                             void *arg);
static void api_periodic_stop(ioloop_instance_t *inst,
                              ioloop_periodic_t *periodic);
static ioloop_time_t api_time(ioloop_instance_t *inst);
static void api_log(ioloop_instance_t *inst, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int api_listen_tcp(ioloop_instance_t *inst, const char *addr,
                          int backlog, unsigned flags, char *err,
                          size_t errlen);
static int api_accept(ioloop_instance_t *inst, int listen_fd);
static void api_stop(ioloop_instance_t *inst);
static int api_accept_batch(ioloop_instance_t *inst, int listen_fd, int *fds,
                            int max);
static int api_listen_unix(ioloop_instance_t *inst, const char *path,
                           unsigned mode, int backlog, char *err,
                           size_t errlen);
static ioloop_connect_t *api_connect_tcp(
    ioloop_instance_t *inst, const char *addr, ioloop_time_t timeout,
    const struct ioloop_stream_options *opts, ioloop_connect_cb cb,
    void *arg);
static void api_connect_cancel(ioloop_instance_t *inst, ioloop_connect_t *c);
static int api_signal_subscribe(ioloop_instance_t *inst, int signo,
                                ioloop_signal_cb cb, void *arg);
static int api_signal_unsubscribe(ioloop_instance_t *inst, int id);
static ioloop_stream_t *api_stream_new(
    ioloop_instance_t *inst, int fd, const struct ioloop_stream_options *opts);
static int api_metrics_render(ioloop_instance_t *inst, char *buf,
                              size_t len);
static int api_counter_register(ioloop_instance_t *inst, const char *name,
                                const char *help, const char *label,
                                const char *value);
static void api_counter_add(ioloop_instance_t *inst, int handle, uint64_t n);
static unsigned api_worker_index(ioloop_instance_t *inst);
static unsigned api_worker_count(ioloop_instance_t *inst);
static ioloop_tls_t *api_tls_new(ioloop_instance_t *inst,
                                 const struct ioloop_tls_options *opts,
                                 char *err, size_t errlen);
static int api_tls_reload(ioloop_instance_t *inst, ioloop_tls_t *tls,
                          char *err, size_t errlen);
static void api_tls_free(ioloop_instance_t *inst, ioloop_tls_t *tls);
static int api_http_handle(ioloop_instance_t *inst,
                           const struct ioloop_http_handler *handler,
                           char *err, size_t errlen);
static int api_counter_register_labels(ioloop_instance_t *inst,
                                       const char *name, const char *help,
                                       const char *const *labels);
static int api_gauge_register(ioloop_instance_t *inst, const char *name,
                              const char *help, const char *const *labels);
static int api_histogram_register(ioloop_instance_t *inst, const char *name,
                                  const char *help,
                                  const char *const *labels,
                                  const double *bounds, size_t nbounds);
static void api_gauge_set(ioloop_instance_t *inst, int handle, double value);
static void api_gauge_add(ioloop_instance_t *inst, int handle, double delta);
static void api_histogram_observe(ioloop_instance_t *inst, int handle,
                                  double value);
static ioloop_tls_t *api_tls_client_new(ioloop_instance_t *inst,
                                        const struct ioloop_tls_options *opts,
                                        char *err, size_t errlen);
static int api_stream_tls_alpn(const ioloop_stream_t *s, char *buf,
                               size_t len);

static const struct ioloop_api api = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_api),
    .add_handler = api_add_handler,
    .update_handler = api_update_handler,
    .remove_handler = api_remove_handler,
    .add_callback = api_add_callback,
    .add_callback_from_signal = api_add_callback_from_signal,
    .call_at = api_call_at,
    .call_later = api_call_later,
    .cancel = api_cancel,
    .periodic_start = api_periodic_start,
    .periodic_stop = api_periodic_stop,
    .time = api_time,
    .log = api_log,
    .listen_tcp = api_listen_tcp,
    .accept = api_accept,
    .stop = api_stop,
    .accept_batch = api_accept_batch,
    .listen_unix = api_listen_unix,
    .connect_tcp = api_connect_tcp,
    .connect_cancel = api_connect_cancel,
    .signal_subscribe = api_signal_subscribe,
    .signal_unsubscribe = api_signal_unsubscribe,
    .stream_new = api_stream_new,
    .stream_read_until = ioloop_stream_read_until,
    .stream_read_bytes = ioloop_stream_read_bytes,
    .stream_read_some = ioloop_stream_read_some,
    .stream_read_until_close = ioloop_stream_read_until_close,
    .stream_write = ioloop_stream_write,
    .stream_close = ioloop_stream_close,
    .stream_error = ioloop_stream_error,
    .stream_fd = ioloop_stream_fd,
    .stream_pending = ioloop_stream_pending,
    .stream_timeout = ioloop_stream_timeout,
    .stream_writev = ioloop_stream_writev,
    .metrics_render = api_metrics_render,
    .counter_register = api_counter_register,
    .counter_add = api_counter_add,
    .worker_index = api_worker_index,
    .worker_count = api_worker_count,
    .tls_new = api_tls_new,
    .tls_reload = api_tls_reload,
    .tls_free = api_tls_free,
    .http_handle = api_http_handle,
    .http_method = ioloop_http_method,
    .http_target = ioloop_http_target,
    .http_path = ioloop_http_path,
    .http_path_rest = ioloop_http_path_rest,
    .http_query = ioloop_http_query,
    .http_query_next = ioloop_http_query_next,
    .http_header = ioloop_http_header,
    .http_header_next = ioloop_http_header_next,
    .http_remote_ip = ioloop_http_remote_ip,
    .http_scheme = ioloop_http_scheme,
    .http_body = ioloop_http_body,
    .http_read_body = ioloop_http_read_body,
    .http_on_close = ioloop_http_on_close,
    .http_set_status = ioloop_http_set_status,
    .http_add_header = ioloop_http_add_header,
    .http_write = ioloop_http_write,
    .http_flush = ioloop_http_flush,
    .http_finish = ioloop_http_finish,
    .counter_register_labels = api_counter_register_labels,
    .gauge_register = api_gauge_register,
    .histogram_register = api_histogram_register,
    .gauge_set = api_gauge_set,
    .gauge_add = api_gauge_add,
    .histogram_observe = api_histogram_observe,
    .tls_client_new = api_tls_client_new,
    .stream_tls_alpn = api_stream_tls_alpn,
};

const struct ioloop_api *
ioloop__api(void)
{
    return &api;
}

static int
api_add_handler(ioloop_instance_t *inst, int fd, unsigned events,
                ioloop_io_cb cb, void *arg)
{
    AS_INSTANCE(inst, int,
                ioloop_add_handler(inst->loop, fd, events, cb, arg));
}

static int
api_update_handler(ioloop_instance_t *inst, int fd, unsigned events)
{
    return ioloop_update_handler(inst->loop, fd, events);
}

static int
api_remove_handler(ioloop_instance_t *inst, int fd)
{
    return ioloop_remove_handler(inst->loop, fd);
}

static int
api_add_callback(ioloop_instance_t *inst, ioloop_cb cb, void *arg)
{
    return ioloop__add_callback_as(inst->loop, &inst->owner, cb, arg);
}

static int
api_add_callback_from_signal(ioloop_instance_t *inst, ioloop_cb cb,
                             void *arg)
{
    return ioloop__add_callback_from_signal_as(inst->loop, &inst->owner, cb,
                                               arg);
}

static ioloop_timer_t
api_call_at(ioloop_instance_t *inst, ioloop_time_t deadline, ioloop_cb cb,
            void *arg)
{
    AS_INSTANCE(inst, ioloop_timer_t,
                ioloop_call_at(inst->loop, deadline, cb, arg));
}

static ioloop_timer_t
api_call_later(ioloop_instance_t *inst, ioloop_time_t delay, ioloop_cb cb,
               void *arg)
{
    AS_INSTANCE(inst, ioloop_timer_t,
                ioloop_call_later(inst->loop, delay, cb, arg));
}

static int
api_cancel(ioloop_instance_t *inst, ioloop_timer_t timer)
{
    return ioloop_cancel(inst->loop, timer);
}

static ioloop_periodic_t *
api_periodic_start(ioloop_instance_t *inst, ioloop_time_t period,
                   double jitter, ioloop_cb cb, void *arg)
{
    AS_INSTANCE(inst, ioloop_periodic_t *,
                ioloop_periodic_start(inst->loop, period, jitter, cb, arg));
}

static void
api_periodic_stop(ioloop_instance_t *inst, ioloop_periodic_t *periodic)
{
    ioloop_periodic_stop(inst->loop, periodic);
}

static ioloop_time_t
api_time(ioloop_instance_t *inst)
{
    return ioloop_time(inst->loop);
}

/* Logs as the instance, up to its own level when it has one. */
static void
api_log(ioloop_instance_t *inst, int level, const char *fmt, ...)
{
    va_list ap;

    if (level > ioloop__log_threshold
        || level > (inst->owner.has_log_level ? inst->owner.log_level
                                              : ioloop__log_level())) {
        return;
    }
    va_start(ap, fmt);
    ioloop__vlog_write(level, inst->owner.name, fmt, ap);
    va_end(ap);
}

static int
api_listen_tcp(ioloop_instance_t *inst, const char *addr, int backlog,
               unsigned flags, char *err, size_t errlen)
{
    AS_INSTANCE(inst, int,
                ioloop__listen_tcp(inst->loop, addr, backlog, flags, err,
                                   errlen));
}

static int
api_accept(ioloop_instance_t *inst, int listen_fd)
{
    AS_INSTANCE(inst, int, ioloop__accept(inst->loop, listen_fd));
}

static void
api_stop(ioloop_instance_t *inst)
{
    ioloop_stop(inst->loop);
}

static int
api_accept_batch(ioloop_instance_t *inst, int listen_fd, int *fds, int max)
{
    AS_INSTANCE(inst, int,
                ioloop__accept_batch(inst->loop, listen_fd, fds, max));
}

static int
api_listen_unix(ioloop_instance_t *inst, const char *path, unsigned mode,
                int backlog, char *err, size_t errlen)
{
    AS_INSTANCE(inst, int,
                ioloop__listen_unix(inst->loop, path, mode, backlog, err,
                                    errlen));
}

static ioloop_connect_t *
api_connect_tcp(ioloop_instance_t *inst, const char *addr,
                ioloop_time_t timeout,
                const struct ioloop_stream_options *opts, ioloop_connect_cb cb,
                void *arg)
{
    AS_INSTANCE(inst, ioloop_connect_t *,
                ioloop__connect_tcp(inst->loop, &inst->connects, addr,
                                    timeout, opts, cb, arg));
}

static void
api_connect_cancel(ioloop_instance_t *inst, ioloop_connect_t *c)
{
    (void) inst; /* c knows its owner's list */
    ioloop__connect_cancel(c);
}

static int
api_signal_subscribe(ioloop_instance_t *inst, int signo,
                     ioloop_signal_cb cb, void *arg)
{
    AS_INSTANCE(inst, int,
                ioloop_signal_subscribe(inst->loop, signo, cb, arg));
}

static int
api_signal_unsubscribe(ioloop_instance_t *inst, int id)
{
    return ioloop_signal_unsubscribe(inst->loop, id);
}

static ioloop_stream_t *
api_stream_new(ioloop_instance_t *inst, int fd,
               const struct ioloop_stream_options *opts)
{
    AS_INSTANCE(inst, ioloop_stream_t *,
                ioloop__tls_stream_new(inst->loop, fd, opts));
}

static int
api_metrics_render(ioloop_instance_t *inst, char *buf, size_t len)
{
    return ioloop__metrics_render(inst->loop, buf, len);
}

static int
api_counter_register(ioloop_instance_t *inst, const char *name,
                     const char *help, const char *label, const char *value)
{
    AS_INSTANCE(inst, int,
                ioloop__metrics_counter_register(inst->loop, name, help,
                                                 label, value));
}

static void
api_counter_add(ioloop_instance_t *inst, int handle, uint64_t n)
{
    ioloop__metrics_counter_add(inst->loop, handle, n);
}

static unsigned
api_worker_index(ioloop_instance_t *inst)
{
    return inst->worker;
}

static unsigned
api_worker_count(ioloop_instance_t *inst)
{
    return inst->workers;
}

static ioloop_tls_t *
api_tls_new(ioloop_instance_t *inst, const struct ioloop_tls_options *opts,
            char *err, size_t errlen)
{
    return ioloop__tls_new(&inst->tls, opts, err, errlen);
}

static int
api_tls_reload(ioloop_instance_t *inst, ioloop_tls_t *tls, char *err,
               size_t errlen)
{
    (void) inst;
    return ioloop__tls_reload(tls, err, errlen);
}

static void
api_tls_free(ioloop_instance_t *inst, ioloop_tls_t *tls)
{
    (void) inst;
    ioloop__tls_free(tls);
}

static int
api_http_handle(ioloop_instance_t *inst,
                const struct ioloop_http_handler *handler, char *err,
                size_t errlen)
{
    return ioloop__http_handle(inst, handler, err, errlen);
}

static int
api_counter_register_labels(ioloop_instance_t *inst, const char *name,
                            const char *help, const char *const *labels)
{
    AS_INSTANCE(inst, int,
                ioloop__metrics_counter_labels(inst->loop, name, help,
                                               labels));
}

static int
api_gauge_register(ioloop_instance_t *inst, const char *name,
                   const char *help, const char *const *labels)
{
    AS_INSTANCE(inst, int,
                ioloop__metrics_gauge_register(inst->loop, name, help,
                                               labels));
}

static int
api_histogram_register(ioloop_instance_t *inst, const char *name,
                       const char *help, const char *const *labels,
                       const double *bounds, size_t nbounds)
{
    AS_INSTANCE(inst, int,
                ioloop__metrics_histogram_register(inst->loop, name, help,
                                                   labels, bounds, nbounds));
}

static void
api_gauge_set(ioloop_instance_t *inst, int handle, double value)
{
    ioloop__metrics_gauge_set(inst->loop, handle, value);
}

static void
api_gauge_add(ioloop_instance_t *inst, int handle, double delta)
{
    ioloop__metrics_gauge_add(inst->loop, handle, delta);
}

static void
api_histogram_observe(ioloop_instance_t *inst, int handle, double value)
{
    ioloop__metrics_observe(inst->loop, handle, value);
}

static ioloop_tls_t *
api_tls_client_new(ioloop_instance_t *inst,
                   const struct ioloop_tls_options *opts, char *err,
                   size_t errlen)
{
    return ioloop__tls_client_new(&inst->tls, opts, err, errlen);
}

static int
api_stream_tls_alpn(const ioloop_stream_t *s, char *buf, size_t len)
{
    return ioloop__tls_stream_alpn(s, buf, len);
}
