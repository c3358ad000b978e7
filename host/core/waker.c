/* host/core/waker.c: eventfd waker on Linux, self-pipe elsewhere. */
#include "waker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/eventfd.h>
#endif

int
ioloop__waker_open(struct ioloop_waker *w)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    if (fd < 0) {
        return -errno;
    }
    w->read_fd = fd;
    w->write_fd = fd;
#else
    int fds[2];

    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        return -errno;
    }
    w->read_fd = fds[0];
    w->write_fd = fds[1];
#endif
    return 0;
}

void
ioloop__waker_close(struct ioloop_waker *w)
{
    if (w->write_fd >= 0 && w->write_fd != w->read_fd) {
        close(w->write_fd);
    }
    if (w->read_fd >= 0) {
        close(w->read_fd);
    }
    w->read_fd = -1;
    w->write_fd = -1;
}

void
ioloop__waker_wake(const struct ioloop_waker *w)
{
    int saved = errno;
    uint64_t one = 1;

    /* EAGAIN means a wake-up is already pending: good enough. */
    if (write(w->write_fd, &one, w->write_fd == w->read_fd ? 8 : 1) < 0) {
        errno = saved;
        return;
    }
    errno = saved;
}

void
ioloop__waker_drain(const struct ioloop_waker *w)
{
    char buf[64];

    while (read(w->read_fd, buf, sizeof(buf)) > 0) {
        if (w->read_fd == w->write_fd) {
            break; /* an eventfd is reset by one read */
        }
    }
}
