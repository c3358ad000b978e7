/*
 * tests/unit/test_loader.c: host/runtime/loader.c against real .so files: every
 * refusal message, the lifecycle (init in order, fini in reverse), and the
 * clean-up after a failed init.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "fakes/fake_backend.h"
#include "loader.h"
#include "log.h"
#include "loop.h"

#define MODULES IOLOOP_BUILD_DIR "/tests/modules/"
#define PLUGIN(v) MODULES "test_plugin_" v ".so"

static char err[2048];

static int
open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* open_fds once it is at most want, or after 10 s: a lookup a released
 * plugin started may still hold an fd in glibc's thread (reading
 * /etc/hosts) for a moment, longer on a loaded machine. The same holds
 * for want itself, counted while an earlier test's lookup may still have
 * had its fd: fewer than want is no leak (seen once in a fresh-clone make
 * test beside a benchmark: 9 after, 10 before). */
static int
open_fds_settled(int want)
{
    int n = open_fds();

    for (int i = 0; i < 1000 && n > want; i++) {
        usleep(10 * 1000);
        n = open_fds();
    }
    return n;
}

static void
assert_plugin_refused(const char *path, const char *expected)
{
    const struct ioloop_plugin *desc = NULL;
    void *dl = NULL;

    assert_int_equal(ioloop__plugin_open(path, &dl, &desc, err, sizeof(err)),
                     -1);
    assert_null(dl);
    assert_string_equal(err, expected);
}

static void
test_backend_open_ok(void **state)
{
    struct ioloop_backend_lib lib;

    (void) state;
    assert_int_equal(ioloop__backend_open(IOLOOP_BUILD_DIR
                                          "/backends/epoll.so",
                                          &lib, err, sizeof(err)),
                     0);
    assert_string_equal(lib.ops->name, "epoll");
    ioloop__backend_close(&lib);
    assert_null(lib.dl);
}

static void
test_backend_refusals(void **state)
{
    struct ioloop_backend_lib lib;

    (void) state;
    assert_int_equal(ioloop__backend_open(MODULES "nope.so", &lib, err,
                                          sizeof(err)),
                     -1);
    assert_string_equal(err, MODULES "nope.so: cannot open shared object "
                             "file: No such file or directory");
    assert_int_equal(ioloop__backend_open(MODULES "test_backend_major2.so",
                                          &lib, err, sizeof(err)),
                     -1);
    assert_string_equal(err, MODULES "test_backend_major2.so: backend ABI "
                             "2.0, host backend ABI 1.0: major versions "
                             "differ (rebuild it against this host's "
                             "headers)");
    /* A plugin is not a backend. */
    assert_int_equal(ioloop__backend_open(PLUGIN("default"), &lib, err,
                                          sizeof(err)),
                     -1);
    assert_string_equal(err, PLUGIN("default") ": no symbol "
                             "'ioloop_backend_v1': not an ioloop backend (or "
                             "built without IOLOOP_EXPORT)");
}

static void
test_not_a_shared_object(void **state)
{
    char path[] = "/tmp/ioloop-not-elf-XXXXXX.so";
    const struct ioloop_plugin *desc;
    void *dl = NULL;
    int fd = mkstemps(path, 3);

    (void) state;
    assert_true(fd >= 0);
    /* Longer than an ELF header, so glibc reads it and finds no magic. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(write(fd, "hello, I am text\n", 17), 17);
    }
    close(fd);
    assert_int_equal(ioloop__plugin_open(path, &dl, &desc, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "invalid ELF header"));
    unlink(path);
}

static void
test_plugin_refusals(void **state)
{
    (void) state;
    snprintf(err, sizeof(err), "%zu", sizeof(struct ioloop_plugin));
    {
        /* The host's minor (IOLOOP_PLUGIN_ABI_MINOR) grows with the API. */
        const int minor = IOLOOP_PLUGIN_ABI_MINOR;
        char expected[1024];

        snprintf(expected, sizeof(expected),
                 "%s: plugin ABI 2.0, host plugin ABI 1.%d: major versions "
                 "differ (rebuild it against this host's headers)",
                 PLUGIN("major2"), minor);
        assert_plugin_refused(PLUGIN("major2"), expected);
        snprintf(expected, sizeof(expected),
                 "%s: plugin ABI 1.%d with a %zu-byte table sets byte %zu, "
                 "past the %zu bytes host plugin ABI 1.%d knows: it needs "
                 "members this host lacks (upgrade the host)",
                 PLUGIN("newer_minor_sets"), minor + 1,
                 sizeof(struct ioloop_plugin) + sizeof(uint64_t),
                 sizeof(struct ioloop_plugin), sizeof(struct ioloop_plugin),
                 minor);
        assert_plugin_refused(PLUGIN("newer_minor_sets"), expected);
        snprintf(expected, sizeof(expected),
                 "%s: plugin ABI 1.%d declares a 8-byte table, smaller than "
                 "the %zu bytes every 1.x table has (corrupt descriptor)",
                 PLUGIN("too_small"), minor,
                 offsetof(struct ioloop_plugin, fini) + sizeof(void *));
        assert_plugin_refused(PLUGIN("too_small"), expected);
    }
    assert_plugin_refused(PLUGIN("no_init"),
                          PLUGIN("no_init") ": plugin descriptor lacks the "
                                            "mandatory 'init'");
    assert_plugin_refused(PLUGIN("no_symbol"),
                          PLUGIN("no_symbol") ": no symbol 'ioloop_plugin_v1': "
                                              "not an ioloop plugin (or built "
                                              "without IOLOOP_EXPORT)");
}

