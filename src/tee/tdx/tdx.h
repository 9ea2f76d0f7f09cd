/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX: ECDSA quotes v4 and v5 (TD 1.0 and TD 1.5 report bodies), the QE report and
 * its binding of the attestation key, the PCK certificate chain to Intel's SGX Root CA
 * (pinned by fingerprint) with its SGX extension, DCAP collateral (TCB info and QE
 * identity: signed JSON, from a folder or a PCS/PCCS URL) and the TCB level evaluation.
 * Used by the "tdx" verifier and by Azure's az-tdx-vtpm.
 *
 * Stages: parse, bind, init-data, signature, chain, collateral, tcb, eventlog, claims.
 */
#ifndef CL_TEE_TDX_H
#define CL_TEE_TDX_H

#include <openssl/x509.h>

#include "tee/tee.h"

#define CL_TDX_MAX_QUOTE 65536        /* bytes of one quote */
#define CL_TDX_MAX_AUTH 4096          /* QE authentication data */
#define CL_TDX_MAX_COLLATERAL 1048576 /* one collateral file (JSON, CRL, chain) */
#define CL_TDX_MAX_TCB_LEVELS 256
#define CL_TDX_QE_VENDOR "939a7233f79c4ca9940a0db3957f0607"

/* TD report body (TD 1.0 = 584 bytes; TD 1.5 adds tee_tcb_svn2 and mr_servicetd). */
struct cl_tdx_body {
    uint8_t tee_tcb_svn[16], mr_seam[48], mrsigner_seam[48];
    uint8_t seam_attributes[8], td_attributes[8], xfam[8];
    uint8_t mr_td[48], mr_config_id[48], mr_owner[48], mr_owner_config[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    uint8_t tee_tcb_svn2[16], mr_servicetd[48]; /* TD 1.5 only */
};

/* SGX report body of the Quoting Enclave (384 bytes). */
struct cl_tdx_qe_report {
    uint8_t cpu_svn[16];
    uint32_t misc_select;
    uint8_t attributes[16];
    uint8_t mr_enclave[32], mr_signer[32];
    uint16_t isv_prod_id, isv_svn;
    uint8_t report_data[64];
    uint8_t raw[384];
};

/* SGX enclave report body (384 bytes), the body of a v3 (SGX) quote. */
struct cl_sgx_body {
    uint8_t cpu_svn[16];
    uint8_t misc_select[4];
    uint8_t reserved1[12];
    uint8_t isv_ext_prod_id[16];
    uint8_t attr_flags[8], attr_xfrm[8];
    uint8_t mr_enclave[32];
    uint8_t reserved2[32];
    uint8_t mr_signer[32];
    uint8_t reserved3[32];
    uint8_t config_id[64];
    uint8_t isv_prod_id[2], isv_svn[2], config_svn[2];
    uint8_t reserved4[42];
    uint8_t isv_family_id[16];
    uint8_t report_data[64];
};

/* The DCAP quote of either kind: TDX (v4, v5) or SGX (v3). */
struct cl_tdx_quote {
    bool sgx; /* v3 SGX quote: `sgx` holds the body, `body` is unused */
    struct cl_sgx_body sgx_body;
    /* header (48 bytes); for v3, tee_type holds att_key_data_0 and reserved holds QE SVN ‖ PCE SVN
     */
    uint16_t version, att_key_type;
    uint32_t tee_type;
    uint8_t reserved[4];
    uint8_t vendor_id[16], user_data[20];
    uint8_t header_raw[48];
    /* v5 only: body descriptor */
    uint16_t body_type; /* 2 = TD 1.0, 3 = TD 1.5 (v4: 2) */
    uint32_t body_size;
    struct cl_tdx_body body;
    /* what the attestation key signs: header ‖ [type ‖ size] ‖ body (borrowed from the input) */
    const uint8_t *signed_data;
    size_t signed_len;
    uint8_t signature[64]; /* r ‖ s, big-endian */
    uint8_t att_key[64];   /* x ‖ y, big-endian */
    struct cl_tdx_qe_report qe;
    uint8_t qe_signature[64];
    const uint8_t *qe_auth; /* borrowed */
    size_t qe_auth_len;
    const uint8_t *pck_pem; /* borrowed: PEM chain leaf, intermediate, root */
    size_t pck_pem_len;
};

/* Parses a quote (v4 or v5, TDX, ECDSA P-256, certification data type 6 wrapping a type-5
 * PEM chain). Trailing bytes after the signature data are ignored (quote buffers are padded).
 * The quote keeps pointers into buf, which must outlive it. EPARSE naming the field. */
CL_MUST_CHECK int cl_tdx_quote_parse(const uint8_t *buf, size_t len, struct cl_tdx_quote *q,
                                     struct cl_err *err);
/* Same for any DCAP ECDSA quote: TDX v4/v5 as above, or SGX v3 (TEE type 0, 384-byte enclave
 * report body, certification data: QE report, its signature, auth data, type-5 PEM chain). */
CL_MUST_CHECK int cl_tdx_quote_parse_any(const uint8_t *buf, size_t len, struct cl_tdx_quote *q,
                                         struct cl_err *err);

/* Header and report body only (any DCAP quote; the signature data is not read, and the
 * length is not capped): what a guest needs to check the quote it was just given. */
CL_MUST_CHECK int cl_tdx_quote_parse_head(const uint8_t *buf, size_t len, struct cl_tdx_quote *q,
                                          struct cl_err *err);

/* What the PCK leaf's SGX extension (OID 1.2.840.113741.1.13.1) says. */
struct cl_tdx_pck {
    uint8_t ppid[16];
    uint8_t comp_svn[16];
    uint16_t pcesvn;
    uint8_t cpusvn[16];
    uint8_t pceid[2];
    uint8_t fmspc[6];
    int sgx_type;     /* 0 Standard, 1 Scalable, 2 Scalable with Integrity */
    bool platform_ca; /* issued by the Platform CA (else Processor CA) */
    bool has_instance_id;
    uint8_t platform_instance_id[16];
    bool has_config;
    bool dynamic_platform, cached_keys, smt_enabled;
};

/* Parses the SGX extension of a PCK certificate (DER, bounded). EPARSE. */
CL_MUST_CHECK int cl_tdx_pck_parse(X509 *leaf, struct cl_tdx_pck *out, struct cl_err *err);

/* SHA-256 fingerprint(s) of Intel's SGX Root CA. */
extern const char *const cl_tdx_root_pins[];
extern const size_t cl_tdx_root_npins;

/* Certificate revocation lists that apply (any may be NULL; borrowed). */
struct cl_tdx_crls {
    X509_CRL *root_ca; /* issued by the root: revokes intermediates and the signing certificates */
    X509_CRL *pck;     /* issued by the PCK Platform/Processor CA: revokes PCK certificates */
};

/*
 * Cryptographic checks of a parsed quote:
 *   signature — quote signature by the attestation key; QE report signature by the PCK key;
 *               QE report data = SHA-256(attestation key ‖ QE auth data) ‖ zeros;
 *   chain     — PCK leaf → Platform/Processor CA → root, the root pinned (pins, npins), every
 *               certificate valid at `at`, CRLs checked when given (signature, validity).
 * On success *pck holds the leaf's SGX extension and *chain (new, may be NULL) the three
 * certificates leaf, intermediate, root.
 */
CL_MUST_CHECK int cl_tdx_verify_quote(const struct cl_tdx_quote *q, const char *const *pins,
                                      size_t npins, int64_t at, const struct cl_tdx_crls *crls,
                                      struct cl_tdx_pck *pck, STACK_OF(X509) * *chain,
                                      struct cl_err *err);

/* The CRL checks alone, for a chain cl_tdx_verify_quote returned (stage chain): each CRL
 * signed by the certificate it names as issuer, valid at `at`, not listing its subject. */
CL_MUST_CHECK int cl_tdx_check_crls(STACK_OF(X509) * chain, const struct cl_tdx_crls *crls,
                                    int64_t at, struct cl_err *err);

/* ---- collateral ---- */

struct cl_tdx_collateral {
    cl_bytes *tcb_info_text; /* the file as received */
    size_t tcb_info_len;
    json_t *tcb_info; /* parsed "tcbInfo" object (owned) */
    cl_bytes *qe_identity_text;
    size_t qe_identity_len;
    json_t *qe_identity;        /* parsed "enclaveIdentity" object (owned) */
    STACK_OF(X509) * tcb_chain; /* TCB info issuer chain (owned) */
    STACK_OF(X509) * qe_chain;  /* QE identity issuer chain (owned, may equal tcb chain content) */
    X509_CRL *root_crl, *pck_crl; /* owned, may be NULL */
};
void cl_tdx_collateral_clear(struct cl_tdx_collateral *c);

/* Loads the collateral for a FMSPC (6 bytes) and CA kind: from cfg->tdx_collateral_dir,
 * else (cfg->tdx_pccs_url set) fetched and, when a folder is configured, written there.
 * Folder layout: tcb_info_<fmspc hex lowercase>.json (or tcb_info.json),
 * tcb_info_issuer_chain.pem, qe_identity.json, qe_identity_issuer_chain.pem (optional: the
 * TCB info chain is used), root_ca_crl.der|.pem and pck_crl_<platform|processor>.der|.pem
 * (optional). ENOTFOUND when no TCB info / QE identity can be had. Stage collateral. */
CL_MUST_CHECK int cl_tdx_collateral_load(const struct cl_tee_config *cfg, const uint8_t fmspc[6],
                                         bool platform_ca, struct cl_tdx_collateral *c,
                                         struct cl_err *err);
/* Loads collateral from explicit texts (tests, the CLI): any chain/CRL argument may be NULL. */
CL_MUST_CHECK int cl_tdx_collateral_from(const uint8_t *tcb_info, size_t tcb_len,
                                         const uint8_t *qe_identity, size_t qe_len,
                                         const uint8_t *tcb_chain_pem, size_t tcb_chain_len,
                                         const uint8_t *qe_chain_pem, size_t qe_chain_len,
                                         struct cl_tdx_collateral *c, struct cl_err *err);

/* The same for either kind of DCAP collateral (sgx: SGX TCB info from cfg->sgx_collateral_dir
 * or the PCCS's sgx/certification/v4 paths; same folder layout). */
CL_MUST_CHECK int cl_tdx_collateral_load_kind(const struct cl_tee_config *cfg, bool sgx,
                                              const uint8_t fmspc[6], bool platform_ca,
                                              struct cl_tdx_collateral *c, struct cl_err *err);

/* Verifies the collateral: each JSON's ECDSA P-256 signature over the exact text of its
 * "tcbInfo"/"enclaveIdentity" member by the leaf of its issuer chain, the chain to a pinned
 * root, CRLs' signatures by their issuers; validity of certificates at `at`. The JSON
 * issueDate/nextUpdate window is reported in *expired (true when `at` is outside it). */
CL_MUST_CHECK int cl_tdx_collateral_verify(const struct cl_tdx_collateral *c,
                                           const char *const *pins, size_t npins, int64_t at,
                                           bool *expired, struct cl_err *err);

/* Same, for SGX collateral when sgx is true (TCB info id "SGX" version 3, QE identity id "QE"
 * version 2); cl_tdx_collateral_verify is this with sgx false (ids "TDX", "TD_QE"). */
CL_MUST_CHECK int cl_tdx_collateral_verify_kind(const struct cl_tdx_collateral *c, bool sgx,
                                                const char *const *pins, size_t npins, int64_t at,
                                                bool *expired, struct cl_err *err);

/* TCB statuses, ordered from best to worst. */
enum cl_tdx_tcb_status {
    CL_TDX_UP_TO_DATE,
    CL_TDX_SW_HARDENING_NEEDED,
    CL_TDX_CONFIGURATION_NEEDED,
    CL_TDX_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    CL_TDX_TD_RELAUNCH_ADVISED,
    CL_TDX_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
    CL_TDX_OUT_OF_DATE,
    CL_TDX_OUT_OF_DATE_CONFIGURATION_NEEDED,
    CL_TDX_REVOKED,
};
const char *cl_tdx_status_name(enum cl_tdx_tcb_status s);

struct cl_tdx_tcb_result {
    enum cl_tdx_tcb_status status; /* platform, TDX module and QE combined */
    char tcb_date[32];             /* of the matching platform level */
    json_t *advisory_ids;          /* new array (maybe empty) */
    int64_t tcb_eval_num;
    char issue_date[32], next_update[32]; /* earliest issue / earliest next update of the two */
    char latest_issue[32];
};

/* Matches the quote and PCK against verified collateral: FMSPC and PCE-ID equal, the first
 * platform TCB level not above the PCK SVNs and the TD's TEE_TCB_SVN, the TDX module identity
 * (MRSIGNER_SEAM, SEAM attributes, its own level), the QE identity (MRSIGNER, ISVPRODID,
 * MISCSELECT/ATTRIBUTES under their masks, ISVSVN level). ENOTFOUND (stage tcb) when no
 * level matches ("TCB not recognised"); EVERIFY for an identity mismatch. */
CL_MUST_CHECK int cl_tdx_tcb_evaluate(const struct cl_tdx_quote *q, const struct cl_tdx_pck *pck,
                                      const struct cl_tdx_collateral *c,
                                      struct cl_tdx_tcb_result *res, struct cl_err *err);

/* Everything after parsing and binding, for tdx and az-tdx-vtpm: signature and chain, the
 * collateral (verified against collateral roots pins[npins]; the PCK chain always against
 * cl_tdx_root_pins), CRLs, TCB status (UpToDate, or allowed by cfg->tdx_allow_tcb_insecure),
 * the DEBUG attribute, the CCEL (may be NULL) replayed against the RTMRs. *claims (new) gets
 * the TDX claims with DCAP's supplemental ones (tcb_status, advisory_ids, ...). */
CL_MUST_CHECK int cl_tdx_verify_parsed(const struct cl_tdx_quote *q, const uint8_t *ccel,
                                       size_t ccel_len, const struct cl_tee_config *cfg,
                                       const char *const *pins, size_t npins, json_t **claims,
                                       struct cl_err *err);

/* The DCAP appraisal shared by tdx and sgx: signature and chain (PCK to cl_tdx_root_pins),
 * collateral of the quote's kind (verified against pins[npins]), CRLs, expiry (refused unless
 * cfg->tdx_allow_expired_collateral_insecure), the TCB level (UpToDate, or allowed by
 * cfg->tdx_allow_tcb_insecure; Revoked never). On success *claims (new object) holds DCAP's
 * supplemental claims (tcb_status, advisory_ids, ..., platform_provider_id) and *pck the PCK
 * extension. */
CL_MUST_CHECK int cl_tdx_appraise(const struct cl_tdx_quote *q, const struct cl_tee_config *cfg,
                                  const char *const *pins, size_t npins, struct cl_tdx_pck *pck,
                                  json_t **claims, struct cl_err *err);

/* The "sgx" verifier on a raw v3 quote (tee/sgx/verify.c): bind report data (64) and init-data
 * (CONFIGID, 64; either may be NULL to skip), cl_tdx_appraise with collateral roots pins[npins],
 * the DEBUG attribute (refused unless cfg->allow_debug_insecure), then trustee's SGX claims
 * with the supplemental ones (*claims, new). */
CL_MUST_CHECK int cl_sgx_verify_quote(const uint8_t *quote, size_t len, const uint8_t *rd,
                                      size_t rd_len, const uint8_t *idd, size_t id_len,
                                      const struct cl_tee_config *cfg, const char *const *pins,
                                      size_t npins, json_t **claims, struct cl_err *err);

/* ---- claims ---- */

/* trustee's TDX claims for a quote (and a CCEL, may be NULL): quote.header, quote.body,
 * td_attributes, report_data, init_data, platform_instance_id (when the PCK has one),
 * uefi_event_logs. New or NULL. */
json_t *cl_tdx_claims(const struct cl_tdx_quote *q, const struct cl_tdx_pck *pck,
                      const uint8_t *ccel, size_t ccel_len, struct cl_err *err);

/* ---- attester (guest side, tdx/attest.c) ---- */

#define CL_TDX_REPORT_DATA_LEN 64
#define CL_TDX_MAX_TSM_QUOTE (1u << 20) /* configfs-tsm outblob bytes */

/* Where a TD finds its quoting interfaces; tests point them at fake trees. */
struct cl_tdx_guest {
    const char *tsm_report_dir; /* configfs-tsm report folder */
    const char *guest_dev;      /* /dev/tdx_guest */
    const char *measurements;   /* sysfs RTMR files (kernel 6.16+) */
    /* Test hook for a fake configfs-tsm tree: called after a report entry was created
     * (phase 0), after inblob was written (phase 1, to play the kernel's part) and before the
     * entry is removed (phase 2). */
    int (*tsm_hook)(const char *entry_dir, int phase, void *ctx);
    void *tsm_hook_ctx;
};

/* A TPM PCR index as the CC event log names it: the CCMR (RTMR index + 1) upstream maps it to
 * (1 and 7 → 1, 2..6 → 2, 8..15 → 3, the rest → 4). */
unsigned cl_tdx_pcr_to_ccmr(unsigned pcr);
/* True when this is a TD: configfs-tsm with provider tdx_guest, or /dev/tdx_guest alone. */
bool cl_tdx_guest_detect(const struct cl_tdx_guest *g);
/* A quote for rd[len] (at most 64 bytes, zero-padded) through configfs-tsm: a report entry of
 * its own, provider and generation checked (a racing writer is refused), the quote's header
 * and body parsed and its report data compared with what was asked. Returns new bytes. */
cl_bytes *cl_tdx_guest_quote(const struct cl_tdx_guest *g, const uint8_t *rd, size_t len,
                             size_t *qlen, struct cl_err *err);
/* trustee's tdx evidence: {"cc_eventlog": base64 or null, "quote": base64}; ELIMIT when the
 * two exceed max_evidence bytes. New. */
json_t *cl_tdx_evidence_json(const uint8_t *quote, size_t qlen, const char *cc_eventlog_b64,
                             size_t max_evidence, struct cl_err *err);
/* Init-data binding: MRCONFIGID of a fresh quote equals digest (zero-padded to 48), else
 * EVERIFY at stage init-data. */
CL_MUST_CHECK int cl_tdx_guest_check_mrconfigid(const struct cl_tdx_guest *g, const uint8_t *digest,
                                                size_t len, struct cl_err *err);
/* Extends the RTMR that upstream maps PCR `pcr` to (1,7 → 0; 2-6 → 1; 8-15 → 2; else 3) with
 * digest (zero-padded to 48) through the sysfs measurement files; EUNSUPPORTED without them. */
CL_MUST_CHECK int cl_tdx_guest_extend(const struct cl_tdx_guest *g, unsigned pcr,
                                      const uint8_t *digest, size_t len, struct cl_err *err);

#endif
