/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hygon CSV verifier: trustee's csv_evidence.json (a version-1 report with its PEK) and the
 * Hygon root key hrk.cert. What the vectors prove is checked on the real bytes: the report
 * layout, the PEK rebuilt from its JSON equal to the one in the report, the report's SM2
 * signature by the PEK, the HRK's self-signature and pin. The HSK and CEK of that chip are
 * not in the vectors (trustee downloads them from Hygon), so the whole verifier refuses the
 * real evidence at the chain stage offline — the expected outcome. The chain code itself is
 * proven with an HRK/HSK/CEK made here in the same formats, certifying the real PEK. Every
 * positive case has tamper twins.
 */
#include "tee_test.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "tee/csv/csv.h"
#include "tee/tee_int.h"

#define EVIDENCE "deps/verifier/test_data/csv_evidence.json"
#define HRK "deps/verifier/src/csv/hrk.cert"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    tmp = tt_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tt_rmtree(tmp);
    free(tmp);
    return 0;
}

static uint8_t *report_bytes(json_t *ev, size_t *n)
{
    struct cl_err e = {0};
    uint8_t *b = cl_tee_json_bytes(
        json_object_get(json_object_get(ev, "attestation_report"), "data"), 0, 4096, n, "data", &e);
    assert_non_null(b);
    return b;
}

static void set_report(json_t *ev, const uint8_t *b, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(b[i]));
    json_object_set_new(json_object_get(ev, "attestation_report"), "data", a);
}

static void test_report(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(EVIDENCE);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = report_bytes(ev, &n);
    struct cl_csv_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_csv_report_parse(b, n, &r, &e), 0);
    assert_int_equal(r.policy, 0x45); /* nodbg, es, csv3 */
    assert_int_equal(r.sig_usage, CL_CSV_USAGE_PEK);
    assert_int_equal(r.sig_algo, CL_CSV_ALGO_SM2_SM3);
    assert_int_equal(r.anonce, 0x5dc7d726);
    assert_string_equal(r.serial_number, "KPA64911240507");
    static const uint8_t zero[64];
    assert_memory_equal(r.report_data, zero, 64); /* trustee's vector: ReportData::NotProvided */
    assert_int_equal(r.pek.usage, CL_CSV_USAGE_PEK);
    assert_int_equal(r.pek.key.uid_len, 13);
    assert_memory_equal(r.pek.key.uid, "HYGON-SSD-PEK", 13);
    assert_int_equal(r.pek.sig[0].usage, CL_CSV_USAGE_CEK);
    assert_int_equal(r.pek.sig[1].usage, CL_CSV_USAGE_OCA);
    /* the serde JSON of the PEK rebuilds the exact bytes carried in the report */
    struct cl_csv_cert pek;
    assert_int_equal(
        cl_csv_cert_from_json(json_object_get(json_object_get(ev, "cert_chain"), "pek"), &pek,
                              "pek", &e),
        0);
    assert_memory_equal(pek.raw, r.pek.raw, CL_CSV_CERT_SIZE);

    /* the report signature by the PEK; twins: signed body, signature, PEK key */
    assert_int_equal(cl_csv_report_verify(&r, &pek, &e), 0);
    struct cl_csv_report t = r;
    t.signed_part[0x90] ^= 1; /* measure */
    assert_int_equal(cl_csv_report_verify(&t, &pek, &e), CL_EVERIFY);
    assert_string_equal(e.stage, CL_TEE_STAGE_SIGNATURE);
    t = r;
    t.sig.s[31] ^= 1;
    assert_int_equal(cl_csv_report_verify(&t, &pek, &e), CL_EVERIFY);
    struct cl_csv_cert p2 = pek;
    p2.key.uid[0] ^= 1; /* another distinguishing id: another SM2 Z value */
    assert_int_equal(cl_csv_report_verify(&r, &p2, &e), CL_EVERIFY);

    /* parse rejections: sizes, padding, usage, algorithm, curve, serial number */
    static const struct {
        const char *name;
        size_t off;
        uint8_t x;
    } bad[] = {
        {"sig_usage", 0xb4, 0x01},
        {"sig_algo", 0xb8, 0x01},
        {"r padding", 0xc0 + 40, 0x01},
        {"PEK version", 0x150, 0x02},
        {"PEK algo", 0x150 + 0xc, 0x01},
        {"PEK curve", 0x150 + 0x10, 0x01},
        {"PEK x padding", 0x150 + 0x14 + 50, 0x01},
        {"serial number", 0x974 + 3, 0x80},
        {"serial slash", 0x974 + 3, '6' ^ '/'},
        {"serial empty", 0x974, 'K'},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(cl_bytes) *x = malloc(n);
        memcpy(x, b, n);
        x[bad[i].off] ^= bad[i].x;
        if (cl_csv_report_parse(x, n, &t, &e) == 0)
            fail_msg("%s: accepted", bad[i].name);
        assert_string_equal(e.stage, CL_TEE_STAGE_PARSE);
    }
    assert_int_equal(cl_csv_report_parse(b, CL_CSV_REPORT_V1_SIZE - 1, &t, &e), CL_EPARSE);
}

