/*
 * sys/event.h: <sys/event.h> for the Linux kqueue emulation in
 * tests/fakes/kqueue_emul.c. The test-only kqueue_emul modules put
 * tests/fakes first on their include path, so backends/kqueue.c compiles
 * against this header unchanged.
 *
 * By default it declares what libkqueue's Linux header declares (checked
 * against tests/fakes/sys/libkqueue.names by test_kqueue_emul_header), and
 * nothing more: no NOTE_LOWAT, no kqueue1(), libkqueue's struct layout. So
 * kqueue.c cannot use a name the only kqueue Linux has lacks.
 *
 * Built with IOLOOP_KQUEUE_EMUL_FREEBSD it is FreeBSD's instead (12 and
 * later: 64-bit data, ext[]), with NOTE_LOWAT and kqueue1().
 *
 * What the emulation supports, and how it differs from the kernel, is
 * listed at the top of kqueue_emul.c.
 */
#ifndef IOLOOP_FAKES_SYS_EVENT_H
#define IOLOOP_FAKES_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One change (changelist) or one event (eventlist). */
struct kevent {
    uintptr_t ident;       /* the fd */
    short filter;          /* EVFILT_READ or EVFILT_WRITE */
    unsigned short flags;  /* EV_* */
    unsigned int fflags;   /* NOTE_* in; the socket error with EV_EOF out */
#ifdef IOLOOP_KQUEUE_EMUL_FREEBSD
    int64_t data;          /* NOTE_LOWAT mark in; bytes ready out; errno */
#else
    intptr_t data;         /* bytes ready out; errno */
#endif
    void *udata;           /* returned as given */
#ifdef IOLOOP_KQUEUE_EMUL_FREEBSD
    uint64_t ext[4];       /* unused here, zeroed by EV_SET */
#endif
};

#define EVFILT_READ  (-1) /* readable: data > 0 (or >= NOTE_LOWAT), EOF */
#define EVFILT_WRITE (-2) /* writable, or no more can be sent (EOF) */

#define EV_ADD      0x0001 /* add the knote, or change it if it exists */
#define EV_DELETE   0x0002 /* remove the knote */
#define EV_ENABLE   0x0004 /* report it again */
#define EV_DISABLE  0x0008 /* keep it but do not report it */
#define EV_ONESHOT  0x0010 /* not emulated: EINVAL */
#define EV_CLEAR    0x0020 /* read knotes: report changes only */
#define EV_RECEIPT  0x0040 /* always answer the change with an EV_ERROR */
#define EV_DISPATCH 0x0080 /* not emulated: EINVAL */
#define EV_ERROR    0x4000 /* out: a change's receipt, errno in data */
#define EV_EOF      0x8000 /* out: end of file or hang-up */

#ifdef IOLOOP_KQUEUE_EMUL_FREEBSD
#define NOTE_LOWAT 0x0001 /* EVFILT_READ: fire when data >= the kevent's data */

#define EV_SET(kevp_, a, b, c, d, e, f)                                      \
    do {                                                                     \
        *(kevp_) = (struct kevent){ .ident = (a),                            \
                                    .filter = (b),                           \
                                    .flags = (c),                            \
                                    .fflags = (d),                           \
                                    .data = (e),                             \
                                    .udata = (f),                            \
                                    .ext = { 0, 0, 0, 0 } };                 \
    } while (0)
#else
#define EV_SET(kevp_, a, b, c, d, e, f)                                      \
    do {                                                                     \
        *(kevp_) = (struct kevent){ .ident = (a),                            \
                                    .filter = (b),                           \
                                    .flags = (c),                            \
                                    .fflags = (d),                           \
                                    .data = (e),                             \
                                    .udata = (f) };                          \
    } while (0)
#endif

/* A new kqueue: an fd, not close-on-exec and not inherited by fork(). */
int kqueue(void);

#ifdef IOLOOP_KQUEUE_EMUL_FREEBSD
/* kqueue() with flags (NetBSD, FreeBSD >= 14): O_CLOEXEC or 0. */
int kqueue1(int flags);
#endif

/*
 * Applies nchanges changes, then, unless a change produced an EV_ERROR
 * entry, waits up to timeout (NULL: forever) for up to nevents events.
 * Returns the number of entries written, or -1 with errno (EINTR when a
 * signal cut the wait short).
 */
int kevent(int kq, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents,
           const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif /* IOLOOP_FAKES_SYS_EVENT_H */
