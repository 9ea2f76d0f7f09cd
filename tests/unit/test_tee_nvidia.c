/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVIDIA verifier (local mode): trustee's Hopper reports with their device chains verified at
 * a pinned time against NVIDIA's pinned Device Identity CA; the claims of
 * hopperAttestationReport.txt equal hopperAttestationReport-claims.txt; the three negative
 * chains refused at the chain stage; tamper twins (flipped measurement, opaque data, FWID,
 * signature and certificate bytes, wrong nonce, truncation, trailing garbage, a foreign root,
 * a time before the chain) refused at their stage; the evidence JSON as trustee's attester
 * sends it (hex or base64 report, base64 PEM chain), one device and several.
 *
 * A captured report carries its own nonce, so the binding to a fresh digest and the branches the
 * vectors cannot reach (a parent that is not a CA, a signing key that is not P-384, an expired
 * signing certificate) are tested on reports made here: the same SPDM layout, signed with a
 * test device key under a test root passed as the pin.
 */
#include "tee_test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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
    /* hopper_signing_cert.pem is the chain's leaf: its FWID, with the rest of chain case 1 */
    {
        size_t ln = 0, cn = 0;
        CL_AUTO(cl_bytes) *leaf = tt_read(ND "hopper_signing_cert.pem", &ln);
        CL_AUTO(cl_bytes) *full = tt_read(ND "hopper_cert_chain_case1.txt", &cn);
        struct cl_err e = {0};
        CL_AUTO(cl_tee_x509s) *l = cl_tee_x509_parse_any(leaf, ln, &e);
        CL_AUTO(cl_tee_x509s) *chain = cl_tee_x509_parse_any(full, cn, &e);
        assert_non_null(l);
        assert_non_null(chain);
        assert_int_equal(X509_cmp(sk_X509_value(l, 0), sk_X509_value(chain, 0)), 0);
        CL_AUTO(cl_tee_x509s) *mixed = sk_X509_new_null(); /* the signing cert file + the rest */
        for (int i = 0; i < sk_X509_num(chain); i++) {
            X509 *c = i ? sk_X509_value(chain, i) : sk_X509_value(l, 0);
            X509_up_ref(c);
            sk_X509_push(mixed, c);
        }
        uint8_t fwid[CL_NVIDIA_FWID_LEN], want_fwid[CL_NVIDIA_FWID_LEN];
        tt_unhex("f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb305"
                 "5ee051762b1f75d",
                 want_fwid, sizeof want_fwid);
        assert_int_equal(cl_nvidia_chain_verify(mixed, cl_nvidia_root_pins, cl_nvidia_root_npins,
                                                TT_TIME, fwid, &e),
                         0);
        assert_memory_equal(fwid, want_fwid, sizeof want_fwid);
    }
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

/* ---- reports made here, under a test root ---- */

static X509 *mk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool ca,
                     const uint8_t *fwid, int64_t not_after)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), (long)(uintptr_t)key & 0x7fffffff);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(c), 1600000000);
    ASN1_TIME_set(X509_getm_notAfter(c), (time_t)not_after);
    X509_set_pubkey(c, key);
    if (ca) {
        X509_EXTENSION *bc =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(c, bc, -1);
        X509_EXTENSION_free(bc);
    }
    if (fwid) {
        /* SEQUENCE { OCTET STRING fwid }: the FWID ends the extension, as in the DICE TcbInfo */
        uint8_t der[2 + 2 + CL_NVIDIA_FWID_LEN] = {0x30, 2 + CL_NVIDIA_FWID_LEN, 0x04,
                                                   CL_NVIDIA_FWID_LEN};
        memcpy(der + 4, fwid, CL_NVIDIA_FWID_LEN);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, der, sizeof der);
        ASN1_OBJECT *obj = OBJ_txt2obj("2.23.133.5.4.1", 1);
        X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        X509_add_ext(c, ext, -1);
        X509_EXTENSION_free(ext);
        ASN1_OBJECT_free(obj);
        ASN1_OCTET_STRING_free(os);
    }
    assert_true(X509_sign(c, ikey ? ikey : key, EVP_sha384()) > 0);
    return c;
}

