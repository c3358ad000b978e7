/* tests/fakes/fake_backend.c: the scripted backend of fake_backend.h. */
#include "fake_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int64_t fake_now;
static struct fake_backend *last;

static void *
fake_create(unsigned hint, char *err, size_t errlen)
{
    (void) hint;
    (void) err;
    (void) errlen;
    last = calloc(1, sizeof(*last));
    if (last != NULL) {
        last->fail_add_fd = -1;
    }
    return last;
}

static void
fake_destroy(void *state)
{
    if (state == last) {
        last = NULL;
    }
    free(state);
}

static int
fake_add(void *state, int fd, unsigned events)
{
    struct fake_backend *b = state;

    /* The loop's waker is a real fd: accept any number, watch the small. */
    if (fd == b->fail_add_fd) {
        return -EINVAL;
    }
    if (fd < FAKE_MAX_FD) {
        b->registered[fd] = true;
        b->interest[fd] = events;
    }
    return 0;
}

static int
fake_modify(void *state, int fd, unsigned old_events, unsigned new_events)
{
    struct fake_backend *b = state;

    (void) old_events;
    if (fd < FAKE_MAX_FD) {
        b->interest[fd] = new_events;
    }
    return 0;
}

static int
fake_remove(void *state, int fd, unsigned old_events)
{
    struct fake_backend *b = state;

    (void) old_events;
    if (fd < FAKE_MAX_FD) {
        b->registered[fd] = false;
        b->interest[fd] = 0;
    }
    return 0;
}

static int
fake_poll(void *state, struct ioloop_event *events, int max,
          int64_t timeout_ns)
{
    struct fake_backend *b = state;
    int n = 0;

    b->polls++;
    b->last_timeout = timeout_ns;
    for (int i = 0; i < b->nscript && n < max; i++) {
        events[n++] = b->script[i];
    }
    b->nscript = 0;
    for (int fd = 0; fd < FAKE_MAX_FD && n < max; fd++) {
        unsigned ready = b->level[fd] & (b->interest[fd] | IOLOOP_ERROR
                                         | IOLOOP_HUP);

        if (b->registered[fd] && ready) {
            events[n++] = (struct ioloop_event){fd, ready};
        }
    }
    if (n == 0 && timeout_ns > 0) {
        fake_now += timeout_ns; /* slept until the timeout */
    } else if (n > 0) {
        fake_now += 1000; /* handling events takes a little time */
    }
    return n;
}

const struct ioloop_backend fake_backend_ops = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "fake",
    .create = fake_create,
    .destroy = fake_destroy,
    .add = fake_add,
    .modify = fake_modify,
    .remove = fake_remove,
    .poll = fake_poll,
};

struct fake_backend *
fake_backend_last(void)
{
    return last;
}

int64_t
fake_clock(void *arg)
{
    (void) arg;
    return fake_now;
}

void
fake_backend_script(struct fake_backend *b, int fd, unsigned events)
{
    b->script[b->nscript++] = (struct ioloop_event){fd, events};
}
