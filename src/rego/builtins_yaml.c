/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml.marshal, yaml.unmarshal and yaml.is_valid with OPA's semantics, which are those of
 * sigs.k8s.io/yaml over go-yaml v2: the first document of the stream, YAML 1.1 resolution of
 * plain scalars (yes/no/on/off booleans, 0x/0o/0 octal/0b integers, .inf/.nan), non-string
 * keys turned into strings, timestamps kept as strings; marshalling with go-yaml's choices
 * (block style, keys in its natural order, strings quoted when they would read back as
 * another type). libyaml parses and emits; the node graph it builds is walked with a depth
 * limit and a size charge per node, so aliases cannot expand without bound.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

#define YAML_MAX_DEPTH 512
#define YAML_NODE_COST 96 /* bytes charged per value produced */

/* ---- scalars: go-yaml v2's resolve ---- */

static bool str_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

/* Go's strconv.ParseInt(s, 0, 64) / ParseUint: sign, 0x/0o/0b/0 prefixes, no underscores
 * (the caller removed them). */
static bool parse_int0(const char *s, bool allow_sign, bool *neg, uint64_t *mag)
{
    *neg = false;
    if (allow_sign && (*s == '+' || *s == '-'))
        *neg = *s++ == '-';
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        base = 8, s += 2;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2, s += 2;
    else if (s[0] == '0' && s[1])
        base = 8, s += 1;
    if (!*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        int d = *s >= '0' && *s <= '9'   ? *s - '0'
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                         : 99;
        if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *mag = v;
    return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    bool digits = false;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++, digits = true;
        if (!digits)
            return false;
    } else {
        while (*s >= '0' && *s <= '9')
            s++, digits = true;
        if (!digits)
            return false;
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9')
                s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == 0;
}

/* go-yaml's timestamp forms: 2006-1-2T15:4:5.999999999Z07:00, 2006-1-2t15:4:5..., 2006-1-2
 * 15:4:5..., 2006-1-2 (shape check only: such scalars stay strings). */
static bool looks_timestamp(const char *s)
{
    int n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    if (n != 4 || s[4] != '-')
        return false;
    const char *p = s + 5;
    int k = 0;
    while (p[k] >= '0' && p[k] <= '9')
        k++;
    if (k < 1 || k > 2 || p[k] != '-')
        return false;
    p += k + 1;
    k = 0;
    while (p[k] >= '0' && p[k] <= '9')
        k++;
    if (k < 1 || k > 2)
        return false;
    p += k;
    if (!*p)
        return true;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return false;
    /* a time part: hh:mm:ss */
    p++;
    k = 0;
    while (p[k] >= '0' && p[k] <= '9')
        k++;
    return k >= 1 && k <= 2 && p[k] == ':';
}

enum rtag { T_STR, T_NULL, T_BOOL, T_INT, T_FLOAT, T_TIMESTAMP };

struct resolved {
    enum rtag tag;
    bool b;
    bool neg;
    uint64_t mag; /* T_INT */
    double d;     /* T_FLOAT */
};

static enum rtag resolve(const char *s, size_t n, struct resolved *r)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y",  "Y",  "yes",  "Yes",  "YES",  "on",
                                        "On", "ON", "true", "True", "TRUE", NULL};
    static const char *const falses[] = {"n",   "N",   "no",    "No",    "NO",    "off",
                                         "Off", "OFF", "false", "False", "FALSE", NULL};
    memset(r, 0, sizeof *r);
    if (memchr(s, 0, n))
        return r->tag = T_STR;
    if (str_in(s, nulls))
        return r->tag = T_NULL;
    if (str_in(s, trues) || str_in(s, falses)) {
        r->b = str_in(s, trues);
        return r->tag = T_BOOL;
    }
    static const char *const pinf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (str_in(s, pinf) || str_in(s, ninf) || str_in(s, nans)) {
        r->d = str_in(s, nans) ? NAN : str_in(s, ninf) ? -INFINITY : INFINITY;
        return r->tag = T_FLOAT;
    }
    char c = s[0];
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
        return r->tag = T_STR;
    if (looks_timestamp(s))
        return r->tag = T_TIMESTAMP;
    char *plain = cl_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            plain[k++] = s[i];
    plain[k] = 0;
    enum rtag t = T_STR;
    if (parse_int0(plain, true, &r->neg, &r->mag) &&
        (!r->neg || r->mag <= (uint64_t)INT64_MAX + 1)) {
        t = T_INT;
    } else if (yaml_style_float(plain)) {
        r->d = strtod(plain, NULL);
        t = T_FLOAT;
    }
    free(plain);
    return r->tag = t;
}

