/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resource policy: Rego, rule data.policy.allow, as trustee's KBS evaluates it.
 *   input = the verified token claims
 *   data  = {"plugin", "resource-path": [repo, type, tag], "query": {...},
 *            "settings": {"allow_sample_tee_insecure": bool}}
 * The policy in force is read from [policy_engine] policy_path when that is configured (the
 * file must exist and compile, or the KBS does not start; uploads are written there), else
 * the one stored under trustee's key (namespace "kbs", key "resource-policy"; Cloister's older
 * key "resource-policy.rego" is moved there once, with a warning), else Cloister's built-in
 * default (policies/resource/default.rego). Fails closed: anything but
 * allow == true denies, and a stored policy that no longer compiles denies everything.
 * An upload is compiled before it is stored; a refused upload leaves the old policy in force.
 *
 * Several replicas on a shared store (without policy_path): each request first reads the
 * stored text's version (cl_store_get_if_changed: a digest computed by the database, the text
 * travels only when it differs from the one the compiled policy came from); a new version
 * (another replica stored a new policy) is compiled before the decision, and the decision is
 * made under the policy of exactly the version this request read. So a policy written through
 * one replica is enforced by all from their next request on — the bound is one database read,
 * not a cache lifetime.
 */
#include "crypto/crypto.h"
#include "kbs/kbs_internal.h"
#include "rego/rego.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define POLICY_KEY "resource-policy"
/* Cloister before 2026-12 stored the policy under this key; read once and moved. */
#define POLICY_KEY_OLD "resource-policy.rego"
/* The module name in Rego error positions ("resource-policy.rego:3:1"). */
#define POLICY_MODULE "resource-policy.rego"

extern const char cl_policy_resource_default[];
extern const size_t cl_policy_resource_default_len;

/* A compiled policy and its prepared decision query. */
struct cl_kbs_rpolicy {
    struct cl_rego *engine;
    struct cl_rego_query *allow;
};

static void rpolicy_free(struct cl_kbs_rpolicy *p)
{
    if (!p)
        return;
    cl_rego_query_free(p->allow);
    cl_rego_free(p->engine);
    free(p);
}

