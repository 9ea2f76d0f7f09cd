/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hub's ttrpc services with guest-components' names: api.GetResourceService,
 * api.SealedSecretService, api.SecureMountService, api.ImagePullService and
 * keyprovider.KeyProviderService. Errors carry upstream's "[CDH] [ERROR]: " prefix, except
 * that a refusal keeps its code (a policy's no is PERMISSION_DENIED, not INTERNAL). WrapKey is
 * not served (upstream does not serve it either) and answers NOT_FOUND.
 */
#include "cdh/cdh.h"

#include "api.pb-c.h"
#include "keyprovider.pb-c.h"

#include <string.h>

#define CDH_ERR "[CDH] [ERROR]: "

static int h_get_resource(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                          size_t *resp_len, struct cl_err *err)
{
    Api__GetResourceRequest *r = api__get_resource_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, CDH_ERR, "GetResource");
    CL_AUTO(cl_secret) *v = NULL;
    int rc = cl_cdh_get_resource(ctx, r->resourcepath, &v, err);
    api__get_resource_request__free_unpacked(r, NULL);
    if (rc < 0)
        return cl_err_prefix(err, CDH_ERR "get resource failed");
    Api__GetResourceResponse out;
    api__get_resource_response__init(&out);
    out.resource.data = v->data;
    out.resource.len = v->len;
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

static int h_unseal(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                    struct cl_err *err)
{
    Api__UnsealSecretInput *r = api__unseal_secret_input__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, CDH_ERR, "UnsealSecret");
    CL_AUTO(cl_secret) *v = NULL;
    int rc = cl_cdh_unseal(ctx, (const char *)r->secret.data, r->secret.len, &v, err);
    api__unseal_secret_input__free_unpacked(r, NULL);
    if (rc < 0)
        return cl_err_prefix(err, CDH_ERR "unseal secret failed");
    Api__UnsealSecretOutput out;
    api__unseal_secret_output__init(&out);
    out.plaintext.data = v->data;
    out.plaintext.len = v->len;
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

static int h_secure_mount(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                          size_t *resp_len, struct cl_err *err)
{
    Api__SecureMountRequest *r = api__secure_mount_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, CDH_ERR, "SecureMount");
    CL_AUTO(json_t) *opts = json_object();
    for (size_t i = 0; opts && i < r->n_options; i++)
        json_object_set_new(opts, r->options[i]->key, json_string(r->options[i]->value));
    struct cl_cdh_mount_req m = {r->volume_type, opts, r->mount_point};
    int rc = opts ? cl_cdh_secure_mount(ctx, &m, err) : cl_err_set(err, CL_ENOMEM, "out of memory");
    api__secure_mount_request__free_unpacked(r, NULL);
    if (rc < 0)
        return cl_err_prefix(err, CDH_ERR "secure mount failed");
    Api__SecureMountResponse out;
    api__secure_mount_response__init(&out);
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

static int h_unwrap_key(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                        size_t *resp_len, struct cl_err *err)
{
    Keyprovider__KeyProviderKeyWrapProtocolInput *r =
        keyprovider__key_provider_key_wrap_protocol_input__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, CDH_ERR, "UnWrapKey");
    cl_bytes *json = NULL;
    size_t n = 0;
    int rc = cl_cdh_unwrap_key(ctx, r->keyproviderkeywrapprotocolinput.data,
                               r->keyproviderkeywrapprotocolinput.len, &json, &n, err);
    keyprovider__key_provider_key_wrap_protocol_input__free_unpacked(r, NULL);
    if (rc < 0)
        return cl_err_prefix(err, CDH_ERR "unwrap key failed");
    Keyprovider__KeyProviderKeyWrapProtocolOutput out;
    keyprovider__key_provider_key_wrap_protocol_output__init(&out);
    out.keyproviderkeywrapprotocoloutput.data = json;
    out.keyproviderkeywrapprotocoloutput.len = n;
    rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
    cl_free_wipe(json, n); /* it holds the layer key */
    return rc;
}