/* ---- unmarshal ---- */

struct loader {
    struct cl_rego_bctx *c;
    yaml_document_t *doc;
    size_t charged;
    char msg[CL_ERR_MSG_MAX];
    int rc; /* <0: limit error already recorded */
};

static bool charge(struct loader *ld, size_t bytes)
{
    ld->charged += bytes;
    if (cl_rego_bi_reserve(ld->c, ld->charged) < 0) {
        ld->rc = -2;
        return false;
    }
    return true;
}

/* Go's strconv.FormatFloat(f, 'g', -1, bits): the shortest digits that read back, with an
 * exponent (at least two digits) when it is below -4 or at least 6. */
static void go_format_g(double d, int bits, char *buf, size_t cap)
{
    if (isnan(d)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, cap, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (bits == 32 ? (float)strtod(e, NULL) == (float)d : strtod(e, NULL) == d)
            break;
    }
    /* e = "-d.ddde+XX": digits and exponent */
    char digits[32];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = 0;
    int exp = atoi(p + 1);
    if (exp < -4 || exp >= 6) {
        snprintf(buf, cap, "%s%c%s%.*se%c%02d", neg ? "-" : "", digits[0], nd > 1 ? "." : "",
                 (int)(nd - 1), digits + 1, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    struct cl_sbuf b = {0};
    if (neg)
        cl_sbuf_addc(&b, '-');
    if (exp < 0) {
        cl_sbuf_adds(&b, "0.");
        for (int i = -1; i > exp; i--)
            cl_sbuf_addc(&b, '0');
        cl_sbuf_add(&b, digits, nd);
    } else {
        for (int i = 0; i <= exp || (size_t)i < nd; i++) {
            if (i == exp + 1)
                cl_sbuf_addc(&b, '.');
            cl_sbuf_addc(&b, (size_t)i < nd ? digits[i] : '0');
        }
    }
    snprintf(buf, cap, "%s", b.s);
    cl_sbuf_free(&b);
}

static struct cl_rv *load_node(struct loader *ld, yaml_node_t *n, int depth);

/* sigs.k8s.io/yaml's key conversion: strings as they are, numbers and booleans formatted,
 * anything else refused. */
static struct cl_rv *key_string(struct loader *ld, yaml_node_t *k)
{
    if (k->type != YAML_SCALAR_NODE) {
        snprintf(ld->msg, sizeof ld->msg, "Unsupported map key of type: map or slice");
        return NULL;
    }
    const char *s = (const char *)k->data.scalar.value;
    size_t n = k->data.scalar.length;
    bool plain = k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    struct resolved r;
    if (!plain || resolve(s, n, &r) == T_STR || r.tag == T_TIMESTAMP)
        return cl_rv_str(s, n);
    char buf[64];
    switch (r.tag) {
    case T_BOOL:
        return cl_rv_strz(r.b ? "true" : "false");
    case T_INT:
        snprintf(buf, sizeof buf, "%s%llu", r.neg ? "-" : "", (unsigned long long)r.mag);
        return cl_rv_strz(buf);
    case T_FLOAT:
        go_format_g(r.d, 32, buf, sizeof buf);
        return cl_rv_strz(buf);
    default:
        snprintf(ld->msg, sizeof ld->msg, "Unsupported map key of type: %s, key: %.*s", "nil",
                 (int)(n > 40 ? 40 : n), s);
        return NULL;
    }
}

static struct cl_rv *scalar_rv(struct loader *ld, yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    /* quoted and block scalars are strings; plain ones resolve (the loader tags every untagged
     * scalar as a string, so explicit tags are not told apart) */
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cl_rv_str(s, len);
    struct resolved r;
    switch (resolve(s, len, &r)) {
    case T_NULL:
        return cl_rv_null();
    case T_BOOL:
        return cl_rv_bool(r.b);
    case T_INT: {
        char buf[32];
        snprintf(buf, sizeof buf, "%s%llu", r.neg ? "-" : "", (unsigned long long)r.mag);
        return cl_rv_number_parse(buf, strlen(buf));
    }
    case T_FLOAT:
        if (!isfinite(r.d)) {
            snprintf(ld->msg, sizeof ld->msg, "json: unsupported value: %s",
                     isnan(r.d) ? "NaN"
                     : r.d > 0  ? "+Inf"
                                : "-Inf");
            return NULL;
        }
        return cl_rv_float(r.d);
    default:
        return cl_rv_str(s, len);
    }
}

static struct cl_rv *load_node(struct loader *ld, yaml_node_t *n, int depth)
{
    if (!n)
        return cl_rv_null();
    if (depth > YAML_MAX_DEPTH) {
        snprintf(ld->msg, sizeof ld->msg, "yaml: exceeded max depth of %d", YAML_MAX_DEPTH);
        return NULL;
    }
    if (!charge(ld, YAML_NODE_COST))
        return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        if (!charge(ld, n->data.scalar.length))
            return NULL;
        return scalar_rv(ld, n);
    case YAML_SEQUENCE_NODE: {
        struct cl_rv *a =
            cl_rv_array((size_t)(n->data.sequence.items.top - n->data.sequence.items.start));
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++) {
            struct cl_rv *v = load_node(ld, yaml_document_get_node(ld->doc, *i), depth + 1);
            if (!v) {
                cl_rv_decref(a);
                return NULL;
            }
            cl_rv_array_push(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        struct cl_rv *o = cl_rv_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
            /* "<<" merges the keys of a mapping (or of each mapping of a sequence) */
            if (kn && kn->type == YAML_SCALAR_NODE &&
                kn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && kn->data.scalar.length == 2 &&
                !memcmp(kn->data.scalar.value, "<<", 2)) {
                struct cl_rv *m =
                    load_node(ld, yaml_document_get_node(ld->doc, p->value), depth + 1);
                if (!m) {
                    cl_rv_decref(o);
                    return NULL;
                }
                const struct cl_rv *ms[1] = {m}, *const *list = ms;
                size_t nl = 1;
                if (m->type == CL_RV_ARRAY) {
                    list = (const struct cl_rv *const *)m->u.arr.items;
                    nl = m->u.arr.len;
                }
                for (size_t j = 0; j < nl; j++) {
                    if (list[j]->type != CL_RV_OBJECT) {
                        snprintf(ld->msg, sizeof ld->msg,
                                 "yaml: map merge requires map or sequence of maps as the value");
                        cl_rv_decref(m);
                        cl_rv_decref(o);
                        return NULL;
                    }
                    for (size_t q = 0; q < list[j]->u.obj.len; q++)
                        if (!cl_rv_obj_get(o, list[j]->u.obj.keys[q]))
                            cl_rv_obj_put(o, cl_rv_incref(list[j]->u.obj.keys[q]),
                                          cl_rv_incref(list[j]->u.obj.vals[q]));
                }
                cl_rv_decref(m);
                continue;
            }
            struct cl_rv *k = kn ? key_string(ld, kn) : NULL;
            struct cl_rv *v =
                k ? load_node(ld, yaml_document_get_node(ld->doc, p->value), depth + 1) : NULL;
            if (!v) {
                cl_rv_decref(k);
                cl_rv_decref(o);
                return NULL;
            }
            cl_rv_obj_put(o, k, v);
        }
        return o;
    }
    default:
        return cl_rv_null();
    }
}

/* libyaml's scanner does work in proportion to the flow nesting for every token, so a deep
 * document ("[[[[...") is quadratic inside yaml_parser_load, before load_node's depth check
 * runs: a first pass over the events of the first document stops at the depth limit. Parse
 * errors are left to the real load, which reports them. */
static bool yaml_too_deep(const char *s, size_t n)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return false;
    yaml_parser_set_input_string(&p, (const unsigned char *)s, n);
    int depth = 0;
    bool deep = false;
    yaml_event_t ev;
    while (!deep && yaml_parser_parse(&p, &ev)) {
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT)
            deep = ++depth > YAML_MAX_DEPTH + 1; /* load_node counts the root as 0 */
        else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT)
            depth--;
        else if (t == YAML_DOCUMENT_END_EVENT || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    return deep;
}

