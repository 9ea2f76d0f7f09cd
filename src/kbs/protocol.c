/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KBS protocol 0.4.0 messages from the wire: the Request of /auth and the Attestation of
 * /attest, parsed and checked completely before any state changes. Parse errors are EPARSE
 * (trustee's SerdeError); well-formed but refused content is EUNSUPPORTED or EVERIFY
 * (AttestationError). Each error names the field.
 */
#include "kbs/kbs_internal.h"
#include "tee/tee.h"

#include <string.h>

/* Semver check as trustee's: "=0.4.0"; build metadata ignored, pre-release refused. */
static bool version_ok(const char *v)
{
    size_t n = strcspn(v, "+");
    return n == strlen(CL_KBS_PROTOCOL_VERSION) && strncmp(v, CL_KBS_PROTOCOL_VERSION, n) == 0 &&
           (v[n] == '\0' || v[n + 1] != '\0');
}

int cl_kbs_request_parse(const uint8_t *body, size_t len, struct cl_kbs_request *out,
                         struct cl_err *err)
{
    memset(out, 0, sizeof *out);
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)body, len, KBS_MAX_JSON_DEPTH, err);
    if (!doc)
        return cl_err_prefix(err, "auth request body");
    if (!json_is_object(doc))
        return cl_err_set(err, CL_EPARSE, "auth request body must be a JSON object");
    const char *version = NULL, *tee = NULL;
    if (cl_json_get_str(doc, "version", &version, err) < 0 ||
        cl_json_get_str(doc, "tee", &tee, err) < 0)
        return cl_err_prefix(err, "auth request");
    if (!version_ok(version))
        return cl_err_set(
            err, CL_EUNSUPPORTED,
            "KBS Client Protocol Version Mismatch: expect =%s while the request is %.32s",
            CL_KBS_PROTOCOL_VERSION, version);
    if (!cl_tee_id_known(tee))
        return cl_err_set(err, CL_EPARSE, "auth request: unknown TEE '%.32s'", tee);
    if (strlen(tee) >= sizeof out->tee)
        return cl_err_set(err, CL_EPARSE, "auth request: TEE id too long");
    memcpy(out->tee, tee, strlen(tee) + 1);
    return 0;
}

/* Checks that the TEE public key is one the KBS can seal resources to. */
static int teekey_check(const json_t *jwk, struct cl_err *err)
{
    const char *kty = NULL, *alg = NULL;
    if (cl_json_get_str(jwk, "kty", &kty, err) < 0 || cl_json_get_str(jwk, "alg", &alg, err) < 0)
        return cl_err_prefix(err, "tee-pubkey");
    bool ok = (strcmp(kty, "EC") == 0 && strcmp(alg, "ECDH-ES+A256KW") == 0) ||
              (strcmp(kty, "RSA") == 0 &&
               (strcmp(alg, "RSA-OAEP-256") == 0 || strcmp(alg, "RSA1_5") == 0));
    if (!ok)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "tee-pubkey: kty '%.16s' with alg '%.32s' is not supported", kty, alg);
    if (strcmp(kty, "EC") == 0) {
        const char *crv = NULL;
        if (cl_json_get_str(jwk, "crv", &crv, err) < 0)
            return cl_err_prefix(err, "tee-pubkey");
        if (strcmp(crv, "P-256") != 0 && strcmp(crv, "P-521") != 0)
            return cl_err_set(err, CL_EUNSUPPORTED,
                              "tee-pubkey: curve '%.16s' is not supported (P-256, P-521)", crv);
    }
    CL_AUTO(cl_pkey) *k = cl_jwk_to_pkey(jwk, err);
    return k ? 0 : cl_err_prefix(err, "tee-pubkey");
}

void cl_kbs_attestation_clear(struct cl_kbs_attestation *a)
{
    json_decref(a->doc);
    json_decref(a->devices);
    json_decref(a->rd_primary);
    json_decref(a->rd_device);
    memset(a, 0, sizeof *a);
}

