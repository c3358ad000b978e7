/* tests/integration/host_process.c: ioloop-host as a child process. */
#include "host_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static int write_manifest(struct host_process *hp, const char *backend,
                          const char *extra_json, const char *plugins_json);
static void *reader_main(void *arg);
static void wait_log_eof(struct host_process *hp, int timeout_ms);
static int find_port(const char *log, const char *name);
static void deadline_after(struct timespec *ts, int ms);
static double now_ms(void);

int
host_start(struct host_process *hp, const char *backend,
           const char *plugins_json)
{
    return host_start_nofile(hp, backend, plugins_json, 0);
}

int
host_start_nofile(struct host_process *hp, const char *backend,
                  const char *plugins_json, int nofile)
{
    return host_start_ex(hp, backend, NULL, plugins_json, nofile);
}

int
host_start_ex(struct host_process *hp, const char *backend,
              const char *extra_json, const char *plugins_json, int nofile)
{
    struct rlimit lim = { (rlim_t) nofile, (rlim_t) nofile };
    char *argv[] = { "ioloop-host", "--config", hp->manifest, NULL };
    pthread_condattr_t attr;
    pid_t parent = getpid();
    int pipefd[2];

    memset(hp, 0, sizeof(*hp));
    hp->err_fd = -1;
    pthread_mutex_init(&hp->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&hp->cond, &attr);
    pthread_condattr_destroy(&attr);
    hp->log_cap = 4096;
    hp->log = calloc(1, hp->log_cap);
    if (hp->log == NULL) {
        return -1;
    }
    if (access(HOST_BINARY, X_OK) < 0) {
        fprintf(stderr, "host: %s: %s\n", HOST_BINARY, strerror(errno));
        return -1;
    }
    if (write_manifest(hp, backend, extra_json, plugins_json) < 0) {
        return -1;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        perror("host: pipe2");
        return -1;
    }
    hp->pid = fork();
    if (hp->pid < 0) {
        perror("host: fork");
        hp->pid = 0;
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (hp->pid == 0) {
        /* Only async-signal-safe calls from here on. The host dies with
         * the test, even one killed by the CTest timeout. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || dup2(pipefd[1], STDERR_FILENO) < 0
            || (nofile > 0 && setrlimit(RLIMIT_NOFILE, &lim) < 0)) {
            _exit(127);
        }
        execv(HOST_BINARY, argv);
        _exit(127);
    }
    close(pipefd[1]);
    hp->err_fd = pipefd[0];
    if (pthread_create(&hp->reader, NULL, reader_main, hp) != 0) {
        fprintf(stderr, "host: pthread_create failed\n");
        return -1;
    }
    hp->reader_running = 1;
    return 0;
}

int
host_port(struct host_process *hp, const char *name, int timeout_ms)
{
    struct timespec deadline;
    int port, rc = 0;

    deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&hp->lock);
    while ((port = find_port(hp->log, name)) < 0 && !hp->eof && rc == 0) {
        rc = pthread_cond_timedwait(&hp->cond, &hp->lock, &deadline);
    }
    pthread_mutex_unlock(&hp->lock);
    return port;
}

int
host_wait(struct host_process *hp, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    struct timespec tick = { 0, 1000000 };
    pid_t r;

    if (hp->pid <= 0) {
        return -1;
    }
    for (;;) {
        r = waitpid(hp->pid, &hp->status, WNOHANG);
        if (r == hp->pid) {
            hp->pid = 0;
            hp->exited_ms = now_ms();
            wait_log_eof(hp, timeout_ms);
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (now_ms() >= deadline) {
            return -1;
        }
        nanosleep(&tick, NULL);
    }
}

int
host_stop(struct host_process *hp, int sig, int timeout_ms,
          double *elapsed_ms)
{
    double start;
    int rc;

    if (hp->pid <= 0) {
        return -1;
    }
    start = now_ms();
    kill(hp->pid, sig);
    rc = host_wait(hp, timeout_ms);
    *elapsed_ms = (rc == 0 ? hp->exited_ms : now_ms()) - start;
    return rc;
}

long
host_cpu_ms(struct host_process *hp)
{
    unsigned long utime, stime;
    char path[64], buf[1024], *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) hp->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the ")" that ends field 2. */
    p = strrchr(buf, ')');
    if (p == NULL
        || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                  &utime, &stime) != 2) {
        return -1;
    }
    return (long) ((utime + stime) * 1000
                   / (unsigned long) sysconf(_SC_CLK_TCK));
}

int
host_log_count(struct host_process *hp, const char *text)
{
    const char *p;
    int count = 0;

    pthread_mutex_lock(&hp->lock);
    for (p = hp->log != NULL ? strstr(hp->log, text) : NULL; p != NULL;
         p = strstr(p + 1, text)) {
        count++;
    }
    pthread_mutex_unlock(&hp->lock);
    return count;
}

int
host_stop_clean(struct host_process *hp)
{
    double elapsed;

    if (host_stop(hp, SIGTERM, HOST_TIMEOUT_MS, &elapsed) < 0) {
        fprintf(stderr, "host: no exit %d ms after SIGTERM\n",
                HOST_TIMEOUT_MS);
    } else if (!WIFEXITED(hp->status) || WEXITSTATUS(hp->status) != 0) {
        fprintf(stderr, "host: ended with status 0x%x\n", hp->status);
    } else {
        return 0;
    }
    host_dump_log(hp);
    return -1;
}

void
host_dump_log(struct host_process *hp)
{
    if (hp->log == NULL) {
        return;
    }
    pthread_mutex_lock(&hp->lock);
    fprintf(stderr, "----- ioloop-host stderr (%s) -----\n%s"
            "----- end of ioloop-host stderr -----\n",
            hp->manifest, hp->log);
    pthread_mutex_unlock(&hp->lock);
}

void
host_cleanup(struct host_process *hp)
{
    if (hp->pid > 0) {
        kill(hp->pid, SIGKILL);
        while (waitpid(hp->pid, &hp->status, 0) < 0 && errno == EINTR) {
        }
        hp->pid = 0;
    }
    if (hp->reader_running) {
        /* The host is gone, so the reader sees EOF and ends. */
        pthread_join(hp->reader, NULL);
        hp->reader_running = 0;
    }
    if (hp->err_fd >= 0) {
        close(hp->err_fd);
        hp->err_fd = -1;
    }
    if (hp->manifest[0] != '\0') {
        unlink(hp->manifest);
        hp->manifest[0] = '\0';
    }
    if (hp->dir[0] != '\0') {
        rmdir(hp->dir);
        hp->dir[0] = '\0';
    }
    if (hp->log != NULL) {
        free(hp->log);
        hp->log = NULL;
        pthread_cond_destroy(&hp->cond);
        pthread_mutex_destroy(&hp->lock);
    }
}

/* Writes the manifest to a fresh temp folder. 0 or -1 (printed). */
static int
write_manifest(struct host_process *hp, const char *backend,
               const char *extra_json, const char *plugins_json)
{
    json_error_t jerr;
    json_t *plugins, *root;
    int rc;

    plugins = json_loads(plugins_json, 0, &jerr);
    if (plugins == NULL) {
        fprintf(stderr, "host: plugins JSON: %d:%d: %s\n", jerr.line,
                jerr.column, jerr.text);
        return -1;
    }
    root = json_pack("{s:s, s:s, s:o}", "backend", backend, "backend_dir",
                     HOST_BACKEND_DIR, "plugins", plugins);
    if (root == NULL) {
        return -1;
    }
    if (extra_json != NULL) {
        json_t *extra = json_loads(extra_json, 0, &jerr);

        rc = extra != NULL ? json_object_update(root, extra) : -1;
        json_decref(extra);
        if (rc < 0) {
            fprintf(stderr, "host: extra manifest JSON is not an object\n");
            json_decref(root);
            return -1;
        }
    }
    snprintf(hp->dir, sizeof(hp->dir), "/tmp/ioloop-itest-XXXXXX");
    if (mkdtemp(hp->dir) == NULL) {
        perror("host: mkdtemp");
        hp->dir[0] = '\0';
        json_decref(root);
        return -1;
    }
    snprintf(hp->manifest, sizeof(hp->manifest), "%s/host.json", hp->dir);
    rc = json_dump_file(root, hp->manifest, JSON_INDENT(2));
    json_decref(root);
    if (rc < 0) {
        fprintf(stderr, "host: cannot write %s\n", hp->manifest);
        return -1;
    }
    return 0;
}

/* Copies the host's stderr into hp->log until EOF. */
static void *
reader_main(void *arg)
{
    struct host_process *hp = arg;
    char buf[4096];
    ssize_t n;
    char *log;

    for (;;) {
        n = read(hp->err_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        pthread_mutex_lock(&hp->lock);
        if (n <= 0) {
            hp->eof = 1;
            pthread_cond_broadcast(&hp->cond);
            pthread_mutex_unlock(&hp->lock);
            return NULL;
        }
        if (hp->log_len + (size_t) n + 1 > hp->log_cap) {
            log = realloc(hp->log, 2 * (hp->log_len + (size_t) n + 1));
            if (log != NULL) {
                hp->log = log;
                hp->log_cap = 2 * (hp->log_len + (size_t) n + 1);
            }
        }
        if (hp->log_len + (size_t) n + 1 <= hp->log_cap) {
            memcpy(hp->log + hp->log_len, buf, (size_t) n);
            hp->log_len += (size_t) n;
            hp->log[hp->log_len] = '\0';
        }
        pthread_cond_broadcast(&hp->cond);
        pthread_mutex_unlock(&hp->lock);
    }
}

/* Waits (bounded) until the reader has seen EOF, so that the log holds
 * everything an exited host wrote. */
static void
wait_log_eof(struct host_process *hp, int timeout_ms)
{
    struct timespec deadline;
    int rc = 0;

    deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&hp->lock);
    while (!hp->eof && rc == 0) {
        rc = pthread_cond_timedwait(&hp->cond, &hp->lock, &deadline);
    }
    pthread_mutex_unlock(&hp->lock);
}

/*
 * Finds "[name] listening on ADDR:PORT" in a complete line of log and
 * returns PORT, or -1.
 */
static int
find_port(const char *log, const char *name)
{
    char needle[128];
    const char *p, *eol, *colon;

    snprintf(needle, sizeof(needle), " [%s] listening on ", name);
    for (p = strstr(log, needle); p != NULL; p = strstr(p + 1, needle)) {
        p += strlen(needle);
        eol = strchr(p, '\n');
        if (eol == NULL) {
            return -1; /* the line is not complete yet */
        }
        for (colon = eol; colon > p && colon[-1] != ':'; colon--) {
        }
        if (colon > p) {
            return atoi(colon);
        }
    }
    return -1;
}

static void
deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long) (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

int
host_refuses(const char *plugins_json, const char *want)
{
    struct host_process hp;
    int rc;

    memset(&hp, 0, sizeof(hp));
    rc = host_start(&hp, "epoll", plugins_json);
    if (rc == 0) {
        rc = host_wait(&hp, HOST_TIMEOUT_MS);
    }
    if (rc < 0 || !WIFEXITED(hp.status) || WEXITSTATUS(hp.status) != 1
        || host_log_count(&hp, want) != 1
        || host_log_count(&hp, "listening") != 0) {
        host_dump_log(&hp);
        rc = -1;
    }
    host_cleanup(&hp);
    return rc;
}
