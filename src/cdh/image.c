/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hub's image pull service (api.ImagePullService/PullImage, what kata-agent calls for a
 * guest-pulled image): src/image pulls under the [image] configuration and the layers are
 * mounted as an overlay at <bundle>/rootfs.
 *
 * Order: bundle path checked → configuration loaded (policy, registries, credentials,
 * lookaside; kbs:// ones through this hub's resource path) → pull (policy checked on every
 * pull, encrypted layer keys unwrapped by this hub's key provider in-process) → overlay mount
 * → runtime measurement through the attestation agent (skipped when the agent is absent or
 * says it is not enabled). The configuration is read for every pull (the hub's resource
 * cache keeps KBS round trips down), so a changed policy applies to the next pull.
 */
#include "image/image.h"
#include "aa/aa.h"
#include "cdh/cdh_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define PULL_DOMAIN "github.com/confidential-containers"
#define MAX_REGCONF (1u << 20)
#define MAX_AUTH (1u << 20)
#define MAX_SIGSTORE (1u << 20)

/* One pull at a time: the layer store is shared. */
static pthread_mutex_t pull_lock = PTHREAD_MUTEX_INITIALIZER;

static int fetch_resource(void *ctx, const char *uri, struct cl_secret **out, struct cl_err *err)
{
    return cl_cdh_get_resource(ctx, uri, out, err);
}

/* The hub is the key provider: the wrapped bytes are the annotation packet. */
static int unwrap_here(void *ctx, const char *provider, const uint8_t *wrapped, size_t len,
                       struct cl_secret **optsdata, struct cl_err *err)
{
    (void)provider;
    CL_AUTO(cl_str) *b64 = cl_b64_encode(wrapped, len, CL_B64_STD);
    CL_AUTO(cl_str) *in =
        b64 ? cl_strdupf("{\"op\":\"keyunwrap\",\"keyunwrapparams\":{\"dc\":{\"Parameters\":{}},"
                         "\"annotation\":\"%s\"}}",
                         b64)
            : NULL;
    if (!in)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    cl_bytes *ans = NULL;
    size_t alen = 0;
    if (cl_cdh_unwrap_key(ctx, (const uint8_t *)in, strlen(in), &ans, &alen, err) < 0)
        return cl_err_prefix(err, "key provider");
    json_t *doc = cl_json_parse((const char *)ans, alen, 4, err);
    cl_free_wipe(ans, alen);
    json_t *od = json_object_get(json_object_get(doc, "keyunwrapresults"), "optsdata");
    size_t n = json_array_size(od);
    struct cl_secret *s = od && n ? cl_secret_new(n) : NULL;
    for (size_t i = 0; s && i < n; i++)
        s->data[i] = (uint8_t)json_integer_value(json_array_get(od, i));
    /* the numbers hold the layer key: wipe them before jansson frees them */
    for (size_t i = 0; i < n; i++)
        json_integer_set(json_array_get(od, i), 0);
    json_decref(doc);
    if (!s)
        return cl_err_set(err, CL_EPARSE, "key provider answer: no optsdata");
    *optsdata = s;
    return 0;
}

static int check_bundle(const char *b, struct cl_err *err)
{
    size_t n = b ? strlen(b) : 0;
    if (n == 0 || b[0] != '/' || n > 1024)
        return cl_err_set(err, CL_EINVAL,
                          "bundle_path '%.200s' must be an absolute path of at most 1024 bytes",
                          b ? b : "");
    for (const char *s = b + 1; *s;) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
            return cl_err_set(err, CL_EINVAL, "bundle_path '%.200s' has a '.' or '..' part", b);
        s += l + (e ? 1 : 0);
    }
    return 0;
}

