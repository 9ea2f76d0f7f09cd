/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWS compact serialisation (RFC 7515) and the raw signature primitives under it: ECDSA with
 * the fixed-length r||s form of RFC 7518 (converted to and from DER for OpenSSL), RSA
 * PKCS#1 v1.5 and PSS, Ed25519. The algorithm table is the one place that says which key fits
 * which "alg"; "none" and the HMAC algorithms are not in it, so they can never verify.
 */
#include "crypto/crypto_int.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <string.h>

#define JWS_MAX_SIG 1024 /* RSA-8192 */
#define JWS_HEADER_DEPTH 16

enum sig_kind { SIG_EC, SIG_RSA, SIG_PSS, SIG_ED25519 };

static const struct jws_alg {
    const char *name;
    enum sig_kind kind;
    enum cl_hash hash; /* unused for Ed25519 */
    const char *crv;   /* EC only */
} algs[] = {
    {"ES256", SIG_EC, CL_HASH_SHA256, "P-256"}, {"ES384", SIG_EC, CL_HASH_SHA384, "P-384"},
    {"ES512", SIG_EC, CL_HASH_SHA512, "P-521"}, {"EdDSA", SIG_ED25519, CL_HASH_SHA512, NULL},
    {"RS256", SIG_RSA, CL_HASH_SHA256, NULL},   {"RS384", SIG_RSA, CL_HASH_SHA384, NULL},
    {"RS512", SIG_RSA, CL_HASH_SHA512, NULL},   {"PS256", SIG_PSS, CL_HASH_SHA256, NULL},
    {"PS384", SIG_PSS, CL_HASH_SHA384, NULL},   {"PS512", SIG_PSS, CL_HASH_SHA512, NULL},
};

static int find_alg(const char *name, const struct jws_alg **out, struct cl_err *err)
{
    if (!name)
        return cl_err_set(err, CL_EINVAL, "JWS: no algorithm");
    for (size_t i = 0; i < CL_ARRAY_LEN(algs); i++) {
        if (strcmp(name, algs[i].name) == 0) {
            *out = &algs[i];
            return 0;
        }
    }
    if (strcmp(name, "none") == 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "JWS: alg 'none' is refused");
    if (strncmp(name, "HS", 2) == 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "JWS: HMAC alg '%.16s' is refused", name);
    return cl_err_set(err, CL_EUNSUPPORTED, "JWS: alg '%.32s' is not supported", name);
}

/* The key must be of the type (and curve) the algorithm names; `code` says how to refuse. */
static int key_fits(const struct jws_alg *a, EVP_PKEY *key, int code, struct cl_err *err)
{
    const char *type = cl_crypto_key_type(key);
    const struct cl_curve *c = NULL;
    switch (a->kind) {
    case SIG_EC:
        c = cl_crypto_curve_of(key);
        if (!c || strcmp(c->jwk, a->crv) != 0)
            return cl_err_set(err, code, "%s needs an EC %s key, not %s%s%s", a->name, a->crv,
                              type ? type : "an unsupported key", c ? " " : "", c ? c->jwk : "");
        return 0;
    case SIG_RSA:
    case SIG_PSS:
        if (!type || strcmp(type, "RSA") != 0)
            return cl_err_set(err, code, "%s needs an RSA key, not %s", a->name,
                              type ? type : "this key");
        if (EVP_PKEY_get_bits(key) < CL_RSA_MIN_BITS)
            return cl_err_set(err, code, "%s: RSA key of %d bits is below %d", a->name,
                              EVP_PKEY_get_bits(key), CL_RSA_MIN_BITS);
        return 0;
    case SIG_ED25519:
        if (!type || strcmp(type, "Ed25519") != 0)
            return cl_err_set(err, code, "EdDSA needs an Ed25519 key, not %s",
                              type ? type : "this key");
        return 0;
    }
    return cl_err_set(err, CL_EINVAL, "JWS: bad algorithm table entry");
}

