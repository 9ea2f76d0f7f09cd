/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister secret ...`: sealed secrets on the host side (keygen, seal vault|envelope,
 * offline verify) and calls to a running data hub (unseal, get-resource, unwrap-key), plus
 * wrap-key, which wraps image layer options as the key provider's annotation packet.
 */
#include "cdh/cdh.h"
#include "cmd/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const help_text =
    "Usage: cloister secret COMMAND [OPTIONS]\n"
    "\n"
    "  keygen [--kid KID] [--output-dir DIR]     P-256 signing key: KID-private.json, "
    "KID-public.json\n"
    "  seal --signing-kid KID --signing-jwk-path JWK vault --resource-uri kbs:///R/T/N [--provider "
    "kbs]\n"
    "  seal --signing-kid KID --signing-jwk-path JWK envelope --key-id kbs:///R/T/KEK --kek-file "
    "F\n"
    "       --file-path PLAIN          (the kbs envelope provider: DEK wrapped under the KEK)\n"
    "                                  print sealed.<JWS>\n"
    "  verify --file-path F --jwk PUBLIC.json   check the signature, print the payload\n"
    "  unseal --cdh ADDR --file-path F          ask a data hub (UnsealSecret), print the "
    "plaintext\n"
    "  get-resource --cdh ADDR --uri kbs:///R/T/N\n"
    "  wrap-key --kid kbs:///R/T/KEK --kek-file F --file PLBCO.json\n"
    "                                  print the annotation packet (base64) for a keyprovider\n"
    "  unwrap-key --cdh ADDR --annotation B64  keyprovider UnWrapKey, print the answer JSON\n";

struct sopts {
    const char *kid, *outdir, *jwk, *uri, *provider, *key_id, *kek, *file, *cdh, *annotation;
};

static int fail(const struct cl_err *e, const char *what)
{
    cl_cli_errf("cloister secret %s: %s", what, e->msg);
    return cl_err_exit_code(e->code);
}

static int parse(int argc, char **argv, struct sopts *o)
{
    static const struct option longopts[] = {
        {"kid", required_argument, NULL, 'k'},
        {"signing-kid", required_argument, NULL, 'k'},
        {"output-dir", required_argument, NULL, 'o'},
        {"signing-jwk-path", required_argument, NULL, 'j'},
        {"jwk", required_argument, NULL, 'j'},
        {"resource-uri", required_argument, NULL, 'u'},
        {"uri", required_argument, NULL, 'u'},
        {"provider", required_argument, NULL, 'p'},
        {"key-id", required_argument, NULL, 'i'},
        {"kek-file", required_argument, NULL, 'K'},
        {"file-path", required_argument, NULL, 'f'},
        {"file", required_argument, NULL, 'f'},
        {"cdh", required_argument, NULL, 'c'},
        {"annotation", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "+k:o:j:u:p:i:K:f:c:a:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o->kid = optarg;
            break;
        case 'o':
            o->outdir = optarg;
            break;
        case 'j':
            o->jwk = optarg;
            break;
        case 'u':
            o->uri = optarg;
            break;
        case 'p':
            o->provider = optarg;
            break;
        case 'i':
            o->key_id = optarg;
            break;
        case 'K':
            o->kek = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'c':
            o->cdh = optarg;
            break;
        case 'a':
            o->annotation = optarg;
            break;
        case 'h':
            fputs(help_text, stdout);
            return 1;
        default:
            fputs(help_text, stderr);
            return 2;
        }
    }
    return 0;
}

static int keygen(const struct sopts *o)
{
    struct cl_err e = {0};
    const char *kid = o->kid ? o->kid : "sealed-signing";
    const char *dir = o->outdir ? o->outdir : ".";
    CL_AUTO(cl_pkey) *k = cl_pkey_generate("P-256", &e);
    CL_AUTO(json_t) *priv = k ? cl_jwk_from_pkey(k, true, "ES256", &e) : NULL;
    CL_AUTO(json_t) *pub = k ? cl_jwk_from_pkey(k, false, "ES256", &e) : NULL;
    if (!priv || !pub)
        return fail(&e, "keygen");
    json_object_set_new(priv, "use", json_string("sig"));
    json_object_set_new(priv, "kid", json_string(kid));
    json_object_set_new(pub, "use", json_string("sig"));
    json_object_set_new(pub, "kid", json_string(kid));
    CL_AUTO(cl_str) *pt = cl_json_compact(priv);
    CL_AUTO(cl_str) *ut = cl_json_compact(pub);
    CL_AUTO(cl_str) *pp = cl_strdupf("%s/%s-private.json", dir, kid);
    CL_AUTO(cl_str) *up = cl_strdupf("%s/%s-public.json", dir, kid);
    if (!pt || !ut || !pp || !up || cl_file_write_atomic(pp, pt, strlen(pt), 0600, &e) < 0 ||
        cl_file_write_atomic(up, ut, strlen(ut), 0644, &e) < 0)
        return fail(&e, "keygen");
    explicit_bzero(pt, strlen(pt));
    printf("%s\n%s\n", pp, up);
    return 0;
}

static cl_pkey *load_jwk(const char *path, struct cl_err *e)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *t = cl_file_read(path, 65536, &n, e);
    CL_AUTO(json_t) *j = t ? cl_json_parse((const char *)t, n, 8, e) : NULL;
    if (t)
        explicit_bzero(t, n);
    return j ? cl_jwk_to_pkey(j, e) : NULL;
}

static struct cl_secret *load_kek(const char *path, struct cl_err *e)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, 64, &n, e);
    if (!b)
        return NULL;
    struct cl_secret *s = n == 32 ? cl_secret_from(b, n) : NULL;
    explicit_bzero(b, n);
    if (n != 32)
        cl_err_set(e, CL_EINVAL, "%s: a KEK is 32 raw bytes, this file has %zu", path, n);
    return s;
}

static int seal(int argc, char **argv, struct sopts *o)
{
    struct cl_err e = {0};
    if (optind >= argc || !o->kid || !o->jwk) {
        fputs(help_text, stderr);
        return 2;
    }
    const char *kind = argv[optind];
    optind++;
    int pr = parse(argc, argv, o);
    if (pr)
        return pr == 1 ? 0 : pr;
    CL_AUTO(cl_pkey) *key = load_jwk(o->jwk, &e);
    if (!key)
        return fail(&e, "seal");
    CL_AUTO(json_t) *payload = NULL;
    if (strcmp(kind, "vault") == 0) {
        if (!o->uri) {
            fputs("cloister secret seal vault: --resource-uri is required\n", stderr);
            return 2;
        }
        payload = json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{}}", "version", "0.1.0", "type", "vault",
                            "name", o->uri, "provider", o->provider ? o->provider : "kbs",
                            "provider_settings", "annotations");
    } else if (strcmp(kind, "envelope") == 0) {
        if (!o->key_id || !o->kek || !o->file) {
            fputs("cloister secret seal envelope: --key-id, --kek-file and --file-path are "
                  "required\n",
                  stderr);
            return 2;
        }
        CL_AUTO(cl_secret) *kek = load_kek(o->kek, &e);
        size_t n = 0;
        CL_AUTO(cl_bytes) *plain =
            kek ? cl_file_read(o->file, CL_CDH_MAX_SEALED / 2, &n, &e) : NULL;
        payload = plain ? cl_cdh_envelope_make(o->key_id, kek, plain, n, &e) : NULL;
        if (plain)
            explicit_bzero(plain, n);
        if (!payload)
            return fail(&e, "seal");
    } else {
        fprintf(stderr, "cloister secret seal: '%s' is not vault or envelope\n", kind);
        return 2;
    }
    CL_AUTO(cl_str) *s = payload ? cl_cdh_seal(payload, key, o->kid, &e) : NULL;
    if (!s)
        return fail(&e, "seal");
    printf("%s\n", s);
    return 0;
}

static cl_str *read_text(const char *path, struct cl_err *e)
{
    size_t n = 0;
    cl_bytes *t = cl_file_read(path, CL_CDH_MAX_SEALED, &n, e);
    while (t && n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
        t[--n] = 0;
    return (cl_str *)t;
}

static int verify(const struct sopts *o)
{
    struct cl_err e = {0};
    if (!o->file || !o->jwk) {
        fputs("cloister secret verify: --file-path and --jwk are required\n", stderr);
        return 2;
    }
    CL_AUTO(cl_str) *t = read_text(o->file, &e);
    CL_AUTO(cl_pkey) *key = t ? load_jwk(o->jwk, &e) : NULL;
    struct cl_cdh_sealed s;
    if (!key || cl_cdh_sealed_parse(t, strlen(t), false, &s, &e) < 0)
        return fail(&e, "verify");
    int rc = cl_cdh_sealed_verify(&s, key, &e);
    CL_AUTO(cl_str) *p = rc == 0 ? cl_json_compact(s.payload) : NULL;
    cl_cdh_sealed_clear(&s);
    if (rc < 0)
        return fail(&e, "verify");
    printf("%s\n", p ? p : "");
    return 0;
}

static struct cl_ttrpc_client *hub(const struct sopts *o, struct cl_err *e)
{
    return cl_ttrpc_client_connect(o->cdh ? o->cdh : CL_CDH_DEFAULT_SOCKET, e);
}

static int print_secret(struct cl_secret *s)
{
    size_t w = fwrite(s->data, 1, s->len, stdout);
    return w == s->len ? 0 : 7;
}

static int unseal(const struct sopts *o)
{
    struct cl_err e = {0};
    if (!o->file) {
        fputs("cloister secret unseal: --file-path is required\n", stderr);
        return 2;
    }
    CL_AUTO(cl_str) *t = read_text(o->file, &e);
    struct cl_ttrpc_client *c = t ? hub(o, &e) : NULL;
    CL_AUTO(cl_secret) *v = NULL;
    int rc = c ? cl_cdh_client_unseal(c, t, &v, &e) : -1;
    cl_ttrpc_client_free(c);
    return rc < 0 ? fail(&e, "unseal") : print_secret(v);
}

static int get_resource(const struct sopts *o)
{
    struct cl_err e = {0};
    if (!o->uri) {
        fputs("cloister secret get-resource: --uri is required\n", stderr);
        return 2;
    }
    struct cl_ttrpc_client *c = hub(o, &e);
    CL_AUTO(cl_secret) *v = NULL;
    int rc = c ? cl_cdh_client_get_resource(c, o->uri, &v, &e) : -1;
    cl_ttrpc_client_free(c);
    return rc < 0 ? fail(&e, "get-resource") : print_secret(v);
}

static int wrap_key(const struct sopts *o)
{
    struct cl_err e = {0};
    if (!o->kid || !o->kek || !o->file) {
        fputs("cloister secret wrap-key: --kid, --kek-file and --file are required\n", stderr);
        return 2;
    }
    CL_AUTO(cl_secret) *kek = load_kek(o->kek, &e);
    size_t n = 0;
    CL_AUTO(cl_bytes) *opts = kek ? cl_file_read(o->file, 65536, &n, &e) : NULL;
    CL_AUTO(json_t) *p = opts ? cl_cdh_wrap_key(o->kid, kek, opts, n, &e) : NULL;
    CL_AUTO(cl_str) *t = p ? cl_json_compact(p) : NULL;
    CL_AUTO(cl_str) *b = t ? cl_b64_encode(t, strlen(t), CL_B64_STD) : NULL;
    if (!b)
        return fail(&e, "wrap-key");
    printf("%s\n", b);
    return 0;
}

static int unwrap_key(const struct sopts *o)
{
    struct cl_err e = {0};
    if (!o->annotation) {
        fputs("cloister secret unwrap-key: --annotation is required\n", stderr);
        return 2;
    }
    CL_AUTO(json_t) *in = json_pack("{s:s, s:{s:n, s:n}, s:{s:{s:{}}, s:s}}", "op", "keyunwrap",
                                    "keywrapparams", "ec", "optsdata", "keyunwrapparams", "dc",
                                    "Parameters", "annotation", o->annotation);
    CL_AUTO(cl_str) *t = in ? cl_json_compact(in) : NULL;
    struct cl_ttrpc_client *c = t ? hub(o, &e) : NULL;
    CL_AUTO(cl_secret) *v = NULL;
    int rc = c ? cl_cdh_client_unwrap_key(c, t, &v, &e) : -1;
    cl_ttrpc_client_free(c);
    if (rc < 0)
        return fail(&e, "unwrap-key");
    int r = print_secret(v);
    putchar('\n');
    return r;
}

int cl_cli_secret(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(help_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    struct sopts o;
    memset(&o, 0, sizeof o);
    optind = 1;
    int pr = parse(argc - 1, argv + 1, &o);
    if (pr)
        return pr == 1 ? 0 : pr;
    if (strcmp(cmd, "keygen") == 0)
        return keygen(&o);
    if (strcmp(cmd, "seal") == 0)
        return seal(argc - 1, argv + 1, &o);
    if (strcmp(cmd, "verify") == 0)
        return verify(&o);
    if (strcmp(cmd, "unseal") == 0)
        return unseal(&o);
    if (strcmp(cmd, "get-resource") == 0)
        return get_resource(&o);
    if (strcmp(cmd, "wrap-key") == 0)
        return wrap_key(&o);
    if (strcmp(cmd, "unwrap-key") == 0)
        return unwrap_key(&o);
    fprintf(stderr, "cloister secret: unknown command '%s'\n\n%s", cmd, help_text);
    return 2;
}
