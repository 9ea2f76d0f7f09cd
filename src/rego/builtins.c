/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin registry: the per-file tables of builtins_*.c form one table, searched by name
 * when policies are compiled. Also the core builtins: comparison, membership, aggregates,
 * type checks and conversions that every policy uses.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

static const struct cl_rego_builtin *const tables[] = {
    cl_rego_builtins_core,        cl_rego_builtins_strings,  cl_rego_builtins_numbers,
    cl_rego_builtins_collections, cl_rego_builtins_encoding, cl_rego_builtins_misc,
    cl_rego_builtins_rego,        cl_rego_builtins_time,     cl_rego_builtins_net,
    cl_rego_builtins_crypto,      cl_rego_builtins_jwt,      cl_rego_builtins_json,
    cl_rego_builtins_yaml,        cl_rego_builtins_template, cl_rego_builtins_regex,
    cl_rego_builtins_jsonschema,
};

const struct cl_rego_builtin *cl_rego_builtin_find(const char *name, size_t len)
{
    for (size_t t = 0; t < CL_ARRAY_LEN(tables); t++)
        for (const struct cl_rego_builtin *b = tables[t]; b->name; b++)
            if (len && b->name[0] == name[0] && strncmp(b->name, name, len) == 0 &&
                b->name[len] == 0)
                return b;
    return NULL;
}

#define OUT(v) (*out = (v), 0)

static int bi_equal(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_bool(cl_rv_equal(a[0], a[1])));
}
static int bi_neq(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_bool(!cl_rv_equal(a[0], a[1])));
}
static int bi_lt(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_bool(cl_rv_compare(a[0], a[1]) < 0));
}
static int bi_lte(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_bool(cl_rv_compare(a[0], a[1]) <= 0));
}
static int bi_gt(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_bool(cl_rv_compare(a[0], a[1]) > 0));
}
static int bi_gte(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_bool(cl_rv_compare(a[0], a[1]) >= 0));
}

static int bi_member2(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    const struct cl_rv *coll = a[1];
    switch (coll->type) {
    case CL_RV_SET:
        return OUT(cl_rv_bool(cl_rv_set_has(coll, a[0])));
    case CL_RV_ARRAY:
        for (size_t i = 0; i < coll->u.arr.len; i++)
            if (cl_rv_equal(coll->u.arr.items[i], a[0]))
                return OUT(cl_rv_bool(true));
        return OUT(cl_rv_bool(false));
    case CL_RV_OBJECT:
        for (size_t i = 0; i < coll->u.obj.len; i++)
            if (cl_rv_equal(coll->u.obj.vals[i], a[0]))
                return OUT(cl_rv_bool(true));
        return OUT(cl_rv_bool(false));
    default:
        return OUT(cl_rv_bool(false));
    }
}

static int bi_member3(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    const struct cl_rv *coll = a[2];
    switch (coll->type) {
    case CL_RV_ARRAY: {
        int64_t i;
        if (!cl_rv_as_int(a[0], &i) || i < 0 || (uint64_t)i >= coll->u.arr.len)
            return OUT(cl_rv_bool(false));
        return OUT(cl_rv_bool(cl_rv_equal(coll->u.arr.items[i], a[1])));
    }
    case CL_RV_OBJECT: {
        struct cl_rv *v = cl_rv_obj_get(coll, a[0]);
        return OUT(cl_rv_bool(v && cl_rv_equal(v, a[1])));
    }
    case CL_RV_SET:
        return OUT(cl_rv_bool(cl_rv_equal(a[0], a[1]) && cl_rv_set_has(coll, a[0])));
    default:
        return OUT(cl_rv_bool(false));
    }
}

/* ---- aggregates ---- */

/* Runes as Go counts them: a valid UTF-8 sequence is one rune, every byte of an invalid one
 * is one rune (U+FFFD). */
