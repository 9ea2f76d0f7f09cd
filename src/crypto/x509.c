/* SPDX-License-Identifier: Apache-2.0 */
/*
 * X.509 for JOSE: trust stores from PEM files, verification of a JWK "x5c" chain against a
 * store at a chosen time (so that tests can pin the clock), and the PEM-chain-to-x5c
 * conversion used when publishing a signing key. Chains are bounded in length and size.
 */
#include "crypto/crypto_int.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <string.h>

#define X5C_MAX_CERTS 16
#define X5C_MAX_CERT_BYTES 65536

void cl_auto_cl_x509_store(cl_x509_store **p)
{
    X509_STORE_free(*p);
    *p = NULL;
}

/* Reads every certificate of a PEM text; ENOTFOUND when there is none, EPARSE on a broken one. */
static int read_pem_certs(const char *pem, size_t len, x509_stack **out, struct cl_err *err)
{
    if (!pem || len == 0)
        return cl_err_set(err, CL_EPARSE, "PEM: empty input");
    if (len > CL_PEM_MAX)
        return cl_err_set(err, CL_ELIMIT, "PEM: %zu bytes exceed the %d-byte limit", len,
                          CL_PEM_MAX);
    CL_AUTO(BIO) *bio = BIO_new_mem_buf(pem, (int)len);
    CL_AUTO(x509_stack) *sk = sk_X509_new_null();
    if (!bio || !sk)
        return cl_err_set(err, CL_ENOMEM, "PEM: out of memory");
    ERR_clear_error();
    for (;;) {
        X509 *c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!c)
            break;
        if (sk_X509_num(sk) >= X5C_MAX_CERTS * 16 || !sk_X509_push(sk, c)) {
            X509_free(c);
            return cl_err_set(err, CL_ELIMIT, "PEM: too many certificates");
        }
    }
    /* the loop ends on "no start line" at the end of the text; anything else is damage */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
        return cl_ossl_err(err, CL_EPARSE, "PEM: certificate %d is malformed", sk_X509_num(sk) + 1);
    ERR_clear_error();
    if (sk_X509_num(sk) == 0)
        return cl_err_set(err, CL_ENOTFOUND, "PEM: no certificate found");
    *out = CL_STEAL(sk);
    return 0;
}

int cl_x509_store_add_pem(cl_x509_store *st, const char *pem, size_t len, struct cl_err *err)
{
    if (!st)
        return cl_err_set(err, CL_EINVAL, "trust store: none given");
    CL_AUTO(x509_stack) *sk = NULL;
    int rc = read_pem_certs(pem, len, &sk, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < sk_X509_num(sk); i++)
        if (X509_STORE_add_cert(st, sk_X509_value(sk, i)) != 1) /* duplicates are accepted */
            return cl_ossl_err(err, CL_EINVAL, "trust store: cannot add certificate %d", i + 1);
    return 0;
}