static int init_ctx(EVP_MD_CTX *md, const struct jws_alg *a, EVP_PKEY *key, bool sign,
                    struct cl_err *err)
{
    EVP_PKEY_CTX *pctx = NULL; /* owned by md */
    const EVP_MD *hash = a->kind == SIG_ED25519 ? NULL : cl_crypto_md(a->hash);
    int ok = sign ? EVP_DigestSignInit(md, &pctx, hash, NULL, key)
                  : EVP_DigestVerifyInit(md, &pctx, hash, NULL, key);
    if (ok != 1)
        return cl_ossl_err(err, CL_EINVAL, "%s: cannot initialise with this key", a->name);
    if (a->kind == SIG_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
        return cl_ossl_err(err, CL_EINVAL, "%s: cannot set padding", a->name);
    /* RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output */
    if (a->kind == SIG_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, hash) != 1))
        return cl_ossl_err(err, CL_EINVAL, "%s: cannot set PSS parameters", a->name);
    return 0;
}

/*
 * Prepared ECDSA contexts for keys that sign or verify again and again (the KBS's token key,
 * once per /attest and once per /resource): setting one up fetches the algorithm and builds
 * the provider's context, about a tenth of a P-256 signature. A slot holds a reference to its
 * key, so the pointer it is found by cannot be reused by another key while it is there; a
 * key goes in on its second use in a row, so keys seen once do not churn the slots. Each use
 * works on its own copy.
 */
#define PREP_SLOTS 4
static struct {
    EVP_PKEY *key;
    const struct jws_alg *alg;
    bool sign;
    EVP_MD_CTX *md;
    uint64_t used;
} prep[PREP_SLOTS];
static const EVP_PKEY *prep_last_miss;
static uint64_t prep_clock;
static pthread_mutex_t prep_lock = PTHREAD_MUTEX_INITIALIZER;

static void prep_remember(const struct jws_alg *a, EVP_PKEY *key, bool sign, const EVP_MD_CTX *md)
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (!copy || EVP_MD_CTX_copy_ex(copy, md) != 1 || EVP_PKEY_up_ref(key) != 1) {
        EVP_MD_CTX_free(copy);
        return;
    }
    pthread_mutex_lock(&prep_lock);
    size_t v = 0;
    for (size_t i = 1; i < PREP_SLOTS; i++)
        if (prep[i].used < prep[v].used)
            v = i;
    EVP_PKEY *old_key = prep[v].key;
    EVP_MD_CTX *old_md = prep[v].md;
    prep[v].key = key;
    prep[v].alg = a;
    prep[v].sign = sign;
    prep[v].md = copy;
    prep[v].used = ++prep_clock;
    pthread_mutex_unlock(&prep_lock);
    EVP_MD_CTX_free(old_md);
    EVP_PKEY_free(old_key);
}

/* md set up for one signature or verification with key: from a prepared copy, or fresh. */
static int prepared_ctx(EVP_MD_CTX *md, const struct jws_alg *a, EVP_PKEY *key, bool sign,
                        struct cl_err *err)
{
    if (a->kind != SIG_EC)
        return init_ctx(md, a, key, sign, err);
    bool hit = false, seen = false;
    pthread_mutex_lock(&prep_lock);
    for (size_t i = 0; i < PREP_SLOTS && !hit; i++) {
        if (prep[i].key == key && prep[i].alg == a && prep[i].sign == sign) {
            hit = EVP_MD_CTX_copy_ex(md, prep[i].md) == 1;
            prep[i].used = ++prep_clock;
        }
    }
    if (!hit) {
        seen = prep_last_miss == key;
        prep_last_miss = key;
    }
    pthread_mutex_unlock(&prep_lock);
    if (hit)
        return 0;
    int rc = init_ctx(md, a, key, sign, err);
    if (rc == 0 && seen)
        prep_remember(a, key, sign, md);
    return rc;
}

/* ---- raw signatures ---- */

