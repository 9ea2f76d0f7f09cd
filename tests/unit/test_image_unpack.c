/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tar reader and confined unpack: a well-formed layer with every entry type, OCI whiteouts in
 * both modes, and a table of hostile archives (one case per refusal) unpacked into a root
 * that sits next to an "outside" folder whose sentinel must never change.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cmocka.h>

#include "test_image_util.h"

/* ---- fixture: <tmp>/root and <tmp>/outside/sentinel ---- */

struct fx {
    char *base;
    char root[512], outside[512];
    int rootfd;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->base = tu_tmpdir("unpack");
    snprintf(f->root, sizeof f->root, "%s/root", f->base);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->base);
    assert_int_equal(mkdir(f->root, 0755), 0);
    assert_int_equal(mkdir(f->outside, 0755), 0);
    char *s = cl_strdupf("%s/sentinel", f->outside);
    assert_int_equal(cl_file_write_atomic(s, "keep", 4, 0644, NULL), 0);
    free(s);
    f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY);
    assert_true(f->rootfd >= 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    close(f->rootfd);
    tu_rmdir(f->base);
    free(f);
    return 0;
}

/* The outside folder holds exactly its untouched sentinel. */
static void assert_outside_intact(const struct fx *f)
{
    size_t len = 0;
    cl_bytes *b = tu_read(f->outside, "sentinel", &len);
    assert_non_null(b);
    assert_int_equal(len, 4);
    assert_memory_equal(b, "keep", 4);
    free(b);
    struct stat st = tu_lstat(f->outside, "sentinel");
    assert_int_equal(st.st_nlink, 1);
    DIR *d = opendir(f->outside);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 1);
    /* nothing next to root and outside either */
    d = opendir(f->base);
    n = 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 2);
}

static int unpack_buf(int rootfd, const struct tarb *t, const struct cl_image_unpack_opts *o,
                      struct cl_image_unpack_stats *st, struct cl_err *err)
{
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, t->buf, t->len);
    int rc = cl_image_unpack(rootfd, &m.src, o, st, err);
    if (rc < 0 && getenv("TEST_VERBOSE"))
        print_message("unpack: %s\n", err->msg);
    return rc;
}

/* ---- a well-formed layer ---- */

static void test_all_types(void **state)
{
    struct fx *f = *state;
    struct tarb t = {0};
    tb_dir(&t, "./");
    tb_dir(&t, "etc/");
    tb_file(&t, "etc/hello", "hello\n");
    tb_entry(&t, "bin/tool", '0', 04755, "#!x", 3, NULL); /* parent made implicitly */
    tb_entry(&t, "bin/sh", '2', 0777, NULL, 0, "tool");
    tb_entry(&t, "bin/abs", '2', 0777, NULL, 0, "/etc/hello");
    tb_entry(&t, "bin/hard", '1', 0755, NULL, 0, "bin/tool");
    tb_entry(&t, "/abs/file", '0', 0600, "a", 1, NULL);
    tb_entry(&t, "./dot/./file", '0', 0640, "b", 1, NULL);
    tb_entry(&t, "fifo", '6', 0600, NULL, 0, NULL);
    const char *px[] = {"SCHILY.xattr.user.k=v1", "SCHILY.xattr.trusted.overlay.opaque=y",
                        "mtime=1700000001.5"};
    tb_pax(&t, px, 3);
    tb_file(&t, "xf", "x");
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "long/", 5);
    longname[200] = '/';
    longname[299] = 0;
    const char *pp[1];
    char *rec = cl_strdupf("path=%s", longname);
    pp[0] = rec;
    tb_pax(&t, pp, 1);
    tb_file(&t, "ignored-name", "pax long");
    char gnuname[200];
    memset(gnuname, 'g', sizeof gnuname);
    memcpy(gnuname, "gnu/", 4);
    gnuname[199] = 0;
    tb_gnu_long(&t, 'L', gnuname);
    tb_file(&t, "ignored-too", "gnu long");
    tb_gnu_long(&t, 'K', "etc/hello");
    tb_entry(&t, "klink", '2', 0777, NULL, 0, "ignored");
    tb_file(&t, "etc/hello", "replaced\n"); /* a later entry wins */
    tb_end(&t);
    struct cl_image_unpack_stats st = {0};
    struct cl_err e = {0};
    assert_int_equal(unpack_buf(f->rootfd, &t, NULL, &st, &e), 0);
    size_t len = 0;
    cl_bytes *b = tu_read(f->root, "etc/hello", &len);
    assert_string_equal((char *)b, "replaced\n");
    free(b);
    struct stat s = tu_lstat(f->root, "bin/tool");
    assert_int_equal(s.st_mode & 07777, 04755);
    assert_int_equal(s.st_nlink, 2);
    assert_int_equal(s.st_mtime, 1700000000);
    s = tu_lstat(f->root, "bin/sh");
    assert_true(S_ISLNK(s.st_mode));
    char lt[64] = "";
    char *p = cl_strdupf("%s/bin/abs", f->root);
    assert_int_equal(readlink(p, lt, sizeof lt), 10);
    free(p);
    assert_memory_equal(lt, "/etc/hello", 10);
    assert_true(tu_exists(f->root, "abs/file"));
    assert_int_equal(tu_lstat(f->root, "dot/file").st_mode & 0777, 0640);
    assert_true(S_ISFIFO(tu_lstat(f->root, "fifo").st_mode));
    p = cl_strdupf("%s/xf", f->root);
    char xv[16] = "";
    assert_int_equal(getxattr(p, "user.k", xv, sizeof xv), 2);
    assert_memory_equal(xv, "v1", 2);
    assert_true(getxattr(p, "trusted.overlay.opaque", xv, sizeof xv) < 0); /* dropped */
    struct stat xs;
    assert_int_equal(stat(p, &xs), 0);
    assert_int_equal(xs.st_mtim.tv_sec, 1700000001);
    assert_int_equal(xs.st_mtim.tv_nsec, 500000000);
    free(p);
    assert_true(tu_exists(f->root, longname));
    assert_true(tu_exists(f->root, gnuname));
    p = cl_strdupf("%s/klink", f->root);
    assert_int_equal(readlink(p, lt, sizeof lt), 9);
    free(p);
    assert_int_equal(st.files, 8);
    assert_int_equal(st.symlinks, 3);
    assert_int_equal(st.hardlinks, 1);
    assert_outside_intact(f);
    free(rec);
    free(t.buf);
}

