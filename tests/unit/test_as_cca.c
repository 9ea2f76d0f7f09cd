/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CCA and CSV through the attestation service, as the KBS drives it: the CCA vector token is
 * re-signed (with the vectors' public test CPAK/RAK keys) around the realm challenge the KBS
 * derives from its runtime data (JCS + SHA-384 of {nonce, tee-pubkey, additional-evidence}),
 * evaluated by cl_as_evaluate with tee "cca", and appraised by the default policy against
 * registered reference values; the twin is the same token bound to another nonce. CSV claims of
 * the real report reach the default policy the same way (the real evidence cannot pass the
 * chain offline: tests/unit/test_tee_csv.c).
 */
#include "tee_test.h"

#include "as/as_internal.h"
#include "crypto/crypto.h"
#include "tee/cca/cca.h"
#include "tee/csv/csv.h"
#include "tee/tee_int.h"

#define CCA "deps/verifier/test_data/cca/"

struct fx {
    struct cl_store *store;
    struct cl_as *as;
    struct cl_tee_config cfg;
};

static int setup(void **state)
{
    static struct fx f;
    tt_require_vectors();
    struct cl_err e = {0};
    f.cfg = (struct cl_tee_config){.cca_ta_store = strdup(tt_path(CCA "conf/tastore.json")),
                                   .cca_rv_store = strdup(tt_path(CCA "conf/rvstore.json"))};
    f.store = cl_store_open("Memory", NULL, &e);
    struct cl_as_opts o = {.store = f.store, .tee_config = &f.cfg};
    f.as = cl_as_new(&o, &e);
    *state = &f;
    return f.as ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cl_as_free(f->as);
    cl_store_close(f->store);
    free((void *)(uintptr_t)f->cfg.cca_ta_store);
    free((void *)(uintptr_t)f->cfg.cca_rv_store);
    return 0;
}

static cl_pkey *jwk_key(const char *rel)
{
    CL_AUTO(json_t) *j = tt_json(rel);
    struct cl_err e = {0};
    cl_pkey *k = cl_jwk_to_pkey(j, &e);
    assert_non_null(k);
    return k;
}

/* The vector token with its realm challenge replaced by digest ‖ zeros, realm re-signed. */
static json_t *cca_evidence_for(const uint8_t *digest, size_t dlen)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *tok = tt_read(CCA "misc/cca-example-token.cbor", &n);
    struct cl_cca_token t;
    struct cl_err e = {0};
    assert_int_equal(cl_cca_token_parse(tok, n, &t, &e), 0);
    cl_tee_regularize(digest, dlen, tok + (t.realm.challenge.p - tok), 64);
    assert_int_equal(cl_cca_token_parse(tok, n, &t, &e), 0);
    size_t tl = 0;
    CL_AUTO(cl_bytes) *tbs = cl_cca_cose_tbs(&t.realm_cose, &tl);
    CL_AUTO(cl_pkey) *rak = jwk_key(CCA "misc/rak-priv.json");
    cl_bytes *sig = NULL;
    size_t sl = 0;
    assert_int_equal(cl_sig_sign(rak, "ES384", tbs, tl, &sig, &sl, &e), 0);
    assert_int_equal(sl, t.realm_cose.signature.n);
    memcpy(tok + (t.realm_cose.signature.p - tok), sig, sl);
    free(sig);
    CL_AUTO(cl_str) *b64 = cl_b64_encode(tok, n, CL_B64_STD);
    return json_pack("{s:s}", "token", b64);
}

static json_t *J(const char *s)
{
    json_t *v = cl_json_parse(s, strlen(s), 16, NULL);
    assert_non_null(v);
    return v;
}

static json_t *payload_of(const char *token)
{
    struct cl_jws jws = {0};
    struct cl_err e = {0};
    assert_int_equal(cl_jws_parse(token, strlen(token), &jws, &e), 0);
    json_t *p = cl_json_parse((const char *)jws.payload, jws.payload_len, 32, &e);
    cl_jws_clear(&jws);
    assert_non_null(p);
    return p;
}

