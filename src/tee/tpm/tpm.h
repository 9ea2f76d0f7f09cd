/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM 2.0 evidence, in the JSON shape of trustee's "tpm" verifier:
 *   {"ak_public": "<std base64 DER SubjectPublicKeyInfo>",
 *    "tpm_quote": {"signature": "<std base64 marshalled TPMT_SIGNATURE>",
 *                  "message": "<std base64 marshalled TPMS_ATTEST>",
 *                  "pcrs": ["<hex SHA-256 PCR 0>", ..., "<hex PCR 23>"]},
 *    "ak_cert": "<std base64 DER>" (Cloister: optional AK certificate)}
 * The attester side quotes a real TPM through tss2 (ESYS, any TCTI: "device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321", ...). The verifier side parses TPMS_ATTEST and
 * TPMT_SIGNATURE with tss2-mu (bounded unmarshalling, every byte consumed).
 *
 * Stages: parse, bind (extraData), signature (AK signature, PCR digest), chain (AK
 * certificate, when a CA is configured), init-data (PCR8), claims.
 */
#ifndef CL_TEE_TPM_H
#define CL_TEE_TPM_H

#include <openssl/evp.h>

#include "tee/tee.h"

#define CL_TPM_NUM_PCRS 24
#define CL_TPM_EXTRA_DATA 32      /* the nonce slot: report data regularised to 32 bytes */
#define CL_TPM_MAX_MESSAGE 4096   /* marshalled TPMS_ATTEST */
#define CL_TPM_MAX_SIGNATURE 1024 /* marshalled TPMT_SIGNATURE */

/* What a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE says (borrowed from nothing: copied). */
struct cl_tpm_quote_info {
    uint8_t extra_data[64];
    size_t extra_len;
    uint8_t signer_name[68];
    size_t signer_name_len;
    uint64_t clock, firmware_version;
    uint32_t reset_count, restart_count;
    uint32_t sha256_mask; /* PCRs of the SHA-256 bank the quote covers (bit i = PCR i) */
    uint8_t pcr_digest[64];
    size_t pcr_digest_len;
};

/* Parses a marshalled TPMS_ATTEST: magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE, one
 * PCR selection of the SHA-256 bank. EPARSE naming the field. */
CL_MUST_CHECK int cl_tpm_attest_parse(const uint8_t *buf, size_t len, struct cl_tpm_quote_info *out,
                                      struct cl_err *err);

/* Verifies a marshalled TPMT_SIGNATURE (RSASSA or RSAPSS with SHA-256, ECDSA P-256/SHA-256)
 * over msg with key. EVERIFY / EPARSE / EUNSUPPORTED. */
CL_MUST_CHECK int cl_tpm_signature_verify(EVP_PKEY *key, const uint8_t *sig, size_t sig_len,
                                          const uint8_t *msg, size_t msg_len, struct cl_err *err);

/* The PCR digest of a quote recomputed from the 24 SHA-256 PCR values: SHA-256 of the
 * selected values in index order. */
CL_MUST_CHECK int cl_tpm_pcr_digest(const uint8_t pcrs[CL_TPM_NUM_PCRS][32], uint32_t mask,
                                    uint8_t out[32], struct cl_err *err);

/* ---- attester (guest side) ---- */

/*
 * Quotes the TPM reached through `tcti` (NULL: tss2's default TCTI) over `pcrs` (npcrs
 * indices 0..23; NULL/0: all 24) of the SHA-256 bank with extraData = report_data
 * regularised to 32 bytes, signed by the attestation key: a restricted RSA-2048
 * RSASSA-SHA-256 primary key of the endorsement hierarchy (same template, same key on the
 * same TPM: CL_TPM_AK_TEMPLATE in docs/verifiers.md). Returns the evidence (new) in
 * *evidence; EIO when the TPM cannot be reached or refuses; EUNSUPPORTED when the tss2
 * libraries cannot be loaded.
 */
CL_MUST_CHECK int cl_tee_tpm_quote(const char *tcti, const uint8_t *report_data, size_t len,
                                   const int *pcrs, size_t npcrs, json_t **evidence,
                                   struct cl_err *err);

/* The attestation key's public part as DER SubjectPublicKeyInfo (new, *len bytes). */
cl_bytes *cl_tee_tpm_ak_public(const char *tcti, size_t *len, struct cl_err *err);

/* ---- the tss2 libraries, opened on first use (tss2_dl.c) ---- */

/* The tss2 libraries are not linked: each is opened (dlopen) the first time it is needed, so
 * a process that never touches a TPM does not map them. The entry points above load what
 * they need first and fail with EUNSUPPORTED naming the library when it cannot be opened
 * (not installed, or without a function this build calls). */
#define CL_TPM_TSS2_ESYS 1u
#define CL_TPM_TSS2_MU 2u
#define CL_TPM_TSS2_TCTILDR 4u
#define CL_TPM_TSS2_RC 8u
#define CL_TPM_TSS2_ALL 15u
/* Loads the libraries named by `libs` (CL_TPM_TSS2_* bits). 0, or EUNSUPPORTED. Thread-safe. */
CL_MUST_CHECK int cl_tee_tpm_tss2_load(unsigned libs, struct cl_err *err);
/* For tests: the name the next load of `libs` opens (NULL: the default soname); a library
 * already loaded stays mapped but is opened again under the new name at the next call. */
void cl_tee_tpm_tss2_soname_set(unsigned libs, const char *soname);

#endif
