/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strings.render_template(template, vars): Go's text/template over the variables object, as
 * OPA renders it: {{.field}} chains, $variables, pipelines with |, literals, parenthesised
 * pipelines, if / else if / else, range (arrays, sets, objects in key order, integers; with
 * $i, $v := and else; break / continue), with / else, {{- -}} trimming and comments, and the
 * functions and, or, not, len, index, eq, ne, lt, le, gt, ge, print, println, printf (%v %s
 * %d %q %t %%), html, js and urlquery. Values print as Go's fmt prints the decoded JSON (maps
 * as map[k:v], slices as [a b], numbers as written, null as <nil>); a missing key renders
 * "<undefined>". define/template/block are refused. Output and work are capped.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

#define TPL_MAX_STEPS 1000000
#define TPL_MAX_DEPTH 200

/* ---- values ---- */

enum kind { K_MISSING, K_NIL, K_BOOL, K_INT, K_FLOAT, K_STRING, K_NUMBER, K_MAP, K_SLICE };

struct val {
    enum kind k;
    bool b;
    int64_t i;
    double d;
    const char *s; /* K_STRING / K_NUMBER text (borrowed or owned) */
    size_t sl;
    char *owned;
    const struct cl_rv *rv; /* K_MAP / K_SLICE (and data strings/numbers) */
};

static void val_free(struct val *v)
{
    free(v->owned);
    v->owned = NULL;
}

static struct val from_rv(const struct cl_rv *rv)
{
    struct val v = {0};
    if (!rv) {
        v.k = K_MISSING;
        return v;
    }
    v.rv = rv;
    switch (rv->type) {
    case CL_RV_NULL:
        v.k = K_NIL;
        break;
    case CL_RV_BOOL:
        v.k = K_BOOL;
        v.b = rv->u.b;
        break;
    case CL_RV_NUMBER: {
        /* OPA hands the template json.Number values: strings holding the number's text */
        char buf[64];
        v.k = K_NUMBER;
        if (rv->big) {
            v.s = rv->u.num.big;
            v.sl = strlen(v.s);
        } else {
            cl_rv_format_number(rv, buf, sizeof buf);
            v.owned = cl_xstrndup(buf, strlen(buf));
            v.s = v.owned;
            v.sl = strlen(buf);
        }
        break;
    }
    case CL_RV_STRING:
        v.k = K_STRING;
        v.s = S(rv);
        v.sl = L(rv);
        break;
    case CL_RV_OBJECT:
        v.k = K_MAP;
        break;
    default:
        v.k = K_SLICE;
        break;
    }
    return v;
}

static struct val val_copy(const struct val *v)
{
    struct val r = *v;
    if (v->owned) {
        r.owned = cl_xstrndup(v->s, v->sl);
        r.s = r.owned;
    }
    return r;
}

/* ---- templates as a tree ---- */

enum ntype { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH, N_BREAK, N_CONTINUE };
enum otype { O_FIELD, O_VAR, O_DOT, O_STRING, O_INT, O_FLOAT, O_BOOL, O_NIL, O_IDENT, O_PIPE };

struct pipe;

struct operand {
    enum otype t;
    char *name;    /* O_VAR: "$x"; O_IDENT: function */
    char **fields; /* field chain after the operand */
    size_t nfields;
    char *str; /* O_STRING */
    size_t strl;
    int64_t i;
    double d;
    bool b;
    struct pipe *pipe; /* O_PIPE */
};

struct command {
    struct operand *args;
    size_t nargs;
};

struct pipe {
    char *decl[2]; /* declared variables ($i, $v) */
    int ndecl;
    bool assign; /* '=' instead of ':=' */
    struct command *cmds;
    size_t ncmds;
};

struct node {
    enum ntype t;
    char *text;
    size_t textl;
    struct pipe *pipe;
    struct node *list, *elist; /* body and else */
    size_t nlist, nelist;
    int line;
};

static void pipe_free(struct pipe *p);

static void operand_free(struct operand *o)
{
    free(o->name);
    for (size_t i = 0; i < o->nfields; i++)
        free(o->fields[i]);
    free(o->fields);
    free(o->str);
    if (o->pipe)
        pipe_free(o->pipe);
}

static void pipe_free(struct pipe *p)
{
    for (int i = 0; i < p->ndecl; i++)
        free(p->decl[i]);
    for (size_t i = 0; i < p->ncmds; i++) {
        for (size_t j = 0; j < p->cmds[i].nargs; j++)
            operand_free(&p->cmds[i].args[j]);
        free(p->cmds[i].args);
    }
    free(p->cmds);
    free(p);
}

static void nodes_free(struct node *n, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        free(n[i].text);
        if (n[i].pipe)
            pipe_free(n[i].pipe);
        nodes_free(n[i].list, n[i].nlist);
        nodes_free(n[i].elist, n[i].nelist);
    }
    free(n);
}

/* ---- lexing and parsing ---- */

struct parser {
    const char *src, *p, *e;
    char err[256];
    int depth;
    /* the current action's text, tokenised on demand */
    const char *a, *ae;
    bool trim_next;
};

static int line_of(const struct parser *ps, const char *at)
{
    int l = 1;
    for (const char *q = ps->src; q < at; q++)
        l += *q == '\n';
    return l;
}

static bool fail(struct parser *ps, const char *at, const char *msg)
{
    if (!ps->err[0])
        snprintf(ps->err, sizeof ps->err, "template: template:%d: %s", line_of(ps, at), msg);
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (unsigned char)c >= 0x80;
}

static void skip_ws(struct parser *ps)
{
    while (ps->a < ps->ae && is_space(*ps->a))
        ps->a++;
}

static char *dupn(const char *s, size_t n)
{
    return cl_xstrndup(s, n);
}

static struct pipe *parse_pipe(struct parser *ps, bool allow_decl, char stop);

