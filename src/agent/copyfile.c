/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CopyFile: the host pushes files, folders and symlinks into the shared folder
 * (run_dir/shared/containers), and nowhere else. The path is checked as text first (absolute,
 * beneath the folder, no empty, "." or ".." part), then walked one component at a time from
 * a descriptor of the folder with O_NOFOLLOW, so a symlink the host planted earlier cannot
 * lead a later write out of the folder.
 */
#include "rt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cl_agent_copy_path_check(const char *root, const char *path, const char **rel,
                             struct cl_err *err)
{
    size_t rl = strlen(root), pl = path ? strlen(path) : 0;
    if (pl == 0 || pl >= PATH_MAX)
        return cl_err_set(err, CL_EINVAL, "CopyFile path: empty or longer than %d bytes",
                          PATH_MAX - 1);
    if (path[0] != '/')
        return cl_err_set(err, CL_EDENIED, "CopyFile path '%.200s' is not absolute", path);
    if (strncmp(path, root, rl) != 0 || path[rl] != '/' || path[rl + 1] == 0)
        return cl_err_set(err, CL_EDENIED, "CopyFile path '%.200s' is not beneath %s", path, root);
    const char *r = path + rl + 1;
    for (const char *s = r;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return cl_err_set(err, CL_EDENIED,
                              "CopyFile path '%.200s': empty, '.' or '..' component", path);
        if (n > NAME_MAX)
            return cl_err_set(err, CL_EINVAL,
                              "CopyFile path '%.200s': a component is longer than %d", path,
                              NAME_MAX);
        if (!e)
            break;
        s = e + 1;
    }
    *rel = r;
    return 0;
}

/* Opens (creating with mode) every folder of rel but the last component; returns the parent
 * folder's fd and points *base at the last component (in buf). */
static int open_parent(int rootfd, char *buf, unsigned mode, const char **base, struct cl_err *err)
{
    int cur = dup(rootfd);
    if (cur < 0)
        return cl_err_set(err, CL_EIO, "dup: %s", strerror(errno));
    char *s = buf;
    for (char *e; (e = strchr(s, '/')); s = e + 1) {
        *e = 0;
        if (mkdirat(cur, s, mode) < 0 && errno != EEXIST) {
            int er = errno;
            close(cur);
            return cl_err_set(err, CL_EIO, "CopyFile: mkdir '%s': %s", s, strerror(er));
        }
        int nfd = openat(cur, s, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int er = errno;
        close(cur);
        if (nfd < 0)
            return cl_err_set(err, er == ELOOP || er == ENOTDIR ? CL_EDENIED : CL_EIO,
                              "CopyFile: '%s' is not a folder (symlinks are not followed): %s", s,
                              strerror(er));
        cur = nfd;
    }
    *base = s;
    return cur;
}

static int set_owner(int dirfd, const char *base, const struct cl_agent_copy *c, struct cl_err *err)
{
    if (c->uid < 0 && c->gid < 0)
        return 0;
    if (fchownat(dirfd, base, (uid_t)c->uid, (gid_t)c->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return cl_err_set(err, CL_EIO, "CopyFile: chown %s: %s", base, strerror(errno));
    return 0;
}

int cl_agent_rt_copy_file(struct cl_agent_rt *rt, const struct cl_agent_copy *c, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    const char *rel = NULL;
    if (cl_agent_copy_path_check(rt->shared_dir, c->path, &rel, err) < 0)
        return err->code;
    if (c->file_size < 0 || (uint64_t)c->file_size > CL_AGENT_MAX_COPY)
        return cl_err_set(err, CL_ELIMIT, "CopyFile file_size %lld out of 0..%llu",
                          (long long)c->file_size, (unsigned long long)CL_AGENT_MAX_COPY);
    uint32_t type = c->file_mode & S_IFMT;
    unsigned perm = c->file_mode & 07777, dperm = c->dir_mode & 07777 ? c->dir_mode & 07777 : 0755;
    int rootfd = open(rt->shared_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return cl_err_set(err, CL_EIO, "CopyFile: %s: %s", rt->shared_dir, strerror(errno));
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", rel);
    const char *base = NULL;
    int dfd = open_parent(rootfd, buf, dperm, &base, err);
    close(rootfd);
    if (dfd < 0)
        return dfd;
    int rc = 0;
    if (type == S_IFDIR) {
        struct stat st;
        if (mkdirat(dfd, base, perm) < 0 &&
            (errno != EEXIST || fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
             !S_ISDIR(st.st_mode)))
            rc = cl_err_set(err, CL_EIO, "CopyFile: mkdir %s: %s", c->path, strerror(errno));
        else if ((rc = set_owner(dfd, base, c, err)) == 0 && fchmodat(dfd, base, perm, 0) < 0)
            rc = cl_err_set(err, CL_EIO, "CopyFile: chmod %s: %s", c->path, strerror(errno));
    } else if (type == S_IFLNK) {
        char target[PATH_MAX];
        if (c->len == 0 || c->len >= sizeof target || memchr(c->data, 0, c->len)) {
            rc = cl_err_set(err, CL_EINVAL, "CopyFile: symlink target of %zu bytes (1..%d, no NUL)",
                            c->len, PATH_MAX - 1);
        } else {
            memcpy(target, c->data, c->len);
            target[c->len] = 0;
            struct stat st;
            if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
                (void)unlinkat(dfd, base, 0);
            if (symlinkat(target, dfd, base) < 0)
                rc = cl_err_set(err, CL_EIO, "CopyFile: symlink %s: %s", c->path, strerror(errno));
            else
                rc = set_owner(dfd, base, c, err);
        }
    } else if (type == S_IFREG) {
        if (c->offset < 0 || c->offset > c->file_size ||
            c->len > (uint64_t)(c->file_size - c->offset)) {
            rc = cl_err_set(err, CL_EINVAL,
                            "CopyFile: %zu bytes at offset %lld overrun file_size %lld", c->len,
                            (long long)c->offset, (long long)c->file_size);
        } else {
            int flags =
                O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (c->offset == 0 ? O_TRUNC : 0);
            int fd = openat(dfd, base, flags, perm);
            if (fd < 0) {
                rc = cl_err_set(err, errno == ELOOP ? CL_EDENIED : CL_EIO, "CopyFile: open %s: %s",
                                c->path, strerror(errno));
            } else {
                size_t off = 0;
                while (rc == 0 && off < c->len) {
                    ssize_t n =
                        pwrite(fd, c->data + off, c->len - off, (off_t)((size_t)c->offset + off));
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n <= 0)
                        rc = cl_err_set(err, CL_EIO, "CopyFile: write %s: %s", c->path,
                                        strerror(errno));
                    else
                        off += (size_t)n;
                }
                if (rc == 0 && (c->uid >= 0 || c->gid >= 0) &&
                    fchown(fd, (uid_t)c->uid, (gid_t)c->gid) < 0)
                    rc =
                        cl_err_set(err, CL_EIO, "CopyFile: chown %s: %s", c->path, strerror(errno));
                if (rc == 0 && fchmod(fd, perm) < 0)
                    rc =
                        cl_err_set(err, CL_EIO, "CopyFile: chmod %s: %s", c->path, strerror(errno));
                close(fd);
            }
        }
    } else {
        rc = cl_err_set(err, CL_EINVAL, "CopyFile: file_mode %#o is not a file, folder or symlink",
                        c->file_mode);
    }
    close(dfd);
    return rc;
}
