/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation service core: evidence items → verifier → claims → policy → EAR token.
 * Stages recorded on failure: "tee" (unknown or refused TEE), the verifier's own stages,
 * "init-data", "policy", "token".
 */
#include "as/as_internal.h"
#include "tee/tee.h"
#include "toml/toml.h"

#include <string.h>

struct cl_as *cl_as_new(const struct cl_as_opts *opts, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_as *as = calloc(1, sizeof *as);
    if (!as) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    as->store = opts->store;
    as->allow_sample_insecure = opts->allow_sample_insecure;
    as->tee_config = opts->tee_config;
    as->token_duration_min = opts->token_duration_min ? opts->token_duration_min : 5;
    as->rv_validity_days = opts->rv_validity_days ? opts->rv_validity_days : 365;
    as->issuer = strdup(opts->issuer ? opts->issuer : "CoCo-Attestation-Service");
    pthread_rwlock_init(&as->policy_lock, NULL);
    if (opts->signer_key_path) {
        as->signer = cl_pkey_load_pem(opts->signer_key_path, true, err);
        if (!as->signer) {
            cl_err_prefix(err, "attestation token signer key");
            goto fail;
        }
        if (EVP_PKEY_get_base_id(as->signer) != EVP_PKEY_EC ||
            EVP_PKEY_get_bits(as->signer) != 256) {
            cl_err_set(err, CL_EINVAL,
                       "attestation token signer key %s must be an EC P-256 key (ES256)",
                       opts->signer_key_path);
            goto fail;
        }
    } else {
        cl_warn("no attestation token signer key configured: using an EPHEMERAL P-256 key; tokens "
                "cannot be verified by anyone but this process and die with it");
        as->signer = cl_pkey_generate("P-256", err);
        if (!as->signer)
            goto fail;
    }
    as->header_jwk = cl_jwk_from_pkey(as->signer, false, "ES256", err);
    if (!as->header_jwk)
        goto fail;
    if (opts->signer_cert_path) {
        json_t *x5c = cl_x509_pem_to_x5c(opts->signer_cert_path, err);
        if (!x5c) {
            cl_err_prefix(err, "attestation token certificate chain");
            goto fail;
        }
        json_object_set_new(as->header_jwk, "x5c", x5c);
    }
    CL_AUTO(json_t) *hdr = json_pack("{s:s, s:O}", "typ", "JWT", "jwk", as->header_jwk);
    as->token_h64 = hdr ? cl_jws_header_b64("ES256", hdr, err) : NULL;
    as->token_hdr =
        json_pack("{s:s, s:s, s:O}", "alg", "ES256", "typ", "JWT", "jwk", as->header_jwk);
    if (!as->token_h64 || !as->token_hdr || !as->issuer) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        goto fail;
    }
    return as;
fail:
    cl_as_free(as);
    return NULL;
}

void cl_as_free(struct cl_as *as)
{
    if (!as)
        return;
    EVP_PKEY_free(as->signer);
    json_decref(as->header_jwk);
    free(as->token_h64);
    json_decref(as->token_hdr);
    cl_as_policies_free(as);
    pthread_rwlock_destroy(&as->policy_lock);
    free(as->issuer);
    free(as);
}

cl_pkey *cl_as_signing_key(struct cl_as *as)
{
    return as->signer;
}

const json_t *cl_as_token_jwk(struct cl_as *as)
{
    return as->header_jwk;
}

const char *cl_as_token_header_b64(struct cl_as *as)
{
    return as->token_h64;
}

const json_t *cl_as_token_header(struct cl_as *as)
{
    return as->token_hdr;
}

json_t *cl_as_jwks(struct cl_as *as)
{
    return json_pack("{s:[O]}", "keys", as->header_jwk);
}

