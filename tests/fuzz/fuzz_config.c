/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: the table-driven configuration reader (toml/cfg) through its three tables —
 * the same text read as kbs-config.toml, aa.toml and cdh.toml, refusals located by file:line
 * (the line finder scans the text), and each accepted configuration shown as --check shows it
 * (cl_*_config_effective). */
#include "aa/aa.h"
#include "cdh/cdh.h"
#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void show(json_t *eff)
{
    char *t = eff ? json_dumps(eff, JSON_COMPACT) : NULL;
    free(t);
    json_decref(eff);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++)
        cl_log_set_level(CL_LOG_ERROR);
    const char *text = (const char *)data;
    struct cl_err e = {0};
    struct cl_kbs_config kbs;
    if (cl_kbs_config_parse_named(text, size, "fuzz.toml", &kbs, &e) == 0) {
        show(cl_kbs_config_effective(&kbs));
        cl_kbs_config_clear(&kbs);
    }
    struct cl_aa_config aa;
    if (cl_aa_config_parse(text, size, &aa, &e) == 0) {
        show(cl_aa_config_effective(&aa));
        cl_aa_config_clear(&aa);
    }
    struct cl_cdh_config cdh;
    if (cl_cdh_config_parse(text, size, &cdh, &e) == 0) {
        show(cl_cdh_config_effective(&cdh));
        cl_cdh_config_clear(&cdh);
    }
    return 0;
}
