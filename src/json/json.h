/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON helpers on jansson: bounded parsing (size and nesting depth checked before jansson
 * sees the bytes), typed getters that name the missing or mistyped field, and RFC 8785
 * canonical serialisation (JCS), which the KBS protocol hashes into the TEE report data.
 */
#ifndef CL_JSON_H
#define CL_JSON_H

#include <jansson.h>

#include "base/base.h"

#define CL_JSON_MAX_DEPTH 64 /* default nesting cap for untrusted documents */

void cl_auto_json_t(json_t **p);

/* Parses exactly one JSON value (any type) from buf[len]. Refuses more than max_depth nested
 * arrays/objects (ELIMIT) before parsing, and any malformed text (EPARSE, with line:column).
 * Returns new or NULL. NUL bytes inside strings are refused. */
json_t *cl_json_parse(const char *buf, size_t len, size_t max_depth, struct cl_err *err);

/* RFC 8785 canonical form: keys sorted by UTF-16 code units, no whitespace, minimal escapes,
 * ECMAScript number formatting. Returns a new NUL-terminated string (length in *len if
 * non-NULL) or NULL (EINVAL for NaN/Inf or invalid UTF-8, ENOMEM). */
cl_str *cl_json_canonical(const json_t *v, size_t *len, struct cl_err *err);

/* Compact serialisation with keys in insertion order (jansson's JSON_COMPACT). New or NULL. */
cl_str *cl_json_compact(const json_t *v);

/* Typed member access. `obj` borrowed; outputs borrowed from obj. ENOTFOUND when absent,
 * EPARSE when the type is wrong; the message names the key. */
CL_MUST_CHECK int cl_json_get_str(const json_t *obj, const char *key, const char **out,
                                  struct cl_err *err);
CL_MUST_CHECK int cl_json_get_obj(const json_t *obj, const char *key, json_t **out,
                                  struct cl_err *err);
CL_MUST_CHECK int cl_json_get_arr(const json_t *obj, const char *key, json_t **out,
                                  struct cl_err *err);
CL_MUST_CHECK int cl_json_get_int(const json_t *obj, const char *key, json_int_t *out,
                                  struct cl_err *err);
CL_MUST_CHECK int cl_json_get_bool(const json_t *obj, const char *key, bool *out,
                                   struct cl_err *err);
/* Optional string: *out = NULL when absent, error only when present with another type. */
CL_MUST_CHECK int cl_json_opt_str(const json_t *obj, const char *key, const char **out,
                                  struct cl_err *err);

/* RFC 6901 JSON pointer lookup ("" is the whole document). Returns borrowed or NULL. */
json_t *cl_json_pointer(json_t *doc, const char *ptr);

#endif
