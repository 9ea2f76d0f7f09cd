/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AAEL runtime-measurement events in upstream's binary form: one TCG2 crypto-agile entry per
 * event {u32 register, u32 EV_EVENT_TAG, u32 1, u16 alg, digest, u32 size, TaggedEvent}, with
 * TaggedEvent = {u32 "AAEL", u32 len, "<domain> <operation> <content>"} and the digest taken
 * over the whole TaggedEvent. All integers little-endian.
 *
 * Also the TDX `cc_eventlog` that the evidence carries: the firmware's CCEL events, then the
 * AAEL, then an 8-byte 0xFF terminator. The CCEL is cut where its events end by the parser
 * the verifier runs on the same bytes, so that the agent never sends a log the KBS could not
 * read back.
 */
#include "tee/eventlog/eventlog.h"
#include "aa/aa.h"

#include <string.h>

#define EV_EVENT_TAG 0x6u
#define AAEL_TAG 0x4141454Cu

static uint16_t tcg_alg(enum cl_hash h)
{
    switch (h) {
    case CL_HASH_SHA256:
        return 0x000B;
    case CL_HASH_SHA384:
        return 0x000C;
    case CL_HASH_SHA512:
        return 0x000D;
    }
    return 0;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

cl_bytes *cl_aa_aael_entry(unsigned mr, enum cl_hash h, const char *text, size_t *outlen,
                           uint8_t *digest, struct cl_err *err)
{
    size_t tlen = strlen(text);
    if (tlen > CL_AA_MAX_EVENT_TEXT) {
        cl_err_set(err, CL_ELIMIT, "event of %zu bytes exceeds %d", tlen, CL_AA_MAX_EVENT_TEXT);
        return NULL;
    }
    size_t dlen = cl_hash_len(h), elen = 8 + tlen;
    size_t total = 12 + 2 + dlen + 4 + elen;
    cl_bytes *buf = malloc(total);
    if (!buf) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    uint8_t *ev = buf + 12 + 2 + dlen + 4;
    put32(ev, AAEL_TAG);
    put32(ev + 4, (uint32_t)tlen);
    memcpy(ev + 8, text, tlen);
    uint8_t *p = put32(buf, mr);
    p = put32(p, EV_EVENT_TAG);
    p = put32(p, 1);
    uint16_t alg = tcg_alg(h);
    *p++ = (uint8_t)alg;
    *p++ = (uint8_t)(alg >> 8);
    if (cl_digest(h, ev, elen, p, err) < 0) {
        free(buf);
        return NULL;
    }
    memcpy(digest, p, dlen);
    put32(p + dlen, (uint32_t)elen);
    *outlen = total;
    return buf;
}

static bool printable(const char *s, bool allow_space)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f || (!allow_space && *s == ' '))
            return false;
    return true;
}

int cl_aa_event_check(const char *domain, const char *operation, const char *content,
                      struct cl_err *err)
{
    if (!domain || !*domain || !printable(domain, false))
        return cl_err_set(err, CL_EINVAL,
                          "event domain must be non-empty printable text without spaces");
    if (!operation || !*operation || !printable(operation, false))
        return cl_err_set(err, CL_EINVAL,
                          "event operation must be non-empty printable text without spaces");
    if (!content || strchr(content, '\n'))
        return cl_err_set(err, CL_EINVAL, "event content must not contain a newline");
    if (!printable(content, true))
        return cl_err_set(err, CL_EINVAL, "event content must be printable text");
    if (strlen(domain) + strlen(operation) + strlen(content) + 2 > CL_AA_MAX_EVENT_TEXT)
        return cl_err_set(err, CL_ELIMIT, "event longer than %d bytes", CL_AA_MAX_EVENT_TEXT);
    return 0;
}

/* ---- cc_eventlog ---- */

/* Without a CCEL: one legacy EV_NO_ACTION event {pcr 0, type 3, SHA-1 zeros, size 37} whose
 * data is a Spec ID structure with a zero signature and version, two algorithms (SHA-384/48,
 * SM3/32) and no vendor data; 69 bytes, as upstream synthesises it. */
#define EL_HEADER_LEN 69