static int h_pull_image(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp,
                        size_t *resp_len, struct cl_err *err)
{
    Api__ImagePullRequest *r = api__image_pull_request__unpack(NULL, len, req);
    if (!r)
        return cl_ttrpc_bad_request(err, CDH_ERR, "PullImage");
    CL_AUTO(cl_str) *digest = NULL;
    int rc = cl_cdh_pull_image(ctx, r->image_url, r->bundle_path, &digest, err);
    api__image_pull_request__free_unpacked(r, NULL);
    if (rc < 0)
        return cl_err_prefix(err, CDH_ERR "pull image failed");
    Api__ImagePullResponse out;
    api__image_pull_response__init(&out);
    out.manifest_digest = digest;
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

const struct cl_ttrpc_method cl_cdh_methods[] = {
    {"api.ImagePullService", "PullImage", h_pull_image},
    {"api.GetResourceService", "GetResource", h_get_resource},
    {"api.SealedSecretService", "UnsealSecret", h_unseal},
    {"api.SecureMountService", "SecureMount", h_secure_mount},
    {"keyprovider.KeyProviderService", "UnWrapKey", h_unwrap_key},
};
const size_t cl_cdh_nmethods = CL_ARRAY_LEN(cl_cdh_methods);

/* ---- client calls (the CLI and tests) ---- */

static int call_bytes(struct cl_ttrpc_client *c, const char *svc, const char *method,
                      const ProtobufCMessage *m, cl_bytes **raw, size_t *n, struct cl_err *err)
{
    size_t rn = 0;
    CL_AUTO(cl_bytes) *req = NULL;
    if (cl_ttrpc_pack(m, &req, &rn, err) < 0)
        return err->code;
    return cl_ttrpc_call(c, svc, method, req, rn, 0, raw, n, err);
}

static int copy_out(const ProtobufCBinaryData *d, struct cl_secret **out, struct cl_err *err)
{
    *out = cl_secret_from(d->data, d->len);
    return *out ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

int cl_cdh_client_unseal(struct cl_ttrpc_client *c, const char *text, struct cl_secret **out,
                         struct cl_err *err)
{
    Api__UnsealSecretInput in;
    api__unseal_secret_input__init(&in);
    in.secret.data = (uint8_t *)(uintptr_t)text;
    in.secret.len = strlen(text);
    cl_bytes *raw = NULL;
    size_t n = 0;
    if (call_bytes(c, "api.SealedSecretService", "UnsealSecret", &in.base, &raw, &n, err) < 0)
        return err->code;
    Api__UnsealSecretOutput *r = api__unseal_secret_output__unpack(NULL, n, raw);
    cl_free_wipe(raw, n);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "UnsealSecret: malformed answer");
    int rc = copy_out(&r->plaintext, out, err);
    api__unseal_secret_output__free_unpacked(r, NULL);
    return rc;
}

int cl_cdh_client_get_resource(struct cl_ttrpc_client *c, const char *uri, struct cl_secret **out,
                               struct cl_err *err)
{
    Api__GetResourceRequest in;
    api__get_resource_request__init(&in);
    in.resourcepath = (char *)(uintptr_t)uri;
    cl_bytes *raw = NULL;
    size_t n = 0;
    if (call_bytes(c, "api.GetResourceService", "GetResource", &in.base, &raw, &n, err) < 0)
        return err->code;
    Api__GetResourceResponse *r = api__get_resource_response__unpack(NULL, n, raw);
    cl_free_wipe(raw, n);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "GetResource: malformed answer");
    int rc = copy_out(&r->resource, out, err);
    api__get_resource_response__free_unpacked(r, NULL);
    return rc;
}

int cl_cdh_client_unwrap_key(struct cl_ttrpc_client *c, const char *json, struct cl_secret **out,
                             struct cl_err *err)
{
    Keyprovider__KeyProviderKeyWrapProtocolInput in;
    keyprovider__key_provider_key_wrap_protocol_input__init(&in);
    in.keyproviderkeywrapprotocolinput.data = (uint8_t *)(uintptr_t)json;
    in.keyproviderkeywrapprotocolinput.len = strlen(json);
    cl_bytes *raw = NULL;
    size_t n = 0;
    if (call_bytes(c, "keyprovider.KeyProviderService", "UnWrapKey", &in.base, &raw, &n, err) < 0)
        return err->code;
    Keyprovider__KeyProviderKeyWrapProtocolOutput *r =
        keyprovider__key_provider_key_wrap_protocol_output__unpack(NULL, n, raw);
    cl_free_wipe(raw, n);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "UnWrapKey: malformed answer");
    int rc = copy_out(&r->keyproviderkeywrapprotocoloutput, out, err);
    keyprovider__key_provider_key_wrap_protocol_output__free_unpacked(r, NULL);
    return rc;
}

int cl_cdh_client_pull_image(struct cl_ttrpc_client *c, const char *image_url,
                             const char *bundle_path, unsigned timeout_ms, cl_str **digest,
                             struct cl_err *err)
{
    Api__ImagePullRequest in;
    api__image_pull_request__init(&in);
    in.image_url = (char *)(uintptr_t)image_url;
    in.bundle_path = (char *)(uintptr_t)bundle_path;
    size_t rn = 0;
    CL_AUTO(cl_bytes) *req = NULL;
    if (cl_ttrpc_pack(&in.base, &req, &rn, err) < 0)
        return err->code;
    CL_AUTO(cl_bytes) *raw = NULL;
    size_t n = 0;
    if (cl_ttrpc_call(c, "api.ImagePullService", "PullImage", req, rn, timeout_ms, &raw, &n, err) <
        0)
        return err->code;
    Api__ImagePullResponse *r = api__image_pull_response__unpack(NULL, n, raw);
    if (!r)
        return cl_err_set(err, CL_EPARSE, "PullImage: malformed answer");
    *digest = strdup(r->manifest_digest ? r->manifest_digest : "");
    api__image_pull_response__free_unpacked(r, NULL);
    return *digest ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
}