/* Parses the first document of s; NULL with ld->msg (or ld->rc < 0 for a hit limit). */
static struct cl_rv *yaml_load(struct loader *ld, const char *s, size_t n)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (yaml_too_deep(s, n)) {
        snprintf(ld->msg, sizeof ld->msg, "yaml: exceeded max depth of %d", YAML_MAX_DEPTH);
        return NULL;
    }
    if (!yaml_parser_initialize(&p)) {
        snprintf(ld->msg, sizeof ld->msg, "yaml: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)s, n);
    struct cl_rv *r = NULL;
    if (!yaml_parser_load(&p, &doc)) {
        size_t line = 0;
        if (p.problem_mark.line != 0)
            line = p.problem_mark.line + (p.error == YAML_SCANNER_ERROR ? 1 : 0);
        else if (p.context_mark.line != 0)
            line = p.context_mark.line;
        char where[32] = "";
        if (line)
            snprintf(where, sizeof where, "line %zu: ", line);
        snprintf(ld->msg, sizeof ld->msg, "yaml: %s%.300s", where,
                 p.problem ? p.problem : "unknown problem parsing YAML content");
        yaml_parser_delete(&p);
        return NULL;
    }
    ld->doc = &doc;
    r = load_node(ld, yaml_document_get_root_node(&doc), 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return r;
}

static int bi_yaml_unmarshal(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct loader ld = {.c = c};
    struct cl_rv *r = yaml_load(&ld, S(a[0]), L(a[0]));
    if (!r)
        return ld.rc < 0 ? ld.rc : cl_rego_bi_error(c, "%s", ld.msg);
    return OUT(r);
}

static int bi_yaml_is_valid(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (a[0]->type != CL_RV_STRING)
        return OUT(cl_rv_bool(false));
    struct loader ld = {.c = c};
    struct cl_rv *r = yaml_load(&ld, S(a[0]), L(a[0]));
    if (!r && ld.rc < 0)
        return ld.rc;
    cl_rv_decref(r);
    return OUT(cl_rv_bool(r != NULL));
}

/* ---- marshal ---- */

static bool is_letter(uint32_t r)
{
    return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r >= 0x80;
}
static bool is_digit(uint32_t r)
{
    return r >= '0' && r <= '9';
}

/* go-yaml v2's key order for strings: at the first difference, two letters compare by code,
 * a non-letter sorts before a letter, and runs of digits compare as numbers. */
static bool natural_less(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++) {
        uint32_t ar = (unsigned char)a[i], br = (unsigned char)b[i];
        if (ar == br)
            continue;
        bool al = is_letter(ar), bl = is_letter(br);
        if (al && bl)
            return ar < br;
        if (al || bl)
            return bl;
        int64_t av = 0, bv = 0;
        if (ar == '0' || br == '0') {
            for (size_t j = i; j-- > 0 && is_digit((unsigned char)a[j]);)
                if (a[j] != '0') {
                    av = bv = 1;
                    break;
                }
        }
        size_t ai = i, bi = i;
        for (; ai < an && is_digit((unsigned char)a[ai]); ai++)
            av = av * 10 + (a[ai] - '0');
        for (; bi < bn && is_digit((unsigned char)b[bi]); bi++)
            bv = bv * 10 + (b[bi] - '0');
        if (av != bv)
            return av < bv;
        if (ai != bi)
            return ai < bi;
        return ar < br;
    }
    return an < bn;
}

struct mkv {
    char *k;
    size_t kl;
    const struct cl_rv *v;
};

static int mkv_cmp(const void *x, const void *y)
{
    const struct mkv *a = x, *b = y;
    if (natural_less(a->k, a->kl, b->k, b->kl))
        return -1;
    return natural_less(b->k, b->kl, a->k, a->kl) ? 1 : 0;
}

/* ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$ */
static bool base60_float(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!is_digit((unsigned char)*s))
        return false;
    while (is_digit((unsigned char)*s) || *s == '_')
        s++;
    int groups = 0;
    while (*s == ':') {
        s++;
        int d = 0;
        while (is_digit((unsigned char)s[d]))
            d++;
        if (d < 1 || d > 2 || (d == 2 && s[0] > '5'))
            return false;
        s += d;
        groups++;
    }
    if (!groups)
        return false;
    if (*s == '.') {
        s++;
        while (is_digit((unsigned char)*s) || *s == '_')
            s++;
    }
    return *s == 0;
}

