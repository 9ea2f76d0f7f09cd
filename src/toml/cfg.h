/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One table-driven reader for Cloister's configuration files (kbs-config.toml, aa.toml,
 * cdh.toml). A reader describes each table of its file as an array of struct cl_cfg_field
 * rows {key, type, offset, min, max, flags, ...}; cl_cfg_read() walks the parsed document
 * (src/toml gives a jansson tree), fills the caller's struct and refuses every key that is not
 * in the table, naming its dotted path and file:line. The same rows give the effective
 * configuration back as JSON in the file's own structure (cl_cfg_effective(), for --check)
 * and name the files to open and parse (cl_cfg_check_files()).
 *
 * Two kinds of failure: a value of the wrong type or outside its bounds stops the walk
 * (the function returns the error code); a key Cloister does not support is a *refusal*: it is
 * logged now with file:line, counted, and the walk goes on so that one run names every such
 * key. cl_cfg_finish() folds the refusals into the returned error (EINVAL, "N keys refused,
 * the first: ..."); the daemons exit 2 on it.
 */
#ifndef CL_TOML_CFG_H
#define CL_TOML_CFG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Refusals beyond this many are counted but neither located nor logged one by one. */
#define CL_CFG_MAX_REFUSALS_LOGGED 64
/* Longest dotted path built for a message (longer ones are cut). */
#define CL_CFG_MAX_PATH 256

/* A parse in progress. */
struct cl_cfg {
    const char *who;  /* message prefix: "config", "aa config", "cdh config" */
    const char *file; /* NULL → "<config>" */
    const char *text; /* the file's text, for line numbers (may be NULL: no lines) */
    size_t len;
    unsigned nbad; /* refusals so far */
    struct cl_err first;
};

enum cl_cfg_type {
    CL_CFG_END = 0, /* terminates a table */
    CL_CFG_STR,     /* char * (owned: replaced, freed by the caller's clear) */
    CL_CFG_BOOL,    /* bool */
    CL_CFG_INT,     /* integer in [min, max], times scale, stored in a field of `size` bytes */
    CL_CFG_ENUM,    /* char *, one of choices[] (else a refusal: "<path> = "<v>" <why>") */
    CL_CFG_STRS,    /* array of at most max strings: char *[max] at off, size_t count at off_n;
                     * with CL_CFG_NULLTERM a calloc'ed NULL-terminated char ** at off */
    CL_CFG_TABLE,   /* a sub-table described by sub[] (same base struct) */
    CL_CFG_FUNC,    /* the value is given to fn (arrays of tables, values with logic) */
    CL_CFG_REFUSED, /* known but not implemented: refused with why unless "off" (empty array
                     * or table, false) */
    CL_CFG_IGNORED, /* accepted and ignored with a warning naming it and why */
    CL_CFG_KNOWN,   /* accepted here, read by the caller's own code */
};

enum {
    CL_CFG_REQUIRED = 1u << 0, /* "'<path>' is missing" when absent (the table being present) */
    CL_CFG_SECRET = 1u << 1,   /* shown as "<redacted>" by cl_cfg_effective */
    CL_CFG_FILE = 1u << 2,     /* a path cl_cfg_check_files reads (CL_CFG_STR / CL_CFG_STRS) */
    CL_CFG_HIDDEN = 1u << 3,   /* not shown by cl_cfg_effective (aliases, write-only keys) */
    CL_CFG_NULLTERM = 1u << 4, /* CL_CFG_STRS: NULL-terminated char ** */
    CL_CFG_PEM = 1u << 5,      /* CL_CFG_STR(S) holding PEM certificates, checked by
                                * cl_cfg_check_files (the text itself, not a path) */
    CL_CFG_URI = 1u << 6,      /* with CL_CFG_FILE: a URI; file:// is checked, another scheme
                                * (kbs://, https://) is fetched later and not checked */
    CL_CFG_URI_PIN = 1u << 7,  /* shown by cl_cfg_effective with the value of a "pin-value"
                                * query attribute (RFC 7512) as "<redacted>" */
};

struct cl_cfg_field;
typedef int (*cl_cfg_fn)(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                         struct cl_err *err);

struct cl_cfg_field {
    const char *key;
    enum cl_cfg_type type;
    unsigned flags;
    size_t off;                        /* offset of the value in the base struct */
    size_t off_n;                      /* CL_CFG_STRS: offset of the size_t count */
    unsigned size;                     /* CL_CFG_INT: sizeof the member (1, 2, 4 or 8) */
    int64_t min, max;                  /* CL_CFG_INT bounds; CL_CFG_STRS: max = most entries */
    int64_t scale;                     /* CL_CFG_INT: stored value = value * scale (0 = 1) */
    const char *const *choices;        /* CL_CFG_ENUM, NULL-terminated */
    const struct cl_cfg_field *sub;    /* CL_CFG_TABLE */
    cl_cfg_fn fn;                      /* CL_CFG_FUNC */
    json_t *(*show)(const void *base); /* CL_CFG_FUNC: its effective value (NULL: left out) */
    const char *why;  /* CL_CFG_ENUM / REFUSED / IGNORED: the explanation in the message */
    const char *dflt; /* CL_CFG_STR / ENUM: shown by cl_cfg_effective when unset */
    int64_t dint;     /* CL_CFG_INT: shown by cl_cfg_effective when the field holds 0 */
};

#define CL_CFG_MEMBER_SIZE(st, m) ((unsigned)sizeof(((st *)0)->m))
/* One row per key (use these so that adding a key is one line). fl: flags, df: default shown
 * by cl_cfg_effective (NULL: null), dint: the same for an integer left 0. */
#define CL_CFG_S(k, st, m, fl, df)                                                                 \
    {                                                                                              \
        .key = (k), .type = CL_CFG_STR, .off = offsetof(st, m), .flags = (fl), .dflt = (df)        \
    }
#define CL_CFG_B(k, st, m)                                                                         \
    {                                                                                              \
        .key = (k), .type = CL_CFG_BOOL, .off = offsetof(st, m)                                    \
    }
#define CL_CFG_I(k, st, m, lo, hi, dint_)                                                          \
    {                                                                                              \
        .key = (k), .type = CL_CFG_INT, .off = offsetof(st, m), .size = CL_CFG_MEMBER_SIZE(st, m), \
        .min = (lo), .max = (hi), .dint = (dint_)                                                  \
    }
/* an integer given in units of sc (the struct holds value * sc) */
#define CL_CFG_IS(k, st, m, lo, hi, dint_, sc)                                                     \
    {                                                                                              \
        .key = (k), .type = CL_CFG_INT, .off = offsetof(st, m), .size = CL_CFG_MEMBER_SIZE(st, m), \
        .min = (lo), .max = (hi), .dint = (dint_), .scale = (sc)                                   \
    }
#define CL_CFG_E(k, st, m, ch, w, df)                                                              \
    {                                                                                              \
        .key = (k), .type = CL_CFG_ENUM, .off = offsetof(st, m), .choices = (ch), .why = (w),      \
        .dflt = (df)                                                                               \
    }
#define CL_CFG_A(k, st, m, n, cap, fl)                                                             \
    {                                                                                              \
        .key = (k), .type = CL_CFG_STRS, .off = offsetof(st, m), .off_n = offsetof(st, n),         \
        .max = (cap), .flags = (fl)                                                                \
    }
/* a NULL-terminated char ** */
#define CL_CFG_AN(k, st, m, cap, fl)                                                               \
    {                                                                                              \
        .key = (k), .type = CL_CFG_STRS, .off = offsetof(st, m), .max = (cap),                     \
        .flags = CL_CFG_NULLTERM | (fl)                                                            \
    }
#define CL_CFG_T(k, s)                                                                             \
    {                                                                                              \
        .key = (k), .type = CL_CFG_TABLE, .sub = (s)                                               \
    }
#define CL_CFG_F(k, f, sh)                                                                         \
    {                                                                                              \
        .key = (k), .type = CL_CFG_FUNC, .fn = (f), .show = (sh)                                   \
    }
#define CL_CFG_NO(k, w)                                                                            \
    {                                                                                              \
        .key = (k), .type = CL_CFG_REFUSED, .why = (w)                                             \
    }
#define CL_CFG_IGN(k, w)                                                                           \
    {                                                                                              \
        .key = (k), .type = CL_CFG_IGNORED, .why = (w)                                             \
    }
#define CL_CFG_K(k)                                                                                \
    {                                                                                              \
        .key = (k), .type = CL_CFG_KNOWN                                                           \
    }
#define CL_CFG_END_ROW                                                                             \
    {                                                                                              \
        .key = NULL, .type = CL_CFG_END                                                            \
    }

/* Starts a parse: who prefixes every message; file and text give file:line (either NULL). */
void cl_cfg_begin(struct cl_cfg *c, const char *who, const char *file, const char *text,
                  size_t len);

/* Walks tbl (a JSON object) under the dotted prefix `where` ("" at the top) with the rows of
 * fields, filling base. Unknown keys and CL_CFG_REFUSED keys are refusals; a wrong type or
 * bound returns the error (EINVAL naming the dotted path). Returns 0 or the error code. */
CL_MUST_CHECK int cl_cfg_read(struct cl_cfg *c, const json_t *tbl, const char *where,
                              const struct cl_cfg_field *fields, void *base, struct cl_err *err);

/* Records a refusal of the key at dotted `path` ("a.b[1].c"): logged now as
 * "<who>: <file>:<line>: <message>", the first kept for cl_cfg_finish. */
CL_PRINTF(3, 4) void cl_cfg_refuse(struct cl_cfg *c, const char *path, const char *fmt, ...);

/* Ends a parse: with refusals, err becomes the first one (prefixed "N keys refused, the
 * first" when several) and EINVAL is returned, whatever rc was (a later error is logged as
 * "also"). Otherwise returns rc. */
int cl_cfg_finish(struct cl_cfg *c, int rc, struct cl_err *err);

/* "where.key" (or "key" when where is empty) into out. */
void cl_cfg_join(char *out, size_t cap, const char *where, const char *key);

/* The rows' values in base as a JSON object (new), in the file's structure and key names:
 * unset strings show dflt or null, secrets "<redacted>", CL_CFG_FUNC rows show what their
 * show() gives; KNOWN / REFUSED / IGNORED / HIDDEN rows are left out. NULL on ENOMEM. */
json_t *cl_cfg_effective(const struct cl_cfg_field *fields, const void *base);

/* Checks PEM text (certificates); 0 or the error. */
typedef int (*cl_cfg_pem_fn)(const char *pem, size_t len, struct cl_err *err);

/* For --check: every CL_CFG_FILE row's path (each entry of an array) must be readable (at most
 * max bytes); every CL_CFG_PEM row's text must pass pem (when given). Errors name the dotted
 * path. */
CL_MUST_CHECK int cl_cfg_check_files(const char *who, const struct cl_cfg_field *fields,
                                     const void *base, const char *where, size_t max,
                                     cl_cfg_pem_fn pem, struct cl_err *err);

#endif
