/* tests/prom_text.c: the strict Prometheus text parser of prom_text.h. */
#include "prom_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LABELS 16

struct label {
    const char *name;
    size_t name_len;
    const char *value; /* escaped, as in the text */
    size_t value_len;
};

struct parse {
    struct prom_doc *doc;
    long current; /* index of the family whose samples come now, or -1 */
    int line;
    char *err;
    size_t errlen;
};

static int parse_line(struct parse *p, const char *s, size_t len);
static int parse_comment(struct parse *p, const char *s, size_t len);
static int parse_sample(struct parse *p, const char *s, size_t len);
static int parse_labels(struct parse *p, const char **s, const char *end,
                        char *canon, size_t canon_len);
static int parse_value(const char *s, size_t len, double *v);
static size_t name_span(const char *s, const char *end, int label);
static int ends_with(const char *s, const char *suffix);
static struct prom_family *family_get(struct parse *p, const char *name,
                                      size_t len, int add);
static struct prom_family *family_of_sample(struct parse *p,
                                            const char *name);
static int fail(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int label_cmp(const void *a, const void *b);

int
prom_parse(const char *text, struct prom_doc *doc, char *err, size_t errlen)
{
    struct parse p = {doc, -1, 0, err, errlen};
    size_t len = strlen(text);
    const char *s = text;

    memset(doc, 0, sizeof(*doc));
    if (len > 0 && text[len - 1] != '\n') {
        snprintf(err, errlen, "the text does not end with a newline");
        return -1;
    }
    while (*s != '\0') {
        const char *nl = strchr(s, '\n');

        p.line++;
        if (parse_line(&p, s, (size_t) (nl - s)) < 0) {
            prom_free(doc);
            return -1;
        }
        s = nl + 1;
    }
    for (size_t i = 0; i < doc->nfamilies; i++) {
        const struct prom_family *f = &doc->families[i];

        if (f->helps != 1 || f->types != 1) {
            snprintf(err, errlen, "family %s: %d HELP and %d TYPE lines",
                     f->name, f->helps, f->types);
            prom_free(doc);
            return -1;
        }
    }
    return 0;
}

void
prom_free(struct prom_doc *doc)
{
    free(doc->samples);
    free(doc->families);
    memset(doc, 0, sizeof(*doc));
}

double
prom_value(const struct prom_doc *doc, const char *name, const char *labels)
{
    for (size_t i = 0; i < doc->nsamples; i++) {
        if (strcmp(doc->samples[i].name, name) == 0
            && strcmp(doc->samples[i].labels, labels) == 0) {
            return doc->samples[i].value;
        }
    }
    return NAN;
}

const struct prom_family *
prom_family(const struct prom_doc *doc, const char *name)
{
    for (size_t i = 0; i < doc->nfamilies; i++) {
        if (strcmp(doc->families[i].name, name) == 0) {
            return &doc->families[i];
        }
    }
    return NULL;
}

int
prom_promtool_check(const char *text)
{
    char path[] = "/tmp/promtool-out-XXXXXX", cmd[128], out[4096];
    int fd, status;
    ssize_t n;
    FILE *pipe;

    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        return -1;
    }
    fd = mkstemp(path);
    if (fd < 0) {
        return 0;
    }
    snprintf(cmd, sizeof(cmd), "promtool check metrics >%s 2>&1", path);
    pipe = popen(cmd, "w");
    if (pipe == NULL) {
        close(fd);
        unlink(path);
        return 0;
    }
    fputs(text, pipe);
    status = pclose(pipe);
    if (status != 0) {
        n = read(fd, out, sizeof(out) - 1);
        out[n > 0 ? n : 0] = '\0';
        fprintf(stderr, "promtool check metrics (status 0x%x):\n%s\n",
                status, out);
    }
    close(fd);
    unlink(path);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* One line, without its newline. Blank lines are ignored (the format). */
static int
parse_line(struct parse *p, const char *s, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (s[0] == '#') {
        return parse_comment(p, s, len);
    }
    return parse_sample(p, s, len);
}

/* "# HELP name text", "# TYPE name type", or a comment (ignored). */
static int
parse_comment(struct parse *p, const char *s, size_t len)
{
    static const char *const types[] = {
        "counter", "gauge", "histogram", "summary", "untyped", NULL
    };
    const char *end = s + len, *name, *rest;
    struct prom_family *f;
    int help;
    size_t n;

    if (len < 7
        || (memcmp(s, "# HELP ", 7) != 0 && memcmp(s, "# TYPE ", 7) != 0)) {
        return 0;
    }
    p->current = -1; /* ends the group of samples before it */
    help = s[2] == 'H';
    name = s + 7;
    n = name_span(name, end, 0);
    if (n == 0 || name + n == end || name[n] != ' ') {
        return fail(p, "%s: expected a metric name and a space",
                    help ? "HELP" : "TYPE");
    }
    rest = name + n + 1;
    f = family_get(p, name, n, 1);
    if (f == NULL) {
        return -1;
    }
    if (f->nsamples > 0) {
        return fail(p, "%s for %s after its samples", help ? "HELP" : "TYPE",
                    f->name);
    }
    if (help) {
        if (rest == end) {
            return fail(p, "HELP %s: empty text", f->name);
        }
        for (const char *c = rest; c < end; c++) {
            if (*c == '\\'
                && (c + 1 == end || (c[1] != '\\' && c[1] != 'n'))) {
                return fail(p, "HELP %s: bad escape", f->name);
            }
            c += *c == '\\';
        }
        f->helps++;
        return f->helps == 1 ? 0 : fail(p, "second HELP for %s", f->name);
    }
    for (int i = 0; types[i] != NULL; i++) {
        if ((size_t) (end - rest) == strlen(types[i])
            && memcmp(rest, types[i], strlen(types[i])) == 0) {
            snprintf(f->type, sizeof(f->type), "%s", types[i]);
        }
    }
    if (f->type[0] == '\0') {
        return fail(p, "TYPE %s: unknown type", f->name);
    }
    if (++f->types != 1) {
        return fail(p, "second TYPE for %s", f->name);
    }
    if (strcmp(f->type, "counter") == 0 && !ends_with(f->name, "_total")) {
        return fail(p, "counter %s does not end in _total", f->name);
    }
    if (strcmp(f->type, "counter") != 0 && ends_with(f->name, "_total")) {
        return fail(p, "%s %s ends in _total", f->type, f->name);
    }
    return 0;
}

/* `name{labels} value` or `name value`. */
static int
parse_sample(struct parse *p, const char *s, size_t len)
{
    const char *end = s + len;
    struct prom_sample smp = {0};
    struct prom_family *f;
    struct prom_sample *v;
    size_t n = name_span(s, end, 0);

    if (n == 0 || n >= sizeof(smp.name)) {
        return fail(p, "bad metric name");
    }
    memcpy(smp.name, s, n);
    s += n;
    if (s < end && *s == '{'
        && parse_labels(p, &s, end, smp.labels, sizeof(smp.labels)) < 0) {
        return -1;
    }
    if (s == end || *s != ' ' || s + 1 == end) {
        return fail(p, "%s: expected one space and a value", smp.name);
    }
    s++;
    if (parse_value(s, (size_t) (end - s), &smp.value) < 0) {
        return fail(p, "%s: bad value \"%.*s\"", smp.name, (int) (end - s),
                    s);
    }
    f = family_of_sample(p, smp.name);
    if (f == NULL || f->helps != 1 || f->types != 1) {
        return fail(p, "%s: sample before its HELP and TYPE", smp.name);
    }
    if (f - p->doc->families != p->current && f->nsamples > 0) {
        return fail(p, "%s: samples of a family are not one group", f->name);
    }
    p->current = f - p->doc->families;
    if (strcmp(f->type, "counter") == 0
        && (!isfinite(smp.value) || smp.value < 0)) {
        return fail(p, "%s: counter value %g", smp.name, smp.value);
    }
    for (size_t i = 0; i < p->doc->nsamples; i++) {
        if (strcmp(p->doc->samples[i].name, smp.name) == 0
            && strcmp(p->doc->samples[i].labels, smp.labels) == 0) {
            return fail(p, "duplicate series %s{%s}", smp.name, smp.labels);
        }
    }
    v = realloc(p->doc->samples, (p->doc->nsamples + 1) * sizeof(*v));
    if (v == NULL) {
        return fail(p, "out of memory");
    }
    p->doc->samples = v;
    v[p->doc->nsamples++] = smp;
    f->nsamples++;
    return 0;
}

/* {a="x",b="y"}: no spaces, no trailing comma (the canonical shape).
 * Advances *s past '}' and writes the sorted pairs to canon. */
static int
parse_labels(struct parse *p, const char **s, const char *end, char *canon,
             size_t canon_len)
{
    struct label labels[MAX_LABELS];
    const char *c = *s + 1;
    size_t n = 0, used = 0;

    for (;;) {
        struct label *l = &labels[n];

        if (n == MAX_LABELS) {
            return fail(p, "too many labels");
        }
        l->name = c;
        l->name_len = name_span(c, end, 1);
        if (l->name_len == 0
            || (l->name_len >= 2 && memcmp(c, "__", 2) == 0)) {
            return fail(p, "bad label name");
        }
        c += l->name_len;
        if (end - c < 2 || c[0] != '=' || c[1] != '"') {
            return fail(p, "label %.*s: expected =\"", (int) l->name_len,
                        l->name);
        }
        c += 2;
        l->value = c;
        while (c < end && *c != '"') {
            if (*c == '\\') {
                if (c + 1 == end
                    || (c[1] != '\\' && c[1] != '"' && c[1] != 'n')) {
                    return fail(p, "label %.*s: bad escape",
                                (int) l->name_len, l->name);
                }
                c++;
            }
            c++;
        }
        if (c == end) {
            return fail(p, "label %.*s: unterminated value",
                        (int) l->name_len, l->name);
        }
        l->value_len = (size_t) (c - l->value);
        c++;
        for (size_t i = 0; i < n; i++) {
            if (labels[i].name_len == l->name_len
                && memcmp(labels[i].name, l->name, l->name_len) == 0) {
                return fail(p, "label %.*s twice", (int) l->name_len,
                            l->name);
            }
        }
        n++;
        if (c < end && *c == '}') {
            break;
        }
        if (c + 1 >= end || *c != ',' || c[1] == '}') {
            return fail(p, "labels: expected ',' and a label, or '}'");
        }
        c++;
    }
    *s = c + 1;
    qsort(labels, n, sizeof(labels[0]), label_cmp);
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(canon + used, canon_len - used, "%s%.*s=\"%.*s\"",
                         i > 0 ? "," : "", (int) labels[i].name_len,
                         labels[i].name, (int) labels[i].value_len,
                         labels[i].value);

        if (k < 0 || (size_t) k >= canon_len - used) {
            return fail(p, "labels too long");
        }
        used += (size_t) k;
    }
    return 0;
}

