/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SPDM 1.1 measurement transcript an NVIDIA GPU returns: GET_MEASUREMENTS request (37
 * bytes) followed by the MEASUREMENTS response, read through one cursor, and the claims made
 * from it (measurements by index, opaque data in trustee's names).
 */
#include "tee/nvidia/nvidia.h"
#include "tee/tee_int.h"

#include <string.h>

#define SPDM_VERSION_11 0x11
#define SPDM_GET_MEASUREMENTS 0xe0
#define SPDM_MEASUREMENTS 0x60
#define SPDM_SIG_REQUESTED 0x01
#define SPDM_SPEC_DMTF 0x01
#define DMTF_HDR 3 /* type u8 + value size u16 */

#define PERR(...) cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, __VA_ARGS__)

static int parse_request(struct cl_cursor *c, struct cl_nvidia_report *r, struct cl_err *err)
{
    uint8_t code = 0;
    if (cl_cursor_u8(c, &r->version) < 0 || cl_cursor_u8(c, &code) < 0 ||
        cl_cursor_u8(c, &r->req_param1) < 0 || cl_cursor_u8(c, &r->req_param2) < 0 ||
        cl_cursor_copy(c, r->nonce, CL_NVIDIA_NONCE_LEN) < 0 || cl_cursor_u8(c, &r->slot) < 0)
        return PERR("NVIDIA report truncated in the GET_MEASUREMENTS request");
    if (r->version != SPDM_VERSION_11)
        return PERR("NVIDIA report: SPDM version %#x (local verification reads 1.1, 0x11)",
                    r->version);
    if (code != SPDM_GET_MEASUREMENTS)
        return PERR("NVIDIA report: request code %#x is not GET_MEASUREMENTS (0xe0)", code);
    if (!(r->req_param1 & SPDM_SIG_REQUESTED))
        return PERR("NVIDIA report: the request did not ask for a signature (param1 %#x)",
                    r->req_param1);
    return 0;
}

static int parse_blocks(struct cl_cursor *rec, size_t nblocks, struct cl_nvidia_report *r,
                        struct cl_err *err)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < nblocks; i++) {
        struct cl_nvidia_block *b = &r->blocks[i];
        uint8_t spec = 0;
        uint16_t size = 0, vsize = 0;
        struct cl_cursor m;
        if (cl_cursor_u8(rec, &b->index) < 0 || cl_cursor_u8(rec, &spec) < 0 ||
            cl_cursor_le16(rec, &size) < 0)
            return PERR("NVIDIA report: measurement block %zu truncated", i);
        if (cl_cursor_sub(rec, size, &m) < 0)
            return PERR("NVIDIA report: measurement block %zu of %u bytes overruns the record", i,
                        size);
        if (spec != SPDM_SPEC_DMTF)
            return PERR("NVIDIA report: measurement block %u specification %#x is not DMTF",
                        b->index, spec);
        if (b->index == 0 || b->index == 0xff || seen[b->index])
            return PERR("NVIDIA report: measurement block index %u is invalid or repeated",
                        b->index);
        seen[b->index] = true;
        if (cl_cursor_u8(&m, &b->dmtf_type) < 0 || cl_cursor_le16(&m, &vsize) < 0 ||
            vsize != cl_cursor_left(&m) || cl_cursor_take(&m, vsize, &b->value) < 0)
            return PERR("NVIDIA report: measurement block %u value size does not fill the block",
                        b->index);
        b->value_len = vsize;
    }
    if (cl_cursor_left(rec) != 0)
        return PERR("NVIDIA report: %zu bytes after the last measurement block",
                    cl_cursor_left(rec));
    r->nblocks = nblocks;
    return 0;
}

static int parse_opaque(struct cl_cursor *od, struct cl_nvidia_report *r, struct cl_err *err)
{
    while (cl_cursor_left(od)) {
        uint16_t type = 0, size = 0;
        const uint8_t *v = NULL;
        if (cl_cursor_le16(od, &type) < 0 || cl_cursor_le16(od, &size) < 0 ||
            cl_cursor_take(od, size, &v) < 0)
            return PERR("NVIDIA report: opaque data record truncated (at byte %zu)", od->off);
        if (type >= CL_NVIDIA_OD_MAX)
            continue;
        if (r->od[type])
            return PERR("NVIDIA report: opaque data type %u repeated", type);
        r->od[type] = v;
        r->od_len[type] = size;
    }
    return 0;
}

