/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded, streaming tar reader: ustar, GNU (long names 'L'/'K', base-256 numbers) and pax
 * ('x' records: path, linkpath, size, uid, gid, mtime, SCHILY.xattr.*; 'g' is skipped).
 * Every header goes through the cursor; every length a header declares is checked against a
 * named cap before anything is read for it. Memory is fixed: one 64 KiB buffer, the entry
 * (two paths) and a pax buffer of at most CL_IMAGE_MAX_PAX bytes.
 *
 * Where tar readers part ways (which long name wins, whether a symlink's size is data, what a
 * dangling pax header means), this reader refuses instead of choosing: a layer must read the
 * same here as in GNU tar, libarchive or a scanner. tests/fuzz/fuzz_tar_diff.c holds it to
 * that against libarchive.
 */
#include "image/image_int.h"

#include <string.h>

#define BLOCK 512
#define RBUF (64u * 1024)

struct cl_image_tar {
    struct cl_image_src *src;
    uint8_t *buf;
    size_t blen, boff;
    bool src_eof;
    uint64_t data_left, pad_left;
    bool ended;
    struct cl_image_tar_entry ent;
    /* overrides from pax / GNU headers for the next entry */
    uint8_t *pax; /* pax records of the next entry (xattrs point into it) */
    size_t pax_cap, pax_len;
    bool has_meta; /* a pax or GNU header was read: an entry must follow */
    bool has_path, has_link, has_size, has_uid, has_gid, has_mtime;
    char pend_path[CL_IMAGE_MAX_PATH + 1];
    char pend_link[CL_IMAGE_MAX_PATH + 1];
    uint8_t gnu_name[CL_IMAGE_MAX_PATH + 1]; /* a GNU long name as read, not terminated */
    uint64_t pend_size, pend_uid, pend_gid;
    int64_t pend_mtime;
    uint32_t pend_mtime_nsec;
    size_t pend_nx;
    struct cl_image_tar_xattr pend_x[CL_IMAGE_MAX_XATTRS];
};

struct cl_image_tar *cl_image_tar_new(struct cl_image_src *src, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct cl_image_tar *t = calloc(1, sizeof *t);
    if (!t || !(t->buf = malloc(RBUF))) {
        free(t);
        cl_err_set(err, CL_ENOMEM, "tar: out of memory");
        return NULL;
    }
    t->src = src;
    return t;
}

void cl_image_tar_free(struct cl_image_tar *t)
{
    if (!t)
        return;
    free(t->buf);
    free(t->pax);
    free(t);
}

/* ---- raw reading ---- */

static int refill(struct cl_image_tar *t, struct cl_err *err)
{
    if (t->boff < t->blen || t->src_eof)
        return 0;
    size_t got = 0;
    int rc = t->src->read(t->src, t->buf, RBUF, &got, err);
    if (rc < 0)
        return rc;
    t->blen = got;
    t->boff = 0;
    if (got == 0)
        t->src_eof = true;
    return 0;
}

/* Reads exactly n bytes into dst (NULL: skip them). *short_read set when the stream ended
 * first (then returns 0 with fewer bytes consumed). */
static int take(struct cl_image_tar *t, uint8_t *dst, uint64_t n, bool *short_read,
                struct cl_err *err)
{
    *short_read = false;
    while (n > 0) {
        int rc = refill(t, err);
        if (rc < 0)
            return rc;
        if (t->boff == t->blen) {
            *short_read = true;
            return 0;
        }
        size_t k = t->blen - t->boff;
        if (k > n)
            k = (size_t)n;
        if (dst) {
            memcpy(dst, t->buf + t->boff, k);
            dst += k;
        }
        t->boff += k;
        n -= k;
    }
    return 0;
}

static int take_exact(struct cl_image_tar *t, uint8_t *dst, uint64_t n, const char *what,
                      struct cl_err *err)
{
    bool shrt = false;
    int rc = take(t, dst, n, &shrt, err);
    if (rc < 0)
        return rc;
    if (shrt)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: stream ends inside %s", what);
    return 0;
}

/* ---- numbers ---- */

