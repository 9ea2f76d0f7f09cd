/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encoding builtins: base64 / base64url, hex, json.marshal/unmarshal/is_valid, urlquery,
 * json.patch.
 */
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"
#include "json/json.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

static int b64enc(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                  enum cl_b64 var, bool nopad)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    char *s = cl_b64_encode(S(a[0]), L(a[0]), var);
    if (!s)
        return cl_rego_bi_error(c, "out of memory");
    struct cl_sbuf b = {0};
    cl_sbuf_adds(&b, s);
    free(s);
    if (var == CL_B64_URL && !nopad)
        while (b.len % 4) /* base64url.encode pads like Go's URLEncoding */
            cl_sbuf_addc(&b, '=');
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int b64dec(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                  enum cl_b64 var)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_err err = {0};
    size_t n;
    uint8_t *b = cl_b64_decode(S(a[0]), L(a[0]), var, (size_t)1 << 30, &n, &err);
    if (!b)
        return cl_rego_bi_error(c, "illegal base64 data");
    struct cl_rv *r = cl_rv_str((const char *)b, n);
    free(b);
    return OUT(r);
}

static int bi_b64_encode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return b64enc(c, a, out, CL_B64_STD, false);
}
static int bi_b64_decode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return b64dec(c, a, out, CL_B64_STD);
}
static int bi_b64url_encode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return b64enc(c, a, out, CL_B64_URL, false);
}
static int bi_b64url_encode_nopad(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                  struct cl_rv **out)
{
    return b64enc(c, a, out, CL_B64_URL, true);
}
static int bi_b64url_decode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return b64dec(c, a, out, CL_B64_URL_ANYPAD);
}

static int bi_b64_is_valid(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_err err = {0};
    size_t n;
    uint8_t *b = cl_b64_decode(S(a[0]), L(a[0]), CL_B64_STD, (size_t)1 << 30, &n, &err);
    free(b);
    return OUT(cl_rv_bool(b != NULL));
}

static int bi_hex_encode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    char *s = cl_hex_encode(S(a[0]), L(a[0]));
    if (!s)
        return cl_rego_bi_error(c, "out of memory");
    struct cl_rv *r = cl_rv_strz(s);
    free(s);
    return OUT(r);
}

static int bi_hex_decode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    uint8_t *buf = cl_xmalloc(L(a[0]) / 2 + 1);
    size_t n = 0;
    struct cl_err err = {0};
    if (cl_hex_decode(S(a[0]), L(a[0]), buf, L(a[0]) / 2 + 1, &n, &err) < 0) {
        free(buf);
        return cl_rego_bi_error(c, "invalid hex string: %.*s", (int)(L(a[0]) > 64 ? 64 : L(a[0])),
                                S(a[0]));
    }
    struct cl_rv *r = cl_rv_str((const char *)buf, n);
    free(buf);
    return OUT(r);
}

/* JSON text of a value as OPA marshals it (sets as arrays, keys sorted). */
static int bi_json_marshal(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    /* the text is about the size of the value with shared members counted each time, which a
     * value built from one string repeated can make much larger than the memory it holds */
    if (cl_rego_bi_reserve(c, cl_rv_size(a[0]) * 2 + 256) < 0)
        return -2;
    char *s = cl_rv_to_json_text(a[0]);
    struct cl_rv *r = cl_rv_strz(s);
    free(s);
    return OUT(r);
}

/* Indented JSON as Go's json.MarshalIndent lays it out (one member per line, "key": value,
 * empty collections as {} and []), with the prefix at the start of every line, the first
 * included, as OPA's json.marshal_with_options returns it. Scalars and keys are written as
 * json.marshal writes them. */
struct json_layout {
    const char *prefix, *indent;
    size_t nprefix, nindent;
};

static void pretty_json(struct cl_sbuf *b, const struct cl_rv *v, const struct json_layout *lo,
                        size_t depth)
{
    bool obj = v->type == CL_RV_OBJECT;
    if ((v->type != CL_RV_ARRAY && v->type != CL_RV_SET && !obj) || cl_rv_len(v) == 0) {
        char *t = cl_rv_to_json_text(v);
        cl_sbuf_adds(b, t);
        free(t);
        return;
    }
    cl_sbuf_addc(b, obj ? '{' : '[');
    size_t n = obj ? v->u.obj.len : v->u.arr.len;
    for (size_t i = 0; i < n; i++) {
        cl_sbuf_addc(b, '\n');
        cl_sbuf_add(b, lo->prefix, lo->nprefix);
        for (size_t d = 0; d <= depth; d++)
            cl_sbuf_add(b, lo->indent, lo->nindent);
        if (obj) {
            const struct cl_rv *k = v->u.obj.keys[i];
            char *kt = cl_rv_to_json_text(k);
            if (k->type != CL_RV_STRING) { /* a non-string key is the string of its JSON text */
                struct cl_rv *ks = cl_rv_strz(kt);
                free(kt);
                kt = cl_rv_to_json_text(ks);
                cl_rv_decref(ks);
            }
            cl_sbuf_adds(b, kt);
            free(kt);
            cl_sbuf_adds(b, ": ");
        }
        pretty_json(b, obj ? v->u.obj.vals[i] : v->u.arr.items[i], lo, depth + 1);
        if (i + 1 < n)
            cl_sbuf_addc(b, ',');
    }
    cl_sbuf_addc(b, '\n');
    cl_sbuf_add(b, lo->prefix, lo->nprefix);
    for (size_t d = 0; d < depth; d++)
        cl_sbuf_add(b, lo->indent, lo->nindent);
    cl_sbuf_addc(b, obj ? '}' : ']');
}

