/*
 * tests/integration/test_cli.c: the real ioloop-host command line on bad
 * input. Every case must exit 1 with exactly one line on stderr that
 * names the manifest and the place, and bind nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HOST IOLOOP_BUILD_DIR "/ioloop-host"
#define BACKENDS IOLOOP_BUILD_DIR "/backends"
#define PLUGINS IOLOOP_BUILD_DIR "/plugins"
#define MODULES IOLOOP_BUILD_DIR "/tests/modules"

struct run {
    int status; /* exit status, or 128 + signal */
    char out[8192];
    char err[8192];
};

static char dir[64];
static char manifest[128];

/* Runs the host with argv (NULL-terminated, without argv[0]); 10 s max. */
static void
run_host(struct run *r, const char *const *args)
{
    const char *argv[16] = {HOST};
    int out[2], err[2], status;
    size_t nout = 0, nerr = 0;
    pid_t pid;
    time_t deadline = time(NULL) + 10;

    for (int i = 0; args[i] != NULL && i < 14; i++) {
        argv[i + 1] = args[i];
    }
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        execv(HOST, (char *const *) argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    for (int open_pipes = 2; open_pipes > 0 && time(NULL) < deadline;) {
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};

        if (poll(p, 2, 1000) <= 0) {
            continue;
        }
        for (int i = 0; i < 2; i++) {
            char *buf = i == 0 ? r->out : r->err;
            size_t *n = i == 0 ? &nout : &nerr;
            ssize_t got;

            if (!(p[i].revents & (POLLIN | POLLHUP)) || p[i].fd < 0) {
                continue;
            }
            got = read(p[i].fd, buf + *n, sizeof(r->out) - 1 - *n);
            if (got <= 0) {
                close(i == 0 ? out[0] : err[0]);
                if (i == 0) {
                    out[0] = -1;
                } else {
                    err[0] = -1;
                }
                open_pipes--;
            } else {
                *n += (size_t) got;
            }
        }
    }
    r->out[nout] = '\0';
    r->err[nerr] = '\0';
    if (out[0] >= 0) {
        close(out[0]);
    }
    if (err[0] >= 0) {
        close(err[0]);
    }
    /* The pipes close a moment before the child becomes reapable. */
    while (waitpid(pid, &status, WNOHANG) == 0 && time(NULL) < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the host did not exit within 10 s: %s", r->err);
    }
    r->status = WIFEXITED(status) ? WEXITSTATUS(status)
                                  : 128 + WTERMSIG(status);
}

