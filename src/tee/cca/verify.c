/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "cca" verifier: evidence {"token": [CBOR bytes] | "<base64>"} as trustee's CCA attester
 * sends it. Local appraisal only (trustee's "local" cca-verifier type; Veraison's remote
 * challenge-response service is not spoken). Stages in order: parse → bind (realm challenge)
 * → init-data (realm personalisation value) → signature (realm token by its RAK, platform
 * challenge = digest of the RAK) → chain (platform token by the CPAK of the trust-anchor
 * store) → tcb (platform lifecycle "secured", reference-value store when configured) → claims.
 */
#include "tee/cca/cca.h"
#include "tee/tee_int.h"

#include <string.h>

/* PSA lifecycle ranges (the major nibble of cca-platform-lifecycle). */
#define LIFECYCLE_SECURED 0x3
#define LIFECYCLE_NON_PSA_ROT_DEBUG 0x4

static json_t *load_store(const char *path, const char *what, const char *stage, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, CL_CCA_MAX_STORE, &n, err);
    if (!b) {
        err->stage = stage;
        cl_err_prefix(err, "%s %s", what, path);
        return NULL;
    }
    json_t *j = cl_json_parse((const char *)b, n, CL_JSON_MAX_DEPTH, err);
    if (!j) {
        err->stage = stage;
        cl_err_prefix(err, "%s %s", what, path);
    }
    return j;
}

static int check_lifecycle(const struct cl_cca_platform *p, const struct cl_tee_config *cfg,
                           struct cl_err *err)
{
    unsigned major = (unsigned)(p->lifecycle >> 12);
    if (p->lifecycle > 0xffff ||
        (major != LIFECYCLE_SECURED && major != LIFECYCLE_NON_PSA_ROT_DEBUG))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "CCA platform lifecycle 0x%llx is not 'secured' (0x3000..0x30ff)",
                            (unsigned long long)p->lifecycle);
    if (major == LIFECYCLE_NON_PSA_ROT_DEBUG) {
        if (!cfg || !cfg->allow_debug_insecure)
            return cl_err_stage(err, CL_EDENIED, CL_TEE_STAGE_TCB,
                                "CCA platform lifecycle 0x%llx is a debug state (set "
                                "allow_debug_insecure to accept it)",
                                (unsigned long long)p->lifecycle);
        cl_insecure("allow_debug_insecure", "accepting a CCA platform in lifecycle state 0x%llx",
                    (unsigned long long)p->lifecycle);
    }
    return 0;
}

int cl_tee_cca_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    const struct cl_tee_config *cfg = in->cfg;
    /* ---- parse ---- */
    if (!json_is_object(in->evidence))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA evidence is not a JSON object");
    size_t n = 0;
    CL_AUTO(cl_bytes) *tok = cl_tee_json_bytes(json_object_get(in->evidence, "token"), 0,
                                               CL_CCA_MAX_TOKEN, &n, "CCA evidence 'token'", err);
    if (!tok) {
        err->stage = CL_TEE_STAGE_PARSE;
        return err->code;
    }
    struct cl_cca_token t;
    int rc;
    if ((rc = cl_cca_token_parse(tok, n, &t, err)) < 0)
        return rc;
    /* ---- bind: the realm challenge, before anything else in the token is used ---- */
    if (in->report_data && !cl_tee_field_matches(t.realm.challenge.p, t.realm.challenge.n,
                                                 in->report_data, in->report_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "CCA realm challenge does not match the runtime data digest");
    if (in->init_data_digest &&
        !cl_tee_field_matches(t.realm.personalization.p, t.realm.personalization.n,
                              in->init_data_digest, in->init_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
                            "CCA realm personalisation value does not match the init-data digest");
    /* ---- signature (realm, RAK binding) and chain (platform, CPAK) ---- */
    if ((rc = cl_cca_verify_realm(&t, err)) < 0)
        return rc;
    if (!cfg || !cfg->cca_ta_store)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "no CCA trust-anchor store configured (cca_verifier.ta_store): the "
                            "CPAK cannot be checked");
    CL_AUTO(json_t) *ta =
        load_store(cfg->cca_ta_store, "CCA trust-anchor store", CL_TEE_STAGE_CHAIN, err);
    if (!ta)
        return err->code;
    if ((rc = cl_cca_verify_platform(&t, ta, err)) < 0)
        return rc;
    /* ---- tcb ---- */
    if ((rc = check_lifecycle(&t.platform, cfg, err)) < 0)
        return rc;
    if (cfg->cca_rv_store) {
        CL_AUTO(json_t) *rv =
            load_store(cfg->cca_rv_store, "CCA reference-value store", CL_TEE_STAGE_TCB, err);
        if (!rv)
            return err->code;
        if ((rc = cl_cca_appraise(&t, rv, err)) < 0)
            return rc;
    }
    /* ---- claims ---- */
    json_t *c = cl_cca_claims(&t, err);
    if (!c)
        return err->code ? err->code : CL_ENOMEM;
    *claims = c;
    return 0;
}
