/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX quotes: the binary layout (header, TD report body, ECDSA signature data with the QE
 * report and the PCK chain), the quote and QE-report signatures, the attestation-key
 * binding, the PCK chain to Intel's pinned root with CRLs, and the SGX extension of the PCK
 * leaf (a small DER reader over the cursor: only the shapes Intel defines are accepted).
 */
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "crypto/crypto.h"

/* SHA-256 of the DER of "Intel SGX Root CA" (valid 2018-05-21 .. 2049-12-31). */
const char *const cl_tdx_root_pins[] = {
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3",
};
const size_t cl_tdx_root_npins = CL_ARRAY_LEN(cl_tdx_root_pins);

#define PERR(...) cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, __VA_ARGS__)

static int take(struct cl_cursor *c, void *dst, size_t n, const char *what, struct cl_err *err)
{
    if (cl_cursor_copy(c, dst, n) < 0)
        return PERR("TDX quote truncated in %s (at byte %zu)", what, c->off);
    return 0;
}

static int parse_body(struct cl_cursor *c, bool td15, struct cl_tdx_body *b, struct cl_err *err)
{
    int rc;
    if ((rc = take(c, b->tee_tcb_svn, 16, "tee_tcb_svn", err)) < 0 ||
        (rc = take(c, b->mr_seam, 48, "mr_seam", err)) < 0 ||
        (rc = take(c, b->mrsigner_seam, 48, "mrsigner_seam", err)) < 0 ||
        (rc = take(c, b->seam_attributes, 8, "seam_attributes", err)) < 0 ||
        (rc = take(c, b->td_attributes, 8, "td_attributes", err)) < 0 ||
        (rc = take(c, b->xfam, 8, "xfam", err)) < 0 ||
        (rc = take(c, b->mr_td, 48, "mr_td", err)) < 0 ||
        (rc = take(c, b->mr_config_id, 48, "mr_config_id", err)) < 0 ||
        (rc = take(c, b->mr_owner, 48, "mr_owner", err)) < 0 ||
        (rc = take(c, b->mr_owner_config, 48, "mr_owner_config", err)) < 0)
        return rc;
    for (int i = 0; i < 4; i++)
        if ((rc = take(c, b->rtmr[i], 48, "rtmr", err)) < 0)
            return rc;
    if ((rc = take(c, b->report_data, 64, "report_data", err)) < 0)
        return rc;
    if (td15 && ((rc = take(c, b->tee_tcb_svn2, 16, "tee_tcb_svn2", err)) < 0 ||
                 (rc = take(c, b->mr_servicetd, 48, "mr_servicetd", err)) < 0))
        return rc;
    return 0;
}

static int parse_qe_report(const uint8_t *raw, struct cl_tdx_qe_report *r, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(raw, 384);
    memcpy(r->raw, raw, 384);
    if (cl_cursor_copy(&c, r->cpu_svn, 16) < 0 || cl_cursor_le32(&c, &r->misc_select) < 0 ||
        cl_cursor_skip(&c, 28) < 0 || cl_cursor_copy(&c, r->attributes, 16) < 0 ||
        cl_cursor_copy(&c, r->mr_enclave, 32) < 0 || cl_cursor_skip(&c, 32) < 0 ||
        cl_cursor_copy(&c, r->mr_signer, 32) < 0 || cl_cursor_skip(&c, 96) < 0 ||
        cl_cursor_le16(&c, &r->isv_prod_id) < 0 || cl_cursor_le16(&c, &r->isv_svn) < 0 ||
        cl_cursor_skip(&c, 60) < 0 || cl_cursor_copy(&c, r->report_data, 64) < 0)
        return PERR("quote QE report truncated");
    return 0;
}