static void
write_manifest(const char *json)
{
    FILE *f = fopen(manifest, "w");

    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

/* Runs `ioloop-host --config manifest [extra]`, expects exit 1 and one
 * stderr line that starts with "ioloop-host: <manifest>" and contains
 * every needle. */
static void
expect_refusal(const char *extra, const char *const *needles)
{
    const char *args[] = {"--config", manifest, extra, NULL};
    char prefix[256];
    struct run r;

    run_host(&r, args);
    snprintf(prefix, sizeof(prefix), "ioloop-host: %s", manifest);
    if (r.status != 1 || strncmp(r.err, prefix, strlen(prefix)) != 0
        || strchr(r.err, '\n') != r.err + strlen(r.err) - 1) {
        fail_msg("status %d, stderr:\n%s", r.status, r.err);
    }
    for (int i = 0; needles[i] != NULL; i++) {
        if (strstr(r.err, needles[i]) == NULL) {
            fail_msg("stderr lacks \"%s\":\n%s", needles[i], r.err);
        }
    }
    assert_null(strstr(r.err, "listening on"));
}

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/ioloop-cli-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(manifest, sizeof(manifest), "%s/host.json", dir);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_missing_manifest(void **state)
{
    const char *const needles[] = {"cannot read: No such file or directory",
                                   NULL};

    (void) state;
    expect_refusal(NULL, needles);
}

static void
test_syntax_error(void **state)
{
    const char *const needles[] = {"host.json:3:", "syntax error", NULL};

    (void) state;
    write_manifest("{\n  \"backend\": \"epoll\",\n  \"plugins\": [,]\n}\n");
    expect_refusal(NULL, needles);
}

static void
test_unknown_key(void **state)
{
    const char *const needles[] = {"host.json:1:12: bakend: unknown key",
                                   NULL};

    (void) state;
    write_manifest("{\"bakend\": \"epoll\"}");
    expect_refusal(NULL, needles);
}

static void
test_wrong_type(void **state)
{
    const char *const needles[] = {"plugins[0].path: expected", "integer",
                                   NULL};

    (void) state;
    write_manifest("{\"plugins\": [{\"name\": \"x\", \"path\": 5}]}");
    expect_refusal(NULL, needles);
}

static void
test_unknown_backend(void **state)
{
    const char *const needles[] = {"backend: unknown backend \"epol\"",
                                   "no epol.so in " BACKENDS, "(available: ",
                                   NULL};

    (void) state;
    write_manifest("{\"backend\": \"epol\", \"backend_dir\": \"" BACKENDS
                   "\"}");
    expect_refusal(NULL, needles);
    write_manifest("{\"backend\": \"epoll\", \"backend_dir\": \"" BACKENDS
                   "\"}");
    expect_refusal("--backend=epol", needles);
}

static void
test_backend_other_major(void **state)
{
    const char *const needles[] = {"backend: ", "backend ABI 2.0, host "
                                   "backend ABI 1.0: major versions differ",
                                   NULL};

    (void) state;
    write_manifest("{\"backend\": \"test_backend_major2\", \"backend_dir\": "
                   "\"" MODULES "\"}");
    expect_refusal(NULL, needles);
}

static void
test_plugin_file_problems(void **state)
{
    const char *const missing[] = {"plugins[0] \"p\": ", "/missing.so: cannot "
                                   "open shared object file", NULL};
    const char *const not_elf[] = {"plugins[0] \"p\": ", "invalid ELF header",
                                   NULL};
    const char *const no_symbol[] = {"plugins[0] \"p\": ", "no symbol "
                                     "'ioloop_plugin_v1'", NULL};
    const char *const major[] = {"plugins[0] \"p\": ", "plugin ABI 2.0, host "
                                 "plugin ABI 1.1: major versions differ",
                                 NULL};
    char path[160];
    FILE *f;

    (void) state;
    write_manifest("{\"plugins\": [{\"name\": \"p\", \"path\": "
                   "\"./missing.so\"}]}");
    expect_refusal(NULL, missing);

    snprintf(path, sizeof(path), "%s/text.so", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 50; i++) {
        fputs("this is not a shared object\n", f);
    }
    fclose(f);
    write_manifest("{\"plugins\": [{\"name\": \"p\", \"path\": "
                   "\"./text.so\"}]}");
    expect_refusal(NULL, not_elf);

    write_manifest("{\"plugins\": [{\"name\": \"p\", \"path\": \"" MODULES
                   "/test_plugin_no_symbol.so\"}]}");
    expect_refusal(NULL, no_symbol);
    write_manifest("{\"plugins\": [{\"name\": \"p\", \"path\": \"" MODULES
                   "/test_plugin_major2.so\"}]}");
    expect_refusal(NULL, major);
}

/* Found by fuzz_plugin_config: whatever a plugin's init gives as its
 * reason, the host prints one line (control characters escaped). */
static void
test_plugin_init_reason_one_line(void **state)
{
    const char *const needles[] = {"plugins[0] \"t\": init failed: "
                                   "two\\nlines\\x1b[31m\n", NULL};

    (void) state;
    write_manifest("{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{"
                   "\"name\": \"t\", \"path\": \"" MODULES
                   "/test_plugin_default.so\", \"config\": "
                   "{\"fail\": \"two\\nlines\\u001b[31m\"}}]}");
    expect_refusal(NULL, needles);
    expect_refusal("--check", needles);
}

static void
test_plugin_init_fails(void **state)
{
    const char *const needles[] = {"plugins[0] \"t\": init failed: "
                                   "no such thing", NULL};

    (void) state;
    write_manifest("{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{"
                   "\"name\": \"t\", \"path\": \"" MODULES
                   "/test_plugin_default.so\", \"config\": "
                   "{\"fail\": \"no such thing\"}}]}");
    expect_refusal(NULL, needles);
}

/*
 * --check runs every validation a start runs: each bad config below is
 * refused by `--check` and by a real start with exit 1 and the very same
 * one-line message (the plugins' schemas, with the line:column of the
 * value, the listen address parser, the plugins' own checks in init, the
 * backend_swap names). None of them binds anything.
 */
static void
test_check_refuses_what_start_refuses(void **state)
{
#define ECHO_WITH(cfg)                                                     \
    "{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{\"name\": \"e\", "  \
    "\"path\": \"" PLUGINS "/echo.so\", \"config\": " cfg "}]}"
#define HELLO_WITH(cfg)                                                    \
    "{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{\"name\": \"h\", "  \
    "\"path\": \"" PLUGINS "/hello_http.so\", \"config\": " cfg "}]}"
    static const struct {
        const char *json;
        const char *at;   /* the value refused starts after this text (a
                             schema refusal: "<manifest>:1:COL: "), or
                             NULL ("<manifest>: ") */
        const char *want; /* after "ioloop-host: <manifest>..." */
    } cases[] = {
        {ECHO_WITH("{}"), "\"config\": ",
         "plugins[0].config.listen: missing (a required listen address)"},
        {ECHO_WITH("{\"listen\": 8080}"), "\"listen\": ",
         "plugins[0].config.listen: expected a listen address "
         "(\"HOST:PORT\" or \"[IPV6]:PORT\"), got 8080"},
        {ECHO_WITH("{\"listen\": \"127.0.0.1:99999\"}"), "\"listen\": ",
         "plugins[0].config.listen: listen \"127.0.0.1:99999\": the port "
         "must be 0 to 65535 in decimal digits"},
        {ECHO_WITH("{\"listen\": \"[]:8080\"}"), "\"listen\": ",
         "plugins[0].config.listen: listen \"[]:8080\": empty host (write "
         "0.0.0.0:8080 or [::]:8080 for every address)"},
        {ECHO_WITH("{\"listen\": \"127.0.0.1:0\", \"backlog\": -1}"),
         "\"backlog\": ",
         "plugins[0].config.backlog: expected an integer in [0, "
         "2147483647], got -1"},
        {HELLO_WITH("{\"listen\": \"127.0.0.1:0\"}"), "\"listen\": ",
         "plugins[0].config.listen: unknown key (hello_http accepts: "
         "nothing)"},
        {ECHO_WITH("{\"listen\": [\"127.0.0.1:0\"]}"),
         "\"listen\": ",
         "plugins[0].config.listen: expected a listen address "
         "(\"HOST:PORT\" or \"[IPV6]:PORT\"), got an array"},
        {ECHO_WITH("{\"listen\": \"127.0.0.1:+80\"}"),
         "\"listen\": ",
         "plugins[0].config.listen: listen \"127.0.0.1:+80\": the port "
         "must be 0 to 65535 in decimal digits"},
        /* Found by fuzz_plugin_config: a raw control character of a key
         * broke the one-line message. */
        {ECHO_WITH("{\"listen\": \"127.0.0.1:0\", "
                   "\"li\\nst\\u007fen\": 1}"),
         "\"li\\nst\\u007fen\": ",
         "plugins[0].config[\"li\\nst\\u007fen\"]: unknown key (echo "
         "accepts: listen, backlog, idle_timeout, max_connections, "
         "tls_cert, tls_key, tls_min_version)"},
        /* An HTTP plugin without "servers". */
        {HELLO_WITH("{}"), NULL,
         "plugins[0] \"h\": init failed: http_handle: the host runs no "
         "HTTP server (no \"servers\" in the manifest)"},
        /* An init failure that names no config value has no place. */
        {"{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{\"name\": "
         "\"t\", \"path\": \"" MODULES "/test_plugin_default.so\", "
         "\"config\": {\"fail\": \"config.fail: refused\"}}]}",
         "\"fail\": ",
         "plugins[0] \"t\": init failed: config.fail: refused"},
        {"{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{\"name\": "
         "\"t\", \"path\": \"" MODULES "/test_plugin_default.so\", "
         "\"config\": {\"fail\": \"configured badly\"}}]}",
         NULL, "plugins[0] \"t\": init failed: configured badly"},
        {"{\"backend_dir\": \"" BACKENDS "\", \"backend_swap\": "
         "[\"poll\", \"nosuch\"]}",
         NULL,
         "backend_swap: unknown backend \"nosuch\": no nosuch.so in "
         BACKENDS},
    };
#undef ECHO_WITH
#undef HELLO_WITH

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *check[] = {"--config", manifest, "--check", NULL};
        const char *start[] = {"--config", manifest, NULL};
        char want[1024];
        struct run c, r;

        write_manifest(cases[i].json);
        if (cases[i].at != NULL) {
            /* The one-line manifest: the column is the value's offset. */
            const char *v = strstr(cases[i].json, cases[i].at);

            assert_non_null(v);
            snprintf(want, sizeof(want), "ioloop-host: %s:1:%d: %s",
                     manifest,
                     (int) (v - cases[i].json + strlen(cases[i].at)) + 1,
                     cases[i].want);
        } else {
            snprintf(want, sizeof(want), "ioloop-host: %s: %s", manifest,
                     cases[i].want);
        }
        run_host(&c, check);
        run_host(&r, start);
        if (c.status != 1 || strncmp(c.err, want, strlen(want)) != 0
            || strchr(c.err, '\n') != c.err + strlen(c.err) - 1) {
            fail_msg("case %zu: --check: status %d, stderr:\n%s", i,
                     c.status, c.err);
        }
        assert_string_equal(c.out, "");
        assert_int_equal(r.status, 1);
        assert_string_equal(r.err, c.err);
    }
}

