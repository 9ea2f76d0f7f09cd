/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: the TOML reader (config files, and init-data that arrives from the host).
 * Both forms run on every input and must agree: the plain form accepts exactly what the
 * tagged form accepts, except U+0000 in strings and keys, which only the tagged form allows;
 * every refusal names a line; whatever is accepted serialises as JSON.
 */
#include <stdio.h>
#include <string.h>

#include "toml/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err pe = {0}, te = {0};
    json_t *plain = cl_toml_parse((const char *)data, size, &pe);
    json_t *tagged = cl_toml_parse_tagged((const char *)data, size, &te);
    if (plain && !tagged) {
        fprintf(stderr, "plain accepted, tagged refused: %s\n", te.msg);
        abort();
    }
    if (!plain && tagged && !strstr(pe.msg, "(NUL)")) {
        fprintf(stderr, "tagged accepted, plain refused: %s\n", pe.msg);
        abort();
    }
    if (!plain && strncmp(pe.msg, "line ", 5) != 0) {
        fprintf(stderr, "refusal without a line: %s\n", pe.msg);
        abort();
    }
    if (plain) {
        char *s = json_dumps(plain, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
            fprintf(stderr, "accepted document does not serialise\n");
            abort();
        }
        free(s);
    }
    json_decref(plain);
    json_decref(tagged);
    return 0;
}