/* json.marshal_with_options(x, {"pretty": bool, "indent": string, "prefix": string}): an
 * indent or prefix implies pretty unless pretty says otherwise; indent defaults to a tab. */
static int bi_json_marshal_with_options(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                        struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 1, CL_RV_OBJECT) < 0)
        return -1;
    const struct cl_rv *o = a[1];
    struct json_layout lo = {"", "\t", 0, 1};
    bool implied = false, pretty = false, said = false;
    /* OPA's words: the operand position inside the message is the key's index */
    for (size_t i = 0; i < o->u.obj.len; i++) {
        const struct cl_rv *k = o->u.obj.keys[i], *v = o->u.obj.vals[i];
        if (k->type != CL_RV_STRING) {
            char *kt = cl_rv_dump(k);
            int rc = cl_rego_bi_type_errorf(c,
                                            "operand 2 failed to stringify key %s at index %zu: "
                                            "operand %zu must be string but got %s",
                                            kt, i, i, cl_rv_type_name(k));
            free(kt);
            return rc;
        }
        if (strcmp(k->u.str.s, "prefix") == 0 || strcmp(k->u.str.s, "indent") == 0) {
            if (v->type != CL_RV_STRING)
                return cl_rego_bi_type_errorf(
                    c,
                    "operand 2 key %s failed cast to string: operand %zu must be string but got %s",
                    k->u.str.s, i, cl_rv_type_name(v));
            if (k->u.str.s[0] == 'p') {
                lo.prefix = v->u.str.s;
                lo.nprefix = v->u.str.len;
            } else {
                lo.indent = v->u.str.s;
                lo.nindent = v->u.str.len;
            }
            implied = true;
        } else if (strcmp(k->u.str.s, "pretty") == 0) {
            if (v->type != CL_RV_BOOL)
                return cl_rego_bi_type_errorf(c, "operand 2 key pretty failed cast to bool");
            pretty = v->u.b;
            said = true;
        } else {
            return cl_rego_bi_type_errorf(c, "operand 2 object contained unknown key %s",
                                          k->u.str.s);
        }
    }
    if (!(said ? pretty : implied))
        return bi_json_marshal(c, a, out);
    /* every level may repeat prefix and indent once per line: reserve for the worst case */
    size_t per_line = lo.nprefix + 64 * (lo.nindent + 1);
    if (cl_rego_bi_reserve(c, cl_rv_size(a[0]) * (2 + per_line) + 256) < 0)
        return -2;
    struct cl_sbuf b = {0};
    cl_sbuf_add(&b, lo.prefix, lo.nprefix);
    pretty_json(&b, a[0], &lo, 0);
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int bi_json_unmarshal(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_err err = {0};
    json_t *j = cl_json_parse(S(a[0]), L(a[0]), 512, &err);
    if (!j)
        return cl_rego_bi_error(c, "%s", err.msg);
    struct cl_rv *r = cl_rv_from_json(j);
    json_decref(j);
    return OUT(r);
}

static int bi_json_is_valid(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (a[0]->type != CL_RV_STRING)
        return OUT(cl_rv_bool(false));
    struct cl_err err = {0};
    json_t *j = cl_json_parse(S(a[0]), L(a[0]), 512, &err);
    (void)c;
    json_decref(j);
    return OUT(cl_rv_bool(j != NULL));
}

static void url_escape(struct cl_sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.~", ch))
            cl_sbuf_addc(b, (char)ch);
        else if (ch == ' ')
            cl_sbuf_addc(b, '+');
        else
            cl_sbuf_addf(b, "%%%02X", ch);
    }
}

