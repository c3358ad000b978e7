/*
 * tests/prom_text.h: a strict parser of the Prometheus text exposition
 * format (0.0.4) for the metrics tests, and a bridge to the real
 * `promtool check metrics` (Debian package prometheus) when installed.
 *
 * Besides the format itself (metric and label name syntax, label value
 * escapes, float values, HELP/TYPE syntax, one group per family), the
 * parser enforces what the host promises: each family has exactly one
 * HELP and one TYPE, both before its first sample; counters end in
 * _total and no other type does; counters are finite and >= 0; no series
 * (name and label set) appears twice; a sample line is exactly
 * `name{labels} value` or `name value` (no timestamp); the text ends with
 * a newline.
 */
#ifndef IOLOOP_TEST_PROM_TEXT_H
#define IOLOOP_TEST_PROM_TEXT_H

#include <stddef.h>

#define PROM_NAME_MAX 128
#define PROM_LABELS_MAX 512

/* One sample. labels is canonical: name="value" pairs sorted by name,
 * joined by ',', values as escaped in the text; "" without labels. */
struct prom_sample {
    char name[PROM_NAME_MAX];
    char labels[PROM_LABELS_MAX];
    double value;
};

struct prom_family {
    char name[PROM_NAME_MAX];
    char type[16]; /* counter, gauge, histogram, summary, untyped */
    int helps;
    int types;
    int nsamples;
};

struct prom_doc {
    struct prom_sample *samples;
    size_t nsamples;
    struct prom_family *families;
    size_t nfamilies;
};

/*
 * Parses text into doc. Returns 0, or -1 with one line in err naming the
 * line number and the rule broken (doc is then freed). Free doc with
 * prom_free.
 */
int prom_parse(const char *text, struct prom_doc *doc, char *err,
               size_t errlen);

void prom_free(struct prom_doc *doc);

/* The value of series name{labels} (labels canonical, "" for none), or
 * NaN when absent. */
double prom_value(const struct prom_doc *doc, const char *name,
                  const char *labels);

/* The family called name, or NULL. */
const struct prom_family *prom_family(const struct prom_doc *doc,
                                      const char *name);

/*
 * Runs `promtool check metrics` on text when promtool is on PATH.
 * Returns 1 when it passed, 0 when it complained (its output is
 * printed), -1 when promtool is not installed.
 */
int prom_promtool_check(const char *text);

#endif /* IOLOOP_TEST_PROM_TEXT_H */
