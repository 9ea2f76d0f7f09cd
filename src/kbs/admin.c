/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin API: authentication by bearer JWTs, either trustee's AuthenticatedAuthorization
 * (identity providers with issuer/audience/public key; the token's "role" claim must have a
 * regex ACL entry matching the path) or Cloister's older persona keys (EdDSA for Ed25519,
 * ES256/384/512 for EC); exp required and iat/nbf checked in both; and the handlers that
 * change resources, policies and reference values. Every handler validates the whole request
 * before it touches the store, so a refused request leaves the store as it was.
 */
#include "kbs/kbs_internal.h"

#include <string.h>

static const char *alg_for(cl_pkey *k)
{
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519)
        return "EdDSA";
    switch (EVP_PKEY_get_bits(k)) {
    case 256:
        return "ES256";
    case 384:
        return "ES384";
    default:
        return "ES512";
    }
}

/* exp required; iat and nbf, when present, not in the future (leeway CL_KBS_TOKEN_LEEWAY_S). */
static int check_times(const json_t *claims, struct cl_err *err)
{
    int64_t now = cl_now_unix();
    json_t *exp = json_object_get(claims, "exp"), *iat = json_object_get(claims, "iat"),
           *nbf = json_object_get(claims, "nbf");
    if (!json_is_object(claims))
        return cl_err_set(err, CL_EPARSE, "admin token payload is not a JSON object");
    if (!json_is_integer(exp))
        return cl_err_set(err, CL_EVERIFY, "admin token has no integer 'exp' claim");
    if (json_integer_value(exp) + CL_KBS_TOKEN_LEEWAY_S < now)
        return cl_err_set(err, CL_EEXPIRED, "admin token expired");
    if (iat && (!json_is_integer(iat) || json_integer_value(iat) - CL_KBS_TOKEN_LEEWAY_S > now))
        return cl_err_set(err, CL_EVERIFY, "admin token 'iat' is in the future");
    if (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) - CL_KBS_TOKEN_LEEWAY_S > now))
        return cl_err_set(err, CL_EVERIFY, "admin token is not valid yet ('nbf')");
    return 0;
}

/* Older form: [admin] personas / auth_public_key. */
static int admin_verify(const struct cl_kbs_config *cfg, const char *jwt, const char **who,
                        struct cl_err *err)
{
    struct cl_jws jws = {0};
    int rc = cl_jws_parse(jwt, strlen(jwt), &jws, err);
    if (rc < 0)
        return rc;
    rc = cl_err_set(err, CL_EVERIFY, "admin token is not signed by any configured persona key");
    for (size_t i = 0; i < cfg->npersonas; i++) {
        if (strcmp(jws.alg, alg_for(cfg->personas[i].key)) != 0)
            continue;
        struct cl_err e = {0};
        if (cl_jws_verify(&jws, cfg->personas[i].key, &e) == 0) {
            *who = cfg->personas[i].id;
            rc = 0;
            break;
        }
    }
    if (rc == 0) {
        CL_AUTO(json_t) *claims =
            cl_json_parse((const char *)jws.payload, jws.payload_len, 16, err);
        rc = check_times(claims, err);
    }
    cl_jws_clear(&jws);
    return rc;
}

/* The algorithm family must match the key type before the signature is checked (no
 * algorithm confusion). */
static bool alg_fits(const char *alg, cl_pkey *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_ED25519:
        return strcmp(alg, "EdDSA") == 0;
    case EVP_PKEY_EC:
        return strcmp(alg, alg_for(k)) == 0;
    case EVP_PKEY_RSA:
        return strncmp(alg, "RS", 2) == 0 || strncmp(alg, "PS", 2) == 0;
    default:
        return false;
    }
}

static bool aud_matches(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)(uintptr_t)aud, i,
                       e) if (json_is_string(e) &&
                              strcmp(json_string_value(e), want) == 0) return true;
    return false;
}

/* AuthenticatedAuthorization: a JWT from one of identity_providers (signature, exp/iat/nbf,
 * iss and aud when configured), whose "role" claim has an ACL entry matching the path.
 * *role is written into role (cap bytes) for the log line. */