static void test_cca_kbs_path(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    /* the runtime data the KBS builds from the RCAR attestation message */
    CL_AUTO(json_t) *rd =
        J("{\"nonce\":\"kNa9Ux0+DBeexBnWqNSsTA==\",\"tee-pubkey\":{\"alg\":\"ECDH-ES+A256KW\","
          "\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis\","
          "\"y\":\"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE\"},\"additional-evidence\":\"\"}");
    uint8_t d[CL_HASH_MAX];
    size_t dl = 0;
    assert_int_equal(cl_as_runtime_digest(rd, CL_HASH_SHA384, d, &dl, &e), 0);
    CL_AUTO(json_t) *ev = cca_evidence_for(d, dl);

    /* reference values for the default policy, from the token's own measurements */
    CL_AUTO(json_t) *rv = J("{\"cca_realm_initial_measurement\":[\"rof79/"
                            "EF5xp4J8tvCJaInHPSvq9IMNT5ywXj6Ww/x7T6oEyvNqJr0JTPnHtzhhfkwYmq7hhN7d"
                            "pdegPDnb2sfA==\"],\"cca_platform_implementation_id\":["
                            "\"f0VMRgIBAQAAAAAAAAAAAAMAPgABAAAAUFgAAAAAAAA=\"],"
                            "\"cca_platform_config\":[\"z8/Pzw==\"]}");
    assert_int_equal(cl_as_rv_register(f->as, rv, &e), 0);
    struct cl_as_item it = {"cca", ev, rd, CL_HASH_SHA384, NULL, 0};
    CL_AUTO(cl_str) *tok = NULL;
    if (cl_as_evaluate(f->as, &it, 1, "default", &tok, &e) < 0)
        fail_msg("cca evaluate: %s at %s", e.msg, e.stage);
    CL_AUTO(json_t) *p = payload_of(tok);
    json_t *cpu = cl_json_pointer(p, "/submods/cpu0");
    assert_non_null(cpu);
    json_t *tv = json_object_get(cpu, "ear.trustworthiness-vector");
    assert_int_equal(json_integer_value(json_object_get(tv, "executables")), 3);
    assert_int_equal(json_integer_value(json_object_get(tv, "configuration")), 2);
    /* the software components are not registered: hardware not recognised */
    assert_int_equal(json_integer_value(json_object_get(tv, "hardware")), 97);
    json_t *ann = json_object_get(cpu, "ear.veraison.annotated-evidence");
    assert_true(json_equal(json_object_get(ann, "runtime_data_claims"), rd));
    assert_non_null(cl_json_pointer(ann, "/cca/realm/cca-realm-initial-measurement"));
    assert_null(cl_json_pointer(ann, "/cca/report_data")); /* lifted out */

    /* register the platform software measurements: hardware recognised, status affirming */
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(CCA "misc/cca-example-token.cbor", &n);
    struct cl_cca_token t;
    assert_int_equal(cl_cca_token_parse(raw, n, &t, &e), 0);
    CL_AUTO(json_t) *sw = json_array();
    for (size_t i = 0; i < t.platform.nsw; i++) {
        CL_AUTO(cl_str) *m = cl_b64_encode(t.platform.sw[i].measurement.p,
                                           t.platform.sw[i].measurement.n, CL_B64_STD);
        json_array_append_new(sw, json_string(m));
    }
    CL_AUTO(json_t) *rv2 = json_pack("{s:O}", "cca_platform_sw_measurements", sw);
    assert_int_equal(cl_as_rv_register(f->as, rv2, &e), 0);
    CL_AUTO(cl_str) *tok2 = NULL;
    assert_int_equal(cl_as_evaluate(f->as, &it, 1, "default", &tok2, &e), 0);
    CL_AUTO(json_t) *p2 = payload_of(tok2);
    assert_int_equal(json_integer_value(
                         cl_json_pointer(p2, "/submods/cpu0/ear.trustworthiness-vector/hardware")),
                     2);
    assert_string_equal(json_string_value(cl_json_pointer(p2, "/submods/cpu0/ear.status")),
                        "affirming");

    /* twin: the same token presented in a session with another nonce */
    CL_AUTO(json_t) *other = json_deep_copy(rd);
    json_object_set_new(other, "nonce", json_string("AAAAAAAAAAAAAAAAAAAAAA=="));
    struct cl_as_item it2 = {"cca", ev, other, CL_HASH_SHA384, NULL, 0};
    CL_AUTO(cl_str) *tok3 = NULL;
    assert_true(cl_as_evaluate(f->as, &it2, 1, "default", &tok3, &e) < 0);
    assert_string_equal(e.stage, CL_TEE_STAGE_BIND);
    assert_null(tok3);
}

static void test_csv_policy(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    CL_AUTO(json_t) *ev = tt_json("deps/verifier/test_data/csv_evidence.json");
    size_t n = 0;
    CL_AUTO(cl_bytes) *page =
        cl_tee_json_bytes(json_object_get(json_object_get(ev, "attestation_report"), "data"), 0,
                          4096, &n, "data", &e);
    assert_non_null(page);
    struct cl_csv_report r;
    assert_int_equal(cl_csv_report_parse(page, n, &r, &e), 0);
    CL_AUTO(json_t) *claims = cl_csv_claims(&r, &e);
    CL_AUTO(json_t) *input = json_pack("{s:O}", "csv", claims);
    CL_AUTO(json_t) *rv =
        J("{\"csv_measure\":[\"ae2a2cf1f41a485fa37bf9ae92f678783c59fbc79de7b5d237743d58f5538034\"],"
          "\"csv_api_major\":[0],\"csv_api_minor\":[0],\"csv_user_pubkey_digest\":"
          "[\"0000000000000000000000000000000000000000000000000000000000000000\"]}");
    assert_int_equal(cl_as_rv_register(f->as, rv, &e), 0);
    CL_AUTO(json_t) *vec = NULL, *ext = NULL;
    if (cl_as_appraise(f->as, "default", "cpu", input, &vec, &ext, &e) < 0)
        fail_msg("appraise: %s", e.msg);
    assert_int_equal(json_integer_value(json_object_get(vec, "executables")), 3);
    assert_int_equal(json_integer_value(json_object_get(vec, "hardware")), 2);
    assert_int_equal(json_integer_value(json_object_get(vec, "configuration")), 2);
    /* twin: another measurement is not recognised */
    json_object_set_new(json_object_get(input, "csv"), "measure", json_string("00"));
    CL_AUTO(json_t) *vec2 = NULL, *ext2 = NULL;
    assert_int_equal(cl_as_appraise(f->as, "default", "cpu", input, &vec2, &ext2, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(vec2, "executables")), 33);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cca_kbs_path),
        cmocka_unit_test(test_csv_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
