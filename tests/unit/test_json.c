/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/json: bounded parsing, typed getters, RFC 8785 canonical JSON (with the
 * KBS protocol's worked vectors from trustee's brief), JSON pointers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <string.h>

#include "json/json.h"

static void jcs_eq(const char *in, const char *want)
{
    struct cl_err e = {0};
    CL_AUTO(json_t) *v = cl_json_parse(in, strlen(in), 64, &e);
    assert_non_null(v);
    size_t n = 0;
    CL_AUTO(cl_str) *c = cl_json_canonical(v, &n, &e);
    assert_non_null(c);
    if (strcmp(c, want) != 0)
        fail_msg("JCS of %s: got %s want %s", in, c, want);
    assert_int_equal(n, strlen(want));
}

static void test_jcs_basic(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"b\":1,\"a\":\"test\",\"c\":{\"d\":\"e\"}}",
         "{\"a\":\"test\",\"b\":1,\"c\":{\"d\":\"e\"}}"},
        {"[ 1 , true , null , false ]", "[1,true,null,false]"},
        {"\"\\u00e9\\u20ac\\n\\u001f\\\"\\\\/\"", "\"\xc3\xa9\xe2\x82\xac\\n\\u001f\\\"\\\\/\""},
        {"{\"\\u20ac\":1,\"\\ud83d\\ude00\":2,\"\\ufb33\":3}", /* UTF-16 order: U+1F600 < U+FB33 */
         "{\"\xe2\x82\xac\":1,\"\xf0\x9f\x98\x80\":2,\"\xef\xac\xb3\":3}"},
        {"[1.0, 1e21, 1e20, 0.000001, 1e-7, -0.0, 123.456, 1.5e300, 4.5]",
         "[1,1e+21,100000000000000000000,0.000001,1e-7,0,123.456,1.5e+300,4.5]"},
        {"\"\\u007f\"", "\"\x7f\""},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++)
        jcs_eq(cases[i].in, cases[i].want);
}

static void sha384_hex(const char *s, char out[97])
{
    uint8_t md[48];
    unsigned n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha384(), NULL), 1);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The worked vectors of specs/trustee.md §2.4 (computed with JCS + SHA-384). */
static void test_jcs_kbs_vectors(void **state)
{
    (void)state;
    char hex[97];
    struct cl_err e = {0};
    const char *ta = "{\"b\":1,\"a\":\"test\",\"c\":{\"d\":\"e\"}}";
    CL_AUTO(json_t) *a = cl_json_parse(ta, strlen(ta), 8, &e);
    assert_non_null(a);
    CL_AUTO(cl_str) *ca = cl_json_canonical(a, NULL, &e);
    sha384_hex(ca, hex);
    assert_string_equal(hex, "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c45974"
                             "80a186427c813ca941da78870c3");
    const char *rd = "{\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\","
                     "\"x\":\"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis\","
                     "\"y\":\"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE\"},"
                     "\"nonce\":\"kNa9Ux0+DBeexBnWqNSsTA==\",\"additional-evidence\":\"\"}";
    CL_AUTO(json_t) *r = cl_json_parse(rd, strlen(rd), 8, &e);
    CL_AUTO(cl_str) *cr = cl_json_canonical(r, NULL, &e);
    assert_string_equal(
        cr, "{\"additional-evidence\":\"\",\"nonce\":\"kNa9Ux0+DBeexBnWqNSsTA==\",\"tee-pubkey\":"
            "{\"alg\":\"ECDH-ES+A256KW\",\"crv\":\"P-256\",\"kty\":\"EC\","
            "\"x\":\"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis\","
            "\"y\":\"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE\"}}");
    sha384_hex(cr, hex);
    assert_string_equal(hex, "5aa90e08b2c14e8c443e8f0722f3489c6a1f9e19b9d762b19061134f5feae4c04a5c0"
                             "074835f6b68b3176176ab5bf8e1");
    json_object_del(r, "additional-evidence");
    CL_AUTO(cl_str) *cd = cl_json_canonical(r, NULL, &e);
    sha384_hex(cd, hex);
    assert_string_equal(hex, "24a3b2cef8a8245b0e92d06f49a7afae10f844c1c383451b516b9de469d900d4af4b4"
                             "dae0b3886c3ceaa51032d6084a3");
}

/* cl_json_compact against jansson's own JSON_COMPACT output (its peer: the same bytes). */
static void compact_same(const json_t *v)
{
    CL_AUTO(cl_str) *ours = cl_json_compact(v);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(ours);
    assert_non_null(theirs);
    if (strcmp(ours, theirs) != 0)
        fail_msg("cl_json_compact: %s\njansson:         %s", ours, theirs);
    free(theirs);
}

