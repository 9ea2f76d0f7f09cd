/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP client on libcurl: one easy handle per client (so connections and, when asked,
 * cookies are kept between requests), http and https only, no redirects followed, a whole-
 * request timeout, and a response body cap enforced twice: curl refuses a declared
 * Content-Length above it, and the write callback stops a body that grows past it.
 * A client is not thread-safe: use one per thread.
 */
#include "net/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_RESPONSE (16u * 1024 * 1024)

struct cl_http_client {
    CURL *h;
    long timeout_ms;
    size_t max_response;
    char *ca_file;
    bool cookies;
    long connect_timeout_ms;
    char *keep_header;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
    uint8_t *buf;
    size_t len, cap, max;
    bool over;
    bool oom;
    const char *hdr_name; /* the client's keep_header */
    char *hdr_val;        /* its first value */
};

/* Response header lines: keeps the first value of sink->hdr_name, trimmed. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb, kl = s->hdr_name ? strlen(s->hdr_name) : 0;
    if (!kl || s->hdr_val || n <= kl || strncasecmp(p, s->hdr_name, kl) != 0 || p[kl] != ':')
        return n;
    const char *v = p + kl + 1;
    size_t vl = n - kl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (!(s->hdr_val = strndup(v, vl))) {
        s->oom = true;
        return 0;
    }
    return n;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb; /* size is always 1 for write callbacks */
    if (n > s->max - s->len) {
        s->over = true;
        return 0; /* stops the transfer: CURLE_WRITE_ERROR */
    }
    if (n > s->cap - s->len) {
        size_t ncap = s->cap ? s->cap : 4096;
        while (ncap - s->len < n)
            ncap = ncap > s->max / 2 ? s->max : ncap * 2;
        if (ncap > s->max)
            ncap = s->max;
        uint8_t *nb = realloc(s->buf, ncap + 1);
        if (!nb) {
            s->oom = true;
            return 0;
        }
        s->buf = nb;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    return n;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode sr_ = curl_easy_setopt(c->h, (opt), (val));                                       \
        if (sr_ != CURLE_OK) {                                                                     \
            rc = cl_err_set(err, CL_EINVAL, "http client: %s: %s", #opt, curl_easy_strerror(sr_)); \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Options that hold for every request of this client. */
static int set_fixed_options(struct cl_http_client *c, struct cl_err *err)
{
    int rc = 0;
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
    SETOPT(CURLOPT_WRITEFUNCTION, on_data);
    if (c->keep_header)
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    if (c->connect_timeout_ms > 0)
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        SETOPT(CURLOPT_CAINFO, c->ca_file);
    if (c->cookies)
        SETOPT(CURLOPT_COOKIEFILE, ""); /* the in-memory jar, kept for the handle's life */
out:
    return rc;
}

struct cl_http_client *cl_http_client_new(const struct cl_http_client_opts *opts,
                                          struct cl_err *err)
{
    /* libcurl is opened on first use (net/lazy_curl.c): say so clearly when it cannot be */
    if (cl_net_curl_load(err) < 0) {
        cl_err_prefix(err, "%s", "http client");
        return NULL;
    }
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) {
        cl_err_set(err, CL_EIO, "http client: curl_global_init: %s", curl_easy_strerror(g_init_rc));
        return NULL;
    }
    struct cl_http_client *c = calloc(1, sizeof *c);
    if (!c) {
        cl_err_set(err, CL_ENOMEM, "http client: out of memory");
        return NULL;
    }
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_response = opts && opts->max_response ? opts->max_response : DEFAULT_MAX_RESPONSE;
    c->cookies = opts && opts->cookies;
    c->connect_timeout_ms = opts ? opts->connect_timeout_ms : 0;
    if ((opts && opts->ca_file && !(c->ca_file = strdup(opts->ca_file))) ||
        (opts && opts->keep_header && !(c->keep_header = strdup(opts->keep_header)))) {
        free(c->ca_file);
        free(c);
        cl_err_set(err, CL_ENOMEM, "http client: out of memory");
        return NULL;
    }
    c->h = curl_easy_init();
    if (!c->h) {
        free(c->ca_file);
        free(c->keep_header);
        free(c);
        cl_err_set(err, CL_EIO, "http client: curl_easy_init failed");
        return NULL;
    }
    if (set_fixed_options(c, err) < 0) {
        cl_http_client_free(c);
        return NULL;
    }
    return c;
}

void cl_http_client_free(struct cl_http_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    free(c->ca_file);
    free(c->keep_header);
    free(c);
}

void cl_http_result_clear(struct cl_http_result *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->content_type);
    free(r->header);
    memset(r, 0, sizeof *r);
}

static bool header_ok(const char *h)
{
    return !strchr(h, '\r') && !strchr(h, '\n') && strchr(h, ':');
}

int cl_http_request(struct cl_http_client *c, const char *method, const char *url,
                    const char *const *headers, const void *body, size_t body_len,
                    struct cl_http_result *out, struct cl_err *err)
{
    if (!c || !method || !*method || !url || !out)
        return cl_err_set(err, CL_EINVAL,
                          "http request: client, method, url and result are required");
    if (!body && body_len > 0)
        return cl_err_set(err, CL_EINVAL, "http request %s %s: body missing", method, url);
    for (const char *m = method; *m; m++) {
        if (!((*m >= 'A' && *m <= 'Z') || *m == '-'))
            return cl_err_set(err, CL_EINVAL, "http request: method \"%s\" is not an HTTP method",
                              method);
    }

    int rc = 0;
    struct curl_slist *hl = NULL;
    struct sink sink = {.max = c->max_response, .hdr_name = c->keep_header};
    const char *want = body ? body : "";

    /* The handle keeps its fixed options, live connections and cookie jar; every option
     * that differs between requests is set below, so no earlier request leaks into this one. */
    c->errbuf[0] = '\0';
    for (size_t i = 0; headers && headers[i]; i++) {
        if (!header_ok(headers[i])) {
            rc = cl_err_set(err, CL_EINVAL,
                            "http request: header #%zu is not one \"Name: value\" line", i);
            goto out;
        }
        struct curl_slist *nl = curl_slist_append(hl, headers[i]);
        if (!nl) {
            rc = cl_err_set(err, CL_ENOMEM, "http request: out of memory");
            goto out;
        }
        hl = nl;
    }
    /* No "Expect: 100-continue" round trip for large bodies. */
    struct curl_slist *nl = curl_slist_append(hl, "Expect:");
    if (!nl) {
        rc = cl_err_set(err, CL_ENOMEM, "http request: out of memory");
        goto out;
    }
    hl = nl;

    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_WRITEDATA, &sink);
    if (c->keep_header)
        SETOPT(CURLOPT_HEADERDATA, &sink);
    SETOPT(CURLOPT_HTTPHEADER, hl);
    SETOPT(CURLOPT_CUSTOMREQUEST, (char *)NULL);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    SETOPT(CURLOPT_POSTFIELDS, (char *)NULL);
    SETOPT(CURLOPT_NOBODY, 0L);
    SETOPT(CURLOPT_HTTPGET, 1L); /* also forgets an earlier request's body */
    if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        /* POSTFIELDS does not copy: the caller's buffer lives until we return. */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SETOPT(CURLOPT_POSTFIELDS, want);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "HEAD") != 0)
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "GET") == 0 && body)
        SETOPT(CURLOPT_CUSTOMREQUEST, "GET");

    CURLcode cr = curl_easy_perform(c->h);
    if (sink.over || cr == CURLE_FILESIZE_EXCEEDED) {
        rc = cl_err_set(err, CL_ELIMIT, "http %s %s: response body larger than %zu bytes", method,
                        url, c->max_response);
        goto out;
    }
    if (sink.oom) {
        rc = cl_err_set(err, CL_ENOMEM, "http %s %s: out of memory for the response", method, url);
        goto out;
    }
    if (cr != CURLE_OK) {
        rc = cl_err_set(err, CL_EIO, "http %s %s: %s", method, url,
                        c->errbuf[0] ? c->errbuf : curl_easy_strerror(cr));
        goto out;
    }
    long status = 0;
    char *ctype = NULL;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->h, CURLINFO_CONTENT_TYPE, &ctype);
    cl_str *ct = NULL;
    if (ctype && !(ct = strdup(ctype))) {
        rc = cl_err_set(err, CL_ENOMEM, "http request: out of memory");
        goto out;
    }
    if (!sink.buf && !(sink.buf = malloc(1))) {
        free(ct);
        rc = cl_err_set(err, CL_ENOMEM, "http request: out of memory");
        goto out;
    }
    sink.buf[sink.len] = 0;
    out->status = status;
    out->body = sink.buf;
    out->body_len = sink.len;
    out->content_type = ct;
    out->header = sink.hdr_val;
    sink.buf = NULL;
    sink.hdr_val = NULL;
out:
    /* The handle must not keep pointers to this call's header list or sink. */
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, NULL);
    if (c->keep_header)
        curl_easy_setopt(c->h, CURLOPT_HEADERDATA, NULL);
    curl_slist_free_all(hl);
    free(sink.buf);
    free(sink.hdr_val);
    return rc;
}
