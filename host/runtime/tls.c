/*
 * host/runtime/tls.c: server TLS contexts and the TLS stream transport
 * (OpenSSL 3). Contract: api/ioloop/plugin.h, details in tls.h.
 *
 * The transport is non-blocking and level-triggered: each OpenSSL call
 * that cannot go on says which fd event it waits for (WANT_READ or
 * WANT_WRITE), and the stream watches for that (host/core/stream.c). The
 * only allocations are the context's and, per stream, its SSL object and
 * this file's small wrapper: none per read or write beyond OpenSSL's own.
 */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "stream.h"

#define ALPN_MAX 255 /* bytes of the ALPN list in wire format */

struct ioloop_tls_s {
    ioloop_tls_t *next;   /* the owner's list (O(1) unlink) */
    ioloop_tls_t **prev;  /* the pointer that points here */
    SSL_CTX *ctx;   /* the current one; streams hold their own reference */
    char *cert;     /* the paths, re-read by reload (one block with key) */
    char *key;
    int min_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
    unsigned char alpn[ALPN_MAX]; /* wire format: length-prefixed names */
    size_t alpn_len;              /* 0: no ALPN */
};

/* One stream's TLS state: the transport the stream calls. */
struct tls_conn {
    struct ioloop_transport t; /* first: the stream's pointer is ours */
    SSL *ssl;
    int fatal; /* a fatal error happened: no close_notify */
};

static SSL_CTX *load_ctx(const ioloop_tls_t *tls, char *err, size_t errlen);
static int readable(const char *path, char *err, size_t errlen);
static int alpn_wire(const char *list, unsigned char *out, size_t *len);
static int alpn_index(void);
static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp);
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg);
static int conn_handshake(struct ioloop_transport *t, unsigned *want);
static ssize_t conn_read(struct ioloop_transport *t, void *buf, size_t len,
                         unsigned *want);
static ssize_t conn_writev(struct ioloop_transport *t,
                           const struct iovec *iov, int iovcnt,
                           unsigned *want);
static void conn_close(struct ioloop_transport *t);
static int conn_error(struct tls_conn *c, int rc, unsigned *want, int eof);

static const struct ioloop_transport_ops conn_ops = {
    .handshake = conn_handshake,
    .read = conn_read,
    .writev = conn_writev,
    .close = conn_close,
};

static pthread_once_t alpn_once = PTHREAD_ONCE_INIT;
static int alpn_idx = -1; /* SSL_CTX ex_data slot of its ALPN list */

ioloop_tls_t *
ioloop__tls_new(ioloop_tls_t **owned, const struct ioloop_tls_options *opts,
                char *err, size_t errlen)
{
    struct ioloop_tls_options o = {0};
    ioloop_tls_t *tls;
    size_t lc, lk;

    if (opts != NULL && opts->size > 0) {
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    }
    if (o.cert == NULL || o.key == NULL) {
        snprintf(err, errlen, "tls: %s is required",
                 o.cert == NULL ? "cert" : "key");
        errno = EINVAL;
        return NULL;
    }
    lc = strlen(o.cert) + 1;
    lk = strlen(o.key) + 1;
    tls = calloc(1, sizeof(*tls) + lc + lk);
    if (tls == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        errno = ENOMEM;
        return NULL;
    }
    tls->cert = memcpy((char *) (tls + 1), o.cert, lc);
    tls->key = memcpy(tls->cert + lc, o.key, lk);
    if (o.min_version == NULL || strcmp(o.min_version, "1.2") == 0) {
        tls->min_version = TLS1_2_VERSION;
    } else if (strcmp(o.min_version, "1.3") == 0) {
        tls->min_version = TLS1_3_VERSION;
    } else {
        snprintf(err, errlen,
                 "tls: min_version \"%s\": expected \"1.2\" or \"1.3\"",
                 o.min_version);
        goto invalid;
    }
    if (o.alpn != NULL && alpn_wire(o.alpn, tls->alpn, &tls->alpn_len) < 0) {
        snprintf(err, errlen,
                 "tls: alpn \"%s\": expected comma-separated names of "
                 "1 to 255 bytes, %d bytes in all at most", o.alpn, ALPN_MAX);
        goto invalid;
    }
    tls->ctx = load_ctx(tls, err, errlen);
    if (tls->ctx == NULL) {
        int saved = errno;

        free(tls);
        errno = saved;
        return NULL;
    }
    tls->next = *owned;
    if (*owned != NULL) {
        (*owned)->prev = &tls->next;
    }
    tls->prev = owned;
    *owned = tls;
    return tls;

invalid:
    free(tls);
    errno = EINVAL;
    return NULL;
}

