/* host/app/listenfds.c: sockets passed by the service manager (LISTEN_FDS). */
#include "listenfds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* One passed fd, as found at start-up. */
struct passed {
    int fd;
    const char *name;             /* from LISTEN_FDNAMES, or "unknown" */
    struct sockaddr_storage addr; /* getsockname(); AF_UNSPEC: unknown */
    bool listening;               /* a listening stream socket */
    bool taken;                   /* matched at least once */
    bool warned;                  /* reported unused */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool parsed;
static struct passed *passed; /* npassed entries */
static int npassed;
static char *names;           /* the LISTEN_FDNAMES copy names point into */

static void parse_locked(void);
static void add_passed(int fd, const char *name);
static int parse_number(const char *s, long *out);
static bool same_tcp(const struct sockaddr_storage *have,
                     const struct sockaddr *want, socklen_t len);
static int take_locked(struct passed *p);
static void describe(const struct passed *p, char *buf, size_t len);

int
ioloop__listenfds_init(void)
{
    int n;

    pthread_mutex_lock(&lock);
    if (!parsed) {
        parse_locked();
    }
    n = npassed;
    pthread_mutex_unlock(&lock);
    return n;
}

int
ioloop__listenfds_take_tcp(const struct sockaddr *addr, socklen_t len)
{
    int fd = -1;

    pthread_mutex_lock(&lock);
    if (!parsed) {
        parse_locked();
    }
    for (int i = 0; i < npassed; i++) {
        if (passed[i].listening && same_tcp(&passed[i].addr, addr, len)) {
            fd = take_locked(&passed[i]);
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

int
ioloop__listenfds_take_unix(const char *path)
{
    int fd = -1;

    pthread_mutex_lock(&lock);
    if (!parsed) {
        parse_locked();
    }
    for (int i = 0; i < npassed; i++) {
        const struct sockaddr_un *sun = (const void *) &passed[i].addr;

        /* The storage is zeroed past what getsockname wrote: a path of
         * sizeof(sun_path) bytes is still NUL-terminated here. */
        if (passed[i].listening && sun->sun_family == AF_UNIX
            && sun->sun_path[0] != '\0'
            && strcmp(sun->sun_path, path) == 0) {
            fd = take_locked(&passed[i]);
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

int
ioloop__listenfds_warn_unused(void)
{
    char shown[160];
    int unused = 0;

    pthread_mutex_lock(&lock);
    if (!parsed) {
        parse_locked();
    }
    for (int i = 0; i < npassed; i++) {
        struct passed *p = &passed[i];

        if (p->taken) {
            continue;
        }
        unused++;
        if (!p->warned) {
            p->warned = true;
            describe(p, shown, sizeof(shown));
            IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                       "socket activation: fd %d \"%s\" (%s) matches no "
                       "listener of the manifest; it stays open, unused",
                       p->fd, p->name, shown);
        }
    }
    pthread_mutex_unlock(&lock);
    return unused;
}

/*
 * Fills the table from the environment (see ioloop__listenfds_init) and
 * removes the variables, whatever they held.
 */
static void
parse_locked(void)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    const char *names_s = getenv("LISTEN_FDNAMES");
    char *next;
    long pid, n;

    parsed = true;
    if (fds_s == NULL) {
        goto out;
    }
    if (pid_s == NULL || parse_number(pid_s, &pid) < 0
        || parse_number(fds_s, &n) < 0
        || n > INT_MAX - IOLOOP_LISTEN_FDS_START) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "socket activation: ignoring malformed LISTEN_PID=%s "
                   "LISTEN_FDS=%s",
                   pid_s != NULL ? pid_s : "(unset)", fds_s);
        goto out;
    }
    if (pid != (long) getpid() || n == 0) {
        goto out; /* meant for another process (our parent) */
    }
    passed = calloc((size_t) n, sizeof(*passed));
    names = names_s != NULL ? strdup(names_s) : NULL;
    if (passed == NULL || (names_s != NULL && names == NULL)) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "socket activation: out of memory for %ld fds; "
                   "ignoring them", n);
        free(passed);
        free(names);
        passed = NULL;
        names = NULL;
        goto out;
    }
    next = names;
    for (int i = 0; i < (int) n; i++) {
        const char *name = next != NULL ? strsep(&next, ":") : NULL;

        add_passed(IOLOOP_LISTEN_FDS_START + i,
                   name != NULL && name[0] != '\0' ? name : "unknown");
    }

out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* Checks passed fd, marks it close-on-exec and appends it to the table. */
static void
add_passed(int fd, const char *name)
{
    struct passed *p = &passed[npassed];
    socklen_t len = sizeof(p->addr), optlen = sizeof(int);
    int flags, type = 0, accepting = 0;
    char shown[160];

    flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "socket activation: fd %d \"%s\": %s; skipped", fd, name,
                   strerror(errno));
        return;
    }
    p->fd = fd;
    p->name = name;
    if (getsockname(fd, (struct sockaddr *) &p->addr, &len) < 0) {
        memset(&p->addr, 0, sizeof(p->addr));
    }
    p->listening =
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) == 0
        && type == SOCK_STREAM
        && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &optlen)
               == 0
        && accepting;
    describe(p, shown, sizeof(shown));
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "socket activation: fd %d \"%s\" is %s", fd, name, shown);
    npassed++;
}

