/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cdh.toml with upstream's key names (TOML, or JSON by extension), plus Cloister's own keys
 * for the REST bridge, the resource cache and the local folders, and the [image] table of the
 * image pull service (an inline [image.registry_config] is turned back into registries.conf
 * TOML, the form src/image reads). Unknown keys are ignored.
 */
#include "cdh/cdh.h"
#include "toml/toml.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int opt_str(const json_t *obj, const char *key, const char *where, char **dst,
                   struct cl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return cl_err_set(err, CL_EPARSE, "cdh config: '%s%s' must be a string", where, key);
    free(*dst);
    *dst = strdup(json_string_value(v));
    return *dst ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

static int opt_table(const json_t *obj, const char *key, json_t **out, struct cl_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EPARSE, "cdh config: '%s' must be a table", key);
    *out = v;
    return 0;
}

/* Upstream's serde skips unknown fields silently; here each one is warned about by its dotted
 * path (a typo in a guest setting is seen in the log), and the daemon still starts. */
static void warn_unknown(const json_t *tbl, const char *where, const char *const *known)
{
    const char *k;
    json_t *v;
    if (!json_is_object(tbl))
        return;
    json_object_foreach((json_t *)(uintptr_t)tbl, k, v)
    {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k) != 0)
            i++;
        if (!known[i])
            cl_warn("cdh config: unknown key '%s%s' ignored", where, k);
    }
}

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
        snprintf(sub, sizeof sub, "%s%s%s", prefix, *prefix ? "." : "", k);
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

