/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Rego compiler: builds the rule tree (one node per package and ground head path),
 * resolves names (locals to frame slots, rule names and imports to data references, calls
 * to builtins or user functions, checking arity), and orders each body so that every
 * variable is bound before it is read (OPA's safety reordering).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rego/engine.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

/* ---- rule tree ---- */

struct cl_rg_node *cl_rg_node_child(const struct cl_rg_node *n, const char *name, size_t len)
{
    size_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct cl_rg_node *k = n->kids[mid];
        size_t kl = k->key->u.str.len;
        size_t m = kl < len ? kl : len;
        int c = memcmp(k->name, name, m);
        if (c == 0)
            c = kl < len ? -1 : kl > len;
        if (c == 0)
            return n->kids[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static struct cl_rg_node *node_get(struct cl_rego *e, struct cl_rg_node *n, const char *name,
                                   size_t len)
{
    struct cl_rg_node *k = cl_rg_node_child(n, name, len);
    if (k)
        return k;
    k = cl_rg_alloc(&e->arena, sizeof *k);
    k->name = cl_rg_strndup(&e->arena, name, len);
    k->key = cl_rg_keep(&e->arena, cl_rv_str(name, len));
    k->parent = n;
    k->id = e->nnodes++;
    /* keep kids sorted: binary search for the place, arrays grown by doubling (a package of
     * thousands of rules must not cost a copy of the array per rule) */
    size_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cl_rv_compare(n->kids[mid]->key, k->key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? n->capkids * 2 : 4;
        struct cl_rg_node **kids = cl_rg_alloc(&e->arena, cap * sizeof *kids);
        if (n->nkids)
            memcpy(kids, n->kids, n->nkids * sizeof *kids);
        n->kids = kids;
        n->capkids = cap;
    }
    memmove(n->kids + lo + 1, n->kids + lo, (n->nkids - lo) * sizeof *n->kids);
    n->kids[lo] = k;
    n->nkids++;
    return k;
}

/* ---- errors ---- */

CL_PRINTF(5, 6)
static int cerr(struct cl_rg_error *err, const char *code, const char *file,
                const struct cl_rg_term *at, const char *fmt, ...)
{
    if (err->code)
        return -1;
    err->code = code;
    err->file = file;
    err->line = at ? at->line : 0;
    err->col = at ? at->col : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- name resolution ---- */

struct scope {
    struct scope *up;
    const char **names;
    int *slots;
    size_t n, cap;
    const char **bnames; /* names occurring at this body's own level (not nested bodies) */
    size_t nbn, capbn;
};

struct cctx {
    struct cl_rego *e;
    struct cl_rg_arena *a;
    struct cl_rg_module *mod; /* NULL for queries */
    struct cl_rg_node *pkg;
    struct scope *top;
    struct scope freevars;
    int nslots;
    const char **slotnames;
    size_t capnames;
    struct cl_rg_error *err;
    const char *file;
};

static void scope_free(struct scope *s)
{
    free(s->names);
    free(s->slots);
    free(s->bnames);
}

static void bn_term(struct scope *s, const struct cl_rg_term *t)
{
    if (!t)
        return;
    if (t->kind == RG_T_VAR) {
        if (t->wildcard || t->root)
            return;
        for (size_t i = 0; i < s->nbn; i++)
            if (strcmp(s->bnames[i], t->name) == 0)
                return;
        if (s->nbn == s->capbn) {
            s->capbn = s->capbn ? s->capbn * 2 : 8;
            s->bnames = cl_xrealloc(s->bnames, s->capbn * sizeof *s->bnames);
        }
        s->bnames[s->nbn++] = t->name;
        return;
    }
    if (t->kind == RG_T_ACOMP || t->kind == RG_T_SCOMP || t->kind == RG_T_OCOMP)
        return;
    for (size_t i = 0; i < t->n; i++)
        bn_term(s, t->items[i]);
}

/* Records the names used at the level of body b (comprehension and every bodies excluded). */
static void bn_body(struct scope *s, const struct cl_rg_body *b)
{
    for (size_t i = 0; b && i < b->n; i++) {
        const struct cl_rg_expr *x = b->exprs[i];
        /* `x := ...` declares x from there on: a comprehension before it has its own x */
        if (x->term && x->term->kind == RG_T_CALL && strcmp(x->term->name, "assign") == 0)
            bn_term(s, x->term->items[1]);
        else
            bn_term(s, x->term);
        for (size_t j = 0; j < x->nvars; j++)
            bn_term(s, x->vars[j]);
        if (x->kind == RG_E_SOMEIN) {
            bn_term(s, x->key);
            bn_term(s, x->val);
        }
        bn_term(s, x->coll);
        for (size_t j = 0; j < x->nwith; j++)
            bn_term(s, x->with[j].value);
    }
}

static bool bn_has(const struct scope *s, const char *name)
{
    for (size_t i = 0; i < s->nbn; i++)
        if (strcmp(s->bnames[i], name) == 0)
            return true;
    return false;
}

static int new_slot(struct cctx *c, const char *name)
{
    int s = c->nslots++;
    if ((size_t)s >= c->capnames) {
        c->capnames = c->capnames ? c->capnames * 2 : 32;
        c->slotnames = cl_xrealloc(c->slotnames, c->capnames * sizeof *c->slotnames);
    }
    c->slotnames[s] = name;
    return s;
}

static void scope_add(struct scope *s, const char *name, int slot)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->names = cl_xrealloc(s->names, s->cap * sizeof *s->names);
        s->slots = cl_xrealloc(s->slots, s->cap * sizeof *s->slots);
    }
    s->names[s->n] = name;
    s->slots[s->n] = slot;
    s->n++;
}

static int scope_find(const struct scope *s, const char *name)
{
    for (size_t i = s->n; i-- > 0;)
        if (strcmp(s->names[i], name) == 0)
            return s->slots[i];
    return -1;
}

static int lookup_local(struct cctx *c, const char *name)
{
    for (struct scope *s = c->top; s; s = s->up) {
        int k = scope_find(s, name);
        if (k >= 0)
            return k;
    }
    return scope_find(&c->freevars, name);
}

static struct cl_rg_term *data_ref(struct cctx *c, const char **path, size_t n, const char *last,
                                   int line, int col)
{
    struct cl_rg_term *r = cl_rg_term_new(c->a, RG_T_REF, line, col);
    r->n = n + 1 + (last ? 1 : 0);
    r->items = cl_rg_alloc(c->a, r->n * sizeof *r->items);
    struct cl_rg_term *d = cl_rg_term_new(c->a, RG_T_VAR, line, col);
    d->name = "data";
    d->root = RG_ROOT_DATA;
    r->items[0] = d;
    for (size_t i = 0; i < n; i++) {
        struct cl_rg_term *k = cl_rg_term_new(c->a, RG_T_VALUE, line, col);
        k->val = cl_rg_keep(c->a, cl_rv_strz(path[i]));
        r->items[i + 1] = k;
    }
    if (last) {
        struct cl_rg_term *k = cl_rg_term_new(c->a, RG_T_VALUE, line, col);
        k->val = cl_rg_keep(c->a, cl_rv_strz(last));
        r->items[n + 1] = k;
    }
    return r;
}

static const struct cl_rg_import *find_import(struct cctx *c, const char *name)
{
    if (!c->mod)
        return NULL;
    for (size_t i = 0; i < c->mod->nimports; i++) {
        const struct cl_rg_import *im = &c->mod->imports[i];
        const struct cl_rg_term *p = im->path;
        const char *last;
        if (im->alias) {
            last = im->alias;
        } else if (p->kind == RG_T_VAR) {
            last = p->name;
        } else {
            const struct cl_rg_term *l = p->items[p->n - 1];
            last = l->val->u.str.s;
        }
        const char *root = p->kind == RG_T_VAR ? p->name : p->items[0]->name;
        if (strcmp(root, "future") == 0 || strcmp(root, "rego") == 0)
            continue;
        if (strcmp(last, name) == 0)
            return im;
    }
    return NULL;
}

/* Turns t (a VAR naming a global) into the reference it stands for. */
static bool resolve_global(struct cctx *c, struct cl_rg_term *t)
{
    if (strcmp(t->name, "input") == 0) {
        t->root = RG_ROOT_INPUT;
        return true;
    }
    if (strcmp(t->name, "data") == 0) {
        t->root = RG_ROOT_DATA;
        return true;
    }
    const struct cl_rg_import *im = find_import(c, t->name);
    if (im) {
        const struct cl_rg_term *p = im->path;
        if (p->kind == RG_T_VAR) {
            t->root = strcmp(p->name, "input") == 0 ? RG_ROOT_INPUT : RG_ROOT_DATA;
            t->name = p->name;
            return true;
        }
        int line = t->line, col = t->col;
        *t = *p;
        t->line = line;
        t->col = col;
        struct cl_rg_term **items = cl_rg_alloc(c->a, t->n * sizeof *items);
        memcpy(items, p->items, t->n * sizeof *items);
        struct cl_rg_term *h = cl_rg_term_new(c->a, RG_T_VAR, line, col);
        h->name = p->items[0]->name;
        h->root = strcmp(h->name, "input") == 0 ? RG_ROOT_INPUT : RG_ROOT_DATA;
        items[0] = h;
        t->items = items;
        return true;
    }
    if (c->pkg && cl_rg_node_child(c->pkg, t->name, strlen(t->name))) {
        struct cl_rg_term *r =
            data_ref(c, c->mod->pkg_path, c->mod->npkg, t->name, t->line, t->col);
        *t = *r;
        return true;
    }
    return false;
}

static int resolve_term(struct cctx *c, struct cl_rg_term *t);
static int resolve_body(struct cctx *c, struct cl_rg_body *b);

static const struct cl_rg_node *node_at(const struct cl_rg_node *n, const char **parts,
                                        const size_t *lens, size_t np)
{
    for (size_t i = 0; n && i < np; i++)
        n = cl_rg_node_child(n, parts[i], lens[i]);
    return n;
}

const struct cl_rego_builtin *cl_rg_find_builtin(struct cl_rego *e, const char *name, int *ext)
{
    *ext = 0;
    for (size_t i = 0; i < e->nexts; i++)
        if (strcmp(e->exts[i].name, name) == 0) {
            *ext = (int)i + 1;
            return &e->exts[i].bi;
        }
    return cl_rego_builtin_find(name, strlen(name));
}

/* Resolves a dotted function name to a user function node or a builtin. */
static int resolve_fn_name(struct cctx *c, const char *name, struct cl_rg_node **fn,
                           const struct cl_rego_builtin **bi, int *ext)
{
    const char *parts[64];
    size_t lens[64];
    size_t np = 0;
    const char *s = name;
    while (np < 64) {
        const char *d = strchr(s, '.');
        parts[np] = s;
        lens[np] = d ? (size_t)(d - s) : strlen(s);
        np++;
        if (!d)
            break;
        s = d + 1;
    }
    *fn = NULL;
    *bi = NULL;
    *ext = 0;
    /* local names shadow builtins only when a function of that name exists in the package */
    if (lens[0] == 4 && memcmp(parts[0], "data", 4) == 0) {
        const struct cl_rg_node *n = node_at(c->e->root, parts + 1, lens + 1, np - 1);
        if (n && cl_rg_node_is_fn(n)) {
            *fn = (struct cl_rg_node *)(uintptr_t)n;
            return 0;
        }
    } else {
        char first[256];
        size_t fl = lens[0] < sizeof first - 1 ? lens[0] : sizeof first - 1;
        memcpy(first, parts[0], fl);
        first[fl] = 0;
        const struct cl_rg_import *im = find_import(c, first);
        if (im && im->path->kind == RG_T_REF && im->path->items[0]->root != RG_ROOT_INPUT &&
            strcmp(im->path->items[0]->name, "data") == 0) {
            const struct cl_rg_node *n = c->e->root;
            for (size_t i = 1; n && i < im->path->n; i++)
                n = cl_rg_node_child(n, im->path->items[i]->val->u.str.s,
                                     im->path->items[i]->val->u.str.len);
            if (n)
                n = node_at(n, parts + 1, lens + 1, np - 1);
            if (n && cl_rg_node_is_fn(n)) {
                *fn = (struct cl_rg_node *)(uintptr_t)n;
                return 0;
            }
        }
        if (c->pkg) {
            const struct cl_rg_node *n = node_at(c->pkg, parts, lens, np);
            if (n && cl_rg_node_is_fn(n)) {
                *fn = (struct cl_rg_node *)(uintptr_t)n;
                return 0;
            }
        }
    }
    *bi = cl_rg_find_builtin(c->e, name, ext);
    return *bi ? 0 : -1;
}

static int fn_arity(const struct cl_rg_node *fn)
{
    return cl_rg_node_is_fn(fn) ? (int)cl_rg_node_arity(fn) : -1;
}

static int resolve_call(struct cctx *c, struct cl_rg_term *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (resolve_term(c, t->items[i]) < 0)
            return -1;
    if (strcmp(t->name, "eq") == 0 || strcmp(t->name, "assign") == 0)
        return 0;
    if (resolve_fn_name(c, t->name, &t->fn, &t->bi, &t->ext) < 0)
        return cerr(c->err, "rego_type_error", c->file, t, "undefined function %s", t->name);
    int arity = t->fn ? (int)cl_rg_node_arity(t->fn) : t->bi->arity;
    t->direct = (t->fn || !(t->bi->flags & (CL_REGO_BI_RELATION | CL_REGO_BI_VARIADIC))) &&
                (int)t->n == arity;
    if (t->bi && !t->ext) {
        static const char *const ops[] = {"equal", "neq", "lt", "lte", "gt", "gte"};
        for (size_t i = 0; i < CL_ARRAY_LEN(ops); i++)
            if (strcmp(t->bi->name, ops[i]) == 0)
                t->op = (unsigned char)(RG_OP_EQ + i);
    }
    int ar = t->fn ? fn_arity(t->fn) : t->bi->arity;
    if (t->bi && (t->bi->flags & CL_REGO_BI_VARIADIC))
        return 0;
    if ((int)t->n != ar && (int)t->n != ar + 1)
        return cerr(c->err, "rego_type_error", c->file, t,
                    "%s: arity mismatch: %zu arguments given, %d expected", t->name, t->n, ar);
    return 0;
}

static void flatten_ref(struct cctx *c, struct cl_rg_term *t)
{
    struct cl_rg_term *h = t->items[0];
    if (h->kind != RG_T_REF)
        return;
    size_t n = h->n + t->n - 1;
    struct cl_rg_term **items = cl_rg_alloc(c->a, n * sizeof *items);
    memcpy(items, h->items, h->n * sizeof *items);
    memcpy(items + h->n, t->items + 1, (t->n - 1) * sizeof *items);
    t->items = items;
    t->n = n;
}

static int resolve_var(struct cctx *c, struct cl_rg_term *t)
{
    if (t->root)
        return 0;
    if (t->wildcard) {
        t->slot = new_slot(c, NULL);
        return 0;
    }
    int s = lookup_local(c, t->name);
    if (s >= 0) {
        t->slot = s;
        return 0;
    }
    if (resolve_global(c, t))
        return 0;
    t->slot = new_slot(c, t->name);
    /* A variable belongs to the outermost body that uses it at its own level, so that a
     * comprehension shares it with the rule only when the rule uses it too. */
    struct scope *home = NULL;
    for (struct scope *sc = c->top; sc; sc = sc->up)
        if (bn_has(sc, t->name))
            home = sc;
    scope_add(home ? home : c->top ? c->top : &c->freevars, t->name, t->slot);
    return 0;
}

static int resolve_comp(struct cctx *c, struct cl_rg_term *t)
{
    struct scope s = {.up = c->top};
    bn_body(&s, t->body);
    bn_term(&s, t->key);
    bn_term(&s, t->value);
    c->top = &s;
    int rc = resolve_body(c, t->body);
    if (rc == 0 && t->key)
        rc = resolve_term(c, t->key);
    if (rc == 0 && t->value)
        rc = resolve_term(c, t->value);
    c->top = s.up;
    scope_free(&s);
    return rc;
}

static int resolve_term(struct cctx *c, struct cl_rg_term *t)
{
    switch (t->kind) {
    case RG_T_VALUE:
        return 0;
    case RG_T_VAR:
        return resolve_var(c, t);
    case RG_T_REF:
        if (resolve_term(c, t->items[0]) < 0)
            return -1;
        flatten_ref(c, t);
        for (size_t i = 1; i < t->n; i++)
            if (resolve_term(c, t->items[i]) < 0)
                return -1;
        return 0;
    case RG_T_ARRAY:
    case RG_T_SET:
    case RG_T_OBJECT:
        for (size_t i = 0; i < t->n; i++)
            if (resolve_term(c, t->items[i]) < 0)
                return -1;
        return 0;
    case RG_T_CALL:
        return resolve_call(c, t);
    case RG_T_ACOMP:
    case RG_T_SCOMP:
    case RG_T_OCOMP:
        return resolve_comp(c, t);
    }
    return 0;
}

/* Declares the variables of a pattern (lhs of :=, some-in targets) in the current scope. */
static int declare_pattern(struct cctx *c, struct cl_rg_term *t, bool assign)
{
    switch (t->kind) {
    case RG_T_VAR:
        if (t->wildcard) {
            t->slot = new_slot(c, NULL);
            return 0;
        }
        if (assign && scope_find(c->top, t->name) >= 0)
            return cerr(c->err, "rego_compile_error", c->file, t, "var %s assigned above", t->name);
        if (assign && (strcmp(t->name, "input") == 0 || strcmp(t->name, "data") == 0))
            return cerr(c->err, "rego_compile_error", c->file, t,
                        "variables must not shadow %s (use a different variable name)", t->name);
        t->slot = new_slot(c, t->name);
        t->declared = 1;
        scope_add(c->top, t->name, t->slot);
        return 0;
    case RG_T_ARRAY:
        for (size_t i = 0; i < t->n; i++)
            if (declare_pattern(c, t->items[i], assign) < 0)
                return -1;
        return 0;
    case RG_T_OBJECT:
        for (size_t i = 0; i < t->n; i += 2) {
            if (resolve_term(c, t->items[i]) < 0 || declare_pattern(c, t->items[i + 1], assign) < 0)
                return -1;
        }
        return 0;
    default:
        return resolve_term(c, t);
    }
}

static bool is_call(const struct cl_rg_term *t, const char *name)
{
    return t->kind == RG_T_CALL && strcmp(t->name, name) == 0;
}

static int resolve_with(struct cctx *c, struct cl_rg_with *w)
{
    struct cl_rg_term *t = w->target;
    const char *root = t->kind == RG_T_VAR                                    ? t->name
                       : t->kind == RG_T_REF && t->items[0]->kind == RG_T_VAR ? t->items[0]->name
                                                                              : NULL;
    if (!root)
        return cerr(c->err, "rego_type_error", c->file, t,
                    "with keyword target must reference existing input, data, or a function");
    bool value_target = false;
    if (strcmp(root, "input") == 0) {
        value_target = true;
    } else if (strcmp(root, "data") == 0) {
        /* data path naming a function? */
        struct cl_sbuf nm = {0};
        bool ok = true;
        cl_sbuf_adds(&nm, "data");
        for (size_t i = 1; t->kind == RG_T_REF && i < t->n; i++) {
            if (t->items[i]->kind != RG_T_VALUE || t->items[i]->val->type != CL_RV_STRING) {
                ok = false;
                break;
            }
            cl_sbuf_addc(&nm, '.');
            cl_sbuf_add(&nm, t->items[i]->val->u.str.s, t->items[i]->val->u.str.len);
        }
        struct cl_rg_node *fn = NULL;
        const struct cl_rego_builtin *bi = NULL;
        int ext = 0;
        if (ok && resolve_fn_name(c, nm.s, &fn, &bi, &ext) == 0 && fn)
            w->tfn = fn;
        else
            value_target = true;
        cl_sbuf_free(&nm);
    } else {
        struct cl_sbuf nm = {0};
        bool ok = true;
        cl_sbuf_adds(&nm, root);
        for (size_t i = 1; t->kind == RG_T_REF && i < t->n; i++) {
            if (t->items[i]->kind != RG_T_VALUE || t->items[i]->val->type != CL_RV_STRING) {
                ok = false;
                break;
            }
            cl_sbuf_addc(&nm, '.');
            cl_sbuf_add(&nm, t->items[i]->val->u.str.s, t->items[i]->val->u.str.len);
        }
        if (!ok || resolve_fn_name(c, nm.s, &w->tfn, &w->tbi, &w->text) < 0) {
            /* an imported data/input path */
            const struct cl_rg_import *im = find_import(c, root);
            cl_sbuf_free(&nm);
            if (!im)
                return cerr(
                    c->err, "rego_compile_error", c->file, t,
                    "with keyword target must reference existing input, data, or a function");
            value_target = true;
        } else {
            cl_sbuf_free(&nm);
        }
    }
    if (value_target && resolve_term(c, t) < 0)
        return -1;
    /* replacement: a function name or a value */
    struct cl_rg_term *v = w->value;
    if (w->tfn || w->tbi) {
        const char *vn = NULL;
        struct cl_sbuf nm = {0};
        if (v->kind == RG_T_VAR) {
            vn = v->name;
        } else if (v->kind == RG_T_REF && v->items[0]->kind == RG_T_VAR) {
            bool ok = true;
            cl_sbuf_adds(&nm, v->items[0]->name);
            for (size_t i = 1; i < v->n; i++) {
                if (v->items[i]->kind != RG_T_VALUE || v->items[i]->val->type != CL_RV_STRING) {
                    ok = false;
                    break;
                }
                cl_sbuf_addc(&nm, '.');
                cl_sbuf_add(&nm, v->items[i]->val->u.str.s, v->items[i]->val->u.str.len);
            }
            if (ok)
                vn = nm.s;
        }
        if (vn && lookup_local(c, vn) < 0) {
            struct cl_rg_node *fn = NULL;
            const struct cl_rego_builtin *bi = NULL;
            int ext = 0;
            if (resolve_fn_name(c, vn, &fn, &bi, &ext) == 0) {
                w->vfn = fn;
                w->vbi = bi;
                w->vext = ext;
                cl_sbuf_free(&nm);
                int ta = w->tfn ? fn_arity(w->tfn) : w->tbi->arity;
                int va = fn ? fn_arity(fn) : bi->arity;
                if (ta != va && !(bi && (bi->flags & CL_REGO_BI_VARIADIC)))
                    return cerr(c->err, "rego_type_error", c->file, v, "arity mismatch: %s", vn);
                return 0;
            }
        }
        cl_sbuf_free(&nm);
    }
    return resolve_term(c, v);
}

static int resolve_expr(struct cctx *c, struct cl_rg_expr *x)
{
    for (size_t i = 0; i < x->nwith; i++)
        if (resolve_with(c, &x->with[i]) < 0)
            return -1;
    switch (x->kind) {
    case RG_E_SOME:
        for (size_t i = 0; i < x->nvars; i++)
            if (declare_pattern(c, x->vars[i], false) < 0)
                return -1;
        return 0;
    case RG_E_SOMEIN:
        if (resolve_term(c, x->coll) < 0)
            return -1;
        if (x->key && declare_pattern(c, x->key, false) < 0)
            return -1;
        return declare_pattern(c, x->val, false);
    case RG_E_EVERY: {
        if (resolve_term(c, x->coll) < 0)
            return -1;
        struct scope s = {.up = c->top};
        bn_body(&s, x->body);
        c->top = &s;
        int rc = 0;
        if (x->key)
            rc = declare_pattern(c, x->key, false);
        if (rc == 0)
            rc = declare_pattern(c, x->val, false);
        if (rc == 0)
            rc = resolve_body(c, x->body);
        c->top = s.up;
        scope_free(&s);
        return rc;
    }
    case RG_E_TERM:
        if (is_call(x->term, "assign")) {
            if (resolve_term(c, x->term->items[1]) < 0)
                return -1;
            return declare_pattern(c, x->term->items[0], true);
        }
        return resolve_term(c, x->term);
    }
    return 0;
}

static int resolve_body(struct cctx *c, struct cl_rg_body *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (resolve_expr(c, b->exprs[i]) < 0)
            return -1;
    return 0;
}

/* ---- safety ordering ---- */

struct vset {
    uint64_t *w;
    size_t nw;
};

static void vs_init(struct vset *s, int nslots)
{
    s->nw = (size_t)(nslots + 63) / 64;
    if (!s->nw)
        s->nw = 1;
    s->w = cl_xcalloc(s->nw, sizeof *s->w);
}
static void vs_add(struct vset *s, int i)
{
    if (i >= 0)
        s->w[i / 64] |= 1ULL << (i % 64);
}
static bool vs_has(const struct vset *s, int i)
{
    return i >= 0 && (s->w[i / 64] >> (i % 64)) & 1;
}
static void vs_or(struct vset *d, const struct vset *s)
{
    for (size_t i = 0; i < d->nw; i++)
        d->w[i] |= s->w[i];
}

struct sctx {
    struct cctx *c;
    int *total; /* occurrences per slot in the whole rule */
    int nslots;
};

static void count_term(const struct cl_rg_term *t, int *cnt);
static void count_body(const struct cl_rg_body *b, int *cnt);

static void count_expr(const struct cl_rg_expr *x, int *cnt)
{
    if (x->term)
        count_term(x->term, cnt);
    for (size_t i = 0; i < x->nvars; i++)
        count_term(x->vars[i], cnt);
    if (x->key)
        count_term(x->key, cnt);
    if (x->val)
        count_term(x->val, cnt);
    if (x->coll)
        count_term(x->coll, cnt);
    if (x->body)
        count_body(x->body, cnt);
    for (size_t i = 0; i < x->nwith; i++)
        count_term(x->with[i].value, cnt);
}

static void count_body(const struct cl_rg_body *b, int *cnt)
{
    for (size_t i = 0; i < b->n; i++)
        count_expr(b->exprs[i], cnt);
}

static void count_term(const struct cl_rg_term *t, int *cnt)
{
    if (t->kind == RG_T_VAR) {
        if (!t->root && t->slot >= 0)
            cnt[t->slot]++;
        return;
    }
    for (size_t i = 0; i < t->n; i++)
        count_term(t->items[i], cnt);
    if (t->key)
        count_term(t->key, cnt);
    if (t->value)
        count_term(t->value, cnt);
    if (t->body)
        count_body(t->body, cnt);
}

/* Variables of a nested construct that also occur outside it. */
static void outer_vars(struct sctx *s, const int *inside, struct vset *in)
{
    for (int i = 0; i < s->nslots; i++)
        if (inside[i] && s->total[i] > inside[i])
            vs_add(in, i);
}

static void classify(struct sctx *s, const struct cl_rg_term *t, bool out_pos, struct vset *in,
                     struct vset *out)
{
    switch (t->kind) {
    case RG_T_VALUE:
        return;
    case RG_T_VAR:
        if (t->root || t->slot < 0)
            return;
        vs_add(out_pos ? out : in, t->slot);
        return;
    case RG_T_REF:
        classify(s, t->items[0], false, in, out);
        for (size_t i = 1; i < t->n; i++) {
            /* a variable or a composite pattern ([1, x]) as a key is bound by iteration */
            unsigned char kk = t->items[i]->kind;
            classify(s, t->items[i], kk == RG_T_VAR || kk == RG_T_ARRAY || kk == RG_T_OBJECT, in,
                     out);
        }
        return;
    case RG_T_ARRAY:
    case RG_T_SET:
        for (size_t i = 0; i < t->n; i++)
            classify(s, t->items[i], out_pos, in, out);
        return;
    case RG_T_OBJECT:
        for (size_t i = 0; i < t->n; i++)
            classify(s, t->items[i], out_pos && (i % 2 == 1), in, out);
        return;
    case RG_T_CALL:
        for (size_t i = 0; i < t->n; i++)
            classify(s, t->items[i], false, in, out);
        return;
    default: {
        int *inside = cl_xcalloc((size_t)s->nslots + 1, sizeof(int));
        count_term(t, inside);
        outer_vars(s, inside, in);
        free(inside);
        return;
    }
    }
}

static int schedule_body(struct sctx *s, struct cl_rg_body *b, struct vset *bound);

static int call_arity(const struct cl_rg_term *t)
{
    if (t->fn)
        return fn_arity(t->fn);
    if (t->bi && !(t->bi->flags & CL_REGO_BI_VARIADIC))
        return t->bi->arity;
    return -1;
}

static void expr_sets(struct sctx *s, const struct cl_rg_expr *x, struct vset *in, struct vset *out)
{
    if (x->negated) {
        int *inside = cl_xcalloc((size_t)s->nslots + 1, sizeof(int));
        count_expr(x, inside);
        outer_vars(s, inside, in);
        free(inside);
        return;
    }
    for (size_t i = 0; i < x->nwith; i++)
        classify(s, x->with[i].value, false, in, out);
    switch (x->kind) {
    case RG_E_SOME:
        return;
    case RG_E_SOMEIN:
        classify(s, x->coll, false, in, out);
        if (x->key)
            classify(s, x->key, true, in, out);
        classify(s, x->val, true, in, out);
        return;
    case RG_E_EVERY: {
        classify(s, x->coll, false, in, out);
        int *inside = cl_xcalloc((size_t)s->nslots + 1, sizeof(int));
        count_body(x->body, inside);
        if (x->key)
            count_term(x->key, inside);
        count_term(x->val, inside);
        outer_vars(s, inside, in);
        free(inside);
        return;
    }
    case RG_E_TERM: {
        const struct cl_rg_term *t = x->term;
        if (is_call(t, "eq") || is_call(t, "assign")) {
            classify(s, t->items[0], true, in, out);
            classify(s, t->items[1], true, in, out);
        } else if (t->kind == RG_T_CALL && call_arity(t) >= 0 && (int)t->n == call_arity(t) + 1) {
            for (size_t i = 0; i + 1 < t->n; i++)
                classify(s, t->items[i], false, in, out);
            classify(s, t->items[t->n - 1], true, in, out);
        } else {
            classify(s, t, false, in, out);
        }
        return;
    }
    }
}

/* Schedules the bodies nested in a term (comprehensions) given what is bound. */
static int schedule_nested_term(struct sctx *s, struct cl_rg_term *t, struct vset *bound)
{
    if (t->kind == RG_T_ACOMP || t->kind == RG_T_SCOMP || t->kind == RG_T_OCOMP) {
        struct vset b2;
        vs_init(&b2, s->nslots);
        vs_or(&b2, bound);
        int rc = schedule_body(s, t->body, &b2);
        free(b2.w);
        return rc;
    }
    for (size_t i = 0; i < t->n; i++)
        if (schedule_nested_term(s, t->items[i], bound) < 0)
            return -1;
    return 0;
}

static int schedule_nested(struct sctx *s, struct cl_rg_expr *x, struct vset *bound)
{
    if (x->term && schedule_nested_term(s, x->term, bound) < 0)
        return -1;
    if (x->coll && schedule_nested_term(s, x->coll, bound) < 0)
        return -1;
    for (size_t i = 0; i < x->nwith; i++)
        if (schedule_nested_term(s, x->with[i].value, bound) < 0)
            return -1;
    if (x->kind == RG_E_EVERY) {
        struct vset b2;
        vs_init(&b2, s->nslots);
        vs_or(&b2, bound);
        if (x->key)
            classify(s, x->key, true, &b2, &b2);
        classify(s, x->val, true, &b2, &b2);
        int rc = schedule_body(s, x->body, &b2);
        free(b2.w);
        return rc;
    }
    return 0;
}

static int schedule_body(struct sctx *s, struct cl_rg_body *b, struct vset *bound)
{
    size_t n = b->n;
    if (n == 0)
        return 0;
    struct vset *ins = cl_xcalloc(n, sizeof *ins), *outs = cl_xcalloc(n, sizeof *outs);
    struct vset binders;
    vs_init(&binders, s->nslots);
    for (size_t i = 0; i < n; i++) {
        vs_init(&ins[i], s->nslots);
        vs_init(&outs[i], s->nslots);
        expr_sets(s, b->exprs[i], &ins[i], &outs[i]);
        vs_or(&binders, &outs[i]);
    }
    struct cl_rg_expr **order = cl_xmalloc(n * sizeof *order);
    bool *done = cl_xcalloc(n, sizeof *done);
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++) {
            if (done[i])
                continue;
            bool ok = true;
            for (size_t w = 0; w < ins[i].nw && ok; w++)
                if (ins[i].w[w] & ~bound->w[w] & ~outs[i].w[w])
                    ok = false;
            if (ok)
                pick = i;
        }
        if (pick == n) {
            /* nothing is safe: report a variable nobody can bind, else keep source order */
            for (size_t i = 0; i < n && rc == 0; i++) {
                if (done[i])
                    continue;
                for (int v = 0; v < s->nslots; v++) {
                    if (vs_has(&ins[i], v) && !vs_has(bound, v) && !vs_has(&binders, v)) {
                        const char *nm = s->c->slotnames[v] ? s->c->slotnames[v] : "_";
                        struct cl_rg_term at = {.line = b->exprs[i]->line, .col = b->exprs[i]->col};
                        rc = cerr(s->c->err, "rego_unsafe_var_error", s->c->file, &at,
                                  "var %s is unsafe", nm);
                        break;
                    }
                }
            }
            for (size_t i = 0; i < n && pick == n; i++)
                if (!done[i])
                    pick = i;
            if (rc)
                break;
        }
        done[pick] = true;
        order[k] = b->exprs[pick];
        if (schedule_nested(s, b->exprs[pick], bound) < 0) {
            rc = -1;
            break;
        }
        if (!b->exprs[pick]->negated) {
            vs_or(bound, &outs[pick]);
            vs_or(bound, &ins[pick]);
        }
    }
    if (rc == 0)
        memcpy(b->exprs, order, n * sizeof *order);
    for (size_t i = 0; i < n; i++) {
        free(ins[i].w);
        free(outs[i].w);
    }
    free(ins);
    free(outs);
    free(binders.w);
    free(order);
    free(done);
    return rc;
}

