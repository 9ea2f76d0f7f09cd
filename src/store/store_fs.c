/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "LocalFs" backend, laid out like trustee's: <base>/<namespace>/<key>, one folder per
 * namespace (0700), one file per key (0600), '/' in a name written as the 4 characters
 * "\x2F". A write goes to a temporary file in the namespace folder, is fsynced, then renamed
 * (or hard-linked, when overwriting is not allowed, so that "already exists" is decided by
 * the kernel even between processes) over the final name, and the folder is fsynced: a crash
 * leaves the old value or the new one, never a mix.
 *
 * Temporary files are named "#tmp.<random>": '#' is outside the key alphabet, so no key can
 * ever collide with one, and list() skips every name that is not the encoding of a valid key.
 * (base's cl_file_write_atomic names its temporaries "<path>.tmp.XXXXXX", which is a valid key,
 * so it is not used here.) A writer holds a shared flock on its temporary file from creation to
 * rename; opening the store sweeps every temporary file nobody holds, whatever its age: the
 * leftovers of a writer that crashed go at the next start, while another process's write in
 * progress is left alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_backend.h"

#define TMP_PREFIX "#tmp."

struct fs_store {
    char *base; /* absolute path of the base folder */
    int basefd;
};

int cl_store_fs_name_encode(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = name; *p; p++) {
        size_t need = *p == '/' ? 4 : 1;
        if (need >= cap - o)
            return CL_ELIMIT;
        if (*p == '/') {
            memcpy(out + o, "\\x2F", 4);
        } else {
            out[o] = *p;
        }
        o += need;
    }
    out[o] = '\0';
    return (int)o;
}

cl_str *cl_store_fs_name_decode(const char *fname)
{
    size_t n = strlen(fname);
    if (n == 0 || n > CL_STORE_FS_MAX_NAME)
        return NULL;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (fname[i] != '\\') {
            out[o++] = fname[i];
            continue;
        }
        if (n - i < 4 || memcmp(fname + i, "\\x2F", 4) != 0) {
            free(out);
            return NULL;
        }
        out[o++] = '/';
        i += 3;
    }
    out[o] = '\0';
    if (!cl_store_key_valid(out)) {
        free(out);
        return NULL;
    }
    return out;
}

static int encode_or_fail(const char *name, const char *what, char out[CL_STORE_FS_MAX_NAME + 1],
                          struct cl_err *err)
{
    if (cl_store_fs_name_encode(name, out, CL_STORE_FS_MAX_NAME + 1) < 0)
        return cl_err_set(
            err, CL_ELIMIT,
            "LocalFs store %s \"%.64s...\": its file name would be longer than %d bytes", what,
            name, CL_STORE_FS_MAX_NAME);
    return 0;
}

/* Opens the namespace folder; creates it (0700) when `create`. -ENOENT-style: returns -1 with
 * errno set. */
static int ns_open(struct fs_store *fs, const char *nsname, bool create)
{
    int fd = openat(fs->basefd, nsname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT || !create)
        return fd;
    if (mkdirat(fs->basefd, nsname, 0700) < 0 && errno != EEXIST)
        return -1;
    if (fsync(fs->basefd) < 0)
        return -1;
    return openat(fs->basefd, nsname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Removes the temporary files of one namespace folder that no writer holds (a writer killed
 * between create and rename leaves one behind). Best effort. */
static void sweep_ns(int nsfd)
{
    int dfd = dup(nsfd);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
            continue;
        int fd = openat(nsfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* a writer at work holds a shared lock: its file stays */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlinkat(nsfd, e->d_name, 0) == 0)
            cl_info("LocalFs store: removed temporary file %s left by an interrupted write",
                    e->d_name);
        close(fd);
    }
    closedir(d);
}

static void sweep(struct fs_store *fs)
{
    int dfd = dup(fs->basefd);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int nsfd = openat(fs->basefd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nsfd < 0)
            continue;
        sweep_ns(nsfd);
        close(nsfd);
    }
    closedir(d);
}

