/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Array, set and object builtins: array.*, set operators (&, |), union/intersection,
 * object.get/keys/remove/filter/union/union_n/subset, json.filter/remove, walk.
 */
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)

static int bi_and(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_SET) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_SET) < 0)
        return -1;
    struct cl_rv *r = cl_rv_set();
    for (size_t i = 0; i < a[0]->u.arr.len; i++)
        if (cl_rv_set_has(a[1], a[0]->u.arr.items[i]))
            cl_rv_set_add(r, cl_rv_incref(a[0]->u.arr.items[i]));
    return OUT(r);
}

static int bi_or(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_SET) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_SET) < 0)
        return -1;
    struct cl_rv *r = cl_rv_copy(a[0]);
    for (size_t i = 0; i < a[1]->u.arr.len; i++)
        cl_rv_set_add(r, cl_rv_incref(a[1]->u.arr.items[i]));
    return OUT(r);
}

static int bi_union(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_SET) < 0)
        return -1;
    struct cl_rv *r = cl_rv_set();
    for (size_t i = 0; i < a[0]->u.arr.len; i++) {
        const struct cl_rv *s = a[0]->u.arr.items[i];
        if (s->type != CL_RV_SET) {
            cl_rv_decref(r);
            return cl_rego_bi_type_error(c, 0, "set of sets", s);
        }
        for (size_t j = 0; j < s->u.arr.len; j++)
            cl_rv_set_add(r, cl_rv_incref(s->u.arr.items[j]));
    }
    return OUT(r);
}

static int bi_intersection(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_SET) < 0)
        return -1;
    if (a[0]->u.arr.len == 0)
        return OUT(cl_rv_set());
    for (size_t i = 0; i < a[0]->u.arr.len; i++)
        if (a[0]->u.arr.items[i]->type != CL_RV_SET)
            return cl_rego_bi_type_error(c, 0, "set of sets", a[0]->u.arr.items[i]);
    const struct cl_rv *first = a[0]->u.arr.items[0];
    struct cl_rv *r = cl_rv_set();
    for (size_t j = 0; j < first->u.arr.len; j++) {
        bool all = true;
        for (size_t i = 1; i < a[0]->u.arr.len && all; i++)
            all = cl_rv_set_has(a[0]->u.arr.items[i], first->u.arr.items[j]);
        if (all)
            cl_rv_set_add(r, cl_rv_incref(first->u.arr.items[j]));
    }
    return OUT(r);
}

static int bi_array_concat(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_ARRAY) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_ARRAY) < 0)
        return -1;
    struct cl_rv *r = cl_rv_array(a[0]->u.arr.len + a[1]->u.arr.len);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < a[k]->u.arr.len; i++)
            cl_rv_array_push(r, cl_rv_incref(a[k]->u.arr.items[i]));
    return OUT(r);
}

static int bi_array_slice(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    int64_t s, e;
    if (cl_rego_bi_want(c, a, 0, CL_RV_ARRAY) < 0 || cl_rego_bi_want_int(c, a, 1, &s) < 0 ||
        cl_rego_bi_want_int(c, a, 2, &e) < 0)
        return -1;
    int64_t n = (int64_t)a[0]->u.arr.len;
    if (s < 0)
        s = 0;
    if (e > n)
        e = n;
    struct cl_rv *r = cl_rv_array(0);
    for (int64_t i = s; i < e; i++)
        cl_rv_array_push(r, cl_rv_incref(a[0]->u.arr.items[i]));
    return OUT(r);
}

static int bi_array_reverse(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_ARRAY) < 0)
        return -1;
    struct cl_rv *r = cl_rv_array(a[0]->u.arr.len);
    for (size_t i = a[0]->u.arr.len; i-- > 0;)
        cl_rv_array_push(r, cl_rv_incref(a[0]->u.arr.items[i]));
    return OUT(r);
}

/* array.flatten removes one level of nesting, as OPA: [[1, [2]], 3] is [1, [2], 3]. */
static int bi_array_flatten(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_ARRAY) < 0)
        return -1;
    struct cl_rv *r = cl_rv_array(0);
    for (size_t i = 0; i < a[0]->u.arr.len; i++) {
        struct cl_rv *x = a[0]->u.arr.items[i];
        if (x->type != CL_RV_ARRAY) {
            cl_rv_array_push(r, cl_rv_incref(x));
            continue;
        }
        for (size_t j = 0; j < x->u.arr.len; j++)
            cl_rv_array_push(r, cl_rv_incref(x->u.arr.items[j]));
    }
    return OUT(r);
}

