/* SPDX-License-Identifier: Apache-2.0 */
/* cloister: one CLI for the relying party and the guest; subcommands are one table. */
#include "base/base.h"
#include "cmd/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

CL_PRINTF(2, 0)
static void vline(FILE *f, const char *fmt, va_list ap)
{
    char raw[CL_LOG_MAX_LINE], esc[CL_LOG_MAX_LINE];
    vsnprintf(raw, sizeof raw, fmt, ap);
    cl_log_escape(raw, esc, sizeof esc);
    fprintf(f, "%s\n", esc);
}

void cl_cli_errf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(stderr, fmt, ap);
    va_end(ap);
}

void cl_cli_linef(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(f, fmt, ap);
    va_end(ap);
}

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"kbs", cl_cli_kbs,
     "talk to a Key Broker Service: get-resource, attest, admin calls, admin-token"},
    {"as", cl_cli_as,
     "attestation service tools: verify TEE evidence offline (snp, tdx, tpm, azure)"},
    {"policy", cl_cli_policy, "Rego policies: eval, test (Kata cases), bench"},
    {"secret", cl_cli_secret,
     "sealed secrets: keygen, seal, verify; data hub calls: unseal, get-resource, unwrap-key"},
    {"initdata", cl_cli_initdata, "init-data: digest, encode (annotation, image), decode"},
    {"agent-ctl", cl_cli_agent,
     "drive a Kata-API agent over ttrpc: one request as JSON, the response as JSON"},
    {"image", cl_cli_image,
     "container images: pull (signature policy, digests, decryption, confined unpack)"},
};

static void usage(FILE *f)
{
    fputs("Usage: cloister COMMAND [ARGS...]\n\nCommands:\n", f);
    for (size_t i = 0; i < CL_ARRAY_LEN(subcommands); i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    fputs("\n`cloister COMMAND --help` describes each command. Exit status: 0 success, 2 usage or\n"
          "configuration, 3 malformed input, 4 verification failed, 5 denied, 6 not found, 7 I/O,\n"
          "8 limit, 9 expired, 1 other.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < CL_ARRAY_LEN(subcommands); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "cloister: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
