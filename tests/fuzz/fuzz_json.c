/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: bounded JSON parsing (every HTTP body goes through it). */
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err e = {0};
    json_t *v = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, &e);
    json_decref(v);
    return 0;
}