static int attestation_parse(const uint8_t *body, size_t len, struct cl_kbs_attestation *a,
                             struct cl_err *err)
{
    a->doc = cl_json_parse((const char *)body, len, KBS_MAX_JSON_DEPTH, err);
    if (!a->doc)
        return cl_err_prefix(err, "attestation body");
    json_t *rt = NULL, *te = NULL;
    if (!json_is_object(a->doc))
        return cl_err_set(err, CL_EPARSE, "attestation body must be a JSON object");
    if (cl_json_get_obj(a->doc, "runtime-data", &rt, err) < 0 ||
        cl_json_get_obj(a->doc, "tee-evidence", &te, err) < 0 ||
        cl_json_get_str(rt, "nonce", &a->nonce, err) < 0 ||
        cl_json_get_obj(rt, "tee-pubkey", &a->jwk, err) < 0)
        return cl_err_prefix(err, "attestation");
    a->primary = json_object_get(te, "primary_evidence");
    if (!a->primary)
        return cl_err_set(err, CL_EPARSE,
                          "attestation: 'tee-evidence.primary_evidence' is missing");
    json_t *addl = json_object_get(te, "additional_evidence");
    if (addl && !json_is_string(addl))
        return cl_err_set(err, CL_EPARSE,
                          "attestation: 'tee-evidence.additional_evidence' must be a string");
    a->additional = addl ? json_string_value(addl) : "";
    json_t *init = json_object_get(a->doc, "init-data");
    if (init && !json_is_null(init)) {
        const char *format = NULL;
        if (cl_json_get_str(init, "format", &format, err) < 0 ||
            cl_json_get_str(init, "body", &a->init_text, err) < 0)
            return cl_err_prefix(err, "attestation: init-data");
        if (strcmp(format, "toml") != 0)
            return cl_err_set(err, CL_EUNSUPPORTED, "Unsupported initdata format '%.16s'", format);
        a->init_len = json_string_length(json_object_get(init, "body"));
    }
    if (*a->additional) {
        a->devices = cl_json_parse(a->additional, strlen(a->additional), KBS_MAX_JSON_DEPTH, err);
        if (!a->devices)
            return cl_err_prefix(err, "attestation: additional_evidence");
        if (!json_is_object(a->devices))
            return cl_err_set(err, CL_EPARSE,
                              "attestation: additional_evidence must hold a JSON object");
        if (json_object_size(a->devices) >= CL_AS_MAX_ITEMS)
            return cl_err_set(err, CL_ELIMIT, "attestation: more than %d device evidence items",
                              CL_AS_MAX_ITEMS - 1);
    }
    /* Runtime data the evidence must bind: the primary's covers the additional evidence text. */
    a->rd_primary = json_pack("{s:O, s:s, s:s}", "tee-pubkey", a->jwk, "nonce", a->nonce,
                              "additional-evidence", a->additional);
    a->rd_device = json_pack("{s:O, s:s}", "tee-pubkey", a->jwk, "nonce", a->nonce);
    if (!a->rd_primary || !a->rd_device)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return teekey_check(a->jwk, err);
}

int cl_kbs_attestation_parse(const uint8_t *body, size_t len, struct cl_kbs_attestation *out,
                             struct cl_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = attestation_parse(body, len, out, err);
    if (rc < 0)
        cl_kbs_attestation_clear(out);
    return rc;
}

size_t cl_kbs_attestation_items(const struct cl_kbs_attestation *a, const char *tee,
                                struct cl_as_item *items)
{
    size_t n = 0;
    items[n++] =
        (struct cl_as_item){tee,           a->primary,
                            a->rd_primary, strcmp(tee, "se") == 0 ? CL_HASH_SHA512 : CL_HASH_SHA384,
                            a->init_text,  a->init_len};
    if (a->devices) {
        const char *dtee;
        json_t *dev;
        json_object_foreach(a->devices, dtee, dev)
        {
            items[n++] = (struct cl_as_item){dtee, dev, a->rd_device, CL_HASH_SHA384, NULL, 0};
        }
    }
    return n;
}
