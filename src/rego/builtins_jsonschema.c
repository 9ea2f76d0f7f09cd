/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.verify_schema(schema) and json.match_schema(document, schema) with OPA's semantics,
 * which are those of its gojsonschema fork: JSON Schema drafts 4, 6 and 7 (the draft named by
 * $schema, otherwise the hybrid reading: id or $id, boolean or numeric exclusive bounds),
 * schema errors with gojsonschema's texts, and validation errors as
 * {"error", "type", "field", "desc"} objects in gojsonschema's order (properties in key order
 * where Go's map order is random). $ref resolves within the schema document only; remote
 * references are refused. Patterns are compiled by PCRE2 with a match limit.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <math.h>
#include <openssl/bn.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/sbuf.h"
#include "json/json.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

#define SCHEMA_MAX_DEPTH 256      /* nesting of schemas, and of $ref hops while validating */
#define SCHEMA_MAX_ERRORS 10000   /* errors kept per validation */
#define SCHEMA_MATCH_LIMIT 100000 /* PCRE2 backtracking budget per match */

enum draft { DRAFT4 = 4, DRAFT6 = 6, DRAFT7 = 7, HYBRID = 100 };

struct schema {
    json_t *node; /* borrowed from the document */
    int pass;     /* boolean schema: 1 true, 0 false, -1 not boolean */
    struct schema *ref;
    char *types[8];
    int ntypes;
    struct schema **props; /* properties, in key order */
    const char **prop_names;
    size_t nprops;
    int addl_props; /* -1 absent, 0 false, 1 true; with addl_props_schema */
    struct schema *addl_props_schema;
    pcre2_code **pp_re;
    struct schema **pp;
    size_t npp;
    struct schema *prop_names_schema;
    /* dependencies: name -> array of names or schema */
    const char **dep_names;
    json_t **dep_lists;
    struct schema **dep_schemas;
    size_t ndeps;
    struct schema **items;
    size_t nitems;
    bool items_single;
    int addl_items;
    struct schema *addl_items_schema;
    json_t *multiple_of, *minimum, *maximum, *excl_min, *excl_max;        /* numbers (borrowed) */
    int64_t min_len, max_len, min_items, max_items, min_props, max_props; /* -1: absent */
    pcre2_code *pattern;
    const char *pattern_text;
    const char *format;
    const char **required;
    size_t nrequired;
    bool unique;
    struct schema *contains;
    char *konst; /* canonical JSON */
    char **enums;
    size_t nenums;
    bool enum_present;
    struct schema **any_of, **one_of, **all_of;
    size_t nany, none, nall;
    struct schema *not_, *if_, *then_, *else_;
};

struct compiler {
    json_t *root;
    enum draft draft;
    struct schema **all; /* every schema compiled, for release */
    size_t nall, cap;
    struct schema **memo; /* open addressing by node address, for $ref reuse and cycles */
    size_t memocap;
    char err[CL_ERR_MSG_MAX];
    int depth;
};

static void schema_free(struct schema *s)
{
    for (int i = 0; i < s->ntypes; i++)
        free(s->types[i]);
    free(s->props);
    free(s->prop_names);
    for (size_t i = 0; i < s->npp; i++)
        pcre2_code_free(s->pp_re[i]);
    free(s->pp_re);
    free(s->pp);
    free(s->dep_names);
    free(s->dep_lists);
    free(s->dep_schemas);
    free(s->items);
    pcre2_code_free(s->pattern);
    free(s->required);
    free(s->konst);
    for (size_t i = 0; i < s->nenums; i++)
        free(s->enums[i]);
    free(s->enums);
    free(s->any_of);
    free(s->one_of);
    free(s->all_of);
    free(s);
}

static void compiler_free(struct compiler *c)
{
    for (size_t i = 0; i < c->nall; i++)
        schema_free(c->all[i]);
    free(c->all);
    free(c->memo);
}

static size_t memo_slot(const struct compiler *c, const json_t *node)
{
    size_t h = (size_t)((uintptr_t)node >> 4) * 0x9E3779B97F4A7C15ULL;
    size_t i = h & (c->memocap - 1);
    while (c->memo[i] && c->memo[i]->node != node)
        i = (i + 1) & (c->memocap - 1);
    return i;
}

static void memo_put(struct compiler *c, struct schema *s)
{
    if ((c->nall + 1) * 2 > c->memocap) {
        size_t oldcap = c->memocap;
        struct schema **old = c->memo;
        c->memocap = oldcap ? oldcap * 2 : 64;
        c->memo = cl_xcalloc(c->memocap, sizeof *c->memo);
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                c->memo[memo_slot(c, old[i]->node)] = old[i];
        free(old);
    }
    c->memo[memo_slot(c, s->node)] = s;
}

CL_PRINTF(2, 3) static struct schema *cerr(struct compiler *c, const char *fmt, ...)
{
    if (!c->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof c->err, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* Go's json.Marshal of the value re-read without json.Number (gojsonschema's
 * marshalWithoutNumber): keys sorted, numbers as float64. */
static void canon(struct cl_sbuf *b, const json_t *v)
{
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        const char **keys = cl_xcalloc(n + 1, sizeof *keys);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)(uintptr_t)v, key, val) keys[k++] = key;
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
                const char *t = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = t;
            }
        cl_sbuf_addc(b, '{');
        for (size_t i = 0; i < n; i++) {
            json_t *ks = json_string(keys[i]);
            char *kt = json_dumps(ks, JSON_ENCODE_ANY | JSON_COMPACT);
            cl_sbuf_adds(b, i ? "," : "");
            cl_sbuf_adds(b, kt ? kt : "\"\"");
            cl_sbuf_addc(b, ':');
            free(kt);
            json_decref(ks);
            canon(b, json_object_get(v, keys[i]));
        }
        cl_sbuf_addc(b, '}');
        free(keys);
        break;
    }
    case JSON_ARRAY:
        cl_sbuf_addc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            cl_sbuf_adds(b, i ? "," : "");
            canon(b, json_array_get(v, i));
        }
        cl_sbuf_addc(b, ']');
        break;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number_value(v);
        if (json_is_integer(v) && llabs((long long)json_integer_value(v)) < (1LL << 53)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        } else if (d == floor(d) && fabs(d) < 1e21) {
            snprintf(buf, sizeof buf, "%.0f", d);
        } else {
            for (int p = 1; p <= 17; p++) {
                snprintf(buf, sizeof buf, "%.*g", p, d);
                if (strtod(buf, NULL) == d)
                    break;
            }
        }
        cl_sbuf_adds(b, buf);
        break;
    }
    default: {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        cl_sbuf_adds(b, t ? t : "null");
        free(t);
    }
    }
}

static char *canon_text(const json_t *v)
{
    struct cl_sbuf b = {0};
    canon(&b, v);
    return b.s ? cl_sbuf_steal(&b) : cl_xstrndup("", 0);
}

static pcre2_code *compile_re(const char *pat)
{
    int ec;
    PCRE2_SIZE eo;
    return pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
}

