/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image basics: digests, references, manifests and indexes, platform selection, configs,
 * registries.conf, decompression (gzip members, zstd frames, bombs, truncation). Tables of
 * accepted and refused inputs, one refusal per branch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_image_util.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- digests ---- */

static void test_digest(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
    } cases[] = {
        {"sha256:" H64, 0},
        {"sha512:" H64 H64, 0},
        {"sha256:" H64 "00", CL_EPARSE}, /* too long */
        {"sha256:0123", CL_EPARSE},      /* too short */
        {"sha256:"
         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
         CL_EPARSE}, /* upper */
        {"sha256:"
         "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         CL_EPARSE},
        {"md5:" H64, CL_EPARSE},
        {"sha256" H64, CL_EPARSE}, /* no colon */
        {"", CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_digest d;
        struct cl_err e = {0};
        int rc = cl_image_digest_parse(cases[i].in, &d, "t", &e);
        if (rc != cases[i].rc)
            fail_msg("digest '%s': %d (%s)", cases[i].in, rc, e.msg);
        if (rc == 0) {
            assert_string_equal(d.str, cases[i].in);
            assert_string_equal(d.hex, strchr(cases[i].in, ':') + 1);
            struct cl_image_digest copy = d; /* copies stay valid */
            assert_true(cl_image_digest_eq(&copy, &d));
        }
    }
    struct cl_image_digest a, b;
    assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, "abc", 3, &a, NULL), 0);
    assert_string_equal(a.str,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(cl_image_digest_parse(a.str, &b, NULL, NULL), 0);
    assert_true(cl_image_digest_eq(&a, &b));
    assert_int_equal(cl_image_digest_parse(NULL, &b, NULL, NULL), CL_EPARSE);
}

/* ---- references ---- */

