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
#include "toml/toml.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* ---- refusal reporting: dotted path + file:line ---- */

/* The parse in progress (config parsing is single-threaded per call; thread-local so two
 * parses on two threads cannot mix). */
struct pctx {
    const char *file; /* NULL → "<config>" */
    const char *text;
    size_t len;
    unsigned nbad;
    struct cl_err first;
};
static _Thread_local struct pctx *pc;

/* Refusals beyond this many are counted but neither located nor logged one by one. */
#define CL_KBS_MAX_REFUSALS_LOGGED 64

/* Header of a line "[a.b]" / "[[a]]" → "a.b" (spaces dropped) into out. */
static void header_name(const char *s, size_t n, char *out, size_t cap, bool *array)
{
    size_t o = 0, i = 0;
    *array = n > 1 && s[1] == '[';
    for (i = *array ? 2 : 1; i < n && s[i] != ']' && o + 1 < cap; i++)
        if (!isspace((unsigned char)s[i]) && s[i] != '"')
            out[o++] = s[i];
    out[o] = 0;
}

/* Drops "[N]" parts: "plugins[1].type" → "plugins.type"; *idx = the first index (or -1). */
static void strip_index(const char *in, char *out, size_t cap, long *idx)
{
    size_t o = 0;
    *idx = -1;
    for (const char *p = in; *p && o + 1 < cap; p++) {
        if (*p == '[') {
            if (*idx < 0)
                *idx = strtol(p + 1, NULL, 10);
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
            continue;
        }
        out[o++] = *p;
    }
    out[o] = 0;
}

/* The 1-based line of a dotted key path in the text, or of its nearest enclosing table that
 * appears; 0 when nothing matches. Good for the usual layouts (headers, dotted keys, one key
 * per line); an inline table's member reports the line of the key holding the table. */
static unsigned key_line(const char *text, size_t len, const char *path)
{
    char want[256];
    long want_idx;
    strip_index(path, want, sizeof want, &want_idx);
    while (want[0]) {
        char hdr[256] = "";
        long occ = -1; /* occurrence of the current [[array]] header */
        char arrname[256] = "";
        unsigned line = 1, best = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            size_t i = 0;
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (i < n && p[i] == '[') {
                bool arr;
                header_name(p + i, n - i, hdr, sizeof hdr, &arr);
                if (arr) {
                    if (strcmp(arrname, hdr) != 0) {
                        snprintf(arrname, sizeof arrname, "%s", hdr);
                        occ = -1;
                    }
                    occ++;
                }
                bool idx_ok =
                    want_idx < 0 || strncmp(hdr, arrname, strlen(arrname)) != 0 || occ == want_idx;
                if (strcmp(hdr, want) == 0 && idx_ok && !best)
                    best = line;
            } else if (i < n && p[i] != '#') {
                char full[512], lhs[256];
                size_t o = 0;
                for (; i < n && p[i] != '=' && o + 1 < sizeof lhs; i++)
                    if (!isspace((unsigned char)p[i]) && p[i] != '"')
                        lhs[o++] = p[i];
                lhs[o] = 0;
                if (i < n && o) {
                    snprintf(full, sizeof full, "%s%s%s", hdr, hdr[0] ? "." : "", lhs);
                    bool idx_ok = want_idx < 0 || !arrname[0] || occ == want_idx;
                    if (strcmp(full, want) == 0 && idx_ok && !best)
                        best = line;
                }
            }
            line++;
            p = nl ? nl + 1 : end;
        }
        if (best)
            return best;
        char *dot = strrchr(want, '.');
        if (!dot)
            break;
        *dot = 0;
    }
    return 0;
}

/* Records one refusal of the key at `path` (logged now, the first kept for the caller). */
CL_PRINTF(2, 3) static void refuse(const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = pc && pc->file ? pc->file : "<config>";
    /* each lookup scans the file: capped so that a file of many bad keys stays linear */
    unsigned line =
        pc && pc->nbad < CL_KBS_MAX_REFUSALS_LOGGED ? key_line(pc->text, pc->len, path) : 0;
    char full[768];
    if (line)
        snprintf(full, sizeof full, "%s:%u: %s", file, line, msg);
    else
        snprintf(full, sizeof full, "%s: %s", file, msg);
    if (!pc || pc->nbad < CL_KBS_MAX_REFUSALS_LOGGED)
        cl_error("config: %s", full);
    if (!pc)
        return;
    if (pc->nbad++ == 0)
        cl_err_set(&pc->first, CL_EINVAL, "config: %s", full);
}

static void join(char *out, size_t cap, const char *where, const char *key)
{
    snprintf(out, cap, "%s%s%s", where, *where ? "." : "", key);
}

/* Every key of tbl must be in `known`; each other one is refused by its dotted path. */
static void check_keys(const json_t *tbl, const char *where, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)tbl, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], k) == 0;
        if (!ok) {
            char path[256];
            join(path, sizeof path, where, k);
            refuse(path, "'%s' is not a key Cloister supports", path);
        }
    }
}

/* A key Cloister knows but does not implement: refused unless it holds an "off" value
 * (empty array/table, false, or the one value Cloister behaves as). */
static void refuse_unless_empty(const json_t *tbl, const char *key, const char *where,
                                const char *why)
{
    json_t *v = json_object_get(tbl, key);
    if (!v)
        return;
    bool empty = (json_is_array(v) && json_array_size(v) == 0) ||
                 (json_is_object(v) && json_object_size(v) == 0) || json_is_false(v);
    if (empty)
        return;
    char path[256];
    join(path, sizeof path, where, key);
    refuse(path, "'%s' is not supported: %s", path, why);
}