/* A listener on 127.0.0.1, port 0; returns its fd and writes its port. */
static int
listen_somewhere(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *) &a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* The second listener's address is taken: the echo instance started
 * first is stopped again and the host exits 1. */
static void
test_address_in_use(void **state)
{
    char json[1024], needle[128];
    const char *needles[] = {"plugins[1] \"echo2\": init failed: ", needle,
                             NULL};
    int port, fd = listen_somewhere(&port);

    (void) state;
    snprintf(needle, sizeof(needle),
             "listen 127.0.0.1:%d: Address already in use", port);
    snprintf(json, sizeof(json),
             "{\"backend_dir\": \"" BACKENDS "\", \"plugins\": ["
             "{\"name\": \"echo\", \"path\": \"" PLUGINS "/echo.so\", "
             "\"config\": {\"listen\": \"127.0.0.1:0\"}},"
             "{\"name\": \"echo2\", \"path\": \"" PLUGINS "/echo.so\", "
             "\"config\": {\"listen\": \"127.0.0.1:%d\"}}]}",
             port);
    write_manifest(json);
    {
        const char *args[] = {"--config", manifest, NULL};
        struct run r;

        run_host(&r, args);
        assert_int_equal(r.status, 1);
        for (int i = 0; needles[i] != NULL; i++) {
            if (strstr(r.err, needles[i]) == NULL) {
                fail_msg("stderr lacks \"%s\":\n%s", needles[i], r.err);
            }
        }
        /* echo had bound, logged it, and was stopped before the exit. */
        assert_null(strstr(r.err, "started:"));
    }
    close(fd);
}

