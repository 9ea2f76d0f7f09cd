/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for libnvidia-ml in the tests (this machine has no confidential GPU): it exports
 * the NVML functions cloister-aa uses, with NVML's ABI, and replays a captured Hopper report
 * and certificate chain. It cannot sign: the report it returns carries the nonce it was
 * captured with, whatever nonce was asked for (the last one asked is kept in
 * nvml_standin_last_nonce for the test to inspect).
 *   NVML_STANDIN_REPORT  hex file of the SPDM request ‖ response
 *   NVML_STANDIN_CERTS   PEM chain file
 *   NVML_STANDIN_GPUS    number of GPUs (default 1)
 *   NVML_STANDIN_CC      "0": confidential computing off
 *   NVML_STANDIN_OVERSIZE "1": report a chain size larger than its array
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nvml_cc_state {
    unsigned int environment, cc_feature, dev_tools_mode;
};
struct nvml_cc_certificate {
    unsigned int cert_chain_size, attestation_cert_chain_size;
    unsigned char cert_chain[0x1000];
    unsigned char attestation_cert_chain[0x1400];
};
struct nvml_cc_report {
    unsigned int is_cec_report_present, report_size, cec_report_size;
    unsigned char nonce[0x20];
    unsigned char report[0x2000];
    unsigned char cec_report[0x1000];
};
typedef struct nvml_device *nvml_device_t;

#define EXPORT __attribute__((visibility("default")))

EXPORT unsigned char nvml_standin_last_nonce[32];
EXPORT int nvmlInit_v2(void);
EXPORT int nvmlSystemGetConfComputeState(struct nvml_cc_state *s);
EXPORT int nvmlDeviceGetCount_v2(unsigned int *count);
EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvml_device_t *device);
EXPORT int nvmlDeviceGetArchitecture(nvml_device_t device, unsigned int *arch);
EXPORT int nvmlDeviceGetUUID(nvml_device_t device, char *uuid, unsigned int length);
EXPORT int nvmlDeviceGetConfComputeGpuCertificate(nvml_device_t device,
                                                  struct nvml_cc_certificate *cert);
EXPORT int nvmlDeviceGetConfComputeGpuAttestationReport(nvml_device_t device,
                                                        struct nvml_cc_report *report);

static unsigned char report[0x2000], chain[0x1400];
static size_t report_len, chain_len;
static unsigned gpus = 1;

static size_t slurp(const char *env, unsigned char *buf, size_t cap)
{
    const char *p = getenv(env);
    FILE *f = p ? fopen(p, "rb") : NULL;
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int nvmlInit_v2(void)
{
    static unsigned char hex[2 * sizeof report];
    size_t n = slurp("NVML_STANDIN_REPORT", hex, sizeof hex);
    report_len = 0;
    for (size_t i = 0; i + 1 < n && hexval(hex[i]) >= 0 && hexval(hex[i + 1]) >= 0; i += 2)
        report[report_len++] = (unsigned char)(hexval(hex[i]) << 4 | hexval(hex[i + 1]));
    chain_len = slurp("NVML_STANDIN_CERTS", chain, sizeof chain);
    const char *g = getenv("NVML_STANDIN_GPUS");
    if (g)
        gpus = (unsigned)strtoul(g, NULL, 10);
    return report_len && chain_len ? 0 : 9 /* NVML_ERROR_DRIVER_NOT_LOADED */;
}

int nvmlSystemGetConfComputeState(struct nvml_cc_state *s)
{
    const char *cc = getenv("NVML_STANDIN_CC");
    s->environment = 1;
    s->cc_feature = cc && strcmp(cc, "0") == 0 ? 0 : 1;
    s->dev_tools_mode = 0;
    return 0;
}

int nvmlDeviceGetCount_v2(unsigned int *count)
{
    *count = gpus;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvml_device_t *device)
{
    if (index >= gpus)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *device = (nvml_device_t)(unsigned long)(index + 1);
    return 0;
}

int nvmlDeviceGetArchitecture(nvml_device_t device, unsigned int *arch)
{
    (void)device;
    *arch = 9; /* NVML_DEVICE_ARCH_HOPPER */
    return 0;
}

int nvmlDeviceGetUUID(nvml_device_t device, char *uuid, unsigned int length)
{
    snprintf(uuid, length, "GPU-standin-%lu", (unsigned long)device);
    return 0;
}

int nvmlDeviceGetConfComputeGpuCertificate(nvml_device_t device, struct nvml_cc_certificate *cert)
{
    (void)device;
    const char *o = getenv("NVML_STANDIN_OVERSIZE");
    memcpy(cert->attestation_cert_chain, chain, chain_len);
    cert->attestation_cert_chain_size = o && strcmp(o, "1") == 0 ? 0x2000 : (unsigned)chain_len;
    cert->cert_chain_size = 0;
    return 0;
}

int nvmlDeviceGetConfComputeGpuAttestationReport(nvml_device_t device, struct nvml_cc_report *r)
{
    (void)device;
    memcpy(nvml_standin_last_nonce, r->nonce, sizeof nvml_standin_last_nonce);
    memcpy(r->report, report, report_len);
    r->report_size = (unsigned)report_len;
    r->is_cec_report_present = 0;
    r->cec_report_size = 0;
    return 0;
}