static void *fs_open(const struct cl_store_opts *o, struct cl_err *err)
{
    const char *dir = o->dir;
    if (!dir || !*dir) {
        cl_err_set(err, CL_EINVAL, "LocalFs store: dir_path missing");
        return NULL;
    }
    if (cl_mkdir_p(dir, 0700, err) < 0)
        return NULL;
    struct fs_store *fs = calloc(1, sizeof *fs);
    if (!fs) {
        cl_err_set(err, CL_ENOMEM, "LocalFs store: out of memory");
        return NULL;
    }
    fs->base = realpath(dir, NULL);
    if (!fs->base) {
        cl_err_set(err, CL_EIO, "LocalFs store %s: %s", dir, strerror(errno));
        free(fs);
        return NULL;
    }
    fs->basefd = open(fs->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->basefd < 0) {
        cl_err_set(err, CL_EIO, "LocalFs store %s: %s", fs->base, strerror(errno));
        free(fs->base);
        free(fs);
        return NULL;
    }
    sweep(fs);
    return fs;
}

static int fs_set(void *impl, const char *ns, const char *key, const void *data, size_t len,
                  bool overwrite, int64_t expires_unix, struct cl_err *err)
{
    (void)expires_unix; /* purged by store.c's list + get + delete */
    struct fs_store *fs = impl;
    char nsname[CL_STORE_FS_MAX_NAME + 1], name[CL_STORE_FS_MAX_NAME + 1];
    char tmp[sizeof TMP_PREFIX + 32];
    uint8_t rnd[12];
    int rc = 0, nsfd = -1, fd = -1;
    bool tmp_made = false;

    if ((rc = encode_or_fail(ns, "namespace", nsname, err)) < 0 ||
        (rc = encode_or_fail(key, "key", name, err)) < 0)
        goto out;
    nsfd = ns_open(fs, nsname, true);
    if (nsfd < 0) {
        rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: %s", fs->base, nsname, strerror(errno));
        goto out;
    }
    /* The temporary file is locked (shared) until it is renamed, so that the start-up sweep of
     * another process leaves it alone. That sweep may still remove it between its creation
     * and the lock: then it has no link left, and a new one is made. */
    for (int attempt = 0; fd < 0; attempt++) {
        struct stat st;
        if ((rc = cl_random(rnd, sizeof rnd, err)) < 0)
            goto out;
        snprintf(tmp, sizeof tmp, TMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9],
                 rnd[10], rnd[11]);
        fd = openat(nsfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_SH) < 0 || fstat(fd, &st) < 0) {
            rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: create temporary: %s", fs->base,
                            nsname, strerror(errno));
            goto out;
        }
        tmp_made = true;
        if (st.st_nlink == 0) {
            close(fd);
            fd = -1;
            tmp_made = false;
            if (attempt == 3) {
                rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: temporary file swept away",
                                fs->base, nsname);
                goto out;
            }
        }
    }
    if (cl_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s/%s: write: %s", fs->base, nsname, name,
                        strerror(errno));
        goto out;
    }
    if (overwrite) {
        if (renameat(nsfd, tmp, nsfd, name) < 0) {
            rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s/%s: rename: %s", fs->base, nsname,
                            name, strerror(errno));
            goto out;
        }
        tmp_made = false;
    } else if (linkat(nsfd, tmp, nsfd, name, 0) < 0) {
        if (errno == EEXIST)
            rc = cl_err_set(err, CL_EEXISTS, "store key \"%s\" in \"%s\": already exists", key, ns);
        else
            rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s/%s: link: %s", fs->base, nsname, name,
                            strerror(errno));
        goto out;
    }
    if (tmp_made) {
        unlinkat(nsfd, tmp, 0);
        tmp_made = false;
    }
    /* the data was fsynced: a late close error changes nothing on disk */
    (void)close(fd);
    fd = -1;
    if (fsync(nsfd) < 0)
        rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: fsync folder: %s", fs->base, nsname,
                        strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlinkat(nsfd, tmp, 0);
    if (nsfd >= 0)
        close(nsfd);
    return rc;
}

