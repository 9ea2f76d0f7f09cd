/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cdh.toml with upstream's key names (TOML, or JSON by extension), plus Cloister's own keys
 * for the REST bridge, the resource cache and the local folders, and the [image] table of the
 * image pull service (an inline [image.registry_config] is turned back into registries.conf
 * TOML, the form src/image reads). Read by the table-driven reader (toml/cfg.h): every key
 * Cloister does not know is refused by dotted path and file:line (exit 2), as the KBS does.
 * One deliberate exception: inside [image.registry_config], keys registries.conf does not
 * have are warned about and dropped, because upstream's own example.config.toml places
 * work_dir and extra_root_certificates after a [[...registry.mirror]] header (so TOML makes
 * them keys of that mirror) and upstream's serde drops them silently.
 */
#include "cdh/cdh.h"
#include "crypto/crypto.h"
#include "toml/cfg.h"
#include "toml/toml.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

void cl_cdh_config_defaults(struct cl_cdh_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->cache_ttl_s = CL_CDH_CACHE_TTL_DEFAULT;
    cfg->image.max_concurrent = 3;
}

static void image_clear(struct cl_cdh_image_config *im)
{
    char **s[] = {&im->work_dir,
                  &im->policy,
                  &im->policy_uri,
                  &im->sigstore_config_uri,
                  &im->sigstore_config,
                  &im->auth_uri,
                  &im->registry_config_uri,
                  &im->registry_config,
                  &im->https_proxy,
                  &im->http_proxy,
                  &im->no_proxy};
    for (size_t i = 0; i < CL_ARRAY_LEN(s); i++)
        free(*s[i]);
    for (size_t i = 0; i < im->ncerts; i++)
        free(im->extra_root_certs[i]);
}

/* ---- [image.registry_config] → registries.conf TOML ---- */

static int toml_value(FILE *f, const json_t *v, const char *key, struct cl_err *err)
{
    if (json_is_string(v) || json_is_boolean(v) || json_is_integer(v)) {
        /* JSON string escapes are valid TOML basic-string escapes */
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        if (!t)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        fputs(t, f);
        free(t);
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        fputc('[', f);
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e) || json_is_array(e))
                return cl_err_set(err, CL_EPARSE,
                                  "cdh config: image.registry_config.%s: nested value", key);
            if (i)
                fputs(", ", f);
            if (toml_value(f, e, key, err) < 0)
                return err->code;
        }
        fputc(']', f);
        return 0;
    }
    return cl_err_set(err, CL_EPARSE, "cdh config: image.registry_config.%s: unsupported value",
                      key);
}

static bool is_table_array(const json_t *v)
{
    return json_is_array(v) && json_is_object(json_array_get(v, 0));
}

/* Keys registries.conf has (src/image refuses others). Anything else in the inline table is
 * dropped with a warning, as upstream's serde drops unknown fields: upstream's own example
 * puts work_dir and extra_root_certificates after a [[image.registry_config.registry.mirror]]
 * header, which makes them keys of that mirror. */
static bool regconf_key(const char *k)
{
    static const char *const keys[] = {"unqualified-search-registries",
                                       "short-name-mode",
                                       "registry",
                                       "aliases",
                                       "credential-helpers",
                                       "prefix",
                                       "location",
                                       "insecure",
                                       "blocked",
                                       "mirror",
                                       "mirror-by-digest-only",
                                       "pull-from-mirror"};
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* Scalars of t under the current header, then its arrays of tables as [[prefix.key]]. */
static int toml_table(FILE *f, const json_t *t, const char *prefix, int depth, struct cl_err *err)
{
    if (depth > 3)
        return cl_err_set(err, CL_EPARSE, "cdh config: image.registry_config nested too deep");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)t, k, v)
    {
        if (!regconf_key(k)) {
            cl_warn("cdh config: image.registry_config%s%s: key '%.64s' is not a registries.conf "
                    "key, ignored",
                    *prefix ? "." : "", prefix, k);
            continue;
        }
        if (is_table_array(v))
            continue;
        if (json_is_object(v))
            return cl_err_set(err, CL_EPARSE,
                              "cdh config: image.registry_config.%s: plain tables are not used", k);
        fprintf(f, "\"%s\" = ", k);
        if (toml_value(f, v, k, err) < 0)
            return err->code;
        fputc('\n', f);
    }
    json_object_foreach((json_t *)(uintptr_t)t, k, v)
    {
        if (!is_table_array(v) || !regconf_key(k))
            continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%.120s%s%.120s", prefix, *prefix ? "." : "", k);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_object(e))
                return cl_err_set(err, CL_EPARSE,
                                  "cdh config: image.registry_config.%s[%zu] is not a table", sub,
                                  i);
            fprintf(f, "[[%s]]\n", sub);
            if (toml_table(f, e, sub, depth + 1, err) < 0)
                return err->code;
        }
    }
    return 0;
}