static int parse_sgx_body(struct cl_cursor *c, struct cl_sgx_body *b, struct cl_err *err)
{
    if (cl_cursor_copy(c, b->cpu_svn, 16) < 0 || cl_cursor_copy(c, b->misc_select, 4) < 0 ||
        cl_cursor_copy(c, b->reserved1, 12) < 0 || cl_cursor_copy(c, b->isv_ext_prod_id, 16) < 0 ||
        cl_cursor_copy(c, b->attr_flags, 8) < 0 || cl_cursor_copy(c, b->attr_xfrm, 8) < 0 ||
        cl_cursor_copy(c, b->mr_enclave, 32) < 0 || cl_cursor_copy(c, b->reserved2, 32) < 0 ||
        cl_cursor_copy(c, b->mr_signer, 32) < 0 || cl_cursor_copy(c, b->reserved3, 32) < 0 ||
        cl_cursor_copy(c, b->config_id, 64) < 0 || cl_cursor_copy(c, b->isv_prod_id, 2) < 0 ||
        cl_cursor_copy(c, b->isv_svn, 2) < 0 || cl_cursor_copy(c, b->config_svn, 2) < 0 ||
        cl_cursor_copy(c, b->reserved4, 42) < 0 || cl_cursor_copy(c, b->isv_family_id, 16) < 0 ||
        cl_cursor_copy(c, b->report_data, 64) < 0)
        return PERR("SGX quote truncated in the enclave report body (at byte %zu)", c->off);
    return 0;
}

/* QE report ‖ QE report signature ‖ QE auth data ‖ PCK certification data (type 5): the body of
 * v4's type-6 certification data, and directly the rest of v3's signature data. */
static int parse_qe_part(struct cl_cursor *cd, struct cl_tdx_quote *q, struct cl_err *err)
{
    const uint8_t *qer = NULL;
    uint16_t auth_len = 0;
    int rc;
    if (cl_cursor_take(cd, 384, &qer) < 0 || cl_cursor_copy(cd, q->qe_signature, 64) < 0 ||
        cl_cursor_le16(cd, &auth_len) < 0)
        return PERR("quote QE report certification data truncated");
    if ((rc = parse_qe_report(qer, &q->qe, err)) < 0)
        return rc;
    if (auth_len > CL_TDX_MAX_AUTH || cl_cursor_take(cd, auth_len, &q->qe_auth) < 0)
        return PERR("quote QE authentication data of %u bytes is too long", auth_len);
    q->qe_auth_len = auth_len;
    uint16_t inner_type = 0;
    uint32_t inner_size = 0;
    if (cl_cursor_le16(cd, &inner_type) < 0 || cl_cursor_le32(cd, &inner_size) < 0)
        return PERR("quote PCK certification data truncated");
    if (inner_type != 5)
        return PERR("quote PCK certification data type %u (only 5, PEM chain)", inner_type);
    if (cl_cursor_take(cd, inner_size, &q->pck_pem) < 0)
        return PERR("quote PCK chain of %u bytes overruns the certification data", inner_size);
    q->pck_pem_len = inner_size;
    return 0;
}

/* Header and report body of any DCAP quote; on success the cursor stands at the signature
 * data and q->signed_data/signed_len cover what the attestation key signs. */
static int parse_head(struct cl_cursor *c, const uint8_t *buf, size_t len, struct cl_tdx_quote *q,
                      struct cl_err *err)
{
    int rc;
    /* ---- header ---- */
    if (len < 48)
        return PERR("DCAP quote truncated in the header (%zu bytes)", len);
    memcpy(q->header_raw, buf, 48);
    if (cl_cursor_le16(c, &q->version) < 0 || cl_cursor_le16(c, &q->att_key_type) < 0 ||
        cl_cursor_le32(c, &q->tee_type) < 0 || cl_cursor_copy(c, q->reserved, 4) < 0 ||
        cl_cursor_copy(c, q->vendor_id, 16) < 0 || cl_cursor_copy(c, q->user_data, 20) < 0)
        return PERR("DCAP quote truncated in the header");
    if (q->version == 3) {
        q->sgx = true;
        if (q->tee_type != 0)
            return PERR("quote v3 with att_key_data_0 %#x (SGX quotes have 0)", q->tee_type);
    } else if (q->version != 4 && q->version != 5) {
        return PERR("DCAP quote version %u (3 is SGX, 4 and 5 are TDX)", q->version);
    } else if (q->tee_type != 0x81) {
        return PERR("quote TEE type %#x is not TDX (0x81)", q->tee_type);
    }
    if (q->att_key_type != 2)
        return PERR("quote attestation key type %u (only 2, ECDSA P-256)", q->att_key_type);
    /* ---- body ---- */
    bool td15 = false;
    if (q->sgx) {
        if ((rc = parse_sgx_body(c, &q->sgx_body, err)) < 0)
            return rc;
    } else {
        if (q->version == 5) {
            if (cl_cursor_le16(c, &q->body_type) < 0 || cl_cursor_le32(c, &q->body_size) < 0)
                return PERR("TDX quote v5 truncated in the body descriptor");
            if (q->body_type == 2 && q->body_size == 584)
                td15 = false;
            else if (q->body_type == 3 && q->body_size == 648)
                td15 = true;
            else
                return PERR("TDX quote v5 body type %u of %u bytes (2/584 or 3/648)", q->body_type,
                            q->body_size);
        } else {
            q->body_type = 2;
            q->body_size = 584;
        }
        if ((rc = parse_body(c, td15, &q->body, err)) < 0)
            return rc;
    }
    q->signed_data = buf;
    q->signed_len = c->off;
    return 0;
}

