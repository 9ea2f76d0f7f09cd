/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pbjson: protobuf-c messages ↔ the Kata agent's serde JSON.
 *   - the serde shape, rule by rule (names, type_, defaults, null/[]/{}, optional, oneof,
 *     bytes, 64-bit integers), each with a case that breaks it;
 *   - JSON → protobuf refusals (unknown key by name, range, type, depth), one per branch;
 *   - unpack bounds (truncated, bad wire type, the allocation budget);
 *   - differential: every genpolicy testcase request as normalized by kata_normalize.py
 *     (derived/genpolicy-testcases-normalized) → protobuf → wire → protobuf → JSON must give
 *     back the normalized JSON exactly; and every recorded regorus-kata agent input must come
 *     back equal except for the fields the protos gained or lost since (listed in `drift`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "agent.pb-c.h"
#include "agent/agent.h"
#include "oci.pb-c.h"
#include "types.pb-c.h"
#include "json/json.h"

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    assert_non_null(j);
    return j;
}

/* json → pb (strict) → wire → pb → json */
static json_t *roundtrip(const ProtobufCMessageDescriptor *d, const json_t *in,
                         enum cl_agent_j2p_mode mode)
{
    struct cl_err err = {0};
    ProtobufCMessage *m = cl_agent_json_to_pb(d, in, mode, &err);
    if (!m)
        fail_msg("json_to_pb: %s", err.msg);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *wire = malloc(n + 1);
    n = protobuf_c_message_pack(m, wire);
    cl_agent_pb_free(m);
    m = cl_agent_pb_unpack(d, wire, n, &err);
    free(wire);
    if (!m)
        fail_msg("unpack: %s", err.msg);
    json_t *out = cl_agent_pb_to_json(m, &err);
    cl_agent_pb_free(m);
    if (!out)
        fail_msg("pb_to_json: %s", err.msg);
    return out;
}

static void assert_json_eq(const json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got  %s\nwant %s", g, w);
    }
    json_decref(want);
}

static void test_serde_defaults(void **state)
{
    /* everything unset: every field present with its default */
    json_t *in = J("{}");
    json_t *out = roundtrip(&grpc__storage__descriptor, in, CL_AGENT_J2P_STRICT);
    assert_json_eq(
        out,
        "{\"driver\":\"\",\"driver_options\":[],\"source\":\"\",\"fstype\":\"\",\"options\":[],"
        "\"mount_point\":\"\",\"fs_group\":null,\"shared\":false}");
    json_decref(out);
    out = roundtrip(&grpc__device__descriptor, in, CL_AGENT_J2P_STRICT);
    /* Rust keyword: type → type_ */
    assert_json_eq(
        out,
        "{\"id\":\"\",\"type_\":\"\",\"vm_path\":\"\",\"container_path\":\"\",\"options\":[]}");
    json_decref(out);
    /* proto3 optional: null when unset, the value when set (even a default value) */
    json_t *mc = J("{\"swap\":false,\"period_secs\":7}");
    out = roundtrip(&grpc__mem_agent_memcg_config__descriptor, mc, CL_AGENT_J2P_STRICT);
    assert_json_eq(out,
                   "{\"disabled\":null,\"swap\":false,\"swappiness_max\":null,\"period_secs\":7,"
                   "\"period_psi_percent_limit\":null,\"eviction_psi_percent_limit\":null,"
                   "\"eviction_run_aging_count_min\":null}");
    json_decref(out);
    json_decref(mc);
    json_decref(in);
}

