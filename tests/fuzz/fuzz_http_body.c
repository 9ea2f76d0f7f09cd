/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: the KBS request bodies of /auth and /attest (protocol messages). The first
 * byte selects the message, the rest is the body. */
#include "kbs/kbs_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct cl_err e = {0};
    if (data[0] & 1) {
        struct cl_kbs_request r;
        (void)cl_kbs_request_parse(data + 1, size - 1, &r, &e);
    } else {
        struct cl_kbs_attestation a;
        if (cl_kbs_attestation_parse(data + 1, size - 1, &a, &e) == 0) {
            struct cl_as_item items[CL_AS_MAX_ITEMS];
            (void)cl_kbs_attestation_items(&a, "sample", items);
            cl_kbs_attestation_clear(&a);
        }
    }
    return 0;
}
