/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Hygon CSV attestation report (version 1) as the report page the guest receives: the
 * body [0, 0xbc) stored XOR the anonce word (the body is unmasked word by word here, the
 * signature is checked over the stored bytes), the anonce at 0xbc, the PEK's SM2 signature at
 * 0xc0, the PEK certificate at 0x150, the chip serial number at 0x974. Offsets were derived
 * from trustee's csv_evidence.json (docs/verifiers.md).
 */
#include "tee/csv/csv.h"
#include "tee/tee_int.h"

#include <string.h>

#define OFF_ANONCE 0xbc
#define OFF_SIG 0xc0
#define OFF_PEK 0x150
#define OFF_SN 0x974

int cl_csv_report_parse(const uint8_t *buf, size_t len, struct cl_csv_report *out,
                        struct cl_err *err)
{
    if (len < CL_CSV_REPORT_V1_SIZE || len > CL_CSV_REPORT_MAX)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV report of %zu bytes (want %d..%d)", len, CL_CSV_REPORT_V1_SIZE,
                            CL_CSV_REPORT_MAX);
    struct cl_csv_report r;
    memset(&r, 0, sizeof r);
    uint32_t anonce = (uint32_t)buf[OFF_ANONCE] | (uint32_t)buf[OFF_ANONCE + 1] << 8 |
                      (uint32_t)buf[OFF_ANONCE + 2] << 16 | (uint32_t)buf[OFF_ANONCE + 3] << 24;
    uint8_t body[OFF_ANONCE];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = buf[i] ^ (uint8_t)(anonce >> (8 * (i % 4)));
    struct cl_cursor c = cl_cursor_init(body, sizeof body);
    if (cl_cursor_copy(&c, r.user_pubkey_digest, 32) < 0 || cl_cursor_copy(&c, r.vm_id, 16) < 0 ||
        cl_cursor_copy(&c, r.vm_version, 16) < 0 || cl_cursor_copy(&c, r.report_data, 64) < 0 ||
        cl_cursor_copy(&c, r.mnonce, 16) < 0 || cl_cursor_copy(&c, r.measure, 32) < 0 ||
        cl_cursor_le32(&c, &r.policy) < 0 || cl_cursor_le32(&c, &r.sig_usage) < 0 ||
        cl_cursor_le32(&c, &r.sig_algo) < 0 || cl_cursor_left(&c) != 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "CSV report body truncated");
    r.anonce = anonce;
    if (r.sig_usage != CL_CSV_USAGE_PEK || r.sig_algo != CL_CSV_ALGO_SM2_SM3)
        return cl_err_stage(
            err, CL_EPARSE, CL_TEE_STAGE_PARSE,
            "CSV report sig_usage 0x%x / sig_algo %u (want PEK 0x%x, SM2 %d; a version-2 report?)",
            r.sig_usage, r.sig_algo, CL_CSV_USAGE_PEK, CL_CSV_ALGO_SM2_SM3);
    /* signature r, s: two 72-byte little-endian fields */
    for (size_t i = 0; i < 32; i++) {
        r.sig.r[i] = buf[OFF_SIG + 31 - i];
        r.sig.s[i] = buf[OFF_SIG + CL_CSV_COORD + 31 - i];
    }
    for (size_t i = 32; i < CL_CSV_COORD; i++)
        if (buf[OFF_SIG + i] || buf[OFF_SIG + CL_CSV_COORD + i])
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "CSV report signature: non-zero padding");
    r.sig.usage = r.sig_usage;
    r.sig.algo = r.sig_algo;
    int rc;
    if ((rc = cl_csv_cert_parse(buf + OFF_PEK, CL_CSV_CERT_SIZE, &r.pek, err)) < 0) {
        cl_err_prefix(err, "CSV report PEK");
        return rc;
    }
    memcpy(r.serial_number, buf + OFF_SN, 64);
    r.serial_number[64] = '\0';
    /* the serial number names a folder of the certificate store: letters, digits, '-', '_' */
    if (!r.serial_number[0])
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV report serial number is empty");
    for (size_t i = 0; r.serial_number[i]; i++) {
        char ch = r.serial_number[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return cl_err_stage(
                err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                "CSV report serial number: byte %zu (0x%02x) not a letter, digit, '-' or '_'", i,
                (unsigned char)ch);
    }
    memcpy(r.signed_part, buf, CL_CSV_REPORT_SIGNED);
    *out = r;
    return 0;
}

int cl_csv_report_verify(const struct cl_csv_report *r, const struct cl_csv_cert *pek,
                         struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (pek->usage != CL_CSV_USAGE_PEK)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "CSV report signer is not a PEK (usage 0x%x)", pek->usage);
    if (cl_csv_sm2_verify(&pek->key, r->signed_part, sizeof r->signed_part, &r->sig, err) < 0) {
        err->stage = CL_TEE_STAGE_SIGNATURE;
        return cl_err_prefix(err, "CSV report signature by the PEK");
    }
    return 0;
}

json_t *cl_csv_claims(const struct cl_csv_report *r, struct cl_err *err)
{
    uint32_t p = r->policy;
    CL_AUTO(json_t) *pol = json_pack(
        "{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:i, s:i}", "nodbg", p & 1, "noks",
        (p >> 1) & 1, "es", (p >> 2) & 1, "nosend", (p >> 3) & 1, "domain", (p >> 4) & 1, "csv",
        (p >> 5) & 1, "csv3", (p >> 6) & 1, "asid_reuse", (p >> 7) & 1, "hsk_version",
        (int)((p >> 8) & 0xf), "cek_version", (int)((p >> 12) & 0xf), "api_major",
        (int)((p >> 16) & 0xff), "api_minor", (int)((p >> 24) & 0xff));
    CL_AUTO(json_t) *c =
        pol ? json_pack("{s:i, s:O, s:I, s:I, s:I, s:s}", "version", 1, "policy", pol, "sig_usage",
                        (json_int_t)r->sig_usage, "sig_algo", (json_int_t)r->sig_algo, "anonce",
                        (json_int_t)r->anonce, "serial_number", r->serial_number)
            : NULL;
    if (!c) {
        cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
        return NULL;
    }
    if (cl_tee_set_hex(c, "user_pubkey_digest", r->user_pubkey_digest, 32, err) < 0 ||
        cl_tee_set_hex(c, "vm_id", r->vm_id, 16, err) < 0 ||
        cl_tee_set_hex(c, "vm_version", r->vm_version, 16, err) < 0 ||
        cl_tee_set_hex(c, "report_data", r->report_data, 64, err) < 0 ||
        cl_tee_set_hex(c, "mnonce", r->mnonce, 16, err) < 0 ||
        cl_tee_set_hex(c, "measure", r->measure, 32, err) < 0)
        return NULL;
    return CL_STEAL(c);
}