static void
test_check_binds_nothing(void **state)
{
    char json[1024];
    int port, fd = listen_somewhere(&port);
    const char *args[] = {"--config", manifest, "--check", NULL};
    struct run r;

    (void) state;
    /* The port is taken: a --check that bound would fail. */
    snprintf(json, sizeof(json),
             "{\"backend_dir\": \"" BACKENDS "\", \"plugins\": ["
             "{\"name\": \"echo\", \"path\": \"" PLUGINS "/echo.so\", "
             "\"config\": {\"listen\": \"127.0.0.1:%d\"}}]}",
             port);
    write_manifest(json);
    run_host(&r, args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, ": OK (backend epoll, 1 plugin)"));
    close(fd);

    write_manifest("{\"plugins\": 3}");
    run_host(&r, args);
    assert_int_equal(r.status, 1);
}

/* An ordered list: a backend whose create() fails is skipped, logged with
 * its reason, and the next one is used. */
static void
test_backend_list_falls_through(void **state)
{
    char cmd[512];
    const char *args[] = {"--config", manifest, "--check", NULL};
    struct run r;

    (void) state;
    snprintf(cmd, sizeof(cmd),
             "ln -s " MODULES "/test_backend_fail_create.so %s/broken.so && "
             "ln -s " BACKENDS "/select.so %s/select.so",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    write_manifest("{\"backend\": [\"broken\", \"select\"], "
                   "\"backend_dir\": \".\"}");
    run_host(&r, args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "backend broken unavailable: "
                                  "test_backend: refused by design"));
    assert_non_null(strstr(r.out, "OK (backend select, 0 plugins)"));

    write_manifest("{\"backend\": [\"broken\"], \"backend_dir\": \".\"}");
    {
        const char *const needles[] = {"backend: test_backend: refused by "
                                       "design", NULL};

        expect_refusal(NULL, needles);
    }
}

