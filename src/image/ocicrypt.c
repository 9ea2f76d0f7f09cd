/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocicrypt layers: finding and opening the layer key (JWE recipients with local private keys,
 * or a key provider through a callback), checking the public options, and the AES-256-CTR
 * decrypting source. The HMAC-SHA256 over the ciphertext is checked by the blob download
 * before this source ever runs, so no plaintext of an unauthenticated layer reaches the
 * decompressor; the plaintext digest from the private options is checked at the end too.
 */
#include "image/image_int.h"

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <string.h>

#define SYMKEY_LEN 32
#define NONCE_LEN 16
#define HMAC_LEN 32
#define MAX_ANNOTATION (1u * 1024 * 1024)
#define MAX_PRIVOPTS 65536
#define GCM_IV 12
#define GCM_TAG 16
#define MAX_JWE_RECIPIENTS 64

void cl_image_layer_key_clear(struct cl_image_layer_key *k)
{
    if (!k)
        return;
    cl_secret_free(k->symkey);
    explicit_bzero(k, sizeof *k);
}

cl_bytes *cl_image_b64_member(const json_t *obj, const char *key, size_t max, size_t *outlen,
                              const char *what, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) {
        cl_err_set(err, CL_EPARSE, "%s: '%s' is missing or not a string", what, key);
        return NULL;
    }
    cl_bytes *b = cl_b64_decode(s, strlen(s), CL_B64_ANY, max, outlen, err);
    if (!b)
        cl_err_prefix(err, "%s: '%s'", what, key);
    return b;
}

/* ---- JWE (ocicrypt's go-jose output) ---- */

static void auto_cipher_ctx(EVP_CIPHER_CTX **p)
{
    EVP_CIPHER_CTX_free(*p);
}
static void auto_pkey_ctx(EVP_PKEY_CTX **p)
{
    EVP_PKEY_CTX_free(*p);
}

/* RSA-OAEP with SHA-1 (what ocicrypt uses for RSA recipients; not in the KBS's JWE set). */
static struct cl_secret *rsa_oaep_sha1(cl_pkey *key, const uint8_t *ek, size_t eklen,
                                       struct cl_err *err)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        cl_err_set(err, CL_EVERIFY, "JWE: RSA-OAEP recipient, not an RSA key");
        return NULL;
    }
    size_t modlen = (size_t)EVP_PKEY_get_size(key);
    __attribute__((cleanup(auto_pkey_ctx))) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    CL_AUTO(cl_secret) *buf = cl_secret_new(modlen);
    if (!ctx || !buf) {
        cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
        return NULL;
    }
    size_t n = modlen;
    if (EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha1()) != 1 || eklen != modlen ||
        EVP_PKEY_decrypt(ctx, buf->data, &n, ek, eklen) != 1 || n != 32) {
        ERR_clear_error();
        cl_err_set(err, CL_EVERIFY, "JWE: RSA-OAEP key decryption failed");
        return NULL;
    }
    return cl_secret_from(buf->data, n);
}

static struct cl_secret *gcm_open(const struct cl_secret *cek, const uint8_t *iv,
                                  const uint8_t *tag, const char *aad, const uint8_t *ct,
                                  size_t ctlen, struct cl_err *err)
{
    __attribute__((cleanup(auto_cipher_ctx))) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    CL_AUTO(cl_secret) *pt = cl_secret_new(ctlen);
    if (!c || !pt) {
        cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
        return NULL;
    }
    int n = 0, f = 0;
    if (cek->len != 32 || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_IV, NULL) != 1 ||
        EVP_DecryptInit_ex(c, NULL, NULL, cek->data, iv) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
        (ctlen && EVP_DecryptUpdate(c, pt->data, &n, ct, (int)ctlen) != 1) ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, (void *)(uintptr_t)tag) != 1 ||
        EVP_DecryptFinal_ex(c, pt->data + (ctlen ? n : 0), &f) != 1) {
        ERR_clear_error();
        cl_err_set(err, CL_EVERIFY, "JWE: content decryption failed (tag mismatch)");
        return NULL;
    }
    return CL_STEAL(pt);
}

