/*
 * kqueue_emul.c: kqueue(2) and kevent(2) emulated over poll(2), so that
 * backends/kqueue.c runs the conformance suite in every Linux CI run:
 * tests/backends/kqueue_emul.cmake compiles the two files into test-only
 * kqueue.so modules, with tests/fakes/sys/event.h standing in for
 * <sys/event.h>: libkqueue's declarations by default, FreeBSD's (with
 * NOTE_LOWAT) when built with IOLOOP_KQUEUE_EMUL_FREEBSD.
 *
 * Emulated as FreeBSD does it (sys/kern/kern_event.c):
 *
 *  - A kqueue is a real fd (a memfd: each has its own inode), so it can be
 *    closed, counted and refused by RLIMIT_NOFILE; kevent() on any other fd
 *    fails with EBADF. kqueue() is not close-on-exec, kqueue1(O_CLOEXEC) is.
 *  - Knotes are keyed by (fd, filter), for EVFILT_READ and EVFILT_WRITE.
 *    EV_ADD adds one, or updates an existing one's fflags, data and udata;
 *    EV_DELETE removes one (ENOENT if there is none); EV_ENABLE/EV_DISABLE.
 *    A change for an fd that is not open fails with EBADF.
 *  - Receipts: a change that fails, or has EV_RECEIPT, is answered in the
 *    eventlist by a copy with flags = EV_ERROR and data = errno (0: done),
 *    and kevent() then returns the receipts without waiting. When the
 *    eventlist is full it stops there: -1 with the change's errno, or 0.
 *  - Level-triggered: an active knote is reported by every call, round
 *    robin (FreeBSD puts a reported knote back at the tail of its queue).
 *  - EV_CLEAR (read knotes): reported when added if it would fire, then
 *    only on a change: EOF, or more bytes than at the last report.
 *  - EV_EOF: a read knote on POLLHUP or POLLRDHUP (the peer closed its
 *    write side), a write knote on POLLHUP; both on POLLERR, with fflags =
 *    the socket error. data is the byte count for a read knote.
 *  - NOTE_LOWAT (FreeBSD build) on a read knote: data must reach the mark.
 *  - Timeouts: NULL waits forever, {0, 0} not at all, anything else with
 *    ns precision and never early. A signal ends the wait: -1, EINTR.
 *  - Closing an fd drops its knotes (noticed when the fd is next polled or
 *    changed: POLLNVAL, EBADF, or a different file under that number).
 *  - A fork()ed child inherits no kqueue: their fds are closed in it.
 *
 * What libkqueue 2.7 (Linux, over epoll) does differently, each turned on
 * by a word in the environment variable IOLOOP_KQUEUE_EMUL (comma
 * separated; "libkqueue" turns on all), read by kqueue():
 *
 *  eof-fflags  EV_EOF without a socket error returns the knote's own input
 *              fflags, not 0 (read.c, write.c: the stored kevent is copied).
 *  so-error    a socket error is read with getsockopt(SO_ERROR), which
 *              clears it, into fflags (the default mode says EIO instead).
 *  efault      EV_ADD for an fd that is not open fails with EFAULT, as any
 *              failure to create a knote does (kevent.c); other changes for
 *              it fail with ENOENT, its knotes being gone.
 *  no-modify   EV_ADD on an existing knote changes nothing but udata, and
 *              fails (here EINVAL) unless it has EV_CLEAR (kn_modify).
 *
 * Where it differs from both:
 *
 *  1. Linux cannot read SO_ERROR without clearing it, and the program must
 *     still find it there, so unless so-error is on a socket error shows
 *     in fflags as EIO.
 *  2. Data below a NOTE_LOWAT mark above 1 does not wake the wait; the
 *     mark is checked only when something else wakes it. Write knotes
 *     ignore NOTE_LOWAT, and their data is always 0. Likewise an EV_CLEAR
 *     knote, once reported, is woken by EOF but not by new data, which it
 *     sees only when something else wakes the wait; EV_CLEAR knotes are
 *     not reported again after EOF.
 *  3. A number reused by a file with the same inode (eventfds and other
 *    anonymous-inode files share one) keeps the closed fd's knotes.
 *  4. EV_ONESHOT, EV_DISPATCH, EV_CLEAR on write knotes and other filters:
 *     EINVAL.
 *  5. One thread at a time per kqueue; distinct kqueues are independent.
 */