/* Loads `where` (kbs://, file:// or a path) as text (new), or NULL with err. */
static cl_str *load_text(const struct cl_image_resources *res, const char *where, size_t max,
                         const char *what, struct cl_err *err)
{
    CL_AUTO(cl_secret) *s = cl_image_resource_load(res, where, max, err);
    if (!s) {
        cl_err_prefix(err, "%s %s", what, where);
        return NULL;
    }
    cl_str *t = malloc(s->len + 1);
    if (!t) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(t, s->data, s->len);
    t[s->len] = 0;
    return t;
}

/* containers-auth.json: {"auths": {"<registry>": {"auth": "<b64 user:pass>"}}}. */
static int auth_for(const char *text, const char *registry, cl_str **user, cl_str **pass,
                    struct cl_err *err)
{
    CL_AUTO(json_t) *doc = cl_json_parse(text, strlen(text), 8, err);
    if (!doc)
        return cl_err_prefix(err, "registry credentials");
    json_t *e = json_object_get(json_object_get(doc, "auths"), registry);
    const char *a = json_string_value(json_object_get(e, "auth"));
    if (!a)
        return 0; /* anonymous for this registry */
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = cl_b64_decode(a, strlen(a), CL_B64_STD, 4096, &n, err);
    const char *colon = raw ? memchr(raw, ':', n) : NULL;
    if (!colon)
        return cl_err_set(err, CL_EPARSE,
                          "registry credentials for %s: auth is not base64 of user:password",
                          registry);
    *user = strndup((const char *)raw, (size_t)(colon - (const char *)raw));
    *pass = strndup(colon + 1, n - (size_t)(colon + 1 - (const char *)raw));
    cl_free_wipe(CL_STEAL(raw), n);
    return *user && *pass ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

static void set_proxy(const char *name, const char *v)
{
    if (v && *v)
        setenv(name, v, 1);
}

/* setenv is not safe while other threads read the environment (libcurl does), so the proxy
 * variables are set once, before the hub serves. */
void cl_cdh_image_env(const struct cl_cdh_config *cfg)
{
    set_proxy("https_proxy", cfg->image.https_proxy);
    set_proxy("http_proxy", cfg->image.http_proxy);
    set_proxy("no_proxy", cfg->image.no_proxy);
}

static int mount_rootfs(const char *bundle, const struct cl_image_pull_result *res,
                        struct cl_err *err)
{
    char rootfs[1100], upper[1100], work[1100];
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
    snprintf(upper, sizeof upper, "%s/upper", bundle);
    snprintf(work, sizeof work, "%s/work", bundle);
    if (cl_mkdir_p(rootfs, 0755, err) < 0 || cl_mkdir_p(upper, 0755, err) < 0 ||
        cl_mkdir_p(work, 0700, err) < 0)
        return cl_err_prefix(err, "bundle");
    CL_AUTO(cl_str) *opts = cl_strdupf("lowerdir=%s,upperdir=%s,workdir=%s%s", res->lowerdir, upper,
                                       work, res->stats.userxattr ? ",userxattr" : "");
    if (!opts)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (strlen(opts) >= 4096)
        return cl_err_set(err, CL_ELIMIT, "overlay options of %zu bytes (%zu layers) exceed a page",
                          strlen(opts), res->nlayers);
    if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0)
        return cl_err_stage(err, CL_EIO, "mount", "overlay on %s: %s", rootfs, strerror(errno));
    return 0;
}

