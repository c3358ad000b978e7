/*
 * host/app/listenfds.h: socket activation, the sd_listen_fds(3) protocol
 * without libsystemd. systemd (or any manager speaking the protocol)
 * binds the sockets of a .socket unit and passes them as fds 3, 4, ...
 * with LISTEN_PID (our pid), LISTEN_FDS (how many) and LISTEN_FDNAMES
 * (colon-separated names) in the environment.
 *
 * A manifest listener whose address matches a passed socket gets that
 * socket instead of binding (host/runtime/net.c asks here first). Matching is
 * exact: the same family, address and port, or the same socket path; a
 * wildcard (0.0.0.0:8888) matches only a wildcard socket, never
 * 127.0.0.1:8888, and IPv4 never matches an IPv6 socket, dual-stack or
 * not; port 0 ("any free port") matches nothing. Only listening stream
 * sockets are handed out.
 *
 * Every take returns a new fd (a dup) on the passed socket, for as many
 * requests for that address as come: the master's broker, each worker,
 * each generation after a reload. The caller owns the fd it gets and may
 * close it (fini); the passed fd itself stays open in this process, so
 * the socket, and the connections queued on it, outlive any listener
 * that uses it. Handing out the passed fd itself instead would let the
 * first close (one plugin's fini) take the socket away from everyone.
 *
 * The table is process-wide; every function is thread-safe.
 */
#ifndef IOLOOP_HOST_LISTENFDS_H
#define IOLOOP_HOST_LISTENFDS_H

#include <sys/socket.h>

/* The first passed fd (SD_LISTEN_FDS_START). */
#define IOLOOP_LISTEN_FDS_START 3

/*
 * Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES once per process;
 * later calls only return the count. The fds are ours only when
 * LISTEN_PID is getpid(): they are then marked close-on-exec and logged
 * at info, one line each. In every case the three variables are removed
 * from the environment, so that no child (a worker that execs, a plugin's
 * subprocess) takes them too. Malformed values are logged at warn and
 * ignored. Returns how many fds were passed to this process (0: none).
 *
 * Call it first thing in main, before anything forks: a forked worker
 * has another pid and would rightly ignore the variables. The take
 * functions call it too, for hosts that never did.
 */
int ioloop__listenfds_init(void);

/*
 * A new fd, non-blocking and close-on-exec, on the passed listening TCP
 * socket bound to exactly addr (len bytes, AF_INET or AF_INET6), or -1
 * when none matches. A failed dup is logged at error and gives -1 too.
 */
int ioloop__listenfds_take_tcp(const struct sockaddr *addr, socklen_t len);

/* The same for the passed Unix stream socket bound to path. */
int ioloop__listenfds_take_unix(const char *path);

/*
 * Logs at warn each passed fd that no take has matched yet, once per fd
 * in the life of the process (a misspelled address in the manifest or in
 * the .socket unit). Such fds stay open: a reload may still use them.
 * Call it when start-up is over (every listener is made). Returns how
 * many are unused now.
 */
int ioloop__listenfds_warn_unused(void);

#endif /* IOLOOP_HOST_LISTENFDS_H */