int cl_sig_sign(cl_pkey *key, const char *alg, const void *data, size_t len, cl_bytes **sig,
                size_t *sig_len, struct cl_err *err)
{
    const struct jws_alg *a = NULL;
    int rc;
    if ((rc = find_alg(alg, &a, err)) < 0 || (rc = key_fits(a, key, CL_EINVAL, err)) < 0)
        return rc;
    if (!data && len)
        return cl_err_set(err, CL_EINVAL, "%s: no data", a->name);
    CL_AUTO(EVP_MD_CTX) *md = EVP_MD_CTX_new();
    if (!md)
        return cl_err_set(err, CL_ENOMEM, "%s: out of memory", a->name);
    if ((rc = prepared_ctx(md, a, key, true, err)) < 0)
        return rc;
    const unsigned char *in = len ? data : (const unsigned char *)"";
    size_t n = 0;
    if (EVP_DigestSign(md, NULL, &n, in, len) != 1 || n == 0 || n > 2 * JWS_MAX_SIG)
        return cl_ossl_err(err, CL_EINVAL, "%s: signing failed", a->name);
    CL_AUTO(cl_bytes) *buf = malloc(n);
    if (!buf)
        return cl_err_set(err, CL_ENOMEM, "%s: out of memory", a->name);
    if (EVP_DigestSign(md, buf, &n, in, len) != 1)
        return cl_ossl_err(err, CL_EINVAL, "%s: signing failed", a->name);
    if (a->kind != SIG_EC) {
        *sig = CL_STEAL(buf);
        *sig_len = n;
        return 0;
    }
    /* DER ECDSA-Sig-Value -> r||s, each the curve's length */
    const struct cl_curve *c = cl_crypto_curve_of(key);
    const unsigned char *p = buf;
    CL_AUTO(ECDSA_SIG) *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    CL_AUTO(cl_bytes) *raw = malloc(2 * c->coord_len);
    if (!es || !raw)
        return cl_ossl_err(err, CL_EINVAL, "%s: cannot decode the DER signature", a->name);
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, raw, (int)c->coord_len) < 0 ||
        BN_bn2binpad(s, raw + c->coord_len, (int)c->coord_len) < 0)
        return cl_err_set(err, CL_EINVAL, "%s: r or s too large", a->name);
    *sig = CL_STEAL(raw);
    *sig_len = 2 * c->coord_len;
    return 0;
}

/* r||s -> DER ECDSA-Sig-Value. Returns new (OPENSSL_free) or NULL. */
static unsigned char *raw_to_der(const uint8_t *sig, size_t half, int *der_len)
{
    CL_AUTO(ECDSA_SIG) *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(sig + half, (int)half, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return NULL;
    }
    unsigned char *der = NULL;
    *der_len = i2d_ECDSA_SIG(es, &der);
    if (*der_len <= 0) {
        OPENSSL_free(der);
        return NULL;
    }
    return der;
}

int cl_sig_verify(cl_pkey *key, const char *alg, const void *data, size_t len, const void *sig,
                  size_t sig_len, struct cl_err *err)
{
    const struct jws_alg *a = NULL;
    int rc;
    if ((rc = find_alg(alg, &a, err)) < 0 || (rc = key_fits(a, key, CL_EVERIFY, err)) < 0)
        return rc;
    if ((!data && len) || (!sig && sig_len))
        return cl_err_set(err, CL_EINVAL, "%s: no data", a->name);
    size_t want = a->kind == SIG_EC        ? 2 * cl_crypto_curve_of(key)->coord_len
                  : a->kind == SIG_ED25519 ? 64
                                           : (size_t)EVP_PKEY_get_size(key);
    if (sig_len != want)
        return cl_err_set(err, CL_EVERIFY, "%s: signature is %zu bytes, expected %zu", a->name,
                          sig_len, want);
    const unsigned char *s = sig;
    size_t slen = sig_len;
    unsigned char *der = NULL;
    if (a->kind == SIG_EC) {
        int dl = 0;
        der = raw_to_der(sig, sig_len / 2, &dl);
        if (!der)
            return cl_ossl_err(err, CL_ENOMEM, "%s: cannot encode the signature", a->name);
        s = der;
        slen = (size_t)dl;
    }
    CL_AUTO(EVP_MD_CTX) *md = EVP_MD_CTX_new();
    if (!md)
        rc = cl_err_set(err, CL_ENOMEM, "%s: out of memory", a->name);
    else if ((rc = prepared_ctx(md, a, key, false, err)) == 0 &&
             EVP_DigestVerify(md, s, slen, len ? data : (const unsigned char *)"", len) != 1)
        rc = cl_ossl_err(err, CL_EVERIFY, "%s: signature does not verify", a->name);
    OPENSSL_free(der);
    ERR_clear_error();
    return rc;
}

