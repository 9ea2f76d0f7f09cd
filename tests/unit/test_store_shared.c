/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What several replicas rely on: compare-and-set, expiring values and their purge, over
 * Memory, a real redis-server started here (when installed) and a real PostgreSQL when
 * CLOISTER_TEST_PG_URL names one (the integration tests start one). Then the refusals: LocalFs
 * has no compare-and-set, Redis URLs Cloister does not take, databases that do not answer
 * fail within the timeout instead of hanging.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "test_store_util.h"

static pid_t redis_pid = -1;
static char redis_url[64];

/* Starts redis-server on a free loopback port; false when it is not installed. */
static bool redis_start(void)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0)
        return false;
    unsigned port = free_port();
    char p[16];
    snprintf(p, sizeof p, "%u", port);
    redis_pid = fork();
    assert_true(redis_pid >= 0);
    if (redis_pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%u", port);
    struct cl_store_opts o = {.type = "Redis", .redis_url = redis_url, .timeout_ms = 500};
    for (int i = 0; i < 100; i++) {
        struct cl_store *s = cl_store_open_opts(&o, NULL);
        if (s) {
            cl_store_close(s);
            return true;
        }
        usleep(50000);
    }
    fail_msg("redis-server did not come up on %s", redis_url);
    return false;
}

static struct cl_store *open_backend(const char *type)
{
    struct cl_err err = {0};
    struct cl_store_opts o = {.type = type, .timeout_ms = 3000};
    if (strcmp(type, "Redis") == 0) {
        if (redis_pid < 0)
            return NULL;
        o.redis_url = redis_url;
    } else if (strcmp(type, "Postgres") == 0) {
        o.pg_url = getenv("CLOISTER_TEST_PG_URL");
        if (!o.pg_url || !*o.pg_url)
            return NULL;
    }
    struct cl_store *s = cl_store_open_opts(&o, &err);
    if (!s)
        fail_msg("open %s: %s", type, err.msg);
    return s;
}

static const char *const shared_types[] = {"Memory", "Redis", "Postgres"};

/* ---- compare-and-set ---- */

static void test_cas(void **state)
{
    (void)state;
    for (size_t t = 0; t < CL_ARRAY_LEN(shared_types); t++) {
        struct cl_store *s = open_backend(shared_types[t]);
        if (!s) {
            print_message("# %s: not available, skipped\n", shared_types[t]);
            continue;
        }
        struct cl_err err = {0};
        char key[64];
        snprintf(key, sizeof key, "cas/%d/%ld", (int)getpid(), (long)now_ms());
        assert_int_equal(cl_store_set(s, "t_cas", key, "v1", 2, true, &err), 0);
        /* swapped when the old value matches */
        assert_int_equal(cl_store_cas(s, "t_cas", key, "v1", 2, "v2\0x", 4, &err), 0);
        size_t n = 0;
        cl_bytes *v = cl_store_get(s, "t_cas", key, &n, &err);
        assert_non_null(v);
        assert_int_equal(n, 4);
        assert_memory_equal(v, "v2\0x", 4);
        free(v);
        /* tamper twins: a stale old value, a prefix of it, an absent key */
        assert_int_equal(cl_store_cas(s, "t_cas", key, "v1", 2, "v3", 2, &err), CL_EEXISTS);
        assert_int_equal(cl_store_cas(s, "t_cas", key, "v2", 2, "v3", 2, &err), CL_EEXISTS);
        assert_int_equal(cl_store_cas(s, "t_cas", "cas/absent", "v1", 2, "v3", 2, &err),
                         CL_ENOTFOUND);
        /* names are checked before any backend sees them */
        assert_int_equal(cl_store_cas(s, "t_cas", "../x", "a", 1, "b", 1, &err), CL_EINVAL);
        assert_int_equal(cl_store_delete(s, "t_cas", key, &err), 0);
        cl_store_close(s);
    }
}

/* ---- versions: the value travels only when it changed ---- */

