/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hub's resource path: kbs:// URIs (traversal refused at parse time), the KBS reached
 * with the attestation agent's token as a Bearer (passport mode; token and TEE key cached
 * until the token's exp), the JWE answer opened with the TEE key, and a small resource cache
 * that expires entries after resource_cache_ttl seconds and is emptied on demand. The
 * offline_fs_kbc backend reads {"repo/type/tag": "<b64>"} maps instead.
 */
#include "aa/aa.h"
#include "cdh/cdh_internal.h"
#include "kbs/kbs_client.h"
#include "net/http.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OFFLINE_DEFAULT_KEYS "/etc/aa-offline_fs_kbc-keys.json"
#define OFFLINE_DEFAULT_RESOURCES "/etc/aa-offline_fs_kbc-resources.json"

struct cache_entry {
    char uri[CL_CDH_MAX_URI];
    struct cl_secret *value;
    int64_t expires;
};

struct cl_cdh {
    const struct cl_cdh_config *cfg;
    bool offline;
    json_t *offline_map;  /* "repo/type/tag" → b64 */
    char *ca_path;        /* kbs_cert written to a private file for libcurl */
    pthread_mutex_t lock; /* token, key, cache, stats */
    cl_str *token;
    cl_pkey *tee_key;
    int64_t token_exp;
    struct cache_entry cache[CL_CDH_CACHE_MAX];
    size_t ncache;
    struct cl_cdh_stats stats;
};

/* ---- URIs ---- */

static bool seg_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool query_char(char c)
{
    return seg_char(c) || c == '=' || c == '&' || c == ',';
}

bool cl_cdh_is_uri(const char *s)
{
    return strncmp(s, "kbs://", 6) == 0 || strncmp(s, "kbs+", 4) == 0;
}

int cl_cdh_uri_parse(const char *uri, struct cl_cdh_uri *out, struct cl_err *err)
{
    struct cl_cdh_uri u;
    memset(&u, 0, sizeof u);
    if (!uri || strlen(uri) >= CL_CDH_MAX_URI)
        return cl_err_set(err, CL_EINVAL, "resource URI missing or longer than %d bytes",
                          CL_CDH_MAX_URI - 1);
    const char *p;
    if (strncmp(uri, "kbs://", 6) == 0) {
        strcpy(u.plugin, "resource");
        p = uri + 6;
    } else if (strncmp(uri, "kbs+", 4) == 0) {
        const char *e = strstr(uri, "://");
        size_t n = e ? (size_t)(e - uri - 4) : 0;
        if (!e || n == 0 || n >= sizeof u.plugin)
            return cl_err_set(err, CL_EINVAL,
                              "resource URI '%.64s': empty or malformed plugin name", uri);
        for (size_t i = 0; i < n; i++)
            if (!seg_char(uri[4 + i]) || uri[4 + i] == '.')
                return cl_err_set(err, CL_EINVAL, "resource URI '%.64s': bad plugin name", uri);
        memcpy(u.plugin, uri + 4, n);
        p = e + 3;
    } else {
        return cl_err_set(err, CL_EINVAL,
                          "resource URI '%.64s': scheme must be kbs:// or kbs+<plugin>://", uri);
    }
    /* authority (ignored: the KBS address comes from the configuration) */
    const char *slash = strchr(p, '/');
    if (!slash)
        return cl_err_set(err, CL_EINVAL, "resource URI '%.64s' has no path", uri);
    p = slash + 1;
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (q) {
        for (const char *c = q + 1; *c; c++)
            if (!query_char(*c))
                return cl_err_set(err, CL_EINVAL,
                                  "resource URI '%.64s': character %#x not allowed in the query",
                                  uri, (unsigned char)*c);
        strcpy(u.query, q + 1);
    }
    size_t o = 0;
    while (o < plen) {
        const char *s = p + o;
        const char *e = memchr(s, '/', plen - o);
        size_t n = e ? (size_t)(e - s) : plen - o;
        if (n == 0)
            return cl_err_set(err, CL_EINVAL, "resource URI '%.64s': empty path segment", uri);
        if (n > CL_CDH_MAX_SEGMENT)
            return cl_err_set(err, CL_EINVAL, "resource URI '%.64s': segment longer than %d", uri,
                              CL_CDH_MAX_SEGMENT);
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return cl_err_set(err, CL_EINVAL,
                              "resource URI '%.64s': '.' and '..' segments are refused", uri);
        for (size_t i = 0; i < n; i++)
            if (!seg_char(s[i]))
                return cl_err_set(err, CL_EINVAL,
                                  "resource URI '%.64s': character %#x not allowed in a segment",
                                  uri, (unsigned char)s[i]);
        if (++u.nsegments > CL_CDH_MAX_SEGMENTS)
            return cl_err_set(err, CL_EINVAL, "resource URI '%.64s': more than %d segments", uri,
                              CL_CDH_MAX_SEGMENTS);
        o += n + (e ? 1 : 0);
        if (e && o == plen)
            return cl_err_set(err, CL_EINVAL, "resource URI '%.64s': empty path segment", uri);
    }
    if (u.nsegments == 0)
        return cl_err_set(err, CL_EINVAL, "resource URI '%.64s' has an empty path", uri);
    if (strcmp(u.plugin, "resource") == 0 && u.nsegments != 3)
        return cl_err_set(err, CL_EINVAL,
                          "resource URI '%.64s': the resource plugin needs <repo>/<type>/<tag>",
                          uri);
    memcpy(u.path, p, plen);
    u.path[plen] = 0;
    *out = u;
    return 0;
}

