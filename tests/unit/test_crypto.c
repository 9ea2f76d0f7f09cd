/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of src/crypto: digests, PEM, JWK (round trips, one case per rejection branch,
 * RFC 7638/8037 thumbprints), JWS (every alg with a tamper twin, refused algs, key/alg
 * mismatches, parse rejections, RFC 7515/8037 examples), JWE (every key-management alg and
 * curve, byte-exact protected headers, a flipped byte in each member, wrong keys, foreign and
 * off-curve epk), X.509 (generated chains with a pinned clock, and trustee's JWK/x5c vectors
 * when $CLOISTER_VECTORS is present).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* ---- fixtures ---- */

static cl_pkey *k_p256, *k_p256b, *k_p384, *k_p521, *k_rsa, *k_rsab, *k_ed, *k_edb;

static int group_setup(void **state)
{
    (void)state;
    cl_log_set_level(CL_LOG_ERROR); /* RSA1_5 warnings are expected */
    struct cl_err err = {0};
    k_p256 = cl_pkey_generate("P-256", &err);
    k_p256b = cl_pkey_generate("P-256", &err);
    k_p384 = cl_pkey_generate("P-384", &err);
    k_p521 = cl_pkey_generate("P-521", &err);
    k_rsa = cl_pkey_generate("RSA-2048", &err);
    k_rsab = cl_pkey_generate("RSA-2048", &err);
    k_ed = cl_pkey_generate("Ed25519", &err);
    k_edb = cl_pkey_generate("Ed25519", &err);
    return k_p256 && k_p256b && k_p384 && k_p521 && k_rsa && k_rsab && k_ed && k_edb ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cl_pkey *all[] = {k_p256, k_p256b, k_p384, k_p521, k_rsa, k_rsab, k_ed, k_edb};
    for (size_t i = 0; i < CL_ARRAY_LEN(all); i++)
        EVP_PKEY_free(all[i]);
    return 0;
}

static cl_pkey *key_named(const char *name)
{
    static const struct {
        const char *name;
        cl_pkey **key;
    } keys[] = {{"P-256", &k_p256}, {"P-256b", &k_p256b}, {"P-384", &k_p384}, {"P-521", &k_p521},
                {"RSA", &k_rsa},    {"RSAb", &k_rsab},    {"Ed25519", &k_ed}, {"Ed25519b", &k_edb}};
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].name, name) == 0)
            return *keys[i].key;
    fail_msg("no test key %s", name);
    return NULL;
}

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("bad test JSON: %s: %s", text, je.text);
    return v;
}

static const char *vectors_dir(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    return v && *v ? v : NULL;
}

