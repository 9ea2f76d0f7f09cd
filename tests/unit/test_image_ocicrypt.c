/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocicrypt: layer keys from JWE recipients (RSA-OAEP with SHA-1 as Go ocicrypt writes it,
 * ECDH-ES+A256KW, general serialisation with several recipients) and from key providers
 * (callback and the "cmd" protocol with real processes), the public/private options checks
 * (one refusal each), and the AES-256-CTR source with its plaintext digest check. Every
 * opening has its twin with another key.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_image_util.h"

/* ---- building JWEs the way ocicrypt (go-jose) does ---- */

static cl_str *b64u(const void *p, size_t n)
{
    return cl_b64_encode(p, n, CL_B64_URL);
}

static cl_bytes *rsa_oaep_sha1(EVP_PKEY *pub, const uint8_t *cek, size_t *len)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha1()), 1);
    size_t n = 0;
    assert_int_equal(EVP_PKEY_encrypt(c, NULL, &n, cek, 32), 1);
    cl_bytes *out = malloc(n);
    assert_int_equal(EVP_PKEY_encrypt(c, out, &n, cek, 32), 1);
    EVP_PKEY_CTX_free(c);
    *len = n;
    return out;
}

/* A JWE (flattened with one recipient, general with several) to RSA-OAEP recipients. */
static json_t *jwe_rsa_oaep(EVP_PKEY *const *recips, size_t n, const void *pt, size_t ptlen)
{
    uint8_t cek[32], iv[12], tag[16];
    assert_int_equal(RAND_bytes(cek, 32), 1);
    assert_int_equal(RAND_bytes(iv, 12), 1);
    const char *hdr =
        n == 1 ? "{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}" : "{\"enc\":\"A256GCM\"}";
    cl_str *p64 = b64u(hdr, strlen(hdr));
    uint8_t *ct = malloc(ptlen + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, cek, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, (const uint8_t *)p64, (int)strlen(p64)), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &l, pt, (int)ptlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + l, &l), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
    EVP_CIPHER_CTX_free(c);
    cl_str *iv64 = b64u(iv, 12), *ct64 = b64u(ct, ptlen), *tag64 = b64u(tag, 16);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "protected", p64, "iv", iv64, "ciphertext", ct64,
                          "tag", tag64);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t eklen = 0;
        cl_bytes *ek = rsa_oaep_sha1(recips[i], cek, &eklen);
        cl_str *ek64 = b64u(ek, eklen);
        if (n == 1)
            json_object_set_new(j, "encrypted_key", json_string(ek64));
        else
            json_array_append_new(arr, json_pack("{s:{s:s}, s:s}", "header", "alg", "RSA-OAEP",
                                                 "encrypted_key", ek64));
        free(ek);
        free(ek64);
    }
    if (n > 1)
        json_object_set(j, "recipients", arr);
    json_decref(arr);
    free(p64);
    free(iv64);
    free(ct64);
    free(tag64);
    free(ct);
    return j;
}

static cl_str *b64std_json(const json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    cl_str *b = cl_b64_encode(txt, strlen(txt), CL_B64_STD);
    free(txt);
    return b;
}

/* An encrypted layer descriptor with the given key annotations over a fresh layer key. */
struct enc {
    struct cl_image_layer_key key;
    cl_bytes *ct;
    size_t len;
    json_t *ann;
    struct cl_image_desc desc;
    uint8_t plain[4096];
};

static void enc_init(struct enc *e)
{
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < sizeof e->plain; i++)
        e->plain[i] = (uint8_t)(i * 13);
    e->len = sizeof e->plain;
    assert_int_equal(cl_image_encrypt_buf(e->plain, e->len, &e->key, &e->ct, NULL), 0);
    cl_str *pub = cl_image_layer_key_pubopts(&e->key, NULL);
    cl_str *pub64 = cl_b64_encode(pub, strlen(pub), CL_B64_STD);
    e->ann = json_pack("{s:s}", CL_IMAGE_ANN_ENC_PUBOPTS, pub64);
    free(pub);
    free(pub64);
    e->desc.encrypted = true;
    e->desc.annotations = e->ann;
    assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, e->ct, e->len, &e->desc.digest, NULL), 0);
}