static int check_head_safe(struct sctx *s, const struct cl_rg_term *t, const struct vset *bound)
{
    struct vset in, out;
    vs_init(&in, s->nslots);
    vs_init(&out, s->nslots);
    classify(s, t, false, &in, &out);
    int rc = 0;
    for (int v = 0; v < s->nslots; v++) {
        if (vs_has(&in, v) && !vs_has(&out, v) && !vs_has(bound, v)) {
            rc = cerr(s->c->err, "rego_unsafe_var_error", s->c->file, t, "var %s is unsafe",
                      s->c->slotnames[v] ? s->c->slotnames[v] : "_");
            break;
        }
    }
    free(in.w);
    free(out.w);
    return rc;
}

/* ---- print() without a listener ---- */

static void strip_prints_body(struct cl_rg_body *b);

static void strip_prints_term(struct cl_rg_term *t)
{
    if (!t)
        return;
    if (t->body)
        strip_prints_body(t->body);
    for (size_t i = 0; i < t->n; i++)
        strip_prints_term(t->items[i]);
    strip_prints_term(t->key);
    strip_prints_term(t->value);
}

/* print() is always true and changes nothing: when the engine has no print hook its calls are
 * dropped from bodies, so they cost nothing at evaluation time. */
static void strip_prints_body(struct cl_rg_body *b)
{
    size_t o = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct cl_rg_expr *x = b->exprs[i];
        if (x->kind == RG_E_TERM && !x->negated && !x->nwith && x->term->kind == RG_T_CALL &&
            x->term->bi && (x->term->bi->flags & CL_REGO_BI_VARIADIC) &&
            strcmp(x->term->bi->name, "print") == 0 && !x->term->ext)
            continue;
        strip_prints_term(x->term);
        strip_prints_term(x->coll);
        for (size_t j = 0; j < x->nwith; j++)
            strip_prints_term(x->with[j].value);
        if (x->body)
            strip_prints_body(x->body);
        b->exprs[o++] = x;
    }
    b->n = o;
}

