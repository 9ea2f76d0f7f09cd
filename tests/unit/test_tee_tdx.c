/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX verifier: trustee's quotes (v4, v5 with a TD 1.5 body, Azure's) parsed, their
 * signatures, QE-report binding and PCK chains verified against Intel's pinned root, the
 * claims of tdx_quote_4 + CCEL_data equal to parse_tdx_claims_expected.json, and the tamper
 * twins (signed body, signature, QE report, auth data, each certificate, a swapped PCK chain,
 * truncation, report data, init-data) refused at their stage.
 *
 * Collateral: the vectors carry tcbInfo.json and enclaveIdentity.json for tdx_quote_6 but not
 * Intel's TCB Signing certificate, so the test re-signs their exact text with a test key
 * under a test root and passes that root's fingerprint as the collateral pin (the PCK chain
 * stays pinned to Intel's root). Everything else — the real quote, PCK extension, TCB levels,
 * TDX module and QE identities — is the vectors' own. CRL checks run on a generated chain.
 */
#include "tee_test.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/crypto.h"
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

#define TD "deps/verifier/test_data/"
#define TDX_TIME 1761955200 /* 2025-11-01: inside the collateral's window */

/* ---- a small test PKI ---- */

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, int64_t from, int64_t to)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(c), (time_t)from);
    ASN1_TIME_set(X509_getm_notAfter(c), (time_t)to);
    X509_set_pubkey(c, key);
    assert_true(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return c;
}

static char *pem_of(X509 *const *certs, size_t n, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    for (size_t i = 0; i < n; i++)
        PEM_write_bio_X509(b, certs[i]);
    char *p = NULL;
    long l = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)l + 1);
    memcpy(out, p, (size_t)l);
    out[l] = 0;
    *len = (size_t)l;
    BIO_free(b);
    return out;
}

static void fingerprint(X509 *c, char out[65])
{
    unsigned char md[32];
    unsigned n = 0;
    X509_digest(c, EVP_sha256(), md, &n);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct pki {
    EVP_PKEY *root_key, *sign_key;
    X509 *root, *signer;
    char pin[65];
    const char *pins[1];
};
static struct pki pki;
static char *coll_dir;

/* {"<member>": <exact text>, "signature": "<hex r||s by the test signer>"} */
static char *resign(const char *vec, const char *member, const char *replace_from,
                    const char *replace_to, const char *from2, const char *to2)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(vec, &n);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "{\"%s\":", member);
    const char *text = (const char *)raw;
    assert_memory_equal(text, prefix, strlen(prefix));
    const char *sig = strstr(text, ",\"signature\":\"");
    assert_non_null(sig);
    size_t s = strlen(prefix), len = (size_t)(sig - text) - s;
    char *body = strndup(text + s, len);
    if (replace_from) {
        char *at = strstr(body, replace_from);
        if (!at)
            fail_msg("%s: '%s' not found", vec, replace_from);
        assert_int_equal(strlen(replace_from), strlen(replace_to));
        memcpy(at, replace_to, strlen(replace_to));
    }
    if (from2) {
        char *at = strstr(body, from2);
        assert_non_null(at);
        assert_int_equal(strlen(from2), strlen(to2));
        memcpy(at, to2, strlen(to2));
    }
    cl_bytes *sigb = NULL;
    size_t sl = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_sig_sign(pki.sign_key, "ES256", body, len, &sigb, &sl, &e), 0);
    CL_AUTO(cl_str) *hex = cl_hex_encode(sigb, sl);
    free(sigb);
    char *out = cl_strdupf("{\"%s\":%s,\"signature\":\"%s\"}\n", member, body, hex);
    free(body);
    return out;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct cl_err e = {0};
    assert_int_equal(cl_file_write_atomic(path, text, strlen(text), 0644, &e), 0);
}

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    pki.root_key = p256();
    pki.sign_key = p256();
    pki.root = make_cert("Test SGX Root CA", pki.root_key, NULL, NULL, 1, 1500000000, 2500000000);
    pki.signer = make_cert("Test SGX TCB Signing", pki.sign_key, pki.root, pki.root_key, 2,
                           1500000000, 2500000000);
    fingerprint(pki.root, pki.pin);
    pki.pins[0] = pki.pin;
    coll_dir = tt_tmpdir();
    char *t = resign(TD "tcbInfo.json", "tcbInfo", NULL, NULL, NULL, NULL);
    write_file(coll_dir, "tcb_info_00a06d080000.json", t);
    free(t);
    t = resign(TD "enclaveIdentity.json", "enclaveIdentity", NULL, NULL, NULL, NULL);
    write_file(coll_dir, "qe_identity.json", t);
    free(t);
    X509 *chain[2] = {pki.signer, pki.root};
    size_t n = 0;
    char *pem = pem_of(chain, 2, &n);
    write_file(coll_dir, "tcb_info_issuer_chain.pem", pem);
    free(pem);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(pki.root_key);
    EVP_PKEY_free(pki.sign_key);
    X509_free(pki.root);
    X509_free(pki.signer);
    tt_rmtree(coll_dir);
    free(coll_dir);
    return 0;
}

