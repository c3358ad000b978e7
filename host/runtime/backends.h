/*
 * host/runtime/backends.h: choosing, listing and live-swapping poller backends,
 * by name, from a folder of backend .so files.
 */
#ifndef IOLOOP_HOST_BACKENDS_H
#define IOLOOP_HOST_BACKENDS_H

#include <stddef.h>
#include <stdio.h>

#include "loader.h"
#include "loop.h"

/*
 * Tries names in order: the first backend that loads, passes the ABI
 * checks and creates its kernel state wins, and a loop is made on it.
 * When one does, each earlier failure is logged at info with its reason;
 * when none does, err gives every reason in one line. Returns 0 or -1.
 */
int ioloop__backend_choose(char *const *names, size_t n, const char *dir,
                           struct ioloop_backend_lib *lib,
                           ioloop_loop_t **loop, char *err, size_t errlen);

/*
 * Checks that every one of names (the manifest's key, e.g. "backend_swap")
 * is a backend .so of dir that passes the ABI checks, without creating
 * anything. Returns 0, or -1 with err = "<key>: <reason>".
 */
int ioloop__backend_check_names(char *const *names, size_t n,
                                const char *dir, const char *key, char *err,
                                size_t errlen);

/*
 * Moves a running loop onto backend name (loaded from dir): every handler
 * is re-registered with its mask, the old state destroyed and the old .so
 * closed; *lib then describes the new one. On failure the loop goes on
 * with the old backend. Returns 0 or -1 with err set.
 */
int ioloop__backend_swap(ioloop_loop_t *loop, struct ioloop_backend_lib *lib,
                         const char *dir, const char *name, char *err,
                         size_t errlen);

/*
 * Prints every backend .so of dir: name, ABI version, and whether it can
 * start here (and why not). Returns the number found.
 */
int ioloop__backend_list(const char *dir, FILE *out);

#endif /* IOLOOP_HOST_BACKENDS_H */