/* Go's float syntax as Prometheus writes it: [+-]digits[.digits][e[+-]
 * digits], .digits, NaN, [+-]Inf. */
static int
parse_value(const char *s, size_t len, double *v)
{
    char buf[64];
    const char *c = buf;
    int digits = 0;

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strcmp(buf, "NaN") == 0) {
        *v = NAN;
        return 0;
    }
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0
        || strcmp(buf, "-Inf") == 0) {
        *v = buf[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    c += *c == '+' || *c == '-';
    for (; *c >= '0' && *c <= '9'; c++) {
        digits++;
    }
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++) {
            digits++;
        }
    }
    if (digits == 0) {
        return -1;
    }
    if (*c == 'e' || *c == 'E') {
        c++;
        c += *c == '+' || *c == '-';
        if (!(*c >= '0' && *c <= '9')) {
            return -1;
        }
        while (*c >= '0' && *c <= '9') {
            c++;
        }
    }
    if (*c != '\0') {
        return -1;
    }
    *v = strtod(buf, NULL);
    return 0;
}

/* Length of the metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or, with label,
 * label name ([a-zA-Z_][a-zA-Z0-9_]*) at s. */
static size_t
name_span(const char *s, const char *end, int label)
{
    size_t n = 0;

    for (; s + n < end; n++) {
        char c = s[n];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
              || (!label && c == ':') || (n > 0 && c >= '0' && c <= '9'))) {
            break;
        }
    }
    return n;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The family called name[0..len), added when absent and add is set. */
