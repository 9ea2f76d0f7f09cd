/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-kbs: the Key Broker Service daemon. */
#include "kbs/jwks.h"
#include "kbs/kbs.h"

#include "base/sdnotify.h"

#include "cmd/daemon_opts.h"
#include <errno.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* jemalloc's control call when the binary links it (meson option kbs_allocator), else NULL */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

/* "jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c" or "glibc malloc" */
static const char *allocator_name(char *buf, size_t n)
{
    const char *v = NULL;
    size_t len = sizeof v;
    if (mallctl && mallctl("version", &v, &len, NULL, 0) == 0 && v) {
        snprintf(buf, n, "jemalloc %s", v);
        return buf;
    }
    return "glibc malloc";
}

static void usage(FILE *f)
{
    fputs(
        "Usage: cloister-kbs [-c FILE] [--check] [-v] [-q]\n"
        "\n"
        "Cloister's Key Broker Service: trustee's KBS protocol 0.4.0 with the built-in "
        "attestation\n"
        "service, resource store and admin API.\n"
        "\n"
        "  -c, --config-file FILE  TOML configuration (trustee's kbs-config.toml names); also "
        "taken\n"
        "                          from $KBS_CONFIG_FILE. See docs/kbs.md.\n"
        "      --check             validate the configuration and every file it names, print the\n"
        "                          effective configuration as JSON (secrets \"<redacted>\") and "
        "exit\n"
        "                          0; exit 2 naming each key Cloister does not support\n"
        "  -v, --verbose           debug logging\n"
        "  -q, --quiet             warnings and errors only\n"
        "      --log-format F      text (default) or json (one JSON object per line)\n"
        "      --version           the build's version (git describe)\n"
        "  -h, --help              this text\n"
        "\n"
        "Every reply is logged as: peer METHOD path => status (file.c:LINE).\n"
        "SIGINT/SIGTERM stop the server; SIGHUP re-reads the resource policy (a policy that does "
        "not\n"
        "read or compile is logged and the one in force kept).\n",
        f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config-file", required_argument, NULL, 'c'},
        CL_DAEMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("KBS_CONFIG_FILE");
    int c;
    struct cl_daemon_opts common = {.prog = "cloister-kbs", .usage = usage};
    while ((c = getopt_long(argc, argv, "c:" CL_DAEMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
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
    cl_daemon_apply_verbosity(&common);
    struct cl_err err = {0};
    struct cl_kbs_config cfg;
    cl_kbs_jwks_allow_fetch(true); /* https key sources; off in tests and fuzzers */
    int rc = path ? cl_kbs_config_load(path, &cfg, &err) : cl_kbs_config_parse("", 0, &cfg, &err);
    if (rc < 0) {
        fprintf(stderr, "cloister-kbs: %s\n", err.msg);
        return cl_err_exit_code(rc);
    }
    if (common.check) {
        rc = cl_kbs_config_check_files(&cfg, &err);
        if (rc < 0) {
            fprintf(stderr, "cloister-kbs: %s\n", err.msg);
            cl_kbs_config_clear(&cfg);
            return cl_err_exit_code(rc);
        }
        CL_AUTO(json_t) *eff = cl_kbs_config_effective(&cfg);
        cl_kbs_config_clear(&cfg);
        char *text = eff ? json_dumps(eff, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
            return 1;
        printf("%s\n", text);
        free(text);
        return 0;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* worker threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    struct cl_kbs *kbs = cl_kbs_start(&cfg, &err);
    if (!kbs) {
        fprintf(stderr, "cloister-kbs: %s\n", err.msg);
        cl_kbs_config_clear(&cfg);
        return cl_err_exit_code(err.code);
    }
    for (size_t i = 0; i < cfg.nsockets; i++)
        cl_info("listening on %s (port %u)", cfg.sockets[i], cl_kbs_port(kbs, i));
    char alloc[96];
    cl_info("allocator: %s", allocator_name(alloc, sizeof alloc));
    if (!cfg.insecure_http)
        cl_info("TLS priorities (GnuTLS): %s", cfg.tls_priorities);
    /* sockets bound, store opened, policy compiled: tell systemd (Type=notify) */
    cl_sd_notify_or_warn("READY=1\nSTATUS=serving");
    for (;;) {
        struct timespec ts = {60, 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        if (sig == SIGHUP) {
            struct cl_err re = {0};
            cl_sd_notify_reloading();
            if (cl_kbs_reload(kbs, &re) < 0)
                cl_error("SIGHUP: %s", re.msg);
            cl_sd_notify_or_warn("READY=1");
            continue;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            break;
        cl_kbs_tick(kbs);
    }
    cl_info("stopping");
    cl_sd_notify_or_warn("STOPPING=1");
    cl_kbs_stop(kbs);
    cl_kbs_config_clear(&cfg);
    return 0;
}
