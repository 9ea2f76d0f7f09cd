/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealed secrets: "sealed." + a compact JWS (ES256 only) whose payload is a vault reference
 * or an envelope. Order matters: the signature is verified with the key named by kid before
 * the payload is acted on; the payload's fields are all checked before anything is fetched
 * or decrypted. Envelope DEKs come from a key provider; this build has the "kbs" provider
 * (the DEK wrapped with A256GCM under a KEK held by the KBS at key_id), and refuses the
 * cloud KMS providers (aliyun, aws, ehsm) with a clear message.
 */
#include "cdh/cdh_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PREFIX "sealed."
#define MAX_KEY_FILE 65536

void cl_cdh_sealed_clear(struct cl_cdh_sealed *s)
{
    json_decref(s->header);
    json_decref(s->payload);
    free(s->kid);
    cl_jws_clear(&s->jws);
    memset(s, 0, sizeof *s);
}

static int need_str(const json_t *o, const char *k, struct cl_err *err)
{
    const char *v = NULL;
    int rc = cl_json_get_str(o, k, &v, err);
    return rc < 0 && err ? cl_err_prefix(err, "sealed secret payload") : rc;
}

static int need_obj(const json_t *o, const char *k, bool optional, struct cl_err *err)
{
    json_t *v = json_object_get(o, k);
    if (!v && optional)
        return 0;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EPARSE, "sealed secret payload: '%s' must be an object", k);
    return 0;
}

static int payload_check(const json_t *p, struct cl_err *err)
{
    if (!json_is_object(p))
        return cl_err_set(err, CL_EPARSE, "sealed secret payload is not a JSON object");
    const char *version = NULL, *type = NULL;
    int grc;
    if ((grc = cl_json_get_str(p, "version", &version, err)) < 0 ||
        (grc = cl_json_get_str(p, "type", &type, err)) < 0)
        return err ? cl_err_prefix(err, "sealed secret payload") : grc;
    if (strcmp(version, "0.1.0") != 0)
        return cl_err_set(err, CL_EPARSE, "sealed secret payload: version '%.16s' is not 0.1.0",
                          version);
    if (strcmp(type, "vault") == 0) {
        int rc;
        if ((rc = need_str(p, "name", err)) < 0 || (rc = need_str(p, "provider", err)) < 0 ||
            (rc = need_obj(p, "provider_settings", false, err)) < 0 ||
            (rc = need_obj(p, "annotations", true, err)) < 0)
            return rc;
        return 0;
    }
    if (strcmp(type, "envelope") == 0) {
        static const char *const req[] = {"key_id", "encrypted_key", "encrypted_data", "wrap_type",
                                          "iv",     "provider"};
        int rc;
        for (size_t i = 0; i < CL_ARRAY_LEN(req); i++)
            if ((rc = need_str(p, req[i], err)) < 0)
                return rc;
        if ((rc = need_obj(p, "provider_settings", false, err)) < 0 ||
            (rc = need_obj(p, "annotations", true, err)) < 0)
            return rc;
        const char *wt = json_string_value(json_object_get(p, "wrap_type"));
        if (strcmp(wt, "A256GCM") != 0 && strcmp(wt, "A256CTR") != 0)
            return cl_err_set(err, CL_EPARSE,
                              "sealed secret payload: wrap_type '%.16s' is not A256GCM or A256CTR",
                              wt);
        return 0;
    }
    return cl_err_set(err, CL_EPARSE,
                      "sealed secret payload: type '%.16s' is not vault or envelope", type);
}

static int parse_legacy(const char *body, size_t len, struct cl_cdh_sealed *s, struct cl_err *err)
{
    /* sealed.<anything>.<b64url payload>.<anything>: exactly four dot-separated parts */
    const char *d1 = memchr(body, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - body)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - body)))
        return cl_err_set(err, CL_EPARSE,
                          "legacy sealed secret: four dot-separated parts expected");
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw =
        cl_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), CL_B64_URL_ANYPAD, CL_CDH_MAX_SEALED, &n, err);
    if (!raw)
        return cl_err_prefix(err, "legacy sealed secret payload");
    s->payload = cl_json_parse((const char *)raw, n, 8, err);
    if (!s->payload)
        return cl_err_prefix(err, "legacy sealed secret payload");
    s->header = json_object();
    s->kid = strdup("");
    return s->header && s->kid ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

