/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWE flattened JSON serialisation (RFC 7516) for the KBS resource response: key management
 * ECDH-ES+A256KW (P-256, P-521), RSA-OAEP-256 and the deprecated RSA1_5; content encryption
 * A256GCM only. Every key (shared secret Z, KEK, CEK) lives in a cl_secret so that it is
 * wiped on every path, and no plaintext leaves cl_jwe_decrypt before the GCM tag checked.
 */
#include "crypto/crypto_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <string.h>

#define JWE_CEK_LEN 32
#define JWE_IV_LEN 12
#define JWE_TAG_LEN 16
#define JWE_KW_LEN (JWE_CEK_LEN + 8) /* RFC 3394 output for a 32-byte CEK */
#define JWE_MAX_PROTECTED 4096       /* base64url characters; the P-521 epk header is ~400 */
#define JWE_MAX_EK (CL_RSA_MAX_BITS / 8)
#define JWE_MAX_AAD 4096

enum km { KM_ECDH_ES_A256KW, KM_RSA_OAEP_256, KM_RSA1_5 };

static const struct {
    const char *name;
    enum km km;
} kms[] = {
    {"ECDH-ES+A256KW", KM_ECDH_ES_A256KW},
    {"RSA-OAEP-256", KM_RSA_OAEP_256},
    {"RSA1_5", KM_RSA1_5},
};

static int find_km(const char *name, enum km *out, struct cl_err *err)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(kms); i++) {
        if (strcmp(name, kms[i].name) == 0) {
            *out = kms[i].km;
            return 0;
        }
    }
    return cl_err_set(err, CL_EUNSUPPORTED, "JWE: key management alg '%.32s' is not supported",
                      name);
}

/* The key must be RSA for the RSA algorithms, EC P-256 or P-521 for ECDH-ES+A256KW. */
static int km_key_fits(enum km km, EVP_PKEY *key, struct cl_err *err)
{
    const char *type = cl_crypto_key_type(key);
    if (km != KM_ECDH_ES_A256KW) {
        if (!type || strcmp(type, "RSA") != 0)
            return cl_err_set(err, CL_EINVAL, "JWE: %s needs an RSA key, not %s", kms[km].name,
                              type ? type : "this key");
        if (EVP_PKEY_get_bits(key) < CL_RSA_MIN_BITS)
            return cl_err_set(err, CL_EINVAL, "JWE: RSA key below %d bits", CL_RSA_MIN_BITS);
        return 0;
    }
    const struct cl_curve *c = cl_crypto_curve_of(key);
    if (!c)
        return cl_err_set(err, CL_EINVAL, "JWE: ECDH-ES+A256KW needs an EC key, not %s",
                          type ? type : "this key");
    if (strcmp(c->jwk, "P-256") != 0 && strcmp(c->jwk, "P-521") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "JWE: ECDH-ES+A256KW on %s is not supported",
                          c->jwk);
    return 0;
}

/* ---- ECDH-ES+A256KW ---- */

/* Z = x coordinate of priv * peer (field-length, big-endian). Both callers pass a peer made
 * by cl_jwk_to_pkey, which already refused points off the curve, so OpenSSL's own (full,
 * scalar-multiplying) peer validation is not repeated here. */
static int ecdh_z(EVP_PKEY *priv, EVP_PKEY *peer, struct cl_secret **z, struct cl_err *err)
{
    CL_AUTO(EVP_PKEY_CTX) *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    size_t n = 0;
    if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) != 1 ||
        EVP_PKEY_derive(ctx, NULL, &n) != 1 || n == 0 || n > 66)
        return cl_ossl_err(err, CL_EVERIFY, "JWE: ECDH key agreement failed");
    CL_AUTO(cl_secret) *s = cl_secret_new(n);
    if (!s)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if (EVP_PKEY_derive(ctx, s->data, &n) != 1 || n != s->len)
        return cl_ossl_err(err, CL_EVERIFY, "JWE: ECDH key agreement failed");
    *z = CL_STEAL(s);
    return 0;
}

static void be32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