static void test_hrk(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = tt_read(HRK, &n);
    struct cl_csv_ca_cert hrk;
    struct cl_err e = {0};
    assert_int_equal(cl_csv_ca_cert_parse(b, n, &hrk, &e), 0);
    assert_memory_equal(hrk.key_id, hrk.certifying_id, 16);
    assert_memory_equal(hrk.key.uid, "HYGON-SSD-HRK", 13);
    assert_int_equal(cl_csv_sm2_verify(&hrk.key, hrk.raw, CL_CSV_CA_SIGNED, &hrk.sig, &e), 0);
    b[0x100] ^= 1; /* inside the signed part (user id padding) */
    assert_int_equal(cl_csv_ca_cert_parse(b, n, &hrk, &e), 0);
    assert_int_equal(cl_csv_sm2_verify(&hrk.key, hrk.raw, CL_CSV_CA_SIGNED, &hrk.sig, &e),
                     CL_EVERIFY);
    assert_int_equal(cl_csv_ca_cert_parse(b, n - 1, &hrk, &e), CL_EPARSE);
}

/* ---- a chain made here, in Hygon's formats ---- */

static EVP_PKEY *sm2_gen(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    assert_non_null(k);
    return k;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* 32 big-endian bytes → a 72-byte little-endian field */
static void put_coord(uint8_t *p, const uint8_t *be)
{
    memset(p, 0, CL_CSV_COORD);
    for (int i = 0; i < 32; i++)
        p[i] = be[31 - i];
}

/* curve, x, y, uid_size, user id at p */
static void put_key(uint8_t *p, EVP_PKEY *k, const char *uid)
{
    uint8_t pt[65];
    size_t pl = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &pl), 1);
    assert_int_equal(pl, 65);
    put_le32(p, CL_CSV_CURVE_SM2);
    put_coord(p + 4, pt + 1);
    put_coord(p + 4 + 72, pt + 33);
    p[148] = (uint8_t)strlen(uid);
    p[149] = 0;
    memcpy(p + 150, uid, strlen(uid));
}

static void sm2_sign(EVP_PKEY *k, const char *uid, const uint8_t *data, size_t len, uint8_t *r72,
                     uint8_t *s72)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    assert_true(m && pc && EVP_PKEY_CTX_set1_id(pc, uid, strlen(uid)) > 0);
    EVP_MD_CTX_set_pkey_ctx(m, pc);
    uint8_t der[128];
    size_t dl = sizeof der;
    assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SM3", NULL, NULL, k, NULL), 1);
    assert_int_equal(EVP_DigestSign(m, der, &dl, data, len), 1);
    const unsigned char *q = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)dl);
    assert_non_null(es);
    uint8_t r[32], s[32];
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), r, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), s, 32), 32);
    put_coord(r72, r);
    put_coord(s72, s);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(m);
    EVP_PKEY_CTX_free(pc);
}

static void make_ca(uint8_t *b, EVP_PKEY *k, const char *uid, const uint8_t id[16],
                    const uint8_t certifier[16], uint32_t usage, EVP_PKEY *signer,
                    const char *signer_uid)
{
    memset(b, 0, CL_CSV_CA_CERT_SIZE);
    put_le32(b, 1);
    memcpy(b + 4, id, 16);
    memcpy(b + 0x14, certifier, 16);
    put_le32(b + 0x24, usage);
    put_key(b + 0x40, k, uid);
    sm2_sign(signer, signer_uid, b, CL_CSV_CA_SIGNED, b + 0x240, b + 0x240 + 72);
}

