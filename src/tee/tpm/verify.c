/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "tpm" verifier and the TPM structures it reads: TPMS_ATTEST (a quote) and
 * TPMT_SIGNATURE unmarshalled by tss2-mu (bounded; every byte must be consumed), the AK
 * signature checked with OpenSSL, the PCR digest recomputed from the PCR values sent along,
 * the nonce in extraData, an optional AK certificate chained to a configured CA, and PCR8
 * against the init-data digest.
 */
#include "tee/tee_int.h"
#include "tee/tpm/tpm.h"

#include "crypto/crypto.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#define TERR(code, stage, ...) cl_err_stage(err, (code), (stage), __VA_ARGS__)

int cl_tpm_attest_parse(const uint8_t *buf, size_t len, struct cl_tpm_quote_info *out,
                        struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (len == 0 || len > CL_TPM_MAX_MESSAGE)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMS_ATTEST of %zu bytes (1..%d)", len,
                    CL_TPM_MAX_MESSAGE);
    if (cl_tee_tpm_tss2_load(CL_TPM_TSS2_MU, err) < 0) /* not linked: opened on first use */
        return err->code;
    TPMS_ATTEST a;
    memset(&a, 0, sizeof a);
    size_t off = 0;
    if (Tss2_MU_TPMS_ATTEST_Unmarshal(buf, len, &off, &a) != TSS2_RC_SUCCESS)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMS_ATTEST does not unmarshal");
    if (off != len)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMS_ATTEST has %zu trailing bytes", len - off);
    if (a.magic != TPM2_GENERATED_VALUE)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMS_ATTEST magic %#x is not TPM_GENERATED",
                    a.magic);
    if (a.type != TPM2_ST_ATTEST_QUOTE)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMS_ATTEST type %#x is not a quote", a.type);
    const TPML_PCR_SELECTION *sel = &a.attested.quote.pcrSelect;
    if (sel->count != 1 || sel->pcrSelections[0].hash != TPM2_ALG_SHA256)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE,
                    "the quote must select PCRs of the SHA-256 bank only");
    const TPMS_PCR_SELECTION *s = &sel->pcrSelections[0];
    uint32_t mask = 0;
    for (unsigned i = 0; i < s->sizeofSelect && i < sizeof s->pcrSelect; i++) {
        if (i >= 3 && s->pcrSelect[i])
            return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "the quote selects PCRs above 23");
        if (i < 3)
            mask |= (uint32_t)s->pcrSelect[i] << (8 * i);
    }
    if (!mask)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "the quote selects no PCR");
    struct cl_tpm_quote_info q;
    memset(&q, 0, sizeof q);
    if (a.extraData.size > sizeof q.extra_data || a.qualifiedSigner.size > sizeof q.signer_name ||
        a.attested.quote.pcrDigest.size > sizeof q.pcr_digest)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMS_ATTEST field too large");
    memcpy(q.extra_data, a.extraData.buffer, a.extraData.size);
    q.extra_len = a.extraData.size;
    memcpy(q.signer_name, a.qualifiedSigner.name, a.qualifiedSigner.size);
    q.signer_name_len = a.qualifiedSigner.size;
    q.clock = a.clockInfo.clock;
    q.reset_count = a.clockInfo.resetCount;
    q.restart_count = a.clockInfo.restartCount;
    q.firmware_version = a.firmwareVersion;
    q.sha256_mask = mask;
    memcpy(q.pcr_digest, a.attested.quote.pcrDigest.buffer, a.attested.quote.pcrDigest.size);
    q.pcr_digest_len = a.attested.quote.pcrDigest.size;
    *out = q;
    return 0;
}

static int verify_rsa(EVP_PKEY *key, bool pss, const uint8_t *sig, size_t sl, const uint8_t *msg,
                      size_t ml, struct cl_err *err)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return TERR(CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                    "RSA signature but the AK is not an RSA key");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
    ok = ok && EVP_DigestVerify(md, sig, sl, msg, ml) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok ? 0
              : TERR(CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                     "TPM quote signature does not verify with the AK");
}

static int verify_ecdsa(EVP_PKEY *key, const TPMS_SIGNATURE_ECDSA *e, const uint8_t *msg, size_t ml,
                        struct cl_err *err)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256)
        return TERR(CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                    "ECDSA signature but the AK is not an EC P-256 key");
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
    BIGNUM *ss = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
    unsigned char *der = NULL;
    int dl = -1;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
        r = ss = NULL;
        dl = i2d_ECDSA_SIG(s, &der);
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = dl > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, (size_t)dl, msg, ml) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok ? 0
              : TERR(CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                     "TPM quote signature does not verify with the AK");
}

