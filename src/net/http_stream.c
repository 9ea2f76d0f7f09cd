/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming HTTP requests on libcurl (see http_stream.h). One easy handle per request, one
 * share object per cl_http_stream for connections and DNS, so that several threads can fetch
 * blobs at once and still reuse connections. Nothing of a 2xx body is kept here: it goes to
 * the caller's callback as it arrives.
 */
#include "net/http_stream.h"
#include "net/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_LOW_SPEED_TIME_S 30L

struct cl_http_stream {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    char *ca_file;
    long connect_timeout_ms, low_speed_time_s, timeout_ms;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;
static void global_init(void)
{
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    (void)h;
    (void)access;
    struct cl_http_stream *s = ctx;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    (void)h;
    struct cl_http_stream *s = ctx;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&s->locks[data]);
}

struct cl_http_stream *cl_http_stream_new(const struct cl_http_stream_opts *opts,
                                          struct cl_err *err)
{
    /* libcurl is opened on first use (net/lazy_curl.c): say so clearly when it cannot be */
    if (cl_net_curl_load(err) < 0) {
        cl_err_prefix(err, "%s", "http stream");
        return NULL;
    }
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) {
        cl_err_set(err, CL_EIO, "http stream: curl_global_init: %s", curl_easy_strerror(g_init_rc));
        return NULL;
    }
    struct cl_http_stream *s = calloc(1, sizeof *s);
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "http stream: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < CL_ARRAY_LEN(s->locks); i++)
        pthread_mutex_init(&s->locks[i], NULL);
    s->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                                 : DEFAULT_CONNECT_TIMEOUT_MS;
    s->low_speed_time_s =
        opts && opts->low_speed_time_s > 0 ? opts->low_speed_time_s : DEFAULT_LOW_SPEED_TIME_S;
    s->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 0;
    if (opts && opts->ca_file && !(s->ca_file = strdup(opts->ca_file)))
        goto oom;
    s->share = curl_share_init();
    if (!s->share)
        goto oom;
    if (curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(s->share, CURLSHOPT_USERDATA, s) != CURLSHE_OK ||
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
        cl_http_stream_free(s);
        cl_err_set(err, CL_EIO, "http stream: curl share setup failed");
        return NULL;
    }
    return s;
oom:
    cl_http_stream_free(s);
    cl_err_set(err, CL_ENOMEM, "http stream: out of memory");
    return NULL;
}

void cl_http_stream_free(struct cl_http_stream *s)
{
    if (!s)
        return;
    if (s->share)
        curl_share_cleanup(s->share);
    for (size_t i = 0; i < CL_ARRAY_LEN(s->locks); i++)
        pthread_mutex_destroy(&s->locks[i]);
    free(s->ca_file);
    free(s);
}

void cl_http_stream_result_clear(struct cl_http_stream_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < CL_HTTP_HDR_COUNT; i++)
        free(r->header[i]);
    free(r->error_body);
    memset(r, 0, sizeof *r);
}

static const char *const hdr_names[CL_HTTP_HDR_COUNT] = {
    [CL_HTTP_HDR_WWW_AUTHENTICATE] = "WWW-Authenticate",
    [CL_HTTP_HDR_CONTENT_TYPE] = "Content-Type",
    [CL_HTTP_HDR_CONTENT_LENGTH] = "Content-Length",
    [CL_HTTP_HDR_CONTENT_RANGE] = "Content-Range",
    [CL_HTTP_HDR_DOCKER_CONTENT_DIGEST] = "Docker-Content-Digest",
    [CL_HTTP_HDR_LOCATION] = "Location",
};

struct call {
    CURL *h;
    const struct cl_http_stream_req *req;
    struct cl_http_stream_result res;
    size_t header_bytes;
    bool headers_over, oom;
    int status_known; /* 0 unknown, 1 2xx, -1 other */
    int cb_rc;
    struct cl_err cb_err;
    size_t ebuf_len;
};