int cl_nvidia_report_parse(const uint8_t *buf, size_t len, struct cl_nvidia_report *out,
                           struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (len > CL_NVIDIA_MAX_REPORT)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE,
                            "NVIDIA report of %zu bytes (at most %d)", len, CL_NVIDIA_MAX_REPORT);
    struct cl_nvidia_report *r = calloc(1, sizeof *r);
    if (!r)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
    struct cl_cursor c = cl_cursor_init(buf, len);
    int rc;
    /* ---- request ---- */
    if ((rc = parse_request(&c, r, err)) < 0)
        goto out;
    /* ---- response header ---- */
    uint8_t ver = 0, code = 0, nblocks = 0, l[3];
    if (cl_cursor_u8(&c, &ver) < 0 || cl_cursor_u8(&c, &code) < 0 ||
        cl_cursor_u8(&c, &r->resp_param1) < 0 || cl_cursor_u8(&c, &r->resp_param2) < 0 ||
        cl_cursor_u8(&c, &nblocks) < 0 || cl_cursor_copy(&c, l, 3) < 0) {
        rc = PERR("NVIDIA report truncated in the MEASUREMENTS response header");
        goto out;
    }
    if (ver != r->version || code != SPDM_MEASUREMENTS) {
        rc = PERR("NVIDIA report: response %#x/%#x is not an SPDM 1.1 MEASUREMENTS response", ver,
                  code);
        goto out;
    }
    /* ---- measurement record ---- */
    size_t rec_len = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16;
    struct cl_cursor rec;
    if (cl_cursor_sub(&c, rec_len, &rec) < 0) {
        rc = PERR("NVIDIA report: measurement record of %zu bytes overruns the report", rec_len);
        goto out;
    }
    if ((rc = parse_blocks(&rec, nblocks, r, err)) < 0)
        goto out;
    /* ---- nonce, opaque data ---- */
    uint16_t od_len = 0;
    struct cl_cursor od;
    if (cl_cursor_copy(&c, r->resp_nonce, CL_NVIDIA_NONCE_LEN) < 0 ||
        cl_cursor_le16(&c, &od_len) < 0 || cl_cursor_sub(&c, od_len, &od) < 0) {
        rc = PERR("NVIDIA report truncated in the responder nonce or opaque data");
        goto out;
    }
    if ((rc = parse_opaque(&od, r, err)) < 0)
        goto out;
    /* ---- signature ---- */
    r->signed_data = buf;
    r->signed_len = c.off;
    if (cl_cursor_copy(&c, r->signature, CL_NVIDIA_SIG_LEN) < 0) {
        rc = PERR("NVIDIA report truncated in the signature");
        goto out;
    }
    for (size_t i = c.off; i < len; i++)
        if (buf[i] != 0) {
            rc = PERR("NVIDIA report: non-zero byte after the signature (at byte %zu)", i);
            goto out;
        }
    *out = *r;
    rc = 0;
out:
    free(r);
    return rc;
}

/* ---- claims ---- */

/* Printable text up to the first NUL; NULL when anything else is in it. */
static json_t *od_string(const uint8_t *v, size_t n)
{
    size_t k = 0;
    while (k < n && v[k])
        k++;
    for (size_t i = 0; i < k; i++)
        if (v[i] < 0x20 || v[i] > 0x7e)
            return NULL;
    for (size_t i = k; i < n; i++)
        if (v[i])
            return NULL;
    return json_stringn((const char *)v, k);
}

/* "96.00.9f.00.01": bytes 3, 2, 1, 0 and 4 of the 8-byte VBIOS version, in hex. */
static json_t *od_vbios(const uint8_t *v, size_t n)
{
    if (n != 8)
        return NULL;
    char s[16];
    snprintf(s, sizeof s, "%02x.%02x.%02x.%02x.%02x", v[3], v[2], v[1], v[0], v[4]);
    return json_string(s);
}

