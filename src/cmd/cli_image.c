/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister image pull REF DIR`: the guest's image pull engine from the command line. DIR is
 * a layer store (layers shared between images, overlay layout, image config kept) or, with
 * --flat, a new root filesystem. Progress is a bar on a terminal and plain lines otherwise.
 * kbs:/// locations (policy, keys) are fetched with the KBS client (sample attester) when
 * --kbs-url is given; cloister-cdh plugs into the same callbacks inside the guest.
 */
#include "cmd/cli.h"
#include "image/image.h"
#include "kbs/kbs.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 16
#define MAX_INSECURE 16

struct iopts {
    const char *ref, *dir, *policy, *registries_d, *registries_conf, *creds, *authfile, *ca_file,
        *platform;
    const char *kbs_url, *keyprovider_config;
    const char *keys[MAX_KEYS];
    size_t nkeys;
    const char *insecure[MAX_INSECURE];
    size_t ninsecure;
    bool flat, quiet, keep_blobs, allow_devices;
    uint64_t concurrency, retries, max_layer;
};

static const char *const help_text =
    "Usage: cloister image pull REF DIR [OPTIONS]\n"
    "\n"
    "Pulls REF (e.g. 127.0.0.1:5000/app:1.0, busybox@sha256:...) into DIR, checking the\n"
    "signature policy first, every blob against its digest, encrypted layers against their\n"
    "HMAC before decrypting, and every path against DIR.\n"
    "\n"
    "DIR is a layer store (layers/sha256/<diff_id>/, images/sha256/<manifest>/ with the\n"
    "manifest, config and image.json holding the overlay lowerdir), shared between images.\n"
    "  --flat                     DIR is a new root filesystem instead (layers applied in order)\n"
    "  --policy FILE|kbs:///...   containers-policy.json (default /etc/containers/policy.json;\n"
    "                             none at all denies the pull)\n"
    "  --registries-d DIR         lookaside configuration (default /etc/containers/registries.d)\n"
    "  --registries-conf FILE     mirrors, remapping, blocked and insecure registries\n"
    "  --registry-insecure HOST   plain HTTP or unchecked TLS for HOST (logged on every use)\n"
    "  --creds USER:PASS          registry credentials (Basic, or for the token realm)\n"
    "  --authfile FILE            containers-auth.json ({\"auths\":{HOST:{\"auth\":b64}}})\n"
    "  --ca-file PEM              CA bundle for HTTPS registries\n"
    "  --decryption-key FILE|kbs:///...   private key (PEM or JWK) for JWE-wrapped layers;\n"
    "                             repeatable\n"
    "  --keyprovider-config FILE  ocicrypt key providers (default $OCICRYPT_KEYPROVIDER_CONFIG)\n"
    "  --kbs-url URL              fetch kbs:/// locations from this KBS (sample attester)\n"
    "  --platform OS/ARCH[/VAR]   index entry to pick (default: this machine)\n"
    "  --concurrency N            layers fetched at once (default 3, at most 16)\n"
    "  --retries N                retries of a failing request (1 to 10, default 3)\n"
    "  --max-layer-bytes N        decompressed size cap per layer (default 8 GiB,\n"
    "                             or 15/16 of the target's free space if lower)\n"
    "  --keep-blobs               keep verified blobs in DIR/blobs\n"
    "  --allow-devices            create device nodes from layers (skipped otherwise)\n"
    "  -q, --quiet                no progress\n"
    "\n"
    "Exit status: 0 pulled, 2 usage, 3 malformed, 4 verification failed, 5 denied by policy,\n"
    "6 not found, 7 I/O, 8 limit.\n";

static int usage_error(const char *msg)
{
    cl_cli_errf("cloister image: %s", msg);
    fputc('\n', stderr);
    fputs(help_text, stderr);
    return 2;
}

static int parse(int argc, char **argv, struct iopts *o)
{
    static const struct option longopts[] = {
        {"flat", no_argument, NULL, 'F'},
        {"policy", required_argument, NULL, 'p'},
        {"registries-d", required_argument, NULL, 'd'},
        {"registries-conf", required_argument, NULL, 'r'},
        {"registry-insecure", required_argument, NULL, 'I'},
        {"creds", required_argument, NULL, 'c'},
        {"authfile", required_argument, NULL, 'a'},
        {"ca-file", required_argument, NULL, 'C'},
        {"decryption-key", required_argument, NULL, 'k'},
        {"keyprovider-config", required_argument, NULL, 'K'},
        {"kbs-url", required_argument, NULL, 'u'},
        {"platform", required_argument, NULL, 'P'},
        {"concurrency", required_argument, NULL, 'j'},
        {"retries", required_argument, NULL, 'R'},
        {"max-layer-bytes", required_argument, NULL, 'M'},
        {"keep-blobs", no_argument, NULL, 'B'},
        {"allow-devices", no_argument, NULL, 'D'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->concurrency = CL_IMAGE_DEFAULT_CONCURRENCY;
    o->retries = CL_IMAGE_DEFAULT_RETRIES;
    struct cl_err e = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "Fp:d:r:I:c:a:C:k:K:u:P:j:R:M:BDqh", longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'F':
            o->flat = true;
            break;
        case 'p':
            o->policy = optarg;
            break;
        case 'd':
            o->registries_d = optarg;
            break;
        case 'r':
            o->registries_conf = optarg;
            break;
        case 'I':
            if (o->ninsecure == MAX_INSECURE)
                return usage_error("too many --registry-insecure");
            o->insecure[o->ninsecure++] = optarg;
            break;
        case 'c':
            o->creds = optarg;
            break;
        case 'a':
            o->authfile = optarg;
            break;
        case 'C':
            o->ca_file = optarg;
            break;
        case 'k':
            if (o->nkeys == MAX_KEYS)
                return usage_error("too many --decryption-key");
            o->keys[o->nkeys++] = optarg;
            break;
        case 'K':
            o->keyprovider_config = optarg;
            break;
        case 'u':
            o->kbs_url = optarg;
            break;
        case 'P':
            o->platform = optarg;
            break;
        case 'j':
            if (cl_parse_u64(optarg, 1, CL_IMAGE_MAX_CONCURRENCY, &o->concurrency, "--concurrency",
                             &e) < 0)
                return usage_error(e.msg);
            break;
        case 'R':
            if (cl_parse_u64(optarg, 1, CL_IMAGE_MAX_RETRIES, &o->retries, "--retries", &e) < 0)
                return usage_error(e.msg);
            break;
        case 'M':
            if (cl_parse_u64(optarg, 1, UINT64_MAX, &o->max_layer, "--max-layer-bytes", &e) < 0)
                return usage_error(e.msg);
            break;
        case 'B':
            o->keep_blobs = true;
            break;
        case 'D':
            o->allow_devices = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            fputs(help_text, stdout);
            return 1;
        default:
            return usage_error("unknown option");
        }
    }
    if (argc - optind != 2)
        return usage_error("REF and DIR are required");
    o->ref = argv[optind];
    o->dir = argv[optind + 1];
    if (!o->keyprovider_config)
        o->keyprovider_config = getenv("OCICRYPT_KEYPROVIDER_CONFIG");
    return 0;
}

/* ---- kbs:/// through the KBS client ---- */

static int kbs_fetch(void *ctx, const char *uri, struct cl_secret **out, struct cl_err *err)
{
    const char *url = ctx;
    /* kbs://<host>/<repo>/<type>/<tag>: the host part is ignored, the KBS is --kbs-url */
    const char *p = strncmp(uri, "kbs://", 6) == 0 ? uri + 6 : NULL;
    if (!p)
        return cl_err_set(err, CL_EINVAL, "resource %.200s: not a kbs:// URI", uri);
    p = strchr(p, '/');
    if (!p || !cl_kbs_resource_path_valid(p + 1))
        return cl_err_set(err, CL_EINVAL, "resource %.200s: not kbs:///repo/type/tag", uri);
    struct cl_kbs_client_opts ko = {.url = url};
    return cl_kbs_client_get_resource(&ko, p + 1, out, err);
}

/* ---- credentials ---- */

static int load_authfile(const char *path, const char *registry, cl_str **user, cl_str **pass,
                         struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *txt = cl_file_read(path, 1u << 20, &len, err);
    if (!txt)
        return err->code;
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)txt, len, 8, err);
    if (!doc)
        return cl_err_prefix(err, "%s", path);
    json_t *auths = json_object_get(doc, "auths");
    json_t *entry = json_object_get(auths, registry);
    if (!entry && strcmp(registry, "docker.io") == 0)
        entry = json_object_get(auths, "https://index.docker.io/v1/");
    const char *b64 = json_string_value(json_object_get(entry, "auth"));
    if (!b64)
        return 0;
    size_t n = 0;
    CL_AUTO(cl_bytes) *up = cl_b64_decode(b64, strlen(b64), CL_B64_ANY, 4096, &n, err);
    if (!up)
        return cl_err_prefix(err, "%s: auth for %s", path, registry);
    char *colon = memchr(up, ':', n);
    if (!colon)
        return cl_err_set(err, CL_EPARSE, "%s: auth for %s is not user:password", path, registry);
    *user = strndup((const char *)up, (size_t)(colon - (char *)up));
    *pass = strndup(colon + 1, n - (size_t)(colon + 1 - (char *)up));
    explicit_bzero(up, n);
    return *user && *pass ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

/* ---- progress ---- */

struct progress {
    bool tty;
    uint64_t t0_ns, last_draw_ns;
};

static void human(char *buf, size_t n, double v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (v >= 1024 && u + 1 < CL_ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void on_progress(void *ctx, const struct cl_image_progress *p)
{
    struct progress *pg = ctx;
    uint64_t now = cl_now_mono_ns();
    if (pg->tty) {
        bool final = p->ev == CL_IMAGE_EV_LAYER_DONE || p->ev == CL_IMAGE_EV_LAYER_CACHED;
        if (p->ev == CL_IMAGE_EV_MANIFEST || p->ev == CL_IMAGE_EV_POLICY)
            return;
        if (!final && now - pg->last_draw_ns < 100000000ull)
            return;
        pg->last_draw_ns = now;
        double secs = (double)(now - pg->t0_ns) / 1e9;
        char done[32], total[32], rate[32];
        human(done, sizeof done, (double)p->bytes_done);
        human(total, sizeof total, (double)p->bytes_total);
        human(rate, sizeof rate, secs > 0 ? (double)p->bytes_done / secs : 0);
        int width = 30;
        int fill =
            p->bytes_total ? (int)((double)p->bytes_done * width / (double)p->bytes_total) : 0;
        if (fill > width)
            fill = width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] %s / %s  %s/s  layers %zu/%zu ", bar, done, total, rate,
                p->layers_done, p->nlayers);
        fflush(stderr);
        return;
    }
    switch (p->ev) {
    case CL_IMAGE_EV_MANIFEST:
        fprintf(stderr, "manifest %s\n", p->digest);
        break;
    case CL_IMAGE_EV_POLICY:
        fprintf(stderr, "policy: accepted\n");
        break;
    case CL_IMAGE_EV_LAYER_START:
        fprintf(stderr, "layer %zu/%zu %s: fetching %llu bytes\n", p->layer + 1, p->nlayers,
                p->digest, (unsigned long long)p->layer_size);
        break;
    case CL_IMAGE_EV_LAYER_VERIFIED:
        fprintf(stderr, "layer %zu/%zu %s: verified\n", p->layer + 1, p->nlayers, p->digest);
        break;
    case CL_IMAGE_EV_LAYER_DONE:
        fprintf(stderr, "layer %zu/%zu %s: unpacked\n", p->layer + 1, p->nlayers, p->digest);
        break;
    case CL_IMAGE_EV_LAYER_CACHED:
        fprintf(stderr, "layer %zu/%zu %s: already in the store\n", p->layer + 1, p->nlayers,
                p->digest);
        break;
    case CL_IMAGE_EV_RETRY:
        fprintf(stderr, "retry: %s\n", p->message ? p->message : "");
        break;
    case CL_IMAGE_EV_LAYER_BYTES:
        break;
    }
}

/* ---- pull ---- */

static int fail(const struct cl_err *e)
{
    cl_cli_errf("cloister image pull: %s%s%s", e->stage ? e->stage : "", e->stage ? ": " : "",
                e->msg);
    return cl_err_exit_code(e->code);
}

/* A TLS handshake with a plain-HTTP registry fails in these words (OpenSSL, GnuTLS). */
static const char *const plain_http_said[] = {"wrong version number", "packet length too long",
                                              "unexpected TLS packet", "record_layer"};

/* After a failed pull: says what to do when the registry looks like plain HTTP. */
static void tls_hint(const struct iopts *o, const struct cl_err *e)
{
    struct cl_image_ref r;
    struct cl_err pe = {0};
    if (e->code != CL_EIO || cl_image_ref_parse(o->ref, &r, &pe) < 0)
        return;
    bool listed = false;
    for (size_t i = 0; i < o->ninsecure; i++)
        listed = listed || strcmp(o->insecure[i], r.registry) == 0;
    for (size_t i = 0; !listed && i < CL_ARRAY_LEN(plain_http_said); i++)
        if (strstr(e->msg, plain_http_said[i])) {
            cl_cli_errf("hint: %s answers plain HTTP, not TLS: if that is intended, add "
                        "--registry-insecure %s (or mark it insecure in --registries-conf)",
                        r.registry, r.registry);
            break;
        }
    cl_image_ref_clear(&r);
}

static struct cl_image_policy *load_policy(const struct iopts *o,
                                           const struct cl_image_resources *res, struct cl_err *e)
{
    const char *ppath = o->policy ? o->policy : "/etc/containers/policy.json";
    CL_AUTO(cl_secret) *ptxt = cl_image_resource_load(res, ppath, CL_IMAGE_MAX_POLICY, e);
    if (!ptxt) {
        cl_err_prefix(e, "signature policy %s (none means deny; see --policy)", ppath);
        return NULL;
    }
    return cl_image_policy_parse((const char *)ptxt->data, ptxt->len, e);
}

static struct cl_image_regconf *load_regconf(const struct iopts *o, struct cl_err *e)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *txt =
        o->registries_conf ? cl_file_read(o->registries_conf, 1u << 20, &len, e) : NULL;
    if (o->registries_conf && !txt)
        return NULL;
    return cl_image_regconf_parse(txt ? (const char *)txt : "", len, e);
}

static cl_pkey *load_key(const char *where, const struct cl_image_resources *res, struct cl_err *e)
{
    CL_AUTO(cl_secret) *k = cl_image_resource_load(res, where, CL_IMAGE_MAX_KEY_FILE, e);
    cl_pkey *key = NULL;
    if (k && k->len && k->data[0] == '{') {
        CL_AUTO(json_t) *jwk = cl_json_parse((const char *)k->data, k->len, 8, e);
        key = jwk ? cl_jwk_to_pkey(jwk, e) : NULL;
    } else if (k) {
        key = cl_pkey_from_pem((const char *)k->data, k->len, true, e);
    }
    if (!key)
        cl_err_prefix(e, "--decryption-key %s", where);
    return key;
}

static int do_pull(const struct iopts *o)
{
    struct cl_err e = {0};
    struct cl_image_resources res = {.fetch = o->kbs_url ? kbs_fetch : NULL,
                                     .ctx = (void *)(uintptr_t)o->kbs_url};
    /* ---- policy: unset means deny ---- */
    struct cl_image_policy *policy = load_policy(o, &res, &e);
    if (!policy)
        return fail(&e);
    struct cl_image_lookaside *lookaside = cl_image_lookaside_load(
        o->registries_d ? o->registries_d : "/etc/containers/registries.d", &e);
    struct cl_image_regconf *regconf = NULL;
    int rc = 0;
    cl_pkey *keys[MAX_KEYS] = {0};
    struct cl_image_keyprovider_cmd *kps = NULL;
    size_t nkp = 0;
    cl_str *user = NULL, *pass = NULL;
    struct cl_image_pull_result out = {0};
    if (!lookaside) {
        rc = fail(&e);
        goto done;
    }
    /* ---- registries ---- */
    if ((o->registries_conf || o->ninsecure) && !(regconf = load_regconf(o, &e))) {
        rc = fail(&e);
        goto done;
    }
    for (size_t i = 0; i < o->ninsecure; i++) {
        cl_insecure("registry_insecure", "--registry-insecure %s", o->insecure[i]);
        if (cl_image_regconf_add_insecure(regconf, o->insecure[i], &e) < 0) {
            rc = fail(&e);
            goto done;
        }
    }
    /* ---- decryption keys ---- */
    for (size_t i = 0; i < o->nkeys; i++) {
        if (!(keys[i] = load_key(o->keys[i], &res, &e))) {
            rc = fail(&e);
            goto done;
        }
    }
    if (o->keyprovider_config &&
        !(kps = cl_image_keyprovider_config_load(o->keyprovider_config, &nkp, &e))) {
        rc = fail(&e);
        goto done;
    }
    struct cl_image_keyprovider_set kpset = {.cmds = kps, .n = nkp};
    struct cl_image_decrypt dc = {
        .jwe_keys = keys,
        .njwe_keys = o->nkeys,
        .unwrap = nkp ? cl_image_keyprovider_set_unwrap : NULL,
        .unwrap_ctx = &kpset,
    };
    /* ---- credentials ---- */
    if (o->creds) {
        const char *colon = strchr(o->creds, ':');
        if (!colon) {
            rc = usage_error("--creds must be USER:PASS");
            goto done;
        }
        user = strndup(o->creds, (size_t)(colon - o->creds));
        pass = strdup(colon + 1);
    } else if (o->authfile) {
        struct cl_image_ref r;
        if (cl_image_ref_parse(o->ref, &r, &e) < 0 ||
            (rc = load_authfile(o->authfile, r.registry, &user, &pass, &e)) < 0) {
            cl_image_ref_clear(&r);
            rc = fail(&e);
            goto done;
        }
        cl_image_ref_clear(&r);
    }
    /* ---- platform ---- */
    char pbuf[128] = "";
    const char *os = NULL, *arch = NULL, *variant = NULL;
    if (o->platform) {
        snprintf(pbuf, sizeof pbuf, "%s", o->platform);
        char *s1 = strchr(pbuf, '/');
        if (!s1) {
            rc = usage_error("--platform must be OS/ARCH[/VARIANT]");
            goto done;
        }
        *s1 = 0;
        char *s2 = strchr(s1 + 1, '/');
        if (s2)
            *s2 = 0;
        os = pbuf;
        arch = s1 + 1;
        variant = s2 ? s2 + 1 : NULL;
    }
    struct progress pg = {.tty = isatty(2) == 1, .t0_ns = cl_now_mono_ns()};
    struct cl_image_pull_opts po = {
        .mode = o->flat ? CL_IMAGE_FLAT : CL_IMAGE_LAYERED,
        .policy = policy,
        .lookaside = lookaside,
        .regconf = regconf,
        .registry = {.ca_file = o->ca_file,
                     .creds = {.username = user, .password = pass},
                     .retries = (unsigned)o->retries},
        .decrypt = &dc,
        .resources = &res,
        .os = os,
        .arch = arch,
        .variant = variant,
        .concurrency = (unsigned)o->concurrency,
        .max_layer_bytes = o->max_layer,
        .same_owner = geteuid() == 0,
        .allow_devices = o->allow_devices,
        .keep_blobs = o->keep_blobs,
        .progress = o->quiet ? NULL : on_progress,
        .progress_ctx = &pg,
    };
    rc = cl_image_pull(o->ref, o->dir, &po, &out, &e);
    if (pg.tty && !o->quiet)
        fputc('\n', stderr);
    if (rc < 0) {
        rc = fail(&e);
        tls_hint(o, &e);
        goto done;
    }
    printf("manifest %s\n", out.manifest_digest.str);
    if (out.from_index)
        printf("index %s\n", out.index_digest.str);
    printf("config %s\n", out.config_digest.str);
    printf("layers %zu (%zu already stored)\n", out.nlayers, out.layers_cached);
    printf("downloaded %llu bytes, unpacked %llu entries, %llu bytes\n",
           (unsigned long long)out.bytes_downloaded, (unsigned long long)out.stats.entries,
           (unsigned long long)out.stats.bytes);
    if (out.stats.skipped_devices)
        printf("skipped %llu device nodes (--allow-devices creates them)\n",
               (unsigned long long)out.stats.skipped_devices);
    if (out.lowerdir)
        printf("lowerdir %s\n", out.lowerdir);
    else
        printf("rootfs %s\n", o->dir);
    rc = 0;
done:
    cl_image_pull_result_clear(&out);
    for (size_t i = 0; i < MAX_KEYS; i++)
        cl_auto_cl_pkey(&keys[i]);
    cl_image_keyprovider_cmds_free(kps, nkp);
    if (pass)
        cl_free_wipe(pass, strlen(pass));
    free(user);
    cl_image_regconf_free(regconf);
    cl_image_lookaside_free(lookaside);
    cl_image_policy_free(policy);
    return rc;
}

int cl_cli_image(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(help_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "pull") != 0)
        return usage_error("unknown command (only 'pull')");
    struct iopts o;
    int rc = parse(argc - 1, argv + 1, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    return do_pull(&o);
}
