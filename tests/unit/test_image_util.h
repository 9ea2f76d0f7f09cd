/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the image unit tests: temporary folders, an in-memory tar writer (ustar,
 * pax and GNU headers, and raw blocks for broken archives), gzip and zstd compression.
 * Included by one test program at a time (static functions only).
 */
#ifndef TEST_IMAGE_UTIL_H
#define TEST_IMAGE_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "image/image_int.h"

CL_UNUSED static char *tu_tmpdir(const char *tag)
{
    const char *t = getenv("TMPDIR");
    char *d = cl_strdupf("%s/cl-img-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

CL_UNUSED static void tu_rmdir(char *d)
{
    if (!d)
        return;
    char *slash = strrchr(d, '/');
    *slash = 0;
    int fd = open(*d ? d : "/", O_PATH | O_DIRECTORY);
    *slash = '/';
    assert_true(fd >= 0);
    struct cl_err e = {0};
    int rc = cl_image_rmtree(fd, slash + 1, &e);
    if (rc < 0)
        fail_msg("rmtree %s: %s", d, e.msg);
    close(fd);
    free(d);
}

CL_UNUSED static cl_bytes *tu_read(const char *dir, const char *rel, size_t *len)
{
    char *p = cl_strdupf("%s/%s", dir, rel);
    cl_bytes *b = cl_file_read(p, 1u << 30, len, NULL);
    free(p);
    return b;
}

CL_UNUSED static bool tu_exists(const char *dir, const char *rel)
{
    char *p = cl_strdupf("%s/%s", dir, rel);
    struct stat st;
    bool r = lstat(p, &st) == 0;
    free(p);
    return r;
}

CL_UNUSED static struct stat tu_lstat(const char *dir, const char *rel)
{
    char *p = cl_strdupf("%s/%s", dir, rel);
    struct stat st;
    memset(&st, 0, sizeof st);
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    return st;
}

/* ---- tar writer ---- */

struct tarb {
    uint8_t *buf;
    size_t len, cap;
};

CL_UNUSED static void tb_put(struct tarb *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        size_t nc = t->cap ? t->cap : 4096;
        while (nc < t->len + n)
            nc *= 2;
        t->buf = realloc(t->buf, nc);
        assert_non_null(t->buf);
        t->cap = nc;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

CL_UNUSED static void tb_pad(struct tarb *t)
{
    static const uint8_t zero[512];
    size_t r = t->len % 512;
    if (r)
        tb_put(t, zero, 512 - r);
}

CL_UNUSED static void tb_checksum(uint8_t *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* A ustar header; name must fit 100 bytes (use tb_pax / tb_gnu_long before for longer). */
CL_UNUSED static void tb_header(uint8_t h[512], const char *name, char type, unsigned mode,
                                uint64_t size, const char *link, unsigned uid, unsigned gid)
{
    memset(h, 0, 512);
    strncpy((char *)h, name, 100);
    snprintf((char *)h + 100, 8, "%07o", mode);
    snprintf((char *)h + 108, 8, "%07o", uid);
    snprintf((char *)h + 116, 8, "%07o", gid);
    char num[32];
    snprintf(num, sizeof num, "%011llo", (unsigned long long)(size & 077777777777ull));
    memcpy(h + 124, num, 12);
    snprintf((char *)h + 136, 12, "%011o", 1700000000u);
    h[156] = (uint8_t)type;
    if (link)
        strncpy((char *)h + 157, link, 100);
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    tb_checksum(h);
}

CL_UNUSED static void tb_entry(struct tarb *t, const char *name, char type, unsigned mode,
                               const void *data, size_t len, const char *link)
{
    uint8_t h[512];
    tb_header(h, name, type, mode, type == '0' ? len : 0, link, 0, 0);
    tb_put(t, h, 512);
    if (type == '0' && len) {
        tb_put(t, data, len);
        tb_pad(t);
    }
}

CL_UNUSED static void tb_file(struct tarb *t, const char *name, const char *text)
{
    tb_entry(t, name, '0', 0644, text, strlen(text), NULL);
}
CL_UNUSED static void tb_dir(struct tarb *t, const char *name)
{
    tb_entry(t, name, '5', 0755, NULL, 0, NULL);
}

/* A pax 'x' header carrying the given records ("key=value" each). */
CL_UNUSED static void tb_pax(struct tarb *t, const char *const *kv, size_t n)
{
    char recs[8192];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t body = strlen(kv[i]) + 2; /* ' ' and '\n' */
        size_t len = body + 1;
        while (snprintf(NULL, 0, "%zu", len) + body != len)
            len++;
        off += (size_t)snprintf(recs + off, sizeof recs - off, "%zu %s\n", len, kv[i]);
    }
    uint8_t h[512];
    tb_header(h, "PaxHeader", 'x', 0644, off, NULL, 0, 0);
    tb_put(t, h, 512);
    tb_put(t, recs, off);
    tb_pad(t);
}

/* A GNU 'L' (long name) or 'K' (long link) header. */
CL_UNUSED static void tb_gnu_long(struct tarb *t, char type, const char *name)
{
    uint8_t h[512];
    tb_header(h, "././@LongLink", type, 0644, strlen(name) + 1, NULL, 0, 0);
    tb_put(t, h, 512);
    tb_put(t, name, strlen(name) + 1);
    tb_pad(t);
}

CL_UNUSED static void tb_end(struct tarb *t)
{
    static const uint8_t zero[1024];
    tb_put(t, zero, sizeof zero);
}

/* ---- compression ---- */

CL_UNUSED static cl_bytes *tu_gzip(const void *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len) + 64;
    cl_bytes *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

CL_UNUSED static cl_bytes *tu_zstd(const void *in, size_t len, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    cl_bytes *out = malloc(cap);
    size_t n = ZSTD_compress(out, cap, in, len, 3);
    assert_false(ZSTD_isError(n));
    *out_len = n;
    return out;
}

#endif