/* select cannot use fds >= FD_SETSIZE: --check says so when the fd limit
 * allows more. */
static void
test_check_warns_about_select_limit(void **state)
{
    const char *args[] = {"--config", manifest, "--check", NULL};
    struct rlimit rl;
    struct run r;

    (void) state;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= FD_SETSIZE) {
        skip();
    }
    write_manifest("{\"backend\": \"select\", \"backend_dir\": \"" BACKENDS
                   "\"}");
    run_host(&r, args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "warn [host] backend select watches only "
                                  "fds < 1024 (FD_SETSIZE)"));
    assert_non_null(strstr(r.err, "use poll or epoll"));
    write_manifest("{\"backend\": \"poll\", \"backend_dir\": \"" BACKENDS
                   "\"}");
    run_host(&r, args);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.err, "warn"));
}

/* --plugin-info prints the whole schema without running the plugin; a
 * plugin whose schema is wrong is refused. */
static void
test_plugin_info(void **state)
{
    static const char *const lines[] = {
        "name:        echo\n",
        "abi:         1.1 (this host: 1.1)\n",
        "  listen               listen address, required\n"
        "      Address to listen on: HOST:PORT or [IPV6]:PORT.\n",
        "  backlog              integer, default 0, in 0..2147483647\n",
        "  idle_timeout         duration, default 300s, in 1ms..1d\n"
        "      Close a connection with no byte either way for this long.\n",
        "  max_connections      integer, default 10240, in 1..1048576\n",
    };
    const char *info[] = {"--plugin-info", PLUGINS "/echo.so", NULL};
    const char *none[] = {"--plugin-info", PLUGINS "/hello_http.so", NULL};
    const char *md[] = {"--plugin-info", PLUGINS "/echo.so", "--markdown",
                        NULL};
    const char *bad[] = {"--plugin-info", MODULES "/test_plugin_bad_schema.so",
                         NULL};
    struct run r;

    (void) state;
    run_host(&r, info);
    assert_int_equal(r.status, 0);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (strstr(r.out, lines[i]) == NULL) {
            fail_msg("--plugin-info lacks \"%s\":\n%s", lines[i], r.out);
        }
    }
    run_host(&r, none);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "name:        hello_http\n"));
    assert_non_null(strstr(r.out, "config:      (no keys)\n"));
    run_host(&r, md);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "## echo 1.0.0\n\nTCP echo server.\n\n"));
    assert_non_null(strstr(r.out, "| `idle_timeout` | duration | `300s` | "
                                  "1ms..1d | Close a connection with no "
                                  "byte either way for this long. |\n"));
    run_host(&r, bad);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "test_plugin_bad_schema.so: schema: key "
                                  "\"sleep_ms\": default: expected an "
                                  "integer in [0, 10], got 11\n"));
}