/* Go string literal: "..." with escapes, or `raw`. */
static bool parse_string(struct parser *ps, struct operand *o)
{
    char q = *ps->a++;
    struct cl_sbuf b = {0};
    while (ps->a < ps->ae && *ps->a != q) {
        char c = *ps->a++;
        if (q == '"' && c == '\\' && ps->a < ps->ae) {
            char x = *ps->a++;
            switch (x) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '\\':
                c = '\\';
                break;
            case '"':
                c = '"';
                break;
            case '\'':
                c = '\'';
                break;
            case 'a':
                c = '\a';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'v':
                c = '\v';
                break;
            case 'x':
                if (ps->ae - ps->a >= 2) {
                    char hx[3] = {ps->a[0], ps->a[1], 0};
                    c = (char)strtol(hx, NULL, 16);
                    ps->a += 2;
                }
                break;
            default:
                cl_sbuf_free(&b);
                return fail(ps, ps->a, "unknown escape sequence");
            }
        } else if (q == '"' && c == '\n') {
            cl_sbuf_free(&b);
            return fail(ps, ps->a, "unterminated quoted string");
        }
        cl_sbuf_addc(&b, c);
    }
    if (ps->a >= ps->ae) {
        cl_sbuf_free(&b);
        return fail(ps, ps->a,
                    q == '`' ? "unterminated raw quoted string" : "unterminated quoted string");
    }
    ps->a++;
    o->t = O_STRING;
    o->strl = b.len;
    o->str = b.s ? cl_sbuf_steal(&b) : dupn("", 0);
    return true;
}

static bool parse_fields(struct parser *ps, struct operand *o)
{
    while (ps->a < ps->ae && *ps->a == '.' && ps->a + 1 < ps->ae && is_alnum(ps->a[1])) {
        const char *s = ++ps->a;
        while (ps->a < ps->ae && is_alnum(*ps->a))
            ps->a++;
        o->fields = cl_xrealloc(o->fields, (o->nfields + 1) * sizeof *o->fields);
        o->fields[o->nfields++] = dupn(s, (size_t)(ps->a - s));
    }
    return true;
}

static bool parse_operand(struct parser *ps, struct operand *o)
{
    memset(o, 0, sizeof *o);
    skip_ws(ps);
    if (ps->a >= ps->ae)
        return fail(ps, ps->a, "missing value for command");
    char c = *ps->a;
    if (c == '.') {
        if (ps->a + 1 < ps->ae && is_alnum(ps->a[1])) {
            o->t = O_FIELD;
            return parse_fields(ps, o);
        }
        ps->a++;
        o->t = O_DOT;
        return true;
    }
    if (c == '$') {
        const char *s = ps->a++;
        while (ps->a < ps->ae && is_alnum(*ps->a))
            ps->a++;
        o->t = O_VAR;
        o->name = dupn(s, (size_t)(ps->a - s));
        return parse_fields(ps, o);
    }
    if (c == '"' || c == '`')
        return parse_string(ps, o);
    if (c == '(') {
        ps->a++;
        ps->depth++;
        if (ps->depth > TPL_MAX_DEPTH)
            return fail(ps, ps->a, "nesting too deep");
        o->t = O_PIPE;
        o->pipe = parse_pipe(ps, false, ')');
        ps->depth--;
        if (!o->pipe)
            return false;
        if (ps->a >= ps->ae || *ps->a != ')')
            return fail(ps, ps->a, "unclosed left paren");
        ps->a++;
        return parse_fields(ps, o);
    }
    if ((c >= '0' && c <= '9') || c == '-' || c == '+') {
        char *end;
        const char *s = ps->a;
        size_t n = 0;
        while (s + n < ps->ae && (is_alnum(s[n]) || s[n] == '.' || s[n] == '+' || s[n] == '-'))
            n++;
        char *t = dupn(s, n);
        long long iv = strtoll(t, &end, 0);
        if (*end == 0) {
            o->t = O_INT;
            o->i = iv;
        } else {
            double d = strtod(t, &end);
            if (*end != 0) {
                free(t);
                return fail(ps, s, "bad number syntax");
            }
            o->t = O_FLOAT;
            o->d = d;
        }
        free(t);
        ps->a += n;
        return true;
    }
    if (c == '\'') {
        if (ps->ae - ps->a >= 3 && ps->a[2] == '\'') {
            o->t = O_INT;
            o->i = (unsigned char)ps->a[1];
            ps->a += 3;
            return true;
        }
        return fail(ps, ps->a, "bad character constant");
    }
    if (is_alnum(c)) {
        const char *s = ps->a;
        while (ps->a < ps->ae && is_alnum(*ps->a))
            ps->a++;
        size_t n = (size_t)(ps->a - s);
        if (n == 4 && !memcmp(s, "true", 4)) {
            o->t = O_BOOL;
            o->b = true;
        } else if (n == 5 && !memcmp(s, "false", 5)) {
            o->t = O_BOOL;
        } else if (n == 3 && !memcmp(s, "nil", 3)) {
            o->t = O_NIL;
        } else {
            static const char *const funcs[] = {
                "and", "or", "not",   "len",     "index",  "eq",   "ne", "lt",       "le",
                "gt",  "ge", "print", "println", "printf", "html", "js", "urlquery", NULL};
            bool known = false;
            for (size_t i = 0; funcs[i] && !known; i++)
                known = strlen(funcs[i]) == n && !memcmp(funcs[i], s, n);
            if (!known) {
                char msg[128];
                snprintf(msg, sizeof msg, "function \"%.*s\" not defined", (int)(n > 40 ? 40 : n),
                         s);
                return fail(ps, s, msg);
            }
            o->t = O_IDENT;
            o->name = dupn(s, n);
        }
        return true;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "unexpected \"%c\" in command", c);
    return fail(ps, ps->a, msg);
}

