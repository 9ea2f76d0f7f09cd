/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOML scalars: the four string kinds with their escapes, booleans, integers (decimal, hex,
 * octal, binary; underscores between digits only; int64 range), floats (fraction, exponent,
 * inf/nan), and the four date-time kinds, checked against the calendar. Also the UTF-8 check
 * run over the whole input before parsing starts, which lets the string readers copy any
 * byte >= 0x80 as it is.
 */
#include "toml/priv.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- UTF-8 ---- */

size_t cl_tp_utf8_check(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (need > n - i - 1)
            return i;
        for (size_t k = 1; k <= need; k++) {
            unsigned d = u[i + k];
            if ((d & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (d & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return n;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- strings ---- */

/* Control characters that TOML refuses in strings and comments; tab is allowed. */
static bool is_ctrl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7F;
}

static unsigned char at(const struct tp *p, size_t i)
{
    return (unsigned char)p->buf[i];
}

/* p->pos is on a backslash inside a basic string. */
static int read_escape(struct tp *p, struct cl_tp_buf *out)
{
    size_t start = p->pos;
    if (p->len - p->pos < 2)
        return TP_FAIL(p, CL_EPARSE, "unterminated string (input ends after a backslash)");
    unsigned char e = at(p, p->pos + 1);
    char c;
    switch (e) {
    case 'b':
        c = '\b';
        break;
    case 't':
        c = '\t';
        break;
    case 'n':
        c = '\n';
        break;
    case 'f':
        c = '\f';
        break;
    case 'r':
        c = '\r';
        break;
    case '"':
        c = '"';
        break;
    case '\\':
        c = '\\';
        break;
    case 'u':
    case 'U': {
        size_t nd = e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t k = 0; k < nd; k++) {
            size_t i = p->pos + 2 + k;
            int v = i < p->len ? cl_hex_digit(at(p, i)) : -1;
            if (v < 0)
                return TP_FAIL_AT(p, start, CL_EPARSE, "escape \\%c needs %zu hex digits", e, nd);
            cp = (cp << 4) | (uint32_t)v;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return TP_FAIL_AT(p, start, CL_EPARSE, "escape \\%c%.*s is not a Unicode scalar value",
                              e, (int)nd, p->buf + p->pos + 2);
        if (cp == 0 && !p->tagged)
            return TP_FAIL_AT(p, start, CL_EPARSE, "escape \\%c%.*s (NUL) is not supported", e,
                              (int)nd, p->buf + p->pos + 2);
        char enc[4];
        size_t n = utf8_encode(cp, enc);
        p->pos += 2 + nd;
        return cl_tp_buf_put(p, out, enc, n);
    }
    default: {
        char show[16];
        return TP_FAIL_AT(p, start, CL_EPARSE, "invalid escape: backslash followed by %s",
                          cl_tp_show(p, p->pos + 1, show));
    }
    }
    p->pos += 2;
    return cl_tp_buf_put(p, out, &c, 1);
}

static int bad_char(struct tp *p, const char *kind)
{
    char show[16];
    unsigned char c = at(p, p->pos);
    if (c == '\n' || c == '\r')
        return TP_FAIL(p, CL_EPARSE, "newline inside a single-line %s", kind);
    return TP_FAIL(p, CL_EPARSE, "control character %s in %s", cl_tp_show(p, p->pos, show), kind);
}

/* "..." and '...': q is the quote; escapes only in the basic kind. */
static int read_line_string(struct tp *p, struct cl_tp_buf *out, char q)
{
    size_t start = p->pos;
    const char *kind = q == '"' ? "string" : "literal string";
    p->pos++;
    for (;;) {
        size_t run = p->pos;
        while (p->pos < p->len) {
            unsigned char c = at(p, p->pos);
            if (c == (unsigned char)q || (c == '\\' && q == '"') || is_ctrl(c))
                break;
            p->pos++;
        }
        int rc = cl_tp_buf_put(p, out, p->buf + run, p->pos - run);
        if (rc < 0)
            return rc;
        if (p->pos >= p->len)
            return TP_FAIL_AT(p, start, CL_EPARSE, "unterminated %s", kind);
        unsigned char c = at(p, p->pos);
        if (c == (unsigned char)q) {
            p->pos++;
            return 0;
        }
        if (c != '\\')
            return bad_char(p, kind);
        rc = read_escape(p, out);
        if (rc < 0)
            return rc;
    }
}

/* Length of a newline (LF or CRLF) at i, 0 if none. */
static size_t newline_at(const struct tp *p, size_t i)
{
    if (i < p->len && p->buf[i] == '\n')
        return 1;
    if (p->len - i >= 2 && p->buf[i] == '\r' && p->buf[i + 1] == '\n')
        return 2;
    return 0;
}

/* """...""" and '''...''': a newline right after the opening quotes is dropped; up to two
 * quotes may stand just before the closing three. A CRLF inside becomes LF (as common TOML
 * readers do), so that the text means the same whatever editor wrote it. */
static int read_multi_string(struct tp *p, struct cl_tp_buf *out, char q)
{
    size_t start = p->pos;
    const char *kind = q == '"' ? "multi-line string" : "multi-line literal string";
    bool basic = q == '"';
    p->pos += 3;
    p->pos += newline_at(p, p->pos);
    for (;;) {
        size_t run = p->pos;
        while (p->pos < p->len) {
            unsigned char c = at(p, p->pos);
            if (c == (unsigned char)q || (c == '\\' && basic) || c == '\r' ||
                (is_ctrl(c) && c != '\n'))
                break;
            p->pos++;
        }
        int rc = cl_tp_buf_put(p, out, p->buf + run, p->pos - run);
        if (rc < 0)
            return rc;
        if (p->pos >= p->len)
            return TP_FAIL_AT(p, start, CL_EPARSE, "unterminated %s", kind);
        unsigned char c = at(p, p->pos);
        if (c == (unsigned char)q) {
            size_t n = 0;
            while (p->pos + n < p->len && p->buf[p->pos + n] == q && n < 6)
                n++;
            if (n < 3) {
                rc = cl_tp_buf_put(p, out, p->buf + p->pos, n);
                p->pos += n;
                if (rc < 0)
                    return rc;
                continue;
            }
            if (n > 5)
                return TP_FAIL(p, CL_EPARSE, "too many quotes closing a %s", kind);
            rc = cl_tp_buf_put(p, out, p->buf + p->pos, n - 3);
            p->pos += n;
            return rc;
        }
        if (c == '\r') {
            if (newline_at(p, p->pos) != 2)
                return TP_FAIL(p, CL_EPARSE, "carriage return without line feed in %s", kind);
            rc = cl_tp_buf_put(p, out, "\n", 1);
            p->pos += 2;
            if (rc < 0)
                return rc;
            continue;
        }
        if (c != '\\')
            return bad_char(p, kind);
        /* A backslash that ends the line (trailing blanks allowed) swallows the newline and
         * every blank and newline after it. */
        size_t k = p->pos + 1;
        while (k < p->len && (p->buf[k] == ' ' || p->buf[k] == '\t'))
            k++;
        if (newline_at(p, k)) {
            p->pos = k;
            for (;;) {
                size_t nl = newline_at(p, p->pos);
                if (nl)
                    p->pos += nl;
                else if (p->pos < p->len && (p->buf[p->pos] == ' ' || p->buf[p->pos] == '\t'))
                    p->pos++;
                else
                    break;
            }
            continue;
        }
        if (k > p->pos + 1)
            return TP_FAIL(p, CL_EPARSE, "a backslash followed by blanks must end the line");
        rc = read_escape(p, out);
        if (rc < 0)
            return rc;
    }
}

int cl_tp_string(struct tp *p, struct cl_tp_buf *out, bool key)
{
    char q = p->buf[p->pos];
    bool triple = p->len - p->pos >= 3 && p->buf[p->pos + 1] == q && p->buf[p->pos + 2] == q;
    if (!triple)
        return read_line_string(p, out, q);
    if (key)
        return TP_FAIL(p, CL_EPARSE, "a key cannot be a multi-line string");
    return read_multi_string(p, out, q);
}

json_t *cl_tp_tag(const char *type, const char *text, size_t n)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (json_object_set_new_nocheck(o, "type", json_string_nocheck(type)) < 0 ||
        json_object_set_new_nocheck(o, "value", json_stringn_nocheck(text, n)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- booleans, numbers, date-times ---- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Characters a bare scalar (number, boolean, date-time) is made of. */
static bool is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == '+' || c == '-' || c == '.' || c == ':';
}

static int digit_value(unsigned char c, unsigned base)
{
    int v = cl_hex_digit(c);
    return v >= 0 && (unsigned)v < base ? v : -1;
}

/* s[0..n) is one or more digits of base with each '_' between two digits. */
static bool digits_ok(const char *s, size_t n, unsigned base)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '_') {
            if (i == 0 || i + 1 == n || s[i + 1] == '_')
                return false;
        } else if (digit_value(c, base) < 0) {
            return false;
        }
    }
    return true;
}

static int set_out(struct tp *p, size_t start, json_t *v, json_t **out)
{
    if (!v)
        return TP_FAIL_AT(p, start, CL_ENOMEM, "out of memory");
    *out = v;
    return 0;
}

static int bad_value(struct tp *p, size_t start, const char *kind)
{
    size_t n = p->pos - start;
    return TP_FAIL_AT(p, start, CL_EPARSE, "invalid %s '%.*s'%s", kind, (int)(n > 64 ? 64 : n),
                      p->buf + start, n > 64 ? "..." : "");
}

static int integer_value(struct tp *p, size_t start, int64_t v, json_t **out)
{
    if (!p->tagged)
        return set_out(p, start, json_integer((json_int_t)v), out);
    char txt[24];
    int n = snprintf(txt, sizeof txt, "%" PRId64, v);
    return set_out(p, start, cl_tp_tag("integer", txt, (size_t)n), out);
}

/* 0x, 0o, 0b: no sign, value at most INT64_MAX. */
static int prefixed_integer(struct tp *p, size_t start, const char *s, size_t n, json_t **out)
{
    unsigned base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
    if (!digits_ok(s + 2, n - 2, base))
        return bad_value(p, start, "integer");
    uint64_t v = 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] == '_')
            continue;
        uint64_t d = (uint64_t)digit_value((unsigned char)s[i], base);
        if (v > ((uint64_t)INT64_MAX - d) / base)
            return TP_FAIL_AT(p, start, CL_EPARSE, "integer '%.*s' does not fit in 64 bits", (int)n,
                              s);
        v = v * base + d;
    }
    return integer_value(p, start, (int64_t)v, out);
}