struct synth {
    EVP_PKEY *root_key, *mid_key, *leaf_key;
    X509 *root, *mid, *leaf;
    char pin[65];
};

static void synth_free(struct synth *s)
{
    EVP_PKEY_free(s->root_key);
    EVP_PKEY_free(s->mid_key);
    EVP_PKEY_free(s->leaf_key);
    X509_free(s->root);
    X509_free(s->mid);
    X509_free(s->leaf);
}

static const uint8_t synth_fwid[CL_NVIDIA_FWID_LEN] = {0xf1, 0xd0, 0x00, 0x01};

static void synth_make(struct synth *s, const char *leaf_curve, bool mid_ca, int64_t leaf_not_after)
{
    memset(s, 0, sizeof *s);
    s->root_key = EVP_EC_gen("P-384");
    s->mid_key = EVP_EC_gen("P-384");
    s->leaf_key = EVP_EC_gen(leaf_curve);
    s->root = mk_cert("Test Device Identity CA", s->root_key, NULL, NULL, true, NULL, 2500000000);
    s->mid =
        mk_cert("Test GH100 Identity", s->mid_key, s->root, s->root_key, mid_ca, NULL, 2500000000);
    s->leaf = mk_cert("Test GSP FMC LF", s->leaf_key, s->mid, s->mid_key, false, synth_fwid,
                      leaf_not_after);
    unsigned char md[32];
    unsigned n = 0;
    X509_digest(s->root, EVP_sha256(), md, &n);
    for (int i = 0; i < 32; i++)
        snprintf(s->pin + 2 * i, 3, "%02x", md[i]);
}

/* request ‖ response with two measurement blocks and driver, VBIOS and FWID records, signed by
 * the leaf key (new; *len set) */
static uint8_t *synth_report(const struct synth *s, const uint8_t nonce[32], const uint8_t *fwid,
                             size_t *len)
{
    uint8_t *b = calloc(1, 1024);
    size_t n = 0;
    const uint8_t req[4] = {0x11, 0xe0, 0x01, 0xff};
    memcpy(b, req, 4);
    memcpy(b + 4, nonce, 32);
    b[36] = 0;
    n = 37;
    uint8_t rec[2 * (4 + 3 + 48)];
    size_t rl = 0;
    for (uint8_t i = 1; i <= 2; i++) {
        const uint8_t hdr[7] = {i, 0x01, 51, 0, 0x01, 48, 0};
        memcpy(rec + rl, hdr, 7);
        memset(rec + rl + 7, 0x40 + i, 48);
        rl += 55;
    }
    const uint8_t resp[8] = {0x11, 0x60, 0, 0, 2, (uint8_t)rl, (uint8_t)(rl >> 8), 0};
    memcpy(b + n, resp, 8);
    n += 8;
    memcpy(b + n, rec, rl);
    n += rl;
    memset(b + n, 0x5a, 32); /* responder nonce */
    n += 32;
    uint8_t od[4 + 8 + 4 + 8 + 4 + 48];
    size_t ol = 0;
    const uint8_t drv[12] = {3, 0, 8, 0, '1', '.', '2', '.', '3', 0, 0, 0};
    memcpy(od, drv, 12);
    ol = 12;
    const uint8_t vb[12] = {6, 0, 8, 0, 0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0};
    memcpy(od + ol, vb, 12);
    ol += 12;
    const uint8_t fw[4] = {20, 0, 48, 0};
    memcpy(od + ol, fw, 4);
    memcpy(od + ol + 4, fwid, 48);
    ol += 52;
    b[n++] = (uint8_t)ol;
    b[n++] = (uint8_t)(ol >> 8);
    memcpy(b + n, od, ol);
    n += ol;
    cl_bytes *sig = NULL;
    size_t sl = 0;
    struct cl_err e = {0};
    const char *alg = EVP_PKEY_get_bits(s->leaf_key) == 384 ? "ES384" : "ES256";
    assert_int_equal(cl_sig_sign(s->leaf_key, alg, b, n, &sig, &sl, &e), 0);
    memset(b + n, 0, 96);
    memcpy(b + n, sig, sl < 96 ? sl : 96);
    free(sig);
    *len = n + 96;
    return b;
}

