/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc framing, envelopes (protobuf-c), address parsing, a server (unix, vsock, tcp
 * listeners and a serial device) with a method table and concurrent dispatch, and a
 * multiplexed client. The frame length a peer declares is checked against
 * CL_TTRPC_MAX_PAYLOAD before any allocation; once a frame has begun, the rest must arrive
 * within CL_TTRPC_FRAME_TIMEOUT_MS, and a socket connection that completes no frame for the
 * idle timeout while nothing of it runs is closed, so stalled peers hold a slot for a
 * bounded time; a full table makes room by closing its longest-idle connection.
 */
#include "net/ttrpc.h"

#include "ttrpc.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- header ---- */

int cl_ttrpc_hdr_parse(const uint8_t *buf, size_t len, struct cl_ttrpc_hdr *out, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(buf, len);
    struct cl_ttrpc_hdr h;
    if (cl_cursor_be32(&c, &h.length) < 0 || cl_cursor_be32(&c, &h.stream_id) < 0 ||
        cl_cursor_u8(&c, &h.type) < 0 || cl_cursor_u8(&c, &h.flags) < 0)
        return cl_err_set(err, CL_EPARSE, "ttrpc frame header truncated (%zu of %d bytes)", len,
                          CL_TTRPC_HEADER_LEN);
    if (h.length > CL_TTRPC_MAX_PAYLOAD)
        return cl_err_set(err, CL_ELIMIT, "ttrpc frame of %u bytes exceeds the %u-byte limit",
                          h.length, CL_TTRPC_MAX_PAYLOAD);
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

int cl_ttrpc_request_decode(const uint8_t *buf, size_t len, struct cl_ttrpc_request *out,
                            struct cl_err *err)
{
    Ttrpc__Request *r = ttrpc__request__unpack(NULL, len, buf);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "ttrpc request: not a valid ttrpc.Request message");
    struct cl_ttrpc_request q = {0};
    int rc = 0;
    if (!name_ok(r->service) || !name_ok(r->method)) {
        rc = cl_err_set(err, CL_EPARSE,
                        "ttrpc request: service or method name empty, too long or not printable");
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

int cl_ttrpc_pack(const ProtobufCMessage *m, cl_bytes **out, size_t *outlen, struct cl_err *err)
{
    *out = NULL;
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > CL_TTRPC_MAX_PAYLOAD)
        return cl_err_set(err, CL_ELIMIT, "ttrpc message of %zu bytes exceeds the %u-byte limit", n,
                          CL_TTRPC_MAX_PAYLOAD);
    if (!(*out = malloc(n ? n : 1)))
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    *outlen = protobuf_c_message_pack(m, *out);
    return 0;
}

int cl_ttrpc_bad_request(struct cl_err *err, const char *prefix, const char *method)
{
    return cl_err_set(err, CL_EPARSE, "%s%s: the request is not a valid protobuf message",
                      prefix ? prefix : "", method);
}

static cl_bytes *pack_or_fail(const ProtobufCMessage *m, size_t *outlen, struct cl_err *err)
{
    cl_bytes *b = NULL;
    return cl_ttrpc_pack(m, &b, outlen, err) < 0 ? NULL : b;
}

cl_bytes *cl_ttrpc_request_encode(const char *service, const char *method, const void *payload,
                                  size_t len, int64_t timeout_nano, size_t *outlen,
                                  struct cl_err *err)
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

cl_bytes *cl_ttrpc_response_encode(int code, const char *message, const void *payload, size_t len,
                                   size_t *outlen, struct cl_err *err)
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

int cl_ttrpc_response_decode(const uint8_t *buf, size_t len, int *code, cl_str **message,
                             cl_bytes **payload, size_t *payload_len, struct cl_err *err)
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

/* ---- addresses ---- */

/* A decimal number of 1..10 digits in s[0..n) that is at most max. */
static bool span_u32(const char *s, size_t n, uint32_t max, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static int parse_path(const char *address, const char *p, struct cl_ttrpc_addr *a,
                      struct cl_err *err)
{
    if (!*p)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s' has no path", address);
    if (strlen(p) >= CL_TTRPC_MAX_ADDRESS)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s...': path longer than %d bytes",
                          address, CL_TTRPC_MAX_ADDRESS - 1);
    memcpy(a->path, p, strlen(p) + 1);
    return 0;
}

static int parse_vsock(const char *address, const char *p, struct cl_ttrpc_addr *a,
                       struct cl_err *err)
{
    const char *colon = strchr(p, ':');
    if (!colon)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s': vsock needs CID:PORT", address);
    if (colon - p == 2 && strncmp(p, "-1", 2) == 0)
        a->cid = CL_TTRPC_VSOCK_CID_ANY;
    else if (!span_u32(p, (size_t)(colon - p), UINT32_MAX - 1, &a->cid))
        return cl_err_set(err, CL_EINVAL,
                          "ttrpc address '%.64s': vsock CID is not a number below 2^32-1 or -1",
                          address);
    if (!span_u32(colon + 1, strlen(colon + 1), UINT32_MAX - 1, &a->port))
        return cl_err_set(err, CL_EINVAL,
                          "ttrpc address '%.64s': vsock port is not a number below 2^32-1",
                          address);
    a->transport = CL_TTRPC_VSOCK;
    return 0;
}

static int parse_tcp(const char *address, const char *p, struct cl_ttrpc_addr *a,
                     struct cl_err *err)
{
    const char *host = p, *colon;
    size_t hlen;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close[1] != ':')
            return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s': IPv6 host needs [ADDR]:PORT",
                              address);
        host = p + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        a->family = AF_INET6;
    } else {
        colon = strrchr(p, ':');
        if (!colon)
            return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s': tcp needs HOST:PORT",
                              address);
        hlen = (size_t)(colon - p);
        a->family = AF_INET;
    }
    if (hlen == 0 || hlen >= sizeof a->host)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s': tcp host is empty or too long",
                          address);
    memcpy(a->host, host, hlen);
    a->host[hlen] = 0;
    uint8_t bin[16];
    if (inet_pton(a->family, a->host, bin) != 1)
        return cl_err_set(err, CL_EINVAL,
                          "ttrpc address '%.64s': tcp host '%s' is not a numeric IPv4 address or a "
                          "bracketed IPv6 "
                          "address (names are not resolved)",
                          address, a->host);
    if (!span_u32(colon + 1, strlen(colon + 1), 65535, &a->port))
        return cl_err_set(err, CL_EINVAL,
                          "ttrpc address '%.64s': tcp port is not a number in 0..65535", address);
    a->transport = CL_TTRPC_TCP;
    return 0;
}

