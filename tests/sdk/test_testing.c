/*
 * tests/sdk/test_testing.c: libioloop_testing (api/ioloop/testing.h) with
 * a small probe plugin: timers fire on advance, a fired fd reaches the
 * plugin's handler, a stream over a socketpair carries real bytes, a bad
 * config gets the very message `ioloop-host --check` prints (echo,
 * compiled in, against the real host), the log is captured, and stopping
 * leaves no fd behind (allocations: the ASan build's LeakSanitizer).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <ioloop/testing.h>
#include <ioloop/config.h>
#include <stdbool.h>

/* echo's descriptor (plugins/echo.c). */
extern const struct ioloop_plugin ioloop_plugin_v1;

/* --- probe: a plugin that uses one of each thing under test ----------- */

struct probe {
    const struct ioloop_api *api;
    ioloop_instance_t *inst;
    int fd;                   /* "handler": its readiness is recorded */
    ioloop_stream_t *stream;  /* "echo": lines come back prefixed */
    ioloop_timer_t timer;     /* "delay_ms": a one-shot */
    int signal;               /* "signal": a subscription id, 0: none */
    int spins;                /* "spin": runs of the endless callback */
};

static struct {
    int events;  /* handler calls */
    unsigned last;
    int timers;
    int signals;
    int finis;
} seen;

/* The probe's config: what init registers (-1 or 0: nothing). */
struct probe_config {
    int64_t handler;  /* an fd to watch for reading */
    int64_t echo;     /* an fd to wrap in a line-echoing stream */
    int64_t delay_ms; /* a timer */
    int64_t signal;   /* a signal to subscribe to */
    bool spin;        /* a callback that re-adds itself */
};

static const struct ioloop_config_field probe_schema[] = {
    IOLOOP_CONFIG_INT(struct probe_config, handler, -1, 1 << 20, "-1", 0,
                      "fd to watch for reading (-1: none)"),
    IOLOOP_CONFIG_INT(struct probe_config, echo, -1, 1 << 20, "-1", 0,
                      "fd to echo lines on (-1: none)"),
    IOLOOP_CONFIG_INT(struct probe_config, delay_ms, -1, 1 << 30, "-1", 0,
                      "a timer after this many ms (-1: none)"),
    IOLOOP_CONFIG_INT(struct probe_config, signal, 0, 64, "0", 0,
                      "signal to subscribe to (0: none)"),
    IOLOOP_CONFIG_BOOL(struct probe_config, spin, "false", 0,
                       "post a callback that re-adds itself"),
    IOLOOP_CONFIG_END,
};

static int
probe_io(ioloop_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void) loop;
    (void) fd;
    (void) arg;
    seen.events++;
    seen.last = events;
    return 0;
}

static int
probe_timer(ioloop_loop_t *loop, void *arg)
{
    struct probe *p = arg;

    (void) loop;
    p->timer = 0;
    seen.timers++;
    p->api->log(p->inst, IOLOOP_LOG_INFO, "timer %d", seen.timers);
    return 0;
}

static int
probe_signal(ioloop_loop_t *loop, int signo, void *arg)
{
    (void) loop;
    (void) arg;
    seen.signals += signo == SIGUSR1;
    return 0;
}

/* Re-queues itself for ever; fails the first time. */
static int
probe_spin(ioloop_loop_t *loop, void *arg)
{
    struct probe *p = arg;

    (void) loop;
    p->api->add_callback(p->inst, probe_spin, p);
    return p->spins++ == 0 ? -EIO : 0;
}

static void probe_line(ioloop_stream_t *s, const char *data, size_t len,
                       void *arg);

static void
probe_line(ioloop_stream_t *s, const char *data, size_t len, void *arg)
{
    struct probe *p = arg;

    p->api->stream_write(s, "echo: ", 6, NULL);
    p->api->stream_write(s, data, len, NULL);
    p->api->stream_read_until(s, "\n", 1, probe_line);
}

