/* host/runtime/net.c: TCP listeners (IPv4 and IPv6) and accept for plugins. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ioloop/plugin.h>

#include "log.h"
#include "metrics.h"
#include "loop.h"

/* A listener made for a plugin, so that a graceful stop can stop
 * accepting for a plugin that has no drain of its own, and the host can
 * close those an instance left open. The socket's inode tells a listener
 * still open from a reused fd number. */
struct handed {
    int fd;
    const struct ioloop_owner *owner;
    dev_t dev;
    ino_t ino;
};

/* The helpers' state in one loop (its IOLOOP_SLOT_NET), made with its
 * first listener: the loop thread alone uses it. */
struct net_state {
    /* The spare fd that shed_connection() gives up on EMFILE. */
    int reserve_fd;
    ioloop_time_t last_shed_log;
    struct handed *handed; /* grows by doubling: no limit but memory */
    size_t nhanded;
    size_t handed_cap;
};

/* --check: listen helpers validate their address but bind nothing. Set
 * before any loop runs, as the listener source. */
static int check_mode;
static ioloop_listener_source_fn listener_source;

static int from_source(ioloop_loop_t *loop, enum ioloop_listener_kind kind,
                       const char *addr, int backlog, unsigned flags,
                       char *err, size_t errlen);
static int bind_tcp(ioloop_loop_t *loop, const char *addr, int backlog,
                    unsigned flags, char *err, size_t errlen);
static int listening(ioloop_loop_t *loop, int fd, char *err, size_t errlen);
static struct net_state *net_state(ioloop_loop_t *loop, bool create);
static void free_net_state(ioloop_loop_t *loop, void *data);
static int remember(struct net_state *ns, ioloop_loop_t *loop, int fd);
static void log_listening(ioloop_loop_t *loop, int fd);
static int unix_socket_alive(const struct sockaddr_un *sun);
static void ensure_reserve(struct net_state *ns);
static int shed_connection(ioloop_loop_t *loop, int listen_fd, int err);
static int check_listener(ioloop_loop_t *loop, int family,
                          const char *shown);
static int split_host_port(const char *addr, char *host, size_t hostlen,
                           const char **port, int *bracketed);
static int parse_port(const char *s);
static void format_sockaddr(const struct sockaddr *sa, char *buf,
                            size_t len);

void
ioloop__net_set_check_mode(int on)
{
    check_mode = on;
}

int
ioloop__net_check_mode(void)
{
    return check_mode;
}

void
ioloop__net_set_listener_source(ioloop_listener_source_fn fn)
{
    listener_source = fn;
}

int
ioloop__listen_tcp(ioloop_loop_t *loop, const char *addr, int backlog,
                   unsigned flags, char *err, size_t errlen)
{
    int fd;

    if (check_mode) {
        struct sockaddr_storage ss;
        socklen_t len;
        int rc = ioloop__listen_addr_parse(addr, &ss, &len, err, errlen);

        return rc < 0 ? rc : check_listener(loop, ss.ss_family, addr);
    }
    fd = from_source(loop, IOLOOP_LISTENER_TCP, addr, backlog, flags, err,
                     errlen);
    if (fd != IOLOOP_LISTENER_NONE) {
        return fd;
    }
    return bind_tcp(loop, addr, backlog, flags, err, errlen);
}

/* The listener source's fd for addr, made ours; IOLOOP_LISTENER_NONE when
 * there is no source or it leaves addr to us. */
static int
from_source(ioloop_loop_t *loop, enum ioloop_listener_kind kind,
            const char *addr, int backlog, unsigned flags, char *err,
            size_t errlen)
{
    struct ioloop_listener_request req = {kind, ioloop__owner_name(loop),
                                          addr, backlog, flags};
    int fd;

    if (listener_source == NULL) {
        return IOLOOP_LISTENER_NONE;
    }
    fd = listener_source(&req, err, errlen);
    return fd < 0 ? fd : listening(loop, fd, err, errlen);
}

