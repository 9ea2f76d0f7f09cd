/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public API of the Rego engine: engine lifetime, modules, data, extension builtins,
 * compilation and query evaluation with results as JSON; and RFC 6902 JSON Patch for the
 * policy state of the Kata agent.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rego/engine.h"
#include "rego/rv.h"
#include "rego/sbuf.h"
#include "json/json.h"

struct cl_rego *cl_rego_new(const struct cl_rego_opts *opts)
{
    struct cl_rego *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (opts)
        e->opts = *opts;
    e->data = cl_rv_object();
    cl_rv_freeze(e->data);
    return e;
}

static void release_data(struct cl_rego *e)
{
    cl_rv_release_frozen(&e->data, 1);
    e->data = NULL;
}

void cl_rego_free(struct cl_rego *e)
{
    if (!e)
        return;
    cl_rego_prints_reset(e->opts.prints); /* it may hold constants and data of this engine */
    release_data(e);
    cl_rg_arena_free(&e->arena);
    for (size_t i = 0; i < e->nexts; i++)
        free(e->exts[i].name);
    free(e->exts);
    free(e);
}

void cl_auto_cl_rego(struct cl_rego **p)
{
    cl_rego_free(*p);
    *p = NULL;
}

static int set_rg_err(struct cl_err *err, int code, const struct cl_rg_error *re)
{
    /* OPA's shapes: "file:line: eval_x_error: msg" at run time, with a column at compile time */
    if (re->file && re->line && !re->col)
        return cl_err_stage(err, code, "policy", "%s:%d: %s: %s", re->file, re->line,
                            re->code ? re->code : "rego_error", re->msg);
    if (re->file && re->line)
        return cl_err_stage(err, code, "policy", "%s:%d:%d: %s: %s", re->file, re->line, re->col,
                            re->code ? re->code : "rego_error", re->msg);
    return cl_err_stage(err, code, "policy", "%s: %s", re->code ? re->code : "rego_error", re->msg);
}

static void invalidate(struct cl_rego *e)
{
    /* The rule tree lives in the arena with the modules; mark the resolution stale. Names are
     * re-resolved in place, which is idempotent for resolved terms. */
    e->compiled = false;
}

int cl_rego_add_module(struct cl_rego *e, const char *filename, const char *text, size_t len,
                       bool v0, struct cl_err *err)
{
    if (len > CL_REGO_MAX_POLICY)
        return cl_err_stage(err, CL_ELIMIT, "policy",
                            "rego_parse_error: %s: module larger than %u bytes", filename,
                            CL_REGO_MAX_POLICY);
    if (e->compiled)
        return cl_err_stage(err, CL_EINVAL, "policy",
                            "rego_compile_error: modules must be added before compilation");
    struct cl_rg_error re;
    struct cl_rg_module *m =
        cl_rg_parse_module(&e->arena, filename ? filename : "policy.rego", text, len, v0, &re);
    if (!m)
        return set_rg_err(err, CL_EPARSE, &re);
    if (e->mods_tail)
        e->mods_tail->next = m;
    else
        e->mods = m;
    e->mods_tail = m;
    e->nmods++;
    invalidate(e);
    return 0;
}

int cl_rego_set_data(struct cl_rego *e, const json_t *data, struct cl_err *err)
{
    if (data && !json_is_object(data))
        return cl_err_stage(err, CL_EINVAL, "policy", "data must be a JSON object");
    cl_rego_prints_reset(e->opts.prints); /* it may hold members of the document released here */
    release_data(e);
    e->data = data ? cl_rv_from_json(data) : cl_rv_object();
    cl_rv_freeze(e->data);
    return 0;
}

json_t *cl_rego_get_data(const struct cl_rego *e)
{
    return cl_rv_to_json(e->data);
}

