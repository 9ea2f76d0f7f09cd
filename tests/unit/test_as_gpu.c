/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device evidence in the attestation service: the claims the nvidia verifier makes of trustee's
 * Hopper report, appraised by the built-in default_gpu policy (no reference values →
 * hardware 2 / configuration 36 / executables 33; driver, VBIOS and every measurement
 * registered → 2 / 2 / 3, affirming; one changed claim → back to 36 or 33), and the KBS's
 * additional-evidence item for nvidia refused at the bind stage when its SPDM nonce is not the
 * device runtime data's digest (a captured report can never be replayed into a new session).
 */
#include "tee_test.h"

#include "as/as_internal.h"
#include "tee/nvidia/nvidia.h"

#define ND "deps/verifier/test_data/nvidia/"

static const uint8_t nonce[32] = {0x93, 0x1d, 0x8d, 0xd0, 0xad, 0xd2, 0x03, 0xac, 0x3d, 0x8b, 0x4f,
                                  0xbd, 0xe7, 0x5e, 0x11, 0x52, 0x78, 0xee, 0xfc, 0xdc, 0xea, 0xc5,
                                  0xb8, 0x76, 0x71, 0xa7, 0x48, 0xf3, 0x23, 0x64, 0xdf, 0xcb};

static struct cl_store *store;
static struct cl_as *as;
static json_t *claims;   /* of the Hopper vector */
static json_t *evidence; /* the same as trustee's attester sends it */

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    struct cl_err e = {0};
    store = cl_store_open("Memory", NULL, &e);
    struct cl_tee_config *cfg = calloc(1, sizeof *cfg);
    cfg->verify_time = TT_TIME;
    struct cl_as_opts o = {.store = store, .allow_sample_insecure = true, .tee_config = cfg};
    as = cl_as_new(&o, &e);
    assert_non_null(as);
    size_t hn = 0, cn = 0;
    CL_AUTO(cl_bytes) *hex = tt_read(ND "hopperAttestationReport.txt", &hn);
    CL_AUTO(cl_bytes) *chain = tt_read(ND "hopper_cert_chain_case1.txt", &cn);
    while (hn && (hex[hn - 1] == '\n' || hex[hn - 1] == '\r'))
        hn--;
    uint8_t *rep = malloc(hn / 2);
    size_t rn = 0;
    assert_int_equal(cl_hex_decode((const char *)hex, hn, rep, hn / 2, &rn, &e), 0);
    assert_int_equal(cl_nvidia_verify_device(rep, rn, chain, cn, "HOPPER", "GPU-0", nonce, 32,
                                             cl_nvidia_root_pins, cl_nvidia_root_npins, TT_TIME,
                                             &claims, &e),
                     0);
    free(rep);
    CL_AUTO(cl_str) *cb = cl_b64_encode(chain, cn, CL_B64_STD);
    CL_AUTO(cl_str) *htext = cl_strdupf("%.*s", (int)hn, (const char *)hex);
    evidence = json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "device_evidence_list", "arch", "HOPPER",
                         "uuid", "GPU-0", "evidence", htext, "certificate", cb);
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    cl_as_free(as);
    cl_store_close(store);
    json_decref(claims);
    json_decref(evidence);
    free(*state);
    return 0;
}

static void appraise(const json_t *c, int hw, int conf, int exe, const char *status)
{
    CL_AUTO(json_t) *input = json_pack("{s:O}", "nvidia", c);
    CL_AUTO(json_t) *vector = NULL;
    CL_AUTO(json_t) *ext = NULL;
    struct cl_err e = {0};
    if (cl_as_appraise(as, "default", "gpu", input, &vector, &ext, &e) != 0)
        fail_msg("appraise: %s", e.msg);
    int got_hw = (int)json_integer_value(json_object_get(vector, "hardware"));
    int got_conf = (int)json_integer_value(json_object_get(vector, "configuration"));
    int got_exe = (int)json_integer_value(json_object_get(vector, "executables"));
    if (got_hw != hw || got_conf != conf || got_exe != exe)
        fail_msg("trust vector hardware %d configuration %d executables %d, want %d %d %d", got_hw,
                 got_conf, got_exe, hw, conf, exe);
    assert_string_equal(cl_as_ear_status(vector), status);
}

