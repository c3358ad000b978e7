/* tests/integration/fixture.c: one host per test, and the waits on it. */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

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