static int
probe_init(const struct ioloop_api *api, ioloop_instance_t *inst,
           const void *config, void **state, char *err, size_t errlen)
{
    const struct probe_config *c = config;
    struct probe *p = calloc(1, sizeof(*p));

    (void) err;
    (void) errlen;
    if (p == NULL) {
        return -ENOMEM;
    }
    p->api = api;
    p->inst = inst;
    p->fd = -1;
    if (c->delay_ms >= 0) {
        p->timer = api->call_later(inst, c->delay_ms * IOLOOP_NS_PER_MS,
                                   probe_timer, p);
    }
    if (c->handler >= 0) {
        p->fd = (int) c->handler;
        api->add_handler(inst, p->fd, IOLOOP_READ, probe_io, p);
    }
    if (c->signal > 0) {
        p->signal = api->signal_subscribe(inst, (int) c->signal,
                                          probe_signal, p);
    }
    if (c->spin) {
        api->add_callback(inst, probe_spin, p);
    }
    if (c->echo >= 0) {
        struct ioloop_stream_options o = {.size = sizeof(o), .arg = p};

        p->stream = api->stream_new(inst, (int) c->echo, &o);
        api->stream_read_until(p->stream, "\n", 1, probe_line);
    }
    api->log(inst, IOLOOP_LOG_INFO, "probe up");
    *state = p;
    return 0;
}

static void
probe_fini(void *state)
{
    struct probe *p = state;

    seen.finis++;
    if (p->fd >= 0) {
        p->api->remove_handler(p->inst, p->fd);
    }
    if (p->stream != NULL) {
        p->api->stream_close(p->stream);
    }
    p->api->cancel(p->inst, p->timer);
    if (p->signal > 0) {
        p->api->signal_unsubscribe(p->inst, p->signal);
    }
    free(p);
}

static const struct ioloop_plugin probe = {
    .abi_version = IOLOOP_PLUGIN_ABI,
    .size = sizeof(struct ioloop_plugin),
    .build = IOLOOP_BUILD_SIGNATURE,
    .name = "probe",
    .version = "1",
    .config_schema = probe_schema,
    .config_size = sizeof(struct probe_config),
    .init = probe_init,
    .fini = probe_fini,
};

/* --- the tests ---------------------------------------------------------- */

static int fd0; /* the lowest free fd before each test */

static int
lowest_free_fd(void)
{
    int fd = dup(0);

    close(fd);
    return fd;
}

static int
setup(void **state)
{
    (void) state;
    memset(&seen, 0, sizeof(seen));
    fd0 = lowest_free_fd();
    return 0;
}

static void
test_timers_fire_on_advance(void **state)
{
    ioloop_testing_t *t = ioloop_testing_new(0);

    (void) state;
    assert_non_null(t);
    assert_int_equal(ioloop_testing_now(t), IOLOOP_TESTING_EPOCH);
    assert_int_equal(ioloop_testing_start(t, &probe, "p",
                                          "{\"delay_ms\": 1500}", NULL),
                     0);
    assert_int_equal(ioloop_testing_advance(t, 1499 * IOLOOP_NS_PER_MS), 0);
    assert_int_equal(seen.timers, 0);
    assert_int_equal(ioloop_testing_advance(t, IOLOOP_NS_PER_MS), 1);
    assert_int_equal(seen.timers, 1);
    assert_int_equal(ioloop_testing_now(t),
                     IOLOOP_TESTING_EPOCH + 1500 * IOLOOP_NS_PER_MS);
    assert_int_equal(ioloop_testing_advance(t, 3600 * IOLOOP_NS_PER_S), 0);
    assert_int_equal(ioloop_testing_log_count(t, "info [p] timer 1\n"), 1);
    ioloop_testing_free(t);
    assert_int_equal(seen.finis, 1);
}

