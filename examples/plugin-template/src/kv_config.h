/*
 * kv_config.h: the kv plugin's config struct. The host fills it from the
 * manifest entry's "config", validated against kv_schema (kv.c), before
 * init runs; tests build one directly.
 */
#ifndef KV_CONFIG_H
#define KV_CONFIG_H

#include <stdint.h>

#include <ioloop/config.h>

struct kv_config {
    const char *listen;         /* "HOST:PORT" or "[IPV6]:PORT" */
    int64_t max_keys;           /* 1 to 100000000 */
    ioloop_time_t idle_timeout; /* 0: never */
};

#endif /* KV_CONFIG_H */
