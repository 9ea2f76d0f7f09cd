/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aa.toml with upstream's key names (TOML, or JSON when the file name ends in .json, as
 * upstream's config crate decides by extension). Unknown keys are warned about by their
 * dotted path and otherwise ignored (upstream's serde ignores them silently); a known key of
 * the wrong type is refused with its dotted name.
 */
#include "aa/aa.h"
#include "toml/toml.h"

#include <string.h>

static int opt_str(const json_t *obj, const char *key, const char *where, char **dst,
                   struct cl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return cl_err_set(err, CL_EPARSE, "aa config: '%s.%s' must be a string", where, key);
    free(*dst);
    *dst = strdup(json_string_value(v));
    return *dst ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

static int opt_bool(const json_t *obj, const char *key, const char *where, bool *dst,
                    struct cl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return cl_err_set(err, CL_EPARSE, "aa config: '%s.%s' must be true or false", where, key);
    *dst = json_is_true(v);
    return 0;
}

static int opt_table(const json_t *obj, const char *key, const char *where, json_t **out,
                     struct cl_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return cl_err_set(err, CL_EPARSE, "aa config: '%s%s' must be a table", where, key);
    *out = v;
    return 0;
}

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
            cl_warn("aa config: unknown key '%s%s' ignored", where, k);
    }
}

void cl_aa_config_defaults(struct cl_aa_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->init_pcr = CL_AA_DEFAULT_INIT_PCR;
}

void cl_aa_config_clear(struct cl_aa_config *cfg)
{
    free(cfg->kbs_url);
    free(cfg->kbs_cert);
    free(cfg->tee_key_algorithm);
    free(cfg->coco_as_url);
    free(cfg->log_level);
    free(cfg->eventlog_path);
    free(cfg->attester);
    free(cfg->tpm_tcti);
    cl_aa_config_defaults(cfg);
}

static int parse_doc(const json_t *doc, struct cl_aa_config *cfg, struct cl_err *err)
{
    static const char *const top[] = {
        "token_configs", "eventlog_config", "log", "allow_sample_attester_insecure",
        "attester",      "tpm_tcti",        NULL};
    static const char *const tck[] = {"kbs", "coco_as", NULL}, *const kbsk[] = {"url", "cert",
                                                                                "tee_key_algorithm",
                                                                                NULL};
    static const char *const ask[] = {"url", NULL}, *const elk[] = {"init_pcr", "enable_eventlog",
                                                                    "path", NULL};
    static const char *const logk[] = {"level", NULL};
    warn_unknown(doc, "", top);
    json_t *tcs = json_object_get(doc, "token_configs");
    warn_unknown(tcs, "token_configs.", tck);
    warn_unknown(json_object_get(tcs, "kbs"), "token_configs.kbs.", kbsk);
    warn_unknown(json_object_get(tcs, "coco_as"), "token_configs.coco_as.", ask);
    warn_unknown(json_object_get(doc, "eventlog_config"), "eventlog_config.", elk);
    warn_unknown(json_object_get(doc, "log"), "log.", logk);
    json_t *tc = NULL, *kbs = NULL, *as = NULL, *el = NULL, *log = NULL;
    if (opt_table(doc, "token_configs", "", &tc, err) < 0 ||
        opt_table(tc, "kbs", "token_configs.", &kbs, err) < 0 ||
        opt_table(tc, "coco_as", "token_configs.", &as, err) < 0 ||
        opt_table(doc, "eventlog_config", "", &el, err) < 0 ||
        opt_table(doc, "log", "", &log, err) < 0)
        return err->code;
    if (kbs) {
        if (!json_object_get(kbs, "url"))
            return cl_err_set(err, CL_EPARSE, "aa config: 'token_configs.kbs.url' is missing");
        if (opt_str(kbs, "url", "token_configs.kbs", &cfg->kbs_url, err) < 0 ||
            opt_str(kbs, "cert", "token_configs.kbs", &cfg->kbs_cert, err) < 0 ||
            opt_str(kbs, "tee_key_algorithm", "token_configs.kbs", &cfg->tee_key_algorithm, err) <
                0)
            return err->code;
        const char *a = cfg->tee_key_algorithm;
        if (a && strcmp(a, "ECDH-ES+A256KW-P256") != 0 && strcmp(a, "ECDH-ES+A256KW-P521") != 0 &&
            strcmp(a, "RSA-OAEP-256") != 0)
            return cl_err_set(
                err, CL_EPARSE,
                "aa config: 'token_configs.kbs.tee_key_algorithm' = '%.40s' is not one of "
                "ECDH-ES+A256KW-P256, ECDH-ES+A256KW-P521, RSA-OAEP-256",
                a);
    }
    if (as) {
        if (!json_object_get(as, "url"))
            return cl_err_set(err, CL_EPARSE, "aa config: 'token_configs.coco_as.url' is missing");
        if (opt_str(as, "url", "token_configs.coco_as", &cfg->coco_as_url, err) < 0)
            return err->code;
    }
    if (el) {
        json_t *pcr = json_object_get(el, "init_pcr");
        if (pcr) {
            if (!json_is_integer(pcr) || json_integer_value(pcr) < 0 ||
                json_integer_value(pcr) > 23)
                return cl_err_set(err, CL_EPARSE,
                                  "aa config: 'eventlog_config.init_pcr' must be an integer 0..23");
            cfg->init_pcr = (unsigned)json_integer_value(pcr);
        }
        if (opt_bool(el, "enable_eventlog", "eventlog_config", &cfg->enable_eventlog, err) < 0 ||
            opt_str(el, "path", "eventlog_config", &cfg->eventlog_path, err) < 0)
            return err->code;
    }
    if (log && opt_str(log, "level", "log", &cfg->log_level, err) < 0)
        return err->code;
    if (opt_bool(doc, "allow_sample_attester_insecure", "(top level)",
                 &cfg->allow_sample_attester_insecure, err) < 0 ||
        opt_str(doc, "attester", "(top level)", &cfg->attester, err) < 0 ||
        opt_str(doc, "tpm_tcti", "(top level)", &cfg->tpm_tcti, err) < 0)
        return err->code;
    return 0;
}

