/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The az-snp-vtpm and az-tdx-vtpm verifiers. On Azure confidential VMs the guest has no
 * direct SEV-SNP/TDX report: the paravisor (HCL) requests one whose report data is the hash
 * of its "runtime data" JSON, and that JSON holds HCLAkPub, the attestation key of the vTPM.
 * So the chain is: hardware report (SNP: VCEK → ASK → pinned ARK; TDX: DCAP) → report data
 * = hash(runtime data) → HCLAkPub → vTPM quote → nonce and PCRs.
 */
#include "tee/azure/azure.h"
#include "tee/snp/snp.h"
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"
#include "tee/tpm/tpm.h"

#include <openssl/evp.h>
#include <string.h>

#include "crypto/crypto.h"

#define AZ_MAX_PEM 65536

int cl_az_hcl_parse(const uint8_t *buf, size_t len, struct cl_az_hcl *out, struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (len != CL_AZ_HCL_SIZE)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "HCL report is %zu bytes, want %d",
                            len, CL_AZ_HCL_SIZE);
    struct cl_cursor c = cl_cursor_init(buf, len);
    const uint8_t *sig = NULL;
    uint32_t data_size = 0, version = 0, type = 0, hash = 0, var_size = 0;
    struct cl_az_hcl h = {0};
    if (cl_cursor_take(&c, 4, &sig) < 0 || memcmp(sig, "HCLA", 4) != 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "HCL report does not start with 'HCLA'");
    if (cl_cursor_skip(&c, CL_AZ_HW_OFFSET - 4) < 0 ||
        cl_cursor_take(&c, CL_AZ_RUNTIME_OFFSET - CL_AZ_HW_OFFSET, &h.hw) < 0 ||
        cl_cursor_le32(&c, &data_size) < 0 || cl_cursor_le32(&c, &version) < 0 ||
        cl_cursor_le32(&c, &type) < 0 || cl_cursor_le32(&c, &hash) < 0 ||
        cl_cursor_le32(&c, &var_size) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "HCL report truncated");
    if (version != 1)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "HCL runtime data version %u (1 is known)", version);
    if (type != CL_AZ_REPORT_SNP && type != CL_AZ_REPORT_TDX)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "HCL report type %u (2 SNP or 4 TDX)", type);
    if (hash < 1 || hash > 3)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "HCL runtime data hash type %u",
                            hash);
    if (cl_cursor_take(&c, var_size, &h.var) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "HCL runtime data of %u bytes overruns the report", var_size);
    h.var_len = var_size;
    h.report_type = type;
    h.hash_type = hash;
    *out = h;
    return 0;
}

/* ---- evidence ---- */

struct az_ev {
    int version;
    cl_bytes *msg, *sig, *hcl, *vek, *tdq;
    size_t msg_len, sig_len, hcl_len, vek_len, tdq_len;
    uint8_t pcrs[CL_TPM_NUM_PCRS][32];
};

static void az_ev_clear(struct az_ev *e)
{
    free(e->msg);
    free(e->sig);
    free(e->hcl);
    free(e->vek);
    free(e->tdq);
    memset(e, 0, sizeof *e);
}

/* Bytes of a member: hex string (v1/v2 quote fields), base64 (v1/v2 reports) or, in v0, an
 * array of numbers. */
static cl_bytes *member(const json_t *o, const char *key, bool hex, size_t max, size_t *n,
                        struct cl_err *err)
{
    json_t *v = json_object_get(o, key);
    if (hex && json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t sl = strlen(s);
        cl_bytes *b = malloc(sl / 2 + 1);
        if (!b || sl / 2 > max || cl_hex_decode(s, sl, b, sl / 2 + 1, n, err) < 0) {
            free(b);
            cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                         "Azure evidence '%s': not hex of at most %zu bytes", key, max);
            return NULL;
        }
        return b;
    }
    cl_bytes *b = cl_tee_json_bytes(v, 0, max, n, key, err);
    if (!b) {
        err->stage = CL_TEE_STAGE_PARSE;
        cl_err_prefix(err, "Azure evidence");
    }
    return b;
}

