/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Content digests ("sha256:<hex>"), the running hash used on every stream, and the simplest
 * sources of the layer pipeline (memory, file descriptor, hashing pass-through).
 */
#include "image/image_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    enum cl_hash alg;
} digest_algs[] = {
    {"sha256", CL_HASH_SHA256},
    {"sha512", CL_HASH_SHA512},
};

void cl_image_digest_set(struct cl_image_digest *d, enum cl_hash alg, const uint8_t *raw)
{
    memset(d, 0, sizeof *d);
    d->alg = alg;
    d->len = cl_hash_len(alg);
    memcpy(d->raw, raw, d->len);
    const char *name = cl_hash_name(alg);
    size_t nl = strlen(name);
    memcpy(d->str, name, nl);
    d->str[nl] = ':';
    cl_hex_encode_to(raw, d->len, d->str + nl + 1);
    memcpy(d->hex, d->str + nl + 1, 2 * d->len + 1);
}

int cl_image_digest_parse(const char *s, struct cl_image_digest *out, const char *what,
                          struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!what)
        what = "digest";
    if (!s)
        return cl_err_set(err, CL_EPARSE, "%s: missing", what);
    const char *colon = strchr(s, ':');
    if (!colon)
        return cl_err_set(err, CL_EPARSE, "%s '%.80s': not <algorithm>:<hex>", what, s);
    size_t alen = (size_t)(colon - s);
    for (size_t i = 0; i < CL_ARRAY_LEN(digest_algs); i++) {
        if (strlen(digest_algs[i].name) != alen || memcmp(s, digest_algs[i].name, alen) != 0)
            continue;
        enum cl_hash alg = digest_algs[i].alg;
        size_t want = 2 * cl_hash_len(alg);
        const char *hex = colon + 1;
        size_t hl = strlen(hex);
        if (hl != want)
            return cl_err_set(err, CL_EPARSE, "%s '%.80s': %s needs %zu hex digits, not %zu", what,
                              s, digest_algs[i].name, want, hl);
        uint8_t raw[CL_HASH_MAX];
        for (size_t k = 0; k < hl; k++) {
            char c = hex[k];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return cl_err_set(err, CL_EPARSE, "%s '%.80s': character %zu is not lowercase hex",
                                  what, s, k);
        }
        size_t got = 0;
        int rc = cl_hex_decode(hex, hl, raw, sizeof raw, &got, err);
        if (rc < 0)
            return rc;
        cl_image_digest_set(out, alg, raw);
        return 0;
    }
    return cl_err_set(err, CL_EPARSE, "%s '%.80s': algorithm is not sha256 or sha512", what, s);
}

int cl_image_digest_of(enum cl_hash alg, const void *buf, size_t len, struct cl_image_digest *out,
                       struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    uint8_t raw[CL_HASH_MAX];
    int rc = cl_digest(alg, buf, len, raw, err);
    if (rc < 0)
        return rc;
    cl_image_digest_set(out, alg, raw);
    return 0;
}

bool cl_image_digest_eq(const struct cl_image_digest *a, const struct cl_image_digest *b)
{
    return a->alg == b->alg && a->len == b->len && a->len > 0 &&
           memcmp(a->raw, b->raw, a->len) == 0;
}

/* ---- running hash ---- */

int cl_image_hasher_init(struct cl_image_hasher *h, enum cl_hash alg, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    const EVP_MD *md = alg == CL_HASH_SHA512   ? EVP_sha512()
                       : alg == CL_HASH_SHA384 ? EVP_sha384()
                                               : EVP_sha256();
    if (!h->ctx && !(h->ctx = EVP_MD_CTX_new()))
        return cl_err_set(err, CL_ENOMEM, "hash: out of memory");
    if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1)
        return cl_err_set(err, CL_EINVAL, "hash: init failed");
    h->alg = alg;
    return 0;
}

int cl_image_hasher_update(struct cl_image_hasher *h, const void *buf, size_t len,
                           struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (len && EVP_DigestUpdate(h->ctx, buf, len) != 1)
        return cl_err_set(err, CL_EINVAL, "hash: update failed");
    return 0;
}

int cl_image_hasher_final(struct cl_image_hasher *h, struct cl_image_digest *out,
                          struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    uint8_t raw[CL_HASH_MAX];
    unsigned n = 0;
    if (EVP_DigestFinal_ex(h->ctx, raw, &n) != 1 || n != cl_hash_len(h->alg))
        return cl_err_set(err, CL_EINVAL, "hash: final failed");
    cl_image_digest_set(out, h->alg, raw);
    return 0;
}

void cl_image_hasher_free(struct cl_image_hasher *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

/* ---- sources ---- */

static int mem_read(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                    struct cl_err *err)
{
    (void)err;
    struct cl_image_mem_src *m = (struct cl_image_mem_src *)self;
    size_t n = m->len - m->off;
    if (n > cap)
        n = cap;
    if (n)
        memcpy(buf, m->buf + m->off, n);
    m->off += n;
    *got = n;
    return 0;
}

void cl_image_mem_src_init(struct cl_image_mem_src *m, const void *buf, size_t len)
{
    m->src.read = mem_read;
    m->buf = buf;
    m->len = buf ? len : 0;
    m->off = 0;
}

static int fd_read(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                   struct cl_err *err)
{
    struct cl_image_fd_src *s = (struct cl_image_fd_src *)self;
    for (;;) {
        ssize_t r = read(s->fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return cl_err_set(err, CL_EIO, "read: %s", strerror(errno));
        *got = (size_t)r;
        return 0;
    }
}

void cl_image_fd_src_init(struct cl_image_fd_src *s, int fd)
{
    s->src.read = fd_read;
    s->fd = fd;
}

static int hash_read(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                     struct cl_err *err)
{
    struct cl_image_hash_src *s = (struct cl_image_hash_src *)self;
    int rc = s->inner->read(s->inner, buf, cap, got, err);
    if (rc < 0)
        return rc;
    s->bytes += *got;
    return cl_image_hasher_update(&s->h, buf, *got, err);
}

int cl_image_hash_src_init(struct cl_image_hash_src *s, struct cl_image_src *inner,
                           enum cl_hash alg, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    s->src.read = hash_read;
    s->inner = inner;
    s->bytes = 0;
    s->h.ctx = NULL;
    return cl_image_hasher_init(&s->h, alg, err);
}
