/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server on libmicrohttpd: one daemon per listening socket, each with its own pool
 * of worker threads polling with epoll. A request goes through these checks before a handler
 * sees it: the raw URL against CL_HTTP_MAX_URL (414); its framing (RFC 9112: one
 * Content-Length or chunked, token header names, no control bytes, CRLF line ends) and the
 * raw URL's control bytes (400, connection closed); the declared Content-Length against
 * max_body (413, answered before one body byte is read), and the bytes actually received
 * against max_body (413 for chunked or lying uploads; nothing past the cap is kept). A
 * whole-request deadline bounds how long a peer may take to send a request or read a reply.
 * Then the route table picks the handler, and one line is logged per reply:
 *   peer METHOD path => status (file.c:LINE)
 * naming the place that chose the status. With lazy_start, the sockets are bound at start and
 * one small thread waits for the first connection on them before microhttpd (opened on first
 * use, net/lazy_mhd.c) is started on each.
 */
#include "net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* TLS 1.2 and 1.3 only (GnuTLS priority string). */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* Certificate chains and keys are small; anything bigger is a wrong path. */
#define MAX_TLS_FILE (1024 * 1024)

struct listener {
    struct MHD_Daemon *d;
    int fd;
    uint16_t port;
    char spec[80]; /* for the messages of a lazy start */
};

/* The lazy-start watcher polls the listening sockets until each has had a connection. Its
 * stack holds the dlopen() of libmicrohttpd and the constructors it runs (GnuTLS): small, but
 * not tiny; only the pages touched are resident. */
#define WATCHER_STACK (256 * 1024)

/* One per open connection, from microhttpd's connection notifications: the deadline by which
 * the peer must have sent a whole request (or read a whole reply). The reaper thread shuts
 * down the socket of a connection past it; microhttpd then sees the end of the stream and
 * closes the connection itself (its CLOSED notification, which frees this, comes before it
 * closes the descriptor, so a shut-down descriptor is never one reused by a new connection). */
struct conn_watch {
    struct conn_watch *prev, *next;
    int fd;
    uint64_t deadline_ns;
    bool busy; /* a handler is running: its time is not the peer's */
    bool shut;
    char peer[INET6_ADDRSTRLEN + 8];
};

struct cl_http_server {
    struct listener *l;
    size_t nl;
    const struct cl_http_route *routes;
    size_t nroutes;
    cl_http_handler fallback;
    void *ctx;
    size_t max_body;
    cl_bytes *cert_pem;
    cl_bytes *key_pem;
    char *tls_priorities; /* owned copy of opts->tls_priorities, or NULL */
    size_t key_len;
    struct cl_http_server_opts opts; /* threads, timeout_s for a lazy start */
    pthread_t watcher;
    bool watching;
    int wake_fd; /* eventfd: stop the watcher */
    /* whole-request deadlines */
    uint64_t request_timeout_ns;
    pthread_mutex_t conn_lock;
    struct conn_watch *conns; /* open connections, under conn_lock */
    pthread_t reaper;
    bool reaping;
    int reaper_wake_fd; /* eventfd: stop the reaper */
};

/* Per-request state, created by the URI callback (which sees the raw URL) and freed when
 * microhttpd reports the request complete. */
struct conn_req {
    struct cl_http_server *srv;
    size_t uri_len;
    const char *uri_bad; /* why the raw URL is refused (a control byte, encoded or not) */
    bool started;
    bool replied;
    bool too_big;
    size_t discarded;
    uint8_t *body;
    size_t len, cap;
    char peer[INET6_ADDRSTRLEN + 8];
};

/* ---- request accessors ---- */

const char *cl_http_req_header(const struct cl_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->impl, MHD_HEADER_KIND, name);
}

const char *cl_http_req_cookie(const struct cl_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->impl, MHD_COOKIE_KIND, name);
}

const char *cl_http_req_query(const struct cl_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->impl, MHD_GET_ARGUMENT_KIND, name);
}

struct query_iter {
    void (*fn)(void *ctx, const char *key, const char *val);
    void *ctx;
};

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct query_iter *it = cls;
    (void)kind;
    if (it->fn)
        it->fn(it->ctx, key, value ? value : "");
    return MHD_YES;
}