/* A file replaces a directory and a directory replaces a file. */
static void test_replace_types(void **state)
{
    struct fx *f = *state;
    struct tarb t = {0};
    tb_dir(&t, "d");
    tb_file(&t, "d/inner", "x");
    tb_file(&t, "d", "now a file");
    tb_file(&t, "e", "file first");
    tb_dir(&t, "e");
    tb_file(&t, "e/child", "y");
    tb_end(&t);
    struct cl_err e = {0};
    assert_int_equal(unpack_buf(f->rootfd, &t, NULL, NULL, &e), 0);
    assert_true(S_ISREG(tu_lstat(f->root, "d").st_mode));
    assert_true(S_ISDIR(tu_lstat(f->root, "e").st_mode));
    assert_true(tu_exists(f->root, "e/child"));
    free(t.buf);
}

/* ---- whiteouts ---- */

static void test_whiteouts_overlay(void **state)
{
    struct fx *f = *state;
    if (geteuid() != 0)
        skip(); /* mknod of 0:0 needs CAP_MKNOD */
    struct tarb t = {0};
    tb_dir(&t, "etc");
    tb_file(&t, "etc/.wh.gone", "");
    tb_dir(&t, "opq");
    tb_file(&t, "opq/.wh..wh..opq", "");
    tb_file(&t, "opq/kept", "k");
    tb_file(&t, ".wh.redo", "");
    tb_dir(&t, "redo");                  /* whited out, then made again in the same layer: opaque */
    tb_file(&t, "etc/.wh..wh.plnk", ""); /* AUFS metadata: ignored */
    tb_end(&t);
    struct cl_image_unpack_stats st = {0};
    struct cl_err e = {0};
    assert_int_equal(unpack_buf(f->rootfd, &t, NULL, &st, &e), 0);
    struct stat s = tu_lstat(f->root, "etc/gone");
    assert_true(S_ISCHR(s.st_mode));
    assert_int_equal(s.st_rdev, makedev(0, 0));
    char v[4] = "";
    char *p = cl_strdupf("%s/opq", f->root);
    assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof v), 1);
    free(p);
    p = cl_strdupf("%s/redo", f->root);
    assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof v), 1);
    free(p);
    assert_true(tu_exists(f->root, "opq/kept"));
    assert_false(tu_exists(f->root, "etc/.wh.gone"));
    assert_false(tu_exists(f->root, "etc/plnk"));
    assert_int_equal(st.whiteouts, 3);
    free(t.buf);
}