static void sign_slot(uint8_t *cert, size_t slot, uint32_t usage, EVP_PKEY *signer,
                      const char *signer_uid)
{
    uint8_t *s = cert + CL_CSV_CERT_SIGNED + 520 * slot;
    put_le32(s, usage);
    put_le32(s + 4, CL_CSV_ALGO_SM2_SM3);
    sm2_sign(signer, signer_uid, cert, CL_CSV_CERT_SIGNED, s + 8, s + 80);
}

struct test_chain {
    uint8_t hrk[CL_CSV_CA_CERT_SIZE], hsk[CL_CSV_CA_CERT_SIZE], cek[CL_CSV_CERT_SIZE],
        pek[CL_CSV_CERT_SIZE];
};

static void make_chain(struct test_chain *c, const uint8_t *real_pek)
{
    static const uint8_t hrk_id[16] = {1, 2, 3}, hsk_id[16] = {4, 5, 6};
    EVP_PKEY *hrk = sm2_gen(), *hsk = sm2_gen(), *cek = sm2_gen();
    make_ca(c->hrk, hrk, "TEST-HRK", hrk_id, hrk_id, 0x0000, hrk, "TEST-HRK");
    make_ca(c->hsk, hsk, "TEST-HSK", hsk_id, hrk_id, 0x0013, hrk, "TEST-HRK");
    memset(c->cek, 0, sizeof c->cek);
    put_le32(c->cek, 1);
    c->cek[4] = 1;
    c->cek[5] = 3;
    put_le32(c->cek + 8, CL_CSV_USAGE_CEK);
    put_le32(c->cek + 12, CL_CSV_ALGO_SM2_SM3);
    put_key(c->cek + 0x10, cek, "TEST-CEK");
    sign_slot(c->cek, 0, 0x0013, hsk, "TEST-HSK");
    memcpy(c->pek, real_pek, CL_CSV_CERT_SIZE);
    sign_slot(c->pek, 0, CL_CSV_USAGE_CEK, cek,
              "TEST-CEK"); /* the real PEK, certified by this CEK */
    EVP_PKEY_free(hrk);
    EVP_PKEY_free(hsk);
    EVP_PKEY_free(cek);
}

static int chain_rc(const struct test_chain *c, struct cl_err *e)
{
    struct cl_csv_ca_cert hrk, hsk;
    struct cl_csv_cert cek, pek;
    if (cl_csv_ca_cert_parse(c->hrk, sizeof c->hrk, &hrk, e) < 0 ||
        cl_csv_ca_cert_parse(c->hsk, sizeof c->hsk, &hsk, e) < 0 ||
        cl_csv_cert_parse(c->cek, sizeof c->cek, &cek, e) < 0 ||
        cl_csv_cert_parse(c->pek, sizeof c->pek, &pek, e) < 0)
        return e->code;
    return cl_csv_verify_chain(&hrk, &hsk, &cek, &pek, e);
}

static void test_chain(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(EVIDENCE);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = report_bytes(ev, &n);
    struct test_chain *c = malloc(sizeof *c);
    make_chain(c, b + 0x150);
    struct cl_err e = {0};
    if (chain_rc(c, &e) != 0)
        fail_msg("made chain: %s", e.msg);
    /* tamper twins, one per link */
    static const struct {
        const char *name;
        size_t field, off;
    } flips[] = {
        {"HRK body", 0, 0x50},
        {"HRK signature", 0, 0x250},
        {"HSK key", 1, 0x44},
        {"HSK certifying id", 1, 0x14},
        {"HSK signature", 1, 0x288 + 3},
        {"CEK key", 2, 0x20},
        {"CEK usage", 2, 8},
        {"CEK signature", 2, 0x414 + 8},
        {"PEK key", 3, 0x30},
        {"PEK usage", 3, 8},
        {"PEK signature", 3, 0x414 + 90},
        {"PEK sig usage", 3, 0x414},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(flips); i++) {
        struct test_chain t = *c;
        uint8_t *f = flips[i].field == 0   ? t.hrk
                     : flips[i].field == 1 ? t.hsk
                     : flips[i].field == 2 ? t.cek
                                           : t.pek;
        f[flips[i].off] ^= 0x01;
        int rc = chain_rc(&t, &e);
        if (rc == 0)
            fail_msg("%s: chain accepted", flips[i].name);
        if (rc != CL_EVERIFY && rc != CL_EPARSE)
            fail_msg("%s: %s", flips[i].name, cl_err_name(rc));
    }
    /* the real HRK cannot stand in for the made one (HSK not certified by it) */
    struct test_chain t = *c;
    size_t hn = 0;
    CL_AUTO(cl_bytes) *real = tt_read(HRK, &hn);
    memcpy(t.hrk, real, hn);
    assert_int_equal(chain_rc(&t, &e), CL_EVERIFY);
    assert_string_equal(e.stage, CL_TEE_STAGE_CHAIN);
    free(c);
}

