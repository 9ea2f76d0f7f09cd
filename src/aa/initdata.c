/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Init-data: the TOML document the host hands the guest (version, algorithm, data), its
 * digest over the exact bytes, and the two ways it travels: the pod annotation
 * base64(gzip(text)) and the block-device image "initdata" || u64 LE length || gzip(text).
 * Inflation is capped at CL_AA_INITDATA_MAX whatever the compressed stream claims.
 */
#include "aa/aa.h"
#include "toml/toml.h"

#include <string.h>
#include <zlib.h>

#define INITDATA_MAX_GZIP (CL_AA_INITDATA_MAX + 1024) /* deflate never grows text by more */
#define MAGIC_LEN 8

int cl_aa_initdata_parse(const char *text, size_t len, struct cl_aa_initdata *out,
                         struct cl_err *err)
{
    if (len > CL_AA_INITDATA_MAX)
        return cl_err_set(err, CL_ELIMIT, "init-data of %zu bytes exceeds %d", len,
                          CL_AA_INITDATA_MAX);
    CL_AUTO(json_t) *doc = cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "init-data");
    const char *version = NULL, *alg = NULL;
    if (cl_json_get_str(doc, "version", &version, err) < 0 ||
        cl_json_get_str(doc, "algorithm", &alg, err) < 0)
        return cl_err_prefix(err, "init-data");
    if (strcmp(version, "0.1.0") != 0)
        return cl_err_set(err, CL_EPARSE, "init-data: version '%.32s' is not 0.1.0", version);
    struct cl_aa_initdata d = {0};
    if (cl_hash_from_name(alg, &d.alg, err) < 0)
        return cl_err_prefix(err, "init-data: algorithm");
    json_t *data = json_object_get(doc, "data");
    if (data && !json_is_object(data))
        return cl_err_set(err, CL_EPARSE, "init-data: 'data' must be a table");
    const char *k;
    json_t *v;
    json_object_foreach(data, k, v)
    {
        if (!json_is_string(v))
            return cl_err_set(err, CL_EPARSE, "init-data: data.'%.64s' must be a string", k);
    }
    if (cl_digest(d.alg, text, len, d.digest, err) < 0)
        return err->code;
    d.digest_len = cl_hash_len(d.alg);
    d.text = malloc(len + 1);
    d.data = data ? json_incref(data) : json_object();
    if (!d.text || !d.data) {
        cl_aa_initdata_clear(&d);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    memcpy(d.text, text, len);
    d.text[len] = 0;
    d.len = len;
    *out = d;
    return 0;
}

void cl_aa_initdata_clear(struct cl_aa_initdata *d)
{
    free(d->text);
    json_decref(d->data);
    memset(d, 0, sizeof *d);
}

/* ---- gzip ---- */

static cl_bytes *gzip(const void *buf, size_t len, size_t *outlen, struct cl_err *err)
{
    if (len > CL_AA_INITDATA_MAX) {
        cl_err_set(err, CL_ELIMIT, "init-data of %zu bytes exceeds %d", len, CL_AA_INITDATA_MAX);
        return NULL;
    }
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        cl_err_set(err, CL_ENOMEM, "gzip: cannot initialise");
        return NULL;
    }
    uLong cap = deflateBound(&z, (uLong)len) + 32;
    cl_bytes *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)buf;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(out);
        cl_err_set(err, CL_EIO, "gzip: deflate failed (%d)", zr);
        return NULL;
    }
    return out;
}

/* Inflates one gzip stream; bytes after its end are ignored. */
static cl_bytes *gunzip(const uint8_t *buf, size_t len, size_t *outlen, struct cl_err *err)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        cl_err_set(err, CL_ENOMEM, "gunzip: cannot initialise");
        return NULL;
    }
    cl_bytes *out = malloc(CL_AA_INITDATA_MAX + 1);
    if (!out) {
        inflateEnd(&z);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)buf;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = CL_AA_INITDATA_MAX + 1; /* one byte more than allowed: detects overflow */
    int zr = inflate(&z, Z_FINISH);
    size_t n = z.total_out;
    inflateEnd(&z);
    if (zr == Z_STREAM_END && n <= CL_AA_INITDATA_MAX) {
        out[n] = 0;
        *outlen = n;
        return out;
    }
    free(out);
    if (n > CL_AA_INITDATA_MAX || (zr == Z_BUF_ERROR && z.avail_out == 0))
        cl_err_set(err, CL_ELIMIT, "init-data: inflates beyond %d bytes", CL_AA_INITDATA_MAX);
    else
        cl_err_set(err, CL_EPARSE, "init-data: not a complete gzip stream (zlib %d)", zr);
    return NULL;
}

cl_str *cl_aa_initdata_annotation_encode(const void *text, size_t len, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *gz = gzip(text, len, &n, err);
    if (!gz)
        return NULL;
    cl_str *s = cl_b64_encode(gz, n, CL_B64_STD);
    if (!s)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return s;
}

cl_bytes *cl_aa_initdata_annotation_decode(const char *b64, size_t b64len, size_t *outlen,
                                           struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *gz = cl_b64_decode(b64, b64len, CL_B64_STD, INITDATA_MAX_GZIP, &n, err);
    if (!gz) {
        cl_err_prefix(err, "init-data annotation");
        return NULL;
    }
    return gunzip(gz, n, outlen, err);
}

cl_bytes *cl_aa_initdata_image_encode(const void *text, size_t len, size_t *outlen,
                                      struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *gz = gzip(text, len, &n, err);
    if (!gz)
        return NULL;
    cl_bytes *img = malloc(MAGIC_LEN + 8 + n);
    if (!img) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(img, CL_AA_INITDATA_MAGIC, MAGIC_LEN);
    for (int i = 0; i < 8; i++)
        img[MAGIC_LEN + i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(img + MAGIC_LEN + 8, gz, n);
    *outlen = MAGIC_LEN + 8 + n;
    return img;
}

cl_bytes *cl_aa_initdata_image_decode(const uint8_t *img, size_t len, size_t *outlen,
                                      struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(img, len);
    const uint8_t *magic = NULL, *gz = NULL;
    uint64_t n = 0;
    if (cl_cursor_take(&c, MAGIC_LEN, &magic) < 0 ||
        memcmp(magic, CL_AA_INITDATA_MAGIC, MAGIC_LEN) != 0) {
        cl_err_set(err, CL_EPARSE, "init-data image: no 'initdata' magic");
        return NULL;
    }
    if (cl_cursor_le64(&c, &n) < 0) {
        cl_err_set(err, CL_EPARSE, "init-data image: length truncated");
        return NULL;
    }
    if (n > INITDATA_MAX_GZIP) {
        cl_err_set(err, CL_ELIMIT, "init-data image: gzip length %llu exceeds %d",
                   (unsigned long long)n, INITDATA_MAX_GZIP);
        return NULL;
    }
    if (cl_cursor_take(&c, (size_t)n, &gz) < 0) {
        cl_err_set(err, CL_EPARSE, "init-data image: gzip length %llu beyond the %zu-byte image",
                   (unsigned long long)n, len);
        return NULL;
    }
    return gunzip(gz, (size_t)n, outlen, err);
}
