/*
 * host/runtime/http_routes.c: a server's route table. Exact paths and
 * prefixes share one hash table (FNV-1a over the key, the kind in the
 * seed); a lookup hashes the whole path once for the exact match, then
 * only the prefix lengths that exist, longest first: a request costs
 * 1 + (distinct prefix lengths) probes, never a scan of the routes.
 * Routes are added at start (init), so the table is rebuilt on growth.
 */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t
route_hash(const char *key, size_t len, bool prefix)
{
    uint64_t h = prefix ? 0x84222325cbf29ce4ULL : 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char) key[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Rehashes into twice the buckets. -ENOMEM. */
static int
routes_grow(struct http_routes *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    struct http_route **b = calloc(n, sizeof(*b));

    if (b == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct http_route *r, *next;

        for (r = t->buckets[i]; r != NULL; r = next) {
            size_t k = route_hash(r->key, r->len, r->prefix) & (n - 1);

            next = r->next;
            r->next = b[k];
            b[k] = r;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return 0;
}

/* Adds len to the descending list of prefix lengths, if new. */
static int
lens_add(struct http_routes *t, size_t len)
{
    size_t i, *v;

    for (i = 0; i < t->nprefix_lens && t->prefix_lens[i] > len; i++) {
    }
    if (i < t->nprefix_lens && t->prefix_lens[i] == len) {
        return 0;
    }
    v = realloc(t->prefix_lens, (t->nprefix_lens + 1) * sizeof(*v));
    if (v == NULL) {
        return -ENOMEM;
    }
    memmove(v + i + 1, v + i, (t->nprefix_lens - i) * sizeof(*v));
    v[i] = len;
    t->prefix_lens = v;
    t->nprefix_lens++;
    return 0;
}

int
ioloop__http_routes_add(struct http_routes *t, struct http_route *r)
{
    size_t k;

    if (t->n + 1 > t->nbuckets / 2 && routes_grow(t) < 0) {
        return -ENOMEM;
    }
    if (r->prefix && lens_add(t, r->len) < 0) {
        return -ENOMEM;
    }
    k = route_hash(r->key, r->len, r->prefix) & (t->nbuckets - 1);
    r->next = t->buckets[k];
    t->buckets[k] = r;
    t->n++;
    return 0;
}

struct http_route *
ioloop__http_routes_get(const struct http_routes *t, const char *key,
                        size_t len, bool prefix)
{
    struct http_route *r;

    if (t->nbuckets == 0) {
        return NULL;
    }
    r = t->buckets[route_hash(key, len, prefix) & (t->nbuckets - 1)];
    for (; r != NULL; r = r->next) {
        if (r->prefix == prefix && r->len == len
            && memcmp(r->key, key, len) == 0) {
            return r;
        }
    }
    return NULL;
}

void
ioloop__http_routes_del(struct http_routes *t, struct http_route *r)
{
    struct http_route **pp;
    bool other = false;

    pp = &t->buckets[route_hash(r->key, r->len, r->prefix)
                     & (t->nbuckets - 1)];
    while (*pp != r) {
        pp = &(*pp)->next;
    }
    *pp = r->next;
    t->n--;
    if (!r->prefix) {
        return;
    }
    /* Drop its length unless another prefix has it (teardown only). */
    for (size_t i = 0; i < t->nbuckets && !other; i++) {
        for (struct http_route *o = t->buckets[i]; o != NULL; o = o->next) {
            if (o->prefix && o->len == r->len) {
                other = true;
                break;
            }
        }
    }
    for (size_t i = 0; !other && i < t->nprefix_lens; i++) {
        if (t->prefix_lens[i] == r->len) {
            memmove(t->prefix_lens + i, t->prefix_lens + i + 1,
                    (t->nprefix_lens - i - 1) * sizeof(size_t));
            t->nprefix_lens--;
            break;
        }
    }
}

struct http_route *
ioloop__http_routes_match(const struct http_routes *t, const char *path,
                          size_t len)
{
    struct http_route *r = ioloop__http_routes_get(t, path, len, false);

    for (size_t i = 0; r == NULL && i < t->nprefix_lens; i++) {
        if (t->prefix_lens[i] <= len) {
            r = ioloop__http_routes_get(t, path, t->prefix_lens[i], true);
        }
    }
    return r;
}

void
ioloop__http_routes_free(struct http_routes *t)
{
    free(t->buckets);
    free(t->prefix_lens);
    *t = (struct http_routes){0};
}
