/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc tests: header and envelope codecs (one case per rejection), every address form
 * (parsed and refused), a server loop driven over a socketpair by the client and by raw
 * frames the client would never send (oversized, malformed, even or reused stream ids, data
 * and response frames from a client, a frame cut short), concurrent dispatch (a blocked
 * handler does not hold up others, responses out of order, the in-flight cap), the
 * multiplexed client (32 threads, routing, abandoned and unknown streams, transport failure
 * failing every pending call), the unix and tcp servers end to end, connect with retries,
 * the serial mode over a pty whose "host" side hangs up mid-frame and comes back, and idle
 * peers (timeout, and a full table still answering a new client).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/ttrpc.h"

/* ---- handlers ---- */

static int h_echo(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    *resp = malloc(len ? len : 1);
    if (!*resp)
        return cl_err_set(err, CL_ENOMEM, "oom");
    if (len)
        memcpy(*resp, req, len);
    *resp_len = len;
    return 0;
}

static int h_fail(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    return cl_err_set(err, CL_EIO, "[ERROR:test] it went wrong");
}

static int h_missing(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                     struct cl_err *err)
{
    return cl_err_set(err, CL_ENOTFOUND, "no such thing");
}

static int h_big(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                 struct cl_err *err)
{
    *resp = calloc(1, CL_TTRPC_MAX_PAYLOAD);
    *resp_len = CL_TTRPC_MAX_PAYLOAD;
    return *resp ? 0 : cl_err_set(err, CL_ENOMEM, "oom");
}

/* Block: waits until the test opens the gate (a WaitProcess stand-in). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int gate_waiting;

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    if (!open)
        gate_waiting = 0;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Waits until n handlers wait at the gate (at most 5 s). */
static void gate_wait_for(int n)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&gate_lock);
        int w = gate_waiting;
        pthread_mutex_unlock(&gate_lock);
        if (w >= n)
            return;
        usleep(10000);
    }
    fail_msg("%d handlers never reached the gate", n);
}

static int h_block(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    pthread_mutex_lock(&gate_lock);
    gate_waiting++;
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return h_echo(ctx, req, len, resp, resp_len, err);
}

/* Sleep: the request is a decimal number of milliseconds; answers it back. */
static int h_sleep(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    usleep((useconds_t)atoi((const char *)req) * 1000u);
    return h_echo(ctx, req, len, resp, resp_len, err);
}

/* Code: fails with the CL_E* whose (negated) value is the request's one byte. */
static int h_code(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    return cl_err_set(err, len == 1 ? -(int)req[0] : CL_EINVAL, "code %d",
                      len == 1 ? -(int)req[0] : 0);
}

static const struct cl_ttrpc_method methods[] = {
    {"test.Svc", "Echo", h_echo},       {"test.Svc", "Fail", h_fail},
    {"test.Svc", "Missing", h_missing}, {"test.Svc", "Big", h_big},
    {"test.Svc", "Block", h_block},     {"test.Svc", "Sleep", h_sleep},
    {"test.Svc", "Code", h_code},
};

/* ---- a server on one end of a socketpair ---- */

struct pair {
    int cfd, sfd;
    pthread_t th;
    int serve_rc;
    bool done; /* atomic */
};

static void *serve_main(void *arg)
{
    struct pair *p = arg;
    p->serve_rc = cl_ttrpc_serve_fd(p->sfd, methods, CL_ARRAY_LEN(methods), NULL);
    __atomic_store_n(&p->done, true, __ATOMIC_RELEASE);
    shutdown(p->sfd, SHUT_RDWR);
    return NULL;
}

static void pair_start(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    p->cfd = sv[0];
    p->sfd = sv[1];
    assert_int_equal(pthread_create(&p->th, NULL, serve_main, p), 0);
}

static void pair_join(struct pair *p)
{
    pthread_join(p->th, NULL);
    close(p->sfd);
}

static void raw_frame(int fd, uint32_t len, uint32_t stream, uint8_t type, const void *payload,
                      size_t plen)
{
    uint8_t hb[CL_TTRPC_HEADER_LEN];
    struct cl_ttrpc_hdr h = {len, stream, type, 0};
    cl_ttrpc_hdr_encode(&h, hb);
    /* one write: the server may hang up as soon as it has read the header */
    uint8_t *buf = malloc(sizeof hb + plen);
    memcpy(buf, hb, sizeof hb);
    if (plen)
        memcpy(buf + sizeof hb, payload, plen);
    assert_int_equal(write(fd, buf, sizeof hb + plen), (ssize_t)(sizeof hb + plen));
    free(buf);
}

/* Whether fd has something to read within ms. */
static bool readable(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, ms) > 0;
}

/* A request frame for test.Svc/<method> on stream. */
static void raw_request(int fd, uint32_t stream, const char *method, const char *payload)
{
    size_t n = 0;
    cl_bytes *rq =
        cl_ttrpc_request_encode("test.Svc", method, payload, strlen(payload), 0, &n, NULL);
    assert_non_null(rq);
    raw_frame(fd, (uint32_t)n, stream, CL_TTRPC_REQUEST, rq, n);
    free(rq);
}

/* Reads one response frame; returns its status code and copies the message (-1: the end,
 * -2: nothing within 5 s). */
