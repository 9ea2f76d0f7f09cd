/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's host-side inputs: a bundle's config.json (annotations, then the OCI spec
 * rewritten and converted for the guest, then packed), an exec's OCI process, and
 * runtime.toml. */
#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "shim/shim.h"
#include "json/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_shim_bundle b;
    if (cl_shim_bundle_parse((const char *)data, size, &b, NULL) == 0) {
        ProtobufCMessage *m = cl_shim_spec_from_oci(b.spec, "c1", NULL);
        if (m) {
            size_t n = protobuf_c_message_get_packed_size(m);
            uint8_t *buf = malloc(n ? n : 1);
            if (buf)
                protobuf_c_message_pack(m, buf);
            free(buf);
            cl_shim_spec_free(m);
        }
        cl_shim_spec_free(cl_shim_process_from_oci(json_object_get(b.spec, "process"), NULL));
        cl_shim_bundle_clear(&b);
    }
    struct cl_shim_config c;
    cl_shim_config_defaults(&c);
    if (cl_shim_config_parse((const char *)data, size, &c, NULL) == 0)
        c.vcpus = c.vcpus ? c.vcpus : 1;
    cl_shim_config_clear(&c);
    return 0;
}