int
ioloop__tls_reload(ioloop_tls_t *tls, char *err, size_t errlen)
{
    SSL_CTX *ctx;

    ctx = load_ctx(tls, err, errlen);
    if (ctx == NULL) {
        return -errno;
    }
    SSL_CTX_free(tls->ctx); /* streams made from it keep their reference */
    tls->ctx = ctx;
    return 0;
}

void
ioloop__tls_free(ioloop_tls_t *tls)
{
    if (tls != NULL) {
        *tls->prev = tls->next;
        if (tls->next != NULL) {
            tls->next->prev = tls->prev;
        }
        SSL_CTX_free(tls->ctx);
        free(tls);
    }
}

size_t
ioloop__tls_release_owned(ioloop_tls_t **owned)
{
    size_t n = 0;

    while (*owned != NULL) {
        ioloop__tls_free(*owned); /* unlinks it */
        n++;
    }
    return n;
}

ioloop_stream_t *
ioloop__tls_stream_new(ioloop_loop_t *loop, int fd,
                       const struct ioloop_stream_options *opts)
{
    ioloop_tls_t *tls = NULL;
    struct tls_conn *c;
    ioloop_stream_t *s;
    int saved;

    if (opts != NULL
        && opts->size >= offsetof(struct ioloop_stream_options, tls)
                             + sizeof(opts->tls)) {
        tls = opts->tls;
    }
    if (tls == NULL || fd < 0) {
        return ioloop_stream_new(loop, fd, opts);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->t.ops = &conn_ops;
    c->ssl = SSL_new(tls->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        errno = ENOMEM;
        goto fail;
    }
    SSL_set_accept_state(c->ssl);
    s = ioloop__stream_new_over(loop, fd, opts, &c->t);
    if (s != NULL) {
        return s;
    }

fail:
    saved = errno;
    ERR_clear_error();
    SSL_free(c->ssl); /* the socket BIO does not close the fd */
    free(c);
    errno = saved;
    return NULL;
}

/*
 * A new SSL_CTX from tls's files and settings, or NULL with errno set and
 * one line in err naming the file at fault.
 */
static SSL_CTX *
load_ctx(const ioloop_tls_t *tls, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    unsigned char *alpn = NULL;
    unsigned long e;

    if (readable(tls->cert, err, errlen) < 0
        || readable(tls->key, err, errlen) < 0) {
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, tls->min_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_IGNORE_UNEXPECTED_EOF
                                 | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
        snprintf(err, errlen, "tls: %s: not a PEM certificate (%s)",
                 tls->cert, ERR_reason_error_string(ERR_peek_last_error()));
        goto invalid;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1) {
        e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, errlen, "tls: %s: key does not match certificate %s",
                     tls->key, tls->cert);
        } else {
            snprintf(err, errlen, "tls: %s: not a PEM private key (%s)",
                     tls->key, ERR_reason_error_string(e));
        }
        goto invalid;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls: %s: key does not match certificate %s",
                 tls->key, tls->cert);
        goto invalid;
    }
    if (tls->alpn_len > 0) {
        alpn = malloc(1 + tls->alpn_len);
        if (alpn == NULL || alpn_index() < 0
            || SSL_CTX_set_ex_data(ctx, alpn_idx, alpn) != 1) {
            free(alpn);
            snprintf(err, errlen, "tls: out of memory");
            goto fail;
        }
        /* The list lives with the SSL_CTX (alpn_free), which may outlive
         * the context that made it. */
        alpn[0] = (unsigned char) tls->alpn_len;
        memcpy(alpn + 1, tls->alpn, tls->alpn_len);
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    }
    ERR_clear_error();
    return ctx;

invalid:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    errno = EINVAL;
    return NULL;

fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    errno = ENOMEM;
    return NULL;
}

/* 0 when path opens for reading, else -errno with "tls: PATH: reason". */
static int
readable(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");

    if (f == NULL) {
        int saved = errno;

        snprintf(err, errlen, "tls: %s: %s", path, strerror(saved));
        errno = saved;
        return -saved;
    }
    fclose(f);
    return 0;
}

/* "a,b" to ALPN wire format ("\1a\1b"). Returns 0, or -1 for an empty
 * or too long name or list. */
static int
alpn_wire(const char *list, unsigned char *out, size_t *len)
{
    size_t n = 0;

    for (const char *p = list;; p++) {
        const char *comma = strchr(p, ',');
        size_t k = comma != NULL ? (size_t) (comma - p) : strlen(p);

        if (k == 0 || k > 255 || n + 1 + k > ALPN_MAX) {
            return -1;
        }
        out[n++] = (unsigned char) k;
        memcpy(out + n, p, k);
        n += k;
        if (comma == NULL) {
            break;
        }
        p = comma;
    }
    *len = n;
    return 0;
}

