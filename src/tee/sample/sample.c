/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sample TEE: evidence without any hardware root, {"svn": "...", "report_data": "<b64>"}.
 * It proves nothing and exists for tests and demos; the verifier table marks it insecure so
 * the attestation service refuses it unless the configuration says otherwise. The binding
 * check is still real: report_data must decode to exactly the expected digest.
 */
#include "tee/tee.h"

#include <string.h>

#define SAMPLE_SVN_MAX 64

static int sample_parse_bind(const struct cl_tee_verify_in *in, const char **svn,
                             struct cl_err *err)
{
    const char *rd = NULL;
    if (!json_is_object(in->evidence))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "sample evidence is not a JSON object");
    if (cl_json_get_str(in->evidence, "svn", svn, err) < 0 ||
        cl_json_get_str(in->evidence, "report_data", &rd, err) < 0) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "sample evidence");
    }
    if (strlen(*svn) > SAMPLE_SVN_MAX)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "sample evidence: svn longer than %d", SAMPLE_SVN_MAX);
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw =
        cl_b64_decode(rd, strlen(rd), CL_B64_STD, CL_TEE_REPORT_DATA_MAX, &n, err);
    if (!raw) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "sample evidence 'report_data'");
    }
    if (n != in->report_data_len || !cl_memeq_ct(raw, in->report_data, n))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "sample evidence: report_data does not match the runtime data digest");
    return 0;
}

int cl_tee_sample_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err);
int cl_tee_sample_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    const char *svn = NULL;
    int rc = sample_parse_bind(in, &svn, err);
    if (rc < 0)
        return rc;
    CL_AUTO(json_t) *c = json_pack("{s:s, s:O, s:s, s:{s:i, s:i}, s:b}", "svn", svn, "report_data",
                                   json_object_get(in->evidence, "report_data"), "launch_digest",
                                   "abcde", "platform_version", "major", 1, "minor", 4, "debug", 0);
    if (!c)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    if (in->init_data_digest) {
        /* The sample TEE cannot measure init-data: the claim records the digest, unchecked. */
        CL_AUTO(cl_str) *b64 = cl_b64_encode(in->init_data_digest, in->init_data_len, CL_B64_STD);
        if (!b64 || json_object_set_new(c, "init_data", json_string(b64)) < 0)
            return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    }
    *claims = CL_STEAL(c);
    return 0;
}

int cl_tee_sampledevice_verify(const struct cl_tee_verify_in *in, json_t **claims,
                               struct cl_err *err);
int cl_tee_sampledevice_verify(const struct cl_tee_verify_in *in, json_t **claims,
                               struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    const char *svn = NULL;
    int rc = sample_parse_bind(in, &svn, err);
    if (rc < 0)
        return rc;
    json_t *c = json_pack("{s:s, s:O}", "svn", svn, "report_data",
                          json_object_get(in->evidence, "report_data"));
    if (!c)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    *claims = c;
    return 0;
}

json_t *cl_tee_sample_evidence(const char *tee, const uint8_t *report_data, size_t len,
                               struct cl_err *err)
{
    CL_AUTO(cl_str) *b64 = cl_b64_encode(report_data, len, CL_B64_STD);
    json_t *ev = b64 ? json_pack("{s:s, s:s}", "svn", strcmp(tee, "sampledevice") == 0 ? "2" : "1",
                                 "report_data", b64)
                     : NULL;
    if (!ev)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return ev;
}