static struct cl_kbs_rpolicy *compile_as(const char *text, size_t len, bool v0, struct cl_err *err)
{
    struct cl_rego_opts o = {.max_steps = 1000000, .max_memory = 64u << 20};
    struct cl_kbs_rpolicy *p = calloc(1, sizeof *p);
    if (!p || !(p->engine = cl_rego_new(&o))) {
        rpolicy_free(p);
        cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        return NULL;
    }
    if (cl_rego_add_module(p->engine, POLICY_MODULE, text, len, v0, err) < 0 ||
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
static struct cl_kbs_rpolicy *compile(const char *text, size_t len, struct cl_err *err)
{
    struct cl_kbs_rpolicy *p = compile_as(text, len, false, err);
    if (p || err->code != CL_EPARSE)
        return p;
    struct cl_err e0 = {0};
    p = compile_as(text, len, true, &e0);
    if (p)
        cl_warn("resource policy parsed as Rego v0 (rules without 'if'); consider moving it to "
                "Rego v1");
    return p;
}

static int policy_refresh(struct cl_kbs *kbs, struct cl_store_version *seen, struct cl_err *err);

/* Takes the read lock on the policy to decide with; on a shared store, that is the one
 * compiled from the version this request read (read again when another request installed a
 * different version meanwhile). */
static int policy_lock_current(struct cl_kbs *kbs, struct cl_err *err)
{
    if (!cl_store_shared(kbs->store) || kbs->cfg->policy_path) {
        pthread_rwlock_rdlock(&kbs->policy_lock);
        return 0;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        struct cl_store_version seen = {0};
        if (policy_refresh(kbs, &seen, err) < 0)
            return err->code;
        pthread_rwlock_rdlock(&kbs->policy_lock);
        if (cl_store_version_eq(&kbs->policy_ver, &seen))
            return 0;
        pthread_rwlock_unlock(&kbs->policy_lock);
    }
    return cl_err_stage(err, CL_EIO, "policy", "resource policy: changing too fast; retry");
}

int cl_kbs_policy_eval(struct cl_kbs *kbs, const json_t *claims, const json_t *data, bool *allow,
                       struct cl_err *err)
{
    *allow = false;
    /* Per-request data is an overlay on the data document, so the compiled policy and its
     * prepared query stay shared and read-only across threads. */
    CL_AUTO(json_t) *overlay = json_copy((json_t *)(uintptr_t)data); /* only a member is added */
    if (!overlay || json_object_set_new(overlay, "settings",
                                        json_pack("{s:b}", "allow_sample_tee_insecure",
                                                  kbs->cfg->allow_sample_tee_insecure)) < 0)
        return cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
    if (policy_lock_current(kbs, err) < 0)
        return err->code;
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

int cl_kbs_policy_check(const char *text, size_t len, struct cl_err *err)
{
    struct cl_kbs_rpolicy *p = compile(text, len, err);
    if (!p)
        return err->code;
    rpolicy_free(p);
    return 0;
}

/* policy_path: written whole next to the target, then renamed over it. */
static int write_policy_file(const char *path, const char *text, size_t len, struct cl_err *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return cl_err_stage(err, CL_EINVAL, "policy", "policy_path too long");
    FILE *f = fopen(tmp, "wbx");
    if (!f)
        return cl_err_stage(err, CL_EIO, "policy", "policy_path %s: %s", tmp, strerror(errno));
    bool ok = fwrite(text, 1, len, f) == len;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cl_err_stage(err, CL_EIO, "policy", "policy_path %s: %s", path, strerror(e));
    }
    return 0;
}

/* Puts p (may be NULL: deny all) in force, with the version of the stored text it came from
 * (zero when not known: the next shared-store request reads the text again). */
static void install(struct cl_kbs *kbs, struct cl_kbs_rpolicy *p,
                    const struct cl_store_version *ver)
{
    pthread_rwlock_wrlock(&kbs->policy_lock);
    struct cl_kbs_rpolicy *old = kbs->policy;
    kbs->policy = p;
    kbs->policy_ver = ver ? *ver : (struct cl_store_version){0};
    pthread_rwlock_unlock(&kbs->policy_lock);
    rpolicy_free(old);
}

/* Shared store: reads the stored version (*seen) and recompiles when it is not the one in
 * force. A stored policy that does not compile denies everything, as at start-up. */
static int policy_refresh(struct cl_kbs *kbs, struct cl_store_version *seen, struct cl_err *err)
{
    pthread_rwlock_rdlock(&kbs->policy_lock);
    *seen = kbs->policy_ver;
    pthread_rwlock_unlock(&kbs->policy_lock);
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = NULL;
    int ch = cl_store_get_if_changed(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, seen, &text, &n, &e);
    if (ch < 0)
        return cl_err_stage(err, e.code, "policy", "resource policy read: %s", e.msg);
    if (ch == 0)
        return 0;
    const char *src = text ? (const char *)text : cl_policy_resource_default;
    size_t len = text ? n : cl_policy_resource_default_len;
    struct cl_kbs_rpolicy *p = compile(src, len, &e);
    if (!p)
        cl_error(
            "the stored resource policy does not compile (%s): every resource request is denied",
            e.msg);
    else
        cl_info("resource policy changed in the store (%zu bytes): now in force", len);
    install(kbs, p, seen);
    return 0;
}

int cl_kbs_policy_set(struct cl_kbs *kbs, const char *text, size_t len, struct cl_err *err)
{
    struct cl_kbs_rpolicy *p = compile(text, len, err);
    if (!p)
        return err->code;
    int rc = kbs->cfg->policy_path
                 ? write_policy_file(kbs->cfg->policy_path, text, len, err)
                 : cl_store_set(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, text, len, true, err);
    if (rc < 0) {
        rpolicy_free(p);
        return rc;
    }
    install(kbs, p, NULL);
    cl_info("resource policy set (%zu bytes)%s%s", len, kbs->cfg->policy_path ? " in " : "",
            kbs->cfg->policy_path ? kbs->cfg->policy_path : "");
    return 0;
}

/* The policy text in force: policy_path when configured (it must exist), else the store's
 * "resource-policy" (moving "resource-policy.rego" there once), else NULL (built-in). */
static cl_bytes *policy_text(struct cl_kbs *kbs, size_t *n, struct cl_err *err)
{
    if (kbs->cfg->policy_path) {
        cl_bytes *t = cl_file_read(kbs->cfg->policy_path, CL_AS_MAX_POLICY, n, err);
        if (!t)
            cl_err_prefix(err, "policy_engine.policy_path");
        return t;
    }
    struct cl_err e = {0};
    cl_bytes *t = cl_store_get(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, n, &e);
    if (t || e.code != CL_ENOTFOUND) {
        if (!t)
            cl_err_set(err, e.code, "resource policy: %s", e.msg);
        return t;
    }
    memset(&e, 0, sizeof e);
    t = cl_store_get(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY_OLD, n, &e);
    if (!t) {
        if (e.code != CL_ENOTFOUND)
            cl_err_set(err, e.code, "resource policy (old key %s): %s", POLICY_KEY_OLD, e.msg);
        else
            err->code = CL_ENOTFOUND;
        return NULL;
    }
    memset(&e, 0, sizeof e);
    if (cl_store_set(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY, (const char *)t, *n, true, &e) < 0) {
        cl_warn(
            "resource policy: found under the old key '%s' but could not store it under '%s': %s "
            "(still read from the old key)",
            POLICY_KEY_OLD, POLICY_KEY, e.msg);
        return t;
    }
    memset(&e, 0, sizeof e);
    if (cl_store_delete(kbs->store, CL_KBS_NS_POLICY, POLICY_KEY_OLD, &e) < 0)
        cl_warn("resource policy: old key '%s' not removed: %s", POLICY_KEY_OLD, e.msg);
    cl_warn(
        "resource policy: migrated from store key '%s' to '%s' (namespace %s), as trustee names it",
        POLICY_KEY_OLD, POLICY_KEY, CL_KBS_NS_POLICY);
    return t;
}

int cl_kbs_policy_load(struct cl_kbs *kbs, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = policy_text(kbs, &n, &e);
    if (!text && (e.code != CL_ENOTFOUND || kbs->cfg->policy_path))
        return cl_err_set(err, e.code ? e.code : CL_EIO, "%s", e.msg);
    if (!text) {
        kbs->policy = compile(cl_policy_resource_default, cl_policy_resource_default_len, err);
        return kbs->policy ? 0 : cl_err_prefix(err, "built-in resource policy");
    }
    kbs->policy = compile((const char *)text, n, &e);
    if (!kbs->policy && kbs->cfg->policy_path)
        return cl_err_set(err, e.code, "policy_engine.policy_path %s: %s", kbs->cfg->policy_path,
                          e.msg);
    if (!kbs->policy)
        cl_error(
            "the stored resource policy does not compile (%s): every resource request is denied",
            e.msg);
    return 0;
}

int cl_kbs_policy_reload(struct cl_kbs *kbs, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *text = policy_text(kbs, &n, &e);
    if (!text && (e.code != CL_ENOTFOUND || kbs->cfg->policy_path))
        return cl_err_set(err, e.code ? e.code : CL_EIO, "%s (the policy in force is kept)", e.msg);
    struct cl_kbs_rpolicy *p =
        text ? compile((const char *)text, n, err)
             : compile(cl_policy_resource_default, cl_policy_resource_default_len, err);
    if (!p)
        return cl_err_prefix(err, "resource policy reload (the policy in force is kept)");
    install(kbs, p, NULL);
    cl_info("resource policy reloaded (%s)", kbs->cfg->policy_path ? kbs->cfg->policy_path
                                             : text                ? "store key " POLICY_KEY
                                                                   : "built-in");
    return 0;
}

void cl_kbs_policy_free(struct cl_kbs *kbs)
{
    rpolicy_free(kbs->policy);
    kbs->policy = NULL;
}