static int decimal_integer(struct tp *p, size_t start, const char *s, size_t n, json_t **out)
{
    bool neg = s[0] == '-';
    size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
    if (!digits_ok(s + i, n - i, 10))
        return bad_value(p, start, "value");
    if (s[i] == '0' && n - i > 1)
        return TP_FAIL_AT(p, start, CL_EPARSE, "integer '%.*s' has a leading zero",
                          (int)(n > 64 ? 64 : n), s);
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; i < n; i++) {
        if (s[i] == '_')
            continue;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10)
            return TP_FAIL_AT(p, start, CL_EPARSE, "integer '%.*s' does not fit in 64 bits",
                              (int)(n > 64 ? 64 : n), s);
        v = v * 10 + d;
    }
    int64_t r = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return integer_value(p, start, r, out);
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* strtod in the C locale whatever the process locale is. */
static double strtod_c(const char *s, char **end)
{
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale ? strtod_l(s, end, c_locale) : strtod(s, end);
}

static int float_special(struct tp *p, size_t start, const char *text, json_t **out)
{
    json_t *v = p->tagged ? cl_tp_tag("float", text, strlen(text)) : json_string_nocheck(text);
    return set_out(p, start, v, out);
}

static int float_value(struct tp *p, size_t start, double d, json_t **out)
{
    if (!p->tagged)
        return set_out(p, start, json_real(d), out);
    /* the shortest text that reads back as the same double */
    char txt[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(txt, sizeof txt, "%.*g", prec, d);
        if (strtod_c(txt, NULL) == d)
            break;
    }
    return set_out(p, start, cl_tp_tag("float", txt, (size_t)n), out);
}

