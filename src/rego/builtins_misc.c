/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small builtin families with OPA's semantics: units.parse / units.parse_bytes (SI and IEC
 * suffixes), semver.is_valid / semver.compare, uuid.rfc4122 / uuid.parse, and
 * graph.reachable / graph.reachable_paths. Error texts follow OPA's, including OPA's habit of
 * naming the builtin inside the message (the evaluator prefixes it once more, as OPA does).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

/* graph.reachable_paths explores every simple path; this caps the explored path steps. */
#define CL_REGO_MAX_GRAPH_PATH_STEPS (1u << 20)

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* ---- units ---- */

/* Splits s into the number part and the unit at the first character that cannot continue a
 * number (digits, '.', and an exponent 'e'/'E' followed by a digit or sign). Returns false
 * when an exponent has more than 6 digits. */
static bool split_num_unit(const char *s, size_t n, size_t *numlen)
{
    size_t i = 0;
    for (; i < n; i++) {
        char ch = s[i];
        if (!is_digit(ch) && ch != '.' && ch != 'e' && ch != 'E' && ch != '+' && ch != '-')
            break;
        if (ch == 'e' || ch == 'E') {
            if (i == n - 1 || (!is_digit(s[i + 1]) && s[i + 1] != '+' && s[i + 1] != '-'))
                break;
            if (s[i + 1] == '+' || s[i + 1] == '-')
                i++;
            size_t j = i + 1;
            while (j < n && is_digit(s[j]))
                j++;
            if (j - (i + 1) > 6)
                return false;
        }
    }
    *numlen = i;
    return true;
}

/* A decimal number: value = (neg ? -1 : 1) * digits * 10^exp. digits has no leading zeros
 * ("" for zero). */
struct dec {
    char *digits;
    size_t n;
    int64_t exp;
    bool neg;
};

/* Parses [+-]? (D+ (. D*)? | . D+) ([eE] [+-]? D+)? exactly (the float syntax of Go's
 * math/big for the characters units.* lets through). */
static bool dec_parse(const char *s, size_t n, struct dec *d)
{
    size_t i = 0;
    memset(d, 0, sizeof *d);
    if (i < n && (s[i] == '+' || s[i] == '-'))
        d->neg = s[i++] == '-';
    d->digits = cl_xmalloc(n + 1);
    size_t mant = 0, frac = 0;
    bool dot = false;
    for (; i < n && (is_digit(s[i]) || (s[i] == '.' && !dot)); i++) {
        if (s[i] == '.') {
            dot = true;
            continue;
        }
        mant++;
        if (dot)
            frac++;
        if (d->n || s[i] != '0')
            d->digits[d->n++] = s[i];
    }
    if (mant == 0)
        goto bad;
    int64_t e = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        size_t k = 0;
        for (; i < n && is_digit(s[i]); i++, k++)
            if (e < 100000000)
                e = e * 10 + (s[i] - '0');
        if (k == 0)
            goto bad;
        if (eneg)
            e = -e;
    }
    if (i != n)
        goto bad;
    d->exp = e - (int64_t)frac;
    d->digits[d->n] = 0;
    return true;
bad:
    free(d->digits);
    d->digits = NULL;
    return false;
}

/* digits *= m (m > 0). */
static void dec_mul(struct dec *d, uint64_t m)
{
    if (d->n == 0)
        return;
    char *r = cl_xmalloc(d->n + 22);
    size_t rn = 0;
    uint64_t carry = 0; /* 9 * m + carry <= 10 * 2^60 fits */
    for (size_t i = d->n; i-- > 0;) {
        uint64_t x = (uint64_t)(d->digits[i] - '0') * m + carry;
        r[rn++] = (char)('0' + (int)(x % 10));
        carry = x / 10;
    }
    while (carry) {
        r[rn++] = (char)('0' + (int)(carry % 10));
        carry /= 10;
    }
    for (size_t i = 0; i < rn / 2; i++) {
        char t = r[i];
        r[i] = r[rn - 1 - i];
        r[rn - 1 - i] = t;
    }
    r[rn] = 0;
    free(d->digits);
    d->digits = r;
    d->n = rn;
}

