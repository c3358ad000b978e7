/*
 * tests/fakes/fake_backend.h: a backend with no kernel behind it, for loop
 * tests. The test decides what each poll reports, and a fake clock moves
 * forward by the poll timeout, so timer tests never sleep.
 */
#ifndef IOLOOP_TEST_FAKE_BACKEND_H
#define IOLOOP_TEST_FAKE_BACKEND_H

#include <stdbool.h>

#include <ioloop/backend.h>

#define FAKE_MAX_FD 256

struct fake_backend {
    unsigned interest[FAKE_MAX_FD];
    bool registered[FAKE_MAX_FD];
    unsigned level[FAKE_MAX_FD]; /* readiness reported while registered */
    struct ioloop_event script[64]; /* reported once by the next poll */
    int nscript;
    int polls;
    int64_t last_timeout;
    int fail_add_fd; /* add() of this fd fails with -EINVAL; -1: none */
};

extern const struct ioloop_backend fake_backend_ops;

/* The state the last create() made. */
struct fake_backend *fake_backend_last(void);

/* The fake clock, in ns: a poll with a timeout and nothing to report
 * advances it by the timeout; a poll that reports events by 1 us. */
extern int64_t fake_now;
int64_t fake_clock(void *arg);

/* Queues one event for the next poll, reported whatever is registered
 * (as a kernel does for events queued before a handler went away). */
void fake_backend_script(struct fake_backend *b, int fd, unsigned events);

#endif /* IOLOOP_TEST_FAKE_BACKEND_H */