int cl_cdh_sealed_parse(const char *text, size_t len, bool legacy_unsigned,
                        struct cl_cdh_sealed *out, struct cl_err *err)
{
    struct cl_cdh_sealed s;
    memset(&s, 0, sizeof s);
    if (len > CL_CDH_MAX_SEALED)
        return cl_err_set(err, CL_ELIMIT, "sealed secret of %zu bytes exceeds %d", len,
                          CL_CDH_MAX_SEALED);
    if (len < strlen(PREFIX) || memcmp(text, PREFIX, strlen(PREFIX)) != 0)
        return cl_err_set(err, CL_EPARSE, "not a sealed secret (no 'sealed.' prefix)");
    const char *body = text + strlen(PREFIX);
    size_t blen = len - strlen(PREFIX);
    int rc;
    if (legacy_unsigned) {
        rc = parse_legacy(body, blen, &s, err);
    } else {
        rc = cl_jws_parse(body, blen, &s.jws, err);
        if (rc < 0) {
            rc = cl_err_prefix(err, "sealed secret");
        } else if (strcmp(s.jws.alg, "ES256") != 0) {
            rc = cl_err_set(err, CL_EPARSE, "sealed secret: alg '%.16s' is not ES256", s.jws.alg);
        } else {
            const char *kid = NULL;
            if (cl_json_get_str(s.jws.header, "kid", &kid, err) < 0 || !*kid)
                rc = kid ? cl_err_set(err, CL_EPARSE, "sealed secret: empty kid")
                         : cl_err_prefix(err, "sealed secret header");
            else if (!(s.kid = strdup(kid)))
                rc = cl_err_set(err, CL_ENOMEM, "out of memory");
            s.header = json_incref(s.jws.header);
            if (rc == 0) {
                s.payload = cl_json_parse((const char *)s.jws.payload, s.jws.payload_len, 8, err);
                if (!s.payload)
                    rc = cl_err_prefix(err, "sealed secret payload");
            }
        }
    }
    if (rc == 0)
        rc = payload_check(s.payload, err);
    if (rc < 0) {
        cl_cdh_sealed_clear(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int cl_cdh_sealed_verify(const struct cl_cdh_sealed *s, cl_pkey *key, struct cl_err *err)
{
    if (!s->jws.signing_input)
        return cl_err_set(err, CL_EVERIFY, "sealed secret carries no signature");
    char curve[32] = "";
    size_t cl = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof curve, &cl) != 1 ||
        strcmp(curve, "prime256v1") != 0)
        return cl_err_set(err, CL_EVERIFY,
                          "sealed secret: the verification key for kid '%.64s' is not a P-256 key",
                          s->kid);
    if (cl_jws_verify(&s->jws, key, err) < 0)
        return cl_err_stage(err, CL_EVERIFY, "signature",
                            "sealed secret: the signature does not verify with kid '%.64s'",
                            s->kid);
    return 0;
}

/* ---- the key named by kid ---- */

static cl_pkey *key_from_jwk_text(const uint8_t *text, size_t len, const char *kid,
                                  struct cl_err *err)
{
    CL_AUTO(json_t) *jwk = cl_json_parse((const char *)text, len, 8, err);
    if (!jwk || !json_is_object(jwk)) {
        cl_err_set(err, CL_EPARSE, "verification key '%.64s' is not a JWK", kid);
        return NULL;
    }
    json_object_del(jwk, "d"); /* only the public part is used */
    cl_pkey *k = cl_jwk_to_pkey(jwk, err);
    if (!k)
        cl_err_prefix(err, "verification key '%.64s'", kid);
    return k;
}

/* A local key: kid is a relative path inside the key folder, no "." or ".." parts, opened
 * without following symlinks out of it. */
static cl_pkey *local_key(const char *dir, const char *kid, struct cl_err *err)
{
    if (kid[0] == '/' || strstr(kid, "..") || strlen(kid) > 255) {
        cl_err_set(err, CL_EVERIFY, "sealed secret: kid '%.64s' must be a plain name inside %s",
                   kid, dir);
        return NULL;
    }
    for (const char *c = kid; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.')) {
            cl_err_set(err, CL_EVERIFY,
                       "sealed secret: kid '%.64s' has characters not allowed in a key name", kid);
            return NULL;
        }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = dfd < 0 ? -1 : openat(dfd, kid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd >= 0)
        close(dfd);
    if (fd < 0) {
        cl_err_set(err, CL_ENOTFOUND, "sealed secret: no verification key '%.64s' in %s", kid, dir);
        return NULL;
    }
    uint8_t buf[MAX_KEY_FILE];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0 || n == (ssize_t)sizeof buf) {
        cl_err_set(err, CL_EIO, "sealed secret: cannot read key '%.64s'", kid);
        return NULL;
    }
    return key_from_jwk_text(buf, (size_t)n, kid, err);
}

static cl_pkey *verification_key(struct cl_cdh *cdh, const char *dir, const char *kid,
                                 struct cl_err *err)
{
    if (!cl_cdh_is_uri(kid))
        return local_key(dir, kid, err);
    CL_AUTO(cl_secret) *jwk = NULL;
    if (cl_cdh_get_resource(cdh, kid, &jwk, err) < 0) {
        cl_err_prefix(err, "sealed secret: verification key %.64s", kid);
        return NULL;
    }
    return key_from_jwk_text(jwk->data, jwk->len, kid, err);
}

/* ---- envelope ---- */

static int b64_field(const json_t *p, const char *k, size_t max, cl_bytes **out, size_t *n,
                     struct cl_err *err)
{
    const char *v = json_string_value(json_object_get(p, k));
    *out = cl_b64_decode(v, strlen(v), CL_B64_ANY, max, n, err);
    return *out ? 0 : cl_err_prefix(err, "sealed secret '%s'", k);
}

