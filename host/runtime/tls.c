/*
 * host/runtime/tls.c: TLS contexts (server and client) and the TLS stream
 * transport (OpenSSL 3). Contract: api/ioloop/plugin.h, details in tls.h.
 *
 * The transport is non-blocking and level-triggered: each OpenSSL call
 * that cannot go on says which fd event it waits for (WANT_READ or
 * WANT_WRITE), and the stream watches for that (host/core/stream.c). The
 * only allocations are the context's and, per stream, its SSL object and
 * this file's small wrapper: none per read or write beyond OpenSSL's own.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "stream.h"

#define ALPN_MAX 255 /* bytes of the ALPN list in wire format */

struct ioloop_tls_s {
    ioloop_tls_t *next;   /* the owner's list (O(1) unlink) */
    ioloop_tls_t **prev;  /* the pointer that points here */
    SSL_CTX *ctx;   /* the current one; streams hold their own reference */
    char *cert;     /* the paths, re-read by reload (one block with tls; */
    char *key;      /* a client's cert, key and ca may be NULL) */
    char *ca;
    int client;     /* made by tls_client_new */
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

/* A client's handshake, then its stream's transport. */
struct ioloop_tls_client {
    struct tls_conn conn;
};

static ioloop_tls_t *make(ioloop_tls_t **owned,
                          const struct ioloop_tls_options *opts, int client,
                          char *err, size_t errlen);
static char *copy_path(char **dst, char *at, const char *path);
static SSL_CTX *load_ctx(const ioloop_tls_t *tls, char *err, size_t errlen);
static int load_client(SSL_CTX *ctx, const ioloop_tls_t *tls, char *err,
                       size_t errlen);
static int load_pair(SSL_CTX *ctx, const ioloop_tls_t *tls, char *err,
                     size_t errlen);
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
static int is_ip(const char *name);

static const struct ioloop_transport_ops conn_ops = {
    .handshake = conn_handshake,
    .read = conn_read,
    .writev = conn_writev,
    .close = conn_close,
};

/* A client's: connect_tcp ran its handshake before the stream. */
static const struct ioloop_transport_ops client_ops = {
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
    return make(owned, opts, 0, err, errlen);
}

ioloop_tls_t *
ioloop__tls_client_new(ioloop_tls_t **owned,
                       const struct ioloop_tls_options *opts, char *err,
                       size_t errlen)
{
    return make(owned, opts, 1, err, errlen);
}

/* tls_new (client 0) or tls_client_new (client 1). */
static ioloop_tls_t *
make(ioloop_tls_t **owned, const struct ioloop_tls_options *opts, int client,
     char *err, size_t errlen)
{
    struct ioloop_tls_options o = {0};
    ioloop_tls_t *tls;
    char *at;

    if (opts != NULL && opts->size > 0) {
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    }
    if (client && (o.cert == NULL) != (o.key == NULL)) {
        snprintf(err, errlen, "tls: %s without %s: set both or neither",
                 o.cert == NULL ? "key" : "cert",
                 o.cert == NULL ? "cert" : "key");
        errno = EINVAL;
        return NULL;
    }
    if (!client && (o.cert == NULL || o.key == NULL)) {
        snprintf(err, errlen, "tls: %s is required",
                 o.cert == NULL ? "cert" : "key");
        errno = EINVAL;
        return NULL;
    }
    if (!client && o.ca != NULL) {
        snprintf(err, errlen, "tls: ca is for client contexts only");
        errno = EINVAL;
        return NULL;
    }
    tls = calloc(1, sizeof(*tls) + (o.cert != NULL ? strlen(o.cert) + 1 : 0)
                        + (o.key != NULL ? strlen(o.key) + 1 : 0)
                        + (o.ca != NULL ? strlen(o.ca) + 1 : 0));
    if (tls == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        errno = ENOMEM;
        return NULL;
    }
    at = copy_path(&tls->cert, (char *) (tls + 1), o.cert);
    at = copy_path(&tls->key, at, o.key);
    copy_path(&tls->ca, at, o.ca);
    tls->client = client;
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
    if (tls->client) {
        errno = EINVAL; /* a client's streams come from connect_tcp */
        return NULL;
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

int
ioloop__tls_client_new_handshake(ioloop_tls_t *tls, const char *name,
                                 struct ioloop_tls_client **out)
{
    struct ioloop_tls_client *h;
    SSL *ssl;
    int ok;

    if (!tls->client) {
        return -EINVAL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return -ENOMEM;
    }
    h->conn.t.ops = &client_ops;
    ssl = SSL_new(tls->ctx);
    h->conn.ssl = ssl;
    if (ssl == NULL) {
        ioloop__tls_client_free(h);
        return -ENOMEM;
    }
    SSL_set_connect_state(ssl);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip(name)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    } else {
        ok = SSL_set_tlsext_host_name(ssl, name) == 1
             && SSL_set1_host(ssl, name) == 1;
    }
    if (!ok) {
        ioloop__tls_client_free(h); /* a name SNI cannot carry */
        return -EINVAL;
    }
    *out = h;
    return 0;
}

int
ioloop__tls_client_attach(struct ioloop_tls_client *h, int fd)
{
    if (SSL_set_fd(h->conn.ssl, fd) != 1) {
        ERR_clear_error();
        return -ENOMEM;
    }
    return 0;
}

int
ioloop__tls_client_step(struct ioloop_tls_client *h, unsigned *want,
                        char *why, size_t whylen)
{
    struct tls_conn *c = &h->conn;
    int rc = SSL_do_handshake(c->ssl), saved = errno;
    unsigned long e;
    long verify;

    if (rc == 1) {
        return 0;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *want = IOLOOP_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = IOLOOP_WRITE;
        return -EAGAIN;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (saved != 0) {
            snprintf(why, whylen, "handshake failed: %s", strerror(saved));
            return -saved;
        }
        break;
    case SSL_ERROR_ZERO_RETURN:
        break;
    default:
        verify = SSL_get_verify_result(c->ssl);
        e = ERR_peek_last_error();
        if (verify != X509_V_OK) {
            snprintf(why, whylen, "certificate verify failed: %s",
                     X509_verify_cert_error_string(verify));
        } else {
            snprintf(why, whylen, "handshake failed: %s",
                     ERR_reason_error_string(e) != NULL
                         ? ERR_reason_error_string(e)
                         : "protocol error");
        }
        ERR_clear_error();
        return -EPROTO;
    }
    snprintf(why, whylen, "handshake failed: the server closed the "
                          "connection");
    return -ECONNRESET;
}

ioloop_stream_t *
ioloop__tls_client_stream(ioloop_loop_t *loop, int fd,
                          const struct ioloop_stream_options *opts,
                          struct ioloop_tls_client *h)
{
    return ioloop__stream_new_over(loop, fd, opts, &h->conn.t);
}

void
ioloop__tls_client_free(struct ioloop_tls_client *h)
{
    if (h != NULL) {
        /* No close_notify: the handshake did not finish, or the caller
         * gives up on the connection before the plugin saw it. */
        h->conn.fatal = 1;
        conn_close(&h->conn.t);
    }
}

int
ioloop__tls_stream_alpn(const ioloop_stream_t *s, char *buf, size_t len)
{
    const struct ioloop_transport *t = ioloop__stream_transport(s);
    const unsigned char *p = NULL;
    unsigned n = 0;

    if (t != NULL && (t->ops == &conn_ops || t->ops == &client_ops)) {
        SSL_get0_alpn_selected(((const struct tls_conn *) t)->ssl, &p, &n);
    }
    if (len < (size_t) n + 1) {
        if (len > 0) {
            buf[0] = '\0';
        }
        return -ENOBUFS;
    }
    if (n > 0) {
        memcpy(buf, p, n);
    }
    buf[n] = '\0';
    return (int) n;
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

    if ((tls->cert != NULL && readable(tls->cert, err, errlen) < 0)
        || (tls->key != NULL && readable(tls->key, err, errlen) < 0)
        || (tls->ca != NULL && readable(tls->ca, err, errlen) < 0)) {
        return NULL;
    }
    ctx = SSL_CTX_new(tls->client ? TLS_client_method() : TLS_server_method());
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
    if (tls->cert != NULL && load_pair(ctx, tls, err, errlen) < 0) {
        goto invalid;
    }
    if (tls->client) {
        if (load_client(ctx, tls, err, errlen) < 0) {
            goto invalid;
        }
        ERR_clear_error();
        return ctx;
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

/* Loads tls's certificate chain and key into ctx. 0, or -1 with err. */
static int
load_pair(SSL_CTX *ctx, const ioloop_tls_t *tls, char *err, size_t errlen)
{
    unsigned long e;

    if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
        snprintf(err, errlen, "tls: %s: not a PEM certificate (%s)",
                 tls->cert, ERR_reason_error_string(ERR_peek_last_error()));
        return -1;
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
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls: %s: key does not match certificate %s",
                 tls->key, tls->cert);
        return -1;
    }
    return 0;
}

/*
 * A client's settings: the trusted CAs (tls->ca, or the system's store),
 * peer verification (the name is the connection's: see
 * ioloop__tls_client_new_handshake), and the ALPN list it offers. 0, or -1 with
 * err.
 */
static int
load_client(SSL_CTX *ctx, const ioloop_tls_t *tls, char *err, size_t errlen)
{
    if (tls->ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, tls->ca, NULL) != 1) {
            snprintf(err, errlen, "tls: %s: no PEM certificate (%s)",
                     tls->ca,
                     ERR_reason_error_string(ERR_peek_last_error()));
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "tls: the system's CA store: %s",
                 ERR_reason_error_string(ERR_peek_last_error()));
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* SSL_CTX_set_alpn_protos returns 0 on success. */
    if (tls->alpn_len > 0
        && SSL_CTX_set_alpn_protos(ctx, tls->alpn,
                                   (unsigned) tls->alpn_len) != 0) {
        snprintf(err, errlen, "tls: out of memory");
        return -1;
    }
    return 0;
}

/* *dst = a copy of path (NULL: none) at at; returns where the next goes. */
static char *
copy_path(char **dst, char *at, const char *path)
{
    size_t len;

    if (path == NULL) {
        return at;
    }
    len = strlen(path) + 1;
    *dst = memcpy(at, path, len);
    return at + len;
}

/* Whether name is an IPv4 or IPv6 address literal. */
static int
is_ip(const char *name)
{
    unsigned char addr[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, addr) == 1
           || inet_pton(AF_INET6, name, addr) == 1;
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

int
ioloop__tls_ssl_has_pending(const struct ssl_st *ssl)
{
    return SSL_has_pending(ssl);
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
