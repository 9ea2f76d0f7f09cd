/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation policies: Rego, evaluated per submod as trustee does. The policy for a submod of
 * class C is the one stored under "<policy_id>_C" (namespace attestation_service_policy, key
 * "<id>.rego"), else Cloister's built-in default for that class (policies/attestation/
 * default_<class>.rego, embedded at build time). Rules read: data.policy.trust_claims (AR4SI
 * claim name → integer in [-128, 127]) and, optionally, data.policy.extensions. Reference
 * values are reached through the extension builtin query_reference_value(name), which returns
 * null for a value that is missing or expired. An upload is compiled before it is stored, so a
 * bad upload never replaces a good policy.
 *
 * Compiled policies are cached per process, each with the version of the stored text it came
 * from (cl_store_get_if_changed: a digest computed by the database). Every appraisal first
 * reads that version — one small read, the text travels only when it changed — and compiles
 * the new text before deciding. So a policy written through one replica of a shared store is
 * enforced by every replica from its next attestation on, and a policy deleted from the store
 * falls back to the built-in one. Reference values are not cached at all: each
 * query_reference_value reads the store. Compiled policies are reference-counted, so an
 * evaluation in flight keeps the one it started with while a newer one is installed.
 */
#include "as/as_internal.h"
#include "rego/rego.h"

#include <stdatomic.h>
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

/* A compiled attestation policy with its two prepared rule queries; refs: one for the cache,
 * one per evaluation in flight. */
struct as_compiled {
    struct cl_rego *engine;
    struct cl_rego_query *trust_claims, *extensions;
    atomic_uint refs;
};

/* A cache entry: c is NULL when the stored text of that version does not compile. */
struct as_policy {
    char id[CL_STORE_MAX_KEY];
    struct cl_store_version ver;
    struct as_compiled *c;
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

/* Drops one reference. */
static void compiled_put(struct as_compiled *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        compiled_free(c);
}

/*
 * The reference values one appraisal has read, by name: its two queries, and every rule that
 * asks for the same name again, see one snapshot, and the store is read once per name. Set
 * by cl_as_appraise around its evaluations, on its own thread (evaluation is synchronous).
 */
#define RV_MEMO 16
struct rv_memo {
    size_t n;
    struct {
        char name[64];
        struct cl_rv *v; /* owned reference */
    } e[RV_MEMO];
};
static __thread struct rv_memo *tl_rv_memo;

static struct cl_rv *rv_memo_get(const char *name)
{
    struct rv_memo *m = tl_rv_memo;
    for (size_t i = 0; m && i < m->n; i++)
        if (strcmp(m->e[i].name, name) == 0)
            return cl_rv_incref(m->e[i].v);
    return NULL;
}

static void rv_memo_put(const char *name, struct cl_rv *v)
{
    struct rv_memo *m = tl_rv_memo;
    if (!m || m->n == RV_MEMO || strlen(name) >= sizeof m->e[0].name)
        return; /* not remembered: read again if asked again */
    snprintf(m->e[m->n].name, sizeof m->e[m->n].name, "%s", name);
    m->e[m->n++].v = cl_rv_incref(v);
}

static void rv_memo_clear(struct rv_memo *m)
{
    for (size_t i = 0; i < m->n; i++)
        cl_rv_decref(m->e[i].v);
    m->n = 0;
}

/* query_reference_value(name): the registered value, or null. */
static int bi_query_reference_value(struct cl_rego_bctx *ctx, struct cl_rv *const *args,
                                    struct cl_rv **out)
{
    struct cl_as *as = cl_rego_bi_user(ctx);
    const char *name = cl_rv_str_get(args[0], NULL);
    if (!name)
        return cl_rego_bi_type_error(ctx, 1, "string", args[0]);
    if ((*out = rv_memo_get(name)))
        return 0;
    struct cl_err e = {0};
    CL_AUTO(json_t) *v = cl_as_rv_query(as, name, &e);
    if (!v && e.code != CL_ENOTFOUND && e.code != CL_EEXPIRED && e.code != CL_EINVAL)
        return cl_rego_bi_error(ctx, "%s", e.msg);
    *out = v ? cl_rv_from_json(v) : cl_rv_null();
    if (!*out)
        return cl_rego_bi_error(ctx, "out of memory");
    rv_memo_put(name, *out);
    return 0;
}

/* Compiles a policy text into a new engine with the extension builtin registered, and
 * prepares its rule queries. */
static struct as_compiled *compile_policy_as(struct cl_as *as, const char *id, const char *text,
                                             size_t len, bool v0, struct cl_err *err)
{
    struct cl_rego_opts o = {.max_steps = 1000000, .max_memory = 64u << 20};
    struct as_compiled *c = calloc(1, sizeof *c);
    if (c)
        atomic_init(&c->refs, 1);
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
        compiled_put(as->policies[i].c);
    }
    free(as->policies);
    as->policies = NULL;
    as->npolicies = 0;
}

