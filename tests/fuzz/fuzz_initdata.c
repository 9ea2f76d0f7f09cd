/* SPDX-License-Identifier: Apache-2.0 */
/* Init-data: the TOML document, the annotation form and the block-device image form. */
#include "aa/aa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_aa_initdata d;
    if (cl_aa_initdata_parse((const char *)data, size, &d, NULL) == 0)
        cl_aa_initdata_clear(&d);
    size_t n = 0;
    free(cl_aa_initdata_annotation_decode((const char *)data, size, &n, NULL));
    free(cl_aa_initdata_image_decode(data, size, &n, NULL));
    return 0;
}
