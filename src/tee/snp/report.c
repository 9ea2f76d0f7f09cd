/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SEV-SNP attestation report: the binary ABI layout (read through the cursor, every
 * reserved range skipped by size so that the offsets stay visible), the JSON form trustee's
 * attester sends (serde of virtee/sev's AttestationReport) rebuilt into the binary image the
 * signature covers, and the TCB_VERSION layouts of each processor generation.
 */
#include "tee/snp/snp.h"
#include "tee/tee_int.h"

#include <string.h>

enum cl_snp_product cl_snp_product_of(const struct cl_snp_report *r)
{
    if (r->version < 3)
        return CL_SNP_UNKNOWN;
    if (r->cpuid_fam == 0x19) {
        if (r->cpuid_mod <= 0x0f)
            return CL_SNP_MILAN;
        if ((r->cpuid_mod >= 0x10 && r->cpuid_mod <= 0x1f) ||
            (r->cpuid_mod >= 0xa0 && r->cpuid_mod <= 0xaf))
            return CL_SNP_GENOA;
    } else if (r->cpuid_fam == 0x1a && r->cpuid_mod <= 0x11) {
        return CL_SNP_TURIN;
    }
    return CL_SNP_UNKNOWN;
}

const char *cl_snp_product_name(enum cl_snp_product p)
{
    switch (p) {
    case CL_SNP_MILAN:
        return "Milan";
    case CL_SNP_GENOA:
        return "Genoa";
    case CL_SNP_TURIN:
        return "Turin";
    case CL_SNP_UNKNOWN:
        break;
    }
    return "unknown";
}

enum cl_snp_signer cl_snp_signer_of(const struct cl_snp_report *r)
{
    return (enum cl_snp_signer)((r->key_info >> 2) & 7);
}

struct cl_snp_tcb cl_snp_tcb_decode(uint64_t raw, enum cl_snp_product p)
{
    struct cl_snp_tcb t = {0};
    if (p == CL_SNP_TURIN) {
        t.fmc = (uint8_t)raw;
        t.bootloader = (uint8_t)(raw >> 8);
        t.tee = (uint8_t)(raw >> 16);
        t.snp = (uint8_t)(raw >> 24);
    } else {
        t.bootloader = (uint8_t)raw;
        t.tee = (uint8_t)(raw >> 8);
        t.snp = (uint8_t)(raw >> 48);
    }
    t.microcode = (uint8_t)(raw >> 56);
    return t;
}

uint64_t cl_snp_tcb_encode(struct cl_snp_tcb t, enum cl_snp_product p)
{
    if (p == CL_SNP_TURIN)
        return (uint64_t)t.fmc | (uint64_t)t.bootloader << 8 | (uint64_t)t.tee << 16 |
               (uint64_t)t.snp << 24 | (uint64_t)t.microcode << 56;
    return (uint64_t)t.bootloader | (uint64_t)t.tee << 8 | (uint64_t)t.snp << 48 |
           (uint64_t)t.microcode << 56;
}

/* ---- binary ---- */

#define TAKE(fn, dst)                                                                              \
    do {                                                                                           \
        if (fn(&c, (dst)) < 0)                                                                     \
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,                                \
                                "SNP report truncated at %#zx", c.off);                            \
    } while (0)
#define COPY(dst)                                                                                  \
    do {                                                                                           \
        if (cl_cursor_copy(&c, (dst), sizeof(dst)) < 0)                                            \
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,                                \
                                "SNP report truncated at %#zx", c.off);                            \
    } while (0)
#define SKIP(n)                                                                                    \
    do {                                                                                           \
        if (cl_cursor_skip(&c, (n)) < 0)                                                           \
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,                                \
                                "SNP report truncated at %#zx", c.off);                            \
    } while (0)

