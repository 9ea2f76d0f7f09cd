/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kata policy conformance over the wire: every recorded decision of the regorus-kata
 * scenarios and of the runnable genpolicy testcases, sent as real protobuf requests over
 * ttrpc to a running cloister-agent (the built binary, --gate-only, --policy <scenario>), in
 * order on one agent per scenario so that policy state carries over. Each allowed case also
 * gets a mutated twin that the policy must deny (PERMISSION_DENIED), sent right after it.
 *
 * The vectors' JSON is turned into protobuf by pbjson (lenient: keys of older protos are
 * dropped, as serde does) and the agent rebuilds the JSON from the protobuf, so this also
 * checks the decoder against recorded agent inputs.
 *
 * Skew, named case by case in `skew[]`: the regorus-kata policies predate Storage.shared and
 * compare sandbox storages as whole objects; today's agent (ours and Kata's) sends
 * "shared": false, so their CreateSandboxRequest with storages is denied although the
 * recording (made by an agent without the field) shows it allowed. (The k8s-policy-*
 * scenarios are not affected: their CreateSandboxRequest rule reads only sandbox_pidns.)
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "test_agent_util.h"

/* Cases whose expected decision differs from the recording, and why. */
static const struct {
    const char *dir;
    long seq;
    const char *why;
} skew[] = {
    {"pod-cm1", 3, "Storage.shared: policy compares storages whole, agent sends shared=false"},
    {"pod-exec", 3, "Storage.shared: policy compares storages whole, agent sends shared=false"},
    {"pod-lifecycle", 3,
     "Storage.shared: policy compares storages whole, agent sends shared=false"},
    {"pod-many-layers", 3,
     "Storage.shared: policy compares storages whole, agent sends shared=false"},
    {"pod-persistent-volumes", 1,
     "Storage.shared: policy compares storages whole, agent sends shared=false"},
    {"web", 3, "Storage.shared: policy compares storages whole, agent sends shared=false"},
};

static const char *skew_of(const char *dir, long seq)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(skew); i++)
        if (strcmp(skew[i].dir, dir) == 0 && skew[i].seq == seq)
            return skew[i].why;
    return NULL;
}

/* Requests a policy allows whatever they carry (a default true, or a body that reads only
 * policy data): they cannot have a deny twin. */
static bool unconditional(const char *group, const char *kind, bool old_rules)
{
    static const char *const always[] = {"StartContainerRequest", "WaitProcessRequest",
                                         "GuestDetailsRequest",   "GetOOMEventRequest",
                                         "OnlineCPUMemRequest",   "UpdateEphemeralMountsRequest"};
    for (size_t i = 0; i < CL_ARRAY_LEN(always); i++)
        if (strcmp(kind, always[i]) == 0)
            return true;
    /* the k8s-policy-* scenarios have `default CreateSandboxRequest := true` */
    if (strncmp(group, "k8s-policy-", 11) == 0 && strcmp(kind, "CreateSandboxRequest") == 0)
        return true;
    /* the regorus-era rules had no bodies for the network requests */
    return old_rules && (strcmp(kind, "UpdateInterfaceRequest") == 0 ||
                         strcmp(kind, "UpdateRoutesRequest") == 0);
}

static void set_all(json_t *arr, const char *key, json_t *v)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) json_object_set(e, key, v);
    json_decref(v);
}

