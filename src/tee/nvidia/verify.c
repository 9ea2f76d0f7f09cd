/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "nvidia" verifier, local mode: evidence {"device_evidence_list": [{"arch": "HOPPER",
 * "uuid": "...", "evidence": "<hex or base64 SPDM transcript>", "certificate": "<base64 of
 * the PEM chain>"}]} as trustee's NVIDIA attester sends it. Per device, in order: parse →
 * bind (SPDM request nonce = runtime data digest truncated to 32 bytes) → chain (to the pinned
 * NVIDIA Device Identity CA, FWID of the signing certificate = FWID in the report) →
 * signature (P-384 over request ‖ response) → claims. No NRAS, OCSP or RIM service is
 * contacted: revocation and RIM comparison are the policy's business through reference values.
 */
#include "tee/nvidia/nvidia.h"
#include "tee/tee_int.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "crypto/crypto.h"

/* SHA-256 of the DER of "NVIDIA Device Identity CA" (trustee pins the same certificate by its
 * SHA-1 fingerprint 72:BE:15:B8:...:54:E8). */
const char *const cl_nvidia_root_pins[] = {
    "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48",
};
const size_t cl_nvidia_root_npins = CL_ARRAY_LEN(cl_nvidia_root_pins);

#define FWID_OID "2.23.133.5.4.1"

#define CHERR(code, ...) cl_err_stage(err, (code), CL_TEE_STAGE_CHAIN, __VA_ARGS__)

int cl_nvidia_chain_verify(STACK_OF(X509) * chain, const char *const *pins, size_t npins,
                           int64_t at, uint8_t fwid[CL_NVIDIA_FWID_LEN], struct cl_err *err)
{
    CL_TEE_ERR(err);
    int n = chain ? sk_X509_num(chain) : 0;
    if (n < 2)
        return CHERR(
            CL_EVERIFY,
            "NVIDIA certificate chain must hold at least the signing certificate and the root CA");
    if (n > CL_NVIDIA_MAX_CERTS)
        return CHERR(CL_ELIMIT, "NVIDIA certificate chain of %d certificates (at most %d)", n,
                     CL_NVIDIA_MAX_CERTS);
    X509 *root = sk_X509_value(chain, n - 1);
    if (!cl_tee_x509_pinned(root, pins, npins))
        return CHERR(CL_EVERIFY,
                     "NVIDIA certificate chain does not end in NVIDIA's pinned Device Identity CA");
    X509 *certs[CL_NVIDIA_MAX_CERTS];
    for (int i = 0; i < n; i++)
        certs[i] = sk_X509_value(chain, i);
    struct cl_tee_cache_key key;
    cl_tee_cache_key_certs("nvidia-chain", certs, (size_t)n, NULL, 0, &key);
    if (!cl_tee_cache_hit(&key, at)) {
        int rc;
        if ((rc = cl_tee_x509_link(root, root, at, "NVIDIA root CA", err)) < 0)
            return (err->stage = CL_TEE_STAGE_CHAIN, rc);
        for (int i = n - 2; i >= 0; i--) {
            if (X509_check_ca(certs[i + 1]) == 0)
                return CHERR(CL_EVERIFY, "NVIDIA certificate chain: certificate %d is not a CA",
                             i + 1);
            if ((rc = cl_tee_x509_link(certs[i], certs[i + 1], at, "NVIDIA device certificate",
                                       err)) < 0) {
                err->stage = CL_TEE_STAGE_CHAIN;
                return cl_err_prefix(err, "NVIDIA certificate chain failed to verify");
            }
        }
        int64_t nb = 0, na = 0;
        cl_tee_certs_window(certs, (size_t)n, &nb, &na);
        cl_tee_cache_put(&key, nb, na);
    }
    /* the FWID is the last field of the DICE TcbInfo: its 48 bytes end the extension */
    const uint8_t *d = NULL;
    size_t dl = 0;
    struct cl_err e = {0};
    if (cl_tee_x509_ext(certs[0], FWID_OID, &d, &dl, &e) < 0)
        return CHERR(CL_EVERIFY, "NVIDIA signing certificate has no FWID extension (%s)", FWID_OID);
    if (dl < CL_NVIDIA_FWID_LEN)
        return CHERR(CL_EPARSE, "NVIDIA signing certificate FWID extension is %zu bytes", dl);
    memcpy(fwid, d + dl - CL_NVIDIA_FWID_LEN, CL_NVIDIA_FWID_LEN);
    return 0;
}

static const char *arch_name(const char *a)
{
    if (strcmp(a, "HOPPER") == 0 || strcmp(a, "Hopper") == 0)
        return "Hopper";
    return NULL;
}

int cl_nvidia_verify_device(const uint8_t *report, size_t report_len, const uint8_t *chain_pem,
                            size_t chain_len, const char *arch, const char *uuid, const uint8_t *rd,
                            size_t rd_len, const char *const *pins, size_t npins, int64_t at,
                            json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    const char *an = arch_name(arch);
    if (!an)
        return cl_err_stage(err, CL_EUNSUPPORTED, CL_TEE_STAGE_PARSE,
                            "NVIDIA arch '%.16s': local verification reads Hopper reports only",
                            arch);
    /* ---- parse ---- */
    struct cl_nvidia_report r;
    int rc;
    if ((rc = cl_nvidia_report_parse(report, report_len, &r, err)) < 0)
        return rc;
    if (chain_len > CL_NVIDIA_MAX_CHAIN)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE,
                            "NVIDIA certificate chain of %zu bytes (at most %d)", chain_len,
                            CL_NVIDIA_MAX_CHAIN);
    CL_AUTO(cl_tee_x509s) *chain = cl_tee_x509_parse_any(chain_pem, chain_len, err);
    if (!chain) {
        err->stage = CL_TEE_STAGE_PARSE;
        return cl_err_prefix(err, "NVIDIA certificate chain");
    }
    /* ---- bind ---- */
    if (rd && !cl_tee_field_matches(r.nonce, CL_NVIDIA_NONCE_LEN, rd, rd_len))
        return cl_err_stage(
            err, CL_EVERIFY, CL_TEE_STAGE_BIND,
            "NVIDIA SPDM nonce does not match the runtime data digest (first 32 bytes)");
    /* ---- chain, FWID ---- */
    uint8_t fwid[CL_NVIDIA_FWID_LEN];
    if ((rc = cl_nvidia_chain_verify(chain, pins, npins, at, fwid, err)) < 0)
        return rc;
    const uint8_t *rf = r.od[CL_NVIDIA_OD_FWID];
    if (!rf || r.od_len[CL_NVIDIA_OD_FWID] != CL_NVIDIA_FWID_LEN ||
        !cl_memeq_ct(rf, fwid, CL_NVIDIA_FWID_LEN))
        return CHERR(CL_EVERIFY, "NVIDIA report FWID is not the signing certificate's");
    /* ---- signature ---- */
    EVP_PKEY *pk = X509_get0_pubkey(sk_X509_value(chain, 0));
    struct cl_err e = {0};
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC || EVP_PKEY_get_bits(pk) != 384)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "NVIDIA signing key is not P-384");
    if (cl_sig_verify(pk, "ES384", r.signed_data, r.signed_len, r.signature, CL_NVIDIA_SIG_LEN,
                      &e) < 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "NVIDIA report signature does not verify");
    /* ---- claims ---- */
    json_t *c = cl_nvidia_claims(&r, an, uuid, err);
    if (!c)
        return err->code;
    *claims = c;
    return 0;
}

