/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /metrics: the Prometheus text of the KBS's counters, under the names and labels of
 * trustee's kbs/docs/metrics.md (kbs_build_info, kbs_http_*, kbs_resource_reads_total and
 * _writes_total by resource_path, kbs_policy_*, kbs_attestation_* with tee_type on successes
 * and failures, kbs_auth_*), followed by Cloister's own names, kept for existing scrapers.
 */
#include "kbs/cl_build_date.h"
#include "kbs/cl_version.h"
#include "kbs/kbs_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tee_type label values: the TEEs with a verifier; anything else counts as "other". */
static const char *const tees[CL_KBS_METRIC_TEES] = {
    "sample",      "sampledevice", "snp", "tdx", "tpm", "az-snp-vtpm",
    "az-tdx-vtpm", "nvidia",       "sgx", "cca", "csv", "other",
};

/* resource_path label values: the first CL_KBS_METRIC_PATHS paths seen; later ones are
 * counted under "other" so that the label set stays bounded. */
static pthread_mutex_t paths_lock = PTHREAD_MUTEX_INITIALIZER;

/* Upper bounds of the duration buckets (seconds; trustee's), matching server.c's ROUTE. */
static const char *const dur[] = {"0.0005", "0.001", "0.005", "0.01", "0.05", "0.5", "1"};

void cl_kbs_metrics_attest(struct cl_kbs *kbs, const char *tee, bool ok)
{
    size_t i = 0;
    while (i < CL_KBS_METRIC_TEES - 1 && strcmp(tees[i], tee) != 0)
        i++;
    struct cl_kbs_metrics *m = &kbs->metrics;
    atomic_fetch_add(ok ? &m->attest_ok : &m->attest_fail, 1);
    atomic_fetch_add(ok ? &m->attest_ok_tee[i] : &m->attest_fail_tee[i], 1);
}

void cl_kbs_metrics_resource(struct cl_kbs *kbs, const char *path, bool write)
{
    struct cl_kbs_metrics *m = &kbs->metrics;
    pthread_mutex_lock(&paths_lock);
    size_t i = 0;
    while (i < m->npaths && strcmp(m->paths[i].path, path) != 0)
        i++;
    if (i == m->npaths && i < CL_KBS_METRIC_PATHS && strlen(path) < sizeof m->paths[i].path)
        snprintf(m->paths[m->npaths++].path, sizeof m->paths[i].path, "%s", path);
    if (i < m->npaths && write)
        m->paths[i].writes++;
    else if (i < m->npaths)
        m->paths[i].reads++;
    else if (write)
        m->other_writes++;
    else
        m->other_reads++;
    pthread_mutex_unlock(&paths_lock);
}

void cl_kbs_metrics_size(atomic_ulong *buckets, atomic_ulong *sum, size_t n)
{
    static const size_t lim[] = {32, 128, 512, 2048, 8192};
    size_t b = 0;
    while (b < CL_ARRAY_LEN(lim) && n > lim[b])
        b++;
    atomic_fetch_add(&buckets[b], 1);
    atomic_fetch_add(sum, n);
}

static void counter(FILE *f, const char *name, const char *help, unsigned long v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %lu\n", name, help, name, name, v);
}

/* A histogram from per-bucket (not cumulative) counts; the last bucket is +Inf. */
static void histogram(FILE *f, const char *name, const char *help, const char *const *le,
                      const atomic_ulong *counts, size_t n, double sum)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += atomic_load(&counts[i]);
        fprintf(f, "%s_bucket{le=\"%s\"} %lu\n", name, i + 1 == n ? "+Inf" : le[i], cum);
    }
    fprintf(f, "%s_sum %.6f\n%s_count %lu\n", name, sum, name, cum);
}

static void by_tee(FILE *f, const char *name, const char *help, const atomic_ulong *v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < CL_KBS_METRIC_TEES; i++) {
        unsigned long n = atomic_load(&v[i]);
        if (n)
            fprintf(f, "%s{tee_type=\"%s\"} %lu\n", name, tees[i], n);
    }
}

static void by_path(FILE *f, struct cl_kbs_metrics *m, bool write)
{
    const char *name = write ? "kbs_resource_writes_total" : "kbs_resource_reads_total";
    fprintf(f, "# HELP %s Resource %s operations.\n# TYPE %s counter\n", name,
            write ? "write" : "read", name);
    pthread_mutex_lock(&paths_lock);
    for (size_t i = 0; i < m->npaths; i++) {
        unsigned long n = write ? m->paths[i].writes : m->paths[i].reads;
        if (n)
            fprintf(f, "%s{resource_path=\"%s\"} %lu\n", name, m->paths[i].path, n);
    }
    unsigned long other = write ? m->other_writes : m->other_reads;
    pthread_mutex_unlock(&paths_lock);
    if (other)
        fprintf(f, "%s{resource_path=\"other\"} %lu\n", name, other);
}

