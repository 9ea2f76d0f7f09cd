/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: TDX quotes. The parser (header, body v4/v5, signature data, QE report,
 * PCK chain) and the guest's header-and-body reader, which must agree with it, then the
 * cryptographic checks against Intel's pinned root (which nothing generated here can reach: they
 * must refuse with a stage), the SGX extension reader on the chain's leaf, and the claim mapper.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_tdx_quote q, head;
    struct cl_err err = {0};
    /* the guest's reader (header and body only) agrees with the full parser */
    int head_rc = cl_tdx_quote_parse_head(data, size, &head, &err);
    if (head_rc < 0 && (!err.stage || err.msg[0] == '\0'))
        abort();
    if (head_rc == 0 && head.signed_len > size)
        abort();
    if (cl_tdx_quote_parse(data, size, &q, &err) < 0) {
        if (!err.stage || err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (q.signed_len > size || q.pck_pem_len > size || q.qe_auth_len > size)
        abort();
    if (head_rc != 0 || head.signed_len != q.signed_len ||
        memcmp(&head.body, &q.body, sizeof q.body) != 0)
        abort();
    struct cl_tdx_pck pck;
    if (cl_tdx_verify_quote(&q, cl_tdx_root_pins, cl_tdx_root_npins, 1748736000, NULL, &pck, NULL,
                            &err) == 0)
        abort(); /* a generated chain never ends in Intel's root */
    STACK_OF(X509) *chain = cl_tee_x509_parse_any(q.pck_pem, q.pck_pem_len, NULL);
    if (chain && sk_X509_num(chain) > 0 &&
        cl_tdx_pck_parse(sk_X509_value(chain, 0), &pck, &err) == 0 && pck.sgx_type > 2)
        abort();
    sk_X509_pop_free(chain, X509_free);
    json_t *c = cl_tdx_claims(&q, NULL, NULL, 0, NULL);
    if (!c)
        abort();
    json_decref(c);
    return 0;
}
