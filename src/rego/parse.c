/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lexer and recursive-descent parser for Rego v1 (and v0 per module): modules, rules with
 * ref heads, else chains, functions, bodies, terms with OPA's operator precedence,
 * comprehensions, some/every/with/not. Errors carry file:line:col.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "rego/ast.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

/* ---- arena ---- */

struct cl_rg_chunk {
    struct cl_rg_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *cl_rg_alloc(struct cl_rg_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        struct cl_rg_chunk *c = cl_xmalloc(sizeof *c + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->bytes += sizeof *c + cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *cl_rg_strndup(struct cl_rg_arena *a, const char *s, size_t n)
{
    char *p = cl_rg_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

struct cl_rv *cl_rg_keep(struct cl_rg_arena *a, struct cl_rv *v)
{
    if (v->frozen)
        return v;
    if (a->nofreeze) {
        if (a->nvals == a->capvals) {
            a->capvals = a->capvals ? a->capvals * 2 : 64;
            a->vals = cl_xrealloc(a->vals, a->capvals * sizeof *a->vals);
        }
        a->vals[a->nvals++] = v;
        return v;
    }
    if (a->nvals == a->capvals) {
        a->capvals = a->capvals ? a->capvals * 2 : 64;
        a->vals = cl_xrealloc(a->vals, a->capvals * sizeof *a->vals);
    }
    a->vals[a->nvals++] = v;
    cl_rv_freeze(v);
    return v;
}

void cl_rg_arena_free(struct cl_rg_arena *a)
{
    if (a->nofreeze) {
        for (size_t i = 0; i < a->nvals; i++)
            cl_rv_decref(a->vals[i]);
    } else {
        cl_rv_release_frozen(a->vals, a->nvals);
    }
    free(a->vals);
    struct cl_rg_chunk *c = a->head;
    while (c) {
        struct cl_rg_chunk *n = c->next;
        free(c);
        c = n;
    }
    memset(a, 0, sizeof *a);
}

struct cl_rg_term *cl_rg_term_new(struct cl_rg_arena *a, enum cl_rg_tk kind, int line, int col)
{
    struct cl_rg_term *t = cl_rg_alloc(a, sizeof *t);
    t->kind = (unsigned char)kind;
    t->line = line;
    t->col = col;
    t->slot = -1;
    return t;
}

/* ---- lexer ---- */

enum tok {
    K_EOF,
    K_IDENT,
    K_STRING,
    K_NUMBER,
    K_TEMPLATE,
    K_LBRACE,
    K_RBRACE,
    K_LBRACK,
    K_RBRACK,
    K_LPAREN,
    K_RPAREN,
    K_DOT,
    K_COMMA,
    K_SEMI,
    K_COLON,
    K_EQ,
    K_ASSIGN,
    K_EQEQ,
    K_NEQ,
    K_LT,
    K_LTE,
    K_GT,
    K_GTE,
    K_PLUS,
    K_MINUS,
    K_STAR,
    K_SLASH,
    K_PERCENT,
    K_AMP,
    K_BAR,
};

struct token {
    enum tok t;
    const char *s; /* source text */
    size_t len;
    int line, col;
    bool nl;  /* a newline was skipped before it */
    bool ws;  /* whitespace was skipped before it */
    bool raw; /* raw string / raw template */
};

struct parser {
    struct cl_rg_arena *a;
    const char *file;
    const char *src, *end, *p;
    int line;
    const char *line_start;
    struct token tok, peek;
    bool have_peek;
    bool v0;
    struct cl_rg_error *err;
    bool failed;
    int depth;
    const char *prev_end; /* end of the last token consumed */
    struct comments *cm;  /* whole-line comments, for METADATA blocks (modules only) */
};

struct comment {
    int line;
    const char *s; /* after '#' */
    size_t len;
};

struct comments {
    struct comment *v;
    size_t n, cap;
};

#define MAX_PARSE_DEPTH 200

CL_PRINTF(4, 5) static void perr(struct parser *P, int line, int col, const char *fmt, ...)
{
    if (P->failed)
        return;
    P->failed = true;
    P->err->code = "rego_parse_error";
    P->err->file = P->file;
    P->err->line = line;
    P->err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err->msg, sizeof P->err->msg, fmt, ap);
    va_end(ap);
}

#define MAX_TEMPLATE_NESTING 16

/* A string literal is text: invalid UTF-8 inside one is refused where it stands. */
static void check_utf8(struct parser *P, struct token *T, const char *end)
{
    const unsigned char *s = (const unsigned char *)T->s, *e = (const unsigned char *)end;
    while (s < e) {
        if (*s < 0x80) { /* ASCII, the common case */
            s++;
            continue;
        }
        size_t n = cl_utf8_seq(s, (size_t)(e - s), NULL);
        if (!n) {
            perr(P, T->line, T->col,
                 "invalid UTF-8 in string (byte 0x%02x at offset %zu of the literal)", *s,
                 (size_t)(s - (const unsigned char *)T->s));
            T->t = K_EOF;
            return;
        }
        s += n;
    }
}

static const char *scan_template(struct parser *P, const char *p, int depth);

/* Skips the expression of a template string after its '{' (strings, raw strings and nested
 * templates inside it included); returns the position after the matching '}' or NULL. */
static const char *scan_template_expr(struct parser *P, const char *p, int depth)
{
    int braces = 1;
    while (p < P->end) {
        char c = *p;
        if (c == '"') {
            for (p++; p < P->end && *p != '"' && *p != '\n'; p++)
                if (*p == '\\')
                    p++;
            if (p >= P->end || *p != '"')
                return NULL;
            p++;
        } else if (c == '`') {
            for (p++; p < P->end && *p != '`'; p++)
                if (*p == '\n') {
                    P->line++;
                    P->line_start = p + 1;
                }
            if (p >= P->end)
                return NULL;
            p++;
        } else if (c == '$' && p + 1 < P->end && (p[1] == '"' || p[1] == '`')) {
            p = scan_template(P, p, depth + 1);
            if (!p)
                return NULL;
        } else if (c == '{') {
            braces++;
            p++;
        } else if (c == '}') {
            p++;
            if (--braces == 0)
                return p;
        } else {
            if (c == '\n') {
                P->line++;
                P->line_start = p + 1;
            }
            p++;
        }
    }
    return NULL;
}

/* Scans a template string $"..." or $`...` starting at '$'; returns the position after its
 * closing quote, or NULL when it does not end (or nests too deeply). */
static const char *scan_template(struct parser *P, const char *p, int depth)
{
    if (depth > MAX_TEMPLATE_NESTING)
        return NULL;
    bool raw = p[1] == '`';
    char close = raw ? '`' : '"';
    p += 2;
    while (p < P->end) {
        char c = *p;
        if (c == close)
            return p + 1;
        if (c == '\n') {
            if (!raw)
                return NULL;
            P->line++;
            P->line_start = p + 1;
        }
        if (c == '\\' && p + 1 < P->end && (!raw || p[1] == '{')) {
            p += 2;
            continue;
        }
        if (c == '{') {
            p = scan_template_expr(P, p + 1, depth);
            if (!p)
                return NULL;
            continue;
        }
        p++;
    }
    return NULL;
}

/* Skips blanks and comments from p (a comment alone on its line is kept for annotations);
 * returns where the token starts. */
static const char *lex_space(struct parser *P, struct token *T, const char *p)
{
    while (p < P->end) {
        char c = *p;
        if (c == '\n') {
            T->nl = T->ws = true;
            p++;
            P->line++;
            P->line_start = p;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            T->ws = true;
            p++;
        } else if (c == '#') {
            const char *h = p;
            while (p < P->end && *p != '\n')
                p++;
            bool alone = true;
            for (const char *q = P->line_start; q < h && alone; q++)
                alone = *q == ' ' || *q == '\t';
            struct comments *cm = P->cm;
            if (cm && alone && (!cm->n || cm->v[cm->n - 1].line < P->line)) {
                if (cm->n == cm->cap) {
                    cm->cap = cm->cap ? cm->cap * 2 : 16;
                    cm->v = cl_xrealloc(cm->v, cm->cap * sizeof *cm->v);
                }
                cm->v[cm->n++] = (struct comment){P->line, h + 1, (size_t)(p - h - 1)};
            }
        } else {
            break;
        }
    }
    return p;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* digits [. digits] [e [+-] digits] */
static const char *lex_number(const struct parser *P, const char *p)
{
    while (p < P->end && is_digit(*p))
        p++;
    if (p + 1 < P->end && *p == '.' && is_digit(p[1])) {
        p++;
        while (p < P->end && is_digit(*p))
            p++;
    }
    if (p < P->end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (q < P->end && (*q == '+' || *q == '-'))
            q++;
        if (q < P->end && is_digit(*q)) {
            p = q;
            while (p < P->end && is_digit(*p))
                p++;
        }
    }
    return p;
}

/* The end of a quoted token starting at p: "..." (one line, escapes), `...` (raw, any lines)
 * or a template $"..." / $`...`; an error (token K_EOF) when it does not end. */
static const char *lex_quoted(struct parser *P, struct token *T, const char *p)
{
    const char *q = NULL;
    const char *what;
    if (*p == '$') {
        T->t = K_TEMPLATE;
        T->raw = p[1] == '`';
        q = scan_template(P, p, 0);
        what = "non-terminated template string";
    } else if (*p == '"') {
        T->t = K_STRING;
        for (p++; p < P->end && *p != '"' && *p != '\n'; p++)
            if (*p == '\\' && p + 1 < P->end)
                p++;
        q = p < P->end && *p == '"' ? p + 1 : NULL;
        what = "non-terminated string";
    } else {
        T->t = K_STRING;
        T->raw = true;
        for (p++; p < P->end && *p != '`'; p++)
            if (*p == '\n') {
                P->line++;
                P->line_start = p + 1;
            }
        q = p < P->end ? p + 1 : NULL;
        what = "non-terminated raw string";
    }
    if (!q) {
        perr(P, T->line, T->col, "%s", what);
        T->t = K_EOF;
        return p;
    }
    check_utf8(P, T, q);
    return q;
}

/* Punctuation by character: the token of the character alone, and with '=' after it (K_EOF:
 * none); chars not listed are illegal ('!' alone is an illegal token). */
static const struct {
    bool known;
    enum tok alone, with_eq;
} puncts[256] = {
    ['{'] = {true, K_LBRACE, K_EOF},  ['}'] = {true, K_RBRACE, K_EOF},
    ['['] = {true, K_LBRACK, K_EOF},  [']'] = {true, K_RBRACK, K_EOF},
    ['('] = {true, K_LPAREN, K_EOF},  [')'] = {true, K_RPAREN, K_EOF},
    ['.'] = {true, K_DOT, K_EOF},     [','] = {true, K_COMMA, K_EOF},
    [';'] = {true, K_SEMI, K_EOF},    [':'] = {true, K_COLON, K_ASSIGN},
    ['='] = {true, K_EQ, K_EQEQ},     ['!'] = {true, K_EOF, K_NEQ},
    ['<'] = {true, K_LT, K_LTE},      ['>'] = {true, K_GT, K_GTE},
    ['+'] = {true, K_PLUS, K_EOF},    ['-'] = {true, K_MINUS, K_EOF},
    ['*'] = {true, K_STAR, K_EOF},    ['/'] = {true, K_SLASH, K_EOF},
    ['%'] = {true, K_PERCENT, K_EOF}, ['&'] = {true, K_AMP, K_EOF},
    ['|'] = {true, K_BAR, K_EOF},
};

static const char *lex_punct(struct parser *P, struct token *T, const char *p)
{
    char c = *p++;
    char n = p < P->end ? *p : 0;
    unsigned char u = (unsigned char)c;
    if (!puncts[u].known) {
        perr(P, T->line, T->col, "illegal character '%c'", c >= 32 && c < 127 ? c : '?');
        T->t = K_EOF;
        return p;
    }
    if (n == '=' && puncts[u].with_eq != K_EOF) {
        T->t = puncts[u].with_eq;
        return p + 1;
    }
    T->t = puncts[u].alone;
    if (T->t == K_EOF)
        perr(P, T->line, T->col, "illegal token '%c'", c);
    return p;
}

static void lex_raw(struct parser *P, struct token *T)
{
    T->nl = T->ws = T->raw = false;
    const char *p = lex_space(P, T, P->p);
    T->s = p;
    T->line = P->line;
    T->col = (int)(p - P->line_start) + 1;
    if (p >= P->end) {
        T->t = K_EOF;
        T->len = 0;
        P->p = p;
        return;
    }
    char c = *p;
    const char *st = p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        while (p < P->end &&
               ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || is_digit(*p)))
            p++;
        T->t = K_IDENT;
    } else if (is_digit(c)) {
        p = lex_number(P, p);
        T->t = K_NUMBER;
    } else if ((c == '$' && p + 1 < P->end && (p[1] == '"' || p[1] == '`')) || c == '"' ||
               c == '`') {
        p = lex_quoted(P, T, p);
    } else {
        p = lex_punct(P, T, p);
    }
    T->len = (size_t)(p - st);
    P->p = p;
}

static void next(struct parser *P)
{
    P->prev_end = P->tok.s ? P->tok.s + P->tok.len : P->src;
    if (P->have_peek) {
        P->tok = P->peek;
        P->have_peek = false;
    } else {
        lex_raw(P, &P->tok);
    }
}

static struct token *peek(struct parser *P)
{
    if (!P->have_peek) {
        lex_raw(P, &P->peek);
        P->have_peek = true;
    }
    return &P->peek;
}

static bool is_kw_n(const struct token *T, const char *kw, size_t n)
{
    return T->t == K_IDENT && T->len == n && T->s[0] == kw[0] && memcmp(T->s, kw, n) == 0;
}
/* keywords are literals: their length is known at compile time */
#define is_kw(T, kw) is_kw_n((T), "" kw, sizeof(kw) - 1)

/* The keyword at the current token starts a reference (`not.foo`, `in.foo contains 1`,
 * `if.f(x)`): OPA v1 allows keywords as the first part of a ref where nothing else can follow
 * them. A dot right after the keyword is never anything else; a bracket is a ref only at the
 * start of a line (`x in[1]` stays membership). */
static bool kw_starts_ref(struct parser *P)
{
    const struct token *n = peek(P);
    if (n->ws)
        return false;
    return n->t == K_DOT || (n->t == K_LBRACK && P->tok.nl);
}

static bool accept(struct parser *P, enum tok t)
{
    if (P->tok.t == t) {
        next(P);
        return true;
    }
    return false;
}

static bool expect(struct parser *P, enum tok t, const char *what)
{
    if (accept(P, t))
        return true;
    perr(P, P->tok.line, P->tok.col, "expected %s", what);
    return false;
}

/* Decodes the escapes of a quoted string token into a value. */
static void utf8_put(struct cl_sbuf *b, unsigned cp)
{
    char o[4];
    if (cp < 0x80) {
        o[0] = (char)cp;
        cl_sbuf_add(b, o, 1);
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        cl_sbuf_add(b, o, 2);
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        cl_sbuf_add(b, o, 3);
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        cl_sbuf_add(b, o, 4);
    }
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* s..e is the content between the quotes. */
static bool unescape(struct parser *P, const char *s, const char *e, struct cl_sbuf *b, int line,
                     int col)
{
    while (s < e) {
        if (*s != '\\') {
            /* the run up to the next escape in one copy */
            const char *bs = memchr(s, '\\', (size_t)(e - s));
            const char *stop = bs ? bs : e;
            cl_sbuf_add(b, s, (size_t)(stop - s));
            s = stop;
            continue;
        }
        s++;
        if (s >= e)
            break;
        char c = *s++;
        switch (c) {
        case '"':
            cl_sbuf_addc(b, '"');
            break;
        case '\\':
            cl_sbuf_addc(b, '\\');
            break;
        case '/':
            cl_sbuf_addc(b, '/');
            break;
        case 'b':
            cl_sbuf_addc(b, '\b');
            break;
        case 'f':
            cl_sbuf_addc(b, '\f');
            break;
        case 'n':
            cl_sbuf_addc(b, '\n');
            break;
        case 'r':
            cl_sbuf_addc(b, '\r');
            break;
        case 't':
            cl_sbuf_addc(b, '\t');
            break;
        case 'u': {
            unsigned cp;
            if (e - s < 4 || hex4(s, &cp) < 0) {
                perr(P, line, col, "invalid unicode escape in string");
                return false;
            }
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && e - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                unsigned lo;
                if (hex4(s + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    s += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD; /* a lone surrogate is no character: OPA (Go) decodes it so */
            utf8_put(b, cp);
            break;
        }
        default:
            perr(P, line, col, "invalid escape sequence '\\%c' in string", c);
            return false;
        }
    }
    return true;
}

static struct cl_rv *tok_string(struct parser *P, const struct token *T)
{
    if (T->raw)
        return cl_rv_str(T->s + 1, T->len - 2);
    struct cl_sbuf b = {0};
    if (!unescape(P, T->s + 1, T->s + T->len - 1, &b, T->line, T->col)) {
        cl_sbuf_free(&b);
        return NULL;
    }
    struct cl_rv *v = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return v;
}

/* ---- term helpers ---- */

static struct cl_rg_term *mk_value(struct parser *P, struct cl_rv *v, int line, int col)
{
    struct cl_rg_term *t = cl_rg_term_new(P->a, RG_T_VALUE, line, col);
    t->val = cl_rg_keep(P->a, v);
    return t;
}

static struct cl_rg_term *mk_var(struct parser *P, const char *s, size_t n, int line, int col)
{
    struct cl_rg_term *t = cl_rg_term_new(P->a, RG_T_VAR, line, col);
    t->name = cl_rg_strndup(P->a, s, n);
    t->wildcard = n == 1 && s[0] == '_';
    return t;
}

struct tvec {
    struct cl_rg_term **v;
    size_t n, cap;
};

static void tv_push(struct tvec *tv, struct cl_rg_term *t)
{
    if (tv->n == tv->cap) {
        tv->cap = tv->cap ? tv->cap * 2 : 4;
        tv->v = cl_xrealloc(tv->v, tv->cap * sizeof *tv->v);
    }
    tv->v[tv->n++] = t;
}

static struct cl_rg_term **tv_finish(struct parser *P, struct tvec *tv)
{
    struct cl_rg_term **out = cl_rg_alloc(P->a, (tv->n ? tv->n : 1) * sizeof *out);
    if (tv->n)
        memcpy(out, tv->v, tv->n * sizeof *out);
    free(tv->v);
    tv->v = NULL;
    tv->cap = 0;
    return out;
}

static struct cl_rg_term *mk_call(struct parser *P, const char *fname, int line, int col,
                                  struct cl_rg_term *a, struct cl_rg_term *b)
{
    struct cl_rg_term *t = cl_rg_term_new(P->a, RG_T_CALL, line, col);
    t->name = fname;
    t->n = b ? 2 : 1;
    t->items = cl_rg_alloc(P->a, 2 * sizeof *t->items);
    t->items[0] = a;
    t->items[1] = b;
    return t;
}

/* Folds composite literals whose members are all constants into one constant. */
static struct cl_rg_term *fold(struct parser *P, struct cl_rg_term *t)
{
    if (t->kind != RG_T_ARRAY && t->kind != RG_T_SET && t->kind != RG_T_OBJECT)
        return t;
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i]->kind != RG_T_VALUE)
            return t;
    struct cl_rv *v;
    if (t->kind == RG_T_ARRAY) {
        v = cl_rv_array(t->n);
        for (size_t i = 0; i < t->n; i++)
            cl_rv_array_push(v, cl_rv_incref(t->items[i]->val));
    } else if (t->kind == RG_T_SET) {
        v = cl_rv_set();
        for (size_t i = 0; i < t->n; i++)
            cl_rv_set_add(v, cl_rv_incref(t->items[i]->val));
    } else {
        v = cl_rv_object();
        for (size_t i = 0; i + 1 < t->n; i += 2) {
            if (cl_rv_obj_get(v, t->items[i]->val))
                return t; /* duplicate constant keys: leave for the evaluator (conflict) */
            cl_rv_obj_put(v, cl_rv_incref(t->items[i]->val), cl_rv_incref(t->items[i + 1]->val));
        }
    }
    if (v->type == CL_RV_OBJECT && v->u.obj.len * 2 != t->n) {
        cl_rv_decref(v);
        return t;
    }
    return mk_value(P, v, t->line, t->col);
}

static struct cl_rg_term *parse_in(struct parser *P, bool no_or);
static struct cl_rg_term *parse_in_kv(struct parser *P, bool no_or, bool kv);
static struct cl_rg_term *parse_rel(struct parser *P, bool no_or);
static struct cl_rg_term *parse_term(struct parser *P, bool no_or);
static struct cl_rg_body *parse_body(struct parser *P, enum tok end);
static struct cl_rg_expr *parse_literal(struct parser *P);

static bool enter(struct parser *P)
{
    if (++P->depth > MAX_PARSE_DEPTH) {
        perr(P, P->tok.line, P->tok.col, "nesting too deep (more than %d levels)", MAX_PARSE_DEPTH);
        return false;
    }
    return true;
}

/* Template string $"..{expr}.." -> internal.template_string([parts...]). Literal parts are
 * unescaped (`\{` is a literal brace); each expression is parsed from the source text as a
 * literal (`with` modifiers allowed) and wrapped in a set comprehension, so an undefined
 * expression prints <undefined> and several values are all shown. */
static struct cl_rg_term *parse_template(struct parser *P, const struct token *T)
{
    const char *c = T->s + 2, *e = T->s + T->len - 1;
    struct tvec parts = {0};
    struct cl_sbuf lit = {0};
    int line = T->line;
    const char *line_start = c - T->col - 1;
    while (c < e && !P->failed) {
        if (*c == '\\' && c + 1 < e && c[1] == '{') {
            cl_sbuf_addc(&lit, '{');
            c += 2;
            continue;
        }
        if (*c == '\n') {
            line++;
            line_start = c + 1;
        }
        if (*c != '{') {
            const char *s0 = c;
            while (c < e && *c != '{' && !(*c == '\\' && c + 1 < e && c[1] == '{') && *c != '\n') {
                if (*c == '\\' && !T->raw && c + 1 < e)
                    c++;
                c++;
            }
            if (c == s0) { /* a newline (raw templates) */
                cl_sbuf_addc(&lit, *c++);
                continue;
            }
            if (T->raw)
                cl_sbuf_add(&lit, s0, (size_t)(c - s0));
            else if (!unescape(P, s0, c, &lit, T->line, T->col))
                break;
            continue;
        }
        /* an expression: find its end as the lexer did */
        struct parser S = *P;
        S.p = c + 1;
        S.line = line;
        S.line_start = line_start;
        const char *end = scan_template_expr(&S, c + 1, 0);
        if (!end) {
            perr(P, T->line, T->col, "unterminated expression in template string");
            break;
        }
        if (lit.len) {
            tv_push(&parts, mk_value(P, cl_rv_str(lit.s, lit.len), T->line, T->col));
            lit.len = 0;
        }
        struct parser Q = *P;
        Q.src = Q.p = c + 1;
        Q.end = end - 1;
        Q.line = line;
        Q.line_start = line_start;
        Q.have_peek = false;
        Q.depth = P->depth;
        next(&Q);
        struct cl_rg_expr *x = Q.tok.t == K_EOF ? NULL : parse_literal(&Q);
        if (!Q.failed && !x)
            perr(&Q, line, (int)(c - line_start) + 1, "empty expression in template string");
        if (!Q.failed && Q.tok.t != K_EOF)
            perr(&Q, Q.tok.line, Q.tok.col, "unexpected '%.*s' in template expression",
                 (int)(Q.tok.len ? Q.tok.len : 1), Q.tok.s);
        if (!Q.failed && (x->kind != RG_E_TERM || x->negated))
            perr(&Q, x->line, x->col, "template expressions must be terms");
        if (Q.failed) {
            P->failed = true;
            break;
        }
        line = Q.line;
        line_start = Q.line_start;
        struct cl_rg_term *comp = cl_rg_term_new(P->a, RG_T_SCOMP, x->line, x->col);
        struct cl_rg_term *v = mk_var(P, "__tpl", 5, x->line, x->col);
        comp->value = v;
        comp->body = cl_rg_alloc(P->a, sizeof *comp->body);
        comp->body->n = 1;
        comp->body->exprs = cl_rg_alloc(P->a, sizeof *comp->body->exprs);
        struct cl_rg_expr *ex = cl_rg_alloc(P->a, sizeof *ex);
        *ex = *x;
        ex->term = mk_call(P, "assign", x->line, x->col, v, x->term);
        comp->body->exprs[0] = ex;
        tv_push(&parts, comp);
        c = end;
    }
    if (lit.len && !P->failed)
        tv_push(&parts, mk_value(P, cl_rv_str(lit.s, lit.len), T->line, T->col));
    cl_sbuf_free(&lit);
    if (P->failed) {
        free(parts.v);
        return NULL;
    }
    struct cl_rg_term *arr = cl_rg_term_new(P->a, RG_T_ARRAY, T->line, T->col);
    arr->n = parts.n;
    arr->items = tv_finish(P, &parts);
    return mk_call(P, "internal.template_string", T->line, T->col, fold(P, arr), NULL);
}

/* Ref suffixes: .name, [term], (args) -- only without whitespace before them. */
static struct cl_rg_term *parse_ref_rest(struct parser *P, struct cl_rg_term *head)
{
    struct tvec parts = {0};
    tv_push(&parts, head);
    struct cl_rg_term *cur = NULL;
    while (!P->failed) {
        if (P->tok.ws)
            break;
        if (P->tok.t == K_DOT) {
            next(P);
            if (P->tok.t != K_IDENT || P->tok.ws) {
                if (P->tok.t == K_EOF)
                    perr(P, P->tok.line, P->tok.col, "unexpected eof token: expected ident");
                else
                    perr(P, P->tok.line, P->tok.col,
                         "unexpected %.*s token: expected ident after '.'",
                         (int)(P->tok.len ? P->tok.len : 1), P->tok.s);
                break;
            }
            tv_push(&parts, mk_value(P, cl_rv_str(P->tok.s, P->tok.len), P->tok.line, P->tok.col));
            next(P);
        } else if (P->tok.t == K_LBRACK) {
            next(P);
            struct cl_rg_term *k = parse_in(P, false);
            if (!k)
                break;
            tv_push(&parts, k);
            if (!expect(P, K_RBRACK, "']'"))
                break;
        } else if (P->tok.t == K_LPAREN) {
            /* a call: the ref so far must be a name */
            struct cl_sbuf nm = {0};
            bool ok = parts.v[0]->kind == RG_T_VAR;
            for (size_t i = 0; ok && i < parts.n; i++) {
                if (i == 0) {
                    cl_sbuf_adds(&nm, parts.v[0]->name);
                } else if (parts.v[i]->kind == RG_T_VALUE &&
                           parts.v[i]->val->type == CL_RV_STRING) {
                    cl_sbuf_addc(&nm, '.');
                    cl_sbuf_add(&nm, parts.v[i]->val->u.str.s, parts.v[i]->val->u.str.len);
                } else {
                    ok = false;
                }
            }
            if (!ok) {
                cl_sbuf_free(&nm);
                perr(P, P->tok.line, P->tok.col, "illegal call target");
                break;
            }
            int line = parts.v[0]->line, col = parts.v[0]->col;
            next(P);
            struct tvec args = {0};
            while (P->tok.t != K_RPAREN && !P->failed) {
                struct cl_rg_term *x = parse_in(P, false);
                if (!x)
                    break;
                tv_push(&args, x);
                if (!accept(P, K_COMMA))
                    break;
            }
            expect(P, K_RPAREN, "')'");
            struct cl_rg_term *call = cl_rg_term_new(P->a, RG_T_CALL, line, col);
            call->name = cl_rg_strndup(P->a, nm.s, nm.len);
            cl_sbuf_free(&nm);
            call->n = args.n;
            call->items = tv_finish(P, &args);
            free(parts.v);
            parts = (struct tvec){0};
            tv_push(&parts, call);
            cur = call;
        } else {
            break;
        }
    }
    if (parts.n == 1) {
        struct cl_rg_term *t = parts.v[0];
        free(parts.v);
        return cur ? cur : t;
    }
    struct cl_rg_term *ref = cl_rg_term_new(P->a, RG_T_REF, head->line, head->col);
    ref->n = parts.n;
    ref->items = tv_finish(P, &parts);
    return ref;
}

static struct cl_rg_term *parse_composite(struct parser *P, bool brace)
{
    int line = P->tok.line, col = P->tok.col;
    enum tok close = brace ? K_RBRACE : K_RBRACK;
    next(P);
    if (accept(P, close)) {
        if (brace)
            return mk_value(P, cl_rv_object(), line, col);
        return mk_value(P, cl_rv_array(0), line, col);
    }
    struct cl_rg_term *first = parse_in(P, true);
    if (!first)
        return NULL;
    if (brace && P->tok.t == K_COLON) {
        next(P);
        struct cl_rg_term *v1 = parse_in(P, true);
        if (!v1)
            return NULL;
        if (P->tok.t == K_BAR) {
            next(P);
            struct cl_rg_term *t = cl_rg_term_new(P->a, RG_T_OCOMP, line, col);
            t->key = first;
            t->value = v1;
            t->body = parse_body(P, K_RBRACE);
            if (!t->body)
                return NULL;
            expect(P, K_RBRACE, "'}'");
            return t;
        }
        struct tvec items = {0};
        tv_push(&items, first);
        tv_push(&items, v1);
        while (accept(P, K_COMMA) && P->tok.t != K_RBRACE && !P->failed) {
            struct cl_rg_term *k = parse_in(P, false);
            if (!k || !expect(P, K_COLON, "':'"))
                break;
            struct cl_rg_term *v = parse_in(P, false);
            if (!v)
                break;
            tv_push(&items, k);
            tv_push(&items, v);
        }
        expect(P, K_RBRACE, "'}'");
        struct cl_rg_term *t = cl_rg_term_new(P->a, RG_T_OBJECT, line, col);
        t->n = items.n;
        t->items = tv_finish(P, &items);
        return P->failed ? NULL : fold(P, t);
    }
    if (P->tok.t == K_BAR) {
        next(P);
        struct cl_rg_term *t = cl_rg_term_new(P->a, brace ? RG_T_SCOMP : RG_T_ACOMP, line, col);
        t->value = first;
        t->body = parse_body(P, close);
        if (!t->body)
            return NULL;
        expect(P, close, brace ? "'}'" : "']'");
        return P->failed ? NULL : t;
    }
    struct tvec items = {0};
    tv_push(&items, first);
    while (accept(P, K_COMMA) && P->tok.t != close && !P->failed) {
        struct cl_rg_term *x = parse_in(P, false);
        if (!x)
            break;
        tv_push(&items, x);
    }
    expect(P, close, brace ? "'}'" : "']'");
    struct cl_rg_term *t = cl_rg_term_new(P->a, brace ? RG_T_SET : RG_T_ARRAY, line, col);
    t->n = items.n;
    t->items = tv_finish(P, &items);
    return P->failed ? NULL : fold(P, t);
}

static struct cl_rg_term *parse_term(struct parser *P, bool no_or)
{
    (void)no_or;
    if (P->failed || !enter(P))
        return NULL;
    struct token T = P->tok;
    struct cl_rg_term *t = NULL;
    switch (T.t) {
    case K_NUMBER: {
        struct cl_rv *v = cl_rv_number_parse(T.s, T.len);
        if (!v) {
            perr(P, T.line, T.col, "invalid number '%.*s'", (int)T.len, T.s);
            break;
        }
        next(P);
        t = mk_value(P, v, T.line, T.col);
        break;
    }
    case K_STRING: {
        struct cl_rv *v = tok_string(P, &T);
        if (!v)
            break;
        next(P);
        t = parse_ref_rest(P, mk_value(P, v, T.line, T.col));
        break;
    }
    case K_TEMPLATE:
        next(P);
        t = parse_template(P, &T);
        break;
    case K_MINUS: {
        next(P);
        if (P->tok.t == K_NUMBER && !P->tok.ws) {
            struct token N = P->tok;
            char buf[160];
            if (N.len + 2 > sizeof buf) {
                perr(P, N.line, N.col, "number too long");
                break;
            }
            buf[0] = '-';
            memcpy(buf + 1, N.s, N.len);
            struct cl_rv *v = cl_rv_number_parse(buf, N.len + 1);
            if (!v) {
                perr(P, N.line, N.col, "invalid number");
                break;
            }
            next(P);
            t = mk_value(P, v, T.line, T.col);
        } else {
            struct cl_rg_term *x = parse_term(P, no_or);
            if (x)
                t = mk_call(P, "minus", T.line, T.col, mk_value(P, cl_rv_int(0), T.line, T.col), x);
        }
        break;
    }
    case K_LBRACK:
        t = parse_composite(P, false);
        if (t)
            t = parse_ref_rest(P, t);
        break;
    case K_LBRACE:
        t = parse_composite(P, true);
        if (t)
            t = parse_ref_rest(P, t);
        break;
    case K_LPAREN:
        next(P);
        t = parse_in_kv(P, false, true);
        if (t && expect(P, K_RPAREN, "')'"))
            t = parse_ref_rest(P, t);
        break;
    case K_IDENT:
        if ((peek(P)->t == K_DOT || peek(P)->t == K_LBRACK) && !peek(P)->ws &&
            (is_kw(&T, "true") || is_kw(&T, "false") || is_kw(&T, "null") ||
             is_kw(&T, "contains") || is_kw(&T, "else") || is_kw(&T, "package") ||
             is_kw(&T, "with") || is_kw(&T, "if") || is_kw(&T, "import") || is_kw(&T, "as") ||
             is_kw(&T, "default") || is_kw(&T, "in") || is_kw(&T, "every") || is_kw(&T, "some") ||
             is_kw(&T, "not"))) {
            /* keywords as the first part of a reference (data.foo.if, false.foo := 1) */
            next(P);
            t = parse_ref_rest(P, mk_var(P, T.s, T.len, T.line, T.col));
        } else if (is_kw(&T, "true") || is_kw(&T, "false")) {
            next(P);
            t = mk_value(P, cl_rv_bool(T.s[0] == 't'), T.line, T.col);
        } else if (is_kw(&T, "null")) {
            next(P);
            t = mk_value(P, cl_rv_null(), T.line, T.col);
        } else if (is_kw(&T, "set") && peek(P)->t == K_LPAREN && !peek(P)->ws) {
            next(P);
            next(P);
            if (expect(P, K_RPAREN, "')' (set() takes no arguments)"))
                t = mk_value(P, cl_rv_set(), T.line, T.col);
        } else if (is_kw(&T, "not") || is_kw(&T, "some") || is_kw(&T, "with") ||
                   is_kw(&T, "else") || is_kw(&T, "import") || is_kw(&T, "package") ||
                   is_kw(&T, "every") || is_kw(&T, "in") || is_kw(&T, "as") ||
                   is_kw(&T, "default") || is_kw(&T, "if") || is_kw(&T, "contains")) {
            if ((is_kw(&T, "contains") || is_kw(&T, "if") || is_kw(&T, "in") ||
                 is_kw(&T, "every")) &&
                P->v0 && peek(P)->t == K_LPAREN) {
                /* v0: a builtin named like a future keyword, e.g. contains(s, x) */
                next(P);
                t = parse_ref_rest(P, mk_var(P, T.s, T.len, T.line, T.col));
            } else if (is_kw(&T, "contains") && peek(P)->t == K_LPAREN && !peek(P)->ws) {
                next(P);
                t = parse_ref_rest(P, mk_var(P, T.s, T.len, T.line, T.col));
            } else {
                perr(P, T.line, T.col, "unexpected keyword '%.*s'", (int)T.len, T.s);
            }
        } else {
            next(P);
            t = parse_ref_rest(P, mk_var(P, T.s, T.len, T.line, T.col));
        }
        break;
    case K_EOF:
        if (!P->failed)
            perr(P, T.line, T.col, "unexpected end of input");
        break;
    default:
        perr(P, T.line, T.col, "unexpected '%.*s'", (int)(T.len ? T.len : 1), T.s);
    }
    P->depth--;
    return P->failed ? NULL : t;
}

static struct cl_rg_term *parse_factor(struct parser *P, bool no_or)
{
    struct cl_rg_term *l = parse_term(P, no_or);
    while (l && !P->failed) {
        const char *op = P->tok.t == K_STAR      ? "mul"
                         : P->tok.t == K_SLASH   ? "div"
                         : P->tok.t == K_PERCENT ? "rem"
                                                 : NULL;
        if (!op)
            break;
        int line = P->tok.line, col = P->tok.col;
        next(P);
        struct cl_rg_term *r = parse_term(P, no_or);
        if (!r)
            return NULL;
        l = mk_call(P, op, line, col, l, r);
    }
    return l;
}

static struct cl_rg_term *parse_arith(struct parser *P, bool no_or)
{
    struct cl_rg_term *l = parse_factor(P, no_or);
    while (l && !P->failed) {
        const char *op = P->tok.t == K_PLUS ? "plus" : P->tok.t == K_MINUS ? "minus" : NULL;
        if (!op)
            break;
        int line = P->tok.line, col = P->tok.col;
        next(P);
        struct cl_rg_term *r = parse_factor(P, no_or);
        if (!r)
            return NULL;
        l = mk_call(P, op, line, col, l, r);
    }
    return l;
}

static struct cl_rg_term *parse_and(struct parser *P, bool no_or)
{
    struct cl_rg_term *l = parse_arith(P, no_or);
    while (l && !P->failed && P->tok.t == K_AMP) {
        int line = P->tok.line, col = P->tok.col;
        next(P);
        struct cl_rg_term *r = parse_arith(P, no_or);
        if (!r)
            return NULL;
        l = mk_call(P, "and", line, col, l, r);
    }
    return l;
}

static struct cl_rg_term *parse_or(struct parser *P, bool no_or)
{
    struct cl_rg_term *l = parse_and(P, no_or);
    while (l && !P->failed && !no_or && P->tok.t == K_BAR) {
        int line = P->tok.line, col = P->tok.col;
        next(P);
        struct cl_rg_term *r = parse_and(P, no_or);
        if (!r)
            return NULL;
        l = mk_call(P, "or", line, col, l, r);
    }
    return l;
}

static struct cl_rg_term *parse_rel(struct parser *P, bool no_or)
{
    struct cl_rg_term *l = parse_or(P, no_or);
    while (l && !P->failed) {
        const char *op = NULL;
        switch (P->tok.t) {
        case K_EQEQ:
            op = "equal";
            break;
        case K_NEQ:
            op = "neq";
            break;
        case K_LT:
            op = "lt";
            break;
        case K_LTE:
            op = "lte";
            break;
        case K_GT:
            op = "gt";
            break;
        case K_GTE:
            op = "gte";
            break;
        default:
            break;
        }
        if (!op)
            break;
        int line = P->tok.line, col = P->tok.col;
        next(P);
        struct cl_rg_term *r = parse_or(P, no_or);
        if (!r)
            return NULL;
        l = mk_call(P, op, line, col, l, r);
    }
    return l;
}

static struct cl_rg_term *mk_member3(struct parser *P, int line, int col, struct cl_rg_term *k,
                                     struct cl_rg_term *v, struct cl_rg_term *c)
{
    struct cl_rg_term *call = cl_rg_term_new(P->a, RG_T_CALL, line, col);
    call->name = "internal.member_3";
    call->n = 3;
    call->items = cl_rg_alloc(P->a, 3 * sizeof *call->items);
    call->items[0] = k;
    call->items[1] = v;
    call->items[2] = c;
    return call;
}

/* `k, v in coll` where allowed (inside parentheses, at expression level): tried
 * speculatively, the parser state is restored when it is not that form. */
static struct cl_rg_term *try_kv_in(struct parser *P, struct cl_rg_term *l)
{
    if (P->tok.t != K_COMMA)
        return NULL;
    struct parser save = *P;
    struct cl_rg_error esave = *P->err;
    int line = P->tok.line, col = P->tok.col;
    next(P);
    struct cl_rg_term *v = parse_rel(P, false);
    if (v && !P->failed && is_kw(&P->tok, "in") && !(P->tok.nl && kw_starts_ref(P))) {
        next(P);
        struct cl_rg_term *c = parse_rel(P, false);
        if (c)
            return mk_member3(P, line, col, l, v, c);
        return NULL;
    }
    *P = save;
    *P->err = esave;
    return NULL;
}

static struct cl_rg_term *parse_in_kv(struct parser *P, bool no_or, bool kv)
{
    struct cl_rg_term *l = parse_rel(P, no_or);
    if (l && kv && P->tok.t == K_COMMA) {
        struct cl_rg_term *m = try_kv_in(P, l);
        if (P->failed)
            return NULL;
        if (m)
            l = m;
    }
    while (l && !P->failed && is_kw(&P->tok, "in") && !(P->tok.nl && kw_starts_ref(P))) {
        int line = P->tok.line, col = P->tok.col;
        next(P);
        struct cl_rg_term *r = parse_rel(P, no_or);
        if (!r)
            return NULL;
        l = mk_call(P, "internal.member_2", line, col, l, r);
    }
    return l;
}

static struct cl_rg_term *parse_in(struct parser *P, bool no_or)
{
    return parse_in_kv(P, no_or, false);
}

/* ---- expressions and bodies ---- */

static struct cl_rg_expr *new_expr(struct parser *P, enum cl_rg_ek kind, int line, int col)
{
    struct cl_rg_expr *e = cl_rg_alloc(P->a, sizeof *e);
    e->kind = (unsigned char)kind;
    e->line = line;
    e->col = col;
    return e;
}

static struct cl_rg_expr *parse_some(struct parser *P)
{
    int line = P->tok.line, col = P->tok.col;
    next(P);
    struct tvec vars = {0};
    for (;;) {
        struct cl_rg_term *x = parse_rel(P, false);
        if (!x)
            break;
        tv_push(&vars, x);
        if (!accept(P, K_COMMA))
            break;
    }
    if (P->failed) {
        free(vars.v);
        return NULL;
    }
    if (is_kw(&P->tok, "in")) {
        next(P);
        if (vars.n > 2) {
            free(vars.v);
            perr(P, line, col, "some ... in takes at most two variables");
            return NULL;
        }
        struct cl_rg_expr *e = new_expr(P, RG_E_SOMEIN, line, col);
        e->key = vars.n == 2 ? vars.v[0] : NULL;
        e->val = vars.v[vars.n - 1];
        free(vars.v);
        e->coll = parse_rel(P, false);
        return e->coll ? e : NULL;
    }
    for (size_t i = 0; i < vars.n; i++) {
        if (vars.v[i]->kind != RG_T_VAR) {
            int l = vars.v[i]->line, c = vars.v[i]->col;
            free(vars.v);
            perr(P, l, c, "expected variable in some declaration");
            return NULL;
        }
    }
    struct cl_rg_expr *e = new_expr(P, RG_E_SOME, line, col);
    e->nvars = vars.n;
    e->vars = tv_finish(P, &vars);
    return e;
}

static struct cl_rg_expr *parse_every(struct parser *P)
{
    int line = P->tok.line, col = P->tok.col;
    next(P);
    struct cl_rg_expr *e = new_expr(P, RG_E_EVERY, line, col);
    if (P->tok.t != K_IDENT) {
        perr(P, P->tok.line, P->tok.col, "expected variable after every");
        return NULL;
    }
    e->val = mk_var(P, P->tok.s, P->tok.len, P->tok.line, P->tok.col);
    next(P);
    if (accept(P, K_COMMA)) {
        if (P->tok.t != K_IDENT) {
            perr(P, P->tok.line, P->tok.col, "expected variable after ','");
            return NULL;
        }
        e->key = e->val;
        e->val = mk_var(P, P->tok.s, P->tok.len, P->tok.line, P->tok.col);
        next(P);
    }
    if (!is_kw(&P->tok, "in")) {
        perr(P, P->tok.line, P->tok.col, "expected 'in' in every");
        return NULL;
    }
    next(P);
    e->coll = parse_rel(P, false);
    if (!e->coll)
        return NULL;
    if (P->tok.t != K_LBRACE) {
        perr(P, P->tok.line, P->tok.col, "expected '{' after every domain");
        return NULL;
    }
    next(P);
    e->body = parse_body(P, K_RBRACE);
    if (!e->body || !expect(P, K_RBRACE, "'}'"))
        return NULL;
    return e;
}

/* A `with` modifier, not a reference starting with the keyword (`with.foo` on the next line). */
static bool is_with(struct parser *P)
{
    return is_kw(&P->tok, "with") &&
           !((peek(P)->t == K_DOT || peek(P)->t == K_LBRACK) && !peek(P)->ws);
}

static struct cl_rg_expr *parse_literal_inner(struct parser *P);

static struct cl_rg_expr *parse_literal(struct parser *P)
{
    const char *start = P->tok.s;
    struct cl_rg_expr *e = parse_literal_inner(P);
    if (e && start && P->prev_end >= start) {
        e->off = (int)(start - P->src);
        e->len = (int)(P->prev_end - start);
    }
    return e;
}

static struct cl_rg_expr *parse_literal_inner(struct parser *P)
{
    if (P->failed || !enter(P))
        return NULL;
    struct cl_rg_expr *e = NULL;
    int line = P->tok.line, col = P->tok.col;
    if (is_kw(&P->tok, "not") && !kw_starts_ref(P)) {
        next(P);
        e = parse_literal(P);
        if (e) {
            if (e->negated || e->kind != RG_E_TERM) {
                perr(P, line, col, "unexpected expression after not");
                e = NULL;
            } else {
                e->negated = true;
                e->line = line;
                e->col = col;
            }
        }
        P->depth--;
        return e;
    }
    if (is_kw(&P->tok, "some") && !kw_starts_ref(P)) {
        e = parse_some(P);
    } else if (is_kw(&P->tok, "every") && !kw_starts_ref(P)) {
        e = parse_every(P);
    } else {
        struct cl_rg_term *l = parse_in_kv(P, false, true);
        if (l && (P->tok.t == K_EQ || P->tok.t == K_ASSIGN)) {
            const char *op = P->tok.t == K_EQ ? "eq" : "assign";
            int l2 = P->tok.line, c2 = P->tok.col;
            next(P);
            struct cl_rg_term *r = parse_in(P, false);
            l = r ? mk_call(P, op, l2, c2, l, r) : NULL;
        }
        if (l && !P->failed) {
            e = new_expr(P, RG_E_TERM, line, col);
            e->term = l;
        }
    }
    if (e && is_with(P)) {
        size_t cap = 0;
        while (is_with(P) && !P->failed) {
            next(P);
            struct cl_rg_term *target = parse_term(P, false);
            if (!target)
                break;
            if (!is_kw(&P->tok, "as")) {
                perr(P, P->tok.line, P->tok.col, "expected 'as' in with modifier");
                break;
            }
            next(P);
            struct cl_rg_term *val = parse_in(P, false);
            if (!val)
                break;
            if (e->nwith == cap) {
                size_t ncap = cap ? cap * 2 : 2;
                struct cl_rg_with *nw = cl_rg_alloc(P->a, ncap * sizeof *nw);
                if (e->nwith)
                    memcpy(nw, e->with, e->nwith * sizeof *nw);
                e->with = nw;
                cap = ncap;
            }
            e->with[e->nwith].target = target;
            e->with[e->nwith].value = val;
            e->nwith++;
        }
    }
    P->depth--;
    return P->failed ? NULL : e;
}

/* Literals separated by ';' or newlines, up to (not including) `end`. */
static struct cl_rg_body *parse_body(struct parser *P, enum tok end)
{
    struct cl_rg_body *b = cl_rg_alloc(P->a, sizeof *b);
    size_t cap = 0;
    while (!P->failed) {
        while (P->tok.t == K_SEMI)
            next(P);
        if (P->tok.t == end || P->tok.t == K_EOF)
            break;
        struct cl_rg_expr *e = parse_literal(P);
        if (!e)
            return NULL;
        if (b->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct cl_rg_expr **ne = cl_rg_alloc(P->a, ncap * sizeof *ne);
            if (b->n)
                memcpy(ne, b->exprs, b->n * sizeof *ne);
            b->exprs = ne;
            cap = ncap;
        }
        e->idx = (int)b->n;
        b->exprs[b->n++] = e;
        if (P->tok.t == K_SEMI || P->tok.t == end || P->tok.t == K_EOF)
            continue;
        if (!P->tok.nl) {
            perr(P, P->tok.line, P->tok.col, "unexpected '%.*s', expected a new line or ';'",
                 (int)(P->tok.len ? P->tok.len : 1), P->tok.s);
            return NULL;
        }
    }
    if (P->failed)
        return NULL;
    if (b->n == 0 && end != K_EOF) {
        perr(P, P->tok.line, P->tok.col, "found empty body");
        return NULL;
    }
    return b;
}

/* ---- rules ---- */

static struct cl_rg_body *empty_body(struct parser *P)
{
    return cl_rg_alloc(P->a, sizeof(struct cl_rg_body));
}

/* Body after a head: `if {..}`, `if literal`, v0 `{..}`, or nothing. */
static struct cl_rg_body *parse_rule_body(struct parser *P, bool *had)
{
    *had = false;
    if (is_kw(&P->tok, "if") && !(kw_starts_ref(P) && (P->tok.nl || peek(P)->t == K_DOT))) {
        next(P);
        *had = true;
        if (P->tok.t == K_LBRACE) {
            /* `if { body }`, unless the brace starts a term: `if {x: 1 | ...}` is tried as a
             * body first, then as one literal */
            bool empty = peek(P)->t == K_RBRACE;
            struct parser save = *P;
            struct cl_rg_error esave = *P->err;
            next(P);
            struct cl_rg_body *b = parse_body(P, K_RBRACE);
            if (b && expect(P, K_RBRACE, "'}'"))
                return b;
            if (empty)
                return NULL;
            struct parser failed = *P;
            struct cl_rg_error efailed = *P->err;
            *P = save;
            *P->err = esave;
            struct cl_rg_expr *e = parse_literal(P);
            if (!e || (P->tok.t != K_EOF && !P->tok.nl && P->tok.t != K_SEMI &&
                       !is_kw(&P->tok, "else"))) {
                *P = failed; /* report the error of the body */
                *P->err = efailed;
                return NULL;
            }
            b = cl_rg_alloc(P->a, sizeof *b);
            b->exprs = cl_rg_alloc(P->a, sizeof *b->exprs);
            b->exprs[0] = e;
            b->n = 1;
            return b;
        }
        struct cl_rg_expr *e = parse_literal(P);
        if (!e)
            return NULL;
        struct cl_rg_body *b = cl_rg_alloc(P->a, sizeof *b);
        b->exprs = cl_rg_alloc(P->a, sizeof *b->exprs);
        b->exprs[0] = e;
        b->n = 1;
        return b;
    }
    if (P->tok.t == K_LBRACE && !P->tok.nl) {
        if (!P->v0) {
            perr(P, P->tok.line, P->tok.col, "`if` keyword is required before rule body");
            return NULL;
        }
        next(P);
        *had = true;
        struct cl_rg_body *b = parse_body(P, K_RBRACE);
        if (!b || !expect(P, K_RBRACE, "'}'"))
            return NULL;
        return b;
    }
    return empty_body(P);
}

static bool is_ground_head_part(const struct cl_rg_term *t)
{
    return t->kind == RG_T_VALUE && t->val->type == CL_RV_STRING;
}

static struct cl_rg_rule *parse_rule(struct parser *P, struct cl_rg_module *m)
{
    struct cl_rg_rule *r = cl_rg_alloc(P->a, sizeof *r);
    r->mod = m;
    r->line = P->tok.line;
    r->col = P->tok.col;
    if (is_kw(&P->tok, "default") && peek(P)->t != K_DOT && peek(P)->t != K_LBRACK) {
        r->is_default = true;
        next(P);
    }
    if (P->tok.t != K_IDENT) {
        perr(P, P->tok.line, P->tok.col, "expected rule name");
        return NULL;
    }
    /* head ref */
    struct cl_rg_term *h = parse_term(P, false);
    if (!h)
        return NULL;
    struct tvec head = {0};
    if (h->kind == RG_T_VAR) {
        tv_push(&head, h);
    } else if (h->kind == RG_T_REF && h->items[0]->kind == RG_T_VAR) {
        for (size_t i = 0; i < h->n; i++)
            tv_push(&head, h->items[i]);
    } else if (h->kind == RG_T_CALL) {
        /* function: name may be dotted */
        r->kind = RG_R_FUNC;
        const char *nm = h->name;
        const char *dot;
        tv_push(&head, mk_var(P, nm, (dot = strchr(nm, '.')) ? (size_t)(dot - nm) : strlen(nm),
                              h->line, h->col));
        while (dot) {
            const char *s = dot + 1;
            dot = strchr(s, '.');
            size_t n = dot ? (size_t)(dot - s) : strlen(s);
            tv_push(&head, mk_value(P, cl_rv_str(s, n), h->line, h->col));
        }
        r->args = h->items;
        r->nargs = h->n;
    } else {
        perr(P, h->line, h->col, "invalid rule head");
        return NULL;
    }
    r->nhead = head.n;
    r->head = tv_finish(P, &head);
    r->nground = 1;
    while (r->nground < r->nhead && is_ground_head_part(r->head[r->nground]))
        r->nground++;
    if (r->kind != RG_R_FUNC && is_kw(&P->tok, "contains")) {
        if (r->is_default) {
            perr(P, P->tok.line, P->tok.col, "default rules cannot be multi-value");
            return NULL;
        }
        next(P);
        r->kind = RG_R_SET;
        r->key = parse_in(P, false);
        if (!r->key)
            return NULL;
    } else if (P->tok.t == K_EQ || P->tok.t == K_ASSIGN) {
        next(P);
        r->value = parse_in(P, false);
        if (!r->value)
            return NULL;
    } else if (r->kind != RG_R_FUNC && P->v0 && r->nhead == 2 && !is_ground_head_part(r->head[1])) {
        /* v0 partial set p[x] { ... } */
        r->kind = RG_R_SET;
        r->key = r->head[1];
        r->nhead = 1;
        r->nground = 1;
    } else if (r->is_default) {
        perr(P, P->tok.line, P->tok.col, "default rule must have a value");
        return NULL;
    }
    if (r->is_default && r->kind == RG_R_VALUE && r->nground != r->nhead) {
        perr(P, r->line, r->col, "default rules must have a ground head");
        return NULL;
    }
    bool had;
    r->body = parse_rule_body(P, &had);
    if (!r->body)
        return NULL;
    if (r->is_default && had) {
        perr(P, r->line, r->col, "default rules cannot have a body");
        return NULL;
    }
    struct cl_rg_rule *last = r;
    /* `else.foo := 1` on the next line is a new rule whose ref head starts with a keyword */
    while (is_kw(&P->tok, "else") && !P->failed &&
           !((peek(P)->t == K_DOT || peek(P)->t == K_LBRACK) && !peek(P)->ws)) {
        int line = P->tok.line, col = P->tok.col;
        next(P);
        if (r->kind == RG_R_SET) {
            perr(P, line, col, "else keyword cannot be used on multi-value rules");
            return NULL;
        }
        struct cl_rg_rule *e = cl_rg_alloc(P->a, sizeof *e);
        *e = *r;
        e->is_else = true;
        e->els = NULL;
        e->line = line;
        e->col = col;
        e->value = NULL;
        if (P->tok.t == K_EQ || P->tok.t == K_ASSIGN) {
            next(P);
            e->value = parse_in(P, false);
            if (!e->value)
                return NULL;
        }
        e->body = parse_rule_body(P, &had);
        if (!e->body)
            return NULL;
        last->els = e;
        last = e;
    }
    return P->failed ? NULL : r;
}

/* package / import paths: name(.name|["str"])* */
static struct cl_rg_term *parse_path(struct parser *P)
{
    if (P->tok.t != K_IDENT) {
        perr(P, P->tok.line, P->tok.col, "expected a name");
        return NULL;
    }
    struct cl_rg_term *t = parse_term(P, false);
    if (!t)
        return NULL;
    if (t->kind == RG_T_VAR)
        return t;
    if (t->kind != RG_T_REF || t->items[0]->kind != RG_T_VAR) {
        perr(P, t->line, t->col, "invalid path");
        return NULL;
    }
    for (size_t i = 1; i < t->n; i++)
        if (!is_ground_head_part(t->items[i])) {
            perr(P, t->items[i]->line, t->items[i]->col, "path parts must be strings");
            return NULL;
        }
    return t;
}

/* ---- METADATA annotations ---- */

static struct cl_rv *yaml_rv(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 32)
        return cl_rv_null();
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)n->data.scalar.value;
        size_t len = n->data.scalar.length;
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            return cl_rv_str(v, len);
        if (len == 0 || !strcmp(v, "null") || !strcmp(v, "~"))
            return cl_rv_null();
        if (!strcmp(v, "true") || !strcmp(v, "false"))
            return cl_rv_bool(v[0] == 't');
        struct cl_rv *num = cl_rv_number_parse(v, len);
        return num ? num : cl_rv_str(v, len);
    }
    case YAML_SEQUENCE_NODE: {
        struct cl_rv *a = cl_rv_array(0);
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++)
            cl_rv_array_push(a, yaml_rv(doc, yaml_document_get_node(doc, *i), depth + 1));
        return a;
    }
    case YAML_MAPPING_NODE: {
        struct cl_rv *o = cl_rv_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
            cl_rv_obj_put(o, yaml_rv(doc, yaml_document_get_node(doc, p->key), depth + 1),
                          yaml_rv(doc, yaml_document_get_node(doc, p->value), depth + 1));
        return o;
    }
    default:
        return cl_rv_null();
    }
}