static bool re_match(pcre2_code *re, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (mc)
        pcre2_set_match_limit(mc, SCHEMA_MATCH_LIMIT);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, mc) : -1;
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static bool is_integral(const json_t *v)
{
    return json_is_integer(v) ||
           (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
            isfinite(json_real_value(v)));
}

static struct schema *compile(struct compiler *c, json_t *node);

static const char *const valid_types[] = {"array", "boolean", "integer", "number",
                                          "null",  "object",  "string"};

static bool add_type(struct compiler *c, struct schema *s, const char *t)
{
    bool ok = false;
    for (size_t i = 0; i < CL_ARRAY_LEN(valid_types); i++)
        ok = ok || !strcmp(t, valid_types[i]);
    if (!ok) {
        cerr(c,
             "has a primitive type that is NOT VALID -- given: /%.100s/ Expected valid values "
             "are:[array boolean integer number null object string]",
             t);
        return false;
    }
    for (int i = 0; i < s->ntypes; i++)
        if (!strcmp(s->types[i], t)) {
            cerr(c, "%s type is duplicated", t);
            return false;
        }
    if (s->ntypes < 8)
        s->types[s->ntypes++] = cl_xstrndup(t, strlen(t));
    return true;
}

/* A non-negative integer keyword; -1 when absent, -2 on error (message set). */
static int64_t int_keyword(struct compiler *c, json_t *m, const char *key)
{
    json_t *v = json_object_get(m, key);
    if (!v)
        return -1;
    if (!json_is_number(v) || !is_integral(v)) {
        cerr(c, "%s must be of an integer", key);
        return -2;
    }
    double d = json_number_value(v);
    if (d < 0) {
        cerr(c, "%s must be greater than or equal to 0", key);
        return -2;
    }
    return d > 1e15 ? (int64_t)1e15 : (int64_t)d;
}

static struct schema *sub(struct compiler *c, json_t *v, const char *what)
{
    if (!json_is_object(v) && !json_is_boolean(v))
        return cerr(c, "Invalid type. Expected: %s, given: %s", "schema", what);
    return compile(c, v);
}

/* JSON pointer resolution of a local $ref. */
static json_t *resolve_ref(struct compiler *c, const char *ref)
{
    if (ref[0] != '#')
        return NULL;
    if (!ref[1])
        return c->root;
    if (ref[1] != '/')
        return NULL;
    char *ptr = cl_xstrndup(ref + 1, strlen(ref + 1));
    /* percent-decoding of the fragment */
    char *w = ptr;
    for (char *r = ptr; *r; r++) {
        if (r[0] == '%' && r[1] && r[2]) {
            char hx[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(hx, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    json_t *t = cl_json_pointer(c->root, ptr);
    free(ptr);
    return t;
}

/* ---- keywords ----
 * One function per keyword (or group read together), run in the order of kw_table: the first
 * one that fails names the error. Each returns 0 to go on, KW_DONE when the schema is complete
 * ($ref), -1 on error (message set by cerr). */
enum { KW_DONE = 1 };

static bool is_schema_node(const json_t *v)
{
    return json_is_object(v) || json_is_boolean(v);
}

/* An optional string keyword: *dst receives it (NULL when absent). */
static int get_str(struct compiler *c, json_t *m, const char *key, const char **dst)
{
    json_t *gv = json_object_get(m, key);
    if (gv && !json_is_string(gv)) {
        cerr(c, "Invalid type. Expected: string, given: %s", key);
        return -1;
    }
    *dst = gv ? json_string_value(gv) : NULL;
    return 0;
}

/* Compiles v into *dst; -1 when it fails (message set). */
static int compile_into(struct compiler *c, json_t *v, struct schema **dst)
{
    *dst = compile(c, v);
    return *dst ? 0 : -1;
}

/* A list of schemas: *dst gets room for all of v, *cnt counts those compiled. */
static int compile_list(struct compiler *c, json_t *v, struct schema ***dst, size_t *cnt,
                        const char *bad)
{
    *dst = cl_xcalloc(json_array_size(v) + 1, sizeof **dst);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *sv = json_array_get(v, i);
        if (!is_schema_node(sv)) {
            cerr(c, "%s", bad);
            return -1;
        }
        if (!((*dst)[(*cnt)++] = compile(c, sv)))
            return -1;
    }
    return 0;
}

static int kw_id(struct compiler *c, struct schema *s, json_t *m)
{
    (void)s;
    const char *idv;
    return get_str(c, m, c->draft == DRAFT4 ? "id" : "$id", &idv);
}

static int kw_definitions(struct compiler *c, struct schema *s, json_t *m)
{
    (void)s;
    json_t *v = json_object_get(m, "definitions");
    if (!v)
        return 0;
    if (!json_is_object(v)) {
        cerr(c, "Invalid type. Expected: array of schemas, given: definitions");
        return -1;
    }
    const char *k;
    json_t *dv;
    json_object_foreach(v, k, dv)
    {
        if (!is_schema_node(dv)) {
            cerr(c, "Invalid type. Expected: array of schemas, given: definitions");
            return -1;
        }
        if (!compile(c, dv))
            return -1;
    }
    return 0;
}

static int kw_annotations(struct compiler *c, struct schema *s, json_t *m)
{
    (void)s;
    const char *title, *desc;
    return get_str(c, m, "title", &title) < 0 || get_str(c, m, "description", &desc) < 0 ? -1 : 0;
}

/* $ref overrides its siblings (drafts 4 to 7) */
static int kw_ref(struct compiler *c, struct schema *s, json_t *m)
{
    const char *refv;
    if (get_str(c, m, "$ref", &refv) < 0)
        return -1;
    if (!refv)
        return 0;
    json_t *target = resolve_ref(c, refv);
    if (!target) {
        cerr(c,
             "Reference %.200s could not be resolved (only references within the schema are "
             "supported)",
             refv);
        return -1;
    }
    if (!is_schema_node(target)) {
        cerr(c, "schema must be of type object");
        return -1;
    }
    return compile_into(c, target, &s->ref) < 0 ? -1 : KW_DONE;
}

static int kw_type(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "type");
    if (!v)
        return 0;
    if (json_is_string(v))
        return add_type(c, s, json_string_value(v)) ? 0 : -1;
    if (!json_is_array(v)) {
        cerr(c, "Invalid type. Expected: type, given: string/array of strings");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_string(t)) {
            cerr(c, "Invalid type. Expected: type, given: string/array of strings");
            return -1;
        }
        if (!add_type(c, s, json_string_value(t)))
            return -1;
    }
    return 0;
}

static int kw_properties(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "properties");
    if (!v)
        return 0;
    if (!json_is_object(v)) {
        cerr(c, "properties must be of type object");
        return -1;
    }
    size_t n = json_object_size(v), k = 0;
    s->props = cl_xcalloc(n + 1, sizeof *s->props);
    s->prop_names = cl_xcalloc(n + 1, sizeof *s->prop_names);
    const char *key;
    json_t *pv;
    json_object_foreach(v, key, pv) s->prop_names[k++] = key;
    for (size_t i = 1; i < n; i++) /* key order */
        for (size_t j = i; j > 0 && strcmp(s->prop_names[j - 1], s->prop_names[j]) > 0; j--) {
            const char *t = s->prop_names[j];
            s->prop_names[j] = s->prop_names[j - 1];
            s->prop_names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        json_t *pn = json_object_get(v, s->prop_names[i]);
        if (!is_schema_node(pn)) {
            cerr(c, "Expected: schema, given: Invalid JSON");
            return -1;
        }
        if (compile_into(c, pn, &s->props[i]) < 0)
            return -1;
        s->nprops++;
    }
    return 0;
}

