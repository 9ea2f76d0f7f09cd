/* SPDX-License-Identifier: Apache-2.0 */
/* Subcommands of the `cloister` CLI, each in its own file, dispatched by cloister.c. Each
 * returns the process exit status (docs/cli.md lists them). */
#ifndef CL_CMD_CLI_H
#define CL_CMD_CLI_H

#include "base/base.h"

#include <stdio.h>

int cl_cli_kbs(int argc, char **argv);
int cl_cli_as(int argc, char **argv);
int cl_cli_policy(int argc, char **argv);
int cl_cli_secret(int argc, char **argv);
int cl_cli_initdata(int argc, char **argv);
int cl_cli_image(int argc, char **argv);
int cl_cli_agent(int argc, char **argv);

/* Writes one line to stderr: the formatted text with every control byte, invalid UTF-8 and
 * bidi override escaped (cl_log_escape), so an error message quoting bytes from the network or
 * a file cannot rewrite the terminal or forge a second line. Every CLI error goes through it. */
CL_PRINTF(1, 2) void cl_cli_errf(const char *fmt, ...);
/* The same, to f (one escaped line, a newline added). */
CL_PRINTF(2, 3) void cl_cli_linef(FILE *f, const char *fmt, ...);

#endif
