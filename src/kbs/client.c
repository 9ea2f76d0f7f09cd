/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of the RCAR handshake, as guest-components' kbs_protocol client speaks it:
 * auth → challenge (nonce, negotiated hash); device evidence bound to
 * SHA-384(JCS({nonce, tee-pubkey})); report data = HASH(JCS({additional-evidence, nonce,
 * tee-pubkey})) into the evidence callback; attest → EAR token; resource GET with the session
 * cookie (or the token as Bearer, passport mode) → JWE opened with the TEE private key.
 * A fresh TEE key per handshake; attempts bounded, a refusal by the KBS not retried.
 * The resource step is resource.c (an object of its own: the agent does not link it).
 */
#include "kbs/client_int.h"
#include "tee/tee.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cl_kbs_say(const struct cl_kbs_client_opts *o, const char *fmt, ...)
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
    return cl_err_stage(err, code, step, "%s: HTTP %ld %.64s: %.200s", step, status, variant,
                        detail ? detail : "(no detail)");
}

/* Maps a non-200 reply to an error carrying the server's ErrorInformation type and detail. */
int cl_kbs_server_error(const char *step, const struct cl_http_result *r, struct cl_err *err)
{
    return cl_kbs_client_reply_error(step, r->status, r->body, r->body_len, err);
}

