/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AMD SEV-SNP: the attestation report (SNP ABI, versions 2, 3 and 5), its JSON form as
 * trustee's SNP attester sends it (virtee/sev serde: byte arrays as number arrays), the
 * VCEK/VLEK → ASK/ASVK → ARK chain with the ARK pinned by fingerprint, and the verifier used
 * by the "snp" TEE and by Azure's az-snp-vtpm.
 *
 * Stages recorded in cl_err.stage: parse, bind, init-data, chain, signature, tcb, claims.
 */
#ifndef CL_TEE_SNP_H
#define CL_TEE_SNP_H

#include <openssl/x509.h>

#include "tee/tee.h"

#define CL_SNP_REPORT_SIZE 1184  /* 0x4A0 */
#define CL_SNP_SIGNED_SIZE 0x2A0 /* the signature covers bytes [0, 0x2A0) */
#define CL_SNP_MAX_CHAIN 8       /* certificates accepted in evidence cert_chain */

enum cl_snp_product { CL_SNP_UNKNOWN = 0, CL_SNP_MILAN, CL_SNP_GENOA, CL_SNP_TURIN };

/* Signing key named in KEY_INFO bits 4:2. */
enum cl_snp_signer { CL_SNP_VCEK = 0, CL_SNP_VLEK = 1, CL_SNP_NO_KEY = 7 };

struct cl_snp_tcb {
    uint8_t fmc; /* Turin only */
    uint8_t bootloader, tee, snp, microcode;
};

struct cl_snp_report {
    uint32_t version, guest_svn;
    uint64_t policy;
    uint8_t family_id[16], image_id[16];
    uint32_t vmpl, sig_algo;
    uint64_t current_tcb, plat_info;
    uint32_t key_info;
    uint8_t report_data[64], measurement[48], host_data[32];
    uint8_t id_key_digest[48], author_key_digest[48], report_id[32], report_id_ma[32];
    uint64_t reported_tcb;
    uint8_t cpuid_fam, cpuid_mod, cpuid_step; /* version >= 3 */
    uint8_t chip_id[64];
    uint64_t committed_tcb;
    uint8_t current_build, current_minor, current_major;
    uint8_t committed_build, committed_minor, committed_major;
    uint64_t launch_tcb;
    uint64_t launch_mit_vector, current_mit_vector; /* version >= 5 */
    uint8_t sig_r[72], sig_s[72];                   /* little-endian, as in the report */
    uint8_t raw[CL_SNP_REPORT_SIZE];
};

/* Policy bits (SNP ABI, GUEST_POLICY). */
#define CL_SNP_POLICY_SMT (1ull << 16)
#define CL_SNP_POLICY_MIGRATE_MA (1ull << 18)
#define CL_SNP_POLICY_DEBUG (1ull << 19)
#define CL_SNP_POLICY_SINGLE_SOCKET (1ull << 20)
/* PLATFORM_INFO bits. */
#define CL_SNP_PLAT_SMT_EN (1ull << 0)
#define CL_SNP_PLAT_TSME_EN (1ull << 1)

/* Parses the binary report (exactly CL_SNP_REPORT_SIZE bytes): version 2, 3 or 5 (4 is
 * accepted as 3), ECDSA P-384 signature algorithm, a signing key (VCEK or VLEK). EPARSE. */
CL_MUST_CHECK int cl_snp_report_parse(const uint8_t *buf, size_t len, struct cl_snp_report *out,
                                      struct cl_err *err);
/* The report from its JSON form: trustee's serde object, or a base64 string of the binary
 * report. The binary image is rebuilt field by field (reserved bytes zero), so a report
 * whose signature verifies was sent faithfully. */
CL_MUST_CHECK int cl_snp_report_from_json(const json_t *v, struct cl_snp_report *out,
                                          struct cl_err *err);
/* trustee's serde object of a report (new), the inverse of cl_snp_report_from_json; fields a
 * version lacks (cpuid_* before 3, *_mit_vector before 5) are left out, as in trustee's
 * evidence. */
json_t *cl_snp_report_to_json(const struct cl_snp_report *r);

