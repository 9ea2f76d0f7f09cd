/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The top-down evaluator: goal-directed evaluation of bodies with backtracking, written in
 * continuation-passing style (each solution of an expression calls the rest of the body).
 * Rules are materialised on demand per rule-tree node and cached for the query; functions
 * are evaluated per call with conflict checks; `with` swaps input, data paths and functions
 * for one expression. Limits (steps, memory, depth, stack) end the query with an error.
 *
 * Continuations return 0 to ask for more solutions, STOP to end the enumeration early
 * (negation, every, constant rules) and a negative value on error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rego/engine.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define STOP 1

struct ev;
struct k {
    int (*fn)(struct ev *ev, struct k *k, struct cl_rv *v);
};

struct frame {
    struct cl_rv **slots;
};

struct dov { /* data override (with data.x as v) */
    struct cl_rv **path;
    size_t n;
    struct cl_rv *val;
};

struct mock {
    const struct cl_rego_builtin *tbi;
    const struct cl_rg_node *tfn;
    const struct cl_rego_builtin *vbi;
    const struct cl_rg_node *vfn;
    int vext;
    struct cl_rv *val;
    bool disabled; /* while its replacement runs (a mock may call the original) */
};

struct cache {
    struct cl_rv **vals;
    unsigned char *state; /* 0 unknown, 1 computing, 2 defined, 3 undefined */
};

struct trail_ent {
    struct cl_rv **slot;
};

struct ev {
    struct cl_rego *e;
    struct cl_rv *input; /* NULL until needed whole when input_json is set (input_whole) */
    /* The input as the caller's JSON: references with constant keys are followed in it and
     * only the part they reach is converted (lazy_input); `lazy` keeps those parts to the
     * end of the evaluation, so a value handed out is never freed under its users. */
    const json_t *input_json;
    struct cl_rv *input_made; /* the whole input converted here, owned */
    struct lazy_part {
        const json_t *j;
        struct cl_rv *v;
    } * lazy;
    size_t nlazy, caplazy;
    struct cl_rv *data; /* base document of this evaluation (the engine's, or with an overlay) */
    bool strict;
    int64_t now_ns;
    struct cl_rg_error *err;
    int code;
    uint64_t steps, max_steps;
    int64_t mem_base;
    size_t max_mem;
    int depth, max_depth;
    const char *stack_base;
    size_t max_stack;
    struct trail_ent *trail;
    size_t ntrail, captrail;
    struct cache *cache;
    struct dov *dovs;
    size_t ndovs, capdovs;
    struct mock *mocks;
    size_t nmocks, capmocks;
    size_t mock_floor;    /* mocks below this index are hidden (while a replacement runs) */
    const char *cur_file; /* location of the expression being evaluated, for messages */
    int cur_line;
    const struct cl_rg_rule *cur_rule; /* the rule whose body runs (rego.metadata.*) */
    struct nd_memo *nd; /* results of non-deterministic builtins (rand.intn, uuid.rfc4122) */
    size_t nnd, capnd;
    struct cl_rego_prints *prints; /* print() sink of this evaluation (NULL: none) */
};

/* One query sees one value per (builtin, arguments) of a non-deterministic builtin, as OPA. */
struct nd_memo {
    const struct cl_rego_builtin *bi;
    struct cl_rv *args; /* array */
    struct cl_rv *res;
};

struct rego_bctx_impl;

/* ---- errors ---- */

CL_PRINTF(4, 5) static int fail(struct ev *ev, int clcode, const char *code, const char *fmt, ...)
{
    if (!ev->err->code) {
        ev->err->code = code;
        ev->err->file = ev->cur_file;
        ev->err->line = ev->cur_line;
        ev->err->col = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ev->err->msg, sizeof ev->err->msg, fmt, ap);
        va_end(ap);
        ev->code = clcode;
    }
    return -1;
}

/* An allocation failed (sbuf.h): the evaluation ends with CL_ENOMEM. */
static int fail_oom(struct ev *ev, const char *where)
{
    ev->err->code = NULL; /* wins over whatever the failure caused to be reported first */
    return fail(ev, CL_ENOMEM, "eval_internal_error", "%s%sout of memory (an allocation failed)",
                where ? where : "", where ? ": " : "");
}

static int check_limits(struct ev *ev)
{
    if (++ev->steps > ev->max_steps)
        return fail(ev, CL_ELIMIT, "eval_limit_error", "evaluation step limit exceeded (%llu)",
                    (unsigned long long)ev->max_steps);
    /* memory and stack every 16 steps: a step adds at most a few frames, and builtins reserve
     * large allocations before making them */
    if (ev->steps & 15)
        return 0;
    if (cl_rv_bytes_live - ev->mem_base > (int64_t)ev->max_mem)
        return fail(ev, CL_ELIMIT, "eval_limit_error",
                    "evaluation memory limit exceeded (%zu bytes)", ev->max_mem);
    if (cl_rg_oom)
        return fail_oom(ev, NULL);
    char here;
    size_t used =
        (size_t)(ev->stack_base > &here ? ev->stack_base - &here : &here - ev->stack_base);
    if (used > ev->max_stack)
        return fail(ev, CL_ELIMIT, "eval_limit_error", "evaluation nesting too deep (stack limit)");
    return 0;
}

/* ---- bindings ---- */

static void bind(struct ev *ev, struct cl_rv **slot, struct cl_rv *v)
{
    if (ev->ntrail == ev->captrail) {
        ev->captrail = ev->captrail ? ev->captrail * 2 : 64;
        ev->trail = cl_xrealloc(ev->trail, ev->captrail * sizeof *ev->trail);
    }
    *slot = cl_rv_incref(v);
    ev->trail[ev->ntrail++].slot = slot;
}

static void undo(struct ev *ev, size_t mark)
{
    while (ev->ntrail > mark) {
        struct cl_rv **s = ev->trail[--ev->ntrail].slot;
        cl_rv_decref(*s);
        *s = NULL;
    }
}

/* ---- forward declarations ---- */
static int eval_term(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct k *k);
static int eval_body(struct ev *ev, struct frame *fr, const struct cl_rg_body *b, size_t i,
                     struct k *k);
static int unify_val(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct cl_rv *v,
                     struct k *k);
static int materialize(struct ev *ev, const struct cl_rg_node *n, struct cl_rv *base,
                       struct cl_rv **out);
static int call_fn(struct ev *ev, const struct cl_rg_node *fn, struct cl_rv **args, size_t nargs,
                   struct cl_rv **out);

/* ---- value helpers ---- */

static struct cl_rv *lookup(const struct cl_rv *coll, const struct cl_rv *key)
{
    switch (coll->type) {
    case CL_RV_ARRAY: {
        int64_t i;
        if (!cl_rv_as_int(key, &i)) {
            if (key->type == CL_RV_NUMBER) {
                double d = cl_rv_as_double(key);
                if (d != (double)(int64_t)d)
                    return NULL;
                i = (int64_t)d;
            } else {
                return NULL;
            }
        }
        if (i < 0 || (uint64_t)i >= coll->u.arr.len)
            return NULL;
        return coll->u.arr.items[i];
    }
    case CL_RV_OBJECT:
        return cl_rv_obj_get(coll, key);
    case CL_RV_SET:
        for (size_t i = 0; i < coll->u.arr.len; i++)
            if (cl_rv_equal(coll->u.arr.items[i], key))
                return coll->u.arr.items[i];
        return NULL;
    default:
        return NULL;
    }
}

/* Returns a new value: v with path set to x (creating objects), or NULL when a non-object is
 * in the way. */
static struct cl_rv *set_path(struct cl_rv *v, struct cl_rv *const *path, size_t n, struct cl_rv *x)
{
    if (n == 0)
        return cl_rv_incref(x);
    struct cl_rv *o = v && v->type == CL_RV_OBJECT ? cl_rv_copy(v) : cl_rv_object();
    struct cl_rv *child = cl_rv_obj_get(o, path[0]);
    struct cl_rv *nc = set_path(child, path + 1, n - 1, x);
    cl_rv_obj_put(o, cl_rv_incref(path[0]), nc);
    return o;
}

static bool term_unbound(const struct frame *fr, const struct cl_rg_term *t)
{
    switch (t->kind) {
    case RG_T_VAR:
        return !t->root && t->slot >= 0 && !fr->slots[t->slot];
    case RG_T_ARRAY:
    case RG_T_OBJECT:
    case RG_T_SET:
        for (size_t i = 0; i < t->n; i++)
            if (term_unbound(fr, t->items[i]))
                return true;
        return false;
    case RG_T_REF:
        for (size_t i = 1; i < t->n; i++)
            if (term_unbound(fr, t->items[i]))
                return true;
        return false;
    default:
        return false;
    }
}

/* ---- continuations used in several places ---- */

struct k_collect { /* stores the first value, counts them */
    struct k k;
    struct cl_rv *v;
    bool stop_first;
};

static int k_collect_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    (void)ev;
    struct k_collect *c = (struct k_collect *)k;
    if (!c->v)
        c->v = cl_rv_incref(v);
    return c->stop_first ? STOP : 0;
}

struct k_found {
    struct k k;
};

static int k_found_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    (void)ev;
    (void)k;
    (void)v;
    return STOP;
}

/* ---- refs ---- */

struct walk {
    const struct cl_rg_term *ref;
    struct k *k;
    bool data; /* a reference into data: integer keys also find string keys of base documents */
};

static struct cl_rv *walk_lookup(const struct walk *w, const struct cl_rv *coll,
                                 const struct cl_rv *key)
{
    struct cl_rv *x = lookup(coll, key);
    int64_t ik;
    if (!x && w->data && coll->type == CL_RV_OBJECT && cl_rv_as_int(key, &ik)) {
        char kb[24];
        snprintf(kb, sizeof kb, "%lld", (long long)ik);
        x = cl_rv_obj_get_str(coll, kb);
    }
    return x;
}

static int walk_val(struct ev *ev, struct frame *fr, const struct walk *w, size_t i,
                    struct cl_rv *v);

struct k_walkkey {
    struct k k;
    const struct walk *w;
    struct frame *fr;
    size_t i;
    struct cl_rv *coll;
};

static int k_walkkey_fn(struct ev *ev, struct k *k, struct cl_rv *key)
{
    struct k_walkkey *c = (struct k_walkkey *)k;
    struct cl_rv *x = walk_lookup(c->w, c->coll, key);
    if (!x)
        return 0;
    return walk_val(ev, c->fr, c->w, c->i + 1, x);
}

struct k_walkpat {
    struct k k;
    const struct walk *w;
    struct frame *fr;
    size_t i;
    struct cl_rv *x;
};

static int k_walkpat_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    (void)v;
    struct k_walkpat *c = (struct k_walkpat *)k;
    return walk_val(ev, c->fr, c->w, c->i + 1, c->x);
}

static int walk_val(struct ev *ev, struct frame *fr, const struct walk *w, size_t i,
                    struct cl_rv *v)
{
    if (i == w->ref->n)
        return w->k->fn(ev, w->k, v);
    const struct cl_rg_term *kt = w->ref->items[i];
    if (kt->kind == RG_T_VALUE) {
        struct cl_rv *x = walk_lookup(w, v, kt->val);
        return x ? walk_val(ev, fr, w, i + 1, x) : 0;
    }
    if (kt->kind == RG_T_VAR && !kt->root && fr->slots[kt->slot]) {
        struct cl_rv *x = walk_lookup(w, v, fr->slots[kt->slot]);
        return x ? walk_val(ev, fr, w, i + 1, x) : 0;
    }
    if (term_unbound(fr, kt)) {
        /* iterate the collection, unifying the key pattern */
        if (v->type != CL_RV_ARRAY && v->type != CL_RV_OBJECT && v->type != CL_RV_SET)
            return 0;
        struct cl_rv *hold = cl_rv_incref(v);
        size_t n = cl_rv_len(v);
        int rc = 0;
        for (size_t j = 0; j < n && rc == 0; j++) {
            struct cl_rv *key, *x;
            struct cl_rv *tmp = NULL;
            if (check_limits(ev) < 0) {
                rc = -1;
                break;
            }
            if (v->type == CL_RV_ARRAY) {
                key = tmp = cl_rv_int((int64_t)j);
                x = v->u.arr.items[j];
            } else if (v->type == CL_RV_OBJECT) {
                key = v->u.obj.keys[j];
                x = v->u.obj.vals[j];
            } else {
                key = x = v->u.arr.items[j];
            }
            struct k_walkpat c = {{k_walkpat_fn}, w, fr, i, x};
            size_t mark = ev->ntrail;
            if (kt->kind == RG_T_VAR) {
                bind(ev, &fr->slots[kt->slot], key);
                rc = k_walkpat_fn(ev, &c.k, key);
            } else {
                rc = unify_val(ev, fr, kt, key, &c.k);
            }
            undo(ev, mark);
            cl_rv_decref(tmp);
        }
        cl_rv_decref(hold);
        return rc;
    }
    struct k_walkkey c = {{k_walkkey_fn}, w, fr, i, v};
    return eval_term(ev, fr, kt, &c.k);
}

/* data overrides: relation of an override to a path */
static size_t node_path(const struct cl_rg_node *n, struct cl_rv **out, size_t cap)
{
    size_t d = 0;
    for (const struct cl_rg_node *p = n; p && p->parent; p = p->parent)
        d++;
    if (d > cap)
        return SIZE_MAX;
    size_t i = d;
    for (const struct cl_rg_node *p = n; p && p->parent; p = p->parent)
        out[--i] = p->key;
    return d;
}

/* Applies the overrides strictly below path[0..n) to v; returns new or NULL (undefined). */
static struct cl_rv *apply_dovs(struct ev *ev, struct cl_rv *const *path, size_t n, struct cl_rv *v,
                                bool *exact)
{
    struct cl_rv *cur = cl_rv_incref(v);
    *exact = false;
    for (size_t i = 0; i < ev->ndovs; i++) {
        const struct dov *d = &ev->dovs[i];
        if (d->n < n)
            continue;
        bool pre = true;
        for (size_t j = 0; j < n && pre; j++)
            pre = cl_rv_equal(d->path[j], path[j]);
        if (!pre)
            continue;
        if (d->n == n) {
            cl_rv_decref(cur);
            cur = cl_rv_incref(d->val);
            *exact = true;
            continue;
        }
        struct cl_rv *nv = set_path(cur, d->path + n, d->n - n, d->val);
        cl_rv_decref(cur);
        cur = nv;
    }
    return cur;
}