size_t cl_http_req_query_foreach(const struct cl_http_req *req,
                                 void (*fn)(void *ctx, const char *key, const char *val), void *ctx)
{
    struct query_iter it = {fn, ctx};
    int n = MHD_get_connection_values(req->impl, MHD_GET_ARGUMENT_KIND, query_cb, &it);
    return n > 0 ? (size_t)n : 0;
}

/* ---- responses ---- */

void cl_http_reply_at(struct cl_http_resp *resp, int status, const char *ctype, const void *body,
                      size_t len, const char *file, int line)
{
    free(resp->content_type);
    free(resp->body);
    resp->content_type = NULL;
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->file = file;
    resp->line = line;
    if (ctype && !(resp->content_type = strdup(ctype)))
        goto oom;
    if (len > 0) {
        if (!body || !(resp->body = malloc(len)))
            goto oom;
        memcpy(resp->body, body, len);
        resp->body_len = len;
    }
    return;
oom:
    free(resp->content_type);
    resp->content_type = NULL;
    resp->status = 500;
    resp->file = __FILE__;
    resp->line = __LINE__;
}

static bool header_text_ok(const char *s)
{
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n')
            return false;
    }
    return true;
}

void cl_http_resp_header(struct cl_http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders >= CL_HTTP_MAX_HEADERS || !name || !value || !*name)
        return;
    /* A CR or LF would split the reply: refuse here rather than rely on the library. */
    if (!header_text_ok(name) || !header_text_ok(value) || strchr(name, ':')) {
        cl_warn("http: response header refused (CR, LF or ':' in the name)");
        return;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    resp->headers[resp->nheaders].name = n;
    resp->headers[resp->nheaders].value = v;
    resp->nheaders++;
}

static void resp_clear(struct cl_http_resp *resp)
{
    free(resp->content_type);
    free(resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    memset(resp, 0, sizeof *resp);
}

/* Copy of an untrusted string cut to fit a log line (the logger escapes control bytes). */
static void log_cut(const char *s, char *out, size_t cap)
{
    size_t n = s ? strnlen(s, cap) : 0;
    if (n >= cap) {
        n = cap - 4;
        memcpy(out + n, "...", 4);
    } else {
        out[n] = '\0';
    }
    memcpy(out, s ? s : "", n);
}

static void log_reply(const struct conn_req *r, const char *method, const char *path, int status,
                      const char *file, int line)
{
    if (cl_log_get_level() < CL_LOG_INFO)
        return;
    char m[40], p[300];
    log_cut(method, m, sizeof m);
    log_cut(path, p, sizeof p);
    cl_log_at(CL_LOG_INFO, file, line, "%s %s %s => %d", r->peer, m, p, status);
}

static enum MHD_Result send_resp_x(struct MHD_Connection *conn, struct conn_req *r,
                                   const char *method, const char *path, struct cl_http_resp *resp,
                                   bool log_failure)
{
    struct MHD_Response *mr;
    if (resp->body_len > 0) {
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body, free);
        if (mr)
            resp->body = NULL; /* microhttpd owns it now */
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        cl_error("http: cannot create a response (out of memory)");
        resp_clear(resp);
        return MHD_NO;
    }
    bool ok = true;
    if (resp->content_type)
        ok = MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type) ==
             MHD_YES;
    for (size_t i = 0; ok && i < resp->nheaders; i++)
        ok = MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value) == MHD_YES;
    enum MHD_Result rc = MHD_NO;
    if (ok)
        rc = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    if (rc == MHD_YES || log_failure)
        log_reply(r, method, path, rc == MHD_YES ? resp->status : 0, resp->file, resp->line);
    r->replied = rc == MHD_YES;
    resp_clear(resp);
    return rc;
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct conn_req *r,
                                 const char *method, const char *path, struct cl_http_resp *resp)
{
    return send_resp_x(conn, r, method, path, resp, true);
}

