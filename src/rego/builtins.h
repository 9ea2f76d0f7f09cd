/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin interface of the Rego engine. Every builtin function is one row
 * `{name, arity, fn}` in a table; the tables of the builtins_*.c files together form the one
 * registry (builtins.c lists them), looked up by name when a policy is compiled. Extension
 * builtins of the embedding program (cl_rego_register_builtin in rego.h) use the same
 * function type.
 *
 * Contract of a builtin function:
 *   - args[0..arity-1] are borrowed, never NULL, never modified (they may be frozen and shared
 *     by several threads).
 *   - On success it stores a new reference in *out and returns 0.
 *   - It returns CL_REGO_UNDEFINED (a positive value) to make the call undefined without an
 *     error (e.g. a lookup that found nothing).
 *   - On failure it returns the result of cl_rego_bi_type_error() (wrong operand type:
 *     OPA's eval_type_error "NAME: operand N must be T but got U") or cl_rego_bi_error()
 *     (eval_builtin_error "NAME: message"). The evaluator turns errors into undefined unless
 *     strict builtin errors are on.
 *   - Work proportional to an argument (string repeat, range, ...) is checked with
 *     cl_rego_bi_reserve() before allocating, so the memory cap holds.
 *   - Builtins must be pure and thread-safe: state lives only in the context.
 */
#ifndef CL_REGO_BUILTINS_H
#define CL_REGO_BUILTINS_H

#include "rego/value.h"

#define CL_REGO_UNDEFINED 1

struct cl_rego_bctx; /* evaluation context seen by a builtin (opaque) */

typedef int (*cl_rego_builtin_fn)(struct cl_rego_bctx *ctx, struct cl_rv *const *args,
                                  struct cl_rv **out);

enum {
    CL_REGO_BI_NONDET =
        1 << 0, /* result may differ between calls (time.now_ns, rand): not cached */
    CL_REGO_BI_VARIADIC = 1 << 1, /* print: any number of arguments, arity is the minimum */
    CL_REGO_BI_RELATION = 1 << 2  /* returns an array of results, each one a solution (walk) */
};

struct cl_rego_builtin {
    const char *name; /* "startswith", "regex.match", "internal.member_2", ... */
    int arity;
    cl_rego_builtin_fn fn;
    unsigned flags;
};

/* ---- helpers for builtin implementations ---- */

/* Records an eval_type_error for operand argi (0-based; printed 1-based) expecting `want`
 * ("string", "number", "array", "object", "set", "object or set", ...); returns <0. */
int cl_rego_bi_type_error(struct cl_rego_bctx *ctx, int argi, const char *want,
                          const struct cl_rv *got);
/* Records an eval_type_error "NAME: message" with a free-form message (OPA's texts for
 * element types: "operand 1 must be array of strings but got array containing number"). */
CL_PRINTF(2, 3) int cl_rego_bi_type_errorf(struct cl_rego_bctx *ctx, const char *fmt, ...);
/* Records an eval_builtin_error "NAME: message"; returns <0. */
CL_PRINTF(2, 3) int cl_rego_bi_error(struct cl_rego_bctx *ctx, const char *fmt, ...);
/* Type check shorthand: 0 when args[argi] has type t, else the type error. */
int cl_rego_bi_want(struct cl_rego_bctx *ctx, struct cl_rv *const *args, int argi,
                    enum cl_rv_type t);
/* Integer argument check (a number holding an integer); error otherwise. */
int cl_rego_bi_want_int(struct cl_rego_bctx *ctx, struct cl_rv *const *args, int argi,
                        int64_t *out);
/* 0 when `bytes` more may be allocated under the memory cap, else a builtin error (<0). */
int cl_rego_bi_reserve(struct cl_rego_bctx *ctx, size_t bytes);
/* The name of the builtin being called (for messages). */
const char *cl_rego_bi_name(const struct cl_rego_bctx *ctx);
/* The `ctx` pointer given to cl_rego_register_builtin (NULL for standard builtins). */
void *cl_rego_bi_user(const struct cl_rego_bctx *ctx);
/* Output of print(): passed to the engine's print hook and gathered into its lazy sink. */
void cl_rego_bi_print(struct cl_rego_bctx *ctx, const char *text);
/* Nanoseconds since the epoch fixed at the start of the evaluation (time.now_ns). */
int64_t cl_rego_bi_now_ns(const struct cl_rego_bctx *ctx);

/* ---- the registry ---- */

/* Finds a standard builtin by name; NULL when unknown. */
const struct cl_rego_builtin *cl_rego_builtin_find(const char *name, size_t len);

/* The per-file tables, each terminated by a row with name == NULL. */
extern const struct cl_rego_builtin cl_rego_builtins_core[];    /* operators, aggregates, types */
extern const struct cl_rego_builtin cl_rego_builtins_strings[]; /* strings, regex, glob */
extern const struct cl_rego_builtin cl_rego_builtins_numbers[]; /* arithmetic, bits, numbers.* */
extern const struct cl_rego_builtin cl_rego_builtins_collections[]; /* arrays, sets, objects */
extern const struct cl_rego_builtin cl_rego_builtins_encoding[]; /* json, yaml, base64, hex, url */
extern const struct cl_rego_builtin cl_rego_builtins_misc[];     /* units, semver, uuid, graph */
extern const struct cl_rego_builtin
    cl_rego_builtins_rego[]; /* rego.metadata.*, rego.parse_module (eval.c) */
extern const struct cl_rego_builtin cl_rego_builtins_time[];     /* time.* */
extern const struct cl_rego_builtin cl_rego_builtins_net[];      /* net.cidr_* */
extern const struct cl_rego_builtin cl_rego_builtins_crypto[];   /* crypto.* */
extern const struct cl_rego_builtin cl_rego_builtins_jwt[];      /* io.jwt.* */
extern const struct cl_rego_builtin cl_rego_builtins_json[];     /* json.patch */
extern const struct cl_rego_builtin cl_rego_builtins_yaml[];     /* yaml.* */
extern const struct cl_rego_builtin cl_rego_builtins_template[]; /* strings.render_template */
extern const struct cl_rego_builtin cl_rego_builtins_regex[];    /* regex.globs_match */
extern const struct cl_rego_builtin
    cl_rego_builtins_jsonschema[]; /* json.verify_schema, json.match_schema */

#endif
