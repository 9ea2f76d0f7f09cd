/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "csv" verifier: evidence {"attestation_report": {"magic": [16], "flags": n, "data":
 * [report page]}, "cert_chain": {"hsk_cek"?: {"hsk", "cek"}, "pek": <certificate>},
 * "serial_number": [64 bytes], "cc_eventlog"?: ...} as trustee's CSV attester sends it.
 * Stages in order: parse (report, PEK equal to the one in the report, serial number equal to
 * the report's) → bind (REPORT_DATA) → signature (report by the PEK) → chain (HRK pinned →
 * HSK → CEK → PEK; HSK and CEK from the evidence or the certificate folder) → tcb (debugging
 * refused) → claims. Reports carry no init-data field: an init-data digest is not bound and
 * no init_data claim is produced.
 */
#include "tee/csv/csv.h"
#include "tee/tee_int.h"

#include <openssl/sha.h>
#include <string.h>

#define DEFAULT_CERT_DIR "/opt/hygon/csv"

struct chain {
    struct cl_csv_ca_cert hrk, hsk;
    struct cl_csv_cert cek;
};

static int load_hrk(const char *dir, struct cl_csv_ca_cert *hrk, struct cl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/hrk.cert", dir);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, CL_CSV_CA_CERT_SIZE + 1, &n, err);
    if (!b) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "Hygon root key certificate");
    }
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(b, n, h);
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    bool pinned = false;
    for (size_t i = 0; i < cl_csv_hrk_npins; i++)
        pinned = pinned || strcmp(hex, cl_csv_hrk_pins[i]) == 0;
    if (!pinned)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "%s is not a pinned Hygon root key (SHA-256 %s)", path, hex);
    int rc;
    if ((rc = cl_csv_ca_cert_parse(b, n, hrk, err)) < 0) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return rc;
    }
    return 0;
}

/* HSK and CEK: from the evidence's cert_chain.hsk_cek, else <dir>/hsk_cek/<serial>/hsk_cek.cert
 * (the HSK's 832 bytes followed by the CEK's 2084). */
static int load_hsk_cek(const json_t *hc, const char *dir, const char *serial, struct chain *ch,
                        struct cl_err *err)
{
    int rc;
    if (hc && !json_is_null(hc)) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *hsk = cl_tee_json_bytes(json_object_get(hc, "hsk"), CL_CSV_CA_CERT_SIZE,
                                                   0, &n, "cert_chain.hsk_cek.hsk", err);
        if (!hsk) {
            err->stage = CL_TEE_STAGE_PARSE;
            return err->code;
        }
        if ((rc = cl_csv_ca_cert_parse(hsk, n, &ch->hsk, err)) < 0 ||
            (rc = cl_csv_cert_from_json(json_object_get(hc, "cek"), &ch->cek,
                                        "cert_chain.hsk_cek.cek", err)) < 0)
            return cl_err_prefix(err, "CSV evidence");
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/hsk_cek/%s/hsk_cek.cert", dir, serial);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, CL_CSV_CA_CERT_SIZE + CL_CSV_CERT_SIZE + 1, &n, err);
    if (!b) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "no HSK/CEK in the evidence and none for chip %s", serial);
    }
    if (n != CL_CSV_CA_CERT_SIZE + CL_CSV_CERT_SIZE)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_CHAIN,
                            "%s: %zu bytes (want HSK %d + CEK %d)", path, n, CL_CSV_CA_CERT_SIZE,
                            CL_CSV_CERT_SIZE);
    if ((rc = cl_csv_ca_cert_parse(b, CL_CSV_CA_CERT_SIZE, &ch->hsk, err)) < 0 ||
        (rc = cl_csv_cert_parse(b + CL_CSV_CA_CERT_SIZE, CL_CSV_CERT_SIZE, &ch->cek, err)) < 0) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "%s", path);
    }
    return 0;
}

static int parse_report(const json_t *ev, struct cl_csv_report *r, struct cl_err *err)
{
    const json_t *rep = json_object_get(ev, "attestation_report");
    if (!json_is_object(rep))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV evidence has no 'attestation_report' object");
    size_t n = 0;
    CL_AUTO(cl_bytes) *magic = cl_tee_json_bytes(json_object_get(rep, "magic"), 16, 0, &n,
                                                 "attestation_report.magic", err);
    if (!magic) {
        err->stage = CL_TEE_STAGE_PARSE;
        return err->code;
    }
    for (size_t i = 0; i < 16; i++)
        if (magic[i])
            return cl_err_stage(
                err, CL_EUNSUPPORTED, CL_TEE_STAGE_PARSE,
                "CSV report with a magic (a version-2 report): only version 1 is verified here");
    CL_AUTO(cl_bytes) *data = cl_tee_json_bytes(json_object_get(rep, "data"), 0, CL_CSV_REPORT_MAX,
                                                &n, "attestation_report.data", err);
    if (!data) {
        err->stage = CL_TEE_STAGE_PARSE;
        return err->code;
    }
    return cl_csv_report_parse(data, n, r, err);
}

