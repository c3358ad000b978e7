/* host/runtime/config_units.c: durations and sizes as text. */
#include "config_units.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t scale;
};

/* Largest first: the formatters pick the first that divides exactly. */
static const struct unit duration_units[] = {
    {"d", 86400 * INT64_C(1000000000)}, {"h", 3600 * INT64_C(1000000000)},
    {"m", 60 * INT64_C(1000000000)},    {"s", INT64_C(1000000000)},
    {"ms", INT64_C(1000000)},           {NULL, 0},
};

static const struct unit size_units[] = {
    {"TiB", INT64_C(1) << 40}, {"GiB", INT64_C(1) << 30},
    {"MiB", INT64_C(1) << 20}, {"KiB", INT64_C(1) << 10},
    {"B", 1},                  {NULL, 0},
};

static int parse_scaled(const char *s, const struct unit *units,
                        int unit_required, int64_t *out);

int
ioloop__duration_parse(const char *s, int64_t *ns)
{
    return parse_scaled(s, duration_units, 1, ns);
}

int
ioloop__size_parse(const char *s, uint64_t *bytes)
{
    int64_t v;
    int rc;

    /* A size has no fraction: "1.5MiB" is refused. */
    if (strchr(s, '.') != NULL) {
        return -EINVAL;
    }
    rc = parse_scaled(s, size_units, 0, &v);
    if (rc == 0) {
        *bytes = (uint64_t) v;
    }
    return rc;
}

void
ioloop__duration_format(char *buf, size_t len, int64_t ns)
{
    if (ns == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (const struct unit *u = duration_units; u->name != NULL; u++) {
        if (ns % u->scale == 0) {
            snprintf(buf, len, "%" PRId64 "%s", ns / u->scale, u->name);
            return;
        }
    }
    snprintf(buf, len, "%" PRId64 "ns", ns);
}

void
ioloop__size_format(char *buf, size_t len, uint64_t bytes)
{
    for (const struct unit *u = size_units; bytes != 0 && u->scale > 1;
         u++) {
        if (bytes % (uint64_t) u->scale == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", bytes / (uint64_t) u->scale,
                     u->name);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64, bytes);
}

/*
 * Reads digits, an optional fraction and a unit of units (optional
 * unless unit_required: then plain bytes). Exact integer arithmetic: no
 * double rounds "0.1s". Returns 0, -EINVAL or -ERANGE.
 */
static int
parse_scaled(const char *s, const struct unit *units, int unit_required,
             int64_t *out)
{
    const char *p = s;
    int64_t whole = 0, frac = 0, scale = 1, div = 1;
    const struct unit *u;

    if (*p < '0' || *p > '9') {
        return -EINVAL;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (INT64_MAX - 9) / 10) {
            return -ERANGE;
        }
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        for (; *p >= '0' && *p <= '9'; p++) {
            /* Nine places: finer than 1 ns of any unit but "d" (86 us). */
            if (div < INT64_C(1000000000)) {
                frac = frac * 10 + (*p - '0');
                div *= 10;
            }
        }
    }
    if (*p == '\0' && !unit_required) {
        u = NULL;
    } else {
        for (u = units; u->name != NULL && strcmp(u->name, p) != 0; u++) {
        }
        if (u->name == NULL) {
            return -EINVAL;
        }
        scale = u->scale;
    }
    if (whole > INT64_MAX / scale) {
        return -ERANGE;
    }
    whole *= scale;
    /* frac / div of a unit. Every scale with a fraction is a multiple of
     * 10^6 and div at most 10^9: cancelling their common tens leaves a
     * product below 2^63. */
    if (frac != 0) {
        while (div > 1 && scale % 10 == 0) {
            scale /= 10;
            div /= 10;
        }
        frac = frac * scale / div;
        if (whole > INT64_MAX - frac) {
            return -ERANGE;
        }
        whole += frac;
    }
    *out = whole;
    return 0;
}
