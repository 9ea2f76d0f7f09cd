/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/crypto: cleanup helpers for the OpenSSL types the module uses, the curve
 * table shared by JWK, JWS and JWE, and the helper that turns OpenSSL's error queue into a
 * cl_err message. Not installed, not included outside src/crypto.
 */
#ifndef CL_CRYPTO_INT_H
#define CL_CRYPTO_INT_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"

/* ---- cleanup helpers for CL_AUTO ---- */

static inline void cl_auto_EVP_PKEY_CTX(EVP_PKEY_CTX **p)
{
    EVP_PKEY_CTX_free(*p);
}
static inline void cl_auto_EVP_MD_CTX(EVP_MD_CTX **p)
{
    EVP_MD_CTX_free(*p);
}
static inline void cl_auto_EVP_CIPHER_CTX(EVP_CIPHER_CTX **p)
{
    EVP_CIPHER_CTX_free(*p);
}
static inline void cl_auto_BIO(BIO **p)
{
    BIO_free_all(*p);
}
static inline void cl_auto_X509(X509 **p)
{
    X509_free(*p);
}
static inline void cl_auto_X509_STORE_CTX(X509_STORE_CTX **p)
{
    X509_STORE_CTX_free(*p);
}
static inline void cl_auto_BIGNUM(BIGNUM **p)
{
    BN_free(*p);
}
static inline void cl_auto_ECDSA_SIG(ECDSA_SIG **p)
{
    ECDSA_SIG_free(*p);
}
static inline void cl_auto_OSSL_PARAM_BLD(OSSL_PARAM_BLD **p)
{
    OSSL_PARAM_BLD_free(*p);
}
static inline void cl_auto_OSSL_PARAM(OSSL_PARAM **p)
{
    OSSL_PARAM_free(*p);
}
/* A BIGNUM holding private material: cleared before it is freed. */
typedef BIGNUM bn_secret;
static inline void cl_auto_bn_secret(bn_secret **p)
{
    BN_clear_free(*p);
}
typedef STACK_OF(X509) x509_stack;
static inline void cl_auto_x509_stack(x509_stack **p)
{
    sk_X509_pop_free(*p, X509_free);
}

/* The OpenSSL digest of h, or NULL. */
const EVP_MD *cl_crypto_md(enum cl_hash h);

/* ---- curves ---- */

struct cl_curve {
    const char *jwk;     /* JWK "crv": "P-256" */
    const char *ossl;    /* OpenSSL group name: "prime256v1" */
    size_t coord_len;    /* field element bytes: 32, 48, 66 */
    const char *jws_alg; /* "ES256" */
    enum cl_hash hash;   /* hash of that JWS alg */
};
const struct cl_curve *cl_crypto_curve_by_jwk(const char *crv);
/* The curve of an EC key, or NULL when key is not EC or on another curve. */
const struct cl_curve *cl_crypto_curve_of(const EVP_PKEY *key);
/* Key type as a short name: "EC", "RSA", "Ed25519" or NULL for anything else. */
const char *cl_crypto_key_type(const EVP_PKEY *key);
/* True when key holds its private part. */
bool cl_crypto_has_private(const EVP_PKEY *key);

/* ---- errors ---- */

/* Like cl_err_set, with the last OpenSSL reason appended; clears OpenSSL's error queue. */
#define cl_ossl_err(err, code, ...)                                                                \
    cl_crypto_ossl_err_at((err), (code), __FILE__, __LINE__, __VA_ARGS__)
CL_PRINTF(5, 6)
int cl_crypto_ossl_err_at(struct cl_err *err, int code, const char *file, int line, const char *fmt,
                          ...);

/* base64url (no padding) decode of a JSON string member with an exact or maximum size.
 * exact != 0: the decoded length must equal exact. Returns new or NULL naming `what`. */
cl_bytes *cl_crypto_b64url_member(const json_t *obj, const char *key, size_t exact, size_t max,
                                  size_t *outlen, const char *what, struct cl_err *err);

#endif