/* A plugin built with other sanitizer flags is refused, naming both. */
static void
test_other_build_refused(void **state)
{
    static const char *const names[] = {"none", "ASan", "TSan",
                                        "ASan+TSan"};
    const unsigned host = IOLOOP_BUILD_SANITIZER(IOLOOP_BUILD_SIGNATURE);
    char expected[1024];

    (void) state;
    snprintf(expected, sizeof(expected),
             "%s: plugin built for %zu-byte pointers, %zu-byte time_t, "
             "sanitizer %s, ABI major 1; host: %zu-byte pointers, %zu-byte "
             "time_t, sanitizer %s, ABI major 1 (rebuild it with this "
             "host's headers and sanitizer flags)",
             PLUGIN("other_build"), sizeof(void *), sizeof(time_t),
             names[host ^ 1u], sizeof(void *), sizeof(time_t), names[host]);
    assert_plugin_refused(PLUGIN("other_build"), expected);
}

/* A newer minor with a larger descriptor whose unknown tail is zero (it
 * left the newer members unset) is accepted, as copy_struct_from_user
 * does. */
static void
test_newer_minor_zero_tail_accepted(void **state)
{
    const struct ioloop_plugin *desc = NULL;
    void *dl = NULL;

    (void) state;
    assert_int_equal(ioloop__plugin_open(PLUGIN("newer_minor_larger"), &dl,
                                         &desc, err, sizeof(err)),
                     0);
    assert_true(desc->size > sizeof(struct ioloop_plugin));
    dlclose(dl);
}

/* A newer minor that appended nothing the host lacks is accepted. */
static void
test_newer_minor_same_size_accepted(void **state)
{
    const struct ioloop_plugin *desc = NULL;
    void *dl = NULL;

    (void) state;
    assert_int_equal(ioloop__plugin_open(PLUGIN("newer_minor_same_size"), &dl,
                                         &desc, err, sizeof(err)),
                     0);
    assert_string_equal(desc->name, "test_plugin");
    dlclose(dl);
}

/* A plugin built for an older minor (a smaller table) is accepted, and
 * the host never reads the members it lacks. */
static void
test_older_minor_smaller_accepted(void **state)
{
    const struct ioloop_plugin *desc = NULL;
    void *dl = NULL;

    (void) state;
    assert_int_equal(ioloop__plugin_open(PLUGIN("older_smaller"), &dl, &desc,
                                         err, sizeof(err)),
                     0);
    assert_true(desc->size < sizeof(struct ioloop_plugin));
    dlclose(dl);
}

/* n instances of the test plugin, configs given. */
struct fixture {
    struct ioloop_instance_spec specs[4];
    size_t n;
    json_t *configs[4];
    char names[4][8];
    char where[4][32];
};

static void
fixture_init(struct fixture *f, size_t n, const char *const *configs,
             const char *const *paths)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "%c", (char) ('a' + i));
        f->configs[i] = json_loads(configs[i], 0, NULL);
        assert_non_null(f->configs[i]);
        snprintf(f->where[i], sizeof(f->where[i]), "plugins[%zu]", i);
        f->specs[i] = (struct ioloop_instance_spec) {
            .name = f->names[i],
            .path = paths ? paths[i] : PLUGIN("default"),
            .where = f->where[i],
            .config = f->configs[i],
            .log_level = -1, /* no per-plugin level */
        };
    }
    f->n = n;
}

