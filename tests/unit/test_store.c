/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store tests: the same table of cases runs against every backend (Memory and LocalFs), then
 * LocalFs alone for what only a filesystem has (on-disk names and modes, strangers in the
 * folder, stale temporaries, crash safety under SIGKILL).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_backend.h"

/* ---- helpers ---- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static char *make_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    char *d = cl_strdupf("%s/cl-store-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_tree(const char *d)
{
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct fixture {
    const char *type;
    char *dir; /* LocalFs base, NULL for Memory */
    struct cl_store *s;
};

static int setup_mem(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->type = "Memory";
    struct cl_err err = {0};
    f->s = cl_store_open("Memory", NULL, &err);
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int setup_fs(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->type = "LocalFs";
    f->dir = make_tmpdir();
    /* a base folder that does not exist yet: open creates it */
    char *base = cl_strdupf("%s/base/deeper", f->dir);
    struct cl_err err = {0};
    f->s = cl_store_open("LocalFs", base, &err);
    free(base);
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cl_store_close(f->s);
    if (f->dir) {
        rm_tree(f->dir);
        free(f->dir);
    }
    free(f);
    return 0;
}

static void expect_val(struct cl_store *s, const char *ns, const char *key, const void *want,
                       size_t wlen)
{
    struct cl_err err = {0};
    size_t len = 12345;
    cl_bytes *v = cl_store_get(s, ns, key, &len, &err);
    if (!v)
        fail_msg("get %s/%s: %s", ns, key, err.msg);
    assert_int_equal(len, wlen);
    assert_memory_equal(v, want, wlen);
    assert_int_equal(v[wlen], 0);
    free(v);
}

static void expect_absent(struct cl_store *s, const char *ns, const char *key)
{
    struct cl_err err = {0};
    size_t len = 777;
    cl_bytes *v = cl_store_get(s, ns, key, &len, &err);
    assert_null(v);
    assert_int_equal(err.code, CL_ENOTFOUND);
    assert_int_equal(len, 777);
}

/* ---- name validation (no store needed) ---- */

static const char *const bad_names[] = {
    "",            /* empty */
    "..",          /* parent segment */
    ".",           /* current segment */
    "a/../b",      /* parent segment inside */
    "a/./b",       /* current segment inside */
    "a/..",        /* parent segment at the end */
    "../a",        /* parent segment at the start */
    "/x",          /* absolute */
    "a\\b",        /* backslash (the LocalFs escape character) */
    "a\\x2Fb",     /* an encoded slash smuggled in */
    "a//b",        /* empty segment */
    "a/",          /* empty trailing segment */
    "a b",         /* space */
    "a\nb",        /* newline */
    "a:b",         /* colon */
    "#tmp.x",      /* LocalFs temporary prefix */
    "caf\xc3\xa9", /* non-ASCII */
    "\xff",        /* not UTF-8 at all */
    "a*",          /* glob */
    "~root",       /* tilde */
};

static char *long_name(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'k', n);
    s[n] = 0;
    return s;
}

static void test_names_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < CL_ARRAY_LEN(bad_names); i++) {
        if (cl_store_key_valid(bad_names[i]) || cl_store_ns_valid(bad_names[i]))
            fail_msg("accepted bad name #%zu \"%s\"", i, bad_names[i]);
    }
    assert_false(cl_store_key_valid(NULL));
    assert_false(cl_store_ns_valid(NULL));
    char *tl = long_name(CL_STORE_MAX_KEY + 1);
    assert_false(cl_store_key_valid(tl));
    assert_false(cl_store_ns_valid(tl));
    free(tl);
}

static const char *const good_names[] = {
    "a",           "default/key/1",           ".a", "a.", "a..b", "...", "a.tmp.b", "x/.hidden",
    "A-Z_a-z.0-9", "repo/type/tag.with.dots", "-",  "_",
};

static void test_names_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < CL_ARRAY_LEN(good_names); i++) {
        if (!cl_store_key_valid(good_names[i]) || !cl_store_ns_valid(good_names[i]))
            fail_msg("refused good name \"%s\"", good_names[i]);
    }
    char *ml = long_name(CL_STORE_MAX_KEY);
    assert_true(cl_store_key_valid(ml));
    free(ml);
}

