/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KBS HTTP front: the route table, the RCAR handshake (auth, attest), resource release,
 * health and metrics. Every refusal goes through cl_kbs_fail so that the reply carries trustee's
 * ErrorInformation and the log line names the check (file:line) that refused.
 */
#include "kbs/cl_version.h"
#include "kbs/kbs_internal.h"
#include "tee/tee.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ERR_TYPE_PREFIX "https://github.com/confidential-containers/kbs/errors/"

void cl_kbs_fail_at(struct cl_http_resp *resp, const char *variant, int status, const char *file,
                    int line, const char *fmt, ...)
{
    char detail[CL_ERR_MSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (!status)
        status =
            (strcmp(variant, "InvalidRequestPath") == 0 || strcmp(variant, "PluginNotFound") == 0)
                ? 404
                : 401;
    CL_AUTO(json_t) *body =
        json_pack("{s:s+, s:s}", "type", ERR_TYPE_PREFIX, variant, "detail", detail);
    if (!body) {
        /* the detail quotes request text that is not UTF-8 (a path, a TEE name): JSON cannot
         * carry it, so it goes escaped rather than the whole body being lost */
        char esc[sizeof detail * 4];
        cl_log_escape(detail, esc, sizeof esc);
        body = json_pack("{s:s+, s:s}", "type", ERR_TYPE_PREFIX, variant, "detail", esc);
    }
    CL_AUTO(cl_str) *text = body ? cl_json_compact(body) : NULL;
    cl_http_reply_at(resp, status, "application/json", text ? text : "{}", text ? strlen(text) : 2,
                     file, line);
    cl_log_at(CL_LOG_INFO, file, line, "refused: %s: %s", variant, detail);
}

static void reply_json(struct cl_http_resp *resp, const json_t *v, const char *file, int line)
{
    CL_AUTO(cl_str) *text = cl_json_compact(v);
    if (!text) {
        cl_kbs_fail_at(resp, "SerdeError", 500, file, line, "out of memory");
        return;
    }
    cl_http_reply_at(resp, 200, "application/json", text, strlen(text), file, line);
}

/* ---- POST /kbs/v0/auth ---- */

static void h_auth(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    atomic_fetch_add(&kbs->metrics.auth, 1);
    struct cl_err e = {0};
    struct cl_kbs_request r;
    if (cl_kbs_request_parse(req->body, req->body_len, &r, &e) < 0) {
        cl_kbs_fail(resp,
                    e.code == CL_EPARSE || e.code == CL_ELIMIT ? "SerdeError" : "AttestationError",
                    "%s", e.msg);
        return;
    }
    const struct cl_tee_verifier *v = cl_tee_verifier_find(r.tee);
    if (!v) {
        cl_kbs_fail(resp, "AttestationError", "TEE '%s' has no verifier in this KBS", r.tee);
        return;
    }
    if (v->insecure && !kbs->cfg->allow_sample_tee_insecure) {
        cl_kbs_fail(resp, "AttestationError",
                    "TEE '%s' proves nothing and is refused "
                    "(attestation_service.allow_sample_tee_insecure is not set)",
                    r.tee);
        return;
    }
    char id[KBS_SESSION_ID_LEN + 1], nonce[KBS_NONCE_B64_LEN + 1];
    int64_t expires = 0;
    if (cl_kbs_session_create(&kbs->sessions, r.tee, id, nonce, &expires, &e) < 0) {
        cl_kbs_fail_status(resp, "AttestationError", e.code == CL_ELIMIT ? 503 : 500, "%s", e.msg);
        return;
    }
    char cookie[160], date[64];
    time_t t = (time_t)expires;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(cookie, sizeof cookie, "kbs-session-id=%s; Expires=%s", id, date);
    cl_http_resp_header(resp, "Set-Cookie", cookie);
    atomic_fetch_add(&kbs->metrics.auth_ok, 1);
    char challenge[KBS_NONCE_B64_LEN + 48]; /* the nonce is base64: nothing to escape */
    int n =
        snprintf(challenge, sizeof challenge, "{\"nonce\":\"%s\",\"extra-params\":\"\"}", nonce);
    cl_http_reply(resp, 200, "application/json", challenge, (size_t)n);
}

/* ---- POST /kbs/v0/attest ---- */

/* How long an /attest that lost the race for a challenge waits for the winner's token. */
#define KBS_ATTEST_WAIT_MS 5000

/* True when s can stand between JSON quotes as it is (no quote, backslash, control or
 * non-ASCII byte): the base64 and base64url texts the handshake answers with. */
static bool json_plain(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static void reply_token(struct cl_http_resp *resp, const char *token, const char *file, int line)
{
    if (!json_plain(token)) {
        CL_AUTO(json_t) *r = json_pack("{s:s}", "token", token);
        reply_json(resp, r, file, line);
        return;
    }
    CL_AUTO(cl_str) *text = cl_strcat_new("{\"token\":\"", token, "\"}", NULL);
    if (!text) {
        cl_kbs_fail_at(resp, "SerdeError", 500, file, line, "out of memory");
        return;
    }
    cl_http_reply_at(resp, 200, "application/json", text, strlen(text), file, line);
}

/* Another request (maybe on another replica) claimed this challenge: answer with its token
 * once it is stored, as trustee answers a second /attest of an attested session. */
static void attest_wait(struct cl_kbs *kbs, struct cl_http_resp *resp, const char *sid)
{
    for (int waited = 0;; waited += 50) {
        struct cl_err e = {0};
        struct cl_kbs_session s;
        if (cl_kbs_session_get(&kbs->sessions, sid, &s, &e) < 0) {
            cl_kbs_fail(resp, "AttestationError", "attest: %s", e.msg);
            return;
        }
        CL_AUTO(cl_str) *token = s.token;
        if (s.state == KBS_SESSION_ATTESTED && token) {
            reply_token(resp, token, __FILE__, __LINE__);
            return;
        }
        if (s.state == KBS_SESSION_FAILED) {
            cl_kbs_fail(resp, "AttestationError",
                        "attest: this challenge was used by an attestation that failed");
            return;
        }
        if (waited >= KBS_ATTEST_WAIT_MS) {
            cl_kbs_fail_status(resp, "AttestationError", 503,
                               "attest: another request holds this challenge and has not finished");
            return;
        }
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
    }
}

static void attest_session(struct cl_kbs *kbs, const struct cl_http_req *req,
                           struct cl_http_resp *resp, const char *sid,
                           const struct cl_kbs_session *s)
{
    struct cl_err e = {0};
    struct cl_kbs_attestation a;
    if (cl_kbs_attestation_parse(req->body, req->body_len, &a, &e) < 0) {
        atomic_fetch_add(&kbs->metrics.attest_err, 1);
        cl_kbs_fail(resp,
                    e.code == CL_EPARSE || e.code == CL_ELIMIT ? "SerdeError" : "AttestationError",
                    "%s", e.msg);
        return;
    }
    struct cl_as_item items[CL_AS_MAX_ITEMS];
    CL_AUTO(cl_str) *token = NULL;
    CL_AUTO(json_t) *claims = NULL;
    if (strlen(a.nonce) != KBS_NONCE_B64_LEN ||
        !cl_memeq_ct(a.nonce, s->nonce, KBS_NONCE_B64_LEN)) {
        cl_kbs_metrics_attest(kbs, s->tee, false);
        cl_kbs_fail(resp, "AttestationError",
                    "attest: runtime-data nonce does not match this session's challenge");
        cl_kbs_attestation_clear(&a);
        return;
    }
    /* The challenge is used once: this request must win it before the evidence is evaluated,
     * so two requests (two replicas) racing one nonce cannot both mint a token. */
    int rc = cl_kbs_session_claim(&kbs->sessions, sid, &e);
    if (rc == CL_EEXISTS) {
        cl_kbs_attestation_clear(&a);
        attest_wait(kbs, resp, sid);
        return;
    }
    if (rc < 0) {
        cl_kbs_fail_status(resp, "AttestationError", rc == CL_EIO ? 503 : 0, "attest: %s", e.msg);
    } else if (cl_as_evaluate_claims(kbs->as, items, cl_kbs_attestation_items(&a, s->tee, items),
                                     "default", &token, &claims, &e) < 0) {
        cl_kbs_metrics_attest(kbs, s->tee, false);
        struct cl_err se = {0};
        if (cl_kbs_session_set_token(&kbs->sessions, sid, NULL, &se) < 0)
            cl_warn("attest: marking session failed: %s", se.msg);
        cl_kbs_fail(resp, "AttestationError", "attestation failed at stage '%s': %s",
                    e.stage ? e.stage : "?", e.msg);
    } else if (cl_kbs_session_set_token(&kbs->sessions, sid, token, &e) < 0) {
        cl_kbs_fail_status(resp, "AttestationError", e.code == CL_EIO ? 503 : 0, "attest: %s",
                           e.msg);
    } else {
        cl_kbs_metrics_attest(kbs, s->tee, true);
        cl_kbs_token_remember(kbs, token, claims);
        reply_token(resp, token, __FILE__, __LINE__);
    }
    cl_kbs_attestation_clear(&a);
}

static void h_attest(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    const char *sid = cl_http_req_cookie(req, "kbs-session-id");
    if (!sid) {
        cl_kbs_fail(resp, "AttestationError",
                    "attest: no kbs-session-id cookie (call /kbs/v0/auth first)");
        return;
    }
    struct cl_err e = {0};
    struct cl_kbs_session s;
    if (cl_kbs_session_get(&kbs->sessions, sid, &s, &e) < 0) {
        cl_kbs_fail_status(resp, "AttestationError", e.code == CL_EIO ? 503 : 0, "attest: %s",
                           e.msg);
        return;
    }
    CL_AUTO(cl_str) *cached = s.token;
    if (s.state == KBS_SESSION_ATTESTED && cached) { /* trustee returns the token again */
        reply_token(resp, cached, __FILE__, __LINE__);
        return;
    }
    if (s.state != KBS_SESSION_FRESH) {
        attest_wait(kbs, resp, sid);
        return;
    }
    attest_session(kbs, req, resp, sid, &s);
}

/* ---- GET /kbs/v0/resource/<repo>/<type>/<tag> ---- */

static const char *resource_path(const struct cl_http_req *req)
{
    static const char prefix[] = "/kbs/v0/resource/";
    return req->path + sizeof prefix - 1;
}

static void add_query(void *ctx, const char *k, const char *v)
{
    json_object_set_new(ctx, k, json_string(v ? v : ""));
}

static void h_get_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    const char *path = resource_path(req);
    if (!cl_kbs_resource_path_valid(path)) {
        cl_kbs_fail(resp, "InvalidRequestPath",
                    "resource path '%.200s' is not <repo>/<type>/<tag> of [A-Za-z0-9_.-] "
                    "segments not starting with '.'",
                    path);
        return;
    }
    struct cl_err e = {0};
    CL_AUTO(cl_str) *token = NULL;
    const char *sid = cl_http_req_cookie(req, "kbs-session-id");
    if (sid) {
        struct cl_kbs_session s;
        if (cl_kbs_session_get(&kbs->sessions, sid, &s, &e) < 0) {
            cl_kbs_fail(resp, "TokenNotFound", "session: %s", e.msg);
            return;
        }
        token = s.token;
        if (!token) {
            cl_kbs_fail(resp, "TokenNotFound", "session %.8s... has not attested", sid);
            return;
        }
    } else {
        const char *auth = cl_http_req_header(req, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0) {
            cl_kbs_fail(resp, "TokenNotFound",
                        "no session cookie and no Authorization: Bearer token");
            return;
        }
        token = strdup(auth + 7);
    }
    CL_AUTO(json_t) *claims = cl_kbs_token_verify(kbs, token, &e);
    if (!claims) {
        cl_kbs_fail(resp, "TokenVerifierError", "%s", e.msg);
        return;
    }
    /* resource policy: input = claims; data = {plugin, resource-path, query} */
    CL_AUTO(json_t) *query = json_object();
    cl_http_req_query_foreach(req, add_query, query);
    char repo[CL_KBS_MAX_PATH_SEGMENT + 1], type[CL_KBS_MAX_PATH_SEGMENT + 1],
        tag[CL_KBS_MAX_PATH_SEGMENT + 1];
    if (sscanf(path, "%128[^/]/%128[^/]/%128s", repo, type, tag) != 3) {
        cl_kbs_fail(resp, "InvalidRequestPath", "resource path '%.200s'", path);
        return;
    }
    CL_AUTO(json_t) *data = json_pack("{s:s, s:[s,s,s], s:O}", "plugin", "resource",
                                      "resource-path", repo, type, tag, "query", query);
    bool allow = false;
    int prc = cl_kbs_policy_eval(kbs, claims, data, &allow, &e);
    if (prc < 0 || !allow) {
        atomic_fetch_add(&kbs->metrics.denials, 1);
        if (prc < 0)
            atomic_fetch_add(&kbs->metrics.policy_err, 1);
        {
            cl_kbs_fail(resp, "PolicyDeny", "resource policy denies access to %s%s%s", path,
                        prc < 0 ? ": " : "", prc < 0 ? e.msg : "");
            return;
        }
    }
    json_t *teekey = cl_kbs_token_teekey(kbs, claims);
    if (!teekey) {
        cl_kbs_fail(resp, "TokenVerifierError", "the token carries no TEE public key");
        return;
    }
    size_t len = 0;
    cl_kbs_metrics_resource(kbs, path, false);
    CL_AUTO(cl_bytes) *secret = cl_store_get(kbs->resources, CL_KBS_NS_REPOSITORY, path, &len, &e);
    if (!secret) {
        cl_kbs_fail(resp, "PluginInternalError", "resource %s: %s", path,
                    e.code == CL_ENOTFOUND ? "not found" : e.msg);
        return;
    }
    CL_AUTO(cl_str) *jwe = cl_jwe_encrypt_text(teekey, secret, len, &e);
    explicit_bzero(secret, len);
    if (!jwe) {
        cl_kbs_fail(resp, "JweError", "sealing %s to the TEE key: %s", path, e.msg);
        return;
    }
    atomic_fetch_add(&kbs->metrics.releases, 1);
    cl_info("released resource %s", path);
    cl_http_reply(resp, 200, "application/json", jwe, strlen(jwe));
}

/* ---- health, metrics, JWKS, fallback ---- */

static void h_healthz(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    cl_http_reply(resp, 200, "text/plain", "", 0);
}

/* Readiness: the store answers and a resource policy is compiled (a broken stored policy
 * denies every release, so the KBS is up but not ready). */
static void h_readyz(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    struct cl_err e = {0};
    size_t n = 0;
    cl_bytes *probe = cl_store_get(kbs->store, CL_KBS_NS_POLICY, "readiness-probe", &n, &e);
    free(probe);
    if (!probe && e.code != CL_ENOTFOUND) {
        cl_kbs_fail_status(resp, "NotReady", 503, "store: %s", e.msg);
        return;
    }
    pthread_rwlock_rdlock(&kbs->policy_lock);
    bool policy = kbs->policy != NULL;
    pthread_rwlock_unlock(&kbs->policy_lock);
    if (!policy) {
        cl_kbs_fail_status(resp, "NotReady", 503,
                           "policy engine: the resource policy does not compile");
        return;
    }
    cl_http_reply(resp, 200, "text/plain", "ready\n", 6);
}

static void h_jwks(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct cl_kbs *kbs = ctx;
    CL_AUTO(json_t) *jwks = cl_as_jwks(kbs->as);
    reply_json(resp, jwks, __FILE__, __LINE__);
}

static void h_metrics(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    cl_kbs_metrics_render(ctx, resp);
}

static void h_fallback(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    static const char api[] = "/kbs/v0/";
    if (strncmp(req->path, api, sizeof api - 1) != 0) {
        cl_kbs_fail(resp, "InvalidRequestPath", "path '%.200s' is not under %s", req->path, api);
        return;
    }
    const char *plugin = req->path + sizeof api - 1;
    size_t n = strcspn(plugin, "/");
    if (n == strlen("resource") && strncmp(plugin, "resource", n) == 0) {
        cl_kbs_fail(resp, "InvalidRequestPath", "%s is not allowed on resources", req->method);
        return;
    }
    {
        cl_kbs_fail(resp, "PluginNotFound", "no plugin '%.*s' for %s", (int)(n > 64 ? 64 : n),
                    plugin, req->method);
        return;
    }
}

/* Timing and counting wrapper: every route goes through it. */
#define ROUTE(name, fn)                                                                            \
    static void name(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)          \
    {                                                                                              \
        struct cl_kbs *kbs = ctx;                                                                  \
        uint64_t t0 = cl_now_mono_ns();                                                            \
        atomic_fetch_add(&kbs->metrics.active, 1);                                                 \
        fn(ctx, req, resp);                                                                        \
        atomic_fetch_sub(&kbs->metrics.active, 1);                                                 \
        cl_kbs_metrics_size(kbs->metrics.req_size, &kbs->metrics.req_bytes, req->body_len);        \
        cl_kbs_metrics_size(kbs->metrics.resp_size, &kbs->metrics.resp_bytes, resp->body_len);     \
        uint64_t us = (cl_now_mono_ns() - t0) / 1000;                                              \
        static const uint64_t lim[] = {500, 1000, 5000, 10000, 50000, 500000, 1000000};            \
        size_t b = 0;                                                                              \
        while (b < 7 && us > lim[b])                                                               \
            b++;                                                                                   \
        atomic_fetch_add(&kbs->metrics.requests, 1);                                               \
        atomic_fetch_add(&kbs->metrics.latency_buckets[b], 1);                                     \
        atomic_fetch_add(&kbs->metrics.latency_us_sum, us);                                        \
    }

ROUTE(r_auth, h_auth)
ROUTE(r_attest, h_attest)
ROUTE(r_get_resource, h_get_resource)
ROUTE(r_set_resource, cl_kbs_h_set_resource)
ROUTE(r_delete_resource, cl_kbs_h_delete_resource)
ROUTE(r_set_rpolicy, cl_kbs_h_set_resource_policy)
ROUTE(r_get_rpolicy, cl_kbs_h_get_resource_policy)
ROUTE(r_set_apolicy, cl_kbs_h_set_attestation_policy)
ROUTE(r_set_rv, cl_kbs_h_set_reference_value)
ROUTE(r_get_rv, cl_kbs_h_get_reference_value)
ROUTE(r_fallback, h_fallback)

static const struct cl_http_route routes[] = {
    {"POST", "/kbs/v0/auth", r_auth},
    {"POST", "/kbs/v0/attest", r_attest},
    {"POST", "/kbs/v0/attestation-policy", r_set_apolicy},
    {"GET", "/kbs/v0/reference-value/*", r_get_rv},
    {"POST", "/kbs/v0/reference-value", r_set_rv},
    {"POST", "/kbs/v0/resource-policy", r_set_rpolicy},
    {"GET", "/kbs/v0/resource-policy", r_get_rpolicy},
    {"GET", "/kbs/v0/resource/*", r_get_resource},
    {"POST", "/kbs/v0/resource/*", r_set_resource},
    {"DELETE", "/kbs/v0/resource/*", r_delete_resource},
    {"GET", "/healthz", h_healthz},
    {"GET", "/readyz", h_readyz},
    {"GET", "/metrics", h_metrics},
    {"GET", "/.well-known/jwks.json", h_jwks},
};

/* ---- lifecycle ---- */

/* What one start-up step hands to the next: the store options (the session store is opened
 * with the same backend settings) and the store that holds sessions. */
struct start_ctx {
    struct cl_store_opts so;
    struct cl_store *sess;
};

static int start_store(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    const struct cl_kbs_config *cfg = kbs->cfg;
    const char *stype =
        cfg->storage_type ? cfg->storage_type : (cfg->storage_dir ? "LocalFs" : "Memory");
    if (strcasecmp(stype, "Memory") == 0)
        cl_warn("storage: Memory backend: resources, policies and reference values are lost on "
                "restart");
    sc->so = (struct cl_store_opts){
        .type = stype,
        .dir = cfg->storage_dir,
        .pg_url = cfg->pg.url,
        .pg_db = cfg->pg.db,
        .pg_user = cfg->pg.user,
        .pg_password = cfg->pg.password,
        .pg_host = cfg->pg.host,
        .pg_port = cfg->pg.port,
        .redis_url = cfg->redis_url,
        .redis_ca_file = cfg->redis_ca_file,
        .redis_cert_file = cfg->redis_cert_file,
        .redis_key_file = cfg->redis_key_file,
        .pool_size = cfg->store_pool_size,
        .timeout_ms = cfg->store_timeout_ms,
        .seal_key_path = cfg->seal_key_path,
        .seal_ns = CL_KBS_NS_REPOSITORY,
        .seal_old_paths = (const char *const *)cfg->seal_old_paths,
        .nseal_old = cfg->nseal_old,
    };
    kbs->store = cl_store_open_opts(&sc->so, err);
    sc->sess = kbs->store;
    return kbs->store ? 0 : CL_EIO;
}

/* session_storage_type: the same backend configuration, maybe another type. Sessions are kept
 * in the process unless that type is shared between processes. */
static int start_session_store(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    const struct cl_kbs_config *cfg = kbs->cfg;
    if (!cfg->session_storage_type)
        return 0;
    const char *stt = cl_store_type_canonical(cfg->session_storage_type);
    if (!stt)
        return cl_err_set(
            err, CL_EINVAL,
            "session_storage_type \"%s\": unknown (Memory, LocalFs, Postgres or Redis)",
            cfg->session_storage_type);
    if (strcmp(stt, cl_store_type(kbs->store)) == 0)
        return 0;
    struct cl_store_opts so = sc->so;
    so.type = cfg->session_storage_type;
    kbs->session_store = cl_store_open_opts(&so, err);
    if (!kbs->session_store)
        return cl_err_prefix(err, "session_storage_type");
    sc->sess = kbs->session_store;
    return 0;
}

static int start_check_replicas(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    if (!cl_store_shared(kbs->store) && !cl_store_shared(sc->sess))
        return 0;
    if (kbs->cfg->signer_key_path)
        return 0;
    return cl_err_set(
        err, CL_EINVAL,
        "storage_backend: a shared store (%s) means several replicas, which must sign tokens "
        "with one key: set attestation_service.attestation_token_broker.signer.key_path",
        cl_store_type(cl_store_shared(kbs->store) ? kbs->store : sc->sess));
}

static int start_resources(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    const struct cl_kbs_config *cfg = kbs->cfg;
    if (!cfg->resource_dir) {
        kbs->resources = kbs->store;
        return 0;
    }
    struct cl_store_opts ro = sc->so;
    ro.type = cfg->resource_type ? cfg->resource_type : "LocalFs";
    ro.dir = cfg->resource_dir;
    kbs->resources = cl_store_open_opts(&ro, err);
    return kbs->resources ? 0 : CL_EIO;
}

static int start_sealing(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    (void)sc;
    const struct cl_kbs_config *cfg = kbs->cfg;
    if (!cfg->seal_key_path)
        return 0;
    cl_info("storage: resources encrypted at rest (a trustee KBS on the same store cannot read "
            "them)");
    size_t nre = 0;
    if (cfg->nseal_old && cl_store_reseal(kbs->resources, CL_KBS_NS_REPOSITORY, &nre, err) < 0)
        return cl_err_prefix(err, "storage_backend.encryption_old_key_paths: re-wrapping");
    if (nre)
        cl_info("storage: %zu resources re-wrapped under the current encryption key", nre);
    return 0;
}

static int start_token_trust(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    (void)sc;
    const struct cl_kbs_config *cfg = kbs->cfg;
    if (cfg->ntrusted_certs) {
        kbs->trust = cl_x509_store_load((const char *const *)cfg->trusted_certs_paths,
                                        cfg->ntrusted_certs, err);
        if (!kbs->trust)
            return CL_EINVAL;
    }
    struct cl_err je = {0};
    kbs->jwks = cl_kbs_jwks_load(cfg, &je);
    if (!kbs->jwks && je.code < 0) {
        if (err)
            *err = je;
        return je.code;
    }
    if (cfg->insecure_header_jwk)
        cl_insecure("insecure_header_jwk",
                    "tokens will be trusted on the key they carry themselves");
    if (cfg->admin_mode == CL_KBS_ADMIN_ALLOW_ALL_INSECURE)
        cl_insecure("admin InsecureAllowAll",
                    "the admin API is open to anyone who can reach this port");
    return 0;
}

static int start_as(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    (void)sc;
    const struct cl_kbs_config *cfg = kbs->cfg;
    struct cl_as_opts ao = {
        .store = kbs->store,
        .allow_sample_insecure = cfg->allow_sample_tee_insecure,
        .token_duration_min = cfg->token_duration_min,
        .issuer = cfg->token_issuer,
        .signer_key_path = cfg->signer_key_path,
        .signer_cert_path = cfg->signer_cert_path,
        .tee_config = &cfg->tee,
    };
    kbs->as = cl_as_new(&ao, err);
    return kbs->as ? 0 : CL_EINVAL;
}

static int start_sessions(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    const struct cl_kbs_config *cfg = kbs->cfg;
    unsigned timeout_s =
        cfg->session_timeout_s ? cfg->session_timeout_s : cfg->session_timeout_min * 60;
    if (cl_kbs_sessions_init(&kbs->sessions, cfg->max_sessions, timeout_s) < 0)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (cl_store_shared(sc->sess)) {
        kbs->sessions.shared = sc->sess;
        cl_info("sessions: shared in %s namespace %s", cl_store_type(sc->sess), KBS_NS_SESSION);
    } else if (cfg->session_storage_type && strcasecmp(cfg->session_storage_type, "Memory") != 0) {
        cl_warn("session_storage_type %s: sessions are kept in this process (only Postgres and "
                "Redis are shared between replicas)",
                cfg->session_storage_type);
    }
    return 0;
}

static int start_policy(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    (void)sc;
    return cl_kbs_policy_load(kbs, err);
}

static int start_http(struct cl_kbs *kbs, struct start_ctx *sc, struct cl_err *err)
{
    (void)sc;
    const struct cl_kbs_config *cfg = kbs->cfg;
    struct cl_http_server_opts ho = {
        .sockets = (const char *const *)cfg->sockets,
        .nsockets = cfg->nsockets,
        .max_body = cfg->payload_max,
        .threads = cfg->worker_count,
        .request_timeout_s = cfg->request_timeout_s,
        .tls_cert_path = cfg->insecure_http ? NULL : cfg->tls_cert_path,
        .tls_key_path = cfg->insecure_http ? NULL : cfg->tls_key_path,
        .tls_priorities = cfg->tls_priorities,
    };
    if (cfg->insecure_http)
        cl_warn("http_server.insecure_http: plain HTTP; resources are still sealed to the TEE key, "
                "but admin tokens and metadata travel in clear");
    kbs->http = cl_http_server_start(&ho, routes, CL_ARRAY_LEN(routes), r_fallback, kbs, err);
    return kbs->http ? 0 : CL_EIO;
}

/* Start-up, in order; each step sets err when it fails and cl_kbs_stop undoes what is done. */
static int (*const start_steps[])(struct cl_kbs *, struct start_ctx *, struct cl_err *) = {
    start_store,     start_session_store, start_check_replicas,
    start_resources, start_sealing,       start_token_trust,
    start_as,        start_sessions,      start_policy,
    start_http,
};

struct cl_kbs *cl_kbs_start(const struct cl_kbs_config *cfg, struct cl_err *err)
{
    struct cl_kbs *kbs = calloc(1, sizeof *kbs);
    if (!kbs) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    kbs->cfg = cfg;
    pthread_rwlock_init(&kbs->policy_lock, NULL);
    cl_kbs_token_memo_init(kbs);
    struct start_ctx sc = {0};
    for (size_t i = 0; i < CL_ARRAY_LEN(start_steps); i++) {
        if (start_steps[i](kbs, &sc, err) < 0) {
            cl_kbs_stop(kbs);
            return NULL;
        }
    }
    return kbs;
}

uint16_t cl_kbs_port(const struct cl_kbs *kbs, size_t i)
{
    return cl_http_server_port(kbs->http, i);
}

int cl_kbs_reload(struct cl_kbs *kbs, struct cl_err *err)
{
    return cl_kbs_policy_reload(kbs, err);
}

void cl_kbs_tick(struct cl_kbs *kbs)
{
    size_t n = cl_kbs_sessions_purge(&kbs->sessions);
    if (n)
        cl_debug("purged %zu expired sessions", n);
}

void cl_kbs_stop(struct cl_kbs *kbs)
{
    if (!kbs)
        return;
    if (kbs->http)
        cl_http_server_stop(kbs->http);
    cl_kbs_sessions_destroy(&kbs->sessions);
    cl_as_free(kbs->as);
    X509_STORE_free(kbs->trust);
    json_decref(kbs->jwks);
    if (kbs->resources && kbs->resources != kbs->store)
        cl_store_close(kbs->resources);
    if (kbs->store)
        cl_store_close(kbs->store);
    cl_store_close(kbs->session_store);
    cl_kbs_policy_free(kbs);
    pthread_rwlock_destroy(&kbs->policy_lock);
    cl_kbs_token_memo_clear(kbs);
    free(kbs);
}
