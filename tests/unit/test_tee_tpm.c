/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM verifier: trustee's tpm_evidence.json verified (AK signature, PCR digest, nonce),
 * its claims, and the tamper twins (message, signature, a PCR value, a swapped AK, a
 * truncated message, wrong report data, init-data against PCR8), the AK certificate path
 * against a generated CA, and the TPMS_ATTEST / TPMT_SIGNATURE rejections. The attester is
 * exercised against swtpm in tests/integration/tee-tpm-swtpm.sh.
 */
#include "tee_test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tee/tee_int.h"
#include "tee/tpm/tpm.h"

#define TPM_EV "deps/verifier/test_data/tpm_evidence.json"

static cl_bytes *msg_of(const json_t *ev, size_t *n)
{
    const char *m = json_string_value(json_object_get(json_object_get(ev, "tpm_quote"), "message"));
    struct cl_err e = {0};
    cl_bytes *b = cl_b64_decode(m, strlen(m), CL_B64_STD, 4096, n, &e);
    assert_non_null(b);
    return b;
}

static void set_b64(json_t *o, const char *k, const uint8_t *b, size_t n)
{
    CL_AUTO(cl_str) *s = cl_b64_encode(b, n, CL_B64_STD);
    json_object_set_new(o, k, json_string(s));
}

