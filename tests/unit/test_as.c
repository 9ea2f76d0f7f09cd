/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/as (and the sample TEE): RVPS, AR4SI tiers, evaluation stages, init-data
 * claims, EAR token shape and signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "as/as_internal.h"
#include "tee/tee.h"

struct fx {
    struct cl_store *store;
    struct cl_as *as;
};

static int setup(void **state)
{
    static struct fx f;
    struct cl_err e = {0};
    f.store = cl_store_open("Memory", NULL, &e);
    struct cl_as_opts o = {.store = f.store, .allow_sample_insecure = true};
    f.as = cl_as_new(&o, &e);
    *state = &f;
    return f.as ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cl_as_free(f->as);
    cl_store_close(f->store);
    return 0;
}

static json_t *J(const char *s)
{
    json_t *v = cl_json_parse(s, strlen(s), 16, NULL);
    assert_non_null(v);
    return v;
}

static void test_rvps(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    /* {"launch_digest":["abcde"],"n":3} */
    CL_AUTO(json_t) *m = J("{\"version\":\"0.1.0\",\"type\":\"sample\",\"payload\":"
                           "\"eyJsYXVuY2hfZGlnZXN0IjpbImFiY2RlIl0sIm4iOjN9\"}");
    assert_int_equal(cl_as_rv_register(f->as, m, &e), 0);
    CL_AUTO(json_t) *v = cl_as_rv_query(f->as, "launch_digest", &e);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "abcde");
    CL_AUTO(json_t) *plain = J("{\"x\":[1,2]}");
    assert_int_equal(cl_as_rv_register(f->as, plain, &e), 0);
    CL_AUTO(json_t) *x = cl_as_rv_query(f->as, "x", &e);
    assert_int_equal(json_array_size(x), 2);
    assert_null(cl_as_rv_query(f->as, "nope", &e));
    assert_int_equal(e.code, CL_ENOTFOUND);
    static const struct {
        const char *msg;
        int code;
    } bad[] = {
        {"{\"version\":\"0.2.0\",\"type\":\"sample\",\"payload\":\"e30=\"}", CL_EPARSE},
        {"{\"version\":\"0.1.0\",\"type\":\"swid\",\"payload\":\"e30=\"}", CL_EUNSUPPORTED},
        {"{\"version\":\"0.1.0\",\"type\":\"sample\",\"payload\":\"not base64!\"}", CL_EPARSE},
        {"{\"version\":\"0.1.0\",\"type\":\"sample\",\"payload\":\"bm90IGpzb24=\"}", CL_EPARSE},
        {"{\"version\":\"0.1.0\",\"type\":\"sample\",\"payload\":\"WzFd\"}", CL_EPARSE}, /* [1] */
        {"{\"version\":\"0.1.0\",\"type\":\"sample\",\"payload\":\"e30=\"}", CL_EINVAL}, /* {} */
        {"{\"version\":\"0.1.0\",\"type\":\"sample\",\"payload\":3}", CL_EPARSE},
        {"{\"../x\":[1]}", CL_EINVAL},
        {"[]", CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *b = J(bad[i].msg);
        int rc = cl_as_rv_register(f->as, b, &e);
        if (rc != bad[i].code)
            fail_msg("rv message %zu: rc %d want %d (%s)", i, rc, bad[i].code, e.msg);
    }
    /* a message with one bad name stores nothing */
    CL_AUTO(json_t) *mixed = J("{\"good_one\":[1],\"bad/../x\":[2]}");
    assert_int_equal(cl_as_rv_register(f->as, mixed, &e), CL_EINVAL);
    assert_null(cl_as_rv_query(f->as, "good_one", &e));
    /* too many names */
    CL_AUTO(json_t) *many = json_object();
    for (int i = 0; i <= CL_AS_MAX_RV_NAMES; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(many, k, json_integer(i));
    }
    assert_int_equal(cl_as_rv_register(f->as, many, &e), CL_ELIMIT);
    /* expiry enforced */
    const char *rec = "{\"version\":\"0.1.0\",\"name\":\"old\",\"expiration\":\"2020-01-01T00:00:"
                      "00Z\",\"value\":[1]}";
    assert_int_equal(cl_store_set(f->store, CL_AS_NS_RV, "old", rec, strlen(rec), true, &e), 0);
    assert_null(cl_as_rv_query(f->as, "old", &e));
    assert_int_equal(e.code, CL_EEXPIRED);
}

