/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier table and the list of TEE ids kbs-types defines. */
#include "tee/tee.h"
#include "tee/tee_int.h"

#include <string.h>

int cl_tee_sample_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_sampledevice_verify(const struct cl_tee_verify_in *in, json_t **claims,
                               struct cl_err *err);

static const struct cl_tee_verifier verifiers[] = {
    {"sample", "cpu", true, cl_tee_sample_verify},
    {"sampledevice", "gpu", true, cl_tee_sampledevice_verify},
    {"snp", "cpu", false, cl_tee_snp_verify},
    {"tdx", "cpu", false, cl_tee_tdx_verify},
    {"tpm", "cpu", false, cl_tee_tpm_verify},
    {"az-snp-vtpm", "cpu", false, cl_tee_az_snp_verify},
    {"az-tdx-vtpm", "cpu", false, cl_tee_az_tdx_verify},
    {"nvidia", "gpu", false, cl_tee_nvidia_verify},
    {"sgx", "cpu", false, cl_tee_sgx_verify},
    {"cca", "cpu", false, cl_tee_cca_verify},
    {"csv", "cpu", false, cl_tee_csv_verify},
};

static const char *const known_ids[] = {
    "az-snp-vtpm", "az-tdx-vtpm", "nvidia", "nvidiadpu", "sgx", "snp",    "tdx",
    "cca",         "csv",         "se",     "hygondcu",  "tpm", "sample", "sampledevice",
};

const struct cl_tee_verifier *cl_tee_verifier_find(const char *tee)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(verifiers); i++)
        if (strcmp(verifiers[i].tee, tee) == 0)
            return &verifiers[i];
    return NULL;
}

bool cl_tee_id_known(const char *tee)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(known_ids); i++)
        if (strcmp(known_ids[i], tee) == 0)
            return true;
    return false;
}