int cl_snp_report_parse(const uint8_t *buf, size_t len, struct cl_snp_report *out,
                        struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (len != CL_SNP_REPORT_SIZE)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "SNP report is %zu bytes, want %d",
                            len, CL_SNP_REPORT_SIZE);
    struct cl_snp_report r;
    memset(&r, 0, sizeof r);
    struct cl_cursor c = cl_cursor_init(buf, len);
    uint32_t rsvd32 = 0;
    TAKE(cl_cursor_le32, &r.version);      /* 0x000 */
    TAKE(cl_cursor_le32, &r.guest_svn);    /* 0x004 */
    TAKE(cl_cursor_le64, &r.policy);       /* 0x008 */
    COPY(r.family_id);                     /* 0x010 */
    COPY(r.image_id);                      /* 0x020 */
    TAKE(cl_cursor_le32, &r.vmpl);         /* 0x030 */
    TAKE(cl_cursor_le32, &r.sig_algo);     /* 0x034 */
    TAKE(cl_cursor_le64, &r.current_tcb);  /* 0x038 */
    TAKE(cl_cursor_le64, &r.plat_info);    /* 0x040 */
    TAKE(cl_cursor_le32, &r.key_info);     /* 0x048 */
    TAKE(cl_cursor_le32, &rsvd32);         /* 0x04c */
    COPY(r.report_data);                   /* 0x050 */
    COPY(r.measurement);                   /* 0x090 */
    COPY(r.host_data);                     /* 0x0c0 */
    COPY(r.id_key_digest);                 /* 0x0e0 */
    COPY(r.author_key_digest);             /* 0x110 */
    COPY(r.report_id);                     /* 0x140 */
    COPY(r.report_id_ma);                  /* 0x160 */
    TAKE(cl_cursor_le64, &r.reported_tcb); /* 0x180 */
    TAKE(cl_cursor_u8, &r.cpuid_fam);      /* 0x188 */
    TAKE(cl_cursor_u8, &r.cpuid_mod);
    TAKE(cl_cursor_u8, &r.cpuid_step);
    SKIP(0x1a0 - 0x18b);
    COPY(r.chip_id);                        /* 0x1a0 */
    TAKE(cl_cursor_le64, &r.committed_tcb); /* 0x1e0 */
    TAKE(cl_cursor_u8, &r.current_build);   /* 0x1e8 */
    TAKE(cl_cursor_u8, &r.current_minor);
    TAKE(cl_cursor_u8, &r.current_major);
    SKIP(1);
    TAKE(cl_cursor_u8, &r.committed_build); /* 0x1ec */
    TAKE(cl_cursor_u8, &r.committed_minor);
    TAKE(cl_cursor_u8, &r.committed_major);
    SKIP(1);
    TAKE(cl_cursor_le64, &r.launch_tcb);         /* 0x1f0 */
    TAKE(cl_cursor_le64, &r.launch_mit_vector);  /* 0x1f8 */
    TAKE(cl_cursor_le64, &r.current_mit_vector); /* 0x200 */
    SKIP(CL_SNP_SIGNED_SIZE - 0x208);
    COPY(r.sig_r); /* 0x2a0 */
    COPY(r.sig_s); /* 0x2e8 */
    if (r.version < 2 || r.version > 5)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report version %u (2, 3 and 5 are known)", r.version);
    if (r.version < 3) {
        /* the CPUID bytes were reserved before version 3 */
        r.cpuid_fam = r.cpuid_mod = r.cpuid_step = 0;
    }
    if (r.version < 5)
        r.launch_mit_vector = r.current_mit_vector = 0;
    if (r.sig_algo != 1)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report signature algorithm %u (only 1, ECDSA P-384 with SHA-384)",
                            r.sig_algo);
    enum cl_snp_signer s = cl_snp_signer_of(&r);
    if (s != CL_SNP_VCEK && s != CL_SNP_VLEK)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report key_info %#x names no signing key", r.key_info);
    memcpy(r.raw, buf, CL_SNP_REPORT_SIZE);
    *out = r;
    return 0;
}

#undef TAKE
#undef COPY
#undef SKIP

/* ---- JSON (trustee's serde form) ---- */

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int j_uint(const json_t *o, const char *key, uint64_t max, bool optional, uint64_t *out,
                  struct cl_err *err)
{
    json_t *v = json_object_get(o, key);
    if ((!v || json_is_null(v)) && optional) {
        *out = 0;
        return 0;
    }
    if (max == UINT64_MAX && json_is_integer(v)) {
        /* jansson holds 64-bit fields as signed: bit 63 comes back as a negative number */
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "SNP report '%s': %s", key,
                            v ? "not an integer in range" : "missing");
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int j_bytes(const json_t *o, const char *key, uint8_t *dst, size_t n, struct cl_err *err)
{
    size_t got = 0;
    CL_AUTO(cl_bytes) *b = cl_tee_json_bytes(json_object_get(o, key), n, n, &got, key, err);
    if (!b) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "SNP report");
    }
    memcpy(dst, b, n);
    return 0;
}

