/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: SGX (DCAP v3) quotes through the DCAP parser TDX shares, then the sgx
 * verifier against Intel's pinned root (which nothing generated here reaches: it must refuse
 * with a stage), and the SGX extension reader on the chain's leaf.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_tdx_quote q;
    struct cl_err err = {0};
    if (cl_tdx_quote_parse_any(data, size, &q, &err) < 0) {
        if (!err.stage || err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (q.signed_len > size || q.pck_pem_len > size || q.qe_auth_len > size)
        abort();
    struct cl_tee_config cfg = {.verify_time = 1748736000, .allow_debug_insecure = true};
    json_t *claims = NULL;
    if (q.sgx && cl_sgx_verify_quote(data, size, NULL, 0, NULL, 0, &cfg, cl_tdx_root_pins,
                                     cl_tdx_root_npins, &claims, &err) == 0)
        abort();
    STACK_OF(X509) *chain = cl_tee_x509_parse_any(q.pck_pem, q.pck_pem_len, NULL);
    struct cl_tdx_pck pck;
    if (chain && sk_X509_num(chain) > 0 &&
        cl_tdx_pck_parse(sk_X509_value(chain, 0), &pck, &err) == 0 && pck.sgx_type > 2)
        abort();
    sk_X509_pop_free(chain, X509_free);
    return 0;
}
