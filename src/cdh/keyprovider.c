/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image layer keys: the ocicrypt key-provider "keyunwrap" call that image-rs sends to the
 * hub. The annotation packet names a KEK (kid, a kbs:// URI) and carries the wrapped
 * PrivateLayerBlockCipherOptions; the KEK comes from the KBS through the hub, the unwrap is
 * A256GCM (tag checked before any byte is returned) or A256CTR (no integrity, as upstream).
 * Also the symmetric helpers sealed secrets share, and the host-side wrap.
 */
#include "cdh/cdh.h"

#include <openssl/evp.h>
#include <string.h>

#define GCM_TAG 16

int cl_cdh_decrypt(const char *wrap_type, const struct cl_secret *key, const uint8_t *iv,
                   size_t ivlen, const uint8_t *data, size_t len, struct cl_secret **out,
                   struct cl_err *err)
{
    if (!key || key->len != 32)
        return cl_err_set(err, CL_EINVAL, "%s needs a 32-byte key", wrap_type);
    bool gcm = strcmp(wrap_type, "A256GCM") == 0;
    if (!gcm && strcmp(wrap_type, "A256CTR") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "wrap type '%.16s' is not A256GCM or A256CTR",
                          wrap_type);
    if (gcm && ivlen != 12)
        return cl_err_set(err, CL_EPARSE, "A256GCM needs a 12-byte iv, got %zu", ivlen);
    if (!gcm && ivlen != 16)
        return cl_err_set(err, CL_EPARSE, "A256CTR needs a 16-byte iv, got %zu", ivlen);
    if (gcm && len < GCM_TAG)
        return cl_err_set(err, CL_EPARSE, "A256GCM data of %zu bytes has no room for the tag", len);
    size_t clen = gcm ? len - GCM_TAG : len;
    struct cl_secret *pt = cl_secret_new(clen);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = pt && ctx &&
             EVP_DecryptInit_ex(ctx, gcm ? EVP_aes_256_gcm() : EVP_aes_256_ctr(), NULL, NULL,
                                NULL) == 1 &&
             (!gcm || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1) &&
             EVP_DecryptInit_ex(ctx, NULL, NULL, key->data, iv) == 1;
    int n = 0, fin = 0;
    if (ok && clen)
        ok = EVP_DecryptUpdate(ctx, pt->data, &n, data, (int)clen) == 1;
    if (ok && gcm)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG,
                                 (void *)(uintptr_t)(data + clen)) == 1;
    bool tag_ok = ok && EVP_DecryptFinal_ex(ctx, pt ? pt->data + n : NULL, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!tag_ok) {
        cl_secret_free(pt);
        return ok ? cl_err_set(err, CL_EVERIFY,
                               "A256GCM: the tag does not verify (wrong key or altered data)")
                  : cl_err_set(err, CL_ENOMEM, "%s: cipher setup failed", wrap_type);
    }
    *out = pt;
    return 0;
}

/* A256GCM with a random nonce: returns nonce(12) || ciphertext || tag (new). */
static cl_bytes *gcm_seal(const struct cl_secret *key, const void *pt, size_t len,
                          uint8_t nonce[12], size_t *outlen, struct cl_err *err)
{
    if (cl_random(nonce, 12, err) < 0)
        return NULL;
    cl_bytes *out = malloc(len + GCM_TAG + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = out && ctx &&
             EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->data, nonce) == 1 &&
             (len == 0 || EVP_EncryptUpdate(ctx, out, &n, pt, (int)len) == 1) &&
             EVP_EncryptFinal_ex(ctx, out + n, &fin) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, out + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        free(out);
        cl_err_set(err, CL_ENOMEM, "A256GCM: encryption failed");
        return NULL;
    }
    *outlen = len + GCM_TAG;
    return out;
}

json_t *cl_cdh_wrap_key(const char *kid, const struct cl_secret *kek, const void *optsdata,
                        size_t len, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (!kek || kek->len != 32) {
        cl_err_set(err, CL_EINVAL, "the KEK must be 32 bytes");
        return NULL;
    }
    uint8_t nonce[12];
    size_t n = 0;
    CL_AUTO(cl_bytes) *ct = gcm_seal(kek, optsdata, len, nonce, &n, err);
    if (!ct)
        return NULL;
    CL_AUTO(cl_str) *wd = cl_b64_encode(ct, n, CL_B64_STD);
    CL_AUTO(cl_str) *iv = cl_b64_encode(nonce, sizeof nonce, CL_B64_STD);
    json_t *p = wd && iv ? json_pack("{s:s, s:s, s:s, s:s}", "kid", kid, "wrapped_data", wd, "iv",
                                     iv, "wrap_type", "A256GCM")
                         : NULL;
    if (!p)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return p;
}

