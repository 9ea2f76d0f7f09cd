/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/tee: helpers the hardware verifiers share — certificates (DER/PEM loading,
 * pinned fingerprints, one chain link checked at a chosen time, extensions by OID), claim
 * encoders, bounded HTTP GET for the vendor services (AMD KDS, Intel PCS/PCCS), and the
 * verifier entry points the table in tee.c points at. Not a public header.
 */
#ifndef CL_TEE_INT_H
#define CL_TEE_INT_H

#include <openssl/x509.h>

#include "tee/tee.h"

#define CL_TEE_MAX_CERT 16384       /* one DER certificate, bytes */
#define CL_TEE_MAX_CERT_FILE 262144 /* one PEM/DER file of certificates, bytes */
#define CL_TEE_MAX_FETCH 1048576    /* one HTTP response from a vendor service, bytes */
#define CL_TEE_FIELD_MAX 64         /* largest report-data / init-data field of any TEE */

/* Public entry points accept err == NULL; this gives the body a local one so that the stage can
 * always be recorded. */
#define CL_TEE_ERR(err)                                                                            \
    struct cl_err cl_tee_local_err_;                                                               \
    if (!(err))                                                                                    \
    (err) = &cl_tee_local_err_

typedef X509 cl_tee_x509;
void cl_auto_cl_tee_x509(cl_tee_x509 **p);
typedef STACK_OF(X509) cl_tee_x509s;
void cl_auto_cl_tee_x509s(cl_tee_x509s **p);

/* The verification time of a configuration (cfg may be NULL): cfg->verify_time or now. */
int64_t cl_tee_time(const struct cl_tee_config *cfg);

/* One DER certificate (exactly len bytes, no trailing data). New or NULL with EPARSE. */
X509 *cl_tee_x509_der(const uint8_t *der, size_t len, struct cl_err *err);
/* Every certificate of a PEM text, or of a single DER certificate. New stack or NULL. */
STACK_OF(X509) * cl_tee_x509_parse_any(const uint8_t *buf, size_t len, struct cl_err *err);
/* Same, from a file of at most CL_TEE_MAX_CERT_FILE bytes (ENOTFOUND when it is absent). */
STACK_OF(X509) * cl_tee_x509_load(const char *path, struct cl_err *err);
/* True when SHA-256(DER of cert) equals one of the lowercase hex fingerprints in pins[n]. */
bool cl_tee_x509_pinned(X509 *cert, const char *const *pins, size_t n);
/* The subject (or issuer) commonName copied into buf (truncated, NUL-terminated); "" when none. */
void cl_tee_x509_cn(X509 *cert, bool issuer, char *buf, size_t cap);
/* Checks one chain link: child's issuer name equals parent's subject, child's signature verifies
 * with parent's key (RSA-PSS, RSA, ECDSA as the certificate says) and child is valid at `at`.
 * `what` names the child in the message. EVERIFY (or EEXPIRED for the validity window). */
CL_MUST_CHECK int cl_tee_x509_link(X509 *child, X509 *parent, int64_t at, const char *what,
                                   struct cl_err *err);
/* Raw contents (the OCTET STRING payload) of the extension with dotted OID, borrowed from
 * cert; ENOTFOUND when absent. */
CL_MUST_CHECK int cl_tee_x509_ext(X509 *cert, const char *oid, const uint8_t **data, size_t *len,
                                  struct cl_err *err);
/* A public key from DER SubjectPublicKeyInfo (exactly len bytes), memoised by the bytes' hash
 * like certificates: returns a new reference or NULL. */
EVP_PKEY *cl_tee_pubkey_der(const uint8_t *der, size_t len);
/* New reference to cert's public key, or NULL. */
EVP_PKEY *cl_tee_x509_key(X509 *cert);

/* ---- verified-chain cache ----
 * A process-wide memo of certificate chains (and signed collateral) that verified, keyed by
 * SHA-256 over their exact bytes, valid for the window in which all of them are valid: later
 * verifications of the same chain at a time inside that window skip the signature checks.
 * Fixed size (CL_TEE_CACHE_SLOTS), thread-safe; a miss just means the full checks run. */
#define CL_TEE_CACHE_SLOTS 256
struct cl_tee_cache_key {
    uint8_t h[32];
};
/* Key over the DER of each certificate (NULLs skipped) and `extra` bytes, with a domain tag. */
void cl_tee_cache_key_certs(const char *tag, X509 *const *certs, size_t n, const void *extra,
                            size_t extra_len, struct cl_tee_cache_key *out);
bool cl_tee_cache_hit(const struct cl_tee_cache_key *k, int64_t at);
/* Remembers k as verified for [not_before, not_after]. */
void cl_tee_cache_put(const struct cl_tee_cache_key *k, int64_t not_before, int64_t not_after);
/* The window in which every certificate of certs is valid. */
void cl_tee_certs_window(X509 *const *certs, size_t n, int64_t *not_before, int64_t *not_after);
/* Empties the cache (tests). */
void cl_tee_cache_clear(void);

/* ---- claims ---- */

/* New JSON string of lowercase hex, or NULL. */
json_t *cl_tee_json_hex(const void *buf, size_t len);
/* Sets obj[key] = hex(buf); ENOMEM on failure. */
CL_MUST_CHECK int cl_tee_set_hex(json_t *obj, const char *key, const void *buf, size_t len,
                                 struct cl_err *err);

/* Compares a TEE field with the expected digest regularised to the field's length
 * (trustee's regularize_data); false when they differ. */
bool cl_tee_field_matches(const uint8_t *field, size_t field_len, const uint8_t *digest,
                          size_t dlen);

/* Bytes from a JSON member that is either an array of integers 0..255 (serde's form) or a
 * standard/url base64 string. exact != 0: the length must be exact; else at most max.
 * Returns new or NULL naming `what`. */
cl_bytes *cl_tee_json_bytes(const json_t *v, size_t exact, size_t max, size_t *outlen,
                            const char *what, struct cl_err *err);

/* ---- vendor services ---- */

/* GET url (http/https only) through net's HTTP client, at most max bytes (beyond: ELIMIT),
 * 10 s timeout (5 s to connect), TLS verified, no redirects. 200 → body (new);
 * 404 → ENOTFOUND; anything else EIO. When hdr_name is non-NULL, the value of that response
 * header (URL-decoded) is returned in *hdr_val (new, or NULL when absent). */
cl_bytes *cl_tee_http_get(const char *url, size_t max, size_t *outlen, const char *hdr_name,
                          cl_str **hdr_val, struct cl_err *err);

/* ---- verifier entry points (the table in tee.c) ---- */

int cl_tee_snp_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_tdx_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_tpm_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_az_snp_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_az_tdx_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
/* nvidia returns one claim set per device: an object for one device, an array for several. */
int cl_tee_nvidia_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_sgx_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_cca_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_csv_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);

#endif