/* Concat KDF (NIST SP 800-56A, RFC 7518 §4.6.2) with SHA-256, one block: AlgorithmID is the
 * "alg" value, PartyUInfo and PartyVInfo empty, SuppPubInfo the key length in bits. */
static int concat_kdf(const struct cl_secret *z, const char *alg, struct cl_secret **kek,
                      struct cl_err *err)
{
    uint8_t counter[4], alglen[4], empty[4], bits[4];
    be32(counter, 1);
    be32(alglen, (uint32_t)strlen(alg));
    be32(empty, 0);
    be32(bits, JWE_CEK_LEN * 8);
    CL_AUTO(cl_secret) *k = cl_secret_new(JWE_CEK_LEN);
    CL_AUTO(EVP_MD_CTX) *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (!k || !md)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, counter, 4) != 1 ||
        EVP_DigestUpdate(md, z->data, z->len) != 1 || EVP_DigestUpdate(md, alglen, 4) != 1 ||
        EVP_DigestUpdate(md, alg, strlen(alg)) != 1 || EVP_DigestUpdate(md, empty, 4) != 1 ||
        EVP_DigestUpdate(md, empty, 4) != 1 || EVP_DigestUpdate(md, bits, 4) != 1 ||
        EVP_DigestFinal_ex(md, k->data, &n) != 1 || n != JWE_CEK_LEN)
        return cl_ossl_err(err, CL_EINVAL, "JWE: Concat KDF failed");
    *kek = CL_STEAL(k);
    return 0;
}

/* RFC 3394 AES-256 key wrap (wrap = true) or unwrap of in[inlen] into out; *outlen set. */
static int aes_kw(bool wrap, const struct cl_secret *kek, const uint8_t *in, size_t inlen,
                  uint8_t *out, size_t *outlen, struct cl_err *err)
{
    CL_AUTO(EVP_CIPHER_CTX) *ctx = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    if (!ctx)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_wrap(), NULL, kek->data, NULL, wrap ? 1 : 0) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)inlen) != 1 || n < 0 ||
        EVP_CipherFinal_ex(ctx, out + n, &m) != 1 || m < 0)
        return cl_ossl_err(err, CL_EVERIFY, "JWE: AES key %s failed", wrap ? "wrap" : "unwrap");
    *outlen = (size_t)n + (size_t)m;
    return 0;
}

/* ---- A256GCM ---- */

static int gcm(bool seal, const struct cl_secret *cek, const uint8_t *iv, const char *aad,
               size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[JWE_TAG_LEN],
               struct cl_err *err)
{
    CL_AUTO(EVP_CIPHER_CTX) *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    if (!ctx)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, JWE_IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, cek->data, iv, -1) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)aadlen) != 1)
        return cl_ossl_err(err, CL_EINVAL, "JWE: AES-GCM setup failed");
    /* EVP lengths are int: feed large inputs in slices */
    size_t off = 0;
    while (off < len) {
        size_t chunk = len - off > (1u << 30) ? (1u << 30) : len - off;
        if (EVP_CipherUpdate(ctx, out + off, &n, in + off, (int)chunk) != 1 || (size_t)n != chunk)
            return cl_ossl_err(err, CL_EINVAL, "JWE: AES-GCM failed");
        off += chunk;
    }
    if (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, JWE_TAG_LEN, tag) != 1)
        return cl_ossl_err(err, CL_EINVAL, "JWE: AES-GCM setup failed");
    uint8_t fin[16];
    if (EVP_CipherFinal_ex(ctx, fin, &n) != 1) {
        ERR_clear_error();
        return cl_err_set(err, CL_EVERIFY, "JWE: authentication tag mismatch");
    }
    if (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, JWE_TAG_LEN, tag) != 1)
        return cl_ossl_err(err, CL_EINVAL, "JWE: AES-GCM tag unavailable");
    return 0;
}

/* ---- RSA ---- */

static EVP_PKEY_CTX *rsa_ctx(EVP_PKEY *key, enum km km, bool enc, struct cl_err *err)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = ctx && (enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) == 1;
    if (ok && km == KM_RSA_OAEP_256)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1;
    else if (ok)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        cl_ossl_err(err, CL_EINVAL, "JWE: %s setup failed", kms[km].name);
        return NULL;
    }
    return ctx;
}

