/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry client (distribution API v2). Authentication follows the WWW-Authenticate
 * challenge of a 401: Basic (with configured credentials) or Bearer (a token fetched from the
 * realm, anonymously or with the credentials, then cached for the endpoint). Requests that
 * fail in transport, with 5xx or 429 are retried with a doubling delay up to the retry cap.
 * Blobs are hashed as they arrive; a file download resumes a partial file with a Range
 * request and renames it into place only after its size, digest and (for ocicrypt) HMAC
 * matched.
 */
#include "image/image_int.h"
#include "net/http_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: application/vnd.oci.image.manifest.v1+json, "                                         \
    "application/vnd.oci.image.index.v1+json, "                                                    \
    "application/vnd.docker.distribution.manifest.v2+json, "                                       \
    "application/vnd.docker.distribution.manifest.list.v2+json"
#define MAX_CHALLENGE_PARAM 2048

struct cl_image_registry {
    struct cl_http_stream *http;
    cl_str *host, *repo, *base;
    bool insecure;
    bool scheme_known;
    cl_str *username, *password;
    unsigned retries;
    long retry_delay_ms;
    long deadline_base_ms;  /* a GET's deadline: this plus its bytes at min_rate */
    unsigned long min_rate; /* bytes per second, > 0 */
    void (*on_retry)(void *ctx, const char *why);
    void *retry_ctx;
    pthread_mutex_t lock;
    cl_str *auth; /* "Authorization: ..." line, or NULL (guarded by lock) */
};

long cl_image_deadline_ms(long base_ms, unsigned long min_rate, uint64_t max)
{
    uint64_t ms = (uint64_t)base_ms + max / min_rate * 1000 + max % min_rate * 1000 / min_rate;
    return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

static long deadline_ms(const struct cl_image_registry *r, uint64_t max)
{
    return cl_image_deadline_ms(r->deadline_base_ms, r->min_rate, max);
}

void cl_image_registry_free(struct cl_image_registry *r)
{
    if (!r)
        return;
    cl_http_stream_free(r->http);
    free(r->host);
    free(r->repo);
    free(r->base);
    if (r->password)
        cl_free_wipe(r->password, strlen(r->password));
    free(r->username);
    if (r->auth)
        cl_free_wipe(r->auth, strlen(r->auth));
    pthread_mutex_destroy(&r->lock);
    free(r);
}

struct cl_image_registry *cl_image_registry_new(const struct cl_image_endpoint *ep,
                                                const struct cl_image_registry_opts *opts,
                                                struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!ep || !ep->host || !ep->repository) {
        cl_err_set(err, CL_EINVAL, "registry: endpoint host and repository are required");
        return NULL;
    }
    struct cl_image_registry *r = calloc(1, sizeof *r);
    if (!r) {
        cl_err_set(err, CL_ENOMEM, "registry: out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    struct cl_http_stream_opts ho = {
        .ca_file = opts ? opts->ca_file : NULL,
        .low_speed_time_s = opts ? opts->low_speed_time_s : 0,
    };
    r->http = cl_http_stream_new(&ho, err);
    r->host = strdup(ep->host);
    r->repo = strdup(ep->repository);
    r->insecure = ep->insecure;
    r->base = cl_strdupf("https://%s", ep->host);
    r->retries = opts && opts->retries ? opts->retries : CL_IMAGE_DEFAULT_RETRIES;
    if (r->retries > CL_IMAGE_MAX_RETRIES)
        r->retries = CL_IMAGE_MAX_RETRIES;
    r->retry_delay_ms = opts && opts->retry_delay_ms > 0 ? opts->retry_delay_ms : 200;
    r->deadline_base_ms =
        opts && opts->deadline_base_ms > 0 ? opts->deadline_base_ms : CL_IMAGE_DEADLINE_BASE_MS;
    r->min_rate = opts && opts->min_rate > 0 ? opts->min_rate : CL_IMAGE_MIN_RATE;
    r->on_retry = opts ? opts->on_retry : NULL;
    r->retry_ctx = opts ? opts->retry_ctx : NULL;
    if (opts && opts->creds.username) {
        r->username = strdup(opts->creds.username);
        r->password = strdup(opts->creds.password ? opts->creds.password : "");
        if (!r->username || !r->password)
            goto oom;
    }
    if (!r->http) {
        cl_image_registry_free(r);
        return NULL;
    }
    if (!r->host || !r->repo || !r->base)
        goto oom;
    return r;
oom:
    cl_image_registry_free(r);
    cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- WWW-Authenticate ---- */

struct challenge {
    char scheme[16];
    char realm[MAX_CHALLENGE_PARAM];
    char service[MAX_CHALLENGE_PARAM];
    char scope[MAX_CHALLENGE_PARAM];
};

/* Parses `Scheme k="v", k2=v2`; unknown parameters are ignored, quoted values unescaped. */
static int parse_challenge(const char *h, struct challenge *c, struct cl_err *err)
{
    memset(c, 0, sizeof *c);
    size_t sl = strcspn(h, " \t");
    if (sl == 0 || sl >= sizeof c->scheme)
        return cl_err_set(err, CL_EPARSE, "registry: WWW-Authenticate '%.64s' has no scheme", h);
    memcpy(c->scheme, h, sl);
    const char *p = h + sl;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *k = p;
        while (*p && *p != '=' && *p != ',' && *p != ' ')
            p++;
        size_t kl = (size_t)(p - k);
        if (*p != '=')
            return cl_err_set(err, CL_EPARSE,
                              "registry: WWW-Authenticate parameter '%.*s' has no value",
                              (int)(kl > 32 ? 32 : kl), k);
        p++;
        char val[MAX_CHALLENGE_PARAM];
        size_t vl = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                if (vl + 1 >= sizeof val)
                    return cl_err_set(err, CL_ELIMIT, "registry: WWW-Authenticate value too long");
                val[vl++] = *p++;
            }
            if (*p != '"')
                return cl_err_set(err, CL_EPARSE,
                                  "registry: WWW-Authenticate has an unterminated quote");
            p++;
        } else {
            while (*p && *p != ',' && *p != ' ') {
                if (vl + 1 >= sizeof val)
                    return cl_err_set(err, CL_ELIMIT, "registry: WWW-Authenticate value too long");
                val[vl++] = *p++;
            }
        }
        val[vl] = 0;
        char *dst = NULL;
        if (kl == 5 && strncasecmp(k, "realm", 5) == 0)
            dst = c->realm;
        else if (kl == 7 && strncasecmp(k, "service", 7) == 0)
            dst = c->service;
        else if (kl == 5 && strncasecmp(k, "scope", 5) == 0)
            dst = c->scope;
        if (dst)
            memcpy(dst, val, vl + 1);
    }
    return 0;
}