/* [+-] int-part [. digits] [e [+-] digits], with at least one of fraction and exponent. */
static int decimal_float(struct tp *p, size_t start, const char *s, size_t n, json_t **out)
{
    size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
    size_t ip = i;
    while (i < n && s[i] != '.' && s[i] != 'e' && s[i] != 'E')
        i++;
    if (!digits_ok(s + ip, i - ip, 10))
        return bad_value(p, start, "float");
    if (s[ip] == '0' && i - ip > 1)
        return TP_FAIL_AT(p, start, CL_EPARSE, "float '%.*s' has a leading zero",
                          (int)(n > 64 ? 64 : n), s);
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] != 'e' && s[i] != 'E')
            i++;
        if (!digits_ok(s + f, i - f, 10))
            return bad_value(p, start, "float");
    }
    if (i < n) { /* s[i] is e or E */
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!digits_ok(s + i, n - i, 10))
            return bad_value(p, start, "float");
    }
    /* strtod wants the digits without underscores and NUL-terminated */
    p->sb.len = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '_')
            continue;
        int rc = cl_tp_buf_put(p, &p->sb, s + k, 1);
        if (rc < 0)
            return rc;
    }
    int rc = cl_tp_buf_put(p, &p->sb, "", 1);
    if (rc < 0)
        return rc;
    errno = 0;
    char *end = NULL;
    double d = strtod_c(p->sb.p, &end);
    if (end != p->sb.p + p->sb.len - 1)
        return bad_value(p, start, "float");
    if (errno == ERANGE && isinf(d))
        return TP_FAIL_AT(p, start, CL_EPARSE, "float '%.*s' is out of range",
                          (int)(n > 64 ? 64 : n), s);
    return float_value(p, start, d, out);
}

