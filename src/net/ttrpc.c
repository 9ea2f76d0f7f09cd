/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc framing, envelopes (protobuf-c), a unix-socket server with a method table and a
 * client. The frame length a peer declares is checked against CL_TTRPC_MAX_PAYLOAD before
 * any allocation; once a frame has begun, the rest must arrive within
 * CL_TTRPC_FRAME_TIMEOUT_MS, so a stalled peer holds one thread for a bounded time.
 */
#include "net/ttrpc.h"

#include "ttrpc.pb-c.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_CALL_TIMEOUT_MS 50000u

/* ---- header ---- */

int cl_ttrpc_hdr_parse(const uint8_t *buf, size_t len, struct cl_ttrpc_hdr *out, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(buf, len);
    struct cl_ttrpc_hdr h;
    if (cl_cursor_be32(&c, &h.length) < 0 || cl_cursor_be32(&c, &h.stream_id) < 0 || cl_cursor_u8(&c, &h.type) < 0 ||
        cl_cursor_u8(&c, &h.flags) < 0)
        return cl_err_set(err, CL_EPARSE, "ttrpc frame header truncated (%zu of %d bytes)", len, CL_TTRPC_HEADER_LEN);
    if (h.length > CL_TTRPC_MAX_PAYLOAD)
        return cl_err_set(err, CL_ELIMIT, "ttrpc frame of %u bytes exceeds the %u-byte limit", h.length,
                          CL_TTRPC_MAX_PAYLOAD);
    *out = h;
    return 0;
}

void cl_ttrpc_hdr_encode(const struct cl_ttrpc_hdr *h, uint8_t out[CL_TTRPC_HEADER_LEN])
{
    out[0] = (uint8_t)(h->length >> 24);
    out[1] = (uint8_t)(h->length >> 16);
    out[2] = (uint8_t)(h->length >> 8);
    out[3] = (uint8_t)h->length;
    out[4] = (uint8_t)(h->stream_id >> 24);
    out[5] = (uint8_t)(h->stream_id >> 16);
    out[6] = (uint8_t)(h->stream_id >> 8);
    out[7] = (uint8_t)h->stream_id;
    out[8] = h->type;
    out[9] = h->flags;
}

/* ---- envelopes ---- */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CL_TTRPC_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

int cl_ttrpc_request_decode(const uint8_t *buf, size_t len, struct cl_ttrpc_request *out, struct cl_err *err)
{
    Ttrpc__Request *r = ttrpc__request__unpack(NULL, len, buf);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "ttrpc request: not a valid ttrpc.Request message");
    struct cl_ttrpc_request q = {0};
    int rc = 0;
    if (!name_ok(r->service) || !name_ok(r->method)) {
        rc = cl_err_set(err, CL_EPARSE, "ttrpc request: service or method name empty, too long or not printable");
    } else {
        q.service = strdup(r->service);
        q.method = strdup(r->method);
        q.payload = malloc(r->payload.len + 1);
        q.payload_len = r->payload.len;
        q.timeout_nano = r->timeout_nano;
        if (!q.service || !q.method || !q.payload) {
            rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        } else {
            if (r->payload.len)
                memcpy(q.payload, r->payload.data, r->payload.len);
            q.payload[r->payload.len] = 0;
        }
    }
    ttrpc__request__free_unpacked(r, NULL);
    if (rc < 0) {
        cl_ttrpc_request_clear(&q);
        return rc;
    }
    *out = q;
    return 0;
}

void cl_ttrpc_request_clear(struct cl_ttrpc_request *r)
{
    free(r->service);
    free(r->method);
    free(r->payload);
    memset(r, 0, sizeof *r);
}

static cl_bytes *pack_or_fail(const ProtobufCMessage *m, size_t *outlen, struct cl_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > CL_TTRPC_MAX_PAYLOAD) {
        cl_err_set(err, CL_ELIMIT, "ttrpc message of %zu bytes exceeds the %u-byte limit", n, CL_TTRPC_MAX_PAYLOAD);
        return NULL;
    }
    cl_bytes *buf = malloc(n ? n : 1);
    if (!buf) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    *outlen = protobuf_c_message_pack(m, buf);
    return buf;
}

cl_bytes *cl_ttrpc_request_encode(const char *service, const char *method, const void *payload, size_t len,
                                  int64_t timeout_nano, size_t *outlen, struct cl_err *err)
{
    Ttrpc__Request r;
    ttrpc__request__init(&r);
    r.service = (char *)(uintptr_t)service;
    r.method = (char *)(uintptr_t)method;
    r.payload.data = (uint8_t *)(uintptr_t)payload;
    r.payload.len = len;
    r.timeout_nano = timeout_nano;
    return pack_or_fail(&r.base, outlen, err);
}

