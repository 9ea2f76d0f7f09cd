/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Init-data: the generated vectors (digests over the exact bytes, the kata annotation value,
 * the block-device image) and one case per rejection: version, algorithm, data types, size,
 * gzip bombs and truncated images.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aa/aa.h"

static char g_vec[512];

static bool vectors(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    if (!v)
        return false;
    snprintf(g_vec, sizeof g_vec, "%s/guest-components/generated/initdata", v);
    char p[600];
    snprintf(p, sizeof p, "%s/digests.json", g_vec);
    FILE *f = fopen(p, "r");
    if (!f)
        return false;
    fclose(f);
    return true;
}

static cl_bytes *vfile(const char *name, size_t *n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", g_vec, name);
    cl_bytes *b = cl_file_read(p, 1u << 20, n, NULL);
    assert_non_null(b);
    return b;
}

static void test_vectors(void **state)
{
    if (!vectors())
        skip();
    size_t n = 0, dn = 0;
    CL_AUTO(cl_bytes) *toml = vfile("initdata.toml", &n);
    CL_AUTO(cl_bytes) *dj = vfile("digests.json", &dn);
    CL_AUTO(json_t) *d = cl_json_parse((const char *)dj, dn, 8, NULL);
    assert_non_null(d);
    struct cl_aa_initdata id;
    assert_int_equal(cl_aa_initdata_parse((const char *)toml, n, &id, NULL), 0);
    assert_int_equal(id.alg, CL_HASH_SHA384);
    CL_AUTO(cl_str) *hex = cl_hex_encode(id.digest, id.digest_len);
    assert_string_equal(hex, json_string_value(json_object_get(d, "sha384_hex")));
    assert_non_null(json_object_get(id.data, "aa.toml"));
    cl_aa_initdata_clear(&id);
    /* the annotation: decode upstream's value, and round-trip ours */
    const char *ann = json_string_value(json_object_get(d, "kata_annotation_value"));
    size_t on = 0;
    CL_AUTO(cl_bytes) *out = cl_aa_initdata_annotation_decode(ann, strlen(ann), &on, NULL);
    assert_non_null(out);
    assert_int_equal(on, n);
    assert_memory_equal(out, toml, n);
    CL_AUTO(cl_str) *mine = cl_aa_initdata_annotation_encode(toml, n, NULL);
    CL_AUTO(cl_bytes) *back = cl_aa_initdata_annotation_decode(mine, strlen(mine), &on, NULL);
    assert_int_equal(on, n);
    assert_memory_equal(back, toml, n);
    /* the image */
    size_t in = 0;
    CL_AUTO(cl_bytes) *img = vfile("initdata.img", &in);
    CL_AUTO(cl_bytes) *fromimg = cl_aa_initdata_image_decode(img, in, &on, NULL);
    assert_non_null(fromimg);
    assert_int_equal(on, n);
    assert_memory_equal(fromimg, toml, n);
}

static void test_roundtrip_image(void **state)
{
    static const char t[] = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"a\" = \"b\"\n";
    size_t in = 0, on = 0;
    CL_AUTO(cl_bytes) *img = cl_aa_initdata_image_encode(t, strlen(t), &in, NULL);
    assert_non_null(img);
    assert_memory_equal(img, "initdata", 8);
    /* sector padding after the stream is ignored */
    cl_bytes *padded = calloc(1, in + 512);
    memcpy(padded, img, in);
    CL_AUTO(cl_bytes) *out = cl_aa_initdata_image_decode(padded, in + 512, &on, NULL);
    free(padded);
    assert_non_null(out);
    assert_int_equal(on, strlen(t));
    assert_memory_equal(out, t, on);
    struct cl_aa_initdata id;
    assert_int_equal(cl_aa_initdata_parse(t, strlen(t), &id, NULL), 0);
    assert_int_equal(id.digest_len, 32);
    cl_aa_initdata_clear(&id);
}

