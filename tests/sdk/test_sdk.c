/*
 * tests/sdk/test_sdk.c: the plugin SDK as a third party meets it. Installs
 * this build into a fresh temp prefix (cmake --install), checks the
 * installed tree, runs the installed host from another working directory,
 * builds examples/plugin-template out of tree twice -- with CMake
 * (find_package(ioloop)) and with its plain Makefile (pkg-config) -- and
 * loads each kv.so into the *installed* host through a manifest on an
 * ephemeral port, then talks to it over a socket and stops the host with
 * SIGTERM, one connection still open (exit 0 expected).
 *
 * Every child runs under a deadline (BUILD_TIMEOUT_MS for builds,
 * HOST_TIMEOUT_MS for the host) and is killed, with its process group,
 * when it passes. The temp folders are removed at the end.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ioloop/plugin.h>

#define TEMPLATE_DIR IOLOOP_SOURCE_DIR "/examples/plugin-template"
#define BUILD_TIMEOUT_MS 60000
#define HOST_TIMEOUT_MS 10000
#define OUT_SIZE 65536

/* The temp folders, "" until made. */
static struct {
    char prefix[64];    /* the install prefix */
    char cmake_dir[64]; /* the template built with CMake */
    char make_dir[64];  /* the template built with make */
    char host_dir[64];  /* the manifest of a host run */
} tmp;

/* Output of the last child (stdout and stderr), its last OUT_SIZE - 1
 * bytes, for the failure messages. */
static char out[OUT_SIZE];

static long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* --- Children ---------------------------------------------------------- */

struct child {
    pid_t pid;  /* 0: reaped */
    int out_fd; /* its stdout and stderr, -1: closed */
    size_t len; /* bytes of output in out */
};

/*
 * Starts argv (PATH searched) in cwd, in its own process group, with env
 * ("NAME=value", or NULL) added to our environment and its stdout and
 * stderr piped into out. Returns 0, or -1.
 */
static int
child_start(struct child *c, const char *cwd, const char *env,
            char *const argv[])
{
    int p[2];

    c->pid = 0;
    c->out_fd = -1;
    c->len = 0;
    out[0] = '\0';
    if (pipe(p) < 0) {
        return -1;
    }
    c->pid = fork();
    if (c->pid < 0) {
        c->pid = 0;
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c->pid == 0) {
        setpgid(0, 0);
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        if (chdir(cwd) < 0 || (env != NULL && putenv((char *) env) != 0)) {
            _exit(126);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(c->pid, c->pid); /* no race with the child's own call */
    close(p[1]);
    c->out_fd = p[0];
    return 0;
}

/*
 * Reads the child's output until text shows up (returns 1; NULL: never),
 * the output ends or deadline (monotonic ms) passes (returns 0). Keeps
 * the last OUT_SIZE - 1 bytes.
 */
static int
child_read(struct child *c, const char *text, long deadline)
{
    struct pollfd p = {.fd = c->out_fd, .events = POLLIN};

    while (c->out_fd >= 0 && (text == NULL || strstr(out, text) == NULL)) {
        long left = deadline - now_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int) left) <= 0) {
            return 0;
        }
        if (c->len > OUT_SIZE / 2) { /* keep the tail */
            memmove(out, out + OUT_SIZE / 4, c->len - OUT_SIZE / 4);
            c->len -= OUT_SIZE / 4;
        }
        n = read(c->out_fd, out + c->len, OUT_SIZE - 1 - c->len);
        if (n <= 0) {
            close(c->out_fd);
            c->out_fd = -1;
            break;
        }
        c->len += (size_t) n;
        out[c->len] = '\0';
    }
    return text != NULL && strstr(out, text) != NULL;
}

/*
 * Waits until deadline for the child to exit, reading its output. Returns
 * its wait status, or -1 after killing its process group when it is late.
 */
