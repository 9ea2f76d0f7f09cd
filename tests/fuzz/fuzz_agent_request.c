/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's request decoder → policy-input path: the first input byte picks the RPC
 * (cl_agent_rpcs, modulo their count), the rest is that RPC's request payload as a host
 * would send it. Unpacked with the budgeted allocator, turned into the serde JSON the
 * policy sees, then driven back through JSON → protobuf → JSON, which must reproduce the
 * same document (unknown fields aside, the two walks are inverses) unless a uint64 above
 * INT64_MAX had to travel as a JSON real.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_real(const json_t *j)
{
    if (json_is_real(j))
        return true;
    size_t i;
    const char *k;
    json_t *v;
    if (json_is_array(j)) {
        json_array_foreach((json_t *)(uintptr_t)j, i, v) if (has_real(v)) return true;
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)(uintptr_t)j, k, v) if (has_real(v)) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct cl_agent_rpc *rpc = &cl_agent_rpcs[data[0] % cl_agent_nrpcs];
    struct cl_err err = {0};
    ProtobufCMessage *m = cl_agent_pb_unpack(rpc->req, data + 1, size - 1, &err);
    if (!m)
        return 0;
    json_t *j = cl_agent_pb_to_json(m, &err);
    cl_agent_pb_free(m);
    if (!j)
        return 0;
    ProtobufCMessage *back = cl_agent_json_to_pb(rpc->req, j, CL_AGENT_J2P_STRICT, &err);
    if (!back) {
        if (!has_real(j)) {
            fprintf(stderr, "%s: own JSON refused: %s\n", rpc->req->name, err.msg);
            abort();
        }
        json_decref(j);
        return 0;
    }
    json_t *j2 = cl_agent_pb_to_json(back, &err);
    cl_agent_pb_free(back);
    if (!j2 || (!has_real(j) && !json_equal(j, j2))) {
        fprintf(stderr, "%s: JSON → protobuf → JSON changed the document\n", rpc->req->name);
        abort();
    }
    json_decref(j2);
    json_decref(j);
    return 0;
}
