/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "tdx" verifier: evidence {"quote": "<base64 quote>", "cc_eventlog": "<base64 CCEL>" |
 * null} as trustee's TDX attester sends it. Stages in order: parse → bind (REPORTDATA) →
 * init-data (MRCONFIGID) → signature (quote, QE report, key binding) → chain (PCK chain to
 * the pinned root) → collateral (TCB info / QE identity signatures, validity, CRLs) → tcb
 * (TCB level, TD attributes) → eventlog (CCEL replayed against the RTMRs) → claims.
 */
#include "tee/eventlog/eventlog.h"
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

#include <openssl/x509v3.h>
#include <string.h>

#define CL_TDX_MAX_CCEL (4u << 20)

#define TD_ATTR_DEBUG (1ull << 0)
#define TD_ATTR_SEPT_VE_DISABLE (1ull << 28)
#define TD_ATTR_PKS (1ull << 30)
#define TD_ATTR_KL (1ull << 31)
#define TD_ATTR_PERFMON (1ull << 63)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int set_hex(json_t *o, const char *k, const void *b, size_t n, struct cl_err *err)
{
    return cl_tee_set_hex(o, k, b, n, err);
}

json_t *cl_tdx_claims(const struct cl_tdx_quote *q, const struct cl_tdx_pck *pck,
                      const uint8_t *ccel, size_t ccel_len, struct cl_err *err)
{
    CL_TEE_ERR(err);
    CL_AUTO(json_t) *hdr = json_object();
    CL_AUTO(json_t) *body = json_object();
    CL_AUTO(json_t) *c = json_object();
    if (!hdr || !body || !c)
        goto oom;
    const struct cl_tdx_body *b = &q->body;
    uint8_t le[4];
    le[0] = (uint8_t)q->version;
    le[1] = (uint8_t)(q->version >> 8);
    if (set_hex(hdr, "version", le, 2, err) < 0)
        return NULL;
    le[0] = (uint8_t)q->att_key_type;
    le[1] = (uint8_t)(q->att_key_type >> 8);
    if (set_hex(hdr, "att_key_type", le, 2, err) < 0)
        return NULL;
    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(q->tee_type >> (8 * i));
    if (set_hex(hdr, "tee_type", le, 4, err) < 0 ||
        set_hex(hdr, "reserved", q->reserved, 4, err) < 0 ||
        set_hex(hdr, "vendor_id", q->vendor_id, 16, err) < 0 ||
        set_hex(hdr, "user_data", q->user_data, 20, err) < 0)
        return NULL;
    static const char *const rtmr[] = {"rtmr_0", "rtmr_1", "rtmr_2", "rtmr_3"};
    if (set_hex(body, "tcb_svn", b->tee_tcb_svn, 16, err) < 0 ||
        set_hex(body, "mr_seam", b->mr_seam, 48, err) < 0 ||
        set_hex(body, "mrsigner_seam", b->mrsigner_seam, 48, err) < 0 ||
        set_hex(body, "seam_attributes", b->seam_attributes, 8, err) < 0 ||
        set_hex(body, "td_attributes", b->td_attributes, 8, err) < 0 ||
        set_hex(body, "xfam", b->xfam, 8, err) < 0 ||
        set_hex(body, "mr_td", b->mr_td, 48, err) < 0 ||
        set_hex(body, "mr_config_id", b->mr_config_id, 48, err) < 0 ||
        set_hex(body, "mr_owner", b->mr_owner, 48, err) < 0 ||
        set_hex(body, "mr_owner_config", b->mr_owner_config, 48, err) < 0)
        return NULL;
    for (int i = 0; i < 4; i++)
        if (set_hex(body, rtmr[i], b->rtmr[i], 48, err) < 0)
            return NULL;
    if (set_hex(body, "report_data", b->report_data, 64, err) < 0)
        return NULL;
    if (q->body_type == 3 && (set_hex(body, "tee_tcb_svn2", b->tee_tcb_svn2, 16, err) < 0 ||
                              set_hex(body, "mr_servicetd", b->mr_servicetd, 48, err) < 0))
        return NULL;
    json_t *quote = json_pack("{s:O, s:O}", "header", hdr, "body", body);
    if (!quote || json_object_set_new(c, "quote", quote) < 0)
        goto oom;
    if (q->version == 5) {
        uint8_t t[2] = {(uint8_t)q->body_type, (uint8_t)(q->body_type >> 8)};
        uint8_t s[4];
        for (int i = 0; i < 4; i++)
            s[i] = (uint8_t)(q->body_size >> (8 * i));
        if (set_hex(quote, "type", t, 2, err) < 0 || set_hex(quote, "size", s, 4, err) < 0)
            return NULL;
    }
    uint64_t attr = le64(b->td_attributes);
    json_t *ta = json_pack(
        "{s:b, s:b, s:b, s:b, s:b}", "debug", (attr & TD_ATTR_DEBUG) != 0, "key_locker",
        (attr & TD_ATTR_KL) != 0, "perfmon", (attr & TD_ATTR_PERFMON) != 0, "protection_keys",
        (attr & TD_ATTR_PKS) != 0, "septve_disable", (attr & TD_ATTR_SEPT_VE_DISABLE) != 0);
    if (!ta || json_object_set_new(c, "td_attributes", ta) < 0)
        goto oom;
    if (set_hex(c, "report_data", b->report_data, 64, err) < 0 ||
        set_hex(c, "init_data", b->mr_config_id, 48, err) < 0)
        return NULL;
    if (pck && pck->has_instance_id) {
        /* trustee shows the PCK's platform instance id byte-reversed */
        uint8_t rev[16];
        for (int i = 0; i < 16; i++)
            rev[i] = pck->platform_instance_id[15 - i];
        if (set_hex(c, "platform_instance_id", rev, 16, err) < 0)
            return NULL;
    }
    if (ccel) {
        struct cl_eventlog log;
        if (cl_eventlog_parse(ccel, ccel_len, &log, err) < 0)
            return NULL;
        json_t *ev = cl_eventlog_to_json(&log, err);
        cl_eventlog_clear(&log);
        if (!ev)
            return NULL;
        if (json_object_set_new(c, "uefi_event_logs", ev) < 0)
            goto oom;
    }
    return CL_STEAL(c);
oom:
    cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    return NULL;
}

