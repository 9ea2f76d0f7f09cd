/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io.jwt.* builtins with OPA's semantics on OpenSSL 3: io.jwt.decode, the io.jwt.verify_*
 * family (HS, RS, PS, ES, EdDSA with a secret, a PEM certificate or public key, or a JWK /
 * JWK set with kid and alg selection), io.jwt.decode_verify (signature, alg, iss, aud, exp and
 * nbf constraints, nested tokens) and io.jwt.encode_sign / encode_sign_raw.
 *
 * Signatures are checked before anything from the payload is trusted; HMACs are compared in
 * constant time; secrets and private keys are wiped when released.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/builtins_crypto.h"
#include "rego/rv.h"
#include "rego/sbuf.h"
#include "json/json.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

#define JSON_DEPTH 512

/* ---- helpers ---- */

/* OPA's base64url.decode: missing padding restored (RFC 7515 appendix C), then Go's
 * URLEncoding. NULL with the error text in msg. */
static uint8_t *b64url_decode(const char *s, size_t n, size_t *outlen, char *msg, size_t cap)
{
    char *t = cl_xmalloc(n + 3);
    memcpy(t, s, n);
    size_t tn = n;
    if (n == 0 || s[n - 1] != '=') {
        switch (n % 4) {
        case 2:
            t[tn++] = '=';
            t[tn++] = '=';
            break;
        case 3:
            t[tn++] = '=';
            break;
        case 1:
            snprintf(msg, cap, "illegal base64url string: %.*s", (int)(n > 100 ? 100 : n), s);
            free(t);
            return NULL;
        default:
            break;
        }
    }
    size_t bad;
    uint8_t *r = cl_rego_go_b64_decode(t, tn, true, outlen, &bad);
    free(t);
    if (!r)
        snprintf(msg, cap, "illegal base64 data at input byte %zu", bad);
    return r;
}

/* OPA's extractJSONObject: a JSON object (duplicate keys: the last wins). */
static struct cl_rv *json_object_rv(const uint8_t *s, size_t n, char *msg, size_t cap)
{
    /* Go keeps the last of duplicate keys, and so does jansson without
     * JSON_REJECT_DUPLICATES; its parser bounds nesting itself */
    json_error_t jerr;
    json_t *j = json_loadb((const char *)s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j) {
        snprintf(msg, cap, "invalid JSON: %.300s", jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(msg, cap, "decoded JSON type was not an Object");
        return NULL;
    }
    struct cl_rv *r = cl_rv_from_json(j);
    json_decref(j);
    return r;
}

struct token {
    const char *header, *payload, *sig; /* base64url parts (not NUL-terminated) */
    size_t hl, pl, sl;
};

/* OPA's decodeJWT: three dot-separated parts. */
static int split_token(struct cl_rego_bctx *c, const struct cl_rv *v, struct token *t)
{
    if (v->type != CL_RV_STRING)
        return cl_rego_bi_type_error(c, 0, "string", v);
    const char *s = S(v), *e = s + L(v);
    if (!memchr(s, '.', L(v)))
        return cl_rego_bi_error(c, "encoded JWT had no period separators");
    size_t parts = 1;
    for (const char *p = s; p < e; p++)
        parts += *p == '.';
    if (parts != 3)
        return cl_rego_bi_error(c, "encoded JWT must have 3 sections, found %zu", parts);
    const char *d1 = memchr(s, '.', L(v)), *d2 = memchr(d1 + 1, '.', (size_t)(e - d1 - 1));
    *t = (struct token){
        s, d1 + 1, d2 + 1, (size_t)(d1 - s), (size_t)(d2 - d1 - 1), (size_t)(e - d2 - 1)};
    return 0;
}

/* The decoded header object (OPA's decodeHeader); NULL with the error recorded. */
static struct cl_rv *decode_header(struct cl_rego_bctx *c, const struct token *t)
{
    char msg[CL_ERR_MSG_MAX];
    size_t n;
    uint8_t *h = b64url_decode(t->header, t->hl, &n, msg, sizeof msg);
    if (!h) {
        cl_rego_bi_error(c, "JWT header had invalid encoding: %s", msg);
        return NULL;
    }
    struct cl_rv *o = json_object_rv(h, n, msg, sizeof msg);
    free(h);
    if (!o) {
        cl_rego_bi_error(c, "bad JWT header: %s", msg);
        return NULL;
    }
    if (cl_rv_obj_get_str(o, "enc")) {
        cl_rv_decref(o);
        cl_rego_bi_error(c, "JWT is a JWE object, which is not supported");
        return NULL;
    }
    return o;
}

static uint8_t *decode_signature(struct cl_rego_bctx *c, const struct token *t, size_t *n)
{
    char msg[CL_ERR_MSG_MAX];
    uint8_t *s = b64url_decode(t->sig, t->sl, n, msg, sizeof msg);
    if (!s)
        cl_rego_bi_error(c, "%s", msg);
    return s;
}

/* Header fields OPA interprets (parseTokenHeader). */
struct header {
    const char *alg, *kid, *cty;
    size_t algl, kidl, ctyl;
    bool has_crit, crit_unknown;
};

static int parse_header(struct cl_rego_bctx *c, const struct cl_rv *h, struct header *out)
{
    memset(out, 0, sizeof *out);
    static const char *const known[] = {"alg", "kid", "typ", "cty", "crit"};
    const struct cl_rv *crit = NULL;
    for (size_t i = 0; i < h->u.obj.len; i++) {
        const struct cl_rv *k = h->u.obj.keys[i], *v = h->u.obj.vals[i];
        if (k->type != CL_RV_STRING)
            continue;
        for (size_t j = 0; j < 4; j++) {
            if (strcmp(S(k), known[j]) != 0)
                continue;
            if (v->type != CL_RV_STRING)
                return cl_rego_bi_error(c, "%s: must be a string", known[j]);
            if (j == 0)
                out->alg = S(v), out->algl = L(v);
            else if (j == 1)
                out->kid = S(v), out->kidl = L(v);
            else if (j == 3)
                out->cty = S(v), out->ctyl = L(v);
        }
        if (!strcmp(S(k), "crit")) {
            if (v->type != CL_RV_ARRAY)
                return cl_rego_bi_error(c, "crit: must be a list");
            if (v->u.arr.len == 0)
                return cl_rego_bi_error(c, "crit: must be a nonempty list");
            crit = v;
        }
    }
    if (crit) {
        out->has_crit = true;
        /* a critical parameter that is not understood makes the header invalid */
        for (size_t i = 0; i < crit->u.arr.len; i++) {
            const struct cl_rv *name = crit->u.arr.items[i];
            if (name->type != CL_RV_STRING)
                continue;
            bool is_known = false;
            for (size_t j = 0; j < CL_ARRAY_LEN(known); j++)
                is_known = is_known || !strcmp(S(name), known[j]);
            if (!is_known && cl_rv_obj_get(h, name))
                out->crit_unknown = true;
        }
    }
    return 0;
}

/* ---- keys ---- */

enum key_kind { KEY_RSA, KEY_EC, KEY_ED25519, KEY_SECRET };

struct vkey {
    enum key_kind kind;
    EVP_PKEY *pk;
    uint8_t *secret;
    size_t secret_len;
    bool private_part; /* a JWK with private members: OPA's verify_* refuse it */
    char alg[16];
    char *kid;
};

struct vkeys {
    struct vkey *v;
    size_t n;
};

static void vkeys_free(struct vkeys *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->v[i].pk);
        if (ks->v[i].secret)
            cl_free_wipe(ks->v[i].secret, ks->v[i].secret_len);
        free(ks->v[i].kid);
    }
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