/* The LocalFs codec: round trip, and names that are not encodings are refused. */
static void test_fs_codec(void **state)
{
    (void)state;
    char out[CL_STORE_FS_MAX_NAME + 1];
    assert_int_equal(cl_store_fs_name_encode("a/b/c", out, sizeof out), 11);
    assert_string_equal(out, "a\\x2Fb\\x2Fc");
    char *d = cl_store_fs_name_decode(out);
    assert_non_null(d);
    assert_string_equal(d, "a/b/c");
    free(d);
    static const char *const not_keys[] = {
        "#tmp.0011", "a\\x2fb",        "a\\x2",  "a\\", "a\\x2F\\x2Fb", "\\x2Fa", "a\\x2F", ".",
        "..",        "a\\x2F..\\x2Fb", "a.tmp.", "",    "x y",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(not_keys); i++) {
        char *k = cl_store_fs_name_decode(not_keys[i]);
        if (k && strcmp(not_keys[i], "a.tmp.") != 0)
            fail_msg("decoded \"%s\" to \"%s\"", not_keys[i], k);
        free(k);
    }
    /* 64 slashes' worth of encoding does not fit in 255 bytes */
    char big[200];
    for (size_t i = 0; i < 99; i++) {
        big[2 * i] = 'a';
        big[2 * i + 1] = '/';
    }
    big[198] = 'a';
    big[199] = 0;
    assert_int_equal(cl_store_fs_name_encode(big, out, sizeof out), CL_ELIMIT);
}

/* ---- both backends ---- */

static void test_reject_before_backend(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad_names); i++) {
        const char *b = bad_names[i];
        cl_err_clear(&err);
        assert_int_equal(cl_store_set(f->s, "ns", b, "v", 1, true, &err), CL_EINVAL);
        assert_non_null(strstr(err.msg, "store key"));
        assert_int_equal(cl_store_set(f->s, b, "k", "v", 1, true, &err), CL_EINVAL);
        assert_non_null(strstr(err.msg, "store namespace"));
        size_t len;
        assert_null(cl_store_get(f->s, "ns", b, &len, &err));
        assert_int_equal(err.code, CL_EINVAL);
        assert_null(cl_store_get(f->s, b, "k", &len, &err));
        assert_int_equal(err.code, CL_EINVAL);
        assert_int_equal(cl_store_delete(f->s, "ns", b, &err), CL_EINVAL);
        assert_int_equal(cl_store_delete(f->s, b, "k", &err), CL_EINVAL);
        char **keys = NULL;
        size_t n = 0;
        assert_int_equal(cl_store_list(f->s, b, &keys, &n, &err), CL_EINVAL);
    }
    assert_int_equal(cl_store_set(f->s, "ns", NULL, "v", 1, true, &err), CL_EINVAL);
    assert_int_equal(cl_store_set(NULL, "ns", "k", "v", 1, true, &err), CL_EINVAL);
    /* the message names the rule and quotes the value */
    assert_int_equal(cl_store_set(f->s, "ns", "a/../b", "v", 1, true, &err), CL_EINVAL);
    assert_non_null(strstr(err.msg, "\"a/../b\""));
    assert_non_null(strstr(err.msg, "\"..\""));
    if (f->dir) {
        /* nothing reached the filesystem: the base folder is still empty */
        char *base = cl_strdupf("%s/base/deeper", f->dir);
        int fd = open(base, O_RDONLY | O_DIRECTORY);
        free(base);
        assert_true(fd >= 0);
        DIR *d = fdopendir(fd);
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d)))
            n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
        closedir(d);
        assert_int_equal(n, 0);
    }
}