#include <sys/event.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define EMUL_MIN_CAP 64
#define KN_ACTIVE 0x1u  /* the knote exists */
#define KN_ENABLED 0x2u /* and is not disabled */
#define KN_ON (KN_ACTIVE | KN_ENABLED)
#define KC_FIRED 0x1u /* EV_CLEAR: reported since added */
#define KC_EOF 0x2u   /* EV_CLEAR: EOF reported */

/* libkqueue's ways, from IOLOOP_KQUEUE_EMUL */
#define Q_EOF_FFLAGS 0x1u /* EOF returns the input fflags */
#define Q_SO_ERROR 0x2u   /* fflags from SO_ERROR, which clears it */
#define Q_EFAULT 0x4u     /* EV_ADD for a closed fd: EFAULT */
#define Q_NO_MODIFY 0x8u  /* EV_ADD on a knote: only with EV_CLEAR */
#define Q_ALL (Q_EOF_FFLAGS | Q_SO_ERROR | Q_EFAULT | Q_NO_MODIFY)

struct emul_knote {
    unsigned status;      /* KN_* */
    unsigned short flags; /* the flags it was added with, returned */
    unsigned sfflags;     /* NOTE_* */
    int64_t sdata;        /* the NOTE_LOWAT mark */
    void *udata;
    unsigned cstate;      /* EV_CLEAR: KC_* */
    int cdata;            /* EV_CLEAR: bytes at the last report, or fewer */
};

/* The knotes of one fd: [0] EVFILT_READ, [1] EVFILT_WRITE. */
struct emul_fd {
    struct emul_knote kn[2];
    int pos;    /* index in pfds, -1 when the fd has no knote */
    dev_t dev;  /* the file the knotes were added for */
    ino_t ino;
};

struct emul_kq {
    int fd;               /* the memfd standing for the kqueue */
    dev_t dev;            /* its identity, see emul_find */
    ino_t ino;
    struct emul_fd *fds;  /* indexed by fd */
    int nfds;
    struct pollfd *pfds;  /* one per fd with knotes; ~fd if all disabled */
    int npfds;
    int cappfds;
    int next;             /* where the next scan starts */
    unsigned quirks;      /* Q_* */
};

static pthread_mutex_t emul_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t emul_once = PTHREAD_ONCE_INIT;
static struct emul_kq **emul_kqs; /* indexed by kqueue fd */
static int emul_nkqs;

static int emul_kqueue(int flags);
static int emul_quirks(unsigned *quirks);
static struct emul_kq *emul_find(int kq);
static int emul_register(struct emul_kq *q, const struct kevent *kev);
static int emul_scan(struct emul_kq *q, struct kevent *events, int nevents,
                     const struct timespec *timeout);
static int emul_collect(struct emul_kq *q, struct kevent *events,
                        int nevents, int n);
static int emul_fire(struct emul_kq *q, int fd, short re, int sock,
                     struct kevent *events, int *out, int nevents);
static int emul_fires(struct emul_knote *kn, int w, short re, int avail,
                      int eof);
static int64_t emul_lowat(const struct emul_knote *kn);
static unsigned emul_fflags(struct emul_kq *q, struct emul_knote *kn, int fd,
                            short re, int sock, int eof);
static int emul_update(struct emul_kq *q, int fd);
static void emul_drop(struct emul_kq *q, int fd);
static void *emul_grow(void *array, int *cap, int need, size_t size);
static void emul_free(struct emul_kq *q);
static void emul_init(void);
static void emul_lock_all(void);
static void emul_unlock_all(void);
static void emul_child(void);

int
kqueue(void)
{
    return emul_kqueue(0);
}

#ifdef IOLOOP_KQUEUE_EMUL_FREEBSD
int
kqueue1(int flags)
{
    return emul_kqueue(flags);
}
#endif

/* kqueue1(): O_CLOEXEC or 0, in the ways IOLOOP_KQUEUE_EMUL asks for. */
static int
emul_kqueue(int flags)
{
    struct emul_kq *q, **kqs;
    struct stat sb;
    unsigned quirks;
    int cap, fd, saved;

    if ((flags & ~O_CLOEXEC) || emul_quirks(&quirks) != 0) {
        errno = EINVAL;
        return -1;
    }
    pthread_once(&emul_once, emul_init);
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return -1;
    }
    q->quirks = quirks;
    fd = memfd_create("kqueue", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd == -1 || fstat(fd, &sb) == -1) {
        goto fail;
    }
    q->fd = fd;
    q->dev = sb.st_dev;
    q->ino = sb.st_ino;
    pthread_mutex_lock(&emul_lock);
    cap = emul_nkqs;
    kqs = emul_grow(emul_kqs, &cap, fd + 1, sizeof(*emul_kqs));
    if (kqs == NULL) {
        pthread_mutex_unlock(&emul_lock);
        errno = ENOMEM;
        goto fail;
    }
    emul_kqs = kqs;
    while (emul_nkqs < cap) {
        emul_kqs[emul_nkqs++] = NULL;
    }
    emul_free(emul_kqs[fd]); /* a kqueue close()d: its number came back */
    emul_kqs[fd] = q;
    pthread_mutex_unlock(&emul_lock);
    return fd;