/* ---- encryption ---- */

/*
 * Prepared key-generation contexts, by curve: setting one up (provider, key manager, group)
 * costs about half of generating a P-256 key. A context is taken out of the pool for one
 * generation and put back, so no two threads use one at a time; each generation draws a
 * fresh private key.
 */
#define KEYGEN_POOL 8
static struct {
    const struct cl_curve *curve;
    EVP_PKEY_CTX *ctx;
} keygen_pool[KEYGEN_POOL];
static pthread_mutex_t keygen_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *ephemeral_key(const struct cl_curve *c)
{
    EVP_PKEY_CTX *ctx = NULL;
    pthread_mutex_lock(&keygen_lock);
    for (size_t i = 0; i < KEYGEN_POOL && !ctx; i++) {
        if (keygen_pool[i].curve == c && keygen_pool[i].ctx) {
            ctx = keygen_pool[i].ctx;
            keygen_pool[i].ctx = NULL;
        }
    }
    pthread_mutex_unlock(&keygen_lock);
    if (!ctx) {
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_group_name(ctx, c->ossl) != 1) {
            EVP_PKEY_CTX_free(ctx);
            return NULL;
        }
    }
    EVP_PKEY *k = NULL;
    if (EVP_PKEY_keygen(ctx, &k) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    pthread_mutex_lock(&keygen_lock);
    for (size_t i = 0; i < KEYGEN_POOL && ctx; i++) {
        if (!keygen_pool[i].ctx) {
            keygen_pool[i].curve = c;
            keygen_pool[i].ctx = ctx;
            ctx = NULL;
        }
    }
    pthread_mutex_unlock(&keygen_lock);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

/* Wraps cek for the recipient key; ek (new) and the protected header text (new) out. */
static int wrap_cek(enum km km, EVP_PKEY *key, const struct cl_secret *cek, cl_bytes **ek,
                    size_t *eklen, cl_str **protected_hdr, struct cl_err *err)
{
    int rc;
    if (km != KM_ECDH_ES_A256KW) {
        CL_AUTO(EVP_PKEY_CTX) *ctx = rsa_ctx(key, km, true, err);
        if (!ctx)
            return CL_EINVAL;
        size_t n = (size_t)EVP_PKEY_get_size(key);
        CL_AUTO(cl_bytes) *buf = malloc(n);
        if (!buf)
            return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
        if (EVP_PKEY_encrypt(ctx, buf, &n, cek->data, cek->len) != 1)
            return cl_ossl_err(err, CL_EINVAL, "JWE: %s encryption failed", kms[km].name);
        *protected_hdr = cl_strdupf("{\"alg\":\"%s\",\"enc\":\"A256GCM\"}", kms[km].name);
        if (!*protected_hdr)
            return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
        *ek = CL_STEAL(buf);
        *eklen = n;
        return 0;
    }
    /* ephemeral key on the recipient's curve */
    const struct cl_curve *c = cl_crypto_curve_of(key);
    CL_AUTO(cl_pkey) *eph = c ? ephemeral_key(c) : NULL;
    if (!eph)
        return cl_ossl_err(err, CL_EINVAL, "JWE: ephemeral key generation failed");
    CL_AUTO(cl_secret) *z = NULL;
    CL_AUTO(cl_secret) *kek = NULL;
    if ((rc = ecdh_z(eph, key, &z, err)) < 0 ||
        (rc = concat_kdf(z, "ECDH-ES+A256KW", &kek, err)) < 0)
        return rc;
    CL_AUTO(cl_bytes) *buf = malloc(JWE_KW_LEN + 16);
    size_t n = 0;
    if (!buf)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if ((rc = aes_kw(true, kek, cek->data, cek->len, buf, &n, err)) < 0)
        return rc;
    /* one uncompressed encoding: one affine conversion for both coordinates */
    uint8_t pt[1 + 2 * 66];
    size_t ptlen = 0;
    if (EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt,
                                        &ptlen) != 1 ||
        ptlen != 1 + 2 * c->coord_len || pt[0] != 0x04)
        return cl_ossl_err(err, CL_EINVAL, "JWE: cannot read the ephemeral public point");
    CL_AUTO(cl_str) *x64 = cl_b64_encode(pt + 1, c->coord_len, CL_B64_URL);
    CL_AUTO(cl_str) *y64 = cl_b64_encode(pt + 1 + c->coord_len, c->coord_len, CL_B64_URL);
    /* the byte-exact form the guest client re-serialises: alg, enc, then epk{crv,kty,x,y} */
    *protected_hdr = x64 && y64 ? cl_strdupf("{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\","
                                             "\"epk\":{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\","
                                             "\"y\":\"%s\"}}",
                                             c->jwk, x64, y64)
                                : NULL;
    if (!*protected_hdr)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    *ek = CL_STEAL(buf);
    *eklen = n;
    return 0;
}

