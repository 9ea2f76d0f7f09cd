/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVIDIA verifier (local mode): trustee's Hopper reports with their device chains verified at
 * a pinned time against NVIDIA's pinned Device Identity CA; the claims of
 * hopperAttestationReport.txt equal hopperAttestationReport-claims.txt; the three negative
 * chains refused at the chain stage; tamper twins (flipped measurement, opaque data, FWID,
 * signature and certificate bytes, wrong nonce, truncation, trailing garbage, a foreign root,
 * a time before the chain) refused at their stage; the evidence JSON as trustee's attester
 * sends it (hex or base64 report, base64 PEM chain), one device and several.
 */
#include "tee_test.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"
#include "tee/nvidia/nvidia.h"
#include "tee/tee_int.h"

#define ND "deps/verifier/test_data/nvidia/"
#define UUID "1111-2222-33333-444444-555555"

struct vec {
    uint8_t *rep;
    size_t rep_len;
    char *chain;
    size_t chain_len;
};

static struct vec load(const char *report_hex, const char *chain)
{
    struct vec v = {0};
    size_t n = 0;
    CL_AUTO(cl_bytes) *hex = tt_read(report_hex, &n);
    while (n && (hex[n - 1] == '\n' || hex[n - 1] == '\r' || hex[n - 1] == ' '))
        n--;
    v.rep = malloc(n / 2 + 1);
    struct cl_err e = {0};
    assert_int_equal(cl_hex_decode((const char *)hex, n, v.rep, n / 2, &v.rep_len, &e), 0);
    v.chain = (char *)tt_read(chain, &v.chain_len);
    return v;
}

static void vec_free(struct vec *v)
{
    free(v->rep);
    free(v->chain);
}

static const uint8_t hopper_nonce[32] = {
    0x93, 0x1d, 0x8d, 0xd0, 0xad, 0xd2, 0x03, 0xac, 0x3d, 0x8b, 0x4f, 0xbd, 0xe7, 0x5e, 0x11, 0x52,
    0x78, 0xee, 0xfc, 0xdc, 0xea, 0xc5, 0xb8, 0x76, 0x71, 0xa7, 0x48, 0xf3, 0x23, 0x64, 0xdf, 0xcb};

static int run(const struct vec *v, const uint8_t *rd, size_t rdl, int64_t at,
               const char *want_stage, json_t **claims_out)
{
    json_t *claims = NULL;
    struct cl_err e = {0};
    int rc = cl_nvidia_verify_device(v->rep, v->rep_len, (const uint8_t *)v->chain, v->chain_len,
                                     "HOPPER", UUID, rd, rdl, cl_nvidia_root_pins,
                                     cl_nvidia_root_npins, at, &claims, &e);
    if (!want_stage) {
        if (rc != 0)
            fail_msg("want success, got %s at %s: %s", cl_err_name(rc), e.stage ? e.stage : "?",
                     e.msg);
        if (claims_out)
            *claims_out = claims;
        else
            json_decref(claims);
        return 0;
    }
    if (rc == 0)
        fail_msg("want refusal at %s, got success", want_stage);
    if (!e.stage || strcmp(e.stage, want_stage) != 0)
        fail_msg("want stage %s, got %s: %s", want_stage, e.stage ? e.stage : "(none)", e.msg);
    assert_null(claims);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    return 0;
}

/* ---- the vectors ---- */

