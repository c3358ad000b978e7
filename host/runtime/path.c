/* host/runtime/path.c: file names of the .so files the loader opens. */
#include "path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
ioloop__path_join(char *buf, size_t len, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    int n;

    while (dl > 1 && dir[dl - 1] == '/') {
        dl--;
    }
    n = snprintf(buf, len, "%.*s/%s", (int) dl, dir, name);
    return (n < 0 || (size_t) n >= len) ? -ENAMETOOLONG : 0;
}