static int parse_image(const json_t *im, struct cl_cdh_image_config *ic, struct cl_err *err)
{
    if (!im)
        return 0;
    static const char *const known[] = {"work_dir",
                                        "image_security_policy_uri",
                                        "image_security_policy",
                                        "sigstore_config_uri",
                                        "sigstore_config",
                                        "authenticated_registry_credentials_uri",
                                        "registry_configuration_uri",
                                        "max_concurrent_layer_downloads_per_image",
                                        "extra_root_certificates",
                                        "image_pull_proxy",
                                        "registry_config",
                                        NULL};
    static const char *const proxy_known[] = {"https_proxy", "http_proxy", "no_proxy", NULL};
    warn_unknown(im, "image.", known);
    warn_unknown(json_object_get(im, "image_pull_proxy"), "image.image_pull_proxy.", proxy_known);
    static const struct {
        const char *key;
        size_t off;
    } strs[] = {
        {"work_dir", offsetof(struct cl_cdh_image_config, work_dir)},
        {"image_security_policy_uri", offsetof(struct cl_cdh_image_config, policy_uri)},
        {"image_security_policy", offsetof(struct cl_cdh_image_config, policy)},
        {"sigstore_config_uri", offsetof(struct cl_cdh_image_config, sigstore_config_uri)},
        {"sigstore_config", offsetof(struct cl_cdh_image_config, sigstore_config)},
        {"authenticated_registry_credentials_uri", offsetof(struct cl_cdh_image_config, auth_uri)},
        {"registry_configuration_uri", offsetof(struct cl_cdh_image_config, registry_config_uri)},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(strs); i++)
        if (opt_str(im, strs[i].key, "image.", (char **)(void *)((char *)ic + strs[i].off), err) <
            0)
            return err->code;
    json_t *mc = json_object_get(im, "max_concurrent_layer_downloads_per_image");
    if (mc) {
        if (!json_is_integer(mc) || json_integer_value(mc) < 1 || json_integer_value(mc) > 16)
            return cl_err_set(
                err, CL_EPARSE,
                "cdh config: 'image.max_concurrent_layer_downloads_per_image' must be 1..16");
        ic->max_concurrent = (long)json_integer_value(mc);
    }
    json_t *certs = json_object_get(im, "extra_root_certificates");
    if (certs) {
        if (!json_is_array(certs) || json_array_size(certs) > CL_CDH_MAX_ROOT_CERTS)
            return cl_err_set(err, CL_EPARSE,
                              "cdh config: 'image.extra_root_certificates' must be an array of at "
                              "most %d PEM strings",
                              CL_CDH_MAX_ROOT_CERTS);
        size_t i;
        json_t *c;
        json_array_foreach(certs, i, c)
        {
            if (!json_is_string(c))
                return cl_err_set(err, CL_EPARSE,
                                  "cdh config: image.extra_root_certificates[%zu] must be a string",
                                  i);
            if (!(ic->extra_root_certs[ic->ncerts++] = strdup(json_string_value(c))))
                return cl_err_set(err, CL_ENOMEM, "out of memory");
        }
    }
    json_t *proxy = NULL, *regcfg = NULL;
    if (opt_table(im, "image_pull_proxy", &proxy, err) < 0 ||
        opt_table(im, "registry_config", &regcfg, err) < 0 ||
        opt_str(proxy, "https_proxy", "image.image_pull_proxy.", &ic->https_proxy, err) < 0 ||
        opt_str(proxy, "http_proxy", "image.image_pull_proxy.", &ic->http_proxy, err) < 0 ||
        opt_str(proxy, "no_proxy", "image.image_pull_proxy.", &ic->no_proxy, err) < 0)
        return err->code;
    return regcfg ? registry_toml(regcfg, &ic->registry_config, err) : 0;
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

static int parse_credentials(const json_t *arr, struct cl_cdh_config *cfg, struct cl_err *err)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return cl_err_set(err, CL_EPARSE, "cdh config: 'credentials' must be an array of tables");
    if (json_array_size(arr) > CL_CDH_MAX_CREDENTIALS)
        return cl_err_set(err, CL_ELIMIT, "cdh config: more than %d credentials",
                          CL_CDH_MAX_CREDENTIALS);
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
    {
        if (!json_is_object(c))
            return cl_err_set(err, CL_EPARSE, "cdh config: credentials[%zu] must be a table", i);
        struct cl_cdh_credential *cr = &cfg->creds[cfg->ncreds++];
        if (opt_str(c, "resource_uri", "credentials[].", &cr->resource_uri, err) < 0 ||
            opt_str(c, "path", "credentials[].", &cr->path, err) < 0)
            return err->code;
        if (!cr->resource_uri || !cr->path)
            return cl_err_set(err, CL_EPARSE,
                              "cdh config: credentials[%zu] needs resource_uri and path", i);
        if (!credential_path_ok(cr->path))
            return cl_err_set(err, CL_EINVAL,
                              "cdh config: credentials[%zu].path '%.128s' must lie under %s "
                              "without . or .. parts",
                              i, cr->path, CL_CDH_CREDENTIAL_PREFIX);
        struct cl_cdh_uri u;
        if (cl_cdh_uri_parse(cr->resource_uri, &u, err) < 0)
            return cl_err_prefix(err, "cdh config: credentials[%zu].resource_uri", i);
    }
    return 0;
}

