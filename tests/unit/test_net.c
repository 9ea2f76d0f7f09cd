/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP server and client tests: a real server on 127.0.0.1 with an ephemeral port and a route
 * table, driven by the client (and by raw sockets where the client is too polite: lying
 * Content-Length, chunked uploads, header injection checks). Also the client alone against a
 * tiny raw server (a body with no Content-Length) and against a closed port; the lazy start
 * (microhttpd started by the first connection); and libcurl / libmicrohttpd missing (both are
 * opened on first use): clear errors naming them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "net/http.h"
#include "net/http_stream.h"

#define MAX_BODY (64u * 1024)

/* ---- handlers ---- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_active, g_max_active;

static void h_hello(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    cl_http_reply(resp, 200, "text/plain", "hello", 5);
}

static void h_echo(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    const char *ct = cl_http_req_header(req, "content-type"); /* any case */
    cl_http_reply(resp, 200, ct ? ct : "application/octet-stream", req->body, req->body_len);
    char n[32];
    snprintf(n, sizeof n, "%zu", req->body_len);
    cl_http_resp_header(resp, "X-Len", n);
    /* the body handed to handlers is NUL-terminated */
    if (req->body && req->body[req->body_len] != 0)
        cl_http_reply(resp, 500, NULL, NULL, 0);
}

struct qbuf {
    char s[512];
};

static void q_each(void *ctx, const char *k, const char *v)
{
    struct qbuf *q = ctx;
    size_t o = strlen(q->s);
    snprintf(q->s + o, sizeof q->s - o, "%s=%s;", k, v);
}

static void h_query(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct qbuf q = {{0}};
    size_t n = cl_http_req_query_foreach(req, q_each, &q);
    const char *a = cl_http_req_query(req, "a");
    char out[700];
    int len = snprintf(out, sizeof out, "n=%zu a=%s all=%s", n, a ? a : "(none)", q.s);
    cl_http_reply(resp, 200, "text/plain", out, strnlen(out, (size_t)len));
}

static void h_login(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    cl_http_resp_header(resp, "Set-Cookie", "kbs-session-id=abc123; Path=/");
    cl_http_reply(resp, 200, "application/json", "{}", 2);
}

static void h_cookie(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    const char *c = cl_http_req_cookie(req, "kbs-session-id");
    if (!c) {
        cl_http_reply(resp, 401, "text/plain", "no cookie", 9);
        return;
    }
    cl_http_reply(resp, 200, "text/plain", c, strlen(c));
}

static void h_big(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    uint64_t n = 0;
    const char *q = cl_http_req_query(req, "n");
    if (!q || cl_parse_u64(q, 0, 1u << 20, &n, "n", NULL) < 0) {
        cl_http_reply(resp, 400, "text/plain", "n?", 2);
        return;
    }
    char *b = malloc(n + 1);
    memset(b, 'z', n);
    cl_http_reply(resp, 200, "application/octet-stream", b, n);
    free(b);
}

static void h_any(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    char out[600];
    int len = snprintf(out, sizeof out, "any %s %s", req->method, req->path);
    cl_http_reply(resp, 200, "text/plain", out, strnlen(out, (size_t)len));
}

static void h_nostatus(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp) {}

static void h_headers(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    cl_http_resp_header(resp, "X-Good", "yes");
    cl_http_resp_header(resp, "X-Bad", "a\r\nInjected: 1");
    cl_http_resp_header(resp, "X-Bad2\r\nInjected2", "b");
    cl_http_reply(resp, 204, NULL, NULL, 0);
}

/* Longer than the request deadline of test_request_deadline: handler time is not the peer's. */
static void h_sleep(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct timespec d = {1, 500 * 1000000L};
    nanosleep(&d, NULL);
    cl_http_reply(resp, 200, "text/plain", "slept", 5);
}

static void h_slow(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    pthread_mutex_lock(&g_lock);
    if (++g_active > g_max_active)
        g_max_active = g_active;
    pthread_mutex_unlock(&g_lock);
    struct timespec d = {0, 30 * 1000000L};
    nanosleep(&d, NULL);
    pthread_mutex_lock(&g_lock);
    g_active--;
    pthread_mutex_unlock(&g_lock);
    cl_http_reply(resp, 200, "text/plain", req->peer, strlen(req->peer));
}

static void h_fallback(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    char out[600];
    int len = snprintf(out, sizeof out, "fallback %s %s", req->method, req->path);
    cl_http_reply(resp, 404, "text/plain", out, strnlen(out, (size_t)len));
}

static const struct cl_http_route routes[] = {
    {"GET", "/hello", h_hello},       {"POST", "/echo", h_echo},      {"PUT", "/echo", h_echo},
    {"GET", "/query", h_query},       {"POST", "/login", h_login},    {"GET", "/cookie", h_cookie},
    {"GET", "/big", h_big},           {"*", "/any/*", h_any},         {"GET", "/only-get", h_hello},
    {"GET", "/nostatus", h_nostatus}, {"GET", "/headers", h_headers}, {"GET", "/slow", h_slow},
    {"GET", "/sleep", h_sleep},
};

/* ---- fixture ---- */

struct fx {
    struct cl_http_server *srv;
    uint16_t port;
    char base[64];
    struct cl_http_client *c;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *socks[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {
        .sockets = socks, .nsockets = 1, .max_body = MAX_BODY, .threads = 4, .timeout_s = 2};
    struct cl_err err = {0};
    f->srv = cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err);
    if (!f->srv)
        fail_msg("server: %s", err.msg);
    f->port = cl_http_server_port(f->srv, 0);
    assert_true(f->port > 0);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", f->port);
    struct cl_http_client_opts co = {.timeout_ms = 10000};
    f->c = cl_http_client_new(&co, &err);
    assert_non_null(f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cl_http_client_free(f->c);
    cl_http_server_stop(f->srv);
    free(f);
    return 0;
}

/* One request; returns the result (caller clears) and asserts the transport worked. */
static struct cl_http_result req_ok(struct cl_http_client *c, const char *method, const char *base,
                                    const char *path, const char *const *hdrs, const void *body,
                                    size_t len)
{
    struct cl_http_result r = {0};
    struct cl_err err = {0};
    char *url = cl_strdupf("%s%s", base, path);
    int rc = cl_http_request(c, method, url, hdrs, body, len, &r, &err);
    free(url);
    if (rc < 0)
        fail_msg("%s %s: %s", method, path, err.msg);
    return r;
}

/* Raw exchange: sends req (len bytes, possibly in pieces by the caller), reads until the peer
 * closes or 5 s pass. */
static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early; what it answered is checked after */
        p += w;
        len -= (size_t)w;
    }
}

