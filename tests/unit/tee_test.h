/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the TEE verifier tests (test_tee_*.c): where the upstream vectors are (read at
 * test time, never copied), file and hex helpers, a scratch folder, and the table-driven
 * "expect this stage" check that every tamper twin goes through.
 */
#ifndef CL_TEE_TEST_H
#define CL_TEE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tee/tee.h"

/* Pinned verification time: 2025-06-01T00:00:00Z (the VLEK expires 2025-12-10, the TDX
 * collateral in 2025-11). */
#define TT_TIME 1748736000

static inline const char *tt_vectors(void)
{
    static char root[4096];
    if (root[0])
        return root;
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    if (!v)
        return NULL;
    snprintf(root, sizeof root, "%s/trustee", v);
    struct stat st;
    if (stat(root, &st) != 0) {
        root[0] = '\0';
        return NULL;
    }
    return root;
}

/* Exits 77 (skip) when the trustee vectors are absent. */
static inline void tt_require_vectors(void)
{
    if (!tt_vectors()) {
        fprintf(stderr, "trustee vectors not found ($CLOISTER_VECTORS): skipping\n");
        exit(77);
    }
}

static inline char *tt_path(const char *rel)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 4096, "%s/%s", tt_vectors(), rel);
    return p;
}

/* Reads a vector (relative to the trustee root); fails the test when it is missing. */
static inline uint8_t *tt_read(const char *rel, size_t *len)
{
    struct cl_err e = {0};
    uint8_t *b = cl_file_read(tt_path(rel), 64u << 20, len, &e);
    if (!b)
        fail_msg("vector %s: %s", rel, e.msg);
    return b;
}

static inline json_t *tt_json(const char *rel)
{
    size_t n = 0;
    uint8_t *b = tt_read(rel, &n);
    struct cl_err e = {0};
    json_t *j = cl_json_parse((const char *)b, n, 64, &e);
    free(b);
    if (!j)
        fail_msg("vector %s: %s", rel, e.msg);
    return j;
}

static inline size_t tt_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    struct cl_err e = {0};
    if (cl_hex_decode(hex, strlen(hex), out, cap, &n, &e) < 0)
        fail_msg("bad hex in test: %s", e.msg);
    return n;
}

/* A fresh scratch folder (removed by tt_rmtree). */
static inline char *tt_tmpdir(void)
{
    char *d = strdup("/tmp/cl-tee-test-XXXXXX");
    if (!d || !mkdtemp(d))
        fail_msg("mkdtemp failed");
    return d;
}

static inline void tt_rmtree(const char *d)
{
    if (!d || strncmp(d, "/tmp/cl-tee-test-", 17) != 0)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d);
}

/* Symlinks dir/rel_link → the vector `vec` (creating the folders on the way). */
static inline void tt_link(const char *dir, const char *rel_link, const char *vec)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel_link);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    struct cl_err e = {0};
    if (cl_mkdir_p(path, 0755, &e) < 0)
        fail_msg("mkdir %s: %s", path, e.msg);
    *slash = '/';
    if (symlink(tt_path(vec), path) != 0)
        fail_msg("symlink %s", path);
}

/* Runs a verifier and checks the outcome: want_stage NULL = success (claims returned, new). */
static inline json_t *tt_expect(const char *name, const char *tee, const json_t *evidence,
                                const uint8_t *rd, size_t rdlen, const uint8_t *idd, size_t idlen,
                                const struct cl_tee_config *cfg, const char *want_stage)
{
    const struct cl_tee_verifier *v = cl_tee_verifier_find(tee);
    if (!v)
        fail_msg("%s: no verifier for %s", name, tee);
    struct cl_tee_verify_in in = {evidence, rd, rdlen, idd, idlen, cfg};
    struct cl_err e = {0};
    json_t *claims = NULL;
    int rc = v->verify(&in, &claims, &e);
    if (!want_stage) {
        if (rc != 0)
            fail_msg("%s: want success, got %s at stage '%s': %s (%s:%d)", name, cl_err_name(rc),
                     e.stage ? e.stage : "?", e.msg, e.file ? e.file : "?", e.line);
        if (!json_is_object(claims))
            fail_msg("%s: no claims", name);
        return claims;
    }
    if (rc == 0) {
        json_decref(claims);
        fail_msg("%s: want a refusal at stage '%s', got success", name, want_stage);
    }
    if (!e.stage || strcmp(e.stage, want_stage) != 0)
        fail_msg("%s: want stage '%s', got '%s' (%s: %s)", name, want_stage,
                 e.stage ? e.stage : "(none)", cl_err_name(rc), e.msg);
    if (claims)
        fail_msg("%s: claims returned on failure", name);
    return NULL;
}

#endif
