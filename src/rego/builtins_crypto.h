/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the crypto.* (builtins_crypto.c) and io.jwt.* (builtins_jwt.c) builtins:
 * the decoders of Go's standard library that OPA's results and error texts depend on.
 * Internal header of the Rego engine.
 */
#ifndef CL_REGO_BUILTINS_CRYPTO_H
#define CL_REGO_BUILTINS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Go's base64.StdEncoding / URLEncoding DecodeString (padding required, '\r' and '\n'
 * skipped). Returns a new buffer (NUL-terminated, *outlen bytes) or NULL with *bad set to the
 * offset Go reports ("illegal base64 data at input byte N"). */
uint8_t *cl_rego_go_b64_decode(const char *s, size_t n, bool url, size_t *outlen, size_t *bad);

/* One block found by Go's pem.Decode. */
struct cl_rego_pem {
    char type[128];
    uint8_t *der; /* owned by the block */
    size_t len;
    size_t nheaders;
};

/* Go's pem.Decode on s[0..n): true with the block and *rest (offset of the rest of the input)
 * when a block is found; false when there is none. Release the block with
 * cl_rego_pem_free. */
bool cl_rego_pem_decode(const char *s, size_t n, struct cl_rego_pem *blk, size_t *rest);
void cl_rego_pem_free(struct cl_rego_pem *blk);

#endif