int cl_rego_register_builtin(struct cl_rego *e, const char *name, int arity, cl_rego_builtin_fn fn,
                             void *ctx, struct cl_err *err)
{
    if (!name || !fn || arity < 0)
        return cl_err_set(err, CL_EINVAL, "register builtin: name, function and arity required");
    for (size_t i = 0; i < e->nexts; i++)
        if (strcmp(e->exts[i].name, name) == 0)
            return cl_err_set(err, CL_EEXISTS, "register builtin: %s already registered", name);
    if (e->compiled)
        return cl_err_set(err, CL_EINVAL, "register builtin %s: engine already compiled", name);
    struct cl_rg_ext *n = realloc(e->exts, (e->nexts + 1) * sizeof *n);
    if (!n)
        return cl_err_set(err, CL_ENOMEM, "register builtin");
    e->exts = n;
    /* rows hold pointers into exts: refresh them all after realloc */
    struct cl_rg_ext *x = &e->exts[e->nexts++];
    x->name = cl_xstrndup(name, strlen(name));
    x->arity = arity;
    x->fn = fn;
    x->ctx = ctx;
    for (size_t i = 0; i < e->nexts; i++) {
        struct cl_rg_ext *y = &e->exts[i];
        y->bi = (struct cl_rego_builtin){y->name, y->arity, y->fn, 0};
    }
    return 0;
}

int cl_rego_compile(struct cl_rego *e, struct cl_err *err)
{
    if (e->compiled)
        return 0;
    struct cl_rg_error re;
    if (cl_rg_compile(e, &re) < 0) {
        int code = strcmp(re.code, "rego_parse_error") == 0 ? CL_EPARSE : CL_EINVAL;
        return set_rg_err(err, code, &re);
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The base document of one evaluation: the engine's, or a copy of its top level with the
 * overlay's members in place (new reference; NULL when there is no overlay). */
static int overlay_data(struct cl_rego *e, const struct cl_rego_eval_opts *o, struct cl_rv **out,
                        struct cl_err *err)
{
    *out = NULL;
    if (!o || (!o->data_overlay && !o->data_overlay_value))
        return 0;
    if (o->data_overlay_value) {
        const struct cl_rv *ov = o->data_overlay_value;
        if (ov->type != CL_RV_OBJECT)
            return cl_err_stage(err, CL_EINVAL, "policy", "data overlay must be an object, not %s",
                                cl_rv_type_name(ov));
        struct cl_rv *d = cl_rv_copy(e->data);
        for (size_t i = 0; i < ov->u.obj.len; i++)
            cl_rv_obj_put(d, cl_rv_incref(ov->u.obj.keys[i]), cl_rv_incref(ov->u.obj.vals[i]));
        *out = d;
        return 0;
    }
    if (!json_is_object(o->data_overlay))
        return cl_err_stage(err, CL_EINVAL, "policy", "data overlay must be a JSON object");
    struct cl_rv *d = cl_rv_copy(e->data);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)o->data_overlay, k, v)
        cl_rv_obj_put_str(d, k, cl_rv_from_json(v));
    *out = d;
    return 0;
}

static int run_query_armed(struct cl_rego *e, const struct cl_rg_query *q, const json_t *input,
                           const struct cl_rego_eval_opts *o, struct cl_rv **rows,
                           struct cl_err *err)
{
    struct cl_rv *data = NULL;
    int rc = overlay_data(e, o, &data, err);
    if (rc < 0)
        return rc;
    struct cl_rv *in = NULL;
    if (o && o->input_value)
        in = cl_rv_incref((struct cl_rv *)(uintptr_t)o->input_value);
    bool strict = o ? o->strict_builtin_errors : e->opts.strict_builtin_errors;
    int64_t now = o && o->now_ns ? o->now_ns : now_ns();
    struct cl_rg_error re;
    struct cl_rego_prints *prints = o && o->prints ? o->prints : e->opts.prints;
    rc = cl_rg_eval_query(e, q, in, in ? NULL : input, data, strict, now, prints, rows, &re);
    cl_rv_decref(in);
    cl_rv_decref(data);
    if (rc < 0)
        return set_rg_err(err, rc, &re);
    return 0;
}

/* Evaluates with the allocation-failure recovery point armed (sbuf.h): an allocation that
 * fails even when retried abandons the evaluation with CL_ENOMEM instead of the process. The
 * outermost evaluation on the thread starts with the failure flag cleared. */
static int run_query(struct cl_rego *e, const struct cl_rg_query *q, const json_t *input,
                     const struct cl_rego_eval_opts *o, struct cl_rv **rows, struct cl_err *err)
{
    jmp_buf jb;
    jmp_buf *volatile prev = cl_rg_oom_jmp;
    if (!prev)
        cl_rg_oom = false;
    if (setjmp(jb)) {
        cl_rg_oom_jmp = prev;
        return cl_err_stage(err, CL_ENOMEM, "policy",
                            "eval_internal_error: out of memory, evaluation abandoned");
    }
    cl_rg_oom_jmp = &jb;
    int rc = run_query_armed(e, q, input, o, rows, err);
    cl_rg_oom_jmp = prev;
    return rc;
}

