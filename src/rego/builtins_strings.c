/* SPDX-License-Identifier: Apache-2.0 */
#include "rego/builtins.h"

const struct cl_rego_builtin cl_rego_builtins_strings[] = {
    {NULL, 0, NULL, 0},
};