static int post_json(struct cl_kbs_rcar *c, const char *step, const char *path, const json_t *body,
                     json_t **out, struct cl_err *err)
{
    CL_AUTO(cl_str) *url =
        cl_strdupf("%s%s", c->o->attest_url ? c->o->attest_url : c->o->url, path);
    CL_AUTO(cl_str) *text = body ? cl_json_compact(body) : NULL;
    if (!url || !text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct cl_http_result r = {0};
    int rc = cl_http_request(c->http, "POST", url, hdrs, text, strlen(text), &r, err);
    if (rc == 0 && r.status != 200)
        rc = cl_kbs_server_error(step, &r, err);
    if (rc == 0) {
        *out = cl_json_parse((const char *)r.body, r.body_len, CL_JSON_MAX_DEPTH, err);
        if (!*out || !json_is_object(*out))
            rc = cl_err_stage(err, CL_EPARSE, step, "KBS %s: reply is not a JSON object", step);
    }
    cl_http_result_clear(&r);
    return rc;
}

/* TEE key kinds: the CLI's names and aa.toml's tee_key_algorithm names. */
static const struct {
    const char *name, *gen, *alg;
} key_kinds[] = {
    {"P-256", "P-256", "ECDH-ES+A256KW"}, {"ECDH-ES+A256KW-P256", "P-256", "ECDH-ES+A256KW"},
    {"P-521", "P-521", "ECDH-ES+A256KW"}, {"ECDH-ES+A256KW-P521", "P-521", "ECDH-ES+A256KW"},
    {"RSA", "RSA-2048", "RSA-OAEP-256"},  {"RSA-OAEP-256", "RSA-2048", "RSA-OAEP-256"},
    {"RSA1_5", "RSA-2048", "RSA1_5"},
};

struct cl_http_client *cl_kbs_rcar_http(const struct cl_kbs_rcar *c, bool cookies,
                                        struct cl_err *err)
{
    const struct cl_kbs_client_opts *o = c->o;
    struct cl_http_client_opts ho = {.cookies = cookies,
                                     .ca_file = c->ca_file,
                                     .timeout_ms = o->timeout_ms,
                                     .max_response =
                                         o->max_response ? o->max_response : 64u * 1024 * 1024};
    return cl_http_client_new(&ho, err);
}

/* A fresh TEE key and HTTP client for one attempt (c->ca_path is kept). */
static int rcar_init(struct cl_kbs_rcar *c, const struct cl_kbs_client_opts *o, const char *ca_file,
                     struct cl_err *err)
{
    c->o = o;
    c->ca_file = ca_file;
    c->http = NULL;
    c->key = NULL;
    c->jwk = NULL;
    const char *kind = o->key_kind ? o->key_kind : "P-256";
    size_t i = 0;
    while (i < CL_ARRAY_LEN(key_kinds) && strcmp(key_kinds[i].name, kind) != 0)
        i++;
    if (i == CL_ARRAY_LEN(key_kinds))
        return cl_err_set(err, CL_EINVAL,
                          "TEE key kind '%.40s' is not one of P-256, P-521, RSA, RSA1_5 "
                          "(or ECDH-ES+A256KW-P256, ECDH-ES+A256KW-P521, RSA-OAEP-256)",
                          kind);
    c->key = cl_pkey_generate(key_kinds[i].gen, err);
    if (!c->key)
        return err->code;
    c->jwk = cl_jwk_from_pkey(c->key, false, key_kinds[i].alg, err);
    if (!c->jwk)
        return err->code;
    c->http = cl_kbs_rcar_http(c, true, err);
    return c->http ? 0 : err->code;
}

static void rcar_clear(struct cl_kbs_rcar *c)
{
    cl_http_client_free(c->http);
    EVP_PKEY_free(c->key);
    json_decref(c->jwk);
    c->http = NULL;
    c->key = NULL;
    c->jwk = NULL;
}

/* The hash the challenge selected (extra-params.selected-hash-algorithm), SHA-384 when none. */
static int selected_hash(const json_t *challenge, enum cl_hash *hash, struct cl_err *err)
{
    *hash = CL_HASH_SHA384;
    const char *sel = json_string_value(
        json_object_get(json_object_get(challenge, "extra-params"), "selected-hash-algorithm"));
    if (!sel)
        return 0;
    char lower[16];
    size_t i = 0;
    for (; sel[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)(sel[i] >= 'A' && sel[i] <= 'Z' ? sel[i] + 32 : sel[i]);
    lower[i] = 0;
    if (cl_hash_from_name(lower, hash, err) < 0)
        return cl_err_prefix(err, "KBS challenge: selected-hash-algorithm");
    return 0;
}

static int jcs_digest(const json_t *v, enum cl_hash h, uint8_t *out, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_str) *canon = v ? cl_json_canonical(v, &n, err) : NULL;
    if (!canon)
        return v ? err->code : cl_err_set(err, CL_ENOMEM, "out of memory");
    return cl_digest(h, canon, n, out, err);
}

/* The additional evidence (device evidence bound to {nonce, tee-pubkey}), "" when none. */
static cl_str *additional_evidence(struct cl_kbs_rcar *c, const char *nonce, struct cl_err *err)
{
    if (!c->o->additional)
        return strdup("");
    CL_AUTO(json_t) *rdd = json_pack("{s:s, s:O}", "nonce", nonce, "tee-pubkey", c->jwk);
    uint8_t d[CL_HASH_MAX];
    if (jcs_digest(rdd, CL_HASH_SHA384, d, err) < 0)
        return NULL;
    cl_str *a = c->o->additional(c->o->evidence_ctx, d, cl_hash_len(CL_HASH_SHA384), err);
    if (!a)
        cl_err_prefix(err, "additional evidence");
    return a;
}

/* The tee-evidence of the attest request: the callback's or the sample attester's. */
static json_t *primary_evidence(struct cl_kbs_rcar *c, const char *tee, const json_t *challenge,
                                const char *nonce, const char *additional, struct cl_err *err)
{
    enum cl_hash hash;
    if (selected_hash(challenge, &hash, err) < 0)
        return NULL;
    /* report data = HASH(JCS({additional-evidence, nonce, tee-pubkey})) */
    CL_AUTO(json_t) *rd = json_pack("{s:s, s:s, s:O}", "additional-evidence", additional, "nonce",
                                    nonce, "tee-pubkey", c->jwk);
    uint8_t digest[CL_HASH_MAX];
    if (jcs_digest(rd, hash, digest, err) < 0)
        return NULL;
    json_t *ev = c->o->evidence ? c->o->evidence(c->o->evidence_ctx, digest, cl_hash_len(hash), err)
                                : cl_tee_sample_evidence(tee, digest, cl_hash_len(hash), err);
    if (!ev)
        cl_err_prefix(err, "evidence");
    return ev;
}

static int rcar_handshake(struct cl_kbs_rcar *c, cl_str **token, struct cl_err *err)
{
    const char *tee = c->o->tee ? c->o->tee : "sample";
    CL_AUTO(json_t) *req =
        json_pack("{s:s, s:s, s:{s:[s,s,s]}}", "version", CL_KBS_PROTOCOL_VERSION, "tee", tee,
                  "extra-params", "supported-hash-algorithms", "sha256", "sha384", "sha512");
    CL_AUTO(json_t) *challenge = NULL;
    cl_kbs_say(c->o, "[1/3] auth: asking %s for a challenge (protocol %s, TEE %s)",
               c->o->attest_url ? c->o->attest_url : c->o->url, CL_KBS_PROTOCOL_VERSION, tee);
    if (post_json(c, "auth", "/kbs/v0/auth", req, &challenge, err) < 0)
        return err->code;
    const char *nonce = NULL;
    if (cl_json_get_str(challenge, "nonce", &nonce, err) < 0)
        return cl_err_prefix(err, "KBS challenge");
    cl_kbs_say(c->o, "      challenge nonce %s", nonce);
    CL_AUTO(cl_str) *additional = additional_evidence(c, nonce, err);
    if (!additional)
        return err->code ? err->code : cl_err_set(err, CL_ENOMEM, "out of memory");
    CL_AUTO(json_t) *evidence = primary_evidence(c, tee, challenge, nonce, additional, err);
    if (!evidence)
        return err->code;
    if (c->o->verbose) {
        CL_AUTO(cl_str) *evtext = cl_json_compact(evidence);
        cl_kbs_say(c->o,
                   "[2/3] attest: evidence binds a digest of the nonce and a fresh %s TEE key: %s",
                   json_string_value(json_object_get(c->jwk, "alg")), evtext ? evtext : "");
    }
    CL_AUTO(json_t) *att = json_pack("{s:{s:s, s:O}, s:{s:O, s:s}}", "runtime-data", "nonce", nonce,
                                     "tee-pubkey", c->jwk, "tee-evidence", "primary_evidence",
                                     evidence, "additional_evidence", additional);
    if (att)
        json_object_set_new(att, "init-data",
                            c->o->init_data
                                ? json_pack("{s:s, s:s}", "format", "toml", "body", c->o->init_data)
                                : json_null());
    CL_AUTO(json_t) *tok = NULL;
    if (post_json(c, "attest", "/kbs/v0/attest", att, &tok, err) < 0)
        return err->code;
    const char *t = NULL;
    if (cl_json_get_str(tok, "token", &t, err) < 0)
        return cl_err_prefix(err, "KBS attest reply");
    *token = strdup(t);
    return *token ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

/* libcurl reads trust anchors from a file: ca_pem goes to a private one (*path, new). */
static int ca_pem_file(const struct cl_kbs_client_opts *o, cl_str **path, struct cl_err *err)
{
    *path = NULL;
    if (!o->ca_pem)
        return 0;
    char tmpl[] = "/tmp/cloister-kbs-ca.XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return cl_err_set(err, CL_EIO,
                          "KBS client: cannot write the KBS certificate to a "
                          "temporary file (is /tmp writable?)");
    close(fd);
    if (cl_file_write_atomic(tmpl, o->ca_pem, strlen(o->ca_pem), 0600, err) < 0 ||
        !(*path = strdup(tmpl))) {
        unlink(tmpl);
        return err->code ? err->code : cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    return 0;
}

/* Runs the handshake up to opts->tries times; on success c holds the live session. */
static int rcar_run(struct cl_kbs_rcar *c, const struct cl_kbs_client_opts *o, const char *ca_file,
                    cl_str **token, struct cl_err *err)
{
    if (!o->url)
        return cl_err_set(err, CL_EINVAL, "KBS client: no KBS URL given");
    unsigned tries = o->tries ? o->tries : 1;
    unsigned delay = o->retry_delay_ms ? o->retry_delay_ms : 1000;
    int rc = CL_EIO;
    for (unsigned i = 0; i < tries; i++) {
        if (i) {
            cl_warn("RCAR attempt %u/%u failed: %s; retrying in %u ms", i, tries, err->msg, delay);
            struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            rcar_clear(c);
        }
        rc = rcar_init(c, o, ca_file, err);
        if (rc == 0)
            rc = rcar_handshake(c, token, err);
        /* A refusal or a bad configuration will not change by asking again. */
        if (rc == 0 || rc == CL_EDENIED || rc == CL_EINVAL || rc == CL_EUNSUPPORTED)
            break;
    }
    return rc;
}

int cl_kbs_rcar_open(struct cl_kbs_rcar *c, const struct cl_kbs_client_opts *o, cl_str **token,
                     struct cl_err *err)
{
    memset(c, 0, sizeof *c);
    if (ca_pem_file(o, &c->ca_path, err) < 0)
        return err->code;
    return rcar_run(c, o, c->ca_path ? c->ca_path : o->ca_file, token, err);
}

void cl_kbs_rcar_close(struct cl_kbs_rcar *c)
{
    rcar_clear(c);
    if (c->ca_path) {
        unlink(c->ca_path);
        free(c->ca_path);
        c->ca_path = NULL;
    }
}

int cl_kbs_client_handshake(const struct cl_kbs_client_opts *opts, cl_str **token, cl_pkey **key,
                            int64_t *exp, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_kbs_rcar c;
    cl_str *t = NULL;
    int64_t nbf = 0;
    int rc = cl_kbs_rcar_open(&c, opts, &t, err);
    if (rc == 0 && cl_kbs_jwt_times(t, exp, &nbf, err) < 0)
        rc = cl_err_prefix(err, "KBS token");
    if (rc == 0) {
        *token = t;
        *key = CL_STEAL(c.key);
    } else {
        free(t);
    }
    cl_kbs_rcar_close(&c);
    return rc;
}

/* ---- small helpers shared with the guest processes ---- */

cl_str *cl_kbs_tee_key_pem(cl_pkey *key, struct cl_err *err)
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

int cl_kbs_jwt_times(const char *jwt, int64_t *exp, int64_t *nbf, struct cl_err *err)
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
