/* SPDX-License-Identifier: Apache-2.0 */
/*
 * String builtins (OPA semantics: indexes and lengths in code points), sprintf, and the
 * regex and glob families. Regexes are compiled by PCRE2 with RE2 semantics enforced:
 * backreferences and lookaround are refused, and a match limit turns catastrophic
 * backtracking into an error. Compiled patterns are cached per thread.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

static int want_str(struct cl_rego_bctx *c, struct cl_rv *const *a, int n)
{
    for (int i = 0; i < n; i++)
        if (cl_rego_bi_want(c, a, i, CL_RV_STRING) < 0)
            return -1;
    return 0;
}

static bool has_prefix(const struct cl_rv *s, const struct cl_rv *p)
{
    return L(p) <= L(s) && memcmp(S(s), S(p), L(p)) == 0;
}

static bool has_suffix(const struct cl_rv *s, const struct cl_rv *p)
{
    return L(p) <= L(s) && memcmp(S(s) + L(s) - L(p), S(p), L(p)) == 0;
}

static const char *find(const char *h, size_t hl, const char *n, size_t nl)
{
    if (nl == 0)
        return h;
    if (nl > hl)
        return NULL;
    if (hl > 256) /* long texts: the two-way search */
        return memmem(h, hl, n, nl);
    /* short texts (nearly all): first byte with memchr, then compare */
    const char *end = h + hl - nl + 1;
    for (const char *p = h; p < end; p++) {
        p = memchr(p, n[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p + 1, n + 1, nl - 1) == 0)
            return p;
    }
    return NULL;
}

/* code point helpers */
static size_t cp_len(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

static size_t cp_offset(const char *s, size_t n, size_t cp)
{
    size_t c = 0, i = 0;
    for (; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (c == cp)
                return i;
            c++;
        }
    }
    return n;
}

static int bi_concat(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (a[1]->type != CL_RV_ARRAY && a[1]->type != CL_RV_SET)
        return cl_rego_bi_type_error(c, 1, "one of {array, set}", a[1]);
    size_t n = a[1]->u.arr.len, total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cl_rv *x = a[1]->u.arr.items[i];
        if (x->type != CL_RV_STRING)
            return cl_rego_bi_type_error(c, 1, "array of strings", x);
        total += L(x) + (i ? L(a[0]) : 0);
    }
    if (cl_rego_bi_reserve(c, total) < 0)
        return -2;
    char *p;
    struct cl_rv *r = cl_rv_str_alloc(total, &p);
    for (size_t i = 0; i < n; i++) {
        const struct cl_rv *x = a[1]->u.arr.items[i];
        if (i && L(a[0])) {
            memcpy(p, S(a[0]), L(a[0]));
            p += L(a[0]);
        }
        if (L(x)) {
            memcpy(p, S(x), L(x));
            p += L(x);
        }
    }
    return OUT(r);
}

static int bi_contains(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    return OUT(cl_rv_bool(find(S(a[0]), L(a[0]), S(a[1]), L(a[1])) != NULL));
}

static int bi_startswith(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    return OUT(cl_rv_bool(has_prefix(a[0], a[1])));
}

static int bi_endswith(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    return OUT(cl_rv_bool(has_suffix(a[0], a[1])));
}

/* NULL when the result would pass the memory cap (c's error set). */
static struct cl_rv *replace_n(struct cl_rego_bctx *c, const struct cl_rv *s, const char *old,
                               size_t ol, const char *nw, size_t nl, long n)
{
    if (ol && (n == 0 || !find(S(s), L(s), old, ol))) /* nothing to replace: the same string */
        return cl_rv_incref((struct cl_rv *)(uintptr_t)s);
    struct cl_sbuf b = {0};
    const char *p = S(s), *e = S(s) + L(s);
    if (ol == 0) {
        /* Go: insert at the start and after each code point */
        if (cl_rego_bi_reserve(c, (L(s) + 1) * (nl + 1)) < 0)
            return NULL;
        long k = 0;
        while (p <= e && (n < 0 || k < n)) {
            cl_sbuf_add(&b, nw, nl);
            k++;
            if (p == e)
                break;
            const char *q = p + 1;
            while (q < e && ((unsigned char)*q & 0xC0) == 0x80)
                q++;
            cl_sbuf_add(&b, p, (size_t)(q - p));
            p = q;
        }
        if (p < e)
            cl_sbuf_add(&b, p, (size_t)(e - p));
    } else {
        /* count first, then build the result in place */
        long k = 0;
        for (const char *q = p; q < e && (n < 0 || k < n); k++) {
            const char *f = find(q, (size_t)(e - q), old, ol);
            if (!f)
                break;
            q = f + ol;
        }
        /* k replacements of nl bytes each: reserved first, whatever k times nl comes to */
        size_t grow = 0, total = 0;
        if (!cl_mul_ok((size_t)k, nl, &grow) || !cl_add_ok(L(s) - (size_t)k * ol, grow, &total))
            total = SIZE_MAX;
        if (cl_rego_bi_reserve(c, total) < 0)
            return NULL;
        char *o;
        struct cl_rv *r = cl_rv_str_alloc(total, &o);
        for (long i = 0; i < k; i++) {
            const char *f = find(p, (size_t)(e - p), old, ol);
            memcpy(o, p, (size_t)(f - p));
            o += f - p;
            memcpy(o, nw, nl);
            o += nl;
            p = f + ol;
        }
        memcpy(o, p, (size_t)(e - p));
        return r;
    }
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return r;
}