static void enc_free(struct enc *e)
{
    cl_image_layer_key_clear(&e->key);
    free(e->ct);
    json_decref(e->ann);
}

static void set_ann(struct enc *e, const char *k, const char *v)
{
    json_object_set_new(e->ann, k, json_string(v));
}

/* Opens the key of e with dc and checks it decrypts the layer. */
static int open_and_decrypt(struct enc *e, const struct cl_image_decrypt *dc, struct cl_err *err)
{
    struct cl_image_layer_key k = {0};
    int rc = cl_image_layer_key_open(&e->desc, dc, &k, err);
    if (rc < 0)
        return rc;
    assert_memory_equal(k.hmac, e->key.hmac, 32);
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, e->ct, e->len);
    struct cl_image_src *d = cl_image_decrypt_new(&m.src, &k, err);
    assert_non_null(d);
    uint8_t out[5000];
    size_t n = 0, got;
    do {
        assert_int_equal(d->read(d, out + n, 700, &got, err), 0);
        n += got;
    } while (got);
    assert_int_equal(n, e->len);
    assert_memory_equal(out, e->plain, n);
    cl_image_decrypt_free(d);
    cl_image_layer_key_clear(&k);
    return 0;
}

/* ---- JWE recipients ---- */

static void test_jwe_rsa(void **state)
{
    (void)state;
    struct enc e;
    enc_init(&e);
    cl_pkey *k1 = cl_pkey_generate("RSA-2048", NULL), *k2 = cl_pkey_generate("RSA-2048", NULL);
    cl_pkey *ec = cl_pkey_generate("P-256", NULL);
    struct cl_secret *priv = cl_image_layer_key_privopts(&e.key, NULL);
    json_t *jwe = jwe_rsa_oaep(&k1, 1, priv->data, priv->len);
    cl_str *a = b64std_json(jwe);
    set_ann(&e, CL_IMAGE_ANN_ENC_JWE, a);
    struct cl_err err = {0};
    cl_pkey *mine[] = {k1}, *other[] = {k2}, *both[] = {ec, k2, k1}, *wrongtype[] = {ec};
    struct cl_image_decrypt dc = {.jwe_keys = mine, .njwe_keys = 1};
    assert_int_equal(open_and_decrypt(&e, &dc, &err), 0);
    dc.jwe_keys = both;
    dc.njwe_keys = 3;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), 0);
    /* twins: another RSA key, an EC key, no key at all */
    dc.jwe_keys = other;
    dc.njwe_keys = 1;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EVERIFY);
    assert_non_null(strstr(err.msg, "another key"));
    dc.jwe_keys = wrongtype;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EVERIFY);
    assert_int_equal(open_and_decrypt(&e, NULL, &err), CL_EVERIFY);
    /* a flipped tag byte */
    json_t *bad = json_deep_copy(jwe);
    const char *tag = json_string_value(json_object_get(bad, "tag"));
    char *t2 = strdup(tag);
    t2[0] = t2[0] == 'A' ? 'B' : 'A';
    json_object_set_new(bad, "tag", json_string(t2));
    cl_str *ab = b64std_json(bad);
    set_ann(&e, CL_IMAGE_ANN_ENC_JWE, ab);
    dc.jwe_keys = mine;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EVERIFY);
    free(t2);
    free(ab);
    json_decref(bad);
    /* general serialisation, the second recipient is ours */
    EVP_PKEY *rs[] = {k2, k1};
    json_t *gen = jwe_rsa_oaep(rs, 2, priv->data, priv->len);
    cl_str *g = b64std_json(gen);
    set_ann(&e, CL_IMAGE_ANN_ENC_JWE, g);
    assert_int_equal(open_and_decrypt(&e, &dc, &err), 0);
    cl_pkey *none[] = {ec};
    dc.jwe_keys = none;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EVERIFY);
    /* a list of JWEs (comma-separated): the second opens */
    json_t *j2 = jwe_rsa_oaep(&k2, 1, priv->data, priv->len);
    cl_str *a2 = b64std_json(j2);
    cl_str *list = cl_strdupf("%s,%s", a2, a);
    set_ann(&e, CL_IMAGE_ANN_ENC_JWE, list);
    dc.jwe_keys = mine;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), 0);
    free(list);
    free(a2);
    json_decref(j2);
    free(g);
    json_decref(gen);
    free(a);
    json_decref(jwe);
    cl_secret_free(priv);
    cl_auto_cl_pkey(&k1);
    cl_auto_cl_pkey(&k2);
    cl_auto_cl_pkey(&ec);
    enc_free(&e);
}

