/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy evaluation time per request, as the KBS pays it: the attestation policy
 * (cl_as_appraise on the sample TEE's annotated evidence, built-in default_cpu with
 * reference values registered) and the resource policy (policies/resource/default.rego,
 * prepared data.policy.allow with the request data as an overlay) on a real EAR token's
 * claims. Prints median and p99 per evaluation.
 *
 * usage: policy_bench SRC_DIR [ITERATIONS]
 */
#include <stdio.h>
#include <string.h>

#include "as/as_internal.h"
#include "rego/rego.h"
#include "tee/tee.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof *ns, cmp_u64);
    printf("%-40s n=%zu p50=%.2f us p99=%.2f us\n", what, n, (double)ns[n / 2] / 1e3,
           (double)ns[(size_t)((double)n * 0.99)] / 1e3);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: policy_bench SRC_DIR [ITERATIONS]\n");
        return 2;
    }
    size_t iters = argc > 2 ? (size_t)atol(argv[2]) : 20000;
    cl_log_set_level(CL_LOG_ERROR);
    struct cl_err e = {0};
    struct cl_store *store = cl_store_open("Memory", NULL, &e);
    struct cl_as_opts o = {.store = store, .allow_sample_insecure = true};
    struct cl_as *as = store ? cl_as_new(&o, &e) : NULL;
    if (!as) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    json_t *rv = json_pack("{s:[s], s:[s], s:i, s:i}", "launch_digest", "abcde", "svn", "1",
                           "major_version", 1, "minimum_minor_version", 4);
    if (cl_as_rv_register(as, rv, &e) < 0)
        return 1;
    json_decref(rv);
    /* a real token: evaluate the sample TEE once */
    json_t *rd = json_pack("{s:s, s:{s:s}, s:s}", "nonce", "n", "tee-pubkey", "kty", "EC",
                           "additional-evidence", "");
    uint8_t d[CL_HASH_MAX];
    size_t dl = 0;
    if (cl_as_runtime_digest(rd, CL_HASH_SHA384, d, &dl, &e) < 0)
        return 1;
    json_t *ev = cl_tee_sample_evidence("sample", d, dl, &e);
    struct cl_as_item it = {"sample", ev, rd, CL_HASH_SHA384, NULL, 0};
    cl_str *token = NULL;
    if (cl_as_evaluate(as, &it, 1, "default", &token, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    struct cl_jws jws = {0};
    if (cl_jws_parse(token, strlen(token), &jws, &e) < 0)
        return 1;
    json_t *claims = cl_json_parse((const char *)jws.payload, jws.payload_len, 64, &e);
    json_t *annotated = cl_json_pointer(claims, "/submods/cpu0/ear.veraison.annotated-evidence");
    uint64_t *ns = calloc(iters, sizeof *ns);

    for (size_t i = 0; i < iters; i++) {
        json_t *vec = NULL, *ext = NULL;
        uint64_t t0 = cl_now_mono_ns();
        int rc = cl_as_appraise(as, "default", "cpu", annotated, &vec, &ext, &e);
        ns[i] = cl_now_mono_ns() - t0;
        if (rc < 0 || strcmp(cl_as_ear_status(vec), "affirming") != 0) {
            fprintf(stderr, "appraisal: %s\n", e.msg);
            return 1;
        }
        json_decref(vec);
        json_decref(ext);
    }
    report("attestation policy (default_cpu, sample)", ns, iters);

    char path[4096];
    snprintf(path, sizeof path, "%s/policies/resource/default.rego", argv[1]);
    size_t n = 0;
    cl_bytes *text = cl_file_read(path, 1 << 20, &n, &e);
    struct cl_rego *eng = cl_rego_new(NULL);
    if (!text || cl_rego_add_module(eng, "default.rego", (const char *)text, n, false, &e) < 0 ||
        cl_rego_compile(eng, &e) < 0)
        return 1;
    struct cl_rego_query *q = cl_rego_prepare(eng, "data.policy.allow", &e);
    json_t *data =
        json_pack("{s:s, s:[s,s,s], s:{}, s:{s:b}}", "plugin", "resource", "resource-path",
                  "default", "key", "one", "query", "settings", "allow_sample_tee_insecure", 1);
    for (size_t i = 0; q && i < iters; i++) {
        uint64_t t0 = cl_now_mono_ns();
        json_t *v = cl_rego_query_eval(q, claims, data, &e);
        ns[i] = cl_now_mono_ns() - t0;
        if (!json_is_true(v)) {
            fprintf(stderr, "resource policy did not allow: %s\n", e.msg);
            return 1;
        }
        json_decref(v);
    }
    report("resource policy (default.rego)", ns, iters);
    cl_rego_query_free(q);
    cl_rego_free(eng);
    free(text);
    json_decref(data);
    free(ns);
    json_decref(claims);
    cl_jws_clear(&jws);
    free(token);
    json_decref(ev);
    json_decref(rd);
    cl_as_free(as);
    cl_store_close(store);
    return 0;
}