/* "Jane Doe <jane@example.com>" -> {"name", "email"} as OPA normalises authors. */
static struct cl_rv *author(const struct cl_rv *v)
{
    if (v->type != CL_RV_STRING)
        return cl_rv_incref((struct cl_rv *)(uintptr_t)v);
    const char *s = v->u.str.s, *lt = strrchr(s, '<');
    struct cl_rv *o = cl_rv_object();
    size_t n = v->u.str.len;
    if (lt && n && s[n - 1] == '>') {
        cl_rv_obj_put_str(o, "email", cl_rv_str(lt + 1, (size_t)(s + n - 1 - lt - 1)));
        n = (size_t)(lt - s);
    }
    while (n && s[n - 1] == ' ')
        n--;
    if (n)
        cl_rv_obj_put_str(o, "name", cl_rv_str(s, n));
    return o;
}

/* The METADATA block ending on the line before `line`: its YAML as an annotation object with
 * a scope (default `dflt`), frozen into the arena; NULL when there is none. */
static struct cl_rv *annotations_before(struct parser *P, int line, const char *dflt)
{
    struct comments *cm = P->cm;
    if (!cm || !cm->n)
        return NULL;
    size_t end = cm->n;
    while (end && cm->v[end - 1].line >= line)
        end--;
    if (!end || cm->v[end - 1].line != line - 1)
        return NULL;
    size_t start = end - 1;
    while (start && cm->v[start - 1].line == cm->v[start].line - 1)
        start--;
    /* the last METADATA marker of the contiguous block starts the annotation */
    size_t mark = SIZE_MAX;
    for (size_t i = start; i < end; i++) {
        const char *t = cm->v[i].s;
        size_t tl = cm->v[i].len;
        while (tl && (*t == ' ' || *t == '\t')) {
            t++;
            tl--;
        }
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t' || t[tl - 1] == '\r'))
            tl--;
        if (tl == 8 && !memcmp(t, "METADATA", 8))
            mark = i;
    }
    if (mark == SIZE_MAX)
        return NULL;
    struct cl_sbuf y = {0};
    for (size_t i = mark + 1; i < end; i++) {
        const char *t = cm->v[i].s;
        size_t tl = cm->v[i].len;
        if (tl && *t == ' ') {
            t++;
            tl--;
        }
        cl_sbuf_add(&y, t, tl);
        cl_sbuf_addc(&y, '\n');
    }
    struct cl_rv *ann = NULL;
    yaml_parser_t yp;
    yaml_document_t doc;
    yaml_parser_initialize(&yp);
    yaml_parser_set_input_string(&yp, (const unsigned char *)(y.s ? y.s : ""), y.len);
    if (!yaml_parser_load(&yp, &doc)) {
        perr(P, cm->v[mark].line, 1, "yaml: %s in METADATA block",
             yp.problem ? yp.problem : "invalid document");
        yaml_parser_delete(&yp);
        cl_sbuf_free(&y);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct cl_rv *v = root ? yaml_rv(&doc, root, 0) : cl_rv_object();
    yaml_document_delete(&doc);
    yaml_parser_delete(&yp);
    cl_sbuf_free(&y);
    if (v->type != CL_RV_OBJECT) {
        cl_rv_decref(v);
        perr(P, cm->v[mark].line, 1, "METADATA block must be a YAML mapping");
        return NULL;
    }
    ann = cl_rv_copy(v);
    cl_rv_decref(v);
    if (!cl_rv_obj_get_str(ann, "scope"))
        cl_rv_obj_put_str(ann, "scope", cl_rv_strz(dflt));
    const struct cl_rv *au = cl_rv_obj_get_str(ann, "authors");
    if (au && au->type == CL_RV_ARRAY) {
        struct cl_rv *na = cl_rv_array(au->u.arr.len);
        for (size_t i = 0; i < au->u.arr.len; i++)
            cl_rv_array_push(na, author(au->u.arr.items[i]));
        cl_rv_obj_put_str(ann, "authors", na);
    }
    return cl_rg_keep(P->a, ann);
}

static struct cl_rg_module *parse_module_body(struct parser *P0, struct cl_rg_arena *a,
                                              const char *file, bool v0);

struct cl_rg_module *cl_rg_parse_module(struct cl_rg_arena *a, const char *file, const char *text,
                                        size_t len, bool v0, struct cl_rg_error *err)
{
    struct comments cm = {0};
    struct parser P = {.a = a,
                       .file = file,
                       .src = text,
                       .end = text + len,
                       .p = text,
                       .line = 1,
                       .line_start = text,
                       .v0 = v0,
                       .err = err,
                       .cm = &cm};
    memset(err, 0, sizeof *err);
    struct cl_rg_module *m = parse_module_body(&P, a, file, v0);
    free(cm.v);
    return m;
}

static struct cl_rg_module *parse_module_body(struct parser *P0, struct cl_rg_arena *a,
                                              const char *file, bool v0)
{
    struct parser P = *P0;
    next(&P);
    if (!is_kw(&P.tok, "package")) {
        perr(&P, P.tok.line, P.tok.col, "expected package declaration");
        return NULL;
    }
    struct cl_rg_module *m = cl_rg_alloc(a, sizeof *m);
    m->file = cl_rg_strndup(a, file, strlen(file));
    m->v0 = v0;
    m->annotations = annotations_before(&P, P.tok.line, "package");
    if (P.failed)
        return NULL;
    next(&P);
    struct cl_rg_term *pk = parse_path(&P);
    if (!pk)
        return NULL;
    m->pkg = pk;
    size_t np = pk->kind == RG_T_VAR ? 1 : pk->n;
    m->pkg_path = cl_rg_alloc(a, np * sizeof *m->pkg_path);
    m->npkg = np;
    m->pkg_path[0] = pk->kind == RG_T_VAR ? pk->name : pk->items[0]->name;
    for (size_t i = 1; i < np; i++)
        m->pkg_path[i] = cl_rg_strndup(a, pk->items[i]->val->u.str.s, pk->items[i]->val->u.str.len);
    size_t icap = 0, rcap = 0;
    while (!P.failed && P.tok.t != K_EOF) {
        if (P.tok.t == K_SEMI) {
            next(&P);
            continue;
        }
        if (is_kw(&P.tok, "import") && peek(&P)->t != K_DOT && peek(&P)->t != K_LBRACK) {
            int line = P.tok.line, col = P.tok.col;
            next(&P);
            struct cl_rg_term *path = parse_path(&P);
            if (!path)
                return NULL;
            const char *alias = NULL;
            if (is_kw(&P.tok, "as")) {
                next(&P);
                if (P.tok.t != K_IDENT) {
                    perr(&P, P.tok.line, P.tok.col, "expected alias name");
                    return NULL;
                }
                alias = cl_rg_strndup(a, P.tok.s, P.tok.len);
                next(&P);
            }
            if (m->nimports == icap) {
                icap = icap ? icap * 2 : 4;
                struct cl_rg_import *ni = cl_rg_alloc(a, icap * sizeof *ni);
                if (m->nimports)
                    memcpy(ni, m->imports, m->nimports * sizeof *ni);
                m->imports = ni;
            }
            m->imports[m->nimports++] = (struct cl_rg_import){path, alias, line, col};
            continue;
        }
        struct cl_rv *ann = annotations_before(&P, P.tok.line, "rule");
        if (P.failed)
            return NULL;
        struct cl_rg_rule *r = parse_rule(&P, m);
        if (!r)
            return NULL;
        for (struct cl_rg_rule *e = r; e; e = e->els)
            e->annotations = ann;
        if (m->nrules == rcap) {
            rcap = rcap ? rcap * 2 : 8;
            struct cl_rg_rule **nr = cl_rg_alloc(a, rcap * sizeof *nr);
            if (m->nrules)
                memcpy(nr, m->rules, m->nrules * sizeof *nr);
            m->rules = nr;
        }
        m->rules[m->nrules++] = r;
        if (P.tok.t != K_EOF && !P.tok.nl && P.tok.t != K_SEMI) {
            perr(&P, P.tok.line, P.tok.col, "unexpected '%.*s' after rule",
                 (int)(P.tok.len ? P.tok.len : 1), P.tok.s);
            return NULL;
        }
    }
    return P.failed ? NULL : m;
}

struct cl_rg_body *cl_rg_parse_query(struct cl_rg_arena *a, const char *text, size_t len,
                                     struct cl_rg_error *err)
{
    struct parser P = {.a = a,
                       .file = "query",
                       .src = text,
                       .end = text + len,
                       .p = text,
                       .line = 1,
                       .line_start = text,
                       .err = err};
    memset(err, 0, sizeof *err);
    next(&P);
    struct cl_rg_body *b = parse_body(&P, K_EOF);
    if (b && P.tok.t != K_EOF)
        perr(&P, P.tok.line, P.tok.col, "unexpected text after query");
    if (b && b->n == 0)
        perr(&P, 1, 1, "empty query");
    return P.failed ? NULL : b;
}

struct cl_rg_term *cl_rg_parse_term(struct cl_rg_arena *a, const char *text, size_t len,
                                    struct cl_rg_error *err)
{
    struct parser P = {.a = a,
                       .file = "term",
                       .src = text,
                       .end = text + len,
                       .p = text,
                       .line = 1,
                       .line_start = text,
                       .err = err};
    memset(err, 0, sizeof *err);
    next(&P);
    struct cl_rg_term *t = parse_in(&P, false);
    if (t && P.tok.t != K_EOF)
        perr(&P, P.tok.line, P.tok.col, "unexpected text after term");
    return P.failed ? NULL : t;
}

/* ---- the syntax tree as OPA's JSON AST (rego.parse_module) ---- */

static struct cl_rv *ast_term(const struct cl_rg_term *t);
static struct cl_rv *ast_body(const struct cl_rg_body *b);

static struct cl_rv *ast_node(const char *type, struct cl_rv *value)
{
    struct cl_rv *o = cl_rv_object();
    cl_rv_obj_put_str(o, "type", cl_rv_strz(type));
    cl_rv_obj_put_str(o, "value", value);
    return o;
}

static struct cl_rv *ast_var(const char *name)
{
    return ast_node("var", cl_rv_strz(name));
}

/* A constant value as a term: composites element by element. */
static struct cl_rv *ast_value(const struct cl_rv *v)
{
    switch (v->type) {
    case CL_RV_NULL:
        return ast_node("null", cl_rv_null());
    case CL_RV_BOOL:
        return ast_node("boolean", cl_rv_bool(v->u.b));
    case CL_RV_NUMBER:
        return ast_node("number", cl_rv_incref((struct cl_rv *)(uintptr_t)v));
    case CL_RV_STRING:
        return ast_node("string", cl_rv_incref((struct cl_rv *)(uintptr_t)v));
    case CL_RV_ARRAY:
    case CL_RV_SET: {
        struct cl_rv *a = cl_rv_array(v->u.arr.len);
        for (size_t i = 0; i < v->u.arr.len; i++)
            cl_rv_array_push(a, ast_value(v->u.arr.items[i]));
        return ast_node(v->type == CL_RV_ARRAY ? "array" : "set", a);
    }
    case CL_RV_OBJECT: {
        struct cl_rv *a = cl_rv_array(v->u.obj.len);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            struct cl_rv *pair = cl_rv_array(2);
            cl_rv_array_push(pair, ast_value(v->u.obj.keys[i]));
            cl_rv_array_push(pair, ast_value(v->u.obj.vals[i]));
            cl_rv_array_push(a, pair);
        }
        return ast_node("object", a);
    }
    }
    return ast_node("null", cl_rv_null());
}