struct emitter {
    yaml_emitter_t e;
    struct cl_sbuf out;
    bool failed;
};

static int write_handler(void *data, unsigned char *buf, size_t size)
{
    struct cl_sbuf *b = data;
    cl_sbuf_add(b, buf, size);
    return 1;
}

static void emit(struct emitter *em, yaml_event_t *ev)
{
    if (!em->failed && !yaml_emitter_emit(&em->e, ev))
        em->failed = true;
}

static void emit_scalar(struct emitter *em, const char *s, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s, (int)n, 1, 1,
                                      style)) {
        em->failed = true;
        return;
    }
    emit(em, &ev);
}

/* A string as go-yaml v2 writes it: literal when multi-line, plain when it reads back as a
 * string, double-quoted otherwise. */
static void emit_string(struct emitter *em, const char *s, size_t n)
{
    struct resolved r;
    char *z = cl_xstrndup(s, n);
    bool plain = resolve(z, n, &r) == T_STR && !base60_float(z);
    free(z);
    yaml_scalar_style_t style = memchr(s, '\n', n) ? YAML_LITERAL_SCALAR_STYLE
                                : plain            ? YAML_PLAIN_SCALAR_STYLE
                                                   : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    emit_scalar(em, s, n, style);
}

static void emit_value(struct emitter *em, const struct cl_rv *v, int depth);

