/*
 * host/runtime/resolve.c: getaddrinfo_a with a SIGEV_THREAD notification
 * that posts the result to the loop with add_callback (thread-safe).
 *
 * A lookup is shared by the loop and glibc's notification thread, hence
 * the two references. The lock makes "cancelled" and "posted to the loop"
 * exclusive: once cancel returns, the thread no longer touches the loop,
 * so the loop may be freed while glibc still resolves.
 *
 * The loop keeps (IOLOOP_SLOT_RESOLVE) the lookups that may still reach
 * it: in flight and not cancelled, or with their answer posted and not
 * yet run. When the loop is freed with such a lookup, its posted
 * callback never runs, so the loop's free drops that reference.
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
    struct ioloop_resolve *prev; /* in the loop's list; loop thread only */
    struct ioloop_resolve *next;
    struct resolve_list *list;   /* NULL once unlinked */
    struct resolve_request *req; /* what glibc is given */
    struct sigevent sev;
    pthread_mutex_t lock;
    int cancelled;      /* under lock: cb must not run */
    int posted;         /* under lock: resolve_done is queued */
    atomic_int refs;    /* the loop's and the notification's */
    ioloop_loop_t *loop;
    ioloop__resolve_cb cb;
    void *arg;
};

/*
 * What getaddrinfo_a reads, apart from the lookup: glibc keeps pointers
 * to the gaicb in its request pool after the request ended, which would
 * hide a lost lookup from LeakSanitizer if the two were one block.
 */
struct resolve_request {
    struct gaicb gai;
    struct addrinfo hints;
    char *port;         /* points into name */
    char name[];        /* host, NUL, port, NUL */
};

/* The loop's lookups that may still reach it (IOLOOP_SLOT_RESOLVE). */
struct resolve_list {
    struct ioloop_resolve *head;
};

static struct resolve_list *resolve_list(ioloop_loop_t *loop);
static void resolve_list_free(ioloop_loop_t *loop, void *data);
static void resolve_unlink(struct ioloop_resolve *r);
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
    struct resolve_list *rl = resolve_list(loop);
    struct resolve_request *req;
    struct ioloop_resolve *r;
    struct gaicb *list[1];
    int rc;

    if (rl == NULL) {
        return -ENOMEM;
    }
    r = calloc(1, sizeof(*r));
    req = calloc(1, sizeof(*req) + hlen + plen + 2);
    if (r == NULL || req == NULL) {
        free(r);
        free(req);
        return -ENOMEM;
    }
    r->req = req;
    memcpy(req->name, host, hlen + 1);
    req->port = req->name + hlen + 1;
    memcpy(req->port, port, plen + 1);
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    atomic_init(&r->refs, 2);
    pthread_mutex_init(&r->lock, NULL);
    req->hints.ai_family = AF_UNSPEC;
    req->hints.ai_socktype = SOCK_STREAM;
    /* No AI_ADDRCONFIG: it drops ::1 from "localhost" on a machine
     * without a global IPv6 address, though an upstream may listen
     * there; an address of a family the machine cannot reach just fails
     * at connect and the next one is tried. */
    req->hints.ai_flags = AI_NUMERICSERV;
    req->gai.ar_name = req->name;
    req->gai.ar_service = req->port;
    req->gai.ar_request = &req->hints;
    r->sev.sigev_notify = SIGEV_THREAD;
    r->sev.sigev_notify_function = resolve_notify;
    r->sev.sigev_value.sival_ptr = r;
    list[0] = &req->gai;
    /* Linked first: glibc's thread may post the answer before
     * getaddrinfo_a returns. */
    r->list = rl;
    r->next = rl->head;
    if (rl->head != NULL) {
        rl->head->prev = r;
    }
    rl->head = r;
    rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &r->sev);
    if (rc != 0) {
        resolve_unlink(r);
        pthread_mutex_destroy(&r->lock);
        free(req);
        free(r);
        return rc == EAI_MEMORY ? -ENOMEM : -EAGAIN;
    }
    *out = r;
    return 0;
}

void
ioloop__resolve_cancel(struct ioloop_resolve *r)
{
    int posted;

    pthread_mutex_lock(&r->lock);
    r->cancelled = 1;
    posted = r->posted;
    pthread_mutex_unlock(&r->lock);
    if (!posted) {
        resolve_unlink(r); /* nothing of it will reach the loop now */
    }
    resolve_unref(r);
}

/* The loop's list, made on first use; NULL on ENOMEM. Loop thread only. */
static struct resolve_list *
resolve_list(ioloop_loop_t *loop)
{
    struct resolve_list *rl = ioloop__slot(loop, IOLOOP_SLOT_RESOLVE);

    if (rl == NULL) {
        rl = calloc(1, sizeof(*rl));
        if (rl != NULL) {
            ioloop__slot_set(loop, IOLOOP_SLOT_RESOLVE, rl,
                             resolve_list_free);
        }
    }
    return rl;
}

/*
 * The loop is freed: no callback of it runs any more. A lookup still in
 * flight is cancelled (its thread then drops its own reference); one
 * whose answer was posted loses the reference that answer held.
 */
static void
resolve_list_free(ioloop_loop_t *loop, void *data)
{
    struct resolve_list *rl = data;

    (void) loop;
    while (rl->head != NULL) {
        struct ioloop_resolve *r = rl->head;
        int was_cancelled, posted;

        pthread_mutex_lock(&r->lock);
        was_cancelled = r->cancelled;
        posted = r->posted;
        r->cancelled = 1;
        pthread_mutex_unlock(&r->lock);
        resolve_unlink(r);
        if (posted) {
            resolve_unref(r);
        }
        if (!was_cancelled) {
            resolve_unref(r);
        }
    }
    free(rl);
}

static void
resolve_unlink(struct ioloop_resolve *r)
{
    if (r->list == NULL) {
        return;
    }
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        r->list->head = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->list = NULL;
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
        r->posted = posted;
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

    resolve_unlink(r);
    pthread_mutex_lock(&r->lock);
    if (r->cancelled) {
        pthread_mutex_unlock(&r->lock);
        resolve_unref(r);
        return 0;
    }
    r->cancelled = 1;
    pthread_mutex_unlock(&r->lock);
    status = resolve_errno(gai_error(&r->req->gai));
    res = status == 0 ? r->req->gai.ar_result : NULL;
    if (status == 0) {
        r->req->gai.ar_result = NULL;
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
    if (r->req->gai.ar_result != NULL) {
        freeaddrinfo(r->req->gai.ar_result);
    }
    pthread_mutex_destroy(&r->lock);
    free(r->req);
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
