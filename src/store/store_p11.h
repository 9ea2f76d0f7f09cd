/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A key-encryption key held on a PKCS#11 token (store_p11.c), private to src/store. The key
 * never leaves the token: the 32-byte data keys of store_seal.c are wrapped and unwrapped on it
 * with CKM_AES_GCM, so the stored clseal1 layout is the same as with a key from a file.
 */
#ifndef CL_STORE_P11_H
#define CL_STORE_P11_H

#include "base/base.h"

/* Limits of an RFC 7512 URI and its parts. */
#define CL_STORE_P11_MAX_URI 2048
#define CL_STORE_P11_MAX_LABEL 64 /* token label (32 on the token) and object label */
#define CL_STORE_P11_MAX_ID 64
#define CL_STORE_P11_MAX_PIN 256

/* A parsed "pkcs11:" URI. The PIN (pin_value) is a secret: wipe the struct after use. */
struct cl_store_p11_uri {
    char token[CL_STORE_P11_MAX_LABEL + 1];
    char object[CL_STORE_P11_MAX_LABEL + 1];
    uint8_t id[CL_STORE_P11_MAX_ID];
    size_t idlen; /* 0: no id= */
    char module[4096];
    char pin_source[4096]; /* a file path ("file:" removed), or "" */
    char pin_value[CL_STORE_P11_MAX_PIN + 1];
    bool has_pin_value;
};

/* Whether s is a PKCS#11 URI ("pkcs11:..."), rather than a file path. */
bool cl_store_p11_is_uri(const char *s);

/* Parses uri into *out (written only on success). Path attributes token, object (both
 * required), id, type (only "secret-key"); query attributes module-path (required), pin-source,
 * pin-value. Unknown or repeated attributes are refused by name (EPARSE). */
CL_MUST_CHECK int cl_store_p11_uri_parse(const char *uri, struct cl_store_p11_uri *out,
                                         struct cl_err *err);

struct cl_store_p11;

/* Loads the module, finds the token and the AES-256 secret key object, logs in with the PIN
 * and opens one session. Returns new, or NULL with err naming the stage (module, token,
 * object, C_Login, key type). */
struct cl_store_p11 *cl_store_p11_open(const char *uri, struct cl_err *err);
/* Closes the session, finalizes the module when its last key is closed. NULL is fine. */
void cl_store_p11_close(struct cl_store_p11 *k);
/* The key id (8 hex + NUL, borrowed): the first 4 bytes of SHA-256("pkcs11:" || CKA_CHECK_VALUE),
 * or when the token has no check value, of SHA-256("pkcs11:" || token serial || CKA_ID). */
const char *cl_store_p11_kid(const struct cl_store_p11 *k);

/* AES-256-GCM on the token, aad the associated data, a 128-bit tag. Wrap: ct[32], tag[16]
 * written (EIO). Unwrap: dek[32] written only when the tag checks (EVERIFY otherwise).
 * Thread-safe: the key's one session is taken under its lock. */
CL_MUST_CHECK int cl_store_p11_wrap(struct cl_store_p11 *k, const uint8_t iv[12], const void *aad,
                                    size_t aadlen, const uint8_t dek[32], uint8_t ct[32],
                                    uint8_t tag[16], struct cl_err *err);
CL_MUST_CHECK int cl_store_p11_unwrap(struct cl_store_p11 *k, const uint8_t iv[12], const void *aad,
                                      size_t aadlen, const uint8_t ct[32], const uint8_t tag[16],
                                      uint8_t dek[32], struct cl_err *err);

#endif
