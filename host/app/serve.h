/*
 * host/app/serve.h: one serving process, the host without workers or one
 * worker: runs every plugin on a loop until a stop, with graceful drain.
 */
#ifndef IOLOOP_HOST_SERVE_H
#define IOLOOP_HOST_SERVE_H

#include "backends.h"
#include "setup.h"

/*
 * Subscribes the process signals (SIGTERM/SIGINT: graceful stop, a second
 * SIGINT: at once; SIGUSR2: live backend swap), runs every plugin's init
 * (on failure: one line on stderr; in a worker, the reason goes to the
 * master instead, which logs it), runs the loop, then drains and stops
 * every plugin. Returns the exit status: 0 after a stop, 1 when an init
 * failed.
 */
int ioloop__serve(struct ioloop_setup *s, ioloop_loop_t *loop,
                  struct ioloop_backend_lib *backend);

#endif /* IOLOOP_HOST_SERVE_H */
