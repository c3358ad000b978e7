/*
 * host/app/sdnotify.h: the sd_notify(3) protocol without libsystemd. The
 * service manager ($NOTIFY_SOCKET, set for Type=notify units) learns
 * that the host is ready, reloading or stopping, and a status line for
 * `systemctl status`.
 *
 * Each call sends one datagram to $NOTIFY_SOCKET: a path, or an abstract
 * socket when the value starts with '@'. Only the main process should
 * call: the unit says NotifyAccess=main, and systemd drops what other
 * processes send (workers inherit the variable but never notify).
 */
#ifndef IOLOOP_HOST_SDNOTIFY_H
#define IOLOOP_HOST_SDNOTIFY_H

/*
 * Sends state, newline-separated VAR=value assignments, e.g. "READY=1",
 * "STOPPING=1", "STATUS=serving on 2 workers", "MAINPID=4242". Returns 1
 * when sent; 0 when $NOTIFY_SOCKET is unset or empty (not under systemd:
 * nothing to do); -errno on failure: -EAFNOSUPPORT for an address that is
 * neither a path nor '@' (e.g. vsock:), -ENAMETOOLONG, or the error of
 * socket(2) or sendto(2) (-ECONNREFUSED, -ENOENT, ...). Never logs.
 */
int ioloop__sd_notify(const char *state);

/*
 * ioloop__sd_notify of a formatted state, at most 4095 bytes: longer
 * gives -EMSGSIZE and sends nothing.
 */
int ioloop__sd_notifyf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Sends "RELOADING=1\nMONOTONIC_USEC=<now>": CLOCK_MONOTONIC in
 * microseconds, which systemd >= 253 requires with RELOADING=1. The
 * reload ends with READY=1, sent whether it succeeded or not. Returns as
 * ioloop__sd_notify.
 */
int ioloop__sd_notify_reloading(void);

#endif /* IOLOOP_HOST_SDNOTIFY_H */