static void
test_fired_fd_reaches_the_handler(void **state)
{
    ioloop_testing_t *t = ioloop_testing_new(0);
    char cfg[64];
    int sv[2];

    (void) state;
    assert_non_null(t);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    snprintf(cfg, sizeof(cfg), "{\"handler\": %d}", sv[0]);
    assert_int_equal(ioloop_testing_start(t, &probe, "p", cfg, NULL), 0);
    assert_int_equal(ioloop_testing_handlers(t), 1);
    assert_int_equal(ioloop_testing_handler_events(t, sv[0]), IOLOOP_READ);
    assert_int_equal(ioloop_testing_handler_events(t, sv[1]), -1);

    assert_int_equal(ioloop_testing_run(t, 0), 0); /* nothing fired */
    /* Filtered by the loop: WRITE was not asked for, HUP always is. */
    assert_int_equal(ioloop_testing_fire(t, sv[0], IOLOOP_READ
                                                       | IOLOOP_WRITE),
                     1);
    assert_int_equal(seen.last, IOLOOP_READ);
    assert_int_equal(ioloop_testing_fire(t, sv[0], IOLOOP_WRITE), 0);
    assert_int_equal(ioloop_testing_fire(t, sv[0], IOLOOP_HUP), 1);
    assert_int_equal(seen.last, IOLOOP_HUP);
    assert_int_equal(seen.events, 2);
    assert_int_equal(ioloop_testing_fire(t, sv[1], IOLOOP_READ), -ENOENT);
    ioloop_testing_free(t);
    assert_int_equal(seen.finis, 1);
    close(sv[0]);
    close(sv[1]);
}

/* Real I/O both ways: the stream reads what the test wrote on the other
 * end, and its reply reaches the test through the kernel. */
static void
roundtrip(ioloop_testing_t *t, int fd, int peer, unsigned mode)
{
    char buf[64];
    ssize_t n;

    assert_int_equal(write(peer, "ping\n", 5), 5);
    if (mode & IOLOOP_TESTING_EPOLL) {
        assert_int_equal(ioloop_testing_run(t, 1000), 1); /* real: ready */
    } else {
        assert_int_equal(ioloop_testing_fire(t, fd, IOLOOP_READ), 1);
    }
    n = read(peer, buf, sizeof(buf) - 1);
    assert_int_equal(n, 11);
    buf[n] = '\0';
    assert_string_equal(buf, "echo: ping\n");
}

static void
test_stream_over_a_socketpair(void **state)
{
    unsigned modes[] = {0, IOLOOP_TESTING_EPOLL};

    (void) state;
    for (size_t i = 0; i < 2; i++) {
        ioloop_testing_t *t = ioloop_testing_new(modes[i]);
        ioloop_testing_instance_t *inst;
        char cfg[64];
        int sv[2];

        assert_non_null(t);
        assert_int_equal(socketpair(AF_UNIX,
                                    SOCK_STREAM | SOCK_NONBLOCK
                                        | SOCK_CLOEXEC,
                                    0, sv),
                         0);
        snprintf(cfg, sizeof(cfg), "{\"echo\": %d}", sv[0]);
        assert_int_equal(ioloop_testing_start(t, &probe, "p", cfg, &inst),
                         0);
        roundtrip(t, sv[0], sv[1], modes[i]);
        roundtrip(t, sv[0], sv[1], modes[i]);
        ioloop_testing_stop(inst);
        ioloop_testing_free(t);
        close(sv[1]);
        /* The stream owned sv[0]: closed with it. */
        assert_int_equal(lowest_free_fd(), fd0);
    }
}

/* Signals are the host's: a real signal reaches the subscriber in the
 * next iteration, and a stopped instance leaves them free for the next
 * harness. */
static void
test_signals_reach_the_plugin(void **state)
{
    char cfg[32];

    (void) state;
    snprintf(cfg, sizeof(cfg), "{\"signal\": %d}", SIGUSR1);
    for (int round = 1; round <= 2; round++) {
        ioloop_testing_t *t = ioloop_testing_new(0);

        assert_non_null(t);
        assert_int_equal(ioloop_testing_start(t, &probe, "p", cfg, NULL), 0);
        assert_int_equal(raise(SIGUSR1), 0);
        assert_int_equal(ioloop_testing_run(t, 0), 1);
        assert_int_equal(seen.signals, round);
        ioloop_testing_free(t);
    }
}

