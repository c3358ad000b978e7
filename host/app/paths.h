/*
 * host/app/paths.h: where the host finds its defaults, relative to its own
 * executable, never the working directory: the build tree keeps backends/
 * and plugins/ beside ioloop-host; an install keeps them in
 * <prefix>/lib/ioloop/.
 */
#ifndef IOLOOP_HOST_PATHS_H
#define IOLOOP_HOST_PATHS_H

#include <stddef.h>

/*
 * Writes the default folder for kind ("backends" or "plugins") into buf:
 * <exe dir>/<kind> when it exists, else <exe dir>/../lib/ioloop/<kind>.
 * Returns 0, or -errno.
 */
int ioloop__default_dir(const char *kind, char *buf, size_t len);

/*
 * Writes the default manifest path into buf: <exe dir>/../config/host.json
 * (the source tree) when it exists, else <exe dir>/../etc/ioloop/host.json.
 */
int ioloop__default_config(char *buf, size_t len);

#endif /* IOLOOP_HOST_PATHS_H */
