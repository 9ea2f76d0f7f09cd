/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: a value of an encrypted namespace read back from the database (encryption at
 * rest, "clseal1:<kid>:<wrap iv, wrapped key, tag><iv, tag, ciphertext>"). The database is a
 * trust boundary: opening is bounded and checks both tags before returning anything. The key-
 * encryption key is fixed (below) so that seeds sealed under it reach the decryption; a value
 * that opens must re-wrap and open again to the same plaintext, and must not open under
 * another key name (the name is associated data).
 */
#include "store/store_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds in tests/fuzz/corpus/store_sealed/ are sealed under this key, as
 * repository/default/key/1. */
static const char kek_hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static const char kek2_hex[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void write_key(char *path, const char *hex)
{
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex))
        abort();
    close(fd);
}

/* The key above as current; or a second key as current with the one above as old. */
static struct cl_store_seal *seal_open(bool rotated)
{
    char p1[] = "/tmp/cl-fuzz-kek-XXXXXX", p2[] = "/tmp/cl-fuzz-kek-XXXXXX";
    write_key(p1, kek_hex);
    write_key(p2, kek2_hex);
    const char *old[1] = {p1};
    struct cl_err e = {0};
    struct cl_store_seal *s =
        rotated ? cl_store_seal_new(p2, old, 1, &e) : cl_store_seal_new(p1, NULL, 0, &e);
    unlink(p1);
    unlink(p2);
    if (!s)
        abort();
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cl_store_seal *seal, *rotated;
    if (!seal) {
        cl_log_set_level(CL_LOG_ERROR);
        seal = seal_open(false);
        rotated = seal_open(true);
    }
    (void)cl_store_seal_is_sealed(data, size);
    cl_bytes *out = NULL;
    size_t n = 0;
    struct cl_err e = {0};
    if (cl_store_seal_open(seal, "repository", "default/key/1", data, size, &out, &n, &e) < 0) {
        if (out || e.code == 0)
            abort(); /* nothing returned, and a refusal says why */
        return 0;
    }
    /* it opened: not under another key name, and it survives a re-wrap */
    cl_bytes *other = NULL;
    size_t on = 0;
    if (cl_store_seal_open(seal, "repository", "default/key/2", data, size, &other, &on, NULL) == 0)
        abort();
    /* a key rotation re-wraps it; the new wrap opens under the new key to the same bytes */
    uint8_t *nv = NULL;
    size_t nn = 0;
    if (cl_store_seal_rewrap(rotated, "default/key/1", data, size, &nv, &nn, NULL) != 0)
        abort();
    cl_bytes *again = NULL;
    size_t an = 0;
    if (cl_store_seal_open(rotated, "repository", "default/key/1", nv, nn, &again, &an, NULL) < 0 ||
        an != n || memcmp(again, out, n) != 0)
        abort();
    free(again);
    free(nv);
    free(out);
    return 0;
}
