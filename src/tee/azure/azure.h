/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure confidential VMs with a paravisor vTPM (az-snp-vtpm, az-tdx-vtpm): the HCL report
 * (an SNP report or a TD report, plus "runtime data" JSON that carries the vTPM's attestation
 * key HCLAkPub), its binding to the hardware report, and the vTPM quote signed by that key.
 * Evidence versions 0 (byte arrays), 1 and 2 (hex / base64url, v2 with "user-data").
 *
 * Stages: parse, bind (TPM nonce, user-data, HCL runtime data → hardware report data),
 * signature (vTPM quote, PCR digest; then the SNP or TDX checks with their own stages),
 * init-data (PCR8), claims.
 */
#ifndef CL_TEE_AZURE_H
#define CL_TEE_AZURE_H

#include "tee/tee.h"

#define CL_AZ_HCL_SIZE 2600        /* bytes of an HCL report */
#define CL_AZ_HW_OFFSET 0x20       /* the hardware report */
#define CL_AZ_RUNTIME_OFFSET 0x4c0 /* the IGVM request data header */
#define CL_AZ_REPORT_SNP 2
#define CL_AZ_REPORT_TDX 4

struct cl_az_hcl {
    uint32_t report_type; /* CL_AZ_REPORT_SNP or CL_AZ_REPORT_TDX */
    uint32_t hash_type;   /* 1 SHA-256, 2 SHA-384, 3 SHA-512 */
    const uint8_t *hw;    /* hardware report (1184 bytes region), borrowed */
    const uint8_t *var;   /* runtime data JSON, borrowed */
    size_t var_len;
};

/* Parses the HCL report layout ("HCLA" header, hardware report area, IGVM request data).
 * Borrows buf. EPARSE. */
CL_MUST_CHECK int cl_az_hcl_parse(const uint8_t *buf, size_t len, struct cl_az_hcl *out,
                                  struct cl_err *err);

#endif
