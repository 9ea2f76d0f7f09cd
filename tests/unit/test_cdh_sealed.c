/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealed secrets: the generated vectors (ES256 over header.payload, verified with upstream's
 * test-key.json; the wrong-key and tampered twins fail; the legacy unsigned form parses only
 * when asked), our own seal/verify round trip, the envelope (kbs provider) through an
 * offline hub, and one case per parse rejection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdh/cdh.h"

static char g_vec[512];

static bool vectors(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    if (!v)
        return false;
    snprintf(g_vec, sizeof g_vec, "%s/guest-components", v);
    char p[600];
    snprintf(p, sizeof p, "%s/generated/sealed-secret/vectors.json", g_vec);
    return access(p, R_OK) == 0;
}

static json_t *vjson(const char *rel)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", g_vec, rel);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(p, 1u << 20, &n, NULL);
    assert_non_null(b);
    json_t *j = cl_json_parse((const char *)b, n, 16, NULL);
    assert_non_null(j);
    return j;
}

static void test_vectors(void **state)
{
    if (!vectors())
        skip();
    CL_AUTO(json_t) *v = vjson("generated/sealed-secret/vectors.json");
    CL_AUTO(json_t) *kj = vjson("confidential-data-hub/hub/src/secret/tests/test-key.json");
    CL_AUTO(cl_pkey) *key = cl_jwk_to_pkey(kj, NULL);
    assert_non_null(key);
    size_t i;
    json_t *c;
    int seen = 0;
    json_array_foreach(json_object_get(v, "cases"), i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *sealed = json_string_value(json_object_get(c, "sealed"));
        struct cl_cdh_sealed s;
        struct cl_err e = {0};
        if (strcmp(name, "legacy_unsigned_fake_header") == 0) {
            assert_int_not_equal(cl_cdh_sealed_parse(sealed, strlen(sealed), false, &s, &e), 0);
            assert_int_equal(cl_cdh_sealed_parse(sealed, strlen(sealed), true, &s, &e), 0);
            assert_int_equal(cl_cdh_sealed_verify(&s, key, &e), CL_EVERIFY); /* nothing to verify */
            cl_cdh_sealed_clear(&s);
            seen++;
            continue;
        }
        assert_int_equal(cl_cdh_sealed_parse(sealed, strlen(sealed), false, &s, &e), 0);
        assert_string_equal(s.kid, "test-key");
        int rc = cl_cdh_sealed_verify(&s, key, &e);
        if (strcmp(name, "vault_signed_ok") == 0) {
            assert_int_equal(rc, 0);
            assert_true(json_equal(s.payload, json_object_get(c, "payload")));
        } else {
            assert_int_equal(rc, CL_EVERIFY);
        }
        cl_cdh_sealed_clear(&s);
        seen++;
    }
    assert_int_equal(seen, 4);
    /* upstream's payload fixtures parse as payloads */
    static const char *const fixtures[] = {"vault-1.json", "vault-2.json", "envelope-1.json"};
    CL_AUTO(cl_pkey) *k = cl_pkey_generate("P-256", NULL);
    for (size_t f = 0; f < CL_ARRAY_LEN(fixtures); f++) {
        char rel[200];
        snprintf(rel, sizeof rel, "confidential-data-hub/hub/src/secret/tests/%s", fixtures[f]);
        CL_AUTO(json_t) *p = vjson(rel);
        struct cl_err e = {0};
        CL_AUTO(cl_str) *s = cl_cdh_seal(p, k, "kid", &e);
        if (!s)
            fail_msg("%s: %s", fixtures[f], e.msg);
    }
}

static void test_roundtrip_and_tamper(void **state)
{
    CL_AUTO(cl_pkey) *k = cl_pkey_generate("P-256", NULL);
    CL_AUTO(cl_pkey) *other = cl_pkey_generate("P-256", NULL);
    CL_AUTO(json_t) *p =
        json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{}}", "version", "0.1.0", "type", "vault", "name",
                  "kbs:///a/b/c", "provider", "kbs", "provider_settings", "annotations");
    CL_AUTO(cl_str) *s = cl_cdh_seal(p, k, "kbs:///default/keys/signer", NULL);
    assert_non_null(s);
    assert_memory_equal(s, "sealed.", 7);
    struct cl_cdh_sealed out;
    assert_int_equal(cl_cdh_sealed_parse(s, strlen(s), false, &out, NULL), 0);
    assert_int_equal(cl_cdh_sealed_verify(&out, k, NULL), 0);
    assert_int_equal(cl_cdh_sealed_verify(&out, other, NULL), CL_EVERIFY);
    CL_AUTO(cl_pkey) *rsa = cl_pkey_generate("RSA-2048", NULL);
    struct cl_err e = {0};
    assert_int_equal(cl_cdh_sealed_verify(&out, rsa, &e), CL_EVERIFY);
    assert_non_null(strstr(e.msg, "P-256"));
    CL_AUTO(cl_pkey) *p384 = cl_pkey_generate("P-384", NULL);
    assert_int_equal(cl_cdh_sealed_verify(&out, p384, &e), CL_EVERIFY);
    cl_cdh_sealed_clear(&out);
    /* flip one character of the payload part */
    char *dot = strchr(s + 7, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    if (cl_cdh_sealed_parse(s, strlen(s), false, &out, NULL) == 0) {
        assert_int_equal(cl_cdh_sealed_verify(&out, k, NULL), CL_EVERIFY);
        cl_cdh_sealed_clear(&out);
    }
}

