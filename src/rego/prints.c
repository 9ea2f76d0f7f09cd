/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lazy print(): the evaluator hands each call's argument values to a sink, which keeps the
 * references and renders text only when the caller asks (the Kata agent on a denial). A Kata
 * policy prints whole OCI specs on every decision; rendering them each time cost more than
 * the decision itself, keeping a reference costs nothing.
 */
#include <string.h>

#include "rego/engine.h"
#include "rego/sbuf.h"

struct cl_rego_prints *cl_rego_prints_new(void)
{
    return calloc(1, sizeof(struct cl_rego_prints));
}

void cl_rego_prints_reset(struct cl_rego_prints *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nvals; i++)
        cl_rv_decref(p->vals[i]);
    p->nvals = 0;
    p->ncalls = 0;
    p->dropped = 0;
}

void cl_rego_prints_free(struct cl_rego_prints *p)
{
    if (!p)
        return;
    cl_rego_prints_reset(p);
    free(p->vals);
    free(p->calls);
    free(p);
}

void cl_auto_cl_rego_prints(struct cl_rego_prints **p)
{
    cl_rego_prints_free(*p);
    *p = NULL;
}

size_t cl_rego_prints_count(const struct cl_rego_prints *p)
{
    return p ? p->ncalls : 0;
}
size_t cl_rego_prints_dropped(const struct cl_rego_prints *p)
{
    return p ? p->dropped : 0;
}

void cl_rg_prints_add(struct cl_rego_prints *p, const char *file, int line, struct cl_rv **vals,
                      size_t n)
{
    if (p->ncalls >= CL_REGO_MAX_PRINTS || n > CL_REGO_MAX_PRINT_VALUES - p->nvals) {
        for (size_t i = 0; i < n; i++)
            cl_rv_decref(vals[i]);
        p->dropped++;
        return;
    }
    if (p->ncalls == p->capcalls) {
        /* the sink outlives an abandoned evaluation (sbuf.h): sizes change after allocating */
        size_t cap = p->capcalls ? p->capcalls * 2 : 16;
        p->calls = cl_xrealloc(p->calls, cap * sizeof *p->calls);
        p->capcalls = cap;
    }
    if (n > p->capvals - p->nvals) {
        size_t cap = p->capvals ? p->capvals : 32;
        while (n > cap - p->nvals)
            cap *= 2;
        p->vals = cl_xrealloc(p->vals, cap * sizeof *p->vals);
        p->capvals = cap;
    }
    p->calls[p->ncalls++] = (struct cl_rg_print){file, line, p->nvals, n};
    memcpy(p->vals + p->nvals, vals, n * sizeof *vals);
    p->nvals += n;
}

void cl_rg_print_render(struct cl_sbuf *b, struct cl_rv *const *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            cl_sbuf_addc(b, ' ');
        const struct cl_rv *v = vals[i];
        if (!v) {
            cl_sbuf_adds(b, "<undefined>");
        } else if (v->type == CL_RV_STRING) {
            cl_sbuf_add(b, v->u.str.s, v->u.str.len);
        } else {
            char *s = cl_rv_dump(v);
            cl_sbuf_adds(b, s);
            free(s);
        }
    }
}

cl_str *cl_rego_prints_line(const struct cl_rego_prints *p, size_t i, const char **file, int *line)
{
    if (!p || i >= p->ncalls)
        return NULL;
    const struct cl_rg_print *c = &p->calls[i];
    if (file)
        *file = c->file;
    if (line)
        *line = c->line;
    struct cl_sbuf b = {0};
    cl_rg_print_render(&b, p->vals + c->off, c->n);
    cl_sbuf_addc(&b, 0);
    return cl_sbuf_steal(&b);
}

cl_str *cl_rego_prints_text(const struct cl_rego_prints *p, const char *sep, size_t max, bool *cut)
{
    struct cl_sbuf b = {0};
    bool over = false;
    size_t seplen = sep ? strlen(sep) : 0;
    for (size_t i = 0; p && i < p->ncalls && !over; i++) {
        if (i)
            cl_sbuf_add(&b, sep, seplen);
        cl_rg_print_render(&b, p->vals + p->calls[i].off, p->calls[i].n);
        if (max && b.len > max) {
            /* cut at a character boundary: never leave half a UTF-8 sequence */
            size_t n = max;
            while (n > 0 && ((unsigned char)b.s[n] & 0xC0) == 0x80)
                n--;
            b.len = n;
            over = true;
        }
    }
    if (p && p->dropped)
        over = true;
    if (cut)
        *cut = over;
    cl_sbuf_addc(&b, 0);
    return cl_sbuf_steal(&b);
}
