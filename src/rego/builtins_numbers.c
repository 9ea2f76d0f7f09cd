/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Arithmetic (exact on 64-bit integers, falling back to doubles on overflow), rounding,
 * numbers.range, bit operations and format_int.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)

int cl_rego_num_add(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                    struct cl_rv **out);
int cl_rego_num_mul(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                    struct cl_rv **out);

static int num_result(struct cl_rego_bctx *c, double d, struct cl_rv **out)
{
    if (!isfinite(d))
        return cl_rego_bi_error(c, "arithmetic result out of range");
    return OUT(cl_rv_float(d));
}

static int exact_result(struct cl_rego_bctx *c, struct cl_rv *v, struct cl_rv **out)
{
    if (!v)
        return cl_rego_bi_error(c, "arithmetic result out of range");
    return OUT(v);
}

int cl_rego_num_add(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                    struct cl_rv **out)
{
    return exact_result(c, cl_rv_num_add(x, y), out);
}

int cl_rego_num_mul(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                    struct cl_rv **out)
{
    return exact_result(c, cl_rv_num_mul(x, y), out);
}

static int want_nums(struct cl_rego_bctx *c, struct cl_rv *const *a)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_NUMBER) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_NUMBER) < 0)
        return -1;
    return 0;
}

static int bi_plus(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_nums(c, a) < 0)
        return -1;
    return cl_rego_num_add(c, a[0], a[1], out);
}

static int set_diff(struct cl_rv *const *a, struct cl_rv **out)
{
    struct cl_rv *r = cl_rv_set();
    for (size_t i = 0; i < a[0]->u.arr.len; i++)
        if (!cl_rv_set_has(a[1], a[0]->u.arr.items[i]))
            cl_rv_set_add(r, cl_rv_incref(a[0]->u.arr.items[i]));
    return OUT(r);
}

static int bi_minus(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (a[0]->type == CL_RV_SET && a[1]->type == CL_RV_SET)
        return set_diff(a, out);
    if (a[0]->type == CL_RV_SET)
        return cl_rego_bi_type_error(c, 1, "set", a[1]);
    if (a[0]->type != CL_RV_NUMBER)
        return cl_rego_bi_type_error(c, 0, "one of {number, set}", a[0]);
    if (a[1]->type != CL_RV_NUMBER)
        return cl_rego_bi_type_error(c, 1, "number", a[1]);
    return exact_result(c, cl_rv_num_sub(a[0], a[1]), out);
}

static int bi_mul(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_nums(c, a) < 0)
        return -1;
    return cl_rego_num_mul(c, a[0], a[1], out);
}

/* An integer value (int64 or big) as an OpenSSL BIGNUM (new), NULL for other numbers. */
static BIGNUM *to_bn(const struct cl_rv *v)
{
    char buf[32];
    const char *t;
    if (v->is_int) {
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.num.i);
        t = buf;
    } else if (v->big == CL_RV_BIGINT) {
        t = v->u.num.big;
    } else {
        return NULL;
    }
    BIGNUM *b = NULL;
    return BN_dec2bn(&b, t) ? b : NULL;
}

static struct cl_rv *from_bn(const BIGNUM *b)
{
    char *t = BN_bn2dec(b);
    if (!t)
        return NULL;
    struct cl_rv *v = cl_rv_number_parse(t, strlen(t));
    OPENSSL_free(t);
    return v;
}

/* Quotient and remainder of two integers of which one is beyond int64, exactly (OPA uses
 * big.Int): the remainder takes the dividend's sign, as Go's Rem. 1 when not both integers. */
static int big_divmod(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                      struct cl_rv **quo, struct cl_rv **rem)
{
    BIGNUM *a = to_bn(x), *b = to_bn(y), *q = BN_new(), *r = BN_new();
    BN_CTX *ctx = BN_CTX_new();
    int rc = 1;
    if (a && b && q && r && ctx) {
        rc = -1;
        if (BN_is_zero(b)) {
            rc = 2;
        } else if (BN_div(q, r, a, b, ctx)) {
            *quo = BN_is_zero(r) ? from_bn(q) : NULL;
            *rem = from_bn(r);
            rc = *rem ? 0 : -1;
        }
    }
    BN_free(a);
    BN_free(b);
    BN_free(q);
    BN_free(r);
    BN_CTX_free(ctx);
    if (rc < 0)
        return cl_rego_bi_error(c, "arithmetic result out of range");
    return rc;
}