static bool kind_of(EVP_PKEY *pk, enum key_kind *k)
{
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        *k = KEY_RSA;
        return true;
    case EVP_PKEY_EC:
        *k = KEY_EC;
        return true;
    case EVP_PKEY_ED25519:
        *k = KEY_ED25519;
        return true;
    default:
        return false;
    }
}

static const char *const algorithms[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                         "PS512", "ES256", "ES384", "ES512", "HS256",
                                         "HS384", "HS512", "EdDSA"};

static bool known_alg(const char *a, size_t n)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(algorithms); i++)
        if (strlen(algorithms[i]) == n && !memcmp(algorithms[i], a, n))
            return true;
    return false;
}

/* A base64 JWK member (either alphabet, padding optional); NULL when absent or malformed. */
static uint8_t *jwk_bytes(const json_t *k, const char *name, size_t *n, bool *bad)
{
    const json_t *v = json_object_get(k, name);
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    struct cl_err err = {0};
    uint8_t *b =
        cl_b64_decode(json_string_value(v), json_string_length(v), CL_B64_ANY, 1 << 20, n, &err);
    if (!b)
        *bad = true;
    return b;
}

static BIGNUM *jwk_bn(const json_t *k, const char *name, bool *bad, bool required)
{
    size_t n;
    uint8_t *b = jwk_bytes(k, name, &n, bad);
    if (!b) {
        if (required)
            *bad = true;
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(b, (int)n, NULL);
    cl_free_wipe(b, n);
    return bn;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, bool private_part)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, private_part ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

/* One JWK into a key; false with msg. */
static bool jwk_key(const json_t *k, struct vkey *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(k)) {
        snprintf(msg, cap, "invalid JWK: not an object");
        return false;
    }
    const json_t *kty = json_object_get(k, "kty");
    if (!json_is_string(kty)) {
        snprintf(msg, cap, "invalid JWK: missing \"kty\"");
        return false;
    }
    const json_t *alg = json_object_get(k, "alg"), *kid = json_object_get(k, "kid");
    if (json_is_string(alg))
        snprintf(out->alg, sizeof out->alg, "%s", json_string_value(alg));
    if (json_is_string(kid))
        out->kid = cl_xstrndup(json_string_value(kid), json_string_length(kid));
    const char *t = json_string_value(kty);
    bool bad = false;
    if (!strcmp(t, "oct")) {
        out->kind = KEY_SECRET;
        out->secret = jwk_bytes(k, "k", &out->secret_len, &bad);
        if (!out->secret) {
            snprintf(msg, cap, "invalid JWK: oct key needs \"k\"");
            return false;
        }
        return true;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    bool priv = json_object_get(k, "d") != NULL;
    if (!strcmp(t, "RSA")) {
        out->kind = KEY_RSA;
        BIGNUM *n = jwk_bn(k, "n", &bad, true), *e = jwk_bn(k, "e", &bad, true), *d = NULL;
        BIGNUM *p = NULL, *q = NULL, *dp = NULL, *dq = NULL, *qi = NULL;
        if (priv) {
            d = jwk_bn(k, "d", &bad, true);
            p = jwk_bn(k, "p", &bad, false);
            q = jwk_bn(k, "q", &bad, false);
            dp = jwk_bn(k, "dp", &bad, false);
            dq = jwk_bn(k, "dq", &bad, false);
            qi = jwk_bn(k, "qi", &bad, false);
        }
        if (!bad && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1 &&
            (!d || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) == 1) &&
            (!p || !q ||
             (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) == 1 &&
              OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) == 1)) &&
            (!dp || !dq || !qi || !p || !q ||
             (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) == 1 &&
              OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) == 1 &&
              OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi) == 1)))
            pk = pkey_from_params("RSA", bld, priv);
        BN_free(n);
        BN_free(e);
        BN_clear_free(d);
        BN_clear_free(p);
        BN_clear_free(q);
        BN_clear_free(dp);
        BN_clear_free(dq);
        BN_clear_free(qi);
    } else if (!strcmp(t, "EC")) {
        out->kind = KEY_EC;
        const json_t *crv = json_object_get(k, "crv");
        const char *group = NULL;
        size_t fs = 0;
        if (json_is_string(crv)) {
            const char *cv = json_string_value(crv);
            group = !strcmp(cv, "P-256")   ? "prime256v1"
                    : !strcmp(cv, "P-384") ? "secp384r1"
                    : !strcmp(cv, "P-521") ? "secp521r1"
                                           : NULL;
            fs = !strcmp(cv, "P-256") ? 32 : !strcmp(cv, "P-384") ? 48 : 66;
        }
        size_t xl = 0, yl = 0;
        uint8_t *x = jwk_bytes(k, "x", &xl, &bad), *y = jwk_bytes(k, "y", &yl, &bad);
        BIGNUM *d = priv ? jwk_bn(k, "d", &bad, true) : NULL;
        if (group && x && y && !bad && xl <= fs && yl <= fs) {
            uint8_t pt[1 + 2 * 66] = {4};
            memcpy(pt + 1 + fs - xl, x, xl);
            memcpy(pt + 1 + 2 * fs - yl, y, yl);
            if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
                OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * fs) ==
                    1 &&
                (!d || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1))
                pk = pkey_from_params("EC", bld, priv);
        }
        free(x);
        free(y);
        BN_clear_free(d);
    } else if (!strcmp(t, "OKP")) {
        out->kind = KEY_ED25519;
        const json_t *crv = json_object_get(k, "crv");
        size_t xl = 0, dl = 0;
        uint8_t *x = jwk_bytes(k, "x", &xl, &bad), *d = priv ? jwk_bytes(k, "d", &dl, &bad) : NULL;
        if (json_is_string(crv) && !strcmp(json_string_value(crv), "Ed25519") && !bad) {
            if (d && dl == 32)
                pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, dl);
            else if (!priv && x && xl == 32)
                pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
        }
        free(x);
        if (d)
            cl_free_wipe(d, dl);
    } else {
        OSSL_PARAM_BLD_free(bld);
        snprintf(msg, cap, "invalid JWK: unsupported key type %.32s", t);
        return false;
    }
    OSSL_PARAM_BLD_free(bld);
    if (!pk) {
        snprintf(msg, cap, "invalid JWK: malformed %.8s key", t);
        return false;
    }
    out->pk = pk;
    out->private_part = priv;
    return true;
}