int cl_tdx_quote_parse_head(const uint8_t *buf, size_t len, struct cl_tdx_quote *out,
                            struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct cl_tdx_quote q;
    memset(&q, 0, sizeof q);
    struct cl_cursor c = cl_cursor_init(buf, len);
    int rc = parse_head(&c, buf, len, &q, err);
    if (rc == 0)
        *out = q;
    return rc;
}

int cl_tdx_quote_parse_any(const uint8_t *buf, size_t len, struct cl_tdx_quote *out,
                           struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (len > CL_TDX_MAX_QUOTE)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE,
                            "DCAP quote of %zu bytes (at most %d)", len, CL_TDX_MAX_QUOTE);
    struct cl_tdx_quote q;
    memset(&q, 0, sizeof q);
    struct cl_cursor c = cl_cursor_init(buf, len);
    int rc = parse_head(&c, buf, len, &q, err);
    if (rc < 0)
        return rc;
    /* ---- signature data ---- */
    uint32_t sig_len = 0;
    if (cl_cursor_le32(&c, &sig_len) < 0)
        return PERR("DCAP quote truncated before the signature data");
    struct cl_cursor s;
    if (cl_cursor_sub(&c, sig_len, &s) < 0)
        return PERR("DCAP quote signature data of %u bytes overruns the quote (%zu left)", sig_len,
                    cl_cursor_left(&c));
    if (cl_cursor_copy(&s, q.signature, 64) < 0 || cl_cursor_copy(&s, q.att_key, 64) < 0)
        return PERR("DCAP quote signature data truncated");
    if (q.sgx) {
        if ((rc = parse_qe_part(&s, &q, err)) < 0)
            return rc;
    } else {
        uint16_t cert_type = 0;
        uint32_t cert_size = 0;
        if (cl_cursor_le16(&s, &cert_type) < 0 || cl_cursor_le32(&s, &cert_size) < 0)
            return PERR("TDX quote signature data truncated");
        if (cert_type != 6)
            return PERR("TDX quote certification data type %u (only 6, QE report)", cert_type);
        struct cl_cursor cd;
        if (cl_cursor_sub(&s, cert_size, &cd) < 0)
            return PERR("TDX quote certification data of %u bytes overruns the signature data",
                        cert_size);
        if ((rc = parse_qe_part(&cd, &q, err)) < 0)
            return rc;
    }
    *out = q;
    return 0;
}

int cl_tdx_quote_parse(const uint8_t *buf, size_t len, struct cl_tdx_quote *out, struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct cl_tdx_quote q;
    int rc = cl_tdx_quote_parse_any(buf, len, &q, err);
    if (rc < 0)
        return rc;
    if (q.sgx)
        return PERR("TDX quote version %u (4 and 5 are TDX quotes; 3 is SGX)", q.version);
    *out = q;
    return 0;
}

/* ---- a minimal DER reader for the SGX extension ---- */

struct der {
    uint8_t tag;
    struct cl_cursor v;
};

