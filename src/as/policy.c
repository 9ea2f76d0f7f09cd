/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation policies: Rego, evaluated per submod as trustee does. The policy for a submod of
 * class C is the one stored under "<policy_id>_C" (namespace attestation_service_policy, key
 * "<id>.rego"), else Cloister's built-in default for that class (policies/attestation/
 * default_<class>.rego, embedded at build time). Rules read: data.policy.trust_claims (AR4SI
 * claim name → integer in [-128, 127]) and, optionally, data.policy.extensions. Reference
 * values are reached through the extension builtin query_reference_value(name), which returns
 * null for a value that is missing or expired. Compiled policies are cached; an upload is
 * compiled before it is stored, so a bad policy never replaces a good one.
 */
#include "as/as_internal.h"
#include "rego/rego.h"

#include <string.h>

extern const char cl_policy_default_cpu[], cl_policy_default_gpu[];
extern const size_t cl_policy_default_cpu_len, cl_policy_default_gpu_len;

static const struct {
    const char *id;
    const char *text;
    const size_t *len;
} builtin_policies[] = {
    {"default_cpu", cl_policy_default_cpu, &cl_policy_default_cpu_len},
    {"default_gpu", cl_policy_default_gpu, &cl_policy_default_gpu_len},
};

/* AR4SI claim names in the order trustee serialises them. */
static const char *const ar4si_claims[] = {
    "instance-identity", "configuration",  "executables",    "file-system",
    "hardware",          "runtime-opaque", "storage-opaque", "sourced-data",
};

struct as_policy {
    char id[CL_STORE_MAX_KEY];
    struct as_compiled *c;
};

/* A compiled attestation policy with its two prepared rule queries. */
struct as_compiled {
    struct cl_rego *engine;
    struct cl_rego_query *trust_claims, *extensions;
};

static void compiled_free(struct as_compiled *c)
{
    if (!c)
        return;
    cl_rego_query_free(c->trust_claims);
    cl_rego_query_free(c->extensions);
    cl_rego_free(c->engine);
    free(c);
}

/* query_reference_value(name): the registered value, or null. */
static int bi_query_reference_value(struct cl_rego_bctx *ctx, struct cl_rv *const *args,
                                    struct cl_rv **out)
{
    struct cl_as *as = cl_rego_bi_user(ctx);
    const char *name = cl_rv_str_get(args[0], NULL);
    if (!name)
        return cl_rego_bi_type_error(ctx, 1, "string", args[0]);
    struct cl_err e = {0};
    CL_AUTO(json_t) *v = cl_as_rv_query(as, name, &e);
    if (!v && e.code != CL_ENOTFOUND && e.code != CL_EEXPIRED && e.code != CL_EINVAL)
        return cl_rego_bi_error(ctx, "%s", e.msg);
    *out = v ? cl_rv_from_json(v) : cl_rv_null();
    return *out ? 0 : cl_rego_bi_error(ctx, "out of memory");
}

/* Compiles a policy text into a new engine with the extension builtin registered, and
 * prepares its rule queries. */
static struct as_compiled *compile_policy_as(struct cl_as *as, const char *id, const char *text,
                                             size_t len, bool v0, struct cl_err *err)
{
    struct cl_rego_opts o = {.max_steps = 1000000, .max_memory = 64u << 20};
    struct as_compiled *c = calloc(1, sizeof *c);
    if (!c || !(c->engine = cl_rego_new(&o))) {
        compiled_free(c);
        cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        return NULL;
    }
    char file[CL_STORE_MAX_KEY + 8];
    snprintf(file, sizeof file, "%s.rego", id);
    if (cl_rego_register_builtin(c->engine, "query_reference_value", 1, bi_query_reference_value,
                                 as, err) < 0 ||
        cl_rego_add_module(c->engine, file, text, len, v0, err) < 0 ||
        cl_rego_compile(c->engine, err) < 0 ||
        !(c->trust_claims = cl_rego_prepare(c->engine, "data.policy.trust_claims", err)) ||
        !(c->extensions = cl_rego_prepare(c->engine, "data.policy.extensions", err))) {
        compiled_free(c);
        err->stage = "policy";
        cl_err_prefix(err, "attestation policy '%s'", id);
        return NULL;
    }
    return c;
}