/* One flattened JWE with the RSA-OAEP (SHA-1) recipient. */
static struct cl_secret *open_rsa_oaep_sha1(const json_t *jwe, const char *p64, cl_pkey *key,
                                            struct cl_err *err)
{
    size_t eklen = 0, ivlen = 0, taglen = 0, ctlen = 0;
    CL_AUTO(cl_bytes) *ek = cl_image_b64_member(jwe, "encrypted_key", 8192, &eklen, "JWE", err);
    CL_AUTO(cl_bytes) *iv = ek ? cl_image_b64_member(jwe, "iv", 64, &ivlen, "JWE", err) : NULL;
    CL_AUTO(cl_bytes) *tag = iv ? cl_image_b64_member(jwe, "tag", 64, &taglen, "JWE", err) : NULL;
    CL_AUTO(cl_bytes) *ct =
        tag ? cl_image_b64_member(jwe, "ciphertext", CL_JWE_MAX_PLAINTEXT, &ctlen, "JWE", err)
            : NULL;
    if (!ct)
        return NULL;
    if (ivlen != GCM_IV || taglen != GCM_TAG) {
        cl_err_set(err, CL_EPARSE, "JWE: iv must be %d and tag %d bytes", GCM_IV, GCM_TAG);
        return NULL;
    }
    const char *aadm = json_string_value(json_object_get(jwe, "aad"));
    CL_AUTO(cl_str) *aad = aadm ? cl_strdupf("%s.%s", p64, aadm) : strdup(p64);
    CL_AUTO(cl_secret) *cek = rsa_oaep_sha1(key, ek, eklen, err);
    if (!aad || !cek)
        return NULL;
    return gcm_open(cek, iv, tag, aad, ct, ctlen, err);
}

/* The "alg" of a flattened JWE from its protected header or its per-recipient header. */
static int jwe_alg(const json_t *jwe, const char **p64, char *alg, size_t algcap,
                   struct cl_err *err)
{
    *p64 = json_string_value(json_object_get(jwe, "protected"));
    if (!*p64)
        return cl_err_set(err, CL_EPARSE, "JWE: 'protected' is missing");
    size_t hl = 0;
    CL_AUTO(cl_bytes) *h = cl_b64_decode(*p64, strlen(*p64), CL_B64_URL_ANYPAD, 8192, &hl, err);
    if (!h)
        return cl_err_prefix(err, "JWE 'protected'");
    CL_AUTO(json_t) *hdr = cl_json_parse((const char *)h, hl, 8, err);
    if (!hdr)
        return cl_err_prefix(err, "JWE 'protected'");
    const char *a = json_string_value(json_object_get(hdr, "alg"));
    if (!a)
        a = json_string_value(json_object_get(json_object_get(jwe, "header"), "alg"));
    if (!a)
        a = json_string_value(json_object_get(json_object_get(jwe, "unprotected"), "alg"));
    if (!a)
        return cl_err_set(err, CL_EPARSE, "JWE: no 'alg'");
    snprintf(alg, algcap, "%s", a);
    return 0;
}

static struct cl_secret *open_flat(const json_t *jwe, cl_pkey *key, struct cl_err *err)
{
    const char *p64 = NULL;
    char alg[64];
    if (jwe_alg(jwe, &p64, alg, sizeof alg, err) < 0)
        return NULL;
    if (strcmp(alg, "RSA-OAEP") == 0)
        return open_rsa_oaep_sha1(jwe, p64, key, err);
    /* the KBS JWE code knows ECDH-ES+A256KW, RSA-OAEP-256 and RSA1_5 */
    struct cl_secret *pt = cl_jwe_decrypt(jwe, key, err);
    if (!pt && err && err->code != CL_ENOMEM)
        err->code = CL_EVERIFY;
    return pt;
}