/* Processor generation from CPUID family/model (version >= 3), else UNKNOWN. */
enum cl_snp_product cl_snp_product_of(const struct cl_snp_report *r);
const char *cl_snp_product_name(enum cl_snp_product p); /* "Milan", "Genoa", "Turin", "unknown" */
enum cl_snp_signer cl_snp_signer_of(const struct cl_snp_report *r);
/* Splits a TCB_VERSION as the product lays it out (Turin adds FMC and moves the fields). */
struct cl_snp_tcb cl_snp_tcb_decode(uint64_t raw, enum cl_snp_product p);
uint64_t cl_snp_tcb_encode(struct cl_snp_tcb t, enum cl_snp_product p);

/* SHA-256 fingerprints (lowercase hex of the DER) of the AMD root keys this build trusts. */
extern const char *const cl_snp_ark_pins[];
extern const size_t cl_snp_ark_npins;

/*
 * Hardware checks of a parsed report, for the snp and az-snp-vtpm verifiers:
 *   chain     — the VEK (VCEK/VLEK from `supplied`, the cache folder, or KDS when online) is
 *               signed by the ASK/ASVK, signed by the ARK, whose fingerprint is pinned; every
 *               certificate valid at the configured time;
 *   signature — ECDSA P-384/SHA-384 of the report by the VEK;
 *   tcb       — the VEK's TCB extensions equal REPORTED_TCB, its hwID equals CHIP_ID.
 * `supplied` (borrowed, may be NULL) holds certificates that came with the evidence.
 * *product_out (may be NULL) receives the generation the chain proved.
 */
CL_MUST_CHECK int cl_snp_verify_hw(const struct cl_snp_report *r, STACK_OF(X509) * supplied,
                                   const struct cl_tee_config *cfg,
                                   enum cl_snp_product *product_out, struct cl_err *err);

/* Guest attributes (stage tcb): VMPL 0; policy DEBUG refused unless allow_debug_insecure. */
CL_MUST_CHECK int cl_snp_check_attributes(const struct cl_snp_report *r,
                                          const struct cl_tee_config *cfg, struct cl_err *err);
/* The certified-TCB check alone (stage tcb): the VEK's TCB extensions equal REPORTED_TCB and,
 * for a VCEK and an unmasked CHIP_ID, its hwID (raw or DER OCTET STRING) equals CHIP_ID. */
CL_MUST_CHECK int cl_snp_check_tcb(const struct cl_snp_report *r, X509 *vek, enum cl_snp_product p,
                                   struct cl_err *err);

/* trustee's SNP claims (new object). as_strings: the az-snp-vtpm flavour (every value a
 * string, measurement in standard base64). */
json_t *cl_snp_claims(const struct cl_snp_report *r, enum cl_snp_product p, bool as_strings,
                      struct cl_err *err);

/* ---- attester (guest side, snp/attest.c) ---- */

#define CL_SNP_REPORT_DATA_LEN 64
#define CL_SNP_HOSTDATA_LEN 32

/* Where an SNP guest finds its firmware interface; tests point them elsewhere. */
struct cl_snp_guest {
    const char *dev;   /* /dev/sev-guest */
    const char *sysfs; /* /sys/devices/platform/sev-guest */
};

/* True when both the device and its sysfs folder exist. */
bool cl_snp_guest_detect(const struct cl_snp_guest *g);
/* A report for rd[len] (at most 64 bytes, zero-padded) through SNP_GET_REPORT at VMPL 0,
 * parsed with cl_snp_report_parse into *out. EIO naming the firmware error. */
CL_MUST_CHECK int cl_snp_guest_report(const struct cl_snp_guest *g, const uint8_t *rd, size_t len,
                                      struct cl_snp_report *out, struct cl_err *err);
/* trustee's snp evidence: {"attestation_report": cl_snp_report_to_json, "cert_chain": null}. */
json_t *cl_snp_evidence_json(const struct cl_snp_report *r, struct cl_err *err);
/* Init-data binding: HOSTDATA of a fresh report equals digest (zero-padded to 32), else EVERIFY
 * at stage init-data. */
CL_MUST_CHECK int cl_snp_guest_check_hostdata(const struct cl_snp_guest *g, const uint8_t *digest,
                                              size_t len, struct cl_err *err);

#endif