int cl_as_runtime_digest(const json_t *runtime_data, enum cl_hash h, uint8_t *out, size_t *outlen,
                         struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_str) *jcs = cl_json_canonical(runtime_data, &n, err);
    if (!jcs)
        return err ? err->code : CL_EINVAL;
    int rc = cl_digest(h, jcs, n, out, err);
    if (rc == 0)
        *outlen = cl_hash_len(h);
    return rc;
}

/* ---- init-data: digest of the exact text, claims from its [data] table ---- */

/* Extracts the JSON object that follows "policy_data := {" in a Kata agent policy. */
static json_t *agent_policy_claims(const char *rego)
{
    const char *p = strstr(rego, "policy_data := {");
    if (!p)
        return NULL;
    p = strchr(p, '{');
    size_t depth = 0, i = 0;
    bool in_str = false;
    for (; p[i]; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\' && p[i + 1])
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            break;
        }
    }
    if (!p[i])
        return NULL;
    return cl_json_parse(p, i + 1, CL_JSON_MAX_DEPTH, NULL);
}

static int init_data_parse(const char *text, size_t len, uint8_t *digest, size_t *dlen,
                           json_t **claims, struct cl_err *err)
{
    if (len > CL_AS_MAX_INIT_DATA)
        return cl_err_stage(err, CL_ELIMIT, "init-data", "init-data of %zu bytes exceeds %d", len,
                            CL_AS_MAX_INIT_DATA);
    CL_AUTO(json_t) *doc = cl_toml_parse(text, len, err);
    if (!doc) {
        err->stage = "init-data";
        return cl_err_prefix(err, "init-data TOML");
    }
    const char *alg = NULL, *version = NULL;
    enum cl_hash h;
    if (cl_json_get_str(doc, "algorithm", &alg, err) < 0 ||
        cl_json_get_str(doc, "version", &version, err) < 0 || cl_hash_from_name(alg, &h, err) < 0) {
        err->stage = "init-data";
        return cl_err_prefix(err, "init-data");
    }
    if (strcmp(version, "0.1.0") != 0)
        return cl_err_stage(err, CL_EPARSE, "init-data", "init-data version '%.32s' is not 0.1.0",
                            version);
    if (cl_digest(h, text, len, digest, err) < 0)
        return err->code;
    *dlen = cl_hash_len(h);
    json_t *data = json_object_get(doc, "data");
    CL_AUTO(json_t) *out = json_is_object(data) ? json_deep_copy(data) : json_object();
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(out, tmp, k, v)
    {
        if (!json_is_string(v))
            continue;
        if (strcmp(k, "aa.toml") == 0 || strcmp(k, "cdh.toml") == 0) {
            json_t *parsed = cl_toml_parse(json_string_value(v), json_string_length(v), NULL);
            json_object_set_new(out, k, parsed ? parsed : json_null());
        } else if (strcmp(k, "policy.rego") == 0) {
            json_t *apc = agent_policy_claims(json_string_value(v));
            json_object_set_new(out, "agent_policy_claims", apc ? apc : json_null());
            json_object_del(out, k);
        }
    }
    *claims = CL_STEAL(out);
    return 0;
}

/* ---- evaluation ---- */

static json_t *appraise_claims(struct cl_as *as, const struct cl_as_item *it, const char *policy_id,
                               const struct cl_tee_verifier *v, json_t *claims,
                               const json_t *init_claims, struct cl_err *err);

/* Verifies one item and appraises its claims: a new array of submods, one per claim set the
 * verifier returned (an object, or an array of objects for a multi-device verifier). */