static void test_default_gpu_policy(void **state)
{
    (void)state;
    struct cl_err e = {0};
    /* nothing registered: genuine hardware, configuration and executables unrecognised */
    appraise(claims, 2, 36, 33, "warning");
    /* the owner registers driver, VBIOS and the 64 measurements */
    CL_AUTO(json_t) *rvs = json_pack("{s:[s], s:[s]}", "nvidia_driver_version", "550.90.07",
                                     "nvidia_vbios_version", "96.00.9f.00.01");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(claims, "measurements"), k, v)
    {
        char name[64];
        snprintf(name, sizeof name, "nvidia_measurement_%s", k);
        json_object_set_new(rvs, name, json_pack("[O]", v));
    }
    assert_int_equal(cl_as_rv_register(as, rvs, &e), 0);
    appraise(claims, 2, 2, 3, "affirming");
    /* twins: one measurement, the driver version */
    CL_AUTO(json_t) *m = json_deep_copy(claims);
    json_object_set_new(json_object_get(m, "measurements"), "12", json_string("00"));
    appraise(m, 2, 2, 33, "warning");
    CL_AUTO(json_t) *d = json_deep_copy(claims);
    json_object_set_new(json_object_get(d, "config"), "driver_version", json_string("535.0.0"));
    appraise(d, 2, 36, 3, "warning");
    CL_AUTO(json_t) *a = json_deep_copy(claims);
    json_object_set_new(a, "arch", json_string("Ampere"));
    appraise(a, 97, 2, 3, "contraindicated");
}

/* a multi-device verifier's claim sets: one submod each, in order */
static void test_claim_sets(void **state)
{
    (void)state;
    const struct cl_tee_verifier *v = cl_tee_verifier_find("nvidia");
    CL_AUTO(json_t) *rdd = json_pack("{s:s}", "nonce", "n");
    struct cl_as_item it = {"nvidia", evidence, rdd, CL_HASH_SHA384, NULL, 0};
    CL_AUTO(json_t) *snapshot = json_deep_copy(claims);
    CL_AUTO(json_t) *two = json_pack("[O, o]", claims, json_deep_copy(claims));
    json_object_set_new(json_array_get(two, 1), "arch", json_string("Ampere"));
    struct cl_err e = {0};
    CL_AUTO(json_t) *subs = cl_as_appraise_sets(as, &it, "default", v, two, NULL, &e);
    assert_non_null(subs);
    assert_int_equal(json_array_size(subs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(subs, 1), "ear.status")),
                        "contraindicated");
    assert_string_equal(
        json_string_value(cl_json_pointer(json_array_get(subs, 0),
                                          "/ear.veraison.annotated-evidence/nvidia/arch")),
        "Hopper");
    assert_true(json_equal(json_array_get(two, 0), snapshot)); /* borrowed, not changed */
    CL_AUTO(json_t) *one = cl_as_appraise_sets(as, &it, "default", v, claims, NULL, &e);
    assert_int_equal(json_array_size(one), 1);
    CL_AUTO(json_t) *bad = json_pack("[O, i]", claims, 3);
    assert_null(cl_as_appraise_sets(as, &it, "default", v, bad, NULL, &e));
    assert_string_equal(e.stage, CL_TEE_STAGE_CLAIMS);
    CL_AUTO(json_t) *none = json_array();
    assert_null(cl_as_appraise_sets(as, &it, "default", v, none, NULL, &e));
}

static void test_additional_evidence(void **state)
{
    (void)state;
    /* primary sample evidence bound to the primary runtime data; the GPU's item carries the
     * device runtime data, whose digest is not the captured report's nonce */
    CL_AUTO(json_t) *rd = json_pack("{s:s, s:{s:s}, s:s}", "nonce", "n", "tee-pubkey", "kty", "EC",
                                    "additional-evidence", "{}");
    CL_AUTO(json_t) *rdd = json_pack("{s:s, s:{s:s}}", "nonce", "n", "tee-pubkey", "kty", "EC");
    uint8_t dg[CL_HASH_MAX];
    size_t dl = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_as_runtime_digest(rd, CL_HASH_SHA384, dg, &dl, &e), 0);
    CL_AUTO(json_t) *prim = cl_tee_sample_evidence("sample", dg, dl, &e);
    assert_non_null(prim);
    struct cl_as_item items[2] = {{"sample", prim, rd, CL_HASH_SHA384, NULL, 0},
                                  {"nvidia", evidence, rdd, CL_HASH_SHA384, NULL, 0}};
    CL_AUTO(cl_str) *tok = NULL;
    assert_int_not_equal(cl_as_evaluate(as, items, 2, "default", &tok, &e), 0);
    assert_string_equal(e.stage, CL_TEE_STAGE_BIND);
    assert_non_null(strstr(e.msg, "nvidia"));
    /* the primary alone is fine */
    CL_AUTO(cl_str) *tok1 = NULL;
    assert_int_equal(cl_as_evaluate(as, items, 1, "default", &tok1, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_gpu_policy),
        cmocka_unit_test(test_claim_sets),
        cmocka_unit_test(test_additional_evidence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
