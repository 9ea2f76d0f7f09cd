/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the hub's files; not part of the module's interface. */
#ifndef CL_CDH_INTERNAL_H
#define CL_CDH_INTERNAL_H

#include "cdh/cdh.h"

/* The configuration the hub was started with (borrowed). */
const struct cl_cdh_config *cl_cdh_config_of(const struct cl_cdh *cdh);

#endif
