/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure vTPM verifiers: every az-snp-vtpm evidence of trustee (v0, v1, v2, Genoa) verified
 * end to end offline (vTPM quote by HCLAkPub, PCRs, nonce, HCL runtime data bound to the SNP
 * report, VCEK chain to the pinned ARK, certified TCB), with trustee's expected claims; the
 * failure cases of trustee's tests and the tamper twins each refused at their stage. For
 * az-tdx-vtpm the vTPM and HCL checks pass and the TD quote's DCAP verification stops at the
 * collateral stage (the vectors carry no collateral for its FMSPC).
 */
#include "tee_test.h"

#include "crypto/crypto.h"
#include "tee/azure/azure.h"
#include "tee/tee_int.h"
#include "tee/tpm/tpm.h"

#define AZS "deps/verifier/test_data/az-snp-vtpm/"
#define AZT "deps/verifier/test_data/az-tdx-vtpm/"

static char *cache;
static struct cl_tee_config cfg;

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    cache = tt_tmpdir();
    tt_link(cache, "Milan/cert_chain.pem", "deps/verifier/src/snp/milan_ask_ark_asvk.pem");
    tt_link(cache, "Genoa/cert_chain.pem", "deps/verifier/src/snp/genoa_ask_ark_asvk.pem");
    cfg = (struct cl_tee_config){.verify_time = TT_TIME, .snp_cert_cache = cache};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tt_rmtree(cache);
    free(cache);
    return 0;
}

/* The nonce the vTPM quote carries (the expected report data of these vectors). */
static size_t nonce_of(const json_t *ev, uint8_t out[64])
{
    const json_t *q = json_object_get(ev, "version") ? json_object_get(ev, "tpm_quote")
                                                     : json_object_get(ev, "quote");
    if (!q)
        q = json_object_get(ev, "tpm_quote");
    json_t *m = json_object_get(q, "message");
    uint8_t buf[4096];
    size_t n = 0;
    struct cl_err e = {0};
    if (json_is_string(m)) {
        assert_int_equal(
            cl_hex_decode(json_string_value(m), json_string_length(m), buf, sizeof buf, &n, &e), 0);
    } else {
        n = json_array_size(m);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)json_integer_value(json_array_get(m, i));
    }
    struct cl_tpm_quote_info qi;
    assert_int_equal(cl_tpm_attest_parse(buf, n, &qi, &e), 0);
    memcpy(out, qi.extra_data, qi.extra_len);
    return qi.extra_len;
}

