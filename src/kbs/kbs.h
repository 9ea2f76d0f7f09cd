/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Key Broker Service: trustee's KBS protocol 0.4.0 (RCAR handshake, resource release as
 * a JWE sealed to the TEE key) and the admin API. The client side of the handshake is
 * kbs/kbs_client.h (a library of its own, which the guest links without the server).
 */
#ifndef CL_KBS_H
#define CL_KBS_H

#include "base/base.h"
#include "crypto/crypto.h"
#include "kbs/kbs_client.h"
#include "tee/tee.h"
#include "json/json.h"

#include <regex.h>

#define CL_KBS_MAX_SESSIONS_DEFAULT 10000
#define CL_KBS_MAX_PERSONAS 32
#define CL_KBS_MAX_SOCKETS 8
#define CL_KBS_MAX_TRUSTED 16
#define CL_KBS_TOKEN_LEEWAY_S 60
#define CL_KBS_MAX_RESOURCE (16u * 1024 * 1024)
#define CL_KBS_MAX_CONFIG 1048576
#define CL_KBS_MAX_ACLS 32

/* Store namespaces, as trustee names them. */
#define CL_KBS_NS_REPOSITORY "repository"
#define CL_KBS_NS_POLICY "kbs"

enum cl_kbs_admin_mode {
    CL_KBS_ADMIN_DENY_ALL,           /* default when no persona is configured */
    CL_KBS_ADMIN_PERSONAS,           /* "Simple": [admin] personas / auth_public_key */
    CL_KBS_ADMIN_ALLOW_ALL_INSECURE, /* "InsecureAllowAll" / insecure_api = true */
    CL_KBS_ADMIN_BEARER_JWT,         /* "AuthenticatedAuthorization": identity providers + ACLs */
};

/* [admin.authentication.bearer_jwt] identity_providers[] */
struct cl_kbs_idp {
    char *issuer, *audience; /* NULL: not checked */
    char *key_uri;
    cl_pkey *key; /* RSA, EC or Ed25519 public key */
};

/* [admin.authorization.regex_acl] acls[] */
struct cl_kbs_acl {
    char *role;
    char *pattern; /* ^/kbs...$ */
    regex_t re;
};

struct cl_kbs_persona {
    char *id;
    cl_pkey *key; /* Ed25519 or EC public key */
};

/* Configuration, read from TOML with trustee's kbs-config.toml names (docs/kbs.md). */
struct cl_kbs_config {
    /* [http_server] */
    char *sockets[CL_KBS_MAX_SOCKETS];
    size_t nsockets;
    bool insecure_http;
    char *tls_key_path, *tls_cert_path;
    size_t payload_max; /* bytes (payload_request_size MiB) */
    unsigned worker_count;
    unsigned request_timeout_s; /* [http_server] request_timeout: whole-request deadline */
    char *tls_profile, *tls_min_version, *tls_max_version, *tls_ciphers,
        *tls_groups;      /* as written */
    char *tls_priorities; /* the GnuTLS priority string they amount to (always set) */
    /* [attestation_token] */
    char *trusted_certs_paths[CL_KBS_MAX_TRUSTED];
    size_t ntrusted_certs;
    char *extra_teekey_paths[CL_KBS_MAX_TRUSTED];
    size_t nextra_teekey_paths;
    bool insecure_header_jwk;
    char *trusted_jwk_sets[CL_KBS_MAX_TRUSTED]; /* local paths or file:// URLs of JWKS files */
    size_t ntrusted_jwk_sets;
    /* [attestation_service] */
    unsigned session_timeout_min;
    unsigned session_timeout_s; /* Cloister's own, overrides timeout (tests) */
    size_t max_sessions;
    bool allow_sample_tee_insecure;
    unsigned token_duration_min;
    char *signer_key_path, *signer_cert_path;
    char *token_issuer; /* attestation_token_broker.issuer_name, NULL → default */
    /* [attestation_service.verifier_config]: `tee` points into tee_strings (owned) */
    struct cl_tee_config tee;
    char *tee_strings[8];
    char *cca_csv_strings[3]; /* cca ta_store, rv_store, csv cert_dir: owned, `tee` points here */
    /* [admin] */
    enum cl_kbs_admin_mode admin_mode;
    struct cl_kbs_persona personas[CL_KBS_MAX_PERSONAS];
    size_t npersonas;
    struct cl_kbs_idp idps[CL_KBS_MAX_PERSONAS];
    size_t nidps;
    struct cl_kbs_acl acls[CL_KBS_MAX_ACLS];
    size_t nacls;
    /* [policy_engine] policy_path: the resource policy file (NULL → the store) */
    char *policy_path;
    /* [storage_backend] and [[plugins]] name = "resource" */
    char *storage_type, *storage_dir;
    char *resource_type, *resource_dir;
    /* [storage_backend.backends.postgres] (POSTGRES_URL, when set, fills url) */
    struct {
        char *url, *db, *user, *password, *host;
        unsigned port;
    } pg;
    char *redis_url; /* [storage_backend.backends.redis] url, or REDIS_URL */
    /* rediss://: CLOISTER_REDIS_CA_FILE, CLOISTER_REDIS_CERT_FILE, CLOISTER_REDIS_KEY_FILE
     * (trustee's url has no place for them); cert and key both or neither */
    char *redis_ca_file, *redis_cert_file, *redis_key_file;
    unsigned store_pool_size, store_timeout_ms; /* pool_size, timeout_ms of either */
    char *session_storage_type;                 /* top-level; NULL = storage_type */
    /* [storage_backend] encryption_key_path / encryption_old_key_paths (Cloister's, opt-in):
     * resources ("repository") envelope-encrypted at rest */
    char *seal_key_path;
    char *seal_old_paths[8];
    size_t nseal_old;
};