/* A dotted name ("a.b.c") as a reference term. */
static struct cl_rv *ast_name_ref(const char *name)
{
    struct cl_rv *a = cl_rv_array(4);
    const char *s = name;
    for (bool first = true;; first = false) {
        const char *d = strchr(s, '.');
        size_t n = d ? (size_t)(d - s) : strlen(s);
        struct cl_rv *part = cl_rv_str(s, n);
        if (first) {
            cl_rv_array_push(a, ast_node("var", part));
        } else {
            cl_rv_array_push(a, ast_node("string", part));
        }
        if (!d)
            break;
        s = d + 1;
    }
    return ast_node("ref", a);
}

static struct cl_rv *ast_terms(struct cl_rg_term *const *items, size_t n)
{
    struct cl_rv *a = cl_rv_array(n);
    for (size_t i = 0; i < n; i++)
        cl_rv_array_push(a, ast_term(items[i]));
    return a;
}

static struct cl_rv *ast_term(const struct cl_rg_term *t)
{
    switch (t->kind) {
    case RG_T_VALUE:
        return ast_value(t->val);
    case RG_T_VAR:
        return ast_var(t->name);
    case RG_T_REF:
        return ast_node("ref", ast_terms(t->items, t->n));
    case RG_T_ARRAY:
        return ast_node("array", ast_terms(t->items, t->n));
    case RG_T_SET:
        return ast_node("set", ast_terms(t->items, t->n));
    case RG_T_OBJECT: {
        struct cl_rv *a = cl_rv_array(t->n / 2);
        for (size_t i = 0; i + 1 < t->n; i += 2) {
            struct cl_rv *pair = cl_rv_array(2);
            cl_rv_array_push(pair, ast_term(t->items[i]));
            cl_rv_array_push(pair, ast_term(t->items[i + 1]));
            cl_rv_array_push(a, pair);
        }
        return ast_node("object", a);
    }
    case RG_T_CALL: {
        struct cl_rv *a = cl_rv_array(t->n + 1);
        cl_rv_array_push(a, ast_name_ref(t->name));
        for (size_t i = 0; i < t->n; i++)
            cl_rv_array_push(a, ast_term(t->items[i]));
        return ast_node("call", a);
    }
    case RG_T_ACOMP:
    case RG_T_SCOMP:
    case RG_T_OCOMP: {
        struct cl_rv *o = cl_rv_object();
        if (t->kind == RG_T_OCOMP) {
            cl_rv_obj_put_str(o, "key", ast_term(t->key));
            cl_rv_obj_put_str(o, "value", ast_term(t->value));
        } else {
            cl_rv_obj_put_str(o, "term", ast_term(t->value));
        }
        cl_rv_obj_put_str(o, "body", ast_body(t->body));
        return ast_node(t->kind == RG_T_ACOMP   ? "arraycomprehension"
                        : t->kind == RG_T_SCOMP ? "setcomprehension"
                                                : "objectcomprehension",
                        o);
    }
    }
    return ast_node("null", cl_rv_null());
}

