/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer used inside the Rego engine (text building, dumps, sprintf).
 * Internal header: not part of the public API.
 */
#ifndef CL_REGO_SBUF_H
#define CL_REGO_SBUF_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* malloc/realloc that never return NULL: a failure sets cl_rg_oom, which ends the evaluation
 * with CL_ENOMEM (value.c says how). The evaluator caps memory well before it gets there. */
void *cl_xmalloc(size_t n);
void *cl_xcalloc(size_t n, size_t sz);
void *cl_xrealloc(void *p, size_t n);
char *cl_xstrndup(const char *s, size_t n);

/* An allocation failed on this thread since the flag was last cleared (the outermost
 * evaluation clears it when it starts and fails with CL_ENOMEM when it finds it set). */
extern _Thread_local bool cl_rg_oom;
/* Where the evaluation in progress is abandoned when an allocation fails twice (armed by
 * rego.c around evaluations, which change no engine state; NULL otherwise). Code that updates
 * state outliving the evaluation (caches, print sinks) changes sizes and pointers only after
 * its allocation returned, or disarms this while it holds a lock. */
extern _Thread_local jmp_buf *cl_rg_oom_jmp;
/* Test hook: fail the cl_rg_fail_nth-th allocation from now (1: the next), once, or with
 * cl_rg_fail_rest that one and every later one (retries included). 0: off. cl_rg_fail_count
 * counts the failures made. */
extern _Thread_local uint64_t cl_rg_fail_nth, cl_rg_fail_count;
extern _Thread_local bool cl_rg_fail_rest;

#endif
