/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regex.globs_match(glob1, glob2): true when some string matches both patterns, with OPA's
 * pattern language (that of the glob-intersection library): literal characters, '.' for any
 * character, [...] sets with ranges, '\' escapes, and '+' / '*' after a token. Patterns are
 * read as code points; the intersection is decided exactly on the product of the two
 * patterns' automata.
 */
#include <stdio.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

enum gtype { G_CHAR, G_DOT, G_SET };
enum gflag { G_ONE, G_PLUS, G_STAR };

struct gtok {
    enum gtype t;
    enum gflag f;
    uint32_t r;    /* G_CHAR */
    uint32_t *set; /* G_SET: members (ranges expanded), sorted */
    size_t nset;
};

struct glob {
    struct gtok *t;
    size_t n;
};

static void glob_free(struct glob *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->t[i].set);
    free(g->t);
}

/* UTF-8 to code points (invalid bytes as U+FFFD, like Go's []rune conversion). */
static uint32_t *to_runes(const char *s, size_t n, size_t *count)
{
    uint32_t *r = cl_xcalloc(n + 1, sizeof *r);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 31u : len == 3 ? c & 15u : c & 7u;
        bool ok = len > 0 && i + len <= n;
        for (size_t j = 1; ok && j < len; j++) {
            ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
            cp = cp << 6 | ((unsigned char)s[i + j] & 0x3fu);
        }
        r[k++] = ok ? cp : 0xfffd;
        i += ok ? len : 1;
    }
    *count = k;
    return r;
}

