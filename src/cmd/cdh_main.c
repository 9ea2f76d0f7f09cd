/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-cdh: the confidential data hub daemon with the REST bridge (api-server-rest). */
#include "base/sdnotify.h"
#include "cdh/cdh.h"
#include "net/http.h"

#include "cmd/daemon_opts.h"

#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs(
        "Usage: cloister-cdh [-c cdh.toml] [--check] [--rest ADDR | --no-rest] [--features F] [-v] "
        "[-q]\n"
        "\n"
        "Cloister's confidential data hub: KBS resources (kbs:///repo/type/tag), sealed secrets,\n"
        "image layer keys (ocicrypt keyprovider UnWrapKey), LUKS2 secure mounts, over ttrpc; and\n"
        "the REST bridge for containers (loopback peers only).\n"
        "\n"
        "  -c, --config-file FILE   cdh.toml (upstream's keys; .json also read); without it the "
        "KBS\n"
        "                           comes from AA_KBC_PARAMS=cc_kbc::<url>\n"
        "  -r, --rest ADDR          REST bridge address (default " CL_CDH_DEFAULT_REST
        " or [rest] address)\n"
        "  -n, --no-rest            no REST bridge\n"
        "  -f, --features F         REST features: resource (default), attestation, all\n"
        "      --check              read the configuration, print it as JSON (cdh.toml's keys, "
        "defaults\n"
        "                           filled in; unknown keys are warned about) and exit: 0, or the\n"
        "                           error's exit code naming the key\n"
        "  -v, --verbose / -q, --quiet\n"
        "      --log-format F       text (default) or json (one JSON object per line)\n"
        "      --version            the build's version (git describe)\n"
        "\n"
        "SIGHUP empties the resource cache; SIGINT and SIGTERM stop the hub.\n",
        f);
}

static int config_from_env(struct cl_cdh_config *cfg, struct cl_err *err)
{
    const char *p = getenv("AA_KBC_PARAMS");
    if (!p || !*p)
        return 0;
    const char *sep = strstr(p, "::");
    if (!sep)
        return cl_err_set(err, CL_EINVAL, "AA_KBC_PARAMS '%.64s' is not <kbc>::<url>", p);
    cfg->kbc_name = strndup(p, (size_t)(sep - p));
    cfg->kbc_url = strdup(sep + 2);
    if (!cfg->kbc_name || !cfg->kbc_url)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (strcmp(cfg->kbc_name, "cc_kbc") != 0 && strcmp(cfg->kbc_name, "offline_fs_kbc") != 0)
        return cl_err_set(err, CL_EINVAL,
                          "AA_KBC_PARAMS: kbc '%.32s' is not cc_kbc or offline_fs_kbc",
                          cfg->kbc_name);
    return 0;
}

int main(int argc, char **argv)
{
    /* At most two malloc arenas: the hub serves a few connections at a time, and glibc's
     * default (eight per CPU) lets each connection thread keep a heap of its own after a burst. */
    (void)mallopt(M_ARENA_MAX, 2);
    static const struct option longopts[] = {
        {"config-file", required_argument, NULL, 'c'},
        {"rest", required_argument, NULL, 'r'},
        {"no-rest", no_argument, NULL, 'n'},
        {"features", required_argument, NULL, 'f'},
        CL_DAEMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *cfg_path = NULL, *rest = NULL, *features = NULL;
    bool no_rest = false;
    struct cl_daemon_opts common = {.prog = "cloister-cdh", .usage = usage};
    int c;
    while ((c = getopt_long(argc, argv, "c:r:nf:" CL_DAEMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'r':
            rest = optarg;
            break;
        case 'n':
            no_rest = true;
            break;
        case 'f':
            features = optarg;
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
    struct cl_cdh_config cfg;
    int rc = cfg_path ? cl_cdh_config_load(cfg_path, &cfg, &err)
                      : cl_cdh_config_parse("", 0, &cfg, &err);
    if (rc == 0 && !cfg_path)
        rc = config_from_env(&cfg, &err);
    if (rc < 0) {
        fprintf(stderr, "cloister-cdh: %s\n", err.msg);
        cl_cdh_config_clear(&cfg);
        return cl_err_exit_code(rc);
    }
    if (common.check && (rc = cl_cdh_config_check_files(&cfg, &err)) < 0) {
        fprintf(stderr, "cloister-cdh: %s\n", err.msg);
        cl_cdh_config_clear(&cfg);
        return cl_err_exit_code(rc);
    }
    if (common.check) {
        CL_AUTO(json_t) *eff = cl_cdh_config_effective(&cfg);
        cl_cdh_config_clear(&cfg);
        char *text = eff ? json_dumps(eff, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
            return 1;
        printf("%s\n", text);
        free(text);
        return 0;
    }
    cl_cdh_image_env(&cfg);
    if (cfg.log_level && strcmp(cfg.log_level, "debug") == 0)
        cl_log_set_level(CL_LOG_DEBUG);
    cl_daemon_apply_verbosity(&common);
    if (!rest)
        rest = cfg.rest_address ? cfg.rest_address : CL_CDH_DEFAULT_REST;
    if (!*rest || strcmp(rest, "none") == 0)
        no_rest = true;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct cl_cdh *cdh = cl_cdh_new(&cfg, &err);
    const char *sock = cfg.socket ? cfg.socket : CL_CDH_DEFAULT_SOCKET;
    struct cl_ttrpc_server *srv =
        cdh ? cl_ttrpc_server_start(sock, cl_cdh_methods, cl_cdh_nmethods, cdh, &err) : NULL;
    struct cl_http_server *http = NULL;
    if (srv && !no_rest)
        http = cl_cdh_rest_start(cdh, rest, features ? features : cfg.rest_features, &err);
    if (!srv || (!no_rest && !http)) {
        fprintf(stderr, "cloister-cdh: %s\n", err.msg);
        cl_ttrpc_server_stop(srv);
        cl_cdh_free(cdh);
        cl_cdh_config_clear(&cfg);
        return cl_err_exit_code(err.code);
    }
    if (http)
        cl_info("cloister-cdh: serving on %s, REST bridge on %s:%u", sock, rest,
                cl_http_server_port(http, 0));
    else
        cl_info("cloister-cdh: serving on %s (no REST bridge)", sock);
    cl_sd_notify_or_warn("READY=1\nSTATUS=serving");
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            cl_sd_notify_reloading();
            cl_cdh_cache_invalidate(cdh);
            cl_sd_notify_or_warn("READY=1");
            continue;
        }
        cl_info("cloister-cdh: signal %d, stopping", sig);
        cl_sd_notify_or_warn("STOPPING=1");
        break;
    }
    cl_http_server_stop(http);
    cl_ttrpc_server_stop(srv);
    cl_cdh_free(cdh);
    cl_cdh_config_clear(&cfg);
    return 0;
}
