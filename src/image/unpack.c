/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confined untar of one layer. Every path of the archive is cleaned (no "..", leading "/"
 * dropped) and its parent directory is opened with openat2(RESOLVE_IN_ROOT), so whatever
 * symlinks earlier entries or layers planted, nothing resolves outside the root; the entry
 * itself is then created with *at() calls on that parent and a single name, never followed.
 * OCI whiteouts become overlayfs markers (layered store) or are applied to the tree (flat
 * rootfs). Memory is fixed: one data buffer, one cached parent, a capped table of directory
 * mtimes (restored at the end, after their children were written).
 */
#include "image/image_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define DATA_BUF (256u * 1024)
#define DIR_TIMES_BYTES (4u * 1024 * 1024) /* paths kept for directory mtimes */
#define OPAQUE_MAX_DEPTH 64
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

int cl_image_openat_in_root(int rootfd, const char *path, int flags, unsigned mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd;
    do {
        fd = syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    return (int)fd;
}

/* ---- removing trees in constant memory ---- */

static int rmtree_at(int dirfd, const char *name, struct cl_err *err)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return cl_err_set(err, CL_EIO, "remove %.200s: %s", name, strerror(errno));
    int top = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (top < 0)
        return errno == ENOENT
                   ? 0
                   : cl_err_set(err, CL_EIO, "remove %.200s: %s", name, strerror(errno));
    /* Depth-first with a path relative to `top` instead of a stack of open directories. */
    char path[CL_IMAGE_MAX_PATH + 512] = "";
    size_t plen = 0;
    int rc = 0;
    char dbuf[4096];
    for (;;) {
        int cur = plen ? cl_image_openat_in_root(top, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)
                       : dup(top);
        if (cur < 0) {
            rc = cl_err_set(err, CL_EIO, "remove %.200s/%.200s: %s", name, path, strerror(errno));
            break;
        }
        char sub[256] = "";
        /* a dup of top shares its offset with the scans before: start over */
        lseek(cur, 0, SEEK_SET);
        for (;;) {
            long n = syscall(SYS_getdents64, cur, dbuf, sizeof dbuf);
            if (n < 0) {
                rc = cl_err_set(err, CL_EIO, "remove %.200s: getdents: %s", name, strerror(errno));
                break;
            }
            if (n == 0)
                break;
            for (long off = 0; off < n;) {
                struct dirent64 *d = (struct dirent64 *)(void *)(dbuf + off);
                off += d->d_reclen;
                if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                    continue;
                unsigned char t = d->d_type;
                if (t == DT_UNKNOWN) {
                    struct stat st;
                    if (fstatat(cur, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                    t = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
                }
                if (t == DT_DIR) {
                    if (!sub[0])
                        snprintf(sub, sizeof sub, "%s", d->d_name);
                } else if (unlinkat(cur, d->d_name, 0) < 0 && errno != ENOENT) {
                    rc = cl_err_set(err, CL_EIO, "remove %.200s: %s", d->d_name, strerror(errno));
                    break;
                }
            }
            if (rc < 0)
                break;
        }
        close(cur);
        if (rc < 0)
            break;
        if (sub[0]) {
            size_t sl = strlen(sub);
            if (plen + 1 + sl >= sizeof path) {
                rc = cl_err_set(err, CL_ELIMIT, "remove %.200s: tree deeper than %zu bytes of path",
                                name, sizeof path);
                break;
            }
            if (plen)
                path[plen++] = '/';
            memcpy(path + plen, sub, sl + 1);
            plen += sl;
            continue;
        }
        /* cur is empty: remove it and climb */
        if (plen == 0)
            break;
        char *slash = strrchr(path, '/');
        int pfd = slash ? (*slash = 0,
                           cl_image_openat_in_root(top, path, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0))
                        : dup(top);
        const char *leaf = slash ? slash + 1 : path;
        if (pfd < 0 || (unlinkat(pfd, leaf, AT_REMOVEDIR) < 0 && errno != ENOENT)) {
            rc = cl_err_set(err, CL_EIO, "remove %.200s/%.200s: %s", name, leaf, strerror(errno));
            if (pfd >= 0)
                close(pfd);
            break;
        }
        close(pfd);
        plen = slash ? (size_t)(slash - path) : 0;
        path[plen] = 0;
    }
    close(top);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = cl_err_set(err, CL_EIO, "remove %.200s: %s", name, strerror(errno));
    return rc;
}

int cl_image_rmtree(int dirfd, const char *name, struct cl_err *err)
{
    return rmtree_at(dirfd, name, err);
}

/* ---- layer start (flat mode) ---- */

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

#define PROBE ".cloister-layer-probe"

static int probe_ctime(int rootfd, int64_t *out, struct cl_err *err)
{
    int fd = openat(rootfd, PROBE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "layer start probe: %s", strerror(errno));
    struct stat st;
    int r = fstat(fd, &st);
    int e = errno;
    close(fd);
    unlinkat(rootfd, PROBE, 0);
    if (r < 0)
        return cl_err_set(err, CL_EIO, "layer start probe: %s", strerror(e));
    *out = ts_ns(&st.st_ctim);
    return 0;
}

int cl_image_unpack_layer_start(int rootfd, int64_t *start, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    /* Two probes until the file system's own ctime moves: everything written before the
     * first is at most its ctime, everything written after the second at least the second's
     * (whatever the file system's timestamp granularity). */
    int64_t first = 0, now = 0;
    int rc = probe_ctime(rootfd, &first, err);
    for (int i = 0; rc == 0 && i < 4000; i++) {
        if ((rc = probe_ctime(rootfd, &now, err)) < 0)
            break;
        if (now > first) {
            *start = now;
            return 0;
        }
        struct timespec nap = {0, 500000};
        nanosleep(&nap, NULL);
    }
    return rc < 0 ? rc
                  : cl_err_set(err, CL_EIO, "layer start: the file system clock does not move");
}

/* ---- the unpacker ---- */

struct dirtime {
    uint32_t off; /* into dt_paths */
    int64_t sec;
    uint32_t nsec;
};

struct unpacker {
    int rootfd;
    const struct cl_image_unpack_opts *o;
    struct cl_image_unpack_stats *st;
    struct cl_image_tar *tar;
    uint8_t *buf;
    char cache_path[CL_IMAGE_MAX_PATH + 1];
    int cache_fd; /* -1 when empty */
    struct dirtime *dt;
    size_t ndt;
    char *dt_paths;
    size_t dt_len;
    bool dt_full;
    char path[CL_IMAGE_MAX_PATH + 1]; /* cleaned entry path */
    char link[CL_IMAGE_MAX_PATH + 1]; /* cleaned hard link target */
};

/* Drops "/", "." and empty components; refuses "..". out may be "" (the root). */
static int clean_path(const char *in, char *out, const char *what, struct cl_err *err)
{
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            p += n;
            continue;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return cl_err_stage(err, CL_EPARSE, "unpack", "%s '%.200s': '..' is not allowed", what,
                                in);
        if (o + (o ? 1 : 0) + n > CL_IMAGE_MAX_PATH)
            return cl_err_stage(err, CL_ELIMIT, "unpack", "%s: longer than %d bytes", what,
                                CL_IMAGE_MAX_PATH);
        if (o)
            out[o++] = '/';
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = 0;
    return 0;
}

static void cache_drop(struct unpacker *u)
{
    if (u->cache_fd >= 0)
        close(u->cache_fd);
    u->cache_fd = -1;
    u->cache_path[0] = 0;
}

static void cache_set(struct unpacker *u, const char *path, int fd)
{
    cache_drop(u);
    size_t n = strlen(path);
    memcpy(u->cache_path, path, n + 1);
    u->cache_fd = fd;
}

/* Lexically resolves a symlink target inside the root: absolute targets start at the root,
 * relative ones at `base`; ".." stops at the root (as RESOLVE_IN_ROOT does). */
static int resolve_lexical(const char *base, const char *target, char *out, struct cl_err *err)
{
    char work[2 * CL_IMAGE_MAX_PATH + 2];
    int n = snprintf(work, sizeof work, "%s/%s", target[0] == '/' ? "" : base, target);
    if (n < 0 || (size_t)n >= sizeof work)
        return cl_err_stage(err, CL_ELIMIT, "unpack", "symlink target too long");
    size_t o = 0;
    for (char *save = NULL, *c = strtok_r(work, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        size_t cl = strlen(c);
        if (o + 1 + cl > CL_IMAGE_MAX_PATH)
            return cl_err_stage(err, CL_ELIMIT, "unpack", "symlink target too long");
        if (o)
            out[o++] = '/';
        memcpy(out + o, c, cl);
        o += cl;
    }
    out[o] = 0;
    return 0;
}

#define MAX_SYMLINK_DEPTH 16

/* Creates the missing directories of `dir` (0755, owned by the unpacker), one component at a
 * time, each looked up inside the root. A component that is a dangling symlink gets its
 * target created instead (inside the root), as securejoin's MkdirAll does. */
static int mkdir_parents(struct unpacker *u, const char *dir, int depth, struct cl_err *err)
{
    if (depth > MAX_SYMLINK_DEPTH)
        return cl_err_stage(err, CL_EPARSE, "unpack", "'%.200s': too many levels of symlinks", dir);
    char prefix[CL_IMAGE_MAX_PATH + 1];
    size_t n = strlen(dir);
    for (size_t i = 0; i <= n; i++) {
        if (dir[i] != '/' && dir[i] != 0)
            continue;
        memcpy(prefix, dir, i);
        prefix[i] = 0;
        int fd = cl_image_openat_in_root(u->rootfd, prefix, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0) {
            close(fd);
            continue;
        }
        if (errno != ENOENT)
            return cl_err_stage(err, CL_EPARSE, "unpack", "'%.200s' is not a directory: %s", prefix,
                                strerror(errno));
        char *slash = strrchr(prefix, '/');
        const char *leaf = slash ? slash + 1 : prefix;
        int pfd = u->rootfd;
        if (slash) {
            *slash = 0;
            pfd = cl_image_openat_in_root(u->rootfd, prefix, O_PATH | O_DIRECTORY, 0);
            if (pfd < 0)
                return cl_err_stage(err, CL_EIO, "unpack", "open '%.200s': %s", prefix,
                                    strerror(errno));
        }
        int rc = 0;
        if (mkdirat(pfd, leaf, 0755) < 0) {
            char target[CL_IMAGE_MAX_PATH + 1];
            ssize_t tl = errno == EEXIST ? readlinkat(pfd, leaf, target, sizeof target - 1) : -1;
            if (tl < 0) {
                rc = errno == EINVAL || errno == EEXIST
                         ? cl_err_stage(err, CL_EPARSE, "unpack",
                                        "'%.200s' exists but is not a directory", dir)
                         : cl_err_stage(err, CL_EIO, "unpack", "mkdir '%.200s': %s", dir,
                                        strerror(errno));
            } else {
                target[tl] = 0;
                char resolved[CL_IMAGE_MAX_PATH + 1];
                rc = resolve_lexical(slash ? prefix : "", target, resolved, err);
                if (rc == 0 && resolved[0])
                    rc = mkdir_parents(u, resolved, depth + 1, err);
            }
        }
        if (slash) {
            close(pfd);
            *slash = '/';
        }
        if (rc < 0)
            return rc;
        fd = cl_image_openat_in_root(u->rootfd, prefix, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
            return cl_err_stage(err, CL_EPARSE, "unpack", "'%.200s' is not a directory: %s", prefix,
                                strerror(errno));
        close(fd);
    }
    return 0;
}

/* Returns a directory fd for `dir` (borrowed from the cache: do not close). */
static int open_parent(struct unpacker *u, const char *dir, int *out, struct cl_err *err)
{
    /* The cache only ever serves entries of the same parent as the entry before, which
     * change names inside it and never above it; any other parent replaces (or, for the
     * root, drops) it, since that entry may change what the cached path resolves to. */
    if (!*dir) {
        cache_drop(u);
        *out = u->rootfd;
        return 0;
    }
    if (u->cache_fd >= 0 && strcmp(u->cache_path, dir) == 0) {
        *out = u->cache_fd;
        return 0;
    }
    int fd = cl_image_openat_in_root(u->rootfd, dir, O_PATH | O_DIRECTORY, 0);
    if (fd < 0 && errno == ENOENT) {
        int rc = mkdir_parents(u, dir, 0, err);
        if (rc < 0)
            return rc;
        fd = cl_image_openat_in_root(u->rootfd, dir, O_PATH | O_DIRECTORY, 0);
    }
    if (fd < 0)
        return cl_err_stage(err, errno == ENOTDIR || errno == ELOOP ? CL_EPARSE : CL_EIO, "unpack",
                            "open directory '%.200s': %s", dir, strerror(errno));
    cache_set(u, dir, fd);
    *out = fd;
    return 0;
}

/* Makes room for a new entry called name in pfd: a directory stays when a directory is
 * wanted (returns 1), anything else is removed. */
static int clear_slot(int pfd, const char *name, bool want_dir, struct cl_err *err)
{
    struct stat st;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT
                   ? 0
                   : cl_err_set(err, CL_EIO, "stat '%.200s': %s", name, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (want_dir)
            return 1;
        return rmtree_at(pfd, name, err);
    }
    if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
        return cl_err_set(err, CL_EIO, "remove '%.200s': %s", name, strerror(errno));
    return 0;
}

static bool xattr_allowed(const char *name)
{
    /* trusted.* (overlay metadata among it) and system.* would let a layer rewrite how
     * the tree is mounted or who may read it: dropped */
    return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0;
}

static int apply_meta_fd(struct unpacker *u, int fd, const struct cl_image_tar_entry *e,
                         struct cl_err *err)
{
    if (u->o->same_owner && fchown(fd, (uid_t)e->uid, (gid_t)e->gid) < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "chown '%.200s': %s", u->path, strerror(errno));
    if (fchmod(fd, e->mode) < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "chmod '%.200s': %s", u->path, strerror(errno));
    for (size_t i = 0; i < e->nxattrs; i++) {
        if (!xattr_allowed(e->xattrs[i].name))
            continue;
        if (fsetxattr(fd, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len, 0) < 0 &&
            errno != ENOTSUP && errno != EPERM)
            return cl_err_stage(err, CL_EIO, "unpack", "setxattr %.64s on '%.200s': %s",
                                e->xattrs[i].name, u->path, strerror(errno));
    }
    return 0;
}

static void entry_times(const struct cl_image_tar_entry *e, struct timespec ts[2])
{
    ts[0].tv_sec = ts[1].tv_sec = e->mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = e->mtime_nsec;
}

static int do_file(struct unpacker *u, int pfd, const char *name,
                   const struct cl_image_tar_entry *e, struct cl_err *err)
{
    int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        int rc = clear_slot(pfd, name, false, err);
        if (rc < 0)
            return rc;
        fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "create '%.200s': %s", u->path, strerror(errno));
    int rc = 0;
    for (;;) {
        size_t got = 0;
        if ((rc = cl_image_tar_read(u->tar, u->buf, DATA_BUF, &got, err)) < 0)
            break;
        if (got == 0)
            break;
        if (cl_write_all(fd, u->buf, got) < 0) {
            rc =
                cl_err_stage(err, CL_EIO, "unpack", "write '%.200s': %s", u->path, strerror(errno));
            break;
        }
        u->st->bytes += got;
    }
    if (rc == 0)
        rc = apply_meta_fd(u, fd, e, err);
    if (rc == 0) {
        struct timespec ts[2];
        entry_times(e, ts);
        if (futimens(fd, ts) < 0)
            rc = cl_err_stage(err, CL_EIO, "unpack", "utimens '%.200s': %s", u->path,
                              strerror(errno));
    }
    close(fd);
    if (rc == 0)
        u->st->files++;
    return rc;
}

static void record_dir_time(struct unpacker *u, const struct cl_image_tar_entry *e)
{
    size_t n = strlen(u->path) + 1;
    if (u->dt_full || u->ndt >= CL_IMAGE_MAX_DIR_TIMES || n > DIR_TIMES_BYTES - u->dt_len) {
        if (!u->dt_full)
            cl_warn("unpack: more than %d directories or %u bytes of their paths; later directory "
                    "mtimes are "
                    "not restored",
                    CL_IMAGE_MAX_DIR_TIMES, DIR_TIMES_BYTES);
        u->dt_full = true;
        return;
    }
    if (!u->dt) {
        u->dt = malloc(CL_IMAGE_MAX_DIR_TIMES * sizeof *u->dt);
        u->dt_paths = malloc(DIR_TIMES_BYTES);
        if (!u->dt || !u->dt_paths) {
            u->dt_full = true;
            return;
        }
    }
    memcpy(u->dt_paths + u->dt_len, u->path, n);
    u->dt[u->ndt].off = (uint32_t)u->dt_len;
    u->dt[u->ndt].sec = e->mtime;
    u->dt[u->ndt].nsec = e->mtime_nsec;
    u->ndt++;
    u->dt_len += n;
}

static int set_opaque(struct unpacker *u, int dfd, struct cl_err *err);

static int do_dir(struct unpacker *u, int pfd, const char *name, const struct cl_image_tar_entry *e,
                  struct cl_err *err)
{
    int fd;
    bool opaque = false;
    if (!*name) {
        /* the root entry ("./"): its attributes only */
        fd = openat(u->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        if (mkdirat(pfd, name, 0700) < 0) {
            if (errno != EEXIST)
                return cl_err_stage(err, CL_EIO, "unpack", "mkdir '%.200s': %s", u->path,
                                    strerror(errno));
            struct stat st;
            if (u->o->whiteouts == CL_IMAGE_WH_OVERLAY &&
                fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
                st.st_rdev == makedev(0, 0))
                opaque = true; /* this layer whited the name out, then made it a directory */
            int rc = clear_slot(pfd, name, true, err);
            if (rc < 0)
                return rc;
            if (rc == 0 && mkdirat(pfd, name, 0700) < 0)
                return cl_err_stage(err, CL_EIO, "unpack", "mkdir '%.200s': %s", u->path,
                                    strerror(errno));
        }
        fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "open '%.200s': %s", u->path, strerror(errno));
    int rc = apply_meta_fd(u, fd, e, err);
    if (rc == 0 && opaque)
        rc = set_opaque(u, fd, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    record_dir_time(u, e);
    u->st->dirs++;
    if (*name)
        cache_set(u, u->path, fd); /* its children usually come next */
    else
        close(fd);
    return 0;
}

static int meta_at(struct unpacker *u, int pfd, const char *name,
                   const struct cl_image_tar_entry *e, bool chmod_too, struct cl_err *err)
{
    if (u->o->same_owner &&
        fchownat(pfd, name, (uid_t)e->uid, (gid_t)e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "chown '%.200s': %s", u->path, strerror(errno));
    if (chmod_too && fchmodat(pfd, name, e->mode, 0) < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "chmod '%.200s': %s", u->path, strerror(errno));
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "utimens '%.200s': %s", u->path,
                            strerror(errno));
    return 0;
}

static int do_symlink(struct unpacker *u, int pfd, const char *name,
                      const struct cl_image_tar_entry *e, struct cl_err *err)
{
    if (!e->link[0])
        return cl_err_stage(err, CL_EPARSE, "unpack", "symlink '%.200s' has an empty target",
                            u->path);
    if (symlinkat(e->link, pfd, name) < 0) {
        if (errno != EEXIST)
            return cl_err_stage(err, CL_EIO, "unpack", "symlink '%.200s': %s", u->path,
                                strerror(errno));
        int rc = clear_slot(pfd, name, false, err);
        if (rc < 0)
            return rc;
        if (symlinkat(e->link, pfd, name) < 0)
            return cl_err_stage(err, CL_EIO, "unpack", "symlink '%.200s': %s", u->path,
                                strerror(errno));
    }
    u->st->symlinks++;
    return meta_at(u, pfd, name, e, false, err);
}

static int do_hardlink(struct unpacker *u, int pfd, const char *name,
                       const struct cl_image_tar_entry *e, struct cl_err *err)
{
    int rc = clean_path(e->link, u->link, "hard link target", err);
    if (rc < 0)
        return rc;
    if (!u->link[0])
        return cl_err_stage(err, CL_EPARSE, "unpack", "hard link '%.200s' points at the root",
                            u->path);
    if (strcmp(u->link, u->path) == 0)
        return 0;
    char *slash = strrchr(u->link, '/');
    const char *tname = slash ? slash + 1 : u->link;
    int tpfd = u->rootfd;
    if (slash) {
        *slash = 0;
        tpfd = cl_image_openat_in_root(u->rootfd, u->link, O_PATH | O_DIRECTORY, 0);
        *slash = '/';
        if (tpfd < 0)
            return cl_err_stage(err, CL_ENOTFOUND, "unpack",
                                "hard link '%.200s': target '%.200s': %s", u->path, u->link,
                                strerror(errno));
    }
    int lr = linkat(tpfd, tname, pfd, name, 0);
    if (lr < 0 && errno == EEXIST) {
        if ((rc = clear_slot(pfd, name, false, err)) < 0)
            goto out;
        lr = linkat(tpfd, tname, pfd, name, 0);
    }
    if (lr < 0)
        rc = cl_err_stage(err, errno == ENOENT ? CL_ENOTFOUND : CL_EIO, "unpack",
                          "hard link '%.200s' -> '%.200s': %s", u->path, u->link, strerror(errno));
    else
        u->st->hardlinks++;
out:
    if (tpfd != u->rootfd)
        close(tpfd);
    return rc;
}

static int do_node(struct unpacker *u, int pfd, const char *name,
                   const struct cl_image_tar_entry *e, struct cl_err *err)
{
    mode_t type;
    dev_t dev = 0;
    if (e->type == CL_TAR_FIFO) {
        type = S_IFIFO;
    } else {
        if (!u->o->allow_devices) {
            cl_debug("unpack: device node '%.200s' skipped", u->path);
            u->st->skipped_devices++;
            return 0;
        }
        type = e->type == CL_TAR_CHR ? S_IFCHR : S_IFBLK;
        dev = makedev(e->devmajor, e->devminor);
    }
    if (mknodat(pfd, name, type | (e->mode & 0777), dev) < 0) {
        if (errno != EEXIST)
            return cl_err_stage(err, CL_EIO, "unpack", "mknod '%.200s': %s", u->path,
                                strerror(errno));
        int rc = clear_slot(pfd, name, false, err);
        if (rc < 0)
            return rc;
        if (mknodat(pfd, name, type | (e->mode & 0777), dev) < 0)
            return cl_err_stage(err, CL_EIO, "unpack", "mknod '%.200s': %s", u->path,
                                strerror(errno));
    }
    return meta_at(u, pfd, name, e, true, err);
}

/* ---- whiteouts ---- */

/* Flat mode, opaque directory: what lower layers left below dirfd goes, what this layer
 * wrote (changed at or after layer_start) stays; directories this layer touched are
 * searched the same way. */
static int opaque_clear(int dirfd, int64_t start, int depth, struct cl_err *err)
{
    if (depth > OPAQUE_MAX_DEPTH)
        return cl_err_stage(err, CL_ELIMIT, "unpack", "opaque directory deeper than %d levels",
                            OPAQUE_MAX_DEPTH);
    int dfd = dup(dirfd);
    if (dfd < 0)
        return cl_err_set(err, CL_EIO, "dup: %s", strerror(errno));
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return cl_err_set(err, CL_EIO, "opendir: %s", strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (ts_ns(&st.st_ctim) < start) {
            rc = rmtree_at(dirfd, de->d_name, err);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = cl_err_set(err, CL_EIO, "open '%.200s': %s", de->d_name, strerror(errno));
                break;
            }
            rc = opaque_clear(sub, start, depth + 1, err);
            close(sub);
        }
    }
    closedir(d);
    return rc;
}

static int set_opaque(struct unpacker *u, int dfd, struct cl_err *err)
{
    if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) == 0)
        return 0;
    /* unprivileged: the overlay must then be mounted with userxattr */
    if (fsetxattr(dfd, "user.overlay.opaque", "y", 1, 0) < 0)
        return cl_err_stage(err, CL_EIO, "unpack", "opaque marker on '%.200s': %s", u->path,
                            strerror(errno));
    u->st->userxattr = true;
    return 0;
}

static int do_whiteout(struct unpacker *u, const char *dir, int pfd, const char *name,
                       struct cl_err *err)
{
    int rc;
    if (strcmp(name, WH_OPAQUE) == 0) {
        int dfd = *dir ? cl_image_openat_in_root(u->rootfd, dir, O_RDONLY | O_DIRECTORY, 0)
                       : openat(u->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return cl_err_stage(err, CL_EIO, "unpack", "open '%.200s': %s", dir, strerror(errno));
        if (u->o->whiteouts == CL_IMAGE_WH_OVERLAY) {
            rc = set_opaque(u, dfd, err);
        } else {
            rc = opaque_clear(dfd, u->o->layer_start_ns, 0, err);
        }
        close(dfd);
        u->st->whiteouts++;
        return rc;
    }
    const char *target = name + strlen(WH_PREFIX);
    if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
        return cl_err_stage(err, CL_EPARSE, "unpack", "whiteout '%.200s' names no entry", u->path);
    if (strncmp(target, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
        /* AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image */
        return 0;
    }
    u->st->whiteouts++;
    /* A whiteout hides what lower layers hold; what this layer wrote under the same name
     * stays (OCI image spec, "whiteouts"). */
    struct stat st;
    bool exists = fstatat(pfd, target, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!exists && errno != ENOENT)
        return cl_err_stage(err, CL_EIO, "unpack", "stat '%.200s': %s", u->path, strerror(errno));
    if (u->o->whiteouts == CL_IMAGE_WH_APPLY) {
        if (!exists)
            return 0;
        if (ts_ns(&st.st_ctim) < u->o->layer_start_ns)
            return rmtree_at(pfd, target, err);
        if (!S_ISDIR(st.st_mode))
            return 0;
        int dfd = openat(pfd, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            return cl_err_stage(err, CL_EIO, "unpack", "open '%.200s': %s", u->path,
                                strerror(errno));
        rc = opaque_clear(dfd, u->o->layer_start_ns, 0, err);
        close(dfd);
        return rc;
    }
    if (exists && S_ISDIR(st.st_mode)) {
        /* this layer's own directory: it hides the lower one as an opaque directory */
        int dfd = openat(pfd, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            return cl_err_stage(err, CL_EIO, "unpack", "open '%.200s': %s", u->path,
                                strerror(errno));
        rc = set_opaque(u, dfd, err);
        close(dfd);
        return rc;
    }
    if (exists)
        return 0;
    if (mknodat(pfd, target, S_IFCHR | 0000, makedev(0, 0)) < 0)
        return cl_err_stage(err, CL_EIO, "unpack",
                            "whiteout '%.200s': mknod: %s (overlay whiteouts need CAP_MKNOD; the "
                            "flat mode does not)",
                            u->path, strerror(errno));
    return 0;
}

/* ---- one entry ---- */

static int do_entry(struct unpacker *u, const struct cl_image_tar_entry *e, struct cl_err *err)
{
    int rc = clean_path(e->path, u->path, "entry path", err);
    if (rc < 0)
        return rc;
    if (!u->path[0]) {
        if (e->type != CL_TAR_DIR)
            return cl_err_stage(err, CL_EPARSE, "unpack",
                                "entry '%.200s' names the root but is not a directory", e->path);
        return do_dir(u, u->rootfd, "", e, err);
    }
    char dir[CL_IMAGE_MAX_PATH + 1];
    char *slash = strrchr(u->path, '/');
    const char *name = slash ? slash + 1 : u->path;
    size_t dl = slash ? (size_t)(slash - u->path) : 0;
    memcpy(dir, u->path, dl);
    dir[dl] = 0;
    int pfd = -1;
    if ((rc = open_parent(u, dir, &pfd, err)) < 0)
        return rc;
    if (strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0)
        return do_whiteout(u, dir, pfd, name, err);
    switch (e->type) {
    case CL_TAR_REG:
        return do_file(u, pfd, name, e, err);
    case CL_TAR_DIR:
        return do_dir(u, pfd, name, e, err);
    case CL_TAR_SYMLINK:
        return do_symlink(u, pfd, name, e, err);
    case CL_TAR_LINK:
        return do_hardlink(u, pfd, name, e, err);
    case CL_TAR_CHR:
    case CL_TAR_BLK:
    case CL_TAR_FIFO:
        return do_node(u, pfd, name, e, err);
    }
    return cl_err_stage(err, CL_EPARSE, "unpack", "entry '%.200s': unknown type", u->path);
}

static void restore_dir_times(struct unpacker *u)
{
    cache_drop(u);
    for (size_t i = u->ndt; i-- > 0;) {
        const char *p = u->dt_paths + u->dt[i].off;
        struct timespec ts[2] = {{u->dt[i].sec, u->dt[i].nsec}, {u->dt[i].sec, u->dt[i].nsec}};
        if (!*p) {
            int fd = openat(u->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) {
                futimens(fd, ts);
                close(fd);
            }
            continue;
        }
        const char *slash = strrchr(p, '/');
        char dir[CL_IMAGE_MAX_PATH + 1];
        size_t dl = slash ? (size_t)(slash - p) : 0;
        memcpy(dir, p, dl);
        dir[dl] = 0;
        int pfd =
            dl ? cl_image_openat_in_root(u->rootfd, dir, O_PATH | O_DIRECTORY, 0) : dup(u->rootfd);
        if (pfd < 0)
            continue;
        utimensat(pfd, slash ? slash + 1 : p, ts, AT_SYMLINK_NOFOLLOW);
        close(pfd);
    }
}

int cl_image_unpack(int rootfd, struct cl_image_src *src, const struct cl_image_unpack_opts *opts,
                    struct cl_image_unpack_stats *stats, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct cl_image_unpack_opts defaults = {0};
    struct cl_image_unpack_stats scratch = {0};
    struct unpacker *u = calloc(1, sizeof *u);
    if (!u)
        return cl_err_set(err, CL_ENOMEM, "unpack: out of memory");
    u->rootfd = rootfd;
    u->o = opts ? opts : &defaults;
    u->st = stats ? stats : &scratch;
    u->cache_fd = -1;
    u->buf = malloc(DATA_BUF);
    u->tar = cl_image_tar_new(src, err);
    int rc = 0;
    if (!u->buf || !u->tar) {
        rc = u->tar ? cl_err_set(err, CL_ENOMEM, "unpack: out of memory")
                    : (err ? err->code : CL_ENOMEM);
        goto out;
    }
    uint64_t max_entries = u->o->max_entries ? u->o->max_entries : CL_IMAGE_DEFAULT_MAX_ENTRIES;
    for (;;) {
        struct cl_image_tar_entry *e = NULL;
        rc = cl_image_tar_next(u->tar, &e, err);
        if (rc <= 0)
            break;
        if (++u->st->entries > max_entries) {
            rc = cl_err_stage(err, CL_ELIMIT, "unpack", "layer has more than %llu entries",
                              (unsigned long long)max_entries);
            break;
        }
        if ((rc = do_entry(u, e, err)) < 0)
            break;
    }
    if (rc == 0)
        restore_dir_times(u);
out:
    cache_drop(u);
    cl_image_tar_free(u->tar);
    free(u->buf);
    free(u->dt);
    free(u->dt_paths);
    free(u);
    return rc;
}
