/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: store namespace and key names (they arrive from URLs: the KBS resource path).
 * Checks that the validator and the LocalFs file-name codec agree: a valid name has no '..'
 * segment, no leading '/', round-trips through the codec to a single path component; an
 * invalid one is refused by every store call before the backend sees it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static struct cl_store *g_mem;

static void check_valid(const char *s, size_t n)
{
    CHECK(n >= 1 && n <= CL_STORE_MAX_KEY);
    CHECK(s[0] != '/' && s[n - 1] != '/');
    CHECK(!strstr(s, "//") && !strstr(s, "/../") && !strstr(s, "/./"));
    CHECK(strcmp(s, "..") != 0 && strcmp(s, ".") != 0 && strncmp(s, "../", 3) != 0);
    CHECK(!(n >= 3 && strcmp(s + n - 3, "/..") == 0));

    char fname[CL_STORE_FS_MAX_NAME + 1];
    int el = cl_store_fs_name_encode(s, fname, sizeof fname);
    if (el >= 0) {
        CHECK((size_t)el == strlen(fname));
        CHECK(!strchr(fname, '/'));
        CHECK(strcmp(fname, ".") != 0 && strcmp(fname, "..") != 0);
        char *back = cl_store_fs_name_decode(fname);
        CHECK(back && strcmp(back, s) == 0);
        free(back);
    } else {
        CHECK(el == CL_ELIMIT);
    }

    struct cl_err err = {0};
    CHECK(cl_store_set(g_mem, s, s, s, n, true, &err) == 0);
    size_t len = 0;
    cl_bytes *v = cl_store_get(g_mem, s, s, &len, &err);
    CHECK(v && len == n && memcmp(v, s, n) == 0);
    free(v);
    char **keys = NULL;
    size_t nk = 0;
    CHECK(cl_store_list(g_mem, s, &keys, &nk, &err) == 0 && nk == 1 && strcmp(keys[0], s) == 0);
    cl_store_list_free(keys, nk);
    CHECK(cl_store_delete(g_mem, s, s, &err) == 0);
}

static void check_invalid(const char *s)
{
    struct cl_err err = {0};
    CHECK(cl_store_set(g_mem, "ns", s, "v", 1, true, &err) == CL_EINVAL);
    CHECK(cl_store_set(g_mem, s, "k", "v", 1, true, &err) == CL_EINVAL);
    CHECK(cl_store_get(g_mem, "ns", s, NULL, &err) == NULL && err.code == CL_EINVAL);
    CHECK(cl_store_delete(g_mem, "ns", s, &err) == CL_EINVAL);
    /* whatever the decoder accepts must be a valid key, so s cannot come back from it */
    char *d = cl_store_fs_name_decode(s);
    if (d) {
        CHECK(cl_store_key_valid(d));
        free(d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * CL_STORE_MAX_KEY)
        return 0;
    if (!g_mem) {
        cl_log_set_level(CL_LOG_ERROR);
        g_mem = cl_store_open("Memory", NULL, NULL);
        CHECK(g_mem);
    }
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    bool kv = cl_store_key_valid(s), nv = cl_store_ns_valid(s);
    CHECK(kv == nv);
    if (kv)
        check_valid(s, strlen(s)); /* the API sees the C string up to the first NUL */
    else
        check_invalid(s);
    free(s);
    return 0;
}
