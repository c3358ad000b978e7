/* host/app/setup.c: manifest + plugins loaded and checked, nothing started. */
#include "setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "json_path.h"
#include "log.h"
#include "net.h"
#include "paths.h"

static int plugins_load(struct ioloop_setup *s, const char *dir, char *err,
                        size_t errlen);

int
ioloop__setup_log(const struct ioloop_manifest *m)
{
    struct ioloop_log_override *v = NULL;
    int rc;

    if (m->nplugins > 0) {
        v = calloc(m->nplugins, sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < m->nplugins; i++) {
        v[i] = (struct ioloop_log_override){m->plugins[i].name,
                                            m->plugins[i].log_level};
    }
    rc = ioloop__log_configure(m->log_level, m->log_json, v, m->nplugins);
    free(v);
    return rc;
}

int
ioloop__setup_load(struct ioloop_setup *s, const char *config,
                   const char *backend_override, char *err, size_t errlen)
{
    char dir[PATH_MAX];

    memset(s, 0, sizeof(*s));
    if (ioloop__manifest_load(config, &s->m, err, errlen) < 0) {
        return -1;
    }
    if (backend_override != NULL
        && ioloop__manifest_set_backend(&s->m, backend_override, err, errlen)
               < 0) {
        goto fail;
    }
    if (s->m.plugin_dir != NULL) {
        snprintf(dir, sizeof(dir), "%s", s->m.plugin_dir);
    } else {
        ioloop__default_dir("plugins", dir, sizeof(dir));
    }
    if (plugins_load(s, dir, err, errlen) < 0) {
        goto fail;
    }
    if (s->m.backend_dir != NULL) {
        snprintf(s->backend_dir, sizeof(s->backend_dir), "%s",
                 s->m.backend_dir);
    } else {
        ioloop__default_dir("backends", s->backend_dir,
                            sizeof(s->backend_dir));
    }
    return 0;

fail:
    ioloop__setup_free(s);
    return -1;
}

int
ioloop__setup_check(struct ioloop_setup *s, ioloop_loop_t *loop, char *err,
                    size_t errlen)
{
    int rc;

    ioloop__net_set_check_mode(1);
    /* The servers as a start makes them (addresses, certificates), and
     * every route's instance must register its handler. */
    rc = ioloop__http_servers_create(loop, s->m.servers, s->m.nservers, err,
                                     errlen);
    if (rc == 0) {
        rc = ioloop__plugins_init(&s->plugins, loop, err, errlen);
        if (rc == 0) {
            rc = ioloop__http_servers_start(loop, &s->plugins, err,
                                            errlen);
            ioloop__plugins_fini(&s->plugins, loop);
        }
        ioloop__http_servers_free(loop);
    }
    ioloop__net_set_check_mode(0);
    return rc;
}

void
ioloop__setup_message(const struct ioloop_setup *s, const char *err,
                      char *out, size_t len)
{
    int line, column;

    /* Only the instance whose init failed has a place (an error path:
     * the scan is fine). */
    for (size_t i = 0; i < s->plugins.n; i++) {
        const char *at = s->plugins.v[i].refused_at;

        if (at[0] != '\0'
            && ioloop__json_locate(s->m.text, s->m.text_len, at, &line,
                                   &column) >= 0) {
            snprintf(out, len, "%s:%d:%d: %s", s->m.file, line, column,
                     err);
            return;
        }
    }
    snprintf(out, len, "%s: %s", s->m.file, err);
}

void
ioloop__setup_free(struct ioloop_setup *s)
{
    ioloop__plugins_unload(&s->plugins);
    ioloop__manifest_free(&s->m);
    memset(s, 0, sizeof(*s));
}

/*
 * Loads the manifest's plugins, their configs filled. A refused config
 * value is reported at its line:column in the manifest:
 * "host.json:14:23: plugins[1].config.header_timeout: expected ...".
 */
static int
plugins_load(struct ioloop_setup *s, const char *dir, char *err,
             size_t errlen)
{
    struct ioloop_instance_spec *specs;
    char reason[1536], at[320];
    int line, column, rc;

    specs = calloc(s->m.nplugins ? s->m.nplugins : 1, sizeof(*specs));
    if (specs == NULL) {
        snprintf(err, errlen, "%s: out of memory", s->m.file);
        return -1;
    }
    for (size_t i = 0; i < s->m.nplugins; i++) {
        const struct ioloop_manifest_plugin *e = &s->m.plugins[i];

        specs[i] = (struct ioloop_instance_spec) {
            e->name, e->path, e->where, e->config, e->log_level,
            e->one_process,
        };
    }
    rc = ioloop__plugins_load(&s->plugins, specs, s->m.nplugins, dir,
                              s->m.dir, reason, sizeof(reason), at,
                              sizeof(at));
    free(specs);
    if (rc < 0 && at[0] != '\0'
        && ioloop__json_locate(s->m.text, s->m.text_len, at, &line, &column)
               >= 0) {
        snprintf(err, errlen, "%s:%d:%d: %s", s->m.file, line, column,
                 reason);
    } else if (rc < 0) {
        snprintf(err, errlen, "%s: %s", s->m.file, reason);
    }
    return rc;
}