static int bi_replace(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 3) < 0)
        return -1;
    struct cl_rv *r = replace_n(c, a[0], S(a[1]), L(a[1]), S(a[2]), L(a[2]), -1);
    return r ? OUT(r) : -2;
}

static int bi_replace_n(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    struct cl_rv *cur = cl_rv_incref(a[1]);
    const struct cl_rv *o = a[0];
    for (size_t i = 0; i < o->u.obj.len; i++) {
        const struct cl_rv *k = o->u.obj.keys[i], *v = o->u.obj.vals[i];
        if (k->type != CL_RV_STRING) {
            cl_rv_decref(cur);
            return cl_rego_bi_type_errorf(c, "operand 1 non-string key found in pattern object");
        }
        if (v->type != CL_RV_STRING) {
            cl_rv_decref(cur);
            return cl_rego_bi_type_errorf(c, "operand 1 non-string value found in pattern object");
        }
        struct cl_rv *n = replace_n(c, cur, S(k), L(k), S(v), L(v), -1);
        cl_rv_decref(cur);
        if (!n)
            return -2;
        cur = n;
    }
    return OUT(cur);
}

static int bi_split(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    struct cl_rv *r = cl_rv_array(0);
    const char *p = S(a[0]), *e = S(a[0]) + L(a[0]);
    if (L(a[1]) == 0) {
        while (p < e) {
            const char *q = p + 1;
            while (q < e && ((unsigned char)*q & 0xC0) == 0x80)
                q++;
            cl_rv_array_push(r, cl_rv_str(p, (size_t)(q - p)));
            p = q;
        }
        return OUT(r);
    }
    for (;;) {
        const char *f = find(p, (size_t)(e - p), S(a[1]), L(a[1]));
        if (!f) {
            cl_rv_array_push(r, cl_rv_str(p, (size_t)(e - p)));
            break;
        }
        cl_rv_array_push(r, cl_rv_str(p, (size_t)(f - p)));
        p = f + L(a[1]);
    }
    return OUT(r);
}

static int bi_substring(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t off, len;
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want_int(c, a, 1, &off) < 0 ||
        cl_rego_bi_want_int(c, a, 2, &len) < 0)
        return -1;
    if (off < 0)
        return cl_rego_bi_error(c, "negative offset");
    size_t n = cp_len(S(a[0]), L(a[0]));
    if ((uint64_t)off >= n)
        return OUT(cl_rv_str("", 0));
    size_t b0 = cp_offset(S(a[0]), L(a[0]), (size_t)off);
    size_t b1 = len < 0 || (uint64_t)off + (uint64_t)len >= n
                    ? L(a[0])
                    : cp_offset(S(a[0]), L(a[0]), (size_t)(off + len));
    return OUT(cl_rv_str(S(a[0]) + b0, b1 - b0));
}

static int bi_lower(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 1) < 0)
        return -1;
    struct cl_rv *r = cl_rv_str(S(a[0]), L(a[0]));
    for (size_t i = 0; i < L(r); i++)
        if (r->u.str.s[i] >= 'A' && r->u.str.s[i] <= 'Z')
            r->u.str.s[i] = (char)(r->u.str.s[i] + 32);
    return OUT(r);
}

static int bi_upper(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 1) < 0)
        return -1;
    struct cl_rv *r = cl_rv_str(S(a[0]), L(a[0]));
    for (size_t i = 0; i < L(r); i++)
        if (r->u.str.s[i] >= 'a' && r->u.str.s[i] <= 'z')
            r->u.str.s[i] = (char)(r->u.str.s[i] - 32);
    return OUT(r);
}

static bool in_cutset(const struct cl_rv *cut, const char *p, size_t n)
{
    return find(S(cut), L(cut), p, n) != NULL;
}

static size_t cp_next(const char *p, const char *e)
{
    const char *q = p + 1;
    while (q < e && ((unsigned char)*q & 0xC0) == 0x80)
        q++;
    return (size_t)(q - p);
}

static size_t cp_prev(const char *b, const char *p)
{
    const char *q = p - 1;
    while (q > b && ((unsigned char)*q & 0xC0) == 0x80)
        q--;
    return (size_t)(p - q);
}

static int trim_impl(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out, bool left,
                     bool right)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    const char *b = S(a[0]), *e = b + L(a[0]);
    while (left && b < e && in_cutset(a[1], b, cp_next(b, e)))
        b += cp_next(b, e);
    while (right && e > b && in_cutset(a[1], e - cp_prev(b, e), cp_prev(b, e)))
        e -= cp_prev(b, e);
    if (b == S(a[0]) && e == S(a[0]) + L(a[0]))
        return OUT(cl_rv_incref(a[0]));
    return OUT(cl_rv_str(b, (size_t)(e - b)));
}

