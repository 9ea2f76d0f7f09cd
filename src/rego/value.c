/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rego values: construction, reference counting, OPA's total order, hashing, and the
 * conversions to and from JSON and Rego text.
 */
#include "rego/value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rego/rv.h"
#include "rego/sbuf.h"

_Thread_local int64_t cl_rv_bytes_live;

/* ---- allocation helpers ---- */

_Thread_local uint64_t cl_rv_allocs, cl_rv_alloc_bytes;
_Thread_local bool cl_rg_oom;
_Thread_local jmp_buf *cl_rg_oom_jmp;
uint64_t cl_rg_fail_nth, cl_rg_fail_count;
bool cl_rg_fail_rest;

/* The allocation the test hook fails: the cl_rg_fail_nth-th from now (and every later one with
 * cl_rg_fail_rest). */
static bool injected(void)
{
    if (!cl_rg_fail_nth)
        return false;
    if (cl_rg_fail_nth > 1) {
        cl_rg_fail_nth--;
        return false;
    }
    if (!cl_rg_fail_rest)
        cl_rg_fail_nth = 0;
    cl_rg_fail_count++;
    return true;
}

/* malloc/calloc/realloc returned NULL (or the hook said so). The failure is recorded in
 * cl_rg_oom, which the evaluator checks at every step and after every builtin, ending the
 * evaluation with CL_ENOMEM and releasing everything it holds. The allocation is retried once
 * so that the caller, which has no failure path, gets its memory and the evaluation unwinds
 * normally. When the retry fails too, the evaluation in progress is abandoned through
 * cl_rg_oom_jmp (its values are not reclaimed); with nothing to abandon (parsing and compiling
 * change the engine, a caller may build values itself) it waits for memory, saying so once. */
