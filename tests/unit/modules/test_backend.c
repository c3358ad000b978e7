/*
 * tests/unit/modules/test_backend.c: a backend that passes the ABI checks
 * but whose create() always fails (VARIANT_FAIL_CREATE), or that declares
 * another ABI major (VARIANT_MAJOR2). For the loader and CLI tests.
 */
#include <errno.h>
#include <stdio.h>

#include <ioloop/backend.h>

static void *
test_backend_create(unsigned size_hint, char *err, size_t errlen)
{
    (void) size_hint;
    snprintf(err, errlen, "test_backend: refused by design");
    errno = ENOSYS;
    return NULL;
}

static void
test_backend_destroy(void *state)
{
    (void) state;
}

static int
test_backend_add(void *state, int fd, unsigned events)
{
    (void) state;
    (void) fd;
    (void) events;
    return -ENOSYS;
}

static int
test_backend_modify(void *state, int fd, unsigned old_events,
                    unsigned new_events)
{
    (void) state;
    (void) fd;
    (void) old_events;
    (void) new_events;
    return -ENOSYS;
}

static int
test_backend_remove(void *state, int fd, unsigned old_events)
{
    (void) state;
    (void) fd;
    (void) old_events;
    return -ENOSYS;
}

static int
test_backend_poll(void *state, struct ioloop_event *events, int max,
                  int64_t timeout_ns)
{
    (void) state;
    (void) events;
    (void) max;
    (void) timeout_ns;
    return -ENOSYS;
}

IOLOOP_EXPORT const struct ioloop_backend ioloop_backend_v1 = {
#ifdef VARIANT_MAJOR2
    .abi_version = IOLOOP_ABI_VERSION(2, 0),
#else
    .abi_version = IOLOOP_BACKEND_ABI,
#endif
    .size = sizeof(struct ioloop_backend),
    .name = BACKEND_NAME,
    .create = test_backend_create,
    .destroy = test_backend_destroy,
    .add = test_backend_add,
    .modify = test_backend_modify,
    .remove = test_backend_remove,
    .poll = test_backend_poll,
};