static json_t *appraise_one(struct cl_as *as, const struct cl_as_item *it, const char *policy_id,
                            const struct cl_tee_verifier **vout, struct cl_err *err)
{
    const struct cl_tee_verifier *v = cl_tee_verifier_find(it->tee);
    if (!v) {
        cl_err_stage(err, CL_EUNSUPPORTED, "tee", "no verifier for TEE '%.32s' in this build",
                     it->tee);
        return NULL;
    }
    if (v->insecure) {
        if (!as->allow_sample_insecure) {
            cl_err_stage(err, CL_EDENIED, "tee",
                         "TEE '%s' proves nothing and is refused (set allow_sample_tee_insecure to "
                         "allow it)",
                         it->tee);
            return NULL;
        }
        cl_insecure("allow_sample_tee_insecure",
                    "accepting evidence of the '%s' TEE, which has no hardware root", it->tee);
    }
    uint8_t rd[CL_HASH_MAX], idd[CL_HASH_MAX];
    size_t rdlen = 0, idlen = 0;
    if (cl_as_runtime_digest(it->runtime_data, it->runtime_hash, rd, &rdlen, err) < 0) {
        err->stage = "runtime-data";
        return NULL;
    }
    CL_AUTO(json_t) *init_claims = NULL;
    if (it->init_data_toml &&
        init_data_parse(it->init_data_toml, it->init_data_len, idd, &idlen, &init_claims, err) < 0)
        return NULL;
    struct cl_tee_verify_in in = {it->evidence,  rd, rdlen, it->init_data_toml ? idd : NULL, idlen,
                                  as->tee_config};
    CL_AUTO(json_t) *claims = NULL;
    if (v->verify(&in, &claims, err) < 0) {
        cl_err_prefix(err, "%s verifier", it->tee);
        return NULL;
    }
    json_t *subs = cl_as_appraise_sets(as, it, policy_id, v, claims, init_claims, err);
    if (subs)
        *vout = v;
    return subs;
}

json_t *cl_as_appraise_sets(struct cl_as *as, const struct cl_as_item *it, const char *policy_id,
                            const struct cl_tee_verifier *v, const json_t *claims,
                            const json_t *init_claims, struct cl_err *err)
{
    CL_AUTO(json_t) *subs = json_array();
    if (!subs) {
        cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
        return NULL;
    }
    size_t nsets = json_is_array(claims) ? json_array_size(claims) : 1;
    if (nsets == 0 || nsets > CL_AS_MAX_ITEMS) {
        cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_CLAIMS, "%s verifier returned %zu claim sets",
                     it->tee, json_array_size(claims));
        return NULL;
    }
    for (size_t k = 0; k < nsets; k++) {
        const json_t *one = json_is_array(claims) ? json_array_get(claims, k) : claims;
        if (!json_is_object(one)) {
            cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_CLAIMS,
                         "%s verifier returned a claim set that is not an object", it->tee);
            return NULL;
        }
        /* appraise_claims lifts top-level members out of the set: a shallow copy keeps the
         * verifier's object as it was (nothing reads it afterwards but its owner's free) */
        json_t *set = json_copy((json_t *)(uintptr_t)one);
        json_t *sub = set ? appraise_claims(as, it, policy_id, v, set, init_claims, err) : NULL;
        json_decref(set);
        if (!sub)
            return NULL;
        json_array_append_new(subs, sub);
    }
    return CL_STEAL(subs);
}