static void test_snp_evidence(void **state)
{
    (void)state;
    static const struct {
        const char *file, *report_data, *pcr00_head, *pcr00_tail;
    } cases[] = {
        {AZS "evidence-v0.json", "6368616c6c656e6765", "e15c4479", "4f48dced"},
        {AZS "evidence-v1.json", "6368616c6c656e6765", "e15c4479", "4f48dced"},
        {AZS "evidence-v2.json", "982f5c6e", "84275b2f", "cca7a6a7"},
        {AZS "evidence-genoa.json", "0218488b", "afd689d0", "7783338"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(json_t) *ev = tt_json(cases[i].file);
        uint8_t rd[64];
        size_t rl = nonce_of(ev, rd);
        CL_AUTO(json_t) *c =
            tt_expect(cases[i].file, "az-snp-vtpm", ev, rd, rl, NULL, 0, &cfg, NULL);
        const char *got_rd = json_string_value(json_object_get(c, "report_data"));
        assert_memory_equal(got_rd, cases[i].report_data, strlen(cases[i].report_data));
        const char *p0 = json_string_value(json_object_get(json_object_get(c, "tpm"), "pcr00"));
        assert_memory_equal(p0, cases[i].pcr00_head, strlen(cases[i].pcr00_head));
        assert_string_equal(p0 + 64 - strlen(cases[i].pcr00_tail), cases[i].pcr00_tail);
        /* the SNP claims come as strings, measurement in standard base64 */
        assert_true(json_is_string(json_object_get(c, "reported_tcb_bootloader")));
        assert_true(json_is_string(json_object_get(c, "policy_debug_allowed")));
        assert_int_equal(strlen(json_string_value(json_object_get(c, "measurement"))), 64);
        assert_int_equal(strlen(json_string_value(json_object_get(c, "init_data"))), 64);
        /* wrong report data */
        rd[0] ^= 1;
        json_decref(tt_expect("wrong report data", "az-snp-vtpm", ev, rd, rl, NULL, 0, &cfg,
                              CL_TEE_STAGE_BIND));
        rd[0] ^= 1;
        /* init-data: PCR8 of these VMs is not an init-data extension */
        uint8_t idd[32] = {1};
        json_decref(tt_expect("init-data", "az-snp-vtpm", ev, rd, rl, idd, 32, &cfg,
                              CL_TEE_STAGE_INIT_DATA));
    }
}

/* Replaces the hcl_report of a v1 evidence with a modified copy. */
static json_t *with_hcl(const json_t *ev, size_t off, int op, uint8_t val)
{
    json_t *t = json_deep_copy(ev);
    const char *h = json_string_value(json_object_get(t, "hcl_report"));
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *b = cl_b64_decode(h, strlen(h), CL_B64_ANY, 4096, &n, &e);
    assert_non_null(b);
    if (op == 0)
        b[off] = (uint8_t)(b[off] + 1);
    else if (op == 1)
        b[off] = val;
    else
        n = off; /* truncate */
    CL_AUTO(cl_str) *s = cl_b64_encode(b, n, CL_B64_URL);
    json_object_set_new(t, "hcl_report", json_string(s));
    return t;
}

static void test_snp_twins(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(AZS "evidence-v1.json");
    uint8_t rd[64];
    size_t rl = nonce_of(ev, rd);
    static const struct {
        const char *name;
        size_t off;
        int op;
        uint8_t val;
        const char *stage;
    } hcl[] = {
        {"runtime data changed (trustee: digest mismatch)", 0x06e0, 0, 0, CL_TEE_STAGE_BIND},
        {"reported TCB changed (trustee: SNP version mismatch)", 0x01a6, 1, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"runtime data JSON broken (trustee: no AKpub)", 0x0540, 1, 0, CL_TEE_STAGE_PARSE},
        {"flipped SNP measurement", 0x20 + 0x90, 0, 0, CL_TEE_STAGE_SIGNATURE},
        {"flipped SNP signature", 0x20 + 0x2a0, 0, 0, CL_TEE_STAGE_SIGNATURE},
        {"truncated HCL report", 2000, 2, 0, CL_TEE_STAGE_PARSE},
        {"not an HCL report", 0, 1, 'X', CL_TEE_STAGE_PARSE},
        {"report type TDX", 0x4c8, 1, 4, CL_TEE_STAGE_PARSE},
        {"SNP report from VMPL 1", 0x20 + 0x30, 1, 1, CL_TEE_STAGE_SIGNATURE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(hcl); i++) {
        CL_AUTO(json_t) *t = with_hcl(ev, hcl[i].off, hcl[i].op, hcl[i].val);
        json_decref(tt_expect(hcl[i].name, "az-snp-vtpm", t, rd, rl, NULL, 0, &cfg, hcl[i].stage));
    }
    /* the vTPM quote */
    static const struct {
        const char *name, *member;
        size_t at;
        const char *stage;
    } tq[] = {
        {"flipped quote clock", "message", 110, CL_TEE_STAGE_SIGNATURE},
        {"flipped quote nonce", "message", 46, CL_TEE_STAGE_BIND},
        {"flipped quote signature", "signature", 10, CL_TEE_STAGE_SIGNATURE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(tq); i++) {
        CL_AUTO(json_t) *t = json_deep_copy(ev);
        json_t *q = json_object_get(t, "tpm_quote");
        char *h = strdup(json_string_value(json_object_get(q, tq[i].member)));
        h[2 * tq[i].at] = h[2 * tq[i].at] == '0' ? '1' : '0';
        json_object_set_new(q, tq[i].member, json_string(h));
        free(h);
        json_decref(tt_expect(tq[i].name, "az-snp-vtpm", t, rd, rl, NULL, 0, &cfg, tq[i].stage));
    }
    /* a changed PCR */
    CL_AUTO(json_t) *p = json_deep_copy(ev);
    json_t *pcrs = json_object_get(json_object_get(p, "tpm_quote"), "pcrs");
    json_array_set_new(
        pcrs, 11, json_string("0000000000000000000000000000000000000000000000000000000000000001"));
    json_decref(tt_expect("changed PCR 11", "az-snp-vtpm", p, rd, rl, NULL, 0, &cfg,
                          CL_TEE_STAGE_SIGNATURE));
    /* a swapped VCEK: Genoa's, for a Milan report */
    CL_AUTO(json_t) *sw = json_deep_copy(ev);
    struct cl_err e = {0};
    CL_AUTO(cl_tee_x509s) *gv = cl_tee_x509_load(tt_path(AZS "vcek-genoa.pem"), &e);
    assert_non_null(gv);
    unsigned char *der = NULL;
    int dl = i2d_X509(sk_X509_value(gv, 0), &der);
    CL_AUTO(cl_str) *b64 = cl_b64_encode(der, (size_t)dl, CL_B64_URL);
    OPENSSL_free(der);
    json_object_set_new(sw, "vcek", json_string(b64));
    json_decref(tt_expect("swapped VCEK (Genoa for Milan)", "az-snp-vtpm", sw, rd, rl, NULL, 0,
                          &cfg, CL_TEE_STAGE_CHAIN));
    /* a swapped VCEK of the same generation (another Milan chip): the chain holds, the signature
     * not */
    size_t mn = 0;
    CL_AUTO(cl_bytes) *mv = tt_read("deps/verifier/test_data/snp/test-vcek.der", &mn);
    CL_AUTO(cl_str) *mb = cl_b64_encode(mv, mn, CL_B64_URL);
    json_object_set_new(sw, "vcek", json_string(mb));
    json_decref(tt_expect("swapped VCEK (other Milan chip)", "az-snp-vtpm", sw, rd, rl, NULL, 0,
                          &cfg, CL_TEE_STAGE_SIGNATURE));
    /* no cache: the v1 evidence carries only the VCEK */
    struct cl_tee_config nc = {.verify_time = TT_TIME};
    json_decref(
        tt_expect("no ASK/ARK", "az-snp-vtpm", ev, rd, rl, NULL, 0, &nc, CL_TEE_STAGE_CHAIN));
    /* v2: user-data must carry the report data */
    CL_AUTO(json_t) *v2 = tt_json(AZS "evidence-v2.json");
    uint8_t rd2[64];
    size_t rl2 = nonce_of(v2, rd2);
    CL_AUTO(json_t) *ud = json_deep_copy(v2);
    const char *h = json_string_value(json_object_get(ud, "hcl_report"));
    size_t n = 0;
    CL_AUTO(cl_bytes) *hb = cl_b64_decode(h, strlen(h), CL_B64_ANY, 4096, &n, &e);
    char *hit = memmem(hb, n, "\"user-data\":\"", 13);
    assert_non_null(hit);
    memcpy(hit + 13, "123ABC", 6);
    CL_AUTO(cl_str) *hs = cl_b64_encode(hb, n, CL_B64_URL);
    json_object_set_new(ud, "hcl_report", json_string(hs));
    json_decref(tt_expect("v2 user-data 123abc", "az-snp-vtpm", ud, rd2, rl2, NULL, 0, &cfg,
                          CL_TEE_STAGE_BIND));
    /* shapes */
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"version\":3}",
        "{\"version\":1,\"tpm_quote\":{}}",
        ("{\"version\":1,\"tpm_quote\":{\"message\":\"zz\",\"signature\":\"00\",\"pcrs\":[]},\"hcl_"
         "report\":\"AA\",\"vcek\":\"AA\"}"),
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *b = json_loads(bad[i], 0, NULL);
        json_decref(tt_expect(bad[i], "az-snp-vtpm", b, rd, rl, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
    }
}

static void test_hcl_parse(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *s = tt_read(AZS "hcl-report.bin", &n);
    struct cl_az_hcl h;
    struct cl_err e = {0};
    assert_int_equal(cl_az_hcl_parse(s, n, &h, &e), 0);
    assert_int_equal(h.report_type, CL_AZ_REPORT_SNP);
    assert_int_equal(h.var_len, 1110);
    uint8_t d[32];
    assert_int_equal(cl_digest(CL_HASH_SHA256, h.var, h.var_len, d, &e), 0);
    assert_memory_equal(d, h.hw + 0x50, 32); /* SNP report_data[0:32] = SHA-256(runtime data) */
    CL_AUTO(cl_bytes) *t = tt_read(AZT "hcl-report.bin", &n);
    assert_int_equal(cl_az_hcl_parse(t, n, &h, &e), 0);
    assert_int_equal(h.report_type, CL_AZ_REPORT_TDX);
    assert_int_equal(h.var_len, 1201);
    /* rejections */
    static const struct {
        size_t off;
        uint8_t val;
    } bad[] = {{4, 0}, {0x4c4, 2}, {0x4c8, 3}, {0x4cc, 9}, {0x4d1, 0x10}};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        uint8_t c[CL_AZ_HCL_SIZE];
        memcpy(c, s, sizeof c);
        c[bad[i].off] = bad[i].val;
        if (bad[i].off == 4)
            c[0] = 'X';
        assert_int_equal(cl_az_hcl_parse(c, sizeof c, &h, &e), CL_EPARSE);
    }
    assert_int_equal(cl_az_hcl_parse(s, n - 1, &h, &e), CL_EPARSE);
}

static void test_tdx_evidence(void **state)
{
    (void)state;
    static const char *const files[] = {AZT "evidence-v0.json", AZT "evidence-v1.json"};
    for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
        CL_AUTO(json_t) *ev = tt_json(files[i]);
        uint8_t rd[64];
        size_t rl = nonce_of(ev, rd);
        assert_int_equal(rl, 9);
        assert_memory_equal(rd, "challenge", 9);
        /* vTPM quote, PCRs, HCL binding and the TD quote's signature and PCK chain hold; DCAP
         * then needs collateral for FMSPC 00806F050000, which the vectors do not carry */
        json_decref(
            tt_expect(files[i], "az-tdx-vtpm", ev, rd, rl, NULL, 0, &cfg, CL_TEE_STAGE_COLLATERAL));
        rd[0] ^= 1;
        json_decref(tt_expect("wrong report data", "az-tdx-vtpm", ev, rd, rl, NULL, 0, &cfg,
                              CL_TEE_STAGE_BIND));
    }
    CL_AUTO(json_t) *ev = tt_json(AZT "evidence-v1.json");
    uint8_t rd[64];
    size_t rl = nonce_of(ev, rd);
    CL_AUTO(json_t) *t = with_hcl(ev, 0x0880, 0, 0); /* trustee: TDX Quote report data mismatch */
    json_decref(tt_expect("runtime data changed", "az-tdx-vtpm", t, rd, rl, NULL, 0, &cfg,
                          CL_TEE_STAGE_BIND));
    /* a TD quote with a flipped MRTD */
    CL_AUTO(json_t) *q = json_deep_copy(ev);
    const char *s = json_string_value(json_object_get(q, "td_quote"));
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *b = cl_b64_decode(s, strlen(s), CL_B64_ANY, 65536, &n, &e);
    b[48 + 136] ^= 1;
    CL_AUTO(cl_str) *bs = cl_b64_encode(b, n, CL_B64_URL);
    json_object_set_new(q, "td_quote", json_string(bs));
    json_decref(
        tt_expect("flipped MRTD", "az-tdx-vtpm", q, rd, rl, NULL, 0, &cfg, CL_TEE_STAGE_SIGNATURE));
    /* an SNP HCL report where a TDX one is expected */
    CL_AUTO(json_t) *snp = tt_json(AZS "evidence-v1.json");
    CL_AUTO(json_t) *mix = json_deep_copy(ev);
    json_object_set(mix, "hcl_report", json_object_get(snp, "hcl_report"));
    json_decref(
        tt_expect("SNP HCL report", "az-tdx-vtpm", mix, rd, rl, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hcl_parse),
        cmocka_unit_test(test_snp_evidence),
        cmocka_unit_test(test_snp_twins),
        cmocka_unit_test(test_tdx_evidence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
