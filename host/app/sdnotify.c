/* host/app/sdnotify.c: sd_notify(3) datagrams to $NOTIFY_SOCKET. */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int
ioloop__sd_notify(const char *state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = getenv("NOTIFY_SOCKET");
    socklen_t salen;
    size_t len;
    ssize_t n;
    int fd, rc = 1;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    if (path[0] != '/' && path[0] != '@') {
        return -EAFNOSUPPORT;
    }
    /* A path needs its NUL inside sun_path; an abstract name has none. */
    len = strlen(path);
    if (len > sizeof(sun.sun_path) - (path[0] == '/')) {
        return -ENAMETOOLONG;
    }
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@') {
        sun.sun_path[0] = '\0';
    }
    salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len
                         + (path[0] == '/'));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    do {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                   (struct sockaddr *) &sun, salen);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        rc = -errno;
    }
    close(fd);
    return rc;
}

int
ioloop__sd_notifyf(const char *fmt, ...)
{
    char state[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(state, sizeof(state), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof(state)) {
        return n < 0 ? -EINVAL : -EMSGSIZE;
    }
    return ioloop__sd_notify(state);
}

int
ioloop__sd_notify_reloading(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ioloop__sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
                              (unsigned long long) ts.tv_sec * 1000000ULL
                                  + (unsigned long long) ts.tv_nsec / 1000);
}