static cl_bytes *fs_get(void *impl, const char *ns, const char *key, size_t *len,
                        struct cl_err *err)
{
    struct fs_store *fs = impl;
    char nsname[CL_STORE_FS_MAX_NAME + 1], name[CL_STORE_FS_MAX_NAME + 1];
    if (encode_or_fail(ns, "namespace", nsname, err) < 0 ||
        encode_or_fail(key, "key", name, err) < 0)
        return NULL;
    CL_AUTO(cl_str) *path = cl_strcat_new(fs->base, "/", nsname, "/", name, NULL);
    if (!path) {
        cl_err_set(err, CL_ENOMEM, "LocalFs store: out of memory");
        return NULL;
    }
    struct cl_err ferr = {0};
    cl_bytes *v = cl_file_read(path, CL_STORE_MAX_VALUE, len, &ferr);
    if (!v) {
        if (ferr.code == CL_ENOTFOUND)
            cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
        else if (err)
            *err = ferr;
    }
    return v;
}

static int fs_del(void *impl, const char *ns, const char *key, struct cl_err *err)
{
    struct fs_store *fs = impl;
    char nsname[CL_STORE_FS_MAX_NAME + 1], name[CL_STORE_FS_MAX_NAME + 1];
    int rc;
    if ((rc = encode_or_fail(ns, "namespace", nsname, err)) < 0 ||
        (rc = encode_or_fail(key, "key", name, err)) < 0)
        return rc;
    int nsfd = ns_open(fs, nsname, false);
    if (nsfd < 0) {
        if (errno == ENOENT)
            return cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
        return cl_err_set(err, CL_EIO, "LocalFs store %s/%s: %s", fs->base, nsname,
                          strerror(errno));
    }
    if (unlinkat(nsfd, name, 0) < 0) {
        if (errno == ENOENT)
            rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
        else
            rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s/%s: unlink: %s", fs->base, nsname,
                            name, strerror(errno));
    } else if (fsync(nsfd) < 0) {
        rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: fsync folder: %s", fs->base, nsname,
                        strerror(errno));
    }
    close(nsfd);
    return rc;
}

static int fs_list(void *impl, const char *ns, char ***keys, size_t *n, struct cl_err *err)
{
    struct fs_store *fs = impl;
    char nsname[CL_STORE_FS_MAX_NAME + 1];
    int rc = encode_or_fail(ns, "namespace", nsname, err);
    if (rc < 0)
        return rc;
    int nsfd = ns_open(fs, nsname, false);
    if (nsfd < 0) {
        if (errno == ENOENT) {
            *keys = NULL;
            *n = 0;
            return 0;
        }
        return cl_err_set(err, CL_EIO, "LocalFs store %s/%s: %s", fs->base, nsname,
                          strerror(errno));
    }
    DIR *d = fdopendir(nsfd);
    if (!d) {
        rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: %s", fs->base, nsname, strerror(errno));
        close(nsfd);
        return rc;
    }
    char **out = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (e->d_type != DT_REG) {
            struct stat st;
            if (e->d_type != DT_UNKNOWN || fstatat(nsfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                !S_ISREG(st.st_mode))
                continue;
        }
        char *k = cl_store_fs_name_decode(e->d_name);
        if (!k)
            continue; /* a temporary file or a stranger */
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = reallocarray(out, ncap, sizeof *nv);
            if (!nv) {
                free(k);
                rc = cl_err_set(err, CL_ENOMEM, "LocalFs store: out of memory");
                break;
            }
            out = nv;
            cap = ncap;
        }
        out[cnt++] = k;
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = cl_err_set(err, CL_EIO, "LocalFs store %s/%s: readdir: %s", fs->base, nsname,
                        strerror(errno));
    closedir(d); /* closes nsfd */
    if (rc < 0) {
        cl_store_list_free(out, cnt);
        return rc;
    }
    *keys = out;
    *n = cnt;
    return 0;
}

static void fs_close(void *impl)
{
    struct fs_store *fs = impl;
    close(fs->basefd);
    free(fs->base);
    free(fs);
}

const struct cl_store_backend cl_store_backend_localfs = {
    .name = "LocalFs",
    .alias = "local_fs",
    .open = fs_open,
    .set = fs_set,
    .get = fs_get,
    .del = fs_del,
    .list = fs_list,
    .close = fs_close,
};
