/* SPDX-License-Identifier: Apache-2.0 */
/* Token keys from files and https (jwks.c): trusted_jwk_sets sources, https public_key_uri. */
#ifndef CL_KBS_JWKS_H
#define CL_KBS_JWKS_H

#include "base/base.h"
#include "crypto/crypto.h"

#include <jansson.h>

#define CL_KBS_JWKS_MAX_BYTES (256 * 1024) /* a JWKS, discovery document or PEM key */
#define CL_KBS_JWKS_MAX_KEYS 64            /* keys in one JWKS */
#define CL_KBS_JWKS_TIMEOUT_MS 10000       /* one fetch */
#define CL_KBS_JWKS_REFRESH_MIN_S 30       /* between reloads for an unknown kid */

/* Whether this process may fetch keys over https (default off, so that a parser under test or
 * a fuzzer never reaches the network; cloister-kbs turns it on). Off: https sources fail with
 * EUNSUPPORTED naming the key. */
void cl_kbs_jwks_allow_fetch(bool on);

/* Appends the keys of JWKS text (each with a string kid and a usable key) to all. */
int cl_kbs_jwks_add(const char *what, const void *text, size_t n, json_t *all, struct cl_err *err);
/* One trusted_jwk_sets entry: a path, file:// URL, or https:// URL (a JWKS, or an OpenID
 * issuer: /.well-known/openid-configuration → jwks_uri); its keys are appended to all. */
int cl_kbs_jwks_source(const char *what, const char *uri, json_t *all, struct cl_err *err);
/* A PEM public key served at an https:// URL (identity providers' public_key_uri). */
cl_pkey *cl_kbs_fetch_pem_key(const char *what, const char *url, struct cl_err *err);

#endif
