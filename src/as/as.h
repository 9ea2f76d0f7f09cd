/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attestation service: verifies TEE evidence through the verifier table, appraises the
 * claims with the attestation policy and the reference values, and issues an EAR token
 * (ES256 JWT) as trustee's attestation service does. Also the Reference Value Provider
 * (RVPS): reference values registered by the owner, stored with an expiry that is enforced.
 */
#ifndef CL_AS_H
#define CL_AS_H

#include "base/base.h"
#include "crypto/crypto.h"
#include "store/store.h"
#include "tee/tee.h"
#include "json/json.h"

#define CL_AS_MAX_ITEMS 16         /* evidence items (primary + devices) per request */
#define CL_AS_MAX_INIT_DATA 65536  /* init-data TOML bytes */
#define CL_AS_MAX_RV_NAMES 4096    /* reference values per registration message */
#define CL_AS_MAX_RV_BYTES 1048576 /* decoded payload of one registration message */
#define CL_AS_MAX_POLICY 262144    /* attestation policy text */
#define CL_AS_EAR_PROFILE "tag:github.com,2024:confidential-containers/Trustee"

/* Store namespaces, as trustee names them. */
#define CL_AS_NS_POLICY "attestation_service_policy"
#define CL_AS_NS_RV "reference_value"

struct cl_as_opts {
    struct cl_store *store;       /* borrowed: policies and reference values */
    bool allow_sample_insecure;   /* accept the sample TEEs */
    unsigned token_duration_min;  /* 0 → 5 */
    const char *issuer;           /* NULL → "CoCo-Attestation-Service" */
    const char *signer_key_path;  /* P-256 PEM; NULL → ephemeral key (warned) */
    const char *signer_cert_path; /* PEM chain put in the header jwk x5c, or NULL */
    unsigned rv_validity_days;    /* expiry of registered values; 0 → 365 */
    const struct cl_tee_config
        *tee_config; /* borrowed for the service's lifetime; NULL = defaults */
};

struct cl_as;

struct cl_as *cl_as_new(const struct cl_as_opts *opts, struct cl_err *err);
void cl_as_free(struct cl_as *as);

/* One evidence item of a request. */
struct cl_as_item {
    const char *tee;            /* kbs-types id */
    const json_t *evidence;     /* borrowed */
    const json_t *runtime_data; /* borrowed structured runtime data (hashed with JCS) */
    enum cl_hash runtime_hash;  /* SHA-384 for every TEE but se */
    const char *init_data_toml; /* init-data text or NULL */
    size_t init_data_len;
};

/* Verifies every item, evaluates the attestation policy "<policy_id>_<class>" and signs an
 * EAR token (new string in *token). Fails closed: any item that does not verify fails the
 * whole request, with err->stage naming the step ("tee", "parse", "bind", "signature",
 * "init-data", "policy", ...). */
CL_MUST_CHECK int cl_as_evaluate(struct cl_as *as, const struct cl_as_item *items, size_t n,
                                 const char *policy_id, cl_str **token, struct cl_err *err);
/* The same, and *claims (new reference, may be NULL) gets the token's payload as the object
 * that was serialised and signed, for a caller that would otherwise parse the token back.
 * Read-only: it may be shared between threads. */
CL_MUST_CHECK int cl_as_evaluate_claims(struct cl_as *as, const struct cl_as_item *items, size_t n,
                                        const char *policy_id, cl_str **token, json_t **claims,
                                        struct cl_err *err);

/* The public key that signs tokens (borrowed) and the JWKS document (new). */
cl_pkey *cl_as_signing_key(struct cl_as *as);
/* The "jwk" member this service puts in every token header (borrowed). */
const json_t *cl_as_token_jwk(struct cl_as *as);
/* The protected header of every token this service signs, as base64url text and as the
 * object it encodes ({"alg":"ES256","typ":"JWT","jwk":...}), both borrowed: a verifier that
 * meets that exact text need not decode and parse it (cl_jws_parse_known). */
const char *cl_as_token_header_b64(struct cl_as *as);
const json_t *cl_as_token_header(struct cl_as *as);
json_t *cl_as_jwks(struct cl_as *as);

/* Attestation policy (Rego text) by id, e.g. "default_cpu". Checked before it is stored; the
 * old policy stays active when the new one is refused. */
CL_MUST_CHECK int cl_as_set_policy(struct cl_as *as, const char *id, const char *text, size_t len,
                                   struct cl_err *err);

/* RVPS: registers a provenance message {"version":"0.1.0","type":"sample","payload":b64} or
 * the plain form {"<name>": [values], ...}. */
CL_MUST_CHECK int cl_as_rv_register(struct cl_as *as, const json_t *message, struct cl_err *err);
/* The value registered under name (new), or NULL: ENOTFOUND when absent, EEXPIRED when its
 * expiry has passed (an expired value is never returned). */
json_t *cl_as_rv_query(struct cl_as *as, const char *name, struct cl_err *err);

/* Runtime data digest: hash(JCS(runtime_data)), out holds CL_HASH_MAX bytes. */
CL_MUST_CHECK int cl_as_runtime_digest(const json_t *runtime_data, enum cl_hash h, uint8_t *out,
                                       size_t *outlen, struct cl_err *err);

#endif
