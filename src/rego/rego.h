/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cloister's Rego engine: OPA-compatible policies in C.
 *
 * An engine holds modules and a base data document. After cl_rego_compile() it is read-only:
 * any number of threads may call cl_rego_eval_query()/cl_rego_eval_ref() on it concurrently;
 * each call builds its own evaluation state (bindings, rule caches, counters) and shares only
 * the compiled rule tree and frozen constants. Adding modules, setting data or registering
 * builtins after compilation recompiles on the next evaluation and must not race with
 * evaluations (the caller serialises those, as the Kata agent does with one mutex).
 *
 * Errors: functions return 0 or a negative CL_E* code; `err->msg` starts with OPA's error code
 * ("rego_parse_error: ...", "eval_conflict_error: ...") and parse/compile errors name
 * file:line:col. cl_rego_err_code() extracts that code.
 */
#ifndef CL_REGO_H
#define CL_REGO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "rego/builtins.h"
#include "rego/value.h"

/* Defaults of the limits (0 in cl_rego_opts selects them). */
#define CL_REGO_MAX_STEPS 10000000ULL      /* expressions evaluated per query */
#define CL_REGO_MAX_MEMORY (256u << 20)    /* bytes of values allocated per query */
#define CL_REGO_MAX_DEPTH 512              /* nested rule/function/comprehension evaluations */
#define CL_REGO_MAX_STACK (2u << 20)       /* bytes of C stack an evaluation may use */
#define CL_REGO_MAX_POLICY (16u << 20)     /* bytes of one module */
#define CL_REGO_MAX_INPUT_DEPTH 1000       /* nesting of input/data JSON (cl_rego_json_parse) */
#define CL_REGO_MAX_INPUT_DEPTH_LIMIT 2000 /* the most a caller may ask (jansson caps at 2048) */

typedef void (*cl_rego_print_fn)(void *ctx, const char *file, int line, const char *msg);

/* print() output gathered as values, rendered to text only when asked (a denial message):
 * gathering costs a reference per argument, not a rendering of (often large) documents.
 * A sink keeps references to values that may belong to the engine (policy constants, the
 * data document): reset it before the engine is freed or its data replaced. An engine-wide
 * sink (cl_rego_opts.prints) is reset by cl_rego_set_data and cl_rego_free themselves.
 * At most CL_REGO_MAX_PRINTS calls and CL_REGO_MAX_PRINT_VALUES arguments are kept per sink;
 * later ones are counted as dropped. Not thread-safe: one sink per concurrent evaluation. */
#define CL_REGO_MAX_PRINTS 4096
#define CL_REGO_MAX_PRINT_VALUES 65536
struct cl_rego_prints;
/* Returns a new empty sink or NULL on allocation failure. */
struct cl_rego_prints *cl_rego_prints_new(void);
void cl_rego_prints_free(struct cl_rego_prints *p);
void cl_auto_cl_rego_prints(struct cl_rego_prints **p);
/* Drops the gathered values (the sink is reusable). */
void cl_rego_prints_reset(struct cl_rego_prints *p);
/* Calls gathered (kept) and dropped beyond the caps. */
size_t cl_rego_prints_count(const struct cl_rego_prints *p);
size_t cl_rego_prints_dropped(const struct cl_rego_prints *p);
/* Text of call i as OPA prints it (arguments joined by one space, strings as they are, other
 * values as Rego text, "<undefined>" for an undefined argument); *file and *line (may be NULL)
 * receive its location (file borrowed from the engine). Returns new, NULL if i is out of range. */
cl_str *cl_rego_prints_line(const struct cl_rego_prints *p, size_t i, const char **file, int *line);
/* All calls joined by sep, at most max bytes of text (0: no cap; the text is cut at a UTF-8
 * boundary and *cut set, cut may be NULL). Returns new ("" when nothing was printed). */
cl_str *cl_rego_prints_text(const struct cl_rego_prints *p, const char *sep, size_t max, bool *cut);