static void test_tiers(void **state)
{
    (void)state;
    static const struct {
        const char *v, *status;
    } cases[] = {
        {"{\"a\":0,\"b\":1,\"c\":-1}", "none"},
        {"{\"a\":2,\"b\":0}", "affirming"},
        {"{\"a\":31,\"b\":-32}", "affirming"},
        {"{\"a\":32}", "warning"},
        {"{\"a\":-96,\"b\":3}", "warning"},
        {"{\"a\":96}", "contraindicated"},
        {"{\"a\":2,\"b\":97,\"c\":33}", "contraindicated"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(json_t) *v = J(cases[i].v);
        assert_string_equal(cl_as_ear_status(v), cases[i].status);
    }
}

/* Builds a sample evidence item bound to runtime data rd (or to a wrong digest). */
static json_t *sample_evidence(const json_t *rd, bool bind)
{
    uint8_t d[CL_HASH_MAX];
    size_t n = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_as_runtime_digest(rd, CL_HASH_SHA384, d, &n, &e), 0);
    if (!bind)
        d[0] ^= 1;
    return cl_tee_sample_evidence("sample", d, n, &e);
}

static json_t *token_payload(struct fx *f, const char *token)
{
    struct cl_jws jws = {0};
    struct cl_err e = {0};
    assert_int_equal(cl_jws_parse(token, strlen(token), &jws, &e), 0);
    assert_int_equal(cl_jws_verify(&jws, cl_as_signing_key(f->as), &e), 0);
    assert_string_equal(jws.alg, "ES256");
    assert_true(json_equal(json_object_get(jws.header, "jwk"),
                           (json_t *)(uintptr_t)cl_as_token_jwk(f->as)));
    /* the header text and object the KBS's fast path relies on say the same */
    assert_true(json_equal(jws.header, (json_t *)(uintptr_t)cl_as_token_header(f->as)));
    const char *h64 = cl_as_token_header_b64(f->as);
    assert_int_equal(strncmp(token, h64, strlen(h64)), 0);
    assert_int_equal(token[strlen(h64)], '.');
    json_t *p = cl_json_parse((const char *)jws.payload, jws.payload_len, 32, &e);
    cl_jws_clear(&jws);
    assert_non_null(p);
    return p;
}

