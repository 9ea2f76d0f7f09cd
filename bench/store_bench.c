/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Redis store as the KBS uses it, one client: a store opened with type "Redis" and a url
 * (redis:// or rediss://; the TLS files come from CLOISTER_REDIS_CA_FILE, _CERT_FILE and
 * _KEY_FILE, as the KBS reads them), then N sequential cl_store_set (overwrite) followed by N
 * cl_store_get of one key holding SIZE bytes, each timed alone; or, with "connect", N fresh
 * stores: cl_store_open_opts + the first cl_store_get timed, then cl_store_close (the whole
 * cycle is also reported, as a reconnecting client pays it). One line per measure, key=value,
 * for bench/store_redis.sh, which runs redis-benchmark with the same shape beside it.
 *
 * usage: store_bench URL SIZE N    (SET then GET, SIZE bytes, after N/10 untimed of each)
 *        store_bench URL connect N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define SB_NS "bench"
#define SB_KEY "key"

static struct cl_store_opts opts(const char *url)
{
    const char *ca = getenv("CLOISTER_REDIS_CA_FILE"), *cert = getenv("CLOISTER_REDIS_CERT_FILE"),
               *key = getenv("CLOISTER_REDIS_KEY_FILE");
    return (struct cl_store_opts){
        .type = "Redis",
        .redis_url = url,
        .redis_ca_file = ca && *ca ? ca : NULL,
        .redis_cert_file = cert && *cert ? cert : NULL,
        .redis_key_file = key && *key ? key : NULL,
    };
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts ns[n] and prints p50, p99 and ops/s over the sum of the timed operations. */
static void report(const char *what, size_t size, uint64_t *ns, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ns[i];
    qsort(ns, n, sizeof *ns, cmp_u64);
    printf("%s size=%zu n=%zu p50_us=%.1f p99_us=%.1f ops_s=%.0f\n", what, size, n,
           (double)ns[n / 2] / 1e3, (double)ns[n * 99 / 100] / 1e3, (double)n * 1e9 / (double)sum);
}

static int get_one(struct cl_store *s, size_t want, struct cl_err *e)
{
    size_t len = 0;
    cl_bytes *v = cl_store_get(s, SB_NS, SB_KEY, &len, e);
    if (!v)
        return -1;
    free(v);
    if (len != want) {
        fprintf(stderr, "store_bench: GET returned %zu bytes, %zu expected\n", len, want);
        return -1;
    }
    return 0;
}

static int bench_ops(const char *url, size_t size, size_t n)
{
    struct cl_err e = {0};
    struct cl_store_opts o = opts(url);
    struct cl_store *s = cl_store_open_opts(&o, &e);
    uint8_t *val = malloc(size);
    uint64_t *ns = calloc(n, sizeof *ns);
    int rc = 1;
    if (!s || !val || !ns)
        goto out;
    for (size_t i = 0; i < size; i++)
        val[i] = (uint8_t)('a' + i % 26);
    size_t warm = n / 10 + 1;
    for (size_t i = 0; i < warm + n; i++) {
        uint64_t t0 = cl_now_mono_ns();
        if (cl_store_set(s, SB_NS, SB_KEY, val, size, true, &e) < 0)
            goto out;
        if (i >= warm)
            ns[i - warm] = cl_now_mono_ns() - t0;
    }
    report("set", size, ns, n);
    for (size_t i = 0; i < warm + n; i++) {
        uint64_t t0 = cl_now_mono_ns();
        if (get_one(s, size, &e) < 0)
            goto out;
        if (i >= warm)
            ns[i - warm] = cl_now_mono_ns() - t0;
    }
    report("get", size, ns, n);
    rc = 0;
out:
    if (rc && e.msg[0])
        fprintf(stderr, "store_bench: %s\n", e.msg);
    if (s)
        cl_store_close(s);
    free(val);
    free(ns);
    return rc;
}

/* A fresh store each time: the url parsed, the TLS files loaded (rediss://), one connection
 * made (TCP; for rediss:// the handshake, the relay thread and a PING), then the first GET. */
static int bench_connect(const char *url, size_t n)
{
    struct cl_err e = {0};
    struct cl_store_opts o = opts(url);
    o.pool_size = 1;
    uint64_t *ns = calloc(n, sizeof *ns), cycle = 0;
    if (!ns)
        return 1;
    struct cl_store *s = cl_store_open_opts(&o, &e); /* the value the GETs read */
    static const char small[32] = "0123456789abcdef0123456789abcdef";
    if (!s || cl_store_set(s, SB_NS, SB_KEY, small, sizeof small, true, &e) < 0)
        goto fail;
    cl_store_close(s);
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = cl_now_mono_ns();
        s = cl_store_open_opts(&o, &e);
        if (!s || get_one(s, sizeof small, &e) < 0)
            goto fail;
        ns[i] = cl_now_mono_ns() - t0;
        cl_store_close(s);
        cycle += cl_now_mono_ns() - t0;
    }
    report("connect", sizeof small, ns, n);
    printf("connect_cycle n=%zu mean_us=%.1f\n", n, (double)cycle / (double)n / 1e3);
    free(ns);
    return 0;
fail:
    if (e.msg[0])
        fprintf(stderr, "store_bench: %s\n", e.msg);
    if (s)
        cl_store_close(s);
    free(ns);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4 || atol(argv[3]) <= 0) {
        fprintf(stderr, "usage: store_bench URL SIZE N | store_bench URL connect N\n");
        return 2;
    }
    cl_log_set_level(CL_LOG_ERROR);
    size_t n = (size_t)atol(argv[3]);
    if (strcmp(argv[2], "connect") == 0)
        return bench_connect(argv[1], n);
    long size = atol(argv[2]);
    if (size <= 0 || (unsigned long)size > CL_STORE_MAX_VALUE) {
        fprintf(stderr, "store_bench: SIZE must be 1..%u\n", CL_STORE_MAX_VALUE);
        return 2;
    }
    return bench_ops(argv[1], (size_t)size, n);
}
