/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token keys from files and from the network: attestation_token.trusted_jwk_sets entries
 * (a JWKS file, or an https:// URL that serves a JWKS itself or is an OpenID issuer whose
 * /.well-known/openid-configuration names a jwks_uri) and identity providers' https://
 * public_key_uri (a PEM public key). Fetches go through net's HTTP client: TLS verified
 * against the system CA store, or only the CAs in $CLOISTER_JWKS_CA_FILE when it is set;
 * every answer is bounded (CL_KBS_JWKS_MAX_BYTES) and timed (CL_KBS_JWKS_TIMEOUT_MS); plain
 * http:// is refused. A token naming a kid that no loaded key has makes the set reload, at
 * most once per CL_KBS_JWKS_REFRESH_MIN_S, so an issuer's key rotation is picked up.
 */
#include "kbs/jwks.h"
#include "kbs/kbs_internal.h"
#include "net/http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t jwks_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool fetch_allowed;

void cl_kbs_jwks_allow_fetch(bool on)
{
    atomic_store(&fetch_allowed, on);
}

/* GET url (https only) into *out (new, NUL-terminated); what names the config key. */
static int https_get(const char *what, const char *url, cl_bytes **out, size_t *len,
                     struct cl_err *err)
{
    if (strncmp(url, "https://", 8) != 0)
        return cl_err_set(err, CL_EINVAL,
                          "%s: '%.200s' is not https://: keys are fetched over verified TLS only",
                          what, url);
    if (!atomic_load(&fetch_allowed))
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "%s: '%.200s': this process fetches no keys over the network", what, url);
    struct cl_http_client_opts ho = {.timeout_ms = CL_KBS_JWKS_TIMEOUT_MS,
                                     .max_response = CL_KBS_JWKS_MAX_BYTES,
                                     .ca_file = getenv("CLOISTER_JWKS_CA_FILE")};
    struct cl_http_client *c = cl_http_client_new(&ho, err);
    if (!c)
        return err->code;
    static const char *const hdrs[] = {"Accept: application/json, application/x-pem-file", NULL};
    struct cl_http_result r = {0};
    int rc = cl_http_request(c, "GET", url, hdrs, NULL, 0, &r, err);
    cl_http_client_free(c);
    if (rc < 0)
        return cl_err_prefix(err, "%s: GET %.200s", what, url);
    if (r.status != 200) {
        rc = cl_err_set(err, CL_EIO, "%s: GET %.200s: HTTP %ld", what, url, r.status);
        cl_http_result_clear(&r);
        return rc;
    }
    *out = r.body;
    *len = r.body_len;
    r.body = NULL;
    cl_http_result_clear(&r);
    return 0;
}

int cl_kbs_jwks_add(const char *what, const void *text, size_t n, json_t *all, struct cl_err *err)
{
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)text, n, 8, err);
    json_t *ks = doc ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(ks))
        return cl_err_set(err, CL_EPARSE, "%s is not a JWKS ({\"keys\": [...]})", what);
    if (json_array_size(ks) > CL_KBS_JWKS_MAX_KEYS)
        return cl_err_set(err, CL_ELIMIT, "%s has more than %d keys", what, CL_KBS_JWKS_MAX_KEYS);
    size_t k;
    json_t *jwk;
    json_array_foreach(ks, k, jwk)
    {
        CL_AUTO(cl_pkey) *key = cl_jwk_to_pkey(jwk, err);
        if (!key)
            return cl_err_prefix(err, "%s keys[%zu]", what, k);
        if (!json_is_string(json_object_get(jwk, "kid")))
            return cl_err_set(err, CL_EPARSE, "%s keys[%zu]: key has no string 'kid'", what, k);
        if (json_array_append(all, jwk) < 0)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    return 0;
}

