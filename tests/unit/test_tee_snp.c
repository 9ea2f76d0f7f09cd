/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP verifier: every SNP vector of trustee (raw VCEK and VLEK reports, the Genoa
 * evidence JSON, the synthetic VCEKs with both hwID encodings) and, for each positive case,
 * its tamper twins — a flipped bit in the signed body and in the signature, in each
 * certificate, a swapped VCEK, a truncated report, wrong report data and init-data, an
 * expired chain — each refused at the stage that should refuse it.
 */
#include "tee_test.h"

#include <openssl/x509.h>

#include "tee/snp/snp.h"
#include "tee/tee_int.h"

#define SNP "deps/verifier/test_data/snp/"
#define AZ "deps/verifier/test_data/az-snp-vtpm/"

static char *cache;
static struct cl_tee_config cfg;     /* with the cache */
static struct cl_tee_config nocache; /* evidence certificates only */

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    cache = tt_tmpdir();
    static const char *const prods[][2] = {
        {"Milan", "milan"}, {"Genoa", "genoa"}, {"Turin", "turin"}};
    for (size_t i = 0; i < 3; i++) {
        char link[256], vec[256];
        snprintf(vec, sizeof vec, "deps/verifier/src/snp/%s_ask_ark_asvk.pem", prods[i][1]);
        snprintf(link, sizeof link, "%s/cert_chain.pem", prods[i][0]);
        tt_link(cache, link, vec);
        snprintf(link, sizeof link, "%s/vlek_cert_chain.pem", prods[i][0]);
        tt_link(cache, link, vec);
    }
    size_t n = 0;
    uint8_t *raw = tt_read(SNP "test-report.bin", &n);
    char link[512] = "vcek/";
    for (size_t i = 0; i < 64; i++)
        snprintf(link + 5 + 2 * i, 3, "%02x", raw[0x1a0 + i]);
    strcat(link, "/vcek.der");
    tt_link(cache, link, SNP "test-vcek.der");
    free(raw);
    cfg = (struct cl_tee_config){.verify_time = TT_TIME, .snp_cert_cache = cache};
    nocache = (struct cl_tee_config){.verify_time = TT_TIME};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tt_rmtree(cache);
    free(cache);
    return 0;
}

static json_t *cert_entry(const char *type, const uint8_t *der, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(der[i]));
    return json_pack("{s:s, s:o}", "cert_type", type, "data", a);
}

/* DER of certificate `idx` of a vector file (PEM bundle or DER), new. */
static uint8_t *cert_der(const char *vec, int idx, size_t *n)
{
    struct cl_err e = {0};
    STACK_OF(X509) *sk = cl_tee_x509_load(tt_path(vec), &e);
    if (!sk || idx >= sk_X509_num(sk))
        fail_msg("certificate %d of %s: %s", idx, vec, e.msg);
    uint8_t *der = NULL;
    int len = i2d_X509(sk_X509_value(sk, idx), &der);
    sk_X509_pop_free(sk, X509_free);
    assert_true(len > 0);
    *n = (size_t)len;
    uint8_t *copy = malloc((size_t)len);
    memcpy(copy, der, (size_t)len);
    OPENSSL_free(der);
    return copy;
}

/* {"attestation_report": b64(report), "cert_chain": [...]} */
static json_t *evidence_b64(const uint8_t *rep, size_t n, json_t *chain)
{
    CL_AUTO(cl_str) *b = cl_b64_encode(rep, n, CL_B64_STD);
    return json_pack("{s:s, s:o}", "attestation_report", b, "cert_chain",
                     chain ? chain : json_null());
}

/* ---- parsing ---- */