/* The five members of a flattened JWE, each base64url text (new). */
struct jwe_parts {
    cl_str *protected_b64, *ek, *iv, *ct, *tag;
};

static void jwe_parts_clear(struct jwe_parts *p)
{
    free(p->protected_b64);
    free(p->ek);
    free(p->iv);
    free(p->ct);
    free(p->tag);
    memset(p, 0, sizeof *p);
}

static int seal(const json_t *recipient, const void *plaintext, size_t len, struct jwe_parts *out,
                struct cl_err *err)
{
    const char *alg = NULL;
    enum km km = KM_ECDH_ES_A256KW; /* set by find_km */
    if (!json_is_object(recipient))
        return cl_err_set(err, CL_EINVAL, "JWE: recipient JWK is not an object");
    if (cl_json_get_str(recipient, "alg", &alg, err) < 0)
        return cl_err_prefix(err, "JWE recipient JWK");
    int rc;
    if ((rc = find_km(alg, &km, err)) < 0)
        return rc;
    if (len > CL_JWE_MAX_PLAINTEXT || (!plaintext && len))
        return cl_err_set(err, CL_ELIMIT, "JWE: plaintext of %zu bytes exceeds %d", len,
                          CL_JWE_MAX_PLAINTEXT);
    CL_AUTO(cl_pkey) *key = cl_jwk_to_pkey(recipient, err);
    if (!key)
        return cl_err_prefix(err, "JWE recipient");
    if ((rc = km_key_fits(km, key, err)) < 0)
        return rc;
    if (km == KM_RSA1_5)
        cl_warn("JWE: sealing with the deprecated RSA1_5 key management; the TEE key should use "
                "RSA-OAEP-256 "
                "or ECDH-ES+A256KW");

    CL_AUTO(cl_secret) *cek = cl_secret_new(JWE_CEK_LEN);
    if (!cek)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if ((rc = cl_random(cek->data, cek->len, err)) < 0)
        return rc;
    CL_AUTO(cl_bytes) *ek = NULL;
    CL_AUTO(cl_str) *hdr = NULL;
    size_t eklen = 0;
    if ((rc = wrap_cek(km, key, cek, &ek, &eklen, &hdr, err)) < 0)
        return rc;
    out->protected_b64 = cl_b64_encode(hdr, strlen(hdr), CL_B64_URL);
    uint8_t iv[JWE_IV_LEN], tag[JWE_TAG_LEN];
    CL_AUTO(cl_bytes) *ct = malloc(len ? len : 1);
    if (!out->protected_b64 || !ct)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if ((rc = cl_random(iv, sizeof iv, err)) < 0 ||
        (rc = gcm(true, cek, iv, out->protected_b64, strlen(out->protected_b64), plaintext, len, ct,
                  tag, err)) < 0)
        return rc;
    out->ek = cl_b64_encode(ek, eklen, CL_B64_URL);
    out->iv = cl_b64_encode(iv, sizeof iv, CL_B64_URL);
    out->ct = cl_b64_encode(ct, len, CL_B64_URL);
    out->tag = cl_b64_encode(tag, sizeof tag, CL_B64_URL);
    if (!out->ek || !out->iv || !out->ct || !out->tag)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    return 0;
}