static int parse_ev(const json_t *ev, bool tdx, struct az_ev *out, struct cl_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(ev))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "Azure evidence is not a JSON object");
    json_t *ver = json_object_get(ev, "version");
    out->version = ver ? (int)json_integer_value(ver) : 0;
    if (ver && (!json_is_integer(ver) || out->version < 1 || out->version > 2))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "Azure evidence version must be 1 or 2");
    bool v0 = !ver;
    /* v0: az-snp uses quote/report/vcek, az-tdx tpm_quote/hcl_report/td_quote */
    const json_t *q = json_object_get(ev, v0 && !tdx ? "quote" : "tpm_quote");
    const char *hk = v0 && !tdx ? "report" : "hcl_report";
    if (!json_is_object(q))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "Azure evidence has no TPM quote");
    int rc = CL_EPARSE;
    if (!(out->msg = member(q, "message", !v0, CL_TPM_MAX_MESSAGE, &out->msg_len, err)) ||
        !(out->sig = member(q, "signature", !v0, 1024, &out->sig_len, err)) ||
        !(out->hcl = member(ev, hk, false, CL_AZ_HCL_SIZE, &out->hcl_len, err)))
        goto fail;
    if (tdx) {
        if (!(out->tdq = member(ev, "td_quote", false, CL_TDX_MAX_QUOTE, &out->tdq_len, err)))
            goto fail;
    } else if (v0) {
        const char *pem = json_string_value(json_object_get(ev, "vcek"));
        if (!pem || strlen(pem) > AZ_MAX_PEM) {
            cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                         "Azure evidence 'vcek': want a PEM bundle");
            goto fail;
        }
        out->vek_len = strlen(pem);
        if (!(out->vek = (cl_bytes *)strdup(pem))) {
            rc = cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
            goto fail;
        }
    } else if (!(out->vek = member(ev, "vcek", false, CL_TEE_MAX_CERT, &out->vek_len, err))) {
        goto fail;
    }
    json_t *pcrs = json_object_get(q, "pcrs");
    if (!json_is_array(pcrs) || json_array_size(pcrs) != CL_TPM_NUM_PCRS) {
        cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "Azure evidence: want %d PCR values",
                     CL_TPM_NUM_PCRS);
        goto fail;
    }
    for (size_t i = 0; i < CL_TPM_NUM_PCRS; i++) {
        json_t *p = json_array_get(pcrs, i);
        size_t n = 0;
        struct cl_err pe = {0};
        if (json_is_string(p)) {
            uint8_t tmp[32];
            if (cl_hex_decode(json_string_value(p), json_string_length(p), tmp, 32, &n, &pe) == 0 &&
                n == 32) {
                memcpy(out->pcrs[i], tmp, 32);
                continue;
            }
        } else {
            cl_bytes *b = cl_tee_json_bytes(p, 32, 32, &n, "pcr", &pe);
            bool got = b != NULL;
            if (got)
                memcpy(out->pcrs[i], b, 32);
            free(b);
            if (got)
                continue;
        }
        cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "Azure evidence: PCR %zu is not 32 bytes",
                     i);
        goto fail;
    }
    return 0;
fail:
    az_ev_clear(out);
    return err->code ? err->code : rc;
}

/* ---- the shared part: vTPM quote bound to the HCL report ---- */

struct az_checked {
    struct cl_az_hcl hcl;
    struct cl_tpm_quote_info q;
};

static int check_common(const struct cl_tee_verify_in *in, struct az_ev *e, uint32_t want_type,
                        struct az_checked *out, struct cl_err *err)
{
    int rc;
    if ((rc = cl_az_hcl_parse(e->hcl, e->hcl_len, &out->hcl, err)) < 0)
        return rc;
    if (out->hcl.report_type != want_type)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "HCL report holds a %s report",
                            out->hcl.report_type == CL_AZ_REPORT_SNP ? "SNP" : "TDX");
    /* the runtime data: HCLAkPub (the vTPM AK) and, from version 2, user-data */
    CL_AUTO(json_t) *rt = cl_json_parse((const char *)out->hcl.var, out->hcl.var_len, 8, err);
    if (!rt) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "HCL runtime data");
    }
    const json_t *akjwk = NULL;
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(rt, "keys"), i, k)
    {
        const char *kid = json_string_value(json_object_get(k, "kid"));
        if (kid && strcmp(kid, "HCLAkPub") == 0)
            akjwk = k;
    }
    CL_AUTO(cl_pkey) *ak = akjwk ? cl_jwk_to_pkey(akjwk, err) : NULL;
    if (!ak)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "HCL runtime data has no usable HCLAkPub key");
    if ((rc = cl_tpm_attest_parse(e->msg, e->msg_len, &out->q, err)) < 0)
        return rc;
    /* ---- bind: the TPM nonce is the runtime data digest itself; v2 repeats it in user-data ----
     */
    if (in->report_data && (out->q.extra_len != in->report_data_len ||
                            !cl_memeq_ct(out->q.extra_data, in->report_data, in->report_data_len)))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "vTPM quote nonce does not match the runtime data digest");
    if (e->version >= 2 && in->report_data) {
        const char *ud = json_string_value(json_object_get(rt, "user-data"));
        uint8_t b[64];
        size_t n = 0;
        struct cl_err he = {0};
        if (!ud || cl_hex_decode(ud, strlen(ud), b, sizeof b, &n, &he) < 0 ||
            n < in->report_data_len || !cl_memeq_ct(b, in->report_data, in->report_data_len))
            return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                                "HCL user-data does not start with the runtime data digest");
    }
    /* ---- signature: the vTPM quote by HCLAkPub, PCR values under its digest ---- */
    struct cl_err se = {0};
    if (cl_sig_verify(ak, "RS256", e->msg, e->msg_len, e->sig, e->sig_len, &se) < 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "vTPM quote signature does not verify with HCLAkPub");
    uint8_t d[32];
    if ((rc = cl_tpm_pcr_digest((const uint8_t(*)[32])e->pcrs, out->q.sha256_mask, d, err)) < 0)
        return rc;
    if (out->q.pcr_digest_len != 32 || !cl_memeq_ct(d, out->q.pcr_digest, 32))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "the PCR values do not hash to the quote's digest");
    return 0;
}