static cl_str *sign_raw(cl_pkey *k, const char *hdr, const char *payload)
{
    CL_AUTO(cl_str) *h = cl_b64_encode(hdr, strlen(hdr), CL_B64_URL);
    CL_AUTO(cl_str) *p = cl_b64_encode(payload, strlen(payload), CL_B64_URL);
    CL_AUTO(cl_str) *si = cl_strdupf("%s.%s", h, p);
    cl_bytes *sig = NULL;
    size_t sl = 0;
    assert_int_equal(cl_sig_sign(k, "ES256", si, strlen(si), &sig, &sl, NULL), 0);
    CL_AUTO(cl_str) *s64 = cl_b64_encode(sig, sl, CL_B64_URL);
    free(sig);
    return cl_strdupf("sealed.%s.%s", si, s64);
}

static void test_parse_rejects(void **state)
{
    CL_AUTO(cl_pkey) *k = cl_pkey_generate("P-256", NULL);
    static const char *const ok_hdr = "{\"alg\":\"ES256\",\"kid\":\"k\"}";
    static const struct {
        const char *hdr, *payload, *msg;
    } cases[] = {
        {"{\"alg\":\"ES384\",\"kid\":\"k\"}", "{}", "ES256"},
        {"{\"alg\":\"ES256\"}", "{}", "kid"},
        {"{\"alg\":\"ES256\",\"kid\":\"\"}", "{}", "empty kid"},
        {"{\"alg\":\"ES256\",\"kid\":7}", "{}", "kid"},
        {NULL, "[1]", "not a JSON object"},
        {NULL, "not json", "payload"},
        {NULL, "{\"type\":\"vault\"}", "version"},
        {NULL, "{\"version\":\"0.2.0\",\"type\":\"vault\"}", "0.1.0"},
        {NULL, "{\"version\":\"0.1.0\",\"type\":\"other\"}", "vault or envelope"},
        {NULL,
         "{\"version\":\"0.1.0\",\"type\":\"vault\",\"provider\":\"kbs\",\"provider_settings\":{}}",
         "name"},
        {NULL, "{\"version\":\"0.1.0\",\"type\":\"vault\",\"name\":\"n\",\"provider_settings\":{}}",
         "provider"},
        {NULL, "{\"version\":\"0.1.0\",\"type\":\"vault\",\"name\":\"n\",\"provider\":\"kbs\"}",
         "provider_settings"},
        {NULL,
         "{\"version\":\"0.1.0\",\"type\":\"vault\",\"name\":\"n\",\"provider\":\"kbs\",\"provider_"
         "settings\":{},"
         "\"annotations\":3}",
         "annotations"},
        {NULL,
         "{\"version\":\"0.1.0\",\"type\":\"envelope\",\"key_id\":\"k\",\"encrypted_key\":\"a\","
         "\"encrypted_data\":"
         "\"b\",\"wrap_type\":\"DES\",\"iv\":\"c\",\"provider\":\"kbs\",\"provider_settings\":{}}",
         "wrap_type"},
        {NULL,
         "{\"version\":\"0.1.0\",\"type\":\"envelope\",\"key_id\":\"k\",\"encrypted_data\":\"b\","
         "\"wrap_type\":"
         "\"A256GCM\",\"iv\":\"c\",\"provider\":\"kbs\",\"provider_settings\":{}}",
         "encrypted_key"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(cl_str) *s = sign_raw(k, cases[i].hdr ? cases[i].hdr : ok_hdr, cases[i].payload);
        struct cl_cdh_sealed out;
        struct cl_err e = {0};
        if (cl_cdh_sealed_parse(s, strlen(s), false, &out, &e) == 0 || !strstr(e.msg, cases[i].msg))
            fail_msg("case %zu accepted or wrong message: '%s'", i, e.msg);
    }
    struct cl_cdh_sealed out;
    struct cl_err e = {0};
    assert_int_equal(cl_cdh_sealed_parse("nope.a.b.c", 10, false, &out, &e), CL_EPARSE);
    assert_int_equal(cl_cdh_sealed_parse("sealed.a.b", 10, false, &out, &e), CL_EPARSE);
    assert_int_equal(cl_cdh_sealed_parse("sealed.a.b", 10, true, &out, &e),
                     CL_EPARSE); /* 3 parts */
    char *big = malloc(CL_CDH_MAX_SEALED + 8);
    memcpy(big, "sealed.", 7);
    memset(big + 7, 'a', CL_CDH_MAX_SEALED);
    assert_int_equal(cl_cdh_sealed_parse(big, CL_CDH_MAX_SEALED + 7, false, &out, &e), CL_ELIMIT);
    free(big);
}

/* An offline hub (offline_fs_kbc) serving a KEK and a verification key from a temp file. */
static void test_unseal_offline(void **state)
{
    char dir[] = "/tmp/cl-sealed-XXXXXX";
    assert_non_null(mkdtemp(dir));
    CL_AUTO(cl_pkey) *k = cl_pkey_generate("P-256", NULL);
    CL_AUTO(json_t) *pub = cl_jwk_from_pkey(k, false, NULL, NULL);
    CL_AUTO(cl_str) *pubtext = cl_json_compact(pub);
    CL_AUTO(cl_secret) *kek = cl_secret_new(32);
    assert_int_equal(cl_random(kek->data, 32, NULL), 0);
    CL_AUTO(cl_str) *kek64 = cl_b64_encode(kek->data, 32, CL_B64_STD);
    CL_AUTO(cl_str) *pub64 = cl_b64_encode(pubtext, strlen(pubtext), CL_B64_STD);
    CL_AUTO(cl_str) *val64 = cl_b64_encode("vault value", 11, CL_B64_STD);
    CL_AUTO(json_t) *map =
        json_pack("{s:s, s:s, s:s}", "r/kek/1", kek64, "r/signer/1", pub64, "r/val/1", val64);
    CL_AUTO(cl_str) *maptext = cl_json_compact(map);
    char mpath[128];
    snprintf(mpath, sizeof mpath, "%s/res.json", dir);
    assert_int_equal(cl_file_write_atomic(mpath, maptext, strlen(maptext), 0600, NULL), 0);
    struct cl_cdh_config cfg;
    char toml[512];
    snprintf(toml, sizeof toml, "[kbc]\nname = \"offline_fs_kbc\"\noffline_files = [\"%s\"]\n",
             mpath);
    assert_int_equal(cl_cdh_config_parse(toml, strlen(toml), &cfg, NULL), 0);
    struct cl_err e = {0};
    struct cl_cdh *cdh = cl_cdh_new(&cfg, &e);
    assert_non_null(cdh);
    /* envelope */
    CL_AUTO(json_t) *env = cl_cdh_envelope_make("kbs:///r/kek/1", kek, "envelope plain", 14, NULL);
    CL_AUTO(cl_str) *s = cl_cdh_seal(env, k, "kbs:///r/signer/1", NULL);
    CL_AUTO(cl_secret) *out = NULL;
    if (cl_cdh_unseal(cdh, s, strlen(s), &out, &e) < 0)
        fail_msg("unseal envelope: %s", e.msg);
    assert_int_equal(out->len, 14);
    assert_memory_equal(out->data, "envelope plain", 14);
    cl_secret_free(out);
    out = NULL;
    /* vault */
    CL_AUTO(json_t) *vault =
        json_pack("{s:s, s:s, s:s, s:s, s:{}}", "version", "0.1.0", "type", "vault", "name",
                  "kbs:///r/val/1", "provider", "KBS", "provider_settings");
    CL_AUTO(cl_str) *sv = cl_cdh_seal(vault, k, "kbs:///r/signer/1", NULL);
    assert_int_equal(cl_cdh_unseal(cdh, sv, strlen(sv), &out, &e), 0);
    assert_memory_equal(out->data, "vault value", 11);
    cl_secret_free(out);
    out = NULL;
    /* twins: another signer, an unknown kid, a cloud provider */
    CL_AUTO(cl_pkey) *other = cl_pkey_generate("P-256", NULL);
    CL_AUTO(cl_str) *s2 = cl_cdh_seal(vault, other, "kbs:///r/signer/1", NULL);
    assert_int_equal(cl_cdh_unseal(cdh, s2, strlen(s2), &out, &e), CL_EVERIFY);
    CL_AUTO(cl_str) *s3 = cl_cdh_seal(vault, k, "kbs:///r/signer/2", NULL);
    assert_int_equal(cl_cdh_unseal(cdh, s3, strlen(s3), &out, &e), CL_EVERIFY);
    json_object_set_new(vault, "provider", json_string("aliyun"));
    CL_AUTO(cl_str) *s4 = cl_cdh_seal(vault, k, "kbs:///r/signer/1", NULL);
    assert_int_equal(cl_cdh_unseal(cdh, s4, strlen(s4), &out, &e), CL_EUNSUPPORTED);
    /* an envelope whose data was altered */
    json_t *d = json_object_get(env, "encrypted_data");
    char *alt = strdup(json_string_value(d));
    alt[0] = alt[0] == 'A' ? 'B' : 'A';
    json_object_set_new(env, "encrypted_data", json_string(alt));
    free(alt);
    CL_AUTO(cl_str) *s5 = cl_cdh_seal(env, k, "kbs:///r/signer/1", NULL);
    assert_int_equal(cl_cdh_unseal(cdh, s5, strlen(s5), &out, &e), CL_EVERIFY);
    cl_cdh_free(cdh);
    cl_cdh_config_clear(&cfg);
    unlink(mpath);
    rmdir(dir);
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_roundtrip_and_tamper),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_unseal_offline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
