/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: NVIDIA SPDM measurement reports. The parser (request, response header,
 * measurement blocks, opaque records, signature, padding), the claim mapper on what parsed,
 * and the device verification against NVIDIA's pinned root with a chain that cannot reach it
 * (it must refuse with a stage). Inputs starting with '{' go to the verifier as evidence JSON.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/nvidia/nvidia.h"
#include "tee/tee_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_err err = {0};
    if (size && data[0] == '{') {
        json_t *ev = cl_json_parse((const char *)data, size, 16, NULL);
        if (!ev)
            return 0;
        const struct cl_tee_verifier *v = cl_tee_verifier_find("nvidia");
        struct cl_tee_config cfg = {.verify_time = 1748736000};
        struct cl_tee_verify_in in = {
            ev, (const uint8_t *)"0123456789abcdef0123456789abcdef", 32, NULL, 0, &cfg};
        json_t *claims = NULL;
        if (v->verify(&in, &claims, &err) == 0)
            abort(); /* nothing generated here chains to NVIDIA's root */
        if (!err.stage || claims)
            abort();
        json_decref(ev);
        return 0;
    }
    struct cl_nvidia_report r;
    if (cl_nvidia_report_parse(data, size, &r, &err) < 0) {
        if (!err.stage || err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (r.signed_len > size || r.nblocks > CL_NVIDIA_MAX_BLOCKS)
        abort();
    for (size_t i = 0; i < r.nblocks; i++)
        if (r.blocks[i].value < data || r.blocks[i].value + r.blocks[i].value_len > data + size)
            abort();
    json_t *c = cl_nvidia_claims(&r, "Hopper", NULL, &err);
    json_decref(c);
    static const char pem[] = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    json_t *claims = NULL;
    if (cl_nvidia_verify_device(data, size, (const uint8_t *)pem, sizeof pem - 1, "HOPPER", NULL,
                                NULL, 0, cl_nvidia_root_pins, cl_nvidia_root_npins, 1748736000,
                                &claims, &err) == 0)
        abort();
    return 0;
}