/* Percent-encodes a query value (RFC 3986 unreserved kept). */
static cl_str *qenc(const char *s)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    cl_str *o = malloc(3 * n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            o[k++] = (char)ch;
        } else {
            o[k++] = '%';
            o[k++] = hexd[ch >> 4];
            o[k++] = hexd[ch & 15];
        }
    }
    o[k] = 0;
    return o;
}

/* Bounded memory sink for small bodies. */
struct memsink {
    uint8_t *buf;
    size_t len, max;
};

static int memsink_data(void *ctx, const uint8_t *buf, size_t len, struct cl_err *err)
{
    struct memsink *m = ctx;
    if (len > m->max - m->len)
        return cl_err_set(err, CL_ELIMIT, "registry: response larger than %zu bytes", m->max);
    uint8_t *nb = realloc(m->buf, m->len + len + 1);
    if (!nb)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    m->buf = nb;
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    m->buf[m->len] = 0;
    return 0;
}

static cl_str *basic_header(const struct cl_image_registry *r)
{
    CL_AUTO(cl_str) *up = cl_strdupf("%s:%s", r->username, r->password);
    if (!up)
        return NULL;
    CL_AUTO(cl_str) *b = cl_b64_encode(up, strlen(up), CL_B64_STD);
    explicit_bzero(up, strlen(up));
    if (!b)
        return NULL;
    cl_str *h = cl_strdupf("Authorization: Basic %s", b);
    explicit_bzero(b, strlen(b));
    return h;
}