static void test_whiteouts_apply(void **state)
{
    struct fx *f = *state;
    struct tarb l1 = {0}, l2 = {0};
    tb_dir(&l1, "etc");
    tb_file(&l1, "etc/gone", "g");
    tb_file(&l1, "etc/stay", "s");
    tb_dir(&l1, "tree");
    tb_dir(&l1, "tree/sub");
    tb_file(&l1, "tree/sub/x", "x");
    tb_dir(&l1, "opq");
    tb_file(&l1, "opq/old", "o");
    tb_dir(&l1, "opq/olddir");
    tb_file(&l1, "opq/olddir/f", "f");
    tb_end(&l1);
    /* layer 2 writes opq/new before the opaque marker: it must survive it */
    tb_file(&l2, "etc/.wh.gone", "");
    tb_file(&l2, ".wh.tree", "");
    tb_file(&l2, "opq/new", "n");
    tb_file(&l2, "opq/.wh..wh..opq", "");
    tb_file(&l2, "opq/olddir/g", "g"); /* olddir touched by this layer: only its old child goes */
    tb_file(&l2, "etc/.wh.nonexistent", "");
    tb_end(&l2);
    struct cl_image_unpack_opts o = {.whiteouts = CL_IMAGE_WH_APPLY};
    struct cl_err e = {0};
    assert_int_equal(unpack_buf(f->rootfd, &l1, &o, NULL, &e), 0);
    assert_int_equal(cl_image_unpack_layer_start(f->rootfd, &o.layer_start_ns, &e), 0);
    assert_int_equal(unpack_buf(f->rootfd, &l2, &o, NULL, &e), 0);
    assert_false(tu_exists(f->root, "etc/gone"));
    assert_true(tu_exists(f->root, "etc/stay"));
    assert_false(tu_exists(f->root, "tree"));
    assert_true(tu_exists(f->root, "opq/new"));
    assert_false(tu_exists(f->root, "opq/old"));
    assert_true(tu_exists(f->root, "opq/olddir/g"));
    assert_false(tu_exists(f->root, "opq/olddir/f"));
    assert_false(tu_exists(f->root, ".cloister-layer-probe"));
    free(l1.buf);
    free(l2.buf);
}

/* ---- hostile archives ---- */

enum build {
    B_DOTDOT,
    B_DOTDOT_MID,
    B_SYMLINK_ABS,
    B_SYMLINK_REL,
    B_HARDLINK_ABS,
    B_HARDLINK_DOTDOT,
    B_HARDLINK_VIA_SYMLINK,
    B_WH_DOTDOT,
    B_WH_EMPTY,
    B_DEVICES,
    B_SWAP_DIR_FOR_SYMLINK,
    B_MAX_ENTRIES,
    B_PATH_TOO_LONG,
    B_PAX_TOO_BIG,
    B_BAD_CHECKSUM,
    B_TRUNC_DATA,
    B_TRUNC_HEADER,
    B_SPARSE,
    B_UNKNOWN_TYPE,
    B_NEG_SIZE,
    B_BAD_OCTAL,
    B_PAX_BAD_LEN,
    B_PAX_NO_EQ,
    B_PAX_BAD_UID,
    B_PAX_SPARSE,
    B_ZERO_THEN_HEADER,
    B_ENDS_AFTER_PAX,
    B_EMPTY_NAME,
    B_GNU_TOO_LONG,
    B_SYMLINK_EMPTY,
    B_HARDLINK_DIR,
    B_ROOT_NOT_DIR,
    B_PAX_NUL_PATH,
    B_XATTR_TOO_MANY,
    B_BASE256_SIZE,
    B_HARDLINK_MISSING,
    B_PARENT_IS_FILE,
};

struct hostile {
    const char *name;
    enum build b;
    int rc;             /* expected result */
    const char *inside; /* a path that must then exist inside the root, or NULL */
};