static void test_vector(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(TPM_EV);
    size_t n = 0;
    CL_AUTO(cl_bytes) *msg = msg_of(ev, &n);
    struct cl_tpm_quote_info q;
    struct cl_err e = {0};
    assert_int_equal(cl_tpm_attest_parse(msg, n, &q, &e), 0);
    assert_int_equal(q.extra_len, 64);
    assert_int_equal(q.sha256_mask, 0xffffff);
    uint8_t rd[48];
    memcpy(rd, q.extra_data, 48); /* a SHA-384 digest, zero-padded to the 64-byte slot */
    CL_AUTO(json_t) *c = tt_expect("tpm_evidence.json", "tpm", ev, rd, 48, NULL, 0, NULL, NULL);
    assert_int_equal(strlen(json_string_value(json_object_get(c, "report_data"))), 128);
    assert_string_equal(json_string_value(json_object_get(c, "init_data")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_string_equal(json_string_value(json_object_get(c, "ak_public")),
                        json_string_value(json_object_get(ev, "ak_public")));
    for (int i = 0; i < 24; i++) {
        char k[8];
        snprintf(k, sizeof k, "pcr%02d", i);
        assert_string_equal(
            json_string_value(json_object_get(c, k)),
            json_string_value(json_array_get(
                json_object_get(json_object_get(ev, "tpm_quote"), "pcrs"), (size_t)i)));
    }

    /* tamper twins */
    EVP_PKEY *other = EVP_RSA_gen(2048);
    unsigned char *oder = NULL;
    int olen = i2d_PUBKEY(other, &oder);
    EVP_PKEY_free(other);
    uint8_t bad_rd[48], idd[32] = {7};
    memcpy(bad_rd, rd, 48);
    bad_rd[47] ^= 1;
    static const struct {
        const char *name;
        int what; /* 0 msg byte, 1 sig byte, 2 pcr, 3 swap AK, 4 truncate msg, 5 wrong rd, 6
                     init-data, 7 none */
        size_t at;
        const char *stage;
    } tw[] = {
        {"flipped clock", 0, 110, CL_TEE_STAGE_SIGNATURE},
        {"flipped PCR digest", 0, 170, CL_TEE_STAGE_SIGNATURE},
        {"flipped extraData", 0, 50, CL_TEE_STAGE_BIND},
        {"flipped magic", 0, 0, CL_TEE_STAGE_PARSE},
        {"flipped signature", 1, 100, CL_TEE_STAGE_SIGNATURE},
        {"flipped signature scheme", 1, 1, CL_TEE_STAGE_PARSE},
        {"changed PCR 11", 2, 11, CL_TEE_STAGE_SIGNATURE},
        {"changed PCR 0", 2, 0, CL_TEE_STAGE_SIGNATURE},
        {"foreign AK", 3, 0, CL_TEE_STAGE_SIGNATURE},
        {"truncated message", 4, 0, CL_TEE_STAGE_PARSE},
        {"wrong report data", 5, 0, CL_TEE_STAGE_BIND},
        {"init-data not in PCR8", 6, 0, CL_TEE_STAGE_INIT_DATA},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(tw); i++) {
        CL_AUTO(json_t) *t = json_deep_copy(ev);
        json_t *tq = json_object_get(t, "tpm_quote");
        const uint8_t *trd = rd;
        const uint8_t *tidd = NULL;
        if (tw[i].what == 0 || tw[i].what == 4) {
            uint8_t m[512];
            memcpy(m, msg, n);
            if (tw[i].what == 0)
                m[tw[i].at] ^= 1;
            set_b64(tq, "message", m, tw[i].what == 4 ? n - 1 : n);
        } else if (tw[i].what == 1) {
            size_t sn = 0;
            const char *sb = json_string_value(json_object_get(tq, "signature"));
            CL_AUTO(cl_bytes) *sig = cl_b64_decode(sb, strlen(sb), CL_B64_STD, 4096, &sn, &e);
            sig[tw[i].at] ^= 1;
            set_b64(tq, "signature", sig, sn);
        } else if (tw[i].what == 2) {
            json_t *pcrs = json_object_get(tq, "pcrs");
            char h[65];
            snprintf(h, sizeof h, "%s", json_string_value(json_array_get(pcrs, tw[i].at)));
            h[63] = h[63] == '0' ? '1' : '0';
            json_array_set_new(pcrs, tw[i].at, json_string(h));
        } else if (tw[i].what == 3) {
            set_b64(t, "ak_public", oder, (size_t)olen);
        } else if (tw[i].what == 5) {
            trd = bad_rd;
        } else if (tw[i].what == 6) {
            tidd = idd;
        }
        json_decref(
            tt_expect(tw[i].name, "tpm", t, trd, 48, tidd, tidd ? 32 : 0, NULL, tw[i].stage));
    }
    OPENSSL_free(oder);

    /* evidence shape */
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"ak_public\":\"AAAA\",\"tpm_quote\":{}}",
        "{\"ak_public\":\"AAAA\",\"tpm_quote\":{\"pcrs\":[]}}",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *b = json_loads(bad[i], 0, NULL);
        json_decref(tt_expect(bad[i], "tpm", b, rd, 48, NULL, 0, NULL, CL_TEE_STAGE_PARSE));
    }
    static const struct {
        const char *member, *value;
    } badm[] = {
        {"ak_public", "\"AAAA\""}, {"ak_public", "3"},        {"ak_public", "\"!!\""},
        {"message", "\"AAAA\""},   {"signature", "\"AAAA\""}, {"pcrs", "[\"zz\"]"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(badm); i++) {
        CL_AUTO(json_t) *t = json_deep_copy(ev);
        json_t *v = json_loads(badm[i].value, JSON_DECODE_ANY, NULL);
        if (strcmp(badm[i].member, "ak_public") == 0) {
            json_object_set_new(t, badm[i].member, v);
        } else if (strcmp(badm[i].member, "pcrs") == 0) {
            json_t *pcrs = json_object_get(json_object_get(t, "tpm_quote"), "pcrs");
            json_array_set_new(pcrs, 5, json_string("zz"));
            json_decref(v);
        } else {
            json_object_set_new(json_object_get(t, "tpm_quote"), badm[i].member, v);
        }
        json_decref(tt_expect(badm[i].member, "tpm", t, rd, 48, NULL, 0, NULL, CL_TEE_STAGE_PARSE));
    }
}

/* ---- AK certificate against a configured CA ---- */

static X509 *cert_for(EVP_PKEY *subject, const char *cn, X509 *issuer, EVP_PKEY *ikey, bool ca)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 7);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(c), 1500000000);
    ASN1_TIME_set(X509_getm_notAfter(c), 2500000000);
    X509_set_pubkey(c, subject);
    if (ca) {
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(c, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(c, ikey ? ikey : subject, EVP_sha256());
    return c;
}

static void test_ak_cert(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(TPM_EV);
    size_t n = 0;
    CL_AUTO(cl_bytes) *msg = msg_of(ev, &n);
    struct cl_tpm_quote_info q;
    struct cl_err e = {0};
    assert_int_equal(cl_tpm_attest_parse(msg, n, &q, &e), 0);
    const char *akb = json_string_value(json_object_get(ev, "ak_public"));
    size_t akn = 0;
    CL_AUTO(cl_bytes) *akder = cl_b64_decode(akb, strlen(akb), CL_B64_STD, 4096, &akn, &e);
    const unsigned char *p = akder;
    EVP_PKEY *ak = d2i_PUBKEY(NULL, &p, (long)akn);
    assert_non_null(ak);
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *cak2 = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    X509 *ca = cert_for(cak, "Test AK CA", NULL, NULL, true);
    X509 *ca2 = cert_for(cak2, "Other CA", NULL, NULL, true);
    X509 *akc = cert_for(ak, "AK", ca, cak, false);
    X509 *wrongkey = cert_for(other, "AK", ca, cak, false);
    X509 *foreign = cert_for(ak, "AK", ca2, cak2, false);
    char *dir = tt_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, ca);
    fclose(f);
    struct cl_tee_config cfg = {.tpm_ak_ca_path = path, .verify_time = TT_TIME};
    struct {
        const char *name;
        X509 *cert;
        const char *stage;
    } cases[] = {
        {"AK certified by the CA", akc, NULL},
        {"no AK certificate", NULL, CL_TEE_STAGE_CHAIN},
        {"certificate of another key", wrongkey, CL_TEE_STAGE_CHAIN},
        {"certificate from another CA", foreign, CL_TEE_STAGE_CHAIN},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        CL_AUTO(json_t) *t = json_deep_copy(ev);
        if (cases[i].cert) {
            unsigned char *der = NULL;
            int dl = i2d_X509(cases[i].cert, &der);
            set_b64(t, "ak_cert", der, (size_t)dl);
            OPENSSL_free(der);
        }
        json_decref(
            tt_expect(cases[i].name, "tpm", t, q.extra_data, 48, NULL, 0, &cfg, cases[i].stage));
    }
    /* a damaged certificate is refused at parse */
    CL_AUTO(json_t) *t = json_deep_copy(ev);
    json_object_set_new(t, "ak_cert", json_string("AAAA"));
    json_decref(tt_expect("damaged AK certificate", "tpm", t, q.extra_data, 48, NULL, 0, &cfg,
                          CL_TEE_STAGE_PARSE));
    /* an unreadable CA file is a chain failure */
    struct cl_tee_config bad = cfg;
    bad.tpm_ak_ca_path = "/nonexistent/ca.pem";
    json_object_del(t, "ak_cert");
    unsigned char *der = NULL;
    int dl = i2d_X509(akc, &der);
    set_b64(t, "ak_cert", der, (size_t)dl);
    OPENSSL_free(der);
    json_decref(tt_expect("missing CA file", "tpm", t, q.extra_data, 48, NULL, 0, &bad,
                          CL_TEE_STAGE_CHAIN));
    tt_rmtree(dir);
    free(dir);
    X509_free(ca);
    X509_free(ca2);
    X509_free(akc);
    X509_free(wrongkey);
    X509_free(foreign);
    EVP_PKEY_free(ak);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(cak2);
    EVP_PKEY_free(other);
}