/* A refusal by this file: small JSON body, file:line of the check that refused. */
static enum MHD_Result refuse_at(struct MHD_Connection *conn, struct conn_req *r,
                                 const char *method, const char *path, int status, const char *type,
                                 const char *detail, bool log_failure, bool close_conn,
                                 const char *file, int line)
{
    struct cl_http_resp resp = {0};
    char body[256];
    int n = snprintf(body, sizeof body, "{\"type\":\"%s\",\"detail\":\"%s\"}", type, detail);
    cl_http_reply_at(&resp, status, "application/json", body, (size_t)n, file, line);
    if (close_conn) /* microhttpd closes the connection after a reply that says so */
        cl_http_resp_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return send_resp_x(conn, r, method, path, &resp, log_failure);
}
#define refuse(conn, r, method, path, status, type, detail)                                        \
    refuse_at((conn), (r), (method), (path), (status), (type), (detail), true, false, __FILE__,    \
              __LINE__)
#define refuse_quiet(conn, r, method, path, status, type, detail)                                  \
    refuse_at((conn), (r), (method), (path), (status), (type), (detail), false, false, __FILE__,   \
              __LINE__)
/* A request whose framing is in doubt: 400, and the connection closed (RFC 9112 6.3), so
 * that nothing after it on the connection is read as another request. */
#define refuse_close(conn, r, method, path, detail)                                                \
    refuse_at((conn), (r), (method), (path), 400, "BadRequest", (detail), true, true, __FILE__,    \
              __LINE__)

/* ---- routing ---- */

static bool route_match(const struct cl_http_route *rt, const char *method, const char *path)
{
    if (strcmp(rt->method, "*") != 0 && strcmp(rt->method, method) != 0)
        return false;
    size_t n = strlen(rt->pattern);
    if (n > 0 && rt->pattern[n - 1] == '*')
        return strncmp(rt->pattern, path, n - 1) == 0;
    return strcmp(rt->pattern, path) == 0;
}

static enum MHD_Result dispatch(struct MHD_Connection *conn, struct conn_req *r, const char *method,
                                const char *path)
{
    struct cl_http_server *srv = r->srv;
    struct cl_http_req req = {
        .method = method,
        .path = path,
        .peer = r->peer,
        .body = r->len ? r->body : NULL,
        .body_len = r->len,
        .impl = conn,
    };
    if (r->body)
        r->body[r->len] = 0;
    cl_http_handler fn = srv->fallback;
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (route_match(&srv->routes[i], method, path)) {
            fn = srv->routes[i].fn;
            break;
        }
    }
    if (!fn)
        return refuse(conn, r, method, path, 404, "NotFound", "no such route");
    struct cl_http_resp resp = {0};
    fn(srv->ctx, &req, &resp);
    if (resp.status < 200 || resp.status > 599) {
        cl_error("http: handler left status %d", resp.status);
        resp_clear(&resp);
        return refuse(conn, r, method, path, 500, "InternalError", "handler chose no status");
    }
    return send_resp(conn, r, method, path, &resp);
}

/* ---- microhttpd callbacks ---- */

static void peer_string(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
            snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
            return;
        }
    }
    snprintf(out, cap, "%s:%u", ip, port);
}

/* The raw URL (before microhttpd decodes it in place): a control byte, or its %-escape, is
 * refused. Decoded, %00 would cut the path short (".../victim%00.txt" naming "victim") and
 * %0a would reach the handlers and their logs. */
static const char *uri_check(const char *uri)
{
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++) {
        if (*p < 0x21 || *p == 0x7f)
            return "control byte in the request URL";
        if (*p == '%' && p[1] && p[2]) {
            int hi = p[1] >= '0' && p[1] <= '9'                     ? p[1] - '0'
                     : (p[1] | 0x20) >= 'a' && (p[1] | 0x20) <= 'f' ? (p[1] | 0x20) - 'a' + 10
                                                                    : -1;
            if (hi == 0 || hi == 1 || (hi == 7 && (p[2] | 0x20) == 'f'))
                return "encoded control byte (%00-%1F, %7F) in the request URL";
        }
    }
    return NULL;
}

/* ---- request framing (RFC 9112): checked once all headers are in, before any body ----
 *
 * microhttpd 0.9 is lenient where a proxy in front of us may not be: it ends a header line at
 * a bare CR or LF, keeps the first of two Content-Length headers, lets a Content-Length stand
 * next to Transfer-Encoding, and reads "Transfer-Encoding :" (space before the colon) as some
 * other header. Each is a way to hide a second request in the body of the first. Headers are
 * walked in the order they arrived; microhttpd keeps them in its read buffer, each line's CR
 * LF overwritten with two NULs, so the distance from the end of one value to the next name
 * tells how the line ended: two NULs for CRLF, anything else is a bare CR or LF, or a NUL in
 * the value. */
