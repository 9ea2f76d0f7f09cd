/* SPDX-License-Identifier: Apache-2.0 */
/* Sealed-secret envelopes: parse (signed and legacy forms) and verify with a fixed key. */
#include "cdh/cdh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cl_pkey *key;
    if (!key) {
        cl_log_set_level(CL_LOG_ERROR);
        key = cl_pkey_generate("P-256", NULL);
    }
    for (int legacy = 0; legacy < 2; legacy++) {
        struct cl_cdh_sealed s;
        if (cl_cdh_sealed_parse((const char *)data, size, legacy, &s, NULL) == 0) {
            if (cl_cdh_sealed_verify(&s, key, NULL) == 0)
                abort(); /* nobody holds this key */
            cl_cdh_sealed_clear(&s);
        }
    }
    return 0;
}
