/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decompressing sources for layers: gzip (zlib, several members in a row, as pigz and some
 * registries write them), zstd (several frames) or none. Fixed buffers; the output is capped
 * so that a decompression bomb stops at the cap with ELIMIT instead of filling the disk.
 */
#include "image/image_int.h"

#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define IN_BUF (128u * 1024)

struct dsrc {
    struct cl_image_src src;
    struct cl_image_src *inner;
    enum cl_image_compression comp;
    uint64_t out_total, max_out;
    uint8_t *in;
    size_t in_len, in_off;
    bool in_eof;
    bool started;     /* magic checked */
    bool member_done; /* gzip/zstd: the last member/frame ended exactly */
    z_stream z;
    bool z_live;
    ZSTD_DStream *zs;
};

static int fill(struct dsrc *d, struct cl_err *err)
{
    if (d->in_off < d->in_len || d->in_eof)
        return 0;
    size_t got = 0;
    int rc = d->inner->read(d->inner, d->in, IN_BUF, &got, err);
    if (rc < 0)
        return rc;
    d->in_len = got;
    d->in_off = 0;
    if (got == 0)
        d->in_eof = true;
    return 0;
}

static int check_magic(struct dsrc *d, struct cl_err *err)
{
    /* the first bytes may arrive in pieces: gather at least 4 */
    while (d->in_len - d->in_off < 4 && !d->in_eof) {
        if (d->in_off > 0) {
            memmove(d->in, d->in + d->in_off, d->in_len - d->in_off);
            d->in_len -= d->in_off;
            d->in_off = 0;
        }
        size_t got = 0;
        int rc = d->inner->read(d->inner, d->in + d->in_len, IN_BUF - d->in_len, &got, err);
        if (rc < 0)
            return rc;
        if (got == 0)
            d->in_eof = true;
        d->in_len += got;
    }
    const uint8_t *p = d->in + d->in_off;
    size_t n = d->in_len - d->in_off;
    d->started = true;
    if (d->comp == CL_IMAGE_COMP_GZIP && !(n >= 2 && p[0] == 0x1f && p[1] == 0x8b))
        return cl_err_stage(err, CL_EPARSE, "decompress", "layer is not gzip (no 1f 8b magic)");
    if (d->comp == CL_IMAGE_COMP_ZSTD &&
        !(n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd))
        return cl_err_stage(err, CL_EPARSE, "decompress",
                            "layer is not zstd (no 28 b5 2f fd magic)");
    return 0;
}

static int gz_read(struct dsrc *d, uint8_t *buf, size_t cap, size_t *got, struct cl_err *err)
{
    d->z.next_out = buf;
    d->z.avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
    while (d->z.avail_out > 0) {
        int rc = fill(d, err);
        if (rc < 0)
            return rc;
        if (d->in_off == d->in_len) {
            if (d->member_done)
                break;
            return cl_err_stage(err, CL_EPARSE, "decompress", "gzip stream truncated");
        }
        if (d->member_done) {
            /* another member follows (or trailing zero padding, which gzip(1) tolerates) */
            if (d->in[d->in_off] == 0) {
                for (size_t i = d->in_off; i < d->in_len; i++)
                    if (d->in[i] != 0)
                        return cl_err_stage(err, CL_EPARSE, "decompress",
                                            "garbage after the gzip stream");
                d->in_off = d->in_len;
                continue;
            }
            if (inflateReset(&d->z) != Z_OK)
                return cl_err_stage(err, CL_EPARSE, "decompress", "gzip: reset failed");
            d->member_done = false;
        }
        d->z.next_in = d->in + d->in_off;
        d->z.avail_in = (uInt)(d->in_len - d->in_off);
        int zr = inflate(&d->z, Z_NO_FLUSH);
        d->in_off = d->in_len - d->z.avail_in;
        if (zr == Z_STREAM_END) {
            d->member_done = true;
        } else if (zr == Z_BUF_ERROR) {
            if (d->z.avail_out == 0)
                break;
            continue; /* needs more input */
        } else if (zr != Z_OK) {
            return cl_err_stage(err, CL_EPARSE, "decompress", "gzip: %s",
                                d->z.msg ? d->z.msg : "data error");
        }
    }
    *got = cap - d->z.avail_out;
    return 0;
}

