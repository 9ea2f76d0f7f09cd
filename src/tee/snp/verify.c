/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "snp" verifier: evidence {"attestation_report": <report>, "cert_chain": null |
 * [{"cert_type": "VCEK"|"VLEK"|"ASK"|"ARK"|..., "data": [DER bytes] or base64}]} as trustee's
 * SNP attester sends it. Stages in order: parse → bind (REPORT_DATA) → init-data (HOST_DATA)
 * → chain → signature → tcb (certified TCB, VMPL 0, debug refused) → claims.
 */
#include "tee/snp/snp.h"
#include "tee/tee_int.h"

#include <string.h>

static int parse_chain(const json_t *cc, STACK_OF(X509) * out, struct cl_err *err)
{
    if (!cc || json_is_null(cc))
        return 0;
    if (!json_is_array(cc))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP evidence 'cert_chain': not an array");
    if (json_array_size(cc) > CL_SNP_MAX_CHAIN)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE,
                            "SNP evidence 'cert_chain': more than %d entries", CL_SNP_MAX_CHAIN);
    size_t i;
    json_t *e;
    json_array_foreach(cc, i, e)
    {
        const char *type = NULL;
        if (!json_is_object(e) || cl_json_get_str(e, "cert_type", &type, err) < 0) {
            if (err)
                err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "SNP evidence cert_chain[%zu]: want {cert_type, data}", i);
        }
        char what[48];
        snprintf(what, sizeof what, "cert_chain[%zu].data", i);
        size_t n = 0;
        CL_AUTO(cl_bytes) *der =
            cl_tee_json_bytes(json_object_get(e, "data"), 0, CL_TEE_MAX_CERT, &n, what, err);
        if (!der) {
            err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_prefix(err, "SNP evidence");
        }
        /* CRLs and vendor-specific entries travel in the same table; only certificates matter */
        if (strcmp(type, "VCEK") != 0 && strcmp(type, "VLEK") != 0 && strcmp(type, "ASK") != 0 &&
            strcmp(type, "ARK") != 0 && strcmp(type, "ASVK") != 0)
            continue;
        X509 *c = cl_tee_x509_der(der, n, err);
        if (!c) {
            err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_prefix(err, "SNP evidence %s (%s)", what, type);
        }
        if (!sk_X509_push(out, c)) {
            X509_free(c);
            return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
        }
    }
    return 0;
}

static json_t *num_or_str(uint64_t v, bool s)
{
    if (!s)
        return json_integer((json_int_t)v);
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    return json_string(b);
}

static json_t *bool_or_str(bool v, bool s)
{
    return s ? json_string(v ? "true" : "false") : json_boolean(v);
}

