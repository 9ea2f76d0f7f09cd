/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP collateral for TDX and SGX: TCB info and QE identity (JSON signed by Intel's TCB Signing
 * key, the signature covering the exact text of the "tcbInfo" / "enclaveIdentity" member), their
 * issuer chains and the CRLs — from a folder, or fetched from a PCS/PCCS when configured
 * (then written to the folder). Then the TCB evaluation: the platform level the PCK and the
 * TD's TEE_TCB_SVN reach, the TDX module identity, and the Quoting Enclave's identity.
 */
#include "tee/tdx/tdx.h"
#include "tee/tee_int.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"

void cl_tdx_collateral_clear(struct cl_tdx_collateral *c)
{
    free(c->tcb_info_text);
    free(c->qe_identity_text);
    json_decref(c->tcb_info);
    json_decref(c->qe_identity);
    sk_X509_pop_free(c->tcb_chain, X509_free);
    sk_X509_pop_free(c->qe_chain, X509_free);
    X509_CRL_free(c->root_crl);
    X509_CRL_free(c->pck_crl);
    memset(c, 0, sizeof *c);
}

#define CERR(code, ...) cl_err_stage(err, (code), CL_TEE_STAGE_COLLATERAL, __VA_ARGS__)

/* ---- the exact text of a top-level member ---- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* End (exclusive) of the JSON string starting at s[i] == '"', or 0. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* End (exclusive) of the value starting at s[i], or 0. Depth is bounded by the caller's
 * earlier jansson parse of the same text. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return 0;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            if (s[i] == '"') {
                size_t e = skip_string(s, i, n);
                if (!e)
                    return 0;
                i = e - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return 0;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
           s[i] != '\r' && s[i] != '\t')
        i++;
    return i;
}

static int member_span(const char *s, size_t n, const char *key, size_t *start, size_t *end)
{
    size_t i = skip_ws(s, 0, n), kl = strlen(key);
    if (i >= n || s[i] != '{')
        return -1;
    i = skip_ws(s, i + 1, n);
    while (i < n && s[i] == '"') {
        size_t ke = skip_string(s, i, n);
        if (!ke)
            return -1;
        bool match = ke - i - 2 == kl && memcmp(s + i + 1, key, kl) == 0;
        i = skip_ws(s, ke, n);
        if (i >= n || s[i] != ':')
            return -1;
        i = skip_ws(s, i + 1, n);
        size_t ve = skip_value(s, i, n);
        if (!ve)
            return -1;
        if (match) {
            *start = i;
            *end = ve;
            return 0;
        }
        i = skip_ws(s, ve, n);
        if (i < n && s[i] == ',')
            i = skip_ws(s, i + 1, n);
    }
    return -1;
}

/* ---- loading ---- */

static int parse_signed_json(const uint8_t *text, size_t len, const char *member, json_t **out,
                             struct cl_err *err)
{
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)text, len, 16, err);
    if (!doc) {
        err->stage = CL_TEE_STAGE_COLLATERAL;
        return cl_err_prefix(err, "%s", member);
    }
    json_t *m = json_object_get(doc, member);
    if (!json_is_object(m) || !json_is_string(json_object_get(doc, "signature")))
        return CERR(CL_EPARSE, "collateral: want {\"%s\": {...}, \"signature\": \"<hex>\"}",
                    member);
    *out = json_incref(m);
    return 0;
}

static int read_crl(const uint8_t *buf, size_t n, X509_CRL **out, struct cl_err *err)
{
    const unsigned char *p = buf;
    X509_CRL *crl = NULL;
    if (n && buf[0] == 0x30) {
        crl = d2i_X509_CRL(NULL, &p, (long)n);
    } else {
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    }
    ERR_clear_error();
    if (!crl)
        return CERR(CL_EPARSE, "CRL is neither DER nor PEM");
    *out = crl;
    return 0;
}