cl_bytes *cl_ttrpc_response_encode(int code, const char *message, const void *payload, size_t len, size_t *outlen,
                                   struct cl_err *err)
{
    Ttrpc__Response r;
    Ttrpc__Status st;
    ttrpc__response__init(&r);
    ttrpc__status__init(&st);
    st.code = code;
    st.message = (char *)(uintptr_t)(message ? message : "");
    r.status = &st;
    r.payload.data = (uint8_t *)(uintptr_t)payload;
    r.payload.len = len;
    return pack_or_fail(&r.base, outlen, err);
}

int cl_ttrpc_response_decode(const uint8_t *buf, size_t len, int *code, cl_str **message, cl_bytes **payload,
                             size_t *payload_len, struct cl_err *err)
{
    Ttrpc__Response *r = ttrpc__response__unpack(NULL, len, buf);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "ttrpc response: not a valid ttrpc.Response message");
    int c = r->status ? r->status->code : 0;
    cl_str *msg = strdup(r->status && r->status->message ? r->status->message : "");
    cl_bytes *p = malloc(r->payload.len + 1);
    size_t plen = r->payload.len;
    if (p && plen)
        memcpy(p, r->payload.data, plen);
    ttrpc__response__free_unpacked(r, NULL);
    if (!msg || !p) {
        free(msg);
        free(p);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    p[plen] = 0;
    *code = c;
    *message = msg;
    *payload = p;
    *payload_len = plen;
    return 0;
}

int cl_ttrpc_address_path(const char *address, char *out, struct cl_err *err)
{
    const char *p = address;
    if (!p || !*p)
        return cl_err_set(err, CL_EINVAL, "ttrpc address is empty");
    if (strncmp(p, "unix://", 7) == 0)
        p += 7;
    else if (strncmp(p, "vsock://", 8) == 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "ttrpc address '%.64s': vsock is not supported yet", address);
    else if (strstr(p, "://"))
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s': only unix:// sockets are supported", address);
    if (!*p)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s' has no path", address);
    if (strlen(p) >= CL_TTRPC_MAX_ADDRESS)
        return cl_err_set(err, CL_EINVAL, "ttrpc socket path '%.64s...' is longer than %d bytes", p,
                          CL_TTRPC_MAX_ADDRESS - 1);
    strcpy(out, p);
    return 0;
}

/* ---- socket I/O with deadlines ---- */

/* Reads exactly n bytes. deadline_ns 0 waits forever for the first byte only when
 * first_unbounded is set; returns 0, 1 on a clean EOF before the first byte, <0 otherwise. */