/* A JWK or a JWK set ({"keys": [...]}); false with msg. */
static bool jwk_set(const json_t *j, struct vkeys *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    const json_t *keys = json_is_object(j) ? json_object_get(j, "keys") : NULL;
    size_t n = keys ? json_array_size(keys) : 1;
    if (keys && !json_is_array(keys)) {
        snprintf(msg, cap, "invalid JWK set: \"keys\" must be an array");
        return false;
    }
    out->v = cl_xcalloc(n + 1, sizeof *out->v);
    for (size_t i = 0; i < n; i++) {
        if (!jwk_key(keys ? json_array_get(keys, i) : j, &out->v[out->n], msg, cap)) {
            vkeys_free(out);
            return false;
        }
        out->n++;
    }
    return true;
}

/* OPA's getKeysFromCertOrJWK: a PEM certificate or public key, or a JWK (set). Keys of a JWK
 * set whose alg is not a JWS algorithm are left out. */
static int keys_from_text(struct cl_rego_bctx *c, const char *s, size_t n, struct vkeys *out)
{
    memset(out, 0, sizeof *out);
    struct cl_rego_pem blk;
    size_t rest;
    if (cl_rego_pem_decode(s, n, &blk, &rest)) {
        int rc = 0;
        EVP_PKEY *pk = NULL;
        const unsigned char *p = blk.der;
        if (rest < n) {
            rc = cl_rego_bi_error(c, "extra data after a PEM certificate block");
        } else if (!strcmp(blk.type, "CERTIFICATE")) {
            X509 *x = d2i_X509(NULL, &p, (long)blk.len);
            if (!x || (size_t)(p - blk.der) != blk.len)
                rc = cl_rego_bi_error(
                    c, "failed to parse a PEM certificate: x509: malformed certificate");
            else
                pk = X509_get_pubkey(x);
            X509_free(x);
        } else if (!strcmp(blk.type, "PUBLIC KEY")) {
            pk = d2i_PUBKEY(NULL, &p, (long)blk.len);
            if (!pk)
                rc = cl_rego_bi_error(c, "failed to parse a PEM public key: asn1: structure error");
        } else {
            rc = cl_rego_bi_error(c, "failed to extract a Key from the PEM certificate");
        }
        cl_rego_pem_free(&blk);
        if (rc < 0)
            return rc;
        enum key_kind kind;
        if (!pk || !kind_of(pk, &kind)) {
            EVP_PKEY_free(pk);
            return cl_rego_bi_error(
                c, "failed to parse a PEM public key: x509: unknown public key algorithm");
        }
        out->v = cl_xcalloc(1, sizeof *out->v);
        out->v[0].pk = pk;
        out->v[0].kind = kind;
        out->n = 1;
        return 0;
    }
    struct cl_err err = {0};
    json_t *j = cl_json_parse(s, n, JSON_DEPTH, &err);
    if (!j)
        return cl_rego_bi_error(c, "failed to parse a JWK key (set): %s", err.msg);
    char msg[CL_ERR_MSG_MAX];
    bool ok = jwk_set(j, out, msg, sizeof msg);
    json_decref(j);
    if (!ok)
        return cl_rego_bi_error(c, "failed to parse a JWK key (set): %s", msg);
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (out->v[i].alg[0] && !known_alg(out->v[i].alg, strlen(out->v[i].alg))) {
            EVP_PKEY_free(out->v[i].pk);
            if (out->v[i].secret)
                cl_free_wipe(out->v[i].secret, out->v[i].secret_len);
            free(out->v[i].kid);
            continue;
        }
        out->v[k++] = out->v[i];
    }
    out->n = k;
    return 0;
}

/* ---- signatures ---- */

static const char *alg_md(const char *alg)
{
    const char *bits = alg + 2;
    return !strcmp(bits, "256")   ? "SHA256"
           : !strcmp(bits, "384") ? "SHA384"
           : !strcmp(bits, "512") ? "SHA512"
                                  : NULL;
}

static bool digest(const char *md, const void *msg, size_t n, uint8_t *out, size_t *outlen)
{
    EVP_MD *m = EVP_MD_fetch(NULL, md, NULL);
    unsigned l = 0;
    bool ok = m && EVP_Digest(msg, n, out, &l, m, NULL) == 1;
    EVP_MD_free(m);
    *outlen = l;
    return ok;
}

static bool hmac_eq(const char *md, const uint8_t *key, size_t kl, const void *msg, size_t n,
                    const uint8_t *sig, size_t sl)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hl = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)md, 0),
        OSSL_PARAM_construct_end()};
    bool ok = ctx && EVP_MAC_init(ctx, kl ? key : (const uint8_t *)"", kl, params) == 1 &&
              EVP_MAC_update(ctx, msg, n) == 1 && EVP_MAC_final(ctx, h, &hl, sizeof h) == 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok && hl == sl && cl_memeq_ct(h, sig, sl);
}

/* RSA PKCS#1 v1.5 or PSS (salt length recovered) over a digest; the signature must have the
 * key's size. */