/* The measurement upstream records; its content keeps upstream's space after the comma. */
static void measure(struct cl_cdh *cdh, const char *image, const char *digest)
{
    const char *sock = cl_cdh_aa_socket(cdh);
    struct cl_err e = {0};
    struct cl_ttrpc_client *c = sock ? cl_ttrpc_client_connect(sock, &e) : NULL;
    if (!c) {
        cl_warn("cdh: PullImage of %s not measured: no attestation agent (%s)", image, e.msg);
        return;
    }
    CL_AUTO(json_t) *iv = json_string(image);
    CL_AUTO(json_t) *dv = json_string(digest);
    CL_AUTO(cl_str) *is = iv ? json_dumps(iv, JSON_ENCODE_ANY) : NULL;
    CL_AUTO(cl_str) *ds = dv ? json_dumps(dv, JSON_ENCODE_ANY) : NULL;
    CL_AUTO(cl_str) *content =
        is && ds ? cl_strdupf("{\"image\":%s, \"digest\":%s}", is, ds) : NULL;
    int result = 0;
    if (!content || cl_aa_client_extend(c, PULL_DOMAIN, "PullImage", content, &result, &e) < 0)
        cl_warn("cdh: PullImage of %s not measured: %s", image, content ? e.msg : "out of memory");
    else if (result != 0)
        cl_info("cdh: PullImage of %s not measured: the attestation agent answered %d", image,
                result);
    cl_ttrpc_client_free(c);
}

/* Cleanups for the pull's locals (CL_AUTO needs a one-word type name). */
typedef struct cl_image_policy img_policy;
typedef struct cl_image_regconf img_regconf;
typedef struct cl_image_lookaside img_lookaside;
typedef struct cl_image_ref img_ref;
typedef char wiped_str;
static void cl_auto_img_policy(img_policy **p)
{
    cl_image_policy_free(*p);
}
static void cl_auto_img_regconf(img_regconf **p)
{
    cl_image_regconf_free(*p);
}
static void cl_auto_img_lookaside(img_lookaside **p)
{
    cl_image_lookaside_free(*p);
}
static void cl_auto_img_ref(img_ref *r)
{
    cl_image_ref_clear(r);
}
static void cl_auto_wiped_str(wiped_str **p)
{
    if (*p)
        cl_free_wipe(*p, strlen(*p));
}