static int raw_response(int fd, uint32_t *stream, char *msg, size_t msgcap)
{
    uint8_t hb[CL_TTRPC_HEADER_LEN];
    size_t got = 0;
    while (got < sizeof hb) {
        if (!readable(fd, 5000))
            return -2;
        ssize_t r = read(fd, hb + got, sizeof hb - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    struct cl_ttrpc_hdr h;
    assert_int_equal(cl_ttrpc_hdr_parse(hb, sizeof hb, &h, NULL), 0);
    assert_int_equal(h.type, CL_TTRPC_RESPONSE);
    uint8_t *buf = malloc(h.length + 1);
    got = 0;
    while (got < h.length) {
        assert_true(readable(fd, 5000));
        ssize_t r = read(fd, buf + got, h.length - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    int code = -1;
    cl_str *m = NULL;
    cl_bytes *p = NULL;
    size_t plen = 0;
    assert_int_equal(cl_ttrpc_response_decode(buf, h.length, &code, &m, &p, &plen, NULL), 0);
    snprintf(msg, msgcap, "%s", m);
    free(m);
    free(p);
    free(buf);
    *stream = h.stream_id;
    return code;
}

/* ---- codecs ---- */

static void test_header(void **state)
{
    uint8_t hb[CL_TTRPC_HEADER_LEN];
    struct cl_ttrpc_hdr h = {0x01020304u & 0xfffff, 7, CL_TTRPC_REQUEST, 0x2}, out;
    cl_ttrpc_hdr_encode(&h, hb);
    assert_int_equal(hb[0], 0);
    assert_int_equal(hb[7], 7);
    assert_int_equal(cl_ttrpc_hdr_parse(hb, sizeof hb, &out, NULL), 0);
    assert_int_equal(out.length, h.length);
    assert_int_equal(out.stream_id, 7);
    assert_int_equal(out.type, CL_TTRPC_REQUEST);
    assert_int_equal(out.flags, 2);
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_hdr_parse(hb, 9, &out, &e), CL_EPARSE);
    assert_non_null(strstr(e.msg, "truncated"));
    h.length = CL_TTRPC_MAX_PAYLOAD;
    cl_ttrpc_hdr_encode(&h, hb);
    assert_int_equal(cl_ttrpc_hdr_parse(hb, sizeof hb, &out, NULL), 0);
    h.length = CL_TTRPC_MAX_PAYLOAD + 1;
    cl_ttrpc_hdr_encode(&h, hb);
    assert_int_equal(cl_ttrpc_hdr_parse(hb, sizeof hb, &out, &e), CL_ELIMIT);
    assert_non_null(strstr(e.msg, "exceeds"));
}

static void test_request_codec(void **state)
{
    size_t n = 0;
    cl_bytes *b = cl_ttrpc_request_encode("a.B", "C", "xyz", 3, 5, &n, NULL);
    assert_non_null(b);
    struct cl_ttrpc_request r;
    assert_int_equal(cl_ttrpc_request_decode(b, n, &r, NULL), 0);
    assert_string_equal(r.service, "a.B");
    assert_string_equal(r.method, "C");
    assert_int_equal(r.payload_len, 3);
    assert_memory_equal(r.payload, "xyz", 3);
    assert_int_equal(r.timeout_nano, 5);
    cl_ttrpc_request_clear(&r);
    free(b);

    static const struct {
        const char *service, *method;
    } bad[] = {{"", "M"}, {"S", ""}, {"S p", "M"}, {"S", "M\x01"}, {"S\x7f", "M"}};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err e = {0};
        b = cl_ttrpc_request_encode(bad[i].service, bad[i].method, NULL, 0, 0, &n, NULL);
        assert_non_null(b);
        assert_int_equal(cl_ttrpc_request_decode(b, n, &r, &e), CL_EPARSE);
        free(b);
    }
    char longname[CL_TTRPC_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    b = cl_ttrpc_request_encode(longname, "M", NULL, 0, 0, &n, NULL);
    assert_int_equal(cl_ttrpc_request_decode(b, n, &r, NULL), CL_EPARSE);
    free(b);
    /* not protobuf at all: field 1 declared longer than the buffer */
    static const uint8_t junk[] = {0x0a, 0x7f, 'a'};
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_request_decode(junk, sizeof junk, &r, &e), CL_EPARSE);
    assert_non_null(strstr(e.msg, "ttrpc.Request"));
    assert_int_equal(cl_ttrpc_response_decode(junk, sizeof junk, &(int){0}, &(cl_str *){NULL},
                                              &(cl_bytes *){NULL}, &(size_t){0}, &e),
                     CL_EPARSE);
}

static void test_address(void **state)
{
    static const struct {
        const char *addr;
        int rc;
        enum cl_ttrpc_transport t;
        const char *path_or_host; /* unix/serial path, tcp host; or the error's words */
        uint32_t cid, port;
        int family;
    } cases[] = {
        {"unix:///run/x.sock", 0, CL_TTRPC_UNIX, "/run/x.sock", 0, 0, 0},
        {"unix://rel.sock", 0, CL_TTRPC_UNIX, "rel.sock", 0, 0, 0},
        {"unix:/run/y.sock", 0, CL_TTRPC_UNIX, "/run/y.sock", 0, 0, 0},
        {"unix:rel2.sock", 0, CL_TTRPC_UNIX, "rel2.sock", 0, 0, 0},
        {"/run/z.sock", 0, CL_TTRPC_UNIX, "/run/z.sock", 0, 0, 0},
        {"vsock://-1:1024", 0, CL_TTRPC_VSOCK, NULL, CL_TTRPC_VSOCK_CID_ANY, 1024, 0},
        {"vsock://3:1024", 0, CL_TTRPC_VSOCK, NULL, 3, 1024, 0},
        {"vsock://4294967294:4294967294", 0, CL_TTRPC_VSOCK, NULL, 4294967294u, 4294967294u, 0},
        {"tcp://127.0.0.1:1024", 0, CL_TTRPC_TCP, "127.0.0.1", 0, 1024, AF_INET},
        {"tcp://0.0.0.0:0", 0, CL_TTRPC_TCP, "0.0.0.0", 0, 0, AF_INET},
        {"tcp://[::1]:65535", 0, CL_TTRPC_TCP, "::1", 0, 65535, AF_INET6},
        {"serial:/dev/vport0p1", 0, CL_TTRPC_SERIAL, "/dev/vport0p1", 0, 0, 0},
        /* refusals, each with the words that say why */
        {"", CL_EINVAL, 0, "empty", 0, 0, 0},
        {"unix://", CL_EINVAL, 0, "no path", 0, 0, 0},
        {"unix:", CL_EINVAL, 0, "no path", 0, 0, 0},
        {"http://1.2.3.4:5", CL_EINVAL, 0, "unknown transport", 0, 0, 0},
        {"rel.sock", CL_EINVAL, 0, "unknown transport", 0, 0, 0},
        {"vsock://3", CL_EINVAL, 0, "CID:PORT", 0, 0, 0},
        {"vsock://:1024", CL_EINVAL, 0, "CID", 0, 0, 0},
        {"vsock://-2:1024", CL_EINVAL, 0, "CID", 0, 0, 0},
        {"vsock://4294967295:1", CL_EINVAL, 0, "CID", 0, 0, 0},
        {"vsock://3:", CL_EINVAL, 0, "port", 0, 0, 0},
        {"vsock://3:-1", CL_EINVAL, 0, "port", 0, 0, 0},
        {"vsock://3:10x", CL_EINVAL, 0, "port", 0, 0, 0},
        {"vsock://3:99999999999", CL_EINVAL, 0, "port", 0, 0, 0},
        {"tcp://localhost:80", CL_EINVAL, 0, "not a numeric", 0, 0, 0},
        {"tcp://1.2.3:80", CL_EINVAL, 0, "not a numeric", 0, 0, 0},
        {"tcp://1.2.3.4", CL_EINVAL, 0, "HOST:PORT", 0, 0, 0},
        {"tcp://1.2.3.4:65536", CL_EINVAL, 0, "port", 0, 0, 0},
        {"tcp://1.2.3.4:+1", CL_EINVAL, 0, "port", 0, 0, 0},
        {"tcp://:80", CL_EINVAL, 0, "host is empty", 0, 0, 0},
        {"tcp://::1:80", CL_EINVAL, 0, "not a numeric", 0, 0, 0},
        {"tcp://[::1]80", CL_EINVAL, 0, "[ADDR]:PORT", 0, 0, 0},
        {"tcp://[::1:80", CL_EINVAL, 0, "[ADDR]:PORT", 0, 0, 0},
        {"tcp://[1.2.3.4]:80", CL_EINVAL, 0, "not a numeric", 0, 0, 0},
        {"serial:", CL_EINVAL, 0, "/dev/<name>", 0, 0, 0},
        {"serial:/dev/", CL_EINVAL, 0, "/dev/<name>", 0, 0, 0},
        {"serial:/tmp/x", CL_EINVAL, 0, "/dev/<name>", 0, 0, 0},
        {"serial:vport0p1", CL_EINVAL, 0, "/dev/<name>", 0, 0, 0},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_ttrpc_addr a;
        struct cl_err e = {0};
        int rc = cl_ttrpc_address_parse(cases[i].addr, &a, &e);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d (%s)", cases[i].addr, rc, cases[i].rc, e.msg);
        if (rc < 0) {
            if (!strstr(e.msg, cases[i].path_or_host))
                fail_msg("%s: message '%s' lacks '%s'", cases[i].addr, e.msg,
                         cases[i].path_or_host);
            if (*cases[i].addr && !strstr(e.msg, cases[i].addr))
                fail_msg("%s: message '%s' does not quote the address", cases[i].addr, e.msg);
            continue;
        }
        assert_int_equal(a.transport, cases[i].t);
        if (a.transport == CL_TTRPC_UNIX || a.transport == CL_TTRPC_SERIAL)
            assert_string_equal(a.path, cases[i].path_or_host);
        if (a.transport == CL_TTRPC_TCP) {
            assert_string_equal(a.host, cases[i].path_or_host);
            assert_int_equal(a.family, cases[i].family);
        }
        if (a.transport == CL_TTRPC_VSOCK)
            assert_int_equal(a.cid, cases[i].cid);
        if (a.transport == CL_TTRPC_VSOCK || a.transport == CL_TTRPC_TCP)
            assert_int_equal(a.port, cases[i].port);
    }
    struct cl_ttrpc_addr a;
    assert_int_equal(cl_ttrpc_address_parse(NULL, &a, NULL), CL_EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_address_parse(longp, &a, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "longer than"));
    char huge[600];
    memset(huge, 'a', sizeof huge - 1);
    huge[0] = '/';
    huge[sizeof huge - 1] = 0;
    assert_int_equal(cl_ttrpc_address_parse(huge, &a, &e), CL_EINVAL);
    /* the unix-only helper */
    char p[CL_TTRPC_MAX_ADDRESS];
    assert_int_equal(cl_ttrpc_address_path("unix:///run/x.sock", p, NULL), 0);
    assert_string_equal(p, "/run/x.sock");
    assert_int_equal(cl_ttrpc_address_path("vsock://3:1024", p, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "not a unix socket"));
    assert_int_equal(cl_ttrpc_address_path("tcp://1.2.3.4:5", p, NULL), CL_EINVAL);
    assert_int_equal(cl_ttrpc_address_path("", p, NULL), CL_EINVAL);
    /* clients refuse what only a server can use, before any socket is made */
    static const char *server_only[] = {"serial:/dev/vport0p1", "vsock://-1:1024",
                                        "tcp://127.0.0.1:0"};
    for (size_t i = 0; i < CL_ARRAY_LEN(server_only); i++) {
        assert_null(cl_ttrpc_client_connect(server_only[i], &e));
        assert_int_equal(e.code, CL_EINVAL);
        assert_non_null(strstr(e.msg, "serv"));
    }
    /* status mapping both ways */
    static const struct {
        int err, status, back;
    } map[] = {
        {0, CL_TTRPC_OK, 0},
        {CL_EDENIED, CL_TTRPC_PERMISSION_DENIED, CL_EDENIED},
        {CL_ENOTFOUND, CL_TTRPC_NOT_FOUND, CL_ENOTFOUND},
        {CL_EPARSE, CL_TTRPC_INVALID_ARGUMENT, CL_EINVAL},
        {CL_EINVAL, CL_TTRPC_INVALID_ARGUMENT, CL_EINVAL},
        {CL_EUNSUPPORTED, CL_TTRPC_UNIMPLEMENTED, CL_ENOTFOUND},
        {CL_ELIMIT, CL_TTRPC_RESOURCE_EXHAUSTED, CL_ELIMIT},
        {CL_EEXPIRED, CL_TTRPC_DEADLINE_EXCEEDED, CL_EEXPIRED},
        {CL_EIO, CL_TTRPC_INTERNAL, CL_EIO},
        {CL_EVERIFY, CL_TTRPC_INTERNAL, CL_EIO},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(map); i++) {
        assert_int_equal(cl_ttrpc_status_of_err(map[i].err), map[i].status);
        assert_int_equal(cl_ttrpc_err_of_status(map[i].status), map[i].back);
    }
}

/* ---- serving over a socketpair ---- */

static void test_calls(void **state)
{
    struct pair p;
    pair_start(&p);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(p.cfd, NULL);
    assert_non_null(c);
    cl_bytes *out = NULL;
    size_t n = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "hello", 5, 0, &out, &n, &e), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    /* an empty request and answer */
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", NULL, 0, 0, &out, &n, &e), 0);
    assert_int_equal(n, 0);
    free(out);
    /* unknown method: NOT_FOUND with upstream's message */
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Nope", NULL, 0, 0, &out, &n, &e), CL_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/test.Svc/Nope is not supported"));
    assert_int_equal(cl_ttrpc_client_last_code(c), CL_TTRPC_NOT_FOUND);
    assert_int_equal(cl_ttrpc_call(c, "other.Svc", "Echo", NULL, 0, 0, &out, &n, &e), CL_ENOTFOUND);
    /* handler errors: INTERNAL with the handler's message; ENOTFOUND maps to NOT_FOUND */
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Fail", NULL, 0, 0, &out, &n, &e), CL_EIO);
    assert_non_null(strstr(e.msg, "[ERROR:test] it went wrong"));
    assert_int_equal(cl_ttrpc_client_last_code(c), CL_TTRPC_INTERNAL);
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Missing", NULL, 0, 0, &out, &n, &e),
                     CL_ENOTFOUND);
    /* an answer that cannot fit a frame becomes RESOURCE_EXHAUSTED, the connection lives on */
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Big", NULL, 0, 0, &out, &n, &e), CL_EIO);
    assert_int_equal(cl_ttrpc_client_last_code(c), CL_TTRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "x", 1, 0, &out, &n, &e), 0);
    free(out);
    /* a request that cannot fit is refused before sending */
    uint8_t *huge = calloc(1, CL_TTRPC_MAX_PAYLOAD);
    assert_int_equal(
        cl_ttrpc_call(c, "test.Svc", "Echo", huge, CL_TTRPC_MAX_PAYLOAD, 0, &out, &n, &e),
        CL_ELIMIT);
    free(huge);
    cl_ttrpc_client_free(c);
    pair_join(&p);
    assert_int_equal(p.serve_rc, 0);
}