static int der_next(struct cl_cursor *c, struct der *d)
{
    uint8_t len0 = 0;
    if (cl_cursor_u8(c, &d->tag) < 0 || (d->tag & 0x1f) == 0x1f || cl_cursor_u8(c, &len0) < 0)
        return -1;
    size_t len = len0;
    if (len0 & 0x80) {
        unsigned nb = len0 & 0x7f;
        if (nb == 0 || nb > 3)
            return -1;
        len = 0;
        for (unsigned i = 0; i < nb; i++) {
            uint8_t b = 0;
            if (cl_cursor_u8(c, &b) < 0)
                return -1;
            len = len << 8 | b;
        }
    }
    return cl_cursor_sub(c, len, &d->v);
}

/* 1.2.840.113741.1.13.1 as DER OID content. */
static const uint8_t SGX_OID[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

/* For an OID under the SGX arc, the sub-arcs after it (each < 128), else n = 0. */
static size_t sgx_arcs(const struct der *oid, uint8_t *arcs, size_t cap)
{
    size_t len = oid->v.len, n = 0;
    if (oid->tag != 0x06 || len <= sizeof SGX_OID ||
        memcmp(oid->v.buf, SGX_OID, sizeof SGX_OID) != 0)
        return 0;
    for (size_t i = sizeof SGX_OID; i < len; i++) {
        if ((oid->v.buf[i] & 0x80) || n == cap)
            return 0;
        arcs[n++] = oid->v.buf[i];
    }
    return n;
}

static int der_uint(const struct der *d, uint8_t tag, unsigned max, unsigned *out)
{
    if (d->tag != tag || d->v.len == 0 || d->v.len > 3)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < d->v.len; i++)
        v = v << 8 | d->v.buf[i];
    if (d->v.buf[0] & 0x80 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int der_octets(const struct der *d, uint8_t *dst, size_t n)
{
    if (d->tag != 0x04 || d->v.len != n)
        return -1;
    memcpy(dst, d->v.buf, n);
    return 0;
}

static int der_bool(const struct der *d, bool *out)
{
    if (d->tag != 0x01 || d->v.len != 1)
        return -1;
    *out = d->v.buf[0] != 0;
    return 0;
}

/* SEQUENCE { SEQUENCE { OID, value } ... } calling fn for each pair. */
static int pairs(struct cl_cursor *c,
                 int (*fn)(const uint8_t *arcs, size_t n, const struct der *val, void *ud),
                 void *ud, unsigned *seen)
{
    while (cl_cursor_left(c)) {
        struct der pair, oid, val;
        if (der_next(c, &pair) < 0 || pair.tag != 0x30 || der_next(&pair.v, &oid) < 0 ||
            der_next(&pair.v, &val) < 0 || cl_cursor_left(&pair.v) != 0)
            return -1;
        uint8_t arcs[4];
        size_t n = sgx_arcs(&oid, arcs, sizeof arcs);
        if (n == 0)
            return -1;
        if (fn(arcs, n, &val, ud) < 0)
            return -1;
        if (seen && n == 1 && arcs[0] < 32)
            *seen |= 1u << arcs[0];
    }
    return 0;
}

static int tcb_pair(const uint8_t *arcs, size_t n, const struct der *val, void *ud)
{
    struct cl_tdx_pck *p = ud;
    unsigned v = 0;
    if (n != 2 || arcs[0] != 2)
        return -1;
    if (arcs[1] >= 1 && arcs[1] <= 16) {
        if (der_uint(val, 0x02, 255, &v) < 0)
            return -1;
        p->comp_svn[arcs[1] - 1] = (uint8_t)v;
        return 0;
    }
    if (arcs[1] == 17) {
        if (der_uint(val, 0x02, 65535, &v) < 0)
            return -1;
        p->pcesvn = (uint16_t)v;
        return 0;
    }
    if (arcs[1] == 18)
        return der_octets(val, p->cpusvn, 16);
    return -1;
}

static int config_pair(const uint8_t *arcs, size_t n, const struct der *val, void *ud)
{
    struct cl_tdx_pck *p = ud;
    if (n != 2 || arcs[0] != 7)
        return -1;
    switch (arcs[1]) {
    case 1:
        return der_bool(val, &p->dynamic_platform);
    case 2:
        return der_bool(val, &p->cached_keys);
    case 3:
        return der_bool(val, &p->smt_enabled);
    default:
        return -1;
    }
}

static int top_pair(const uint8_t *arcs, size_t n, const struct der *val, void *ud)
{
    struct cl_tdx_pck *p = ud;
    if (n != 1)
        return -1;
    struct cl_cursor inner = val->v;
    unsigned v = 0;
    switch (arcs[0]) {
    case 1:
        return der_octets(val, p->ppid, 16);
    case 2:
        return val->tag == 0x30 ? pairs(&inner, tcb_pair, p, NULL) : -1;
    case 3:
        return der_octets(val, p->pceid, 2);
    case 4:
        return der_octets(val, p->fmspc, 6);
    case 5:
        if (der_uint(val, 0x0a, 2, &v) < 0)
            return -1;
        p->sgx_type = (int)v;
        return 0;
    case 6:
        p->has_instance_id = true;
        return der_octets(val, p->platform_instance_id, 16);
    case 7:
        p->has_config = true;
        return val->tag == 0x30 ? pairs(&inner, config_pair, p, NULL) : -1;
    default:
        return -1;
    }
}

int cl_tdx_pck_parse(X509 *leaf, struct cl_tdx_pck *out, struct cl_err *err)
{
    CL_TEE_ERR(err);
    const uint8_t *d = NULL;
    size_t n = 0;
    if (cl_tee_x509_ext(leaf, "1.2.840.113741.1.13.1", &d, &n, err) < 0) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "PCK certificate");
    }
    struct cl_tdx_pck p;
    memset(&p, 0, sizeof p);
    struct cl_cursor c = cl_cursor_init(d, n);
    struct der top;
    unsigned seen = 0;
    if (der_next(&c, &top) < 0 || top.tag != 0x30 || cl_cursor_left(&c) != 0 ||
        pairs(&top.v, top_pair, &p, &seen) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_CHAIN,
                            "PCK certificate: malformed SGX extension");
    unsigned need = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 5;
    if ((seen & need) != need)
        return cl_err_stage(
            err, CL_EPARSE, CL_TEE_STAGE_CHAIN,
            "PCK certificate: SGX extension lacks PPID, TCB, PCE-ID, FMSPC or SGX type");
    char cn[80];
    cl_tee_x509_cn(leaf, true, cn, sizeof cn);
    if (strcmp(cn, "Intel SGX PCK Platform CA") == 0)
        p.platform_ca = true;
    else if (strcmp(cn, "Intel SGX PCK Processor CA") != 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "PCK certificate issued by '%s', not a PCK CA", cn);
    *out = p;
    return 0;
}