static void *alloc_failed(void *p, size_t n, size_t sz, int how)
{
    cl_rg_oom = true;
    for (unsigned waited = 0;; waited++) {
        void *q = !cl_rg_fail_rest ? how == 0   ? malloc(n ? n : 1)
                                     : how == 1 ? calloc(n ? n : 1, sz ? sz : 1)
                                                : realloc(p, n ? n : 1)
                                   : NULL;
        if (q)
            return q;
        if (cl_rg_oom_jmp)
            longjmp(*cl_rg_oom_jmp, 1);
        if (waited == 0)
            fprintf(stderr, "rego: out of memory outside an evaluation; waiting for memory\n");
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The allocation when the first attempt failed, or was not made because the test hook is on
 * (how: 0 malloc, 1 calloc, 2 realloc of p). Out of the common path, which costs one test. */
__attribute__((noinline, cold)) static void *alloc_slow(void *p, size_t n, size_t sz, int how)
{
    if (cl_rg_fail_nth && !injected()) {
        void *q = how == 0   ? malloc(n ? n : 1)
                  : how == 1 ? calloc(n ? n : 1, sz ? sz : 1)
                             : realloc(p, n ? n : 1);
        if (q)
            return q;
    }
    return alloc_failed(p, n, sz, how);
}

void *cl_xmalloc(size_t n)
{
    void *p = __builtin_expect(cl_rg_fail_nth != 0, 0) ? NULL : malloc(n ? n : 1);
    if (!p)
        p = alloc_slow(NULL, n, 0, 0);
    cl_rv_allocs++;
    cl_rv_alloc_bytes += n;
    return p;
}

void *cl_xcalloc(size_t n, size_t sz)
{
    void *p = __builtin_expect(cl_rg_fail_nth != 0, 0) ? NULL : calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        p = alloc_slow(NULL, n, sz, 1);
    cl_rv_allocs++;
    cl_rv_alloc_bytes += n * sz;
    return p;
}

void *cl_xrealloc(void *p, size_t n)
{
    void *q = __builtin_expect(cl_rg_fail_nth != 0, 0) ? NULL : realloc(p, n ? n : 1);
    if (!q)
        q = alloc_slow(p, n, 0, 2);
    cl_rv_allocs++;
    cl_rv_alloc_bytes += n;
    return q;
}

char *cl_xstrndup(const char *s, size_t n)
{
    char *p = cl_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void cl_sbuf_add(struct cl_sbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 64;
        while (c < b->len + n + 1)
            c *= 2;
        b->s = cl_xrealloc(b->s, c);
        b->cap = c;
    }
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}

void cl_sbuf_addc(struct cl_sbuf *b, char c)
{
    cl_sbuf_add(b, &c, 1);
}
void cl_sbuf_adds(struct cl_sbuf *b, const char *s)
{
    cl_sbuf_add(b, s, strlen(s));
}

void cl_sbuf_addf(struct cl_sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        cl_sbuf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = cl_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cl_sbuf_add(b, big, (size_t)n);
    free(big);
}

char *cl_sbuf_steal(struct cl_sbuf *b)
{
    if (!b->s)
        cl_sbuf_add(b, "", 0);
    char *s = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void cl_sbuf_free(struct cl_sbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* ---- constructors ---- */

static struct cl_rv rv_null = {.type = CL_RV_NULL, .frozen = 1};
static struct cl_rv rv_true = {.type = CL_RV_BOOL, .frozen = 1, .u.b = true};
static struct cl_rv rv_false = {.type = CL_RV_BOOL, .frozen = 1, .u.b = false};

static struct cl_rv *rv_alloc(enum cl_rv_type t, size_t extra)
{
    struct cl_rv *v = cl_xmalloc(sizeof *v + extra);
    memset(v, 0, sizeof *v);
    v->refs = 1;
    v->type = (uint8_t)t;
    cl_rv_bytes_live += (int64_t)(sizeof *v + extra);
    return v;
}

struct cl_rv *cl_rv_null(void)
{
    return &rv_null;
}
struct cl_rv *cl_rv_bool(bool b)
{
    return b ? &rv_true : &rv_false;
}

/* Small non-negative integers (array indexes, counts) are shared static values, like null and
 * the booleans: frozen, never freed. */
#define SMALL_INTS 1024
static struct cl_rv small_ints[SMALL_INTS];

__attribute__((constructor)) static void init_small_ints(void)
{
    for (int i = 0; i < SMALL_INTS; i++) {
        small_ints[i].type = CL_RV_NUMBER;
        small_ints[i].is_int = 1;
        small_ints[i].frozen = 1;
        small_ints[i].u.num.i = i;
        small_ints[i].u.num.d = i;
    }
}

static bool is_static(const struct cl_rv *v)
{
    uintptr_t p = (uintptr_t)v, lo = (uintptr_t)small_ints;
    return v == &rv_null || v == &rv_true || v == &rv_false ||
           (p >= lo && p < lo + sizeof small_ints);
}

struct cl_rv *cl_rv_int(int64_t i)
{
    if (i >= 0 && i < SMALL_INTS)
        return &small_ints[i];
    struct cl_rv *v = rv_alloc(CL_RV_NUMBER, 0);
    v->is_int = 1;
    v->u.num.i = i;
    v->u.num.d = (double)i;
    return v;
}

struct cl_rv *cl_rv_float(double d)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 9.2e18)
        return cl_rv_int((int64_t)d);
    struct cl_rv *v = rv_alloc(CL_RV_NUMBER, 0);
    v->u.num.d = d;
    return v;
}

struct cl_rv *cl_rv_str(const char *s, size_t len)
{
    struct cl_rv *v = rv_alloc(CL_RV_STRING, len + 1);
    v->u.str.s = (char *)(v + 1);
    if (len)
        memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = 0;
    v->u.str.len = len;
    return v;
}

struct cl_rv *cl_rv_strz(const char *s)
{
    return cl_rv_str(s, strlen(s));
}

struct cl_rv *cl_rv_str_alloc(size_t len, char **buf)
{
    struct cl_rv *v = rv_alloc(CL_RV_STRING, len + 1);
    v->u.str.s = (char *)(v + 1);
    v->u.str.s[len] = 0;
    v->u.str.len = len;
    *buf = v->u.str.s;
    return v;
}

struct cl_rv *cl_rv_strf(const char *fmt, ...)
{
    struct cl_sbuf b = {0};
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return cl_rv_str("", 0);
    if ((size_t)n < sizeof tmp)
        return cl_rv_str(tmp, (size_t)n);
    b.s = cl_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b.s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    struct cl_rv *v = cl_rv_str(b.s, (size_t)n);
    free(b.s);
    return v;
}

struct cl_rv *cl_rv_array(size_t cap)
{
    struct cl_rv *v = rv_alloc(CL_RV_ARRAY, 0);
    if (cap) {
        v->u.arr.items = cl_xmalloc(cap * sizeof(struct cl_rv *));
        v->u.arr.cap = cap;
        cl_rv_bytes_live += (int64_t)(cap * sizeof(struct cl_rv *));
    }
    return v;
}

struct cl_rv *cl_rv_set(void)
{
    return rv_alloc(CL_RV_SET, 0);
}
struct cl_rv *cl_rv_object(void)
{
    return rv_alloc(CL_RV_OBJECT, 0);
}

/* ---- big numbers ---- */

/* A big number: `text` (n bytes) stored after the value. */
static struct cl_rv *rv_big(uint8_t kind, const char *text, size_t n, double d)
{
    struct cl_rv *v = rv_alloc(CL_RV_NUMBER, n + 1);
    char *t = (char *)(v + 1);
    memcpy(t, text, n);
    t[n] = 0;
    v->big = kind;
    v->u.num.big = t;
    v->u.num.d = d;
    return v;
}

/* An integer from its sign and magnitude digits (leading zeros allowed): int64 when it fits. */
static struct cl_rv *rv_int_digits(bool neg, const char *mag, size_t n)
{
    while (n > 1 && *mag == '0') {
        mag++;
        n--;
    }
    if (n > CL_RV_MAX_BIG_DIGITS)
        return NULL;
    if (n <= 19) {
        uint64_t u = 0;
        for (size_t i = 0; i < n; i++)
            u = u * 10 + (uint64_t)(mag[i] - '0');
        if (n < 19 || u <= (uint64_t)INT64_MAX)
            return cl_rv_int(neg ? -(int64_t)u : (int64_t)u);
        if (neg && u == (uint64_t)INT64_MAX + 1)
            return cl_rv_int(INT64_MIN);
    }
    char *t = cl_xmalloc(n + 2);
    size_t o = 0;
    if (neg)
        t[o++] = '-';
    memcpy(t + o, mag, n);
    t[o + n] = 0;
    struct cl_rv *v = rv_big(CL_RV_BIGINT, t, o + n, strtod(t, NULL));
    free(t);
    return v;
}

/* Sign and magnitude of an exact integer value (int64, big integer, or an integral double
 * beyond 2^53 -- those print exactly with %.0f); false for other numbers. `buf` holds the
 * digits when they are not in the value. */
static bool int_parts(const struct cl_rv *v, bool *neg, const char **mag, size_t *n, char *buf,
                      size_t cap)
{
    if (v->is_int) {
        uint64_t u = v->u.num.i < 0 ? (uint64_t)0 - (uint64_t)v->u.num.i : (uint64_t)v->u.num.i;
        *neg = v->u.num.i < 0;
        int k = snprintf(buf, cap, "%llu", (unsigned long long)u);
        *mag = buf;
        *n = (size_t)k;
        return true;
    }
    if (v->big == CL_RV_BIGINT) {
        const char *t = v->u.num.big;
        *neg = t[0] == '-';
        *mag = t + (*neg ? 1 : 0);
        *n = strlen(*mag);
        return true;
    }
    double d = v->u.num.d;
    if (v->big || !isfinite(d) || d != floor(d) || fabs(d) < 9007199254740992.0)
        return false;
    int k = snprintf(buf, cap, "%.0f", fabs(d));
    if (k <= 0 || (size_t)k >= cap)
        return false;
    *neg = d < 0;
    *mag = buf;
    *n = (size_t)k;
    return true;
}

static int mag_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    int c = memcmp(a, b, an);
    return c < 0 ? -1 : c > 0;
}

/* out (cap an+bn+2) = a + b, digits MSB first; returns the length. */
static size_t mag_add(const char *a, size_t an, const char *b, size_t bn, char *out)
{
    size_t n = (an > bn ? an : bn) + 1;
    int carry = 0;
    for (size_t i = 0; i < n; i++) {
        int x = (i < an ? a[an - 1 - i] - '0' : 0) + (i < bn ? b[bn - 1 - i] - '0' : 0) + carry;
        out[n - 1 - i] = (char)('0' + x % 10);
        carry = x / 10;
    }
    return n;
}

/* out = a - b with a >= b. */
static size_t mag_sub(const char *a, size_t an, const char *b, size_t bn, char *out)
{
    int borrow = 0;
    for (size_t i = 0; i < an; i++) {
        int x = (a[an - 1 - i] - '0') - (i < bn ? b[bn - 1 - i] - '0' : 0) - borrow;
        borrow = x < 0;
        out[an - 1 - i] = (char)('0' + (x + 10) % 10);
    }
    return an;
}

static size_t mag_mul(const char *a, size_t an, const char *b, size_t bn, char *out)
{
    size_t n = an + bn;
    unsigned *acc = cl_xcalloc(n, sizeof *acc);
    for (size_t i = 0; i < an; i++)
        for (size_t j = 0; j < bn; j++)
            acc[i + j + 1] += (unsigned)(a[i] - '0') * (unsigned)(b[j] - '0');
    for (size_t k = n; k-- > 1;) {
        acc[k - 1] += acc[k] / 10;
        acc[k] %= 10;
    }
    for (size_t k = 0; k < n; k++)
        out[k] = (char)('0' + acc[k]);
    free(acc);
    return n;
}

/* Signed addition of two exact integers given as parts. */
static struct cl_rv *int_add(bool an, const char *a, size_t al, bool bn, const char *b, size_t bl)
{
    char *out = cl_xmalloc(al + bl + 2);
    struct cl_rv *r;
    if (an == bn) {
        size_t n = mag_add(a, al, b, bl, out);
        r = rv_int_digits(an, out, n);
    } else if (mag_cmp(a, al, b, bl) >= 0) {
        size_t n = mag_sub(a, al, b, bl, out);
        r = rv_int_digits(an, out, n);
    } else {
        size_t n = mag_sub(b, bl, a, al, out);
        r = rv_int_digits(bn, out, n);
    }
    free(out);
    return r;
}

/* ---- exact decimals: literals beyond the double range ----
 * A number as sign, magnitude digits (no leading or trailing zeros; none for zero) and a
 * power of ten. Literals too large for a double (1e400) keep their text and are compared,
 * added, subtracted and multiplied exactly this way, as OPA does with big.Float. */
struct dec {
    bool neg;
    char *mag;
    size_t n;
    long exp;
};

static void dec_norm(struct dec *d)
{
    size_t lead = 0;
    while (lead < d->n && d->mag[lead] == '0')
        lead++;
    memmove(d->mag, d->mag + lead, d->n - lead);
    d->n -= lead;
    while (d->n && d->mag[d->n - 1] == '0') {
        d->n--;
        d->exp++;
    }
    if (!d->n) {
        d->neg = false;
        d->exp = 0;
    }
}

/* From number text in JSON's grammar. */
static void dec_parse(const char *t, struct dec *d)
{
    d->neg = *t == '-';
    t += d->neg;
    size_t len = strlen(t);
    d->mag = cl_xmalloc(len + 1);
    d->n = 0;
    d->exp = 0;
    bool frac = false;
    for (; *t && *t != 'e' && *t != 'E'; t++) {
        if (*t == '.') {
            frac = true;
            continue;
        }
        d->mag[d->n++] = *t;
        if (frac)
            d->exp--;
    }
    if (*t == 'e' || *t == 'E') {
        long e = strtol(t + 1, NULL, 10); /* saturates at LONG_MIN/MAX */
        if (e > 100000000L)
            e = 100000000L;
        if (e < -100000000L)
            e = -100000000L;
        d->exp += e;
    }
    dec_norm(d);
}

static void dec_of(const struct cl_rv *v, struct dec *d)
{
    char buf[40];
    if (v->big) {
        dec_parse(v->u.num.big, d);
    } else if (v->is_int) {
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.num.i);
        dec_parse(buf, d);
    } else {
        snprintf(buf, sizeof buf, "%.17e", v->u.num.d);
        dec_parse(buf, d);
    }
}