static int bi_trim(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return trim_impl(c, a, out, true, true);
}
static int bi_trim_left(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return trim_impl(c, a, out, true, false);
}
static int bi_trim_right(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return trim_impl(c, a, out, false, true);
}

static int bi_trim_prefix(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    if (has_prefix(a[0], a[1]))
        return OUT(cl_rv_str(S(a[0]) + L(a[1]), L(a[0]) - L(a[1])));
    return OUT(cl_rv_incref(a[0]));
}

static int bi_trim_suffix(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    if (has_suffix(a[0], a[1]))
        return OUT(cl_rv_str(S(a[0]), L(a[0]) - L(a[1])));
    return OUT(cl_rv_incref(a[0]));
}

static int bi_trim_space(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 1) < 0)
        return -1;
    const char *b = S(a[0]), *e = b + L(a[0]);
    while (b < e && strchr(" \t\n\r\v\f", *b))
        b++;
    while (e > b && strchr(" \t\n\r\v\f", e[-1]))
        e--;
    return OUT(cl_rv_str(b, (size_t)(e - b)));
}

static int bi_indexof(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    if (L(a[1]) == 0)
        return cl_rego_bi_error(c, "empty search character");
    const char *f = find(S(a[0]), L(a[0]), S(a[1]), L(a[1]));
    if (!f)
        return OUT(cl_rv_int(-1));
    return OUT(cl_rv_int((int64_t)cp_len(S(a[0]), (size_t)(f - S(a[0])))));
}

static int bi_indexof_n(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    if (L(a[1]) == 0)
        return cl_rego_bi_error(c, "empty search character");
    struct cl_rv *r = cl_rv_array(0);
    const char *p = S(a[0]), *e = p + L(a[0]);
    while (p < e) {
        const char *f = find(p, (size_t)(e - p), S(a[1]), L(a[1]));
        if (!f)
            break;
        cl_rv_array_push(r, cl_rv_int((int64_t)cp_len(S(a[0]), (size_t)(f - S(a[0])))));
        p = f + 1;
    }
    return OUT(r);
}

static int bi_strings_reverse(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 1) < 0)
        return -1;
    struct cl_rv *r = cl_rv_str(S(a[0]), L(a[0]));
    const char *b = S(a[0]), *e = b + L(a[0]);
    char *w = r->u.str.s + L(a[0]);
    while (b < e) {
        size_t n = cp_next(b, e);
        w -= n;
        memcpy(w, b, n);
        b += n;
    }
    return OUT(r);
}

static int bi_strings_count(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    if (L(a[1]) == 0)
        return OUT(cl_rv_int((int64_t)cp_len(S(a[0]), L(a[0])) + 1));
    int64_t n = 0;
    const char *p = S(a[0]), *e = p + L(a[0]);
    const char *f;
    while (p < e && (f = find(p, (size_t)(e - p), S(a[1]), L(a[1])))) {
        n++;
        p = f + L(a[1]);
    }
    return OUT(cl_rv_int(n));
}

static int any_match(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                     bool prefix)
{
    const struct cl_rv *ss[1] = {a[0]}, *const *sv = ss;
    size_t sn = 1;
    if (a[0]->type == CL_RV_ARRAY || a[0]->type == CL_RV_SET) {
        sv = (const struct cl_rv *const *)a[0]->u.arr.items;
        sn = a[0]->u.arr.len;
    } else if (a[0]->type != CL_RV_STRING) {
        return cl_rego_bi_type_error(c, 0, "one of {string, set, array}", a[0]);
    }
    const struct cl_rv *ps[1] = {a[1]}, *const *pv = ps;
    size_t pn = 1;
    if (a[1]->type == CL_RV_ARRAY || a[1]->type == CL_RV_SET) {
        pv = (const struct cl_rv *const *)a[1]->u.arr.items;
        pn = a[1]->u.arr.len;
    } else if (a[1]->type != CL_RV_STRING) {
        return cl_rego_bi_type_error(c, 1, "one of {string, set, array}", a[1]);
    }
    for (size_t i = 0; i < sn; i++)
        if (sv[i]->type != CL_RV_STRING)
            return cl_rego_bi_type_errorf(
                c, "operand 1 must be array of strings but got array containing %s",
                cl_rv_type_name(sv[i]));
    for (size_t j = 0; j < pn; j++)
        if (pv[j]->type != CL_RV_STRING)
            return cl_rego_bi_type_errorf(
                c, "operand 2 must be array of strings but got array containing %s",
                cl_rv_type_name(pv[j]));
    for (size_t i = 0; i < sn; i++)
        for (size_t j = 0; j < pn; j++)
            if (prefix ? has_prefix(sv[i], pv[j]) : has_suffix(sv[i], pv[j]))
                return OUT(cl_rv_bool(true));
    return OUT(cl_rv_bool(false));
}
static int bi_any_prefix(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return any_match(c, a, out, true);
}
static int bi_any_suffix(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return any_match(c, a, out, false);
}