/* Binds addr in this process; logs "listening on" with the real port. */
static int
bind_tcp(ioloop_loop_t *loop, const char *addr, int backlog, unsigned flags,
         char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char shown[256];
    int fd = -1, one = 1, rc;

    rc = ioloop__listen_addr_parse(addr, &ss, &sslen, err, errlen);
    if (rc < 0) {
        return rc;
    }
    ioloop__escape_line(shown, sizeof(shown), addr);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "listen %s: socket: %s", shown, strerror(-rc));
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if ((flags & IOLOOP_LISTEN_REUSEPORT)
        && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "listen %s: SO_REUSEPORT: %s", shown,
                 strerror(-rc));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *) &ss, sslen) < 0
        || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        rc = -errno;
        snprintf(err, errlen, "listen %s: %s", shown, strerror(-rc));
        goto fail;
    }
    return listening(loop, fd, err, errlen);

fail:
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

int
ioloop__listen_addr_parse(const char *addr, struct sockaddr_storage *ss,
                          socklen_t *sslen, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char host[256], shown[256];
    const char *port;
    int bracketed, rc;

    ioloop__escape_line(shown, sizeof(shown), addr);

    if (split_host_port(addr, host, sizeof(host), &port, &bracketed) < 0) {
        snprintf(err, errlen,
                 "listen \"%s\": expected HOST:PORT or [IPV6]:PORT", shown);
        return -EINVAL;
    }
    if (parse_port(port) < 0) {
        snprintf(err, errlen,
                 "listen \"%s\": the port must be 0 to 65535 in decimal "
                 "digits", shown);
        return -EINVAL;
    }
    if (host[0] == '\0') {
        snprintf(err, errlen,
                 "listen \"%s\": empty host (write 0.0.0.0:%s or [::]:%s "
                 "for every address)", shown, port, port);
        return -EINVAL;
    }
    hints.ai_family = bracketed ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
                     | (bracketed ? AI_NUMERICHOST : 0);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 && bracketed) {
        snprintf(err, errlen,
                 "listen \"%s\": the host in brackets is not an IPv6 "
                 "address", shown);
        return -EINVAL;
    }
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", shown, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int
ioloop__accept(ioloop_loop_t *loop, int listen_fd)
{
    int fd;

    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0) {
        ioloop__metrics_count_accept(loop);
        return fd;
    }
    if (errno == EMFILE || errno == ENFILE) {
        return shed_connection(loop, listen_fd, errno);
    }
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

int
ioloop__accept_batch(ioloop_loop_t *loop, int listen_fd, int *fds, int max)
{
    int n = 0;

    while (n < max) {
        int fd = ioloop__accept(loop, listen_fd);

        if (fd < 0) {
            return n > 0 ? n : (fd == -EAGAIN ? 0 : fd);
        }
        fds[n++] = fd;
    }
    return n;
}

int
ioloop__listen_unix(ioloop_loop_t *loop, const char *path, unsigned mode,
                    int backlog, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    char shown[256];
    int fd, rc;

    ioloop__escape_line(shown, sizeof(shown), path);

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "listen unix:%s: path longer than %zu bytes",
                 shown, sizeof(sun.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    if (check_mode) {
        return check_listener(loop, AF_UNIX, path);
    }
    fd = from_source(loop, IOLOOP_LISTENER_UNIX, path, backlog, mode, err,
                     errlen);
    if (fd != IOLOOP_LISTENER_NONE) {
        return fd;
    }
    strcpy(sun.sun_path, path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "listen unix:%s: exists and is not a socket",
                     shown);
            return -EEXIST;
        }
        if (unix_socket_alive(&sun)) {
            snprintf(err, errlen,
                     "listen unix:%s: Address already in use (a server "
                     "answers there)",
                     shown);
            return -EADDRINUSE;
        }
        unlink(path); /* stale: left by a process that died */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "listen unix:%s: socket: %s", shown,
                 strerror(-rc));
        return rc;
    }
    if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
        || (mode != 0 && chmod(path, (mode_t) mode) < 0)
        || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        rc = -errno;
        snprintf(err, errlen, "listen unix:%s: %s", shown, strerror(-rc));
        close(fd);
        return rc;
    }
    return listening(loop, fd, err, errlen);
}