static char *synth_chain(const struct synth *s, size_t *len)
{
    X509 *const certs[] = {s->leaf, s->mid, s->root};
    BIO *b = BIO_new(BIO_s_mem());
    for (size_t i = 0; i < 3; i++)
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

static int synth_verify(const struct synth *s, const uint8_t *rep, size_t rn, const uint8_t *rd,
                        size_t rdl, const char *want_stage, json_t **claims_out)
{
    size_t cn = 0;
    char *chain = synth_chain(s, &cn);
    const char *pins[] = {s->pin};
    json_t *claims = NULL;
    struct cl_err e = {0};
    int rc = cl_nvidia_verify_device(rep, rn, (const uint8_t *)chain, cn, "HOPPER", "GPU-test", rd,
                                     rdl, pins, 1, TT_TIME, &claims, &e);
    free(chain);
    if (!want_stage) {
        if (rc != 0)
            fail_msg("synthetic: want success, got %s at %s: %s", cl_err_name(rc),
                     e.stage ? e.stage : "?", e.msg);
        *claims_out = claims;
        return 0;
    }
    if (rc == 0 || !e.stage || strcmp(e.stage, want_stage) != 0)
        fail_msg("synthetic: want refusal at %s, got %d at %s: %s", want_stage, rc,
                 rc && e.stage ? e.stage : "-", rc ? e.msg : "");
    return rc;
}

static void test_synthetic(void **state)
{
    (void)state;
    uint8_t digest[48];
    struct cl_err e = {0};
    assert_int_equal(cl_random(digest, sizeof digest, &e), 0);
    struct synth s;
    synth_make(&s, "P-384", true, 2500000000);
    size_t rn = 0;
    uint8_t *rep = synth_report(&s, digest, synth_fwid, &rn);
    /* a fresh runtime-data digest bound: the first 32 bytes are the SPDM nonce */
    json_t *claims = NULL;
    synth_verify(&s, rep, rn, digest, 48, NULL, &claims);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(claims, "config"), "driver_version")),
        "1.2.3");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(claims, "config"), "vbios_version")),
        "96.00.9f.00.01");
    assert_int_equal(json_object_size(json_object_get(claims, "measurements")), 2);
    json_decref(claims);
    /* twins */
    uint8_t other[48];
    memcpy(other, digest, 48);
    other[5] ^= 1;
    synth_verify(&s, rep, rn, other, 48, CL_TEE_STAGE_BIND, NULL);
    memcpy(other, digest, 48);
    other[40] ^= 1; /* past the 32 bytes the nonce holds: still bound */
    synth_verify(&s, rep, rn, other, 48, NULL, &claims);
    json_decref(claims);
    rep[37 + 8 + 10] ^= 1;
    synth_verify(&s, rep, rn, digest, 48, CL_TEE_STAGE_SIGNATURE, NULL);
    free(rep);
    uint8_t fw2[CL_NVIDIA_FWID_LEN] = {0xf1, 0xd0, 0x00, 0x02};
    rep = synth_report(&s, digest, fw2, &rn);
    synth_verify(&s, rep, rn, digest, 48, CL_TEE_STAGE_CHAIN, NULL);
    free(rep);
    synth_free(&s);
    /* an intermediate without CA:TRUE */
    synth_make(&s, "P-384", false, 2500000000);
    rep = synth_report(&s, digest, synth_fwid, &rn);
    synth_verify(&s, rep, rn, digest, 48, CL_TEE_STAGE_CHAIN, NULL);
    free(rep);
    synth_free(&s);
    /* a signing certificate expired at the verification time */
    synth_make(&s, "P-384", true, TT_TIME - 1);
    rep = synth_report(&s, digest, synth_fwid, &rn);
    synth_verify(&s, rep, rn, digest, 48, CL_TEE_STAGE_CHAIN, NULL);
    free(rep);
    synth_free(&s);
    /* a P-256 device key (signature well-formed for its curve) */
    synth_make(&s, "P-256", true, 2500000000);
    rep = synth_report(&s, digest, synth_fwid, &rn);
    synth_verify(&s, rep, rn, digest, 48, CL_TEE_STAGE_SIGNATURE, NULL);
    free(rep);
    synth_free(&s);
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
        cmocka_unit_test(test_synthetic),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