int cl_tdx_collateral_from(const uint8_t *tcb_info, size_t tcb_len, const uint8_t *qe_identity,
                           size_t qe_len, const uint8_t *tcb_chain_pem, size_t tcb_chain_len,
                           const uint8_t *qe_chain_pem, size_t qe_chain_len,
                           struct cl_tdx_collateral *c, struct cl_err *err)
{
    CL_TEE_ERR(err);
    memset(c, 0, sizeof *c);
    int rc;
    if (tcb_len > CL_TDX_MAX_COLLATERAL || qe_len > CL_TDX_MAX_COLLATERAL)
        return CERR(CL_ELIMIT, "collateral larger than %d bytes", CL_TDX_MAX_COLLATERAL);
    c->tcb_info_text = malloc(tcb_len + 1);
    c->qe_identity_text = malloc(qe_len + 1);
    if (!c->tcb_info_text || !c->qe_identity_text) {
        cl_tdx_collateral_clear(c);
        return CERR(CL_ENOMEM, "out of memory");
    }
    memcpy(c->tcb_info_text, tcb_info, tcb_len);
    c->tcb_info_text[tcb_len] = 0;
    c->tcb_info_len = tcb_len;
    memcpy(c->qe_identity_text, qe_identity, qe_len);
    c->qe_identity_text[qe_len] = 0;
    c->qe_identity_len = qe_len;
    if ((rc = parse_signed_json(tcb_info, tcb_len, "tcbInfo", &c->tcb_info, err)) < 0 ||
        (rc = parse_signed_json(qe_identity, qe_len, "enclaveIdentity", &c->qe_identity, err)) < 0)
        goto fail;
    if (tcb_chain_pem &&
        !(c->tcb_chain = cl_tee_x509_parse_any(tcb_chain_pem, tcb_chain_len, err))) {
        rc = cl_err_prefix(err, "TCB info issuer chain");
        goto fail;
    }
    if (qe_chain_pem && !(c->qe_chain = cl_tee_x509_parse_any(qe_chain_pem, qe_chain_len, err))) {
        rc = cl_err_prefix(err, "QE identity issuer chain");
        goto fail;
    }
    return 0;
fail:
    err->stage = CL_TEE_STAGE_COLLATERAL;
    cl_tdx_collateral_clear(c);
    return rc;
}

/* Reads dir/name; *buf NULL (and 0) when absent. */
static int opt_file(const char *dir, const char *name, cl_bytes **buf, size_t *n,
                    struct cl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct cl_err e = {0};
    *buf = cl_file_read(path, CL_TDX_MAX_COLLATERAL, n, &e);
    if (!*buf && e.code != CL_ENOTFOUND) {
        *err = e;
        err->stage = CL_TEE_STAGE_COLLATERAL;
        return e.code;
    }
    return 0;
}

/* Fetches url; when dir is set, the body goes to dir/name and the issuer chain header (if
 * hdr) to dir/hdr_file. */
static int fetch(const char *url, const char *hdr, const char *dir, const char *name,
                 const char *hdr_file, cl_bytes **body, size_t *n, cl_str **chain,
                 struct cl_err *err)
{
    *body = cl_tee_http_get(url, CL_TDX_MAX_COLLATERAL, n, hdr, chain, err);
    if (!*body) {
        err->stage = CL_TEE_STAGE_COLLATERAL;
        return cl_err_prefix(err, "PCCS");
    }
    if (dir) {
        char path[4096];
        struct cl_err we = {0};
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (cl_mkdir_p(dir, 0755, &we) < 0 || cl_file_write_atomic(path, *body, *n, 0644, &we) < 0)
            cl_warn("TDX collateral cache %s: %s", path, we.msg);
        if (hdr_file && chain && *chain) {
            snprintf(path, sizeof path, "%s/%s", dir, hdr_file);
            if (cl_file_write_atomic(path, *chain, strlen(*chain), 0644, &we) < 0)
                cl_warn("TDX collateral cache %s: %s", path, we.msg);
        }
    }
    return 0;
}

int cl_tdx_collateral_load(const struct cl_tee_config *cfg, const uint8_t fmspc[6],
                           bool platform_ca, struct cl_tdx_collateral *c, struct cl_err *err)
{
    return cl_tdx_collateral_load_kind(cfg, false, fmspc, platform_ca, c, err);
}

