/* SPDX-License-Identifier: Apache-2.0 */
/* Error records: code, the stage that refused, the file and line of the check, a message. */
#include "base/base.h"

#include <stdio.h>
#include <string.h>

int cl_err_set_at(struct cl_err *err, int code, const char *stage, const char *file, int line,
                  const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->stage = stage;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int cl_err_prefix(struct cl_err *err, const char *fmt, ...)
{
    if (!err)
        return CL_EINVAL;
    char pre[CL_ERR_MSG_MAX];
    char old[CL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(pre, sizeof pre - 1);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, pre, n);
    memcpy(err->msg + n, ": ", 2);
    size_t rest = sizeof err->msg - n - 2;
    size_t olen = strnlen(old, rest - 1);
    memcpy(err->msg + n + 2, old, olen);
    err->msg[n + 2 + olen] = '\0';
    return err->code;
}

void cl_err_clear(struct cl_err *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

static const struct {
    int code;
    const char *name;
    int exit_code;
} codes[] = {
    {CL_OK, "OK", 0},
    {CL_EINVAL, "EINVAL", 2},
    {CL_EPARSE, "EPARSE", 3},
    {CL_ELIMIT, "ELIMIT", 8},
    {CL_EVERIFY, "EVERIFY", 4},
    {CL_EDENIED, "EDENIED", 5},
    {CL_ENOTFOUND, "ENOTFOUND", 6},
    {CL_EIO, "EIO", 7},
    {CL_ENOMEM, "ENOMEM", 1},
    {CL_EEXPIRED, "EEXPIRED", 9},
    {CL_EUNSUPPORTED, "EUNSUPPORTED", 10},
    {CL_EEXISTS, "EEXISTS", 11},
};

const char *cl_err_name(int code)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(codes); i++)
        if (codes[i].code == code)
            return codes[i].name;
    return "EUNKNOWN";
}

int cl_err_exit_code(int code)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(codes); i++)
        if (codes[i].code == code)
            return codes[i].exit_code;
    return 1;
}
