/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hygon CSV: the attestation report (version 1), Hygon's own binary certificates (not X.509)
 * and the chain HRK → HSK → CEK → PEK → report, every link an SM2 signature over SM3 with the
 * signer's user id as the SM2 distinguishing id (OpenSSL 3.0). Layouts were derived from
 * trustee's vectors (csv_evidence.json, hrk.cert); docs/verifiers.md lists them.
 *
 * Stages recorded in cl_err.stage: parse, bind, signature, chain, tcb, claims.
 */
#ifndef CL_TEE_CSV_H
#define CL_TEE_CSV_H

#include "tee/tee.h"

#define CL_CSV_CA_CERT_SIZE 832     /* HRK and HSK */
#define CL_CSV_CA_SIGNED 0x240      /* the CA certificate signature covers [0, 0x240) */
#define CL_CSV_CERT_SIZE 2084       /* CEK and PEK (and the PEK inside the report) */
#define CL_CSV_CERT_SIGNED 0x414    /* the CSV certificate signatures cover [0, 0x414) */
#define CL_CSV_REPORT_V1_SIZE 0x9f4 /* bytes of a version-1 report the verifier reads */
#define CL_CSV_REPORT_MAX 4096      /* the report page as the attester sends it */
#define CL_CSV_REPORT_SIGNED 0xb4   /* the report signature covers [0, 0xb4), as stored (masked) */
#define CL_CSV_COORD                                                                               \
    72 /* a coordinate / signature field: 32 bytes little-endian + zero padding                    \
        */

#define CL_CSV_CURVE_SM2 3
#define CL_CSV_ALGO_SM2_SM3 4
#define CL_CSV_USAGE_OCA 0x1001
#define CL_CSV_USAGE_PEK 0x1002
#define CL_CSV_USAGE_CEK 0x1004

/* Policy bits (report `policy`). */
#define CL_CSV_POLICY_NODBG (1u << 0)

struct cl_csv_pubkey {
    uint32_t curve;
    uint8_t x[32], y[32]; /* big-endian (converted from the little-endian fields) */
    uint8_t uid[254];
    size_t uid_len;
};

struct cl_csv_sig {
    uint32_t usage, algo; /* usage of the key that made it */
    uint8_t r[32], s[32]; /* big-endian */
};

/* HRK / HSK: 832 bytes. */
struct cl_csv_ca_cert {
    uint32_t version, usage;
    uint8_t key_id[16], certifying_id[16];
    struct cl_csv_pubkey key;
    struct cl_csv_sig sig; /* usage/algo not carried by this format: 0 */
    uint8_t raw[CL_CSV_CA_CERT_SIZE];
};

/* CEK / PEK: 2084 bytes. */
struct cl_csv_cert {
    uint32_t version, usage, algo;
    uint8_t api_major, api_minor;
    struct cl_csv_pubkey key;
    struct cl_csv_sig sig[2];
    uint8_t raw[CL_CSV_CERT_SIZE];
};

/* Version-1 report; body fields unmasked (they are stored XOR the anonce word). */
struct cl_csv_report {
    uint8_t user_pubkey_digest[32], vm_id[16], vm_version[16], report_data[64], mnonce[16],
        measure[32];
    uint32_t policy, sig_usage, sig_algo, anonce;
    struct cl_csv_sig sig;
    struct cl_csv_cert pek;                    /* the PEK carried in the report page */
    char serial_number[65];                    /* chip serial number, NUL-terminated */
    uint8_t signed_part[CL_CSV_REPORT_SIGNED]; /* as stored, the bytes the PEK signed */
};

/* Parsers: exact sizes, SM2 curve and algorithm, zero padding of every coordinate. EPARSE. */
CL_MUST_CHECK int cl_csv_ca_cert_parse(const uint8_t *buf, size_t len, struct cl_csv_ca_cert *out,
                                       struct cl_err *err);
CL_MUST_CHECK int cl_csv_cert_parse(const uint8_t *buf, size_t len, struct cl_csv_cert *out,
                                    struct cl_err *err);
/* A CEK/PEK from evidence JSON: the serde object trustee's attester sends ({body:{ver, data:
 * {firmware, reserved1, pubkey:{usage, algo, key:{g, x, y}}, uid_size, user_id, sid,
 * reserved2}}, sigs:[{usage, algo, signature:{r, s}, _reserved}] x2}) or the binary as a byte
 * array / base64. */
CL_MUST_CHECK int cl_csv_cert_from_json(const json_t *v, struct cl_csv_cert *out, const char *what,
                                        struct cl_err *err);
/* The report page (CL_CSV_REPORT_V1_SIZE..CL_CSV_REPORT_MAX bytes). EPARSE / EUNSUPPORTED. */
CL_MUST_CHECK int cl_csv_report_parse(const uint8_t *buf, size_t len, struct cl_csv_report *out,
                                      struct cl_err *err);

/* SM2 (SM3, distinguishing id = the signer's user id) signature of data by key. EVERIFY. */
CL_MUST_CHECK int cl_csv_sm2_verify(const struct cl_csv_pubkey *key, const uint8_t *data,
                                    size_t len, const struct cl_csv_sig *sig, struct cl_err *err);

/* SHA-256 (lowercase hex) of the Hygon root key certificates this build trusts. */
extern const char *const cl_csv_hrk_pins[];
extern const size_t cl_csv_hrk_npins;

/* Chain stage: HRK self-signed; HSK certified by the HRK (certifying id and signature); CEK
 * (usage CEK) signed by the HSK in the signature slot of the HSK's usage; PEK (usage PEK)
 * signed by the CEK. The HRK's pinning is the caller's (cl_csv_hrk_pins). EVERIFY. */
CL_MUST_CHECK int cl_csv_verify_chain(const struct cl_csv_ca_cert *hrk,
                                      const struct cl_csv_ca_cert *hsk,
                                      const struct cl_csv_cert *cek, const struct cl_csv_cert *pek,
                                      struct cl_err *err);
/* Signature stage: the report signed by pek (sig_usage PEK, SM2/SM3). EVERIFY. */
CL_MUST_CHECK int cl_csv_report_verify(const struct cl_csv_report *r, const struct cl_csv_cert *pek,
                                       struct cl_err *err);
/* trustee's claims (new). */
json_t *cl_csv_claims(const struct cl_csv_report *r, struct cl_err *err);

#endif