/* Path of a vector file, or NULL (test skipped) when the vectors are absent. */
static char *vector_path(const char *rel)
{
    const char *dir = vectors_dir();
    if (!dir)
        return NULL;
    char *p = cl_strdupf("%s/%s", dir, rel);
    struct stat st;
    if (p && stat(p, &st) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Replaces the character at idx of a base64url string by another valid one. */
static void flip_b64(char *s, size_t idx)
{
    s[idx] = s[idx] == 'A' ? 'B' : 'A';
}

/* ---- digests ---- */

static void test_digest(void **state)
{
    (void)state;
    static const struct {
        enum cl_hash h;
        const char *name;
        const char *hex_abc;
    } cases[] = {
        {CL_HASH_SHA256, "sha256",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {CL_HASH_SHA384, "sha384",
         "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca13"
         "4c825a7"},
        {CL_HASH_SHA512, "sha512",
         "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a"
         "3feebbd"
         "454d4423643ce80e2a9ac94fa54ca49f"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_err err = {0};
        enum cl_hash h;
        assert_int_equal(cl_hash_from_name(cases[i].name, &h, &err), 0);
        assert_int_equal(h, cases[i].h);
        assert_string_equal(cl_hash_name(h), cases[i].name);
        uint8_t md[CL_HASH_MAX];
        assert_int_equal(cl_digest(h, "abc", 3, md, &err), 0);
        cl_str *hex = cl_hex_encode(md, cl_hash_len(h));
        assert_string_equal(hex, cases[i].hex_abc);
        free(hex);
    }
    struct cl_err err = {0};
    enum cl_hash h;
    assert_int_equal(cl_hash_from_name("SHA256", &h, &err), CL_EUNSUPPORTED);
    assert_int_equal(cl_hash_from_name("md5", &h, &err), CL_EUNSUPPORTED);
    assert_int_equal(cl_hash_from_name(NULL, &h, &err), CL_EINVAL);
    uint8_t md[CL_HASH_MAX];
    assert_int_equal(cl_digest((enum cl_hash)7, "x", 1, md, &err), CL_EINVAL);
    assert_int_equal(cl_digest(CL_HASH_SHA256, NULL, 3, md, &err), CL_EINVAL);
    assert_int_equal(cl_digest(CL_HASH_SHA256, NULL, 0, md, &err), 0); /* empty input */
    assert_int_equal(cl_hash_len((enum cl_hash)7), 0);
}

/* ---- keys and PEM ---- */

static void test_pkey_generate(void **state)
{
    (void)state;
    static const char *const kinds[] = {"P-256", "P-384", "P-521", "RSA-2048", "Ed25519"};
    for (size_t i = 0; i < CL_ARRAY_LEN(kinds); i++) {
        struct cl_err err = {0};
        CL_AUTO(cl_pkey) *k = cl_pkey_generate(kinds[i], &err);
        assert_non_null(k);
    }
    struct cl_err err = {0};
    assert_null(cl_pkey_generate("P-192", &err));
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    assert_null(cl_pkey_generate("RSA-1024", &err));
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    assert_null(cl_pkey_generate(NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);
}

static void test_pem_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"P-256", "P-384", "P-521", "RSA", "Ed25519"};
    for (size_t i = 0; i < CL_ARRAY_LEN(names); i++) {
        cl_pkey *k = key_named(names[i]);
        struct cl_err err = {0};
        CL_AUTO(cl_str) *priv = cl_pkey_to_pem(k, true, &err);
        CL_AUTO(cl_str) *pub = cl_pkey_to_pem(k, false, &err);
        assert_non_null(priv);
        assert_non_null(pub);
        assert_non_null(strstr(priv, "-----BEGIN PRIVATE KEY-----")); /* PKCS#8 */
        assert_non_null(strstr(pub, "-----BEGIN PUBLIC KEY-----"));
        CL_AUTO(cl_pkey) *k1 = cl_pkey_from_pem(priv, strlen(priv), true, &err);
        CL_AUTO(cl_pkey) *k2 = cl_pkey_from_pem(pub, strlen(pub), false, &err);
        assert_non_null(k1);
        assert_non_null(k2);
        assert_true(cl_pkey_public_equal(k, k1));
        assert_true(cl_pkey_public_equal(k, k2));
        assert_true(cl_pkey_public_equal(k1, k2));
        /* tamper twin: a public PEM is not a private key, and another key is not equal */
        CL_AUTO(cl_pkey) *k3 = cl_pkey_from_pem(pub, strlen(pub), true, &err);
        assert_null(k3);
        assert_int_equal(err.code, CL_EPARSE);
        assert_false(cl_pkey_public_equal(k, i == 0 ? k_p256b : k_p256));
        /* a public key has no private PEM */
        CL_AUTO(cl_str) *nope = cl_pkey_to_pem(k2, true, &err);
        assert_null(nope);
        assert_int_equal(err.code, CL_EINVAL);
    }
    assert_false(cl_pkey_public_equal(k_rsa, NULL));
}

static void test_pem_rejects(void **state)
{
    (void)state;
    struct cl_err err = {0};
    static const char garbage[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_null(cl_pkey_from_pem(garbage, strlen(garbage), false, &err));
    assert_int_equal(err.code, CL_EPARSE);
    assert_null(cl_pkey_from_pem("hello", 5, true, &err));
    assert_int_equal(err.code, CL_EPARSE);
    assert_null(cl_pkey_from_pem("", 0, false, &err));
    assert_int_equal(err.code, CL_EPARSE);
    char *big = calloc(1, CL_PEM_MAX + 2);
    assert_non_null(big);
    memset(big, 'A', CL_PEM_MAX + 1);
    assert_null(cl_pkey_from_pem(big, CL_PEM_MAX + 1, false, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    free(big);
    assert_null(cl_pkey_load_pem("/nonexistent/key.pem", true, &err));
    assert_int_equal(err.code, CL_ENOTFOUND);

    /* an encrypted private key is refused, never prompted for */
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(b, k_p256, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    assert_null(cl_pkey_from_pem(data, (size_t)n, true, &err));
    assert_int_equal(err.code, CL_EPARSE);
    BIO_free(b);
}

static void test_pem_file(void **state)
{
    (void)state;
    char path[] = "/tmp/cl-test-crypto-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct cl_err err = {0};
    CL_AUTO(cl_str) *pem = cl_pkey_to_pem(k_p384, true, &err);
    assert_non_null(pem);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    CL_AUTO(cl_pkey) *k = cl_pkey_load_pem(path, true, &err);
    assert_non_null(k);
    assert_true(cl_pkey_public_equal(k, k_p384));
    CL_AUTO(cl_pkey) *pub = cl_pkey_load_pem(path, false, &err);
    assert_null(pub); /* a private PEM file does not hold a public key or certificate */
    unlink(path);
}

/* ---- JWK ---- */

static void test_jwk_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *key, *kty, *crv;
        size_t coord_chars;
    } cases[] = {
        {"P-256", "EC", "P-256", 43},      {"P-384", "EC", "P-384", 64},
        {"P-521", "EC", "P-521", 88},      {"RSA", "RSA", NULL, 0},
        {"Ed25519", "OKP", "Ed25519", 43},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        cl_pkey *k = key_named(cases[i].key);
        for (int priv = 0; priv < 2; priv++) {
            struct cl_err err = {0};
            CL_AUTO(json_t) *jwk = cl_jwk_from_pkey(k, priv, priv ? NULL : "XX1", &err);
            assert_non_null(jwk);
            const char *kty = NULL, *crv = NULL, *x = NULL, *alg = NULL;
            assert_int_equal(cl_json_get_str(jwk, "kty", &kty, &err), 0);
            assert_string_equal(kty, cases[i].kty);
            assert_int_equal(json_object_get(jwk, "d") != NULL, priv);
            assert_int_equal(cl_json_opt_str(jwk, "alg", &alg, &err), 0);
            if (priv)
                assert_null(alg);
            else
                assert_string_equal(alg, "XX1");
            if (cases[i].crv) {
                assert_int_equal(cl_json_get_str(jwk, "crv", &crv, &err), 0);
                assert_string_equal(crv, cases[i].crv);
                assert_int_equal(cl_json_get_str(jwk, "x", &x, &err), 0);
                assert_int_equal(strlen(x), cases[i].coord_chars);
            }
            CL_AUTO(cl_pkey) *back = cl_jwk_to_pkey(jwk, &err);
            assert_non_null(back);
            assert_true(cl_pkey_public_equal(back, k));
            if (priv) {
                /* the imported private key signs what the original verifies */
                const char *alg_for = strcmp(cases[i].kty, "RSA") == 0     ? "PS256"
                                      : strcmp(cases[i].kty, "OKP") == 0   ? "EdDSA"
                                      : strcmp(cases[i].crv, "P-256") == 0 ? "ES256"
                                      : strcmp(cases[i].crv, "P-384") == 0 ? "ES384"
                                                                           : "ES512";
                CL_AUTO(cl_bytes) *sig = NULL;
                size_t sl = 0;
                assert_int_equal(cl_sig_sign(back, alg_for, "m", 1, &sig, &sl, &err), 0);
                assert_int_equal(cl_sig_verify(k, alg_for, "m", 1, sig, sl, &err), 0);
            }
        }
    }
}

/* EC coordinates are fixed-length even when the top byte is zero (x of the trustee fixture
 * starts with 0x00): find such a key and check the encoding and the round trip. */
static void test_jwk_fixed_length(void **state)
{
    (void)state;
    for (int tries = 0; tries < 5000; tries++) {
        struct cl_err err = {0};
        CL_AUTO(cl_pkey) *k = cl_pkey_generate("P-256", &err);
        CL_AUTO(json_t) *jwk = cl_jwk_from_pkey(k, false, NULL, &err);
        assert_non_null(jwk);
        const char *x = json_string_value(json_object_get(jwk, "x"));
        const char *y = json_string_value(json_object_get(jwk, "y"));
        assert_int_equal(strlen(x), 43);
        assert_int_equal(strlen(y), 43);
        if (x[0] != 'A' || x[1] > 'D') /* "AA".."AD": first byte 0x00 */
            continue;
        CL_AUTO(cl_pkey) *back = cl_jwk_to_pkey(jwk, &err);
        assert_non_null(back);
        assert_true(cl_pkey_public_equal(k, back));
        return;
    }
    fail_msg("no P-256 key with a leading zero byte in 5000 tries");
}

/* base: which generated JWK to start from; member/value: what to change (value is JSON text,
 * NULL to delete, or "@N:HH" = base64url of N bytes of 0xHH). */
static const struct jwk_case {
    const char *name, *base, *member, *value;
    int code;
} jwk_bad[] = {
    {"kty missing", "ec", "kty", NULL, CL_EPARSE},
    {"kty number", "ec", "kty", "1", CL_EPARSE},
    {"kty oct", "ec", "kty", "\"oct\"", CL_EUNSUPPORTED},
    {"crv missing", "ec", "crv", NULL, CL_EPARSE},
    {"crv number", "ec", "crv", "256", CL_EPARSE},
    {"crv P-192", "ec", "crv", "\"P-192\"", CL_EUNSUPPORTED},
    {"crv secp256k1", "ec", "crv", "\"secp256k1\"", CL_EUNSUPPORTED},
    {"crv P-384 with 32-byte coordinates", "ec", "crv", "\"P-384\"", CL_EPARSE},
    {"x missing", "ec", "x", NULL, CL_EPARSE},
    {"x array", "ec", "x", "[]", CL_EPARSE},
    {"x 31 bytes", "ec", "x", "@31:01", CL_EPARSE},
    {"x 33 bytes", "ec", "x", "@33:01", CL_EPARSE},
    {"x padded", "ec", "x", "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU=\"", CL_EPARSE},
    {"x std alphabet", "ec", "x", "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRV+U\"", CL_EPARSE},
    {"x empty", "ec", "x", "\"\"", CL_EPARSE},
    {"y missing", "ec", "y", NULL, CL_EPARSE},
    {"y null", "ec", "y", "null", CL_EPARSE},
    {"y 32 zero bytes (off curve)", "ec", "y", "@32:00", CL_EPARSE},
    {"y off curve", "ec", "y", "@32:01", CL_EPARSE},
    {"x beyond the field", "ec", "x", "@32:ff", CL_EPARSE},
    {"d wrong length", "ecpriv", "d", "@31:01", CL_EPARSE},
    {"d number", "ecpriv", "d", "7", CL_EPARSE},
    {"d does not match", "ecpriv", "d", "@32:01", CL_EPARSE},
    {"rsa n missing", "rsa", "n", NULL, CL_EPARSE},
    {"rsa n number", "rsa", "n", "3", CL_EPARSE},
    {"rsa n 1024 bits", "rsa", "n", "@128:ff", CL_EPARSE},
    {"rsa n 8200 bits", "rsa", "n", "@1025:ff", CL_EPARSE},
    {"rsa n too long to decode", "rsa", "n", "@2048:ff", CL_ELIMIT},
    {"rsa n even", "rsa", "n", "@256:fe", CL_EPARSE},
    {"rsa e missing", "rsa", "e", NULL, CL_EPARSE},
    {"rsa e even", "rsa", "e", "\"AQAA\"", CL_EPARSE},
    {"rsa e one", "rsa", "e", "\"AQ\"", CL_EPARSE},
    {"rsa e 9 bytes", "rsa", "e", "@9:01", CL_ELIMIT},
    {"rsa d without p..qi ok, p alone", "rsapriv", "q", NULL, CL_EPARSE},
    {"rsa p..qi without d", "rsapriv", "d", NULL, CL_EPARSE},
    {"rsa d wrong", "rsapriv", "d", "@255:03", CL_EPARSE},
    {"rsa qi array", "rsapriv", "qi", "[1]", CL_EPARSE},
    {"okp crv X25519", "okp", "crv", "\"X25519\"", CL_EUNSUPPORTED},
    {"okp crv missing", "okp", "crv", NULL, CL_EPARSE},
    {"okp x 31 bytes", "okp", "x", "@31:01", CL_EPARSE},
    {"okp x missing", "okp", "x", NULL, CL_EPARSE},
    {"okp d does not match", "okppriv", "d", "@32:01", CL_EPARSE},
    {"okp d 33 bytes", "okppriv", "d", "@33:01", CL_EPARSE},
};

static json_t *case_value(const char *value)
{
    if (value[0] != '@')
        return J(value);
    unsigned n = 0, b = 0;
    assert_int_equal(sscanf(value, "@%u:%x", &n, &b), 2);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, (int)b, n);
    cl_str *s = cl_b64_encode(buf, n, CL_B64_URL);
    free(buf);
    json_t *v = json_string(s);
    free(s);
    return v;
}

static json_t *jwk_base(const char *base)
{
    struct cl_err err = {0};
    json_t *j = NULL;
    if (strcmp(base, "ec") == 0)
        j = cl_jwk_from_pkey(k_p256, false, NULL, &err);
    else if (strcmp(base, "ecpriv") == 0)
        j = cl_jwk_from_pkey(k_p256, true, NULL, &err);
    else if (strcmp(base, "rsa") == 0)
        j = cl_jwk_from_pkey(k_rsa, false, NULL, &err);
    else if (strcmp(base, "rsapriv") == 0)
        j = cl_jwk_from_pkey(k_rsa, true, NULL, &err);
    else if (strcmp(base, "okp") == 0)
        j = cl_jwk_from_pkey(k_ed, false, NULL, &err);
    else if (strcmp(base, "okppriv") == 0)
        j = cl_jwk_from_pkey(k_ed, true, NULL, &err);
    assert_non_null(j);
    return j;
}

static void test_jwk_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < CL_ARRAY_LEN(jwk_bad); i++) {
        const struct jwk_case *c = &jwk_bad[i];
        CL_AUTO(json_t) *jwk = jwk_base(c->base);
        struct cl_err err = {0};
        /* positive twin: the unmodified base imports */
        CL_AUTO(cl_pkey) *ok = cl_jwk_to_pkey(jwk, &err);
        if (!ok)
            fail_msg("%s: base refused: %s", c->name, err.msg);
        if (c->value)
            assert_int_equal(json_object_set_new(jwk, c->member, case_value(c->value)), 0);
        else
            assert_int_equal(json_object_del(jwk, c->member), 0);
        CL_AUTO(cl_pkey) *k = cl_jwk_to_pkey(jwk, &err);
        if (k || err.code != c->code)
            fail_msg("%s: expected %s, got %s (%s)", c->name, cl_err_name(c->code),
                     k ? "a key" : cl_err_name(err.code), err.msg);
        assert_true(err.msg[0] != '\0');
    }
    /* not objects at all */
    static const char *const not_jwk[] = {"[]", "\"EC\"", "null", "42", "{}"};
    for (size_t i = 0; i < CL_ARRAY_LEN(not_jwk); i++) {
        struct cl_err err = {0};
        CL_AUTO(json_t) *j = J(not_jwk[i]);
        assert_null(cl_jwk_to_pkey(j, &err));
        assert_int_equal(err.code, CL_EPARSE);
    }
    struct cl_err err = {0};
    assert_null(cl_jwk_to_pkey(NULL, &err));
    assert_null(cl_jwk_to_pkey(NULL, NULL)); /* err may be NULL */
}

static void test_jwk_thumbprint(void **state)
{
    (void)state;
    /* RFC 7638 §3.1 and RFC 8037 §A.3 */
    static const struct {
        const char *jwk, *thp;
    } cases[] = {
        {"{\"kty\":\"RSA\",\"n\":"
         "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
         "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
         "FDW2QvzqY368QQMicAtaSqzs8KJ"
         "ZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
         "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
         "xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":"
         "\"2011-04-29\"}",
         "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
        {"{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"11qYAYKxCrfVS_"
         "7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
         "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_err err = {0};
        CL_AUTO(json_t) *j = J(cases[i].jwk);
        CL_AUTO(cl_str) *t = cl_jwk_thumbprint(j, &err);
        assert_non_null(t);
        assert_string_equal(t, cases[i].thp);
        /* tamper twin: another key member, another thumbprint; extra members do not count */
        assert_int_equal(json_object_set_new(j, "use", json_string("sig")), 0);
        CL_AUTO(cl_str) *t2 = cl_jwk_thumbprint(j, &err);
        assert_string_equal(t2, cases[i].thp);
        assert_int_equal(json_object_set_new(j, "kty", json_string(i == 0 ? "EC" : "RSA")), 0);
        CL_AUTO(cl_str) *t3 = cl_jwk_thumbprint(j, &err);
        assert_null(t3);
        assert_int_equal(err.code, CL_ENOTFOUND);
    }
    static const char *const bad[] = {"[]", "{}", "{\"kty\":\"oct\",\"k\":\"AA\"}",
                                      "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":5}"};
    static const int codes[] = {CL_EPARSE, CL_ENOTFOUND, CL_EUNSUPPORTED, CL_EPARSE};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err err = {0};
        CL_AUTO(json_t) *j = J(bad[i]);
        CL_AUTO(cl_str) *t = cl_jwk_thumbprint(j, &err);
        assert_null(t);
        assert_int_equal(err.code, codes[i]);
    }
    /* generated keys: thumbprint of the public JWK equals that of the private one */
    struct cl_err err = {0};
    CL_AUTO(json_t) *pub = cl_jwk_from_pkey(k_p521, false, "ES512", &err);
    CL_AUTO(json_t) *priv = cl_jwk_from_pkey(k_p521, true, NULL, &err);
    CL_AUTO(cl_str) *a = cl_jwk_thumbprint(pub, &err);
    CL_AUTO(cl_str) *b = cl_jwk_thumbprint(priv, &err);
    assert_non_null(a);
    assert_string_equal(a, b);
}

/* ---- JWS ---- */

static const struct {
    const char *alg, *key, *other_key;
    size_t sig_len;
} jws_algs[] = {
    {"ES256", "P-256", "P-256b", 64}, {"ES384", "P-384", "P-256", 96},
    {"ES512", "P-521", "P-256", 132}, {"EdDSA", "Ed25519", "Ed25519b", 64},
    {"RS256", "RSA", "RSAb", 256},    {"RS384", "RSA", "RSAb", 256},
    {"RS512", "RSA", "RSAb", 256},    {"PS256", "RSA", "RSAb", 256},
    {"PS384", "RSA", "RSAb", 256},    {"PS512", "RSA", "RSAb", 256},
};

static void test_jws_round_trip(void **state)
{
    (void)state;
    static const char payload[] = "{\"iss\":\"cloister\",\"n\":1}";
    for (size_t i = 0; i < CL_ARRAY_LEN(jws_algs); i++) {
        cl_pkey *k = key_named(jws_algs[i].key);
        struct cl_err err = {0};
        CL_AUTO(json_t) *extra = J("{\"typ\":\"JWT\",\"alg\":\"none\",\"kid\":\"k1\"}");
        CL_AUTO(cl_str) *jws =
            cl_jws_sign(k, jws_algs[i].alg, extra, payload, strlen(payload), &err);
        if (!jws)
            fail_msg("%s: %s", jws_algs[i].alg, err.msg);
        struct cl_jws p;
        assert_int_equal(cl_jws_parse(jws, strlen(jws), &p, &err), 0);
        assert_string_equal(p.alg, jws_algs[i].alg);
        assert_int_equal(p.sig_len, jws_algs[i].sig_len);
        assert_int_equal(p.payload_len, strlen(payload));
        assert_memory_equal(p.payload, payload, p.payload_len);
        /* header: alg first (extra's "alg" ignored), then extra members in order */
        CL_AUTO(cl_str) *h = cl_json_compact(p.header);
        char want[128];
        snprintf(want, sizeof want, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"k1\"}",
                 jws_algs[i].alg);
        assert_string_equal(h, want);
        assert_int_equal(cl_jws_verify(&p, k, &err), 0);
        /* tamper twins: another key, and each part flipped */
        assert_int_equal(cl_jws_verify(&p, key_named(jws_algs[i].other_key), &err), CL_EVERIFY);
        cl_jws_clear(&p);
        size_t len = strlen(jws);
        const char *d1 = strchr(jws, '.'), *d2 = strrchr(jws, '.');
        size_t at[] = {1, (size_t)(d1 - jws) + 2, (size_t)(d2 - jws) + 2};
        for (size_t t = 0; t < CL_ARRAY_LEN(at); t++) {
            CL_AUTO(cl_str) *bad = strdup(jws);
            flip_b64(bad, at[t]);
            struct cl_jws q;
            int rc = cl_jws_parse(bad, len, &q, &err);
            if (rc == 0) {
                rc = cl_jws_verify(&q, k, &err);
                cl_jws_clear(&q);
            }
            if (rc == 0)
                fail_msg("%s: flip at %zu verified", jws_algs[i].alg, at[t]);
        }
        /* the two halves give the same token text as one cl_jws_sign (ES* and PS* sign with
         * fresh randomness: compare the parts before the signature) */
        CL_AUTO(cl_str) *h64 = cl_jws_header_b64(jws_algs[i].alg, extra, &err);
        assert_non_null(h64);
        CL_AUTO(cl_str) *again =
            cl_jws_sign_h64(k, jws_algs[i].alg, h64, payload, strlen(payload), &err);
        assert_non_null(again);
        assert_int_equal(d2 - jws, strrchr(again, '.') - again);
        assert_memory_equal(jws, again, (size_t)(d2 - jws));
        /* a known header: taken as given when the text matches, parsed when it does not */
        CL_AUTO(json_t) *known = cl_json_parse(h, strlen(h), 8, &err);
        assert_non_null(known);
        struct cl_jws kp;
        assert_int_equal(cl_jws_parse_known(jws, len, h64, known, &kp, &err), 0);
        assert_ptr_equal(kp.header, known);
        assert_int_equal(cl_jws_verify(&kp, k, &err), 0);
        cl_jws_clear(&kp);
        CL_AUTO(json_t) *other = J("{\"alg\":\"ES256\",\"kid\":\"x\"}");
        assert_int_equal(cl_jws_parse_known(jws, len, h64, other, &kp, &err), 0);
        assert_ptr_equal(kp.header, other); /* same text: the caller's object is trusted */
        cl_jws_clear(&kp);
        CL_AUTO(cl_str) *h64x = strdup(h64);
        flip_b64(h64x, 2);
        assert_int_equal(cl_jws_parse_known(jws, len, h64x, other, &kp, &err), 0);
        assert_ptr_not_equal(kp.header, other); /* another text: decoded and parsed */
        assert_true(json_equal(kp.header, known));
        assert_int_equal(cl_jws_verify(&kp, k, &err), 0);
        cl_jws_clear(&kp);
        /* empty payload */
        CL_AUTO(cl_str) *empty = cl_jws_sign(k, jws_algs[i].alg, NULL, NULL, 0, &err);
        assert_non_null(empty);
        assert_int_equal(cl_jws_parse(empty, strlen(empty), &p, &err), 0);
        assert_int_equal(p.payload_len, 0);
        assert_int_equal(cl_jws_verify(&p, k, &err), 0);
        cl_jws_clear(&p);
    }
}

static void test_jws_key_mismatch(void **state)
{
    (void)state;
    static const struct {
        const char *alg, *key;
    } cases[] = {
        {"ES256", "P-384"}, {"ES256", "P-521"},   {"ES384", "P-256"}, {"ES512", "P-384"},
        {"ES256", "RSA"},   {"ES256", "Ed25519"}, {"RS256", "P-256"}, {"PS256", "Ed25519"},
        {"EdDSA", "P-256"}, {"EdDSA", "RSA"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        cl_pkey *k = key_named(cases[i].key);
        struct cl_err err = {0};
        CL_AUTO(cl_str) *jws = cl_jws_sign(k, cases[i].alg, NULL, "x", 1, &err);
        assert_null(jws);
        assert_int_equal(err.code, CL_EINVAL);
        /* a JWS with that header, signed by the right key, must not verify with this one */
        for (size_t j = 0; j < CL_ARRAY_LEN(jws_algs); j++) {
            if (strcmp(jws_algs[j].alg, cases[i].alg) != 0)
                continue;
            CL_AUTO(cl_str) *good =
                cl_jws_sign(key_named(jws_algs[j].key), cases[i].alg, NULL, "x", 1, &err);
            assert_non_null(good);
            struct cl_jws p;
            assert_int_equal(cl_jws_parse(good, strlen(good), &p, &err), 0);
            assert_int_equal(cl_jws_verify(&p, k, &err), CL_EVERIFY);
            cl_jws_clear(&p);
        }
    }
}

static cl_str *compact_with_header(const char *header_json, const char *payload,
                                   const char *sig_b64)
{
    cl_str *h = cl_b64_encode(header_json, strlen(header_json), CL_B64_URL);
    cl_str *p = cl_b64_encode(payload, strlen(payload), CL_B64_URL);
    cl_str *s = cl_strdupf("%s.%s.%s", h, p, sig_b64);
    free(h);
    free(p);
    return s;
}

static void test_jws_refused_algs(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        int code;
    } cases[] = {
        {"{\"alg\":\"none\"}", CL_EUNSUPPORTED},
        {"{\"alg\":\"HS256\"}", CL_EUNSUPPORTED},
        {"{\"alg\":\"HS512\"}", CL_EUNSUPPORTED},
        {"{\"alg\":\"ES256K\"}", CL_EUNSUPPORTED},
        {"{\"alg\":\"es256\"}", CL_EUNSUPPORTED},
        {"{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}", CL_EUNSUPPORTED},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_err err = {0};
        CL_AUTO(cl_str) *c = compact_with_header(cases[i].header, "{}", "");
        struct cl_jws p;
        assert_int_equal(cl_jws_parse(c, strlen(c), &p, &err), 0);
        assert_int_equal(cl_jws_verify(&p, k_p256, &err), cases[i].code);
        assert_int_equal(cl_jws_verify(&p, k_rsa, &err), cases[i].code);
        cl_jws_clear(&p);
    }
    struct cl_err err = {0};
    CL_AUTO(cl_str) *s = cl_jws_sign(k_p256, "none", NULL, "x", 1, &err);
    assert_null(s);
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    CL_AUTO(cl_str) *s2 = cl_jws_sign(k_p256, "HS256", NULL, "x", 1, &err);
    assert_null(s2);
    assert_int_equal(err.code, CL_EUNSUPPORTED);
    CL_AUTO(json_t) *arr = J("[1]");
    CL_AUTO(cl_str) *s3 = cl_jws_sign(k_p256, "ES256", arr, "x", 1, &err);
    assert_null(s3);
    assert_int_equal(err.code, CL_EINVAL);
}

static void test_jws_parse_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *name, *text;
        int code;
    } cases[] = {
        {"empty", "", CL_EPARSE},
        {"no dot", "eyJhbGciOiJFUzI1NiJ9", CL_EPARSE},
        {"two parts", "eyJhbGciOiJFUzI1NiJ9.e30", CL_EPARSE},
        {"four parts", "eyJhbGciOiJFUzI1NiJ9.e30.AA.AA", CL_EPARSE},
        {"empty header", ".e30.AA", CL_EPARSE},
        {"header bad base64", "eyJhbGciOiJFUzI1NiJ9*.e30.AA", CL_EPARSE},
        {"header padded", "eyJhbGciOiJFUzI1NiJ9.e30=.AA", CL_EPARSE},
        {"header not JSON", "bm90IGpzb24.e30.AA", CL_EPARSE},
        {"header array", "WyJFUzI1NiJd.e30.AA", CL_EPARSE},
        {"alg missing", "eyJ0eXAiOiJKV1QifQ.e30.AA", CL_EPARSE},
        {"alg number", "eyJhbGciOjF9.e30.AA", CL_EPARSE},
        {"signature bad base64", "eyJhbGciOiJFUzI1NiJ9.e30.A+A", CL_EPARSE},
        {"signature padded", "eyJhbGciOiJFUzI1NiJ9.e30.AA==", CL_EPARSE},
        {"signature too long", NULL, CL_ELIMIT},
        {"NUL inside", "eyJhbGciOiJFUzI1NiJ9.e3\0.AA", CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_err err = {0};
        struct cl_jws p;
        CL_AUTO(cl_str) *text = NULL;
        size_t len;
        if (cases[i].text) {
            len = strcmp(cases[i].name, "NUL inside") == 0 ? 27 : strlen(cases[i].text);
            text = malloc(len + 1);
            memcpy(text, cases[i].text, len + 1);
        } else {
            text = malloc(4000);
            strcpy(text, "eyJhbGciOiJFUzI1NiJ9.e30.");
            memset(text + 25, 'A', 3000);
            text[3025] = '\0';
            len = strlen(text);
        }
        int rc = cl_jws_parse(text, len, &p, &err);
        if (rc != cases[i].code)
            fail_msg("%s: expected %s, got %s (%s)", cases[i].name, cl_err_name(cases[i].code),
                     cl_err_name(rc), err.msg);
        assert_null(p.header);
        assert_null(p.payload);
        assert_null(p.sig);
        cl_jws_clear(&p); /* harmless on a zeroed struct */
    }
    /* over CL_JOSE_MAX */
    char *big = malloc(CL_JOSE_MAX + 2);
    assert_non_null(big);
    memset(big, 'A', CL_JOSE_MAX + 1);
    big[10] = '.';
    big[20] = '.';
    big[CL_JOSE_MAX + 1] = '\0';
    struct cl_err err = {0};
    struct cl_jws p;
    assert_int_equal(cl_jws_parse(big, CL_JOSE_MAX + 1, &p, &err), CL_ELIMIT);
    free(big);
    /* a valid JWS whose signature has the wrong length */
    CL_AUTO(cl_str) *c = compact_with_header("{\"alg\":\"ES256\"}", "{}", "AAAA");
    assert_int_equal(cl_jws_parse(c, strlen(c), &p, &err), 0);
    assert_int_equal(cl_jws_verify(&p, k_p256, &err), CL_EVERIFY);
    cl_jws_clear(&p);
    assert_int_equal(cl_jws_verify(NULL, k_p256, &err), CL_EINVAL);
}

/* RFC 7515 §A.3 (ES256) and RFC 8037 §A.4 (Ed25519): signatures made elsewhere. */
static void test_jws_rfc_examples(void **state)
{
    (void)state;
    static const struct {
        const char *jwk, *jws;
    } cases[] = {
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
         "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
         "eyJhbGciOiJFUzI1NiJ9."
         "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0c"
         "nVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
         "Kg6NU1Q"},
        {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
         "7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
         "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-"
         "09PGcvMg3AIbQR6dWbhijcNR4k"
         "i4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_err err = {0};
        CL_AUTO(json_t) *j = J(cases[i].jwk);
        CL_AUTO(cl_pkey) *k = cl_jwk_to_pkey(j, &err);
        assert_non_null(k);
        struct cl_jws p;
        assert_int_equal(cl_jws_parse(cases[i].jws, strlen(cases[i].jws), &p, &err), 0);
        assert_int_equal(cl_jws_verify(&p, k, &err), 0);
        /* tamper twin: one signature bit */
        p.sig[5] ^= 0x01;
        assert_int_equal(cl_jws_verify(&p, k, &err), CL_EVERIFY);
        cl_jws_clear(&p);
    }
}

static void test_sig_raw(void **state)
{
    (void)state;
    struct cl_err err = {0};
    CL_AUTO(cl_bytes) *sig = NULL;
    size_t sl = 0;
    assert_int_equal(cl_sig_sign(k_p384, "ES384", "data", 4, &sig, &sl, &err), 0);
    assert_int_equal(sl, 96);
    assert_int_equal(cl_sig_verify(k_p384, "ES384", "data", 4, sig, sl, &err), 0);
    assert_int_equal(cl_sig_verify(k_p384, "ES384", "dat4", 4, sig, sl, &err), CL_EVERIFY);
    assert_int_equal(cl_sig_verify(k_p384, "ES384", "data", 4, sig, sl - 1, &err), CL_EVERIFY);
    assert_int_equal(cl_sig_verify(k_p384, "ES256", "data", 4, sig, sl, &err), CL_EVERIFY);
    assert_int_equal(cl_sig_verify(k_p384, "HS384", "data", 4, sig, sl, &err), CL_EUNSUPPORTED);
    assert_int_equal(cl_sig_verify(k_p384, NULL, "data", 4, sig, sl, &err), CL_EINVAL);
    /* r = 0 or s = 0 never verifies */
    uint8_t zero[96] = {0};
    assert_int_equal(cl_sig_verify(k_p384, "ES384", "data", 4, zero, sizeof zero, &err),
                     CL_EVERIFY);
    /* a public key cannot sign */
    CL_AUTO(json_t) *pubj = cl_jwk_from_pkey(k_p384, false, NULL, &err);
    CL_AUTO(cl_pkey) *pub = cl_jwk_to_pkey(pubj, &err);
    CL_AUTO(cl_bytes) *sig2 = NULL;
    assert_true(cl_sig_sign(pub, "ES384", "data", 4, &sig2, &sl, &err) < 0);
    assert_null(sig2);
}

/* ---- JWE ---- */

static const struct {
    const char *name, *key, *alg, *other_key, *crv;
} jwe_algs[] = {
    {"ECDH P-256", "P-256", "ECDH-ES+A256KW", "P-256b", "P-256"},
    {"ECDH P-521", "P-521", "ECDH-ES+A256KW", NULL, "P-521"},
    {"RSA-OAEP-256", "RSA", "RSA-OAEP-256", "RSAb", NULL},
    {"RSA1_5", "RSA", "RSA1_5", "RSAb", NULL},
};

static json_t *recipient(cl_pkey *k, const char *alg)
{
    struct cl_err err = {0};
    json_t *j = cl_jwk_from_pkey(k, false, alg, &err);
    assert_non_null(j);
    return j;
}

static json_t *seal(size_t i, const void *pt, size_t len)
{
    CL_AUTO(json_t) *r = recipient(key_named(jwe_algs[i].key), jwe_algs[i].alg);
    struct cl_err err = {0};
    json_t *jwe = cl_jwe_encrypt(r, pt, len, &err);
    if (!jwe)
        fail_msg("%s: %s", jwe_algs[i].name, err.msg);
    return jwe;
}

static cl_str *decoded_protected(const json_t *jwe)
{
    const char *p = json_string_value(json_object_get(jwe, "protected"));
    size_t n = 0;
    struct cl_err err = {0};
    cl_bytes *b = cl_b64_decode(p, strlen(p), CL_B64_URL, 4096, &n, &err);
    assert_non_null(b);
    return (cl_str *)b;
}

static void test_jwe_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 16, 1000, 70000};
    for (size_t i = 0; i < CL_ARRAY_LEN(jwe_algs); i++) {
        for (size_t s = 0; s < CL_ARRAY_LEN(sizes); s++) {
            uint8_t *pt = malloc(sizes[s] + 1);
            for (size_t b = 0; b < sizes[s]; b++)
                pt[b] = (uint8_t)(b * 7 + i);
            CL_AUTO(json_t) *jwe = seal(i, pt, sizes[s]);
            /* member set and order as the KBS sends it */
            static const char *const members[] = {"protected", "encrypted_key", "iv", "ciphertext",
                                                  "tag"};
            size_t m = 0;
            const char *key;
            json_t *v;
            json_object_foreach(jwe, key, v)
            {
                assert_true(m < CL_ARRAY_LEN(members));
                assert_string_equal(key, members[m++]);
                assert_true(json_is_string(v));
            }
            assert_int_equal(m, 5);
            assert_int_equal(strlen(json_string_value(json_object_get(jwe, "iv"))),
                             16); /* 12 bytes */
            assert_int_equal(strlen(json_string_value(json_object_get(jwe, "tag"))),
                             22); /* 16 bytes */
            struct cl_err err = {0};
            CL_AUTO(cl_secret) *out = cl_jwe_decrypt(jwe, key_named(jwe_algs[i].key), &err);
            if (!out)
                fail_msg("%s: %s", jwe_algs[i].name, err.msg);
            assert_int_equal(out->len, sizes[s]);
            if (sizes[s])
                assert_memory_equal(out->data, pt, sizes[s]);
            free(pt);
        }
    }
}

