/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: SEV-SNP reports. Binary input goes to the report parser; an accepted
 * report must survive the JSON (serde) round trip field for field. Input starting with '{'
 * is evidence JSON for the whole snp verifier (offline, no cache): it must refuse with a
 * named stage and never return claims without a chain to a pinned ARK.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/snp/snp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err err = {0};
    if (size && data[0] == '{') {
        json_t *ev = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, NULL);
        if (!ev)
            return 0;
        struct cl_tee_config cfg = {.verify_time = 1748736000};
        uint8_t rd[64] = {0};
        struct cl_tee_verify_in in = {ev, rd, sizeof rd, NULL, 0, &cfg};
        json_t *claims = NULL;
        int rc = cl_tee_verifier_find("snp")->verify(&in, &claims, &err);
        if (rc == 0 || claims || !err.stage || err.msg[0] == '\0')
            abort(); /* nothing here chains to a pinned ARK; every refusal names its stage */
        json_decref(ev);
        return 0;
    }
    struct cl_snp_report r, r2;
    if (cl_snp_report_parse(data, size, &r, &err) < 0) {
        if (!err.stage || err.code != CL_EPARSE)
            abort();
        return 0;
    }
    json_t *j = cl_snp_report_to_json(&r);
    if (!j || cl_snp_report_from_json(j, &r2, NULL) < 0)
        abort();
    /* the round trip keeps every field (reserved bytes, also inside TCB_VERSION, are not carried)
     */
    enum cl_snp_product p = cl_snp_product_of(&r);
    struct cl_snp_tcb t1 = cl_snp_tcb_decode(r.reported_tcb, p),
                      t2 = cl_snp_tcb_decode(r2.reported_tcb, p);
    if (r.version != r2.version || r.policy != r2.policy || memcmp(&t1, &t2, sizeof t1) != 0 ||
        memcmp(r.measurement, r2.measurement, sizeof r.measurement) != 0 ||
        memcmp(r.report_data, r2.report_data, sizeof r.report_data) != 0 ||
        memcmp(r.chip_id, r2.chip_id, sizeof r.chip_id) != 0 ||
        memcmp(r.sig_r, r2.sig_r, sizeof r.sig_r) != 0)
        abort();
    json_decref(j);
    json_t *c = cl_snp_claims(&r, cl_snp_product_of(&r), size & 1, NULL);
    json_decref(c);
    return 0;
}
