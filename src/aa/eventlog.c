/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AAEL runtime-measurement events in upstream's binary form: one TCG2 crypto-agile entry per
 * event {u32 register, u32 EV_EVENT_TAG, u32 1, u16 alg, digest, u32 size, TaggedEvent}, with
 * TaggedEvent = {u32 "AAEL", u32 len, "<domain> <operation> <content>"} and the digest taken
 * over the whole TaggedEvent. All integers little-endian.
 */
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

cl_bytes *cl_aa_aael_entry(unsigned mr, enum cl_hash h, const char *text, size_t *outlen, uint8_t *digest,
                           struct cl_err *err)
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

int cl_aa_event_check(const char *domain, const char *operation, const char *content, struct cl_err *err)
{
    if (!domain || !*domain || !printable(domain, false))
        return cl_err_set(err, CL_EINVAL, "event domain must be non-empty printable text without spaces");
    if (!operation || !*operation || !printable(operation, false))
        return cl_err_set(err, CL_EINVAL, "event operation must be non-empty printable text without spaces");
    if (!content || strchr(content, '\n'))
        return cl_err_set(err, CL_EINVAL, "event content must not contain a newline");
    if (!printable(content, true))
        return cl_err_set(err, CL_EINVAL, "event content must be printable text");
    if (strlen(domain) + strlen(operation) + strlen(content) + 2 > CL_AA_MAX_EVENT_TEXT)
        return cl_err_set(err, CL_ELIMIT, "event longer than %d bytes", CL_AA_MAX_EVENT_TEXT);
    return 0;
}