static char *raw_read_all(int fd)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap)
            break;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = 0;
    close(fd);
    return buf;
}

static char *raw(uint16_t port, const char *req)
{
    int fd = raw_connect(port);
    raw_send(fd, req, strlen(req));
    return raw_read_all(fd);
}

/* stderr captured into a file while fn runs */
struct capture {
    int saved;
    char path[64];
};

static void capture_start(struct capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/cl-net-log-XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stderr);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    size_t len;
    char *s = (char *)cl_file_read(c->path, 1 << 20, &len, NULL);
    unlink(c->path);
    assert_non_null(s);
    return s;
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* ---- tests ---- */

static void test_get_post(void **state)
{
    struct fx *f = *state;
    struct cl_http_result r = req_ok(f->c, "GET", f->base, "/hello", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_string_equal((char *)r.body, "hello");
    assert_string_equal(r.content_type, "text/plain");
    cl_http_result_clear(&r);

    const char *h[] = {"Content-Type: application/json", NULL};
    r = req_ok(f->c, "POST", f->base, "/echo", h, "{\"a\":1}", 7);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "{\"a\":1}");
    assert_string_equal(r.content_type, "application/json");
    cl_http_result_clear(&r);

    /* binary with NULs, and PUT */
    const uint8_t bin[] = {0, 1, 0, 2, 0xff};
    r = req_ok(f->c, "PUT", f->base, "/echo", NULL, bin, sizeof bin);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof bin);
    assert_memory_equal(r.body, bin, sizeof bin);
    cl_http_result_clear(&r);

    /* empty POST */
    r = req_ok(f->c, "POST", f->base, "/echo", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_non_null(r.body);
    assert_int_equal(r.body[0], 0);
    cl_http_result_clear(&r);

    /* prefix route with any method; the path is percent-decoded */
    r = req_ok(f->c, "DELETE", f->base, "/any/x/y%20z", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "any DELETE /any/x/y z");
    cl_http_result_clear(&r);
    r = req_ok(f->c, "POST", f->base, "/any/", NULL, "b", 1);
    assert_string_equal((char *)r.body, "any POST /any/");
    cl_http_result_clear(&r);

    /* one handle, many methods in a row: nothing of one request leaks into the next */
    r = req_ok(f->c, "HEAD", f->base, "/any/h", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    cl_http_result_clear(&r);
    r = req_ok(f->c, "GET", f->base, "/any/g", NULL, NULL, 0);
    assert_string_equal((char *)r.body, "any GET /any/g");
    cl_http_result_clear(&r);
    r = req_ok(f->c, "PATCH", f->base, "/any/p", NULL, NULL, 0);
    assert_string_equal((char *)r.body, "any PATCH /any/p");
    cl_http_result_clear(&r);
    r = req_ok(f->c, "DELETE", f->base, "/echo", NULL, NULL, 0);
    assert_int_equal(r.status, 404); /* DELETE /echo: not routed, no stale POST body sent */
    cl_http_result_clear(&r);
    r = req_ok(f->c, "GET", f->base, "/hello", NULL, NULL, 0);
    assert_string_equal((char *)r.body, "hello");
    cl_http_result_clear(&r);
}

static void test_query_and_headers(void **state)
{
    struct fx *f = *state;
    struct cl_http_result r =
        req_ok(f->c, "GET", f->base, "/query?a=1&b=two%20words&flag", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "n=3 a=1 all=a=1;b=two words;flag=;");
    cl_http_result_clear(&r);
    r = req_ok(f->c, "GET", f->base, "/query", NULL, NULL, 0);
    assert_string_equal((char *)r.body, "n=0 a=(none) all=");
    cl_http_result_clear(&r);

    /* response headers: the good one is sent, CR/LF ones are refused */
    char req[256];
    snprintf(req, sizeof req, "GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char *out = raw(f->port, req);
    assert_non_null(strstr(out, "HTTP/1.1 204"));
    assert_non_null(strstr(out, "X-Good: yes"));
    assert_null(strstr(out, "Injected"));
    assert_null(strstr(out, "X-Bad"));
    free(out);
}

static void test_cookies(void **state)
{
    struct fx *f = *state;
    struct cl_err err = {0};
    /* a client with a jar keeps the session cookie */
    struct cl_http_client_opts co = {.cookies = true};
    struct cl_http_client *jar = cl_http_client_new(&co, &err);
    assert_non_null(jar);
    struct cl_http_result r = req_ok(jar, "GET", f->base, "/cookie", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    cl_http_result_clear(&r);
    r = req_ok(jar, "POST", f->base, "/login", NULL, "{}", 2);
    assert_int_equal(r.status, 200);
    cl_http_result_clear(&r);
    r = req_ok(jar, "GET", f->base, "/cookie", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "abc123");
    cl_http_result_clear(&r);
    cl_http_client_free(jar);

    /* one without a jar does not */
    r = req_ok(f->c, "POST", f->base, "/login", NULL, "{}", 2);
    cl_http_result_clear(&r);
    r = req_ok(f->c, "GET", f->base, "/cookie", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    cl_http_result_clear(&r);
    /* a Cookie header set by hand reaches the server's cookie parser */
    const char *h[] = {"Cookie: other=1; kbs-session-id=handmade", NULL};
    r = req_ok(f->c, "GET", f->base, "/cookie", h, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "handmade");
    cl_http_result_clear(&r);
}

static void test_body_cap(void **state)
{
    struct fx *f = *state;
    uint8_t *b = malloc(MAX_BODY + 1);
    memset(b, 'q', MAX_BODY + 1);
    struct cl_http_result r = req_ok(f->c, "POST", f->base, "/echo", NULL, b, MAX_BODY);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, MAX_BODY);
    cl_http_result_clear(&r);

    struct capture cap;
    capture_start(&cap);
    r = req_ok(f->c, "POST", f->base, "/echo", NULL, b, MAX_BODY + 1);
    char *log = capture_end(&cap);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr((char *)r.body, "\"type\":\"PayloadTooLarge\""));
    assert_string_equal(r.content_type, "application/json");
    cl_http_result_clear(&r);
    /* the log line names the check in the server, not a handler */
    assert_non_null(strstr(log, " POST /echo => 413 (http_server.c:"));
    free(log);
    free(b);

    /* the server still works on the same client afterwards */
    r = req_ok(f->c, "GET", f->base, "/hello", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cl_http_result_clear(&r);
}

static void test_content_length_lies(void **state)
{
    struct fx *f = *state;
    /* a huge declared length is refused at once, before any body byte is sent */
    uint64_t t0 = cl_now_mono_ns();
    char *out = raw(f->port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    assert_non_null(strstr(out, "PayloadTooLarge"));
    assert_true(cl_now_mono_ns() - t0 < 4000000000ull);
    free(out);

    /* an absurd one too */
    out = raw(f->port,
              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    assert_true(strstr(out, "HTTP/1.1 413") || strstr(out, "HTTP/1.1 400"));
    free(out);

    /* declared shorter than sent: only the declared bytes are the body; the rest is a
     * (malformed) next request, which is not handed to a handler */
    out = raw(f->port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello world");
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "X-Len: 5"));
    assert_non_null(strstr(out, "\r\n\r\nhello"));
    free(out);

    /* declared longer than sent: the server waits, then times out without a handler call */
    int fd = raw_connect(f->port);
    raw_send(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nshort", 57);
    shutdown(fd, SHUT_WR);
    out = raw_read_all(fd);
    assert_null(strstr(out, "HTTP/1.1 200"));
    free(out);
}

static int count_responses(const char *out)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, "\r\nContent-Length: ")) != NULL; p += 4)
        n++; /* microhttpd sends one per response; no body here holds one */
    return n;
}

/* Framings that hide a second request (RFC 9112 6.1, 6.3, 2.2, 5): each is answered 400 and
 * the connection closed, so the GET /hello that follows it on the connection is never
 * served. The twins below are the same requests written correctly: both answered. */
static void test_framing(void **state)
{
    struct fx *f = *state;
    static const char hidden[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    char chunked[128];
    snprintf(chunked, sizeof chunked, "%zx\r\n%s\r\n0\r\n\r\n", strlen(hidden), hidden);
    struct {
        const char *name, *head; /* the body that follows is `hidden`, raw or chunked */
        bool chunk;
    } bad[] = {
        {"two Content-Length",
         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
         "Content-Length: 32\r\n\r\n",
         false},
        {"equal Content-Length twice",
         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
         "Content-Length: 0\r\n\r\n",
         false},
        {"Content-Length and chunked",
         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         true},
        {"space before the colon",
         "POST /echo HTTP/1.1\r\nHost: x\r\n"
         "Transfer-Encoding : chunked\r\n\r\n",
         true},
        {"a coding before chunked",
         "POST /echo HTTP/1.1\r\nHost: x\r\n"
         "Transfer-Encoding: identity, chunked\r\n\r\n",
         true},
        {"two Transfer-Encoding",
         "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         true},
        {"bare CR", "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: a\rTransfer-Encoding: chunked\r\n\r\n",
         true},
        {"bare LF", "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: a\nContent-Length: 0\r\n\r\n", false},
        {"bare LF after the request line", "POST /echo HTTP/1.1\nHost: x\r\n\r\n", false},
        {"obs-fold", "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", false},
        {"control byte in a value", "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", false},
        {"NUL in a path", "POST /echo%00.txt HTTP/1.1\r\nHost: x\r\n\r\n", false},
        {"LF in a path", "POST /any/x%0Ay HTTP/1.1\r\nHost: x\r\n\r\n", false},
        {"DEL in a path", "POST /any/x%7fy HTTP/1.1\r\nHost: x\r\n\r\n", false},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        char req[512];
        snprintf(req, sizeof req, "%s%s", bad[i].head, bad[i].chunk ? chunked : hidden);
        char *out = raw(f->port, req);
        if (strncmp(out, "HTTP/1.1 400", 12) != 0 || count_responses(out) != 1)
            fail_msg("%s: answered %s", bad[i].name, out);
        free(out);
    }
    /* a NUL inside a header value, sent as bytes (strlen would stop at it) */
    static const char nul_req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n"
                                  "Content-Length: 0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = raw_connect(f->port);
    raw_send(fd, nul_req, sizeof nul_req - 1);
    char *out = raw_read_all(fd);
    assert_int_equal(strncmp(out, "HTTP/1.1 400", 12), 0);
    assert_int_equal(count_responses(out), 1);
    free(out);

    /* twins: the same shapes, well framed, are served (and pipelining still works) */
    char req[512];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-A: a \t\r\n\r\n%s"
             "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             chunked);
    out = raw(f->port, req);
    assert_int_equal(strncmp(out, "HTTP/1.1 200", 12), 0);
    assert_int_equal(count_responses(out), 2);
    char xlen[32];
    snprintf(xlen, sizeof xlen, "X-Len: %zu", strlen(hidden));
    assert_non_null(strstr(out, xlen));
    assert_true(strlen(out) > 5 && strcmp(out + strlen(out) - 5, "hello") == 0);
    free(out);
    out = raw(f->port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nCookie: a=b; c=d\r\n"
                       "X-Tab: a\tb\r\n\r\nhiGET /hello HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(out, "X-Len: 2"));
    assert_int_equal(count_responses(out), 2);
    assert_true(strlen(out) > 5 && strcmp(out + strlen(out) - 5, "hello") == 0);
    free(out);
}

/* A client dripping its request a byte at a time (each byte well within the idle timeout)
 * loses its connection at the whole-request deadline; a whole request is served, also when
 * its handler outlasts the deadline, and a kept-alive connection gets a new deadline per
 * request. */
static void test_request_deadline(void **state)
{
    (void)state;
    const char *socks[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {
        .sockets = socks, .nsockets = 1, .threads = 2, .timeout_s = 10, .request_timeout_s = 1};
    struct cl_err err = {0};
    struct cl_http_server *srv =
        cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err);
    if (!srv)
        fail_msg("server: %s", err.msg);
    uint16_t port = cl_http_server_port(srv, 0);

    static const char req[] =
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-Drip: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int fd = raw_connect(port);
    uint64_t t0 = cl_now_mono_ns();
    bool closed = false;
    for (size_t i = 0; i < sizeof req - 1 && !closed; i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
            closed = true;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 250) > 0) {
            char c;
            closed = recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
        }
    }
    uint64_t ms = (cl_now_mono_ns() - t0) / 1000000u;
    close(fd);
    if (!closed || ms > 3500)
        fail_msg("dripping client: %s after %llu ms", closed ? "closed" : "still open",
                 (unsigned long long)ms);

    /* twins: a whole request, a handler longer than the deadline, two requests kept alive
     * with a pause between them shorter than the deadline */
    char *out = raw(port, "GET /sleep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "slept"));
    free(out);
    fd = raw_connect(port);
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    struct timespec d = {0, 600 * 1000000L};
    nanosleep(&d, NULL);
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 51);
    out = raw_read_all(fd);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(strstr(out, "HTTP/1.1 200") + 1, "HTTP/1.1 200"));
    free(out);
    cl_http_server_stop(srv);
}

static void send_chunks(int fd, size_t total, size_t chunk)
{
    char *c = malloc(chunk);
    memset(c, 'c', chunk);
    char hdr[32];
    for (size_t sent = 0; sent < total; sent += chunk) {
        size_t n = total - sent < chunk ? total - sent : chunk;
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        raw_send(fd, hdr, (size_t)hl);
        raw_send(fd, c, n);
        raw_send(fd, "\r\n", 2);
    }
    raw_send(fd, "0\r\n\r\n", 5);
    free(c);
}

static void test_chunked(void **state)
{
    struct fx *f = *state;
    const char *hdr =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    /* within the cap */
    int fd = raw_connect(f->port);
    raw_send(fd, hdr, strlen(hdr));
    send_chunks(fd, MAX_BODY, 1000);
    char *out = raw_read_all(fd);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    char want[32];
    snprintf(want, sizeof want, "X-Len: %u", MAX_BODY);
    assert_non_null(strstr(out, want));
    free(out);

    /* one byte over */
    fd = raw_connect(f->port);
    raw_send(fd, hdr, strlen(hdr));
    send_chunks(fd, MAX_BODY + 1, 1000);
    out = raw_read_all(fd);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    free(out);

    /* far over (the server stops reading long before the end) */
    fd = raw_connect(f->port);
    raw_send(fd, hdr, strlen(hdr));
    send_chunks(fd, 8 * MAX_BODY, 4096);
    out = raw_read_all(fd);
    assert_true(out[0] == 0 || strstr(out, "HTTP/1.1 413"));
    free(out);
}

static void test_url_cap(void **state)
{
    struct fx *f = *state;
    /* at the cap: accepted ("GET " + URL within CL_HTTP_MAX_URL) */
    size_t n = CL_HTTP_MAX_URL - strlen("/query?a=");
    char *path = malloc(CL_HTTP_MAX_URL * 20);
    int len = snprintf(path, CL_HTTP_MAX_URL, "/query?a=");
    memset(path + len, 'u', n);
    path[len + n] = 0;
    assert_int_equal(strlen(path), CL_HTTP_MAX_URL);
    struct cl_http_result r = req_ok(f->c, "GET", f->base, path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cl_http_result_clear(&r);

    /* one over */
    strcat(path, "u");
    struct capture cap;
    capture_start(&cap);
    r = req_ok(f->c, "GET", f->base, path, NULL, NULL, 0);
    char *log = capture_end(&cap);
    assert_int_equal(r.status, 414);
    assert_non_null(strstr((char *)r.body, "UriTooLong"));
    cl_http_result_clear(&r);
    assert_non_null(strstr(log, "=> 414 (http_server.c:"));
    free(log);

    /* far over, beyond microhttpd's header buffer: refused by microhttpd itself */
    memset(path + len, 'u', CL_HTTP_MAX_URL * 19);
    path[len + CL_HTTP_MAX_URL * 19] = 0;
    r = req_ok(f->c, "GET", f->base, path, NULL, NULL, 0);
    assert_int_equal(r.status, 414);
    cl_http_result_clear(&r);
    free(path);
}

/* Headers up to most of CL_HTTP_CONN_MEMORY are served (a bearer token with a certificate
 * chain is a few KiB); past it microhttpd answers 431 and the connection pool stays sound. */
static void test_header_cap(void **state)
{
    struct fx *f = *state;
    size_t sizes[] = {8 * 1024, CL_HTTP_CONN_MEMORY - 2048, CL_HTTP_CONN_MEMORY + 1024};
    int want[] = {200, 200, 431};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *h = malloc(sizes[i] + 16);
        memcpy(h, "X-Big: ", 7);
        memset(h + 7, 'h', sizes[i]);
        h[7 + sizes[i]] = 0;
        const char *hdrs[] = {h, NULL};
        struct cl_http_result r = req_ok(f->c, "GET", f->base, "/query?a=1", hdrs, NULL, 0);
        if (r.status != want[i])
            fail_msg("%zu-byte header: status %d, want %d", sizes[i], r.status, want[i]);
        cl_http_result_clear(&r);
        free(h);
    }
    struct cl_http_result r = req_ok(f->c, "GET", f->base, "/query?a=1", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cl_http_result_clear(&r);
}

static void test_routes_fallback(void **state)
{
    struct fx *f = *state;
    struct cl_http_result r = req_ok(f->c, "GET", f->base, "/nope", NULL, NULL, 0);
    assert_int_equal(r.status, 404);
    assert_string_equal((char *)r.body, "fallback GET /nope");
    cl_http_result_clear(&r);
    /* path matches, method does not: the fallback decides, not a 405 */
    r = req_ok(f->c, "POST", f->base, "/only-get", NULL, "x", 1);
    assert_int_equal(r.status, 404);
    assert_string_equal((char *)r.body, "fallback POST /only-get");
    cl_http_result_clear(&r);
    /* exact patterns do not match longer paths */
    r = req_ok(f->c, "GET", f->base, "/hello/x", NULL, NULL, 0);
    assert_string_equal((char *)r.body, "fallback GET /hello/x");
    cl_http_result_clear(&r);
    /* a handler that chooses no status gives 500 */
    r = req_ok(f->c, "GET", f->base, "/nostatus", NULL, NULL, 0);
    assert_int_equal(r.status, 500);
    cl_http_result_clear(&r);

    /* no fallback: 404 JSON */
    const char *socks[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {.sockets = socks, .nsockets = 1};
    struct cl_err err = {0};
    struct cl_http_server *s2 = cl_http_server_start(&o, routes, 1, NULL, NULL, &err);
    assert_non_null(s2);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", cl_http_server_port(s2, 0));
    r = req_ok(f->c, "GET", base, "/hello", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cl_http_result_clear(&r);
    r = req_ok(f->c, "GET", base, "/echo", NULL, NULL, 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(strstr((char *)r.body, "\"type\":\"NotFound\""));
    cl_http_result_clear(&r);
    cl_http_server_stop(s2);
}

static void test_log_line(void **state)
{
    struct fx *f = *state;
    struct capture cap;
    capture_start(&cap);
    struct cl_http_result r = req_ok(f->c, "GET", f->base, "/hello", NULL, NULL, 0);
    cl_http_result_clear(&r);
    r = req_ok(f->c, "GET", f->base, "/any/%0aINFO%20forged", NULL, NULL, 0);
    assert_int_equal(r.status, 400); /* refused at the door: a control byte in the URL */
    cl_http_result_clear(&r);
    char *log = capture_end(&cap);
    /* peer METHOD path => status (file.c:LINE), the place being the handler's cl_http_reply */
    char want[128];
    snprintf(want, sizeof want, " GET /hello => 200 (test_net.c:");
    assert_non_null(strstr(log, want));
    assert_non_null(strstr(log, "127.0.0.1:"));
    /* a newline in the path cannot forge a log line */
    assert_non_null(strstr(log, "GET /any/\\x0aINFO forged => 400 (http_server.c:"));
    assert_null(strstr(log, "\nINFO forged"));
    free(log);
}

struct cworker {
    const char *base;
    int failures;
};

static void *cworker_fn(void *arg)
{
    struct cworker *w = arg;
    struct cl_http_client *c = cl_http_client_new(NULL, NULL);
    if (!c) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < 10; i++) {
        struct cl_http_result r = {0};
        /* a new connection each time, so that microhttpd spreads them over its workers */
        const char *close_hdr[] = {"Connection: close", NULL};
        char *url = cl_strdupf("%s/slow", w->base);
        if (cl_http_request(c, "GET", url, close_hdr, NULL, 0, &r, NULL) < 0 || r.status != 200)
            w->failures++;
        cl_http_result_clear(&r);
        free(url);
        char body[64];
        int bl = snprintf(body, sizeof body, "body-%d-%p", i, (void *)w);
        url = cl_strdupf("%s/echo", w->base);
        if (cl_http_request(c, "POST", url, NULL, body, (size_t)bl, &r, NULL) < 0 ||
            r.status != 200 || r.body_len != (size_t)bl || memcmp(r.body, body, (size_t)bl) != 0)
            w->failures++;
        cl_http_result_clear(&r);
        free(url);
    }
    cl_http_client_free(c);
    return NULL;
}

static void test_concurrent(void **state)
{
    struct fx *f = *state;
    enum { N = 8 };
    pthread_t th[N];
    struct cworker w[N];
    g_max_active = 0;
    for (int i = 0; i < N; i++) {
        w[i] = (struct cworker){f->base, 0};
        assert_int_equal(pthread_create(&th[i], NULL, cworker_fn, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    /* handlers did run on several threads at once */
    assert_true(g_max_active > 1);
}

static void test_client_response_cap(void **state)
{
    struct fx *f = *state;
    struct cl_err err = {0};
    struct cl_http_client_opts co = {.max_response = 1000};
    struct cl_http_client *c = cl_http_client_new(&co, &err);
    assert_non_null(c);
    struct cl_http_result r = req_ok(c, "GET", f->base, "/big?n=1000", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000);
    cl_http_result_clear(&r);
    char *url = cl_strdupf("%s/big?n=1001", f->base);
    assert_int_equal(cl_http_request(c, "GET", url, NULL, NULL, 0, &r, &err), CL_ELIMIT);
    assert_null(r.body);
    free(url);
    /* the client is usable after a refusal */
    r = req_ok(c, "GET", f->base, "/hello", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cl_http_result_clear(&r);
    cl_http_client_free(c);
}

/* keep_header: the first value of the one header asked for (any case, trimmed), per request;
 * twins: a header the answer does not carry, and a client that asks for none. */
static void test_client_keep_header(void **state)
{
    struct fx *f = *state;
    struct cl_err err = {0};
    struct cl_http_client_opts co = {.keep_header = "x-good", .connect_timeout_ms = 2000};
    struct cl_http_client *c = cl_http_client_new(&co, &err);
    assert_non_null(c);
    struct cl_http_result r = req_ok(c, "GET", f->base, "/headers", NULL, NULL, 0);
    assert_int_equal(r.status, 204);
    assert_non_null(r.header);
    assert_string_equal(r.header, "yes");
    cl_http_result_clear(&r);
    r = req_ok(c, "GET", f->base, "/hello", NULL, NULL, 0); /* no X-Good: none kept */
    assert_int_equal(r.status, 200);
    assert_null(r.header);
    cl_http_result_clear(&r);
    cl_http_client_free(c);
    c = cl_http_client_new(NULL, &err);
    assert_non_null(c);
    r = req_ok(c, "GET", f->base, "/headers", NULL, NULL, 0);
    assert_null(r.header);
    cl_http_result_clear(&r);
    cl_http_client_free(c);
}

/* A one-shot raw server that answers with a body and no Content-Length (close-delimited), so
 * that only the write callback can enforce the cap. */
struct rawsrv {
    int lfd;
    size_t body_len;
};

static void *rawsrv_fn(void *arg)
{
    struct rawsrv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    (void)r;
    const char *h = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
    raw_send(fd, h, strlen(h));
    char *b = malloc(s->body_len);
    memset(b, 'r', s->body_len);
    raw_send(fd, b, s->body_len);
    free(b);
    close(fd);
    return NULL;
}

static uint16_t listen_any(int *lfd)
{
    *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(*lfd, (struct sockaddr *)&a, &al);
    return ntohs(a.sin_port);
}

static void test_client_cap_no_length(void **state)
{
    (void)state;
    for (int over = 0; over < 2; over++) {
        struct rawsrv s = {0, over ? 5000 : 1000};
        uint16_t port = listen_any(&s.lfd);
        assert_int_equal(listen(s.lfd, 4), 0);
        pthread_t th;
        pthread_create(&th, NULL, rawsrv_fn, &s);
        struct cl_http_client_opts co = {.max_response = 1000};
        struct cl_http_client *c = cl_http_client_new(&co, NULL);
        char *url = cl_strdupf("http://127.0.0.1:%u/", port);
        struct cl_http_result r = {0};
        struct cl_err err = {0};
        int rc = cl_http_request(c, "GET", url, NULL, NULL, 0, &r, &err);
        if (over) {
            assert_int_equal(rc, CL_ELIMIT);
            assert_non_null(strstr(err.msg, "larger than 1000"));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(r.body_len, 1000);
            assert_string_equal(r.content_type, "text/plain");
        }
        cl_http_result_clear(&r);
        free(url);
        cl_http_client_free(c);
        pthread_join(th, NULL);
        close(s.lfd);
    }
}

static void test_client_errors(void **state)
{
    (void)state;
    struct cl_err err = {0};
    struct cl_http_client *c = cl_http_client_new(NULL, &err);
    assert_non_null(c);
    struct cl_http_result r = {0};
    /* connection refused: a port that was bound and released */
    int lfd;
    uint16_t port = listen_any(&lfd);
    close(lfd);
    char *url = cl_strdupf("http://127.0.0.1:%u/x", port);
    assert_int_equal(cl_http_request(c, "GET", url, NULL, NULL, 0, &r, &err), CL_EIO);
    assert_non_null(strstr(err.msg, url));
    free(url);
    /* misuse */
    assert_int_equal(cl_http_request(c, "GE T", "http://127.0.0.1:1/", NULL, NULL, 0, &r, &err),
                     CL_EINVAL);
    assert_int_equal(cl_http_request(c, "", "http://127.0.0.1:1/", NULL, NULL, 0, &r, &err),
                     CL_EINVAL);
    const char *bad[] = {"X-A: 1\r\nX-B: 2", NULL};
    assert_int_equal(cl_http_request(c, "GET", "http://127.0.0.1:1/", bad, NULL, 0, &r, &err),
                     CL_EINVAL);
    const char *nocolon[] = {"X-A 1", NULL};
    assert_int_equal(cl_http_request(c, "GET", "http://127.0.0.1:1/", nocolon, NULL, 0, &r, &err),
                     CL_EINVAL);
    assert_int_equal(cl_http_request(c, "POST", "http://127.0.0.1:1/", NULL, NULL, 5, &r, &err),
                     CL_EINVAL);
    assert_int_equal(cl_http_request(NULL, "GET", "http://127.0.0.1:1/", NULL, NULL, 0, &r, &err),
                     CL_EINVAL);
    /* other schemes are refused by the transport */
    assert_int_equal(cl_http_request(c, "GET", "file:///etc/passwd", NULL, NULL, 0, &r, &err),
                     CL_EIO);
    assert_null(r.body);
    cl_http_client_free(c);
    cl_http_client_free(NULL);
    cl_http_result_clear(NULL);
}

static void test_client_timeout(void **state)
{
    (void)state;
    /* a listener that never answers */
    int lfd;
    uint16_t port = listen_any(&lfd);
    assert_int_equal(listen(lfd, 4), 0);
    struct cl_http_client_opts co = {.timeout_ms = 300};
    struct cl_http_client *c = cl_http_client_new(&co, NULL);
    char *url = cl_strdupf("http://127.0.0.1:%u/", port);
    struct cl_http_result r = {0};
    struct cl_err err = {0};
    uint64_t t0 = cl_now_mono_ns();
    assert_int_equal(cl_http_request(c, "GET", url, NULL, NULL, 0, &r, &err), CL_EIO);
    assert_true(cl_now_mono_ns() - t0 < 3000000000ull);
    free(url);
    cl_http_client_free(c);
    close(lfd);
}

static void test_server_sockets(void **state)
{
    (void)state;
    struct cl_err err = {0};
    static const char *const bad[] = {
        "localhost:80", "1.2.3.4",    "[::1]80", "1.2.3.4:65536", "::1:80",     "1.2.3.4:",
        ":80",          "1.2.3.4:8o", "[::1:80", "[1.2.3.4]:80",  "1.2.3.4:-1", "",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        const char *socks[] = {bad[i]};
        struct cl_http_server_opts o = {.sockets = socks, .nsockets = 1};
        struct cl_http_server *s = cl_http_server_start(&o, routes, 1, NULL, NULL, &err);
        if (s)
            fail_msg("accepted socket \"%s\"", bad[i]);
        assert_int_equal(err.code, CL_EINVAL);
    }
    const char *lo[] = {"127.0.0.1:0"};
    struct cl_http_server_opts huge = {
        .sockets = lo, .nsockets = 1, .max_body = (size_t)CL_HTTP_MAX_BODY_LIMIT + 1};
    assert_null(cl_http_server_start(&huge, routes, 1, NULL, NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);
    struct cl_http_server_opts none = {0};
    assert_null(cl_http_server_start(&none, routes, 1, NULL, NULL, &err));
    const struct cl_http_route incomplete[] = {{"GET", "/x", NULL}};
    const char *one[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o1 = {.sockets = one, .nsockets = 1};
    assert_null(cl_http_server_start(&o1, incomplete, 1, NULL, NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);

    /* several sockets, IPv4 and IPv6 */
    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = v6 >= 0 && bind(v6, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (v6 >= 0)
        close(v6);
    const char *socks[] = {"127.0.0.1:0", "127.0.0.1:0", "[::1]:0"};
    struct cl_http_server_opts o = {.sockets = socks, .nsockets = have_v6 ? 3 : 2};
    struct cl_http_server *s =
        cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), NULL, NULL, &err);
    if (!s)
        fail_msg("start: %s", err.msg);
    struct cl_http_client *c = cl_http_client_new(NULL, NULL);
    for (size_t i = 0; i < o.nsockets; i++) {
        char base[64];
        snprintf(base, sizeof base, i == 2 ? "http://[::1]:%u" : "http://127.0.0.1:%u",
                 cl_http_server_port(s, i));
        struct cl_http_result r = req_ok(c, "GET", base, "/slow", NULL, NULL, 0);
        assert_int_equal(r.status, 200);
        if (i == 2)
            assert_non_null(strstr((char *)r.body, "[::1]:"));
        cl_http_result_clear(&r);
    }
    assert_int_equal(cl_http_server_port(s, 7), 0);
    assert_int_equal(cl_http_server_port(NULL, 0), 0);

    /* a port in use: EIO naming the socket */
    char spec[32];
    snprintf(spec, sizeof spec, "127.0.0.1:%u", cl_http_server_port(s, 0));
    const char *dup_socks[] = {"127.0.0.1:0", spec};
    struct cl_http_server_opts od = {.sockets = dup_socks, .nsockets = 2};
    assert_null(cl_http_server_start(&od, routes, 1, NULL, NULL, &err));
    assert_int_equal(err.code, CL_EIO);
    assert_non_null(strstr(err.msg, spec));

    /* stop releases every socket, also after a failed start */
    int before = count_fds();
    for (int i = 0; i < 3; i++) {
        struct cl_http_server *s3 = cl_http_server_start(&o1, routes, 1, NULL, NULL, &err);
        assert_non_null(s3);
        cl_http_server_stop(s3);
        assert_null(cl_http_server_start(&od, routes, 1, NULL, NULL, &err));
    }
    assert_int_equal(count_fds(), before);

    cl_http_client_free(c);
    cl_http_server_stop(s);
    cl_http_server_stop(NULL);
}

/* ---- TLS (certificate made with the openssl tool; skipped when it is absent) ---- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void test_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/cl-net-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cmd = cl_strdupf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost "
                           "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
                           dir, dir);
    int st = system(cmd);
    free(cmd);
    if (st != 0) {
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        skip();
    }
    char *cert = cl_strdupf("%s/cert.pem", dir), *key = cl_strdupf("%s/key.pem", dir);
    struct cl_err err = {0};
    const char *socks[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {
        .sockets = socks, .nsockets = 1, .tls_cert_path = cert, .tls_key_path = key};
    struct cl_http_server *s =
        cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), NULL, NULL, &err);
    if (!s)
        fail_msg("TLS start: %s", err.msg);
    char base[64];
    snprintf(base, sizeof base, "https://127.0.0.1:%u", cl_http_server_port(s, 0));

    struct cl_http_client_opts co = {.ca_file = cert};
    struct cl_http_client *c = cl_http_client_new(&co, &err);
    struct cl_http_result r = req_ok(c, "POST", base, "/echo", NULL, "over tls", 8);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "over tls");
    cl_http_result_clear(&r);
    cl_http_client_free(c);

    /* without the CA the certificate does not verify */
    c = cl_http_client_new(NULL, &err);
    char *url = cl_strdupf("%s/hello", base);
    assert_int_equal(cl_http_request(c, "GET", url, NULL, NULL, 0, &r, &err), CL_EIO);
    /* plain HTTP to the TLS port is not served */
    char *plain = cl_strdupf("http://127.0.0.1:%u/hello", cl_http_server_port(s, 0));
    int rc = cl_http_request(c, "GET", plain, NULL, NULL, 0, &r, &err);
    assert_true(rc < 0 || r.status != 200);
    cl_http_result_clear(&r);
    free(plain);
    free(url);
    cl_http_client_free(c);
    cl_http_server_stop(s);

    /* half a TLS configuration, a missing file, a key that is not a key */
    struct cl_http_server_opts half = {.sockets = socks, .nsockets = 1, .tls_cert_path = cert};
    assert_null(cl_http_server_start(&half, routes, 1, NULL, NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);
    struct cl_http_server_opts missing = {.sockets = socks,
                                          .nsockets = 1,
                                          .tls_cert_path = cert,
                                          .tls_key_path = "/nonexistent/key.pem"};
    assert_null(cl_http_server_start(&missing, routes, 1, NULL, NULL, &err));
    assert_int_equal(err.code, CL_ENOTFOUND);
    assert_non_null(strstr(err.msg, "private key"));
    struct cl_http_server_opts swapped = {
        .sockets = socks, .nsockets = 1, .tls_cert_path = cert, .tls_key_path = cert};
    int before = count_fds();
    assert_null(cl_http_server_start(&swapped, routes, 1, NULL, NULL, &err));
    assert_int_equal(err.code, CL_EIO);
    assert_int_equal(count_fds(), before);
    free(cert);
    free(key);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* lazy_start: the sockets listen on return and microhttpd starts at each one's first
 * connection; a server nobody called stops cleanly; with libmicrohttpd missing an eager start
 * fails naming it, and a lazy one closes the socket at the first connection and logs why. */
static void test_lazy_start(void **state)
{
    const char *socks[] = {"127.0.0.1:0", "127.0.0.1:0"};
    struct cl_http_server_opts o = {.sockets = socks,
                                    .nsockets = 2,
                                    .max_body = MAX_BODY,
                                    .threads = 1,
                                    .timeout_s = 2,
                                    .lazy_start = true};
    struct cl_err err = {0};
    int before = count_fds();
    struct cl_http_server *idle =
        cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err);
    if (!idle)
        fail_msg("%s", err.msg);
    assert_true(cl_http_server_port(idle, 0) > 0 && cl_http_server_port(idle, 1) > 0);
    cl_http_server_stop(idle);
    assert_int_equal(count_fds(), before);

    struct capture cap;
    capture_start(&cap);
    struct cl_http_server *srv =
        cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err);
    assert_non_null(srv);
    struct cl_http_client_opts co = {.timeout_ms = 10000};
    struct cl_http_client *c = cl_http_client_new(&co, &err);
    assert_non_null(c);
    for (size_t i = 0; i < 2; i++) {
        char base[64];
        snprintf(base, sizeof base, "http://127.0.0.1:%u", cl_http_server_port(srv, i));
        for (int k = 0; k < 2; k++) { /* the first request starts microhttpd, the next finds it */
            struct cl_http_result r = req_ok(c, "GET", base, "/hello", NULL, NULL, 0);
            assert_int_equal(r.status, 200);
            cl_http_result_clear(&r);
        }
    }
    cl_http_client_free(c);
    cl_http_server_stop(srv);
    char *log = capture_end(&cap);
    assert_int_equal(count_fds(), before);
    const char *p = log;
    int started = 0;
    while ((p = strstr(p, "at its first connection"))) {
        started++;
        p++;
    }
    assert_int_equal(started, 2);
    assert_non_null(strstr(log, "microhttpd starts at the first connection"));
    free(log);

    /* libmicrohttpd missing */
    cl_net_mhd_soname_set("libcloister-absent-mhd.so.12");
    struct cl_http_server_opts eager = {.sockets = socks, .nsockets = 1};
    memset(&err, 0, sizeof err);
    assert_null(cl_http_server_start(&eager, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err));
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    assert_non_null(strstr(
        err.msg, "libcloister-absent-mhd.so.12 (libmicrohttpd, the HTTP server) cannot be loaded"));
    assert_int_equal(count_fds(), before);
    assert_int_equal(MHD_is_feature_supported(MHD_FEATURE_TLS),
                     MHD_NO); /* the forwarders fail alike */
    assert_null(MHD_start_daemon(0, 0, NULL, NULL, NULL, NULL, MHD_OPTION_END));
    o.nsockets = 1;
    capture_start(&cap);
    srv = cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err);
    assert_non_null(srv); /* listening: the library is needed at the first connection only */
    char *got = raw(cl_http_server_port(srv, 0), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_string_equal(got, ""); /* closed without an answer */
    free(got);
    cl_http_server_stop(srv);
    log = capture_end(&cap);
    assert_non_null(strstr(log, "libcloister-absent-mhd.so.12"));
    assert_non_null(strstr(log, "this socket is closed"));
    free(log);
    assert_int_equal(count_fds(), before);
    cl_net_mhd_soname_set("libz.so.1"); /* a library, but not microhttpd */
    memset(&err, 0, sizeof err);
    assert_int_equal(cl_net_mhd_load(&err), CL_EUNSUPPORTED);
    assert_non_null(
        strstr(err.msg, "libz.so.1 (libmicrohttpd, the HTTP server) has no MHD_start_daemon_va"));
    cl_net_mhd_soname_set(NULL);
    srv = cl_http_server_start(&eager, routes, CL_ARRAY_LEN(routes), h_fallback, NULL, &err);
    assert_non_null(srv);
    cl_http_server_stop(srv);
}

/* libcurl missing: the client and the stream say so, naming it; the forwarders fail like
 * curl calls do; then the real library again. */
static void test_curl_absent(void **state)
{
    cl_net_curl_soname_set("libcloister-absent-curl.so.4");
    struct cl_err err = {0};
    assert_int_equal(cl_net_curl_load(&err), CL_EUNSUPPORTED);
    assert_non_null(strstr(
        err.msg, "libcloister-absent-curl.so.4 (libcurl, the HTTP client) cannot be loaded"));
    memset(&err, 0, sizeof err);
    assert_null(cl_http_client_new(NULL, &err));
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "http client"));
    assert_non_null(strstr(err.msg, "libcloister-absent-curl.so.4"));
    memset(&err, 0, sizeof err);
    assert_null(cl_http_stream_new(NULL, &err));
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "http stream"));
    assert_null(curl_easy_init());
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_FAILED_INIT);
    assert_int_equal(curl_easy_setopt(NULL, CURLOPT_TIMEOUT_MS, 1L), CURLE_FAILED_INIT);
    assert_non_null(strstr(curl_easy_strerror(CURLE_FAILED_INIT), "libcloister-absent-curl.so.4"));
    curl_slist_free_all(NULL); /* no-op, no crash */
    cl_net_curl_soname_set("libz.so.1");
    memset(&err, 0, sizeof err);
    assert_int_equal(cl_net_curl_load(&err), CL_EUNSUPPORTED);
    assert_non_null(
        strstr(err.msg, "libz.so.1 (libcurl, the HTTP client) has no curl_global_init"));
    cl_net_curl_soname_set(NULL);
    struct cl_http_client *c = cl_http_client_new(NULL, &err);
    if (!c)
        fail_msg("%s", err.msg);
    cl_http_client_free(c);
    struct cl_http_stream *st = cl_http_stream_new(NULL, &err);
    assert_non_null(st);
    cl_http_stream_free(st);
    assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
}

int main(void)
{
    cl_log_set_level(CL_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_length_lies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
        cmocka_unit_test(test_request_deadline),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_response_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_keep_header, setup, teardown),
        cmocka_unit_test(test_client_cap_no_length),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_client_timeout),
        cmocka_unit_test(test_server_sockets),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_lazy_start),
        cmocka_unit_test(test_curl_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