static int bi_div(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_nums(c, a) < 0)
        return -1;
    if (cl_rv_as_double(a[1]) == 0)
        return cl_rego_bi_error(c, "divide by zero");
    if (a[0]->big == CL_RV_BIGINT || a[1]->big == CL_RV_BIGINT) {
        struct cl_rv *q = NULL, *r = NULL;
        int rc = big_divmod(c, a[0], a[1], &q, &r);
        if (rc < 0)
            return rc;
        cl_rv_decref(r);
        if (q) /* exact: an integer; otherwise the quotient goes through doubles */
            return OUT(q);
    }
    if (a[0]->is_int && a[1]->is_int && a[1]->u.num.i != -1 && a[0]->u.num.i % a[1]->u.num.i == 0)
        return OUT(cl_rv_int(a[0]->u.num.i / a[1]->u.num.i));
    return num_result(c, cl_rv_as_double(a[0]) / cl_rv_as_double(a[1]), out);
}

static int bi_rem(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_nums(c, a) < 0)
        return -1;
    if ((a[0]->big == CL_RV_BIGINT || a[1]->big == CL_RV_BIGINT) &&
        (a[0]->is_int || a[0]->big == CL_RV_BIGINT) &&
        (a[1]->is_int || a[1]->big == CL_RV_BIGINT)) {
        struct cl_rv *q = NULL, *r = NULL;
        int rc = big_divmod(c, a[0], a[1], &q, &r);
        if (rc == 2)
            return cl_rego_bi_error(c, "modulo by zero");
        if (rc < 0)
            return rc;
        cl_rv_decref(q);
        return OUT(r);
    }
    if (!a[0]->is_int || !a[1]->is_int)
        return cl_rego_bi_error(c, "modulo on floating-point number");
    if (a[1]->u.num.i == 0)
        return cl_rego_bi_error(c, "modulo by zero");
    if (a[1]->u.num.i == -1)
        return OUT(cl_rv_int(0));
    return OUT(cl_rv_int(a[0]->u.num.i % a[1]->u.num.i));
}

static int bi_abs(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_NUMBER) < 0)
        return -1;
    if (a[0]->is_int && a[0]->u.num.i != INT64_MIN)
        return OUT(cl_rv_int(a[0]->u.num.i < 0 ? -a[0]->u.num.i : a[0]->u.num.i));
    return OUT(cl_rv_float(fabs(cl_rv_as_double(a[0]))));
}

static int rounding(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                    double (*f)(double))
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_NUMBER) < 0)
        return -1;
    if (a[0]->is_int)
        return OUT(cl_rv_incref(a[0]));
    return OUT(cl_rv_float(f(a[0]->u.num.d)));
}
static int bi_round(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return rounding(c, a, out, round);
}
static int bi_ceil(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return rounding(c, a, out, ceil);
}
static int bi_floor(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return rounding(c, a, out, floor);
}

static int range_step(struct cl_rego_bctx *c, int64_t lo, int64_t hi, int64_t step,
                      struct cl_rv **out)
{
    /* distances in uint64: hi - lo overflows int64 across the whole range, and n wraps to 0 */
    uint64_t n =
        (lo <= hi ? (uint64_t)hi - (uint64_t)lo : (uint64_t)lo - (uint64_t)hi) / (uint64_t)step + 1;
    if (cl_rego_bi_reserve(c, n == 0 || n > SIZE_MAX / 48 ? SIZE_MAX : n * 48) < 0)
        return -2;
    struct cl_rv *r = cl_rv_array((size_t)n);
    if (lo <= hi)
        for (int64_t i = lo; i <= hi; i += step) {
            cl_rv_array_push(r, cl_rv_int(i));
            if ((uint64_t)hi - (uint64_t)i < (uint64_t)step)
                break;
        }
    else
        for (int64_t i = lo; i >= hi; i -= step) {
            cl_rv_array_push(r, cl_rv_int(i));
            if ((uint64_t)i - (uint64_t)hi < (uint64_t)step)
                break;
        }
    return OUT(r);
}

static bool is_bigint(const struct cl_rv *v)
{
    return v->type == CL_RV_NUMBER && v->big == CL_RV_BIGINT;
}