static void test_jwe_ecdh(void **state)
{
    (void)state;
    struct enc e;
    enc_init(&e);
    cl_pkey *k = cl_pkey_generate("P-256", NULL), *other = cl_pkey_generate("P-256", NULL);
    json_t *jwk = cl_jwk_from_pkey(k, false, "ECDH-ES+A256KW", NULL);
    struct cl_secret *priv = cl_image_layer_key_privopts(&e.key, NULL);
    json_t *jwe = cl_jwe_encrypt(jwk, priv->data, priv->len, NULL);
    assert_non_null(jwe);
    cl_str *a = b64std_json(jwe);
    set_ann(&e, CL_IMAGE_ANN_ENC_JWE, a);
    struct cl_err err = {0};
    cl_pkey *mine[] = {k}, *theirs[] = {other};
    struct cl_image_decrypt dc = {.jwe_keys = mine, .njwe_keys = 1};
    assert_int_equal(open_and_decrypt(&e, &dc, &err), 0);
    dc.jwe_keys = theirs;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EVERIFY);
    free(a);
    json_decref(jwe);
    json_decref(jwk);
    cl_secret_free(priv);
    cl_auto_cl_pkey(&k);
    cl_auto_cl_pkey(&other);
    enc_free(&e);
}

/* ---- key providers ---- */

struct fake_kp {
    struct cl_secret *answer;
    int rc;
    int calls;
    char provider[64];
    uint8_t wrapped[64];
    size_t wlen;
};

static int fake_unwrap(void *ctx, const char *provider, const uint8_t *wrapped, size_t len,
                       struct cl_secret **out, struct cl_err *err)
{
    struct fake_kp *f = ctx;
    f->calls++;
    snprintf(f->provider, sizeof f->provider, "%s", provider);
    f->wlen = len < sizeof f->wrapped ? len : sizeof f->wrapped;
    memcpy(f->wrapped, wrapped, f->wlen);
    if (f->rc)
        return cl_err_set(err, f->rc, "fake provider says no");
    if (len == 3 && memcmp(wrapped, "bad", 3) == 0)
        return cl_err_set(err, CL_EVERIFY, "not this one");
    *out = cl_secret_from(f->answer->data, f->answer->len);
    return 0;
}

static void test_keyprovider_callback(void **state)
{
    (void)state;
    struct enc e;
    enc_init(&e);
    struct fake_kp f = {.answer = cl_image_layer_key_privopts(&e.key, NULL)};
    cl_str *w = cl_b64_encode("opaque-wrapped", 14, CL_B64_STD);
    cl_str *bad = cl_b64_encode("bad", 3, CL_B64_STD);
    cl_str *list = cl_strdupf("%s,%s", bad, w);
    set_ann(&e, CL_IMAGE_ANN_ENC_PROVIDER "attestation-agent", list);
    struct cl_image_decrypt dc = {.unwrap = fake_unwrap, .unwrap_ctx = &f};
    struct cl_err err = {0};
    assert_int_equal(open_and_decrypt(&e, &dc, &err), 0);
    assert_string_equal(f.provider, "attestation-agent");
    assert_int_equal(f.wlen, 14);
    assert_memory_equal(f.wrapped, "opaque-wrapped", 14);
    assert_int_equal(f.calls, 2);
    /* twins: the provider refuses; no provider configured; a hard error is passed through */
    f.rc = CL_EDENIED;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EVERIFY);
    assert_int_equal(open_and_decrypt(&e, NULL, &err), CL_EVERIFY);
    assert_non_null(strstr(err.msg, "no key provider"));
    f.rc = CL_EIO;
    assert_int_equal(open_and_decrypt(&e, &dc, &err), CL_EIO);
    free(w);
    free(bad);
    free(list);
    cl_secret_free(f.answer);
    enc_free(&e);
}

