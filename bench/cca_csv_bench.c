/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CCA and CSV verifier throughput on one core (the pattern of tee_bench.c):
 *   CCA: trustee's example token through the verifier table with its trust-anchor and
 *        reference-value stores (both files read and parsed on every verification);
 *   CSV: trustee's csv_evidence.json through the verifier's steps up to the chain — report
 *        page and PEK decoded from the JSON, bound, SM2 report signature, claims — as the
 *        table runs them once the chain is cached; and, cold, the chain HRK → HSK → CEK → PEK
 *        (4 SM2 verifies) on a chain made here in Hygon's formats (the vectors lack the
 *        chip's HSK/CEK, so the table itself refuses the real evidence offline).
 * Usage: cca_csv_bench VECTORS_DIR [SECONDS]   (VECTORS_DIR holds trustee/)
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tee/cca/cca.h"
#include "tee/csv/csv.h"
#include "tee/tee.h"
#include "tee/tee_int.h"

static char vec[4096];

static char *vpath(const char *rel)
{
    static char p[4][8192];
    static int k;
    char *s = p[k++ % 4];
    snprintf(s, 8192, "%s/trustee/%s", vec, rel);
    return s;
}

static json_t *rd_json(const char *rel)
{
    size_t n = 0;
    struct cl_err e = {0};
    uint8_t *b = cl_file_read(vpath(rel), 8u << 20, &n, &e);
    json_t *j = b ? cl_json_parse((const char *)b, n, 64, &e) : NULL;
    free(b);
    if (!j) {
        fprintf(stderr, "cca_csv_bench: %s: %s\n", rel, e.msg);
        exit(1);
    }
    return j;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef int (*step_fn)(void *ctx, struct cl_err *e);

static void run(const char *name, step_fn fn, void *ctx, double secs)
{
    struct cl_err e = {0};
    if (fn(ctx, &e) < 0) {
        fprintf(stderr, "cca_csv_bench %s: %s (%s)\n", name, e.msg, e.stage ? e.stage : "?");
        exit(1);
    }
    size_t n = 0;
    double t0 = now_s();
    clock_t c0 = clock();
    while (now_s() - t0 < secs)
        for (int i = 0; i < 8; i++, n++)
            if (fn(ctx, &e) < 0)
                exit(1);
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("%-10s %8.0f verifications/s per core  (%.1f us each)\n", name, (double)n / cpu,
           cpu * 1e6 / (double)n);
}

/* ---- CCA ---- */

struct cca_ctx {
    json_t *ev;
    uint8_t rd[64];
    struct cl_tee_config cfg;
};

static int cca_step(void *p, struct cl_err *e)
{
    struct cca_ctx *c = p;
    struct cl_tee_verify_in in = {c->ev, c->rd, 64, NULL, 0, &c->cfg};
    json_t *claims = NULL;
    int rc = cl_tee_verifier_find("cca")->verify(&in, &claims, e);
    json_decref(claims);
    return rc;
}

/* ---- CSV ---- */

struct csv_ctx {
    json_t *ev;
    uint8_t rd[64];
    struct cl_csv_ca_cert hrk, hsk;
    struct cl_csv_cert cek, pek;
};

static int csv_step(void *p, struct cl_err *e)
{
    struct csv_ctx *c = p;
    size_t n = 0;
    cl_bytes *page =
        cl_tee_json_bytes(json_object_get(json_object_get(c->ev, "attestation_report"), "data"), 0,
                          CL_CSV_REPORT_MAX, &n, "data", e);
    struct cl_csv_report *r = malloc(sizeof *r);
    struct cl_csv_cert *pek = malloc(sizeof *pek);
    int rc = !page || !r || !pek ? CL_ENOMEM : 0;
    if (rc == 0 && (rc = cl_csv_report_parse(page, n, r, e)) == 0 &&
        (rc = cl_csv_cert_from_json(json_object_get(json_object_get(c->ev, "cert_chain"), "pek"),
                                    pek, "pek", e)) == 0)
        rc = cl_tee_field_matches(r->report_data, 64, c->rd, 64) &&
                     memcmp(pek->raw, r->pek.raw, CL_CSV_CERT_SIZE) == 0
                 ? cl_csv_report_verify(r, pek, e)
                 : CL_EVERIFY;
    if (rc == 0) {
        json_t *claims = cl_csv_claims(r, e);
        rc = claims ? 0 : CL_ENOMEM;
        json_decref(claims);
    }
    free(page);
    free(r);
    free(pek);
    return rc;
}

static int chain_step(void *p, struct cl_err *e)
{
    struct csv_ctx *c = p;
    return cl_csv_verify_chain(&c->hrk, &c->hsk, &c->cek, &c->pek, e);
}

static void put_coord(uint8_t *p, const uint8_t *be)
{
    memset(p, 0, CL_CSV_COORD);
    for (int i = 0; i < 32; i++)
        p[i] = be[31 - i];
}

static void put_key(uint8_t *p, EVP_PKEY *k, const char *uid)
{
    uint8_t pt[65];
    size_t pl = 0;
    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &pl);
    p[0] = CL_CSV_CURVE_SM2;
    put_coord(p + 4, pt + 1);
    put_coord(p + 76, pt + 33);
    p[148] = (uint8_t)strlen(uid);
    memcpy(p + 150, uid, strlen(uid));
}