/* hash(runtime data) as the HCL says, compared with the first bytes of the hardware report data */
static int check_hcl_binding(const struct cl_az_hcl *h, const uint8_t report_data[64],
                             struct cl_err *err)
{
    enum cl_hash alg = h->hash_type == 1   ? CL_HASH_SHA256
                       : h->hash_type == 2 ? CL_HASH_SHA384
                                           : CL_HASH_SHA512;
    uint8_t d[CL_HASH_MAX];
    int rc;
    if ((rc = cl_digest(alg, h->var, h->var_len, d, err)) < 0)
        return rc;
    if (!cl_memeq_ct(d, report_data, cl_hash_len(alg)))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "HCL runtime data digest does not match the hardware report data");
    return 0;
}

static int check_pcr8(const struct cl_tee_verify_in *in, const uint8_t pcr8[32], struct cl_err *err)
{
    if (!in->init_data_digest)
        return 0;
    uint8_t ext[64] = {0}, want[32];
    unsigned wl = 0;
    cl_tee_regularize(in->init_data_digest, in->init_data_len, ext + 32, 32);
    if (EVP_Digest(ext, sizeof ext, want, &wl, EVP_sha256(), NULL) != 1 ||
        !cl_memeq_ct(want, pcr8, 32))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
                            "PCR8 is not the init-data digest extended once");
    return 0;
}

/* tpm.pcr00..23, report_data = the TPM nonce, init_data = PCR8 */
static int add_tpm_claims(json_t *c, const struct az_ev *e, const struct cl_tpm_quote_info *q,
                          struct cl_err *err)
{
    json_t *tpm = json_object();
    if (!tpm || json_object_set_new(c, "tpm", tpm) < 0)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    int rc;
    for (int i = 0; i < CL_TPM_NUM_PCRS; i++) {
        char k[8];
        snprintf(k, sizeof k, "pcr%02d", i);
        if ((rc = cl_tee_set_hex(tpm, k, e->pcrs[i], 32, err)) < 0)
            return rc;
    }
    if ((rc = cl_tee_set_hex(c, "report_data", q->extra_data, q->extra_len, err)) < 0 ||
        (rc = cl_tee_set_hex(c, "init_data", e->pcrs[8], 32, err)) < 0)
        return rc;
    return 0;
}

int cl_tee_az_snp_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct az_ev e __attribute__((cleanup(az_ev_clear))) = {0};
    int rc;
    if ((rc = parse_ev(in->evidence, false, &e, err)) < 0)
        return rc;
    struct az_checked ck;
    struct cl_snp_report r;
    enum cl_snp_product p = CL_SNP_UNKNOWN;
    if ((rc = check_common(in, &e, CL_AZ_REPORT_SNP, &ck, err)) < 0 ||
        (rc = cl_snp_report_parse(ck.hcl.hw, CL_SNP_REPORT_SIZE, &r, err)) < 0 ||
        (rc = check_hcl_binding(&ck.hcl, r.report_data, err)) < 0)
        return rc;
    CL_AUTO(cl_tee_x509s) *certs = cl_tee_x509_parse_any(e.vek, e.vek_len, err);
    if (!certs) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "Azure evidence 'vcek'");
    }
    if ((rc = cl_snp_verify_hw(&r, certs, in->cfg, &p, err)) < 0 ||
        (rc = cl_snp_check_attributes(&r, in->cfg, err)) < 0 ||
        (rc = check_pcr8(in, e.pcrs[8], err)) < 0)
        return rc;
    CL_AUTO(json_t) *c = cl_snp_claims(&r, p, true, err);
    if (!c)
        return err->code;
    if ((rc = add_tpm_claims(c, &e, &ck.q, err)) < 0)
        return rc;
    *claims = CL_STEAL(c);
    return 0;
}

int cl_tee_az_tdx_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct az_ev e __attribute__((cleanup(az_ev_clear))) = {0};
    int rc;
    if ((rc = parse_ev(in->evidence, true, &e, err)) < 0)
        return rc;
    struct az_checked ck;
    struct cl_tdx_quote q;
    CL_AUTO(json_t) *c = NULL;
    if ((rc = check_common(in, &e, CL_AZ_REPORT_TDX, &ck, err)) < 0 ||
        (rc = cl_tdx_quote_parse(e.tdq, e.tdq_len, &q, err)) < 0 ||
        (rc = check_hcl_binding(&ck.hcl, q.body.report_data, err)) < 0 ||
        (rc = cl_tdx_verify_parsed(&q, NULL, 0, in->cfg, cl_tdx_root_pins, cl_tdx_root_npins, &c,
                                   err)) < 0 ||
        (rc = check_pcr8(in, e.pcrs[8], err)) < 0 || (rc = add_tpm_claims(c, &e, &ck.q, err)) < 0)
        return rc;
    *claims = CL_STEAL(c);
    return 0;
}