static json_t *appraise_claims(struct cl_as *as, const struct cl_as_item *it, const char *policy_id,
                               const struct cl_tee_verifier *v, json_t *claims,
                               const json_t *init_claims, struct cl_err *err)
{
    /* Lift report_data / init_data out of the verifier claims, as trustee's broker does. */
    CL_AUTO(json_t) *annotated = json_object();
    json_t *rdc = json_object_get(claims, "report_data");
    if (rdc) {
        json_object_set(annotated, "report_data", rdc);
        json_object_set(annotated, "runtime_data_claims", (json_t *)(uintptr_t)it->runtime_data);
        json_object_del(claims, "report_data");
    }
    json_t *idc = json_object_get(claims, "init_data");
    if (idc) {
        json_object_set(annotated, "init_data", idc);
        json_object_set(annotated, "init_data_claims",
                        init_claims ? (json_t *)(uintptr_t)init_claims : json_null());
        json_object_del(claims, "init_data");
    }
    json_object_set(annotated, it->tee, claims);
    CL_AUTO(json_t) *vector = NULL;
    CL_AUTO(json_t) *extensions = NULL;
    if (cl_as_appraise(as, policy_id, v->tee_class, annotated, &vector, &extensions, err) < 0)
        return NULL;
    json_t *sub = json_pack("{s:s, s:O, s:s, s:O}", "ear.status", cl_as_ear_status(vector),
                            "ear.trustworthiness-vector", vector, "ear.appraisal-policy-id",
                            policy_id, "ear.veraison.annotated-evidence", annotated);
    /* extensions: [{"name", "key", "value"}] registered under their names */
    size_t i;
    json_t *x;
    json_array_foreach(extensions, i, x)
    {
        const char *name = json_string_value(json_object_get(x, "name"));
        json_t *val = json_object_get(x, "value");
        if (sub && name && val && strncmp(name, "ear.", 4) == 0 && !json_object_get(sub, name))
            json_object_set(sub, name, val);
    }
    return sub;
}

int cl_as_evaluate(struct cl_as *as, const struct cl_as_item *items, size_t n,
                   const char *policy_id, cl_str **token, struct cl_err *err)
{
    return cl_as_evaluate_claims(as, items, n, policy_id, token, NULL, err);
}

int cl_as_evaluate_claims(struct cl_as *as, const struct cl_as_item *items, size_t n,
                          const char *policy_id, cl_str **token, json_t **claims,
                          struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (n == 0 || n > CL_AS_MAX_ITEMS)
        return cl_err_stage(err, CL_ELIMIT, "tee", "%zu evidence items (1..%d allowed)", n,
                            CL_AS_MAX_ITEMS);
    CL_AUTO(json_t) *submods = json_object();
    /* submod names: <class><n>, counted per class in request order */
    const char *classes[CL_AS_MAX_ITEMS] = {0};
    unsigned counts[CL_AS_MAX_ITEMS] = {0};
    size_t nclasses = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cl_tee_verifier *v = NULL;
        CL_AUTO(json_t) *subs = appraise_one(as, &items[i], policy_id, &v, err);
        if (!subs)
            return err->code;
        size_t c = 0;
        while (c < nclasses && strcmp(classes[c], v->tee_class) != 0)
            c++;
        if (c == nclasses)
            classes[nclasses++] = v->tee_class;
        size_t k;
        json_t *sub;
        json_array_foreach(subs, k, sub)
        {
            char name[48];
            snprintf(name, sizeof name, "%s%u", v->tee_class, counts[c]++);
            json_object_set(submods, name, sub);
        }
    }
    int64_t now = cl_now_unix();
    uint8_t jti_raw[16];
    if (cl_random(jti_raw, sizeof jti_raw, err) < 0)
        return err->code;
    CL_AUTO(cl_str) *jti = cl_hex_encode(jti_raw, sizeof jti_raw);
    CL_AUTO(json_t) *payload =
        json_pack("{s:s, s:I, s:{s:s, s:s}, s:O, s:I, s:s, s:s}", "eat_profile", CL_AS_EAR_PROFILE,
                  "iat", (json_int_t)now, "ear.verifier-id", "developer",
                  "https://confidentialcontainers.org", "build", "cloister-as 0.1.0", "submods",
                  submods, "exp", (json_int_t)(now + (int64_t)as->token_duration_min * 60), "iss",
                  as->issuer, "jti", jti ? jti : "");
    CL_AUTO(cl_str) *text = payload ? cl_json_compact(payload) : NULL;
    if (!text)
        return cl_err_stage(err, CL_ENOMEM, "token", "out of memory");
    *token = cl_jws_sign_h64(as->signer, "ES256", as->token_h64, text, strlen(text), err);
    if (!*token) {
        err->stage = "token";
        return err->code;
    }
    if (claims)
        *claims = CL_STEAL(payload);
    return 0;
}
