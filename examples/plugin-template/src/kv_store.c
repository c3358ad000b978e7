/*
 * kv_store.c: a chained hash table (FNV-1a, doubled when it holds twice
 * as many keys as buckets) and the command interpreter over it.
 */
#define _POSIX_C_SOURCE 200809L

#include "kv_store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MIN_BUCKETS 64

struct kv_entry {
    struct kv_entry *next;
    char *value;
    size_t vlen;
    size_t klen;
    char key[]; /* klen bytes */
};

struct kv_store {
    struct kv_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t max_keys;
};

static uint64_t kv_hash(const char *key, size_t klen);
static struct kv_entry **kv_find(const struct kv_store *kv, const char *key,
                                 size_t klen);
static void kv_grow(struct kv_store *kv);
static int kv_key_arg(const char *args, size_t len, size_t *klen);
static void kv_reply_set(struct kv_reply *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct kv_store *
kv_store_new(size_t max_keys)
{
    struct kv_store *kv = calloc(1, sizeof(*kv));

    if (kv == NULL) {
        return NULL;
    }
    kv->nbuckets = KV_MIN_BUCKETS;
    kv->buckets = calloc(kv->nbuckets, sizeof(kv->buckets[0]));
    if (kv->buckets == NULL) {
        free(kv);
        return NULL;
    }
    kv->max_keys = max_keys;
    return kv;
}

void
kv_store_free(struct kv_store *kv)
{
    if (kv == NULL) {
        return;
    }
    for (size_t i = 0; i < kv->nbuckets; i++) {
        struct kv_entry *e = kv->buckets[i], *next;

        for (; e != NULL; e = next) {
            next = e->next;
            free(e->value);
            free(e);
        }
    }
    free(kv->buckets);
    free(kv);
}

int
kv_store_set(struct kv_store *kv, const char *key, size_t klen,
             const char *value, size_t vlen)
{
    struct kv_entry **slot = kv_find(kv, key, klen), *e;
    char *copy = malloc(vlen > 0 ? vlen : 1);

    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, value, vlen);
    if (*slot != NULL) {
        free((*slot)->value);
        (*slot)->value = copy;
        (*slot)->vlen = vlen;
        return 0;
    }
    if (kv->count >= kv->max_keys) {
        free(copy);
        return -ENOSPC;
    }
    e = malloc(sizeof(*e) + klen);
    if (e == NULL) {
        free(copy);
        return -ENOMEM;
    }
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->value = copy;
    e->vlen = vlen;
    e->next = NULL;
    *slot = e;
    kv->count++;
    if (kv->count > 2 * kv->nbuckets) {
        kv_grow(kv); /* best effort: a failure only makes chains longer */
    }
    return 0;
}

const char *
kv_store_get(const struct kv_store *kv, const char *key, size_t klen,
             size_t *vlen)
{
    struct kv_entry *e = *kv_find(kv, key, klen);

    if (e == NULL) {
        return NULL;
    }
    *vlen = e->vlen;
    return e->value;
}

int
kv_store_del(struct kv_store *kv, const char *key, size_t klen)
{
    struct kv_entry **slot = kv_find(kv, key, klen), *e = *slot;

    if (e == NULL) {
        return -ENOENT;
    }
    *slot = e->next;
    free(e->value);
    free(e);
    kv->count--;
    return 0;
}

size_t
kv_store_count(const struct kv_store *kv)
{
    return kv->count;
}

void
kv_execute(struct kv_store *kv, const char *line, size_t len,
           struct kv_reply *reply)
{
    const char *sp, *args;
    size_t cmdlen, alen, klen;
    int rc;

    reply->body = NULL;
    reply->body_len = 0;
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    sp = memchr(line, ' ', len);
    cmdlen = sp != NULL ? (size_t) (sp - line) : len;
    args = sp != NULL ? sp + 1 : line + len;
    alen = len - (size_t) (args - line);

