/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TEE verifier throughput on one core: full verifications per second of trustee's vectors
 * through the verifier table, with certificate chains cached (the first verification warms
 * the cache and is not counted).
 *   SNP: Genoa evidence (JSON report, VCEK in the chain, ASK/ARK from a cache folder);
 *   TDX: tdx_quote_6 with its TCB info / QE identity re-signed by a key generated here (the
 *        vectors lack Intel's TCB signing certificate; the cost is the same), OutOfDate allowed;
 *   TPM: tpm_evidence.json (RSA-2048 AK);
 *   NVIDIA: hopperAttestationReport.txt with chain case 1, evidence JSON as trustee's attester
 *        sends it (one Hopper GPU);
 *   SGX: occlum_quote.dat with SGX collateral made here from its PCK's SVNs (the vectors hold
 *        none for its FMSPC) and signed by the bench key, OutOfDate and DEBUG allowed.
 * Usage: tee_bench VECTORS_DIR [SECONDS]   (VECTORS_DIR holds trustee/)
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "tee/nvidia/nvidia.h"
#include "tee/tdx/tdx.h"
#include "tee/tee.h"
#include "tee/tee_int.h"

#define TT_TIME 1761955200 /* 2025-11-01: inside the TDX collateral window */

static char vec[4096];

static uint8_t *rd_file(const char *rel, size_t *n)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/trustee/%s", vec, rel);
    struct cl_err e = {0};
    uint8_t *b = cl_file_read(p, 8u << 20, n, &e);
    if (!b) {
        fprintf(stderr, "tee_bench: %s\n", e.msg);
        exit(1);
    }
    return b;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one verification until `secs` have passed; prints verifications/s. */
static void run(const char *name, const char *tee, const json_t *ev, const uint8_t *rd, size_t rdl,
                const struct cl_tee_config *cfg, double secs)
{
    const struct cl_tee_verifier *v = cl_tee_verifier_find(tee);
    struct cl_tee_verify_in in = {ev, rd, rdl, NULL, 0, cfg};
    struct cl_err e = {0};
    json_t *c = NULL;
    if (v->verify(&in, &c, &e) < 0) { /* warms the chain cache */
        fprintf(stderr, "tee_bench %s: %s (%s)\n", name, e.msg, e.stage);
        exit(1);
    }
    json_decref(c);
    size_t n = 0;
    double t0 = now_s(), t = t0;
    clock_t c0 = clock();
    while (t - t0 < secs) {
        for (int i = 0; i < 16; i++) {
            c = NULL;
            if (v->verify(&in, &c, &e) < 0) {
                fprintf(stderr, "tee_bench %s: %s\n", name, e.msg);
                exit(1);
            }
            json_decref(c);
            n++;
        }
        t = now_s();
    }
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("%-4s %8.0f verifications/s per core  (%.1f us each)\n", name, (double)n / cpu,
           cpu * 1e6 / (double)n);
}

static char *resign(const char *rel, const char *member, EVP_PKEY *key)
{
    size_t n = 0;
    uint8_t *raw = rd_file(rel, &n);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "{\"%s\":", member);
    const char *text = (const char *)raw, *sig = strstr(text, ",\"signature\":\"");
    size_t s = strlen(prefix), len = (size_t)(sig - text) - s;
    cl_bytes *sb = NULL;
    size_t sl = 0;
    struct cl_err e = {0};
    if (!sig || cl_sig_sign(key, "ES256", text + s, len, &sb, &sl, &e) < 0)
        exit(1);
    CL_AUTO(cl_str) *hex = cl_hex_encode(sb, sl);
    char *out = cl_strdupf("{\"%s\":%.*s,\"signature\":\"%s\"}", member, (int)len, text + s, hex);
    free(sb);
    free(raw);
    return out;
}