/* ---- rules ---- */

/* A function argument that is a call or a comprehension (a template string, `f(x + 1)`) is not
 * a pattern: it becomes a fresh variable unified with the term at the end of the body, so the
 * body can bind the term's variables first. */
static void hoist_args(struct cl_rego *e, struct cl_rg_rule *r)
{
    for (size_t i = 0; i < r->nargs; i++) {
        struct cl_rg_term *t = r->args[i];
        if (t->kind != RG_T_CALL && t->kind != RG_T_ACOMP && t->kind != RG_T_SCOMP &&
            t->kind != RG_T_OCOMP)
            continue;
        char nm[32];
        snprintf(nm, sizeof nm, "$arg%zu", i);
        struct cl_rg_term *v = cl_rg_term_new(&e->arena, RG_T_VAR, t->line, t->col);
        v->name = cl_rg_strndup(&e->arena, nm, strlen(nm));
        struct cl_rg_term *v2 = cl_rg_term_new(&e->arena, RG_T_VAR, t->line, t->col);
        v2->name = v->name;
        struct cl_rg_term *eq = cl_rg_term_new(&e->arena, RG_T_CALL, t->line, t->col);
        eq->name = "eq";
        eq->n = 2;
        eq->items = cl_rg_alloc(&e->arena, 2 * sizeof *eq->items);
        eq->items[0] = v2;
        eq->items[1] = t;
        struct cl_rg_expr *x = cl_rg_alloc(&e->arena, sizeof *x);
        x->kind = RG_E_TERM;
        x->line = t->line;
        x->col = t->col;
        x->term = eq;
        struct cl_rg_expr **ex = cl_rg_alloc(&e->arena, (r->body->n + 1) * sizeof *ex);
        if (r->body->n)
            memcpy(ex, r->body->exprs, r->body->n * sizeof *ex);
        ex[r->body->n] = x;
        r->body->exprs = ex;
        r->body->n++;
        r->args[i] = v;
    }
}