static void test_jwe_protected_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < CL_ARRAY_LEN(jwe_algs); i++) {
        CL_AUTO(json_t) *jwe = seal(i, "x", 1);
        CL_AUTO(cl_str) *hdr = decoded_protected(jwe);
        char want[512];
        if (jwe_algs[i].crv) {
            /* rebuild from the epk coordinates; everything else is fixed text */
            CL_AUTO(json_t) *h = J(hdr);
            json_t *epk = json_object_get(h, "epk");
            const char *x = json_string_value(json_object_get(epk, "x"));
            const char *y = json_string_value(json_object_get(epk, "y"));
            assert_non_null(x);
            assert_non_null(y);
            size_t coord = strcmp(jwe_algs[i].crv, "P-256") == 0 ? 43 : 88;
            assert_int_equal(strlen(x), coord);
            assert_int_equal(strlen(y), coord);
            snprintf(want, sizeof want,
                     "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"%s\","
                     "\"kty\":\"EC\",\"x\":\"%s\","
                     "\"y\":\"%s\"}}",
                     jwe_algs[i].crv, x, y);
            assert_int_equal(strlen(json_string_value(json_object_get(jwe, "encrypted_key"))),
                             54); /* 40 bytes */
        } else {
            snprintf(want, sizeof want, "{\"alg\":\"%s\",\"enc\":\"A256GCM\"}", jwe_algs[i].alg);
        }
        assert_string_equal(hdr, want);
    }
    /* the two headers quoted in the protocol notes, literally */
    CL_AUTO(json_t) *oaep = seal(2, "x", 1);
    CL_AUTO(cl_str) *h = decoded_protected(oaep);
    assert_string_equal(h, "{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\"}");
    CL_AUTO(json_t) *ec = seal(0, "x", 1);
    CL_AUTO(cl_str) *h2 = decoded_protected(ec);
    assert_memory_equal(h2,
                        "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-"
                        "256\",\"kty\":\"EC\",\"x\":\"",
                        69);
}