/* An integer given by its decimal digits: int64 when it fits, else the nearest double. */
static struct cl_rv *int_from_digits(bool neg, const char *digits, size_t n)
{
    if (n == 0)
        return cl_rv_int(0);
    if (n <= 19) {
        uint64_t u = 0;
        for (size_t i = 0; i < n; i++)
            u = u * 10 + (uint64_t)(digits[i] - '0');
        if (!neg && u <= (uint64_t)INT64_MAX)
            return cl_rv_int((int64_t)u);
        if (neg && u <= (uint64_t)INT64_MAX + 1)
            return cl_rv_int(u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u);
    }
    char *t = cl_xmalloc(n + 2);
    t[0] = '-';
    memcpy(t + 1, digits, n);
    t[n + 1] = 0;
    double v = strtod(neg ? t : t + 1, NULL);
    free(t);
    return isfinite(v) ? cl_rv_float(v) : NULL;
}

/* The exact value of d as a Rego number: integers exactly (int64) or as the nearest double;
 * other values rounded to 10 decimals (half away from zero) like big.Rat.FloatString(10).
 * NULL when the value does not fit a double. */
static struct cl_rv *dec_value(const struct dec *d)
{
    if (d->n == 0)
        return cl_rv_int(0);
    if (d->exp >= 0) {
        if ((uint64_t)d->exp + d->n > 400)
            return NULL;
        size_t n = d->n + (size_t)d->exp;
        char *t = cl_xmalloc(n + 1);
        memcpy(t, d->digits, d->n);
        memset(t + d->n, '0', (size_t)d->exp);
        struct cl_rv *r = int_from_digits(d->neg, t, n);
        free(t);
        return r;
    }
    /* exp < 0: split into integer and fraction digits */
    uint64_t fd = (uint64_t)(-d->exp);
    if (fd > d->n + 11) /* |value| < 10^-11: rounds to zero at 10 decimals */
        return cl_rv_int(0);
    size_t fn = (size_t)fd, in = d->n > fn ? d->n - fn : 0;
    /* fraction digits, left-padded with zeros */
    char *frac = cl_xmalloc(fn + 1);
    size_t pad = fn > d->n ? fn - d->n : 0;
    memset(frac, '0', pad);
    memcpy(frac + pad, d->digits + in, fn - pad);
    bool zero = true;
    for (size_t i = 0; i < fn; i++)
        zero = zero && frac[i] == '0';
    if (zero) {
        free(frac);
        return int_from_digits(d->neg, d->digits, in);
    }
    /* round to 10 fraction digits: the 11th digit decides (half away from zero); a leading
     * '0' absorbs a carry out of the integer digits */
    bool up = fn > 10 && frac[10] >= '5';
    char *t = cl_xmalloc(in + 16);
    size_t k = 0;
    t[k++] = '0';
    memcpy(t + k, d->digits, in);
    k += in;
    for (size_t i = 0; i < 10; i++)
        t[k++] = i < fn ? frac[i] : '0';
    free(frac);
    for (size_t i = k; up && i-- > 0;) {
        up = t[i] == '9';
        t[i] = up ? '0' : (char)(t[i] + 1);
    }
    char *txt = cl_xmalloc(k + 4);
    snprintf(txt, k + 4, "%s%.*s.%.*s", d->neg ? "-" : "", (int)(k - 10), t, 10, t + k - 10);
    free(t);
    double v = strtod(txt, NULL);
    free(txt);
    return isfinite(v) ? cl_rv_float(v) : NULL;
}

/* Copy of the operand without '"' characters (OPA strips escaped quotes), optionally
 * lower-cased. */
