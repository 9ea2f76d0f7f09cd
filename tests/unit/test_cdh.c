/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confidential data hub: kbs:// URIs (traversal, odd characters, queries, one case per
 * rejection), cdh.toml (upstream's example configs, one case per rejection), the ocicrypt
 * keyprovider unwrap vector through an offline hub (and its tamper twins), the resource
 * path against an in-process KBS and attestation agent (token reuse, 401 → one refresh,
 * 403/404/500/garbage/down, cache TTL, invalidation, eviction), and SecureMount: parameter
 * validation and LUKS2 format + header checks on an image file. Opening needs
 * device-mapper; where /dev/mapper/control is absent that step is reported as skipped.
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
#include "cdh/cdh.h"
#include "kbs/kbs_client.h"
#include "net/http.h"

#include "attestation-agent.pb-c.h"

static const char *vecdir(void)
{
    static char root[512];
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    if (!v)
        return NULL;
    snprintf(root, sizeof root, "%s/guest-components", v);
    struct stat st;
    return stat(root, &st) == 0 ? root : NULL;
}

static json_t *vjson(const char *rel)
{
    const char *v = vecdir();
    if (!v)
        return NULL;
    char p[700];
    snprintf(p, sizeof p, "%s/%s", v, rel);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(p, 1u << 20, &n, NULL);
    return b ? cl_json_parse((const char *)b, n, 32, NULL) : NULL;
}

/* A scratch folder removed at the end of each test. */
static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- URIs ---- */

static void test_uri(void **state)
{
    static const struct {
        const char *uri, *plugin, *path, *query;
        size_t nseg;
    } good[] = {
        {"kbs:///default/key/1", "resource", "default/key/1", "", 3},
        {"kbs://kbs.example:8080/default/key/1", "resource", "default/key/1", "", 3},
        {"kbs:///a.b/c_d/E-9", "resource", "a.b/c_d/E-9", "", 3},
        {"kbs:///default/key/1?version=2", "resource", "default/key/1", "version=2", 3},
        {"kbs+plugin:///a/b?x=1&y=2,3", "plugin", "a/b", "x=1&y=2,3", 2},
        {"kbs+my_plugin-2:///one", "my_plugin-2", "one", "", 1},
        {"kbs:///...a/..b/c..", "resource", "...a/..b/c..", "", 3},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(good); i++) {
        struct cl_cdh_uri u;
        struct cl_err e = {0};
        if (cl_cdh_uri_parse(good[i].uri, &u, &e) != 0)
            fail_msg("%s: %s", good[i].uri, e.msg);
        assert_string_equal(u.plugin, good[i].plugin);
        assert_string_equal(u.path, good[i].path);
        assert_string_equal(u.query, good[i].query);
        assert_int_equal(u.nsegments, good[i].nseg);
        assert_true(cl_cdh_is_uri(good[i].uri));
    }
    char longuri[CL_CDH_MAX_URI + 16], longseg[CL_CDH_MAX_SEGMENT + 32], many[256];
    snprintf(longuri, sizeof longuri, "kbs:///a/b/%0*d", CL_CDH_MAX_URI, 0);
    snprintf(longseg, sizeof longseg, "kbs:///a/b/%0*d", CL_CDH_MAX_SEGMENT + 1, 0);
    snprintf(many, sizeof many, "kbs+p:///");
    for (int i = 0; i <= CL_CDH_MAX_SEGMENTS; i++)
        strcat(many, i ? "/s" : "s");
    const struct {
        const char *uri, *msg;
    } bad[] = {
        {"http://kbs/default/key/1", "scheme"},
        {"kbs:/default/key/1", "scheme"},
        {"kbs+://a/b/c", "plugin name"},
        {"kbs+pl.ug:///a/b/c", "bad plugin name"},
        {"kbs+pl/ug:///a/b/c", "bad plugin name"},
        {"kbs+noscheme", "malformed plugin name"},
        {"kbs://host-only", "no path"},
        {"kbs:///", "empty path"},
        {"kbs:///?x=1", "empty path"},
        {"kbs:///a//c", "empty path segment"},
        {"kbs:///default/key/1/", "empty path segment"},
        {"kbs:///../etc/passwd", "'.' and '..'"},
        {"kbs:///default/../1", "'.' and '..'"},
        {"kbs:///default/./1", "'.' and '..'"},
        {"kbs:///default/key/..", "'.' and '..'"},
        {"kbs:///default/%2e%2e/1", "not allowed in a segment"},
        {"kbs:///default/k y/1", "not allowed in a segment"},
        {"kbs:///default/key\\..\\x/1", "not allowed in a segment"},
        {"kbs:///default/key/1\n", "not allowed in a segment"},
        {"kbs:///default/k\x01/1", "not allowed in a segment"},
        {"kbs:///default/cl\xc3\xa9/1", "not allowed in a segment"},
        {"kbs:///default/key/1#frag", "not allowed in a segment"},
        {"kbs:///default/key/1?path=/etc", "not allowed in the query"},
        {"kbs:///default/key/1?x=<script>", "not allowed in the query"},
        {"kbs:///default/key/1?x=a b", "not allowed in the query"},
        {"kbs:///default/key/1?x=%2F", "not allowed in the query"},
        {"kbs:///default/key", "<repo>/<type>/<tag>"},
        {"kbs:///default/key/1/2", "<repo>/<type>/<tag>"},
        {"kbs+resource:///a/b", "<repo>/<type>/<tag>"},
        {longuri, "longer than"},
        {longseg, "segment longer than"},
        {many, "more than"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_cdh_uri u;
        struct cl_err e = {0};
        if (cl_cdh_uri_parse(bad[i].uri, &u, &e) != CL_EINVAL || !strstr(e.msg, bad[i].msg))
            fail_msg("case %zu (%.60s): code %d '%s'", i, bad[i].uri, e.code, e.msg);
    }
    struct cl_cdh_uri u;
    assert_int_equal(cl_cdh_uri_parse(NULL, &u, NULL), CL_EINVAL);
    assert_false(cl_cdh_is_uri("file:///etc/key"));
    assert_false(cl_cdh_is_uri("sealed.abc"));
}

/* ---- cdh.toml ---- */

static void test_config_vectors(void **state)
{
    struct cl_cdh_config c;
    assert_int_equal(cl_cdh_config_parse("", 0, &c, NULL), 0);
    assert_int_equal(c.cache_ttl_s, CL_CDH_CACHE_TTL_DEFAULT);
    assert_null(c.kbc_name);
    cl_cdh_config_clear(&c);
    const char *v = vecdir();
    if (!v) {
        fprintf(stderr,
                "guest-components vectors absent: upstream's example configs are skipped\n");
        return;
    }
    static const char *const files[] = {"confidential-data-hub/example.config.toml",
                                        "confidential-data-hub/example.config.json"};
    for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", v, files[i]);
        struct cl_err e = {0};
        if (cl_cdh_config_load(p, &c, &e) != 0)
            fail_msg("%s: %s", files[i], e.msg);
        assert_string_equal(c.socket, "unix:///run/confidential-containers/cdh.sock");
        assert_string_equal(
            c.aa_socket,
            "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock");
        assert_string_equal(c.kbc_name, "cc_kbc");
        assert_string_equal(c.kbc_url, "http://example.io:8080");
        assert_non_null(strstr(c.kbs_cert, "BEGIN CERTIFICATE"));
        assert_int_equal(c.ncreds, 2);
        assert_string_equal(c.creds[0].resource_uri, "kbs:///default/aliyun/ecs_ram_role");
        assert_string_equal(c.creds[1].path, "/run/confidential-containers/cdh/kbs/test/file");
        assert_string_equal(c.log_level, "info");
        cl_cdh_config_clear(&c);
    }
    char p[700];
    snprintf(p, sizeof p, "%s/confidential-data-hub/hub/tests/cdh.toml", v);
    struct cl_err e = {0};
    if (cl_cdh_config_load(p, &c, &e) != 0)
        fail_msg("hub/tests/cdh.toml: %s", e.msg);
    assert_string_equal(c.kbc_name, "offline_fs_kbc");
    cl_cdh_config_clear(&c);
}

static void test_config_rejections(void **state)
{
    static const char ok[] =
        "socket = \"unix:///tmp/c.sock\"\nskip_sealed_secret_verification_insecure = true\n"
        "sealed_secret_key_dir = \"/k\"\nluks_header_dir = \"/h\"\n"
        "[kbc]\nname = \"offline_fs_kbc\"\nresource_cache_ttl = 0\noffline_files = [\"/a\", "
        "\"/b\"]\n"
        "[rest]\naddress = \"127.0.0.1:0\"\nfeatures = \"attestation\"\n"
        "[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\n"
        "path = \"/run/confidential-containers/cdh/kbs/x/y\"\n";
    struct cl_cdh_config c;
    struct cl_err e = {0};
    if (cl_cdh_config_parse(ok, strlen(ok), &c, &e) != 0)
        fail_msg("%s", e.msg);
    assert_true(c.skip_verification_insecure);
    assert_int_equal(c.cache_ttl_s, 0);
    assert_string_equal(c.offline_files[1], "/b");
    assert_null(c.offline_files[2]);
    assert_string_equal(c.rest_features, "attestation");
    cl_cdh_config_clear(&c);

    char many_creds[8192] = "";
    for (int i = 0; i <= CL_CDH_MAX_CREDENTIALS; i++)
        strcat(many_creds, "[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\n"
                           "path = \"/run/confidential-containers/cdh/kbs/p\"\n");
    char many_files[1024] = "[kbc]\nname = \"offline_fs_kbc\"\noffline_files = [";
    for (int i = 0; i < 17; i++)
        strcat(many_files, i ? ", \"/f\"" : "\"/f\"");
    strcat(many_files, "]\n");
    const struct {
        const char *text, *msg;
    } bad[] = {
        {"socket = 1\n", "'socket' must be a string"},
        {"aa = 1\n", "'aa' must be a table"},
        {"kbc = \"x\"\n", "'kbc' must be a table"},
        {"log = 1\n", "'log' must be a table"},
        {"rest = []\n", "'rest' must be a table"},
        {"skip_sealed_secret_verification = \"yes\"\n", "must be true or false"},
        {"skip_sealed_secret_verification = true\n",
         "spelled skip_sealed_secret_verification_insecure"},
        {"skip_sealed_secret_verification_insecure = 1\n", "must be true or false"},
        {"[aa]\naa_socket = 1\n", "'aa.aa_socket' must be a string"},
        {"[kbc]\nname = 1\n", "'kbc.name' must be a string"},
        {"[kbc]\nname = \"cc_kbc\"\nurl = 1\n", "'kbc.url' must be a string"},
        {"[kbc]\nname = \"cc_kbc\"\nkbs_cert = 1\n", "'kbc.kbs_cert' must be a string"},
        {"[kbc]\nurl = \"http://k\"\n", "'kbc.name' is missing"},
        {"[kbc]\nname = \"sample_kbc\"\n", "is not cc_kbc or offline_fs_kbc"},
        {"[kbc]\nname = \"cc_kbc\"\nresource_cache_ttl = -1\n", "0..86400"},
        {"[kbc]\nname = \"cc_kbc\"\nresource_cache_ttl = 86401\n", "0..86400"},
        {"[kbc]\nname = \"cc_kbc\"\nresource_cache_ttl = \"5\"\n", "0..86400"},
        {"[kbc]\nname = \"cc_kbc\"\noffline_files = \"/f\"\n", "array of at most 16"},
        {many_files, "array of at most 16"},
        {"[kbc]\nname = \"cc_kbc\"\noffline_files = [1]\n", "offline_files[0] must be a string"},
        {"[log]\nlevel = 1\n", "'log.level' must be a string"},
        {"[rest]\naddress = 8006\n", "'rest.address' must be a string"},
        {"[rest]\nfeatures = \"everything\"\n", "is not resource, attestation or all"},
        {"sealed_secret_key_dir = 1\n", "'sealed_secret_key_dir' must be a string"},
        {"luks_header_dir = 1\n", "'luks_header_dir' must be a string"},
        {"credentials = 1\n", "must be an array of tables"},
        {"credentials = [1]\n", "credentials[0] must be a table"},
        {many_creds, "more than 32 credentials"},
        {"[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\n", "needs resource_uri and path"},
        {"[[credentials]]\npath = \"/run/confidential-containers/cdh/kbs/p\"\n",
         "needs resource_uri and path"},
        {"[[credentials]]\nresource_uri = 1\npath = \"/run/confidential-containers/cdh/kbs/p\"\n",
         "must be a string"},
        {"[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\npath = \"/etc/shadow\"\n",
         "must lie under"},
        {"[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\npath = "
         "\"/run/confidential-containers/cdh/kbsx/p\"\n",
         "must lie under"},
        {"[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\npath = "
         "\"/run/confidential-containers/cdh/kbs/../../x\"\n",
         "must lie under"},
        {"[[credentials]]\nresource_uri = \"kbs:///a/b/c\"\npath = "
         "\"/run/confidential-containers/cdh/kbs/./x\"\n",
         "must lie under"},
        {"[[credentials]]\nresource_uri = \"kbs:///a/../c\"\npath = "
         "\"/run/confidential-containers/cdh/kbs/x\"\n",
         "credentials[0].resource_uri"},
        {"socket = [", "cdh config"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err be = {0};
        if (cl_cdh_config_parse(bad[i].text, strlen(bad[i].text), &c, &be) == 0 ||
            !strstr(be.msg, bad[i].msg))
            fail_msg("case %zu: '%s'", i, be.msg);
        assert_null(c.socket); /* cleared on failure */
    }
    /* size cap before parsing */
    size_t big = CL_CDH_MAX_CONFIG + 1;
    CL_AUTO(cl_str) *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, '#', big);
    huge[big] = 0;
    assert_int_equal(cl_cdh_config_parse(huge, big, &c, &e), CL_ELIMIT);
    /* .json by extension; a JSON document that is not an object */
    char dir[] = "/tmp/cl-cdhcfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[64];
    snprintf(p, sizeof p, "%s/cdh.json", dir);
    assert_int_equal(cl_file_write_atomic(p, "[1]", 3, 0600, NULL), 0);
    assert_int_equal(cl_cdh_config_load(p, &c, &e), CL_EPARSE);
    assert_non_null(strstr(e.msg, "not a table"));
    assert_int_equal(cl_file_write_atomic(p, "{\"socket\":\"unix:///x\"}", 22, 0600, NULL), 0);
    assert_int_equal(cl_cdh_config_load(p, &c, &e), 0);
    assert_string_equal(c.socket, "unix:///x");
    cl_cdh_config_clear(&c);
    snprintf(p, sizeof p, "%s/absent.toml", dir);
    assert_int_equal(cl_cdh_config_load(p, &c, &e), CL_ENOTFOUND);
    rm_rf(dir);
}

/* ---- an offline hub ---- */

struct offline {
    char dir[64];
    struct cl_cdh_config cfg;
    struct cl_cdh *cdh;
};

/* A hub whose offline_fs_kbc file maps each "repo/type/tag" to base64 of value. */
static void offline_start(struct offline *o, const json_t *map, long ttl)
{
    snprintf(o->dir, sizeof o->dir, "/tmp/cl-cdh-XXXXXX");
    assert_non_null(mkdtemp(o->dir));
    char p[128];
    snprintf(p, sizeof p, "%s/resources.json", o->dir);
    CL_AUTO(cl_str) *text = cl_json_compact(map);
    assert_int_equal(cl_file_write_atomic(p, text, strlen(text), 0600, NULL), 0);
    CL_AUTO(cl_str) *toml =
        cl_strdupf("luks_header_dir = \"%s/headers\"\n[kbc]\nname = \"offline_fs_kbc\"\n"
                   "resource_cache_ttl = %ld\noffline_files = [\"%s\"]\n",
                   o->dir, ttl, p);
    struct cl_err e = {0};
    if (cl_cdh_config_parse(toml, strlen(toml), &o->cfg, &e) != 0)
        fail_msg("%s", e.msg);
    o->cdh = cl_cdh_new(&o->cfg, &e);
    if (!o->cdh)
        fail_msg("%s", e.msg);
}

static void offline_stop(struct offline *o)
{
    cl_cdh_free(o->cdh);
    cl_cdh_config_clear(&o->cfg);
    rm_rf(o->dir);
}

static json_t *b64_map1(const char *path, const void *value, size_t len)
{
    CL_AUTO(cl_str) *b = cl_b64_encode(value, len, CL_B64_STD);
    return json_pack("{s:s}", path, b);
}

/* ---- the keyprovider unwrap vector ---- */

static int unwrap(struct cl_cdh *cdh, const json_t *input, json_t **out, struct cl_err *e)
{
    CL_AUTO(cl_str) *in = cl_json_compact(input);
    cl_bytes *res = NULL;
    size_t n = 0;
    int rc = cl_cdh_unwrap_key(cdh, (const uint8_t *)in, strlen(in), &res, &n, e);
    if (rc == 0) {
        *out = cl_json_parse((const char *)res, n, 8, NULL);
        free(res);
    }
    return rc;
}

/* The input of the vector with its annotation packet replaced (object → base64 text). */
static json_t *with_packet(const json_t *input, const json_t *packet)
{
    json_t *copy = json_deep_copy(input);
    CL_AUTO(cl_str) *pt = cl_json_compact(packet);
    CL_AUTO(cl_str) *b = cl_b64_encode(pt, strlen(pt), CL_B64_STD);
    json_object_set_new(json_object_get(copy, "keyunwrapparams"), "annotation", json_string(b));
    return copy;
}

static void test_keyprovider_vector(void **state)
{
    CL_AUTO(json_t) *v = vjson("generated/keyprovider/unwrap-sample-kbc.json");
    if (!v) {
        fprintf(stderr, "generated keyprovider vector absent: skipped\n");
        skip();
    }
    const char *kek_hex = json_string_value(json_object_get(v, "sample_kek_hex"));
    uint8_t kek[32];
    size_t kn = 0;
    assert_int_equal(cl_hex_decode(kek_hex, strlen(kek_hex), kek, sizeof kek, &kn, NULL), 0);
    CL_AUTO(json_t) *map = b64_map1("default/key/1", kek, sizeof kek);
    uint8_t other[32];
    memset(other, 0x11, sizeof other);
    CL_AUTO(cl_str) *ob = cl_b64_encode(other, sizeof other, CL_B64_STD);
    json_object_set_new(map, "default/key/other", json_string(ob));
    struct offline o;
    offline_start(&o, map, 300);
    const json_t *input = json_object_get(v, "KeyProviderKeyWrapProtocolInput");
    struct cl_err e = {0};
    CL_AUTO(json_t) *out = NULL;
    if (unwrap(o.cdh, input, &out, &e) != 0)
        fail_msg("%s", e.msg);
    assert_true(json_equal(out, json_object_get(v, "KeyProviderKeyWrapProtocolOutput")));
    /* optsdata is the PLBCO plaintext, as an array of numbers */
    const char *want = json_string_value(json_object_get(v, "expected_plbco_plaintext"));
    json_t *arr = json_object_get(json_object_get(out, "keyunwrapresults"), "optsdata");
    assert_int_equal(json_array_size(arr), strlen(want));
    for (size_t i = 0; i < json_array_size(arr); i++)
        assert_int_equal(json_integer_value(json_array_get(arr, i)), (unsigned char)want[i]);

    /* the annotation as an array of numbers (ocicrypt-rs) also works */
    const char *ann =
        json_string_value(json_object_get(json_object_get(input, "keyunwrapparams"), "annotation"));
    size_t an = 0;
    CL_AUTO(cl_bytes) *raw = cl_b64_decode(ann, strlen(ann), CL_B64_STD, 1u << 16, &an, NULL);
    assert_non_null(raw);
    CL_AUTO(json_t) *packet = cl_json_parse((const char *)raw, an, 8, NULL);
    assert_non_null(packet);
    CL_AUTO(json_t) *asarray = json_deep_copy(input);
    json_t *nums = json_array();
    for (size_t i = 0; i < an; i++)
        json_array_append_new(nums, json_integer(raw[i]));
    json_object_set_new(json_object_get(asarray, "keyunwrapparams"), "annotation", nums);
    CL_AUTO(json_t) *out2 = NULL;
    assert_int_equal(unwrap(o.cdh, asarray, &out2, &e), 0);
    assert_true(json_equal(out, out2));

    /* tamper twins and one case per rejection */
    const char *wd = json_string_value(json_object_get(packet, "wrapped_data"));
    size_t wn = 0;
    CL_AUTO(cl_bytes) *wbytes = cl_b64_decode(wd, strlen(wd), CL_B64_STD, 1u << 16, &wn, NULL);
    wbytes[wn - 1] ^= 1;
    CL_AUTO(cl_str) *flipped = cl_b64_encode(wbytes, wn, CL_B64_STD);
    static const struct {
        const char *key, *value; /* packet member replaced (value NULL: removed) */
        int code;
        const char *msg;
    } bad[] = {
        {"wrapped_data", "", CL_EPARSE, "room for the tag"},
        {"kid", "kbs:///default/key/other", CL_EVERIFY, "tag does not verify"},
        {"kid", "kbs:///default/key/absent", CL_ENOTFOUND, "no resource"},
        {"kid", "file:///etc/key", CL_EINVAL, "not a kbs:// URI"},
        {"kid", "kbs:///default/../key", CL_EINVAL, "'.' and '..'"},
        {"kid", NULL, CL_ENOTFOUND, "'kid' is missing"},
        {"wrap_type", "A128GCM", CL_EUNSUPPORTED, "not A256GCM or A256CTR"},
        {"wrap_type", NULL, CL_ENOTFOUND, "'wrap_type' is missing"},
        {"iv", "AAAA", CL_EPARSE, "12-byte iv"},
        {"iv", "!!", CL_EPARSE, "iv"},
        {"provider", "aliyun", CL_EUNSUPPORTED, "only kbs"},
        {"version", "0.2.0", CL_EPARSE, "not 0.1.0"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad) + 1; i++) {
        CL_AUTO(json_t) *pk = json_deep_copy(packet);
        if (i == CL_ARRAY_LEN(bad))
            json_object_set_new(pk, "wrapped_data", json_string(flipped));
        else if (bad[i].value)
            json_object_set_new(pk, bad[i].key, json_string(bad[i].value));
        else
            json_object_del(pk, bad[i].key);
        CL_AUTO(json_t) *in = with_packet(input, pk);
        CL_AUTO(json_t) *res = NULL;
        struct cl_err be = {0};
        int rc = unwrap(o.cdh, in, &res, &be);
        int want_code = i == CL_ARRAY_LEN(bad) ? CL_EVERIFY : bad[i].code;
        const char *want_msg = i == CL_ARRAY_LEN(bad) ? "tag does not verify" : bad[i].msg;
        if (rc != want_code || !strstr(be.msg, want_msg))
            fail_msg("packet case %zu: %d '%s'", i, rc, be.msg);
    }
    /* the request envelope */
    static const char *const envelopes[][2] = {
        {"{\"op\":\"keywrap\",\"keyunwrapparams\":{}}", "keyunwrap only"},
        {"{\"keyunwrapparams\":{}}", "'op' is missing"},
        {"[1]", "'op' is missing"},
        {"{\"op\":\"keyunwrap\"}", "keyunwrapparams"},
        {"{\"op\":\"keyunwrap\",\"keyunwrapparams\":{\"annotation\":\"@@@\"}}", "annotation"},
        {"{\"op\":\"keyunwrap\",\"keyunwrapparams\":{\"annotation\":[1,256]}}", "is not a byte"},
        {"{\"op\":\"keyunwrap\",\"keyunwrapparams\":{\"annotation\":{}}}",
         "base64 text or an array"},
        {"{\"op\":\"keyunwrap\",\"keyunwrapparams\":{\"annotation\":\"bm90IGpzb24=\"}}",
         "annotation packet"},
        {"{\"op\":\"keyunwrap\",\"keyunwrapparams\":{\"annotation\":\"WzFd\"}}",
         "not a JSON object"},
        {"{", "keyprovider input"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(envelopes); i++) {
        cl_bytes *res = NULL;
        size_t n = 0;
        struct cl_err be = {0};
        const char *t = envelopes[i][0];
        if (cl_cdh_unwrap_key(o.cdh, (const uint8_t *)t, strlen(t), &res, &n, &be) == 0 ||
            !strstr(be.msg, envelopes[i][1]))
            fail_msg("envelope case %zu: '%s'", i, be.msg);
    }
    cl_bytes *res = NULL;
    size_t n = 0;
    assert_int_equal(
        cl_cdh_unwrap_key(o.cdh, (const uint8_t *)"{}", CL_CDH_MAX_KEYPROVIDER + 1, &res, &n, &e),
        CL_ELIMIT);
    offline_stop(&o);
}

/* ---- the resource path against an in-process KBS and agent ---- */

enum kbs_mode { KBS_OK, KBS_STALE, KBS_DENY, KBS_403, KBS_404, KBS_500, KBS_GARBAGE };

struct world {
    char dir[64], aa_sock[96];
    cl_pkey *tee_key;
    struct cl_ttrpc_server *aa;
    struct cl_http_server *kbs;
    struct cl_cdh_config cfg;
    struct cl_cdh *cdh;
    /* the fakes' state (handlers run on server threads; the test reads between calls) */
    enum kbs_mode mode;
    int token_ttl; /* seconds until the minted token expires */
    int tokens_minted;
    int refresh_asks; /* GetToken("kbs-refresh") */
    int min_token;    /* KBS_STALE: tokens numbered below this are refused */
    bool same_token;  /* the agent keeps answering with its last token */
    char last_token[512];
    int kbs_hits;
    int served;
};

/* GetToken: {"token": "<h>.<{exp, n}>.<s>", "tee_keypair": PEM}. */
static int fake_get_token(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                          size_t *resp_len, struct cl_err *err)
{
    struct world *w = ctx;
    AttestationAgent__GetTokenRequest *r =
        attestation_agent__get_token_request__unpack(NULL, len, req);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "bad request");
    if (strcmp(r->tokentype, CL_AA_TOKEN_KBS_REFRESH) == 0)
        w->refresh_asks++;
    attestation_agent__get_token_request__free_unpacked(r, NULL);
    if (!w->same_token || !w->last_token[0]) {
        w->tokens_minted++;
        CL_AUTO(cl_str) *payload = cl_strdupf(
            "{\"exp\":%lld,\"n\":%d}", (long long)(cl_now_unix() + w->token_ttl), w->tokens_minted);
        CL_AUTO(cl_str) *p64 = cl_b64_encode(payload, strlen(payload), CL_B64_URL);
        snprintf(w->last_token, sizeof w->last_token, "eyJhbGciOiJFUzI1NiJ9.%s.c2ln", p64);
    }
    const char *tok = w->last_token;
    CL_AUTO(cl_str) *pem = cl_kbs_tee_key_pem(w->tee_key, err);
    CL_AUTO(json_t) *j = json_pack("{s:s, s:s}", "token", tok, "tee_keypair", pem);
    CL_AUTO(cl_str) *text = cl_json_compact(j);
    AttestationAgent__GetTokenResponse out;
    attestation_agent__get_token_response__init(&out);
    out.token.data = (uint8_t *)text;
    out.token.len = strlen(text);
    size_t n = protobuf_c_message_get_packed_size(&out.base);
    *resp = malloc(n);
    *resp_len = protobuf_c_message_pack(&out.base, *resp);
    return 0;
}

static const struct cl_ttrpc_method fake_aa_methods[] = {
    {CL_AA_SERVICE, "GetToken", fake_get_token},
};

/* The token number n from "Bearer h.<payload>.s". */
static int token_number(const char *auth)
{
    const char *p = auth ? strchr(auth, '.') : NULL;
    const char *q = p ? strchr(p + 1, '.') : NULL;
    if (!q)
        return -1;
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_b64_decode(p + 1, (size_t)(q - p - 1), CL_B64_URL, 256, &n, NULL);
    CL_AUTO(json_t) *j = b ? cl_json_parse((const char *)b, n, 2, NULL) : NULL;
    return j ? (int)json_integer_value(json_object_get(j, "n")) : -1;
}

static void fake_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct world *w = ctx;
    w->kbs_hits++;
    const char *auth = cl_http_req_header(req, "Authorization");
    int n = token_number(auth);
    static const char deny[] =
        "{\"type\":\"PolicyDeny\",\"detail\":\"resource policy denies access\"}";
    switch (w->mode) {
    case KBS_STALE:
        if (n < w->min_token) {
            cl_http_reply(resp, 401, "application/json",
                          "{\"detail\":\"token signed by an old key\"}", 39);
            return;
        }
        break;
    case KBS_DENY:
        cl_http_reply(resp, 401, "application/json", deny, strlen(deny));
        return;
    case KBS_403:
        cl_http_reply(resp, 403, "application/json", "{}", 2);
        return;
    case KBS_404:
        cl_http_reply(resp, 404, "application/json", "{}", 2);
        return;
    case KBS_500:
        cl_http_reply(resp, 500, "text/plain", "boom", 4);
        return;
    case KBS_GARBAGE:
        cl_http_reply(resp, 200, "application/json", "\x00garbage{", 9);
        return;
    case KBS_OK:
        break;
    }
    if (n < 1) {
        cl_http_reply(resp, 401, "application/json", "{}", 2);
        return;
    }
    w->served++;
    CL_AUTO(cl_str) *pt = cl_strdupf("%s#%d", req->path, w->served);
    CL_AUTO(json_t) *jwk = cl_jwk_from_pkey(w->tee_key, false, "ECDH-ES+A256KW", NULL);
    CL_AUTO(json_t) *jwe = cl_jwe_encrypt(jwk, pt, strlen(pt), NULL);
    CL_AUTO(cl_str) *body = cl_json_compact(jwe);
    cl_http_reply(resp, 200, "application/json", body, strlen(body));
}