static unsigned allow_bit(enum cl_tdx_tcb_status s)
{
    switch (s) {
    case CL_TDX_SW_HARDENING_NEEDED:
        return CL_TEE_TCB_SW_HARDENING_NEEDED;
    case CL_TDX_CONFIGURATION_NEEDED:
        return CL_TEE_TCB_CONFIGURATION_NEEDED;
    case CL_TDX_CONFIGURATION_AND_SW_HARDENING_NEEDED:
        return CL_TEE_TCB_CONFIGURATION_NEEDED | CL_TEE_TCB_SW_HARDENING_NEEDED;
    case CL_TDX_TD_RELAUNCH_ADVISED:
        return CL_TEE_TCB_TD_RELAUNCH_ADVISED;
    case CL_TDX_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED:
        return CL_TEE_TCB_TD_RELAUNCH_ADVISED | CL_TEE_TCB_CONFIGURATION_NEEDED;
    case CL_TDX_OUT_OF_DATE:
        return CL_TEE_TCB_OUT_OF_DATE;
    case CL_TDX_OUT_OF_DATE_CONFIGURATION_NEEDED:
        return CL_TEE_TCB_OUT_OF_DATE | CL_TEE_TCB_CONFIGURATION_NEEDED;
    default:
        return 0;
    }
}

static json_t *crl_number(X509_CRL *crl)
{
    if (!crl)
        return NULL;
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    int64_t v = 0;
    json_t *j = n && ASN1_INTEGER_get_int64(&v, n) == 1 ? json_integer((json_int_t)v) : NULL;
    ASN1_INTEGER_free(n);
    return j;
}