/* Parses a whole decimal number >= 0 into *out; 0 or -1. */
static int
parse_number(const char *s, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 ? 0
                                                                   : -1;
}

/*
 * Whether have (a passed socket's name) is exactly want (len bytes from
 * getaddrinfo): family, address, port and IPv6 scope. Port 0 never
 * matches.
 */
static bool
same_tcp(const struct sockaddr_storage *have, const struct sockaddr *want,
         socklen_t len)
{
    if (want->sa_family != have->ss_family) {
        return false;
    }
    if (want->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const void *) have;
        const struct sockaddr_in *b = (const void *) want;

        return b->sin_port != 0 && a->sin_port == b->sin_port
               && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (want->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const void *) have;
        const struct sockaddr_in6 *b = (const void *) want;

        return b->sin6_port != 0 && a->sin6_port == b->sin6_port
               && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(b->sin6_addr))
                      == 0
               && a->sin6_scope_id == b->sin6_scope_id;
    }
    return false;
}

/*
 * A non-blocking, close-on-exec dup of p's fd, or -1 (logged). The first
 * take is logged at info.
 */
static int
take_locked(struct passed *p)
{
    int fd, flags, saved;

    fd = fcntl(p->fd, F_DUPFD_CLOEXEC, IOLOOP_LISTEN_FDS_START);
    if (fd < 0 || (flags = fcntl(fd, F_GETFL)) < 0
        || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        saved = errno;
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host",
                   "socket activation: fd %d \"%s\": fcntl: %s", p->fd,
                   p->name, strerror(saved));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (!p->taken) {
        char shown[160];

        describe(p, shown, sizeof(shown));
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
                   "socket activation: fd %d \"%s\" serves %s (passed by "
                   "the service manager, not bound here)",
                   p->fd, p->name, shown);
    }
    p->taken = true;
    return fd;
}

/* "127.0.0.1:8888", "[::1]:8888", "unix:/run/x.sock", for log lines. */
static void
describe(const struct passed *p, char *buf, size_t len)
{
    const struct sockaddr_in *in = (const void *) &p->addr;
    const struct sockaddr_in6 *in6 = (const void *) &p->addr;
    const struct sockaddr_un *sun = (const void *) &p->addr;
    char host[INET6_ADDRSTRLEN];

    switch (p->addr.ss_family) {
    case AF_INET:
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    case AF_UNIX:
        snprintf(buf, len, "unix:%s%s", sun->sun_path[0] ? "" : "@",
                 sun->sun_path + (sun->sun_path[0] ? 0 : 1));
        break;
    default:
        snprintf(buf, len, "an fd of address family %d", p->addr.ss_family);
        break;
    }
    if (!p->listening) {
        size_t n = strlen(buf);

        snprintf(buf + n, len - n, ", not a listening stream socket");
    }
}
