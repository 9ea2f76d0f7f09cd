/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: TPM structures. First byte selects the surface: 0 TPMS_ATTEST, 1
 * TPMT_SIGNATURE (against a fixed key), 2 evidence JSON for the tpm verifier. Refusals must
 * carry a stage; a parsed quote's fields stay within their buffers.
 */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "tee/tpm/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key(void)
{
    static EVP_PKEY *k;
    if (!k)
        k = EVP_EC_gen("P-256");
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct cl_err err = {0};
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        struct cl_tpm_quote_info q;
        if (cl_tpm_attest_parse(d, n, &q, &err) < 0) {
            if (!err.stage)
                abort();
        } else if (q.extra_len > sizeof q.extra_data || q.pcr_digest_len > sizeof q.pcr_digest ||
                   !q.sha256_mask) {
            abort();
        }
        break;
    }
    case 1:
        if (cl_tpm_signature_verify(key(), d, n, (const uint8_t *)"message", 7, &err) == 0)
            abort(); /* nothing matches a key generated at start */
        break;
    default: {
        json_t *ev = cl_json_parse((const char *)d, n, CL_JSON_MAX_DEPTH, NULL);
        if (!ev)
            break;
        uint8_t rd[48] = {0};
        struct cl_tee_verify_in in = {ev, rd, sizeof rd, rd, 32, NULL};
        json_t *claims = NULL;
        if (cl_tee_verifier_find("tpm")->verify(&in, &claims, &err) < 0) {
            if (!err.stage || claims)
                abort();
        }
        json_decref(claims);
        json_decref(ev);
        break;
    }
    }
    return 0;
}