/* ---- structures ---- */

static void test_structures(void **state)
{
    (void)state;
    CL_AUTO(json_t) *ev = tt_json(TPM_EV);
    size_t n = 0;
    CL_AUTO(cl_bytes) *msg = msg_of(ev, &n);
    struct cl_tpm_quote_info q;
    struct cl_err e = {0};
    uint8_t m[512];
    static const struct {
        const char *name;
        size_t off;
        uint8_t val;
        size_t len_delta; /* bytes appended (1) or cut (-1 → SIZE_MAX) */
    } cases[] = {
        {"not a quote (type)", 5, 0x17, 0}, {"SHA-1 bank", 138, 0x04, 0},
        {"no PCR selected", 140, 0x00, 0},  {"two selections", 136, 0x02, 0},
        {"trailing byte", 0, 0, 1},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        memcpy(m, msg, n);
        size_t len = n + cases[i].len_delta;
        if (cases[i].len_delta)
            m[n] = 0;
        else
            m[cases[i].off] = cases[i].val;
        if (cases[i].off == 140)
            m[141] = m[142] = 0; /* empty selection bitmap */
        int rc = cl_tpm_attest_parse(m, len, &q, &e);
        if (rc != CL_EPARSE)
            fail_msg("%s: rc %d", cases[i].name, rc);
    }
    assert_int_equal(cl_tpm_attest_parse(msg, 0, &q, &e), CL_EPARSE);
    /* PCR digest over a chosen selection */
    uint8_t pcrs[24][32] = {{0}};
    uint8_t d1[32], d2[32];
    assert_int_equal(cl_tpm_pcr_digest((const uint8_t(*)[32])pcrs, 0x1, d1, &e), 0);
    assert_int_equal(cl_tpm_pcr_digest((const uint8_t(*)[32])pcrs, 0x3, d2, &e), 0);
    assert_memory_not_equal(d1, d2, 32);
    /* signatures: garbage, unknown scheme */
    EVP_PKEY *k = EVP_RSA_gen(2048);
    uint8_t junk[4] = {0x00, 0x10, 0x00, 0x0b};
    assert_int_equal(cl_tpm_signature_verify(k, junk, sizeof junk, msg, n, &e), CL_EPARSE);
    assert_int_equal(cl_tpm_signature_verify(k, junk, 0, msg, n, &e), CL_EPARSE);
    EVP_PKEY_free(k);
}

int main(void)
{
    tt_require_vectors();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_ak_cert),
        cmocka_unit_test(test_structures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