static const struct hostile hostile_cases[] = {
    {"../ path", B_DOTDOT, CL_EPARSE, NULL},
    {"a/../../ path", B_DOTDOT_MID, CL_EPARSE, NULL},
    {"symlink to an absolute outside path, then a file through it", B_SYMLINK_ABS, 0, NULL},
    {"symlink climbing out with ../, then a file through it", B_SYMLINK_REL, 0, "x"},
    {"hard link to an absolute outside file", B_HARDLINK_ABS, CL_ENOTFOUND, NULL},
    {"hard link with ../", B_HARDLINK_DOTDOT, CL_EPARSE, NULL},
    {"hard link through a symlink that points outside", B_HARDLINK_VIA_SYMLINK, CL_ENOTFOUND, NULL},
    {"whiteout of ..", B_WH_DOTDOT, CL_EPARSE, NULL},
    {"whiteout of nothing", B_WH_EMPTY, CL_EPARSE, NULL},
    {"device nodes are skipped", B_DEVICES, 0, "ok"},
    {"a directory swapped for an outside symlink mid-layer", B_SWAP_DIR_FOR_SYMLINK, 0, NULL},
    {"more entries than the cap", B_MAX_ENTRIES, CL_ELIMIT, NULL},
    {"pax path longer than the cap", B_PATH_TOO_LONG, CL_ELIMIT, NULL},
    {"pax header larger than the cap", B_PAX_TOO_BIG, CL_ELIMIT, NULL},
    {"header checksum mismatch", B_BAD_CHECKSUM, CL_EPARSE, NULL},
    {"file data cut short", B_TRUNC_DATA, CL_EPARSE, NULL},
    {"header cut short", B_TRUNC_HEADER, CL_EPARSE, NULL},
    {"GNU sparse entry", B_SPARSE, CL_EUNSUPPORTED, NULL},
    {"unknown entry type", B_UNKNOWN_TYPE, CL_EUNSUPPORTED, NULL},
    {"negative base-256 size", B_NEG_SIZE, CL_EPARSE, NULL},
    {"junk in an octal field", B_BAD_OCTAL, CL_EPARSE, NULL},
    {"pax record with a bad length", B_PAX_BAD_LEN, CL_EPARSE, NULL},
    {"pax record without '='", B_PAX_NO_EQ, CL_EPARSE, NULL},
    {"pax uid that is not a number", B_PAX_BAD_UID, CL_EPARSE, NULL},
    {"pax GNU.sparse records", B_PAX_SPARSE, CL_EUNSUPPORTED, NULL},
    {"a zero block followed by a header", B_ZERO_THEN_HEADER, CL_EPARSE, NULL},
    {"stream ends after a pax header", B_ENDS_AFTER_PAX, CL_EPARSE, NULL},
    {"entry with an empty name", B_EMPTY_NAME, CL_EPARSE, NULL},
    {"GNU long name longer than the cap", B_GNU_TOO_LONG, CL_ELIMIT, NULL},
    {"symlink with an empty target", B_SYMLINK_EMPTY, CL_EPARSE, NULL},
    {"hard link to a directory", B_HARDLINK_DIR, CL_EIO, NULL},
    {"root entry that is not a directory", B_ROOT_NOT_DIR, CL_EPARSE, NULL},
    {"pax path with a NUL byte", B_PAX_NUL_PATH, CL_EPARSE, NULL},
    {"more xattrs than the cap", B_XATTR_TOO_MANY, CL_ELIMIT, NULL},
    {"base-256 size (accepted)", B_BASE256_SIZE, 0, "b256"},
    {"hard link to a missing target", B_HARDLINK_MISSING, CL_ENOTFOUND, NULL},
    {"a parent that is a regular file", B_PARENT_IS_FILE, CL_EPARSE, NULL},
};