/* ---- compact JWS ---- */

cl_str *cl_jws_header_b64(const char *alg, const json_t *extra_header, struct cl_err *err)
{
    const struct jws_alg *a = NULL;
    if (find_alg(alg, &a, err) < 0)
        return NULL;
    if (extra_header && !json_is_object(extra_header)) {
        cl_err_set(err, CL_EINVAL, "JWS: extra header must be an object");
        return NULL;
    }
    CL_AUTO(json_t) *hdr = json_object();
    if (!hdr || json_object_set_new(hdr, "alg", json_string(a->name)) < 0) {
        cl_err_set(err, CL_ENOMEM, "JWS: out of memory");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)extra_header, k, v)
    {
        if (strcmp(k, "alg") != 0 && json_object_set(hdr, k, v) < 0) {
            cl_err_set(err, CL_ENOMEM, "JWS: out of memory");
            return NULL;
        }
    }
    CL_AUTO(cl_str) *htxt = cl_json_compact(hdr);
    cl_str *h64 = htxt ? cl_b64_encode(htxt, strlen(htxt), CL_B64_URL) : NULL;
    if (!h64)
        cl_err_set(err, CL_ENOMEM, "JWS: out of memory");
    return h64;
}

cl_str *cl_jws_sign_h64(cl_pkey *key, const char *alg, const char *h64, const void *payload,
                        size_t payload_len, struct cl_err *err)
{
    const struct jws_alg *a = NULL;
    if (find_alg(alg, &a, err) < 0 || key_fits(a, key, CL_EINVAL, err) < 0)
        return NULL;
    if (payload_len > CL_JOSE_MAX || (!payload && payload_len)) {
        cl_err_set(err, CL_ELIMIT, "JWS: payload of %zu bytes exceeds %d", payload_len,
                   CL_JOSE_MAX);
        return NULL;
    }
    if (!h64 || !*h64) {
        cl_err_set(err, CL_EINVAL, "JWS: no header");
        return NULL;
    }
    CL_AUTO(cl_str) *p64 = cl_b64_encode(payload_len ? payload : "", payload_len, CL_B64_URL);
    CL_AUTO(cl_str) *input = p64 ? cl_strcat_new(h64, ".", p64, NULL) : NULL;
    if (!input) {
        cl_err_set(err, CL_ENOMEM, "JWS: out of memory");
        return NULL;
    }
    CL_AUTO(cl_bytes) *sig = NULL;
    size_t sig_len = 0;
    if (cl_sig_sign(key, a->name, input, strlen(input), &sig, &sig_len, err) < 0)
        return NULL;
    CL_AUTO(cl_str) *s64 = cl_b64_encode(sig, sig_len, CL_B64_URL);
    cl_str *out = s64 ? cl_strcat_new(input, ".", s64, NULL) : NULL;
    if (!out)
        cl_err_set(err, CL_ENOMEM, "JWS: out of memory");
    return out;
}

cl_str *cl_jws_sign(cl_pkey *key, const char *alg, const json_t *extra_header, const void *payload,
                    size_t payload_len, struct cl_err *err)
{
    CL_AUTO(cl_str) *h64 = cl_jws_header_b64(alg, extra_header, err);
    return h64 ? cl_jws_sign_h64(key, alg, h64, payload, payload_len, err) : NULL;
}

void cl_jws_clear(struct cl_jws *jws)
{
    if (!jws)
        return;
    json_decref(jws->header);
    free(jws->payload);
    free(jws->signing_input);
    free(jws->sig);
    memset(jws, 0, sizeof *jws);
}

static int jws_parse(const char *compact, size_t len, const char *known_h64,
                     const json_t *known_hdr, struct cl_jws *out, struct cl_err *err);

int cl_jws_parse(const char *compact, size_t len, struct cl_jws *out, struct cl_err *err)
{
    return jws_parse(compact, len, NULL, NULL, out, err);
}

int cl_jws_parse_known(const char *compact, size_t len, const char *known_h64,
                       const json_t *known_hdr, struct cl_jws *out, struct cl_err *err)
{
    return jws_parse(compact, len, known_h64, known_hdr, out, err);
}

