/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy gate and the service's ordering.
 *   gate (cl_agent_policy_*): boolean and {allowed, ops} values, the state patch applied only
 *   on allow, undefined/odd values/conflicts as errors, prints in the denial, the
 *   AllowRequestsFailingPolicy switch, Rego v0 accepted, SetPolicy's atomic swap (a parse
 *   error keeps the old policy and its state; threads deciding while the policy is replaced
 *   never see a missing one), limits.
 *   service (an in-process agent on a unix socket, driven over ttrpc): an action runs only
 *   after an allow and after the state patch; ReadStdout is read then redacted on deny;
 *   CopyFile is gated in its policy form; the policy sources' order (--policy, init-data,
 *   default) and a malformed init-data device stopping the start; Health never gated.
 * The actions here are a test table through cl_agent_opts.actions (the seam itself).
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aa/aa.h"
#include "agent.pb-c.h"
#include "agent_int.h"
#include "health.pb-c.h"
#include "test_agent_util.h"

static struct cl_agent_policy *load(const char *text)
{
    struct cl_err err = {0};
    struct cl_agent_policy *p = cl_agent_policy_new(text, strlen(text), "test", &err);
    if (!p)
        fail_msg("policy: %s", err.msg);
    return p;
}

static int check(struct cl_agent_policy *p, const char *entry, const char *input,
                 struct cl_err *err)
{
    json_error_t je;
    json_t *in = json_loads(input, 0, &je);
    assert_non_null(in);
    int rc = cl_agent_policy_check(p, entry, in, err);
    json_decref(in);
    return rc;
}

static const char *const pol_state =
    "package agent_policy\n"
    "default AllowRequestsFailingPolicy := false\n"
    "default CreateContainerRequest := {\"allowed\": false}\n"
    "CreateContainerRequest := {\"allowed\": true, \"ops\": [{\"op\": \"add\", \"path\": "
    "\"/pstate/\" , \"value\": 1}]} "
    "if { false }\n"
    "CreateContainerRequest := {\"allowed\": true, \"ops\": ops} if {\n"
    "  input.container_id != \"bad\"\n"
    "  not data.pstate[input.container_id]\n"
    "  ops := [{\"op\": \"add\", \"path\": concat(\"\", [\"/pstate/\", input.container_id]), "
    "\"value\": true}]\n"
    "}\n"
    "RemoveContainerRequest := {\"allowed\": true, \"ops\": [{\"op\": \"remove\", \"path\": "
    "concat(\"\", "
    "[\"/pstate/\", input.container_id])}]} if { true }\n"
    "StartContainerRequest if { data.pstate[input.container_id] }\n"
    "default StartContainerRequest := false\n"
    "ExecProcessRequest if { print(\"exec wanted\", input.container_id); false }\n"
    "default ExecProcessRequest := false\n"
    "StatsContainerRequest := 7\n"
    "PauseContainerRequest := true if { true }\n"
    "PauseContainerRequest := false if { true }\n";

static void test_gate_values_and_state(void **state)
{
    struct cl_agent_policy *p = load(pol_state);
    struct cl_err err = {0};
    assert_int_equal(check(p, "CreateContainerRequest", "{\"container_id\":\"c1\"}", &err), 0);
    json_t *d = cl_agent_policy_data(p);
    assert_true(json_is_true(json_object_get(json_object_get(d, "pstate"), "c1")));
    json_decref(d);
    /* the state now refuses a second c1 and lets c1 start */
    assert_int_equal(check(p, "CreateContainerRequest", "{\"container_id\":\"c1\"}", &err),
                     CL_EDENIED);
    assert_int_equal(check(p, "StartContainerRequest", "{\"container_id\":\"c1\"}", &err), 0);
    assert_int_equal(check(p, "StartContainerRequest", "{\"container_id\":\"c2\"}", &err),
                     CL_EDENIED);
    /* a denied request patches nothing */
    assert_int_equal(check(p, "CreateContainerRequest", "{\"container_id\":\"bad\"}", &err),
                     CL_EDENIED);
    d = cl_agent_policy_data(p);
    assert_null(json_object_get(json_object_get(d, "pstate"), "bad"));
    json_decref(d);
    assert_int_equal(check(p, "RemoveContainerRequest", "{\"container_id\":\"c1\"}", &err), 0);
    /* removing a member that is gone: the patch fails → error (INTERNAL), not an allow */
    assert_int_equal(check(p, "RemoveContainerRequest", "{\"container_id\":\"c1\"}", &err),
                     CL_EVERIFY);
    assert_non_null(strstr(err.msg, "state patch"));
    /* prints are appended to the denial */
    assert_int_equal(check(p, "ExecProcessRequest", "{\"container_id\":\"c9\"}", &err), CL_EDENIED);
    assert_non_null(strstr(err.msg, "ExecProcessRequest is blocked by policy: "));
    assert_non_null(strstr(err.msg, "exec wanted c9"));
    /* undefined, a non-boolean value and a conflict are errors */
    assert_int_equal(check(p, "WaitProcessRequest", "{}", &err), CL_EVERIFY);
    assert_non_null(strstr(err.msg, "does not define it"));
    assert_int_equal(check(p, "StatsContainerRequest", "{}", &err), CL_EVERIFY);
    assert_int_equal(check(p, "PauseContainerRequest", "{}", &err), CL_EVERIFY);
    assert_false(cl_agent_policy_allows_failures(p));
    cl_agent_policy_free(p);
}