fail:
    saved = errno;
    if (fd != -1) {
        close(fd);
    }
    free(q);
    errno = saved;
    return -1;
}

int
kevent(int kq, const struct kevent *changelist, int nchanges,
       struct kevent *eventlist, int nevents, const struct timespec *timeout)
{
    struct emul_kq *q;
    struct kevent kev;
    int err, i, nerrors = 0;

    q = emul_find(kq);
    if (q == NULL) {
        return -1;
    }
    if (nchanges < 0 || nevents < 0
        || (timeout != NULL
            && (timeout->tv_sec < 0 || timeout->tv_nsec < 0
                || timeout->tv_nsec >= 1000000000L)))
    {
        errno = EINVAL;
        return -1;
    }
    for (i = 0; i < nchanges; i++) {
        kev = changelist[i];
        if (kev.filter == 0) {
            continue; /* FreeBSD skips these */
        }
        err = emul_register(q, &kev);
        if (err == 0 && !(kev.flags & EV_RECEIPT)) {
            continue;
        }
        if (nevents == 0) {
            if (err != 0) {
                errno = err;
                return -1;
            }
            return 0;
        }
        kev.flags = EV_ERROR;
        kev.data = err;
        eventlist[nerrors++] = kev;
        nevents--;
    }
    if (nerrors > 0) {
        return nerrors;
    }
    return emul_scan(q, eventlist, nevents, timeout);
}

/*
 * Reads IOLOOP_KQUEUE_EMUL into *quirks. Returns 0, or -1 for a word it
 * does not know (kqueue() then fails with EINVAL).
 */
