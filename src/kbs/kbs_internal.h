/* SPDX-License-Identifier: Apache-2.0 */
/* State shared by the KBS server files. Not a public header. */
#ifndef CL_KBS_INTERNAL_H
#define CL_KBS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "as/as.h"
#include "kbs/kbs.h"

struct cl_kbs_rpolicy;
#include "net/http.h"
#include "store/store.h"

#define KBS_NONCE_B64_LEN 44
#define KBS_SESSION_ID_LEN 32
#define KBS_MAX_JSON_DEPTH 32

/* ---- sessions ---- */

/* A challenge is used once: fresh → claimed (one /attest won it) → attested (token stored) or
 * failed. Claiming is a compare-and-set, also between replicas on a shared store. */
enum cl_kbs_session_state {
    KBS_SESSION_FRESH,
    KBS_SESSION_CLAIMED,
    KBS_SESSION_ATTESTED,
    KBS_SESSION_FAILED
};

#define KBS_NS_SESSION "kbs_protocol_session"

struct cl_kbs_session {
    struct cl_kbs_session *next; /* hash chain */
    enum cl_kbs_session_state state;
    char id[KBS_SESSION_ID_LEN + 1];
    char nonce[KBS_NONCE_B64_LEN + 1];
    char tee[32];
    uint64_t expires_ns; /* monotonic */
    int64_t expires_unix;
    cl_str *token; /* set once attested */
};

struct cl_kbs_sessions {
    struct cl_store *shared; /* borrowed: sessions live there (Postgres, Redis), or NULL */
    pthread_mutex_t lock;
    struct cl_kbs_session **buckets;
    size_t nbuckets, count, max;
    uint64_t lifetime_ns;
    /* shared store: expiry times of the sessions this replica created, oldest first (a ring);
     * max bounds how many of them are unexpired — max_sessions is per replica */
    int64_t *ring;
    size_t rhead, rcount, rcap;
};

int cl_kbs_sessions_init(struct cl_kbs_sessions *s, size_t max, unsigned lifetime_s);
void cl_kbs_sessions_destroy(struct cl_kbs_sessions *s);
/* Creates a session for tee; copies its id, nonce and expiry out. ELIMIT when full. */
int cl_kbs_session_create(struct cl_kbs_sessions *s, const char *tee,
                          char id[KBS_SESSION_ID_LEN + 1], char nonce[KBS_NONCE_B64_LEN + 1],
                          int64_t *expires_unix, struct cl_err *err);
/* Copies the session's state out (token duplicated, may be NULL). ENOTFOUND / EEXPIRED. */
int cl_kbs_session_get(struct cl_kbs_sessions *s, const char *id, struct cl_kbs_session *out,
                       struct cl_err *err);
/* Wins the session's challenge for this request: fresh → claimed. EEXISTS when another
 * request (on any replica) claimed it first. */
int cl_kbs_session_claim(struct cl_kbs_sessions *s, const char *id, struct cl_err *err);
/* Ends a claimed session: token != NULL → attested with that token, NULL → failed. */
int cl_kbs_session_set_token(struct cl_kbs_sessions *s, const char *id, const char *token,
                             struct cl_err *err);
size_t cl_kbs_sessions_purge(struct cl_kbs_sessions *s);
/* A stored session is at most this long (expiry digits + JSON with the token). */
#define KBS_SESSION_MAX_STORED (4u << 20)
/* Parses a session value read back from the shared store (expiry digits + {"tee", "nonce",
 * "state", "token"?}) into out (token new); the database is a trust boundary too: EPARSE for
 * anything else, whatever its size or nesting. Does not check the expiry. */
int cl_kbs_session_decode(const char *id, const uint8_t *v, size_t n, struct cl_kbs_session *out,
                          struct cl_err *err);

/* ---- protocol messages (protocol.c) ---- */

struct cl_kbs_request {
    char tee[32];
};
int cl_kbs_request_parse(const uint8_t *body, size_t len, struct cl_kbs_request *out,
                         struct cl_err *err);