/* additionalProperties / additionalItems: a boolean or a schema. */
static int bool_or_schema(struct compiler *c, json_t *m, const char *key, int *flag,
                          struct schema **dst)
{
    json_t *v = json_object_get(m, key);
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *flag = json_is_true(v);
        return 0;
    }
    if (json_is_object(v))
        return compile_into(c, v, dst);
    cerr(c, "Invalid type. Expected: boolean/schema, given: %s", key);
    return -1;
}

static int kw_addl_props(struct compiler *c, struct schema *s, json_t *m)
{
    return bool_or_schema(c, m, "additionalProperties", &s->addl_props, &s->addl_props_schema);
}

static int kw_pattern_props(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "patternProperties");
    if (!v)
        return 0;
    if (!json_is_object(v)) {
        cerr(c, "Invalid type. Expected: schema, given: patternProperties");
        return -1;
    }
    size_t n = json_object_size(v);
    s->pp = cl_xcalloc(n + 1, sizeof *s->pp);
    s->pp_re = cl_xcalloc(n + 1, sizeof *s->pp_re);
    const char *key;
    json_t *pv;
    json_object_foreach(v, key, pv)
    {
        pcre2_code *re = compile_re(key);
        if (!re) {
            cerr(c, "Invalid regex pattern '%.200s'", key);
            return -1;
        }
        s->pp_re[s->npp] = re;
        if (!(s->pp[s->npp++] = sub(c, pv, "patternProperties")))
            return -1;
    }
    return 0;
}

static int kw_property_names(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "propertyNames");
    if (!v || c->draft < DRAFT6)
        return 0;
    if (!is_schema_node(v)) {
        cerr(c, "Invalid type. Expected: schema, given: patternProperties");
        return -1;
    }
    return compile_into(c, v, &s->prop_names_schema);
}

static int kw_dependencies(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "dependencies");
    if (!v)
        return 0;
    if (!json_is_object(v)) {
        cerr(c, "dependencies must be of type object");
        return -1;
    }
    size_t n = json_object_size(v);
    s->dep_names = cl_xcalloc(n + 1, sizeof *s->dep_names);
    s->dep_lists = cl_xcalloc(n + 1, sizeof *s->dep_lists);
    s->dep_schemas = cl_xcalloc(n + 1, sizeof *s->dep_schemas);
    const char *key;
    json_t *dv;
    json_object_foreach(v, key, dv)
    {
        s->dep_names[s->ndeps] = key;
        bool strings = json_is_array(dv);
        for (size_t i = 0; strings && i < json_array_size(dv); i++)
            strings = json_is_string(json_array_get(dv, i));
        if (strings) {
            s->dep_lists[s->ndeps++] = dv;
        } else if (!json_is_array(dv) && is_schema_node(dv)) {
            if (compile_into(c, dv, &s->dep_schemas[s->ndeps++]) < 0)
                return -1;
        } else {
            cerr(c, "dependency must be of type schema or array of strings");
            return -1;
        }
    }
    return 0;
}

static int kw_items(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "items");
    if (!v)
        return 0;
    static const char bad[] = "Invalid type. Expected: schema/array of schemas, given: items";
    if (json_is_array(v))
        return compile_list(c, v, &s->items, &s->nitems, bad);
    if (!is_schema_node(v)) {
        cerr(c, "%s", bad);
        return -1;
    }
    s->items = cl_xcalloc(2, sizeof *s->items);
    if (compile_into(c, v, &s->items[0]) < 0)
        return -1;
    s->nitems = 1;
    s->items_single = true;
    return 0;
}

static int kw_addl_items(struct compiler *c, struct schema *s, json_t *m)
{
    return bool_or_schema(c, m, "additionalItems", &s->addl_items, &s->addl_items_schema);
}

static int kw_multiple_of(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "multipleOf");
    if (!v)
        return 0;
    if (!json_is_number(v)) {
        cerr(c, "Invalid type. Expected: number, given: multipleOf");
        return -1;
    }
    if (json_number_value(v) <= 0) {
        cerr(c, "multipleOf must be strictly greater than 0");
        return -1;
    }
    s->multiple_of = v;
    return 0;
}

/* minimum / maximum: a number. */
static int bound(struct compiler *c, json_t *m, const char *key, json_t **dst)
{
    json_t *v = json_object_get(m, key);
    if (!v)
        return 0;
    if (!json_is_number(v)) {
        cerr(c, "%s must be of a number", key);
        return -1;
    }
    *dst = v;
    return 0;
}

/* exclusiveMinimum / exclusiveMaximum: a boolean qualifying the bound (draft 4), a number of
 * its own (drafts 6 and 7), either (the hybrid draft). */
static int exclusive(struct compiler *c, json_t *m, const char *name, const char *base,
                     json_t **bnd, json_t **excl)
{
    json_t *v = json_object_get(m, name);
    if (!v)
        return 0;
    if (json_is_boolean(v) && c->draft != DRAFT6 && c->draft != DRAFT7) {
        if (!*bnd) {
            cerr(c, "%s cannot be used without %s", name, base);
            return -1;
        }
        if (json_is_true(v)) {
            *excl = *bnd;
            *bnd = NULL;
        }
        return 0;
    }
    if (json_is_number(v) && c->draft != DRAFT4) {
        *excl = v;
        return 0;
    }
    cerr(c, "Invalid type. Expected: %s, given: %s",
         c->draft == DRAFT4   ? "boolean"
         : c->draft == HYBRID ? "boolean/number"
                              : "number",
         name);
    return -1;
}

static int kw_bounds(struct compiler *c, struct schema *s, json_t *m)
{
    if (bound(c, m, "minimum", &s->minimum) < 0 ||
        exclusive(c, m, "exclusiveMinimum", "minimum", &s->minimum, &s->excl_min) < 0 ||
        bound(c, m, "maximum", &s->maximum) < 0 ||
        exclusive(c, m, "exclusiveMaximum", "maximum", &s->maximum, &s->excl_max) < 0)
        return -1;
    return 0;
}

/* A pair of non-negative integer keywords, the first not above the second. */
static int int_pair(struct compiler *c, json_t *m, const char *lo_key, const char *hi_key,
                    int64_t *lo, int64_t *hi, bool ordered)
{
    if ((*lo = int_keyword(c, m, lo_key)) == -2 || (*hi = int_keyword(c, m, hi_key)) == -2)
        return -1;
    if (ordered && *lo >= 0 && *hi >= 0 && *lo > *hi) {
        cerr(c, "%s cannot be greater than %s", lo_key, hi_key);
        return -1;
    }
    return 0;
}