struct hdr_scan {
    const char *prev_end; /* one past the previous line in microhttpd's buffer */
    unsigned ncl, nte;
    const char *te;
    const char *why; /* the first problem, and the line of the check that found it */
    int line;
};
#define SCAN_BAD(s, msg) ((s)->why = (msg), (s)->line = __LINE__)

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool line_break_ok(const char *end, const char *next)
{
    if (next < end + 2 || next - end > CL_HTTP_CONN_MEMORY)
        return false;
    for (const char *p = end; p < next - 2; p++) /* trailing whitespace the parser left out */
        if (*p != ' ' && *p != '\t')
            return false;
    return next[-2] == 0 && next[-1] == 0;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct hdr_scan *s = cls;
    (void)kind;
    if (s->why)
        return MHD_NO;
    size_t kl = strlen(key), vl = value ? strlen(value) : 0;
    if (kl == 0)
        SCAN_BAD(s, "empty header name");
    for (size_t i = 0; !s->why && i < kl; i++)
        if (!is_tchar((unsigned char)key[i]))
            SCAN_BAD(s, "header name with a byte outside the token set (a space before ':'?)");
    for (size_t i = 0; !s->why && i < vl; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            SCAN_BAD(s, "control byte in a header value");
    }
    if (!s->why && s->prev_end && !line_break_ok(s->prev_end, key))
        SCAN_BAD(s, "header line not ended by CRLF (bare CR or LF, or a NUL byte)");
    s->prev_end = value ? value + vl : key + kl;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        s->ncl++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        s->nte++;
        s->te = value;
    }
    return s->why ? MHD_NO : MHD_YES;
}

/* NULL when the request's framing is unambiguous, else why not (*line: the check). */
static const char *framing_check(struct MHD_Connection *conn, const char *version, int *line)
{
    struct hdr_scan s = {.prev_end = version ? version + strlen(version) : NULL};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &s);
    if (!s.why && s.ncl > 1)
        SCAN_BAD(&s, "more than one Content-Length header");
    if (!s.why && s.nte > 1)
        SCAN_BAD(&s, "more than one Transfer-Encoding header");
    if (!s.why && s.nte && s.ncl)
        SCAN_BAD(&s, "both Content-Length and Transfer-Encoding");
    if (!s.why && s.nte && strcasecmp(s.te ? s.te : "", "chunked") != 0)
        SCAN_BAD(&s, "Transfer-Encoding other than chunked");
    *line = s.line;
    return s.why;
}

/* ---- whole-request deadlines ---- */

static struct conn_watch *conn_watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* busy: a handler starts (true) or has queued its reply (false, the deadline restarts: the
 * peer has that long to read the reply, then to send its next request). */
static void conn_watch_mark(struct cl_http_server *srv, struct MHD_Connection *conn, bool busy)
{
    struct conn_watch *w = conn_watch_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&srv->conn_lock);
    w->busy = busy;
    w->deadline_ns = cl_now_mono_ns() + srv->request_timeout_ns;
    pthread_mutex_unlock(&srv->conn_lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct cl_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_watch *w = calloc(1, sizeof *w);
        if (!w || !ci) {
            free(w); /* out of memory: this connection has the idle timeout only */
            *socket_context = NULL;
            return;
        }
        w->fd = ci->connect_fd;
        peer_string(conn, w->peer, sizeof w->peer);
        pthread_mutex_lock(&srv->conn_lock);
        w->deadline_ns = cl_now_mono_ns() + srv->request_timeout_ns;
        w->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = w;
        srv->conns = w;
        pthread_mutex_unlock(&srv->conn_lock);
        *socket_context = w;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct conn_watch *w = *socket_context;
        pthread_mutex_lock(&srv->conn_lock);
        if (w->prev)
            w->prev->next = w->next;
        else
            srv->conns = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&srv->conn_lock);
        free(w);
        *socket_context = NULL;
    }
}