static void sm2_sign(EVP_PKEY *k, const char *uid, const uint8_t *d, size_t len, uint8_t *r72,
                     uint8_t *s72)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    EVP_PKEY_CTX_set1_id(pc, uid, strlen(uid));
    EVP_MD_CTX_set_pkey_ctx(m, pc);
    uint8_t der[128], r[32], s[32];
    size_t dl = sizeof der;
    if (EVP_DigestSignInit_ex(m, NULL, "SM3", NULL, NULL, k, NULL) != 1 ||
        EVP_DigestSign(m, der, &dl, d, len) != 1)
        exit(1);
    const unsigned char *q = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)dl);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), r, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), s, 32);
    put_coord(r72, r);
    put_coord(s72, s);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(m);
    EVP_PKEY_CTX_free(pc);
}

static void make_chain(struct csv_ctx *c, const uint8_t *real_pek)
{
    EVP_PKEY *hrk = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"),
             *hsk = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"),
             *cek = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    uint8_t a[CL_CSV_CA_CERT_SIZE] = {1}, b[CL_CSV_CA_CERT_SIZE] = {1}, k[CL_CSV_CERT_SIZE] = {1},
            p[CL_CSV_CERT_SIZE];
    memset(a + 4, 7, 32); /* key id = certifying id */
    put_key(a + 0x40, hrk, "BENCH-HRK");
    sm2_sign(hrk, "BENCH-HRK", a, CL_CSV_CA_SIGNED, a + 0x240, a + 0x288);
    memset(b + 4, 8, 16);
    memset(b + 0x14, 7, 16);
    b[0x24] = 0x13;
    put_key(b + 0x40, hsk, "BENCH-HSK");
    sm2_sign(hrk, "BENCH-HRK", b, CL_CSV_CA_SIGNED, b + 0x240, b + 0x288);
    k[8] = 0x04, k[9] = 0x10, k[12] = CL_CSV_ALGO_SM2_SM3;
    put_key(k + 0x10, cek, "BENCH-CEK");
    k[0x414] = 0x13, k[0x418] = CL_CSV_ALGO_SM2_SM3;
    sm2_sign(hsk, "BENCH-HSK", k, CL_CSV_CERT_SIGNED, k + 0x41c, k + 0x464);
    memcpy(p, real_pek, CL_CSV_CERT_SIZE);
    sm2_sign(cek, "BENCH-CEK", p, CL_CSV_CERT_SIGNED, p + 0x41c, p + 0x464);
    struct cl_err e = {0};
    if (cl_csv_ca_cert_parse(a, sizeof a, &c->hrk, &e) < 0 ||
        cl_csv_ca_cert_parse(b, sizeof b, &c->hsk, &e) < 0 ||
        cl_csv_cert_parse(k, sizeof k, &c->cek, &e) < 0 ||
        cl_csv_cert_parse(p, sizeof p, &c->pek, &e) < 0) {
        fprintf(stderr, "cca_csv_bench: made chain: %s\n", e.msg);
        exit(1);
    }
    EVP_PKEY_free(hrk);
    EVP_PKEY_free(hsk);
    EVP_PKEY_free(cek);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fputs("usage: cca_csv_bench VECTORS_DIR [SECONDS]\n", stderr), 2;
    snprintf(vec, sizeof vec, "%s", argv[1]);
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    /* ---- CCA ---- */
    struct cca_ctx cc = {0};
    size_t n = 0;
    struct cl_err e = {0};
    uint8_t *tok = cl_file_read(vpath("deps/verifier/test_data/cca/misc/cca-example-token.cbor"),
                                65536, &n, &e);
    struct cl_cca_token t;
    if (!tok || cl_cca_token_parse(tok, n, &t, &e) < 0)
        return fprintf(stderr, "cca_csv_bench: token: %s\n", e.msg), 1;
    memcpy(cc.rd, t.realm.challenge.p, 64);
    CL_AUTO(cl_str) *b64 = cl_b64_encode(tok, n, CL_B64_STD);
    cc.ev = json_pack("{s:s}", "token", b64);
    cc.cfg = (struct cl_tee_config){
        .cca_ta_store = vpath("deps/verifier/test_data/cca/conf/tastore.json"),
        .cca_rv_store = vpath("deps/verifier/test_data/cca/conf/rvstore.json")};
    run("CCA", cca_step, &cc, secs);
    cc.cfg.cca_rv_store = NULL;
    run("CCA-no-rv", cca_step, &cc, secs);
    /* ---- CSV ---- */
    struct csv_ctx *sc = calloc(1, sizeof *sc);
    sc->ev = rd_json("deps/verifier/test_data/csv_evidence.json");
    run("CSV", csv_step, sc, secs);
    size_t pn = 0;
    cl_bytes *page =
        cl_tee_json_bytes(json_object_get(json_object_get(sc->ev, "attestation_report"), "data"), 0,
                          4096, &pn, "data", &e);
    make_chain(sc, page + 0x150);
    run("CSV-chain", chain_step, sc, secs);
    free(page);
    json_decref(sc->ev);
    free(sc);
    json_decref(cc.ev);
    free(tok);
    return 0;
}