static bool rsa_verify(EVP_PKEY *pk, bool pss, const char *md, const uint8_t *dg, size_t dl,
                       const uint8_t *sig, size_t sl)
{
    if ((size_t)EVP_PKEY_get_size(pk) != sl)
        return false;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    EVP_MD *m = EVP_MD_fetch(NULL, md, NULL);
    bool ok =
        ctx && m && EVP_PKEY_verify_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, m) == 1 &&
        (!pss || (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, m) == 1 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) == 1)) &&
        EVP_PKEY_verify(ctx, sig, sl, dg, dl) == 1;
    EVP_MD_free(m);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ECDSA with r || s split in the middle of the signature (Go's verifyES). */
static bool ecdsa_verify(EVP_PKEY *pk, const uint8_t *dg, size_t dl, const uint8_t *sig, size_t sl)
{
    size_t h = sl / 2;
    BIGNUM *r = BN_bin2bn(sig, (int)h, NULL), *s = BN_bin2bn(sig + h, (int)(sl - h), NULL);
    ECDSA_SIG *es = ECDSA_SIG_new();
    bool ok = false;
    if (r && s && es && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL;
        unsigned char *der = NULL;
        int derl = i2d_ECDSA_SIG(es, &der);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        ok = derl > 0 && ctx && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, der, (size_t)derl, dg, dl) == 1;
        EVP_PKEY_CTX_free(ctx);
        OPENSSL_free(der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

static bool ed25519_verify(EVP_PKEY *pk, const void *msg, size_t n, const uint8_t *sig, size_t sl)
{
    if (sl != 64)
        return false;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestVerifyInit(m, NULL, NULL, NULL, pk) == 1 &&
              EVP_DigestVerify(m, sig, sl, msg, n) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* Verifies msg with key for the JWS algorithm alg (jwsbb.Verify): the key type must fit. */
static bool jws_verify(const struct vkey *k, const char *alg, const void *msg, size_t n,
                       const uint8_t *sig, size_t sl)
{
    if (!strcmp(alg, "EdDSA"))
        return k->kind == KEY_ED25519 && ed25519_verify(k->pk, msg, n, sig, sl);
    const char *md = strlen(alg) == 5 ? alg_md(alg) : NULL;
    if (!md)
        return false;
    if (alg[0] == 'H' && alg[1] == 'S')
        return k->kind == KEY_SECRET && hmac_eq(md, k->secret, k->secret_len, msg, n, sig, sl);
    uint8_t dg[EVP_MAX_MD_SIZE];
    size_t dl;
    if (!digest(md, msg, n, dg, &dl))
        return false;
    if ((alg[0] == 'R' || alg[0] == 'P') && alg[1] == 'S')
        return k->kind == KEY_RSA && rsa_verify(k->pk, alg[0] == 'P', md, dg, dl, sig, sl);
    if (alg[0] == 'E' && alg[1] == 'S') {
        if (k->kind != KEY_EC || sl != 2 * (size_t)((EVP_PKEY_get_bits(k->pk) + 7) / 8))
            return false;
        return ecdsa_verify(k->pk, dg, dl, sig, sl);
    }
    return false;
}

/* ---- io.jwt.decode ---- */

static int decode_token(struct cl_rego_bctx *c, const struct cl_rv *jwt, int depth,
                        struct cl_rv **out)
{
    if (depth > 32)
        return cl_rego_bi_error(c, "JWT nesting too deep");
    struct token t;
    if (split_token(c, jwt, &t) < 0)
        return -1;
    struct cl_rv *hdr = decode_header(c, &t);
    if (!hdr)
        return -1;
    char msg[CL_ERR_MSG_MAX];
    size_t pl;
    uint8_t *p = b64url_decode(t.payload, t.pl, &pl, msg, sizeof msg);
    if (!p) {
        cl_rv_decref(hdr);
        return cl_rego_bi_error(c, "JWT payload had invalid encoding: %s", msg);
    }
    const struct cl_rv *cty = cl_rv_obj_get_str(hdr, "cty");
    if (cty && cty->type == CL_RV_STRING && !strcmp(S(cty), "JWT")) {
        /* a nested token, possibly quoted */
        size_t a = 0, b = pl;
        while (a < b && (p[a] == '"' || p[a] == '\''))
            a++;
        while (b > a && (p[b - 1] == '"' || p[b - 1] == '\''))
            b--;
        struct cl_rv *inner = cl_rv_str((const char *)p + a, b - a);
        free(p);
        cl_rv_decref(hdr);
        int rc = decode_token(c, inner, depth + 1, out);
        cl_rv_decref(inner);
        return rc;
    }
    struct cl_rv *payload = json_object_rv(p, pl, msg, sizeof msg);
    free(p);
    if (!payload) {
        cl_rv_decref(hdr);
        return cl_rego_bi_error(c, "%s", msg);
    }
    size_t sl;
    uint8_t *sig = b64url_decode(t.sig, t.sl, &sl, msg, sizeof msg);
    if (!sig) {
        cl_rv_decref(hdr);
        cl_rv_decref(payload);
        return cl_rego_bi_error(c, "JWT signature had invalid encoding: %s", msg);
    }
    char *hex = cl_hex_encode(sig, sl);
    free(sig);
    struct cl_rv *r = cl_rv_array(3);
    cl_rv_array_push(r, hdr);
    cl_rv_array_push(r, payload);
    cl_rv_array_push(r, cl_rv_strz(hex ? hex : ""));
    free(hex);
    return OUT(r);
}

static int bi_decode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_reserve(c, cl_rv_len(a[0]) * 4) < 0)
        return -2;
    return decode_token(c, a[0], 0, out);
}

/* ---- io.jwt.verify_* ---- */

enum vfamily { FAM_RS, FAM_PS, FAM_ES, FAM_ED };

/* OPA's builtinJWTVerify with its per-family key check. */
static int verify_asym(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                       enum vfamily fam, const char *md)
{
    struct token t;
    if (split_token(c, a[0], &t) < 0)
        return -1;
    if (cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, (L(a[0]) + L(a[1])) * 4) < 0)
        return -2;
    struct vkeys ks;
    if (keys_from_text(c, S(a[1]), L(a[1]), &ks) < 0)
        return -1;
    size_t sl;
    uint8_t *sig = decode_signature(c, &t, &sl);
    struct cl_rv *hdr = sig ? decode_header(c, &t) : NULL;
    struct header h;
    int rc = -1;
    if (!hdr || parse_header(c, hdr, &h) < 0)
        goto out;
    size_t ml = t.hl + 1 + t.pl;
    const char *msg = t.header;
    uint8_t dg[EVP_MAX_MD_SIZE];
    size_t dl = 0;
    if (md && !digest(md, msg, ml, dg, &dl)) {
        rc = cl_rego_bi_error(c, "digest %s unavailable", md);
        goto out;
    }
    bool valid = false;
    const struct vkey *only = NULL;
    if (h.kidl)
        for (size_t i = 0; i < ks.n && !only; i++)
            if (ks.v[i].kid && strlen(ks.v[i].kid) == h.kidl && !memcmp(ks.v[i].kid, h.kid, h.kidl))
                only = &ks.v[i];
    for (size_t i = 0; i < ks.n && !valid; i++) {
        const struct vkey *k = only ? only : &ks.v[i];
        if (!only && k->alg[0] && (strlen(k->alg) != h.algl || memcmp(k->alg, h.alg, h.algl) != 0))
            continue;
        /* OPA's type assertion: only a public key of the family verifies */
        if (!k->private_part) {
            switch (fam) {
            case FAM_RS:
            case FAM_PS:
                valid = k->kind == KEY_RSA && rsa_verify(k->pk, fam == FAM_PS, md, dg, dl, sig, sl);
                break;
            case FAM_ES:
                valid = k->kind == KEY_EC && ecdsa_verify(k->pk, dg, dl, sig, sl);
                break;
            case FAM_ED:
                valid = k->kind == KEY_ED25519 && ed25519_verify(k->pk, msg, ml, sig, sl);
                break;
            }
        }
        if (only)
            break;
    }
    rc = OUT(cl_rv_bool(valid));
out:
    cl_rv_decref(hdr);
    free(sig);
    vkeys_free(&ks);
    return rc;
}

#define VERIFY(name, fam, md)                                                                      \
    static int name(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)            \
    {                                                                                              \
        return verify_asym(c, a, out, fam, md);                                                    \
    }
VERIFY(bi_verify_rs256, FAM_RS, "SHA256")
VERIFY(bi_verify_rs384, FAM_RS, "SHA384")
VERIFY(bi_verify_rs512, FAM_RS, "SHA512")
VERIFY(bi_verify_ps256, FAM_PS, "SHA256")
VERIFY(bi_verify_ps384, FAM_PS, "SHA384")
VERIFY(bi_verify_ps512, FAM_PS, "SHA512")
VERIFY(bi_verify_es256, FAM_ES, "SHA256")
VERIFY(bi_verify_es384, FAM_ES, "SHA384")
VERIFY(bi_verify_es512, FAM_ES, "SHA512")
VERIFY(bi_verify_eddsa, FAM_ED, NULL)

static int verify_hs(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                     const char *md)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    struct token t;
    if (split_token(c, a[0], &t) < 0)
        return -1;
    size_t sl;
    uint8_t *sig = decode_signature(c, &t, &sl);
    if (!sig)
        return -1;
    bool ok = hmac_eq(md, (const uint8_t *)S(a[1]), L(a[1]), t.header, t.hl + 1 + t.pl, sig, sl);
    free(sig);
    return OUT(cl_rv_bool(ok));
}