static void *reaper_main(void *arg)
{
    struct cl_http_server *srv = arg;
    struct pollfd p = {.fd = srv->reaper_wake_fd, .events = POLLIN};
    for (;;) {
        int rc = poll(&p, 1, 500);
        if (rc > 0)
            return NULL; /* stopping */
        uint64_t now = cl_now_mono_ns();
        pthread_mutex_lock(&srv->conn_lock);
        for (struct conn_watch *w = srv->conns; w; w = w->next) {
            if (w->busy || w->shut || now < w->deadline_ns)
                continue;
            w->shut = true;
            (void)shutdown(w->fd, SHUT_RDWR);
            cl_info("http: %s: no whole request within %llu s: connection closed", w->peer,
                    (unsigned long long)(srv->request_timeout_ns / 1000000000u));
        }
        pthread_mutex_unlock(&srv->conn_lock);
    }
}

static int start_reaper(struct cl_http_server *srv, struct cl_err *err)
{
    srv->reaper_wake_fd = eventfd(0, EFD_CLOEXEC);
    if (srv->reaper_wake_fd < 0)
        return cl_err_set(err, CL_EIO, "http server: eventfd: %s", strerror(errno));
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    int rc = pthread_create(&srv->reaper, &a, reaper_main, srv);
    pthread_attr_destroy(&a);
    if (rc != 0)
        return cl_err_set(err, CL_EIO, "http server: cannot start the deadline thread: %s",
                          strerror(rc));
    srv->reaping = true;
    return 0;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct conn_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = cls;
    r->uri_len = strlen(uri);
    r->uri_bad = uri_check(uri);
    /* the connection's watch has the peer formatted once, at connect */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const struct conn_watch *w = ci ? ci->socket_context : NULL;
    _Static_assert(sizeof r->peer == sizeof w->peer, "peer strings of one size");
    if (w)
        memcpy(r->peer, w->peer, sizeof r->peer);
    else
        peer_string(conn, r->peer, sizeof r->peer);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    conn_watch_mark(cls, conn, false); /* the next request's time starts now */
    struct conn_req *r = *req_cls;
    if (r) {
        free(r->body);
        free(r);
        *req_cls = NULL;
    }
}

/* Keeps the body, growing the buffer geometrically but never past max_body (+1 for a NUL).
 * 0, CL_ELIMIT past the cap, CL_ENOMEM. */
static int body_append(struct conn_req *r, const char *data, size_t n)
{
    size_t max = r->srv->max_body;
    if (n > max - r->len)
        return CL_ELIMIT;
    if (n > r->cap - r->len) {
        size_t ncap = r->cap ? r->cap : 4096;
        while (ncap - r->len < n)
            ncap = ncap > max / 2 ? max : ncap * 2;
        if (ncap > max)
            ncap = max;
        uint8_t *nb = realloc(r->body, ncap + 1);
        if (!nb)
            return CL_ENOMEM;
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    struct conn_req *r = *req_cls;
    if (!r)
        return MHD_NO; /* out of memory in on_uri: drop the connection */
    if (r->replied) {
        /* A refusal is queued; whatever body still arrives is thrown away, up to a bound. */
        r->discarded += *upload_data_size;
        *upload_data_size = 0;
        return r->discarded / 4 > r->srv->max_body ? MHD_NO : MHD_YES;
    }

    /* ---- first call: headers only ---- */
    if (!r->started) {
        r->started = true;
        if (r->uri_len > CL_HTTP_MAX_URL)
            return refuse(conn, r, method, url, 414, "UriTooLong", "request URL too long");
        int line = 0;
        const char *bad = framing_check(conn, version, &line);
        if (bad) /* logged with the line of the check that refused */
            return refuse_at(conn, r, method, url, 400, "BadRequest", bad, true, true, __FILE__,
                             line);
        if (r->uri_bad)
            return refuse_close(conn, r, method, url, r->uri_bad);
        const char *clen =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t declared = 0;
        if (clen && cl_parse_u64(clen, 0, UINT64_MAX, &declared, "Content-Length", NULL) == 0 &&
            declared > r->srv->max_body)
            return refuse(conn, r, method, url, 413, "PayloadTooLarge", "request body too large");
        return MHD_YES;
    }

    /* ---- body chunks ---- */
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!r->too_big) {
            int ar = body_append(r, upload_data, n);
            if (ar == 0)
                return MHD_YES;
            if (ar == CL_ENOMEM) {
                cl_error("http: %s: out of memory for the request body", r->peer);
                return MHD_NO;
            }
            r->too_big = true;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            /* Answer now when microhttpd lets us (it may refuse a reply in the middle of a
             * body); otherwise drain, bounded, and answer when the body ends. */
            if (refuse_quiet(conn, r, method, url, 413, "PayloadTooLarge",
                             "request body too large") == MHD_YES)
                return MHD_YES;
        }
        r->discarded += n;
        if (r->discarded / 4 > r->srv->max_body) {
            log_reply(r, method, url, 413, __FILE__, __LINE__);
            return MHD_NO; /* a peer that will not stop: close the connection */
        }
        return MHD_YES;
    }

    /* ---- whole request received ---- */
    if (r->too_big)
        return refuse(conn, r, method, url, 413, "PayloadTooLarge", "request body too large");
    conn_watch_mark(r->srv, conn, true);
    enum MHD_Result rc = dispatch(conn, r, method, url);
    conn_watch_mark(r->srv, conn, false);
    return rc;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(msg, sizeof msg, fmt, ap);