struct cl_secret *cl_image_jwe_open(const json_t *jwe, cl_pkey *key, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!json_is_object(jwe)) {
        cl_err_set(err, CL_EPARSE, "JWE: not a JSON object");
        return NULL;
    }
    json_t *recips = json_object_get(jwe, "recipients");
    if (!recips)
        return open_flat(jwe, key, err);
    if (!json_is_array(recips) || json_array_size(recips) == 0) {
        cl_err_set(err, CL_EPARSE, "JWE: 'recipients' is not a non-empty array");
        return NULL;
    }
    if (json_array_size(recips) > MAX_JWE_RECIPIENTS) {
        cl_err_set(err, CL_ELIMIT, "JWE: more than %d recipients", MAX_JWE_RECIPIENTS);
        return NULL;
    }
    /* general serialisation: try each recipient as a flattened JWE */
    size_t i;
    json_t *r;
    json_array_foreach(recips, i, r)
    {
        CL_AUTO(json_t) *flat = json_deep_copy(jwe);
        if (!flat || !json_is_object(r)) {
            cl_err_set(err, flat ? CL_EPARSE : CL_ENOMEM, "JWE: recipient %zu", i);
            return NULL;
        }
        json_object_del(flat, "recipients");
        json_t *h = json_object_get(r, "header");
        json_t *ek = json_object_get(r, "encrypted_key");
        if ((h && json_object_set(flat, "header", h) < 0) ||
            (ek && json_object_set(flat, "encrypted_key", ek) < 0)) {
            cl_err_set(err, CL_ENOMEM, "JWE: out of memory");
            return NULL;
        }
        struct cl_err e = {0};
        struct cl_secret *pt = open_flat(flat, key, &e);
        if (pt)
            return pt;
        if (err)
            *err = e;
    }
    if (err && err->code != CL_ENOMEM && err->code != CL_EPARSE)
        cl_err_set(err, CL_EVERIFY, "JWE: no recipient opens with this key (%.200s)", err->msg);
    return NULL;
}

/* ---- private and public options ---- */

static int parse_privopts(const struct cl_secret *opts, const json_t *pub,
                          struct cl_image_layer_key *k, struct cl_err *err)
{
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)opts->data, opts->len, 8, err);
    if (!doc)
        return cl_err_prefix(err, "layer private options");
    size_t kl = 0, nl = 0;
    const char *sk = json_string_value(json_object_get(doc, "symkey"));
    if (!sk)
        return cl_err_set(err, CL_EPARSE, "layer private options: 'symkey' is missing");
    struct cl_secret *key = cl_b64_decode_secret(sk, strlen(sk), CL_B64_ANY, err);
    if (!key)
        return cl_err_prefix(err, "layer private options: 'symkey'");
    kl = key->len;
    k->symkey = key;
    if (kl != SYMKEY_LEN)
        return cl_err_set(err, CL_EPARSE, "layer private options: symkey is %zu bytes, not %d", kl,
                          SYMKEY_LEN);
    const char *dg = json_string_value(json_object_get(doc, "digest"));
    int rc = cl_image_digest_parse(dg, &k->plain_digest, "layer private options 'digest'", err);
    if (rc < 0)
        return rc;
    /* the nonce: public cipher options override the private ones */
    const json_t *co = json_object_get(json_object_get(pub, "cipheroptions"), "nonce")
                           ? json_object_get(pub, "cipheroptions")
                           : json_object_get(doc, "cipheroptions");
    if (!json_is_object(co))
        return cl_err_set(err, CL_EPARSE, "layer private options: 'cipheroptions' is missing");
    CL_AUTO(cl_bytes) *nonce =
        cl_image_b64_member(co, "nonce", 64, &nl, "layer cipher options", err);
    if (!nonce)
        return CL_EPARSE;
    if (nl != NONCE_LEN)
        return cl_err_set(err, CL_EPARSE, "layer cipher options: nonce is %zu bytes, not %d", nl,
                          NONCE_LEN);
    memcpy(k->nonce, nonce, NONCE_LEN);
    return 0;
}

static int parse_pubopts(const json_t *ann, json_t **pub, uint8_t hmac[HMAC_LEN],
                         struct cl_err *err)
{
    const char *p = json_string_value(json_object_get(ann, CL_IMAGE_ANN_ENC_PUBOPTS));
    if (!p)
        return cl_err_set(err, CL_EPARSE, "encrypted layer: annotation %s is missing",
                          CL_IMAGE_ANN_ENC_PUBOPTS);
    size_t len = 0;
    CL_AUTO(cl_bytes) *txt = cl_b64_decode(p, strlen(p), CL_B64_ANY, MAX_ANNOTATION, &len, err);
    if (!txt)
        return cl_err_prefix(err, "encrypted layer: %s", CL_IMAGE_ANN_ENC_PUBOPTS);
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)txt, len, 8, err);
    if (!doc)
        return cl_err_prefix(err, "encrypted layer: public options");
    const char *cipher = json_string_value(json_object_get(doc, "cipher"));
    if (!cipher || strcmp(cipher, CL_IMAGE_ENC_CIPHER) != 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "encrypted layer: cipher '%.64s' is not %s",
                          cipher ? cipher : "", CL_IMAGE_ENC_CIPHER);
    size_t hl = 0;
    CL_AUTO(cl_bytes) *h =
        cl_image_b64_member(doc, "hmac", 64, &hl, "encrypted layer public options", err);
    if (!h)
        return CL_EPARSE;
    if (hl != HMAC_LEN)
        return cl_err_set(err, CL_EPARSE, "encrypted layer: hmac is %zu bytes, not %d", hl,
                          HMAC_LEN);
    memcpy(hmac, h, HMAC_LEN);
    *pub = CL_STEAL(doc);
    return 0;
}

