/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCG2 / CCEL event logs: the bounded parser (Spec ID event first, then TCG_PCR_EVENT2
 * records), replay into measurement registers, and the JSON view with digests checked
 * against the event data. Event data is never copied: the log points into the caller's
 * buffer, which must outlive it.
 */
#include "tee/eventlog/eventlog.h"
#include "tee/tee_int.h"

#include <openssl/evp.h>
#include <string.h>

static const struct {
    uint32_t type;
    const char *name;
} event_types[] = {
    {0x0, "EV_PREBOOT_CERT"},
    {0x1, "EV_POST_CODE"},
    {0x2, "EV_UNUSED"},
    {0x3, "EV_NO_ACTION"},
    {0x4, "EV_SEPARATOR"},
    {0x5, "EV_ACTION"},
    {0x6, "EV_EVENT_TAG"},
    {0x7, "EV_S_CRTM_CONTENTS"},
    {0x8, "EV_S_CRTM_VERSION"},
    {0x9, "EV_CPU_MICROCODE"},
    {0xa, "EV_PLATFORM_CONFIG_FLAGS"},
    {0xb, "EV_TABLE_OF_DEVICES"},
    {0xc, "EV_COMPACT_HASH"},
    {0xd, "EV_IPL"},
    {0xe, "EV_IPL_PARTITION_DATA"},
    {0xf, "EV_NONHOST_CODE"},
    {0x10, "EV_NONHOST_CONFIG"},
    {0x11, "EV_NONHOST_INFO"},
    {0x12, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    {0x80000000, "EV_EFI_EVENT_BASE"},
    {0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    {0x80000002, "EV_EFI_VARIABLE_BOOT"},
    {0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    {0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER"},
    {0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    {0x80000006, "EV_EFI_GPT_EVENT"},
    {0x80000007, "EV_EFI_ACTION"},
    {0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    {0x80000009, "EV_EFI_HANDOFF_TABLES"},
    {0x8000000a, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    {0x8000000b, "EV_EFI_HANDOFF_TABLES2"},
    {0x8000000c, "EV_EFI_VARIABLE_BOOT2"},
    {0x80000010, "EV_EFI_HCRTM_EVENT"},
    {0x800000e0, "EV_EFI_VARIABLE_AUTHORITY"},
    {0x800000e1, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    {0x800000e2, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
};

const char *cl_eventlog_type_name(uint32_t type)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(event_types); i++)
        if (event_types[i].type == type)
            return event_types[i].name;
    return NULL;
}

static const struct {
    uint16_t alg;
    const char *name;
    size_t len;
} algs[] = {
    {CL_TCG_ALG_SHA1, "SHA-1", 20},     {CL_TCG_ALG_SHA256, "SHA-256", 32},
    {CL_TCG_ALG_SHA384, "SHA-384", 48}, {CL_TCG_ALG_SHA512, "SHA-512", 64},
    {CL_TCG_ALG_SM3, "SM3", 32},
};

const char *cl_eventlog_alg_name(uint16_t alg)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(algs); i++)
        if (algs[i].alg == alg)
            return algs[i].name;
    return NULL;
}

static const EVP_MD *alg_md(uint16_t alg)
{
    switch (alg) {
    case CL_TCG_ALG_SHA1:
        return EVP_sha1();
    case CL_TCG_ALG_SHA256:
        return EVP_sha256();
    case CL_TCG_ALG_SHA384:
        return EVP_sha384();
    case CL_TCG_ALG_SHA512:
        return EVP_sha512();
    case CL_TCG_ALG_SM3:
        return EVP_sm3();
    default:
        return NULL;
    }
}

void cl_eventlog_clear(struct cl_eventlog *log)
{
    free(log->events);
    log->events = NULL;
    log->n = 0;
}

#define LERR(off, ...) cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_EVENTLOG, __VA_ARGS__)

/* Digest sizes the Spec ID event declares, by algorithm id. */
struct sizes {
    uint16_t alg[CL_EVENTLOG_MAX_DIGESTS];
    uint16_t len[CL_EVENTLOG_MAX_DIGESTS];
    size_t n;
};

static int spec_id(struct cl_cursor *c, struct sizes *sz, struct cl_err *err)
{
    uint32_t pcr = 0, type = 0, size = 0;
    if (cl_cursor_le32(c, &pcr) < 0 || cl_cursor_le32(c, &type) < 0 || cl_cursor_skip(c, 20) < 0 ||
        cl_cursor_le32(c, &size) < 0)
        return LERR(c->off, "event log: first event truncated");
    struct cl_cursor ev;
    if (cl_cursor_sub(c, size, &ev) < 0)
        return LERR(c->off, "event log: Spec ID event of %u bytes overruns the log", size);
    if (type != CL_TCG_EV_NO_ACTION)
        return LERR(0, "event log: first event has type %#x, not the Spec ID event (EV_NO_ACTION)",
                    type);
    /* TCG_EfiSpecIDEventStruct: signature[16], platformClass, minor, major, errata, uintnSize,
     * numberOfAlgorithms, {algorithmId, digestSize}[], vendorInfoSize, vendorInfo */
    uint32_t nalg = 0;
    if (cl_cursor_skip(&ev, 24) < 0 || cl_cursor_le32(&ev, &nalg) < 0)
        return LERR(0, "event log: Spec ID event truncated");
    if (nalg == 0 || nalg > CL_EVENTLOG_MAX_DIGESTS)
        return LERR(0, "event log: Spec ID event declares %u algorithms (1..%d)", nalg,
                    CL_EVENTLOG_MAX_DIGESTS);
    for (uint32_t i = 0; i < nalg; i++) {
        uint16_t id = 0, len = 0;
        if (cl_cursor_le16(&ev, &id) < 0 || cl_cursor_le16(&ev, &len) < 0)
            return LERR(0, "event log: Spec ID algorithm list truncated");
        if (!cl_eventlog_alg_name(id))
            return LERR(0, "event log: unknown algorithm %#x in the Spec ID event", id);
        if (len == 0 || len > 64)
            return LERR(0, "event log: digest size %u for algorithm %#x", len, id);
        sz->alg[sz->n] = id;
        sz->len[sz->n] = len;
        sz->n++;
    }
    uint8_t vlen = 0;
    if (cl_cursor_u8(&ev, &vlen) < 0 || cl_cursor_skip(&ev, vlen) < 0 || cl_cursor_left(&ev) != 0)
        return LERR(0, "event log: Spec ID event size does not match its content");
    return 0;
}

int cl_eventlog_parse(const uint8_t *buf, size_t len, struct cl_eventlog *log, struct cl_err *err)
{
    CL_TEE_ERR(err);
    memset(log, 0, sizeof *log);
    struct cl_cursor c = cl_cursor_init(buf, len);
    struct sizes sz = {0};
    int rc;
    if ((rc = spec_id(&c, &sz, err)) < 0)
        return rc;
    size_t cap = 0;
    struct cl_eventlog out = {0};
    while (cl_cursor_left(&c) >= 8) {
        /* the end: CCEL tables are padded with 0xFF (or zeros) */
        const uint8_t *peek = c.buf + c.off;
        bool ff = true, zero = true;
        for (int i = 0; i < 8; i++) {
            ff = ff && peek[i] == 0xff;
            zero = zero && peek[i] == 0x00;
        }
        if (ff || zero)
            break;
        size_t at = c.off;
        if (out.n == CL_EVENTLOG_MAX_EVENTS) {
            cl_eventlog_clear(&out);
            return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_EVENTLOG,
                                "event log: more than %d events", CL_EVENTLOG_MAX_EVENTS);
        }
        if (out.n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct cl_eventlog_event *ne = realloc(out.events, ncap * sizeof *ne);
            if (!ne) {
                cl_eventlog_clear(&out);
                return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_EVENTLOG, "out of memory");
            }
            out.events = ne;
            cap = ncap;
        }
        struct cl_eventlog_event *ev = &out.events[out.n];
        memset(ev, 0, sizeof *ev);
        uint32_t count = 0;
        if (cl_cursor_le32(&c, &ev->index) < 0 || cl_cursor_le32(&c, &ev->type) < 0 ||
            cl_cursor_le32(&c, &count) < 0) {
            rc = LERR(at, "event log: event %zu at byte %zu truncated", out.n, at);
            goto fail;
        }
        if (!cl_eventlog_type_name(ev->type)) {
            rc = LERR(at, "event log: event %zu at byte %zu has unknown type %#x", out.n, at,
                      ev->type);
            goto fail;
        }
        if (count > CL_EVENTLOG_MAX_DIGESTS) {
            rc = LERR(at, "event log: event %zu has %u digests (at most %d)", out.n, count,
                      CL_EVENTLOG_MAX_DIGESTS);
            goto fail;
        }
        for (uint32_t i = 0; i < count; i++) {
            uint16_t alg = 0;
            size_t k = 0;
            if (cl_cursor_le16(&c, &alg) < 0) {
                rc = LERR(at, "event log: event %zu digests truncated", out.n);
                goto fail;
            }
            while (k < sz.n && sz.alg[k] != alg)
                k++;
            if (k == sz.n) {
                rc = LERR(
                    at, "event log: event %zu uses algorithm %#x the Spec ID event did not declare",
                    out.n, alg);
                goto fail;
            }
            ev->digests[i].alg = alg;
            ev->digests[i].len = (uint8_t)sz.len[k];
            if (cl_cursor_copy(&c, ev->digests[i].value, sz.len[k]) < 0) {
                rc = LERR(at, "event log: event %zu digest truncated", out.n);
                goto fail;
            }
        }
        ev->ndigests = count;
        uint32_t dlen = 0;
        if (cl_cursor_le32(&c, &dlen) < 0 || dlen > CL_EVENTLOG_MAX_EVENT ||
            cl_cursor_take(&c, dlen, &ev->data) < 0) {
            rc = LERR(at, "event log: event %zu data (%u bytes) truncated or too large", out.n,
                      dlen);
            goto fail;
        }
        ev->data_len = dlen;
        out.n++;
    }
    *log = out;
    return 0;
fail:
    cl_eventlog_clear(&out);
    return rc;
}

int cl_eventlog_replay(const struct cl_eventlog *log, uint32_t index, uint16_t alg, uint8_t *out,
                       size_t *outlen, struct cl_err *err)
{
    CL_TEE_ERR(err);
    const EVP_MD *md = alg_md(alg);
    if (!md)
        return cl_err_stage(err, CL_EUNSUPPORTED, CL_TEE_STAGE_EVENTLOG, "replay: algorithm %#x",
                            alg);
    size_t dl = (size_t)EVP_MD_get_size(md);
    uint8_t acc[64];
    memset(acc, 0, sizeof acc);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_EVENTLOG, "out of memory");
    for (size_t i = 0; i < log->n; i++) {
        const struct cl_eventlog_event *ev = &log->events[i];
        if (ev->index != index || ev->type == CL_TCG_EV_NO_ACTION)
            continue;
        for (size_t k = 0; k < ev->ndigests; k++) {
            if (ev->digests[k].alg != alg)
                continue;
            unsigned ol = 0;
            if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, acc, dl) != 1 ||
                EVP_DigestUpdate(ctx, ev->digests[k].value, ev->digests[k].len) != 1 ||
                EVP_DigestFinal_ex(ctx, acc, &ol) != 1) {
                EVP_MD_CTX_free(ctx);
                return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_EVENTLOG, "replay: digest failed");
            }
        }
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, acc, dl);
    *outlen = dl;
    return 0;
}

