/* host/app/file_read.c: a whole, bounded file read into memory. */
#include "file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int
ioloop__file_read(const char *path, size_t max, char **text, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    char *nbuf;
    size_t cap = 0;
    size_t n = 0;
    ssize_t r;
    int fd;
    int e;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        e = EISDIR;
        goto fail;
    }

    for ( ;; ) {
        if (n == cap) {
            if (cap >= max) {
                e = EFBIG;
                goto fail;
            }
            cap = cap == 0 ? 4096 : cap * 2;
            nbuf = realloc(buf, cap);
            if (nbuf == NULL) {
                e = ENOMEM;
                goto fail;
            }
            buf = nbuf;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            e = errno;
            goto fail;
        }
        if (r == 0) {
            break;
        }
        n += (size_t) r;
    }

    close(fd);
    *text = buf;
    *len = n;
    return 0;

fail:
    close(fd);
    free(buf);
    return -e;
}
