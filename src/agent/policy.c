// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's policy gate (Kata's agent semantics, policy.md A3) on Cloister's Rego engine.
 *
 * One `struct engine` is one loaded policy: its compiled Rego, its data document (pstate
 * lives there) and its print buffer. A `struct cl_agent_policy` points at the current engine
 * under a mutex. A decision holds the mutex from query to state patch, so decisions are
 * serialised as upstream's are and the patch of one request is seen by the next. SetPolicy
 * builds and checks the new engine outside the lock and only swaps a pointer under it: there
 * is never a window with an empty or half-loaded policy, and a bad text leaves the old one.
 */
#include "agent.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rego/rego.h"
#include "json/json.h"

struct engine {
    struct cl_rego *rego;
    bool allow_failures;
    /* print() output of the current decision, kept as values and rendered only for a
     * denial message (cheap when the request is allowed, as most are) */
    struct cl_rego_prints *prints;
};

struct cl_agent_policy {
    pthread_mutex_t lock;
    struct engine *cur;
};

static void engine_free(struct engine *g)
{
    if (!g)
        return;
    cl_rego_free(g->rego); /* resets the sink, which holds values of this engine */
    cl_rego_prints_free(g->prints);
    free(g);
}

enum verdict { ALLOW, DENY, UNDEFINED, FAILED };

/* Evaluates data.agent_policy.<entry>; on ALLOW with ops, patches the data document. */
static enum verdict evaluate_here(struct engine *g, const char *entry, const json_t *input,
                                  bool apply_ops, struct cl_err *err)
{
    char query[192];
    if ((size_t)snprintf(query, sizeof query, "data.agent_policy.%s", entry) >= sizeof query) {
        cl_err_stage(err, CL_EINVAL, CL_AGENT_STAGE_POLICY, "%s: entry name too long", entry);
        return FAILED;
    }
    cl_rego_prints_reset(g->prints);
    CL_AUTO(json_t) *rows = NULL;
    if (cl_rego_eval_query(g->rego, query, input, &rows, err) < 0)
        return FAILED;
    if (json_array_size(rows) == 0)
        return UNDEFINED;
    json_t *exprs = json_object_get(json_array_get(rows, 0), "expressions");
    if (json_array_size(rows) != 1 || json_array_size(exprs) != 1) {
        cl_err_stage(err, CL_EVERIFY, CL_AGENT_STAGE_POLICY, "%zu results where one is expected",
                     json_array_size(rows));
        return FAILED;
    }
    json_t *v = json_object_get(json_array_get(exprs, 0), "value");
    if (json_is_boolean(v))
        return json_is_true(v) ? ALLOW : DENY;
    json_t *allowed = json_object_get(v, "allowed");
    if (!json_is_object(v) || !json_is_boolean(allowed)) {
        cl_err_stage(err, CL_EVERIFY, CL_AGENT_STAGE_POLICY,
                     "the value is neither a boolean nor {\"allowed\": bool, \"ops\": [...]}");
        return FAILED;
    }
    if (!json_is_true(allowed))
        return DENY;
    json_t *ops = json_object_get(v, "ops");
    if (apply_ops && ops && !json_is_null(ops)) {
        CL_AUTO(json_t) *data = cl_rego_get_data(g->rego);
        if (!data || cl_rego_json_patch(&data, ops, err) < 0 ||
            cl_rego_set_data(g->rego, data, err) < 0) {
            cl_err_prefix(err, "state patch");
            return FAILED;
        }
    }
    return ALLOW;
}

/* ---- the evaluator thread ----
 * Every evaluation runs on one process-wide thread. The Rego engine keeps per-thread caches
 * (compiled regular expressions, match contexts) that are never released, and ttrpc runs each
 * request on a thread of its own: evaluated there, each request would leave its caches
 * behind. Decisions are serialised anyway, so one evaluator costs no concurrency, and its
 * caches are reused across requests. The thread lives as long as the process. */

struct eval_job {
    struct engine *g;
    const char *entry;
    const json_t *input;
    bool apply_ops;
    struct cl_err *err;
    enum verdict out;
    bool done;
};

static pthread_once_t eval_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t eval_lock = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static pthread_mutex_t eval_qlock = PTHREAD_MUTEX_INITIALIZER; /* the hand-off */
static pthread_cond_t eval_cond = PTHREAD_COND_INITIALIZER;
static struct eval_job *eval_job;
static bool eval_running;