static struct cl_rv *ast_expr(const struct cl_rg_expr *x, size_t index)
{
    struct cl_rv *o = cl_rv_object();
    cl_rv_obj_put_str(o, "index", cl_rv_int((int64_t)index));
    if (x->negated)
        cl_rv_obj_put_str(o, "negated", cl_rv_bool(true));
    switch (x->kind) {
    case RG_E_TERM:
        if (x->term->kind == RG_T_CALL) { /* an expression call: [operator, args...] */
            struct cl_rv *a = cl_rv_array(x->term->n + 1);
            cl_rv_array_push(a, ast_name_ref(x->term->name));
            for (size_t i = 0; i < x->term->n; i++)
                cl_rv_array_push(a, ast_term(x->term->items[i]));
            cl_rv_obj_put_str(o, "terms", a);
        } else {
            cl_rv_obj_put_str(o, "terms", ast_term(x->term));
        }
        break;
    case RG_E_SOME: {
        struct cl_rv *decl = cl_rv_object();
        cl_rv_obj_put_str(decl, "symbols", ast_terms(x->vars, x->nvars));
        cl_rv_obj_put_str(o, "terms", ast_node("some", decl));
        break;
    }
    case RG_E_SOMEIN:
    case RG_E_EVERY: {
        struct cl_rv *d = cl_rv_object();
        if (x->key)
            cl_rv_obj_put_str(d, "key", ast_term(x->key));
        cl_rv_obj_put_str(d, "value", ast_term(x->val));
        cl_rv_obj_put_str(d, "domain", ast_term(x->coll));
        if (x->kind == RG_E_EVERY)
            cl_rv_obj_put_str(d, "body", ast_body(x->body));
        cl_rv_obj_put_str(o, "terms", ast_node(x->kind == RG_E_EVERY ? "every" : "somein", d));
        break;
    }
    }
    if (x->nwith) {
        struct cl_rv *w = cl_rv_array(x->nwith);
        for (size_t i = 0; i < x->nwith; i++) {
            struct cl_rv *wo = cl_rv_object();
            cl_rv_obj_put_str(wo, "target", ast_term(x->with[i].target));
            cl_rv_obj_put_str(wo, "value", ast_term(x->with[i].value));
            cl_rv_array_push(w, wo);
        }
        cl_rv_obj_put_str(o, "with", w);
    }
    return o;
}