static int dec_cmp(const struct dec *a, const struct dec *b)
{
    if (!a->n || !b->n)
        return !a->n && !b->n ? 0 : !a->n ? (b->neg ? 1 : -1) : (a->neg ? -1 : 1);
    if (a->neg != b->neg)
        return a->neg ? -1 : 1;
    int c;
    long pa = (long)a->n + a->exp, pb = (long)b->n + b->exp;
    if (pa != pb) {
        c = pa < pb ? -1 : 1;
    } else {
        size_t m = a->n < b->n ? a->n : b->n;
        c = memcmp(a->mag, b->mag, m);
        c = c ? (c < 0 ? -1 : 1) : a->n == b->n ? 0 : a->n < b->n ? -1 : 1;
    }
    return a->neg ? -c : c;
}

/* The value of sign * mag * 10^exp: an exact integer when it is one (within the digit cap),
 * else the number its text gives (a double, or a literal beyond the double range). */
static struct cl_rv *dec_value(struct dec *d)
{
    dec_norm(d);
    if (!d->n)
        return cl_rv_int(0);
    if (d->exp >= 0 && (size_t)d->exp + d->n <= CL_RV_MAX_BIG_DIGITS) {
        char *t = cl_xmalloc(d->n + (size_t)d->exp + 1);
        memcpy(t, d->mag, d->n);
        memset(t + d->n, '0', (size_t)d->exp);
        struct cl_rv *v = rv_int_digits(d->neg, t, d->n + (size_t)d->exp);
        free(t);
        return v;
    }
    if (d->n > CL_RV_MAX_BIG_DIGITS)
        return NULL;
    char *t = cl_xmalloc(d->n + 64);
    int k = 0;
    if (d->neg)
        t[k++] = '-';
    long point = (long)d->n + d->exp; /* digits before the decimal point */
    if (d->exp < 0 && point > -20) {  /* positional, as the literal would be written */
        if (point > 0) {
            memcpy(t + k, d->mag, (size_t)point);
            k += (int)point;
            t[k++] = '.';
            memcpy(t + k, d->mag + point, d->n - (size_t)point);
            k += (int)(d->n - (size_t)point);
        } else {
            t[k++] = '0';
            t[k++] = '.';
            for (long z = 0; z < -point; z++)
                t[k++] = '0';
            memcpy(t + k, d->mag, d->n);
            k += (int)d->n;
        }
        struct cl_rv *v = cl_rv_number_parse(t, (size_t)k);
        free(t);
        return v;
    }
    t[k++] = d->mag[0];
    if (d->n > 1) {
        t[k++] = '.';
        memcpy(t + k, d->mag + 1, d->n - 1);
        k += (int)(d->n - 1);
    }
    snprintf(t + k, 40, "e%ld", d->exp + (long)d->n - 1);
    struct cl_rv *v = cl_rv_number_parse(t, strlen(t));
    free(t);
    return v;
}

enum { DEC_ADD, DEC_SUB, DEC_MUL };

