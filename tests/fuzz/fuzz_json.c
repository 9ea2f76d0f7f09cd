/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: bounded JSON parsing (every HTTP body goes through it), and the compact
 * writer differentially against jansson's: whatever parses must serialise to the same bytes. */
#include "json/json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err e = {0};
    json_t *v = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, &e);
    if (v) {
        char *ours = cl_json_compact(v);
        char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!ours != !theirs || (ours && strcmp(ours, theirs) != 0))
            abort();
        free(ours);
        free(theirs);
    }
    json_decref(v);
    return 0;
}