int
ioloop__listeners_stop(ioloop_loop_t *loop, const struct ioloop_owner *owner)
{
    struct net_state *ns = net_state(loop, false);
    int n = 0;

    for (size_t i = 0; ns != NULL && i < ns->nhanded; i++) {
        if (ns->handed[i].owner == owner
            && ioloop_remove_handler(loop, ns->handed[i].fd) == 0) {
            n++;
        }
    }
    return n;
}

size_t
ioloop__listeners_release(ioloop_loop_t *loop,
                          const struct ioloop_owner *owner)
{
    struct net_state *ns = net_state(loop, false);
    size_t closed = 0;

    for (size_t i = 0; ns != NULL && i < ns->nhanded;) {
        struct handed *h = &ns->handed[i];
        struct stat st;

        if (h->owner != owner) {
            i++;
            continue;
        }
        if (fstat(h->fd, &st) == 0 && S_ISSOCK(st.st_mode)
            && st.st_dev == h->dev && st.st_ino == h->ino) {
            ioloop_remove_handler(loop, h->fd);
            close(h->fd);
            closed++;
        }
        *h = ns->handed[--ns->nhanded];
    }
    return closed;
}

/* A listener fd is ready for the current owner: remembers it, opens the
 * loop's reserve and logs "listening on". Returns fd, or -errno (ENOMEM)
 * with fd closed and err set. */
static int
listening(ioloop_loop_t *loop, int fd, char *err, size_t errlen)
{
    struct net_state *ns = net_state(loop, true);
    int rc = ns != NULL ? remember(ns, loop, fd) : -ENOMEM;

    if (rc < 0) {
        snprintf(err, errlen, "listen: %s", strerror(-rc));
        close(fd);
        return rc;
    }
    ensure_reserve(ns);
    log_listening(loop, fd);
    return fd;
}

/* The loop's state; made on first use when create is set (NULL on
 * ENOMEM), else NULL when the loop has none. */
static struct net_state *
net_state(ioloop_loop_t *loop, bool create)
{
    struct net_state *ns = ioloop__slot(loop, IOLOOP_SLOT_NET);

    if (ns == NULL && create) {
        ns = calloc(1, sizeof(*ns));
        if (ns == NULL) {
            return NULL;
        }
        ns->reserve_fd = -1;
        ns->last_shed_log = -IOLOOP_NS_PER_S;
        ioloop__slot_set(loop, IOLOOP_SLOT_NET, ns, free_net_state);
    }
    return ns;
}

/* ioloop_loop_free: the listeners are their owners' to close. */
static void
free_net_state(ioloop_loop_t *loop, void *data)
{
    struct net_state *ns = data;

    (void) loop;
    if (ns->reserve_fd >= 0) {
        close(ns->reserve_fd);
    }
    free(ns->handed);
    free(ns);
}

/* Notes that the current owner got listener fd. Returns 0 or -errno. */
static int
remember(struct net_state *ns, ioloop_loop_t *loop, int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (ns->nhanded == ns->handed_cap) {
        size_t cap = ns->handed_cap > 0 ? ns->handed_cap * 2 : 8;
        struct handed *v = realloc(ns->handed, cap * sizeof(*v));

        if (v == NULL) {
            return -ENOMEM;
        }
        ns->handed = v;
        ns->handed_cap = cap;
    }
    ns->handed[ns->nhanded++] = (struct handed){
        fd, ioloop__current_owner(loop), st.st_dev, st.st_ino};
    return 0;
}