static struct pipe *parse_pipe(struct parser *ps, bool allow_decl, char stop)
{
    struct pipe *p = cl_xcalloc(1, sizeof *p);
    skip_ws(ps);
    /* declarations: $x := / $i, $x := / $x = */
    if (allow_decl && ps->a < ps->ae && *ps->a == '$') {
        const char *save = ps->a;
        char *names[2] = {0};
        int n = 0;
        for (;;) {
            const char *s = ps->a;
            if (ps->a >= ps->ae || *ps->a != '$')
                break;
            ps->a++;
            while (ps->a < ps->ae && is_alnum(*ps->a))
                ps->a++;
            names[n++] = dupn(s, (size_t)(ps->a - s));
            skip_ws(ps);
            if (n < 2 && ps->a < ps->ae && *ps->a == ',') {
                ps->a++;
                skip_ws(ps);
                continue;
            }
            break;
        }
        if (ps->ae - ps->a >= 2 && ps->a[0] == ':' && ps->a[1] == '=') {
            ps->a += 2;
            p->ndecl = n;
            p->decl[0] = names[0];
            p->decl[1] = names[1];
        } else if (n == 1 && ps->a < ps->ae && ps->a[0] == '=' &&
                   (ps->a + 1 >= ps->ae || ps->a[1] != '=')) {
            ps->a++;
            p->ndecl = 1;
            p->assign = true;
            p->decl[0] = names[0];
        } else {
            free(names[0]);
            free(names[1]);
            ps->a = save;
        }
    }
    for (;;) {
        struct command cmd = {0};
        for (;;) {
            skip_ws(ps);
            if (ps->a >= ps->ae || *ps->a == '|' || *ps->a == stop)
                break;
            struct operand o;
            if (!parse_operand(ps, &o)) {
                operand_free(&o);
                for (size_t j = 0; j < cmd.nargs; j++)
                    operand_free(&cmd.args[j]);
                free(cmd.args);
                pipe_free(p);
                return NULL;
            }
            cmd.args = cl_xrealloc(cmd.args, (cmd.nargs + 1) * sizeof *cmd.args);
            cmd.args[cmd.nargs++] = o;
        }
        if (cmd.nargs == 0) {
            free(cmd.args);
            fail(ps, ps->a, p->ncmds ? "missing command" : "missing value for command");
            pipe_free(p);
            return NULL;
        }
        p->cmds = cl_xrealloc(p->cmds, (p->ncmds + 1) * sizeof *p->cmds);
        p->cmds[p->ncmds++] = cmd;
        if (ps->a < ps->ae && *ps->a == '|') {
            ps->a++;
            continue;
        }
        break;
    }
    return p;
}

/* The next action: text before it goes to *text; returns false at the end of the source. */
struct action {
    const char *text;
    size_t textl;
    const char *a, *ae; /* action body (between delimiters and trim markers) */
    bool have;
};

static bool next_action(struct parser *ps, struct action *act)
{
    memset(act, 0, sizeof *act);
    const char *start = ps->p;
    if (ps->trim_next) {
        while (start < ps->e && is_space(*start))
            start++;
        ps->trim_next = false;
    }
    const char *open = memmem(start, (size_t)(ps->e - start), "{{", 2);
    if (!open) {
        act->text = start;
        act->textl = (size_t)(ps->e - start);
        ps->p = ps->e;
        return true;
    }
    const char *body = open + 2;
    const char *text_end = open;
    if (ps->e - body >= 2 && body[0] == '-' && is_space(body[1])) {
        body += 2;
        while (text_end > start && is_space(text_end[-1]))
            text_end--;
    }
    const char *close = memmem(body, (size_t)(ps->e - body), "}}", 2);
    /* comments may contain "}}" */
    const char *b2 = body;
    while (b2 < ps->e && is_space(*b2))
        b2++;
    if (ps->e - b2 >= 2 && b2[0] == '/' && b2[1] == '*') {
        const char *ce = memmem(b2 + 2, (size_t)(ps->e - b2 - 2), "*/", 2);
        if (!ce)
            return fail(ps, b2, "unclosed comment");
        close = memmem(ce + 2, (size_t)(ps->e - ce - 2), "}}", 2);
    }
    if (!close)
        return fail(ps, open, "unclosed action");
    const char *ae = close;
    if (ae - body >= 2 && ae[-1] == '-' && is_space(ae[-2])) {
        ae -= 2;
        ps->trim_next = true;
    }
    act->text = start;
    act->textl = (size_t)(text_end - start);
    act->a = body;
    act->ae = ae;
    act->have = true;
    ps->p = close + 2;
    return true;
}

struct nlist {
    struct node *v;
    size_t n;
};

static void nlist_add(struct nlist *l, struct node n)
{
    l->v = cl_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = n;
}

/* Parses nodes until {{end}} / {{else}} (returned in *term: "end", "else", "" at EOF). */
static bool parse_list(struct parser *ps, struct nlist *out, const char **term,
                       const char **term_rest, const char **term_rest_end, bool in_range);

/* The body and else branches of an if / range / with node, up to its {{end}}; "else if" and
 * "else with" nest a node as the whole else branch. */
static bool parse_branches(struct parser *ps, struct node *n, bool in_range)
{
    struct nlist body = {0};
    const char *tm, *rest, *rest_end;
    bool ok = parse_list(ps, &body, &tm, &rest, &rest_end, in_range || n->t == N_RANGE);
    n->list = body.v;
    n->nlist = body.n;
    if (!ok)
        return false;
    if (!*tm)
        return fail(ps, ps->e, "unexpected EOF");
    if (!strcmp(tm, "end"))
        return true;
    ps->a = rest;
    ps->ae = rest_end;
    skip_ws(ps);
    const char *k2 = ps->a;
    size_t k2l = 0;
    while (k2 + k2l < ps->ae && is_alnum(k2[k2l]))
        k2l++;
    if (n->t != N_RANGE &&
        ((k2l == 2 && !memcmp(k2, "if", 2)) || (k2l == 4 && !memcmp(k2, "with", 4)))) {
        struct node *inner = cl_xcalloc(1, sizeof *inner);
        inner->t = k2l == 2 ? N_IF : N_WITH;
        inner->line = line_of(ps, k2);
        n->elist = inner;
        n->nelist = 1;
        ps->a = k2 + k2l;
        inner->pipe = parse_pipe(ps, true, 0);
        return inner->pipe && parse_branches(ps, inner, in_range);
    }
    if (ps->a != ps->ae)
        return fail(ps, ps->a, "unexpected token after else");
    struct nlist eb = {0};
    ok = parse_list(ps, &eb, &tm, &rest, &rest_end, in_range);
    n->elist = eb.v;
    n->nelist = eb.n;
    if (!ok)
        return false;
    if (strcmp(tm, "end") != 0)
        return fail(ps, ps->p, *tm ? "expected end; found else" : "unexpected EOF");
    return true;
}

