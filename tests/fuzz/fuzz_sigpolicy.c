/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: signature policy inputs. The first byte picks the reader: containers-policy
 * JSON (then scope lookups and an evaluation with no signatures, which must never allow an
 * image the policy does not accept for anything), a signature payload checked against a
 * fixed image, registries.d YAML, or an image reference. Nothing may crash; evaluation
 * without signatures allows only through insecureAcceptAnything.
 */
#include <stdio.h>
#include <string.h>

#include "image/image_int.h"

#define DIGEST_REF                                                                                 \
    "a.b.example.com:5000/"                                                                        \
    "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
static const char *const refs[] = {"q.io/ns/app:1", "busybox", DIGEST_REF};

static int no_sigs(void *ctx, const struct cl_image_digest *d, cl_bytes ***sigs, size_t **lens,
                   size_t *n, struct cl_err *err)
{
    (void)ctx;
    (void)d;
    (void)err;
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    return 0;
}

static int no_cosign(void *ctx, const struct cl_image_digest *d, cl_bytes ***p, size_t **l,
                     cl_str ***s, size_t *n, struct cl_err *err)
{
    (void)ctx;
    (void)d;
    (void)err;
    *p = NULL;
    *l = NULL;
    *s = NULL;
    *n = 0;
    return 0;
}

static bool only_accept_anything(const json_t *reqs)
{
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *t = json_string_value(json_object_get(r, "type"));
        if (!t || strcmp(t, "insecureAcceptAnything") != 0)
            return false;
    }
    return json_array_size(reqs) > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    cl_log_set_level(CL_LOG_ERROR);
    const char *txt = (const char *)data + 1;
    size_t len = size - 1;
    struct cl_image_digest md;
    if (cl_image_digest_of(CL_HASH_SHA256, "m", 1, &md, NULL) < 0)
        abort();
    switch (data[0] % 4) {
    case 0: {
        struct cl_image_policy *p = cl_image_policy_parse(txt, len, NULL);
        for (size_t i = 0; p && i < CL_ARRAY_LEN(refs); i++) {
            struct cl_image_ref r;
            if (cl_image_ref_parse(refs[i], &r, NULL) < 0)
                abort();
            const char *scope = NULL;
            const json_t *reqs = cl_image_policy_scope(p, &r, &scope);
            struct cl_image_sigsrc src = {.ref = &r,
                                          .manifest_digest = &md,
                                          .simple_sigs = no_sigs,
                                          .cosign_sigs = no_cosign};
            struct cl_err e = {0};
            int rc = cl_image_policy_check(p, &src, &e);
            if (rc == 0 && !only_accept_anything(reqs)) {
                fprintf(stderr, "allowed without signatures by scope %s\n", scope ? scope : "?");
                abort();
            }
            cl_image_ref_clear(&r);
        }
        cl_image_policy_free(p);
        break;
    }
    case 1: {
        struct cl_image_ref r;
        if (cl_image_ref_parse("q.io/ns/app:1", &r, NULL) < 0)
            abort();
        struct cl_image_sigsrc src = {.ref = &r, .manifest_digest = &md};
        static const char *const ids[] = {
            NULL, "{\"type\":\"matchExact\"}", "{\"type\":\"matchRepository\"}",
            "{\"type\":\"remapIdentity\",\"prefix\":\"q.io\",\"signedPrefix\":\"r.io\"}"};
        for (size_t i = 0; i < CL_ARRAY_LEN(ids); i++) {
            json_t *sid = ids[i] ? json_loads(ids[i], 0, NULL) : NULL;
            int rc =
                cl_image_sig_payload_check((const uint8_t *)txt, len, "atomic container signature",
                                           &src, sid, "matchRepoDigestOrExact", NULL);
            if (rc == 0 && !memmem(txt, len, md.hex, strlen(md.hex))) {
                fprintf(stderr, "payload accepted without naming the digest\n");
                abort();
            }
            json_decref(sid);
        }
        cl_image_ref_clear(&r);
        break;
    }
    case 2: {
        struct cl_image_lookaside *l = cl_image_lookaside_parse(txt, len, NULL);
        for (size_t i = 0; l && i < CL_ARRAY_LEN(refs); i++) {
            struct cl_image_ref r;
            if (cl_image_ref_parse(refs[i], &r, NULL) < 0)
                abort();
            bool ss = false;
            free(cl_image_lookaside_url(l, &r, &ss));
            cl_image_ref_clear(&r);
        }
        cl_image_lookaside_free(l);
        break;
    }
    default: {
        char *s = malloc(len + 1); /* the input is not NUL-terminated */
        if (s) {
            memcpy(s, txt, len);
            s[len] = 0;
        }
        struct cl_image_ref r;
        if (s && cl_image_ref_parse(s, &r, NULL) == 0) {
            cl_str *again = cl_image_ref_string(&r);
            struct cl_image_ref r2;
            if (!again || cl_image_ref_parse(again, &r2, NULL) < 0 ||
                strcmp(r.registry, r2.registry) != 0 || strcmp(r.repository, r2.repository) != 0) {
                fprintf(stderr, "reference does not round-trip: %s\n", s);
                abort();
            }
            cl_image_ref_clear(&r2);
            free(again);
            cl_image_ref_clear(&r);
        }
        free(s);
        break;
    }
    }
    return 0;
}