static void test_bad_frames(void **state)
{
    char msg[512];
    uint32_t stream = 0;
    size_t n = 0;
    /* oversized: answered RESOURCE_EXHAUSTED on the same stream, then dropped unread */
    {
        struct pair p;
        pair_start(&p);
        raw_frame(p.cfd, CL_TTRPC_MAX_PAYLOAD + 1, 3, CL_TTRPC_REQUEST, NULL, 0);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg),
                         CL_TTRPC_RESOURCE_EXHAUSTED);
        assert_int_equal(stream, 3);
        assert_non_null(strstr(msg, "exceeds"));
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), -1);
        close(p.cfd);
        pair_join(&p);
        assert_int_equal(p.serve_rc, CL_ELIMIT);
    }
    /* malformed envelope, even stream id, data frame: answered, connection kept */
    {
        struct pair p;
        pair_start(&p);
        static const uint8_t junk[] = {0x0a, 0x7f, 'a'};
        raw_frame(p.cfd, sizeof junk, 1, CL_TTRPC_REQUEST, junk, sizeof junk);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_INVALID_ARGUMENT);
        cl_bytes *rq = cl_ttrpc_request_encode("test.Svc", "Echo", "a", 1, 0, &n, NULL);
        raw_frame(p.cfd, (uint32_t)n, 2, CL_TTRPC_REQUEST, rq, n);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_INVALID_ARGUMENT);
        assert_non_null(strstr(msg, "odd"));
        raw_frame(p.cfd, (uint32_t)n, 0, CL_TTRPC_REQUEST, rq, n);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_INVALID_ARGUMENT);
        raw_frame(p.cfd, (uint32_t)n, 5, CL_TTRPC_DATA, rq, n);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_UNIMPLEMENTED);
        raw_frame(p.cfd, (uint32_t)n, 7, CL_TTRPC_REQUEST, rq, n);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_OK);
        assert_int_equal(stream, 7);
        /* a response frame from a client: not ttrpc, dropped */
        raw_frame(p.cfd, (uint32_t)n, 9, CL_TTRPC_RESPONSE, rq, n);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), -1);
        free(rq);
        close(p.cfd);
        pair_join(&p);
        assert_int_equal(p.serve_rc, CL_EPARSE);
    }
    /* unknown frame type */
    {
        struct pair p;
        pair_start(&p);
        raw_frame(p.cfd, 0, 1, 9, NULL, 0);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), -1);
        close(p.cfd);
        pair_join(&p);
        assert_int_equal(p.serve_rc, CL_EPARSE);
    }
    /* a frame cut short: the peer goes away mid-payload */
    {
        struct pair p;
        pair_start(&p);
        raw_frame(p.cfd, 100, 1, CL_TTRPC_REQUEST, "0123456789", 10);
        shutdown(p.cfd, SHUT_WR);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), -1);
        close(p.cfd);
        pair_join(&p);
        assert_int_equal(p.serve_rc, CL_EIO);
    }
    /* half a header then EOF */
    {
        struct pair p;
        pair_start(&p);
        assert_int_equal(write(p.cfd, "\0\0\0", 3), 3);
        shutdown(p.cfd, SHUT_WR);
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), -1);
        close(p.cfd);
        pair_join(&p);
        assert_int_equal(p.serve_rc, CL_EIO);
    }
}