static int
child_wait(struct child *c, long deadline)
{
    int status;

    child_read(c, NULL, deadline);
    while (waitpid(c->pid, &status, WNOHANG) == 0) {
        if (now_ms() >= deadline) {
            kill(-c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
            status = -1;
            break;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    c->pid = 0;
    if (c->out_fd >= 0) {
        close(c->out_fd);
        c->out_fd = -1;
    }
    return status;
}

/* Runs argv to completion (see child_start); returns its exit code, or -1
 * (killed, timed out, not run). Prints its output when it is not 0. */
static int
run(const char *cwd, const char *env, char *const argv[])
{
    struct child c;
    int status;

    if (child_start(&c, cwd, env, argv) < 0) {
        return -1;
    }
    status = child_wait(&c, now_ms() + BUILD_TIMEOUT_MS);
    status = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    if (status != 0) {
        fprintf(stderr, "`%s %s ...` in %s failed (%d):\n%s\n", argv[0],
                argv[1] != NULL ? argv[1] : "", cwd, status, out);
    }
    return status;
}

/* --- Files ------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    remove(path);
    return 0;
}

static void
rm_tree(char *dir)
{
    if (dir[0] != '\0') {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

static int
make_temp(char *dir, size_t len, const char *what)
{
    snprintf(dir, len, "/tmp/ioloop_sdk_%s_XXXXXX", what);
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* Every "*.so" of from is in to; returns how many, or -1 on a miss. */
static int
every_so_in(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);

        if (l > 3 && strcmp(e->d_name + l - 3, ".so") == 0) {
            if (!exists(to, e->d_name)) {
                fprintf(stderr, "%s/%s is not in %s\n", from, e->d_name, to);
                n = -1;
                break;
            }
            n++;
        }
    }
    closedir(d);
    return n;
}

/* nftw has no user pointer: the count of test files it found. */
static int test_files;

static int
count_test_file(const char *path, const struct stat *st, int flag,
                struct FTW *ftw)
{
    (void) st;
    (void) flag;
    if (strncmp(path + ftw->base, "test_", 5) == 0) {
        fprintf(stderr, "installed a test file: %s\n", path);
        test_files++;
    }
    return 0;
}

/* --- The installed host with one plugin -------------------------------- */

static int
connect_to(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    return fd;
}

/* Sends command + "\n" and returns the reply line without its "\n" ("" on
 * EOF or after HOST_TIMEOUT_MS). */
static const char *
ask(int fd, const char *command)
{
    static char line[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t n = 0;

    assert_true(dprintf(fd, "%s\n", command) > 0);
    while (n < sizeof(line) - 1 && poll(&p, 1, HOST_TIMEOUT_MS) == 1
           && read(fd, line + n, 1) == 1 && line[n] != '\n') {
        n++;
    }
    line[n] = '\0';
    return line;
}

/* Closes our side, then waits for the plugin to close its side, so that
 * no connection is open when the host is stopped. */
static void
hang_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    shutdown(fd, SHUT_WR);
    assert_int_equal(poll(&p, 1, HOST_TIMEOUT_MS), 1);
    assert_int_equal(read(fd, &c, 1), 0);
    close(fd);
}

/*
 * Loads plugin (a kv.so) into <prefix>/bin/ioloop-host through a manifest
 * on port 0, reads the port from "[kv] listening on 127.0.0.1:PORT", runs
 * SET/GET/DEL/COUNT round trips, then SIGTERM with a connection open: the
 * host must exit 0.
 */
static void
load_and_talk(const char *plugin)
{
    const char *marker = "[kv] listening on 127.0.0.1:";
    char host[128], manifest[128];
    char *argv[] = {host, "--config", manifest, NULL};
    struct child c;
    FILE *f;
    int fd, port, status;

    assert_int_equal(make_temp(tmp.host_dir, sizeof(tmp.host_dir), "host"),
                     0);
    snprintf(host, sizeof(host), "%s/bin/ioloop-host", tmp.prefix);
    snprintf(manifest, sizeof(manifest), "%s/host.json", tmp.host_dir);
    f = fopen(manifest, "w");
    assert_non_null(f);
    fprintf(f, "{\"plugins\": [{\"name\": \"kv\", \"path\": \"%s\", "
               "\"config\": {\"listen\": \"127.0.0.1:0\"}}]}\n",
            plugin);
    fclose(f);

    assert_int_equal(child_start(&c, "/", NULL, argv), 0);
    if (!child_read(&c, marker, now_ms() + HOST_TIMEOUT_MS)) {
        child_wait(&c, now_ms());
        fail_msg("%s did not start with %s:\n%s", host, plugin, out);
    }
    port = atoi(strstr(out, marker) + strlen(marker));
    assert_true(port > 0);

    fd = connect_to(port);
    assert_string_equal(ask(fd, "COUNT"), "VALUE 0");
    assert_string_equal(ask(fd, "SET language C11"), "OK");
    assert_string_equal(ask(fd, "SET motto small and clear"), "OK");
    assert_string_equal(ask(fd, "GET motto"), "VALUE small and clear");
    assert_string_equal(ask(fd, "COUNT"), "VALUE 2");
    assert_string_equal(ask(fd, "DEL language"), "OK");
    assert_string_equal(ask(fd, "GET language"), "NOT_FOUND");
    assert_string_equal(ask(fd, "DEL language"), "NOT_FOUND");
    assert_string_equal(ask(fd, "COUNT"), "VALUE 1");
    assert_string_equal(ask(fd, "HELLO"), "ERR unknown command 'HELLO'");
    hang_up(fd);

    /* A connection still open, with half a line read, at SIGTERM: fini
     * must free it (and ASan finds no leak). */
    fd = connect_to(port);
    assert_string_equal(ask(fd, "COUNT"), "VALUE 1");
    assert_int_equal(write(fd, "GET mot", 7), 7);

    kill(c.pid, SIGTERM);
    status = child_wait(&c, now_ms() + HOST_TIMEOUT_MS);
    close(fd);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("the host did not exit 0 on SIGTERM (status %#x):\n%s",
                 (unsigned) status, out);
    }
    assert_non_null(strstr(out, "[host] stopped"));
    rm_tree(tmp.host_dir);
}

