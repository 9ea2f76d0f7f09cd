/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The REST bridge (guest-components' api-server-rest) inside the hub: containers reach KBS
 * resources and attestation through plain HTTP on 127.0.0.1:8006. Only loopback peers are
 * served (403 "Forbidden" otherwise, checked before anything else); resources are fetched
 * in-process, the /aa/ calls go to the attestation agent over ttrpc. Status codes as upstream:
 * 400 for a missing or bad query, 404 for an unknown path or a disabled feature, 405 for a
 * wrong method, 500 with the error text when the backend fails.
 */
#include "aa/aa.h"
#include "cdh/cdh_internal.h"
#include "net/http.h"

#include <string.h>

#define REST_VERSION "0.1.0"

struct rest {
    struct cl_cdh *cdh;
    bool resource, attestation;
    char features[16];
};

static struct rest g_rest_slot; /* one bridge per process: the hub has one */

static bool loopback(const char *peer)
{
    return peer &&
           (strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]", 5) == 0 ||
            strncmp(peer, "[::ffff:127.", 12) == 0 || strncmp(peer, "::ffff:127.", 11) == 0);
}

static void text(struct cl_http_resp *resp, int status, const char *msg, const char *file, int line)
{
    cl_http_reply_at(resp, status, "text/plain", msg, strlen(msg), file, line);
}
#define TEXT(resp, status, msg) text((resp), (status), (msg), __FILE__, __LINE__)

/* Common gate: loopback, method, feature. Returns false when a reply was set. */
static bool gate(const struct rest *r, const struct cl_http_req *req, struct cl_http_resp *resp,
                 const char *method, bool feature, const char *fname)
{
    if (!loopback(req->peer)) {
        TEXT(resp, 403, "Forbidden");
        return false;
    }
    if (!feature) {
        char m[64];
        snprintf(m, sizeof m, "%s Feature Not Enabled", fname);
        TEXT(resp, 404, m);
        return false;
    }
    if (strcmp(req->method, method) != 0) {
        TEXT(resp, 405, "METHOD NOT ALLOWED");
        return false;
    }
    return true;
}

static void backend_error(struct cl_http_resp *resp, const struct cl_err *e, const char *file,
                          int line)
{
    text(resp, 500, e->msg[0] ? e->msg : "internal error", file, line);
}

static struct cl_ttrpc_client *aa_client(struct rest *r, struct cl_err *err)
{
    return cl_ttrpc_client_connect(cl_cdh_aa_socket(r->cdh), err);
}

static void h_resource(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct rest *r = ctx;
    if (!gate(r, req, resp, "GET", r->resource, "Resource"))
        return;
    const char *p = req->path + strlen("/cdh/resource/");
    /* The HTTP server already refuses control bytes in the raw URL (a decoded %00 would have
     * cut the path short); checked here again because this path becomes a KBS request. */
    for (const char *q = p; *q; q++) {
        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
            TEXT(resp, 400, "control byte in the resource path");
            return;
        }
    }
    CL_AUTO(cl_str) *uri = cl_strdupf("kbs:///%s", p);
    struct cl_err e = {0};
    CL_AUTO(cl_secret) *v = NULL;
    if (!uri) {
        TEXT(resp, 500, "out of memory");
    } else if (cl_cdh_get_resource(r->cdh, uri, &v, &e) < 0) {
        if (e.code == CL_EINVAL)
            cl_http_reply(resp, 400, "text/plain", e.msg, strlen(e.msg));
        else
            backend_error(resp, &e, __FILE__, __LINE__);
    } else {
        cl_http_reply(resp, 200, "application/octet-stream", v->data, v->len);
    }
}

static void h_token(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct rest *r = ctx;
    if (!gate(r, req, resp, "GET", r->attestation, "Attestation"))
        return;
    const char *type = cl_http_req_query(req, "token_type");
    if (!type) {
        TEXT(resp, 400, "BAD REQUEST");
        return;
    }
    struct cl_err e = {0};
    struct cl_ttrpc_client *c = aa_client(r, &e);
    cl_bytes *tok = NULL;
    size_t n = 0;
    if (!c || cl_aa_client_get_token(c, type, &tok, &n, &e) < 0) {
        backend_error(resp, &e, __FILE__, __LINE__);
    } else {
        cl_http_reply(resp, 200, "application/octet-stream", tok, n);
        cl_free_wipe(tok, n);
    }
    cl_ttrpc_client_free(c);
}

