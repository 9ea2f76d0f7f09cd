/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options the three daemons (cloister-kbs, cloister-aa, cloister-cdh) take alike:
 * -v/--verbose, -q/--quiet, --log-format text|json, --check, --version, --help, and what an
 * unknown option does. Each main() lists CL_DAEMON_LONGOPTS in its option table and hands
 * every option it does not know itself to cl_daemon_opt.
 */
#ifndef CL_DAEMON_OPTS_H
#define CL_DAEMON_OPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#define CL_DAEMON_SHORTOPTS "vqh"
#define CL_DAEMON_LONGOPTS                                                                         \
    {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},                        \
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},                     \
        {"log-format", required_argument, NULL, 'L'},                                              \
    {                                                                                              \
        "check", no_argument, NULL, 'C'                                                            \
    }

struct cl_daemon_opts {
    const char *prog;         /* "cloister-kbs": messages and --version */
    void (*usage)(FILE *out); /* the program's --help text */
    int verbosity;            /* 1 -v, -1 -q, 0 neither (the last one given wins) */
    bool check;               /* --check */
};

/* Handles option c of getopt_long (argument arg) for the program: -1 when the caller goes on
 * parsing, else the exit status to return now (0 after --version or --help, 2 after a bad
 * --log-format value or an unknown option, with the usage on stderr). */
int cl_daemon_opt(struct cl_daemon_opts *d, int c, const char *arg);
/* After parsing: no operand may follow the options; 0, or 2 with the usage on stderr. */
int cl_daemon_no_operands(const struct cl_daemon_opts *d, int optind_, int argc);
/* Applies -v / -q over whatever level is set (call it after the config's own level). */
void cl_daemon_apply_verbosity(const struct cl_daemon_opts *d);

#endif