/* ioloop__plugins_load of f; at receives the refused value's path. */
static int
fixture_load(struct ioloop_plugin_set *set, struct fixture *f,
             const char *plugin_dir, char *at, size_t atlen)
{
    return ioloop__plugins_load(set, f->specs, f->n, plugin_dir, "/etc/x",
                                err, sizeof(err), at, atlen);
}

static void
fixture_free(struct fixture *f)
{
    for (size_t i = 0; i < f->n; i++) {
        json_decref(f->configs[i]);
    }
}

static ioloop_loop_t *
fake_loop(void)
{
    ioloop_loop_t *loop = ioloop_loop_new(&fake_backend_ops, err,
                                          sizeof(err));

    assert_non_null(loop);
    return loop;
}

static void
test_load_failure_names_the_entry(void **state)
{
    static const char *const configs[] = {"{}", "{}"};
    static const char *const paths[] = {PLUGIN("default"), PLUGIN("major2")};
    struct ioloop_plugin_set set;
    struct fixture f;
    char at[64];

    (void) state;
    fixture_init(&f, 2, configs, paths);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)),
                     -1);
    assert_true(strncmp(err, "plugins[1] \"b\": " PLUGIN("major2") ": plugin "
                             "ABI 2.0",
                        strlen("plugins[1] \"b\": " PLUGIN("major2")
                               ": plugin ABI 2.0"))
                == 0);
    assert_null(set.v);
    fixture_free(&f);
}

static void
test_bare_name_found_in_plugin_dir(void **state)
{
    static const char *const configs[] = {"{}"};
    static const char *const paths[] = {"test_plugin_default.so"};
    struct ioloop_plugin_set set;
    struct fixture f;
    char at[64];

    (void) state;
    fixture_init(&f, 1, configs, paths);
    assert_int_equal(fixture_load(&set, &f,
                                  IOLOOP_BUILD_DIR "/tests/modules", at,
                                  sizeof(at)),
                     0);
    assert_string_equal(set.v[0].path, PLUGIN("default"));
    ioloop__plugins_unload(&set);
    fixture_free(&f);
}

static char captured[8192];

static void
begin_capture(int *saved, FILE **tmp)
{
    *tmp = tmpfile();
    *saved = dup(STDERR_FILENO);
    dup2(fileno(*tmp), STDERR_FILENO);
}

static void
end_capture(int saved, FILE *tmp)
{
    size_t n;

    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(captured, 1, sizeof(captured) - 1, tmp);
    captured[n] = '\0';
    fclose(tmp);
}

/* Two instances of one .so, each with its own state; fini in reverse. */
static void
test_instances_and_fini_order(void **state)
{
    static const char *const configs[] = {"{\"pipe\": true}",
                                          "{\"pipe\": true}", "{}"};
    struct ioloop_plugin_set set;
    char at[64];
    ioloop_loop_t *loop = fake_loop();
    struct fixture f;
    FILE *tmp;
    int saved;

    (void) state;
    fixture_init(&f, 3, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)),
                     0);
    assert_int_equal(set.n, 3);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)), 0);
    assert_int_equal(ioloop__handler_count(loop), 2);
    assert_ptr_not_equal(set.v[0].state, set.v[1].state);
    begin_capture(&saved, &tmp);
    ioloop__plugins_fini(&set, loop);
    end_capture(saved, tmp);
    assert_int_equal(ioloop__handler_count(loop), 0);
    {
        char *c = strstr(captured, "[c] fini");
        char *b = strstr(captured, "[b] fini");
        char *a = strstr(captured, "[a] fini");

        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);
        assert_true(c < b && b < a);
    }
    ioloop__plugins_unload(&set);
    ioloop_loop_free(loop);
    fixture_free(&f);
}