/* ---- public and private options, one refusal each ---- */

CL_PRINTF(1, 2) static struct cl_secret *json_secret(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cl_secret_from(buf, strlen(buf));
}

static void test_options(void **state)
{
    (void)state;
    struct enc e;
    enc_init(&e);
    cl_str *sk = cl_b64_encode(e.key.symkey->data, 32, CL_B64_STD);
    cl_str *nonce = cl_b64_encode(e.key.nonce, 16, CL_B64_STD);
    struct {
        const char *name;
        struct cl_secret *priv;
        int rc;
    } cases[] = {
        {"good",
         json_secret("{\"symkey\":\"%s\",\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":\"%s\"}}",
                     sk, e.key.plain_digest.str, nonce),
         0},
        {"not JSON", json_secret("{"), CL_EPARSE},
        {"no symkey",
         json_secret("{\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":\"%s\"}}",
                     e.key.plain_digest.str, nonce),
         CL_EPARSE},
        {"short symkey",
         json_secret("{\"symkey\":\"AAAA\",\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":\"%s\"}}",
                     e.key.plain_digest.str, nonce),
         CL_EPARSE},
        {"bad digest",
         json_secret(
             "{\"symkey\":\"%s\",\"digest\":\"sha256:00\",\"cipheroptions\":{\"nonce\":\"%s\"}}",
             sk, nonce),
         CL_EPARSE},
        {"no cipheroptions",
         json_secret("{\"symkey\":\"%s\",\"digest\":\"%s\"}", sk, e.key.plain_digest.str),
         CL_EPARSE},
        {"no nonce",
         json_secret("{\"symkey\":\"%s\",\"digest\":\"%s\",\"cipheroptions\":{}}", sk,
                     e.key.plain_digest.str),
         CL_EPARSE},
        {"short nonce",
         json_secret("{\"symkey\":\"%s\",\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":\"AAAA\"}}",
                     sk, e.key.plain_digest.str),
         CL_EPARSE},
    };
    cl_str *w = cl_b64_encode("w", 1, CL_B64_STD);
    set_ann(&e, CL_IMAGE_ANN_ENC_PROVIDER "p", w);
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct fake_kp f = {.answer = cases[i].priv};
        struct cl_image_decrypt dc = {.unwrap = fake_unwrap, .unwrap_ctx = &f};
        struct cl_image_layer_key k = {0};
        struct cl_err err = {0};
        int rc = cl_image_layer_key_open(&e.desc, &dc, &k, &err);
        if (rc != cases[i].rc)
            fail_msg("privopts '%s': %d (%s)", cases[i].name, rc, err.msg);
        cl_image_layer_key_clear(&k);
        cl_secret_free(cases[i].priv);
    }
    /* public options */
    struct fake_kp f = {.answer = cl_image_layer_key_privopts(&e.key, NULL)};
    struct cl_image_decrypt dc = {.unwrap = fake_unwrap, .unwrap_ctx = &f};
    cl_str *h = cl_b64_encode(e.key.hmac, 32, CL_B64_STD);
    struct {
        const char *name;
        char *pub; /* raw JSON, base64-encoded below; NULL = remove the annotation */
        int rc;
    } pubs[] = {
        {"missing", NULL, CL_EPARSE},
        {"not JSON", strdup("{"), CL_EPARSE},
        {"other cipher",
         cl_strdupf("{\"cipher\":\"AES_128_GCM\",\"hmac\":\"%s\",\"cipheroptions\":{}}", h),
         CL_EUNSUPPORTED},
        {"no hmac", strdup("{\"cipher\":\"AES_256_CTR_HMAC_SHA256\",\"cipheroptions\":{}}"),
         CL_EPARSE},
        {"short hmac",
         strdup("{\"cipher\":\"AES_256_CTR_HMAC_SHA256\",\"hmac\":\"AAAA\",\"cipheroptions\":{}}"),
         CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(pubs); i++) {
        if (pubs[i].pub) {
            cl_str *b = cl_b64_encode(pubs[i].pub, strlen(pubs[i].pub), CL_B64_STD);
            set_ann(&e, CL_IMAGE_ANN_ENC_PUBOPTS, b);
            free(b);
        } else {
            json_object_del(e.ann, CL_IMAGE_ANN_ENC_PUBOPTS);
        }
        struct cl_image_layer_key k = {0};
        struct cl_err err = {0};
        int rc = cl_image_layer_key_open(&e.desc, &dc, &k, &err);
        if (rc != pubs[i].rc)
            fail_msg("pubopts '%s': %d (%s)", pubs[i].name, rc, err.msg);
        free(pubs[i].pub);
    }
    set_ann(&e, CL_IMAGE_ANN_ENC_PUBOPTS, "!!!not base64");
    struct cl_image_layer_key k = {0};
    assert_int_equal(cl_image_layer_key_open(&e.desc, &dc, &k, NULL), CL_EPARSE);
    /* key annotations: only another scheme; none; not encrypted; no annotations */
    struct enc e2;
    enc_init(&e2);
    set_ann(&e2, "org.opencontainers.image.enc.keys.pkcs7", "AAAA");
    assert_int_equal(cl_image_layer_key_open(&e2.desc, &dc, &k, NULL), CL_EUNSUPPORTED);
    json_object_del(e2.ann, "org.opencontainers.image.enc.keys.pkcs7");
    assert_int_equal(cl_image_layer_key_open(&e2.desc, &dc, &k, NULL), CL_EPARSE);
    e2.desc.encrypted = false;
    assert_int_equal(cl_image_layer_key_open(&e2.desc, &dc, &k, NULL), CL_EINVAL);
    e2.desc.encrypted = true;
    e2.desc.annotations = NULL;
    assert_int_equal(cl_image_layer_key_open(&e2.desc, &dc, &k, NULL), CL_EPARSE);
    set_ann(&e2, CL_IMAGE_ANN_ENC_JWE, "!!!");
    e2.desc.annotations = e2.ann;
    assert_int_equal(cl_image_layer_key_open(&e2.desc, &dc, &k, NULL), CL_EPARSE);
    enc_free(&e2);
    cl_secret_free(f.answer);
    free(h);
    free(w);
    free(sk);
    free(nonce);
    enc_free(&e);
}