static int compile_rule(struct cl_rego *e, struct cl_rg_rule *r, struct cl_rg_node *pkg,
                        struct cl_rg_error *err)
{
    struct cctx c = {
        .e = e, .a = &e->arena, .mod = r->mod, .pkg = pkg, .err = err, .file = r->mod->file};
    if (r->kind == RG_R_FUNC)
        hoist_args(e, r);
    struct scope top = {0};
    c.top = &top;
    /* Only the body's own level decides which variables comprehensions share: head variables
     * are bound by the body, and one that only a comprehension binds is unsafe anyway. */
    bn_body(&top, r->body);
    int rc = 0;
    for (size_t i = 0; i < r->nargs && rc == 0; i++)
        rc = declare_pattern(&c, r->args[i], false);
    if (rc == 0)
        rc = resolve_body(&c, r->body);
    for (size_t i = r->nground; i < r->nhead && rc == 0; i++)
        rc = resolve_term(&c, r->head[i]);
    if (rc == 0 && r->key)
        rc = resolve_term(&c, r->key);
    if (rc == 0 && r->value)
        rc = resolve_term(&c, r->value);
    r->nslots = c.nslots;
    if (rc == 0) {
        struct sctx s = {.c = &c, .nslots = c.nslots};
        s.total = cl_xcalloc((size_t)c.nslots + 1, sizeof(int));
        for (size_t i = 0; i < r->nargs; i++)
            count_term(r->args[i], s.total);
        count_body(r->body, s.total);
        for (size_t i = r->nground; i < r->nhead; i++)
            count_term(r->head[i], s.total);
        if (r->key)
            count_term(r->key, s.total);
        if (r->value)
            count_term(r->value, s.total);
        struct vset bound;
        vs_init(&bound, c.nslots);
        for (size_t i = 0; i < r->nargs; i++)
            classify(&s, r->args[i], true, &bound, &bound);
        rc = schedule_body(&s, r->body, &bound);
        for (size_t i = r->nground; i < r->nhead && rc == 0; i++)
            rc = check_head_safe(&s, r->head[i], &bound);
        if (rc == 0 && r->key)
            rc = check_head_safe(&s, r->key, &bound);
        if (rc == 0 && r->value) {
            schedule_nested_term(&s, r->value, &bound);
            rc = check_head_safe(&s, r->value, &bound);
        }
        free(bound.w);
        free(s.total);
    }
    if (rc == 0 && !e->opts.print && !e->opts.prints && !e->opts.keep_prints) {
        strip_prints_body(r->body);
        strip_prints_term(r->value);
        strip_prints_term(r->key);
    }
    scope_free(&top);
    scope_free(&c.freevars);
    free(c.slotnames);
    return rc;
}

