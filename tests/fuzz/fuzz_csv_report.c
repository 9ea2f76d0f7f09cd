/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: Hygon CSV. Binary input of a report page's size goes to the report
 * parser, of 832 or 2084 bytes to the certificate parsers (an accepted certificate is checked
 * against itself as a signer, which must not crash); input starting with '{' is evidence JSON
 * for the whole csv verifier with an empty certificate folder: it must refuse with a named
 * stage and never return claims.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/csv/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err err = {0};
    if (size && data[0] == '{') {
        json_t *ev = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, NULL);
        if (!ev)
            return 0;
        struct cl_tee_config cfg = {.verify_time = 1748736000, .csv_cert_dir = "/nonexistent"};
        uint8_t rd[64] = {0};
        struct cl_tee_verify_in in = {ev, rd, sizeof rd, NULL, 0, &cfg};
        json_t *claims = NULL;
        int rc = cl_tee_verifier_find("csv")->verify(&in, &claims, &err);
        if (rc == 0 || claims || !err.stage || err.msg[0] == '\0')
            abort(); /* no pinned root here; every refusal names its stage */
        json_decref(ev);
        return 0;
    }
    if (size == CL_CSV_CA_CERT_SIZE) {
        struct cl_csv_ca_cert c;
        if (cl_csv_ca_cert_parse(data, size, &c, &err) == 0 &&
            cl_csv_sm2_verify(&c.key, c.raw, CL_CSV_CA_SIGNED, &c.sig, NULL) == 0 &&
            c.key.uid_len > 254)
            abort();
        return 0;
    }
    if (size == CL_CSV_CERT_SIZE) {
        struct cl_csv_cert c;
        if (cl_csv_cert_parse(data, size, &c, &err) == 0 &&
            cl_csv_sm2_verify(&c.key, c.raw, CL_CSV_CERT_SIGNED, &c.sig[0], NULL) == 0 &&
            c.key.uid_len > 254)
            abort();
        return 0;
    }
    struct cl_csv_report *r = malloc(sizeof *r);
    if (!r)
        return 0;
    if (cl_csv_report_parse(data, size, r, &err) < 0) {
        if (!err.stage || (err.code != CL_EPARSE && err.code != CL_ELIMIT))
            abort();
    } else {
        if (strlen(r->serial_number) > 64)
            abort();
        int vr = cl_csv_report_verify(r, &r->pek, NULL);
        if (vr != 0 && vr != CL_EVERIFY)
            abort();
        json_t *claims = cl_csv_claims(r, NULL);
        if (!claims)
            abort();
        json_decref(claims);
    }
    free(r);
    return 0;
}