static bool parse_list(struct parser *ps, struct nlist *out, const char **term,
                       const char **term_rest, const char **term_rest_end, bool in_range)
{
    if (++ps->depth > TPL_MAX_DEPTH)
        return fail(ps, ps->p, "nesting too deep");
    for (;;) {
        struct action act;
        if (!next_action(ps, &act))
            return false;
        if (act.textl)
            nlist_add(out, (struct node){
                               .t = N_TEXT, .text = dupn(act.text, act.textl), .textl = act.textl});
        if (!act.have) {
            *term = "";
            ps->depth--;
            return true;
        }
        ps->a = act.a;
        ps->ae = act.ae;
        skip_ws(ps);
        if (ps->ae - ps->a >= 2 && ps->a[0] == '/' && ps->a[1] == '*')
            continue;
        const char *kw = ps->a;
        size_t kl = 0;
        while (kw + kl < ps->ae && is_alnum(kw[kl]))
            kl++;
        int line = line_of(ps, kw);
#define KW(s) (kl == strlen(s) && !memcmp(kw, s, kl))
        if (KW("end") || KW("else")) {
            *term = KW("end") ? "end" : "else";
            *term_rest = kw + kl;
            *term_rest_end = ps->ae;
            ps->depth--;
            return true;
        }
        if (KW("define") || KW("template") || KW("block"))
            return fail(ps, kw, "define, template and block are not supported");
        if (KW("break") || KW("continue")) {
            if (!in_range)
                return fail(ps, kw,
                            KW("break") ? "{{break}} outside {{range}}"
                                        : "{{continue}} outside {{range}}");
            nlist_add(out, (struct node){.t = KW("break") ? N_BREAK : N_CONTINUE, .line = line});
            continue;
        }
        if (KW("if") || KW("range") || KW("with")) {
            struct node n = {.t = KW("if") ? N_IF : KW("range") ? N_RANGE : N_WITH, .line = line};
            ps->a = kw + kl;
            n.pipe = parse_pipe(ps, true, 0);
            if (!n.pipe || !parse_branches(ps, &n, in_range)) {
                struct node *tmp = cl_xcalloc(1, sizeof *tmp);
                *tmp = n;
                nodes_free(tmp, 1);
                return false;
            }
            nlist_add(out, n);
            continue;
        }
#undef KW
        struct pipe *p = parse_pipe(ps, true, 0);
        if (!p)
            return false;
        if (ps->a != ps->ae) {
            pipe_free(p);
            return fail(ps, ps->a, "unexpected token in command");
        }
        nlist_add(out, (struct node){.t = N_ACTION, .pipe = p, .line = line});
    }
}

/* ---- execution ---- */

struct var {
    char *name;
    struct val v;
};

struct exec {
    struct cl_rego_bctx *c;
    struct cl_sbuf out;
    struct var *vars;
    size_t nvars, cap;
    size_t steps;
    char err[256];
    int rc; /* -2: limit error recorded */
    int line;
};

CL_PRINTF(2, 3) static bool xfail(struct exec *x, const char *fmt, ...)
{
    if (!x->err[0]) {
        char msg[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(x->err, sizeof x->err, "template: template:%d: %s", x->line, msg);
    }
    return false;
}

static void push_var(struct exec *x, const char *name, struct val v)
{
    if (x->nvars == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 8;
        x->vars = cl_xrealloc(x->vars, x->cap * sizeof *x->vars);
    }
    x->vars[x->nvars].name = cl_xstrndup(name, strlen(name));
    x->vars[x->nvars++].v = v;
}

static void pop_vars(struct exec *x, size_t to)
{
    while (x->nvars > to) {
        x->nvars--;
        free(x->vars[x->nvars].name);
        val_free(&x->vars[x->nvars].v);
    }
}

static struct var *find_var(struct exec *x, const char *name)
{
    for (size_t i = x->nvars; i-- > 0;)
        if (!strcmp(x->vars[i].name, name))
            return &x->vars[i];
    return NULL;
}

static bool step(struct exec *x)
{
    if (++x->steps > TPL_MAX_STEPS)
        return xfail(x, "%s", "template execution too long");
    return true;
}

static const char *kind_name(enum kind k)
{
    static const char *const n[] = {"<no value>",    "<nil>",  "bool",   "int",
                                    "float64",       "string", "string", "map[string]interface {}",
                                    "[]interface {}"};
    return n[k];
}

static bool truth(const struct val *v)
{
    switch (v->k) {
    case K_BOOL:
        return v->b;
    case K_INT:
        return v->i != 0;
    case K_FLOAT:
        return v->d != 0;
    case K_STRING:
    case K_NUMBER:
        return v->sl > 0;
    case K_MAP:
    case K_SLICE:
        return cl_rv_len(v->rv) > 0;
    default:
        return false;
    }
}

static void go_format_g(double d, char *buf, size_t cap)
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
        if (strtod(e, NULL) == d)
            break;
    }
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

static bool print_rv(struct exec *x, struct cl_sbuf *b, const struct cl_rv *rv, int depth);

/* fmt's %v of the decoded value */
static bool print_val(struct exec *x, struct cl_sbuf *b, const struct val *v)
{
    char buf[64];
    switch (v->k) {
    case K_MISSING:
        cl_sbuf_adds(b, "<undefined>");
        return true;
    case K_NIL:
        cl_sbuf_adds(b, "<nil>");
        return true;
    case K_BOOL:
        cl_sbuf_adds(b, v->b ? "true" : "false");
        return true;
    case K_INT:
        cl_sbuf_addf(b, "%lld", (long long)v->i);
        return true;
    case K_FLOAT:
        go_format_g(v->d, buf, sizeof buf);
        cl_sbuf_adds(b, buf);
        return true;
    case K_STRING:
    case K_NUMBER:
        cl_sbuf_add(b, v->s, v->sl);
        return true;
    default:
        return print_rv(x, b, v->rv, 0);
    }
}