/* True when every digest of a known algorithm equals the hash of the event data. */
static bool digests_match(const struct cl_eventlog_event *ev)
{
    bool any = false;
    for (size_t k = 0; k < ev->ndigests; k++) {
        const EVP_MD *md = alg_md(ev->digests[k].alg);
        uint8_t h[EVP_MAX_MD_SIZE];
        unsigned hl = 0;
        if (!md || EVP_Digest(ev->data, ev->data_len, h, &hl, md, NULL) != 1 ||
            hl != ev->digests[k].len || memcmp(h, ev->digests[k].value, hl) != 0)
            return false;
        any = true;
    }
    return any;
}

json_t *cl_eventlog_to_json(const struct cl_eventlog *log, struct cl_err *err)
{
    CL_TEE_ERR(err);
    CL_AUTO(json_t) *arr = json_array();
    if (!arr)
        goto oom;
    for (size_t i = 0; i < log->n; i++) {
        const struct cl_eventlog_event *ev = &log->events[i];
        json_t *details = cl_eventlog_details(ev, err);
        if (!details) {
            cl_err_prefix(err, "event log: event %zu (%s)", i, cl_eventlog_type_name(ev->type));
            return NULL;
        }
        json_t *digests = json_array(); /* NULL makes json_pack fail below */
        for (size_t k = 0; digests && k < ev->ndigests; k++)
            json_array_append_new(
                digests,
                json_pack("{s:s, s:o}", "alg", cl_eventlog_alg_name(ev->digests[k].alg), "digest",
                          cl_tee_json_hex(ev->digests[k].value, ev->digests[k].len)));
        CL_AUTO(cl_str) *b64 = cl_b64_encode(ev->data, ev->data_len, CL_B64_STD);
        json_t *e =
            json_pack("{s:o, s:b, s:o, s:s, s:I, s:s}", "details", details, "digest_matches_event",
                      digests_match(ev), "digests", digests, "event", b64, "index",
                      (json_int_t)ev->index, "type_name", cl_eventlog_type_name(ev->type));
        /* json_pack releases its "o" arguments when it fails */
        if (!e || json_array_append_new(arr, e) < 0)
            goto oom;
    }
    return CL_STEAL(arr);
oom:
    cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_EVENTLOG, "out of memory");
    return NULL;
}
