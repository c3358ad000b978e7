/* host/runtime/api.h: the host API table handed to every plugin's init. */
#ifndef IOLOOP_HOST_API_H
#define IOLOOP_HOST_API_H

#include <ioloop/plugin.h>

const struct ioloop_api *ioloop__api(void);

#endif /* IOLOOP_HOST_API_H */