/* A server answering garbage: the client refuses it and marks itself broken. */
static void *garbage_main(void *arg)
{
    int fd = *(int *)arg;
    uint8_t buf[256];
    if (read(fd, buf, sizeof buf) > 0) {
        uint8_t hb[CL_TTRPC_HEADER_LEN];
        struct cl_ttrpc_hdr h = {CL_TTRPC_MAX_PAYLOAD + 5, 1, CL_TTRPC_RESPONSE, 0};
        cl_ttrpc_hdr_encode(&h, hb);
        if (write(fd, hb, sizeof hb) < 0)
            return NULL;
    }
    return NULL;
}

static void test_client_refuses(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, garbage_main, &sv[1]), 0);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(sv[0], NULL);
    cl_bytes *out = NULL;
    size_t n = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_call(c, "s.S", "M", NULL, 0, 2000, &out, &n, &e), CL_ELIMIT);
    assert_int_equal(cl_ttrpc_call(c, "s.S", "M", NULL, 0, 2000, &out, &n, &e), CL_EIO);
    assert_non_null(strstr(e.msg, "broken"));
    pthread_join(th, NULL);
    cl_ttrpc_client_free(c);
    close(sv[1]);
    /* a server that never answers: the call times out */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c = cl_ttrpc_client_from_fd(sv[0], NULL);
    uint64_t t0 = cl_now_mono_ns();
    assert_int_equal(cl_ttrpc_call(c, "s.S", "M", NULL, 0, 200, &out, &n, &e), CL_EIO);
    assert_true(cl_now_mono_ns() - t0 < 5000000000ull);
    assert_non_null(strstr(e.msg, "no answer in time"));
    cl_ttrpc_client_free(c);
    close(sv[1]);
}

/* ---- unix socket server ---- */