static int registry_toml(const json_t *t, char **out, struct cl_err *err)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    int rc = toml_table(f, t, "", 0, err);
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    free(*out);
    *out = buf;
    return 0;
}

void cl_cdh_config_clear(struct cl_cdh_config *cfg)
{
    free(cfg->socket);
    free(cfg->aa_socket);
    free(cfg->kbc_name);
    free(cfg->kbc_url);
    free(cfg->kbs_cert);
    for (size_t i = 0; i < cfg->ncreds; i++) {
        free(cfg->creds[i].resource_uri);
        free(cfg->creds[i].path);
    }
    free(cfg->log_level);
    free(cfg->rest_address);
    free(cfg->rest_features);
    free(cfg->sealed_key_dir);
    free(cfg->luks_header_dir);
    for (size_t i = 0; cfg->offline_files && cfg->offline_files[i]; i++)
        free(cfg->offline_files[i]);
    free(cfg->offline_files);
    image_clear(&cfg->image);
    cl_cdh_config_defaults(cfg);
}

/* Upstream's rule: under CL_CDH_CREDENTIAL_PREFIX, no "." or ".." component. */
static bool credential_path_ok(const char *p)
{
    size_t n = strlen(CL_CDH_CREDENTIAL_PREFIX);
    if (strncmp(p, CL_CDH_CREDENTIAL_PREFIX, n) != 0 || (p[n] != '/' && p[n] != 0))
        return false;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += len;
    }
    return true;
}

static const struct cl_cfg_field cred_rows[] = {
    CL_CFG_S("resource_uri", struct cl_cdh_credential, resource_uri, 0, NULL),
    CL_CFG_S("path", struct cl_cdh_credential, path, 0, NULL),
    CL_CFG_END_ROW,
};

/* [[credentials]]: each {resource_uri, path}; the path confined to CL_CDH_CREDENTIAL_PREFIX. */
static int read_credentials(struct cl_cfg *c, const json_t *arr, const char *path, void *base,
                            struct cl_err *err)
{
    struct cl_cdh_config *cfg = base;
    if (!json_is_array(arr))
        return cl_err_set(err, CL_EINVAL, "cdh config: '%s' must be an array of tables", path);
    if (json_array_size(arr) > CL_CDH_MAX_CREDENTIALS)
        return cl_err_set(err, CL_ELIMIT, "cdh config: more than %d credentials",
                          CL_CDH_MAX_CREDENTIALS);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        char where[48];
        snprintf(where, sizeof where, "credentials[%zu]", i);
        if (!json_is_object(e))
            return cl_err_set(err, CL_EINVAL, "cdh config: %s must be a table", where);
        struct cl_cdh_credential *cr = &cfg->creds[cfg->ncreds++];
        if (cl_cfg_read(c, e, where, cred_rows, cr, err) < 0)
            return err->code;
        if (!cr->resource_uri || !cr->path)
            return cl_err_set(err, CL_EINVAL, "cdh config: %s needs resource_uri and path", where);
        if (!credential_path_ok(cr->path))
            return cl_err_set(err, CL_EINVAL,
                              "cdh config: %s.path '%.128s' must lie under %s without . or .. "
                              "parts",
                              where, cr->path, CL_CDH_CREDENTIAL_PREFIX);
        struct cl_cdh_uri u;
        if (cl_cdh_uri_parse(cr->resource_uri, &u, err) < 0)
            return cl_err_prefix(err, "cdh config: %s.resource_uri", where);
    }
    return 0;
}

static json_t *show_credentials(const void *base)
{
    const struct cl_cdh_config *cfg = base;
    json_t *a = json_array();
    for (size_t i = 0; a && i < cfg->ncreds; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "resource_uri", cfg->creds[i].resource_uri,
                                           "path", cfg->creds[i].path));
    return a;
}