static int parse_doc(const json_t *doc, struct cl_cdh_config *cfg, struct cl_err *err)
{
    static const char *const top[] = {"socket",
                                      "aa",
                                      "kbc",
                                      "log",
                                      "rest",
                                      "credentials",
                                      "image",
                                      "skip_sealed_secret_verification",
                                      "skip_sealed_secret_verification_insecure",
                                      "sealed_secret_key_dir",
                                      "luks_header_dir",
                                      NULL};
    static const char *const aak[] = {"aa_socket", NULL}, *const kbck[] = {
                                                              "name",          "url",
                                                              "kbs_cert",      "resource_cache_ttl",
                                                              "offline_files", NULL};
    static const char *const logk[] = {"level", NULL}, *const restk[] = {"address", "features",
                                                                         NULL};
    static const char *const credk[] = {"resource_uri", "path", NULL};
    warn_unknown(doc, "", top);
    warn_unknown(json_object_get(doc, "aa"), "aa.", aak);
    warn_unknown(json_object_get(doc, "kbc"), "kbc.", kbck);
    warn_unknown(json_object_get(doc, "log"), "log.", logk);
    warn_unknown(json_object_get(doc, "rest"), "rest.", restk);
    json_t *creds = json_object_get(doc, "credentials");
    for (size_t i = 0; json_is_array(creds) && i < json_array_size(creds); i++) {
        char w[48];
        snprintf(w, sizeof w, "credentials[%zu].", i);
        warn_unknown(json_array_get(creds, i), w, credk);
    }
    json_t *aa = NULL, *kbc = NULL, *log = NULL, *rest = NULL;
    if (opt_str(doc, "socket", "", &cfg->socket, err) < 0 || opt_table(doc, "aa", &aa, err) < 0 ||
        opt_table(doc, "kbc", &kbc, err) < 0 || opt_table(doc, "log", &log, err) < 0 ||
        opt_table(doc, "rest", &rest, err) < 0)
        return err->code;
    json_t *skip = json_object_get(doc, "skip_sealed_secret_verification");
    if (skip && !json_is_boolean(skip))
        return cl_err_set(err, CL_EPARSE,
                          "cdh config: 'skip_sealed_secret_verification' must be true or false");
    if (json_is_true(skip))
        return cl_err_set(
            err, CL_EINVAL,
            "cdh config: skip_sealed_secret_verification = true is refused; the switch that skips "
            "sealed-secret signatures is spelled skip_sealed_secret_verification_insecure");
    json_t *skipi = json_object_get(doc, "skip_sealed_secret_verification_insecure");
    if (skipi && !json_is_boolean(skipi))
        return cl_err_set(
            err, CL_EPARSE,
            "cdh config: 'skip_sealed_secret_verification_insecure' must be true or false");
    cfg->skip_verification_insecure = json_is_true(skipi);
    if (opt_str(aa, "aa_socket", "aa.", &cfg->aa_socket, err) < 0 ||
        opt_str(kbc, "name", "kbc.", &cfg->kbc_name, err) < 0 ||
        opt_str(kbc, "url", "kbc.", &cfg->kbc_url, err) < 0 ||
        opt_str(kbc, "kbs_cert", "kbc.", &cfg->kbs_cert, err) < 0 ||
        opt_str(log, "level", "log.", &cfg->log_level, err) < 0 ||
        opt_str(rest, "address", "rest.", &cfg->rest_address, err) < 0 ||
        opt_str(rest, "features", "rest.", &cfg->rest_features, err) < 0 ||
        opt_str(doc, "sealed_secret_key_dir", "", &cfg->sealed_key_dir, err) < 0 ||
        opt_str(doc, "luks_header_dir", "", &cfg->luks_header_dir, err) < 0)
        return err->code;
    if (kbc && !cfg->kbc_name)
        return cl_err_set(err, CL_EPARSE, "cdh config: 'kbc.name' is missing");
    if (cfg->kbc_name && strcmp(cfg->kbc_name, "cc_kbc") != 0 &&
        strcmp(cfg->kbc_name, "offline_fs_kbc") != 0)
        return cl_err_set(err, CL_EINVAL,
                          "cdh config: kbc.name '%.32s' is not cc_kbc or offline_fs_kbc",
                          cfg->kbc_name);
    json_t *ttl = json_object_get(kbc, "resource_cache_ttl");
    if (ttl) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 0 || json_integer_value(ttl) > 86400)
            return cl_err_set(err, CL_EPARSE,
                              "cdh config: 'kbc.resource_cache_ttl' must be 0..86400 seconds");
        cfg->cache_ttl_s = (long)json_integer_value(ttl);
    }
    json_t *files = json_object_get(kbc, "offline_files");
    if (files) {
        if (!json_is_array(files) || json_array_size(files) > 16)
            return cl_err_set(
                err, CL_EPARSE,
                "cdh config: 'kbc.offline_files' must be an array of at most 16 paths");
        cfg->offline_files = calloc(json_array_size(files) + 1, sizeof(char *));
        if (!cfg->offline_files)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        size_t i;
        json_t *f;
        json_array_foreach(files, i, f)
        {
            if (!json_is_string(f))
                return cl_err_set(err, CL_EPARSE,
                                  "cdh config: kbc.offline_files[%zu] must be a string", i);
            if (!(cfg->offline_files[i] = strdup(json_string_value(f))))
                return cl_err_set(err, CL_ENOMEM, "out of memory");
        }
    }
    if (cfg->rest_features && strcmp(cfg->rest_features, "resource") != 0 &&
        strcmp(cfg->rest_features, "attestation") != 0 && strcmp(cfg->rest_features, "all") != 0)
        return cl_err_set(err, CL_EINVAL,
                          "cdh config: rest.features '%.32s' is not resource, attestation or all",
                          cfg->rest_features);
    json_t *image = NULL;
    if (opt_table(doc, "image", &image, err) < 0 || parse_image(image, &cfg->image, err) < 0)
        return err->code;
    return parse_credentials(json_object_get(doc, "credentials"), cfg, err);
}