static size_t utf8_count(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t c = 0;
    for (size_t i = 0; i < n; c++) {
        unsigned char b = s[i];
        size_t len = b < 0x80             ? 1
                     : (b & 0xE0) == 0xC0 ? 2
                     : (b & 0xF0) == 0xE0 ? 3
                     : (b & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len <= 1 || len > n - i) {
            i++;
            continue;
        }
        bool ok = true;
        for (size_t k = 1; k < len && ok; k++)
            ok = (s[i + k] & 0xC0) == 0x80;
        if (ok) {
            unsigned cp = b & (0x7F >> len);
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | (s[i + k] & 0x3F);
            static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        i += ok ? len : 1;
    }
    return c;
}

static int bi_count(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    switch (a[0]->type) {
    case CL_RV_STRING:
        return OUT(cl_rv_int((int64_t)utf8_count(a[0]->u.str.s, a[0]->u.str.len)));
    case CL_RV_ARRAY:
    case CL_RV_SET:
    case CL_RV_OBJECT:
        return OUT(cl_rv_int((int64_t)cl_rv_len(a[0])));
    default:
        return cl_rego_bi_type_error(c, 0, "one of {array, object, set, string}", a[0]);
    }
}

static int want_coll(struct cl_rego_bctx *c, struct cl_rv *const *a)
{
    if (a[0]->type == CL_RV_ARRAY || a[0]->type == CL_RV_SET)
        return 0;
    return cl_rego_bi_type_error(c, 0, "one of {array, set}", a[0]);
}

int cl_rego_num_add(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                    struct cl_rv **out);
int cl_rego_num_mul(struct cl_rego_bctx *c, const struct cl_rv *x, const struct cl_rv *y,
                    struct cl_rv **out);

static int bi_sum(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_coll(c, a) < 0)
        return -1;
    struct cl_rv *acc = cl_rv_int(0);
    for (size_t i = 0; i < a[0]->u.arr.len; i++) {
        struct cl_rv *x = a[0]->u.arr.items[i], *n = NULL;
        if (x->type != CL_RV_NUMBER) {
            cl_rv_decref(acc);
            return cl_rego_bi_type_error(c, 0, "array of numbers", x);
        }
        if (cl_rego_num_add(c, acc, x, &n) < 0) {
            cl_rv_decref(acc);
            return -1;
        }
        cl_rv_decref(acc);
        acc = n;
    }
    return OUT(acc);
}

static int bi_product(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_coll(c, a) < 0)
        return -1;
    struct cl_rv *acc = cl_rv_int(1);
    for (size_t i = 0; i < a[0]->u.arr.len; i++) {
        struct cl_rv *x = a[0]->u.arr.items[i], *n = NULL;
        if (x->type != CL_RV_NUMBER) {
            cl_rv_decref(acc);
            return cl_rego_bi_type_error(c, 0, "array of numbers", x);
        }
        if (cl_rego_num_mul(c, acc, x, &n) < 0) {
            cl_rv_decref(acc);
            return -1;
        }
        cl_rv_decref(acc);
        acc = n;
    }
    return OUT(acc);
}

static int minmax(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out, int sign)
{
    if (want_coll(c, a) < 0)
        return -1;
    if (a[0]->u.arr.len == 0)
        return CL_REGO_UNDEFINED;
    struct cl_rv *best = a[0]->u.arr.items[0];
    for (size_t i = 1; i < a[0]->u.arr.len; i++)
        if (cl_rv_compare(a[0]->u.arr.items[i], best) * sign > 0)
            best = a[0]->u.arr.items[i];
    return OUT(cl_rv_incref(best));
}
static int bi_max(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return minmax(c, a, out, 1);
}
static int bi_min(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return minmax(c, a, out, -1);
}

static int cmp_qsort(const void *x, const void *y)
{
    return cl_rv_compare(*(struct cl_rv *const *)x, *(struct cl_rv *const *)y);
}

static int bi_sort(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_coll(c, a) < 0)
        return -1;
    struct cl_rv *r = cl_rv_array(a[0]->u.arr.len);
    for (size_t i = 0; i < a[0]->u.arr.len; i++)
        cl_rv_array_push(r, cl_rv_incref(a[0]->u.arr.items[i]));
    if (r->u.arr.len > 1)
        qsort(r->u.arr.items, r->u.arr.len, sizeof *r->u.arr.items, cmp_qsort);
    return OUT(r);
}

static int bi_all(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_coll(c, a) < 0)
        return -1;
    for (size_t i = 0; i < a[0]->u.arr.len; i++)
        if (!cl_rv_is_true(a[0]->u.arr.items[i]))
            return OUT(cl_rv_bool(false));
    return OUT(cl_rv_bool(true));
}