static json_t *with_member(const json_t *jwe, const char *member, json_t *value)
{
    json_t *c = json_deep_copy(jwe);
    assert_non_null(c);
    if (value)
        assert_int_equal(json_object_set_new(c, member, value), 0);
    else
        assert_int_equal(json_object_del(c, member), 0);
    return c;
}

static json_t *with_flip(const json_t *jwe, const char *member, size_t idx)
{
    CL_AUTO(cl_str) *s = strdup(json_string_value(json_object_get(jwe, member)));
    assert_true(idx < strlen(s) - 1);
    flip_b64(s, idx);
    return with_member(jwe, member, json_string(s));
}

static json_t *with_protected(const json_t *jwe, const char *header_text)
{
    cl_str *p = cl_b64_encode(header_text, strlen(header_text), CL_B64_URL);
    json_t *c = with_member(jwe, "protected", json_string(p));
    free(p);
    return c;
}

/* The text form the KBS sends opens like the object form; a flipped ciphertext byte does not;
 * and the P-256 key it seals to, imported twice (the second time from the key cache), gives
 * the same key while an off-curve twin of it is still refused. */
static void test_jwe_text(void **state)
{
    (void)state;
    CL_AUTO(json_t) *r = recipient(k_p256, "ECDH-ES+A256KW");
    struct cl_err err = {0};
    CL_AUTO(cl_str) *text = cl_jwe_encrypt_text(r, "secret", 6, &err);
    assert_non_null(text);
    CL_AUTO(json_t) *jwe = cl_json_parse(text, strlen(text), 8, &err);
    assert_non_null(jwe);
    assert_int_equal(json_object_size(jwe), 5);
    struct cl_secret *pt = cl_jwe_decrypt(jwe, k_p256, &err);
    assert_non_null(pt);
    assert_int_equal(pt->len, 6);
    assert_memory_equal(pt->data, "secret", 6);
    cl_secret_free(pt);
    CL_AUTO(json_t) *bad = with_flip(jwe, "ciphertext", 0);
    assert_null(cl_jwe_decrypt(bad, k_p256, &err));
    assert_int_equal(err.code, CL_EVERIFY);

    CL_AUTO(cl_pkey) *a = cl_jwk_to_pkey(r, &err);
    CL_AUTO(cl_pkey) *b = cl_jwk_to_pkey(r, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(cl_pkey_public_equal(a, b));
    assert_true(cl_pkey_public_equal(a, k_p256));
    CL_AUTO(json_t) *off = json_deep_copy(r);
    const char *y = json_string_value(json_object_get(off, "y"));
    char y2[64];
    snprintf(y2, sizeof y2, "%s", y);
    y2[5] = y2[5] == 'A' ? 'B' : 'A';
    json_object_set_new(off, "y", json_string(y2));
    assert_null(cl_jwk_to_pkey(off, &err));
    assert_int_equal(err.code, CL_EPARSE);
}

static void test_jwe_tamper(void **state)
{
    (void)state;
    static const char msg[] = "the resource that only an attested guest may read";
    static const char *const members[] = {"protected", "encrypted_key", "iv", "ciphertext", "tag"};
    for (size_t i = 0; i < CL_ARRAY_LEN(jwe_algs); i++) {
        CL_AUTO(json_t) *jwe = seal(i, msg, strlen(msg));
        cl_pkey *k = key_named(jwe_algs[i].key);
        struct cl_err err = {0};
        CL_AUTO(cl_secret) *ok = cl_jwe_decrypt(jwe, k, &err);
        assert_non_null(ok);
        for (size_t m = 0; m < CL_ARRAY_LEN(members); m++) {
            size_t len = strlen(json_string_value(json_object_get(jwe, members[m])));
            size_t spots[] = {0, len / 2, len - 2};
            for (size_t s = 0; s < CL_ARRAY_LEN(spots); s++) {
                CL_AUTO(json_t) *bad = with_flip(jwe, members[m], spots[s]);
                CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k, &err);
                if (out)
                    fail_msg("%s: flip in %s at %zu decrypted", jwe_algs[i].name, members[m],
                             spots[s]);
                assert_true(err.code == CL_EVERIFY || err.code == CL_EPARSE);
            }
        }
        /* the AAD is the received text: the same header with a space fails */
        CL_AUTO(cl_str) *hdr = decoded_protected(jwe);
        CL_AUTO(cl_str) *spaced = cl_strdupf("%.*s %s", 1, hdr, hdr + 1);
        CL_AUTO(json_t) *bad = with_protected(jwe, spaced);
        CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k, &err);
        assert_null(out);
        assert_int_equal(err.code, CL_EVERIFY);
        /* an "aad" member joins the AAD */
        CL_AUTO(json_t) *extra = with_member(jwe, "aad", json_string("AAAA"));
        CL_AUTO(cl_secret) *out2 = cl_jwe_decrypt(extra, k, &err);
        assert_null(out2);
        assert_int_equal(err.code, CL_EVERIFY);
        /* wrong key of the right type */
        if (jwe_algs[i].other_key) {
            CL_AUTO(cl_secret) *out3 = cl_jwe_decrypt(jwe, key_named(jwe_algs[i].other_key), &err);
            assert_null(out3);
            assert_int_equal(err.code, CL_EVERIFY);
        }
        /* wrong key type */
        CL_AUTO(cl_secret) *out4 = cl_jwe_decrypt(jwe, jwe_algs[i].crv ? k_rsa : k_p256, &err);
        assert_null(out4);
        assert_int_equal(err.code, CL_EINVAL);
        CL_AUTO(cl_secret) *out5 = cl_jwe_decrypt(jwe, k_ed, &err);
        assert_null(out5);
    }
}