static struct cl_rv *dec_arith(const struct cl_rv *x, const struct cl_rv *y, int op)
{
    struct dec a, b, r = {0};
    dec_of(x, &a);
    dec_of(y, &b);
    struct cl_rv *v = NULL;
    if (op == DEC_SUB)
        b.neg = b.n ? !b.neg : false;
    if (op == DEC_MUL) {
        if (a.n + b.n <= CL_RV_MAX_BIG_DIGITS + 1) {
            r.mag = cl_xmalloc(a.n + b.n + 1);
            r.n = a.n && b.n ? mag_mul(a.mag, a.n, b.mag, b.n, r.mag) : 0;
            r.neg = a.neg != b.neg;
            r.exp = a.exp + b.exp;
            v = dec_value(&r);
        }
    } else {
        /* align both on the smaller power of ten; refuse alignments beyond the digit cap */
        long e = a.exp < b.exp ? a.exp : b.exp;
        long sa = a.exp - e, sb = b.exp - e;
        if (!a.n || !b.n || (sa <= CL_RV_MAX_BIG_DIGITS && sb <= CL_RV_MAX_BIG_DIGITS)) {
            size_t an = a.n ? a.n + (size_t)sa : 0, bn = b.n ? b.n + (size_t)sb : 0;
            char *am = cl_xmalloc(an + 1), *bm = cl_xmalloc(bn + 1);
            memcpy(am, a.mag, a.n);
            memset(am + a.n, '0', an - a.n);
            memcpy(bm, b.mag, b.n);
            memset(bm + b.n, '0', bn - b.n);
            r.mag = cl_xmalloc((an > bn ? an : bn) + 2);
            r.exp = a.n && b.n ? e : a.n ? a.exp : b.exp;
            if (!an || !bn) {
                const char *src = an ? am : bm;
                r.n = an ? an : bn;
                memcpy(r.mag, src, r.n);
                r.neg = an ? a.neg : b.neg;
                r.exp = e;
            } else if (a.neg == b.neg) {
                r.n = mag_add(am, an, bm, bn, r.mag);
                r.neg = a.neg;
            } else if (mag_cmp(am, an, bm, bn) >= 0) {
                r.n = mag_sub(am, an, bm, bn, r.mag);
                r.neg = a.neg;
            } else {
                r.n = mag_sub(bm, bn, am, an, r.mag);
                r.neg = b.neg;
            }
            free(am);
            free(bm);
            v = dec_value(&r);
        }
    }
    free(a.mag);
    free(b.mag);
    free(r.mag);
    return v;
}

static struct cl_rv *finite_num(double d)
{
    return isfinite(d) ? cl_rv_float(d) : NULL;
}

struct cl_rv *cl_rv_num_add(const struct cl_rv *a, const struct cl_rv *b)
{
    int64_t r;
    if (a->is_int && b->is_int && !__builtin_add_overflow(a->u.num.i, b->u.num.i, &r))
        return cl_rv_int(r);
    if (a->big == CL_RV_BIGLIT || b->big == CL_RV_BIGLIT)
        return dec_arith(a, b, DEC_ADD);
    char ba[32], bb[32];
    bool an, bn;
    const char *am, *bm;
    size_t al, bl;
    if ((a->is_int || a->big == CL_RV_BIGINT || b->is_int || b->big == CL_RV_BIGINT) &&
        int_parts(a, &an, &am, &al, ba, sizeof ba) && int_parts(b, &bn, &bm, &bl, bb, sizeof bb))
        return int_add(an, am, al, bn, bm, bl);
    return finite_num(cl_rv_as_double(a) + cl_rv_as_double(b));
}

struct cl_rv *cl_rv_num_sub(const struct cl_rv *a, const struct cl_rv *b)
{
    int64_t r;
    if (a->is_int && b->is_int && !__builtin_sub_overflow(a->u.num.i, b->u.num.i, &r))
        return cl_rv_int(r);
    if (a->big == CL_RV_BIGLIT || b->big == CL_RV_BIGLIT)
        return dec_arith(a, b, DEC_SUB);
    char ba[32], bb[32];
    bool an, bn;
    const char *am, *bm;
    size_t al, bl;
    if ((a->is_int || a->big == CL_RV_BIGINT || b->is_int || b->big == CL_RV_BIGINT) &&
        int_parts(a, &an, &am, &al, ba, sizeof ba) && int_parts(b, &bn, &bm, &bl, bb, sizeof bb))
        return int_add(an, am, al, !bn, bm, bl);
    return finite_num(cl_rv_as_double(a) - cl_rv_as_double(b));
}

struct cl_rv *cl_rv_num_mul(const struct cl_rv *a, const struct cl_rv *b)
{
    int64_t r;
    if (a->is_int && b->is_int && !__builtin_mul_overflow(a->u.num.i, b->u.num.i, &r))
        return cl_rv_int(r);
    if (a->big == CL_RV_BIGLIT || b->big == CL_RV_BIGLIT)
        return dec_arith(a, b, DEC_MUL);
    char ba[32], bb[32];
    bool an, bn;
    const char *am, *bm;
    size_t al, bl;
    if ((a->is_int || a->big == CL_RV_BIGINT || b->is_int || b->big == CL_RV_BIGINT) &&
        int_parts(a, &an, &am, &al, ba, sizeof ba) && int_parts(b, &bn, &bm, &bl, bb, sizeof bb)) {
        if (al + bl > CL_RV_MAX_BIG_DIGITS + 1)
            return NULL;
        char *out = cl_xmalloc(al + bl + 1);
        size_t n = mag_mul(am, al, bm, bl, out);
        struct cl_rv *v = rv_int_digits(an != bn, out, n);
        free(out);
        return v;
    }
    return finite_num(cl_rv_as_double(a) * cl_rv_as_double(b));
}

/* A number literal: JSON's grammar (as Rego uses it). */
static bool number_syntax(const char *s, size_t n, bool *integer)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t nd = i - d0;
    *integer = true;
    if (i < n && s[i] == '.') { /* "1." and ".5" as Go's ParseFloat (to_number) */
        *integer = false;
        size_t f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        nd += i - f0;
    }
    if (nd == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *integer = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e0)
            return false;
    }
    return i == n;
}

struct cl_rv *cl_rv_number_parse(const char *s, size_t len)
{
    bool integer;
    if (len == 0 || !number_syntax(s, len, &integer))
        return NULL;
    if (integer) {
        bool neg = s[0] == '-';
        return rv_int_digits(neg, s + neg, len - neg);
    }
    if (len > CL_RV_MAX_BIG_DIGITS)
        return NULL;
    char *tmp = cl_xstrndup(s, len);
    double d = strtod(tmp, NULL);
    free(tmp);
    if (!isfinite(d))
        return rv_big(CL_RV_BIGLIT, s, len, s[0] == '-' ? -HUGE_VAL : HUGE_VAL);
    /* more significant digits than a double holds (28857836529306024611913.0): OPA keeps the
     * literal and compares it exactly, so the text is kept (d is its nearest double) */
    size_t sig = 0, zeros = 0;
    bool lead = true;
    for (size_t i = 0; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] < '0' || s[i] > '9')
            continue;
        if (lead && s[i] == '0')
            continue;
        lead = false;
        if (s[i] == '0') {
            zeros++;
        } else {
            sig += zeros + 1;
            zeros = 0;
        }
    }
    if (sig > 17)
        return rv_big(CL_RV_BIGLIT, s, len, d);
    return cl_rv_float(d);
}

/* ---- builders ---- */