struct cl_kbs_attestation {
    json_t *doc; /* owned: the parsed body; the borrowed fields point into it */
    const char *nonce;
    json_t *jwk;            /* tee-pubkey, checked to be a key the KBS can seal to */
    json_t *primary;        /* primary evidence */
    const char *additional; /* additional evidence text ("" when none) */
    json_t *devices;        /* owned: additional evidence parsed, or NULL */
    const char *init_text;  /* init-data TOML or NULL */
    size_t init_len;
    json_t *rd_primary; /* owned: runtime data bound by the primary evidence */
    json_t *rd_device;  /* owned: runtime data bound by device evidence */
};
int cl_kbs_attestation_parse(const uint8_t *body, size_t len, struct cl_kbs_attestation *out,
                             struct cl_err *err);
void cl_kbs_attestation_clear(struct cl_kbs_attestation *a);
/* Fills items (CL_AS_MAX_ITEMS entries) for the attestation service; returns the count. */
size_t cl_kbs_attestation_items(const struct cl_kbs_attestation *a, const char *tee,
                                struct cl_as_item *items);

/* ---- token keys from files and https (jwks.c; the loaders are in kbs/jwks.h) ---- */

struct cl_kbs;
/* The trusted key named kid (new); an unknown kid reloads the sources first (rate-limited).
 * EVERIFY naming the kid when no source has it. */
cl_pkey *cl_kbs_jwks_key(struct cl_kbs *kbs, const char *kid, struct cl_err *err);

/* ---- metrics ---- */

#define CL_KBS_METRIC_TEES 12   /* tee_type label values (metrics.c), "other" last */
#define CL_KBS_METRIC_PATHS 128 /* resource_path label values; later paths count as "other" */

struct cl_kbs_metrics {
    atomic_ulong requests, auth, attest_ok, attest_fail, releases, denials, admin_ok, admin_denied;
    atomic_ulong latency_buckets[8]; /* ≤0.5ms, ≤1, ≤5, ≤10, ≤50, ≤500, ≤1000, +Inf (trustee's) */
    atomic_ulong latency_us_sum;
    atomic_ulong auth_ok, attest_err, policy_err;
    atomic_long active;
    atomic_ulong attest_ok_tee[CL_KBS_METRIC_TEES], attest_fail_tee[CL_KBS_METRIC_TEES];
    atomic_ulong req_size[6], resp_size[6], req_bytes, resp_bytes; /* ≤32, 128, 512, 2048, 8192 */
    size_t npaths; /* paths: under metrics.c's lock */
    struct {
        char path[3 * (CL_KBS_MAX_PATH_SEGMENT + 1)];
        unsigned long reads, writes;
    } paths[CL_KBS_METRIC_PATHS];
    unsigned long other_reads, other_writes;
};
struct cl_kbs;
/* metrics.c: an attestation result by TEE; a resource read or write by path; a body size
 * into a size histogram; GET /metrics. */
void cl_kbs_metrics_attest(struct cl_kbs *kbs, const char *tee, bool ok);
void cl_kbs_metrics_resource(struct cl_kbs *kbs, const char *path, bool write);
void cl_kbs_metrics_size(atomic_ulong *buckets, atomic_ulong *sum, size_t n);
void cl_kbs_metrics_render(struct cl_kbs *kbs, struct cl_http_resp *resp);

/* ---- the server ---- */

/* Claims of the tokens this process minted lately, by the token's exact text: /resource
 * verifies a token's signature as always, then takes its claims from here instead of parsing
 * the payload back when the text is one it signed (token.c). Direct-mapped; the slot comes
 * from the signature's last characters. */
#define CL_KBS_TOKEN_MEMO 32
struct cl_kbs_token_memo {
    pthread_mutex_t lock;
    struct {
        char *token;    /* owned */
        json_t *claims; /* owned reference; read-only once here */
    } slot[CL_KBS_TOKEN_MEMO];
};