static int bi_object_get(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    if (a[1]->type != CL_RV_ARRAY) {
        struct cl_rv *v = cl_rv_obj_get(a[0], a[1]);
        return OUT(cl_rv_incref(v ? v : a[2]));
    }
    const struct cl_rv *cur = a[0];
    for (size_t i = 0; i < a[1]->u.arr.len; i++) {
        const struct cl_rv *k = a[1]->u.arr.items[i];
        const struct cl_rv *nx = NULL;
        if (cur->type == CL_RV_OBJECT) {
            nx = cl_rv_obj_get(cur, k);
        } else if (cur->type == CL_RV_ARRAY) {
            int64_t idx;
            if (cl_rv_as_int(k, &idx) && idx >= 0 && (uint64_t)idx < cur->u.arr.len)
                nx = cur->u.arr.items[idx];
        } else if (cur->type == CL_RV_SET) {
            if (cl_rv_set_has(cur, k))
                nx = k;
        }
        if (!nx)
            return OUT(cl_rv_incref(a[2]));
        cur = nx;
    }
    return OUT(cl_rv_incref((struct cl_rv *)(uintptr_t)cur));
}

static int bi_object_keys(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    struct cl_rv *r = cl_rv_set();
    for (size_t i = 0; i < a[0]->u.obj.len; i++)
        cl_rv_set_add(r, cl_rv_incref(a[0]->u.obj.keys[i]));
    return OUT(r);
}

/* keys argument of object.remove / object.filter: array, set or object (its keys) */
static int key_set(struct cl_rego_bctx *c, const struct cl_rv *k, struct cl_rv **set)
{
    *set = cl_rv_set();
    if (k->type == CL_RV_ARRAY || k->type == CL_RV_SET) {
        for (size_t i = 0; i < k->u.arr.len; i++)
            cl_rv_set_add(*set, cl_rv_incref(k->u.arr.items[i]));
    } else if (k->type == CL_RV_OBJECT) {
        for (size_t i = 0; i < k->u.obj.len; i++)
            cl_rv_set_add(*set, cl_rv_incref(k->u.obj.keys[i]));
    } else {
        cl_rv_decref(*set);
        return cl_rego_bi_type_error(c, 1, "one of {object, set, array}", k);
    }
    return 0;
}

static int obj_select(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out, bool keep)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    struct cl_rv *ks;
    if (key_set(c, a[1], &ks) < 0)
        return -1;
    struct cl_rv *r = cl_rv_object();
    for (size_t i = 0; i < a[0]->u.obj.len; i++)
        if (cl_rv_set_has(ks, a[0]->u.obj.keys[i]) == keep)
            cl_rv_obj_put(r, cl_rv_incref(a[0]->u.obj.keys[i]), cl_rv_incref(a[0]->u.obj.vals[i]));
    cl_rv_decref(ks);
    return OUT(r);
}
static int bi_object_remove(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return obj_select(c, a, out, false);
}
static int bi_object_filter(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return obj_select(c, a, out, true);
}

static struct cl_rv *merge(const struct cl_rv *x, const struct cl_rv *y, int depth)
{
    if (x->type != CL_RV_OBJECT || y->type != CL_RV_OBJECT || depth > 64)
        return cl_rv_incref((struct cl_rv *)(uintptr_t)y);
    struct cl_rv *r = cl_rv_copy(x);
    for (size_t i = 0; i < y->u.obj.len; i++) {
        const struct cl_rv *old = cl_rv_obj_get(r, y->u.obj.keys[i]);
        struct cl_rv *nv =
            old ? merge(old, y->u.obj.vals[i], depth + 1) : cl_rv_incref(y->u.obj.vals[i]);
        cl_rv_obj_put(r, cl_rv_incref(y->u.obj.keys[i]), nv);
    }
    return r;
}

static int bi_object_union(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_OBJECT) < 0)
        return -1;
    return OUT(merge(a[0], a[1], 0));
}

