/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWK (RFC 7517/7518/8037) to and from OpenSSL keys, and the RFC 7638 thumbprint. Incoming
 * JWKs are untrusted: every member is type-checked, EC coordinates must have exactly the
 * curve's length and lie on the curve, RSA moduli are bounded, and private members must
 * match the public ones.
 */
#include "crypto/crypto_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <pthread.h>
#include <string.h>

/* Largest private-member value we decode: an RSA-8192 private exponent, plus a leading 0. */
#define JWK_MAX_MEMBER (CL_RSA_MAX_BITS / 8 + 1)

/* ---- export ---- */

/* RSA private members in the order of RFC 7518 §6.3.2; "d" first. */
static const struct {
    const char *jwk, *param;
} rsa_priv_members[] = {
    {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
    {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
    {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
};
#define RSA_PRIV_N CL_ARRAY_LEN(rsa_priv_members)

/* Sets o[key] = base64url(buf); wipes the temporary text when it holds private material. */
static int put_b64(json_t *o, const char *key, const uint8_t *buf, size_t len, bool secret)
{
    cl_str *s = cl_b64_encode(buf, len, CL_B64_URL);
    if (!s)
        return CL_ENOMEM;
    int rc = json_object_set_new(o, key, json_string(s)) == 0 ? 0 : CL_ENOMEM;
    if (secret)
        cl_free_wipe(s, strlen(s));
    else
        free(s);
    return rc;
}

/* Sets o[key] from the BIGNUM parameter `param` of key, padded to `pad` bytes (0: minimal). */
static int put_bn(json_t *o, const char *key, const EVP_PKEY *pk, const char *param, size_t pad,
                  bool secret, struct cl_err *err)
{
    CL_AUTO(bn_secret) *bn = NULL;
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return cl_ossl_err(err, CL_EINVAL, "JWK export: key has no '%s'", param);
    size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
    if (n == 0)
        n = 1;
    if (n > JWK_MAX_MEMBER)
        return cl_err_set(err, CL_ELIMIT, "JWK export: '%s' is too large", key);
    uint8_t buf[JWK_MAX_MEMBER];
    int rc = BN_bn2binpad(bn, buf, (int)n) == (int)n ? 0 : CL_EINVAL;
    if (rc == 0)
        rc = put_b64(o, key, buf, n, secret);
    explicit_bzero(buf, sizeof buf);
    if (rc < 0)
        return cl_err_set(err, rc, "JWK export: cannot encode '%s'", key);
    return 0;
}

static int export_ec(json_t *o, const EVP_PKEY *key, bool priv, struct cl_err *err)
{
    const struct cl_curve *c = cl_crypto_curve_of(key);
    if (!c)
        return cl_err_set(err, CL_EUNSUPPORTED, "JWK export: EC key on an unsupported curve");
    if (json_object_set_new(o, "kty", json_string("EC")) < 0 ||
        json_object_set_new(o, "crv", json_string(c->jwk)) < 0)
        return cl_err_set(err, CL_ENOMEM, "JWK export: out of memory");
    /* One uncompressed encoding (04 || x || y) costs one affine conversion; asking for x and
     * y separately costs two (each a field inversion). */
    uint8_t pt[1 + 2 * 66];
    size_t ptlen = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt,
                                        &ptlen) != 1 ||
        ptlen != 1 + 2 * c->coord_len || pt[0] != 0x04)
        return cl_ossl_err(err, CL_EINVAL, "JWK export: cannot read the EC public point");
    int rc;
    if ((rc = put_b64(o, "x", pt + 1, c->coord_len, false)) < 0 ||
        (rc = put_b64(o, "y", pt + 1 + c->coord_len, c->coord_len, false)) < 0)
        return cl_err_set(err, rc, "JWK export: out of memory");
    if (priv && (rc = put_bn(o, "d", key, OSSL_PKEY_PARAM_PRIV_KEY, c->coord_len, true, err)) < 0)
        return rc;
    return 0;
}

static int export_rsa(json_t *o, const EVP_PKEY *key, bool priv, struct cl_err *err)
{
    if (json_object_set_new(o, "kty", json_string("RSA")) < 0)
        return cl_err_set(err, CL_ENOMEM, "JWK export: out of memory");
    int rc;
    if ((rc = put_bn(o, "n", key, OSSL_PKEY_PARAM_RSA_N, 0, false, err)) < 0 ||
        (rc = put_bn(o, "e", key, OSSL_PKEY_PARAM_RSA_E, 0, false, err)) < 0)
        return rc;
    if (!priv)
        return 0;
    if ((rc = put_bn(o, "d", key, OSSL_PKEY_PARAM_RSA_D, 0, true, err)) < 0)
        return rc;
    /* CRT members are all-or-none (RFC 7518 §6.3.2): keys built from n, e, d lack them */
    BIGNUM *probe = NULL;
    bool has_crt = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_FACTOR1, &probe) == 1;
    BN_clear_free(probe);
    ERR_clear_error();
    for (size_t i = 1; has_crt && i < RSA_PRIV_N; i++)
        if ((rc = put_bn(o, rsa_priv_members[i].jwk, key, rsa_priv_members[i].param, 0, true,
                         err)) < 0)
            return rc;
    return 0;
}