/* ---- the decrypting source ---- */

static void test_decrypt_src(void **state)
{
    (void)state;
    struct enc e;
    enc_init(&e);
    struct cl_err err = {0};
    struct cl_image_mem_src m;
    /* right key */
    cl_image_mem_src_init(&m, e.ct, e.len);
    struct cl_image_src *d = cl_image_decrypt_new(&m.src, &e.key, &err);
    uint8_t out[8192];
    size_t got = 0, n = 0;
    do {
        assert_int_equal(d->read(d, out + n, sizeof out - n, &got, &err), 0);
        n += got;
    } while (got);
    assert_memory_equal(out, e.plain, e.len);
    cl_image_decrypt_free(d);
    /* a changed ciphertext byte: the plaintext digest no longer matches at the end */
    e.ct[100] ^= 1;
    cl_image_mem_src_init(&m, e.ct, e.len);
    d = cl_image_decrypt_new(&m.src, &e.key, &err);
    int rc = 0;
    do {
        rc = d->read(d, out, sizeof out, &got, &err);
    } while (rc == 0 && got);
    assert_int_equal(rc, CL_EVERIFY);
    cl_image_decrypt_free(d);
    e.ct[100] ^= 1;
    /* truncated ciphertext */
    cl_image_mem_src_init(&m, e.ct, e.len - 10);
    d = cl_image_decrypt_new(&m.src, &e.key, &err);
    do {
        rc = d->read(d, out, sizeof out, &got, &err);
    } while (rc == 0 && got);
    assert_int_equal(rc, CL_EVERIFY);
    cl_image_decrypt_free(d);
    struct cl_image_layer_key nokey = {0};
    assert_null(cl_image_decrypt_new(&m.src, &nokey, &err));
    enc_free(&e);
}