static int parse_any(const char *text, size_t len, bool json, struct cl_aa_config *cfg,
                     struct cl_err *err)
{
    cl_aa_config_defaults(cfg);
    if (len > CL_AA_MAX_CONFIG)
        return cl_err_set(err, CL_ELIMIT, "aa config of %zu bytes exceeds %d", len,
                          CL_AA_MAX_CONFIG);
    CL_AUTO(json_t) *doc = json ? cl_json_parse(text, len, 16, err) : cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "aa config");
    if (!json_is_object(doc))
        return cl_err_set(err, CL_EPARSE, "aa config: not a table");
    int rc = parse_doc(doc, cfg, err);
    if (rc < 0)
        cl_aa_config_clear(cfg);
    return rc;
}

int cl_aa_config_parse(const char *text, size_t len, struct cl_aa_config *cfg, struct cl_err *err)
{
    return parse_any(text, len, false, cfg, err);
}

int cl_aa_config_load(const char *path, struct cl_aa_config *cfg, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_AA_MAX_CONFIG, &n, err);
    if (!text) {
        cl_aa_config_defaults(cfg);
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

json_t *cl_aa_config_effective(const struct cl_aa_config *cfg)
{
    return json_pack("{s:{s:{s:o, s:o, s:s}, s:{s:o}}, s:{s:I, s:b, s:s}, s:{s:s}, s:b, s:o, s:o}",
                     "token_configs", "kbs", "url", s_or_null(cfg->kbs_url), "cert",
                     s_or_null(cfg->kbs_cert), "tee_key_algorithm",
                     cfg->tee_key_algorithm ? cfg->tee_key_algorithm : "ECDH-ES+A256KW-P256",
                     "coco_as", "url", s_or_null(cfg->coco_as_url), "eventlog_config", "init_pcr",
                     (json_int_t)cfg->init_pcr, "enable_eventlog", cfg->enable_eventlog, "path",
                     cfg->eventlog_path ? cfg->eventlog_path : CL_AA_EVENTLOG_PATH, "log", "level",
                     cfg->log_level ? cfg->log_level : "info", "allow_sample_attester_insecure",
                     cfg->allow_sample_attester_insecure, "attester", s_or_null(cfg->attester),
                     "tpm_tcti", s_or_null(cfg->tpm_tcti));
}
