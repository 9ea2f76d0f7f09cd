/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the agent runtime makes of host bytes: the first byte picks the request
 * (CreateContainerRequest, ExecProcessRequest, CopyFileRequest), the rest is its protobuf.
 * The OCI spec and the process go through the oci.proto → runtime-spec JSON walk and the
 * process checks; a CopyFile path through the confinement check, whose accepted paths must
 * never hold a ".." component.
 */
#include <string.h>

#include "agent.pb-c.h"
#include "runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void spec_json(const ProtobufCMessage *m, const char *process_key)
{
    json_t *j = cl_agent_oci_to_json(m, NULL);
    if (!j)
        return;
    json_t *p = process_key ? json_object_get(j, process_key) : j;
    if (cl_agent_process_fix(p, NULL) == 0 && !json_is_array(json_object_get(p, "args")))
        abort(); /* accepted without args */
    char *s = json_dumps(j, JSON_COMPACT);
    free(s);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        cl_log_set_level(CL_LOG_ERROR);
        quiet = true;
    }
    if (size < 1)
        return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, n, b);
        if (!r)
            return 0;
        if (r->oci)
            spec_json(&r->oci->base, "process");
        grpc__create_container_request__free_unpacked(r, NULL);
        break;
    }
    case 1: {
        Grpc__ExecProcessRequest *r = grpc__exec_process_request__unpack(NULL, n, b);
        if (!r)
            return 0;
        if (r->process)
            spec_json(&r->process->base, NULL);
        grpc__exec_process_request__free_unpacked(r, NULL);
        break;
    }
    default: {
        Grpc__CopyFileRequest *r = grpc__copy_file_request__unpack(NULL, n, b);
        if (!r)
            return 0;
        const char *rel = NULL;
        if (cl_agent_copy_path_check("/run/kata-containers/shared/containers", r->path, &rel,
                                     NULL) == 0) {
            const char *p = rel;
            while ((p = strstr(p, "..")) != NULL) {
                bool start = p == rel || p[-1] == '/';
                bool end = p[2] == 0 || p[2] == '/';
                if (start && end)
                    abort(); /* a ".." component got through */
                p += 2;
            }
        }
        grpc__copy_file_request__free_unpacked(r, NULL);
        break;
    }
    }
    return 0;
}
