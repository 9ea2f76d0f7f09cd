/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: JWK import (cl_jwk_to_pkey on parsed JSON) and thumbprint. Invariant
 * checked: an accepted key exports to a JWK that imports again as the same public key, and
 * the thumbprint of that export equals the thumbprint of the input.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *jwk = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, NULL);
    if (!jwk)
        return 0;
    struct cl_err err = {0};
    cl_str *thp = cl_jwk_thumbprint(jwk, NULL);
    cl_pkey *k = cl_jwk_to_pkey(jwk, &err);
    if (!k) {
        if (err.code == 0 || err.msg[0] == '\0')
            abort(); /* every refusal names its reason */
    } else {
        json_t *pub = cl_jwk_from_pkey(k, false, NULL, NULL);
        cl_pkey *k2 = pub ? cl_jwk_to_pkey(pub, NULL) : NULL;
        if (!k2 || !cl_pkey_public_equal(k, k2))
            abort();
        /* RSA "n"/"e" may carry leading zeros on input, which the export drops */
        cl_str *thp2 = cl_jwk_thumbprint(pub, NULL);
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        if (!thp || !thp2 || (strcmp(kty, "RSA") != 0 && strcmp(thp, thp2) != 0))
            abort();
        free(thp2);
        EVP_PKEY_free(k2);
        json_decref(pub);
        EVP_PKEY_free(k);
    }
    free(thp);
    json_decref(jwk);
    return 0;
}