static struct cl_rg_node *pkg_node(struct cl_rego *e, struct cl_rg_module *m)
{
    struct cl_rg_node *n = e->root;
    for (size_t i = 0; i < m->npkg; i++)
        n = node_get(e, n, m->pkg_path[i], strlen(m->pkg_path[i]));
    return n;
}

static void append_rule(struct cl_rg_rule **list, struct cl_rg_rule *r)
{
    while (*list)
        list = &(*list)->next_in_node;
    *list = r;
}

/* The constant value of a definition and its else chain, or NULL when it varies; `true_v` is
 * the value of a definition without one. */
static const struct cl_rv *chain_const(const struct cl_rg_rule *r, const struct cl_rv *true_v)
{
    const struct cl_rv *v = NULL;
    for (; r; r = r->els) {
        const struct cl_rv *x = !r->value                      ? true_v
                                : r->value->kind == RG_T_VALUE ? r->value->val
                                                               : NULL;
        if (!x || (v && !cl_rv_equal(v, x)))
            return NULL;
        v = x;
    }
    return v;
}

/* OPA's early exit: when every definition yields the same constant, the first success decides
 * and no conflict is possible, so the others need not run. */
static bool defs_const(const struct cl_rg_rule *list, bool complete_only)
{
    const struct cl_rv *t = cl_rv_bool(true), *v = NULL;
    bool any = false;
    for (const struct cl_rg_rule *r = list; r; r = r->next_in_node) {
        if (complete_only && !(r->kind == RG_R_VALUE && r->nground == r->nhead))
            return false;
        const struct cl_rv *x = chain_const(r, t);
        if (!x || (v && !cl_rv_equal(v, x)))
            return false;
        v = x;
        any = true;
    }
    return any;
}

