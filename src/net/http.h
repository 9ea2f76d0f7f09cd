/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP server (libmicrohttpd) and client (libcurl).
 *
 * Server: fixed caps on URL and body (414/413 before anything beyond the cap is buffered),
 * a route table of {method, pattern, handler}, and one log line per reply:
 *   peer METHOD path => status (file.c:LINE)
 * where file:LINE is the place in the handler that chose the status (cl_http_reply), or the
 * check in http_server.c that refused the request (400 for an ambiguous framing or a control
 * byte in the URL, 413, 414, 404 without fallback). Requests
 * whose headers do not fit CL_HTTP_CONN_MEMORY, or whose Content-Length is not a number, are
 * refused by microhttpd itself (414/431/413/400, an HTML body, a WARN line instead).
 *
 * Client: one libcurl easy handle per client. A client is NOT thread-safe: use one per thread
 * (a server may call many clients at once).
 */
#ifndef CL_NET_HTTP_H
#define CL_NET_HTTP_H

#include "base/base.h"

#define CL_HTTP_MAX_URL 4096
#define CL_HTTP_MAX_HEADERS 16
#define CL_HTTP_DEFAULT_MAX_BODY (2u * 1024 * 1024)
#define CL_HTTP_MAX_BODY_LIMIT (1024u * 1024 * 1024) /* the largest max_body accepted */
/* Per listening socket: open connections, and open connections from one IP address (kept
 * generous: behind an ingress every guest shares one address). */
#define CL_HTTP_MAX_CONNECTIONS 1024
#define CL_HTTP_MAX_PER_IP 256
/* microhttpd's per-connection buffer for the request line and headers (a request whose
 * headers do not fit is refused by microhttpd itself with 414 or 431). microhttpd zeroes all
 * of it after every request: at 64 KiB that was 1.5 % of a KBS handshake's CPU. 32 KiB holds
 * a bearer token with an x5c chain several times over. */
#define CL_HTTP_CONN_MEMORY (32u * 1024)
/* Default whole-request deadline (see cl_http_server_opts.request_timeout_s). */
#define CL_HTTP_DEFAULT_REQUEST_TIMEOUT_S 30

struct cl_http_req {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* URL path, percent-decoded by microhttpd, without the query */
    const char *peer;    /* "ip:port" */
    const uint8_t *body; /* NUL-terminated copy of the body (NULL when empty) */
    size_t body_len;
    void *impl; /* private to the server */
};

/* Borrowed header value or NULL (case-insensitive name). */
const char *cl_http_req_header(const struct cl_http_req *req, const char *name);
/* Borrowed cookie value or NULL. */
const char *cl_http_req_cookie(const struct cl_http_req *req, const char *name);
/* Borrowed query argument or NULL. */
const char *cl_http_req_query(const struct cl_http_req *req, const char *name);
/* Calls fn for each query argument; returns the count. */
size_t cl_http_req_query_foreach(const struct cl_http_req *req,
                                 void (*fn)(void *ctx, const char *key, const char *val),
                                 void *ctx);

struct cl_http_resp {
    int status;
    cl_str *content_type; /* owned */
    cl_bytes *body;       /* owned */
    size_t body_len;
    size_t nheaders;
    struct {
        cl_str *name, *value;
    } headers[CL_HTTP_MAX_HEADERS];
    const char *file; /* where the status was chosen */
    int line;
};

/* Sets status and a copy of the body; records the caller's file:line for the log line. */
#define cl_http_reply(resp, status, ctype, body, len)                                              \
    cl_http_reply_at((resp), (status), (ctype), (body), (len), __FILE__, __LINE__)
void cl_http_reply_at(struct cl_http_resp *resp, int status, const char *ctype, const void *body,
                      size_t len, const char *file, int line);
/* Adds a response header (copied). Silently ignored beyond CL_HTTP_MAX_HEADERS. */
void cl_http_resp_header(struct cl_http_resp *resp, const char *name, const char *value);

typedef void (*cl_http_handler)(void *ctx, const struct cl_http_req *req,
                                struct cl_http_resp *resp);

/* method: "GET", "POST", ..., or "*" for any. pattern: an exact path, or a prefix ending in
 * '*' (the pattern "/kbs/v0/resource/" followed by '*' matches every path that starts with
 * "/kbs/v0/resource/"). The first route matching both method and path wins; none (also when
 * only the path matched) → fallback, or a 404 JSON body when fallback is NULL. */
struct cl_http_route {
    const char *method;
    const char *pattern;
    cl_http_handler fn;
};