/* "must be one of": value of a string key refused by name. */
static void refuse_value(const char *where, const char *key, const char *value, const char *why)
{
    char path[256];
    join(path, sizeof path, where, key);
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
    for (size_t i = 0; i < CL_ARRAY_LEN(cfg->tee_strings); i++)
        free(cfg->tee_strings[i]);
    for (size_t i = 0; i < CL_ARRAY_LEN(cfg->cca_csv_strings); i++)
        free(cfg->cca_csv_strings[i]);
    memset(cfg, 0, sizeof *cfg);
}

static int get_table(const json_t *parent, const char *key, const char *where, json_t **out,
                     struct cl_err *err)
{
    json_t *v = json_object_get(parent, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s%s%s' must be a table", where,
                          *where ? "." : "", key);
    *out = v;
    return 0;
}

static int opt_str(const json_t *t, const char *key, const char *where, char **out,
                   struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be a string", where, key);
    free(*out);
    *out = strdup(json_string_value(v));
    return *out ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

static int opt_bool(const json_t *t, const char *key, const char *where, bool *out,
                    struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

static int opt_uint(const json_t *t, const char *key, const char *where, json_int_t min,
                    json_int_t max, json_int_t *out, struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 1;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be an integer in [%lld, %lld]",
                          where, key, (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static int str_list(const json_t *t, const char *key, const char *where, char **arr, size_t cap,
                    size_t *n, struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be an array of strings", where,
                          key);
    if (json_array_size(v) > cap)
        return cl_err_set(err, CL_ELIMIT, "config: '%s.%s' holds more than %zu entries", where, key,
                          cap);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return cl_err_set(err, CL_EINVAL, "config: '%s.%s[%zu]' must be a string", where, key,
                              i);
        arr[*n] = strdup(json_string_value(e));
        if (!arr[*n])
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        (*n)++;
    }
    return 0;
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

/* [admin.authentication.bearer_jwt] identity_providers and [admin.authorization.regex_acl]. */
static int parse_admin_authn(const json_t *admin, struct cl_kbs_config *cfg, struct cl_err *err)
{
    json_t *authn = NULL, *authz = NULL, *bj = NULL, *ra = NULL;
    if (get_table(admin, "authentication", "admin", &authn, err) < 0 ||
        get_table(admin, "authorization", "admin", &authz, err) < 0)
        return err->code;
    if (authn) {
        static const char *const k[] = {"bearer_jwt", NULL};
        check_keys(authn, "admin.authentication", k);
        if (get_table(authn, "bearer_jwt", "admin.authentication", &bj, err) < 0)
            return err->code;
    }
    if (authz) {
        static const char *const k[] = {"regex_acl", NULL};
        check_keys(authz, "admin.authorization", k);
        if (get_table(authz, "regex_acl", "admin.authorization", &ra, err) < 0)
            return err->code;
    }
    if (bj) {
        static const char *const k[] = {"identity_providers", NULL};
        check_keys(bj, "admin.authentication.bearer_jwt", k);
        json_t *ips = json_object_get(bj, "identity_providers");
        if (ips && !json_is_array(ips))
            return cl_err_set(err, CL_EINVAL,
                              "config: 'admin.authentication.bearer_jwt.identity_providers' must "
                              "be an array of tables");
        if (json_array_size(ips) > CL_KBS_MAX_PERSONAS)
            return cl_err_set(err, CL_ELIMIT, "config: more than %d identity providers",
                              CL_KBS_MAX_PERSONAS);
        size_t i;
        json_t *ip;
        json_array_foreach(ips, i, ip)
        {
            char where[96];
            snprintf(where, sizeof where, "admin.authentication.bearer_jwt.identity_providers[%zu]",
                     i);
            if (!json_is_object(ip))
                return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", where);
            static const char *const ik[] = {"issuer", "audience", "public_key_uri", "jwk_set_uri",
                                             NULL};
            check_keys(ip, where, ik);
            struct cl_kbs_idp *d = &cfg->idps[cfg->nidps++];
            if (opt_str(ip, "issuer", where, &d->issuer, err) < 0 ||
                opt_str(ip, "audience", where, &d->audience, err) < 0 ||
                opt_str(ip, "public_key_uri", where, &d->key_uri, err) < 0)
                return err->code;
            char path[160];
            snprintf(path, sizeof path, "%s.jwk_set_uri", where);
            if (json_object_get(ip, "jwk_set_uri"))
                refuse(path, "'%s' is not supported: give the issuer's key as public_key_uri",
                       path);
            else if (!d->key_uri)
                return cl_err_set(err, CL_EINVAL, "config: '%s' needs public_key_uri", where);
            snprintf(path, sizeof path, "%s.public_key_uri", where);
            if (d->key_uri && load_idp_key(d->key_uri, path, &d->key, err) < 0)
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
    }
    if (ra) {
        static const char *const k[] = {"acls", NULL};
        check_keys(ra, "admin.authorization.regex_acl", k);
        json_t *acls = json_object_get(ra, "acls");
        if (acls && !json_is_array(acls))
            return cl_err_set(
                err, CL_EINVAL,
                "config: 'admin.authorization.regex_acl.acls' must be an array of tables");
        if (json_array_size(acls) > CL_KBS_MAX_ACLS)
            return cl_err_set(err, CL_ELIMIT, "config: more than %d admin ACL entries",
                              CL_KBS_MAX_ACLS);
        size_t i;
        json_t *a;
        json_array_foreach(acls, i, a)
        {
            char where[96];
            snprintf(where, sizeof where, "admin.authorization.regex_acl.acls[%zu]", i);
            static const char *const ak[] = {"role", "allowed_endpoints", NULL};
            if (!json_is_object(a))
                return cl_err_set(err, CL_EINVAL, "config: '%s' must be a table", where);
            check_keys(a, where, ak);
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
                    "config: '%s.allowed_endpoints' = \"%.128s\" is not a POSIX extended regex",
                    where, re);
            cfg->nacls++;
            if (!(d->role = strdup(role)) || !(d->pattern = strdup(re)))
                return cl_err_set(err, CL_ENOMEM, "out of memory");
        }
    }
    return 0;
}

static int parse_admin(const json_t *admin, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const known[] = {
        "type",     "authorization_mode", "insecure_api",  "auth_public_key",
        "personas", "authentication",     "authorization", NULL};
    check_keys(admin, "admin", known);
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
    bool insecure_api = false;
    if (opt_bool(admin, "insecure_api", "admin", &insecure_api, err) < 0)
        return err->code;
    json_t *pk = json_object_get(admin, "auth_public_key");
    if (pk) {
        if (!json_is_string(pk))
            return cl_err_set(err, CL_EINVAL, "config: 'admin.auth_public_key' must be a path");
        if (add_persona(cfg, "admin", json_string_value(pk), err) < 0)
            return err->code;
    }
    json_t *ps = json_object_get(admin, "personas");
    if (ps) {
        if (!json_is_array(ps))
            return cl_err_set(err, CL_EINVAL,
                              "config: 'admin.personas' must be an array of tables");
        size_t i;
        json_t *p;
        json_array_foreach(ps, i, p)
        {
            const char *id = NULL, *path = NULL;
            if (cl_json_get_str(p, "id", &id, err) < 0 ||
                cl_json_get_str(p, "public_key_path", &path, err) < 0)
                return cl_err_prefix(err, "config: admin.personas[%zu]", i);
            if (add_persona(cfg, id, path, err) < 0)
                return err->code;
        }
    }
    if (parse_admin_authn(admin, cfg, err) < 0)
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

/* A string setting of the verifiers, owned by cfg->tee_strings[slot]. */
static int tee_str(const json_t *t, const char *key, const char *where, struct cl_kbs_config *cfg,
                   size_t slot, const char **out, struct cl_err *err)
{
    if (opt_str(t, key, where, &cfg->tee_strings[slot], err) < 0)
        return err ? err->code : CL_EINVAL;
    if (cfg->tee_strings[slot])
        *out = cfg->tee_strings[slot];
    return 0;
}

/* [attestation_service.verifier_config.cca_verifier] (local appraisal: ta_store, rv_store) and
 * [attestation_service.verifier_config.csv_verifier] (cert_dir). */
static int parse_cca_csv_config(const json_t *vc, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const struct {
        const char *table;
        const char *const keys[3]; /* NULL-terminated */
    } tables[] = {{"cca_verifier", {"ta_store", "rv_store", NULL}},
                  {"csv_verifier", {"cert_dir", NULL}}};
    const char **dst[] = {&cfg->tee.cca_ta_store, &cfg->tee.cca_rv_store, &cfg->tee.csv_cert_dir};
    size_t slot = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(tables); i++) {
        char where[96];
        snprintf(where, sizeof where, "attestation_service.verifier_config.%s", tables[i].table);
        json_t *t = NULL;
        if (get_table(vc, tables[i].table, "attestation_service.verifier_config", &t, err) < 0)
            return err ? err->code : CL_EINVAL;
        if (t)
            check_keys(t, where, tables[i].keys);
        for (size_t k = 0; tables[i].keys[k]; k++, slot++) {
            if (t && opt_str(t, tables[i].keys[k], where, &cfg->cca_csv_strings[slot], err) < 0)
                return err ? err->code : CL_EINVAL;
            if (cfg->cca_csv_strings[slot])
                *dst[slot] = cfg->cca_csv_strings[slot];
        }
    }
    return 0;
}

/* [attestation_service.verifier_config] with trustee's sub-tables (docs/verifiers.md). */
static int parse_verifier_config(const json_t *vc, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const known[] = {"snp_verifier",         "dcap_verifier",
                                        "tpm_verifier",         "nvidia_verifier",
                                        "cca_verifier",         "csv_verifier",
                                        "nvidia_dpu_verifier",  "allow_debug_insecure",
                                        "verify_time_insecure", NULL};
    const char *w = "attestation_service.verifier_config";
    check_keys(vc, w, known);
    refuse_unless_empty(vc, "nvidia_verifier", w,
                        "the NVIDIA verifier has no settings (local verification)");
    refuse_unless_empty(vc, "nvidia_dpu_verifier", w,
                        "the NVIDIA verifier has no settings (local verification)");
    struct cl_tee_config *t = &cfg->tee;
    json_int_t n = 0;
    int rc;
    if (opt_bool(vc, "allow_debug_insecure", w, &t->allow_debug_insecure, err) < 0)
        return err ? err->code : CL_EINVAL;
    if ((rc = opt_uint(vc, "verify_time_insecure", w, 1, INT64_MAX, &n, err)) < 0)
        return rc;
    if (rc == 0)
        t->verify_time = (int64_t)n;
    json_t *snp = NULL, *dcap = NULL, *tpm = NULL;
    if (get_table(vc, "snp_verifier", w, &snp, err) < 0 ||
        get_table(vc, "dcap_verifier", w, &dcap, err) < 0 ||
        get_table(vc, "tpm_verifier", w, &tpm, err) < 0)
        return err ? err->code : CL_EINVAL;
    if (snp) {
        static const char *const sk[] = {"vcek_sources", "cert_cache", "kds_online", "kds_url",
                                         NULL};
        const char *ws = "attestation_service.verifier_config.snp_verifier";
        check_keys(snp, ws, sk);
        if (tee_str(snp, "cert_cache", ws, cfg, 0, &t->snp_cert_cache, err) < 0 ||
            tee_str(snp, "kds_url", ws, cfg, 1, &t->snp_kds_url, err) < 0 ||
            opt_bool(snp, "kds_online", ws, &t->snp_kds_online, err) < 0)
            return err ? err->code : CL_EINVAL;
        /* trustee: vcek_sources = [{type = "OfflineStore", path}, {type = "KDS", base_url}] */
        json_t *src = json_object_get(snp, "vcek_sources");
        size_t i;
        json_t *e;
        if (src && !json_is_array(src))
            return cl_err_set(err, CL_EINVAL,
                              "config: '%s.vcek_sources' must be an array of tables", ws);
        json_array_foreach(src, i, e)
        {
            const char *type = json_string_value(json_object_get(e, "type"));
            if (type && strcmp(type, "OfflineStore") == 0) {
                if (tee_str(e, "path", ws, cfg, 0, &t->snp_cert_cache, err) < 0)
                    return err ? err->code : CL_EINVAL;
            } else if (type && strcmp(type, "KDS") == 0) {
                t->snp_kds_online = true;
                if (tee_str(e, "base_url", ws, cfg, 1, &t->snp_kds_url, err) < 0)
                    return err ? err->code : CL_EINVAL;
            } else {
                return cl_err_set(err, CL_EINVAL,
                                  "config: '%s.vcek_sources[%zu].type' must be OfflineStore or KDS",
                                  ws, i);
            }
        }
    }
    if (dcap) {
        static const char *const dk[] = {"collateral_service",
                                         "collateral_dir",
                                         "pccs_url",
                                         "allow_tcb_status_insecure",
                                         "allow_expired_collateral_insecure",
                                         "sgx_collateral_dir",
                                         NULL};
        const char *wd = "attestation_service.verifier_config.dcap_verifier";
        check_keys(dcap, wd, dk);
        if (tee_str(dcap, "collateral_dir", wd, cfg, 2, &t->tdx_collateral_dir, err) < 0 ||
            tee_str(dcap, "pccs_url", wd, cfg, 3, &t->tdx_pccs_url, err) < 0 ||
            opt_bool(dcap, "allow_expired_collateral_insecure", wd,
                     &t->tdx_allow_expired_collateral_insecure, err) < 0)
            return err ? err->code : CL_EINVAL;
        if (tee_str(dcap, "sgx_collateral_dir", wd, cfg, 5, &t->sgx_collateral_dir, err) < 0)
            return err ? err->code : CL_EINVAL;
        /* trustee: collateral_service = PCS/PCCS URL, or file://<folder> */
        const char *cs = json_string_value(json_object_get(dcap, "collateral_service"));
        if (cs && strncmp(cs, "file://", 7) == 0) {
            free(cfg->tee_strings[2]);
            if (!(cfg->tee_strings[2] = strdup(cs + 7)))
                return cl_err_set(err, CL_ENOMEM, "out of memory");
            t->tdx_collateral_dir = cfg->tee_strings[2];
        } else if (cs &&
                   tee_str(dcap, "collateral_service", wd, cfg, 3, &t->tdx_pccs_url, err) < 0) {
            return err ? err->code : CL_EINVAL;
        }
        json_t *st = json_object_get(dcap, "allow_tcb_status_insecure");
        static const struct {
            const char *name;
            unsigned bit;
        } statuses[] = {
            {"SWHardeningNeeded", CL_TEE_TCB_SW_HARDENING_NEEDED},
            {"ConfigurationNeeded", CL_TEE_TCB_CONFIGURATION_NEEDED},
            {"OutOfDate", CL_TEE_TCB_OUT_OF_DATE},
            {"TDRelaunchAdvised", CL_TEE_TCB_TD_RELAUNCH_ADVISED},
        };
        size_t i;
        json_t *e;
        if (st && !json_is_array(st))
            return cl_err_set(err, CL_EINVAL,
                              "config: '%s.allow_tcb_status_insecure' must be an array of strings",
                              wd);
        json_array_foreach(st, i, e)
        {
            size_t k = 0;
            while (k < CL_ARRAY_LEN(statuses) &&
                   (!json_is_string(e) || strcmp(json_string_value(e), statuses[k].name) != 0))
                k++;
            if (k == CL_ARRAY_LEN(statuses))
                return cl_err_set(
                    err, CL_EINVAL,
                    "config: '%s.allow_tcb_status_insecure[%zu]' must be SWHardeningNeeded, "
                    "ConfigurationNeeded, OutOfDate or TDRelaunchAdvised",
                    wd, i);
            t->tdx_allow_tcb_insecure |= statuses[k].bit;
        }
    }
    if (tpm) {
        static const char *const tk[] = {"ak_ca_path", NULL};
        const char *wt = "attestation_service.verifier_config.tpm_verifier";
        check_keys(tpm, wt, tk);
        if (tee_str(tpm, "ak_ca_path", wt, cfg, 4, &t->tpm_ak_ca_path, err) < 0)
            return err ? err->code : CL_EINVAL;
    }
    if ((rc = parse_cca_csv_config(vc, cfg, err)) < 0)
        return rc;
    if (t->allow_debug_insecure)
        cl_insecure("allow_debug_insecure", "debug-enabled TEEs will be accepted");
    if (t->verify_time)
        cl_insecure("verify_time_insecure",
                    "certificates and collateral are checked at %lld, not now",
                    (long long)t->verify_time);
    return 0;
}

static int pool_opts(const json_t *t, const char *where, struct cl_kbs_config *cfg,
                     struct cl_err *err)
{
    json_int_t n = 0;
    int rc = opt_uint(t, "pool_size", where, 1, 256, &n, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        cfg->store_pool_size = (unsigned)n;
    if ((rc = opt_uint(t, "timeout_ms", where, 100, 600000, &n, err)) < 0)
        return rc;
    if (rc == 0)
        cfg->store_timeout_ms = (unsigned)n;
    return 0;
}

/* [storage_backend]: trustee's key-value-storage configuration. */
static int parse_storage(const json_t *sb, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const known[] = {"storage_type", "backends", "encryption_key_path",
                                        "encryption_old_key_paths", NULL};
    static const char *const known_be[] = {"local_fs", "local_json", "postgres", "redis", NULL};
    static const char *const known_fs[] = {"dir_path", NULL};
    static const char *const known_json[] = {"file_dir_path", NULL};
    static const char *const known_pg[] = {"db",   "username",  "password",   "port",
                                           "host", "pool_size", "timeout_ms", NULL};
    static const char *const known_rd[] = {"url", "pool_size", "timeout_ms", NULL};
    static const char *const w_fs = "storage_backend.backends.local_fs";
    static const char *const w_pg = "storage_backend.backends.postgres";
    static const char *const w_rd = "storage_backend.backends.redis";
    json_t *be = NULL, *fs = NULL, *js = NULL, *pg = NULL, *rd = NULL;
    json_int_t n = 0;
    int rc;
    /* unknown keys are refusals recorded by check_keys (exit 2 naming each); the values of
     * the known ones are type-checked here */
    check_keys(sb, "storage_backend", known);
    if (opt_str(sb, "storage_type", "storage_backend", &cfg->storage_type, err) < 0 ||
        get_table(sb, "backends", "storage_backend", &be, err) < 0 ||
        opt_str(sb, "encryption_key_path", "storage_backend", &cfg->seal_key_path, err) < 0 ||
        str_list(sb, "encryption_old_key_paths", "storage_backend", cfg->seal_old_paths,
                 CL_ARRAY_LEN(cfg->seal_old_paths), &cfg->nseal_old, err) < 0)
        return err->code;
    if (cfg->nseal_old && !cfg->seal_key_path)
        return cl_err_set(err, CL_EINVAL,
                          "config: 'storage_backend.encryption_old_key_paths' needs "
                          "'storage_backend.encryption_key_path' (the current key)");
    if (cfg->storage_type && !cl_store_type_canonical(cfg->storage_type))
        refuse_value(
            "storage_backend", "storage_type", cfg->storage_type,
            "Cloister has Memory, LocalFs, Postgres and Redis (LocalJson is not implemented)");
    if (!be)
        return 0;
    check_keys(be, "storage_backend.backends", known_be);
    if (get_table(be, "local_fs", "storage_backend.backends", &fs, err) < 0 ||
        get_table(be, "local_json", "storage_backend.backends", &js, err) < 0 ||
        get_table(be, "postgres", "storage_backend.backends", &pg, err) < 0 ||
        get_table(be, "redis", "storage_backend.backends", &rd, err) < 0)
        return err->code;
    if (fs) {
        check_keys(fs, w_fs, known_fs);
        if (opt_str(fs, "dir_path", w_fs, &cfg->storage_dir, err) < 0)
            return err->code;
    }
    if (js) {
        check_keys(js, "storage_backend.backends.local_json", known_json);
        cl_warn("config: 'storage_backend.backends.local_json' is unused (Cloister has no "
                "LocalJson backend)");
    }
    if (pg) {
        check_keys(pg, w_pg, known_pg);
        if (opt_str(pg, "db", w_pg, &cfg->pg.db, err) < 0 ||
            opt_str(pg, "username", w_pg, &cfg->pg.user, err) < 0 ||
            opt_str(pg, "password", w_pg, &cfg->pg.password, err) < 0 ||
            opt_str(pg, "host", w_pg, &cfg->pg.host, err) < 0 || pool_opts(pg, w_pg, cfg, err) < 0)
            return err->code;
        if ((rc = opt_uint(pg, "port", w_pg, 1, 65535, &n, err)) < 0)
            return rc;
        if (rc == 0)
            cfg->pg.port = (unsigned)n;
    }
    if (rd) {
        check_keys(rd, w_rd, known_rd);
        if (opt_str(rd, "url", w_rd, &cfg->redis_url, err) < 0 || pool_opts(rd, w_rd, cfg, err) < 0)
            return err->code;
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

/* ---- [attestation_service] ---- */

static int parse_as(const json_t *as, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const known[] = {"type",
                                        "timeout",
                                        "session_timeout_s",
                                        "allow_sample_tee_insecure",
                                        "max_sessions",
                                        "attestation_token_broker",
                                        "rvps_config",
                                        "verifier_config",
                                        NULL};
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
    check_keys(as, w, known);
    json_int_t n = 0;
    int rc;
    if ((rc = opt_uint(as, "timeout", w, 1, 1440, &n, err)) < 0)
        return rc;
    if (rc == 0)
        cfg->session_timeout_min = (unsigned)n;
    if ((rc = opt_uint(as, "session_timeout_s", w, 1, 86400, &n, err)) < 0)
        return rc;
    if (rc == 0)
        cfg->session_timeout_s = (unsigned)n;
    if ((rc = opt_uint(as, "max_sessions", w, 1, 10000000, &n, err)) < 0)
        return rc;
    if (rc == 0)
        cfg->max_sessions = (size_t)n;
    if (opt_bool(as, "allow_sample_tee_insecure", w, &cfg->allow_sample_tee_insecure, err) < 0)
        return err->code;
    json_t *vc = NULL, *rv = NULL, *broker = NULL, *signer = NULL;
    if (get_table(as, "verifier_config", w, &vc, err) < 0 ||
        (vc && parse_verifier_config(vc, cfg, err) < 0))
        return err->code;
    if (get_table(as, "rvps_config", w, &rv, err) < 0)
        return err->code;
    if (rv) {
        const char *wr = "attestation_service.rvps_config";
        const char *rt = json_string_value(json_object_get(rv, "type"));
        if (rt && strcmp(rt, "BuiltIn") != 0) {
            refuse_value(wr, "type", rt,
                         "Cloister's reference values live in the KBS store (type = \"BuiltIn\")");
        } else {
            static const char *const rk[] = {"type", "extractors", "storage_type", "storage", NULL};
            check_keys(rv, wr, rk);
            refuse_unless_empty(rv, "extractors", wr, "no provenance extractors are built in");
            refuse_unless_empty(
                rv, "storage", wr,
                "reference values are kept in [storage_backend] (namespace reference_value)");
            const char *st = json_string_value(json_object_get(rv, "storage_type"));
            if (st && (!cfg->storage_type || strcasecmp(st, cfg->storage_type) != 0))
                refuse_value(wr, "storage_type", st,
                             "reference values share [storage_backend] storage_type");
        }
    }
    if (get_table(as, "attestation_token_broker", w, &broker, err) < 0)
        return err->code;
    if (broker) {
        const char *wb = "attestation_service.attestation_token_broker";
        static const char *const bk[] = {
            "duration_min", "issuer_name",   "signer", "profile_name", "developer_name",
            "build_name",   "verbose_token", "type",   "policy_dir",   NULL};
        check_keys(broker, wb, bk);
        if ((rc = opt_uint(broker, "duration_min", wb, 1, 1440, &n, err)) < 0)
            return rc;
        if (rc == 0)
            cfg->token_duration_min = (unsigned)n;
        if (opt_str(broker, "issuer_name", wb, &cfg->token_issuer, err) < 0)
            return err->code;
        const char *pn = json_string_value(json_object_get(broker, "profile_name"));
        if (json_object_get(broker, "profile_name") && (!pn || strcmp(pn, CL_AS_EAR_PROFILE) != 0))
            refuse_value(wb, "profile_name", pn ? pn : "?",
                         "the EAR profile is " CL_AS_EAR_PROFILE);
        const char *bt = json_string_value(json_object_get(broker, "type"));
        if (json_object_get(broker, "type") && (!bt || strcasecmp(bt, "Ear") != 0))
            refuse_value(wb, "type", bt ? bt : "?", "tokens are EAR");
        refuse_unless_empty(broker, "developer_name", wb, "the EAR verifier id is Cloister's own");
        refuse_unless_empty(broker, "build_name", wb, "the EAR verifier id is Cloister's own");
        refuse_unless_empty(broker, "policy_dir", wb,
                            "attestation policies live in [storage_backend]");
        json_t *vt = json_object_get(broker, "verbose_token");
        if (vt && !json_is_boolean(vt))
            return cl_err_set(err, CL_EINVAL, "config: '%s.verbose_token' must be true or false",
                              wb);
        if (vt && json_is_false(vt))
            refuse("attestation_service.attestation_token_broker.verbose_token",
                   "%s.verbose_token = false is not supported: the EAR always carries the "
                   "annotated evidence",
                   wb);
        if (get_table(broker, "signer", wb, &signer, err) < 0)
            return err->code;
        if (signer) {
            const char *ws = "attestation_service.attestation_token_broker.signer";
            static const char *const sk[] = {"key_path", "cert_path", "cert_url", NULL};
            check_keys(signer, ws, sk);
            refuse_unless_empty(signer, "cert_url", ws, "give the chain as cert_path");
            if (opt_str(signer, "key_path", ws, &cfg->signer_key_path, err) < 0 ||
                opt_str(signer, "cert_path", ws, &cfg->signer_cert_path, err) < 0)
                return err->code;
        }
    }
    return 0;
}

/* ---- [[plugins]] ---- */

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
        static const char *const rk[] = {"name", "type", "storage_backend_type", "dir_path", NULL};
        check_keys(p, where, rk);
        if (opt_str(p, "type", where, &cfg->resource_type, err) < 0 ||
            opt_str(p, "storage_backend_type", where, &cfg->resource_type, err) < 0 ||
            opt_str(p, "dir_path", where, &cfg->resource_dir, err) < 0)
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

/* ---- [policy_engine] ---- */

static int parse_policy_engine(const json_t *pe, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const known[] = {"policy_path", NULL};
    check_keys(pe, "policy_engine", known);
    return opt_str(pe, "policy_path", "policy_engine", &cfg->policy_path, err);
}

static int parse_doc(const json_t *doc, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const top_known[] = {
        "http_server", "attestation_token", "attestation_service",  "admin", "storage_backend",
        "plugins",     "policy_engine",     "session_storage_type", NULL};
    check_keys(doc, "", top_known);
    json_t *hs = NULL, *tok = NULL, *as = NULL, *admin = NULL, *sb = NULL, *pe = NULL;
    if (get_table(doc, "http_server", "", &hs, err) < 0 ||
        get_table(doc, "attestation_token", "", &tok, err) < 0 ||
        get_table(doc, "attestation_service", "", &as, err) < 0 ||
        get_table(doc, "admin", "", &admin, err) < 0 ||
        get_table(doc, "storage_backend", "", &sb, err) < 0 ||
        get_table(doc, "policy_engine", "", &pe, err) < 0)
        return err->code;
    json_int_t n = 0;
    int rc;
    if (hs) {
        const char *w = "http_server";
        static const char *const known[] = {"sockets",
                                            "insecure_http",
                                            "private_key",
                                            "certificate",
                                            "payload_request_size",
                                            "worker_count",
                                            "request_timeout",
                                            "tls_profile",
                                            "tls_min_version",
                                            "tls_max_version",
                                            "tls_ciphers",
                                            "tls_groups",
                                            NULL};
        check_keys(hs, w, known);
        if (str_list(hs, "sockets", w, cfg->sockets, CL_KBS_MAX_SOCKETS, &cfg->nsockets, err) < 0 ||
            opt_bool(hs, "insecure_http", w, &cfg->insecure_http, err) < 0 ||
            opt_str(hs, "private_key", w, &cfg->tls_key_path, err) < 0 ||
            opt_str(hs, "certificate", w, &cfg->tls_cert_path, err) < 0 ||
            opt_str(hs, "tls_profile", w, &cfg->tls_profile, err) < 0 ||
            opt_str(hs, "tls_min_version", w, &cfg->tls_min_version, err) < 0 ||
            opt_str(hs, "tls_max_version", w, &cfg->tls_max_version, err) < 0 ||
            opt_str(hs, "tls_ciphers", w, &cfg->tls_ciphers, err) < 0 ||
            opt_str(hs, "tls_groups", w, &cfg->tls_groups, err) < 0)
            return err->code;
        if ((rc = opt_uint(hs, "payload_request_size", w, 1, 64, &n, err)) < 0)
            return rc;
        if (rc == 0)
            cfg->payload_max = (size_t)n * 1024 * 1024;
        if ((rc = opt_uint(hs, "worker_count", w, 1, 256, &n, err)) < 0)
            return rc;
        if (rc == 0)
            cfg->worker_count = (unsigned)n;
        if ((rc = opt_uint(hs, "request_timeout", w, 1, 3600, &n, err)) < 0)
            return rc;
        if (rc == 0)
            cfg->request_timeout_s = (unsigned)n;
    }
    if (build_tls_priorities(cfg, err) < 0)
        return err->code;
    if (tok) {
        const char *w = "attestation_token";
        static const char *const known[] = {"trusted_certs_paths", "trusted_jwk_sets",
                                            "extra_teekey_paths",  "insecure_header_jwk",
                                            "insecure_key",        NULL};
        check_keys(tok, w, known);
        if (str_list(tok, "trusted_certs_paths", w, cfg->trusted_certs_paths, CL_KBS_MAX_TRUSTED,
                     &cfg->ntrusted_certs, err) < 0 ||
            str_list(tok, "extra_teekey_paths", w, cfg->extra_teekey_paths, CL_KBS_MAX_TRUSTED,
                     &cfg->nextra_teekey_paths, err) < 0 ||
            opt_bool(tok, "insecure_header_jwk", w, &cfg->insecure_header_jwk, err) < 0)
            return err->code;
        /* insecure_key: trustee's older name of the same switch */
        bool ik = false;
        if (opt_bool(tok, "insecure_key", w, &ik, err) < 0)
            return err->code;
        cfg->insecure_header_jwk = cfg->insecure_header_jwk || ik;
        if (str_list(tok, "trusted_jwk_sets", w, cfg->trusted_jwk_sets, CL_KBS_MAX_TRUSTED,
                     &cfg->ntrusted_jwk_sets, err) < 0)
            return err->code;
        for (size_t i = 0; i < cfg->ntrusted_jwk_sets; i++)
            if (strncmp(cfg->trusted_jwk_sets[i], "http://", 7) == 0) {
                char path[64];
                snprintf(path, sizeof path, "attestation_token.trusted_jwk_sets[%zu]", i);
                refuse(path, "%s = \"%.128s\": plain http is not trusted for keys: use https://",
                       path, cfg->trusted_jwk_sets[i]);
            }
    }
    if (sb && parse_storage(sb, cfg, err) < 0)
        goto fail;
    if (opt_str(doc, "session_storage_type", "", &cfg->session_storage_type, err) < 0)
        goto fail;
    if (cfg->session_storage_type && !cl_store_type_canonical(cfg->session_storage_type))
        refuse_value("", "session_storage_type", cfg->session_storage_type,
                     "Cloister has Memory, LocalFs, Postgres and Redis");
    /* The environment wins over the file, as in trustee: credentials from a secret store. */
    const char *env_pg = getenv("POSTGRES_URL"), *env_rd = getenv("REDIS_URL");
    if (env_pg && *env_pg && !(cfg->pg.url = strdup(env_pg))) {
        cl_err_set(err, CL_ENOMEM, "config: out of memory");
        goto fail;
    }
    if (env_rd && *env_rd) {
        free(cfg->redis_url);
        if (!(cfg->redis_url = strdup(env_rd))) {
            cl_err_set(err, CL_ENOMEM, "config: out of memory");
            goto fail;
        }
    }
    if (as && parse_as(as, cfg, err) < 0)
        return err->code;
    if (admin && parse_admin(admin, cfg, err) < 0)
        return err->code;
    if (pe && parse_policy_engine(pe, cfg, err) < 0)
        return err->code;
    json_t *plugins = json_object_get(doc, "plugins");
    if (plugins && parse_plugins(plugins, cfg, err) < 0)
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
fail: /* the [storage_backend] block's exit */
    return err->code;
}

int cl_kbs_config_parse_named(const char *text, size_t len, const char *file,
                              struct cl_kbs_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    cl_kbs_config_defaults(cfg);
    CL_AUTO(json_t) *doc = cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "config %s", file ? file : "");
    struct pctx ctx = {.file = file, .text = text, .len = len};
    pc = &ctx;
    int rc = parse_doc(doc, cfg, err);
    pc = NULL;
    if (ctx.nbad) {
        /* the refusals come first: exit 2 naming the keys, whatever else failed after them */
        if (rc < 0)
            cl_error("config: also: %s", err->msg);
        *err = ctx.first;
        if (ctx.nbad > 1)
            cl_err_prefix(err, "%u keys refused, the first", ctx.nbad);
        rc = CL_EINVAL;
    }
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

static json_t *str_array(char *const *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(a[i]));
    return arr;
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
    json_object_set_new(
        doc, "http_server",
        json_pack("{s:o, s:b, s:o, s:o, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:o}", "sockets",
                  str_array(cfg->sockets, cfg->nsockets), "insecure_http", cfg->insecure_http,
                  "private_key", str_or_null(cfg->tls_key_path), "certificate",
                  str_or_null(cfg->tls_cert_path), "payload_request_size",
                  (json_int_t)(cfg->payload_max / (1024 * 1024)), "worker_count",
                  (json_int_t)(cfg->worker_count ? cfg->worker_count : 4), "request_timeout",
                  (json_int_t)(cfg->request_timeout_s ? cfg->request_timeout_s
                                                      : CL_HTTP_DEFAULT_REQUEST_TIMEOUT_S),
                  "tls_profile", cfg->tls_profile ? cfg->tls_profile : "intermediate",
                  "tls_min_version", str_or_null(cfg->tls_min_version), "tls_max_version",
                  str_or_null(cfg->tls_max_version), "tls_ciphers", str_or_null(cfg->tls_ciphers),
                  "tls_groups", str_or_null(cfg->tls_groups)));
    json_object_set_new(
        doc, "attestation_token",
        json_pack("{s:o, s:o, s:o, s:b}", "trusted_certs_paths",
                  str_array(cfg->trusted_certs_paths, cfg->ntrusted_certs), "trusted_jwk_sets",
                  str_array(cfg->trusted_jwk_sets, cfg->ntrusted_jwk_sets), "extra_teekey_paths",
                  str_array(cfg->extra_teekey_paths, cfg->nextra_teekey_paths),
                  "insecure_header_jwk", cfg->insecure_header_jwk));
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
    json_object_set_new(doc, "policy_engine",
                        json_pack("{s:o}", "policy_path", str_or_null(cfg->policy_path)));
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
    for (size_t i = 0; i < cfg->ntrusted_certs; i++)
        if (check_file("attestation_token.trusted_certs_paths", cfg->trusted_certs_paths[i], err) <
            0)
            return err->code;
    {
        CL_AUTO(json_t) *keys = cl_kbs_jwks_load(cfg, err);
        if (!keys && err->code < 0)
            return err->code;
    }
    if (check_file("attestation_service.attestation_token_broker.signer.key_path",
                   cfg->signer_key_path, err) < 0 ||
        check_file("attestation_service.attestation_token_broker.signer.cert_path",
                   cfg->signer_cert_path, err) < 0)
        return err->code;
    static const struct {
        const char *key;
        size_t off;
    } tee_files[] = {
        {"attestation_service.verifier_config.tpm_verifier.ak_ca_path",
         offsetof(struct cl_tee_config, tpm_ak_ca_path)},
        {"attestation_service.verifier_config.cca_verifier.ta_store",
         offsetof(struct cl_tee_config, cca_ta_store)},
        {"attestation_service.verifier_config.cca_verifier.rv_store",
         offsetof(struct cl_tee_config, cca_rv_store)},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(tee_files); i++) {
        const char *p =
            *(const char *const *)(const void *)((const char *)&cfg->tee + tee_files[i].off);
        if (check_file(tee_files[i].key, p, err) < 0)
            return err->code;
    }
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
        char what[160];
        snprintf(what, sizeof what, "config: 'attestation_token.trusted_jwk_sets[%zu]' %.100s", i,
                 cfg->trusted_jwk_sets[i]);
        if (cl_kbs_jwks_source(what, cfg->trusted_jwk_sets[i], all, err) < 0)
            return NULL;
    }
    return CL_STEAL(all);
}
