/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-kbs configuration: TOML with trustee's kbs-config.toml key names. Values are
 * type-checked and range-checked; every error names the key. Unknown keys are warned about
 * (so that a typo in a security switch does not pass silently).
 */
#include "kbs/kbs.h"
#include "store/store.h"
#include "toml/toml.h"

#include <string.h>
#include <strings.h>

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
    for (size_t i = 0; i < cfg->npersonas; i++) {
        free(cfg->personas[i].id);
        EVP_PKEY_free(cfg->personas[i].key);
    }
    free(cfg->tls_key_path);
    free(cfg->tls_cert_path);
    free(cfg->signer_key_path);
    free(cfg->signer_cert_path);
    free(cfg->storage_type);
    free(cfg->storage_dir);
    free(cfg->resource_type);
    free(cfg->resource_dir);
    free(cfg->pg.url);
    free(cfg->pg.db);
    free(cfg->pg.user);
    if (cfg->pg.password)
        explicit_bzero(cfg->pg.password, strlen(cfg->pg.password));
    free(cfg->pg.password);
    free(cfg->pg.host);
    if (cfg->redis_url) /* may embed a password */
        explicit_bzero(cfg->redis_url, strlen(cfg->redis_url));
    free(cfg->redis_url);
    free(cfg->session_storage_type);
    free(cfg->seal_key_path);
    for (size_t i = 0; i < cfg->nseal_old; i++)
        free(cfg->seal_old_paths[i]);
    for (size_t i = 0; i < CL_ARRAY_LEN(cfg->tee_strings); i++)
        free(cfg->tee_strings[i]);
    for (size_t i = 0; i < CL_ARRAY_LEN(cfg->cca_csv_strings); i++)
        free(cfg->cca_csv_strings[i]);
    memset(cfg, 0, sizeof *cfg);
}

/* A table of the keys each section may hold; anything else is warned about. */
static void warn_unknown(const json_t *tbl, const char *section, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)tbl, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], k) == 0;
        if (!ok)
            cl_warn("config: unknown key '%s%s%s' ignored", section, *section ? "." : "", k);
    }
}