static void test_server(void **state)
{
    char dir[] = "/tmp/cl-ttrpc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char addr[300], path[100];
    snprintf(path, sizeof path, "%s/sub/aa.sock", dir);
    snprintf(addr, sizeof addr, "unix://%s", path);
    struct cl_err e = {0};
    struct cl_ttrpc_server *s =
        cl_ttrpc_server_start(addr, methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct cl_ttrpc_client *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = cl_ttrpc_client_connect(addr, &e);
        assert_non_null(c[i]);
    }
    for (int i = 0; i < 3; i++) {
        cl_bytes *out = NULL;
        size_t n = 0;
        assert_int_equal(cl_ttrpc_call(c[i], "test.Svc", "Echo", "abc", 3, 0, &out, &n, &e), 0);
        assert_int_equal(n, 3);
        free(out);
    }
    cl_ttrpc_client_free(c[0]);
    cl_ttrpc_server_stop(s); /* with two clients still connected */
    cl_bytes *out = NULL;
    size_t n = 0;
    assert_int_equal(cl_ttrpc_call(c[1], "test.Svc", "Echo", "abc", 3, 1000, &out, &n, &e), CL_EIO);
    cl_ttrpc_client_free(c[1]);
    cl_ttrpc_client_free(c[2]);
    assert_int_equal(stat(path, &st), -1);
    assert_null(cl_ttrpc_client_connect(addr, &e));
    assert_int_equal(e.code, CL_EIO);
    /* a stale socket is replaced; a regular file in the way is refused */
    s = cl_ttrpc_server_start(path, methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s);
    cl_ttrpc_server_stop(s);
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_null(cl_ttrpc_server_start(path, methods, CL_ARRAY_LEN(methods), NULL, &e));
    assert_int_equal(e.code, CL_EEXISTS);
    unlink(path);
    assert_null(cl_ttrpc_server_start("vsock://1", methods, 1, NULL, &e));
    assert_int_equal(e.code, CL_EINVAL);
    assert_null(cl_ttrpc_server_start("tcp://example.org:1", methods, 1, NULL, &e));
    assert_int_equal(e.code, CL_EINVAL);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    rmdir(sub);
    rmdir(dir);
}

/* ---- concurrent dispatch ---- */

static void test_concurrent_dispatch(void **state)
{
    char msg[512];
    uint32_t stream = 0;
    gate_set(false);
    struct pair p = {0};
    pair_start(&p);
    raw_request(p.cfd, 1, "Block", "slow");
    gate_wait_for(1);
    /* a fast call on the same connection is answered while the slow one blocks */
    raw_request(p.cfd, 3, "Echo", "fast");
    assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 3);
    /* a stream id still in flight cannot be reused */
    raw_request(p.cfd, 1, "Echo", "dup");
    assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_INVALID_ARGUMENT);
    assert_int_equal(stream, 1);
    assert_non_null(strstr(msg, "already in use"));
    gate_set(true);
    assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 1);
    /* twin: once it finished, the id is free again */
    raw_request(p.cfd, 1, "Echo", "again");
    assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 1);
    close(p.cfd);
    pair_join(&p);
    assert_int_equal(p.serve_rc, 0);
}

static void test_inflight_cap(void **state)
{
    char msg[512];
    uint32_t stream = 0;
    gate_set(false);
    struct pair p = {0};
    pair_start(&p);
    for (uint32_t i = 0; i < CL_TTRPC_MAX_INFLIGHT; i++)
        raw_request(p.cfd, 2 * i + 1, "Block", "b");
    gate_wait_for(CL_TTRPC_MAX_INFLIGHT);
    /* the cap is reached: the reader stops reading, this one waits */
    raw_request(p.cfd, 2 * CL_TTRPC_MAX_INFLIGHT + 1, "Echo", "e");
    assert_false(readable(p.cfd, 300));
    gate_set(true);
    bool seen[CL_TTRPC_MAX_INFLIGHT + 1] = {0};
    for (uint32_t i = 0; i <= CL_TTRPC_MAX_INFLIGHT; i++) {
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_OK);
        assert_true(stream % 2 == 1 && stream / 2 <= CL_TTRPC_MAX_INFLIGHT);
        assert_false(seen[stream / 2]);
        seen[stream / 2] = true;
    }
    close(p.cfd);
    pair_join(&p);
    assert_int_equal(p.serve_rc, 0);
}

/* A protocol violation with a handler in flight: the connection ends after it answered. */
static void test_violation_waits(void **state)
{
    char msg[512];
    uint32_t stream = 0;
    gate_set(false);
    struct pair p = {0};
    pair_start(&p);
    raw_request(p.cfd, 5, "Block", "b");
    gate_wait_for(1);
    raw_frame(p.cfd, 0, 7, 9, NULL, 0); /* unknown frame type */
    usleep(200000);
    assert_false(__atomic_load_n(&p.done, __ATOMIC_ACQUIRE));
    gate_set(true);
    assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 5);
    assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), -1);
    close(p.cfd);
    pair_join(&p);
    assert_int_equal(p.serve_rc, CL_EPARSE);
}

static void test_status_codes(void **state)
{
    static const struct {
        int err, status;
    } cases[] = {
        {CL_EDENIED, CL_TTRPC_PERMISSION_DENIED},  {CL_ENOTFOUND, CL_TTRPC_NOT_FOUND},
        {CL_EPARSE, CL_TTRPC_INVALID_ARGUMENT},    {CL_EINVAL, CL_TTRPC_INVALID_ARGUMENT},
        {CL_EUNSUPPORTED, CL_TTRPC_UNIMPLEMENTED}, {CL_ELIMIT, CL_TTRPC_RESOURCE_EXHAUSTED},
        {CL_EEXPIRED, CL_TTRPC_DEADLINE_EXCEEDED}, {CL_EIO, CL_TTRPC_INTERNAL},
        {CL_EVERIFY, CL_TTRPC_INTERNAL},
    };
    struct pair p = {0};
    pair_start(&p);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(p.cfd, NULL);
    assert_non_null(c);
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        uint8_t b = (uint8_t)-cases[i].err;
        cl_bytes *out = NULL;
        size_t n = 0;
        int code = -1;
        cl_str *m = NULL;
        struct cl_err e = {0};
        assert_int_equal(
            cl_ttrpc_call_status(c, "test.Svc", "Code", &b, 1, 0, &out, &n, &code, &m, &e), 0);
        assert_int_equal(code, cases[i].status);
        char want[32];
        snprintf(want, sizeof want, "code %d", cases[i].err);
        assert_string_equal(m, want);
        free(m);
        free(out);
    }
    /* twin: OK through the same path */
    cl_bytes *out = NULL;
    size_t n = 0;
    int code = -1;
    cl_str *m = NULL;
    assert_int_equal(
        cl_ttrpc_call_status(c, "test.Svc", "Echo", "ok", 2, 0, &out, &n, &code, &m, NULL), 0);
    assert_int_equal(code, CL_TTRPC_OK);
    assert_string_equal(m, "");
    assert_int_equal(n, 2);
    free(m);
    free(out);
    cl_ttrpc_client_free(c);
    pair_join(&p);
}