/* Octal (space or NUL terminated, leading spaces allowed) or GNU base-256. */
static int parse_num(const uint8_t *f, size_t n, uint64_t max, uint64_t *out, const char *what,
                     struct cl_err *err)
{
    if (n && (f[0] & 0x80)) {
        if (f[0] == 0xff)
            return cl_err_stage(err, CL_EPARSE, "tar", "tar header: %s is negative", what);
        uint64_t v = f[0] & 0x7f;
        for (size_t i = 1; i < n; i++) {
            if (v > (UINT64_MAX >> 8))
                return cl_err_stage(err, CL_EPARSE, "tar", "tar header: %s overflows", what);
            v = (v << 8) | f[i];
        }
        if (v > max)
            return cl_err_stage(err, CL_EPARSE, "tar", "tar header: %s %llu is out of range", what,
                                (unsigned long long)v);
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    uint64_t v = 0;
    bool any = false;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v > (UINT64_MAX >> 3))
            return cl_err_stage(err, CL_EPARSE, "tar", "tar header: %s overflows", what);
        v = (v << 3) | (uint64_t)(f[i] - '0');
        any = true;
    }
    for (; i < n; i++)
        if (f[i] != ' ' && f[i] != 0)
            return cl_err_stage(err, CL_EPARSE, "tar", "tar header: %s is not an octal number",
                                what);
    if (!any)
        v = 0;
    if (v > max)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar header: %s %llu is out of range", what,
                            (unsigned long long)v);
    *out = v;
    return 0;
}

/* Decimal for pax values: digits only, range checked. */
static int pax_uint(const char *v, size_t n, uint64_t max, uint64_t *out, const char *what,
                    struct cl_err *err)
{
    if (n == 0 || n > 20)
        return cl_err_stage(err, CL_EPARSE, "tar", "pax %s: not a number", what);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return cl_err_stage(err, CL_EPARSE, "tar", "pax %s: not a number", what);
        if (x > (UINT64_MAX - 9) / 10)
            return cl_err_stage(err, CL_EPARSE, "tar", "pax %s: overflows", what);
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > max)
        return cl_err_stage(err, CL_EPARSE, "tar", "pax %s: %llu is out of range", what,
                            (unsigned long long)x);
    *out = x;
    return 0;
}

/* pax mtime: [-]seconds[.fraction] */
static int pax_time(const char *v, size_t n, int64_t *sec, uint32_t *nsec, struct cl_err *err)
{
    bool neg = n > 0 && v[0] == '-';
    size_t i = neg ? 1 : 0;
    size_t dot = i;
    while (dot < n && v[dot] != '.')
        dot++;
    uint64_t s = 0;
    int rc = pax_uint(v + i, dot - i, INT64_MAX, &s, "mtime", err);
    if (rc < 0)
        return rc;
    uint32_t ns = 0;
    if (dot < n) {
        size_t digits = 0;
        for (size_t k = dot + 1; k < n; k++) {
            if (v[k] < '0' || v[k] > '9')
                return cl_err_stage(err, CL_EPARSE, "tar", "pax mtime: bad fraction");
            if (digits < 9) {
                ns = ns * 10 + (uint32_t)(v[k] - '0');
                digits++;
            }
        }
        while (digits++ < 9)
            ns *= 10;
    }
    *sec = neg ? -(int64_t)s : (int64_t)s;
    *nsec = ns;
    if (neg && ns) {
        /* -1.25 is 1.25 s before the epoch: -2 s + 0.75 s */
        *sec -= 1;
        *nsec = 1000000000u - ns;
    }
    return 0;
}

/* ---- pax records: "<len> <key>=<value>\n" ---- */

/* Every pending path or link target, from pax or GNU headers, is set here: the bound is the
 * destination's own size (n bytes and the NUL must fit), and a field may be set once per
 * entry. Tar readers disagree on which of two long names wins (pax or GNU, first or last), so
 * a second one is refused rather than picked. */
static int set_pend_str(char *dst, size_t cap, bool *has, const char *v, size_t n, const char *what,
                        struct cl_err *err)
{
    if (*has)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: a second %s for one entry", what);
    if (n >= cap)
        return cl_err_stage(err, CL_ELIMIT, "tar", "tar: %s longer than %zu bytes", what, cap - 1);
    if (memchr(v, 0, n))
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: %s holds a NUL byte", what);
    memcpy(dst, v, n);
    dst[n] = 0;
    *has = true;
    return 0;
}

