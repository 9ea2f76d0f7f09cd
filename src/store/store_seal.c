/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Envelope encryption of values at rest (opt-in). Each value gets a fresh 256-bit data key;
 * the value is AES-256-GCM under it with the namespace and key as associated data (a value
 * moved to another key does not open), and the data key is AES-256-GCM under the key-encryption
 * key (KEK) with the KEK id as associated data. Stored bytes:
 *
 *   "clseal1:" kid(8 hex) ":" wiv(12) wct(32) wtag(16) iv(12) tag(16) ciphertext
 *
 * kid = the first 4 bytes of SHA-256(KEK), hex. The KEK comes from a file, or is an AES-256 key on
 * a PKCS#11 token (store_p11.c: the data key is wrapped on the token, the same layout; its kid is
 * derived from the token's check value). Rotation: configure the new KEK and keep the old
 * ones as "old"; cl_store_seal_rewrap re-wraps the data key under the new KEK (the value's
 * ciphertext is untouched). Tags are checked before any plaintext is returned.
 */
#include "store/store_backend.h"
#include "store/store_p11.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define SEAL_MAGIC "clseal1:"
#define SEAL_MAGIC_LEN 8
#define KID_LEN 8
#define HDR_LEN (SEAL_MAGIC_LEN + KID_LEN + 1)
#define WRAP_LEN (12 + 32 + 16)
#define SEAL_OVERHEAD (HDR_LEN + WRAP_LEN + 12 + 16)

struct seal_kek {
    uint8_t key[32];          /* a KEK from a file, or */
    struct cl_store_p11 *p11; /* one on a token (never read out) */
    char kid[KID_LEN + 1];
};

struct cl_store_seal {
    struct seal_kek keks[1 + CL_STORE_SEAL_MAX_OLD]; /* [0] is current */
    size_t n;
};

/* AES-256-GCM; enc: out = ct, tag written; dec: tag checked (EVERIFY). */
static int gcm(bool enc, const uint8_t key[32], const uint8_t iv[12], const void *aad,
               size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc ? 1 : 0) == 1;
    int l = 0;
    if (ok && aadlen)
        ok = EVP_CipherUpdate(c, NULL, &l, aad, (int)aadlen) == 1;
    if (ok && len)
        ok = EVP_CipherUpdate(c, out, &l, in, (int)len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + (len ? l : 0), &l) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : (enc ? CL_EIO : CL_EVERIFY);
}

/* The data key under the KEK: w = wiv(12) wct(32) wtag(16), the kid as associated data. */
static int kek_wrap(const struct seal_kek *k, uint8_t *w, const uint8_t dek[32], struct cl_err *err)
{
    if (k->p11)
        return cl_store_p11_wrap(k->p11, w, k->kid, KID_LEN, dek, w + 12, w + 44, err);
    if (gcm(true, k->key, w, k->kid, KID_LEN, dek, 32, w + 12, w + 44) < 0)
        return cl_err_set(err, CL_EIO, "store encryption: AES-256-GCM failed");
    return 0;
}

/* dek written only when the tag checks: EVERIFY otherwise. */
static int kek_unwrap(const struct seal_kek *k, const uint8_t *w, uint8_t dek[32],
                      struct cl_err *err)
{
    uint8_t tag[16];
    memcpy(tag, w + 44, 16);
    if (k->p11)
        return cl_store_p11_unwrap(k->p11, w, k->kid, KID_LEN, w + 12, tag, dek, err);
    return gcm(false, k->key, w, k->kid, KID_LEN, w + 12, 32, dek, tag);
}