static int j_tcb(const json_t *o, const char *key, enum cl_snp_product p, uint64_t *out,
                 struct cl_err *err)
{
    json_t *t = json_object_get(o, key);
    if (!json_is_object(t))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "SNP report '%s': not an object",
                            key);
    uint64_t fmc = 0, bl = 0, tee = 0, snp = 0, uc = 0;
    if (j_uint(t, "fmc", 255, true, &fmc, err) < 0 ||
        j_uint(t, "bootloader", 255, false, &bl, err) < 0 ||
        j_uint(t, "tee", 255, false, &tee, err) < 0 ||
        j_uint(t, "snp", 255, false, &snp, err) < 0 ||
        j_uint(t, "microcode", 255, false, &uc, err) < 0)
        return cl_err_prefix(err, "%s", key);
    if (fmc && p != CL_SNP_TURIN)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report '%s': fmc on a pre-Turin processor", key);
    struct cl_snp_tcb v = {(uint8_t)fmc, (uint8_t)bl, (uint8_t)tee, (uint8_t)snp, (uint8_t)uc};
    *out = cl_snp_tcb_encode(v, p);
    return 0;
}

static int j_version(const json_t *o, const char *key, uint8_t *dst, struct cl_err *err)
{
    json_t *t = json_object_get(o, key);
    if (!t || json_is_null(t))
        return 0;
    uint64_t a = 0, b = 0, c = 0;
    if (!json_is_object(t) || j_uint(t, "build", 255, false, &a, err) < 0 ||
        j_uint(t, "minor", 255, false, &b, err) < 0 || j_uint(t, "major", 255, false, &c, err) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report '%s': want {build, minor, major}", key);
    dst[0] = (uint8_t)a;
    dst[1] = (uint8_t)b;
    dst[2] = (uint8_t)c;
    return 0;
}

int cl_snp_report_from_json(const json_t *v, struct cl_snp_report *out, struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (json_is_string(v)) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *b = cl_b64_decode(json_string_value(v), json_string_length(v),
                                             CL_B64_ANY, CL_SNP_REPORT_SIZE, &n, err);
        if (!b) {
            err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_prefix(err, "SNP report (base64)");
        }
        return cl_snp_report_parse(b, n, out, err);
    }
    if (!json_is_object(v))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report: neither an object nor base64");
    uint8_t raw[CL_SNP_REPORT_SIZE];
    memset(raw, 0, sizeof raw);
    uint64_t x = 0, fam = 0, mod = 0, step = 0;
    if (j_uint(v, "version", 0xffffffff, false, &x, err) < 0)
        return err->code;
    put_le(raw + 0x000, x, 4);
    uint64_t version = x;
    if (j_uint(v, "cpuid_fam_id", 255, true, &fam, err) < 0 ||
        j_uint(v, "cpuid_mod_id", 255, true, &mod, err) < 0 ||
        j_uint(v, "cpuid_step", 255, true, &step, err) < 0)
        return err->code;
    struct cl_snp_report probe = {
        .version = (uint32_t)version, .cpuid_fam = (uint8_t)fam, .cpuid_mod = (uint8_t)mod};
    enum cl_snp_product p = cl_snp_product_of(&probe);
    static const struct {
        const char *key;
        size_t off, width;
        uint64_t max;
    } ints[] = {
        {"guest_svn", 0x004, 4, 0xffffffff}, {"policy", 0x008, 8, UINT64_MAX},
        {"vmpl", 0x030, 4, 0xffffffff},      {"sig_algo", 0x034, 4, 0xffffffff},
        {"plat_info", 0x040, 8, UINT64_MAX}, {"key_info", 0x048, 4, 0xffffffff},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(ints); i++) {
        if (j_uint(v, ints[i].key, ints[i].max, false, &x, err) < 0)
            return err->code;
        put_le(raw + ints[i].off, x, ints[i].width);
    }
    static const struct {
        const char *key;
        size_t off, len;
    } arrays[] = {
        {"family_id", 0x010, 16},         {"image_id", 0x020, 16},  {"report_data", 0x050, 64},
        {"measurement", 0x090, 48},       {"host_data", 0x0c0, 32}, {"id_key_digest", 0x0e0, 48},
        {"author_key_digest", 0x110, 48}, {"report_id", 0x140, 32}, {"report_id_ma", 0x160, 32},
        {"chip_id", 0x1a0, 64},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(arrays); i++)
        if (j_bytes(v, arrays[i].key, raw + arrays[i].off, arrays[i].len, err) < 0)
            return err->code;
    static const struct {
        const char *key;
        size_t off;
    } tcbs[] = {{"current_tcb", 0x038},
                {"reported_tcb", 0x180},
                {"committed_tcb", 0x1e0},
                {"launch_tcb", 0x1f0}};
    for (size_t i = 0; i < CL_ARRAY_LEN(tcbs); i++) {
        if (j_tcb(v, tcbs[i].key, p, &x, err) < 0)
            return err->code;
        put_le(raw + tcbs[i].off, x, 8);
    }
    if (version >= 3) {
        raw[0x188] = (uint8_t)fam;
        raw[0x189] = (uint8_t)mod;
        raw[0x18a] = (uint8_t)step;
    }
    if (j_version(v, "current", raw + 0x1e8, err) < 0 ||
        j_version(v, "committed", raw + 0x1ec, err) < 0)
        return err->code;
    if (version >= 5) {
        if (j_uint(v, "launch_mit_vector", UINT64_MAX, true, &x, err) < 0)
            return err->code;
        put_le(raw + 0x1f8, x, 8);
        if (j_uint(v, "current_mit_vector", UINT64_MAX, true, &x, err) < 0)
            return err->code;
        put_le(raw + 0x200, x, 8);
    }
    json_t *sig = json_object_get(v, "signature");
    if (!json_is_object(sig))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP report 'signature': not an object");
    if (j_bytes(sig, "r", raw + 0x2a0, 72, err) < 0 || j_bytes(sig, "s", raw + 0x2e8, 72, err) < 0)
        return err->code;
    return cl_snp_report_parse(raw, sizeof raw, out, err);
}

