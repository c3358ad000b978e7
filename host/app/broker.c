/* host/app/broker.c: listeners bound by the master, passed to workers. */
#include "broker.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

struct request {
    uint32_t op;
    int32_t backlog;
    uint32_t flags;
    char owner[64]; /* the plugin instance asking */
    char addr[512];
};

struct reply {
    int32_t rc;
    char err[512];
};

/*
 * A listener the master keeps for its workers, one per instance and
 * address: the instances of every worker and generation with that name
 * share it, and two instances never do (two asking for port 0 get two
 * ports, two asking for the same port fail as they would in one process).
 */
struct listener {
    uint32_t op;
    uint32_t flags;
    char owner[64];
    char addr[512];
    int fd;
};

static int channel = -1;           /* worker: to the master */
static struct listener *listeners; /* master: bound so far */
static size_t nlisteners;

static int send_fd(int sock, const void *msg, size_t len, int fd);
static int find_or_bind(ioloop_loop_t *loop, const struct request *rq,
                        char *err, size_t errlen);

void
ioloop__broker_set(int fd)
{
    channel = fd;
}

int
ioloop__broker_fd(void)
{
    return channel;
}

int
ioloop__broker_listen(enum ioloop_broker_op op, const char *owner,
                      const char *addr, int backlog, unsigned flags,
                      char *err, size_t errlen)
{
    struct request rq = {.op = op, .backlog = backlog, .flags = flags};
    struct reply rp;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&rp, sizeof(rp)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control,
                         .msg_controllen = sizeof(control)};
    struct cmsghdr *c;
    ssize_t n;
    int fd = -1;

    if (strlen(addr) >= sizeof(rq.addr)) {
        snprintf(err, errlen, "listen: address too long");
        return -ENAMETOOLONG;
    }
    memcpy(rq.addr, addr, strlen(addr) + 1);
    snprintf(rq.owner, sizeof(rq.owner), "%s", owner);
    if (send(channel, &rq, sizeof(rq), MSG_NOSIGNAL) < 0) {
        snprintf(err, errlen, "listen %s: asking the master: %s", addr,
                 strerror(errno));
        return -errno;
    }
    do {
        n = recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t) sizeof(rp)) {
        snprintf(err, errlen, "listen %s: no answer from the master", addr);
        return -EPIPE;
    }
    for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        }
    }
    if (rp.rc < 0) {
        snprintf(err, errlen, "%s", rp.err);
        return rp.rc;
    }
    return fd >= 0 ? fd : -EPROTO;
}

void
ioloop__broker_note(enum ioloop_broker_op op, const char *text)
{
    struct request rq = {.op = op};

    snprintf(rq.addr, sizeof(rq.addr), "%s", text != NULL ? text : "");
    if (channel >= 0) {
        (void) send(channel, &rq, sizeof(rq), MSG_NOSIGNAL);
    }
}

int
ioloop__broker_serve(ioloop_loop_t *loop, int fd, char *note, size_t notelen)
{
    struct request rq;
    struct reply rp = {0};
    ssize_t n;
    int lfd;

    do {
        n = recv(fd, &rq, sizeof(rq), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t) sizeof(rq)) {
        return -1; /* the worker exited (0) or broke the protocol */
    }
    rq.addr[sizeof(rq.addr) - 1] = '\0';
    rq.owner[sizeof(rq.owner) - 1] = '\0';
    if (rq.op == IOLOOP_BROKER_READY || rq.op == IOLOOP_BROKER_FAILED) {
        snprintf(note, notelen, "%s", rq.addr);
        return (int) rq.op;
    }
    if (rq.op != IOLOOP_BROKER_TCP && rq.op != IOLOOP_BROKER_UNIX) {
        return -1;
    }
    lfd = find_or_bind(loop, &rq, rp.err, sizeof(rp.err));
    rp.rc = lfd < 0 ? lfd : 0;
    return send_fd(fd, &rp, sizeof(rp), lfd) < 0 ? -1 : (int) rq.op;
}

void
ioloop__broker_close_owner(const char *owner)
{
    char name[sizeof(listeners[0].owner)];
    size_t kept = 0;

    snprintf(name, sizeof(name), "%s", owner); /* cut as requests are */
    for (size_t i = 0; i < nlisteners; i++) {
        if (strcmp(listeners[i].owner, name) == 0) {
            close(listeners[i].fd);
        } else {
            listeners[kept++] = listeners[i];
        }
    }
    nlisteners = kept;
}

void
ioloop__broker_close_all(void)
{
    for (size_t i = 0; i < nlisteners; i++) {
        close(listeners[i].fd);
    }
    free(listeners);
    listeners = NULL;
    nlisteners = 0;
}

/* The kept listener for the request, bound now if it is new. */
static int
find_or_bind(ioloop_loop_t *loop, const struct request *rq, char *err,
             size_t errlen)
{
    struct listener *l;
    int fd;

    for (size_t i = 0; i < nlisteners; i++) {
        l = &listeners[i];
        if (l->op == rq->op && l->flags == rq->flags
            && strcmp(l->owner, rq->owner) == 0
            && strcmp(l->addr, rq->addr) == 0) {
            return l->fd;
        }
    }
    l = realloc(listeners, (nlisteners + 1) * sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "listen: out of memory");
        return -ENOMEM;
    }
    listeners = l;
    fd = rq->op == IOLOOP_BROKER_TCP
             ? ioloop__listen_tcp(loop, rq->addr, rq->backlog, rq->flags, err,
                                  errlen)
             : ioloop__listen_unix(loop, rq->addr, rq->flags, rq->backlog,
                                   err, errlen);
    if (fd < 0) {
        return fd;
    }
    l = &listeners[nlisteners++];
    l->op = rq->op;
    l->flags = rq->flags;
    memcpy(l->addr, rq->addr, sizeof(l->addr));
    memcpy(l->owner, rq->owner, sizeof(l->owner));
    l->fd = fd;
    return fd;
}

/* Sends msg with fd attached (none when fd < 0). */
static int
send_fd(int sock, const void *msg, size_t len, int fd)
{
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {(void *) msg, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *c;

    if (fd >= 0) {
        m.msg_control = control;
        m.msg_controllen = sizeof(control);
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(fd));
    }
    return sendmsg(sock, &m, MSG_NOSIGNAL) < 0 ? -1 : 0;
}
