/*
 * host/main.c: the ioloop-host command line. Reads the manifest, loads and
 * checks every plugin, picks the first backend that starts, runs each
 * plugin's init, then the loop until SIGINT/SIGTERM, then fini.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "paths.h"

#define ERRLEN 2048

struct options {
    const char *config;
    const char *backend;
    bool check;
};

static ioloop_loop_t *signal_loop;

static int parse_args(int argc, char **argv, struct options *o);
static void usage(FILE *out);
static int open_backend(const struct ioloop_manifest *m, const char *dir,
                        struct ioloop_backend_lib *lib, ioloop_loop_t **loop,
                        char *err, size_t errlen);
static void log_skipped(char *tried);
static void list_available(const char *dir, char *buf, size_t len);
static int install_signals(void);
static void on_stop_signal(int signo);
static int stop_cb(ioloop_loop_t *loop, void *arg);

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct ioloop_manifest m = {0};
    struct ioloop_plugin_set plugins = {0};
    struct ioloop_backend_lib backend = {0};
    ioloop_loop_t *loop = NULL;
    char config[PATH_MAX], dir[PATH_MAX], err[ERRLEN];
    int rc, status = 1;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    if (o.config == NULL) {
        if (ioloop__default_config(config, sizeof(config)) < 0) {
            fprintf(stderr, "ioloop-host: no --config given and no default "
                            "manifest found\n");
            return 1;
        }
        o.config = config;
    }
    if (ioloop__manifest_load(o.config, &m, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s\n", err);
        return 1;
    }
    if (o.backend != NULL
        && ioloop__manifest_set_backend(&m, o.backend, err, sizeof(err))
               < 0) {
        fprintf(stderr, "ioloop-host: %s\n", err);
        goto out;
    }
    ioloop__log_threshold = m.log_level;

    if (m.plugin_dir != NULL) {
        snprintf(dir, sizeof(dir), "%s", m.plugin_dir);
    } else {
        ioloop__default_dir("plugins", dir, sizeof(dir));
    }
    if (ioloop__plugins_load(&plugins, &m, dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s: %s\n", m.file, err);
        goto out;
    }
    if (m.backend_dir != NULL) {
        snprintf(dir, sizeof(dir), "%s", m.backend_dir);
    } else {
        ioloop__default_dir("backends", dir, sizeof(dir));
    }
    if (open_backend(&m, dir, &backend, &loop, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s: %s\n", m.file, err);
        goto out;
    }
    if (o.check) {
        printf("%s: OK (backend %s, %zu plugin%s)\n", m.file,
               backend.ops->name, plugins.n, plugins.n == 1 ? "" : "s");
        status = 0;
        goto out;
    }
    signal_loop = loop;
    if (install_signals() < 0) {
        fprintf(stderr, "ioloop-host: sigaction: %s\n", strerror(errno));
        goto out;
    }
    if (ioloop__plugins_init(&plugins, loop, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s: %s\n", m.file, err);
        goto out;
    }
    IOLOOP_LOG(IOLOOP_LOG_INFO, "host",
               "started: backend %s (%s), %zu plugin%s", backend.ops->name,
               backend.path, plugins.n, plugins.n == 1 ? "" : "s");
    rc = ioloop_start(loop);
    ioloop__plugins_fini(&plugins, loop);
    if (rc == 0) {
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "stopped");
        status = 0;
    }

out:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal_loop = NULL;
    ioloop_loop_free(loop);
    ioloop__backend_close(&backend);
    ioloop__plugins_unload(&plugins);
    ioloop__manifest_free(&m);
    return status;
}

/* Returns an exit status to leave with, or -1 to go on. */
static int
parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"backend", required_argument, NULL, 'b'},
        {"check", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:b:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'b':
            o->backend = optarg;
            break;
        case 'k':
            o->check = true;
            break;
        case 'V':
            printf("ioloop-host %s (backend ABI %d.%d, plugin ABI %d.%d)\n",
                   IOLOOP_VERSION, IOLOOP_BACKEND_ABI_MAJOR,
                   IOLOOP_BACKEND_ABI_MINOR, IOLOOP_PLUGIN_ABI_MAJOR,
                   IOLOOP_PLUGIN_ABI_MINOR);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ioloop-host: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: ioloop-host [--config FILE] [--backend NAME] [--check]\n"
            "\n"
            "  -c, --config FILE   the JSON manifest (default: config/host.json\n"
            "                      beside the build or install tree)\n"
            "  -b, --backend NAME  poller to use, overriding the manifest\n"
            "                      (epoll, select, ...; or auto)\n"
            "      --check         validate the manifest, load and check every\n"
            "                      .so, bind nothing; exit 0 or 1\n"
            "  -V, --version       print the version and the ABI versions\n"
            "  -h, --help          print this help\n"
            "\n"
            "SIGINT or SIGTERM stops the loop, runs every plugin's fini and\n"
            "exits 0.\n");
}