static int bi_urlquery_encode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_sbuf b = {0};
    url_escape(&b, S(a[0]), L(a[0]));
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int url_unescape(const char *s, size_t n, struct cl_sbuf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            cl_sbuf_addc(b, ' ');
        } else if (s[i] == '%') {
            if (i + 2 >= n + 0 && i + 2 > n - 1 + 1)
                return -1;
            if (i + 2 >= n || unhex(s[i + 1]) < 0 || unhex(s[i + 2]) < 0)
                return -1;
            cl_sbuf_addc(b, (char)(unhex(s[i + 1]) * 16 + unhex(s[i + 2])));
            i += 2;
        } else {
            cl_sbuf_addc(b, s[i]);
        }
    }
    return 0;
}

static int bi_urlquery_decode(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_sbuf b = {0};
    if (url_unescape(S(a[0]), L(a[0]), &b) < 0) {
        cl_sbuf_free(&b);
        return cl_rego_bi_error(c, "invalid URL escape");
    }
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int bi_urlquery_encode_object(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                     struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    struct cl_sbuf b = {0};
    for (size_t i = 0; i < a[0]->u.obj.len; i++) {
        const struct cl_rv *k = a[0]->u.obj.keys[i], *v = a[0]->u.obj.vals[i];
        if (k->type != CL_RV_STRING) {
            cl_sbuf_free(&b);
            return cl_rego_bi_type_error(c, 0, "object[string: string|array|set]", k);
        }
        const struct cl_rv *one[1] = {v}, *const *vs = one;
        size_t nv = 1;
        if (v->type == CL_RV_ARRAY || v->type == CL_RV_SET) {
            vs = (const struct cl_rv *const *)v->u.arr.items;
            nv = v->u.arr.len;
        }
        for (size_t j = 0; j < nv; j++) {
            if (vs[j]->type != CL_RV_STRING) {
                cl_sbuf_free(&b);
                return cl_rego_bi_type_error(c, 0, "object[string: string|array|set]", vs[j]);
            }
            if (b.len)
                cl_sbuf_addc(&b, '&');
            url_escape(&b, S(k), L(k));
            cl_sbuf_addc(&b, '=');
            url_escape(&b, S(vs[j]), L(vs[j]));
        }
    }
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int bi_urlquery_decode_object(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                     struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_rv *r = cl_rv_object();
    const char *s = S(a[0]), *e = s + L(a[0]);
    while (s < e) {
        const char *amp = memchr(s, '&', (size_t)(e - s));
        if (!amp)
            amp = e;
        const char *eq = memchr(s, '=', (size_t)(amp - s));
        struct cl_sbuf k = {0}, v = {0};
        int rc = url_unescape(s, (size_t)((eq ? eq : amp) - s), &k);
        if (rc == 0 && eq)
            rc = url_unescape(eq + 1, (size_t)(amp - eq - 1), &v);
        if (rc < 0) {
            cl_sbuf_free(&k);
            cl_sbuf_free(&v);
            cl_rv_decref(r);
            return cl_rego_bi_error(c, "invalid URL escape");
        }
        if (k.len || v.len) {
            struct cl_rv *key = cl_rv_str(k.s ? k.s : "", k.len);
            struct cl_rv *old = cl_rv_obj_get(r, key);
            struct cl_rv *arr = old ? cl_rv_copy(old) : cl_rv_array(1);
            cl_rv_array_push(arr, cl_rv_str(v.s ? v.s : "", v.len));
            cl_rv_obj_put(r, key, arr);
        }
        cl_sbuf_free(&k);
        cl_sbuf_free(&v);
        s = amp + 1;
    }
    return OUT(r);
}

const struct cl_rego_builtin cl_rego_builtins_encoding[] = {
    {"base64.encode", 1, bi_b64_encode, 0},
    {"base64.decode", 1, bi_b64_decode, 0},
    {"base64.is_valid", 1, bi_b64_is_valid, 0},
    {"base64url.encode", 1, bi_b64url_encode, 0},
    {"base64url.encode_no_pad", 1, bi_b64url_encode_nopad, 0},
    {"base64url.decode", 1, bi_b64url_decode, 0},
    {"hex.encode", 1, bi_hex_encode, 0},
    {"hex.decode", 1, bi_hex_decode, 0},
    {"json.marshal", 1, bi_json_marshal, 0},
    {"json.marshal_with_options", 2, bi_json_marshal_with_options, 0},
    {"json.unmarshal", 1, bi_json_unmarshal, 0},
    {"json.is_valid", 1, bi_json_is_valid, 0},
    {"urlquery.encode", 1, bi_urlquery_encode, 0},
    {"urlquery.decode", 1, bi_urlquery_decode, 0},
    {"urlquery.encode_object", 1, bi_urlquery_encode_object, 0},
    {"urlquery.decode_object", 1, bi_urlquery_decode_object, 0},
    {NULL, 0, NULL, 0},
};
