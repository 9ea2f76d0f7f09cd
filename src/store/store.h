/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key-value store with namespaces (trustee's key-value-storage contract): set / get / delete
 * / list. Backends are one table: "Memory", "LocalFs" (one folder per namespace, one file
 * per key with '/' written as the 4 characters "\x2F", as trustee's LocalFs does; writes are
 * atomic: temporary file, fsync, rename, fsync of the folder), "Postgres" (one table per
 * namespace, key TEXT PRIMARY KEY, value BYTEA; libpq) and "Redis" (one string key
 * "<namespace>:<key>" per value; hiredis). The last two are shared between processes: several
 * KBS replicas on one database. Thread-safe.
 */
#ifndef CL_STORE_H
#define CL_STORE_H

#include "base/base.h"

#define CL_STORE_MAX_KEY 512
#define CL_STORE_MAX_VALUE (64u * 1024 * 1024)

struct cl_store;

/* Connection pool defaults of the shared backends. */
#define CL_STORE_POOL_DEFAULT 8
#define CL_STORE_TIMEOUT_MS_DEFAULT 5000

/* Everything a backend may need; all strings borrowed for the duration of cl_store_open_opts.
 * A field that does not apply to the chosen type is ignored. */
struct cl_store_opts {
    const char *type; /* Memory, LocalFs, Postgres, Redis (case-insensitive) */
    const char *dir;  /* LocalFs base folder */
    /* Postgres: connection parameters, or url (a libpq URI) which takes precedence. The
     * username is sent also when a password is set. port 0 = 5432. NULL = libpq defaults
     * (db "postgres", username "postgres", host "localhost"). */
    const char *pg_url, *pg_db, *pg_user, *pg_password, *pg_host;
    unsigned pg_port;
    /* Redis: redis://[[user]:password@]host[:port][/db] or unix:///path.sock; rediss://
     * the same over TLS (TLS 1.2 or later, the server's chain and name always verified;
     * "#insecure" refused). redis_ca_file: PEM CAs for rediss:// (NULL: the system's);
     * redis_cert_file + redis_key_file: a client certificate, both or neither. Any of the
     * three with a redis:// url is refused (the KBS reads them from CLOISTER_REDIS_CA_FILE,
     * _CERT_FILE and _KEY_FILE). */
    const char *redis_url;
    const char *redis_ca_file, *redis_cert_file, *redis_key_file;
    unsigned pool_size;  /* connections, 0 = CL_STORE_POOL_DEFAULT */
    unsigned timeout_ms; /* connect, statement and pool wait, 0 = CL_STORE_TIMEOUT_MS_DEFAULT */
    /* Encryption at rest (opt-in): values of namespace seal_ns are envelope-encrypted
     * (AES-256-GCM data key per value, wrapped under the key-encryption key read from
     * seal_key_path: 32 raw bytes or 64 hex, or a "pkcs11:" URI naming an AES-256 key on a
     * token, see docs/store.md). seal_old_paths: earlier keys, still opened and
     * re-wrapped by cl_store_reseal. A value of seal_ns stored unencrypted is refused. */
    const char *seal_key_path, *seal_ns;
    const char *const *seal_old_paths;
    size_t nseal_old;
};
#define CL_STORE_SEAL_MAX_OLD 8

/* type: "Memory" or "LocalFs" (case-insensitive; "localfs"/"local_fs" accepted). dir is the
 * base folder for LocalFs (created if absent), ignored for Memory. Returns new or NULL. */
struct cl_store *cl_store_open(const char *type, const char *dir, struct cl_err *err);
/* The general form. Returns new or NULL (EINVAL naming the field, EIO when the database
 * cannot be reached within the timeout). */
struct cl_store *cl_store_open_opts(const struct cl_store_opts *o, struct cl_err *err);
void cl_store_close(struct cl_store *s);
/* True for a backend other processes can share (Postgres, Redis). */
bool cl_store_shared(const struct cl_store *s);
/* The canonical name of a type spelling ("postgres" → "Postgres"), or NULL when unknown. */
const char *cl_store_type_canonical(const char *type);
/* The canonical backend name ("Postgres"), borrowed. */
const char *cl_store_type(const struct cl_store *s);

/* Namespace names and keys: 1..CL_STORE_MAX_KEY characters of [A-Za-z0-9-_./]; they may not
 * contain a path segment "." or ".." or an empty one ("a//b", "a/"), and may not start with
 * '/'. Every function below answers EINVAL (naming the rule) otherwise, before any backend
 * sees the name. */
bool cl_store_key_valid(const char *key);
bool cl_store_ns_valid(const char *ns);

/* Stores a copy of data[len] (len <= CL_STORE_MAX_VALUE, else ELIMIT). EEXISTS when the key
 * exists and overwrite is false (decided atomically, also between processes for LocalFs).
 * LocalFs refuses (ELIMIT) a namespace or key whose encoded file name exceeds 255 bytes. */
CL_MUST_CHECK int cl_store_set(struct cl_store *s, const char *ns, const char *key,
                               const void *data, size_t len, bool overwrite, struct cl_err *err);
/* Returns a new NUL-terminated copy (length in *len) or NULL (ENOTFOUND, EIO, EINVAL). */
cl_bytes *cl_store_get(struct cl_store *s, const char *ns, const char *key, size_t *len,
                       struct cl_err *err);
/* ENOTFOUND when absent. */
CL_MUST_CHECK int cl_store_delete(struct cl_store *s, const char *ns, const char *key,
                                  struct cl_err *err);
/* New array of new strings (free each, then the array; cl_store_list_free does both), sorted
 * by strcmp. An absent or empty namespace gives *n = 0 and *keys = NULL. */
CL_MUST_CHECK int cl_store_list(struct cl_store *s, const char *ns, char ***keys, size_t *n,
                                struct cl_err *err);
void cl_store_list_free(char **keys, size_t n);

/* A value's version, for callers that keep something derived from it (a compiled policy):
 * a digest of the stored bytes computed where the value lives (Postgres: sha256() in the
 * server; Redis: SHA-1 in the server's Lua; Memory and LocalFs: SHA-256 here). Only ever
 * compared with another version of the same store. Zero-initialised = nothing known yet. */
#define CL_STORE_VERSION_MAX 64
struct cl_store_version {
    bool known;   /* a read has filled it */
    bool present; /* the key existed at that read */
    uint8_t len;
    uint8_t v[CL_STORE_VERSION_MAX];
};
/* Both known, and the same version (both absent, or the same digest). */
bool cl_store_version_eq(const struct cl_store_version *a, const struct cl_store_version *b);
/* Reads key's version and, only when it differs from *have, the value with it (in one
 * statement, so version and value agree). Returns 0 when unchanged (*val NULL), 1 when
 * changed: *have updated, *val the new value (new, length in *len), or NULL when the key is
 * now absent (have->present false). EIO / EINVAL as cl_store_get. */
CL_MUST_CHECK int cl_store_get_if_changed(struct cl_store *s, const char *ns, const char *key,
                                          struct cl_store_version *have, cl_bytes **val,
                                          size_t *len, struct cl_err *err);

/* Re-wraps every value of ns sealed under an old key with the current one (compare-and-set,
 * so replicas doing it at once agree); *n = how many. The values' ciphertexts are unchanged. */
CL_MUST_CHECK int cl_store_reseal(struct cl_store *s, const char *ns, size_t *n,
                                  struct cl_err *err);

/* For --check: opens the encryption keys as cl_store_open_opts would (key files read, token
 * keys found and logged in to) and closes them again. 0, or the error naming the stage. */
CL_MUST_CHECK int cl_store_seal_check(const char *kek_path, const char *const *old, size_t nold,
                                      struct cl_err *err);

/* Compare-and-set: replaces the value of key by new_data only if it is byte-for-byte old_data,
 * atomically (also between processes for Postgres and Redis). EEXISTS when the value differs,
 * ENOTFOUND when the key is absent, EUNSUPPORTED on LocalFs. A Redis key keeps its expiry. */
CL_MUST_CHECK int cl_store_cas(struct cl_store *s, const char *ns, const char *key,
                               const void *old_data, size_t old_len, const void *new_data,
                               size_t new_len, struct cl_err *err);

/* Expiring values: the stored bytes are the expiry (Unix seconds, CL_STORE_EXP_DIGITS decimal
 * digits, zero-padded, so that byte order is time order) followed by the payload. Redis also
 * gets the expiry as the key's own (EXAT), so it drops the key itself. */
#define CL_STORE_EXP_DIGITS 20
CL_MUST_CHECK int cl_store_set_expiring(struct cl_store *s, const char *ns, const char *key,
                                        const void *data, size_t len, bool overwrite,
                                        int64_t expires_unix, struct cl_err *err);
/* Splits an expiring value: 0 with *expires_unix and the payload offset, or EPARSE. */
CL_MUST_CHECK int cl_store_expiring_split(const uint8_t *v, size_t len, int64_t *expires_unix,
                                          size_t *payload_off);
/* Deletes every expiring value of ns whose expiry is <= now; *n = how many (may be NULL).
 * Postgres: one DELETE statement. Redis: nothing to do (the server expires keys). Values not
 * in the expiring format are never touched. */
CL_MUST_CHECK int cl_store_purge_expired(struct cl_store *s, const char *ns, int64_t now_unix,
                                         size_t *n, struct cl_err *err);

#endif