static int bi_verify_hs256(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return verify_hs(c, a, out, "SHA256");
}
static int bi_verify_hs384(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return verify_hs(c, a, out, "SHA384");
}
static int bi_verify_hs512(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return verify_hs(c, a, out, "SHA512");
}

/* ---- io.jwt.decode_verify ---- */

struct constraints {
    struct vkeys keys;
    bool has_keys;
    const struct cl_rv *secret, *alg, *iss, *aud;
    double time_ns;
    bool has_time;
};

static int time_constraint(struct cl_rego_bctx *c, const struct cl_rv *v, double *t)
{
    if (v->type != CL_RV_NUMBER)
        return cl_rego_bi_error(c, "token time constraint: must be a number");
    double d = cl_rv_as_double(v);
    if (d < 0)
        return cl_rego_bi_error(c, "token time constraint: must not be negative");
    *t = d;
    return 0;
}

static int parse_constraints(struct cl_rego_bctx *c, const struct cl_rv *o, struct constraints *k)
{
    memset(k, 0, sizeof *k);
    for (size_t i = 0; i < o->u.obj.len; i++) {
        const struct cl_rv *key = o->u.obj.keys[i], *v = o->u.obj.vals[i];
        const char *name = key->type == CL_RV_STRING ? S(key) : "";
        const struct cl_rv **slot = !strcmp(name, "secret") ? &k->secret
                                    : !strcmp(name, "alg")  ? &k->alg
                                    : !strcmp(name, "iss")  ? &k->iss
                                    : !strcmp(name, "aud")  ? &k->aud
                                                            : NULL;
        if (slot) {
            if (v->type != CL_RV_STRING)
                return cl_rego_bi_error(c, "%s constraint: must be a string", name);
            *slot = v;
        } else if (!strcmp(name, "cert")) {
            if (v->type != CL_RV_STRING)
                return cl_rego_bi_error(c, "cert constraint: must be a string");
            vkeys_free(&k->keys);
            if (keys_from_text(c, S(v), L(v), &k->keys) < 0)
                return -1;
            k->has_keys = true;
        } else if (!strcmp(name, "time")) {
            if (time_constraint(c, v, &k->time_ns) < 0)
                return -1;
            k->has_time = true;
        } else {
            char *t = cl_rv_dump(key);
            int rc = cl_rego_bi_error(c, "unknown token validation constraint: %.*s", 100,
                                      key->type == CL_RV_STRING ? S(key) : t);
            free(t);
            return rc;
        }
    }
    if (!k->has_time)
        k->time_ns = (double)cl_rego_bi_now_ns(c);
    int n = (k->has_keys ? 1 : 0) + (k->secret && L(k->secret) ? 1 : 0);
    if (n > 1)
        return cl_rego_bi_error(c, "duplicate key constraints");
    if (n < 1)
        return cl_rego_bi_error(c, "no key constraint");
    return 0;
}

static bool constraints_verify(const struct constraints *k, const struct header *h, const char *msg,
                               size_t ml, const uint8_t *sig, size_t sl)
{
    char alg[16];
    if (h->algl >= sizeof alg)
        return false;
    memcpy(alg, h->alg, h->algl);
    alg[h->algl] = 0;
    if (k->has_keys) {
        if (h->kidl)
            for (size_t i = 0; i < k->keys.n; i++) {
                const struct vkey *key = &k->keys.v[i];
                if (key->kid && strlen(key->kid) == h->kidl && !memcmp(key->kid, h->kid, h->kidl))
                    return jws_verify(key, alg, msg, ml, sig, sl);
            }
        for (size_t i = 0; i < k->keys.n; i++) {
            const struct vkey *key = &k->keys.v[i];
            if (key->alg[0] && strcmp(key->alg, alg) != 0)
                continue;
            if (jws_verify(key, alg, msg, ml, sig, sl))
                return true;
        }
        return false;
    }
    struct vkey sk = {.kind = KEY_SECRET,
                      .secret = (uint8_t *)(uintptr_t)S(k->secret),
                      .secret_len = L(k->secret)};
    return jws_verify(&sk, alg, msg, ml, sig, sl);
}

static bool valid_audience(const struct cl_rv *aud, const struct cl_rv *want)
{
    const char *w = want ? S(want) : "";
    size_t wl = want ? L(want) : 0;
    if (aud->type == CL_RV_STRING)
        return L(aud) == wl && !memcmp(S(aud), w, wl);
    if (aud->type != CL_RV_ARRAY)
        return false;
    for (size_t i = 0; i < aud->u.arr.len; i++) {
        const struct cl_rv *e = aud->u.arr.items[i];
        if (e->type == CL_RV_STRING && L(e) == wl && !memcmp(S(e), w, wl))
            return true;
    }
    return false;
}

static struct cl_rv *dv_result(bool ok, struct cl_rv *hdr, struct cl_rv *payload)
{
    struct cl_rv *r = cl_rv_array(3);
    cl_rv_array_push(r, cl_rv_bool(ok));
    cl_rv_array_push(r, ok ? hdr : cl_rv_object());
    cl_rv_array_push(r, ok ? payload : cl_rv_object());
    if (!ok) {
        cl_rv_decref(hdr);
        cl_rv_decref(payload);
    }
    return r;
}

