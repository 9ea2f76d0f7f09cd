/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation agent: aa.toml (upstream's example and edge-case configs, one case per
 * rejection), AAEL entries against the generated vectors, the tdx attester against a fake
 * configfs-tsm tree that this test builds (the hook plays the kernel), the snp report JSON
 * shape, the TDX cc_eventlog (CCEL + AAEL, against the generated vector and a fake CCEL the
 * test writes), and the agent refusing the sample attester unless configured _insecure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aa/aa.h"
#include "kbs/kbs_client.h"
#include "tee/snp/snp.h"
#include "tee/tdx/tdx.h"

static const char *vecdir(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    return v;
}

static void test_configs(void **state)
{
    struct cl_aa_config c;
    assert_int_equal(cl_aa_config_parse("", 0, &c, NULL), 0);
    assert_int_equal(c.init_pcr, 17);
    assert_false(c.enable_eventlog);
    assert_null(c.kbs_url);
    cl_aa_config_clear(&c);
    const char *v = vecdir();
    if (v) {
        static const char *const files[] = {
            "config.example.toml", "config.example.json", "test/config1.toml", "test/config2.toml",
            "test/config4.toml",   "test/config5.toml",   "test/config6.toml"};
        for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
            char p[600];
            snprintf(p, sizeof p, "%s/guest-components/attestation-agent/attestation-agent/%s", v,
                     files[i]);
            if (access(p, R_OK) != 0)
                continue;
            struct cl_err e = {0};
            if (cl_aa_config_load(p, &c, &e) < 0)
                fail_msg("%s: %s", files[i], e.msg);
            if (i < 2) {
                assert_string_equal(c.kbs_url, "https://127.0.0.1:8080");
                assert_string_equal(c.coco_as_url, "http://127.0.0.1:8000");
                assert_non_null(strstr(c.kbs_cert, "BEGIN CERTIFICATE"));
            }
            cl_aa_config_clear(&c);
        }
    }
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[token_configs.kbs]\ncert = \"x\"\n", "url' is missing"},
        {"[token_configs.kbs]\nurl = 3\n", "must be a string"},
        {"[token_configs.kbs]\nurl = \"u\"\ntee_key_algorithm = \"RSA1_5\"\n", "tee_key_algorithm"},
        {"[token_configs.coco_as]\n", "coco_as.url' is missing"},
        {"token_configs = 3\n", "must be a table"},
        {"[eventlog_config]\ninit_pcr = 24\n", "init_pcr"},
        {"[eventlog_config]\nenable_eventlog = \"yes\"\n", "true or false"},
        {"allow_sample_attester_insecure = 1\n", "true or false"},
        {"[log]\nlevel = 1\n", "must be a string"},
        {"tpm_tcti = 1\n", "tpm_tcti' must be a string"},
        {"attester = true\n", "attester' must be a string"},
        {"x = [", "aa config"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err e = {0};
        if (cl_aa_config_parse(bad[i].text, strlen(bad[i].text), &c, &e) == 0 ||
            !strstr(e.msg, bad[i].msg))
            fail_msg("case %zu: '%s'", i, e.msg);
    }
}

static void test_aael_vectors(void **state)
{
    const char *v = vecdir();
    char p[600];
    snprintf(p, sizeof p, "%s/guest-components/generated/aael/aael-tcg2-vectors.json", v ? v : "");
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = v ? cl_file_read(p, 1u << 20, &n, NULL) : NULL;
    if (!b)
        skip();
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)b, n, 16, NULL);
    size_t i;
    json_t *c;
    int checked = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c)
    {
        enum cl_hash h;
        assert_int_equal(cl_hash_from_name(json_string_value(json_object_get(c, "hash")), &h, NULL),
                         0);
        CL_AUTO(cl_str) *text =
            cl_strdupf("%s %s %s", json_string_value(json_object_get(c, "domain")),
                       json_string_value(json_object_get(c, "operation")),
                       json_string_value(json_object_get(c, "content")));
        uint8_t dg[CL_HASH_MAX];
        size_t el = 0;
        CL_AUTO(cl_bytes) *entry = cl_aa_aael_entry(
            (unsigned)json_integer_value(json_object_get(c, "target_measurement_register")), h,
            text, &el, dg, NULL);
        assert_non_null(entry);
        CL_AUTO(cl_str) *hex = cl_hex_encode(entry, el);
        assert_string_equal(hex, json_string_value(json_object_get(c, "tcg2_entry_hex")));
        CL_AUTO(cl_str) *dhex = cl_hex_encode(dg, cl_hash_len(h));
        assert_string_equal(dhex, json_string_value(json_object_get(c, "event_digest_hex")));
        checked++;
    }
    assert_true(checked >= 4);
}