#pragma GCC diagnostic pop
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    cl_warn("microhttpd: %s", msg);
}

/* ---- sockets ---- */

/* "ip:port" or "[ipv6]:port", numeric only. */
static int parse_socket(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen,
                        struct cl_err *err)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s;
    if (spec[0] == '[') {
        const char *close_b = strchr(spec, ']');
        if (!close_b || close_b[1] != ':' || (size_t)(close_b - spec - 1) >= sizeof host)
            return cl_err_set(err, CL_EINVAL, "http socket \"%s\": expected [ipv6]:port", spec);
        memcpy(host, spec + 1, (size_t)(close_b - spec - 1));
        host[close_b - spec - 1] = '\0';
        port_s = close_b + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host)
            return cl_err_set(err, CL_EINVAL, "http socket \"%s\": expected ip:port", spec);
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port_s = colon + 1;
    }
    uint64_t port;
    struct cl_err perr = {0};
    if (cl_parse_u64(port_s, 0, 65535, &port, "port", &perr) < 0)
        return cl_err_set(err, CL_EINVAL, "http socket \"%s\": %s", spec, perr.msg);
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1 && spec[0] != '[') {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *sslen = sizeof *in;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 && spec[0] == '[') {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *in6;
    } else {
        return cl_err_set(err, CL_EINVAL,
                          "http socket \"%s\": \"%s\" is not a numeric IPv4 address "
                          "or a bracketed IPv6 address",
                          spec, host);
    }
    return 0;
}

static int bind_socket(const char *spec, int *fd_out, uint16_t *port_out, struct cl_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rc = parse_socket(spec, &ss, &sslen, err);
    if (rc < 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "http socket %s: %s", spec, strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 128) < 0) {
        rc = cl_err_set(err, CL_EIO, "http socket %s: %s", spec, strerror(errno));
        close(fd);
        return rc;
    }
    sslen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        rc = cl_err_set(err, CL_EIO, "http socket %s: getsockname: %s", spec, strerror(errno));
        close(fd);
        return rc;
    }
    *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *fd_out = fd;
    return 0;
}

/* ---- start / stop ---- */

static int load_tls(struct cl_http_server *srv, const struct cl_http_server_opts *o,
                    struct cl_err *err)
{
    if (!o->tls_cert_path && !o->tls_key_path)
        return 0;
    if (!o->tls_cert_path || !o->tls_key_path)
        return cl_err_set(err, CL_EINVAL,
                          "http TLS: both a certificate and a private key are needed");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "http TLS: this libmicrohttpd is built without TLS");
    srv->cert_pem = cl_file_read(o->tls_cert_path, MAX_TLS_FILE, NULL, err);
    if (!srv->cert_pem)
        return cl_err_prefix(err, "http TLS certificate");
    srv->key_pem = cl_file_read(o->tls_key_path, MAX_TLS_FILE, &srv->key_len, err);
    if (!srv->key_pem)
        return cl_err_prefix(err, "http TLS private key");
    if (o->tls_priorities && !(srv->tls_priorities = strdup(o->tls_priorities)))
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return 0;
}