static int export_ed25519(json_t *o, const EVP_PKEY *key, bool priv, struct cl_err *err)
{
    uint8_t buf[32];
    size_t n = sizeof buf;
    if (json_object_set_new(o, "kty", json_string("OKP")) < 0 ||
        json_object_set_new(o, "crv", json_string("Ed25519")) < 0)
        return cl_err_set(err, CL_ENOMEM, "JWK export: out of memory");
    if (EVP_PKEY_get_raw_public_key(key, buf, &n) != 1 || n != sizeof buf)
        return cl_ossl_err(err, CL_EINVAL, "JWK export: Ed25519 public key unavailable");
    if (put_b64(o, "x", buf, n, false) < 0)
        return cl_err_set(err, CL_ENOMEM, "JWK export: out of memory");
    if (!priv)
        return 0;
    n = sizeof buf;
    int rc = 0;
    if (EVP_PKEY_get_raw_private_key(key, buf, &n) != 1 || n != sizeof buf)
        rc = cl_ossl_err(err, CL_EINVAL, "JWK export: Ed25519 private key unavailable");
    else if (put_b64(o, "d", buf, n, true) < 0)
        rc = cl_err_set(err, CL_ENOMEM, "JWK export: out of memory");
    explicit_bzero(buf, sizeof buf);
    return rc;
}

json_t *cl_jwk_from_pkey(cl_pkey *key, bool include_private, const char *alg, struct cl_err *err)
{
    const char *type = cl_crypto_key_type(key);
    if (!type) {
        cl_err_set(err, CL_EUNSUPPORTED, "JWK export: unsupported key type");
        return NULL;
    }
    if (include_private && !cl_crypto_has_private(key)) {
        cl_err_set(err, CL_EINVAL, "JWK export: the key has no private part");
        return NULL;
    }
    CL_AUTO(json_t) *o = json_object();
    if (!o) {
        cl_err_set(err, CL_ENOMEM, "JWK export: out of memory");
        return NULL;
    }
    int rc;
    if (strcmp(type, "EC") == 0)
        rc = export_ec(o, key, include_private, err);
    else if (strcmp(type, "RSA") == 0)
        rc = export_rsa(o, key, include_private, err);
    else
        rc = export_ed25519(o, key, include_private, err);
    if (rc < 0)
        return NULL;
    if (alg && json_object_set_new(o, "alg", json_string(alg)) < 0) {
        cl_err_set(err, CL_EINVAL, "JWK export: bad alg");
        return NULL;
    }
    return CL_STEAL(o);
}

/* ---- import ---- */