/* ---- the multiplexed client ---- */

struct caller {
    struct cl_ttrpc_client *c;
    int id;
    int failures;
    const char *method;
    unsigned timeout_ms;
    int rc;
    struct cl_err e;
    uint64_t took_ns;
};

static void *caller_main(void *arg)
{
    struct caller *k = arg;
    for (int i = 0; i < 20; i++) {
        char req[32];
        const char *method = "Echo";
        if (i % 5 == 4) {
            method = "Sleep";
            snprintf(req, sizeof req, "%d", (k->id + i) % 7);
        } else {
            snprintf(req, sizeof req, "t%d-%d", k->id, i);
        }
        cl_bytes *out = NULL;
        size_t n = 0;
        struct cl_err e = {0};
        if (cl_ttrpc_call(k->c, "test.Svc", method, req, strlen(req), 10000, &out, &n, &e) != 0 ||
            n != strlen(req) || memcmp(out, req, n) != 0)
            k->failures++;
        free(out);
    }
    return NULL;
}

static void test_client_threads(void **state)
{
    struct pair p = {0};
    pair_start(&p);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(p.cfd, NULL);
    assert_non_null(c);
    enum { N = 32 };
    struct caller k[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        k[i] = (struct caller){.c = c, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, caller_main, &k[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(k[i].failures, 0);
    }
    cl_ttrpc_client_free(c);
    pair_join(&p);
    assert_int_equal(p.serve_rc, 0);
}

static void *one_call_main(void *arg)
{
    struct caller *k = arg;
    cl_bytes *out = NULL;
    size_t n = 0;
    uint64_t t0 = cl_now_mono_ns();
    k->rc =
        cl_ttrpc_call(k->c, "test.Svc", k->method, "blocked", 7, k->timeout_ms, &out, &n, &k->e);
    k->took_ns = cl_now_mono_ns() - t0;
    if (k->rc == 0 && (n != 7 || memcmp(out, "blocked", 7) != 0))
        k->failures++;
    free(out);
    return NULL;
}

static void test_client_out_of_order(void **state)
{
    gate_set(false);
    struct pair p = {0};
    pair_start(&p);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(p.cfd, NULL);
    struct caller k = {.c = c, .method = "Block", .timeout_ms = 10000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, one_call_main, &k), 0);
    gate_wait_for(1);
    /* a call after the blocked one, answered first, routed to its caller */
    cl_bytes *out = NULL;
    size_t n = 0;
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "quick", 5, 5000, &out, &n, NULL), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "quick", 5);
    free(out);
    gate_set(true);
    pthread_join(th, NULL);
    assert_int_equal(k.rc, 0);
    assert_int_equal(k.failures, 0);

    /* an abandoned call: times out, the client stays usable, the late answer is dropped */
    gate_set(false);
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Block", "late", 4, 200, &out, &n, &e), CL_EIO);
    assert_non_null(strstr(e.msg, "no answer in time"));
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "next", 4, 5000, &out, &n, &e), 0);
    assert_memory_equal(out, "next", 4);
    free(out);
    gate_set(true);
    usleep(100000); /* the late answer arrives and is discarded */
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "after", 5, 5000, &out, &n, &e), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "after", 5);
    assert_int_equal(cl_ttrpc_client_last_code(c), CL_TTRPC_OK);
    free(out);
    cl_ttrpc_client_free(c);
    pair_join(&p);
}