static void test_parse(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(SNP "test-report.bin", &n);
    struct cl_snp_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_snp_report_parse(raw, n, &r, &e), 0);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.vmpl, 0);
    assert_int_equal(r.policy, 0x3001f);
    assert_int_equal(cl_snp_signer_of(&r), CL_SNP_VCEK);
    assert_int_equal(cl_snp_product_of(&r), CL_SNP_UNKNOWN); /* version 2: no CPUID */
    struct cl_snp_tcb t = cl_snp_tcb_decode(r.reported_tcb, CL_SNP_MILAN);
    assert_int_equal(t.bootloader, 3);
    assert_int_equal(t.tee, 0);
    assert_int_equal(t.snp, 8);
    assert_int_equal(t.microcode, 115);
    assert_int_equal(cl_snp_tcb_encode(t, CL_SNP_MILAN), r.reported_tcb);
    assert_int_equal(r.measurement[0], 0xa1);
    assert_int_equal(r.chip_id[0], 0xc3);

    CL_AUTO(cl_bytes) *vraw = tt_read(SNP "test-vlek-report.bin", &n);
    assert_int_equal(cl_snp_report_parse(vraw, n, &r, &e), 0);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.vmpl, 1);
    assert_int_equal(cl_snp_signer_of(&r), CL_SNP_VLEK);
    assert_int_equal(cl_snp_product_of(&r), CL_SNP_MILAN);
    t = cl_snp_tcb_decode(r.reported_tcb, CL_SNP_MILAN);
    assert_int_equal(t.bootloader, 4);
    assert_int_equal(t.snp, 24);
    assert_int_equal(t.microcode, 217);

    /* Turin layout: fmc first, microcode last */
    struct cl_snp_tcb tt = {.fmc = 1, .bootloader = 2, .tee = 3, .snp = 4, .microcode = 5};
    uint64_t enc = cl_snp_tcb_encode(tt, CL_SNP_TURIN);
    assert_int_equal(enc, 0x0500000004030201ull);
    struct cl_snp_tcb back = cl_snp_tcb_decode(enc, CL_SNP_TURIN);
    assert_memory_equal(&back, &tt, sizeof tt);

    /* generations from CPUID */
    struct cl_snp_report p = {.version = 3, .cpuid_fam = 0x19, .cpuid_mod = 0x01};
    assert_int_equal(cl_snp_product_of(&p), CL_SNP_MILAN);
    p.cpuid_mod = 0x11;
    assert_int_equal(cl_snp_product_of(&p), CL_SNP_GENOA);
    p.cpuid_mod = 0xa0;
    assert_int_equal(cl_snp_product_of(&p), CL_SNP_GENOA);
    p.cpuid_mod = 0x30;
    assert_int_equal(cl_snp_product_of(&p), CL_SNP_UNKNOWN);
    p.cpuid_fam = 0x1a;
    p.cpuid_mod = 0x02;
    assert_int_equal(cl_snp_product_of(&p), CL_SNP_TURIN);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(SNP "test-report.bin", &n);
    uint8_t buf[CL_SNP_REPORT_SIZE + 1];
    static const struct {
        const char *name;
        size_t len;
        size_t off;
        uint32_t val;
    } cases[] = {
        {"truncated", CL_SNP_REPORT_SIZE - 1, 0, 0},
        {"one byte too many", CL_SNP_REPORT_SIZE + 1, 0, 0},
        {"empty", 0, 0, 0},
        {"version 1", CL_SNP_REPORT_SIZE, 0x00, 1},
        {"version 6", CL_SNP_REPORT_SIZE, 0x00, 6},
        {"signature algorithm 2", CL_SNP_REPORT_SIZE, 0x34, 2},
        {"no signing key", CL_SNP_REPORT_SIZE, 0x48, 7u << 2},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        memset(buf, 0, sizeof buf);
        memcpy(buf, raw, CL_SNP_REPORT_SIZE);
        if (cases[i].off || cases[i].val) {
            for (int b = 0; b < 4; b++)
                buf[cases[i].off + (size_t)b] = (uint8_t)(cases[i].val >> (8 * b));
        }
        struct cl_snp_report r;
        struct cl_err e = {0};
        int rc = cl_snp_report_parse(buf, cases[i].len, &r, &e);
        if (rc != CL_EPARSE || strcmp(e.stage, CL_TEE_STAGE_PARSE) != 0)
            fail_msg("%s: rc %d stage %s", cases[i].name, rc, e.stage ? e.stage : "-");
    }
}