static json_t *j_arr(const uint8_t *b, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(b[i]));
    return a;
}

static json_t *j_tcb_obj(uint64_t raw, enum cl_snp_product p)
{
    struct cl_snp_tcb t = cl_snp_tcb_decode(raw, p);
    return json_pack("{s:o, s:i, s:i, s:i, s:i}", "fmc",
                     p == CL_SNP_TURIN ? json_integer(t.fmc) : json_null(), "bootloader",
                     t.bootloader, "tee", t.tee, "snp", t.snp, "microcode", t.microcode);
}

json_t *cl_snp_report_to_json(const struct cl_snp_report *r)
{
    enum cl_snp_product p = cl_snp_product_of(r);
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:o}",
        "version", (json_int_t)r->version, "guest_svn", (json_int_t)r->guest_svn, "policy",
        (json_int_t)r->policy, "family_id", j_arr(r->family_id, 16), "image_id",
        j_arr(r->image_id, 16), "vmpl", (json_int_t)r->vmpl, "sig_algo", (json_int_t)r->sig_algo,
        "current_tcb", j_tcb_obj(r->current_tcb, p), "plat_info", (json_int_t)r->plat_info,
        "key_info", (json_int_t)r->key_info, "report_data", j_arr(r->report_data, 64),
        "measurement", j_arr(r->measurement, 48), "host_data", j_arr(r->host_data, 32),
        "id_key_digest", j_arr(r->id_key_digest, 48), "author_key_digest",
        j_arr(r->author_key_digest, 48), "report_id", j_arr(r->report_id, 32), "report_id_ma",
        j_arr(r->report_id_ma, 32), "reported_tcb", j_tcb_obj(r->reported_tcb, p));
    if (!o)
        return NULL;
    if (r->version >= 3) {
        json_object_set_new(o, "cpuid_fam_id", json_integer(r->cpuid_fam));
        json_object_set_new(o, "cpuid_mod_id", json_integer(r->cpuid_mod));
        json_object_set_new(o, "cpuid_step", json_integer(r->cpuid_step));
    }
    json_object_set_new(o, "chip_id", j_arr(r->chip_id, 64));
    json_object_set_new(o, "committed_tcb", j_tcb_obj(r->committed_tcb, p));
    json_object_set_new(o, "current",
                        json_pack("{s:i, s:i, s:i}", "major", r->current_major, "minor",
                                  r->current_minor, "build", r->current_build));
    json_object_set_new(o, "committed",
                        json_pack("{s:i, s:i, s:i}", "major", r->committed_major, "minor",
                                  r->committed_minor, "build", r->committed_build));
    json_object_set_new(o, "launch_tcb", j_tcb_obj(r->launch_tcb, p));
    if (r->version >= 5) {
        json_object_set_new(o, "launch_mit_vector", json_integer((json_int_t)r->launch_mit_vector));
        json_object_set_new(o, "current_mit_vector",
                            json_integer((json_int_t)r->current_mit_vector));
    }
    json_object_set_new(
        o, "signature",
        json_pack("{s:o, s:o}", "r", j_arr(r->sig_r, 72), "s", j_arr(r->sig_s, 72)));
    return o;
}