int cl_tdx_collateral_load_kind(const struct cl_tee_config *cfg, bool sgx, const uint8_t fmspc[6],
                                bool platform_ca, struct cl_tdx_collateral *c, struct cl_err *err)
{
    CL_TEE_ERR(err);
    memset(c, 0, sizeof *c);
    const char *dir = cfg ? (sgx ? cfg->sgx_collateral_dir : cfg->tdx_collateral_dir) : NULL;
    const char *kind = sgx ? "sgx" : "tdx";
    const char *pccs = cfg ? cfg->tdx_pccs_url : NULL;
    char fm[13], name[64];
    for (int i = 0; i < 6; i++)
        snprintf(fm + 2 * i, 3, "%02x", fmspc[i]);
    CL_AUTO(cl_bytes) *tcb = NULL, *qe = NULL, *tchain = NULL, *qchain = NULL, *rcrl = NULL,
                      *pcrl = NULL;
    size_t ntcb = 0, nqe = 0, ntc = 0, nqc = 0, nrc = 0, npc = 0;
    int rc;
    snprintf(name, sizeof name, "tcb_info_%s.json", fm);
    const char *crl_name = platform_ca ? "pck_crl_platform" : "pck_crl_processor";
    if (dir) {
        char n2[64];
        if ((rc = opt_file(dir, name, &tcb, &ntcb, err)) < 0 ||
            (!tcb && (rc = opt_file(dir, "tcb_info.json", &tcb, &ntcb, err)) < 0) ||
            (rc = opt_file(dir, "qe_identity.json", &qe, &nqe, err)) < 0 ||
            (rc = opt_file(dir, "tcb_info_issuer_chain.pem", &tchain, &ntc, err)) < 0 ||
            (rc = opt_file(dir, "qe_identity_issuer_chain.pem", &qchain, &nqc, err)) < 0 ||
            (rc = opt_file(dir, "root_ca_crl.der", &rcrl, &nrc, err)) < 0 ||
            (!rcrl && (rc = opt_file(dir, "root_ca_crl.pem", &rcrl, &nrc, err)) < 0))
            return rc;
        snprintf(n2, sizeof n2, "%s.der", crl_name);
        if ((rc = opt_file(dir, n2, &pcrl, &npc, err)) < 0)
            return rc;
        snprintf(n2, sizeof n2, "%s.pem", crl_name);
        if (!pcrl && (rc = opt_file(dir, n2, &pcrl, &npc, err)) < 0)
            return rc;
    }
    if (pccs && (!tcb || !qe)) {
        char url[2048];
        CL_AUTO(cl_str) *ch1 = NULL;
        CL_AUTO(cl_str) *ch2 = NULL;
        free(tcb);
        free(qe);
        tcb = qe = NULL;
        snprintf(url, sizeof url, "%s/%s/certification/v4/tcb?fmspc=%s", pccs, kind, fm);
        if ((rc = fetch(url, "TCB-Info-Issuer-Chain", dir, name, "tcb_info_issuer_chain.pem", &tcb,
                        &ntcb, &ch1, err)) < 0)
            return rc;
        snprintf(url, sizeof url, "%s/%s/certification/v4/qe/identity", pccs, kind);
        if ((rc = fetch(url, "SGX-Enclave-Identity-Issuer-Chain", dir, "qe_identity.json",
                        "qe_identity_issuer_chain.pem", &qe, &nqe, &ch2, err)) < 0)
            return rc;
        if (ch1) {
            free(tchain);
            ntc = strlen(ch1);
            tchain = (cl_bytes *)CL_STEAL(ch1);
        }
        if (ch2) {
            free(qchain);
            nqc = strlen(ch2);
            qchain = (cl_bytes *)CL_STEAL(ch2);
        }
        if (!pcrl) {
            char cn[64];
            snprintf(url, sizeof url, "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", pccs,
                     platform_ca ? "platform" : "processor");
            snprintf(cn, sizeof cn, "%s.der", crl_name);
            struct cl_err fe = {0};
            if (fetch(url, NULL, dir, cn, NULL, &pcrl, &npc, NULL, &fe) < 0)
                cl_warn("TDX PCK CRL not fetched: %s", fe.msg);
        }
    }
    if (!tcb)
        return CERR(CL_ENOTFOUND, "no %s TCB info for FMSPC %s (%s)", sgx ? "SGX" : "TDX", fm,
                    dir ? "not in the collateral folder"
                        : "no collateral folder or PCCS configured");
    if (!qe)
        return CERR(CL_ENOTFOUND, "no %s QE identity (%s)", sgx ? "SGX" : "TDX",
                    dir ? "not in the collateral folder" : "none configured");
    if ((rc = cl_tdx_collateral_from(tcb, ntcb, qe, nqe, tchain, ntc, qchain, nqc, c, err)) < 0)
        return rc;
    if ((rcrl && (rc = read_crl(rcrl, nrc, &c->root_crl, err)) < 0) ||
        (pcrl && (rc = read_crl(pcrl, npc, &c->pck_crl, err)) < 0)) {
        cl_tdx_collateral_clear(c);
        return cl_err_prefix(err, "TDX collateral");
    }
    return 0;
}

