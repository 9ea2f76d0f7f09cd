// SPDX-License-Identifier: Apache-2.0
/*
 * Names and inputs: the socket address containerd's grouping scheme expects (one shim per
 * sandbox, found again from any container of the pod), the per-VM state folder, id checks,
 * the bundle's config.json with the CRI annotations that decide the grouping, and the
 * runtime options Any that may carry a ConfigPath.
 */
#include "crypto/crypto.h"
#include "shim/shim.h"
#include "json/json.h"

#include <string.h>

#include "cd_runtimeoptions.pb-c.h"

static cl_str *sha256_hex(const char *a, const char *b, const char *c, size_t keep,
                          struct cl_err *err)
{
    CL_AUTO(cl_str) *joined = cl_strdupf("%s/%s/%s", a, b, c);
    if (!joined) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    uint8_t d[32];
    if (cl_digest(CL_HASH_SHA256, joined, strlen(joined), d, err) < 0)
        return NULL;
    cl_str *hex = cl_hex_encode(d, keep);
    if (!hex)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return hex;
}

cl_str *cl_shim_socket_address(const char *socket_dir, const char *ctrd_address, const char *ns,
                               const char *id, struct cl_err *err)
{
    if (!ctrd_address || !*ctrd_address || !ns || !*ns || !id || !*id) {
        cl_err_set(err, CL_EINVAL,
                   "socket address: containerd address, namespace and id are all required");
        return NULL;
    }
    const char *dir = socket_dir && *socket_dir ? socket_dir : CL_SHIM_SOCKET_DIR;
    CL_AUTO(cl_str) *hex = sha256_hex(ctrd_address, ns, id, 32, err);
    if (!hex)
        return NULL;
    cl_str *out = cl_strdupf("unix://%s/%s", dir, hex);
    if (!out) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    if (strlen(out) - strlen("unix://") >= 108) {
        cl_err_set(err, CL_ELIMIT, "socket address: '%s' does not fit a unix socket path", out);
        free(out);
        return NULL;
    }
    return out;
}

cl_str *cl_shim_vm_dir(const char *state_dir, const char *ns, const char *sandbox_id,
                       struct cl_err *err)
{
    if (!state_dir || state_dir[0] != '/' || !ns || !*ns || !sandbox_id || !*sandbox_id) {
        cl_err_set(err, CL_EINVAL,
                   "vm dir: an absolute state_dir, a namespace and a sandbox id are required");
        return NULL;
    }
    /* Hashed so that a 64-hex CRI id and a long namespace keep agent.sock within sun_path. */
    CL_AUTO(cl_str) *hex = sha256_hex("vm", ns, sandbox_id, 12, err);
    if (!hex)
        return NULL;
    cl_str *out = cl_strdupf("%s/%s", state_dir, hex);
    if (!out)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return out;
}

int cl_shim_id_check(const char *id, const char *what, struct cl_err *err)
{
    if (!id || !*id)
        return cl_err_set(err, CL_EINVAL, "%s: empty", what);
    size_t n = strlen(id);
    if (n > CL_SHIM_MAX_ID)
        return cl_err_set(err, CL_EINVAL, "%s: %zu bytes (at most %d)", what, n, CL_SHIM_MAX_ID);
    if (id[0] == '.')
        return cl_err_set(err, CL_EINVAL, "%s '%.64s': starts with '.'", what, id);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return cl_err_set(err, CL_EINVAL, "%s '%.64s': character %zu is not [A-Za-z0-9_.-]",
                              what, id, i);
    }
    return 0;
}

static const char *ann(const json_t *anns, const char *key)
{
    return json_string_value(json_object_get(anns, key));
}