static const struct cl_http_route fake_kbs_routes[] = {
    {"GET", "/kbs/v0/resource/*", fake_resource},
};

static void world_hub(struct world *w, long ttl, const char *url)
{
    CL_AUTO(cl_str) *toml =
        cl_strdupf("[aa]\naa_socket = \"unix://%s\"\n[kbc]\nname = \"cc_kbc\"\nurl = \"%s\"\n"
                   "resource_cache_ttl = %ld\n",
                   w->aa_sock, url, ttl);
    struct cl_err e = {0};
    if (cl_cdh_config_parse(toml, strlen(toml), &w->cfg, &e) != 0)
        fail_msg("%s", e.msg);
    w->cdh = cl_cdh_new(&w->cfg, &e);
    if (!w->cdh)
        fail_msg("%s", e.msg);
}

static int world_up(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    snprintf(w->dir, sizeof w->dir, "/tmp/cl-cdhw-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->aa_sock, sizeof w->aa_sock, "%s/aa.sock", w->dir);
    w->token_ttl = 3600;
    struct cl_err e = {0};
    w->tee_key = cl_pkey_generate("P-256", &e);
    assert_non_null(w->tee_key);
    CL_AUTO(cl_str) *addr = cl_strdupf("unix://%s", w->aa_sock);
    w->aa = cl_ttrpc_server_start(addr, fake_aa_methods, CL_ARRAY_LEN(fake_aa_methods), w, &e);
    if (!w->aa)
        fail_msg("%s", e.msg);
    const char *socks[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {.sockets = socks, .nsockets = 1, .threads = 1};
    w->kbs = cl_http_server_start(&o, fake_kbs_routes, CL_ARRAY_LEN(fake_kbs_routes), NULL, w, &e);
    if (!w->kbs)
        fail_msg("%s", e.msg);
    CL_AUTO(cl_str) *url = cl_strdupf("http://127.0.0.1:%u", cl_http_server_port(w->kbs, 0));
    world_hub(w, 300, url);
    *state = w;
    return 0;
}

static int world_down(void **state)
{
    struct world *w = *state;
    cl_cdh_free(w->cdh);
    cl_cdh_config_clear(&w->cfg);
    cl_http_server_stop(w->kbs);
    cl_ttrpc_server_stop(w->aa);
    EVP_PKEY_free(w->tee_key);
    rm_rf(w->dir);
    free(w);
    return 0;
}

static int get(struct world *w, const char *uri, char *out, size_t cap, struct cl_err *e)
{
    CL_AUTO(cl_secret) *v = NULL;
    int rc = cl_cdh_get_resource(w->cdh, uri, &v, e);
    if (rc == 0)
        snprintf(out, cap, "%.*s", (int)v->len, (const char *)v->data);
    return rc;
}

static void test_resource_cache(void **state)
{
    struct world *w = *state;
    char got[256];
    struct cl_err e = {0};
    struct cl_cdh_stats st;
    if (get(w, "kbs:///default/key/1", got, sizeof got, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(got, "/kbs/v0/resource/default/key/1#1");
    /* from the cache: the KBS is not asked again */
    assert_int_equal(get(w, "kbs:///default/key/1", got, sizeof got, &e), 0);
    assert_string_equal(got, "/kbs/v0/resource/default/key/1#1");
    /* another resource: fetched with the same token */
    assert_int_equal(get(w, "kbs:///default/key/2", got, sizeof got, &e), 0);
    assert_string_equal(got, "/kbs/v0/resource/default/key/2#2");
    cl_cdh_stats(w->cdh, &st);
    assert_int_equal(st.kbs_fetches, 2);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.tokens, 1);
    assert_int_equal(w->tokens_minted, 1);
    /* a query is part of what is cached and of what the KBS is asked */
    assert_int_equal(get(w, "kbs:///default/key/1?version=2", got, sizeof got, &e), 0);
    assert_int_equal(w->kbs_hits, 3);
    /* invalidation: the cache is emptied and the token dropped */
    cl_cdh_cache_invalidate(w->cdh);
    assert_int_equal(get(w, "kbs:///default/key/1", got, sizeof got, &e), 0);
    assert_string_equal(got, "/kbs/v0/resource/default/key/1#4");
    cl_cdh_stats(w->cdh, &st);
    assert_int_equal(st.tokens, 2);
    assert_int_equal(st.cache_hits, 1);
}

static void test_resource_ttl(void **state)
{
    struct world *w = *state;
    char got[256];
    struct cl_err e = {0};
    CL_AUTO(cl_str) *url = strdup(w->cfg.kbc_url);
    cl_cdh_free(w->cdh);
    cl_cdh_config_clear(&w->cfg);
    world_hub(w, 1, url); /* entries live one second */
    assert_int_equal(get(w, "kbs:///default/key/t", got, sizeof got, &e), 0);
    assert_int_equal(get(w, "kbs:///default/key/t", got, sizeof got, &e), 0);
    assert_int_equal(w->kbs_hits, 1);
    usleep(2100000);
    assert_int_equal(get(w, "kbs:///default/key/t", got, sizeof got, &e), 0);
    assert_string_equal(got, "/kbs/v0/resource/default/key/t#2");
    assert_int_equal(w->kbs_hits, 2);
    /* ttl 0: nothing is cached */
    cl_cdh_free(w->cdh);
    cl_cdh_config_clear(&w->cfg);
    world_hub(w, 0, url);
    assert_int_equal(get(w, "kbs:///default/key/t", got, sizeof got, &e), 0);
    assert_int_equal(get(w, "kbs:///default/key/t", got, sizeof got, &e), 0);
    assert_int_equal(w->kbs_hits, 4);
    struct cl_cdh_stats st;
    cl_cdh_stats(w->cdh, &st);
    assert_int_equal(st.cache_hits, 0);
    /* a token about to expire (inside the leeway) is renewed before use */
    w->token_ttl = CL_AA_TOKEN_LEEWAY_S / 2;
    cl_cdh_cache_invalidate(w->cdh);
    int before = w->tokens_minted;
    assert_int_equal(get(w, "kbs:///default/key/u", got, sizeof got, &e), 0);
    assert_int_equal(get(w, "kbs:///default/key/u", got, sizeof got, &e), 0);
    assert_int_equal(w->tokens_minted, before + 2);
}

static void test_resource_errors(void **state)
{
    struct world *w = *state;
    char got[256];
    struct cl_err e = {0};
    /* the KBS restarted with a new key: one refresh, then served */
    assert_int_equal(get(w, "kbs:///a/b/warm", got, sizeof got, &e), 0);
    w->mode = KBS_STALE;
    w->min_token = 2;
    if (get(w, "kbs:///a/b/c", got, sizeof got, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(w->refresh_asks, 1);
    /* refused with a fresh token too: EDENIED with the KBS's detail, one refresh only */
    w->mode = KBS_DENY;
    int hits = w->kbs_hits;
    assert_int_equal(get(w, "kbs:///a/b/d", got, sizeof got, &e), CL_EDENIED);
    assert_non_null(strstr(e.msg, "resource policy denies access"));
    assert_int_equal(w->kbs_hits - hits, 2);
    assert_int_equal(w->refresh_asks, 2);
    /* the agent has no newer token to give */
    w->same_token = true;
    assert_int_equal(get(w, "kbs:///a/b/e", got, sizeof got, &e), CL_EDENIED);
    assert_non_null(strstr(e.msg, "no newer one"));
    w->same_token = false;
    w->mode = KBS_404;
    assert_int_equal(get(w, "kbs:///a/b/f", got, sizeof got, &e), CL_ENOTFOUND);
    w->mode = KBS_403;
    assert_int_equal(get(w, "kbs:///a/b/g", got, sizeof got, &e), CL_EDENIED);
    /* 500: bounded retries, then EIO */
    w->mode = KBS_500;
    hits = w->kbs_hits;
    assert_int_equal(get(w, "kbs:///a/b/h", got, sizeof got, &e), CL_EIO);
    assert_int_equal(w->kbs_hits - hits, CL_CDH_GET_TRIES);
    assert_non_null(strstr(e.msg, "HTTP 500"));
    w->mode = KBS_GARBAGE;
    assert_int_not_equal(get(w, "kbs:///a/b/i", got, sizeof got, &e), 0);
    assert_non_null(strstr(e.msg, "KBS a/b/i: KBS reply"));
    /* a bad URI never reaches the KBS */
    hits = w->kbs_hits;
    assert_int_equal(get(w, "kbs:///a/../i", got, sizeof got, &e), CL_EINVAL);
    assert_int_equal(w->kbs_hits, hits);
    /* nothing failed was cached */
    w->mode = KBS_OK;
    assert_int_equal(get(w, "kbs:///a/b/h", got, sizeof got, &e), 0);
    /* the KBS goes away: EIO after the bounded attempts */
    cl_http_server_stop(w->kbs);
    w->kbs = NULL;
    assert_int_equal(get(w, "kbs:///a/b/j", got, sizeof got, &e), CL_EIO);
    /* cached resources are still served */
    assert_int_equal(get(w, "kbs:///a/b/h", got, sizeof got, &e), 0);
    /* the agent goes away: its error is named */
    cl_ttrpc_server_stop(w->aa);
    w->aa = NULL;
    cl_cdh_cache_invalidate(w->cdh);
    assert_int_not_equal(get(w, "kbs:///a/b/k", got, sizeof got, &e), 0);
    assert_non_null(strstr(e.msg, "attestation agent"));
}

static void test_cache_eviction(void **state)
{
    CL_AUTO(json_t) *map = json_object();
    for (int i = 0; i <= CL_CDH_CACHE_MAX; i++) {
        char k[32], val[32];
        snprintf(k, sizeof k, "r/t/%d", i);
        snprintf(val, sizeof val, "value %d", i);
        CL_AUTO(cl_str) *b = cl_b64_encode(val, strlen(val), CL_B64_STD);
        json_object_set_new(map, k, json_string(b));
    }
    struct offline o;
    offline_start(&o, map, 300);
    struct cl_err e = {0};
    for (int i = 0; i <= CL_CDH_CACHE_MAX; i++) {
        char uri[64];
        snprintf(uri, sizeof uri, "kbs:///r/t/%d", i);
        CL_AUTO(cl_secret) *v = NULL;
        assert_int_equal(cl_cdh_get_resource(o.cdh, uri, &v, &e), 0);
    }
    struct cl_cdh_stats st;
    cl_cdh_stats(o.cdh, &st);
    assert_int_equal(st.cache_hits, 0);
    CL_AUTO(cl_secret) *v1 = NULL, *v0 = NULL, *vx = NULL;
    assert_int_equal(cl_cdh_get_resource(o.cdh, "kbs:///r/t/1", &v1, &e), 0); /* still cached */
    cl_cdh_stats(o.cdh, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(cl_cdh_get_resource(o.cdh, "kbs:///r/t/0", &v0, &e),
                     0); /* evicted: read again */
    cl_cdh_stats(o.cdh, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_memory_equal(v0->data, "value 0", 7);
    assert_int_equal(cl_cdh_get_resource(o.cdh, "kbs:///r/t/absent", &vx, &e), CL_ENOTFOUND);
    offline_stop(&o);
}

/* ---- SecureMount ---- */

static json_t *opts(const char *kv[][2], size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i][0], json_string(kv[i][1]));
    return o;
}

static void test_secure_mount(void **state)
{
    CL_AUTO(cl_str) *keyval = strdup("0123456789abcdef0123456789abcdef");
    CL_AUTO(json_t) *map = b64_map1("default/disk/key", keyval, strlen(keyval));
    struct offline o;
    offline_start(&o, map, 300);
    char img[128], img2[128], keyfile[720], hdrdir[128];
    snprintf(img, sizeof img, "%s/disk.img", o.dir);
    snprintf(img2, sizeof img2, "%s/disk2.img", o.dir);
    snprintf(keyfile, sizeof keyfile, "%s/passphrase", o.dir);
    snprintf(hdrdir, sizeof hdrdir, "%s/headers", o.dir);
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(i ? img2 : img, "w");
        assert_non_null(f);
        assert_int_equal(ftruncate(fileno(f), 32 << 20), 0);
        fclose(f);
    }
    const char *v = vecdir();
    char vkey[700];
    snprintf(vkey, sizeof vkey, "%s/confidential-data-hub/hub/test_files/luks2-disk-passphrase",
             v ? v : "");
    if (!v || access(vkey, R_OK) != 0)
        assert_int_equal(cl_file_write_atomic(keyfile, "test", 4, 0600, NULL), 0);
    else
        snprintf(keyfile, sizeof keyfile, "%s", vkey); /* upstream's secure-mount test key */
    CL_AUTO(cl_str) *filekey = cl_strdupf("file://%s", keyfile);

    /* ---- one case per parameter rejection: nothing is written to the device ---- */
    struct {
        const char *volume_type, *mount_point;
        const char *kv[8][2];
        size_t n;
        int code;
        const char *msg;
    } bad[] = {
        {"alibaba-cloud-oss",
         "/mnt/x",
         {{"sourceType", "empty"}},
         1,
         CL_EUNSUPPORTED,
         "block-device"},
        {NULL, "/mnt/x", {{"sourceType", "empty"}}, 1, CL_EUNSUPPORTED, "block-device"},
        {"block-device", "/mnt/x", {{"encryptionType", "luks2"}}, 1, CL_EINVAL, "sourceType"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "plain"}, {"encryptionType", "luks2"}},
         2,
         CL_EINVAL,
         "sourceType"},
        {"block-device", "/mnt/x", {{"sourceType", "empty"}}, 1, CL_EUNSUPPORTED, "encryptionType"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "zfs"}},
         2,
         CL_EUNSUPPORTED,
         "encryptionType 'zfs'"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}, {"targetType", "tmpfs"}},
         3,
         CL_EINVAL,
         "targetType"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}, {"filesystemType", "xfs"}},
         3,
         CL_EUNSUPPORTED,
         "only ext4"},
        {"block-device",
         "mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}},
         2,
         CL_EINVAL,
         "absolute"},
        {"block-device",
         NULL,
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}},
         2,
         CL_EINVAL,
         "absolute"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"mapperName", "../control"},
          {"devicePath", img}},
         4,
         CL_EINVAL,
         "mapperName"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"mapperName", ".."},
          {"devicePath", img}},
         4,
         CL_EINVAL,
         "mapperName"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"dataIntegrity", "yes"},
          {"devicePath", img}},
         4,
         CL_EINVAL,
         "dataIntegrity"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}},
         2,
         CL_EINVAL,
         "deviceId or an absolute devicePath"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}, {"devicePath", "disk.img"}},
         3,
         CL_EINVAL,
         "deviceId or an absolute devicePath"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}, {"deviceId", "8-0"}},
         3,
         CL_EINVAL,
         "MAJ:MIN"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}, {"deviceId", "8:0x"}},
         3,
         CL_EINVAL,
         "MAJ:MIN"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"}, {"encryptionType", "luks2"}, {"deviceId", "4095:1048575"}},
         3,
         CL_ENOTFOUND,
         "no DEVNAME"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"devicePath", img},
          {"key", "plain:secret"}},
         4,
         CL_EINVAL,
         "sealed.*, kbs://... or file://"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"devicePath", img},
          {"key", "file:///nonexistent/k"}},
         4,
         CL_ENOTFOUND,
         "secure mount key"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"devicePath", img},
          {"key", "kbs:///default/disk/no"}},
         4,
         CL_ENOTFOUND,
         "secure mount key"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "empty"},
          {"encryptionType", "luks2"},
          {"devicePath", img},
          {"key", "sealed.x.y.z"}},
         4,
         CL_EPARSE,
         "secure mount key"},
        {"block-device",
         "/mnt/x",
         {{"sourceType", "encrypted"},
          {"encryptionType", "luks2"},
          {"devicePath", img},
          {"key", filekey}},
         4,
         CL_EPARSE,
         "no LUKS2 header"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *op = opts(bad[i].kv, bad[i].n);
        struct cl_cdh_mount_req req = {
            .volume_type = bad[i].volume_type, .options = op, .mount_point = bad[i].mount_point};
        struct cl_err e = {0};
        int rc = cl_cdh_secure_mount(o.cdh, &req, &e);
        if (rc != bad[i].code || !strstr(e.msg, bad[i].msg))
            fail_msg("mount case %zu: %d '%s'", i, rc, e.msg);
    }
    struct stat st;
    assert_int_not_equal(stat(hdrdir, &st), 0); /* no header (not even its folder) was created */

    /* ---- format an empty volume (detached header), then the header checks ---- */
    bool dm = cl_cdh_dm_available();
    bool had_control = access("/dev/mapper/control", F_OK) == 0;
    if (dm) {
        fprintf(stderr,
                "device-mapper is present: the secure-mount open step is not run by this unit test "
                "(it would map and mount a device on this machine)\n");
    } else {
        const char *kv[][2] = {{"sourceType", "empty"},
                               {"encryptionType", "luks2"},
                               {"devicePath", img},
                               {"targetType", "fileSystem"},
                               {"key", "kbs:///default/disk/key"},
                               {"mapperName", "cdh-test"}};
        CL_AUTO(json_t) *op = opts(kv, CL_ARRAY_LEN(kv));
        struct cl_cdh_mount_req req = {
            .volume_type = "block-device", .options = op, .mount_point = "/mnt/secure"};
        struct cl_err e = {0};
        assert_int_equal(cl_cdh_secure_mount(o.cdh, &req, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, "device-mapper"));
        assert_non_null(strstr(e.msg, "formatted"));
        fprintf(stderr,
                "skipped: opening the formatted volume needs device-mapper (/dev/mapper/control is "
                "absent here); format and header checks done\n");
        /* the detached header is where upstream puts it, named by base64url(device) */
        CL_AUTO(cl_str) *b = cl_b64_encode(img, strlen(img), CL_B64_URL);
        CL_AUTO(cl_str) *hdr = cl_strdupf("%s/%s.header", hdrdir, b);
        assert_int_equal(stat(hdr, &st), 0);
        assert_int_equal(st.st_size, 16 << 20);
        assert_int_equal(st.st_mode & 0777, 0600);
        CL_AUTO(cl_secret) *k = cl_secret_from(keyval, strlen(keyval));
        assert_int_equal(cl_cdh_luks_check(img, hdr, k, &e), 0);
        /* the header holds the magic and version 2 */
        FILE *f = fopen(hdr, "rb");
        uint8_t magic[8];
        assert_int_equal(fread(magic, 1, 8, f), 8);
        fclose(f);
        assert_memory_equal(magic, "LUKS\xba\xbe\x00\x02", 8);
        /* the data device itself holds no header (detached) */
        assert_int_equal(cl_cdh_luks_check(img, NULL, k, &e), CL_EPARSE);
        /* tamper twins: another key, a corrupted header */
        CL_AUTO(cl_secret) *wrong = cl_secret_from("another key", 11);
        assert_int_equal(cl_cdh_luks_check(img, hdr, wrong, &e), CL_EVERIFY);
        /* the same device again: the header exists, nothing is overwritten */
        assert_int_equal(cl_cdh_secure_mount(o.cdh, &req, &e), CL_EEXISTS);
    }

    /* ---- an encrypted volume with its header on disk (file:// key) ---- */
    size_t kn = 0;
    CL_AUTO(cl_bytes) *kb = cl_file_read(keyfile, 4096, &kn, NULL);
    assert_non_null(kb);
    CL_AUTO(cl_secret) *fk = cl_secret_from(kb, kn);
    struct cl_err e = {0};
    if (cl_cdh_luks_format(img2, NULL, fk, false, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cl_cdh_luks_check(img2, NULL, fk, &e), 0);
    if (!dm) {
        const char *kv[][2] = {{"sourceType", "encrypted"},
                               {"encryptionType", "luks2"},
                               {"devicePath", img2},
                               {"key", filekey}};
        CL_AUTO(json_t) *op = opts(kv, CL_ARRAY_LEN(kv));
        struct cl_cdh_mount_req req = {
            .volume_type = "block-device", .options = op, .mount_point = "/mnt/enc"};
        assert_int_equal(cl_cdh_secure_mount(o.cdh, &req, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, "a LUKS2 volume"));
    }
    /* a header whose parameters are not upstream's is refused */
    CL_AUTO(cl_secret) *k32 = cl_secret_from(keyval, strlen(keyval));
    FILE *f = fopen(img2, "r+b");
    assert_non_null(f);
    uint8_t zero[4096] = {0};
    assert_int_equal(fwrite(zero, 1, sizeof zero, f), sizeof zero); /* wipe the primary header */
    fclose(f);
    int rc = cl_cdh_luks_check(img2, NULL, fk, &e);
    /* LUKS2 keeps a second header copy: either it still opens, or the check refuses */
    assert_true(rc == 0 || rc == CL_EPARSE);
    assert_int_equal(cl_cdh_luks_check(img2, NULL, k32, &e), rc == 0 ? CL_EVERIFY : CL_EPARSE);
    /* hmac-sha256 integrity: formatted as upstream asks, or refused with a clear error where the
     * kernel lacks dm-integrity (libcryptsetup checks it at format time) */
    rc = cl_cdh_luks_format(img2, NULL, k32, true, &e);
    if (rc == 0) {
        assert_int_equal(cl_cdh_luks_check(img2, NULL, k32, &e), 0);
    } else {
        assert_int_equal(rc, CL_EIO);
        assert_non_null(strstr(e.msg, "formatting"));
        fprintf(stderr, "note: LUKS2 with hmac-sha256 integrity cannot be formatted here: %s\n",
                e.msg);
    }
    /* a device that does not exist */
    assert_int_equal(cl_cdh_luks_format("/nonexistent/disk", NULL, fk, false, &e), CL_EIO);
    /* libdevmapper creates /dev/mapper/control when it probes a kernel without device-mapper:
     * leave the machine as it was */
    if (!dm && !had_control && access("/dev/mapper/control", F_OK) == 0) {
        unlink("/dev/mapper/control");
        rmdir("/dev/mapper");
    }
    offline_stop(&o);
}