static struct prom_family *
family_get(struct parse *p, const char *name, size_t len, int add)
{
    struct prom_doc *d = p->doc;
    struct prom_family *v;

    for (size_t i = 0; i < d->nfamilies; i++) {
        if (strlen(d->families[i].name) == len
            && memcmp(d->families[i].name, name, len) == 0) {
            return &d->families[i];
        }
    }
    if (!add) {
        return NULL;
    }
    if (len >= PROM_NAME_MAX) {
        fail(p, "metric name too long");
        return NULL;
    }
    v = realloc(d->families, (d->nfamilies + 1) * sizeof(*v));
    if (v == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    d->families = v;
    v = &d->families[d->nfamilies++];
    memset(v, 0, sizeof(*v));
    memcpy(v->name, name, len);
    return v;
}

/* The family a sample belongs to: its own name, or for a histogram or
 * summary its name less _bucket, _sum or _count. */
static struct prom_family *
family_of_sample(struct parse *p, const char *name)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count", NULL};
    struct prom_family *f = family_get(p, name, strlen(name), 0);

    if (f != NULL) {
        return f;
    }
    for (int i = 0; suffixes[i] != NULL; i++) {
        size_t n = strlen(name), k = strlen(suffixes[i]);

        if (ends_with(name, suffixes[i])) {
            f = family_get(p, name, n - k, 0);
            if (f != NULL && (strcmp(f->type, "histogram") == 0
                              || (strcmp(f->type, "summary") == 0
                                  && i > 0))) {
                return f;
            }
        }
    }
    return NULL;
}

static int
fail(struct parse *p, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "line %d: ", p->line);
    va_list ap;

    va_start(ap, fmt);
    if (n > 0 && (size_t) n < p->errlen) {
        vsnprintf(p->err + n, p->errlen - (size_t) n, fmt, ap);
    }
    va_end(ap);
    return -1;
}

static int
label_cmp(const void *a, const void *b)
{
    const struct label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);

    if (c != 0) {
        return c;
    }
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}
