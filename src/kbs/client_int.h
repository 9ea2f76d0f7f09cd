/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the KBS client's two objects (client.c, resource.c). Not a public header. */
#ifndef CL_KBS_CLIENT_INT_H
#define CL_KBS_CLIENT_INT_H

#include "kbs/kbs_client.h"
#include "net/http.h"

/* A handshake's session: the cookie jar of the KBS that attested, the TEE key. */
struct cl_kbs_rcar {
    const struct cl_kbs_client_opts *o;
    cl_str *ca_path;     /* private copy of o->ca_pem, removed at close */
    const char *ca_file; /* ca_path or o->ca_file */
    struct cl_http_client *http;
    cl_pkey *key;
    json_t *jwk;
};

/* Runs the handshake (with its retries) and leaves the session open in *c (close it in every
 * case); *token new on success. */
CL_MUST_CHECK int cl_kbs_rcar_open(struct cl_kbs_rcar *c, const struct cl_kbs_client_opts *o,
                                   cl_str **token, struct cl_err *err);
void cl_kbs_rcar_close(struct cl_kbs_rcar *c);
/* An HTTP client with the session's trust anchors, timeout and reply cap. */
struct cl_http_client *cl_kbs_rcar_http(const struct cl_kbs_rcar *c, bool cookies,
                                        struct cl_err *err);
/* A non-200 reply as an error carrying the ErrorInformation type and detail (stage = step). */
int cl_kbs_server_error(const char *step, const struct cl_http_result *r, struct cl_err *err);
/* Prints one step to stderr when o->verbose. */
void cl_kbs_say(const struct cl_kbs_client_opts *o, const char *fmt, ...) CL_PRINTF(2, 3);

#endif