static bool dov_at_or_below(struct ev *ev, struct cl_rv *const *path, size_t n)
{
    for (size_t i = 0; i < ev->ndovs; i++) {
        const struct dov *d = &ev->dovs[i];
        if (d->n < n)
            continue;
        bool pre = true;
        for (size_t j = 0; j < n && pre; j++)
            pre = cl_rv_equal(d->path[j], path[j]);
        if (pre)
            return true;
    }
    return false;
}

static bool dov_above(struct ev *ev, struct cl_rv *const *path, size_t n)
{
    for (size_t i = 0; i < ev->ndovs; i++) {
        const struct dov *d = &ev->dovs[i];
        if (d->n > n)
            continue;
        bool pre = true;
        for (size_t j = 0; j < d->n && pre; j++)
            pre = cl_rv_equal(d->path[j], path[j]);
        if (pre)
            return true;
    }
    return false;
}

#define MAX_PATH 128

static int walk_data(struct ev *ev, struct frame *fr, const struct walk *w, size_t i,
                     const struct cl_rg_node *n, struct cl_rv *base);

/* Switches from the rule tree to plain values at node n (path known), applying overrides. */
static int data_to_value(struct ev *ev, struct frame *fr, const struct walk *w, size_t i,
                         const struct cl_rg_node *n, struct cl_rv *base)
{
    struct cl_rv *v = NULL;
    if (materialize(ev, n, base, &v) < 0)
        return -1;
    if (ev->ndovs) {
        struct cl_rv *path[MAX_PATH];
        size_t np = node_path(n, path, MAX_PATH);
        if (np != SIZE_MAX) {
            bool exact;
            struct cl_rv *nv = apply_dovs(ev, path, np, v, &exact);
            cl_rv_decref(v);
            v = nv;
        }
    }
    if (!v)
        return 0;
    int rc = walk_val(ev, fr, w, i, v);
    cl_rv_decref(v);
    return rc;
}

struct k_datakey {
    struct k k;
    const struct walk *w;
    struct frame *fr;
    size_t i;
    const struct cl_rg_node *n;
    struct cl_rv *base;
};

static int data_step(struct ev *ev, struct frame *fr, const struct walk *w, size_t i,
                     const struct cl_rg_node *n, struct cl_rv *base, struct cl_rv *key)
{
    const struct cl_rg_node *child =
        key->type == CL_RV_STRING ? cl_rg_node_child(n, key->u.str.s, key->u.str.len) : NULL;
    struct cl_rv *bchild = base ? lookup(base, key) : NULL;
    int64_t ik;
    if (!bchild && base && base->type == CL_RV_OBJECT && cl_rv_as_int(key, &ik)) {
        /* the base document has string keys only: data.x[2] reads data.x["2"] (as OPA's store) */
        char kb[24];
        snprintf(kb, sizeof kb, "%lld", (long long)ik);
        bchild = cl_rv_obj_get_str(base, kb);
    }
    if (child)
        return walk_data(ev, fr, w, i + 1, child, bchild);
    if (ev->ndovs) {
        struct cl_rv *path[MAX_PATH];
        size_t np = node_path(n, path, MAX_PATH - 1);
        if (np != SIZE_MAX) {
            path[np++] = key;
            if (dov_at_or_below(ev, path, np)) {
                bool exact;
                struct cl_rv *v = apply_dovs(ev, path, np, bchild, &exact);
                if (!v)
                    return 0;
                int rc = walk_val(ev, fr, w, i + 1, v);
                cl_rv_decref(v);
                return rc;
            }
        }
    }
    return bchild ? walk_val(ev, fr, w, i + 1, bchild) : 0;
}

static int k_datakey_fn(struct ev *ev, struct k *k, struct cl_rv *key)
{
    struct k_datakey *c = (struct k_datakey *)k;
    return data_step(ev, c->fr, c->w, c->i, c->n, c->base, key);
}

static int walk_data(struct ev *ev, struct frame *fr, const struct walk *w, size_t i,
                     const struct cl_rg_node *n, struct cl_rv *base)
{
    if (ev->ndovs) {
        struct cl_rv *path[MAX_PATH];
        size_t np = node_path(n, path, MAX_PATH);
        if (np != SIZE_MAX && dov_above(ev, path, np)) {
            /* an override covers this node entirely: find it on the way down */
            bool exact;
            struct cl_rv *v = NULL;
            /* rebuild from the root: apply overrides at each prefix */
            struct cl_rv *cur = cl_rv_incref(ev->data);
            for (size_t d = 0; d <= np; d++) {
                struct cl_rv *nv = apply_dovs(ev, path, d, cur, &exact);
                cl_rv_decref(cur);
                cur = nv;
                if (d < np) {
                    struct cl_rv *x = cur ? lookup(cur, path[d]) : NULL;
                    struct cl_rv *nx = cl_rv_incref(x);
                    cl_rv_decref(cur);
                    cur = nx;
                }
            }
            v = cur;
            if (!v)
                return 0;
            int rc = walk_val(ev, fr, w, i, v);
            cl_rv_decref(v);
            return rc;
        }
    }
    if (i == w->ref->n || n->rules || n->deflt)
        return data_to_value(ev, fr, w, i, n, base);
    if (cl_rg_node_is_fn(n) && !n->nkids)
        return 0;
    const struct cl_rg_term *kt = w->ref->items[i];
    if (kt->kind == RG_T_VALUE)
        return data_step(ev, fr, w, i, n, base, kt->val);
    if (kt->kind == RG_T_VAR && !kt->root && fr->slots[kt->slot])
        return data_step(ev, fr, w, i, n, base, fr->slots[kt->slot]);
    if (term_unbound(fr, kt))
        return data_to_value(ev, fr, w, i, n, base);
    struct k_datakey c = {{k_datakey_fn}, w, fr, i, n, base};
    return eval_term(ev, fr, kt, &c.k);
}

struct k_refhead {
    struct k k;
    const struct walk *w;
    struct frame *fr;
};

static int k_refhead_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_refhead *c = (struct k_refhead *)k;
    return walk_val(ev, c->fr, c->w, 1, v);
}

/* Converts j for this evaluation, once (parts already made are looked up). The memory it
 * takes is the input's, not the evaluation's: it does not count against max_memory, as an
 * input converted before the evaluation did not. */
static struct cl_rv *lazy_part(struct ev *ev, const json_t *j)
{
    /* the parts are the ends of constant key paths of the policy: a handful */
    for (size_t i = 0; i < ev->nlazy; i++)
        if (ev->lazy[i].j == j)
            return ev->lazy[i].v;
    int64_t before = cl_rv_bytes_live;
    struct cl_rv *v = cl_rv_from_json(j);
    ev->mem_base += cl_rv_bytes_live - before;
    if (ev->nlazy == ev->caplazy) {
        ev->caplazy = ev->caplazy ? ev->caplazy * 2 : 8;
        ev->lazy = cl_xrealloc(ev->lazy, ev->caplazy * sizeof *ev->lazy);
    }
    ev->lazy[ev->nlazy++] = (struct lazy_part){j, v};
    return v;
}

/* The whole input as a value (NULL when there is none). */
static struct cl_rv *input_whole(struct ev *ev)
{
    for (size_t i = 0; !ev->input && i < ev->nlazy; i++)
        if (ev->lazy[i].j == ev->input_json)
            ev->input = ev->lazy[i].v; /* `input[x]` made it already */
    if (!ev->input && ev->input_json) {
        int64_t before = cl_rv_bytes_live;
        ev->input = ev->input_made = cl_rv_from_json(ev->input_json);
        ev->mem_base += cl_rv_bytes_live - before;
    }
    return ev->input;
}

/* input.a.b[...]: while the keys are constant strings and the document an object, the
 * reference is followed in the JSON itself; the rest of it walks the converted part. */
static int eval_input_ref(struct ev *ev, struct frame *fr, const struct walk *w)
{
    if (ev->input || !ev->input_json)
        return ev->input ? walk_val(ev, fr, w, 1, ev->input) : 0;
    const json_t *j = ev->input_json;
    size_t i = 1;
    for (; i < w->ref->n && json_is_object(j); i++) {
        const struct cl_rg_term *kt = w->ref->items[i];
        if (kt->kind != RG_T_VALUE || kt->val->type != CL_RV_STRING)
            break;
        j = json_object_getn(j, kt->val->u.str.s, kt->val->u.str.len);
        if (!j)
            return 0; /* undefined, as the converted object's lookup would be */
    }
    return walk_val(ev, fr, w, i, lazy_part(ev, j));
}

static int eval_ref(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct k *k)
{
    const struct cl_rg_term *h = t->items[0];
    struct walk w = {t, k, h->kind == RG_T_VAR && h->root == RG_ROOT_DATA};
    if (h->kind == RG_T_VAR && h->root == RG_ROOT_DATA)
        return walk_data(ev, fr, &w, 1, ev->e->root, ev->data);
    if (h->kind == RG_T_VAR && h->root == RG_ROOT_INPUT)
        return eval_input_ref(ev, fr, &w);
    struct k_refhead c = {{k_refhead_fn}, &w, fr};
    return eval_term(ev, fr, h, &c.k);
}

/* ---- composite terms ---- */

/* Evaluates a sequence of terms (call arguments, composite members) and calls `done` with all
 * values in vals. A plain variable not bound yet is evaluated after the others, which may
 * bind it (`x == input.xs[x]`). */
struct k_seq {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *const *items;
    size_t n, cur;
    struct cl_rv **vals;
    struct k *done; /* called with NULL when all values are in vals */
};

static int seq_next(struct ev *ev, struct k_seq *s);

static int k_seq_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_seq *s = (struct k_seq *)k;
    size_t i = s->cur;
    s->vals[i] = v;
    int rc = seq_next(ev, s);
    s->vals[i] = NULL;
    s->cur = i;
    return rc;
}

static int seq_next(struct ev *ev, struct k_seq *s)
{
    size_t pick = SIZE_MAX, later = SIZE_MAX;
    for (size_t i = 0; i < s->n; i++) {
        if (s->vals[i])
            continue;
        const struct cl_rg_term *t = s->items[i];
        if (t->kind == RG_T_VAR && !t->root && !s->fr->slots[t->slot]) {
            if (later == SIZE_MAX)
                later = i;
            continue;
        }
        pick = i;
        break;
    }
    if (pick == SIZE_MAX)
        pick = later;
    if (pick == SIZE_MAX)
        return s->done->fn(ev, s->done, NULL);
    s->cur = pick;
    return eval_term(ev, s->fr, s->items[pick], &s->k);
}

static int eval_seq(struct ev *ev, struct frame *fr, const struct cl_rg_term *const *items,
                    size_t n, struct cl_rv **vals, struct k *done)
{
    struct k_seq s = {{k_seq_fn}, fr, items, n, 0, vals, done};
    for (size_t i = 0; i < n; i++)
        vals[i] = items[i]->kind == RG_T_VALUE ? items[i]->val : NULL;
    return seq_next(ev, &s);
}

struct k_build {
    struct k k;
    const struct cl_rg_term *t;
    struct cl_rv **vals;
    struct k *out;
};

static int k_build_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_build *c = (struct k_build *)k;
    const struct cl_rg_term *t = c->t;
    struct cl_rv *v;
    if (t->kind == RG_T_ARRAY) {
        v = cl_rv_array(t->n);
        for (size_t i = 0; i < t->n; i++)
            cl_rv_array_push(v, cl_rv_incref(c->vals[i]));
    } else if (t->kind == RG_T_SET) {
        v = cl_rv_set();
        for (size_t i = 0; i < t->n; i++)
            cl_rv_set_add(v, cl_rv_incref(c->vals[i]));
    } else {
        v = cl_rv_object();
        for (size_t i = 0; i + 1 < t->n; i += 2) {
            struct cl_rv *old = cl_rv_obj_get(v, c->vals[i]);
            if (old && !cl_rv_equal(old, c->vals[i + 1])) {
                cl_rv_decref(v);
                return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
            }
            cl_rv_obj_put(v, cl_rv_incref(c->vals[i]), cl_rv_incref(c->vals[i + 1]));
        }
    }
    int rc = c->out->fn(ev, c->out, v);
    cl_rv_decref(v);
    return rc;
}

static int eval_composite(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct k *k)
{
    struct cl_rv *stackvals[16];
    struct cl_rv **vals = t->n <= 16 ? stackvals : cl_xcalloc(t->n, sizeof *vals);
    struct k_build b = {{k_build_fn}, t, vals, k};
    int rc = eval_seq(ev, fr, (const struct cl_rg_term *const *)t->items, t->n, vals, &b.k);
    if (vals != stackvals)
        free(vals);
    return rc;
}

/* ---- comprehensions ---- */

struct k_comp {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *t;
    struct cl_rv *acc;
    struct cl_rv *key; /* object comprehension: current key */
};

static int k_comp_val_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_comp *c = (struct k_comp *)k;
    if (check_limits(ev) < 0)
        return -1;
    switch (c->t->kind) {
    case RG_T_ACOMP:
        cl_rv_array_push(c->acc, cl_rv_incref(v));
        break;
    case RG_T_SCOMP:
        cl_rv_set_add(c->acc, cl_rv_incref(v));
        break;
    default: {
        struct cl_rv *old = cl_rv_obj_get(c->acc, c->key);
        if (old) {
            if (!cl_rv_equal(old, v))
                return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
            break;
        }
        cl_rv_obj_put(c->acc, cl_rv_incref(c->key), cl_rv_incref(v));
    }
    }
    return 0;
}

struct k_comp_key {
    struct k k;
    struct k_comp *c;
};

static int k_comp_key_fn(struct ev *ev, struct k *k, struct cl_rv *key)
{
    struct k_comp_key *ck = (struct k_comp_key *)k;
    ck->c->key = key;
    return eval_term(ev, ck->c->fr, ck->c->t->value, &ck->c->k);
}

struct k_comp_body {
    struct k k;
    struct k_comp *c;
};