static void test_event_check(void **state)
{
    assert_int_equal(cl_aa_event_check("d", "o", "c with spaces", NULL), 0);
    assert_int_equal(cl_aa_event_check("", "o", "c", NULL), CL_EINVAL);
    assert_int_equal(cl_aa_event_check("d d", "o", "c", NULL), CL_EINVAL);
    assert_int_equal(cl_aa_event_check("d", "o p", "c", NULL), CL_EINVAL);
    assert_int_equal(cl_aa_event_check("d", "", "c", NULL), CL_EINVAL);
    assert_int_equal(cl_aa_event_check("d", "o", "c\nx", NULL), CL_EINVAL);
    assert_int_equal(cl_aa_event_check("d", "o", "c\x01", NULL), CL_EINVAL);
    assert_int_equal(cl_aa_event_check("d\x7f", "o", "c", NULL), CL_EINVAL);
    char big[CL_AA_MAX_EVENT_TEXT + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(cl_aa_event_check("d", "o", big, NULL), CL_ELIMIT);
}

/* ---- a fake configfs-tsm: the hook plays the kernel ---- */

struct fake {
    const char *provider;
    int generation_bump; /* extra generations (another writer) */
    uint8_t mrconfigid[48];
    int calls;
};

static int write_file(const char *dir, const char *name, const void *b, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return cl_file_write_atomic(p, b, n, 0600, NULL);
}

static int fake_hook(const char *entry, int phase, void *ctx)
{
    struct fake *f = ctx;
    if (phase == 0)
        return write_file(entry, "provider", f->provider, strlen(f->provider));
    if (phase == 1) {
        char p[600];
        snprintf(p, sizeof p, "%s/inblob", entry);
        size_t n = 0;
        CL_AUTO(cl_bytes) *in = cl_file_read(p, 64, &n, NULL);
        if (!in || n != 64)
            return -1;
        uint8_t q[48 + 584 + 64] = {0};
        q[0] = 4;    /* quote v4 */
        q[2] = 2;    /* attestation key type: ECDSA P-256 */
        q[4] = 0x81; /* TEE type: TDX */
        memcpy(q + 48 + 184, f->mrconfigid, 48);
        memcpy(q + 48 + 520, in, 64);
        char gen[16];
        snprintf(gen, sizeof gen, "%d\n", 1 + f->generation_bump);
        f->calls++;
        return write_file(entry, "outblob", q, sizeof q) |
               write_file(entry, "generation", gen, strlen(gen));
    }
    static const char *const files[] = {"provider", "inblob", "outblob", "generation"};
    for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", entry, files[i]);
        unlink(p);
    }
    return 0;
}