/* ---- cache ---- */

static void cache_drop_locked(struct cl_cdh *cdh)
{
    for (size_t i = 0; i < cdh->ncache; i++)
        cl_secret_free(cdh->cache[i].value);
    cdh->ncache = 0;
}

void cl_cdh_cache_invalidate(struct cl_cdh *cdh)
{
    pthread_mutex_lock(&cdh->lock);
    cache_drop_locked(cdh);
    free(cdh->token);
    EVP_PKEY_free(cdh->tee_key);
    cdh->token = NULL;
    cdh->tee_key = NULL;
    pthread_mutex_unlock(&cdh->lock);
    cl_info("resource cache emptied, token dropped");
}

static struct cl_secret *cache_get(struct cl_cdh *cdh, const char *uri)
{
    struct cl_secret *out = NULL;
    int64_t now = cl_now_unix();
    pthread_mutex_lock(&cdh->lock);
    for (size_t i = 0; i < cdh->ncache; i++) {
        struct cache_entry *e = &cdh->cache[i];
        if (strcmp(e->uri, uri) != 0)
            continue;
        if (e->expires > now) {
            out = cl_secret_from(e->value->data, e->value->len);
            cdh->stats.cache_hits++;
        } else {
            cl_secret_free(e->value);
            *e = cdh->cache[--cdh->ncache];
        }
        break;
    }
    pthread_mutex_unlock(&cdh->lock);
    return out;
}

static void cache_put(struct cl_cdh *cdh, const char *uri, const struct cl_secret *v)
{
    if (cdh->cfg->cache_ttl_s <= 0)
        return;
    struct cl_secret *copy = cl_secret_from(v->data, v->len);
    if (!copy)
        return;
    pthread_mutex_lock(&cdh->lock);
    struct cache_entry *e = NULL;
    for (size_t i = 0; i < cdh->ncache && !e; i++)
        if (strcmp(cdh->cache[i].uri, uri) == 0)
            e = &cdh->cache[i];
    if (!e && cdh->ncache == CL_CDH_CACHE_MAX) {
        size_t oldest = 0;
        for (size_t i = 1; i < cdh->ncache; i++)
            if (cdh->cache[i].expires < cdh->cache[oldest].expires)
                oldest = i;
        e = &cdh->cache[oldest];
    }
    if (!e)
        e = &cdh->cache[cdh->ncache++];
    else
        cl_secret_free(e->value);
    snprintf(e->uri, sizeof e->uri, "%s", uri);
    e->value = copy;
    e->expires = cl_now_unix() + cdh->cfg->cache_ttl_s;
    pthread_mutex_unlock(&cdh->lock);
}

/* ---- cc_kbc: token from the agent, Bearer GET, JWE ---- */