static int kw_lengths(struct compiler *c, struct schema *s, json_t *m)
{
    return int_pair(c, m, "minLength", "maxLength", &s->min_len, &s->max_len, true);
}

static int kw_pattern(struct compiler *c, struct schema *s, json_t *m)
{
    if (get_str(c, m, "pattern", &s->pattern_text) < 0)
        return -1;
    if (s->pattern_text && !(s->pattern = compile_re(s->pattern_text))) {
        cerr(c, "pattern must be a valid regex");
        return -1;
    }
    return get_str(c, m, "format", &s->format);
}

static int kw_prop_counts(struct compiler *c, struct schema *s, json_t *m)
{
    return int_pair(c, m, "minProperties", "maxProperties", &s->min_props, &s->max_props, true);
}

static int kw_required(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "required");
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        cerr(c, "required must be of an array");
        return -1;
    }
    s->required = cl_xcalloc(json_array_size(v) + 1, sizeof *s->required);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *rv = json_array_get(v, i);
        if (!json_is_string(rv)) {
            cerr(c, "Invalid type. Expected: string, given: required");
            return -1;
        }
        for (size_t j = 0; j < s->nrequired; j++)
            if (!strcmp(s->required[j], json_string_value(rv))) {
                cerr(c, "required items must be unique");
                return -1;
            }
        s->required[s->nrequired++] = json_string_value(rv);
    }
    return 0;
}

static int kw_item_counts(struct compiler *c, struct schema *s, json_t *m)
{
    if (int_pair(c, m, "minItems", "maxItems", &s->min_items, &s->max_items, false) < 0)
        return -1;
    json_t *v = json_object_get(m, "uniqueItems");
    if (v && !json_is_boolean(v)) {
        cerr(c, "uniqueItems must be of a boolean");
        return -1;
    }
    s->unique = v && json_is_true(v);
    return 0;
}

static int kw_contains(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "contains");
    if (!v || c->draft < DRAFT6)
        return 0;
    return (s->contains = sub(c, v, "contains")) ? 0 : -1;
}

static int kw_values(struct compiler *c, struct schema *s, json_t *m)
{
    json_t *v = json_object_get(m, "const");
    if (v && c->draft >= DRAFT6)
        s->konst = canon_text(v);
    if (!(v = json_object_get(m, "enum")))
        return 0;
    if (!json_is_array(v)) {
        cerr(c, "enum must be of an array");
        return -1;
    }
    s->enum_present = true;
    s->enums = cl_xcalloc(json_array_size(v) + 1, sizeof *s->enums);
    for (size_t i = 0; i < json_array_size(v); i++) {
        char *t = canon_text(json_array_get(v, i));
        for (size_t j = 0; j < s->nenums; j++)
            if (!strcmp(s->enums[j], t)) {
                free(t);
                cerr(c, "enum items must be unique");
                return -1;
            }
        s->enums[s->nenums++] = t;
    }
    return 0;
}

static int kw_combinators(struct compiler *c, struct schema *s, json_t *m)
{
    static const char *const combos[] = {"oneOf", "anyOf", "allOf"};
    struct schema ***dst[] = {&s->one_of, &s->any_of, &s->all_of};
    size_t *cnt[] = {&s->none, &s->nany, &s->nall};
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(m, combos[k]);
        if (!v)
            continue;
        if (!json_is_array(v)) {
            cerr(c, "%s must be of an array", combos[k]);
            return -1;
        }
        if (compile_list(c, v, dst[k], cnt[k], "Expected: schema, given: Invalid JSON") < 0)
            return -1;
    }
    return 0;
}

static int kw_conditions(struct compiler *c, struct schema *s, json_t *m)
{
    static const char *const conds[] = {"not", "if", "then", "else"};
    struct schema **dst[] = {&s->not_, &s->if_, &s->then_, &s->else_};
    for (int k = 0; k < 4; k++) {
        json_t *v = json_object_get(m, conds[k]);
        if (!v || (k > 0 && c->draft < DRAFT7))
            continue;
        if (!is_schema_node(v)) {
            cerr(c, "%s must be of an object", conds[k]);
            return -1;
        }
        if (compile_into(c, v, dst[k]) < 0)
            return -1;
    }
    return 0;
}

/* In the order gojsonschema reads them (which error is reported first). */
static int (*const kw_table[])(struct compiler *, struct schema *, json_t *) = {
    kw_id,           kw_definitions,   kw_annotations,
    kw_ref,          kw_type,          kw_properties,
    kw_addl_props,   kw_pattern_props, kw_property_names,
    kw_dependencies, kw_items,         kw_addl_items,
    kw_multiple_of,  kw_bounds,        kw_lengths,
    kw_pattern,      kw_prop_counts,   kw_required,
    kw_item_counts,  kw_contains,      kw_values,
    kw_combinators,  kw_conditions,
};

static struct schema *compile(struct compiler *c, json_t *node)
{
    if (c->memocap && c->memo[memo_slot(c, node)])
        return c->memo[memo_slot(c, node)];
    if (++c->depth > SCHEMA_MAX_DEPTH)
        return cerr(c, "schema nested too deeply");
    struct schema *s = cl_xcalloc(1, sizeof *s);
    s->node = node;
    s->pass = -1;
    s->addl_props = -1;
    s->addl_items = -1;
    s->min_len = s->max_len = s->min_items = s->max_items = s->min_props = s->max_props = -1;
    if (c->nall == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->all = cl_xrealloc(c->all, c->cap * sizeof *c->all);
    }
    memo_put(c, s);
    c->all[c->nall++] = s;
    struct schema *r = s;
    if (json_is_boolean(node)) {
        s->pass = json_is_true(node);
    } else if (!json_is_object(node)) {
        r = cerr(c, "Expected: schema, given: Invalid JSON");
    } else {
        for (size_t i = 0; i < CL_ARRAY_LEN(kw_table); i++) {
            int rc = kw_table[i](c, s, node);
            if (rc < 0)
                r = NULL;
            if (rc != 0)
                break;
        }
    }
    c->depth--;
    return r;
}

/* ---- validation ---- */

struct verr {
    const char *type;
    char *field;
    char *desc;
};

struct result {
    struct verr *v;
    size_t n, cap;
    int score;
};

struct validator {
    struct cl_rego_bctx *c;
    int depth;
    bool limit; /* stop: too deep, or the memory cap (rc -2) */
    int rc;
};

static void result_free(struct result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].field);
        free(r->v[i].desc);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Context path: "(root)", then ".a", ".0", ... */
struct ctx {
    const struct ctx *parent;
    const char *name;
};

static char *ctx_field(const struct ctx *x)
{
    const char *parts[SCHEMA_MAX_DEPTH * 2 + 8];
    size_t n = 0;
    for (; x && n < CL_ARRAY_LEN(parts); x = x->parent)
        parts[n++] = x->name;
    struct cl_sbuf b = {0};
    /* Field() drops the "(root)." prefix: the root alone is "(root)" */
    if (n == 1)
        cl_sbuf_adds(&b, parts[0]);
    for (size_t i = n > 1 ? n - 1 : 0; i-- > 0;) {
        cl_sbuf_adds(&b, parts[i]);
        if (i)
            cl_sbuf_addc(&b, '.');
    }
    return b.s ? cl_sbuf_steal(&b) : cl_xstrndup("", 0);
}