static void mark_const(struct cl_rg_node *n)
{
    n->const_rules = defs_const(n->rules, true);
    n->const_funcs = defs_const(n->funcs, false);
    for (size_t i = 0; i < n->nkids; i++)
        mark_const(n->kids[i]);
}

/* ---- rules of different kinds for one path (OPA's rego_type_error) ----
 * One path holds one kind of document: a complete value, a set, an object built from rules
 * with variable keys, or a function. Mixing them, or defining rules beneath a path whose value
 * a complete rule or a set rule gives whole, is refused at compile time: nothing is silently
 * dropped at evaluation. */

static void node_path(struct cl_sbuf *b, const struct cl_rg_node *n);

static void node_desc_rules(struct cl_sbuf *b, const struct cl_rg_node *n, size_t *count)
{
    for (size_t i = 0; i < n->nkids; i++) {
        const struct cl_rg_node *k = n->kids[i];
        if (k->rules || k->funcs || k->deflt || k->fdeflt) {
            if (*count < 4) {
                if (*count)
                    cl_sbuf_adds(b, ", ");
                node_path(b, k);
            } else if (*count == 4) {
                cl_sbuf_adds(b, ", ...");
            }
            (*count)++;
        }
        node_desc_rules(b, k, count);
    }
}

static int check_kinds(const struct cl_rg_node *n, struct cl_rg_error *err)
{
    bool set_whole = false, set_keyed = false, val_whole = n->deflt != NULL, val_keyed = false;
    const struct cl_rg_rule *first = n->rules ? n->rules : n->deflt;
    for (const struct cl_rg_rule *r = n->rules; r; r = r->next_in_node) {
        bool whole = r->nground == r->nhead;
        if (r->kind == RG_R_SET)
            *(whole ? &set_whole : &set_keyed) = true;
        else
            *(whole ? &val_whole : &val_keyed) = true;
    }
    int kinds = set_whole + set_keyed + val_whole + val_keyed;
    if (first && (kinds > 1 || n->funcs || n->fdeflt)) {
        struct cl_sbuf b = {0};
        node_path(&b, n);
        struct cl_rg_term at = {.line = first->line, .col = first->col};
        int rc =
            cerr(err, "rego_type_error", first->mod->file, &at, "conflicting rules %s found", b.s);
        cl_sbuf_free(&b);
        return rc;
    }
    if (first && (set_whole || val_whole)) {
        struct cl_sbuf kids = {0};
        size_t count = 0;
        node_desc_rules(&kids, n, &count);
        if (count) {
            struct cl_sbuf b = {0};
            node_path(&b, n);
            struct cl_rg_term at = {.line = first->line, .col = first->col};
            int rc = cerr(err, "rego_type_error", first->mod->file, &at,
                          "rule %s conflicts with [%s]", b.s, kids.s);
            cl_sbuf_free(&b);
            cl_sbuf_free(&kids);
            return rc;
        }
        cl_sbuf_free(&kids);
    }
    for (size_t i = 0; i < n->nkids; i++)
        if (check_kinds(n->kids[i], err) < 0)
            return -1;
    return 0;
}