static void test_vectors(void **state)
{
    (void)state;
    struct vec v = load(ND "hopperAttestationReport.txt", ND "hopper_cert_chain_case1.txt");
    json_t *claims = NULL;
    run(&v, hopper_nonce, 32, TT_TIME, NULL, &claims);
    CL_AUTO(json_t) *want = tt_json(ND "hopperAttestationReport-claims.txt");
    if (!json_equal(claims, want)) {
        char *got = json_dumps(claims, JSON_SORT_KEYS);
        fail_msg("claims differ from hopperAttestationReport-claims.txt: %s", got);
    }
    json_decref(claims);
    /* the runtime data digest is 48 bytes; its first 32 are the nonce */
    uint8_t rd48[48] = {0};
    memcpy(rd48, hopper_nonce, 32);
    memset(rd48 + 32, 0xaa, 16);
    run(&v, rd48, 48, TT_TIME, NULL, NULL);
    /* the three negative chains of trustee's cert_chain tests */
    static const struct {
        const char *file;
        const char *msg;
    } bad[] = {
        {ND "hopper_cert_chain_case2.txt",
         "at least the signing certificate and the root CA"},   /* root only */
        {ND "hopper_cert_chain_case3.txt", "failed to verify"}, /* no intermediate */
        {ND "hopper_cert_chain_case4.txt", "FWID extension"},   /* no signing cert */
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct vec b = load(ND "hopperAttestationReport.txt", bad[i].file);
        json_t *c = NULL;
        struct cl_err e = {0};
        int rc = cl_nvidia_verify_device(b.rep, b.rep_len, (const uint8_t *)b.chain, b.chain_len,
                                         "HOPPER", NULL, hopper_nonce, 32, cl_nvidia_root_pins,
                                         cl_nvidia_root_npins, TT_TIME, &c, &e);
        if (rc == 0 || strcmp(e.stage, CL_TEE_STAGE_CHAIN) != 0 || !strstr(e.msg, bad[i].msg))
            fail_msg("%s: want chain refusal '%s', got %d %s: %s", bad[i].file, bad[i].msg, rc,
                     e.stage ? e.stage : "-", e.msg);
        vec_free(&b);
    }
    vec_free(&v);
    /* the report captured in CoCo CI (one zero byte of padding after the signature) */
    struct vec co = load(ND "hopper_coco_report1.txt", ND "hopper_coco_certs1.txt");
    struct cl_nvidia_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_nvidia_report_parse(co.rep, co.rep_len, &r, &e), 0);
    assert_int_equal(r.nblocks, 64);
    static const uint8_t coco_prefix[4] = {0x87, 0xd8, 0xe2, 0x4a}; /* README: 87d8e24a…81250 */
    assert_memory_equal(r.nonce, coco_prefix, 4);
    uint8_t nonce[32];
    memcpy(nonce, r.nonce, 32);
    run(&co, nonce, 32, TT_TIME, NULL, NULL);
    nonce[31] ^= 1;
    run(&co, nonce, 32, TT_TIME, CL_TEE_STAGE_BIND, NULL);
    vec_free(&co);
}

/* ---- tamper twins ---- */

static char *pem_flip(const char *pem, size_t len, int which, size_t *outlen)
{
    struct cl_err e = {0};
    CL_AUTO(cl_tee_x509s) *sk = cl_tee_x509_parse_any((const uint8_t *)pem, len, &e);
    assert_non_null(sk);
    BIO *b = BIO_new(BIO_s_mem());
    for (int i = 0; i < sk_X509_num(sk); i++) {
        unsigned char *der = NULL;
        int dl = i2d_X509(sk_X509_value(sk, i), &der);
        assert_true(dl > 10);
        if (i == which)
            der[dl - 5] ^= 0x01; /* inside the certificate's signature */
        PEM_write_bio(b, "CERTIFICATE", "", der, dl);
        OPENSSL_free(der);
    }
    char *p = NULL;
    long l = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)l + 1);
    memcpy(out, p, (size_t)l);
    out[l] = 0;
    *outlen = (size_t)l;
    BIO_free(b);
    return out;
}

/* Offset of opaque record `type`'s value in the report. */
static size_t od_offset(const struct vec *v, uint16_t type)
{
    struct cl_nvidia_report r;
    struct cl_err e = {0};
    assert_int_equal(cl_nvidia_report_parse(v->rep, v->rep_len, &r, &e), 0);
    assert_non_null(r.od[type]);
    return (size_t)(r.od[type] - v->rep);
}