/* When init fails, earlier instances are stopped and nothing is left. */
static void
test_init_failure_unwinds(void **state)
{
    static const char *const configs[] = {"{\"pipe\": true}",
                                          "{\"fail\": \"bad key 'x'\"}"};
    struct ioloop_plugin_set set;
    char at[64];
    ioloop_loop_t *loop = fake_loop();
    int fds_before = open_fds();
    struct fixture f;
    FILE *tmp;
    int saved;

    (void) state;
    fixture_init(&f, 2, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)),
                     0);
    begin_capture(&saved, &tmp);
    /* init's own -errno comes back. */
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)),
                     -EINVAL);
    end_capture(saved, tmp);
    assert_string_equal(err, "plugins[1] \"b\": init failed: bad key 'x'");
    assert_non_null(strstr(captured, "[a] fini")); /* a was unwound */
    assert_false(set.v[0].started);
    assert_int_equal(ioloop__handler_count(loop), 0);
    assert_int_equal(open_fds(), fds_before);
    ioloop__plugins_unload(&set);
    ioloop_loop_free(loop);
    fixture_free(&f);
}

/* A plugin that registers a handler and fails init: the host removes it. */
static void
test_failed_init_handlers_removed(void **state)
{
    static const char *const configs[] = {"{\"register_then_fail\": true}"};
    struct ioloop_plugin_set set;
    char at[64];
    ioloop_loop_t *loop = fake_loop();
    int fds_before = open_fds();
    struct fixture f;
    FILE *tmp;
    int saved;

    (void) state;
    fixture_init(&f, 1, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)),
                     0);
    begin_capture(&saved, &tmp);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)),
                     -EIO);
    end_capture(saved, tmp);
    assert_string_equal(err, "plugins[0] \"a\": init failed: failed after "
                             "registering a handler");
    assert_non_null(strstr(captured, "warn [a] init failed left 0 "
                                     "connect attempt(s), 0 "
                                     "stream(s), 0 periodic(s), 0 timer(s), "
                                     "0 callback(s), 0 signal "
                                     "subscription(s), 1 handler(s), 0 "
                                     "open listener(s) and 0 TLS "
                                     "context(s); released them"));
    assert_int_equal(ioloop__handler_count(loop), 0);
    assert_int_equal(open_fds(), fds_before);
    ioloop__plugins_unload(&set);
    ioloop_loop_free(loop);
    fixture_free(&f);
}

/* A config the schema refuses: nothing loaded, err and at name the
 * value; no init ran. */
static void
test_config_refused_at_load(void **state)
{
    static const char *const configs[] = {"{}", "{\"sleep_ms\": \"5\"}"};
    static const char *const unknown[] = {"{\"slep_ms\": 5}"};
    struct ioloop_plugin_set set;
    struct fixture f;
    char at[64];

    (void) state;
    fixture_init(&f, 2, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), -1);
    assert_string_equal(err, "plugins[1].config.sleep_ms: expected an "
                             "integer in [0, 60000], got \"5\"");
    assert_string_equal(at, "plugins[1].config.sleep_ms");
    assert_null(set.v);
    fixture_free(&f);

    fixture_init(&f, 1, unknown, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), -1);
    assert_string_equal(err, "plugins[0].config.slep_ms: unknown key "
                             "(test_plugin accepts: fail, "
                             "register_then_fail, pipe, listen, on_accept, "
                             "sleep_ms, report_worker, everything, "
                             "tls_cert, tls_key)");
    fixture_free(&f);
}

/* The filled config reaches init; defaults apply to absent keys. */
static void
test_config_filled_before_init(void **state)
{
    static const char *const configs[] = {"{\"pipe\": true}", "{}"};
    struct ioloop_plugin_set set;
    ioloop_loop_t *loop = fake_loop();
    struct fixture f;
    char at[64];
    const bool *pipe;

    (void) state;
    fixture_init(&f, 2, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), 0);
    assert_string_equal(at, "");
    /* pipe is the third member: after a pointer and a bool. */
    pipe = (const bool *) ((const char *) set.v[0].values.data
                           + set.v[0].desc->config_schema[2].offset);
    assert_true(*pipe);
    pipe = (const bool *) ((const char *) set.v[1].values.data
                           + set.v[1].desc->config_schema[2].offset);
    assert_false(*pipe);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)), 0);
    assert_int_equal(ioloop__handler_count(loop), 1);
    ioloop__plugins_fini(&set, loop);
    ioloop__plugins_unload(&set);
    ioloop_loop_free(loop);
    fixture_free(&f);
}

/* An init that names a config value first gets that value's place; any
 * other reason gets none. */