CL_PRINTF(4, 5)
static void add_err(struct result *r, const char *type, const struct ctx *x, const char *fmt, ...)
{
    if (r->n >= SCHEMA_MAX_ERRORS)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->v = cl_xrealloc(r->v, r->cap * sizeof *r->v);
    }
    char d[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    r->v[r->n].type = type;
    r->v[r->n].field = ctx_field(x);
    r->v[r->n].desc = cl_xstrndup(d, strlen(d));
    r->n++;
}

static void merge(struct result *into, struct result *from)
{
    for (size_t i = 0; i < from->n; i++) {
        if (into->n >= SCHEMA_MAX_ERRORS) {
            free(from->v[i].field);
            free(from->v[i].desc);
            continue;
        }
        if (into->n == into->cap) {
            into->cap = into->cap ? into->cap * 2 : 8;
            into->v = cl_xrealloc(into->v, into->cap * sizeof *into->v);
        }
        into->v[into->n++] = from->v[i];
    }
    free(from->v);
    memset(from, 0, sizeof *from);
}

/* Numbers as big.Float prints them in gojsonschema's messages (%g with 10 digits). */
static void fmt_num(const json_t *v, char *buf, size_t cap)
{
    if (json_is_integer(v) && llabs((long long)json_integer_value(v)) < 10000000000LL)
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, cap, "%.10g", json_number_value(v));
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return is_integral(v) ? "integer" : "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool has_type(const struct schema *s, const char *t)
{
    for (int i = 0; i < s->ntypes; i++)
        if (!strcmp(s->types[i], t))
            return true;
    return false;
}

static void types_text(const struct schema *s, char *buf, size_t cap)
{
    if (s->ntypes == 1) {
        snprintf(buf, cap, "%s", s->types[0]);
        return;
    }
    struct cl_sbuf b = {0};
    cl_sbuf_addc(&b, '[');
    for (int i = 0; i < s->ntypes; i++) {
        cl_sbuf_adds(&b, i ? "," : "");
        cl_sbuf_adds(&b, s->types[i]);
    }
    cl_sbuf_addc(&b, ']');
    snprintf(buf, cap, "%s", b.s);
    cl_sbuf_free(&b);
}

/* Exact rational multipleOf via decimal text: value / m must be an integer. */
static bool decimal_parts(const json_t *v, BIGNUM **mant, int *exp10)
{
    char buf[64];
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        *exp10 = 0;
    } else {
        double d = json_real_value(v);
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, sizeof buf, "%.*e", p - 1, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        /* "-d.ddde+XX" */
        char digits[40];
        size_t nd = 0;
        char *e = strchr(buf, 'e');
        int x = e ? atoi(e + 1) : 0;
        if (e)
            *e = 0;
        int frac = 0;
        bool after = false;
        for (char *p = buf; *p; p++) {
            if (*p == '.') {
                after = true;
                continue;
            }
            if (nd < sizeof digits - 1)
                digits[nd++] = *p;
            frac += after;
        }
        digits[nd] = 0;
        snprintf(buf, sizeof buf, "%s", digits);
        *exp10 = x - frac;
    }
    *mant = NULL;
    return BN_dec2bn(mant, buf) > 0;
}

static bool is_multiple(const json_t *v, const json_t *m)
{
    BIGNUM *a = NULL, *b = NULL, *ten = BN_new(), *p = BN_new(), *rem = BN_new();
    BN_CTX *bc = BN_CTX_new();
    int ea, eb;
    bool ok = false;
    if (!ten || !p || !rem || !bc || !decimal_parts(v, &a, &ea) || !decimal_parts(m, &b, &eb))
        goto out;
    /* scale to the smaller exponent */
    if (abs(ea - eb) > 400)
        goto out; /* absurd scales: treat as not a multiple */
    BN_set_word(ten, 10);
    if (ea > eb) {
        BN_set_word(p, (BN_ULONG)(ea - eb));
        BN_exp(p, ten, p, bc);
        BN_mul(a, a, p, bc);
    } else if (eb > ea) {
        BN_set_word(p, (BN_ULONG)(eb - ea));
        BN_exp(p, ten, p, bc);
        BN_mul(b, b, p, bc);
    }
    if (BN_is_zero(b))
        goto out;
    ok = BN_mod(rem, a, b, bc) == 1 && BN_is_zero(rem);
out:
    BN_free(a);
    BN_free(b);
    BN_free(ten);
    BN_free(p);
    BN_free(rem);
    BN_CTX_free(bc);
    return ok;
}

static double num(const json_t *v)
{
    return json_number_value(v);
}

/* gojsonschema's default format checkers (strings only). */
static bool digits_n(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool valid_date(const char *s)
{
    if (!digits_n(s, 4) || s[4] != '-' || !digits_n(s + 5, 2) || s[7] != '-' || !digits_n(s + 8, 2))
        return false;
    int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8);
    static const int dim[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > dim[mo - 1])
        return false;
    bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return !(mo == 2 && d == 29 && !leap);
}

/* hh:mm:ss(.frac)?(Z|+hh:mm); returns the bytes consumed or 0 */
static size_t valid_time(const char *s, bool need_zone)
{
    if (!digits_n(s, 2) || s[2] != ':' || !digits_n(s + 3, 2) || s[5] != ':' || !digits_n(s + 6, 2))
        return 0;
    if (atoi(s) > 23 || atoi(s + 3) > 59 || atoi(s + 6) > 59)
        return 0;
    size_t i = 8;
    if (s[i] == '.') {
        i++;
        size_t k = 0;
        while (s[i] >= '0' && s[i] <= '9')
            i++, k++;
        if (!k)
            return 0;
    }
    if (s[i] == 'Z' || s[i] == 'z')
        return i + 1;
    if ((s[i] == '+' || s[i] == '-') && digits_n(s + i + 1, 2) && s[i + 3] == ':' &&
        digits_n(s + i + 4, 2))
        return atoi(s + i + 1) <= 23 && atoi(s + i + 4) <= 59 ? i + 6 : 0;
    return need_zone ? 0 : i;
}

static bool host_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return true;
}

static bool valid_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 255)
        return false;
    const char *p = s, *e = s + n;
    while (p <= e) {
        const char *dot = memchr(p, '.', (size_t)(e - p));
        const char *le = dot ? dot : e;
        if (!host_label_ok(p, (size_t)(le - p)))
            return false;
        if (!dot)
            break;
        p = dot + 1;
    }
    return true;
}

static bool valid_ip(const char *s, bool v6)
{
    unsigned char buf[16];
    if (!v6 && !strchr(s, '.'))
        return false;
    if (v6 && !strchr(s, ':'))
        return false;
    return inet_pton(v6 ? AF_INET6 : AF_INET, s, buf) == 1;
}