json_t *cl_jwe_encrypt(const json_t *recipient, const void *plaintext, size_t len,
                       struct cl_err *err)
{
    struct jwe_parts p = {0};
    json_t *out = NULL;
    if (seal(recipient, plaintext, len, &p, err) == 0) {
        out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "protected", p.protected_b64, "encrypted_key",
                        p.ek, "iv", p.iv, "ciphertext", p.ct, "tag", p.tag);
        if (!out)
            cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    }
    jwe_parts_clear(&p);
    return out;
}

cl_str *cl_jwe_encrypt_text(const json_t *recipient, const void *plaintext, size_t len,
                            struct cl_err *err)
{
    struct jwe_parts p = {0};
    cl_str *out = NULL;
    /* every member is base64url text: nothing to escape */
    if (seal(recipient, plaintext, len, &p, err) == 0) {
        out = cl_strdupf("{\"protected\":\"%s\",\"encrypted_key\":\"%s\",\"iv\":\"%s\","
                         "\"ciphertext\":\"%s\",\"tag\":\"%s\"}",
                         p.protected_b64, p.ek, p.iv, p.ct, p.tag);
        if (!out)
            cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    }
    jwe_parts_clear(&p);
    return out;
}

/* ---- decryption ---- */

static int unwrap_ecdh(const json_t *hdr, EVP_PKEY *priv, const uint8_t *ek, size_t eklen,
                       struct cl_secret **cek, struct cl_err *err)
{
    json_t *epk_jwk = NULL;
    int rc;
    if ((rc = cl_json_get_obj(hdr, "epk", &epk_jwk, err)) < 0)
        return cl_err_prefix(err, "JWE protected header");
    const char *kty = NULL;
    if ((rc = cl_json_get_str(epk_jwk, "kty", &kty, err)) < 0)
        return cl_err_prefix(err, "JWE epk");
    if (strcmp(kty, "EC") != 0)
        return cl_err_set(err, CL_EPARSE, "JWE epk: 'kty' must be EC");
    if (json_object_get(epk_jwk, "d"))
        return cl_err_set(err, CL_EPARSE, "JWE epk: private member 'd' present");
    CL_AUTO(cl_pkey) *epk = cl_jwk_to_pkey(epk_jwk, err);
    if (!epk)
        return cl_err_prefix(err, "JWE epk");
    const struct cl_curve *mine = cl_crypto_curve_of(priv), *theirs = cl_crypto_curve_of(epk);
    if (!theirs || mine != theirs)
        return cl_err_set(err, CL_EVERIFY, "JWE epk: curve %s does not match the private key's %s",
                          theirs ? theirs->jwk : "?", mine->jwk);
    if (eklen != JWE_KW_LEN)
        return cl_err_set(err, CL_EVERIFY, "JWE: 'encrypted_key' is %zu bytes, expected %d", eklen,
                          JWE_KW_LEN);
    CL_AUTO(cl_secret) *z = NULL;
    CL_AUTO(cl_secret) *kek = NULL;
    if ((rc = ecdh_z(priv, epk, &z, err)) < 0 ||
        (rc = concat_kdf(z, "ECDH-ES+A256KW", &kek, err)) < 0)
        return rc;
    CL_AUTO(cl_secret) *out = cl_secret_new(JWE_KW_LEN + 16);
    size_t n = 0;
    if (!out)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    if ((rc = aes_kw(false, kek, ek, eklen, out->data, &n, err)) < 0)
        return rc;
    if (n != JWE_CEK_LEN)
        return cl_err_set(err, CL_EVERIFY, "JWE: unwrapped key is %zu bytes, expected %d", n,
                          JWE_CEK_LEN);
    out->len = n; /* the wipe on free covers what was written */
    *cek = CL_STEAL(out);
    return 0;
}