static struct cl_rv *ast_body(const struct cl_rg_body *b)
{
    struct cl_rv *a = cl_rv_array(b->n);
    for (size_t i = 0; i < b->n; i++)
        cl_rv_array_push(a, ast_expr(b->exprs[i], i));
    return a;
}

static struct cl_rv *ast_rule(const struct cl_rg_rule *r)
{
    struct cl_rv *o = cl_rv_object();
    struct cl_rv *head = cl_rv_object();
    cl_rv_obj_put_str(head, "name", cl_rv_strz(r->head[0]->name));
    cl_rv_obj_put_str(head, "ref", ast_terms(r->head, r->nhead));
    if (r->kind == RG_R_FUNC)
        cl_rv_obj_put_str(head, "args", ast_terms(r->args, r->nargs));
    if (r->kind == RG_R_SET)
        cl_rv_obj_put_str(head, "key", ast_term(r->key));
    if (r->kind != RG_R_SET)
        cl_rv_obj_put_str(head, "value",
                          r->value ? ast_term(r->value) : ast_node("boolean", cl_rv_bool(true)));
    cl_rv_obj_put_str(o, "head", head);
    cl_rv_obj_put_str(o, "body", ast_body(r->body));
    if (r->is_default)
        cl_rv_obj_put_str(o, "default", cl_rv_bool(true));
    if (r->els)
        cl_rv_obj_put_str(o, "else", ast_rule(r->els));
    return o;
}

