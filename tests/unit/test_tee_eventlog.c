/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event logs: every CCEL vector of trustee parsed into exactly the JSON trustee expects
 * (*_out.json), every replay value of its README (RTMR0..3 from CC-MR 1..4, SHA-384), a
 * changed last byte refused, the Attestation Agent's runtime events (AAEL) decoded, and the
 * parser's rejections (truncations, unknown types and algorithms, limits) one by one.
 */
#include "tee_test.h"

#include "tee/eventlog/eventlog.h"

#define EL "deps/eventlog/test_data/"

static void test_golden_json(void **state)
{
    (void)state;
    static const char *const logs[] = {
        "CCEL_data",          "CCEL_data_ovmf",         "CCEL_data_grub",
        "CCEL_data_grub_gke", "CCEL_AAEL_alibabacloud", "CCEL_data_csv",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(logs); i++) {
        char in[128], out[128];
        snprintf(in, sizeof in, EL "%s", logs[i]);
        snprintf(out, sizeof out, EL "%s_out.json", logs[i]);
        size_t n = 0;
        CL_AUTO(cl_bytes) *buf = tt_read(in, &n);
        struct cl_eventlog log;
        struct cl_err e = {0};
        if (cl_eventlog_parse(buf, n, &log, &e) != 0)
            fail_msg("%s: %s", logs[i], e.msg);
        CL_AUTO(json_t) *got = cl_eventlog_to_json(&log, &e);
        if (!got)
            fail_msg("%s: %s", logs[i], e.msg);
        CL_AUTO(json_t) *want = tt_json(out);
        json_t *wl = json_object_get(want, "uefi_event_logs");
        if (json_array_size(got) != json_array_size(wl))
            fail_msg("%s: %zu events, want %zu", logs[i], json_array_size(got),
                     json_array_size(wl));
        for (size_t k = 0; k < json_array_size(wl); k++) {
            if (!json_equal(json_array_get(got, k), json_array_get(wl, k))) {
                CL_AUTO(cl_str) *a = cl_json_compact(json_array_get(got, k));
                CL_AUTO(cl_str) *b = cl_json_compact(json_array_get(wl, k));
                fail_msg("%s event %zu differs:\n got  %.1500s\n want %.1500s", logs[i], k, a, b);
            }
        }
        cl_eventlog_clear(&log);
    }
}

static void test_replay(void **state)
{
    (void)state;
    static const struct {
        const char *log;
        const char *mr[4];
    } cases[] = {
        {"CCEL_data",
         {"2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8"
          "213543f4",
          "0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fe"
          "c28cd3cf",
          NULL, NULL}},
        {"CCEL_data_ovmf",
         {"8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc"
          "90abe193",
          "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc"
          "210c13c6",
          "94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503b"
          "bf25f34a",
          NULL}},
        {"CCEL_data_grub",
         {"cec0a104f691f60da2387fea3c2de00c4ac035e2bb479ff02edcce69039d9e9907f0b3e55031da3dc7038f42"
          "3adebd79",
          "6c289e0c62182d41ebe97bdbc9872d10998a08eaa86adcdc684001a363207ee72942c7522cdf00a4bbc3d784"
          "bed7b670",
          "08919d017ba0e52cd6d966351c7de16fe76c1d3d3d3da4554239e4c7d16cb8b82a94e7eaea3a0e6e18eb690b"
          "999fd31e",
          NULL}},
        {"CCEL_data_gcp",
         {"3300980705adf09d28b707b79699d9874892164280832be2c386a715b6e204e0897fb564a064f810659207ba"
          "862b304f",
          "204d49f78d29918fe7b2f694e76653861a0c2a018987d2c3a54266eff737232524cf0af68c4d180e2f8c2c09"
          "37f21967",
          NULL, NULL}},
        {"CCEL_data_grub_gke",
         {"bc9945139042cf2cc75caf920aa57f14884ecfd7e893bccc51250c8ce90eb53ce72741e6adaa18183eb1331a"
          "87d4544a",
          "c17cb288a4dee302bb9ed8d27257a168f3264ad68cab53757f37eeaa7039657fa887cad65cf910e0fdc435ff"
          "110f8a7b",
          "334aeba2c985f8886cea97d1ecffbd512769d528b9a94009583db667ad7d2faa7d37fa145d75b192ceee2d2f"
          "10b2eb6d",
          NULL}},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        char in[128];
        snprintf(in, sizeof in, EL "%s", cases[i].log);
        size_t n = 0;
        CL_AUTO(cl_bytes) *buf = tt_read(in, &n);
        struct cl_eventlog log;
        struct cl_err e = {0};
        if (cl_eventlog_parse(buf, n, &log, &e) != 0)
            fail_msg("%s: %s", cases[i].log, e.msg);
        for (uint32_t k = 0; k < 4; k++) {
            uint8_t got[64], want[48] = {0};
            size_t gl = 0;
            assert_int_equal(cl_eventlog_replay(&log, k + 1, CL_TCG_ALG_SHA384, got, &gl, &e), 0);
            assert_int_equal(gl, 48);
            if (cases[i].mr[k])
                tt_unhex(cases[i].mr[k], want, sizeof want);
            if (memcmp(got, want, 48) != 0) {
                CL_AUTO(cl_str) *h = cl_hex_encode(got, 48);
                fail_msg("%s RTMR%u: got %s", cases[i].log, k, h);
            }
            /* a changed last byte of the reference never matches */
            want[47] ^= 1;
            assert_memory_not_equal(got, want, 48);
        }
        cl_eventlog_clear(&log);
    }
}