/* ---- recursion (OPA's rego_recursion_error, found at compile time) ----
 * A graph with two vertices per rule-tree node: R(n), the rules and functions at n, and S(n),
 * everything beneath n (S(n) -> R(n) and S(n) -> S(child)). A rule has an edge for every call
 * of a function and every reference into data that reaches rules; a reference that stops
 * above rules depends on S of where it stops. A cycle is an error before anything runs, as in
 * OPA, not a depth limit hit at evaluation time. The graph has one edge per distinct
 * dependency and the tree's own edges, so the check is linear. A variable key followed by a
 * constant one is matched child by child (OPA's precision: `data[x].allow` does not depend on
 * a rule without `allow`); beyond CL_REGO_MAX_REF_STEPS nodes for one reference, or
 * CL_REGO_MAX_DEP_STEPS for all, the reference depends on everything beneath, which can only
 * report more recursion, never less. */
#define CL_REGO_MAX_DEP_STEPS 4000000 /* tree nodes matched for all references together */
#define CL_REGO_MAX_REF_STEPS 4096    /* ... for one reference */

struct dgraph {
    struct cl_rg_node **nodes; /* by node id */
    int nn;                    /* nodes: R(n) = id, S(n) = nn + id */
    int **adj;                 /* edges by vertex */
    int *nadj, *capadj;
    int *stamp; /* last vertex + 1 that added an edge to this one (dedupe) */
    int from;   /* vertex of the rules being walked */
    long steps;
};

static bool node_has_rules(const struct cl_rg_node *n)
{
    return n->rules || n->funcs || n->deflt || n->fdeflt;
}

static void dg_add(struct dgraph *g, int to)
{
    int f = g->from;
    if (g->stamp[to] == f + 1)
        return;
    g->stamp[to] = f + 1;
    if (g->nadj[f] == g->capadj[f]) {
        g->capadj[f] = g->capadj[f] ? g->capadj[f] * 2 : 4;
        g->adj[f] = cl_xrealloc(g->adj[f], (size_t)g->capadj[f] * sizeof **g->adj);
    }
    g->adj[f][g->nadj[f]++] = to;
}

static void dg_edge(struct dgraph *g, const struct cl_rg_node *to)
{
    dg_add(g, to->id);
}
static void dg_subtree(struct dgraph *g, const struct cl_rg_node *n)
{
    dg_add(g, g->nn + n->id);
}

static void dg_body(struct dgraph *g, const struct cl_rg_node *root, const struct cl_rg_body *b);

/* The rules a data reference may reach from node n, keys from items[i] on: a constant string
 * key follows one child, another constant reaches no rule, anything else may be any child
 * (and the keys after it still have to match, as OPA's dependency graph does). */
static bool dg_ground_from(const struct cl_rg_term *t, size_t i)
{
    for (; i < t->n; i++)
        if (t->items[i]->kind == RG_T_VALUE)
            return true;
    return false;
}

static void dg_ref(struct dgraph *g, const struct cl_rg_node *n, const struct cl_rg_term *t,
                   size_t i, long *budget)
{
    if (node_has_rules(n) || i == t->n) {
        dg_subtree(g, n);
        return;
    }
    const struct cl_rg_term *k = t->items[i];
    if (k->kind == RG_T_VALUE) {
        if (k->val->type != CL_RV_STRING)
            return;
        const struct cl_rg_node *c = cl_rg_node_child(n, k->val->u.str.s, k->val->u.str.len);
        if (c)
            dg_ref(g, c, t, i + 1, budget);
        return;
    }
    /* a variable key: when no constant follows, or the matching would cost more than this
     * reference's share, everything beneath may be reached (a safe over-approximation) */
    if (!dg_ground_from(t, i + 1) || (*budget -= (long)n->nkids) < 0 ||
        (g->steps += (long)n->nkids) > CL_REGO_MAX_DEP_STEPS) {
        dg_subtree(g, n);
        return;
    }
    for (size_t j = 0; j < n->nkids; j++)
        dg_ref(g, n->kids[j], t, i + 1, budget);
}

static void dg_term(struct dgraph *g, const struct cl_rg_node *root, const struct cl_rg_term *t)
{
    if (!t)
        return;
    switch (t->kind) {
    case RG_T_VALUE:
        return;
    case RG_T_VAR:
        if (t->root == RG_ROOT_DATA)
            dg_subtree(g, root);
        return;
    case RG_T_CALL:
        if (t->fn)
            dg_edge(g, t->fn);
        break;
    case RG_T_REF: {
        const struct cl_rg_term *h = t->items[0];
        if (h->kind == RG_T_VAR && h->root == RG_ROOT_DATA) {
            long budget = CL_REGO_MAX_REF_STEPS;
            dg_ref(g, root, t, 1, &budget);
            for (size_t j = 1; j < t->n; j++)
                dg_term(g, root, t->items[j]);
            return;
        }
        break;
    }
    default:
        break;
    }
    for (size_t i = 0; i < t->n; i++)
        dg_term(g, root, t->items[i]);
    dg_term(g, root, t->key);
    dg_term(g, root, t->value);
    dg_body(g, root, t->body);
}

static void dg_body(struct dgraph *g, const struct cl_rg_node *root, const struct cl_rg_body *b)
{
    for (size_t i = 0; b && i < b->n; i++) {
        const struct cl_rg_expr *x = b->exprs[i];
        dg_term(g, root, x->term);
        for (size_t j = 0; j < x->nvars; j++)
            dg_term(g, root, x->vars[j]);
        dg_term(g, root, x->key);
        dg_term(g, root, x->val);
        dg_term(g, root, x->coll);
        dg_body(g, root, x->body);
        for (size_t j = 0; j < x->nwith; j++) {
            dg_term(g, root, x->with[j].value);
            if (x->with[j].vfn)
                dg_edge(g, x->with[j].vfn);
        }
    }
}

static void dg_rule(struct dgraph *g, const struct cl_rg_node *root, const struct cl_rg_rule *r)
{
    for (; r; r = r->els) {
        for (size_t i = 0; i < r->nhead; i++)
            dg_term(g, root, r->head[i]);
        for (size_t i = 0; i < r->nargs; i++)
            dg_term(g, root, r->args[i]);
        dg_term(g, root, r->key);
        dg_term(g, root, r->value);
        dg_body(g, root, r->body);
    }
}

static void dg_collect(struct dgraph *g, const struct cl_rg_node *root, struct cl_rg_node *n)
{
    g->nodes[n->id] = n;
    g->from = n->id;
    const struct cl_rg_rule *lists[] = {n->rules, n->funcs, n->deflt, n->fdeflt};
    for (size_t l = 0; l < 4; l++)
        for (const struct cl_rg_rule *r = lists[l]; r; r = l < 2 ? r->next_in_node : NULL)
            dg_rule(g, root, r);
    g->from = g->nn + n->id; /* S(n): its own rules and everything beneath */
    if (node_has_rules(n))
        dg_add(g, n->id);
    for (size_t i = 0; i < n->nkids; i++)
        dg_add(g, g->nn + n->kids[i]->id);
    for (size_t i = 0; i < n->nkids; i++)
        dg_collect(g, root, n->kids[i]);
}

static void node_path(struct cl_sbuf *b, const struct cl_rg_node *n)
{
    if (n->parent) {
        node_path(b, n->parent);
        cl_sbuf_addc(b, '.');
    }
    cl_sbuf_adds(b, n->name);
}

static const struct cl_rg_rule *node_first_rule(const struct cl_rg_node *n)
{
    return n->rules ? n->rules : n->funcs ? n->funcs : n->deflt ? n->deflt : n->fdeflt;
}