static int bearer_verify(const struct cl_kbs_config *cfg, const char *jwt, const char *path,
                         char *role, size_t cap, struct cl_err *err)
{
    struct cl_jws jws = {0};
    int rc = cl_jws_parse(jwt, strlen(jwt), &jws, err);
    if (rc < 0)
        return rc;
    if (cfg->nidps == 0)
        rc = cl_err_set(err, CL_EDENIED,
                        "no identity provider is configured "
                        "([admin.authentication.bearer_jwt] identity_providers)");
    else
        rc = cl_err_set(err, CL_EVERIFY,
                        "admin token is not signed by any configured identity provider");
    const struct cl_kbs_idp *idp = NULL;
    for (size_t i = 0; i < cfg->nidps && !idp; i++) {
        struct cl_err e = {0};
        if (cfg->idps[i].key && alg_fits(jws.alg, cfg->idps[i].key) &&
            cl_jws_verify(&jws, cfg->idps[i].key, &e) == 0)
            idp = &cfg->idps[i];
    }
    CL_AUTO(json_t) *claims = NULL;
    if (idp) {
        claims = cl_json_parse((const char *)jws.payload, jws.payload_len, 16, err);
        rc = check_times(claims, err);
    }
    cl_jws_clear(&jws);
    if (!idp || rc < 0)
        return rc;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (idp->issuer && (!iss || strcmp(iss, idp->issuer) != 0))
        return cl_err_set(err, CL_EVERIFY, "admin token 'iss' is not '%.64s'", idp->issuer);
    if (idp->audience && !aud_matches(json_object_get(claims, "aud"), idp->audience))
        return cl_err_set(err, CL_EVERIFY, "admin token 'aud' does not hold '%.64s'",
                          idp->audience);
    const char *r = json_string_value(json_object_get(claims, "role"));
    if (!r)
        return cl_err_set(err, CL_EVERIFY, "admin token has no string 'role' claim");
    snprintf(role, cap, "%s", r);
    for (size_t i = 0; i < cfg->nacls; i++)
        if (strcmp(cfg->acls[i].role, r) == 0 && regexec(&cfg->acls[i].re, path, 0, NULL, 0) == 0)
            return 0;
    return cl_err_set(err, CL_EDENIED,
                      "role '%.64s' is not allowed %.200s by admin.authorization.regex_acl", r,
                      path);
}

bool cl_kbs_admin_check(struct cl_kbs *kbs, const struct cl_http_req *req,
                        struct cl_http_resp *resp)
{
    const struct cl_kbs_config *cfg = kbs->cfg;
    switch (cfg->admin_mode) {
    case CL_KBS_ADMIN_ALLOW_ALL_INSECURE:
        cl_insecure("admin InsecureAllowAll", "%s %s accepted without authentication", req->method,
                    req->path);
        atomic_fetch_add(&kbs->metrics.admin_ok, 1);
        return true;
    case CL_KBS_ADMIN_DENY_ALL:
        atomic_fetch_add(&kbs->metrics.admin_denied, 1);
        cl_kbs_fail(resp, "AdminAuthAccess",
                    "the admin API is disabled (no admin persona is configured)");
        return false;
    case CL_KBS_ADMIN_PERSONAS:
    case CL_KBS_ADMIN_BEARER_JWT:
        break;
    }
    const char *auth = cl_http_req_header(req, "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0) {
        atomic_fetch_add(&kbs->metrics.admin_denied, 1);
        cl_kbs_fail(resp, "AdminAuthAccess", "admin request without Authorization: Bearer <JWT>");
        return false;
    }
    struct cl_err e = {0};
    const char *who = NULL;
    char role[72] = "";
    int rc = cfg->admin_mode == CL_KBS_ADMIN_BEARER_JWT
                 ? bearer_verify(cfg, auth + 7, req->path, role, sizeof role, &e)
                 : admin_verify(cfg, auth + 7, &who, &e);
    if (rc < 0) {
        atomic_fetch_add(&kbs->metrics.admin_denied, 1);
        cl_kbs_fail(resp, "AdminAuthAccess", "%s", e.msg);
        return false;
    }
    atomic_fetch_add(&kbs->metrics.admin_ok, 1);
    if (who)
        cl_info("admin '%s': %s %s", who, req->method, req->path);
    else
        cl_info("admin role '%s': %s %s", role, req->method, req->path);
    return true;
}

cl_str *cl_kbs_admin_token(cl_pkey *key, int64_t ttl_s, struct cl_err *err)
{
    int64_t now = cl_now_unix();
    CL_AUTO(json_t) *claims = json_pack("{s:s, s:I, s:I}", "sub", "admin", "iat", (json_int_t)now,
                                        "exp", (json_int_t)(now + ttl_s));
    CL_AUTO(json_t) *hdr = json_pack("{s:s}", "typ", "JWT");
    CL_AUTO(cl_str) *text = claims ? cl_json_compact(claims) : NULL;
    if (!text || !hdr) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    return cl_jws_sign(key, alg_for(key), hdr, text, strlen(text), err);
}

/* ---- handlers ---- */

static const char *resource_path(const struct cl_http_req *req)
{
    return req->path + strlen("/kbs/v0/resource/");
}

void cl_kbs_h_set_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    const char *path = resource_path(req);
    if (!cl_kbs_resource_path_valid(path)) {
        cl_kbs_fail(resp, "InvalidRequestPath", "resource path '%.200s' is not <repo>/<type>/<tag>",
                    path);
        return;
    }
    if (req->body_len > CL_KBS_MAX_RESOURCE) {
        cl_kbs_fail_status(resp, "PluginInternalError", 413, "resource larger than %u bytes",
                           CL_KBS_MAX_RESOURCE);
        return;
    }
    struct cl_err e = {0};
    if (cl_store_set(kbs->resources, CL_KBS_NS_REPOSITORY, path,
                     req->body ? req->body : (const uint8_t *)"", req->body_len, true, &e) < 0) {
        cl_kbs_fail_status(resp, "PluginInternalError", 500, "storing %s: %s", path, e.msg);
        return;
    }
    cl_kbs_metrics_resource(kbs, path, true);
    cl_info("resource %s set (%zu bytes)", path, req->body_len);
    cl_http_reply(resp, 200, "text/plain", "", 0);
}