static int envelope_open(struct cl_cdh *cdh, const json_t *p, struct cl_secret **out,
                         struct cl_err *err)
{
    const char *provider = json_string_value(json_object_get(p, "provider"));
    if (strcasecmp(provider, "kbs") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "sealed secret: envelope provider '%.32s' is not in this build (only "
                          "kbs; aliyun, aws and "
                          "ehsm need their KMS clients)",
                          provider);
    const char *key_id = json_string_value(json_object_get(p, "key_id"));
    CL_AUTO(cl_secret) *kek = NULL;
    if (cl_cdh_get_resource(cdh, key_id, &kek, err) < 0)
        return cl_err_prefix(err, "sealed secret: envelope KEK");
    if (kek->len != 32)
        return cl_err_set(err, CL_EPARSE, "sealed secret: KEK %.64s is %zu bytes, not 32", key_id,
                          kek->len);
    CL_AUTO(cl_bytes) *ek = NULL, *data = NULL, *iv = NULL;
    size_t ekn = 0, dn = 0, ivn = 0;
    if (b64_field(p, "encrypted_key", 256, &ek, &ekn, err) < 0 ||
        b64_field(p, "encrypted_data", CL_CDH_MAX_SEALED, &data, &dn, err) < 0 ||
        b64_field(p, "iv", 16, &iv, &ivn, err) < 0)
        return err->code;
    /* encrypted_key = nonce(12) || AES-256-GCM(KEK, DEK) || tag(16) */
    if (ekn < 12 + 16)
        return cl_err_set(err, CL_EPARSE, "sealed secret: encrypted_key of %zu bytes is too short",
                          ekn);
    CL_AUTO(cl_secret) *dek = NULL;
    if (cl_cdh_decrypt("A256GCM", kek, ek, 12, ek + 12, ekn - 12, &dek, err) < 0)
        return cl_err_prefix(err, "sealed secret: unwrapping the DEK");
    if (dek->len != 32)
        return cl_err_set(err, CL_EPARSE, "sealed secret: DEK of %zu bytes, not 32", dek->len);
    return cl_cdh_decrypt(json_string_value(json_object_get(p, "wrap_type")), dek, iv, ivn, data,
                          dn, out, err);
}

int cl_cdh_unseal(struct cl_cdh *cdh, const char *text, size_t len, struct cl_secret **out,
                  struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    const struct cl_cdh_config *cfg = cl_cdh_config_of(cdh);
    bool skip = cfg->skip_verification_insecure;
    struct cl_cdh_sealed s;
    int rc = cl_cdh_sealed_parse(text, len, false, &s, err);
    if (rc < 0 && skip) {
        struct cl_err e2 = {0};
        rc = cl_cdh_sealed_parse(text, len, true, &s, &e2);
        if (rc < 0)
            return cl_err_set(err, e2.code, "%s", e2.msg);
    }
    if (rc < 0)
        return rc;
    if (skip) {
        cl_insecure("skip_sealed_secret_verification_insecure",
                    "unsealing a secret without checking its signature");
    } else {
        CL_AUTO(cl_pkey) *key = verification_key(
            cdh, cfg->sealed_key_dir ? cfg->sealed_key_dir : CL_CDH_SEALED_KEY_DIR, s.kid, err);
        if (!key) {
            cl_cdh_sealed_clear(&s);
            return err->code == CL_ENOTFOUND
                       ? cl_err_stage(err, CL_EVERIFY, "signature", "%s", err->msg)
                       : err->code;
        }
        rc = cl_cdh_sealed_verify(&s, key, err);
        if (rc < 0) {
            cl_cdh_sealed_clear(&s);
            return rc;
        }
    }
    const char *type = json_string_value(json_object_get(s.payload, "type"));
    if (strcmp(type, "vault") == 0) {
        const char *provider = json_string_value(json_object_get(s.payload, "provider"));
        const char *name = json_string_value(json_object_get(s.payload, "name"));
        if (strcasecmp(provider, "kbs") != 0)
            rc = cl_err_set(err, CL_EUNSUPPORTED,
                            "sealed secret: vault provider '%.32s' is not in this build (only kbs)",
                            provider);
        else
            rc = cl_cdh_get_resource(cdh, name, out, err);
    } else {
        rc = envelope_open(cdh, s.payload, out, err);
    }
    cl_cdh_sealed_clear(&s);
    return rc;
}

/* ---- host side ---- */

cl_str *cl_cdh_seal(const json_t *payload, cl_pkey *key, const char *kid, struct cl_err *err)
{
    if (payload_check(payload, err) < 0)
        return NULL;
    CL_AUTO(cl_str) *text = cl_json_compact(payload);
    CL_AUTO(json_t) *hdr = json_pack("{s:s}", "kid", kid);
    if (!text || !hdr) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    CL_AUTO(cl_str) *jws = cl_jws_sign(key, "ES256", hdr, text, strlen(text), err);
    if (!jws)
        return NULL;
    cl_str *out = cl_strdupf(PREFIX "%s", jws);
    if (!out)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return out;
}
