/*
 * host/runtime/config_units.h: durations ("10s", "250ms") and sizes
 * ("64KiB", "1MiB") as config values: read from text, and written back
 * for messages, --plugin-info and the docs.
 */
#ifndef IOLOOP_HOST_CONFIG_UNITS_H
#define IOLOOP_HOST_CONFIG_UNITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads "<digits>[.<digits>]<unit>", unit one of ms, s, m, h, d, into
 * *ns (a fraction below 1 ns is dropped). Returns 0, -EINVAL when s is
 * not of that form, -ERANGE when the value passes INT64_MAX ns.
 */
int ioloop__duration_parse(const char *s, int64_t *ns);

/*
 * Reads "<digits>[unit]", unit one of B, KiB, MiB, GiB, TiB (none:
 * bytes), into *bytes. Returns 0, -EINVAL, or -ERANGE past INT64_MAX.
 */
int ioloop__size_parse(const char *s, uint64_t *bytes);

/* Writes ns in the largest unit that shows it exactly ("1d", "90s",
 * "250ms"; "0s" for 0), or as "Nns" when no unit does. */
void ioloop__duration_format(char *buf, size_t len, int64_t ns);

/* Writes bytes in the largest IEC unit that shows it exactly ("1MiB"),
 * or as a plain number ("1536"). */
void ioloop__size_format(char *buf, size_t len, uint64_t bytes);

#endif /* IOLOOP_HOST_CONFIG_UNITS_H */