/* ---- sprintf (Go fmt subset) ---- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static void fmt_value(struct cl_sbuf *b, const struct cl_rv *v)
{
    if (v->type == CL_RV_STRING) {
        cl_sbuf_add(b, S(v), L(v));
        return;
    }
    char *s = cl_rv_dump(v);
    cl_sbuf_adds(b, s);
    free(s);
}

/* Go's fmt gives up on a width or precision that grows past a million (it prints
 * "%!(NOVERB)" and drops the rest of the format). Following it, and charging width plus
 * precision to the memory cap before printf runs, keeps one verb from asking for gigabytes. */
static bool spec_num(const char **p, const char *end, size_t *sum)
{
    size_t n = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++) {
        if (n > 1000000)
            return false;
        n = n * 10 + (size_t)(**p - '0');
    }
    *sum += n;
    return true;
}

/* Every run of digits in the flags: width and precision, and whatever else printf may read. */
static bool spec_size(const char *p, const char *end, size_t *sum)
{
    *sum = 0;
    while (p < end) {
        if (*p < '0' || *p > '9')
            p++;
        else if (!spec_num(&p, end, sum))
            return false;
    }
    return true;
}

static int bi_sprintf(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (a[1]->type != CL_RV_ARRAY)
        return cl_rego_bi_type_error(c, 1, "array", a[1]);
    struct cl_sbuf b = {0};
    const char *f = S(a[0]), *e = f + L(a[0]);
    size_t ai = 0;
    while (f < e) {
        if (*f != '%') {
            cl_sbuf_addc(&b, *f++);
            continue;
        }
        const char *spec = f++;
        while (f < e && *f && strchr("+-# 0123456789.", *f))
            f++;
        if (f >= e)
            break;
        size_t wp = 0;
        if (!spec_size(spec + 1, f, &wp)) {
            cl_sbuf_adds(&b, "%!(NOVERB)");
            break;
        }
        if (cl_rego_bi_reserve(c, b.len + wp) < 0) {
            cl_sbuf_free(&b);
            return -2;
        }
        char verb = *f++;
        if (verb == '%') {
            cl_sbuf_addc(&b, '%');
            continue;
        }
        if (ai >= a[1]->u.arr.len) {
            cl_sbuf_addf(&b, "%%!%c(MISSING)", verb);
            continue;
        }
        const struct cl_rv *v = a[1]->u.arr.items[ai++];
        char flags[32];
        size_t fl = (size_t)(f - 1 - spec);
        if (fl >= sizeof flags - 4)
            fl = sizeof flags - 4;
        memcpy(flags, spec, fl);
        flags[fl] = 0;
        char fmt[40];
        switch (verb) {
        case 'd':
            if (v->type == CL_RV_NUMBER && v->big == CL_RV_BIGINT) {
                cl_sbuf_adds(&b, v->u.num.big);
            } else if (v->type == CL_RV_NUMBER && v->is_int) {
                snprintf(fmt, sizeof fmt, "%slld", flags);
                cl_sbuf_addf(&b, fmt, (long long)v->u.num.i);
            } else if (v->type == CL_RV_NUMBER) {
                cl_sbuf_addf(&b, "%%!d(float64=");
                fmt_value(&b, v);
                cl_sbuf_addc(&b, ')');
            } else {
                fmt_value(&b, v);
            }
            break;
        case 'f':
        case 'e':
        case 'g':
        case 'E':
        case 'G':
            if (v->type == CL_RV_NUMBER) {
                snprintf(fmt, sizeof fmt, "%s%c", flags, verb);
                cl_sbuf_addf(&b, fmt, cl_rv_as_double(v));
            } else {
                fmt_value(&b, v);
            }
            break;
        case 'x':
        case 'X':
        case 'o':
        case 'b':
            if (v->type == CL_RV_NUMBER && v->is_int && verb != 'b') {
                snprintf(fmt, sizeof fmt, "%sll%c", flags, verb);
                cl_sbuf_addf(&b, fmt, (long long)v->u.num.i);
            } else if (v->type == CL_RV_STRING && (verb == 'x' || verb == 'X')) {
                for (size_t i = 0; i < L(v); i++)
                    cl_sbuf_addf(&b, verb == 'x' ? "%02x" : "%02X", (unsigned char)S(v)[i]);
            } else if (v->type == CL_RV_NUMBER && v->is_int && verb == 'b') {
                char bits[70];
                int p = 69;
                bits[p] = 0;
                uint64_t u = (uint64_t)v->u.num.i;
                do {
                    bits[--p] = (char)('0' + (u & 1));
                    u >>= 1;
                } while (u);
                cl_sbuf_adds(&b, bits + p);
            } else {
                fmt_value(&b, v);
            }
            break;
        case 'q':
            if (v->type == CL_RV_STRING) {
                char *s = cl_rv_dump(v);
                cl_sbuf_adds(&b, s);
                free(s);
            } else {
                fmt_value(&b, v);
            }
            break;
        case 't':
        case 's':
        case 'v':
        default:
            if (fl > 1 && v->type == CL_RV_STRING) {
                snprintf(fmt, sizeof fmt, "%ss", flags);
                char *z = cl_xstrndup(S(v), L(v));
                cl_sbuf_addf(&b, fmt, z);
                free(z);
            } else {
                fmt_value(&b, v);
            }
            break;
        }
        if (cl_rego_bi_reserve(c, b.len) < 0) {
            cl_sbuf_free(&b);
            return -2;
        }
    }
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

#pragma GCC diagnostic pop

/* ---- regex ---- */

#define RX_CACHE 64

struct rx_ent {
    char *pat;
    size_t len;
    pcre2_code *code;
};

/* A thread's regex state: compiled patterns, the match context holding the backtracking
 * limits, the one-pair match block of regex.match. Made on the thread's first regex call and
 * released when the thread ends (the key's destructor), so a caller that evaluates on
 * short-lived threads (one per request) leaves nothing behind. */
struct rx_tls {
    struct rx_ent cache[RX_CACHE];
    unsigned next;
    pcre2_match_context *mctx;
    pcre2_match_data *md1;
};

static _Thread_local struct rx_tls *rx_tls;
static pthread_key_t rx_key;
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static bool rx_key_ok;

static void rx_tls_free(void *p)
{
    struct rx_tls *t = p;
    for (unsigned i = 0; i < RX_CACHE; i++) {
        pcre2_code_free(t->cache[i].code);
        free(t->cache[i].pat);
    }
    pcre2_match_context_free(t->mctx);
    pcre2_match_data_free(t->md1);
    free(t);
}

static void rx_key_make(void)
{
    rx_key_ok = pthread_key_create(&rx_key, rx_tls_free) == 0;
}

/* This thread's state, made on first use; NULL (error recorded) when it cannot be. */
static struct rx_tls *rx_state(struct cl_rego_bctx *c)
{
    if (rx_tls)
        return rx_tls;
    pthread_once(&rx_once, rx_key_make);
    struct rx_tls *t = calloc(1, sizeof *t);
    if (!t || !rx_key_ok || pthread_setspecific(rx_key, t) != 0) {
        free(t);
        cl_rego_bi_error(c, "regex: out of memory for the thread's pattern cache");
        return NULL;
    }
    t->mctx = pcre2_match_context_create(NULL);
    t->md1 = pcre2_match_data_create(1, NULL);
    if (!t->mctx || !t->md1) {
        pthread_setspecific(rx_key, NULL);
        rx_tls_free(t);
        cl_rego_bi_error(c, "regex match: out of memory");
        return NULL;
    }
    pcre2_set_match_limit(t->mctx, 1000000);
    pcre2_set_depth_limit(t->mctx, 10000);
    return rx_tls = t;
}

/* RE2 has neither backreferences nor lookaround: refuse them like Go's regexp would. */
static const char *re2_unsupported(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\\') {
            if (p[i + 1] >= '1' && p[i + 1] <= '9')
                return "invalid escape sequence (backreference)";
            if (p[i + 1] == 'k' || p[i + 1] == 'g')
                return "invalid escape sequence (backreference)";
            i++;
            continue;
        }
        if (p[i] == '(' && p[i + 1] == '?' && i + 2 < n &&
            (p[i + 2] == '=' || p[i + 2] == '!' ||
             (p[i + 2] == '<' && i + 3 < n && (p[i + 3] == '=' || p[i + 3] == '!'))))
            return "invalid or unsupported Perl syntax (lookaround)";
    }
    return NULL;
}