/* ---- verification ---- */

static int parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return -1;
    if (*end == '.') /* fractional seconds */
        for (end++; *end >= '0' && *end <= '9'; end++)
            ;
    if (strcmp(end, "Z") != 0)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int verify_signed(const uint8_t *text, size_t len, const char *member,
                         STACK_OF(X509) * chain, const char *const *pins, size_t npins, int64_t at,
                         X509_CRL *root_crl, struct cl_err *err)
{
    if (!chain || sk_X509_num(chain) < 2)
        return CERR(CL_ENOTFOUND, "%s: no issuer chain (signing certificate and root)", member);
    X509 *leaf = sk_X509_value(chain, 0), *root = sk_X509_value(chain, sk_X509_num(chain) - 1);
    if (sk_X509_num(chain) != 2)
        return CERR(CL_EVERIFY,
                    "%s: issuer chain of %d certificates (want signing certificate and root)",
                    member, sk_X509_num(chain));
    if (!cl_tee_x509_pinned(root, pins, npins))
        return CERR(CL_EVERIFY, "%s: issuer chain root is not Intel's pinned SGX Root CA", member);
    /* the same signed text with the same chain (and root CRL) verified before, in its window */
    X509 *const certs[] = {root, leaf};
    struct cl_tee_cache_key key;
    unsigned char *crl_der = NULL;
    int crl_len = root_crl ? i2d_X509_CRL(root_crl, &crl_der) : 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t extra[64];
    unsigned el = 0;
    bool keyed = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(md, text, len) == 1 &&
                 (crl_len <= 0 || EVP_DigestUpdate(md, crl_der, (size_t)crl_len) == 1) &&
                 EVP_DigestFinal_ex(md, extra, &el) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(crl_der);
    if (keyed) {
        cl_tee_cache_key_certs(member, certs, 2, extra, el, &key);
        if (cl_tee_cache_hit(&key, at))
            return 0;
    }
    int rc;
    if ((rc = cl_tee_x509_link(root, root, at, "SGX root CA", err)) < 0 ||
        (rc = cl_tee_x509_link(leaf, root, at, "collateral signing certificate", err)) < 0) {
        err->stage = CL_TEE_STAGE_COLLATERAL;
        return cl_err_prefix(err, "%s", member);
    }
    if (root_crl) {
        X509_REVOKED *rev = NULL;
        if (X509_NAME_cmp(X509_CRL_get_issuer(root_crl), X509_get_subject_name(root)) != 0 ||
            X509_CRL_verify(root_crl, X509_get0_pubkey(root)) != 1) {
            ERR_clear_error();
            return CERR(CL_EVERIFY, "root CA CRL does not verify with the root");
        }
        if (X509_CRL_get0_by_cert(root_crl, &rev, leaf) == 1)
            return CERR(CL_EVERIFY, "%s: signing certificate is revoked", member);
    }
    size_t s = 0, e = 0;
    if (member_span((const char *)text, len, member, &s, &e) < 0)
        return CERR(CL_EPARSE, "%s: member not found in the signed text", member);
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)text, len, 16, err);
    const char *sighex = doc ? json_string_value(json_object_get(doc, "signature")) : NULL;
    uint8_t sig[64];
    size_t sl = 0;
    struct cl_err he = {0};
    if (!sighex || cl_hex_decode(sighex, strlen(sighex), sig, sizeof sig, &sl, &he) < 0 || sl != 64)
        return CERR(CL_EPARSE, "%s: signature is not 64 bytes of hex", member);
    if (cl_sig_verify(X509_get0_pubkey(leaf), "ES256", text + s, e - s, sig, 64, &he) < 0)
        return CERR(CL_EVERIFY, "%s: signature does not verify", member);
    if (keyed) {
        int64_t nb = 0, na = 0;
        cl_tee_certs_window(certs, 2, &nb, &na);
        cl_tee_cache_put(&key, nb, na);
    }
    return 0;
}