/* ---- quotes ---- */

static void test_parse_quotes(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        uint16_t version, body_type;
        const char *fmspc, *mr_td;
        bool instance;
    } q[] = {
        {TD "tdx_quote_4.dat", 4, 2, "50806f000000", "705ee938", true},
        {TD "tdx_quote_5.dat", 5, 3, "90c06f000000", "dfba221b", false},
        {TD "tdx_quote_6.dat", 4, 2, "00a06d080000", NULL, false},
        {TD "az-tdx-vtpm/td-quote.bin", 4, 2, "00806f050000", "024a32b0", false},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(q); i++) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *raw = tt_read(q[i].file, &n);
        struct cl_tdx_quote quote;
        struct cl_err e = {0};
        if (cl_tdx_quote_parse(raw, n, &quote, &e) != 0)
            fail_msg("%s: %s", q[i].file, e.msg);
        assert_int_equal(quote.version, q[i].version);
        assert_int_equal(quote.body_type, q[i].body_type);
        if (q[i].mr_td) {
            uint8_t want[4];
            tt_unhex(q[i].mr_td, want, 4);
            assert_memory_equal(quote.body.mr_td, want, 4);
        }
        struct cl_tdx_pck pck;
        STACK_OF(X509) *chain = NULL;
        if (cl_tdx_verify_quote(&quote, cl_tdx_root_pins, cl_tdx_root_npins, TT_TIME, NULL, &pck,
                                &chain, &e) != 0)
            fail_msg("%s: %s (%s)", q[i].file, e.msg, e.stage);
        assert_int_equal(sk_X509_num(chain), 3);
        sk_X509_pop_free(chain, X509_free);
        CL_AUTO(cl_str) *fm = cl_hex_encode(pck.fmspc, 6);
        assert_string_equal(fm, q[i].fmspc);
        assert_true(pck.platform_ca);
        if (q[i].instance) {
            CL_AUTO(cl_str) *pid = cl_hex_encode(pck.platform_instance_id, 16);
            assert_string_equal(pid,
                                "021ac64d355ba904e2d5948d228d5482"); /* claims show it reversed */
        }
    }
    /* the SGX quote (v3) is not a TDX quote */
    size_t n = 0;
    CL_AUTO(cl_bytes) *sgx = tt_read(TD "occlum_quote.dat", &n);
    struct cl_tdx_quote quote;
    struct cl_err e = {0};
    assert_int_equal(cl_tdx_quote_parse(sgx, n, &quote, &e), CL_EPARSE);
    /* every truncation of a quote is refused at parse */
    CL_AUTO(cl_bytes) *q6 = tt_read(TD "tdx_quote_6.dat", &n);
    static const size_t cuts[] = {0, 10, 47, 48, 100, 632, 635, 700, 1100, 1200, 4000, 4935};
    for (size_t i = 0; i < CL_ARRAY_LEN(cuts); i++) {
        int rc = cl_tdx_quote_parse(q6, cuts[i], &quote, &e);
        if (rc != CL_EPARSE || strcmp(e.stage, CL_TEE_STAGE_PARSE) != 0)
            fail_msg("cut at %zu: rc %d", cuts[i], rc);
    }
    /* header and descriptor fields */
    static const struct {
        size_t off;
        uint8_t val;
    } bad[] = {{0, 3}, {2, 3}, {4, 0x00}, {764, 7}, {633, 0xff}};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, q6, n);
        copy[bad[i].off] = bad[i].val;
        assert_int_equal(cl_tdx_quote_parse(copy, n, &quote, &e), CL_EPARSE);
        free(copy);
    }
}

