/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the agent's files; not part of the module's interface. */
#ifndef CL_AA_INTERNAL_H
#define CL_AA_INTERNAL_H

#include "aa/aa.h"

/* The tpm attester (tpm.c): the entries of the attester table. */
bool cl_aa_tpm_detect(const struct cl_aa_platform *p);
json_t *cl_aa_tpm_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                           struct cl_err *err);
int cl_aa_tpm_bind(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                   struct cl_err *err);
int cl_aa_tpm_extend(const struct cl_aa_platform *p, unsigned pcr, const uint8_t *digest,
                     size_t len, struct cl_err *err);

#endif
