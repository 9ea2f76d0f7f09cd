/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVIDIA confidential GPUs (Hopper in CC mode), verified locally as trustee's "nvidia"
 * verifier does without NRAS: the SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response
 * the GPU signed with its device key (ECDSA P-384, raw r ‖ s over SHA-384 of request ‖
 * response), the device certificate chain to NVIDIA's Device Identity CA (pinned), the FWID
 * of the signing certificate equal to the one in the report, the request nonce bound to the
 * runtime data, and the measurements and opaque data (driver, VBIOS, SKU...) as claims.
 *
 * Stages: parse, bind, chain, signature, claims.
 */
#ifndef CL_TEE_NVIDIA_H
#define CL_TEE_NVIDIA_H

#include <openssl/x509.h>

#include "tee/tee.h"

#define CL_NVIDIA_MAX_REPORT 65536 /* bytes of one SPDM request ‖ response */
#define CL_NVIDIA_MAX_CHAIN 16384  /* bytes of one device certificate chain (PEM) */
#define CL_NVIDIA_MAX_CERTS 8      /* certificates in one device chain */
#define CL_NVIDIA_MAX_DEVICES 16   /* devices in one evidence document */
#define CL_NVIDIA_MAX_BLOCKS 255   /* measurement blocks (SPDM counts them in a byte) */
#define CL_NVIDIA_NONCE_LEN 32
#define CL_NVIDIA_SIG_LEN 96 /* P-384 r ‖ s */
#define CL_NVIDIA_FWID_LEN 48

/* Opaque data types of the MEASUREMENTS response that become claims (NVIDIA's numbering, read
 * from the vectors: each value was matched to trustee's expected claims). */
enum cl_nvidia_opaque {
    CL_NVIDIA_OD_DRIVER_VERSION = 3,
    CL_NVIDIA_OD_GPU_INFO = 4,
    CL_NVIDIA_OD_VBIOS_VERSION = 6,
    CL_NVIDIA_OD_NVDEC0_STATUS = 11,
    CL_NVIDIA_OD_MSRSCNT = 12,
    CL_NVIDIA_OD_CPRINFO = 13,
    CL_NVIDIA_OD_BOARD_ID = 14,
    CL_NVIDIA_OD_CHIP_SKU = 15,
    CL_NVIDIA_OD_CHIP_SKU_MOD = 16,
    CL_NVIDIA_OD_PROJECT = 17,
    CL_NVIDIA_OD_PROJECT_SKU = 18,
    CL_NVIDIA_OD_PROJECT_SKU_MOD = 19,
    CL_NVIDIA_OD_FWID = 20,
    CL_NVIDIA_OD_PROTECTED_PCIE_STATUS = 21,
    CL_NVIDIA_OD_MAX = 64 /* types at or above are kept out of the claims */
};

struct cl_nvidia_block {
    uint8_t index;        /* 1..254 */
    uint8_t dmtf_type;    /* DMTF measurement value type */
    const uint8_t *value; /* borrowed from the report */
    uint16_t value_len;
};

struct cl_nvidia_report {
    /* GET_MEASUREMENTS request (37 bytes) */
    uint8_t version; /* SPDM version, 0x11 */
    uint8_t req_param1, req_param2, slot;
    uint8_t nonce[CL_NVIDIA_NONCE_LEN]; /* the requester's nonce: what binds the runtime data */
    /* MEASUREMENTS response */
    uint8_t resp_param1, resp_param2;
    size_t nblocks;
    struct cl_nvidia_block blocks[CL_NVIDIA_MAX_BLOCKS];
    uint8_t resp_nonce[CL_NVIDIA_NONCE_LEN];
    /* opaque data: type → value (borrowed); NULL when absent */
    const uint8_t *od[CL_NVIDIA_OD_MAX];
    uint16_t od_len[CL_NVIDIA_OD_MAX];
    /* signature over signed[0 .. signed_len) (borrowed), r ‖ s big-endian */
    const uint8_t *signed_data;
    size_t signed_len;
    uint8_t signature[CL_NVIDIA_SIG_LEN];
};

/* Parses request ‖ response (SPDM 1.1, signature requested, measurement blocks in DMTF form,
 * opaque data as {u16 type, u16 size, value} records). Zero bytes after the signature are
 * ignored (captured reports are padded); anything else there is refused. The report keeps
 * pointers into buf. EPARSE naming the field, ELIMIT over CL_NVIDIA_MAX_REPORT. */
CL_MUST_CHECK int cl_nvidia_report_parse(const uint8_t *buf, size_t len, struct cl_nvidia_report *r,
                                         struct cl_err *err);

/* SHA-256 fingerprint(s) of NVIDIA's Device Identity CA. */
extern const char *const cl_nvidia_root_pins[];
extern const size_t cl_nvidia_root_npins;

/* The device chain (leaf first, the root last, pinned by pins[npins]): every link signed by
 * the next certificate, parents are CAs, all valid at `at`; then the leaf's FWID (last 48 bytes
 * of the TCG DICE extension 2.23.133.5.4.1) into fwid. Stage chain. */
CL_MUST_CHECK int cl_nvidia_chain_verify(STACK_OF(X509) * chain, const char *const *pins,
                                         size_t npins, int64_t at, uint8_t fwid[CL_NVIDIA_FWID_LEN],
                                         struct cl_err *err);

/* One device: report and chain (PEM text) verified — bind (nonce == report data truncated to
 * 32 bytes; skipped when rd is NULL), chain, FWID, signature — and its claims (new) in
 * trustee's names: arch, uuid (when given), measurements {index: hex}, config {...}. */
CL_MUST_CHECK int cl_nvidia_verify_device(const uint8_t *report, size_t report_len,
                                          const uint8_t *chain_pem, size_t chain_len,
                                          const char *arch, const char *uuid, const uint8_t *rd,
                                          size_t rd_len, const char *const *pins, size_t npins,
                                          int64_t at, json_t **claims, struct cl_err *err);

/* The claims of a parsed report (new), without any verification (the fuzz harness and the
 * verifier, after its checks). */
json_t *cl_nvidia_claims(const struct cl_nvidia_report *r, const char *arch, const char *uuid,
                         struct cl_err *err);

#endif