static void test_claims_golden(void **state)
{
    (void)state;
    size_t n = 0, cn = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(TD "tdx_quote_4.dat", &n);
    CL_AUTO(cl_bytes) *ccel = tt_read(TD "CCEL_data", &cn);
    struct cl_tdx_quote q;
    struct cl_tdx_pck pck;
    struct cl_err e = {0};
    assert_int_equal(cl_tdx_quote_parse(raw, n, &q, &e), 0);
    assert_int_equal(
        cl_tdx_verify_quote(&q, cl_tdx_root_pins, cl_tdx_root_npins, TT_TIME, NULL, &pck, NULL, &e),
        0);
    CL_AUTO(json_t) *got = cl_tdx_claims(&q, &pck, ccel, cn, &e);
    assert_non_null(got);
    CL_AUTO(json_t) *want = tt_json(TD "parse_tdx_claims_expected.json");
    if (!json_equal(got, want)) {
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            if (!json_equal(v, json_object_get(got, k))) {
                CL_AUTO(cl_str) *a = cl_json_compact(json_object_get(got, k));
                fail_msg("claim '%s' differs: got %.800s", k, a ? a : "(none)");
            }
        }
        fail_msg("extra claims");
    }
    /* v5 / TD 1.5 adds the body type, size and the TD 1.5 fields */
    CL_AUTO(cl_bytes) *raw5 = tt_read(TD "tdx_quote_5.dat", &n);
    assert_int_equal(cl_tdx_quote_parse(raw5, n, &q, &e), 0);
    CL_AUTO(json_t) *c5 = cl_tdx_claims(&q, NULL, NULL, 0, &e);
    assert_non_null(
        json_object_get(json_object_get(json_object_get(c5, "quote"), "body"), "mr_servicetd"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c5, "quote"), "type")),
                        "0300");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(c5, "quote"), "header"), "version")),
                        "0500");
    assert_null(json_object_get(c5, "uefi_event_logs"));
}

/* Replaces a base64 character inside the n-th PEM certificate of a quote, near its end. */
static void flip_cert(uint8_t *q, size_t n, int which)
{
    uint8_t *p = q;
    for (int i = 0; i <= which; i++) {
        p = memmem(p, n - (size_t)(p - q), "-----END CERTIFICATE-----", 25);
        assert_non_null(p);
        if (i < which)
            p += 25;
    }
    uint8_t *c = p - 12; /* inside the signature value, before any padding */
    while (*c == '\n' || *c == '=')
        c--;
    *c = *c == 'A' ? 'B' : 'A';
}

struct twin {
    const char *name;
    size_t flip; /* byte to flip, 0 = none */
    int cert;    /* certificate to damage, -1 none */
    bool swap_chain, wrong_rd, wrong_idd, unpinned;
    size_t len; /* 0 = whole */
    const char *stage;
};