/* ---- verification ---- */

static EVP_PKEY *p256_key(const uint8_t xy[64], struct cl_err *err)
{
    uint8_t pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, xy, 64);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("group", (char *)(uintptr_t) "prime256v1", 0),
        OSSL_PARAM_construct_octet_string("pub", pt, sizeof pt),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        k = NULL;
    EVP_PKEY_CTX_free(ctx);
    if (k) {
        /* fromdata does not check the point: a key off the curve must not reach ECDSA */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new(k, NULL);
        bool ok = chk && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(k);
            k = NULL;
        }
    }
    ERR_clear_error();
    if (!k)
        cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                     "quote attestation key is not a P-256 point");
    return k;
}

static int check_crl(X509_CRL *crl, X509 *issuer, X509 *subject, int64_t at, const char *what,
                     struct cl_err *err)
{
    if (!crl)
        return 0;
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "%s CRL is not issued by the certificate's issuer", what);
    if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
        ERR_clear_error();
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN, "%s CRL signature does not verify",
                            what);
    }
    time_t t = (time_t)at;
    const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
    if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &t) >= 0 || (nu && X509_cmp_time(nu, &t) <= 0))
        return cl_err_stage(err, CL_EEXPIRED, CL_TEE_STAGE_CHAIN, "%s CRL is not valid at %lld",
                            what, (long long)at);
    X509_REVOKED *rev = NULL;
    if (X509_CRL_get0_by_cert(crl, &rev, subject) == 1)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN, "%s certificate is revoked", what);
    return 0;
}