static int read_full(int fd, void *buf, size_t n, uint64_t deadline_ns, bool first_unbounded)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        int wait_ms = -1;
        if (!(first_unbounded && got == 0)) {
            uint64_t now = cl_now_mono_ns();
            if (now >= deadline_ns)
                return CL_EIO;
            wait_ms = (int)((deadline_ns - now) / 1000000u) + 1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return CL_EIO;
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return CL_EIO;
        if (r == 0)
            return got == 0 ? 1 : CL_EIO;
        if (first_unbounded && got == 0)
            deadline_ns = cl_now_mono_ns() + (uint64_t)CL_TTRPC_FRAME_TIMEOUT_MS * 1000000u;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t deadline_ns)
{
    const uint8_t *p = buf;
    while (n) {
        uint64_t now = cl_now_mono_ns();
        if (now >= deadline_ns)
            return CL_EIO;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, (int)((deadline_ns - now) / 1000000u) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return CL_EIO;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return CL_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_frame(int fd, uint32_t stream, uint8_t type, const void *payload, size_t len)
{
    uint8_t hdr[CL_TTRPC_HEADER_LEN];
    struct cl_ttrpc_hdr h = {(uint32_t)len, stream, type, 0};
    cl_ttrpc_hdr_encode(&h, hdr);
    uint64_t deadline = cl_now_mono_ns() + (uint64_t)CL_TTRPC_FRAME_TIMEOUT_MS * 1000000u;
    if (write_full(fd, hdr, sizeof hdr, deadline) < 0)
        return CL_EIO;
    return len ? write_full(fd, payload, len, deadline) : 0;
}

static int send_status(int fd, uint32_t stream, int code, const char *msg, const void *payload, size_t len)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *resp = cl_ttrpc_response_encode(code, msg, payload, len, &n, &e);
    if (!resp) {
        /* The answer did not fit: say so instead of staying silent. */
        resp = cl_ttrpc_response_encode(CL_TTRPC_RESOURCE_EXHAUSTED, e.msg, NULL, 0, &n, NULL);
        if (!resp)
            return CL_ENOMEM;
    }
    return send_frame(fd, stream, CL_TTRPC_RESPONSE, resp, n);
}

/* ---- server ---- */

static int status_of(int code)
{
    switch (code) {
    case CL_ENOTFOUND:
        return CL_TTRPC_NOT_FOUND;
    case CL_EPARSE:
    case CL_EINVAL:
        return CL_TTRPC_INVALID_ARGUMENT;
    case CL_EUNSUPPORTED:
        return CL_TTRPC_UNIMPLEMENTED;
    case CL_ELIMIT:
        return CL_TTRPC_RESOURCE_EXHAUSTED;
    case CL_EDENIED:
        return CL_TTRPC_PERMISSION_DENIED;
    default:
        return CL_TTRPC_INTERNAL;
    }
}

static int dispatch(int fd, uint32_t stream, const uint8_t *payload, size_t len, const struct cl_ttrpc_method *methods,
                    size_t nmethods, void *ctx)
{
    struct cl_ttrpc_request rq = {0};
    struct cl_err e = {0};
    if (cl_ttrpc_request_decode(payload, len, &rq, &e) < 0)
        return send_status(fd, stream, CL_TTRPC_INVALID_ARGUMENT, e.msg, NULL, 0);
    const struct cl_ttrpc_method *m = NULL;
    for (size_t i = 0; i < nmethods && !m; i++)
        if (strcmp(methods[i].service, rq.service) == 0 && strcmp(methods[i].method, rq.method) == 0)
            m = &methods[i];
    int rc;
    if (!m) {
        char msg[2 * CL_TTRPC_MAX_NAME + 32];
        snprintf(msg, sizeof msg, "/%s/%s is not supported", rq.service, rq.method);
        cl_info("ttrpc %s => NOT_FOUND", msg);
        rc = send_status(fd, stream, CL_TTRPC_NOT_FOUND, msg, NULL, 0);
    } else {
        cl_bytes *out = NULL;
        size_t outlen = 0;
        int hr = m->fn(ctx, rq.payload, rq.payload_len, &out, &outlen, &e);
        if (hr < 0) {
            cl_info("ttrpc /%s/%s => %s: %s (%s:%d)", rq.service, rq.method, cl_err_name(hr), e.msg,
                    e.file ? e.file : "?", e.line);
            rc = send_status(fd, stream, status_of(hr), e.msg, NULL, 0);
        } else {
            cl_debug("ttrpc /%s/%s => OK (%zu bytes)", rq.service, rq.method, outlen);
            rc = send_status(fd, stream, CL_TTRPC_OK, "", out, outlen);
        }
        free(out);
    }
    cl_ttrpc_request_clear(&rq);
    return rc;
}

int cl_ttrpc_serve_fd(int fd, const struct cl_ttrpc_method *methods, size_t nmethods, void *ctx)
{
    for (;;) {
        uint8_t hb[CL_TTRPC_HEADER_LEN];
        int r = read_full(fd, hb, sizeof hb, 0, true);
        if (r == 1)
            return 0;
        if (r < 0)
            return CL_EIO;
        struct cl_ttrpc_hdr h;
        struct cl_err e = {0};
        if (cl_ttrpc_hdr_parse(hb, sizeof hb, &h, &e) < 0) {
            /* Nothing of the payload is read: answer and drop the connection. */
            uint32_t stream = (uint32_t)hb[4] << 24 | (uint32_t)hb[5] << 16 | (uint32_t)hb[6] << 8 | hb[7];
            cl_warn("ttrpc: %s; closing the connection", e.msg);
            (void)send_status(fd, stream, CL_TTRPC_RESOURCE_EXHAUSTED, e.msg, NULL, 0);
            return CL_ELIMIT;
        }
        if (h.type != CL_TTRPC_REQUEST && h.type != CL_TTRPC_DATA) {
            cl_warn("ttrpc: frame type %u from a client; closing the connection", h.type);
            return CL_EPARSE;
        }
        CL_AUTO(cl_bytes) *payload = malloc(h.length ? h.length : 1);
        if (!payload)
            return CL_ENOMEM;
        uint64_t deadline = cl_now_mono_ns() + (uint64_t)CL_TTRPC_FRAME_TIMEOUT_MS * 1000000u;
        if (h.length && read_full(fd, payload, h.length, deadline, false) != 0)
            return CL_EIO;
        int rc;
        if (h.type == CL_TTRPC_DATA)
            rc = send_status(fd, h.stream_id, CL_TTRPC_UNIMPLEMENTED, "streaming is not supported", NULL, 0);
        else if (h.stream_id == 0 || (h.stream_id & 1) == 0)
            rc = send_status(fd, h.stream_id, CL_TTRPC_INVALID_ARGUMENT, "client stream ids must be odd", NULL, 0);
        else
            rc = dispatch(fd, h.stream_id, payload, h.length, methods, nmethods, ctx);
        if (rc < 0)
            return rc;
    }
}

struct conn {
    struct cl_ttrpc_server *srv;
    int fd;
    pthread_t th;
    bool used, done;
};

struct cl_ttrpc_server {
    int lfd;
    char path[CL_TTRPC_MAX_ADDRESS];
    const struct cl_ttrpc_method *methods;
    size_t nmethods;
    void *ctx;
    pthread_t accept_th;
    pthread_mutex_t lock;
    bool stopping;
    struct conn conns[CL_TTRPC_MAX_CONNS];
};

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    (void)cl_ttrpc_serve_fd(c->fd, c->srv->methods, c->srv->nmethods, c->srv->ctx);
    shutdown(c->fd, SHUT_RDWR); /* the peer sees the end now; the fd is closed when reaped */
    pthread_mutex_lock(&c->srv->lock);
    c->done = true;
    pthread_mutex_unlock(&c->srv->lock);
    return NULL;
}