static void test_aael(void **state)
{
    (void)state;
    size_t n = 0;
    CL_AUTO(cl_bytes) *buf = tt_read(EL "CCEL_AAEL_alibabacloud", &n);
    struct cl_eventlog log;
    struct cl_err e = {0};
    assert_int_equal(cl_eventlog_parse(buf, n, &log, &e), 0);
    size_t found = 0;
    for (size_t i = 0; i < log.n; i++) {
        if (log.events[i].type != CL_TCG_EV_EVENT_TAG)
            continue;
        CL_AUTO(json_t) *d = cl_eventlog_details(&log.events[i], &e);
        assert_non_null(d);
        if (json_object_get(d, "unicode_name")) {
            assert_string_equal(json_string_value(json_object_get(d, "unicode_name")), "AAEL");
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(d, "data"), "domain")),
                "coco.com");
            found++;
        }
    }
    assert_true(found >= 2);
    cl_eventlog_clear(&log);
}

/* A tiny log: Spec ID event (SHA-384) + events built by hand. */
static size_t put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 4;
}

static size_t spec_id(uint8_t *b, uint16_t alg, uint16_t len)
{
    size_t o = 0;
    o += put32(b + o, 0);
    o += put32(b + o, CL_TCG_EV_NO_ACTION);
    memset(b + o, 0, 20);
    o += 20;
    o += put32(b + o, 24 + 4 + 4 + 1);
    memcpy(b + o, "Spec ID Event03\0", 16);
    memset(b + o + 16, 0, 8);
    o += 24;
    o += put32(b + o, 1);
    b[o++] = (uint8_t)alg;
    b[o++] = (uint8_t)(alg >> 8);
    b[o++] = (uint8_t)len;
    b[o++] = (uint8_t)(len >> 8);
    b[o++] = 0;
    return o;
}

static size_t event(uint8_t *b, uint32_t idx, uint32_t type, uint16_t alg, size_t dlen,
                    const void *data, size_t n)
{
    size_t o = 0;
    o += put32(b + o, idx);
    o += put32(b + o, type);
    o += put32(b + o, 1);
    b[o++] = (uint8_t)alg;
    b[o++] = (uint8_t)(alg >> 8);
    memset(b + o, 0x11, dlen);
    o += dlen;
    o += put32(b + o, (uint32_t)n);
    memcpy(b + o, data, n);
    return o + n;
}

