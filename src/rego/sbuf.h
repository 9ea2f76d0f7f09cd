/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer used inside the Rego engine (text building, dumps, sprintf).
 * Internal header: not part of the public API.
 */
#ifndef CL_REGO_SBUF_H
#define CL_REGO_SBUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/base.h"

struct cl_sbuf {
    char *s;
    size_t len, cap;
};

void cl_sbuf_add(struct cl_sbuf *b, const void *p, size_t n);
void cl_sbuf_addc(struct cl_sbuf *b, char c);
void cl_sbuf_adds(struct cl_sbuf *b, const char *s);
CL_PRINTF(2, 3) void cl_sbuf_addf(struct cl_sbuf *b, const char *fmt, ...);
/* Returns the NUL-terminated text (owned by the caller), leaves b empty. */
char *cl_sbuf_steal(struct cl_sbuf *b);
void cl_sbuf_free(struct cl_sbuf *b);
/* malloc/realloc that abort on exhaustion: the evaluator caps memory before it gets there. */
void *cl_xmalloc(size_t n);
void *cl_xcalloc(size_t n, size_t sz);
void *cl_xrealloc(void *p, size_t n);
char *cl_xstrndup(const char *s, size_t n);

#endif
