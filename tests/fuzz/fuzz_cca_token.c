/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: CCA attestation tokens. Binary input goes to the bounded CBOR reader
 * (skip of one item) and to the token parser; an accepted token must give claims and a
 * Sig_structure, and the realm check must refuse or pass without crashing. Input starting
 * with '{' is evidence JSON for the whole cca verifier with no trust-anchor store: it must
 * refuse with a named stage and never return claims.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/cca/cca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err err = {0};
    if (size && data[0] == '{') {
        json_t *ev = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, NULL);
        if (!ev)
            return 0;
        struct cl_tee_config cfg = {.verify_time = 1748736000};
        struct cl_tee_verify_in in = {ev, NULL, 0, NULL, 0, &cfg};
        json_t *claims = NULL;
        int rc = cl_tee_verifier_find("cca")->verify(&in, &claims, &err);
        if (rc == 0 || claims || !err.stage || err.msg[0] == '\0')
            abort(); /* without a CPAK nothing verifies; every refusal names its stage */
        json_decref(ev);
        return 0;
    }
    struct cl_cca_cbor c = cl_cca_cbor_init(data, size);
    if (cl_cca_cbor_skip(&c, "fuzz", &err) == 0 && c.off > size)
        abort();
    struct cl_cca_token t;
    memset(&err, 0, sizeof err);
    if (cl_cca_token_parse(data, size, &t, &err) < 0) {
        if (!err.stage ||
            (err.code != CL_EPARSE && err.code != CL_ELIMIT && err.code != CL_EUNSUPPORTED))
            abort();
        return 0;
    }
    /* every borrowed field lies inside the input */
    const uint8_t *end = data + size;
    if (t.realm.challenge.p < data || t.realm.challenge.p + t.realm.challenge.n > end ||
        t.platform_cose.signature.p + t.platform_cose.signature.n > end || t.realm.rak.n != 97)
        abort();
    size_t n = 0;
    uint8_t *tbs = cl_cca_cose_tbs(&t.realm_cose, &n);
    free(tbs);
    int vr = cl_cca_verify_realm(&t, NULL);
    if (vr != 0 && vr != CL_EVERIFY && vr != CL_EPARSE && vr != CL_EUNSUPPORTED)
        abort();
    json_t *claims = cl_cca_claims(&t, NULL);
    if (!claims)
        abort();
    json_decref(claims);
    return 0;
}
