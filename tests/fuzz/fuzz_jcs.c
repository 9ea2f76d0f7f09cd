/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz surface: canonical JSON of any parsed value; canonical form must be a fixed point. */
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err e = {0};
    json_t *v = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, &e);
    if (!v)
        return 0;
    size_t n = 0;
    char *c = cl_json_canonical(v, &n, &e);
    if (c) {
        json_t *w = cl_json_parse(c, n, CL_JSON_MAX_DEPTH + 1, &e);
        if (w) {
            size_t m = 0;
            char *c2 = cl_json_canonical(w, &m, &e);
            /* JCS(parse(JCS(x))) == JCS(x), except where doubles lose integers beyond 2^53 */
            if (c2 && (m != n || memcmp(c, c2, n) != 0) && !strpbrk(c, "eE."))
                abort();
            free(c2);
            json_decref(w);
        }
        free(c);
    }
    json_decref(v);
    return 0;
}