static int start_daemon(struct cl_http_server *srv, struct listener *l, const char *spec,
                        const struct cl_http_server_opts *o, struct cl_err *err)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (srv->cert_pem)
        flags |= MHD_USE_TLS;
    unsigned threads = o->threads ? o->threads : 4;
    unsigned timeout = o->timeout_s ? o->timeout_s : 30;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->key_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0,
         (void *)(uintptr_t)(srv->tls_priorities ? srv->tls_priorities : TLS_PRIORITIES)},
        {MHD_OPTION_END, 0, NULL},
    };
    l->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, srv, MHD_OPTION_LISTEN_SOCKET, l->fd,
                            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
                            timeout, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CL_HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CL_HTTP_MAX_PER_IP,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CL_HTTP_CONN_MEMORY,
                            MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
                            srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_ARRAY,
                            srv->cert_pem ? tls_opts : &tls_opts[3], MHD_OPTION_END);
    if (!l->d) {
        /* Whether microhttpd closed the socket on failure differs between versions. */
        if (fcntl(l->fd, F_GETFD) != -1)
            close(l->fd);
        l->fd = -1;
        return cl_err_set(err, CL_EIO, "http socket %s: microhttpd did not start%s", spec,
                          srv->cert_pem ? " (check the TLS certificate and key)" : "");
    }
    return 0;
}

/* Starts microhttpd on each listener that has a connection waiting; the rest keep waiting. */
static void *watch_main(void *arg)
{
    struct cl_http_server *srv = arg;
    struct pollfd p[16 + 1];
    size_t map[16];
    for (;;) {
        nfds_t n = 0;
        for (size_t i = 0; i < srv->nl && n < 16; i++) {
            if (!srv->l[i].d && srv->l[i].fd >= 0) {
                p[n] = (struct pollfd){.fd = srv->l[i].fd, .events = POLLIN};
                map[n++] = i;
            }
        }
        if (n == 0)
            return NULL;
        p[n] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
        if (poll(p, n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            cl_error("http: waiting for the first connection: %s", strerror(errno));
            return NULL;
        }
        if (p[n].revents)
            return NULL; /* stopping */
        for (nfds_t k = 0; k < n; k++) {
            if (!p[k].revents)
                continue;
            struct listener *l = &srv->l[map[k]];
            struct cl_err e = {0};
            if (cl_net_mhd_load(&e) < 0) {
                cl_error("http socket %s: %s; this socket is closed", l->spec, e.msg);
                close(l->fd);
                l->fd = -1;
            } else if (start_daemon(srv, l, l->spec, &srv->opts, &e) < 0) {
                cl_error("%s; this socket is closed", e.msg); /* start_daemon closed it */
            } else {
                cl_info("http: microhttpd started on %s at its first connection", l->spec);
            }
        }
    }
}

static int start_watcher(struct cl_http_server *srv, struct cl_err *err)
{
    if (srv->nl > 16)
        return cl_err_set(err, CL_EINVAL, "http server: lazy_start takes at most 16 sockets");
    srv->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (srv->wake_fd < 0)
        return cl_err_set(err, CL_EIO, "http server: eventfd: %s", strerror(errno));
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, WATCHER_STACK);
    int rc = pthread_create(&srv->watcher, &a, watch_main, srv);
    pthread_attr_destroy(&a);
    if (rc != 0)
        return cl_err_set(err, CL_EIO, "http server: cannot start the watcher thread: %s",
                          strerror(rc));
    srv->watching = true;
    return 0;
}