static int bi_decode_verify(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 1, CL_RV_OBJECT) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, cl_rv_len(a[0]) * 4) < 0)
        return -2;
    struct constraints k;
    int rc = parse_constraints(c, a[1], &k);
    struct cl_rv *tok = cl_rv_incref(a[0]), *hdr = NULL, *payload = NULL;
    uint8_t *p = NULL;
    size_t pl = 0;
    if (rc < 0)
        goto out;
    for (int depth = 0;; depth++) {
        struct token t;
        struct header h;
        rc = -1;
        if (depth > 32) {
            rc = cl_rego_bi_error(c, "JWT nesting too deep");
            goto out;
        }
        if (split_token(c, tok, &t) < 0)
            goto out;
        cl_rv_decref(hdr);
        if (!(hdr = decode_header(c, &t)) || parse_header(c, hdr, &h) < 0)
            goto out;
        if (!h.algl || h.crit_unknown ||
            (k.alg && (L(k.alg) != h.algl || memcmp(S(k.alg), h.alg, h.algl) != 0))) {
            rc = OUT(dv_result(false, hdr, NULL));
            hdr = NULL;
            goto out;
        }
        size_t sl;
        uint8_t *sig = decode_signature(c, &t, &sl);
        if (!sig)
            goto out;
        bool ok = constraints_verify(&k, &h, t.header, t.hl + 1 + t.pl, sig, sl);
        free(sig);
        if (!ok) {
            rc = OUT(dv_result(false, hdr, NULL));
            hdr = NULL;
            goto out;
        }
        char msg[CL_ERR_MSG_MAX];
        free(p);
        p = b64url_decode(t.payload, t.pl, &pl, msg, sizeof msg);
        if (!p) {
            rc = cl_rego_bi_error(c, "JWT payload had invalid encoding: %s", msg);
            goto out;
        }
        if (h.ctyl == 3 && !strncasecmp(h.cty, "JWT", 3)) {
            cl_rv_decref(tok);
            tok = cl_rv_str((const char *)p, pl);
            continue;
        }
        payload = json_object_rv(p, pl, msg, sizeof msg);
        if (!payload) {
            rc = cl_rego_bi_error(c, "%s", msg);
            goto out;
        }
        break;
    }
    /* registered claims */
    bool ok = true;
    if (k.iss && L(k.iss)) {
        const struct cl_rv *iss = cl_rv_obj_get_str(payload, "iss");
        ok = iss && iss->type == CL_RV_STRING && L(iss) == L(k.iss) &&
             !memcmp(S(iss), S(k.iss), L(iss));
    }
    const struct cl_rv *aud = cl_rv_obj_get_str(payload, "aud");
    if (ok && aud)
        ok = valid_audience(aud, k.aud);
    else if (ok && k.aud && L(k.aud))
        ok = false;
    struct cl_rv *now = cl_rv_float(k.time_ns / 1000000000.0);
    const struct cl_rv *exp = cl_rv_obj_get_str(payload, "exp"),
                       *nbf = cl_rv_obj_get_str(payload, "nbf");
    if (ok && exp) {
        if (exp->type != CL_RV_NUMBER) {
            cl_rv_decref(now);
            rc = cl_rego_bi_error(c, "exp value must be a number");
            goto out;
        }
        ok = cl_rv_compare(now, exp) < 0;
    }
    if (ok && nbf) {
        if (nbf->type != CL_RV_NUMBER) {
            cl_rv_decref(now);
            rc = cl_rego_bi_error(c, "nbf value must be a number");
            goto out;
        }
        ok = cl_rv_compare(now, nbf) >= 0;
    }
    cl_rv_decref(now);
    rc = OUT(dv_result(ok, hdr, payload));
    hdr = payload = NULL;
out:
    free(p);
    cl_rv_decref(tok);
    cl_rv_decref(hdr);
    cl_rv_decref(payload);
    vkeys_free(&k.keys);
    return rc;
}

/* ---- io.jwt.encode_sign ---- */

/* JSON syntax check (Go's json.Valid). */
static const char *jv_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *jv_value(const char *p, const char *e, int depth);

static const char *jv_string(const char *p, const char *e)
{
    if (p >= e || *p != '"')
        return NULL;
    for (p++; p < e; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"')
            return p + 1;
        if (ch < 0x20)
            return NULL;
        if (ch == '\\') {
            if (++p >= e)
                return NULL;
            if (*p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++p >= e || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                                      (*p >= 'A' && *p <= 'F')))
                        return NULL;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *jv_number(const char *p, const char *e)
{
    if (p < e && *p == '-')
        p++;
    if (p >= e || !(*p >= '0' && *p <= '9'))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !(*p >= '0' && *p <= '9'))
            return NULL;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !(*p >= '0' && *p <= '9'))
            return NULL;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static const char *jv_value(const char *p, const char *e, int depth)
{
    if (depth > 10000)
        return NULL;
    p = jv_ws(p, e);
    if (p >= e)
        return NULL;
    switch (*p) {
    case '{':
        p = jv_ws(p + 1, e);
        if (p < e && *p == '}')
            return p + 1;
        for (;;) {
            p = jv_string(jv_ws(p, e), e);
            if (!p)
                return NULL;
            p = jv_ws(p, e);
            if (p >= e || *p != ':')
                return NULL;
            p = jv_value(p + 1, e, depth + 1);
            if (!p)
                return NULL;
            p = jv_ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            return p < e && *p == '}' ? p + 1 : NULL;
        }
    case '[':
        p = jv_ws(p + 1, e);
        if (p < e && *p == ']')
            return p + 1;
        for (;;) {
            p = jv_value(p, e, depth + 1);
            if (!p)
                return NULL;
            p = jv_ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            return p < e && *p == ']' ? p + 1 : NULL;
        }
    case '"':
        return jv_string(p, e);
    case 't':
        return e - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
    case 'f':
        return e - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
    case 'n':
        return e - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
    default:
        return jv_number(p, e);
    }
}

static bool json_valid(const char *s, size_t n)
{
    const char *p = jv_value(s, s + n, 0);
    return p && jv_ws(p, s + n) == s + n;
}

/* Go's encoding/json string escaping (HTML-safe). */
static void go_json_string(struct cl_sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    cl_sbuf_addc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) {
            switch (ch) {
            case '"':
            case '\\':
                cl_sbuf_addc(b, '\\');
                cl_sbuf_addc(b, (char)ch);
                break;
            case '\b':
                cl_sbuf_adds(b, "\\b");
                break;
            case '\f':
                cl_sbuf_adds(b, "\\f");
                break;
            case '\n':
                cl_sbuf_adds(b, "\\n");
                break;
            case '\r':
                cl_sbuf_adds(b, "\\r");
                break;
            case '\t':
                cl_sbuf_adds(b, "\\t");
                break;
            default:
                if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
                    cl_sbuf_adds(b, "\\u00");
                    cl_sbuf_addc(b, hex[ch >> 4]);
                    cl_sbuf_addc(b, hex[ch & 15]);
                } else {
                    cl_sbuf_addc(b, (char)ch);
                }
            }
            i++;
            continue;
        }
        /* UTF-8 sequence: invalid bytes become U+FFFD; U+2028/2029 are escaped */
        size_t len = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 0;
        uint32_t cp = len == 4 ? ch & 7u : len == 3 ? ch & 15u : ch & 31u;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            ok = (cc & 0xc0) == 0x80;
            cp = cp << 6 | (cc & 0x3fu);
        }
        if (ok)
            ok = !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) &&
                 !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0xd800 && cp <= 0xdfff);
        if (!ok) {
            cl_sbuf_adds(b, "\\ufffd");
            i++;
        } else if (cp == 0x2028 || cp == 0x2029) {
            cl_sbuf_addf(b, "\\u%04x", cp);
            i += len;
        } else {
            cl_sbuf_add(b, s + i, len);
            i += len;
        }
    }
    cl_sbuf_addc(b, '"');
}

