/* SPDX-License-Identifier: Apache-2.0 */
/* The daemons' common options (daemon_opts.h). */
#include "cmd/daemon_opts.h"

#include <string.h>

#include "base/base.h"
#include "kbs/cl_version.h"

int cl_daemon_opt(struct cl_daemon_opts *d, int c, const char *arg)
{
    switch (c) {
    case 'v':
        d->verbosity = 1;
        return -1;
    case 'q':
        d->verbosity = -1;
        return -1;
    case 'C':
        d->check = true;
        return -1;
    case 'L':
        if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0) {
            fprintf(stderr, "%s: --log-format must be text or json\n", d->prog);
            return 2;
        }
        cl_log_set_json(strcmp(arg, "json") == 0);
        return -1;
    case 'V':
        printf("%s %s\n", d->prog, CL_BUILD_VERSION);
        return 0;
    case 'h':
        d->usage(stdout);
        return 0;
    default:
        d->usage(stderr);
        return 2;
    }
}

int cl_daemon_no_operands(const struct cl_daemon_opts *d, int optind_, int argc)
{
    if (optind_ == argc)
        return 0;
    d->usage(stderr);
    return 2;
}

void cl_daemon_apply_verbosity(const struct cl_daemon_opts *d)
{
    if (d->verbosity)
        cl_log_set_level(d->verbosity > 0 ? CL_LOG_DEBUG : CL_LOG_WARN);
}