/* Work that never settles makes advance give up rather than hang; the
 * failed callback is counted and logged as the host logs it. */
static void
test_advance_gives_up_on_endless_work(void **state)
{
    ioloop_testing_t *t = ioloop_testing_new(0);
    ioloop_testing_instance_t *inst;

    (void) state;
    assert_non_null(t);
    assert_int_equal(ioloop_testing_start(t, &probe, "p", "{\"spin\": true}",
                                          &inst),
                     0);
    assert_int_equal(ioloop_testing_advance(t, IOLOOP_NS_PER_S), -ELOOP);
    assert_int_equal(ioloop_testing_now(t), IOLOOP_TESTING_EPOCH);
    assert_int_equal(ioloop_testing_failures(t), 1);
    assert_int_equal(ioloop_testing_log_count(
                         t, "error [p] callback failed: Input/output error\n"),
                     1);
    assert_true(((struct probe *) ioloop_testing_state(inst))->spins
                >= 10000);
    ioloop_testing_free(t); /* the queued callback is dropped, not run */
}

static void
test_log_is_readable(void **state)
{
    ioloop_testing_t *t = ioloop_testing_new(0);
    ioloop_testing_instance_t *a, *b;

    (void) state;
    assert_non_null(t);
    assert_int_equal(ioloop_testing_start(t, &probe, "first", NULL, &a), 0);
    assert_int_equal(ioloop_testing_start(t, &probe, "second", "{}", &b), 0);
    assert_string_equal(ioloop_testing_log(t),
                        "info [first] probe up\ninfo [second] probe up\n");
    assert_int_equal(ioloop_testing_log_count(t, "probe up"), 2);
    ioloop_testing_log_clear(t);
    assert_string_equal(ioloop_testing_log(t), "");
    ioloop_testing_stop(b);
    assert_int_equal(seen.finis, 1);
    ioloop_testing_free(t); /* stops a */
    assert_int_equal(seen.finis, 2);
}

static void
test_stop_leaves_nothing(void **state)
{
    ioloop_testing_t *t;
    ioloop_testing_instance_t *inst;
    char cfg[96];
    int sv[2], hv[2];

    (void) state;
    t = ioloop_testing_new(IOLOOP_TESTING_EPOLL);
    assert_non_null(t);
    errno = 0;
    assert_null(ioloop_testing_new(0)); /* one at a time */
    assert_int_equal(errno, EBUSY);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                                             | SOCK_CLOEXEC,
                                0, sv),
                     0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hv),
                     0);
    snprintf(cfg, sizeof(cfg),
             "{\"echo\": %d, \"handler\": %d, \"delay_ms\": 10}", sv[0],
             hv[0]);
    assert_int_equal(ioloop_testing_start(t, &probe, "p", cfg, &inst), 0);
    roundtrip(t, sv[0], sv[1], IOLOOP_TESTING_EPOLL);
    ioloop_testing_stop(inst);
    assert_int_equal(seen.finis, 1);
    assert_int_equal(ioloop_testing_handlers(t), 0);
    /* The timer went with the instance (the stream it closed in fini is
     * freed by the next iteration). */
    assert_true(ioloop_testing_advance(t, IOLOOP_NS_PER_S) >= 0);
    assert_int_equal(seen.timers, 0);
    assert_int_equal(ioloop_testing_log_count(t, "fini left"), 0);
    ioloop_testing_free(t);
    close(sv[1]);
    close(hv[0]);
    close(hv[1]);
    assert_int_equal(lowest_free_fd(), fd0);
}