static void test_compact_as_jansson(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"b\":1,\"a\":\"test\",\"c\":{\"d\":\"e\"},\"z\":[],\"y\":{}}",
        "[null,true,false,0,-1,9223372036854775807,-9223372036854775808]",
        "[0.1,1e20,1.5e-7,-0.0,123456789.123,1e300,2.5,100.0,-1e-300,5e-324]",
        "{\"\\u00e9t\\u00e9\":\"\\u65e5\\u672c\\ud83d\\ude00\",\"k\\\"\\\\\":\"/\\/\"}",
        "\"plain\"",
        "12",
        "[[[[[]]]],{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}]",
    };
    struct cl_err e = {0};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        CL_AUTO(json_t) *v = cl_json_parse(docs[i], strlen(docs[i]), 64, &e);
        if (!v)
            fail_msg("%s: %s", docs[i], e.msg);
        compact_same(v);
    }
    /* every ASCII byte in a string and as a key, insertion order unlike sorted order */
    char all[128];
    for (int c = 1; c < 128; c++)
        all[c - 1] = (char)c;
    all[127] = 0;
    CL_AUTO(json_t) *o = json_object();
    json_object_set_new(o, "zeta", json_string(all));
    json_object_set_new(o, all, json_integer(1));
    json_object_set_new(o, "alpha", json_stringn("nul\0inside", 10));
    json_object_set_new(o, "", json_real(3.0));
    compact_same(o);
    /* the failures jansson has, it has too: invalid UTF-8 */
    CL_AUTO(json_t) *bad = json_stringn_nocheck("\xff\xfe", 2);
    assert_null(cl_json_compact(bad));
}

static void test_parse_limits(void **state)
{
    (void)state;
    struct cl_err e = {0};
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_null(cl_json_parse(deep, sizeof deep, 64, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    CL_AUTO(json_t) *ok = cl_json_parse(deep + 40, 120, 64, &e); /* depth 60 */
    assert_non_null(ok);
    /* brackets inside strings do not count */
    const char *s = "[\"[[[[[[[[[[[[[[[[[[[[\"]";
    CL_AUTO(json_t) *v = cl_json_parse(s, strlen(s), 2, &e);
    assert_non_null(v);
    static const char *const bad[] = {"",    "{",         "{\"a\":1,\"a\":2}", "[1,]",
                                      "nul", "{\"a\" 1}", "\"\\ud800\""};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        assert_null(cl_json_parse(bad[i], strlen(bad[i]), 8, &e));
        assert_int_equal(e.code, CL_EPARSE);
    }
}

static void test_getters(void **state)
{
    (void)state;
    struct cl_err e = {0};
    const char *t = "{\"s\":\"x\",\"i\":3,\"b\":true,\"o\":{},\"a\":[]}";
    CL_AUTO(json_t) *v = cl_json_parse(t, strlen(t), 8, &e);
    const char *s;
    json_int_t i;
    bool b;
    json_t *o;
    assert_int_equal(cl_json_get_str(v, "s", &s, &e), 0);
    assert_int_equal(cl_json_get_int(v, "i", &i, &e), 0);
    assert_int_equal(cl_json_get_bool(v, "b", &b, &e), 0);
    assert_int_equal(cl_json_get_obj(v, "o", &o, &e), 0);
    assert_int_equal(cl_json_get_arr(v, "a", &o, &e), 0);
    assert_int_equal(cl_json_get_str(v, "i", &s, &e), CL_EPARSE);
    assert_non_null(strstr(e.msg, "'i'"));
    assert_int_equal(cl_json_get_str(v, "zz", &s, &e), CL_ENOTFOUND);
    assert_non_null(strstr(e.msg, "'zz'"));
    assert_int_equal(cl_json_opt_str(v, "zz", &s, &e), 0);
    assert_null(s);
}

static void test_pointer(void **state)
{
    (void)state;
    struct cl_err e = {0};
    const char *t = "{\"a\":{\"b/c\":[10,{\"~d\":5}]}}";
    CL_AUTO(json_t) *v = cl_json_parse(t, strlen(t), 8, &e);
    assert_int_equal(json_integer_value(cl_json_pointer(v, "/a/b~1c/0")), 10);
    assert_int_equal(json_integer_value(cl_json_pointer(v, "/a/b~1c/1/~0d")), 5);
    assert_null(cl_json_pointer(v, "/a/b~1c/2"));
    assert_null(cl_json_pointer(v, "/a/b~1c/01"));
    assert_null(cl_json_pointer(v, "a"));
    assert_ptr_equal(cl_json_pointer(v, ""), v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jcs_basic),    cmocka_unit_test(test_jcs_kbs_vectors),
        cmocka_unit_test(test_parse_limits), cmocka_unit_test(test_getters),
        cmocka_unit_test(test_pointer),      cmocka_unit_test(test_compact_as_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