static char *units_text(const struct cl_rv *v, bool lower, size_t *n)
{
    char *t = cl_xmalloc(L(v) + 1);
    size_t k = 0;
    for (size_t i = 0; i < L(v); i++) {
        char ch = S(v)[i];
        if (ch == '"')
            continue;
        if (lower && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        t[k++] = ch;
    }
    t[k] = 0;
    *n = k;
    return t;
}

struct unit {
    const char *name;
    uint64_t mult; /* 0: milli */
};

static const struct unit si_units[] = {
    {"", 1},
    {"m", 0},
    {"k", 1000ULL},
    {"K", 1000ULL},
    {"ki", 1ULL << 10},
    {"Ki", 1ULL << 10},
    {"M", 1000000ULL},
    {"mi", 1ULL << 20},
    {"Mi", 1ULL << 20},
    {"g", 1000000000ULL},
    {"G", 1000000000ULL},
    {"gi", 1ULL << 30},
    {"Gi", 1ULL << 30},
    {"t", 1000000000000ULL},
    {"T", 1000000000000ULL},
    {"ti", 1ULL << 40},
    {"Ti", 1ULL << 40},
    {"p", 1000000000000000ULL},
    {"P", 1000000000000000ULL},
    {"pi", 1ULL << 50},
    {"Pi", 1ULL << 50},
    {"e", 1000000000000000000ULL},
    {"E", 1000000000000000000ULL},
    {"ei", 1ULL << 60},
    {"Ei", 1ULL << 60},
};

static const struct unit byte_units[] = {
    {"", 1},
    {"kb", 1000ULL},
    {"k", 1000ULL},
    {"kib", 1ULL << 10},
    {"ki", 1ULL << 10},
    {"mb", 1000000ULL},
    {"m", 1000000ULL},
    {"mib", 1ULL << 20},
    {"mi", 1ULL << 20},
    {"gb", 1000000000ULL},
    {"g", 1000000000ULL},
    {"gib", 1ULL << 30},
    {"gi", 1ULL << 30},
    {"tb", 1000000000000ULL},
    {"t", 1000000000000ULL},
    {"tib", 1ULL << 40},
    {"ti", 1ULL << 40},
    {"pb", 1000000000000000ULL},
    {"p", 1000000000000000ULL},
    {"pib", 1ULL << 50},
    {"pi", 1ULL << 50},
    {"eb", 1000000000000000000ULL},
    {"e", 1000000000000000000ULL},
    {"eib", 1ULL << 60},
    {"ei", 1ULL << 60},
};

static const struct unit *find_unit(const struct unit *tab, size_t n, const char *u)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tab[i].name, u) == 0)
            return &tab[i];
    return NULL;
}

static int bi_units_parse(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    size_t n, nl;
    CL_AUTO(cl_str) *s = units_text(a[0], false, &n);
    if (memchr(s, ' ', n))
        return cl_rego_bi_error(c, "units.parse: spaces not allowed in resource strings");
    if (!split_num_unit(s, n, &nl))
        return cl_rego_bi_error(c, "units.parse: exponent too large");
    if (nl == 0)
        return cl_rego_bi_error(c, "units.parse: no amount provided");
    /* only the letters after the first are case-insensitive: 'm' (milli) vs 'M' (mega) */
    char *unit = s + nl;
    for (char *p = unit + (*unit ? 1 : 0); *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const struct unit *u = find_unit(si_units, CL_ARRAY_LEN(si_units), unit);
    if (!u)
        return cl_rego_bi_error(c, "units.parse: unit %.*s not recognized",
                                (int)(strlen(unit) > 64 ? 64 : strlen(unit)), unit);
    struct dec d;
    if (!dec_parse(s, nl, &d))
        return cl_rego_bi_error(c, "units.parse: could not parse amount to a number");
    if (u->mult == 0)
        d.exp -= 3;
    else
        dec_mul(&d, u->mult);
    struct cl_rv *r = dec_value(&d);
    free(d.digits);
    if (!r)
        return cl_rego_bi_error(c, "units.parse: number too large");
    return OUT(r);
}

static int bi_units_parse_bytes(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    size_t n, nl;
    CL_AUTO(cl_str) *s = units_text(a[0], true, &n);
    if (memchr(s, ' ', n))
        return cl_rego_bi_error(c, "units.parse_bytes: spaces not allowed in resource strings");
    if (!split_num_unit(s, n, &nl))
        return cl_rego_bi_error(c, "units.parse_bytes: exponent too large");
    if (nl == 0)
        return cl_rego_bi_error(c, "units.parse_bytes: no byte amount provided");
    const struct unit *u = find_unit(byte_units, CL_ARRAY_LEN(byte_units), s + nl);
    if (!u)
        return cl_rego_bi_error(c, "units.parse_bytes: byte unit %.*s not recognized",
                                (int)(strlen(s + nl) > 64 ? 64 : strlen(s + nl)), s + nl);
    struct dec d;
    if (!dec_parse(s, nl, &d))
        return cl_rego_bi_error(c, "units.parse_bytes: could not parse byte amount to a number");
    free(d.digits);
    /* OPA multiplies 64-bit-mantissa binary floats (math/big, rounding to nearest even) and
     * truncates: x87 long double has that very mantissa, and strtold rounds correctly. */
    char save = s[nl];
    s[nl] = 0;
    long double v = strtold(s, NULL) * (long double)u->mult;
    s[nl] = save;
    v = truncl(v);
    if (!isfinite(v))
        return cl_rego_bi_error(c, "units.parse_bytes: number too large");
    if (v >= -9223372036854775808.0L && v < 9223372036854775808.0L)
        return OUT(cl_rv_int((int64_t)v));
    return OUT(cl_rv_float((double)v));
}

/* ---- semver ---- */

struct semver {
    int64_t major, minor, patch;
    const char *pre; /* not NUL-terminated */
    size_t prelen;
};

/* [0-9A-Za-z-]+(\.[0-9A-Za-z-]+)* */
static bool semver_ident_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    bool empty = true;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (empty)
                return false;
            empty = true;
        } else if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= 'A' && ch <= 'Z') || ch == '-') {
            empty = false;
        } else {
            return false;
        }
    }
    return !empty;
}

/* Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, range-checked. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i++;
    }
    if (i == n)
        return false;
    uint64_t u = 0;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        if (u > (UINT64_MAX - 9) / 10)
            return false;
        u = u * 10 + (uint64_t)(s[i] - '0');
    }
    if (!neg && u > (uint64_t)INT64_MAX)
        return false;
    if (neg && u > (uint64_t)INT64_MAX + 1)
        return false;
    *out = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
    return true;
}

static bool semver_parse(const char *s, size_t n, struct semver *v)
{
    memset(v, 0, sizeof *v);
    if (n > 0 && s[0] == 'v') {
        s++;
        n--;
    }
    const char *plus = memchr(s, '+', n);
    if (plus) {
        if (!semver_ident_ok(plus + 1, (size_t)(s + n - plus - 1)) && plus + 1 != s + n)
            return false;
        n = (size_t)(plus - s);
    }
    const char *dash = memchr(s, '-', n);
    if (dash) {
        v->pre = dash + 1;
        v->prelen = (size_t)(s + n - dash - 1);
        if (v->prelen && !semver_ident_ok(v->pre, v->prelen))
            return false;
        n = (size_t)(dash - s);
    }
    const char *d1 = memchr(s, '.', n);
    if (!d1)
        return false;
    const char *d2 = memchr(d1 + 1, '.', (size_t)(s + n - d1 - 1));
    if (!d2 || memchr(d2 + 1, '.', (size_t)(s + n - d2 - 1)))
        return false;
    return parse_i64(s, (size_t)(d1 - s), &v->major) &&
           parse_i64(d1 + 1, (size_t)(d2 - d1 - 1), &v->minor) &&
           parse_i64(d2 + 1, (size_t)(s + n - d2 - 1), &v->patch);
}

static bool all_decimal(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return n > 0;
}

/* Go's strconv.Atoi as semver uses it: clamped on overflow. */
static int64_t atoi_clamped(const char *s, size_t n)
{
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > ((uint64_t)INT64_MAX - 9) / 10)
            return INT64_MAX;
        u = u * 10 + (uint64_t)(s[i] - '0');
    }
    return (int64_t)u;
}

static int cmp3(int64_t x, int64_t y)
{
    return x > y ? 1 : x < y ? -1 : 0;
}

