/*
 * host/app/main.c: the ioloop-host command line. Reads the manifest, loads and
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
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends.h"
#include "listenfds.h"
#include "listen_source.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "net.h"
#include "master.h"
#include "metrics.h"
#include "paths.h"
#include "plugin_info.h"
#include "serve.h"
#include "setup.h"

#define ERRLEN 2048

struct options {
    const char *config;
    const char *backend;
    bool check;
    bool list_backends;
    const char *plugin_info;
    bool markdown;      /* --plugin-info as a markdown section */
    const char *signal; /* -s stop|reload */
};


static int parse_args(int argc, char **argv, struct options *o);
static void usage(FILE *out);
static int plugin_info(const char *path, bool markdown);
static void warn_fd_limit(const struct ioloop_backend *backend);
static int signal_master(const char *config, const char *what);
static int peek_manifest(const char *config, bool lock, int *pid_fd,
                         char **pid_file);
static int lock_pid_file(const char *path);
static void remove_pid_file(const char *path, int fd);

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct ioloop_setup s;
    struct ioloop_backend_lib backend = {0};
    ioloop_loop_t *loop = NULL;
    char config[PATH_MAX], backend_dir[PATH_MAX], err[ERRLEN];
    char *pid_file = NULL;
    int rc, pid_fd = -1, status = 1;

    ioloop__log_hold(); /* until the manifest says which format */
    rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    /* Sockets passed by systemd: claimed before anything can fork. */
    ioloop__listenfds_init();
    ioloop__net_set_listener_source(ioloop__listen_source);
    if (o.plugin_info != NULL) {
        ioloop__log_release();
        return plugin_info(o.plugin_info, o.markdown);
    }
    if (o.list_backends && o.config == NULL) {
        ioloop__log_release();
        ioloop__default_dir("backends", backend_dir, sizeof(backend_dir));
        return ioloop__backend_list(backend_dir, stdout) > 0 ? 0 : 1;
    }
    if (o.config == NULL) {
        if (ioloop__default_config(config, sizeof(config)) < 0) {
            ioloop__log_release();
            fprintf(stderr, "ioloop-host: no --config given and no default "
                            "manifest found\n");
            return 1;
        }
        o.config = config;
    }
    if (o.signal != NULL) {
        ioloop__log_release();
        return signal_master(o.config, o.signal);
    }
    if (peek_manifest(o.config, !o.check && !o.list_backends, &pid_fd,
                      &pid_file)
        < 0) {
        return 1;
    }
    if (ioloop__setup_load(&s, o.config, o.backend, err, sizeof(err)) < 0) {
        ioloop__log_cli("%s", err);
        goto out;
    }
    if (o.list_backends) {
        status = ioloop__backend_list(s.backend_dir, stdout) > 0 ? 0 : 1;
        goto out;
    }
    if (ioloop__backend_choose(s.m.backends, s.m.nbackends, s.backend_dir,
                               &backend, &loop, err, sizeof(err)) < 0) {
        ioloop__log_cli("%s: %s", s.m.file, err);
        goto out;
    }
    /* A swap to a name that is no backend would only fail at SIGUSR2. */
    if (ioloop__backend_check_names(s.m.swap, s.m.nswap, s.backend_dir,
                                    "backend_swap", err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s: %s\n", s.m.file, err);
        goto out;
    }
    if (o.check) {
        warn_fd_limit(backend.ops);
        /* Every init and fini, as a start runs them, binding nothing. */
        if (ioloop__setup_check(&s, loop, err, sizeof(err)) < 0) {
            char line[ERRLEN + PATH_MAX];

            ioloop__setup_message(&s, err, line, sizeof(line));
            fprintf(stderr, "ioloop-host: %s\n", line);
            goto out;
        }
        printf("%s: OK (backend %s, %zu plugin%s%s)\n", s.m.file,
               backend.ops->name, s.plugins.n, s.plugins.n == 1 ? "" : "s",
               s.m.workers > 0 ? ", workers" : "");
        status = 0;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN); /* a write to a gone peer returns EPIPE */
    if (s.m.workers > 0) {
        status = ioloop__master_run(&s, loop, &backend, o.config, o.backend);
    } else {
        struct ioloop_metrics *metrics = ioloop__metrics_create(1);

        if (metrics != NULL) {
            ioloop__metrics_attach(loop, metrics, 0);
        }
        status = ioloop__serve(&s, loop, &backend);
        ioloop__metrics_detach(loop);
        ioloop__metrics_free(metrics);
    }

out:
    remove_pid_file(pid_file, pid_fd);
    free(pid_file);
    ioloop_loop_free(loop);
    ioloop__backend_close(&backend);
    ioloop__setup_free(&s);
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
        {"markdown", no_argument, NULL, 'm'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:b:s:Vh", longopts, NULL)) != -1) {
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
        case 'm':
            o->markdown = true;
            break;
        case 's':
            if (strcmp(optarg, "stop") != 0 && strcmp(optarg, "reload") != 0) {
                fprintf(stderr, "ioloop-host: -s: expected stop or reload, "
                                "got '%s'\n",
                        optarg);
                return 2;
            }
            o->signal = optarg;
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
    if (o->markdown && o->plugin_info == NULL) {
        fprintf(stderr, "ioloop-host: --markdown goes with --plugin-info\n");
        return 2;
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
            "       ioloop-host --plugin-info FILE.so [--markdown]\n"
            "       ioloop-host [--config FILE] -s stop|reload\n"
            "\n"
            "  -c, --config FILE   the JSON manifest (default: config/host.json\n"
            "                      beside the build or install tree)\n"
            "  -b, --backend NAME  poller to use, overriding the manifest\n"
            "                      (epoll, select, ...; or auto)\n"
            "      --check         validate all a start validates: the\n"
            "                      manifest, every backend and plugin .so,\n"
            "                      every plugin's config (against its\n"
            "                      schema, then init and fini run,\n"
            "                      listen addresses are parsed, nothing is\n"
            "                      bound); exit 0, or 1 with the line a\n"
            "                      start would print\n"
            "      --list-backends print every backend .so found, its ABI\n"
            "                      version and whether it can start here\n"
            "      --plugin-info FILE.so  print a plugin's name, version, ABI\n"
            "                      and config schema (every key's type,\n"
            "                      default, range and doc) without running\n"
            "                      it; --markdown: as a docs section\n"
            "  -s stop|reload      signal the running host through the\n"
            "                      manifest's pid_file (SIGTERM / SIGHUP)\n"
            "  -V, --version       print the version and the ABI versions\n"
            "  -h, --help          print this help\n"
            "\n"
            "SIGTERM or SIGINT stops gracefully (requests in flight finish,\n"
            "within shutdown_timeout), runs every plugin's fini and exits 0;\n"
            "a second SIGINT stops at once. SIGHUP (with workers) reloads\n"
            "the manifest. SIGUSR2 moves the loop to the next backend of the\n"
            "manifest's \"backend_swap\" list.\n");
}

/* Prints what a plugin .so declares, without running any of its code
 * (dlopen runs no constructor of ours; a plugin should have none). */
static int
plugin_info(const char *path, bool markdown)
{
    const struct ioloop_plugin *d;
    char err[ERRLEN];
    void *dl;

    if (ioloop__plugin_open(path, &dl, &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s\n", err);
        return 1;
    }
    ioloop__plugin_info_print(stdout, path, d, markdown);
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

/* -s stop|reload: SIGTERM or SIGHUP to the pid in the manifest's pid_file. */
static int
signal_master(const char *config, const char *what)
{
    struct ioloop_manifest m;
    char err[ERRLEN];
    long pid = 0;
    FILE *f;

    if (ioloop__manifest_load(config, &m, err, sizeof(err)) < 0) {
        fprintf(stderr, "ioloop-host: %s\n", err);
        return 1;
    }
    if (m.pid_file == NULL) {
        fprintf(stderr, "ioloop-host: %s: pid_file: not set, so -s cannot "
                        "find the running host\n",
                m.file);
        ioloop__manifest_free(&m);
        return 1;
    }
    f = fopen(m.pid_file, "re");
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "ioloop-host: %s: %s\n", m.pid_file,
                f == NULL ? strerror(errno) : "no pid in it");
    } else if (kill((pid_t) pid, strcmp(what, "stop") == 0 ? SIGTERM
                                                          : SIGHUP) < 0) {
        fprintf(stderr, "ioloop-host: kill %ld: %s\n", pid, strerror(errno));
        pid = 0;
    }
    if (f != NULL) {
        fclose(f);
    }
    ioloop__manifest_free(&m);
    return pid > 0 ? 0 : 1;
}

/*
 * Reads the manifest once before anything starts, for two things that
 * must come first: the log format (the lines held so far follow it) and,
 * with lock, the pid_file lock: *pid_fd and *pid_file (a copy of its
 * path, the caller frees it) stay -1 and NULL without a pid_file. A
 * reload never moves the pid_file. Returns 0, or -1 after one error line
 * (the caller exits 1).
 */
static int
peek_manifest(const char *config, bool lock, int *pid_fd, char **pid_file)
{
    struct ioloop_manifest m;
    char err[ERRLEN];
    int rc = 0;

    if (ioloop__manifest_load(config, &m, err, sizeof(err)) < 0) {
        ioloop__log_release();
        ioloop__log_cli("%s", err);
        return -1;
    }
    ioloop__setup_log(&m);
    if (lock && m.pid_file != NULL) {
        *pid_file = strdup(m.pid_file);
        *pid_fd = *pid_file != NULL ? lock_pid_file(m.pid_file) : -1;
        if (*pid_fd < 0) {
            free(*pid_file);
            *pid_file = NULL;
            rc = -1;
        }
    }
    ioloop__manifest_free(&m);
    return rc;
}

/*
 * Takes path with an exclusive flock, then writes our pid in it. The lock
 * lives as long as the returned fd (O_CLOEXEC; workers inherit it through
 * fork, so a host holds it until its last process is gone). A file
 * unlinked by its previous owner between our open and our flock is not
 * ours to take: the loop then opens the new one. Returns the fd, or -1
 * after one error line naming the running host's pid when another host
 * holds the lock.
 */
static int
lock_pid_file(const char *path)
{
    struct stat by_fd, by_path;
    char pid[32];
    ssize_t n;
    int fd, len;

    for (int tries = 0; tries < 10; tries++) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            ioloop__log_cli("pid_file %s: %s", path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;

            n = e == EWOULDBLOCK ? pread(fd, pid, sizeof(pid) - 1, 0) : -1;
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            if (e == EWOULDBLOCK) {
                ioloop__log_cli("pid_file %s is held by the running host "
                                "(pid %s): not starting a second one",
                                path, pid[0] != '\0' ? pid : "unknown");
            } else {
                ioloop__log_cli("pid_file %s: flock: %s", path, strerror(e));
            }
            close(fd);
            return -1;
        }
        if (fstat(fd, &by_fd) == 0 && stat(path, &by_path) == 0
            && by_fd.st_dev == by_path.st_dev
            && by_fd.st_ino == by_path.st_ino) {
            break;
        }
        close(fd); /* unlinked or replaced meanwhile: take the new one */
        fd = -1;
    }
    if (fd < 0) {
        ioloop__log_cli("pid_file %s: keeps being replaced", path);
        return -1;
    }
    len = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) len, 0) != len) {
        ioloop__log_cli("pid_file %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Removes path if fd holds its lock (we wrote it), then releases it. */
static void
remove_pid_file(const char *path, int fd)
{
    if (fd >= 0) {
        if (path != NULL) {
            unlink(path); /* before close: nobody else can hold it yet */
        }
        close(fd);
    }
}