static int check_recursion(struct cl_rego *e, struct cl_rg_error *err)
{
    int nn = e->nnodes, nv = 2 * nn;
    struct dgraph g = {.nodes = cl_xcalloc((size_t)nn, sizeof *g.nodes),
                       .nn = nn,
                       .adj = cl_xcalloc((size_t)nv, sizeof *g.adj),
                       .nadj = cl_xcalloc((size_t)nv, sizeof(int)),
                       .capadj = cl_xcalloc((size_t)nv, sizeof(int)),
                       .stamp = cl_xcalloc((size_t)nv, sizeof(int))};
    dg_collect(&g, e->root, e->root);
    int rc = 0;
    /* iterative depth-first search: 0 new, 1 on the path, 2 done */
    unsigned char *state = cl_xcalloc((size_t)nv, 1);
    int *stack = cl_xcalloc((size_t)nv, sizeof(int)), *edge = cl_xcalloc((size_t)nv, sizeof(int));
    for (int s0 = 0; s0 < nn && rc == 0; s0++) {
        if (state[s0] || !g.nodes[s0] || !node_has_rules(g.nodes[s0]))
            continue;
        int sp = 0;
        stack[sp] = s0;
        edge[sp] = 0;
        state[s0] = 1;
        while (sp >= 0 && rc == 0) {
            int v = stack[sp];
            if (edge[sp] == g.nadj[v]) {
                state[v] = 2;
                sp--;
                continue;
            }
            int w = g.adj[v][edge[sp]++];
            if (state[w] == 0) {
                state[w] = 1;
                stack[++sp] = w;
                edge[sp] = 0;
                continue;
            }
            if (state[w] != 1)
                continue;
            /* the cycle: the path from w to the top of the stack, then w again; only rule
             * vertices are named (S vertices only lead down the tree, so one is on it) */
            int at = sp;
            while (stack[at] != w)
                at--;
            int first = -1;
            struct cl_sbuf b = {0};
            for (int i = at; i <= sp; i++) {
                if (stack[i] >= nn)
                    continue;
                if (first < 0)
                    first = stack[i];
                node_path(&b, g.nodes[stack[i]]);
                cl_sbuf_adds(&b, " -> ");
            }
            if (first < 0) /* cannot happen: S vertices alone form no cycle */
                first = w < nn ? w : w - nn;
            node_path(&b, g.nodes[first]);
            struct cl_sbuf name = {0};
            node_path(&name, g.nodes[first]);
            const struct cl_rg_rule *r = node_first_rule(g.nodes[first]);
            struct cl_rg_term loc = {.line = r ? r->line : 0, .col = r ? r->col : 0};
            rc = cerr(err, "rego_recursion_error", r ? r->mod->file : "policy", &loc,
                      "rule %s is recursive: %s", name.s, b.s);
            cl_sbuf_free(&b);
            cl_sbuf_free(&name);
        }
    }
    for (int i = 0; i < nv; i++)
        free(g.adj[i]);
    free(g.adj);
    free(g.nadj);
    free(g.capadj);
    free(g.stamp);
    free(g.nodes);
    free(state);
    free(stack);
    free(edge);
    return rc;
}

int cl_rg_compile(struct cl_rego *e, struct cl_rg_error *err)
{
    memset(err, 0, sizeof *err);
    if (e->compiled)
        return 0;
    e->root = cl_rg_alloc(&e->arena, sizeof *e->root);
    e->root->name = "data";
    e->root->key = cl_rg_keep(&e->arena, cl_rv_strz("data"));
    e->nnodes = 1;
    e->root->id = 0;
    /* tree */
    for (struct cl_rg_module *m = e->mods; m; m = m->next) {
        struct cl_rg_node *pkg = pkg_node(e, m);
        for (size_t i = 0; i < m->nrules; i++) {
            struct cl_rg_rule *r = m->rules[i];
            struct cl_rg_node *n = pkg;
            size_t lim = r->kind == RG_R_FUNC ? r->nhead : r->nground;
            for (size_t k = 0; k < lim; k++) {
                const struct cl_rg_term *h = r->head[k];
                if (k == 0)
                    n = node_get(e, n, h->name, strlen(h->name));
                else
                    n = node_get(e, n, h->val->u.str.s, h->val->u.str.len);
            }
            for (struct cl_rg_rule *x = r; x; x = x->els)
                x->node = n;
            if (r->is_default && r->kind == RG_R_FUNC) {
                if (n->fdeflt || (n->funcs && n->funcs->nargs != r->nargs)) {
                    struct cl_rg_term at = {.line = r->line, .col = r->col};
                    return cerr(err, "rego_type_error", m->file, &at,
                                "multiple default rules %s found", n->name);
                }
                n->fdeflt = r;
                continue;
            }
            if (r->is_default) {
                if (n->deflt) {
                    struct cl_rg_term at = {.line = r->line, .col = r->col};
                    return cerr(err, "rego_type_error", m->file, &at,
                                "multiple default rules %s found", n->name);
                }
                n->deflt = r;
                continue;
            }
            /* a compile that failed earlier may have linked r already: the tree is rebuilt
             * from nothing, so its list links are too */
            r->next_in_node = NULL;
            if (r->kind == RG_R_FUNC) {
                if (cl_rg_node_is_fn(n) && cl_rg_node_arity(n) != r->nargs) {
                    struct cl_rg_term at = {.line = r->line, .col = r->col};
                    return cerr(err, "rego_type_error", m->file, &at,
                                "conflicting rules %s found (arity)", n->name);
                }
                append_rule(&n->funcs, r);
            } else {
                append_rule(&n->rules, r);
                if (r->nground < r->nhead)
                    n->dynamic = true;
                if (r->kind == RG_R_SET)
                    n->has_set = true;
            }
        }
    }
    if (check_kinds(e->root, err) < 0)
        return -1;
    /* names */
    for (struct cl_rg_module *m = e->mods; m; m = m->next) {
        struct cl_rg_node *pkg = pkg_node(e, m);
        for (size_t i = 0; i < m->nrules; i++) {
            for (struct cl_rg_rule *r = m->rules[i]; r; r = r->els) {
                if (compile_rule(e, r, pkg, err) < 0)
                    return -1;
                if (r->is_default && r->value && r->value->kind != RG_T_VALUE) {
                    /* default values must be constant (after folding) */
                    unsigned char k = r->value->kind;
                    bool ok = k == RG_T_ARRAY || k == RG_T_OBJECT || k == RG_T_SET ||
                              k == RG_T_ACOMP || k == RG_T_SCOMP || k == RG_T_OCOMP;
                    if (!ok)
                        return cerr(err, "rego_type_error", m->file, r->value,
                                    "default rule value must be a constant");
                }
            }
        }
    }
    if (check_recursion(e, err) < 0)
        return -1;
    mark_const(e->root);
    e->compiled = true;
    return 0;
}

int cl_rg_compile_query(struct cl_rego *e, struct cl_rg_query *q, const char *text, size_t len,
                        struct cl_rg_error *err)
{
    memset(err, 0, sizeof *err);
    q->body = cl_rg_parse_query(&q->arena, text, len, err);
    if (!q->body)
        return -1;
    struct cctx c = {.e = e, .a = &q->arena, .err = err, .file = "query"};
    struct scope top = {0};
    c.top = &top;
    bn_body(&top, q->body);
    int rc = resolve_body(&c, q->body);
    if (rc == 0) {
        struct sctx s = {.c = &c, .nslots = c.nslots};
        s.total = cl_xcalloc((size_t)c.nslots + 1, sizeof(int));
        count_body(q->body, s.total);
        struct vset bound;
        vs_init(&bound, c.nslots);
        rc = schedule_body(&s, q->body, &bound);
        free(bound.w);
        free(s.total);
    }
    q->nslots = c.nslots;
    q->names = cl_rg_alloc(&q->arena, ((size_t)c.nslots + 1) * sizeof *q->names);
    for (int i = 0; i < c.nslots; i++)
        q->names[i] = c.slotnames[i];
    scope_free(&top);
    scope_free(&c.freevars);
    free(c.slotnames);
    return rc;
}