cl_x509_store *cl_x509_store_load(const char *const *paths, size_t n, struct cl_err *err)
{
    CL_AUTO(cl_x509_store) *st = X509_STORE_new();
    if (!st) {
        cl_err_set(err, CL_ENOMEM, "trust store: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        CL_AUTO(cl_bytes) *buf = cl_file_read(paths[i], CL_PEM_MAX, &len, err);
        if (!buf || cl_x509_store_add_pem(st, (const char *)buf, len, err) < 0) {
            cl_err_prefix(err, "trust store %s", paths[i]);
            return NULL;
        }
    }
    return CL_STEAL(st);
}

/* One x5c entry: standard or url-safe base64 of exactly one DER certificate. */
static X509 *x5c_cert(const json_t *v, size_t idx, struct cl_err *err)
{
    if (!json_is_string(v)) {
        cl_err_set(err, CL_EPARSE, "x5c[%zu]: not a string", idx);
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t slen = json_string_length(v);
    size_t n = 0;
    CL_AUTO(cl_bytes) *der = cl_b64_decode(s, slen, CL_B64_ANY, X5C_MAX_CERT_BYTES, &n, err);
    if (!der) {
        cl_err_prefix(err, "x5c[%zu]", idx);
        return NULL;
    }
    const unsigned char *p = der;
    X509 *c = d2i_X509(NULL, &p, (long)n);
    if (!c || p != der + n) {
        X509_free(c);
        cl_ossl_err(err, CL_EPARSE, "x5c[%zu]: not one DER certificate", idx);
        return NULL;
    }
    return c;
}

int cl_x509_verify_x5c(const json_t *x5c, cl_x509_store *store, int64_t at, cl_pkey **leaf,
                       struct cl_err *err)
{
    if (!store)
        return cl_err_set(err, CL_EINVAL, "x5c: no trust store");
    if (!json_is_array(x5c))
        return cl_err_set(err, CL_EPARSE, "x5c: not an array");
    size_t n = json_array_size(x5c);
    if (n == 0)
        return cl_err_set(err, CL_EVERIFY, "x5c: empty");
    if (n > X5C_MAX_CERTS)
        return cl_err_set(err, CL_ELIMIT, "x5c: %zu certificates exceed %d", n, X5C_MAX_CERTS);
    CL_AUTO(X509) *cert = x5c_cert(json_array_get(x5c, 0), 0, err);
    CL_AUTO(x509_stack) *untrusted = sk_X509_new_null();
    if (!cert)
        return err ? err->code : CL_EPARSE;
    if (!untrusted)
        return cl_err_set(err, CL_ENOMEM, "x5c: out of memory");
    for (size_t i = 1; i < n; i++) {
        X509 *c = x5c_cert(json_array_get(x5c, i), i, err);
        if (!c)
            return err ? err->code : CL_EPARSE;
        if (!sk_X509_push(untrusted, c)) {
            X509_free(c);
            return cl_err_set(err, CL_ENOMEM, "x5c: out of memory");
        }
    }
    CL_AUTO(X509_STORE_CTX) *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1)
        return cl_ossl_err(err, CL_ENOMEM, "x5c: cannot set up verification");
    /* the context's own parameters (inherited from the store), so the store is not changed */
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    if (at != 0)
        X509_VERIFY_PARAM_set_time(param, (time_t)at);
    if (X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) != 1)
        return cl_ossl_err(err, CL_EINVAL, "x5c: cannot set purpose");
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        ERR_clear_error();
        return cl_err_stage(err, CL_EVERIFY, "chain", "x5c: chain does not verify at depth %d: %s",
                            depth, X509_verify_cert_error_string(e));
    }
    EVP_PKEY *k = X509_get_pubkey(cert);
    if (!k)
        return cl_ossl_err(err, CL_EPARSE, "x5c: leaf public key unreadable");
    *leaf = k;
    return 0;
}

json_t *cl_x509_pem_to_x5c(const char *path, struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *buf = cl_file_read(path, CL_PEM_MAX, &len, err);
    CL_AUTO(x509_stack) *sk = NULL;
    if (!buf || read_pem_certs((const char *)buf, len, &sk, err) < 0) {
        cl_err_prefix(err, "certificate chain %s", path);
        return NULL;
    }
    CL_AUTO(json_t) *arr = json_array();
    if (!arr) {
        cl_err_set(err, CL_ENOMEM, "x5c: out of memory");
        return NULL;
    }
    for (int i = 0; i < sk_X509_num(sk); i++) {
        unsigned char *der = NULL;
        int dl = i2d_X509(sk_X509_value(sk, i), &der);
        cl_str *b64 = dl > 0 ? cl_b64_encode(der, (size_t)dl, CL_B64_STD) : NULL;
        OPENSSL_free(der);
        int rc = b64 ? json_array_append_new(arr, json_string(b64)) : -1;
        free(b64);
        if (rc < 0) {
            cl_err_set(err, CL_ENOMEM, "x5c: cannot encode certificate %d", i + 1);
            return NULL;
        }
    }
    return CL_STEAL(arr);
}