/* ---- the cmd key-provider protocol with real processes ---- */

static char *script(const char *dir, const char *name, const char *body)
{
    char *p = cl_strdupf("%s/%s", dir, name);
    char *txt = cl_strdupf("#!/bin/sh\n%s\n", body);
    assert_int_equal(cl_file_write_atomic(p, txt, strlen(txt), 0755, NULL), 0);
    free(txt);
    return p;
}

static void test_keyprovider_cmd(void **state)
{
    (void)state;
    struct enc e;
    enc_init(&e);
    char *dir = tu_tmpdir("kp");
    struct cl_secret *priv = cl_image_layer_key_privopts(&e.key, NULL);
    cl_str *p64 = cl_b64_encode(priv->data, priv->len, CL_B64_STD);
    /* optsdata as an array of numbers too */
    size_t cap = priv->len * 4 + 8, off = 0;
    char *arr = malloc(cap);
    arr[off++] = '[';
    for (size_t i = 0; i < priv->len; i++)
        off += (size_t)snprintf(arr + off, cap - off, "%s%u", i ? "," : "", priv->data[i]);
    arr[off++] = ']';
    arr[off] = 0;
    char *b1 = cl_strdupf(
        "cat > '%s/in.json'; printf '{\"keyunwrapresults\":{\"optsdata\":\"%s\"}}'", dir, p64);
    char *b2 = cl_strdupf("cat >/dev/null; printf '{\"keyunwrapresults\":{\"optsdata\":%s}}'", arr);
    char *s_b64 = script(dir, "kp-b64", b1);
    char *s_arr = script(dir, "kp-arr", b2);
    char *s_fail = script(dir, "kp-fail", "cat >/dev/null; echo nope >&2; exit 3");
    char *s_slow = script(dir, "kp-slow", "sleep 5");
    char *s_junk = script(dir, "kp-junk", "cat >/dev/null; echo '{\"x\":1}'");
    char *s_byte = script(dir, "kp-byte",
                          "cat >/dev/null; printf '{\"keyunwrapresults\":{\"optsdata\":[1,256]}}'");
    cl_str *w = cl_b64_encode("wrapped!", 8, CL_B64_STD);
    set_ann(&e, CL_IMAGE_ANN_ENC_PROVIDER "toykp", w);
    struct {
        const char *path;
        long timeout;
        int rc;
    } cases[] = {
        {s_b64, 0, 0},
        {s_arr, 0, 0},
        {s_fail, 0, CL_EVERIFY},
        {s_slow, 300, CL_EIO},
        {s_junk, 0, CL_EPARSE},
        {s_byte, 0, CL_EPARSE},
        {"/nonexistent/kp", 0, CL_EVERIFY},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_keyprovider_cmd cmd = {
            .name = "toykp", .path = cases[i].path, .timeout_ms = cases[i].timeout};
        struct cl_image_decrypt dc = {.unwrap = cl_image_keyprovider_cmd_unwrap,
                                      .unwrap_ctx = &cmd};
        struct cl_err err = {0};
        int rc = open_and_decrypt(&e, &dc, &err);
        if (rc != cases[i].rc)
            fail_msg("key provider %s: %d (%s), wanted %d", cases[i].path, rc, err.msg,
                     cases[i].rc);
    }
    /* the request the provider got */
    size_t len = 0;
    cl_bytes *in = tu_read(dir, "in.json", &len);
    json_t *req = json_loads((char *)in, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(req, "op")), "keyunwrap");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(req, "keyunwrapparams"), "annotation")),
        w);
    json_decref(req);
    free(in);
    /* a provider for another name is not asked */
    struct cl_image_keyprovider_cmd named = {.name = "elsewhere", .path = s_b64};
    struct cl_image_decrypt dn = {.unwrap = cl_image_keyprovider_cmd_unwrap, .unwrap_ctx = &named};
    struct cl_err err = {0};
    assert_int_equal(open_and_decrypt(&e, &dn, &err), CL_EVERIFY);
    /* a config file: cmd providers are kept, grpc ones skipped; the set tries by name */
    char *conf = cl_strdupf("%s/ocicrypt.json", dir);
    char *ctext = cl_strdupf(
        "{\"key-providers\":{\"grpcone\":{\"grpc\":\"127.0.0.1:1\"},\"toykp\":{\"cmd\":{\"path\":"
        "\"%s\",\"args\":[\"-x\"]}},\"other\":{\"cmd\":{\"path\":\"%s\"}}}}",
        s_b64, s_fail);
    assert_int_equal(cl_file_write_atomic(conf, ctext, strlen(ctext), 0600, NULL), 0);
    size_t ncmd = 0;
    struct cl_image_keyprovider_cmd *cmds = cl_image_keyprovider_config_load(conf, &ncmd, &err);
    assert_non_null(cmds);
    assert_int_equal(ncmd, 2);
    struct cl_image_keyprovider_set set = {.cmds = cmds, .n = ncmd};
    struct cl_image_decrypt ds = {.unwrap = cl_image_keyprovider_set_unwrap, .unwrap_ctx = &set};
    assert_int_equal(open_and_decrypt(&e, &ds, &err), 0);
    cl_image_keyprovider_cmds_free(cmds, ncmd);
    const char *badconf = "{\"key-providers\":{\"x\":{\"cmd\":{}}}}";
    assert_int_equal(cl_file_write_atomic(conf, badconf, strlen(badconf), 0600, NULL), 0);
    assert_null(cl_image_keyprovider_config_load(conf, &ncmd, &err));
    assert_int_equal(cl_file_write_atomic(conf, "[]", 2, 0600, NULL), 0);
    assert_null(cl_image_keyprovider_config_load(conf, &ncmd, &err));
    free(conf);
    free(ctext);
    free(w);
    free(s_b64);
    free(s_arr);
    free(s_fail);
    free(s_slow);
    free(s_junk);
    free(s_byte);
    free(b1);
    free(b2);
    free(arr);
    free(p64);
    cl_secret_free(priv);
    tu_rmdir(dir);
    enc_free(&e);
}

