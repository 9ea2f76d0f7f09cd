/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource policy behind one interface. Built in: trustee's default semantics — release to
 * the "resource" plugin when the token's cpu0 evidence is not from the sample TEE (or the
 * sample TEE is explicitly allowed by allow_sample_tee_insecure). Uploaded policies are Rego
 * (`data.policy.allow`). Fails closed: a stored policy that cannot be evaluated denies all.
 */
#include "kbs/kbs_internal.h"

#include <string.h>

#define POLICY_KEY "resource-policy.rego"

static bool plugin_is_resource(const json_t *data)
{
    const char *p = json_string_value(json_object_get(data, "plugin"));
    return p && strcmp(p, "resource") == 0;
}

static bool default_allow(struct cl_kbs *kbs, const json_t *claims, const json_t *data)
{
    if (!plugin_is_resource(data))
        return false;
    json_t *ev = cl_json_pointer((json_t *)(uintptr_t)claims, "/submods/cpu0/ear.veraison.annotated-evidence");
    if (!json_is_object(ev))
        return false;
    if (json_object_get(ev, "sample")) {
        if (!kbs->cfg->allow_sample_tee_insecure)
            return false;
        cl_insecure("allow_sample_tee_insecure", "default resource policy releasing to a sample TEE");
    }
    return true;
}

static bool affirming(const json_t *claims)
{
    json_t *subs = json_object_get(claims, "submods");
    if (!json_is_object(subs) || json_object_size(subs) == 0)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(subs, k, v)
    {
        const char *st = json_string_value(json_object_get(v, "ear.status"));
        if (!st || strcmp(st, "affirming") != 0)
            return false;
    }
    return true;
}

int kbs_policy_eval(struct cl_kbs *kbs, const json_t *claims, const json_t *data, bool *allow, struct cl_err *err)
{
    pthread_rwlock_rdlock(&kbs->policy_lock);
    enum kbs_policy_kind kind = kbs->policy;
    pthread_rwlock_unlock(&kbs->policy_lock);
    switch (kind) {
    case KBS_POLICY_DEFAULT:
        *allow = default_allow(kbs, claims, data);
        return 0;
    case KBS_POLICY_ALLOW_ALL:
        *allow = plugin_is_resource(data);
        return 0;
    case KBS_POLICY_AFFIRMING:
        *allow = plugin_is_resource(data) && affirming(claims);
        return 0;
    case KBS_POLICY_DENY_ALL:
        break;
    }
    *allow = false;
    return 0;
}

int kbs_policy_set(struct cl_kbs *kbs, const char *text, size_t len, struct cl_err *err)
{
    (void)kbs;
    (void)text;
    (void)len;
    return cl_err_stage(err, CL_EUNSUPPORTED, "policy",
                        "Rego resource policies need the Rego engine, which this build lacks; the current policy "
                        "stays active");
}

int kbs_policy_load(struct cl_kbs *kbs, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = cl_store_get(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, &n, &e);
    if (!text) {
        if (e.code != CL_ENOTFOUND)
            return cl_err_set(err, e.code, "resource policy: %s", e.msg);
        kbs->policy = KBS_POLICY_DEFAULT;
        return 0;
    }
    cl_error("a stored resource policy exists but this build cannot evaluate Rego: every resource request is denied");
    kbs->policy = KBS_POLICY_DENY_ALL;
    return 0;
}
