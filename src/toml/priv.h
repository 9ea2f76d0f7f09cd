/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/toml: the parser state shared by the document reader (toml.c: lines, keys,
 * tables, arrays, inline tables) and the scalar readers (scalar.c: strings, numbers,
 * date-times, UTF-8). Nothing outside this folder includes it.
 */
#ifndef CL_TOML_PRIV_H
#define CL_TOML_PRIV_H

#include "toml/toml.h"

/* A growable scratch buffer, reused for every string so that no character costs a malloc. */
struct cl_tp_buf {
    char *p;
    size_t len, cap;
};

/* One part of a dotted key: its decoded text is tp.kb.p[off .. off+len). */
struct cl_tp_seg {
    size_t off, len;
    size_t at; /* input offset, for messages */
};

/* What the parser knows about a table or array it made (jansson values carry no user data,
 * so this lives in a pointer-keyed hash beside the tree). */
enum {
    TP_TABLE =
        1u << 0, /* an object that is a TOML table (in tagged mode scalars are objects too) */
    TP_EXPLICIT = 1u << 1, /* defined by [header], or by dotted keys in an earlier section */
    TP_FROZEN = 1u << 2,   /* inline table or static array: nothing may be added later */
    TP_AOT = 1u << 3,      /* array made by [[header]]: more elements may be appended */
    TP_PENDING = 1u << 4,  /* made or crossed by dotted keys in the current section */
};

struct cl_tp_slot {
    const json_t *key;
    unsigned flags;
    unsigned depth;
};

struct tp {
    const char *buf;
    size_t len, pos;
    bool tagged;
    struct cl_err *err;
    struct cl_tp_buf sb; /* string values */
    struct cl_tp_buf kb; /* key parts, used as a stack across nested inline tables */
    struct cl_tp_seg segs[CL_TOML_MAX_DEPTH];
    size_t nseg;
    struct cl_tp_slot *slots; /* open addressing, capacity a power of two */
    size_t nslots, capslots;
    json_t **pending; /* tables marked TP_PENDING, made TP_EXPLICIT at the next header */
    size_t npending, cappending;
    struct cl_tp_slot lost; /* what meta_of answers for an unregistered container */
};

/* An owned jansson reference released at scope exit (this module does not depend on json/). */
static inline void cl_tp_json_drop(json_t **v)
{
    json_decref(*v);
    *v = NULL;
}
#define TP_AUTO_JSON __attribute__((cleanup(cl_tp_json_drop))) json_t

/* Records "line L, column C: <message>" for input offset `at`; returns code. */
CL_PRINTF(6, 7)
int cl_tp_fail_at(struct tp *p, size_t at, int code, const char *file, int line, const char *fmt,
                  ...);
#define TP_FAIL(p, code, ...) cl_tp_fail_at((p), (p)->pos, (code), __FILE__, __LINE__, __VA_ARGS__)
#define TP_FAIL_AT(p, at, code, ...)                                                               \
    cl_tp_fail_at((p), (at), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Describes the byte at input offset `at` for a message: "'x'", "U+0007", "end of input". */
const char *cl_tp_show(const struct tp *p, size_t at, char out[16]);

CL_MUST_CHECK int cl_tp_buf_put(struct tp *p, struct cl_tp_buf *b, const char *s, size_t n);

/* Offset of the first byte that is not well-formed UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF included), or n when all of s[0..n) is valid. */
size_t cl_tp_utf8_check(const char *s, size_t n);

/* Reads the string (any of the four kinds) starting at p->pos and appends its decoded text to
 * out. With key set, multi-line strings are refused. */
CL_MUST_CHECK int cl_tp_string(struct tp *p, struct cl_tp_buf *out, bool key);

/* Reads a boolean, integer, float or date-time starting at p->pos; *out gets a new value. */
CL_MUST_CHECK int cl_tp_scalar(struct tp *p, json_t **out);

/* New {"type": type, "value": text} object, or NULL. */
json_t *cl_tp_tag(const char *type, const char *text, size_t n);

#endif
