/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KBS resource-policy decision, timed: input = EAR token claims, data = {plugin,
 * resource-path, query, settings}, query data.policy.allow. Two ways are compared:
 *   with     - the query text carries the request as `with data.x as <json>` (parsed and
 *              compiled per request: what the KBS did first);
 *   prepared - the query compiled once (cl_rego_prepare) and the request passed as a data
 *              overlay (cl_rego_query_eval).
 * Prints samples, ns/op and p50/p99 for each, and the prepared decision from 2 threads.
 *
 * usage: rego_bench [POLICY.rego] [ITERATIONS]   (default policies/resource/default.rego)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rego/rego.h"
#include "json/json.h"

static const char *claims_text =
    "{\"eat_profile\":\"tag:github.com,2023:veraison/ear\",\"iat\":1700000000,\"exp\":1700003600,"
    "\"ear.verifier-id\":{\"developer\":\"cloister\",\"build\":\"0.1\"},"
    "\"submods\":{\"cpu0\":{\"ear.status\":\"affirming\","
    "\"ear.trustworthiness-vector\":{\"instance-identity\":2,\"configuration\":2,\"executables\":3,"
    "\"file-system\":0,\"hardware\":2,\"runtime-opaque\":2,\"storage-opaque\":0,\"sourced-data\":0}"
    ","
    "\"ear.veraison.annotated-evidence\":{\"snp\":{\"measurement\":\"3b2c\",\"policy_debug_"
    "allowed\":false,"
    "\"reported_tcb_snp\":21,\"platform_smt_enabled\":true}}}}}";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *lat, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("%-10s samples %zu  ns/op %llu  p50 %llu ns  p99 %llu ns\n", name, n,
           (unsigned long long)(sum / n), (unsigned long long)lat[n / 2],
           (unsigned long long)lat[n * 99 / 100]);
}

struct thr {
    struct cl_rego_query *q;
    json_t *claims, *data;
    size_t iters;
    int bad;
};

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    for (size_t i = 0; i < t->iters; i++) {
        struct cl_err e = {0};
        json_t *v = cl_rego_query_eval(t->q, t->claims, t->data, &e);
        if (!json_is_true(v))
            t->bad++;
        json_decref(v);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "policies/resource/default.rego";
    size_t iters = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
    if (iters < 100)
        iters = 100;
    struct cl_err err = {0};
    size_t len = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, 1u << 20, &len, &err);
    if (!text) {
        fprintf(stderr, "rego_bench: %s\n", err.msg);
        return 1;
    }
    __attribute__((cleanup(cl_auto_cl_rego))) struct cl_rego *e = cl_rego_new(NULL);
    if (!e || cl_rego_add_module(e, path, (const char *)text, len, false, &err) < 0 ||
        cl_rego_compile(e, &err) < 0) {
        fprintf(stderr, "rego_bench: %s\n", err.msg);
        return 1;
    }
    CL_AUTO(json_t) *claims = cl_json_parse(claims_text, strlen(claims_text), 32, &err);
    CL_AUTO(json_t) *data =
        json_pack("{s:s, s:[s,s,s], s:{}, s:{s:b}}", "plugin", "resource", "resource-path",
                  "default", "key", "one", "query", "settings", "allow_sample_tee_insecure", 0);
    if (!claims || !data) {
        fprintf(stderr, "rego_bench: bad claims\n");
        return 1;
    }
    uint64_t *lat = calloc(iters, sizeof *lat);
    if (!lat)
        return 1;

    /* per-request query text with `with` (parse + compile each time) */
    const char *qtext =
        "data.policy.allow with data.plugin as \"resource\" with data[\"resource-path\"] as "
        "[\"default\",\"key\",\"one\"] with data.query as {} with "
        "data.settings.allow_sample_tee_insecure as false";
    size_t witers = iters / 10;
    for (size_t i = 0; i < witers; i++) {
        uint64_t t0 = now_ns();
        CL_AUTO(json_t) *res = NULL;
        if (cl_rego_eval_query(e, qtext, claims, &res, &err) < 0 ||
            !json_is_true(cl_json_pointer(res, "/0/expressions/0/value"))) {
            fprintf(stderr, "rego_bench: with-query: %s\n", err.msg);
            return 1;
        }
        lat[i] = now_ns() - t0;
    }
    report("with", lat, witers);

    /* prepared query and data overlay */
    __attribute__((cleanup(cl_auto_cl_rego_query))) struct cl_rego_query *q =
        cl_rego_prepare(e, "data.policy.allow", &err);
    if (!q) {
        fprintf(stderr, "rego_bench: prepare: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < iters; i++) {
        uint64_t t0 = now_ns();
        json_t *v = cl_rego_query_eval(q, claims, data, &err);
        uint64_t dt = now_ns() - t0;
        if (!json_is_true(v)) {
            fprintf(stderr, "rego_bench: prepared: not allowed (%s)\n", err.msg);
            return 1;
        }
        json_decref(v);
        lat[i] = dt;
    }
    report("prepared", lat, iters);

    /* the same prepared query from two threads at once */
    struct thr t[2] = {{q, claims, data, iters / 2, 0}, {q, claims, data, iters / 2, 0}};
    pthread_t th[2];
    uint64_t t0 = now_ns();
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, thr_main, &t[i]) != 0)
            return 1;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    uint64_t dt = now_ns() - t0;
    if (t[0].bad || t[1].bad) {
        fprintf(stderr, "rego_bench: threads: wrong decisions\n");
        return 1;
    }
    printf("%-10s %zu decisions on 2 threads in %.1f ms (%.0f decisions/s)\n", "threads", iters,
           (double)dt / 1e6, (double)iters * 1e9 / (double)dt);
    free(lat);
    return 0;
}