/* Logs "listening on ADDR:PORT" (or unix:PATH) as the current owner. */
static void
log_listening(ioloop_loop_t *loop, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char shown[300];

    if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
        return;
    }
    if (ss.ss_family == AF_UNIX) {
        snprintf(shown, sizeof(shown), "unix:%s",
                 ((struct sockaddr_un *) &ss)->sun_path);
    } else {
        format_sockaddr((struct sockaddr *) &ss, shown, sizeof(shown));
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, ioloop__owner_name(loop), "listening on %s",
               shown);
}

/* Whether a server accepts connections on the socket file at sun. */
static int
unix_socket_alive(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int alive;

    if (fd < 0) {
        return 1; /* cannot tell: do not remove it */
    }
    alive = connect(fd, (const struct sockaddr *) sun, sizeof(*sun)) == 0
            || errno != ECONNREFUSED;
    close(fd);
    return alive;
}

/* Opens the spare fd that lets accept() shed a connection on EMFILE. */
static void
ensure_reserve(struct net_state *ns)
{
    if (ns->reserve_fd < 0) {
        ns->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

/*
 * Out of fds (the nginx and libuv trick): free the reserve fd, accept the
 * pending connection and close it at once, so the client is not left
 * hanging and a level-triggered listener does not spin; then take the
 * reserve back. Returns -err.
 */
static int
shed_connection(ioloop_loop_t *loop, int listen_fd, int err)
{
    struct net_state *ns = net_state(loop, false);
    ioloop_time_t now = ioloop_time(loop);
    int fd;

    if (ns == NULL) {
        return -err; /* no listener of ours on this loop: no reserve */
    }
    if (ns->reserve_fd >= 0) {
        close(ns->reserve_fd);
        ns->reserve_fd = -1;
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
        }
        ensure_reserve(ns);
    }
    if (now - ns->last_shed_log >= IOLOOP_NS_PER_S) {
        ns->last_shed_log = now;
        IOLOOP_LOG(IOLOOP_LOG_WARN, ioloop__owner_name(loop),
                   "accept: %s: closing new connections until fds are "
                   "freed (raise the fd limit?)",
                   strerror(err));
    }
    return -err;
}

/*
 * --check: the address was valid; hands the plugin a socket of its family
 * that is neither bound nor listening, so that its init goes on as in a
 * start (add_handler accepts it) and its fini closes it.
 */
static int
check_listener(ioloop_loop_t *loop, int family, const char *shown)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    IOLOOP_LOG(IOLOOP_LOG_DEBUG, ioloop__owner_name(loop),
               "check: would listen on %s", shown);
    return fd;
}

/*
 * "h:p" or "[v6]:p" -> host (copied), port (points into addr) and whether
 * the host was in brackets. A bare IPv6 address (two colons or more
 * outside brackets) is refused. Returns 0 or -1.
 */
static int
split_host_port(const char *addr, char *host, size_t hostlen,
                const char **port, int *bracketed)
{
    const char *colon, *h = addr;
    size_t hlen;

    *bracketed = addr[0] == '[';
    if (*bracketed) {
        const char *close = strchr(addr, ']');

        if (close == NULL || close[1] != ':') {
            return -1;
        }
        h = addr + 1;
        hlen = (size_t) (close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t) (colon - addr))) {
            return -1; /* a bare IPv6 address needs brackets */
        }
        hlen = (size_t) (colon - addr);
    }
    if (hlen >= hostlen) {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

/* "0" to "65535", decimal digits only (no sign, space or 0x): the value,
 * or -1. Leading zeros are harmless and accepted. */
static int
parse_port(const char *s)
{
    long v = 0;

    if (*s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        v = v * 10 + (*s - '0');
        if (v > 65535) {
            return -1;
        }
    }
    return (int) v;
}

static void
format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (getnameinfo(sa, sa->sa_family == AF_INET6
                            ? sizeof(struct sockaddr_in6)
                            : sizeof(struct sockaddr_in),
                    host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
             serv);
}