/* numbers.range(_step) where an operand is an integer beyond int64: exact steps on big
 * integers (OPA computes with big.Int), each element reserved against the memory cap. */
static int range_big(struct cl_rego_bctx *c, struct cl_rv *lo, struct cl_rv *hi, struct cl_rv *step,
                     struct cl_rv **out)
{
    bool up = cl_rv_compare(lo, hi) <= 0;
    struct cl_rv *r = cl_rv_array(0);
    struct cl_rv *cur = cl_rv_incref(lo);
    while (up ? cl_rv_compare(cur, hi) <= 0 : cl_rv_compare(cur, hi) >= 0) {
        if (cl_rego_bi_reserve(c, (r->u.arr.len + 1) * 96) < 0) {
            cl_rv_decref(cur);
            cl_rv_decref(r);
            return -2;
        }
        cl_rv_array_push(r, cur);
        cur = up ? cl_rv_num_add(cur, step) : cl_rv_num_sub(cur, step);
        if (!cur) {
            cl_rv_decref(r);
            return cl_rego_bi_error(c, "arithmetic result out of range");
        }
    }
    cl_rv_decref(cur);
    return OUT(r);
}

static int bi_range(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t lo, hi;
    if (cl_rego_bi_want(c, a, 0, CL_RV_NUMBER) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_NUMBER) < 0)
        return -1;
    if ((is_bigint(a[0]) || is_bigint(a[1])) && (is_bigint(a[0]) || cl_rv_as_int(a[0], &lo)) &&
        (is_bigint(a[1]) || cl_rv_as_int(a[1], &hi)))
        return range_big(c, a[0], a[1], cl_rv_int(1), out);
    if (!cl_rv_as_int(a[0], &lo))
        return cl_rego_bi_type_errorf(
            c, "operand 1 must be integer number but got floating-point number");
    if (!cl_rv_as_int(a[1], &hi))
        return cl_rego_bi_type_errorf(
            c, "operand 2 must be integer number but got floating-point number");
    return range_step(c, lo, hi, 1, out);
}

static int bi_range_step(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t lo, hi, st;
    for (int i = 0; i < 3; i++)
        if (cl_rego_bi_want(c, a, i, CL_RV_NUMBER) < 0)
            return -1;
    if (is_bigint(a[0]) || is_bigint(a[1]) || is_bigint(a[2])) {
        for (int i = 0; i < 3; i++)
            if (!is_bigint(a[i]) && !cl_rv_as_int(a[i], &lo))
                return cl_rego_bi_type_errorf(
                    c, "operand %d must be integer number but got floating-point number", i + 1);
        if (cl_rv_compare(a[2], cl_rv_int(0)) <= 0)
            return cl_rego_bi_error(c, "step must be a positive integer");
        return range_big(c, a[0], a[1], a[2], out);
    }
    if (!cl_rv_as_int(a[0], &lo))
        return cl_rego_bi_type_errorf(
            c, "operand 1 must be integer number but got floating-point number");
    if (!cl_rv_as_int(a[1], &hi))
        return cl_rego_bi_type_errorf(
            c, "operand 2 must be integer number but got floating-point number");
    if (!cl_rv_as_int(a[2], &st))
        return cl_rego_bi_type_errorf(
            c, "operand 3 must be integer number but got floating-point number");
    if (st <= 0)
        return cl_rego_bi_error(c, "step must be a positive integer");
    return range_step(c, lo, hi, st, out);
}

static int ints(struct cl_rego_bctx *c, struct cl_rv *const *a, int n, int64_t *v)
{
    for (int i = 0; i < n; i++) {
        if (cl_rego_bi_want(c, a, i, CL_RV_NUMBER) < 0)
            return -1;
        if (!cl_rv_as_int(a[i], &v[i]))
            return cl_rego_bi_type_errorf(
                c, "operand %d must be integer number but got floating-point number", i + 1);
    }
    return 0;
}