/* ---- finding the key ---- */

/* Calls fn for each comma-separated base64 entry of an annotation value; stops at the first
 * that returns 0 (found) or a hard error (< 0 other than EVERIFY). */
typedef int (*wrapped_fn)(void *ctx, const uint8_t *blob, size_t len, struct cl_err *err);

static int each_wrapped(const char *value, wrapped_fn fn, void *ctx, struct cl_err *err)
{
    int last = CL_EVERIFY;
    const char *p = value;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            size_t bl = 0;
            CL_AUTO(cl_bytes) *blob = cl_b64_decode(p, n, CL_B64_ANY, MAX_ANNOTATION, &bl, err);
            if (!blob)
                return cl_err_prefix(err, "encrypted layer: wrapped key");
            last = fn(ctx, blob, bl, err);
            if (last == 0 || (last < 0 && last != CL_EVERIFY && last != CL_ENOTFOUND))
                return last;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return last;
}

struct try_ctx {
    const struct cl_image_decrypt *dc;
    const char *provider;
    struct cl_secret *opts; /* result */
};

static int try_jwe(void *ctx, const uint8_t *blob, size_t len, struct cl_err *err)
{
    struct try_ctx *t = ctx;
    CL_AUTO(json_t) *jwe = cl_json_parse((const char *)blob, len, 16, err);
    if (!jwe)
        return cl_err_prefix(err, "encrypted layer: JWE");
    int rc = CL_EVERIFY;
    for (size_t i = 0; i < t->dc->njwe_keys; i++) {
        struct cl_secret *pt = cl_image_jwe_open(jwe, t->dc->jwe_keys[i], err);
        if (pt) {
            t->opts = pt;
            return 0;
        }
        if (err && err->code != CL_EVERIFY && err->code != CL_EUNSUPPORTED &&
            err->code != CL_EINVAL)
            return err->code;
    }
    if (t->dc->njwe_keys == 0)
        cl_err_set(err, CL_EVERIFY, "encrypted layer: JWE recipients but no private key was given");
    return rc;
}

static int try_provider(void *ctx, const uint8_t *blob, size_t len, struct cl_err *err)
{
    struct try_ctx *t = ctx;
    struct cl_secret *out = NULL;
    int rc = t->dc->unwrap(t->dc->unwrap_ctx, t->provider, blob, len, &out, err);
    if (rc < 0)
        return rc == CL_EDENIED ? CL_EVERIFY : rc;
    if (!out)
        return cl_err_set(err, CL_EVERIFY, "key provider %s returned nothing", t->provider);
    t->opts = out;
    return 0;
}