struct cl_rego_opts {
    uint64_t max_steps;         /* 0: CL_REGO_MAX_STEPS */
    size_t max_memory;          /* 0: CL_REGO_MAX_MEMORY */
    int max_depth;              /* 0: CL_REGO_MAX_DEPTH */
    size_t max_stack;           /* 0: CL_REGO_MAX_STACK */
    bool strict_builtin_errors; /* builtin errors abort the query instead of being undefined */
    cl_rego_print_fn print;     /* print() output rendered at each call (eager); NULL: none */
    void *print_ctx;
    /* Engine-wide lazy sink (borrowed; for callers that serialise evaluations, as the Kata
     * agent does): every evaluation without its own cl_rego_eval_opts.prints gathers here.
     * The caller resets it between decisions and renders it when it needs the text. */
    struct cl_rego_prints *prints;
    /* Keep print() calls in compiled bodies even with neither hook nor sink, so that
     * per-call sinks (cl_rego_eval_opts.prints) see them. Without any of the three, print()
     * is removed at compile time and costs nothing. */
    bool keep_prints;
};

struct cl_rego;

/* Returns a new engine (opts may be NULL for defaults) or NULL on allocation failure. */
struct cl_rego *cl_rego_new(const struct cl_rego_opts *opts);
void cl_rego_free(struct cl_rego *e);
void cl_auto_cl_rego(struct cl_rego **p);

/* Parses and adds a module (text borrowed). v0 selects Rego v0 syntax for this module.
 * EPARSE (rego_parse_error with file:line:col) or ELIMIT beyond CL_REGO_MAX_POLICY. */
CL_MUST_CHECK int cl_rego_add_module(struct cl_rego *e, const char *filename, const char *text,
                                     size_t len, bool v0, struct cl_err *err);
/* Replaces the base data document (an object; borrowed, copied). */
CL_MUST_CHECK int cl_rego_set_data(struct cl_rego *e, const json_t *data, struct cl_err *err);
/* Current base data as JSON (returns new). */
json_t *cl_rego_get_data(const struct cl_rego *e);
/* Registers an extension builtin callable from policies as `name(arg1, ..., argN)`.
 * `ctx` is returned by cl_rego_bi_user() inside fn. EEXISTS for a duplicate name. */
CL_MUST_CHECK int cl_rego_register_builtin(struct cl_rego *e, const char *name, int arity,
                                           cl_rego_builtin_fn fn, void *ctx, struct cl_err *err);
/* Builds the rule tree, resolves names, orders bodies for safety (rego_compile_error,
 * rego_unsafe_var_error, rego_type_error). Evaluation compiles on demand if needed. */
CL_MUST_CHECK int cl_rego_compile(struct cl_rego *e, struct cl_err *err);

/* Per-call evaluation options (NULL for the engine's). */
struct cl_rego_eval_opts {
    bool strict_builtin_errors;
    const struct cl_rv
        *input_value; /* input as a Rego value (sets, non-string keys); wins over input */
    int64_t now_ns;   /* 0: the wall clock */
    /* A JSON object whose top-level members replace those of the base data document for this
     * evaluation only (borrowed; NULL: none). data_overlay_value is the same as a Rego value
     * and wins over data_overlay. */
    const json_t *data_overlay;
    const struct cl_rv *data_overlay_value;
    /* Sink for this evaluation's print() calls (borrowed; NULL: the engine's, if any). The
     * engine must keep prints (a hook, cl_rego_opts.prints or keep_prints). */
    struct cl_rego_prints *prints;
};

/* Evaluates a query (any Rego body: "data.policy.allow", "x := data.a[_]; x > 1").
 * *results receives a new JSON array with one object per solution:
 *   {"expressions": [{"value": v, "text": "..."}...], "bindings": {"x": v, ...}}
 * (undefined: an empty array). input may be NULL (undefined). */
CL_MUST_CHECK int cl_rego_eval_query(struct cl_rego *e, const char *query, const json_t *input,
                                     json_t **results, struct cl_err *err);
/* Same, with options and results as Rego values: *rows is a new array of objects
 * {"bindings": {...}, "expressions": [...]} (sets kept as sets). */