static void test_rejects(void **state)
{
    (void)state;
    uint8_t b[512];
    struct cl_eventlog log;
    struct cl_err e = {0};
    size_t o = spec_id(b, CL_TCG_ALG_SHA384, 48);
    size_t base = o;
    o += event(b + o, 1, 0x80000007, CL_TCG_ALG_SHA384, 48, "hello", 5);
    assert_int_equal(cl_eventlog_parse(b, o, &log, &e), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.events[0].data_len, 5);
    cl_eventlog_clear(&log);
    /* padding ends the log */
    memset(b + o, 0xff, 16);
    assert_int_equal(cl_eventlog_parse(b, o + 16, &log, &e), 0);
    assert_int_equal(log.n, 1);
    cl_eventlog_clear(&log);

    static const struct {
        const char *name;
        uint32_t type;
        uint16_t alg;
        size_t cut; /* bytes removed from the end */
    } bad[] = {
        {"unknown event type", 0x7777, CL_TCG_ALG_SHA384, 0},
        {"undeclared algorithm", 0x80000007, CL_TCG_ALG_SHA256, 0},
        {"truncated data", 0x80000007, CL_TCG_ALG_SHA384, 2},
        {"truncated digest", 0x80000007, CL_TCG_ALG_SHA384, 30},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        size_t m = base + event(b + base, 1, bad[i].type, bad[i].alg, 48, "hello", 5) - bad[i].cut;
        int rc = cl_eventlog_parse(b, m, &log, &e);
        if (rc != CL_EPARSE || strcmp(e.stage, CL_TEE_STAGE_EVENTLOG) != 0)
            fail_msg("%s: rc %d", bad[i].name, rc);
    }
    /* the Spec ID event itself */
    assert_int_equal(cl_eventlog_parse(b, 10, &log, &e), CL_EPARSE);
    uint8_t s2[128];
    size_t sl = spec_id(s2, 0x99, 48);
    assert_int_equal(cl_eventlog_parse(s2, sl, &log, &e), CL_EPARSE);
    sl = spec_id(s2, CL_TCG_ALG_SHA384, 65);
    assert_int_equal(cl_eventlog_parse(s2, sl, &log, &e), CL_EPARSE);
    sl = spec_id(s2, CL_TCG_ALG_SHA384, 48);
    s2[4] = 1; /* first event not EV_NO_ACTION */
    assert_int_equal(cl_eventlog_parse(s2, sl, &log, &e), CL_EPARSE);

    /* details that do not have their type's structure fail the JSON view */
    static const struct {
        uint32_t type;
        const char *data;
        size_t n;
    } bad_details[] = {
        {0x80000007, "\xff\xfe", 2}, /* EV_EFI_ACTION not UTF-8 */
        {0x8000000a,
         "\x09"
         "abc",
         4},                                           /* blob description overruns */
        {0x8000000b, "", 0},                           /* no description size */
        {0x6, "\x01\x00\x00\x00\x09\x00\x00\x00x", 9}, /* tagged event overruns */
        {0xd, "x", 1},                                 /* EV_IPL too short */
        {0x80000001, "0123456789abcdef\x05", 17},      /* variable truncated */
        {0x80000003, "short", 5},                      /* image load event too short */
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad_details); i++) {
        size_t m = base + event(b + base, 1, bad_details[i].type, CL_TCG_ALG_SHA384, 48,
                                bad_details[i].data, bad_details[i].n);
        assert_int_equal(cl_eventlog_parse(b, m, &log, &e), 0);
        json_t *j = cl_eventlog_to_json(&log, &e);
        if (j || e.code != CL_EPARSE)
            fail_msg("details case %zu: want EPARSE, got %s", i,
                     j ? "success" : cl_err_name(e.code));
        cl_eventlog_clear(&log);
    }
    /* replay with an algorithm that is not supported */
    uint8_t out[64];
    size_t ol = 0;
    struct cl_eventlog empty = {0};
    assert_int_equal(cl_eventlog_replay(&empty, 1, 0x99, out, &ol, &e), CL_EUNSUPPORTED);
    assert_int_equal(cl_eventlog_replay(&empty, 1, CL_TCG_ALG_SHA256, out, &ol, &e), 0);
    assert_int_equal(ol, 32);
}

int main(void)
{
    tt_require_vectors();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_json),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_aael),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