/* Optional private member: NULL in *out when absent; exact length when exact != 0. */
static int get_secret(const json_t *jwk, const char *key, size_t exact, size_t max,
                      struct cl_secret **out, struct cl_err *err)
{
    *out = NULL;
    json_t *v = json_object_get(jwk, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return cl_err_set(err, CL_EPARSE, "JWK: '%s' must be a string", key);
    size_t slen = json_string_length(v);
    const char *s = json_string_value(v);
    if (slen != strlen(s))
        return cl_err_set(err, CL_EPARSE, "JWK: '%s' holds a NUL byte", key);
    if (strchr(s, '='))
        return cl_err_set(err, CL_EPARSE, "JWK: '%s': base64url padding '=' not allowed", key);
    if (slen / 4 * 3 > max + 3)
        return cl_err_set(err, CL_ELIMIT, "JWK: '%s' is too long", key);
    struct cl_secret *sec = cl_b64_decode_secret(s, slen, CL_B64_URL, err);
    if (!sec)
        return cl_err_prefix(err, "JWK: '%s'", key);
    if ((exact && sec->len != exact) || sec->len == 0 || sec->len > max) {
        size_t n = sec->len;
        cl_secret_free(sec);
        if (exact)
            return cl_err_set(err, CL_EPARSE, "JWK: '%s' must decode to %zu bytes, not %zu", key,
                              exact, n);
        return cl_err_set(err, CL_EPARSE, "JWK: '%s' has a bad length (%zu bytes)", key, n);
    }
    *out = sec;
    return 0;
}

/* A BIGNUM on the secure heap (so OSSL_PARAM_BLD clears its copy) from secret bytes. */
static BIGNUM *secret_bn(const struct cl_secret *s)
{
    BIGNUM *bn = BN_secure_new();
    if (bn && !BN_bin2bn(s->data, (int)s->len, bn)) {
        BN_clear_free(bn);
        return NULL;
    }
    if (bn)
        BN_set_flags(bn, BN_FLG_CONSTTIME);
    return bn;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld, bool priv, const char *what,
                             struct cl_err *err)
{
    CL_AUTO(OSSL_PARAM) *params = OSSL_PARAM_BLD_to_param(bld);
    CL_AUTO(EVP_PKEY_CTX) *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *k = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(k);
        cl_ossl_err(err, CL_EPARSE, "JWK: %s is not a valid key", what);
        return NULL;
    }
    return k;
}

/* An EC key (public, or a pair when d is given) built from parameters. */
static cl_pkey *import_ec_params(const struct cl_curve *c, const uint8_t *pt, size_t ptlen,
                                 const struct cl_secret *d, struct cl_err *err)
{
    CL_AUTO(OSSL_PARAM_BLD) *bld = OSSL_PARAM_BLD_new();
    CL_AUTO(bn_secret) *dbn = d ? secret_bn(d) : NULL;
    if (!bld || (d && !dbn) ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->ossl, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen) != 1 ||
        (dbn && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn) != 1)) {
        cl_ossl_err(err, CL_ENOMEM, "JWK: cannot build EC parameters");
        return NULL;
    }
    cl_pkey *k = from_params("EC", bld, d != NULL, "(x, y) on the curve", err);
    if (!k)
        cl_err_prefix(err, "JWK %s", c->jwk);
    return k;
}

/*
 * Public-only EC keys are made by duplicating a public-only template of the curve and setting
 * the point: EVP_PKEY_fromdata builds the whole group (Montgomery constants, generator) for
 * every key, which costs more than the rest of the import. The template never holds a private
 * key, so a duplicate cannot carry one.
 */
#define EC_TEMPLATES 4
static struct {
    const struct cl_curve *curve;
    EVP_PKEY *key;
} ec_templates[EC_TEMPLATES];
static pthread_mutex_t ec_templates_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *ec_template(const struct cl_curve *c)
{
    EVP_PKEY *t = NULL;
    pthread_mutex_lock(&ec_templates_lock);
    size_t i = 0;
    for (; i < EC_TEMPLATES && ec_templates[i].curve; i++)
        if (ec_templates[i].curve == c)
            t = ec_templates[i].key;
    if (!t && i < EC_TEMPLATES) {
        CL_AUTO(cl_pkey) *gen = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->ossl);
        uint8_t pt[1 + 2 * 66];
        size_t ptlen = 0;
        CL_AUTO(OSSL_PARAM_BLD) *bld = OSSL_PARAM_BLD_new();
        if (gen && bld &&
            EVP_PKEY_get_octet_string_param(gen, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt,
                                            &ptlen) == 1 &&
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->ossl, 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen) == 1)
            t = from_params("EC", bld, false, "template", NULL);
        if (t) {
            ec_templates[i].curve = c;
            ec_templates[i].key = t;
        }
    }
    pthread_mutex_unlock(&ec_templates_lock);
    return t;
}

