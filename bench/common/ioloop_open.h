/*
 * bench/common/ioloop_open.h: loads one of ioloop-host's backend .so
 * files through dlopen, as the host does, and makes loops on it.
 */
#ifndef IOLOOP_BENCH_IOLOOP_OPEN_H
#define IOLOOP_BENCH_IOLOOP_OPEN_H

#include "loader.h"
#include "loop.h"

/*
 * Opens dir/name.so with the host's loader (ABI checks included). Returns
 * 0, or -1 with the loader's reason in err.
 */
int bench_ioloop_open(const char *dir, const char *name,
                      struct ioloop_backend_lib *lib, char *err,
                      size_t errlen);

/* A loop on backend, or NULL with the reason in err. */
ioloop_loop_t *bench_ioloop_new(const struct ioloop_backend *backend,
                                char *err, size_t errlen);

#endif /* IOLOOP_BENCH_IOLOOP_OPEN_H */
