/* tests/integration/fixture.c: one host per test, the waits on it, and the
 * probes several tests make (a worker's pid, one GET /). */
#include "fixture.h"

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

#include "client.h"

struct host_process hp;

int
host_teardown(void **state)
{
    (void) state;
    host_cleanup(&hp);
    return 0;
}

void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int
wait_log(const char *text, int n, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        if (host_log_count(&hp, text) >= n) {
            return 0;
        }
        sleep_ms(10);
    }
    host_dump_log(&hp);
    return -1;
}

void
stop_ok(void)
{
    assert_int_equal(host_stop_clean(&hp), 0);
}

pid_t
worker_pid(int slot)
{
    char prefix[32], *p;
    pid_t pid = -1;

    snprintf(prefix, sizeof(prefix), "worker %d: pid ", slot);
    pthread_mutex_lock(&hp.lock);
    for (p = strstr(hp.log, prefix); p != NULL;
         p = strstr(p + 1, prefix)) {
        pid = (pid_t) atoi(p + strlen(prefix));
    }
    pthread_mutex_unlock(&hp.lock);
    return pid;
}

int
get_root(int port, const char *body)
{
    static struct http_conn hc;
    static struct http_response r;
    int rc;

    if (http_connect(&hc, port) < 0) {
        return -1;
    }
    rc = http_get(&hc, "/", &r);
    close(hc.fd);
    if (rc < 0 || r.status != 200) {
        return -1;
    }
    return body == NULL || strcmp(r.body, body) == 0 ? 0 : -1;
}
