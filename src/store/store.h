/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key-value store with namespaces (trustee's key-value-storage contract): set / get / delete
 * / list. Backends are one table: "Memory" and "LocalFs" (one folder per namespace, one file
 * per key with '/' written as the 4 characters "\x2F", as trustee's LocalFs does; writes are
 * atomic: temporary file, fsync, rename, fsync of the folder). Thread-safe.
 */
#ifndef CL_STORE_H
#define CL_STORE_H

#include "base/base.h"

#define CL_STORE_MAX_KEY 512
#define CL_STORE_MAX_VALUE (64u * 1024 * 1024)

struct cl_store;

/* type: "Memory" or "LocalFs" (case-insensitive; "localfs"/"local_fs" accepted). dir is the
 * base folder for LocalFs (created if absent), ignored for Memory. Returns new or NULL. */
struct cl_store *cl_store_open(const char *type, const char *dir, struct cl_err *err);
void cl_store_close(struct cl_store *s);

/* Namespace names and keys: 1..CL_STORE_MAX_KEY characters of [A-Za-z0-9-_./]; they may not
 * contain a path segment "." or ".." or an empty one ("a//b", "a/"), and may not start with
 * '/'. Every function below answers EINVAL (naming the rule) otherwise, before any backend
 * sees the name. */
bool cl_store_key_valid(const char *key);
bool cl_store_ns_valid(const char *ns);

/* Stores a copy of data[len] (len <= CL_STORE_MAX_VALUE, else ELIMIT). EEXISTS when the key
 * exists and overwrite is false (decided atomically, also between processes for LocalFs).
 * LocalFs refuses (ELIMIT) a namespace or key whose encoded file name exceeds 255 bytes. */
CL_MUST_CHECK int cl_store_set(struct cl_store *s, const char *ns, const char *key, const void *data, size_t len,
                               bool overwrite, struct cl_err *err);
/* Returns a new NUL-terminated copy (length in *len) or NULL (ENOTFOUND, EIO, EINVAL). */
cl_bytes *cl_store_get(struct cl_store *s, const char *ns, const char *key, size_t *len, struct cl_err *err);
/* ENOTFOUND when absent. */
CL_MUST_CHECK int cl_store_delete(struct cl_store *s, const char *ns, const char *key, struct cl_err *err);
/* New array of new strings (free each, then the array; cl_store_list_free does both), sorted
 * by strcmp. An absent or empty namespace gives *n = 0 and *keys = NULL. */
CL_MUST_CHECK int cl_store_list(struct cl_store *s, const char *ns, char ***keys, size_t *n, struct cl_err *err);
void cl_store_list_free(char **keys, size_t n);

#endif
