/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Two serialisers over one writer. cl_json_compact: jansson's JSON_COMPACT output byte for
 * byte (members in insertion order, "\u00XX" escapes in upper case, reals as jansson writes
 * them), without jansson's per-container cycle check (a formatted pointer in a hash table for
 * every object and array), which made json_dumps the largest JSON cost of a KBS handshake.
 *
 * RFC 8785 JSON Canonicalization Scheme. The KBS protocol hashes the JCS form of the runtime
 * data into the TEE report data, so this must match serde_json_canonicalizer byte for byte:
 * object members sorted by their names as UTF-16 code-unit sequences, no insignificant
 * whitespace, strings escaped minimally (only '"', '\\' and C0 controls, with \b \t \n \f \r
 * short forms and lowercase \u00xx), numbers in ECMAScript Number.prototype.toString form.
 */
#include "json/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
    bool compact; /* jansson's JSON_COMPACT instead of JCS */
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 256;
        while (n > ncap - b->len) {
            if (ncap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            ncap *= 2;
        }
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void putc_(struct buf *b, char c)
{
    put(b, &c, 1);
}

/* Decodes one UTF-8 sequence at s[i..n); returns its length or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t i, size_t n, uint32_t *cp)
{
    unsigned char c = s[i];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n - i)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Compares two UTF-8 strings as sequences of UTF-16 code units. */
static int cmp_utf16(const char *a, size_t an, const char *b, size_t bn)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    size_t i = 0, j = 0;
    uint16_t pend_a = 0, pend_b = 0;
    while ((i < an || pend_a) && (j < bn || pend_b)) {
        uint16_t ua, ub;
        uint32_t cp;
        if (pend_a) {
            ua = pend_a, pend_a = 0;
        } else {
            size_t l = utf8_decode(x, i, an, &cp);
            if (!l)
                l = 1, cp = x[i];
            i += l;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                ua = (uint16_t)(0xD800 | (cp >> 10));
                pend_a = (uint16_t)(0xDC00 | (cp & 0x3FF));
            } else {
                ua = (uint16_t)cp;
            }
        }
        if (pend_b) {
            ub = pend_b, pend_b = 0;
        } else {
            size_t l = utf8_decode(y, j, bn, &cp);
            if (!l)
                l = 1, cp = y[j];
            j += l;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                ub = (uint16_t)(0xD800 | (cp >> 10));
                pend_b = (uint16_t)(0xDC00 | (cp & 0x3FF));
            } else {
                ub = (uint16_t)cp;
            }
        }
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
    bool a_more = i < an || pend_a, b_more = j < bn || pend_b;
    return a_more == b_more ? 0 : (a_more ? 1 : -1);
}

static int put_string(struct buf *b, const char *s, size_t n, struct cl_err *err)
{
    const unsigned char *u = (const unsigned char *)s;
    putc_(b, '"');
    size_t i = 0;
    while (i < n) {
        /* a run of printable ASCII other than '"' and '\\' goes out as it is, in one copy */
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) {
            put(b, s + i, run - i);
            i = run;
            continue;
        }
        uint32_t cp;
        size_t l = utf8_decode(u, i, n, &cp);
        if (!l)
            return cl_err_set(err, CL_EINVAL, "jcs: invalid UTF-8 at byte %zu", i);
        if (cp == '"')
            put(b, "\\\"", 2);
        else if (cp == '\\')
            put(b, "\\\\", 2);
        else if (cp == '\b')
            put(b, "\\b", 2);
        else if (cp == '\t')
            put(b, "\\t", 2);
        else if (cp == '\n')
            put(b, "\\n", 2);
        else if (cp == '\f')
            put(b, "\\f", 2);
        else if (cp == '\r')
            put(b, "\\r", 2);
        else if (cp < 0x20) {
            char e[8];
            snprintf(e, sizeof e, b->compact ? "\\u%04X" : "\\u%04x", (unsigned)cp);
            put(b, e, 6);
        } else {
            put(b, s + i, l);
        }
        i += l;
    }
    putc_(b, '"');
    return 0;
}

/* ECMAScript Number::toString for a finite double. */
static void put_double(struct buf *b, double d)
{
    if (d == 0) {
        putc_(b, '0'); /* -0 prints as 0 */
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp = [-]D[.DDD]e[+-]XX: extract digits and exponent */
    char digits[20] = {0};
    int nd = 0, neg = 0;
    const char *p = tmp;
    if (*p == '-')
        neg = 1, p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int e10 = atoi(p + 1); /* exponent of the first digit */
    int n = e10 + 1;       /* ECMAScript's n: value = 0.digits * 10^n */
    char out[64];
    int o = 0;
    if (neg)
        out[o++] = '-';
    if (nd <= n && n <= 21) {
        for (int k = 0; k < nd; k++)
            out[o++] = digits[k];
        for (int k = nd; k < n; k++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        for (int k = 0; k < n; k++)
            out[o++] = digits[k];
        out[o++] = '.';
        for (int k = n; k < nd; k++)
            out[o++] = digits[k];
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int k = 0; k < -n; k++)
            out[o++] = '0';
        for (int k = 0; k < nd; k++)
            out[o++] = digits[k];
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int k = 1; k < nd; k++)
                out[o++] = digits[k];
        }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    put(b, out, (size_t)o);
}