static int number(struct tp *p, size_t start, const char *s, size_t n, json_t **out)
{
    size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
    const char *r = s + i;
    size_t rn = n - i;
    if (rn == 3 && memcmp(r, "inf", 3) == 0)
        return float_special(p, start, s[0] == '-' ? "-inf" : "inf", out);
    if (rn == 3 && memcmp(r, "nan", 3) == 0)
        return float_special(p, start, "nan", out);
    if (rn >= 2 && r[0] == '0' && (r[1] == 'x' || r[1] == 'o' || r[1] == 'b')) {
        if (i)
            return TP_FAIL_AT(p, start, CL_EPARSE,
                              "a hex, octal or binary integer cannot have a sign");
        return prefixed_integer(p, start, s, n, out);
    }
    if (memchr(r, '.', rn) || memchr(r, 'e', rn) || memchr(r, 'E', rn))
        return decimal_float(p, start, s, n, out);
    return decimal_integer(p, start, s, n, out);
}

static bool two_digits(const char *s, unsigned *v)
{
    if (!is_digit((unsigned char)s[0]) || !is_digit((unsigned char)s[1]))
        return false;
    *v = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
    return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* HH:MM:SS[.fraction] at s[0..n); *used gets its length. */
static bool read_time(const char *s, size_t n, size_t *used)
{
    unsigned h, m, sec;
    if (n < 8 || !two_digits(s, &h) || s[2] != ':' || !two_digits(s + 3, &m) || s[5] != ':' ||
        !two_digits(s + 6, &sec))
        return false;
    if (h > 23 || m > 59 || sec > 60)
        return false;
    size_t i = 8;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && is_digit((unsigned char)s[i]))
            i++;
        if (i == f)
            return false;
    }
    *used = i;
    return true;
}

static int datetime_value(struct tp *p, size_t start, const char *type, json_t **out)
{
    json_t *v =
        p->tagged ? cl_tp_tag(type, p->sb.p, p->sb.len) : json_stringn_nocheck(p->sb.p, p->sb.len);
    return set_out(p, start, v, out);
}