static bool format_ok(const char *format, const json_t *v)
{
    if (!json_is_string(v))
        return true;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return false;
    if (!strcmp(format, "date"))
        return n == 10 && valid_date(s);
    if (!strcmp(format, "time"))
        return valid_time(s, true) == n;
    if (!strcmp(format, "date-time"))
        return n > 11 && valid_date(s) && (s[10] == 'T' || s[10] == 't') &&
               valid_time(s + 11, true) == n - 11;
    if (!strcmp(format, "email") || !strcmp(format, "idn-email")) {
        const char *at = strrchr(s, '@');
        return at && at != s && at[1] && !strchr(s, ' ');
    }
    if (!strcmp(format, "hostname") || !strcmp(format, "idn-hostname"))
        return valid_hostname(s, n);
    if (!strcmp(format, "ipv4"))
        return valid_ip(s, false);
    if (!strcmp(format, "ipv6"))
        return valid_ip(s, true);
    if (!strcmp(format, "uuid")) {
        if (n != 36)
            return false;
        for (size_t i = 0; i < 36; i++) {
            char ch = s[i];
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash ? ch != '-'
                     : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                         (ch >= 'A' && ch <= 'F')))
                return false;
        }
        return true;
    }
    if (!strcmp(format, "uri") || !strcmp(format, "iri")) {
        const char *colon = strchr(s, ':');
        if (!colon || colon == s || strchr(s, ' '))
            return false;
        for (const char *p = s; p < colon; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (p > s && ((*p >= '0' && *p <= '9') || strchr("+-.", *p)))))
                return false;
        return true;
    }
    if (!strcmp(format, "uri-reference") || !strcmp(format, "iri-reference") ||
        !strcmp(format, "uri-template"))
        return !strchr(s, ' ');
    if (!strcmp(format, "regex")) {
        pcre2_code *re = compile_re(s);
        pcre2_code_free(re);
        return re != NULL;
    }
    if (!strcmp(format, "json-pointer")) {
        if (n && s[0] != '/')
            return false;
        for (size_t i = 0; i < n; i++)
            if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
                return false;
        return true;
    }
    return true; /* unknown formats are not checked */
}

static void validate(struct validator *vd, const struct schema *s, const json_t *node,
                     struct result *r, const struct ctx *x);

static void sub_validate(struct validator *vd, const struct schema *s, const json_t *node,
                         const struct ctx *x, struct result *out)
{
    memset(out, 0, sizeof *out);
    validate(vd, s, node, out, x);
}

static void validate_schema(struct validator *vd, const struct schema *s, const json_t *node,
                            struct result *r, const struct ctx *x)
{
    if (s->nany) {
        bool ok = false;
        struct result best = {0};
        bool have_best = false;
        for (size_t i = 0; i < s->nany && !ok; i++) {
            struct result t;
            sub_validate(vd, s->any_of[i], node, x, &t);
            ok = t.n == 0;
            if (!ok && (!have_best || t.score > best.score)) {
                result_free(&best);
                best = t;
                have_best = true;
            } else {
                result_free(&t);
            }
        }
        if (!ok) {
            add_err(r, "number_any_of", x, "Must validate at least one schema (anyOf)");
            merge(r, &best);
        }
        result_free(&best);
    }
    if (s->none) {
        size_t valid = 0;
        struct result best = {0};
        bool have_best = false;
        for (size_t i = 0; i < s->none; i++) {
            struct result t;
            sub_validate(vd, s->one_of[i], node, x, &t);
            if (t.n == 0) {
                valid++;
                result_free(&t);
            } else if (valid == 0 && (!have_best || t.score > best.score)) {
                result_free(&best);
                best = t;
                have_best = true;
            } else {
                result_free(&t);
            }
        }
        if (valid != 1) {
            add_err(r, "number_one_of", x, "Must validate one and only one schema (oneOf)");
            if (valid == 0)
                merge(r, &best);
        }
        result_free(&best);
    }
    if (s->nall) {
        size_t valid = 0;
        for (size_t i = 0; i < s->nall; i++) {
            struct result t;
            sub_validate(vd, s->all_of[i], node, x, &t);
            valid += t.n == 0;
            merge(r, &t);
        }
        if (valid != s->nall)
            add_err(r, "number_all_of", x, "Must validate all the schemas (allOf)");
    }
    if (s->not_) {
        struct result t;
        sub_validate(vd, s->not_, node, x, &t);
        if (t.n == 0)
            add_err(r, "number_not", x, "Must not validate the schema (not)");
        result_free(&t);
    }
    if (s->ndeps && json_is_object(node)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)(uintptr_t)node, key, val)
        {
            for (size_t i = 0; i < s->ndeps; i++) {
                if (strcmp(s->dep_names[i], key) != 0)
                    continue;
                if (s->dep_lists[i]) {
                    for (size_t j = 0; j < json_array_size(s->dep_lists[i]); j++) {
                        const char *d = json_string_value(json_array_get(s->dep_lists[i], j));
                        if (!json_object_get(node, d))
                            add_err(r, "missing_dependency", x, "Has a dependency on %s", d);
                    }
                } else {
                    validate(vd, s->dep_schemas[i], node, r, x);
                }
            }
        }
    }
    if (s->if_) {
        struct result ti;
        sub_validate(vd, s->if_, node, x, &ti);
        bool ifok = ti.n == 0;
        result_free(&ti);
        const struct schema *branch = ifok ? s->then_ : s->else_;
        if (branch) {
            struct result t;
            sub_validate(vd, branch, node, x, &t);
            if (t.n) {
                if (ifok)
                    add_err(r, "condition_then", x, "Must validate \"then\" as \"if\" was valid");
                else
                    add_err(r, "condition_else", x,
                            "Must validate \"else\" as \"if\" was not valid");
                merge(r, &t);
            }
            result_free(&t);
        }
    }
    r->score++;
}

static void validate_common(const struct schema *s, const json_t *node, struct result *r,
                            const struct ctx *x)
{
    if (s->konst || s->enum_present) {
        char *t = canon_text(node);
        if (s->konst && strcmp(t, s->konst) != 0) {
            char *f = ctx_field(x);
            add_err(r, "const", x, "%s does not match: %.300s", f, s->konst);
            free(f);
        }
        if (s->enum_present) {
            bool found = false;
            for (size_t i = 0; i < s->nenums && !found; i++)
                found = !strcmp(t, s->enums[i]);
            if (!found) {
                struct cl_sbuf b = {0};
                for (size_t i = 0; i < s->nenums; i++) {
                    cl_sbuf_adds(&b, i ? ", " : "");
                    cl_sbuf_adds(&b, s->enums[i]);
                }
                char *f = ctx_field(x);
                add_err(r, "enum", x, "%s must be one of the following: %.300s", f,
                        s->nenums ? b.s : "(none)");
                free(f);
                cl_sbuf_free(&b);
            }
        }
        free(t);
    }
    if (s->format && !format_ok(s->format, node))
        add_err(r, "format", x, "Does not match format '%.100s'", s->format);
    r->score++;
}