/* The DCAP "supplemental" claims trustee adds after a verification. */
static int supplemental(json_t *c, const struct cl_tdx_pck *pck, const struct cl_tdx_tcb_result *r,
                        bool expired, const struct cl_tdx_collateral *col, struct cl_err *err)
{
    static const char *const sgx_types[] = {"Standard", "Scalable", "Scalable with Integrity"};
    json_t *adv = r->advisory_ids ? json_incref(r->advisory_ids) : json_array();
    int rc = 0;
    rc |= json_object_set_new(c, "tcb_status", json_string(cl_tdx_status_name(r->status)));
    rc |= json_object_set_new(c, "collateral_expiration_status", json_string(expired ? "1" : "0"));
    rc |= json_object_set_new(c, "advisory_ids", adv);
    rc |= json_object_set_new(c, "tcb_date", json_string(r->tcb_date));
    rc |= json_object_set_new(c, "tcb_eval_num", json_integer((json_int_t)r->tcb_eval_num));
    rc |= json_object_set_new(c, "earliest_issue_date", json_string(r->issue_date));
    rc |= json_object_set_new(c, "latest_issue_date", json_string(r->latest_issue));
    rc |= json_object_set_new(c, "earliest_expiration_date", json_string(r->next_update));
    rc |= json_object_set_new(c, "sgx_type", json_string(sgx_types[pck->sgx_type % 3]));
    if (pck->has_config) {
        rc |= json_object_set_new(c, "is_dynamic_platform", json_boolean(pck->dynamic_platform));
        rc |= json_object_set_new(c, "is_cached_keys", json_boolean(pck->cached_keys));
        rc |= json_object_set_new(c, "is_smt_enabled", json_boolean(pck->smt_enabled));
    }
    json_t *n = crl_number(col->pck_crl);
    if (n)
        rc |= json_object_set_new(c, "pck_crl_num", n);
    n = crl_number(col->root_crl);
    if (n)
        rc |= json_object_set_new(c, "root_ca_crl_num", n);
    if (rc)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    return cl_tee_set_hex(c, "platform_provider_id", pck->ppid, 16, err);
}

int cl_tdx_appraise(const struct cl_tdx_quote *q, const struct cl_tee_config *cfg,
                    const char *const *pins, size_t npins, struct cl_tdx_pck *pck_out,
                    json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    int64_t at = cl_tee_time(cfg);
    const char *kind = q->sgx ? "SGX" : "TDX";
    struct cl_tdx_pck pck;
    CL_AUTO(cl_tee_x509s) *chain = NULL;
    int rc;
    /* ---- signature, chain ---- */
    if ((rc = cl_tdx_verify_quote(q, cl_tdx_root_pins, cl_tdx_root_npins, at, NULL, &pck, &chain,
                                  err)) < 0)
        return rc;
    /* ---- collateral ---- */
    struct cl_tdx_collateral col;
    if ((rc = cl_tdx_collateral_load_kind(cfg, q->sgx, pck.fmspc, pck.platform_ca, &col, err)) < 0)
        return rc;
    bool expired = false;
    struct cl_tdx_crls crls = {col.root_crl, col.pck_crl};
    struct cl_tdx_tcb_result res = {0};
    if ((rc = cl_tdx_collateral_verify_kind(&col, q->sgx, pins, npins, at, &expired, err)) < 0 ||
        (rc = cl_tdx_check_crls(chain, &crls, at, err)) < 0)
        goto out;
    if (expired) {
        if (!cfg || !cfg->tdx_allow_expired_collateral_insecure) {
            rc = cl_err_stage(
                err, CL_EEXPIRED, CL_TEE_STAGE_COLLATERAL,
                "%s collateral (TCB info, QE identity or CRL) is outside its validity at %lld "
                "(set allow_expired_collateral_insecure to accept it)",
                kind, (long long)at);
            goto out;
        }
        cl_insecure("allow_expired_collateral_insecure", "accepting expired %s collateral", kind);
    }
    /* ---- TCB level ---- */
    if ((rc = cl_tdx_tcb_evaluate(q, &pck, &col, &res, err)) < 0)
        goto out;
    if (res.status == CL_TDX_REVOKED) {
        rc = cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB, "%s platform TCB is revoked", kind);
        goto out;
    }
    if (res.status != CL_TDX_UP_TO_DATE) {
        unsigned need = allow_bit(res.status);
        if (!cfg || (cfg->tdx_allow_tcb_insecure & need) != need) {
            rc = cl_err_stage(
                err, CL_EDENIED, CL_TEE_STAGE_TCB,
                "%s TCB status %s is not UpToDate (allow it with allow_tcb_status_insecure)", kind,
                cl_tdx_status_name(res.status));
            goto out;
        }
        cl_insecure("allow_tcb_status_insecure", "accepting %s TCB status %s", kind,
                    cl_tdx_status_name(res.status));
    }
    json_t *c = json_object();
    if (!c) {
        rc = cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
        goto out;
    }
    if ((rc = supplemental(c, &pck, &res, expired, &col, err)) < 0) {
        json_decref(c);
        goto out;
    }
    *claims = c;
    *pck_out = pck;