static void evidence(struct rest *r, const struct cl_http_req *req, struct cl_http_resp *resp,
                     bool additional)
{
    if (!gate(r, req, resp, "GET", r->attestation, "Attestation"))
        return;
    const char *rd = cl_http_req_query(req, "runtime_data"),
               *enc = cl_http_req_query(req, "encoding");
    if (!rd || (enc && strcmp(enc, "base64") != 0)) {
        TEXT(resp, 400, "BAD REQUEST");
        return;
    }
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *raw = NULL;
    size_t rlen = strlen(rd);
    if (enc) {
        raw = cl_b64_decode(rd, rlen, CL_B64_URL_ANYPAD, CL_AA_MAX_RUNTIME_DATA, &rlen, &e);
        if (!raw) {
            TEXT(resp, 400, "BAD REQUEST");
            return;
        }
    }
    struct cl_ttrpc_client *c = aa_client(r, &e);
    cl_bytes *ev = NULL;
    size_t n = 0;
    if (!c || cl_aa_client_get_evidence(c, raw ? raw : (const uint8_t *)rd, rlen, additional, &ev,
                                        &n, &e) < 0)
        backend_error(resp, &e, __FILE__, __LINE__);
    else
        cl_http_reply(resp, 200, "application/octet-stream", ev, n);
    free(ev);
    cl_ttrpc_client_free(c);
}

static void h_evidence(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    evidence(ctx, req, resp, false);
}

static void h_additional(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    evidence(ctx, req, resp, true);
}

static void h_aael(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct rest *r = ctx;
    if (!gate(r, req, resp, "POST", r->attestation, "Attestation"))
        return;
    struct cl_err e = {0};
    CL_AUTO(json_t) *body = cl_json_parse((const char *)req->body, req->body_len, 4, &e);
    const char *d = NULL, *o = NULL, *c = NULL;
    if (!body || cl_json_get_str(body, "domain", &d, &e) < 0 ||
        cl_json_get_str(body, "operation", &o, &e) < 0 ||
        cl_json_get_str(body, "content", &c, &e) < 0) {
        TEXT(resp, 400, "BAD REQUEST");
        return;
    }
    struct cl_ttrpc_client *cl = aa_client(r, &e);
    int result = 0;
    if (!cl || cl_aa_client_extend(cl, d, o, c, &result, &e) < 0) {
        backend_error(resp, &e, __FILE__, __LINE__);
    } else {
        const char *msg = result == CL_AA_EXTEND_NOT_SUPPORTED ? "NOT_SUPPORTED"
                          : result == CL_AA_EXTEND_NOT_ENABLED ? "NOT_ENABLED"
                                                               : NULL;
        CL_AUTO(json_t) *j = msg ? json_pack("{s:s, s:s}", "success", "false", "message", msg)
                                 : json_pack("{s:s}", "success", "true");
        CL_AUTO(cl_str) *t = j ? cl_json_compact(j) : NULL;
        if (t)
            cl_http_reply(resp, 200, "application/json", t, strlen(t));
        else
            TEXT(resp, 500, "out of memory");
    }
    cl_ttrpc_client_free(cl);
}

static void h_info(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct rest *r = ctx;
    if (!gate(r, req, resp, "GET", true, ""))
        return;
    CL_AUTO(json_t) *j = json_pack("{s:s}", "version", REST_VERSION);
    if (r->attestation) {
        struct cl_err e = {0};
        struct cl_ttrpc_client *c = aa_client(r, &e);
        cl_str *tee = NULL;
        if (c && cl_aa_client_get_tee(c, &tee, &e) == 0) {
            json_object_set_new(j, "tee", json_string(tee));
            json_object_set_new(j, "additional_tees", json_array());
        }
        free(tee);
        cl_ttrpc_client_free(c);
    }
    json_object_set_new(j, "feature", json_string(r->features));
    CL_AUTO(cl_str) *t = cl_json_compact(j);
    if (t)
        cl_http_reply(resp, 200, "application/json", t, strlen(t));
    else
        TEXT(resp, 500, "out of memory");
}

static void h_fallback(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    if (!loopback(req->peer))
        TEXT(resp, 403, "Forbidden");
    else
        TEXT(resp, 404, "URL NOT FOUND");
}

static const struct cl_http_route routes[] = {
    {"*", "/cdh/resource/*", h_resource},
    {"*", "/aa/token", h_token},
    {"*", "/aa/evidence", h_evidence},
    {"*", "/aa/additional-evidence", h_additional},
    {"*", "/aa/aael", h_aael},
    {"*", "/info", h_info},
};

struct cl_http_server *cl_cdh_rest_start(struct cl_cdh *cdh, const char *address,
                                         const char *features, struct cl_err *err)
{
    struct rest *r = &g_rest_slot;
    const char *f = features ? features : "resource";
    r->cdh = cdh;
    r->resource = strcmp(f, "resource") == 0 || strcmp(f, "all") == 0;
    r->attestation = strcmp(f, "attestation") == 0 || strcmp(f, "all") == 0;
    snprintf(r->features, sizeof r->features, "%s", f);
    if (!r->resource && !r->attestation) {
        cl_err_set(err, CL_EINVAL, "REST features '%.32s' is not resource, attestation or all", f);
        return NULL;
    }
    const char *socks[] = {address};
    /* microhttpd (and GnuTLS behind it) is loaded at the first connection: most guests never
     * call the bridge, and an idle hub should not carry them */
    struct cl_http_server_opts o = {
        .sockets = socks, .nsockets = 1, .max_body = 65536, .threads = 2, .lazy_start = true};
    return cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), h_fallback, r, err);
}
