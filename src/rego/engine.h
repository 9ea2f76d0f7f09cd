/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal state of a Rego engine shared by the compiler, the evaluator and the public API.
 */
#ifndef CL_REGO_ENGINE_H
#define CL_REGO_ENGINE_H

#include "rego/ast.h"
#include "rego/rego.h"

struct cl_rg_ext {
    char *name;
    int arity;
    cl_rego_builtin_fn fn;
    void *ctx;
    struct cl_rego_builtin bi; /* row handed to the evaluator (name points to `name`) */
};

struct cl_rego {
    struct cl_rego_opts opts;
    struct cl_rg_arena arena;
    struct cl_rg_module *mods, *mods_tail;
    size_t nmods;
    struct cl_rv *data; /* frozen base document (an object) */
    struct cl_rg_node *root;
    int nnodes;
    bool compiled;
    struct cl_rg_ext *exts;
    size_t nexts;
};

/* Gathered print() calls (rego.h): arguments kept as values, NULL for undefined. */
struct cl_rg_print {
    const char *file;
    int line;
    size_t off, n; /* arguments vals[off .. off+n) */
};
struct cl_rego_prints {
    struct cl_rg_print *calls;
    size_t ncalls, capcalls;
    struct cl_rv **vals;
    size_t nvals, capvals;
    size_t dropped;
};
/* Appends one call, taking the n references in vals (NULL: undefined). Over the caps the
 * values are released and the call counted as dropped. */
void cl_rg_prints_add(struct cl_rego_prints *p, const char *file, int line, struct cl_rv **vals,
                      size_t n);
/* Renders n arguments as print() does, appending to b. */
struct cl_sbuf;
void cl_rg_print_render(struct cl_sbuf *b, struct cl_rv *const *vals, size_t n);

/* A compiled query. */
struct cl_rg_query {
    struct cl_rg_arena arena;
    struct cl_rg_body *body;
    int nslots;
    const char **names; /* user-visible variable names by slot (NULL for generated) */
};

/* Compiles all modules into the rule tree (idempotent). */
int cl_rg_compile(struct cl_rego *e, struct cl_rg_error *err);
/* Compiles a query against a compiled engine; returns 0 or -1 with err. */
int cl_rg_compile_query(struct cl_rego *e, struct cl_rg_query *q, const char *text, size_t len,
                        struct cl_rg_error *err);
/* Node lookup by child name. */
struct cl_rg_node *cl_rg_node_child(const struct cl_rg_node *n, const char *name, size_t len);
/* Resolves a call name to a builtin/extension (for `with` mocks and the evaluator). */
const struct cl_rego_builtin *cl_rg_find_builtin(struct cl_rego *e, const char *name, int *ext);

/* Evaluates a compiled query. input and data (the base document; NULL: the engine's) are
 * borrowed; prints (may be NULL) receives print() calls. rows: new array of {"bindings": {...},
 * "expressions": [...]}. Returns 0, or a negative CL_E* code with err filled (OPA code, message).
 * With input NULL, input_json (borrowed, may be NULL) is the input, converted as references
 * reach it: a policy that reads three fields of a large document converts three fields.
 */
int cl_rg_eval_query(struct cl_rego *e, const struct cl_rg_query *q, struct cl_rv *input,
                     const json_t *input_json, struct cl_rv *data, bool strict, int64_t now_ns,
                     struct cl_rego_prints *prints, struct cl_rv **rows, struct cl_rg_error *err);

#endif