static void run_twins(const char *file, const struct twin *t, size_t nt)
{
    size_t n = 0, n4 = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(file, &n);
    CL_AUTO(cl_bytes) *q4 = tt_read(TD "tdx_quote_4.dat", &n4);
    struct cl_tdx_quote q;
    struct cl_err e = {0};
    assert_int_equal(cl_tdx_quote_parse(raw, n, &q, &e), 0);
    uint8_t rd[64], idd[48];
    memcpy(rd, q.body.report_data, 64);
    memcpy(idd, q.body.mr_config_id, 48);
    for (size_t i = 0; i < nt; i++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, raw, n);
        if (t[i].flip)
            copy[t[i].flip] ^= 1;
        if (t[i].cert >= 0)
            flip_cert(copy, n, t[i].cert);
        if (t[i].swap_chain) {
            /* the same-size PEM chain of another platform */
            uint8_t *a = memmem(copy, n, "-----BEGIN", 10), *b = memmem(q4, n4, "-----BEGIN", 10);
            assert_non_null(a);
            assert_non_null(b);
            memcpy(a, b, 3678 - 1);
        }
        uint8_t trd[64], tidd[48];
        memcpy(trd, rd, 64);
        memcpy(tidd, idd, 48);
        if (t[i].wrong_rd)
            trd[0] ^= 1;
        if (t[i].wrong_idd)
            tidd[47] ^= 1;
        CL_AUTO(cl_str) *b64 = cl_b64_encode(copy, t[i].len ? t[i].len : n, CL_B64_STD);
        free(copy);
        CL_AUTO(json_t) *ev = json_pack("{s:s, s:n}", "quote", b64, "cc_eventlog");
        struct cl_tee_config cfg = {.verify_time = TDX_TIME};
        if (t[i].unpinned) {
            /* run the quote checks alone with a pin list that lacks Intel's root */
            struct cl_tdx_quote tq;
            assert_int_equal(cl_tdx_quote_parse(raw, n, &tq, &e), 0);
            struct cl_tdx_pck pck;
            int rc = cl_tdx_verify_quote(&tq, pki.pins, 1, TDX_TIME, NULL, &pck, NULL, &e);
            if (rc != CL_EVERIFY || strcmp(e.stage, t[i].stage) != 0)
                fail_msg("%s: rc %d stage %s", t[i].name, rc, e.stage);
            continue;
        }
        json_decref(tt_expect(t[i].name, "tdx", ev, trd, 64, tidd, 48, &cfg, t[i].stage));
    }
}

static void test_quote_twins(void **state)
{
    (void)state;
    /* without collateral the untampered quote fails at the collateral stage: every twin must be
     * refused earlier than that */
    static const struct twin t[] = {
        {"untampered (no collateral configured)", 0, -1, false, false, false, false, 0,
         CL_TEE_STAGE_COLLATERAL},
        {"flipped MRTD", 48 + 136, -1, false, false, false, false, 0, CL_TEE_STAGE_SIGNATURE},
        {"flipped RTMR1", 48 + 376, -1, false, false, false, false, 0, CL_TEE_STAGE_SIGNATURE},
        {"flipped header user data", 40, -1, false, false, false, false, 0, CL_TEE_STAGE_SIGNATURE},
        {"flipped quote signature", 636 + 5, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped attestation key", 636 + 64 + 3, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped QE report", 636 + 134 + 70, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped QE report signature", 636 + 134 + 384 + 9, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped QE auth data", 636 + 134 + 448 + 2 + 4, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"flipped bit in the PCK certificate", 0, 0, false, false, false, false, 0,
         CL_TEE_STAGE_CHAIN},
        {"flipped bit in the PCK CA", 0, 1, false, false, false, false, 0, CL_TEE_STAGE_CHAIN},
        {"flipped bit in the root CA", 0, 2, false, false, false, false, 0, CL_TEE_STAGE_CHAIN},
        {"swapped PCK chain (other platform)", 0, -1, true, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"truncated quote", 0, -1, false, false, false, false, 4000, CL_TEE_STAGE_PARSE},
        {"wrong report data", 0, -1, false, true, false, false, 0, CL_TEE_STAGE_BIND},
        {"flipped report data", 48 + 520, -1, false, false, false, false, 0, CL_TEE_STAGE_BIND},
        {"wrong init-data", 0, -1, false, false, true, false, 0, CL_TEE_STAGE_INIT_DATA},
        {"root not pinned", 0, -1, false, false, false, true, 0, CL_TEE_STAGE_CHAIN},
    };
    run_twins(TD "tdx_quote_6.dat", t, CL_ARRAY_LEN(t));
    /* the v5 quote: its signed region includes the body descriptor */
    static const struct twin t5[] = {
        {"v5 untampered (no collateral)", 0, -1, false, false, false, false, 0,
         CL_TEE_STAGE_COLLATERAL},
        {"v5 flipped body size", 50, -1, false, false, false, false, 0, CL_TEE_STAGE_PARSE},
        {"v5 flipped mr_servicetd", 54 + 600, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"v5 flipped tee_tcb_svn2", 54 + 584, -1, false, false, false, false, 0,
         CL_TEE_STAGE_SIGNATURE},
    };
    run_twins(TD "tdx_quote_5.dat", t5, CL_ARRAY_LEN(t5));
    /* evidence shape */
    static const char *const bad[] = {"[]",
                                      "{}",
                                      "{\"quote\": 3}",
                                      "{\"quote\": \"AAAA\", \"cc_eventlog\": 3}",
                                      "{\"quote\": \"!!\"}",
                                      "{\"quote\": \"AAAA\", \"cc_eventlog\": \"!!\"}"};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *b = json_loads(bad[i], 0, NULL);
        json_decref(tt_expect(bad[i], "tdx", b, NULL, 0, NULL, 0, NULL, CL_TEE_STAGE_PARSE));
    }
}