int cl_rego_eval_query_rv(struct cl_rego *e, const char *query, const json_t *input,
                          const struct cl_rego_eval_opts *o, struct cl_rv **rows,
                          struct cl_err *err)
{
    int rc = cl_rego_compile(e, err);
    if (rc < 0)
        return rc;
    struct cl_rg_query q = {0};
    q.arena.nofreeze = true;
    struct cl_rg_error re;
    if (cl_rg_compile_query(e, &q, query, strlen(query), &re) < 0) {
        cl_rg_arena_free(&q.arena);
        return set_rg_err(err, CL_EPARSE, &re);
    }
    rc = run_query(e, &q, input, o, rows, err);
    cl_rg_arena_free(&q.arena);
    return rc;
}

static json_t *rows_to_json(const struct cl_rv *rows)
{
    json_t *out = json_array();
    for (size_t i = 0; i < rows->u.arr.len; i++) {
        const struct cl_rv *row = rows->u.arr.items[i];
        json_t *r = json_object();
        json_t *exprs = json_array();
        const struct cl_rv *ev = cl_rv_obj_get_str(row, "expressions");
        for (size_t j = 0; ev && j < ev->u.arr.len; j++) {
            json_t *x = json_object();
            json_object_set_new(x, "value", cl_rv_to_json(ev->u.arr.items[j]));
            json_array_append_new(exprs, x);
        }
        json_object_set_new(r, "expressions", exprs);
        const struct cl_rv *b = cl_rv_obj_get_str(row, "bindings");
        if (b && b->u.obj.len)
            json_object_set_new(r, "bindings", cl_rv_to_json(b));
        json_array_append_new(out, r);
    }
    return out;
}

int cl_rego_eval_query(struct cl_rego *e, const char *query, const json_t *input, json_t **results,
                       struct cl_err *err)
{
    struct cl_rv *rows = NULL;
    int rc = cl_rego_eval_query_rv(e, query, input, NULL, &rows, err);
    if (rc < 0)
        return rc;
    *results = rows_to_json(rows);
    cl_rv_decref(rows);
    return 0;
}

/* The single value of one-row, one-expression results (new JSON), NULL when undefined. */
static json_t *single_value(const struct cl_rv *rows, const char *what, struct cl_err *err)
{
    json_t *out = NULL;
    if (rows->u.arr.len > 1) {
        cl_err_stage(err, CL_EINVAL, "policy", "eval_conflict_error: %s has %zu results", what,
                     rows->u.arr.len);
    } else if (rows->u.arr.len == 1) {
        const struct cl_rv *ev = cl_rv_obj_get_str(rows->u.arr.items[0], "expressions");
        if (ev && ev->u.arr.len == 1)
            out = cl_rv_to_json(ev->u.arr.items[0]);
    }
    return out;
}

json_t *cl_rego_eval_ref(struct cl_rego *e, const char *ref, const json_t *input,
                         struct cl_err *err)
{
    cl_err_clear(err);
    struct cl_rv *rows = NULL;
    if (cl_rego_eval_query_rv(e, ref, input, NULL, &rows, err) < 0)
        return NULL;
    json_t *out = single_value(rows, ref, err);
    cl_rv_decref(rows);
    return out;
}

/* ---- prepared queries ---- */

struct cl_rego_query {
    struct cl_rego *e;
    struct cl_rg_query q;
    char *text;
};

struct cl_rego_query *cl_rego_prepare(struct cl_rego *e, const char *query, struct cl_err *err)
{
    if (!e || !query) {
        cl_err_stage(err, CL_EINVAL, "policy", "prepare: engine and query required");
        return NULL;
    }
    if (cl_rego_compile(e, err) < 0)
        return NULL;
    struct cl_rego_query *q = calloc(1, sizeof *q);
    if (!q) {
        cl_err_stage(err, CL_ENOMEM, "policy", "out of memory");
        return NULL;
    }
    q->e = e;
    q->text = cl_xstrndup(query, strlen(query));
    /* constants frozen: evaluations on several threads share them without touching counts */
    struct cl_rg_error re;
    if (cl_rg_compile_query(e, &q->q, query, strlen(query), &re) < 0) {
        set_rg_err(err, CL_EPARSE, &re);
        cl_rego_query_free(q);
        return NULL;
    }
    return q;
}

