/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOML 1.0 reader producing jansson values. Cloister's configuration files (kbs-config.toml,
 * aa.toml, cdh.toml) and the init-data document that arrives from the host are TOML; this
 * module turns them into JSON so that the rest of the code reads one kind of tree. Input is
 * untrusted: its size and nesting are capped, the whole text is checked as UTF-8, and the
 * work done is linear in its length. See docs/toml.md for the mapping and the limits.
 */
#ifndef CL_TOML_H
#define CL_TOML_H

#include <jansson.h>

#include "base/base.h"

#define CL_TOML_MAX_INPUT (4u * 1024 * 1024) /* bytes of TOML text accepted */
#define CL_TOML_MAX_DEPTH 64 /* nested tables/arrays, the root table counting as 1 */

/*
 * Parses a TOML 1.0 document held in buf[len] (borrowed; need not be NUL-terminated) into a
 * JSON object. Returns new, or NULL with err set: EPARSE for text that is not TOML 1.0 (the
 * message starts "line L, column C:" and says what is wrong), ELIMIT beyond CL_TOML_MAX_INPUT
 * or CL_TOML_MAX_DEPTH, EINVAL for a NULL buf, ENOMEM.
 *
 * Mapping: tables and inline tables → objects; arrays and arrays of tables → arrays;
 * strings → strings; integers → integers (full int64 range); booleans → true/false;
 * finite floats → reals; inf/-inf/nan → the strings "inf", "-inf", "nan" (JSON has no such
 * numbers: a caller expecting a number sees a type error rather than a silent value);
 * offset date-times, local date-times, local dates and local times → strings in RFC 3339
 * form ('T' between date and time, upper-case 'Z', fraction and offset as written).
 * A string or key holding U+0000 is refused (EPARSE): C callers read NUL-terminated text.
 */
json_t *cl_toml_parse(const char *buf, size_t len, struct cl_err *err);

/*
 * The same parser, but every scalar becomes toml-test's tagged form
 * {"type": "string|integer|float|bool|datetime|datetime-local|date-local|time-local",
 *  "value": "<text>"}; U+0000 is allowed in strings and keys here. Used by the conformance
 * runner. Returns new or NULL (as above).
 */
json_t *cl_toml_parse_tagged(const char *buf, size_t len, struct cl_err *err);

/* Reads the file at path (at most CL_TOML_MAX_INPUT bytes) and parses it with cl_toml_parse.
 * Returns new or NULL; the error message is prefixed with the path. */
json_t *cl_toml_load_file(const char *path, struct cl_err *err);

#endif