int cl_ttrpc_address_parse(const char *address, struct cl_ttrpc_addr *out, struct cl_err *err)
{
    if (!address || !*address)
        return cl_err_set(err, CL_EINVAL, "ttrpc address is empty");
    if (strlen(address) > 2 * CL_TTRPC_MAX_ADDRESS)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s...' is too long", address);
    struct cl_ttrpc_addr a = {0};
    int rc;
    if (strncmp(address, "unix://", 7) == 0) {
        a.transport = CL_TTRPC_UNIX;
        rc = parse_path(address, address + 7, &a, err);
    } else if (strncmp(address, "unix:", 5) == 0) {
        a.transport = CL_TTRPC_UNIX;
        rc = parse_path(address, address + 5, &a, err);
    } else if (address[0] == '/') {
        a.transport = CL_TTRPC_UNIX;
        rc = parse_path(address, address, &a, err);
    } else if (strncmp(address, "vsock://", 8) == 0) {
        rc = parse_vsock(address, address + 8, &a, err);
    } else if (strncmp(address, "tcp://", 6) == 0) {
        rc = parse_tcp(address, address + 6, &a, err);
    } else if (strncmp(address, "serial:", 7) == 0) {
        a.transport = CL_TTRPC_SERIAL;
        if (strncmp(address + 7, "/dev/", 5) != 0 || !address[12])
            return cl_err_set(err, CL_EINVAL,
                              "ttrpc address '%.64s': a serial device must be /dev/<name>",
                              address);
        rc = parse_path(address, address + 7, &a, err);
    } else {
        return cl_err_set(
            err, CL_EINVAL,
            "ttrpc address '%.64s': unknown transport (expected unix:PATH, unix://PATH, /PATH, "
            "vsock://CID:PORT, tcp://HOST:PORT or serial:/dev/PATH)",
            address);
    }
    if (rc < 0)
        return rc;
    *out = a;
    return 0;
}

int cl_ttrpc_address_path(const char *address, char *out, struct cl_err *err)
{
    struct cl_ttrpc_addr a;
    if (cl_ttrpc_address_parse(address, &a, err) < 0)
        return err ? err->code : CL_EINVAL;
    if (a.transport != CL_TTRPC_UNIX)
        return cl_err_set(err, CL_EINVAL, "ttrpc address '%.64s' is not a unix socket address",
                          address);
    memcpy(out, a.path, strlen(a.path) + 1);
    return 0;
}

/* The address in the form the parser reads back. */
static void address_format(const struct cl_ttrpc_addr *a, char *out, size_t cap)
{
    switch (a->transport) {
    case CL_TTRPC_UNIX:
        snprintf(out, cap, "unix://%s", a->path);
        break;
    case CL_TTRPC_SERIAL:
        snprintf(out, cap, "serial:%s", a->path);
        break;
    case CL_TTRPC_VSOCK:
        if (a->cid == CL_TTRPC_VSOCK_CID_ANY)
            snprintf(out, cap, "vsock://-1:%u", a->port);
        else
            snprintf(out, cap, "vsock://%u:%u", a->cid, a->port);
        break;
    case CL_TTRPC_TCP:
        snprintf(out, cap, a->family == AF_INET6 ? "tcp://[%s]:%u" : "tcp://%s:%u", a->host,
                 a->port);
        break;
    }
}

/* sockaddr of a vsock or tcp address. */
static socklen_t sockaddr_of(const struct cl_ttrpc_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->transport == CL_TTRPC_VSOCK) {
        struct sockaddr_vm *vm = (struct sockaddr_vm *)ss;
        vm->svm_family = AF_VSOCK;
        vm->svm_cid = a->cid;
        vm->svm_port = a->port;
        return sizeof *vm;
    }
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)a->port);
        if (inet_pton(AF_INET6, a->host, &s6->sin6_addr) != 1)
            return 0;
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)a->port);
    if (inet_pton(AF_INET, a->host, &s4->sin_addr) != 1)
        return 0;
    return sizeof *s4;
}

/* ---- status codes ---- */

int cl_ttrpc_status_of_err(int code)
{
    switch (code) {
    case 0:
        return CL_TTRPC_OK;
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
    case CL_EEXPIRED:
        return CL_TTRPC_DEADLINE_EXCEEDED;
    default:
        return CL_TTRPC_INTERNAL;
    }
}

int cl_ttrpc_err_of_status(int status)
{
    switch (status) {
    case CL_TTRPC_OK:
        return 0;
    case CL_TTRPC_NOT_FOUND:
    case CL_TTRPC_UNIMPLEMENTED:
        return CL_ENOTFOUND;
    case CL_TTRPC_PERMISSION_DENIED:
        return CL_EDENIED;
    case CL_TTRPC_INVALID_ARGUMENT:
        return CL_EINVAL;
    case CL_TTRPC_RESOURCE_EXHAUSTED:
        return CL_ELIMIT;
    case CL_TTRPC_DEADLINE_EXCEEDED:
        return CL_EEXPIRED;
    default:
        return CL_EIO;
    }
}

/* ---- fd I/O with deadlines ---- */

enum rd {
    RD_OK = 0,
    RD_EOF,     /* clean end before the first byte of a frame */
    RD_IDLE,    /* no frame began within the idle timeout */
    RD_STOP,    /* the stop fd fired */
    RD_ERR,     /* read error, or the end in the middle of a frame */
    RD_TIMEOUT, /* a begun frame did not complete in time */
};

static uint64_t ms_ns(unsigned ms)
{
    return (uint64_t)ms * 1000000u;
}

static int ms_until(uint64_t deadline_ns)
{
    uint64_t now = cl_now_mono_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now) / 1000000u + 1;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/*
 * Reads exactly n bytes of a frame. With first set, the wait for the first byte is bounded
 * by first_wait (-1: unbounded, 0: give up with RD_IDLE; asked again after every wake-up),
 * and *deadline is set to frame_ms after that byte; otherwise *deadline bounds the read.
 * stopfd (-1: none) readable → RD_STOP.
 */