struct kv {
    char *key; /* owned */
    size_t kl;
    const struct cl_rv *val;
};

static int kv_cmp(const void *x, const void *y)
{
    const struct kv *a = x, *b = y;
    int r = memcmp(a->key, b->key, a->kl < b->kl ? a->kl : b->kl);
    return r ? r : (a->kl > b->kl) - (a->kl < b->kl);
}

/* Go's json.Marshal of OPA's ast.JSON(v): objects with sorted keys (non-string keys as their
 * JSON text), sets as arrays, numbers as OPA prints them. */
static void go_json(struct cl_sbuf *b, const struct cl_rv *v)
{
    switch (v->type) {
    case CL_RV_NULL:
        cl_sbuf_adds(b, "null");
        break;
    case CL_RV_BOOL:
        cl_sbuf_adds(b, v->u.b ? "true" : "false");
        break;
    case CL_RV_NUMBER: {
        char buf[64];
        if (v->big) {
            cl_sbuf_adds(b, v->u.num.big);
        } else {
            cl_rv_format_number(v, buf, sizeof buf);
            cl_sbuf_adds(b, buf);
        }
        break;
    }
    case CL_RV_STRING:
        go_json_string(b, S(v), L(v));
        break;
    case CL_RV_ARRAY:
    case CL_RV_SET:
        cl_sbuf_addc(b, '[');
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i)
                cl_sbuf_addc(b, ',');
            go_json(b, v->u.arr.items[i]);
        }
        cl_sbuf_addc(b, ']');
        break;
    case CL_RV_OBJECT: {
        struct kv *kv = cl_xcalloc(v->u.obj.len + 1, sizeof *kv);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const struct cl_rv *k = v->u.obj.keys[i];
            if (k->type == CL_RV_STRING) {
                kv[i].key = cl_xstrndup(S(k), L(k));
                kv[i].kl = L(k);
            } else {
                struct cl_sbuf t = {0};
                go_json(&t, k);
                kv[i].kl = t.len;
                kv[i].key = t.s ? cl_sbuf_steal(&t) : cl_xstrndup("", 0);
            }
            kv[i].val = v->u.obj.vals[i];
        }
        qsort(kv, v->u.obj.len, sizeof *kv, kv_cmp);
        cl_sbuf_addc(b, '{');
        for (size_t i = 0; i < v->u.obj.len; i++) {
            if (i)
                cl_sbuf_addc(b, ',');
            go_json_string(b, kv[i].key, kv[i].kl);
            cl_sbuf_addc(b, ':');
            go_json(b, kv[i].val);
            free(kv[i].key);
        }
        free(kv);
        cl_sbuf_addc(b, '}');
        break;
    }
    default:
        cl_sbuf_adds(b, "null");
    }
}

/* The header as jwsbb reads it: a member of a JSON object, *absent when the text parses
 * (fastjson-style: a bare number-like token parses lazily) but has no such string member; -1
 * with msg when the text does not parse. */
static int header_member(const char *s, size_t n, const char *name, char *val, size_t cap,
                         bool *absent, char *msg, size_t mcap)
{
    *absent = true;
    const char *p = jv_ws(s, s + n);
    if (p == s + n) {
        snprintf(msg, mcap, "cannot parse JSON: cannot parse empty string");
        return -1;
    }
    struct cl_err err = {0};
    json_t *j = cl_json_parse(s, n, JSON_DEPTH, &err);
    if (!j) {
        bool numberish = true;
        for (const char *q = p; q < s + n && numberish; q++)
            numberish = strchr("0123456789.eE+-", *q) != NULL || *q == ' ' || *q == '\t' ||
                        *q == '\r' || *q == '\n';
        if (numberish)
            return 0;
        snprintf(msg, mcap, "cannot parse JSON: %.300s", err.msg);
        return -1;
    }
    const json_t *m = json_is_object(j) ? json_object_get(j, name) : NULL;
    if (json_is_string(m)) {
        *absent = false;
        snprintf(val, cap, "%s", json_string_value(m));
    }
    json_decref(j);
    return 0;
}

/* A JWS signature of msg with a JWK for alg (jwsbb.Sign). */
static int jws_sign(struct cl_rego_bctx *c, const struct vkey *k, const char *alg, const void *msg,
                    size_t n, uint8_t **sig, size_t *sl)
{
    *sig = NULL;
    if (!strcmp(alg, "EdDSA")) {
        if (k->kind != KEY_ED25519 || !k->private_part)
            return cl_rego_bi_error(
                c, "jwsbb: invalid key for EdDSA: an Ed25519 private key is required");
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        *sig = cl_xmalloc(64);
        *sl = 64;
        bool ok = m && EVP_DigestSignInit(m, NULL, NULL, NULL, k->pk) == 1 &&
                  EVP_DigestSign(m, *sig, sl, msg, n) == 1;
        EVP_MD_CTX_free(m);
        if (!ok)
            return cl_rego_bi_error(c, "jwsbb: EdDSA signing failed");
        return 0;
    }
    const char *md = alg_md(alg);
    if (alg[0] == 'H') {
        if (k->kind != KEY_SECRET)
            return cl_rego_bi_error(c, "jwsbb: invalid key for %s: a symmetric key is required",
                                    alg);
        *sig = cl_xmalloc(EVP_MAX_MD_SIZE);
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM params[2] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)md, 0),
            OSSL_PARAM_construct_end()};
        bool ok = ctx &&
                  EVP_MAC_init(ctx, k->secret_len ? k->secret : (const uint8_t *)"", k->secret_len,
                               params) == 1 &&
                  EVP_MAC_update(ctx, msg, n) == 1 &&
                  EVP_MAC_final(ctx, *sig, sl, EVP_MAX_MD_SIZE) == 1;
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        if (!ok)
            return cl_rego_bi_error(c, "jwsbb: HMAC failed");
        return 0;
    }
    bool rsa = alg[0] == 'R' || alg[0] == 'P';
    if ((rsa && k->kind != KEY_RSA) || (!rsa && k->kind != KEY_EC) || !k->private_part)
        return cl_rego_bi_error(c, "jwsbb: invalid key for %s: a %s private key is required", alg,
                                rsa ? "RSA" : "ECDSA");
    uint8_t dg[EVP_MAX_MD_SIZE];
    size_t dl;
    if (!digest(md, msg, n, dg, &dl))
        return cl_rego_bi_error(c, "digest %s unavailable", md);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pk, NULL);
    EVP_MD *m = EVP_MD_fetch(NULL, md, NULL);
    size_t cap = (size_t)EVP_PKEY_get_size(k->pk);
    uint8_t *der = cl_xmalloc(cap + 1);
    size_t derl = cap;
    bool ok = ctx && m && EVP_PKEY_sign_init(ctx) == 1;
    if (ok && rsa)
        ok =
            EVP_PKEY_CTX_set_rsa_padding(ctx, alg[0] == 'P' ? RSA_PKCS1_PSS_PADDING
                                                            : RSA_PKCS1_PADDING) == 1 &&
            EVP_PKEY_CTX_set_signature_md(ctx, m) == 1 &&
            (alg[0] != 'P' || (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, m) == 1 &&
                               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1));
    ok = ok && EVP_PKEY_sign(ctx, der, &derl, dg, dl) == 1;
    EVP_MD_free(m);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        free(der);
        return cl_rego_bi_error(c, "jwsbb: %s signing failed", alg);
    }
    if (rsa) {
        *sig = der;
        *sl = derl;
        return 0;
    }
    /* ECDSA: DER (r, s) to the fixed-size r || s of JWS */
    size_t fs = (size_t)(EVP_PKEY_get_bits(k->pk) + 7) / 8;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derl);
    free(der);
    if (!es)
        return cl_rego_bi_error(c, "jwsbb: %s signing failed", alg);
    *sig = cl_xmalloc(2 * fs);
    *sl = 2 * fs;
    ok = BN_bn2binpad(ECDSA_SIG_get0_r(es), *sig, (int)fs) == (int)fs &&
         BN_bn2binpad(ECDSA_SIG_get0_s(es), *sig + fs, (int)fs) == (int)fs;
    ECDSA_SIG_free(es);
    if (!ok)
        return cl_rego_bi_error(c, "jwsbb: %s signing failed", alg);
    return 0;
}

