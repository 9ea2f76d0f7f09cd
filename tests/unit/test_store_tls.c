/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Redis backend over rediss:// (store_tls.c's relay under hiredis) against a real
 * redis-server started here with both a plaintext and a TLS port, client certificates
 * required, and a CA made with the openssl CLI. Values around the relay's buffer size and of
 * several MiB, several threads over a small pool, a server restart under an open store; then
 * the refusals, each naming its stage: a stranger CA, an address the certificate does not
 * name, no client certificate, a certificate without its key, a CA file that does not exist,
 * TLS files with redis://, TLS to the plaintext port, nobody listening and a listener that
 * never answers (both within the timeout). Skipped when redis-server or openssl is missing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "test_store_util.h"

static char dir[] = "/tmp/cl-store-tls-XXXXXX";
static char ca[96], cert[96], key[96], other_ca[96], other_cert[96], other_key[96];
static unsigned plain_port, tls_port;
static pid_t redis_pid = -1;

CL_PRINTF(1, 2)
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A CA and a stranger CA, a server certificate for DNS:localhost, a client certificate from
 * each. */
static void make_certs(void)
{
    static const char newkey[] = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    for (int i = 0; i < 2; i++) {
        const char *n = i ? "other" : "ca";
        assert_int_equal(sh("openssl req -x509 %s -days 2 -subj /CN=test-%s -keyout %s/%s.key "
                            "-out %s/%s.pem 2>/dev/null",
                            newkey, n, dir, n, dir, n),
                         0);
    }
    static const struct {
        const char *name, *signer, *subject, *ext;
    } certs[] = {
        {"server", "ca", "/CN=localhost", "subjectAltName=DNS:localhost"},
        {"client", "ca", "/CN=kbs", "extendedKeyUsage=clientAuth"},
        {"oclient", "other", "/CN=kbs", "extendedKeyUsage=clientAuth"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(certs); i++) {
        const char *n = certs[i].name, *s = certs[i].signer;
        assert_int_equal(sh("openssl req %s -subj %s -keyout %s/%s.key -out %s/%s.csr 2>/dev/null",
                            newkey, certs[i].subject, dir, n, dir, n),
                         0);
        assert_int_equal(sh("printf '%%s\\n' '%s' > %s/%s.ext && openssl x509 -req -in %s/%s.csr "
                            "-CA %s/%s.pem -CAkey %s/%s.key -CAcreateserial -days 2 -extfile "
                            "%s/%s.ext -out %s/%s.pem 2>/dev/null",
                            certs[i].ext, dir, n, dir, n, dir, s, dir, s, dir, n, dir, n),
                         0);
    }
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client.key", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other.pem", dir);
    snprintf(other_cert, sizeof other_cert, "%s/oclient.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/oclient.key", dir);
}

static struct cl_store_opts tls_opts(char *url, size_t cap, const char *host, unsigned port)
{
    snprintf(url, cap, "rediss://%s:%u", host, port);
    return (struct cl_store_opts){.type = "Redis",
                                  .redis_url = url,
                                  .redis_ca_file = ca,
                                  .redis_cert_file = cert,
                                  .redis_key_file = key,
                                  .timeout_ms = 3000};
}

/* redis-server on plain_port and tls_port; waits until a rediss:// store opens. */
static void redis_run(void)
{
    char p[16], tp[16], c[128], k[128];
    snprintf(p, sizeof p, "%u", plain_port);
    snprintf(tp, sizeof tp, "%u", tls_port);
    snprintf(c, sizeof c, "%s/server.pem", dir);
    snprintf(k, sizeof k, "%s/server.key", dir);
    redis_pid = fork();
    assert_true(redis_pid >= 0);
    if (redis_pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("redis-server", "redis-server", "--port", p, "--tls-port", tp, "--bind", "127.0.0.1",
               "--tls-cert-file", c, "--tls-key-file", k, "--tls-ca-cert-file", ca,
               "--tls-auth-clients", "yes", "--save", "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    char url[64];
    struct cl_store_opts o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.timeout_ms = 500;
    for (int i = 0; i < 100; i++) {
        struct cl_store *s = cl_store_open_opts(&o, NULL);
        if (s) {
            cl_store_close(s);
            return;
        }
        usleep(50000);
    }
    fail_msg("redis-server (TLS) did not come up on %u", tls_port);
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
    }
    redis_pid = -1;
}

static int setup(void **state)
{
    (void)state;
    if (sh("command -v redis-server >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1"))
        return 0; /* each test skips */
    assert_non_null(mkdtemp(dir));
    make_certs();
    plain_port = free_port();
    do /* nothing is bound yet: the kernel may hand the same free port out twice */
        tls_port = free_port();
    while (tls_port == plain_port);
    redis_run();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_stop();
    if (dir[strlen(dir) - 1] != 'X')
        sh("rm -rf %s", dir);
    return 0;
}

static struct cl_store *open_tls(unsigned pool)
{
    if (redis_pid < 0)
        skip();
    char url[64];
    struct cl_store_opts o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.pool_size = pool;
    struct cl_err err = {0};
    struct cl_store *s = cl_store_open_opts(&o, &err);
    if (!s)
        fail_msg("open rediss://: %s", err.msg);
    return s;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 31 + seed + (i >> 9));
    return b;
}

static void roundtrip(struct cl_store *s, const char *k, size_t n, unsigned seed)
{
    struct cl_err err = {0};
    uint8_t *v = pattern(n, seed);
    if (cl_store_set(s, "t_tls", k, v, n, true, &err) < 0)
        fail_msg("set %s (%zu bytes): %s", k, n, err.msg);
    size_t got = 0;
    cl_bytes *r = cl_store_get(s, "t_tls", k, &got, &err);
    if (!r)
        fail_msg("get %s (%zu bytes): %s", k, n, err.msg);
    assert_int_equal(got, n);
    assert_memory_equal(r, v, n);
    free(r);
    free(v);
}

