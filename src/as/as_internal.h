/* SPDX-License-Identifier: Apache-2.0 */
/* State shared by the attestation service's files. Not a public header. */
#ifndef CL_AS_INTERNAL_H
#define CL_AS_INTERNAL_H

#include "as/as.h"

struct cl_as {
    struct cl_store *store;
    bool allow_sample_insecure;
    unsigned token_duration_min;
    unsigned rv_validity_days;
    char *issuer;
    cl_pkey *signer;
    json_t *header_jwk; /* {"kty","crv","x","y","alg":"ES256"[, "x5c"]} */
};

/* Native attestation policy with trustee's default semantics: returns the trust vector
 * (new object claim → int) for one submod's annotated evidence. */
json_t *cl_as_native_policy(struct cl_as *as, const char *tee, const char *tee_class, const json_t *input,
                            struct cl_err *err);
/* AR4SI tier of a trust vector: "none" | "affirming" | "warning" | "contraindicated". */
const char *cl_as_ear_status(const json_t *vector);

#endif
