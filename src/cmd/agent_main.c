/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-agent: the guest agent (Kata Containers' agent API over ttrpc, with its policy). */
#include "agent/agent.h"

#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs(
        "Usage: cloister-agent [--listen ADDR] [--policy FILE] [--initdata-device PATH] "
        "[--gate-only]\n"
        "                      [--run-dir DIR] [--runc PATH] [--cdh ADDR] [-v] [-q]\n"
        "\n"
        "Cloister's guest agent: serves grpc.AgentService and grpc.Health (Kata Containers' API)\n"
        "over ttrpc and filters every AgentService request through a Rego policy, as Kata's agent\n"
        "does (data.agent_policy.<Request>; denied requests get PERMISSION_DENIED, nothing done).\n"
        "\n"
        "  -l, --listen ADDR           unix:PATH, vsock://-1:PORT or serial:/dev/vportNpM\n"
        "                              (default " CL_AGENT_DEFAULT_LISTEN ")\n"
        "  -p, --policy FILE           policy (Rego v1; v0 accepted with a warning)\n"
        "  -i, --initdata-device PATH  init-data block device (default: scan /dev/vd* for "
        "'initdata')\n"
        "                              Policy sources, first found wins: --policy, init-data\n"
        "                              policy.rego, the compiled-in default (allows everything).\n"
        "  -g, --gate-only             decide but never act: allowed requests are answered\n"
        "                              UNIMPLEMENTED (policy testing without containers)\n"
        "      --run-dir DIR           runtime folder (default /run/kata-containers)\n"
        "      --runc PATH             OCI runtime (default runc)\n"
        "      --cdh ADDR              confidential data hub (default\n"
        "                              unix:///run/confidential-containers/cdh.sock)\n"
        "  -v, --verbose / -q, --quiet log level debug / warnings only\n"
        "\n"
        "A policy that fails to load stops the agent (exit status as cloister's CLI). SIGINT and\n"
        "SIGTERM stop it.\n",
        f);
}

int main(int argc, char **argv)
{
    (void)mallopt(M_ARENA_MAX, 2);
    enum { OPT_RUN_DIR = 256, OPT_RUNC, OPT_CDH };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"policy", required_argument, NULL, 'p'},
        {"initdata-device", required_argument, NULL, 'i'},
        {"gate-only", no_argument, NULL, 'g'},
        {"run-dir", required_argument, NULL, OPT_RUN_DIR},
        {"runc", required_argument, NULL, OPT_RUNC},
        {"cdh", required_argument, NULL, OPT_CDH},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cl_agent_opts o;
    memset(&o, 0, sizeof o);
    int c;
    while ((c = getopt_long(argc, argv, "l:p:i:gvqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o.listen = optarg;
            break;
        case 'p':
            o.policy_file = optarg;
            break;
        case 'i':
            o.initdata_device = optarg;
            break;
        case 'g':
            o.gate_only = true;
            break;
        case OPT_RUN_DIR:
            o.run_dir = optarg;
            break;
        case OPT_RUNC:
            o.runc = optarg;
            break;
        case OPT_CDH:
            o.cdh_addr = optarg;
            break;
        case 'v':
            cl_log_set_level(CL_LOG_DEBUG);
            break;
        case 'q':
            cl_log_set_level(CL_LOG_WARN);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct cl_err err = {0};
    struct cl_agent *a = cl_agent_start(&o, &err);
    if (!a) {
        fprintf(stderr, "cloister-agent: %s\n", err.msg);
        return cl_err_exit_code(err.code);
    }
    int sig = 0;
    sigwait(&set, &sig);
    cl_info("cloister-agent: signal %d, stopping", sig);
    cl_agent_stop(a);
    return 0;
}