static void validate_number(const struct schema *s, const json_t *node, struct result *r,
                            const struct ctx *x)
{
    char buf[64];
    double d = num(node);
    if (s->multiple_of && !is_multiple(node, s->multiple_of)) {
        fmt_num(s->multiple_of, buf, sizeof buf);
        add_err(r, "multiple_of", x, "Must be a multiple of %s", buf);
    }
    if (s->maximum && d > num(s->maximum)) {
        fmt_num(s->maximum, buf, sizeof buf);
        add_err(r, "number_lte", x, "Must be less than or equal to %s", buf);
    }
    if (s->excl_max && d >= num(s->excl_max)) {
        fmt_num(s->excl_max, buf, sizeof buf);
        add_err(r, "number_lt", x, "Must be less than %s", buf);
    }
    if (s->minimum && d < num(s->minimum)) {
        fmt_num(s->minimum, buf, sizeof buf);
        add_err(r, "number_gte", x, "Must be greater than or equal to %s", buf);
    }
    if (s->excl_min && d <= num(s->excl_min)) {
        fmt_num(s->excl_min, buf, sizeof buf);
        add_err(r, "number_gt", x, "Must be greater than %s", buf);
    }
    r->score++;
}

static size_t rune_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static void validate_string(const struct schema *s, const json_t *node, struct result *r,
                            const struct ctx *x)
{
    size_t n = rune_count(json_string_value(node), json_string_length(node));
    if (s->min_len >= 0 && (int64_t)n < s->min_len)
        add_err(r, "string_gte", x, "String length must be greater than or equal to %lld",
                (long long)s->min_len);
    if (s->max_len >= 0 && (int64_t)n > s->max_len)
        add_err(r, "string_lte", x, "String length must be less than or equal to %lld",
                (long long)s->max_len);
    if (s->pattern && !re_match(s->pattern, json_string_value(node), json_string_length(node)))
        add_err(r, "pattern", x, "Does not match pattern '%.200s'", s->pattern_text);
    r->score++;
}

static void validate_array(struct validator *vd, const struct schema *s, const json_t *node,
                           struct result *r, const struct ctx *x)
{
    size_t n = json_array_size(node);
    char idx[32];
    if (s->items_single) {
        for (size_t i = 0; i < n; i++) {
            snprintf(idx, sizeof idx, "%zu", i);
            struct ctx cx = {x, idx};
            struct result t;
            sub_validate(vd, s->items[0], json_array_get(node, i), &cx, &t);
            merge(r, &t);
        }
    } else if (s->nitems) {
        for (size_t i = 0; i < s->nitems && i < n; i++) {
            snprintf(idx, sizeof idx, "%zu", i);
            struct ctx cx = {x, idx};
            struct result t;
            sub_validate(vd, s->items[i], json_array_get(node, i), &cx, &t);
            merge(r, &t);
        }
        if (s->nitems < n) {
            if (s->addl_items == 0) {
                add_err(r, "array_no_additional_items", x, "No additional items allowed on array");
            } else if (s->addl_items_schema) {
                for (size_t i = s->nitems; i < n; i++) {
                    snprintf(idx, sizeof idx, "%zu", i);
                    struct ctx cx = {x, idx};
                    struct result t;
                    sub_validate(vd, s->addl_items_schema, json_array_get(node, i), &cx, &t);
                    merge(r, &t);
                }
            }
        }
    }
    if (s->min_items >= 0 && (int64_t)n < s->min_items)
        add_err(r, "array_min_items", x, "Array must have at least %lld items",
                (long long)s->min_items);
    if (s->max_items >= 0 && (int64_t)n > s->max_items)
        add_err(r, "array_max_items", x, "Array must have at most %lld items",
                (long long)s->max_items);
    if (s->unique && n > 1) {
        char **t = cl_xcalloc(n, sizeof *t);
        for (size_t j = 0; j < n; j++) {
            t[j] = canon_text(json_array_get(node, j));
            /* the last earlier duplicate is reported, as Go's map keeps the latest index */
            for (size_t i = j; i-- > 0;)
                if (!strcmp(t[i], t[j])) {
                    add_err(r, "unique", x, "array items[%zu,%zu] must be unique", i, j);
                    break;
                }
        }
        for (size_t j = 0; j < n; j++)
            free(t[j]);
        free(t);
    }
    if (s->contains) {
        bool ok = false;
        struct result best = {0};
        bool have_best = false;
        for (size_t i = 0; i < n && !ok; i++) {
            snprintf(idx, sizeof idx, "%zu", i);
            struct ctx cx = {x, idx};
            struct result t;
            sub_validate(vd, s->contains, json_array_get(node, i), &cx, &t);
            ok = t.n == 0;
            if (!ok && (!have_best || t.score > best.score)) {
                result_free(&best);
                best = t;
                have_best = true;
            } else {
                result_free(&t);
            }
        }
        if (!ok) {
            add_err(r, "contains", x, "At least one of the items must match");
            merge(r, &best);
        }
        result_free(&best);
    }
    r->score++;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void validate_object(struct validator *vd, const struct schema *s, const json_t *node,
                            struct result *r, const struct ctx *x)
{
    size_t n = json_object_size(node);
    if (s->min_props >= 0 && (int64_t)n < s->min_props)
        add_err(r, "array_min_properties", x, "Must have at least %lld properties",
                (long long)s->min_props);
    if (s->max_props >= 0 && (int64_t)n > s->max_props)
        add_err(r, "array_max_properties", x, "Must have at most %lld properties",
                (long long)s->max_props);
    for (size_t i = 0; i < s->nrequired; i++) {
        if (json_object_get(node, s->required[i]))
            r->score++;
        else
            add_err(r, "required", x, "%.200s is required", s->required[i]);
    }
    const char **keys = cl_xcalloc(n + 1, sizeof *keys);
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)(uintptr_t)node, key, val) keys[k++] = key;
    qsort(keys, n, sizeof *keys, key_cmp);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < s->nprops && !found; j++)
            found = !strcmp(s->prop_names[j], keys[i]);
        bool pp = false;
        json_t *pv = json_object_get(node, keys[i]);
        for (size_t j = 0; j < s->npp; j++) {
            if (re_match(s->pp_re[j], keys[i], strlen(keys[i]))) {
                pp = true;
                struct ctx cx = {x, keys[i]};
                struct result t;
                sub_validate(vd, s->pp[j], pv, &cx, &t);
                merge(r, &t);
            }
        }
        if (pp)
            r->score++;
        if (!found && !pp) {
            if (s->addl_props == 0) {
                add_err(r, "additional_property_not_allowed", x,
                        "Additional property %.200s is not allowed", keys[i]);
            } else if (s->addl_props_schema) {
                struct ctx cx = {x, keys[i]};
                struct result t;
                sub_validate(vd, s->addl_props_schema, pv, &cx, &t);
                merge(r, &t);
            }
        }
    }
    if (s->prop_names_schema) {
        for (size_t i = 0; i < n; i++) {
            json_t *ks = json_string(keys[i]);
            struct result t;
            sub_validate(vd, s->prop_names_schema, ks, x, &t);
            json_decref(ks);
            if (t.n) {
                add_err(r, "invalid_property_name", x, "Property name of \"%.200s\" does not match",
                        keys[i]);
                merge(r, &t);
            }
            result_free(&t);
        }
    }
    free(keys);
    r->score++;
}