static int read_exact(int fd, int stopfd, void *buf, size_t n, bool first, uint64_t *deadline,
                      unsigned frame_ms, int (*first_wait)(void *), void *arg)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        int wait_ms;
        if (first && got == 0) {
            wait_ms = first_wait ? first_wait(arg) : -1;
            if (wait_ms == 0)
                return RD_IDLE;
        } else {
            wait_ms = ms_until(*deadline);
            if (wait_ms == 0)
                return RD_TIMEOUT;
        }
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = stopfd, .events = POLLIN}};
        int pr = poll(pfd, 2, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return RD_ERR;
        if (pfd[1].revents)
            return RD_STOP;
        if (pr == 0)
            continue; /* the deadlines are checked again above */
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0) /* EIO: a pty whose other side closed; ECONNRESET: a peer gone */
            return first && got == 0 && (errno == EIO || errno == ECONNRESET) ? RD_EOF : RD_ERR;
        if (r == 0)
            return first && got == 0 ? RD_EOF : RD_ERR;
        if (first && got == 0)
            *deadline = cl_now_mono_ns() + ms_ns(frame_ms);
        got += (size_t)r;
    }
    return RD_OK;
}

/* Writes all n bytes before deadline_ns. When gen is given, gives up as soon as *gen moves
 * away from mygen (polls in slices of 100 ms to notice). */
static int write_all(int fd, const void *buf, size_t n, uint64_t deadline_ns, const uint64_t *gen,
                     uint64_t mygen)
{
    const uint8_t *p = buf;
    while (n) {
        if (gen && __atomic_load_n(gen, __ATOMIC_ACQUIRE) != mygen)
            return CL_EIO;
        int wait_ms = ms_until(deadline_ns);
        if (wait_ms == 0)
            return CL_EIO;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, wait_ms > 100 ? 100 : wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return CL_EIO;
        if (pr == 0)
            continue;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
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

/* One frame (header and payload) in one new buffer. */
static cl_bytes *frame_new(uint32_t stream, uint8_t type, const void *payload, size_t len,
                           size_t *outlen)
{
    cl_bytes *f = malloc(CL_TTRPC_HEADER_LEN + len);
    if (!f)
        return NULL;
    struct cl_ttrpc_hdr h = {(uint32_t)len, stream, type, 0};
    cl_ttrpc_hdr_encode(&h, f);
    if (len)
        memcpy(f + CL_TTRPC_HEADER_LEN, payload, len);
    *outlen = CL_TTRPC_HEADER_LEN + len;
    return f;
}

/* ---- server: connections ---- */

/*
 * One connection. Its reader thread reads frames and starts a worker thread per request;
 * the reader and every worker hold a reference, and the last one out closes an owned fd and
 * frees, so no worker writes into an fd that was closed or reused. Locks: srv->lock may be
 * taken before c->lock, never the other way; c->wlock is taken alone.
 */
struct conn {
    struct cl_ttrpc_server *srv; /* NULL under cl_ttrpc_serve_fd */
    const struct cl_ttrpc_method *methods;
    size_t nmethods;
    void *ctx;
    const char *name; /* for logs */
    int fd;
    int stopfd;
    bool serial;
    bool owns_fd;
    bool host_up; /* serial, reader only: bytes seen since the last hang-up */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* inflight went down */
    pthread_mutex_t wlock;
    unsigned refs;
    unsigned inflight;
    unsigned nstreams;
    uint32_t streams[CL_TTRPC_MAX_INFLIGHT]; /* stream ids not answered yet */
    uint64_t gen;                            /* serial session; atomic */
    uint64_t last_ns;                        /* last complete frame or last handler end */
    bool broken;                             /* a response could not be written */
};

struct cl_ttrpc_server {
    struct cl_ttrpc_addr addr;
    char address[CL_TTRPC_MAX_ADDRESS + 16];
    int lfd;
    int stopfd;
    const struct cl_ttrpc_method *methods;
    size_t nmethods;
    void *ctx;
    pthread_t main_th; /* accept loop, or the serial connection's reader */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* nlive went down */
    bool stopping;       /* atomic */
    unsigned idle_ms;    /* atomic */
    unsigned nlive;      /* socket connections whose reader has not finished */
    struct conn *conns[CL_TTRPC_MAX_CONNS];
    struct conn *serial;
};

static struct conn *conn_new(struct cl_ttrpc_server *srv, int fd,
                             const struct cl_ttrpc_method *methods, size_t nmethods, void *ctx)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->methods = methods;
    c->nmethods = nmethods;
    c->ctx = ctx;
    c->name = srv ? srv->address : "fd";
    c->fd = fd;
    c->stopfd = srv ? srv->stopfd : -1;
    c->refs = 1;
    c->last_ns = cl_now_mono_ns();
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    pthread_mutex_init(&c->wlock, NULL);
    return c;
}

static void conn_unref(struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    if (c->owns_fd)
        close(c->fd);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->wlock);
    free(c);
}

static bool conn_stopping(const struct conn *c)
{
    return c->srv && __atomic_load_n(&c->srv->stopping, __ATOMIC_ACQUIRE);
}

static unsigned conn_idle_ms(const struct conn *c)
{
    return c->srv && !c->serial ? __atomic_load_n(&c->srv->idle_ms, __ATOMIC_ACQUIRE) : 0;
}

/* first_wait for the server's reader: how long a connection may stay without a frame. */
static int conn_first_wait(void *arg)
{
    struct conn *c = arg;
    unsigned idle = conn_idle_ms(c);
    if (!idle)
        return -1;
    pthread_mutex_lock(&c->lock);
    bool busy = c->inflight > 0;
    uint64_t until = c->last_ns + ms_ns(idle);
    pthread_mutex_unlock(&c->lock);
    if (busy) /* not idle while a handler runs; look again later */
        return idle > INT32_MAX ? INT32_MAX : (int)idle;
    return ms_until(until);
}

/* Writes one response frame unless the serial session it answers is gone. */
static int conn_respond(struct conn *c, uint32_t stream, uint64_t gen, int code, const char *msg,
                        const void *payload, size_t len)
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
    size_t flen = 0;
    CL_AUTO(cl_bytes) *frame = frame_new(stream, CL_TTRPC_RESPONSE, resp, n, &flen);
    if (!frame)
        return CL_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&c->wlock);
    if (__atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) != gen) {
        cl_debug("ttrpc %s: response on stream %u belongs to a previous session; dropped", c->name,
                 stream);
    } else if (c->broken) {
        rc = CL_EIO;
    } else {
        uint64_t deadline = cl_now_mono_ns() + ms_ns(CL_TTRPC_FRAME_TIMEOUT_MS);
        rc = write_all(c->fd, frame, flen, deadline, c->serial ? &c->gen : NULL, gen);
        if (rc < 0 && !c->serial) {
            /* Half a frame may be out: nothing more can be written on this connection. */
            c->broken = true;
            shutdown(c->fd, SHUT_RDWR);
            cl_warn("ttrpc %s: cannot write the response on stream %u; closing the connection",
                    c->name, stream);
        }
    }
    pthread_mutex_unlock(&c->wlock);
    return rc;
}

