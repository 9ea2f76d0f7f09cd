/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister as verify`: runs one TEE verifier offline on an evidence file and prints every
 * claim, or the stage that refused and why. The evidence is the JSON a KBS would receive, or
 * for snp/tdx the raw binary report/quote (wrapped here, with --cert/--ccel for the pieces
 * that travel beside it). The expected report data is given as hex, or computed as the KBS
 * does (JCS + SHA-384 of the runtime data); init-data as its TOML file.
 */
#include "as/as.h"
#include "cmd/cli.h"
#include "tee/tee.h"
#include "toml/toml.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define MAX_CERTS 8
#define MAX_EVIDENCE (8u << 20)

static const char *const help_text =
    "Usage: cloister as verify --evidence FILE --tee TEE [OPTIONS]\n"
    "\n"
    "Runs the TEE verifier offline and prints the claims as JSON; on refusal prints the stage\n"
    "(parse, bind, init-data, signature, chain, collateral, tcb, eventlog, claims) and why.\n"
    "\n"
    "  --tee TEE                  snp, tdx, tpm, az-snp-vtpm, az-tdx-vtpm (or sample)\n"
    "                             nvidia, sgx\n"
    "                             cca (evidence JSON or the raw CBOR token), csv (evidence JSON)\n"
    "  --evidence FILE            evidence JSON; for snp a raw report, for tdx a raw quote\n"
    "  --cert FILE                snp raw report: a VCEK/VLEK/ASK/ARK certificate (DER or PEM)\n"
    "  --ccel FILE                tdx raw quote: the CC event log\n"
    "                             sgx: a raw v3 quote; nvidia: a raw SPDM report (binary or hex)\n"
    "                             with --cert FILE = the device certificate chain (PEM)\n"
    "Expected report data (one of; none = binding NOT checked, inspection only):\n"
    "  --report-data HEX          the digest itself\n"
    "  --nonce NONCE --tee-pubkey JWK_FILE [--additional-evidence STR]\n"
    "                             as the KBS computes it: SHA-384 of the JCS of the runtime data\n"
    "  --runtime-data JSON_FILE   SHA-384 of the JCS of this object\n"
    "  --init-data TOML_FILE      init-data document (its own algorithm; digest checked)\n"
    "Verifier settings ([attestation_service.verifier_config] in the KBS):\n"
    "  --at UNIX_TIME             check certificates and collateral at this time (vectors)\n"
    "  --snp-cache DIR            SNP certificate cache (KDS layout)\n"
    "  --kds[=URL]                fetch missing SNP certificates from AMD KDS\n"
    "  --tdx-collateral DIR       TDX collateral folder      --pccs URL  PCS/PCCS base URL\n"
    "  --sgx-collateral DIR       SGX collateral folder (same layout as TDX's)\n"
    "  --ak-ca FILE               TPM: CA that certifies attestation keys\n"
    "  --cca-ta-store FILE        CCA: trust-anchor store (CPAK per instance id), required\n"
    "  --cca-rv-store FILE        CCA: reference-value store (platform and realm measurements)\n"
    "  --csv-cert-dir DIR         CSV: hrk.cert, hsk_cek/<chip>/hsk_cek.cert (/opt/hygon/csv)\n"
    "  --allow-debug-insecure     accept debug TEEs\n"
    "  --allow-tcb-status-insecure STATUS   accept a TDX TCB status (repeatable)\n"
    "  --allow-expired-collateral-insecure  accept expired TDX collateral\n"
    "\n"
    "Exit status: 0 verified, 3 malformed, 4 refused (verification), 5 refused (policy),\n"
    "9 expired, 2 usage.\n";

struct aopts {
    const char *tee, *evidence, *report_data, *nonce, *tee_pubkey, *additional, *runtime_data,
        *init_data, *ccel;
    const char *certs[MAX_CERTS];
    size_t ncerts;
    struct cl_tee_config cfg;
};

static int usage_error(const char *msg)
{
    cl_cli_errf("cloister as verify: %s", msg);
    fputc('\n', stderr);
    fputs(help_text, stderr);
    return 2;
}

static int fail(const struct cl_err *e, const char *what)
{
    cl_cli_errf("cloister as verify: %s: %s", what, e->msg);
    return cl_err_exit_code(e->code);
}

static int parse_args(int argc, char **argv, struct aopts *o)
{
    static const struct option longopts[] = {
        {"tee", required_argument, NULL, 'T'},
        {"evidence", required_argument, NULL, 'e'},
        {"cert", required_argument, NULL, 'c'},
        {"ccel", required_argument, NULL, 'L'},
        {"report-data", required_argument, NULL, 'r'},
        {"nonce", required_argument, NULL, 'n'},
        {"tee-pubkey", required_argument, NULL, 'k'},
        {"additional-evidence", required_argument, NULL, 'A'},
        {"runtime-data", required_argument, NULL, 'R'},
        {"init-data", required_argument, NULL, 'i'},
        {"at", required_argument, NULL, 't'},
        {"snp-cache", required_argument, NULL, 's'},
        {"kds", optional_argument, NULL, 'K'},
        {"tdx-collateral", required_argument, NULL, 'C'},
        {"pccs", required_argument, NULL, 'P'},
        {"sgx-collateral", required_argument, NULL, 'Q'},
        {"ak-ca", required_argument, NULL, 'a'},
        {"cca-ta-store", required_argument, NULL, 'U'},
        {"cca-rv-store", required_argument, NULL, 'V'},
        {"csv-cert-dir", required_argument, NULL, 'H'},
        {"allow-debug-insecure", no_argument, NULL, 'D'},
        {"allow-tcb-status-insecure", required_argument, NULL, 'S'},
        {"allow-expired-collateral-insecure", no_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        const char *name;
        unsigned bit;
    } statuses[] = {
        {"SWHardeningNeeded", CL_TEE_TCB_SW_HARDENING_NEEDED},
        {"ConfigurationNeeded", CL_TEE_TCB_CONFIGURATION_NEEDED},
        {"OutOfDate", CL_TEE_TCB_OUT_OF_DATE},
        {"TDRelaunchAdvised", CL_TEE_TCB_TD_RELAUNCH_ADVISED},
    };
    memset(o, 0, sizeof *o);
    struct cl_err e = {0};
    int64_t at = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'T':
            o->tee = optarg;
            break;
        case 'e':
            o->evidence = optarg;
            break;
        case 'c':
            if (o->ncerts == MAX_CERTS)
                return usage_error("too many --cert");
            o->certs[o->ncerts++] = optarg;
            break;
        case 'L':
            o->ccel = optarg;
            break;
        case 'r':
            o->report_data = optarg;
            break;
        case 'n':
            o->nonce = optarg;
            break;
        case 'k':
            o->tee_pubkey = optarg;
            break;
        case 'A':
            o->additional = optarg;
            break;
        case 'R':
            o->runtime_data = optarg;
            break;
        case 'i':
            o->init_data = optarg;
            break;
        case 't':
            if (cl_parse_i64(optarg, 1, INT64_MAX, &at, "--at", &e) < 0)
                return usage_error(e.msg);
            o->cfg.verify_time = at;
            break;
        case 's':
            o->cfg.snp_cert_cache = optarg;
            break;
        case 'K':
            o->cfg.snp_kds_online = true;
            o->cfg.snp_kds_url = optarg;
            break;
        case 'C':
            o->cfg.tdx_collateral_dir = optarg;
            break;
        case 'P':
            o->cfg.tdx_pccs_url = optarg;
            break;
        case 'Q':
            o->cfg.sgx_collateral_dir = optarg;
            break;
        case 'a':
            o->cfg.tpm_ak_ca_path = optarg;
            break;
        case 'U':
            o->cfg.cca_ta_store = optarg;
            break;
        case 'V':
            o->cfg.cca_rv_store = optarg;
            break;
        case 'H':
            o->cfg.csv_cert_dir = optarg;
            break;
        case 'D':
            o->cfg.allow_debug_insecure = true;
            break;
        case 'X':
            o->cfg.tdx_allow_expired_collateral_insecure = true;
            break;
        case 'S': {
            size_t k = 0;
            while (k < CL_ARRAY_LEN(statuses) && strcmp(statuses[k].name, optarg) != 0)
                k++;
            if (k == CL_ARRAY_LEN(statuses))
                return usage_error("--allow-tcb-status-insecure: SWHardeningNeeded, "
                                   "ConfigurationNeeded, OutOfDate "
                                   "or TDRelaunchAdvised");
            o->cfg.tdx_allow_tcb_insecure |= statuses[k].bit;
            break;
        }
        case 'h':
            fputs(help_text, stdout);
            return 1;
        default:
            return usage_error("unknown option");
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument");
    if (!o->tee || !o->evidence)
        return usage_error("--tee and --evidence are required");
    if ((o->report_data != NULL) + (o->nonce != NULL) + (o->runtime_data != NULL) > 1)
        return usage_error("give one of --report-data, --nonce, --runtime-data");
    if (o->nonce && !o->tee_pubkey)
        return usage_error("--nonce needs --tee-pubkey");
    return 0;
}

static json_t *read_json(const char *path, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, MAX_EVIDENCE, &n, err);
    return b ? cl_json_parse((const char *)b, n, CL_JSON_MAX_DEPTH, err) : NULL;
}

/* The evidence JSON: the file itself, or a raw snp report / tdx quote wrapped. */
static json_t *load_evidence(const struct aopts *o, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(o->evidence, MAX_EVIDENCE, &n, err);
    if (!b)
        return NULL;
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
        i++;
    if (i < n && b[i] == '{')
        return cl_json_parse((const char *)b, n, CL_JSON_MAX_DEPTH, err);
    CL_AUTO(cl_str) *b64 = cl_b64_encode(b, n, CL_B64_STD);
    if (!b64) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    if (strcmp(o->tee, "snp") == 0) {
        CL_AUTO(json_t) *chain = json_array();
        for (size_t k = 0; chain && k < o->ncerts; k++) {
            size_t cn = 0;
            CL_AUTO(cl_bytes) *cert = cl_file_read(o->certs[k], 65536, &cn, err);
            if (!cert)
                return NULL;
            /* the verifier sorts certificates out by their subject; DER is what travels */
            CL_AUTO(cl_str) *cb = cl_b64_encode(cert, cn, CL_B64_STD);
            if (!cb || cn == 0 || cert[0] != 0x30) {
                cl_err_set(err, CL_EINVAL, "--cert %s: give a DER certificate", o->certs[k]);
                return NULL;
            }
            json_array_append_new(
                chain, json_pack("{s:s, s:s}", "cert_type", k == 0 ? "VCEK" : "ASK", "data", cb));
        }
        return json_pack("{s:s, s:O}", "attestation_report", b64, "cert_chain", chain);
    }
    if (strcmp(o->tee, "tdx") == 0) {
        json_t *ev = json_pack("{s:s, s:n}", "quote", b64, "cc_eventlog");
        if (ev && o->ccel) {
            size_t cn = 0;
            CL_AUTO(cl_bytes) *cc = cl_file_read(o->ccel, MAX_EVIDENCE, &cn, err);
            CL_AUTO(cl_str) *ccb = cc ? cl_b64_encode(cc, cn, CL_B64_STD) : NULL;
            if (!ccb) {
                json_decref(ev);
                return NULL;
            }
            json_object_set_new(ev, "cc_eventlog", json_string(ccb));
        }
        return ev;
    }
    if (strcmp(o->tee, "cca") == 0) /* the raw CBOR token, as trustee's CCA attester wraps it */
        return json_pack("{s:s}", "token", b64);
    if (strcmp(o->tee, "sgx") == 0)
        return json_pack("{s:s}", "quote", b64);
    if (strcmp(o->tee, "nvidia") == 0) {
        if (o->ncerts != 1) {
            cl_err_set(err, CL_EINVAL,
                       "nvidia raw report: give the device chain with one --cert (PEM)");
            return NULL;
        }
        size_t cn = 0;
        CL_AUTO(cl_bytes) *pem = cl_file_read(o->certs[0], 65536, &cn, err);
        CL_AUTO(cl_str) *cb = pem ? cl_b64_encode(pem, cn, CL_B64_STD) : NULL;
        if (!cb)
            return NULL;
        /* a report kept as hex text (as captured) travels as such: the verifier reads both */
        size_t h = n;
        while (h && (b[h - 1] == '\n' || b[h - 1] == '\r' || b[h - 1] == ' '))
            h--;
        bool hex = h > 0 && h % 2 == 0;
        for (size_t k = 0; hex && k < h; k++)
            hex = (b[k] >= '0' && b[k] <= '9') || (b[k] >= 'a' && b[k] <= 'f') ||
                  (b[k] >= 'A' && b[k] <= 'F');
        CL_AUTO(cl_str) *htext = hex ? cl_strdupf("%.*s", (int)h, (const char *)b) : NULL;
        return json_pack("{s:[{s:s, s:s, s:s}]}", "device_evidence_list", "arch", "HOPPER",
                         "evidence", hex ? htext : b64, "certificate", cb);
    }
    cl_err_set(err, CL_EINVAL,
               "%s: not JSON (raw evidence is understood for snp, tdx, sgx, nvidia and cca only)",
               o->evidence);
    return NULL;
}

int cl_cli_as(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "verify") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            fputs(help_text, stdout);
            return 0;
        }
        return usage_error("the only command is 'verify'");
    }
    struct aopts o;
    int rc = parse_args(argc - 1, argv + 1, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    const struct cl_tee_verifier *v = cl_tee_verifier_find(o.tee);
    if (!v)
        return usage_error("no verifier for this TEE");
    struct cl_err e = {0};
    CL_AUTO(json_t) *ev = load_evidence(&o, &e);
    if (!ev)
        return fail(&e, "evidence");
    /* ---- expected report data ---- */
    uint8_t rd[CL_HASH_MAX], idd[CL_HASH_MAX];
    size_t rdlen = 0, idlen = 0;
    if (o.report_data) {
        if (cl_hex_decode(o.report_data, strlen(o.report_data), rd, sizeof rd, &rdlen, &e) < 0)
            return fail(&e, "--report-data");
    } else if (o.nonce || o.runtime_data) {
        CL_AUTO(json_t) *runtime = NULL;
        if (o.runtime_data) {
            runtime = read_json(o.runtime_data, &e);
            if (!runtime)
                return fail(&e, "--runtime-data");
        } else {
            CL_AUTO(json_t) *jwk = read_json(o.tee_pubkey, &e);
            if (!jwk)
                return fail(&e, "--tee-pubkey");
            runtime = json_pack("{s:s, s:O, s:s}", "nonce", o.nonce, "tee-pubkey", jwk,
                                "additional-evidence", o.additional ? o.additional : "");
        }
        if (!runtime || cl_as_runtime_digest(runtime, CL_HASH_SHA384, rd, &rdlen, &e) < 0)
            return fail(&e, "runtime data");
    } else {
        fprintf(stderr, "cloister as verify: no report data given: the binding is NOT checked\n");
    }
    /* ---- init-data: the digest of the exact text with the document's algorithm ---- */
    if (o.init_data) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *text = cl_file_read(o.init_data, CL_AS_MAX_INIT_DATA, &n, &e);
        CL_AUTO(json_t) *doc = text ? cl_toml_parse((const char *)text, n, &e) : NULL;
        const char *alg = NULL;
        enum cl_hash h;
        if (!doc || cl_json_get_str(doc, "algorithm", &alg, &e) < 0 ||
            cl_hash_from_name(alg, &h, &e) < 0 || cl_digest(h, text, n, idd, &e) < 0)
            return fail(&e, "--init-data");
        idlen = cl_hash_len(h);
    }
    if (v->insecure)
        fprintf(stderr, "cloister as verify: the %s TEE proves nothing (no hardware root)\n",
                o.tee);
    /* ---- verify ---- */
    struct cl_tee_verify_in in = {ev, rdlen ? rd : NULL, rdlen, idlen ? idd : NULL, idlen, &o.cfg};
    CL_AUTO(json_t) *claims = NULL;
    if (v->verify(&in, &claims, &e) < 0) {
        cl_cli_errf("cloister as verify: %s evidence refused at stage '%s': %s", o.tee,
                    e.stage ? e.stage : "?", e.msg);
        return cl_err_exit_code(e.code);
    }
    char *text = json_dumps(claims, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        return 1;
    puts(text);
    free(text);
    fprintf(stderr, "cloister as verify: %s evidence verified (%s)\n", o.tee,
            rdlen ? "report data bound" : "binding not checked");
    return 0;
}