void cl_kbs_h_delete_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    const char *path = resource_path(req);
    if (!cl_kbs_resource_path_valid(path)) {
        cl_kbs_fail(resp, "InvalidRequestPath", "resource path '%.200s' is not <repo>/<type>/<tag>",
                    path);
        return;
    }
    struct cl_err e = {0};
    if (cl_store_delete(kbs->resources, CL_KBS_NS_REPOSITORY, path, &e) < 0) {
        cl_kbs_fail(resp, "PluginInternalError", "deleting %s: %s", path,
                    e.code == CL_ENOTFOUND ? "not found" : e.msg);
        return;
    }
    cl_http_reply(resp, 200, "text/plain", "", 0);
}

/* Decodes {"policy": "<base64url, no padding>"} (and, for attestation policies, policy_id). */
static cl_bytes *policy_body(const struct cl_http_req *req, struct cl_http_resp *resp, size_t *len,
                             json_t **doc)
{
    struct cl_err e = {0};
    CL_AUTO(json_t) *body = cl_json_parse((const char *)req->body, req->body_len, 8, &e);
    const char *b64 = NULL;
    if (!body || cl_json_get_str(body, "policy", &b64, &e) < 0) {
        cl_kbs_fail(resp, "ParsePolicyError", "policy upload: %s", e.msg);
        return NULL;
    }
    cl_bytes *text = cl_b64_decode(b64, strlen(b64), CL_B64_URL, CL_AS_MAX_POLICY, len, &e);
    if (!text) {
        cl_kbs_fail(resp, "ParsePolicyError",
                    "policy upload: 'policy' must be base64url without padding: %s", e.msg);
        return NULL;
    }
    if (doc)
        *doc = CL_STEAL(body);
    return text;
}

void cl_kbs_h_set_resource_policy(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = policy_body(req, resp, &n, NULL);
    if (!text)
        return;
    struct cl_err e = {0};
    if (cl_kbs_policy_set(kbs, (const char *)text, n, &e) < 0) {
        cl_kbs_fail(resp, "PolicyEngineError", "resource policy refused: %s", e.msg);
        return;
    }
    cl_http_reply(resp, 200, "text/plain", "", 0);
}

void cl_kbs_h_get_resource_policy(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    static const char ids[] = "[\"resource-policy\"]";
    cl_http_reply(resp, 200, "application/json", ids, sizeof ids - 1);
}

void cl_kbs_h_set_attestation_policy(void *ctx, const struct cl_http_req *req,
                                     struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    size_t n = 0;
    CL_AUTO(json_t) *doc = NULL;
    CL_AUTO(cl_bytes) *text = policy_body(req, resp, &n, &doc);
    if (!text)
        return;
    struct cl_err e = {0};
    const char *id = NULL;
    if (cl_json_get_str(doc, "policy_id", &id, &e) < 0) {
        cl_kbs_fail(resp, "ParsePolicyError", "attestation policy upload: %s", e.msg);
        return;
    }
    if (!cl_store_key_valid(id)) {
        cl_kbs_fail(resp, "ParsePolicyError", "attestation policy id '%.64s' is not a valid name",
                    id);
        return;
    }
    if (cl_as_set_policy(kbs->as, id, (const char *)text, n, &e) < 0) {
        cl_kbs_fail(resp, "PolicyEngineError", "attestation policy refused: %s", e.msg);
        return;
    }
    cl_http_reply(resp, 200, "text/plain", "", 0);
}

void cl_kbs_h_set_reference_value(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    struct cl_err e = {0};
    CL_AUTO(json_t) *msg =
        cl_json_parse((const char *)req->body, req->body_len, KBS_MAX_JSON_DEPTH, &e);
    if (!msg) {
        cl_kbs_fail(resp, "RvpsError", "reference value message: %s", e.msg);
        return;
    }
    if (cl_as_rv_register(kbs->as, msg, &e) < 0) {
        cl_kbs_fail(resp, "RvpsError", "%s", e.msg);
        return;
    }
    cl_http_reply(resp, 200, "text/plain", "", 0);
}

void cl_kbs_h_get_reference_value(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    if (!cl_kbs_admin_check(kbs, req, resp))
        return;
    const char *id = req->path + strlen("/kbs/v0/reference-value/");
    struct cl_err e = {0};
    CL_AUTO(json_t) *v = cl_as_rv_query(kbs->as, id, &e);
    if (!v) {
        cl_kbs_fail(resp, "RvpsError", "%s", e.msg);
        return;
    }
    CL_AUTO(cl_str) *text = cl_json_compact(v);
    if (!text) {
        cl_kbs_fail_status(resp, "RvpsError", 500, "out of memory");
        return;
    }
    cl_http_reply(resp, 200, "application/json", text, strlen(text));
}
