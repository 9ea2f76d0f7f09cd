/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rego values: null, booleans, numbers, strings, arrays, objects (any value as key) and sets,
 * reference counted and immutable once shared. This is the currency between the evaluator and
 * the builtins (builtins.h); it knows nothing about modules, rules or evaluation.
 *
 * Ownership: every constructor returns a new reference; cl_rv_incref/cl_rv_decref adjust it.
 * Functions taking a value say *takes* (the caller's reference moves in) or *borrows*.
 * A value may be modified (array/set/object add) only while its caller holds the only
 * reference (refs == 1) and it is not frozen; builders do exactly that before handing it out.
 *
 * Frozen values (cl_rv_freeze) belong to a compiled engine (policy constants, the data
 * document) and are shared read-only by every evaluation and every thread: incref/decref are
 * no-ops on them, so concurrent evaluations never write to shared memory. The engine frees
 * and releases them when it is freed.
 *
 * Ordering is OPA's total order: null < boolean < number < string < array < object < set;
 * numbers by value (1 == 1.0), strings bytewise, arrays element-wise then shorter first,
 * objects by sorted (key, value) pairs then size, sets by sorted elements then size.
 * Sets and objects keep their members sorted by that order (binary search lookups).
 */
#ifndef CL_REGO_VALUE_H
#define CL_REGO_VALUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Type tags, numbered in OPA's sort order. */
enum cl_rv_type {
    CL_RV_NULL = 0,
    CL_RV_BOOL,
    CL_RV_NUMBER,
    CL_RV_STRING,
    CL_RV_ARRAY,
    CL_RV_OBJECT,
    CL_RV_SET,
};

/* A value. Its layout is the engine's (rego/rv.h, for builtin authors); other code reads values
 * through the accessors below. */
struct cl_rv;

#define CL_RV_MAX_BIG_DIGITS 4096

/* ---- constructors (return new) ---- */
struct cl_rv *cl_rv_null(void);
struct cl_rv *cl_rv_bool(bool b);
struct cl_rv *cl_rv_int(int64_t i);
/* A double; integral values that fit an int64 exactly become integers. NaN/Inf are refused by
 * callers (builtins report them as errors); this constructor stores them as given. */
struct cl_rv *cl_rv_float(double d);
struct cl_rv *cl_rv_str(const char *s, size_t len);
struct cl_rv *cl_rv_strz(const char *s);
/* A string of len bytes to fill in before sharing it: *buf points to its (NUL-terminated)
 * storage. Returns new. */
struct cl_rv *cl_rv_str_alloc(size_t len, char **buf);
CL_PRINTF(1, 2) struct cl_rv *cl_rv_strf(const char *fmt, ...);
struct cl_rv *cl_rv_array(size_t cap);
struct cl_rv *cl_rv_set(void);
struct cl_rv *cl_rv_object(void);
/* Parses a Rego/JSON number literal ("12", "-3.5e2"); NULL when malformed. */
struct cl_rv *cl_rv_number_parse(const char *s, size_t len);
/* Exact arithmetic on integers of any size (int64 or CL_RV_BIGINT), doubles otherwise.
 * Return new, or NULL when the result is not a finite number (or has more than
 * CL_RV_MAX_BIG_DIGITS digits). */
struct cl_rv *cl_rv_num_add(const struct cl_rv *a, const struct cl_rv *b);
struct cl_rv *cl_rv_num_sub(const struct cl_rv *a, const struct cl_rv *b);
struct cl_rv *cl_rv_num_mul(const struct cl_rv *a, const struct cl_rv *b);

/* ---- builders (the value must be unshared: refs == 1, not frozen) ---- */
/* Appends, takes v. */
void cl_rv_array_push(struct cl_rv *arr, struct cl_rv *v);
/* Inserts in order, takes v (dropped when already present). Returns true if added. */
bool cl_rv_set_add(struct cl_rv *set, struct cl_rv *v);
/* Inserts or replaces, takes k and v. */
void cl_rv_obj_put(struct cl_rv *obj, struct cl_rv *k, struct cl_rv *v);
/* Convenience: key given as a C string. */
void cl_rv_obj_put_str(struct cl_rv *obj, const char *k, struct cl_rv *v);
/* Removes key k (borrowed) if present. */
void cl_rv_obj_del(struct cl_rv *obj, const struct cl_rv *k);

/* ---- references ---- */
/* Adds a reference (none for frozen values); returns v. */
struct cl_rv *cl_rv_incref(struct cl_rv *v);
void cl_rv_decref(struct cl_rv *v);
void cl_auto_cl_rv(struct cl_rv **p);
/* Marks v and everything reachable from it frozen (see above). */
void cl_rv_freeze(struct cl_rv *v);
/* Releases frozen values: everything reachable from roots[0..n) is freed exactly once
 * (shared members included), ignoring reference counts. Only the owner of the frozen graph
 * (the engine) calls this, when no evaluation can still see it. */
void cl_rv_release_frozen(struct cl_rv *const *roots, size_t n);
/* A shallow copy that the caller may modify (elements shared). Returns new. */
struct cl_rv *cl_rv_copy(const struct cl_rv *v);

/* ---- queries (all borrow) ---- */
int cl_rv_compare(const struct cl_rv *a, const struct cl_rv *b);
static inline bool cl_rv_equal(const struct cl_rv *a, const struct cl_rv *b)
{
    return cl_rv_compare(a, b) == 0;
}
/* Object member by key; returns borrowed or NULL. */
struct cl_rv *cl_rv_obj_get(const struct cl_rv *obj, const struct cl_rv *k);
struct cl_rv *cl_rv_obj_get_str(const struct cl_rv *obj, const char *k);
bool cl_rv_set_has(const struct cl_rv *set, const struct cl_rv *v);
/* Collection length: array/set/object members, string bytes; 0 otherwise. */
size_t cl_rv_len(const struct cl_rv *v);
/* Bytes held by v and everything it reaches (shared members counted each time). */
size_t cl_rv_size(const struct cl_rv *v);
/* Hash consistent with cl_rv_compare (equal values hash equal). */
uint64_t cl_rv_hash(const struct cl_rv *v);
/* "null", "boolean", "number", "string", "array", "object", "set" */
const char *cl_rv_type_name(const struct cl_rv *v);
/* Number helpers: true when v is a number holding an integer (exactly), stored to *out. */
bool cl_rv_as_int(const struct cl_rv *v, int64_t *out);
double cl_rv_as_double(const struct cl_rv *v);
/* True when v is not NULL and of type t. */
bool cl_rv_is(const struct cl_rv *v, enum cl_rv_type t);
/* True when v is the boolean true. */
bool cl_rv_is_true(const struct cl_rv *v);

/* ---- accessors (all borrow; results borrowed from v) ---- */
/* The type of v (v not NULL). */
enum cl_rv_type cl_rv_kind(const struct cl_rv *v);
/* A string's bytes (NUL-terminated) and, when len is not NULL, their count; NULL when v is not
 * a string. */
const char *cl_rv_str_get(const struct cl_rv *v, size_t *len);
/* Element i of an array, or of a set in its order; NULL when v is neither or i >= its length.
 * With cl_rv_len, the way to iterate. */
struct cl_rv *cl_rv_item(const struct cl_rv *v, size_t i);
/* Key and value of member i of an object, members in key order; NULL when v is not an object
 * or i >= its length. */
struct cl_rv *cl_rv_obj_key(const struct cl_rv *obj, size_t i);
struct cl_rv *cl_rv_obj_val(const struct cl_rv *obj, size_t i);

/* ---- conversions ---- */
/* JSON to value; returns new. Depth is bounded by the caller (cl_json_parse did). */
struct cl_rv *cl_rv_from_json(const json_t *j);
/* Value to JSON; sets become sorted arrays, non-string object keys become their JSON text.
 * Returns new. */
json_t *cl_rv_to_json(const struct cl_rv *v);
/* Rego text of a value (strings quoted, sets as {..} / set()), appended to a new string. */
cl_str *cl_rv_dump(const struct cl_rv *v);
/* JSON text (sets as arrays); new string. */
cl_str *cl_rv_to_json_text(const struct cl_rv *v);
/* Number as OPA prints it: integers plainly, other values in shortest round-trip form. */
void cl_rv_format_number(const struct cl_rv *v, char *buf, size_t cap);

/* Memory accounting: bytes currently allocated by values on this thread. The evaluator
 * compares it against its memory cap at every step. */
extern _Thread_local int64_t cl_rv_bytes_live;
/* Allocations made by the engine on this thread (count, bytes requested), for benchmarks. */
extern _Thread_local uint64_t cl_rv_allocs, cl_rv_alloc_bytes;

#endif