struct skey {
    const char *s;
    size_t n;
    const struct cl_rv *v;
    char *owned;
};

static int skey_cmp(const void *p, const void *q)
{
    const struct skey *a = p, *b = q;
    int r = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    return r ? r : (a->n > b->n) - (a->n < b->n);
}

/* Keys of an object as JSON strings, in Go's sorted order (caller frees owned). */
static struct skey *sorted_keys(const struct cl_rv *o)
{
    struct skey *k = cl_xcalloc(o->u.obj.len + 1, sizeof *k);
    for (size_t i = 0; i < o->u.obj.len; i++) {
        const struct cl_rv *key = o->u.obj.keys[i];
        if (key->type == CL_RV_STRING) {
            k[i].s = S(key);
            k[i].n = L(key);
        } else {
            k[i].owned = cl_rv_to_json_text(key);
            k[i].s = k[i].owned;
            k[i].n = strlen(k[i].owned);
        }
        k[i].v = o->u.obj.vals[i];
    }
    qsort(k, o->u.obj.len, sizeof *k, skey_cmp);
    return k;
}

static void free_keys(struct skey *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].owned);
    free(k);
}

static bool print_rv(struct exec *x, struct cl_sbuf *b, const struct cl_rv *rv, int depth)
{
    if (depth > TPL_MAX_DEPTH || !step(x))
        return xfail(x, "%s", "value nested too deeply");
    if (rv->type == CL_RV_OBJECT) {
        struct skey *k = sorted_keys(rv);
        cl_sbuf_adds(b, "map[");
        bool ok = true;
        for (size_t i = 0; i < rv->u.obj.len && ok; i++) {
            if (i)
                cl_sbuf_addc(b, ' ');
            cl_sbuf_add(b, k[i].s, k[i].n);
            cl_sbuf_addc(b, ':');
            ok = print_rv(x, b, k[i].v, depth + 1);
        }
        cl_sbuf_addc(b, ']');
        free_keys(k, rv->u.obj.len);
        return ok;
    }
    if (rv->type == CL_RV_ARRAY || rv->type == CL_RV_SET) {
        cl_sbuf_addc(b, '[');
        for (size_t i = 0; i < rv->u.arr.len; i++) {
            if (i)
                cl_sbuf_addc(b, ' ');
            if (!print_rv(x, b, rv->u.arr.items[i], depth + 1))
                return false;
        }
        cl_sbuf_addc(b, ']');
        return true;
    }
    struct val v = from_rv(rv);
    bool ok = print_val(x, b, &v);
    val_free(&v);
    return ok;
}

/* A field of a value (maps only, as the variables are all maps, slices and scalars). */
static bool field(struct exec *x, struct val *v, const char *name)
{
    if (v->k == K_MAP) {
        struct cl_rv *k = cl_rv_strz(name);
        const struct cl_rv *f = cl_rv_obj_get(v->rv, k);
        cl_rv_decref(k);
        val_free(v);
        *v = from_rv(f);
        return true;
    }
    if (v->k == K_NIL || v->k == K_MISSING)
        return xfail(x, "nil pointer evaluating interface {}.%s", name);
    return xfail(x, "can't evaluate field %s in type interface {}", name);
}

static bool eval_pipe(struct exec *x, const struct pipe *p, const struct val *dot, struct val *res);

static bool eval_operand(struct exec *x, const struct operand *o, const struct val *dot,
                         struct val *res)
{
    memset(res, 0, sizeof *res);
    switch (o->t) {
    case O_DOT:
    case O_FIELD:
        *res = val_copy(dot);
        break;
    case O_VAR: {
        struct var *vr = find_var(x, o->name);
        if (!vr)
            return xfail(x, "undefined variable: %s", o->name);
        *res = val_copy(&vr->v);
        break;
    }
    case O_STRING:
        res->k = K_STRING;
        res->s = o->str;
        res->sl = o->strl;
        break;
    case O_INT:
        res->k = K_INT;
        res->i = o->i;
        break;
    case O_FLOAT:
        res->k = K_FLOAT;
        res->d = o->d;
        break;
    case O_BOOL:
        res->k = K_BOOL;
        res->b = o->b;
        break;
    case O_NIL:
        return xfail(x, "%s", "nil is not a command");
    case O_PIPE:
        if (!eval_pipe(x, o->pipe, dot, res))
            return false;
        break;
    case O_IDENT:
        return xfail(x, "%s", "function called without arguments");
    }
    for (size_t i = 0; i < o->nfields; i++)
        if (!field(x, res, o->fields[i])) {
            val_free(res);
            return false;
        }
    return true;
}

/* Go's basicKind comparison for eq/ne/lt/...: 0 ok with *cmp set, -1 error. */
static bool compare(struct exec *x, const struct val *a, const struct val *b, int *cmp,
                    bool ordered)
{
    enum kind ka = a->k == K_NUMBER ? K_STRING : a->k, kb = b->k == K_NUMBER ? K_STRING : b->k;
    if (ka == K_MAP || ka == K_SLICE || kb == K_MAP || kb == K_SLICE)
        return xfail(x, "%s", ordered ? "invalid type for comparison" : "non-comparable type");
    if (ka == K_MISSING || kb == K_MISSING || ka == K_NIL || kb == K_NIL) {
        if (ordered)
            return xfail(x, "%s", "invalid type for comparison");
        *cmp = ka == kb ? 0 : 1;
        return true;
    }
    if (ka != kb)
        return xfail(x, "%s", "incompatible types for comparison");
    switch (ka) {
    case K_BOOL:
        if (ordered)
            return xfail(x, "%s", "invalid type for comparison");
        *cmp = a->b != b->b;
        return true;
    case K_INT:
        *cmp = (a->i > b->i) - (a->i < b->i);
        return true;
    case K_FLOAT:
        *cmp = (a->d > b->d) - (a->d < b->d);
        return true;
    default: {
        int r = memcmp(a->s, b->s, a->sl < b->sl ? a->sl : b->sl);
        *cmp = r ? (r > 0 ? 1 : -1) : (a->sl > b->sl) - (a->sl < b->sl);
        return true;
    }
    }
}

