/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SGX verifier: trustee's Occlum quote (DCAP v3) through the DCAP code TDX uses — quote
 * signature, QE report binding, PCK chain to Intel's pinned root at a pinned time — with its
 * header/body claims equal to the ones in trustee's example token for the same quote
 * (attestation-service/docs/example.token.json), and tamper twins refused at their stage.
 *
 * Collateral: the vectors hold no SGX TCB info for this quote's FMSPC (00606A000000) and no
 * SGX QE identity (tcbInfo.json / enclaveIdentity.json are TDX's, for another FMSPC), nor
 * Intel's TCB Signing certificate. The test therefore writes SGX collateral in Intel's v3/v2
 * shape whose TCB levels are made from this PCK's own SVNs and whose QE identity carries this
 * QE's MRSIGNER/ISVPRODID, signs it with a test key under a test root, and passes that root's
 * fingerprint as the collateral pin (the PCK chain stays pinned to Intel's root).
 */
#include "tee_test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/crypto.h"
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

#define TD "deps/verifier/test_data/"
#define TOKEN "attestation-service/docs/example.token.json"
#define ISSUE "2025-05-01T00:00:00Z"
#define NEXT "2025-07-01T00:00:00Z"

static EVP_PKEY *root_key, *sign_key;
static X509 *root, *signer;
static char pin[65];
static const char *pins[1] = {pin};
static uint8_t *quote;
static size_t quote_len;
static struct cl_tdx_pck pck;
static struct cl_tdx_quote parsed;

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), issuer ? 2 : 1);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(c), 1500000000);
    ASN1_TIME_set(X509_getm_notAfter(c), 2500000000);
    X509_set_pubkey(c, key);
    assert_true(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return c;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct cl_err e = {0};
    assert_int_equal(cl_file_write_atomic(path, text, strlen(text), 0644, &e), 0);
}

/* {"<member>": <compact JSON of body>, "signature": "<hex r||s>"}; tamper (if set) is applied
 * to the text after signing. */
static void write_signed(const char *dir, const char *name, const char *member, json_t *body,
                         const char *tamper_from, const char *tamper_to)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cl_bytes *sig = NULL;
    size_t sl = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_sig_sign(sign_key, "ES256", text, strlen(text), &sig, &sl, &e), 0);
    CL_AUTO(cl_str) *hex = cl_hex_encode(sig, sl);
    free(sig);
    if (tamper_from) {
        char *at = strstr(text, tamper_from);
        assert_non_null(at);
        assert_int_equal(strlen(tamper_from), strlen(tamper_to));
        memcpy(at, tamper_to, strlen(tamper_to));
    }
    char *doc = cl_strdupf("{\"%s\":%s,\"signature\":\"%s\"}", member, text, hex);
    write_file(dir, name, doc);
    free(doc);
    free(text);
}

static json_t *components(const uint8_t svn[16], int bump)
{
    json_t *a = json_array();
    for (int i = 0; i < 16; i++)
        json_array_append_new(a, json_pack("{s:i}", "svn", svn[i] + (i == 0 ? bump : 0)));
    return a;
}

struct coll_opts {
    const char *id, *qe_id, *fmspc;
    bool up_to_date; /* the PCK reaches the UpToDate level */
    const char *tamper_from, *tamper_to;
    const char *qe_signer;
};