static int
emul_quirks(unsigned *quirks)
{
    static const struct {
        const char *word;
        unsigned bits;
    } words[] = {
        { "eof-fflags", Q_EOF_FFLAGS }, { "so-error", Q_SO_ERROR },
        { "efault", Q_EFAULT },         { "no-modify", Q_NO_MODIFY },
        { "libkqueue", Q_ALL },
    };
    const char *p = getenv("IOLOOP_KQUEUE_EMUL");
    size_t i, len, n = sizeof(words) / sizeof(words[0]);

    *quirks = 0;
    while (p != NULL && *p != '\0') {
        len = strcspn(p, ",");
        for (i = 0; i < n; i++) {
            if (strlen(words[i].word) == len
                && strncmp(p, words[i].word, len) == 0)
            {
                break;
            }
        }
        if (i == n) {
            return -1;
        }
        *quirks |= words[i].bits;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* The state of kqueue fd kq, or NULL with errno EBADF if kq is not one. */
static struct emul_kq *
emul_find(int kq)
{
    struct emul_kq *q = NULL;
    struct stat sb;

    if (kq >= 0 && fstat(kq, &sb) == 0) {
        pthread_mutex_lock(&emul_lock);
        if (kq < emul_nkqs && emul_kqs[kq] != NULL
            && emul_kqs[kq]->dev == sb.st_dev
            && emul_kqs[kq]->ino == sb.st_ino)
        {
            q = emul_kqs[kq];
        }
        pthread_mutex_unlock(&emul_lock);
    }
    if (q == NULL) {
        errno = EBADF;
    }
    return q;
}

/* Applies one change. Returns 0 or the errno its receipt carries. */
static int
emul_register(struct emul_kq *q, const struct kevent *kev)
{
    struct emul_knote *kn;
    struct emul_fd *f, *fds;
    struct stat sb;
    int cap, fd, w = kev->filter == EVFILT_WRITE;

    if ((kev->filter != EVFILT_READ && !w)
        || (kev->flags & (EV_ONESHOT | EV_DISPATCH))
        || (w && (kev->flags & EV_CLEAR)))
    {
        return EINVAL;
    }
    if (kev->ident > INT_MAX) {
        return EBADF;
    }
    fd = (int) kev->ident;
    if (fstat(fd, &sb) == -1) {
        emul_drop(q, fd);
        if (q->quirks & Q_EFAULT) {
            return (kev->flags & EV_ADD) ? EFAULT : ENOENT;
        }
        return EBADF;
    }
    f = fd < q->nfds ? &q->fds[fd] : NULL;
    if (f != NULL && f->pos >= 0
        && (f->dev != sb.st_dev || f->ino != sb.st_ino))
    {
        emul_drop(q, fd); /* closed, and the number reused: knotes gone */
    }
    if (f != NULL && (f->kn[w].status & KN_ACTIVE) && (kev->flags & EV_ADD)
        && !(kev->flags & EV_DELETE) && (q->quirks & Q_NO_MODIFY))
    {
        if (!(kev->flags & EV_CLEAR)) {
            return EINVAL;
        }
        f->kn[w].udata = kev->udata;
        return 0;
    }
    if (f == NULL || !(f->kn[w].status & KN_ACTIVE)) {
        if (!(kev->flags & EV_ADD)) {
            return ENOENT;
        }
        if (fd >= q->nfds) {
            cap = q->nfds;
            fds = emul_grow(q->fds, &cap, fd + 1, sizeof(*q->fds));
            if (fds == NULL) {
                return ENOMEM;
            }
            q->fds = fds;
            memset(q->fds + q->nfds, 0,
                   (size_t) (cap - q->nfds) * sizeof(*q->fds));
            while (q->nfds < cap) {
                q->fds[q->nfds++].pos = -1;
            }
        }
        f = &q->fds[fd];
        if (f->pos < 0) {
            f->dev = sb.st_dev;
            f->ino = sb.st_ino;
        }
        f->kn[w].status = (kev->flags & EV_DISABLE) ? KN_ACTIVE : KN_ON;
        f->kn[w].flags = kev->flags & EV_CLEAR; /* kept until deleted */
        f->kn[w].cstate = 0;
        f->kn[w].cdata = 0;
    }
    kn = &f->kn[w];
    if (kev->flags & EV_DELETE) {
        kn->status = 0;
    }
    if (kev->flags & EV_ADD) {
        kn->flags = (kn->flags & EV_CLEAR)
                    | (kev->flags & ~(EV_ADD | EV_DELETE | EV_ENABLE
                                      | EV_DISABLE | EV_CLEAR));
        kn->sfflags = kev->fflags;
        kn->sdata = kev->data;
        kn->udata = kev->udata;
    }
    if (kev->flags & EV_DISABLE) {
        kn->status &= ~KN_ENABLED;
    }
    if ((kev->flags & EV_ENABLE) && (kn->status & KN_ACTIVE)) {
        kn->status |= KN_ENABLED;
    }
    return emul_update(q, fd);
}

/*
 * Waits with ppoll() until a knote fires or timeout passes, and reports up
 * to nevents of them. Wake-ups that yield nothing (closed fds, marks not
 * reached) wait again for what is left of timeout.
 */
static int
emul_scan(struct emul_kq *q, struct kevent *events, int nevents,
          const struct timespec *timeout)
{
    struct timespec end, left, now;
    int n, out;

    if (nevents == 0) {
        return 0;
    }
    if (timeout != NULL) {
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += timeout->tv_sec;
        end.tv_nsec += timeout->tv_nsec;
        if (end.tv_nsec >= 1000000000L) {
            end.tv_sec++;
            end.tv_nsec -= 1000000000L;
        }
    }
    for (;;) {
        if (timeout != NULL) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = end.tv_sec - now.tv_sec;
            left.tv_nsec = end.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_sec--;
                left.tv_nsec += 1000000000L;
            }
            if (left.tv_sec < 0) {
                left.tv_sec = 0;
                left.tv_nsec = 0;
            }
        }
        n = ppoll(q->pfds, (nfds_t) q->npfds, timeout != NULL ? &left : NULL,
                  NULL);
        if (n == -1) {
            return -1;
        }
        out = emul_collect(q, events, nevents, n);
        if (out > 0 || n == 0
            || (timeout != NULL && left.tv_sec == 0 && left.tv_nsec == 0))
        {
            return out;
        }
    }
}

/*
 * Turns the revents of the last ppoll() (n of them set) into up to nevents
 * kevents, starting where the last scan stopped, then drops the knotes of
 * fds found closed. Returns the number of kevents.
 */