static void build_hostile(const struct fx *f, enum build b, struct tarb *t,
                          struct cl_image_unpack_opts *o)
{
    uint8_t h[512];
    switch (b) {
    case B_DOTDOT:
        tb_file(t, "../escape", "owned");
        break;
    case B_DOTDOT_MID:
        tb_file(t, "a/../../escape", "owned");
        break;
    case B_SYMLINK_ABS:
        tb_entry(t, "out", '2', 0777, NULL, 0, f->outside);
        tb_file(t, "out/escape", "owned");
        break;
    case B_SYMLINK_REL:
        tb_entry(t, "up", '2', 0777, NULL, 0, "../../../../../../../..");
        tb_file(t, "up/x", "confined");
        break;
    case B_HARDLINK_ABS: {
        char *target = cl_strdupf("%s/sentinel", f->outside);
        tb_entry(t, "hl", '1', 0644, NULL, 0, target);
        free(target);
        break;
    }
    case B_HARDLINK_DOTDOT:
        tb_entry(t, "hl", '1', 0644, NULL, 0, "../outside/sentinel");
        break;
    case B_HARDLINK_VIA_SYMLINK:
        tb_entry(t, "out", '2', 0777, NULL, 0, f->outside);
        tb_entry(t, "hl", '1', 0644, NULL, 0, "out/sentinel");
        break;
    case B_WH_DOTDOT:
        tb_dir(t, "d");
        tb_file(t, "d/.wh..", "");
        break;
    case B_WH_EMPTY:
        tb_file(t, ".wh.", "");
        break;
    case B_DEVICES:
        tb_entry(t, "null", '3', 0666, NULL, 0, NULL);
        tb_entry(t, "sda", '4', 0660, NULL, 0, NULL);
        tb_file(t, "ok", "fine");
        break;
    case B_SWAP_DIR_FOR_SYMLINK:
        tb_dir(t, "d");
        tb_file(t, "d/a", "a");
        tb_entry(t, "d", '2', 0777, NULL, 0, f->outside);
        tb_file(t, "d/b", "owned?");
        break;
    case B_MAX_ENTRIES:
        o->max_entries = 3;
        for (int i = 0; i < 5; i++) {
            char n[16];
            snprintf(n, sizeof n, "f%d", i);
            tb_file(t, n, "x");
        }
        break;
    case B_PATH_TOO_LONG: {
        char *rec = malloc(CL_IMAGE_MAX_PATH + 100);
        memcpy(rec, "path=", 5);
        memset(rec + 5, 'p', CL_IMAGE_MAX_PATH + 10);
        rec[CL_IMAGE_MAX_PATH + 15] = 0;
        /* built by hand: tb_pax's buffer is smaller than this record */
        size_t body = strlen(rec) + 2, len = body + 4;
        char *r = cl_strdupf("%zu %s\n", len, rec);
        tb_header(h, "PaxHeader", 'x', 0644, strlen(r), NULL, 0, 0);
        tb_put(t, h, 512);
        tb_put(t, r, strlen(r));
        tb_pad(t);
        tb_file(t, "x", "x");
        free(r);
        free(rec);
        break;
    }
    case B_PAX_TOO_BIG:
        tb_header(h, "PaxHeader", 'x', 0644, 2u << 20, NULL, 0, 0);
        tb_put(t, h, 512);
        break;
    case B_BAD_CHECKSUM:
        tb_header(h, "f", '0', 0644, 0, NULL, 0, 0);
        h[0] = 'g';
        tb_put(t, h, 512);
        break;
    case B_TRUNC_DATA:
        tb_header(h, "f", '0', 0644, 4096, NULL, 0, 0);
        tb_put(t, h, 512);
        tb_put(t, "only a little", 13);
        return; /* no end blocks */
    case B_TRUNC_HEADER:
        tb_header(h, "f", '0', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 300);
        return;
    case B_SPARSE:
        tb_header(h, "sparse", 'S', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 512);
        break;
    case B_UNKNOWN_TYPE:
        tb_header(h, "odd", 'Z', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 512);
        break;
    case B_NEG_SIZE:
        tb_header(h, "neg", '0', 0644, 0, NULL, 0, 0);
        memset(h + 124, 0xff, 12);
        tb_checksum(h);
        tb_put(t, h, 512);
        break;
    case B_BAD_OCTAL:
        tb_header(h, "oct", '0', 0644, 0, NULL, 0, 0);
        memcpy(h + 100, "07z4\0", 5);
        tb_checksum(h);
        tb_put(t, h, 512);
        break;
    case B_PAX_BAD_LEN: {
        const char *r = "99 path=x\n";
        tb_header(h, "PaxHeader", 'x', 0644, strlen(r), NULL, 0, 0);
        tb_put(t, h, 512);
        tb_put(t, r, strlen(r));
        tb_pad(t);
        tb_file(t, "x", "x");
        break;
    }
    case B_PAX_NO_EQ: {
        const char *r = "11 pathxyz\n";
        tb_header(h, "PaxHeader", 'x', 0644, strlen(r), NULL, 0, 0);
        tb_put(t, h, 512);
        tb_put(t, r, strlen(r));
        tb_pad(t);
        tb_file(t, "x", "x");
        break;
    }
    case B_PAX_BAD_UID: {
        const char *kv[] = {"uid=12a"};
        tb_pax(t, kv, 1);
        tb_file(t, "x", "x");
        break;
    }
    case B_PAX_SPARSE: {
        const char *kv[] = {"GNU.sparse.major=1"};
        tb_pax(t, kv, 1);
        tb_file(t, "x", "x");
        break;
    }
    case B_ZERO_THEN_HEADER: {
        static const uint8_t zero[512];
        tb_put(t, zero, 512);
        tb_file(t, "after", "x");
        break;
    }
    case B_ENDS_AFTER_PAX: {
        const char *kv[] = {"path=x"};
        tb_pax(t, kv, 1);
        return;
    }
    case B_EMPTY_NAME:
        tb_header(h, "", '0', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 512);
        break;
    case B_GNU_TOO_LONG: {
        char *n = malloc(CL_IMAGE_MAX_PATH + 100);
        memset(n, 'g', CL_IMAGE_MAX_PATH + 99);
        n[CL_IMAGE_MAX_PATH + 99] = 0;
        tb_gnu_long(t, 'L', n);
        tb_file(t, "x", "x");
        free(n);
        break;
    }
    case B_SYMLINK_EMPTY:
        tb_entry(t, "s", '2', 0777, NULL, 0, "");
        break;
    case B_HARDLINK_DIR:
        tb_dir(t, "d");
        tb_entry(t, "hl", '1', 0644, NULL, 0, "d");
        break;
    case B_ROOT_NOT_DIR:
        tb_file(t, "./", "x");
        break;
    case B_PAX_NUL_PATH: {
        const char r[] = "12 path=a\0b\n";
        tb_header(h, "PaxHeader", 'x', 0644, sizeof r - 1, NULL, 0, 0);
        tb_put(t, h, 512);
        tb_put(t, r, sizeof r - 1);
        tb_pad(t);
        tb_file(t, "x", "x");
        break;
    }
    case B_XATTR_TOO_MANY: {
        char *kv[CL_IMAGE_MAX_XATTRS + 1];
        for (int i = 0; i <= CL_IMAGE_MAX_XATTRS; i++)
            kv[i] = cl_strdupf("SCHILY.xattr.user.k%d=v", i);
        tb_pax(t, (const char *const *)kv, CL_IMAGE_MAX_XATTRS + 1);
        for (int i = 0; i <= CL_IMAGE_MAX_XATTRS; i++)
            free(kv[i]);
        tb_file(t, "x", "x");
        break;
    }
    case B_BASE256_SIZE:
        tb_header(h, "b256", '0', 0644, 0, NULL, 0, 0);
        memset(h + 124, 0, 12);
        h[124] = 0x80;
        h[135] = 3;
        tb_checksum(h);
        tb_put(t, h, 512);
        tb_put(t, "abc", 3);
        tb_pad(t);
        break;
    case B_HARDLINK_MISSING:
        tb_entry(t, "hl", '1', 0644, NULL, 0, "nope/none");
        break;
    case B_PARENT_IS_FILE:
        tb_file(t, "f", "x");
        tb_file(t, "f/child", "y");
        break;
    }
    tb_end(t);
}

