/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded CBOR (RFC 8949) reader for attestation tokens: it walks the buffer in place and
 * never allocates. Only definite lengths are accepted (COSE and EAT tokens are encoded that
 * way); every string length is checked against the bytes left, every container count against
 * CL_CCA_CBOR_MAX_COUNT, and nesting against CL_CCA_CBOR_MAX_DEPTH, so a hostile token costs at
 * most its own length in work.
 */
#include "tee/cca/cca.h"
#include "tee/tee_int.h"

static int take_arg(struct cl_cca_cbor *c, uint8_t ai, uint64_t *v, const char *what,
                    struct cl_err *err)
{
    if (ai < 24) {
        *v = ai;
        return 0;
    }
    if (ai > 27)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "%s: CBOR indefinite length or reserved value (0x%x)", what, ai);
    size_t n = (size_t)1 << (ai - 24);
    if (n > c->len - c->off)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: CBOR head truncated", what);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | c->buf[c->off + i];
    c->off += n;
    *v = x;
    return 0;
}

int cl_cca_cbor_head(struct cl_cca_cbor *c, struct cl_cca_cbor_item *it, const char *what,
                     struct cl_err *err)
{
    if (c->off >= c->len)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: CBOR item truncated", what);
    uint8_t ib = c->buf[c->off++];
    struct cl_cca_cbor_item x = {.major = (enum cl_cca_cbor_major)(ib >> 5)};
    int rc;
    if ((rc = take_arg(c, ib & 31, &x.val, what, err)) < 0)
        return rc;
    switch (x.major) {
    case CL_CCA_CBOR_BSTR:
    case CL_CCA_CBOR_TSTR:
        if (x.val > c->len - c->off)
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "%s: CBOR string of %llu bytes, %zu left", what,
                                (unsigned long long)x.val, c->len - c->off);
        x.data = c->buf + c->off;
        c->off += (size_t)x.val;
        break;
    case CL_CCA_CBOR_ARRAY:
    case CL_CCA_CBOR_MAP:
        if (x.val > CL_CCA_CBOR_MAX_COUNT)
            return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE,
                                "%s: CBOR container of %llu entries (limit %d)", what,
                                (unsigned long long)x.val, CL_CCA_CBOR_MAX_COUNT);
        break;
    default:
        break;
    }
    *it = x;
    return 0;
}

static int skip_at(struct cl_cca_cbor *c, unsigned depth, const char *what, struct cl_err *err)
{
    if (depth > CL_CCA_CBOR_MAX_DEPTH)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE, "%s: CBOR nesting deeper than %d",
                            what, CL_CCA_CBOR_MAX_DEPTH);
    struct cl_cca_cbor_item it;
    int rc;
    if ((rc = cl_cca_cbor_head(c, &it, what, err)) < 0)
        return rc;
    switch (it.major) {
    case CL_CCA_CBOR_ARRAY:
    case CL_CCA_CBOR_MAP: {
        uint64_t n = it.major == CL_CCA_CBOR_MAP ? 2 * it.val : it.val;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = skip_at(c, depth + 1, what, err)) < 0)
                return rc;
        return 0;
    }
    case CL_CCA_CBOR_TAG:
        return skip_at(c, depth + 1, what, err);
    default:
        return 0;
    }
}

int cl_cca_cbor_skip(struct cl_cca_cbor *c, const char *what, struct cl_err *err)
{
    return skip_at(c, 0, what, err);
}

int cl_cca_cbor_expect(struct cl_cca_cbor *c, enum cl_cca_cbor_major m, struct cl_cca_cbor_item *it,
                       const char *what, struct cl_err *err)
{
    static const char *const names[] = {
        "unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag",
        "simple value"};
    int rc;
    if ((rc = cl_cca_cbor_head(c, it, what, err)) < 0)
        return rc;
    if (it->major != m)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: CBOR %s where a %s belongs",
                            what, names[it->major], names[m]);
    return 0;
}

int cl_cca_cbor_int_key(struct cl_cca_cbor *c, int64_t *key, const char *what, struct cl_err *err)
{
    struct cl_cca_cbor_item it;
    int rc;
    if ((rc = cl_cca_cbor_head(c, &it, what, err)) < 0)
        return rc;
    if ((it.major != CL_CCA_CBOR_UINT && it.major != CL_CCA_CBOR_NINT) || it.val > INT64_MAX)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "%s: map key is not a small integer", what);
    *key = it.major == CL_CCA_CBOR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
    return 0;
}