static int semver_cmp(const struct semver *a, const struct semver *b)
{
    int r = cmp3(a->major, b->major);
    if (!r)
        r = cmp3(a->minor, b->minor);
    if (!r)
        r = cmp3(a->patch, b->patch);
    if (r)
        return r;
    if (a->prelen == b->prelen && (a->prelen == 0 || memcmp(a->pre, b->pre, a->prelen) == 0))
        return 0;
    if (a->prelen == 0)
        return 1;
    if (b->prelen == 0)
        return -1;
    const char *pa = a->pre, *ea = a->pre + a->prelen, *pb = b->pre, *eb = b->pre + b->prelen;
    while (pa < ea || pb < eb) {
        if (pa >= ea)
            return -1;
        if (pb >= eb)
            return 1;
        const char *qa = memchr(pa, '.', (size_t)(ea - pa)),
                   *qb = memchr(pb, '.', (size_t)(eb - pb));
        size_t la = (size_t)((qa ? qa : ea) - pa), lb = (size_t)((qb ? qb : eb) - pb);
        bool ia = all_decimal(pa, la), ib = all_decimal(pb, lb);
        if (ia != ib)
            return ia ? -1 : 1;
        if (ia) {
            r = cmp3(atoi_clamped(pa, la), atoi_clamped(pb, lb));
        } else {
            int m = memcmp(pa, pb, la < lb ? la : lb);
            r = m ? (m > 0 ? 1 : -1) : cmp3((int64_t)la, (int64_t)lb);
        }
        if (r)
            return r;
        pa = qa ? qa + 1 : ea;
        pb = qb ? qb + 1 : eb;
        if (qa && !qb)
            return 1;
        if (!qa && qb)
            return -1;
    }
    return 0; /* equal precedence ("01" and "1"); OPA itself never returns here */
}

static int bi_semver_is_valid(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    struct semver v;
    return OUT(cl_rv_bool(a[0]->type == CL_RV_STRING && semver_parse(S(a[0]), L(a[0]), &v)));
}

static int bi_semver_compare(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    struct semver x, y;
    for (int i = 0; i < 2; i++)
        if (!semver_parse(S(a[i]), L(a[i]), i ? &y : &x))
            return cl_rego_bi_error(c, "operand %d: string \"%.*s\" is not a valid SemVer", i + 1,
                                    (int)(L(a[i]) > 200 ? 200 : L(a[i])), S(a[i]));
    return OUT(cl_rv_int(semver_cmp(&x, &y)));
}

/* ---- uuid ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The forms google/uuid accepts: canonical 36, {36}, urn:uuid:36, or 32 hex digits. */
static bool uuid_parse(const char *s, size_t n, uint8_t u[16])
{
    if (n == 45) {
        if (strncasecmp(s, "urn:uuid:", 9) != 0)
            return false;
        s += 9;
        n = 36;
    } else if (n == 38) {
        if (s[0] != '{' || s[37] != '}')
            return false;
        s++;
        n = 36;
    }
    if (n == 32) {
        for (size_t i = 0; i < 16; i++) {
            int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
            if (h < 0 || l < 0)
                return false;
            u[i] = (uint8_t)(h << 4 | l);
        }
        return true;
    }
    if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
        return false;
    static const uint8_t pos[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    for (size_t i = 0; i < 16; i++) {
        int h = hexval(s[pos[i]]), l = hexval(s[pos[i] + 1]);
        if (h < 0 || l < 0)
            return false;
        u[i] = (uint8_t)(h << 4 | l);
    }
    return true;
}

static int bi_uuid_parse(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    uint8_t u[16];
    if (!uuid_parse(S(a[0]), L(a[0]), u))
        return CL_REGO_UNDEFINED;
    int version = u[6] >> 4;
    const char *variant = (u[8] & 0xc0) == 0x80   ? "RFC4122"
                          : (u[8] & 0xe0) == 0xc0 ? "Microsoft"
                          : (u[8] & 0xe0) == 0xe0 ? "Future"
                                                  : "Reserved";
    struct cl_rv *r = cl_rv_object();
    cl_rv_obj_put_str(r, "version", cl_rv_int(version));
    cl_rv_obj_put_str(r, "variant", cl_rv_strz(variant));
    if (version == 1 || version == 2) {
        /* 100 ns ticks since 1582-10-15 */
        int64_t t =
            (int64_t)((uint64_t)u[0] << 24 | (uint64_t)u[1] << 16 | (uint64_t)u[2] << 8 | u[3]);
        t |= (int64_t)((uint64_t)u[4] << 8 | u[5]) << 32;
        t |= (int64_t)(((uint64_t)u[6] << 8 | u[7]) & 0xfff) << 48;
        int64_t since = t - 122192928000000000LL;
        /* Go computes this in wrapping int64 arithmetic */
        uint64_t ns =
            (uint64_t)(since / 10000000) * 1000000000u + (uint64_t)(since % 10000000 * 100);
        cl_rv_obj_put_str(r, "time", cl_rv_int((int64_t)ns));
        const char *mac = (u[10] & 3) == 3 ? "local:multicast"
                          : (u[10] & 1)    ? "global:multicast"
                          : (u[10] & 2)    ? "local:unicast"
                                           : "global:unicast";
        cl_rv_obj_put_str(r, "nodeid",
                          cl_rv_strf("%s:%02x%02x%02x%02x%02x%02x", mac, u[10], u[11], u[12], u[13],
                                     u[14], u[15]));
        cl_rv_obj_put_str(r, "clocksequence", cl_rv_int(((int)u[8] << 8 | u[9]) & 0x3fff));
        if (version == 2) {
            cl_rv_obj_put_str(r, "id",
                              cl_rv_int((int64_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
                                                  (uint32_t)u[2] << 8 | u[3])));
            static const char *const domains[] = {"Person", "Group", "Org"};
            cl_rv_obj_put_str(r, "domain",
                              u[9] < 3 ? cl_rv_strz(domains[u[9]]) : cl_rv_strf("Domain%d", u[9]));
        }
    }
    return OUT(r);
}

/* uuid.rfc4122(k): a random version 4 UUID. OPA returns the same UUID for the same k within
 * one evaluation: the evaluator memoises non-deterministic builtins per evaluation. */
static int bi_uuid_rfc4122(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    uint8_t u[16];
    if (cl_random(u, sizeof u, NULL) < 0)
        return cl_rego_bi_error(c, "no randomness available");
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    return OUT(cl_rv_strf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                          u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                          u[12], u[13], u[14], u[15]));
}

