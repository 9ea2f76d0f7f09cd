/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM attester (guest side): a quote over chosen SHA-256 PCRs with the report data as
 * extraData, by an attestation key that is a primary key of the endorsement hierarchy with a
 * fixed template (so the same TPM always yields the same AK and an owner can enrol it once),
 * plus the 24 SHA-256 PCR values, in trustee's tpm evidence shape. Through tss2 ESYS over
 * any TCTI (a TPM device, swtpm in tests).
 */
#include "tee/tee_int.h"
#include "tee/tpm/tpm.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define TPM_ERR(rc, what) cl_err_set(err, CL_EIO, "TPM %s: %s", (what), Tss2_RC_Decode(rc))

struct session {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR ak;
};

static void session_close(struct session *s)
{
    if (s->esys && s->ak != ESYS_TR_NONE)
        Esys_FlushContext(s->esys, s->ak);
    if (s->esys)
        Esys_Finalize(&s->esys);
    if (s->tcti)
        Tss2_TctiLdr_Finalize(&s->tcti);
    s->ak = ESYS_TR_NONE;
}

static int session_open(struct session *s, const char *tcti, struct cl_err *err)
{
    memset(s, 0, sizeof *s);
    s->ak = ESYS_TR_NONE;
    int lrc = cl_tee_tpm_tss2_load(CL_TPM_TSS2_ALL, err); /* not linked: opened on first use */
    if (lrc < 0)
        return lrc;
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &s->tcti);
    if (rc != TSS2_RC_SUCCESS)
        return cl_err_set(err, CL_EIO, "TPM: cannot open TCTI '%s': %s", tcti ? tcti : "(default)",
                          Tss2_RC_Decode(rc));
    rc = Esys_Initialize(&s->esys, s->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        session_close(s);
        return TPM_ERR(rc, "initialisation");
    }
    /* a simulator needs TPM2_Startup; a booted TPM answers TPM_RC_INITIALIZE, which is fine */
    rc = Esys_Startup(s->esys, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && (rc & 0xfff) != TPM2_RC_INITIALIZE) {
        session_close(s);
        return TPM_ERR(rc, "startup");
    }
    return 0;
}

/* The AK template: restricted RSA-2048 signing key, RSASSA with SHA-256, no policy. */
static int create_ak(struct session *s, TPM2B_PUBLIC **pub, struct cl_err *err)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC tmpl = {
        .publicArea =
            {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT,
                .parameters.rsaDetail =
                    {
                        .symmetric = {.algorithm = TPM2_ALG_NULL},
                        .scheme = {.scheme = TPM2_ALG_RSASSA,
                                   .details.rsassa.hashAlg = TPM2_ALG_SHA256},
                        .keyBits = 2048,
                        .exponent = 0,
                    },
            },
    };
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION creation_pcr = {0};
    TSS2_RC rc = Esys_CreatePrimary(s->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sens, &tmpl, &outside, &creation_pcr, &s->ak,
                                    pub, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        s->ak = ESYS_TR_NONE;
        return TPM_ERR(rc, "creating the attestation key");
    }
    return 0;
}

/* DER SubjectPublicKeyInfo of an RSA TPM2B_PUBLIC (new). */
static cl_bytes *rsa_spki(const TPM2B_PUBLIC *pub, size_t *len, struct cl_err *err)
{
    const TPMT_PUBLIC *p = &pub->publicArea;
    uint32_t e = p->parameters.rsaDetail.exponent ? p->parameters.rsaDetail.exponent : 65537;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size, NULL);
    BIGNUM *be = BN_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    cl_bytes *out = NULL;
    if (bld && n && be && BN_set_word(be, e) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1) {
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(key, &der);
        if (dl > 0 && (out = malloc((size_t)dl))) {
            memcpy(out, der, (size_t)dl);
            *len = (size_t)dl;
        }
        OPENSSL_free(der);
    }
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(be);
    ERR_clear_error();
    if (!out)
        cl_err_set(err, CL_ENOMEM, "TPM: cannot encode the AK public key");
    return out;
}

/* All 24 SHA-256 PCRs (a TPM answers at most 8 per read). */
static int read_pcrs(struct session *s, uint8_t out[CL_TPM_NUM_PCRS][32], struct cl_err *err)
{
    uint32_t want = 0xffffff;
    for (int round = 0; want && round < 8; round++) {
        TPML_PCR_SELECTION sel = {.count = 1};
        sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
        sel.pcrSelections[0].sizeofSelect = 3;
        for (int i = 0; i < 3; i++)
            sel.pcrSelections[0].pcrSelect[i] = (uint8_t)(want >> (8 * i));
        UINT32 counter = 0;
        TPML_PCR_SELECTION *got = NULL;
        TPML_DIGEST *vals = NULL;
        TSS2_RC rc = Esys_PCR_Read(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
                                   &counter, &got, &vals);
        if (rc != TSS2_RC_SUCCESS)
            return TPM_ERR(rc, "PCR read");
        size_t k = 0;
        bool ok = got->count == 1 && got->pcrSelections[0].hash == TPM2_ALG_SHA256;
        for (int i = 0; ok && i < CL_TPM_NUM_PCRS; i++) {
            if (!(got->pcrSelections[0].pcrSelect[i / 8] & (1u << (i % 8))))
                continue;
            ok = k < vals->count && vals->digests[k].size == 32;
            if (ok) {
                memcpy(out[i], vals->digests[k].buffer, 32);
                want &= ~(1u << i);
                k++;
            }
        }
        Esys_Free(got);
        Esys_Free(vals);
        if (!ok)
            return cl_err_set(err, CL_EIO, "TPM: unexpected PCR read answer (no SHA-256 bank?)");
    }
    return want ? cl_err_set(err, CL_EIO, "TPM: could not read every SHA-256 PCR") : 0;
}