static void *evaluator_main(void *arg)
{
    pthread_mutex_lock(&eval_qlock);
    for (;;) {
        while (!eval_job || eval_job->done)
            pthread_cond_wait(&eval_cond, &eval_qlock);
        struct eval_job *j = eval_job;
        pthread_mutex_unlock(&eval_qlock);
        enum verdict v = evaluate_here(j->g, j->entry, j->input, j->apply_ops, j->err);
        pthread_mutex_lock(&eval_qlock);
        j->out = v;
        j->done = true;
        pthread_cond_broadcast(&eval_cond);
    }
    return NULL;
}

static void evaluator_start(void)
{
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    /* the evaluator guards its own C stack depth (CL_REGO_MAX_STACK); give it room */
    pthread_attr_setstacksize(&at, 8u << 20);
    eval_running = pthread_create(&th, &at, evaluator_main, NULL) == 0;
    pthread_attr_destroy(&at);
}

static enum verdict evaluate(struct engine *g, const char *entry, const json_t *input,
                             bool apply_ops, struct cl_err *err)
{
    pthread_once(&eval_once, evaluator_start);
    if (!eval_running) /* no thread could be started: evaluate here rather than fail */
        return evaluate_here(g, entry, input, apply_ops, err);
    struct eval_job j = {g, entry, input, apply_ops, err, FAILED, false};
    pthread_mutex_lock(&eval_lock);
    pthread_mutex_lock(&eval_qlock);
    eval_job = &j;
    pthread_cond_broadcast(&eval_cond);
    while (!j.done)
        pthread_cond_wait(&eval_cond, &eval_qlock);
    eval_job = NULL;
    pthread_mutex_unlock(&eval_qlock);
    pthread_mutex_unlock(&eval_lock);
    return j.out;
}

static struct engine *engine_new(const char *text, size_t len, const char *origin,
                                 struct cl_err *err)
{
    if (len > CL_AGENT_MAX_POLICY)
        return cl_err_stage(err, CL_ELIMIT, CL_AGENT_STAGE_POLICY,
                            "%s: %zu bytes exceed CL_AGENT_MAX_POLICY (%u)", origin, len,
                            CL_AGENT_MAX_POLICY),
               NULL;
    struct engine *g = calloc(1, sizeof *g);
    if (!g || !(g->prints = cl_rego_prints_new())) {
        free(g);
        return cl_err_set(err, CL_ENOMEM, "policy: out of memory"), NULL;
    }
    struct cl_rego_opts o = {.prints = g->prints};
    g->rego = cl_rego_new(&o);
    CL_AUTO(json_t) *data = json_pack("{s:{}}", "pstate");
    if (!g->rego || !data) {
        engine_free(g);
        return cl_err_set(err, CL_ENOMEM, "policy: out of memory"), NULL;
    }
    /* Rego v1 as upstream's agent; v0 (older generated policies) accepted with a warning. */
    struct cl_err e1 = {0};
    if (cl_rego_add_module(g->rego, "agent_policy", text, len, false, &e1) < 0) {
        struct cl_err e0 = {0};
        cl_rego_free(g->rego);
        g->rego = cl_rego_new(&o);
        if (!g->rego || cl_rego_add_module(g->rego, "agent_policy", text, len, true, &e0) < 0) {
            engine_free(g);
            if (err)
                *err = e1;
            cl_err_prefix(err, "%s", origin);
            return NULL;
        }
        cl_warn("%s: the policy is Rego v0 (accepted; Kata's agent requires v1): %s", origin,
                e1.msg);
    }
    if (cl_rego_set_data(g->rego, data, err) < 0) {
        engine_free(g);
        return NULL;
    }
    if (cl_rego_compile(g->rego, err) < 0) {
        engine_free(g);
        cl_err_prefix(err, "%s", origin);
        if (err && err->code != CL_ELIMIT && err->code != CL_ENOMEM)
            err->code = CL_EINVAL;
        return NULL;
    }
    /* Fail closed: only an explicit true turns the switch on (upstream keeps the old value
     * when the new policy leaves it undefined; we do not). */
    struct cl_err ef = {0};
    CL_AUTO(json_t) *empty = json_object();
    g->allow_failures = evaluate(g, "AllowRequestsFailingPolicy", empty, false, &ef) == ALLOW;
    if (g->allow_failures)
        cl_warn(
            "%s: AllowRequestsFailingPolicy is true: denied and failing requests are let through",
            origin);
    return g;
}