/* skip_sealed_secret_verification: upstream's spelling of the unsafe switch, refused when on. */
static int read_skip(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                     struct cl_err *err)
{
    if (!json_is_boolean(v))
        return cl_err_set(err, CL_EINVAL, "cdh config: '%s' must be true or false", path);
    if (json_is_true(v))
        cl_cfg_refuse(c, path,
                      "%s = true is refused; the switch that skips sealed-secret signatures is "
                      "spelled skip_sealed_secret_verification_insecure",
                      path);
    return 0;
}

static int read_registry_config(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                                struct cl_err *err)
{
    struct cl_cdh_config *cfg = base;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EINVAL, "cdh config: '%s' must be a table", path);
    return registry_toml(v, &cfg->image.registry_config, err);
}

static json_t *show_registry_config(const void *base)
{
    const char *t = ((const struct cl_cdh_config *)base)->image.registry_config;
    return t ? json_string(t) : json_null();
}

#define CDH struct cl_cdh_config

static const char *const kbc_names[] = {"cc_kbc", "offline_fs_kbc", NULL};
static const char *const rest_features[] = {"resource", "attestation", "all", NULL};

/* The tables of cdh.toml. Adding a key is one row (toml/cfg.h); its place in the struct, its
 * docs/configuration.md line and, when it names a file, CL_CFG_FILE/CL_CFG_PEM. */
