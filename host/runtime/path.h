/*
 * host/runtime/path.h: file names of the .so files the loader opens. The
 * default folders (relative to the executable) are the process's choice:
 * host/app/paths.h.
 */
#ifndef IOLOOP_HOST_PATH_H
#define IOLOOP_HOST_PATH_H

#include <stddef.h>

/* Joins dir and name with one '/'. Returns 0, or -ENAMETOOLONG. */
int ioloop__path_join(char *buf, size_t len, const char *dir,
                      const char *name);

#endif /* IOLOOP_HOST_PATH_H */