/* RSA1_5: a broken padding must fail exactly like a broken tag (no padding oracle). */
static void test_jwe_rsa1_5_no_oracle(void **state)
{
    (void)state;
    CL_AUTO(json_t) *jwe = seal(3, "secret", 6);
    struct cl_err e_tag = {0}, e_pad = {0}, e_len = {0};
    CL_AUTO(json_t) *bad_tag = with_flip(jwe, "tag", 3);
    CL_AUTO(cl_secret) *a = cl_jwe_decrypt(bad_tag, k_rsa, &e_tag);
    assert_null(a);
    CL_AUTO(json_t) *bad_pad = with_flip(jwe, "encrypted_key", 5);
    CL_AUTO(cl_secret) *b = cl_jwe_decrypt(bad_pad, k_rsa, &e_pad);
    assert_null(b);
    assert_int_equal(e_tag.code, CL_EVERIFY);
    assert_int_equal(e_pad.code, CL_EVERIFY);
    assert_string_equal(e_tag.msg, e_pad.msg);
    /* a well-padded 16-byte key (wrong length) also ends as a tag failure */
    uint8_t short_cek[16] = {1};
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k_rsa, NULL);
    uint8_t ek[256];
    size_t ekl = sizeof ek;
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(ctx, ek, &ekl, short_cek, sizeof short_cek), 1);
    EVP_PKEY_CTX_free(ctx);
    cl_str *ek64 = cl_b64_encode(ek, ekl, CL_B64_URL);
    CL_AUTO(json_t) *bad_len = with_member(jwe, "encrypted_key", json_string(ek64));
    free(ek64);
    CL_AUTO(cl_secret) *c = cl_jwe_decrypt(bad_len, k_rsa, &e_len);
    assert_null(c);
    assert_string_equal(e_len.msg, e_tag.msg);
}

