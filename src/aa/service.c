/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestation_agent.AttestationAgentService over ttrpc: protobuf in, the agent's answer
 * out (the matching client calls are in client.c, so that a process that only calls the
 * agent does not link the agent). Errors carry upstream's prefixes
 * ("[ERROR:attestation-agent] ...") so logs read the same.
 */
#include "aa/aa.h"

#include "attestation-agent.pb-c.h"

#include <string.h>

#define AA_ERR "[ERROR:attestation-agent] "

static int evidence_common(struct cl_aa *aa, const ProtobufCBinaryData *rd, bool additional,
                           cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    CL_AUTO(cl_str) *ev = NULL;
    if (!additional) {
        ev = cl_aa_get_evidence(aa, rd->data, rd->len, err);
        if (!ev)
            return cl_err_prefix(err, AA_ERR "AA-KBC get evidence failed");
    } else if (!(ev = cl_aa_additional_evidence(rd->data, rd->len, err))) {
        return cl_err_prefix(err, AA_ERR "get additional evidence failed");
    }
    AttestationAgent__GetEvidenceResponse r;
    attestation_agent__get_evidence_response__init(&r);
    /* additional evidence: {"nvidia": ...} when a GPU answered, else the empty string */
    r.evidence.data = (uint8_t *)ev;
    r.evidence.len = ev ? strlen(ev) : 0;
    return cl_ttrpc_pack(&r.base, resp, resp_len, err);
}

static int h_get_evidence(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                          size_t *resp_len, struct cl_err *err)
{
    AttestationAgent__GetEvidenceRequest *r =
        attestation_agent__get_evidence_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "GetEvidence");
    int rc = evidence_common(ctx, &r->runtimedata, false, resp, resp_len, err);
    attestation_agent__get_evidence_request__free_unpacked(r, NULL);
    return rc;
}

static int h_get_additional_evidence(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                                     size_t *resp_len, struct cl_err *err)
{
    AttestationAgent__GetAdditionalEvidenceRequest *r =
        attestation_agent__get_additional_evidence_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "GetAdditionalEvidence");
    int rc = evidence_common(ctx, &r->runtimedata, true, resp, resp_len, err);
    attestation_agent__get_additional_evidence_request__free_unpacked(r, NULL);
    return rc;
}

static int h_get_token(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                       struct cl_err *err)
{
    AttestationAgent__GetTokenRequest *r =
        attestation_agent__get_token_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "GetToken");
    cl_str *tok = cl_aa_get_token(ctx, r->tokentype, err);
    attestation_agent__get_token_request__free_unpacked(r, NULL);
    if (!tok)
        return cl_err_prefix(err, AA_ERR "Get Token failed");
    AttestationAgent__GetTokenResponse out;
    attestation_agent__get_token_response__init(&out);
    size_t tl = strlen(tok);
    out.token.data = (uint8_t *)tok;
    out.token.len = tl;
    int rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
    cl_free_wipe(tok, tl); /* the answer carries the TEE private key */
    return rc;
}

static int h_extend(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                    struct cl_err *err)
{
    AttestationAgent__ExtendRuntimeMeasurementRequest *r =
        attestation_agent__extend_runtime_measurement_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "ExtendRuntimeMeasurement");
    int64_t pcr = -1;
    if (r->opt__register_index_case ==
        ATTESTATION_AGENT__EXTEND_RUNTIME_MEASUREMENT_REQUEST__OPT__REGISTER_INDEX_REGISTER_INDEX)
        pcr = r->registerindex > 1000 ? 1000 : (int64_t)r->registerindex;
    enum cl_aa_extend_result res = CL_AA_EXTEND_OK;
    int rc = cl_aa_extend(ctx, r->domain, r->operation, r->content, pcr, &res, err);
    attestation_agent__extend_runtime_measurement_request__free_unpacked(r, NULL);
    if (rc < 0)
        return cl_err_prefix(err, AA_ERR "extend runtime measurement failed");
    AttestationAgent__ExtendRuntimeMeasurementResponse out;
    attestation_agent__extend_runtime_measurement_response__init(&out);
    out.result = (AttestationAgent__RuntimeMeasurementResult)res;
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

static int bind_common(struct cl_aa *aa, const ProtobufCBinaryData *d, struct cl_err *err)
{
    int rc = cl_aa_bind_init_data(aa, d->data, d->len, err);
    return rc < 0 ? cl_err_prefix(err, AA_ERR "bind init-data failed") : 0;
}

static int h_bind_init_data(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                            size_t *resp_len, struct cl_err *err)
{
    AttestationAgent__BindInitDataRequest *r =
        attestation_agent__bind_init_data_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "BindInitData");
    int rc = bind_common(ctx, &r->digest, err);
    attestation_agent__bind_init_data_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static int h_check_init_data(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                             size_t *resp_len, struct cl_err *err)
{
    AttestationAgent__CheckInitDataRequest *r =
        attestation_agent__check_init_data_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "CheckInitData");
    int rc = bind_common(ctx, &r->digest, err);
    attestation_agent__check_init_data_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static int h_get_tee_type(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                          size_t *resp_len, struct cl_err *err)
{
    AttestationAgent__GetTeeTypeRequest *r =
        attestation_agent__get_tee_type_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "GetTeeType");
    attestation_agent__get_tee_type_request__free_unpacked(r, NULL);
    AttestationAgent__GetTeeTypeResponse out;
    attestation_agent__get_tee_type_response__init(&out);
    out.tee = (char *)(uintptr_t)cl_aa_tee(ctx);
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

static int h_get_additional_tees(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                                 size_t *resp_len, struct cl_err *err)
{
    AttestationAgent__GetAdditionalTeesRequest *r =
        attestation_agent__get_additional_tees_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, AA_ERR, "GetAdditionalTees");
    attestation_agent__get_additional_tees_request__free_unpacked(r, NULL);
    AttestationAgent__GetAdditionalTeesResponse out;
    attestation_agent__get_additional_tees_response__init(&out);
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

const struct cl_ttrpc_method cl_aa_methods[] = {
    {CL_AA_SERVICE, "GetEvidence", h_get_evidence},
    {CL_AA_SERVICE, "GetAdditionalEvidence", h_get_additional_evidence},
    {CL_AA_SERVICE, "GetToken", h_get_token},
    {CL_AA_SERVICE, "ExtendRuntimeMeasurement", h_extend},
    {CL_AA_SERVICE, "BindInitData", h_bind_init_data},
    {CL_AA_SERVICE, "CheckInitData", h_check_init_data},
    {CL_AA_SERVICE, "GetTeeType", h_get_tee_type},
    {CL_AA_SERVICE, "GetAdditionalTees", h_get_additional_tees},
};
const size_t cl_aa_nmethods = CL_ARRAY_LEN(cl_aa_methods);