static int k_comp_body_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_comp_body *cb = (struct k_comp_body *)k;
    struct k_comp *c = cb->c;
    if (c->t->kind == RG_T_OCOMP) {
        struct k_comp_key ck = {{k_comp_key_fn}, c};
        return eval_term(ev, c->fr, c->t->key, &ck.k);
    }
    return eval_term(ev, c->fr, c->t->value, &c->k);
}

static int eval_comp(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct k *k)
{
    if (++ev->depth > ev->max_depth) {
        ev->depth--;
        return fail(ev, CL_ELIMIT, "eval_limit_error", "evaluation nesting too deep");
    }
    struct k_comp c = {{k_comp_val_fn}, fr, t, NULL, NULL};
    c.acc = t->kind == RG_T_ACOMP   ? cl_rv_array(0)
            : t->kind == RG_T_SCOMP ? cl_rv_set()
                                    : cl_rv_object();
    struct k_comp_body cb = {{k_comp_body_fn}, &c};
    int rc = eval_body(ev, fr, t->body, 0, &cb.k);
    ev->depth--;
    if (rc < 0) {
        cl_rv_decref(c.acc);
        return rc;
    }
    rc = k->fn(ev, k, c.acc);
    cl_rv_decref(c.acc);
    return rc;
}

/* ---- calls ---- */

struct rego_bctx {
    struct ev *ev;
    const struct cl_rego_builtin *bi;
    void *user;
    int rc_kind; /* 1 type error, 2 builtin error */
};

/* The public opaque type is this struct. */
struct cl_rego_bctx {
    struct rego_bctx b;
};

int cl_rego_bi_type_error(struct cl_rego_bctx *ctx, int argi, const char *want,
                          const struct cl_rv *got)
{
    fail(ctx->b.ev, CL_EINVAL, "eval_type_error", "%s: operand %d must be %s but got %s",
         ctx->b.bi->name, argi + 1, want, cl_rv_type_name(got));
    return -1;
}

int cl_rego_bi_type_errorf(struct cl_rego_bctx *ctx, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fail(ctx->b.ev, CL_EINVAL, "eval_type_error", "%s: %s", ctx->b.bi->name, buf);
    return -1;
}

int cl_rego_bi_error(struct cl_rego_bctx *ctx, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fail(ctx->b.ev, CL_EINVAL, "eval_builtin_error", "%s: %s", ctx->b.bi->name, buf);
    return -1;
}

int cl_rego_bi_want(struct cl_rego_bctx *ctx, struct cl_rv *const *args, int argi,
                    enum cl_rv_type t)
{
    if (args[argi]->type == t)
        return 0;
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object", "set"};
    return cl_rego_bi_type_error(ctx, argi, names[t], args[argi]);
}

int cl_rego_bi_want_int(struct cl_rego_bctx *ctx, struct cl_rv *const *args, int argi, int64_t *out)
{
    if (args[argi]->type != CL_RV_NUMBER)
        return cl_rego_bi_type_error(ctx, argi, "number", args[argi]);
    if (cl_rv_as_int(args[argi], out))
        return 0;
    return cl_rego_bi_error(ctx, "operand %d must be an integer", argi + 1);
}

int cl_rego_bi_reserve(struct cl_rego_bctx *ctx, size_t bytes)
{
    struct ev *ev = ctx->b.ev;
    if (bytes > ev->max_mem ||
        cl_rv_bytes_live - ev->mem_base + (int64_t)bytes > (int64_t)ev->max_mem) {
        fail(ev, CL_ELIMIT, "eval_limit_error", "%s: evaluation memory limit exceeded",
             ctx->b.bi->name);
        return -2; /* limits are never softened into undefined */
    }
    return 0;
}

const char *cl_rego_bi_name(const struct cl_rego_bctx *ctx)
{
    return ctx->b.bi->name;
}
void *cl_rego_bi_user(const struct cl_rego_bctx *ctx)
{
    return ctx->b.user;
}
int64_t cl_rego_bi_now_ns(const struct cl_rego_bctx *ctx)
{
    return ctx->b.ev->now_ns;
}

void cl_rego_bi_print(struct cl_rego_bctx *ctx, const char *text)
{
    struct ev *ev = ctx->b.ev;
    if (ev->e->opts.print)
        ev->e->opts.print(ev->e->opts.print_ctx, ev->cur_file ? ev->cur_file : "", ev->cur_line,
                          text);
    if (ev->prints) {
        struct cl_rv *v = cl_rv_strz(text);
        cl_rg_prints_add(ev->prints, ev->cur_file, ev->cur_line, &v, 1);
    }
}

/* Calls a builtin; returns 0 with *out, CL_REGO_UNDEFINED, or -1 (error recorded). */
static int call_builtin(struct ev *ev, const struct cl_rego_builtin *bi, int ext,
                        struct cl_rv **args, struct cl_rv **out)
{
    struct cl_rego_bctx ctx = {{ev, bi, ext ? ev->e->exts[ext - 1].ctx : NULL, 0}};
    *out = NULL;
    struct cl_rv *memo_args = NULL;
    if ((bi->flags & CL_REGO_BI_NONDET) && !(bi->flags & CL_REGO_BI_VARIADIC)) {
        memo_args = cl_rv_array((size_t)bi->arity);
        for (int i = 0; i < bi->arity; i++)
            cl_rv_array_push(memo_args, cl_rv_incref(args[i]));
        for (size_t i = 0; i < ev->nnd; i++) {
            if (ev->nd[i].bi == bi && cl_rv_equal(ev->nd[i].args, memo_args)) {
                cl_rv_decref(memo_args);
                *out = cl_rv_incref(ev->nd[i].res);
                return 0;
            }
        }
    }
    int rc = bi->fn(&ctx, args, out);
    /* A result can be several times the size of the arguments (array.concat, hex.encode), so
     * the cap is checked after every call: 16 steps of doubling between two checks in
     * check_limits would have multiplied it by 65536. */
    if (rc == 0 && cl_rv_bytes_live - ev->mem_base > (int64_t)ev->max_mem) {
        cl_rv_decref(*out);
        *out = NULL;
        fail(ev, CL_ELIMIT, "eval_limit_error", "%s: evaluation memory limit exceeded", bi->name);
        rc = -2;
    }
    if (cl_rg_oom && rc != -2) { /* never softened into undefined, as the limits */
        if (rc == 0)
            cl_rv_decref(*out);
        *out = NULL;
        fail_oom(ev, bi->name);
        rc = -2;
    }
    if (memo_args && rc == 0 && *out) {
        if (ev->nnd == ev->capnd) {
            ev->capnd = ev->capnd ? ev->capnd * 2 : 4;
            ev->nd = cl_xrealloc(ev->nd, ev->capnd * sizeof *ev->nd);
        }
        ev->nd[ev->nnd++] = (struct nd_memo){bi, memo_args, cl_rv_incref(*out)};
        memo_args = NULL;
    }
    cl_rv_decref(memo_args);
    if (rc == 0)
        return *out ? 0 : CL_REGO_UNDEFINED;
    if (rc > 0)
        return CL_REGO_UNDEFINED;
    if (rc == -2 || ev->strict || !ev->err->code ||
        strcmp(ev->err->code, "eval_limit_error") == 0 ||
        strcmp(ev->err->code, "eval_conflict_error") == 0 ||
        strcmp(ev->err->code, "rego_recursion_error") == 0) {
        if (!ev->err->code)
            fail(ev, CL_EINVAL, "eval_builtin_error", "%s: failed", bi->name);
        return -1;
    }
    /* non-strict: builtin errors make the call undefined */
    ev->err->code = NULL;
    ev->err->msg[0] = 0;
    ev->code = 0;
    return CL_REGO_UNDEFINED;
}

static const struct mock *find_mock(struct ev *ev, const struct cl_rego_builtin *bi,
                                    const struct cl_rg_node *fn)
{
    for (size_t i = ev->nmocks; i-- > ev->mock_floor;) {
        const struct mock *m = &ev->mocks[i];
        if (!m->disabled && ((bi && m->tbi == bi) || (fn && m->tfn == fn)))
            return m;
    }
    return NULL;
}

static int pop_mock_and_call(struct ev *ev, const struct cl_rego_builtin *bi, int ext,
                             const struct cl_rg_node *fn, struct cl_rv **args, size_t nargs,
                             struct cl_rv **out);

/* Dispatches a call (args already evaluated), honouring mocks. */
static int dispatch(struct ev *ev, const struct cl_rego_builtin *bi, int ext,
                    const struct cl_rg_node *fn, struct cl_rv **args, size_t nargs,
                    struct cl_rv **out)
{
    if (ev->nmocks) {
        const struct mock *m = find_mock(ev, bi, fn);
        if (m) {
            if (m->val) {
                *out = cl_rv_incref(m->val);
                return 0;
            }
            /* the replacement runs without any mock: it may call the original, and a mock never
             * calls another mock */
            size_t saved = ev->mock_floor;
            ev->mock_floor = ev->nmocks;
            int rc = pop_mock_and_call(ev, m->vbi, m->vext, m->vfn, args, nargs, out);
            ev->mock_floor = saved;
            return rc;
        }
    }
    if (fn)
        return call_fn(ev, fn, args, nargs, out);
    return call_builtin(ev, bi, ext, args, out);
}

static int pop_mock_and_call(struct ev *ev, const struct cl_rego_builtin *bi, int ext,
                             const struct cl_rg_node *fn, struct cl_rv **args, size_t nargs,
                             struct cl_rv **out)
{
    /* A mock's replacement is called without the mock on itself (no infinite loop). */
    if (fn)
        return call_fn(ev, fn, args, nargs, out);
    return call_builtin(ev, bi, ext, args, out);
}

#define NOT_SIMPLE 2
static inline int eval1(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                        struct cl_rv **out, bool *own);

/* Evaluates print()'s arguments (an undefined or failing one prints as <undefined>) and hands
 * the values to the evaluation's sink (kept, rendered later) and/or the eager hook. */
static void print_call(struct ev *ev, struct frame *fr, const struct cl_rg_term *t)
{
    struct cl_rv *stackvals[8];
    struct cl_rv **vals = t->n <= 8 ? stackvals : cl_xcalloc(t->n, sizeof *vals);
    for (size_t i = 0; i < t->n; i++) {
        struct cl_rv *v = NULL;
        bool own = false;
        int rc = eval1(ev, fr, t->items[i], &v, &own);
        if (rc == 1) {
            vals[i] = own ? v : cl_rv_incref(v);
            continue;
        }
        vals[i] = NULL;
        if (rc == NOT_SIMPLE) {
            struct k_collect c = {{k_collect_fn}, NULL, true};
            size_t mark = ev->ntrail;
            rc = eval_term(ev, fr, t->items[i], &c.k);
            undo(ev, mark);
            vals[i] = c.v;
        }
        if (rc < 0) {
            ev->err->code = NULL;
            ev->err->msg[0] = 0;
            ev->code = 0;
        }
    }
    if (ev->e->opts.print) {
        struct cl_sbuf b = {0};
        cl_rg_print_render(&b, vals, t->n);
        ev->e->opts.print(ev->e->opts.print_ctx, ev->cur_file ? ev->cur_file : "", t->line,
                          b.s ? b.s : "");
        cl_sbuf_free(&b);
    }
    if (ev->prints) {
        cl_rg_prints_add(ev->prints, ev->cur_file, t->line, vals, t->n);
    } else {
        for (size_t i = 0; i < t->n; i++)
            cl_rv_decref(vals[i]);
    }
    if (vals != stackvals)
        free(vals);
}

struct k_call {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *t;
    struct cl_rv **vals;
    size_t nin;
    bool as_expr; /* expression position: the result must not be false */
    struct k *out;
};

static int k_call_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_call *c = (struct k_call *)k;
    const struct cl_rg_term *t = c->t;
    struct cl_rv *res = NULL;
    if (++ev->depth > ev->max_depth) {
        ev->depth--;
        return fail(ev, CL_ELIMIT, "eval_limit_error", "evaluation nesting too deep (%d)",
                    ev->max_depth);
    }
    int rc = dispatch(ev, t->bi, t->ext, t->fn, c->vals, c->nin, &res);
    ev->depth--;
    if (rc < 0)
        return rc;
    if (rc == CL_REGO_UNDEFINED || !res)
        return 0;
    if (t->bi && (t->bi->flags & CL_REGO_BI_RELATION) && !find_mock(ev, t->bi, NULL)) {
        /* each element is one solution */
        int r = 0;
        for (size_t i = 0; i < res->u.arr.len && r == 0; i++) {
            struct cl_rv *x = res->u.arr.items[i];
            if (c->nin < t->n)
                r = unify_val(ev, c->fr, t->items[t->n - 1], x, c->out);
            else
                r = c->out->fn(ev, c->out, x);
        }
        cl_rv_decref(res);
        return r;
    }
    if (c->nin < t->n) {
        rc = unify_val(ev, c->fr, t->items[t->n - 1], res, c->out);
    } else if (c->as_expr) {
        rc = (res->type == CL_RV_BOOL && !res->u.b) ? 0 : c->out->fn(ev, c->out, res);
    } else {
        rc = c->out->fn(ev, c->out, res);
    }
    cl_rv_decref(res);
    return rc;
}

static int call_arity(const struct cl_rg_term *t)
{
    if (t->fn)
        return (int)cl_rg_node_arity(t->fn);
    if (t->bi->flags & CL_REGO_BI_VARIADIC)
        return (int)t->n;
    return t->bi->arity;
}

static int unify(struct ev *ev, struct frame *fr, const struct cl_rg_term *a,
                 const struct cl_rg_term *b, struct k *k);

/* ---- direct evaluation of deterministic terms ----
 * Most terms have at most one value and bind nothing: constants, bound variables, references
 * whose keys are all known, calls of such terms, composites of them. They are evaluated
 * directly (no continuation per step), which is most of the work in real policies. */

static bool is_print(const struct cl_rg_term *t)
{
    return t->bi && (t->bi->flags & CL_REGO_BI_VARIADIC) && strcmp(t->bi->name, "print") == 0;
}

static bool simple_term_slow(const struct frame *fr, const struct cl_rg_term *t);

static inline bool simple_term(const struct frame *fr, const struct cl_rg_term *t)
{
    if (t->kind == RG_T_VALUE)
        return true;
    if (t->kind == RG_T_VAR)
        return t->root == RG_ROOT_INPUT || (!t->root && fr->slots[t->slot]);
    return simple_term_slow(fr, t);
}