struct member {
    const char *key;
    size_t klen;
    json_t *val;
};

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    return cmp_utf16(x->key, x->klen, y->key, y->klen);
}

static int emit(struct buf *b, const json_t *v, int depth, struct cl_err *err)
{
    if (depth > 1000)
        return cl_err_set(err, CL_ELIMIT, "jcs: nesting too deep");
    switch (json_typeof(v)) {
    case JSON_NULL:
        put(b, "null", 4);
        return 0;
    case JSON_TRUE:
        put(b, "true", 4);
        return 0;
    case JSON_FALSE:
        put(b, "false", 5);
        return 0;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        /* ECMAScript numbers are doubles: integers beyond 2^53 print as their double. */
        if (!b->compact && (i > (1LL << 53) || i < -(1LL << 53))) {
            put_double(b, (double)i);
        } else {
            char t[32];
            int n = snprintf(t, sizeof t, "%" JSON_INTEGER_FORMAT, i);
            put(b, t, (size_t)n);
        }
        return 0;
    }
    case JSON_REAL: {
        double d = json_real_value(v);
        if (b->compact) { /* rare: jansson's own text for a real (precision, ".0", exponent) */
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!t)
                return cl_err_set(err, CL_EINVAL, "json: a real jansson cannot write");
            put(b, t, strlen(t));
            free(t);
            return 0;
        }
        if (!isfinite(d))
            return cl_err_set(err, CL_EINVAL, "jcs: NaN or infinity cannot be serialised");
        put_double(b, d);
        return 0;
    }
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v), err);
    case JSON_ARRAY: {
        putc_(b, '[');
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i)
                putc_(b, ',');
            int rc = emit(b, e, depth + 1, err);
            if (rc < 0)
                return rc;
        }
        putc_(b, ']');
        return 0;
    }
    case JSON_OBJECT: {
        if (b->compact) { /* insertion order, as json_dumps without JSON_SORT_KEYS */
            putc_(b, '{');
            const char *key;
            size_t klen;
            json_t *val;
            bool first = true;
            json_object_keylen_foreach((json_t *)(uintptr_t)v, key, klen, val)
            {
                if (!first)
                    putc_(b, ',');
                first = false;
                int rc = put_string(b, key, klen, err);
                if (rc < 0)
                    return rc;
                putc_(b, ':');
                if ((rc = emit(b, val, depth + 1, err)) < 0)
                    return rc;
            }
            putc_(b, '}');
            return 0;
        }
        size_t n = json_object_size(v);
        struct member *m = calloc(n ? n : 1, sizeof *m);
        if (!m)
            return cl_err_set(err, CL_ENOMEM, "jcs: out of memory");
        size_t k = 0;
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach((json_t *)(uintptr_t)v, key, klen, val)
        {
            m[k].key = key;
            m[k].klen = klen;
            m[k].val = val;
            k++;
        }
        qsort(m, k, sizeof *m, cmp_member);
        putc_(b, '{');
        int rc = 0;
        for (size_t i = 0; i < k && rc == 0; i++) {
            if (i)
                putc_(b, ',');
            rc = put_string(b, m[i].key, m[i].klen, err);
            if (rc == 0) {
                putc_(b, ':');
                rc = emit(b, m[i].val, depth + 1, err);
            }
        }
        free(m);
        putc_(b, '}');
        return rc;
    }
    }
    return cl_err_set(err, CL_EINVAL, "jcs: unknown JSON type");
}

cl_str *cl_json_canonical(const json_t *v, size_t *len, struct cl_err *err)
{
    struct buf b = {0};
    if (!v) {
        cl_err_set(err, CL_EINVAL, "jcs: no value");
        return NULL;
    }
    int rc = emit(&b, v, 0, err);
    putc_(&b, '\0');
    if (rc < 0 || b.oom) {
        if (b.oom && rc == 0)
            cl_err_set(err, CL_ENOMEM, "jcs: out of memory");
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len - 1;
    return b.p;
}

cl_str *cl_json_compact(const json_t *v)
{
    struct buf b = {.compact = true};
    struct cl_err err = {0};
    if (!v)
        return NULL;
    int rc = emit(&b, v, 0, &err);
    putc_(&b, '\0');
    if (rc < 0 || b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