int cl_tpm_signature_verify(EVP_PKEY *key, const uint8_t *sig, size_t sig_len, const uint8_t *msg,
                            size_t msg_len, struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (sig_len == 0 || sig_len > CL_TPM_MAX_SIGNATURE)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMT_SIGNATURE of %zu bytes", sig_len);
    if (cl_tee_tpm_tss2_load(CL_TPM_TSS2_MU, err) < 0) /* not linked: opened on first use */
        return err->code;
    TPMT_SIGNATURE s;
    memset(&s, 0, sizeof s);
    size_t off = 0;
    if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &s) != TSS2_RC_SUCCESS ||
        off != sig_len)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPMT_SIGNATURE does not unmarshal");
    switch (s.sigAlg) {
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS:
        if (s.signature.rsassa.hash != TPM2_ALG_SHA256)
            return TERR(CL_EUNSUPPORTED, CL_TEE_STAGE_SIGNATURE,
                        "TPM RSA signature hash %#x (only SHA-256)", s.signature.rsassa.hash);
        return verify_rsa(key, s.sigAlg == TPM2_ALG_RSAPSS, s.signature.rsassa.sig.buffer,
                          s.signature.rsassa.sig.size, msg, msg_len, err);
    case TPM2_ALG_ECDSA:
        if (s.signature.ecdsa.hash != TPM2_ALG_SHA256)
            return TERR(CL_EUNSUPPORTED, CL_TEE_STAGE_SIGNATURE,
                        "TPM ECDSA signature hash %#x (only SHA-256)", s.signature.ecdsa.hash);
        return verify_ecdsa(key, &s.signature.ecdsa, msg, msg_len, err);
    default:
        return TERR(CL_EUNSUPPORTED, CL_TEE_STAGE_SIGNATURE, "TPM signature scheme %#x", s.sigAlg);
    }
}

int cl_tpm_pcr_digest(const uint8_t pcrs[CL_TPM_NUM_PCRS][32], uint32_t mask, uint8_t out[32],
                      struct cl_err *err)
{
    CL_TEE_ERR(err);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned ol = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (int i = 0; ok && i < CL_TPM_NUM_PCRS; i++)
        if (mask & (1u << i))
            ok = EVP_DigestUpdate(md, pcrs[i], 32) == 1;
    ok = ok && EVP_DigestFinal_ex(md, out, &ol) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : TERR(CL_ENOMEM, CL_TEE_STAGE_SIGNATURE, "SHA-256 failed");
}

/* ---- the verifier ---- */

static cl_bytes *b64_member(const json_t *o, const char *key, size_t max, size_t *n,
                            struct cl_err *err)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) {
        cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                     "TPM evidence: '%s' missing or not a string", key);
        return NULL;
    }
    cl_bytes *b = cl_b64_decode(s, strlen(s), CL_B64_ANY, max, n, err);
    if (!b) {
        err->stage = CL_TEE_STAGE_PARSE;
        cl_err_prefix(err, "TPM evidence '%s'", key);
    }
    return b;
}

/* The AK certificate (evidence "ak_cert", DER) chains to the configured CA and holds the AK. */
static int check_ak_cert(const json_t *ev, EVP_PKEY *ak, const struct cl_tee_config *cfg,
                         struct cl_err *err)
{
    if (!cfg || !cfg->tpm_ak_ca_path)
        return 0;
    if (!json_object_get(ev, "ak_cert"))
        return TERR(CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                    "an AK CA is configured but the evidence has no 'ak_cert'");
    size_t n = 0;
    CL_AUTO(cl_bytes) *der = b64_member(ev, "ak_cert", CL_TEE_MAX_CERT, &n, err);
    if (!der)
        return err->code;
    CL_AUTO(cl_tee_x509) *cert = cl_tee_x509_der(der, n, err);
    if (!cert) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "TPM evidence 'ak_cert'");
    }
    CL_AUTO(cl_tee_x509s) *cas = cl_tee_x509_load(cfg->tpm_ak_ca_path, err);
    if (!cas) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "tpm_verifier AK CA");
    }
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = st && ctx;
    for (int i = 0; ok && i < sk_X509_num(cas); i++)
        ok = X509_STORE_add_cert(st, sk_X509_value(cas, i)) == 1;
    ok = ok && X509_STORE_CTX_init(ctx, st, cert, NULL) == 1;
    if (ok) {
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)cl_tee_time(cfg));
        ok = X509_verify_cert(ctx) == 1;
    }
    int reason = ctx ? X509_STORE_CTX_get_error(ctx) : 0;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    if (!ok)
        return TERR(CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                    "AK certificate does not chain to the configured AK CA: %s",
                    X509_verify_cert_error_string(reason));
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), ak) != 1)
        return TERR(CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                    "the AK certificate is for another key than ak_public");
    return 0;
}

