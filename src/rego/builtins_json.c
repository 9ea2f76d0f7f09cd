/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.patch with OPA's semantics: RFC 6902 operations (add, remove, replace, move, copy,
 * test) applied to any Rego value, with paths given as JSON pointers ("/a/0", leading slashes
 * optional, ~0 and ~1 escapes) or as arrays of path segments (any value: object keys of any
 * type, set members, array indexes). A patch that cannot be applied makes the call
 * undefined, as in OPA; only a non-array patch list is an error.
 */
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

/* Deepest path followed (the document nesting is bounded by the memory cap anyway). */
#define PATCH_MAX_DEPTH 1024

struct path {
    struct cl_rv **seg; /* borrowed from the patch, or owned strings (owned[i]) */
    bool *owned;
    size_t n;
};

static void path_free(struct path *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->owned[i])
            cl_rv_decref(p->seg[i]);
    free(p->seg);
    free(p->owned);
    p->seg = NULL;
    p->owned = NULL;
    p->n = 0;
}

/* OPA's parsePath: "" is the root; otherwise leading '/' are dropped and the rest split on
 * '/', each part unescaped (~1 then ~0). An array is taken as the segments. */
static bool parse_path(const struct cl_rv *v, struct path *p)
{
    memset(p, 0, sizeof *p);
    if (v->type == CL_RV_ARRAY) {
        p->n = v->u.arr.len;
        p->seg = cl_xcalloc(p->n + 1, sizeof *p->seg);
        p->owned = cl_xcalloc(p->n + 1, sizeof *p->owned);
        for (size_t i = 0; i < p->n; i++)
            p->seg[i] = v->u.arr.items[i];
        return true;
    }
    if (v->type != CL_RV_STRING)
        return false;
    if (L(v) == 0)
        return true;
    const char *s = S(v), *e = s + L(v);
    while (s < e && *s == '/')
        s++;
    size_t parts = 1;
    for (const char *q = s; q < e; q++)
        parts += *q == '/';
    p->seg = cl_xcalloc(parts + 1, sizeof *p->seg);
    p->owned = cl_xcalloc(parts + 1, sizeof *p->owned);
    for (;;) {
        const char *slash = memchr(s, '/', (size_t)(e - s));
        const char *pe = slash ? slash : e;
        struct cl_sbuf b = {0};
        /* "~1" -> "/" first, then "~0" -> "~" (OPA's order) */
        struct cl_sbuf t = {0};
        for (const char *q = s; q < pe; q++) {
            if (q + 1 < pe && q[0] == '~' && q[1] == '1') {
                cl_sbuf_addc(&t, '/');
                q++;
            } else {
                cl_sbuf_addc(&t, *q);
            }
        }
        for (size_t i = 0; i < t.len; i++) {
            if (i + 1 < t.len && t.s[i] == '~' && t.s[i + 1] == '0') {
                cl_sbuf_addc(&b, '~');
                i++;
            } else {
                cl_sbuf_addc(&b, t.s[i]);
            }
        }
        cl_sbuf_free(&t);
        p->seg[p->n] = cl_rv_str(b.s ? b.s : "", b.len);
        p->owned[p->n++] = true;
        cl_sbuf_free(&b);
        if (!slash)
            break;
        s = slash + 1;
    }
    return true;
}

/* An array index from a segment (a decimal string or an integral number);
 * allow_end accepts "-" (append) and len. */
static bool seg_index(const struct cl_rv *seg, size_t len, bool allow_end, size_t *out)
{
    int64_t i;
    if (seg->type == CL_RV_STRING) {
        if (allow_end && L(seg) == 1 && S(seg)[0] == '-') {
            *out = len;
            return true;
        }
        /* RFC 6901 array indexes: decimal digits without leading zeros */
        const char *s = S(seg);
        size_t n = L(seg);
        if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
            return false;
        int64_t v = 0;
        for (size_t k = 0; k < n; k++) {
            if (s[k] < '0' || s[k] > '9')
                return false;
            v = v * 10 + (s[k] - '0');
        }
        i = v;
    } else if (!cl_rv_as_int(seg, &i)) {
        return false;
    }
    if (i < 0 || (uint64_t)i > len || ((uint64_t)i == len && !allow_end))
        return false;
    *out = (size_t)i;
    return true;
}