static void test_serde_shapes(void **state)
{
    /* maps → objects, bytes → arrays of ints, enums → ints, int64 exact, oneof wrapped */
    json_t *in = J("{\"Annotations\":{\"a\":\"1\",\"b\":\"\"},\"Linux\":{\"Sysctl\":{},\"Seccomp\":"
                   "{\"Syscalls\":"
                   "[{\"Names\":[\"x\"],\"ErrnoRet\":{\"errnoret\":1}},{\"Names\":[\"y\"]}]},"
                   "\"Resources\":{\"Memory\":{\"Limit\":-9007199254740993}}}}");
    json_t *out = roundtrip(&grpc__spec__descriptor, in, CL_AGENT_J2P_STRICT);
    assert_json_eq(json_object_get(out, "Annotations"), "{\"a\":\"1\",\"b\":\"\"}");
    json_t *sc =
        json_object_get(json_object_get(json_object_get(out, "Linux"), "Seccomp"), "Syscalls");
    assert_json_eq(json_object_get(json_array_get(sc, 0), "ErrnoRet"), "{\"errnoret\":1}");
    assert_true(json_is_null(json_object_get(json_array_get(sc, 1), "ErrnoRet")));
    json_t *mem =
        json_object_get(json_object_get(json_object_get(out, "Linux"), "Resources"), "Memory");
    assert_int_equal(json_integer_value(json_object_get(mem, "Limit")), -9007199254740993LL);
    assert_true(json_is_null(json_object_get(out, "Hooks")));
    assert_json_eq(json_object_get(json_object_get(out, "Linux"), "Sysctl"), "{}");
    json_decref(out);
    json_decref(in);

    in = J("{\"data\":[0,255,7]}");
    out = roundtrip(&grpc__write_stream_request__descriptor, in, CL_AGENT_J2P_STRICT);
    assert_json_eq(json_object_get(out, "data"), "[0,255,7]");
    json_decref(out);
    json_decref(in);
    in = J("{\"data\":\"hi\"}"); /* agent-ctl convenience: a string is its bytes */
    out = roundtrip(&grpc__write_stream_request__descriptor, in, CL_AGENT_J2P_STRICT);
    assert_json_eq(json_object_get(out, "data"), "[104,105]");
    json_decref(out);
    json_decref(in);

    in = J(
        "{\"interface\":{\"IPAddresses\":[{\"family\":\"v6\",\"address\":\"::1\"}],\"mtu\":1500}}");
    out = roundtrip(&grpc__update_interface_request__descriptor, in, CL_AGENT_J2P_STRICT);
    json_t *itf = json_object_get(out, "interface");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(itf, "IPAddresses"), 0), "family")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(itf, "mtu")), 1500);
    json_decref(out);
    json_decref(in);
    /* a uint64 above INT64_MAX becomes a real (jansson's integers are signed) */
    Types__Interface itf_pb;
    types__interface__init(&itf_pb);
    itf_pb.mtu = UINT64_MAX;
    struct cl_err err = {0};
    out = cl_agent_pb_to_json(&itf_pb.base, &err);
    assert_non_null(out);
    assert_true(json_is_real(json_object_get(out, "mtu")));
    json_decref(out);
}