/* Joins finished connection threads; called with the lock held. */
static void reap(struct cl_ttrpc_server *s)
{
    for (size_t i = 0; i < CL_TTRPC_MAX_CONNS; i++) {
        struct conn *c = &s->conns[i];
        if (c->used && c->done) {
            pthread_join(c->th, NULL);
            close(c->fd);
            c->used = c->done = false;
        }
    }
}

static void *accept_main(void *arg)
{
    struct cl_ttrpc_server *s = arg;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        pthread_mutex_lock(&s->lock);
        if (s->stopping) {
            pthread_mutex_unlock(&s->lock);
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        if (fd < 0) {
            pthread_mutex_unlock(&s->lock);
            if (errno != EINTR && errno != ECONNABORTED)
                usleep(10000);
            continue;
        }
        reap(s);
        struct conn *slot = NULL;
        for (size_t i = 0; i < CL_TTRPC_MAX_CONNS && !slot; i++)
            if (!s->conns[i].used)
                slot = &s->conns[i];
        if (!slot) {
            pthread_mutex_unlock(&s->lock);
            cl_warn("ttrpc %s: %d connections open; refusing one more", s->path, CL_TTRPC_MAX_CONNS);
            close(fd);
            continue;
        }
        *slot = (struct conn){.srv = s, .fd = fd, .used = true};
        if (pthread_create(&slot->th, NULL, conn_main, slot) != 0) {
            slot->used = false;
            close(fd);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

struct cl_ttrpc_server *cl_ttrpc_server_start(const char *address, const struct cl_ttrpc_method *methods,
                                              size_t nmethods, void *ctx, struct cl_err *err)
{
    struct cl_ttrpc_server *s = calloc(1, sizeof *s);
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    s->lfd = -1;
    if (cl_ttrpc_address_path(address, s->path, err) < 0) {
        free(s);
        return NULL;
    }
    char dir[CL_TTRPC_MAX_ADDRESS];
    strcpy(dir, s->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (cl_mkdir_p(dir, 0755, err) < 0) {
            free(s);
            return NULL;
        }
    }
    struct stat st;
    if (lstat(s->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            cl_err_set(err, CL_EEXISTS, "ttrpc socket path %s exists and is not a socket", s->path);
            free(s);
            return NULL;
        }
        unlink(s->path);
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int brc = s->lfd < 0 ? -1 : bind(s->lfd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (brc < 0 || listen(s->lfd, 64) < 0) {
        cl_err_set(err, CL_EIO, "ttrpc: cannot listen on %s: %s", s->path, strerror(errno));
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return NULL;
    }
    s->methods = methods;
    s->nmethods = nmethods;
    s->ctx = ctx;
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->accept_th, NULL, accept_main, s) != 0) {
        cl_err_set(err, CL_EIO, "ttrpc: cannot start the accept thread");
        close(s->lfd);
        unlink(s->path);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

void cl_ttrpc_server_stop(struct cl_ttrpc_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    for (size_t i = 0; i < CL_TTRPC_MAX_CONNS; i++)
        if (s->conns[i].used)
            shutdown(s->conns[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->accept_th, NULL);
    for (size_t i = 0; i < CL_TTRPC_MAX_CONNS; i++) {
        if (s->conns[i].used) {
            pthread_join(s->conns[i].th, NULL);
            close(s->conns[i].fd);
        }
    }
    close(s->lfd);
    unlink(s->path);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- client ---- */

struct cl_ttrpc_client {
    int fd;
    uint32_t next_stream;
    int last_code;
    bool broken;
    pthread_mutex_t lock;
};

struct cl_ttrpc_client *cl_ttrpc_client_from_fd(int fd, struct cl_err *err)
{
    struct cl_ttrpc_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    c->fd = fd;
    c->next_stream = 1;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

struct cl_ttrpc_client *cl_ttrpc_client_connect(const char *address, struct cl_err *err)
{
    char path[CL_TTRPC_MAX_ADDRESS];
    if (cl_ttrpc_address_path(address, path, err) < 0)
        return NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        cl_err_set(err, CL_EIO, "ttrpc: cannot connect to %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return cl_ttrpc_client_from_fd(fd, err);
}

void cl_ttrpc_client_free(struct cl_ttrpc_client *c)
{
    if (!c)
        return;
    close(c->fd);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int cl_ttrpc_client_last_code(const struct cl_ttrpc_client *c) { return c->last_code; }

static int call_locked(struct cl_ttrpc_client *c, const char *service, const char *method, const void *req,
                       size_t req_len, unsigned timeout_ms, cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    if (c->broken)
        return cl_err_set(err, CL_EIO, "ttrpc: connection is broken; reconnect");
    uint64_t deadline = cl_now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    size_t n = 0;
    CL_AUTO(cl_bytes) *frame =
        cl_ttrpc_request_encode(service, method, req, req_len, (int64_t)timeout_ms * 1000000, &n, err);
    if (!frame)
        return err ? err->code : CL_ENOMEM;
    uint32_t stream = c->next_stream;
    c->next_stream += 2;
    uint8_t hb[CL_TTRPC_HEADER_LEN];
    struct cl_ttrpc_hdr h = {(uint32_t)n, stream, CL_TTRPC_REQUEST, 0};
    cl_ttrpc_hdr_encode(&h, hb);
    c->last_code = -1;
    if (write_full(c->fd, hb, sizeof hb, deadline) < 0 || write_full(c->fd, frame, n, deadline) < 0) {
        c->broken = true;
        return cl_err_set(err, CL_EIO, "ttrpc /%s/%s: cannot send the request", service, method);
    }
    for (;;) {
        int r = read_full(c->fd, hb, sizeof hb, deadline, false);
        if (r != 0) {
            c->broken = true;
            return cl_err_set(err, CL_EIO, "ttrpc /%s/%s: %s", service, method,
                              r == 1 ? "the server closed the connection" : "no answer in time");
        }
        if (cl_ttrpc_hdr_parse(hb, sizeof hb, &h, err) < 0) {
            c->broken = true;
            return cl_err_prefix(err, "ttrpc /%s/%s", service, method);
        }
        CL_AUTO(cl_bytes) *payload = malloc(h.length ? h.length : 1);
        if (!payload)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        if (h.length && read_full(c->fd, payload, h.length, deadline, false) != 0) {
            c->broken = true;
            return cl_err_set(err, CL_EIO, "ttrpc /%s/%s: response truncated", service, method);
        }
        if (h.stream_id != stream || h.type != CL_TTRPC_RESPONSE)
            continue; /* an answer to an abandoned call, or a frame we do not use */
        int code = 0;
        CL_AUTO(cl_str) *msg = NULL;
        cl_bytes *p = NULL;
        size_t plen = 0;
        if (cl_ttrpc_response_decode(payload, h.length, &code, &msg, &p, &plen, err) < 0)
            return cl_err_prefix(err, "ttrpc /%s/%s", service, method);
        c->last_code = code;
        if (code != CL_TTRPC_OK) {
            free(p);
            return cl_err_set(err,
                              code == CL_TTRPC_NOT_FOUND || code == CL_TTRPC_UNIMPLEMENTED ? CL_ENOTFOUND : CL_EIO,
                              "/%s/%s: %s", service, method, *msg ? msg : "(no message)");
        }
        *resp = p;
        *resp_len = plen;
        return 0;
    }
}

int cl_ttrpc_call(struct cl_ttrpc_client *c, const char *service, const char *method, const void *req,
                  size_t req_len, unsigned timeout_ms, cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    pthread_mutex_lock(&c->lock);
    int rc = call_locked(c, service, method, req, req_len, timeout_ms ? timeout_ms : DEFAULT_CALL_TIMEOUT_MS, resp,
                         resp_len, err);
    pthread_mutex_unlock(&c->lock);
    return rc;
}