static void test_jwe_epk(void **state)
{
    (void)state;
    CL_AUTO(json_t) *jwe = seal(0, "x", 1); /* P-256 */
    CL_AUTO(json_t) *jwe521 = seal(1, "x", 1);
    struct cl_err err = {0};
    /* epk on another curve: a valid P-384 and a valid P-521 point */
    static const char *const foreign[] = {"P-384", "P-521"};
    for (size_t i = 0; i < CL_ARRAY_LEN(foreign); i++) {
        CL_AUTO(json_t) *epk = cl_jwk_from_pkey(key_named(foreign[i]), false, NULL, &err);
        char hdr[1024];
        snprintf(hdr, sizeof hdr,
                 "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"%s\",\"kty\":"
                 "\"EC\",\"x\":\"%s\","
                 "\"y\":\"%s\"}}",
                 foreign[i], json_string_value(json_object_get(epk, "x")),
                 json_string_value(json_object_get(epk, "y")));
        CL_AUTO(json_t) *bad = with_protected(jwe, hdr);
        CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k_p256, &err);
        assert_null(out);
        assert_int_equal(err.code, CL_EVERIFY);
        assert_non_null(strstr(err.msg, "does not match"));
    }
    /* a P-256 epk against a P-521 key */
    {
        CL_AUTO(cl_str) *p256hdr = decoded_protected(jwe);
        CL_AUTO(json_t) *bad = with_protected(jwe521, p256hdr);
        CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k_p521, &err);
        assert_null(out);
        assert_int_equal(err.code, CL_EVERIFY);
    }
    /* point not on the curve, the point at "zero", a private member, wrong kty */
    CL_AUTO(cl_str) *orig = decoded_protected(jwe);
    CL_AUTO(json_t) *oh = J(orig);
    json_t *epk = json_object_get(oh, "epk");
    const char *x = json_string_value(json_object_get(epk, "x"));
    const char *y = json_string_value(json_object_get(epk, "y"));
    /* each header is pre + (x of the real epk, when use_x) + post */
    static const struct {
        const char *name, *pre;
        bool use_x;
        const char *post;
    } cases[] = {
        {"y off the curve",
         "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\",\"kty\":"
         "\"EC\",\"x\":\"",
         true, "\",\"y\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}}"},
        {"point (0, 0)",
         "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\",\"kty\":"
         "\"EC\",\"x\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}",
         false, ""},
        {"y missing",
         "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\",\"kty\":"
         "\"EC\",\"x\":\"",
         true, "\"}}"},
        {"epk a string", "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":\"", true, "\"}"},
        {"epk empty", "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{}}", false, ""},
        {"x 31 bytes",
         "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\",\"kty\":"
         "\"EC\",\"x\":"
         "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ\",\"y\":"
         "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}}",
         false, ""},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(cl_str) *hdr =
            cl_strdupf("%s%s%s", cases[i].pre, cases[i].use_x ? x : "", cases[i].post);
        CL_AUTO(json_t) *bad = with_protected(jwe, hdr);
        CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k_p256, &err);
        assert_null(out);
        if (err.code != CL_EPARSE)
            fail_msg("epk %s: %s (%s)", cases[i].name, cl_err_name(err.code), err.msg);
    }
    /* epk with kty RSA, and with a "d" */
    {
        char hdr[1024];
        snprintf(hdr, sizeof hdr,
                 "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\","
                 "\"kty\":\"RSA\",\"x\":\"%s\","
                 "\"y\":\"%s\"}}",
                 x, y);
        CL_AUTO(json_t) *bad = with_protected(jwe, hdr);
        CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k_p256, &err);
        assert_null(out);
        assert_int_equal(err.code, CL_EPARSE);
        snprintf(hdr, sizeof hdr,
                 "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\","
                 "\"kty\":\"EC\",\"x\":\"%s\","
                 "\"y\":\"%s\",\"d\":\"AQ\"}}",
                 x, y);
        CL_AUTO(json_t) *bad2 = with_protected(jwe, hdr);
        CL_AUTO(cl_secret) *out2 = cl_jwe_decrypt(bad2, k_p256, &err);
        assert_null(out2);
        assert_int_equal(err.code, CL_EPARSE);
    }
    /* positive twin: the same header text, re-encoded, still decrypts */
    CL_AUTO(json_t) *same = with_protected(jwe, orig);
    CL_AUTO(cl_secret) *out = cl_jwe_decrypt(same, k_p256, &err);
    assert_non_null(out);
}