static int
emul_collect(struct emul_kq *q, struct kevent *events, int nevents, int n)
{
    struct pollfd *pfd;
    struct stat sb;
    int i, k, out = 0, stale = 0, start;

    start = q->next < q->npfds ? q->next : 0;
    for (k = 0; k < q->npfds && n > 0 && out < nevents; k++) {
        i = (start + k) % q->npfds;
        pfd = &q->pfds[i];
        if (pfd->revents == 0 || pfd->fd < 0) {
            continue;
        }
        n--;
        if ((pfd->revents & POLLNVAL) || fstat(pfd->fd, &sb) == -1
            || q->fds[pfd->fd].dev != sb.st_dev
            || q->fds[pfd->fd].ino != sb.st_ino)
        {
            pfd->revents = POLLNVAL; /* closed: dropped below */
            stale++;
            continue;
        }
        if (emul_fire(q, pfd->fd, pfd->revents, S_ISSOCK(sb.st_mode),
                      events, &out, nevents) != 0)
        {
            break; /* no room for all: this fd comes first next time */
        }
    }
    q->next = q->npfds > 0 ? (start + k) % q->npfds : 0;
    for (i = q->npfds - 1; stale > 0 && i >= 0; i--) {
        if (q->pfds[i].fd >= 0 && (q->pfds[i].revents & POLLNVAL)) {
            emul_drop(q, q->pfds[i].fd);
            stale--;
        }
    }
    return out;
}

/*
 * Appends to events[*out] a kevent for each of fd's enabled knotes that
 * fires on revents re. Returns 0, or -1 when one did not fit.
 */
static int
emul_fire(struct emul_kq *q, int fd, short re, int sock,
          struct kevent *events, int *out, int nevents)
{
    struct emul_knote *kn;
    int avail, eof, w;