static json_t *b64s(const void *b, size_t n)
{
    CL_AUTO(cl_str) *s = cl_b64_encode(b, n, CL_B64_STD);
    return s ? json_string(s) : NULL;
}

int cl_tee_tpm_quote(const char *tcti, const uint8_t *report_data, size_t len, const int *pcrs,
                     size_t npcrs, json_t **evidence, struct cl_err *err)
{
    uint32_t mask = 0;
    for (size_t i = 0; pcrs && i < npcrs; i++) {
        if (pcrs[i] < 0 || pcrs[i] >= CL_TPM_NUM_PCRS)
            return cl_err_set(err, CL_EINVAL, "TPM quote: PCR %d out of range 0..23", pcrs[i]);
        mask |= 1u << pcrs[i];
    }
    if (!mask)
        mask = 0xffffff;
    struct session s;
    int rc = session_open(&s, tcti, err);
    if (rc < 0)
        return rc;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_ATTEST *quoted = NULL;
    TPMT_SIGNATURE *sig = NULL;
    cl_bytes *spki = NULL;
    size_t spki_len = 0;
    json_t *ev = NULL;
    if ((rc = create_ak(&s, &pub, err)) < 0)
        goto out;
    if (!(spki = rsa_spki(pub, &spki_len, err))) {
        rc = err ? err->code : CL_ENOMEM;
        goto out;
    }
    TPM2B_DATA extra = {.size = CL_TPM_EXTRA_DATA};
    cl_tee_regularize(report_data, len, extra.buffer, CL_TPM_EXTRA_DATA);
    TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
    TPML_PCR_SELECTION sel = {.count = 1};
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 3; i++)
        sel.pcrSelections[0].pcrSelect[i] = (uint8_t)(mask >> (8 * i));
    uint8_t pv[CL_TPM_NUM_PCRS][32];
    /* a PCR may be extended between the quote and the read: read again until they agree */
    for (int attempt = 0;; attempt++) {
        Esys_Free(quoted);
        Esys_Free(sig);
        quoted = NULL;
        sig = NULL;
        TSS2_RC trc = Esys_Quote(s.esys, s.ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &extra,
                                 &scheme, &sel, &quoted, &sig);
        if (trc != TSS2_RC_SUCCESS) {
            rc = TPM_ERR(trc, "quote");
            goto out;
        }
        if ((rc = read_pcrs(&s, pv, err)) < 0)
            goto out;
        struct cl_tpm_quote_info qi;
        uint8_t d[32];
        if ((rc = cl_tpm_attest_parse(quoted->attestationData, quoted->size, &qi, err)) < 0 ||
            (rc = cl_tpm_pcr_digest((const uint8_t(*)[32])pv, mask, d, err)) < 0)
            goto out;
        if (qi.pcr_digest_len == 32 && memcmp(d, qi.pcr_digest, 32) == 0)
            break;
        if (attempt == 3) {
            rc = cl_err_set(err, CL_EIO, "TPM: PCRs keep changing while quoting");
            goto out;
        }
    }
    uint8_t sigbuf[sizeof(TPMT_SIGNATURE)];
    size_t sl = 0;
    TSS2_RC mrc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sigbuf, sizeof sigbuf, &sl);
    if (mrc != TSS2_RC_SUCCESS) {
        rc = TPM_ERR(mrc, "signature marshalling");
        goto out;
    }
    json_t *hex = json_array();
    for (int i = 0; hex && i < CL_TPM_NUM_PCRS; i++)
        json_array_append_new(hex, cl_tee_json_hex(pv[i], 32));
    ev = json_pack("{s:o, s:{s:o, s:o, s:o}}", "ak_public", b64s(spki, spki_len), "tpm_quote",
                   "signature", b64s(sigbuf, sl), "message",
                   b64s(quoted->attestationData, quoted->size), "pcrs", hex);
    if (!ev) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        goto out;
    }
    *evidence = ev;
    rc = 0;
out:
    Esys_Free(pub);
    Esys_Free(quoted);
    Esys_Free(sig);
    free(spki);
    session_close(&s);
    return rc;
}

cl_bytes *cl_tee_tpm_ak_public(const char *tcti, size_t *len, struct cl_err *err)
{
    struct session s;
    if (session_open(&s, tcti, err) < 0)
        return NULL;
    TPM2B_PUBLIC *pub = NULL;
    cl_bytes *out = NULL;
    if (create_ak(&s, &pub, err) == 0)
        out = rsa_spki(pub, len, err);
    Esys_Free(pub);
    session_close(&s);
    return out;
}