static bool simple_term_slow(const struct frame *fr, const struct cl_rg_term *t)
{
    switch (t->kind) {
    case RG_T_VALUE:
    case RG_T_ACOMP:
    case RG_T_SCOMP:
    case RG_T_OCOMP:
        return true;
    case RG_T_VAR:
        return t->root == RG_ROOT_INPUT || (!t->root && fr->slots[t->slot]);
    case RG_T_REF: {
        const struct cl_rg_term *h = t->items[0];
        if (!(h->kind == RG_T_VAR && h->root) && !simple_term(fr, h))
            return false;
        for (size_t i = 1; i < t->n; i++)
            if (!simple_term(fr, t->items[i]))
                return false;
        return true;
    }
    case RG_T_ARRAY:
    case RG_T_SET:
    case RG_T_OBJECT:
        for (size_t i = 0; i < t->n; i++)
            if (!simple_term(fr, t->items[i]))
                return false;
        return true;
    case RG_T_CALL:
        if ((!t->bi && !t->fn) || is_print(t) ||
            (t->bi && (t->bi->flags & (CL_REGO_BI_RELATION | CL_REGO_BI_VARIADIC))))
            return false;
        if ((int)t->n != (t->fn ? (int)cl_rg_node_arity(t->fn) : t->bi->arity))
            return false; /* an output argument binds */
        for (size_t i = 0; i < t->n; i++)
            if (!simple_term(fr, t->items[i]))
                return false;
        return true;
    }
    return false;
}

static int eval1_slow(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                      struct cl_rv **out, bool *own);
static int eval1_ref(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                     struct cl_rv **out, bool *own);
static int eval1_call(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                      struct cl_rv **out, bool *own);

static inline void put1(struct cl_rv *v, bool own)
{
    if (own)
        cl_rv_decref(v);
}

/* eval1 returns NOT_SIMPLE (before any binding) when the term may have several values or
 * bind a variable: the caller then takes the general path. */

static inline int eval1(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                        struct cl_rv **out, bool *own)
{
    *own = false;
    if (t->kind == RG_T_VALUE) {
        *out = t->val;
        return 1;
    }
    if (t->kind == RG_T_VAR) {
        if (t->root == RG_ROOT_INPUT) {
            *out = input_whole(ev);
            return *out ? 1 : 0;
        }
        if (t->root)
            return NOT_SIMPLE;
        *out = fr->slots[t->slot];
        return *out ? 1 : NOT_SIMPLE;
    }
    if (t->kind == RG_T_REF)
        return eval1_ref(ev, fr, t, out, own);
    if (t->kind == RG_T_CALL)
        return eval1_call(ev, fr, t, out, own);
    return eval1_slow(ev, fr, t, out, own);
}

static int eval1_ref(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                     struct cl_rv **out, bool *own)
{
    const struct cl_rg_term *h = t->items[0];
    if (h->kind == RG_T_VAR && h->root == RG_ROOT_DATA) {
        if (!simple_term(fr, t))
            return NOT_SIMPLE;
        struct k_collect c = {{k_collect_fn}, NULL, true};
        int rc = eval_ref(ev, fr, t, &c.k);
        if (rc < 0) {
            cl_rv_decref(c.v);
            return rc;
        }
        *out = c.v;
        *own = c.v != NULL;
        return c.v ? 1 : 0;
    }
    struct cl_rv *cur = NULL;
    bool cown = false;
    int rc = 1;
    size_t i = 1;
    if (h->kind == RG_T_VAR && h->root == RG_ROOT_INPUT && !ev->input && ev->input_json) {
        /* string keys followed in the input's JSON (eval_input_ref), the rest on its part */
        const json_t *j = ev->input_json;
        for (; i < t->n && json_is_object(j); i++) {
            struct cl_rv *key = NULL;
            bool kown = false;
            rc = eval1(ev, fr, t->items[i], &key, &kown);
            if (rc != 1)
                return rc; /* nothing bound: a lookup only */
            bool str = key->type == CL_RV_STRING;
            if (str)
                j = json_object_getn(j, key->u.str.s, key->u.str.len);
            put1(key, kown);
            if (!str)
                break; /* looked up again below, in the converted part */
            if (!j)
                return 0;
        }
        cur = lazy_part(ev, j);
    } else {
        rc = eval1(ev, fr, h, &cur, &cown);
    }
    for (; i < t->n && rc == 1; i++) {
        struct cl_rv *key = NULL;
        bool kown = false;
        rc = eval1(ev, fr, t->items[i], &key, &kown);
        if (rc == 1) {
            struct cl_rv *x = lookup(cur, key);
            if (cown) { /* keep the member alive past its container */
                cl_rv_incref(x);
                cl_rv_decref(cur);
            }
            cur = x;
            rc = x ? 1 : 0;
            if (!x)
                cown = false;
        }
        put1(key, kown);
    }
    if (rc == 1) {
        *out = cur;
        *own = cown;
    } else {
        put1(cur, cown);
    }
    return rc;
}

static int eval1_call(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                      struct cl_rv **out, bool *own)
{
    if (!t->direct)
        return NOT_SIMPLE; /* eq/assign, print, relations, or an output argument */
    struct cl_rv *stackvals[8];
    bool stackown[8];
    struct cl_rv **vals = t->n <= 8 ? stackvals : cl_xcalloc(t->n, sizeof *vals);
    bool *owns = t->n <= 8 ? stackown : cl_xcalloc(t->n, sizeof *owns);
    int rc = 1;
    size_t got = 0;
    while (got < t->n && rc == 1) {
        rc = eval1(ev, fr, t->items[got], &vals[got], &owns[got]);
        if (rc == 1)
            got++;
    }
    if (rc == 1 && t->op && ev->nmocks == ev->mock_floor) {
        int c = cl_rv_compare(vals[0], vals[1]);
        bool r = t->op == RG_OP_EQ    ? c == 0
                 : t->op == RG_OP_NEQ ? c != 0
                 : t->op == RG_OP_LT  ? c < 0
                 : t->op == RG_OP_LTE ? c <= 0
                 : t->op == RG_OP_GT  ? c > 0
                                      : c >= 0;
        *out = cl_rv_bool(r);
    } else if (rc == 1) {
        if (++ev->depth > ev->max_depth) {
            rc = fail(ev, CL_ELIMIT, "eval_limit_error", "evaluation nesting too deep (%d)",
                      ev->max_depth);
        } else {
            struct cl_rv *res = NULL;
            int r = dispatch(ev, t->bi, t->ext, t->fn, vals, t->n, &res);
            rc = r < 0 ? r : (r == CL_REGO_UNDEFINED || !res) ? 0 : 1;
            if (rc == 1) {
                *out = res;
                *own = true;
            } else {
                cl_rv_decref(res);
            }
        }
        ev->depth--;
    }
    for (size_t i = 0; i < got; i++)
        put1(vals[i], owns[i]);
    if (vals != stackvals) {
        free(vals);
        free(owns);
    }
    return rc;
}

/* Evaluates a simple term: 1 with the value in *out, 0 when undefined, <0 on error. *own says
 * whether the caller holds a reference to release (put1); otherwise the value is borrowed from
 * the frame, the input, a constant or a value the caller holds. */
static int eval1_slow(struct ev *ev, struct frame *fr, const struct cl_rg_term *t,
                      struct cl_rv **out, bool *own)
{
    *out = NULL;
    *own = false;
    switch (t->kind) {
    case RG_T_REF:
        return eval1_ref(ev, fr, t, out, own);
    case RG_T_CALL:
        return eval1_call(ev, fr, t, out, own);
    case RG_T_ARRAY:
    case RG_T_SET:
    case RG_T_OBJECT: {
        struct cl_rv *v = t->kind == RG_T_ARRAY ? cl_rv_array(t->n)
                          : t->kind == RG_T_SET ? cl_rv_set()
                                                : cl_rv_object();
        int rc = 1;
        for (size_t i = 0; i < t->n && rc == 1; i++) {
            struct cl_rv *x = NULL;
            bool xo;
            rc = eval1(ev, fr, t->items[i], &x, &xo);
            if (rc != 1)
                break;
            if (!xo)
                cl_rv_incref(x);
            if (t->kind == RG_T_ARRAY) {
                cl_rv_array_push(v, x);
            } else if (t->kind == RG_T_SET) {
                cl_rv_set_add(v, x);
            } else {
                struct cl_rv *y = NULL;
                bool yo;
                rc = eval1(ev, fr, t->items[++i], &y, &yo);
                if (rc != 1) {
                    cl_rv_decref(x);
                    break;
                }
                if (!yo)
                    cl_rv_incref(y);
                struct cl_rv *old = cl_rv_obj_get(v, x);
                if (old && !cl_rv_equal(old, y)) {
                    cl_rv_decref(x);
                    cl_rv_decref(y);
                    rc = fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
                    break;
                }
                cl_rv_obj_put(v, x, y);
            }
        }
        if (rc == 1) {
            *out = v;
            *own = true;
        } else {
            cl_rv_decref(v);
        }
        return rc;
    }
    case RG_T_ACOMP:
    case RG_T_SCOMP:
    case RG_T_OCOMP: {
        struct k_collect c = {{k_collect_fn}, NULL, true};
        int rc = eval_comp(ev, fr, t, &c.k);
        if (rc < 0) {
            cl_rv_decref(c.v);
            return rc;
        }
        *out = c.v;
        *own = c.v != NULL;
        return c.v ? 1 : 0;
    }
    default:
        return 0;
    }
}

static int eval_call(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, bool as_expr,
                     struct k *k)
{
    if (!t->bi && !t->fn) {
        if (strcmp(t->name, "eq") == 0 || strcmp(t->name, "assign") == 0) {
            if (!as_expr)
                return fail(ev, CL_EINVAL, "rego_compile_error", "unification used as a value");
            return unify(ev, fr, t->items[0], t->items[1], k);
        }
        return fail(ev, CL_EINVAL, "rego_type_error", "undefined function %s", t->name);
    }
    if (t->bi && (t->bi->flags & CL_REGO_BI_VARIADIC) && strcmp(t->bi->name, "print") == 0) {
        if (ev->e->opts.print ||
            ev->prints) /* nobody listens: the arguments are not even evaluated */
            print_call(ev, fr, t);
        struct cl_rv *tv = cl_rv_bool(true);
        return k->fn(ev, k, tv);
    }
    size_t nin = (size_t)call_arity(t);
    if (nin > t->n)
        nin = t->n;
    struct cl_rv *stackvals[8];
    struct cl_rv **vals = nin <= 8 ? stackvals : cl_xcalloc(nin, sizeof *vals);
    struct k_call c = {{k_call_fn}, fr, t, vals, nin, as_expr, k};
    int rc = NOT_SIMPLE;
    if (nin <= 8) {
        /* arguments with at most one value each are evaluated in place */
        bool owns[8];
        size_t got = 0;
        rc = 1;
        while (got < nin && rc == 1) {
            rc = eval1(ev, fr, t->items[got], &vals[got], &owns[got]);
            if (rc == 1)
                got++;
        }
        if (rc == 1 && t->op && nin == 2 && ev->nmocks == ev->mock_floor) {
            /* comparisons: no call at all */
            int cmp = cl_rv_compare(vals[0], vals[1]);
            bool r = t->op == RG_OP_EQ    ? cmp == 0
                     : t->op == RG_OP_NEQ ? cmp != 0
                     : t->op == RG_OP_LT  ? cmp < 0
                     : t->op == RG_OP_LTE ? cmp <= 0
                     : t->op == RG_OP_GT  ? cmp > 0
                                          : cmp >= 0;
            if (t->n > 2)
                rc = unify_val(ev, fr, t->items[2], cl_rv_bool(r), k);
            else if (as_expr && !r)
                rc = 0;
            else
                rc = k->fn(ev, k, cl_rv_bool(r));
        } else if (rc == 1) {
            rc = k_call_fn(ev, &c.k, NULL);
        }
        for (size_t i = 0; i < got; i++)
            put1(vals[i], owns[i]);
    }
    if (rc == NOT_SIMPLE)
        rc = eval_seq(ev, fr, (const struct cl_rg_term *const *)t->items, nin, vals, &c.k);
    if (vals != stackvals)
        free(vals);
    return rc;
}

/* ---- terms ---- */

static int eval_term(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct k *k)
{
    switch (t->kind) {
    case RG_T_VALUE:
        return k->fn(ev, k, t->val);
    case RG_T_VAR:
        if (t->root == RG_ROOT_INPUT)
            return input_whole(ev) ? k->fn(ev, k, ev->input) : 0;
        if (t->root == RG_ROOT_DATA) {
            struct cl_rg_term ref = {.kind = RG_T_REF, .n = 1};
            const struct cl_rg_term *items[1] = {t};
            ref.items = (struct cl_rg_term **)(uintptr_t)items;
            struct walk w = {&ref, k, true};
            return walk_data(ev, fr, &w, 1, ev->e->root, ev->data);
        }
        if (fr->slots[t->slot])
            return k->fn(ev, k, fr->slots[t->slot]);
        return fail(ev, CL_EINVAL, "rego_unsafe_var_error", "var %s is unsafe",
                    t->name ? t->name : "_");
    case RG_T_REF:
        if (!(t->items[0]->kind == RG_T_VAR && t->items[0]->root == RG_ROOT_DATA)) {
            struct cl_rv *v = NULL;
            bool own = false;
            int rc = eval1(ev, fr, t, &v, &own);
            if (rc != NOT_SIMPLE) {
                if (rc == 1)
                    rc = k->fn(ev, k, v);
                put1(v, own);
                return rc;
            }
        }
        return eval_ref(ev, fr, t, k);
    case RG_T_ARRAY:
    case RG_T_SET:
    case RG_T_OBJECT:
        return eval_composite(ev, fr, t, k);
    case RG_T_CALL:
        return eval_call(ev, fr, t, false, k);
    case RG_T_ACOMP:
    case RG_T_SCOMP:
    case RG_T_OCOMP:
        return eval_comp(ev, fr, t, k);
    }
    return 0;
}

/* ---- unification ---- */