static void arr_reserve(struct cl_rv *a, size_t n)
{
    if (n <= a->u.arr.cap)
        return;
    size_t c = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
    while (c < n)
        c *= 2;
    cl_rv_bytes_live += (int64_t)((c - a->u.arr.cap) * sizeof(struct cl_rv *));
    a->u.arr.items = cl_xrealloc(a->u.arr.items, c * sizeof(struct cl_rv *));
    a->u.arr.cap = c;
}

void cl_rv_array_push(struct cl_rv *arr, struct cl_rv *v)
{
    arr_reserve(arr, arr->u.arr.len + 1);
    arr->u.arr.items[arr->u.arr.len++] = v;
}

/* Index of the first element >= v; *found when equal. */
/* String keys (nearly all lookups): compared in place, without the general ordering. */
static int cmp_str_key(const struct cl_rv *a, const char *s, size_t len)
{
    if (a->type != CL_RV_STRING)
        return a->type < CL_RV_STRING ? -1 : 1;
    size_t n = a->u.str.len < len ? a->u.str.len : len;
    if (n && a->u.str.s[0] != s[0])
        return (unsigned char)a->u.str.s[0] < (unsigned char)s[0] ? -1 : 1;
    int c = memcmp(a->u.str.s, s, n);
    if (c)
        return c < 0 ? -1 : 1;
    return a->u.str.len < len ? -1 : a->u.str.len > len;
}