static void
test_init_refusal_place(void **state)
{
    static const char *const configs[] = {
        "{\"fail\": \"config.fail: refused\"}",
    };
    static const char *const others[] = {"{\"fail\": \"configfail: no\"}"};
    struct ioloop_plugin_set set;
    ioloop_loop_t *loop = fake_loop();
    struct fixture f;
    char at[64];

    (void) state;
    fixture_init(&f, 1, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), 0);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(set.v[0].refused_at, "plugins[0].config.fail");
    ioloop__plugins_unload(&set);
    fixture_free(&f);

    fixture_init(&f, 1, others, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), 0);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(set.v[0].refused_at, "");
    ioloop__plugins_unload(&set);
    ioloop_loop_free(loop);
    fixture_free(&f);
}

static int
stop_next(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    ioloop_stop(loop);
    return 0;
}

/* Runs two iterations: every callback queued before runs in the first
 * (the stats are then updated, before the poll), the stop in the next. */
static int
stop_after_one(ioloop_loop_t *loop, void *arg)
{
    (void) arg;
    return ioloop_add_callback(loop, stop_next, NULL);
}

/*
 * An instance that registered one of everything, then failed init (or
 * was stopped by a fini that released nothing), leaves nothing behind:
 * no handler, no timer, no fd, no signal disposition, no allocation (the
 * sanitizer build's LSan), and nothing of it runs again (every one of its
 * callbacks aborts). The loop then runs: the callbacks queued from this
 * thread, another thread and "a signal handler" must have been dropped.
 * The fds are counted around the loop, whose own (the spare fd for
 * accept's EMFILE recovery among them) go with it.
 */
static void
check_everything_released(const char *config, int fail, const char *line)
{
    const char *const configs[] = {config};
    struct ioloop_plugin_set set;
    int fds_before = open_fds();
    ioloop_loop_t *loop = fake_loop();
    struct sigaction before, after;
    struct fixture f;
    char at[64];
    FILE *tmp;
    int saved;

    sigaction(SIGUSR1, NULL, &before);
    fixture_init(&f, 1, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), 0);
    begin_capture(&saved, &tmp);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)),
                     fail ? -EIO : 0);
    if (!fail) {
        assert_true(ioloop__handler_count(loop) > 0);
        ioloop__plugins_fini(&set, loop);
    }
    end_capture(saved, tmp);
    assert_non_null(strstr(fail ? err : captured, line));
    assert_int_equal(ioloop__handler_count(loop), 0);
    sigaction(SIGUSR1, NULL, &after);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    ioloop__plugins_unload(&set);
    /* Nothing of the unloaded plugin may run now. */
    assert_int_equal(ioloop_add_callback(loop, stop_after_one, NULL), 0);
    assert_int_equal(ioloop_start(loop), 0);
    assert_int_equal(ioloop__stats(loop)->timers_pending, 0);
    assert_int_equal(ioloop__stats(loop)->handlers, 0);
    ioloop_loop_free(loop);
    assert_true(open_fds_settled(fds_before) <= fds_before);
    fixture_free(&f);
}

/* A plugin whose own schema is wrong is refused when opened. */
static void
test_bad_schema_refused(void **state)
{
    const struct ioloop_plugin *desc;
    void *dl = NULL;

    (void) state;
    assert_int_equal(ioloop__plugin_open(PLUGIN("bad_schema"), &dl, &desc,
                                         err, sizeof(err)),
                     -1);
    assert_string_equal(err, PLUGIN("bad_schema") ": schema: key "
                             "\"sleep_ms\": default: expected an integer "
                             "in [0, 10], got 11");
    assert_null(dl);
}

/* The two connect attempts (their own timers and lookup not counted),
 * the open stream (the closed one waits on the close queue, not counted),
 * and the callbacks the plugin posted from this thread, another thread and
 * "a signal handler". */
#define EVERYTHING_LEFT                                                     \
    "2 connect attempt(s), 1 stream(s), 1 periodic(s), 1 timer(s), 3 "      \
    "callback(s), 1 signal "                                                \
    "subscription(s), 2 handler(s), 1 open listener(s) and 0 TLS "          \
    "context(s); released them"

static void
test_failed_init_releases_everything(void **state)
{
    (void) state;
    check_everything_released("{\"everything\": \"fail\"}", 1,
                              "plugins[0] \"a\": init failed: failed "
                              "after registering everything");
    assert_non_null(strstr(captured, "warn [a] init failed left "
                                     EVERYTHING_LEFT));
}

static void
test_stopped_instance_releases_everything(void **state)
{
    (void) state;
    check_everything_released("{\"everything\": \"keep\"}", 0,
                              "warn [a] fini left " EVERYTHING_LEFT);
}

