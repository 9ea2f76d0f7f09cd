/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tpm attester. Evidence is a TPM 2.0 quote over the 24 SHA-256 PCRs with the report
 * data (resized to 32 bytes, as upstream does) as extraData, signed by the endorsement-
 * hierarchy attestation key, in trustee's "tpm" shape (tee/tpm makes it). Init-data is bound
 * by extending its SHA-256 digest into PCR8 once from reset, which is what the verifier
 * checks; an agent restarted on the same boot finds the digest already there, and a PCR8
 * that holds anything else is an inconsistency, not something to extend over. Runtime
 * measurements extend the SHA-256 bank. A TPM proves its PCRs, not memory confidentiality:
 * this attester is for platforms whose trust comes from measured boot.
 *
 * One TPM conversation at a time: /dev/tpm0 without the kernel resource manager takes a
 * single opener, and swtpm serves one connection at a time. The tss2 libraries are opened on
 * the first TPM call (tee/tpm/tss2_dl.c): an agent on another TEE never maps them.
 */
#include "tee/tpm/tpm.h"
#include "aa/aa_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define TCTI_MAX 512

static pthread_mutex_t tpm_lock = PTHREAD_MUTEX_INITIALIZER;

bool cl_aa_tpm_tcti(const struct cl_aa_platform *p, char *buf, size_t cap)
{
    if (p->tpm_tcti && *p->tpm_tcti) {
        if (strcmp(p->tpm_tcti, "none") == 0)
            return false;
        return snprintf(buf, cap, "%s", p->tpm_tcti) < (int)cap;
    }
    if (p->tpm_device && *p->tpm_device)
        return snprintf(buf, cap, "device:%s", p->tpm_device) < (int)cap;
    static const char *const devs[] = {"/dev/tpmrm0", "/dev/tpm0", "/dev/tpm1", "/dev/tpm2"};
    struct stat st;
    for (size_t i = 0; i < CL_ARRAY_LEN(devs); i++)
        if (stat(devs[i], &st) == 0)
            return snprintf(buf, cap, "device:%s", devs[i]) < (int)cap;
    return false;
}

/* ---- a short ESYS session for PCR read and extend ---- */

struct tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
};

static void tpm_close(struct tpm *t)
{
    if (t->esys)
        Esys_Finalize(&t->esys);
    if (t->tcti)
        Tss2_TctiLdr_Finalize(&t->tcti);
}

static int tpm_open(const struct cl_aa_platform *p, struct tpm *t, struct cl_err *err)
{
    char conf[TCTI_MAX];
    memset(t, 0, sizeof *t);
    if (!cl_aa_tpm_tcti(p, conf, sizeof conf))
        return cl_err_set(err, CL_ENOTFOUND,
                          "tpm: no TPM (no tpm_tcti configured, no /dev/tpmrm0 or /dev/tpm0..2)");
    /* the tss2 libraries are opened on first use (tee/tpm/tss2_dl.c), not at start */
    int lrc = cl_tee_tpm_tss2_load(CL_TPM_TSS2_ALL, err);
    if (lrc < 0)
        return lrc;
    TSS2_RC rc = Tss2_TctiLdr_Initialize(conf, &t->tcti);
    if (rc != TSS2_RC_SUCCESS)
        return cl_err_set(err, CL_EIO, "tpm: cannot open TCTI '%.128s': %s", conf,
                          Tss2_RC_Decode(rc));
    rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_SetTimeout(t->esys, CL_AA_TPM_TIMEOUT_MS);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_close(t);
        return cl_err_set(err, CL_EIO, "tpm: initialisation on '%.128s': %s", conf,
                          Tss2_RC_Decode(rc));
    }
    /* a simulator may still need TPM2_Startup; a booted TPM answers TPM_RC_INITIALIZE */
    rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && (rc & 0xfff) != TPM2_RC_INITIALIZE) {
        tpm_close(t);
        return cl_err_set(err, CL_EIO, "tpm: startup on '%.128s': %s", conf, Tss2_RC_Decode(rc));
    }
    return 0;
}

static int pcr_read(struct tpm *t, unsigned pcr, uint8_t out[32], struct cl_err *err)
{
    TPML_PCR_SELECTION sel = {.count = 1};
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t)(1u << (pcr % 8));
    UINT32 counter = 0;
    TPML_PCR_SELECTION *got = NULL;
    TPML_DIGEST *vals = NULL;
    TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter,
                               &got, &vals);
    bool ok = rc == TSS2_RC_SUCCESS && vals && vals->count == 1 && vals->digests[0].size == 32;
    if (ok)
        memcpy(out, vals->digests[0].buffer, 32);
    Esys_Free(got);
    Esys_Free(vals);
    if (rc != TSS2_RC_SUCCESS)
        return cl_err_set(err, CL_EIO, "tpm: reading PCR%u: %s", pcr, Tss2_RC_Decode(rc));
    return ok ? 0
              : cl_err_set(err, CL_EIO, "tpm: PCR%u has no SHA-256 value (no SHA-256 bank?)", pcr);
}