/* Rego v1 first, then v0 (older trustee policies) with a warning; the v1 error is reported. */
static struct as_compiled *compile_policy(struct cl_as *as, const char *id, const char *text,
                                          size_t len, struct cl_err *err)
{
    struct as_compiled *c = compile_policy_as(as, id, text, len, false, err);
    if (c || err->code != CL_EPARSE)
        return c;
    struct cl_err e0 = {0};
    c = compile_policy_as(as, id, text, len, true, &e0);
    if (c)
        cl_warn("attestation policy '%s' parsed as Rego v0 (rules without 'if'); consider moving "
                "it to Rego v1",
                id);
    return c;
}

void cl_as_policies_free(struct cl_as *as)
{
    for (size_t i = 0; i < as->npolicies; i++) {
        compiled_free(as->policies[i].c);
    }
    free(as->policies);
    as->policies = NULL;
    as->npolicies = 0;
}

/* The cached compiled policy named id, or NULL. Caller holds the lock. */
static struct as_compiled *policy_lookup_locked(struct cl_as *as, const char *id)
{
    for (size_t i = 0; i < as->npolicies; i++)
        if (strcmp(as->policies[i].id, id) == 0)
            return as->policies[i].c;
    return NULL;
}

/* Compiles the policy named id (stored, else built in) and caches it; NULL with err.
 * Takes the locks itself. */
static struct as_compiled *policy_load(struct cl_as *as, const char *id, struct cl_err *err)
{
    /* not cached: stored text or a built-in default */
    char key[CL_STORE_MAX_KEY + 8];
    snprintf(key, sizeof key, "%s.rego", id);
    size_t n = 0;
    struct cl_err se = {0};
    CL_AUTO(cl_bytes) *text = cl_store_get(as->store, CL_AS_NS_POLICY, key, &n, &se);
    const char *src = (const char *)text;
    if (!text) {
        if (se.code != CL_ENOTFOUND) {
            cl_err_stage(err, se.code, "policy", "attestation policy '%s': %s", id, se.msg);
            return NULL;
        }
        for (size_t i = 0; i < CL_ARRAY_LEN(builtin_policies) && !src; i++)
            if (strcmp(builtin_policies[i].id, id) == 0) {
                src = builtin_policies[i].text;
                n = *builtin_policies[i].len;
            }
        if (!src) {
            cl_err_stage(err, CL_EDENIED, "policy", "no attestation policy '%s' (unset means deny)",
                         id);
            return NULL;
        }
    }
    struct as_compiled *e = compile_policy(as, id, src, n, err);
    if (!e)
        return NULL;
    pthread_rwlock_wrlock(&as->policy_lock);
    struct as_compiled *raced = policy_lookup_locked(as, id);
    if (raced) { /* another thread compiled it meanwhile */
        pthread_rwlock_unlock(&as->policy_lock);
        compiled_free(e);
        return raced;
    }
    struct as_policy *np = realloc(as->policies, (as->npolicies + 1) * sizeof *np);
    if (!np) {
        pthread_rwlock_unlock(&as->policy_lock);
        compiled_free(e);
        cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        return NULL;
    }
    as->policies = np;
    snprintf(np[as->npolicies].id, sizeof np[as->npolicies].id, "%s", id);
    np[as->npolicies].c = e;
    as->npolicies++;
    pthread_rwlock_unlock(&as->policy_lock);
    return e;
}

int cl_as_set_policy(struct cl_as *as, const char *id, const char *text, size_t len,
                     struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!cl_store_key_valid(id) || strchr(id, '/'))
        return cl_err_stage(err, CL_EINVAL, "policy",
                            "attestation policy id '%.64s' is not a valid name", id);
    if (len > CL_AS_MAX_POLICY)
        return cl_err_stage(err, CL_ELIMIT, "policy", "attestation policy of %zu bytes exceeds %d",
                            len, CL_AS_MAX_POLICY);
    struct as_compiled *e = compile_policy(as, id, text, len, err);
    if (!e)
        return err->code;
    char key[CL_STORE_MAX_KEY + 8];
    snprintf(key, sizeof key, "%s.rego", id);
    int rc = cl_store_set(as->store, CL_AS_NS_POLICY, key, text, len, true, err);
    if (rc < 0) {
        compiled_free(e);
        return rc;
    }
    /* Swap under the write lock: evaluations in flight hold the read lock. */
    pthread_rwlock_wrlock(&as->policy_lock);
    struct as_compiled *old = NULL;
    size_t i = 0;
    while (i < as->npolicies && strcmp(as->policies[i].id, id) != 0)
        i++;
    if (i < as->npolicies) {
        old = as->policies[i].c;
        as->policies[i].c = e;
        e = NULL;
    }
    pthread_rwlock_unlock(&as->policy_lock);
    compiled_free(old);
    compiled_free(e); /* not cached yet: the next lookup compiles the stored text */
    cl_info("attestation policy '%s' set (%zu bytes)", id, len);
    return 0;
}

