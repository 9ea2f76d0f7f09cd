/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RCAR handshake as guest-components' kbs_protocol client runs it, with the evidence
 * coming from a callback (the agent's attester): auth → challenge (nonce, negotiated hash) →
 * report data = HASH(JCS({additional-evidence, nonce, tee-pubkey})) → attest → token. A fresh
 * TEE key per handshake; the caller keeps key and token together. Attempts are bounded
 * (CL_AA_RCAR_TRIES, 1 s apart) and a refusal by the KBS (401/403) is not retried.
 */
#include "aa/aa.h"
#include "net/http.h"

#include <openssl/pem.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int kbs_error(const char *step, const struct cl_http_result *r, struct cl_err *err)
{
    CL_AUTO(json_t) *info = cl_json_parse((const char *)r->body, r->body_len, 8, NULL);
    const char *detail = json_string_value(json_object_get(info, "detail"));
    int code = (r->status == 401 || r->status == 403) ? CL_EDENIED
               : r->status == 404                     ? CL_ENOTFOUND
                                                      : CL_EIO;
    return cl_err_stage(err, code, step, "KBS %s: HTTP %ld: %.200s", step, r->status,
                        detail ? detail : "(no detail)");
}

static int post(struct cl_http_client *h, const char *url, const char *step, const json_t *body,
                json_t **out, struct cl_err *err)
{
    CL_AUTO(cl_str) *text = cl_json_compact(body);
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct cl_http_result r = {0};
    int rc = cl_http_request(h, "POST", url, hdrs, text, strlen(text), &r, err);
    if (rc == 0 && r.status != 200)
        rc = kbs_error(step, &r, err);
    if (rc == 0) {
        *out = cl_json_parse((const char *)r.body, r.body_len, CL_JSON_MAX_DEPTH, err);
        if (!*out)
            rc = cl_err_prefix(err, "KBS %s reply", step);
        else if (!json_is_object(*out))
            rc = cl_err_set(err, CL_EPARSE, "KBS %s reply is not a JSON object", step);
    }
    cl_http_result_clear(&r);
    return rc;
}

static int key_for(const char *alg_cfg, cl_pkey **key, json_t **jwk, struct cl_err *err)
{
    const char *a = alg_cfg ? alg_cfg : "ECDH-ES+A256KW-P256";
    const char *gen, *alg;
    if (strcmp(a, "ECDH-ES+A256KW-P256") == 0)
        gen = "P-256", alg = "ECDH-ES+A256KW";
    else if (strcmp(a, "ECDH-ES+A256KW-P521") == 0)
        gen = "P-521", alg = "ECDH-ES+A256KW";
    else if (strcmp(a, "RSA-OAEP-256") == 0)
        gen = "RSA-2048", alg = "RSA-OAEP-256";
    else
        return cl_err_set(err, CL_EINVAL, "tee_key_algorithm '%.40s' is not supported", a);
    *key = cl_pkey_generate(gen, err);
    if (!*key)
        return err->code;
    *jwk = cl_jwk_from_pkey(*key, false, alg, err);
    return *jwk ? 0 : err->code;
}

static int handshake(const struct cl_aa_rcar_opts *o, struct cl_http_client *h, cl_str **token,
                     cl_pkey **keyout, struct cl_err *err)
{
    CL_AUTO(cl_pkey) *key = NULL;
    CL_AUTO(json_t) *jwk = NULL;
    if (key_for(o->tee_key_algorithm, &key, &jwk, err) < 0)
        return err->code;
    CL_AUTO(cl_str) *auth_url = cl_strdupf("%s/kbs/v0/auth", o->url);
    CL_AUTO(cl_str) *attest_url = cl_strdupf("%s/kbs/v0/attest", o->url);
    CL_AUTO(json_t) *req =
        json_pack("{s:s, s:s, s:{s:[s,s,s]}}", "version", "0.4.0", "tee", o->tee, "extra-params",
                  "supported-hash-algorithms", "sha256", "sha384", "sha512");
    if (!auth_url || !attest_url || !req)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    CL_AUTO(json_t) *challenge = NULL;
    if (post(h, auth_url, "auth", req, &challenge, err) < 0)
        return err->code;
    const char *nonce = NULL;
    if (cl_json_get_str(challenge, "nonce", &nonce, err) < 0)
        return cl_err_prefix(err, "KBS challenge");
    enum cl_hash hash = CL_HASH_SHA384;
    const char *sel = json_string_value(
        json_object_get(json_object_get(challenge, "extra-params"), "selected-hash-algorithm"));
    if (sel) {
        char lower[16];
        size_t i = 0;
        for (; sel[i] && i < sizeof lower - 1; i++)
            lower[i] = (char)(sel[i] >= 'A' && sel[i] <= 'Z' ? sel[i] + 32 : sel[i]);
        lower[i] = 0;
        if (cl_hash_from_name(lower, &hash, err) < 0)
            return cl_err_prefix(err, "KBS challenge: selected-hash-algorithm");
    }
    /* device evidence (a GPU) binds {nonce, tee-pubkey}; the primary's runtime data covers its
     * text */
    CL_AUTO(json_t) *rdd = json_pack("{s:s, s:O}", "nonce", nonce, "tee-pubkey", jwk);
    size_t dlen = 0;
    CL_AUTO(cl_str) *dcanon = rdd ? cl_json_canonical(rdd, &dlen, err) : NULL;
    uint8_t ddigest[CL_HASH_MAX];
    if (!dcanon || cl_digest(CL_HASH_SHA384, dcanon, dlen, ddigest, err) < 0)
        return err->code;
    CL_AUTO(cl_str) *additional =
        cl_aa_additional_evidence(ddigest, cl_hash_len(CL_HASH_SHA384), err);
    if (!additional)
        return cl_err_prefix(err, "additional evidence");
    CL_AUTO(json_t) *rd = json_pack("{s:s, s:s, s:O}", "additional-evidence", additional, "nonce",
                                    nonce, "tee-pubkey", jwk);
    size_t clen = 0;
    CL_AUTO(cl_str) *canon = rd ? cl_json_canonical(rd, &clen, err) : NULL;
    if (!canon)
        return err->code;
    uint8_t digest[CL_HASH_MAX];
    if (cl_digest(hash, canon, clen, digest, err) < 0)
        return err->code;
    CL_AUTO(json_t) *evidence = o->evidence(o->evidence_ctx, digest, cl_hash_len(hash), err);
    if (!evidence)
        return cl_err_prefix(err, "evidence");
    CL_AUTO(json_t) *att =
        json_pack("{s:{s:s, s:O}, s:{s:O, s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey", jwk,
                  "tee-evidence", "primary_evidence", evidence, "additional_evidence", additional);
    if (!att)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    json_object_set_new(att, "init-data",
                        o->init_data
                            ? json_pack("{s:s, s:s}", "format", "toml", "body", o->init_data)
                            : json_null());
    CL_AUTO(json_t) *tok = NULL;
    if (post(h, attest_url, "attest", att, &tok, err) < 0)
        return err->code;
    const char *t = NULL;
    if (cl_json_get_str(tok, "token", &t, err) < 0)
        return cl_err_prefix(err, "KBS attest reply");
    *token = strdup(t);
    if (!*token)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    *keyout = CL_STEAL(key);
    return 0;
}

int cl_aa_rcar(const struct cl_aa_rcar_opts *o, cl_str **token, cl_pkey **key, int64_t *exp,
               struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (!o->url || !o->tee || !o->evidence)
        return cl_err_set(err, CL_EINVAL, "RCAR: url, tee and an evidence source are required");
    CL_AUTO(cl_str) *ca_path = NULL;
    if (o->ca_pem) {
        /* libcurl reads trust anchors from a file: write the configured PEM to a private one. */
        char tmpl[] = "/tmp/cloister-aa-ca.XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0)
            return cl_err_set(err, CL_EIO,
                              "RCAR: cannot write the KBS certificate to a temporary file");
        close(fd);
        if (cl_file_write_atomic(tmpl, o->ca_pem, strlen(o->ca_pem), 0600, err) < 0) {
            unlink(tmpl);
            return err->code;
        }
        ca_path = strdup(tmpl);
    }
    struct cl_http_client_opts ho = {.cookies = true,
                                     .ca_file = ca_path,
                                     .timeout_ms = CL_AA_KBS_TIMEOUT_MS,
                                     .max_response = 1u << 20};
    unsigned tries = o->tries ? o->tries : CL_AA_RCAR_TRIES;
    unsigned delay = o->retry_delay_ms ? o->retry_delay_ms : 1000;
    int rc = CL_EIO;
    for (unsigned i = 0; i < tries; i++) {
        if (i) {
            cl_warn("RCAR attempt %u/%u failed: %s; retrying in %u ms", i, tries,
                    err ? err->msg : "", delay);
            struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        struct cl_http_client *h = cl_http_client_new(&ho, err);
        if (!h) {
            rc = err ? err->code : CL_ENOMEM;
            break;
        }
        cl_str *t = NULL;
        cl_pkey *k = NULL;
        rc = handshake(o, h, &t, &k, err);
        cl_http_client_free(h);
        if (rc == 0) {
            int64_t nbf = 0, e = 0;
            if (cl_aa_jwt_times(t, &e, &nbf, err) < 0) {
                free(t);
                EVP_PKEY_free(k);
                rc = cl_err_prefix(err, "KBS token");
                break;
            }
            *token = t;
            *key = k;
            *exp = e;
            break;
        }
        /* A refusal or a bad configuration will not change by asking again. */
        if (rc == CL_EDENIED || rc == CL_EINVAL || rc == CL_EUNSUPPORTED)
            break;
    }
    if (ca_path)
        unlink(ca_path);
    return rc;
}

cl_str *cl_aa_tee_key_pem(cl_pkey *key, struct cl_err *err)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return cl_pkey_to_pem(key, true, err);
    BIO *b = BIO_new(BIO_s_mem());
    cl_str *out = NULL;
    if (b && PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL) == 1) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        out = n > 0 ? strndup(p, (size_t)n) : NULL;
    }
    BIO_free(b);
    if (!out)
        cl_err_set(err, CL_ENOMEM, "cannot write the TEE key as PEM");
    return out;
}

int cl_aa_jwt_times(const char *jwt, int64_t *exp, int64_t *nbf, struct cl_err *err)
{
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2)
        return cl_err_set(err, CL_EPARSE, "not a JWT (three dot-separated parts expected)");
    size_t n = 0;
    CL_AUTO(cl_bytes) *claims =
        cl_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), CL_B64_URL_ANYPAD, 1u << 20, &n, err);
    if (!claims)
        return cl_err_prefix(err, "JWT claims");
    CL_AUTO(json_t) *c = cl_json_parse((const char *)claims, n, CL_JSON_MAX_DEPTH, err);
    if (!c || !json_is_object(c))
        return cl_err_set(err, CL_EPARSE, "JWT claims are not a JSON object");
    json_t *e = json_object_get(c, "exp"), *b = json_object_get(c, "nbf");
    *exp = json_is_integer(e) ? json_integer_value(e) : 0;
    *nbf = json_is_integer(b) ? json_integer_value(b) : 0;
    return 0;
}