static size_t bsearch_rv(struct cl_rv *const *items, size_t n, const struct cl_rv *v, bool *found)
{
    size_t lo = 0, hi = n;
    *found = false;
    if (v->type == CL_RV_STRING) {
        const char *s = v->u.str.s;
        size_t len = v->u.str.len;
        if (n && cmp_str_key(items[n - 1], s, len) < 0)
            return n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = cmp_str_key(items[mid], s, len);
            if (c == 0) {
                *found = true;
                return mid;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
    if (n && cl_rv_compare(items[n - 1], v) < 0)
        return n; /* appending in order is the common case */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cl_rv_compare(items[mid], v);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool cl_rv_set_add(struct cl_rv *set, struct cl_rv *v)
{
    bool found;
    size_t i = bsearch_rv(set->u.arr.items, set->u.arr.len, v, &found);
    if (found) {
        cl_rv_decref(v);
        return false;
    }
    arr_reserve(set, set->u.arr.len + 1);
    memmove(set->u.arr.items + i + 1, set->u.arr.items + i,
            (set->u.arr.len - i) * sizeof(struct cl_rv *));
    set->u.arr.items[i] = v;
    set->u.arr.len++;
    return true;
}

void cl_rv_obj_put(struct cl_rv *obj, struct cl_rv *k, struct cl_rv *v)
{
    bool found;
    size_t i = bsearch_rv(obj->u.obj.keys, obj->u.obj.len, k, &found);
    if (found) {
        cl_rv_decref(k);
        cl_rv_decref(obj->u.obj.vals[i]);
        obj->u.obj.vals[i] = v;
        return;
    }
    if (obj->u.obj.len + 1 > obj->u.obj.cap) {
        size_t c = obj->u.obj.cap ? obj->u.obj.cap * 2 : 4;
        cl_rv_bytes_live += (int64_t)((c - obj->u.obj.cap) * 2 * sizeof(struct cl_rv *));
        obj->u.obj.keys = cl_xrealloc(obj->u.obj.keys, c * sizeof(struct cl_rv *));
        obj->u.obj.vals = cl_xrealloc(obj->u.obj.vals, c * sizeof(struct cl_rv *));
        obj->u.obj.cap = c;
    }
    size_t n = obj->u.obj.len - i;
    memmove(obj->u.obj.keys + i + 1, obj->u.obj.keys + i, n * sizeof(struct cl_rv *));
    memmove(obj->u.obj.vals + i + 1, obj->u.obj.vals + i, n * sizeof(struct cl_rv *));
    obj->u.obj.keys[i] = k;
    obj->u.obj.vals[i] = v;
    obj->u.obj.len++;
}

void cl_rv_obj_put_str(struct cl_rv *obj, const char *k, struct cl_rv *v)
{
    cl_rv_obj_put(obj, cl_rv_strz(k), v);
}

void cl_rv_obj_del(struct cl_rv *obj, const struct cl_rv *k)
{
    bool found;
    size_t i = bsearch_rv(obj->u.obj.keys, obj->u.obj.len, k, &found);
    if (!found)
        return;
    cl_rv_decref(obj->u.obj.keys[i]);
    cl_rv_decref(obj->u.obj.vals[i]);
    size_t n = obj->u.obj.len - i - 1;
    memmove(obj->u.obj.keys + i, obj->u.obj.keys + i + 1, n * sizeof(struct cl_rv *));
    memmove(obj->u.obj.vals + i, obj->u.obj.vals + i + 1, n * sizeof(struct cl_rv *));
    obj->u.obj.len--;
}

/* ---- references ---- */

static void rv_free(struct cl_rv *v)
{
    size_t extra = 0;
    switch (v->type) {
    case CL_RV_STRING:
        extra = v->u.str.len + 1;
        break;
    case CL_RV_NUMBER:
        if (v->big)
            extra = strlen(v->u.num.big) + 1;
        break;
    case CL_RV_ARRAY:
    case CL_RV_SET:
        for (size_t i = 0; i < v->u.arr.len; i++)
            cl_rv_decref(v->u.arr.items[i]);
        cl_rv_bytes_live -= (int64_t)(v->u.arr.cap * sizeof(struct cl_rv *));
        free(v->u.arr.items);
        break;
    case CL_RV_OBJECT:
        for (size_t i = 0; i < v->u.obj.len; i++) {
            cl_rv_decref(v->u.obj.keys[i]);
            cl_rv_decref(v->u.obj.vals[i]);
        }
        cl_rv_bytes_live -= (int64_t)(v->u.obj.cap * 2 * sizeof(struct cl_rv *));
        free(v->u.obj.keys);
        free(v->u.obj.vals);
        break;
    default:
        break;
    }
    cl_rv_bytes_live -= (int64_t)(sizeof *v + extra);
    free(v);
}

void cl_rv_decref(struct cl_rv *v)
{
    if (!v || v->frozen)
        return;
    if (--v->refs == 0)
        rv_free(v);
}

void cl_auto_cl_rv(struct cl_rv **p)
{
    cl_rv_decref(*p);
    *p = NULL;
}

void cl_rv_freeze(struct cl_rv *v)
{
    if (!v || v->frozen)
        return;
    v->frozen = 1;
    if (v->type == CL_RV_ARRAY || v->type == CL_RV_SET) {
        for (size_t i = 0; i < v->u.arr.len; i++)
            cl_rv_freeze(v->u.arr.items[i]);
    } else if (v->type == CL_RV_OBJECT) {
        for (size_t i = 0; i < v->u.obj.len; i++) {
            cl_rv_freeze(v->u.obj.keys[i]);
            cl_rv_freeze(v->u.obj.vals[i]);
        }
    }
}

struct ptrset {
    struct cl_rv **v;
    size_t cap, n;
};

static bool ptrset_add(struct ptrset *s, struct cl_rv *p)
{
    if ((s->n + 1) * 2 > s->cap) {
        struct ptrset ns = {cl_xcalloc(s->cap ? s->cap * 2 : 64, sizeof *ns.v),
                            s->cap ? s->cap * 2 : 64, 0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                ptrset_add(&ns, s->v[i]);
        free(s->v);
        *s = ns;
    }
    size_t h = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->v[i] == p)
            return false;
        if (!s->v[i]) {
            s->v[i] = p;
            s->n++;
            return true;
        }
    }
}

void cl_rv_release_frozen(struct cl_rv *const *roots, size_t n)
{
    struct ptrset seen = {0};
    struct cl_rv **stack = NULL;
    size_t ns = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (ns == cap) {
            cap = cap ? cap * 2 : 64;
            stack = cl_xrealloc(stack, cap * sizeof *stack);
        }
        stack[ns++] = roots[i];
    }
    while (ns) {
        struct cl_rv *v = stack[--ns];
        if (!v || is_static(v) || !v->frozen || !ptrset_add(&seen, v))
            continue;
        size_t kids = v->type == CL_RV_ARRAY || v->type == CL_RV_SET ? v->u.arr.len
                      : v->type == CL_RV_OBJECT                      ? v->u.obj.len * 2
                                                                     : 0;
        if (ns + kids >= cap) {
            while (ns + kids >= cap)
                cap = cap ? cap * 2 : 64;
            stack = cl_xrealloc(stack, cap * sizeof *stack);
        }
        if (v->type == CL_RV_ARRAY || v->type == CL_RV_SET) {
            for (size_t i = 0; i < v->u.arr.len; i++)
                stack[ns++] = v->u.arr.items[i];
        } else if (v->type == CL_RV_OBJECT) {
            for (size_t i = 0; i < v->u.obj.len; i++) {
                stack[ns++] = v->u.obj.keys[i];
                stack[ns++] = v->u.obj.vals[i];
            }
        }
    }
    for (size_t i = 0; i < seen.cap; i++) {
        struct cl_rv *v = seen.v ? seen.v[i] : NULL;
        if (!v)
            continue;
        if (v->type == CL_RV_ARRAY || v->type == CL_RV_SET) {
            free(v->u.arr.items);
        } else if (v->type == CL_RV_OBJECT) {
            free(v->u.obj.keys);
            free(v->u.obj.vals);
        }
        free(v);
    }
    free(seen.v);
    free(stack);
}

struct cl_rv *cl_rv_copy(const struct cl_rv *v)
{
    struct cl_rv *c;
    switch (v->type) {
    case CL_RV_ARRAY:
    case CL_RV_SET:
        c = v->type == CL_RV_ARRAY ? cl_rv_array(v->u.arr.len) : cl_rv_set();
        arr_reserve(c, v->u.arr.len);
        for (size_t i = 0; i < v->u.arr.len; i++)
            c->u.arr.items[i] = cl_rv_incref(v->u.arr.items[i]);
        c->u.arr.len = v->u.arr.len;
        return c;
    case CL_RV_OBJECT:
        c = cl_rv_object();
        if (v->u.obj.len) {
            c->u.obj.keys = cl_xmalloc(v->u.obj.len * sizeof(struct cl_rv *));
            c->u.obj.vals = cl_xmalloc(v->u.obj.len * sizeof(struct cl_rv *));
            c->u.obj.cap = v->u.obj.len;
            cl_rv_bytes_live += (int64_t)(c->u.obj.cap * 2 * sizeof(struct cl_rv *));
        }
        for (size_t i = 0; i < v->u.obj.len; i++) {
            c->u.obj.keys[i] = cl_rv_incref(v->u.obj.keys[i]);
            c->u.obj.vals[i] = cl_rv_incref(v->u.obj.vals[i]);
        }
        c->u.obj.len = v->u.obj.len;
        return c;
    default:
        return cl_rv_incref((struct cl_rv *)(uintptr_t)v);
    }
}

/* ---- ordering ---- */

/* Exact comparison of an int64 with a double (no rounding of the integer). */
static int cmp_int_double(int64_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double fl = floor(d);
    int64_t di = (int64_t)fl;
    if (i != di)
        return i < di ? -1 : 1;
    return fl < d ? -1 : 0;
}

static int cmp_num(const struct cl_rv *a, const struct cl_rv *b)
{
    if (a->is_int && b->is_int)
        return a->u.num.i < b->u.num.i ? -1 : a->u.num.i > b->u.num.i;
    if (a->big == CL_RV_BIGLIT || b->big == CL_RV_BIGLIT) {
        struct dec x, y;
        dec_of(a, &x);
        dec_of(b, &y);
        int c = dec_cmp(&x, &y);
        free(x.mag);
        free(y.mag);
        return c;
    }
    if (a->big == CL_RV_BIGINT || b->big == CL_RV_BIGINT) {
        char ba[32], bb[32];
        bool an, bn;
        const char *am, *bm;
        size_t al, bl;
        if (int_parts(a, &an, &am, &al, ba, sizeof ba) &&
            int_parts(b, &bn, &bm, &bl, bb, sizeof bb)) {
            bool az = al == 1 && am[0] == '0', bz = bl == 1 && bm[0] == '0';
            if (az && bz)
                return 0;
            if (an != bn)
                return an ? -1 : 1;
            int c = mag_cmp(am, al, bm, bl);
            return an ? -c : c;
        }
        /* the other side is fractional (below 2^53) or infinite: the approximation decides */
        double x = cl_rv_as_double(a), y = cl_rv_as_double(b);
        return x < y ? -1 : x > y;
    }
    if (a->is_int)
        return cmp_int_double(a->u.num.i, b->u.num.d);
    if (b->is_int)
        return -cmp_int_double(b->u.num.i, a->u.num.d);
    return a->u.num.d < b->u.num.d ? -1 : a->u.num.d > b->u.num.d;
}

int cl_rv_compare(const struct cl_rv *a, const struct cl_rv *b)
{
    if (a == b)
        return 0;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    switch (a->type) {
    case CL_RV_NULL:
        return 0;
    case CL_RV_BOOL:
        return (int)a->u.b - (int)b->u.b;
    case CL_RV_NUMBER:
        return cmp_num(a, b);
    case CL_RV_STRING: {
        size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        int c = memcmp(a->u.str.s, b->u.str.s, n);
        if (c)
            return c < 0 ? -1 : 1;
        return a->u.str.len < b->u.str.len ? -1 : a->u.str.len > b->u.str.len;
    }
    case CL_RV_ARRAY:
    case CL_RV_SET: {
        size_t n = a->u.arr.len < b->u.arr.len ? a->u.arr.len : b->u.arr.len;
        for (size_t i = 0; i < n; i++) {
            int c = cl_rv_compare(a->u.arr.items[i], b->u.arr.items[i]);
            if (c)
                return c;
        }
        return a->u.arr.len < b->u.arr.len ? -1 : a->u.arr.len > b->u.arr.len;
    }
    case CL_RV_OBJECT: {
        size_t n = a->u.obj.len < b->u.obj.len ? a->u.obj.len : b->u.obj.len;
        for (size_t i = 0; i < n; i++) {
            int c = cl_rv_compare(a->u.obj.keys[i], b->u.obj.keys[i]);
            if (c)
                return c;
            c = cl_rv_compare(a->u.obj.vals[i], b->u.obj.vals[i]);
            if (c)
                return c;
        }
        return a->u.obj.len < b->u.obj.len ? -1 : a->u.obj.len > b->u.obj.len;
    }
    }
    return 0;
}

struct cl_rv *cl_rv_obj_get(const struct cl_rv *obj, const struct cl_rv *k)
{
    if (!obj || obj->type != CL_RV_OBJECT)
        return NULL;
    if (k->type == CL_RV_STRING && obj->u.obj.len <= 16) {
        /* small objects: a scan that mostly compares lengths */
        const char *s = k->u.str.s;
        size_t len = k->u.str.len;
        for (size_t i = 0; i < obj->u.obj.len; i++) {
            const struct cl_rv *x = obj->u.obj.keys[i];
            if (x->type == CL_RV_STRING && x->u.str.len == len &&
                (!len || (x->u.str.s[0] == s[0] && !memcmp(x->u.str.s, s, len))))
                return obj->u.obj.vals[i];
        }
        return NULL;
    }
    bool found;
    size_t i = bsearch_rv(obj->u.obj.keys, obj->u.obj.len, k, &found);
    return found ? obj->u.obj.vals[i] : NULL;
}

struct cl_rv *cl_rv_obj_get_str(const struct cl_rv *obj, const char *k)
{
    struct cl_rv key = {.type = CL_RV_STRING, .frozen = 1};
    key.u.str.s = (char *)(uintptr_t)k;
    key.u.str.len = strlen(k);
    return cl_rv_obj_get(obj, &key);
}

bool cl_rv_set_has(const struct cl_rv *set, const struct cl_rv *v)
{
    if (!set || set->type != CL_RV_SET)
        return false;
    bool found;
    bsearch_rv(set->u.arr.items, set->u.arr.len, v, &found);
    return found;
}

size_t cl_rv_len(const struct cl_rv *v)
{
    switch (v->type) {
    case CL_RV_STRING:
        return v->u.str.len;
    case CL_RV_ARRAY:
    case CL_RV_SET:
        return v->u.arr.len;
    case CL_RV_OBJECT:
        return v->u.obj.len;
    default:
        return 0;
    }
}

size_t cl_rv_size(const struct cl_rv *v)
{
    size_t n = sizeof *v;
    switch (v->type) {
    case CL_RV_STRING:
        return n + v->u.str.len + 1;
    case CL_RV_NUMBER:
        return n + (v->big ? strlen(v->u.num.big) + 1 : 0);
    case CL_RV_ARRAY:
    case CL_RV_SET:
        n += v->u.arr.cap * sizeof(struct cl_rv *);
        for (size_t i = 0; i < v->u.arr.len; i++)
            n += v->u.arr.items[i]->frozen && v->u.arr.items[i]->type <= CL_RV_BOOL
                     ? 0
                     : cl_rv_size(v->u.arr.items[i]);
        return n;
    case CL_RV_OBJECT:
        n += v->u.obj.cap * 2 * sizeof(struct cl_rv *);
        for (size_t i = 0; i < v->u.obj.len; i++)
            n += cl_rv_size(v->u.obj.keys[i]) + cl_rv_size(v->u.obj.vals[i]);
        return n;
    default:
        return 0; /* null and booleans are static */
    }
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

uint64_t cl_rv_hash(const struct cl_rv *v)
{
    uint64_t h = (uint64_t)v->type * 0x100000001b3ULL;
    switch (v->type) {
    case CL_RV_BOOL:
        return mix(h, v->u.b);
    case CL_RV_NUMBER: {
        double d = v->is_int ? (double)v->u.num.i : v->u.num.d;
        if (d == 0)
            d = 0;
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return mix(h, bits);
    }
    case CL_RV_STRING: {
        uint64_t x = 1469598103934665603ULL;
        for (size_t i = 0; i < v->u.str.len; i++)
            x = (x ^ (uint8_t)v->u.str.s[i]) * 1099511628211ULL;
        return mix(h, x);
    }
    case CL_RV_ARRAY:
    case CL_RV_SET:
        for (size_t i = 0; i < v->u.arr.len; i++)
            h = mix(h, cl_rv_hash(v->u.arr.items[i]));
        return h;
    case CL_RV_OBJECT:
        for (size_t i = 0; i < v->u.obj.len; i++)
            h = mix(mix(h, cl_rv_hash(v->u.obj.keys[i])), cl_rv_hash(v->u.obj.vals[i]));
        return h;
    default:
        return h;
    }
}

const char *cl_rv_type_name(const struct cl_rv *v)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object", "set"};
    return v ? names[v->type] : "undefined";
}

bool cl_rv_as_int(const struct cl_rv *v, int64_t *out)
{
    if (!v || v->type != CL_RV_NUMBER)
        return false;
    if (v->is_int) {
        *out = v->u.num.i;
        return true;
    }
    return false;
}

double cl_rv_as_double(const struct cl_rv *v)
{
    if (!v || v->type != CL_RV_NUMBER)
        return 0;
    return v->is_int ? (double)v->u.num.i : v->u.num.d;
}

/* ---- conversions ---- */

struct cl_rv *cl_rv_from_json(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        return cl_rv_null();
    case JSON_TRUE:
        return cl_rv_bool(true);
    case JSON_FALSE:
        return cl_rv_bool(false);
    case JSON_INTEGER:
        return cl_rv_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return cl_rv_float(json_real_value(j));
    case JSON_STRING:
        return cl_rv_str(json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        struct cl_rv *a = cl_rv_array(json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            cl_rv_array_push(a, cl_rv_from_json(json_array_get(j, i)));
        return a;
    }
    case JSON_OBJECT: {
        struct cl_rv *o = cl_rv_object();
        size_t n = json_object_size(j);
        if (n) { /* sized once: no growth by doubling while the members go in */
            cl_rv_bytes_live += (int64_t)(n * 2 * sizeof(struct cl_rv *));
            o->u.obj.keys = cl_xmalloc(n * sizeof(struct cl_rv *));
            o->u.obj.vals = cl_xmalloc(n * sizeof(struct cl_rv *));
            o->u.obj.cap = n;
        }
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)(uintptr_t)j, k, val)
            cl_rv_obj_put(o, cl_rv_strz(k), cl_rv_from_json(val));
        return o;
    }
    }
    return cl_rv_null();
}