/* Checks trust_claims as trustee's broker does and fills the claims it leaves unset with 0. */
static json_t *vector_of(const json_t *tc, const char *id, struct cl_err *err)
{
    if (!json_is_object(tc)) {
        cl_err_stage(err, CL_EDENIED, "policy", "policy '%s': trust_claims must be an object", id);
        return NULL;
    }
    if (json_object_size(tc) == 0) {
        cl_err_stage(err, CL_EDENIED, "policy", "policy '%s': at least one trust claim must be set",
                     id);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)tc, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < CL_ARRAY_LEN(ar4si_claims); i++)
            known = known || strcmp(k, ar4si_claims[i]) == 0;
        if (!known) {
            cl_err_stage(err, CL_EDENIED, "policy",
                         "policy '%s': '%.64s' is not an AR4SI trust claim", id, k);
            return NULL;
        }
        if (!json_is_integer(v) || json_integer_value(v) < -128 || json_integer_value(v) > 127) {
            cl_err_stage(err, CL_EDENIED, "policy",
                         "policy '%s': trust claim '%s' must be an integer in [-128, 127]", id, k);
            return NULL;
        }
    }
    json_t *out = json_object();
    for (size_t i = 0; out && i < CL_ARRAY_LEN(ar4si_claims); i++) {
        json_t *x = json_object_get(tc, ar4si_claims[i]);
        json_object_set_new(out, ar4si_claims[i], json_integer(x ? json_integer_value(x) : 0));
    }
    return out;
}

int cl_as_appraise(struct cl_as *as, const char *policy_id, const char *tee_class,
                   const json_t *input, json_t **vector, json_t **extensions, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    char id[CL_STORE_MAX_KEY];
    snprintf(id, sizeof id, "%s_%s", policy_id, tee_class);
    /* The read lock spans lookup and evaluation, so a concurrent upload cannot free the
     * compiled policy in between. */
    pthread_rwlock_rdlock(&as->policy_lock);
    struct as_compiled *e = policy_lookup_locked(as, id);
    pthread_rwlock_unlock(&as->policy_lock);
    if (!e && !(e = policy_load(as, id, err)))
        return err->code;
    pthread_rwlock_rdlock(&as->policy_lock);
    e = policy_lookup_locked(as, id);
    struct cl_err re = {0};
    CL_AUTO(json_t) *tc = e ? cl_rego_query_eval(e->trust_claims, input, NULL, &re) : NULL;
    CL_AUTO(json_t) *ext = tc ? cl_rego_query_eval(e->extensions, input, NULL, &re) : NULL;
    pthread_rwlock_unlock(&as->policy_lock);
    if (re.code < 0)
        return cl_err_stage(err, re.code, "policy", "policy '%s': %s", id, re.msg);
    if (!tc) {
        /* rule absent: every claim "none", as trustee */
        CL_AUTO(json_t) *zero = json_object();
        for (size_t i = 0; zero && i < CL_ARRAY_LEN(ar4si_claims); i++)
            json_object_set_new(zero, ar4si_claims[i], json_integer(0));
        *vector = CL_STEAL(zero);
    } else {
        *vector = vector_of(tc, id, err);
        if (!*vector)
            return err->code;
    }
    *extensions = CL_STEAL(ext);
    return 0;
}

const char *cl_as_ear_status(const json_t *vector)
{
    static const char *const tiers[] = {"none", "affirming", "warning", "contraindicated"};
    int worst = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)vector, k, v)
    {
        json_int_t x = json_integer_value(v);
        int t = (x >= -1 && x <= 1) ? 0 : (x >= -32 && x <= 31) ? 1 : (x >= -96 && x <= 95) ? 2 : 3;
        if (t > worst)
            worst = t;
    }
    return tiers[worst];
}