struct k_uval { /* continue after a value was produced: unify it with a pattern term */
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *pat;
    struct k *out;
};

static int k_uval_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_uval *c = (struct k_uval *)k;
    return unify_val(ev, c->fr, c->pat, v, c->out);
}

struct k_useq {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *t;
    struct cl_rv *v;
    size_t i;
    struct k *out;
};

static int useq_step(struct ev *ev, struct k_useq *c);

static int k_useq_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_useq *c = (struct k_useq *)k;
    size_t save = c->i;
    c->i++;
    int rc = useq_step(ev, c);
    c->i = save;
    return rc;
}

static int useq_step(struct ev *ev, struct k_useq *c)
{
    const struct cl_rg_term *t = c->t;
    if (t->kind == RG_T_ARRAY) {
        if (c->i == t->n)
            return c->out->fn(ev, c->out, c->v);
        return unify_val(ev, c->fr, t->items[c->i], c->v->u.arr.items[c->i], &c->k);
    }
    /* object: items[2i] key (evaluated, must be ground), items[2i+1] value pattern */
    if (c->i * 2 == t->n)
        return c->out->fn(ev, c->out, c->v);
    struct k_collect kc = {{k_collect_fn}, NULL, true};
    int rc = eval_term(ev, c->fr, t->items[c->i * 2], &kc.k);
    if (rc < 0) {
        cl_rv_decref(kc.v);
        return rc;
    }
    if (!kc.v)
        return 0;
    struct cl_rv *x = cl_rv_obj_get(c->v, kc.v);
    cl_rv_decref(kc.v);
    if (!x)
        return 0;
    return unify_val(ev, c->fr, t->items[c->i * 2 + 1], x, &c->k);
}

struct k_eqv {
    struct k k;
    struct cl_rv *v;
    struct k *out;
};

static int k_eqv_fn(struct ev *ev, struct k *k, struct cl_rv *x)
{
    struct k_eqv *c = (struct k_eqv *)k;
    if (!cl_rv_equal(c->v, x))
        return 0;
    return c->out->fn(ev, c->out, x);
}

static int unify_val(struct ev *ev, struct frame *fr, const struct cl_rg_term *t, struct cl_rv *v,
                     struct k *k)
{
    switch (t->kind) {
    case RG_T_VALUE:
        return cl_rv_equal(t->val, v) ? k->fn(ev, k, v) : 0;
    case RG_T_VAR:
        if (!t->root) {
            struct cl_rv **slot = &fr->slots[t->slot];
            if (!*slot) {
                size_t mark = ev->ntrail;
                bind(ev, slot, v);
                int rc = k->fn(ev, k, v);
                undo(ev, mark);
                return rc;
            }
            return cl_rv_equal(*slot, v) ? k->fn(ev, k, v) : 0;
        }
        break;
    case RG_T_ARRAY:
        if (v->type != CL_RV_ARRAY || v->u.arr.len != t->n)
            return 0;
        {
            struct cl_rv *hold = cl_rv_incref(v);
            struct k_useq c = {{k_useq_fn}, fr, t, v, 0, k};
            int rc = useq_step(ev, &c);
            cl_rv_decref(hold);
            return rc;
        }
    case RG_T_OBJECT:
        if (v->type != CL_RV_OBJECT || v->u.obj.len * 2 != t->n)
            return 0;
        {
            struct cl_rv *hold = cl_rv_incref(v);
            struct k_useq c = {{k_useq_fn}, fr, t, v, 0, k};
            int rc = useq_step(ev, &c);
            cl_rv_decref(hold);
            return rc;
        }
    default:
        break;
    }
    struct k_eqv c = {{k_eqv_fn}, v, k};
    return eval_term(ev, fr, t, &c.k);
}

struct k_uni2 {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *a, *b;
    struct k *out;
};

static int k_uni_done_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    (void)v;
    struct k_uni2 *c = (struct k_uni2 *)k;
    struct cl_rv *t = cl_rv_bool(true);
    return c->out->fn(ev, c->out, t);
}

/* Element-wise unification of two composites: pairs are taken in an order where at least one
 * side is bound when possible ([x, 1] = [y, x] binds x first), so patterns on both sides work. */
struct k_uni_pair {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *const *pa, *const *pb;
    unsigned char *done;
    size_t n, ndone;
    struct k *out;
};

static int uni_pair_step(struct ev *ev, struct k_uni_pair *c);

static int k_uni_pair_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    return uni_pair_step(ev, (struct k_uni_pair *)k);
}

static int uni_pair_step(struct ev *ev, struct k_uni_pair *c)
{
    if (c->ndone == c->n)
        return c->out->fn(ev, c->out, cl_rv_bool(true));
    size_t pick = SIZE_MAX, fallback = SIZE_MAX;
    for (size_t i = 0; i < c->n && pick == SIZE_MAX; i++) {
        if (c->done[i])
            continue;
        if (!term_unbound(c->fr, c->pa[i]) || !term_unbound(c->fr, c->pb[i]))
            pick = i;
        else if (fallback == SIZE_MAX)
            fallback = i;
    }
    if (pick == SIZE_MAX)
        pick = fallback;
    c->done[pick] = 1;
    c->ndone++;
    int rc = unify(ev, c->fr, c->pa[pick], c->pb[pick], &c->k);
    c->done[pick] = 0;
    c->ndone--;
    return rc;
}

static int unify_pairs(struct ev *ev, struct frame *fr, const struct cl_rg_term *const *pa,
                       const struct cl_rg_term *const *pb, size_t n, struct k *k)
{
    unsigned char stack_done[16] = {0};
    unsigned char *done = n <= 16 ? stack_done : cl_xcalloc(n, 1);
    struct k_uni_pair c = {{k_uni_pair_fn}, fr, pa, pb, done, n, 0, k};
    int rc = uni_pair_step(ev, &c);
    if (done != stack_done)
        free(done);
    return rc;
}

static bool const_keys(const struct cl_rg_term *t)
{
    for (size_t i = 0; i < t->n; i += 2)
        if (t->items[i]->kind != RG_T_VALUE)
            return false;
    return true;
}

/* Object patterns with constant keys: pair the values by key (0 when the key sets differ). */
static int unify_objects(struct ev *ev, struct frame *fr, const struct cl_rg_term *a,
                         const struct cl_rg_term *b, struct k *k)
{
    size_t n = a->n / 2;
    if (b->n != a->n)
        return 0;
    const struct cl_rg_term *stack_pa[16], *stack_pb[16];
    const struct cl_rg_term **pa = n <= 16 ? stack_pa : cl_xcalloc(n, sizeof *pa);
    const struct cl_rg_term **pb = n <= 16 ? stack_pb : cl_xcalloc(n, sizeof *pb);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ok = false;
        for (size_t j = 0; j < n; j++) {
            if (cl_rv_equal(a->items[2 * i]->val, b->items[2 * j]->val)) {
                pa[i] = a->items[2 * i + 1];
                pb[i] = b->items[2 * j + 1];
                ok = true;
                break;
            }
        }
    }
    int rc = ok ? unify_pairs(ev, fr, pa, pb, n, k) : 0;
    if (pa != stack_pa) {
        free(pa);
        free(pb);
    }
    return rc;
}

static int unify(struct ev *ev, struct frame *fr, const struct cl_rg_term *a,
                 const struct cl_rg_term *b, struct k *k)
{
    struct k_uni2 done = {{k_uni_done_fn}, fr, a, b, k};
    if (a->kind == RG_T_ARRAY && b->kind == RG_T_ARRAY) {
        if (a->n != b->n)
            return 0;
        return unify_pairs(ev, fr, (const struct cl_rg_term *const *)a->items,
                           (const struct cl_rg_term *const *)b->items, a->n, k);
    }
    if (a->kind == RG_T_OBJECT && b->kind == RG_T_OBJECT && const_keys(a) && const_keys(b))
        return unify_objects(ev, fr, a, b, k);
    bool au = term_unbound(fr, a), bu = term_unbound(fr, b);
    if (au && a->kind == RG_T_VAR && !bu) {
        struct k_uval c = {{k_uval_fn}, fr, a, &done.k};
        return eval_term(ev, fr, b, &c.k);
    }
    if (bu && b->kind == RG_T_VAR && !au) {
        struct k_uval c = {{k_uval_fn}, fr, b, &done.k};
        return eval_term(ev, fr, a, &c.k);
    }
    if (au && !bu) {
        struct k_uval c = {{k_uval_fn}, fr, a, &done.k};
        return eval_term(ev, fr, b, &c.k);
    }
    if (bu && !au) {
        struct k_uval c = {{k_uval_fn}, fr, b, &done.k};
        return eval_term(ev, fr, a, &c.k);
    }
    if (au && bu) {
        /* both sides have unbound parts: evaluate the one that can enumerate (refs) */
        if (a->kind == RG_T_REF) {
            struct k_uval c = {{k_uval_fn}, fr, b, &done.k};
            return eval_term(ev, fr, a, &c.k);
        }
        if (b->kind == RG_T_REF) {
            struct k_uval c = {{k_uval_fn}, fr, a, &done.k};
            return eval_term(ev, fr, b, &c.k);
        }
        return fail(ev, CL_EINVAL, "rego_unsafe_var_error", "unification of two unbound terms");
    }
    struct k_uval c = {{k_uval_fn}, fr, a, &done.k};
    return eval_term(ev, fr, b, &c.k);
}

/* ---- expressions ---- */

struct k_body {
    struct k k;
    struct frame *fr;
    const struct cl_rg_body *b;
    size_t i;
    struct k *out;
};

static int k_body_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_body *c = (struct k_body *)k;
    return eval_body(ev, c->fr, c->b, c->i + 1, c->out);
}

struct k_truthy {
    struct k k;
    struct k *out;
};

static int k_truthy_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_truthy *c = (struct k_truthy *)k;
    if (v->type == CL_RV_BOOL && !v->u.b)
        return 0;
    return c->out->fn(ev, c->out, v);
}

static int iterate_members(struct ev *ev, struct frame *fr, const struct cl_rg_term *kt,
                           const struct cl_rg_term *vt, struct cl_rv *coll, struct k *k);

struct k_somein {
    struct k k;
    struct frame *fr;
    const struct cl_rg_expr *x;
    struct k *out;
};

static int k_somein_fn(struct ev *ev, struct k *k, struct cl_rv *coll)
{
    struct k_somein *c = (struct k_somein *)k;
    return iterate_members(ev, c->fr, c->x->key, c->x->val, coll, c->out);
}

struct k_member_val {
    struct k k;
    struct frame *fr;
    const struct cl_rg_term *vt;
    struct cl_rv *v;
    struct k *out;
};

static int k_member_val_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_member_val *c = (struct k_member_val *)k;
    return unify_val(ev, c->fr, c->vt, c->v, c->out);
}

static int iterate_members(struct ev *ev, struct frame *fr, const struct cl_rg_term *kt,
                           const struct cl_rg_term *vt, struct cl_rv *coll, struct k *k)
{
    if (coll->type != CL_RV_ARRAY && coll->type != CL_RV_OBJECT && coll->type != CL_RV_SET)
        return 0;
    struct cl_rv *hold = cl_rv_incref(coll);
    size_t n = cl_rv_len(coll);
    int rc = 0;
    if (!kt && vt->kind == RG_T_VAR && !vt->root && !fr->slots[vt->slot] &&
        coll->type != CL_RV_OBJECT) {
        /* `some x in xs` with a fresh x: bind each member directly */
        struct cl_rv **slot = &fr->slots[vt->slot];
        for (size_t j = 0; j < n && rc == 0; j++) {
            if (check_limits(ev) < 0) {
                rc = -1;
                break;
            }
            size_t mark = ev->ntrail;
            bind(ev, slot, coll->u.arr.items[j]);
            rc = k->fn(ev, k, coll->u.arr.items[j]);
            undo(ev, mark);
        }
        cl_rv_decref(hold);
        return rc;
    }
    for (size_t j = 0; j < n && rc == 0; j++) {
        struct cl_rv *key, *x, *tmp = NULL;
        if (check_limits(ev) < 0) {
            rc = -1;
            break;
        }
        if (coll->type == CL_RV_ARRAY) {
            key = tmp = cl_rv_int((int64_t)j);
            x = coll->u.arr.items[j];
        } else if (coll->type == CL_RV_OBJECT) {
            key = coll->u.obj.keys[j];
            x = coll->u.obj.vals[j];
        } else {
            key = x = coll->u.arr.items[j];
        }
        struct k_member_val c = {{k_member_val_fn}, fr, vt, x, k};
        if (kt)
            rc = unify_val(ev, fr, kt, key, &c.k);
        else
            rc = k_member_val_fn(ev, &c.k, NULL);
        cl_rv_decref(tmp);
    }
    cl_rv_decref(hold);
    return rc;
}

struct k_every {
    struct k k;
    struct frame *fr;
    const struct cl_rg_expr *x;
    struct k *out;
    bool ok;
};

static int k_every_fn(struct ev *ev, struct k *k, struct cl_rv *dom)
{
    struct k_every *c = (struct k_every *)k;
    if (dom->type != CL_RV_ARRAY && dom->type != CL_RV_OBJECT && dom->type != CL_RV_SET)
        return 0;
    struct cl_rv *hold = cl_rv_incref(dom);
    size_t n = cl_rv_len(dom);
    for (size_t j = 0; j < n; j++) {
        struct cl_rv *key, *x, *tmp = NULL;
        if (dom->type == CL_RV_ARRAY) {
            key = tmp = cl_rv_int((int64_t)j);
            x = dom->u.arr.items[j];
        } else if (dom->type == CL_RV_OBJECT) {
            key = dom->u.obj.keys[j];
            x = dom->u.obj.vals[j];
        } else {
            key = x = dom->u.arr.items[j];
        }
        size_t mark = ev->ntrail;
        if (c->x->key)
            bind(ev, &c->fr->slots[c->x->key->slot], key);
        bind(ev, &c->fr->slots[c->x->val->slot], x);
        struct k_found f = {{k_found_fn}};
        int rc = eval_body(ev, c->fr, c->x->body, 0, &f.k);
        undo(ev, mark);
        cl_rv_decref(tmp);
        if (rc < 0) {
            cl_rv_decref(hold);
            return rc;
        }
        if (rc != STOP) {
            cl_rv_decref(hold);
            return 0;
        }
    }
    cl_rv_decref(hold);
    return c->out->fn(ev, c->out, cl_rv_bool(true));
}