static void test_tdx_fake_configfs(void **state)
{
    char dir[] = "/tmp/cl-tsm-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fake f = {.provider = "tdx_guest\n"};
    struct cl_aa_platform pl;
    cl_aa_platform_default(&pl);
    pl.tsm_report_dir = dir;
    pl.tdx_guest_dev = "/nonexistent";
    pl.tsm_hook = fake_hook;
    pl.tsm_hook_ctx = &f;
    const struct cl_aa_attester *a = cl_aa_attester_detect(&pl);
    assert_non_null(a);
    assert_string_equal(a->tee, "tdx");
    uint8_t rd[48];
    memset(rd, 0xab, sizeof rd);
    struct cl_err e = {0};
    CL_AUTO(json_t) *ev = a->evidence(&pl, rd, sizeof rd, &e);
    if (!ev)
        fail_msg("%s", e.msg);
    assert_true(json_is_null(json_object_get(ev, "cc_eventlog")));
    const char *q64 = json_string_value(json_object_get(ev, "quote"));
    size_t ql = 0;
    CL_AUTO(cl_bytes) *q = cl_b64_decode(q64, strlen(q64), CL_B64_STD, 1u << 20, &ql, NULL);
    struct cl_tdx_quote qt;
    assert_int_equal(cl_tdx_quote_parse_head(q, ql, &qt, NULL), 0);
    assert_memory_equal(qt.body.report_data, rd, 48);
    assert_int_equal(qt.body.report_data[48], 0); /* zero-padded to 64 */
    /* report data longer than 64 is refused */
    uint8_t big[65] = {0};
    assert_null(a->evidence(&pl, big, sizeof big, &e));
    assert_int_equal(e.code, CL_EINVAL);
    /* init-data binding: MRCONFIGID holds the digest padded to 48 */
    uint8_t digest[32];
    memset(digest, 0x5a, sizeof digest);
    memcpy(f.mrconfigid, digest, 32);
    assert_int_equal(a->bind_init_data(&pl, digest, 32, &e), 0);
    digest[0] ^= 1;
    assert_int_equal(a->bind_init_data(&pl, digest, 32, &e), CL_EVERIFY);
    assert_non_null(strstr(e.msg, "MRCONFIGID"));
    /* another writer raced the entry */
    f.generation_bump = 1;
    assert_null(a->evidence(&pl, rd, sizeof rd, &e));
    assert_non_null(strstr(e.msg, "raced"));
    f.generation_bump = 0;
    /* another provider: not tdx */
    f.provider = "sev_guest\n";
    assert_null(cl_aa_attester_detect(&pl));
    assert_null(a->evidence(&pl, rd, sizeof rd, &e));
    assert_int_equal(e.code, CL_EUNSUPPORTED);
    /* RTMR extend through a fake measurements folder */
    char meas[64];
    snprintf(meas, sizeof meas, "%s-meas", dir);
    assert_int_equal(mkdir(meas, 0700), 0);
    pl.tdx_measurements = meas;
    uint8_t d48[48];
    memset(d48, 7, sizeof d48);
    assert_int_equal(a->extend(&pl, 17, d48, sizeof d48, &e), 0);
    char rp[128];
    snprintf(rp, sizeof rp, "%s/rtmr3:sha384", meas);
    size_t rn = 0;
    CL_AUTO(cl_bytes) *rt = cl_file_read(rp, 64, &rn, NULL);
    assert_int_equal(rn, 48);
    assert_memory_equal(rt, d48, 48);
    unlink(rp);
    rmdir(meas);
    pl.tdx_measurements = "/nonexistent";
    assert_int_equal(a->extend(&pl, 17, d48, sizeof d48, &e), CL_EUNSUPPORTED);
    rmdir(dir);
}

/* ---- TDX cc_eventlog: CCEL + AAEL ---- */

static uint8_t *le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* A small CCEL: the Spec ID event (SHA-384 only), one EV_SEPARATOR in RTMR0, then padding
 * of `pad` bytes (0xFF). Returns its size; *used gets the bytes taken by the events. */
