/* SPDX-License-Identifier: Apache-2.0 */
/* Message digests by name (the lowercase names kbs-types uses) and one-shot hashing. */
#include "crypto/crypto_int.h"

#include <string.h>

static const struct {
    const char *name;
    const EVP_MD *(*md)(void);
    size_t len;
} hashes[] = {
    [CL_HASH_SHA256] = {"sha256", EVP_sha256, 32},
    [CL_HASH_SHA384] = {"sha384", EVP_sha384, 48},
    [CL_HASH_SHA512] = {"sha512", EVP_sha512, 64},
};

static bool hash_ok(enum cl_hash h)
{
    return (unsigned)h < CL_ARRAY_LEN(hashes);
}

size_t cl_hash_len(enum cl_hash h)
{
    return hash_ok(h) ? hashes[h].len : 0;
}

const char *cl_hash_name(enum cl_hash h)
{
    return hash_ok(h) ? hashes[h].name : "unknown";
}

const EVP_MD *cl_crypto_md(enum cl_hash h)
{
    return hash_ok(h) ? hashes[h].md() : NULL;
}

int cl_hash_from_name(const char *name, enum cl_hash *out, struct cl_err *err)
{
    if (!name)
        return cl_err_set(err, CL_EINVAL, "hash: no name");
    for (size_t i = 0; i < CL_ARRAY_LEN(hashes); i++) {
        if (strcmp(name, hashes[i].name) == 0) {
            *out = (enum cl_hash)i;
            return 0;
        }
    }
    return cl_err_set(err, CL_EUNSUPPORTED, "hash: unsupported algorithm '%.32s'", name);
}

int cl_digest(enum cl_hash h, const void *data, size_t len, uint8_t *out, struct cl_err *err)
{
    if (!hash_ok(h))
        return cl_err_set(err, CL_EINVAL, "hash: unknown algorithm %d", (int)h);
    if (!data && len)
        return cl_err_set(err, CL_EINVAL, "hash: no data");
    unsigned int n = 0;
    if (EVP_Digest(len ? data : "", len, out, &n, hashes[h].md(), NULL) != 1 || n != hashes[h].len)
        return cl_ossl_err(err, CL_EINVAL, "hash: %s failed", hashes[h].name);
    return 0;
}
