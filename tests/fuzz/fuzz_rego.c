/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz harness for the Rego engine: lexer, parser, compiler and evaluator in one surface.
 * The input is a module, optionally followed by a line "--- input" and a JSON input
 * document (read as policy eval reads one: invalid UTF-8 repaired to U+FFFD). A first line
 * "# v0" parses the module as Rego v0. The whole data document is evaluated under tight limits
 * with print() gathered into a lazy sink, whose text is then rendered; any outcome but a
 * crash, hang or leak is fine.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rego/rego.h"
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    const char *text = (const char *)data;
    size_t mlen = size;
    json_t *input = NULL;
    struct cl_err err = {0};
    const char *sep = memmem(text, size, "\n--- input\n", 11);
    if (sep) {
        mlen = (size_t)(sep - text);
        const char *in = sep + 11;
        input = cl_rego_json_parse(in, size - (size_t)(in - text), 0, &err);
    }
    bool v0 = mlen >= 4 && memcmp(text, "# v0", 4) == 0;
    struct cl_rego_prints *ps = cl_rego_prints_new();
    struct cl_rego_opts o = {.max_steps = 20000,
                             .max_memory = 8u << 20,
                             .max_depth = 64,
                             .max_stack = 512u << 10,
                             .prints = ps};
    struct cl_rego *e = cl_rego_new(&o);
    if (cl_rego_add_module(e, "fuzz.rego", text, mlen, v0, &err) == 0 &&
        cl_rego_compile(e, &err) == 0) {
        json_t *res = NULL;
        if (cl_rego_eval_query(e, "data", input, &res, &err) == 0)
            json_decref(res);
        json_t *v = cl_rego_eval_ref(e, "data.fuzz.allow", input, &err);
        json_decref(v);
        char *t = cl_rego_prints_text(ps, " ", 4096, NULL);
        free(t);
    }
    cl_rego_free(e);
    cl_rego_prints_free(ps);
    json_decref(input);
    return 0;
}