static void test_resource_load(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("res");
    char *f = cl_strdupf("%s/k", dir);
    assert_int_equal(cl_file_write_atomic(f, "KEY", 3, 0600, NULL), 0);
    char *url = cl_strdupf("file://%s", f);
    struct cl_err e = {0};
    struct cl_secret *s = cl_image_resource_load(NULL, f, 100, &e);
    assert_non_null(s);
    assert_memory_equal(s->data, "KEY", 3);
    cl_secret_free(s);
    s = cl_image_resource_load(NULL, url, 100, &e);
    assert_non_null(s);
    cl_secret_free(s);
    assert_null(cl_image_resource_load(NULL, f, 2, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    assert_null(cl_image_resource_load(NULL, "kbs:///a/b/c", 100, &e));
    assert_int_equal(e.code, CL_EINVAL);
    assert_null(cl_image_resource_load(NULL, "https://x/y", 100, &e));
    assert_int_equal(e.code, CL_EUNSUPPORTED);
    assert_null(cl_image_resource_load(NULL, "", 100, &e));
    free(url);
    free(f);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwe_rsa),
        cmocka_unit_test(test_jwe_ecdh),
        cmocka_unit_test(test_keyprovider_callback),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_decrypt_src),
        cmocka_unit_test(test_keyprovider_cmd),
        cmocka_unit_test(test_resource_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