/* Offset date-time, local date-time or local date: s starts with four digits and '-'. */
static int datetime(struct tp *p, size_t start, const char *s, size_t n, json_t **out)
{
    unsigned y, y2, mo, d;
    if (n < 10 || !two_digits(s, &y) || !two_digits(s + 2, &y2) || s[4] != '-' ||
        !two_digits(s + 5, &mo) || s[7] != '-' || !two_digits(s + 8, &d))
        return bad_value(p, start, "date");
    y = y * 100 + y2;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return TP_FAIL_AT(p, start, CL_EPARSE, "date '%.10s' is not in the calendar", s);
    p->sb.len = 0;
    int rc = cl_tp_buf_put(p, &p->sb, s, 10);
    if (rc < 0)
        return rc;
    if (n == 10)
        return datetime_value(p, start, "date-local", out);
    size_t used = 0;
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !read_time(s + 11, n - 11, &used))
        return bad_value(p, start, "date-time");
    if ((rc = cl_tp_buf_put(p, &p->sb, "T", 1)) < 0 ||
        (rc = cl_tp_buf_put(p, &p->sb, s + 11, used)) < 0)
        return rc;
    size_t i = 11 + used;
    if (i == n)
        return datetime_value(p, start, "datetime-local", out);
    if (s[i] == 'Z' || s[i] == 'z') {
        if (i + 1 != n)
            return bad_value(p, start, "date-time");
        if ((rc = cl_tp_buf_put(p, &p->sb, "Z", 1)) < 0)
            return rc;
        return datetime_value(p, start, "datetime", out);
    }
    unsigned oh, om;
    if ((s[i] != '+' && s[i] != '-') || n - i != 6 || !two_digits(s + i + 1, &oh) ||
        s[i + 3] != ':' || !two_digits(s + i + 4, &om) || oh > 23 || om > 59)
        return bad_value(p, start, "date-time");
    if ((rc = cl_tp_buf_put(p, &p->sb, s + i, 6)) < 0)
        return rc;
    return datetime_value(p, start, "datetime", out);
}

static int local_time(struct tp *p, size_t start, const char *s, size_t n, json_t **out)
{
    size_t used = 0;
    if (!read_time(s, n, &used) || used != n)
        return bad_value(p, start, "time");
    p->sb.len = 0;
    int rc = cl_tp_buf_put(p, &p->sb, s, n);
    if (rc < 0)
        return rc;
    return datetime_value(p, start, "time-local", out);
}

int cl_tp_scalar(struct tp *p, json_t **out)
{
    size_t start = p->pos;
    while (p->pos < p->len && is_token_char(at(p, p->pos)))
        p->pos++;
    const char *s = p->buf + start;
    size_t n = p->pos - start;
    /* "1979-05-27 07:32:00": a date, one space, and a time make one value */
    if (n == 10 && is_digit((unsigned char)s[0]) && s[4] == '-' && s[7] == '-' &&
        p->len - p->pos >= 4 && p->buf[p->pos] == ' ' && is_digit(at(p, p->pos + 1)) &&
        is_digit(at(p, p->pos + 2)) && p->buf[p->pos + 3] == ':') {
        p->pos++;
        while (p->pos < p->len && is_token_char(at(p, p->pos)))
            p->pos++;
        n = p->pos - start;
    }
    if (n == 0) {
        char show[16];
        return TP_FAIL(p, CL_EPARSE, "expected a value, found %s", cl_tp_show(p, p->pos, show));
    }
    if (n == 4 && memcmp(s, "true", 4) == 0)
        return set_out(p, start, p->tagged ? cl_tp_tag("bool", "true", 4) : json_true(), out);
    if (n == 5 && memcmp(s, "false", 5) == 0)
        return set_out(p, start, p->tagged ? cl_tp_tag("bool", "false", 5) : json_false(), out);
    if (n >= 5 && is_digit((unsigned char)s[0]) && is_digit((unsigned char)s[1]) &&
        is_digit((unsigned char)s[2]) && is_digit((unsigned char)s[3]) && s[4] == '-')
        return datetime(p, start, s, n, out);
    if (n >= 3 && is_digit((unsigned char)s[0]) && is_digit((unsigned char)s[1]) && s[2] == ':')
        return local_time(p, start, s, n, out);
    if (is_digit((unsigned char)s[0]) || s[0] == '+' || s[0] == '-' || s[0] == 'i' || s[0] == 'n')
        return number(p, start, s, n, out);
    return bad_value(p, start, "value");
}