/* --- Tests ------------------------------------------------------------- */

static int
group_setup(void **state)
{
    char *argv[] = {IOLOOP_CMAKE_COMMAND, "--install", IOLOOP_BUILD_DIR,
                    "--prefix", tmp.prefix, NULL};

    (void) state;
    signal(SIGPIPE, SIG_IGN);
    if (make_temp(tmp.prefix, sizeof(tmp.prefix), "prefix") < 0) {
        perror("mkdtemp");
        return -1;
    }
    return run("/", NULL, argv) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void) state;
    rm_tree(tmp.host_dir);
    rm_tree(tmp.cmake_dir);
    rm_tree(tmp.make_dir);
    rm_tree(tmp.prefix);
    return 0;
}

static void
test_installed_tree(void **state)
{
    static const char *const files[] = {
        "bin/ioloop-host",
        "etc/ioloop/host.json",
        "include/ioloop/loop.h",
        "include/ioloop/backend.h",
        "include/ioloop/plugin.h",
        "include/ioloop/config.h",
        "include/ioloop/testing.h",
        "lib/libioloop_testing.so",
        "lib/pkgconfig/ioloop-testing.pc",
        "lib/pkgconfig/ioloop.pc",
        "lib/cmake/ioloop/ioloopConfig.cmake",
        "lib/cmake/ioloop/ioloopConfigVersion.cmake",
        "lib/ioloop/plugins/hello_http.so",
        "lib/ioloop/plugins/echo.so",
        "lib/ioloop/backends/poll.so",
        "lib/ioloop/backends/select.so",
    };
    char a[128], b[128];

    (void) state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (!exists(tmp.prefix, files[i])) {
            fail_msg("%s/%s is missing", tmp.prefix, files[i]);
        }
    }
    snprintf(a, sizeof(a), "%s/%s", tmp.prefix, files[0]);
    assert_int_equal(access(a, X_OK), 0);

    /* Exactly the built backends and bundled plugins, nothing else. */
    snprintf(a, sizeof(a), "%s/lib/ioloop/backends", tmp.prefix);
    assert_true(every_so_in(IOLOOP_BUILD_DIR "/backends", a) >= 2);
    assert_int_equal(every_so_in(a, IOLOOP_BUILD_DIR "/backends"),
                     every_so_in(IOLOOP_BUILD_DIR "/backends", a));
    snprintf(b, sizeof(b), "%s/lib/ioloop/plugins", tmp.prefix);
    assert_true(every_so_in(IOLOOP_BUILD_DIR "/plugins", b) >= 2);
    assert_int_equal(every_so_in(b, IOLOOP_BUILD_DIR "/plugins"),
                     every_so_in(IOLOOP_BUILD_DIR "/plugins", b));
    test_files = 0;
    nftw(tmp.prefix, count_test_file, 16, FTW_PHYS);
    assert_int_equal(test_files, 0);
}