/* Everything one verification holds (about 10 KiB, so on the heap). */
struct work {
    struct cl_csv_report r;
    struct chain ch;
    struct cl_csv_cert pek;
    uint8_t all[2 * CL_CSV_CA_CERT_SIZE + 2 * CL_CSV_CERT_SIZE];
};
typedef struct work csv_work;
static void cl_auto_csv_work(csv_work **p)
{
    free(*p);
}

int cl_tee_csv_verify(const struct cl_tee_verify_in *in, json_t **claims, struct cl_err *err)
{
    CL_TEE_ERR(err);
    /* ---- parse ---- */
    if (!json_is_object(in->evidence))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV evidence is not a JSON object");
    CL_AUTO(csv_work) *w = malloc(sizeof *w);
    if (!w)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_PARSE, "out of memory");
    struct cl_csv_report *r = &w->r;
    struct chain *ch = &w->ch;
    struct cl_csv_cert *pek = &w->pek;
    int rc;
    if ((rc = parse_report(in->evidence, r, err)) < 0)
        return rc;
    const json_t *cc = json_object_get(in->evidence, "cert_chain");
    if ((rc = cl_csv_cert_from_json(json_object_get(cc, "pek"), pek, "cert_chain.pek", err)) < 0)
        return rc;
    if (memcmp(pek->raw, r->pek.raw, CL_CSV_CERT_SIZE) != 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV evidence PEK differs from the PEK in the report");
    size_t n = 0;
    CL_AUTO(cl_bytes) *sn = cl_tee_json_bytes(json_object_get(in->evidence, "serial_number"), 0, 64,
                                              &n, "CSV evidence 'serial_number'", err);
    if (!sn) {
        err->stage = CL_TEE_STAGE_PARSE;
        return err->code;
    }
    size_t snl = strnlen((const char *)sn, n);
    if (snl != strlen(r->serial_number) || memcmp(sn, r->serial_number, snl) != 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV evidence serial_number differs from the report's");
    /* ---- bind ---- */
    if (in->report_data && !cl_tee_field_matches(r->report_data, sizeof r->report_data,
                                                 in->report_data, in->report_data_len))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_BIND,
                            "CSV REPORT_DATA does not match the runtime data digest");
    /* ---- signature, chain ---- */
    if ((rc = cl_csv_report_verify(r, pek, err)) < 0)
        return rc;
    const char *dir = in->cfg && in->cfg->csv_cert_dir ? in->cfg->csv_cert_dir : DEFAULT_CERT_DIR;
    if ((rc = load_hrk(dir, &ch->hrk, err)) < 0 ||
        (rc = load_hsk_cek(json_object_get(cc, "hsk_cek"), dir, r->serial_number, ch, err)) < 0)
        return rc;
    /* a verified chain is remembered by the hash of its bytes (these certificates do not expire) */
    memcpy(w->all, ch->hrk.raw, CL_CSV_CA_CERT_SIZE);
    memcpy(w->all + CL_CSV_CA_CERT_SIZE, ch->hsk.raw, CL_CSV_CA_CERT_SIZE);
    memcpy(w->all + 2 * CL_CSV_CA_CERT_SIZE, ch->cek.raw, CL_CSV_CERT_SIZE);
    memcpy(w->all + 2 * CL_CSV_CA_CERT_SIZE + CL_CSV_CERT_SIZE, pek->raw, CL_CSV_CERT_SIZE);
    struct cl_tee_cache_key key;
    cl_tee_cache_key_certs("csv-chain", NULL, 0, w->all, sizeof w->all, &key);
    if (!cl_tee_cache_hit(&key, 0)) {
        if ((rc = cl_csv_verify_chain(&ch->hrk, &ch->hsk, &ch->cek, pek, err)) < 0)
            return rc;
        cl_tee_cache_put(&key, INT64_MIN, INT64_MAX);
    }
    /* ---- tcb ---- */
    if (!(r->policy & CL_CSV_POLICY_NODBG)) {
        if (!in->cfg || !in->cfg->allow_debug_insecure)
            return cl_err_stage(
                err, CL_EDENIED, CL_TEE_STAGE_TCB,
                "CSV guest policy allows debugging (set allow_debug_insecure to accept it)");
        cl_insecure("allow_debug_insecure", "accepting a CSV guest whose policy allows debugging");
    }
    /* ---- claims ---- */
    json_t *c = cl_csv_claims(r, err);
    if (!c)
        return err->code ? err->code : CL_ENOMEM;
    *claims = c;
    return 0;
}
