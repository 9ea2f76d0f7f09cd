/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-kbs configuration: TOML with trustee's kbs-config.toml key names. Every key is
 * either honoured or refused: a key Cloister does not know, or a value it cannot honour
 * (another attestation service, a Vault resource backend, a TLS group GnuTLS lacks), is an
 * error naming its dotted path and file:line, so that a typo in a security switch or a
 * setting Cloister would silently not apply can never start a server. Values are
 * type-checked and range-checked. cl_kbs_config_effective() gives the configuration in force
 * back in the file's own structure (for --check).
 */
#include "as/as.h"
#include "kbs/jwks.h"
#include "kbs/kbs.h"
#include "net/http.h"
#include "store/store.h"
#include "toml/cfg.h"
#include "toml/toml.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* The parse in progress (config parsing is single-threaded per call; thread-local so two
 * parses on two threads cannot mix). Refusals go through the shared reader (toml/cfg.h). */
static _Thread_local struct cl_cfg *pc;

/* Records one refusal of the key at `path` (logged now with file:line, the first kept). */
#define refuse(path, ...) cl_cfg_refuse(pc, (path), __VA_ARGS__)

#define KC struct cl_kbs_config

/* "must be one of": value of a string key refused by name. */
static void refuse_value(const char *where, const char *key, const char *value, const char *why)
{
    char path[256];
    cl_cfg_join(path, sizeof path, where, key);
    refuse(path, "%s = \"%.128s\" is not supported%s%s", path, value, why ? ": " : "",
           why ? why : "");
}

void cl_kbs_config_defaults(struct cl_kbs_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->payload_max = 2u * 1024 * 1024;
    cfg->session_timeout_min = 5;
    cfg->max_sessions = CL_KBS_MAX_SESSIONS_DEFAULT;
    cfg->token_duration_min = 5;
    cfg->admin_mode = CL_KBS_ADMIN_DENY_ALL;
}

void cl_kbs_config_clear(struct cl_kbs_config *cfg)
{
    for (size_t i = 0; i < cfg->nsockets; i++)
        free(cfg->sockets[i]);
    for (size_t i = 0; i < cfg->ntrusted_certs; i++)
        free(cfg->trusted_certs_paths[i]);
    for (size_t i = 0; i < cfg->nextra_teekey_paths; i++)
        free(cfg->extra_teekey_paths[i]);
    for (size_t i = 0; i < cfg->ntrusted_jwk_sets; i++)
        free(cfg->trusted_jwk_sets[i]);
    for (size_t i = 0; i < cfg->npersonas; i++) {
        free(cfg->personas[i].id);
        EVP_PKEY_free(cfg->personas[i].key);
    }
    for (size_t i = 0; i < cfg->nidps; i++) {
        free(cfg->idps[i].issuer);
        free(cfg->idps[i].audience);
        free(cfg->idps[i].key_uri);
        EVP_PKEY_free(cfg->idps[i].key);
    }
    for (size_t i = 0; i < cfg->nacls; i++) {
        free(cfg->acls[i].role);
        free(cfg->acls[i].pattern);
        regfree(&cfg->acls[i].re);
    }
    free(cfg->tls_profile);
    free(cfg->tls_min_version);
    free(cfg->tls_max_version);
    free(cfg->tls_ciphers);
    free(cfg->tls_groups);
    free(cfg->tls_priorities);
    free(cfg->policy_path);
    free(cfg->token_issuer);
    free(cfg->tls_key_path);
    free(cfg->tls_cert_path);
    free(cfg->signer_key_path);
    free(cfg->signer_cert_path);
    free(cfg->storage_type);
    free(cfg->storage_dir);
    free(cfg->resource_type);
    free(cfg->resource_dir);
    char *owned[] = {cfg->pg.url,
                     cfg->pg.db,
                     cfg->pg.user,
                     cfg->pg.password,
                     cfg->pg.host,
                     cfg->redis_url,
                     cfg->redis_ca_file,
                     cfg->redis_cert_file,
                     cfg->redis_key_file,
                     cfg->seal_key_path,
                     cfg->session_storage_type};
    for (size_t i = 0; i < CL_ARRAY_LEN(owned); i++)
        free(owned[i]);
    for (size_t i = 0; i < cfg->nseal_old; i++)
        free(cfg->seal_old_paths[i]);
    for (size_t i = 0; i < CL_ARRAY_LEN(cfg->tee_strings); i++)
        free(cfg->tee_strings[i]);
    for (size_t i = 0; i < CL_ARRAY_LEN(cfg->cca_csv_strings); i++)
        free(cfg->cca_csv_strings[i]);
    memset(cfg, 0, sizeof *cfg);
}

static int add_persona(struct cl_kbs_config *cfg, const char *id, const char *path,
                       struct cl_err *err)
{
    if (cfg->npersonas == CL_KBS_MAX_PERSONAS)
        return cl_err_set(err, CL_ELIMIT, "config: more than %d admin personas",
                          CL_KBS_MAX_PERSONAS);
    cl_pkey *k = cl_pkey_load_pem(path, false, err);
    if (!k)
        return cl_err_prefix(err, "config: admin persona '%s' public_key_path", id);
    int t = EVP_PKEY_get_base_id(k);
    if (t != EVP_PKEY_ED25519 && t != EVP_PKEY_EC) {
        EVP_PKEY_free(k);
        return cl_err_set(err, CL_EINVAL, "config: admin persona '%s': key must be Ed25519 or EC",
                          id);
    }
    cfg->personas[cfg->npersonas].id = strdup(id);
    cfg->personas[cfg->npersonas].key = k;
    cfg->npersonas++;
    return 0;
}

/* public_key_uri: a local path, file:// URL or https:// URL (jwks.c) of a PEM public key. */
static int load_idp_key(const char *uri, const char *path, cl_pkey **out, struct cl_err *err)
{
    if (strncmp(uri, "http://", 7) == 0) {
        refuse(path, "%s = \"%.128s\": plain http is not trusted for keys: use https://", path,
               uri);
        return 0;
    }
    const char *file = strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri;
    cl_pkey *k = strncmp(uri, "https://", 8) == 0 ? cl_kbs_fetch_pem_key(path, uri, err)
                                                  : cl_pkey_load_pem(file, false, err);
    if (!k)
        return cl_err_prefix(err, "config: '%s'", path);
    int t = EVP_PKEY_get_base_id(k);
    if (t != EVP_PKEY_ED25519 && t != EVP_PKEY_EC && t != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return cl_err_set(err, CL_EINVAL, "config: '%s': key must be RSA, EC or Ed25519", path);
    }
    *out = k;
    return 0;
}

/* ---- [admin] ---- */

static const struct cl_cfg_field idp_rows[] = {
    CL_CFG_S("issuer", struct cl_kbs_idp, issuer, 0, NULL),
    CL_CFG_S("audience", struct cl_kbs_idp, audience, 0, NULL),
    CL_CFG_S("public_key_uri", struct cl_kbs_idp, key_uri, 0, NULL),
    CL_CFG_NO("jwk_set_uri", "give the issuer's key as public_key_uri"),
    CL_CFG_END_ROW,
};