static size_t fake_ccel(uint8_t *buf, size_t pad, uint32_t second_type, size_t *used)
{
    uint8_t *p = buf;
    memset(buf, 0, 512);
    p = le32(p, 0);
    p = le32(p, 3);  /* EV_NO_ACTION */
    p += 20;         /* SHA-1 digest: zeros */
    p = le32(p, 33); /* Spec ID event size */
    memcpy(p, "Spec ID Event03", 16);
    p += 16;
    p = le32(p, 0);                                /* platform class */
    *p++ = 0, *p++ = 2, *p++ = 0, *p++ = 2;        /* minor, major, errata, uintn size */
    p = le32(p, 1);                                /* one algorithm */
    *p++ = 0x0c, *p++ = 0x00, *p++ = 48, *p++ = 0; /* SHA-384, 48 bytes */
    *p++ = 0;                                      /* no vendor info */
    p = le32(p, 1);                                /* RTMR0 */
    p = le32(p, second_type);                      /* EV_SEPARATOR normally */
    p = le32(p, 1);
    *p++ = 0x0c, *p++ = 0x00;
    memset(p, 0xab, 48);
    p += 48;
    p = le32(p, 4);
    p = le32(p, 0); /* separator data */
    *used = (size_t)(p - buf);
    memset(p, 0xff, pad);
    return *used + pad;
}