/* Parses a TOML configuration; missing values take their defaults. Errors name the key. */
CL_MUST_CHECK int cl_kbs_config_parse(const char *text, size_t len, struct cl_kbs_config *cfg,
                                      struct cl_err *err);
/* The same, with the file name used in refusals ("FILE:LINE: 'key' ..."); file may be NULL.
 * Every key is honoured or refused: an unknown key or unsupported value is EINVAL naming its
 * dotted path and line (each one is also logged; the message counts them). */
CL_MUST_CHECK int cl_kbs_config_parse_named(const char *text, size_t len, const char *file,
                                            struct cl_kbs_config *cfg, struct cl_err *err);
CL_MUST_CHECK int cl_kbs_config_load(const char *path, struct cl_kbs_config *cfg,
                                     struct cl_err *err);
void cl_kbs_config_defaults(struct cl_kbs_config *cfg);
void cl_kbs_config_clear(struct cl_kbs_config *cfg);
/* The configuration in force, in the file's own structure and key names, defaults filled in
 * (secrets would be shown as "<redacted>"; no honoured key holds one today). Returns new. */
json_t *cl_kbs_config_effective(const struct cl_kbs_config *cfg);
/* Reads every file the configuration names (TLS pair, trusted certificates, token signer,
 * policy_path — compiled too) without starting anything; errors name the key. */
/* The keys of every trusted_jwk_sets file, as one JSON array of JWKs each with a "kid" (new);
 * NULL with err->code 0 when none is configured, NULL with the error naming the file else. */
json_t *cl_kbs_jwks_load(const struct cl_kbs_config *cfg, struct cl_err *err);
CL_MUST_CHECK int cl_kbs_config_check_files(const struct cl_kbs_config *cfg, struct cl_err *err);

struct cl_kbs;
/* Opens stores, starts the attestation service and the HTTP server. cfg is borrowed for the
 * server's lifetime. */
struct cl_kbs *cl_kbs_start(const struct cl_kbs_config *cfg, struct cl_err *err);
uint16_t cl_kbs_port(const struct cl_kbs *kbs, size_t i);
/* SIGHUP: re-reads the resource policy (policy_path or store); on failure the policy in force
 * stays and the error is returned. Thread-safe. */
CL_MUST_CHECK int cl_kbs_reload(struct cl_kbs *kbs, struct cl_err *err);
/* Compiles a resource policy text and throws it away (for --check). */
CL_MUST_CHECK int cl_kbs_policy_check(const char *text, size_t len, struct cl_err *err);
/* Housekeeping, to be called about once a minute: purges expired sessions. */
void cl_kbs_tick(struct cl_kbs *kbs);
void cl_kbs_stop(struct cl_kbs *kbs);

/* Mints an admin JWT (EdDSA for Ed25519 keys, ES256 for P-256) with iat/exp (ttl seconds). */
cl_str *cl_kbs_admin_token(cl_pkey *key, int64_t ttl_s, struct cl_err *err);

#endif