/*
 * TLS contexts (a server's and a client's) made by an instance whose init
 * then fails are the host's to free: counted in the warning, and no leak
 * (LSan in the sanitizer build).
 */
static void
test_failed_init_frees_tls_context(void **state)
{
    char dir[64], cmd[256], config[256];
    const char *const configs[] = {config};
    struct ioloop_plugin_set set;
    ioloop_loop_t *loop = fake_loop();
    struct fixture f;
    char at[64];
    FILE *tmp;
    int saved;

    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/test_loader.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "sh %s/tests/tls_certs.sh %s",
             IOLOOP_SOURCE_DIR, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(config, sizeof(config),
             "{\"tls_cert\": \"%s/srv.pem\", \"tls_key\": \"%s/srv.key\"}",
             dir, dir);
    fixture_init(&f, 1, configs, NULL);
    assert_int_equal(fixture_load(&set, &f, MODULES, at, sizeof(at)), 0);
    begin_capture(&saved, &tmp);
    assert_int_equal(ioloop__plugins_init(&set, loop, err, sizeof(err)),
                     -EIO);
    end_capture(saved, tmp);
    assert_string_equal(err, "plugins[0] \"a\": init failed: failed after "
                             "making TLS contexts");
    assert_non_null(strstr(captured, "warn [a] init failed left 0 connect "
                                     "attempt(s), 0 stream(s), 0 "
                                     "periodic(s), 0 timer(s), 0 "
                                     "callback(s), 0 signal subscription(s), "
                                     "0 handler(s), 0 open listener(s) and "
                                     "2 TLS context(s); released them"));
    ioloop__plugins_unload(&set);
    ioloop_loop_free(loop);
    fixture_free(&f);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Who a callback ran as: ioloop__owner_name during the callback. */
static char ran_as[2][32];

static int
note_owner(ioloop_loop_t *loop, void *arg)
{
    snprintf(ran_as[(intptr_t) arg], sizeof(ran_as[0]), "%s",
             ioloop__owner_name(loop));
    return 0;
}

static void *
post_from_thread(void *arg)
{
    ioloop_instance_t *inst = arg;

    ioloop__api()->add_callback(inst, note_owner, (void *) 0);
    return NULL;
}

/*
 * A callback posted through the API from another thread, or from a
 * signal handler, runs as the instance that posted it (its log lines and
 * failures carry the instance's name), not as "host".
 */
static void
test_foreign_callbacks_run_as_instance(void **state)
{
    ioloop_instance_t inst = {.owner = {.name = "poster"}};
    pthread_t t;

    (void) state;
    inst.loop = fake_loop();
    memset(ran_as, 0, sizeof(ran_as));
    assert_int_equal(pthread_create(&t, NULL, post_from_thread, &inst), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(ioloop__api()->add_callback_from_signal(
                         &inst, note_owner, (void *) 1),
                     0);
    assert_int_equal(ioloop_add_callback(inst.loop, stop_after_one, NULL), 0);
    assert_int_equal(ioloop_start(inst.loop), 0);
    assert_string_equal(ran_as[0], "poster");
    assert_string_equal(ran_as[1], "poster");
    ioloop_loop_free(inst.loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_open_ok),
        cmocka_unit_test(test_backend_refusals),
        cmocka_unit_test(test_not_a_shared_object),
        cmocka_unit_test(test_plugin_refusals),
        cmocka_unit_test(test_other_build_refused),
        cmocka_unit_test(test_newer_minor_zero_tail_accepted),
        cmocka_unit_test(test_newer_minor_same_size_accepted),
        cmocka_unit_test(test_older_minor_smaller_accepted),
        cmocka_unit_test(test_load_failure_names_the_entry),
        cmocka_unit_test(test_bare_name_found_in_plugin_dir),
        cmocka_unit_test(test_instances_and_fini_order),
        cmocka_unit_test(test_init_failure_unwinds),
        cmocka_unit_test(test_failed_init_handlers_removed),
        cmocka_unit_test(test_config_refused_at_load),
        cmocka_unit_test(test_config_filled_before_init),
        cmocka_unit_test(test_init_refusal_place),
        cmocka_unit_test(test_bad_schema_refused),
        cmocka_unit_test(test_failed_init_releases_everything),
        cmocka_unit_test(test_stopped_instance_releases_everything),
        cmocka_unit_test(test_failed_init_frees_tls_context),
        cmocka_unit_test(test_foreign_callbacks_run_as_instance),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