/* [admin.authentication.bearer_jwt] identity_providers = [{issuer, audience, public_key_uri}] */
static int read_idps(struct cl_cfg *c, const json_t *ips, const char *path, void *base,
                     struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_array(ips))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be an array of tables", path);
    if (json_array_size(ips) > CL_KBS_MAX_PERSONAS)
        return cl_err_set(err, CL_ELIMIT, "config: more than %d identity providers",
                          CL_KBS_MAX_PERSONAS);
    size_t i;
    json_t *ip;
    json_array_foreach(ips, i, ip)
    {
        char where[CL_CFG_MAX_PATH], kp[CL_CFG_MAX_PATH + 16];
        snprintf(where, sizeof where, "%s[%zu]", path, i);
        if (!json_is_object(ip))
            return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", where);
        struct cl_kbs_idp *d = &cfg->idps[cfg->nidps++];
        if (cl_cfg_read(c, ip, where, idp_rows, d, err) < 0)
            return err->code;
        if (!d->key_uri && !json_object_get(ip, "jwk_set_uri"))
            return cl_err_set(err, CL_EINVAL, "config: '%s' needs public_key_uri", where);
        snprintf(kp, sizeof kp, "%s.public_key_uri", where);
        if (d->key_uri && load_idp_key(d->key_uri, kp, &d->key, err) < 0)
            return err->code;
        /* "" means: do not check (trustee's wording) */
        if (d->issuer && !*d->issuer) {
            free(d->issuer);
            d->issuer = NULL;
        }
        if (d->audience && !*d->audience) {
            free(d->audience);
            d->audience = NULL;
        }
    }
    return 0;
}

static const struct cl_cfg_field acl_rows[] = {
    CL_CFG_K("role"),              /* read_acls */
    CL_CFG_K("allowed_endpoints"), /* read_acls */
    CL_CFG_END_ROW,
};

/* [admin.authorization.regex_acl] acls = [{role, allowed_endpoints = "^/kbs...$"}] */
static int read_acls(struct cl_cfg *c, const json_t *acls, const char *path, void *base,
                     struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_array(acls))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be an array of tables", path);
    if (json_array_size(acls) > CL_KBS_MAX_ACLS)
        return cl_err_set(err, CL_ELIMIT, "config: more than %d admin ACL entries",
                          CL_KBS_MAX_ACLS);
    size_t i;
    json_t *a;
    json_array_foreach(acls, i, a)
    {
        char where[CL_CFG_MAX_PATH];
        snprintf(where, sizeof where, "%s[%zu]", path, i);
        if (!json_is_object(a))
            return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", where);
        if (cl_cfg_read(c, a, where, acl_rows, base, err) < 0)
            return err->code;
        const char *role = NULL, *re = NULL;
        if (cl_json_get_str(a, "role", &role, err) < 0 ||
            cl_json_get_str(a, "allowed_endpoints", &re, err) < 0)
            return cl_err_prefix(err, "config: '%s'", where);
        size_t rl = strlen(re);
        if (strncmp(re, "^/kbs", 5) != 0 || rl < 6 || re[rl - 1] != '$')
            return cl_err_set(err, CL_EINVAL,
                              "config: '%s.allowed_endpoints' = \"%.128s\" must start with "
                              "^/kbs and end with $",
                              where, re);
        struct cl_kbs_acl *d = &cfg->acls[cfg->nacls];
        if (regcomp(&d->re, re, REG_EXTENDED | REG_NOSUB) != 0)
            return cl_err_set(
                err, CL_EINVAL,
                "config: '%s.allowed_endpoints' = \"%.128s\" is not a POSIX extended regex", where,
                re);
        cfg->nacls++;
        if (!(d->role = strdup(role)) || !(d->pattern = strdup(re)))
            return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    return 0;
}

static const struct cl_cfg_field persona_rows[] = {
    CL_CFG_K("id"),              /* read_personas */
    CL_CFG_K("public_key_path"), /* read_personas */
    CL_CFG_END_ROW,
};

/* Simple mode: [[admin.personas]] {id, public_key_path} */
static int read_personas(struct cl_cfg *c, const json_t *ps, const char *path, void *base,
                         struct cl_err *err)
{
    if (!json_is_array(ps))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be an array of tables", path);
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p)
    {
        char where[CL_CFG_MAX_PATH];
        snprintf(where, sizeof where, "%s[%zu]", path, i);
        const char *id = NULL, *kp = NULL;
        if (cl_json_get_str(p, "id", &id, err) < 0 ||
            cl_json_get_str(p, "public_key_path", &kp, err) < 0)
            return cl_err_prefix(err, "config: %s", where);
        if (cl_cfg_read(c, p, where, persona_rows, base, err) < 0 ||
            add_persona(base, id, kp, err) < 0)
            return err->code;
    }
    return 0;
}

static int read_auth_public_key(struct cl_cfg *c, const json_t *pk, const char *path, void *base,
                                struct cl_err *err)
{
    if (!json_is_string(pk))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a path", path);
    return add_persona(base, "admin", json_string_value(pk), err);
}