static bool all_hex(const char *s, size_t n)
{
    if (n == 0 || n % 2)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* The report: hex (as the attester captures it) or base64. New. */
static cl_bytes *report_bytes(const char *s, size_t n, size_t *outlen, struct cl_err *err)
{
    if (all_hex(s, n)) {
        if (n / 2 > CL_NVIDIA_MAX_REPORT) {
            cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE, "NVIDIA report larger than %d bytes",
                         CL_NVIDIA_MAX_REPORT);
            return NULL;
        }
        cl_bytes *b = malloc(n / 2 + 1);
        if (!b) {
            cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
            return NULL;
        }
        if (cl_hex_decode(s, n, b, n / 2, outlen, err) < 0) {
            free(b);
            return NULL;
        }
        return b;
    }
    return cl_b64_decode(s, n, CL_B64_ANY, CL_NVIDIA_MAX_REPORT, outlen, err);
}

/* Verifies every device of the evidence; claims[i] (new) for device i. */
static int verify_list(const struct cl_tee_verify_in *in, json_t *out, struct cl_err *err)
{
    json_t *list = json_object_get(in->evidence, "device_evidence_list");
    if (!json_is_object(in->evidence) || !json_is_array(list) || json_array_size(list) == 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "NVIDIA evidence: want {\"device_evidence_list\": [{arch, uuid, "
                            "evidence, certificate}]}");
    if (json_array_size(list) > CL_NVIDIA_MAX_DEVICES)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE,
                            "NVIDIA evidence of %zu devices (at most %d)", json_array_size(list),
                            CL_NVIDIA_MAX_DEVICES);
    int64_t at = cl_tee_time(in->cfg);
    size_t i;
    json_t *dev;
    json_array_foreach(list, i, dev)
    {
        const char *arch = json_string_value(json_object_get(dev, "arch"));
        const char *ev = json_string_value(json_object_get(dev, "evidence"));
        const char *cert = json_string_value(json_object_get(dev, "certificate"));
        json_t *uv = json_object_get(dev, "uuid");
        if (!arch || !ev || !cert || (uv && !json_is_null(uv) && !json_is_string(uv)))
            return cl_err_stage(
                err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                "NVIDIA evidence device %zu: arch, evidence and certificate must be strings", i);
        size_t rn = 0, cn = 0;
        CL_AUTO(cl_bytes) *rep = report_bytes(ev, strlen(ev), &rn, err);
        if (!rep) {
            err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_prefix(err, "NVIDIA evidence device %zu 'evidence'", i);
        }
        CL_AUTO(cl_bytes) *pem = NULL;
        if (strncmp(cert, "-----BEGIN", 10) == 0) {
            cn = strlen(cert);
            pem = malloc(cn + 1);
            if (!pem)
                return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
            memcpy(pem, cert, cn + 1);
        } else if (!(pem = cl_b64_decode(cert, strlen(cert), CL_B64_ANY, CL_NVIDIA_MAX_CHAIN, &cn,
                                         err))) {
            err->stage = CL_TEE_STAGE_PARSE;
            return cl_err_prefix(err, "NVIDIA evidence device %zu 'certificate'", i);
        }
        json_t *c = NULL;
        int rc = cl_nvidia_verify_device(rep, rn, pem, cn, arch, json_string_value(uv),
                                         in->report_data, in->report_data_len, cl_nvidia_root_pins,
                                         cl_nvidia_root_npins, at, &c, err);
        if (rc < 0)
            return cl_err_prefix(err, "NVIDIA device %zu", i);
        if (json_array_append_new(out, c) < 0)
            return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    }
    return 0;
}

int cl_tee_nvidia_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    CL_AUTO(json_t) *all = json_array();
    if (!all)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    int rc = verify_list(in, all, err);
    if (rc < 0)
        return rc;
    /* one claim set per device: the AS appraises each as its own gpu<n> submod */
    *claims = json_array_size(all) == 1 ? json_incref(json_array_get(all, 0)) : json_incref(all);
    return 0;
}