static void validate(struct validator *vd, const struct schema *s, const json_t *node,
                     struct result *r, const struct ctx *x)
{
    if (vd->limit)
        return;
    if (++vd->depth > SCHEMA_MAX_DEPTH) {
        vd->limit = true;
        vd->depth--;
        return;
    }
    if (cl_rego_bi_reserve(vd->c, (r->n + 1) * 64) < 0) {
        vd->limit = true;
        vd->rc = -2;
        vd->depth--;
        return;
    }
    if (s->pass >= 0) {
        if (!s->pass)
            add_err(r, "false", x, "False always fails validation");
        goto out;
    }
    if (s->ref) {
        validate(vd, s->ref, node, r, x);
        goto out;
    }
    char tt[128];
    const char *given = json_type_name(node);
    bool typed = s->ntypes > 0;
    if (json_is_null(node)) {
        if (typed && !has_type(s, "null")) {
            types_text(s, tt, sizeof tt);
            add_err(r, "invalid_type", x, "Invalid type. Expected: %s, given: null", tt);
            goto out;
        }
        validate_schema(vd, s, node, r, x);
        validate_common(s, node, r, x);
    } else if (json_is_number(node)) {
        bool isint = is_integral(node);
        if (typed && !has_type(s, "number") && !(isint && has_type(s, "integer"))) {
            types_text(s, tt, sizeof tt);
            add_err(r, "invalid_type", x, "Invalid type. Expected: %s, given: %s", tt, given);
            goto out;
        }
        validate_schema(vd, s, node, r, x);
        validate_number(s, node, r, x);
        validate_common(s, node, r, x);
    } else {
        if (typed && !has_type(s, given)) {
            types_text(s, tt, sizeof tt);
            add_err(r, "invalid_type", x, "Invalid type. Expected: %s, given: %s", tt, given);
            goto out;
        }
        validate_schema(vd, s, node, r, x);
        if (json_is_array(node)) {
            validate_array(vd, s, node, r, x);
            validate_common(s, node, r, x);
        } else if (json_is_object(node)) {
            validate_object(vd, s, node, r, x);
            validate_common(s, node, r, x);
            for (size_t i = 0; i < s->nprops; i++) {
                json_t *pv = json_object_get(node, s->prop_names[i]);
                if (pv) {
                    struct ctx cx = {x, s->prop_names[i]};
                    validate(vd, s->props[i], pv, r, &cx);
                }
            }
        } else {
            validate_common(s, node, r, x);
            if (json_is_string(node))
                validate_string(s, node, r, x);
        }
    }
    r->score++;
out:
    vd->depth--;
}

/* ---- builtins ---- */

/* OPA's astValueToJSONSchemaLoader: a JSON string or an object / array. NULL with msg. */
static json_t *loader(const struct cl_rv *v, char *msg, size_t cap)
{
    if (v->type == CL_RV_STRING) {
        json_error_t je;
        json_t *j = json_loadb(S(v), L(v), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j)
            snprintf(msg, cap, "invalid JSON string");
        return j;
    }
    if (v->type == CL_RV_OBJECT || v->type == CL_RV_ARRAY)
        return cl_rv_to_json(v);
    snprintf(msg, cap, "wrong type, expected string or object");
    return NULL;
}

static enum draft draft_of(const json_t *root)
{
    const json_t *sv = json_is_object(root) ? json_object_get(root, "$schema") : NULL;
    const char *s = json_is_string(sv) ? json_string_value(sv) : "";
    if (strstr(s, "draft-04"))
        return DRAFT4;
    if (strstr(s, "draft-06"))
        return DRAFT6;
    if (strstr(s, "draft-07"))
        return DRAFT7;
    return HYBRID;
}

static struct cl_rv *pair(bool ok, struct cl_rv *second)
{
    struct cl_rv *r = cl_rv_array(2);
    cl_rv_array_push(r, cl_rv_bool(ok));
    cl_rv_array_push(r, second);
    return r;
}

static int bi_verify_schema(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_reserve(c, cl_rv_size(a[0]) * 8 + 1024) < 0)
        return -2;
    char msg[CL_ERR_MSG_MAX];
    json_t *j = loader(a[0], msg, sizeof msg);
    if (!j)
        return OUT(pair(false, cl_rv_strf("jsonschema: %s", msg)));
    struct compiler cp = {.root = j, .draft = draft_of(j)};
    struct schema *s = compile(&cp, j);
    struct cl_rv *r =
        s ? pair(true, cl_rv_null()) : pair(false, cl_rv_strf("jsonschema: %s", cp.err));
    compiler_free(&cp);
    json_decref(j);
    return OUT(r);
}

static int bi_match_schema(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_reserve(c, (cl_rv_size(a[0]) + cl_rv_size(a[1])) * 8 + 1024) < 0)
        return -2;
    char msg[CL_ERR_MSG_MAX];
    json_t *doc = loader(a[0], msg, sizeof msg);
    if (!doc)
        return cl_rego_bi_error(c, "%s", msg);
    json_t *sj = loader(a[1], msg, sizeof msg);
    if (!sj) {
        json_decref(doc);
        return cl_rego_bi_error(c, "%s", msg);
    }
    struct compiler cp = {.root = sj, .draft = draft_of(sj)};
    struct schema *s = compile(&cp, sj);
    if (!s) {
        int rc = cl_rego_bi_error(c, "%s", cp.err);
        compiler_free(&cp);
        json_decref(sj);
        json_decref(doc);
        return rc;
    }
    struct validator vd = {.c = c};
    struct result res = {0};
    struct ctx root = {NULL, "(root)"};
    validate(&vd, s, doc, &res, &root);
    compiler_free(&cp);
    json_decref(sj);
    json_decref(doc);
    if (vd.limit) {
        result_free(&res);
        if (vd.rc < 0)
            return vd.rc;
        return cl_rego_bi_error(c, "schema validation too deep (more than %d nested schemas)",
                                SCHEMA_MAX_DEPTH);
    }
    struct cl_rv *errs = cl_rv_array(res.n);
    for (size_t i = 0; i < res.n; i++) {
        struct cl_rv *o = cl_rv_object();
        cl_rv_obj_put_str(o, "error", cl_rv_strf("%s: %s", res.v[i].field, res.v[i].desc));
        cl_rv_obj_put_str(o, "type", cl_rv_strz(res.v[i].type));
        cl_rv_obj_put_str(o, "field", cl_rv_strz(res.v[i].field));
        cl_rv_obj_put_str(o, "desc", cl_rv_strz(res.v[i].desc));
        cl_rv_array_push(errs, o);
    }
    bool valid = res.n == 0;
    result_free(&res);
    return OUT(pair(valid, errs));
}

const struct cl_rego_builtin cl_rego_builtins_jsonschema[] = {
    {"json.verify_schema", 1, bi_verify_schema, 0},
    {"json.match_schema", 2, bi_match_schema, 0},
    {NULL, 0, NULL, 0},
};