static void test_crud(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    expect_absent(f->s, "repository", "default/key/1");
    assert_int_equal(cl_store_set(f->s, "repository", "default/key/1", "one", 3, false, &err), 0);
    expect_val(f->s, "repository", "default/key/1", "one", 3);
    /* overwrite=false on an existing key */
    assert_int_equal(cl_store_set(f->s, "repository", "default/key/1", "two", 3, false, &err),
                     CL_EEXISTS);
    assert_non_null(strstr(err.msg, "already exists"));
    expect_val(f->s, "repository", "default/key/1", "one", 3);
    /* overwrite=true */
    assert_int_equal(cl_store_set(f->s, "repository", "default/key/1", "three", 5, true, &err), 0);
    expect_val(f->s, "repository", "default/key/1", "three", 5);
    /* binary with NULs, and the empty value */
    const uint8_t bin[] = {0, 1, 2, 0, 0xff, '\n', 0};
    assert_int_equal(cl_store_set(f->s, "repository", "bin", bin, sizeof bin, true, &err), 0);
    expect_val(f->s, "repository", "bin", bin, sizeof bin);
    assert_int_equal(cl_store_set(f->s, "repository", "empty", NULL, 0, true, &err), 0);
    expect_val(f->s, "repository", "empty", "", 0);
    /* NULL data with a length */
    assert_int_equal(cl_store_set(f->s, "repository", "x", NULL, 3, true, &err), CL_EINVAL);
    /* namespaces are separate */
    expect_absent(f->s, "kbs", "default/key/1");
    /* delete */
    assert_int_equal(cl_store_delete(f->s, "repository", "default/key/1", &err), 0);
    expect_absent(f->s, "repository", "default/key/1");
    assert_int_equal(cl_store_delete(f->s, "repository", "default/key/1", &err), CL_ENOTFOUND);
    assert_int_equal(cl_store_delete(f->s, "nosuchns", "k", &err), CL_ENOTFOUND);
    /* after delete, overwrite=false works again */
    assert_int_equal(cl_store_set(f->s, "repository", "default/key/1", "four", 4, false, &err), 0);
    expect_val(f->s, "repository", "default/key/1", "four", 4);
    /* get without a length pointer */
    cl_bytes *v = cl_store_get(f->s, "repository", "default/key/1", NULL, &err);
    assert_non_null(v);
    assert_string_equal((char *)v, "four");
    free(v);
}

static void test_value_cap(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    static const char small[8] = "x";
    /* refused on the length alone, before any byte is read */
    assert_int_equal(
        cl_store_set(f->s, "ns", "big", small, (size_t)CL_STORE_MAX_VALUE + 1, true, &err),
        CL_ELIMIT);
    expect_absent(f->s, "ns", "big");
}