/* The deny twin: one change the policy must refuse. Returns new, or NULL for none. */
static json_t *twin(const char *kind, const json_t *req)
{
    json_t *t = json_deep_copy(req);
    if (strcmp(kind, "CreateContainerRequest") == 0) {
        json_t *proc = json_object_get(json_object_get(t, "OCI"), "Process");
        json_object_set_new(proc, "Args", json_pack("[s,s]", "/bin/sh", "-c evil"));
    } else if (strcmp(kind, "ExecProcessRequest") == 0) {
        json_object_set_new(json_object_get(t, "process"), "Args", json_pack("[s]", "/bin/evil"));
    } else if (strcmp(kind, "CopyFileRequest") == 0) {
        json_object_set_new(t, "path", json_string("/etc/shadow"));
    } else if (strcmp(kind, "CreateSandboxRequest") == 0) {
        json_object_set_new(t, "guest_hook_path", json_string("/usr/share/oci/hooks"));
        json_object_set_new(t, "sandbox_pidns", json_true());
    } else if (strcmp(kind, "UpdateInterfaceRequest") == 0) {
        json_object_set_new(json_object_get(t, "interface"), "name", json_string("lo"));
    } else if (strcmp(kind, "UpdateRoutesRequest") == 0) {
        set_all(json_object_get(json_object_get(t, "routes"), "Routes"), "device",
                json_string("lo"));
    } else if (strcmp(kind, "AddARPNeighborsRequest") == 0) {
        set_all(json_object_get(json_object_get(t, "neighbors"), "ARPNeighbors"), "device",
                json_string("lo"));
    } else {
        json_decref(t);
        return NULL;
    }
    return t;
}

/* The vectors give CopyFile in its policy form (or an older agent's raw form); the wire has
 * only the mode bits and the data. */
static json_t *copyfile_wire(const json_t *in)
{
    json_t *w = json_deep_copy(in);
    const char *type = json_string_value(json_object_get(in, "file_type"));
    json_int_t mode = json_integer_value(json_object_get(in, "file_mode"));
    if (type) {
        json_int_t bits = strcmp(type, "Regular") == 0     ? S_IFREG
                          : strcmp(type, "Directory") == 0 ? S_IFDIR
                          : strcmp(type, "Symlink") == 0   ? S_IFLNK
                                                           : 0;
        json_object_set_new(w, "file_mode", json_integer((mode & 07777) | bits));
    }
    const json_t *target = json_object_get(in, "symlink_target");
    if (!json_is_string(target) && json_string_length(json_object_get(in, "symlink_src")))
        target = json_object_get(in, "symlink_src"); /* an older agent's raw form */
    if (json_is_string(target))
        json_object_set(w, "data", (json_t *)(uintptr_t)target);
    json_object_del(w, "file_type");
    json_object_del(w, "symlink_target");
    json_object_del(w, "symlink_src");
    return w;
}

struct tally {
    long pass, fail, twins, twins_na, skewed;
};

static enum verdict decide(struct agent_proc *a, const char *kind, const json_t *req, char *msg,
                           size_t n)
{
    if (strcmp(kind, "CopyFileRequest") == 0) {
        json_t *w = copyfile_wire(req);
        enum verdict v = agent_decide(a, kind, w, msg, n);
        json_decref(w);
        return v;
    }
    return agent_decide(a, kind, req, msg, n);
}

/* One case and its twin. `want` is the expected decision. */
static void run_case(struct agent_proc *a, const char *group, long seq, const char *kind,
                     const json_t *req, bool want, bool old_rules, struct tally *t)
{
    char msg[CL_ERR_MSG_MAX + 64] = "";
    enum verdict v = decide(a, kind, req, msg, sizeof msg);
    if (v == (want ? V_ALLOW : V_DENY)) {
        t->pass++;
    } else {
        t->fail++;
        printf("FAIL %s #%ld %s: want %s, got %s (%s)\n", group, seq, kind, want ? "allow" : "deny",
               verdict_names[v], msg);
    }
    if (!want)
        return;
    json_t *tw = twin(kind, req);
    if (!tw) {
        if (!unconditional(group, kind, old_rules)) {
            t->fail++;
            printf("FAIL %s #%ld %s: no deny twin for a conditional request\n", group, seq, kind);
        }
        t->twins_na++;
        return;
    }
    v = decide(a, kind, tw, msg, sizeof msg);
    json_decref(tw);
    if (v == V_DENY && strstr(msg, "is blocked by policy")) {
        t->twins++;
    } else if (unconditional(group, kind, old_rules) && v == V_ALLOW) {
        t->twins_na++;
    } else {
        t->fail++;
        printf("FAIL %s #%ld %s twin: want deny, got %s (%s)\n", group, seq, kind, verdict_names[v],
               msg);
    }
}