/*
 * Public EC keys already imported and checked, by curve and point: a KBS handshake imports
 * the TEE key at /attest (to refuse a bad one early) and again at /resource (from the token,
 * to seal to it), and a client fetching several resources brings the same key each time.
 * The key and the on-curve check are a pure function of (curve, x, y), and an EVP_PKEY is
 * never modified after import, so a hit hands out another reference to the same key.
 * Private keys are never cached.
 */
#define EC_PUB_CACHE 32
static struct {
    const struct cl_curve *curve;
    uint8_t pt[1 + 2 * 66];
    EVP_PKEY *key;
    uint64_t used;
} ec_pub_cache[EC_PUB_CACHE];
static uint64_t ec_pub_clock;
static pthread_mutex_t ec_pub_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *ec_pub_cached(const struct cl_curve *c, const uint8_t *pt, size_t ptlen)
{
    EVP_PKEY *k = NULL;
    pthread_mutex_lock(&ec_pub_lock);
    for (size_t i = 0; i < EC_PUB_CACHE && !k; i++) {
        if (ec_pub_cache[i].curve == c && memcmp(ec_pub_cache[i].pt, pt, ptlen) == 0 &&
            EVP_PKEY_up_ref(ec_pub_cache[i].key) == 1) {
            k = ec_pub_cache[i].key;
            ec_pub_cache[i].used = ++ec_pub_clock;
        }
    }
    pthread_mutex_unlock(&ec_pub_lock);
    return k;
}

static void ec_pub_remember(const struct cl_curve *c, const uint8_t *pt, size_t ptlen, EVP_PKEY *k)
{
    if (EVP_PKEY_up_ref(k) != 1)
        return;
    pthread_mutex_lock(&ec_pub_lock);
    size_t victim = 0;
    for (size_t i = 1; i < EC_PUB_CACHE; i++)
        if (ec_pub_cache[i].used < ec_pub_cache[victim].used)
            victim = i;
    EVP_PKEY *old = ec_pub_cache[victim].key;
    ec_pub_cache[victim].curve = c;
    memset(ec_pub_cache[victim].pt, 0, sizeof ec_pub_cache[victim].pt);
    memcpy(ec_pub_cache[victim].pt, pt, ptlen);
    ec_pub_cache[victim].key = k;
    ec_pub_cache[victim].used = ++ec_pub_clock;
    pthread_mutex_unlock(&ec_pub_lock);
    EVP_PKEY_free(old);
}

static cl_pkey *import_ec(const json_t *jwk, struct cl_err *err)
{
    const char *crv = NULL;
    if (cl_json_get_str(jwk, "crv", &crv, err) < 0) {
        cl_err_prefix(err, "JWK");
        return NULL;
    }
    const struct cl_curve *c = cl_crypto_curve_by_jwk(crv);
    if (!c) {
        cl_err_set(err, CL_EUNSUPPORTED, "JWK: 'crv' '%.32s' is not supported", crv);
        return NULL;
    }
    size_t xl = 0, yl = 0;
    CL_AUTO(cl_bytes) *x = cl_crypto_b64url_member(jwk, "x", c->coord_len, 0, &xl, "JWK", err);
    if (!x)
        return NULL;
    CL_AUTO(cl_bytes) *y = cl_crypto_b64url_member(jwk, "y", c->coord_len, 0, &yl, "JWK", err);
    if (!y)
        return NULL;
    CL_AUTO(cl_secret) *d = NULL;
    if (get_secret(jwk, "d", c->coord_len, c->coord_len, &d, err) < 0)
        return NULL;

    uint8_t pt[1 + 2 * 66];
    size_t ptlen = 1 + 2 * c->coord_len;
    pt[0] = 0x04; /* uncompressed point */
    memcpy(pt + 1, x, xl);
    memcpy(pt + 1 + xl, y, yl);
    if (!d) {
        EVP_PKEY *hit = ec_pub_cached(c, pt, ptlen);
        if (hit)
            return hit;
    }
    /* A public point set on the curve's template is decoded by EC_POINT_oct2point, which
     * refuses x or y >= p and any point off the curve (OpenSSL 3 checks the curve equation
     * when it sets affine coordinates); an uncompressed encoding cannot be the point at
     * infinity. P-256/P-384/P-521 have cofactor 1, so every point on the curve is in the
     * prime-order group: nothing is left to check (test_crypto: off-curve and x >= p twins). */
    EVP_PKEY *tmpl = d ? NULL : ec_template(c);
    CL_AUTO(cl_pkey) *k = tmpl ? EVP_PKEY_dup(tmpl) : NULL;
    if (k) {
        if (EVP_PKEY_set1_encoded_public_key(k, pt, ptlen) != 1) {
            cl_ossl_err(err, CL_EPARSE, "JWK %s: (x, y) is not a point on the curve", c->jwk);
            return NULL;
        }
        ec_pub_remember(c, pt, ptlen, k);
        return CL_STEAL(k);
    }
    if ((k = import_ec_params(c, pt, ptlen, d, err)) == NULL)
        return NULL;
    /* Built from parameters (a private key, or no template): the quick check refuses
     * infinity and points off the curve, and spares the scalar multiplication by the order
     * that the full check does. */
    CL_AUTO(EVP_PKEY_CTX) *chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    if (!chk || EVP_PKEY_public_check_quick(chk) != 1) {
        cl_ossl_err(err, CL_EPARSE, "JWK: 'x'/'y' is not a point on %s", c->jwk);
        return NULL;
    }
    if (d && EVP_PKEY_pairwise_check(chk) != 1) {
        cl_ossl_err(err, CL_EPARSE, "JWK: 'd' does not match 'x'/'y'");
        return NULL;
    }
    if (!d)
        ec_pub_remember(c, pt, ptlen, k);
    return CL_STEAL(k);
}