static void escape_html(struct cl_sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '"':
            cl_sbuf_adds(b, "&#34;");
            break;
        case '\'':
            cl_sbuf_adds(b, "&#39;");
            break;
        case '&':
            cl_sbuf_adds(b, "&amp;");
            break;
        case '<':
            cl_sbuf_adds(b, "&lt;");
            break;
        case '>':
            cl_sbuf_adds(b, "&gt;");
            break;
        case 0:
            cl_sbuf_adds(b, "\xef\xbf\xbd");
            break;
        default:
            cl_sbuf_addc(b, s[i]);
        }
    }
}

static void escape_js(struct cl_sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\\':
            cl_sbuf_adds(b, "\\\\");
            break;
        case '\'':
            cl_sbuf_adds(b, "\\'");
            break;
        case '"':
            cl_sbuf_adds(b, "\\\"");
            break;
        case '<':
            cl_sbuf_adds(b, "\\u003C");
            break;
        case '>':
            cl_sbuf_adds(b, "\\u003E");
            break;
        case '&':
            cl_sbuf_adds(b, "\\u0026");
            break;
        case '=':
            cl_sbuf_adds(b, "\\u003D");
            break;
        default:
            if (c < ' ')
                cl_sbuf_addf(b, "\\u%04X", c);
            else
                cl_sbuf_addc(b, (char)c);
        }
    }
}

static void escape_query(struct cl_sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c))
            cl_sbuf_addc(b, (char)c);
        else if (c == ' ')
            cl_sbuf_addc(b, '+');
        else
            cl_sbuf_addf(b, "%%%02X", c);
    }
}

static struct val text_val(struct cl_sbuf *b)
{
    struct val v = {.k = K_STRING};
    v.sl = b->len;
    v.owned = b->s ? cl_sbuf_steal(b) : cl_xstrndup("", 0);
    v.s = v.owned;
    return v;
}

/* printf with the verbs a template needs: %v %s %d %q %t %%. */
static bool do_printf(struct exec *x, const struct val *args, size_t n, struct cl_sbuf *b)
{
    if (n == 0 || (args[0].k != K_STRING && args[0].k != K_NUMBER))
        return xfail(x, "%s", "printf: format must be a string");
    const char *f = args[0].s, *e = f + args[0].sl;
    size_t ai = 1;
    for (; f < e; f++) {
        if (*f != '%' || f + 1 >= e) {
            cl_sbuf_addc(b, *f);
            continue;
        }
        char verb = *++f;
        if (verb == '%') {
            cl_sbuf_addc(b, '%');
            continue;
        }
        if (ai >= n) {
            cl_sbuf_addf(b, "%%!%c(MISSING)", verb);
            continue;
        }
        const struct val *a = &args[ai++];
        if (verb == 'q' && (a->k == K_STRING || a->k == K_NUMBER)) {
            cl_sbuf_addc(b, '"');
            for (size_t i = 0; i < a->sl; i++) {
                char ch = a->s[i];
                if (ch == '"' || ch == '\\')
                    cl_sbuf_addc(b, '\\');
                if (ch == '\n')
                    cl_sbuf_adds(b, "\\n");
                else
                    cl_sbuf_addc(b, ch);
            }
            cl_sbuf_addc(b, '"');
        } else if (verb == 'd' && a->k != K_INT) {
            cl_sbuf_adds(b, "%!d(");
            cl_sbuf_adds(b, kind_name(a->k));
            cl_sbuf_addc(b, '=');
            if (!print_val(x, b, a))
                return false;
            cl_sbuf_addc(b, ')');
        } else if (!print_val(x, b, a)) {
            return false;
        }
    }
    if (ai < n)
        cl_sbuf_adds(b, "%!(EXTRA)");
    return true;
}