static int jws_parse(const char *compact, size_t len, const char *known_h64,
                     const json_t *known_hdr, struct cl_jws *out, struct cl_err *err)
{
    memset(out, 0, sizeof *out);
    if (!compact || len == 0)
        return cl_err_set(err, CL_EPARSE, "JWS: empty input");
    if (len > CL_JOSE_MAX)
        return cl_err_set(err, CL_ELIMIT, "JWS: %zu bytes exceed the %d-byte limit", len,
                          CL_JOSE_MAX);
    if (memchr(compact, '\0', len))
        return cl_err_set(err, CL_EPARSE, "JWS: NUL byte in the input");
    const char *d1 = memchr(compact, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - compact)) : NULL;
    if (!d2)
        return cl_err_set(err, CL_EPARSE, "JWS: not three dot-separated parts");
    size_t hlen = (size_t)(d1 - compact);
    size_t plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - compact);
    if (memchr(d2 + 1, '.', slen))
        return cl_err_set(err, CL_EPARSE, "JWS: more than three parts");
    if (hlen == 0)
        return cl_err_set(err, CL_EPARSE, "JWS: empty header");

    size_t hbytes = 0, pbytes = 0, sbytes = 0;
    CL_AUTO(json_t) *hdr = NULL;
    if (known_h64 && json_is_object(known_hdr) && strlen(known_h64) == hlen &&
        memcmp(compact, known_h64, hlen) == 0) {
        hdr = json_incref((json_t *)(uintptr_t)known_hdr); /* the very text it encodes */
    } else {
        CL_AUTO(cl_bytes) *htxt = cl_b64_decode(compact, hlen, CL_B64_URL, hlen, &hbytes, err);
        if (!htxt)
            return cl_err_prefix(err, "JWS header");
        hdr = cl_json_parse((const char *)htxt, hbytes, JWS_HEADER_DEPTH, err);
        if (!hdr)
            return cl_err_prefix(err, "JWS header");
    }
    if (!json_is_object(hdr))
        return cl_err_set(err, CL_EPARSE, "JWS header: not a JSON object");
    const char *alg = NULL;
    int rc = cl_json_get_str(hdr, "alg", &alg, err);
    if (rc < 0)
        return cl_err_set(err, CL_EPARSE, "JWS header: 'alg' missing or not a string");
    CL_AUTO(cl_bytes) *payload = cl_b64_decode(d1 + 1, plen, CL_B64_URL, plen, &pbytes, err);
    if (!payload)
        return cl_err_prefix(err, "JWS payload");
    CL_AUTO(cl_bytes) *sig = cl_b64_decode(d2 + 1, slen, CL_B64_URL, JWS_MAX_SIG, &sbytes, err);
    if (!sig)
        return cl_err_prefix(err, "JWS signature");
    size_t ilen = (size_t)(d2 - compact);
    CL_AUTO(cl_str) *input = malloc(ilen + 1);
    if (!input)
        return cl_err_set(err, CL_ENOMEM, "JWS: out of memory");
    memcpy(input, compact, ilen);
    input[ilen] = '\0';

    out->alg = alg;
    out->header = CL_STEAL(hdr);
    out->payload = CL_STEAL(payload);
    out->payload_len = pbytes;
    out->signing_input = CL_STEAL(input);
    out->sig = CL_STEAL(sig);
    out->sig_len = sbytes;
    return 0;
}

int cl_jws_verify(const struct cl_jws *jws, cl_pkey *key, struct cl_err *err)
{
    if (!jws || !jws->header || !jws->alg || !jws->signing_input)
        return cl_err_set(err, CL_EINVAL, "JWS: nothing parsed");
    if (!key)
        return cl_err_set(err, CL_EINVAL, "JWS: no key");
    /* we implement no header extension, so any critical one must be refused (RFC 7515 §4.1.11) */
    if (json_object_get(jws->header, "crit"))
        return cl_err_set(err, CL_EUNSUPPORTED, "JWS header: 'crit' extensions are not supported");
    const struct jws_alg *a = NULL;
    int rc;
    if ((rc = find_alg(jws->alg, &a, err)) < 0)
        return rc;
    return cl_sig_verify(key, a->name, jws->signing_input, strlen(jws->signing_input), jws->sig,
                         jws->sig_len, err);
}