static void test_twins(void **state)
{
    (void)state;
    struct vec v = load(ND "hopperAttestationReport.txt", ND "hopper_cert_chain_case1.txt");
    struct {
        const char *name;
        size_t off; /* byte to flip; SIZE_MAX: none */
        size_t len; /* report length used (0: whole) */
        const char *stage;
    } t[] = {
        {"measurement block 1 value", 37 + 8 + 7, 0, CL_TEE_STAGE_SIGNATURE},
        {"measurement block 12 value", 37 + 8 + 11 * 55 + 7 + 3, 0, CL_TEE_STAGE_SIGNATURE},
        {"responder nonce", 37 + 8 + 3520 + 5, 0, CL_TEE_STAGE_SIGNATURE},
        {"driver version", od_offset(&v, CL_NVIDIA_OD_DRIVER_VERSION) + 1, 0,
         CL_TEE_STAGE_SIGNATURE},
        {"vbios version", od_offset(&v, CL_NVIDIA_OD_VBIOS_VERSION), 0, CL_TEE_STAGE_SIGNATURE},
        {"FWID", od_offset(&v, CL_NVIDIA_OD_FWID) + 10, 0, CL_TEE_STAGE_CHAIN},
        {"signature r", v.rep_len - 96 + 3, 0, CL_TEE_STAGE_SIGNATURE},
        {"signature s", v.rep_len - 1, 0, CL_TEE_STAGE_SIGNATURE},
        {"request nonce", 4, 0, CL_TEE_STAGE_BIND},
        {"request code", 1, 0, CL_TEE_STAGE_PARSE},
        {"record length", 37 + 6, 0, CL_TEE_STAGE_PARSE},
        {"block count", 37 + 4, 0, CL_TEE_STAGE_PARSE},
        {"truncated in the signature", SIZE_MAX, v.rep_len - 1, CL_TEE_STAGE_PARSE},
        {"truncated in the record", SIZE_MAX, 400, CL_TEE_STAGE_PARSE},
        {"request only", SIZE_MAX, 37, CL_TEE_STAGE_PARSE},
        {"empty", SIZE_MAX, 0, CL_TEE_STAGE_PARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(t); i++) {
        struct vec w = v;
        w.rep = malloc(v.rep_len + 1);
        memcpy(w.rep, v.rep, v.rep_len);
        if (t[i].off != SIZE_MAX)
            w.rep[t[i].off] ^= 0x01;
        else
            w.rep_len = t[i].len;
        print_message("twin: %s\n", t[i].name);
        run(&w, hopper_nonce, 32, TT_TIME, t[i].stage, NULL);
        free(w.rep);
    }
    /* trailing bytes: zero padding accepted, anything else refused */
    struct vec w = v;
    w.rep = calloc(1, v.rep_len + 4);
    memcpy(w.rep, v.rep, v.rep_len);
    w.rep_len = v.rep_len + 4;
    run(&w, hopper_nonce, 32, TT_TIME, NULL, NULL);
    w.rep[v.rep_len + 2] = 7;
    run(&w, hopper_nonce, 32, TT_TIME, CL_TEE_STAGE_PARSE, NULL);
    free(w.rep);
    /* wrong nonce */
    uint8_t other[32];
    memcpy(other, hopper_nonce, 32);
    other[0] ^= 0x80;
    run(&v, other, 32, TT_TIME, CL_TEE_STAGE_BIND, NULL);
    /* each certificate's signature bytes */
    for (int k = 0; k < 5; k++) {
        struct vec c = v;
        c.chain = pem_flip(v.chain, v.chain_len, k, &c.chain_len);
        print_message("twin: certificate %d\n", k);
        run(&c, hopper_nonce, 32, TT_TIME, CL_TEE_STAGE_CHAIN, NULL);
        free(c.chain);
    }
    /* a time before the device certificates */
    run(&v, hopper_nonce, 32, 1577836800 /* 2020-01-01 */, CL_TEE_STAGE_CHAIN, NULL);
    /* a chain that ends in a root NVIDIA's pin does not name: the pin of another root */
    {
        json_t *c = NULL;
        struct cl_err e = {0};
        static const char *const other_pin[] = {
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
        assert_int_not_equal(cl_nvidia_verify_device(v.rep, v.rep_len, (const uint8_t *)v.chain,
                                                     v.chain_len, "HOPPER", NULL, hopper_nonce, 32,
                                                     other_pin, 1, TT_TIME, &c, &e),
                             0);
        assert_string_equal(e.stage, CL_TEE_STAGE_CHAIN);
    }
    /* the chain of the other device: chain verifies, FWID differs */
    {
        struct vec o = v;
        size_t n = 0;
        o.chain = (char *)tt_read(ND "hopper_coco_certs1.txt", &n);
        o.chain_len = n;
        run(&o, hopper_nonce, 32, TT_TIME, CL_TEE_STAGE_CHAIN, NULL);
        free(o.chain);
    }
    vec_free(&v);
}

/* ---- the evidence JSON through the verifier table ---- */

static json_t *evidence(const struct vec *v, bool b64_report, int ndev, const char *arch)
{
    CL_AUTO(cl_str) *rep = b64_report ? cl_b64_encode(v->rep, v->rep_len, CL_B64_STD)
                                      : cl_hex_encode(v->rep, v->rep_len);
    CL_AUTO(cl_str) *cert = cl_b64_encode(v->chain, v->chain_len, CL_B64_STD);
    json_t *list = json_array();
    for (int i = 0; i < ndev; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "arch", arch, "uuid", UUID,
                                              "evidence", rep, "certificate", cert));
    return json_pack("{s:o}", "device_evidence_list", list);
}

static void test_evidence_json(void **state)
{
    (void)state;
    struct vec v = load(ND "hopperAttestationReport.txt", ND "hopper_cert_chain_case1.txt");
    struct cl_tee_config cfg = {.verify_time = TT_TIME};
    CL_AUTO(json_t) *want = tt_json(ND "hopperAttestationReport-claims.txt");
    for (int b64 = 0; b64 < 2; b64++) {
        CL_AUTO(json_t) *ev = evidence(&v, b64, 1, "HOPPER");
        CL_AUTO(json_t) *c =
            tt_expect("one device", "nvidia", ev, hopper_nonce, 32, NULL, 0, &cfg, NULL);
        assert_true(json_equal(c, want));
        uint8_t bad[32];
        memcpy(bad, hopper_nonce, 32);
        bad[31] ^= 1;
        json_decref(tt_expect("one device, wrong nonce", "nvidia", ev, bad, 32, NULL, 0, &cfg,
                              CL_TEE_STAGE_BIND));
    }
    /* several devices: one claim set each */
    {
        CL_AUTO(json_t) *ev = evidence(&v, false, 3, "HOPPER");
        const struct cl_tee_verifier *ver = cl_tee_verifier_find("nvidia");
        assert_non_null(ver);
        assert_string_equal(ver->tee_class, "gpu");
        struct cl_tee_verify_in in = {ev, hopper_nonce, 32, NULL, 0, &cfg};
        json_t *c = NULL;
        struct cl_err e = {0};
        assert_int_equal(ver->verify(&in, &c, &e), 0);
        assert_true(json_is_array(c));
        assert_int_equal(json_array_size(c), 3);
        assert_true(json_equal(json_array_get(c, 2), want));
        json_decref(c);
    }
    /* Blackwell and switches need NRAS: not verified locally */
    {
        CL_AUTO(json_t) *ev = evidence(&v, false, 1, "BLACKWELL");
        json_decref(tt_expect("blackwell", "nvidia", ev, hopper_nonce, 32, NULL, 0, &cfg,
                              CL_TEE_STAGE_PARSE));
    }
    static const char *const shapes[] = {
        "[]",
        "{}",
        "{\"device_evidence_list\": []}",
        "{\"device_evidence_list\": [{}]}",
        "{\"device_evidence_list\": [{\"arch\": \"HOPPER\", \"evidence\": \"zz\", \"certificate\": "
        "\"AAAA\"}]}",
        "{\"device_evidence_list\": [{\"arch\": \"HOPPER\", \"evidence\": \"11e0\", "
        "\"certificate\": \"!!\"}]}",
        "{\"device_evidence_list\": [{\"arch\": \"HOPPER\", \"evidence\": \"11e0\", "
        "\"certificate\": \"AAAA\", "
        "\"uuid\": 3}]}",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(shapes); i++) {
        CL_AUTO(json_t) *b = json_loads(shapes[i], 0, NULL);
        assert_non_null(b);
        json_decref(
            tt_expect(shapes[i], "nvidia", b, hopper_nonce, 32, NULL, 0, &cfg, CL_TEE_STAGE_PARSE));
    }
    /* too many devices */
    {
        CL_AUTO(json_t) *ev = evidence(&v, false, CL_NVIDIA_MAX_DEVICES + 1, "HOPPER");
        json_decref(tt_expect("17 devices", "nvidia", ev, hopper_nonce, 32, NULL, 0, &cfg,
                              CL_TEE_STAGE_PARSE));
    }
    vec_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_twins),
        cmocka_unit_test(test_evidence_json),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
