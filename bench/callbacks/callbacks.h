/*
 * bench/callbacks/callbacks.h: the callbacks benchmark's contender
 * interface: post n "run on the next iteration" callbacks from the loop
 * thread, then run the loop until all n ran. Each library's closest
 * equivalent:
 *   ioloop   ioloop_add_callback (a vector of (cb, arg, owner));
 *   libev    ev_feed_event on n distinct (idle, never started) watchers
 *            (feeding one watcher twice only merges the events);
 *   libevent event_active on n distinct events;
 *   libuv    uv_idle_start on n distinct idle handles, each stopping
 *            itself when it runs (libuv has no one-shot callback queue).
 */
#ifndef IOLOOP_BENCH_CALLBACKS_H
#define IOLOOP_BENCH_CALLBACKS_H

#include <stddef.h>

struct cb_ops {
    const char *name;
    /* Preallocates what n posts need; NULL with the reason in err. */
    void *(*create)(const void *param, size_t n, char *err, size_t errlen);
    void (*post_all)(void *ctx, size_t n);
    /* Runs the loop until the n callbacks ran; returns how many ran. */
    size_t (*dispatch)(void *ctx, size_t n);
    void (*destroy)(void *ctx);
};

extern const struct cb_ops cb_ioloop;
extern const struct cb_ops cb_libev;
extern const struct cb_ops cb_libevent;
extern const struct cb_ops cb_libuv;

#endif /* IOLOOP_BENCH_CALLBACKS_H */