static void test_cc_eventlog(void **state)
{
    /* the generated vector: no CCEL, two AAEL events */
    const char *v = vecdir();
    char vp[600];
    snprintf(vp, sizeof vp, "%s/guest-components/generated/aael/aael-tcg2-vectors.json",
             v ? v : "");
    size_t vn = 0;
    CL_AUTO(cl_bytes) *vb = v ? cl_file_read(vp, 1u << 20, &vn, NULL) : NULL;
    if (vb) {
        CL_AUTO(json_t) *doc = cl_json_parse((const char *)vb, vn, 16, NULL);
        const char *hex = json_string_value(json_object_get(
            json_object_get(doc, "rtmr_extend_simulation_sha384"), "aael_file_hex"));
        const char *want = json_string_value(json_object_get(doc, "cc_eventlog_without_ccel_b64"));
        assert_non_null(hex);
        assert_non_null(want);
        uint8_t aael[1024];
        size_t an = 0, ln = 0;
        assert_int_equal(cl_hex_decode(hex, strlen(hex), aael, sizeof aael, &an, NULL), 0);
        CL_AUTO(cl_bytes) *log = cl_aa_cc_eventlog(NULL, 0, aael, an, &ln, NULL);
        assert_non_null(log);
        CL_AUTO(cl_str) *b64 = cl_b64_encode(log, ln, CL_B64_STD);
        assert_string_equal(b64, want);
    } else {
        fprintf(stderr, "generated AAEL vectors absent: the cc_eventlog vector case is skipped\n");
    }
    struct cl_err e = {0};
    size_t ln = 0;
    assert_null(cl_aa_cc_eventlog(NULL, 0, NULL, 0, &ln, &e));
    assert_int_equal(e.code, CL_EINVAL);
    static const uint8_t tiny[1];
    assert_null(
        cl_aa_cc_eventlog(tiny, CL_AA_MAX_CCEL + 1, NULL, 0, &ln, &e)); /* refused before reading */
    assert_int_equal(e.code, CL_ELIMIT);
    assert_null(cl_aa_cc_eventlog(NULL, 0, tiny, CL_AA_MAX_EVENTLOG + 1, &ln, &e));
    assert_int_equal(e.code, CL_ELIMIT);

    /* a fake tree: configfs-tsm, a CCEL table with padding, the AAEL file */
    char dir[] = "/tmp/cl-ccel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char tsm[64], ccel_path[64], aael_path[64];
    snprintf(tsm, sizeof tsm, "%s/tsm", dir);
    snprintf(ccel_path, sizeof ccel_path, "%s/CCEL", dir);
    snprintf(aael_path, sizeof aael_path, "%s/eventlog", dir);
    assert_int_equal(mkdir(tsm, 0700), 0);
    struct fake f = {.provider = "tdx_guest\n"};
    struct cl_aa_platform pl;
    cl_aa_platform_default(&pl);
    pl.tsm_report_dir = tsm;
    pl.tdx_guest_dev = "/nonexistent";
    pl.tsm_hook = fake_hook;
    pl.tsm_hook_ctx = &f;
    pl.ccel_path = ccel_path;
    pl.aael_path = aael_path;
    const struct cl_aa_attester *a = cl_aa_attester_find("tdx");
    uint8_t rd[64] = {0};
    /* neither file: null, as upstream */
    CL_AUTO(json_t) *ev0 = a->evidence(&pl, rd, sizeof rd, &e);
    assert_non_null(ev0);
    assert_true(json_is_null(json_object_get(ev0, "cc_eventlog")));

    uint8_t ccel[512];
    size_t used = 0, cn = fake_ccel(ccel, 100, 4, &used);
    assert_int_equal(cl_file_write_atomic(ccel_path, ccel, cn, 0600, NULL), 0);
    size_t el = 0;
    uint8_t dg[48];
    CL_AUTO(cl_bytes) *entry =
        cl_aa_aael_entry(4, CL_HASH_SHA384, "domain operation content", &el, dg, NULL);
    assert_int_equal(cl_file_write_atomic(aael_path, entry, el, 0600, NULL), 0);
    CL_AUTO(json_t) *ev = a->evidence(&pl, rd, sizeof rd, &e);
    if (!ev)
        fail_msg("%s", e.msg);
    const char *b64 = json_string_value(json_object_get(ev, "cc_eventlog"));
    assert_non_null(b64);
    size_t gn = 0;
    CL_AUTO(cl_bytes) *got = cl_b64_decode(b64, strlen(b64), CL_B64_STD, 1u << 20, &gn, NULL);
    assert_int_equal(gn, used + el + 8); /* the CCEL padding is cut */
    assert_memory_equal(got, ccel, used);
    assert_memory_equal(got + used, entry, el);
    static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(got + used + el, ff, 8);
    /* the key order of upstream's struct */
    assert_string_equal(json_object_iter_key(json_object_iter(ev)), "cc_eventlog");

    /* a CCEL with only its Spec ID event, padded with zeros */
    uint8_t only[512];
    size_t ou = 0;
    (void)fake_ccel(only, 0, 4, &ou);
    memset(only + 65, 0, 40);
    CL_AUTO(cl_bytes) *l2 = cl_aa_cc_eventlog(only, 105, NULL, 0, &ln, &e);
    assert_non_null(l2);
    assert_int_equal(ln, 65 + 8);

    /* an event log too large for one evidence message is refused, not cut */
    CL_AUTO(cl_bytes) *big = calloc(1, 2600000);
    assert_non_null(big);
    assert_int_equal(cl_file_write_atomic(aael_path, big, 2600000, 0600, NULL), 0);
    assert_null(a->evidence(&pl, rd, sizeof rd, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    /* the CCEL alone, then a CCEL that does not parse: the evidence is refused, not sent */
    unlink(aael_path);
    CL_AUTO(json_t) *ev2 = a->evidence(&pl, rd, sizeof rd, &e);
    assert_non_null(ev2);
    const char *b2 = json_string_value(json_object_get(ev2, "cc_eventlog"));
    CL_AUTO(cl_bytes) *g2 = cl_b64_decode(b2, strlen(b2), CL_B64_STD, 1u << 20, &gn, NULL);
    assert_non_null(g2);
    assert_int_equal(gn, used + 8);
    cn = fake_ccel(ccel, 16, 0x7777, &used);
    assert_int_equal(cl_file_write_atomic(ccel_path, ccel, cn, 0600, NULL), 0);
    assert_null(a->evidence(&pl, rd, sizeof rd, &e));
    assert_int_equal(e.code, CL_EPARSE);
    assert_non_null(strstr(e.msg, "CCEL"));
    /* a CCEL that is a folder: an I/O error, named */
    unlink(ccel_path);
    assert_int_equal(mkdir(ccel_path, 0700), 0);
    assert_null(a->evidence(&pl, rd, sizeof rd, &e));
    assert_non_null(strstr(e.msg, "cc_eventlog"));
    rmdir(ccel_path);
    rmdir(tsm);
    rmdir(dir);
}

/* The guest reads its quote back with the verifier's parser (header and body only). */
static void test_tdx_quote_head(void **state)
{
    uint8_t q[48 + 6 + 648] = {0};
    struct cl_tdx_quote qt;
    struct cl_err e = {0};
    assert_int_equal(cl_tdx_quote_parse_head(q, 10, &qt, &e), CL_EPARSE);
    q[2] = 2;
    q[4] = 0x81;
    q[0] = 3; /* SGX v3 carries TEE type 0 */
    assert_int_equal(cl_tdx_quote_parse_head(q, sizeof q, &qt, &e), CL_EPARSE);
    q[0] = 5;
    q[48] = 2; /* v5 body descriptor: TD 1.0, 584 bytes */
    q[50] = 584 & 0xff;
    q[51] = 584 >> 8;
    q[54 + 184] = 0x5c; /* mr_config_id[0] */
    q[54 + 520] = 0xaa; /* report_data[0] */
    assert_int_equal(cl_tdx_quote_parse_head(q, sizeof q, &qt, &e), 0);
    assert_int_equal(qt.body.report_data[0], 0xaa);
    assert_int_equal(qt.body.mr_config_id[0], 0x5c);
    /* tamper twins: a body type that is no TD report, a TEE type that is not TDX, a cut body */
    q[48] = 1;
    assert_int_equal(cl_tdx_quote_parse_head(q, sizeof q, &qt, &e), CL_EPARSE);
    q[48] = 2;
    q[4] = 0x80;
    assert_int_equal(cl_tdx_quote_parse_head(q, sizeof q, &qt, &e), CL_EPARSE);
    q[4] = 0x81;
    q[0] = 4;
    assert_int_equal(cl_tdx_quote_parse_head(q, 48 + 583, &qt, &e), CL_EPARSE);
}

/* The snp evidence: the report parsed by tee/snp, in the sev crate's JSON shape. */
static void test_snp_report_json(void **state)
{
    uint8_t r[CL_SNP_REPORT_SIZE] = {0};
    r[0] = 3;        /* version 3 */
    r[0x08] = 0x30;  /* policy */
    r[0x34] = 1;     /* sig_algo: ECDSA P-384 */
    r[0x50] = 0xaa;  /* report_data[0] */
    r[0xC0] = 0x11;  /* host_data[0] */
    r[0x188] = 0x19; /* Genoa family: no fmc */
    r[0x189] = 0x11;
    r[0x38] = 3;    /* current_tcb.bootloader */
    r[0x3F] = 0xd2; /* current_tcb.microcode */
    r[0x1EA] = 1;   /* current major */
    struct cl_err e = {0};
    struct cl_snp_report rep;
    assert_int_equal(cl_snp_report_parse(r, sizeof r, &rep, &e), 0);
    CL_AUTO(json_t) *ev = cl_snp_evidence_json(&rep, &e);
    assert_non_null(ev);
    assert_true(json_is_null(json_object_get(ev, "cert_chain")));
    json_t *j = json_object_get(ev, "attestation_report");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "policy")), 0x30);
    assert_int_equal(json_array_size(json_object_get(j, "report_data")), 64);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "report_data"), 0)),
                     0xaa);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "host_data"), 0)), 0x11);
    json_t *tcb = json_object_get(j, "current_tcb");
    assert_true(json_is_null(json_object_get(tcb, "fmc")));
    assert_int_equal(json_integer_value(json_object_get(tcb, "bootloader")), 3);
    assert_int_equal(json_integer_value(json_object_get(tcb, "microcode")), 0xd2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "current"), "major")),
                     1);
    assert_null(json_object_get(j, "launch_mit_vector")); /* a version 5 field, as trustee's */
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "signature"), "r")), 72);
    /* first key order as the sev crate serialises */
    const char *first = json_object_iter_key(json_object_iter(j));
    assert_string_equal(first, "version");
    r[0x188] = 0x1A; /* Turin: fmc present */
    r[0x189] = 0x02;
    assert_int_equal(cl_snp_report_parse(r, sizeof r, &rep, &e), 0);
    CL_AUTO(json_t) *t = cl_snp_report_to_json(&rep);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "current_tcb"), "fmc")),
                     3);
    /* tamper twins: one byte short, a signature algorithm that is not ECDSA P-384 */
    assert_int_equal(cl_snp_report_parse(r, sizeof r - 1, &rep, &e), CL_EPARSE);
    r[0x34] = 2;
    assert_int_equal(cl_snp_report_parse(r, sizeof r, &rep, &e), CL_EPARSE);
}

