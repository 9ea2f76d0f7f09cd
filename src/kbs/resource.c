/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KBS client's resource step: after the handshake (client.c), GET
 * /kbs/v0/resource/<repo>/<type>/<tag> with the session cookie, or in passport mode with the
 * token as Bearer, and open the JWE with the TEE private key. What `cloister kbs` and the
 * tests use; the attestation agent hands its token out instead and does not link this object.
 */
#include "kbs/client_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void say_token(const struct cl_kbs_client_opts *o, const char *t)
{
    if (!o->verbose)
        return;
    /* like the guest client, read the payload without verifying it */
    struct cl_jws jws = {0};
    struct cl_err je = {0};
    const char *status = "?";
    CL_AUTO(json_t) *claims = NULL;
    if (cl_jws_parse(t, strlen(t), &jws, &je) == 0 &&
        (claims =
             cl_json_parse((const char *)jws.payload, jws.payload_len, CL_JSON_MAX_DEPTH, &je)))
        status = json_string_value(cl_json_pointer(claims, "/submods/cpu0/ear.status"));
    cl_kbs_say(o, "      attestation token received (%zu bytes, EAR / ES256): cpu0 appraisal '%s'",
               strlen(t), status ? status : "?");
    cl_jws_clear(&jws);
}

int cl_kbs_client_attest(const struct cl_kbs_client_opts *opts, cl_str **token, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_kbs_rcar c;
    int rc = cl_kbs_rcar_open(&c, opts, token, err);
    if (rc == 0)
        say_token(opts, *token);
    cl_kbs_rcar_close(&c);
    return rc;
}

int cl_kbs_client_get_sealed(struct cl_http_client *h, const char *url, const char *token,
                             cl_pkey *key, size_t max, const char *what, long *status,
                             struct cl_secret **out, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    *out = NULL;
    *status = 0;
    CL_AUTO(cl_str) *bearer = token ? cl_strdupf("Authorization: Bearer %s", token) : NULL;
    if (token && !bearer)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    const char *hdrs[] = {bearer, NULL};
    struct cl_http_result r = {0};
    int rc = cl_http_request(h, "GET", url, bearer ? hdrs : NULL, NULL, 0, &r, err);
    if (bearer)
        explicit_bzero(bearer, strlen(bearer));
    if (rc < 0)
        return rc;
    *status = r.status;
    if (r.status != 200) {
        rc = cl_kbs_server_error(what, &r, err);
        cl_http_result_clear(&r);
        return rc;
    }
    CL_AUTO(json_t) *jwe = cl_json_parse((const char *)r.body, r.body_len, 8, err);
    cl_http_result_clear(&r);
    if (!jwe)
        return cl_err_prefix(err, "%s: KBS reply", what);
    *out = cl_jwe_decrypt(jwe, key, err);
    if (!*out)
        return cl_err_prefix(err, "%s: opening the sealed resource", what);
    if ((*out)->len > max) {
        size_t n = (*out)->len;
        cl_secret_free(*out);
        *out = NULL;
        return cl_err_stage(err, CL_ELIMIT, what, "%s: the resource has %zu bytes, more than %zu",
                            what, n, max);
    }
    return 0;
}

int cl_kbs_client_get_resource(const struct cl_kbs_client_opts *opts, const char *path,
                               struct cl_secret **out, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!cl_kbs_resource_path_valid(path))
        return cl_err_set(err, CL_EINVAL, "resource path '%.200s' is not <repo>/<type>/<tag>",
                          path);
    struct cl_kbs_rcar c;
    CL_AUTO(cl_str) *token = NULL;
    int rc = cl_kbs_rcar_open(&c, opts, &token, err);
    if (rc == 0) {
        say_token(opts, token);
        /* passport: the token as Bearer from a fresh client, so that no cookie of the
         * attestation KBS reaches the resource KBS; otherwise the session's cookie */
        bool passport = opts->attest_url != NULL;
        CL_AUTO(cl_str) *url = cl_strdupf("%s/kbs/v0/resource/%s", opts->url, path);
        cl_kbs_say(opts, "[3/3] resource: GET %s from %s with %s", path, opts->url,
                   passport ? "the token as Authorization: Bearer (passport)"
                            : "the session cookie");
        struct cl_http_client *rh = passport ? cl_kbs_rcar_http(&c, false, err) : c.http;
        long status = 0;
        rc = !url  ? cl_err_set(err, CL_ENOMEM, "out of memory")
             : !rh ? err->code
                   : cl_kbs_client_get_sealed(rh, url, passport ? token : NULL, c.key, SIZE_MAX,
                                              "resource", &status, out, err);
        if (rh && rh != c.http)
            cl_http_client_free(rh);
        if (rc == 0)
            cl_kbs_say(opts, "      JWE opened with the TEE private key: %zu bytes", (*out)->len);
    }
    cl_kbs_rcar_close(&c);
    return rc;
}

static bool segment_ok(const char *s, size_t n)
{
    if (n == 0 || n > CL_KBS_MAX_PATH_SEGMENT || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (c == '.' && i > 0);
        if (!ok)
            return false;
    }
    return true;
}

bool cl_kbs_resource_path_valid(const char *path)
{
    const char *p = path;
    for (int seg = 0; seg < 3; seg++) {
        size_t n = strcspn(p, "/");
        if (!segment_ok(p, n))
            return false;
        p += n;
        if (seg < 2) {
            if (*p != '/')
                return false;
            p++;
        }
    }
    return *p == '\0';
}