static int pull_locked(struct cl_cdh *cdh, const char *image_url, const char *bundle,
                       cl_str **digest, struct cl_err *err)
{
    const struct cl_cdh_image_config *ic = &cl_cdh_config_of(cdh)->image;
    struct cl_image_resources res = {.fetch = fetch_resource, .ctx = cdh};
    CL_AUTO(cl_str) *ptext = NULL, *rtext = NULL, *atext = NULL, *stext = NULL, *user = NULL;
    CL_AUTO(wiped_str) *pass = NULL;
    /* ---- signature policy: none means deny (the image module refuses a NULL policy) ---- */
    if (ic->policy_uri && *ic->policy_uri) {
        if (!(ptext = load_text(&res, ic->policy_uri, CL_IMAGE_MAX_POLICY, "image security policy",
                                err)))
            return err->code;
    } else if (ic->policy && *ic->policy && !(ptext = strdup(ic->policy))) {
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    if (!ptext)
        return cl_err_stage(
            err, CL_EDENIED, "policy",
            "no image security policy configured ([image] image_security_policy_uri or "
            "image_security_policy): every pull is refused");
    CL_AUTO(img_policy) *policy = cl_image_policy_parse(ptext, strlen(ptext), err);
    if (!policy)
        return cl_err_prefix(err, "image security policy");
    /* ---- registries, credentials, lookaside ---- */
    CL_AUTO(img_regconf) *regconf = NULL;
    CL_AUTO(img_lookaside) *lookaside = NULL;
    CL_AUTO(img_ref) ref = {0};
    if (ic->registry_config)
        rtext = strdup(ic->registry_config);
    else if (ic->registry_config_uri && *ic->registry_config_uri)
        rtext =
            load_text(&res, ic->registry_config_uri, MAX_REGCONF, "registry configuration", err);
    if ((ic->registry_config || (ic->registry_config_uri && *ic->registry_config_uri)) && !rtext) {
        return err->code ? err->code : cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    if (rtext && !(regconf = cl_image_regconf_parse(rtext, strlen(rtext), err))) {
        return cl_err_prefix(err, "[image] registry configuration");
    }
    if (ic->sigstore_config)
        stext = strdup(ic->sigstore_config);
    else if (ic->sigstore_config_uri && *ic->sigstore_config_uri &&
             !(stext = load_text(&res, ic->sigstore_config_uri, MAX_SIGSTORE, "sigstore config",
                                 err))) {
        return err->code;
    }
    lookaside = stext ? cl_image_lookaside_parse(stext, strlen(stext), err)
                      : cl_image_lookaside_parse("", 0, err);
    if (!lookaside) {
        return cl_err_prefix(err, "sigstore config");
    }
    const char *auth_uri = getenv("CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS");
    if (!auth_uri || !*auth_uri)
        auth_uri = ic->auth_uri;
    if (cl_image_ref_parse(image_url, &ref, err) < 0)
        return cl_err_prefix(err, "image_url");
    if (auth_uri && *auth_uri) {
        if (!(atext = load_text(&res, auth_uri, MAX_AUTH, "registry credentials", err)) ||
            auth_for(atext, ref.registry, &user, &pass, err) < 0) {
            return err->code;
        }
    }
    /* ---- extra roots: one PEM bundle file in the work folder ---- */
    const char *work = ic->work_dir && *ic->work_dir ? ic->work_dir : CL_CDH_IMAGE_WORK_DIR;
    if (cl_mkdir_p(work, 0700, err) < 0)
        return err->code;
    char ca[1100] = "";
    if (ic->ncerts) {
        snprintf(ca, sizeof ca, "%s/extra-roots.pem", work);
        CL_AUTO(cl_str) *pem = strdup("");
        for (size_t i = 0; pem && i < ic->ncerts; i++) {
            cl_str *t = cl_strdupf("%s%s\n", pem, ic->extra_root_certs[i]);
            free(pem);
            pem = t;
        }
        if (!pem)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        if (cl_file_write_atomic(ca, pem, strlen(pem), 0644, err) < 0)
            return err->code;
    }
    /* ---- pull into the layer store ---- */
    struct cl_image_decrypt dc = {.unwrap = unwrap_here, .unwrap_ctx = cdh};
    struct cl_image_pull_opts po = {
        .mode = CL_IMAGE_LAYERED,
        .policy = policy,
        .lookaside = lookaside,
        .regconf = regconf,
        .registry = {.ca_file = ca[0] ? ca : NULL, .creds = {.username = user, .password = pass}},
        .decrypt = &dc,
        .resources = &res,
        .concurrency = (unsigned)ic->max_concurrent,
        .same_owner = geteuid() == 0,
    };
    struct cl_image_pull_result out = {0};
    uint64_t t0 = cl_now_mono_ns();
    if (cl_image_pull(image_url, work, &po, &out, err) < 0)
        return cl_err_prefix(err, "pull %.200s", image_url);
    int rc = mount_rootfs(bundle, &out, err);
    if (rc == 0 && !(*digest = strdup(out.manifest_digest.str)))
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    if (rc == 0)
        cl_info("cdh: pulled %s (%s, %zu layers, %zu cached, %llu bytes) into %s/rootfs in %llu ms",
                image_url, out.manifest_digest.str, out.nlayers, out.layers_cached,
                (unsigned long long)out.bytes_downloaded, bundle,
                (unsigned long long)((cl_now_mono_ns() - t0) / 1000000));
    cl_image_pull_result_clear(&out);
    return rc;
}

int cl_cdh_pull_image(struct cl_cdh *cdh, const char *image_url, const char *bundle_path,
                      cl_str **digest, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!image_url || !*image_url || strlen(image_url) > CL_IMAGE_MAX_REF)
        return cl_err_set(err, CL_EINVAL, "image_url empty or longer than %d bytes",
                          CL_IMAGE_MAX_REF);
    if (check_bundle(bundle_path, err) < 0)
        return err->code;
    pthread_mutex_lock(&pull_lock);
    int rc = pull_locked(cdh, image_url, bundle_path, digest, err);
    pthread_mutex_unlock(&pull_lock);
    if (rc == 0)
        measure(cdh, image_url, *digest);
    return rc;
}