static void test_regorus(void **state)
{
    const char *root = vectors_root();
    if (!root)
        skip();
    char dirp[1024];
    snprintf(dirp, sizeof dirp, "%s/kata-policy/regorus-kata", root);
    DIR *d = opendir(dirp);
    assert_non_null(d);
    struct dirent *de;
    struct tally all = {0};
    long skew_seen = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".rego"))
            continue;
        char pol[1400], cases[1400];
        snprintf(pol, sizeof pol, "%s/%s/policy.rego", dirp, de->d_name);
        snprintf(cases, sizeof cases, "%s/%s/cases.jsonl", dirp, de->d_name);
        const char *args[] = {"--gate-only", "--policy", pol, NULL};
        struct agent_proc a;
        assert_int_equal(agent_spawn(&a, args), 0);
        FILE *f = fopen(cases, "r");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0;
        struct tally t = {0};
        while (getline(&line, &cap, f) > 0) {
            json_error_t je;
            json_t *c = json_loads(line, 0, &je);
            assert_non_null(c);
            const char *ep = json_string_value(json_object_get(c, "ep"));
            long seq = (long)json_integer_value(json_object_get(c, "seq"));
            bool want = json_is_true(json_object_get(c, "want"));
            if (strcmp(ep, "AllowRequestsFailingPolicy") == 0) {
                /* not an RPC: the agent reads it at load; every twin denied below shows it false */
                assert_false(want);
                t.pass++;
                json_decref(c);
                continue;
            }
            const char *why = skew_of(de->d_name, seq);
            if (why) {
                assert_string_equal(ep, "CreateSandboxRequest");
                assert_true(want);
                want = false;
                t.skewed++;
                printf("skew %s #%ld %s: recorded allow, expected deny: %s\n", de->d_name, seq, ep,
                       why);
            }
            run_case(&a, de->d_name, seq, ep, json_object_get(c, "input"), want, true, &t);
            json_decref(c);
        }
        free(line);
        fclose(f);
        assert_int_equal(agent_stop(&a), 0);
        printf("regorus-kata/%-24s pass %3ld fail %ld twins %3ld (n/a %3ld) skew %ld\n", de->d_name,
               t.pass, t.fail, t.twins, t.twins_na, t.skewed);
        all.pass += t.pass;
        all.fail += t.fail;
        all.twins += t.twins;
        all.twins_na += t.twins_na;
        skew_seen += t.skewed;
    }
    closedir(d);
    printf("regorus-kata total: pass %ld fail %ld, deny twins %ld, unconditional (no twin) %ld, "
           "skewed %ld\n",
           all.pass, all.fail, all.twins, all.twins_na, skew_seen);
    assert_int_equal(skew_seen, (long)CL_ARRAY_LEN(skew));
    assert_int_equal(all.fail, 0);
    assert_true(all.pass >= 301);
}

static void test_genpolicy(void **state)
{
    const char *root = vectors_root();
    if (!root)
        skip();
    static const char *const dirs[] = {"copyfile", "addarpneighbors", "updateinterface",
                                       "updateroutes", "createsandbox"};
    char pol[1024];
    snprintf(pol, sizeof pol, "%s/kata-policy/derived/synthetic-policy/policy-no-containers.rego",
             root);
    struct tally all = {0};
    for (size_t i = 0; i < CL_ARRAY_LEN(dirs); i++) {
        char tc[1024];
        snprintf(tc, sizeof tc,
                 "%s/kata-policy/derived/genpolicy-testcases-normalized/%s/testcases.json", root,
                 dirs[i]);
        json_error_t je;
        json_t *cases = json_load_file(tc, 0, &je);
        assert_non_null(cases);
        const char *args[] = {"--gate-only", "--policy", pol, NULL};
        struct agent_proc a;
        assert_int_equal(agent_spawn(&a, args), 0);
        struct tally t = {0};
        size_t k;
        json_t *c;
        json_array_foreach(cases, k, c)
        {
            run_case(&a, dirs[i], (long)k, json_string_value(json_object_get(c, "kind")),
                     json_object_get(c, "request"), json_is_true(json_object_get(c, "allowed")),
                     false, &t);
        }
        assert_int_equal(agent_stop(&a), 0);
        json_decref(cases);
        printf("genpolicy/%-16s pass %3ld fail %ld twins %ld (n/a %ld)\n", dirs[i], t.pass, t.fail,
               t.twins, t.twins_na);
        all.pass += t.pass;
        all.fail += t.fail;
        all.twins += t.twins;
    }
    printf("genpolicy total: pass %ld fail %ld, deny twins %ld\n", all.pass, all.fail, all.twins);
    assert_int_equal(all.fail, 0);
    assert_int_equal(all.pass, 41);
}

