/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trustee's regularize_data, shared by attesters and verifiers. In a file of its own: an
 * attester (the guest's agent) that needs it does not link the verifier table of tee.c, and
 * through it every verifier.
 */
#include "tee/tee.h"

#include <string.h>

void cl_tee_regularize(const uint8_t *digest, size_t dlen, uint8_t *field, size_t field_len)
{
    memset(field, 0, field_len);
    memcpy(field, digest, dlen < field_len ? dlen : field_len);
}