/* The child of node at seg, borrowed; NULL when absent. */
static struct cl_rv *child(const struct cl_rv *node, const struct cl_rv *seg)
{
    size_t i;
    switch (node->type) {
    case CL_RV_OBJECT:
        return cl_rv_obj_get(node, seg);
    case CL_RV_ARRAY:
        return seg_index(seg, node->u.arr.len, false, &i) ? node->u.arr.items[i] : NULL;
    case CL_RV_SET:
        for (size_t k = 0; k < node->u.arr.len; k++)
            if (cl_rv_equal(node->u.arr.items[k], seg))
                return node->u.arr.items[k];
        return NULL;
    default:
        return NULL;
    }
}

enum pop { P_ADD, P_REMOVE };

struct patcher {
    struct cl_rego_bctx *c;
    size_t copied; /* bytes of containers copied so far */
};

/* A shallow copy that may be modified, its size charged to the memory cap. */
static struct cl_rv *copy_node(struct patcher *pt, const struct cl_rv *node, int *rc)
{
    pt->copied += cl_rv_len(node) * 2 * sizeof(struct cl_rv *) + 64;
    if (cl_rego_bi_reserve(pt->c, pt->copied) < 0) {
        *rc = -2;
        return NULL;
    }
    return cl_rv_copy(node);
}

/* Applies op at path[i..] below node; returns the new node (new reference) or NULL when the
 * operation does not apply (*rc stays 0) or a limit was hit (*rc < 0). */
static struct cl_rv *apply(struct patcher *pt, struct cl_rv *node, const struct path *p, size_t i,
                           enum pop op, struct cl_rv *value, int *rc)
{
    const struct cl_rv *seg = p->seg[i];
    bool last = i + 1 == p->n;
    if (!last) {
        struct cl_rv *ch = child(node, seg);
        if (!ch)
            return NULL;
        struct cl_rv *nch = apply(pt, ch, p, i + 1, op, value, rc);
        if (!nch)
            return NULL;
        struct cl_rv *r = copy_node(pt, node, rc);
        if (!r) {
            cl_rv_decref(nch);
            return NULL;
        }
        if (r->type == CL_RV_OBJECT) {
            cl_rv_obj_put(r, cl_rv_incref(p->seg[i]), nch);
        } else if (r->type == CL_RV_ARRAY) {
            size_t k;
            seg_index(seg, r->u.arr.len, false, &k);
            cl_rv_decref(r->u.arr.items[k]);
            r->u.arr.items[k] = nch;
        } else { /* set: the member is replaced by its patched value */
            struct cl_rv *nset = cl_rv_set();
            for (size_t k = 0; k < r->u.arr.len; k++)
                if (r->u.arr.items[k] != ch)
                    cl_rv_set_add(nset, cl_rv_incref(r->u.arr.items[k]));
            cl_rv_set_add(nset, nch);
            cl_rv_decref(r);
            r = nset;
        }
        return r;
    }
    size_t k;
    switch (node->type) {
    case CL_RV_OBJECT: {
        if (op == P_REMOVE && !cl_rv_obj_get(node, seg))
            return NULL;
        struct cl_rv *r = copy_node(pt, node, rc);
        if (!r)
            return NULL;
        if (op == P_ADD)
            cl_rv_obj_put(r, cl_rv_incref(p->seg[i]), cl_rv_incref(value));
        else
            cl_rv_obj_del(r, seg);
        return r;
    }
    case CL_RV_ARRAY: {
        if (!seg_index(seg, node->u.arr.len, op == P_ADD, &k))
            return NULL;
        struct cl_rv *r = cl_rv_array(node->u.arr.len + 1);
        pt->copied += (node->u.arr.len + 1) * sizeof(struct cl_rv *) + 64;
        if (cl_rego_bi_reserve(pt->c, pt->copied) < 0) {
            cl_rv_decref(r);
            *rc = -2;
            return NULL;
        }
        for (size_t j = 0; j < node->u.arr.len; j++) {
            if (j == k && op == P_ADD)
                cl_rv_array_push(r, cl_rv_incref(value));
            if (j != k || op == P_ADD)
                cl_rv_array_push(r, cl_rv_incref(node->u.arr.items[j]));
        }
        if (k == node->u.arr.len && op == P_ADD)
            cl_rv_array_push(r, cl_rv_incref(value));
        return r;
    }
    case CL_RV_SET: {
        /* a set member is addressed by itself: adding requires the value to be the segment */
        if (op == P_ADD && !cl_rv_equal(seg, value))
            return NULL;
        if (op == P_REMOVE && !child(node, seg))
            return NULL;
        struct cl_rv *r = cl_rv_set();
        pt->copied += node->u.arr.len * sizeof(struct cl_rv *) + 64;
        if (cl_rego_bi_reserve(pt->c, pt->copied) < 0) {
            cl_rv_decref(r);
            *rc = -2;
            return NULL;
        }
        for (size_t j = 0; j < node->u.arr.len; j++)
            if (op == P_ADD || !cl_rv_equal(node->u.arr.items[j], seg))
                cl_rv_set_add(r, cl_rv_incref(node->u.arr.items[j]));
        if (op == P_ADD)
            cl_rv_set_add(r, cl_rv_incref(value));
        return r;
    }
    default:
        return NULL;
    }
}

