/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Arm CCA verifier: trustee's example token (cca-example-token.cbor) with its trust-anchor
 * and reference-value stores, verified at the pinned time with the recorded realm challenge,
 * and its tamper twins — a flipped byte in each signed payload and each signature, a wrong
 * challenge and personalisation value, a truncated token, a missing or wrong CPAK, a
 * reference value that differs, a RAK that the platform token does not bind. With the
 * (public, test-only) CPAK and RAK private keys of the vectors the token is also re-signed
 * around a fresh challenge, as the KBS flow needs, and that verifies too.
 */
#include "tee_test.h"

#include "crypto/crypto.h"
#include "tee/cca/cca.h"
#include "tee/tee_int.h"

#define CCA "deps/verifier/test_data/cca/"

static char *tmp;
static struct cl_tee_config cfg;

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    tmp = tt_tmpdir();
    cfg = (struct cl_tee_config){.verify_time = TT_TIME,
                                 .cca_ta_store = strdup(tt_path(CCA "conf/tastore.json")),
                                 .cca_rv_store = strdup(tt_path(CCA "conf/rvstore.json"))};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free((void *)(uintptr_t)cfg.cca_ta_store);
    free((void *)(uintptr_t)cfg.cca_rv_store);
    tt_rmtree(tmp);
    free(tmp);
    return 0;
}

static json_t *evidence(const uint8_t *tok, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(tok[i]));
    return json_pack("{s:o}", "token", a);
}

static uint8_t *token(size_t *n)
{
    return tt_read(CCA "misc/cca-example-token.cbor", n);
}

static struct cl_cca_token parsed(const uint8_t *tok, size_t n)
{
    struct cl_cca_token t;
    struct cl_err e = {0};
    if (cl_cca_token_parse(tok, n, &t, &e) < 0)
        fail_msg("parse: %s", e.msg);
    return t;
}

/* Offset of a borrowed field inside the token buffer. */
static size_t off_of(const uint8_t *tok, const struct cl_cca_bytes *b)
{
    return (size_t)(b->p - tok);
}

static void run(const char *name, const uint8_t *tok, size_t n, const uint8_t *rd, size_t rdl,
                const struct cl_tee_config *c, const char *want)
{
    CL_AUTO(json_t) *ev = evidence(tok, n);
    uint8_t idd[32] = {0};
    json_t *cl = tt_expect(name, "cca", ev, rd, rdl, idd, sizeof idd, c, want);
    json_decref(cl);
}

