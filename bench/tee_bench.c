/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TEE verifier throughput on one core: full verifications per second of trustee's vectors
 * through the verifier table, with certificate chains cached (the first verification warms
 * the cache and is not counted).
 *   SNP: Genoa evidence (JSON report, VCEK in the chain, ASK/ARK from a cache folder);
 *   TDX: tdx_quote_6 with its TCB info / QE identity re-signed by a key generated here (the
 *        vectors lack Intel's TCB signing certificate; the cost is the same), OutOfDate allowed;
 *   TPM: tpm_evidence.json (RSA-2048 AK).
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
    printf("%-4s %8.0f verifications/s per core  (%.1f us each)\n", name, (double)n / cpu, cpu * 1e6 / (double)n);
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
    X509 *root = cert("Bench Root", rk, NULL, NULL), *signer = cert("Bench TCB Signing", sk, root, rk);
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
    struct cl_tee_config tcfg = {.verify_time = TT_TIME, .tdx_collateral_dir = tmp,
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
            if (cl_tdx_quote_parse(quote, qn, &qq, &e) < 0 || cl_tdx_verify_parsed(&qq, NULL, 0, &tcfg, pins, 1, &c, &e) < 0)
                return 1;
            json_decref(c);
        }
    }
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("%-4s %8.0f verifications/s per core  (%.1f us each)\n", "TDX", (double)cnt / cpu, cpu * 1e6 / (double)cnt);
    /* ---- TPM ---- */
    t = rd_file("deps/verifier/test_data/tpm_evidence.json", &n);
    json_t *tpm = cl_json_parse((const char *)t, n, 64, &e);
    free(t);
    const char *m = json_string_value(json_object_get(json_object_get(tpm, "tpm_quote"), "message"));
    size_t mn = 0;
    CL_AUTO(cl_bytes) *msg = cl_b64_decode(m, strlen(m), CL_B64_STD, 4096, &mn, &e);
    /* extraData: u16 size at 8 + name size */
    size_t nl = (size_t)msg[6] << 8 | msg[7];
    run("TPM", "tpm", tpm, msg + 8 + nl + 2, 48, NULL, secs);
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