static char *make_collateral(const struct coll_opts *o)
{
    char *dir = tt_tmpdir();
    char fm[13], pce[5];
    for (int i = 0; i < 6; i++)
        snprintf(fm + 2 * i, 3, "%02X", pck.fmspc[i]);
    snprintf(pce, sizeof pce, "%02X%02X", pck.pceid[0], pck.pceid[1]);
    json_t *levels = json_array();
    json_array_append_new(levels,
                          json_pack("{s:{s:o, s:i}, s:s, s:s, s:[]}", "tcb", "sgxtcbcomponents",
                                    components(pck.comp_svn, o->up_to_date ? 0 : 1), "pcesvn",
                                    pck.pcesvn, "tcbDate", "2024-11-13T00:00:00Z", "tcbStatus",
                                    "UpToDate", "advisoryIDs"));
    json_array_append_new(levels,
                          json_pack("{s:{s:o, s:i}, s:s, s:s, s:[s]}", "tcb", "sgxtcbcomponents",
                                    components(pck.comp_svn, 0), "pcesvn", pck.pcesvn, "tcbDate",
                                    "2021-11-10T00:00:00Z", "tcbStatus", "OutOfDate", "advisoryIDs",
                                    "INTEL-SA-00586"));
    CL_AUTO(json_t) *ti = json_pack(
        "{s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:i, s:o}", "id", o->id ? o->id : "SGX", "version", 3,
        "issueDate", ISSUE, "nextUpdate", NEXT, "fmspc", o->fmspc ? o->fmspc : fm, "pceId", pce,
        "tcbType", 0, "tcbEvaluationDataNumber", 17, "tcbLevels", levels);
    write_signed(dir, "tcb_info.json", "tcbInfo", ti, o->tamper_from, o->tamper_to);
    char signer_hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(signer_hex + 2 * i, 3, "%02X", parsed.qe.mr_signer[i]);
    CL_AUTO(json_t) *qi = json_pack(
        "{s:s, s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:[{s:{s:i}, s:s, s:s}]}", "id",
        o->qe_id ? o->qe_id : "QE", "version", 2, "issueDate", ISSUE, "nextUpdate", NEXT,
        "tcbEvaluationDataNumber", 17, "miscselect", "00000000", "miscselectMask", "FFFFFFFF",
        "attributes", "11000000000000000000000000000000", "attributesMask",
        "FBFFFFFFFFFFFFFF0000000000000000", "mrsigner", o->qe_signer ? o->qe_signer : signer_hex,
        "isvprodid", parsed.qe.isv_prod_id, "tcbLevels", "tcb", "isvsvn", parsed.qe.isv_svn,
        "tcbDate", "2024-11-13T00:00:00Z", "tcbStatus", "UpToDate");
    write_signed(dir, "qe_identity.json", "enclaveIdentity", qi, NULL, NULL);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, signer);
    PEM_write_bio_X509(b, root);
    char *p = NULL;
    long l = BIO_get_mem_data(b, &p);
    char *pem = malloc((size_t)l + 1); /* BIO memory is not NUL-terminated */
    memcpy(pem, p, (size_t)l);
    pem[l] = '\0';
    BIO_free(b);
    write_file(dir, "tcb_info_issuer_chain.pem", pem);
    free(pem);
    return dir;
}

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    root_key = EVP_EC_gen("P-256");
    sign_key = EVP_EC_gen("P-256");
    root = make_cert("Test SGX Root CA", root_key, NULL, NULL);
    signer = make_cert("Test SGX TCB Signing", sign_key, root, root_key);
    unsigned char md[32];
    unsigned n = 0;
    X509_digest(root, EVP_sha256(), md, &n);
    for (int i = 0; i < 32; i++)
        snprintf(pin + 2 * i, 3, "%02x", md[i]);
    quote = tt_read(TD "occlum_quote.dat", &quote_len);
    struct cl_err e = {0};
    if (cl_tdx_quote_parse_any(quote, quote_len, &parsed, &e) != 0 ||
        cl_tdx_verify_quote(&parsed, cl_tdx_root_pins, cl_tdx_root_npins, TT_TIME, NULL, &pck, NULL,
                            &e) != 0)
        fail_msg("occlum quote: %s (%s)", e.msg, e.stage ? e.stage : "-");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(sign_key);
    X509_free(root);
    X509_free(signer);
    free(quote);
    return 0;
}

static const uint8_t rd_test[4] = {'t', 'e', 's', 't'};

static json_t *verify(const uint8_t *q, size_t n, const uint8_t *rd, size_t rdl, const uint8_t *idd,
                      size_t idl, const struct cl_tee_config *cfg, int want_rc,
                      const char *want_stage)
{
    json_t *claims = NULL;
    struct cl_err e = {0};
    int rc = cl_sgx_verify_quote(q, n, rd, rdl, idd, idl, cfg, pins, 1, &claims, &e);
    if (rc != want_rc || (want_stage && (!e.stage || strcmp(e.stage, want_stage) != 0)))
        fail_msg("want %s at %s, got %s at %s: %s", cl_err_name(want_rc),
                 want_stage ? want_stage : "-", cl_err_name(rc), rc && e.stage ? e.stage : "-",
                 rc ? e.msg : "");
    return claims;
}

