/* SPDX-License-Identifier: Apache-2.0 */
/* File helpers: bounded whole-file read, atomic write (tmp + fsync + rename + dir fsync). */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cl_bytes *cl_file_read(const char *path, size_t max, size_t *outlen, struct cl_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cl_err_set(err, errno == ENOENT ? CL_ENOTFOUND : CL_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        cl_err_set(err, CL_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                free(buf);
                close(fd);
                cl_err_set(err, CL_ELIMIT, "%s: larger than %zu bytes", path, max);
                return NULL;
            }
            size_t ncap = cap * 2;
            uint8_t *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                cl_err_set(err, CL_ENOMEM, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cl_err_set(err, CL_EIO, "%s: read: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len > max) {
        free(buf);
        cl_err_set(err, CL_ELIMIT, "%s: larger than %zu bytes", path, max);
        return NULL;
    }
    buf[len] = 0;
    if (outlen)
        *outlen = len;
    return buf;
}

int cl_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0)
            errno = EIO;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cl_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         struct cl_err *err)
{
    char *dcopy = strdup(path);
    char *tmp = cl_strdupf("%s.tmp.XXXXXX", path);
    int rc = 0, fd = -1;
    if (!dcopy || !tmp) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = cl_err_set(err, CL_EIO, "%s: create temporary: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, (mode_t)mode) < 0 || cl_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        rc = cl_err_set(err, CL_EIO, "%s: write: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = cl_err_set(err, CL_EIO, "%s: close: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = cl_err_set(err, CL_EIO, "%s: rename: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0)
            rc = cl_err_set(err, CL_EIO, "%s: fsync folder: %s", path, strerror(errno));
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(dcopy);
    return rc;
}

int cl_mkdir_p(const char *path, unsigned mode, struct cl_err *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return cl_err_set(err, CL_EINVAL, "mkdir: bad path length");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
            return cl_err_set(err, CL_EIO, "mkdir %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    return 0;
}
