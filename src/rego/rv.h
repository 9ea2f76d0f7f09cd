/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout of a Rego value, for the engine and for builtin authors (src/rego): fields read
 * directly, and the reference and type tests of value.h as inline code on the hot paths.
 * Everything else (the CLI, the KBS, the AS, the agent, tests) includes rego/rego.h or
 * rego/value.h, where struct cl_rv is opaque, and reads values through the accessors.
 */
#ifndef CL_REGO_RV_H
#define CL_REGO_RV_H

#include "rego/builtins.h"
#include "rego/value.h"

#define CL_RV_FROZEN_REFS UINT32_MAX

/* Numbers are int64 when exact, else double; integers beyond int64 are kept exactly as decimal
 * text (CL_RV_BIGINT, exact +, - and * and comparison), and a decimal literal beyond the double
 * range or with more significant digits than a double holds keeps its text (CL_RV_BIGLIT:
 * compared, added, subtracted and multiplied exactly as a decimal; num.d is its nearest double,
 * or an infinity beyond the range). */
enum { CL_RV_BIGINT = 1, CL_RV_BIGLIT = 2 };

struct cl_rv {
    uint32_t refs;  /* CL_RV_FROZEN_REFS bit pattern kept separately in `frozen` */
    uint8_t type;   /* enum cl_rv_type */
    uint8_t is_int; /* numbers: exact int64 in num.i (else double in num.d) */
    uint8_t frozen; /* shared read-only: refcounting disabled */
    uint8_t big;    /* numbers: CL_RV_BIGINT or CL_RV_BIGLIT, text in num.big */
    union {
        bool b;
        struct {
            int64_t i;
            double d;        /* also set (approximately) for big numbers */
            const char *big; /* CL_RV_BIGINT: "-123..." beyond int64; CL_RV_BIGLIT: the literal */
        } num;
        struct {
            size_t len; /* bytes, excluding the NUL that always follows */
            char *s;    /* points into the same allocation */
        } str;
        struct {
            size_t len, cap;
            struct cl_rv **items; /* arrays in order; sets sorted and unique */
        } arr;
        struct {
            size_t len, cap;
            struct cl_rv **keys; /* sorted, unique */
            struct cl_rv **vals;
        } obj;
    } u;
};

/* The value.h functions of the same names, inlined for the engine (value.c defines the
 * out-of-line ones for everyone else). */
static inline struct cl_rv *cl_rv_incref_inline(struct cl_rv *v)
{
    if (v && !v->frozen)
        v->refs++;
    return v;
}
static inline bool cl_rv_is_inline(const struct cl_rv *v, enum cl_rv_type t)
{
    return v && v->type == t;
}
static inline bool cl_rv_is_true_inline(const struct cl_rv *v)
{
    return v && v->type == CL_RV_BOOL && v->u.b;
}
#define cl_rv_incref(v) cl_rv_incref_inline(v)
#define cl_rv_is(v, t) cl_rv_is_inline(v, t)
#define cl_rv_is_true(v) cl_rv_is_true_inline(v)

#endif