/* Value at path (borrowed) or NULL. */
static struct cl_rv *get_at(struct cl_rv *doc, const struct path *p)
{
    struct cl_rv *n = doc;
    for (size_t i = 0; i < p->n && n; i++)
        n = child(n, p->seg[i]);
    return n;
}

/* add / remove on the whole document; takes nothing, returns new or NULL. */
static struct cl_rv *edit(struct patcher *pt, struct cl_rv *doc, const struct path *p, enum pop op,
                          struct cl_rv *value, int *rc)
{
    if (p->n == 0)
        return op == P_ADD ? cl_rv_incref(value) : NULL;
    return apply(pt, doc, p, 0, op, value, rc);
}

static const struct cl_rv *member(const struct cl_rv *o, const char *k)
{
    return cl_rv_obj_get_str(o, k);
}

static int bi_json_patch(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 1, CL_RV_ARRAY) < 0)
        return -1;
    struct patcher pt = {c, 0};
    struct cl_rv *doc = cl_rv_incref(a[0]);
    int rc = 0;
    for (size_t i = 0; i < a[1]->u.arr.len; i++) {
        const struct cl_rv *o = a[1]->u.arr.items[i];
        if (o->type != CL_RV_OBJECT)
            goto undefined;
        const struct cl_rv *opv = member(o, "op"), *pathv = member(o, "path");
        if (!opv || opv->type != CL_RV_STRING)
            goto undefined;
        const char *op = S(opv);
        bool needs_from = !strcmp(op, "move") || !strcmp(op, "copy");
        bool needs_value = !strcmp(op, "add") || !strcmp(op, "replace") || !strcmp(op, "test");
        if (!needs_from && !needs_value && strcmp(op, "remove") != 0)
            goto undefined;
        const struct cl_rv *fromv = member(o, "from");
        struct cl_rv *value = cl_rv_obj_get_str(o, "value");
        if (!pathv || (needs_from && !fromv) || (needs_value && !value))
            goto undefined;
        struct path p, f = {0};
        if (!parse_path(pathv, &p))
            goto undefined;
        if (p.n > PATCH_MAX_DEPTH ||
            (needs_from && (!parse_path(fromv, &f) || f.n > PATCH_MAX_DEPTH))) {
            path_free(&p);
            path_free(&f);
            goto undefined;
        }
        struct cl_rv *next = NULL, *tmp = NULL, *chunk;
        if (!strcmp(op, "add")) {
            next = edit(&pt, doc, &p, P_ADD, value, &rc);
        } else if (!strcmp(op, "remove")) {
            next = edit(&pt, doc, &p, P_REMOVE, NULL, &rc);
        } else if (!strcmp(op, "replace")) {
            tmp = edit(&pt, doc, &p, P_REMOVE, NULL, &rc);
            if (tmp || p.n == 0) /* replacing the root is allowed */
                next = edit(&pt, tmp ? tmp : doc, &p, P_ADD, value, &rc);
        } else if (!strcmp(op, "move")) {
            if ((chunk = get_at(doc, &f))) {
                chunk = cl_rv_incref(chunk);
                tmp = edit(&pt, doc, &f, P_REMOVE, NULL, &rc);
                if (tmp)
                    next = edit(&pt, tmp, &p, P_ADD, chunk, &rc);
                cl_rv_decref(chunk);
            }
        } else if (!strcmp(op, "copy")) {
            if ((chunk = get_at(doc, &f)))
                next = edit(&pt, doc, &p, P_ADD, chunk, &rc);
        } else { /* test */
            chunk = get_at(doc, &p);
            if (chunk && cl_rv_equal(chunk, value))
                next = cl_rv_incref(doc);
        }
        cl_rv_decref(tmp);
        path_free(&p);
        path_free(&f);
        if (!next)
            goto undefined;
        cl_rv_decref(doc);
        doc = next;
    }
    return OUT(doc);
undefined:
    cl_rv_decref(doc);
    return rc < 0 ? rc : CL_REGO_UNDEFINED;
}

const struct cl_rego_builtin cl_rego_builtins_json[] = {
    {"json.patch", 2, bi_json_patch, 0},
    {NULL, 0, NULL, 0},
};