static void test_verifier(void **state)
{
    (void)state;
    static const uint8_t rd[64];
    struct cl_tee_config cfg = {.verify_time = TT_TIME, .csv_cert_dir = tmp};
    CL_AUTO(json_t) *ev = tt_json(EVIDENCE);
    assert_non_null(cl_tee_verifier_find("csv"));
    /* no root in the folder */
    json_decref(tt_expect("no HRK", "csv", ev, rd, sizeof rd, NULL, 0, &cfg, CL_TEE_STAGE_CHAIN));
    /* the pinned HRK, but the chip's HSK/CEK are not available offline: refused at chain */
    tt_link(tmp, "hrk.cert", HRK);
    json_decref(tt_expect("real vector, no HSK/CEK", "csv", ev, rd, sizeof rd, NULL, 0, &cfg,
                          CL_TEE_STAGE_CHAIN));

    /* an HSK/CEK from the folder that does not chain to the pinned HRK */
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = report_bytes(ev, &n);
    struct test_chain *c = malloc(sizeof *c);
    make_chain(c, b + 0x150);
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/hsk_cek/KPA64911240507", tmp);
    struct cl_err e = {0};
    assert_int_equal(cl_mkdir_p(dir, 0755, &e), 0);
    snprintf(path, sizeof path, "%s/hsk_cek.cert", dir);
    uint8_t hc[CL_CSV_CA_CERT_SIZE + CL_CSV_CERT_SIZE];
    memcpy(hc, c->hsk, CL_CSV_CA_CERT_SIZE);
    memcpy(hc + CL_CSV_CA_CERT_SIZE, c->cek, CL_CSV_CERT_SIZE);
    assert_int_equal(cl_file_write_atomic(path, hc, sizeof hc, 0644, &e), 0);
    json_decref(tt_expect("HSK from another root", "csv", ev, rd, sizeof rd, NULL, 0, &cfg,
                          CL_TEE_STAGE_CHAIN));
    assert_int_equal(cl_file_write_atomic(path, hc, sizeof hc - 1, 0644, &e), 0);
    json_decref(tt_expect("short hsk_cek.cert", "csv", ev, rd, sizeof rd, NULL, 0, &cfg,
                          CL_TEE_STAGE_CHAIN));
    /* the same through the evidence's hsk_cek member */
    CL_AUTO(json_t) *ev2 = json_deep_copy(ev);
    CL_AUTO(cl_str) *hsk64 = cl_b64_encode(c->hsk, CL_CSV_CA_CERT_SIZE, CL_B64_STD);
    CL_AUTO(cl_str) *cek64 = cl_b64_encode(c->cek, CL_CSV_CERT_SIZE, CL_B64_STD);
    json_object_set_new(json_object_get(ev2, "cert_chain"), "hsk_cek",
                        json_pack("{s:s, s:s}", "hsk", hsk64, "cek", cek64));
    json_decref(tt_expect("evidence HSK from another root", "csv", ev2, rd, sizeof rd, NULL, 0,
                          &cfg, CL_TEE_STAGE_CHAIN));
    free(c);

    /* tamper twins of the evidence, refused before the chain is even looked at */
    uint8_t wrong[64] = {1};
    json_decref(tt_expect("wrong report data", "csv", ev, wrong, sizeof wrong, NULL, 0, &cfg,
                          CL_TEE_STAGE_BIND));
    static const struct {
        const char *name;
        size_t off;
        const char *stage;
    } flips[] = {
        {"report_data byte", 0x40, CL_TEE_STAGE_BIND},
        {"measure byte", 0x95, CL_TEE_STAGE_SIGNATURE},
        {"vm_id byte", 0x21, CL_TEE_STAGE_SIGNATURE},
        {"signature byte", 0xc5, CL_TEE_STAGE_SIGNATURE},
        {"embedded PEK byte", 0x170, CL_TEE_STAGE_PARSE},
        {"serial byte", 0x975, CL_TEE_STAGE_PARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(flips); i++) {
        CL_AUTO(json_t) *t = json_deep_copy(ev);
        CL_AUTO(cl_bytes) *x = malloc(n);
        memcpy(x, b, n);
        x[flips[i].off] ^= 0x01;
        set_report(t, x, n);
        json_decref(
            tt_expect(flips[i].name, "csv", t, rd, sizeof rd, NULL, 0, &cfg, flips[i].stage));
    }
    CL_AUTO(json_t) *t2 = json_deep_copy(ev);
    set_report(t2, b, CL_CSV_REPORT_V1_SIZE - 8);
    json_decref(
        tt_expect("truncated", "csv", t2, rd, sizeof rd, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
    CL_AUTO(json_t) *t3 = json_deep_copy(ev);
    json_array_set_new(json_object_get(t3, "serial_number"), 0, json_integer('X'));
    json_decref(tt_expect("other serial number", "csv", t3, rd, sizeof rd, NULL, 0, &cfg,
                          CL_TEE_STAGE_PARSE));
    CL_AUTO(json_t) *t4 = json_deep_copy(ev);
    json_array_set_new(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(t4, "cert_chain"), "pek"), "body"),
                "data"),
            "user_id"),
        0, json_integer('X'));
    json_decref(tt_expect("other PEK in evidence", "csv", t4, rd, sizeof rd, NULL, 0, &cfg,
                          CL_TEE_STAGE_PARSE));
    CL_AUTO(json_t) *t5 = json_deep_copy(ev);
    json_array_set_new(json_object_get(json_object_get(t5, "attestation_report"), "magic"), 0,
                       json_integer(1));
    json_decref(
        tt_expect("version 2 magic", "csv", t5, rd, sizeof rd, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));

    /* a root that is not pinned */
    char hrk_path[4300];
    snprintf(hrk_path, sizeof hrk_path, "%s/hrk.cert", tmp);
    assert_int_equal(unlink(hrk_path), 0);
    size_t hn = 0;
    CL_AUTO(cl_bytes) *h = tt_read(HRK, &hn);
    h[0x300] ^= 1; /* outside the signed part: only the pin notices */
    assert_int_equal(cl_file_write_atomic(hrk_path, h, hn, 0644, &e), 0);
    json_decref(
        tt_expect("unpinned HRK", "csv", ev, rd, sizeof rd, NULL, 0, &cfg, CL_TEE_STAGE_CHAIN));
}