void cl_rv_format_number(const struct cl_rv *v, char *buf, size_t cap)
{
    if (v->big) {
        snprintf(buf, cap, "%s", v->u.num.big);
        return;
    }
    if (v->is_int) {
        snprintf(buf, cap, "%lld", (long long)v->u.num.i);
        return;
    }
    double d = v->u.num.d;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
}

json_t *cl_rv_to_json(const struct cl_rv *v)
{
    switch (v->type) {
    case CL_RV_NULL:
        return json_null();
    case CL_RV_BOOL:
        return json_boolean(v->u.b);
    case CL_RV_NUMBER:
        if (v->is_int)
            return json_integer((json_int_t)v->u.num.i);
        return json_real(v->u.num.d);
    case CL_RV_STRING:
        return json_stringn(v->u.str.s, v->u.str.len);
    case CL_RV_ARRAY:
    case CL_RV_SET: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->u.arr.len; i++)
            json_array_append_new(a, cl_rv_to_json(v->u.arr.items[i]));
        return a;
    }
    case CL_RV_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const struct cl_rv *k = v->u.obj.keys[i];
            if (k->type == CL_RV_STRING) {
                json_object_setn_new(o, k->u.str.s, k->u.str.len, cl_rv_to_json(v->u.obj.vals[i]));
            } else {
                char *kt = cl_rv_to_json_text(k);
                json_object_set_new(o, kt, cl_rv_to_json(v->u.obj.vals[i]));
                free(kt);
            }
        }
        return o;
    }
    }
    return json_null();
}