static int bi_object_union_n(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_ARRAY) < 0)
        return -1;
    struct cl_rv *r = cl_rv_object();
    for (size_t i = 0; i < a[0]->u.arr.len; i++) {
        const struct cl_rv *o = a[0]->u.arr.items[i];
        if (o->type != CL_RV_OBJECT) {
            cl_rv_decref(r);
            return cl_rego_bi_type_error(c, 0, "array of objects", o);
        }
        struct cl_rv *n = merge(r, o, 0);
        cl_rv_decref(r);
        r = n;
    }
    return OUT(r);
}

static bool subset(const struct cl_rv *sup, const struct cl_rv *sub, int depth)
{
    if (depth > 64)
        return false;
    if (sup->type == CL_RV_OBJECT && sub->type == CL_RV_OBJECT) {
        for (size_t i = 0; i < sub->u.obj.len; i++) {
            const struct cl_rv *v = cl_rv_obj_get(sup, sub->u.obj.keys[i]);
            if (!v)
                return false;
            if (v->type == CL_RV_OBJECT && sub->u.obj.vals[i]->type == CL_RV_OBJECT) {
                if (!subset(v, sub->u.obj.vals[i], depth + 1))
                    return false;
            } else if ((v->type == CL_RV_SET || v->type == CL_RV_ARRAY) &&
                       v->type == sub->u.obj.vals[i]->type) {
                /* nested sets and arrays: subset and sub-array, recursively */
                if (!subset(v, sub->u.obj.vals[i], depth + 1))
                    return false;
            } else if (!cl_rv_equal(v, sub->u.obj.vals[i])) {
                return false;
            }
        }
        return true;
    }
    if (sup->type == CL_RV_SET && sub->type == CL_RV_SET) {
        for (size_t i = 0; i < sub->u.arr.len; i++)
            if (!cl_rv_set_has(sup, sub->u.arr.items[i]))
                return false;
        return true;
    }
    if (sup->type == CL_RV_ARRAY && sub->type == CL_RV_ARRAY) {
        if (sub->u.arr.len == 0)
            return true;
        for (size_t i = 0; i + sub->u.arr.len <= sup->u.arr.len; i++) {
            bool ok = true;
            for (size_t j = 0; j < sub->u.arr.len && ok; j++)
                ok = cl_rv_equal(sup->u.arr.items[i + j], sub->u.arr.items[j]);
            if (ok)
                return true;
        }
        return false;
    }
    if (sup->type == CL_RV_ARRAY && sub->type == CL_RV_SET) {
        for (size_t i = 0; i < sub->u.arr.len; i++) {
            bool found = false;
            for (size_t j = 0; j < sup->u.arr.len && !found; j++)
                found = cl_rv_equal(sup->u.arr.items[j], sub->u.arr.items[i]);
            if (!found)
                return false;
        }
        return true;
    }
    return false;
}

static int bi_object_subset(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    for (int i = 0; i < 2; i++)
        if (a[i]->type != CL_RV_OBJECT && a[i]->type != CL_RV_SET && a[i]->type != CL_RV_ARRAY)
            return cl_rego_bi_type_error(c, i, "one of {object, set, array}", a[i]);
    if ((a[0]->type == CL_RV_OBJECT) != (a[1]->type == CL_RV_OBJECT))
        return cl_rego_bi_error(c, "both arguments must be objects, or neither");
    return OUT(cl_rv_bool(subset(a[0], a[1], 0)));
}

/* ---- json.filter / json.remove: paths as "a/b/c" strings or arrays ---- */

static struct cl_rv *path_parts(const struct cl_rv *p)
{
    if (p->type == CL_RV_ARRAY)
        return cl_rv_incref((struct cl_rv *)(uintptr_t)p);
    if (p->type != CL_RV_STRING)
        return NULL;
    struct cl_rv *r = cl_rv_array(0);
    const char *s = p->u.str.s, *e = s + p->u.str.len;
    if (s < e && *s == '/')
        s++;
    while (s <= e) {
        const char *q = memchr(s, '/', (size_t)(e - s));
        if (!q)
            q = e;
        if (q > s || q < e) {
            /* unescape ~1 and ~0 */
            char *tmp = cl_xmalloc((size_t)(q - s) + 1);
            size_t n = 0;
            for (const char *x = s; x < q; x++) {
                if (*x == '~' && x + 1 < q && (x[1] == '0' || x[1] == '1')) {
                    tmp[n++] = x[1] == '0' ? '~' : '/';
                    x++;
                } else {
                    tmp[n++] = *x;
                }
            }
            cl_rv_array_push(r, cl_rv_str(tmp, n));
            free(tmp);
        }
        if (q == e)
            break;
        s = q + 1;
    }
    return r;
}