static void test_evaluate(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    CL_AUTO(json_t) *rd =
        J("{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\"},\"additional-evidence\":\"\"}");
    CL_AUTO(json_t) *ev = sample_evidence(rd, true);
    const char *init =
        "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = '''\n"
        "[token_configs.kbs]\nurl = \"http://kbs\"\n'''\n\"policy.rego\" = '''\npackage "
        "agent_policy\n"
        "policy_data := {\n  \"containers\": [{\"OCI\": {\"Version\": \"1.1.0\"}}]\n}\n'''\n";
    struct cl_as_item it = {"sample", ev, rd, CL_HASH_SHA384, init, strlen(init)};
    CL_AUTO(cl_str) *tok = NULL;
    assert_int_equal(cl_as_evaluate(f->as, &it, 1, "default", &tok, &e), 0);
    CL_AUTO(json_t) *p = token_payload(f, tok);
    assert_string_equal(json_string_value(json_object_get(p, "eat_profile")), CL_AS_EAR_PROFILE);
    json_t *cpu = cl_json_pointer(p, "/submods/cpu0");
    assert_non_null(cpu);
    assert_string_equal(json_string_value(json_object_get(cpu, "ear.appraisal-policy-id")),
                        "default");
    json_t *ann = json_object_get(cpu, "ear.veraison.annotated-evidence");
    assert_true(json_equal(json_object_get(ann, "runtime_data_claims"), rd));
    assert_non_null(json_object_get(ann, "report_data"));
    assert_null(cl_json_pointer(ann, "/sample/report_data")); /* lifted out */
    assert_string_equal(
        json_string_value(cl_json_pointer(ann, "/init_data_claims/aa.toml/token_configs/kbs/url")),
        "http://kbs");
    assert_string_equal(json_string_value(cl_json_pointer(
                            ann, "/init_data_claims/agent_policy_claims/containers/0/OCI/Version")),
                        "1.1.0");
    assert_null(cl_json_pointer(ann, "/init_data_claims/policy.rego"));
    assert_int_equal(json_string_length(json_object_get(ann, "init_data")),
                     44); /* b64 of 32 bytes */
    assert_true(json_integer_value(json_object_get(p, "exp")) >
                json_integer_value(json_object_get(p, "iat")));

    /* device evidence: submods cpu0 + gpu0 */
    CL_AUTO(json_t) *rdd = J("{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\"}}");
    CL_AUTO(json_t) *dev = sample_evidence(rdd, true);
    struct cl_as_item two[2] = {it, {"sampledevice", dev, rdd, CL_HASH_SHA384, NULL, 0}};
    CL_AUTO(cl_str) *tok2 = NULL;
    assert_int_equal(cl_as_evaluate(f->as, two, 2, "default", &tok2, &e), 0);
    CL_AUTO(json_t) *p2 = token_payload(f, tok2);
    assert_non_null(cl_json_pointer(p2, "/submods/gpu0/ear.status"));

    /* failures name their stage */
    static const struct {
        const char *tee, *stage;
        bool bind;
        const char *init;
    } bad[] = {
        {"hygondcu", "tee", true, NULL},
        {"sample", "bind", false, NULL},
        {"sample", "init-data", true, "version = \"0.1.0\"\nalgorithm = \"md5\"\n"},
        {"sample", "init-data", true, "version = \"0.2.0\"\nalgorithm = \"sha256\"\n"},
        {"sample", "init-data", true, "not toml"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *bev = sample_evidence(rd, bad[i].bind);
        struct cl_as_item b = {bad[i].tee,     bev,         rd,
                               CL_HASH_SHA384, bad[i].init, bad[i].init ? strlen(bad[i].init) : 0};
        CL_AUTO(cl_str) *t = NULL;
        struct cl_err be = {0};
        assert_true(cl_as_evaluate(f->as, &b, 1, "default", &t, &be) < 0);
        assert_null(t);
        if (!be.stage || strcmp(be.stage, bad[i].stage) != 0)
            fail_msg("case %zu: stage '%s' want '%s' (%s)", i, be.stage ? be.stage : "",
                     bad[i].stage, be.msg);
    }
    CL_AUTO(json_t) *junk = J("{\"svn\":1}");
    struct cl_as_item j = {"sample", junk, rd, CL_HASH_SHA384, NULL, 0};
    CL_AUTO(cl_str) *t = NULL;
    assert_true(cl_as_evaluate(f->as, &j, 1, "default", &t, &e) < 0);
    assert_string_equal(e.stage, "parse");
    assert_int_equal(cl_as_evaluate(f->as, &j, 0, "default", &t, &e), CL_ELIMIT);
}

static void test_sample_refused_without_switch(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    struct cl_as_opts o = {.store = f->store, .allow_sample_insecure = false};
    struct cl_as *strict = cl_as_new(&o, &e);
    assert_non_null(strict);
    CL_AUTO(json_t) *rd = J("{\"nonce\":\"n\"}");
    CL_AUTO(json_t) *ev = sample_evidence(rd, true);
    struct cl_as_item it = {"sample", ev, rd, CL_HASH_SHA384, NULL, 0};
    CL_AUTO(cl_str) *tok = NULL;
    assert_int_equal(cl_as_evaluate(strict, &it, 1, "default", &tok, &e), CL_EDENIED);
    assert_string_equal(e.stage, "tee");
    assert_non_null(strstr(e.msg, "allow_sample_tee_insecure"));
    cl_as_free(strict);
}

static void test_regularize(void **state)
{
    (void)state;
    uint8_t d[48], f64[64], f32[32];
    memset(d, 0xab, sizeof d);
    cl_tee_regularize(d, 48, f64, 64);
    assert_int_equal(f64[47], 0xab);
    assert_int_equal(f64[48], 0);
    cl_tee_regularize(d, 48, f32, 32);
    assert_int_equal(f32[31], 0xab);
    assert_true(cl_tee_id_known("az-snp-vtpm"));
    assert_false(cl_tee_id_known("Sample"));
    assert_non_null(cl_tee_verifier_find("sampledevice"));
    assert_null(cl_tee_verifier_find("hygondcu"));
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rvps),       cmocka_unit_test(test_tiers),
        cmocka_unit_test(test_evaluate),   cmocka_unit_test(test_sample_refused_without_switch),
        cmocka_unit_test(test_regularize),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
