/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encryption at rest with the key-encryption key on a PKCS#11 token: a real SoftHSM2 token made
 * in a temporary folder (softhsm2-util, pkcs11-tool), an AES-256 key "kek" and an AES-128 key
 * "kek16" on it. Round trip, the clseal1 layout and the token's kid, tamper twins, each
 * refusal by name, rotation file ↔ token through cl_store_reseal, 4 threads at once. Skipped
 * (77) when SoftHSM2 or pkcs11-tool is absent.
 */
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_p11.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const char *const module_paths[] = {
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
};
static const char *module;
static char dir[] = "/tmp/cl-store-p11-XXXXXX";
static char pin_ok[128], pin_bad[128];

static char *uri_of(const char *tail)
{
    static __thread char u[1024];
    snprintf(u, sizeof u, "pkcs11:%s?module-path=%s&pin-source=file:%s", tail, module, pin_ok);
    return u;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int make_token(void)
{
    if (!mkdtemp(dir))
        return -1;
    char conf[256], cmd[1024];
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(pin_ok, sizeof pin_ok, "%s/pin", dir);
    snprintf(pin_bad, sizeof pin_bad, "%s/pin.bad", dir);
    snprintf(cmd, sizeof cmd,
             "mkdir %s/tokens && echo 1234 > %s && echo 9999 > %s && "
             "softhsm2-util --init-token --free --label cloister --pin 1234 --so-pin 5678 "
             ">/dev/null && "
             "pkcs11-tool --module %s --login --pin 1234 --keygen --key-type AES:32 --label kek "
             "--id 01 >/dev/null 2>&1 && "
             "pkcs11-tool --module %s --login --pin 1234 --keygen --key-type AES:16 --label kek16 "
             "--id 02 >/dev/null 2>&1",
             dir, pin_ok, pin_bad, module, module);
    return system(cmd) == 0 ? 0 : -1;
}

static struct cl_store *open_mem(const char *key, const char *const *old, size_t nold,
                                 struct cl_err *err)
{
    struct cl_store_opts o = {.type = "Memory",
                              .seal_key_path = key,
                              .seal_ns = "repository",
                              .seal_old_paths = old,
                              .nseal_old = nold};
    return cl_store_open_opts(&o, err);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct cl_err err = {0};
    struct cl_store *s = open_mem(uri_of("token=cloister;object=kek;id=%01"), NULL, 0, &err);
    if (!s)
        fail_msg("open: %s", err.msg);
    static const char secret[] = "the owner's secret";
    assert_int_equal(cl_store_set(s, "repository", "a/b/c", secret, sizeof secret - 1, true, &err),
                     0);
    size_t n = 0;
    cl_bytes *v = cl_store_get(s, "repository", "a/b/c", &n, &err);
    assert_non_null(v);
    assert_int_equal(n, sizeof secret - 1);
    assert_memory_equal(v, secret, n);
    free(v);
    cl_store_close(s);
}

/* The layout and the kid, on the seal directly; its tamper twins. */
static void test_layout_and_tamper(void **state)
{
    (void)state;
    struct cl_err err = {0};
    struct cl_store_seal *s = cl_store_seal_new(uri_of("token=cloister;object=kek"), NULL, 0, &err);
    if (!s)
        fail_msg("seal: %s", err.msg);
    struct cl_store_p11 *k = cl_store_p11_open(uri_of("token=cloister;object=kek"), &err);
    assert_non_null(k);
    uint8_t *b = NULL;
    size_t blen = 0;
    assert_int_equal(cl_store_seal_wrap(s, "repository", "x", "secret", 6, &b, &blen, &err), 0);
    assert_int_equal(blen, 8 + 8 + 1 + 60 + 28 + 6);
    assert_memory_equal(b, "clseal1:", 8);
    assert_memory_equal(b + 8, cl_store_p11_kid(k), 8);
    assert_int_equal(b[16], ':');
    assert_null(memmem(b, blen, "secret", 6));
    cl_bytes *p = NULL;
    size_t pn = 0;
    assert_int_equal(cl_store_seal_open(s, "repository", "x", b, blen, &p, &pn, &err), 0);
    assert_memory_equal(p, "secret", 6);
    free(p);
    /* a flipped byte in the wrapped key, its tag, and the value's ciphertext */
    static const size_t at[] = {17 + 12, 17 + 44, 8 + 8 + 1 + 60 + 28};
    for (size_t i = 0; i < CL_ARRAY_LEN(at); i++) {
        b[at[i]] ^= 1;
        if (cl_store_seal_open(s, "repository", "x", b, blen, &p, &pn, &err) != CL_EVERIFY)
            fail_msg("flipped byte %zu: %d %s", at[i], err.code, err.msg);
        b[at[i]] ^= 1;
    }
    /* the same key opened twice has the same kid; the session stays usable after a refusal */
    assert_int_equal(cl_store_seal_open(s, "repository", "x", b, blen, &p, &pn, &err), 0);
    free(p);
    free(b);
    cl_store_p11_close(k);
    cl_store_seal_free(s);
}

struct refusal {
    const char *uri; /* NULL: built below */
    const char *tail;
    const char *want;
    int code;
};

static void test_refusals(void **state)
{
    (void)state;
    char wrong_pin[1024], no_pin[1024], bad_module[1024], unknown_q[1024];
    snprintf(wrong_pin, sizeof wrong_pin,
             "pkcs11:token=cloister;object=kek?module-path=%s&pin-source=file:%s", module, pin_bad);
    snprintf(no_pin, sizeof no_pin, "pkcs11:token=cloister;object=kek?module-path=%s", module);
    snprintf(bad_module, sizeof bad_module,
             "pkcs11:token=cloister;object=kek?module-path=/nonexistent/libp11.so&pin-value=1234");
    snprintf(unknown_q, sizeof unknown_q,
             "pkcs11:token=cloister;object=kek?module-path=%s&pin-value=1234&slot=3", module);
    const struct refusal t[] = {
        {wrong_pin, NULL, "C_Login: CKR_PIN_INCORRECT", CL_EDENIED},
        {no_pin, NULL, "needs a login", CL_EINVAL},
        {bad_module, NULL, "dlopen failed", CL_EIO},
        {unknown_q, NULL, "unknown query attribute 'slot'", CL_EPARSE},
        {NULL, "token=nothere;object=kek", "token 'nothere' not found", CL_ENOTFOUND},
        {NULL, "token=cloister;object=nokey", "object 'nokey' not found", CL_ENOTFOUND},
        {NULL, "token=cloister;object=kek;id=%02", "object 'kek' not found", CL_ENOTFOUND},
        {NULL, "token=cloister;object=kek16", "key is not AES-256", CL_EINVAL},
        {NULL, "token=cloister;object=kek;slot-id=1", "unknown attribute 'slot-id'", CL_EPARSE},
        {NULL, "token=cloister;object=kek;type=private", "secret-key", CL_EPARSE},
        {NULL, "token=cloister;token=x;object=kek", "'token' given twice", CL_EPARSE},
        {NULL, "object=kek", "'token' and 'object' are required", CL_EPARSE},
        {"pkcs11:token=cloister;object=kek", NULL, "'module-path' is required", CL_EPARSE},
        {"pkcs11:token=cloister;object=kek?module-path=/x.so&pin-value1234", NULL,
         "query attribute 2 is not name=value", CL_EPARSE},
        {"pkcs11:token=cloister;;object=kek", NULL, "path attribute 2 is not name=value",
         CL_EPARSE},
        {NULL, "token=cloister;object=k%00ek", "holds a NUL byte", CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(t); i++) {
        struct cl_err err = {0};
        const char *u = t[i].uri ? t[i].uri : uri_of(t[i].tail);
        struct cl_store *s = open_mem(u, NULL, 0, &err);
        if (s || err.code != t[i].code || !strstr(err.msg, t[i].want) ||
            !strstr(err.msg, "store encryption key"))
            fail_msg("case %zu: code %d, '%s' (want '%s')", i, err.code, err.msg, t[i].want);
        assert_null(strstr(err.msg, "1234")); /* the PIN is never in a message */
    }
}

static void test_rotation(void **state)
{
    (void)state;
    struct cl_err err = {0};
    char kf[256];
    snprintf(kf, sizeof kf, "%s/file.key", dir);
    write_file(kf, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    const char *tok = uri_of("token=cloister;object=kek");
    char base[256];
    snprintf(base, sizeof base, "%s/store", dir);
    struct cl_store_opts o = {.type = "LocalFs", .dir = base, .seal_ns = "repository"};
    /* file → token */
    o.seal_key_path = kf;
    struct cl_store *s = cl_store_open_opts(&o, &err);
    assert_non_null(s);
    assert_int_equal(cl_store_set(s, "repository", "r", "rotate me", 9, true, &err), 0);
    cl_store_close(s);
    const char *old_file[] = {kf};
    o.seal_key_path = tok;
    o.seal_old_paths = old_file;
    o.nseal_old = 1;
    s = cl_store_open_opts(&o, &err);
    if (!s)
        fail_msg("open: %s", err.msg);
    size_t re = 0, n = 0;
    assert_int_equal(cl_store_reseal(s, "repository", &re, &err), 0);
    assert_int_equal(re, 1);
    cl_store_close(s);
    o.seal_old_paths = NULL;
    o.nseal_old = 0;
    s = cl_store_open_opts(&o, &err); /* the token alone */
    cl_bytes *v = cl_store_get(s, "repository", "r", &n, &err);
    assert_non_null(v);
    assert_memory_equal(v, "rotate me", 9);
    free(v);
    cl_store_close(s);
    /* token → file */
    const char *old_tok[] = {tok};
    o.seal_key_path = kf;
    o.seal_old_paths = old_tok;
    o.nseal_old = 1;
    s = cl_store_open_opts(&o, &err);
    assert_non_null(s);
    assert_int_equal(cl_store_reseal(s, "repository", &re, &err), 0);
    assert_int_equal(re, 1);
    cl_store_close(s);
    o.seal_old_paths = NULL;
    o.nseal_old = 0;
    s = cl_store_open_opts(&o, &err); /* the file alone */
    v = cl_store_get(s, "repository", "r", &n, &err);
    assert_non_null(v);
    assert_memory_equal(v, "rotate me", 9);
    free(v);
    cl_store_close(s);
}

struct worker {
    struct cl_store *s;
    int id;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 50; i++) {
        struct cl_err err = {0};
        char key[32], val[32];
        snprintf(key, sizeof key, "t%d/k%d", w->id, i);
        snprintf(val, sizeof val, "value %d %d", w->id, i);
        size_t n = 0;
        if (cl_store_set(w->s, "repository", key, val, strlen(val), true, &err) < 0) {
            w->failures++;
            continue;
        }
        cl_bytes *v = cl_store_get(w->s, "repository", key, &n, &err);
        if (!v || n != strlen(val) || memcmp(v, val, n) != 0)
            w->failures++;
        free(v);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct cl_err err = {0};
    struct cl_store *s = open_mem(uri_of("token=cloister;object=kek"), NULL, 0, &err);
    assert_non_null(s);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.s = s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    cl_store_close(s);
}

int main(void)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(module_paths) && !module; i++)
        if (access(module_paths[i], R_OK) == 0)
            module = module_paths[i];
    if (!module || system("command -v softhsm2-util pkcs11-tool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: SoftHSM2 or pkcs11-tool (opensc) not installed\n");
        return 77;
    }
    if (make_token() < 0) {
        fprintf(stderr, "could not make the SoftHSM2 token in %s\n", dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_layout_and_tamper),
        cmocka_unit_test(test_refusals),   cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_threads),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