static void test_claims(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(EVIDENCE);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = report_bytes(ev, &n);
    struct cl_csv_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_csv_report_parse(b, n, &r, &e), 0);
    CL_AUTO(json_t) *c = cl_csv_claims(&r, &e);
    assert_non_null(c);
    static const char *const names[] = {
        "version", "policy",  "user_pubkey_digest", "vm_id",    "vm_version",    "report_data",
        "mnonce",  "measure", "sig_usage",          "sig_algo", "serial_number", "anonce"};
    for (size_t i = 0; i < CL_ARRAY_LEN(names); i++)
        if (!json_object_get(c, names[i]))
            fail_msg("claim %s missing", names[i]);
    json_t *p = json_object_get(c, "policy");
    assert_true(json_is_true(json_object_get(p, "nodbg")));
    assert_true(json_is_true(json_object_get(p, "es")));
    assert_true(json_is_true(json_object_get(p, "csv3")));
    assert_true(json_is_false(json_object_get(p, "noks")));
    assert_string_equal(json_string_value(json_object_get(c, "serial_number")), "KPA64911240507");
    assert_string_equal(json_string_value(json_object_get(c, "measure")),
                        "ae2a2cf1f41a485fa37bf9ae92f678783c59fbc79de7b5d237743d58f5538034");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report), cmocka_unit_test(test_hrk),
        cmocka_unit_test(test_chain),  cmocka_unit_test(test_verifier),
        cmocka_unit_test(test_claims),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
