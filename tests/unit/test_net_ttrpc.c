/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc tests: header and envelope codecs (one case per rejection), a server loop driven
 * over a socketpair by the client and by raw frames the client would never send (oversized,
 * malformed, even stream ids, data and response frames from a client, a frame cut short),
 * and the unix-socket server end to end (stale socket, a file in the way, stop).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/ttrpc.h"

/* ---- handlers ---- */

static int h_echo(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    *resp = malloc(len ? len : 1);
    if (!*resp)
        return cl_err_set(err, CL_ENOMEM, "oom");
    if (len)
        memcpy(*resp, req, len);
    *resp_len = len;
    return 0;
}

static int h_fail(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    return cl_err_set(err, CL_EIO, "[ERROR:test] it went wrong");
}

static int h_missing(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                     struct cl_err *err)
{
    return cl_err_set(err, CL_ENOTFOUND, "no such thing");
}

static int h_big(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    *resp = calloc(1, CL_TTRPC_MAX_PAYLOAD);
    *resp_len = CL_TTRPC_MAX_PAYLOAD;
    return *resp ? 0 : cl_err_set(err, CL_ENOMEM, "oom");
}

static const struct cl_ttrpc_method methods[] = {
    {"test.Svc", "Echo", h_echo},
    {"test.Svc", "Fail", h_fail},
    {"test.Svc", "Missing", h_missing},
    {"test.Svc", "Big", h_big},
};

/* ---- a server on one end of a socketpair ---- */

struct pair {
    int cfd, sfd;
    pthread_t th;
    int serve_rc;
};

static void *serve_main(void *arg)
{
    struct pair *p = arg;
    p->serve_rc = cl_ttrpc_serve_fd(p->sfd, methods, CL_ARRAY_LEN(methods), NULL);
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

static void raw_frame(int fd, uint32_t len, uint32_t stream, uint8_t type, const void *payload, size_t plen)
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

/* Reads one response frame; returns its status code and copies the message. */
static int raw_response(int fd, uint32_t *stream, char *msg, size_t msgcap)
{
    uint8_t hb[CL_TTRPC_HEADER_LEN];
    size_t got = 0;
    while (got < sizeof hb) {
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
    char p[CL_TTRPC_MAX_ADDRESS];
    assert_int_equal(cl_ttrpc_address_path("unix:///run/x.sock", p, NULL), 0);
    assert_string_equal(p, "/run/x.sock");
    assert_int_equal(cl_ttrpc_address_path("/run/y.sock", p, NULL), 0);
    assert_string_equal(p, "/run/y.sock");
    assert_int_equal(cl_ttrpc_address_path("unix://rel.sock", p, NULL), 0);
    assert_string_equal(p, "rel.sock");
    assert_int_equal(cl_ttrpc_address_path("vsock://3:1024", p, NULL), CL_EUNSUPPORTED);
    assert_int_equal(cl_ttrpc_address_path("tcp://1.2.3.4:5", p, NULL), CL_EINVAL);
    assert_int_equal(cl_ttrpc_address_path("", p, NULL), CL_EINVAL);
    assert_int_equal(cl_ttrpc_address_path(NULL, p, NULL), CL_EINVAL);
    assert_int_equal(cl_ttrpc_address_path("unix://", p, NULL), CL_EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    assert_int_equal(cl_ttrpc_address_path(longp, p, NULL), CL_EINVAL);
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
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Missing", NULL, 0, 0, &out, &n, &e), CL_ENOTFOUND);
    /* an answer that cannot fit a frame becomes RESOURCE_EXHAUSTED, the connection lives on */
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Big", NULL, 0, 0, &out, &n, &e), CL_EIO);
    assert_int_equal(cl_ttrpc_client_last_code(c), CL_TTRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", "x", 1, 0, &out, &n, &e), 0);
    free(out);
    /* a request that cannot fit is refused before sending */
    uint8_t *huge = calloc(1, CL_TTRPC_MAX_PAYLOAD);
    assert_int_equal(cl_ttrpc_call(c, "test.Svc", "Echo", huge, CL_TTRPC_MAX_PAYLOAD, 0, &out, &n, &e), CL_ELIMIT);
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
        assert_int_equal(raw_response(p.cfd, &stream, msg, sizeof msg), CL_TTRPC_RESOURCE_EXHAUSTED);
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
    struct cl_ttrpc_server *s = cl_ttrpc_server_start(addr, methods, CL_ARRAY_LEN(methods), NULL, &e);
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
    assert_null(cl_ttrpc_server_start("vsock://1:2", methods, 1, NULL, &e));
    assert_int_equal(e.code, CL_EUNSUPPORTED);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* raw writes to a server that already hung up */
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),        cmocka_unit_test(test_request_codec),
        cmocka_unit_test(test_address),       cmocka_unit_test(test_calls),
        cmocka_unit_test(test_bad_frames),    cmocka_unit_test(test_client_refuses),
        cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