/* Gets (or reuses) the token and TEE key; force drops the cached pair first. Lock held. */
static int token_locked(struct cl_cdh *cdh, bool force, struct cl_err *err)
{
    if (cdh->token && !force &&
        (cdh->token_exp == 0 || cdh->token_exp - CL_AA_TOKEN_LEEWAY_S > cl_now_unix()))
        return 0;
    CL_AUTO(cl_str) *old = cdh->token;
    cdh->token = NULL;
    EVP_PKEY_free(cdh->tee_key);
    cdh->tee_key = NULL;
    const char *sock = cl_cdh_aa_socket(cdh);
    struct cl_ttrpc_client *c = cl_ttrpc_client_connect(sock, err);
    if (!c)
        return cl_err_prefix(err, "attestation agent");
    cl_bytes *raw = NULL;
    size_t n = 0;
    int rc = cl_aa_client_get_token(c, force ? CL_AA_TOKEN_KBS_REFRESH : "kbs", &raw, &n, err);
    cl_ttrpc_client_free(c);
    if (rc < 0)
        return cl_err_prefix(err, "GetToken(kbs)");
    CL_AUTO(json_t) *j = cl_json_parse((const char *)raw, n, 4, err);
    cl_free_wipe(raw, n);
    const char *tok = NULL, *pem = NULL;
    if (!j || cl_json_get_str(j, "token", &tok, err) < 0 ||
        cl_json_get_str(j, "tee_keypair", &pem, err) < 0)
        return cl_err_prefix(err, "GetToken(kbs) answer");
    if (force && old && strcmp(old, tok) == 0)
        return cl_err_set(err, CL_EDENIED,
                          "the KBS refused the agent's token and the agent has no newer one");
    int64_t exp = 0, nbf = 0;
    if (cl_kbs_jwt_times(tok, &exp, &nbf, err) < 0)
        return cl_err_prefix(err, "GetToken(kbs) token");
    cdh->tee_key = cl_pkey_from_pem(pem, strlen(pem), true, err);
    explicit_bzero((char *)(uintptr_t)pem, strlen(pem));
    if (!cdh->tee_key)
        return cl_err_prefix(err, "GetToken(kbs) tee_keypair");
    cdh->token = strdup(tok);
    cdh->token_exp = exp;
    cdh->stats.tokens++;
    return cdh->token ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

static int kbs_fetch(struct cl_cdh *cdh, const struct cl_cdh_uri *u, struct cl_secret **out,
                     struct cl_err *err)
{
    if (!cdh->cfg->kbc_url)
        return cl_err_set(err, CL_EINVAL, "no KBS configured ([kbc] url)");
    CL_AUTO(cl_str) *url = cl_strdupf("%s/kbs/v0/%s/%s%s%s", cdh->cfg->kbc_url, u->plugin, u->path,
                                      u->query[0] ? "?" : "", u->query);
    if (!url)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    struct cl_http_client_opts ho = {.timeout_ms = CL_AA_KBS_TIMEOUT_MS,
                                     .ca_file = cdh->ca_path,
                                     .max_response = 2 * CL_CDH_MAX_RESOURCE};
    int rc = CL_EIO;
    bool force = false;
    for (unsigned attempt = 0; attempt < CL_CDH_GET_TRIES; attempt++) {
        if (attempt)
            usleep(200000);
        pthread_mutex_lock(&cdh->lock);
        rc = token_locked(cdh, force, err);
        CL_AUTO(cl_str) *token = rc == 0 ? strdup(cdh->token) : NULL;
        cl_pkey *key = cdh->tee_key;
        if (key)
            EVP_PKEY_up_ref(key);
        pthread_mutex_unlock(&cdh->lock);
        CL_AUTO(cl_pkey) *k = key;
        if (rc < 0)
            return rc; /* the agent already retried its handshake */
        if (!token)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        struct cl_http_client *h = cl_http_client_new(&ho, err);
        if (!h)
            return err->code;
        long st = 0;
        char what[160];
        snprintf(what, sizeof what, "KBS %.128s", u->path);
        rc = cl_kbs_client_get_sealed(h, url, token, k, CL_CDH_MAX_RESOURCE, what, &st, out, err);
        cl_http_client_free(h);
        explicit_bzero(token, strlen(token));
        if (rc == 0) {
            pthread_mutex_lock(&cdh->lock);
            cdh->stats.kbs_fetches++;
            pthread_mutex_unlock(&cdh->lock);
            return 0;
        }
        if (st == 0 || st >= 500)
            continue; /* transport or server trouble: try again */
        if (st == 401 && (rc == CL_EDENIED || rc == CL_EEXPIRED) && !force) {
            force = true; /* token expired or unknown to this KBS: ask the agent for a new one */
            continue;
        }
        return rc; /* refused, not found, or a reply that does not open: final */
    }
    return rc;
}

/* ---- offline_fs_kbc ---- */

static int offline_load(struct cl_cdh *cdh, const char *path, bool required, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_CDH_OFFLINE_MAX, &n, &e);
    if (!text) {
        if (!required && e.code == CL_ENOTFOUND) {
            cl_warn("offline_fs_kbc: %s is absent", path);
            return 0;
        }
        return cl_err_set(err, e.code, "offline_fs_kbc: %s: %s", path, e.msg);
    }
    CL_AUTO(json_t) *m = cl_json_parse((const char *)text, n, 4, err);
    if (!m || !json_is_object(m))
        return cl_err_set(err, CL_EPARSE, "offline_fs_kbc: %s is not a JSON object", path);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (!json_is_string(v))
            return cl_err_set(err, CL_EPARSE, "offline_fs_kbc: %s: '%.64s' is not a string", path,
                              k);
        if (json_object_get(cdh->offline_map, k))
            cl_warn("offline_fs_kbc: %s redefines '%.64s'", path, k);
        json_object_set(cdh->offline_map, k, v);
    }
    return 0;
}