int cl_image_layer_key_open(const struct cl_image_desc *desc, const struct cl_image_decrypt *dc,
                            struct cl_image_layer_key *out, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!desc->encrypted)
        return cl_err_set(err, CL_EINVAL, "layer %s is not encrypted", desc->digest.str);
    const json_t *ann = desc->annotations;
    if (!ann)
        return cl_err_set(err, CL_EPARSE, "encrypted layer %s: no annotations", desc->digest.str);
    struct cl_image_decrypt none = {0};
    if (!dc)
        dc = &none;
    CL_AUTO(json_t) *pub = NULL;
    uint8_t hmac[HMAC_LEN];
    int rc = parse_pubopts(ann, &pub, hmac, err);
    if (rc < 0)
        return cl_err_prefix(err, "layer %s", desc->digest.str);
    struct try_ctx t = {.dc = dc};
    int last = CL_ENOTFOUND;
    struct cl_err last_err = {0};
    bool unsupported = false, providers = false;
    const char *k;
    json_t *v;
    /* ---- JWE recipients ---- */
    const char *jwe = json_string_value(json_object_get(ann, CL_IMAGE_ANN_ENC_JWE));
    if (jwe) {
        struct cl_err e = {0};
        last = each_wrapped(jwe, try_jwe, &t, &e);
        last_err = e;
        if (last < 0 && last != CL_EVERIFY) {
            if (err)
                *err = e;
            return last;
        }
    }
    /* ---- key providers ---- */
    json_object_foreach((json_t *)(uintptr_t)ann, k, v)
    {
        if (t.opts)
            break;
        if (strncmp(k, CL_IMAGE_ANN_ENC_PROVIDER, strlen(CL_IMAGE_ANN_ENC_PROVIDER)) == 0) {
            providers = true;
            if (!dc->unwrap) {
                last = cl_err_set(&last_err, CL_EVERIFY,
                                  "layer is wrapped by key provider '%.64s' and no key provider "
                                  "is configured",
                                  k + strlen(CL_IMAGE_ANN_ENC_PROVIDER));
                continue;
            }
            t.provider = k + strlen(CL_IMAGE_ANN_ENC_PROVIDER);
            struct cl_err e = {0};
            last = each_wrapped(json_string_value(v), try_provider, &t, &e);
            last_err = e;
            if (last < 0 && last != CL_EVERIFY && last != CL_ENOTFOUND) {
                if (err)
                    *err = e;
                return last;
            }
        } else if (strncmp(k, CL_IMAGE_ANN_ENC_KEYS, strlen(CL_IMAGE_ANN_ENC_KEYS)) == 0 &&
                   strcmp(k, CL_IMAGE_ANN_ENC_JWE) != 0) {
            unsupported = true; /* pkcs7, pgp, pkcs11 */
        }
    }
    if (!t.opts) {
        if (!jwe && !providers && unsupported)
            return cl_err_set(
                err, CL_EUNSUPPORTED,
                "encrypted layer %s: only JWE and key-provider wrapping are supported",
                desc->digest.str);
        if (!jwe && !providers)
            return cl_err_set(err, CL_EPARSE, "encrypted layer %s: no wrapped key annotation",
                              desc->digest.str);
        return cl_err_stage(err, CL_EVERIFY, "decrypt",
                            "encrypted layer %s: no key opens it (encrypted for another "
                            "key?): %.300s",
                            desc->digest.str, last_err.msg);
    }
    CL_AUTO(cl_secret) *opts = t.opts;
    struct cl_image_layer_key key = {0};
    if (opts->len > MAX_PRIVOPTS)
        return cl_err_set(err, CL_ELIMIT,
                          "encrypted layer %s: private options larger than %d bytes",
                          desc->digest.str, MAX_PRIVOPTS);
    if ((rc = parse_privopts(opts, pub, &key, err)) < 0) {
        cl_image_layer_key_clear(&key);
        return cl_err_prefix(err, "layer %s", desc->digest.str);
    }
    memcpy(key.hmac, hmac, HMAC_LEN);
    *out = key;
    return 0;
}

/* ---- decrypting source ---- */

struct decsrc {
    struct cl_image_src src;
    struct cl_image_src *inner;
    EVP_CIPHER_CTX *c;
    struct cl_image_hasher h;
    struct cl_image_digest want;
    bool done;
};

static int dec_read(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                    struct cl_err *err)
{
    struct decsrc *d = (struct decsrc *)self;
    *got = 0;
    if (d->done)
        return 0;
    size_t n = 0;
    int rc = d->inner->read(d->inner, buf, cap > INT32_MAX ? INT32_MAX : cap, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0) {
        struct cl_image_digest dg;
        if ((rc = cl_image_hasher_final(&d->h, &dg, err)) < 0)
            return rc;
        d->done = true;
        if (!cl_image_digest_eq(&dg, &d->want))
            return cl_err_stage(err, CL_EVERIFY, "decrypt",
                                "decrypted layer hashes to %s, its key says %s", dg.str,
                                d->want.str);
        return 0;
    }
    int outl = 0;
    /* CTR works in place */
    if (EVP_DecryptUpdate(d->c, buf, &outl, buf, (int)n) != 1 || (size_t)outl != n)
        return cl_err_stage(err, CL_EINVAL, "decrypt", "AES-CTR failed");
    if ((rc = cl_image_hasher_update(&d->h, buf, n, err)) < 0)
        return rc;
    *got = n;
    return 0;
}