/* A code point as UTF-8 text (buf holds 5 bytes). */
static const char *utf8(uint32_t c, char *buf)
{
    if (c < 0x80) {
        buf[0] = (char)c;
        buf[1] = 0;
    } else if (c < 0x800) {
        buf[0] = (char)(0xc0 | c >> 6);
        buf[1] = (char)(0x80 | (c & 0x3f));
        buf[2] = 0;
    } else if (c < 0x10000) {
        buf[0] = (char)(0xe0 | c >> 12);
        buf[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (c & 0x3f));
        buf[3] = 0;
    } else {
        buf[0] = (char)(0xf0 | c >> 18);
        buf[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        buf[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        buf[3] = (char)(0x80 | (c & 0x3f));
        buf[4] = 0;
    }
    return buf;
}

static int u32cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Writes the library's error text: "input:PATTERN, pos:N, MESSAGE: the input provided is
 * invalid". */
static bool gerr(char *msg, size_t cap, const struct cl_rv *in, size_t pos, const char *what)
{
    snprintf(msg, cap, "input:%.*s, pos:%zu, %s: the input provided is invalid",
             (int)(L(in) > 100 ? 100 : L(in)), S(in), pos, what);
    return false;
}

/* Reads one rune at *i: escaped when preceded by '\'. */
static bool next_rune(const uint32_t *r, size_t n, size_t *i, uint32_t *out, bool *esc,
                      const struct cl_rv *in, char *msg, size_t cap)
{
    if (r[*i] == '\\') {
        if (*i + 1 >= n)
            return gerr(msg, cap, in, *i, "input ends with a \\ (escape) character");
        *out = r[*i + 1];
        *esc = true;
        *i += 2;
        return true;
    }
    *out = r[(*i)++];
    *esc = false;
    return true;
}

static bool glob_parse(const struct cl_rv *in, struct glob *g, char *msg, size_t cap)
{
    memset(g, 0, sizeof *g);
    size_t n;
    uint32_t *r = to_runes(S(in), L(in), &n);
    size_t i = 0;
    bool ok = true;
    while (i < n && ok) {
        uint32_t c;
        bool esc;
        if (!(ok = next_rune(r, n, &i, &c, &esc, in, msg, cap)))
            break;
        struct gtok t = {.t = G_CHAR, .r = c};
        if (!esc && (c == '+' || c == '*')) {
            char what[64];
            snprintf(what, sizeof what, "flag '%c' must be preceded by a non-flag", (char)c);
            ok = gerr(msg, cap, in, i, what);
            break;
        }
        if (!esc && c == ']') {
            ok = gerr(msg, cap, in, i, "set-close ']' with no preceding '['");
            break;
        }
        if (!esc && c == '.') {
            t.t = G_DOT;
        } else if (!esc && c == '[') {
            t.t = G_SET;
            size_t cap2 = 16;
            t.set = cl_xcalloc(cap2, sizeof *t.set);
            bool complete = false, prev_exists = false;
            uint32_t prev = 0;
            while (i < n && ok) {
                uint32_t d;
                bool e2;
                if (!(ok = next_rune(r, n, &i, &d, &e2, in, msg, cap)))
                    break;
                if (!e2 && d == ']') {
                    complete = true;
                    break;
                }
                uint32_t lo = d, hi = d;
                if (!e2 && d == '-') {
                    if (!prev_exists) {
                        ok = gerr(msg, cap, in, i,
                                  "range character '-' must be preceded by a Unicode character");
                        break;
                    }
                    if (i >= n - 1) {
                        ok = gerr(msg, cap, in, i,
                                  "range character '-' must be followed by a Unicode character");
                        break;
                    }
                    if (!(ok = next_rune(r, n, &i, &hi, &e2, in, msg, cap)))
                        break;
                    if (!e2 && (hi == ']' || hi == '-')) {
                        ok = gerr(msg, cap, in, i,
                                  "range character '-' cannot be followed by a special symbol");
                        break;
                    }
                    if (hi < prev) {
                        char what[96], u1[5], u2[5];
                        snprintf(what, sizeof what,
                                 "range is out of order: '%s' comes before '%s' in Unicode",
                                 utf8(hi, u1), utf8(prev, u2));
                        ok = gerr(msg, cap, in, i, what);
                        break;
                    }
                    lo = prev;
                    prev_exists = false;
                } else {
                    prev = d;
                    prev_exists = true;
                }
                if (hi - lo > 0x10ffff) {
                    ok = gerr(msg, cap, in, i, "range too large");
                    break;
                }
                for (uint64_t x = lo; x <= hi && ok; x++) {
                    if (t.nset == cap2) {
                        if (cap2 > (1u << 20)) {
                            ok = gerr(msg, cap, in, i, "set too large");
                            break;
                        }
                        cap2 *= 2;
                        t.set = cl_xrealloc(t.set, cap2 * sizeof *t.set);
                    }
                    t.set[t.nset++] = (uint32_t)x;
                }
            }
            if (ok && !complete)
                ok = gerr(msg, cap, in, i, "found [ without matching ]");
            if (!ok) {
                free(t.set);
                break;
            }
            qsort(t.set, t.nset, sizeof *t.set, u32cmp);
        }
        /* a flag applies to the token before it */
        if (i < n && (r[i] == '+' || r[i] == '*')) {
            t.f = r[i] == '+' ? G_PLUS : G_STAR;
            i++;
            if (i < n && (r[i] == '+' || r[i] == '*')) {
                char what[64];
                snprintf(what, sizeof what, "flag '%c' must be preceded by a non-flag", (char)r[i]);
                free(t.set);
                ok = gerr(msg, cap, in, i + 1, what);
                break;
            }
        }
        g->t = cl_xrealloc(g->t, (g->n + 1) * sizeof *g->t);
        g->t[g->n++] = t;
    }
    free(r);
    if (!ok)
        glob_free(g);
    return ok;
}

static bool in_set(const struct gtok *s, uint32_t c)
{
    return bsearch(&c, s->set, s->nset, sizeof c, u32cmp) != NULL;
}

/* Some character matches both tokens. */
static bool tok_match(const struct gtok *a, const struct gtok *b)
{
    if (a->t > b->t) {
        const struct gtok *t = a;
        a = b;
        b = t;
    }
    if (a->t == G_CHAR)
        return b->t == G_CHAR ? a->r == b->r : b->t == G_DOT ? true : in_set(b, a->r);
    if (a->t == G_DOT)
        return b->t == G_DOT || b->nset > 0;
    for (size_t i = 0, j = 0; i < a->nset && j < b->nset;) {
        if (a->set[i] == b->set[j])
            return true;
        if (a->set[i] < b->set[j])
            i++;
        else
            j++;
    }
    return false;
}

/* A plus token is the token once then starred: expand so each token is once or starred. */
static void expand(const struct glob *g, struct gtok **out, size_t *n)
{
    *out = cl_xcalloc(2 * g->n + 1, sizeof **out);
    *n = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct gtok t = g->t[i];
        if (t.f == G_PLUS) {
            t.f = G_ONE;
            (*out)[(*n)++] = t;
            t.f = G_STAR;
        }
        (*out)[(*n)++] = t;
    }
}

/* Breadth-first search on the product automaton: positions (i, j) in the two patterns;
 * starred tokens may be skipped or consume and stay. */
static int intersects(struct cl_rego_bctx *c, const struct glob *g1, const struct glob *g2,
                      bool *res)
{
    struct gtok *a, *b;
    size_t n1, n2;
    expand(g1, &a, &n1);
    expand(g2, &b, &n2);
    size_t states = (n1 + 1) * (n2 + 1);
    if (cl_rego_bi_reserve(c, states * (1 + sizeof(size_t))) < 0) {
        free(a);
        free(b);
        return -2;
    }
    uint8_t *seen = cl_xcalloc(states, 1);
    size_t *queue = cl_xcalloc(states, sizeof *queue), qh = 0, qn = 0;
    seen[0] = 1;
    queue[qn++] = 0;
    *res = false;
    while (qh < qn && !*res) {
        size_t s = queue[qh++], i = s / (n2 + 1), j = s % (n2 + 1);
        if (i == n1 && j == n2) {
            *res = true;
            break;
        }
        size_t next[3];
        int nn = 0;
        if (i < n1 && a[i].f == G_STAR)
            next[nn++] = (i + 1) * (n2 + 1) + j;
        if (j < n2 && b[j].f == G_STAR)
            next[nn++] = i * (n2 + 1) + j + 1;
        if (i < n1 && j < n2 && tok_match(&a[i], &b[j]))
            next[nn++] = (a[i].f == G_STAR ? i : i + 1) * (n2 + 1) + (b[j].f == G_STAR ? j : j + 1);
        for (int k = 0; k < nn; k++)
            if (!seen[next[k]]) {
                seen[next[k]] = 1;
                queue[qn++] = next[k];
            }
    }
    free(seen);
    free(queue);
    free(a);
    free(b);
    return 0;
}

static int bi_globs_match(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, (L(a[0]) + L(a[1])) * 16) < 0)
        return -2;
    struct glob g1, g2;
    char msg[CL_ERR_MSG_MAX];
    if (!glob_parse(a[0], &g1, msg, sizeof msg))
        return cl_rego_bi_error(c, "%s", msg);
    if (!glob_parse(a[1], &g2, msg, sizeof msg)) {
        glob_free(&g1);
        return cl_rego_bi_error(c, "%s", msg);
    }
    bool res;
    int rc = intersects(c, &g1, &g2, &res);
    glob_free(&g1);
    glob_free(&g2);
    if (rc < 0)
        return rc;
    return OUT(cl_rv_bool(res));
}

const struct cl_rego_builtin cl_rego_builtins_regex[] = {
    {"regex.globs_match", 2, bi_globs_match, 0},
    {NULL, 0, NULL, 0},
};