/* An https source: the URL's own answer when it is a JWKS, else OpenID discovery under it. */
static int fetch_jwks(const char *what, const char *uri, json_t *all, struct cl_err *err)
{
    CL_AUTO(cl_bytes) *text = NULL;
    size_t n = 0;
    if (https_get(what, uri, &text, &n, err) == 0 && cl_kbs_jwks_add(what, text, n, all, err) == 0)
        return 0;
    if (err->code == CL_ELIMIT || err->code == CL_EINVAL || err->code == CL_EUNSUPPORTED)
        return err->code; /* too big, not https, or no fetching: discovery would not help */
    struct cl_err direct = *err;
    size_t len = strlen(uri);
    while (len > 0 && uri[len - 1] == '/')
        len--;
    CL_AUTO(cl_str) *disc = cl_strdupf("%.*s/.well-known/openid-configuration", (int)len, uri);
    CL_AUTO(cl_bytes) *dtext = NULL;
    if (!disc || https_get(what, disc, &dtext, &n, err) < 0)
        return cl_err_set(err, direct.code, "%s (and OpenID discovery: %s)", direct.msg, err->msg);
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)dtext, n, 8, err);
    const char *jwks_uri = json_string_value(json_object_get(doc, "jwks_uri"));
    if (!jwks_uri)
        return cl_err_set(err, CL_EPARSE, "%s: %s has no string 'jwks_uri' (and %s)", what, disc,
                          direct.msg);
    CL_AUTO(cl_bytes) *ktext = NULL;
    if (https_get(what, jwks_uri, &ktext, &n, err) < 0)
        return err->code;
    return cl_kbs_jwks_add(what, ktext, n, all, err);
}

int cl_kbs_jwks_source(const char *what, const char *uri, json_t *all, struct cl_err *err)
{
    if (strncmp(uri, "https://", 8) == 0 || strncmp(uri, "http://", 7) == 0)
        return fetch_jwks(what, uri, all, err);
    const char *file = strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri;
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(file, CL_KBS_JWKS_MAX_BYTES, &n, err);
    if (!text)
        return cl_err_prefix(err, "%s", what);
    return cl_kbs_jwks_add(what, text, n, all, err);
}

cl_pkey *cl_kbs_fetch_pem_key(const char *what, const char *url, struct cl_err *err)
{
    CL_AUTO(cl_bytes) *text = NULL;
    size_t n = 0;
    if (https_get(what, url, &text, &n, err) < 0)
        return NULL;
    cl_pkey *k = cl_pkey_from_pem((const char *)text, n, false, err);
    if (!k)
        cl_err_prefix(err, "%s: %.200s", what, url);
    return k;
}

/* The key named kid in the loaded set (new), or NULL. Caller holds jwks_lock. */
static cl_pkey *find_key(const json_t *jwks, const char *kid, struct cl_err *err)
{
    size_t i;
    json_t *k;
    json_array_foreach(jwks, i, k)
    {
        const char *kk = json_string_value(json_object_get(k, "kid"));
        if (kk && strcmp(kk, kid) == 0)
            return cl_jwk_to_pkey(k, err);
    }
    return NULL;
}

/* Reloads every source when the last reload is old enough; keeps the old set on failure. */
static void refresh(struct cl_kbs *kbs)
{
    int64_t now = cl_now_unix();
    pthread_mutex_lock(&jwks_lock);
    bool due = kbs->jwks_refreshed == 0 || now - kbs->jwks_refreshed >= CL_KBS_JWKS_REFRESH_MIN_S;
    if (due)
        kbs->jwks_refreshed = now;
    pthread_mutex_unlock(&jwks_lock);
    if (!due)
        return;
    struct cl_err e = {0};
    json_t *fresh = cl_kbs_jwks_load(kbs->cfg, &e);
    if (!fresh) {
        cl_warn("trusted_jwk_sets: reload for an unknown kid failed, keeping the loaded keys: %s",
                e.msg);
        return;
    }
    pthread_mutex_lock(&jwks_lock);
    json_t *old = kbs->jwks;
    kbs->jwks = fresh;
    pthread_mutex_unlock(&jwks_lock);
    json_decref(old);
    cl_info("trusted_jwk_sets: reloaded (%zu keys)", json_array_size(fresh));
}

cl_pkey *cl_kbs_jwks_key(struct cl_kbs *kbs, const char *kid, struct cl_err *err)
{
    for (int pass = 0; pass < 2; pass++) {
        pthread_mutex_lock(&jwks_lock);
        struct cl_err ke = {0};
        cl_pkey *k = find_key(kbs->jwks, kid, &ke);
        pthread_mutex_unlock(&jwks_lock);
        if (k)
            return k;
        if (ke.code < 0) {
            *err = ke;
            return NULL;
        }
        if (pass == 0 && kbs->cfg->ntrusted_jwk_sets)
            refresh(kbs);
    }
    cl_err_stage(err, CL_EVERIFY, "token",
                 "token kid '%.64s' is in no attestation_token.trusted_jwk_sets", kid);
    return NULL;
}