static void test_version(void **state)
{
    (void)state;
    for (size_t t = 0; t < CL_ARRAY_LEN(shared_types); t++) {
        struct cl_store *s = open_backend(shared_types[t]);
        if (!s) {
            print_message("# %s: not available, skipped\n", shared_types[t]);
            continue;
        }
        struct cl_err err = {0};
        char key[64];
        snprintf(key, sizeof key, "ver/%d/%ld", (int)getpid(), (long)now_ms());
        struct cl_store_version v = {0};
        cl_bytes *val = NULL;
        size_t n = 0;
        /* absent: a change from "nothing known", then unchanged */
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 1);
        assert_null(val);
        assert_true(v.known && !v.present);
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 0);
        /* stored: changed, with the value */
        assert_int_equal(cl_store_set(s, "t_ver", key, "one\0x", 5, true, &err), 0);
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 1);
        assert_non_null(val);
        assert_int_equal(n, 5);
        assert_memory_equal(val, "one\0x", 5);
        free(val);
        struct cl_store_version v1 = v;
        /* the same bytes: unchanged, no value */
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 0);
        assert_null(val);
        assert_int_equal(cl_store_set(s, "t_ver", key, "one\0x", 5, true, &err), 0);
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 0);
        /* tamper twin: one byte differs, so does the version */
        assert_int_equal(cl_store_set(s, "t_ver", key, "one\0y", 5, true, &err), 0);
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 1);
        assert_non_null(val);
        assert_memory_equal(val, "one\0y", 5);
        free(val);
        assert_false(v.len == v1.len && memcmp(v.v, v1.v, v.len) == 0);
        /* deleted: a change to absent */
        assert_int_equal(cl_store_delete(s, "t_ver", key, &err), 0);
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", key, &v, &val, &n, &err), 1);
        assert_null(val);
        assert_false(v.present);
        /* names are checked before any backend sees them */
        assert_int_equal(cl_store_get_if_changed(s, "t_ver", "a/../b", &v, &val, &n, &err),
                         CL_EINVAL);
        cl_store_close(s);
    }
}

/* Eight threads race one compare-and-set from the same old value: exactly one wins. */
struct race {
    struct cl_store *s;
    const char *key;
    int id, rc;
};

static void *race_one(void *arg)
{
    struct race *r = arg;
    char nv[16];
    snprintf(nv, sizeof nv, "claimed-%d", r->id);
    r->rc = cl_store_cas(r->s, "t_cas", r->key, "fresh", 5, nv, strlen(nv), NULL);
    return NULL;
}

static void test_cas_race(void **state)
{
    (void)state;
    for (size_t t = 0; t < CL_ARRAY_LEN(shared_types); t++) {
        struct cl_store *s = open_backend(shared_types[t]);
        if (!s)
            continue;
        for (int round = 0; round < 5; round++) {
            char key[64];
            snprintf(key, sizeof key, "race/%d/%d", (int)getpid(), round);
            assert_int_equal(cl_store_set(s, "t_cas", key, "fresh", 5, true, NULL), 0);
            pthread_t th[8];
            struct race r[8];
            for (int i = 0; i < 8; i++) {
                r[i] = (struct race){.s = s, .key = key, .id = i};
                assert_int_equal(pthread_create(&th[i], NULL, race_one, &r[i]), 0);
            }
            int wins = 0;
            for (int i = 0; i < 8; i++) {
                pthread_join(th[i], NULL);
                if (r[i].rc == 0)
                    wins++;
                else
                    assert_int_equal(r[i].rc, CL_EEXISTS);
            }
            assert_int_equal(wins, 1);
            assert_int_equal(cl_store_delete(s, "t_cas", key, NULL), 0);
        }
        cl_store_close(s);
    }
}

/* ---- expiring values ---- */