static int kek_load(const char *path, struct seal_kek *k, struct cl_err *err)
{
    if (cl_store_p11_is_uri(path)) {
        k->p11 = cl_store_p11_open(path, err);
        if (!k->p11)
            return err ? err->code : CL_EIO;
        memcpy(k->kid, cl_store_p11_kid(k->p11), KID_LEN + 1);
        return 0;
    }
    size_t n = 0;
    cl_bytes *raw = cl_file_read(path, 256, &n, err);
    if (!raw)
        return cl_err_prefix(err, "store encryption key");
    /* 32 raw bytes, or 64 hex characters (a trailing newline allowed) */
    int rc = 0;
    while (n > 32 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        n--;
    if (n == 32) {
        memcpy(k->key, raw, 32);
    } else if (n == 64) {
        for (size_t i = 0; i < 32 && rc == 0; i++) {
            unsigned v = 0;
            if (sscanf((const char *)raw + 2 * i, "%2x", &v) != 1)
                rc = cl_err_set(err, CL_EPARSE, "store encryption key %s: not hex", path);
            k->key[i] = (uint8_t)v;
        }
    } else {
        rc = cl_err_set(err, CL_EPARSE, "store encryption key %s: %zu bytes, want 32 raw or 64 hex",
                        path, n);
    }
    explicit_bzero(raw, n);
    free(raw);
    if (rc < 0)
        return rc;
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(k->key, 32, d);
    snprintf(k->kid, sizeof k->kid, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
    return 0;
}

struct cl_store_seal *cl_store_seal_new(const char *kek_path, const char *const *old, size_t nold,
                                        struct cl_err *err)
{
    if (nold > CL_STORE_SEAL_MAX_OLD) {
        cl_err_set(err, CL_ELIMIT, "store encryption: more than %d old keys",
                   CL_STORE_SEAL_MAX_OLD);
        return NULL;
    }
    struct cl_store_seal *s = calloc(1, sizeof *s);
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i <= nold; i++) {
        if (kek_load(i == 0 ? kek_path : old[i - 1], &s->keks[i], err) < 0) {
            cl_store_seal_free(s);
            return NULL;
        }
        s->n++;
    }
    return s;
}

int cl_store_seal_check(const char *kek_path, const char *const *old, size_t nold,
                        struct cl_err *err)
{
    struct cl_store_seal *s = cl_store_seal_new(kek_path, old, nold, err);
    if (!s)
        return err ? err->code : CL_EINVAL;
    cl_store_seal_free(s);
    return 0;
}

void cl_store_seal_free(struct cl_store_seal *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        cl_store_p11_close(s->keks[i].p11);
    explicit_bzero(s, sizeof *s);
    free(s);
}

bool cl_store_seal_is_sealed(const uint8_t *v, size_t len)
{
    return len >= SEAL_MAGIC_LEN && memcmp(v, SEAL_MAGIC, SEAL_MAGIC_LEN) == 0;
}

static char *aad_of(const char *ns, const char *key)
{
    char *a = NULL;
    return asprintf(&a, "%s/%s", ns, key) < 0 ? NULL : a;
}

int cl_store_seal_wrap(const struct cl_store_seal *s, const char *ns, const char *key,
                       const void *data, size_t len, uint8_t **out, size_t *outlen,
                       struct cl_err *err)
{
    if (len > CL_STORE_MAX_VALUE - SEAL_OVERHEAD)
        return cl_err_set(err, CL_ELIMIT, "store value for \"%s\": too large to seal", key);
    const struct seal_kek *k = &s->keks[0];
    size_t tot = SEAL_OVERHEAD + len;
    uint8_t *b = malloc(tot + 1);
    char *aad = aad_of(ns, key);
    uint8_t dek[32];
    if (!b || !aad) {
        free(b);
        free(aad);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    memcpy(b, SEAL_MAGIC, SEAL_MAGIC_LEN);
    memcpy(b + SEAL_MAGIC_LEN, k->kid, KID_LEN);
    b[SEAL_MAGIC_LEN + KID_LEN] = ':';
    uint8_t *w = b + HDR_LEN, *iv = w + WRAP_LEN, *tag = iv + 12, *ct = tag + 16;
    int rc = 0;
    if (RAND_bytes(dek, sizeof dek) != 1 || RAND_bytes(w, 12) != 1 || RAND_bytes(iv, 12) != 1)
        rc = cl_err_set(err, CL_EIO, "store encryption: no randomness");
    if (rc == 0)
        rc = kek_wrap(k, w, dek, err);
    if (rc == 0 && gcm(true, dek, iv, aad, strlen(aad), data, len, ct, tag) < 0)
        rc = cl_err_set(err, CL_EIO, "store encryption: AES-256-GCM failed");
    explicit_bzero(dek, sizeof dek);
    free(aad);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *out = b;
    *outlen = tot;
    return 0;
}

static const struct seal_kek *kek_find(const struct cl_store_seal *s, const uint8_t *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (memcmp(v + SEAL_MAGIC_LEN, s->keks[i].kid, KID_LEN) == 0)
            return &s->keks[i];
    return NULL;
}

static int unwrap_dek(const struct cl_store_seal *s, const char *key, const uint8_t *v, size_t len,
                      uint8_t dek[32], const struct seal_kek **kout, struct cl_err *err)
{
    if (len < SEAL_OVERHEAD || v[SEAL_MAGIC_LEN + KID_LEN] != ':')
        return cl_err_set(err, CL_EPARSE, "store value for \"%s\": sealed value truncated", key);
    const struct seal_kek *k = kek_find(s, v);
    if (!k)
        return cl_err_set(
            err, CL_EVERIFY,
            "store value for \"%s\": sealed under key id %.8s, which is not configured", key,
            (const char *)v + SEAL_MAGIC_LEN);
    int rc = kek_unwrap(k, v + HDR_LEN, dek, err);
    if (rc == CL_EVERIFY) {
        explicit_bzero(dek, 32);
        return cl_err_set(err, CL_EVERIFY,
                          "store value for \"%s\": data key does not open (tampered)", key);
    }
    if (rc < 0) {
        explicit_bzero(dek, 32);
        return cl_err_prefix(err, "store value for \"%s\"", key);
    }
    *kout = k;
    return 0;
}

int cl_store_seal_open(const struct cl_store_seal *s, const char *ns, const char *key,
                       const uint8_t *v, size_t len, cl_bytes **out, size_t *outlen,
                       struct cl_err *err)
{
    if (!cl_store_seal_is_sealed(v, len))
        return cl_err_set(
            err, CL_EVERIFY,
            "store value for \"%s\" in \"%s\": stored unencrypted while encryption at rest is on "
            "(upload it again)",
            key, ns);
    uint8_t dek[32];
    const struct seal_kek *k = NULL;
    int rc = unwrap_dek(s, key, v, len, dek, &k, err);
    if (rc < 0)
        return rc;
    const uint8_t *iv = v + HDR_LEN + WRAP_LEN, *tagp = iv + 12, *ct = tagp + 16;
    size_t n = len - SEAL_OVERHEAD;
    uint8_t *p = malloc(n + 1);
    char *aad = aad_of(ns, key);
    uint8_t tag[16];
    memcpy(tag, tagp, 16);
    if (!p || !aad)
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else if (gcm(false, dek, iv, aad, strlen(aad), ct, n, p, tag) < 0)
        rc = cl_err_set(err, CL_EVERIFY,
                        "store value for \"%s\" in \"%s\": does not open (tampered or moved)", key,
                        ns);
    explicit_bzero(dek, sizeof dek);
    free(aad);
    if (rc < 0) {
        if (p)
            explicit_bzero(p, n);
        free(p);
        return rc;
    }
    p[n] = 0;
    *out = p;
    *outlen = n;
    return 0;
}

int cl_store_seal_rewrap(const struct cl_store_seal *s, const char *key, const uint8_t *v,
                         size_t len, uint8_t **out, size_t *outlen, struct cl_err *err)
{
    if (!cl_store_seal_is_sealed(v, len))
        return 1;
    if (memcmp(v + SEAL_MAGIC_LEN, s->keks[0].kid, KID_LEN) == 0)
        return 1; /* already under the current key */
    uint8_t dek[32];
    const struct seal_kek *k = NULL;
    int rc = unwrap_dek(s, key, v, len, dek, &k, err);
    if (rc < 0)
        return rc;
    uint8_t *b = malloc(len + 1);
    if (!b) {
        explicit_bzero(dek, sizeof dek);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    memcpy(b, v, len);
    const struct seal_kek *cur = &s->keks[0];
    memcpy(b + SEAL_MAGIC_LEN, cur->kid, KID_LEN);
    uint8_t *w = b + HDR_LEN;
    if (RAND_bytes(w, 12) != 1)
        rc = cl_err_set(err, CL_EIO, "store encryption: no randomness");
    else if (kek_wrap(cur, w, dek, err) < 0)
        rc = cl_err_prefix(err, "store encryption: re-wrap");
    explicit_bzero(dek, sizeof dek);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *out = b;
    *outlen = len;
    return 0;
}