/* Numeric pax overrides: once per entry, for the same reason. */
static int once(bool *has, const char *what, struct cl_err *err)
{
    if (*has)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: a second pax %s for one entry", what);
    *has = true;
    return 0;
}

static int parse_pax(struct cl_image_tar *t, struct cl_err *err)
{
    char *p = (char *)t->pax;
    size_t len = t->pax_len, off = 0;
    int rc;
    while (off < len) {
        /* length field */
        size_t i = off;
        uint64_t rl = 0;
        while (i < len && p[i] >= '0' && p[i] <= '9' && i - off < 10) {
            rl = rl * 10 + (uint64_t)(p[i] - '0');
            i++;
        }
        if (i == off || i >= len || p[i] != ' ')
            return cl_err_stage(err, CL_EPARSE, "tar", "pax record at %zu: bad length", off);
        if (rl < (uint64_t)(i - off) + 3 || rl > len - off)
            return cl_err_stage(err, CL_EPARSE, "tar",
                                "pax record at %zu: length %llu out of range", off,
                                (unsigned long long)rl);
        size_t end = off + (size_t)rl; /* one past '\n' */
        if (p[end - 1] != '\n')
            return cl_err_stage(err, CL_EPARSE, "tar", "pax record at %zu: no newline", off);
        char *key = p + i + 1;
        char *eq = memchr(key, '=', (size_t)(p + end - 1 - key));
        if (!eq || eq == key)
            return cl_err_stage(err, CL_EPARSE, "tar", "pax record at %zu: no key=value", off);
        size_t klen = (size_t)(eq - key);
        char *val = eq + 1;
        size_t vlen = (size_t)(p + end - 1 - val);
        off = end;
        if (memchr(key, 0, klen))
            return cl_err_stage(err, CL_EPARSE, "tar", "pax key holds a NUL byte");
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(key, s, klen) == 0)
        if (KEY("path")) {
            if ((rc = set_pend_str(t->pend_path, sizeof t->pend_path, &t->has_path, val, vlen,
                                   "path (pax path or GNU long name)", err)) < 0)
                return rc;
        } else if (KEY("linkpath")) {
            if ((rc = set_pend_str(t->pend_link, sizeof t->pend_link, &t->has_link, val, vlen,
                                   "link target (pax linkpath or GNU long link)", err)) < 0)
                return rc;
        } else if (KEY("size")) {
            if ((rc = once(&t->has_size, "size", err)) < 0 ||
                (rc = pax_uint(val, vlen, INT64_MAX, &t->pend_size, "size", err)) < 0)
                return rc;
        } else if (KEY("uid")) {
            if ((rc = once(&t->has_uid, "uid", err)) < 0 ||
                (rc = pax_uint(val, vlen, UINT32_MAX, &t->pend_uid, "uid", err)) < 0)
                return rc;
        } else if (KEY("gid")) {
            if ((rc = once(&t->has_gid, "gid", err)) < 0 ||
                (rc = pax_uint(val, vlen, UINT32_MAX, &t->pend_gid, "gid", err)) < 0)
                return rc;
        } else if (KEY("mtime")) {
            if ((rc = once(&t->has_mtime, "mtime", err)) < 0 ||
                (rc = pax_time(val, vlen, &t->pend_mtime, &t->pend_mtime_nsec, err)) < 0)
                return rc;
        } else if (klen > 12 && memcmp(key, "SCHILY.xattr.", 13) == 0 && klen > 13) {
            if (t->pend_nx >= CL_IMAGE_MAX_XATTRS)
                return cl_err_stage(err, CL_ELIMIT, "tar", "tar: more than %d xattrs on one entry",
                                    CL_IMAGE_MAX_XATTRS);
            if (vlen > CL_IMAGE_MAX_XATTR_VALUE)
                return cl_err_stage(err, CL_ELIMIT, "tar", "tar: xattr value larger than %d bytes",
                                    CL_IMAGE_MAX_XATTR_VALUE);
            *eq = 0; /* terminates the name in place; the value keeps its length */
            t->pend_x[t->pend_nx].name = key + 13;
            t->pend_x[t->pend_nx].value = (const uint8_t *)val;
            t->pend_x[t->pend_nx].len = vlen;
            t->pend_nx++;
        } else if (klen >= 11 && memcmp(key, "GNU.sparse.", 11) == 0) {
            return cl_err_stage(err, CL_EUNSUPPORTED, "tar", "tar: sparse files are not supported");
        }
#undef KEY
    }
    return 0;
}