static void test_j2p_refusals(void **state)
{
    static const struct {
        const ProtobufCMessageDescriptor *d;
        const char *json, *needle;
        int code;
    } cases[] = {
        {&grpc__create_container_request__descriptor, "{\"bogus\":1}", "bogus: no such field",
         CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"OCI\":{\"Process\":{\"Userx\":{}}}}",
         "OCI.Process.Userx", CL_EINVAL},
        {&grpc__create_container_request__descriptor,
         "{\"OCI\":{\"Process\":{\"User\":{\"UID\":4294967296}}}}",
         "OCI.Process.User.UID: out of range", CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"stdin_port\":-1}",
         "stdin_port: out of range", CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"container_id\":5}",
         "a string is expected", CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"sandbox_pidns\":1}",
         "a boolean is expected", CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"storages\":{}}", "an array is expected",
         CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"storages\":[null]}",
         "null is not a message", CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"OCI\":{\"Annotations\":[]}}",
         "an object is expected (map)", CL_EINVAL},
        {&grpc__create_container_request__descriptor, "{\"OCI\":{\"Version\":1.5}}",
         "a string is expected", CL_EINVAL},
        {&grpc__write_stream_request__descriptor, "{\"data\":[256]}", "data: out of range",
         CL_EINVAL},
        {&grpc__write_stream_request__descriptor, "{\"data\":5}", "array of byte values",
         CL_EINVAL},
        {&grpc__update_interface_request__descriptor,
         "{\"interface\":{\"IPAddresses\":[{\"family\":\"v9\"}]}}", "no such enum value",
         CL_EINVAL},
        {&grpc__spec__descriptor, "{\"Linux\":{\"Seccomp\":{\"Syscalls\":[{\"ErrnoRet\":3}]}}}",
         "a oneof is null", CL_EINVAL},
        {&grpc__spec__descriptor, "[]", "an object is expected", CL_EINVAL},
        {&grpc__copy_file_request__descriptor, "{\"file_size\":1.5}", "an integer is expected",
         CL_EINVAL},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        json_t *j = J(cases[i].json);
        struct cl_err err = {0};
        ProtobufCMessage *m = cl_agent_json_to_pb(cases[i].d, j, CL_AGENT_J2P_STRICT, &err);
        if (m || !strstr(err.msg, cases[i].needle))
            fail_msg("case %zu %s: got %s '%s'", i, cases[i].json, m ? "a message" : "error",
                     err.msg);
        assert_int_equal(err.code, cases[i].code);
        json_decref(j);
    }
    /* lenient drops the unknown key (serde's behaviour) */
    json_t *j = J("{\"bogus\":1,\"container_id\":\"x\"}");
    struct cl_err err = {0};
    ProtobufCMessage *m = cl_agent_json_to_pb(&grpc__create_container_request__descriptor, j,
                                              CL_AGENT_J2P_LENIENT, &err);
    assert_non_null(m);
    assert_string_equal(((Grpc__CreateContainerRequest *)m)->container_id, "x");
    cl_agent_pb_free(m);
    json_decref(j);
}

static void test_j2p_depth(void **state)
{
    /* Kata's schema is not recursive, so a deep document is refused by the schema walk (its
     * second level already names no field); CL_AGENT_MAX_DEPTH guards schemas that are. A
     * 1000-deep document must fail cleanly, strict and lenient. */
    size_t depth = 1000;
    char *s = malloc(depth * 8 + 16);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(s + n, "{\"OCI\":");
    n += (size_t)sprintf(s + n, "{}");
    for (size_t i = 0; i < depth; i++)
        s[n++] = '}';
    s[n] = 0;
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    free(s);
    assert_non_null(j);
    struct cl_err err = {0};
    assert_null(cl_agent_json_to_pb(&grpc__create_container_request__descriptor, j,
                                    CL_AGENT_J2P_STRICT, &err));
    assert_int_equal(err.code, CL_EINVAL);
    assert_non_null(strstr(err.msg, "OCI.OCI: no such field"));
    /* lenient: the unknown key is dropped, the rest is an empty Spec */
    ProtobufCMessage *m = cl_agent_json_to_pb(&grpc__create_container_request__descriptor, j,
                                              CL_AGENT_J2P_LENIENT, &err);
    assert_non_null(m);
    assert_non_null(((Grpc__CreateContainerRequest *)m)->oci);
    cl_agent_pb_free(m);
    json_decref(j);
}