/* Decoded RSA private members and their BIGNUMs, wiped together. */
typedef struct {
    struct cl_secret *sec[6];
    bn_secret *bn[6];
} rsa_priv;
static void cl_auto_rsa_priv(rsa_priv **p)
{
    for (size_t i = 0; *p && i < RSA_PRIV_N; i++) {
        cl_secret_free((*p)->sec[i]);
        BN_clear_free((*p)->bn[i]);
    }
    free(*p);
}

/* True when the private members fit n and e: n = pq, de = 1 mod (p-1) and mod (q-1),
 * dp = d mod (p-1), dq = d mod (q-1), qi q = 1 mod p with qi < p. OpenSSL's pairwise check
 * also proves p and q prime, which takes seconds for an RSA-8192 key, and a TEE public key
 * sent to the KBS by anyone goes through here: the relations cost microseconds. */
static bool rsa_priv_consistent(const BIGNUM *n, const BIGNUM *e, bn_secret *const *bn)
{
    const BIGNUM *d = bn[0], *p = bn[1], *q = bn[2], *dp = bn[3], *dq = bn[4], *qi = bn[5];
    BN_CTX *ctx = BN_CTX_secure_new();
    if (!ctx)
        return false;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx), *pm1 = BN_CTX_get(ctx), *qm1 = BN_CTX_get(ctx);
    bool ok = qm1 && BN_mul(t, p, q, ctx) && BN_cmp(t, n) == 0 && BN_copy(pm1, p) &&
              BN_sub_word(pm1, 1) && !BN_is_zero(pm1) && BN_copy(qm1, q) && BN_sub_word(qm1, 1) &&
              !BN_is_zero(qm1) && BN_mod_mul(t, d, e, pm1, ctx) && BN_is_one(t) &&
              BN_mod_mul(t, d, e, qm1, ctx) && BN_is_one(t) && BN_nnmod(t, d, pm1, ctx) &&
              BN_cmp(t, dp) == 0 && BN_nnmod(t, d, qm1, ctx) && BN_cmp(t, dq) == 0 &&
              BN_cmp(qi, p) < 0 && BN_mod_mul(t, qi, q, p, ctx) && BN_is_one(t);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return ok;
}