static int get_table(const json_t *parent, const char *key, const char *where, json_t **out, struct cl_err *err)
{
    json_t *v = json_object_get(parent, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s%s%s' must be a table", where, *where ? "." : "", key);
    *out = v;
    return 0;
}

static int opt_str(const json_t *t, const char *key, const char *where, char **out, struct cl_err *err)
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

static int opt_bool(const json_t *t, const char *key, const char *where, bool *out, struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

static int opt_uint(const json_t *t, const char *key, const char *where, json_int_t min, json_int_t max,
                    json_int_t *out, struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 1;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be an integer in [%lld, %lld]", where, key,
                          (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static int str_list(const json_t *t, const char *key, const char *where, char **arr, size_t cap, size_t *n,
                    struct cl_err *err)
{
    json_t *v = json_object_get(t, key);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return cl_err_set(err, CL_EINVAL, "config: '%s.%s' must be an array of strings", where, key);
    if (json_array_size(v) > cap)
        return cl_err_set(err, CL_ELIMIT, "config: '%s.%s' holds more than %zu entries", where, key, cap);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return cl_err_set(err, CL_EINVAL, "config: '%s.%s[%zu]' must be a string", where, key, i);
        arr[*n] = strdup(json_string_value(e));
        if (!arr[*n])
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        (*n)++;
    }
    return 0;
}

static int add_persona(struct cl_kbs_config *cfg, const char *id, const char *path, struct cl_err *err)
{
    if (cfg->npersonas == CL_KBS_MAX_PERSONAS)
        return cl_err_set(err, CL_ELIMIT, "config: more than %d admin personas", CL_KBS_MAX_PERSONAS);
    cl_pkey *k = cl_pkey_load_pem(path, false, err);
    if (!k)
        return cl_err_prefix(err, "config: admin persona '%s' public_key_path", id);
    int t = EVP_PKEY_get_base_id(k);
    if (t != EVP_PKEY_ED25519 && t != EVP_PKEY_EC) {
        EVP_PKEY_free(k);
        return cl_err_set(err, CL_EINVAL, "config: admin persona '%s': key must be Ed25519 or EC", id);
    }
    cfg->personas[cfg->npersonas].id = strdup(id);
    cfg->personas[cfg->npersonas].key = k;
    cfg->npersonas++;
    return 0;
}

static int parse_admin(const json_t *admin, struct cl_kbs_config *cfg, struct cl_err *err)
{
    static const char *const known[] = {"type", "authorization_mode", "insecure_api", "auth_public_key",
                                        "personas", NULL};
    warn_unknown(admin, "admin", known);
    const char *mode = NULL;
    json_t *t = json_object_get(admin, "type");
    if (!t)
        t = json_object_get(admin, "authorization_mode");
    if (t && !json_is_string(t))
        return cl_err_set(err, CL_EINVAL, "config: 'admin.type' must be a string");
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
            return cl_err_set(err, CL_EINVAL, "config: 'admin.personas' must be an array of tables");
        size_t i;
        json_t *p;
        json_array_foreach(ps, i, p)
        {
            const char *id = NULL, *path = NULL;
            if (cl_json_get_str(p, "id", &id, err) < 0 || cl_json_get_str(p, "public_key_path", &path, err) < 0)
                return cl_err_prefix(err, "config: admin.personas[%zu]", i);
            if (add_persona(cfg, id, path, err) < 0)
                return err->code;
        }
    }
    if (insecure_api || (mode && strcasecmp(mode, "InsecureAllowAll") == 0)) {
        cfg->admin_mode = CL_KBS_ADMIN_ALLOW_ALL_INSECURE;
    } else if (mode && strcasecmp(mode, "DenyAll") == 0) {
        cfg->admin_mode = CL_KBS_ADMIN_DENY_ALL;
    } else if (!mode || strcasecmp(mode, "Simple") == 0 || strcasecmp(mode, "AuthenticatedAuthorization") == 0) {
        cfg->admin_mode = cfg->npersonas ? CL_KBS_ADMIN_PERSONAS : CL_KBS_ADMIN_DENY_ALL;
        if (!cfg->npersonas)
            cl_warn("config: no admin persona configured: the admin API denies every request");
    } else {
        return cl_err_set(err, CL_EINVAL, "config: 'admin.type' = '%s' is not one of Simple, DenyAll, InsecureAllowAll",
                          mode);
    }
    return 0;
}

/* A string setting of the verifiers, owned by cfg->tee_strings[slot]. */
static int tee_str(const json_t *t, const char *key, const char *where, struct cl_kbs_config *cfg, size_t slot,
                   const char **out, struct cl_err *err)
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
    } tables[] = {{"cca_verifier", {"ta_store", "rv_store", NULL}}, {"csv_verifier", {"cert_dir", NULL}}};
    const char **dst[] = {&cfg->tee.cca_ta_store, &cfg->tee.cca_rv_store, &cfg->tee.csv_cert_dir};
    size_t slot = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(tables); i++) {
        char where[96];
        snprintf(where, sizeof where, "attestation_service.verifier_config.%s", tables[i].table);
        json_t *t = NULL;
        if (get_table(vc, tables[i].table, "attestation_service.verifier_config", &t, err) < 0)
            return err ? err->code : CL_EINVAL;
        if (t)
            warn_unknown(t, where, tables[i].keys);
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
    static const char *const known[] = {"snp_verifier", "dcap_verifier", "tpm_verifier", "nvidia_verifier",
                                        "cca_verifier", "csv_verifier",
                                        "nvidia_dpu_verifier", "allow_debug_insecure", "verify_time_insecure", NULL};
    const char *w = "attestation_service.verifier_config";
    warn_unknown(vc, w, known);
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
    if (get_table(vc, "snp_verifier", w, &snp, err) < 0 || get_table(vc, "dcap_verifier", w, &dcap, err) < 0 ||
        get_table(vc, "tpm_verifier", w, &tpm, err) < 0)
        return err ? err->code : CL_EINVAL;
    if (snp) {
        static const char *const sk[] = {"vcek_sources", "cert_cache", "kds_online", "kds_url", NULL};
        const char *ws = "attestation_service.verifier_config.snp_verifier";
        warn_unknown(snp, ws, sk);
        if (tee_str(snp, "cert_cache", ws, cfg, 0, &t->snp_cert_cache, err) < 0 ||
            tee_str(snp, "kds_url", ws, cfg, 1, &t->snp_kds_url, err) < 0 ||
            opt_bool(snp, "kds_online", ws, &t->snp_kds_online, err) < 0)
            return err ? err->code : CL_EINVAL;
        /* trustee: vcek_sources = [{type = "OfflineStore", path}, {type = "KDS", base_url}] */
        json_t *src = json_object_get(snp, "vcek_sources");
        size_t i;
        json_t *e;
        if (src && !json_is_array(src))
            return cl_err_set(err, CL_EINVAL, "config: '%s.vcek_sources' must be an array of tables", ws);
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
                return cl_err_set(err, CL_EINVAL, "config: '%s.vcek_sources[%zu].type' must be OfflineStore or KDS",
                                  ws, i);
            }
        }
    }
    if (dcap) {
        static const char *const dk[] = {"collateral_service", "collateral_dir", "pccs_url", "allow_tcb_status_insecure",
                                         "allow_expired_collateral_insecure",
                                         "sgx_collateral_dir", NULL};
        const char *wd = "attestation_service.verifier_config.dcap_verifier";
        warn_unknown(dcap, wd, dk);
        if (tee_str(dcap, "collateral_dir", wd, cfg, 2, &t->tdx_collateral_dir, err) < 0 ||
            tee_str(dcap, "pccs_url", wd, cfg, 3, &t->tdx_pccs_url, err) < 0 ||
            opt_bool(dcap, "allow_expired_collateral_insecure", wd, &t->tdx_allow_expired_collateral_insecure, err) < 0)
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
        } else if (cs && tee_str(dcap, "collateral_service", wd, cfg, 3, &t->tdx_pccs_url, err) < 0) {
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
            return cl_err_set(err, CL_EINVAL, "config: '%s.allow_tcb_status_insecure' must be an array of strings", wd);
        json_array_foreach(st, i, e)
        {
            size_t k = 0;
            while (k < CL_ARRAY_LEN(statuses) &&
                   (!json_is_string(e) || strcmp(json_string_value(e), statuses[k].name) != 0))
                k++;
            if (k == CL_ARRAY_LEN(statuses))
                return cl_err_set(err, CL_EINVAL,
                                  "config: '%s.allow_tcb_status_insecure[%zu]' must be SWHardeningNeeded, "
                                  "ConfigurationNeeded, OutOfDate or TDRelaunchAdvised",
                                  wd, i);
            t->tdx_allow_tcb_insecure |= statuses[k].bit;
        }
    }
    if (tpm) {
        static const char *const tk[] = {"ak_ca_path", NULL};
        const char *wt = "attestation_service.verifier_config.tpm_verifier";
        warn_unknown(tpm, wt, tk);
        if (tee_str(tpm, "ak_ca_path", wt, cfg, 4, &t->tpm_ak_ca_path, err) < 0)
            return err ? err->code : CL_EINVAL;
    }
    if ((rc = parse_cca_csv_config(vc, cfg, err)) < 0)
        return rc;
    if (t->allow_debug_insecure)
        cl_insecure("allow_debug_insecure", "debug-enabled TEEs will be accepted");
    if (t->verify_time)
        cl_insecure("verify_time_insecure", "certificates and collateral are checked at %lld, not now",
                    (long long)t->verify_time);
    return 0;
}