json_t *cl_cdh_envelope_make(const char *key_id, const struct cl_secret *kek, const void *plaintext,
                             size_t len, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (!kek || kek->len != 32) {
        cl_err_set(err, CL_EINVAL, "the KEK must be 32 bytes");
        return NULL;
    }
    CL_AUTO(cl_secret) *dek = cl_secret_new(32);
    if (!dek || cl_random(dek->data, 32, err) < 0)
        return NULL;
    uint8_t nonce[12], knonce[12];
    size_t dn = 0, kn = 0;
    CL_AUTO(cl_bytes) *data = gcm_seal(dek, plaintext, len, nonce, &dn, err);
    CL_AUTO(cl_bytes) *wk = data ? gcm_seal(kek, dek->data, 32, knonce, &kn, err) : NULL;
    if (!wk)
        return NULL;
    CL_AUTO(cl_bytes) *ek = malloc(12 + kn);
    if (!ek) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(ek, knonce, 12);
    memcpy(ek + 12, wk, kn);
    CL_AUTO(cl_str) *ek64 = cl_b64_encode(ek, 12 + kn, CL_B64_STD);
    CL_AUTO(cl_str) *d64 = cl_b64_encode(data, dn, CL_B64_STD);
    CL_AUTO(cl_str) *iv64 = cl_b64_encode(nonce, 12, CL_B64_STD);
    json_t *p = ek64 && d64 && iv64
                    ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{}}", "version",
                                "0.1.0", "type", "envelope", "key_id", key_id, "encrypted_key",
                                ek64, "encrypted_data", d64, "wrap_type", "A256GCM", "iv", iv64,
                                "provider", "kbs", "provider_settings", "annotations")
                    : NULL;
    if (!p)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return p;
}

/* ---- keyunwrap ---- */

/* A byte string in the keyprovider JSON: base64 text (Go ocicrypt) or an array of numbers
 * (ocicrypt-rs). Returns new. */
static cl_bytes *json_bytes(const json_t *v, size_t max, size_t *n, const char *what,
                            struct cl_err *err)
{
    if (json_is_string(v)) {
        cl_bytes *b =
            cl_b64_decode(json_string_value(v), json_string_length(v), CL_B64_ANY, max, n, err);
        if (!b)
            cl_err_prefix(err, "%s", what);
        return b;
    }
    if (!json_is_array(v)) {
        cl_err_set(err, CL_EPARSE, "%s must be base64 text or an array of bytes", what);
        return NULL;
    }
    size_t len = json_array_size(v);
    if (len > max) {
        cl_err_set(err, CL_ELIMIT, "%s of %zu bytes exceeds %zu", what, len, max);
        return NULL;
    }
    cl_bytes *b = malloc(len + 1);
    if (!b) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        json_int_t k = json_integer_value(x);
        if (!json_is_integer(x) || k < 0 || k > 255) {
            free(b);
            cl_err_set(err, CL_EPARSE, "%s[%zu] is not a byte", what, i);
            return NULL;
        }
        b[i] = (uint8_t)k;
    }
    b[len] = 0;
    *n = len;
    return b;
}