void cl_rego_query_free(struct cl_rego_query *q)
{
    if (!q)
        return;
    cl_rg_arena_free(&q->q.arena);
    free(q->text);
    free(q);
}

void cl_auto_cl_rego_query(struct cl_rego_query **p)
{
    cl_rego_query_free(*p);
    *p = NULL;
}

size_t cl_rego_query_nexprs(const struct cl_rego_query *q)
{
    return q->q.body->n;
}

const char *cl_rego_query_expr(const struct cl_rego_query *q, size_t i, size_t *len, int *row,
                               int *col)
{
    for (size_t j = 0; j < q->q.body->n; j++) {
        const struct cl_rg_expr *x = q->q.body->exprs[j];
        if ((size_t)x->idx != i)
            continue;
        *len = (size_t)x->len;
        *row = x->line;
        *col = x->col;
        return q->text + x->off;
    }
    *len = 0;
    *row = *col = 0;
    return "";
}

int cl_rego_query_eval_rv(struct cl_rego_query *q, const json_t *input,
                          const struct cl_rego_eval_opts *o, struct cl_rv **rows,
                          struct cl_err *err)
{
    return run_query(q->e, &q->q, input, o, rows, err);
}

int cl_rego_query_eval_rows(struct cl_rego_query *q, const json_t *input,
                            const struct cl_rego_eval_opts *o, json_t **results, struct cl_err *err)
{
    struct cl_rv *rows = NULL;
    int rc = run_query(q->e, &q->q, input, o, &rows, err);
    if (rc < 0)
        return rc;
    *results = rows_to_json(rows);
    cl_rv_decref(rows);
    return 0;
}

json_t *cl_rego_query_eval(struct cl_rego_query *q, const json_t *input, const json_t *data_overlay,
                           struct cl_err *err)
{
    cl_err_clear(err);
    struct cl_rego_eval_opts o = {.strict_builtin_errors = q->e->opts.strict_builtin_errors,
                                  .data_overlay = data_overlay};
    struct cl_rv *rows = NULL;
    if (run_query(q->e, &q->q, input, &o, &rows, err) < 0)
        return NULL;
    json_t *out = single_value(rows, q->text, err);
    cl_rv_decref(rows);
    return out;
}

/* .name, or ["name"] when the name is not an identifier */
static void ref_part(struct cl_sbuf *b, const char *name)
{
    bool ident = (name[0] < '0' || name[0] > '9') && name[0];
    for (const char *p = name; *p && ident; p++)
        ident = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '_';
    if (ident) {
        cl_sbuf_addc(b, '.');
        cl_sbuf_adds(b, name);
        return;
    }
    struct cl_rv *v = cl_rv_strz(name);
    char *q = cl_rv_to_json_text(v);
    cl_rv_decref(v);
    cl_sbuf_addc(b, '[');
    cl_sbuf_adds(b, q);
    cl_sbuf_addc(b, ']');
    free(q);
}

json_t *cl_rego_rule_refs(const struct cl_rego *e)
{
    json_t *out = json_array();
    for (const struct cl_rg_module *m = e->mods; m && out; m = m->next) {
        for (size_t i = 0; i < m->nrules; i++) {
            const struct cl_rg_rule *r = m->rules[i];
            if (r->kind == RG_R_FUNC || r->nhead != 1)
                continue;
            struct cl_sbuf b = {0};
            cl_sbuf_adds(&b, "data");
            for (size_t k = 0; k < m->npkg; k++)
                ref_part(&b, m->pkg_path[k]);
            ref_part(&b, r->head[0]->name);
            bool seen = false;
            for (size_t k = 0; k < json_array_size(out) && !seen; k++)
                seen = strcmp(json_string_value(json_array_get(out, k)), b.s) == 0;
            if (!seen)
                json_array_append_new(out, json_string(b.s));
            cl_sbuf_free(&b);
        }
    }
    return out;
}

size_t cl_rego_memory(const struct cl_rego *e)
{
    size_t n =
        sizeof *e + e->arena.bytes + e->arena.capvals * sizeof *e->arena.vals + cl_rv_size(e->data);
    for (size_t i = 0; i < e->arena.nvals; i++)
        n += cl_rv_size(e->arena.vals[i]);
    return n;
}

