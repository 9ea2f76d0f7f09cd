/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation token verification, as trustee's KBS does it: the token header carries a JWK;
 * the key is trusted when it is the built-in attestation service's own key, when the header
 * x5c chain verifies to attestation_token.trusted_certs_paths (and the leaf key equals the
 * JWK), or — only with insecure_header_jwk — on its own word. A token with a "kid" and no
 * "jwk" (Intel TA style) is verified with that key of attestation_token.trusted_jwk_sets
 * (local JWKS files). Signature, then exp (required,
 * 60 s leeway) and nbf.
 */
#include "kbs/kbs_internal.h"

#include <pthread.h>
#include <string.h>

static int check_times(const json_t *claims, struct cl_err *err)
{
    int64_t now = cl_now_unix();
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp))
        return cl_err_stage(err, CL_EVERIFY, "token", "token has no integer 'exp' claim");
    if (json_integer_value(exp) + CL_KBS_TOKEN_LEEWAY_S < now)
        return cl_err_stage(err, CL_EEXPIRED, "token", "token expired %lld s ago",
                            (long long)(now - json_integer_value(exp)));
    json_t *nbf = json_object_get(claims, "nbf");
    if (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) - CL_KBS_TOKEN_LEEWAY_S > now))
        return cl_err_stage(err, CL_EVERIFY, "token", "token not valid yet ('nbf')");
    return 0;
}

/* ---- the claims of tokens minted here ---- */

static size_t memo_slot(const char *token, size_t len)
{
    /* the tail is the signature: bytes no one can choose without the key */
    uint32_t h = 2166136261u;
    for (size_t i = len > 16 ? len - 16 : 0; i < len; i++)
        h = (h ^ (uint8_t)token[i]) * 16777619u;
    return h % CL_KBS_TOKEN_MEMO;
}

void cl_kbs_token_memo_init(struct cl_kbs *kbs)
{
    pthread_mutex_init(&kbs->minted.lock, NULL);
}

void cl_kbs_token_memo_clear(struct cl_kbs *kbs)
{
    for (size_t i = 0; i < CL_KBS_TOKEN_MEMO; i++) {
        free(kbs->minted.slot[i].token);
        json_decref(kbs->minted.slot[i].claims);
    }
    memset(kbs->minted.slot, 0, sizeof kbs->minted.slot);
    pthread_mutex_destroy(&kbs->minted.lock);
}

void cl_kbs_token_remember(struct cl_kbs *kbs, const char *token, json_t *claims)
{
    char *copy = strdup(token);
    if (!copy || !claims) {
        free(copy);
        return; /* /resource parses the token instead */
    }
    size_t i = memo_slot(token, strlen(token));
    pthread_mutex_lock(&kbs->minted.lock);
    char *old_token = kbs->minted.slot[i].token;
    json_t *old_claims = kbs->minted.slot[i].claims;
    kbs->minted.slot[i].token = copy;
    kbs->minted.slot[i].claims = json_incref(claims);
    pthread_mutex_unlock(&kbs->minted.lock);
    free(old_token);
    json_decref(old_claims);
}

/* The claims of token when this process minted exactly that text (new reference), or NULL. */
static json_t *memo_find(struct cl_kbs *kbs, const char *token)
{
    size_t i = memo_slot(token, strlen(token));
    json_t *c = NULL;
    pthread_mutex_lock(&kbs->minted.lock);
    if (kbs->minted.slot[i].token && strcmp(kbs->minted.slot[i].token, token) == 0)
        c = json_incref(kbs->minted.slot[i].claims);
    pthread_mutex_unlock(&kbs->minted.lock);
    return c;
}

/* Claims of a token whose signature verified, with exp/nbf checked: those this process built
 * when it minted that very text, else the payload parsed. */
static json_t *claims_of(struct cl_kbs *kbs, const char *token, const struct cl_jws *jws,
                         struct cl_err *err)
{
    CL_AUTO(json_t) *claims = memo_find(kbs, token);
    if (!claims)
        claims =
            cl_json_parse((const char *)jws->payload, jws->payload_len, CL_JSON_MAX_DEPTH, err);
    if (!claims || !json_is_object(claims)) {
        cl_err_stage(err, CL_EPARSE, "token", "token payload is not a JSON object");
        return NULL;
    }
    if (check_times(claims, err) < 0)
        return NULL;
    return CL_STEAL(claims);
}