/* Reads one frame on the fake server's side: header into h, payload into buf[cap]. */
static bool read_frame(int fd, struct cl_ttrpc_hdr *h, uint8_t *buf, size_t cap)
{
    uint8_t hb[CL_TTRPC_HEADER_LEN];
    size_t got = 0;
    while (got < sizeof hb) {
        ssize_t r = read(fd, hb + got, sizeof hb - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    if (cl_ttrpc_hdr_parse(hb, sizeof hb, h, NULL) < 0 || h->length > cap)
        return false;
    for (got = 0; got < h->length;) {
        ssize_t r = read(fd, buf + got, h->length - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void send_response(int fd, uint32_t stream, uint8_t type, const char *payload)
{
    size_t n = 0;
    cl_bytes *r = cl_ttrpc_response_encode(0, "", payload, strlen(payload), &n, NULL);
    raw_frame(fd, (uint32_t)n, stream, type, r, n);
    free(r);
}

/* Answers the first request after a response on an unknown stream and a data frame on its
 * own; then reads three more requests and hangs up without answering. */
static void *fake_server_main(void *arg)
{
    int fd = *(int *)arg;
    static uint8_t buf[4096];
    struct cl_ttrpc_hdr h;
    if (!read_frame(fd, &h, buf, sizeof buf))
        return NULL;
    send_response(fd, h.stream_id + 100, CL_TTRPC_RESPONSE, "stray");
    send_response(fd, h.stream_id, CL_TTRPC_DATA, "data");
    send_response(fd, h.stream_id, CL_TTRPC_RESPONSE, "right");
    for (int i = 0; i < 3; i++)
        if (!read_frame(fd, &h, buf, sizeof buf))
            return NULL;
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void test_client_routing_and_failure(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pthread_t srv;
    assert_int_equal(pthread_create(&srv, NULL, fake_server_main, &sv[1]), 0);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(sv[0], NULL);
    cl_bytes *out = NULL;
    size_t n = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_ttrpc_call(c, "s.S", "M", NULL, 0, 5000, &out, &n, &e), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "right", 5);
    free(out);
    /* three calls pending when the server hangs up: all fail at once, the client is dead */
    struct caller k[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        k[i] = (struct caller){.c = c, .method = "Echo", .timeout_ms = 20000};
        assert_int_equal(pthread_create(&th[i], NULL, one_call_main, &k[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(k[i].rc, CL_EIO);
        assert_non_null(strstr(k[i].e.msg, "closed the connection"));
        assert_true(k[i].took_ns < 5000000000ull);
    }
    assert_int_equal(cl_ttrpc_call(c, "s.S", "M", NULL, 0, 5000, &out, &n, &e), CL_EIO);
    assert_non_null(strstr(e.msg, "broken"));
    pthread_join(srv, NULL);
    cl_ttrpc_client_free(c);
    close(sv[1]);
}

/* ---- tcp and connect with retries ---- */

static void test_tcp(void **state)
{
    struct cl_err e = {0};
    struct cl_ttrpc_server *s =
        cl_ttrpc_server_start("tcp://127.0.0.1:0", methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s);
    char addr[80];
    snprintf(addr, sizeof addr, "%s", cl_ttrpc_server_address(s));
    assert_non_null(strstr(addr, "tcp://127.0.0.1:"));
    assert_null(strstr(addr, ":0"));
    struct cl_ttrpc_client *c = cl_ttrpc_client_connect(addr, &e);
    assert_non_null(c);
    cl_bytes *out = NULL;
    size_t n = 0;
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "tcp", 3, 5000, &out, &n, &e), 0);
    assert_memory_equal(out, "tcp", 3);
    free(out);
    cl_ttrpc_client_free(c);
    cl_ttrpc_server_stop(s);
    /* IPv6 loopback when the machine has it */
    s = cl_ttrpc_server_start("tcp://[::1]:0", methods, CL_ARRAY_LEN(methods), NULL, &e);
    if (s) {
        c = cl_ttrpc_client_connect(cl_ttrpc_server_address(s), &e);
        assert_non_null(c);
        assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "v6", 2, 5000, &out, &n, &e), 0);
        free(out);
        cl_ttrpc_client_free(c);
        cl_ttrpc_server_stop(s);
    }
    /* twin: nobody listens there any more */
    assert_null(cl_ttrpc_client_connect(addr, &e));
    assert_int_equal(e.code, CL_EIO);
}

struct later {
    char addr[300];
    struct cl_ttrpc_server *s;
};

static void *start_later(void *arg)
{
    struct later *l = arg;
    usleep(300000);
    l->s = cl_ttrpc_server_start(l->addr, methods, CL_ARRAY_LEN(methods), NULL, NULL);
    return NULL;
}

static void test_connect_retry(void **state)
{
    char dir[] = "/tmp/cl-ttrpc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct later l = {0};
    snprintf(l.addr, sizeof l.addr, "unix://%s/late.sock", dir);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, start_later, &l), 0);
    struct cl_err e = {0};
    struct cl_ttrpc_client *c = cl_ttrpc_client_connect_retry(l.addr, 5000, &e);
    pthread_join(th, NULL);
    assert_non_null(l.s);
    assert_non_null(c);
    cl_bytes *out = NULL;
    size_t n = 0;
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "r", 1, 5000, &out, &n, &e), 0);
    free(out);
    cl_ttrpc_client_free(c);
    cl_ttrpc_server_stop(l.s);
    /* twin: nobody ever comes: fails after the deadline, not before */
    uint64_t t0 = cl_now_mono_ns();
    assert_null(cl_ttrpc_client_connect_retry(l.addr, 300, &e));
    uint64_t took = cl_now_mono_ns() - t0;
    assert_int_equal(e.code, CL_EIO);
    assert_true(took >= 280000000ull && took < 3000000000ull);
    /* an address that does not parse fails at once */
    t0 = cl_now_mono_ns();
    assert_null(cl_ttrpc_client_connect_retry("tcp://nowhere:1", 5000, &e));
    assert_int_equal(e.code, CL_EINVAL);
    assert_true(cl_now_mono_ns() - t0 < 1000000000ull);
    rmdir(dir);
}

/* ---- serial: a pty stands for the virtio-serial port ---- */

/* The "host" side of the pty: opening the slave is the host connecting, closing it the host
 * going away (the master then reads EIO and polls POLLHUP, as a virtio port whose host
 * closed reads 0 and polls POLLHUP). */
static int host_open(const char *slave)
{
    int fd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct termios t;
    assert_int_equal(tcgetattr(fd, &t), 0);
    cfmakeraw(&t);
    assert_int_equal(tcsetattr(fd, TCSANOW, &t), 0);
    return fd;
}

static int pty_master(char *slave, size_t cap)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, slave, cap) != 0)
        return -1;
    return m;
}