static void test_unpack_bounds(void **state)
{
    struct cl_err err = {0};
    /* truncated: field 1 (string) declares 10 bytes, 2 follow */
    static const uint8_t trunc[] = {0x0a, 0x0a, 'a', 'b'};
    assert_null(
        cl_agent_pb_unpack(&grpc__create_container_request__descriptor, trunc, sizeof trunc, &err));
    assert_int_equal(err.code, CL_EPARSE);
    /* wrong wire type for a message field (varint for OCI = 6) */
    static const uint8_t wt[] = {0x30, 0x01};
    assert_null(
        cl_agent_pb_unpack(&grpc__create_container_request__descriptor, wt, sizeof wt, &err));
    assert_int_equal(err.code, CL_EPARSE);
    /* a string that is not UTF-8 must not reach the policy as text */
    static const uint8_t bad_utf8[] = {0x0a, 0x02, 0xc3, 0x28};
    ProtobufCMessage *m = cl_agent_pb_unpack(&grpc__create_container_request__descriptor, bad_utf8,
                                             sizeof bad_utf8, &err);
    if (m) { /* protobuf-c without UTF-8 checks: the JSON step refuses it */
        assert_null(cl_agent_pb_to_json(m, &err));
        assert_int_equal(err.code, CL_EPARSE);
        cl_agent_pb_free(m);
    }
    /* 4 MiB of empty Storage entries: 2 bytes each on the wire, ~100 bytes each unpacked */
    size_t len = 4u << 20;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i += 2) {
        buf[i] = 0x1a; /* CreateSandboxRequest.storages = 3, length-delimited */
        buf[i + 1] = 0x00;
    }
    memset(&err, 0, sizeof err);
    m = cl_agent_pb_unpack(&grpc__create_sandbox_request__descriptor, buf, len, &err);
    assert_null(m);
    assert_int_equal(err.code, CL_ELIMIT);
    /* a smaller flood unpacks but is refused when turned into JSON (node budget) */
    len = 600000;
    m = cl_agent_pb_unpack(&grpc__create_sandbox_request__descriptor, buf, len, &err);
    assert_non_null(m);
    assert_null(cl_agent_pb_to_json(m, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    cl_agent_pb_free(m);
    free(buf);
}

/* ---- differential against kata_normalize.py's output and the recorded agent inputs ---- */

static const char *vectors(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    static char probe[1024];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/kata-policy", v ? v : "/nonexistent");
    return v && stat(probe, &st) == 0 ? v : NULL;
}

static void test_diff_genpolicy(void **state)
{
    const char *root = vectors();
    if (!root)
        skip();
    static const char *const dirs[] = {"addarpneighbors",
                                       "copyfile",
                                       "createsandbox",
                                       "updateinterface",
                                       "updateroutes",
                                       "createcontainer/cgroup_mount_extras",
                                       "createcontainer/env_vars",
                                       "createcontainer/generate_name",
                                       "createcontainer/gid",
                                       "createcontainer/gpu_vfio_cdi",
                                       "createcontainer/ignored_fields",
                                       "createcontainer/network_namespace",
                                       "createcontainer/security_context/fsgroup",
                                       "createcontainer/security_context/runas",
                                       "createcontainer/security_context/supplemental_groups",
                                       "createcontainer/sysctls",
                                       "createcontainer/volumes/config_map",
                                       "createcontainer/volumes/container_image",
                                       "createcontainer/volumes/emptydir",
                                       "state/createcontainer",
                                       "state/execprocess",
                                       "state/execprocessdeployment"};
    size_t checked = 0, copyfile = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(dirs); i++) {
        char p[1200];
        snprintf(p, sizeof p,
                 "%s/kata-policy/derived/genpolicy-testcases-normalized/%s/testcases.json", root,
                 dirs[i]);
        json_error_t je;
        json_t *cases = json_load_file(p, 0, &je);
        if (!cases)
            fail_msg("%s: %s", p, je.text);
        size_t k;
        json_t *c;
        json_array_foreach(cases, k, c)
        {
            const char *kind = json_string_value(json_object_get(c, "kind"));
            if (strcmp(kind, "CopyFileRequest") == 0) {
                copyfile++; /* policy form, built by the service (test_agent_policy checks it) */
                continue;
            }
            const struct cl_agent_rpc *rpc = cl_agent_rpc_by_request(kind);
            assert_non_null(rpc);
            json_t *want = json_object_get(c, "request");
            json_t *got = roundtrip(rpc->req, want, CL_AGENT_J2P_STRICT);
            if (!json_equal(got, want)) {
                char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
                char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
                fail_msg("%s #%zu %s:\n got  %.2000s\n want %.2000s", dirs[i], k, kind, g, w);
            }
            json_decref(got);
            checked++;
        }
        json_decref(cases);
    }
    printf("genpolicy normalized requests equal after protobuf round trip: %zu (+%zu CopyFile in "
           "policy form)\n",
           checked, copyfile);
    assert_int_equal(checked + copyfile, 108);
}

/* Fields the protos gained (absent from the older agent's recordings) or lost since, as
 * path suffixes with array indices removed. */