static X509 *cert(const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *ik)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_NAME *nm = X509_NAME_new();
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, nm);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : nm);
    X509_NAME_free(nm);
    ASN1_TIME_set(X509_getm_notBefore(c), 1500000000);
    ASN1_TIME_set(X509_getm_notAfter(c), 2500000000);
    X509_set_pubkey(c, k);
    X509_sign(c, ik ? ik : k, EVP_sha256());
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fputs("usage: tee_bench VECTORS_DIR [SECONDS]\n", stderr), 2;
    snprintf(vec, sizeof vec, "%s", argv[1]);
    cl_log_set_level(CL_LOG_ERROR); /* the insecure switch used for TDX logs every use */
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    char tmp[] = "/tmp/cl-tee-bench-XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    char path[8192], target[8192];
    struct cl_err e = {0};
    /* ---- SNP ---- */
    snprintf(path, sizeof path, "%s/Genoa", tmp);
    if (cl_mkdir_p(path, 0755, &e) < 0)
        return 1;
    snprintf(path, sizeof path, "%s/Genoa/cert_chain.pem", tmp);
    snprintf(target, sizeof target, "%s/trustee/deps/verifier/src/snp/genoa_ask_ark_asvk.pem", vec);
    if (symlink(target, path) != 0)
        return 1;
    size_t n = 0;
    uint8_t *t = rd_file("attestation-service/tests/e2e/evidence.json", &n);
    json_t *snp = cl_json_parse((const char *)t, n, 64, &e);
    free(t);
    uint8_t rd[64];
    json_t *rda = json_object_get(json_object_get(snp, "attestation_report"), "report_data");
    for (size_t i = 0; i < 64; i++)
        rd[i] = (uint8_t)json_integer_value(json_array_get(rda, i));
    struct cl_tee_config scfg = {.verify_time = TT_TIME, .snp_cert_cache = tmp};
    run("SNP", "snp", snp, rd, 64, &scfg, secs);
    /* ---- TDX ---- */
    EVP_PKEY *rk = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256");
    X509 *root = cert("Bench Root", rk, NULL, NULL),
         *signer = cert("Bench TCB Signing", sk, root, rk);
    char *ti = resign("deps/verifier/test_data/tcbInfo.json", "tcbInfo", sk);
    char *qi = resign("deps/verifier/test_data/enclaveIdentity.json", "enclaveIdentity", sk);
    snprintf(path, sizeof path, "%s/tcb_info.json", tmp);
    if (cl_file_write_atomic(path, ti, strlen(ti), 0644, &e) < 0)
        return 1;
    snprintf(path, sizeof path, "%s/qe_identity.json", tmp);
    if (cl_file_write_atomic(path, qi, strlen(qi), 0644, &e) < 0)
        return 1;
    snprintf(path, sizeof path, "%s/tcb_info_issuer_chain.pem", tmp);
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, signer);
    PEM_write_X509(f, root);
    fclose(f);
    unsigned char md[32];
    unsigned ml = 0;
    X509_digest(root, EVP_sha256(), md, &ml);
    char pin[65];
    for (int i = 0; i < 32; i++)
        snprintf(pin + 2 * i, 3, "%02x", md[i]);
    const char *pins[] = {pin};
    size_t qn = 0;
    uint8_t *quote = rd_file("deps/verifier/test_data/tdx_quote_6.dat", &qn);
    struct cl_tdx_quote q;
    if (cl_tdx_quote_parse(quote, qn, &q, &e) < 0)
        return 1;
    struct cl_tee_config tcfg = {.verify_time = TT_TIME,
                                 .tdx_collateral_dir = tmp,
                                 .tdx_allow_tcb_insecure = CL_TEE_TCB_OUT_OF_DATE};
    /* the tdx table entry pins Intel's root for collateral too: time the same pipeline with
     * the bench root as collateral pin (parse + bind are the table's only other steps) */
    json_t *c = NULL;
    if (cl_tdx_verify_parsed(&q, NULL, 0, &tcfg, pins, 1, &c, &e) < 0) {
        fprintf(stderr, "tee_bench TDX: %s (%s)\n", e.msg, e.stage);
        return 1;
    }
    json_decref(c);
    size_t cnt = 0;
    clock_t c0 = clock();
    double t0 = now_s();
    while (now_s() - t0 < secs) {
        for (int i = 0; i < 16; i++, cnt++) {
            struct cl_tdx_quote qq;
            c = NULL;
            if (cl_tdx_quote_parse(quote, qn, &qq, &e) < 0 ||
                cl_tdx_verify_parsed(&qq, NULL, 0, &tcfg, pins, 1, &c, &e) < 0)
                return 1;
            json_decref(c);
        }
    }
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("%-4s %8.0f verifications/s per core  (%.1f us each)\n", "TDX", (double)cnt / cpu,
           cpu * 1e6 / (double)cnt);
    /* ---- TPM ---- */
    t = rd_file("deps/verifier/test_data/tpm_evidence.json", &n);
    json_t *tpm = cl_json_parse((const char *)t, n, 64, &e);
    free(t);
    const char *m =
        json_string_value(json_object_get(json_object_get(tpm, "tpm_quote"), "message"));
    size_t mn = 0;
    CL_AUTO(cl_bytes) *msg = cl_b64_decode(m, strlen(m), CL_B64_STD, 4096, &mn, &e);
    /* extraData: u16 size at 8 + name size */
    size_t nl = (size_t)msg[6] << 8 | msg[7];
    run("TPM", "tpm", tpm, msg + 8 + nl + 2, 48, NULL, secs);
    /* ---- NVIDIA ---- */
    size_t hn = 0, cn = 0;
    uint8_t *hex = rd_file("deps/verifier/test_data/nvidia/hopperAttestationReport.txt", &hn);
    uint8_t *chain = rd_file("deps/verifier/test_data/nvidia/hopper_cert_chain_case1.txt", &cn);
    while (hn && (hex[hn - 1] == '\n' || hex[hn - 1] == '\r'))
        hn--;
    uint8_t nonce[32];
    size_t nn = 0;
    if (hn < 72 || cl_hex_decode((const char *)hex + 8, 64, nonce, sizeof nonce, &nn, &e) < 0)
        return 1;
    CL_AUTO(cl_str) *cb = cl_b64_encode(chain, cn, CL_B64_STD);
    CL_AUTO(cl_str) *ht = cl_strdupf("%.*s", (int)hn, (const char *)hex);
    json_t *nv = json_pack("{s:[{s:s, s:s, s:s}]}", "device_evidence_list", "arch", "HOPPER",
                           "evidence", ht, "certificate", cb);
    struct cl_tee_config ncfg = {.verify_time = TT_TIME};
    run("NV", "nvidia", nv, nonce, 32, &ncfg, secs);
    json_decref(nv);
    free(hex);
    free(chain);
    /* ---- SGX ---- */
    size_t sn = 0;
    uint8_t *sq = rd_file("deps/verifier/test_data/occlum_quote.dat", &sn);
    struct cl_tdx_quote sgxq;
    struct cl_tdx_pck pck;
    if (cl_tdx_quote_parse_any(sq, sn, &sgxq, &e) < 0 ||
        cl_tdx_verify_quote(&sgxq, cl_tdx_root_pins, cl_tdx_root_npins, TT_TIME, NULL, &pck, NULL,
                            &e) < 0)
        return 1;
    json_t *comps = json_array();
    for (int i = 0; i < 16; i++)
        json_array_append_new(comps, json_pack("{s:i}", "svn", pck.comp_svn[i]));
    char fm[13], signer_hex[65];
    for (int i = 0; i < 6; i++)
        snprintf(fm + 2 * i, 3, "%02X", pck.fmspc[i]);
    for (int i = 0; i < 32; i++)
        snprintf(signer_hex + 2 * i, 3, "%02X", sgxq.qe.mr_signer[i]);
    json_t *sti =
        json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:[{s:{s:o, s:i}, s:s, s:s, s:[]}]}", "id",
                  "SGX", "version", 3, "issueDate", "2025-01-01T00:00:00Z", "nextUpdate",
                  "2026-01-01T00:00:00Z", "fmspc", fm, "pceId", "0000", "tcbEvaluationDataNumber",
                  17, "tcbLevels", "tcb", "sgxtcbcomponents", comps, "pcesvn", pck.pcesvn,
                  "tcbDate", "2021-11-10T00:00:00Z", "tcbStatus", "OutOfDate", "advisoryIDs");
    json_t *sqi = json_pack(
        "{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:[{s:{s:i}, s:s, s:s}]}", "id", "QE",
        "version", 2, "issueDate", "2025-01-01T00:00:00Z", "nextUpdate", "2026-01-01T00:00:00Z",
        "miscselect", "00000000", "miscselectMask", "FFFFFFFF", "attributes",
        "11000000000000000000000000000000", "attributesMask", "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner", signer_hex, "isvprodid", sgxq.qe.isv_prod_id, "tcbLevels", "tcb", "isvsvn",
        sgxq.qe.isv_svn, "tcbDate", "2024-11-13T00:00:00Z", "tcbStatus", "UpToDate");
    char sdir[4096];
    snprintf(sdir, sizeof sdir, "%s/sgx", tmp);
    if (cl_mkdir_p(sdir, 0755, &e) < 0)
        return 1;
    static const char *const names[2][2] = {{"tcb_info.json", "tcbInfo"},
                                            {"qe_identity.json", "enclaveIdentity"}};
    json_t *bodies[2] = {sti, sqi};
    for (int k = 0; k < 2; k++) {
        char *txt = json_dumps(bodies[k], JSON_COMPACT);
        cl_bytes *sb = NULL;
        size_t sl = 0;
        if (!txt || cl_sig_sign(sk, "ES256", txt, strlen(txt), &sb, &sl, &e) < 0)
            return 1;
        CL_AUTO(cl_str) *sh = cl_hex_encode(sb, sl);
        char *doc = cl_strdupf("{\"%s\":%s,\"signature\":\"%s\"}", names[k][1], txt, sh);
        snprintf(path, sizeof path, "%s/%s", sdir, names[k][0]);
        if (cl_file_write_atomic(path, doc, strlen(doc), 0644, &e) < 0)
            return 1;
        free(doc);
        free(sb);
        free(txt);
        json_decref(bodies[k]);
    }
    snprintf(path, sizeof path, "%s/tcb_info_issuer_chain.pem", sdir);
    f = fopen(path, "w");
    PEM_write_X509(f, signer);
    PEM_write_X509(f, root);
    fclose(f);
    struct cl_tee_config gcfg = {.verify_time = TT_TIME,
                                 .sgx_collateral_dir = sdir,
                                 .allow_debug_insecure = true,
                                 .tdx_allow_tcb_insecure = CL_TEE_TCB_OUT_OF_DATE};
    static const uint8_t test_rd[4] = {'t', 'e', 's', 't'};
    cnt = 0;
    c0 = clock();
    t0 = now_s();
    while (now_s() - t0 < secs) {
        for (int i = 0; i < 16; i++, cnt++) {
            c = NULL;
            if (cl_sgx_verify_quote(sq, sn, test_rd, 4, NULL, 0, &gcfg, pins, 1, &c, &e) < 0) {
                fprintf(stderr, "tee_bench SGX: %s (%s)\n", e.msg, e.stage);
                return 1;
            }
            json_decref(c);
        }
    }
    cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("%-4s %8.0f verifications/s per core  (%.1f us each)\n", "SGX", (double)cnt / cpu,
           cpu * 1e6 / (double)cnt);
    free(sq);
    json_decref(snp);
    json_decref(tpm);
    free(quote);
    free(ti);
    free(qi);
    X509_free(root);
    X509_free(signer);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(sk);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