/* Keys of a section that must be known: anything else is refused by name (storage settings
 * decide where secrets go; a misspelt one must not fall back to a default silently). */
static int refuse_unknown(const json_t *tbl, const char *section, const char *const *known, struct cl_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)tbl, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], k) == 0;
        if (!ok)
            return cl_err_set(err, CL_EINVAL, "config: '%s.%s' is not a key Cloister knows", section, k);
    }
    return 0;
}

static int pool_opts(const json_t *t, const char *where, struct cl_kbs_config *cfg, struct cl_err *err)
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
    static const char *const known[] = {"storage_type", "backends", "encryption_key_path", "encryption_old_key_paths",
                                        NULL};
    static const char *const known_be[] = {"local_fs", "local_json", "postgres", "redis", NULL};
    static const char *const known_fs[] = {"dir_path", NULL};
    static const char *const known_json[] = {"file_dir_path", NULL};
    static const char *const known_pg[] = {"db", "username", "password", "port", "host", "pool_size", "timeout_ms", NULL};
    static const char *const known_rd[] = {"url", "pool_size", "timeout_ms", NULL};
    json_t *be = NULL, *t = NULL;
    json_int_t n = 0;
    int rc;
    if (refuse_unknown(sb, "storage_backend", known, err) < 0 ||
        opt_str(sb, "storage_type", "storage_backend", &cfg->storage_type, err) < 0 ||
        get_table(sb, "backends", "storage_backend", &be, err) < 0 ||
        opt_str(sb, "encryption_key_path", "storage_backend", &cfg->seal_key_path, err) < 0 ||
        str_list(sb, "encryption_old_key_paths", "storage_backend", cfg->seal_old_paths,
                 CL_ARRAY_LEN(cfg->seal_old_paths), &cfg->nseal_old, err) < 0)
        return err->code;
    if (cfg->nseal_old && !cfg->seal_key_path)
        return cl_err_set(err, CL_EINVAL, "config: 'storage_backend.encryption_old_key_paths' needs "
                                          "'storage_backend.encryption_key_path' (the current key)");
    if (cfg->storage_type && !cl_store_type_canonical(cfg->storage_type))
        return cl_err_set(err, CL_EINVAL,
                          "config: 'storage_backend.storage_type' \"%s\" is not one Cloister has (Memory, LocalFs, "
                          "Postgres, Redis; LocalJson is not implemented)",
                          cfg->storage_type);
    if (!be)
        return 0;
    if (refuse_unknown(be, "storage_backend.backends", known_be, err) < 0)
        return err->code;
    if (get_table(be, "local_fs", "storage_backend.backends", &t, err) < 0 ||
        (t && (refuse_unknown(t, "storage_backend.backends.local_fs", known_fs, err) < 0 ||
               opt_str(t, "dir_path", "storage_backend.backends.local_fs", &cfg->storage_dir, err) < 0)))
        return err->code;
    if (get_table(be, "local_json", "storage_backend.backends", &t, err) < 0 ||
        (t && refuse_unknown(t, "storage_backend.backends.local_json", known_json, err) < 0))
        return err->code;
    if (t)
        cl_warn("config: 'storage_backend.backends.local_json' is unused (Cloister has no LocalJson backend)");
    if (get_table(be, "postgres", "storage_backend.backends", &t, err) < 0)
        return err->code;
    if (t) {
        const char *w = "storage_backend.backends.postgres";
        if (refuse_unknown(t, w, known_pg, err) < 0 || opt_str(t, "db", w, &cfg->pg.db, err) < 0 ||
            opt_str(t, "username", w, &cfg->pg.user, err) < 0 ||
            opt_str(t, "password", w, &cfg->pg.password, err) < 0 || opt_str(t, "host", w, &cfg->pg.host, err) < 0 ||
            pool_opts(t, w, cfg, err) < 0)
            return err->code;
        if ((rc = opt_uint(t, "port", w, 1, 65535, &n, err)) < 0)
            return rc;
        if (rc == 0)
            cfg->pg.port = (unsigned)n;
    }
    if (get_table(be, "redis", "storage_backend.backends", &t, err) < 0)
        return err->code;
    if (t && (refuse_unknown(t, "storage_backend.backends.redis", known_rd, err) < 0 ||
              opt_str(t, "url", "storage_backend.backends.redis", &cfg->redis_url, err) < 0 ||
              pool_opts(t, "storage_backend.backends.redis", cfg, err) < 0))
        return err->code;
    return 0;
}