static void dump_str(struct cl_sbuf *b, const char *s, size_t len)
{
    cl_sbuf_addc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            cl_sbuf_adds(b, "\\\"");
            break;
        case '\\':
            cl_sbuf_adds(b, "\\\\");
            break;
        case '\n':
            cl_sbuf_adds(b, "\\n");
            break;
        case '\r':
            cl_sbuf_adds(b, "\\r");
            break;
        case '\t':
            cl_sbuf_adds(b, "\\t");
            break;
        default:
            if (c < 0x20)
                cl_sbuf_addf(b, "\\u%04x", c);
            else
                cl_sbuf_addc(b, (char)c);
        }
    }
    cl_sbuf_addc(b, '"');
}

static void dump(struct cl_sbuf *b, const struct cl_rv *v, bool json)
{
    char num[64];
    switch (v->type) {
    case CL_RV_NULL:
        cl_sbuf_adds(b, "null");
        break;
    case CL_RV_BOOL:
        cl_sbuf_adds(b, v->u.b ? "true" : "false");
        break;
    case CL_RV_NUMBER:
        if (v->big) {
            cl_sbuf_adds(b, v->u.num.big);
            break;
        }
        cl_rv_format_number(v, num, sizeof num);
        cl_sbuf_adds(b, num);
        break;
    case CL_RV_STRING:
        dump_str(b, v->u.str.s, v->u.str.len);
        break;
    case CL_RV_ARRAY:
    case CL_RV_SET:
        if (v->type == CL_RV_SET && !json && v->u.arr.len == 0) {
            cl_sbuf_adds(b, "set()");
            break;
        }
        cl_sbuf_addc(b, v->type == CL_RV_SET && !json ? '{' : '[');
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i)
                cl_sbuf_adds(b, json ? "," : ", ");
            dump(b, v->u.arr.items[i], json);
        }
        cl_sbuf_addc(b, v->type == CL_RV_SET && !json ? '}' : ']');
        break;
    case CL_RV_OBJECT:
        cl_sbuf_addc(b, '{');
        for (size_t i = 0; i < v->u.obj.len; i++) {
            if (i)
                cl_sbuf_adds(b, json ? "," : ", ");
            const struct cl_rv *k = v->u.obj.keys[i];
            if (json && k->type != CL_RV_STRING) {
                struct cl_sbuf kb = {0};
                dump(&kb, k, true);
                dump_str(b, kb.s, kb.len);
                cl_sbuf_free(&kb);
            } else {
                dump(b, k, json);
            }
            cl_sbuf_adds(b, json ? ":" : ": ");
            dump(b, v->u.obj.vals[i], json);
        }
        cl_sbuf_addc(b, '}');
        break;
    }
}

cl_str *cl_rv_dump(const struct cl_rv *v)
{
    struct cl_sbuf b = {0};
    dump(&b, v, false);
    return cl_sbuf_steal(&b);
}

cl_str *cl_rv_to_json_text(const struct cl_rv *v)
{
    struct cl_sbuf b = {0};
    dump(&b, v, true);
    return cl_sbuf_steal(&b);
}

/* ---- value.h for code that does not see the layout (rv.h inlines these in the engine) ---- */

struct cl_rv *(cl_rv_incref)(struct cl_rv *v)
{
    return cl_rv_incref_inline(v);
}

bool(cl_rv_is)(const struct cl_rv *v, enum cl_rv_type t)
{
    return cl_rv_is_inline(v, t);
}

bool(cl_rv_is_true)(const struct cl_rv *v)
{
    return cl_rv_is_true_inline(v);
}

enum cl_rv_type cl_rv_kind(const struct cl_rv *v)
{
    return (enum cl_rv_type)v->type;
}

const char *cl_rv_str_get(const struct cl_rv *v, size_t *len)
{
    if (!v || v->type != CL_RV_STRING)
        return NULL;
    if (len)
        *len = v->u.str.len;
    return v->u.str.s;
}

struct cl_rv *cl_rv_item(const struct cl_rv *v, size_t i)
{
    if (!v || (v->type != CL_RV_ARRAY && v->type != CL_RV_SET) || i >= v->u.arr.len)
        return NULL;
    return v->u.arr.items[i];
}

struct cl_rv *cl_rv_obj_key(const struct cl_rv *obj, size_t i)
{
    if (!obj || obj->type != CL_RV_OBJECT || i >= obj->u.obj.len)
        return NULL;
    return obj->u.obj.keys[i];
}

struct cl_rv *cl_rv_obj_val(const struct cl_rv *obj, size_t i)
{
    if (!obj || obj->type != CL_RV_OBJECT || i >= obj->u.obj.len)
        return NULL;
    return obj->u.obj.vals[i];
}
