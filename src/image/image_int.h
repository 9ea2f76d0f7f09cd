/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/image: the streaming hash, cleanup helpers and small shared routines.
 * Not included outside src/image (tests include it to reach the pieces directly).
 */
#ifndef CL_IMAGE_INT_H
#define CL_IMAGE_INT_H

#include <openssl/evp.h>

#include "image/image.h"
#include "image/image_parts.h"
#include "json/json.h"

/* Public entry points accept err == NULL; internally err always points somewhere, so that
 * codes read back from it (and cl_err_prefix results) stay right. */
#define CL_IMAGE_ERR_LOCAL(e)                                                                      \
    struct cl_err e##_fallback_ = {0};                                                             \
    if (!(e))                                                                                      \
    (e) = &e##_fallback_

/* A running digest of a stream. */
struct cl_image_hasher {
    EVP_MD_CTX *ctx;
    enum cl_hash alg;
};
CL_MUST_CHECK int cl_image_hasher_init(struct cl_image_hasher *h, enum cl_hash alg,
                                       struct cl_err *err);
CL_MUST_CHECK int cl_image_hasher_update(struct cl_image_hasher *h, const void *buf, size_t len,
                                         struct cl_err *err);
/* Finishes into out (a digest of h's algorithm); h can be initialised again afterwards. */
CL_MUST_CHECK int cl_image_hasher_final(struct cl_image_hasher *h, struct cl_image_digest *out,
                                        struct cl_err *err);
void cl_image_hasher_free(struct cl_image_hasher *h);

/* Fills a digest from raw bytes. */
void cl_image_digest_set(struct cl_image_digest *d, enum cl_hash alg, const uint8_t *raw);

/* Hashing pass-through source: everything read through it is hashed. */
struct cl_image_hash_src {
    struct cl_image_src src;
    struct cl_image_src *inner;
    struct cl_image_hasher h;
    uint64_t bytes;
};
CL_MUST_CHECK int cl_image_hash_src_init(struct cl_image_hash_src *s, struct cl_image_src *inner,
                                         enum cl_hash alg, struct cl_err *err);

/* Source over a file descriptor (borrowed). */
struct cl_image_fd_src {
    struct cl_image_src src;
    int fd;
};
void cl_image_fd_src_init(struct cl_image_fd_src *s, int fd);

/* openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS); -errno style: returns
 * the fd or -1 with errno set. */
int cl_image_openat_in_root(int rootfd, const char *path, int flags, unsigned mode);

/* Annotation and media-type names. */
#define CL_IMAGE_ANN_ENC_PUBOPTS "org.opencontainers.image.enc.pubopts"
#define CL_IMAGE_ANN_ENC_JWE "org.opencontainers.image.enc.keys.jwe"
#define CL_IMAGE_ANN_ENC_PROVIDER "org.opencontainers.image.enc.keys.provider."
#define CL_IMAGE_ANN_ENC_KEYS "org.opencontainers.image.enc.keys."

/* Base64 (standard, padding optional) of a JSON string member into a new buffer. */
cl_bytes *cl_image_b64_member(const json_t *obj, const char *key, size_t max, size_t *outlen,
                              const char *what, struct cl_err *err);

/* JWE (flattened or general JSON serialisation) opened with one private key: the ocicrypt
 * recipients use RSA-OAEP (SHA-1), RSA-OAEP-256 or ECDH-ES+A256KW, and A256GCM. Returns the
 * plaintext (new) or NULL: EVERIFY when no recipient opens with this key. */
struct cl_secret *cl_image_jwe_open(const json_t *jwe, cl_pkey *key, struct cl_err *err);

/* The policy scopes of ref in search order (full reference, repository, parent namespaces,
 * host, "*.domain" wildcards): a new buffer of *n NUL-separated strings, or NULL. */
cl_str *cl_image_scopes(const struct cl_image_ref *ref, size_t *n);

/* The merged registries.d configuration as {"default-docker": ..., "docker": {...}} (new). */
json_t *cl_image_lookaside_json(const struct cl_image_lookaside *l);

/* Manifest parse that accepts any layer and config media types (signature manifests). */
CL_MUST_CHECK int cl_image_manifest_parse_any(const void *buf, size_t len, const char *content_type,
                                              bool any_layers, struct cl_image_manifest *out,
                                              struct cl_err *err);

#endif