static int window(const json_t *o, const char *what, int64_t at, bool *expired, struct cl_err *err)
{
    int64_t iss = 0, nxt = 0;
    if (parse_time(json_string_value(json_object_get(o, "issueDate")), &iss) < 0 ||
        parse_time(json_string_value(json_object_get(o, "nextUpdate")), &nxt) < 0)
        return CERR(CL_EPARSE, "%s: issueDate/nextUpdate are not RFC 3339 UTC times", what);
    if (at < iss || at >= nxt)
        *expired = true;
    return 0;
}

int cl_tdx_collateral_verify(const struct cl_tdx_collateral *c, const char *const *pins,
                             size_t npins, int64_t at, bool *expired, struct cl_err *err)
{
    return cl_tdx_collateral_verify_kind(c, false, pins, npins, at, expired, err);
}

int cl_tdx_collateral_verify_kind(const struct cl_tdx_collateral *c, bool sgx,
                                  const char *const *pins, size_t npins, int64_t at, bool *expired,
                                  struct cl_err *err)
{
    CL_TEE_ERR(err);
    const char *want_tcb = sgx ? "SGX" : "TDX", *want_qe = sgx ? "QE" : "TD_QE";
    int rc;
    STACK_OF(X509) *qchain = c->qe_chain ? c->qe_chain : c->tcb_chain;
    if ((rc = verify_signed(c->tcb_info_text, c->tcb_info_len, "tcbInfo", c->tcb_chain, pins, npins,
                            at, c->root_crl, err)) < 0 ||
        (rc = verify_signed(c->qe_identity_text, c->qe_identity_len, "enclaveIdentity", qchain,
                            pins, npins, at, c->root_crl, err)) < 0)
        return rc;
    /* content is read only once the signatures hold */
    json_int_t v = json_integer_value(json_object_get(c->tcb_info, "version"));
    const char *id = json_string_value(json_object_get(c->tcb_info, "id"));
    if (!id || strcmp(id, want_tcb) != 0 || v != 3)
        return CERR(CL_EPARSE, "TCB info is not %s TCB info version 3 (id '%s', version %lld)",
                    want_tcb, id ? id : "", (long long)v);
    id = json_string_value(json_object_get(c->qe_identity, "id"));
    v = json_integer_value(json_object_get(c->qe_identity, "version"));
    if (!id || strcmp(id, want_qe) != 0 || v != 2)
        return CERR(CL_EPARSE, "QE identity is not %s identity version 2 (id '%s', version %lld)",
                    want_qe, id ? id : "", (long long)v);
    bool exp = false;
    if ((rc = window(c->tcb_info, "TCB info", at, &exp, err)) < 0 ||
        (rc = window(c->qe_identity, "QE identity", at, &exp, err)) < 0)
        return rc;
    time_t t = (time_t)at;
    for (int i = 0; i < 2; i++) {
        X509_CRL *crl = i ? c->pck_crl : c->root_crl;
        const ASN1_TIME *nu = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
        if (crl && (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &t) >= 0 ||
                    (nu && X509_cmp_time(nu, &t) <= 0)))
            exp = true;
    }
    *expired = exp;
    return 0;
}

