/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resource policy: Rego, rule data.policy.allow, as trustee's KBS evaluates it.
 *   input = the verified token claims
 *   data  = {"plugin", "resource-path": [repo, type, tag], "query": {...},
 *            "settings": {"allow_sample_tee_insecure": bool}}
 * The policy in force is the one stored (namespace "kbs", key "resource-policy.rego"), else
 * Cloister's built-in default (policies/resource/default.rego). Fails closed: anything but
 * allow == true denies, and a stored policy that no longer compiles denies everything.
 * An upload is compiled before it is stored; a refused upload leaves the old policy in force.
 */
#include "kbs/kbs_internal.h"
#include "rego/rego.h"

#include <string.h>

#define POLICY_KEY "resource-policy.rego"

extern const char cl_policy_resource_default[];
extern const size_t cl_policy_resource_default_len;

static struct cl_rego *compile(const char *text, size_t len, struct cl_err *err)
{
    struct cl_rego_opts o = {.max_steps = 1000000, .max_memory = 64u << 20};
    struct cl_rego *e = cl_rego_new(&o);
    if (!e) {
        cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        return NULL;
    }
    if (cl_rego_add_module(e, POLICY_KEY, text, len, false, err) < 0 || cl_rego_compile(e, err) < 0) {
        cl_rego_free(e);
        err->stage = "policy";
        return NULL;
    }
    return e;
}

int kbs_policy_eval(struct cl_kbs *kbs, const json_t *claims, const json_t *data, bool *allow, struct cl_err *err)
{
    *allow = false;
    /* Per-request data is bound with `with`, so the compiled policy stays shared and read-only.
     * The values are JSON texts, which are Rego terms; the path was validated to [A-Za-z0-9_.-]. */
    CL_AUTO(cl_str) *plugin = cl_json_compact(json_object_get(data, "plugin"));
    CL_AUTO(cl_str) *path = cl_json_compact(json_object_get(data, "resource-path"));
    CL_AUTO(cl_str) *query = cl_json_compact(json_object_get(data, "query"));
    CL_AUTO(cl_str) *q = plugin && path && query
                             ? cl_strdupf("data.policy.allow with data.plugin as %s with data[\"resource-path\"] as %s "
                                          "with data.query as %s with data.settings.allow_sample_tee_insecure as %s",
                                          plugin, path, query, kbs->cfg->allow_sample_tee_insecure ? "true" : "false")
                             : NULL;
    if (!q)
        return cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
    pthread_rwlock_rdlock(&kbs->policy_lock);
    if (!kbs->policy) {
        pthread_rwlock_unlock(&kbs->policy_lock);
        return cl_err_stage(err, CL_EDENIED, "policy", "the stored resource policy does not compile: denying all");
    }
    struct cl_err re = {0};
    CL_AUTO(json_t) *results = NULL;
    int rc = cl_rego_eval_query(kbs->policy, q, claims, &results, &re);
    pthread_rwlock_unlock(&kbs->policy_lock);
    if (rc < 0)
        return cl_err_stage(err, rc, "policy", "resource policy: %s", re.msg);
    json_t *v = cl_json_pointer(results, "/0/expressions/0/value");
    *allow = json_is_true(v);
    if (*allow && cl_json_pointer((json_t *)(uintptr_t)claims, "/submods/cpu0/ear.veraison.annotated-evidence/sample"))
        cl_insecure("allow_sample_tee_insecure", "resource policy releasing to a sample TEE");
    return 0;
}

int kbs_policy_set(struct cl_kbs *kbs, const char *text, size_t len, struct cl_err *err)
{
    struct cl_rego *e = compile(text, len, err);
    if (!e)
        return err->code;
    int rc = cl_store_set(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, text, len, true, err);
    if (rc < 0) {
        cl_rego_free(e);
        return rc;
    }
    pthread_rwlock_wrlock(&kbs->policy_lock);
    struct cl_rego *old = kbs->policy;
    kbs->policy = e;
    pthread_rwlock_unlock(&kbs->policy_lock);
    cl_rego_free(old);
    cl_info("resource policy set (%zu bytes)", len);
    return 0;
}

int kbs_policy_load(struct cl_kbs *kbs, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = cl_store_get(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, &n, &e);
    if (!text && e.code != CL_ENOTFOUND)
        return cl_err_set(err, e.code, "resource policy: %s", e.msg);
    if (!text) {
        kbs->policy = compile(cl_policy_resource_default, cl_policy_resource_default_len, err);
        return kbs->policy ? 0 : cl_err_prefix(err, "built-in resource policy");
    }
    kbs->policy = compile((const char *)text, n, &e);
    if (!kbs->policy)
        cl_error("the stored resource policy does not compile (%s): every resource request is denied", e.msg);
    return 0;
}

void kbs_policy_free(struct cl_kbs *kbs)
{
    cl_rego_free(kbs->policy);
    kbs->policy = NULL;
}
