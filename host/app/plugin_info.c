/* host/app/plugin_info.c: a plugin's descriptor and schema, printed. */
#include "plugin_info.h"

#include "config_schema.h"

static void print_text(FILE *out, const struct ioloop_config_field *f);
static void print_markdown(FILE *out, const struct ioloop_config_field *f);
static void put_cell(FILE *out, const char *s);

void
ioloop__plugin_info_print(FILE *out, const char *file,
                          const struct ioloop_plugin *d, bool markdown)
{
    const struct ioloop_config_field *f = d->config_schema;

    if (markdown) {
        fprintf(out, "## %s %s\n\n", d->name,
                d->version != NULL ? d->version : "");
        if (d->description != NULL) {
            fprintf(out, "%s.\n\n", d->description);
        }
        if (f == NULL || f->name == NULL) {
            fprintf(out, "No config keys.\n");
            return;
        }
        fprintf(out, "| Key | Type | Default | Accepts | Description |\n"
                     "|-----|------|---------|---------|-------------|\n");
        for (; f->name != NULL; f++) {
            print_markdown(out, f);
        }
        return;
    }
    fprintf(out, "file:        %s\n", file);
    fprintf(out, "name:        %s\n", d->name);
    fprintf(out, "version:     %s\n", d->version != NULL ? d->version : "?");
    fprintf(out, "abi:         %u.%u (this host: %u.%u)\n",
            IOLOOP_ABI_MAJOR(d->abi_version),
            IOLOOP_ABI_MINOR(d->abi_version), IOLOOP_PLUGIN_ABI_MAJOR,
            IOLOOP_PLUGIN_ABI_MINOR);
    if (d->description != NULL) {
        fprintf(out, "description: %s\n", d->description);
    }
    fprintf(out, "config:%s\n",
            f == NULL || f->name == NULL ? "      (no keys)" : "");
    for (; f != NULL && f->name != NULL; f++) {
        print_text(out, f);
    }
}

/* "  key  type  required | default D  accepts R" then the doc line. */
static void
print_text(FILE *out, const struct ioloop_config_field *f)
{
    char range[256];

    ioloop__config_field_range(f, range, sizeof(range));
    fprintf(out, "  %-20s %s", f->name, ioloop__config_type_name(f->type));
    if (f->flags & IOLOOP_CONFIG_REQUIRED) {
        fprintf(out, ", required");
    }
    if (f->def != NULL) {
        fprintf(out, ", default %s", f->def);
    }
    if (range[0] != '\0') {
        fprintf(out, ", %s %s",
                f->type == IOLOOP_CONFIG_T_ENUM ? "one of" : "in", range);
    }
    fprintf(out, "\n      %s\n", f->doc != NULL ? f->doc : "");
}

static void
print_markdown(FILE *out, const struct ioloop_config_field *f)
{
    char range[256];

    ioloop__config_field_range(f, range, sizeof(range));
    fprintf(out, "| `%s` | %s | ", f->name,
            ioloop__config_type_name(f->type));
    if (f->flags & IOLOOP_CONFIG_REQUIRED) {
        fprintf(out, "required");
    } else if (f->def != NULL) {
        fprintf(out, "`");
        put_cell(out, f->def);
        fprintf(out, "`");
    }
    fprintf(out, " | ");
    put_cell(out, range);
    fprintf(out, " | ");
    put_cell(out, f->doc != NULL ? f->doc : "");
    fprintf(out, " |\n");
}

/* A table cell: '|' escaped, a newline (none expected) as a space. */
static void
put_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|') {
            fputs("\\|", out);
        } else {
            fputc(*s == '\n' ? ' ' : *s, out);
        }
    }
}