struct cl_kbs {
    const struct cl_kbs_config *cfg;
    struct cl_store *store;         /* policies, RVs (and sessions when shared) here */
    struct cl_store *session_store; /* session_storage_type's store when it differs, or NULL */
    struct cl_store *resources;     /* the resource plugin's store */
    struct cl_as *as;
    cl_x509_store *trust;   /* attestation_token.trusted_certs_paths, or NULL */
    json_t *jwks;           /* attestation_token.trusted_jwk_sets keys, or NULL (jwks.c) */
    int64_t jwks_refreshed; /* when jwks was last reloaded for an unknown kid (0: never) */
    struct cl_kbs_sessions sessions;
    struct cl_kbs_metrics metrics;
    struct cl_http_server *http;
    pthread_rwlock_t policy_lock;
    struct cl_kbs_rpolicy *policy; /* compiled resource policy; NULL: stored one broken, deny */
    struct cl_store_version policy_ver; /* of the stored text it came from (shared store) */
    struct cl_kbs_token_memo minted;
};

/* Error reply as trustee's ErrorInformation; status 404 for InvalidRequestPath and
 * PluginNotFound, 401 for every other variant, unless status_override is non-zero. */
#define cl_kbs_fail(resp, variant, ...)                                                            \
    cl_kbs_fail_at((resp), (variant), 0, __FILE__, __LINE__, __VA_ARGS__)
#define cl_kbs_fail_status(resp, variant, status, ...)                                             \
    cl_kbs_fail_at((resp), (variant), (status), __FILE__, __LINE__, __VA_ARGS__)
CL_PRINTF(6, 7)
void cl_kbs_fail_at(struct cl_http_resp *resp, const char *variant, int status, const char *file,
                    int line, const char *fmt, ...);

/* Admin authentication; on failure the reply is already written and false returned. */
bool cl_kbs_admin_check(struct cl_kbs *kbs, const struct cl_http_req *req,
                        struct cl_http_resp *resp);

/* Verifies an attestation token (signature by a trusted key, exp/nbf); returns the claims
 * (new) or NULL with err. */
json_t *cl_kbs_token_verify(struct cl_kbs *kbs, const char *token, struct cl_err *err);
/* Remembers the claims (a reference is taken) of a token this process has just minted. */
void cl_kbs_token_remember(struct cl_kbs *kbs, const char *token, json_t *claims);
void cl_kbs_token_memo_init(struct cl_kbs *kbs);
void cl_kbs_token_memo_clear(struct cl_kbs *kbs);
/* The TEE public key JWK inside verified claims (borrowed) or NULL. */
json_t *cl_kbs_token_teekey(struct cl_kbs *kbs, json_t *claims);

/* Resource policy: 0 and *allow set, or an error (treated as deny by the caller). */
int cl_kbs_policy_eval(struct cl_kbs *kbs, const json_t *claims, const json_t *data, bool *allow,
                       struct cl_err *err);
int cl_kbs_policy_set(struct cl_kbs *kbs, const char *text, size_t len, struct cl_err *err);
int cl_kbs_policy_load(struct cl_kbs *kbs, struct cl_err *err);
/* Re-reads the policy (policy_path or store); on any failure the policy in force is kept. */
int cl_kbs_policy_reload(struct cl_kbs *kbs, struct cl_err *err);
void cl_kbs_policy_free(struct cl_kbs *kbs);

void cl_kbs_admin_routes(struct cl_kbs *kbs);
void cl_kbs_h_set_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp);
void cl_kbs_h_delete_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp);
void cl_kbs_h_set_resource_policy(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp);
void cl_kbs_h_get_resource_policy(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp);
void cl_kbs_h_set_attestation_policy(void *ctx, const struct cl_http_req *req,
                                     struct cl_http_resp *resp);
void cl_kbs_h_set_reference_value(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp);
void cl_kbs_h_get_reference_value(void *ctx, const struct cl_http_req *req,
                                  struct cl_http_resp *resp);

#endif
