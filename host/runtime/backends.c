/* host/runtime/backends.c: backend selection, listing and live swap by name. */
#include "backends.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "path.h"

#define ERRLEN 2048

static int open_named(const char *dir, const char *name,
                      struct ioloop_backend_lib *lib, char *err,
                      size_t errlen);
static void log_skipped(char *tried);
static void list_available(const char *dir, char *buf, size_t len);
static int compare_names(const void *a, const void *b);

int
ioloop__backend_choose(char *const *names, size_t n, const char *dir,
                       struct ioloop_backend_lib *lib, ioloop_loop_t **loop,
                       char *err, size_t errlen)
{
    char reason[1024], tried[ERRLEN] = "";
    size_t used = 0;

    for (size_t i = 0; i < n; i++) {
        if (open_named(dir, names[i], lib, reason, sizeof(reason)) == 0) {
            *loop = ioloop_loop_new(lib->ops, reason, sizeof(reason));
            if (*loop != NULL) {
                log_skipped(tried);
                return 0;
            }
            ioloop__backend_close(lib);
        }
        if (n == 1) {
            snprintf(err, errlen, "backend: %s", reason);
            return -1;
        }
        /* One "name: reason" line per failed attempt. */
        used += (size_t) snprintf(tried + used, sizeof(tried) - used,
                                  "%s: %s\n", names[i], reason);
        if (used >= sizeof(tried)) {
            used = sizeof(tried) - 1;
        }
    }
    for (char *nl = strchr(tried, '\n'); nl != NULL; nl = strchr(nl, '\n')) {
        *nl = nl[1] ? ';' : '\0';
    }
    snprintf(err, errlen, "backend: no usable backend (%s)", tried);
    return -1;
}

int
ioloop__backend_check_names(char *const *names, size_t n, const char *dir,
                            const char *key, char *err, size_t errlen)
{
    struct ioloop_backend_lib lib;
    char reason[1024];

    for (size_t i = 0; i < n; i++) {
        if (open_named(dir, names[i], &lib, reason, sizeof(reason)) < 0) {
            snprintf(err, errlen, "%s: %s", key, reason);
            return -1;
        }
        ioloop__backend_close(&lib);
    }
    return 0;
}

int
ioloop__backend_swap(ioloop_loop_t *loop, struct ioloop_backend_lib *lib,
                     const char *dir, const char *name, char *err,
                     size_t errlen)
{
    struct ioloop_backend_lib next;
    char reason[1024];
    const char *from = lib->ops->name;

    if (open_named(dir, name, &next, reason, sizeof(reason)) < 0
        || ioloop__switch_backend(loop, next.ops, reason, sizeof(reason))
               < 0) {
        if (next.dl != NULL) {
            ioloop__backend_close(&next);
        }
        snprintf(err, errlen, "backend swap %s -> %s failed: %s", from, name,
                 reason);
        return -1;
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "backend swapped: %s -> %s (%zu handlers moved)", from, name,
               ioloop__handler_count(loop));
    ioloop__backend_close(lib);
    *lib = next;
    ioloop__metrics_note_backend(loop);
    return 0;
}

int
ioloop__backend_list(const char *dir, FILE *out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[256];
    int n = 0;

    fprintf(out, "backends in %s:\n", dir);
    while (d != NULL && (e = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(e->d_name);

        if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0) {
            names[n++] = strndup(e->d_name, len - 3);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    qsort(names, (size_t) n, sizeof(names[0]), compare_names);
    for (int i = 0; i < n; i++) {
        struct ioloop_backend_lib lib;
        char reason[1024];
        ioloop_loop_t *loop;

        if (names[i] == NULL) {
            continue;
        }
        if (open_named(dir, names[i], &lib, reason, sizeof(reason)) < 0) {
            fprintf(out, "  %-10s  -      no: %s\n", names[i], reason);
            free(names[i]);
            continue;
        }
        loop = ioloop_loop_new(lib.ops, reason, sizeof(reason));
        fprintf(out, "  %-10s  ABI %u.%u  %s%s\n", names[i],
                IOLOOP_ABI_MAJOR(lib.ops->abi_version),
                IOLOOP_ABI_MINOR(lib.ops->abi_version),
                loop != NULL ? "yes" : "no: ", loop != NULL ? "" : reason);
        ioloop_loop_free(loop);
        ioloop__backend_close(&lib);
        free(names[i]);
    }
    return n;
}

/* Opens dir/name.so, with a clear message for a name that has no file. */
static int
open_named(const char *dir, const char *name, struct ioloop_backend_lib *lib,
           char *err, size_t errlen)
{
    char path[PATH_MAX], file[NAME_MAX];

    memset(lib, 0, sizeof(*lib));
    snprintf(file, sizeof(file), "%s.so", name);
    if (ioloop__path_join(path, sizeof(path), dir, file) < 0) {
        snprintf(err, errlen, "%s: path too long", name);
        return -1;
    }
    if (access(path, F_OK) < 0) {
        char avail[512];

        list_available(dir, avail, sizeof(avail));
        snprintf(err, errlen,
                 "unknown backend \"%s\": no %s in %s (available: %s)", name,
                 file, dir, avail);
        return -1;
    }
    return ioloop__backend_open(path, lib, err, errlen);
}

/* Logs each "name: reason" line of tried as a skipped backend. */
static void
log_skipped(char *tried)
{
    char *save = NULL;

    for (char *line = strtok_r(tried, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');

        *colon = '\0';
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "backend %s unavailable:%s",
                   line, colon + 1);
    }
}

/* Comma-separated names of the *.so files in dir, or "none". */
static void
list_available(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t used = 0;

    buf[0] = '\0';
    while (d != NULL && (e = readdir(d)) != NULL && used < len) {
        size_t n = strlen(e->d_name);

        if (n > 3 && strcmp(e->d_name + n - 3, ".so") == 0) {
            used += (size_t) snprintf(buf + used, len - used, "%s%.*s",
                                      used ? ", " : "", (int) (n - 3),
                                      e->d_name);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (buf[0] == '\0') {
        snprintf(buf, len, "none");
    }
}

static int
compare_names(const void *a, const void *b)
{
    const char *x = *(char *const *) a, *y = *(char *const *) b;

    return strcmp(x ? x : "", y ? y : "");
}