static void test_hostile(void **state)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(hostile_cases); i++) {
        const struct hostile *c = &hostile_cases[i];
        struct fx *f = NULL;
        fx_setup((void **)&f);
        struct tarb t = {0};
        struct cl_image_unpack_opts o = {0};
        build_hostile(f, c->b, &t, &o);
        struct cl_err e = {0};
        struct cl_image_unpack_stats st = {0};
        int rc = unpack_buf(f->rootfd, &t, &o, &st, &e);
        if (rc != c->rc)
            fail_msg("case '%s': rc %d (%s), wanted %d", c->name, rc, e.msg, c->rc);
        if (c->rc < 0)
            assert_true(e.msg[0] != 0);
        if (c->inside)
            assert_true(tu_exists(f->root, c->inside));
        if (c->b == B_DEVICES)
            assert_int_equal(st.skipped_devices, 2);
        if (c->b == B_SYMLINK_ABS || c->b == B_SWAP_DIR_FOR_SYMLINK) {
            /* the write went through the symlink re-rooted: inside root/<outside path> */
            char *rel = cl_strdupf("%s/%s", f->outside + 1, c->b == B_SYMLINK_ABS ? "escape" : "b");
            assert_true(tu_exists(f->root, rel));
            free(rel);
        }
        assert_outside_intact(f);
        free(t.buf);
        void *sp = f;
        fx_teardown(&sp);
        (void)state;
    }
}

/* ---- tar reader alone ---- */

static void test_tar_reader_drains(void **state)
{
    (void)state;
    struct tarb t = {0};
    tb_file(&t, "a", "0123456789");
    tb_file(&t, "b", "x");
    tb_end(&t);
    static const uint8_t pad[4096];
    tb_put(&t, pad, sizeof pad); /* record padding after the end blocks */
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, t.buf, t.len);
    struct cl_err e = {0};
    struct cl_image_tar *tr = cl_image_tar_new(&m.src, &e);
    struct cl_image_tar_entry *ent = NULL;
    assert_int_equal(cl_image_tar_next(tr, &ent, &e), 1);
    assert_string_equal(ent->path, "a");
    uint8_t buf[4];
    size_t got = 0;
    assert_int_equal(cl_image_tar_read(tr, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 4);
    /* the rest of "a" is skipped by the next call */
    assert_int_equal(cl_image_tar_next(tr, &ent, &e), 1);
    assert_string_equal(ent->path, "b");
    assert_int_equal(cl_image_tar_next(tr, &ent, &e), 0);
    assert_int_equal(m.off, m.len); /* everything consumed: a hash over the source covers it */
    assert_int_equal(cl_image_tar_next(tr, &ent, &e), 0);
    cl_image_tar_free(tr);
    free(t.buf);
}

static void test_tar_no_end_blocks(void **state)
{
    (void)state;
    struct tarb t = {0};
    tb_file(&t, "a", "x");
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, t.buf, t.len);
    struct cl_err e = {0};
    struct cl_image_tar *tr = cl_image_tar_new(&m.src, &e);
    struct cl_image_tar_entry *ent = NULL;
    assert_int_equal(cl_image_tar_next(tr, &ent, &e), 1);
    assert_int_equal(cl_image_tar_next(tr, &ent, &e), 0);
    cl_image_tar_free(tr);
    free(t.buf);
}

/* Streams that tar readers list differently (GNU tar, libarchive, Go): each is refused, or
 * read the way GNU tar reads it. listing = "type path[->link] size;" per entry. */
