/* tests/tls_certs.c: see tls_certs.h. */
#include "tls_certs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

char tls_dir[64];

int
tls_certs_make(const char *name)
{
    char cmd[256];

    snprintf(tls_dir, sizeof(tls_dir), "/tmp/%s.XXXXXX", name);
    if (mkdtemp(tls_dir) == NULL) {
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "sh %s/tests/tls_certs.sh %s",
             IOLOOP_SOURCE_DIR, tls_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
tls_certs_remove(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
    return system(cmd) == 0 ? 0 : -1;
}

char *
tls_path(const char *file)
{
    static char buf[4][128];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof(buf[0]), "%s/%s", tls_dir, file);
    return p;
}

void
tls_copy(const char *from, const char *to)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "cp %s %s", tls_path(from), tls_path(to));
    assert_int_equal(system(cmd), 0);
}