static pcre2_code *rx_get(struct cl_rego_bctx *c, const struct cl_rv *pat)
{
    struct rx_tls *t = rx_state(c);
    if (!t)
        return NULL;
    for (unsigned i = 0; i < RX_CACHE; i++)
        if (t->cache[i].code && t->cache[i].len == L(pat) &&
            memcmp(t->cache[i].pat, S(pat), L(pat)) == 0)
            return t->cache[i].code;
    const char *why = re2_unsupported(S(pat), L(pat));
    if (why) {
        cl_rego_bi_error(c, "error parsing regexp: %s: `%.*s`", why,
                         (int)(L(pat) > 100 ? 100 : L(pat)), S(pat));
        return NULL;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)S(pat), L(pat),
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK * 0, &ec, &eo, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        cl_rego_bi_error(c, "error parsing regexp: %s: `%.*s`", (const char *)msg,
                         (int)(L(pat) > 100 ? 100 : L(pat)), S(pat));
        return NULL;
    }
    /* JIT when the platform has it (several times faster); matching falls back to the
     * interpreter if the JIT stack is exceeded */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    /* the copy first: the entry stays whole if the allocation abandons the evaluation */
    char *copy = cl_xstrndup(S(pat), L(pat));
    struct rx_ent *ent = &t->cache[t->next++ % RX_CACHE];
    if (ent->code) {
        pcre2_code_free(ent->code);
        free(ent->pat);
    }
    ent->pat = copy;
    ent->len = L(pat);
    ent->code = code;
    return code;
}