/* Reads `size` bytes of a meta entry (pax or GNU long name) into the pax buffer. */
static int read_meta(struct cl_image_tar *t, uint64_t size, size_t cap, const char *what,
                     struct cl_err *err)
{
    if (size > cap)
        return cl_err_stage(err, CL_ELIMIT, "tar", "tar: %s of %llu bytes, more than %zu", what,
                            (unsigned long long)size, cap);
    if (size + 1 > t->pax_cap) {
        size_t ncap = (size_t)size + 1;
        if (ncap < 4096)
            ncap = 4096;
        uint8_t *nb = realloc(t->pax, ncap);
        if (!nb)
            return cl_err_set(err, CL_ENOMEM, "tar: out of memory");
        t->pax = nb;
        t->pax_cap = ncap;
    }
    int rc = take_exact(t, t->pax, size, what, err);
    if (rc < 0)
        return rc;
    t->pax[size] = 0;
    t->pax_len = (size_t)size;
    uint64_t pad = (BLOCK - size % BLOCK) % BLOCK;
    return take_exact(t, NULL, pad, what, err);
}

static void clear_pending(struct cl_image_tar *t)
{
    t->has_meta = t->has_path = t->has_link = t->has_size = t->has_uid = t->has_gid = t->has_mtime =
        false;
    t->pend_nx = 0;
}