static int unwrap_rsa(enum km km, EVP_PKEY *priv, const uint8_t *ek, size_t eklen,
                      struct cl_secret **cek, struct cl_err *err)
{
    size_t modlen = (size_t)EVP_PKEY_get_size(priv);
    if (eklen != modlen)
        return cl_err_set(err, CL_EVERIFY, "JWE: 'encrypted_key' is %zu bytes, expected %zu", eklen,
                          modlen);
    CL_AUTO(EVP_PKEY_CTX) *ctx = rsa_ctx(priv, km, false, err);
    CL_AUTO(cl_secret) *buf = cl_secret_new(modlen);
    CL_AUTO(cl_secret) *out = cl_secret_new(JWE_CEK_LEN);
    if (!ctx)
        return CL_EINVAL;
    if (!buf || !out)
        return cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
    size_t n = buf->len;
    int ok = EVP_PKEY_decrypt(ctx, buf->data, &n, ek, eklen) == 1;
    ERR_clear_error();
    if (km == KM_RSA_OAEP_256) {
        if (!ok || n != JWE_CEK_LEN)
            return cl_err_set(err, CL_EVERIFY, "JWE: RSA-OAEP-256 key decryption failed");
        memcpy(out->data, buf->data, JWE_CEK_LEN);
        *cek = CL_STEAL(out);
        return 0;
    }
    /* RSA1_5 (RFC 7516 §11.5, Bleichenbacher): a bad padding or a wrong length must look
     * exactly like a bad tag, so carry on with a random CEK chosen without a branch */
    cl_warn("JWE: opening a deprecated RSA1_5 message");
    uint8_t rnd[JWE_CEK_LEN];
    int rc = cl_random(rnd, sizeof rnd, err);
    if (rc < 0)
        return rc;
    size_t good = (size_t)ok & (size_t)(n == JWE_CEK_LEN);
    uint8_t mask = (uint8_t)(0u - (unsigned)good);
    for (size_t i = 0; i < JWE_CEK_LEN; i++)
        out->data[i] = (uint8_t)((buf->data[i] & mask) | (rnd[i] & (uint8_t)~mask));
    explicit_bzero(rnd, sizeof rnd);
    *cek = CL_STEAL(out);
    return 0;
}

static struct cl_secret *jwe_decrypt(const json_t *jwe, cl_pkey *priv, struct cl_err *err)
{
    if (!json_is_object(jwe)) {
        cl_err_set(err, CL_EPARSE, "JWE: not a JSON object");
        return NULL;
    }
    if (!priv) {
        cl_err_set(err, CL_EINVAL, "JWE: no private key");
        return NULL;
    }
    /* ---- protected header ---- */
    const char *p64 = NULL;
    if (cl_json_get_str(jwe, "protected", &p64, err) < 0) {
        cl_err_prefix(err, "JWE");
        return NULL;
    }
    size_t p64len = strlen(p64);
    if (p64len > JWE_MAX_PROTECTED) {
        cl_err_set(err, CL_ELIMIT, "JWE: 'protected' is longer than %d characters",
                   JWE_MAX_PROTECTED);
        return NULL;
    }
    size_t hlen = 0;
    CL_AUTO(cl_bytes) *htxt = cl_b64_decode(p64, p64len, CL_B64_URL, JWE_MAX_PROTECTED, &hlen, err);
    if (!htxt) {
        cl_err_prefix(err, "JWE: 'protected'");
        return NULL;
    }
    CL_AUTO(json_t) *hdr = cl_json_parse((const char *)htxt, hlen, 8, err);
    if (!hdr) {
        cl_err_prefix(err, "JWE: 'protected'");
        return NULL;
    }
    if (!json_is_object(hdr)) {
        cl_err_set(err, CL_EPARSE, "JWE: 'protected' is not a JSON object");
        return NULL;
    }
    /* RFC 7516 §7.2.1: the JOSE header is the union of the protected header, the shared
     * "unprotected" one and the per-recipient "header" (where libjose puts "alg" and "epk");
     * a name may appear in only one of them. The KBS puts everything in "protected". */
    static const char *const unprotected[] = {"unprotected", "header"};
    for (size_t i = 0; i < CL_ARRAY_LEN(unprotected); i++) {
        json_t *u = json_object_get(jwe, unprotected[i]);
        if (!u)
            continue;
        if (!json_is_object(u)) {
            cl_err_set(err, CL_EPARSE, "JWE: '%s' is not a JSON object", unprotected[i]);
            return NULL;
        }
        const char *name;
        json_t *v;
        json_object_foreach(u, name, v)
        {
            if (json_object_get(hdr, name)) {
                cl_err_set(err, CL_EPARSE, "JWE: header parameter '%.32s' appears twice", name);
                return NULL;
            }
            if (json_object_set(hdr, name, v) < 0) {
                cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
                return NULL;
            }
        }
    }
    const char *alg = NULL, *enc = NULL;
    enum km km = KM_ECDH_ES_A256KW; /* set by find_km */
    if (cl_json_get_str(hdr, "alg", &alg, err) < 0 || cl_json_get_str(hdr, "enc", &enc, err) < 0) {
        cl_err_prefix(err, "JWE protected header");
        return NULL;
    }
    if (strcmp(enc, "A256GCM") != 0) {
        cl_err_set(err, CL_EUNSUPPORTED, "JWE: 'enc' '%.32s' is not supported", enc);
        return NULL;
    }
    if (json_object_get(hdr, "zip") || json_object_get(hdr, "crit")) {
        cl_err_set(err, CL_EUNSUPPORTED, "JWE: 'zip' and 'crit' are not supported");
        return NULL;
    }
    if (find_km(alg, &km, err) < 0 || km_key_fits(km, priv, err) < 0)
        return NULL;