static void test_serial_reconnect(void **state)
{
    char slave[128], msg[512];
    uint32_t stream = 0;
    int m = pty_master(slave, sizeof slave);
    if (m < 0)
        skip();
    int h = host_open(slave);
    struct cl_err e = {0};
    struct cl_ttrpc_server *s =
        cl_ttrpc_server_start_serial_fd(m, methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s);
    raw_request(h, 1, "Echo", "one");
    assert_int_equal(raw_response(h, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 1);

    /* the host goes away in the middle of a frame; the partial frame is dropped */
    raw_frame(h, 100, 3, CL_TTRPC_REQUEST, "0123456789", 10);
    usleep(100000);
    close(h);
    usleep(300000);
    h = host_open(slave);
    raw_request(h, 5, "Echo", "two");
    assert_int_equal(raw_response(h, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 5);

    /* the host goes away while a handler runs: its answer is not sent to the next session */
    raw_request(h, 7, "Sleep", "400");
    usleep(100000);
    close(h);
    usleep(300000);
    h = host_open(slave);
    raw_request(h, 9, "Echo", "three");
    assert_int_equal(raw_response(h, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 9);
    assert_false(readable(h, 600));

    /* twin: without a hang-up the slow answer does arrive */
    raw_request(h, 11, "Sleep", "100");
    assert_int_equal(raw_response(h, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 11);

    /* a protocol violation: answered, then input is discarded until the host hangs up */
    raw_frame(h, CL_TTRPC_MAX_PAYLOAD + 1, 13, CL_TTRPC_REQUEST, NULL, 0);
    assert_int_equal(raw_response(h, &stream, msg, sizeof msg), CL_TTRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(stream, 13);
    raw_request(h, 15, "Echo", "discarded");
    assert_false(readable(h, 300));
    close(h);
    usleep(300000);
    h = host_open(slave);
    raw_request(h, 17, "Echo", "four");
    assert_int_equal(raw_response(h, &stream, msg, sizeof msg), CL_TTRPC_OK);
    assert_int_equal(stream, 17);
    close(h);
    /* the server stops while the host is away */
    usleep(200000);
    cl_ttrpc_server_stop(s);
}

/* serial:/dev/PATH opens the device itself (here the pty's slave; the test is the host on
 * the master). */
static void test_serial_address(void **state)
{
    char slave[128], addr[160];
    int m = pty_master(slave, sizeof slave);
    if (m < 0)
        skip();
    snprintf(addr, sizeof addr, "serial:%s", slave);
    struct cl_err e = {0};
    struct cl_ttrpc_server *s =
        cl_ttrpc_server_start(addr, methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s);
    assert_string_equal(cl_ttrpc_server_address(s), addr);
    struct cl_ttrpc_client *c = cl_ttrpc_client_from_fd(m, &e);
    cl_bytes *out = NULL;
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            cl_ttrpc_call(c, "test.Svc", "Echo", "\n\r\x03\x04\x7f\x00", 6, 5000, &out, &n, &e), 0);
        assert_int_equal(n, 6);
        assert_memory_equal(out, "\n\r\x03\x04\x7f\x00", 6); /* raw: no byte translated */
        free(out);
    }
    cl_ttrpc_client_free(c);
    cl_ttrpc_server_stop(s);
    /* twin: a device that is not there */
    assert_null(cl_ttrpc_server_start("serial:/dev/cloister-no-such-port", methods, 1, NULL, &e));
    assert_int_equal(e.code, CL_EIO);
    assert_non_null(strstr(e.msg, "/dev/cloister-no-such-port"));
}

/* ---- idle peers ---- */

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Whether the server closed fd within ms (reads EOF; anything else read is a failure). */
static bool closed_within(int fd, int ms)
{
    if (!readable(fd, ms))
        return false;
    char b;
    return read(fd, &b, 1) == 0;
}

static void test_idle_timeout(void **state)
{
    char dir[] = "/tmp/cl-ttrpc-XXXXXX", path[100], msg[512];
    uint32_t stream = 0;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/idle.sock", dir);
    struct cl_err e = {0};
    struct cl_ttrpc_server *s =
        cl_ttrpc_server_start(path, methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s);
    cl_ttrpc_server_set_idle_timeout(s, 300);
    /* silent from the start: closed after the timeout, not before */
    uint64_t t0 = cl_now_mono_ns();
    int quiet = unix_connect(path);
    assert_true(closed_within(quiet, 3000));
    uint64_t took = cl_now_mono_ns() - t0;
    assert_true(took >= 250000000ull && took < 2000000000ull);
    close(quiet);
    /* half a header is not a frame: closed too */
    int partial = unix_connect(path);
    assert_int_equal(write(partial, "\0\0", 2), 2);
    assert_true(closed_within(partial, 3000));
    close(partial);
    /* twin: a connection whose handler runs longer than the timeout is not idle */
    gate_set(false);
    int busy = unix_connect(path);
    raw_request(busy, 1, "Block", "b");
    gate_wait_for(1);
    assert_false(readable(busy, 800));
    gate_set(true);
    assert_int_equal(raw_response(busy, &stream, msg, sizeof msg), CL_TTRPC_OK);
    /* twin: requests every 100 ms keep it open well past the timeout */
    for (uint32_t i = 0; i < 8; i++) {
        usleep(100000);
        raw_request(busy, 3 + 2 * i, "Echo", "k");
        assert_int_equal(raw_response(busy, &stream, msg, sizeof msg), CL_TTRPC_OK);
    }
    /* and once quiet, it goes too */
    assert_true(closed_within(busy, 3000));
    close(busy);
    /* 0 disables the timeout */
    cl_ttrpc_server_set_idle_timeout(s, 0);
    int kept = unix_connect(path);
    assert_false(readable(kept, 600));
    close(kept);
    cl_ttrpc_server_stop(s);
    rmdir(dir);
}

/* The finding: CL_TTRPC_MAX_CONNS idle connections used to lock every other client out. */
static void test_idle_slots_finding(void **state)
{
    char dir[] = "/tmp/cl-ttrpc-XXXXXX", path[100], msg[512];
    uint32_t stream = 0;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/full.sock", dir);
    struct cl_err e = {0};
    struct cl_ttrpc_server *s =
        cl_ttrpc_server_start(path, methods, CL_ARRAY_LEN(methods), NULL, &e);
    assert_non_null(s); /* default idle timeout: far longer than this test */
    int fds[CL_TTRPC_MAX_CONNS];
    for (int i = 0; i < CL_TTRPC_MAX_CONNS; i++) {
        fds[i] = unix_connect(path);
        if (i % 2) { /* half of them made one call before going quiet */
            raw_request(fds[i], 1, "Echo", "x");
            assert_int_equal(raw_response(fds[i], &stream, msg, sizeof msg), CL_TTRPC_OK);
        }
        usleep(2000);
    }
    usleep(200000);
    /* a new client still gets an answer; the longest-idle connection made room */
    struct cl_ttrpc_client *c = cl_ttrpc_client_connect(path, &e);
    assert_non_null(c);
    cl_bytes *out = NULL;
    size_t n = 0;
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "in", 2, 5000, &out, &n, &e), 0);
    free(out);
    assert_true(closed_within(fds[0], 2000));
    for (int i = 1; i < CL_TTRPC_MAX_CONNS; i++)
        assert_false(readable(fds[i], 0));
    cl_ttrpc_client_free(c);
    for (int i = 0; i < CL_TTRPC_MAX_CONNS; i++)
        close(fds[i]);
    usleep(200000);

    /* twin: a table full of connections with handlers running is not evicted; the newcomer
     * is refused and every running call still completes */
    gate_set(false);
    for (int i = 0; i < CL_TTRPC_MAX_CONNS; i++) {
        fds[i] = unix_connect(path);
        raw_request(fds[i], 1, "Block", "b");
    }
    gate_wait_for(CL_TTRPC_MAX_CONNS);
    int late = unix_connect(path);
    assert_true(closed_within(late, 2000));
    close(late);
    gate_set(true);
    for (int i = 0; i < CL_TTRPC_MAX_CONNS; i++) {
        assert_int_equal(raw_response(fds[i], &stream, msg, sizeof msg), CL_TTRPC_OK);
        close(fds[i]);
    }
    cl_ttrpc_server_stop(s);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* raw writes to a server that already hung up */
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_request_codec),
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_client_refuses),
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_concurrent_dispatch),
        cmocka_unit_test(test_inflight_cap),
        cmocka_unit_test(test_violation_waits),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_client_threads),
        cmocka_unit_test(test_client_out_of_order),
        cmocka_unit_test(test_client_routing_and_failure),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_connect_retry),
        cmocka_unit_test(test_serial_reconnect),
        cmocka_unit_test(test_serial_address),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_idle_slots_finding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
