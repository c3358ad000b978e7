/*
 * bench/common/libevent_check.h: libev.so exports a libevent emulation
 * under libevent's own names (event_add, event_base_new, ...). The bench
 * links libevent first so that libevent's symbols win; this check makes
 * sure they did, and that libevent runs on epoll like everyone else.
 */
#ifndef IOLOOP_BENCH_LIBEVENT_CHECK_H
#define IOLOOP_BENCH_LIBEVENT_CHECK_H

#include <stdio.h>
#include <string.h>

#include <event2/event.h>

/* 0 when base is libevent 2's, on epoll; else -1 with the reason in err. */
static inline int
bench_libevent_check(struct event_base *base, char *err, size_t errlen)
{
    const char *version = event_get_version();
    const char *method = event_base_get_method(base);

    if (strncmp(version, "2.", 2) != 0 || strcmp(method, "epoll") != 0) {
        snprintf(err, errlen,
                 "libevent resolved to version %s, method %s (libev's "
                 "emulation? check the link order)",
                 version, method);
        return -1;
    }
    return 0;
}

#endif /* IOLOOP_BENCH_LIBEVENT_CHECK_H */