static void test_gate_allow_failures(void **state)
{
    struct cl_agent_policy *p = load("package agent_policy\nAllowRequestsFailingPolicy := true\n"
                                     "default ExecProcessRequest := false\n");
    struct cl_err err = {0};
    assert_true(cl_agent_policy_allows_failures(p));
    assert_int_equal(check(p, "ExecProcessRequest", "{}", &err), 0);
    assert_int_equal(check(p, "WaitProcessRequest", "{}", &err), 0);
    /* replacing with a policy that leaves it undefined turns it off (fail closed) */
    const char *t = "package agent_policy\ndefault ExecProcessRequest := false\n";
    assert_int_equal(cl_agent_policy_replace(p, t, strlen(t), "test", &err), 0);
    assert_false(cl_agent_policy_allows_failures(p));
    assert_int_equal(check(p, "ExecProcessRequest", "{}", &err), CL_EDENIED);
    /* anything but true is off */
    t = "package agent_policy\nAllowRequestsFailingPolicy := \"yes\"\ndefault ExecProcessRequest "
        ":= false\n";
    assert_int_equal(cl_agent_policy_replace(p, t, strlen(t), "test", &err), 0);
    assert_false(cl_agent_policy_allows_failures(p));
    cl_agent_policy_free(p);
}

static void test_gate_load_errors(void **state)
{
    struct cl_err err = {0};
    /* v0 accepted (warning), v1 preferred */
    const char *v0 = "package agent_policy\nCreateContainerRequest { input.x == 1 }\n";
    struct cl_agent_policy *p = cl_agent_policy_new(v0, strlen(v0), "v0", &err);
    assert_non_null(p);
    assert_int_equal(check(p, "CreateContainerRequest", "{\"x\":1}", &err), 0);
    /* replace: a parse error and a compile error keep the old policy and its state */
    const char *bad = "package agent_policy\nx := ";
    assert_int_equal(cl_agent_policy_replace(p, bad, strlen(bad), "bad", &err), CL_EPARSE);
    const char *unsafe = "package agent_policy\nCreateContainerRequest if { x == 1 }\n";
    assert_int_equal(cl_agent_policy_replace(p, unsafe, strlen(unsafe), "bad", &err), CL_EINVAL);
    assert_int_equal(check(p, "CreateContainerRequest", "{\"x\":1}", &err), 0);
    cl_agent_policy_free(p);
    assert_null(cl_agent_policy_new("garbage(", 8, "g", &err));
    assert_int_equal(err.code, CL_EPARSE);
    size_t big = CL_AGENT_MAX_POLICY + 1;
    char *t = malloc(big);
    memset(t, ' ', big);
    assert_null(cl_agent_policy_new(t, big, "big", &err));
    assert_int_equal(err.code, CL_ELIMIT);
    free(t);
    /* the compiled-in default allows every request the agent serves and not the switch */
    cl_str *def = cl_agent_default_policy();
    p = load(def);
    for (size_t i = 0; i < cl_agent_nrpcs; i++)
        assert_int_equal(check(p, cl_agent_rpcs[i].req->short_name, "{}", &err), 0);
    assert_false(cl_agent_policy_allows_failures(p));
    cl_agent_policy_free(p);
    free(def);
}

/* Deciding threads while another replaces the policy: every decision comes from a whole
 * policy (A or B, both define the entry), never from an empty or half-loaded one. */
struct race {
    struct cl_agent_policy *p;
    int errors, decisions;
    volatile int stop;
};