    for (w = 0; w < 2; w++) {
        kn = &q->fds[fd].kn[w];
        if (kn->status != KN_ON) {
            continue;
        }
        avail = 0;
        if (w == 0) {
            (void) ioctl(fd, FIONREAD, &avail);
            eof = (re & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
        } else {
            eof = (re & (POLLHUP | POLLERR)) != 0;
        }
        if (!emul_fires(kn, w, re, avail, eof)) {
            continue;
        }
        if (*out == nevents) {
            return -1;
        }
        EV_SET(&events[*out], (uintptr_t) fd, w ? EVFILT_WRITE : EVFILT_READ,
               kn->flags | (eof ? EV_EOF : 0),
               emul_fflags(q, kn, fd, re, sock, eof), avail, kn->udata);
        (*out)++;
        if (kn->flags & EV_CLEAR) {
            kn->cstate = KC_FIRED | (eof ? KC_EOF : 0);
            kn->cdata = avail;
            (void) emul_update(q, fd); /* fd has its pollfd: no ENOMEM */
        }
    }
    return 0;
}

/*
 * Whether knote kn (w: the write one) fires on revents re, with avail
 * bytes to read. An EV_CLEAR knote fires on a change since its last
 * report, and remembers a drain so that later data counts as new.
 */
static int
emul_fires(struct emul_knote *kn, int w, short re, int avail, int eof)
{
    int64_t lowat = emul_lowat(kn);

    if (w) {
        return eof || (re & POLLOUT) != 0;
    }
    if (kn->flags & EV_CLEAR) {
        if (kn->cstate & KC_EOF) {
            return 0;
        }
        if (eof || !(kn->cstate & KC_FIRED)) {
            return eof || (re & POLLIN) != 0;
        }
        if (avail < kn->cdata) {
            kn->cdata = avail;
        }
        return avail > kn->cdata;
    }
    return eof || (lowat <= 1 ? (re & POLLIN) != 0 : avail >= lowat);
}

/* A read knote's NOTE_LOWAT mark (FreeBSD build), or 1. */
static int64_t
emul_lowat(const struct emul_knote *kn)
{
#ifdef NOTE_LOWAT
    return (kn->sfflags & NOTE_LOWAT) ? kn->sdata : 1;
#else
    (void) kn;
    return 1;
#endif
}

/*
 * The fflags of a firing knote: 0, or with EOF the socket error (EIO, or
 * with so-error SO_ERROR itself, cleared by reading it), or with
 * eof-fflags and no error the knote's own input fflags.
 */
static unsigned
emul_fflags(struct emul_kq *q, struct emul_knote *kn, int fd, short re,
            int sock, int eof)
{
    socklen_t len = sizeof(int);
    int err = 0;

    if (eof && sock && (re & POLLERR)) {
        if (!(q->quirks & Q_SO_ERROR)) {
            return EIO;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
            err = errno;
        }
        return (unsigned) err;
    }
    return eof && (q->quirks & Q_EOF_FFLAGS) ? kn->sfflags : 0;
}

/*
 * Makes fd's pollfd match its knotes: added with the first knote, removed
 * with the last (the last entry moves into the hole), parked as ~fd while
 * all are disabled, or POLLHUP would wake every wait for nothing. Returns
 * 0 or ENOMEM.
 */
static int
emul_update(struct emul_kq *q, int fd)
{
    struct emul_fd *f = &q->fds[fd];
    struct emul_knote *r = &f->kn[0];
    struct pollfd *pfds;
    int last, moved;
    short ev = 0;

    if (!((r->status | f->kn[1].status) & KN_ACTIVE)) {
        if (f->pos >= 0) {
            last = --q->npfds;
            if (f->pos != last) {
                q->pfds[f->pos] = q->pfds[last];
                moved = q->pfds[f->pos].fd;
                q->fds[moved >= 0 ? moved : ~moved].pos = f->pos;
            }
            f->pos = -1;
        }
        return 0;
    }
    if (f->pos < 0) {
        pfds = emul_grow(q->pfds, &q->cappfds, q->npfds + 1, sizeof(*pfds));
        if (pfds == NULL) {
            return ENOMEM;
        }
        q->pfds = pfds;
        f->pos = q->npfds++;
        q->pfds[f->pos].revents = 0;
    }
    if (r->status == KN_ON && !(r->cstate & KC_EOF)) {
        ev |= POLLRDHUP;
        if (r->flags & EV_CLEAR) {
            ev |= (r->cstate & KC_FIRED) ? 0 : POLLIN; /* see difference 2 */
        } else if (emul_lowat(r) <= 1) {
            ev |= POLLIN;
        }
    }
    if (f->kn[1].status == KN_ON) {
        ev |= POLLOUT;
    }
    q->pfds[f->pos].fd = ev != 0 ? fd : ~fd;
    q->pfds[f->pos].events = ev;
    return 0;
}

/* Drops every knote of fd, as closing it does. */
static void
emul_drop(struct emul_kq *q, int fd)
{
    if (fd >= 0 && fd < q->nfds && q->fds[fd].pos >= 0) {
        q->fds[fd].kn[0].status = 0;
        q->fds[fd].kn[1].status = 0;
        (void) emul_update(q, fd);
    }
}

/*
 * Returns array (elements of size bytes, *cap of them) grown to hold need,
 * doubling, and updates *cap; or NULL with array and *cap unchanged.
 */
static void *
emul_grow(void *array, int *cap, int need, size_t size)
{
    void *p;
    int n;

    n = *cap > 0 ? *cap : EMUL_MIN_CAP;
    while (n < need) {
        n = n > INT_MAX / 2 ? need : n * 2;
    }
    if (n == *cap) {
        return array;
    }
    p = realloc(array, (size_t) n * size);
    if (p != NULL) {
        *cap = n;
    }
    return p;
}

static void
emul_free(struct emul_kq *q)
{
    if (q != NULL) {
        free(q->fds);
        free(q->pfds);
        free(q);
    }
}

static void
emul_init(void)
{
    pthread_atfork(emul_lock_all, emul_unlock_all, emul_child);
}

static void
emul_lock_all(void)
{
    pthread_mutex_lock(&emul_lock);
}

static void
emul_unlock_all(void)
{
    pthread_mutex_unlock(&emul_lock);
}

/* In a fork()ed child: no kqueue is inherited, so close and forget all. */
static void
emul_child(void)
{
    struct stat sb;

    for (int i = 0; i < emul_nkqs; i++) {
        struct emul_kq *q = emul_kqs[i];

        if (q != NULL && fstat(q->fd, &sb) == 0 && sb.st_dev == q->dev
            && sb.st_ino == q->ino)
        {
            close(q->fd);
        }
        emul_free(q);
        emul_kqs[i] = NULL;
    }
    pthread_mutex_unlock(&emul_lock);
}

/* When the module is unloaded: frees what close() could not tell us. */
__attribute__((destructor)) static void
emul_fini(void)
{
    for (int i = 0; i < emul_nkqs; i++) {
        emul_free(emul_kqs[i]);
    }
    free(emul_kqs);
    emul_kqs = NULL;
    emul_nkqs = 0;
}