/* A manifest with one hello_http instance "hello" and the given
 * "servers" array. */
#define WITH_SERVERS(servers)                                              \
    "{\"backend_dir\": \"" BACKENDS "\", \"plugins\": [{\"name\": "        \
    "\"hello\", \"path\": \"" PLUGINS "/hello_http.so\"}], "                 \
    "\"servers\": " servers "}"
#define ROUTE_HELLO "[{\"path\": \"/\", \"plugin\": \"hello\"}]"

/*
 * Every refusal of the manifest's "servers" (host/app/manifest_servers.c;
 * test_manifest_servers pins each message whole) through the real host:
 * exit 1, one line naming the file, the line:column and the JSON path,
 * at --check and at a start alike, nothing bound.
 */
static void
test_servers_refused(void **state)
{
    static const struct {
        const char *servers;
        const char *want;
    } cases[] = {
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\"}]",
         "servers[0].routes: missing (a required array of objects)"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": []}]",
         "servers[0].routes: empty list"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"plugin\": \"hello\"}]}]",
         "servers[0].routes[0]: expected exactly one of \"path\" and "
         "\"prefix\", got neither"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"path\": \"/\", \"prefix\": \"/\", \"plugin\": \"hello\"}]}]",
         "got both"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"prefix\": \"api/\", \"plugin\": \"hello\"}]}]",
         "servers[0].routes[0].prefix: \"api/\" does not start with '/'"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"path\": \"/\", \"plugin\": \"kv\"}]}]",
         "servers[0].routes[0].plugin: no plugin instance named \"kv\""},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"path\": \"/\", \"plugin\": \"hello\"}, {\"prefix\": \"/a/\", "
         "\"plugin\": \"hello\"}, {\"path\": \"/\", \"plugin\": "
         "\"hello\"}]}]",
         "servers[0].routes[2].path: duplicate of servers[0].routes[0].path "
         "\"/\" (this route could never be reached)"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"path\": \"/\", \"plugin\": \"hello\", \"methods\": []}]}]",
         "servers[0].routes[0].methods: empty list (this route could never "
         "be reached)"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"path\": \"/\", \"plugin\": \"hello\", \"methods\": "
         "[\"GET\\r\\n\"]}]}]",
         "servers[0].routes[0].methods[0]: \"GET\\u000d\\n\" is not a method "
         "token"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         "[{\"path\": \"/\", \"plugin\": \"hello\", \"methods\": "
         "[\"FETCH\"]}]}]",
         "servers[0].routes[0].methods[0]: unknown method \"FETCH\""},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"routes\": "
         ROUTE_HELLO "}, {\"name\": \"web\", \"listen\": \"127.0.0.1:0\", "
         "\"routes\": " ROUTE_HELLO "}]",
         "servers[1].name: duplicate of servers[0].name \"web\""},
        {"[{\"name\": \"a\", \"listen\": \"127.0.0.1:8\", \"routes\": "
         ROUTE_HELLO "}, {\"name\": \"b\", \"listen\": [\"[::1]:8\", "
         "\"0.0.0.0:8\"], \"routes\": " ROUTE_HELLO "}]",
         "servers[1].listen[1]: \"0.0.0.0:8\" is also listened on at "
         "servers[0].listen"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"tls\": "
         "{\"cert\": \"c.pem\"}, \"routes\": " ROUTE_HELLO "}]",
         "servers[0].tls: missing key \"key\""},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"tls\": "
         "{\"cert\": \"c.pem\", \"key\": \"k.pem\", \"min_version\": "
         "\"1.0\"}, \"routes\": " ROUTE_HELLO "}]",
         "servers[0].tls.min_version: expected one of 1.2|1.3, got "
         "\"1.0\""},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", \"header_timeout\""
         ": \"2h\", \"routes\": " ROUTE_HELLO "}]",
         "servers[0].header_timeout: expected a duration in [1ms, 1h]"},
        {"[{\"name\": \"web\", \"listen\": \"127.0.0.1:0\", "
         "\"max_header_size\": \"96KiB\", \"routes\": " ROUTE_HELLO "}]",
         "servers[0].max_header_size: expected a size in [1KiB, 80KiB], got "
         "\"96KiB\""},
    };
    char json[2048];

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const needles[] = {"host.json:1:", cases[i].want, NULL};

        snprintf(json, sizeof(json), WITH_SERVERS("%s"), cases[i].servers);
        write_manifest(json);
        expect_refusal("--check", needles);
        expect_refusal(NULL, needles);
    }
}