/* Runs one match from offset; returns >0 (pairs in ovector), 0 no match, <0 error. PCRE2
 * checks the UTF-8 of the whole subject from the offset on every call: loops over the matches
 * of one subject pass PCRE2_NO_UTF_CHECK after the first call (offset 0, which checked all of
 * it), or a megabyte of matches would cost a million passes over the text. */
static int rx_match(struct cl_rego_bctx *c, pcre2_code *code, const struct cl_rv *s, size_t off,
                    pcre2_match_data *md, uint32_t opts)
{
    /* rx_get made the thread's state, with the match context and its limits */
    pcre2_match_context *rx_mctx = rx_tls->mctx;
    int rc = pcre2_match(code, (PCRE2_SPTR)S(s), L(s), off, opts, md, rx_mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, (PCRE2_SPTR)S(s), L(s), off, opts | PCRE2_NO_JIT, md, rx_mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == 0) /* matched, more groups than the match block holds */
        return (int)pcre2_get_ovector_count(md);
    if (rc < 0) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return cl_rego_bi_error(c, "regex match: %s", (const char *)msg);
    }
    return rc;
}

static int bi_regex_match(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    pcre2_code *code = rx_get(c, a[0]);
    if (!code)
        return -1;
    /* a yes/no match needs one pair: one match block per thread serves every pattern */
    int rc = rx_match(c, code, a[1], 0, rx_tls->md1, 0);
    if (rc < 0)
        return -1;
    return OUT(cl_rv_bool(rc > 0));
}

static int bi_regex_is_valid(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (a[0]->type != CL_RV_STRING)
        return OUT(cl_rv_bool(false));
    if (re2_unsupported(S(a[0]), L(a[0])))
        return OUT(cl_rv_bool(false));
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)S(a[0]), L(a[0]), PCRE2_UTF, &ec, &eo, NULL);
    (void)c;
    if (!code)
        return OUT(cl_rv_bool(false));
    pcre2_code_free(code);
    return OUT(cl_rv_bool(true));
}

/* All matches (non-overlapping, advancing past empty matches), up to n (n < 0: all). Each
 * match is an array of group strings; unmatched groups are "". */
static int rx_all(struct cl_rego_bctx *c, const struct cl_rv *pat, const struct cl_rv *s, int64_t n,
                  bool groups, struct cl_rv **out)
{
    pcre2_code *code = rx_get(c, pat);
    if (!code)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    struct cl_rv *r = cl_rv_array(0);
    size_t off = 0;
    while (off <= L(s) && (n < 0 || (int64_t)r->u.arr.len < n)) {
        int rc = rx_match(c, code, s, off, md, off ? PCRE2_NO_UTF_CHECK : 0);
        if (rc < 0) {
            pcre2_match_data_free(md);
            cl_rv_decref(r);
            return -1;
        }
        if (rc == 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t ng = pcre2_get_ovector_count(md);
        if (groups) {
            struct cl_rv *m = cl_rv_array(ng);
            for (uint32_t g = 0; g < ng; g++) {
                if (ov[2 * g] == PCRE2_UNSET)
                    cl_rv_array_push(m, cl_rv_str("", 0));
                else
                    cl_rv_array_push(m, cl_rv_str(S(s) + ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
            }
            cl_rv_array_push(r, m);
        } else {
            cl_rv_array_push(r, cl_rv_str(S(s) + ov[0], ov[1] - ov[0]));
        }
        if (ov[1] == ov[0]) {
            if (ov[1] >= L(s))
                break;
            off = ov[1] + cp_next(S(s) + ov[1], S(s) + L(s));
        } else {
            off = ov[1];
        }
    }
    pcre2_match_data_free(md);
    return OUT(r);
}

static int bi_regex_find_all_sub(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t n;
    if (want_str(c, a, 2) < 0 || cl_rego_bi_want_int(c, a, 2, &n) < 0)
        return -1;
    return rx_all(c, a[0], a[1], n, true, out);
}

static int bi_regex_find_n(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t n;
    if (want_str(c, a, 2) < 0 || cl_rego_bi_want_int(c, a, 2, &n) < 0)
        return -1;
    return rx_all(c, a[0], a[1], n, false, out);
}

static int bi_regex_split(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 2) < 0)
        return -1;
    pcre2_code *code = rx_get(c, a[0]);
    if (!code)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    struct cl_rv *r = cl_rv_array(0);
    size_t off = 0, last = 0;
    const struct cl_rv *s = a[1];
    while (off <= L(s)) {
        int rc = rx_match(c, code, s, off, md, off ? PCRE2_NO_UTF_CHECK : 0);
        if (rc < 0) {
            pcre2_match_data_free(md);
            cl_rv_decref(r);
            return -1;
        }
        if (rc == 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {
            if (ov[0] >= L(s))
                break;
            if (ov[0] > 0 || L(s) == 0) {
                cl_rv_array_push(r, cl_rv_str(S(s) + last, ov[0] - last));
                last = ov[0];
            }
            off = ov[1] + cp_next(S(s) + ov[1], S(s) + L(s));
            continue;
        }
        cl_rv_array_push(r, cl_rv_str(S(s) + last, ov[0] - last));
        last = off = ov[1];
    }
    cl_rv_array_push(r, cl_rv_str(S(s) + last, L(s) - last));
    pcre2_match_data_free(md);
    return OUT(r);
}

static int bi_regex_replace(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 3) < 0)
        return -1;
    pcre2_code *code = rx_get(c, a[1]);
    if (!code)
        return -1;
    /* Go's ReplaceAllString expands $1 / ${name}; PCRE2 uses the same $ syntax */
    size_t cap = L(a[0]) * 2 + L(a[2]) * 4 + 256;
    for (int tries = 0; tries < 8; tries++) {
        if (cl_rego_bi_reserve(c, cap) < 0)
            return -2;
        PCRE2_UCHAR *buf = cl_xmalloc(cap);
        PCRE2_SIZE olen = cap;
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        pcre2_set_match_limit(mc, 1000000);
        int rc = pcre2_substitute(code, (PCRE2_SPTR)S(a[0]), L(a[0]), 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                                      PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_UNKNOWN_UNSET,
                                  NULL, mc, (PCRE2_SPTR)S(a[2]), L(a[2]), buf, &olen);
        pcre2_match_context_free(mc);
        if (rc == PCRE2_ERROR_NOMEMORY) {
            free(buf);
            cap = olen + 1;
            continue;
        }
        if (rc < 0) {
            free(buf);
            return OUT(cl_rv_incref(a[0]));
        }
        struct cl_rv *r = cl_rv_str((const char *)buf, olen);
        free(buf);
        return OUT(r);
    }
    return cl_rego_bi_error(c, "replacement too large");
}