static void *decider(void *arg)
{
    struct race *r = arg;
    json_t *in = json_object();
    while (!r->stop) {
        struct cl_err err = {0};
        int rc = cl_agent_policy_check(r->p, "ExecProcessRequest", in, &err);
        __atomic_add_fetch(&r->decisions, 1, __ATOMIC_RELAXED);
        if (rc != 0 && rc != CL_EDENIED)
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
    }
    json_decref(in);
    return NULL;
}

static void test_gate_atomic_replace(void **state)
{
    const char *a = "package agent_policy\ndefault ExecProcessRequest := true\n";
    const char *b = "package agent_policy\ndefault ExecProcessRequest := false\n";
    struct race r = {load(a), 0, 0, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, decider, &r);
    struct cl_err err = {0};
    for (int i = 0; i < 60; i++) {
        const char *x = i % 2 ? a : b;
        int before = __atomic_load_n(&r.decisions, __ATOMIC_RELAXED);
        assert_int_equal(cl_agent_policy_replace(r.p, x, strlen(x), "race", &err), 0);
        /* let the deciders run on this policy before the next swap */
        for (int spin = 0;
             spin < 2000 && __atomic_load_n(&r.decisions, __ATOMIC_RELAXED) < before + 2; spin++)
            usleep(500);
        /* an invalid text in between changes nothing */
        assert_int_not_equal(cl_agent_policy_replace(r.p, "package", 7, "bad", &err), 0);
    }
    r.stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("decisions during 120 replacements: %d, errors %d\n", r.decisions, r.errors);
    assert_int_equal(r.errors, 0);
    assert_true(r.decisions > 0);
    cl_agent_policy_free(r.p);
}

/* ---- the service, in-process, over ttrpc ---- */

static int acted[64];

static int act_create(struct cl_agent_rt *rt, const ProtobufCMessage *req, cl_bytes **resp,
                      size_t *resp_len, struct cl_err *err)
{
    acted[0]++;
    return 0;
}

static int act_read(struct cl_agent_rt *rt, const ProtobufCMessage *req, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    Grpc__ReadStreamResponse r;
    grpc__read_stream_response__init(&r);
    uint8_t secret[] = "secret output";
    r.data.data = secret;
    r.data.len = sizeof secret - 1;
    *resp_len = grpc__read_stream_response__get_packed_size(&r);
    *resp = malloc(*resp_len);
    grpc__read_stream_response__pack(&r, *resp);
    acted[1]++;
    return 0;
}

static int act_copy(struct cl_agent_rt *rt, const ProtobufCMessage *req, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    acted[2]++;
    return 0;
}

static const struct cl_agent_action test_actions[] = {
    {"CreateContainer", act_create},
    {"ReadStdout", act_read},
    {"ReadStderr", act_read},
    {"CopyFile", act_copy},
};

static const char *const svc_policy =
    "package agent_policy\n"
    "default CreateContainerRequest := false\n"
    "CreateContainerRequest if { input.container_id == \"ok\" }\n"
    "default ReadStreamRequest := false\n"
    "ReadStreamRequest if { input.exec_id == \"ok\" }\n"
    "default CopyFileRequest := false\n"
    "CopyFileRequest if {\n"
    "  input.file_type == \"Symlink\"; input.symlink_target == \"target\"; input.file_mode == "
    "41471\n"
    "  not input.data; input.path == \"/run/kata-containers/shared/containers/x\"\n"
    "}\n"
    "CopyFileRequest if { input.file_type == \"Regular\"; is_null(input.symlink_target) }\n";

struct svc {
    struct cl_agent *agent;
    struct agent_proc conn; /* only dir/addr/c used */
};

static void svc_start(struct svc *s, struct cl_agent_opts *o)
{
    memset(s, 0, sizeof *s);
    snprintf(s->conn.dir, sizeof s->conn.dir, "/tmp/cl-agent-svc-XXXXXX");
    assert_non_null(mkdtemp(s->conn.dir));
    snprintf(s->conn.addr, sizeof s->conn.addr, "unix:%s/a.sock", s->conn.dir);
    o->listen = s->conn.addr;
    if (!o->gate_only)
        o->run_dir = s->conn.dir; /* a runtime, when linked, keeps to the test's folder */
    struct cl_err err = {0};
    s->agent = cl_agent_start(o, &err);
    if (!s->agent)
        fail_msg("start: %s", err.msg);
    s->conn.c = cl_ttrpc_client_connect(s->conn.addr, &err);
    assert_non_null(s->conn.c);
}