static bool call_func(struct exec *x, const char *fn, const struct command *cmd,
                      const struct val *dot, const struct val *piped, struct val *res)
{
    size_t n = cmd->nargs - 1 + (piped ? 1 : 0);
    struct val *args = cl_xcalloc(n + 1, sizeof *args);
    bool ok = true;
    size_t got = 0;
    /* and/or evaluate lazily */
    bool lazy = !strcmp(fn, "and") || !strcmp(fn, "or");
    for (size_t i = 1; i < cmd->nargs && ok; i++) {
        ok = eval_operand(x, &cmd->args[i], dot, &args[got]);
        if (ok)
            got++;
        if (ok && lazy && (truth(&args[got - 1]) == !strcmp(fn, "or")) && !piped)
            break;
    }
    if (ok && piped)
        args[got++] = val_copy(piped);
    memset(res, 0, sizeof *res);
    struct cl_sbuf b = {0};
    if (!ok) {
        /* error already recorded */
    } else if (lazy) {
        if (got == 0) {
            ok = xfail(x, "wrong number of args for %s: want at least 1 got 0", fn);
        } else {
            size_t pick = got - 1;
            for (size_t i = 0; i < got; i++)
                if (truth(&args[i]) == !strcmp(fn, "or")) {
                    pick = i;
                    break;
                }
            *res = val_copy(&args[pick]);
        }
    } else if (!strcmp(fn, "not")) {
        if (got != 1)
            ok = xfail(x, "%s", "wrong number of args for not: want 1");
        else
            *res = (struct val){.k = K_BOOL, .b = !truth(&args[0])};
    } else if (!strcmp(fn, "len")) {
        if (got != 1)
            ok = xfail(x, "%s", "wrong number of args for len: want 1");
        else if (args[0].k == K_STRING || args[0].k == K_NUMBER)
            *res = (struct val){.k = K_INT, .i = (int64_t)args[0].sl};
        else if (args[0].k == K_MAP || args[0].k == K_SLICE)
            *res = (struct val){.k = K_INT, .i = (int64_t)cl_rv_len(args[0].rv)};
        else
            ok = xfail(x, "error calling len: len of type %s", kind_name(args[0].k));
    } else if (!strcmp(fn, "index")) {
        if (got < 1) {
            ok = xfail(x, "%s", "wrong number of args for index: want at least 1");
        } else {
            *res = val_copy(&args[0]);
            for (size_t i = 1; i < got && ok; i++) {
                if (res->k == K_MAP && (args[i].k == K_STRING || args[i].k == K_NUMBER)) {
                    struct cl_rv *k = cl_rv_str(args[i].s, args[i].sl);
                    const struct cl_rv *f = cl_rv_obj_get(res->rv, k);
                    cl_rv_decref(k);
                    val_free(res);
                    *res = from_rv(f);
                    if (res->k == K_MISSING)
                        *res = (struct val){.k = K_NIL};
                } else if (res->k == K_SLICE && args[i].k == K_INT) {
                    if (args[i].i < 0 || (uint64_t)args[i].i >= res->rv->u.arr.len) {
                        ok = xfail(x, "error calling index: index out of range: %s", "");
                    } else {
                        const struct cl_rv *item = res->rv->u.arr.items[args[i].i];
                        val_free(res);
                        *res = from_rv(item);
                    }
                } else {
                    ok = xfail(x, "error calling index: cannot index %s", kind_name(res->k));
                }
            }
        }
    } else if (!strcmp(fn, "eq") || !strcmp(fn, "ne") || !strcmp(fn, "lt") || !strcmp(fn, "le") ||
               !strcmp(fn, "gt") || !strcmp(fn, "ge")) {
        bool eq = !strcmp(fn, "eq");
        if (got < 2 || (!eq && got != 2)) {
            ok = xfail(x, "missing argument for comparison in %s", fn);
        } else {
            bool r = false;
            int cmp = 0;
            for (size_t i = 1; i < got && ok && !(eq && r); i++) {
                ok = compare(x, &args[0], &args[i], &cmp, !eq && strcmp(fn, "ne") != 0);
                if (!ok)
                    break;
                r = !strcmp(fn, "eq")   ? cmp == 0
                    : !strcmp(fn, "ne") ? cmp != 0
                    : !strcmp(fn, "lt") ? cmp < 0
                    : !strcmp(fn, "le") ? cmp <= 0
                    : !strcmp(fn, "gt") ? cmp > 0
                                        : cmp >= 0;
            }
            if (ok)
                *res = (struct val){.k = K_BOOL, .b = r};
        }
    } else if (!strcmp(fn, "print") || !strcmp(fn, "println")) {
        bool ln = fn[5] == 'l';
        for (size_t i = 0; i < got && ok; i++) {
            /* Print adds spaces between operands when neither is a string */
            bool sa = args[i].k == K_STRING || args[i].k == K_NUMBER;
            bool sb = i > 0 && (args[i - 1].k == K_STRING || args[i - 1].k == K_NUMBER);
            if (i > 0 && (ln || (!sa && !sb)))
                cl_sbuf_addc(&b, ' ');
            ok = print_val(x, &b, &args[i]);
        }
        if (ln)
            cl_sbuf_addc(&b, '\n');
        *res = text_val(&b);
    } else if (!strcmp(fn, "printf")) {
        ok = do_printf(x, args, got, &b);
        *res = text_val(&b);
    } else { /* html, js, urlquery: of the printed arguments */
        struct cl_sbuf t = {0};
        for (size_t i = 0; i < got && ok; i++)
            ok = print_val(x, &t, &args[i]);
        if (fn[0] == 'h')
            escape_html(&b, t.s ? t.s : "", t.len);
        else if (fn[0] == 'j')
            escape_js(&b, t.s ? t.s : "", t.len);
        else
            escape_query(&b, t.s ? t.s : "", t.len);
        cl_sbuf_free(&t);
        *res = text_val(&b);
    }
    cl_sbuf_free(&b);
    for (size_t i = 0; i < got; i++)
        val_free(&args[i]);
    free(args);
    if (!ok)
        val_free(res);
    return ok;
}

static bool eval_command(struct exec *x, const struct command *cmd, const struct val *dot,
                         const struct val *piped, struct val *res)
{
    if (!step(x))
        return false;
    const struct operand *first = &cmd->args[0];
    if (first->t == O_IDENT)
        return call_func(x, first->name, cmd, dot, piped, res);
    if (cmd->nargs > 1 || piped) {
        if (first->t == O_FIELD || first->t == O_VAR)
            return xfail(x, "%s", "can't give argument to non-function");
        return xfail(x, "%s", "can't give argument to non-function");
    }
    return eval_operand(x, first, dot, res);
}

static bool eval_pipe(struct exec *x, const struct pipe *p, const struct val *dot, struct val *res)
{
    struct val cur = {0};
    bool have = false;
    for (size_t i = 0; i < p->ncmds; i++) {
        struct val next;
        if (!eval_command(x, &p->cmds[i], dot, have ? &cur : NULL, &next)) {
            val_free(&cur);
            return false;
        }
        val_free(&cur);
        cur = next;
        have = true;
    }
    *res = cur;
    return true;
}

/* Evaluates a pipeline and handles its declarations. */
static bool run_pipe(struct exec *x, const struct pipe *p, const struct val *dot, struct val *res)
{
    if (!eval_pipe(x, p, dot, res))
        return false;
    if (p->ndecl == 1 && p->assign) {
        struct var *vr = find_var(x, p->decl[0]);
        if (!vr) {
            val_free(res);
            return xfail(x, "undefined variable: %s", p->decl[0]);
        }
        val_free(&vr->v);
        vr->v = val_copy(res);
    } else if (p->ndecl == 1) {
        push_var(x, p->decl[0], val_copy(res));
    }
    return true;
}

