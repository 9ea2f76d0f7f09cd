/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aa.toml with upstream's key names (TOML, or JSON when the file name ends in .json, as
 * upstream's config crate decides by extension), read by the table-driven reader
 * (toml/cfg.h). Every key is honoured or refused: a key Cloister does not know is refused by
 * its dotted path and file:line (upstream's serde would ignore it silently; here a typo in a
 * guest setting stops the daemon, exit 2, as the KBS does); a known key of the wrong type is
 * refused naming it.
 */
#include "aa/aa.h"
#include "crypto/crypto.h"
#include "toml/cfg.h"
#include "toml/toml.h"

#include <string.h>

#define AA struct cl_aa_config

static const char *const key_algs[] = {"ECDH-ES+A256KW-P256", "ECDH-ES+A256KW-P521", "RSA-OAEP-256",
                                       NULL};

/* The tables of aa.toml. Adding a key is one row (toml/cfg.h); its place in the struct, its
 * docs/configuration.md line and, when it names a file, CL_CFG_FILE/CL_CFG_PEM. */
static const struct cl_cfg_field kbs_rows[] = {
    CL_CFG_S("url", AA, kbs_url, CL_CFG_REQUIRED, NULL),
    CL_CFG_S("cert", AA, kbs_cert, CL_CFG_PEM, NULL),
    CL_CFG_E("tee_key_algorithm", AA, tee_key_algorithm, key_algs,
             "is not one of ECDH-ES+A256KW-P256, ECDH-ES+A256KW-P521, RSA-OAEP-256",
             "ECDH-ES+A256KW-P256"),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field coco_as_rows[] = {
    CL_CFG_S("url", AA, coco_as_url, CL_CFG_REQUIRED, NULL),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field token_rows[] = {
    CL_CFG_T("kbs", kbs_rows),
    CL_CFG_T("coco_as", coco_as_rows),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field eventlog_rows[] = {
    CL_CFG_I("init_pcr", AA, init_pcr, 0, 23, 0),
    CL_CFG_B("enable_eventlog", AA, enable_eventlog),
    CL_CFG_S("path", AA, eventlog_path, 0, CL_AA_EVENTLOG_PATH),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field log_rows[] = {
    CL_CFG_S("level", AA, log_level, 0, "info"),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field aa_rows[] = {
    CL_CFG_T("token_configs", token_rows),
    CL_CFG_T("eventlog_config", eventlog_rows),
    CL_CFG_T("log", log_rows),
    CL_CFG_B("allow_sample_attester_insecure", AA, allow_sample_attester_insecure),
    CL_CFG_S("attester", AA, attester, 0, NULL),
    CL_CFG_S("tpm_tcti", AA, tpm_tcti, 0, NULL),
    CL_CFG_END_ROW,
};

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

static int parse_any(const char *text, size_t len, bool json, const char *file,
                     struct cl_aa_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    cl_aa_config_defaults(cfg);
    if (len > CL_AA_MAX_CONFIG)
        return cl_err_set(err, CL_ELIMIT, "aa config of %zu bytes exceeds %d", len,
                          CL_AA_MAX_CONFIG);
    CL_AUTO(json_t) *doc = json ? cl_json_parse(text, len, 16, err) : cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "aa config");
    if (!json_is_object(doc))
        return cl_err_set(err, CL_EPARSE, "aa config: not a table");
    struct cl_cfg c;
    cl_cfg_begin(&c, "aa config", file, json ? NULL : text, len);
    int rc = cl_cfg_finish(&c, cl_cfg_read(&c, doc, "", aa_rows, cfg, err), err);
    if (rc < 0)
        cl_aa_config_clear(cfg);
    return rc;
}

int cl_aa_config_parse(const char *text, size_t len, struct cl_aa_config *cfg, struct cl_err *err)
{
    return parse_any(text, len, false, NULL, cfg, err);
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
    return parse_any((const char *)text, n, json, path, cfg, err);
}

json_t *cl_aa_config_effective(const struct cl_aa_config *cfg)
{
    return cl_cfg_effective(aa_rows, cfg);
}

/* PEM text that must hold at least one certificate. */
static int pem_certs_ok(const char *pem, size_t len, struct cl_err *err)
{
    CL_AUTO(cl_x509_store) *st = X509_STORE_new();
    if (!st)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return cl_x509_store_add_pem(st, pem, len, err) < 0 ? (err->code = CL_EPARSE) : 0;
}

int cl_aa_config_check_files(const struct cl_aa_config *cfg, struct cl_err *err)
{
    return cl_cfg_check_files("aa config", aa_rows, cfg, "", CL_AA_MAX_CONFIG, pem_certs_ok, err);
}
