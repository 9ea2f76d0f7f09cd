/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attester table and detection in upstream's order. Each TEE's collection lives beside
 * its parser in src/tee: tdx (tee/tdx/attest.c: configfs-tsm quotes, MRCONFIGID binding,
 * RTMR extend), snp (tee/snp/attest.c: /dev/sev-guest reports, HOSTDATA binding), tpm
 * (tee/tpm/attest.c, wrapped in tpm.c). What the agent adds here: its platform paths, the
 * TDX cc_eventlog (CCEL + AAEL, eventlog.c) and the evidence size limit. sample: no hardware
 * root at all, refused unless the configuration allows it.
 */
#include "aa/aa.h"
#include "aa/aa_internal.h"
#include "tee/snp/snp.h"
#include "tee/tdx/tdx.h"
#include "tee/tee.h"

#include <string.h>

void cl_aa_platform_default(struct cl_aa_platform *p)
{
    memset(p, 0, sizeof *p);
    const char *e;
    p->tsm_report_dir = (e = getenv("CLOISTER_TSM_REPORT_DIR")) && *e ? e : CL_AA_TSM_REPORT_DIR;
    p->sev_guest_dev = (e = getenv("CLOISTER_SEV_GUEST_DEV")) && *e ? e : CL_AA_SEV_GUEST_DEV;
    p->sev_guest_sysfs = CL_AA_SEV_GUEST_SYSFS;
    p->tdx_guest_dev = "/dev/tdx_guest";
    p->tdx_measurements = "/sys/devices/virtual/misc/tdx_guest/measurements";
    p->tpm_device = (e = getenv("AA_TPM_DEVICE")) && *e ? e : NULL;
    p->tpm_tcti = (e = getenv("CLOISTER_TPM_TCTI")) && *e ? e : NULL;
    p->ccel_path = CL_AA_CCEL_PATH;
    p->aael_path = NULL;
}

/* ---- sample ---- */

static bool sample_detect(const struct cl_aa_platform *p)
{
    return true;
}

static json_t *sample_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                               struct cl_err *err)
{
    return cl_tee_sample_evidence("sample", rd, len, err);
}

/* ---- tdx ---- */

static struct cl_tdx_guest tdx_guest(const struct cl_aa_platform *p)
{
    return (struct cl_tdx_guest){.tsm_report_dir = p->tsm_report_dir,
                                 .guest_dev = p->tdx_guest_dev,
                                 .measurements = p->tdx_measurements,
                                 .tsm_hook = p->tsm_hook,
                                 .tsm_hook_ctx = p->tsm_hook_ctx};
}

static bool tdx_detect(const struct cl_aa_platform *p)
{
    struct cl_tdx_guest g = tdx_guest(p);
    return cl_tdx_guest_detect(&g);
}

static json_t *tdx_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                            struct cl_err *err)
{
    struct cl_tdx_guest g = tdx_guest(p);
    size_t qlen = 0;
    CL_AUTO(cl_bytes) *q = cl_tdx_guest_quote(&g, rd, len, &qlen, err);
    if (!q)
        return NULL;
    CL_AUTO(cl_str) *log = cl_aa_cc_eventlog_b64(p, err);
    if (!log && err && err->code)
        return NULL;
    return cl_tdx_evidence_json(q, qlen, log, CL_AA_MAX_EVIDENCE, err);
}

static int tdx_bind(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                    struct cl_err *err)
{
    struct cl_tdx_guest g = tdx_guest(p);
    return cl_tdx_guest_check_mrconfigid(&g, digest, len, err);
}

static int tdx_extend(const struct cl_aa_platform *p, unsigned pcr, const uint8_t *digest,
                      size_t len, struct cl_err *err)
{
    struct cl_tdx_guest g = tdx_guest(p);
    return cl_tdx_guest_extend(&g, pcr, digest, len, err);
}

/* ---- snp ---- */

static struct cl_snp_guest snp_guest(const struct cl_aa_platform *p)
{
    return (struct cl_snp_guest){.dev = p->sev_guest_dev, .sysfs = p->sev_guest_sysfs};
}

static bool snp_detect(const struct cl_aa_platform *p)
{
    struct cl_snp_guest g = snp_guest(p);
    return cl_snp_guest_detect(&g);
}

static json_t *snp_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                            struct cl_err *err)
{
    struct cl_snp_guest g = snp_guest(p);
    struct cl_snp_report r;
    if (cl_snp_guest_report(&g, rd, len, &r, err) < 0)
        return NULL;
    return cl_snp_evidence_json(&r, err);
}

static int snp_bind(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                    struct cl_err *err)
{
    struct cl_snp_guest g = snp_guest(p);
    return cl_snp_guest_check_hostdata(&g, digest, len, err);
}

/* ---- the table, in detection order ---- */

static const struct cl_aa_attester attesters[] = {
    {"tdx", false, tdx_detect, tdx_evidence, tdx_bind, tdx_extend, CL_HASH_SHA384},
    {"snp", false, snp_detect, snp_evidence, snp_bind, NULL, CL_HASH_SHA384},
    {"tpm", false, cl_aa_tpm_detect, cl_aa_tpm_evidence, cl_aa_tpm_bind, cl_aa_tpm_extend,
     CL_HASH_SHA256},
    {"sample", true, sample_detect, sample_evidence, NULL, NULL, CL_HASH_SHA384},
};

const struct cl_aa_attester *cl_aa_attester_detect(const struct cl_aa_platform *p)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(attesters); i++)
        if (!attesters[i].insecure && attesters[i].detect(p))
            return &attesters[i];
    return NULL;
}

const struct cl_aa_attester *cl_aa_attester_find(const char *tee)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(attesters); i++)
        if (strcmp(attesters[i].tee, tee) == 0)
            return &attesters[i];
    return NULL;
}
