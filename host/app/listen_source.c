/* host/app/listen_source.c: the process model's listener source for net.c. */
#include "listen_source.h"

#include <sys/socket.h>

#include "broker.h"
#include "listenfds.h"

int
ioloop__listen_source(const struct ioloop_listener_request *req, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd;

    if (ioloop__broker_fd() >= 0) {
        return ioloop__broker_listen(req->kind == IOLOOP_LISTENER_TCP
                                         ? IOLOOP_BROKER_TCP
                                         : IOLOOP_BROKER_UNIX,
                                     req->owner, req->addr, req->backlog,
                                     req->flags, err, errlen);
    }
    if (ioloop__listenfds_init() == 0) {
        return IOLOOP_LISTENER_NONE; /* nothing passed: no parse needed */
    }
    if (req->kind == IOLOOP_LISTENER_UNIX) {
        fd = ioloop__listenfds_take_unix(req->addr);
    } else if (ioloop__listen_addr_parse(req->addr, &ss, &sslen, err, errlen)
               == 0) {
        fd = ioloop__listenfds_take_tcp((struct sockaddr *) &ss, sslen);
    } else {
        return IOLOOP_LISTENER_NONE; /* the helper reports the address */
    }
    return fd >= 0 ? fd : IOLOOP_LISTENER_NONE;
}
