/*
 * tests/integration/fixture.h: the cmocka fixture of the integration tests
 * that run one host per test: the host (hp), the teardown that cleans it
 * up whatever the test did, and the waits every such test uses. A test
 * starts hp with host_start*() (host_process.h) and lists itself with
 * cmocka_unit_test_teardown(test, host_teardown).
 */
#ifndef IOLOOP_TEST_FIXTURE_H
#define IOLOOP_TEST_FIXTURE_H

#include <sys/types.h>

#include "host_process.h"

/* The host of the running test. */
extern struct host_process hp;

/* cmocka teardown: kills hp if it still runs, reaps it, frees it. */
int host_teardown(void **state);

void sleep_ms(int ms);

/* Waits up to timeout_ms until hp logged text at least n times. Returns
 * 0, or -1 after printing hp's log. */
int wait_log(const char *text, int n, int timeout_ms);

/* Stops hp with SIGTERM and fails the test unless it exits with 0. */
void stop_ok(void);

/* The pid of the newest "worker N: pid P" line hp logged for slot, or -1. */
pid_t worker_pid(int slot);

/* One GET / on a new connection to 127.0.0.1:port: 0 when it answered 200
 * (with body exactly, unless body is NULL), else -1. */
int get_root(int port, const char *body);

#endif /* IOLOOP_TEST_FIXTURE_H */