/* a tree of path sets: object key -> subtree, leaf = true */
static void tree_add(struct cl_rv *tree, const struct cl_rv *parts, size_t i)
{
    if (i == parts->u.arr.len)
        return;
    struct cl_rv *k = parts->u.arr.items[i];
    struct cl_rv *sub = cl_rv_obj_get(tree, k);
    if (sub && sub->type == CL_RV_BOOL)
        return; /* a shorter path already covers it */
    if (i + 1 == parts->u.arr.len) {
        cl_rv_obj_put(tree, cl_rv_incref(k), cl_rv_bool(true));
        return;
    }
    struct cl_rv *n = sub ? cl_rv_copy(sub) : cl_rv_object();
    tree_add(n, parts, i + 1);
    cl_rv_obj_put(tree, cl_rv_incref(k), n);
}

static struct cl_rv *tree_lookup(const struct cl_rv *tree, const struct cl_rv *key)
{
    struct cl_rv *v = cl_rv_obj_get(tree, key);
    if (v || key->type == CL_RV_STRING)
        return v;
    /* array indexes appear as strings in paths */
    char *s = cl_rv_to_json_text(key);
    v = cl_rv_obj_get_str(tree, s);
    free(s);
    return v;
}

static struct cl_rv *json_filter(const struct cl_rv *v, const struct cl_rv *tree)
{
    if (v->type == CL_RV_OBJECT) {
        struct cl_rv *r = cl_rv_object();
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const struct cl_rv *t = tree_lookup(tree, v->u.obj.keys[i]);
            if (!t)
                continue;
            cl_rv_obj_put(r, cl_rv_incref(v->u.obj.keys[i]),
                          t->type == CL_RV_BOOL ? cl_rv_incref(v->u.obj.vals[i])
                                                : json_filter(v->u.obj.vals[i], t));
        }
        return r;
    }
    if (v->type == CL_RV_ARRAY || v->type == CL_RV_SET) {
        struct cl_rv *r = v->type == CL_RV_ARRAY ? cl_rv_array(0) : cl_rv_set();
        for (size_t i = 0; i < v->u.arr.len; i++) {
            struct cl_rv *key =
                v->type == CL_RV_ARRAY ? cl_rv_int((int64_t)i) : cl_rv_incref(v->u.arr.items[i]);
            const struct cl_rv *t = tree_lookup(tree, key);
            cl_rv_decref(key);
            if (!t)
                continue;
            struct cl_rv *x = t->type == CL_RV_BOOL ? cl_rv_incref(v->u.arr.items[i])
                                                    : json_filter(v->u.arr.items[i], t);
            if (v->type == CL_RV_ARRAY)
                cl_rv_array_push(r, x);
            else
                cl_rv_set_add(r, x);
        }
        return r;
    }
    return cl_rv_incref((struct cl_rv *)(uintptr_t)v);
}

static struct cl_rv *json_remove(const struct cl_rv *v, const struct cl_rv *tree)
{
    if (v->type == CL_RV_OBJECT) {
        struct cl_rv *r = cl_rv_object();
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const struct cl_rv *t = tree_lookup(tree, v->u.obj.keys[i]);
            if (t && t->type == CL_RV_BOOL)
                continue;
            cl_rv_obj_put(r, cl_rv_incref(v->u.obj.keys[i]),
                          t ? json_remove(v->u.obj.vals[i], t) : cl_rv_incref(v->u.obj.vals[i]));
        }
        return r;
    }
    if (v->type == CL_RV_ARRAY || v->type == CL_RV_SET) {
        struct cl_rv *r = v->type == CL_RV_ARRAY ? cl_rv_array(0) : cl_rv_set();
        for (size_t i = 0; i < v->u.arr.len; i++) {
            struct cl_rv *key =
                v->type == CL_RV_ARRAY ? cl_rv_int((int64_t)i) : cl_rv_incref(v->u.arr.items[i]);
            const struct cl_rv *t = tree_lookup(tree, key);
            cl_rv_decref(key);
            if (t && t->type == CL_RV_BOOL)
                continue;
            struct cl_rv *x =
                t ? json_remove(v->u.arr.items[i], t) : cl_rv_incref(v->u.arr.items[i]);
            if (v->type == CL_RV_ARRAY)
                cl_rv_array_push(r, x);
            else
                cl_rv_set_add(r, x);
        }
        return r;
    }
    return cl_rv_incref((struct cl_rv *)(uintptr_t)v);
}