/* ---- TCB evaluation ---- */

static const char *const status_names[] = {
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
};

const char *cl_tdx_status_name(enum cl_tdx_tcb_status s)
{
    return (size_t)s < CL_ARRAY_LEN(status_names) ? status_names[s] : "Unknown";
}

static int status_of(const json_t *level, enum cl_tdx_tcb_status *out)
{
    const char *s = json_string_value(json_object_get(level, "tcbStatus"));
    for (size_t i = 0; s && i < CL_ARRAY_LEN(status_names); i++)
        if (strcmp(s, status_names[i]) == 0)
            return (*out = (enum cl_tdx_tcb_status)i, 0);
    return -1;
}

static int hexfield(const json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t got = 0;
    struct cl_err e = {0};
    if (!s || cl_hex_decode(s, strlen(s), out, n, &got, &e) < 0 || got != n)
        return -1;
    return 0;
}

/* svn of components[i] ("svn" member of each of the 16 entries) */
static int comp_svns(const json_t *arr, uint8_t out[16])
{
    if (!json_is_array(arr) || json_array_size(arr) != 16)
        return -1;
    for (size_t i = 0; i < 16; i++) {
        json_t *s = json_object_get(json_array_get(arr, i), "svn");
        if (!json_is_integer(s) || json_integer_value(s) < 0 || json_integer_value(s) > 255)
            return -1;
        out[i] = (uint8_t)json_integer_value(s);
    }
    return 0;
}

static void copy_str(char *dst, size_t cap, const json_t *v)
{
    const char *s = json_string_value(v);
    snprintf(dst, cap, "%s", s ? s : "");
}

static enum cl_tdx_tcb_status worst(enum cl_tdx_tcb_status a, enum cl_tdx_tcb_status b)
{
    /* "configuration needed" survives an out-of-date verdict */
    bool conf = a == CL_TDX_CONFIGURATION_NEEDED ||
                a == CL_TDX_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
                a == CL_TDX_OUT_OF_DATE_CONFIGURATION_NEEDED ||
                a == CL_TDX_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
    enum cl_tdx_tcb_status w = a > b ? a : b;
    if (w == CL_TDX_OUT_OF_DATE && conf)
        w = CL_TDX_OUT_OF_DATE_CONFIGURATION_NEEDED;
    return w;
}

static int eval_platform(const struct cl_tdx_quote *q, const struct cl_tdx_pck *pck,
                         const json_t *ti, struct cl_tdx_tcb_result *res, struct cl_err *err)
{
    uint8_t fmspc[6], pceid[2];
    if (hexfield(ti, "fmspc", fmspc, 6) < 0 || hexfield(ti, "pceId", pceid, 2) < 0)
        return CERR(CL_EPARSE, "TCB info: fmspc/pceId missing or malformed");
    if (memcmp(fmspc, pck->fmspc, 6) != 0 || memcmp(pceid, pck->pceid, 2) != 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "TCB info is for another platform (FMSPC/PCE-ID)");
    json_t *levels = json_object_get(ti, "tcbLevels");
    if (!json_is_array(levels) || json_array_size(levels) == 0 ||
        json_array_size(levels) > CL_TDX_MAX_TCB_LEVELS)
        return CERR(CL_EPARSE, "TCB info: tcbLevels missing or more than %d",
                    CL_TDX_MAX_TCB_LEVELS);
    /* TDX module 1.5+ (TEE_TCB_SVN[1] != 0) is judged by its own identity: skip bytes 0 and 1 */
    size_t first = !q->sgx && q->body.tee_tcb_svn[1] ? 2 : 0;
    size_t i;
    json_t *lv;
    json_array_foreach(levels, i, lv)
    {
        json_t *tcb = json_object_get(lv, "tcb");
        uint8_t sgx[16], tdx[16];
        json_t *pcesvn = json_object_get(tcb, "pcesvn");
        if (comp_svns(json_object_get(tcb, "sgxtcbcomponents"), sgx) < 0 ||
            (!q->sgx && comp_svns(json_object_get(tcb, "tdxtcbcomponents"), tdx) < 0) ||
            !json_is_integer(pcesvn))
            return CERR(CL_EPARSE, "TCB info: tcbLevels[%zu] is malformed", i);
        bool ok = json_integer_value(pcesvn) <= pck->pcesvn;
        for (size_t k = 0; ok && k < 16; k++)
            ok = sgx[k] <= pck->comp_svn[k];
        for (size_t k = first; ok && !q->sgx && k < 16; k++)
            ok = tdx[k] <= q->body.tee_tcb_svn[k];
        if (!ok)
            continue;
        if (status_of(lv, &res->status) < 0)
            return CERR(CL_EPARSE, "TCB info: tcbLevels[%zu] has an unknown tcbStatus", i);
        copy_str(res->tcb_date, sizeof res->tcb_date, json_object_get(lv, "tcbDate"));
        json_t *adv = json_object_get(lv, "advisoryIDs");
        json_decref(res->advisory_ids);
        res->advisory_ids = json_is_array(adv) ? json_deep_copy(adv) : json_array();
        return 0;
    }
    return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_TCB,
                        "no TCB level of the TCB info matches this platform and TD");
}