static int bi_bits_and(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t v[2];
    return ints(c, a, 2, v) < 0 ? -1 : OUT(cl_rv_int(v[0] & v[1]));
}
static int bi_bits_or(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t v[2];
    return ints(c, a, 2, v) < 0 ? -1 : OUT(cl_rv_int(v[0] | v[1]));
}
static int bi_bits_xor(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t v[2];
    return ints(c, a, 2, v) < 0 ? -1 : OUT(cl_rv_int(v[0] ^ v[1]));
}
static int bi_bits_negate(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t v[1];
    return ints(c, a, 1, v) < 0 ? -1 : OUT(cl_rv_int(~v[0]));
}
static int bi_bits_lsh(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t v[2];
    if (ints(c, a, 2, v) < 0)
        return -1;
    if (v[1] < 0)
        return cl_rego_bi_type_errorf(
            c, "operand 2 must be an unsigned integer number but got a negative integer");
    if (v[1] >= 63 || (v[0] != 0 && (v[0] > (INT64_MAX >> v[1]) || v[0] < (INT64_MIN >> v[1]))))
        return num_result(c, ldexp((double)v[0], (int)(v[1] > 2000 ? 2000 : v[1])), out);
    return OUT(cl_rv_int((int64_t)((uint64_t)v[0] << v[1])));
}
static int bi_bits_rsh(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t v[2];
    if (ints(c, a, 2, v) < 0)
        return -1;
    if (v[1] < 0)
        return cl_rego_bi_type_errorf(
            c, "operand 2 must be an unsigned integer number but got a negative integer");
    if (v[1] >= 64)
        return OUT(cl_rv_int(v[0] < 0 ? -1 : 0));
    return OUT(cl_rv_int(v[0] >> v[1]));
}

static int bi_format_int(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_NUMBER) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_NUMBER) < 0)
        return -1;
    int64_t base;
    if (!cl_rv_as_int(a[1], &base) || (base != 2 && base != 8 && base != 10 && base != 16))
        return cl_rego_bi_error(c, "operand 2 must be one of {2, 8, 10, 16}");
    if (a[0]->big == CL_RV_BIGINT && base == 10)
        return OUT(cl_rv_strz(a[0]->u.num.big));
    double d = cl_rv_as_double(a[0]);
    double t = d < 0 ? ceil(d) : floor(d);
    /* converting a double outside int64 is undefined behaviour: refuse it (infinities too) */
    if (!a[0]->is_int && !(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
        return cl_rego_bi_error(c, "operand 1 is outside the 64-bit integer range");
    int64_t v = a[0]->is_int ? a[0]->u.num.i : (int64_t)t;
    char buf[80];
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int p = 79;
    buf[p] = 0;
    do {
        buf[--p] = "0123456789abcdef"[u % (uint64_t)base];
        u /= (uint64_t)base;
    } while (u);
    if (neg)
        buf[--p] = '-';
    return OUT(cl_rv_strz(buf + p));
}

static int bi_rand_intn(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    int64_t n;
    if (cl_rego_bi_want_int(c, a, 1, &n) < 0)
        return -1;
    if (n == 0)
        return OUT(cl_rv_int(0));
    /* |n| in uint64: negating INT64_MIN overflows */
    uint64_t m = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    uint64_t r = 0;
    if (cl_random(&r, sizeof r, NULL) < 0)
        return cl_rego_bi_error(c, "no randomness");
    return OUT(cl_rv_int((int64_t)(r % m)));
}

const struct cl_rego_builtin cl_rego_builtins_numbers[] = {
    {"plus", 2, bi_plus, 0},
    {"minus", 2, bi_minus, 0},
    {"mul", 2, bi_mul, 0},
    {"div", 2, bi_div, 0},
    {"rem", 2, bi_rem, 0},
    {"abs", 1, bi_abs, 0},
    {"round", 1, bi_round, 0},
    {"ceil", 1, bi_ceil, 0},
    {"floor", 1, bi_floor, 0},
    {"numbers.range", 2, bi_range, 0},
    {"numbers.range_step", 3, bi_range_step, 0},
    {"bits.and", 2, bi_bits_and, 0},
    {"bits.or", 2, bi_bits_or, 0},
    {"bits.xor", 2, bi_bits_xor, 0},
    {"bits.negate", 1, bi_bits_negate, 0},
    {"bits.lsh", 2, bi_bits_lsh, 0},
    {"bits.rsh", 2, bi_bits_rsh, 0},
    {"format_int", 2, bi_format_int, 0},
    {"rand.intn", 2, bi_rand_intn, CL_REGO_BI_NONDET},
    {NULL, 0, NULL, 0},
};