/* libcryptsetup is opened on the first secure mount: when it cannot be (not installed, or a
 * library without the expected symbols) every entry point says so, naming the library, and
 * nothing is written. Then the real library again. */
static void test_cryptsetup_absent(void **state)
{
    CL_AUTO(json_t) *map = json_object();
    struct offline o;
    offline_start(&o, map, 300);
    char img[128], hdrdir[128];
    snprintf(img, sizeof img, "%s/disk.img", o.dir);
    snprintf(hdrdir, sizeof hdrdir, "%s/headers", o.dir);
    FILE *f = fopen(img, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 32 << 20), 0);
    fclose(f);
    CL_AUTO(cl_secret) *k = cl_secret_from("0123456789abcdef", 16);
    const char *kv[][2] = {
        {"sourceType", "empty"}, {"encryptionType", "luks2"}, {"devicePath", img}};
    CL_AUTO(json_t) *op = opts(kv, CL_ARRAY_LEN(kv));
    struct cl_cdh_mount_req req = {
        .volume_type = "block-device", .options = op, .mount_point = "/mnt/x"};
    struct {
        const char *soname, *msg;
    } cases[] = {
        {"libcloister-absent.so.0", "libcloister-absent.so.0 (libcryptsetup) cannot be loaded"},
        {"libz.so.1", "libz.so.1 (libcryptsetup) has no crypt_init"}, /* a library, but not
                                                                         libcryptsetup's ABI */
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        cl_cdh_cryptsetup_soname_set(cases[i].soname);
        struct cl_err e = {0};
        assert_int_equal(cl_cdh_cryptsetup_load(&e), CL_EUNSUPPORTED);
        if (!strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: '%s'", i, e.msg);
        memset(&e, 0, sizeof e);
        assert_int_equal(cl_cdh_luks_format(img, NULL, k, false, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, cases[i].soname));
        memset(&e, 0, sizeof e);
        assert_int_equal(cl_cdh_luks_check(img, NULL, k, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, cases[i].soname));
        memset(&e, 0, sizeof e);
        assert_int_equal(cl_cdh_secure_mount(o.cdh, &req, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, cases[i].soname));
        assert_int_equal(cl_cdh_luks_check(img, NULL, k, NULL), CL_EUNSUPPORTED); /* NULL err */
    }
    struct stat st;
    assert_int_not_equal(stat(hdrdir, &st), 0); /* no header written */
    uint8_t head[8], zero[8] = {0};
    f = fopen(img, "rb");
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    assert_memory_equal(head, zero, sizeof head); /* nor anything on the device */
    cl_cdh_cryptsetup_soname_set(NULL);
    struct cl_err e = {0};
    if (cl_cdh_cryptsetup_load(&e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cl_cdh_luks_check(img, NULL, k, &e),
                     CL_EPARSE); /* the real library: no header */
    offline_stop(&o);
}

/* Run first: libcryptsetup, libcurl, libmicrohttpd and tss2 are opened on first use, so a
 * process linking the hub, the agent, net/ and tee/ maps none of them before it uses them (a
 * call that the forwarders miss would make the linker add the library back). */
static void test_heavy_libraries_not_mapped(void **state)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *maps = cl_file_read("/proc/self/maps", 1u << 22, &n, NULL);
    assert_non_null(maps);
    static const char *const libs[] = {"/libcryptsetup.so", "/libcurl.so",   "/libmicrohttpd.so",
                                       "/libtss2-",         "/libgnutls.so", "/libdevmapper.so"};
    for (size_t i = 0; i < CL_ARRAY_LEN(libs); i++)
        if (strstr((const char *)maps, libs[i]))
            fail_msg("%s is mapped before first use", libs[i]);
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    /* argon2id at cryptsetup's defaults costs seconds and up to 1 GiB per keyslot: the LUKS2
     * cases use the test-only fast PBKDF (the parameters checked here do not depend on it) */
    setenv("CLOISTER_LUKS_FAST_PBKDF_INSECURE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heavy_libraries_not_mapped),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_config_vectors),
        cmocka_unit_test(test_config_rejections),
        cmocka_unit_test(test_keyprovider_vector),
        cmocka_unit_test_setup_teardown(test_resource_cache, world_up, world_down),
        cmocka_unit_test_setup_teardown(test_resource_ttl, world_up, world_down),
        cmocka_unit_test_setup_teardown(test_resource_errors, world_up, world_down),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_secure_mount),
        cmocka_unit_test(test_cryptsetup_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