/* Overrides read from pax or GNU headers and not yet applied to an entry. */
static bool pending(const struct cl_image_tar *t)
{
    return t->has_meta || t->has_path || t->has_link || t->has_size || t->has_uid || t->has_gid ||
           t->has_mtime || t->pend_nx;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Copies a NUL-padded header field. */
static size_t field_str(char *dst, const uint8_t *f, size_t n)
{
    size_t l = strnlen((const char *)f, n);
    memcpy(dst, f, l);
    dst[l] = 0;
    return l;
}

static int drain(struct cl_image_tar *t, struct cl_err *err)
{
    t->ended = true;
    for (;;) {
        t->boff = t->blen;
        if (t->src_eof)
            return 0;
        int rc = refill(t, err);
        if (rc < 0)
            return rc;
    }
}

/* ---- one header block ---- */

/* The ustar header as read: raw text fields and every numeric field parsed. */
struct tar_hdr {
    const uint8_t *name, *link, *magic, *prefix;
    char type;
    uint64_t size, mode, uid, gid, mtime, devmajor, devminor;
};

/* The numeric fields, at their ustar offsets. Every one of them, in every header (meta headers
 * included), must be a number: a reader that finds one malformed stops (libarchive does, on the
 * first header), one that skips it goes on, and the two then list different archives. */
static const struct {
    size_t off, len;
    uint64_t max;
    const char *what;
    size_t dst; /* offsetof(struct tar_hdr, ...) */
} num_fields[] = {
    {124, 12, INT64_MAX, "size", offsetof(struct tar_hdr, size)},
    {100, 8, UINT32_MAX, "mode", offsetof(struct tar_hdr, mode)},
    {108, 8, UINT32_MAX, "uid", offsetof(struct tar_hdr, uid)},
    {116, 8, UINT32_MAX, "gid", offsetof(struct tar_hdr, gid)},
    {136, 12, INT64_MAX, "mtime", offsetof(struct tar_hdr, mtime)},
    {329, 8, UINT32_MAX, "devmajor", offsetof(struct tar_hdr, devmajor)},
    {337, 8, UINT32_MAX, "devminor", offsetof(struct tar_hdr, devminor)},
};

#define HDR_CHKSUM_OFF 148
#define HDR_CHKSUM_LEN 8

/* Checks the checksum (the field counts as spaces; signed sums accepted, as old tars wrote
 * them) and parses every field of one 512-byte header. */
static int parse_header(const uint8_t hb[BLOCK], struct tar_hdr *h, struct cl_err *err)
{
    uint64_t want = 0;
    int rc = parse_num(hb + HDR_CHKSUM_OFF, HDR_CHKSUM_LEN, UINT32_MAX, &want, "checksum", err);
    if (rc < 0)
        return rc;
    uint64_t usum = 0;
    int64_t ssum = 0;
    for (size_t i = 0; i < BLOCK; i++) {
        uint8_t b = (i >= HDR_CHKSUM_OFF && i < HDR_CHKSUM_OFF + HDR_CHKSUM_LEN) ? ' ' : hb[i];
        usum += b;
        ssum += (int8_t)b;
    }
    if (usum != want && (uint64_t)ssum != want)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: header checksum mismatch");
    for (size_t i = 0; i < sizeof num_fields / sizeof num_fields[0]; i++) {
        uint64_t *dst = (uint64_t *)((char *)h + num_fields[i].dst);
        if ((rc = parse_num(hb + num_fields[i].off, num_fields[i].len, num_fields[i].max, dst,
                            num_fields[i].what, err)) < 0)
            return rc;
    }
    h->name = hb; /* 100 bytes */
    h->type = (char)hb[156];
    h->link = hb + 157;   /* 100 bytes */
    h->magic = hb + 257;  /* 6 bytes */
    h->prefix = hb + 345; /* 155 bytes */
    return 0;
}

/* A zero block was read: the archive ends (a second zero block, or the end of the stream). */
static int end_of_archive(struct cl_image_tar *t, struct cl_err *err)
{
    if (pending(t))
        return cl_err_stage(err, CL_EPARSE, "tar",
                            "tar: the archive ends after a pax or GNU long-name header");
    uint8_t hb2[BLOCK];
    bool shrt = false;
    int rc = take(t, hb2, BLOCK, &shrt, err);
    if (rc < 0)
        return rc;
    if (!shrt && !all_zero(hb2, BLOCK))
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: a zero block followed by a header");
    return drain(t, err);
}

/* A GNU long name ('L') or long link ('K'), read into its own scratch buffer (the pax one may
 * hold xattrs), unterminated: the name is what precedes the first NUL (GNU tar writes the name
 * and one NUL), and it reaches the entry through set_pend_str, whose bound is the destination's
 * size. */
static int read_gnu_long(struct cl_image_tar *t, char tf, uint64_t sz, struct cl_err *err)
{
    t->has_meta = true;
    if (sz > sizeof t->gnu_name)
        return cl_err_stage(err, CL_ELIMIT, "tar",
                            "tar: GNU long name of %llu bytes, more than %zu",
                            (unsigned long long)sz, sizeof t->gnu_name);
    int rc = take_exact(t, t->gnu_name, sz, "GNU long name", err);
    if (rc < 0)
        return rc;
    size_t l = strnlen((const char *)t->gnu_name, (size_t)sz);
    rc = tf == 'L'
             ? set_pend_str(t->pend_path, sizeof t->pend_path, &t->has_path,
                            (const char *)t->gnu_name, l, "path (pax path or GNU long name)", err)
             : set_pend_str(t->pend_link, sizeof t->pend_link, &t->has_link,
                            (const char *)t->gnu_name, l,
                            "link target (pax linkpath or GNU long link)", err);
    if (rc < 0)
        return rc;
    return take_exact(t, NULL, (BLOCK - sz % BLOCK) % BLOCK, "GNU long name", err);
}

/* Meta headers: they change the next entry. Returns 1 when h was one (and is consumed), 0 when
 * h is a real entry. */
static int read_meta_header(struct cl_image_tar *t, const struct tar_hdr *h, struct cl_err *err)
{
    int rc;
    switch (h->type) {
    case 'g':
        /* global pax records are skipped (they would outlive the entry they precede) */
        if (h->size > CL_IMAGE_MAX_PAX)
            return cl_err_stage(err, CL_ELIMIT, "tar",
                                "tar: global pax header of %llu bytes, more than %u",
                                (unsigned long long)h->size, CL_IMAGE_MAX_PAX);
        rc = take_exact(t, NULL, h->size + (BLOCK - h->size % BLOCK) % BLOCK, "global pax header",
                        err);
        return rc < 0 ? rc : 1;
    case 'x':
        t->has_meta = true;
        if ((rc = read_meta(t, h->size, CL_IMAGE_MAX_PAX, "pax header", err)) < 0)
            return rc;
        t->pend_nx = 0;
        rc = parse_pax(t, err);
        return rc < 0 ? rc : 1;
    case 'L':
    case 'K':
        rc = read_gnu_long(t, h->type, h->size, err);
        return rc < 0 ? rc : 1;
    default:
        return 0;
    }
}

/* The entry types this reader knows; anything else (sparse 'S' included) is refused. */
static const struct {
    char flag;
    enum cl_image_tar_type type;
} type_flags[] = {
    {'0', CL_TAR_REG},  {'\0', CL_TAR_REG},    {'7', CL_TAR_REG},
    {'1', CL_TAR_LINK}, {'2', CL_TAR_SYMLINK}, {'3', CL_TAR_CHR},
    {'4', CL_TAR_BLK},  {'5', CL_TAR_DIR},     {'6', CL_TAR_FIFO},
};

static int entry_type(char tf, enum cl_image_tar_type *type, struct cl_err *err)
{
    for (size_t i = 0; i < sizeof type_flags / sizeof type_flags[0]; i++)
        if (type_flags[i].flag == tf) {
            *type = type_flags[i].type;
            return 0;
        }
    if (tf == 'S')
        return cl_err_stage(err, CL_EUNSUPPORTED, "tar", "tar: sparse files are not supported");
    return cl_err_stage(err, CL_EUNSUPPORTED, "tar", "tar: entry type 0x%02x is not supported",
                        (unsigned)(uint8_t)tf);
}

/* The entry's path and link: pax or GNU long values win over the header fields. */
static int entry_names(struct cl_image_tar *t, const struct tar_hdr *h,
                       struct cl_image_tar_entry *ent, struct cl_err *err)
{
    bool ustar = memcmp(h->magic, "ustar\0", 6) == 0;
    if (t->has_path) {
        memcpy(ent->path, t->pend_path, strlen(t->pend_path) + 1);
    } else {
        char pre[156], nm[101];
        size_t pl = ustar ? field_str(pre, h->prefix, 155) : 0;
        field_str(nm, h->name, 100);
        if (pl)
            snprintf(ent->path, sizeof ent->path, "%s/%s", pre, nm);
        else
            memcpy(ent->path, nm, strlen(nm) + 1);
    }
    /* A link whose header field is empty: libarchive then ignores a pax or GNU long link
     * target that GNU tar applies (and the target is empty for both otherwise). */
    if ((ent->type == CL_TAR_LINK || ent->type == CL_TAR_SYMLINK) && h->link[0] == 0)
        return cl_err_stage(err, CL_EPARSE, "tar",
                            "tar: link entry with an empty link field in its header");
    if (t->has_link)
        memcpy(ent->link, t->pend_link, strlen(t->pend_link) + 1);
    else
        field_str(ent->link, h->link, 100);
    return 0;
}

/* Fills the entry from the header and the pending pax/GNU overrides, then checks it. */
static int build_entry(struct cl_image_tar *t, const struct tar_hdr *h,
                       struct cl_image_tar_entry *ent, struct cl_err *err)
{
    memset(ent, 0, offsetof(struct cl_image_tar_entry, xattrs));
    int rc;
    if ((rc = entry_type(h->type, &ent->type, err)) < 0 || (rc = entry_names(t, h, ent, err)) < 0)
        return rc;
    uint64_t sz = t->has_size ? t->pend_size : h->size;
    ent->mode = (uint32_t)(h->mode & 07777);
    ent->uid = t->has_uid ? t->pend_uid : h->uid;
    ent->gid = t->has_gid ? t->pend_gid : h->gid;
    ent->mtime = (int64_t)h->mtime;
    if (t->has_mtime) {
        ent->mtime = t->pend_mtime;
        ent->mtime_nsec = t->pend_mtime_nsec;
    }
    if (ent->type == CL_TAR_CHR || ent->type == CL_TAR_BLK) {
        ent->devmajor = (uint32_t)h->devmajor;
        ent->devminor = (uint32_t)h->devminor;
    }
    ent->nxattrs = t->pend_nx;
    memcpy(ent->xattrs, t->pend_x, t->pend_nx * sizeof t->pend_x[0]);
    clear_pending(t);
    /* V7: a regular file whose name ends in '/' is a directory */
    size_t plen = strlen(ent->path);
    if (ent->type == CL_TAR_REG && plen > 0 && ent->path[plen - 1] == '/')
        ent->type = CL_TAR_DIR;
    if (plen == 0)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: entry with an empty name");
    /* Only regular files carry data. Readers disagree on whether another type's declared
     * size is data to skip (GNU tar, libarchive for a pax size) or not (Go, libarchive for
     * the header field): each choice hides a header from the others, so it is refused. */
    if (ent->type != CL_TAR_REG && sz != 0)
        return cl_err_stage(err, CL_EPARSE, "tar",
                            "tar: %s entry '%.100s' declares %llu data bytes",
                            ent->type == CL_TAR_DIR ? "directory" : "non-regular", ent->path,
                            (unsigned long long)sz);
    ent->size = ent->type == CL_TAR_REG ? sz : 0;
    t->data_left = ent->size;
    t->pad_left = (BLOCK - ent->size % BLOCK) % BLOCK;
    return 0;
}

int cl_image_tar_next(struct cl_image_tar *t, struct cl_image_tar_entry **e, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (t->ended)
        return 0;
    int rc;
    /* the rest of the previous entry */
    if ((rc = take_exact(t, NULL, t->data_left + t->pad_left, "entry data", err)) < 0)
        return rc;
    t->data_left = t->pad_left = 0;
    for (;;) {
        uint8_t hb[BLOCK];
        if ((rc = refill(t, err)) < 0)
            return rc;
        if (t->boff == t->blen) {
            /* the stream ends where a header would start: accepted as the end (no zero blocks) */
            if (pending(t))
                return cl_err_stage(err, CL_EPARSE, "tar",
                                    "tar: stream ends after a pax or GNU long-name header");
            t->ended = true;
            return 0;
        }
        if ((rc = take_exact(t, hb, BLOCK, "a header", err)) < 0)
            return rc;
        if (all_zero(hb, BLOCK))
            return end_of_archive(t, err);
        struct tar_hdr h = {0};
        if ((rc = parse_header(hb, &h, err)) < 0)
            return rc;
        if ((rc = read_meta_header(t, &h, err)) < 0)
            return rc;
        if (rc == 1)
            continue;
        if ((rc = build_entry(t, &h, &t->ent, err)) < 0)
            return rc;
        *e = &t->ent;
        return 1;
    }
}

int cl_image_tar_read(struct cl_image_tar *t, uint8_t *buf, size_t cap, size_t *got,
                      struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    *got = 0;
    if (t->data_left == 0 || cap == 0)
        return 0;
    size_t want = t->data_left < cap ? (size_t)t->data_left : cap;
    int rc;
    if (t->boff == t->blen && !t->src_eof && want >= RBUF / 2) {
        /* large reads bypass the buffer */
        size_t n = 0;
        if ((rc = t->src->read(t->src, buf, want, &n, err)) < 0)
            return rc;
        if (n == 0) {
            t->src_eof = true;
            return cl_err_stage(err, CL_EPARSE, "tar", "tar: stream ends inside file data");
        }
        t->data_left -= n;
        *got = n;
        return 0;
    }
    if ((rc = refill(t, err)) < 0)
        return rc;
    if (t->boff == t->blen)
        return cl_err_stage(err, CL_EPARSE, "tar", "tar: stream ends inside file data");
    size_t k = t->blen - t->boff;
    if (k > want)
        k = want;
    memcpy(buf, t->buf + t->boff, k);
    t->boff += k;
    t->data_left -= k;
    *got = k;
    return 0;
}