/* The MSRSCNT array: one u32 (LE) per measurement index, from 1. */
static json_t *od_counts(const uint8_t *v, size_t n)
{
    if (n % 4)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; o && i < n / 4; i++) {
        char k[24];
        snprintf(k, sizeof k, "%zu", i + 1);
        uint32_t x = (uint32_t)v[4 * i] | (uint32_t)v[4 * i + 1] << 8 |
                     (uint32_t)v[4 * i + 2] << 16 | (uint32_t)v[4 * i + 3] << 24;
        if (json_object_set_new(o, k, json_integer(x)) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

enum od_form { OD_HEX, OD_STR, OD_VBIOS, OD_COUNTS };

static const struct {
    enum cl_nvidia_opaque type;
    const char *claim;
    enum od_form form;
} od_claims[] = {
    {CL_NVIDIA_OD_BOARD_ID, "board_id", OD_HEX},
    {CL_NVIDIA_OD_CHIP_SKU, "chip_sku", OD_STR},
    {CL_NVIDIA_OD_CHIP_SKU_MOD, "chip_sku_mod", OD_STR},
    {CL_NVIDIA_OD_CPRINFO, "cpr_info", OD_HEX},
    {CL_NVIDIA_OD_DRIVER_VERSION, "driver_version", OD_STR},
    {CL_NVIDIA_OD_FWID, "fwid", OD_HEX},
    {CL_NVIDIA_OD_GPU_INFO, "gpu_info", OD_HEX},
    {CL_NVIDIA_OD_MSRSCNT, "measurement_count", OD_COUNTS},
    {CL_NVIDIA_OD_NVDEC0_STATUS, "nvdec0_status", OD_STR},
    {CL_NVIDIA_OD_PROJECT, "project", OD_STR},
    {CL_NVIDIA_OD_PROJECT_SKU, "project_sku", OD_STR},
    {CL_NVIDIA_OD_PROJECT_SKU_MOD, "project_sku_mod", OD_HEX},
    {CL_NVIDIA_OD_PROTECTED_PCIE_STATUS, "protected_pcie_status", OD_STR},
    {CL_NVIDIA_OD_VBIOS_VERSION, "vbios_version", OD_VBIOS},
};

json_t *cl_nvidia_claims(const struct cl_nvidia_report *r, const char *arch, const char *uuid,
                         struct cl_err *err)
{
    CL_TEE_ERR(err);
    CL_AUTO(json_t) *c = json_object();
    CL_AUTO(json_t) *meas = json_object();
    CL_AUTO(json_t) *cfg = json_object();
    if (!c || !meas || !cfg)
        goto oom;
    for (size_t i = 0; i < r->nblocks; i++) {
        char k[8];
        snprintf(k, sizeof k, "%u", r->blocks[i].index);
        json_t *h = cl_tee_json_hex(r->blocks[i].value, r->blocks[i].value_len);
        if (!h || json_object_set_new(meas, k, h) < 0)
            goto oom;
    }
    for (size_t i = 0; i < CL_ARRAY_LEN(od_claims); i++) {
        const uint8_t *v = r->od[od_claims[i].type];
        size_t n = r->od_len[od_claims[i].type];
        if (!v)
            continue;
        json_t *j = NULL;
        switch (od_claims[i].form) {
        case OD_HEX:
            j = cl_tee_json_hex(v, n);
            break;
        case OD_STR:
            j = od_string(v, n);
            break;
        case OD_VBIOS:
            j = od_vbios(v, n);
            break;
        case OD_COUNTS:
            j = od_counts(v, n);
            break;
        }
        if (!j) {
            cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_CLAIMS,
                         "NVIDIA report: opaque data '%s' is malformed", od_claims[i].claim);
            return NULL;
        }
        if (json_object_set_new(cfg, od_claims[i].claim, j) < 0)
            goto oom;
    }
    if (json_object_set_new(c, "arch", json_string(arch)) < 0 ||
        (uuid && json_object_set_new(c, "uuid", json_string(uuid)) < 0) ||
        json_object_set(c, "measurements", meas) < 0 || json_object_set(c, "config", cfg) < 0)
        goto oom;
    return CL_STEAL(c);
oom:
    cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    return NULL;
}