enum amb {
    A_K4097_SIZE,   /* pax size=767, a 4097-byte GNU 'K' (4096 + NUL), then f */
    A_K_THEN_L4097, /* long link, then a 4097-byte long name */
    A_L4097_NO_NUL, /* 4097 name bytes: one more than a path holds */
    A_L_TWICE,
    A_PAX_PATH_AND_L,
    A_PAX_SIZE_TWICE,
    A_SYMLINK_SIZE, /* a symlink declaring 512 data bytes */
    A_DIR_SIZE,
    A_V7_DIR_SIZE, /* type '0', name ending in '/', 512 data bytes */
    A_PAX_SIZE_SYMLINK,
    A_PAX_THEN_END,     /* a pax header, then the end-of-archive blocks */
    A_EMPTY_LINK_FIELD, /* pax linkpath for a symlink whose header link field is empty */
    A_META_BAD_OCTAL,   /* a global header whose uid is not a number */
};

static const struct {
    const char *name;
    enum amb b;
    int rc;
    const char *listing;
} amb_cases[] = {
    {"GNU K of 4097 bytes after a pax size", A_K4097_SIZE, 0, "0 f 767;"},
    {"GNU K then a GNU L of 4097 bytes", A_K_THEN_L4097, 0, "2 <4096>->target 0;"},
    {"GNU L of 4097 bytes without a NUL", A_L4097_NO_NUL, CL_ELIMIT, NULL},
    {"two GNU long names", A_L_TWICE, CL_EPARSE, NULL},
    {"pax path and GNU long name", A_PAX_PATH_AND_L, CL_EPARSE, NULL},
    {"pax size twice", A_PAX_SIZE_TWICE, CL_EPARSE, NULL},
    {"symlink with data", A_SYMLINK_SIZE, CL_EPARSE, NULL},
    {"directory with data", A_DIR_SIZE, CL_EPARSE, NULL},
    {"V7 directory with data", A_V7_DIR_SIZE, CL_EPARSE, NULL},
    {"pax size on a symlink", A_PAX_SIZE_SYMLINK, CL_EPARSE, NULL},
    {"pax header then the end blocks", A_PAX_THEN_END, CL_EPARSE, NULL},
    {"long link target, empty link field", A_EMPTY_LINK_FIELD, CL_EPARSE, NULL},
    {"malformed uid in a meta header", A_META_BAD_OCTAL, CL_EPARSE, NULL},
};

static void build_amb(enum amb b, struct tarb *t)
{
    uint8_t h[512];
    char *n4096 = malloc(4098);
    assert_non_null(n4096);
    memset(n4096, 'n', 4096);
    n4096[4096] = 0;
    switch (b) {
    case A_K4097_SIZE: {
        tb_pax(t, (const char *const[]){"size=767"}, 1);
        tb_gnu_long(t, 'K', n4096); /* 4096 bytes and the NUL */
        tb_header(h, "f", '0', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 512);
        /* f's data: 512 bytes, then 255 that (with the padding) form a symlink header */
        uint8_t data[767];
        memset(data, 'A', 512);
        tb_header(h, "hidden", '2', 0777, 0, "/etc/shadow", 0, 0);
        memset(h + 257, 0, 8); /* a V7 header: nothing past byte 255 */
        tb_checksum(h);
        memcpy(data + 512, h, 255);
        tb_put(t, data, sizeof data);
        tb_pad(t);
        break;
    }
    case A_K_THEN_L4097:
        tb_gnu_long(t, 'K', "target");
        tb_gnu_long(t, 'L', n4096);
        tb_entry(t, "x", '2', 0777, NULL, 0, "t");
        break;
    case A_L4097_NO_NUL:
        tb_header(h, "././@LongLink", 'L', 0644, 4097, NULL, 0, 0);
        tb_put(t, h, 512);
        tb_put(t, n4096, 4096);
        tb_put(t, "n", 1);
        tb_pad(t);
        tb_file(t, "y", "data");
        break;
    case A_L_TWICE:
        tb_gnu_long(t, 'L', "first");
        tb_gnu_long(t, 'L', "second");
        tb_file(t, "n", "x");
        break;
    case A_PAX_PATH_AND_L:
        tb_pax(t, (const char *const[]){"path=paxname"}, 1);
        tb_gnu_long(t, 'L', "gnuname");
        tb_file(t, "n", "x");
        break;
    case A_PAX_SIZE_TWICE:
        tb_pax(t, (const char *const[]){"size=512", "size=3"}, 2);
        tb_file(t, "f", "abc");
        break;
    case A_SYMLINK_SIZE:
    case A_DIR_SIZE:
    case A_V7_DIR_SIZE:
        tb_header(h, b == A_SYMLINK_SIZE ? "s" : "d/",
                  b == A_SYMLINK_SIZE ? '2'
                  : b == A_DIR_SIZE   ? '5'
                                      : '0',
                  0755, 512, b == A_SYMLINK_SIZE ? "t" : NULL, 0, 0);
        tb_put(t, h, 512);
        tb_header(h, "inner", '0', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 512);
        break;
    case A_PAX_SIZE_SYMLINK:
        tb_pax(t, (const char *const[]){"size=512"}, 1);
        tb_entry(t, "s", '2', 0777, NULL, 0, "t");
        tb_header(h, "inner", '0', 0644, 0, NULL, 0, 0);
        tb_put(t, h, 512);
        break;
    case A_PAX_THEN_END:
        tb_file(t, "f", "x");
        tb_pax(t, (const char *const[]){"comment=nothing follows"}, 1);
        break;
    case A_EMPTY_LINK_FIELD:
        tb_pax(t, (const char *const[]){"linkpath=target"}, 1);
        tb_entry(t, "x", '2', 0777, NULL, 0, NULL);
        break;
    case A_META_BAD_OCTAL:
        tb_header(h, "GlobalHead", 'g', 0644, 0, NULL, 0, 0);
        memcpy(h + 108, "00x0000", 7);
        tb_checksum(h);
        tb_put(t, h, 512);
        tb_file(t, "f", "x");
        break;
    }
    free(n4096);
    tb_end(t);
}