static int json_paths(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                      bool filter)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_OBJECT) < 0)
        return -1;
    if (a[1]->type != CL_RV_ARRAY && a[1]->type != CL_RV_SET)
        return cl_rego_bi_type_error(c, 1, "one of {set, array}", a[1]);
    struct cl_rv *tree = cl_rv_object();
    for (size_t i = 0; i < a[1]->u.arr.len; i++) {
        struct cl_rv *parts = path_parts(a[1]->u.arr.items[i]);
        if (!parts) {
            cl_rv_decref(tree);
            return cl_rego_bi_type_errorf(c,
                                          "operand 2 must be one of {set, array} containing string "
                                          "paths or array of path segments but got %s",
                                          cl_rv_type_name(a[1]->u.arr.items[i]));
        }
        /* normalise parts: numbers in array paths count as keys too */
        tree_add(tree, parts, 0);
        cl_rv_decref(parts);
    }
    struct cl_rv *r = filter ? json_filter(a[0], tree) : json_remove(a[0], tree);
    cl_rv_decref(tree);
    return OUT(r);
}
static int bi_json_filter(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return json_paths(c, a, out, true);
}
static int bi_json_remove(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return json_paths(c, a, out, false);
}

/* walk(x): every [path, value] pair, depth first (a relation: one solution per pair) */
static void walk_rec(struct cl_rv *acc, struct cl_rv *path, const struct cl_rv *v, int depth)
{
    if (!v)
        return;
    struct cl_rv *pair = cl_rv_array(2);
    cl_rv_array_push(pair, cl_rv_copy(path));
    cl_rv_array_push(pair, cl_rv_incref((struct cl_rv *)(uintptr_t)v));
    cl_rv_array_push(acc, pair);
    if (depth > 128)
        return;
    size_t n = cl_rv_len(v);
    if (v->type != CL_RV_ARRAY && v->type != CL_RV_SET && v->type != CL_RV_OBJECT)
        return;
    for (size_t i = 0; i < n; i++) {
        struct cl_rv *k, *x;
        if (v->type == CL_RV_ARRAY) {
            k = cl_rv_int((int64_t)i);
            x = v->u.arr.items[i];
        } else if (v->type == CL_RV_SET) {
            k = cl_rv_incref(v->u.arr.items[i]);
            x = v->u.arr.items[i];
        } else {
            k = cl_rv_incref(v->u.obj.keys[i]);
            x = v->u.obj.vals[i];
        }
        cl_rv_array_push(path, k);
        walk_rec(acc, path, x, depth + 1);
        path->u.arr.len--;
        cl_rv_decref(k);
    }
}

static int bi_walk(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct cl_rv *acc = cl_rv_array(0), *path = cl_rv_array(0);
    walk_rec(acc, path, a[0], 0);
    cl_rv_decref(path);
    (void)c;
    return OUT(acc);
}

const struct cl_rego_builtin cl_rego_builtins_collections[] = {
    {"and", 2, bi_and, 0},
    {"or", 2, bi_or, 0},
    {"union", 1, bi_union, 0},
    {"intersection", 1, bi_intersection, 0},
    {"array.concat", 2, bi_array_concat, 0},
    {"array.slice", 3, bi_array_slice, 0},
    {"array.reverse", 1, bi_array_reverse, 0},
    {"array.flatten", 1, bi_array_flatten, 0},
    {"object.get", 3, bi_object_get, 0},
    {"object.keys", 1, bi_object_keys, 0},
    {"object.remove", 2, bi_object_remove, 0},
    {"object.filter", 2, bi_object_filter, 0},
    {"object.union", 2, bi_object_union, 0},
    {"object.union_n", 1, bi_object_union_n, 0},
    {"object.subset", 2, bi_object_subset, 0},
    {"json.filter", 2, bi_json_filter, 0},
    {"json.remove", 2, bi_json_remove, 0},
    {"walk", 1, bi_walk, CL_REGO_BI_RELATION},
    {NULL, 0, NULL, 0},
};