struct cl_http_server_opts {
    const char *const *sockets; /* "ip:port" entries; port 0 picks a free port */
    size_t nsockets;
    size_t max_body;            /* 0 → CL_HTTP_DEFAULT_MAX_BODY; a larger declared
                                   Content-Length is refused with 413 before the body is read;
                                   a chunked body that grows past it gets 413 (or, when it goes
                                   on past 4 × max_body, the connection is closed) */
    unsigned threads;           /* worker threads per socket; 0 → 4 */
    unsigned timeout_s;         /* per-connection idle timeout; 0 → 30 */
    unsigned request_timeout_s; /* whole-request deadline: a request's line, headers and body
                                   must all arrive within it (counted from the connection's
                                   start or the end of the previous reply), and a reply be
                                   read within it; past it the connection is shut down
                                   (the idle timeout alone restarts on every byte, so a
                                   client dripping a header byte at a time would hold its
                                   connection for ever); handler time does not count;
                                   0 → CL_HTTP_DEFAULT_REQUEST_TIMEOUT_S */
    const char *tls_cert_path;  /* PEM chain; NULL with tls_key_path NULL → plain HTTP.
                                   TLS 1.2/1.3 (GnuTLS inside microhttpd) */
    const char *tls_key_path;
    const char *tls_priorities; /* GnuTLS priority string (copied); NULL → TLS 1.2 and 1.3
                                   with GnuTLS's NORMAL set */
    bool lazy_start;            /* the sockets are bound and listening on return, but
                                   microhttpd is loaded and started at the first connection
                                   (a server nobody calls costs no libmicrohttpd/GnuTLS pages);
                                   a failure then is logged and that socket closed; at most
                                   16 sockets (EINVAL beyond) */
};

struct cl_http_server;
/* Starts listening; routes and ctx are borrowed for the server's lifetime. Sockets are
 * numeric "a.b.c.d:port" or "[v6]:port". Handlers run concurrently on the worker threads.
 * Returns new or NULL: EINVAL (bad socket string, incomplete route, half a TLS pair, max_body
 * above CL_HTTP_MAX_BODY_LIMIT), ENOTFOUND/EIO/ELIMIT (TLS files), EUNSUPPORTED (no TLS in
 * microhttpd), EIO naming the socket that could not be bound or served. */
struct cl_http_server *cl_http_server_start(const struct cl_http_server_opts *opts,
                                            const struct cl_http_route *routes, size_t nroutes,
                                            cl_http_handler fallback, void *ctx,
                                            struct cl_err *err);
/* The bound port of socket i (useful with port 0); 0 when i is out of range. */
uint16_t cl_http_server_port(const struct cl_http_server *srv, size_t i);
/* Stops every listener (waits for running handlers) and frees; NULL is fine. */
void cl_http_server_stop(struct cl_http_server *srv);

/* ---- client ---- */

struct cl_http_client_opts {
    long timeout_ms;         /* whole request; 0 → 30000 */
    size_t max_response;     /* response body cap; 0 → 16 MiB; beyond → ELIMIT */
    const char *ca_file;     /* PEM CA bundle for https, or NULL for the system store; when set
                                it replaces the system store (only these CAs are trusted) */
    bool cookies;            /* keep an in-memory cookie jar across requests on this client */
    long connect_timeout_ms; /* connection phase; 0 → libcurl's own (300 s) */
    const char *keep_header; /* name of one response header (any case) whose first value,
                                trimmed, each result carries in `header`; NULL: none */
};

struct cl_http_client;
struct cl_http_client *cl_http_client_new(const struct cl_http_client_opts *opts,
                                          struct cl_err *err);
void cl_http_client_free(struct cl_http_client *c);

struct cl_http_result {
    long status;
    cl_bytes *body; /* owned, NUL-terminated */
    size_t body_len;
    cl_str *content_type; /* owned or NULL */
    cl_str *header;       /* owned or NULL: the value of opts.keep_header, as sent */
};
void cl_http_result_clear(struct cl_http_result *r);

/* headers: NULL-terminated array of "Name: value" strings (may be NULL). The body may be
 * NULL (POST/PUT/PATCH then send an empty body). http and https only; redirects are not
 * followed. Any HTTP status is a success here (check out->status); out is written only on
 * success (clear it with cl_http_result_clear). EINVAL (bad method, a header with CR/LF or no
 * ':'), ELIMIT (response body above max_response), EIO (transport, TLS, timeout). */
CL_MUST_CHECK int cl_http_request(struct cl_http_client *c, const char *method, const char *url,
                                  const char *const *headers, const void *body, size_t body_len,
                                  struct cl_http_result *out, struct cl_err *err);

/* ---- libcurl and libmicrohttpd, opened on first use (net/lazy_curl.c, net/lazy_mhd.c over
 * base/lazy.h) ---- */

/* Neither library is linked: each is opened with dlopen() the first time one of its functions
 * is called, so a process that has not yet made or served a request does not map them (nor
 * GnuTLS, Kerberos, LDAP... behind them). 0 once loaded; EUNSUPPORTED naming the library and
 * the loader's reason when it cannot be (kept for the life of the process; a WARN line says
 * it once). Thread-safe. */
CL_MUST_CHECK int cl_net_curl_load(struct cl_err *err);
CL_MUST_CHECK int cl_net_mhd_load(struct cl_err *err);
/* For tests: the name the next load opens (NULL: libcurl.so.4 / libmicrohttpd.so.12); forgets
 * a failure; a library already loaded stays mapped but is opened again under the new name. */
void cl_net_curl_soname_set(const char *soname);
void cl_net_mhd_soname_set(const char *soname);

#endif