static void test_tar_reader_ambiguity(void **state)
{
    (void)state;
    for (size_t i = 0; i < CL_ARRAY_LEN(amb_cases); i++) {
        struct tarb t = {0};
        build_amb(amb_cases[i].b, &t);
        struct cl_image_mem_src m;
        cl_image_mem_src_init(&m, t.buf, t.len);
        struct cl_err e = {0};
        struct cl_image_tar *tr = cl_image_tar_new(&m.src, &e);
        assert_non_null(tr);
        struct cl_image_tar_entry *ent = NULL;
        char listing[512] = "";
        int rc;
        while ((rc = cl_image_tar_next(tr, &ent, &e)) == 1) {
            size_t o = strlen(listing);
            bool long_name = strlen(ent->path) == 4096;
            bool is_link = ent->type == CL_TAR_LINK || ent->type == CL_TAR_SYMLINK;
            snprintf(listing + o, sizeof listing - o, "%c %.100s%s%.100s %llu;", (char)ent->type,
                     long_name ? "<4096>" : ent->path, is_link ? "->" : "",
                     is_link ? ent->link : "", (unsigned long long)ent->size);
        }
        if (rc != amb_cases[i].rc)
            fail_msg("case '%s': rc %d (%s), wanted %d; listed %s", amb_cases[i].name, rc, e.msg,
                     amb_cases[i].rc, listing);
        if (amb_cases[i].listing && strcmp(listing, amb_cases[i].listing) != 0)
            fail_msg("case '%s': listed '%s', wanted '%s'", amb_cases[i].name, listing,
                     amb_cases[i].listing);
        if (rc < 0)
            assert_true(e.msg[0] != 0);
        cl_image_tar_free(tr);
        free(t.buf);
    }
}

static void test_rmtree_deep(void **state)
{
    (void)state;
    char *d = tu_tmpdir("rm");
    /* 200 levels, files on the way, a symlink to outside that must not be followed */
    char path[4096];
    snprintf(path, sizeof path, "%s/t", d);
    assert_int_equal(mkdir(path, 0755), 0);
    char *outside = cl_strdupf("%s/keep", d);
    assert_int_equal(cl_file_write_atomic(outside, "k", 1, 0644, NULL), 0);
    size_t off = strlen(path);
    for (int i = 0; i < 200 && off + 3 < sizeof path - 16; i++) {
        memcpy(path + off, "/d", 3);
        off += 2;
        assert_int_equal(mkdir(path, 0755), 0);
        char *f = cl_strdupf("%s/f", path);
        assert_int_equal(cl_file_write_atomic(f, "x", 1, 0644, NULL), 0);
        free(f);
    }
    char *ln = cl_strdupf("%s/link", path);
    assert_int_equal(symlink(d, ln), 0);
    free(ln);
    int fd = open(d, O_PATH | O_DIRECTORY);
    struct cl_err e = {0};
    assert_int_equal(cl_image_rmtree(fd, "t", &e), 0);
    assert_int_equal(cl_image_rmtree(fd, "t", &e), 0); /* absent is fine */
    close(fd);
    assert_true(tu_exists(d, "keep"));
    assert_false(tu_exists(d, "t"));
    free(outside);
    tu_rmdir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_types, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_replace_types, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_whiteouts_overlay, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_whiteouts_apply, fx_setup, fx_teardown),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_tar_reader_drains),
        cmocka_unit_test(test_tar_no_end_blocks),
        cmocka_unit_test(test_tar_reader_ambiguity),
        cmocka_unit_test(test_rmtree_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