static int parse_any(const char *text, size_t len, bool json, struct cl_cdh_config *cfg,
                     struct cl_err *err)
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
    int rc = parse_doc(doc, cfg, err);
    if (rc < 0)
        cl_cdh_config_clear(cfg);
    return rc;
}

int cl_cdh_config_parse(const char *text, size_t len, struct cl_cdh_config *cfg, struct cl_err *err)
{
    return parse_any(text, len, false, cfg, err);
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
    int rc = parse_any((const char *)text, n, json, cfg, err);
    return rc < 0 ? cl_err_prefix(err, "%s", path) : 0;
}

static json_t *s_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *cl_cdh_config_effective(const struct cl_cdh_config *cfg)
{
    const struct cl_cdh_image_config *im = &cfg->image;
    json_t *creds = json_array(), *certs = json_array();
    for (size_t i = 0; i < cfg->ncreds; i++)
        json_array_append_new(creds,
                              json_pack("{s:s, s:s}", "resource_uri", cfg->creds[i].resource_uri,
                                        "path", cfg->creds[i].path));
    for (size_t i = 0; i < im->ncerts; i++)
        json_array_append_new(certs, json_string(im->extra_root_certs[i]));
    return json_pack(
        "{s:s, s:{s:o}, s:{s:o, s:o, s:o, s:I}, s:o, s:{s:s}, s:{s:o, s:s}, s:b, s:s, s:s, "
        "s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:{s:o, s:o, s:o}}}",
        "socket", cfg->socket ? cfg->socket : CL_CDH_DEFAULT_SOCKET, "aa", "aa_socket",
        s_or_null(cfg->aa_socket), "kbc", "name", s_or_null(cfg->kbc_name), "url",
        s_or_null(cfg->kbc_url), "kbs_cert", s_or_null(cfg->kbs_cert), "resource_cache_ttl",
        (json_int_t)cfg->cache_ttl_s, "credentials", creds, "log", "level",
        cfg->log_level ? cfg->log_level : "info", "rest", "address", s_or_null(cfg->rest_address),
        "features", cfg->rest_features ? cfg->rest_features : "resource",
        "skip_sealed_secret_verification_insecure", cfg->skip_verification_insecure,
        "sealed_secret_key_dir", cfg->sealed_key_dir ? cfg->sealed_key_dir : CL_CDH_SEALED_KEY_DIR,
        "luks_header_dir", cfg->luks_header_dir ? cfg->luks_header_dir : CL_CDH_LUKS_HEADER_DIR,
        "image", "work_dir", s_or_null(im->work_dir), "image_security_policy_uri",
        s_or_null(im->policy_uri), "image_security_policy", s_or_null(im->policy),
        "sigstore_config_uri", s_or_null(im->sigstore_config_uri), "sigstore_config",
        s_or_null(im->sigstore_config), "authenticated_registry_credentials_uri",
        s_or_null(im->auth_uri), "registry_configuration_uri", s_or_null(im->registry_config_uri),
        "registry_config", s_or_null(im->registry_config),
        "max_concurrent_layer_downloads_per_image", (json_int_t)im->max_concurrent,
        "extra_root_certificates", certs, "image_pull_proxy", "https_proxy",
        s_or_null(im->https_proxy), "http_proxy", s_or_null(im->http_proxy), "no_proxy",
        s_or_null(im->no_proxy));
}