static void
test_refused_descriptor_and_init_failure(void **state)
{
    struct ioloop_plugin newer = probe;
    ioloop_testing_t *t = ioloop_testing_new(0);
    ioloop_testing_instance_t *inst = (void *) &newer;

    (void) state;
    assert_non_null(t);
    newer.abi_version = IOLOOP_ABI_VERSION(IOLOOP_PLUGIN_ABI_MAJOR + 1, 0);
    assert_int_equal(ioloop_testing_start(t, &newer, "p", NULL, &inst),
                     -EINVAL);
    assert_null(inst);
    assert_non_null(strstr(ioloop_testing_error(t),
                           "plugins[0] \"p\": probe: plugin ABI 2.0, host "
                           "plugin ABI 1."));
    assert_int_equal(ioloop_testing_start(t, &probe, "p",
                                          "{\"delay_ms\": \"x\"}", NULL),
                     -EINVAL);
    assert_string_equal(ioloop_testing_error(t),
                        "plugins[0].config.delay_ms: expected an integer in "
                        "[-1, 1073741824], got \"x\"");
    assert_int_equal(ioloop_testing_start(t, &probe, "p", "{\"a\": ", NULL),
                     -EINVAL);
    assert_non_null(strstr(ioloop_testing_error(t), "config:1:"));
    assert_int_equal(seen.finis, 0);
    ioloop_testing_free(t);
}

/* `ioloop-host --config M --check` on a manifest whose one entry is
 * echo with config: returns its stderr (static buffer). */
static const char *
host_check(const char *manifest, const char *config)
{
    static char out[4096];
    FILE *f = fopen(manifest, "w");
    size_t len = 0;
    ssize_t n;
    pid_t pid;
    int pipefd[2], status;

    assert_non_null(f);
    fprintf(f,
            "{\"backend_dir\": \"%s/backends\", \"plugins\": [{\"name\": "
            "\"web\", \"path\": \"%s/plugins/echo.so\", \"config\": "
            "%s}]}\n",
            IOLOOP_BUILD_DIR, IOLOOP_BUILD_DIR, config);
    fclose(f);
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        execl(IOLOOP_BUILD_DIR "/ioloop-host", "ioloop-host", "--config",
              manifest, "--check", (char *) NULL);
        _exit(127);
    }
    close(pipefd[1]);
    while ((n = read(pipefd[0], out + len, sizeof(out) - 1 - len)) > 0) {
        len += (size_t) n;
    }
    out[len] = '\0';
    close(pipefd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    return out;
}

static void
test_config_errors_match_the_host(void **state)
{
    static const char *const configs[] = {
        "{\"listen\": \"127.0.0.1:0\", \"bogus\": 1}",
        "{\"listen\": 80}",
        "{\"listen\": \"::1:80\"}",
        "{\"listen\": \"127.0.0.1:0\", \"max_connections\": 0}",
        "{}",
        "[1]",
    };
    char dir[] = "/tmp/ioloop_testing_XXXXXX", manifest[64], want[2048];

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(manifest, sizeof(manifest), "%s/m.json", dir);
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        const char *host = host_check(manifest, configs[i]);
        ioloop_testing_t *t = ioloop_testing_new(0);

        assert_non_null(t);
        assert_true(ioloop_testing_start(t, &ioloop_plugin_v1, "web",
                                         configs[i], NULL)
                    < 0);
        /* The host adds the value's line:column in its manifest. */
        snprintf(want, sizeof(want), "ioloop-host: %s", manifest);
        assert_memory_equal(host, want, strlen(want));
        host += strlen(want);
        if (host[0] == ':' && host[1] >= '0' && host[1] <= '9') {
            host += 1 + strspn(host + 1, "0123456789:") - 1; /* to ": " */
        }
        snprintf(want, sizeof(want), ": %s\n", ioloop_testing_error(t));
        assert_string_equal(host, want);
        ioloop_testing_free(t);
    }
    unlink(manifest);
    rmdir(dir);
}

/* echo's shed counter, as the host keeps it: 0 at start, 1 once a second
 * connection is closed at accept past max_connections 1. */
