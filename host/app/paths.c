/* host/app/paths.c: default folders found from the executable's location. */
#include "paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int exe_dir(char *buf, size_t len);
static int first_existing(char *buf, size_t len, const char *a,
                          const char *b);

int
ioloop__default_dir(const char *kind, char *buf, size_t len)
{
    char dir[PATH_MAX], build[PATH_MAX], installed[PATH_MAX];
    int rc = exe_dir(dir, sizeof(dir));

    if (rc < 0) {
        return rc;
    }
    if (snprintf(build, sizeof(build), "%s/%s", dir, kind)
            >= (int) sizeof(build)
        || snprintf(installed, sizeof(installed), "%s/../lib/ioloop/%s", dir,
                    kind) >= (int) sizeof(installed)) {
        return -ENAMETOOLONG;
    }
    return first_existing(buf, len, build, installed);
}

int
ioloop__default_config(char *buf, size_t len)
{
    char dir[PATH_MAX], source[PATH_MAX], installed[PATH_MAX];
    int rc = exe_dir(dir, sizeof(dir));

    if (rc < 0) {
        return rc;
    }
    if (snprintf(source, sizeof(source), "%s/../config/host.json", dir)
            >= (int) sizeof(source)
        || snprintf(installed, sizeof(installed),
                    "%s/../etc/ioloop/host.json", dir)
               >= (int) sizeof(installed)) {
        return -ENAMETOOLONG;
    }
    return first_existing(buf, len, source, installed);
}

/* The folder of /proc/self/exe. */
static int
exe_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    char *slash;

    if (n < 0) {
        return -errno;
    }
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash == NULL) {
        return -ENOENT;
    }
    *slash = '\0';
    return 0;
}

/* Copies a into buf when it exists, else b (which may not exist). */
static int
first_existing(char *buf, size_t len, const char *a, const char *b)
{
    struct stat st;
    const char *pick = (stat(a, &st) == 0) ? a : b;

    if (strlen(pick) >= len) {
        return -ENAMETOOLONG;
    }
    strcpy(buf, pick);
    return 0;
}
