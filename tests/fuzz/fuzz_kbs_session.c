/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: a session value read back from the shared store (kbs_protocol_session: 20
 * expiry digits + {"tee","nonce","state","token"}). The database is a trust boundary: whatever
 * a row holds, decoding is bounded and either refuses or yields a session whose fields fit.
 */
#include "kbs/kbs_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char id[] = "0123456789abcdef0123456789abcdef";
    struct cl_kbs_session s;
    struct cl_err e = {0};
    if (cl_kbs_session_decode(id, data, size, &s, &e) < 0) {
        if (e.code == 0 || !e.msg[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    if (strlen(s.nonce) != KBS_NONCE_B64_LEN || strlen(s.tee) >= sizeof s.tee ||
        strcmp(s.id, id) != 0 || (unsigned)s.state > KBS_SESSION_FAILED || s.expires_unix < 0)
        abort();
    free(s.token);
    return 0;
}