    if (cmdlen == 3 && memcmp(line, "SET", 3) == 0) {
        sp = memchr(args, ' ', alen);
        klen = sp != NULL ? (size_t) (sp - args) : 0;
        if (sp == NULL || klen == 0) {
            kv_reply_set(reply, "ERR usage: SET key value");
        } else if (klen > KV_MAX_KEY) {
            kv_reply_set(reply, "ERR key longer than %d bytes", KV_MAX_KEY);
        } else if ((rc = kv_store_set(kv, args, klen, sp + 1,
                                      alen - klen - 1))
                   == -ENOSPC) {
            kv_reply_set(reply, "ERR store full (max_keys %zu)",
                         kv->max_keys);
        } else {
            kv_reply_set(reply, rc < 0 ? "ERR out of memory" : "OK");
        }
    } else if (cmdlen == 3
               && (memcmp(line, "GET", 3) == 0
                   || memcmp(line, "DEL", 3) == 0)) {
        rc = kv_key_arg(args, alen, &klen);
        if (rc == -EINVAL) {
            kv_reply_set(reply, "ERR usage: %.3s key", line);
        } else if (rc < 0) {
            kv_reply_set(reply, "ERR key longer than %d bytes", KV_MAX_KEY);
        } else if (line[0] == 'D') {
            rc = kv_store_del(kv, args, klen);
            kv_reply_set(reply, rc == 0 ? "OK" : "NOT_FOUND");
        } else if ((reply->body = kv_store_get(kv, args, klen,
                                               &reply->body_len))
                   == NULL) {
            kv_reply_set(reply, "NOT_FOUND");
        } else {
            kv_reply_set(reply, "VALUE ");
        }
    } else if (cmdlen == 5 && memcmp(line, "COUNT", 5) == 0) {
        if (sp != NULL) {
            kv_reply_set(reply, "ERR usage: COUNT");
        } else {
            kv_reply_set(reply, "VALUE %zu", kv->count);
        }
    } else if (len == 0) {
        kv_reply_set(reply, "ERR empty command");
    } else {
        kv_reply_set(reply, "ERR unknown command '%.*s'",
                     (int) (cmdlen > 16 ? 16 : cmdlen), line);
    }
}

/* FNV-1a, 64 bits. */
static uint64_t
kv_hash(const char *key, size_t klen)
{
    uint64_t h = 14695981039346656037u;

    for (size_t i = 0; i < klen; i++) {
        h = (h ^ (unsigned char) key[i]) * 1099511628211u;
    }
    return h;
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static struct kv_entry **
kv_find(const struct kv_store *kv, const char *key, size_t klen)
{
    struct kv_entry **slot;

    slot = &kv->buckets[kv_hash(key, klen) & (kv->nbuckets - 1)];
    while (*slot != NULL
           && ((*slot)->klen != klen || memcmp((*slot)->key, key, klen))) {
        slot = &(*slot)->next;
    }
    return slot;
}

/* Doubles the bucket array and rehashes. Keeps the old one on ENOMEM. */
static void
kv_grow(struct kv_store *kv)
{
    size_t n = kv->nbuckets * 2;
    struct kv_entry **b = calloc(n, sizeof(b[0]));

    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < kv->nbuckets; i++) {
        struct kv_entry *e = kv->buckets[i], *next;

        for (; e != NULL; e = next) {
            size_t j = kv_hash(e->key, e->klen) & (n - 1);

            next = e->next;
            e->next = b[j];
            b[j] = e;
        }
    }
    free(kv->buckets);
    kv->buckets = b;
    kv->nbuckets = n;
}

/* args must be exactly one key. Returns 0 with *klen set; -EINVAL when
 * it is empty or has a space; -E2BIG when it is too long. */
static int
kv_key_arg(const char *args, size_t len, size_t *klen)
{
    if (len == 0 || memchr(args, ' ', len) != NULL) {
        return -EINVAL;
    }
    if (len > KV_MAX_KEY) {
        return -E2BIG;
    }
    *klen = len;
    return 0;
}

static void
kv_reply_set(struct kv_reply *reply, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reply->head, sizeof(reply->head), fmt, ap);
    va_end(ap);
}