static int offline_get(struct cl_cdh *cdh, const struct cl_cdh_uri *u, struct cl_secret **out,
                       struct cl_err *err)
{
    const char *v = json_string_value(json_object_get(cdh->offline_map, u->path));
    if (!v)
        return cl_err_set(err, CL_ENOTFOUND, "offline_fs_kbc: no resource %s", u->path);
    *out = cl_b64_decode_secret(v, strlen(v), CL_B64_STD, err);
    return *out ? 0 : cl_err_prefix(err, "offline_fs_kbc: %s", u->path);
}

/* ---- public ---- */

int cl_cdh_get_resource(struct cl_cdh *cdh, const char *uri, struct cl_secret **out,
                        struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    struct cl_cdh_uri u;
    if (cl_cdh_uri_parse(uri, &u, err) < 0)
        return err->code;
    struct cl_secret *hit = cache_get(cdh, uri);
    if (hit) {
        cl_debug("resource %s from the cache", uri);
        *out = hit;
        return 0;
    }
    struct cl_secret *v = NULL;
    int rc = cdh->offline ? offline_get(cdh, &u, &v, err) : kbs_fetch(cdh, &u, &v, err);
    if (rc < 0)
        return rc;
    cache_put(cdh, uri, v);
    *out = v;
    return 0;
}

void cl_cdh_stats(struct cl_cdh *cdh, struct cl_cdh_stats *out)
{
    pthread_mutex_lock(&cdh->lock);
    *out = cdh->stats;
    pthread_mutex_unlock(&cdh->lock);
}

const struct cl_cdh_config *cl_cdh_config_of(const struct cl_cdh *cdh)
{
    return cdh->cfg;
}

const char *cl_cdh_aa_socket(const struct cl_cdh *cdh)
{
    return cdh->cfg->aa_socket ? cdh->cfg->aa_socket : CL_AA_DEFAULT_SOCKET;
}

static int provision_credentials(struct cl_cdh *cdh, struct cl_err *err)
{
    for (size_t i = 0; i < cdh->cfg->ncreds; i++) {
        const struct cl_cdh_credential *c = &cdh->cfg->creds[i];
        CL_AUTO(cl_secret) *v = NULL;
        if (cl_cdh_get_resource(cdh, c->resource_uri, &v, err) < 0)
            return cl_err_prefix(err, "credential %s", c->resource_uri);
        char dir[512];
        snprintf(dir, sizeof dir, "%s", c->path);
        char *s = strrchr(dir, '/');
        if (s)
            *s = 0;
        if (cl_mkdir_p(dir, 0700, err) < 0 ||
            cl_file_write_atomic(c->path, v->data, v->len, 0600, err) < 0)
            return cl_err_prefix(err, "credential %s", c->path);
    }
    return 0;
}

struct cl_cdh *cl_cdh_new(const struct cl_cdh_config *cfg, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    struct cl_cdh *cdh = calloc(1, sizeof *cdh);
    if (!cdh) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    cdh->cfg = cfg;
    pthread_mutex_init(&cdh->lock, NULL);
    cdh->offline = !cfg->kbc_name || strcmp(cfg->kbc_name, "offline_fs_kbc") == 0;
    cdh->offline_map = json_object();
    int rc = cdh->offline_map ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
    if (rc == 0 && cdh->offline) {
        if (cfg->offline_files) {
            for (size_t i = 0; rc == 0 && cfg->offline_files[i]; i++)
                rc = offline_load(cdh, cfg->offline_files[i], true, err);
        } else {
            rc = offline_load(cdh, OFFLINE_DEFAULT_KEYS, false, err);
            if (rc == 0)
                rc = offline_load(cdh, OFFLINE_DEFAULT_RESOURCES, false, err);
        }
    }
    if (rc == 0 && cfg->kbs_cert) {
        char tmpl[] = "/tmp/cloister-cdh-ca.XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0) {
            rc = cl_err_set(err, CL_EIO, "cannot write kbs_cert to a temporary file");
        } else {
            close(fd);
            rc = cl_file_write_atomic(tmpl, cfg->kbs_cert, strlen(cfg->kbs_cert), 0600, err);
            cdh->ca_path = strdup(tmpl);
        }
    }
    if (rc == 0)
        rc = provision_credentials(cdh, err);
    if (rc < 0) {
        cl_cdh_free(cdh);
        return NULL;
    }
    return cdh;
}

void cl_cdh_free(struct cl_cdh *cdh)
{
    if (!cdh)
        return;
    cache_drop_locked(cdh);
    free(cdh->token);
    EVP_PKEY_free(cdh->tee_key);
    json_decref(cdh->offline_map);
    if (cdh->ca_path) {
        unlink(cdh->ca_path);
        free(cdh->ca_path);
    }
    pthread_mutex_destroy(&cdh->lock);
    free(cdh);
}