static void test_json_roundtrip(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json("attestation-service/tests/e2e/evidence.json");
    struct cl_snp_report r, r2;
    struct cl_err e = {0};
    assert_int_equal(cl_snp_report_from_json(json_object_get(ev, "attestation_report"), &r, &e), 0);
    assert_int_equal(r.version, 3);
    assert_int_equal(cl_snp_product_of(&r), CL_SNP_GENOA);
    CL_AUTO(json_t) *back = cl_snp_report_to_json(&r);
    assert_non_null(back);
    assert_int_equal(cl_snp_report_from_json(back, &r2, &e), 0);
    assert_memory_equal(r.raw, r2.raw, CL_SNP_REPORT_SIZE);
    /* the serde object must equal trustee's (every key and value) */
    assert_true(json_equal(back, json_object_get(ev, "attestation_report")));

    /* JSON rejections, one per branch */
    static const struct {
        const char *name, *key;
        const char *val; /* JSON text, NULL = delete */
    } cases[] = {
        {"missing version", "version", NULL},
        {"negative vmpl", "vmpl", "-1"},
        {"guest_svn too wide", "guest_svn", "4294967296"},
        {"measurement too short", "measurement", "[1,2,3]"},
        {"byte out of range", "family_id", "[256,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"},
        {"byte not a number", "image_id", "[\"a\",0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"},
        {"tcb not an object", "reported_tcb", "3"},
        {"tcb field missing", "reported_tcb", "{\"bootloader\":1,\"tee\":0,\"snp\":1}"},
        {"fmc before Turin", "launch_tcb",
         "{\"fmc\":1,\"bootloader\":1,\"tee\":0,\"snp\":1,\"microcode\":1}"},
        {"version not an object", "current", "7"},
        {"signature missing", "signature", NULL},
        {"signature r short", "signature", "{\"r\":[1],\"s\":[1]}"},
        {"report data bad base64", "report_data", "\"!!\""},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(json_t) *o = json_deep_copy(json_object_get(ev, "attestation_report"));
        if (cases[i].val)
            json_object_set_new(o, cases[i].key, json_loads(cases[i].val, JSON_DECODE_ANY, NULL));
        else
            json_object_del(o, cases[i].key);
        int rc = cl_snp_report_from_json(o, &r2, &e);
        if (rc >= 0 || strcmp(e.stage, CL_TEE_STAGE_PARSE) != 0)
            fail_msg("%s: rc %d stage %s", cases[i].name, rc, e.stage ? e.stage : "-");
    }
    /* version 5 carries the mitigation vectors (0x1f8, 0x200); Turin lays TCBs out with FMC */
    uint8_t v5[CL_SNP_REPORT_SIZE];
    memcpy(v5, r.raw, sizeof v5);
    v5[0] = 5;
    v5[0x188] = 0x1a; /* Turin */
    v5[0x189] = 0x02;
    v5[0x1f8] = 0x42;
    v5[0x200] = 0x24;
    v5[0x180] = 7; /* reported TCB fmc */
    struct cl_snp_report r5, r6;
    assert_int_equal(cl_snp_report_parse(v5, sizeof v5, &r5, &e), 0);
    assert_int_equal(r5.launch_mit_vector, 0x42);
    assert_int_equal(r5.current_mit_vector, 0x24);
    assert_int_equal(cl_snp_product_of(&r5), CL_SNP_TURIN);
    assert_int_equal(cl_snp_tcb_decode(r5.reported_tcb, CL_SNP_TURIN).fmc, 7);
    CL_AUTO(json_t) *j5 = cl_snp_report_to_json(&r5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j5, "reported_tcb"), "fmc")), 7);
    assert_int_equal(cl_snp_report_from_json(j5, &r6, &e), 0);
    assert_int_equal(r6.launch_mit_vector, 0x42);
    struct cl_snp_tcb t5 = cl_snp_tcb_decode(r5.reported_tcb, CL_SNP_TURIN);
    struct cl_snp_tcb t6 = cl_snp_tcb_decode(r6.reported_tcb, CL_SNP_TURIN);
    assert_memory_equal(&t5, &t6, sizeof t5); /* reserved TCB bytes are not carried by JSON */
    CL_AUTO(json_t) *num = json_integer(3);
    assert_int_equal(cl_snp_report_from_json(num, &r2, &e), CL_EPARSE);
}

/* ---- trustee's VCEK report (version 2, Milan) and its tamper twins ---- */