static void
test_counters_are_the_hosts(void **state)
{
    ioloop_testing_t *t = ioloop_testing_new(IOLOOP_TESTING_EPOLL);
    ioloop_testing_instance_t *web;
    int lfd = lowest_free_fd(), c1, c2;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    char buf[16];

    (void) state;
    assert_non_null(t);
    assert_int_equal(ioloop_testing_start(t, &ioloop_plugin_v1, "web",
                                          "{\"listen\": \"127.0.0.1:0\", "
                                          "\"max_connections\": 1}",
                                          &web),
                     0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *) &sin, &slen), 0);
    assert_int_equal(ioloop_testing_counter(
                         t, "ioloop_connections_shed_total", NULL),
                     0);
    assert_int_equal(ioloop_testing_counter(t, "no_such_total", NULL), -1);
    c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c1, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(write(c1, "x", 1), 1);
    /* Real readiness: accept and echo (bounded). */
    for (int i = 0; i < 50 && recv(c1, buf, 1, MSG_DONTWAIT) != 1; i++) {
        ioloop_testing_run(t, 100);
    }
    c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c2, (struct sockaddr *) &sin, sizeof(sin)), 0);
    for (int i = 0; i < 50 && ioloop_testing_counter(
                                  t, "ioloop_connections_shed_total", NULL)
                                  < 1;
         i++) {
        ioloop_testing_run(t, 100);
    }
    assert_int_equal(ioloop_testing_counter(
                         t, "ioloop_connections_shed_total", NULL),
                     1);
    assert_int_equal(read(c2, buf, sizeof(buf)), 0); /* shed: closed */
    close(c1);
    close(c2);
    ioloop_testing_free(t);
    assert_int_equal(lowest_free_fd(), fd0);
}

/* Reads a whole file into a malloc()ed string. */
static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text;
    long len;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    rewind(f);
    text = malloc((size_t) len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t) len, f), (size_t) len);
    text[len] = '\0';
    fclose(f);
    return text;
}

/* docs/plugins.md lists every function of the header, as `name(`: a new
 * one cannot be left out of the guide. */
static void
test_docs_list_every_function(void **state)
{
    char *h = slurp(IOLOOP_SOURCE_DIR "/api/ioloop/testing.h");
    char *doc = slurp(IOLOOP_SOURCE_DIR "/docs/plugins.md");
    int found = 0;

    (void) state;
    /* Declarations read "TYPE ioloop_testing_NAME(" or "*ioloop_...(". */
    for (char *p = h; (p = strstr(p, "ioloop_testing_")) != NULL;) {
        char name[64], needle[80];
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");

        if (p[n] == '(' && (p[-1] == ' ' || p[-1] == '*')
            && n < sizeof(name)) {
            memcpy(name, p, n);
            name[n] = '\0';
            snprintf(needle, sizeof(needle), "`%s(", name);
            if (strstr(doc, needle) == NULL) {
                fail_msg("docs/plugins.md does not list %s", name);
            }
            found++;
        }
        p += n;
    }
    assert_true(found >= 17);
    free(h);
    free(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_timers_fire_on_advance, setup),
        cmocka_unit_test_setup(test_fired_fd_reaches_the_handler, setup),
        cmocka_unit_test_setup(test_stream_over_a_socketpair, setup),
        cmocka_unit_test_setup(test_signals_reach_the_plugin, setup),
        cmocka_unit_test_setup(test_advance_gives_up_on_endless_work,
                               setup),
        cmocka_unit_test_setup(test_log_is_readable, setup),
        cmocka_unit_test_setup(test_stop_leaves_nothing, setup),
        cmocka_unit_test_setup(test_refused_descriptor_and_init_failure,
                               setup),
        cmocka_unit_test_setup(test_config_errors_match_the_host, setup),
        cmocka_unit_test_setup(test_counters_are_the_hosts, setup),
        cmocka_unit_test(test_docs_list_every_function),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