/* ---- graph ---- */

static bool is_coll(const struct cl_rv *v)
{
    return v->type == CL_RV_ARRAY || v->type == CL_RV_SET;
}

/* Edges of a node: members of an array or set (others have none). */
static size_t edge_count(const struct cl_rv *e)
{
    return is_coll(e) ? e->u.arr.len : 0;
}

static int bi_graph_reachable(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    if (!is_coll(a[1]))
        return cl_rego_bi_type_error(c, 1, "{array, set}", a[1]);
    const struct cl_rv *g = a[0];
    /* every queued node is an initial node or a neighbour listed in g: the queue is bounded by
     * the number of initial nodes plus edges */
    size_t cap = a[1]->u.arr.len + 1, qn = 0, qh = 0;
    for (size_t i = 0; i < g->u.obj.len; i++)
        cap += edge_count(g->u.obj.vals[i]);
    if (cl_rego_bi_reserve(c, cap * sizeof(struct cl_rv *)) < 0)
        return -2;
    struct cl_rv **q = cl_xcalloc(cap, sizeof *q);
    for (size_t i = 0; i < a[1]->u.arr.len; i++)
        q[qn++] = a[1]->u.arr.items[i];
    struct cl_rv *reached = cl_rv_set();
    while (qh < qn) {
        struct cl_rv *node = q[qh++];
        /* OPA re-expands nodes already reached; skipping them gives the same set */
        if (cl_rv_set_has(reached, node))
            continue;
        struct cl_rv *edges = cl_rv_obj_get(g, node);
        if (!edges)
            continue;
        for (size_t j = 0; j < edge_count(edges); j++)
            if (!cl_rv_set_has(reached, edges->u.arr.items[j]) && qn < cap)
                q[qn++] = edges->u.arr.items[j];
        cl_rv_set_add(reached, cl_rv_incref(node));
    }
    free(q);
    return OUT(reached);
}

struct paths {
    struct cl_rego_bctx *c;
    const struct cl_rv *g;
    struct cl_rv *result;
    struct cl_rv **path;        /* nodes of the current path */
    const struct cl_rv **edges; /* edges[i]: the edges of path[i] */
    size_t *next;               /* next[i]: the next edge of path[i] to follow */
    size_t len, cap;
    size_t steps;
};

