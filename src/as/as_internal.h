/* SPDX-License-Identifier: Apache-2.0 */
/* State shared by the attestation service's files. Not a public header. */
#ifndef CL_AS_INTERNAL_H
#define CL_AS_INTERNAL_H

#include <pthread.h>

#include "as/as.h"

struct cl_as {
    struct cl_store *store;
    bool allow_sample_insecure;
    unsigned token_duration_min;
    unsigned rv_validity_days;
    char *issuer;
    cl_pkey *signer;
    json_t *header_jwk; /* {"kty","crv","x","y","alg":"ES256"[, "x5c"]} */
    cl_str *token_h64;  /* every token's protected header, base64url: {"alg","typ","jwk"} */
    json_t *token_hdr;  /* the same header as an object */
    const struct cl_tee_config *tee_config; /* borrowed verifier settings, or NULL */
    /* compiled attestation policies by id, each with the stored version it came from; the
     * write lock is held while the cache changes, evaluations hold a reference instead */
    pthread_rwlock_t policy_lock;
    struct as_policy *policies;
    size_t npolicies;
};

/* Evaluates the attestation policy "<policy_id>_<class>" on one submod's annotated evidence:
 * the trust vector (new, all eight AR4SI claims) and the optional extensions (new or NULL). */
int cl_as_appraise(struct cl_as *as, const char *policy_id, const char *tee_class,
                   const json_t *input, json_t **vector, json_t **extensions, struct cl_err *err);
/* Appraises the claims a verifier returned for one item — an object, or an array of objects
 * (one per device) — each as its own submod: a new array of submods in order. Borrows claims. */
json_t *cl_as_appraise_sets(struct cl_as *as, const struct cl_as_item *it, const char *policy_id,
                            const struct cl_tee_verifier *v, const json_t *claims,
                            const json_t *init_claims, struct cl_err *err);
void cl_as_policies_free(struct cl_as *as);
/* AR4SI tier of a trust vector: "none" | "affirming" | "warning" | "contraindicated". */
const char *cl_as_ear_status(const json_t *vector);

#endif