/* Key trust, signature and times of a parsed token; returns the claims (new) or NULL. */
static json_t *verify_parsed(struct cl_kbs *kbs, const char *token, const struct cl_jws *jws,
                             struct cl_err *err)
{
    json_t *jwk = json_object_get(jws->header, "jwk");
    const char *kid = json_string_value(json_object_get(jws->header, "kid"));
    if (!jwk && kid) {
        /* trusted_jwk_sets: the key named by kid, or nothing (jwks.c) */
        CL_AUTO(cl_pkey) *key = cl_kbs_jwks_key(kbs, kid, err);
        if (!key || cl_jws_verify(jws, key, err) < 0) {
            cl_err_prefix(err, "token signature (kid '%.64s')", kid);
            return NULL;
        }
        return claims_of(kbs, token, jws, err);
    }
    if (!json_is_object(jwk)) {
        cl_err_stage(err, CL_EVERIFY, "token", "token header has no 'jwk'");
        return NULL;
    }
    /* Fast path: the built-in attestation service's own header, byte for byte. */
    if (json_equal(jwk, (json_t *)(uintptr_t)cl_as_token_jwk(kbs->as))) {
        if (cl_jws_verify(jws, cl_as_signing_key(kbs->as), err) < 0) {
            cl_err_prefix(err, "token signature");
            return NULL;
        }
        return claims_of(kbs, token, jws, err);
    }
    CL_AUTO(cl_pkey) *key = cl_jwk_to_pkey(jwk, err);
    if (!key) {
        cl_err_prefix(err, "token header jwk");
        return NULL;
    }
    bool trusted = cl_pkey_public_equal(key, cl_as_signing_key(kbs->as));
    json_t *x5c = json_object_get(jwk, "x5c");
    if (!trusted && kbs->trust && x5c) {
        CL_AUTO(cl_pkey) *leaf = NULL;
        if (cl_x509_verify_x5c(x5c, kbs->trust, 0, &leaf, err) < 0) {
            cl_err_prefix(err, "token certificate chain");
            return NULL;
        }
        if (!cl_pkey_public_equal(leaf, key)) {
            cl_err_stage(err, CL_EVERIFY, "token",
                         "token jwk differs from its x5c leaf certificate key");
            return NULL;
        }
        trusted = true;
    }
    if (!trusted && kbs->cfg->insecure_header_jwk) {
        cl_insecure("insecure_header_jwk", "trusting a token on the key in its own header");
        trusted = true;
    }
    if (!trusted) {
        cl_err_stage(err, CL_EVERIFY, "token", "token is signed by a key this KBS does not trust");
        return NULL;
    }
    if (cl_jws_verify(jws, key, err) < 0) {
        cl_err_prefix(err, "token signature");
        return NULL;
    }
    return claims_of(kbs, token, jws, err);
}

json_t *cl_kbs_token_verify(struct cl_kbs *kbs, const char *token, struct cl_err *err)
{
    struct cl_jws jws = {0};
    if (cl_jws_parse_known(token, strlen(token), cl_as_token_header_b64(kbs->as),
                           cl_as_token_header(kbs->as), &jws, err) < 0) {
        cl_err_prefix(err, "token");
        return NULL;
    }
    json_t *claims = verify_parsed(kbs, token, &jws, err);
    cl_jws_clear(&jws);
    return claims;
}

json_t *cl_kbs_token_teekey(struct cl_kbs *kbs, json_t *claims)
{
    static const char *const defaults[] = {
        "/tdx/attester_runtime_data/tee-pubkey",
        "/tdx/attester_user_data/tee-pubkey",
        "/customized_claims/runtime_data/tee-pubkey",
        "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey",
        "/tee-pubkey",
    };
    for (size_t i = 0; i < kbs->cfg->nextra_teekey_paths; i++) {
        json_t *k = cl_json_pointer(claims, kbs->cfg->extra_teekey_paths[i]);
        if (json_is_object(k))
            return k;
    }
    for (size_t i = 0; i < CL_ARRAY_LEN(defaults); i++) {
        json_t *k = cl_json_pointer(claims, defaults[i]);
        if (json_is_object(k))
            return k;
    }
    return NULL;
}