static int paths_commit(struct paths *p)
{
    if (cl_rego_bi_reserve(p->c, p->len * sizeof(struct cl_rv *) + 64) < 0)
        return -2;
    struct cl_rv *arr = cl_rv_array(p->len);
    for (size_t i = 0; i < p->len; i++)
        cl_rv_array_push(arr, cl_rv_incref(p->path[i]));
    cl_rv_set_add(p->result, arr);
    return 0;
}

static bool on_path(const struct paths *p, const struct cl_rv *v)
{
    for (size_t i = 0; i < p->len; i++)
        if (cl_rv_equal(p->path[i], v))
            return true;
    return false;
}

static void paths_push(struct paths *p, struct cl_rv *node, const struct cl_rv *edges)
{
    if (p->len == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->path = cl_xrealloc(p->path, p->cap * sizeof *p->path);
        p->edges = cl_xrealloc(p->edges, p->cap * sizeof *p->edges);
        p->next = cl_xrealloc(p->next, p->cap * sizeof *p->next);
    }
    p->path[p->len] = node;
    p->edges[p->len] = edges;
    p->next[p->len] = 0;
    p->len++;
}

/* Depth-first over the paths from the start node (already on the path), without recursion
 * (paths can be as long as the graph): a path ends at a node without edges, at a node missing
 * from the graph (which is left out), or where a neighbour would close a cycle. */
static int paths_walk(struct paths *p)
{
    size_t base = p->len;
    while (p->len >= base) {
        size_t top = p->len - 1;
        if (p->next[top] >= edge_count(p->edges[top])) {
            p->len--;
            continue;
        }
        struct cl_rv *nb = p->edges[top]->u.arr.items[p->next[top]++];
        if (++p->steps > CL_REGO_MAX_GRAPH_PATH_STEPS)
            return cl_rego_bi_error(p->c, "too many paths (more than %u steps)",
                                    CL_REGO_MAX_GRAPH_PATH_STEPS);
        int rc = 0;
        const struct cl_rv *edges = cl_rv_obj_get(p->g, nb);
        /* as OPA: a neighbour closes a cycle when it is on the path, except on the first step
         * from the start node, so a node with an edge to itself gives [x, x] */
        if ((p->len > 1 && on_path(p, nb)) || !edges) {
            rc = paths_commit(p);
        } else {
            paths_push(p, nb, edges);
            if (edge_count(edges) == 0) {
                rc = paths_commit(p);
                p->len--;
            }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int bi_graph_reachable_paths(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                    struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    if (!is_coll(a[1]))
        return cl_rego_bi_type_error(c, 1, "{array, set}", a[1]);
    struct paths p = {.c = c, .g = a[0], .result = cl_rv_set()};
    int rc = 0;
    for (size_t i = 0; i < a[1]->u.arr.len && rc == 0; i++) {
        struct cl_rv *node = a[1]->u.arr.items[i];
        const struct cl_rv *edges = cl_rv_obj_get(p.g, node);
        if (!edges)
            continue;
        p.len = 0;
        paths_push(&p, node, edges);
        rc = edge_count(edges) == 0 ? paths_commit(&p) : paths_walk(&p);
    }
    free(p.path);
    free(p.edges);
    free(p.next);
    if (rc < 0) {
        cl_rv_decref(p.result);
        return rc;
    }
    return OUT(p.result);
}

const struct cl_rego_builtin cl_rego_builtins_misc[] = {
    {"units.parse", 1, bi_units_parse, 0},
    {"units.parse_bytes", 1, bi_units_parse_bytes, 0},
    {"semver.is_valid", 1, bi_semver_is_valid, 0},
    {"semver.compare", 2, bi_semver_compare, 0},
    {"uuid.parse", 1, bi_uuid_parse, 0},
    {"uuid.rfc4122", 1, bi_uuid_rfc4122, CL_REGO_BI_NONDET},
    {"graph.reachable", 2, bi_graph_reachable, 0},
    {"graph.reachable_paths", 2, bi_graph_reachable_paths, 0},
    {NULL, 0, NULL, 0},
};