json_t *cl_snp_claims(const struct cl_snp_report *r, enum cl_snp_product p, bool as_strings,
                      struct cl_err *err)
{
    struct cl_snp_tcb t = cl_snp_tcb_decode(r->reported_tcb, p);
    bool s = as_strings;
    CL_AUTO(json_t) *c = json_object();
    if (!c)
        goto oom;
    struct {
        const char *k;
        json_t *v;
    } f[] = {
        {"policy_abi_major", num_or_str((r->policy >> 8) & 0xff, s)},
        {"policy_abi_minor", num_or_str(r->policy & 0xff, s)},
        {"policy_smt_allowed", bool_or_str(r->policy & CL_SNP_POLICY_SMT, s)},
        {"policy_migrate_ma", bool_or_str(r->policy & CL_SNP_POLICY_MIGRATE_MA, s)},
        {"policy_debug_allowed", bool_or_str(r->policy & CL_SNP_POLICY_DEBUG, s)},
        {"policy_single_socket", bool_or_str(r->policy & CL_SNP_POLICY_SINGLE_SOCKET, s)},
        {"reported_tcb_bootloader", num_or_str(t.bootloader, s)},
        {"reported_tcb_tee", num_or_str(t.tee, s)},
        {"reported_tcb_snp", num_or_str(t.snp, s)},
        {"reported_tcb_microcode", num_or_str(t.microcode, s)},
        {"platform_tsme_enabled", bool_or_str(r->plat_info & CL_SNP_PLAT_TSME_EN, s)},
        {"platform_smt_enabled", bool_or_str(r->plat_info & CL_SNP_PLAT_SMT_EN, s)},
    };
    bool ok = true;
    for (size_t i = 0; i < CL_ARRAY_LEN(f); i++)
        ok = json_object_set_new(c, f[i].k, f[i].v) == 0 && ok;
    if (p == CL_SNP_TURIN)
        ok = json_object_set_new(c, "reported_tcb_fmc", num_or_str(t.fmc, s)) == 0 && ok;
    if (!ok)
        goto oom;
    if (as_strings) {
        CL_AUTO(cl_str) *m = cl_b64_encode(r->measurement, sizeof r->measurement, CL_B64_STD);
        if (!m || json_object_set_new(c, "measurement", json_string(m)) < 0)
            goto oom;
    } else if (cl_tee_set_hex(c, "measurement", r->measurement, sizeof r->measurement, err) < 0) {
        return NULL;
    }
    if (cl_tee_set_hex(c, "report_data", r->report_data, sizeof r->report_data, err) < 0 ||
        cl_tee_set_hex(c, "init_data", r->host_data, sizeof r->host_data, err) < 0 ||
        cl_tee_set_hex(c, "chip_id", r->chip_id, sizeof r->chip_id, err) < 0)
        return NULL;
    return CL_STEAL(c);
oom:
    cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    return NULL;
}

int cl_snp_check_attributes(const struct cl_snp_report *r, const struct cl_tee_config *cfg,
                            struct cl_err *err)
{
    if (r->vmpl != 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "SNP report from VMPL %u (only VMPL 0 is accepted)", r->vmpl);
    if (r->policy & CL_SNP_POLICY_DEBUG) {
        if (!cfg || !cfg->allow_debug_insecure)
            return cl_err_stage(
                err, CL_EDENIED, CL_TEE_STAGE_TCB,
                "SNP guest policy allows debugging (set allow_debug_insecure to accept it)");
        cl_insecure("allow_debug_insecure", "accepting an SNP guest whose policy allows debugging");
    }
    return 0;
}

int cl_tee_snp_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    /* ---- parse ---- */
    if (!json_is_object(in->evidence))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP evidence is not a JSON object");
    json_t *rep = json_object_get(in->evidence, "attestation_report");
    if (!rep)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "SNP evidence has no 'attestation_report'");
    struct cl_snp_report r;
    int rc;
    if ((rc = cl_snp_report_from_json(rep, &r, err)) < 0)
        return rc;
    CL_AUTO(cl_tee_x509s) *supplied = sk_X509_new_null();
    if (!supplied)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
    if ((rc = parse_chain(json_object_get(in->evidence, "cert_chain"), supplied, err)) < 0)
        return rc;
    /* ---- bind: REPORT_DATA and HOST_DATA before anything is read from the report ---- */
    if (in->report_data && !cl_tee_field_matches(r.report_data, sizeof r.report_data,
                                                 in->report_data, in->report_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "SNP REPORT_DATA does not match the runtime data digest");
    if (in->init_data_digest && !cl_tee_field_matches(r.host_data, sizeof r.host_data,
                                                      in->init_data_digest, in->init_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
                            "SNP HOST_DATA does not match the init-data digest");
    /* ---- chain, signature, certified TCB ---- */
    enum cl_snp_product p = CL_SNP_UNKNOWN;
    if ((rc = cl_snp_verify_hw(&r, supplied, in->cfg, &p, err)) < 0)
        return rc;
    if ((rc = cl_snp_check_attributes(&r, in->cfg, err)) < 0)
        return rc;
    /* ---- claims ---- */
    json_t *c = cl_snp_claims(&r, p, false, err);
    if (!c)
        return err ? err->code : CL_ENOMEM;
    *claims = c;
    return 0;
}