static int packet_unwrap(struct cl_cdh *cdh, const json_t *pk, struct cl_secret **out,
                         struct cl_err *err)
{
    if (!json_is_object(pk))
        return cl_err_set(err, CL_EPARSE, "annotation packet is not a JSON object");
    const char *version = "0.1.0", *provider = "kbs", *kid = NULL, *wt = NULL, *iv64 = NULL,
               *wd64 = NULL;
    if (cl_json_opt_str(pk, "version", &version, err) < 0 ||
        cl_json_opt_str(pk, "provider", &provider, err) < 0 ||
        cl_json_get_str(pk, "kid", &kid, err) < 0 ||
        cl_json_get_str(pk, "wrapped_data", &wd64, err) < 0)
        return cl_err_prefix(err, "annotation packet");
    if (!version)
        version = "0.1.0";
    if (!provider)
        provider = "kbs";
    if (strcmp(provider, "kbs") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "annotation packet: provider '%.32s' is not in this build (only kbs)",
                          provider);
    if (strcmp(version, "0.1.0") != 0)
        return cl_err_set(err, CL_EPARSE, "annotation packet: version '%.16s' is not 0.1.0",
                          version);
    if (cl_json_get_str(pk, "iv", &iv64, err) < 0 || cl_json_get_str(pk, "wrap_type", &wt, err) < 0)
        return cl_err_prefix(err, "annotation packet");
    if (!cl_cdh_is_uri(kid))
        return cl_err_set(err, CL_EINVAL, "annotation packet: kid '%.64s' is not a kbs:// URI",
                          kid);
    size_t ivn = 0, wdn = 0;
    CL_AUTO(cl_bytes) *iv = cl_b64_decode(iv64, strlen(iv64), CL_B64_ANY, 16, &ivn, err);
    if (!iv)
        return cl_err_prefix(err, "annotation packet 'iv'");
    CL_AUTO(cl_bytes) *wd =
        cl_b64_decode(wd64, strlen(wd64), CL_B64_ANY, CL_CDH_MAX_KEYPROVIDER, &wdn, err);
    if (!wd)
        return cl_err_prefix(err, "annotation packet 'wrapped_data'");
    if (strcmp(wt, "A256GCM") != 0 && strcmp(wt, "A256CTR") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "annotation packet: wrap_type '%.16s' is not A256GCM or A256CTR", wt);
    CL_AUTO(cl_secret) *kek = NULL;
    if (cl_cdh_get_resource(cdh, kid, &kek, err) < 0)
        return cl_err_prefix(err, "image key KEK");
    if (strcmp(wt, "A256CTR") == 0)
        cl_warn("image key %s wrapped with A256CTR: no integrity protection", kid);
    return cl_cdh_decrypt(wt, kek, iv, ivn, wd, wdn, out, err);
}

int cl_cdh_unwrap_key(struct cl_cdh *cdh, const uint8_t *input, size_t len, cl_bytes **out,
                      size_t *outlen, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (len > CL_CDH_MAX_KEYPROVIDER)
        return cl_err_set(err, CL_ELIMIT, "keyprovider input of %zu bytes exceeds %d", len,
                          CL_CDH_MAX_KEYPROVIDER);
    CL_AUTO(json_t) *in = cl_json_parse((const char *)input, len, 16, err);
    if (!in)
        return cl_err_prefix(err, "keyprovider input");
    const char *op = NULL;
    json_t *kup = NULL;
    if (!json_is_object(in) || cl_json_get_str(in, "op", &op, err) < 0)
        return cl_err_set(err, CL_EPARSE, "keyprovider input: 'op' is missing");
    if (strcmp(op, "keyunwrap") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "keyprovider: op '%.32s' is not served here (keyunwrap only)", op);
    if (cl_json_get_obj(in, "keyunwrapparams", &kup, err) < 0)
        return cl_err_prefix(err, "keyprovider input");
    size_t an = 0;
    CL_AUTO(cl_bytes) *ann = json_bytes(json_object_get(kup, "annotation"), CL_CDH_MAX_KEYPROVIDER,
                                        &an, "keyunwrapparams.annotation", err);
    if (!ann)
        return err->code;
    CL_AUTO(json_t) *packet = cl_json_parse((const char *)ann, an, 8, err);
    if (!packet)
        return cl_err_prefix(err, "annotation packet");
    CL_AUTO(cl_secret) *plbco = NULL;
    if (packet_unwrap(cdh, packet, &plbco, err) < 0)
        return err->code;
    CL_AUTO(json_t) *arr = json_array();
    for (size_t i = 0; arr && i < plbco->len; i++)
        json_array_append_new(arr, json_integer(plbco->data[i]));
    CL_AUTO(json_t) *res = arr ? json_pack("{s:{s:O}}", "keyunwrapresults", "optsdata", arr) : NULL;
    cl_str *text = res ? cl_json_compact(res) : NULL;
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    *out = (cl_bytes *)text;
    *outlen = strlen(text);
    return 0;
}
