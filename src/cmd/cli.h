/* SPDX-License-Identifier: Apache-2.0 */
/* Subcommands of the `cloister` CLI, each in its own file, dispatched by cloister.c. Each
 * returns the process exit status (docs/cli.md lists them). */
#ifndef CL_CMD_CLI_H
#define CL_CMD_CLI_H

int cl_cli_kbs(int argc, char **argv);
int cl_cli_as(int argc, char **argv);
int cl_cli_policy(int argc, char **argv);
int cl_cli_secret(int argc, char **argv);
int cl_cli_initdata(int argc, char **argv);
int cl_cli_image(int argc, char **argv);
int cl_cli_agent(int argc, char **argv);

#endif