    /* ---- the other members ---- */
    size_t eklen = 0, ivlen = 0, ctlen = 0, taglen = 0;
    CL_AUTO(cl_bytes) *ek =
        cl_crypto_b64url_member(jwe, "encrypted_key", 0, JWE_MAX_EK, &eklen, "JWE", err);
    CL_AUTO(cl_bytes) *iv =
        ek ? cl_crypto_b64url_member(jwe, "iv", JWE_IV_LEN, 0, &ivlen, "JWE", err) : NULL;
    CL_AUTO(cl_bytes) *tag =
        iv ? cl_crypto_b64url_member(jwe, "tag", JWE_TAG_LEN, 0, &taglen, "JWE", err) : NULL;
    CL_AUTO(cl_bytes) *ct = tag ? cl_crypto_b64url_member(jwe, "ciphertext", 0,
                                                          CL_JWE_MAX_PLAINTEXT, &ctlen, "JWE", err)
                                : NULL;
    if (!ct)
        return NULL;
    /* RFC 7516 §5.2 step 14: AAD = protected, or protected "." aad */
    CL_AUTO(cl_str) *aad = NULL;
    json_t *aad_member = json_object_get(jwe, "aad");
    if (aad_member) {
        size_t alen = 0;
        CL_AUTO(cl_bytes) *check =
            cl_crypto_b64url_member(jwe, "aad", 0, JWE_MAX_AAD, &alen, "JWE", err);
        if (!check)
            return NULL;
        aad = cl_strdupf("%s.%s", p64, json_string_value(aad_member));
    } else {
        aad = strdup(p64);
    }
    if (!aad) {
        cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
        return NULL;
    }

    /* ---- content encryption key ---- */
    CL_AUTO(cl_secret) *cek = NULL;
    int rc = km == KM_ECDH_ES_A256KW ? unwrap_ecdh(hdr, priv, ek, eklen, &cek, err)
                                     : unwrap_rsa(km, priv, ek, eklen, &cek, err);
    if (rc < 0)
        return NULL;

    /* ---- content: nothing leaves before the tag is checked ---- */
    CL_AUTO(cl_secret) *pt = cl_secret_new(ctlen);
    if (!pt) {
        cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
        return NULL;
    }
    if (gcm(false, cek, iv, aad, strlen(aad), ct, ctlen, pt->data, tag, err) < 0)
        return NULL;
    return CL_STEAL(pt);
}

struct cl_secret *cl_jwe_decrypt(const json_t *jwe, cl_pkey *priv, struct cl_err *err)
{
    struct cl_secret *pt = jwe_decrypt(jwe, priv, err);
    /* a message without a required member is malformed, not "not found" */
    if (!pt && err && err->code == CL_ENOTFOUND)
        err->code = CL_EPARSE;
    return pt;
}
