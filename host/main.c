/*
 * host/main.c: the ioloop-host command line. Reads the manifest, loads and
 * checks every plugin, picks the first backend that starts, runs each
 * plugin's init, then the loop until SIGINT/SIGTERM, then fini.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backends.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "paths.h"
#include "signals.h"

#define ERRLEN 2048

struct options {
    const char *config;
    const char *backend;
    bool check;
    bool list_backends;
    const char *plugin_info;
};

/* What a live swap needs: the backend in use, where to find the next and
 * which one comes next. */
static struct {
    struct ioloop_backend_lib *backend;
    const struct ioloop_manifest *m;
    const char *backend_dir;
    size_t next_swap;
} host;

static int parse_args(int argc, char **argv, struct options *o);
static void usage(FILE *out);
static int plugin_info(const char *path);
static void warn_fd_limit(const struct ioloop_backend *backend);
static int install_signals(ioloop_loop_t *loop);
static int stop_cb(ioloop_loop_t *loop, int signo, void *arg);
static int swap_cb(ioloop_loop_t *loop, int signo, void *arg);

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct ioloop_manifest m = {0};
    struct ioloop_plugin_set plugins = {0};
    struct ioloop_backend_lib backend = {0};
    ioloop_loop_t *loop = NULL;
    char config[PATH_MAX], dir[PATH_MAX], backend_dir[PATH_MAX];
    char err[ERRLEN];
    int rc, status = 1;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    if (o.plugin_info != NULL) {
        return plugin_info(o.plugin_info);
    }
    if (o.list_backends && o.config == NULL) {
        ioloop__default_dir("backends", backend_dir, sizeof(backend_dir));
        return ioloop__backend_list(backend_dir, stdout) > 0 ? 0 : 1;
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
        snprintf(backend_dir, sizeof(backend_dir), "%s", m.backend_dir);
    } else {
        ioloop__default_dir("backends", backend_dir, sizeof(backend_dir));
    }
    if (o.list_backends) {
        status = ioloop__backend_list(backend_dir, stdout) > 0 ? 0 : 1;
        goto out;
    }
    if (ioloop__backend_choose(m.backends, m.nbackends, backend_dir, &backend,
                               &loop, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s: %s\n", m.file, err);
        goto out;
    }
    if (o.check) {
        warn_fd_limit(backend.ops);
        printf("%s: OK (backend %s, %zu plugin%s)\n", m.file,
               backend.ops->name, plugins.n, plugins.n == 1 ? "" : "s");
        status = 0;
        goto out;
    }
    host.backend = &backend;
    host.m = &m;
    host.backend_dir = backend_dir;
    rc = install_signals(loop);
    if (rc < 0) {
        fprintf(stderr, "ioloop-host: signals: %s\n", strerror(-rc));
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
    if (loop != NULL) {
        ioloop__signal_unsubscribe_owner(loop, NULL);
    }
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
        {"list-backends", no_argument, NULL, 'l'},
        {"plugin-info", required_argument, NULL, 'p'},
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
        case 'l':
            o->list_backends = true;
            break;
        case 'p':
            o->plugin_info = optarg;
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
            "       ioloop-host [--config FILE] --list-backends\n"
            "       ioloop-host --plugin-info FILE.so\n"
            "\n"
            "  -c, --config FILE   the JSON manifest (default: config/host.json\n"
            "                      beside the build or install tree)\n"
            "  -b, --backend NAME  poller to use, overriding the manifest\n"
            "                      (epoll, select, ...; or auto)\n"
            "      --check         validate the manifest, load and check every\n"
            "                      .so, bind nothing; exit 0 or 1\n"
            "      --list-backends print every backend .so found, its ABI\n"
            "                      version and whether it can start here\n"
            "      --plugin-info FILE.so  print a plugin's name, version, ABI\n"
            "                      and config keys without running it\n"
            "  -V, --version       print the version and the ABI versions\n"
            "  -h, --help          print this help\n"
            "\n"
            "SIGINT or SIGTERM stops the loop, runs every plugin's fini and\n"
            "exits 0. SIGUSR2 moves the running loop to the next backend of\n"
            "the manifest's \"backend_swap\" list.\n");
}

/* Prints what a plugin .so declares, without running any of its code
 * (dlopen runs no constructor of ours; a plugin should have none). */
static int
plugin_info(const char *path)
{
    const struct ioloop_plugin *d;
    char err[ERRLEN];
    void *dl;

    if (ioloop__plugin_open(path, &dl, &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s\n", err);
        return 1;
    }
    printf("file:        %s\n", path);
    printf("name:        %s\n", d->name);
    printf("version:     %s\n", d->version != NULL ? d->version : "?");
    printf("abi:         %u.%u (this host: %u.%u)\n",
           IOLOOP_ABI_MAJOR(d->abi_version), IOLOOP_ABI_MINOR(d->abi_version),
           IOLOOP_PLUGIN_ABI_MAJOR, IOLOOP_PLUGIN_ABI_MINOR);
    if (d->description != NULL) {
        printf("description: %s\n", d->description);
    }
    printf("config keys:");
    for (const char *const *k = d->config_keys; k != NULL && *k != NULL;
         k++) {
        printf("%s %s", k == d->config_keys ? "" : ",", *k);
    }
    printf("%s\n", d->config_keys == NULL ? " (not declared)" : "");
    dlclose(dl);
    return 0;
}

/* --check: select cannot use fds past FD_SETSIZE; say so up front. */
static void
warn_fd_limit(const struct ioloop_backend *backend)
{
    struct rlimit rl;

    if (backend->max_fd != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0
        && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > backend->max_fd)) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "backend %s watches only fds < %u (FD_SETSIZE) but the "
                   "fd limit is %llu: connections past it will be refused; "
                   "use poll or epoll",
                   backend->name, backend->max_fd,
                   (unsigned long long) rl.rlim_cur);
    }
}

/* SIGPIPE is ignored (a write to a closed peer returns EPIPE); the stop
 * and swap signals go through the loop's signal subscriptions, which
 * plugins may share. */
static int
install_signals(ioloop_loop_t *loop)
{
    struct sigaction sa = {0};

    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        return -errno;
    }
    if (ioloop__signal_subscribe_host(loop, SIGINT, stop_cb, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGTERM, stop_cb, NULL) < 0
        || ioloop__signal_subscribe_host(loop, SIGUSR2, swap_cb, NULL) < 0) {
        return -EINVAL;
    }
    return 0;
}

static int
stop_cb(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) signo;
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

/* Runs at the top of an iteration (the callbacks phase), between polls. */
static int
swap_cb(ioloop_loop_t *loop, int signo, void *arg)
{
    char err[ERRLEN];
    const char *name;

    (void) signo;
    (void) arg;
    if (host.m->nswap == 0) {
        IOLOOP_LOG(IOLOOP_LOG_WARN, "host",
                   "SIGUSR2: no \"backend_swap\" list in %s; ignored",
                   host.m->file);
        return 0;
    }
    name = host.m->swap[host.next_swap];
    host.next_swap = (host.next_swap + 1) % host.m->nswap;
    if (ioloop__backend_swap(loop, host.backend, host.backend_dir, name, err,
                             sizeof(err)) < 0) {
        IOLOOP_LOG(IOLOOP_LOG_ERROR, "host", "%s", err);
    }
    return 0;
}