static const struct cl_cfg_field bearer_rows[] = {
    CL_CFG_F("identity_providers", read_idps, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field authn_rows[] = {
    CL_CFG_T("bearer_jwt", bearer_rows),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field regex_acl_rows[] = {
    CL_CFG_F("acls", read_acls, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field authz_rows[] = {
    CL_CFG_T("regex_acl", regex_acl_rows),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field admin_rows[] = {
    CL_CFG_K("type"),               /* parse_admin: the mode */
    CL_CFG_K("authorization_mode"), /* parse_admin: the mode */
    CL_CFG_K("insecure_api"),       /* parse_admin: the mode */
    CL_CFG_F("auth_public_key", read_auth_public_key, NULL),
    CL_CFG_F("personas", read_personas, NULL),
    CL_CFG_T("authentication", authn_rows),
    CL_CFG_T("authorization", authz_rows),
    CL_CFG_END_ROW,
};

static int parse_admin(const json_t *admin, struct cl_kbs_config *cfg, struct cl_err *err)
{
    json_t *ia = json_object_get(admin, "insecure_api");
    if (ia && !json_is_boolean(ia))
        return cl_err_set(err, CL_EINVAL, "config: 'admin.insecure_api' must be true or false");
    bool insecure_api = json_is_true(ia);
    const char *mode = NULL;
    json_t *t = json_object_get(admin, "authorization_mode");
    const char *mkey = "admin.authorization_mode";
    if (!t) {
        t = json_object_get(admin, "type");
        mkey = "admin.type";
    }
    if (t && !json_is_string(t))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a string", mkey);
    mode = t ? json_string_value(t) : NULL;
    if (cl_cfg_read(pc, admin, "admin", admin_rows, cfg, err) < 0)
        return err->code;
    bool authn =
        json_object_get(admin, "authentication") || json_object_get(admin, "authorization");
    if (insecure_api || (mode && strcasecmp(mode, "InsecureAllowAll") == 0)) {
        cfg->admin_mode = CL_KBS_ADMIN_ALLOW_ALL_INSECURE;
    } else if (mode && strcasecmp(mode, "DenyAll") == 0) {
        cfg->admin_mode = CL_KBS_ADMIN_DENY_ALL;
    } else if ((mode && strcasecmp(mode, "AuthenticatedAuthorization") == 0) || (!mode && authn)) {
        cfg->admin_mode = CL_KBS_ADMIN_BEARER_JWT;
        if (cfg->npersonas)
            refuse("admin.personas",
                   "'admin.personas' / 'admin.auth_public_key' belong to admin.type = \"Simple\", "
                   "not to AuthenticatedAuthorization (use identity_providers)");
        if (!cfg->nidps || !cfg->nacls)
            cl_warn("config: admin AuthenticatedAuthorization without %s: the admin API denies "
                    "every request",
                    !cfg->nidps ? "an identity provider" : "an ACL entry");
    } else if (!mode || strcasecmp(mode, "Simple") == 0) {
        if (authn)
            refuse("admin.authentication", "'admin.authentication' / 'admin.authorization' need "
                                           "authorization_mode = \"AuthenticatedAuthorization\"");
        cfg->admin_mode = cfg->npersonas ? CL_KBS_ADMIN_PERSONAS : CL_KBS_ADMIN_DENY_ALL;
        if (!cfg->npersonas)
            cl_warn("config: no admin persona configured: the admin API denies every request");
    } else {
        refuse(mkey,
               "%s = \"%.64s\" is not supported: DenyAll, InsecureAllowAll, "
               "AuthenticatedAuthorization or "
               "Simple",
               mkey, mode);
    }
    return 0;
}

/* ---- TLS: trustee's profiles and custom settings as a GnuTLS priority string ---- */

/* OpenSSL suite names → GnuTLS cipher (and key exchange for TLS 1.2 suites). A GnuTLS
 * priority string selects ciphers and key exchanges as two sets, so the TLS 1.2 suites in
 * force are every listed cipher with every listed key exchange (documented). */
static const struct {
    const char *openssl, *cipher, *kx;
} tls_suites[] = {
    {"TLS_AES_256_GCM_SHA384", "AES-256-GCM", NULL},
    {"TLS_AES_128_GCM_SHA256", "AES-128-GCM", NULL},
    {"TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", NULL},
    {"TLS_AES_128_CCM_SHA256", "AES-128-CCM", NULL},
    {"ECDHE-ECDSA-AES128-GCM-SHA256", "AES-128-GCM", "ECDHE-ECDSA"},
    {"ECDHE-RSA-AES128-GCM-SHA256", "AES-128-GCM", "ECDHE-RSA"},
    {"ECDHE-ECDSA-AES256-GCM-SHA384", "AES-256-GCM", "ECDHE-ECDSA"},
    {"ECDHE-RSA-AES256-GCM-SHA384", "AES-256-GCM", "ECDHE-RSA"},
    {"ECDHE-ECDSA-CHACHA20-POLY1305", "CHACHA20-POLY1305", "ECDHE-ECDSA"},
    {"ECDHE-RSA-CHACHA20-POLY1305", "CHACHA20-POLY1305", "ECDHE-RSA"},
    {"DHE-RSA-AES128-GCM-SHA256", "AES-128-GCM", "DHE-RSA"},
    {"DHE-RSA-AES256-GCM-SHA384", "AES-256-GCM", "DHE-RSA"},
    {"DHE-RSA-CHACHA20-POLY1305", "CHACHA20-POLY1305", "DHE-RSA"},
};

static const struct {
    const char *name, *gnutls;
} tls_groups[] = {
    {"X25519", "GROUP-X25519"},
    {"x25519", "GROUP-X25519"},
    {"X448", "GROUP-X448"},
    {"x448", "GROUP-X448"},
    {"secp256r1", "GROUP-SECP256R1"},
    {"P-256", "GROUP-SECP256R1"},
    {"prime256v1", "GROUP-SECP256R1"},
    {"secp384r1", "GROUP-SECP384R1"},
    {"P-384", "GROUP-SECP384R1"},
    {"secp521r1", "GROUP-SECP521R1"},
    {"P-521", "GROUP-SECP521R1"},
    {"ffdhe2048", "GROUP-FFDHE2048"},
    {"ffdhe3072", "GROUP-FFDHE3072"},
    {"ffdhe4096", "GROUP-FFDHE4096"},
    {"ffdhe8192", "GROUP-FFDHE8192"},
};

static bool add_unique(char *buf, size_t cap, const char *item)
{
    char needle[64];
    snprintf(needle, sizeof needle, ":+%s:", item);
    char probe[1024];
    snprintf(probe, sizeof probe, "%s:", buf);
    if (strstr(probe, needle))
        return true;
    size_t l = strlen(buf);
    return (size_t)snprintf(buf + l, cap - l, ":+%s", item) < cap - l;
}

static int tls_version_of(const char *key, const char *v, int *out)
{
    if (!v)
        return 0;
    if (strcmp(v, "1.2") == 0)
        *out = 12;
    else if (strcmp(v, "1.3") == 0)
        *out = 13;
    else
        refuse_value("http_server", key, v, "use \"1.2\" or \"1.3\"");
    return 0;
}

static int build_tls_priorities(struct cl_kbs_config *cfg, struct cl_err *err)
{
    const char *prof = cfg->tls_profile ? cfg->tls_profile : "intermediate";
    int minv = 12, maxv = 13;
    bool aead_only = true;
    if (strcmp(prof, "modern") == 0) {
        minv = 13;
    } else if (strcmp(prof, "old") == 0) {
        aead_only = false;
    } else if (strcmp(prof, "intermediate") != 0 && strcmp(prof, "custom") != 0) {
        refuse_value("http_server", "tls_profile", prof, "use modern, intermediate, old or custom");
        return 0;
    }
    if (strcmp(prof, "custom") != 0 &&
        (cfg->tls_min_version || cfg->tls_max_version || cfg->tls_ciphers || cfg->tls_groups))
        cl_warn("config: http_server.tls_profile = \"%s\" with custom tls_* settings: the custom "
                "settings win",
                prof);
    tls_version_of("tls_min_version", cfg->tls_min_version, &minv);
    tls_version_of("tls_max_version", cfg->tls_max_version, &maxv);
    if (minv > maxv)
        refuse("http_server.tls_min_version",
               "http_server.tls_min_version is above tls_max_version");
    char buf[1024];
    snprintf(buf, sizeof buf, "NORMAL:-VERS-ALL%s%s", maxv >= 13 ? ":+VERS-TLS1.3" : "",
             minv <= 12 ? ":+VERS-TLS1.2" : "");
    if (cfg->tls_ciphers) {
        char ciphers[512] = "", kxs[256] = "";
        char *dup = strdup(cfg->tls_ciphers), *save = NULL;
        if (!dup)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        for (char *tok = strtok_r(dup, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            size_t i = 0;
            while (i < CL_ARRAY_LEN(tls_suites) && strcmp(tls_suites[i].openssl, tok) != 0)
                i++;
            if (i == CL_ARRAY_LEN(tls_suites)) {
                refuse("http_server.tls_ciphers",
                       "http_server.tls_ciphers: suite \"%.64s\" is not supported (AEAD suites "
                       "only; see "
                       "docs/configuration.md)",
                       tok);
                continue;
            }
            add_unique(ciphers, sizeof ciphers, tls_suites[i].cipher);
            if (tls_suites[i].kx)
                add_unique(kxs, sizeof kxs, tls_suites[i].kx);
        }
        free(dup);
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, ":-CIPHER-ALL%s", ciphers);
        if (kxs[0]) {
            l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, ":-KX-ALL%s", kxs);
        } else if (minv <= 12) {
            l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, ":-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA");
        }
    } else if (aead_only) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l,
                 ":-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:-KX-ALL:+ECDHE-ECDSA:+"
                 "ECDHE-RSA:+DHE-RSA");
    }
    if (cfg->tls_groups) {
        char groups[512] = "";
        char *dup = strdup(cfg->tls_groups), *save = NULL;
        if (!dup)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        for (char *tok = strtok_r(dup, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            size_t i = 0;
            while (i < CL_ARRAY_LEN(tls_groups) && strcmp(tls_groups[i].name, tok) != 0)
                i++;
            if (i == CL_ARRAY_LEN(tls_groups)) {
                refuse("http_server.tls_groups",
                       "http_server.tls_groups: group \"%.64s\" is not supported by this TLS "
                       "library (GnuTLS %s; "
                       "no ML-KEM hybrids)",
                       tok, "3.7");
                continue;
            }
            add_unique(groups, sizeof groups, tls_groups[i].gnutls);
        }
        free(dup);
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, ":-GROUP-ALL%s", groups);
    }
    free(cfg->tls_priorities);
    cfg->tls_priorities = strdup(buf);
    return cfg->tls_priorities ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

/* ---- [attestation_service.verifier_config] with trustee's sub-tables (docs/verifiers.md) ----
 * String settings land in cfg->tee_strings / cca_csv_strings (owned); tee_links points the
 * verifiers' const char * settings at them once the table is read. */

static const struct {
    size_t str, tee; /* offsets in struct cl_kbs_config */
} tee_links[] = {
    {offsetof(KC, tee_strings[0]), offsetof(KC, tee.snp_cert_cache)},
    {offsetof(KC, tee_strings[1]), offsetof(KC, tee.snp_kds_url)},
    {offsetof(KC, tee_strings[2]), offsetof(KC, tee.tdx_collateral_dir)},
    {offsetof(KC, tee_strings[3]), offsetof(KC, tee.tdx_pccs_url)},
    {offsetof(KC, tee_strings[4]), offsetof(KC, tee.tpm_ak_ca_path)},
    {offsetof(KC, tee_strings[5]), offsetof(KC, tee.sgx_collateral_dir)},
    {offsetof(KC, cca_csv_strings[0]), offsetof(KC, tee.cca_ta_store)},
    {offsetof(KC, cca_csv_strings[1]), offsetof(KC, tee.cca_rv_store)},
    {offsetof(KC, cca_csv_strings[2]), offsetof(KC, tee.csv_cert_dir)},
};

static int set_slot(char **slot, const char *v, struct cl_err *err)
{
    char *d = strdup(v);
    if (!d)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    free(*slot);
    *slot = d;
    return 0;
}

/* trustee: vcek_sources = [{type = "OfflineStore", path}, {type = "KDS", base_url}] */
static int read_vcek_sources(struct cl_cfg *c, const json_t *src, const char *path, void *base,
                             struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_array(src))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be an array of tables", path);
    size_t i;
    json_t *e;
    json_array_foreach(src, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!type || (strcmp(type, "OfflineStore") != 0 && strcmp(type, "KDS") != 0))
            return cl_err_set(err, CL_EINVAL, "config: '%s[%zu].type' must be OfflineStore or KDS",
                              path, i);
        bool kds = strcmp(type, "KDS") == 0;
        const char *key = kds ? "base_url" : "path";
        json_t *v = json_object_get(e, key);
        if (v && !json_is_string(v))
            return cl_err_set(err, CL_EINVAL, "config: '%s[%zu].%s' must be a string", path, i,
                              key);
        if (kds)
            cfg->tee.snp_kds_online = true;
        if (v && set_slot(&cfg->tee_strings[kds ? 1 : 0], json_string_value(v), err) < 0)
            return err->code;
    }
    return 0;
}

/* trustee: collateral_service = PCS/PCCS URL, or file://<folder> */
static int read_collateral_service(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                                   struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_string(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a string", path);
    const char *cs = json_string_value(v);
    if (strncmp(cs, "file://", 7) == 0)
        return set_slot(&cfg->tee_strings[2], cs + 7, err);
    return set_slot(&cfg->tee_strings[3], cs, err);
}

static int read_tcb_statuses(struct cl_cfg *c, const json_t *st, const char *path, void *base,
                             struct cl_err *err)
{
    static const struct {
        const char *name;
        unsigned bit;
    } statuses[] = {
        {"SWHardeningNeeded", CL_TEE_TCB_SW_HARDENING_NEEDED},
        {"ConfigurationNeeded", CL_TEE_TCB_CONFIGURATION_NEEDED},
        {"OutOfDate", CL_TEE_TCB_OUT_OF_DATE},
        {"TDRelaunchAdvised", CL_TEE_TCB_TD_RELAUNCH_ADVISED},
    };
    struct cl_kbs_config *cfg = base;
    if (!json_is_array(st))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be an array of strings", path);
    size_t i;
    json_t *e;
    json_array_foreach(st, i, e)
    {
        size_t k = 0;
        while (k < CL_ARRAY_LEN(statuses) &&
               (!json_is_string(e) || strcmp(json_string_value(e), statuses[k].name) != 0))
            k++;
        if (k == CL_ARRAY_LEN(statuses))
            return cl_err_set(err, CL_EINVAL,
                              "config: '%s[%zu]' must be SWHardeningNeeded, ConfigurationNeeded, "
                              "OutOfDate or TDRelaunchAdvised",
                              path, i);
        cfg->tee.tdx_allow_tcb_insecure |= statuses[k].bit;
    }
    return 0;
}

/* Each verifier table: adding a key is one row (toml/cfg.h); a new string setting also needs
 * its tee_links line. */
static const struct cl_cfg_field snp_rows[] = {
    CL_CFG_S("cert_cache", KC, tee_strings[0], 0, NULL),
    CL_CFG_S("kds_url", KC, tee_strings[1], 0, NULL),
    CL_CFG_B("kds_online", KC, tee.snp_kds_online),
    CL_CFG_F("vcek_sources", read_vcek_sources, NULL), /* after the two above: it wins */
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field dcap_rows[] = {
    CL_CFG_S("collateral_dir", KC, tee_strings[2], 0, NULL),
    CL_CFG_S("pccs_url", KC, tee_strings[3], 0, NULL),
    CL_CFG_B("allow_expired_collateral_insecure", KC, tee.tdx_allow_expired_collateral_insecure),
    CL_CFG_S("sgx_collateral_dir", KC, tee_strings[5], 0, NULL),
    CL_CFG_F("collateral_service", read_collateral_service, NULL),
    CL_CFG_F("allow_tcb_status_insecure", read_tcb_statuses, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field tpm_rows[] = {
    CL_CFG_S("ak_ca_path", KC, tee_strings[4], CL_CFG_FILE, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field cca_rows[] = {
    CL_CFG_S("ta_store", KC, cca_csv_strings[0], CL_CFG_FILE, NULL),
    CL_CFG_S("rv_store", KC, cca_csv_strings[1], CL_CFG_FILE, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field csv_rows[] = {
    CL_CFG_S("cert_dir", KC, cca_csv_strings[2], 0, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field verifier_rows[] = {
    CL_CFG_NO("nvidia_verifier", "the NVIDIA verifier has no settings (local verification)"),
    CL_CFG_NO("nvidia_dpu_verifier", "the NVIDIA verifier has no settings (local verification)"),
    CL_CFG_B("allow_debug_insecure", KC, tee.allow_debug_insecure),
    CL_CFG_I("verify_time_insecure", KC, tee.verify_time, 1, INT64_MAX, 0),
    CL_CFG_T("snp_verifier", snp_rows),
    CL_CFG_T("dcap_verifier", dcap_rows),
    CL_CFG_T("tpm_verifier", tpm_rows),
    CL_CFG_T("cca_verifier", cca_rows),
    CL_CFG_T("csv_verifier", csv_rows),
    CL_CFG_END_ROW,
};

static int read_verifier_config(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                                struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    if (cl_cfg_read(c, v, path, verifier_rows, base, err) < 0)
        return err->code;
    for (size_t i = 0; i < CL_ARRAY_LEN(tee_links); i++) {
        char *str = *(char **)(void *)((char *)cfg + tee_links[i].str);
        if (str)
            *(const char **)(void *)((char *)cfg + tee_links[i].tee) = str;
    }
    const struct cl_tee_config *t = &cfg->tee;
    if (t->allow_debug_insecure)
        cl_insecure("allow_debug_insecure", "debug-enabled TEEs will be accepted");
    if (t->verify_time)
        cl_insecure("verify_time_insecure",
                    "certificates and collateral are checked at %lld, not now",
                    (long long)t->verify_time);
    return 0;
}

/* ---- [attestation_service] ---- */

static const struct cl_cfg_field rvps_rows[] = {
    CL_CFG_K("type"),
    CL_CFG_NO("extractors", "no provenance extractors are built in"),
    CL_CFG_NO("storage",
              "reference values are kept in [storage_backend] (namespace reference_value)"),
    CL_CFG_K("storage_type"),
    CL_CFG_END_ROW,
};

static int read_rvps(struct cl_cfg *c, const json_t *rv, const char *path, void *base,
                     struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_object(rv))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    const char *rt = json_string_value(json_object_get(rv, "type"));
    if (rt && strcmp(rt, "BuiltIn") != 0) {
        refuse_value(path, "type", rt,
                     "Cloister's reference values live in the KBS store (type = \"BuiltIn\")");
        return 0;
    }
    if (cl_cfg_read(c, rv, path, rvps_rows, base, err) < 0)
        return err->code;
    const char *st = json_string_value(json_object_get(rv, "storage_type"));
    if (st && (!cfg->storage_type || strcasecmp(st, cfg->storage_type) != 0))
        refuse_value(path, "storage_type", st,
                     "reference values share [storage_backend] storage_type");
    return 0;
}

static const struct cl_cfg_field signer_rows[] = {
    CL_CFG_S("key_path", KC, signer_key_path, CL_CFG_FILE, NULL),
    CL_CFG_S("cert_path", KC, signer_cert_path, CL_CFG_FILE, NULL),
    CL_CFG_NO("cert_url", "give the chain as cert_path"),
    CL_CFG_END_ROW,
};

static const struct cl_cfg_field broker_rows[] = {
    CL_CFG_I("duration_min", KC, token_duration_min, 1, 1440, 0),
    CL_CFG_S("issuer_name", KC, token_issuer, 0, NULL),
    CL_CFG_K("profile_name"), /* read_broker */
    CL_CFG_K("type"),         /* read_broker */
    CL_CFG_NO("developer_name", "the EAR verifier id is Cloister's own"),
    CL_CFG_NO("build_name", "the EAR verifier id is Cloister's own"),
    CL_CFG_NO("policy_dir", "attestation policies live in [storage_backend]"),
    CL_CFG_K("verbose_token"), /* read_broker */
    CL_CFG_K("signer"),        /* read_broker, last */
    CL_CFG_END_ROW,
};

static int read_broker(struct cl_cfg *c, const json_t *broker, const char *wb, void *base,
                       struct cl_err *err)
{
    if (!json_is_object(broker))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", wb);
    if (cl_cfg_read(c, broker, wb, broker_rows, base, err) < 0)
        return err->code;
    const char *pn = json_string_value(json_object_get(broker, "profile_name"));
    if (json_object_get(broker, "profile_name") && (!pn || strcmp(pn, CL_AS_EAR_PROFILE) != 0))
        refuse_value(wb, "profile_name", pn ? pn : "?", "the EAR profile is " CL_AS_EAR_PROFILE);
    const char *bt = json_string_value(json_object_get(broker, "type"));
    if (json_object_get(broker, "type") && (!bt || strcasecmp(bt, "Ear") != 0))
        refuse_value(wb, "type", bt ? bt : "?", "tokens are EAR");
    json_t *vt = json_object_get(broker, "verbose_token");
    if (vt && !json_is_boolean(vt))
        return cl_err_set(err, CL_EINVAL, "config: '%s.verbose_token' must be true or false", wb);
    if (vt && json_is_false(vt))
        refuse("attestation_service.attestation_token_broker.verbose_token",
               "%s.verbose_token = false is not supported: the EAR always carries the "
               "annotated evidence",
               wb);
    json_t *signer = json_object_get(broker, "signer");
    char ws[CL_CFG_MAX_PATH];
    cl_cfg_join(ws, sizeof ws, wb, "signer");
    if (signer && !json_is_object(signer))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", ws);
    return signer ? cl_cfg_read(c, signer, ws, signer_rows, base, err) : 0;
}

static const struct cl_cfg_field as_rows[] = {
    CL_CFG_K("type"), /* read_as */
    CL_CFG_I("timeout", KC, session_timeout_min, 1, 1440, 0),
    CL_CFG_I("session_timeout_s", KC, session_timeout_s, 1, 86400, 0),
    CL_CFG_I("max_sessions", KC, max_sessions, 1, 10000000, 0),
    CL_CFG_B("allow_sample_tee_insecure", KC, allow_sample_tee_insecure),
    CL_CFG_F("verifier_config", read_verifier_config, NULL),
    CL_CFG_F("rvps_config", read_rvps, NULL),
    CL_CFG_F("attestation_token_broker", read_broker, NULL),
    CL_CFG_END_ROW,
};

static int parse_as(const json_t *as, struct cl_kbs_config *cfg, struct cl_err *err)
{
    const char *w = "attestation_service";
    json_t *type = json_object_get(as, "type");
    if (type && !json_is_string(type))
        return cl_err_set(err, CL_EINVAL, "config: 'attestation_service.type' must be a string");
    if (type && strcmp(json_string_value(type), "coco_as_builtin") != 0) {
        /* the other services' own keys (as_addr, base_url, ...) need no second refusal */
        refuse_value(w, "type", json_string_value(type),
                     "Cloister has the built-in attestation service only "
                     "(type = \"coco_as_builtin\")");
        return 0;
    }
    return cl_cfg_read(pc, as, w, as_rows, cfg, err);
}

/* ---- [[plugins]] ---- */

static const struct cl_cfg_field plugin_rows[] = {
    CL_CFG_K("name"), /* parse_plugins */
    CL_CFG_S("type", KC, resource_type, 0, NULL),
    CL_CFG_S("storage_backend_type", KC, resource_type, 0, NULL), /* after type: it wins */
    CL_CFG_S("dir_path", KC, resource_dir, 0, NULL),
    CL_CFG_END_ROW,
};

static int parse_plugins(const json_t *plugins, struct cl_kbs_config *cfg, struct cl_err *err)
{
    if (!json_is_array(plugins))
        return cl_err_set(err, CL_EINVAL,
                          "config: 'plugins' must be an array of tables ([[plugins]])");
    size_t i;
    json_t *p;
    json_array_foreach(plugins, i, p)
    {
        char where[32];
        snprintf(where, sizeof where, "plugins[%zu]", i);
        const char *name = NULL;
        if (cl_json_get_str(p, "name", &name, err) < 0)
            return cl_err_prefix(err, "config: %s", where);
        if (strcmp(name, "resource") != 0) {
            refuse_value(where, "name", name, "Cloister has the resource plugin only");
            continue;
        }
        if (cl_cfg_read(pc, p, where, plugin_rows, cfg, err) < 0)
            return err->code;
        const char *rt = cfg->resource_type;
        const char *key =
            json_object_get(p, "storage_backend_type") ? "storage_backend_type" : "type";
        if (rt && strcasecmp(rt, "kvstorage") != 0 && strcasecmp(rt, "LocalFs") != 0 &&
            strcasecmp(rt, "Memory") != 0) {
            refuse_value(where, key, rt, "resources live in the KBS store (kvstorage)");
        }
        if (rt && strcasecmp(rt, "kvstorage") == 0) {
            free(cfg->resource_type);
            cfg->resource_type = NULL;
        }
    }
    return 0;
}

/* ---- the tables read by rows (toml/cfg.h) ---- */

/* Each table below: adding a key is one row (toml/cfg.h), plus its docs/configuration.md line
 * and, when shown by --check, its place in cl_kbs_config_effective. */
static const struct cl_cfg_field http_rows[] = {
    CL_CFG_A("sockets", KC, sockets, nsockets, CL_KBS_MAX_SOCKETS, 0),
    CL_CFG_B("insecure_http", KC, insecure_http),
    CL_CFG_S("private_key", KC, tls_key_path, 0, NULL),
    CL_CFG_S("certificate", KC, tls_cert_path, 0, NULL),
    CL_CFG_IS("payload_request_size", KC, payload_max, 1, 64, 0, 1024 * 1024),
    CL_CFG_I("worker_count", KC, worker_count, 1, 256, 4),
    CL_CFG_I("request_timeout", KC, request_timeout_s, 1, 3600, CL_HTTP_DEFAULT_REQUEST_TIMEOUT_S),
    CL_CFG_S("tls_profile", KC, tls_profile, 0, "intermediate"),
    CL_CFG_S("tls_min_version", KC, tls_min_version, 0, NULL),
    CL_CFG_S("tls_max_version", KC, tls_max_version, 0, NULL),
    CL_CFG_S("tls_ciphers", KC, tls_ciphers, 0, NULL),
    CL_CFG_S("tls_groups", KC, tls_groups, 0, NULL),
    CL_CFG_END_ROW,
};

static const struct cl_cfg_field token_rows[] = {
    CL_CFG_A("trusted_certs_paths", KC, trusted_certs_paths, ntrusted_certs, CL_KBS_MAX_TRUSTED,
             CL_CFG_FILE),
    CL_CFG_A("trusted_jwk_sets", KC, trusted_jwk_sets, ntrusted_jwk_sets, CL_KBS_MAX_TRUSTED, 0),
    CL_CFG_A("extra_teekey_paths", KC, extra_teekey_paths, nextra_teekey_paths, CL_KBS_MAX_TRUSTED,
             0),
    CL_CFG_B("insecure_header_jwk", KC, insecure_header_jwk),
    CL_CFG_K("insecure_key"), /* trustee's older name of insecure_header_jwk: read_token */
    CL_CFG_END_ROW,
};

static const struct cl_cfg_field local_fs_rows[] = {
    CL_CFG_S("dir_path", KC, storage_dir, 0, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field local_json_rows[] = {
    CL_CFG_K("file_dir_path"),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field postgres_rows[] = {
    CL_CFG_S("db", KC, pg.db, 0, NULL),
    CL_CFG_S("username", KC, pg.user, 0, NULL),
    CL_CFG_S("password", KC, pg.password, CL_CFG_SECRET, NULL),
    CL_CFG_S("host", KC, pg.host, 0, NULL),
    CL_CFG_I("port", KC, pg.port, 1, 65535, 0),
    CL_CFG_I("pool_size", KC, store_pool_size, 1, 256, 0),
    CL_CFG_I("timeout_ms", KC, store_timeout_ms, 100, 600000, 0),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field redis_rows[] = {
    CL_CFG_S("url", KC, redis_url, CL_CFG_SECRET, NULL),
    CL_CFG_I("pool_size", KC, store_pool_size, 1, 256, 0),
    CL_CFG_I("timeout_ms", KC, store_timeout_ms, 100, 600000, 0),
    CL_CFG_END_ROW,
};

static int read_local_json(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                           struct cl_err *err)
{
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    if (cl_cfg_read(c, v, path, local_json_rows, base, err) < 0)
        return err->code;
    cl_warn("config: '%s' is unused (Cloister has no LocalJson backend)", path);
    return 0;
}

static const struct cl_cfg_field backend_rows[] = {
    CL_CFG_T("local_fs", local_fs_rows),
    CL_CFG_F("local_json", read_local_json, NULL),
    CL_CFG_T("postgres", postgres_rows),
    CL_CFG_T("redis", redis_rows),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field storage_rows[] = {
    CL_CFG_S("storage_type", KC, storage_type, 0, "Memory"),
    CL_CFG_K("backends"), /* read after storage_type is judged: read_storage */
    /* a file or a pkcs11: URI, both opened by cl_store_seal_check for --check */
    CL_CFG_S("encryption_key_path", KC, seal_key_path, CL_CFG_URI_PIN, NULL),
    CL_CFG_A("encryption_old_key_paths", KC, seal_old_paths, nseal_old, 8, CL_CFG_URI_PIN),
    CL_CFG_END_ROW,
};

static const struct cl_cfg_field policy_engine_rows[] = {
    CL_CFG_S("policy_path", KC, policy_path, 0, NULL),
    CL_CFG_END_ROW,
};

static int read_http(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                     struct cl_err *err)
{
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    if (cl_cfg_read(c, v, path, http_rows, base, err) < 0)
        return err->code;
    return build_tls_priorities(base, err);
}

static int read_token(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                      struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    if (cl_cfg_read(c, v, path, token_rows, base, err) < 0)
        return err->code;
    json_t *ik = json_object_get(v, "insecure_key");
    if (ik && !json_is_boolean(ik))
        return cl_err_set(err, CL_EINVAL, "config: '%s.insecure_key' must be true or false", path);
    cfg->insecure_header_jwk = cfg->insecure_header_jwk || json_is_true(ik);
    for (size_t i = 0; i < cfg->ntrusted_jwk_sets; i++)
        if (strncmp(cfg->trusted_jwk_sets[i], "http://", 7) == 0) {
            char jp[64];
            snprintf(jp, sizeof jp, "attestation_token.trusted_jwk_sets[%zu]", i);
            refuse(jp, "%s = \"%.128s\": plain http is not trusted for keys: use https://", jp,
                   cfg->trusted_jwk_sets[i]);
        }
    return 0;
}

/* [storage_backend]: trustee's key-value-storage configuration. */
static int read_storage(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                        struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    if (cl_cfg_read(c, v, path, storage_rows, base, err) < 0)
        return err->code;
    if (cfg->nseal_old && !cfg->seal_key_path)
        return cl_err_set(err, CL_EINVAL,
                          "config: 'storage_backend.encryption_old_key_paths' needs "
                          "'storage_backend.encryption_key_path' (the current key)");
    if (cfg->storage_type && !cl_store_type_canonical(cfg->storage_type))
        refuse_value(
            "storage_backend", "storage_type", cfg->storage_type,
            "Cloister has Memory, LocalFs, Postgres and Redis (LocalJson is not implemented)");
    json_t *be = json_object_get(v, "backends");
    if (!be)
        return 0;
    if (!json_is_object(be))
        return cl_err_set(err, CL_EINVAL, "config: 'storage_backend.backends' must be a table");
    return cl_cfg_read(c, be, "storage_backend.backends", backend_rows, base, err);
}

static int read_session_type(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                             struct cl_err *err)
{
    struct cl_kbs_config *cfg = base;
    if (!json_is_string(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a string", path);
    if (!(cfg->session_storage_type = strdup(json_string_value(v))))
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (!cl_store_type_canonical(cfg->session_storage_type))
        refuse_value("", "session_storage_type", cfg->session_storage_type,
                     "Cloister has Memory, LocalFs, Postgres and Redis");
    return 0;
}

static int read_as(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                   struct cl_err *err)
{
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    return parse_as(v, base, err);
}

static int read_admin(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                      struct cl_err *err)
{
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", path);
    return parse_admin(v, base, err);
}

static int read_plugins(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                        struct cl_err *err)
{
    return parse_plugins(v, base, err);
}

static const struct cl_cfg_field top_rows[] = {
    CL_CFG_F("http_server", read_http, NULL),
    CL_CFG_F("attestation_token", read_token, NULL),
    CL_CFG_F("storage_backend", read_storage, NULL),
    CL_CFG_F("session_storage_type", read_session_type, NULL),
    CL_CFG_F("attestation_service", read_as, NULL),
    CL_CFG_F("admin", read_admin, NULL),
    CL_CFG_T("policy_engine", policy_engine_rows),
    CL_CFG_F("plugins", read_plugins, NULL),
    CL_CFG_END_ROW,
};

/* rediss://'s files: the environment only, as trustee's url has no place for them. A
 * client certificate without its key (or the reverse) is refused here, by name. */
static int read_redis_tls_env(struct cl_kbs_config *cfg, struct cl_err *err)
{
    const struct {
        const char *env;
        char **field;
    } vars[] = {
        {"CLOISTER_REDIS_CA_FILE", &cfg->redis_ca_file},
        {"CLOISTER_REDIS_CERT_FILE", &cfg->redis_cert_file},
        {"CLOISTER_REDIS_KEY_FILE", &cfg->redis_key_file},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i].env);
        if (v && *v && !(*vars[i].field = strdup(v)))
            return cl_err_set(err, CL_ENOMEM, "config: out of memory");
    }
    if (!cfg->redis_cert_file != !cfg->redis_key_file)
        return cl_err_set(
            err, CL_EINVAL,
            "config: %s is set without %s: a Redis client certificate needs its "
            "key (set both or neither)",
            cfg->redis_cert_file ? "CLOISTER_REDIS_CERT_FILE" : "CLOISTER_REDIS_KEY_FILE",
            cfg->redis_cert_file ? "CLOISTER_REDIS_KEY_FILE" : "CLOISTER_REDIS_CERT_FILE");
    return 0;
}

static int parse_doc(const json_t *doc, struct cl_kbs_config *cfg, struct cl_err *err)
{
    if (cl_cfg_read(pc, doc, "", top_rows, cfg, err) < 0)
        return err->code;
    if (!json_object_get(doc, "http_server") && build_tls_priorities(cfg, err) < 0)
        return err->code;
    /* The environment wins over the file, as in trustee: credentials from a secret store. */
    const char *env_pg = getenv("POSTGRES_URL"), *env_rd = getenv("REDIS_URL");
    if (env_pg && *env_pg && !(cfg->pg.url = strdup(env_pg)))
        return cl_err_set(err, CL_ENOMEM, "config: out of memory");
    if (env_rd && *env_rd) {
        free(cfg->redis_url);
        if (!(cfg->redis_url = strdup(env_rd)))
            return cl_err_set(err, CL_ENOMEM, "config: out of memory");
    }
    if (read_redis_tls_env(cfg, err) < 0)
        return err->code;
    /* ---- consistency ---- */
    if (cfg->nsockets == 0) {
        if (!(cfg->sockets[0] = strdup("127.0.0.1:8080")))
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        cfg->nsockets = 1;
    }
    if (!cfg->insecure_http && (!cfg->tls_key_path || !cfg->tls_cert_path))
        return cl_err_set(
            err, CL_EINVAL,
            "config: HTTPS needs 'http_server.private_key' and 'http_server.certificate' "
            "(or set insecure_http = true for plain HTTP)");
    return 0;
}

int cl_kbs_config_parse_named(const char *text, size_t len, const char *file,
                              struct cl_kbs_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    cl_kbs_config_defaults(cfg);
    CL_AUTO(json_t) *doc = cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "config %s", file ? file : "");
    struct cl_cfg ctx;
    cl_cfg_begin(&ctx, "config", file, text, len);
    pc = &ctx;
    int rc = cl_cfg_finish(&ctx, parse_doc(doc, cfg, err), err);
    pc = NULL;
    if (rc < 0) {
        cl_kbs_config_clear(cfg);
        return rc;
    }
    return 0;
}

int cl_kbs_config_parse(const char *text, size_t len, struct cl_kbs_config *cfg, struct cl_err *err)
{
    return cl_kbs_config_parse_named(text, len, NULL, cfg, err);
}

int cl_kbs_config_load(const char *path, struct cl_kbs_config *cfg, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_KBS_MAX_CONFIG, &n, err);
    if (!text)
        return cl_err_prefix(err, "config");
    return cl_kbs_config_parse_named((const char *)text, n, path, cfg, err);
}

/* ---- effective configuration (--check) ---- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const char *admin_mode_name(enum cl_kbs_admin_mode m)
{
    switch (m) {
    case CL_KBS_ADMIN_ALLOW_ALL_INSECURE:
        return "InsecureAllowAll";
    case CL_KBS_ADMIN_PERSONAS:
        return "Simple";
    case CL_KBS_ADMIN_BEARER_JWT:
        return "AuthenticatedAuthorization";
    case CL_KBS_ADMIN_DENY_ALL:
        break;
    }
    return "DenyAll";
}

json_t *cl_kbs_config_effective(const struct cl_kbs_config *cfg)
{
    CL_AUTO(json_t) *doc = json_object();
    if (!doc)
        return NULL;
    json_object_set_new(doc, "http_server", cl_cfg_effective(http_rows, cfg));
    json_object_set_new(doc, "attestation_token", cl_cfg_effective(token_rows, cfg));
    json_t *signer = cfg->signer_key_path
                         ? json_pack("{s:s, s:o}", "key_path", cfg->signer_key_path, "cert_path",
                                     str_or_null(cfg->signer_cert_path))
                         : json_null();
    json_t *as = json_pack(
        "{s:s, s:I, s:I, s:b, s:{s:I, s:s, s:s, s:o}, s:{s:s}}", "type", "coco_as_builtin",
        "timeout", (json_int_t)cfg->session_timeout_min, "max_sessions",
        (json_int_t)cfg->max_sessions, "allow_sample_tee_insecure", cfg->allow_sample_tee_insecure,
        "attestation_token_broker", "duration_min", (json_int_t)cfg->token_duration_min,
        "issuer_name", cfg->token_issuer ? cfg->token_issuer : "CoCo-Attestation-Service",
        "profile_name", CL_AS_EAR_PROFILE, "signer", signer, "rvps_config", "type", "BuiltIn");
    if (as && cfg->session_timeout_s)
        json_object_set_new(as, "session_timeout_s", json_integer(cfg->session_timeout_s));
    json_object_set_new(doc, "attestation_service", as);
    json_t *admin = json_pack("{s:s}", "authorization_mode", admin_mode_name(cfg->admin_mode));
    if (admin && cfg->npersonas) {
        json_t *ps = json_array();
        for (size_t i = 0; i < cfg->npersonas; i++)
            json_array_append_new(ps, json_pack("{s:s}", "id", cfg->personas[i].id));
        json_object_set_new(admin, "personas", ps);
    }
    if (admin && cfg->admin_mode == CL_KBS_ADMIN_BEARER_JWT) {
        json_t *ips = json_array(), *acls = json_array();
        for (size_t i = 0; i < cfg->nidps; i++)
            json_array_append_new(
                ips, json_pack("{s:o, s:o, s:o}", "issuer", str_or_null(cfg->idps[i].issuer),
                               "audience", str_or_null(cfg->idps[i].audience), "public_key_uri",
                               str_or_null(cfg->idps[i].key_uri)));
        for (size_t i = 0; i < cfg->nacls; i++)
            json_array_append_new(acls, json_pack("{s:s, s:s}", "role", cfg->acls[i].role,
                                                  "allowed_endpoints", cfg->acls[i].pattern));
        json_object_set_new(admin, "authentication",
                            json_pack("{s:{s:o}}", "bearer_jwt", "identity_providers", ips));
        json_object_set_new(admin, "authorization",
                            json_pack("{s:{s:o}}", "regex_acl", "acls", acls));
    }
    json_object_set_new(doc, "admin", admin);
    json_object_set_new(doc, "policy_engine", cl_cfg_effective(policy_engine_rows, cfg));
    json_object_set_new(doc, "storage_backend",
                        json_pack("{s:s, s:{s:{s:o}}}", "storage_type",
                                  cfg->storage_type ? cfg->storage_type : "Memory", "backends",
                                  "local_fs", "dir_path", str_or_null(cfg->storage_dir)));
    json_t *plug = json_pack("{s:s, s:s}", "name", "resource", "storage_backend_type",
                             cfg->resource_type ? cfg->resource_type : "kvstorage");
    if (plug && cfg->resource_dir)
        json_object_set_new(plug, "dir_path", json_string(cfg->resource_dir));
    json_object_set_new(doc, "plugins", json_pack("[o]", plug));
    return CL_STEAL(doc);
}

static int check_file(const char *key, const char *path, struct cl_err *err)
{
    if (!path)
        return 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, CL_KBS_MAX_CONFIG * 16, NULL, err);
    return b ? 0 : cl_err_prefix(err, "config: '%s'", key);
}

int cl_kbs_config_check_files(const struct cl_kbs_config *cfg, struct cl_err *err)
{
    if (!cfg->insecure_http && (check_file("http_server.private_key", cfg->tls_key_path, err) < 0 ||
                                check_file("http_server.certificate", cfg->tls_cert_path, err) < 0))
        return err->code;
    if (check_file("CLOISTER_REDIS_CA_FILE", cfg->redis_ca_file, err) < 0 ||
        check_file("CLOISTER_REDIS_CERT_FILE", cfg->redis_cert_file, err) < 0 ||
        check_file("CLOISTER_REDIS_KEY_FILE", cfg->redis_key_file, err) < 0)
        return err->code;
    if (cl_cfg_check_files("config", token_rows, cfg, "attestation_token", CL_KBS_MAX_CONFIG * 16,
                           NULL, err) < 0)
        return err->code;
    {
        CL_AUTO(json_t) *keys = cl_kbs_jwks_load(cfg, err);
        if (!keys && err->code < 0)
            return err->code;
    }
    /* the files named in the tables below (CL_CFG_FILE rows), in the file's order */
    static const struct {
        const char *where;
        const struct cl_cfg_field *rows;
    } files[] = {
        {"attestation_service.attestation_token_broker.signer", signer_rows},
        {"attestation_service.verifier_config.tpm_verifier", tpm_rows},
        {"attestation_service.verifier_config.cca_verifier", cca_rows},
        {"storage_backend", storage_rows},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(files); i++)
        if (cl_cfg_check_files("config", files[i].rows, cfg, files[i].where, CL_KBS_MAX_CONFIG * 16,
                               NULL, err) < 0)
            return err->code;
    /* the encryption keys at rest: files read, token keys found and logged in to */
    if (cfg->seal_key_path &&
        cl_store_seal_check(cfg->seal_key_path, (const char *const *)cfg->seal_old_paths,
                            cfg->nseal_old, err) < 0)
        return cl_err_prefix(err, "config: 'storage_backend.encryption_key_path'");
    if (cfg->policy_path) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *text = cl_file_read(cfg->policy_path, CL_AS_MAX_POLICY, &n, err);
        if (!text)
            return cl_err_prefix(err, "config: 'policy_engine.policy_path'");
        if (cl_kbs_policy_check((const char *)text, n, err) < 0)
            return cl_err_prefix(err, "config: 'policy_engine.policy_path' %s", cfg->policy_path);
    }
    return 0;
}

json_t *cl_kbs_jwks_load(const struct cl_kbs_config *cfg, struct cl_err *err)
{
    if (!cfg->ntrusted_jwk_sets)
        return NULL;
    CL_AUTO(json_t) *all = json_array();
    if (!all) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cfg->ntrusted_jwk_sets; i++) {
        char what[256];
        snprintf(what, sizeof what, "config: 'attestation_token.trusted_jwk_sets[%zu]' %.100s", i,
                 cfg->trusted_jwk_sets[i]);
        if (cl_kbs_jwks_source(what, cfg->trusted_jwk_sets[i], all, err) < 0)
            return NULL;
    }
    return CL_STEAL(all);
}