/* The cache entry named id, or NULL. Caller holds the lock. */
static struct as_policy *policy_lookup_locked(struct cl_as *as, const char *id)
{
    for (size_t i = 0; i < as->npolicies; i++)
        if (strcmp(as->policies[i].id, id) == 0)
            return &as->policies[i];
    return NULL;
}

/* Puts c (may be NULL: does not compile) in the cache as id at version ver; the cache takes
 * the caller's reference. */
static int policy_install(struct cl_as *as, const char *id, const struct cl_store_version *ver,
                          struct as_compiled *c, struct cl_err *err)
{
    pthread_rwlock_wrlock(&as->policy_lock);
    struct as_policy *p = policy_lookup_locked(as, id);
    if (!p) {
        struct as_policy *np = realloc(as->policies, (as->npolicies + 1) * sizeof *np);
        if (!np) {
            pthread_rwlock_unlock(&as->policy_lock);
            compiled_put(c);
            return cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        }
        as->policies = np;
        p = &np[as->npolicies++];
        snprintf(p->id, sizeof p->id, "%s", id);
        p->c = NULL;
    }
    struct as_compiled *old = p->c;
    p->c = c;
    p->ver = *ver;
    pthread_rwlock_unlock(&as->policy_lock);
    compiled_put(old);
    return 0;
}

/* The cached policy id at version ver, with a reference for the caller: 1 found (*out, or
 * NULL when that version does not compile), 0 not cached at that version. */
static int policy_cached(struct cl_as *as, const char *id, const struct cl_store_version *ver,
                         struct as_compiled **out)
{
    pthread_rwlock_rdlock(&as->policy_lock);
    struct as_policy *p = policy_lookup_locked(as, id);
    int found = p && cl_store_version_eq(&p->ver, ver);
    if (found && (*out = p->c))
        atomic_fetch_add(&p->c->refs, 1);
    pthread_rwlock_unlock(&as->policy_lock);
    return found;
}

/* Compiles the text read at version ver (NULL: the key is absent, so the built-in policy of
 * that name) and caches it; the result carries a reference for the caller. */
static struct as_compiled *policy_compile_new(struct cl_as *as, const char *id,
                                              const struct cl_store_version *ver, const char *text,
                                              size_t n, struct cl_err *err)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(builtin_policies) && !text; i++)
        if (strcmp(builtin_policies[i].id, id) == 0) {
            text = builtin_policies[i].text;
            n = *builtin_policies[i].len;
        }
    if (!text) {
        cl_err_stage(err, CL_EDENIED, "policy", "no attestation policy '%s' (unset means deny)",
                     id);
        return NULL;
    }
    struct cl_err ce = {0};
    struct as_compiled *c = compile_policy(as, id, text, n, &ce);
    if (!c && ce.code == CL_ENOMEM) {
        *err = ce;
        return NULL;
    }
    if (!c)
        cl_error("the stored attestation policy '%s' does not compile (%s): attestations under "
                 "it are refused until a good one is uploaded",
                 id, ce.msg);
    else if (ver->present)
        cl_info("attestation policy '%s' changed in the store (%zu bytes): now in force", id, n);
    if (c)
        atomic_fetch_add(&c->refs, 1); /* the caller's; the cache takes the first */
    if (policy_install(as, id, ver, c, err) < 0) {
        compiled_put(c);
        return NULL;
    }
    if (!c)
        cl_err_stage(err, CL_EDENIED, "policy",
                     "the stored attestation policy '%s' does not compile: denying", id);
    return c;
}

