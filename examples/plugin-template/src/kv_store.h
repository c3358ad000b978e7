/*
 * kv_store.h: the key/value store and its line protocol, without any I/O,
 * so that both can be unit-tested as plain functions.
 *
 * Protocol: one command per line (the caller strips the "\n"; a trailing
 * "\r" is ignored), one reply line per command:
 *
 *     SET key value   -> OK                (value: the rest of the line)
 *     GET key         -> VALUE <value> | NOT_FOUND
 *     DEL key         -> OK | NOT_FOUND
 *     COUNT           -> VALUE <number of keys>
 *     anything else   -> ERR <reason>
 *
 * Keys are 1 to KV_MAX_KEY bytes without spaces; values are any bytes but
 * "\n". Keys and values are binary-safe otherwise (lengths, not NULs).
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stddef.h>

#define KV_MAX_KEY 256

struct kv_store;

/* A reply line: head, then body_len bytes of body (none when 0), then
 * "\n". body is borrowed from the store: valid until its next change. */
struct kv_reply {
    char head[96];
    const char *body;
    size_t body_len;
};

/* A store that holds at most max_keys keys (> 0). NULL with errno ENOMEM
 * on allocation failure. */
struct kv_store *kv_store_new(size_t max_keys);

/* Frees the store and every key in it. NULL is a no-op. */
void kv_store_free(struct kv_store *kv);

/* Sets key to value (both copied). Returns 0; -ENOSPC when key is new and
 * the store holds max_keys keys; -ENOMEM. */
int kv_store_set(struct kv_store *kv, const char *key, size_t klen,
                 const char *value, size_t vlen);

/* The value of key (not NUL-terminated) with *vlen set, or NULL. */
const char *kv_store_get(const struct kv_store *kv, const char *key,
                         size_t klen, size_t *vlen);

/* Deletes key. Returns 0, or -ENOENT when it is absent. */
int kv_store_del(struct kv_store *kv, const char *key, size_t klen);

/* How many keys the store holds. */
size_t kv_store_count(const struct kv_store *kv);

/* Runs one command line (len bytes, without the "\n") and fills *reply. */
void kv_execute(struct kv_store *kv, const char *line, size_t len,
                struct kv_reply *reply);

#endif /* KV_STORE_H */
