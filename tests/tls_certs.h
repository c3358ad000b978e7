/*
 * tests/tls_certs.h: the throwaway certificates of the TLS tests, made at
 * test time by tests/tls_certs.sh (no private key is committed).
 */
#ifndef IOLOOP_TEST_TLS_CERTS_H
#define IOLOOP_TEST_TLS_CERTS_H

/* The folder holding them, once tls_certs_make succeeded. */
extern char tls_dir[64];

/* Makes /tmp/NAME.XXXXXX and the certificates in it. 0, or -1. */
int tls_certs_make(const char *name);

/* Removes tls_dir and everything in it. 0, or -1. */
int tls_certs_remove(void);

/* tls_dir/file, valid until the fourth call after this one. */
char *tls_path(const char *file);

/* Copies tls_dir/from to tls_dir/to; fails the test otherwise. */
void tls_copy(const char *from, const char *to);

#endif /* IOLOOP_TEST_TLS_CERTS_H */