static void test_expiring(void **state)
{
    (void)state;
    for (size_t t = 0; t < CL_ARRAY_LEN(shared_types); t++) {
        struct cl_store *s = open_backend(shared_types[t]);
        if (!s)
            continue;
        struct cl_err err = {0};
        int64_t now = (int64_t)time(NULL);
        char ns[64];
        snprintf(ns, sizeof ns, "t_exp_%d", (int)getpid());
        assert_int_equal(cl_store_set_expiring(s, ns, "live", "L", 1, false, now + 600, &err), 0);
        assert_int_equal(cl_store_set_expiring(s, ns, "live", "L", 1, false, now + 600, &err),
                         CL_EEXISTS);
        assert_int_equal(cl_store_set_expiring(s, ns, "dead", "D", 1, false, now + 2, &err), 0);
        /* a foreign value (not in the expiring format) is never purged */
        assert_int_equal(cl_store_set(s, ns, "foreign", "{\"x\":1}", 7, true, &err), 0);
        assert_int_equal(cl_store_set(s, ns, "short", "1", 1, true, &err), 0);
        size_t n = 0, off = 0;
        cl_bytes *v = cl_store_get(s, ns, "live", &n, &err);
        assert_non_null(v);
        int64_t exp = 0;
        assert_int_equal(cl_store_expiring_split(v, n, &exp, &off), 0);
        assert_int_equal(exp, now + 600);
        assert_int_equal(n - off, 1);
        assert_int_equal(v[off], 'L');
        free(v);
        /* purge as if 5 s later: "dead" goes (one DELETE on Postgres; Redis' own expiry) */
        size_t purged = 0;
        if (strcmp(shared_types[t], "Redis") == 0) {
            sleep(3);
        } else {
            assert_int_equal(cl_store_purge_expired(s, ns, now + 5, &purged, &err), 0);
            assert_int_equal(purged, 1);
        }
        assert_null(cl_store_get(s, ns, "dead", &n, &err));
        assert_int_equal(err.code, CL_ENOTFOUND);
        char **keys = NULL;
        size_t nk = 0;
        assert_int_equal(cl_store_list(s, ns, &keys, &nk, &err), 0);
        assert_int_equal(nk, 3);
        assert_string_equal(keys[0], "foreign");
        assert_string_equal(keys[1], "live");
        assert_string_equal(keys[2], "short");
        cl_store_list_free(keys, nk);
        assert_int_equal(cl_store_delete(s, ns, "live", &err), 0);
        assert_int_equal(cl_store_delete(s, ns, "foreign", &err), 0);
        assert_int_equal(cl_store_delete(s, ns, "short", &err), 0);
        /* refusals */
        assert_int_equal(cl_store_set_expiring(s, ns, "x", "a", 1, true, 0, &err), CL_EINVAL);
        cl_store_close(s);
    }
}

static void test_expiring_split(void **state)
{
    (void)state;
    int64_t e = 0;
    size_t off = 0;
    static const struct {
        const char *v;
        int rc;
    } cases[] = {
        {"00000000001700000000payload", 0},
        {"0000000000170000000", CL_EPARSE},  /* 19 digits */
        {"0000000000170000000x", CL_EPARSE}, /* a non-digit */
        {"{\"tee\":\"sample\"}xxxx", CL_EPARSE},
        {"99999999999999999999", CL_EPARSE}, /* beyond int64 */
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++)
        assert_int_equal(
            cl_store_expiring_split((const uint8_t *)cases[i].v, strlen(cases[i].v), &e, &off),
            cases[i].rc);
    assert_int_equal(
        cl_store_expiring_split((const uint8_t *)cases[0].v, strlen(cases[0].v), &e, &off), 0);
    assert_int_equal(e, 1700000000);
    assert_int_equal(off, CL_STORE_EXP_DIGITS);
}

/* ---- refusals ---- */