static void
alpn_index_once(void)
{
    alpn_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
}

/* The ex_data slot for ALPN lists, made once per process. */
static int
alpn_index(void)
{
    pthread_once(&alpn_once, alpn_index_once);
    return alpn_idx;
}

static void
alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
          void *argp)
{
    (void) parent;
    (void) ad;
    (void) idx;
    (void) argl;
    (void) argp;
    free(ptr);
}

/* Picks the first of the server's protocols the client offers; refuses
 * the handshake (no_application_protocol) when there is none. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *alpn = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                                                    alpn_idx);
    unsigned char *chosen;

    (void) arg;
    if (SSL_select_next_proto(&chosen, outlen, alpn + 1, alpn[0], in, inlen)
        != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static int
conn_handshake(struct ioloop_transport *t, unsigned *want)
{
    struct tls_conn *c = (struct tls_conn *) t;
    int rc = SSL_do_handshake(c->ssl);

    return rc == 1 ? 0 : conn_error(c, rc, want, -ECONNRESET);
}

static ssize_t
conn_read(struct ioloop_transport *t, void *buf, size_t len, unsigned *want)
{
    struct tls_conn *c = (struct tls_conn *) t;
    int rc = SSL_read(c->ssl, buf, len < INT_MAX ? (int) len : INT_MAX);

    return rc > 0 ? rc : conn_error(c, rc, want, 0);
}

/* One SSL_write per buffer (partial writes on): stops at the first that
 * is not taken whole. The stream retries with the same bytes first. */
static ssize_t
conn_writev(struct ioloop_transport *t, const struct iovec *iov, int iovcnt,
            unsigned *want)
{
    struct tls_conn *c = (struct tls_conn *) t;
    ssize_t total = 0;

    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len < INT_MAX ? iov[i].iov_len : INT_MAX;
        int rc;

        if (len == 0) {
            continue;
        }
        rc = SSL_write(c->ssl, iov[i].iov_base, (int) len);
        if (rc <= 0) {
            /* What was taken counts; the error shows on the next call. */
            return total > 0 ? total : conn_error(c, rc, want, -EPIPE);
        }
        total += rc;
        if ((size_t) rc < iov[i].iov_len) {
            break;
        }
    }
    return total;
}

/* close_notify when the session is sound (best effort: one try, no
 * waiting for the peer's), then frees the SSL object. */
static void
conn_close(struct ioloop_transport *t)
{
    struct tls_conn *c = (struct tls_conn *) t;

    if (!c->fatal && SSL_is_init_finished(c->ssl)) {
        SSL_shutdown(c->ssl);
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c);
}

/*
 * What an OpenSSL call's rc <= 0 means for the stream: -EAGAIN with *want,
 * eof for the peer's end (0 for a read, -errno for what cannot go on),
 * -errno for a socket error, -EPROTO for a TLS one.
 * OpenSSL's per-thread error queue is left empty.
 */
static int
conn_error(struct tls_conn *c, int rc, unsigned *want, int eof)
{
    int saved = errno;

    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *want = IOLOOP_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = IOLOOP_WRITE;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return eof;
    case SSL_ERROR_SYSCALL:
        c->fatal = 1;
        ERR_clear_error();
        return saved != 0 ? -saved : eof;
    default:
        c->fatal = 1;
        ERR_clear_error();
        return -EPROTO;
    }
}

struct ssl_st *
ioloop__tls_ssl_new(ioloop_tls_t *tls, int fd)
{
    SSL *ssl = SSL_new(tls->ctx);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

/* What rc <= 0 of SSL_read or SSL_write means (as conn_error). */
static ssize_t
ssl_result(SSL *ssl, int rc, unsigned *want, int eof)
{
    int saved = errno;

    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *want = IOLOOP_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = IOLOOP_WRITE;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return eof;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return saved != 0 ? -saved : eof;
    default:
        ERR_clear_error();
        return -EPROTO;
    }
}

ssize_t
ioloop__tls_ssl_read(struct ssl_st *ssl, void *buf, size_t len,
                     unsigned *want)
{
    int rc = SSL_read(ssl, buf, len < INT_MAX ? (int) len : INT_MAX);

    return rc > 0 ? rc : ssl_result(ssl, rc, want, 0);
}

ssize_t
ioloop__tls_ssl_write(struct ssl_st *ssl, const void *buf, size_t len,
                      unsigned *want)
{
    int rc = SSL_write(ssl, buf, len < INT_MAX ? (int) len : INT_MAX);

    return rc > 0 ? rc : ssl_result(ssl, rc, want, -EPIPE);
}

void
ioloop__tls_ssl_free(struct ssl_st *ssl, int clean)
{
    if (clean && SSL_is_init_finished(ssl)) {
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
}
