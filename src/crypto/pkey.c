/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys: generation, PEM in and out, equality, and the small helpers the rest of the module
 * shares (curve table, key type, OpenSSL error text, base64url members of a JWK or JWE).
 */
#include "crypto/crypto_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

void cl_auto_cl_pkey(cl_pkey **p)
{
    EVP_PKEY_free(*p);
    *p = NULL;
}

/* ---- shared helpers ---- */

static const struct cl_curve curves[] = {
    {"P-256", "prime256v1", 32, "ES256", CL_HASH_SHA256},
    {"P-384", "secp384r1", 48, "ES384", CL_HASH_SHA384},
    {"P-521", "secp521r1", 66, "ES512", CL_HASH_SHA512},
};

const struct cl_curve *cl_crypto_curve_by_jwk(const char *crv)
{
    for (size_t i = 0; crv && i < CL_ARRAY_LEN(curves); i++)
        if (strcmp(crv, curves[i].jwk) == 0)
            return &curves[i];
    return NULL;
}

static int curve_nid(const char *name)
{
    int nid = OBJ_sn2nid(name);
    return nid != NID_undef ? nid : EC_curve_nist2nid(name);
}

const struct cl_curve *cl_crypto_curve_of(const EVP_PKEY *key)
{
    char name[64];
    size_t n = 0;
    if (!key || !EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_group_name(key, name, sizeof name, &n) != 1) {
        ERR_clear_error();
        return NULL;
    }
    /* OpenSSL 3 reports the short name ("prime256v1"): matched without OBJ_sn2nid, whose
     * table lookup under a global lock cost more than the rest of this function */
    for (size_t i = 0; i < CL_ARRAY_LEN(curves); i++)
        if (strcmp(name, curves[i].ossl) == 0 || strcmp(name, curves[i].jwk) == 0)
            return &curves[i];
    int nid = curve_nid(name);
    for (size_t i = 0; nid != NID_undef && i < CL_ARRAY_LEN(curves); i++)
        if (curve_nid(curves[i].ossl) == nid)
            return &curves[i];
    return NULL;
}

const char *cl_crypto_key_type(const EVP_PKEY *key)
{
    if (!key)
        return NULL;
    if (EVP_PKEY_is_a(key, "EC"))
        return "EC";
    if (EVP_PKEY_is_a(key, "RSA"))
        return "RSA";
    if (EVP_PKEY_is_a(key, "ED25519"))
        return "Ed25519";
    return NULL;
}

bool cl_crypto_has_private(const EVP_PKEY *key)
{
    const char *t = cl_crypto_key_type(key);
    bool ok = false;
    if (!t)
        return false;
    if (strcmp(t, "Ed25519") == 0) {
        size_t n = 0;
        ok = EVP_PKEY_get_raw_private_key(key, NULL, &n) == 1 && n > 0;
    } else {
        BIGNUM *bn = NULL;
        ok = EVP_PKEY_get_bn_param(
                 key, strcmp(t, "EC") == 0 ? OSSL_PKEY_PARAM_PRIV_KEY : OSSL_PKEY_PARAM_RSA_D,
                 &bn) == 1;
        BN_clear_free(bn);
    }
    ERR_clear_error();
    return ok;
}