struct cl_agent_policy *cl_agent_policy_new(const char *text, size_t len, const char *origin,
                                            struct cl_err *err)
{
    struct engine *g = engine_new(text, len, origin, err);
    if (!g)
        return NULL;
    struct cl_agent_policy *p = calloc(1, sizeof *p);
    if (!p) {
        engine_free(g);
        return cl_err_set(err, CL_ENOMEM, "policy: out of memory"), NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->cur = g;
    cl_info("policy loaded from %s (%zu bytes)", origin, len);
    return p;
}

void cl_agent_policy_free(struct cl_agent_policy *p)
{
    if (!p)
        return;
    engine_free(p->cur);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int cl_agent_policy_check(struct cl_agent_policy *p, const char *entry, const json_t *input,
                          struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    pthread_mutex_lock(&p->lock);
    struct engine *g = p->cur;
    struct cl_err e = {0};
    enum verdict v = evaluate(g, entry, input, true, &e);
    int rc = 0;
    switch (v) {
    case ALLOW:
        break;
    case DENY: {
        if (g->allow_failures) {
            cl_warn("%s is blocked by policy; allowed by AllowRequestsFailingPolicy", entry);
            break;
        }
        bool cut = false;
        CL_AUTO(cl_str) *text = cl_rego_prints_text(g->prints, " ", CL_AGENT_MAX_PRINTS, &cut);
        rc = cl_err_stage(err, CL_EDENIED, CL_AGENT_STAGE_POLICY, "%s is blocked by policy: %s%s",
                          entry, text ? text : "", cut ? " ..." : "");
        break;
    }
    case UNDEFINED:
        if (g->allow_failures) {
            cl_warn("%s: the policy does not define it; allowed by AllowRequestsFailingPolicy",
                    entry);
            break;
        }
        rc = cl_err_stage(err, CL_EVERIFY, CL_AGENT_STAGE_POLICY,
                          "%s: internal error: the policy does not define it", entry);
        break;
    case FAILED:
        if (g->allow_failures) {
            cl_warn("%s: policy error (%s); allowed by AllowRequestsFailingPolicy", entry, e.msg);
            break;
        }
        rc = cl_err_stage(err, CL_EVERIFY, CL_AGENT_STAGE_POLICY, "%s: internal error: %s", entry,
                          e.msg);
        break;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int cl_agent_policy_replace(struct cl_agent_policy *p, const char *text, size_t len,
                            const char *origin, struct cl_err *err)
{
    struct engine *g = engine_new(text, len, origin, err);
    if (!g)
        return err ? err->code : CL_EINVAL;
    pthread_mutex_lock(&p->lock);
    struct engine *old = p->cur;
    p->cur = g;
    pthread_mutex_unlock(&p->lock);
    engine_free(old);
    cl_info("policy replaced from %s (%zu bytes)", origin, len);
    return 0;
}

bool cl_agent_policy_allows_failures(struct cl_agent_policy *p)
{
    pthread_mutex_lock(&p->lock);
    bool v = p->cur->allow_failures;
    pthread_mutex_unlock(&p->lock);
    return v;
}

json_t *cl_agent_policy_data(struct cl_agent_policy *p)
{
    pthread_mutex_lock(&p->lock);
    json_t *d = cl_rego_get_data(p->cur->rego);
    pthread_mutex_unlock(&p->lock);
    return d;
}

cl_str *cl_agent_default_policy(void)
{
    /* Every request the agent serves allowed, AllowRequestsFailingPolicy off: the compiled-in
     * default has the effect of Kata's allow-all without its missing entries. */
    size_t cap = 256 + cl_agent_nrpcs * 96, n = 0;
    cl_str *s = malloc(cap);
    if (!s)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n,
                          "package agent_policy\n\ndefault AllowRequestsFailingPolicy := false\n");
    for (size_t i = 0; i < cl_agent_nrpcs; i++) {
        const char *name = cl_agent_rpcs[i].req->short_name;
        if (cl_agent_rpc_by_request(name) != &cl_agent_rpcs[i])
            continue; /* ReadStdout and ReadStderr share ReadStreamRequest */
        int w = snprintf(s + n, cap - n, "default %s := true\n", name);
        if (w < 0 || (size_t)w >= cap - n) {
            free(s);
            return NULL;
        }
        n += (size_t)w;
    }
    return s;
}
