/*
 * host/testing/script.h: the scripted backend of libioloop_testing. It
 * reports the events the test fired, after the real readiness of an inner
 * backend when there is one (epoll), and stops the loop after every poll,
 * so that one ioloop_start runs exactly one iteration.
 */
#ifndef IOLOOP_TESTING_SCRIPT_H
#define IOLOOP_TESTING_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <ioloop/backend.h>
#include <ioloop/loop.h>

struct ioloop__script {
    const struct ioloop_backend *inner; /* NULL: scripted readiness only */
    void *inner_state;
    ioloop_loop_t *loop;    /* stopped after each poll */
    unsigned *interest;     /* per fd: the mask, with SCRIPT_REGISTERED */
    size_t ninterest;
    struct ioloop_event *fired; /* reported once, by the next poll */
    size_t nfired;
    size_t capfired;
    int64_t wait_ns;        /* longest real wait of the next poll */
    int64_t asked_ns;       /* the timeout the loop asked of the last poll;
                               -1: no poll since the last reset */
};

/* The ops table: create() adopts the state given to ioloop__script_next. */
extern const struct ioloop_backend ioloop__script_ops;

/*
 * Hands s (zeroed but for inner) to the next create() of the ops table,
 * which makes the inner backend's state. Call it just before
 * ioloop_loop_new.
 */
void ioloop__script_next(struct ioloop__script *s);

/* Queues one event for the next poll. 0 or -ENOMEM. */
int ioloop__script_fire(struct ioloop__script *s, int fd, unsigned events);

/* The mask fd is registered with, or -1. */
int ioloop__script_interest(const struct ioloop__script *s, int fd);

/* Frees what the script allocated (not s); after the loop is freed. */
void ioloop__script_free(struct ioloop__script *s);

#endif /* IOLOOP_TESTING_SCRIPT_H */