/* Object keys as JSON would carry them: strings, or the JSON text of other keys. */
static char *key_text(const struct cl_rv *k, size_t *n)
{
    if (k->type == CL_RV_STRING) {
        *n = L(k);
        return cl_xstrndup(S(k), L(k));
    }
    char *t = cl_rv_to_json_text(k);
    *n = strlen(t);
    return t;
}

static void emit_value(struct emitter *em, const struct cl_rv *v, int depth)
{
    yaml_event_t ev;
    char buf[64];
    if (depth > YAML_MAX_DEPTH) {
        em->failed = true;
        return;
    }
    switch (v->type) {
    case CL_RV_NULL:
        emit_scalar(em, "null", 4, YAML_PLAIN_SCALAR_STYLE);
        break;
    case CL_RV_BOOL:
        emit_scalar(em, v->u.b ? "true" : "false", v->u.b ? 4 : 5, YAML_PLAIN_SCALAR_STYLE);
        break;
    case CL_RV_NUMBER:
        if (v->is_int) {
            snprintf(buf, sizeof buf, "%lld", (long long)v->u.num.i);
        } else if (v->big == CL_RV_BIGINT) {
            /* beyond 64 bits go-yaml decoded the JSON number as a float */
            go_format_g(v->u.num.d, 64, buf, sizeof buf);
        } else {
            go_format_g(cl_rv_as_double(v), 64, buf, sizeof buf);
            if (!strcmp(buf, "+Inf") || !strcmp(buf, "-Inf"))
                snprintf(buf, sizeof buf, "%s", buf[0] == '+' ? ".inf" : "-.inf");
        }
        emit_scalar(em, buf, strlen(buf), YAML_PLAIN_SCALAR_STYLE);
        break;
    case CL_RV_STRING:
        emit_string(em, S(v), L(v));
        break;
    case CL_RV_ARRAY:
    case CL_RV_SET:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE)) {
            em->failed = true;
            return;
        }
        emit(em, &ev);
        for (size_t i = 0; i < v->u.arr.len && !em->failed; i++)
            emit_value(em, v->u.arr.items[i], depth + 1);
        if (yaml_sequence_end_event_initialize(&ev))
            emit(em, &ev);
        break;
    case CL_RV_OBJECT: {
        struct mkv *kv = cl_xcalloc(v->u.obj.len + 1, sizeof *kv);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            kv[i].k = key_text(v->u.obj.keys[i], &kv[i].kl);
            kv[i].v = v->u.obj.vals[i];
        }
        qsort(kv, v->u.obj.len, sizeof *kv, mkv_cmp);
        if (yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
            emit(em, &ev);
        else
            em->failed = true;
        for (size_t i = 0; i < v->u.obj.len; i++) {
            if (!em->failed) {
                emit_string(em, kv[i].k, kv[i].kl);
                emit_value(em, kv[i].v, depth + 1);
            }
            free(kv[i].k);
        }
        free(kv);
        if (yaml_mapping_end_event_initialize(&ev))
            emit(em, &ev);
        break;
    }
    default:
        em->failed = true;
    }
}

static int bi_yaml_marshal(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    /* the text is a few times the size of the value at most */
    if (cl_rego_bi_reserve(c, cl_rv_size(a[0]) * 4 + 256) < 0)
        return -2;
    struct emitter em = {0};
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em.e))
        return cl_rego_bi_error(c, "yaml: out of memory");
    yaml_emitter_set_output(&em.e, write_handler, &em.out);
    yaml_emitter_set_unicode(&em.e, 1);
    if (yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
        emit(&em, &ev);
    if (yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))
        emit(&em, &ev);
    emit_value(&em, a[0], 0);
    if (yaml_document_end_event_initialize(&ev, 1))
        emit(&em, &ev);
    if (yaml_stream_end_event_initialize(&ev))
        emit(&em, &ev);
    yaml_emitter_delete(&em.e);
    if (em.failed) {
        cl_sbuf_free(&em.out);
        return cl_rego_bi_error(c, "yaml: cannot marshal value");
    }
    struct cl_rv *r = cl_rv_str(em.out.s ? em.out.s : "", em.out.len);
    cl_sbuf_free(&em.out);
    return OUT(r);
}

const struct cl_rego_builtin cl_rego_builtins_yaml[] = {
    {"yaml.marshal", 1, bi_yaml_marshal, 0},
    {"yaml.unmarshal", 1, bi_yaml_unmarshal, 0},
    {"yaml.is_valid", 1, bi_yaml_is_valid, 0},
    {NULL, 0, NULL, 0},
};