static int zstd_read(struct dsrc *d, uint8_t *buf, size_t cap, size_t *got, struct cl_err *err)
{
    ZSTD_outBuffer out = {buf, cap, 0};
    while (out.pos < out.size) {
        int rc = fill(d, err);
        if (rc < 0)
            return rc;
        if (d->in_off == d->in_len) {
            if (d->member_done)
                break;
            return cl_err_stage(err, CL_EPARSE, "decompress", "zstd stream truncated");
        }
        ZSTD_inBuffer in = {d->in + d->in_off, d->in_len - d->in_off, 0};
        size_t zr = ZSTD_decompressStream(d->zs, &out, &in);
        d->in_off += in.pos;
        if (ZSTD_isError(zr))
            return cl_err_stage(err, CL_EPARSE, "decompress", "zstd: %s", ZSTD_getErrorName(zr));
        d->member_done = zr == 0;
        if (in.pos == 0 && out.pos == 0 && zr != 0 && d->in_off < d->in_len)
            return cl_err_stage(err, CL_EPARSE, "decompress", "zstd: no progress");
    }
    *got = out.pos;
    return 0;
}

static int d_read(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                  struct cl_err *err)
{
    struct dsrc *d = (struct dsrc *)self;
    int rc;
    *got = 0;
    if (!d->started && (rc = check_magic(d, err)) < 0)
        return rc;
    switch (d->comp) {
    case CL_IMAGE_COMP_NONE:
        if (d->in_off < d->in_len) {
            size_t n = d->in_len - d->in_off;
            if (n > cap)
                n = cap;
            memcpy(buf, d->in + d->in_off, n);
            d->in_off += n;
            *got = n;
            rc = 0;
        } else {
            rc = d->inner->read(d->inner, buf, cap, got, err);
        }
        break;
    case CL_IMAGE_COMP_GZIP:
        rc = gz_read(d, buf, cap, got, err);
        break;
    case CL_IMAGE_COMP_ZSTD:
        rc = zstd_read(d, buf, cap, got, err);
        break;
    default:
        return cl_err_set(err, CL_EINVAL, "decompress: unknown compression");
    }
    if (rc < 0)
        return rc;
    if (*got > d->max_out - d->out_total)
        return cl_err_stage(err, CL_ELIMIT, "decompress",
                            "layer decompresses to more than %llu bytes",
                            (unsigned long long)d->max_out);
    d->out_total += *got;
    return 0;
}

void cl_image_decompress_free(struct cl_image_src *s)
{
    struct dsrc *d = (struct dsrc *)s;
    if (!d)
        return;
    if (d->z_live)
        inflateEnd(&d->z);
    ZSTD_freeDStream(d->zs);
    free(d->in);
    free(d);
}

struct cl_image_src *cl_image_decompress_new(struct cl_image_src *inner,
                                             enum cl_image_compression comp, uint64_t max_out,
                                             struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct dsrc *d = calloc(1, sizeof *d);
    if (!d || !(d->in = malloc(IN_BUF))) {
        free(d);
        cl_err_set(err, CL_ENOMEM, "decompress: out of memory");
        return NULL;
    }
    d->src.read = d_read;
    d->inner = inner;
    d->comp = comp;
    d->max_out = max_out ? max_out : CL_IMAGE_DEFAULT_MAX_LAYER;
    if (comp == CL_IMAGE_COMP_GZIP) {
        if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) {
            cl_image_decompress_free(&d->src);
            cl_err_set(err, CL_ENOMEM, "decompress: zlib init failed");
            return NULL;
        }
        d->z_live = true;
    } else if (comp == CL_IMAGE_COMP_ZSTD) {
        d->zs = ZSTD_createDStream();
        /* window cap 16 MiB (every level up to 19; --ultra and --long need more): a frame that
         * asks for a bigger window is refused instead of allocated */
        if (!d->zs || ZSTD_isError(ZSTD_initDStream(d->zs)) ||
            ZSTD_isError(ZSTD_DCtx_setParameter(d->zs, ZSTD_d_windowLogMax, 24))) {
            cl_image_decompress_free(&d->src);
            cl_err_set(err, CL_ENOMEM, "decompress: zstd init failed");
            return NULL;
        }
    } else if (comp != CL_IMAGE_COMP_NONE) {
        cl_image_decompress_free(&d->src);
        cl_err_set(err, CL_EINVAL, "decompress: unknown compression %d", (int)comp);
        return NULL;
    }
    return &d->src;
}
