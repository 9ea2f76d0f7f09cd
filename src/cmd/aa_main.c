/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-aa: the attestation agent daemon (guest-components' ttrpc attestation-agent). */
#include "aa/aa.h"
#include "base/sdnotify.h"

#include "cmd/daemon_opts.h"

#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs(
        "Usage: cloister-aa [-a unix://SOCKET] [-c aa.toml] [-t initdata.toml | -i DIGEST] "
        "[--check] [-v] [-q]\n"
        "\n"
        "Cloister's attestation agent: evidence from the TEE, KBS tokens, runtime measurements,\n"
        "served over ttrpc as attestation_agent.AttestationAgentService.\n"
        "\n"
        "  -a, --attestation_sock ADDR  unix:// socket (default " CL_AA_DEFAULT_SOCKET ")\n"
        "  -c, --config-file FILE       aa.toml (upstream's keys; .json also read); without it "
        "the\n"
        "                               KBS comes from AA_KBC_PARAMS=cc_kbc::<url>\n"
        "  -t, --initdata-toml FILE     init-data: digest bound to the TEE and sent to the KBS\n"
        "  -i, --initdata-digest B64    init-data digest only (checked against the TEE)\n"
        "      --check                  read the configuration, print it as JSON (aa.toml's keys,\n"
        "                               defaults filled in; unknown keys warned about) and exit\n"
        "  -v, --verbose / -q, --quiet  log level debug / warnings only\n"
        "      --log-format F           text (default) or json (one JSON object per line)\n"
        "      --version                the build's version (git describe)\n"
        "\n"
        "The sample attester (no TEE) is refused unless aa.toml sets\n"
        "allow_sample_attester_insecure = true. SIGINT and SIGTERM stop the agent; SIGHUP drops\n"
        "the cached KBS token (the next GetToken attests again).\n",
        f);
}

/* AA_KBC_PARAMS=cc_kbc::<url>, upstream's way to name the KBS without a config file. */
static int config_from_env(struct cl_aa_config *cfg, struct cl_err *err)
{
    const char *p = getenv("AA_KBC_PARAMS");
    if (!p || !*p)
        return 0;
    const char *sep = strstr(p, "::");
    if (!sep)
        return cl_err_set(err, CL_EINVAL, "AA_KBC_PARAMS '%.64s' is not <kbc>::<url>", p);
    if ((size_t)(sep - p) == 6 && strncmp(p, "cc_kbc", 6) == 0 && sep[2]) {
        cfg->kbs_url = strdup(sep + 2);
        if (!cfg->kbs_url)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* At most two malloc arenas: the agent serves a few connections at a time, and glibc's
     * default (eight per CPU) lets each connection thread keep a heap of its own after a burst. */
    (void)mallopt(M_ARENA_MAX, 2);
    static const struct option longopts[] = {
        {"attestation_sock", required_argument, NULL, 'a'},
        {"config-file", required_argument, NULL, 'c'},
        {"initdata-toml", required_argument, NULL, 't'},
        {"initdata-digest", required_argument, NULL, 'i'},
        CL_DAEMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *sock = CL_AA_DEFAULT_SOCKET, *cfg_path = NULL;
    struct cl_aa_opts o;
    memset(&o, 0, sizeof o);
    int c;
    struct cl_daemon_opts common = {.prog = "cloister-aa", .usage = usage};
    while ((c = getopt_long(argc, argv, "a:c:t:i:" CL_DAEMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            sock = optarg;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 't':
            o.initdata_toml_path = optarg;
            break;
        case 'i':
            o.initdata_digest_b64 = optarg;
            break;
        default: {
            int x = cl_daemon_opt(&common, c, optarg);
            if (x >= 0)
                return x;
        }
        }
    }
    if (cl_daemon_no_operands(&common, optind, argc) != 0)
        return 2;
    struct cl_err err = {0};
    struct cl_aa_config cfg;
    int rc =
        cfg_path ? cl_aa_config_load(cfg_path, &cfg, &err) : cl_aa_config_parse("", 0, &cfg, &err);
    if (rc == 0 && !cfg_path)
        rc = config_from_env(&cfg, &err);
    if (rc < 0) {
        fprintf(stderr, "cloister-aa: %s\n", err.msg);
        cl_aa_config_clear(&cfg);
        return cl_err_exit_code(rc);
    }
    if (common.check && (rc = cl_aa_config_check_files(&cfg, &err)) < 0) {
        fprintf(stderr, "cloister-aa: %s\n", err.msg);
        cl_aa_config_clear(&cfg);
        return cl_err_exit_code(rc);
    }
    if (common.check) {
        CL_AUTO(json_t) *eff = cl_aa_config_effective(&cfg);
        cl_aa_config_clear(&cfg);
        char *text = eff ? json_dumps(eff, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
            return 1;
        printf("%s\n", text);
        free(text);
        return 0;
    }
    if (cfg.log_level && strcmp(cfg.log_level, "debug") == 0)
        cl_log_set_level(CL_LOG_DEBUG);
    else if (cfg.log_level &&
             (strcmp(cfg.log_level, "warn") == 0 || strcmp(cfg.log_level, "error") == 0))
        cl_log_set_level(CL_LOG_WARN);
    cl_daemon_apply_verbosity(&common);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    o.cfg = &cfg;
    cl_aa_platform_default(&o.platform);
    struct cl_aa *aa = cl_aa_new(&o, &err);
    if (!aa) {
        fprintf(stderr, "cloister-aa: %s\n", err.msg);
        cl_aa_config_clear(&cfg);
        return cl_err_exit_code(err.code);
    }
    struct cl_ttrpc_server *srv =
        cl_ttrpc_server_start(sock, cl_aa_methods, cl_aa_nmethods, aa, &err);
    if (!srv) {
        fprintf(stderr, "cloister-aa: %s\n", err.msg);
        cl_aa_free(aa);
        cl_aa_config_clear(&cfg);
        return cl_err_exit_code(err.code);
    }
    cl_info("cloister-aa: TEE %s, serving on %s%s", cl_aa_tee(aa), sock,
            cfg.kbs_url ? "" : " (no KBS configured)");
    cl_sd_notify_or_warn("READY=1\nSTATUS=serving");
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            cl_sd_notify_reloading();
            cl_aa_token_invalidate(aa);
            cl_info("cloister-aa: SIGHUP, cached KBS token dropped");
            cl_sd_notify_or_warn("READY=1");
            continue;
        }
        cl_info("cloister-aa: signal %d, stopping", sig);
        cl_sd_notify_or_warn("STOPPING=1");
        break;
    }
    cl_ttrpc_server_stop(srv);
    cl_aa_free(aa);
    cl_aa_config_clear(&cfg);
    return 0;
}