struct job {
    struct conn *c;
    uint32_t stream;
    uint64_t gen;
    cl_bytes *payload;
    size_t len;
};

/* Answers a job's request. Its stream id is released first: a client may reuse it as soon
 * as it has the answer. */
static void job_respond(struct job *j, int code, const char *msg, const void *payload, size_t len)
{
    struct conn *c = j->c;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->nstreams; i++) {
        if (c->streams[i] == j->stream) {
            c->streams[i] = c->streams[--c->nstreams];
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    (void)conn_respond(c, j->stream, j->gen, code, msg, payload, len);
}

static void dispatch(struct job *j)
{
    struct conn *c = j->c;
    struct cl_ttrpc_request rq = {0};
    struct cl_err e = {0};
    if (cl_ttrpc_request_decode(j->payload, j->len, &rq, &e) < 0) {
        job_respond(j, CL_TTRPC_INVALID_ARGUMENT, e.msg, NULL, 0);
        return;
    }
    const struct cl_ttrpc_method *m = NULL;
    for (size_t i = 0; i < c->nmethods && !m; i++)
        if (strcmp(c->methods[i].service, rq.service) == 0 &&
            strcmp(c->methods[i].method, rq.method) == 0)
            m = &c->methods[i];
    if (!m) {
        char msg[2 * CL_TTRPC_MAX_NAME + 32];
        snprintf(msg, sizeof msg, "/%s/%s is not supported", rq.service, rq.method);
        cl_info("ttrpc %s => NOT_FOUND", msg);
        job_respond(j, CL_TTRPC_NOT_FOUND, msg, NULL, 0);
    } else {
        cl_bytes *out = NULL;
        size_t outlen = 0;
        int hr = m->fn(c->ctx, rq.payload, rq.payload_len, &out, &outlen, &e);
        if (hr < 0) {
            cl_info("ttrpc /%s/%s => %s: %s (%s:%d)", rq.service, rq.method, cl_err_name(hr), e.msg,
                    e.file ? e.file : "?", e.line);
            job_respond(j, cl_ttrpc_status_of_err(hr), e.msg, NULL, 0);
        } else {
            cl_debug("ttrpc /%s/%s => OK (%zu bytes)", rq.service, rq.method, outlen);
            job_respond(j, CL_TTRPC_OK, "", out, outlen);
        }
        free(out);
    }
    cl_ttrpc_request_clear(&rq);
}

/* Ends an answered request: the connection's idle clock restarts. */
static void job_end(struct job *j)
{
    struct conn *c = j->c;
    pthread_mutex_lock(&c->lock);
    c->inflight--;
    c->last_ns = cl_now_mono_ns();
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    free(j->payload);
    free(j);
    conn_unref(c);
}

static void *worker_main(void *arg)
{
    struct job *j = arg;
    dispatch(j);
    job_end(j);
    return NULL;
}

/* Waits while CL_TTRPC_MAX_INFLIGHT requests run; false when the server stops meanwhile. */
static bool conn_wait_slot(struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->inflight >= CL_TTRPC_MAX_INFLIGHT && !conn_stopping(c)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return !conn_stopping(c);
}

static void conn_drain(struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->inflight > 0)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

/* Starts a worker for a request frame (payload taken), or answers at once why not. */
static void conn_start(struct conn *c, uint32_t stream, cl_bytes *payload, size_t len)
{
    uint64_t gen = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->nstreams; i++) {
        if (c->streams[i] == stream) {
            pthread_mutex_unlock(&c->lock);
            free(payload);
            cl_warn("ttrpc %s: stream id %u reused while its request runs", c->name, stream);
            (void)conn_respond(c, stream, gen, CL_TTRPC_INVALID_ARGUMENT,
                               "stream id is already in use", NULL, 0);
            return;
        }
    }
    struct job *j = malloc(sizeof *j);
    if (j) {
        *j = (struct job){c, stream, gen, payload, len};
        c->streams[c->nstreams++] = stream;
        c->inflight++;
        c->refs++;
    }
    c->last_ns = cl_now_mono_ns();
    pthread_mutex_unlock(&c->lock);
    if (!j) {
        free(payload);
        (void)conn_respond(c, stream, gen, CL_TTRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int prc = pthread_create(&th, &at, worker_main, j);
    pthread_attr_destroy(&at);
    if (prc != 0) {
        cl_warn("ttrpc %s: cannot start a thread for stream %u: %s", c->name, stream,
                strerror(prc));
        job_respond(j, CL_TTRPC_RESOURCE_EXHAUSTED, "cannot start a handler thread", NULL, 0);
        job_end(j);
    }
}

/* Serial: the host side went away. Forget its session, then poll until it is back. */
static bool serial_hangup(struct conn *c)
{
    __atomic_add_fetch(&c->gen, 1, __ATOMIC_ACQ_REL);
    if (c->host_up)
        cl_info("ttrpc %s: the host side hung up; waiting for it to come back", c->name);
    c->host_up = false;
    for (;;) {
        /* Sleep first: a device that reports the end without ever raising POLLHUP must not
         * turn this into a busy loop. */
        struct pollfd st = {.fd = c->stopfd, .events = POLLIN};
        if (poll(&st, 1, CL_TTRPC_SERIAL_REPOLL_MS) > 0 || conn_stopping(c))
            return false;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR | POLLNVAL)))
            return true;
    }
}

/* Serial: after a protocol violation the frame boundary is lost; discard until a hang-up. */
static bool serial_discard(struct conn *c)
{
    __atomic_add_fetch(&c->gen, 1, __ATOMIC_ACQ_REL);
    uint8_t buf[4096];
    for (;;) {
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
                                {.fd = c->stopfd, .events = POLLIN}};
        int pr = poll(pfd, 2, 1000);
        if ((pr > 0 && pfd[1].revents) || conn_stopping(c))
            return false;
        if (pr <= 0)
            continue;
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r > 0 || (r < 0 && (errno == EINTR || errno == EAGAIN)))
            continue;
        return serial_hangup(c);
    }
}

/*
 * The reader: frames in, workers out. Returns when the peer is gone, idle, in violation or
 * the server stops, and only after every worker it started has finished. Serial
 * connections return only when the server stops.
 */
