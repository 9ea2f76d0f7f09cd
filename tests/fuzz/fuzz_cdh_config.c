/* SPDX-License-Identifier: Apache-2.0 */
/* cdh.toml as init-data brings it: every table, [image] and its inline registry config
 * (turned back into registries.conf TOML, which src/image must then parse or refuse). */
#include <string.h>

#include "cdh/cdh.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        cl_log_set_level(CL_LOG_ERROR);
        quiet = true;
    }
    struct cl_cdh_config cfg;
    if (cl_cdh_config_parse((const char *)data, size, &cfg, NULL) == 0) {
        const char *t = cfg.image.registry_config;
        if (t) {
            struct cl_image_regconf *rc = cl_image_regconf_parse(t, strlen(t), NULL);
            cl_image_regconf_free(rc);
        }
        cl_cdh_config_clear(&cfg);
    }
    return 0;
}
