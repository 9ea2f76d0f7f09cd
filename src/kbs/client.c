/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of the RCAR handshake, as guest-components' kbs_protocol client speaks it:
 * auth → challenge; runtime data {nonce, tee-pubkey} hashed (JCS, SHA-384) into the evidence
 * report data; attest → EAR token; resource GET with the session cookie → JWE opened with
 * the TEE private key. Uses the sample attester (no hardware here).
 */
#include "kbs/kbs.h"
#include "net/http.h"
#include "tee/tee.h"

#include <stdio.h>
#include <string.h>

struct rcar {
    const struct cl_kbs_client_opts *o;
    struct cl_http_client *http;
    cl_pkey *key;
    json_t *jwk;
};

static void say(const struct cl_kbs_client_opts *o, const char *fmt, ...) CL_PRINTF(2, 3);
static void say(const struct cl_kbs_client_opts *o, const char *fmt, ...)
{
    if (!o->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* How a refusal maps to an error code: trustee answers most refusals 401 (PolicyDeny 403,
 * bad paths 404), so the ErrorInformation variant and detail decide. First match wins;
 * NULL matches anything. */
static const struct {
    const char *variant, *detail_has;
    long status; /* 0: any */
    int code;
} reply_codes[] = {
    {NULL, NULL, 404, CL_ENOTFOUND},
    {"PluginInternalError", ": not found", 0, CL_ENOTFOUND},
    {"TokenVerifierError", "expired", 0, CL_EEXPIRED},
    {"AdminAuthAccess", "token expired", 0, CL_EEXPIRED},
    {"AttestationError", "session expired", 0, CL_EEXPIRED},
    {"TokenNotFound", "session expired", 0, CL_EEXPIRED},
    {"ParsePolicyError", NULL, 0, CL_EPARSE},
    {"PolicyEngineError", "parse_error", 0, CL_EPARSE},
    {NULL, NULL, 413, CL_ELIMIT},
    {NULL, NULL, 401, CL_EDENIED},
    {NULL, NULL, 403, CL_EDENIED},
};

int cl_kbs_client_reply_error(const char *step, long status, const void *body, size_t len,
                              struct cl_err *err)
{
    CL_AUTO(json_t) *info = cl_json_parse((const char *)body, len, 8, NULL);
    const char *detail = json_string_value(json_object_get(info, "detail"));
    const char *type = json_string_value(json_object_get(info, "type"));
    const char *variant = type && strrchr(type, '/') ? strrchr(type, '/') + 1 : "";
    int code = CL_EIO;
    for (size_t i = 0; i < CL_ARRAY_LEN(reply_codes); i++) {
        if ((reply_codes[i].status && reply_codes[i].status != status) ||
            (reply_codes[i].variant && strcmp(reply_codes[i].variant, variant) != 0) ||
            (reply_codes[i].detail_has && (!detail || !strstr(detail, reply_codes[i].detail_has))))
            continue;
        code = reply_codes[i].code;
        break;
    }
    return cl_err_stage(err, code, step, "%s: HTTP %ld %s: %s", step, status, variant,
                        detail ? detail : "(no detail)");
}

static int server_error(const char *step, const struct cl_http_result *r, struct cl_err *err)
{
    return cl_kbs_client_reply_error(step, r->status, r->body, r->body_len, err);
}

static int post_json(struct rcar *c, const char *step, const char *path, const json_t *body,
                     json_t **out, struct cl_err *err)
{
    CL_AUTO(cl_str) *url =
        cl_strdupf("%s%s", c->o->attest_url ? c->o->attest_url : c->o->url, path);
    CL_AUTO(cl_str) *text = cl_json_compact(body);
    if (!url || !text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct cl_http_result r = {0};
    int rc = cl_http_request(c->http, "POST", url, hdrs, text, strlen(text), &r, err);
    if (rc == 0 && r.status != 200)
        rc = server_error(step, &r, err);
    if (rc == 0) {
        *out = cl_json_parse((const char *)r.body, r.body_len, CL_JSON_MAX_DEPTH, err);
        if (!*out || !json_is_object(*out))
            rc = cl_err_stage(err, CL_EPARSE, step, "%s: reply is not a JSON object", step);
    }
    cl_http_result_clear(&r);
    return rc;
}

static int rcar_init(struct rcar *c, const struct cl_kbs_client_opts *o, struct cl_err *err)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    const char *kind = o->key_kind ? o->key_kind : "P-256";
    const char *alg = "ECDH-ES+A256KW", *gen = kind;
    if (strcmp(kind, "RSA") == 0 || strcmp(kind, "RSA-OAEP-256") == 0)
        gen = "RSA-2048", alg = "RSA-OAEP-256";
    else if (strcmp(kind, "RSA1_5") == 0)
        gen = "RSA-2048", alg = "RSA1_5";
    else if (strcmp(kind, "P-256") != 0 && strcmp(kind, "P-521") != 0)
        return cl_err_set(err, CL_EINVAL,
                          "TEE key kind '%s' is not one of P-256, P-521, RSA, RSA1_5", kind);
    c->key = cl_pkey_generate(gen, err);
    if (!c->key)
        return err->code;
    c->jwk = cl_jwk_from_pkey(c->key, false, alg, err);
    if (!c->jwk)
        return err->code;
    struct cl_http_client_opts ho = {
        .cookies = true, .ca_file = o->ca_file, .max_response = 64u * 1024 * 1024};
    c->http = cl_http_client_new(&ho, err);
    return c->http ? 0 : err->code;
}

static void rcar_clear(struct rcar *c)
{
    cl_http_client_free(c->http);
    EVP_PKEY_free(c->key);
    json_decref(c->jwk);
}

static int rcar_handshake(struct rcar *c, cl_str **token, struct cl_err *err)
{
    const char *tee = c->o->tee ? c->o->tee : "sample";
    CL_AUTO(json_t) *req =
        json_pack("{s:s, s:s, s:{s:[s,s,s]}}", "version", CL_KBS_PROTOCOL_VERSION, "tee", tee,
                  "extra-params", "supported-hash-algorithms", "sha256", "sha384", "sha512");
    CL_AUTO(json_t) *challenge = NULL;
    say(c->o, "[1/3] auth: asking %s for a challenge (protocol %s, TEE %s)",
        c->o->attest_url ? c->o->attest_url : c->o->url, CL_KBS_PROTOCOL_VERSION, tee);
    int rc = post_json(c, "auth", "/kbs/v0/auth", req, &challenge, err);
    if (rc < 0)
        return rc;
    const char *nonce = NULL;
    if (cl_json_get_str(challenge, "nonce", &nonce, err) < 0)
        return cl_err_prefix(err, "challenge");
    say(c->o, "      challenge nonce %s", nonce);
    /* report data = SHA-384(JCS({additional-evidence, nonce, tee-pubkey})) */
    CL_AUTO(json_t) *rd = json_pack("{s:s, s:s, s:O}", "additional-evidence", "", "nonce", nonce,
                                    "tee-pubkey", c->jwk);
    uint8_t digest[CL_HASH_MAX];
    size_t dlen = 0;
    if (!rd || cl_as_runtime_digest(rd, CL_HASH_SHA384, digest, &dlen, err) < 0)
        return err->code;
    CL_AUTO(json_t) *evidence = cl_tee_sample_evidence(tee, digest, dlen, err);
    if (!evidence)
        return err->code;
    CL_AUTO(cl_str) *evtext = cl_json_compact(evidence);
    say(c->o, "[2/3] attest: evidence binds SHA-384 of the nonce and a fresh %s TEE key: %s",
        json_string_value(json_object_get(c->jwk, "alg")), evtext ? evtext : "");
    CL_AUTO(json_t) *att =
        json_pack("{s:{s:s, s:O}, s:{s:O, s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey",
                  c->jwk, "tee-evidence", "primary_evidence", evidence, "additional_evidence", "");
    if (att && c->o->init_data)
        json_object_set_new(att, "init-data",
                            json_pack("{s:s, s:s}", "format", "toml", "body", c->o->init_data));
    CL_AUTO(json_t) *tok = NULL;
    rc = post_json(c, "attest", "/kbs/v0/attest", att, &tok, err);
    if (rc < 0)
        return rc;
    const char *t = NULL;
    if (cl_json_get_str(tok, "token", &t, err) < 0)
        return cl_err_prefix(err, "attest reply");
    if (c->o->verbose) { /* like the guest client, read the payload without verifying it */
        struct cl_jws jws = {0};
        struct cl_err je = {0};
        const char *status = "?";
        CL_AUTO(json_t) *claims = NULL;
        if (cl_jws_parse(t, strlen(t), &jws, &je) == 0 &&
            (claims =
                 cl_json_parse((const char *)jws.payload, jws.payload_len, CL_JSON_MAX_DEPTH, &je)))
            status = json_string_value(cl_json_pointer(claims, "/submods/cpu0/ear.status"));
        say(c->o, "      attestation token received (%zu bytes, EAR / ES256): cpu0 appraisal '%s'",
            strlen(t), status ? status : "?");
        cl_jws_clear(&jws);
    }
    *token = strdup(t);
    return *token ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

int cl_kbs_client_attest(const struct cl_kbs_client_opts *opts, cl_str **token, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct rcar c;
    int rc = rcar_init(&c, opts, err);
    if (rc == 0)
        rc = rcar_handshake(&c, token, err);
    rcar_clear(&c);
    return rc;
}

int cl_kbs_client_get_resource(const struct cl_kbs_client_opts *opts, const char *path,
                               struct cl_secret **out, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!cl_kbs_resource_path_valid(path))
        return cl_err_set(err, CL_EINVAL, "resource path '%s' is not <repo>/<type>/<tag>", path);
    struct rcar c;
    CL_AUTO(cl_str) *token = NULL;
    CL_AUTO(cl_str) *url = cl_strdupf("%s/kbs/v0/resource/%s", opts->url, path);
    struct cl_http_result r = {0};
    int rc = rcar_init(&c, opts, err);
    if (rc == 0)
        rc = rcar_handshake(&c, &token, err);
    CL_AUTO(cl_str) *bearer =
        token && opts->attest_url ? cl_strdupf("Authorization: Bearer %s", token) : NULL;
    const char *hdrs[] = {bearer, NULL};
    if (rc == 0) {
        say(opts, "[3/3] resource: GET %s from %s with %s", path, opts->url,
            bearer ? "the token as Authorization: Bearer (passport)" : "the session cookie");
        /* passport: a fresh client, so no cookie of the attestation KBS reaches this one */
        struct cl_http_client_opts ho = {.ca_file = opts->ca_file,
                                         .max_response = 64u * 1024 * 1024};
        struct cl_http_client *rh = bearer ? cl_http_client_new(&ho, err) : c.http;
        rc = rh ? cl_http_request(rh, "GET", url, bearer ? hdrs : NULL, NULL, 0, &r, err)
                : err->code;
        if (rh && rh != c.http)
            cl_http_client_free(rh);
    }
    if (rc == 0 && r.status != 200)
        rc = server_error("resource", &r, err);
    if (rc == 0) {
        CL_AUTO(json_t) *jwe = cl_json_parse((const char *)r.body, r.body_len, 8, err);
        if (!jwe) {
            rc = cl_err_prefix(err, "resource reply");
        } else {
            *out = cl_jwe_decrypt(jwe, c.key, err);
            rc = *out ? 0 : cl_err_prefix(err, "opening the sealed resource");
            if (rc == 0)
                say(opts, "      JWE opened with the TEE private key: %zu bytes", (*out)->len);
        }
    }
    cl_http_result_clear(&r);
    rcar_clear(&c);
    return rc;
}
