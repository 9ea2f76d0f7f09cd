/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal syntax tree of the Rego engine, shared by the parser, the compiler and the
 * evaluator. Nodes live in an arena owned by the engine (or by a compiled query) and are
 * read-only once compiled, so evaluations on several threads can walk them concurrently.
 */
#ifndef CL_REGO_AST_H
#define CL_REGO_AST_H

#include <stdbool.h>
#include <stddef.h>

#include "rego/builtins.h"
#include "rego/value.h"

/* ---- arena ---- */
struct cl_rg_chunk;
struct cl_rg_arena {
    struct cl_rg_chunk *head;
    struct cl_rv **vals; /* frozen constants to release with the arena */
    size_t nvals, capvals;
    bool nofreeze; /* query arenas: constants stay reference counted (one thread) */
    size_t bytes;  /* chunk memory */
};
void *cl_rg_alloc(struct cl_rg_arena *a, size_t n);
char *cl_rg_strndup(struct cl_rg_arena *a, const char *s, size_t n);
/* Freezes v and records it for release; returns v. */
struct cl_rv *cl_rg_keep(struct cl_rg_arena *a, struct cl_rv *v);
void cl_rg_arena_free(struct cl_rg_arena *a);

/* ---- terms ---- */
enum cl_rg_tk {
    RG_T_VALUE,  /* constant, `val` */
    RG_T_VAR,    /* `name`, frame `slot`; roots input/data have slot -1 and root set */
    RG_T_REF,    /* items[0] head (var, call, composite), items[1..] keys */
    RG_T_ARRAY,  /* items */
    RG_T_SET,    /* items */
    RG_T_OBJECT, /* items[2i] key, items[2i+1] value */
    RG_T_CALL,   /* fname; items = args */
    RG_T_ACOMP,  /* [value | body] */
    RG_T_SCOMP,  /* {value | body} */
    RG_T_OCOMP,  /* {key: value | body} */
};

enum cl_rg_root { RG_ROOT_NONE = 0, RG_ROOT_INPUT, RG_ROOT_DATA };

struct cl_rg_node;
struct cl_rg_body;

struct cl_rg_term {
    unsigned char kind;
    unsigned char root;     /* RG_T_VAR: enum cl_rg_root */
    unsigned char wildcard; /* RG_T_VAR named `_` */
    unsigned char declared; /* RG_T_VAR: introduced by some/:= (set by the compiler) */
    int line, col;
    struct cl_rv *val; /* RG_T_VALUE (frozen) */
    const char *name;  /* RG_T_VAR name, RG_T_CALL function name ("a.b.c") */
    int slot;          /* RG_T_VAR */
    struct cl_rg_term **items;
    size_t n;
    struct cl_rg_term *key, *value; /* comprehensions */
    struct cl_rg_body *body;
    /* RG_T_CALL, resolved by the compiler: */
    const struct cl_rego_builtin *bi;
    struct cl_rg_node *fn; /* user function (rule-tree node holding its definitions) */
    int ext;               /* index of an extension builtin + 1, or 0 */
    unsigned char op;      /* comparison operators (enum cl_rg_op), evaluated without a call */
    unsigned char direct;  /* a call with one result and no output argument (not print/relations) */
};

enum cl_rg_op { RG_OP_NONE = 0, RG_OP_EQ, RG_OP_NEQ, RG_OP_LT, RG_OP_LTE, RG_OP_GT, RG_OP_GTE };

/* ---- expressions ---- */
enum cl_rg_ek {
    RG_E_TERM,   /* term (a call is an expression with a result) */
    RG_E_SOME,   /* some x, y (declaration only) */
    RG_E_SOMEIN, /* some [key,] value in coll */
    RG_E_EVERY,  /* every [key,] value in coll { body } */
};

struct cl_rg_with {
    struct cl_rg_term *target, *value;
    /* Set by the compiler when the target is a function or builtin (a mock): */
    const struct cl_rego_builtin *tbi;
    struct cl_rg_node *tfn;
    /* ... and when the replacement names a function or builtin rather than a value: */
    const struct cl_rego_builtin *vbi;
    struct cl_rg_node *vfn;
    int text, vext;
};

struct cl_rg_expr {
    unsigned char kind;
    bool negated;
    int line, col;
    int idx;      /* position in the body as written (bodies are reordered for safety) */
    int off, len; /* source text of the expression (byte offsets) */
    struct cl_rg_term *term;
    struct cl_rg_term **vars; /* RG_E_SOME */
    size_t nvars;
    struct cl_rg_term *key, *val, *coll; /* RG_E_SOMEIN / RG_E_EVERY (key may be NULL) */
    struct cl_rg_body *body;             /* RG_E_EVERY */
    struct cl_rg_with *with;
    size_t nwith;
};