/* trustee's names and labels (kbs/docs/metrics.md). */
static void trustee_metrics(FILE *f, struct cl_kbs_metrics *m)
{
    static const char *const sz[] = {"32", "128", "512", "2048", "8192"};
    unsigned long ok = atomic_load(&m->attest_ok), bad = atomic_load(&m->attest_fail);
    unsigned long rel = atomic_load(&m->releases), den = atomic_load(&m->denials);
    unsigned long perr = atomic_load(&m->policy_err);
    fprintf(f,
            "# HELP kbs_build_info KBS build information (value always 1).\n"
            "# TYPE kbs_build_info gauge\n"
            "kbs_build_info{version=\"%s\",git_hash=\"%s\",build_date=\"%s\"} 1\n",
            CL_BUILD_VERSION, CL_BUILD_VERSION, CL_BUILD_DATE);
    counter(f, "kbs_http_requests_total", "HTTP requests to the KBS protocol endpoints.",
            atomic_load(&m->requests));
    histogram(f, "kbs_http_request_duration_seconds", "Request handling duration.", dur,
              m->latency_buckets, 8, (double)atomic_load(&m->latency_us_sum) / 1e6);
    histogram(f, "kbs_http_request_size_bytes", "Request body sizes.", sz, m->req_size, 6,
              (double)atomic_load(&m->req_bytes));
    histogram(f, "kbs_http_response_size_bytes", "Response body sizes.", sz, m->resp_size, 6,
              (double)atomic_load(&m->resp_bytes));
    fprintf(f,
            "# HELP kbs_http_active_connections HTTP requests being processed.\n"
            "# TYPE kbs_http_active_connections gauge\nkbs_http_active_connections %ld\n",
            atomic_load(&m->active));
    by_path(f, m, false);
    by_path(f, m, true);
    counter(f, "kbs_policy_evaluations_total", "Resource policy evaluations.", rel + den);
    counter(f, "kbs_policy_approvals_total", "Requests approved by the resource policy.", rel);
    counter(f, "kbs_policy_violations_total", "Requests denied by the resource policy.",
            den - perr);
    counter(f, "kbs_policy_errors_total", "Errors evaluating the resource policy.", perr);
    counter(f, "kbs_attestation_requests_total", "Attestation requests.",
            ok + bad + atomic_load(&m->attest_err));
    by_tee(f, "kbs_attestation_successes_total", "Successful attestations by TEE type.",
           m->attest_ok_tee);
    by_tee(f, "kbs_attestation_failures_total", "Failed attestations by TEE type.",
           m->attest_fail_tee);
    counter(f, "kbs_attestation_errors_total", "Malformed attestation requests.",
            atomic_load(&m->attest_err));
    counter(f, "kbs_auth_requests_total", "RCAR auth requests.", atomic_load(&m->auth));
    counter(f, "kbs_auth_successes_total", "Successful auth requests.", atomic_load(&m->auth_ok));
    counter(f, "kbs_auth_errors_total", "Auth requests refused.",
            atomic_load(&m->auth) - atomic_load(&m->auth_ok));
}

/* Cloister's own names, kept beside trustee's. */
static void cloister_metrics(FILE *f, struct cl_kbs_metrics *m)
{
    fprintf(f,
            "# HELP kbs_attestations_total Attestation results.\n"
            "# TYPE kbs_attestations_total counter\n"
            "kbs_attestations_total{result=\"success\"} %lu\n"
            "kbs_attestations_total{result=\"failure\"} %lu\n",
            atomic_load(&m->attest_ok), atomic_load(&m->attest_fail));
    counter(f, "kbs_resource_releases_total", "Resources released sealed to a TEE key.",
            atomic_load(&m->releases));
    counter(f, "kbs_policy_denials_total", "Resource requests denied by policy.",
            atomic_load(&m->denials));
    fprintf(f,
            "# HELP kbs_admin_requests_total Admin API requests.\n"
            "# TYPE kbs_admin_requests_total counter\n"
            "kbs_admin_requests_total{result=\"allowed\"} %lu\n"
            "kbs_admin_requests_total{result=\"denied\"} %lu\n",
            atomic_load(&m->admin_ok), atomic_load(&m->admin_denied));
    histogram(f, "kbs_request_duration_seconds", "Handler latency.", dur, m->latency_buckets, 8,
              (double)atomic_load(&m->latency_us_sum) / 1e6);
}

void cl_kbs_metrics_render(struct cl_kbs *kbs, struct cl_http_resp *resp)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        cl_kbs_fail_status(resp, "PrometheusError", 500, "out of memory");
        return;
    }
    trustee_metrics(f, &kbs->metrics);
    cloister_metrics(f, &kbs->metrics);
    if (fclose(f) != 0 || !text) {
        free(text);
        cl_kbs_fail_status(resp, "PrometheusError", 500, "out of memory");
        return;
    }
    cl_http_reply(resp, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}