static void test_parse_rejects(void **state)
{
    static const struct {
        const char *text;
        int code;
        const char *msg;
    } cases[] = {
        {"algorithm = \"sha384\"\n", CL_ENOTFOUND, "version"},
        {"version = \"0.1.0\"\n", CL_ENOTFOUND, "algorithm"},
        {"version = \"0.2.0\"\nalgorithm = \"sha384\"\n", CL_EPARSE, "0.1.0"},
        {"version = \"0.1.0\"\nalgorithm = \"md5\"\n", CL_EUNSUPPORTED, "md5"},
        {"version = \"0.1.0\"\nalgorithm = \"sha384\"\ndata = 3\n", CL_EPARSE, "table"},
        {"version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\nx = 1\n", CL_EPARSE, "string"},
        {"version = 1\nalgorithm = \"sha384\"\n", CL_EPARSE, "version"},
        {"not toml at all [", CL_EPARSE, "init-data"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_aa_initdata id;
        struct cl_err e = {0};
        int rc = cl_aa_initdata_parse(cases[i].text, strlen(cases[i].text), &id, &e);
        if (rc != cases[i].code || !strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: rc %d msg '%s'", i, rc, e.msg);
    }
    char *big = malloc(CL_AA_INITDATA_MAX + 2);
    memset(big, '#', CL_AA_INITDATA_MAX + 1);
    struct cl_aa_initdata id;
    assert_int_equal(cl_aa_initdata_parse(big, CL_AA_INITDATA_MAX + 1, &id, NULL), CL_ELIMIT);
    free(big);
}

static void test_decode_rejects(void **state)
{
    struct cl_err e = {0};
    size_t n = 0;
    assert_null(cl_aa_initdata_annotation_decode("!!!", 3, &n, &e));
    assert_int_equal(e.code, CL_EPARSE);
    assert_null(cl_aa_initdata_annotation_decode("aGVsbG8=", 8, &n, &e)); /* not gzip */
    assert_int_equal(e.code, CL_EPARSE);
    /* the encoders refuse text beyond the cap */
    char *zeros = calloc(1, 1u << 20);
    size_t in = 0;
    assert_null(cl_aa_initdata_image_encode(zeros, 1u << 20, &in, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    free(zeros);
    /* images */
    static const uint8_t nomagic[] = "initdatX\x05\0\0\0\0\0\0\0abcde";
    assert_null(cl_aa_initdata_image_decode(nomagic, sizeof nomagic - 1, &n, &e));
    assert_int_equal(e.code, CL_EPARSE);
    static const uint8_t shortlen[] = "initdata\x05\0\0";
    assert_null(cl_aa_initdata_image_decode(shortlen, sizeof shortlen - 1, &n, &e));
    assert_int_equal(e.code, CL_EPARSE);
    static const uint8_t toolong[] = "initdata\xff\xff\xff\xff\0\0\0\0abc";
    assert_null(cl_aa_initdata_image_decode(toolong, sizeof toolong - 1, &n, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    static const uint8_t beyond[] = "initdata\x50\0\0\0\0\0\0\0abc";
    assert_null(cl_aa_initdata_image_decode(beyond, sizeof beyond - 1, &n, &e));
    assert_int_equal(e.code, CL_EPARSE);
    assert_non_null(strstr(e.msg, "beyond"));
}

/* A real gzip bomb made with zlib: inflating must stop at the cap with ELIMIT. */
#include <zlib.h>
static void test_gzip_bomb(void **state)
{
    size_t raw = 4u << 20;
    uint8_t *zeros = calloc(1, raw);
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uLong cap = deflateBound(&z, (uLong)raw);
    uint8_t *gz = malloc(cap);
    z.next_in = zeros;
    z.avail_in = (uInt)raw;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gzlen = z.total_out;
    deflateEnd(&z);
    CL_AUTO(cl_str) *b64 = cl_b64_encode(gz, gzlen, CL_B64_STD);
    struct cl_err e = {0};
    size_t n = 0;
    assert_null(cl_aa_initdata_annotation_decode(b64, strlen(b64), &n, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    free(zeros);
    free(gz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),       cmocka_unit_test(test_roundtrip_image),
        cmocka_unit_test(test_parse_rejects), cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_gzip_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