out:
    json_decref(res.advisory_ids);
    cl_tdx_collateral_clear(&col);
    return rc;
}

int cl_tdx_verify_parsed(const struct cl_tdx_quote *q, const uint8_t *ccel, size_t ccel_len,
                         const struct cl_tee_config *cfg, const char *const *pins, size_t npins,
                         json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct cl_tdx_pck pck;
    CL_AUTO(json_t) *supp = NULL;
    int rc;
    /* ---- signature, chain, collateral, TCB level ---- */
    if ((rc = cl_tdx_appraise(q, cfg, pins, npins, &pck, &supp, err)) < 0)
        return rc;
    /* ---- TD attributes ---- */
    if (le64(q->body.td_attributes) & TD_ATTR_DEBUG) {
        if (!cfg || !cfg->allow_debug_insecure)
            return cl_err_stage(
                err, CL_EDENIED, CL_TEE_STAGE_TCB,
                "the TD has the DEBUG attribute (set allow_debug_insecure to accept it)");
        cl_insecure("allow_debug_insecure", "accepting a TD with the DEBUG attribute");
    }
    /* ---- event log replayed against the RTMRs ---- */
    if (ccel) {
        struct cl_eventlog log;
        if ((rc = cl_eventlog_parse(ccel, ccel_len, &log, err)) < 0)
            return rc;
        for (uint32_t i = 0; i < 4 && rc == 0; i++) {
            uint8_t mr[64];
            size_t ml = 0;
            if ((rc = cl_eventlog_replay(&log, i + 1, CL_TCG_ALG_SHA384, mr, &ml, err)) == 0 &&
                !cl_memeq_ct(mr, q->body.rtmr[i], 48))
                rc = cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_EVENTLOG,
                                  "CC event log replay does not give RTMR%u of the quote", i);
        }
        cl_eventlog_clear(&log);
        if (rc < 0)
            return rc;
    }
    /* ---- claims ---- */
    json_t *c = cl_tdx_claims(q, &pck, ccel, ccel_len, err);
    if (!c)
        return err->code;
    if (json_object_update(c, supp) < 0) {
        json_decref(c);
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    }
    *claims = c;
    return 0;
}

int cl_tee_tdx_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    /* ---- parse ---- */
    json_t *qv = json_object_get(in->evidence, "quote"),
           *ev = json_object_get(in->evidence, "cc_eventlog");
    if (!json_is_object(in->evidence) || !json_is_string(qv) ||
        (ev && !json_is_null(ev) && !json_is_string(ev)))
        return cl_err_stage(
            err, CL_EPARSE, CL_TEE_STAGE_PARSE,
            "TDX evidence: want {\"quote\": base64, \"cc_eventlog\": base64 or null}");
    const char *qb = json_string_value(qv), *eb = json_string_value(ev);
    size_t qn = 0, en = 0;
    CL_AUTO(cl_bytes) *quote =
        cl_b64_decode(qb, strlen(qb), CL_B64_ANY, CL_TDX_MAX_QUOTE, &qn, err);
    if (!quote) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "TDX evidence 'quote'");
    }
    CL_AUTO(cl_bytes) *ccel = NULL;
    if (eb) {
        ccel = cl_b64_decode(eb, strlen(eb), CL_B64_ANY, CL_TDX_MAX_CCEL, &en, err);
        if (!ccel) {
            err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_prefix(err, "TDX evidence 'cc_eventlog'");
        }
    }
    struct cl_tdx_quote q;
    int rc;
    if ((rc = cl_tdx_quote_parse(quote, qn, &q, err)) < 0)
        return rc;
    /* ---- bind ---- */
    if (in->report_data &&
        !cl_tee_field_matches(q.body.report_data, 64, in->report_data, in->report_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "TDX REPORTDATA does not match the runtime data digest");
    if (in->init_data_digest &&
        !cl_tee_field_matches(q.body.mr_config_id, 48, in->init_data_digest, in->init_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
                            "TDX MRCONFIGID does not match the init-data digest");
    return cl_tdx_verify_parsed(&q, ccel, en, in->cfg, cl_tdx_root_pins, cl_tdx_root_npins, claims,
                                err);
}
