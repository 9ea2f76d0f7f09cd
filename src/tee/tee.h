/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TEE evidence: the verifier table (verifier side) and attesters (guest side). Each verifier
 * is a staged pipeline (parse → bind report data → signature/chain → TCB/attributes →
 * claims); a failure records its stage in cl_err.stage. Nothing here knows of the KBS.
 */
#ifndef CL_TEE_H
#define CL_TEE_H

#include "base/base.h"
#include "json/json.h"

#define CL_TEE_REPORT_DATA_MAX 64

/* Stage names recorded in cl_err.stage by every verifier. */
#define CL_TEE_STAGE_PARSE "parse"
#define CL_TEE_STAGE_BIND "bind"
#define CL_TEE_STAGE_SIGNATURE "signature"
#define CL_TEE_STAGE_CHAIN "chain"
#define CL_TEE_STAGE_TCB "tcb"
#define CL_TEE_STAGE_INIT_DATA "init-data"
#define CL_TEE_STAGE_CLAIMS "claims"
#define CL_TEE_STAGE_COLLATERAL "collateral" /* TDX TCB info / QE identity / CRLs */
#define CL_TEE_STAGE_EVENTLOG "eventlog" /* event log replay against the measurement registers */

/* Bits of cl_tee_config.tdx_allow_tcb_insecure: DCAP TCB statuses accepted besides UpToDate. */
#define CL_TEE_TCB_SW_HARDENING_NEEDED 0x01u
#define CL_TEE_TCB_CONFIGURATION_NEEDED 0x02u
#define CL_TEE_TCB_OUT_OF_DATE 0x04u
#define CL_TEE_TCB_TD_RELAUNCH_ADVISED 0x08u

/*
 * Verifier settings. All-zero is the secure default: offline, debug TEEs refused, only
 * UpToDate TCBs, certificates and collateral valid now. Strings are borrowed for as long as
 * the configuration is used. Names follow [attestation_service.verifier_config]
 * (docs/verifiers.md).
 */
struct cl_tee_config {
    int64_t verify_time; /* unix seconds at which certificates/collateral must be valid; 0 = now */
    bool allow_debug_insecure; /* accept SNP guests with policy DEBUG and TDX TDs with attribute
                                  DEBUG */
    /* Arm CCA (local appraisal) */
    const char *cca_ta_store; /* trustee's tastore.json: CPAK per platform instance id (required) */
    const char *cca_rv_store; /* trustee's rvstore.json: platform/realm reference values; NULL =
                                 policy only */
    /* Hygon CSV */
    const char
        *csv_cert_dir; /* hrk.cert and hsk_cek/<chip id>/hsk_cek.cert; NULL → /opt/hygon/csv */
    /* AMD SEV-SNP */
    const char *snp_cert_cache; /* folder: <Product>/cert_chain.pem, vcek/<hwid>/... (KDS layout) */
    bool snp_kds_online;        /* fetch missing VCEK/ASK/ARK from AMD KDS and cache them */
    const char *snp_kds_url;    /* NULL → https://kdsintf.amd.com */
    /* Intel TDX (DCAP) */
    const char
        *tdx_collateral_dir; /* tcb_info_<fmspc>.json, qe_identity.json, issuer chains, CRLs */
    const char
        *tdx_pccs_url; /* PCS/PCCS base URL (…/tdx/certification/v4/… appended); NULL = offline */
    unsigned tdx_allow_tcb_insecure; /* CL_TEE_TCB_* bits */
    bool tdx_allow_expired_collateral_insecure;
    /* Intel SGX (DCAP; the PCCS URL and the TCB/expiry switches above are shared with TDX) */
    const char *sgx_collateral_dir; /* the same layout as tdx_collateral_dir, SGX TCB info and QE
                                       identity */
    /* TPM */
    const char *tpm_ak_ca_path; /* PEM: CA(s) that certify attestation keys; NULL = AK trusted by
                                   policy only */
};

struct cl_tee_verify_in {
    const json_t *evidence;     /* borrowed: the TEE-specific evidence JSON */
    const uint8_t *report_data; /* expected report data (already hashed) */
    size_t report_data_len;
    const uint8_t *init_data_digest; /* expected init-data digest, or NULL */
    size_t init_data_len;
    const struct cl_tee_config *cfg; /* borrowed; NULL = all defaults */
};

struct cl_tee_verifier {
    const char *tee;       /* kbs-types id: "sample", "sampledevice", "snp", ... */
    const char *tee_class; /* "cpu", "gpu", ... */
    bool insecure;         /* true: accepted only when the configuration allows it */
    /* Verifies and returns new claims (a JSON object) in *claims. */
    int (*verify)(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
};

/* The verifier for a kbs-types TEE id, or NULL when this build has none. */
const struct cl_tee_verifier *cl_tee_verifier_find(const char *tee);
/* True for every TEE id kbs-types defines (whether or not a verifier exists here). */
bool cl_tee_id_known(const char *tee);

/* Pads with zeros or truncates digest into a field of field_len bytes (trustee's
 * regularize_data). */
void cl_tee_regularize(const uint8_t *digest, size_t dlen, uint8_t *field, size_t field_len);

/* ---- sample TEE (no hardware; for tests and demos only) ---- */

/* Attester side: {"svn":"1","report_data":"<std base64 of report_data>"} (new). */
json_t *cl_tee_sample_evidence(const char *tee, const uint8_t *report_data, size_t len,
                               struct cl_err *err);

#endif