/* with: swapping state in and out around the continuation */
struct with_state {
    struct cl_rv *input;
    size_t ndovs, nmocks;
    struct cache *cache;
};

struct k_with {
    struct k k;
    struct with_state outer, inner;
    struct dov *dovs; /* the inner overrides (copied in/out) */
    size_t ninner_dovs;
    struct mock *mocks;
    size_t ninner_mocks;
    struct k *out;
};

static void push_dov(struct ev *ev, const struct dov *d)
{
    if (ev->ndovs == ev->capdovs) {
        ev->capdovs = ev->capdovs ? ev->capdovs * 2 : 4;
        ev->dovs = cl_xrealloc(ev->dovs, ev->capdovs * sizeof *ev->dovs);
    }
    ev->dovs[ev->ndovs++] = *d;
}

static void push_mock(struct ev *ev, const struct mock *m)
{
    if (ev->nmocks == ev->capmocks) {
        ev->capmocks = ev->capmocks ? ev->capmocks * 2 : 4;
        ev->mocks = cl_xrealloc(ev->mocks, ev->capmocks * sizeof *ev->mocks);
    }
    ev->mocks[ev->nmocks++] = *m;
}

static void apply_inner(struct ev *ev, struct k_with *w)
{
    ev->input = w->inner.input;
    for (size_t i = 0; i < w->ninner_dovs; i++)
        push_dov(ev, &w->dovs[i]);
    for (size_t i = 0; i < w->ninner_mocks; i++)
        push_mock(ev, &w->mocks[i]);
    ev->cache = w->inner.cache;
}

static void restore_outer(struct ev *ev, struct k_with *w)
{
    ev->input = w->outer.input;
    ev->ndovs = w->outer.ndovs;
    ev->nmocks = w->outer.nmocks;
    ev->cache = w->outer.cache;
}

static int k_with_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_with *w = (struct k_with *)k;
    restore_outer(ev, w);
    int rc = w->out->fn(ev, w->out, v);
    apply_inner(ev, w);
    return rc;
}

static struct cache *cache_new(struct ev *ev)
{
    struct cache *c = cl_xcalloc(1, sizeof *c);
    c->vals = cl_xcalloc((size_t)ev->e->nnodes + 1, sizeof *c->vals);
    c->state = cl_xcalloc((size_t)ev->e->nnodes + 1, 1);
    return c;
}

static void cache_free(struct ev *ev, struct cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < ev->e->nnodes; i++)
        cl_rv_decref(c->vals[i]);
    free(c->vals);
    free(c->state);
    free(c);
}

static int eval_expr_plain(struct ev *ev, struct frame *fr, const struct cl_rg_expr *x,
                           struct k *k);

static int eval_expr_with(struct ev *ev, struct frame *fr, const struct cl_rg_expr *x, struct k *k)
{
    struct k_with w;
    memset(&w, 0, sizeof w);
    w.k.fn = k_with_fn;
    w.out = k;
    for (size_t i = 0; i < x->nwith; i++) {
        const struct cl_rg_term *t = x->with[i].target;
        if ((t->kind == RG_T_REF ? t->items[0] : t)->root == RG_ROOT_INPUT)
            input_whole(ev); /* replaced in part: the rest must be there to keep */
    }
    w.outer.input = ev->input;
    w.outer.ndovs = ev->ndovs;
    w.outer.nmocks = ev->nmocks;
    w.outer.cache = ev->cache;
    struct cl_rv *new_input = cl_rv_incref(ev->input);
    int rc = 0;
    w.dovs = cl_xcalloc(x->nwith, sizeof *w.dovs);
    w.mocks = cl_xcalloc(x->nwith, sizeof *w.mocks);
    struct cl_rv **owned = cl_xcalloc(x->nwith * 2 + 1, sizeof *owned);
    size_t nowned = 0;
    for (size_t i = 0; i < x->nwith && rc == 0; i++) {
        const struct cl_rg_with *wi = &x->with[i];
        struct mock m = {0};
        if ((wi->tfn || wi->tbi) && (wi->vfn || wi->vbi)) {
            m.tbi = wi->tbi;
            m.tfn = wi->tfn;
            m.vbi = wi->vbi;
            m.vfn = wi->vfn;
            m.vext = wi->vext;
            w.mocks[w.ninner_mocks++] = m;
            continue;
        }
        struct k_collect c = {{k_collect_fn}, NULL, true};
        rc = eval_term(ev, fr, wi->value, &c.k);
        if (rc < 0)
            break;
        rc = 0;
        if (!c.v) {
            rc = -3; /* undefined value: the expression is undefined */
            break;
        }
        owned[nowned++] = c.v;
        if (wi->tfn || wi->tbi) {
            m.tbi = wi->tbi;
            m.tfn = wi->tfn;
            m.val = c.v;
            w.mocks[w.ninner_mocks++] = m;
            continue;
        }
        /* input or data path */
        const struct cl_rg_term *t = wi->target;
        size_t np = t->kind == RG_T_REF ? t->n - 1 : 0;
        struct cl_rv **path = cl_xcalloc(np + 1, sizeof *path);
        bool ok = true;
        for (size_t j = 0; j < np; j++) {
            const struct cl_rg_term *pt = t->items[j + 1];
            if (pt->kind == RG_T_VALUE)
                path[j] = pt->val;
            else if (pt->kind == RG_T_VAR && !pt->root && fr->slots[pt->slot])
                path[j] = fr->slots[pt->slot];
            else
                ok = false;
        }
        const struct cl_rg_term *root = t->kind == RG_T_REF ? t->items[0] : t;
        if (!ok) {
            free(path);
            rc = fail(ev, CL_EINVAL, "rego_type_error", "with target must be a ground reference");
            break;
        }
        if (root->root == RG_ROOT_INPUT) {
            struct cl_rv *ni = set_path(new_input, path, np, c.v);
            cl_rv_decref(new_input);
            new_input = ni;
            free(path);
        } else {
            struct dov d = {path, np, c.v};
            w.dovs[w.ninner_dovs++] = d;
        }
    }
    if (rc == 0) {
        w.inner.input = new_input;
        w.inner.cache = cache_new(ev);
        apply_inner(ev, &w);
        rc = eval_expr_plain(ev, fr, x, &w.k);
        restore_outer(ev, &w);
        cache_free(ev, w.inner.cache);
    }
    if (rc == -3) {
        rc = 0;
    }
    for (size_t i = 0; i < w.ninner_dovs; i++)
        free(w.dovs[i].path);
    free(w.dovs);
    free(w.mocks);
    for (size_t i = 0; i < nowned; i++)
        cl_rv_decref(owned[i]);
    free(owned);
    cl_rv_decref(new_input);
    return rc;
}

static int eval_expr_plain(struct ev *ev, struct frame *fr, const struct cl_rg_expr *x, struct k *k)
{
    if (x->negated) {
        struct k_found f = {{k_found_fn}};
        struct cl_rg_expr pos = *x;
        pos.negated = false;
        pos.nwith = 0;
        size_t mark = ev->ntrail;
        int rc = eval_expr_plain(ev, fr, &pos, &f.k);
        undo(ev, mark);
        if (rc < 0)
            return rc;
        if (rc == STOP)
            return 0;
        return k->fn(ev, k, cl_rv_bool(true));
    }
    switch (x->kind) {
    case RG_E_SOME:
        return k->fn(ev, k, cl_rv_bool(true));
    case RG_E_SOMEIN: {
        struct k_somein c = {{k_somein_fn}, fr, x, k};
        return eval_term(ev, fr, x->coll, &c.k);
    }
    case RG_E_EVERY: {
        struct k_every c = {{k_every_fn}, fr, x, k, false};
        return eval_term(ev, fr, x->coll, &c.k);
    }
    case RG_E_TERM:
        if (x->term->kind == RG_T_CALL)
            return eval_call(ev, fr, x->term, true, k);
        {
            struct k_truthy c = {{k_truthy_fn}, k};
            return eval_term(ev, fr, x->term, &c.k);
        }
    }
    return 0;
}

static int eval_expr(struct ev *ev, struct frame *fr, const struct cl_rg_expr *x, struct k *k)
{
    ev->cur_line = x->line;
    if (check_limits(ev) < 0)
        return -1;
    if (x->nwith)
        return eval_expr_with(ev, fr, x, k);
    return eval_expr_plain(ev, fr, x, k);
}

static bool unbound_var(const struct frame *fr, const struct cl_rg_term *t)
{
    return t->kind == RG_T_VAR && !t->root && !fr->slots[t->slot];
}

/* An expression with at most one solution, evaluated in place: comparisons and calls whose
 * arguments are known, `x := term` / `x = term` with a fresh x, plain terms, their negation.
 * Returns 1 (true; bindings made are undone by the caller's trail mark), 0 (false or
 * undefined), <0 on error, or 2 when the expression needs the general evaluator. */
static int eval_det(struct ev *ev, struct frame *fr, const struct cl_rg_expr *x)
{
    if (x->nwith)
        return 2;
    if (x->kind == RG_E_SOME)
        return x->negated ? 2 : 1;
    if (x->kind != RG_E_TERM)
        return 2;
    const struct cl_rg_term *t = x->term;
    if (t->kind == RG_T_CALL && !t->bi && !t->fn) { /* eq / assign */
        if (x->negated)
            return 2;
        const struct cl_rg_term *l = t->items[0], *r = t->items[1];
        const struct cl_rg_term *var = NULL, *val = l;
        if (unbound_var(fr, l)) {
            var = l;
            val = r;
        } else if (unbound_var(fr, r)) {
            var = r;
        }
        struct cl_rv *v = NULL, *w = NULL;
        bool vo = false, wo = false;
        int rc = eval1(ev, fr, val, &v, &vo);
        if (rc == 1 && var) {
            bind(ev, &fr->slots[var->slot], v);
        } else if (rc == 1) {
            rc = eval1(ev, fr, r, &w, &wo);
            if (rc == 1)
                rc = cl_rv_equal(v, w) ? 1 : 0;
            put1(w, wo);
        }
        put1(v, vo);
        return rc;
    }
    if (is_print(t)) {
        /* always true and binds nothing: done in place, without a continuation per call */
        if (x->negated || x->nwith)
            return 2;
        if (ev->e->opts.print || ev->prints)
            print_call(ev, fr, t);
        return 1;
    }
    if (t->op && t->n == 2 && ev->nmocks == ev->mock_floor) {
        /* a comparison: evaluate both sides in place and compare */
        struct cl_rv *a = NULL, *b = NULL;
        bool ao = false, bo = false;
        int ra = eval1(ev, fr, t->items[0], &a, &ao);
        if (ra != 1)
            return ra == 0 ? (x->negated ? 1 : 0) : ra;
        int rb = eval1(ev, fr, t->items[1], &b, &bo);
        if (rb != 1) {
            put1(a, ao);
            return rb == 0 ? (x->negated ? 1 : 0) : rb;
        }
        int c = cl_rv_compare(a, b);
        bool r = t->op == RG_OP_EQ    ? c == 0
                 : t->op == RG_OP_NEQ ? c != 0
                 : t->op == RG_OP_LT  ? c < 0
                 : t->op == RG_OP_LTE ? c <= 0
                 : t->op == RG_OP_GT  ? c > 0
                                      : c >= 0;
        put1(a, ao);
        put1(b, bo);
        return r != x->negated ? 1 : 0;
    }
    struct cl_rv *v = NULL;
    bool own = false;
    int rc = eval1(ev, fr, t, &v, &own);
    if (rc < 0 || rc == NOT_SIMPLE)
        return rc;
    bool ok = rc == 1 && !(v->type == CL_RV_BOOL && !v->u.b);
    put1(v, own);
    return ok != x->negated ? 1 : 0;
}

static int eval_body(struct ev *ev, struct frame *fr, const struct cl_rg_body *b, size_t i,
                     struct k *k)
{
    for (; i < b->n; i++) {
        const struct cl_rg_expr *x = b->exprs[i];
        ev->cur_line = x->line;
        if (check_limits(ev) < 0)
            return -1;
        int rc = eval_det(ev, fr, x);
        if (rc == 2) {
            struct k_body c = {{k_body_fn}, fr, b, i, k};
            return x->nwith ? eval_expr_with(ev, fr, x, &c.k) : eval_expr_plain(ev, fr, x, &c.k);
        }
        if (rc <= 0)
            return rc;
    }
    return k->fn(ev, k, NULL);
}

/* ---- rules ---- */

static struct frame frame_new(int nslots)
{
    struct frame f = {cl_xcalloc((size_t)nslots + 1, sizeof(struct cl_rv *))};
    return f;
}

static void frame_free(struct ev *ev, struct frame *f, size_t mark)
{
    undo(ev, mark);
    free(f->slots);
}

/* Frames of small rules live on the C stack (the stack limit is checked per expression). */
#define FRAME_STACK 24

static struct frame frame_init(struct cl_rv **buf, int nslots)
{
    if (nslots + 1 <= FRAME_STACK) {
        memset(buf, 0, ((size_t)nslots + 1) * sizeof *buf);
        return (struct frame){buf};
    }
    return frame_new(nslots);
}

static void frame_done(struct ev *ev, struct frame *f, size_t mark, struct cl_rv **buf)
{
    undo(ev, mark);
    if (f->slots != buf)
        free(f->slots);
}

/* Binds call arguments to parameter patterns, then runs the body: plain variables are bound
 * directly, other patterns unified. */
struct k_args {
    struct k k;
    struct frame *fr;
    const struct cl_rg_rule *r;
    struct cl_rv **args;
    size_t nargs, i;
    struct k *body;
};