static void reset_headers(struct call *c)
{
    for (size_t i = 0; i < CL_HTTP_HDR_COUNT; i++) {
        free(c->res.header[i]);
        c->res.header[i] = NULL;
    }
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct call *c = ud;
    size_t n = size * nmemb;
    if (n > CL_HTTP_STREAM_MAX_HEADER_BYTES - c->header_bytes) {
        c->headers_over = true;
        return 0;
    }
    c->header_bytes += n;
    /* a new status line starts a new reply (redirect, 100 Continue): forget the old headers */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        reset_headers(c);
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon)
        return n;
    size_t nlen = (size_t)(colon - ptr);
    for (size_t i = 0; i < CL_HTTP_HDR_COUNT; i++) {
        if (strlen(hdr_names[i]) != nlen || strncasecmp(ptr, hdr_names[i], nlen) != 0)
            continue;
        const char *v = colon + 1, *end = ptr + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t vlen = (size_t)(end - v);
        if (vlen > CL_HTTP_STREAM_MAX_HEADER) {
            c->headers_over = true;
            return 0;
        }
        /* a repeated WWW-Authenticate keeps the first challenge */
        if (c->res.header[i])
            return n;
        char *copy = malloc(vlen + 1);
        if (!copy) {
            c->oom = true;
            return 0;
        }
        memcpy(copy, v, vlen);
        copy[vlen] = 0;
        c->res.header[i] = copy;
        break;
    }
    return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct call *c = ud;
    size_t n = size * nmemb;
    if (c->status_known == 0) {
        long st = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &st);
        c->status_known = st >= 200 && st < 300 ? 1 : -1;
        if (c->status_known > 0 && c->req->on_start) {
            int rc = c->req->on_start(c->req->ctx, st, c->res.header, &c->cb_err);
            if (rc < 0) {
                c->cb_rc = rc;
                return 0;
            }
        }
    }
    if (c->status_known < 0) {
        /* keep the start of an error body for the message; drop the rest */
        if (!c->res.error_body) {
            c->res.error_body = malloc(CL_HTTP_STREAM_MAX_ERROR_BODY + 1);
            if (!c->res.error_body) {
                c->oom = true;
                return 0;
            }
        }
        size_t take = CL_HTTP_STREAM_MAX_ERROR_BODY - c->ebuf_len;
        if (take > n)
            take = n;
        memcpy(c->res.error_body + c->ebuf_len, ptr, take);
        c->ebuf_len += take;
        c->res.error_body[c->ebuf_len] = 0;
        c->res.error_body_len = c->ebuf_len;
        return n;
    }
    if (c->req->on_data) {
        int rc = c->req->on_data(c->req->ctx, (const uint8_t *)ptr, n, &c->cb_err);
        if (rc < 0) {
            c->cb_rc = rc;
            return 0;
        }
    }
    c->res.body_bytes += n;
    return n;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode sr_ = curl_easy_setopt(h, (opt), (val));                                          \
        if (sr_ != CURLE_OK) {                                                                     \
            rc = cl_err_set(err, CL_EINVAL, "http stream: %s: %s", #opt, curl_easy_strerror(sr_)); \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int cl_http_stream_do(struct cl_http_stream *s, const struct cl_http_stream_req *req,
                      struct cl_http_stream_result *out, struct cl_err *err)
{
    if (!s || !req || !req->url || !out)
        return cl_err_set(err, CL_EINVAL,
                          "http stream: stream, request, url and result are required");
    const char *method = req->method ? req->method : "GET";
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        return cl_err_set(err, CL_EINVAL, "http stream: method %.16s is not GET or HEAD", method);

    int rc = 0;
    struct curl_slist *hl = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct call c = {.req = req};
    CURL *h = curl_easy_init();
    if (!h)
        return cl_err_set(err, CL_EIO, "http stream: curl_easy_init failed");
    c.h = h;
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        const char *line = req->headers[i];
        if (strchr(line, '\r') || strchr(line, '\n') || !strchr(line, ':')) {
            rc = cl_err_set(err, CL_EINVAL,
                            "http stream: header #%zu is not one \"Name: value\" line", i);
            goto out;
        }
        struct curl_slist *nl = curl_slist_append(hl, line);
        if (!nl) {
            rc = cl_err_set(err, CL_ENOMEM, "http stream: out of memory");
            goto out;
        }
        hl = nl;
    }
    SETOPT(CURLOPT_SHARE, s->share);
    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    SETOPT(CURLOPT_MAXREDIRS, (long)CL_HTTP_STREAM_MAX_REDIRECTS);
    SETOPT(CURLOPT_UNRESTRICTED_AUTH, 0L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SETOPT(CURLOPT_LOW_SPEED_TIME, s->low_speed_time_s);
    long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : s->timeout_ms;
    if (timeout_ms)
        SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_HTTPHEADER, hl);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, &c);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, &c);
    SETOPT(CURLOPT_BUFFERSIZE, 256L * 1024);
    SETOPT(CURLOPT_SSL_VERIFYPEER, req->tls_verify_off_insecure ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, req->tls_verify_off_insecure ? 0L : 2L);
    /* Compressed transfer encodings are not asked for: blobs are hashed as served. */
    if (s->ca_file)
        SETOPT(CURLOPT_CAINFO, s->ca_file);
    if (head)
        SETOPT(CURLOPT_NOBODY, 1L);

    CURLcode cr = curl_easy_perform(h);
    if (c.cb_rc < 0) {
        if (err) {
            *err = c.cb_err;
            err->code = c.cb_rc;
        }
        rc = c.cb_rc;
        goto out;
    }
    if (c.headers_over) {
        rc = cl_err_set(err, CL_ELIMIT, "http %s %s: response headers larger than %d bytes", method,
                        req->url, CL_HTTP_STREAM_MAX_HEADER_BYTES);
        goto out;
    }
    if (c.oom) {
        rc = cl_err_set(err, CL_ENOMEM, "http %s %s: out of memory", method, req->url);
        goto out;
    }
    if (cr != CURLE_OK) {
        rc = cl_err_set(err, CL_EIO, "http %s %s: %s", method, req->url,
                        errbuf[0] ? errbuf : curl_easy_strerror(cr));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c.res.status);
    *out = c.res;
    memset(&c.res, 0, sizeof c.res);
out:
    cl_http_stream_result_clear(&c.res);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    return rc;
}