void cl_image_decrypt_free(struct cl_image_src *s)
{
    struct decsrc *d = (struct decsrc *)s;
    if (!d)
        return;
    EVP_CIPHER_CTX_free(d->c);
    cl_image_hasher_free(&d->h);
    free(d);
}

struct cl_image_src *cl_image_decrypt_new(struct cl_image_src *inner,
                                          const struct cl_image_layer_key *key, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!key || !key->symkey || key->symkey->len != SYMKEY_LEN) {
        cl_err_set(err, CL_EINVAL, "decrypt: no layer key");
        return NULL;
    }
    struct decsrc *d = calloc(1, sizeof *d);
    if (!d || !(d->c = EVP_CIPHER_CTX_new())) {
        free(d);
        cl_err_set(err, CL_ENOMEM, "decrypt: out of memory");
        return NULL;
    }
    d->src.read = dec_read;
    d->inner = inner;
    d->want = key->plain_digest;
    if (EVP_DecryptInit_ex(d->c, EVP_aes_256_ctr(), NULL, key->symkey->data, key->nonce) != 1 ||
        cl_image_hasher_init(&d->h, key->plain_digest.alg, err) < 0) {
        cl_image_decrypt_free(&d->src);
        cl_err_set(err, CL_EINVAL, "decrypt: AES-CTR setup failed");
        return NULL;
    }
    return &d->src;
}

/* ---- encrypting (tests, tools) ---- */

int cl_image_encrypt_buf(const void *plain, size_t len, struct cl_image_layer_key *key,
                         cl_bytes **ct, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct cl_image_layer_key k = {0};
    int rc;
    k.symkey = cl_secret_new(SYMKEY_LEN);
    cl_bytes *out = malloc(len ? len : 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    unsigned hl = 0;
    if (!k.symkey || !out || !c) {
        rc = cl_err_set(err, CL_ENOMEM, "encrypt: out of memory");
        goto fail;
    }
    if ((rc = cl_random(k.symkey->data, SYMKEY_LEN, err)) < 0 ||
        (rc = cl_random(k.nonce, NONCE_LEN, err)) < 0 ||
        (rc = cl_image_digest_of(CL_HASH_SHA256, plain, len, &k.plain_digest, err)) < 0)
        goto fail;
    if (EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, k.symkey->data, k.nonce) != 1 ||
        (len && EVP_EncryptUpdate(c, out, &outl, plain, (int)len) != 1) ||
        !HMAC(EVP_sha256(), k.symkey->data, SYMKEY_LEN, out, len, k.hmac, &hl) || hl != HMAC_LEN) {
        rc = cl_err_set(err, CL_EINVAL, "encrypt: AES-CTR or HMAC failed");
        goto fail;
    }
    EVP_CIPHER_CTX_free(c);
    *key = k;
    *ct = out;
    return 0;
fail:
    EVP_CIPHER_CTX_free(c);
    cl_image_layer_key_clear(&k);
    free(out);
    return rc;
}

struct cl_secret *cl_image_layer_key_privopts(const struct cl_image_layer_key *k,
                                              struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(cl_str) *sk = cl_b64_encode(k->symkey->data, k->symkey->len, CL_B64_STD);
    CL_AUTO(cl_str) *nonce = cl_b64_encode(k->nonce, NONCE_LEN, CL_B64_STD);
    CL_AUTO(cl_str) *s =
        sk && nonce
            ? cl_strdupf(
                  "{\"symkey\":\"%s\",\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":\"%s\"}}", sk,
                  k->plain_digest.str, nonce)
            : NULL;
    if (sk)
        explicit_bzero(sk, strlen(sk));
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "privopts: out of memory");
        return NULL;
    }
    struct cl_secret *out = cl_secret_from(s, strlen(s));
    explicit_bzero(s, strlen(s));
    if (!out)
        cl_err_set(err, CL_ENOMEM, "privopts: out of memory");
    return out;
}

cl_str *cl_image_layer_key_pubopts(const struct cl_image_layer_key *k, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(cl_str) *h = cl_b64_encode(k->hmac, HMAC_LEN, CL_B64_STD);
    cl_str *s = h ? cl_strdupf("{\"cipher\":\"%s\",\"hmac\":\"%s\",\"cipheroptions\":{}}",
                               CL_IMAGE_ENC_CIPHER, h)
                  : NULL;
    if (!s)
        cl_err_set(err, CL_ENOMEM, "pubopts: out of memory");
    return s;
}
