/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for a client library that reads and writes its socket itself (store_tls.h). The TCP
 * connect and the handshake run in the caller, non-blocking against one deadline. Then one
 * thread per connection relays, with a buffer for each direction:
 *
 *   up:   read(local) → SSL_write → server    (commands)
 *   down: server → SSL_read → write(local)    (replies)
 *
 * After the handshake the thread is the only user of the SSL object, so nothing is locked.
 * It ends when the library closes its end (EOF or hang-up on local: it then sends
 * close_notify). When the TLS side ends first (close_notify, EOF, an alert, an error) it shuts
 * local down for writing at once, so the library reads EOF and reconnects, and waits for the
 * library to close. The relay's end of the socketpair is closed only after the join: the
 * library never writes into a closed socket (no EPIPE, no SIGPIPE).
 */
#include "store/store_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct cl_store_tls_ctx {
    SSL_CTX *ssl;
    const char *what; /* "Redis TLS", borrowed */
};

/* One direction: buf[off..len) is read and not yet passed on. */
struct pump {
    uint8_t buf[CL_STORE_TLS_BUF];
    size_t off, len;
};

struct cl_store_tls {
    SSL *ssl;
    int tcp;   /* the server's socket, non-blocking */
    int local; /* the relay's end of the socketpair, non-blocking */
    pthread_t thread;
    struct pump up, down;
    char why[160]; /* why the TLS side ended; written by the relay, read after the join */
};

/* What a relay step did. */
enum { STEP_END = -1, STEP_BLOCKED = 0, STEP_MOVED = 1 };

/* The newest OpenSSL error of this thread as text; the thread's queue is emptied. */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r ? r : "unknown TLS error");
    ERR_clear_error();
    return buf;
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline (ms): 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n >= 0)
            return n > 0;
        if (errno != EINTR)
            return -1;
    }
}

/* ---- verification settings ---- */

struct cl_store_tls_ctx *cl_store_tls_ctx_new(const char *what, const char *ca_file,
                                              const char *cert_file, const char *key_file,
                                              struct cl_err *err)
{
    if (!cert_file != !key_file) {
        cl_err_set(err, CL_EINVAL, "%s: client %s %s given without its %s", what,
                   cert_file ? "certificate" : "key", cert_file ? cert_file : key_file,
                   cert_file ? "key" : "certificate");
        return NULL;
    }
    struct cl_store_tls_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->ssl = SSL_CTX_new(TLS_client_method()))) {
        free(c);
        cl_err_set(err, CL_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    c->what = what;
    char r[128];
    ERR_clear_error();
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    /* SSL_write may take part of the buffer; the relay keeps the rest and retries later. */
    SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION) != 1)
        cl_err_set(err, CL_EINVAL, "%s: TLS 1.2 minimum: %s", what, ssl_reason(r, sizeof r));
    else if (ca_file && SSL_CTX_load_verify_locations(c->ssl, ca_file, NULL) != 1)
        cl_err_set(err, CL_EINVAL, "%s: CA file %s: %s", what, ca_file, ssl_reason(r, sizeof r));
    else if (!ca_file && SSL_CTX_set_default_verify_paths(c->ssl) != 1)
        cl_err_set(err, CL_EINVAL, "%s: the system's CA paths: %s", what, ssl_reason(r, sizeof r));
    else if (cert_file && SSL_CTX_use_certificate_chain_file(c->ssl, cert_file) != 1)
        cl_err_set(err, CL_EINVAL, "%s: client certificate %s: %s", what, cert_file,
                   ssl_reason(r, sizeof r));
    else if (key_file && SSL_CTX_use_PrivateKey_file(c->ssl, key_file, SSL_FILETYPE_PEM) != 1)
        cl_err_set(err, CL_EINVAL, "%s: client key %s: %s", what, key_file,
                   ssl_reason(r, sizeof r));
    else if (key_file && SSL_CTX_check_private_key(c->ssl) != 1) /* a key of another type */
        cl_err_set(err, CL_EINVAL, "%s: client key %s does not belong to certificate %s", what,
                   key_file, cert_file);
    else
        return c;
    ERR_clear_error();
    cl_store_tls_ctx_free(c);
    return NULL;
}