/* ---- collateral and TCB evaluation with tdx_quote_6 ---- */

static json_t *verify6(const struct cl_tee_config *cfg, const uint8_t *ccel, size_t cn, int want_rc,
                       const char *want_stage)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = tt_read(TD "tdx_quote_6.dat", &n);
    struct cl_tdx_quote q;
    struct cl_err e = {0};
    assert_int_equal(cl_tdx_quote_parse(raw, n, &q, &e), 0);
    json_t *claims = NULL;
    int rc = cl_tdx_verify_parsed(&q, ccel, cn, cfg, pki.pins, 1, &claims, &e);
    if (rc != want_rc || (want_stage && strcmp(e.stage, want_stage) != 0))
        fail_msg("want %s at %s, got %s at %s: %s", cl_err_name(want_rc),
                 want_stage ? want_stage : "-", cl_err_name(rc), rc ? e.stage : "-",
                 rc ? e.msg : "");
    return claims;
}

static char *coll_copy(void)
{
    char *d = tt_tmpdir();
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/", coll_dir, d);
    assert_int_equal(system(cmd), 0);
    return d;
}

static void test_collateral(void **state)
{
    (void)state;
    /* the PCK's PCESVN (11) is below the UpToDate level's (13): this platform is OutOfDate */
    struct cl_tee_config strict = {.verify_time = TDX_TIME, .tdx_collateral_dir = coll_dir};
    json_decref(verify6(&strict, NULL, 0, CL_EDENIED, CL_TEE_STAGE_TCB));
    struct cl_tee_config cfg = strict;
    cfg.tdx_allow_tcb_insecure = CL_TEE_TCB_OUT_OF_DATE;
    CL_AUTO(json_t) *c = verify6(&cfg, NULL, 0, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(c, "tcb_status")), "OutOfDate");
    assert_string_equal(json_string_value(json_object_get(c, "collateral_expiration_status")), "0");
    assert_string_equal(json_string_value(json_object_get(c, "tcb_date")), "2018-01-04T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(c, "sgx_type")),
                        "Scalable with Integrity");
    assert_true(json_is_true(json_object_get(c, "is_dynamic_platform")));
    assert_string_equal(json_string_value(json_object_get(c, "platform_provider_id")),
                        "9c81e0b5c22e28a3f29d7b4db52c2049");
    assert_int_equal(json_integer_value(json_object_get(c, "tcb_eval_num")), 17);
    assert_string_equal(json_string_value(json_object_get(c, "earliest_issue_date")),
                        "2025-10-27T13:07:17Z");
    assert_string_equal(json_string_value(json_object_get(c, "earliest_expiration_date")),
                        "2025-11-26T13:07:17Z");
    assert_true(json_is_array(json_object_get(c, "advisory_ids")));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(c, "quote"), "header"), "tee_type")),
                        "81000000");
    assert_true(json_is_false(json_object_get(json_object_get(c, "td_attributes"), "debug")));

    struct cl_tee_config other = strict;
    other.tdx_allow_tcb_insecure = CL_TEE_TCB_SW_HARDENING_NEEDED | CL_TEE_TCB_CONFIGURATION_NEEDED;
    json_decref(verify6(&other, NULL, 0, CL_EDENIED, CL_TEE_STAGE_TCB));

    /* collateral expired (after nextUpdate), then allowed by the named switch */
    struct cl_tee_config late = cfg;
    late.verify_time = 1767225600; /* 2026-01-01 */
    json_decref(verify6(&late, NULL, 0, CL_EEXPIRED, CL_TEE_STAGE_COLLATERAL));
    late.tdx_allow_expired_collateral_insecure = true;
    CL_AUTO(json_t) *lc = verify6(&late, NULL, 0, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(lc, "collateral_expiration_status")),
                        "1");

    /* the CCEL of another TD does not replay to this quote's RTMRs */
    size_t cn = 0;
    CL_AUTO(cl_bytes) *ccel = tt_read(TD "CCEL_data", &cn);
    json_decref(verify6(&cfg, ccel, cn, CL_EVERIFY, CL_TEE_STAGE_EVENTLOG));
    uint8_t junk[64] = {1, 2, 3};
    json_decref(verify6(&cfg, junk, sizeof junk, CL_EPARSE, CL_TEE_STAGE_EVENTLOG));

    /* no collateral at all; the real Intel pins for re-signed collateral */
    struct cl_tee_config none = {.verify_time = TDX_TIME};
    json_decref(verify6(&none, NULL, 0, CL_ENOTFOUND, CL_TEE_STAGE_COLLATERAL));
    {
        size_t n = 0;
        CL_AUTO(cl_bytes) *raw = tt_read(TD "tdx_quote_6.dat", &n);
        struct cl_tdx_quote q;
        struct cl_err e = {0};
        assert_int_equal(cl_tdx_quote_parse(raw, n, &q, &e), 0);
        json_t *claims = NULL;
        assert_int_equal(cl_tdx_verify_parsed(&q, NULL, 0, &cfg, cl_tdx_root_pins,
                                              cl_tdx_root_npins, &claims, &e),
                         CL_EVERIFY);
        assert_string_equal(e.stage, CL_TEE_STAGE_COLLATERAL);
    }

    /* tampered collateral, one file at a time */
    static const struct {
        const char *name, *file, *member, *from, *to;
        bool break_sig;
        int rc;
        const char *stage;
        const char *from2, *to2;
    } tw[] = {
        {"TCB info text changed after signing", "tcb_info_00a06d080000.json", "tcbInfo", NULL, NULL,
         true, CL_EVERIFY, CL_TEE_STAGE_COLLATERAL, NULL, NULL},
        {"QE identity text changed after signing", "qe_identity.json", "enclaveIdentity", NULL,
         NULL, true, CL_EVERIFY, CL_TEE_STAGE_COLLATERAL, NULL, NULL},
        {"UpToDate level lowered to this PCESVN: UpToDate", "tcb_info_00a06d080000.json", "tcbInfo",
         "\"pcesvn\":13", "\"pcesvn\":11", false, 0, NULL, NULL, NULL},
        {"no level matches", "tcb_info_00a06d080000.json", "tcbInfo",
         "{\"svn\":2,\"category\":\"OS/VMM\",\"type\":\"TDX Late",
         "{\"svn\":3,\"category\":\"OS/VMM\",\"type\":\"TDX Late", false, CL_ENOTFOUND,
         CL_TEE_STAGE_TCB, "{\"svn\":2,\"category\":\"OS/VMM\",\"type\":\"TDX Late",
         "{\"svn\":3,\"category\":\"OS/VMM\",\"type\":\"TDX Late"},
        {"another FMSPC", "tcb_info_00a06d080000.json", "tcbInfo", "\"fmspc\":\"00A06D080000\"",
         "\"fmspc\":\"00A06D080001\"", false, CL_EVERIFY, CL_TEE_STAGE_TCB, NULL, NULL},
        {"TDX module identity unknown", "tcb_info_00a06d080000.json", "tcbInfo", "\"TDX_03\"",
         "\"TDX_04\"", false, CL_ENOTFOUND, CL_TEE_STAGE_TCB, NULL, NULL},
        {"QE MRSIGNER differs", "qe_identity.json", "enclaveIdentity", "\"mrsigner\":\"DC9E",
         "\"mrsigner\":\"DC9F", false, CL_EVERIFY, CL_TEE_STAGE_TCB, NULL, NULL},
        {"QE ISVPRODID differs", "qe_identity.json", "enclaveIdentity", "\"isvprodid\":2",
         "\"isvprodid\":3", false, CL_EVERIFY, CL_TEE_STAGE_TCB, NULL, NULL},
        {"QE revoked level only", "qe_identity.json", "enclaveIdentity", "\"isvsvn\":4",
         "\"isvsvn\":9", false, CL_ENOTFOUND, CL_TEE_STAGE_TCB, NULL, NULL},
        {"TCB info of another kind", "tcb_info_00a06d080000.json", "tcbInfo", "\"id\":\"TDX\"",
         "\"id\":\"SGX\"", false, CL_EPARSE, CL_TEE_STAGE_COLLATERAL, NULL, NULL},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(tw); i++) {
        char *d = coll_copy();
        const char *vec =
            strcmp(tw[i].member, "tcbInfo") == 0 ? TD "tcbInfo.json" : TD "enclaveIdentity.json";
        char *text = resign(vec, tw[i].member, tw[i].from, tw[i].to, tw[i].from2, tw[i].to2);
        if (tw[i].break_sig) {
            char *p = strstr(text, "\"version\":");
            assert_non_null(p);
            p[10] = p[10] == '3' ? '4' : '3'; /* the digit after "version": */
        }
        write_file(d, tw[i].file, text);
        free(text);
        struct cl_tee_config tc = {.verify_time = TDX_TIME,
                                   .tdx_collateral_dir = d,
                                   .tdx_allow_tcb_insecure = CL_TEE_TCB_OUT_OF_DATE};
        size_t n = 0;
        CL_AUTO(cl_bytes) *raw = tt_read(TD "tdx_quote_6.dat", &n);
        struct cl_tdx_quote q;
        struct cl_err e = {0};
        assert_int_equal(cl_tdx_quote_parse(raw, n, &q, &e), 0);
        json_t *claims = NULL;
        int rc = cl_tdx_verify_parsed(&q, NULL, 0, &tc, pki.pins, 1, &claims, &e);
        if (rc != tw[i].rc || (rc && strcmp(e.stage, tw[i].stage) != 0))
            fail_msg("%s: want %s at %s, got %s at %s (%s)", tw[i].name, cl_err_name(tw[i].rc),
                     tw[i].stage ? tw[i].stage : "-", cl_err_name(rc), rc ? e.stage : "-",
                     rc ? e.msg : "");
        if (rc == 0) { /* UpToDate now, with no switch needed */
            assert_string_equal(json_string_value(json_object_get(claims, "tcb_status")),
                                "UpToDate");
            json_decref(claims);
            tc.tdx_allow_tcb_insecure = 0;
            assert_int_equal(cl_tdx_verify_parsed(&q, NULL, 0, &tc, pki.pins, 1, &claims, &e), 0);
            json_decref(claims);
        }
        tt_rmtree(d);
        free(d);
    }
    /* issuer chain missing, or of a root that is not pinned */
    char *d = coll_copy();
    char path[4200];
    snprintf(path, sizeof path, "%s/tcb_info_issuer_chain.pem", d);
    unlink(path);
    struct cl_tee_config nc = {.verify_time = TDX_TIME,
                               .tdx_collateral_dir = d,
                               .tdx_allow_tcb_insecure = CL_TEE_TCB_OUT_OF_DATE};
    json_decref(verify6(&nc, NULL, 0, CL_ENOTFOUND, CL_TEE_STAGE_COLLATERAL));
    tt_rmtree(d);
    free(d);
    /* a fallback name, tcb_info.json, is found too */
    d = coll_copy();
    char p2[4200];
    snprintf(path, sizeof path, "%s/tcb_info_00a06d080000.json", d);
    snprintf(p2, sizeof p2, "%s/tcb_info.json", d);
    assert_int_equal(rename(path, p2), 0);
    nc.tdx_collateral_dir = d;
    json_decref(verify6(&nc, NULL, 0, 0, NULL));
    tt_rmtree(d);
    free(d);
}