/* ---- the quote ---- */

static void test_parse_and_claims(void **state)
{
    (void)state;
    assert_true(parsed.sgx);
    assert_int_equal(parsed.version, 3);
    assert_false(pck.platform_ca && !pck.has_instance_id);
    static const uint8_t fmspc[6] = {0x00, 0x60, 0x6a, 0x00, 0x00, 0x00};
    assert_memory_equal(pck.fmspc, fmspc, 6);
    /* the TDX parser refuses it; the SGX verifier refuses TDX quotes */
    struct cl_tdx_quote q;
    struct cl_err e = {0};
    assert_int_equal(cl_tdx_quote_parse(quote, quote_len, &q, &e), CL_EPARSE);
    size_t tn = 0;
    CL_AUTO(cl_bytes) *tdx = tt_read(TD "tdx_quote_4.dat", &tn);
    struct cl_tee_config cfg = {.verify_time = TT_TIME};
    json_decref(verify(tdx, tn, NULL, 0, NULL, 0, &cfg, CL_EPARSE, CL_TEE_STAGE_PARSE));

    /* full verification with OutOfDate allowed (this enclave is a debug one) */
    struct coll_opts o = {0};
    char *dir = make_collateral(&o);
    cfg = (struct cl_tee_config){.verify_time = TT_TIME,
                                 .sgx_collateral_dir = dir,
                                 .allow_debug_insecure = true,
                                 .tdx_allow_tcb_insecure = CL_TEE_TCB_OUT_OF_DATE};
    CL_AUTO(json_t) *c = verify(quote, quote_len, rd_test, 4, NULL, 0, &cfg, 0, NULL);
    /* header and body as in trustee's example token for this quote */
    CL_AUTO(json_t) *tok = tt_json(TOKEN);
    json_t *annotated = json_object_get(json_object_get(json_object_get(tok, "submods"), "cpu0"),
                                        "ear.veraison.annotated-evidence");
    json_t *want = json_object_get(annotated, "sgx");
    assert_non_null(want);
    static const char *const same[] = {"header",         "body",
                                       "sgx_type",       "platform_provider_id",
                                       "is_cached_keys", "is_dynamic_platform",
                                       "is_smt_enabled"};
    for (size_t i = 0; i < CL_ARRAY_LEN(same); i++)
        if (!json_equal(json_object_get(c, same[i]), json_object_get(want, same[i])))
            fail_msg("claim '%s' differs from trustee's example token: %s", same[i],
                     json_dumps(json_object_get(c, same[i]), JSON_COMPACT));
    assert_string_equal(json_string_value(json_object_get(c, "platform_instance_id")),
                        "7a3a6941065cd5060bd93d3db2cfc0c8");
    assert_string_equal(json_string_value(json_object_get(c, "report_data")),
                        json_string_value(json_object_get(annotated, "report_data")));
    assert_string_equal(json_string_value(json_object_get(c, "tcb_status")), "OutOfDate");
    assert_string_equal(json_string_value(json_object_get(c, "tcb_date")), "2021-11-10T00:00:00Z");
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "advisory_ids"), 0)),
                        "INTEL-SA-00586");
    assert_string_equal(json_string_value(json_object_get(c, "collateral_expiration_status")), "0");
    assert_int_equal(strlen(json_string_value(json_object_get(c, "init_data"))), 128);

    /* the same through the verifier table and the evidence JSON trustee's attester sends */
    CL_AUTO(cl_str) *b64 = cl_b64_encode(quote, quote_len, CL_B64_STD);
    CL_AUTO(json_t) *ev = json_pack("{s:s}", "quote", b64);
    /* the table pins Intel's collateral root: everything up to the test-signed collateral holds */
    json_decref(
        tt_expect("sgx evidence", "sgx", ev, rd_test, 4, NULL, 0, &cfg, CL_TEE_STAGE_COLLATERAL));
    uint8_t other[4] = {'t', 'e', 's', 'u'};
    json_decref(
        tt_expect("sgx wrong report data", "sgx", ev, other, 4, NULL, 0, &cfg, CL_TEE_STAGE_BIND));
    uint8_t idd[32] = {1};
    json_decref(tt_expect("sgx wrong init-data", "sgx", ev, rd_test, 4, idd, 32, &cfg,
                          CL_TEE_STAGE_INIT_DATA));
    static const char *const shapes[] = {"[]", "{}", "{\"quote\": 3}", "{\"quote\": \"!!\"}",
                                         "{\"quote\": \"AAAA\"}"};
    for (size_t i = 0; i < CL_ARRAY_LEN(shapes); i++) {
        CL_AUTO(json_t) *b = json_loads(shapes[i], 0, NULL);
        json_decref(tt_expect(shapes[i], "sgx", b, rd_test, 4, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
    }

    /* policy switches: OutOfDate and DEBUG are refused by default */
    struct cl_tee_config strict = cfg;
    strict.tdx_allow_tcb_insecure = 0;
    json_decref(
        verify(quote, quote_len, rd_test, 4, NULL, 0, &strict, CL_EDENIED, CL_TEE_STAGE_TCB));
    struct cl_tee_config nodebug = cfg;
    nodebug.allow_debug_insecure = false;
    json_decref(
        verify(quote, quote_len, rd_test, 4, NULL, 0, &nodebug, CL_EDENIED, CL_TEE_STAGE_TCB));
    /* expired collateral, then allowed by its switch */
    struct cl_tee_config late = cfg;
    late.verify_time = 1767225600; /* 2026-01-01: after nextUpdate, PCK chain still valid */
    json_decref(
        verify(quote, quote_len, rd_test, 4, NULL, 0, &late, CL_EEXPIRED, CL_TEE_STAGE_COLLATERAL));
    tt_rmtree(dir);
    free(dir);

    /* a platform at the UpToDate level */
    o.up_to_date = true;
    dir = make_collateral(&o);
    cfg.sgx_collateral_dir = dir;
    cfg.tdx_allow_tcb_insecure = 0;
    CL_AUTO(json_t) *u = verify(quote, quote_len, rd_test, 4, NULL, 0, &cfg, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(u, "tcb_status")), "UpToDate");
    tt_rmtree(dir);
    free(dir);
}