static void test_vcek_report(void **state)
{
    (void)state;
    size_t n = 0, nv = 0, na = 0, nk = 0, ng = 0, nl = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(SNP "test-report.bin", &n);
    CL_AUTO(cl_bytes) *vcek = tt_read(SNP "test-vcek.der", &nv);
    CL_AUTO(cl_bytes) *ask = cert_der("deps/verifier/src/snp/milan_ask_ark_asvk.pem", 0, &na);
    CL_AUTO(cl_bytes) *ark = cert_der("deps/verifier/src/snp/milan_ask_ark_asvk.pem", 1, &nk);
    CL_AUTO(cl_bytes) *genoa_vcek = cert_der(AZ "vcek-genoa.pem", 0, &ng);
    CL_AUTO(cl_bytes) *vlek = tt_read(SNP "test-vlek.der", &nl);
    size_t nga = 0, ngk = 0;
    CL_AUTO(cl_bytes) *gask = cert_der("deps/verifier/src/snp/genoa_ask_ark_asvk.pem", 0, &nga);
    CL_AUTO(cl_bytes) *gark = cert_der("deps/verifier/src/snp/genoa_ask_ark_asvk.pem", 1, &ngk);
    const uint8_t *rd = raw + 0x50; /* 32 bytes + 32 zeros: a SHA-256 digest regularised */
    uint8_t bad_rd[32], idd[32] = {0}, bad_idd[32] = {1};
    memcpy(bad_rd, rd, 32);
    bad_rd[5] ^= 1;

    /* with the cache: the VCEK is found by chip id, the chain by product */
    CL_AUTO(json_t) *ev = evidence_b64(raw, n, NULL);
    CL_AUTO(json_t) *claims = tt_expect("cache", "snp", ev, rd, 32, idd, 32, &cfg, NULL);
    assert_memory_equal(json_string_value(json_object_get(claims, "measurement")), "a1f39304", 8);
    assert_memory_equal(json_string_value(json_object_get(claims, "report_data")), "ec6c52d7", 8);
    assert_memory_equal(json_string_value(json_object_get(claims, "chip_id")), "c38427a3", 8);
    assert_int_equal(json_integer_value(json_object_get(claims, "reported_tcb_bootloader")), 3);
    assert_int_equal(json_integer_value(json_object_get(claims, "reported_tcb_microcode")), 115);
    assert_int_equal(json_integer_value(json_object_get(claims, "reported_tcb_snp")), 8);
    assert_int_equal(json_integer_value(json_object_get(claims, "policy_abi_minor")), 0x1f);
    assert_int_equal(json_integer_value(json_object_get(claims, "policy_abi_major")), 0);
    assert_true(json_is_true(json_object_get(claims, "policy_smt_allowed")));
    assert_true(json_is_false(json_object_get(claims, "policy_debug_allowed")));
    assert_true(json_is_false(json_object_get(claims, "policy_migrate_ma")));
    assert_int_equal(strlen(json_string_value(json_object_get(claims, "init_data"))), 64);

    /* the same with the chain in the evidence and no cache */
    struct twin {
        const char *name;
        size_t flip;         /* report byte to flip (+1), 0 = none */
        size_t len;          /* report length */
        const uint8_t *c[3]; /* VCEK, ASK, ARK */
        size_t cn[3];
        int cflip; /* which certificate gets its last byte flipped, -1 none */
        const uint8_t *rd;
        const uint8_t *idd;
        int64_t at;
        const char *stage;
    } twins[] = {
        {"evidence chain", 0, n, {vcek, ask, ark}, {nv, na, nk}, -1, rd, idd, TT_TIME, NULL},
        {"VCEK only, no ASK/ARK", 0, n, {vcek}, {nv}, -1, rd, idd, TT_TIME, CL_TEE_STAGE_CHAIN},
        {"no certificates at all", 0, n, {NULL}, {0}, -1, rd, idd, TT_TIME, CL_TEE_STAGE_CHAIN},
        {"flipped bit in the signed body",
         0x90,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped reported TCB",
         0x180,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped bit in the signature",
         0x2a0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped bit in the VCEK",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         0,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_CHAIN},
        {"flipped bit in the ASK",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_CHAIN},
        {"flipped bit in the ARK",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         2,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_CHAIN},
        {"swapped VCEK (another chip)",
         0,
         n,
         {genoa_vcek, gask, gark},
         {ng, nga, ngk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_SIGNATURE},
        {"VLEK for a VCEK report",
         0,
         n,
         {vlek, ask, ark},
         {nl, na, nk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_CHAIN},
        {"truncated report",
         0,
         n - 1,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_PARSE},
        {"wrong report data",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         bad_rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_BIND},
        {"flipped report data",
         0x55,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         TT_TIME,
         CL_TEE_STAGE_BIND},
        {"wrong init-data",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         bad_idd,
         TT_TIME,
         CL_TEE_STAGE_INIT_DATA},
        {"VCEK expired (2031)",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         1924992000,
         CL_TEE_STAGE_CHAIN},
        {"before the VCEK (2022)",
         0,
         n,
         {vcek, ask, ark},
         {nv, na, nk},
         -1,
         rd,
         idd,
         1640995200,
         CL_TEE_STAGE_CHAIN},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(twins); i++) {
        const struct twin *t = &twins[i];
        uint8_t rep[CL_SNP_REPORT_SIZE];
        memcpy(rep, raw, CL_SNP_REPORT_SIZE);
        if (t->flip)
            rep[t->flip] ^= 1;
        json_t *chain = json_array();
        static const char *const types[] = {"VCEK", "ASK", "ARK"};
        for (int k = 0; k < 3 && t->c[k]; k++) {
            uint8_t *copy = malloc(t->cn[k]);
            memcpy(copy, t->c[k], t->cn[k]);
            if (t->cflip == k)
                copy[t->cn[k] - 1] ^= 1;
            json_array_append_new(chain, cert_entry(types[k], copy, t->cn[k]));
            free(copy);
        }
        CL_AUTO(json_t) *tev = evidence_b64(rep, t->len, chain);
        struct cl_tee_config c = nocache;
        c.verify_time = t->at;
        json_t *cl = tt_expect(t->name, "snp", tev, t->rd, 32, t->idd, 32, &c, t->stage);
        json_decref(cl);
    }

    /* evidence shape */
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"attestation_report\": 3}",
        "{\"attestation_report\": \"AAAA\"}",
        "{\"attestation_report\": \"%%%\"}",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *b = json_loads(bad[i], 0, NULL);
        json_decref(tt_expect(bad[i], "snp", b, rd, 32, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
    }
    static const char *const badchain[] = {
        "3",
        "[3]",
        "[{\"cert_type\":\"VCEK\"}]",
        "[{\"cert_type\":\"VCEK\",\"data\":[1,2,3]}]",
        "[{\"cert_type\":\"VCEK\",\"data\":\"!!\"}]",
        "[{\"data\":[48]}]",
        "[1,2,3,4,5,6,7,8,9]",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(badchain); i++) {
        CL_AUTO(json_t) *b = evidence_b64(raw, n, json_loads(badchain[i], JSON_DECODE_ANY, NULL));
        json_decref(tt_expect(badchain[i], "snp", b, rd, 32, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
    }
    /* unknown cert types (CRL, OTHER) are skipped */
    CL_AUTO(json_t) *other =
        evidence_b64(raw, n, json_pack("[{s:s, s:[i]}]", "cert_type", "CRL", "data", 1));
    json_decref(tt_expect("CRL entry skipped", "snp", other, rd, 32, NULL, 0, &cfg, NULL));
    /* no report data given (inspection only): binding not checked */
    json_decref(tt_expect("no report data", "snp", ev, NULL, 0, NULL, 0, &cfg, NULL));
}

/* ---- trustee's VLEK report (version 3, VMPL 1) ---- */

static void test_vlek_report(void **state)
{
    (void)state;
    size_t n = 0, nl = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(SNP "test-vlek-report.bin", &n);
    CL_AUTO(cl_bytes) *vlek = tt_read(SNP "test-vlek.der", &nl);
    struct cl_snp_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_snp_report_parse(raw, n, &r, &e), 0);
    CL_AUTO(cl_tee_x509s) *sup = cl_tee_x509_parse_any(vlek, nl, &e);
    assert_non_null(sup);
    enum cl_snp_product p = CL_SNP_UNKNOWN;
    /* chain ARK-Milan → SEV-VLEK-Milan → VLEK, signature and TCB all verify */
    if (cl_snp_verify_hw(&r, sup, &cfg, &p, &e) != 0)
        fail_msg("VLEK: %s (%s)", e.msg, e.stage);
    assert_int_equal(p, CL_SNP_MILAN);
    /* ... but the VLEK has expired since (2025-12-10) */
    struct cl_tee_config later = cfg;
    later.verify_time = 1767225600; /* 2026-01-01 */
    assert_int_equal(cl_snp_verify_hw(&r, sup, &later, &p, &e), CL_EEXPIRED);
    assert_string_equal(e.stage, CL_TEE_STAGE_CHAIN);
    /* the whole verifier refuses VMPL 1 */
    json_t *chain = json_array();
    json_array_append_new(chain, cert_entry("VLEK", vlek, nl));
    CL_AUTO(json_t) *ev = evidence_b64(raw, n, chain);
    json_decref(tt_expect("VMPL 1", "snp", ev, raw + 0x50, 64, NULL, 0, &cfg, CL_TEE_STAGE_TCB));
    /* tamper twins */
    raw[0x90] ^= 1;
    assert_int_equal(cl_snp_report_parse(raw, n, &r, &e), 0);
    assert_int_equal(cl_snp_verify_hw(&r, sup, &cfg, &p, &e), CL_EVERIFY);
    assert_string_equal(e.stage, CL_TEE_STAGE_SIGNATURE);
    raw[0x90] ^= 1;
    /* a VLEK report without the VLEK: VLEKs are not fetched per chip */
    assert_int_equal(cl_snp_report_parse(raw, n, &r, &e), 0);
    assert_int_equal(cl_snp_verify_hw(&r, NULL, &cfg, &p, &e), CL_ENOTFOUND);
    assert_string_equal(e.stage, CL_TEE_STAGE_CHAIN);
}

/* ---- trustee's e2e evidence (Genoa, JSON report, VCEK in cert_chain) ---- */

static void test_genoa_evidence(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json("attestation-service/tests/e2e/evidence.json");
    struct cl_snp_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_snp_report_from_json(json_object_get(ev, "attestation_report"), &r, &e), 0);
    uint8_t rd[64];
    memcpy(rd, r.report_data, 64);
    CL_AUTO(json_t) *claims = tt_expect("e2e evidence", "snp", ev, rd, 64, NULL, 0, &cfg, NULL);
    assert_memory_equal(json_string_value(json_object_get(claims, "report_data")), "7e732088", 8);
    assert_int_equal(json_integer_value(json_object_get(claims, "reported_tcb_bootloader")), 10);
    assert_int_equal(json_integer_value(json_object_get(claims, "reported_tcb_snp")), 23);
    assert_int_equal(json_integer_value(json_object_get(claims, "reported_tcb_microcode")), 25);
    assert_true(json_is_false(json_object_get(claims, "policy_debug_allowed")));

    size_t nv = 0;
    CL_AUTO(cl_bytes) *milan_vcek = tt_read(SNP "test-vcek.der", &nv);
    size_t ng = 0;
    CL_AUTO(cl_bytes) *az_genoa = cert_der(AZ "vcek-genoa.pem", 0, &ng);
    struct {
        const char *name;
        const char *key; /* report member to change */
        int idx;
        int cert; /* 0 keep, 1 flip last byte, 2 Milan VCEK, 3 another Genoa chip */
        bool wrong_rd;
        const char *stage;
    } twins[] = {
        {"flipped measurement", "measurement", 3, 0, false, CL_TEE_STAGE_SIGNATURE},
        {"flipped chip id", "chip_id", 0, 0, false, CL_TEE_STAGE_SIGNATURE},
        {"flipped signature r", NULL, 0, 0, false, CL_TEE_STAGE_SIGNATURE},
        {"flipped bit in the VCEK", NULL, -1, 1, false, CL_TEE_STAGE_CHAIN},
        {"swapped VCEK (Milan)", NULL, -1, 2, false, CL_TEE_STAGE_CHAIN},
        {"swapped VCEK (other Genoa chip)", NULL, -1, 3, false, CL_TEE_STAGE_SIGNATURE},
        {"wrong report data", NULL, -1, 0, true, CL_TEE_STAGE_BIND},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(twins); i++) {
        CL_AUTO(json_t) *t = json_deep_copy(ev);
        json_t *rep = json_object_get(t, "attestation_report");
        if (twins[i].key) {
            json_t *a = json_object_get(rep, twins[i].key);
            json_array_set_new(
                a, (size_t)twins[i].idx,
                json_integer(json_integer_value(json_array_get(a, (size_t)twins[i].idx)) ^ 1));
        } else if (twins[i].idx == 0) {
            json_t *a = json_object_get(json_object_get(rep, "signature"), "r");
            json_array_set_new(a, 0, json_integer(json_integer_value(json_array_get(a, 0)) ^ 1));
        }
        json_t *data = json_object_get(json_array_get(json_object_get(t, "cert_chain"), 0), "data");
        if (twins[i].cert == 1) {
            size_t last = json_array_size(data) - 1;
            json_array_set_new(data, last,
                               json_integer(json_integer_value(json_array_get(data, last)) ^ 1));
        } else if (twins[i].cert >= 2) {
            json_t *c = twins[i].cert == 2 ? cert_entry("VCEK", milan_vcek, nv)
                                           : cert_entry("VCEK", az_genoa, ng);
            json_array_set_new(json_object_get(t, "cert_chain"), 0, c);
        }
        uint8_t trd[64];
        memcpy(trd, rd, 64);
        if (twins[i].wrong_rd)
            trd[63] ^= 0x80;
        json_decref(tt_expect(twins[i].name, "snp", t, trd, 64, NULL, 0, &cfg, twins[i].stage));
    }
    /* the Genoa chain is not in the evidence: without the cache, no ASK */
    json_decref(tt_expect("no cache", "snp", ev, rd, 64, NULL, 0, &nocache, CL_TEE_STAGE_CHAIN));
    /* KDS online but unreachable: the chain fetch fails (EIO), still stage chain */
    struct cl_tee_config online = nocache;
    online.snp_kds_online = true;
    online.snp_kds_url = "http://127.0.0.1:9";
    json_decref(
        tt_expect("KDS unreachable", "snp", ev, rd, 64, NULL, 0, &online, CL_TEE_STAGE_CHAIN));
}

/* ---- the certified-TCB check and both hwID encodings ---- */

static void test_tcb_check(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(SNP "test-report.bin", &n);
    struct cl_snp_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_snp_report_parse(raw, n, &r, &e), 0);
    CL_AUTO(cl_tee_x509s) *vcek = cl_tee_x509_load(tt_path(SNP "test-vcek.der"), &e);
    assert_non_null(vcek);
    X509 *c = sk_X509_value(vcek, 0);
    assert_int_equal(cl_snp_check_tcb(&r, c, CL_SNP_MILAN, &e), 0);
    struct cl_snp_report t = r;
    t.reported_tcb += 1; /* bootloader 3 → 4 (trustee's check_report_tcb_failure) */
    assert_int_equal(cl_snp_check_tcb(&t, c, CL_SNP_MILAN, &e), CL_EVERIFY);
    assert_string_equal(e.stage, CL_TEE_STAGE_TCB);
    t = r;
    t.chip_id[9] ^= 1;
    assert_int_equal(cl_snp_check_tcb(&t, c, CL_SNP_MILAN, &e), CL_EVERIFY);
    assert_non_null(strstr(e.msg, "hwID"));
    t = r;
    memset(t.chip_id, 0, sizeof t.chip_id); /* MASK_CHIP_ID: nothing to compare */
    assert_int_equal(cl_snp_check_tcb(&t, c, CL_SNP_MILAN, &e), 0);
    assert_int_equal(cl_snp_check_tcb(&r, c, CL_SNP_TURIN, &e),
                     CL_EVERIFY); /* no fmc extension, other layout */

    /* synthetic VCEKs: raw (legacy) and OCTET STRING (new) hwID encodings parse alike */
    static const struct {
        const char *file;
        struct cl_snp_tcb tcb;
    } syn[] = {
        {SNP "test-vcek-invalid-legacy.der", {0, 3, 0, 10, 169}},
        {SNP "test-vcek-invalid-new.der", {0, 0, 0, 0, 30}},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(syn); i++) {
        CL_AUTO(cl_tee_x509s) *sk = cl_tee_x509_load(tt_path(syn[i].file), &e);
        assert_non_null(sk);
        t = r;
        for (int k = 0; k < 64; k++)
            t.chip_id[k] = (uint8_t)k;
        t.reported_tcb = cl_snp_tcb_encode(syn[i].tcb, CL_SNP_MILAN);
        if (cl_snp_check_tcb(&t, sk_X509_value(sk, 0), CL_SNP_MILAN, &e) != 0)
            fail_msg("%s: %s", syn[i].file, e.msg);
        t.chip_id[63] ^= 1;
        assert_int_equal(cl_snp_check_tcb(&t, sk_X509_value(sk, 0), CL_SNP_MILAN, &e), CL_EVERIFY);
    }
}

static void test_attributes(void **state)
{
    (void)state;
    struct cl_snp_report r = {.version = 3, .policy = 0x30000};
    struct cl_err e = {0};
    assert_int_equal(cl_snp_check_attributes(&r, NULL, &e), 0);
    r.vmpl = 2;
    assert_int_equal(cl_snp_check_attributes(&r, NULL, &e), CL_EVERIFY);
    assert_string_equal(e.stage, CL_TEE_STAGE_TCB);
    r.vmpl = 0;
    r.policy |= CL_SNP_POLICY_DEBUG;
    assert_int_equal(cl_snp_check_attributes(&r, NULL, &e), CL_EDENIED);
    assert_string_equal(e.stage, CL_TEE_STAGE_TCB);
    struct cl_tee_config dbg = {.allow_debug_insecure = true};
    assert_int_equal(cl_snp_check_attributes(&r, &dbg, &e), 0);
    /* claims reflect the debug bit */
    CL_AUTO(json_t) *c = cl_snp_claims(&r, CL_SNP_MILAN, false, &e);
    assert_true(json_is_true(json_object_get(c, "policy_debug_allowed")));
    CL_AUTO(json_t) *s = cl_snp_claims(&r, CL_SNP_TURIN, true, &e);
    assert_string_equal(json_string_value(json_object_get(s, "policy_debug_allowed")), "true");
    assert_string_equal(json_string_value(json_object_get(s, "policy_abi_major")), "0");
    assert_non_null(json_object_get(s, "reported_tcb_fmc"));
    assert_string_equal(json_string_value(json_object_get(s, "measurement")),
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
}

static void test_pins(void **state)
{
    (void)state;
    /* each product file holds ASK, ARK, ASVK; exactly the ARK is pinned */
    static const char *const files[] = {"milan", "genoa", "turin"};
    for (size_t i = 0; i < 3; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "deps/verifier/src/snp/%s_ask_ark_asvk.pem", files[i]);
        struct cl_err e = {0};
        CL_AUTO(cl_tee_x509s) *sk = cl_tee_x509_load(tt_path(rel), &e);
        assert_non_null(sk);
        assert_int_equal(sk_X509_num(sk), 3);
        assert_false(cl_tee_x509_pinned(sk_X509_value(sk, 0), cl_snp_ark_pins, cl_snp_ark_npins));
        assert_true(cl_tee_x509_pinned(sk_X509_value(sk, 1), cl_snp_ark_pins, cl_snp_ark_npins));
        assert_false(cl_tee_x509_pinned(sk_X509_value(sk, 2), cl_snp_ark_pins, cl_snp_ark_npins));
        /* ARK self-signed, ASK and ASVK signed by it (RSA-PSS) */
        assert_int_equal(
            cl_tee_x509_link(sk_X509_value(sk, 1), sk_X509_value(sk, 1), TT_TIME, "ARK", &e), 0);
        assert_int_equal(
            cl_tee_x509_link(sk_X509_value(sk, 0), sk_X509_value(sk, 1), TT_TIME, "ASK", &e), 0);
        assert_int_equal(
            cl_tee_x509_link(sk_X509_value(sk, 2), sk_X509_value(sk, 1), TT_TIME, "ASVK", &e), 0);
        assert_int_equal(
            cl_tee_x509_link(sk_X509_value(sk, 1), sk_X509_value(sk, 0), TT_TIME, "ARK", &e),
            CL_EVERIFY);
    }
}

/* the verified-chain cache: a hit only for the same bytes, inside the chain's window */
static void test_cache(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(SNP "test-report.bin", &n);
    CL_AUTO(json_t) *ev = evidence_b64(raw, n, NULL);
    cl_tee_cache_clear();
    json_decref(tt_expect("first (cold)", "snp", ev, raw + 0x50, 32, NULL, 0, &cfg, NULL));
    json_decref(tt_expect("second (cached chain)", "snp", ev, raw + 0x50, 32, NULL, 0, &cfg, NULL));
    struct cl_tee_config late = cfg;
    late.verify_time = 1924992000; /* 2031: outside the VCEK's window, the cache does not answer */
    json_decref(tt_expect("cached chain, expired", "snp", ev, raw + 0x50, 32, NULL, 0, &late,
                          CL_TEE_STAGE_CHAIN));
    struct cl_tee_cache_key a, b;
    CL_AUTO(cl_tee_x509s) *v = cl_tee_x509_load(tt_path(SNP "test-vcek.der"), NULL);
    X509 *c = sk_X509_value(v, 0);
    cl_tee_cache_key_certs("t", &c, 1, "x", 1, &a);
    cl_tee_cache_key_certs("t", &c, 1, "y", 1, &b);
    assert_memory_not_equal(a.h, b.h, 32);
    assert_false(cl_tee_cache_hit(&a, 100));
    cl_tee_cache_put(&a, 50, 150);
    assert_true(cl_tee_cache_hit(&a, 100));
    assert_false(cl_tee_cache_hit(&a, 150));
    assert_false(cl_tee_cache_hit(&b, 100));
    for (int i = 0; i < CL_TEE_CACHE_SLOTS; i++) /* the oldest entry is the one replaced */
        cl_tee_cache_put(&b, 0, 1);
    assert_false(cl_tee_cache_hit(&a, 100));
    cl_tee_cache_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),          cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_json_roundtrip), cmocka_unit_test(test_vcek_report),
        cmocka_unit_test(test_vlek_report),    cmocka_unit_test(test_genoa_evidence),
        cmocka_unit_test(test_tcb_check),      cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_pins),           cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
