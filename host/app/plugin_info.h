/*
 * host/app/plugin_info.h: --plugin-info, a plugin's descriptor and config
 * schema printed for an operator (text) or for the docs (markdown, from
 * which docs/plugins-reference.md is generated).
 */
#ifndef IOLOOP_HOST_PLUGIN_INFO_H
#define IOLOOP_HOST_PLUGIN_INFO_H

#include <stdbool.h>
#include <stdio.h>

#include <ioloop/plugin.h>

/*
 * Prints d (opened from file) to out: name, version, ABI and every config
 * key with its type, default, accepted range or choices, whether it is
 * required, and its doc line. markdown: a section with a table instead,
 * without the file name (so the docs do not depend on the build folder).
 */
void ioloop__plugin_info_print(FILE *out, const char *file,
                               const struct ioloop_plugin *d, bool markdown);

#endif /* IOLOOP_HOST_PLUGIN_INFO_H */
