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
 *
 * Several replicas on a shared store: each request first reads the stored text and compares
 * its SHA-256 with the one the compiled policy came from; a different digest (another replica
 * stored a new policy) is compiled before the decision. So a policy written through one
 * replica is enforced by all from their next request on — the bound is one database read, not
 * a cache lifetime.
 */
#include "crypto/crypto.h"
#include "kbs/kbs_internal.h"
#include "rego/rego.h"

#include <string.h>

#define POLICY_KEY "resource-policy.rego"

extern const char cl_policy_resource_default[];
extern const size_t cl_policy_resource_default_len;

/* A compiled policy and its prepared decision query. */
struct kbs_rpolicy {
    struct cl_rego *engine;
    struct cl_rego_query *allow;
};

static void rpolicy_free(struct kbs_rpolicy *p)
{
    if (!p)
        return;
    cl_rego_query_free(p->allow);
    cl_rego_free(p->engine);
    free(p);
}

static struct kbs_rpolicy *compile_as(const char *text, size_t len, bool v0, struct cl_err *err)
{
    struct cl_rego_opts o = {.max_steps = 1000000, .max_memory = 64u << 20};
    struct kbs_rpolicy *p = calloc(1, sizeof *p);
    if (!p || !(p->engine = cl_rego_new(&o))) {
        rpolicy_free(p);
        cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        return NULL;
    }
    if (cl_rego_add_module(p->engine, POLICY_KEY, text, len, v0, err) < 0 ||
        cl_rego_compile(p->engine, err) < 0 ||
        !(p->allow = cl_rego_prepare(p->engine, "data.policy.allow", err))) {
        rpolicy_free(p);
        err->stage = "policy";
        return NULL;
    }
    return p;
}

/* Rego v1 first; a policy that only parses as v0 (older trustee samples: `allow { ... }`) is
 * accepted with a warning. The error reported is the v1 one. */
static struct kbs_rpolicy *compile(const char *text, size_t len, struct cl_err *err)
{
    struct kbs_rpolicy *p = compile_as(text, len, false, err);
    if (p || err->code != CL_EPARSE)
        return p;
    struct cl_err e0 = {0};
    p = compile_as(text, len, true, &e0);
    if (p)
        cl_warn("resource policy parsed as Rego v0 (rules without 'if'); consider moving it to "
                "Rego v1");
    return p;
}

/* Shared store: recompiles when the stored text is not the one in force. A stored policy that
 * does not compile denies everything, as at start-up. */
static int policy_refresh(struct cl_kbs *kbs, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = cl_store_get(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, &n, &e);
    if (!text && e.code != CL_ENOTFOUND)
        return cl_err_stage(err, e.code, "policy", "resource policy read: %s", e.msg);
    const char *src = text ? (const char *)text : cl_policy_resource_default;
    size_t len = text ? n : cl_policy_resource_default_len;
    uint8_t d[32];
    if (cl_digest(CL_HASH_SHA256, src, len, d, err) < 0)
        return err->code;
    pthread_rwlock_rdlock(&kbs->policy_lock);
    bool same = memcmp(d, kbs->policy_digest, sizeof d) == 0;
    pthread_rwlock_unlock(&kbs->policy_lock);
    if (same)
        return 0;
    struct kbs_rpolicy *p = compile(src, len, &e);
    if (!p)
        cl_error(
            "the stored resource policy does not compile (%s): every resource request is denied",
            e.msg);
    else
        cl_info("resource policy changed in the store (%zu bytes): now in force", len);
    pthread_rwlock_wrlock(&kbs->policy_lock);
    struct kbs_rpolicy *old = kbs->policy;
    kbs->policy = p;
    memcpy(kbs->policy_digest, d, sizeof d);
    pthread_rwlock_unlock(&kbs->policy_lock);
    rpolicy_free(old);
    return 0;
}

int kbs_policy_eval(struct cl_kbs *kbs, const json_t *claims, const json_t *data, bool *allow,
                    struct cl_err *err)
{
    *allow = false;
    if (cl_store_shared(kbs->store) && policy_refresh(kbs, err) < 0)
        return err->code;
    /* Per-request data is an overlay on the data document, so the compiled policy and its
     * prepared query stay shared and read-only across threads. */
    CL_AUTO(json_t) *overlay = json_deep_copy(data);
    if (!overlay || json_object_set_new(overlay, "settings",
                                        json_pack("{s:b}", "allow_sample_tee_insecure",
                                                  kbs->cfg->allow_sample_tee_insecure)) < 0)
        return cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
    pthread_rwlock_rdlock(&kbs->policy_lock);
    if (!kbs->policy) {
        pthread_rwlock_unlock(&kbs->policy_lock);
        return cl_err_stage(err, CL_EDENIED, "policy",
                            "the stored resource policy does not compile: denying all");
    }
    struct cl_err re = {0};
    CL_AUTO(json_t) *v = cl_rego_query_eval(kbs->policy->allow, claims, overlay, &re);
    pthread_rwlock_unlock(&kbs->policy_lock);
    if (re.code < 0)
        return cl_err_stage(err, re.code, "policy", "resource policy: %s", re.msg);
    *allow = json_is_true(v);
    if (*allow && cl_json_pointer((json_t *)(uintptr_t)claims,
                                  "/submods/cpu0/ear.veraison.annotated-evidence/sample"))
        cl_insecure("allow_sample_tee_insecure", "resource policy releasing to a sample TEE");
    return 0;
}

int kbs_policy_set(struct cl_kbs *kbs, const char *text, size_t len, struct cl_err *err)
{
    struct kbs_rpolicy *p = compile(text, len, err);
    if (!p)
        return err->code;
    int rc = cl_store_set(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, text, len, true, err);
    if (rc < 0) {
        rpolicy_free(p);
        return rc;
    }
    uint8_t d[32] = {0};
    if (cl_digest(CL_HASH_SHA256, text, len, d, NULL) < 0)
        memset(d, 0, sizeof d); /* a later refresh recompiles: harmless */
    pthread_rwlock_wrlock(&kbs->policy_lock);
    struct kbs_rpolicy *old = kbs->policy;
    kbs->policy = p;
    memcpy(kbs->policy_digest, d, sizeof d);
    pthread_rwlock_unlock(&kbs->policy_lock);
    rpolicy_free(old);
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
        if (kbs->policy && cl_digest(CL_HASH_SHA256, cl_policy_resource_default,
                                     cl_policy_resource_default_len, kbs->policy_digest, err) < 0)
            return err->code;
        return kbs->policy ? 0 : cl_err_prefix(err, "built-in resource policy");
    }
    if (cl_digest(CL_HASH_SHA256, text, n, kbs->policy_digest, err) < 0)
        return err->code;
    kbs->policy = compile((const char *)text, n, &e);
    if (!kbs->policy)
        cl_error(
            "the stored resource policy does not compile (%s): every resource request is denied",
            e.msg);
    return 0;
}

void kbs_policy_free(struct cl_kbs *kbs)
{
    rpolicy_free(kbs->policy);
    kbs->policy = NULL;
}