/* ---- tamper twins ---- */

static size_t find(const uint8_t *hay, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (memcmp(hay + i, needle, l) == 0)
            return i;
    fail_msg("'%s' not in the quote", needle);
    return 0;
}

static void test_quote_twins(void **state)
{
    (void)state;
    struct coll_opts o = {.up_to_date = true};
    char *dir = make_collateral(&o);
    struct cl_tee_config cfg = {
        .verify_time = TT_TIME, .sgx_collateral_dir = dir, .allow_debug_insecure = true};
    size_t body = 48, sig = 48 + 384 + 4, qer = sig + 128, qesig = qer + 384, auth = qesig + 64 + 2;
    size_t pem = find(quote, quote_len, "-----BEGIN CERTIFICATE-----");
    struct {
        const char *name;
        size_t off, len;
        const char *stage;
    } t[] = {
        {"mr_enclave", body + 64, 0, CL_TEE_STAGE_SIGNATURE},
        {"isv_svn", body + 258, 0, CL_TEE_STAGE_SIGNATURE},
        {"header user_data", 30, 0, CL_TEE_STAGE_SIGNATURE},
        {"quote signature", sig + 4 + 10, 0, CL_TEE_STAGE_SIGNATURE},
        {"attestation key", sig + 4 + 64 + 5, 0, CL_TEE_STAGE_SIGNATURE},
        {"QE report", qer + 4 + 100, 0, CL_TEE_STAGE_SIGNATURE},
        {"QE report signature", qesig + 4 + 7, 0, CL_TEE_STAGE_SIGNATURE},
        {"QE auth data", auth + 4 + 1, 0, CL_TEE_STAGE_SIGNATURE},
        {"report_data", body + 320 + 1, 0, CL_TEE_STAGE_BIND},
        {"version", 0, 0, CL_TEE_STAGE_PARSE},
        {"PCK chain root (PEM body)", pem + 28 + 40 + 2 * 1500, 0, NULL /* parse or chain */},
        {"truncated in the body", SIZE_MAX, 200, CL_TEE_STAGE_PARSE},
        {"truncated in the chain", SIZE_MAX, quote_len - 700, CL_TEE_STAGE_PARSE},
        {"header only", SIZE_MAX, 48, CL_TEE_STAGE_PARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(t); i++) {
        uint8_t *q = malloc(quote_len);
        memcpy(q, quote, quote_len);
        size_t n = quote_len;
        if (t[i].off != SIZE_MAX)
            q[t[i].off] ^= 0x01;
        else
            n = t[i].len;
        print_message("twin: %s\n", t[i].name);
        json_t *c = NULL;
        struct cl_err e = {0};
        int rc = cl_sgx_verify_quote(q, n, rd_test, 4, NULL, 0, &cfg, pins, 1, &c, &e);
        if (rc == 0)
            fail_msg("twin %s verified", t[i].name);
        if (t[i].stage && strcmp(e.stage, t[i].stage) != 0)
            fail_msg("twin %s: want %s, got %s: %s", t[i].name, t[i].stage, e.stage, e.msg);
        if (!t[i].stage && strcmp(e.stage, CL_TEE_STAGE_PARSE) != 0 &&
            strcmp(e.stage, CL_TEE_STAGE_CHAIN) != 0)
            fail_msg("twin %s: want parse or chain, got %s: %s", t[i].name, e.stage, e.msg);
        free(q);
    }
    /* the untouched quote still verifies with this collateral */
    json_decref(verify(quote, quote_len, rd_test, 4, NULL, 0, &cfg, 0, NULL));
    tt_rmtree(dir);
    free(dir);
}

static void test_collateral_twins(void **state)
{
    (void)state;
    struct {
        const char *name;
        struct coll_opts o;
        int rc;
        const char *stage;
    } t[] = {
        {"TCB info text changed after signing",
         {.up_to_date = true, .tamper_from = "\"pcesvn\":", .tamper_to = "\"pcesvm\":"},
         CL_EVERIFY,
         CL_TEE_STAGE_COLLATERAL},
        {"TDX TCB info given to SGX",
         {.up_to_date = true, .id = "TDX"},
         CL_EPARSE,
         CL_TEE_STAGE_COLLATERAL},
        {"TDX QE identity given to SGX",
         {.up_to_date = true, .qe_id = "TD_QE"},
         CL_EPARSE,
         CL_TEE_STAGE_COLLATERAL},
        {"TCB info of another FMSPC",
         {.up_to_date = true, .fmspc = "00A06D080000"},
         CL_EVERIFY,
         CL_TEE_STAGE_TCB},
        {"QE identity of another signer",
         {.up_to_date = true,
          .qe_signer = "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5"},
         CL_EVERIFY,
         CL_TEE_STAGE_TCB},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(t); i++) {
        print_message("collateral twin: %s\n", t[i].name);
        char *dir = make_collateral(&t[i].o);
        struct cl_tee_config cfg = {
            .verify_time = TT_TIME, .sgx_collateral_dir = dir, .allow_debug_insecure = true};
        json_decref(verify(quote, quote_len, rd_test, 4, NULL, 0, &cfg, t[i].rc, t[i].stage));
        tt_rmtree(dir);
        free(dir);
    }
    /* no collateral configured; and Intel's real pins refuse the test-signed collateral */
    struct cl_tee_config none = {.verify_time = TT_TIME, .allow_debug_insecure = true};
    json_decref(verify(quote, quote_len, rd_test, 4, NULL, 0, &none, CL_ENOTFOUND,
                       CL_TEE_STAGE_COLLATERAL));
    struct coll_opts o = {.up_to_date = true};
    char *dir = make_collateral(&o);
    struct cl_tee_config cfg = {
        .verify_time = TT_TIME, .sgx_collateral_dir = dir, .allow_debug_insecure = true};
    json_t *c = NULL;
    struct cl_err e = {0};
    assert_int_equal(cl_sgx_verify_quote(quote, quote_len, rd_test, 4, NULL, 0, &cfg,
                                         cl_tdx_root_pins, cl_tdx_root_npins, &c, &e),
                     CL_EVERIFY);
    assert_string_equal(e.stage, CL_TEE_STAGE_COLLATERAL);
    tt_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_claims),
        cmocka_unit_test(test_quote_twins),
        cmocka_unit_test(test_collateral_twins),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