static int args_step(struct ev *ev, struct k_args *c)
{
    size_t mark = ev->ntrail, start = c->i;
    int rc = 0;
    for (;;) {
        if (c->i == c->nargs) {
            rc = eval_body(ev, c->fr, c->r->body, 0, c->body);
            break;
        }
        const struct cl_rg_term *p = c->r->args[c->i];
        struct cl_rv *a = c->args[c->i];
        if (p->kind == RG_T_VAR && !p->root) {
            struct cl_rv **slot = &c->fr->slots[p->slot];
            if (*slot && !cl_rv_equal(*slot, a))
                break;
            if (!*slot)
                bind(ev, slot, a);
            c->i++;
            continue;
        }
        if (p->kind == RG_T_VALUE) {
            if (!cl_rv_equal(p->val, a))
                break;
            c->i++;
            continue;
        }
        c->i++;
        rc = unify_val(ev, c->fr, p, a, &c->k);
        break;
    }
    c->i = start;
    undo(ev, mark);
    return rc;
}

static int k_args_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_args *c = (struct k_args *)k;
    size_t save = c->i;
    int rc = args_step(ev, c);
    c->i = save;
    return rc;
}

/* complete rules: collect values of one definition, with conflict checks across solutions */
struct k_rval {
    struct k k;
    struct frame *fr;
    const struct cl_rg_rule *r;
    struct cl_rv **result;
    const char *conflict_msg;
    bool early;
};

static int k_rval_value_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_rval *c = (struct k_rval *)k;
    if (*c->result) {
        if (!cl_rv_equal(*c->result, v)) {
            ev->cur_line = c->r->line;
            return fail(ev, CL_EINVAL, "eval_conflict_error", "%s", c->conflict_msg);
        }
        return c->early ? STOP : 0;
    }
    *c->result = cl_rv_incref(v);
    return c->early ? STOP : 0;
}

struct k_rbody {
    struct k k;
    struct k_rval *rv;
};

static int k_rbody_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_rbody *c = (struct k_rbody *)k;
    const struct cl_rg_rule *r = c->rv->r;
    if (!r->value)
        return k_rval_value_fn(ev, &c->rv->k, cl_rv_bool(true));
    return eval_term(ev, c->rv->fr, r->value, &c->rv->k);
}

/* Evaluates a rule chain (rule + else) for a complete value. *result in/out. Returns <0 on error.
 */
static int eval_chain(struct ev *ev, const struct cl_rg_rule *r0, struct cl_rv **result,
                      const char *msg, struct cl_rv **args, size_t nargs)
{
    const char *saved_file = ev->cur_file;
    const struct cl_rg_rule *saved_rule = ev->cur_rule;
    for (const struct cl_rg_rule *r = r0; r; r = r->els) {
        struct cl_rv *local = NULL;
        ev->cur_file = r->mod->file;
        ev->cur_rule = r;
        struct cl_rv *fbuf[FRAME_STACK];
        struct frame fr = frame_init(fbuf, r->nslots);
        size_t mark = ev->ntrail;
        struct k_rval rv = {{k_rval_value_fn}, &fr, r, &local, msg, false};
        rv.early = !r->value || r->value->kind == RG_T_VALUE;
        struct k_rbody kb = {{k_rbody_fn}, &rv};
        int rc;
        if (nargs) {
            struct k_args c = {{k_args_fn}, &fr, r, args, nargs, 0, &kb.k};
            rc = args_step(ev, &c);
        } else {
            rc = eval_body(ev, &fr, r->body, 0, &kb.k);
        }
        frame_done(ev, &fr, mark, fbuf);
        ev->cur_file = saved_file;
        ev->cur_rule = saved_rule;
        if (rc < 0) {
            cl_rv_decref(local);
            return rc;
        }
        if (local) {
            if (*result && !cl_rv_equal(*result, local)) {
                cl_rv_decref(local);
                /* named where the policy says it, not where the query asked */
                ev->cur_file = r->mod->file;
                ev->cur_line = r->line;
                rc = fail(ev, CL_EINVAL, "eval_conflict_error", "%s", msg);
                ev->cur_file = saved_file;
                return rc;
            }
            if (!*result)
                *result = local;
            else
                cl_rv_decref(local);
            return 0;
        }
    }
    return 0;
}

/* partial set / object contributions */
struct k_contrib {
    struct k k;
    struct frame *fr;
    const struct cl_rg_rule *r;
    struct cl_rv **acc; /* set or object */
    struct cl_rv *keys[MAX_PATH];
    size_t nkeys;
};

static int insert_path(struct ev *ev, struct cl_rv **acc, struct cl_rv *const *keys, size_t n,
                       struct cl_rv *v)
{
    if (!*acc)
        *acc = cl_rv_object();
    if ((*acc)->type != CL_RV_OBJECT)
        return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
    struct cl_rv *old = cl_rv_obj_get(*acc, keys[0]);
    if (n == 1) {
        if (old) {
            if (!cl_rv_equal(old, v))
                return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
            return 0;
        }
        if ((*acc)->refs > 1 && !(*acc)->frozen) {
            struct cl_rv *c = cl_rv_copy(*acc);
            cl_rv_decref(*acc);
            *acc = c;
        }
        cl_rv_obj_put(*acc, cl_rv_incref(keys[0]), cl_rv_incref(v));
        return 0;
    }
    struct cl_rv *child = old ? cl_rv_incref(old) : NULL;
    if (child && child->type != CL_RV_OBJECT) {
        cl_rv_decref(child);
        return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
    }
    if (child && (child->refs > 1 || child->frozen)) {
        struct cl_rv *c = cl_rv_copy(child);
        cl_rv_decref(child);
        child = c;
    }
    /* drop the parent's reference so the child is unshared while we modify it */
    if (old)
        cl_rv_obj_put(*acc, cl_rv_incref(keys[0]), cl_rv_null());
    int rc = insert_path(ev, &child, keys + 1, n - 1, v);
    cl_rv_obj_put(*acc, cl_rv_incref(keys[0]), child ? child : cl_rv_object());
    return rc;
}

static int k_contrib_val_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_contrib *c = (struct k_contrib *)k;
    if (c->r->kind == RG_R_SET) {
        if (c->nkeys == 0) {
            if (!*c->acc)
                *c->acc = cl_rv_set();
            cl_rv_set_add(*c->acc, cl_rv_incref(v));
            return 0;
        }
        /* p.q contains x with variable parts: a set at the leaf */
        struct cl_rv *leaf = NULL;
        struct cl_rv *cur = *c->acc;
        for (size_t i = 0; cur && i < c->nkeys; i++)
            cur = cl_rv_obj_get(cur, c->keys[i]);
        leaf = cur ? cl_rv_copy(cur) : cl_rv_set();
        if (leaf->type != CL_RV_SET) {
            cl_rv_decref(leaf);
            return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
        }
        cl_rv_set_add(leaf, cl_rv_incref(v));
        /* replace without conflict check */
        struct cl_rv *nv = set_path(*c->acc, c->keys, c->nkeys, leaf);
        cl_rv_decref(leaf);
        cl_rv_decref(*c->acc);
        *c->acc = nv;
        return 0;
    }
    return insert_path(ev, c->acc, c->keys, c->nkeys, v);
}

struct k_contrib_key {
    struct k k;
    struct k_contrib *c;
    size_t i; /* head index */
};

static int contrib_keys(struct ev *ev, struct k_contrib *c, size_t i);

static int k_contrib_key_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_contrib_key *ck = (struct k_contrib_key *)k;
    struct k_contrib *c = ck->c;
    size_t save = c->nkeys;
    if (c->nkeys >= MAX_PATH)
        return fail(ev, CL_ELIMIT, "eval_limit_error", "rule head too deep");
    c->keys[c->nkeys++] = v;
    int rc = contrib_keys(ev, c, ck->i + 1);
    c->nkeys = save;
    return rc;
}

static int contrib_keys(struct ev *ev, struct k_contrib *c, size_t i)
{
    const struct cl_rg_rule *r = c->r;
    if (i == r->nhead) {
        const struct cl_rg_term *vt = r->kind == RG_R_SET ? r->key : r->value;
        if (!vt)
            return k_contrib_val_fn(ev, &c->k, cl_rv_bool(true));
        return eval_term(ev, c->fr, vt, &c->k);
    }
    struct k_contrib_key ck = {{k_contrib_key_fn}, c, i};
    return eval_term(ev, c->fr, r->head[i], &ck.k);
}

struct k_contrib_body {
    struct k k;
    struct k_contrib *c;
};

static int k_contrib_body_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    struct k_contrib_body *cb = (struct k_contrib_body *)k;
    return contrib_keys(ev, cb->c, cb->c->r->nground);
}

static int eval_contrib(struct ev *ev, const struct cl_rg_rule *r, struct cl_rv **acc)
{
    struct frame fr = frame_new(r->nslots);
    size_t mark = ev->ntrail;
    struct k_contrib c = {{k_contrib_val_fn}, &fr, r, acc, {0}, 0};
    struct k_contrib_body cb = {{k_contrib_body_fn}, &c};
    const char *saved_file = ev->cur_file;
    const struct cl_rg_rule *saved_rule = ev->cur_rule;
    ev->cur_file = r->mod->file;
    ev->cur_rule = r;
    int rc = eval_body(ev, &fr, r->body, 0, &cb.k);
    ev->cur_file = saved_file;
    ev->cur_rule = saved_rule;
    frame_free(ev, &fr, mark);
    return rc;
}

/* Value of a node's rules (without children); NULL when undefined. */
static int node_rules_value(struct ev *ev, const struct cl_rg_node *n, struct cl_rv **out)
{
    *out = NULL;
    bool complete = false;
    for (const struct cl_rg_rule *r = n->rules; r; r = r->next_in_node)
        if (r->kind == RG_R_VALUE && r->nground == r->nhead)
            complete = true;
    if (complete || (!n->rules && n->deflt)) {
        struct cl_rv *res = NULL;
        for (const struct cl_rg_rule *r = n->rules; r; r = r->next_in_node) {
            if (!(r->kind == RG_R_VALUE && r->nground == r->nhead))
                continue;
            if (eval_chain(ev, r, &res, "complete rules must not produce multiple outputs", NULL,
                           0) < 0) {
                cl_rv_decref(res);
                return -1;
            }
            if (res && n->const_rules)
                break;
        }
        if (!res && n->deflt && n->deflt->value) {
            struct k_collect c = {{k_collect_fn}, NULL, true};
            struct frame fr = frame_new(n->deflt->nslots);
            size_t mark = ev->ntrail;
            int rc = eval_term(ev, &fr, n->deflt->value, &c.k);
            frame_free(ev, &fr, mark);
            if (rc < 0)
                return rc;
            res = c.v;
        }
        *out = res;
        return 0;
    }
    struct cl_rv *acc = NULL;
    for (const struct cl_rg_rule *r = n->rules; r; r = r->next_in_node) {
        if (r->kind == RG_R_SET && r->nground == r->nhead && !acc)
            acc = cl_rv_set();
        if (eval_contrib(ev, r, &acc) < 0) {
            cl_rv_decref(acc);
            return -1;
        }
    }
    /* rules with variables in the head (partial objects) and nothing produced: an empty object */
    if (!acc && n->dynamic)
        acc = cl_rv_object();
    *out = acc;
    return 0;
}

/* Two contributions to one path as one document: equal values, objects merged key by key,
 * sets united; NULL when they conflict. Returns new. */
static struct cl_rv *merge_docs(struct cl_rv *a, struct cl_rv *b)
{
    if (cl_rv_equal(a, b))
        return cl_rv_incref(a);
    if (a->type == CL_RV_SET && b->type == CL_RV_SET) {
        struct cl_rv *m = cl_rv_copy(a);
        for (size_t i = 0; i < b->u.arr.len; i++)
            cl_rv_set_add(m, cl_rv_incref(b->u.arr.items[i]));
        return m;
    }
    if (a->type != CL_RV_OBJECT || b->type != CL_RV_OBJECT)
        return NULL;
    struct cl_rv *m = cl_rv_copy(a);
    for (size_t i = 0; i < b->u.obj.len; i++) {
        struct cl_rv *k = b->u.obj.keys[i], *bv = b->u.obj.vals[i];
        struct cl_rv *av = cl_rv_obj_get(m, k);
        struct cl_rv *x = av ? merge_docs(av, bv) : cl_rv_incref(bv);
        if (!x) {
            cl_rv_decref(m);
            return NULL;
        }
        cl_rv_obj_put(m, cl_rv_incref(k), x);
    }
    return m;
}

static int materialize_uncached(struct ev *ev, const struct cl_rg_node *n, struct cl_rv *base,
                                struct cl_rv **out)
{
    *out = NULL;
    struct cl_rv *v = NULL;
    if (n->rules || n->deflt) {
        if (node_rules_value(ev, n, &v) < 0)
            return -1;
        if (!n->nkids) {
            *out = v;
            return 0;
        }
        if (v && v->type != CL_RV_OBJECT) {
            *out = v;
            return 0;
        }
    }
    bool any = v != NULL;
    if (!v)
        v = base && base->type == CL_RV_OBJECT ? cl_rv_copy(base) : NULL;
    else if (base && base->type == CL_RV_OBJECT) {
        /* rules and base data at the same path: merge (rules win on equal keys) */
        struct cl_rv *m = cl_rv_copy(v);
        for (size_t i = 0; i < base->u.obj.len; i++)
            if (!cl_rv_obj_get(m, base->u.obj.keys[i]))
                cl_rv_obj_put(m, cl_rv_incref(base->u.obj.keys[i]),
                              cl_rv_incref(base->u.obj.vals[i]));
        cl_rv_decref(v);
        v = m;
    }
    if (!n->nkids && !any) {
        if (cl_rg_node_is_fn(n)) {
            cl_rv_decref(v);
            return 0;
        }
        *out = v ? v : (base ? cl_rv_incref(base) : n->rules ? NULL : cl_rv_object());
        return 0;
    }
    if (!v)
        v = cl_rv_object();
    else if (v->refs > 1 || v->frozen) {
        struct cl_rv *c = cl_rv_copy(v);
        cl_rv_decref(v);
        v = c;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const struct cl_rg_node *kid = n->kids[i];
        if (cl_rg_node_is_fn(kid) && !kid->rules && !kid->deflt && !kid->nkids)
            continue; /* functions only */
        struct cl_rv *kb = base ? cl_rv_obj_get(base, kid->key) : NULL;
        struct cl_rv *kv = NULL;
        if (materialize(ev, kid, kb, &kv) < 0) {
            cl_rv_decref(v);
            return -1;
        }
        if (!kv)
            continue;
        if (kb && (kb->type != CL_RV_OBJECT || kv->type != CL_RV_OBJECT)) {
            /* a rule and a base document at the same path: the base document wins (as OPA) */
            cl_rv_decref(kv);
            continue;
        }
        struct cl_rv *old = any ? cl_rv_obj_get(v, kid->key) : NULL;
        if (old) {
            /* rules with variables in their heads and rules naming the path (`p[q].r contains
             * s` beside `p.b.r contains "foo"`) build one document */
            struct cl_rv *m = merge_docs(old, kv);
            cl_rv_decref(kv);
            if (!m) {
                cl_rv_decref(v);
                const struct cl_rg_rule *r = kid->rules ? kid->rules : n->rules;
                if (r) {
                    ev->cur_file = r->mod->file;
                    ev->cur_line = r->line;
                }
                return fail(ev, CL_EINVAL, "eval_conflict_error", "object keys must be unique");
            }
            kv = m;
        }
        cl_rv_obj_put(v, cl_rv_incref(kid->key), kv);
    }
    *out = v;
    return 0;
}