static int pcr_extend(struct tpm *t, unsigned pcr, const uint8_t digest[32], struct cl_err *err)
{
    TPML_DIGEST_VALUES v = {.count = 1};
    v.digests[0].hashAlg = TPM2_ALG_SHA256;
    memcpy(v.digests[0].digest.sha256, digest, 32);
    TSS2_RC rc = Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &v);
    if (rc == TSS2_RC_SUCCESS)
        return 0;
    if ((rc & 0xfff) == TPM2_RC_LOCALITY)
        return cl_err_set(
            err, CL_EIO,
            "tpm: PCR%u cannot be extended from locality 0 (%s); use PCR 0..16 or 23, e.g. "
            "[eventlog_config] init_pcr = 23",
            pcr, Tss2_RC_Decode(rc));
    return cl_err_set(err, CL_EIO, "tpm: extending PCR%u: %s", pcr, Tss2_RC_Decode(rc));
}

/* ---- the attester table entries ---- */

bool cl_aa_tpm_detect(const struct cl_aa_platform *p)
{
    char conf[TCTI_MAX];
    if (!cl_aa_tpm_tcti(p, conf, sizeof conf))
        return false;
    struct cl_err e = {0};
    size_t n = 0;
    pthread_mutex_lock(&tpm_lock);
    cl_bytes *ak = cl_tee_tpm_ak_public(conf, &n, &e);
    pthread_mutex_unlock(&tpm_lock);
    if (!ak) {
        /* a named TPM that does not answer deserves a word; a probed device node less so */
        if ((p->tpm_tcti && *p->tpm_tcti) || (p->tpm_device && *p->tpm_device))
            cl_warn("tpm: '%s' is not usable: %s", conf, e.msg);
        else
            cl_debug("tpm: '%s' is not usable: %s", conf, e.msg);
        return false;
    }
    free(ak);
    return true;
}

json_t *cl_aa_tpm_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                           struct cl_err *err)
{
    char conf[TCTI_MAX];
    if (!cl_aa_tpm_tcti(p, conf, sizeof conf)) {
        cl_err_set(err, CL_ENOTFOUND,
                   "tpm: no TPM (no tpm_tcti configured, no /dev/tpmrm0 or /dev/tpm0..2)");
        return NULL;
    }
    json_t *ev = NULL;
    pthread_mutex_lock(&tpm_lock);
    int rc = cl_tee_tpm_quote(conf, rd, len, NULL, 0, &ev, err);
    pthread_mutex_unlock(&tpm_lock);
    if (rc < 0) {
        cl_err_prefix(err, "tpm evidence");
        return NULL;
    }
    return ev;
}

int cl_aa_tpm_bind(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                   struct cl_err *err)
{
    if (len != 32)
        return cl_err_set(
            err, CL_EINVAL,
            "tpm: an init-data digest of %zu bytes cannot be extended into PCR%d; the tpm attester "
            "needs init-data with algorithm = \"sha256\"",
            len, CL_AA_TPM_INIT_DATA_PCR);
    /* what PCR8 holds after one extend from reset: SHA-256(zeros || digest) */
    uint8_t ext[64] = {0}, want[32], cur[32], zero[32] = {0};
    memcpy(ext + 32, digest, 32);
    if (cl_digest(CL_HASH_SHA256, ext, sizeof ext, want, err) < 0)
        return err->code;
    struct tpm t;
    pthread_mutex_lock(&tpm_lock);
    int rc = tpm_open(p, &t, err);
    if (rc == 0)
        rc = pcr_read(&t, CL_AA_TPM_INIT_DATA_PCR, cur, err);
    if (rc == 0 && cl_memeq_ct(cur, want, 32)) {
        cl_info("tpm: init-data already extended into PCR%d", CL_AA_TPM_INIT_DATA_PCR);
    } else if (rc == 0 && cl_memeq_ct(cur, zero, 32)) {
        rc = pcr_extend(&t, CL_AA_TPM_INIT_DATA_PCR, digest, err);
        if (rc == 0)
            rc = pcr_read(&t, CL_AA_TPM_INIT_DATA_PCR, cur, err);
        if (rc == 0 && !cl_memeq_ct(cur, want, 32))
            rc = cl_err_stage(err, CL_EIO, "init-data",
                              "tpm: PCR%d changed while init-data was extended into it",
                              CL_AA_TPM_INIT_DATA_PCR);
        if (rc == 0)
            cl_info("tpm: init-data digest extended into PCR%d", CL_AA_TPM_INIT_DATA_PCR);
    } else if (rc == 0) {
        rc = cl_err_stage(err, CL_EVERIFY, "init-data",
                          "tpm: init-data digest is inconsistent with that of the current platform "
                          "(PCR%d already "
                          "holds other measurements)",
                          CL_AA_TPM_INIT_DATA_PCR);
    }
    if (t.esys || t.tcti)
        tpm_close(&t);
    pthread_mutex_unlock(&tpm_lock);
    return rc;
}

int cl_aa_tpm_extend(const struct cl_aa_platform *p, unsigned pcr, const uint8_t *digest,
                     size_t len, struct cl_err *err)
{
    if (len != 32)
        return cl_err_set(err, CL_EINVAL,
                          "tpm: a SHA-256 PCR takes a 32-byte digest, not %zu bytes", len);
    if (pcr >= CL_TPM_NUM_PCRS)
        return cl_err_set(err, CL_EINVAL, "tpm: PCR %u is out of range 0..23", pcr);
    struct tpm t;
    pthread_mutex_lock(&tpm_lock);
    int rc = tpm_open(p, &t, err);
    if (rc == 0) {
        rc = pcr_extend(&t, pcr, digest, err);
        tpm_close(&t);
    }
    pthread_mutex_unlock(&tpm_lock);
    return rc;
}