static int serve_conn(struct conn *c)
{
    int rc = 0;
    unsigned frame_ms = CL_TTRPC_FRAME_TIMEOUT_MS;
    for (;;) {
        if (!conn_wait_slot(c))
            break;
        unsigned idle = conn_idle_ms(c);
        frame_ms = idle && idle < CL_TTRPC_FRAME_TIMEOUT_MS ? idle : CL_TTRPC_FRAME_TIMEOUT_MS;
        uint8_t hb[CL_TTRPC_HEADER_LEN];
        uint64_t deadline = 0;
        int r = read_exact(c->fd, c->stopfd, hb, sizeof hb, true, &deadline, frame_ms,
                           conn_first_wait, c);
        if (r == RD_STOP)
            break;
        if (c->serial && r != RD_OK) {
            if (!serial_hangup(c))
                break;
            continue;
        }
        if (r == RD_EOF)
            break;
        if (r == RD_IDLE) {
            cl_info("ttrpc %s: no request for %u ms; closing the idle connection", c->name, idle);
            rc = CL_EEXPIRED;
            break;
        }
        if (r != RD_OK) {
            cl_info("ttrpc %s: frame header cut short; closing the connection", c->name);
            rc = CL_EIO;
            break;
        }
        c->host_up = true;
        struct cl_ttrpc_hdr h;
        struct cl_err e = {0};
        if (cl_ttrpc_hdr_parse(hb, sizeof hb, &h, &e) < 0) {
            /* Nothing of the payload is read: answer and drop the connection. */
            uint32_t stream =
                (uint32_t)hb[4] << 24 | (uint32_t)hb[5] << 16 | (uint32_t)hb[6] << 8 | hb[7];
            cl_warn("ttrpc %s: %s; closing the connection", c->name, e.msg);
            (void)conn_respond(c, stream, __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE),
                               CL_TTRPC_RESOURCE_EXHAUSTED, e.msg, NULL, 0);
            if (c->serial) {
                if (!serial_discard(c))
                    break;
                continue;
            }
            rc = CL_ELIMIT;
            break;
        }
        if (h.type != CL_TTRPC_REQUEST && h.type != CL_TTRPC_DATA) {
            cl_warn("ttrpc %s: frame type %u from a client; closing the connection", c->name,
                    h.type);
            if (c->serial) {
                if (!serial_discard(c))
                    break;
                continue;
            }
            rc = CL_EPARSE;
            break;
        }
        cl_bytes *payload = malloc(h.length ? h.length : 1);
        if (!payload) {
            rc = CL_ENOMEM;
            break;
        }
        if (h.length) {
            r = read_exact(c->fd, c->stopfd, payload, h.length, false, &deadline, frame_ms, NULL,
                           NULL);
            if (r != RD_OK) {
                free(payload);
                if (r == RD_STOP)
                    break;
                if (c->serial) {
                    if (!serial_hangup(c))
                        break;
                    continue;
                }
                cl_info("ttrpc %s: frame payload %s; closing the connection", c->name,
                        r == RD_TIMEOUT ? "not complete in time" : "cut short");
                rc = CL_EIO;
                break;
            }
        }
        uint64_t gen = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
        if (h.type == CL_TTRPC_DATA) {
            free(payload);
            (void)conn_respond(c, h.stream_id, gen, CL_TTRPC_UNIMPLEMENTED,
                               "streaming is not supported", NULL, 0);
        } else if (h.stream_id == 0 || (h.stream_id & 1) == 0) {
            free(payload);
            (void)conn_respond(c, h.stream_id, gen, CL_TTRPC_INVALID_ARGUMENT,
                               "client stream ids must be odd", NULL, 0);
        } else {
            conn_start(c, h.stream_id, payload, h.length);
        }
        pthread_mutex_lock(&c->lock);
        c->last_ns = cl_now_mono_ns();
        bool broken = c->broken;
        pthread_mutex_unlock(&c->lock);
        if (broken) {
            rc = CL_EIO;
            break;
        }
    }
    conn_drain(c);
    return rc;
}

int cl_ttrpc_serve_fd(int fd, const struct cl_ttrpc_method *methods, size_t nmethods, void *ctx)
{
    struct conn *c = conn_new(NULL, fd, methods, nmethods, ctx);
    if (!c)
        return CL_ENOMEM;
    int rc = serve_conn(c);
    conn_unref(c);
    return rc;
}

/* ---- server: listening ---- */

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct cl_ttrpc_server *s = c->srv;
    (void)serve_conn(c);
    shutdown(c->fd,
             SHUT_RDWR); /* the peer sees the end now; the fd is closed with the last reference */
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < CL_TTRPC_MAX_CONNS; i++)
        if (s->conns[i] == c)
            s->conns[i] = NULL;
    pthread_mutex_unlock(&s->lock);
    conn_unref(c);
    pthread_mutex_lock(&s->lock);
    s->nlive--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* With the table full: closes the connection that has been idle longest (no handler
 * running) and returns its slot, or -1 when every connection is busy. Lock held. */
static int evict_idle(struct cl_ttrpc_server *s)
{
    int victim = -1;
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < CL_TTRPC_MAX_CONNS; i++) {
        struct conn *c = s->conns[i];
        pthread_mutex_lock(&c->lock);
        if (c->inflight == 0 && c->last_ns < oldest) {
            oldest = c->last_ns;
            victim = i;
        }
        pthread_mutex_unlock(&c->lock);
    }
    if (victim < 0)
        return -1;
    cl_warn("ttrpc %s: %d connections open; closing the one idle for %llu ms to make room",
            s->address, CL_TTRPC_MAX_CONNS,
            (unsigned long long)((cl_now_mono_ns() - oldest) / 1000000u));
    shutdown(s->conns[victim]->fd, SHUT_RDWR); /* its reader ends and frees it */
    s->conns[victim] = NULL;
    return victim;
}