static cl_pkey *import_rsa(const json_t *jwk, struct cl_err *err)
{
    size_t nl = 0, el = 0;
    CL_AUTO(cl_bytes) *n = cl_crypto_b64url_member(jwk, "n", 0, JWK_MAX_MEMBER, &nl, "JWK", err);
    if (!n)
        return NULL;
    CL_AUTO(cl_bytes) *e = cl_crypto_b64url_member(jwk, "e", 0, 8, &el, "JWK", err);
    if (!e)
        return NULL;
    CL_AUTO(BIGNUM) *nbn = BN_bin2bn(n, (int)nl, NULL);
    CL_AUTO(BIGNUM) *ebn = BN_bin2bn(e, (int)el, NULL);
    if (!nbn || !ebn) {
        cl_err_set(err, CL_ENOMEM, "JWK: out of memory");
        return NULL;
    }
    int bits = BN_num_bits(nbn);
    if (bits < CL_RSA_MIN_BITS || bits > CL_RSA_MAX_BITS) {
        cl_err_set(err, CL_EPARSE, "JWK: 'n' has %d bits, outside %d..%d", bits, CL_RSA_MIN_BITS,
                   CL_RSA_MAX_BITS);
        return NULL;
    }
    if (!BN_is_odd(nbn)) {
        cl_err_set(err, CL_EPARSE, "JWK: 'n' is even");
        return NULL;
    }
    if (!BN_is_odd(ebn) || BN_is_one(ebn)) {
        cl_err_set(err, CL_EPARSE, "JWK: 'e' must be odd and greater than 1");
        return NULL;
    }
    if (BN_cmp(ebn, nbn) >= 0) {
        cl_err_set(err, CL_EPARSE, "JWK: 'e' must be smaller than 'n'");
        return NULL;
    }

    CL_AUTO(OSSL_PARAM_BLD) *bld = OSSL_PARAM_BLD_new();
    CL_AUTO(rsa_priv) *rp = calloc(1, sizeof *rp);
    if (!bld || !rp || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, nbn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ebn) != 1) {
        cl_ossl_err(err, CL_ENOMEM, "JWK: cannot build RSA parameters");
        return NULL;
    }
    size_t present = 0;
    for (size_t i = 0; i < RSA_PRIV_N; i++) {
        if (get_secret(jwk, rsa_priv_members[i].jwk, 0, JWK_MAX_MEMBER, &rp->sec[i], err) < 0)
            return NULL;
        if (!rp->sec[i])
            continue;
        present++;
        rp->bn[i] = secret_bn(rp->sec[i]);
        if (!rp->bn[i] || OSSL_PARAM_BLD_push_BN(bld, rsa_priv_members[i].param, rp->bn[i]) != 1) {
            cl_ossl_err(err, CL_ENOMEM, "JWK: cannot build RSA parameters");
            return NULL;
        }
    }
    if (present > 0 && !rp->sec[0]) {
        cl_err_set(err, CL_EPARSE, "JWK: RSA private members without 'd'");
        return NULL;
    }
    if (present > 1 && present != RSA_PRIV_N) {
        cl_err_set(err, CL_EPARSE,
                   "JWK: 'p', 'q', 'dp', 'dq', 'qi' must all be present or all absent");
        return NULL;
    }
    CL_AUTO(cl_pkey) *k = from_params("RSA", bld, present > 0, "'n'/'e'", err);
    if (!k)
        return NULL;
    if (present == RSA_PRIV_N && !rsa_priv_consistent(nbn, ebn, rp->bn)) {
        cl_ossl_err(err, CL_EPARSE, "JWK: RSA private members do not match 'n'/'e'");
        return NULL;
    }
    return CL_STEAL(k);
}

static cl_pkey *import_okp(const json_t *jwk, struct cl_err *err)
{
    const char *crv = NULL;
    if (cl_json_get_str(jwk, "crv", &crv, err) < 0) {
        cl_err_prefix(err, "JWK");
        return NULL;
    }
    if (strcmp(crv, "Ed25519") != 0) {
        cl_err_set(err, CL_EUNSUPPORTED, "JWK: OKP 'crv' '%.32s' is not supported", crv);
        return NULL;
    }
    size_t xl = 0;
    CL_AUTO(cl_bytes) *x = cl_crypto_b64url_member(jwk, "x", 32, 0, &xl, "JWK", err);
    if (!x)
        return NULL;
    CL_AUTO(cl_secret) *d = NULL;
    if (get_secret(jwk, "d", 32, 32, &d, err) < 0)
        return NULL;
    if (!d) {
        cl_pkey *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
        if (!k)
            cl_ossl_err(err, CL_EPARSE, "JWK: 'x' is not an Ed25519 key");
        return k;
    }
    CL_AUTO(cl_pkey) *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d->data, d->len);
    uint8_t pub[32];
    size_t pl = sizeof pub;
    if (!k || EVP_PKEY_get_raw_public_key(k, pub, &pl) != 1 || pl != sizeof pub) {
        cl_ossl_err(err, CL_EPARSE, "JWK: 'd' is not an Ed25519 key");
        return NULL;
    }
    if (memcmp(pub, x, sizeof pub) != 0) {
        cl_err_set(err, CL_EPARSE, "JWK: 'd' does not match 'x'");
        return NULL;
    }
    return CL_STEAL(k);
}