static void test_refs(void **state)
{
    (void)state;
    static const struct {
        const char *in, *registry, *repo, *tag, *digest;
    } ok[] = {
        {"busybox", "docker.io", "library/busybox", "latest", NULL},
        {"busybox:1.36", "docker.io", "library/busybox", "1.36", NULL},
        {"library/busybox", "docker.io", "library/busybox", "latest", NULL},
        {"me/app", "docker.io", "me/app", "latest", NULL},
        {"docker.io/busybox", "docker.io", "library/busybox", "latest", NULL},
        {"index.docker.io/me/app:v", "docker.io", "me/app", "v", NULL},
        {"quay.io/ns/img", "quay.io", "ns/img", "latest", NULL},
        {"127.0.0.1:5000/demo/hello:latest", "127.0.0.1:5000", "demo/hello", "latest", NULL},
        {"localhost/app", "localhost", "app", "latest", NULL},
        {"localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", NULL},
        {"[::1]:5000/app", "[::1]:5000", "app", "latest", NULL},
        {"reg.example.com/a_b/c__d/e--f/g.h:T_1.x-y", "reg.example.com", "a_b/c__d/e--f/g.h",
         "T_1.x-y", NULL},
        {"busybox@sha256:" H64, "docker.io", "library/busybox", NULL, "sha256:" H64},
        {"q.io/a:t@sha256:" H64, "q.io", "a", "t", "sha256:" H64},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(ok); i++) {
        struct cl_image_ref r;
        struct cl_err e = {0};
        if (cl_image_ref_parse(ok[i].in, &r, &e) < 0)
            fail_msg("ref '%s': %s", ok[i].in, e.msg);
        assert_string_equal(r.registry, ok[i].registry);
        assert_string_equal(r.repository, ok[i].repo);
        if (ok[i].tag)
            assert_string_equal(r.tag, ok[i].tag);
        else
            assert_null(r.tag);
        if (ok[i].digest)
            assert_string_equal(r.digest, ok[i].digest);
        else
            assert_null(r.digest);
        cl_image_ref_clear(&r);
    }
    static const struct {
        const char *in;
        int rc;
    } bad[] = {
        {"", CL_EPARSE},
        {"UPPER/case", CL_EPARSE},
        {"a//b", CL_EPARSE},
        {"a/-b", CL_EPARSE},
        {"a/b-", CL_EPARSE},
        {"a/b..c", CL_EPARSE},
        {"a/b___c", CL_EPARSE},
        {"busybox:", CL_EPARSE},
        {"busybox:-bad", CL_EPARSE},
        {"busybox:"
         "ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
         "ttttttt"
         "tttttttttttttttttttttttttttttttttttt",
         CL_EPARSE}, /* 129-character tag */
        {"busybox@sha256:abc", CL_EPARSE},
        {"busybox@md5:" H64, CL_EPARSE},
        {"bad_host.io:99999999/x", CL_EPARSE},
        {"-host.io/x", CL_EPARSE},
        {"host..io/x", CL_EPARSE},
        {"host.io/", CL_EPARSE},
        {"host.io:/x", CL_EPARSE},
        {"[::1/x", CL_EPARSE},
        {"a b", CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_image_ref r;
        struct cl_err e = {0};
        int rc = cl_image_ref_parse(bad[i].in, &r, &e);
        if (rc != bad[i].rc)
            fail_msg("ref '%s': %d, wanted %d", bad[i].in, rc, bad[i].rc);
        assert_true(e.msg[0] != 0);
    }
    /* name longer than 255 */
    char *longref = calloc(1, 400);
    memcpy(longref, "h.io/", 5);
    memset(longref + 5, 'a', 300);
    struct cl_image_ref r;
    assert_int_equal(cl_image_ref_parse(longref, &r, NULL), CL_ELIMIT);
    free(longref);
    char *huge = calloc(1, CL_IMAGE_MAX_REF + 10);
    memset(huge, 'a', CL_IMAGE_MAX_REF + 5);
    assert_int_equal(cl_image_ref_parse(huge, &r, NULL), CL_ELIMIT);
    free(huge);
    assert_int_equal(cl_image_ref_parse("q.io/a:t@sha256:" H64, &r, NULL), 0);
    cl_str *s = cl_image_ref_string(&r);
    assert_string_equal(s, "q.io/a:t@sha256:" H64);
    free(s);
    s = cl_image_ref_name(&r);
    assert_string_equal(s, "q.io/a");
    free(s);
    cl_image_ref_clear(&r);
}

/* ---- manifests ---- */

#define DESC(mt, extra)                                                                            \
    "{\"mediaType\":\"" mt "\",\"digest\":\"sha256:" H64 "\",\"size\":10" extra "}"
#define CFG DESC("application/vnd.oci.image.config.v1+json", "")
#define L_GZ DESC("application/vnd.oci.image.layer.v1.tar+gzip", "")
#define OCI_M(layers)                                                                              \
    "{\"schemaVersion\":2,\"mediaType\":\"application/"                                            \
    "vnd.oci.image.manifest.v1+json\",\"config\":" CFG ",\"layers\":[" layers "]}"

static void test_manifest(void **state)
{
    (void)state;
    static const struct {
        const char *name, *doc, *ctype;
        int rc;
        enum cl_image_manifest_kind kind;
        size_t n;
    } cases[] = {
        {"oci manifest", OCI_M(L_GZ "," L_GZ), NULL, 0, CL_IMAGE_MANIFEST, 2},
        {"no mediaType, ctype says",
         "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[" L_GZ "]}",
         "application/vnd.oci.image.manifest.v1+json", 0, CL_IMAGE_MANIFEST, 1},
        {"no mediaType at all, shape says",
         "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[]}", NULL, 0, CL_IMAGE_MANIFEST, 0},
        {"docker v2",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.docker.distribution.manifest.v2+json\",\"config\":" DESC(
             "application/vnd.docker.container.image.v1+json",
             "") ",\"layers\":[" DESC("application/vnd.docker.image.rootfs.diff.tar.gzip", "") "]}",
         "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", 0,
         CL_IMAGE_MANIFEST, 1},
        {"zstd, plain and encrypted layers",
         OCI_M(DESC("application/vnd.oci.image.layer.v1.tar+zstd", "") "," DESC(
             "application/vnd.oci.image.layer.v1.tar",
             "") "," DESC("application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                          ",\"annotations\":{\"a\":\"b\"}")),
         NULL, 0, CL_IMAGE_MANIFEST, 3},
        {"oci index",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.index.v1+json\",\"manifests\":[" DESC(
             "application/vnd.oci.image.manifest.v1+json",
             ",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}") "]}",
         NULL, 0, CL_IMAGE_INDEX, 1},
        {"schema 1", "{\"schemaVersion\":1}", NULL, CL_EUNSUPPORTED, 0, 0},
        {"no schemaVersion", "{\"config\":{}}", NULL, CL_EPARSE, 0, 0},
        {"not an object", "[1]", NULL, CL_EPARSE, 0, 0},
        {"not JSON", "{", NULL, CL_EPARSE, 0, 0},
        {"unknown media type", "{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}", NULL,
         CL_EUNSUPPORTED, 0, 0},
        {"ctype disagrees", OCI_M(""), "application/vnd.docker.distribution.manifest.v2+json",
         CL_EPARSE, 0, 0},
        {"no config",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.manifest.v1+json\",\"layers\":[]}",
         NULL, CL_EPARSE, 0, 0},
        {"no layers",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.manifest.v1+json\",\"config\":" CFG "}",
         NULL, CL_EPARSE, 0, 0},
        {"manifest with manifests",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.manifest.v1+json\",\"config\":" CFG ",\"layers\":[],\"manifests\":[]}",
         NULL, CL_EPARSE, 0, 0},
        {"index with layers",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.index.v1+json\",\"manifests\":[],\"layers\":[]}",
         NULL, CL_EPARSE, 0, 0},
        {"ambiguous shape", "{\"schemaVersion\":2,\"layers\":[],\"manifests\":[]}", NULL, CL_EPARSE,
         0, 0},
        {"bad digest",
         OCI_M("{\"mediaType\":\"application/"
               "vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:00\",\"size\":1}"),
         NULL, CL_EPARSE, 0, 0},
        {"negative size",
         OCI_M("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:" H64
               "\",\"size\":-1}"),
         NULL, CL_EPARSE, 0, 0},
        {"size not a number",
         OCI_M("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:" H64
               "\",\"size\":\"1\"}"),
         NULL, CL_EPARSE, 0, 0},
        {"no mediaType in a layer", OCI_M("{\"digest\":\"sha256:" H64 "\",\"size\":1}"), NULL,
         CL_EPARSE, 0, 0},
        {"unknown layer type", OCI_M(DESC("application/x-tar", "")), NULL, CL_EUNSUPPORTED, 0, 0},
        {"config type",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.manifest.v1+json\",\"config\":" DESC("application/json",
                                                             "") ",\"layers\":[]}",
         NULL, CL_EUNSUPPORTED, 0, 0},
        {"annotations not an object",
         OCI_M(DESC("application/vnd.oci.image.layer.v1.tar", ",\"annotations\":[]")), NULL,
         CL_EPARSE, 0, 0},
        {"annotation not a string",
         OCI_M(DESC("application/vnd.oci.image.layer.v1.tar", ",\"annotations\":{\"a\":1}")), NULL,
         CL_EPARSE, 0, 0},
        {"layer not an object", OCI_M("1"), NULL, CL_EPARSE, 0, 0},
        {"platform not an object",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.index.v1+json\",\"manifests\":[" DESC(
             "application/vnd.oci.image.manifest.v1+json", ",\"platform\":1") "]}",
         NULL, CL_EPARSE, 0, 0},
        {"platform without os",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.index.v1+json\",\"manifests\":[" DESC(
             "application/vnd.oci.image.manifest.v1+json",
             ",\"platform\":{\"architecture\":\"amd64\"}") "]}",
         NULL, CL_EPARSE, 0, 0},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_manifest m;
        struct cl_err e = {0};
        int rc =
            cl_image_manifest_parse(cases[i].doc, strlen(cases[i].doc), cases[i].ctype, &m, &e);
        if (rc != cases[i].rc)
            fail_msg("manifest case '%s': %d (%s), wanted %d", cases[i].name, rc, e.msg,
                     cases[i].rc);
        if (rc == 0) {
            assert_int_equal(m.kind, cases[i].kind);
            assert_int_equal(m.nlayers, cases[i].n);
            cl_image_manifest_clear(&m);
        }
    }
    /* compression and encryption of each layer */
    const char *doc = OCI_M(DESC("application/vnd.oci.image.layer.v1.tar+zstd", "") "," DESC(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted", ""));
    struct cl_image_manifest m;
    assert_int_equal(cl_image_manifest_parse(doc, strlen(doc), NULL, &m, NULL), 0);
    assert_int_equal(m.layers[0].compression, CL_IMAGE_COMP_ZSTD);
    assert_false(m.layers[0].encrypted);
    assert_int_equal(m.layers[1].compression, CL_IMAGE_COMP_GZIP);
    assert_true(m.layers[1].encrypted);
    cl_image_manifest_clear(&m);
    /* size and layer caps */
    size_t big = CL_IMAGE_MAX_MANIFEST + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    assert_int_equal(cl_image_manifest_parse(huge, big, NULL, &m, NULL), CL_ELIMIT);
    free(huge);
    char *many = malloc((CL_IMAGE_MAX_LAYERS + 2) * (sizeof(L_GZ) + 1) + 512);
    strcpy(many, "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[");
    for (int i = 0; i <= CL_IMAGE_MAX_LAYERS; i++) {
        strcat(many, L_GZ);
        strcat(many, i < CL_IMAGE_MAX_LAYERS ? "," : "]}");
    }
    struct cl_err e = {0};
    assert_int_equal(cl_image_manifest_parse(many, strlen(many), NULL, &m, &e), CL_ELIMIT);
    free(many);
}

static void test_index_select(void **state)
{
    (void)state;
    const char *doc =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.oci.image.index.v1+json\",\"manifests\":[" DESC(
            "application/vnd.oci.image.manifest.v1+json",
            ",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":"
            "\"v7\"}") "," DESC("application/vnd.oci.image.manifest.v1+json",
                                ",\"platform\":{\"os\":\"linux\",\"architecture\":"
                                "\"arm64\"}") "," DESC("application/"
                                                       "vnd.oci.image.manifest.v1+json",
                                                       ",\"platform\":{\"os\":"
                                                       "\"windows\",\"architecture\":"
                                                       "\"amd64\"}") "," DESC("applicatio"
                                                                              "n/"
                                                                              "vnd.oci."
                                                                              "image."
                                                                              "manifest."
                                                                              "v1+json",
                                                                              ",\"platfor"
                                                                              "m\":{"
                                                                              "\"os\":"
                                                                              "\"unknown"
                                                                              "\","
                                                                              "\"architec"
                                                                              "ture\":"
                                                                              "\"unknown"
                                                                              "\"}") "," DESC("appl"
                                                                                              "icat"
                                                                                              "ion/"
                                                                                              "vnd."
                                                                                              "oci."
                                                                                              "imag"
                                                                                              "e."
                                                                                              "mani"
                                                                                              "fest"
                                                                                              ".v1+"
                                                                                              "jso"
                                                                                              "n",
                                                                                              ",\"p"
                                                                                              "latf"
                                                                                              "orm"
                                                                                              "\":{"
                                                                                              "\"os"
                                                                                              "\":"
                                                                                              "\"li"
                                                                                              "nux"
                                                                                              "\","
                                                                                              "\"ar"
                                                                                              "chit"
                                                                                              "ectu"
                                                                                              "re\""
                                                                                              ":\"a"
                                                                                              "md64"
                                                                                              "\"}") "]}";
    struct cl_image_manifest m;
    assert_int_equal(cl_image_manifest_parse(doc, strlen(doc), NULL, &m, NULL), 0);
    static const struct {
        const char *os, *arch, *variant;
        int rc;
        size_t which;
    } cases[] = {
        {"linux", "amd64", NULL, 0, 4},          {"linux", "arm64", NULL, 0, 1},
        {"linux", "arm64", "v8", 0, 1},          {"linux", "arm", "v7", 0, 0},
        {"linux", "arm", "v6", CL_ENOTFOUND, 0}, {"linux", "s390x", NULL, CL_ENOTFOUND, 0},
        {"windows", "amd64", NULL, 0, 2},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        size_t w = 99;
        struct cl_err e = {0};
        int rc = cl_image_index_select(&m, cases[i].os, cases[i].arch, cases[i].variant, &w, &e);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0)
            assert_int_equal(w, cases[i].which);
        else
            assert_non_null(strstr(e.msg, "offers"));
    }
    size_t w;
    cl_image_manifest_clear(&m);
    assert_int_equal(cl_image_manifest_parse(OCI_M(""), strlen(OCI_M("")), NULL, &m, NULL), 0);
    assert_int_equal(cl_image_index_select(&m, "linux", "amd64", NULL, &w, NULL), CL_EINVAL);
    cl_image_manifest_clear(&m);
    const char *os, *arch, *variant;
    cl_image_platform(&os, &arch, &variant);
    assert_string_equal(os, "linux");
    assert_non_null(arch);
}

static void test_config(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        int rc;
        size_t n;
    } cases[] = {
        {"{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_"
         "ids\":[\"sha256:" H64 "\"]}}",
         0, 1},
        {"{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_"
         "ids\":[]}}",
         0, 0},
        {"{\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", CL_EPARSE,
         0},
        {"{\"os\":\"linux\",\"architecture\":\"amd64\"}", CL_EPARSE, 0},
        {"{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"other\",\"diff_ids\":"
         "[]}}",
         CL_EPARSE, 0},
        {"{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\"}}",
         CL_EPARSE, 0},
        {"{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_"
         "ids\":[1]}}",
         CL_EPARSE, 0},
        {"{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_"
         "ids\":[\"sha256:1\"]}}",
         CL_EPARSE, 0},
        {"[]", CL_EPARSE, 0},
        {"{", CL_EPARSE, 0},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_config c;
        struct cl_err e = {0};
        int rc = cl_image_config_parse(cases[i].doc, strlen(cases[i].doc), &c, &e);
        if (rc != cases[i].rc)
            fail_msg("config %zu: %d (%s)", i, rc, e.msg);
        if (rc == 0) {
            assert_int_equal(c.ndiff_ids, cases[i].n);
            cl_image_config_clear(&c);
        }
    }
}

/* ---- registries.conf ---- */

static void test_regconf(void **state)
{
    (void)state;
    const char *conf =
        "unqualified-search-registries = [\"docker.io\"]\n"
        "[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"mirror.local/lib\"\n"
        "[[registry.mirror]]\nlocation = \"m1.local/x\"\ninsecure = true\n"
        "[[registry.mirror]]\nlocation = \"m2.local\"\npull-from-mirror = \"digest-only\"\n"
        "[[registry]]\nlocation = \"blocked.io\"\nblocked = true\n"
        "[[registry]]\nprefix = \"*.corp.example\"\nlocation = \"proxy.local\"\n"
        "[[registry]]\nlocation = \"plain.local:5000\"\ninsecure = true\n"
        "[[registry]]\nprefix = \"q.io/team\"\nlocation = \"q.io/team-mirror\"\n";
    struct cl_err e = {0};
    struct cl_image_regconf *c = cl_image_regconf_parse(conf, strlen(conf), &e);
    if (!c)
        fail_msg("regconf: %s", e.msg);
    assert_int_equal(cl_image_regconf_add_insecure(c, "extra.local", &e), 0);
    static const struct {
        const char *ref;
        int rc;
        size_t n;
        const char *host0, *repo0;
        bool insecure0;
        const char *hostl, *repol;
    } cases[] = {
        {"busybox", 0, 2, "m1.local", "x/busybox", true, "mirror.local", "lib/busybox"},
        {"busybox@sha256:" H64, 0, 3, "m1.local", "x/busybox", true, "mirror.local", "lib/busybox"},
        {"me/app", 0, 1, "registry-1.docker.io", "me/app", false, "registry-1.docker.io", "me/app"},
        {"blocked.io/x", CL_EDENIED, 0, NULL, NULL, false, NULL, NULL},
        {"a.corp.example/team/app", 0, 1, "proxy.local", "team/app", false, "proxy.local",
         "team/app"},
        {"plain.local:5000/demo", 0, 1, "plain.local:5000", "demo", true, "plain.local:5000",
         "demo"},
        {"q.io/team/app", 0, 1, "q.io", "team-mirror/app", false, "q.io", "team-mirror/app"},
        {"q.io/teammate/app", 0, 1, "q.io", "teammate/app", false, "q.io", "teammate/app"},
        {"extra.local/x", 0, 1, "extra.local", "x", true, "extra.local", "x"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_ref r;
        assert_int_equal(cl_image_ref_parse(cases[i].ref, &r, NULL), 0);
        struct cl_image_endpoint ep[8];
        size_t n = 0;
        int rc = cl_image_regconf_resolve(c, &r, ep, &n, &e);
        if (rc != cases[i].rc)
            fail_msg("resolve '%s': %d (%s)", cases[i].ref, rc, e.msg);
        if (rc == 0) {
            assert_int_equal(n, cases[i].n);
            assert_string_equal(ep[0].host, cases[i].host0);
            assert_string_equal(ep[0].repository, cases[i].repo0);
            assert_int_equal(ep[0].insecure, cases[i].insecure0);
            assert_string_equal(ep[n - 1].host, cases[i].hostl);
            assert_string_equal(ep[n - 1].repository, cases[i].repol);
            assert_false(ep[n - 1].mirror);
            for (size_t k = 0; k < n; k++)
                cl_image_endpoint_clear(&ep[k]);
        }
        cl_image_ref_clear(&r);
    }
    cl_image_regconf_free(c);
    /* no configuration: the reference's own registry over HTTPS */
    struct cl_image_ref r;
    assert_int_equal(cl_image_ref_parse("h.io/a", &r, NULL), 0);
    struct cl_image_endpoint ep[8];
    size_t n = 0;
    assert_int_equal(cl_image_regconf_resolve(NULL, &r, ep, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_false(ep[0].insecure);
    cl_image_endpoint_clear(&ep[0]);
    cl_image_ref_clear(&r);
    static const char *const bad[] = {
        "bogus = 1\n",
        "registry = 1\n",
        "[[registry]]\nprefix = \"a\"\nunknown = 1\n",
        "[[registry]]\ninsecure = \"yes\"\nlocation = \"a\"\n",
        "[[registry]]\nlocation = 1\n",
        "[[registry]]\ninsecure = true\n",
        "[[registry]]\nprefix = \"*x.io\"\n",
        "[[registry]]\nlocation = \"a\"\nmirror = 1\n",
        "[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\ninsecure = true\n",
        "[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"b\"\nweird = 1\n",
        "[[registry]\n",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_image_regconf *x = cl_image_regconf_parse(bad[i], strlen(bad[i]), &e);
        if (x)
            fail_msg("regconf accepted: %s", bad[i]);
        assert_int_equal(e.code, CL_EPARSE);
    }
    struct cl_image_regconf *empty = cl_image_regconf_parse("", 0, NULL);
    assert_non_null(empty);
    assert_int_equal(cl_image_regconf_add_insecure(empty, "", NULL), CL_EINVAL);
    cl_image_regconf_free(empty);
}

/* ---- decompression ---- */

static int drain_src(struct cl_image_src *s, uint8_t **out, size_t *len, struct cl_err *e)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (n == cap)
            b = realloc(b, cap *= 2);
        size_t got = 0;
        int rc = s->read(s, b + n, cap - n, &got, e);
        if (rc < 0) {
            free(b);
            return rc;
        }
        if (!got)
            break;
        n += got;
    }
    *out = b;
    *len = n;
    return 0;
}

/* A source that hands out one byte at a time: boundaries everywhere. */
struct trickle {
    struct cl_image_src src;
    const uint8_t *buf;
    size_t len, off;
};

static int trickle_read(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                        struct cl_err *err)
{
    (void)err;
    struct trickle *t = (struct trickle *)self;
    *got = t->off < t->len && cap ? 1 : 0;
    if (*got)
        buf[0] = t->buf[t->off++];
    return 0;
}

static void test_decompress(void **state)
{
    (void)state;
    size_t plen = 300000;
    uint8_t *plain = malloc(plen);
    for (size_t i = 0; i < plen; i++)
        plain[i] = (uint8_t)(i * 7 + i / 1000);
    size_t glen = 0, zlen = 0;
    cl_bytes *gz = tu_gzip(plain, plen, &glen);
    cl_bytes *zs = tu_zstd(plain, plen, &zlen);
    /* two gzip members back to back, and two zstd frames */
    cl_bytes *gz2 = malloc(2 * glen);
    memcpy(gz2, gz, glen);
    memcpy(gz2 + glen, gz, glen);
    cl_bytes *zs2 = malloc(2 * zlen);
    memcpy(zs2, zs, zlen);
    memcpy(zs2 + zlen, zs, zlen);
    static const uint8_t junk[] = "not compressed at all";
    struct {
        const char *name;
        enum cl_image_compression comp;
        const uint8_t *in;
        size_t len;
        uint64_t max;
        bool trickle;
        int rc;
        size_t out;
    } cases[] = {
        {"gzip", CL_IMAGE_COMP_GZIP, gz, glen, 0, false, 0, plen},
        {"gzip byte by byte", CL_IMAGE_COMP_GZIP, gz, glen, 0, true, 0, plen},
        {"gzip two members", CL_IMAGE_COMP_GZIP, gz2, 2 * glen, 0, false, 0, 2 * plen},
        {"zstd", CL_IMAGE_COMP_ZSTD, zs, zlen, 0, false, 0, plen},
        {"zstd byte by byte", CL_IMAGE_COMP_ZSTD, zs, zlen, 0, true, 0, plen},
        {"zstd two frames", CL_IMAGE_COMP_ZSTD, zs2, 2 * zlen, 0, false, 0, 2 * plen},
        {"none", CL_IMAGE_COMP_NONE, plain, plen, 0, false, 0, plen},
        {"gzip truncated", CL_IMAGE_COMP_GZIP, gz, glen / 2, 0, false, CL_EPARSE, 0},
        {"zstd truncated", CL_IMAGE_COMP_ZSTD, zs, zlen / 2, 0, false, CL_EPARSE, 0},
        {"gzip magic missing", CL_IMAGE_COMP_GZIP, junk, sizeof junk, 0, false, CL_EPARSE, 0},
        {"zstd magic missing", CL_IMAGE_COMP_ZSTD, junk, sizeof junk, 0, false, CL_EPARSE, 0},
        {"gzip corrupt", CL_IMAGE_COMP_GZIP, NULL, 0, 0, false, CL_EPARSE, 0},
        {"gzip over the cap (bomb)", CL_IMAGE_COMP_GZIP, gz, glen, 100000, false, CL_ELIMIT, 0},
        {"zstd over the cap (bomb)", CL_IMAGE_COMP_ZSTD, zs, zlen, 100000, false, CL_ELIMIT, 0},
        {"empty gzip", CL_IMAGE_COMP_GZIP, junk, 0, 0, false, CL_EPARSE, 0},
    };
    cl_bytes *corrupt = malloc(glen);
    memcpy(corrupt, gz, glen);
    for (size_t i = 20; i < glen - 20; i += 50)
        corrupt[i] ^= 0x5a;
    cases[11].in = corrupt;
    cases[11].len = glen;
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_mem_src m;
        struct trickle t = {.src.read = trickle_read, .buf = cases[i].in, .len = cases[i].len};
        cl_image_mem_src_init(&m, cases[i].in, cases[i].len);
        struct cl_err e = {0};
        struct cl_image_src *d = cl_image_decompress_new(cases[i].trickle ? &t.src : &m.src,
                                                         cases[i].comp, cases[i].max, &e);
        assert_non_null(d);
        uint8_t *out = NULL;
        size_t olen = 0;
        int rc = drain_src(d, &out, &olen, &e);
        if (rc != cases[i].rc)
            fail_msg("decompress '%s': %d (%s), wanted %d", cases[i].name, rc, e.msg, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(olen, cases[i].out);
            assert_memory_equal(out, plain, plen);
            free(out);
        } else {
            assert_true(e.msg[0] != 0);
        }
        cl_image_decompress_free(d);
    }
    struct cl_err e = {0};
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, NULL, 0);
    assert_null(cl_image_decompress_new(&m.src, (enum cl_image_compression)9, 0, &e));
    free(corrupt);
    free(gz);
    free(gz2);
    free(zs);
    free(zs2);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest),     cmocka_unit_test(test_refs),
        cmocka_unit_test(test_manifest),   cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_config),     cmocka_unit_test(test_regconf),
        cmocka_unit_test(test_decompress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