static void *accept_main(void *arg)
{
    struct cl_ttrpc_server *s = arg;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = s->lfd, .events = POLLIN},
                                {.fd = s->stopfd, .events = POLLIN}};
        int pr = poll(pfd, 2, -1);
        if (__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            return NULL;
        if (pr <= 0)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
                usleep(10000); /* EMFILE and the like: do not spin */
            continue;
        }
        if (s->addr.transport == CL_TTRPC_TCP)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        pthread_mutex_lock(&s->lock);
        int slot = -1;
        for (int i = 0; i < CL_TTRPC_MAX_CONNS && slot < 0; i++)
            if (!s->conns[i])
                slot = i;
        if (slot < 0)
            slot = evict_idle(s);
        if (slot < 0) {
            pthread_mutex_unlock(&s->lock);
            cl_warn("ttrpc %s: %d connections open, all busy; refusing one more", s->address,
                    CL_TTRPC_MAX_CONNS);
            close(fd);
            continue;
        }
        struct conn *c = conn_new(s, fd, s->methods, s->nmethods, s->ctx);
        if (!c) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        c->owns_fd = true;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_t th;
        s->conns[slot] = c;
        s->nlive++;
        if (pthread_create(&th, &at, conn_main, c) != 0) {
            s->conns[slot] = NULL;
            s->nlive--;
            conn_unref(c);
        }
        pthread_attr_destroy(&at);
        pthread_mutex_unlock(&s->lock);
    }
}

static void *serial_main(void *arg)
{
    struct cl_ttrpc_server *s = arg;
    (void)serve_conn(s->serial);
    return NULL;
}

static struct cl_ttrpc_server *server_new(const struct cl_ttrpc_method *methods, size_t nmethods,
                                          void *ctx, struct cl_err *err)
{
    struct cl_ttrpc_server *s = calloc(1, sizeof *s);
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    s->lfd = -1;
    s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stopfd < 0) {
        cl_err_set(err, CL_EIO, "ttrpc: eventfd: %s", strerror(errno));
        free(s);
        return NULL;
    }
    s->methods = methods;
    s->nmethods = nmethods;
    s->ctx = ctx;
    s->idle_ms = CL_TTRPC_IDLE_TIMEOUT_MS;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    return s;
}