/* Fetches a bearer token for the challenge; returns the new Authorization line. */
static int fetch_token(struct cl_image_registry *r, const struct challenge *ch, cl_str **line,
                       struct cl_err *err)
{
    bool https = strncmp(ch->realm, "https://", 8) == 0;
    if (!https && strncmp(ch->realm, "http://", 7) != 0)
        return cl_err_set(err, CL_EPARSE, "registry %s: token realm '%.200s' is not an http(s) URL",
                          r->host, ch->realm);
    CL_AUTO(cl_str) *default_scope = cl_strdupf("repository:%s:pull", r->repo);
    const char *scope = ch->scope[0] ? ch->scope : default_scope;
    CL_AUTO(cl_str) *svc = qenc(ch->service);
    CL_AUTO(cl_str) *sc = scope ? qenc(scope) : NULL;
    if (!svc || !sc)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    CL_AUTO(cl_str) *url = cl_strdupf("%s%sservice=%s&scope=%s", ch->realm,
                                      strchr(ch->realm, '?') ? "&" : "?", svc, sc);
    CL_AUTO(cl_str) *basic = NULL;
    if (r->username) {
        /* credentials travel to the realm only over TLS, or where they already go in clear */
        if (!https && !r->insecure)
            return cl_err_set(
                err, CL_EDENIED,
                "registry %s: refusing to send credentials to the plain-HTTP token realm %.200s",
                r->host, ch->realm);
        if (!(basic = basic_header(r)))
            return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    }
    if (!url)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    const char *hdrs[] = {basic, NULL};
    struct memsink sink = {.max = CL_IMAGE_MAX_TOKEN};
    struct cl_http_stream_req req = {
        .url = url,
        .headers = basic ? hdrs : NULL,
        .on_data = memsink_data,
        .ctx = &sink,
        .tls_verify_off_insecure = r->insecure,
        .timeout_ms = deadline_ms(r, CL_IMAGE_MAX_TOKEN),
    };
    struct cl_http_stream_result res = {0};
    int rc = cl_http_stream_do(r->http, &req, &res, err);
    if (basic)
        explicit_bzero(basic, strlen(basic));
    if (rc < 0) {
        free(sink.buf);
        return cl_err_prefix(err, "registry %s: token", r->host);
    }
    long st = res.status;
    cl_http_stream_result_clear(&res);
    if (st == 401 || st == 403) {
        free(sink.buf);
        return cl_err_set(err, CL_EDENIED, "registry %s: token realm refused (%ld)%s", r->host, st,
                          r->username ? "" : ": credentials may be needed");
    }
    if (st != 200) {
        free(sink.buf);
        return cl_err_set(err, CL_EIO, "registry %s: token realm answered %ld", r->host, st);
    }
    CL_AUTO(json_t) *doc =
        cl_json_parse((const char *)(sink.buf ? sink.buf : (uint8_t *)""), sink.len, 8, err);
    free(sink.buf);
    if (!doc)
        return cl_err_prefix(err, "registry %s: token response", r->host);
    const char *tok = json_string_value(json_object_get(doc, "token"));
    if (!tok || !*tok)
        tok = json_string_value(json_object_get(doc, "access_token"));
    if (!tok || !*tok)
        return cl_err_set(err, CL_EPARSE,
                          "registry %s: token response has no 'token' or 'access_token'", r->host);
    for (const char *p = tok; *p; p++)
        if (*p <= ' ' || *p > '~')
            return cl_err_set(err, CL_EPARSE,
                              "registry %s: token has a character that cannot go in a header",
                              r->host);
    if (!(*line = cl_strdupf("Authorization: Bearer %s", tok)))
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    return 0;
}

