/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: a JWKS as an https trusted_jwk_sets source serves it (kbs/jwks.c). */
#include "kbs/jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++)
        cl_log_set_level(CL_LOG_ERROR);
    if (size > CL_KBS_JWKS_MAX_BYTES)
        return 0;
    struct cl_err e = {0};
    json_t *all = json_array();
    if (all)
        (void)cl_kbs_jwks_add("fuzz", data, size, all, &e);
    json_decref(all);
    return 0;
}