/* A valid "servers" passes --check, which binds none of its addresses
 * (the port is taken here: a --check that bound would fail). */
static void
test_servers_check(void **state)
{
    const char *args[] = {"--config", manifest, "--check", NULL};
    int port, fd = listen_somewhere(&port);
    char json[2048], servers[1024];
    struct run r;

    (void) state;
    snprintf(servers, sizeof(servers),
             "[{\"name\": \"web\", \"listen\": [\"127.0.0.1:%d\", "
             "\"[::1]:0\"], \"max_body_size\": \"64KiB\", "
             "\"keepalive_timeout\": \"5s\", \"access_log\": {\"path\": "
             "\"access.log\", \"format\": \"json\"}, \"routes\": "
             "[{\"path\": \"/\", \"plugin\": \"hello\"}, {\"prefix\": "
             "\"/api/\", \"plugin\": \"hello\", \"methods\": [\"GET\", "
             "\"PUT\"], \"max_body_size\": \"8MiB\"}]}]",
             port);
    /* "hello" is an instance of http_test here: a route's instance must
     * register its HTTP handler, which --check checks too. */
    snprintf(json, sizeof(json),
             "{\"backend_dir\": \"" BACKENDS "\", \"plugins\": "
             "[{\"name\": \"hello\", \"path\": \"" MODULES
             "/http_test.so\"}], \"servers\": %s}", servers);
    write_manifest(json);
    run_host(&r, args);
    if (r.status != 0) {
        fail_msg("status %d, stderr:\n%s", r.status, r.err);
    }
    assert_non_null(strstr(r.out, ": OK (backend epoll, 1 plugin)"));
    close(fd);
}

/* --manifest-info prints every manifest key from the schema the host
 * checks, nested ones by their path; --markdown alone is refused. */
static void
test_manifest_info(void **state)
{
    const char *info[] = {"--manifest-info", NULL};
    const char *md[] = {"--manifest-info", "--markdown", NULL};
    const char *alone[] = {"--markdown", NULL};
    struct run r;

    (void) state;
    run_host(&r, info);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "  log.level            enum, default "
                                  "info, one of error|warn|info|debug\n"));
    assert_non_null(strstr(r.out, "  plugins[].name       string, "
                                  "required\n"));
    assert_non_null(strstr(r.out, "  workers              integer or "
                                  "\"auto\", in 1..1024\n"));
    run_host(&r, md);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "| `shutdown_timeout` | duration | `10s` "
                                  "| 1ms..1h | "));
    run_host(&r, alone);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--markdown goes with --plugin-info or "
                                  "--manifest-info\n"));
}

static void
test_version_help_usage(void **state)
{
    const char *version[] = {"--version", NULL};
    const char *help[] = {"--help", NULL};
    const char *bad[] = {"--frobnicate", NULL};
    struct run r;

    (void) state;
    run_host(&r, version);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "ioloop-host "));
    assert_non_null(strstr(r.out, "plugin ABI 1.1"));
    run_host(&r, help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--backend NAME"));
    run_host(&r, bad);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage:"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_manifest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_backend, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backend_other_major, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plugin_file_problems, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plugin_init_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plugin_init_reason_one_line,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_in_use, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_refuses_what_start_refuses,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_binds_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backend_list_falls_through,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_warns_about_select_limit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_servers_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_servers_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_help_usage, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