static void server_free(struct cl_ttrpc_server *s)
{
    if (s->lfd >= 0)
        close(s->lfd);
    close(s->stopfd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

static int listen_unix(struct cl_ttrpc_server *s, struct cl_err *err)
{
    const char *path = s->addr.path;
    char dir[CL_TTRPC_MAX_ADDRESS];
    memcpy(dir, path, strlen(path) + 1);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (cl_mkdir_p(dir, 0755, err) < 0)
            return err ? err->code : CL_EIO;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return cl_err_set(err, CL_EEXISTS, "ttrpc socket path %s exists and is not a socket",
                              path);
        unlink(path);
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int brc = s->lfd < 0 ? -1 : bind(s->lfd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (brc < 0 || listen(s->lfd, 64) < 0)
        return cl_err_set(err, CL_EIO, "ttrpc: cannot listen on %s: %s", path, strerror(errno));
    return 0;
}

static int listen_inet(struct cl_ttrpc_server *s, struct cl_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_of(&s->addr, &ss);
    int family = s->addr.transport == CL_TTRPC_VSOCK ? AF_VSOCK : s->addr.family;
    s->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        return cl_err_set(err, CL_EIO, "ttrpc: cannot make a socket for %s: %s", s->address,
                          strerror(errno));
    if (family != AF_VSOCK)
        (void)setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
    if (!sl || bind(s->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(s->lfd, 64) < 0)
        return cl_err_set(err, CL_EIO, "ttrpc: cannot listen on %s: %s", s->address,
                          strerror(errno));
    if (family != AF_VSOCK && s->addr.port == 0) {
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (getsockname(s->lfd, (struct sockaddr *)&got, &gl) == 0)
            s->addr.port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                    : ((struct sockaddr_in *)&got)->sin_port);
        address_format(&s->addr, s->address, sizeof s->address);
    }
    return 0;
}

static struct cl_ttrpc_server *serial_start(struct cl_ttrpc_server *s, int fd, struct cl_err *err)
{
    s->serial = conn_new(s, fd, s->methods, s->nmethods, s->ctx);
    if (!s->serial) {
        close(fd);
        server_free(s);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    s->serial->serial = true;
    s->serial->owns_fd = true;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    /* A tty (a serial line, a pty) would echo, translate line ends and swallow control
     * bytes: frames are binary. A virtio-serial port is not a tty. */
    struct termios t;
    if (isatty(fd) && tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        (void)tcsetattr(fd, TCSANOW, &t);
    }
    if (pthread_create(&s->main_th, NULL, serial_main, s) != 0) {
        conn_unref(s->serial);
        server_free(s);
        cl_err_set(err, CL_EIO, "ttrpc: cannot start the serial thread");
        return NULL;
    }
    return s;
}

struct cl_ttrpc_server *cl_ttrpc_server_start_serial_fd(int fd,
                                                        const struct cl_ttrpc_method *methods,
                                                        size_t nmethods, void *ctx,
                                                        struct cl_err *err)
{
    struct cl_ttrpc_server *s = server_new(methods, nmethods, ctx, err);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->addr.transport = CL_TTRPC_SERIAL;
    snprintf(s->address, sizeof s->address, "serial:fd %d", fd);
    return serial_start(s, fd, err);
}

struct cl_ttrpc_server *cl_ttrpc_server_start(const char *address,
                                              const struct cl_ttrpc_method *methods,
                                              size_t nmethods, void *ctx, struct cl_err *err)
{
    struct cl_ttrpc_addr a;
    if (cl_ttrpc_address_parse(address, &a, err) < 0)
        return NULL;
    struct cl_ttrpc_server *s = server_new(methods, nmethods, ctx, err);
    if (!s)
        return NULL;
    s->addr = a;
    address_format(&a, s->address, sizeof s->address);
    if (a.transport == CL_TTRPC_SERIAL) {
        int fd = open(a.path, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            cl_err_set(err, CL_EIO, "ttrpc: cannot open the serial device %s: %s", a.path,
                       strerror(errno));
            server_free(s);
            return NULL;
        }
        return serial_start(s, fd, err);
    }
    int rc = a.transport == CL_TTRPC_UNIX ? listen_unix(s, err) : listen_inet(s, err);
    if (rc == 0 && pthread_create(&s->main_th, NULL, accept_main, s) != 0)
        rc = cl_err_set(err, CL_EIO, "ttrpc: cannot start the accept thread");
    if (rc < 0) {
        if (a.transport == CL_TTRPC_UNIX && s->lfd >= 0)
            unlink(a.path);
        server_free(s);
        return NULL;
    }
    return s;
}

const char *cl_ttrpc_server_address(const struct cl_ttrpc_server *s)
{
    return s->address;
}

void cl_ttrpc_server_set_idle_timeout(struct cl_ttrpc_server *s, unsigned ms)
{
    __atomic_store_n(&s->idle_ms, ms, __ATOMIC_RELEASE);
}

void cl_ttrpc_server_stop(struct cl_ttrpc_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    __atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
    for (size_t i = 0; i < CL_TTRPC_MAX_CONNS; i++)
        if (s->conns[i])
            shutdown(s->conns[i]->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    if (s->serial) /* a response being written gives up */
        __atomic_add_fetch(&s->serial->gen, 1, __ATOMIC_ACQ_REL);
    uint64_t one = 1;
    if (write(s->stopfd, &one, sizeof one) < 0)
        cl_warn("ttrpc %s: cannot signal the stop: %s", s->address, strerror(errno));
    pthread_join(s->main_th, NULL);
    pthread_mutex_lock(&s->lock);
    while (s->nlive > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    if (s->serial)
        conn_unref(s->serial);
    if (s->addr.transport == CL_TTRPC_UNIX)
        unlink(s->addr.path);
    server_free(s);
}

/* ---- client ---- */

/* A call waiting for its response; lives on the caller's stack, linked while it waits. */
struct pending {
    struct pending *next;
    uint32_t stream;
    bool done;
    int rc; /* <0: failed without a response (why in msg) */
    char msg[256];
    cl_bytes *payload; /* the ttrpc.Response */
    size_t len;
};

struct cl_ttrpc_client {
    int fd;
    int stopfd;
    pthread_t reader;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a pending call completed */
    pthread_mutex_t wlock;
    uint32_t next_stream;
    bool dead;
    int dead_code;
    char dead_msg[200];
    struct pending *pending;
    int last_code; /* atomic */
};

/* The connection is unusable: every pending call fails with code/why, later calls at once. */
static void client_kill(struct cl_ttrpc_client *c, int code, const char *why)
{
    pthread_mutex_lock(&c->lock);
    if (!c->dead) {
        c->dead = true;
        c->dead_code = code;
        snprintf(c->dead_msg, sizeof c->dead_msg, "%s", why);
        shutdown(c->fd, SHUT_RDWR);
    }
    for (struct pending *p = c->pending; p; p = p->next) {
        if (!p->done) {
            p->done = true;
            p->rc = code;
            snprintf(p->msg, sizeof p->msg, "%s", why);
        }
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *client_reader(void *arg)
{
    struct cl_ttrpc_client *c = arg;
    for (;;) {
        uint8_t hb[CL_TTRPC_HEADER_LEN];
        uint64_t deadline = 0;
        int r = read_exact(c->fd, c->stopfd, hb, sizeof hb, true, &deadline,
                           CL_TTRPC_FRAME_TIMEOUT_MS, NULL, NULL);
        if (r != RD_OK) {
            client_kill(c, CL_EIO,
                        r == RD_EOF    ? "the server closed the connection"
                        : r == RD_STOP ? "the client was closed"
                                       : "response header cut short");
            return NULL;
        }
        struct cl_ttrpc_hdr h;
        struct cl_err e = {0};
        if (cl_ttrpc_hdr_parse(hb, sizeof hb, &h, &e) < 0) {
            client_kill(c, e.code, e.msg);
            return NULL;
        }
        cl_bytes *payload = malloc(h.length ? h.length : 1);
        if (!payload) {
            client_kill(c, CL_ENOMEM, "out of memory");
            return NULL;
        }
        if (h.length) {
            r = read_exact(c->fd, c->stopfd, payload, h.length, false, &deadline,
                           CL_TTRPC_FRAME_TIMEOUT_MS, NULL, NULL);
            if (r != RD_OK) {
                free(payload);
                client_kill(c, CL_EIO,
                            r == RD_STOP ? "the client was closed" : "response truncated");
                return NULL;
            }
        }
        pthread_mutex_lock(&c->lock);
        struct pending *p = c->pending;
        while (p && (p->stream != h.stream_id || p->done))
            p = p->next;
        if (p && h.type == CL_TTRPC_RESPONSE) {
            p->payload = payload;
            p->len = h.length;
            p->done = true;
            payload = NULL;
            pthread_cond_broadcast(&c->cond);
        }
        pthread_mutex_unlock(&c->lock);
        if (payload)
            cl_debug("ttrpc client: frame type %u on stream %u answers no waiting call; discarded",
                     h.type, h.stream_id);
        free(payload);
    }
}

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
    c->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->stopfd < 0) {
        cl_err_set(err, CL_EIO, "ttrpc: eventfd: %s", strerror(errno));
        close(fd);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->wlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&c->reader, NULL, client_reader, c) != 0) {
        cl_err_set(err, CL_EIO, "ttrpc: cannot start the client's reader thread");
        close(fd);
        close(c->stopfd);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->wlock);
        pthread_cond_destroy(&c->cond);
        free(c);
        return NULL;
    }
    return c;
}

/* Connects once; *retry tells whether the peer may simply not be there yet. */
static int dial(const struct cl_ttrpc_addr *a, const char *address, bool *retry, struct cl_err *err)
{
    *retry = false;
    int fd = -1;
    int rc = -1;
    if (a->transport == CL_TTRPC_SERIAL)
        return cl_err_set(err, CL_EINVAL,
                          "ttrpc address '%.64s': a serial device is served, not dialled", address);
    if (a->transport == CL_TTRPC_UNIX) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, a->path, strlen(a->path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } else {
        if (a->transport == CL_TTRPC_VSOCK && a->cid == CL_TTRPC_VSOCK_CID_ANY)
            return cl_err_set(err, CL_EINVAL,
                              "ttrpc address '%.64s': vsock CID -1 (any) is for servers only",
                              address);
        if (a->transport == CL_TTRPC_TCP && a->port == 0)
            return cl_err_set(err, CL_EINVAL,
                              "ttrpc address '%.64s': tcp port 0 is for servers only", address);
        struct sockaddr_storage ss;
        socklen_t sl = sockaddr_of(a, &ss);
        fd = socket(a->transport == CL_TTRPC_VSOCK ? AF_VSOCK : a->family,
                    SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && sl)
            rc = connect(fd, (struct sockaddr *)&ss, sl);
        if (rc == 0 && a->transport == CL_TTRPC_TCP)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    }
    if (fd < 0 || rc < 0) {
        int e = errno;
        *retry = fd >= 0 &&
                 (e == ECONNREFUSED || e == ENOENT || e == EAGAIN || e == ETIMEDOUT || e == EINTR ||
                  e == ENETUNREACH || e == EHOSTUNREACH || e == ECONNRESET || e == ENODEV);
        if (fd >= 0)
            close(fd);
        return cl_err_set(err, CL_EIO, "ttrpc: cannot connect to %.64s: %s", address, strerror(e));
    }
    return fd;
}

struct cl_ttrpc_client *cl_ttrpc_client_connect(const char *address, struct cl_err *err)
{
    struct cl_ttrpc_addr a;
    if (cl_ttrpc_address_parse(address, &a, err) < 0)
        return NULL;
    bool retry;
    int fd = dial(&a, address, &retry, err);
    return fd < 0 ? NULL : cl_ttrpc_client_from_fd(fd, err);
}

struct cl_ttrpc_client *cl_ttrpc_client_connect_retry(const char *address, unsigned timeout_ms,
                                                      struct cl_err *err)
{
    struct cl_ttrpc_addr a;
    if (cl_ttrpc_address_parse(address, &a, err) < 0)
        return NULL;
    uint64_t deadline = cl_now_mono_ns() + ms_ns(timeout_ms);
    for (;;) {
        bool retry;
        int fd = dial(&a, address, &retry, err);
        if (fd >= 0)
            return cl_ttrpc_client_from_fd(fd, err);
        int left = ms_until(deadline);
        if (!retry || left == 0) {
            if (retry)
                cl_err_prefix(err, "after %u ms", timeout_ms);
            return NULL;
        }
        usleep((useconds_t)(left < 50 ? left : 50) * 1000u);
    }
}

void cl_ttrpc_client_free(struct cl_ttrpc_client *c)
{
    if (!c)
        return;
    uint64_t one = 1;
    if (write(c->stopfd, &one, sizeof one) < 0)
        shutdown(c->fd, SHUT_RDWR);
    pthread_join(c->reader, NULL);
    close(c->fd);
    close(c->stopfd);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->wlock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

int cl_ttrpc_client_last_code(const struct cl_ttrpc_client *c)
{
    return __atomic_load_n(&c->last_code, __ATOMIC_ACQUIRE);
}

/* Next free odd stream id; lock held. */
static uint32_t client_stream(struct cl_ttrpc_client *c)
{
    for (;;) {
        uint32_t id = c->next_stream;
        c->next_stream = id >= UINT32_MAX - 1 ? 1 : id + 2;
        bool used = false;
        for (struct pending *p = c->pending; p && !used; p = p->next)
            used = p->stream == id;
        if (!used)
            return id;
    }
}

static void unlink_pending(struct cl_ttrpc_client *c, struct pending *p)
{
    for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

int cl_ttrpc_call_status(struct cl_ttrpc_client *c, const char *service, const char *method,
                         const void *req, size_t req_len, unsigned timeout_ms, cl_bytes **resp,
                         size_t *resp_len, int *code, cl_str **msg, struct cl_err *err)
{
    if (!timeout_ms)
        timeout_ms = CL_TTRPC_DEFAULT_CALL_TIMEOUT_MS;
    uint64_t deadline = cl_now_mono_ns() + ms_ns(timeout_ms);
    __atomic_store_n(&c->last_code, -1, __ATOMIC_RELEASE);
    size_t n = 0;
    CL_AUTO(cl_bytes) *body =
        cl_ttrpc_request_encode(service, method, req, req_len, (int64_t)ms_ns(timeout_ms), &n, err);
    if (!body)
        return err ? err->code : CL_ENOMEM;
    struct pending p = {0};
    pthread_mutex_lock(&c->lock);
    if (c->dead) {
        int rc = cl_err_set(err, CL_EIO, "ttrpc /%s/%s: connection is broken (%s); reconnect",
                            service, method, c->dead_msg);
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    p.stream = client_stream(c);
    p.next = c->pending;
    c->pending = &p;
    pthread_mutex_unlock(&c->lock);

    size_t flen = 0;
    CL_AUTO(cl_bytes) *frame = frame_new(p.stream, CL_TTRPC_REQUEST, body, n, &flen);
    int wrc = CL_ENOMEM;
    if (frame) {
        uint64_t wd = cl_now_mono_ns() + ms_ns(CL_TTRPC_FRAME_TIMEOUT_MS);
        pthread_mutex_lock(&c->wlock);
        wrc = write_all(c->fd, frame, flen, wd < deadline ? wd : deadline, NULL, 0);
        pthread_mutex_unlock(&c->wlock);
        if (wrc < 0)
            client_kill(c, CL_EIO, "cannot send the request");
    }

    pthread_mutex_lock(&c->lock);
    bool timed_out = false;
    while (!p.done && wrc == 0) {
        struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT && !p.done) {
            timed_out = true;
            break;
        }
    }
    unlink_pending(c, &p);
    pthread_mutex_unlock(&c->lock);
    if (wrc == CL_ENOMEM)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (timed_out)
        return cl_err_set(err, CL_EIO, "ttrpc /%s/%s: no answer in time (%u ms)", service, method,
                          timeout_ms);
    if (p.rc < 0)
        return cl_err_set(err, p.rc, "ttrpc /%s/%s: %s", service, method, p.msg);
    int st = 0;
    CL_AUTO(cl_str) *m = NULL;
    cl_bytes *out = NULL;
    size_t outlen = 0;
    int rc = cl_ttrpc_response_decode(p.payload, p.len, &st, &m, &out, &outlen, err);
    free(p.payload);
    if (rc < 0)
        return cl_err_prefix(err, "ttrpc /%s/%s", service, method);
    __atomic_store_n(&c->last_code, st, __ATOMIC_RELEASE);
    *code = st;
    *msg = CL_STEAL(m);
    *resp = out;
    *resp_len = outlen;
    return 0;
}

int cl_ttrpc_call(struct cl_ttrpc_client *c, const char *service, const char *method,
                  const void *req, size_t req_len, unsigned timeout_ms, cl_bytes **resp,
                  size_t *resp_len, struct cl_err *err)
{
    int code = 0;
    CL_AUTO(cl_str) *msg = NULL;
    CL_AUTO(cl_bytes) *out = NULL;
    size_t outlen = 0;
    int rc = cl_ttrpc_call_status(c, service, method, req, req_len, timeout_ms, &out, &outlen,
                                  &code, &msg, err);
    if (rc < 0)
        return rc;
    if (code != CL_TTRPC_OK)
        return cl_err_set(
            err,
            code == CL_TTRPC_NOT_FOUND || code == CL_TTRPC_UNIMPLEMENTED ? CL_ENOTFOUND : CL_EIO,
            "/%s/%s: %s", service, method, *msg ? msg : "(no message)");
    *resp = CL_STEAL(out);
    *resp_len = outlen;
    return 0;
}
