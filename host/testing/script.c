/* host/testing/script.c: the scripted backend of script.h. */
#include "script.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

#define SCRIPT_REGISTERED 0x80000000u /* interest[fd]: fd is registered */

static void *script_create(unsigned size_hint, char *err, size_t errlen);
static void script_destroy(void *state);
static int script_add(void *state, int fd, unsigned events);
static int script_modify(void *state, int fd, unsigned old_events,
                         unsigned new_events);
static int script_remove(void *state, int fd, unsigned old_events);
static int script_poll(void *state, struct ioloop_event *events, int max,
                       int64_t timeout_ns);
static int script_note(struct ioloop__script *s, int fd, unsigned mask);

const struct ioloop_backend ioloop__script_ops = {
    .abi_version = IOLOOP_BACKEND_ABI,
    .size = sizeof(struct ioloop_backend),
    .name = "script",
    .create = script_create,
    .destroy = script_destroy,
    .add = script_add,
    .modify = script_modify,
    .remove = script_remove,
    .poll = script_poll,
};

/* The backend ABI's create() takes no argument: the harness hands its
 * state over here, just before it makes the loop. */
static struct ioloop__script *next_script;

void
ioloop__script_next(struct ioloop__script *s)
{
    next_script = s;
}

int
ioloop__script_fire(struct ioloop__script *s, int fd, unsigned events)
{
    if (s->nfired == s->capfired) {
        size_t cap = s->capfired ? 2 * s->capfired : 16;
        struct ioloop_event *v = realloc(s->fired, cap * sizeof(*v));

        if (v == NULL) {
            return -ENOMEM;
        }
        s->fired = v;
        s->capfired = cap;
    }
    s->fired[s->nfired++] = (struct ioloop_event){fd, events};
    return 0;
}

int
ioloop__script_interest(const struct ioloop__script *s, int fd)
{
    if (fd < 0 || (size_t) fd >= s->ninterest
        || !(s->interest[fd] & SCRIPT_REGISTERED)) {
        return -1;
    }
    return (int) (s->interest[fd] & ~SCRIPT_REGISTERED);
}

void
ioloop__script_free(struct ioloop__script *s)
{
    free(s->interest);
    free(s->fired);
    s->interest = NULL;
    s->fired = NULL;
    s->ninterest = s->nfired = s->capfired = 0;
}

static void *
script_create(unsigned size_hint, char *err, size_t errlen)
{
    struct ioloop__script *s = next_script;

    next_script = NULL;
    if (s == NULL) {
        errno = EINVAL; /* created without ioloop__script_next */
        return NULL;
    }
    if (s->inner != NULL) {
        s->inner_state = s->inner->create(size_hint, err, errlen);
        if (s->inner_state == NULL) {
            return NULL;
        }
    }
    s->asked_ns = -1;
    return s;
}

static void
script_destroy(void *state)
{
    struct ioloop__script *s = state;

    if (s->inner != NULL) {
        s->inner->destroy(s->inner_state);
        s->inner_state = NULL;
    }
}

static int
script_add(void *state, int fd, unsigned events)
{
    struct ioloop__script *s = state;
    int rc;

    if (s->inner != NULL) {
        rc = s->inner->add(s->inner_state, fd, events);
        if (rc < 0) {
            return rc;
        }
    }
    rc = script_note(s, fd, events | SCRIPT_REGISTERED);
    if (rc < 0 && s->inner != NULL) {
        s->inner->remove(s->inner_state, fd, events);
    }
    return rc;
}

static int
script_modify(void *state, int fd, unsigned old_events, unsigned new_events)
{
    struct ioloop__script *s = state;
    int rc;

    if (s->inner != NULL) {
        rc = s->inner->modify(s->inner_state, fd, old_events, new_events);
        if (rc < 0) {
            return rc;
        }
    }
    return script_note(s, fd, new_events | SCRIPT_REGISTERED);
}

static int
script_remove(void *state, int fd, unsigned old_events)
{
    struct ioloop__script *s = state;
    int rc = 0;

    if (s->inner != NULL) {
        rc = s->inner->remove(s->inner_state, fd, old_events);
    }
    if (fd >= 0 && (size_t) fd < s->ninterest) {
        s->interest[fd] = 0;
    }
    return rc;
}

/*
 * The inner backend's events (waiting at most wait_ns, and not at all when
 * the loop has work due), then the fired ones, which stay queued when
 * events[] is full. Never advances the clock: only the harness does.
 */
static int
script_poll(void *state, struct ioloop_event *events, int max,
            int64_t timeout_ns)
{
    struct ioloop__script *s = state;
    size_t take;
    int n = 0;

    s->asked_ns = timeout_ns;
    if (s->inner != NULL) {
        n = s->inner->poll(s->inner_state, events, max,
                           timeout_ns == 0 || s->nfired > 0 ? 0
                                                            : s->wait_ns);
        if (n < 0) {
            ioloop_stop(s->loop);
            return n;
        }
    }
    take = s->nfired < (size_t) (max - n) ? s->nfired : (size_t) (max - n);
    if (take > 0) {
        memcpy(events + n, s->fired, take * sizeof(*events));
        memmove(s->fired, s->fired + take,
                (s->nfired - take) * sizeof(*events));
        s->nfired -= take;
    }
    ioloop_stop(s->loop);
    return n + (int) take;
}

/* interest[fd] = mask, growing the table. 0 or -ENOMEM. */
static int
script_note(struct ioloop__script *s, int fd, unsigned mask)
{
    if (fd < 0) {
        return -EBADF;
    }
    if ((size_t) fd >= s->ninterest) {
        size_t n = (size_t) fd + 64;
        unsigned *v = realloc(s->interest, n * sizeof(*v));

        if (v == NULL) {
            return -ENOMEM;
        }
        memset(v + s->ninterest, 0, (n - s->ninterest) * sizeof(*v));
        s->interest = v;
        s->ninterest = n;
    }
    s->interest[fd] = mask;
    return 0;
}