static int bi_any(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (want_coll(c, a) < 0)
        return -1;
    for (size_t i = 0; i < a[0]->u.arr.len; i++)
        if (cl_rv_is_true(a[0]->u.arr.items[i]))
            return OUT(cl_rv_bool(true));
    return OUT(cl_rv_bool(false));
}

/* ---- types ---- */

#define IS_TYPE(fname, t)                                                                          \
    static int fname(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)           \
    {                                                                                              \
        (void)c;                                                                                   \
        return OUT(cl_rv_bool(a[0]->type == (t)));                                                 \
    }
IS_TYPE(bi_is_null, CL_RV_NULL)
IS_TYPE(bi_is_boolean, CL_RV_BOOL)
IS_TYPE(bi_is_number, CL_RV_NUMBER)
IS_TYPE(bi_is_string, CL_RV_STRING)
IS_TYPE(bi_is_array, CL_RV_ARRAY)
IS_TYPE(bi_is_object, CL_RV_OBJECT)
IS_TYPE(bi_is_set, CL_RV_SET)

static int bi_type_name(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    return OUT(cl_rv_strz(cl_rv_type_name(a[0])));
}

static int bi_to_number(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    switch (a[0]->type) {
    case CL_RV_NULL:
        return OUT(cl_rv_int(0));
    case CL_RV_BOOL:
        return OUT(cl_rv_int(a[0]->u.b ? 1 : 0));
    case CL_RV_NUMBER:
        return OUT(cl_rv_incref(a[0]));
    case CL_RV_STRING: {
        const char *s = a[0]->u.str.s;
        size_t n = a[0]->u.str.len;
        /* Go's strconv.ParseFloat rules as OPA uses them, restricted to plain decimals */
        bool ok = n > 0;
        size_t i = 0;
        if (ok && (s[0] == '-' || s[0] == '+'))
            i++;
        bool digits = false;
        for (; i < n && ok; i++) {
            char ch = s[i];
            if (ch >= '0' && ch <= '9')
                digits = true;
            else if (ch == '.' || ch == 'e' || ch == 'E' ||
                     ((ch == '-' || ch == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E')))
                continue;
            else
                ok = false;
        }
        struct cl_rv *v = ok && digits
                              ? cl_rv_number_parse(s[0] == '+' ? s + 1 : s, s[0] == '+' ? n - 1 : n)
                              : NULL;
        if (!v) {
            /* Go parses NaN and infinities, which are no Rego numbers: OPA reports a type error */
            size_t o = n && (s[0] == '-' || s[0] == '+') ? 1 : 0;
            if (!strcasecmp(s + o, "nan") || !strcasecmp(s + o, "inf") ||
                !strcasecmp(s + o, "infinity"))
                return cl_rego_bi_type_errorf(
                    c, "operand 1 must be a finite number but got \"%.*s\"", (int)n, s);
        }
        if (!v)
            return cl_rego_bi_error(c, "strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
                                    (int)(n > 64 ? 64 : n), s);
        return OUT(v);
    }
    default:
        return cl_rego_bi_type_error(c, 0, "one of {boolean, null, number, string}", a[0]);
    }
}

/* internal.template_string([parts]): strings as is, each set of values joined */
static int bi_template(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct cl_sbuf b = {0};
    for (size_t i = 0; i < a[0]->u.arr.len; i++) {
        const struct cl_rv *p = a[0]->u.arr.items[i];
        if (p->type == CL_RV_STRING) {
            cl_sbuf_add(&b, p->u.str.s, p->u.str.len);
            continue;
        }
        if (p->type != CL_RV_SET || p->u.arr.len == 0) {
            cl_sbuf_adds(&b, "<undefined>");
            continue;
        }
        if (p->u.arr.len > 1) {
            cl_sbuf_free(&b);
            return cl_rego_bi_error(c, "template-strings must not produce multiple outputs");
        }
        const struct cl_rv *x = p->u.arr.items[0];
        if (x->type == CL_RV_STRING) {
            cl_sbuf_add(&b, x->u.str.s, x->u.str.len);
        } else {
            char *s = cl_rv_to_json_text(x);
            if (x->type == CL_RV_SET || x->type == CL_RV_OBJECT || x->type == CL_RV_ARRAY) {
                free(s);
                s = cl_rv_dump(x);
            }
            cl_sbuf_adds(&b, s);
            free(s);
        }
    }
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int bi_print(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    (void)a;
    return OUT(cl_rv_bool(true)); /* evaluated by the evaluator itself */
}

static int bi_trace(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    return OUT(cl_rv_bool(true));
}

/* opa.runtime(): the runtime information an embedder made available -- none: an empty object
 * (no environment variables or configuration reach policies). */
static int bi_opa_runtime(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    (void)a;
    return OUT(cl_rv_object());
}

/* http.send(request): the request is checked as OPA does (type errors name the bad keys), then
 * refused: policies evaluated by Cloister never reach the network. Tests mock it with `with`. */
static int bi_http_send(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)out;
    static const char *const allowed[] = {
        "body",
        "cache",
        "cache_ignored_headers",
        "caching_mode",
        "enable_redirect",
        "force_cache",
        "force_cache_duration_seconds",
        "force_json_decode",
        "force_yaml_decode",
        "headers",
        "max_retry_attempts",
        "method",
        "raise_error",
        "raw_body",
        "timeout",
        "tls_ca_cert",
        "tls_ca_cert_env_variable",
        "tls_ca_cert_file",
        "tls_client_cert",
        "tls_client_cert_env_variable",
        "tls_client_cert_file",
        "tls_client_key",
        "tls_client_key_env_variable",
        "tls_client_key_file",
        "tls_insecure_skip_verify",
        "tls_server_name",
        "tls_use_system_certs",
        "url",
    };
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    const struct cl_rv *req = a[0];
    struct cl_sbuf bad = {0};
    for (size_t i = 0; i < req->u.obj.len; i++) {
        const struct cl_rv *k = req->u.obj.keys[i];
        bool ok = false;
        for (size_t j = 0; k->type == CL_RV_STRING && j < CL_ARRAY_LEN(allowed) && !ok; j++)
            ok = strcmp(k->u.str.s, allowed[j]) == 0;
        if (!ok) {
            char *t = cl_rv_to_json_text(k);
            cl_sbuf_addf(&bad, "%s%s", bad.len ? ", " : "", t);
            free(t);
        }
    }
    if (bad.len) {
        int rc = cl_rego_bi_type_errorf(c, "invalid request parameters(s): {%s}", bad.s);
        cl_sbuf_free(&bad);
        return rc;
    }
    bool has_method = cl_rv_obj_get_str(req, "method") != NULL,
         has_url = cl_rv_obj_get_str(req, "url") != NULL;
    if (!has_method || !has_url)
        return cl_rego_bi_type_errorf(
            c, "missing required request parameters(s): {%s%s%s}", has_method ? "" : "\"method\"",
            !has_method && !has_url ? ", " : "", has_url ? "" : "\"url\"");
    return cl_rego_bi_error(c, "network access is not available to policies");
}

const struct cl_rego_builtin cl_rego_builtins_core[] = {
    {"equal", 2, bi_equal, 0},
    {"neq", 2, bi_neq, 0},
    {"lt", 2, bi_lt, 0},
    {"lte", 2, bi_lte, 0},
    {"gt", 2, bi_gt, 0},
    {"gte", 2, bi_gte, 0},
    {"internal.member_2", 2, bi_member2, 0},
    {"internal.member_3", 3, bi_member3, 0},
    {"internal.template_string", 1, bi_template, 0},
    {"count", 1, bi_count, 0},
    {"sum", 1, bi_sum, 0},
    {"product", 1, bi_product, 0},
    {"max", 1, bi_max, 0},
    {"min", 1, bi_min, 0},
    {"sort", 1, bi_sort, 0},
    {"all", 1, bi_all, 0},
    {"any", 1, bi_any, 0},
    {"is_null", 1, bi_is_null, 0},
    {"is_boolean", 1, bi_is_boolean, 0},
    {"is_number", 1, bi_is_number, 0},
    {"is_string", 1, bi_is_string, 0},
    {"is_array", 1, bi_is_array, 0},
    {"is_object", 1, bi_is_object, 0},
    {"is_set", 1, bi_is_set, 0},
    {"type_name", 1, bi_type_name, 0},
    {"to_number", 1, bi_to_number, 0},
    {"print", 0, bi_print, CL_REGO_BI_VARIADIC},
    {"trace", 1, bi_trace, 0},
    {"opa.runtime", 0, bi_opa_runtime, 0},
    {"http.send", 1, bi_http_send, CL_REGO_BI_NONDET},
    {NULL, 0, NULL, 0},
};