void cl_store_tls_ctx_free(struct cl_store_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

/* ---- connect and handshake (in the caller) ---- */

/* Each address of host:port in turn, non-blocking; the connected socket, or -1 with err. */
static int tcp_connect(const struct cl_store_tls_ctx *ctx, const char *host, int port,
                       unsigned timeout_ms, uint64_t deadline, struct cl_err *err)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, service, &hints, &ai);
    if (g != 0) {
        cl_err_set(err, CL_EIO, "%s: connect %s:%d: %s", ctx->what, host, port, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = EADDRNOTAVAIL;
    for (const struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        e = errno;
        if (e == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            socklen_t len = sizeof e;
            if (w == 0)
                e = ETIMEDOUT;
            else if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
            if (e == 0)
                break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        if (e == ETIMEDOUT)
            cl_err_set(err, CL_EIO, "%s: connect %s:%d: timed out after %u ms", ctx->what, host,
                       port, timeout_ms);
        else
            cl_err_set(err, CL_EIO, "%s: connect %s:%d: %s", ctx->what, host, port, strerror(e));
        return -1;
    }
    /* hiredis sets it on its own sockets; a command should not wait for Nagle */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool ip_literal(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* The handshake on t->tcp: the chain ends in the context's CAs and the certificate names
 * host (its address when host is an IP literal). 0, or EVERIFY / EIO naming the stage. */
static int handshake(struct cl_store_tls *t, const struct cl_store_tls_ctx *ctx, const char *host,
                     int port, unsigned timeout_ms, uint64_t deadline, struct cl_err *err)
{
    const char *what = ctx->what;
    if (!(t->ssl = SSL_new(ctx->ssl)) || SSL_set_fd(t->ssl, t->tcp) != 1)
        return cl_err_set(err, CL_ENOMEM, "%s: out of memory", what);
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    char sni[256]; /* OpenSSL's SNI macro casts its argument to void *: give it our copy */
    snprintf(sni, sizeof sni, "%s", host);
    int named = ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                                 : SSL_set_tlsext_host_name(t->ssl, sni) == 1 &&
                                       SSL_set1_host(t->ssl, host) == 1;
    if (named != 1)
        return cl_err_set(err, CL_EINVAL, "%s: handshake with %s:%d: \"%s\" cannot be verified",
                          what, host, port, host);
    ERR_clear_error();
    int r;
    while ((r = SSL_connect(t->ssl)) != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        int w = wait_fd(t->tcp, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (w < 0)
            return cl_err_set(err, CL_EIO, "%s: handshake with %s:%d: %s", what, host, port,
                              strerror(errno));
        if (w == 0)
            return cl_err_set(err, CL_EIO, "%s: handshake with %s:%d: timed out after %u ms", what,
                              host, port, timeout_ms);
    }
    if (r == 1)
        return 0;
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        ERR_clear_error();
        return cl_err_set(err, CL_EVERIFY,
                          "%s: handshake with %s:%d: certificate verify failed (%s)", what, host,
                          port, X509_verify_cert_error_string(v));
    }
    char why[128];
    if (ERR_peek_last_error() == 0)
        snprintf(why, sizeof why, "the server closed the connection");
    else
        ssl_reason(why, sizeof why);
    return cl_err_set(err, CL_EIO, "%s: handshake with %s:%d: %s", what, host, port, why);
}

/* ---- the relay thread ---- */

/* After an SSL call returned r <= 0 (errno saved in sys): the socket event it waits for, or the
 * end of the TLS side with t->why set. */
static int ssl_blocked(struct cl_store_tls *t, int r, int sys, short *tev)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        *tev |= POLLIN;
        return STEP_BLOCKED;
    case SSL_ERROR_WANT_WRITE:
        *tev |= POLLOUT;
        return STEP_BLOCKED;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(t->why, sizeof t->why, "the server closed the connection");
        return STEP_END;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error() == 0) {
            snprintf(t->why, sizeof t->why, "%s",
                     sys ? strerror(sys) : "the server closed the connection");
            return STEP_END;
        }
        /* fall through */
    default:
        ssl_reason(t->why, sizeof t->why);
        return STEP_END;
    }
}

/* After a failed read or write of local: wait for ev on it, or the end (the library closed
 * its end: t->why stays ""). */
static int local_blocked(short ev, short *lev)
{
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return STEP_END;
    *lev |= ev;
    return STEP_BLOCKED;
}

/* The server reset the connection under a write: it may have said why first, in an alert not
 * read yet (a TLS 1.3 server refuses a client certificate only after the handshake). */
static void parting_alert(struct cl_store_tls *t)
{
    uint8_t b[256];
    ERR_clear_error();
    int n = SSL_read(t->ssl, b, sizeof b);
    if (n <= 0 && SSL_get_error(t->ssl, n) == SSL_ERROR_SSL)
        ssl_reason(t->why, sizeof t->why);
    ERR_clear_error();
}

/* Commands: the library's bytes to the server. */
static int step_up(struct cl_store_tls *t, short *lev, short *tev)
{
    struct pump *p = &t->up;
    if (p->off == p->len) {
        ssize_t n = read(t->local, p->buf, sizeof p->buf);
        if (n == 0)
            return STEP_END;
        if (n < 0)
            return local_blocked(POLLIN, lev);
        p->off = 0;
        p->len = (size_t)n;
    }
    ERR_clear_error();
    int w = SSL_write(t->ssl, p->buf + p->off, (int)(p->len - p->off));
    if (w <= 0 && ssl_blocked(t, w, errno, tev) == STEP_END) {
        parting_alert(t);
        return STEP_END;
    }
    if (w <= 0)
        return STEP_BLOCKED;
    p->off += (size_t)w;
    return STEP_MOVED;
}

/* Replies: the server's bytes to the library. SSL_read is tried whenever the buffer is empty,
 * before any poll, so bytes OpenSSL already holds (SSL_pending) never wait for the socket. */
static int step_down(struct cl_store_tls *t, short *lev, short *tev)
{
    struct pump *p = &t->down;
    if (p->off == p->len) {
        ERR_clear_error();
        int n = SSL_read(t->ssl, p->buf, sizeof p->buf);
        if (n <= 0)
            return ssl_blocked(t, n, errno, tev);
        p->off = 0;
        p->len = (size_t)n;
    }
    ssize_t w = send(t->local, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (w < 0)
        return local_blocked(POLLOUT, lev);
    p->off += (size_t)w;
    return STEP_MOVED;
}

/* The TLS side has ended: the library reads EOF at once; what it still writes is read and
 * dropped until it closes its end, so its writes neither block nor raise SIGPIPE. */
static void drain(int local)
{
    shutdown(local, SHUT_WR);
    uint8_t b[4096];
    for (;;) {
        struct pollfd p = {.fd = local, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return;
        ssize_t n = read(local, b, sizeof b);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return;
    }
}

static void *relay(void *arg)
{
    struct cl_store_tls *t = arg;
    for (;;) {
        short lev = 0, tev = 0;
        int up = step_up(t, &lev, &tev);
        int down = up == STEP_END ? STEP_END : step_down(t, &lev, &tev);
        if (up == STEP_END || down == STEP_END)
            break;
        if (up == STEP_MOVED || down == STEP_MOVED)
            continue;
        /* local is always polled, for its hang-up; tcp only for what OpenSSL waits for (a
         * hang-up there with nothing asked would wake poll in a loop) */
        struct pollfd pf[2] = {{.fd = t->local, .events = lev},
                               {.fd = tev ? t->tcp : -1, .events = tev}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR) {
            snprintf(t->why, sizeof t->why, "poll: %s", strerror(errno));
            break;
        }
        if (pf[0].revents & (POLLHUP | POLLERR))
            break; /* the library is gone: what it wrote last has nobody waiting for it */
    }
    ERR_clear_error();
    if (t->why[0])
        drain(t->local);
    else
        SSL_shutdown(t->ssl); /* one try at close_notify; nothing more to wait for */
    ERR_clear_error();
    return NULL;
}

/* ---- one connection ---- */

static void tls_free(struct cl_store_tls *t)
{
    SSL_free(t->ssl);
    if (t->tcp >= 0)
        close(t->tcp);
    if (t->local >= 0)
        close(t->local);
    free(t);
}

struct cl_store_tls *cl_store_tls_connect(const struct cl_store_tls_ctx *ctx, const char *host,
                                          int port, unsigned timeout_ms, int *fd,
                                          struct cl_err *err)
{
    uint64_t deadline = now_ms() + timeout_ms;
    struct cl_store_tls *t = calloc(1, sizeof *t);
    if (!t) {
        cl_err_set(err, CL_ENOMEM, "%s: out of memory", ctx->what);
        return NULL;
    }
    t->local = -1;
    int sv[2] = {-1, -1};
    if ((t->tcp = tcp_connect(ctx, host, port, timeout_ms, deadline, err)) < 0 ||
        handshake(t, ctx, host, port, timeout_ms, deadline, err) < 0)
        goto out;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
        cl_err_set(err, CL_EIO, "%s: socketpair: %s", ctx->what, strerror(errno));
        goto out;
    }
    t->local = sv[0];
    /* Process signals belong to the threads that wait for them, never to a relay. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&t->thread, NULL, relay, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        cl_err_set(err, CL_EIO, "%s: relay thread: %s", ctx->what, strerror(e));
        goto out;
    }
    *fd = sv[1];
    return t;
out:
    if (sv[1] >= 0)
        close(sv[1]);
    tls_free(t);
    return NULL;
}

void cl_store_tls_close(struct cl_store_tls *t, char *why, size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    if (!t)
        return;
    pthread_join(t->thread, NULL);
    if (why && cap)
        snprintf(why, cap, "%s", t->why);
    tls_free(t);
}
