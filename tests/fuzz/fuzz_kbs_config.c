/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: the cloister-kbs TOML configuration. */
#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++)
        cl_log_set_level(CL_LOG_ERROR);
    struct cl_err e = {0};
    struct cl_kbs_config cfg;
    if (cl_kbs_config_parse((const char *)data, size, &cfg, &e) == 0)
        cl_kbs_config_clear(&cfg);
    return 0;
}