static int materialize(struct ev *ev, const struct cl_rg_node *n, struct cl_rv *base,
                       struct cl_rv **out)
{
    struct cache *c = ev->cache;
    int id = n->id;
    if (c->state[id] == 2) {
        *out = cl_rv_incref(c->vals[id]);
        return 0;
    }
    if (c->state[id] == 3) {
        *out = NULL;
        return 0;
    }
    if (c->state[id] == 1)
        return fail(ev, CL_EINVAL, "rego_recursion_error", "rule %s is recursive", n->name);
    if (++ev->depth > ev->max_depth) {
        ev->depth--;
        return fail(ev, CL_ELIMIT, "eval_limit_error", "evaluation nesting too deep (%d)",
                    ev->max_depth);
    }
    c->state[id] = 1;
    int rc = materialize_uncached(ev, n, base, out);
    ev->depth--;
    if (rc < 0) {
        c->state[id] = 0;
        return rc;
    }
    c->state[id] = *out ? 2 : 3;
    if (*out)
        c->vals[id] = cl_rv_incref(*out);
    return 0;
}

static int call_fn(struct ev *ev, const struct cl_rg_node *fn, struct cl_rv **args, size_t nargs,
                   struct cl_rv **out)
{
    struct cl_rv *res = NULL;
    for (const struct cl_rg_rule *r = fn->funcs; r; r = r->next_in_node) {
        if (eval_chain(ev, r, &res, "functions must not produce multiple outputs for same inputs",
                       args, nargs) < 0) {
            cl_rv_decref(res);
            return -1;
        }
        if (res && fn->const_funcs)
            break;
    }
    if (!res && fn->fdeflt && fn->fdeflt->value) {
        struct k_collect c = {{k_collect_fn}, NULL, true};
        struct frame fr = frame_new(fn->fdeflt->nslots);
        size_t mark = ev->ntrail;
        int rc = eval_term(ev, &fr, fn->fdeflt->value, &c.k);
        frame_free(ev, &fr, mark);
        if (rc < 0)
            return rc;
        res = c.v;
    }
    *out = res;
    return res ? 0 : CL_REGO_UNDEFINED;
}

/* ---- queries ---- */

struct k_query {
    struct k k;
    struct frame *fr;
    const struct cl_rg_query *q;
    struct cl_rv *rows;
    struct cl_rv **exprvals;
};

static int k_query_fn(struct ev *ev, struct k *k, struct cl_rv *unused)
{
    (void)unused;
    (void)ev;
    struct k_query *c = (struct k_query *)k;
    struct cl_rv *b = cl_rv_object();
    for (int i = 0; i < c->q->nslots; i++) {
        const char *nm = c->q->names[i];
        if (!nm || (nm[0] == '_' && nm[1] == '_') || !c->fr->slots[i])
            continue;
        cl_rv_obj_put_str(b, nm, cl_rv_incref(c->fr->slots[i]));
    }
    struct cl_rv *ex = cl_rv_array(c->q->body->n);
    for (size_t i = 0; i < c->q->body->n; i++)
        cl_rv_array_push(ex, c->exprvals[i] ? cl_rv_incref(c->exprvals[i]) : cl_rv_bool(true));
    struct cl_rv *row = cl_rv_object();
    cl_rv_obj_put_str(row, "bindings", b);
    cl_rv_obj_put_str(row, "expressions", ex);
    cl_rv_array_push(c->rows, row);
    return 0;
}

struct k_qexpr {
    struct k k;
    struct k_query *q;
    size_t i;   /* position in the (reordered) body */
    size_t idx; /* position as written: results list expressions in that order */
    struct k *out;
};

static int eval_qbody(struct ev *ev, struct k_query *q, size_t i);

static int k_qexpr_fn(struct ev *ev, struct k *k, struct cl_rv *v)
{
    struct k_qexpr *c = (struct k_qexpr *)k;
    struct cl_rv *old = c->q->exprvals[c->idx];
    c->q->exprvals[c->idx] = v;
    int rc = eval_qbody(ev, c->q, c->i + 1);
    c->q->exprvals[c->idx] = old;
    return rc;
}

static int eval_qbody(struct ev *ev, struct k_query *q, size_t i)
{
    if (i == q->q->body->n)
        return k_query_fn(ev, &q->k, NULL);
    const struct cl_rg_expr *x = q->q->body->exprs[i];
    size_t idx = x->idx >= 0 && (size_t)x->idx < q->q->body->n ? (size_t)x->idx : i;
    struct k_qexpr c = {{k_qexpr_fn}, q, i, idx, NULL};
    if (x->kind == RG_E_TERM && !x->negated && !x->nwith && x->term->kind != RG_T_CALL) {
        /* a plain term at query level yields its value, false included (as OPA's eval) */
        if (check_limits(ev) < 0)
            return -1;
        return eval_term(ev, q->fr, x->term, &c.k);
    }
    return eval_expr(ev, q->fr, x, &c.k);
}

int cl_rg_eval_query(struct cl_rego *e, const struct cl_rg_query *q, struct cl_rv *input,
                     const json_t *input_json, struct cl_rv *data, bool strict, int64_t now_ns,
                     struct cl_rego_prints *prints, struct cl_rv **rows, struct cl_rg_error *err)
{
    char base;
    memset(err, 0, sizeof *err);
    struct ev ev = {.e = e,
                    .input = input,
                    .input_json = input ? NULL : input_json,
                    .data = data ? data : e->data,
                    .strict = strict,
                    .now_ns = now_ns,
                    .err = err,
                    .cur_file = "query",
                    .prints = prints};
    ev.max_steps = e->opts.max_steps ? e->opts.max_steps : CL_REGO_MAX_STEPS;
    ev.max_mem = e->opts.max_memory ? e->opts.max_memory : CL_REGO_MAX_MEMORY;
    ev.max_depth = e->opts.max_depth ? e->opts.max_depth : CL_REGO_MAX_DEPTH;
    ev.max_stack = e->opts.max_stack ? e->opts.max_stack : CL_REGO_MAX_STACK;
    ev.stack_base = &base;
    ev.mem_base = cl_rv_bytes_live;
    ev.cache = cache_new(&ev);
    struct cache *top_cache = ev.cache;
    struct frame fr = frame_new(q->nslots);
    struct cl_rv *exprvals[64] = {0};
    struct cl_rv **ev_vals = q->body->n <= 64 ? exprvals : cl_xcalloc(q->body->n, sizeof *ev_vals);
    struct k_query kq = {{k_query_fn}, &fr, q, cl_rv_array(0), ev_vals};
    int rc = eval_qbody(&ev, &kq, 0);
    frame_free(&ev, &fr, 0);
    cache_free(&ev, top_cache);
    for (size_t i = 0; i < ev.nnd; i++) {
        cl_rv_decref(ev.nd[i].args);
        cl_rv_decref(ev.nd[i].res);
    }
    free(ev.nd);
    for (size_t i = 0; i < ev.nlazy; i++)
        cl_rv_decref(ev.lazy[i].v);
    free(ev.lazy);
    cl_rv_decref(ev.input_made);
    free(ev.trail);
    free(ev.dovs);
    free(ev.mocks);
    if (ev_vals != exprvals)
        free(ev_vals);
    if (cl_rg_oom && (rc == 0 || ev.code != CL_ENOMEM)) {
        cl_rv_decref(kq.rows);
        kq.rows = NULL;
        fail_oom(&ev, NULL);
        rc = -1;
    }
    if (rc < 0) {
        cl_rv_decref(kq.rows);
        if (!err->code)
            fail(&ev, CL_EINVAL, "eval_internal_error", "evaluation failed");
        return ev.code ? ev.code : CL_EINVAL;
    }
    *rows = kq.rows;
    return 0;
}

/* ---- rego.* builtins: they see the engine (modules, the active rule) ---- */

static struct cl_rv *rule_path(const struct cl_rg_rule *r)
{
    struct cl_rv *p = cl_rv_array(r->mod->npkg + r->nground);
    for (size_t i = 0; i < r->mod->npkg; i++)
        cl_rv_array_push(p, cl_rv_strz(r->mod->pkg_path[i]));
    cl_rv_array_push(p, cl_rv_strz(r->head[0]->name));
    for (size_t i = 1; i < r->nground; i++)
        cl_rv_array_push(p, cl_rv_incref(r->head[i]->val));
    return p;
}

static bool scope_is(const struct cl_rv *ann, const char *scope)
{
    const struct cl_rv *s = ann ? cl_rv_obj_get_str(ann, "scope") : NULL;
    return s && s->type == CL_RV_STRING && strcmp(s->u.str.s, scope) == 0;
}

static struct cl_rv *chain_entry(struct cl_rv *path, const struct cl_rv *ann)
{
    struct cl_rv *o = cl_rv_object();
    cl_rv_obj_put_str(o, "path", path);
    if (ann)
        cl_rv_obj_put_str(o, "annotations", cl_rv_incref((struct cl_rv *)(uintptr_t)ann));
    return o;
}

static const struct cl_rv *doc_annotations(const struct cl_rg_node *n)
{
    const struct cl_rg_rule *lists[] = {n->rules, n->funcs, n->deflt, n->fdeflt};
    for (size_t i = 0; i < CL_ARRAY_LEN(lists); i++)
        for (const struct cl_rg_rule *r = lists[i]; r; r = r->next_in_node)
            if (scope_is(r->annotations, "document"))
                return r->annotations;
    return NULL;
}

/* rego.metadata.chain(): the annotations of the active rule, then of its document, package
 * and enclosing packages (scope subpackages), each with its path. */
static int bi_metadata_chain(struct cl_rego_bctx *ctx, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)a;
    struct ev *ev = ctx->b.ev;
    const struct cl_rg_rule *r = ev->cur_rule;
    struct cl_rv *chain = cl_rv_array(4);
    if (!r) {
        *out = chain;
        return 0;
    }
    const struct cl_rv *own = scope_is(r->annotations, "rule") ? r->annotations : NULL;
    cl_rv_array_push(chain, chain_entry(rule_path(r), own));
    const struct cl_rv *doc = r->node ? doc_annotations(r->node) : NULL;
    if (doc)
        cl_rv_array_push(chain, chain_entry(rule_path(r), doc));
    /* the rule's package, then each enclosing package */
    for (size_t depth = r->mod->npkg; depth > 0; depth--) {
        for (const struct cl_rg_module *m = ev->e->mods; m; m = m->next) {
            if (m->npkg != depth || !m->annotations)
                continue;
            bool same = true;
            for (size_t i = 0; i < depth && same; i++)
                same = strcmp(m->pkg_path[i], r->mod->pkg_path[i]) == 0;
            bool applies = depth == r->mod->npkg ? scope_is(m->annotations, "package") ||
                                                       scope_is(m->annotations, "subpackages")
                                                 : scope_is(m->annotations, "subpackages");
            if (!same || !applies)
                continue;
            struct cl_rv *p = cl_rv_array(depth);
            for (size_t i = 0; i < depth; i++)
                cl_rv_array_push(p, cl_rv_strz(m->pkg_path[i]));
            cl_rv_array_push(chain, chain_entry(p, m->annotations));
            break;
        }
    }
    *out = chain;
    return 0;
}

/* rego.metadata.rule(): the annotations of the active rule (its own, else its document's). */
static int bi_metadata_rule(struct cl_rego_bctx *ctx, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)a;
    const struct cl_rg_rule *r = ctx->b.ev->cur_rule;
    const struct cl_rv *ann = NULL;
    if (r && scope_is(r->annotations, "rule"))
        ann = r->annotations;
    else if (r && r->node)
        ann = doc_annotations(r->node);
    *out = ann ? cl_rv_incref((struct cl_rv *)(uintptr_t)ann) : cl_rv_object();
    return 0;
}

/* rego.parse_module(filename, text): the module's JSON AST; parse errors are builtin errors
 * carrying rego_parse_error and the position. */
static int bi_parse_module(struct cl_rego_bctx *ctx, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(ctx, a, 0, CL_RV_STRING) < 0 ||
        cl_rego_bi_want(ctx, a, 1, CL_RV_STRING) < 0)
        return -1;
    if (a[1]->u.str.len > CL_REGO_MAX_POLICY)
        return cl_rego_bi_error(ctx, "module larger than %u bytes", CL_REGO_MAX_POLICY);
    if (cl_rego_bi_reserve(ctx, a[1]->u.str.len * 16) < 0)
        return -2;
    struct cl_rg_arena arena = {.nofreeze = true};
    struct cl_rg_error re;
    struct cl_rg_module *m =
        cl_rg_parse_module(&arena, a[0]->u.str.s, a[1]->u.str.s, a[1]->u.str.len, false, &re);
    int rc = 0;
    if (!m)
        rc = cl_rego_bi_error(ctx, "%s:%d: %s: %s", re.file ? re.file : a[0]->u.str.s, re.line,
                              re.code, re.msg);
    else
        *out = cl_rg_module_ast(m);
    cl_rg_arena_free(&arena);
    return rc;
}

const struct cl_rego_builtin cl_rego_builtins_rego[] = {
    {"rego.metadata.chain", 0, bi_metadata_chain, 0},
    {"rego.metadata.rule", 0, bi_metadata_rule, 0},
    {"rego.parse_module", 2, bi_parse_module, 0},
    {NULL, 0, NULL, 0},
};
