/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: a whole attestation body through the attestation service (sample and
 * sampledevice verifiers, runtime-data binding, init-data TOML, policy, EAR signing). The
 * nonce is taken from the body itself, so bodies that bind correctly reach the token. */
#include "kbs/kbs_internal.h"

#include <stdlib.h>

static struct cl_as *as;
static struct cl_store *store;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err e = {0};
    if (!as) {
        cl_log_set_level(CL_LOG_ERROR);
        store = cl_store_open("Memory", NULL, &e);
        struct cl_as_opts o = {.store = store, .allow_sample_insecure = true};
        as = store ? cl_as_new(&o, &e) : NULL;
        if (!as)
            abort();
    }
    struct cl_kbs_attestation a;
    if (cl_kbs_attestation_parse(data, size, &a, &e) < 0)
        return 0;
    struct cl_as_item items[CL_AS_MAX_ITEMS];
    size_t n = cl_kbs_attestation_items(&a, "sample", items);
    cl_str *token = NULL;
    if (cl_as_evaluate(as, items, n, "default", &token, &e) == 0)
        free(token);
    cl_kbs_attestation_clear(&a);
    return 0;
}
