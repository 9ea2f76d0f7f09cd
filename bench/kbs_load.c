/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load generator for cloister-kbs: C concurrent clients each run full handshakes
 * (POST /auth, POST /attest with sample evidence bound to a TEE key made for that
 * handshake, GET resource, JWE opened) for D seconds. Prints handshakes/s, latency p50/p99 and,
 * given the server's pid, the server CPU time per handshake (from /proc/PID/stat).
 *
 * usage: kbs_load URL RESOURCE_PATH CLIENTS SECONDS [SERVER_PID]
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "as/as.h"
#include "kbs/kbs.h"
#include "net/http.h"
#include "tee/tee.h"

#define MAX_SAMPLES 2000000

static const char *g_url, *g_path;
static double g_seconds;
static uint64_t *g_lat;
static size_t g_nlat;
static unsigned long g_errors;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static int post(struct cl_http_client *c, const char *path, const char *body,
                struct cl_http_result *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", g_url, path);
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct cl_err e = {0};
    return cl_http_request(c, "POST", url, hdrs, body, strlen(body), r, &e);
}

static int handshake(struct cl_http_client *c, cl_pkey *key, json_t *jwk)
{
    struct cl_http_result r = {0};
    struct cl_err e = {0};
    int ok = -1;
    if (post(c, "/kbs/v0/auth", "{\"version\":\"0.4.0\",\"tee\":\"sample\",\"extra-params\":\"\"}",
             &r) < 0 ||
        r.status != 200)
        goto out;
    json_t *ch = cl_json_parse((const char *)r.body, r.body_len, 8, &e);
    const char *nonce = json_string_value(json_object_get(ch, "nonce"));
    json_t *rd = json_pack("{s:s, s:s, s:O}", "additional-evidence", "", "nonce",
                           nonce ? nonce : "", "tee-pubkey", jwk);
    uint8_t d[CL_HASH_MAX];
    size_t dl = 0;
    json_t *ev = NULL, *att = NULL;
    char *text = NULL;
    if (rd && cl_as_runtime_digest(rd, CL_HASH_SHA384, d, &dl, &e) == 0 &&
        (ev = cl_tee_sample_evidence("sample", d, dl, &e)) &&
        (att =
             json_pack("{s:{s:s, s:O}, s:{s:O, s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey",
                       jwk, "tee-evidence", "primary_evidence", ev, "additional_evidence", "")))
        text = cl_json_compact(att);
    json_decref(ch);
    json_decref(rd);
    json_decref(ev);
    json_decref(att);
    cl_http_result_clear(&r);
    if (!text || post(c, "/kbs/v0/attest", text, &r) < 0 || r.status != 200) {
        free(text);
        goto out;
    }
    free(text);
    cl_http_result_clear(&r);
    char url[512];
    snprintf(url, sizeof url, "%s/kbs/v0/resource/%s", g_url, g_path);
    if (cl_http_request(c, "GET", url, NULL, NULL, 0, &r, &e) < 0 || r.status != 200)
        goto out;
    json_t *jwe = cl_json_parse((const char *)r.body, r.body_len, 8, &e);
    struct cl_secret *s = jwe ? cl_jwe_decrypt(jwe, key, &e) : NULL;
    ok = s ? 0 : -1;
    cl_secret_free(s);
    json_decref(jwe);
out:
    cl_http_result_clear(&r);
    return ok;
}

static void *worker(void *arg)
{
    (void)arg;
    struct cl_err e = {0};
    struct cl_http_client_opts o = {.cookies = true};
    struct cl_http_client *c = cl_http_client_new(&o, &e);
    uint64_t end = cl_now_mono_ns() + (uint64_t)(g_seconds * 1e9);
    while (c && cl_now_mono_ns() < end) {
        /* a fresh TEE key for every handshake, as a new guest brings: no server-side cache of
         * parsed keys can make the figure look better than a real fleet would */
        cl_pkey *key = cl_pkey_generate("P-256", &e);
        json_t *jwk = key ? cl_jwk_from_pkey(key, false, "ECDH-ES+A256KW", &e) : NULL;
        uint64_t t0 = cl_now_mono_ns();
        int rc = jwk ? handshake(c, key, jwk) : -1;
        uint64_t dt = cl_now_mono_ns() - t0;
        json_decref(jwk);
        EVP_PKEY_free(key);
        pthread_mutex_lock(&g_lock);
        if (rc < 0)
            g_errors++;
        else if (g_nlat < MAX_SAMPLES)
            g_lat[g_nlat++] = dt;
        pthread_mutex_unlock(&g_lock);
    }
    cl_http_client_free(c);
    return NULL;
}

/* user and system CPU seconds of process PID; -1 when unreadable */
static int cpu_seconds(long pid, double *user, double *sys)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after ") " : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    *user = (double)ut / (double)sysconf(_SC_CLK_TCK);
    *sys = (double)st / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: kbs_load URL RESOURCE_PATH CLIENTS SECONDS [SERVER_PID]\n");
        return 2;
    }
    g_url = argv[1];
    g_path = argv[2];
    int clients = atoi(argv[3]);
    g_seconds = atof(argv[4]);
    long pid = argc > 5 ? atol(argv[5]) : 0;
    if (clients < 1 || clients > 256 || g_seconds <= 0)
        return 2;
    cl_log_set_level(CL_LOG_ERROR);
    g_lat = calloc(MAX_SAMPLES, sizeof *g_lat);
    pthread_t th[256];
    double u0 = 0, s0 = 0, u1 = 0, s1 = 0;
    if (pid && cpu_seconds(pid, &u0, &s0) < 0)
        pid = 0;
    uint64_t t0 = cl_now_mono_ns();
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    double wall = (double)(cl_now_mono_ns() - t0) / 1e9;
    if (pid && cpu_seconds(pid, &u1, &s1) < 0)
        pid = 0;
    qsort(g_lat, g_nlat, sizeof *g_lat, cmp_u64);
    double p50 = g_nlat ? (double)g_lat[g_nlat / 2] / 1e6 : 0;
    double p99 = g_nlat ? (double)g_lat[(size_t)((double)g_nlat * 0.99)] / 1e6 : 0;
    printf("clients=%d seconds=%.1f handshakes=%zu errors=%lu rate=%.1f/s p50_ms=%.3f p99_ms=%.3f",
           clients, wall, g_nlat, g_errors, (double)g_nlat / wall, p50, p99);
    if (pid && g_nlat)
        printf(" server_cpu_us_per_handshake=%.1f server_user_us=%.1f server_sys_us=%.1f",
               (u1 - u0 + s1 - s0) * 1e6 / (double)g_nlat, (u1 - u0) * 1e6 / (double)g_nlat,
               (s1 - s0) * 1e6 / (double)g_nlat);
    printf("\n");
    free(g_lat);
    return g_errors ? 1 : 0;
}
