/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Arm CCA: a bounded CBOR reader (definite lengths only, depth and count caps), the CCA
 * attestation token (CBOR tag 399 collection of a platform COSE_Sign1 signed by the CPAK and
 * a realm COSE_Sign1 signed by the RAK, bound by the platform challenge = hash of the RAK),
 * and the "cca" verifier (local appraisal: CPAK from a trust-anchor store, optional
 * reference-value store).
 *
 * Stages recorded in cl_err.stage: parse, bind, init-data, signature, chain, tcb, claims.
 */
#ifndef CL_TEE_CCA_H
#define CL_TEE_CCA_H

#include "tee/tee.h"

#define CL_CCA_CBOR_MAX_DEPTH 16   /* nesting of arrays/maps/tags */
#define CL_CCA_CBOR_MAX_COUNT 1024 /* entries of one array or map */
#define CL_CCA_MAX_TOKEN 65536     /* a whole CCA token, bytes */
#define CL_CCA_MAX_SW_COMPONENTS 64
#define CL_CCA_MAX_STORE 1048576 /* trust-anchor / reference-value store file, bytes */

/* ---- bounded CBOR reader ---- */

enum cl_cca_cbor_major {
    CL_CCA_CBOR_UINT = 0,
    CL_CCA_CBOR_NINT = 1,
    CL_CCA_CBOR_BSTR = 2,
    CL_CCA_CBOR_TSTR = 3,
    CL_CCA_CBOR_ARRAY = 4,
    CL_CCA_CBOR_MAP = 5,
    CL_CCA_CBOR_TAG = 6,
    CL_CCA_CBOR_SIMPLE = 7,
};

struct cl_cca_cbor {
    const uint8_t *buf; /* borrowed */
    size_t len, off;
};

/* One item head. For BSTR/TSTR, data points at the `val` content bytes (borrowed from the
 * buffer, already bounds-checked); for ARRAY/MAP, val is the entry count (at most
 * CL_CCA_CBOR_MAX_COUNT); for TAG, the tag number; for UINT the value, for NINT the CBOR
 * argument (value = -1 - val). */
struct cl_cca_cbor_item {
    enum cl_cca_cbor_major major;
    uint64_t val;
    const uint8_t *data;
};

static inline struct cl_cca_cbor cl_cca_cbor_init(const void *buf, size_t len)
{
    return (struct cl_cca_cbor){(const uint8_t *)buf, len, 0};
}
/* Reads one head (and a string's content). Indefinite lengths, reserved additional-info
 * values and counts above the cap are refused: EPARSE / ELIMIT, `what` in the message. */
CL_MUST_CHECK int cl_cca_cbor_head(struct cl_cca_cbor *c, struct cl_cca_cbor_item *it,
                                   const char *what, struct cl_err *err);
/* Skips one whole item (nested up to CL_CCA_CBOR_MAX_DEPTH). */
CL_MUST_CHECK int cl_cca_cbor_skip(struct cl_cca_cbor *c, const char *what, struct cl_err *err);
/* Reads a head and requires its major type (a TSTR/BSTR also within [min,max] bytes). */
CL_MUST_CHECK int cl_cca_cbor_expect(struct cl_cca_cbor *c, enum cl_cca_cbor_major m,
                                     struct cl_cca_cbor_item *it, const char *what,
                                     struct cl_err *err);
/* A map key that is an integer (negative keys as negative values). EPARSE for other keys. */
CL_MUST_CHECK int cl_cca_cbor_int_key(struct cl_cca_cbor *c, int64_t *key, const char *what,
                                      struct cl_err *err);

/* ---- the CCA token ---- */

#define CL_CCA_TAG_COLLECTION 399
#define CL_CCA_KEY_PLATFORM 44234
#define CL_CCA_KEY_REALM 44241
#define CL_CCA_COSE_TAG_SIGN1 18

struct cl_cca_bytes {
    const uint8_t *p; /* borrowed from the token buffer; NULL when absent */
    size_t n;
};

/* One COSE_Sign1: the exact protected-header bytes, the payload and the signature, and the
 * algorithm read from the protected header (-7 ES256, -35 ES384, -36 ES512). */
struct cl_cca_cose_sign1 {
    struct cl_cca_bytes protected_hdr, payload, signature;
    int64_t alg;
};

struct cl_cca_sw_component {
    struct cl_cca_bytes type, measurement, version, signer_id,
        hash_algo; /* type/version/hash_algo: text */
};

struct cl_cca_platform {
    struct cl_cca_bytes profile, challenge, implementation_id, instance_id, config, service,
        hash_algo;
    uint64_t lifecycle;
    struct cl_cca_sw_component sw[CL_CCA_MAX_SW_COMPONENTS];
    size_t nsw;
};

struct cl_cca_realm {
    struct cl_cca_bytes challenge, personalization, rim, rem[4], rak, rak_hash_algo, hash_algo,
        profile;
    size_t nrem;
};

struct cl_cca_token {
    struct cl_cca_cose_sign1 platform_cose, realm_cose;
    struct cl_cca_platform platform;
    struct cl_cca_realm realm;
};

/* Parses a token (every byte borrowed from buf, which must outlive *out): the tag-399
 * collection, both COSE_Sign1 envelopes and both claim sets, with every mandatory claim
 * present and of its size (challenge 32/48/64 bytes, realm challenge and personalisation
 * value 64, RIM and REMs 32/48/64, RAK an uncompressed P-384 point, instance id 33).
 * EPARSE / ELIMIT, stage parse. */
CL_MUST_CHECK int cl_cca_token_parse(const uint8_t *buf, size_t len, struct cl_cca_token *out,
                                     struct cl_err *err);

/* COSE Sig_structure "Signature1" over (protected, empty external AAD, payload), new. */
cl_bytes *cl_cca_cose_tbs(const struct cl_cca_cose_sign1 *s, size_t *outlen);

/* Signature stage: the realm token signed by its RAK and the platform challenge equal to the
 * digest of the RAK point (SHA-256/384/512 by the challenge's length). EVERIFY. */
CL_MUST_CHECK int cl_cca_verify_realm(const struct cl_cca_token *t, struct cl_err *err);
/* Chain stage: the platform token signed by the CPAK of the trust-anchor store entry whose
 * instance id (and implementation id) equal the token's. store: trustee's tastore.json array
 * (borrowed). EVERIFY / ENOTFOUND. */
CL_MUST_CHECK int cl_cca_verify_platform(const struct cl_cca_token *t, const json_t *ta_store,
                                         struct cl_err *err);
/* Tcb stage: the platform and realm measurements against a reference-value store (trustee's
 * rvstore.json, borrowed). EVERIFY naming the component that did not match. */
CL_MUST_CHECK int cl_cca_appraise(const struct cl_cca_token *t, const json_t *rv_store,
                                  struct cl_err *err);
/* trustee's claims (cca-claims.json shape, new). */
json_t *cl_cca_claims(const struct cl_cca_token *t, struct cl_err *err);

#endif