int cl_tee_tpm_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    /* ---- parse ---- */
    const json_t *ev = in->evidence;
    json_t *tq = json_object_get(ev, "tpm_quote");
    json_t *pcrs = json_object_get(tq, "pcrs");
    if (!json_is_object(ev) || !json_is_object(tq) || !json_is_array(pcrs))
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE,
                    "TPM evidence: want {ak_public, tpm_quote: {signature, message, pcrs}}");
    if (json_array_size(pcrs) != CL_TPM_NUM_PCRS)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPM evidence: %zu PCR values, want %d",
                    json_array_size(pcrs), CL_TPM_NUM_PCRS);
    uint8_t pv[CL_TPM_NUM_PCRS][32];
    for (size_t i = 0; i < CL_TPM_NUM_PCRS; i++) {
        const char *h = json_string_value(json_array_get(pcrs, i));
        size_t n = 0;
        struct cl_err he = {0};
        if (!h || cl_hex_decode(h, strlen(h), pv[i], 32, &n, &he) < 0 || n != 32)
            return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE,
                        "TPM evidence: pcrs[%zu] is not 32 bytes of hex", i);
    }
    size_t akn = 0, mn = 0, sn = 0;
    CL_AUTO(cl_bytes) *akder = b64_member(ev, "ak_public", 4096, &akn, err);
    if (!akder)
        return err->code;
    CL_AUTO(cl_bytes) *msg = b64_member(tq, "message", CL_TPM_MAX_MESSAGE, &mn, err);
    if (!msg)
        return err->code;
    CL_AUTO(cl_bytes) *sig = b64_member(tq, "signature", CL_TPM_MAX_SIGNATURE, &sn, err);
    if (!sig)
        return err->code;
    CL_AUTO(cl_pkey) *ak = cl_tee_pubkey_der(akder, akn);
    if (!ak)
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE,
                    "TPM evidence 'ak_public' is not a DER SubjectPublicKeyInfo");
    int rc = 0;
    int kt = EVP_PKEY_get_base_id(ak);
    if (!((kt == EVP_PKEY_RSA && EVP_PKEY_get_bits(ak) >= 2048 && EVP_PKEY_get_bits(ak) <= 8192) ||
          (kt == EVP_PKEY_EC && EVP_PKEY_get_bits(ak) == 256)))
        return TERR(CL_EPARSE, CL_TEE_STAGE_PARSE, "TPM AK must be RSA 2048..8192 or EC P-256");
    struct cl_tpm_quote_info q;
    if ((rc = cl_tpm_attest_parse(msg, mn, &q, err)) < 0)
        return rc;
    /* ---- bind: the nonce slot ---- */
    if (in->report_data) {
        /* trustee's attester fills 32 bytes; others send the digest padded to 64 */
        uint8_t want[64];
        if (q.extra_len < CL_TPM_EXTRA_DATA || q.extra_len > sizeof want)
            return TERR(CL_EVERIFY, CL_TEE_STAGE_BIND,
                        "TPM quote extraData of %zu bytes (32..64 bind a nonce)", q.extra_len);
        cl_tee_regularize(in->report_data, in->report_data_len, want, q.extra_len);
        if (!cl_memeq_ct(q.extra_data, want, q.extra_len))
            return TERR(CL_EVERIFY, CL_TEE_STAGE_BIND,
                        "TPM quote extraData does not match the runtime data digest");
    }
    /* ---- signature: AK over the message, PCR values under the digest ---- */
    if ((rc = cl_tpm_signature_verify(ak, sig, sn, msg, mn, err)) < 0)
        return rc;
    uint8_t d[32];
    if ((rc = cl_tpm_pcr_digest((const uint8_t(*)[32])pv, q.sha256_mask, d, err)) < 0)
        return rc;
    if (q.pcr_digest_len != 32 || !cl_memeq_ct(d, q.pcr_digest, 32))
        return TERR(CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                    "the PCR values do not hash to the quote's PCR digest");
    /* ---- chain: the AK certificate, when an AK CA is configured ---- */
    if ((rc = check_ak_cert(ev, ak, in->cfg, err)) < 0)
        return rc;
    /* ---- init-data: PCR8 = SHA-256(zeros ‖ digest), one extend from reset ---- */
    if (in->init_data_digest) {
        uint8_t ext[64] = {0}, want8[32];
        cl_tee_regularize(in->init_data_digest, in->init_data_len, ext + 32, 32);
        unsigned wl = 0;
        if (EVP_Digest(ext, sizeof ext, want8, &wl, EVP_sha256(), NULL) != 1)
            return TERR(CL_ENOMEM, CL_TEE_STAGE_INIT_DATA, "SHA-256 failed");
        if (!(q.sha256_mask & (1u << 8)) || !cl_memeq_ct(pv[8], want8, 32))
            return TERR(CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
                        "PCR8 is not the init-data digest extended once");
    }
    /* ---- claims ---- */
    CL_AUTO(json_t) *c = json_pack("{s:O}", "ak_public", json_object_get(ev, "ak_public"));
    if (!c || cl_tee_set_hex(c, "report_data", q.extra_data, q.extra_len, err) < 0 ||
        cl_tee_set_hex(c, "init_data", pv[8], 32, err) < 0)
        return TERR(CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    for (int i = 0; i < CL_TPM_NUM_PCRS; i++) {
        char k[8];
        snprintf(k, sizeof k, "pcr%02d", i);
        if ((rc = cl_tee_set_hex(c, k, pv[i], 32, err)) < 0)
            return rc;
    }
    *claims = CL_STEAL(c);
    return 0;
}
