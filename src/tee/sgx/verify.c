/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "sgx" verifier: evidence {"quote": "<base64 DCAP quote v3>"} as trustee's SGX attester
 * (Occlum, enclave-cc) sends it. The quote, its QE report, the PCK chain, the collateral and
 * the TCB evaluation go through the DCAP code TDX uses (tee/tdx: one home); this file holds
 * what is SGX's own. Stages in order: parse → bind (REPORTDATA) → init-data (CONFIGID) →
 * signature → chain → collateral → tcb (TCB level, DEBUG attribute) → claims.
 */
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

#include <string.h>

#define SGX_ATTR_DEBUG 0x02 /* attributes.flags bit 1 */

static int hexset(json_t *o, const char *k, const void *b, size_t n, struct cl_err *err)
{
    return cl_tee_set_hex(o, k, b, n, err);
}

/* trustee's SGX claims: header, body, report_data, init_data (CONFIGID), platform_instance_id. */
static json_t *sgx_claims(const struct cl_tdx_quote *q, const struct cl_tdx_pck *pck,
                          struct cl_err *err)
{
    CL_AUTO(json_t) *hdr = json_object();
    CL_AUTO(json_t) *body = json_object();
    CL_AUTO(json_t) *c = json_object();
    if (!hdr || !body || !c) {
        cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
        return NULL;
    }
    const struct cl_sgx_body *b = &q->sgx_body;
    /* the header fields as they sit in the quote (little-endian bytes) */
    const uint8_t *h = q->header_raw;
    if (hexset(hdr, "version", h, 2, err) < 0 || hexset(hdr, "att_key_type", h + 2, 2, err) < 0 ||
        hexset(hdr, "att_key_data_0", h + 4, 4, err) < 0 ||
        hexset(hdr, "qe_svn", q->reserved, 2, err) < 0 ||
        hexset(hdr, "pce_svn", q->reserved + 2, 2, err) < 0 ||
        hexset(hdr, "vendor_id", q->vendor_id, 16, err) < 0 ||
        hexset(hdr, "user_data", q->user_data, 20, err) < 0)
        return NULL;
    if (hexset(body, "cpu_svn", b->cpu_svn, 16, err) < 0 ||
        hexset(body, "misc_select", b->misc_select, 4, err) < 0 ||
        hexset(body, "reserved1", b->reserved1, 12, err) < 0 ||
        hexset(body, "isv_ext_prod_id", b->isv_ext_prod_id, 16, err) < 0 ||
        hexset(body, "attributes.flags", b->attr_flags, 8, err) < 0 ||
        hexset(body, "attributes.xfrm", b->attr_xfrm, 8, err) < 0 ||
        hexset(body, "mr_enclave", b->mr_enclave, 32, err) < 0 ||
        hexset(body, "reserved2", b->reserved2, 32, err) < 0 ||
        hexset(body, "mr_signer", b->mr_signer, 32, err) < 0 ||
        hexset(body, "reserved3", b->reserved3, 32, err) < 0 ||
        hexset(body, "config_id", b->config_id, 64, err) < 0 ||
        hexset(body, "isv_prod_id", b->isv_prod_id, 2, err) < 0 ||
        hexset(body, "isv_svn", b->isv_svn, 2, err) < 0 ||
        hexset(body, "config_svn", b->config_svn, 2, err) < 0 ||
        hexset(body, "reserved4", b->reserved4, 42, err) < 0 ||
        hexset(body, "isv_family_id", b->isv_family_id, 16, err) < 0 ||
        hexset(body, "report_data", b->report_data, 64, err) < 0)
        return NULL;
    if (json_object_set(c, "header", hdr) < 0 || json_object_set(c, "body", body) < 0) {
        cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
        return NULL;
    }
    if (hexset(c, "report_data", b->report_data, 64, err) < 0 ||
        hexset(c, "init_data", b->config_id, 64, err) < 0)
        return NULL;
    if (pck && pck->has_instance_id) {
        uint8_t rev[16]; /* shown byte-reversed, as for TDX */
        for (int i = 0; i < 16; i++)
            rev[i] = pck->platform_instance_id[15 - i];
        if (hexset(c, "platform_instance_id", rev, 16, err) < 0)
            return NULL;
    }
    return CL_STEAL(c);
}

int cl_sgx_verify_quote(const uint8_t *quote, size_t len, const uint8_t *rd, size_t rd_len,
                        const uint8_t *idd, size_t id_len, const struct cl_tee_config *cfg,
                        const char *const *pins, size_t npins, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    /* ---- parse ---- */
    struct cl_tdx_quote q;
    int rc;
    if ((rc = cl_tdx_quote_parse_any(quote, len, &q, err)) < 0)
        return rc;
    if (!q.sgx)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "quote version %u is a TDX quote, not SGX (3)", q.version);
    /* ---- bind ---- */
    if (rd && !cl_tee_field_matches(q.sgx_body.report_data, 64, rd, rd_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "SGX REPORTDATA does not match the runtime data digest");
    if (idd && !cl_tee_field_matches(q.sgx_body.config_id, 64, idd, id_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
                            "SGX CONFIGID does not match the init-data digest");
    /* ---- signature, chain, collateral, TCB level ---- */
    struct cl_tdx_pck pck;
    CL_AUTO(json_t) *supp = NULL;
    if ((rc = cl_tdx_appraise(&q, cfg, pins, npins, &pck, &supp, err)) < 0)
        return rc;
    if (q.sgx_body.attr_flags[0] & SGX_ATTR_DEBUG) {
        if (!cfg || !cfg->allow_debug_insecure)
            return cl_err_stage(
                err, CL_EDENIED, CL_TEE_STAGE_TCB,
                "the enclave has the DEBUG attribute (set allow_debug_insecure to accept it)");
        cl_insecure("allow_debug_insecure", "accepting an SGX enclave with the DEBUG attribute");
    }
    /* ---- claims ---- */
    json_t *c = sgx_claims(&q, &pck, err);
    if (!c)
        return err->code;
    if (json_object_update(c, supp) < 0) {
        json_decref(c);
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    }
    *claims = c;
    return 0;
}

int cl_tee_sgx_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    json_t *qv = json_object_get(in->evidence, "quote");
    if (!json_is_object(in->evidence) || !json_is_string(qv))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SGX evidence: want {\"quote\": base64}");
    size_t qn = 0;
    CL_AUTO(cl_bytes) *quote = cl_b64_decode(json_string_value(qv), json_string_length(qv),
                                             CL_B64_ANY, CL_TDX_MAX_QUOTE, &qn, err);
    if (!quote) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "SGX evidence 'quote'");
    }
    return cl_sgx_verify_quote(quote, qn, in->report_data, in->report_data_len,
                               in->init_data_digest, in->init_data_len, in->cfg, cl_tdx_root_pins,
                               cl_tdx_root_npins, claims, err);
}