int cl_tdx_check_crls(STACK_OF(X509) * chain, const struct cl_tdx_crls *crls, int64_t at,
                      struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (!crls || !chain || sk_X509_num(chain) != 3)
        return 0;
    int rc;
    X509 *leaf = sk_X509_value(chain, 0), *mid = sk_X509_value(chain, 1),
         *root = sk_X509_value(chain, 2);
    if ((rc = check_crl(crls->root_ca, root, mid, at, "PCK CA", err)) < 0 ||
        (rc = check_crl(crls->pck, mid, leaf, at, "PCK", err)) < 0)
        return rc;
    return 0;
}

int cl_tdx_verify_quote(const struct cl_tdx_quote *q, const char *const *pins, size_t npins,
                        int64_t at, const struct cl_tdx_crls *crls, struct cl_tdx_pck *pck,
                        STACK_OF(X509) * *chain_out, struct cl_err *err)
{
    CL_TEE_ERR(err);
    /* ---- the quote signature by the attestation key ---- */
    EVP_PKEY *ak = p256_key(q->att_key, err);
    if (!ak)
        return err->code;
    struct cl_err e = {0};
    int rc = cl_sig_verify(ak, "ES256", q->signed_data, q->signed_len, q->signature, 64, &e);
    EVP_PKEY_free(ak);
    if (rc < 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "quote signature does not verify with the attestation key");
    /* ---- the PCK chain (parsed here; trusted only after the chain stage) ---- */
    CL_AUTO(cl_tee_x509s) *chain = cl_tee_x509_parse_any(q->pck_pem, q->pck_pem_len, err);
    if (!chain) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "quote PCK chain");
    }
    if (sk_X509_num(chain) != 3)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "quote PCK chain has %d certificates, want 3", sk_X509_num(chain));
    X509 *leaf = sk_X509_value(chain, 0), *mid = sk_X509_value(chain, 1),
         *root = sk_X509_value(chain, 2);
    /* ---- QE report signed by the PCK key, and binding the attestation key ---- */
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    if (!pk || cl_sig_verify(pk, "ES256", q->qe.raw, 384, q->qe_signature, 64, &e) < 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "QE report signature does not verify with the PCK key");
    uint8_t h[32], want[64] = {0};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned hl = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, q->att_key, 64) == 1 &&
              EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len) == 1 &&
              EVP_DigestFinal_ex(md, h, &hl) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_SIGNATURE, "SHA-256 failed");
    memcpy(want, h, 32);
    if (!cl_memeq_ct(want, q->qe.report_data, 64))
        return cl_err_stage(
            err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
            "QE report data does not bind the attestation key (SHA-256 of key and auth data)");
    /* ---- chain to the pinned root ---- */
    if (!cl_tee_x509_pinned(root, pins, npins))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "PCK chain root is not Intel's pinned SGX Root CA");
    X509 *const certs[] = {root, mid, leaf};
    struct cl_tee_cache_key key;
    cl_tee_cache_key_certs("tdx-pck-chain", certs, 3, NULL, 0, &key);
    if (!cl_tee_cache_hit(&key, at)) {
        if ((rc = cl_tee_x509_link(root, root, at, "SGX root CA", err)) < 0 ||
            (rc = cl_tee_x509_link(mid, root, at, "PCK CA", err)) < 0 ||
            (rc = cl_tee_x509_link(leaf, mid, at, "PCK certificate", err)) < 0) {
            err->stage = CL_TEE_STAGE_CHAIN;
            return rc;
        }
        int64_t nb = 0, na = 0;
        cl_tee_certs_window(certs, 3, &nb, &na);
        cl_tee_cache_put(&key, nb, na);
    }
    if ((rc = cl_tdx_check_crls(chain, crls, at, err)) < 0)
        return rc;
    struct cl_tdx_pck p;
    if ((rc = cl_tdx_pck_parse(leaf, &p, err)) < 0)
        return rc;
    *pck = p;
    if (chain_out)
        *chain_out = CL_STEAL(chain);
    return 0;
}
