/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KBS client: the RCAR handshake as guest-components' kbs_protocol client runs it
 * (auth → challenge → attest → EAR token), then resource GETs whose JWE is opened with the
 * TEE key. The one implementation in the tree: the attestation agent plugs its attesters in
 * through the evidence callback, `cloister kbs` and the tests use the sample attester.
 * Nothing here knows of the server or the attestation service.
 */
#ifndef CL_KBS_CLIENT_H
#define CL_KBS_CLIENT_H

#include "base/base.h"
#include "crypto/crypto.h"
#include "json/json.h"

#define CL_KBS_PROTOCOL_VERSION "0.4.0"
#define CL_KBS_MAX_PATH_SEGMENT 128

/* Evidence for a report-data digest rd[len] (the hash the KBS selected, SHA-384 by default,
 * of JCS({additional-evidence, nonce, tee-pubkey})). Returns new JSON or NULL with err set. */
typedef json_t *(*cl_kbs_evidence_fn)(void *ctx, const uint8_t *rd, size_t len, struct cl_err *err);
/* The additional_evidence text for rd = SHA-384(JCS({nonce, tee-pubkey})): "" when there is
 * none (new), NULL with err set on failure. */
typedef cl_str *(*cl_kbs_additional_fn)(void *ctx, const uint8_t *rd, size_t len,
                                        struct cl_err *err);

struct cl_kbs_client_opts {
    const char *url;        /* "http://127.0.0.1:8080" */
    const char *tee;        /* kbs-types id; "sample" (default) */
    const char *key_kind;   /* P-256 (default), P-521, RSA (RSA-OAEP-256), RSA1_5, or aa.toml's
                               ECDH-ES+A256KW-P256, ECDH-ES+A256KW-P521, RSA-OAEP-256 */
    const char *init_data;  /* init-data TOML text or NULL */
    const char *ca_file;    /* extra trusted roots for https, a PEM file */
    bool verbose;           /* print each step to stderr in plain words */
    const char *attest_url; /* passport mode: attest here, then present the token to url
                               as Authorization: Bearer (NULL: attest at url, use the cookie) */
    /* The evidence source; NULL: the sample attester for `tee` (proves nothing). */
    cl_kbs_evidence_fn evidence;
    void *evidence_ctx;
    cl_kbs_additional_fn additional; /* NULL: no additional evidence ("") */
    const char *ca_pem;              /* extra trusted roots as PEM text (with or for ca_file) */
    unsigned tries;                  /* handshake attempts; 0 → 1 */
    unsigned retry_delay_ms;         /* between attempts; 0 → 1000 */
    long timeout_ms;                 /* per HTTP request; 0 → none */
    size_t max_response;             /* bytes of one reply; 0 → 64 MiB */
};

/* Runs auth → attest with a fresh TEE key, up to opts->tries times (a refusal by the KBS,
 * 401/403, or a bad option is not retried). On success *token (new), *key (new private key)
 * and *exp (the token's unverified exp claim, 0 when absent). */
CL_MUST_CHECK int cl_kbs_client_handshake(const struct cl_kbs_client_opts *opts, cl_str **token,
                                          cl_pkey **key, int64_t *exp, struct cl_err *err);
/* Handshake only; returns the EAR token (new). */
CL_MUST_CHECK int cl_kbs_client_attest(const struct cl_kbs_client_opts *opts, cl_str **token,
                                       struct cl_err *err);
/* Full handshake then GET /kbs/v0/resource/<path>; the JWE is opened with the TEE key.
 * Returns the secret (new) in *out. ENOTFOUND for 404, EDENIED for a refusal (the server's
 * ErrorInformation detail is in err). */
CL_MUST_CHECK int cl_kbs_client_get_resource(const struct cl_kbs_client_opts *opts,
                                             const char *path, struct cl_secret **out,
                                             struct cl_err *err);

/* Error for a non-200 KBS reply: the code from the status and the ErrorInformation variant
 * and detail (ENOTFOUND a missing resource, EEXPIRED an expired token or session, EDENIED
 * any other 401/403, EPARSE a policy the KBS could not parse, ELIMIT 413, EIO the rest);
 * the message quotes the detail. Returns the code. */
int cl_kbs_client_reply_error(const char *step, long status, const void *body, size_t len,
                              struct cl_err *err);

/* One sealed GET: `GET url` on h with "Authorization: Bearer <token>" (token NULL: h's own
 * cookies), the flattened JWE answer opened with key; at most max plaintext bytes (ELIMIT).
 * *status is the HTTP status (0 when the transport failed). A non-200 answer is
 * cl_kbs_client_reply_error's code with `what` as its step. The passport fetch of
 * cloister-cdh and the resource step of cl_kbs_client_get_resource are this function. */
struct cl_http_client;
CL_MUST_CHECK int cl_kbs_client_get_sealed(struct cl_http_client *h, const char *url,
                                           const char *token, cl_pkey *key, size_t max,
                                           const char *what, long *status, struct cl_secret **out,
                                           struct cl_err *err);

/* Resource path grammar: exactly three segments, each [A-Za-z0-9_-][A-Za-z0-9_.-]*. */
bool cl_kbs_resource_path_valid(const char *path);
/* The PEM form of a TEE key as the AA's GetToken returns it: PKCS#8 for EC, PKCS#1 for RSA. */
cl_str *cl_kbs_tee_key_pem(cl_pkey *key, struct cl_err *err);
/* The unverified "exp" / "nbf" claims of a JWT (0 when absent). EPARSE when not a JWT. */
CL_MUST_CHECK int cl_kbs_jwt_times(const char *jwt, int64_t *exp, int64_t *nbf, struct cl_err *err);

#endif
