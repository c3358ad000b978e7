/* bench/common/ioloop_open.c: backend .so and loop for the benchmarks. */
#include "ioloop_open.h"

#include <stdio.h>

#include "log.h"

int
bench_ioloop_open(const char *dir, const char *name,
                  struct ioloop_backend_lib *lib, char *err, size_t errlen)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s.so", dir, name);
    return ioloop__backend_open(path, lib, err, errlen);
}

ioloop_loop_t *
bench_ioloop_new(const struct ioloop_backend *backend, char *err,
                 size_t errlen)
{
    /* Warnings only: a benchmark prints its own table on stdout. */
    ioloop__log_threshold = IOLOOP_LOG_WARN;
    return ioloop_loop_new(backend, err, errlen);
}