cl_pkey *cl_jwk_to_pkey(const json_t *jwk, struct cl_err *err)
{
    if (!json_is_object(jwk)) {
        cl_err_set(err, CL_EPARSE, "JWK: not a JSON object");
        return NULL;
    }
    const char *kty = NULL;
    if (cl_json_get_str(jwk, "kty", &kty, err) < 0) {
        cl_err_set(err, CL_EPARSE, "JWK: 'kty' missing or not a string");
        return NULL;
    }
    cl_pkey *k;
    if (strcmp(kty, "EC") == 0)
        k = import_ec(jwk, err);
    else if (strcmp(kty, "RSA") == 0)
        k = import_rsa(jwk, err);
    else if (strcmp(kty, "OKP") == 0)
        k = import_okp(jwk, err);
    else {
        cl_err_set(err, CL_EUNSUPPORTED, "JWK: 'kty' '%.16s' is not supported", kty);
        return NULL;
    }
    ERR_clear_error();
    /* a JWK without a required member is malformed, not "not found" */
    if (!k && err && err->code == CL_ENOTFOUND)
        err->code = CL_EPARSE;
    return k;
}

/* ---- thumbprint ---- */

cl_str *cl_jwk_thumbprint(const json_t *jwk, struct cl_err *err)
{
    static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
    static const char *const rsa[] = {"e", "kty", "n", NULL};
    static const char *const okp[] = {"crv", "kty", "x", NULL};
    const char *kty = NULL;
    if (!json_is_object(jwk)) {
        cl_err_set(err, CL_EPARSE, "JWK thumbprint: not a JSON object");
        return NULL;
    }
    if (cl_json_get_str(jwk, "kty", &kty, err) < 0) {
        cl_err_prefix(err, "JWK thumbprint");
        return NULL;
    }
    const char *const *members = strcmp(kty, "EC") == 0    ? ec
                                 : strcmp(kty, "RSA") == 0 ? rsa
                                 : strcmp(kty, "OKP") == 0 ? okp
                                                           : NULL;
    if (!members) {
        cl_err_set(err, CL_EUNSUPPORTED, "JWK thumbprint: 'kty' '%.16s' is not supported", kty);
        return NULL;
    }
    CL_AUTO(json_t) *req = json_object();
    if (!req) {
        cl_err_set(err, CL_ENOMEM, "JWK thumbprint: out of memory");
        return NULL;
    }
    for (size_t i = 0; members[i]; i++) {
        const char *v = NULL;
        if (cl_json_get_str(jwk, members[i], &v, err) < 0) {
            cl_err_prefix(err, "JWK thumbprint");
            return NULL;
        }
        if (json_object_set(req, members[i], json_object_get(jwk, members[i])) < 0) {
            cl_err_set(err, CL_ENOMEM, "JWK thumbprint: out of memory");
            return NULL;
        }
    }
    size_t len = 0;
    CL_AUTO(cl_str) *canon = cl_json_canonical(req, &len, err);
    if (!canon) {
        cl_err_prefix(err, "JWK thumbprint");
        return NULL;
    }
    uint8_t md[32];
    if (cl_digest(CL_HASH_SHA256, canon, len, md, err) < 0)
        return NULL;
    cl_str *out = cl_b64_encode(md, sizeof md, CL_B64_URL);
    if (!out)
        cl_err_set(err, CL_ENOMEM, "JWK thumbprint: out of memory");
    return out;
}