static void test_parse(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *tok = token(&n);
    struct cl_cca_token t = parsed(tok, n);
    assert_int_equal(t.platform_cose.alg, -35);
    assert_int_equal(t.realm_cose.alg, -35);
    assert_int_equal(t.platform.nsw, 13);
    assert_int_equal(t.platform.lifecycle, 12291);
    assert_int_equal(t.platform.challenge.n, 32);
    assert_int_equal(t.platform.instance_id.n, 33);
    assert_int_equal(t.realm.nrem, 4);
    assert_int_equal(t.realm.rim.n, 64);
    assert_int_equal(t.realm.rak.n, 97);
    assert_memory_equal(t.platform.sw[0].type.p, "RSE_BL1_2", 9);
    assert_memory_equal(t.realm.rak_hash_algo.p, "sha-512", 7);

    /* truncations at every length are refused at parse, never read past the end */
    for (size_t k = 0; k < n; k += 7) {
        struct cl_cca_token x;
        struct cl_err e = {0};
        assert_true(cl_cca_token_parse(tok, k, &x, &e) < 0);
        assert_string_equal(e.stage, CL_TEE_STAGE_PARSE);
    }
    /* malformed CBOR: indefinite length, deep nesting, huge counts, wrong tag */
    static const struct {
        const char *name, *hex;
    } bad[] = {
        {"indefinite map", "d9018fbf"},           {"wrong tag", "d9018ea0"},
        {"huge map", "d9018fbb0000000100000000"}, {"string past end", "d9018fa119acca5a00010000"},
        {"empty collection", "d9018fa0"},         {"unknown member", "d9018fa10140"},
        {"trailing byte", "d9018fa000"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        uint8_t b[64];
        size_t bl = tt_unhex(bad[i].hex, b, sizeof b);
        struct cl_cca_token x;
        struct cl_err e = {0};
        if (cl_cca_token_parse(b, bl, &x, &e) == 0)
            fail_msg("%s: accepted", bad[i].name);
        assert_string_equal(e.stage, CL_TEE_STAGE_PARSE);
    }
    uint8_t deep[40];
    for (size_t i = 0; i < sizeof deep; i++)
        deep[i] = 0x81; /* [[[[...]]]] */
    struct cl_cca_cbor c = cl_cca_cbor_init(deep, sizeof deep);
    struct cl_err e = {0};
    assert_int_equal(cl_cca_cbor_skip(&c, "deep", &e), CL_ELIMIT);
}

static void test_vector(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *tok = token(&n);
    struct cl_cca_token t = parsed(tok, n);
    uint8_t rd[64];
    memcpy(rd, t.realm.challenge.p, 64);

    CL_AUTO(json_t) *ev = evidence(tok, n);
    uint8_t idd[32] = {0};
    CL_AUTO(json_t) *claims =
        tt_expect("vector", "cca", ev, rd, sizeof rd, idd, sizeof idd, &cfg, NULL);
    /* every claim name of trustee's cca-claims.json is produced, with its JSON type */
    CL_AUTO(json_t) *golden = tt_json("deps/verifier/test_data/cca-claims.json");
    const char *k;
    json_t *v;
    json_object_foreach(golden, k, v)
    {
        json_t *mine = json_object_get(claims, k);
        if (!mine || json_typeof(mine) != json_typeof(v))
            fail_msg("claim %s missing or of another type", k);
        const char *k2;
        json_t *v2;
        if (json_is_object(v))
            json_object_foreach(v, k2, v2)
            {
                json_t *m2 = json_object_get(mine, k2);
                if (!m2 || json_typeof(m2) != json_typeof(v2))
                    fail_msg("claim %s.%s missing or of another type", k, k2);
            }
    }
    assert_string_equal(
        json_string_value(json_object_get(claims, "report_data")),
        "57e979ae2618de0c1ab73144c440d741cf9236dc9d52ed190053382a4d190252f9f0370403c35dcb155fb4362d"
        "73c66d5b0494bf939315d3dc52b8cdc8b85a96");
    json_t *realm = json_object_get(claims, "realm");
    CL_AUTO(cl_str) *rim = cl_b64_encode(t.realm.rim.p, 64, CL_B64_STD);
    assert_string_equal(json_string_value(json_object_get(realm, "cca-realm-initial-measurement")),
                        rim);
    assert_int_equal(json_array_size(json_object_get(realm, "cca-realm-extensible-measurements")),
                     4);
    json_t *plat = json_object_get(claims, "platform");
    assert_int_equal(json_integer_value(json_object_get(plat, "cca-platform-lifecycle")), 12291);
    assert_int_equal(json_array_size(json_object_get(plat, "cca-platform-sw-components")), 13);
    assert_string_equal(json_string_value(json_object_get(plat, "cca-platform-profile")),
                        "http://arm.com/CCA-SSD/1.0.0");

    /* without a reference-value store the measurements go to the policy only */
    struct cl_tee_config norv = cfg;
    norv.cca_rv_store = NULL;
    run("no rv store", tok, n, rd, sizeof rd, &norv, NULL);
    /* inspection (no report data) still verifies every signature */
    run("no report data", tok, n, NULL, 0, &cfg, NULL);
    /* the table entry is what the KBS and the CLI reach */
    assert_non_null(cl_tee_verifier_find("cca"));
    assert_true(cl_tee_id_known("cca"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_tamper(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *tok = token(&n);
    struct cl_cca_token t = parsed(tok, n);
    uint8_t rd[64];
    memcpy(rd, t.realm.challenge.p, 64);
    uint8_t *x = malloc(n);
    struct {
        const char *name;
        size_t off;
        const char *stage;
    } flips[] = {
        {"platform sw measurement", off_of(tok, &t.platform.sw[3].measurement) + 5,
         CL_TEE_STAGE_CHAIN},
        {"platform config", off_of(tok, &t.platform.config), CL_TEE_STAGE_CHAIN},
        {"platform challenge", off_of(tok, &t.platform.challenge) + 1, CL_TEE_STAGE_SIGNATURE},
        {"platform signature", off_of(tok, &t.platform_cose.signature) + 10, CL_TEE_STAGE_CHAIN},
        {"platform protected header", off_of(tok, &t.platform_cose.protected_hdr) + 1,
         CL_TEE_STAGE_PARSE},
        {"realm RIM", off_of(tok, &t.realm.rim) + 7, CL_TEE_STAGE_SIGNATURE},
        {"realm REM 2", off_of(tok, &t.realm.rem[2]), CL_TEE_STAGE_SIGNATURE},
        {"realm RAK", off_of(tok, &t.realm.rak) + 20, CL_TEE_STAGE_SIGNATURE},
        {"realm signature", off_of(tok, &t.realm_cose.signature) + 50, CL_TEE_STAGE_SIGNATURE},
        {"realm challenge", off_of(tok, &t.realm.challenge) + 2, CL_TEE_STAGE_BIND},
        {"realm personalisation value", off_of(tok, &t.realm.personalization) + 9,
         CL_TEE_STAGE_INIT_DATA},
        {"collection tag", 1, CL_TEE_STAGE_PARSE},
        {"platform profile", off_of(tok, &t.platform.profile) + 7, CL_TEE_STAGE_PARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(flips); i++) {
        memcpy(x, tok, n);
        x[flips[i].off] ^= 0x01;
        run(flips[i].name, x, n, rd, sizeof rd, &cfg, flips[i].stage);
    }
    free(x);
    run("truncated", tok, n - 1, rd, sizeof rd, &cfg, CL_TEE_STAGE_PARSE);
    uint8_t wrong[64];
    memcpy(wrong, rd, 64);
    wrong[63] ^= 0x80;
    run("wrong challenge", tok, n, wrong, sizeof wrong, &cfg, CL_TEE_STAGE_BIND);

    /* trust anchors: none configured, none for this instance, another key, another implementation
     */
    struct cl_tee_config c2 = cfg;
    c2.cca_ta_store = NULL;
    run("no ta store", tok, n, rd, sizeof rd, &c2, CL_TEE_STAGE_CHAIN);
    char p1[4200], p2[4200], p3[4200], p4[4200];
    snprintf(p1, sizeof p1, "%s/ta-other-instance.json", tmp);
    write_file(p1, "[{\"pkey\":{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":"
                   "\"IShnxS4rlQiwpCCpBWDzlNLfqiG911FP8akBr-fh94uxHU5m-"
                   "Kijivp2r2oxxN6M\",\"y\":\"hM4tr8mWQli1P61xh3T0ViDREbF26DGOEYfbAjWjGNN7pZf-"
                   "6A4OTHYqEryz6m7U\"},"
                   "\"instance-id\":\"01aa\"}]");
    c2.cca_ta_store = p1;
    run("unknown instance", tok, n, rd, sizeof rd, &c2, CL_TEE_STAGE_CHAIN);
    snprintf(p2, sizeof p2, "%s/ta-rak-as-cpak.json", tmp);
    write_file(
        p2,
        "[{\"pkey\":{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"dvmICRvlhe1BgBrs-"
        "rhYVIxjBX4WsOZ2Egu9DS-cKeBWxdQaATDr"
        "nCFReJncIxRr\",\"y\":\"KOGwYr0-pLMV_SGfHLtSjLbnTKSb4Wdzc09hocphAxsrvz2Rjy-U_8QijlCRlUSu\"}"
        ","
        "\"instance-id\":\"0107060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918\"}]");
    c2.cca_ta_store = p2;
    run("swapped CPAK", tok, n, rd, sizeof rd, &c2, CL_TEE_STAGE_CHAIN);
    snprintf(p3, sizeof p3, "%s/ta-other-impl.json", tmp);
    write_file(
        p3,
        "[{\"pkey\":{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":"
        "\"IShnxS4rlQiwpCCpBWDzlNLfqiG911FP8akBr-fh94uxHU5m-"
        "Kijivp2r2oxxN6M\",\"y\":\"hM4tr8mWQli1P61xh3T0ViDREbF26DGOEYfbAjWjGNN7pZf-"
        "6A4OTHYqEryz6m7U\"},"
        "\"implementation-id\":\"00\","
        "\"instance-id\":\"0107060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918\"}]");
    c2.cca_ta_store = p3;
    run("other implementation id", tok, n, rd, sizeof rd, &c2, CL_TEE_STAGE_CHAIN);

    /* reference values: one measurement differs, the RIM differs */
    size_t rn = 0;
    CL_AUTO(cl_bytes) *rv = tt_read(CCA "conf/rvstore.json", &rn);
    char *s = strndup((const char *)rv, rn);
    char *m = strstr(s, "9a271f2a916b");
    m[0] = '8';
    snprintf(p4, sizeof p4, "%s/rv-sw.json", tmp);
    write_file(p4, s);
    c2 = cfg;
    c2.cca_rv_store = p4;
    run("rv sw component", tok, n, rd, sizeof rd, &c2, CL_TEE_STAGE_TCB);
    m[0] = '9';
    m = strstr(s, "ae87fbf7f105");
    m[1] = 'f';
    write_file(p4, s);
    run("rv realm RIM", tok, n, rd, sizeof rd, &c2, CL_TEE_STAGE_TCB);
    free(s);
}

/* Re-signs a COSE_Sign1 in place (the signature has a fixed length). */
static void resign(uint8_t *tok, size_t n, bool realm, cl_pkey *key)
{
    struct cl_cca_token t = parsed(tok, n);
    const struct cl_cca_cose_sign1 *s = realm ? &t.realm_cose : &t.platform_cose;
    size_t tl = 0;
    CL_AUTO(cl_bytes) *tbs = cl_cca_cose_tbs(s, &tl);
    cl_bytes *sig = NULL;
    size_t sl = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_sig_sign(key, "ES384", tbs, tl, &sig, &sl, &e), 0);
    assert_int_equal(sl, s->signature.n);
    memcpy(tok + off_of(tok, &s->signature), sig, sl);
    free(sig);
}

static cl_pkey *jwk_key(const char *rel)
{
    CL_AUTO(json_t) *j = tt_json(rel);
    struct cl_err e = {0};
    cl_pkey *k = cl_jwk_to_pkey(j, &e);
    if (!k)
        fail_msg("%s: %s", rel, e.msg);
    return k;
}

static void test_fresh_challenge(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *tok = token(&n);
    struct cl_cca_token t = parsed(tok, n);
    CL_AUTO(cl_pkey) *cpak = jwk_key(CCA "misc/cpak-priv.json");
    CL_AUTO(cl_pkey) *rak = jwk_key(CCA "misc/rak-priv.json");
    /* the KBS flow: the realm challenge is the runtime-data digest regularised to 64 bytes */
    uint8_t d[48], rd[64], old[64];
    memcpy(old, t.realm.challenge.p, 64);
    struct cl_err e = {0};
    assert_int_equal(cl_digest(CL_HASH_SHA384, "fresh KBS nonce", 15, d, &e), 0);
    cl_tee_regularize(d, sizeof d, rd, sizeof rd);
    memcpy(tok + off_of(tok, &t.realm.challenge), rd, 64);
    run("stale realm signature", tok, n, d, sizeof d, &cfg, CL_TEE_STAGE_SIGNATURE);
    resign(tok, n, true, rak);
    run("fresh challenge", tok, n, d, sizeof d, &cfg, NULL);
    run("fresh challenge, replayed nonce", tok, n, old, 64, &cfg, CL_TEE_STAGE_BIND);

    /* a realm signed by another key whose hash the platform token does not carry */
    CL_AUTO(cl_pkey) *other = cl_pkey_generate("P-384", &e);
    assert_non_null(other);
    CL_AUTO(json_t) *jwk = cl_jwk_from_pkey(other, false, NULL, &e);
    size_t xl = 0, yl = 0;
    CL_AUTO(cl_bytes) *x =
        cl_b64_decode(json_string_value(json_object_get(jwk, "x")), 64, CL_B64_URL, 48, &xl, &e);
    CL_AUTO(cl_bytes) *y =
        cl_b64_decode(json_string_value(json_object_get(jwk, "y")), 64, CL_B64_URL, 48, &yl, &e);
    assert_true(xl == 48 && yl == 48);
    size_t ro = off_of(tok, &t.realm.rak);
    memcpy(tok + ro + 1, x, 48);
    memcpy(tok + ro + 49, y, 48);
    resign(tok, n, true, other);
    run("unbound RAK", tok, n, d, sizeof d, &cfg, CL_TEE_STAGE_SIGNATURE);
    /* bind it: the platform challenge = SHA-256 of the new RAK, platform re-signed by the CPAK */
    uint8_t h[32];
    assert_int_equal(cl_digest(CL_HASH_SHA256, tok + ro, 97, h, &e), 0);
    memcpy(tok + off_of(tok, &t.platform.challenge), h, 32);
    run("bound RAK, stale platform signature", tok, n, d, sizeof d, &cfg, CL_TEE_STAGE_CHAIN);
    resign(tok, n, false, cpak);
    run("bound RAK, platform re-signed", tok, n, d, sizeof d, &cfg, NULL);
    /* ... and signed by a key that is not the CPAK */
    resign(tok, n, false, rak);
    run("platform signed by the RAK", tok, n, d, sizeof d, &cfg, CL_TEE_STAGE_CHAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_fresh_challenge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