static void test_refusals(void **state)
{
    (void)state;
    struct cl_err err = {0};
    char d[] = "/tmp/cl-store-shared-XXXXXX";
    assert_non_null(mkdtemp(d));
    struct cl_store *fs = cl_store_open("LocalFs", d, &err);
    assert_non_null(fs);
    assert_false(cl_store_shared(fs));
    assert_int_equal(cl_store_set(fs, "n", "k", "a", 1, true, &err), 0);
    assert_int_equal(cl_store_cas(fs, "n", "k", "a", 1, "b", 1, &err), CL_EUNSUPPORTED);
    assert_int_equal(cl_store_delete(fs, "n", "k", &err), 0);
    cl_store_close(fs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    assert_int_equal(system(cmd), 0);

    static const struct {
        const char *url;
        int code;
        const char *says;
    } urls[] = {
        {"rediss://127.0.0.1:6379/#insecure", CL_EINVAL, "#insecure"},
        {"rediss://127.0.0.1:6379#insecure", CL_EINVAL, "#insecure"},
        {"rediss://u:p#w@127.0.0.1:6379/#insecure", CL_EINVAL, "#insecure"},
        {"rediss://127.0.0.1:6379/#verify", CL_EINVAL, "fragment \"#verify\""},
        {"http://127.0.0.1:6379", CL_EINVAL, "redis://"},
        {"redis://127.0.0.1:99999", CL_EINVAL, "port"},
        {"redis://127.0.0.1:6x", CL_EINVAL, "port"},
        {"redis://", CL_EINVAL, "host"},
        {"redis://127.0.0.1:6379/abc", CL_EINVAL, "database"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(urls); i++) {
        struct cl_store_opts o = {.type = "Redis", .redis_url = urls[i].url, .timeout_ms = 500};
        assert_null(cl_store_open_opts(&o, &err));
        assert_int_equal(err.code, urls[i].code);
        assert_non_null(strstr(err.msg, urls[i].says));
    }
    /* nobody listens: EIO, within the timeout, naming the backend */
    unsigned port = free_port();
    char u[64];
    snprintf(u, sizeof u, "redis://127.0.0.1:%u", port);
    struct cl_store_opts ro = {.type = "Redis", .redis_url = u, .timeout_ms = 500};
    uint64_t t0 = now_ms();
    assert_null(cl_store_open_opts(&ro, &err));
    assert_int_equal(err.code, CL_EIO);
    assert_non_null(strstr(err.msg, "Redis"));
    struct cl_store_opts po = {.type = "Postgres",
                               .pg_host = "127.0.0.1",
                               .pg_port = port,
                               .pg_user = "u",
                               .pg_password = "p",
                               .timeout_ms = 1000};
    assert_null(cl_store_open_opts(&po, &err));
    assert_int_equal(err.code, CL_EIO);
    assert_non_null(strstr(err.msg, "Postgres"));
    assert_true(now_ms() - t0 < 6000);
    /* type names */
    assert_string_equal(cl_store_type_canonical("postgres"), "Postgres");
    assert_string_equal(cl_store_type_canonical("REDIS"), "Redis");
    assert_null(cl_store_type_canonical("LocalJson"));
}

/* ---- encryption at rest ---- */

static void write_key(const char *path, const char *hex)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", hex);
    fclose(f);
}

static struct cl_store *open_sealed(const char *dir, const char *key, const char *const *old,
                                    size_t nold)
{
    struct cl_err err = {0};
    struct cl_store_opts o = {.type = "LocalFs",
                              .dir = dir,
                              .seal_key_path = key,
                              .seal_ns = "repository",
                              .seal_old_paths = old,
                              .nseal_old = nold};
    struct cl_store *s = cl_store_open_opts(&o, &err);
    if (!s)
        fail_msg("open sealed: %s", err.msg);
    return s;
}

static void test_seal(void **state)
{
    (void)state;
    struct cl_err err = {0};
    char d[] = "/tmp/cl-store-seal-XXXXXX";
    assert_non_null(mkdtemp(d));
    char k1[128], k2[128], base[128];
    snprintf(k1, sizeof k1, "%s/k1", d);
    snprintf(k2, sizeof k2, "%s/k2", d);
    snprintf(base, sizeof base, "%s/store", d);
    write_key(k1, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    write_key(k2, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    static const char secret[] = "the owner's secret";
    struct cl_store *s = open_sealed(base, k1, NULL, 0);
    assert_int_equal(cl_store_set(s, "repository", "a/b/c", secret, sizeof secret - 1, true, &err),
                     0);
    assert_int_equal(cl_store_set(s, "kbs", "p", "plain", 5, true, &err),
                     0); /* other namespaces as given */
    size_t n = 0;
    cl_bytes *v = cl_store_get(s, "repository", "a/b/c", &n, &err);
    assert_non_null(v);
    assert_int_equal(n, sizeof secret - 1);
    assert_memory_equal(v, secret, n);
    free(v);
    /* a version read opens the sealed value as a get does */
    struct cl_store_version ver = {0};
    assert_int_equal(cl_store_get_if_changed(s, "repository", "a/b/c", &ver, &v, &n, &err), 1);
    assert_non_null(v);
    assert_int_equal(n, sizeof secret - 1);
    assert_memory_equal(v, secret, n);
    free(v);
    /* what the database holds: sealed, no plaintext */
    struct cl_store *raw = cl_store_open("LocalFs", base, &err);
    assert_non_null(raw);
    cl_bytes *r = cl_store_get(raw, "repository", "a/b/c", &n, &err);
    assert_non_null(r);
    assert_memory_equal(r, "clseal1:", 8);
    assert_null(memmem(r, n, "owner", 5));
    v = cl_store_get(raw, "kbs", "p", &n, &err);
    assert_memory_equal(v, "plain", 5);
    free(v);
    /* tamper twins: a flipped byte, the value moved to another key, a plaintext value */
    size_t rn = 0;
    free(r);
    r = cl_store_get(raw, "repository", "a/b/c", &rn, &err);
    r[rn - 1] ^= 1;
    assert_int_equal(cl_store_set(raw, "repository", "a/b/flipped", r, rn, true, &err), 0);
    r[rn - 1] ^= 1;
    assert_int_equal(cl_store_set(raw, "repository", "a/b/moved", r, rn, true, &err), 0);
    assert_int_equal(cl_store_set(raw, "repository", "a/b/plain", "x", 1, true, &err), 0);
    static const char *const bad[] = {"a/b/flipped", "a/b/moved", "a/b/plain"};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        assert_null(cl_store_get(s, "repository", bad[i], &n, &err));
        assert_int_equal(err.code, CL_EVERIFY);
    }
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++)
        assert_int_equal(cl_store_delete(raw, "repository", bad[i], &err), 0);
    cl_store_close(s);
    /* rotation: k2 current, k1 old → still opens; reseal re-wraps; then k1 alone no longer opens */
    const char *old[] = {k1};
    s = open_sealed(base, k2, old, 1);
    v = cl_store_get(s, "repository", "a/b/c", &n, &err);
    assert_non_null(v);
    free(v);
    size_t re = 0;
    assert_int_equal(cl_store_reseal(s, "repository", &re, &err), 0);
    assert_int_equal(re, 1);
    assert_int_equal(cl_store_reseal(s, "repository", &re, &err), 0);
    assert_int_equal(re, 0);
    cl_store_close(s);
    s = open_sealed(base, k2, NULL, 0);
    v = cl_store_get(s, "repository", "a/b/c", &n, &err);
    assert_non_null(v);
    assert_memory_equal(v, secret, n);
    free(v);
    cl_store_close(s);
    s = open_sealed(base, k1, NULL, 0);
    assert_null(cl_store_get(s, "repository", "a/b/c", &n, &err));
    assert_int_equal(err.code, CL_EVERIFY);
    assert_non_null(strstr(err.msg, "not configured"));
    cl_store_close(s);
    free(r);
    cl_store_close(raw);
    /* a key file of the wrong size is refused by name */
    write_key(k1, "0011");
    struct cl_store_opts o = {.type = "Memory", .seal_key_path = k1, .seal_ns = "repository"};
    assert_null(cl_store_open_opts(&o, &err));
    assert_int_equal(err.code, CL_EPARSE);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    bool have_redis = redis_start();
    if (!have_redis)
        print_message("# redis-server not installed: Redis cases skipped\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cas),      cmocka_unit_test(test_cas_race),
        cmocka_unit_test(test_expiring), cmocka_unit_test(test_expiring_split),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_seal),
        cmocka_unit_test(test_version),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
    }
    return rc;
}
