/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVIDIA GPU evidence for GetAdditionalEvidence: for each GPU in confidential-computing mode,
 * the SPDM measurement report over our nonce and the device certificate chain, read through
 * NVML. libnvidia-ml is opened with dlopen() the first time evidence is asked for (a guest
 * without a GPU never loads it); all the functions used here are resolved at once, so a
 * library that lacks one is refused as a whole (base/lazy.h). The evidence is what trustee's nvidia
 * verifier reads: {"device_evidence_list": [{"arch", "uuid", "evidence" (hex of the SPDM
 * request ‖ response), "certificate" (base64 of the PEM chain)}]}.
 *
 * The NVML types below are the ABI of nvml.h (names, field order and array sizes), declared
 * here so the build needs no NVIDIA headers.
 */
#include "aa/aa.h"

#include "base/lazy.h"

#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_CC_NONCE_SIZE 0x20
#define NVML_CC_REPORT_SIZE 0x2000
#define NVML_CC_CEC_REPORT_SIZE 0x1000
#define NVML_CERT_CHAIN_SIZE 0x1000
#define NVML_ATTESTATION_CERT_CHAIN_SIZE 0x1400
#define NVML_UUID_SIZE 96
#define NVML_ARCH_HOPPER 9
#define NVML_ARCH_BLACKWELL 10
#define NVML_CC_FEATURE_ENABLED 1

typedef struct nvml_device *nvml_device_t;

struct nvml_cc_state {
    unsigned int environment, cc_feature, dev_tools_mode;
};

struct nvml_cc_certificate {
    unsigned int cert_chain_size;
    unsigned int attestation_cert_chain_size;
    unsigned char cert_chain[NVML_CERT_CHAIN_SIZE];
    unsigned char attestation_cert_chain[NVML_ATTESTATION_CERT_CHAIN_SIZE];
};

struct nvml_cc_report {
    unsigned int is_cec_report_present;
    unsigned int report_size;
    unsigned int cec_report_size;
    unsigned char nonce[NVML_CC_NONCE_SIZE]; /* in: the requester's nonce */
    unsigned char report[NVML_CC_REPORT_SIZE];
    unsigned char cec_report[NVML_CC_CEC_REPORT_SIZE];
};

/* X(name, parameters) for every NVML function used. */
#define NVML_FUNCS(X)                                                                              \
    X(nvmlInit_v2, (void))                                                                         \
    X(nvmlSystemGetConfComputeState, (struct nvml_cc_state * state))                               \
    X(nvmlDeviceGetCount_v2, (unsigned int *count))                                                \
    X(nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvml_device_t *device))                  \
    X(nvmlDeviceGetArchitecture, (nvml_device_t device, unsigned int *arch))                       \
    X(nvmlDeviceGetUUID, (nvml_device_t device, char *uuid, unsigned int length))                  \
    X(nvmlDeviceGetConfComputeGpuCertificate,                                                      \
      (nvml_device_t device, struct nvml_cc_certificate * cert))                                   \
    X(nvmlDeviceGetConfComputeGpuAttestationReport,                                                \
      (nvml_device_t device, struct nvml_cc_report * report))

static struct {
#define FIELD(name, params) int(*name) params;
    NVML_FUNCS(FIELD)
#undef FIELD
} nvml;

#define SYM(name, params) {#name, &nvml.name, sizeof nvml.name},
static const struct cl_lazysym nvml_syms[] = {NVML_FUNCS(SYM)};
#undef SYM
/* absent: ENOTFOUND, which GetAdditionalEvidence answers with "" (a guest without a GPU) */
static struct cl_lazylib nvml_lib = {.dflt = CL_AA_NVML_SONAME,
                                     .what = "NVML",
                                     .syms = nvml_syms,
                                     .nsyms = CL_ARRAY_LEN(nvml_syms),
                                     .absent_code = CL_ENOTFOUND,
                                     .lock = PTHREAD_MUTEX_INITIALIZER};

static struct {
    pthread_mutex_t lock;
    bool tried;
    struct cl_err err; /* code 0: loaded and initialised; else why not */
} nvml_state = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Opens and initialises NVML once per process; later calls return the first outcome. */
static int nvml_open(struct cl_err *err)
{
    pthread_mutex_lock(&nvml_state.lock);
    if (!nvml_state.tried) {
        nvml_state.tried = true;
        const char *lib = getenv("CLOISTER_NVML_LIBRARY");
        if (lib && *lib)
            cl_lazy_soname_set(&nvml_lib, lib);
        int rc = 0;
        if (cl_lazy_load(&nvml_lib, &nvml_state.err) == 0 &&
            (rc = nvml.nvmlInit_v2()) != NVML_SUCCESS)
            cl_err_set(&nvml_state.err, CL_EIO, "nvmlInit failed (NVML error %d)", rc);
        /* once loaded the library stays mapped for the life of the process */
    }
    struct cl_err got = nvml_state.err;
    pthread_mutex_unlock(&nvml_state.lock);
    if (got.code) {
        if (err)
            *err = got;
        return got.code;
    }
    return 0;
}