static int bi_regex_template_match(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                   struct cl_rv **out)
{
    if (want_str(c, a, 4) < 0)
        return -1;
    /* pattern: literal text with regexes between the delimiters */
    const struct cl_rv *tpl = a[0], *s = a[1], *d0 = a[2], *d1 = a[3];
    if (L(d0) != 1 || L(d1) != 1)
        return cl_rego_bi_error(c, "delimiters must be single characters");
    struct cl_sbuf re = {0};
    cl_sbuf_addc(&re, '^');
    for (size_t i = 0; i < L(tpl);) {
        char ch = S(tpl)[i];
        if (ch == S(d0)[0]) {
            size_t j = i + 1;
            int depth = 1;
            for (; j < L(tpl); j++) {
                if (S(tpl)[j] == S(d0)[0])
                    depth++;
                else if (S(tpl)[j] == S(d1)[0] && --depth == 0)
                    break;
            }
            if (j >= L(tpl)) {
                cl_sbuf_free(&re);
                return cl_rego_bi_error(c, "unbalanced braces in template");
            }
            cl_sbuf_addc(&re, '(');
            cl_sbuf_add(&re, S(tpl) + i + 1, j - i - 1);
            cl_sbuf_addc(&re, ')');
            i = j + 1;
            continue;
        }
        if (strchr("\\.+*?()|[]{}^$", ch))
            cl_sbuf_addc(&re, '\\');
        cl_sbuf_addc(&re, ch);
        i++;
    }
    cl_sbuf_addc(&re, '$');
    struct cl_rv *pat = cl_rv_str(re.s, re.len);
    cl_sbuf_free(&re);
    struct cl_rv *args[2] = {pat, (struct cl_rv *)(uintptr_t)s};
    int rc = bi_regex_match(c, args, out);
    cl_rv_decref(pat);
    return rc;
}

/* ---- glob ---- */

/* Backtracking over stars is exponential in the worst case ("*a*a*a...b"): every call spends
 * one unit of *work and the match gives up when it runs out. */
#define GLOB_MAX_WORK 1000000L