/*
 * Tries the manifest's backends in order: the first that loads, passes
 * the ABI checks and creates its kernel state wins. When one does, each
 * earlier failure is logged at info with its reason; when none does, err
 * gives every reason in one line.
 */
static int
open_backend(const struct ioloop_manifest *m, const char *dir,
             struct ioloop_backend_lib *lib, ioloop_loop_t **loop, char *err,
             size_t errlen)
{
    char path[PATH_MAX], reason[1024], tried[ERRLEN] = "";
    size_t used = 0;

    for (size_t i = 0; i < m->nbackends; i++) {
        const char *name = m->backends[i];
        char file[NAME_MAX];

        snprintf(file, sizeof(file), "%s.so", name);
        if (ioloop__path_join(path, sizeof(path), dir, file) < 0) {
            snprintf(reason, sizeof(reason), "path too long");
        } else if (access(path, F_OK) < 0) {
            char avail[512];

            list_available(dir, avail, sizeof(avail));
            snprintf(reason, sizeof(reason),
                     "unknown backend \"%s\": no %s in %s (available: %s)",
                     name, file, dir, avail);
        } else if (ioloop__backend_open(path, lib, reason, sizeof(reason))
                   == 0) {
            *loop = ioloop_loop_new(lib->ops, reason, sizeof(reason));
            if (*loop != NULL) {
                log_skipped(tried);
                return 0;
            }
            ioloop__backend_close(lib);
        }
        if (m->nbackends == 1) {
            snprintf(err, errlen, "backend: %s", reason);
            return -1;
        }
        /* One "name: reason" line per failed attempt. */
        used += (size_t) snprintf(tried + used, sizeof(tried) - used,
                                  "%s: %s\n", name, reason);
        if (used >= sizeof(tried)) {
            used = sizeof(tried) - 1;
        }
    }
    for (char *nl = strchr(tried, '\n'); nl != NULL; nl = strchr(nl, '\n')) {
        *nl = nl[1] ? ';' : '\0';
    }
    snprintf(err, errlen, "backend: no usable backend (%s)", tried);
    return -1;
}

/* Logs each "name: reason" line of tried as a skipped backend. */
static void
log_skipped(char *tried)
{
    for (char *line = strtok(tried, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');

        *colon = '\0';
        IOLOOP_LOG(IOLOOP_LOG_INFO, "host", "backend %s unavailable:%s",
                   line, colon + 1);
    }
}

/* Comma-separated names of the *.so files in dir, or "none". */
static void
list_available(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t used = 0;

    buf[0] = '\0';
    while (d != NULL && (e = readdir(d)) != NULL && used < len) {
        size_t n = strlen(e->d_name);

        if (n > 3 && strcmp(e->d_name + n - 3, ".so") == 0) {
            used += (size_t) snprintf(buf + used, len - used, "%s%.*s",
                                      used ? ", " : "", (int) (n - 3),
                                      e->d_name);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (buf[0] == '\0') {
        snprintf(buf, len, "none");
    }
}

static int
install_signals(void)
{
    struct sigaction sa = {0};

    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        return -1;
    }
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0
        || sigaction(SIGTERM, &sa, NULL) < 0) {
        return -1;
    }
    return 0;
}

static void
on_stop_signal(int signo)
{
    (void) signo;
    if (signal_loop != NULL) {
        ioloop_add_callback_from_signal(signal_loop, stop_cb, NULL);
    }
}

static int
stop_cb(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}