/* kata-opa's default policies: an undefined entry is an error (INTERNAL), never an allow. */
static void test_defaults(void **state)
{
    const char *root = vectors_root();
    if (!root)
        skip();
    static const struct {
        const char *file, *kind;
        enum verdict want;
    } checks[] = {
        {"allow-all.rego", "CreateContainerRequest", V_ALLOW},
        {"allow-all.rego", "ExecProcessRequest", V_ALLOW},
        {"allow-all.rego", "SetPolicyRequest", V_ALLOW},
        {"allow-all.rego", "VolumeStatsRequest", V_ERROR}, /* allow-all.rego lacks it */
        {"allow-all-except-exec-process.rego", "ExecProcessRequest", V_DENY},
        {"allow-all-except-exec-process.rego", "CreateContainerRequest", V_ALLOW},
        {"allow-set-policy.rego", "CreateContainerRequest", V_ERROR},
        {"allow-set-policy.rego", "ExecProcessRequest", V_ERROR},
    };
    json_t *empty = json_object();
    for (size_t i = 0; i < CL_ARRAY_LEN(checks); i++) {
        char pol[1024];
        snprintf(pol, sizeof pol, "%s/kata-policy/kata/kata-opa/%s", root, checks[i].file);
        const char *args[] = {"--gate-only", "--policy", pol, NULL};
        struct agent_proc a;
        assert_int_equal(agent_spawn(&a, args), 0);
        char msg[CL_ERR_MSG_MAX + 64];
        enum verdict v = strcmp(checks[i].kind, "SetPolicyRequest") == 0
                             ? V_OTHER
                             : agent_decide(&a, checks[i].kind, empty, msg, sizeof msg);
        if (strcmp(checks[i].kind, "SetPolicyRequest") == 0) {
            /* allowed SetPolicy acts (the service owns it): OK and the new policy is in force */
            json_t *req = json_pack("{s:s}", "policy",
                                    "package agent_policy\ndefault ExecProcessRequest := false\n");
            const struct cl_agent_rpc *rpc = cl_agent_rpc_find("SetPolicy");
            struct cl_err err = {0};
            ProtobufCMessage *m = cl_agent_json_to_pb(rpc->req, req, CL_AGENT_J2P_STRICT, &err);
            uint8_t wire[256];
            size_t n = protobuf_c_message_pack(m, wire);
            int code = -1;
            agent_call_raw(&a, CL_AGENT_SERVICE, "SetPolicy", wire, n, &code, msg, sizeof msg, NULL,
                           NULL);
            v = code == 0 ? V_ALLOW : V_OTHER;
            cl_agent_pb_free(m);
            json_decref(req);
            assert_int_equal(agent_decide(&a, "ExecProcessRequest", empty, msg, sizeof msg),
                             V_DENY);
            assert_int_equal(agent_decide(&a, "CreateContainerRequest", empty, msg, sizeof msg),
                             V_ERROR);
        }
        if (v != checks[i].want)
            printf("FAIL %s %s: want %s got %s (%s)\n", checks[i].file, checks[i].kind,
                   verdict_names[checks[i].want], verdict_names[v], msg);
        assert_int_equal(v, checks[i].want);
        assert_int_equal(agent_stop(&a), 0);
    }
    json_decref(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regorus),
        cmocka_unit_test(test_genpolicy),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