static bool masked_eq(const uint8_t *a, const uint8_t *b, const uint8_t *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((a[i] & mask[i]) != (b[i] & mask[i]))
            return false;
    return true;
}

static int eval_module(const struct cl_tdx_quote *q, const json_t *ti, enum cl_tdx_tcb_status *st,
                       struct cl_err *err)
{
    uint8_t ver = q->body.tee_tcb_svn[1];
    const json_t *ident = NULL;
    if (ver == 0) {
        ident = json_object_get(ti, "tdxModule");
    } else {
        char want[16];
        snprintf(want, sizeof want, "TDX_%02X", ver);
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(ti, "tdxModuleIdentities"), i, m)
        {
            const char *id = json_string_value(json_object_get(m, "id"));
            if (id && strcmp(id, want) == 0)
                ident = m;
        }
        if (!ident)
            return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_TCB,
                                "TCB info has no TDX module identity %s", want);
    }
    uint8_t signer[48], attr[8], mask[8];
    if (!ident || hexfield(ident, "mrsigner", signer, 48) < 0 ||
        hexfield(ident, "attributes", attr, 8) < 0 ||
        hexfield(ident, "attributesMask", mask, 8) < 0)
        return CERR(CL_EPARSE, "TCB info: TDX module identity malformed");
    if (!cl_memeq_ct(signer, q->body.mrsigner_seam, 48))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "TDX module MRSIGNER_SEAM is not the one in the TCB info");
    if (!masked_eq(attr, q->body.seam_attributes, mask, 8))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "TDX module SEAM attributes differ from the TCB info");
    *st = CL_TDX_UP_TO_DATE;
    if (ver == 0)
        return 0;
    size_t i;
    json_t *lv;
    json_array_foreach(json_object_get(ident, "tcbLevels"), i, lv)
    {
        json_t *isv = json_object_get(json_object_get(lv, "tcb"), "isvsvn");
        if (!json_is_integer(isv))
            return CERR(CL_EPARSE, "TCB info: TDX module level %zu malformed", i);
        if (json_integer_value(isv) <= q->body.tee_tcb_svn[0]) {
            if (status_of(lv, st) < 0)
                return CERR(CL_EPARSE, "TCB info: TDX module level %zu has an unknown status", i);
            return 0;
        }
    }
    return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_TCB,
                        "no TDX module TCB level matches TEE_TCB_SVN %u", q->body.tee_tcb_svn[0]);
}