int cl_kbs_config_parse(const char *text, size_t len, struct cl_kbs_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    cl_kbs_config_defaults(cfg);
    CL_AUTO(json_t) *doc = cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "config");
    static const char *const top_known[] = {"http_server", "attestation_token", "attestation_service", "admin",
                                            "storage_backend", "plugins", "policy_engine", "session_storage_type",
                                            NULL};
    warn_unknown(doc, "", top_known);
    json_t *hs = NULL, *tok = NULL, *as = NULL, *admin = NULL, *sb = NULL;
    if (get_table(doc, "http_server", "", &hs, err) < 0 || get_table(doc, "attestation_token", "", &tok, err) < 0 ||
        get_table(doc, "attestation_service", "", &as, err) < 0 || get_table(doc, "admin", "", &admin, err) < 0 ||
        get_table(doc, "storage_backend", "", &sb, err) < 0)
        goto fail;
    json_int_t n = 0;
    int rc;
    if (hs) {
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
        warn_unknown(hs, "http_server", known);
        if (str_list(hs, "sockets", "http_server", cfg->sockets, CL_KBS_MAX_SOCKETS, &cfg->nsockets, err) < 0 ||
            opt_bool(hs, "insecure_http", "http_server", &cfg->insecure_http, err) < 0 ||
            opt_str(hs, "private_key", "http_server", &cfg->tls_key_path, err) < 0 ||
            opt_str(hs, "certificate", "http_server", &cfg->tls_cert_path, err) < 0)
            goto fail;
        if ((rc = opt_uint(hs, "payload_request_size", "http_server", 1, 64, &n, err)) < 0)
            goto fail;
        if (rc == 0)
            cfg->payload_max = (size_t)n * 1024 * 1024;
        if ((rc = opt_uint(hs, "worker_count", "http_server", 1, 256, &n, err)) < 0)
            goto fail;
        if (rc == 0)
            cfg->worker_count = (unsigned)n;
        if ((rc = opt_uint(hs, "request_timeout", "http_server", 1, 3600, &n, err)) < 0)
            goto fail;
        if (rc == 0)
            cfg->request_timeout_s = (unsigned)n;
    }
    if (tok) {
        static const char *const known[] = {"trusted_certs_paths", "trusted_jwk_sets", "extra_teekey_paths",
                                            "insecure_header_jwk", NULL};
        warn_unknown(tok, "attestation_token", known);
        if (str_list(tok, "trusted_certs_paths", "attestation_token", cfg->trusted_certs_paths, CL_KBS_MAX_TRUSTED,
                     &cfg->ntrusted_certs, err) < 0 ||
            str_list(tok, "extra_teekey_paths", "attestation_token", cfg->extra_teekey_paths, CL_KBS_MAX_TRUSTED,
                     &cfg->nextra_teekey_paths, err) < 0 ||
            opt_bool(tok, "insecure_header_jwk", "attestation_token", &cfg->insecure_header_jwk, err) < 0)
            goto fail;
        if (json_object_get(tok, "trusted_jwk_sets"))
            cl_warn("config: 'attestation_token.trusted_jwk_sets' is not supported yet and is ignored");
    }
    if (as) {
        static const char *const known[] = {"type", "timeout", "session_timeout_s", "allow_sample_tee_insecure", "max_sessions",
                                            "attestation_token_broker", "rvps_config", "verifier_config", NULL};
        warn_unknown(as, "attestation_service", known);
        json_t *type = json_object_get(as, "type");
        if (type && (!json_is_string(type) || strcmp(json_string_value(type), "coco_as_builtin") != 0)) {
            cl_err_set(err, CL_EINVAL, "config: 'attestation_service.type' must be \"coco_as_builtin\" (the only "
                                       "attestation service Cloister has)");
            goto fail;
        }
        if ((rc = opt_uint(as, "timeout", "attestation_service", 1, 1440, &n, err)) < 0)
            goto fail;
        if (rc == 0)
            cfg->session_timeout_min = (unsigned)n;
        if ((rc = opt_uint(as, "session_timeout_s", "attestation_service", 1, 86400, &n, err)) < 0)
            goto fail;
        if (rc == 0)
            cfg->session_timeout_s = (unsigned)n;
        if ((rc = opt_uint(as, "max_sessions", "attestation_service", 1, 10000000, &n, err)) < 0)
            goto fail;
        if (rc == 0)
            cfg->max_sessions = (size_t)n;
        if (opt_bool(as, "allow_sample_tee_insecure", "attestation_service", &cfg->allow_sample_tee_insecure, err) < 0)
            goto fail;
        json_t *vc = NULL;
        if (get_table(as, "verifier_config", "attestation_service", &vc, err) < 0 ||
            (vc && parse_verifier_config(vc, cfg, err) < 0))
            goto fail;
        json_t *broker = NULL, *signer = NULL;
        if (get_table(as, "attestation_token_broker", "attestation_service", &broker, err) < 0)
            goto fail;
        if (broker) {
            if ((rc = opt_uint(broker, "duration_min", "attestation_service.attestation_token_broker", 1, 1440, &n,
                               err)) < 0)
                goto fail;
            if (rc == 0)
                cfg->token_duration_min = (unsigned)n;
            if (get_table(broker, "signer", "attestation_service.attestation_token_broker", &signer, err) < 0)
                goto fail;
            if (signer && (opt_str(signer, "key_path", "attestation_token_broker.signer", &cfg->signer_key_path, err) < 0 ||
                           opt_str(signer, "cert_path", "attestation_token_broker.signer", &cfg->signer_cert_path, err) < 0))
                goto fail;
        }
    }
    if (admin && parse_admin(admin, cfg, err) < 0)
        goto fail;
    if (sb && parse_storage(sb, cfg, err) < 0)
        goto fail;
    if (opt_str(doc, "session_storage_type", "", &cfg->session_storage_type, err) < 0)
        goto fail;
    if (cfg->session_storage_type && !cl_store_type_canonical(cfg->session_storage_type)) {
        cl_err_set(err, CL_EINVAL, "config: 'session_storage_type' \"%s\" is not one Cloister has (Memory, LocalFs, "
                                   "Postgres, Redis)",
                   cfg->session_storage_type);
        goto fail;
    }
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
    json_t *plugins = json_object_get(doc, "plugins");
    if (plugins) {
        if (!json_is_array(plugins)) {
            cl_err_set(err, CL_EINVAL, "config: 'plugins' must be an array of tables ([[plugins]])");
            goto fail;
        }
        size_t i;
        json_t *p;
        json_array_foreach(plugins, i, p)
        {
            const char *name = NULL;
            if (cl_json_get_str(p, "name", &name, err) < 0) {
                cl_err_prefix(err, "config: plugins[%zu]", i);
                goto fail;
            }
            if (strcmp(name, "resource") != 0) {
                cl_warn("config: plugin '%s' is not available in Cloister and is ignored", name);
                continue;
            }
            if (opt_str(p, "type", "plugins.resource", &cfg->resource_type, err) < 0 ||
                opt_str(p, "storage_backend_type", "plugins.resource", &cfg->resource_type, err) < 0 ||
                opt_str(p, "dir_path", "plugins.resource", &cfg->resource_dir, err) < 0)
                goto fail;
        }
    }
    /* ---- consistency ---- */
    if (cfg->nsockets == 0) {
        cfg->sockets[0] = strdup("127.0.0.1:8080");
        cfg->nsockets = 1;
    }
    if (!cfg->insecure_http && (!cfg->tls_key_path || !cfg->tls_cert_path)) {
        cl_err_set(err, CL_EINVAL, "config: HTTPS needs 'http_server.private_key' and 'http_server.certificate' "
                                   "(or set insecure_http = true for plain HTTP)");
        goto fail;
    }
    return 0;
fail:
    cl_kbs_config_clear(cfg);
    return err ? err->code : CL_EINVAL;
}

int cl_kbs_config_load(const char *path, struct cl_kbs_config *cfg, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_KBS_MAX_CONFIG, &n, err);
    if (!text)
        return cl_err_prefix(err, "config");
    return cl_kbs_config_parse((const char *)text, n, cfg, err);
}
