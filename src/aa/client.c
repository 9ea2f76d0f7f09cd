/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of attestation_agent.AttestationAgentService, used by the data hub, its
 * REST bridge and the CLI. A file of its own: the hub links these calls without the agent's
 * attesters, verifiers and event log, which service.c's method table would pull in.
 */
#include "aa/aa.h"

#include "attestation-agent.pb-c.h"

#include <string.h>

static int call(struct cl_ttrpc_client *c, const char *method, const ProtobufCMessage *m,
                unsigned timeout_ms, cl_bytes **out, size_t *outlen, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *req = NULL;
    if (cl_ttrpc_pack(m, &req, &n, err) < 0)
        return err->code;
    return cl_ttrpc_call(c, CL_AA_SERVICE, method, req, n, timeout_ms, out, outlen, err);
}

int cl_aa_client_get_token(struct cl_ttrpc_client *c, const char *type, cl_bytes **out,
                           size_t *outlen, struct cl_err *err)
{
    AttestationAgent__GetTokenRequest r;
    attestation_agent__get_token_request__init(&r);
    r.tokentype = (char *)(uintptr_t)type;
    cl_bytes *raw = NULL;
    size_t n = 0;
    if (call(c, "GetToken", &r.base, 0, &raw, &n, err) < 0)
        return err->code;
    AttestationAgent__GetTokenResponse *resp =
        attestation_agent__get_token_response__unpack(NULL, n, raw);
    cl_free_wipe(raw, n);
    if (!resp)
        return cl_err_set(err, CL_EPARSE, "GetToken: the answer is not a GetTokenResponse");
    int rc = 0;
    *out = malloc(resp->token.len + 1);
    if (!*out) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
        memcpy(*out, resp->token.data, resp->token.len);
        (*out)[resp->token.len] = 0;
        *outlen = resp->token.len;
    }
    if (resp->token.data)
        explicit_bzero(resp->token.data, resp->token.len);
    attestation_agent__get_token_response__free_unpacked(resp, NULL);
    return rc;
}

int cl_aa_client_get_evidence(struct cl_ttrpc_client *c, const uint8_t *rd, size_t len,
                              bool additional, cl_bytes **out, size_t *outlen, struct cl_err *err)
{
    cl_bytes *raw = NULL;
    size_t n = 0;
    int rc;
    if (additional) {
        AttestationAgent__GetAdditionalEvidenceRequest r;
        attestation_agent__get_additional_evidence_request__init(&r);
        r.runtimedata.data = (uint8_t *)(uintptr_t)rd;
        r.runtimedata.len = len;
        rc = call(c, "GetAdditionalEvidence", &r.base, 0, &raw, &n, err);
    } else {
        AttestationAgent__GetEvidenceRequest r;
        attestation_agent__get_evidence_request__init(&r);
        r.runtimedata.data = (uint8_t *)(uintptr_t)rd;
        r.runtimedata.len = len;
        rc = call(c, "GetEvidence", &r.base, 0, &raw, &n, err);
    }
    if (rc < 0)
        return rc;
    AttestationAgent__GetEvidenceResponse *resp =
        attestation_agent__get_evidence_response__unpack(NULL, n, raw);
    free(raw);
    if (!resp)
        return cl_err_set(err, CL_EPARSE, "GetEvidence: the answer is not a GetEvidenceResponse");
    *out = malloc(resp->evidence.len + 1);
    if (*out) {
        memcpy(*out, resp->evidence.data, resp->evidence.len);
        (*out)[resp->evidence.len] = 0;
        *outlen = resp->evidence.len;
    }
    attestation_agent__get_evidence_response__free_unpacked(resp, NULL);
    return *out ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

int cl_aa_client_get_tee(struct cl_ttrpc_client *c, cl_str **tee, struct cl_err *err)
{
    AttestationAgent__GetTeeTypeRequest r;
    attestation_agent__get_tee_type_request__init(&r);
    cl_bytes *raw = NULL;
    size_t n = 0;
    if (call(c, "GetTeeType", &r.base, 0, &raw, &n, err) < 0)
        return err->code;
    AttestationAgent__GetTeeTypeResponse *resp =
        attestation_agent__get_tee_type_response__unpack(NULL, n, raw);
    free(raw);
    if (!resp)
        return cl_err_set(err, CL_EPARSE, "GetTeeType: the answer is not a GetTeeTypeResponse");
    *tee = strdup(resp->tee);
    attestation_agent__get_tee_type_response__free_unpacked(resp, NULL);
    return *tee ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

int cl_aa_client_extend(struct cl_ttrpc_client *c, const char *domain, const char *operation,
                        const char *content, int *result, struct cl_err *err)
{
    AttestationAgent__ExtendRuntimeMeasurementRequest r;
    attestation_agent__extend_runtime_measurement_request__init(&r);
    r.domain = (char *)(uintptr_t)domain;
    r.operation = (char *)(uintptr_t)operation;
    r.content = (char *)(uintptr_t)content;
    cl_bytes *raw = NULL;
    size_t n = 0;
    if (call(c, "ExtendRuntimeMeasurement", &r.base, 10000, &raw, &n, err) < 0)
        return err->code;
    AttestationAgent__ExtendRuntimeMeasurementResponse *resp =
        attestation_agent__extend_runtime_measurement_response__unpack(NULL, n, raw);
    free(raw);
    if (!resp)
        return cl_err_set(err, CL_EPARSE, "ExtendRuntimeMeasurement: malformed answer");
    *result = (int)resp->result;
    attestation_agent__extend_runtime_measurement_response__free_unpacked(resp, NULL);
    return 0;
}