struct cl_http_server *cl_http_server_start(const struct cl_http_server_opts *opts,
                                            const struct cl_http_route *routes, size_t nroutes,
                                            cl_http_handler fallback, void *ctx, struct cl_err *err)
{
    if (!opts || !opts->sockets || opts->nsockets == 0) {
        cl_err_set(err, CL_EINVAL, "http server: no sockets to listen on");
        return NULL;
    }
    if (nroutes > 0 && !routes) {
        cl_err_set(err, CL_EINVAL, "http server: routes missing");
        return NULL;
    }
    for (size_t i = 0; i < nroutes; i++) {
        if (!routes[i].method || !routes[i].pattern || !routes[i].fn) {
            cl_err_set(err, CL_EINVAL, "http server: route %zu is incomplete", i);
            return NULL;
        }
    }
    if (opts->max_body > CL_HTTP_MAX_BODY_LIMIT) {
        cl_err_set(err, CL_EINVAL, "http server: max_body %zu is above %u", opts->max_body,
                   CL_HTTP_MAX_BODY_LIMIT);
        return NULL;
    }
    struct cl_http_server *srv = calloc(1, sizeof *srv);
    if (!srv || !(srv->l = calloc(opts->nsockets, sizeof *srv->l))) {
        free(srv);
        cl_err_set(err, CL_ENOMEM, "http server: out of memory");
        return NULL;
    }
    srv->wake_fd = -1;
    srv->reaper_wake_fd = -1;
    pthread_mutex_init(&srv->conn_lock, NULL);
    srv->request_timeout_ns =
        (uint64_t)(opts->request_timeout_s ? opts->request_timeout_s
                                           : CL_HTTP_DEFAULT_REQUEST_TIMEOUT_S) *
        1000000000u;
    srv->opts = *opts;
    srv->routes = routes;
    srv->nroutes = nroutes;
    srv->fallback = fallback;
    srv->ctx = ctx;
    srv->max_body = opts->max_body ? opts->max_body : CL_HTTP_DEFAULT_MAX_BODY;
    /* libmicrohttpd is opened on first use (net/lazy_mhd.c): now, unless the start is lazy */
    if ((!opts->lazy_start || opts->tls_cert_path || opts->tls_key_path) &&
        cl_net_mhd_load(err) < 0)
        goto fail;
    if (load_tls(srv, opts, err) < 0 || start_reaper(srv, err) < 0)
        goto fail;
    for (size_t i = 0; i < opts->nsockets; i++) {
        struct listener *l = &srv->l[i];
        const char *spec = opts->sockets[i] ? opts->sockets[i] : "(null)";
        l->fd = -1;
        if (bind_socket(spec, &l->fd, &l->port, err) < 0)
            goto fail;
        srv->nl = i + 1;
        snprintf(l->spec, sizeof l->spec, "%s", spec);
        if (!opts->lazy_start && start_daemon(srv, l, spec, opts, err) < 0)
            goto fail;
        cl_info("http: listening on %s (port %u%s%s)", spec, l->port, srv->cert_pem ? ", TLS" : "",
                opts->lazy_start ? "; microhttpd starts at the first connection" : "");
    }
    if (opts->lazy_start && start_watcher(srv, err) < 0)
        goto fail;
    return srv;
fail:
    cl_http_server_stop(srv);
    return NULL;
}

uint16_t cl_http_server_port(const struct cl_http_server *srv, size_t i)
{
    return srv && i < srv->nl ? srv->l[i].port : 0;
}

void cl_http_server_stop(struct cl_http_server *srv)
{
    if (!srv)
        return;
    if (srv->watching) {
        uint64_t one = 1;
        if (write(srv->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
            cl_error("http: cannot wake the watcher thread: %s", strerror(errno));
        pthread_join(srv->watcher, NULL);
    }
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    for (size_t i = 0; i < srv->nl; i++) {
        if (srv->l[i].d)
            MHD_stop_daemon(srv->l[i].d); /* closes the listening socket */
        else if (srv->l[i].fd >= 0)
            close(srv->l[i].fd);
    }
    /* after the daemons: their connections are closed, the watch list is empty */
    if (srv->reaping) {
        uint64_t one = 1;
        if (write(srv->reaper_wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
            cl_error("http: cannot wake the deadline thread: %s", strerror(errno));
        pthread_join(srv->reaper, NULL);
    }
    if (srv->reaper_wake_fd >= 0)
        close(srv->reaper_wake_fd);
    pthread_mutex_destroy(&srv->conn_lock);
    free(srv->l);
    free(srv->cert_pem);
    free(srv->tls_priorities);
    if (srv->key_pem)
        cl_free_wipe(srv->key_pem, srv->key_len);
    free(srv);
}