static int eval_qe(const struct cl_tdx_quote *q, const json_t *qi, enum cl_tdx_tcb_status *st,
                   struct cl_err *err)
{
    uint8_t misc[4], misc_mask[4], attr[16], attr_mask[16], signer[32], qmisc[4];
    json_t *prod = json_object_get(qi, "isvprodid");
    if (hexfield(qi, "miscselect", misc, 4) < 0 ||
        hexfield(qi, "miscselectMask", misc_mask, 4) < 0 ||
        hexfield(qi, "attributes", attr, 16) < 0 ||
        hexfield(qi, "attributesMask", attr_mask, 16) < 0 ||
        hexfield(qi, "mrsigner", signer, 32) < 0 || !json_is_integer(prod))
        return CERR(CL_EPARSE, "QE identity malformed");
    /* miscselect is written big-endian in the JSON, little-endian in the report */
    for (int i = 0; i < 4; i++)
        qmisc[i] = (uint8_t)(q->qe.misc_select >> (8 * (3 - i)));
    if (!masked_eq(misc, qmisc, misc_mask, 4))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "QE MISCSELECT does not match the QE identity");
    if (!masked_eq(attr, q->qe.attributes, attr_mask, 16))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "QE ATTRIBUTES do not match the QE identity");
    if (!cl_memeq_ct(signer, q->qe.mr_signer, 32))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB, "QE MRSIGNER is not Intel's");
    if (json_integer_value(prod) != q->qe.isv_prod_id)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB, "QE ISVPRODID %u is not %lld",
                            q->qe.isv_prod_id, (long long)json_integer_value(prod));
    size_t i;
    json_t *lv;
    json_array_foreach(json_object_get(qi, "tcbLevels"), i, lv)
    {
        json_t *isv = json_object_get(json_object_get(lv, "tcb"), "isvsvn");
        if (!json_is_integer(isv))
            return CERR(CL_EPARSE, "QE identity level %zu malformed", i);
        if (json_integer_value(isv) <= q->qe.isv_svn) {
            if (status_of(lv, st) < 0)
                return CERR(CL_EPARSE, "QE identity level %zu has an unknown status", i);
            return 0;
        }
    }
    return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_TCB,
                        "no QE identity level matches QE ISVSVN %u", q->qe.isv_svn);
}

int cl_tdx_tcb_evaluate(const struct cl_tdx_quote *q, const struct cl_tdx_pck *pck,
                        const struct cl_tdx_collateral *c, struct cl_tdx_tcb_result *res,
                        struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct cl_tdx_tcb_result r;
    memset(&r, 0, sizeof r);
    enum cl_tdx_tcb_status mod = CL_TDX_UP_TO_DATE, qe = CL_TDX_UP_TO_DATE;
    int rc;
    /* SGX quotes have no TDX module: platform and QE only */
    if ((rc = eval_platform(q, pck, c->tcb_info, &r, err)) < 0 ||
        (!q->sgx && (rc = eval_module(q, c->tcb_info, &mod, err)) < 0) ||
        (rc = eval_qe(q, c->qe_identity, &qe, err)) < 0) {
        json_decref(r.advisory_ids);
        return rc;
    }
    r.status = worst(worst(r.status, mod), qe);
    json_t *n = json_object_get(c->tcb_info, "tcbEvaluationDataNumber");
    r.tcb_eval_num = json_is_integer(n) ? json_integer_value(n) : 0;
    const char *i1 = json_string_value(json_object_get(c->tcb_info, "issueDate"));
    const char *i2 = json_string_value(json_object_get(c->qe_identity, "issueDate"));
    const char *n1 = json_string_value(json_object_get(c->tcb_info, "nextUpdate"));
    const char *n2 = json_string_value(json_object_get(c->qe_identity, "nextUpdate"));
    /* RFC 3339 UTC strings of one shape order like the times they name */
    snprintf(r.issue_date, sizeof r.issue_date, "%s",
             i1 && i2 && strcmp(i2, i1) < 0 ? i2 : (i1 ? i1 : ""));
    snprintf(r.latest_issue, sizeof r.latest_issue, "%s",
             i1 && i2 && strcmp(i2, i1) > 0 ? i2 : (i1 ? i1 : ""));
    snprintf(r.next_update, sizeof r.next_update, "%s",
             n1 && n2 && strcmp(n2, n1) < 0 ? n2 : (n1 ? n1 : ""));
    *res = r;
    return 0;
}