/* One GPU's evidence (new) from NVML's answers in cert and rep (scratch, owned by the caller). */
static json_t *device_evidence_in(unsigned i, const uint8_t nonce[NVML_CC_NONCE_SIZE],
                                  struct nvml_cc_certificate *cert, struct nvml_cc_report *rep,
                                  struct cl_err *err)
{
    nvml_device_t dev = NULL;
    unsigned int arch = 0;
    char uuid[NVML_UUID_SIZE + 1] = {0};
    int rc;
    if ((rc = nvml.nvmlDeviceGetHandleByIndex_v2(i, &dev)) != NVML_SUCCESS ||
        (rc = nvml.nvmlDeviceGetArchitecture(dev, &arch)) != NVML_SUCCESS ||
        (rc = nvml.nvmlDeviceGetUUID(dev, uuid, NVML_UUID_SIZE)) != NVML_SUCCESS) {
        cl_err_set(err, CL_EIO, "NVML GPU %u: device query failed (NVML error %d)", i, rc);
        return NULL;
    }
    const char *an = arch == NVML_ARCH_HOPPER      ? "HOPPER"
                     : arch == NVML_ARCH_BLACKWELL ? "BLACKWELL"
                                                   : NULL;
    if (!an) {
        cl_err_set(err, CL_EUNSUPPORTED,
                   "NVML GPU %u: architecture %u has no confidential computing", i, arch);
        return NULL;
    }
    memcpy(rep->nonce, nonce, NVML_CC_NONCE_SIZE);
    if ((rc = nvml.nvmlDeviceGetConfComputeGpuCertificate(dev, cert)) != NVML_SUCCESS ||
        (rc = nvml.nvmlDeviceGetConfComputeGpuAttestationReport(dev, rep)) != NVML_SUCCESS) {
        cl_err_set(err, CL_EIO,
                   "NVML GPU %u: attestation report or certificate failed (NVML error %d)", i, rc);
        return NULL;
    }
    /* sizes come from the driver: never read past the arrays they describe */
    if (rep->report_size == 0 || rep->report_size > sizeof rep->report ||
        cert->attestation_cert_chain_size == 0 ||
        cert->attestation_cert_chain_size > sizeof cert->attestation_cert_chain) {
        cl_err_set(err, CL_EPARSE,
                   "NVML GPU %u: report of %u bytes or chain of %u bytes out of bounds", i,
                   rep->report_size, cert->attestation_cert_chain_size);
        return NULL;
    }
    uuid[NVML_UUID_SIZE] = '\0';
    CL_AUTO(cl_str) *hex = cl_hex_encode(rep->report, rep->report_size);
    CL_AUTO(cl_str) *chain =
        cl_b64_encode(cert->attestation_cert_chain, cert->attestation_cert_chain_size, CL_B64_STD);
    if (!hex || !chain) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "arch", an, "uuid", uuid, "evidence", hex,
                            "certificate", chain);
    if (!out)
        cl_err_set(err, CL_EPARSE, "NVML GPU %u: UUID is not text", i);
    return out;
}

static json_t *device_evidence(unsigned i, const uint8_t nonce[NVML_CC_NONCE_SIZE],
                               struct cl_err *err)
{
    struct nvml_cc_certificate *cert = calloc(1, sizeof *cert);
    struct nvml_cc_report *rep = calloc(1, sizeof *rep);
    json_t *out = NULL;
    if (cert && rep)
        out = device_evidence_in(i, nonce, cert, rep, err);
    else
        cl_err_set(err, CL_ENOMEM, "out of memory");
    free(cert);
    free(rep);
    return out;
}

json_t *cl_aa_nvidia_evidence(const uint8_t *rd, size_t len, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (nvml_open(err) < 0)
        return NULL;
    struct nvml_cc_state st = {0};
    unsigned int count = 0;
    int rc;
    if ((rc = nvml.nvmlSystemGetConfComputeState(&st)) != NVML_SUCCESS) {
        cl_err_set(err, CL_EIO, "NVML confidential computing state unavailable (NVML error %d)",
                   rc);
        return NULL;
    }
    if (st.cc_feature != NVML_CC_FEATURE_ENABLED) {
        cl_err_set(err, CL_ENOTFOUND, "NVML: confidential computing is off on this system");
        return NULL;
    }
    if ((rc = nvml.nvmlDeviceGetCount_v2(&count)) != NVML_SUCCESS) {
        cl_err_set(err, CL_EIO, "NVML device count failed (NVML error %d)", rc);
        return NULL;
    }
    if (count == 0) {
        cl_err_set(err, CL_ENOTFOUND, "NVML: no GPU");
        return NULL;
    }
    if (count > CL_AA_NVIDIA_MAX_GPUS) {
        cl_err_set(err, CL_ELIMIT, "NVML reports %u GPUs (at most %d)", count,
                   CL_AA_NVIDIA_MAX_GPUS);
        return NULL;
    }
    /* the SPDM nonce: the runtime data digest, truncated (or zero-padded) to 32 bytes */
    uint8_t nonce[NVML_CC_NONCE_SIZE] = {0};
    memcpy(nonce, rd, len < sizeof nonce ? len : sizeof nonce);
    CL_AUTO(json_t) *list = json_array();
    if (!list) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < count; i++) {
        json_t *d = device_evidence(i, nonce, err);
        if (!d || json_array_append_new(list, d) < 0)
            return NULL;
    }
    return json_pack("{s:O}", "device_evidence_list", list);
}

cl_str *cl_aa_additional_evidence(const uint8_t *rd, size_t len, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_err e = {0};
    CL_AUTO(json_t) *gpu = cl_aa_nvidia_evidence(rd, len, &e);
    if (!gpu) {
        if (e.code != CL_ENOTFOUND) {
            *err = e;
            return NULL;
        }
        cl_debug("no NVIDIA device evidence: %s", e.msg);
        return strdup("");
    }
    CL_AUTO(json_t) *all = json_pack("{s:O}", "nvidia", gpu);
    cl_str *text = all ? cl_json_compact(all) : NULL;
    if (!text)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return text;
}