/* ---- CRLs, on a generated chain ---- */

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, long revoked_serial, int64_t last,
                          int64_t next)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
    ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)last);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, (time_t)next);
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_TIME_free(t);
    if (revoked_serial) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        ASN1_INTEGER_set(s, revoked_serial);
        X509_REVOKED_set_serialNumber(r, s);
        ASN1_INTEGER_free(s);
        ASN1_TIME *rt = ASN1_TIME_set(NULL, (time_t)last);
        X509_REVOKED_set_revocationDate(r, rt);
        ASN1_TIME_free(rt);
        X509_CRL_add0_revoked(crl, r);
    }
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    return crl;
}

static void test_crls(void **state)
{
    (void)state;
    EVP_PKEY *mk = p256(), *lk = p256();
    X509 *mid =
        make_cert("Test PCK Platform CA", mk, pki.root, pki.root_key, 10, 1500000000, 2500000000);
    X509 *leaf = make_cert("Test PCK Certificate", lk, mid, mk, 11, 1500000000, 2500000000);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, leaf);
    sk_X509_push(chain, mid);
    sk_X509_push(chain, pki.root);
    struct cl_err e = {0};
    const int64_t at = TDX_TIME;
    struct {
        const char *name;
        X509_CRL *root, *pck;
        int rc;
    } cases[] = {
        {"no CRLs", NULL, NULL, 0},
        {"clean CRLs", make_crl(pki.root, pki.root_key, 0, at - 100, at + 100),
         make_crl(mid, mk, 0, at - 100, at + 100), 0},
        {"PCK revoked", NULL, make_crl(mid, mk, 11, at - 100, at + 100), CL_EVERIFY},
        {"PCK CA revoked", make_crl(pki.root, pki.root_key, 10, at - 100, at + 100), NULL,
         CL_EVERIFY},
        {"PCK CRL signed by another key", NULL, make_crl(mid, lk, 0, at - 100, at + 100),
         CL_EVERIFY},
        {"root CRL issued by the PCK CA", make_crl(mid, mk, 0, at - 100, at + 100), NULL,
         CL_EVERIFY},
        {"PCK CRL expired", NULL, make_crl(mid, mk, 0, at - 200, at - 100), CL_EEXPIRED},
        {"PCK CRL not yet valid", NULL, make_crl(mid, mk, 0, at + 100, at + 200), CL_EEXPIRED},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_tdx_crls crls = {cases[i].root, cases[i].pck};
        int rc = cl_tdx_check_crls(chain, &crls, at, &e);
        if (rc != cases[i].rc || (rc && strcmp(e.stage, CL_TEE_STAGE_CHAIN) != 0))
            fail_msg("%s: rc %d (%s)", cases[i].name, rc, e.msg);
        X509_CRL_free(cases[i].root);
        X509_CRL_free(cases[i].pck);
    }
    sk_X509_free(chain);
    X509_free(leaf);
    X509_free(mid);
    EVP_PKEY_free(mk);
    EVP_PKEY_free(lk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_quotes), cmocka_unit_test(test_claims_golden),
        cmocka_unit_test(test_quote_twins),  cmocka_unit_test(test_collateral),
        cmocka_unit_test(test_crls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