static void test_sample_refused(void **state)
{
    struct cl_aa_config c;
    assert_int_equal(cl_aa_config_parse("", 0, &c, NULL), 0);
    struct cl_aa_opts o = {.cfg = &c};
    cl_aa_platform_default(&o.platform);
    o.platform.tsm_report_dir = "/nonexistent";
    o.platform.tdx_guest_dev = "/nonexistent";
    o.platform.sev_guest_sysfs = "/nonexistent";
    o.platform.tpm_tcti = "none"; /* a machine with a TPM would otherwise pick it */
    struct cl_err e = {0};
    assert_null(cl_aa_new(&o, &e));
    assert_int_equal(e.code, CL_EDENIED);
    assert_non_null(strstr(e.msg, "allow_sample_attester_insecure"));
    cl_aa_config_clear(&c);
    static const char t[] = "allow_sample_attester_insecure = true\n";
    assert_int_equal(cl_aa_config_parse(t, strlen(t), &c, NULL), 0);
    struct cl_aa *aa = cl_aa_new(&o, &e);
    assert_non_null(aa);
    assert_string_equal(cl_aa_tee(aa), "sample");
    CL_AUTO(cl_str) *ev = cl_aa_get_evidence(aa, (const uint8_t *)"hi", 2, &e);
    assert_string_equal(ev, "{\"svn\":\"1\",\"report_data\":\"aGk=\"}");
    assert_null(cl_aa_get_token(aa, "kbs", &e)); /* no KBS configured */
    assert_int_equal(e.code, CL_ENOTFOUND);
    assert_null(cl_aa_get_token(aa, "other", &e));
    enum cl_aa_extend_result r;
    assert_int_equal(cl_aa_extend(aa, "d", "o", "c", -1, &r, &e), 0);
    assert_int_equal(r, CL_AA_EXTEND_NOT_ENABLED);
    assert_int_equal(cl_aa_bind_init_data(aa, (const uint8_t *)"x", 1, &e), CL_EUNSUPPORTED);
    cl_aa_free(aa);
    cl_aa_config_clear(&c);
}

static void test_jwt_times(void **state)
{
    int64_t exp = 0, nbf = 0;
    /* {"alg":"none"}.{"exp":100,"nbf":5}. */
    assert_int_equal(
        cl_kbs_jwt_times("eyJhbGciOiJub25lIn0.eyJleHAiOjEwMCwibmJmIjo1fQ.", &exp, &nbf, NULL), 0);
    assert_int_equal(exp, 100);
    assert_int_equal(nbf, 5);
    assert_int_equal(cl_kbs_jwt_times("nodots", &exp, &nbf, NULL), CL_EPARSE);
    assert_int_not_equal(cl_kbs_jwt_times("a.!!!.b", &exp, &nbf, NULL), 0);
    assert_int_equal(cl_kbs_jwt_times("a.WzFd.b", &exp, &nbf, NULL), CL_EPARSE); /* [1] */
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configs),        cmocka_unit_test(test_aael_vectors),
        cmocka_unit_test(test_event_check),    cmocka_unit_test(test_tdx_fake_configfs),
        cmocka_unit_test(test_tdx_quote_head), cmocka_unit_test(test_snp_report_json),
        cmocka_unit_test(test_sample_refused), cmocka_unit_test(test_jwt_times),
        cmocka_unit_test(test_cc_eventlog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