enum flow { F_NORMAL, F_BREAK, F_CONTINUE };

static bool exec_list(struct exec *x, const struct node *n, size_t cnt, const struct val *dot,
                      enum flow *fl);

static bool emit_text(struct exec *x, const char *s, size_t n)
{
    cl_sbuf_add(&x->out, s, n);
    if (x->out.len > 4096 && cl_rego_bi_reserve(x->c, x->out.len) < 0) {
        x->rc = -2;
        return false;
    }
    return true;
}

static bool exec_range(struct exec *x, const struct node *n, const struct val *dot, enum flow *fl)
{
    size_t mark = x->nvars;
    struct val v;
    struct pipe *p = n->pipe;
    /* declarations bind per iteration: evaluate without them */
    if (!eval_pipe(x, p, dot, &v))
        return false;
    size_t count = 0;
    struct skey *keys = NULL;
    if (v.k == K_SLICE || v.k == K_MAP)
        count = cl_rv_len(v.rv);
    else if (v.k == K_INT)
        count = v.i > 0 ? (size_t)v.i : 0;
    else if (v.k != K_MISSING && v.k != K_NIL) {
        val_free(&v);
        return xfail(x, "range can't iterate over %s", kind_name(v.k));
    }
    if (v.k == K_MAP)
        keys = sorted_keys(v.rv);
    bool ok = true;
    for (size_t i = 0; i < count && ok; i++) {
        struct val key = {0}, elem = {0};
        if (v.k == K_SLICE) {
            key = (struct val){.k = K_INT, .i = (int64_t)i};
            elem = from_rv(v.rv->u.arr.items[i]);
        } else if (v.k == K_MAP) {
            key = (struct val){.k = K_STRING, .s = keys[i].s, .sl = keys[i].n};
            elem = from_rv(keys[i].v);
        } else {
            key = (struct val){.k = K_INT, .i = (int64_t)i};
            elem = key;
        }
        if (p->ndecl == 1) {
            push_var(x, p->decl[0], val_copy(&elem));
        } else if (p->ndecl == 2) {
            push_var(x, p->decl[0], val_copy(&key));
            push_var(x, p->decl[1], val_copy(&elem));
        }
        enum flow f = F_NORMAL;
        ok = exec_list(x, n->list, n->nlist, &elem, &f);
        pop_vars(x, mark);
        val_free(&elem);
        if (f == F_BREAK)
            break;
    }
    free_keys(keys, v.k == K_MAP ? count : 0);
    if (ok && count == 0) {
        enum flow f = F_NORMAL;
        ok = exec_list(x, n->elist, n->nelist, dot, &f);
        if (f != F_NORMAL)
            *fl = f;
    }
    val_free(&v);
    return ok;
}

static bool exec_list(struct exec *x, const struct node *n, size_t cnt, const struct val *dot,
                      enum flow *fl)
{
    size_t mark = x->nvars;
    bool ok = true;
    for (size_t i = 0; i < cnt && ok && *fl == F_NORMAL; i++) {
        if (!step(x)) {
            ok = false;
            break;
        }
        x->line = n[i].line;
        switch (n[i].t) {
        case N_TEXT:
            ok = emit_text(x, n[i].text, n[i].textl);
            break;
        case N_ACTION: {
            struct val v;
            ok = run_pipe(x, n[i].pipe, dot, &v);
            if (ok && n[i].pipe->ndecl == 0) {
                struct cl_sbuf b = {0};
                ok = print_val(x, &b, &v) && emit_text(x, b.s ? b.s : "", b.len);
                cl_sbuf_free(&b);
            }
            if (ok)
                val_free(&v);
            break;
        }
        case N_IF:
        case N_WITH: {
            size_t m2 = x->nvars;
            struct val v;
            ok = run_pipe(x, n[i].pipe, dot, &v);
            if (!ok)
                break;
            if (truth(&v))
                ok = exec_list(x, n[i].list, n[i].nlist, n[i].t == N_WITH ? &v : dot, fl);
            else
                ok = exec_list(x, n[i].elist, n[i].nelist, dot, fl);
            val_free(&v);
            pop_vars(x, m2);
            break;
        }
        case N_RANGE:
            ok = exec_range(x, &n[i], dot, fl);
            break;
        case N_BREAK:
            *fl = F_BREAK;
            break;
        case N_CONTINUE:
            *fl = F_CONTINUE;
            break;
        }
    }
    pop_vars(x, mark);
    return ok;
}

static int bi_render_template(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_OBJECT) < 0)
        return -1;
    struct parser ps = {.src = S(a[0]), .p = S(a[0]), .e = S(a[0]) + L(a[0])};
    struct nlist nodes = {0};
    const char *term = NULL, *rest, *rest_end;
    if (!parse_list(&ps, &nodes, &term, &rest, &rest_end, false) || (term && *term)) {
        if (!ps.err[0])
            snprintf(ps.err, sizeof ps.err, "template: template:%d: unexpected {{%s}}",
                     line_of(&ps, ps.p), term ? term : "");
        nodes_free(nodes.v, nodes.n);
        return cl_rego_bi_error(c, "%s", ps.err);
    }
    struct exec x = {.c = c, .line = 1};
    struct val root = from_rv(a[1]);
    push_var(&x, "$", val_copy(&root));
    enum flow fl = F_NORMAL;
    bool ok = exec_list(&x, nodes.v, nodes.n, &root, &fl);
    pop_vars(&x, 0);
    free(x.vars);
    val_free(&root);
    nodes_free(nodes.v, nodes.n);
    if (!ok) {
        cl_sbuf_free(&x.out);
        if (x.rc < 0)
            return x.rc;
        return cl_rego_bi_error(c, "%s", x.err);
    }
    struct cl_rv *r = cl_rv_str(x.out.s ? x.out.s : "", x.out.len);
    cl_sbuf_free(&x.out);
    return OUT(r);
}

const struct cl_rego_builtin cl_rego_builtins_template[] = {
    {"strings.render_template", 2, bi_render_template, 0},
    {NULL, 0, NULL, 0},
};
