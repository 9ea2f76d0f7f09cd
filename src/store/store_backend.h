/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage backend table, private to src/store. A backend receives names that
 * store.c has already validated (cl_store_key_valid / cl_store_ns_valid) and values within
 * CL_STORE_MAX_VALUE; it only stores and fetches. Also the LocalFs file-name codec, exposed
 * here so that the unit test and the fuzz harness can check it alone.
 */
#ifndef CL_STORE_BACKEND_H
#define CL_STORE_BACKEND_H

#include "store/store.h"

/* Longest encoded file name LocalFs accepts (the usual NAME_MAX). */
#define CL_STORE_FS_MAX_NAME 255

struct cl_store_backend {
    const char *name;  /* canonical, matched case-insensitively */
    const char *alias; /* a second accepted spelling, or NULL */
    /* Returns the backend state or NULL with err. */
    bool shared; /* other processes see the same data */
    void *(*open)(const struct cl_store_opts *o, struct cl_err *err);
    /* expires_unix: 0, or a Unix time at which the backend may drop the key by itself. */
    int (*set)(void *impl, const char *ns, const char *key, const void *data, size_t len,
               bool overwrite, int64_t expires_unix, struct cl_err *err);
    cl_bytes *(*get)(void *impl, const char *ns, const char *key, size_t *len, struct cl_err *err);
    int (*del)(void *impl, const char *ns, const char *key, struct cl_err *err);
    /* Keys in any order; store.c sorts them. */
    int (*list)(void *impl, const char *ns, char ***keys, size_t *n, struct cl_err *err);
    /* NULL: EUNSUPPORTED. */
    int (*cas)(void *impl, const char *ns, const char *key, const void *old_data, size_t old_len,
               const void *new_data, size_t new_len, struct cl_err *err);
    /* Deletes expiring values of ns whose first CL_STORE_EXP_DIGITS bytes are <= bound (the
     * zero-padded expiry). NULL: store.c does it with list + get + delete. */
    int (*purge)(void *impl, const char *ns, const char bound[CL_STORE_EXP_DIGITS], size_t *n,
                 struct cl_err *err);
    /* The version of key (ver[CL_STORE_VERSION_MAX], length in *vlen) and, when it is not
     * have[have_len], the value too (*val new). 0 unchanged (*val NULL), 1 changed, ENOTFOUND.
     * NULL: store.c does get + SHA-256. */
    int (*get_if_changed)(void *impl, const char *ns, const char *key, const uint8_t *have,
                          size_t have_len, uint8_t *ver, size_t *vlen, cl_bytes **val, size_t *len,
                          struct cl_err *err);
    void (*close)(void *impl);
};

extern const struct cl_store_backend cl_store_backend_memory;
extern const struct cl_store_backend cl_store_backend_localfs;
extern const struct cl_store_backend cl_store_backend_postgres;
extern const struct cl_store_backend cl_store_backend_redis;

/* Validated name → file name ('/' written as the 4 characters "\x2F"). Returns the length
 * written into out[cap] (NUL-terminated), or CL_ELIMIT when it does not fit. */
CL_MUST_CHECK int cl_store_fs_name_encode(const char *name, char *out, size_t cap);
/* File name → name ("\x2F" read back as '/'). Returns a new string, or NULL when the file
 * name is not one that cl_store_fs_name_encode produces for a valid key (temporary files,
 * strangers dropped into the folder). */
cl_str *cl_store_fs_name_decode(const char *fname);

/* Encryption at rest (store_seal.c). */
struct cl_store_seal;
struct cl_store_seal *cl_store_seal_new(const char *kek_path, const char *const *old, size_t nold,
                                        struct cl_err *err);
void cl_store_seal_free(struct cl_store_seal *s);
bool cl_store_seal_is_sealed(const uint8_t *v, size_t len);
/* *out new. */
int cl_store_seal_wrap(const struct cl_store_seal *s, const char *ns, const char *key,
                       const void *data, size_t len, uint8_t **out, size_t *outlen,
                       struct cl_err *err);
/* Tags checked before *out (new) is written; EVERIFY for tampered, moved, unknown key id or
 * unencrypted values. */
int cl_store_seal_open(const struct cl_store_seal *s, const char *ns, const char *key,
                       const uint8_t *v, size_t len, cl_bytes **out, size_t *outlen,
                       struct cl_err *err);
/* 1 when nothing to do (not sealed, or already under the current key), 0 and *out (new). */
int cl_store_seal_rewrap(const struct cl_store_seal *s, const char *key, const uint8_t *v,
                         size_t len, uint8_t **out, size_t *outlen, struct cl_err *err);

#endif