static void svc_stop(struct svc *s)
{
    cl_ttrpc_client_free(s->conn.c);
    cl_agent_stop(s->agent);
    rmdir(s->conn.dir);
}

static int send_json(struct svc *s, const char *method, const char *json, char *msg, size_t n,
                     cl_bytes **resp, size_t *resp_len)
{
    const struct cl_agent_rpc *rpc = cl_agent_rpc_find(method);
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    struct cl_err err = {0};
    ProtobufCMessage *m = cl_agent_json_to_pb(rpc->req, j, CL_AGENT_J2P_STRICT, &err);
    json_decref(j);
    if (!m)
        fail_msg("%s: %s", json, err.msg);
    uint8_t wire[4096];
    size_t len = protobuf_c_message_pack(m, wire);
    cl_agent_pb_free(m);
    int code = -1;
    agent_call_raw(&s->conn, CL_AGENT_SERVICE, method, wire, len, &code, msg, n, resp, resp_len);
    return code;
}

static void test_service_order(void **state)
{
    char pol[] = "/tmp/cl-agent-pol-XXXXXX";
    int fd = mkstemp(pol);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, svc_policy, strlen(svc_policy)), (ssize_t)strlen(svc_policy));
    close(fd);
    struct cl_agent_opts o = {.policy_file = pol, .actions = test_actions, .nactions = 4};
    struct svc s;
    svc_start(&s, &o);
    char msg[600];
    cl_bytes *resp = NULL;
    size_t rl = 0;
    memset(acted, 0, sizeof acted);
    /* allowed → the action runs; denied → it does not */
    assert_int_equal(
        send_json(&s, "CreateContainer", "{\"container_id\":\"ok\"}", msg, sizeof msg, NULL, NULL),
        0);
    assert_int_equal(
        send_json(&s, "CreateContainer", "{\"container_id\":\"no\"}", msg, sizeof msg, NULL, NULL),
        CL_TTRPC_PERMISSION_DENIED);
    assert_non_null(strstr(msg, "CreateContainerRequest is blocked by policy"));
    assert_int_equal(acted[0], 1);
    /* no action in the table → UNIMPLEMENTED after an allow; the gate still comes first */
    assert_int_equal(send_json(&s, "StartContainer", "{}", msg, sizeof msg, NULL, NULL),
                     CL_TTRPC_INTERNAL);
    /* ReadStdout: read, then redacted on deny (OK, empty data) */
    assert_int_equal(
        send_json(&s, "ReadStdout", "{\"exec_id\":\"ok\"}", msg, sizeof msg, &resp, &rl), 0);
    assert_int_equal(rl, 15);
    assert_memory_equal(resp + 2, "secret output", 13);
    free(resp);
    resp = NULL;
    assert_int_equal(
        send_json(&s, "ReadStderr", "{\"exec_id\":\"no\"}", msg, sizeof msg, &resp, &rl), 0);
    assert_int_equal(rl, 0);
    free(resp);
    assert_int_equal(acted[1], 2);
    /* CopyFile in its policy form: type from the mode bits, symlink target from data, no data */
    assert_int_equal(
        send_json(&s, "CopyFile",
                  "{\"path\":\"/run/kata-containers/shared/containers/x\",\"file_mode\":41471,"
                  "\"data\":\"target\"}",
                  msg, sizeof msg, NULL, NULL),
        0);
    assert_int_equal(
        send_json(&s, "CopyFile",
                  "{\"path\":\"/run/kata-containers/shared/containers/x\",\"file_mode\":41471,"
                  "\"data\":\"other\"}",
                  msg, sizeof msg, NULL, NULL),
        CL_TTRPC_PERMISSION_DENIED);
    assert_int_equal(send_json(&s, "CopyFile",
                               "{\"path\":\"/x\",\"file_mode\":33188,\"data\":\"abc\"}", msg,
                               sizeof msg, NULL, NULL),
                     0);
    /* a directory is neither rule: denied; a symlink whose target is not UTF-8: INTERNAL */
    assert_int_equal(send_json(&s, "CopyFile", "{\"path\":\"/x\",\"file_mode\":16877}", msg,
                               sizeof msg, NULL, NULL),
                     CL_TTRPC_PERMISSION_DENIED);
    assert_int_equal(send_json(&s, "CopyFile",
                               "{\"path\":\"/x\",\"file_mode\":41471,\"data\":[255,254]}", msg,
                               sizeof msg, NULL, NULL),
                     CL_TTRPC_INTERNAL);
    assert_int_equal(acted[2], 2);
    /* SetPolicy is gated by the current policy (undefined here → INTERNAL), nothing replaced */
    assert_int_equal(send_json(&s, "SetPolicy", "{\"policy\":\"package agent_policy\"}", msg,
                               sizeof msg, NULL, NULL),
                     CL_TTRPC_INTERNAL);
    assert_int_equal(
        send_json(&s, "CreateContainer", "{\"container_id\":\"ok\"}", msg, sizeof msg, NULL, NULL),
        0);
    /* Health is never gated */
    Grpc__CheckRequest cr;
    grpc__check_request__init(&cr);
    int code = -1;
    assert_int_equal(agent_call_raw(&s.conn, CL_AGENT_HEALTH_SERVICE, "Check", "", 0, &code, msg,
                                    sizeof msg, &resp, &rl),
                     0);
    assert_int_equal(code, 0);
    free(resp);
    svc_stop(&s);
    unlink(pol);
}