CL_MUST_CHECK int cl_rego_eval_query_rv(struct cl_rego *e, const char *query, const json_t *input,
                                        const struct cl_rego_eval_opts *o, struct cl_rv **rows,
                                        struct cl_err *err);
/* Convenience for a plain reference ("data.agent_policy.CreateContainerRequest"): returns the
 * value as new JSON, or NULL either when undefined (err->code == 0) or on error (err->code < 0). */
json_t *cl_rego_eval_ref(struct cl_rego *e, const char *ref, const json_t *input,
                         struct cl_err *err);

/* ---- prepared queries ----
 * A query parsed and compiled once against a compiled engine, then evaluated any number of
 * times, from any number of threads at once: the compiled query is read-only and its constants
 * are frozen. It borrows the engine, which must outlive it and must not be changed (modules,
 * data, builtins) while the query exists. */
struct cl_rego_query;

/* Compiles the engine if needed (not thread-safe then: call it before sharing the engine) and
 * the query. Returns new, or NULL with err (rego_parse_error, rego_compile_error, ...). */
struct cl_rego_query *cl_rego_prepare(struct cl_rego *e, const char *query, struct cl_err *err);
void cl_rego_query_free(struct cl_rego_query *q);
void cl_auto_cl_rego_query(struct cl_rego_query **p);
/* Like cl_rego_eval_ref for a prepared plain ref (or any one-expression query): the value of
 * the expression as new JSON, or NULL either when undefined (err->code == 0) or on error
 * (err->code < 0). data_overlay (may be NULL): a JSON object whose top-level members replace
 * those of the base data document for this evaluation only. */
json_t *cl_rego_query_eval(struct cl_rego_query *q, const json_t *input, const json_t *data_overlay,
                           struct cl_err *err);
/* Full results in cl_rego_eval_query's shape (*results: new array of rows). o may be NULL. */
CL_MUST_CHECK int cl_rego_query_eval_rows(struct cl_rego_query *q, const json_t *input,
                                          const struct cl_rego_eval_opts *o, json_t **results,
                                          struct cl_err *err);
/* Same with rows as Rego values (see cl_rego_eval_query_rv). */
CL_MUST_CHECK int cl_rego_query_eval_rv(struct cl_rego_query *q, const json_t *input,
                                        const struct cl_rego_eval_opts *o, struct cl_rv **rows,
                                        struct cl_err *err);

/* The expressions of a prepared query as written (results list their values in this order):
 * count, and the text and 1-based position of expression i. */
size_t cl_rego_query_nexprs(const struct cl_rego_query *q);
const char *cl_rego_query_expr(const struct cl_rego_query *q, size_t i, size_t *len, int *row,
                               int *col);

/* The rules of the loaded modules with a one-part name, as references ("data.pkg.test_x"),
 * each once, in the order written: what `opa test` looks through for test_ rules. Returns a
 * new JSON array (empty when no module is loaded), NULL on allocation failure. */
json_t *cl_rego_rule_refs(const struct cl_rego *e);

/* Bytes held by the engine: syntax tree and rule tree, constants, base data (approximate). */
size_t cl_rego_memory(const struct cl_rego *e);

/* The OPA error code that starts err->msg ("eval_conflict_error", ...) or "" if none. */
const char *cl_rego_err_code(const struct cl_err *err, char *buf, size_t cap);

/* Parses an input or data document as OPA reads one: invalid UTF-8 bytes and lone UTF-16
 * surrogate escapes ("\ud800") in strings become U+FFFD instead of failing the document, and
 * nesting is capped at max_depth (0: CL_REGO_MAX_INPUT_DEPTH; at most
 * CL_REGO_MAX_INPUT_DEPTH_LIMIT). Returns new, or NULL with EPARSE/ELIMIT/EINVAL in err. */
json_t *cl_rego_json_parse(const char *text, size_t len, size_t max_depth, struct cl_err *err);

/* Applies an RFC 6902 JSON Patch (array of ops: add, remove, replace, move, copy, test) to doc
 * in place; EINVAL naming the failing op. doc may be replaced (root ops), hence the pointer. */
CL_MUST_CHECK int cl_rego_json_patch(json_t **doc, const json_t *patch, struct cl_err *err);

#endif