/* Answers a 401: computes new credentials from the challenge and stores them. */
static int answer_challenge(struct cl_image_registry *r, const char *www, struct cl_err *err)
{
    if (!www)
        return cl_err_set(err, CL_EDENIED, "registry %s: 401 without a WWW-Authenticate challenge",
                          r->host);
    struct challenge ch;
    int rc = parse_challenge(www, &ch, err);
    if (rc < 0)
        return rc;
    cl_str *line = NULL;
    if (strcasecmp(ch.scheme, "Basic") == 0) {
        if (!r->username)
            return cl_err_set(err, CL_EDENIED,
                              "registry %s: requires credentials (Basic realm \"%.100s\")", r->host,
                              ch.realm);
        if (!r->insecure && strncmp(r->base, "https://", 8) != 0)
            return cl_err_set(err, CL_EDENIED,
                              "registry %s: refusing Basic credentials over plain HTTP", r->host);
        if (!(line = basic_header(r)))
            return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    } else if (strcasecmp(ch.scheme, "Bearer") == 0) {
        if (!ch.realm[0])
            return cl_err_set(err, CL_EPARSE, "registry %s: Bearer challenge without a realm",
                              r->host);
        if ((rc = fetch_token(r, &ch, &line, err)) < 0)
            return rc;
    } else {
        return cl_err_set(err, CL_EUNSUPPORTED, "registry %s: auth scheme '%.16s' is not supported",
                          r->host, ch.scheme);
    }
    pthread_mutex_lock(&r->lock);
    if (r->auth)
        cl_free_wipe(r->auth, strlen(r->auth));
    r->auth = line;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* ---- one request with auth, scheme fallback and retries ---- */

struct get {
    const char *path;   /* "/v2/<repo>/..." */
    uint64_t max_bytes; /* the most the answer may carry: sets the deadline */
    const char *extra;  /* one more header line or NULL */
    bool follow;
    cl_http_stream_start_fn on_start;
    cl_http_stream_data_fn on_data;
    void *ctx;
    /* called before each retry to rewind the sink; may adjust `extra` */
    int (*rewind)(void *ctx, struct get *g, struct cl_err *err);
};

static bool retryable_status(long st)
{
    return st == 429 || (st >= 500 && st <= 599);
}

/* For an insecure endpoint: HTTPS without checks first, plain HTTP when TLS does not answer. */
static void pick_scheme(struct cl_image_registry *r)
{
    if (r->scheme_known || !r->insecure)
        return;
    cl_insecure("registry", "%s: TLS not verified, plain HTTP allowed", r->host);
    CL_AUTO(cl_str) *url = cl_strdupf("https://%s/v2/", r->host);
    struct cl_http_stream_req req = {
        .url = url, .tls_verify_off_insecure = true, .timeout_ms = deadline_ms(r, 0)};
    struct cl_http_stream_result res = {0};
    struct cl_err e = {0};
    if (!url || cl_http_stream_do(r->http, &req, &res, &e) < 0) {
        CL_AUTO(cl_str) *b = cl_strdupf("http://%s", r->host);
        if (b) {
            free(r->base);
            r->base = CL_STEAL(b);
        }
    }
    cl_http_stream_result_clear(&res);
    r->scheme_known = true;
}

static int do_get(struct cl_image_registry *r, struct get *g, struct cl_http_stream_result *out,
                  struct cl_err *err)
{
    pthread_mutex_lock(&r->lock);
    pick_scheme(r);
    CL_AUTO(cl_str) *url = cl_strdupf("%s%s", r->base, g->path);
    pthread_mutex_unlock(&r->lock);
    if (!url)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    int rc = 0;
    long delay = r->retry_delay_ms;
    bool reauthed = false;
    unsigned retried = 0; /* an auth round trip is not a retry */
    for (;;) {
        pthread_mutex_lock(&r->lock);
        cl_str *auth = r->auth ? strdup(r->auth) : NULL;
        pthread_mutex_unlock(&r->lock);
        const char *hdrs[4];
        size_t nh = 0;
        if (auth)
            hdrs[nh++] = auth;
        if (g->extra)
            hdrs[nh++] = g->extra;
        hdrs[nh] = NULL;
        struct cl_http_stream_req req = {
            .url = url,
            .headers = hdrs,
            .follow_redirects = g->follow,
            .on_start = g->on_start,
            .on_data = g->on_data,
            .ctx = g->ctx,
            .tls_verify_off_insecure = r->insecure,
            .timeout_ms = deadline_ms(r, g->max_bytes),
        };
        struct cl_http_stream_result res = {0};
        rc = cl_http_stream_do(r->http, &req, &res, err);
        if (auth)
            cl_free_wipe(auth, strlen(auth));
        bool retry = false;
        if (rc == CL_EIO) {
            retry = true;
        } else if (rc < 0) {
            return rc;
        } else if (res.status == 401 && !reauthed) {
            reauthed = true;
            rc = answer_challenge(r, res.header[CL_HTTP_HDR_WWW_AUTHENTICATE], err);
            cl_http_stream_result_clear(&res);
            if (rc < 0)
                return rc;
            if (g->rewind && (rc = g->rewind(g->ctx, g, err)) < 0)
                return rc;
            continue;
        } else if (retryable_status(res.status)) {
            retry = true;
            rc = cl_err_set(err, CL_EIO, "registry %s: GET %s answered %ld", r->host, g->path,
                            res.status);
        } else {
            *out = res;
            return 0;
        }
        cl_http_stream_result_clear(&res);
        if (!retry || retried >= r->retries)
            return rc;
        retried++;
        cl_warn("registry %s: %s; retry %u of %u in %ld ms", r->host, err ? err->msg : "error",
                retried, r->retries, delay);
        if (r->on_retry)
            r->on_retry(r->retry_ctx, err ? err->msg : "error");
        sleep_ms(delay);
        delay = delay < 5000 ? delay * 2 : delay;
        if (g->rewind && (rc = g->rewind(g->ctx, g, err)) < 0)
            return rc;
    }
}

static int status_error(struct cl_image_registry *r, const char *what,
                        const struct cl_http_stream_result *res, struct cl_err *err)
{
    const char *body = res->error_body ? (const char *)res->error_body : "";
    long st = res->status;
    int code = st == 404 ? CL_ENOTFOUND : (st == 401 || st == 403) ? CL_EDENIED : CL_EIO;
    return cl_err_set(err, code, "registry %s: %s: HTTP %ld %.200s", r->host, what, st, body);
}

/* ---- manifests ---- */

static int memsink_rewind(void *ctx, struct get *g, struct cl_err *err)
{
    (void)g;
    (void)err;
    struct memsink *m = ctx;
    m->len = 0;
    return 0;
}

int cl_image_registry_manifest(struct cl_image_registry *r, const char *reference, cl_bytes **body,
                               size_t *len, cl_str **content_type, struct cl_image_digest *digest,
                               struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct cl_image_digest want;
    bool by_digest = strchr(reference, ':') != NULL;
    int rc;
    if (by_digest && (rc = cl_image_digest_parse(reference, &want, "manifest reference", err)) < 0)
        return rc;
    CL_AUTO(cl_str) *path = cl_strdupf("/v2/%s/manifests/%s", r->repo, reference);
    if (!path)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    struct memsink sink = {.max = CL_IMAGE_MAX_MANIFEST};
    struct get g = {.path = path,
                    .max_bytes = CL_IMAGE_MAX_MANIFEST,
                    .extra = ACCEPT_MANIFESTS,
                    .on_data = memsink_data,
                    .ctx = &sink,
                    .rewind = memsink_rewind};
    struct cl_http_stream_result res = {0};
    if ((rc = do_get(r, &g, &res, err)) < 0) {
        free(sink.buf);
        return rc;
    }
    if (res.status != 200) {
        rc = status_error(r, "manifest", &res, err);
        cl_http_stream_result_clear(&res);
        free(sink.buf);
        return rc;
    }
    struct cl_image_digest got;
    rc = cl_image_digest_of(by_digest ? want.alg : CL_HASH_SHA256,
                            sink.buf ? sink.buf : (uint8_t *)"", sink.len, &got, err);
    if (rc == 0 && by_digest && !cl_image_digest_eq(&got, &want))
        rc = cl_err_stage(err, CL_EVERIFY, "digest", "registry %s: manifest %s has digest %s",
                          r->host, reference, got.str);
    const char *dcd = res.header[CL_HTTP_HDR_DOCKER_CONTENT_DIGEST];
    if (rc == 0 && dcd && strncmp(dcd, "sha256:", 7) == 0 && got.alg == CL_HASH_SHA256 &&
        strcmp(dcd, got.str) != 0)
        rc = cl_err_stage(err, CL_EVERIFY, "digest",
                          "registry %s: Docker-Content-Digest %.80s but the body hashes to %s",
                          r->host, dcd, got.str);
    if (rc == 0 && content_type) {
        const char *ct = res.header[CL_HTTP_HDR_CONTENT_TYPE];
        if (!(*content_type = strdup(ct ? ct : "")))
            rc = cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    }
    cl_http_stream_result_clear(&res);
    if (rc < 0) {
        free(sink.buf);
        return rc;
    }
    if (!sink.buf && !(sink.buf = calloc(1, 1))) {
        if (content_type) {
            free(*content_type);
            *content_type = NULL;
        }
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    }
    *body = sink.buf;
    *len = sink.len;
    *digest = got;
    return 0;
}

/* ---- blobs into memory ---- */

int cl_image_registry_blob_mem(struct cl_image_registry *r, const struct cl_image_desc *desc,
                               size_t max, cl_bytes **body, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (desc->size > max)
        return cl_err_set(err, CL_ELIMIT, "registry %s: blob %s declares %llu bytes, more than %zu",
                          r->host, desc->digest.str, (unsigned long long)desc->size, max);
    CL_AUTO(cl_str) *path = cl_strdupf("/v2/%s/blobs/%s", r->repo, desc->digest.str);
    if (!path)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    struct memsink sink = {.max = (size_t)desc->size};
    struct get g = {.path = path,
                    .max_bytes = desc->size,
                    .follow = true,
                    .on_data = memsink_data,
                    .ctx = &sink,
                    .rewind = memsink_rewind};
    struct cl_http_stream_result res = {0};
    int rc = do_get(r, &g, &res, err);
    if (rc < 0) {
        free(sink.buf);
        if (rc == CL_ELIMIT)
            return cl_err_stage(err, CL_EVERIFY, "size",
                                "registry %s: blob %s is larger than its declared %llu bytes",
                                r->host, desc->digest.str, (unsigned long long)desc->size);
        return rc;
    }
    if (res.status != 200) {
        rc = status_error(r, desc->digest.str, &res, err);
        cl_http_stream_result_clear(&res);
        free(sink.buf);
        return rc;
    }
    cl_http_stream_result_clear(&res);
    struct cl_image_digest got;
    if (sink.len != desc->size) {
        free(sink.buf);
        return cl_err_stage(err, CL_EVERIFY, "size",
                            "registry %s: blob %s is %zu bytes, the descriptor says %llu", r->host,
                            desc->digest.str, sink.len, (unsigned long long)desc->size);
    }
    if ((rc = cl_image_digest_of(desc->digest.alg, sink.buf ? sink.buf : (uint8_t *)"", sink.len,
                                 &got, err)) < 0) {
        free(sink.buf);
        return rc;
    }
    if (!cl_image_digest_eq(&got, &desc->digest)) {
        free(sink.buf);
        return cl_err_stage(err, CL_EVERIFY, "digest", "registry %s: blob %s hashes to %s", r->host,
                            desc->digest.str, got.str);
    }
    if (!sink.buf && !(sink.buf = calloc(1, 1)))
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    *body = sink.buf;
    return 0;
}

/* ---- blobs into files, resumable ---- */

struct filesink {
    int fd;
    uint64_t have;        /* bytes in the file and in the hash */
    uint64_t want;        /* declared size */
    uint64_t resume_from; /* offset asked for with Range in this attempt */
    struct cl_image_hasher h;
    EVP_MAC_CTX *mac;
    bool restarted;
    char range[64];
    cl_image_bytes_fn progress;
    void *progress_ctx;
    const char *digest;
};

static int filesink_reset(struct filesink *f, struct cl_err *err)
{
    if (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
        return cl_err_set(err, CL_EIO, "blob %s: truncate: %s", f->digest, strerror(errno));
    f->have = 0;
    int rc = cl_image_hasher_init(&f->h, f->h.alg, err);
    if (rc < 0)
        return rc;
    if (f->mac && EVP_MAC_init(f->mac, NULL, 0, NULL) != 1)
        return cl_err_set(err, CL_EINVAL, "blob %s: HMAC init failed", f->digest);
    return 0;
}

static int filesink_absorb(struct filesink *f, const uint8_t *buf, size_t len, struct cl_err *err)
{
    int rc = cl_image_hasher_update(&f->h, buf, len, err);
    if (rc < 0)
        return rc;
    if (f->mac && len && EVP_MAC_update(f->mac, buf, len) != 1)
        return cl_err_set(err, CL_EINVAL, "blob %s: HMAC update failed", f->digest);
    return 0;
}

static int filesink_start(void *ctx, long status, cl_str *const *headers, struct cl_err *err)
{
    struct filesink *f = ctx;
    if (f->resume_from == 0)
        return status == 200
                   ? 0
                   : cl_err_set(err, CL_EIO, "blob %s: unexpected status %ld", f->digest, status);
    if (status == 206) {
        /* Content-Range: bytes <first>-<last>/<total> must start where the file ends */
        const char *cr = headers[CL_HTTP_HDR_CONTENT_RANGE];
        unsigned long long first = 0;
        if (cr && sscanf(cr, "bytes %llu-", &first) == 1 && first == f->resume_from)
            return 0;
        return cl_err_set(err, CL_EIO, "blob %s: Content-Range '%.64s' does not resume at %llu",
                          f->digest, cr ? cr : "", (unsigned long long)f->resume_from);
    }
    if (status == 200) {
        /* the server ignored the Range: start over */
        f->restarted = true;
        return filesink_reset(f, err);
    }
    return cl_err_set(err, CL_EIO, "blob %s: unexpected status %ld", f->digest, status);
}

static int filesink_data(void *ctx, const uint8_t *buf, size_t len, struct cl_err *err)
{
    struct filesink *f = ctx;
    if (len > f->want - f->have)
        return cl_err_stage(err, CL_ELIMIT, "size", "blob %s: more than the declared %llu bytes",
                            f->digest, (unsigned long long)f->want);
    int rc = filesink_absorb(f, buf, len, err);
    if (rc < 0)
        return rc;
    const uint8_t *p = buf;
    size_t n = len;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return cl_err_set(err, CL_EIO, "blob %s: write: %s", f->digest,
                              w < 0 ? strerror(errno) : "short write");
        p += w;
        n -= (size_t)w;
    }
    f->have += len;
    if (f->progress)
        f->progress(f->progress_ctx, len);
    return 0;
}

/* Before each attempt: ask for what the file lacks. */
static int filesink_rewind(void *ctx, struct get *g, struct cl_err *err)
{
    (void)err;
    struct filesink *f = ctx;
    f->resume_from = f->have;
    if (f->have > 0 && f->have < f->want) {
        snprintf(f->range, sizeof f->range, "Range: bytes=%llu-", (unsigned long long)f->have);
        g->extra = f->range;
    } else {
        g->extra = NULL;
    }
    return 0;
}

/* Hashes what an earlier attempt left in the partial file. */
static int filesink_resume(struct filesink *f, struct cl_err *err)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return cl_err_set(err, CL_EIO, "blob %s: stat: %s", f->digest, strerror(errno));
    if ((uint64_t)st.st_size > f->want || st.st_size == 0)
        return filesink_reset(f, err);
    uint8_t buf[65536];
    uint64_t left = (uint64_t)st.st_size;
    if (lseek(f->fd, 0, SEEK_SET) < 0)
        return cl_err_set(err, CL_EIO, "blob %s: seek: %s", f->digest, strerror(errno));
    while (left > 0) {
        ssize_t n = read(f->fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return filesink_reset(f, err);
        int rc = filesink_absorb(f, buf, (size_t)n, err);
        if (rc < 0)
            return rc;
        left -= (uint64_t)n;
    }
    f->have = (uint64_t)st.st_size;
    cl_info("blob %s: resuming at %llu of %llu bytes", f->digest, (unsigned long long)f->have,
            (unsigned long long)f->want);
    if (f->progress)
        f->progress(f->progress_ctx, f->have);
    return 0;
}

static EVP_MAC_CTX *hmac_new(const struct cl_secret *key)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (!ctx)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(ctx, key->data, key->len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int blob_file(struct cl_image_registry *r, const struct cl_image_desc *desc, int dirfd,
                     const char *name, const char *partial, struct filesink *f,
                     const struct cl_image_blob_mac *mac, struct cl_err *err)
{
    int rc;
    if ((rc = cl_image_hasher_init(&f->h, desc->digest.alg, err)) < 0)
        return rc;
    if (mac && !(f->mac = hmac_new(mac->key)))
        return cl_err_set(err, CL_EINVAL, "blob %s: HMAC setup failed", desc->digest.str);
    f->fd = openat(dirfd, partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f->fd < 0)
        return cl_err_set(err, CL_EIO, "blob %s: open %s: %s", desc->digest.str, partial,
                          strerror(errno));
    if ((rc = filesink_resume(f, err)) < 0)
        return rc;
    if (lseek(f->fd, 0, SEEK_END) < 0)
        return cl_err_set(err, CL_EIO, "blob %s: seek: %s", desc->digest.str, strerror(errno));
    if (f->have < f->want) {
        CL_AUTO(cl_str) *path = cl_strdupf("/v2/%s/blobs/%s", r->repo, desc->digest.str);
        if (!path)
            return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
        struct get g = {.path = path,
                        .max_bytes = f->want - f->have,
                        .follow = true,
                        .on_start = filesink_start,
                        .on_data = filesink_data,
                        .ctx = f,
                        .rewind = filesink_rewind};
        filesink_rewind(f, &g, err);
        struct cl_http_stream_result res = {0};
        if ((rc = do_get(r, &g, &res, err)) < 0)
            return rc;
        if (res.status != 200 && res.status != 206) {
            rc = status_error(r, desc->digest.str, &res, err);
            cl_http_stream_result_clear(&res);
            return rc;
        }
        cl_http_stream_result_clear(&res);
    }
    /* ---- verification: size, digest, MAC ---- */
    if (f->have != f->want)
        return cl_err_stage(err, CL_EVERIFY, "size",
                            "blob %s: %llu bytes, the descriptor says %llu", desc->digest.str,
                            (unsigned long long)f->have, (unsigned long long)f->want);
    struct cl_image_digest got;
    if ((rc = cl_image_hasher_final(&f->h, &got, err)) < 0)
        return rc;
    if (!cl_image_digest_eq(&got, &desc->digest))
        return cl_err_stage(err, CL_EVERIFY, "digest", "blob %s: content hashes to %s",
                            desc->digest.str, got.str);
    if (mac) {
        uint8_t tag[32];
        size_t tl = 0;
        if (EVP_MAC_final(f->mac, tag, &tl, sizeof tag) != 1 || tl != sizeof tag)
            return cl_err_set(err, CL_EINVAL, "blob %s: HMAC final failed", desc->digest.str);
        if (!cl_memeq_ct(tag, mac->expect, sizeof tag))
            return cl_err_stage(err, CL_EVERIFY, "hmac",
                                "blob %s: HMAC of the encrypted layer does not match",
                                desc->digest.str);
    }
    if (renameat(dirfd, partial, dirfd, name) < 0)
        return cl_err_set(err, CL_EIO, "blob %s: rename: %s", desc->digest.str, strerror(errno));
    return 0;
}

int cl_image_registry_blob_file(struct cl_image_registry *r, const struct cl_image_desc *desc,
                                int dirfd, const char *name, const struct cl_image_blob_mac *mac,
                                cl_image_bytes_fn progress, void *progress_ctx, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(cl_str) *partial = cl_strdupf("%s.partial", name);
    if (!partial)
        return cl_err_set(err, CL_ENOMEM, "registry: out of memory");
    struct filesink f = {.fd = -1,
                         .want = desc->size,
                         .progress = progress,
                         .progress_ctx = progress_ctx,
                         .digest = desc->digest.str};
    int rc = blob_file(r, desc, dirfd, name, partial, &f, mac, err);
    /* bytes that can never verify are dropped; a transfer cut short is kept for resuming */
    if (rc == CL_EVERIFY || rc == CL_ELIMIT)
        unlinkat(dirfd, partial, 0);
    if (f.fd >= 0)
        close(f.fd);
    cl_image_hasher_free(&f.h);
    EVP_MAC_CTX_free(f.mac);
    return rc;
}