struct cl_rv *cl_rg_module_ast(const struct cl_rg_module *m)
{
    struct cl_rv *o = cl_rv_object();
    struct cl_rv *pkg = cl_rv_object();
    struct cl_rv *path = cl_rv_array(m->npkg + 1);
    cl_rv_array_push(path, ast_var("data"));
    for (size_t i = 0; i < m->npkg; i++)
        cl_rv_array_push(path, ast_node("string", cl_rv_strz(m->pkg_path[i])));
    cl_rv_obj_put_str(pkg, "path", path);
    cl_rv_obj_put_str(o, "package", pkg);
    if (m->nimports) {
        struct cl_rv *imps = cl_rv_array(m->nimports);
        for (size_t i = 0; i < m->nimports; i++) {
            struct cl_rv *im = cl_rv_object();
            cl_rv_obj_put_str(im, "path", ast_term(m->imports[i].path));
            if (m->imports[i].alias)
                cl_rv_obj_put_str(im, "alias", cl_rv_strz(m->imports[i].alias));
            cl_rv_array_push(imps, im);
        }
        cl_rv_obj_put_str(o, "imports", imps);
    }
    if (m->nrules) {
        struct cl_rv *rules = cl_rv_array(m->nrules);
        for (size_t i = 0; i < m->nrules; i++)
            cl_rv_array_push(rules, ast_rule(m->rules[i]));
        cl_rv_obj_put_str(o, "rules", rules);
    }
    return o;
}