/* ---- values of every size through the relay ---- */

static void test_values(void **state)
{
    (void)state;
    struct cl_store *s = open_tls(2);
    /* around the relay's buffer (16 KiB) and TLS's record (16 KiB), and several MiB */
    static const size_t sizes[] = {1,     100,           16383,           16384,
                                   16385, 3 * 16384 + 7, 1024 * 1024 + 3, 8u << 20};
    for (size_t i = 0; i < CL_ARRAY_LEN(sizes); i++) {
        char k[32];
        snprintf(k, sizeof k, "size/%zu", sizes[i]);
        roundtrip(s, k, sizes[i], (unsigned)i);
    }
    struct cl_err err = {0};
    char **keys = NULL;
    size_t n = 0;
    assert_int_equal(cl_store_list(s, "t_tls", &keys, &n, &err), 0);
    assert_int_equal(n, CL_ARRAY_LEN(sizes));
    cl_store_list_free(keys, n);
    assert_int_equal(cl_store_cas(s, "t_tls", "size/100", "x", 1, "y", 1, &err), CL_EEXISTS);
    for (size_t i = 0; i < CL_ARRAY_LEN(sizes); i++) {
        char k[32];
        snprintf(k, sizeof k, "size/%zu", sizes[i]);
        assert_int_equal(cl_store_delete(s, "t_tls", k, &err), 0);
    }
    cl_store_close(s);
}

/* ---- threads over a pool smaller than they are ---- */

static void *worker(void *arg)
{
    struct cl_store *s = arg;
    for (int i = 0; i < 50; i++) {
        char k[48];
        snprintf(k, sizeof k, "thread/%lu/%d", (unsigned long)pthread_self() % 100000, i);
        roundtrip(s, k, 40000 + (size_t)i, (unsigned)i);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct cl_store *s = open_tls(3);
    pthread_t th[6];
    for (size_t i = 0; i < CL_ARRAY_LEN(th); i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, s), 0);
    for (size_t i = 0; i < CL_ARRAY_LEN(th); i++)
        pthread_join(th[i], NULL);
    cl_store_close(s);
}

/* ---- the server restarts under an open store ---- */

static void test_restart(void **state)
{
    (void)state;
    struct cl_store *s = open_tls(1);
    roundtrip(s, "restart/before", 5000, 1);
    redis_stop();
    redis_run();
    /* the pooled connection is dead: reconnected and the command retried once */
    roundtrip(s, "restart/after", 5000, 2);
    cl_store_close(s);
}

/* ---- refusals ---- */

static void refused(struct cl_store_opts o, int code, const char *says)
{
    struct cl_err err = {0};
    uint64_t t0 = now_ms();
    struct cl_store *s = cl_store_open_opts(&o, &err);
    if (s) {
        cl_store_close(s);
        fail_msg("opened %s; wanted \"%s\"", o.redis_url, says);
    }
    if (err.code != code || !strstr(err.msg, says))
        fail_msg("%s: %s (%s); wanted %s \"%s\"", o.redis_url, err.msg, cl_err_name(err.code),
                 cl_err_name(code), says);
    assert_true(now_ms() - t0 < 2 * o.timeout_ms + 1000);
}

static void test_refusals(void **state)
{
    (void)state;
    if (redis_pid < 0)
        skip();
    char url[64], want[128];
    struct cl_store_opts o;

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.redis_ca_file = other_ca;
    snprintf(want, sizeof want, "Redis TLS: handshake with localhost:%u: certificate verify failed",
             tls_port);
    refused(o, CL_EVERIFY, want);

    o = tls_opts(url, sizeof url, "127.0.0.1", tls_port);
    refused(o, CL_EVERIFY, "certificate verify failed (IP address mismatch)");

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.redis_cert_file = o.redis_key_file = NULL;
    refused(o, CL_EIO, "certificate required");

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.redis_cert_file = other_cert;
    o.redis_key_file = other_key;
    refused(o, CL_EIO, "unknown ca");

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.redis_key_file = other_key;
    refused(o, CL_EINVAL, "key values mismatch");

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.redis_key_file = NULL;
    refused(o, CL_EINVAL, "given without its key");

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    o.redis_ca_file = "/nonexistent/ca.pem";
    refused(o, CL_EINVAL, "CA file /nonexistent/ca.pem");

    o = tls_opts(url, sizeof url, "localhost", tls_port);
    snprintf(url, sizeof url, "redis://localhost:%u", plain_port);
    refused(o, CL_EINVAL, "write rediss://");

    /* TLS to the plaintext port */
    o = tls_opts(url, sizeof url, "localhost", plain_port);
    o.timeout_ms = 1000;
    snprintf(want, sizeof want, "Redis TLS: handshake with localhost:%u: ", plain_port);
    refused(o, CL_EIO, want);

    /* nobody listening */
    unsigned port = free_port();
    o = tls_opts(url, sizeof url, "127.0.0.1", port);
    o.timeout_ms = 500;
    snprintf(want, sizeof want, "Redis TLS: connect 127.0.0.1:%u: ", port);
    refused(o, CL_EIO, want);

    /* a listener that never answers: the handshake's deadline */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    o = tls_opts(url, sizeof url, "127.0.0.1", ntohs(a.sin_port));
    o.timeout_ms = 500;
    refused(o, CL_EIO, "timed out after 500 ms");
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