static void test_jwe_decrypt_rejects(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ec = seal(0, "hello", 5);
    CL_AUTO(json_t) *rsa = seal(2, "hello", 5);
    static const struct {
        const char *name;
        int rsa;            /* which message to start from */
        const char *member; /* member to change */
        const char *value; /* JSON text, "@N:HH" bytes, "!hdr:..." protected header text, or NULL to
                              delete */
        int code;
    } cases[] = {
        {"protected missing", 0, "protected", NULL, CL_EPARSE},
        {"protected number", 0, "protected", "1", CL_EPARSE},
        {"protected bad base64", 0, "protected", "\"e30*\"", CL_EPARSE},
        {"protected not JSON", 0, "protected", "!hdr:{", CL_EPARSE},
        {"protected array", 0, "protected", "![1]", CL_EPARSE},
        {"alg missing", 0, "protected", "!{\"enc\":\"A256GCM\"}", CL_EPARSE},
        {"enc missing", 2, "protected", "!{\"alg\":\"RSA-OAEP-256\"}", CL_EPARSE},
        {"enc A128GCM", 2, "protected", "!{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A128GCM\"}",
         CL_EUNSUPPORTED},
        {"enc A256CBC-HS512", 2, "protected",
         "!{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256CBC-HS512\"}", CL_EUNSUPPORTED},
        {"alg dir", 2, "protected", "!{\"alg\":\"dir\",\"enc\":\"A256GCM\"}", CL_EUNSUPPORTED},
        {"alg RSA-OAEP", 2, "protected", "!{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}",
         CL_EUNSUPPORTED},
        {"alg ECDH-ES", 0, "protected", "!{\"alg\":\"ECDH-ES\",\"enc\":\"A256GCM\"}",
         CL_EUNSUPPORTED},
        {"zip", 2, "protected", "!{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\",\"zip\":\"DEF\"}",
         CL_EUNSUPPORTED},
        {"crit", 2, "protected", "!{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\",\"crit\":[\"x\"]}",
         CL_EUNSUPPORTED},
        {"epk missing", 0, "protected", "!{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\"}",
         CL_EPARSE},
        {"protected too long", 2, "protected", "@4000:41", CL_ELIMIT},
        {"encrypted_key missing", 0, "encrypted_key", NULL, CL_EPARSE},
        {"encrypted_key 32 bytes (ECDH)", 0, "encrypted_key", "@32:01", CL_EVERIFY},
        {"encrypted_key 48 bytes (ECDH)", 0, "encrypted_key", "@48:01", CL_EVERIFY},
        {"encrypted_key 255 bytes (RSA)", 2, "encrypted_key", "@255:01", CL_EVERIFY},
        {"encrypted_key too long", 2, "encrypted_key", "@1025:01", CL_ELIMIT},
        {"encrypted_key padded", 0, "encrypted_key", "\"AAAA==\"", CL_EPARSE},
        {"iv missing", 0, "iv", NULL, CL_EPARSE},
        {"iv 16 bytes", 0, "iv", "@16:01", CL_EPARSE},
        {"iv 11 bytes", 2, "iv", "@11:01", CL_EPARSE},
        {"iv object", 2, "iv", "{}", CL_EPARSE},
        {"tag missing", 0, "tag", NULL, CL_EPARSE},
        {"tag 12 bytes", 0, "tag", "@12:01", CL_EPARSE},
        {"tag 17 bytes", 2, "tag", "@17:01", CL_EPARSE},
        {"ciphertext missing", 0, "ciphertext", NULL, CL_EPARSE},
        {"ciphertext bad base64", 2, "ciphertext", "\"a.b\"", CL_EPARSE},
        {"ciphertext empty", 2, "ciphertext", "\"\"", CL_EVERIFY},
        {"aad not base64url", 2, "aad", "\"+/\"", CL_EPARSE},
        {"aad number", 2, "aad", "5", CL_EPARSE},
        {"header not an object", 2, "header", "5", CL_EPARSE},
        {"unprotected not an object", 2, "unprotected", "[]", CL_EPARSE},
        {"alg twice (protected and header)", 2, "header", "{\"alg\":\"RSA-OAEP-256\"}", CL_EPARSE},
        {"enc twice (protected and unprotected)", 0, "unprotected", "{\"enc\":\"A256GCM\"}",
         CL_EPARSE},
        {"epk twice", 0, "header", "{\"epk\":{}}", CL_EPARSE},
        {"zip in header", 2, "header", "{\"zip\":\"DEF\"}", CL_EUNSUPPORTED},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        const json_t *base = cases[i].rsa ? rsa : ec;
        cl_pkey *k = cases[i].rsa ? k_rsa : k_p256;
        CL_AUTO(json_t) *bad = NULL;
        const char *v = cases[i].value;
        if (!v)
            bad = with_member(base, cases[i].member, NULL);
        else if (v[0] == '!')
            bad = with_protected(base, strncmp(v, "!hdr:", 5) == 0 ? v + 5 : v + 1);
        else
            bad = with_member(base, cases[i].member, case_value(v));
        struct cl_err err = {0};
        CL_AUTO(cl_secret) *out = cl_jwe_decrypt(bad, k, &err);
        if (out || err.code != cases[i].code)
            fail_msg("%s: expected %s, got %s (%s)", cases[i].name, cl_err_name(cases[i].code),
                     out ? "plaintext" : cl_err_name(err.code), err.msg);
    }
    struct cl_err err = {0};
    /* unknown unprotected members are not authenticated, and change nothing */
    CL_AUTO(json_t) *extra = with_member(rsa, "unprotected", J("{\"kid\":\"x\"}"));
    CL_AUTO(cl_secret) *pt = cl_jwe_decrypt(extra, k_rsa, &err);
    assert_non_null(pt);
    assert_memory_equal(pt->data, "hello", 5);
    CL_AUTO(json_t) *arr = J("[]");
    assert_null(cl_jwe_decrypt(arr, k_p256, &err));
    assert_int_equal(err.code, CL_EPARSE);
    assert_null(cl_jwe_decrypt(ec, NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);
    assert_null(cl_jwe_decrypt(NULL, k_p256, NULL));
}

static void test_jwe_encrypt_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *name, *key, *alg;
        int code;
    } cases[] = {
        {"no alg", "P-256", NULL, CL_ENOTFOUND},
        {"ECDH-ES", "P-256", "ECDH-ES", CL_EUNSUPPORTED},
        {"ECDH-ES+A128KW", "P-256", "ECDH-ES+A128KW", CL_EUNSUPPORTED},
        {"RSA-OAEP", "RSA", "RSA-OAEP", CL_EUNSUPPORTED},
        {"ML-KEM", "RSA", "ML-KEM-768+A192KW", CL_EUNSUPPORTED},
        {"ECDH on P-384", "P-384", "ECDH-ES+A256KW", CL_EUNSUPPORTED},
        {"ECDH with RSA key", "RSA", "ECDH-ES+A256KW", CL_EINVAL},
        {"ECDH with Ed25519 key", "Ed25519", "ECDH-ES+A256KW", CL_EINVAL},
        {"RSA-OAEP-256 with EC key", "P-256", "RSA-OAEP-256", CL_EINVAL},
        {"RSA1_5 with EC key", "P-521", "RSA1_5", CL_EINVAL},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(json_t) *r = recipient(key_named(cases[i].key), cases[i].alg);
        struct cl_err err = {0};
        CL_AUTO(json_t) *jwe = cl_jwe_encrypt(r, "x", 1, &err);
        if (jwe || err.code != cases[i].code)
            fail_msg("%s: expected %s, got %s (%s)", cases[i].name, cl_err_name(cases[i].code),
                     jwe ? "a JWE" : cl_err_name(err.code), err.msg);
    }
    struct cl_err err = {0};
    CL_AUTO(json_t) *r = recipient(k_p256, "ECDH-ES+A256KW");
    assert_null(cl_jwe_encrypt(r, "x", (size_t)CL_JWE_MAX_PLAINTEXT + 1, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    CL_AUTO(json_t) *bad = J(
        "{\"alg\":\"ECDH-ES+A256KW\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}");
    assert_null(cl_jwe_encrypt(bad, "x", 1, &err));
    assert_int_equal(err.code, CL_EPARSE);
    CL_AUTO(json_t) *arr = J("[]");
    assert_null(cl_jwe_encrypt(arr, "x", 1, &err));
    assert_int_equal(err.code, CL_EINVAL);
}

/* ---- X.509 ---- */

static X509 *make_cert(const char *cn, cl_pkey *key, X509 *issuer, cl_pkey *issuer_key, bool ca,
                       long nb, long na)
{
    X509 *x = X509_new();
    assert_non_null(x);
    static long serial = 1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), nb);
    X509_gmtime_adj(X509_getm_notAfter(x), na);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    static const struct {
        int nid;
        const char *ca, *leaf;
    } exts[] = {
        {NID_basic_constraints, "critical,CA:TRUE", "critical,CA:FALSE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature",
         "critical,digitalSignature"},
        {NID_subject_key_identifier, "hash", "hash"},
        {NID_authority_key_identifier, "keyid:always", "keyid:always"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(exts); i++) {
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, ca ? exts[i].ca : exts[i].leaf);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static json_t *x5c_of(X509 *const *certs, size_t n, enum cl_b64 variant)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        unsigned char *der = NULL;
        int dl = i2d_X509(certs[i], &der);
        assert_true(dl > 0);
        cl_str *s = cl_b64_encode(der, (size_t)dl, variant);
        json_array_append_new(arr, json_string(s));
        free(s);
        OPENSSL_free(der);
    }
    return arr;
}

static char *cert_pem(X509 *const *certs, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    for (size_t i = 0; i < n; i++)
        PEM_write_bio_X509(b, certs[i]);
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)len + 1);
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
    BIO_free(b);
    return out;
}

static void test_x509_chain(void **state)
{
    (void)state;
    const long day = 86400;
    X509 *root = make_cert("root", k_p384, NULL, NULL, true, -10 * day, 3650 * day);
    X509 *other_root = make_cert("other", k_p521, NULL, NULL, true, -10 * day, 3650 * day);
    X509 *inter = make_cert("inter", k_rsa, root, k_p384, true, -5 * day, 1000 * day);
    X509 *leaf = make_cert("leaf", k_p256, inter, k_rsa, false, -day, 30 * day);
    X509 *leaf_root = make_cert("leaf2", k_p256b, root, k_p384, false, -day, 30 * day);
    struct cl_err err = {0};
    CL_AUTO(cl_x509_store) *st = X509_STORE_new();
    CL_AUTO(cl_str) *rp = cert_pem(&root, 1);
    assert_int_equal(cl_x509_store_add_pem(st, rp, strlen(rp), &err), 0);
    assert_int_equal(cl_x509_store_add_pem(st, rp, strlen(rp), &err), 0); /* duplicate is fine */
    int64_t now = cl_now_unix();

    X509 *chain[] = {leaf, inter};
    static const enum cl_b64 variants[] = {CL_B64_STD, CL_B64_URL};
    for (size_t v = 0; v < 2; v++) {
        CL_AUTO(json_t) *x5c = x5c_of(chain, 2, variants[v]);
        cl_pkey *lk = NULL;
        assert_int_equal(cl_x509_verify_x5c(x5c, st, 0, &lk, &err), 0);
        assert_true(cl_pkey_public_equal(lk, k_p256));
        EVP_PKEY_free(lk);
        lk = NULL;
        assert_int_equal(cl_x509_verify_x5c(x5c, st, now + 10 * day, &lk, &err), 0);
        EVP_PKEY_free(lk);
    }
    /* tamper twins */
    static const struct {
        const char *name;
        int which; /* 0 leaf+inter, 1 leaf only, 2 inter+leaf (order), 3 leaf_root alone */
        long at;
        int code;
    } cases[] = {
        {"after leaf expiry", 0, 31, CL_EVERIFY},
        {"before leaf validity", 0, -2, CL_EVERIFY},
        {"intermediate missing", 1, 0, CL_EVERIFY},
        {"intermediate first: it verifies, as itself", 2, 0, 0},
        {"leaf directly under root", 3, 0, 0},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        X509 *c0[] = {leaf, inter}, *c1[] = {leaf}, *c2[] = {inter, leaf}, *c3[] = {leaf_root};
        X509 *const *sets[] = {c0, c1, c2, c3};
        size_t ns[] = {2, 1, 2, 1};
        CL_AUTO(json_t) *x5c = x5c_of(sets[cases[i].which], ns[cases[i].which], CL_B64_STD);
        cl_pkey *lk = NULL;
        int rc = cl_x509_verify_x5c(x5c, st, cases[i].at ? now + cases[i].at * day : 0, &lk, &err);
        if (rc != cases[i].code)
            fail_msg("%s: got %s (%s)", cases[i].name, cl_err_name(rc), err.msg);
        if (rc == 0) /* the returned key is always the first certificate's */
            assert_true(cl_pkey_public_equal(lk, cases[i].which == 2   ? k_rsa
                                                 : cases[i].which == 3 ? k_p256b
                                                                       : k_p256));
        else
            assert_null(lk);
        EVP_PKEY_free(lk);
    }
    /* wrong anchor */
    CL_AUTO(cl_x509_store) *st2 = X509_STORE_new();
    CL_AUTO(cl_str) *op = cert_pem(&other_root, 1);
    assert_int_equal(cl_x509_store_add_pem(st2, op, strlen(op), &err), 0);
    CL_AUTO(json_t) *x5c = x5c_of(chain, 2, CL_B64_STD);
    cl_pkey *lk = NULL;
    assert_int_equal(cl_x509_verify_x5c(x5c, st2, 0, &lk, &err), CL_EVERIFY);
    assert_null(lk);

    /* malformed x5c */
    static const struct {
        const char *name, *json;
        int code;
    } bad[] = {
        {"not an array", "\"MIIB\"", CL_EPARSE},
        {"empty", "[]", CL_EVERIFY},
        {"entry number", "[1]", CL_EPARSE},
        {"entry bad base64", "[\"MII*\"]", CL_EPARSE},
        {"entry not DER", "[\"AAAA\"]", CL_EPARSE},
        {"17 entries",
         "[\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\",\"A\","
         "\"A\",\"A\",\"A\"]",
         CL_ELIMIT},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *j = J(bad[i].json);
        int rc = cl_x509_verify_x5c(j, st, 0, &lk, &err);
        if (rc != bad[i].code)
            fail_msg("%s: got %s (%s)", bad[i].name, cl_err_name(rc), err.msg);
    }
    /* DER followed by junk */
    {
        unsigned char *der = NULL;
        int dl = i2d_X509(leaf, &der);
        uint8_t *buf = malloc((size_t)dl + 1);
        memcpy(buf, der, (size_t)dl);
        buf[dl] = 0;
        cl_str *s = cl_b64_encode(buf, (size_t)dl + 1, CL_B64_STD);
        CL_AUTO(json_t) *j = json_pack("[s]", s);
        assert_int_equal(cl_x509_verify_x5c(j, st, 0, &lk, &err), CL_EPARSE);
        free(s);
        free(buf);
        OPENSSL_free(der);
    }
    assert_int_equal(cl_x509_verify_x5c(x5c, NULL, 0, &lk, &err), CL_EINVAL);

    /* PEM chain file -> x5c (standard base64) -> verifies */
    char path[] = "/tmp/cl-test-x5c-XXXXXX";
    int fd = mkstemp(path);
    CL_AUTO(cl_str) *cp = cert_pem(chain, 2);
    assert_int_equal(write(fd, cp, strlen(cp)), (ssize_t)strlen(cp));
    close(fd);
    CL_AUTO(json_t) *fromfile = cl_x509_pem_to_x5c(path, &err);
    assert_non_null(fromfile);
    assert_int_equal(json_array_size(fromfile), 2);
    assert_null(strchr(json_string_value(json_array_get(fromfile, 0)), '_'));
    assert_true(json_equal(fromfile, x5c));
    const char *paths[] = {path};
    CL_AUTO(cl_x509_store) *st3 = cl_x509_store_load(paths, 1, &err);
    assert_non_null(st3);
    unlink(path);
    const char *missing[] = {"/nonexistent/trust.pem"};
    assert_null(cl_x509_store_load(missing, 1, &err));
    assert_int_equal(err.code, CL_ENOTFOUND);
    assert_null(cl_x509_pem_to_x5c("/nonexistent/chain.pem", &err));
    assert_int_equal(cl_x509_store_add_pem(st, "no pem here", 11, &err), CL_ENOTFOUND);
    static const char broken[] =
        "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    assert_int_equal(cl_x509_store_add_pem(st, broken, strlen(broken), &err), CL_EPARSE);
    /* positive twin after the broken one: the store still verifies */
    assert_int_equal(cl_x509_verify_x5c(x5c, st, 0, &lk, &err), 0);
    EVP_PKEY_free(lk);

    X509_free(root);
    X509_free(other_root);
    X509_free(inter);
    X509_free(leaf);
    X509_free(leaf_root);
}