/* OPA's commonBuiltinJWTEncodeSign: headers and payload as given, the first key of the JWK
 * (set) text. */
static int encode_sign(struct cl_rego_bctx *c, const char *hdr, size_t hl, const char *pay,
                       size_t pl, const char *jwk, size_t jl, struct cl_rv **out)
{
    if (cl_rego_bi_reserve(c, (hl + pl) * 2 + jl + 1024) < 0)
        return -2;
    struct cl_err err = {0};
    json_t *j = cl_json_parse(jwk, jl, JSON_DEPTH, &err);
    if (!j)
        return cl_rego_bi_error(c, "failed to parse JWK: %s", err.msg);
    struct vkeys ks;
    char msg[CL_ERR_MSG_MAX];
    bool ok = jwk_set(j, &ks, msg, sizeof msg);
    json_decref(j);
    if (!ok)
        return cl_rego_bi_error(c, "failed to parse JWK: %s", msg);
    int rc = -1;
    uint8_t *sig = NULL;
    if (ks.n == 0) {
        rc = cl_rego_bi_error(c, "no keys found in JWK set");
        goto out;
    }
    char alg[64], typ[64];
    bool absent;
    if (header_member(hdr, hl, "alg", alg, sizeof alg, &absent, msg, sizeof msg) < 0) {
        rc = cl_rego_bi_error(c, "missing or invalid 'alg' header: %s", msg);
        goto out;
    }
    if (absent) {
        rc =
            cl_rego_bi_error(c, "missing or invalid 'alg' header: jwsbb: header \"alg\" not found");
        goto out;
    }
    if (!known_alg(alg, strlen(alg))) {
        rc = cl_rego_bi_error(c, "unknown JWS algorithm: %s", alg);
        goto out;
    }
    if (header_member(hdr, hl, "typ", typ, sizeof typ, &absent, msg, sizeof msg) < 0 || absent ||
        !strcmp(typ, "JWT")) {
        if (!json_valid(pay, pl)) {
            rc = cl_rego_bi_error(c, "type is JWT but payload is not JSON");
            goto out;
        }
    }
    char *h64 = cl_b64_encode(hdr, hl, CL_B64_URL), *p64 = cl_b64_encode(pay, pl, CL_B64_URL);
    struct cl_sbuf b = {0};
    cl_sbuf_adds(&b, h64 ? h64 : "");
    cl_sbuf_addc(&b, '.');
    cl_sbuf_adds(&b, p64 ? p64 : "");
    free(h64);
    free(p64);
    size_t sl;
    if (jws_sign(c, &ks.v[0], alg, b.s, b.len, &sig, &sl) < 0) {
        cl_sbuf_free(&b);
        goto out;
    }
    char *s64 = cl_b64_encode(sig, sl, CL_B64_URL);
    cl_sbuf_addc(&b, '.');
    cl_sbuf_adds(&b, s64 ? s64 : "");
    free(s64);
    rc = OUT(cl_rv_str(b.s, b.len));
    cl_sbuf_free(&b);
out:
    free(sig);
    vkeys_free(&ks);
    return rc;
}

static int bi_encode_sign_raw(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 2, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 ||
        cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    return encode_sign(c, S(a[0]), L(a[0]), S(a[1]), L(a[1]), S(a[2]), L(a[2]), out);
}

static int bi_encode_sign(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    size_t need = cl_rv_size(a[0]) + cl_rv_size(a[1]) + cl_rv_size(a[2]);
    if (cl_rego_bi_reserve(c, need * 2) < 0)
        return -2;
    struct cl_sbuf t[3] = {{0}};
    for (int i = 0; i < 3; i++)
        go_json(&t[i], a[i]);
    int rc = encode_sign(c, t[0].s, t[0].len, t[1].s, t[1].len, t[2].s, t[2].len, out);
    for (int i = 0; i < 3; i++) {
        if (t[i].s)
            explicit_bzero(t[i].s, t[i].len);
        cl_sbuf_free(&t[i]);
    }
    return rc;
}

const struct cl_rego_builtin cl_rego_builtins_jwt[] = {
    {"io.jwt.decode", 1, bi_decode, 0},
    {"io.jwt.verify_rs256", 2, bi_verify_rs256, 0},
    {"io.jwt.verify_rs384", 2, bi_verify_rs384, 0},
    {"io.jwt.verify_rs512", 2, bi_verify_rs512, 0},
    {"io.jwt.verify_ps256", 2, bi_verify_ps256, 0},
    {"io.jwt.verify_ps384", 2, bi_verify_ps384, 0},
    {"io.jwt.verify_ps512", 2, bi_verify_ps512, 0},
    {"io.jwt.verify_es256", 2, bi_verify_es256, 0},
    {"io.jwt.verify_es384", 2, bi_verify_es384, 0},
    {"io.jwt.verify_es512", 2, bi_verify_es512, 0},
    {"io.jwt.verify_eddsa", 2, bi_verify_eddsa, 0},
    {"io.jwt.verify_hs256", 2, bi_verify_hs256, 0},
    {"io.jwt.verify_hs384", 2, bi_verify_hs384, 0},
    {"io.jwt.verify_hs512", 2, bi_verify_hs512, 0},
    {"io.jwt.decode_verify", 2, bi_decode_verify, CL_REGO_BI_NONDET},
    {"io.jwt.encode_sign_raw", 3, bi_encode_sign_raw, CL_REGO_BI_NONDET},
    {"io.jwt.encode_sign", 3, bi_encode_sign, CL_REGO_BI_NONDET},
    {NULL, 0, NULL, 0},
};