const char *cl_rego_err_code(const struct cl_err *err, char *buf, size_t cap)
{
    if (!err || !cap)
        return "";
    buf[0] = 0;
    /* the first word ending in "_error" followed by ':' */
    for (const char *p = err->msg; (p = strstr(p, "_error:")); p++) {
        const char *b = p;
        while (b > err->msg && ((b[-1] >= 'a' && b[-1] <= 'z') || b[-1] == '_'))
            b--;
        size_t n = (size_t)(p - b) + 6;
        if (n < cap) {
            memcpy(buf, b, n);
            buf[n] = 0;
        }
        break;
    }
    return buf;
}

/* ---- JSON Patch (RFC 6902) ---- */

/* Splits a JSON pointer into its parent and last token (unescaped). */
static json_t *ptr_parent(json_t *doc, const char *ptr, char **last)
{
    const char *slash = strrchr(ptr, '/');
    if (!slash)
        return NULL;
    char *parent = cl_xstrndup(ptr, (size_t)(slash - ptr));
    json_t *p = cl_json_pointer(doc, parent);
    free(parent);
    struct cl_sbuf b = {0};
    for (const char *s = slash + 1; *s; s++) {
        if (*s == '~' && s[1] == '0') {
            cl_sbuf_addc(&b, '~');
            s++;
        } else if (*s == '~' && s[1] == '1') {
            cl_sbuf_addc(&b, '/');
            s++;
        } else {
            cl_sbuf_addc(&b, *s);
        }
    }
    *last = cl_sbuf_steal(&b);
    return p;
}

static bool array_index(const char *tok, size_t size, bool allow_end, size_t *out)
{
    if (allow_end && strcmp(tok, "-") == 0) {
        *out = size;
        return true;
    }
    if (!*tok || (tok[0] == '0' && tok[1]))
        return false;
    size_t v = 0;
    for (const char *s = tok; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000)
            return false;
        v = v * 10 + (size_t)(*s - '0');
    }
    if (v > size || (!allow_end && v == size))
        return false;
    *out = v;
    return true;
}

static int patch_remove(json_t *doc, const char *path, json_t **removed)
{
    char *last = NULL;
    json_t *p = ptr_parent(doc, path, &last);
    int rc = -1;
    if (p && json_is_object(p)) {
        json_t *v = json_object_get(p, last);
        if (v) {
            if (removed)
                *removed = json_incref(v);
            json_object_del(p, last);
            rc = 0;
        }
    } else if (p && json_is_array(p)) {
        size_t i;
        if (array_index(last, json_array_size(p), false, &i)) {
            if (removed)
                *removed = json_incref(json_array_get(p, i));
            json_array_remove(p, i);
            rc = 0;
        }
    }
    free(last);
    return rc;
}

static int patch_add(json_t **doc, const char *path, json_t *val)
{
    if (!*path) {
        json_decref(*doc);
        *doc = json_deep_copy(val);
        return 0;
    }
    char *last = NULL;
    json_t *p = ptr_parent(*doc, path, &last);
    int rc = -1;
    if (p && json_is_object(p)) {
        rc = json_object_set_new(p, last, json_deep_copy(val));
    } else if (p && json_is_array(p)) {
        size_t i;
        if (array_index(last, json_array_size(p), true, &i))
            rc = json_array_insert_new(p, i, json_deep_copy(val));
    }
    free(last);
    return rc;
}