static const struct cl_cfg_field aa_rows[] = {
    CL_CFG_S("aa_socket", CDH, aa_socket, 0, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field kbc_rows[] = {
    CL_CFG_E("name", CDH, kbc_name, kbc_names, "is not cc_kbc or offline_fs_kbc", NULL),
    CL_CFG_S("url", CDH, kbc_url, 0, NULL),
    CL_CFG_S("kbs_cert", CDH, kbs_cert, CL_CFG_PEM, NULL),
    CL_CFG_I("resource_cache_ttl", CDH, cache_ttl_s, 0, 86400, 0),
    CL_CFG_AN("offline_files", CDH, offline_files, 16, CL_CFG_FILE),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field log_rows[] = {
    CL_CFG_S("level", CDH, log_level, 0, "info"),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field rest_rows[] = {
    CL_CFG_S("address", CDH, rest_address, 0, NULL),
    CL_CFG_E("features", CDH, rest_features, rest_features, "is not resource, attestation or all",
             "resource"),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field proxy_rows[] = {
    CL_CFG_S("https_proxy", CDH, image.https_proxy, 0, NULL),
    CL_CFG_S("http_proxy", CDH, image.http_proxy, 0, NULL),
    CL_CFG_S("no_proxy", CDH, image.no_proxy, 0, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field image_rows[] = {
    CL_CFG_S("work_dir", CDH, image.work_dir, 0, NULL),
    CL_CFG_S("image_security_policy_uri", CDH, image.policy_uri, CL_CFG_FILE | CL_CFG_URI, NULL),
    CL_CFG_S("image_security_policy", CDH, image.policy, 0, NULL),
    CL_CFG_S("sigstore_config_uri", CDH, image.sigstore_config_uri, CL_CFG_FILE | CL_CFG_URI, NULL),
    CL_CFG_S("sigstore_config", CDH, image.sigstore_config, 0, NULL),
    CL_CFG_S("authenticated_registry_credentials_uri", CDH, image.auth_uri,
             CL_CFG_FILE | CL_CFG_URI, NULL),
    CL_CFG_S("registry_configuration_uri", CDH, image.registry_config_uri, CL_CFG_FILE | CL_CFG_URI,
             NULL),
    CL_CFG_F("registry_config", read_registry_config, show_registry_config),
    CL_CFG_I("max_concurrent_layer_downloads_per_image", CDH, image.max_concurrent, 1, 16, 0),
    CL_CFG_A("extra_root_certificates", CDH, image.extra_root_certs, image.ncerts,
             CL_CDH_MAX_ROOT_CERTS, CL_CFG_PEM),
    CL_CFG_T("image_pull_proxy", proxy_rows),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field cdh_rows[] = {
    CL_CFG_S("socket", CDH, socket, 0, CL_CDH_DEFAULT_SOCKET),
    CL_CFG_T("aa", aa_rows),
    CL_CFG_T("kbc", kbc_rows),
    CL_CFG_F("credentials", read_credentials, show_credentials),
    CL_CFG_T("log", log_rows),
    CL_CFG_T("rest", rest_rows),
    CL_CFG_F("skip_sealed_secret_verification", read_skip, NULL),
    CL_CFG_B("skip_sealed_secret_verification_insecure", CDH, skip_verification_insecure),
    CL_CFG_S("sealed_secret_key_dir", CDH, sealed_key_dir, 0, CL_CDH_SEALED_KEY_DIR),
    CL_CFG_S("luks_header_dir", CDH, luks_header_dir, 0, CL_CDH_LUKS_HEADER_DIR),
    CL_CFG_T("image", image_rows),
    CL_CFG_END_ROW,
};

static int parse_doc(struct cl_cfg *c, const json_t *doc, struct cl_cdh_config *cfg,
                     struct cl_err *err)
{
    if (cl_cfg_read(c, doc, "", cdh_rows, cfg, err) < 0)
        return err->code;
    /* [kbc] given: its name is required (upstream's rule) */
    json_t *kbc = json_object_get(doc, "kbc");
    if (json_is_object(kbc) && !json_object_get(kbc, "name"))
        return cl_err_set(err, CL_EINVAL, "cdh config: 'kbc.name' is missing");
    return 0;
}

static int parse_any(const char *text, size_t len, bool json, const char *file,
                     struct cl_cdh_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err); /* the table walkers read err->code */
    cl_cdh_config_defaults(cfg);
    if (len > CL_CDH_MAX_CONFIG)
        return cl_err_set(err, CL_ELIMIT, "cdh config of %zu bytes exceeds %d", len,
                          CL_CDH_MAX_CONFIG);
    CL_AUTO(json_t) *doc = json ? cl_json_parse(text, len, 32, err) : cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "cdh config");
    if (!json_is_object(doc))
        return cl_err_set(err, CL_EPARSE, "cdh config: not a table");
    struct cl_cfg c;
    cl_cfg_begin(&c, "cdh config", file, json ? NULL : text, len);
    int rc = cl_cfg_finish(&c, parse_doc(&c, doc, cfg, err), err);
    if (rc < 0)
        cl_cdh_config_clear(cfg);
    return rc;
}

int cl_cdh_config_parse(const char *text, size_t len, struct cl_cdh_config *cfg, struct cl_err *err)
{
    return parse_any(text, len, false, NULL, cfg, err);
}

int cl_cdh_config_load(const char *path, struct cl_cdh_config *cfg, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_CDH_MAX_CONFIG, &n, err);
    if (!text) {
        cl_cdh_config_defaults(cfg);
        return cl_err_prefix(err, "%s", path);
    }
    size_t pl = strlen(path);
    bool json = pl > 5 && strcmp(path + pl - 5, ".json") == 0;
    return parse_any((const char *)text, n, json, path, cfg, err);
}

json_t *cl_cdh_config_effective(const struct cl_cdh_config *cfg)
{
    return cl_cfg_effective(cdh_rows, cfg);
}

/* PEM text that must hold at least one certificate. */
static int pem_certs_ok(const char *pem, size_t len, struct cl_err *err)
{
    CL_AUTO(cl_x509_store) *st = X509_STORE_new();
    if (!st)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return cl_x509_store_add_pem(st, pem, len, err) < 0 ? (err->code = CL_EPARSE) : 0;
}

int cl_cdh_config_check_files(const struct cl_cdh_config *cfg, struct cl_err *err)
{
    if (cl_cfg_check_files("cdh config", cdh_rows, cfg, "", CL_CDH_OFFLINE_MAX, pem_certs_ok, err) <
        0)
        return err->code;
    /* offline_fs_kbc files must also parse: a JSON object of resources */
    for (size_t i = 0; cfg->offline_files && cfg->offline_files[i]; i++) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *t = cl_file_read(cfg->offline_files[i], CL_CDH_OFFLINE_MAX, &n, err);
        CL_AUTO(json_t) *m = t ? cl_json_parse((const char *)t, n, 4, err) : NULL;
        if (!json_is_object(m))
            return cl_err_set(err, CL_EPARSE,
                              "cdh config: 'kbc.offline_files[%zu]' %s is not a JSON object", i,
                              cfg->offline_files[i]);
    }
    return 0;
}
