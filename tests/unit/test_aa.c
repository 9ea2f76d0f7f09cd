/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation agent: aa.toml (upstream's example and edge-case configs, one case per
 * rejection), AAEL entries against the generated vectors, the tdx attester against a fake
 * configfs-tsm tree that this test builds (the hook plays the kernel), the snp report JSON
 * shape, and the agent refusing the sample attester unless configured _insecure.
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
        static const char *const files[] = {"config.example.toml", "config.example.json", "test/config1.toml",
                                            "test/config2.toml",   "test/config4.toml",   "test/config5.toml",
                                            "test/config6.toml"};
        for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
            char p[600];
            snprintf(p, sizeof p, "%s/guest-components/attestation-agent/attestation-agent/%s", v, files[i]);
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
        {"x = [", "aa config"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err e = {0};
        if (cl_aa_config_parse(bad[i].text, strlen(bad[i].text), &c, &e) == 0 || !strstr(e.msg, bad[i].msg))
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
        assert_int_equal(cl_hash_from_name(json_string_value(json_object_get(c, "hash")), &h, NULL), 0);
        CL_AUTO(cl_str) *text = cl_strdupf("%s %s %s", json_string_value(json_object_get(c, "domain")),
                                           json_string_value(json_object_get(c, "operation")),
                                           json_string_value(json_object_get(c, "content")));
        uint8_t dg[CL_HASH_MAX];
        size_t el = 0;
        CL_AUTO(cl_bytes) *entry = cl_aa_aael_entry(
            (unsigned)json_integer_value(json_object_get(c, "target_measurement_register")), h, text, &el, dg, NULL);
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
        q[0] = 4; /* quote v4 */
        memcpy(q + 48 + 184, f->mrconfigid, 48);
        memcpy(q + 48 + 520, in, 64);
        char gen[16];
        snprintf(gen, sizeof gen, "%d\n", 1 + f->generation_bump);
        f->calls++;
        return write_file(entry, "outblob", q, sizeof q) | write_file(entry, "generation", gen, strlen(gen));
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
    const uint8_t *qrd = NULL, *mrc = NULL;
    assert_int_equal(cl_aa_tdx_quote_fields(q, ql, &qrd, &mrc, NULL), 0);
    assert_memory_equal(qrd, rd, 48);
    assert_int_equal(qrd[48], 0); /* zero-padded to 64 */
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

static void test_tdx_quote_fields(void **state)
{
    uint8_t q[48 + 6 + 584] = {0};
    const uint8_t *rd = NULL, *mrc = NULL;
    struct cl_err e = {0};
    assert_int_equal(cl_aa_tdx_quote_fields(q, 10, &rd, &mrc, &e), CL_EPARSE);
    q[0] = 3;
    assert_int_equal(cl_aa_tdx_quote_fields(q, sizeof q, &rd, &mrc, &e), CL_EPARSE);
    q[0] = 5;
    q[48] = 2;
    assert_int_equal(cl_aa_tdx_quote_fields(q, sizeof q, &rd, &mrc, &e), 0);
    assert_ptr_equal(rd, q + 54 + 520);
    q[48] = 1;
    assert_int_equal(cl_aa_tdx_quote_fields(q, sizeof q, &rd, &mrc, &e), CL_EPARSE);
    q[0] = 4;
    assert_int_equal(cl_aa_tdx_quote_fields(q, 48 + 583, &rd, &mrc, &e), CL_EPARSE);
}

static void test_snp_report_json(void **state)
{
    uint8_t r[CL_AA_SNP_REPORT_LEN] = {0};
    r[0] = 3;          /* version 3 */
    r[0x08] = 0x30;    /* policy */
    r[0x50] = 0xaa;    /* report_data[0] */
    r[0xC0] = 0x11;    /* host_data[0] */
    r[0x188] = 0x19;   /* Genoa family: no fmc */
    r[0x38] = 3;       /* current_tcb.bootloader */
    r[0x3F] = 0xd2;    /* current_tcb.microcode */
    r[0x1EA] = 1;      /* current major */
    struct cl_err e = {0};
    CL_AUTO(json_t) *j = cl_aa_snp_report_json(r, sizeof r, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "policy")), 0x30);
    assert_int_equal(json_array_size(json_object_get(j, "report_data")), 64);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "report_data"), 0)), 0xaa);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "host_data"), 0)), 0x11);
    json_t *tcb = json_object_get(j, "current_tcb");
    assert_true(json_is_null(json_object_get(tcb, "fmc")));
    assert_int_equal(json_integer_value(json_object_get(tcb, "bootloader")), 3);
    assert_int_equal(json_integer_value(json_object_get(tcb, "microcode")), 0xd2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "current"), "major")), 1);
    assert_true(json_is_null(json_object_get(j, "launch_mit_vector")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "signature"), "r")), 72);
    /* first key order as the sev crate serialises */
    const char *first = json_object_iter_key(json_object_iter(j));
    assert_string_equal(first, "version");
    r[0x188] = 0x1A; /* Turin: fmc present */
    CL_AUTO(json_t) *t = cl_aa_snp_report_json(r, sizeof r, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "current_tcb"), "fmc")), 3);
    assert_null(cl_aa_snp_report_json(r, sizeof r - 1, &e));
    assert_int_equal(e.code, CL_EPARSE);
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
    assert_int_equal(cl_aa_jwt_times("eyJhbGciOiJub25lIn0.eyJleHAiOjEwMCwibmJmIjo1fQ.", &exp, &nbf, NULL), 0);
    assert_int_equal(exp, 100);
    assert_int_equal(nbf, 5);
    assert_int_equal(cl_aa_jwt_times("nodots", &exp, &nbf, NULL), CL_EPARSE);
    assert_int_not_equal(cl_aa_jwt_times("a.!!!.b", &exp, &nbf, NULL), 0);
    assert_int_equal(cl_aa_jwt_times("a.WzFd.b", &exp, &nbf, NULL), CL_EPARSE); /* [1] */
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configs),         cmocka_unit_test(test_aael_vectors),
        cmocka_unit_test(test_event_check),     cmocka_unit_test(test_tdx_fake_configfs),
        cmocka_unit_test(test_tdx_quote_fields), cmocka_unit_test(test_snp_report_json),
        cmocka_unit_test(test_sample_refused),  cmocka_unit_test(test_jwt_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