int cl_shim_bundle_parse(const char *text, size_t len, struct cl_shim_bundle *out,
                         struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (len > CL_SHIM_MAX_BUNDLE_SPEC)
        return cl_err_set(err, CL_ELIMIT, "config.json: %zu bytes (at most %u)", len,
                          CL_SHIM_MAX_BUNDLE_SPEC);
    CL_AUTO(json_t) *spec = cl_json_parse(text, len, CL_JSON_MAX_DEPTH, err);
    if (!spec)
        return cl_err_prefix(err, "config.json");
    if (!json_is_object(spec))
        return cl_err_set(err, CL_EPARSE, "config.json: not a JSON object");
    struct cl_shim_bundle b = {0};
    json_t *anns = json_object_get(spec, "annotations");
    if (anns) {
        if (!json_is_object(anns))
            return cl_err_set(err, CL_EPARSE, "config.json: 'annotations' must be an object");
        const char *k;
        json_t *v;
        json_object_foreach(anns, k, v)
        {
            if (!json_is_string(v))
                return cl_err_set(err, CL_EPARSE,
                                  "config.json: annotation '%.128s' must be a string", k);
        }
    }
    const char *ctype = ann(anns, CL_SHIM_ANN_CONTAINER_TYPE);
    const char *sid = ann(anns, CL_SHIM_ANN_SANDBOX_ID);
    if (!ctype) {
        b.ctype = CL_SHIM_STANDALONE;
    } else if (strcmp(ctype, "sandbox") == 0) {
        b.ctype = CL_SHIM_POD_SANDBOX;
    } else if (strcmp(ctype, "container") == 0) {
        b.ctype = CL_SHIM_POD_CONTAINER;
        if (!sid)
            return cl_err_set(err, CL_EPARSE,
                              "config.json: a pod container needs the annotation '%s'",
                              CL_SHIM_ANN_SANDBOX_ID);
    } else {
        return cl_err_set(err, CL_EPARSE,
                          "config.json: annotation '%s' is '%.32s' (\"sandbox\" or \"container\")",
                          CL_SHIM_ANN_CONTAINER_TYPE, ctype);
    }
    if (b.ctype != CL_SHIM_STANDALONE && sid &&
        cl_shim_id_check(sid, "annotation " CL_SHIM_ANN_SANDBOX_ID, err) < 0)
        return err->code;
    b.sandbox_id = b.ctype == CL_SHIM_STANDALONE ? NULL : sid;
    b.image = ann(anns, CL_SHIM_ANN_IMAGE_NAME);
    b.initdata = ann(anns, CL_SHIM_ANN_INITDATA);
    b.spec = CL_STEAL(spec);
    *out = b;
    return 0;
}

int cl_shim_bundle_load(const char *dir, struct cl_shim_bundle *out, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    CL_AUTO(cl_str) *path = cl_strdupf("%s/config.json", dir);
    if (!path)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_SHIM_MAX_BUNDLE_SPEC, &n, err);
    if (!text)
        return cl_err_prefix(err, "bundle");
    if (cl_shim_bundle_parse((const char *)text, n, out, err) < 0)
        return cl_err_prefix(err, "%s", path);
    return 0;
}

void cl_shim_bundle_clear(struct cl_shim_bundle *b)
{
    json_decref(b->spec);
    memset(b, 0, sizeof *b);
}

const char *cl_shim_bundle_group(const struct cl_shim_bundle *b, const char *own_id)
{
    if (b->ctype == CL_SHIM_POD_CONTAINER || (b->ctype == CL_SHIM_POD_SANDBOX && b->sandbox_id))
        return b->sandbox_id;
    return own_id;
}

int cl_shim_options_config_path(const char *type_url, const uint8_t *value, size_t len,
                                cl_str **out, struct cl_err *err)
{
    *out = NULL;
    static const char suffix[] = "runtimeoptions.v1.Options";
    size_t n = type_url ? strlen(type_url) : 0;
    if (n < sizeof suffix - 1 || strcmp(type_url + n - (sizeof suffix - 1), suffix) != 0)
        return 0;
    Runtimeoptions__V1__Options *o = runtimeoptions__v1__options__unpack(NULL, len, value);
    if (!o)
        return cl_err_set(err, CL_EPARSE, "runtime options: not a runtimeoptions.v1.Options");
    int rc = 0;
    if (o->config_path && *o->config_path) {
        if (o->config_path[0] != '/')
            rc = cl_err_set(err, CL_EPARSE, "runtime options: ConfigPath '%.128s' is not absolute",
                            o->config_path);
        else if (!(*out = strdup(o->config_path)))
            rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    runtimeoptions__v1__options__free_unpacked(o, NULL);
    return rc;
}
