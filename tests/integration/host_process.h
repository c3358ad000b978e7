/*
 * tests/integration/host_process.h: runs the real ioloop-host as a child
 * process for the integration tests. The host gets a manifest written to
 * a fresh temp folder; its stderr is captured (by a reader thread, so the
 * host never blocks on a full pipe) for the "listening on" lines that say
 * which ports it bound, and for failure messages.
 */
#ifndef IOLOOP_TEST_HOST_PROCESS_H
#define IOLOOP_TEST_HOST_PROCESS_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* Where the build puts the host and its modules. */
#define HOST_BINARY IOLOOP_BUILD_DIR "/ioloop-host"
#define HOST_BACKEND_DIR IOLOOP_BUILD_DIR "/backends"
#define HOST_PLUGIN_DIR IOLOOP_BUILD_DIR "/plugins"

/*
 * The tornado demo, as most tests run it: the plugins entry of a
 * hello_http instance "hello", and the manifest member (for extra_json)
 * of a server "web" on 127.0.0.1:0 routing "/" to it. The server logs
 * "[host] listening on": its port is host_port(hp, "host", ...).
 */
#define HOST_HELLO_ENTRY                                                     \
    "{\"name\": \"hello\", \"path\": \"" HOST_PLUGIN_DIR "/hello_http.so\"}"
#define HOST_HELLO_SERVERS                                                   \
    "\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","          \
    " \"routes\": [{\"path\": \"/\", \"plugin\": \"hello\"}]}]"

/* The same with a status instance "status" (HOST_STATUS_ENTRY) on the
 * same server, answering /metrics, /healthz and /readyz. */
#define HOST_STATUS_ENTRY                                                    \
    "{\"name\": \"status\", \"path\": \"" HOST_PLUGIN_DIR "/status.so\"}"
#define HOST_HELLO_STATUS_SERVERS                                            \
    "\"servers\": [{\"name\": \"web\", \"listen\": \"127.0.0.1:0\","          \
    " \"routes\": [{\"path\": \"/\", \"plugin\": \"hello\"},"                \
    "  {\"path\": \"/metrics\", \"plugin\": \"status\"},"                   \
    "  {\"path\": \"/healthz\", \"plugin\": \"status\"},"                   \
    "  {\"path\": \"/readyz\", \"plugin\": \"status\"}]}]"

/* Bound on every wait on the host (start-up, stop). */
#define HOST_TIMEOUT_MS 5000

struct host_process {
    pid_t pid;          /* 0: not started, or reaped */
    int status;         /* waitpid() status once reaped */
    double exited_ms;   /* monotonic time it was reaped at, in ms */
    int err_fd;         /* read end of the host's stderr, -1: none */
    pthread_t reader;   /* copies err_fd into log */
    int reader_running;
    pthread_mutex_t lock; /* guards log, log_len and eof */
    pthread_cond_t cond;  /* signalled on new output and on EOF */
    char *log;          /* captured stderr, NUL-terminated */
    size_t log_len;
    size_t log_cap;
    int eof;            /* the host closed its stderr */
    char dir[64];       /* temp folder of the manifest, "" if none */
    char manifest[128];
};

/*
 * Writes {"backend": backend, "backend_dir": HOST_BACKEND_DIR,
 * "plugins": <plugins_json>} to a fresh temp folder and starts
 * `ioloop-host --config <it>`. plugins_json is the text of the "plugins"
 * array. Returns 0, or -1 with the reason printed; call host_cleanup in
 * any case.
 */
int host_start(struct host_process *hp, const char *backend,
               const char *plugins_json);

/* host_start with RLIMIT_NOFILE set to nofile in the host (0: as is). */
int host_start_nofile(struct host_process *hp, const char *backend,
                      const char *plugins_json, int nofile);

/* The general form: extra_json (an object, may be NULL) is merged into
 * the manifest's top level, e.g. {"backend_swap": [...]}. */
int host_start_ex(struct host_process *hp, const char *backend,
                  const char *extra_json, const char *plugins_json,
                  int nofile);

/* CPU time (user + system) the host used so far, in ms; -1 if unknown. */
long host_cpu_ms(struct host_process *hp);

/* How many times text occurs in the captured stderr (thread-safe). */
int host_log_count(struct host_process *hp, const char *text);

/*
 * Waits up to timeout_ms for the "[name] listening on ADDR:PORT" line of
 * instance name. Returns the port, or -1 when the line did not come (the
 * host exited, or the time ran out).
 */
int host_port(struct host_process *hp, const char *name, int timeout_ms);

/*
 * Waits up to timeout_ms for the host to exit by itself, then for the
 * end of its stderr. Returns 0 with hp->status set, or -1 when it still
 * runs.
 */
int host_wait(struct host_process *hp, int timeout_ms);

/*
 * Sends sig (SIGTERM, SIGINT) and waits up to timeout_ms for the host to
 * exit; *elapsed_ms gets the time from the signal to the exit. Returns 0
 * with hp->status set, or -1 when it still runs.
 */
int host_stop(struct host_process *hp, int sig, int timeout_ms,
              double *elapsed_ms);

/*
 * Stops the host with SIGTERM and requires a clean exit (status 0) within
 * HOST_TIMEOUT_MS. Returns 0, or -1 after printing why and the log.
 */
int host_stop_clean(struct host_process *hp);

/* Prints the captured stderr to our stderr, under a banner. */
void host_dump_log(struct host_process *hp);

/*
 * Kills the host if it still runs (SIGKILL), reaps it, stops the reader,
 * removes the temp folder and frees the log. Safe on a zeroed struct and
 * twice.
 */
void host_cleanup(struct host_process *hp);

/*
 * A host (epoll) with these plugins must refuse to start: exit 1 with
 * one line holding want, having listened on nothing. Returns 0, or -1
 * after printing its log. Cleans up either way.
 */
int host_refuses(const char *plugins_json, const char *want);

#endif /* IOLOOP_TEST_HOST_PROCESS_H */
