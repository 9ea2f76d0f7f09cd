/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister kbs ...`: the client of a Key Broker Service. get-resource and attest run the
 * whole RCAR handshake with the sample attester; the admin commands mint (or take) an admin
 * JWT and call the admin API. Both Cloister's own argument order (`cloister kbs COMMAND
 * --url URL ...`) and kbs-client's (`--url URL [--cert-file F] [config --auth-private-key K]
 * COMMAND ...`, with its option names) are accepted: kbs_client_order() rewrites the second
 * into the first.
 */
#include "cmd/cli.h"
#include "kbs/kbs.h"
#include "net/http.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_VALUES 64

struct kopts {
    const char *url, *path, *key_kind, *admin_key, *token, *file, *id, *name, *out, *init_data,
        *tee, *ca_file, *type;
    const char *attest_url;
    const char *values[MAX_VALUES];
    size_t nvalues;
    bool as_integer, as_bool, single, verbose;
    bool kbs_client_form; /* called in kbs-client's order: print what kbs-client prints */
    int64_t ttl;
};

static const char *const help_text =
    "Usage: cloister kbs COMMAND [OPTIONS]\n"
    "\n"
    "Guest-side (sample attester; for tests and demos):\n"
    "  get-resource --url URL --path REPO/TYPE/TAG [--key P-256|P-521|RSA|RSA1_5]\n"
    "               [--init-data FILE] [--out FILE] [--attest-url URL] [-v]\n"
    "        full handshake (auth, attest, resource), opens the JWE, writes the secret;\n"
    "        with --attest-url the token is obtained there and presented to --url as a\n"
    "        Bearer token (passport mode)\n"
    "  attest --url URL [--key KIND] [--init-data FILE]   prints the attestation token\n"
    "\n"
    "Admin (authenticated with --admin-key PRIVATE_KEY.pem, which mints a short-lived JWT,\n"
    "or --token JWT):\n"
    "  set-resource --path REPO/TYPE/TAG --file FILE     upload a secret (raw bytes)\n"
    "  delete-resource --path REPO/TYPE/TAG\n"
    "  set-resource-policy --file POLICY.rego\n"
    "  get-resource-policy\n"
    "  set-attestation-policy --file POLICY.rego [--id default_cpu]\n"
    "  set-reference-value --name NAME --value V [--value V...] [--as-integer|--as-bool]\n"
    "                      [--single]      (a sample RVPS message; values form a list unless "
    "--single)\n"
    "  get-reference-value --name NAME\n"
    "  admin-token --admin-key PRIVATE_KEY.pem [--ttl SECONDS]   print an admin JWT\n"
    "\n"
    "Common: --url URL (default http://127.0.0.1:8080; the KBS root, without /kbs/v0),\n"
    "        --ca-file PEM (trust anchors for an https KBS), -v (say each step).\n"
    "\n"
    "kbs-client's order and names are accepted too:\n"
    "  cloister kbs --url URL [--cert-file PEM] config --auth-private-key KEY \\\n"
    "      set-resource --path P --resource-file F | set-resource-policy --policy-file F |\n"
    "      set-attestation-policy --policy-file F [--type rego] [--id ID]\n"
    "  cloister kbs --url URL [--cert-file PEM] get-resource --path P   (prints base64)\n"
    "  cloister kbs --url URL attest\n"
    "  cloister kbs --url URL --admin-key KEY set-sample-reference-value NAME VALUE\n"
    "--cert-file is --ca-file, --auth-private-key is --admin-key, --resource-file and\n"
    "--policy-file are --file.\n";

static int fail(const struct cl_err *e, const char *what)
{
    cl_cli_errf("cloister kbs %s: %s", what, e->msg);
    return cl_err_exit_code(e->code);
}

/* What to do about a transport failure, from libcurl's words and the URL's scheme. */
static const struct {
    bool https; /* the scheme this hint is for */
    const char *said, *hint;
} net_hints[] = {
    {true, "wrong version number",
     "the KBS answers plain HTTP (insecure_http = true?): use --url http://..."},
    {true, "packet length too long",
     "the KBS answers plain HTTP (insecure_http = true?): use --url http://..."},
    {true, "SSL_ERROR_SYSCALL",
     "the KBS dropped the TLS handshake: if it answers plain HTTP (insecure_http = true), use "
     "--url http://..."},
    {true, "certificate",
     "the KBS's certificate did not verify: give its CA with --ca-file (kbs-client: --cert-file)"},
    {false, "Empty reply",
     "the KBS may serve https: use --url https://... (and --ca-file for a private CA)"},
    {false, "HTTP/0.9",
     "the KBS may serve https: use --url https://... (and --ca-file for a private CA)"},
    {false, "reset by peer",
     "the KBS may serve https: use --url https://... (and --ca-file for a private CA)"},
};

static int fail_net(const struct kopts *o, const struct cl_err *e, const char *what)
{
    int rc = fail(e, what);
    if (e->code != CL_EIO)
        return rc;
    bool https = strncmp(o->url, "https://", 8) == 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(net_hints); i++)
        if (net_hints[i].https == https && strstr(e->msg, net_hints[i].said)) {
            fprintf(stderr, "hint: %s\n", net_hints[i].hint);
            return rc;
        }
    if (strstr(e->msg, "Couldn't connect") || strstr(e->msg, "Connection refused"))
        cl_cli_errf("hint: is cloister-kbs running and listening at %s (http_server.sockets)?",
                    o->url);
    return rc;
}

static const struct option longopts[] = {
    {"url", required_argument, NULL, 'u'},
    {"path", required_argument, NULL, 'p'},
    {"key", required_argument, NULL, 'k'},
    {"admin-key", required_argument, NULL, 'a'},
    {"token", required_argument, NULL, 't'},
    {"file", required_argument, NULL, 'f'},
    {"policy", required_argument, NULL, 'f'},
    {"resource-file", required_argument, NULL, 'f'},
    {"policy-file", required_argument, NULL, 'f'},
    {"auth-private-key", required_argument, NULL, 'a'},
    {"cert-file", required_argument, NULL, 'C'},
    {"type", required_argument, NULL, 'y'},
    {"tee-key-file", required_argument, NULL, 'K'},
    {"attestation-token", required_argument, NULL, 'K'},
    {"id", required_argument, NULL, 'i'},
    {"name", required_argument, NULL, 'n'},
    {"value", required_argument, NULL, 'V'},
    {"out", required_argument, NULL, 'o'},
    {"init-data", required_argument, NULL, 'd'},
    {"tee", required_argument, NULL, 'T'},
    {"ca-file", required_argument, NULL, 'C'},
    {"ttl", required_argument, NULL, 'L'},
    {"as-integer", no_argument, NULL, 'I'},
    {"attest-url", required_argument, NULL, 'P'},
    {"as-bool", no_argument, NULL, 'B'},
    {"single", no_argument, NULL, 'S'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
static const char optstring[] = "u:p:k:a:t:f:i:n:V:o:d:T:C:L:P:y:K:IBSvh";

/* --url: http(s), the KBS root (trailing slashes dropped; /kbs/v0 is appended here). */
static int check_url(struct kopts *o)
{
    static char trimmed[2048];
    size_t n = strlen(o->url);
    while (n > 0 && o->url[n - 1] == '/')
        n--;
    if (n >= sizeof trimmed) {
        fprintf(stderr, "cloister kbs: --url is longer than %zu bytes\n", sizeof trimmed - 1);
        return 2;
    }
    snprintf(trimmed, sizeof trimmed, "%.*s", (int)n, o->url);
    if (strncmp(trimmed, "http://", 7) != 0 && strncmp(trimmed, "https://", 8) != 0) {
        cl_cli_errf("cloister kbs: --url '%s' is not http:// or https://; give the KBS root, e.g. "
                    "http://127.0.0.1:8080",
                    trimmed);
        return 2;
    }
    static const char api[] = "/kbs/v0";
    if (n >= sizeof api - 1 && strcmp(trimmed + n - (sizeof api - 1), api) == 0) {
        cl_cli_errf("cloister kbs: --url '%s' ends in /kbs/v0, which cloister appends itself: use "
                    "--url %.*s",
                    trimmed, (int)(n - (sizeof api - 1)), trimmed);
        return 2;
    }
    o->url = trimmed;
    return 0;
}

static int parse(int argc, char **argv, struct kopts *o)
{
    memset(o, 0, sizeof *o);
    o->url = "http://127.0.0.1:8080";
    o->ttl = 300;
    int c;
    struct cl_err e = {0};
    uint64_t ttl = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 'p':
            o->path = optarg;
            break;
        case 'k':
            o->key_kind = optarg;
            break;
        case 'a':
            o->admin_key = optarg;
            break;
        case 't':
            o->token = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'i':
            o->id = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'd':
            o->init_data = optarg;
            break;
        case 'T':
            o->tee = optarg;
            break;
        case 'C':
            o->ca_file = optarg;
            break;
        case 'y':
            o->type = optarg;
            break;
        case 'K':
            fprintf(stderr, "cloister kbs: kbs-client's --tee-key-file and --attestation-token are "
                            "not supported: cloister makes a fresh TEE key for each handshake "
                            "(--key picks its kind); drop the option\n");
            return 2;
        case 'P':
            o->attest_url = optarg;
            break;
        case 'I':
            o->as_integer = true;
            break;
        case 'B':
            o->as_bool = true;
            break;
        case 'S':
            o->single = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'L':
            if (cl_parse_u64(optarg, 1, 10ull * 365 * 86400, &ttl, "--ttl", &e) < 0)
                return fail(&e, "option");
            o->ttl = (int64_t)ttl;
            break;
        case 'V':
            if (o->nvalues == MAX_VALUES) {
                fprintf(stderr, "cloister kbs: at most %d --value\n", MAX_VALUES);
                return 2;
            }
            o->values[o->nvalues++] = optarg;
            break;
        case 'h':
            fputs(help_text, stdout);
            return -1;
        default:
            fputs(help_text, stderr);
            return 2;
        }
    }
    return check_url(o);
}

static int need(const char *v, const char *opt, const char *cmd)
{
    if (v)
        return 0;
    fprintf(stderr, "cloister kbs %s: %s is required (see --help)\n", cmd, opt);
    return 2;
}

/* Returns a new "Authorization: Bearer ..." header. */
static cl_str *admin_header(const struct kopts *o, struct cl_err *err)
{
    if (o->token)
        return cl_strdupf("Authorization: Bearer %s", o->token);
    if (!o->admin_key) {
        cl_err_set(err, CL_EINVAL, "admin calls need --admin-key PRIVATE_KEY.pem or --token JWT");
        return NULL;
    }
    CL_AUTO(cl_pkey) *k = cl_pkey_load_pem(o->admin_key, true, err);
    if (!k)
        return NULL;
    CL_AUTO(cl_str) *jwt = cl_kbs_admin_token(k, o->ttl, err);
    return jwt ? cl_strdupf("Authorization: Bearer %s", jwt) : NULL;
}

static int admin_call(const struct kopts *o, const char *cmd, const char *method, const char *path,
                      const char *ctype, const void *body, size_t len, bool print)
{
    struct cl_err e = {0};
    CL_AUTO(cl_str) *auth = admin_header(o, &e);
    if (!auth)
        return fail(&e, cmd);
    CL_AUTO(cl_str) *ct = cl_strdupf("Content-Type: %s", ctype);
    CL_AUTO(cl_str) *url = cl_strdupf("%s%s", o->url, path);
    const char *hdrs[] = {auth, ct, NULL};
    struct cl_http_client_opts ho = {.ca_file = o->ca_file};
    struct cl_http_client *c = cl_http_client_new(&ho, &e);
    if (!c)
        return fail(&e, cmd);
    struct cl_http_result r = {0};
    int rc = cl_http_request(c, method, url, hdrs, body, len, &r, &e);
    cl_http_client_free(c);
    if (rc < 0)
        return fail_net(o, &e, cmd);
    int status = 0;
    if (r.status != 200) {
        cl_kbs_client_reply_error("KBS", r.status, r.body, r.body_len, &e);
        status = fail(&e, cmd);
    } else if (print && r.body_len) {
        fwrite(r.body, 1, r.body_len, stdout);
        fputc('\n', stdout);
    } else if (o->verbose) {
        fprintf(stderr, "%s %s => 200\n", method, path);
    }
    cl_http_result_clear(&r);
    return status;
}

static int read_file_arg(const struct kopts *o, const char *cmd, cl_bytes **out, size_t *len)
{
    struct cl_err e = {0};
    *out = cl_file_read(o->file, CL_KBS_MAX_RESOURCE, len, &e);
    return *out ? 0 : fail(&e, cmd);
}

static int cmd_get_resource(const struct kopts *o)
{
    int rc = need(o->path, "--path", "get-resource");
    if (rc)
        return rc;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *init = NULL;
    if (o->init_data && !(init = cl_file_read(o->init_data, 65536, NULL, &e)))
        return fail(&e, "get-resource");
    struct cl_kbs_client_opts co = {.url = o->url,
                                    .tee = o->tee,
                                    .key_kind = o->key_kind,
                                    .init_data = (const char *)init,
                                    .ca_file = o->ca_file,
                                    .verbose = o->verbose,
                                    .attest_url = o->attest_url};
    CL_AUTO(cl_secret) *secret = NULL;
    if (cl_kbs_client_get_resource(&co, o->path, &secret, &e) < 0)
        return fail_net(o, &e, "get-resource");
    if (o->out) {
        if (cl_file_write_atomic(o->out, secret->data, secret->len, 0600, &e) < 0)
            return fail(&e, "get-resource");
        return 0;
    }
    if (o->kbs_client_form) { /* kbs-client prints the resource in base64 */
        CL_AUTO(cl_str) *b64 = cl_b64_encode(secret->data, secret->len, CL_B64_STD);
        return b64 && printf("%s\n", b64) > 0 ? 0 : 7;
    }
    return fwrite(secret->data, 1, secret->len, stdout) == secret->len ? 0 : 7;
}

static int cmd_attest(const struct kopts *o)
{
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *init = NULL;
    if (o->init_data && !(init = cl_file_read(o->init_data, 65536, NULL, &e)))
        return fail(&e, "attest");
    struct cl_kbs_client_opts co = {.url = o->url,
                                    .tee = o->tee,
                                    .key_kind = o->key_kind,
                                    .init_data = (const char *)init,
                                    .ca_file = o->ca_file,
                                    .verbose = o->verbose};
    CL_AUTO(cl_str) *token = NULL;
    if (cl_kbs_client_attest(&co, &token, &e) < 0)
        return fail_net(o, &e, "attest");
    puts(token);
    return 0;
}

static int cmd_set_reference_value(const struct kopts *o)
{
    int rc = need(o->name, "--name", "set-reference-value");
    if (rc)
        return rc;
    if (o->nvalues == 0)
        return need(NULL, "--value", "set-reference-value");
    CL_AUTO(json_t) *vals = json_array();
    for (size_t i = 0; i < o->nvalues; i++) {
        json_t *v;
        if (o->as_integer) {
            int64_t x;
            struct cl_err e = {0};
            if (cl_parse_i64(o->values[i], INT64_MIN, INT64_MAX, &x, "--value", &e) < 0)
                return fail(&e, "set-reference-value");
            v = json_integer(x);
        } else if (o->as_bool) {
            if (strcmp(o->values[i], "true") != 0 && strcmp(o->values[i], "false") != 0) {
                fprintf(stderr, "cloister kbs set-reference-value: --value must be true or false "
                                "with --as-bool\n");
                return 2;
            }
            v = json_boolean(strcmp(o->values[i], "true") == 0);
        } else {
            v = json_string(o->values[i]);
        }
        json_array_append_new(vals, v);
    }
    json_t *value =
        o->single && o->nvalues == 1 ? json_incref(json_array_get(vals, 0)) : json_incref(vals);
    CL_AUTO(json_t) *payload = json_object();
    json_object_set_new(payload, o->name, value);
    CL_AUTO(cl_str) *ptext = cl_json_compact(payload);
    CL_AUTO(cl_str) *pb64 = ptext ? cl_b64_encode(ptext, strlen(ptext), CL_B64_STD) : NULL;
    CL_AUTO(json_t) *msg = json_pack("{s:s, s:s, s:s}", "version", "0.1.0", "type", "sample",
                                     "payload", pb64 ? pb64 : "");
    CL_AUTO(cl_str) *text = cl_json_compact(msg);
    return admin_call(o, "set-reference-value", "POST", "/kbs/v0/reference-value",
                      "application/json", text, strlen(text), false);
}

static int cmd_policy(const struct kopts *o, bool attestation)
{
    const char *cmd = attestation ? "set-attestation-policy" : "set-resource-policy";
    int rc = need(o->file, "--file", cmd);
    if (rc)
        return rc;
    CL_AUTO(cl_bytes) *text = NULL;
    size_t len = 0;
    if ((rc = read_file_arg(o, cmd, &text, &len)))
        return rc;
    CL_AUTO(cl_str) *b64 = cl_b64_encode(text, len, CL_B64_URL);
    CL_AUTO(json_t) *body =
        attestation ? json_pack("{s:s, s:s, s:s}", "type", o->type ? o->type : "rego", "policy_id",
                                o->id ? o->id : "default_cpu", "policy", b64)
                    : json_pack("{s:s}", "policy", b64);
    CL_AUTO(cl_str) *btext = cl_json_compact(body);
    return admin_call(o, cmd, "POST",
                      attestation ? "/kbs/v0/attestation-policy" : "/kbs/v0/resource-policy",
                      "application/json", btext, strlen(btext), false);
}

/* Does option word a (as on the command line) take its value from the next word? */
static bool takes_value(const char *a)
{
    if (strncmp(a, "--", 2) == 0) {
        size_t n = strcspn(a + 2, "=");
        if (a[2 + n] == '=')
            return false;
        for (const struct option *lo = longopts; lo->name; lo++)
            if (strlen(lo->name) == n && strncmp(lo->name, a + 2, n) == 0)
                return lo->has_arg == required_argument;
        return false;
    }
    const char *p = a[1] ? strchr(optstring, a[1]) : NULL;
    return p && p[1] == ':' && a[2] == '\0';
}

/* kbs-client's order: options (--url, --cert-file) and `config --auth-private-key K` come
 * before the command. Rewrites argv into Cloister's order (command first) in a new array
 * (the caller frees it; the strings stay argv's). Returns the new argc, or -1 when no command
 * follows the options. */
static int kbs_client_order(int argc, char **argv, char ***out)
{
    char **v = calloc((size_t)argc + 1, sizeof *v), **pre = calloc((size_t)argc, sizeof *pre);
    if (!v || !pre) {
        free(v);
        free(pre);
        return -1;
    }
    int i = 1, npre = 0, n = 1;
    for (; i < argc && (argv[i][0] == '-' || strcmp(argv[i], "config") == 0); i++) {
        if (strcmp(argv[i], "config") == 0)
            continue;
        pre[npre++] = argv[i];
        if (takes_value(argv[i]) && i + 1 < argc)
            pre[npre++] = argv[++i];
    }
    if (i == argc) {
        free(v);
        free(pre);
        return -1;
    }
    v[0] = argv[0];
    v[n++] = argv[i++];
    memcpy(v + n, pre, (size_t)npre * sizeof *pre);
    n += npre;
    while (i < argc)
        v[n++] = argv[i++];
    free(pre);
    *out = v;
    return n;
}

/* Positional arguments: kbs-client's `set-sample-reference-value NAME VALUE`; none elsewhere. */
static int positionals(struct kopts *o, const char *cmd, int argc, char **argv)
{
    int left = argc - optind;
    if (strcmp(cmd, "set-sample-reference-value") == 0 && left == 2 && !o->name &&
        o->nvalues == 0) {
        o->name = argv[optind];
        o->values[o->nvalues++] = argv[optind + 1];
        return 0;
    }
    if (left == 0)
        return 0;
    cl_cli_errf("cloister kbs %s: unexpected argument '%s' (see --help)", cmd, argv[optind]);
    return 2;
}

static int admin_resource(const struct kopts *o, const char *cmd)
{
    int rc = need(o->path, "--path", cmd);
    if (rc)
        return rc;
    CL_AUTO(cl_str) *p = cl_strdupf("/kbs/v0/resource/%s", o->path);
    if (cmd[0] == 'd')
        return admin_call(o, cmd, "DELETE", p, "application/octet-stream", NULL, 0, false);
    if ((rc = need(o->file, "--file (kbs-client: --resource-file)", cmd)))
        return rc;
    CL_AUTO(cl_bytes) *data = NULL;
    size_t len = 0;
    if ((rc = read_file_arg(o, cmd, &data, &len)))
        return rc;
    return admin_call(o, cmd, "POST", p, "application/octet-stream", data, len, false);
}

static int cmd_admin_token(const struct kopts *o, const char *cmd)
{
    struct cl_err e = {0};
    int rc = need(o->admin_key, "--admin-key", cmd);
    if (rc)
        return rc;
    CL_AUTO(cl_pkey) *k = cl_pkey_load_pem(o->admin_key, true, &e);
    CL_AUTO(cl_str) *jwt = k ? cl_kbs_admin_token(k, o->ttl, &e) : NULL;
    if (!jwt)
        return fail(&e, cmd);
    puts(jwt);
    return 0;
}

static int cmd_get_reference_value(const struct kopts *o, const char *cmd)
{
    int rc = need(o->name, "--name", cmd);
    if (rc)
        return rc;
    CL_AUTO(cl_str) *p = cl_strdupf("/kbs/v0/reference-value/%s", o->name);
    return admin_call(o, cmd, "GET", p, "application/json", NULL, 0, true);
}

static int run(const char *cmd, const struct kopts *o)
{
    if (strcmp(cmd, "get-resource") == 0)
        return cmd_get_resource(o);
    if (strcmp(cmd, "attest") == 0)
        return cmd_attest(o);
    if (strcmp(cmd, "set-resource") == 0 || strcmp(cmd, "delete-resource") == 0)
        return admin_resource(o, cmd);
    if (strcmp(cmd, "set-resource-policy") == 0)
        return cmd_policy(o, false);
    if (strcmp(cmd, "set-attestation-policy") == 0)
        return cmd_policy(o, true);
    if (strcmp(cmd, "get-resource-policy") == 0)
        return admin_call(o, cmd, "GET", "/kbs/v0/resource-policy", "application/json", NULL, 0,
                          true);
    if (strcmp(cmd, "set-reference-value") == 0 || strcmp(cmd, "set-sample-reference-value") == 0)
        return cmd_set_reference_value(o);
    if (strcmp(cmd, "get-reference-value") == 0)
        return cmd_get_reference_value(o, cmd);
    if (strcmp(cmd, "admin-token") == 0)
        return cmd_admin_token(o, cmd);
    if (strcmp(cmd, "get-reference-values") == 0) {
        fprintf(stderr, "cloister kbs: get-reference-values (all of them) is not served by "
                        "cloister-kbs; ask for one: get-reference-value --name NAME\n");
        return 2;
    }
    cl_cli_errf("cloister kbs: unknown command '%s' (see cloister kbs --help)", cmd);
    return 2;
}

int cl_cli_kbs(int argc, char **argv)
{
    if (argc < 2) {
        fputs(help_text, stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(help_text, stdout);
        return 0;
    }
    char **v = NULL;
    bool kc = argv[1][0] == '-' || strcmp(argv[1], "config") == 0;
    if (kc && (argc = kbs_client_order(argc, argv, &v)) < 0) {
        fprintf(stderr, "cloister kbs: no command after the options (see cloister kbs --help)\n");
        return 2;
    }
    if (kc)
        argv = v;
    const char *cmd = argv[1];
    struct kopts o;
    int rc = parse(argc - 1, argv + 1, &o);
    if (rc == 0)
        rc = positionals(&o, cmd, argc - 1, argv + 1);
    if (rc == 0) {
        o.kbs_client_form = kc;
        cl_log_set_level(o.verbose ? CL_LOG_INFO : CL_LOG_WARN);
        rc = run(cmd, &o);
    }
    free(v);
    return rc < 0 ? 0 : rc;
}