static void test_list_sorted(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    static const char *const keys[] = {"zeta", "alpha",   "m/b",  "m/a",
                                       "Beta", "a.tmp.b", ".dot", "1"};
    static const char *const sorted[] = {".dot",  "1",   "Beta", "a.tmp.b",
                                         "alpha", "m/a", "m/b",  "zeta"};
    char **out = (char **)1;
    size_t n = 99;
    assert_int_equal(cl_store_list(f->s, "empty-ns", &out, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(out);
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
        assert_int_equal(cl_store_set(f->s, "lst", keys[i], keys[i], strlen(keys[i]), false, &err),
                         0);
    assert_int_equal(cl_store_set(f->s, "other", "zz", "x", 1, false, &err), 0);
    assert_int_equal(cl_store_set(f->s, "lss", "aa", "x", 1, false, &err), 0);
    assert_int_equal(cl_store_set(f->s, "lstt", "aa", "x", 1, false, &err), 0);
    assert_int_equal(cl_store_list(f->s, "lst", &out, &n, &err), 0);
    assert_int_equal(n, CL_ARRAY_LEN(sorted));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out[i], sorted[i]);
    cl_store_list_free(out, n);
    assert_int_equal(cl_store_list(f->s, "lst", NULL, &n, &err), CL_EINVAL);
    assert_int_equal(cl_store_delete(f->s, "lst", "m/a", &err), 0);
    assert_int_equal(cl_store_list(f->s, "lst", &out, &n, &err), 0);
    assert_int_equal(n, CL_ARRAY_LEN(sorted) - 1);
    assert_string_equal(out[5], "m/b");
    cl_store_list_free(out, n);
}

/* Threads hammer their own keys and one shared key; the shared key always holds one of the
 * values some thread wrote, and each thread reads its own writes back. */
#define NTHREADS 4
#define NITER 200

struct worker {
    struct cl_store *s;
    int id;
    int failures;
};

static void *worker_fn(void *arg)
{
    struct worker *w = arg;
    struct cl_err err = {0};
    for (int i = 0; i < NITER; i++) {
        char key[64], val[64];
        snprintf(key, sizeof key, "t%d/k%d", w->id, i % 10);
        int vl = snprintf(val, sizeof val, "v-%d-%d", w->id, i);
        if (cl_store_set(w->s, "conc", key, val, (size_t)vl, true, &err) < 0)
            w->failures++;
        size_t len = 0;
        cl_bytes *v = cl_store_get(w->s, "conc", key, &len, &err);
        if (!v || len != (size_t)vl || memcmp(v, val, len) != 0)
            w->failures++;
        free(v);
        if (cl_store_set(w->s, "conc", "shared", val, (size_t)vl, true, &err) < 0)
            w->failures++;
        v = cl_store_get(w->s, "conc", "shared", &len, &err);
        if (!v || len < 5 || memcmp(v, "v-", 2) != 0)
            w->failures++;
        free(v);
        if (i % 10 == 9) {
            char **keys = NULL;
            size_t n = 0;
            if (cl_store_list(w->s, "conc", &keys, &n, &err) < 0 || n < 1)
                w->failures++;
            cl_store_list_free(keys, n);
        }
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct fixture *f = *state;
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){f->s, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_fn, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    char **keys = NULL;
    size_t n = 0;
    struct cl_err err = {0};
    assert_int_equal(cl_store_list(f->s, "conc", &keys, &n, &err), 0);
    assert_int_equal(n, NTHREADS * 10 + 1);
    cl_store_list_free(keys, n);
}

/* overwrite=false is decided once: of several threads racing on one key, exactly one wins. */
struct racer {
    struct cl_store *s;
    pthread_barrier_t *bar;
    int id, rc;
};

static void *racer_fn(void *arg)
{
    struct racer *r = arg;
    char val[16];
    int vl = snprintf(val, sizeof val, "r%d", r->id);
    pthread_barrier_wait(r->bar);
    r->rc = cl_store_set(r->s, "race", "once", val, (size_t)vl, false, NULL);
    return NULL;
}

static void test_exclusive_create(void **state)
{
    struct fixture *f = *state;
    for (int round = 0; round < 10; round++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, NTHREADS);
        pthread_t th[NTHREADS];
        struct racer r[NTHREADS];
        for (int i = 0; i < NTHREADS; i++) {
            r[i] = (struct racer){f->s, &bar, i, 1};
            assert_int_equal(pthread_create(&th[i], NULL, racer_fn, &r[i]), 0);
        }
        int wins = 0, exists = 0;
        for (int i = 0; i < NTHREADS; i++) {
            pthread_join(th[i], NULL);
            wins += r[i].rc == 0;
            exists += r[i].rc == CL_EEXISTS;
        }
        pthread_barrier_destroy(&bar);
        assert_int_equal(wins, 1);
        assert_int_equal(exists, NTHREADS - 1);
        assert_int_equal(cl_store_delete(f->s, "race", "once", NULL), 0);
    }
}

static void test_long_key(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    char *k = long_name(CL_STORE_MAX_KEY);
    int rc = cl_store_set(f->s, "ns", k, "v", 1, true, &err);
    if (f->dir) {
        /* 512 characters do not fit a 255-byte file name */
        assert_int_equal(rc, CL_ELIMIT);
        assert_non_null(strstr(err.msg, "255"));
        k[CL_STORE_FS_MAX_NAME] = 0;
        assert_int_equal(cl_store_set(f->s, "ns", k, "v", 1, true, &err), 0);
        expect_val(f->s, "ns", k, "v", 1);
    } else {
        assert_int_equal(rc, 0);
        expect_val(f->s, "ns", k, "v", 1);
    }
    free(k);
}

/* ---- opening ---- */

static void test_open(void **state)
{
    (void)state;
    struct cl_err err = {0};
    static const char *const mem_names[] = {"Memory", "memory", "MEMORY"};
    for (size_t i = 0; i < CL_ARRAY_LEN(mem_names); i++) {
        struct cl_store *s = cl_store_open(mem_names[i], NULL, &err);
        assert_non_null(s);
        cl_store_close(s);
    }
    char *d = make_tmpdir();
    static const char *const fs_names[] = {"LocalFs", "localfs", "local_fs", "LOCAL_FS"};
    for (size_t i = 0; i < CL_ARRAY_LEN(fs_names); i++) {
        struct cl_store *s = cl_store_open(fs_names[i], d, &err);
        assert_non_null(s);
        cl_store_close(s);
    }
    static const char *const unknown[] = {"", "Redisx", "local-fs", "Memory ", "LocalJson"};
    for (size_t i = 0; i < CL_ARRAY_LEN(unknown); i++) {
        assert_null(cl_store_open(unknown[i], d, &err));
        assert_int_equal(err.code, CL_EINVAL);
        assert_non_null(strstr(err.msg, "unknown"));
    }
    assert_null(cl_store_open(NULL, d, &err));
    assert_int_equal(err.code, CL_EINVAL);
    assert_null(cl_store_open("LocalFs", NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);
    assert_null(cl_store_open("LocalFs", "", &err));
    assert_int_equal(err.code, CL_EINVAL);
    /* a base that is a file */
    char *file = cl_strdupf("%s/afile", d);
    int fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_null(cl_store_open("LocalFs", file, &err));
    assert_int_equal(err.code, CL_EIO);
    free(file);
    cl_store_close(NULL);
    rm_tree(d);
    free(d);
}

/* ---- LocalFs only ---- */

static void test_fs_layout(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    assert_int_equal(cl_store_set(f->s, "repository", "default/key/1", "v", 1, true, &err), 0);
    char *nsdir = cl_strdupf("%s/base/deeper/repository", f->dir);
    char *file = cl_strdupf("%s/default\\x2Fkey\\x2F1", nsdir);
    struct stat st;
    assert_int_equal(stat(nsdir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 1);

    /* strangers in the folder: temporaries, undecodable names, a folder, a symlink */
    static const char *const strangers[] = {"#tmp.deadbeef", "bad\\x2fname", "a b",
                                            "x\\x2F..\\x2Fy"};
    for (size_t i = 0; i < CL_ARRAY_LEN(strangers); i++) {
        char *p = cl_strdupf("%s/%s", nsdir, strangers[i]);
        int fd = open(p, O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        close(fd);
        free(p);
    }
    char *sub = cl_strdupf("%s/subdir", nsdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char *lnk = cl_strdupf("%s/link", nsdir);
    assert_int_equal(symlink(file, lnk), 0);
    char **keys = NULL;
    size_t n = 0;
    assert_int_equal(cl_store_list(f->s, "repository", &keys, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], "default/key/1");
    cl_store_list_free(keys, n);

    /* a file written by trustee's LocalFs (same layout) is read back */
    char *foreign = cl_strdupf("%s/other\\x2Frepo\\x2Ftag", nsdir);
    int fd = open(foreign, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    expect_val(f->s, "repository", "other/repo/tag", "hello", 5);

    /* a key that names a folder is an I/O error, not a crash */
    assert_null(cl_store_get(f->s, "repository", "subdir", &n, &err));
    assert_int_equal(err.code, CL_EIO);

    free(foreign);
    free(lnk);
    free(sub);
    free(file);
    free(nsdir);
}

/* Temporary files left by an interrupted write go when the store is next opened, whatever
 * their age (a fresh one is the usual case right after a crash); one that a writer holds (its
 * shared lock) stays, and keys stay. */
static void test_fs_stale_tmp(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    assert_int_equal(cl_store_set(f->s, "sessions", "k", "v", 1, true, &err), 0);
    char *base = cl_strdupf("%s/base/deeper", f->dir);
    char *old = cl_strdupf("%s/sessions/#tmp.0000old", base);
    char *fresh = cl_strdupf("%s/sessions/#tmp.0000fresh", base);
    char *held = cl_strdupf("%s/sessions/#tmp.0000held", base);
    char *oldkey = cl_strdupf("%s/sessions/oldkey", base);
    const char *const paths[] = {old, fresh, held, oldkey};
    int held_fd = -1;
    for (size_t i = 0; i < 4; i++) {
        int fd = open(paths[i], O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        if (paths[i] == held) {
            assert_int_equal(flock(fd, LOCK_SH), 0); /* a writer at work */
            held_fd = fd;
        } else {
            close(fd);
        }
    }
    struct timespec ts[2] = {{.tv_sec = time(NULL) - 3600}, {0}};
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
    assert_int_equal(utimensat(AT_FDCWD, oldkey, ts, 0), 0);
    struct cl_store *s2 = cl_store_open("LocalFs", base, &err);
    assert_non_null(s2);
    struct stat st;
    assert_int_equal(stat(old, &st), -1);   /* left by a crash long ago */
    assert_int_equal(stat(fresh, &st), -1); /* left by a crash just now */
    assert_int_equal(stat(held, &st), 0);   /* a writer owns it */
    assert_int_equal(stat(oldkey, &st), 0); /* old keys are data */
    expect_val(s2, "sessions", "k", "v", 1);
    /* writes still work next to a held temporary, and leave no temporary behind */
    assert_int_equal(cl_store_set(s2, "sessions", "k2", "w", 1, false, &err), 0);
    expect_val(s2, "sessions", "k2", "w", 1);
    cl_store_close(s2);
    close(held_fd);
    unlink(held);
    free(old);
    free(fresh);
    free(held);
    free(oldkey);
    free(base);
}

/* A child rewrites a 1 MiB value in a loop, alternating two contents; it is killed with
 * SIGKILL at random moments. The value must always be exactly one of the two. */
#define BIG (1024 * 1024)

static void test_fs_crash_safety(void **state)
{
    struct fixture *f = *state;
    struct cl_err err = {0};
    uint8_t *a = malloc(BIG), *b = malloc(BIG);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 'A', BIG);
    memset(b, 'B', BIG);
    assert_int_equal(cl_store_set(f->s, "crash", "v", a, BIG, true, &err), 0);
    char *base = cl_strdupf("%s/base/deeper", f->dir);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int saw_a = 0, saw_b = 0;
    for (int round = 0; round < 8; round++) {
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pipefd[0]);
            struct cl_store *cs = cl_store_open("LocalFs", base, NULL);
            if (!cs)
                _exit(2);
            /* tell the parent the loop has started */
            if (write(pipefd[1], "x", 1) != 1)
                _exit(3);
            for (unsigned i = 0;; i++) {
                if (cl_store_set(cs, "crash", "v", (i & 1) ? a : b, BIG, true, NULL) < 0)
                    _exit(4);
            }
        }
        close(pipefd[1]);
        char c;
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        close(pipefd[0]);
        struct timespec d = {0, (long)(rand_r(&seed) % 40 + 1) * 1000000L};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));

        size_t len = 0;
        cl_bytes *v = cl_store_get(f->s, "crash", "v", &len, &err);
        assert_non_null(v);
        assert_int_equal(len, BIG);
        bool is_a = memcmp(v, a, BIG) == 0, is_b = memcmp(v, b, BIG) == 0;
        free(v);
        assert_true(is_a || is_b);
        saw_a += is_a;
        saw_b += is_b;

        char **keys = NULL;
        size_t n = 0;
        assert_int_equal(cl_store_list(f->s, "crash", &keys, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(keys[0], "v");
        cl_store_list_free(keys, n);
    }
    /* temporaries left by kills that landed mid-write: list() ignored them above */
    char *nsdir = cl_strdupf("%s/crash", base);
    DIR *dir = opendir(nsdir);
    assert_non_null(dir);
    int tmps = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        tmps += strncmp(e->d_name, "#tmp.", 5) == 0;
    closedir(dir);
    free(nsdir);
    print_message("crash rounds: %d times A, %d times B, %d temporaries left behind\n", saw_a,
                  saw_b, tmps);
    free(base);
    free(a);
    free(b);
}

#define BOTH(fn)                                                                                   \
    cmocka_unit_test_setup_teardown(fn, setup_mem, teardown),                                      \
        cmocka_unit_test_setup_teardown(fn, setup_fs, teardown)

int main(void)
{
    cl_log_set_level(CL_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_invalid),
        cmocka_unit_test(test_names_valid),
        cmocka_unit_test(test_fs_codec),
        cmocka_unit_test(test_open),
        BOTH(test_reject_before_backend),
        BOTH(test_crud),
        BOTH(test_value_cap),
        BOTH(test_list_sorted),
        BOTH(test_concurrent),
        BOTH(test_exclusive_create),
        BOTH(test_long_key),
        cmocka_unit_test_setup_teardown(test_fs_layout, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_stale_tmp, setup_fs, teardown),
        cmocka_unit_test_setup_teardown(test_fs_crash_safety, setup_fs, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