static bool glob_rec(const char *p, const char *pe, const char *s, const char *se,
                     const char *delims, size_t nd, int depth, long *work)
{
    if (depth > 1000 || --*work < 0)
        return false;
    while (p < pe) {
        char ch = *p;
        if (ch == '*') {
            bool super = p + 1 < pe && p[1] == '*';
            p += super ? 2 : 1;
            for (const char *t = s;; t++) {
                if (glob_rec(p, pe, t, se, delims, nd, depth + 1, work))
                    return true;
                if (t >= se)
                    return false;
                if (!super && nd && memchr(delims, *t, nd))
                    return false;
            }
        }
        if (s >= se)
            return false;
        if (ch == '?') {
            if (nd && memchr(delims, *s, nd))
                return false;
            s += cp_next(s, se);
            p++;
            continue;
        }
        if (ch == '[') {
            const char *q = p + 1;
            bool neg = q < pe && (*q == '!' || *q == '^');
            if (neg)
                q++;
            bool m = false;
            const char *start = q;
            while (q < pe && (*q != ']' || q == start)) {
                if (q + 2 < pe && q[1] == '-' && q[2] != ']') {
                    if (*s >= q[0] && *s <= q[2])
                        m = true;
                    q += 3;
                } else {
                    if (*s == *q)
                        m = true;
                    q++;
                }
            }
            if (q >= pe || m == neg)
                return false;
            p = q + 1;
            s++;
            continue;
        }
        if (ch == '{') {
            const char *q = p + 1;
            int d = 1;
            const char *end = q;
            while (end < pe && d) {
                if (*end == '{')
                    d++;
                else if (*end == '}')
                    d--;
                if (d)
                    end++;
            }
            if (end >= pe)
                return false;
            const char *alt = q;
            d = 0;
            for (const char *x = q; x <= end; x++) {
                if (*x == '{')
                    d++;
                if (x == end || (*x == ',' && d == 0)) {
                    size_t al = (size_t)(x - alt), rl = (size_t)(pe - end - 1);
                    char *np = cl_xmalloc(al + rl + 1);
                    memcpy(np, alt, al);
                    memcpy(np + al, end + 1, rl);
                    bool ok = glob_rec(np, np + al + rl, s, se, delims, nd, depth + 1, work);
                    free(np);
                    if (ok)
                        return true;
                    alt = x + 1;
                }
                if (*x == '}')
                    d--;
            }
            return false;
        }
        if (ch == '\\' && p + 1 < pe) {
            p++;
            ch = *p;
        }
        if (*s != ch)
            return false;
        s++;
        p++;
    }
    return s == se;
}

static int bi_glob_match(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 2, CL_RV_STRING) < 0)
        return -1;
    char delims[64];
    size_t nd = 0;
    if (a[1]->type == CL_RV_NULL) {
        nd = 0;
    } else if (a[1]->type == CL_RV_ARRAY) {
        if (a[1]->u.arr.len == 0)
            delims[nd++] = '.';
        for (size_t i = 0; i < a[1]->u.arr.len && nd < sizeof delims; i++) {
            const struct cl_rv *d = a[1]->u.arr.items[i];
            if (d->type != CL_RV_STRING)
                return cl_rego_bi_type_error(c, 1, "array of strings", d);
            if (L(d))
                delims[nd++] = S(d)[0];
        }
    } else {
        return cl_rego_bi_type_error(c, 1, "one of {array, null}", a[1]);
    }
    long work = GLOB_MAX_WORK;
    bool m = glob_rec(S(a[0]), S(a[0]) + L(a[0]), S(a[2]), S(a[2]) + L(a[2]), delims, nd, 0, &work);
    if (work < 0)
        return cl_rego_bi_error(c, "pattern too costly to match (more than %ld steps)",
                                GLOB_MAX_WORK);
    return OUT(cl_rv_bool(m));
}

static int bi_glob_quote_meta(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_str(c, a, 1) < 0)
        return -1;
    struct cl_sbuf b = {0};
    for (size_t i = 0; i < L(a[0]); i++) {
        if (strchr("*?\\[]{}", S(a[0])[i]))
            cl_sbuf_addc(&b, '\\');
        cl_sbuf_addc(&b, S(a[0])[i]);
    }
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

const struct cl_rego_builtin cl_rego_builtins_strings[] = {
    {"concat", 2, bi_concat, 0},
    {"contains", 2, bi_contains, 0},
    {"startswith", 2, bi_startswith, 0},
    {"endswith", 2, bi_endswith, 0},
    {"replace", 3, bi_replace, 0},
    {"strings.replace_n", 2, bi_replace_n, 0},
    {"split", 2, bi_split, 0},
    {"substring", 3, bi_substring, 0},
    {"lower", 1, bi_lower, 0},
    {"upper", 1, bi_upper, 0},
    {"trim", 2, bi_trim, 0},
    {"trim_left", 2, bi_trim_left, 0},
    {"trim_right", 2, bi_trim_right, 0},
    {"trim_prefix", 2, bi_trim_prefix, 0},
    {"trim_suffix", 2, bi_trim_suffix, 0},
    {"trim_space", 1, bi_trim_space, 0},
    {"indexof", 2, bi_indexof, 0},
    {"indexof_n", 2, bi_indexof_n, 0},
    {"strings.reverse", 1, bi_strings_reverse, 0},
    {"strings.count", 2, bi_strings_count, 0},
    {"strings.any_prefix_match", 2, bi_any_prefix, 0},
    {"strings.any_suffix_match", 2, bi_any_suffix, 0},
    {"sprintf", 2, bi_sprintf, 0},
    {"regex.match", 2, bi_regex_match, 0},
    {"re_match", 2, bi_regex_match, 0},
    {"regex.is_valid", 1, bi_regex_is_valid, 0},
    {"regex.find_all_string_submatch_n", 3, bi_regex_find_all_sub, 0},
    {"regex.find_n", 3, bi_regex_find_n, 0},
    {"regex.split", 2, bi_regex_split, 0},
    {"regex.replace", 3, bi_regex_replace, 0},
    {"regex.template_match", 4, bi_regex_template_match, 0},
    {"glob.match", 3, bi_glob_match, 0},
    {"glob.quote_meta", 1, bi_glob_quote_meta, 0},
    {NULL, 0, NULL, 0},
};
