/*
 * host/runtime/resolve.c: getaddrinfo_a with a SIGEV_THREAD notification
 * that posts the result to the loop with add_callback (thread-safe).
 *
 * A lookup is shared by the loop and glibc's notification thread, hence
 * the two references. The lock makes "cancelled" and "posted to the loop"
 * exclusive: once cancel returns, the thread no longer touches the loop,
 * so the loop may be freed while glibc still resolves.
 */
#include "resolve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "loop.h"

struct ioloop_resolve {
    struct gaicb gai;
    struct addrinfo hints;
    struct sigevent sev;
    pthread_mutex_t lock;
    int cancelled;      /* under lock: cb must not run */
    atomic_int refs;    /* the loop's and the notification's */
    ioloop_loop_t *loop;
    ioloop__resolve_cb cb;
    void *arg;
    char *port;         /* points into name */
    char name[];        /* host, NUL, port, NUL */
};

static void resolve_notify(union sigval v);
static int resolve_done(ioloop_loop_t *loop, void *arg);
static void resolve_unref(struct ioloop_resolve *r);
static int resolve_errno(int eai);

int
ioloop__resolve_start(ioloop_loop_t *loop, const char *host,
                      const char *port, ioloop__resolve_cb cb, void *arg,
                      struct ioloop_resolve **out)
{
    size_t hlen = strlen(host), plen = strlen(port);
    struct ioloop_resolve *r = calloc(1, sizeof(*r) + hlen + plen + 2);
    struct gaicb *list[1];
    int rc;

    if (r == NULL) {
        return -ENOMEM;
    }
    memcpy(r->name, host, hlen + 1);
    r->port = r->name + hlen + 1;
    memcpy(r->port, port, plen + 1);
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    atomic_init(&r->refs, 2);
    pthread_mutex_init(&r->lock, NULL);
    r->hints.ai_family = AF_UNSPEC;
    r->hints.ai_socktype = SOCK_STREAM;
    /* No AI_ADDRCONFIG: it drops ::1 from "localhost" on a machine
     * without a global IPv6 address, though an upstream may listen
     * there; an address of a family the machine cannot reach just fails
     * at connect and the next one is tried. */
    r->hints.ai_flags = AI_NUMERICSERV;
    r->gai.ar_name = r->name;
    r->gai.ar_service = r->port;
    r->gai.ar_request = &r->hints;
    r->sev.sigev_notify = SIGEV_THREAD;
    r->sev.sigev_notify_function = resolve_notify;
    r->sev.sigev_value.sival_ptr = r;
    list[0] = &r->gai;
    rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &r->sev);
    if (rc != 0) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        return rc == EAI_MEMORY ? -ENOMEM : -EAGAIN;
    }
    *out = r;
    return 0;
}

void
ioloop__resolve_cancel(struct ioloop_resolve *r)
{
    pthread_mutex_lock(&r->lock);
    r->cancelled = 1;
    pthread_mutex_unlock(&r->lock);
    resolve_unref(r);
}

/* glibc's notification thread: the lookup ended. */
static void
resolve_notify(union sigval v)
{
    struct ioloop_resolve *r = v.sival_ptr;
    int posted = 0;

    pthread_mutex_lock(&r->lock);
    if (!r->cancelled) {
        /* On -ENOMEM nothing is posted; connect's deadline still ends
         * the attempt with ETIMEDOUT. */
        posted = ioloop_add_callback(r->loop, resolve_done, r) == 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (!posted) {
        resolve_unref(r);
    }
}

/* The loop thread: hands the result over unless cancelled meanwhile.
 * Drops the notification's reference, and the loop's on delivery. */
static int
resolve_done(ioloop_loop_t *loop, void *arg)
{
    struct ioloop_resolve *r = arg;
    struct addrinfo *res;
    int status;

    pthread_mutex_lock(&r->lock);
    if (r->cancelled) {
        pthread_mutex_unlock(&r->lock);
        resolve_unref(r);
        return 0;
    }
    r->cancelled = 1;
    pthread_mutex_unlock(&r->lock);
    status = resolve_errno(gai_error(&r->gai));
    res = status == 0 ? r->gai.ar_result : NULL;
    if (status == 0) {
        r->gai.ar_result = NULL;
    }
    r->cb(loop, res, status, r->arg);
    resolve_unref(r);
    resolve_unref(r);
    return 0;
}

static void
resolve_unref(struct ioloop_resolve *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1) {
        return;
    }
    if (r->gai.ar_result != NULL) {
        freeaddrinfo(r->gai.ar_result);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int
resolve_errno(int eai)
{
    switch (eai) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}