static void
test_pkg_config_file(void **state)
{
    char env[128], want[256];
    char *cflags[] = {IOLOOP_PKG_CONFIG, "--cflags", "ioloop", NULL};
    char *dir[] = {IOLOOP_PKG_CONFIG, "--variable=plugindir", "ioloop",
                   NULL};
    char *requires[] = {IOLOOP_PKG_CONFIG, "--print-requires", "ioloop",
                        NULL};
    char *libs[] = {IOLOOP_PKG_CONFIG, "--libs", "ioloop", NULL};
    char *testing_libs[] = {IOLOOP_PKG_CONFIG, "--libs", "ioloop-testing",
                            NULL};

    (void) state;
    snprintf(env, sizeof(env), "PKG_CONFIG_PATH=%s/lib/pkgconfig",
             tmp.prefix);
    assert_int_equal(run("/", env, cflags), 0);
    snprintf(want, sizeof(want), "-I%s/include", tmp.prefix);
    assert_non_null(strstr(out, want));
    assert_int_equal(run("/", env, dir), 0);
    snprintf(want, sizeof(want), "%s/lib/ioloop/plugins\n", tmp.prefix);
    assert_string_equal(out, want);
    assert_int_equal(run("/", env, requires), 0);
    assert_null(strstr(out, "jansson")); /* plugins see no json_t */
    assert_int_equal(run("/", env, libs), 0);
    assert_null(strstr(out, "ioloop")); /* no host library to link */
    /* A sanitized host refuses plugins without its sanitizers (the build
     * signature): its SDK hands the flags on, a plain one none. */
    if (IOLOOP_BUILD_SANITIZER(IOLOOP_BUILD_SIGNATURE) != 0) {
        assert_non_null(strstr(out, "-fsanitize="));
    } else {
        assert_null(strstr(out, "-fsanitize"));
    }
    /* Unit tests link libioloop_testing, found at run time by rpath. */
    assert_int_equal(run("/", env, testing_libs), 0);
    snprintf(want, sizeof(want), "-Wl,-rpath,%s/lib -lioloop_testing",
             tmp.prefix);
    assert_non_null(strstr(out, want));
}

/* The installed host finds its manifest, backends and plugins relative to
 * itself, whatever the working directory. */
static void
test_installed_host_runs_from_anywhere(void **state)
{
    char host[128], want[160];
    char *argv[] = {host, "--check", NULL};

    (void) state;
    snprintf(host, sizeof(host), "%s/bin/ioloop-host", tmp.prefix);
    assert_int_equal(run("/", NULL, argv), 0);
    snprintf(want, sizeof(want), "%s/bin/../etc/ioloop/host.json: OK",
             tmp.prefix);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "2 plugins"));
}

/*
 * A sanitizer build installs a sanitized host and libioloop_testing: the
 * template then gets the same -fsanitize flags from the SDK alone
 * (ioloop::api, pkg-config's ioloop), as the build signature requires,
 * and still links its plugin with -z defs.
 */
static void
test_template_with_cmake(void **state)
{
    char prefix_path[128], plugin[128];
    char *configure[] = {IOLOOP_CMAKE_COMMAND, "-S", TEMPLATE_DIR, "-B",
                         tmp.cmake_dir, prefix_path, NULL};
    char *build[] = {IOLOOP_CMAKE_COMMAND, "--build", tmp.cmake_dir, NULL};
    char *test[] = {IOLOOP_CTEST_COMMAND, "--test-dir", tmp.cmake_dir,
                    "--output-on-failure", NULL};

    (void) state;
    assert_int_equal(make_temp(tmp.cmake_dir, sizeof(tmp.cmake_dir),
                               "cmake"),
                     0);
    snprintf(prefix_path, sizeof(prefix_path), "-DCMAKE_PREFIX_PATH=%s",
             tmp.prefix);
    assert_int_equal(run("/", NULL, configure), 0);
    assert_int_equal(run("/", NULL, build), 0);
    /* The template's own tests: libioloop_testing, the installed host. */
    assert_int_equal(run("/", NULL, test), 0);
    assert_non_null(strstr(out, "100% tests passed"));

    snprintf(plugin, sizeof(plugin), "%s/kv.so", tmp.cmake_dir);
    load_and_talk(plugin);
}

static void
test_template_with_make(void **state)
{
    char env[128], plugin[128];
    char *build[] = {IOLOOP_MAKE, "-f", TEMPLATE_DIR "/Makefile", NULL};
    char *check[] = {IOLOOP_MAKE, "-f", TEMPLATE_DIR "/Makefile", "check",
                     NULL};

    (void) state;
    assert_int_equal(make_temp(tmp.make_dir, sizeof(tmp.make_dir), "make"),
                     0);
    snprintf(env, sizeof(env), "PKG_CONFIG_PATH=%s/lib/pkgconfig",
             tmp.prefix);
    assert_int_equal(run(tmp.make_dir, env, build), 0);
    assert_int_equal(run(tmp.make_dir, env, check), 0);

    snprintf(plugin, sizeof(plugin), "%s/kv.so", tmp.make_dir);
    load_and_talk(plugin);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed_tree),
        cmocka_unit_test(test_pkg_config_file),
        cmocka_unit_test(test_installed_host_runs_from_anywhere),
        cmocka_unit_test(test_template_with_cmake),
        cmocka_unit_test(test_template_with_make),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