static void el_header(uint8_t out[EL_HEADER_LEN])
{
    memset(out, 0, EL_HEADER_LEN);
    put32(out + 4, CL_TCG_EV_NO_ACTION);
    put32(out + 28, 37);
    uint8_t *spec = out + 32; /* signature[16], class u32, 4 version bytes */
    put32(spec + 24, 2);      /* numberOfAlgorithms */
    static const uint16_t algs[2][2] = {{CL_TCG_ALG_SHA384, 48}, {CL_TCG_ALG_SM3, 32}};
    for (int i = 0; i < 2; i++) {
        uint8_t *a = spec + 28 + 4 * i;
        a[0] = (uint8_t)algs[i][0];
        a[1] = (uint8_t)(algs[i][0] >> 8);
        a[2] = (uint8_t)algs[i][1];
        a[3] = (uint8_t)(algs[i][1] >> 8);
    }
    /* vendorInfoSize (spec + 36) stays 0 */
}

/* Bytes of ccel taken by its events (the table is padded after them). */
static int ccel_used(const uint8_t *ccel, size_t len, size_t *used, struct cl_err *err)
{
    struct cl_eventlog log = {0};
    if (cl_eventlog_parse(ccel, len, &log, err) < 0)
        return cl_err_prefix(err, "CCEL");
    if (log.n) {
        const struct cl_eventlog_event *last = &log.events[log.n - 1];
        *used = (size_t)(last->data - ccel) + last->data_len;
    } else {
        /* only the Spec ID event: {pcr, type, sha1[20], u32 size, data}, checked by the parse */
        *used = 32 + ((size_t)ccel[28] | (size_t)ccel[29] << 8 | (size_t)ccel[30] << 16 |
                      (size_t)ccel[31] << 24);
    }
    cl_eventlog_clear(&log);
    return 0;
}

cl_bytes *cl_aa_cc_eventlog(const uint8_t *ccel, size_t ccel_len, const uint8_t *aael,
                            size_t aael_len, size_t *outlen, struct cl_err *err)
{
    if (!ccel && !aael) {
        cl_err_set(err, CL_EINVAL, "cc_eventlog: neither a CCEL nor an AAEL");
        return NULL;
    }
    if (ccel_len > CL_AA_MAX_CCEL || aael_len > CL_AA_MAX_EVENTLOG) {
        cl_err_set(err, CL_ELIMIT, "cc_eventlog: CCEL of %zu or AAEL of %zu bytes exceeds %u / %u",
                   ccel_len, aael_len, CL_AA_MAX_CCEL, CL_AA_MAX_EVENTLOG);
        return NULL;
    }
    size_t head = EL_HEADER_LEN;
    if (ccel && ccel_used(ccel, ccel_len, &head, err) < 0)
        return NULL;
    bool synth = !ccel;
    size_t total = head + (aael ? aael_len : 0) + 8;
    cl_bytes *out = malloc(total);
    if (!out) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    if (synth)
        el_header(out);
    else
        memcpy(out, ccel, head);
    if (aael && aael_len)
        memcpy(out + head, aael, aael_len);
    memset(out + total - 8, 0xff, 8);
    *outlen = total;
    return out;
}

/* Reads an optional file: NULL with e->code ENOTFOUND when absent. */
static cl_bytes *read_optional(const char *path, size_t max, size_t *n, struct cl_err *e)
{
    if (!path) {
        e->code = CL_ENOTFOUND;
        return NULL;
    }
    return cl_file_read(path, max, n, e);
}

cl_str *cl_aa_cc_eventlog_b64(const struct cl_aa_platform *p, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err;
    struct cl_err ec = {0}, ea = {0};
    size_t cn = 0, an = 0, ln = 0;
    CL_AUTO(cl_bytes) *ccel = read_optional(p->ccel_path, CL_AA_MAX_CCEL, &cn, &ec);
    if (!ccel && ec.code != CL_ENOTFOUND) {
        cl_err_set(err, ec.code, "cc_eventlog: %s", ec.msg);
        return NULL;
    }
    CL_AUTO(cl_bytes) *aael = read_optional(p->aael_path, CL_AA_MAX_EVENTLOG, &an, &ea);
    if (!aael && ea.code != CL_ENOTFOUND) {
        cl_err_set(err, ea.code, "cc_eventlog: %s", ea.msg);
        return NULL;
    }
    cl_err_clear(err);
    if (!ccel && !aael)
        return NULL;
    CL_AUTO(cl_bytes) *log = cl_aa_cc_eventlog(ccel, cn, aael, an, &ln, err);
    if (!log)
        return NULL;
    cl_str *b64 = cl_b64_encode(log, ln, CL_B64_STD);
    if (!b64)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return b64;
}