struct cl_rg_body {
    struct cl_rg_expr **exprs;
    size_t n;
};

/* ---- rules and modules ---- */
enum cl_rg_rk {
    RG_R_VALUE, /* complete rule or ref head with variable parts (`p.q[k] := v`) */
    RG_R_SET,   /* p contains x / v0 p[x] */
    RG_R_FUNC,  /* f(args) := v */
};

struct cl_rg_module;

struct cl_rg_rule {
    unsigned char kind;
    bool is_default;
    bool is_else;
    int line, col;
    struct cl_rg_term **head; /* head ref: head[0] a VAR (the first name), then key terms */
    size_t nhead;
    size_t nground;           /* leading head parts that are constant strings (incl. head[0]) */
    struct cl_rg_term **args; /* functions */
    size_t nargs;
    struct cl_rg_term *key;   /* RG_R_SET element */
    struct cl_rg_term *value; /* NULL means true */
    struct cl_rg_body *body;  /* never NULL (may be empty) */
    struct cl_rg_rule *els;   /* else chain */
    struct cl_rg_module *mod;
    int nslots; /* frame size, set by the compiler */
    struct cl_rg_rule *next_in_node;
    struct cl_rv *annotations; /* METADATA block before the rule (frozen), or NULL */
    struct cl_rg_node *node;   /* where the compiler placed it */
};

struct cl_rg_import {
    struct cl_rg_term *path; /* a ref term rooted at data or input */
    const char *alias;
    int line, col;
};

struct cl_rg_module {
    const char *file;
    bool v0;
    struct cl_rg_term *pkg; /* ref: data.a.b (items[1..] string values) */
    const char **pkg_path;  /* decoded path */
    size_t npkg;
    struct cl_rg_import *imports;
    size_t nimports;
    struct cl_rg_rule **rules;
    size_t nrules;
    struct cl_rv *annotations; /* METADATA block before `package` (frozen), or NULL */
    struct cl_rg_module *next;
};

/* ---- the rule tree ---- */
struct cl_rg_node {
    const char *name;  /* key under the parent (a string) */
    struct cl_rv *key; /* the same as a value (frozen) */
    struct cl_rg_node *parent;
    struct cl_rg_node **kids;
    size_t nkids, capkids;
    struct cl_rg_rule *rules;  /* value/set rules whose ground head prefix ends here */
    struct cl_rg_rule *funcs;  /* function definitions named by this path */
    struct cl_rg_rule *deflt;  /* default rule of a value */
    struct cl_rg_rule *fdeflt; /* default rule of a function (`default f(_) := v`) */
    bool dynamic;              /* some rule here has variable head parts */
    bool has_set;              /* some rule here is a partial set */
    bool const_rules; /* every complete definition yields the same constant: stop at the first */
    bool const_funcs; /* the same for the function definitions */
    int id;           /* index into per-evaluation caches */
};

static inline bool cl_rg_node_is_fn(const struct cl_rg_node *n)
{
    return n->funcs || n->fdeflt;
}
static inline size_t cl_rg_node_arity(const struct cl_rg_node *n)
{
    return n->funcs ? n->funcs->nargs : n->fdeflt ? n->fdeflt->nargs : 0;
}

/* ---- errors ---- */
struct cl_rg_error {
    const char *code; /* "rego_parse_error", "eval_conflict_error", ... */
    const char *file;
    int line, col;
    char msg[480];
};

/* Parses one module. Returns NULL with *err set (code rego_parse_error, position). */
struct cl_rg_module *cl_rg_parse_module(struct cl_rg_arena *a, const char *file, const char *text,
                                        size_t len, bool v0, struct cl_rg_error *err);
/* Parses a query (a body). */
struct cl_rg_body *cl_rg_parse_query(struct cl_rg_arena *a, const char *text, size_t len,
                                     struct cl_rg_error *err);
/* Parses a single term (input_term of the conformance suite). */
struct cl_rg_term *cl_rg_parse_term(struct cl_rg_arena *a, const char *text, size_t len,
                                    struct cl_rg_error *err);

struct cl_rg_term *cl_rg_term_new(struct cl_rg_arena *a, enum cl_rg_tk kind, int line, int col);
/* A parsed module as OPA's JSON AST (package, imports, rules with heads and bodies), as a new
 * Rego value (rego.parse_module). */
struct cl_rv *cl_rg_module_ast(const struct cl_rg_module *m);

#endif