int cl_rego_json_patch(json_t **doc, const json_t *patch, struct cl_err *err)
{
    if (!json_is_array(patch))
        return cl_err_set(err, CL_EINVAL, "json patch: not an array");
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op)
    {
        const char *kind = json_string_value(json_object_get(op, "op"));
        const char *path = json_string_value(json_object_get(op, "path"));
        json_t *val = json_object_get(op, "value");
        const char *from = json_string_value(json_object_get(op, "from"));
        if (!kind || !path || (*path && *path != '/'))
            return cl_err_set(err, CL_EINVAL, "json patch op %zu: missing or invalid op/path", i);
        if (strcmp(kind, "add") == 0) {
            if (!val || patch_add(doc, path, val) < 0)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: add %s failed", i, path);
        } else if (strcmp(kind, "remove") == 0) {
            if (patch_remove(*doc, path, NULL) < 0)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: remove %s: no such member", i,
                                  path);
        } else if (strcmp(kind, "replace") == 0) {
            if (!val || !cl_json_pointer(*doc, path))
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: replace %s: no such member",
                                  i, path);
            if (*path && patch_remove(*doc, path, NULL) < 0)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: replace %s failed", i, path);
            if (patch_add(doc, path, val) < 0)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: replace %s failed", i, path);
        } else if (strcmp(kind, "test") == 0) {
            json_t *cur = cl_json_pointer(*doc, path);
            if (!val || !cur || !json_equal(cur, val))
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: test %s failed", i, path);
        } else if (strcmp(kind, "move") == 0 || strcmp(kind, "copy") == 0) {
            if (!from)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: %s needs from", i, kind);
            json_t *src = cl_json_pointer(*doc, from);
            if (!src)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: %s from %s: no such member",
                                  i, kind, from);
            json_t *v = json_deep_copy(src);
            if (kind[0] == 'm') {
                size_t fl = strlen(from);
                if (strncmp(path, from, fl) == 0 && path[fl] == '/') {
                    json_decref(v);
                    return cl_err_set(err, CL_EINVAL, "json patch op %zu: move into itself", i);
                }
                if (patch_remove(*doc, from, NULL) < 0) {
                    json_decref(v);
                    return cl_err_set(err, CL_EINVAL, "json patch op %zu: move from %s failed", i,
                                      from);
                }
            }
            int rc = patch_add(doc, path, v);
            json_decref(v);
            if (rc < 0)
                return cl_err_set(err, CL_EINVAL, "json patch op %zu: %s to %s failed", i, kind,
                                  path);
        } else {
            return cl_err_set(err, CL_EINVAL, "json patch op %zu: unknown op %s", i, kind);
        }
    }
    return 0;
}

/* ---- input documents with OPA's tolerance for bad text ---- */

static int hexval4(const unsigned char *s, const unsigned char *e, unsigned *out)
{
    if (e - s < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Writes text to b (NULL: only looks) with every invalid UTF-8 byte replaced by U+FFFD and
 * every unpaired surrogate escape by \ufffd, as Go's decoder (hence OPA) reads them. Returns
 * whether anything needed replacing; without b it stops at the first such place. */
static bool repair_text(const char *text, size_t len, struct cl_sbuf *b)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + len;
    bool in_str = false, changed = false;
    while (s < e) {
        if (in_str && *s == '\\' && e - s >= 2) {
            unsigned cp, lo;
            if (s[1] == 'u' && hexval4(s + 2, e, &cp) == 0 && cp >= 0xD800 && cp < 0xE000) {
                bool paired = cp < 0xDC00 && e - s >= 12 && s[6] == '\\' && s[7] == 'u' &&
                              hexval4(s + 8, e, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000;
                if (!paired && !b)
                    return true;
                if (b)
                    cl_sbuf_add(b, paired ? (const char *)s : "\\ufffd", paired ? 12 : 6);
                s += paired ? 12 : 6;
                changed |= !paired;
                continue;
            }
            if (b)
                cl_sbuf_add(b, s, 2);
            s += 2;
            continue;
        }
        if (*s == '"')
            in_str = !in_str;
        size_t n = cl_utf8_seq(s, (size_t)(e - s), NULL);
        if (!n && !b)
            return true;
        if (b)
            cl_sbuf_add(b, n ? (const char *)s : "\xEF\xBF\xBD", n ? n : 3);
        s += n ? n : 1;
        changed |= !n;
    }
    return changed;
}

json_t *cl_rego_json_parse(const char *text, size_t len, size_t max_depth, struct cl_err *err)
{
    if (!max_depth)
        max_depth = CL_REGO_MAX_INPUT_DEPTH;
    if (max_depth > CL_REGO_MAX_INPUT_DEPTH_LIMIT)
        return cl_err_stage(err, CL_EINVAL, "policy", "input depth limit %zu above %d", max_depth,
                            CL_REGO_MAX_INPUT_DEPTH_LIMIT),
               NULL;
    if (!repair_text(text, len, NULL))
        return cl_json_parse(text, len, max_depth, err);
    struct cl_sbuf b = {0};
    repair_text(text, len, &b);
    json_t *j = cl_json_parse(b.s, b.len, max_depth, err);
    cl_sbuf_free(&b);
    return j;
}