static char *write_image(const char *toml, size_t *len)
{
    struct cl_err err = {0};
    cl_bytes *img = cl_aa_initdata_image_encode(toml, strlen(toml), len, &err);
    assert_non_null(img);
    char *path = strdup("/tmp/cl-agent-initdata-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* a block device is zero-padded to a whole number of sectors */
    uint8_t pad[512] = {0};
    assert_int_equal(write(fd, img, *len), (ssize_t)*len);
    assert_int_equal(write(fd, pad, 512 - *len % 512), (ssize_t)(512 - *len % 512));
    close(fd);
    free(img);
    return path;
}

static void test_policy_sources(void **state)
{
    size_t len = 0;
    char *dev =
        write_image("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"policy.rego\" = '''\n"
                    "package agent_policy\ndefault CreateContainerRequest := false\n'''\n",
                    &len);
    char msg[600];
    /* init-data policy in force when there is no --policy */
    struct cl_agent_opts o = {.initdata_device = dev, .gate_only = true};
    struct svc s;
    svc_start(&s, &o);
    assert_int_equal(send_json(&s, "CreateContainer", "{}", msg, sizeof msg, NULL, NULL),
                     CL_TTRPC_PERMISSION_DENIED);
    assert_int_equal(send_json(&s, "StartContainer", "{}", msg, sizeof msg, NULL, NULL),
                     CL_TTRPC_INTERNAL);
    svc_stop(&s);
    /* --policy wins over init-data */
    char pol[] = "/tmp/cl-agent-pol-XXXXXX";
    int fd = mkstemp(pol);
    const char *t = "package agent_policy\ndefault CreateContainerRequest := true\n";
    assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    struct cl_agent_opts o2 = {.initdata_device = dev, .policy_file = pol, .gate_only = true};
    svc_start(&s, &o2);
    assert_int_equal(send_json(&s, "CreateContainer", "{}", msg, sizeof msg, NULL, NULL),
                     CL_TTRPC_UNIMPLEMENTED);
    svc_stop(&s);
    unlink(pol);
    unlink(dev);
    free(dev);
    /* init-data without policy.rego → the compiled-in default (allow) */
    dev = write_image("version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = ''\n",
                      &len);
    struct cl_agent_opts o3 = {.initdata_device = dev, .gate_only = true};
    svc_start(&s, &o3);
    assert_int_equal(send_json(&s, "CreateContainer", "{}", msg, sizeof msg, NULL, NULL),
                     CL_TTRPC_UNIMPLEMENTED);
    svc_stop(&s);
    unlink(dev);
    free(dev);
    /* a device with the magic but a broken body stops the start (no silent allow-all) */
    char bad[] = "/tmp/cl-agent-initdata-XXXXXX";
    fd = mkstemp(bad);
    uint8_t img[64] = "initdata\x10\0\0\0\0\0\0\0garbagegarbage!!";
    assert_int_equal(write(fd, img, sizeof img), (ssize_t)sizeof img);
    close(fd);
    struct cl_agent_opts o4 = {
        .initdata_device = bad, .gate_only = true, .listen = "unix:/tmp/cl-agent-never.sock"};
    struct cl_err err = {0};
    assert_null(cl_agent_start(&o4, &err));
    assert_int_not_equal(err.code, 0);
    /* a bad version is refused too */
    unlink(bad);
    dev = write_image("version = \"9.9\"\nalgorithm = \"sha256\"\n", &len);
    struct cl_agent_opts o5 = {
        .initdata_device = dev, .gate_only = true, .listen = "unix:/tmp/cl-agent-never.sock"};
    assert_null(cl_agent_start(&o5, &err));
    assert_non_null(strstr(err.msg, "version"));
    unlink(dev);
    free(dev);
    /* the upstream sample image (no TOML inside: "some content") is refused as init-data */
    const char *root = vectors_root();
    if (root) {
        char p[1024];
        snprintf(p, sizeof p, "%s/kata-policy/kata/agent-testdata/initdata.img", root);
        cl_str *pt = NULL;
        size_t pl = 0;
        assert_int_not_equal(cl_agent_initdata_policy(p, &pt, &pl, &err), 0);
        assert_int_equal(err.code, CL_EPARSE);
    }
}

/* cl_agent_initdata_extract: what it writes, and every refusal writes nothing. */
static void test_initdata_extract(void **state)
{
    (void)state;
    static const char good[] = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n"
                               "\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://k\"\n'''\n"
                               "\"cdh.toml\" = 'socket = \"unix:///x\"'\n"
                               "\"policy.rego\" = 'package agent_policy'\n\"other\" = 'x'\n";
    size_t len = 0;
    char *dev = write_image(good, &len);
    char dir[] = "/tmp/cl-agent-extract-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[600], path[700];
    snprintf(out, sizeof out, "%s/initdata", dir);
    struct cl_err err = {0};
    assert_int_equal(cl_agent_initdata_extract(dev, out, &err), 0);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    static const struct {
        const char *name, *want;
    } files[] = {
        {"initdata.toml", good},
        {"aa.toml", "[token_configs.kbs]\nurl = \"http://k\"\n"},
        {"cdh.toml", "socket = \"unix:///x\""},
        {"policy.rego", "package agent_policy"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i].name);
        size_t n = 0;
        cl_bytes *b = cl_file_read(path, 65536, &n, &err);
        assert_non_null(b);
        assert_int_equal(n, strlen(files[i].want));
        assert_memory_equal(b, files[i].want, n);
        free(b);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/other", out);
    assert_int_not_equal(access(path, F_OK), 0); /* only the known entries */
    rmdir(out);
    unlink(dev);
    free(dev);
    /* refusals: nothing written, the reason named */
    static const struct {
        const char *toml, *msg;
        int code;
    } bad[] = {
        {"version = \"0.2.0\"\nalgorithm = \"sha256\"\n", "version", CL_EPARSE},
        {"version = \"0.1.0\"\nalgorithm = \"md5\"\n", "algorithm", 0},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = '[x'\n", "aa.toml", 0},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"cdh.toml\" = 'a = '\n", "cdh.toml",
         0},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = 'a = 1'\n"
         "\"cdh.toml\" = '[b'\n",
         "cdh.toml", 0},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = 1\n", "aa.toml",
         CL_EPARSE},
        {"not toml", "init-data", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dev = write_image(bad[i].toml, &len);
        memset(&err, 0, sizeof err);
        int rc = cl_agent_initdata_extract(dev, out, &err);
        assert_true(rc < 0);
        assert_int_not_equal(rc, CL_ENOTFOUND);
        if (bad[i].code)
            assert_int_equal(rc, bad[i].code);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: '%s' does not name '%s'", i, err.msg, bad[i].msg);
        assert_int_not_equal(access(out, F_OK), 0); /* not even the folder */
        unlink(dev);
        free(dev);
    }
    /* a truncated body (magic, length beyond the device) */
    char trunc[] = "/tmp/cl-agent-initdata-XXXXXX";
    int fd = mkstemp(trunc);
    uint8_t img[32] = "initdata\xff\0\0\0\0\0\0\0";
    assert_int_equal(write(fd, img, sizeof img), (ssize_t)sizeof img);
    close(fd);
    assert_true(cl_agent_initdata_extract(trunc, out, &err) < 0);
    assert_int_not_equal(err.code, CL_ENOTFOUND);
    /* no magic: ENOTFOUND, nothing written */
    memset(img, 0, sizeof img);
    fd = open(trunc, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, img, sizeof img), (ssize_t)sizeof img);
    close(fd);
    assert_int_equal(cl_agent_initdata_extract(trunc, out, &err), CL_ENOTFOUND);
    unlink(trunc);
    rmdir(out);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_values_and_state), cmocka_unit_test(test_gate_allow_failures),
        cmocka_unit_test(test_gate_load_errors),      cmocka_unit_test(test_gate_atomic_replace),
        cmocka_unit_test(test_service_order),         cmocka_unit_test(test_policy_sources),
        cmocka_unit_test(test_initdata_extract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