/* The policy named id as the store holds it now, with a reference for the caller: one read
 * of the stored version; the text is read and compiled only when it changed. */
static struct as_compiled *policy_acquire(struct cl_as *as, const char *id, struct cl_err *err)
{
    char key[CL_STORE_MAX_KEY + 8];
    snprintf(key, sizeof key, "%s.rego", id);
    struct cl_store_version ver = {0};
    pthread_rwlock_rdlock(&as->policy_lock);
    struct as_policy *p = policy_lookup_locked(as, id);
    if (p)
        ver = p->ver;
    pthread_rwlock_unlock(&as->policy_lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        CL_AUTO(cl_bytes) *text = NULL;
        size_t n = 0;
        struct cl_err se = {0};
        int ch = cl_store_get_if_changed(as->store, CL_AS_NS_POLICY, key, &ver, &text, &n, &se);
        if (ch < 0) {
            cl_err_stage(err, se.code, "policy", "attestation policy '%s': %s", id, se.msg);
            return NULL;
        }
        if (ch == 1)
            return policy_compile_new(as, id, &ver, (const char *)text, n, err);
        struct as_compiled *c = NULL;
        if (policy_cached(as, id, &ver, &c)) {
            if (!c)
                cl_err_stage(err, CL_EDENIED, "policy",
                             "the stored attestation policy '%s' does not compile: denying", id);
            return c;
        }
        ver = (struct cl_store_version){0}; /* the cache moved meanwhile: read it all */
    }
    cl_err_stage(err, CL_EIO, "policy", "attestation policy '%s': changing too fast", id);
    return NULL;
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
    struct as_compiled *c = compile_policy(as, id, text, len, err);
    if (!c)
        return err->code;
    char key[CL_STORE_MAX_KEY + 8];
    snprintf(key, sizeof key, "%s.rego", id);
    int rc = cl_store_set(as->store, CL_AS_NS_POLICY, key, text, len, true, err);
    if (rc < 0) {
        compiled_put(c);
        return rc;
    }
    /* Cache it under the version the store gives the text now; if another writer got in
     * between, the next appraisal sees a version that is not this one and compiles that. */
    struct cl_store_version ver = {0};
    CL_AUTO(cl_bytes) *back = NULL;
    size_t n = 0;
    if (cl_store_get_if_changed(as->store, CL_AS_NS_POLICY, key, &ver, &back, &n, NULL) == 1 &&
        back && n == len && memcmp(back, text, len) == 0) {
        if (policy_install(as, id, &ver, c, NULL) < 0)
            cl_debug("attestation policy '%s': not cached (out of memory)", id);
    } else {
        compiled_put(c);
    }
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
    /* The reference keeps this compiled policy alive while another request installs a newer
     * one. */
    struct as_compiled *e = policy_acquire(as, id, err);
    if (!e)
        return err->code;
    struct cl_err re = {0};
    struct rv_memo memo = {0};
    tl_rv_memo = &memo;
    CL_AUTO(json_t) *tc = cl_rego_query_eval(e->trust_claims, input, NULL, &re);
    CL_AUTO(json_t) *ext = tc ? cl_rego_query_eval(e->extensions, input, NULL, &re) : NULL;
    tl_rv_memo = NULL;
    rv_memo_clear(&memo);
    compiled_put(e);
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