/* trustee kbs/test_data/jwk: JWK endorsement through x5c, as kbs/src/crypto/jwt.rs does it:
 * x5c required, chain verified to the trust PEM, leaf key equal to the JWK. */
static int jwk_endorsed(const char *jwk_path, const char *trust_path, struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *buf = cl_file_read(jwk_path, 1 << 20, &len, err);
    assert_non_null(buf);
    CL_AUTO(json_t) *jwk = cl_json_parse((const char *)buf, len, 16, err);
    assert_non_null(jwk);
    CL_AUTO(cl_pkey) *key = cl_jwk_to_pkey(jwk, err);
    if (!key)
        return err->code;
    json_t *x5c = json_object_get(jwk, "x5c");
    if (!x5c)
        return cl_err_set(err, CL_EVERIFY, "no x5c");
    const char *paths[] = {trust_path};
    CL_AUTO(cl_x509_store) *st = cl_x509_store_load(paths, 1, err);
    assert_non_null(st);
    CL_AUTO(cl_pkey) *leaf = NULL;
    int64_t at = 1798761600; /* 2027-01-01, inside the fixtures' validity */
    int rc = cl_x509_verify_x5c(x5c, st, at, &leaf, err);
    if (rc < 0)
        return rc;
    if (!cl_pkey_public_equal(leaf, key))
        return cl_err_set(err, CL_EVERIFY, "jwk is not the leaf key");
    return 0;
}

static void test_trustee_jwk_scenarios(void **state)
{
    (void)state;
    static const bool expect_ok[] = {true, false, false, false, true, true, true};
    char *probe = vector_path("trustee/kbs/test_data/jwk/scenario01-jwk.json");
    if (!probe)
        skip();
    free(probe);
    for (int i = 0; i < 7; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "trustee/kbs/test_data/jwk/scenario%02d-jwk.json", i + 1);
        CL_AUTO(cl_str) *jp = vector_path(rel);
        snprintf(rel, sizeof rel, "trustee/kbs/test_data/jwk/scenario%02d-trust.pem", i + 1);
        CL_AUTO(cl_str) *tp = vector_path(rel);
        assert_non_null(jp);
        assert_non_null(tp);
        struct cl_err err = {0};
        int rc = jwk_endorsed(jp, tp, &err);
        if ((rc == 0) != expect_ok[i])
            fail_msg("scenario%02d: expected %s, got %s (%s)", i + 1,
                     expect_ok[i] ? "pass" : "fail", cl_err_name(rc), err.msg);
    }
}

static void test_trustee_jwks_fixture(void **state)
{
    (void)state;
    CL_AUTO(cl_str) *kp =
        vector_path("trustee/attestation-service/tests/fixtures/jwk/signing-key.pem");
    CL_AUTO(cl_str) *cp =
        vector_path("trustee/attestation-service/tests/fixtures/jwk/cert-chain.pem");
    CL_AUTO(cl_str) *ep =
        vector_path("trustee/attestation-service/tests/fixtures/jwk/expected-jwks.json");
    if (!kp || !cp || !ep)
        skip();
    struct cl_err err = {0};
    CL_AUTO(cl_pkey) *k = cl_pkey_load_pem(kp, true, &err);
    assert_non_null(k);
    CL_AUTO(json_t) *jwk = cl_jwk_from_pkey(k, false, "ES256", &err);
    assert_non_null(jwk);
    CL_AUTO(json_t) *x5c = cl_x509_pem_to_x5c(cp, &err);
    assert_non_null(x5c);
    assert_int_equal(json_object_set(jwk, "x5c", x5c), 0);
    size_t len = 0;
    CL_AUTO(cl_bytes) *buf = cl_file_read(ep, 1 << 16, &len, &err);
    CL_AUTO(json_t) *want = cl_json_parse((const char *)buf, len, 16, &err);
    assert_non_null(want);
    json_t *wk = json_array_get(json_object_get(want, "keys"), 0);
    assert_non_null(wk);
    if (!json_equal(jwk, wk)) {
        CL_AUTO(cl_str) *got = cl_json_compact(jwk);
        fail_msg("JWK differs: %s", got);
    }
    /* and the fixture's x5c (self-signed) verifies against itself, its leaf being the key */
    const char *paths[] = {cp};
    CL_AUTO(cl_x509_store) *st = cl_x509_store_load(paths, 1, &err);
    CL_AUTO(cl_pkey) *leaf = NULL;
    assert_int_equal(cl_x509_verify_x5c(json_object_get(wk, "x5c"), st, 1798761600, &leaf, &err),
                     0);
    assert_true(cl_pkey_public_equal(leaf, k));
    /* tamper twin: the same JWK with y changed is another key, or none */
    json_object_set_new(wk, "y", json_string("eba_t8dP5Et0TPv0jdtCWba8l78-lTtyJSwWq0q0IQE"));
    CL_AUTO(cl_pkey) *k2 = cl_jwk_to_pkey(wk, &err);
    assert_true(!k2 || !cl_pkey_public_equal(k2, k));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_pkey_generate),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_pem_rejects),
        cmocka_unit_test(test_pem_file),
        cmocka_unit_test(test_jwk_round_trip),
        cmocka_unit_test(test_jwk_fixed_length),
        cmocka_unit_test(test_jwk_rejects),
        cmocka_unit_test(test_jwk_thumbprint),
        cmocka_unit_test(test_jws_round_trip),
        cmocka_unit_test(test_jws_key_mismatch),
        cmocka_unit_test(test_jws_refused_algs),
        cmocka_unit_test(test_jws_parse_rejects),
        cmocka_unit_test(test_jws_rfc_examples),
        cmocka_unit_test(test_sig_raw),
        cmocka_unit_test(test_jwe_round_trip),
        cmocka_unit_test(test_jwe_text),
        cmocka_unit_test(test_jwe_protected_exact),
        cmocka_unit_test(test_jwe_tamper),
        cmocka_unit_test(test_jwe_rsa1_5_no_oracle),
        cmocka_unit_test(test_jwe_epk),
        cmocka_unit_test(test_jwe_decrypt_rejects),
        cmocka_unit_test(test_jwe_encrypt_rejects),
        cmocka_unit_test(test_x509_chain),
        cmocka_unit_test(test_trustee_jwk_scenarios),
        cmocka_unit_test(test_trustee_jwks_fixture),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