static const char *const drift[] = {
    ".storages.shared",            /* Storage.shared */
    "ContainerRequest.stdin_port", /* CreateContainerRequest stdio ports */
    "ContainerRequest.stdout_port",
    "ContainerRequest.stderr_port",
    "ProcessRequest.stdin_port", /* ExecProcessRequest stdio ports */
    "ProcessRequest.stdout_port",
    "ProcessRequest.stderr_port",
    ".interface.devicePath", /* types.Interface (was pciPath) */
    ".interface.pciPath",
    ".Routes.flags", /* types.Route.flags, mtu */
    ".Routes.mtu",
};

static bool drifted(const char *path)
{
    char flat[512];
    size_t n = 0;
    for (const char *p = path; *p && n + 1 < sizeof flat; p++) {
        if (*p == '[') {
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
            continue;
        }
        flat[n++] = *p;
    }
    flat[n] = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(drift); i++) {
        size_t dl = strlen(drift[i]);
        if (n >= dl && strcmp(flat + n - dl, drift[i]) == 0)
            return true;
    }
    return false;
}

/* Compares ignoring drifted keys; records the first other difference in `where`. */
static bool eq_modulo_drift(const json_t *a, const json_t *b, char *where, size_t n,
                            const char *path)
{
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *v;
        char sub[512];
        json_object_foreach((json_t *)(uintptr_t)a, k, v)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            json_t *w = json_object_get(b, k);
            if (!w) {
                if (drifted(sub))
                    continue;
                snprintf(where, n, "%s only in the agent's JSON", sub);
                return false;
            }
            if (!eq_modulo_drift(v, w, where, n, sub))
                return false;
        }
        json_object_foreach((json_t *)(uintptr_t)b, k, v)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (!json_object_get(a, k) && !drifted(sub)) {
                snprintf(where, n, "%s only in the recording", sub);
                return false;
            }
        }
        return true;
    }
    if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a); i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (!eq_modulo_drift(json_array_get(a, i), json_array_get(b, i), where, n, sub))
                return false;
        }
        return true;
    }
    if (json_equal(a, b))
        return true;
    snprintf(where, n, "%s differs", path);
    return false;
}

static void test_diff_regorus(void **state)
{
    const char *root = vectors();
    if (!root)
        skip();
    static const char *const dirs[] = {
        "k8s-policy-job", "k8s-policy-pod",  "k8s-policy-rc",          "pod-cm1", "pod-exec",
        "pod-lifecycle",  "pod-many-layers", "pod-persistent-volumes", "web"};
    size_t checked = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(dirs); i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/kata-policy/regorus-kata/%s/cases.jsonl", root, dirs[i]);
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            json_error_t je;
            json_t *c = json_loads(line, 0, &je);
            const char *ep = json_string_value(json_object_get(c, "ep"));
            const struct cl_agent_rpc *rpc = cl_agent_rpc_by_request(ep);
            if (!rpc || strcmp(ep, "CopyFileRequest") == 0) {
                json_decref(c);
                continue;
            }
            json_t *rec = json_object_get(c, "input");
            json_t *got = roundtrip(rpc->req, rec, CL_AGENT_J2P_LENIENT);
            char where[600] = "";
            if (!eq_modulo_drift(got, rec, where, sizeof where, ep))
                fail_msg("%s seq %lld: %s", dirs[i],
                         (long long)json_integer_value(json_object_get(c, "seq")), where);
            json_decref(got);
            json_decref(c);
            checked++;
        }
        free(line);
        fclose(f);
    }
    printf("recorded agent inputs equal after protobuf round trip (modulo proto drift): %zu\n",
           checked);
    assert_true(checked > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serde_defaults), cmocka_unit_test(test_serde_shapes),
        cmocka_unit_test(test_j2p_refusals),   cmocka_unit_test(test_j2p_depth),
        cmocka_unit_test(test_unpack_bounds),  cmocka_unit_test(test_diff_genpolicy),
        cmocka_unit_test(test_diff_regorus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
