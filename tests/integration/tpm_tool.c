/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for tee-tpm-swtpm.sh: the Cloister TPM attester and verifier on the command
 * line, so that a shell test can quote a swtpm and hand the evidence to an independent
 * client (curl + python) or to the verifier.
 *
 *   tpm_tool quote TCTI REPORT_DATA_HEX [PCR,PCR,...]   evidence JSON on stdout
 *   tpm_tool ak TCTI                                    AK public key, PEM, on stdout
 *   tpm_tool verify EVIDENCE REPORT_DATA_HEX [INIT_DATA_HEX|- [AK_CA_PEM]]
 *                                                       claims on stdout; on failure the
 *                                                       stage and message on stderr, exit 4
 */
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "tee/tee.h"
#include "tee/tpm/tpm.h"

static int usage(void)
{
    fputs("usage: tpm_tool quote TCTI RD_HEX [PCRS] | ak TCTI | verify FILE RD_HEX [INIT_HEX|- "
          "[AK_CA]]\n",
          stderr);
    return 2;
}

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    struct cl_err e = {0};
    if (cl_hex_decode(s, strlen(s), out, cap, n, &e) < 0) {
        fprintf(stderr, "tpm_tool: %s\n", e.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cl_err e = {0};
    if (argc >= 4 && strcmp(argv[1], "quote") == 0) {
        uint8_t rd[64];
        size_t n = 0;
        int pcrs[24], np = 0;
        if (unhex(argv[3], rd, sizeof rd, &n) < 0)
            return 2;
        if (argc >= 5) {
            char *save = NULL;
            for (char *t = strtok_r(argv[4], ",", &save); t && np < 24;
                 t = strtok_r(NULL, ",", &save)) {
                uint64_t v = 0;
                if (cl_parse_u64(t, 0, 23, &v, "PCR", &e) < 0) {
                    fprintf(stderr, "tpm_tool: %s\n", e.msg);
                    return 2;
                }
                pcrs[np++] = (int)v;
            }
        }
        json_t *ev = NULL;
        if (cl_tee_tpm_quote(argv[2], rd, n, np ? pcrs : NULL, (size_t)np, &ev, &e) < 0) {
            fprintf(stderr, "tpm_tool: %s\n", e.msg);
            return 7;
        }
        CL_AUTO(cl_str) *s = cl_json_compact(ev);
        json_decref(ev);
        puts(s);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "ak") == 0) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *der = cl_tee_tpm_ak_public(argv[2], &n, &e);
        if (!der) {
            fprintf(stderr, "tpm_tool: %s\n", e.msg);
            return 7;
        }
        const unsigned char *p = der;
        EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)n);
        if (!k || !PEM_write_PUBKEY(stdout, k))
            return 1;
        EVP_PKEY_free(k);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "verify") == 0) {
        size_t n = 0, rdl = 0, idl = 0;
        CL_AUTO(cl_bytes) *text = cl_file_read(argv[2], 1 << 20, &n, &e);
        CL_AUTO(json_t) *ev = text ? cl_json_parse((const char *)text, n, 16, &e) : NULL;
        uint8_t rd[64], idd[64];
        if (!ev || unhex(argv[3], rd, sizeof rd, &rdl) < 0) {
            fprintf(stderr, "tpm_tool: %s\n", e.msg);
            return 2;
        }
        bool have_idd = argc >= 5 && strcmp(argv[4], "-") != 0;
        if (have_idd && unhex(argv[4], idd, sizeof idd, &idl) < 0)
            return 2;
        struct cl_tee_config cfg = {.tpm_ak_ca_path = argc >= 6 ? argv[5] : NULL};
        struct cl_tee_verify_in in = {ev, rd, rdl, have_idd ? idd : NULL, idl, &cfg};
        json_t *claims = NULL;
        if (cl_tee_verifier_find("tpm")->verify(&in, &claims, &e) < 0) {
            fprintf(stderr, "stage=%s %s\n", e.stage ? e.stage : "?", e.msg);
            return 4;
        }
        CL_AUTO(cl_str) *s = cl_json_compact(claims);
        json_decref(claims);
        puts(s);
        return 0;
    }
    return usage();
}