int cl_crypto_ossl_err_at(struct cl_err *err, int code, const char *file, int line, const char *fmt,
                          ...)
{
    char msg[CL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    char buf[160];
    if (e && !reason) {
        ERR_error_string_n(e, buf, sizeof buf);
        reason = buf;
    }
    ERR_clear_error();
    if (reason)
        return cl_err_set_at(err, code, NULL, file, line, "%s (%s)", msg, reason);
    return cl_err_set_at(err, code, NULL, file, line, "%s", msg);
}

cl_bytes *cl_crypto_b64url_member(const json_t *obj, const char *key, size_t exact, size_t max,
                                  size_t *outlen, const char *what, struct cl_err *err)
{
    const char *s = NULL;
    if (cl_json_get_str(obj, key, &s, err) < 0) {
        cl_err_prefix(err, "%s", what);
        return NULL;
    }
    size_t slen = json_string_length(json_object_get(obj, key));
    if (slen != strlen(s)) {
        cl_err_set(err, CL_EPARSE, "%s: '%s' holds a NUL byte", what, key);
        return NULL;
    }
    size_t n = 0;
    /* with an exact size, a somewhat longer value is a wrong length (EPARSE), not a limit */
    cl_bytes *b = cl_b64_decode(s, slen, CL_B64_URL, exact ? 2 * exact + 16 : max, &n, err);
    if (!b) {
        cl_err_prefix(err, "%s: '%s'", what, key);
        return NULL;
    }
    if (exact && n != exact) {
        free(b);
        cl_err_set(err, CL_EPARSE, "%s: '%s' must decode to %zu bytes, not %zu", what, key, exact,
                   n);
        return NULL;
    }
    *outlen = n;
    return b;
}

/* ---- generation ---- */

cl_pkey *cl_pkey_generate(const char *kind, struct cl_err *err)
{
    EVP_PKEY *k = NULL;
    const struct cl_curve *c = cl_crypto_curve_by_jwk(kind);
    if (!kind) {
        cl_err_set(err, CL_EINVAL, "key generation: no kind");
        return NULL;
    }
    if (c)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->ossl);
    else if (strcmp(kind, "RSA-2048") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(kind, "RSA-3072") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else if (strcmp(kind, "RSA-4096") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    else if (strcmp(kind, "Ed25519") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else {
        cl_err_set(err, CL_EUNSUPPORTED, "key generation: unsupported kind '%.32s'", kind);
        return NULL;
    }
    if (!k)
        cl_ossl_err(err, CL_EINVAL, "key generation: %s failed", kind);
    return k;
}

/* ---- PEM ---- */

/* Encrypted PEM is not supported: refuse instead of prompting on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

cl_pkey *cl_pkey_from_pem(const char *pem, size_t len, bool private_key, struct cl_err *err)
{
    if (!pem || len == 0) {
        cl_err_set(err, CL_EPARSE, "PEM: empty input");
        return NULL;
    }
    if (len > CL_PEM_MAX) {
        cl_err_set(err, CL_ELIMIT, "PEM: %zu bytes exceed the %d-byte limit", len, CL_PEM_MAX);
        return NULL;
    }
    EVP_PKEY *k = NULL;
    {
        CL_AUTO(BIO) *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio) {
            cl_err_set(err, CL_ENOMEM, "PEM: out of memory");
            return NULL;
        }
        k = private_key ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                        : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    }
    if (!k && !private_key) {
        ERR_clear_error();
        CL_AUTO(BIO) *bio = BIO_new_mem_buf(pem, (int)len);
        CL_AUTO(X509) *cert = bio ? PEM_read_bio_X509(bio, NULL, no_passphrase, NULL) : NULL;
        if (cert)
            k = X509_get_pubkey(cert);
    }
    if (!k) {
        cl_ossl_err(err, CL_EPARSE, "PEM: no %s found",
                    private_key ? "private key" : "public key or certificate");
        return NULL;
    }
    ERR_clear_error();
    return k;
}

cl_pkey *cl_pkey_load_pem(const char *path, bool private_key, struct cl_err *err)
{
    size_t len = 0;
    cl_bytes *buf = cl_file_read(path, CL_PEM_MAX, &len, err);
    if (!buf) {
        cl_err_prefix(err, "key %s", path);
        return NULL;
    }
    cl_pkey *k = cl_pkey_from_pem((const char *)buf, len, private_key, err);
    cl_free_wipe(buf, len);
    if (!k)
        cl_err_prefix(err, "key %s", path);
    return k;
}

cl_str *cl_pkey_to_pem(cl_pkey *key, bool private_key, struct cl_err *err)
{
    if (!key) {
        cl_err_set(err, CL_EINVAL, "PEM: no key");
        return NULL;
    }
    if (private_key && !cl_crypto_has_private(key)) {
        cl_err_set(err, CL_EINVAL, "PEM: the key has no private part");
        return NULL;
    }
    /* secure-heap memory BIO for private keys: its buffer is cleared when freed */
    CL_AUTO(BIO) *bio = BIO_new(private_key ? BIO_s_secmem() : BIO_s_mem());
    if (!bio) {
        cl_err_set(err, CL_ENOMEM, "PEM: out of memory");
        return NULL;
    }
    int ok = private_key ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(bio, key);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (ok != 1 || n <= 0 || !data) {
        cl_ossl_err(err, CL_EINVAL, "PEM: encoding failed");
        return NULL;
    }
    cl_str *out = malloc((size_t)n + 1);
    if (!out) {
        cl_err_set(err, CL_ENOMEM, "PEM: out of memory");
        return NULL;
    }
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    return out;
}

bool cl_pkey_public_equal(cl_pkey *a, cl_pkey *b)
{
    if (!a || !b)
        return false;
    bool eq = EVP_PKEY_eq(a, b) == 1;
    ERR_clear_error();
    return eq;
}
