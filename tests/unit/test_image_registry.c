/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry client and the whole pull against an in-process registry (Cloister's own HTTP
 * server on an ephemeral port): anonymous, Basic and Bearer auth; manifests by tag and by
 * digest; blobs into memory and into files with resume, retries and the ocicrypt HMAC; then
 * cl_image_pull in both modes, with the policy, platform selection, encrypted layers and the
 * tamper twins (changed blob, wrong diff_id, wrong key, cached image under a new policy).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "net/http.h"
#include "test_image_util.h"

/* ---- the fake registry ---- */

#define MAX_OBJ 32

enum auth_mode { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct obj {
    char key[256]; /* "manifests/<ref>" or "blobs/<digest>" */
    char ctype[128];
    uint8_t *body;
    size_t len;
};

struct fakereg {
    struct cl_http_server *srv;
    uint16_t port;
    char host[64];
    char repo[64];
    enum auth_mode auth;
    pthread_mutex_t mu;
    struct obj objs[MAX_OBJ];
    size_t nobj;
    /* behaviour */
    int fail_blobs; /* answer 500 to this many blob requests */
    bool ignore_range;
    bool bad_dcd; /* a wrong Docker-Content-Digest */
    /* counters */
    int blob_requests, ranged_requests, token_requests, manifest_requests;
};

static void put(struct fakereg *r, const char *key, const char *ctype, const void *body, size_t len)
{
    pthread_mutex_lock(&r->mu);
    struct obj *o = NULL;
    for (size_t i = 0; i < r->nobj; i++)
        if (strcmp(r->objs[i].key, key) == 0)
            o = &r->objs[i];
    if (!o) {
        assert_true(r->nobj < MAX_OBJ);
        o = &r->objs[r->nobj++];
    }
    free(o->body);
    snprintf(o->key, sizeof o->key, "%s", key);
    snprintf(o->ctype, sizeof o->ctype, "%s", ctype);
    o->body = malloc(len ? len : 1);
    memcpy(o->body, body, len);
    o->len = len;
    pthread_mutex_unlock(&r->mu);
}

/* Puts a blob under its digest; returns the digest. */
static struct cl_image_digest put_blob(struct fakereg *r, const void *body, size_t len)
{
    struct cl_image_digest d;
    assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, body, len, &d, NULL), 0);
    char key[256];
    snprintf(key, sizeof key, "blobs/%s", d.str);
    put(r, key, "application/octet-stream", body, len);
    return d;
}

static struct cl_image_digest put_manifest(struct fakereg *r, const char *tag, const char *ctype,
                                           const char *body)
{
    struct cl_image_digest d;
    assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, body, strlen(body), &d, NULL), 0);
    char key[256];
    snprintf(key, sizeof key, "manifests/%s", d.str);
    put(r, key, ctype, body, strlen(body));
    if (tag) {
        snprintf(key, sizeof key, "manifests/%s", tag);
        put(r, key, ctype, body, strlen(body));
    }
    return d;
}

static bool authorized(struct fakereg *r, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    const char *a = cl_http_req_header(req, "Authorization");
    if (r->auth == AUTH_NONE)
        return true;
    if (r->auth == AUTH_BASIC) {
        if (a && strcmp(a, "Basic YWxpY2U6czNjcmV0") == 0) /* alice:s3cret */
            return true;
        cl_http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"fake\"");
    } else {
        if (a && strcmp(a, "Bearer tok-123") == 0)
            return true;
        char ch[256];
        snprintf(
            ch, sizeof ch,
            "Bearer "
            "realm=\"http://127.0.0.1:%u/token\",service=\"fake-svc\",scope=\"repository:%s:pull\"",
            r->port, r->repo);
        cl_http_resp_header(resp, "WWW-Authenticate", ch);
    }
    cl_http_reply(resp, 401, "application/json", "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", 36);
    return false;
}

static void h_token(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct fakereg *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->token_requests++;
    pthread_mutex_unlock(&r->mu);
    const char *svc = cl_http_req_query(req, "service");
    const char *scope = cl_http_req_query(req, "scope");
    char want[128];
    snprintf(want, sizeof want, "repository:%s:pull", r->repo);
    if (!svc || strcmp(svc, "fake-svc") != 0 || !scope || strcmp(scope, want) != 0) {
        cl_http_reply(resp, 400, "text/plain", "bad token request", 17);
        return;
    }
    const char *body = "{\"token\":\"tok-123\",\"expires_in\":300}";
    cl_http_reply(resp, 200, "application/json", body, strlen(body));
}

static void h_v2(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    struct fakereg *r = ctx;
    if (!authorized(r, req, resp))
        return;
    const char *p = req->path + 4; /* after "/v2/" */
    if (!*p) {
        cl_http_reply(resp, 200, "application/json", "{}", 2);
        return;
    }
    size_t rl = strlen(r->repo);
    if (strncmp(p, r->repo, rl) != 0 || p[rl] != '/') {
        cl_http_reply(resp, 404, "application/json", "{\"errors\":[]}", 13);
        return;
    }
    const char *key = p + rl + 1;
    bool blob = strncmp(key, "blobs/", 6) == 0;
    pthread_mutex_lock(&r->mu);
    if (blob)
        r->blob_requests++;
    else
        r->manifest_requests++;
    if (blob && r->fail_blobs > 0) {
        r->fail_blobs--;
        pthread_mutex_unlock(&r->mu);
        cl_http_reply(resp, 500, "text/plain", "flaky", 5);
        return;
    }
    struct obj *o = NULL;
    for (size_t i = 0; i < r->nobj; i++)
        if (strcmp(r->objs[i].key, key) == 0)
            o = &r->objs[i];
    if (!o) {
        pthread_mutex_unlock(&r->mu);
        cl_http_reply(resp, 404, "application/json", "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}", 33);
        return;
    }
    const char *range = cl_http_req_header(req, "Range");
    unsigned long long from = 0;
    if (blob && range && !r->ignore_range && sscanf(range, "bytes=%llu-", &from) == 1 &&
        from < o->len) {
        r->ranged_requests++;
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%zu/%zu", from, o->len - 1, o->len);
        cl_http_resp_header(resp, "Content-Range", cr);
        cl_http_reply(resp, 206, o->ctype, o->body + from, o->len - from);
    } else {
        if (!blob) {
            struct cl_image_digest d;
            assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, o->body, o->len, &d, NULL), 0);
            cl_http_resp_header(
                resp, "Docker-Content-Digest",
                r->bad_dcd
                    ? "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                    : d.str);
        }
        cl_http_reply(resp, 200, o->ctype, o->body, o->len);
    }
    pthread_mutex_unlock(&r->mu);
}

static struct fakereg *reg_start(enum auth_mode auth)
{
    struct fakereg *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->auth = auth;
    snprintf(r->repo, sizeof r->repo, "demo/app");
    static const struct cl_http_route routes[] = {
        {"GET", "/token", h_token},
        {"GET", "/v2/*", h_v2},
    };
    static const char *const sockets[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {
        .sockets = sockets, .nsockets = 1, .threads = 4, .max_body = 1024};
    struct cl_err e = {0};
    r->srv = cl_http_server_start(&o, routes, CL_ARRAY_LEN(routes), NULL, r, &e);
    if (!r->srv)
        fail_msg("server: %s", e.msg);
    r->port = cl_http_server_port(r->srv, 0);
    snprintf(r->host, sizeof r->host, "127.0.0.1:%u", r->port);
    return r;
}

static void reg_stop(struct fakereg *r)
{
    cl_http_server_stop(r->srv);
    for (size_t i = 0; i < r->nobj; i++)
        free(r->objs[i].body);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static struct cl_image_registry *client(struct fakereg *r, const char *user, const char *pass,
                                        unsigned retries)
{
    struct cl_image_endpoint ep = {.host = r->host, .repository = r->repo, .insecure = true};
    struct cl_image_registry_opts o = {
        .creds = {user, pass}, .retries = retries, .retry_delay_ms = 5};
    struct cl_err e = {0};
    struct cl_image_registry *c = cl_image_registry_new(&ep, &o, &e);
    if (!c)
        fail_msg("client: %s", e.msg);
    return c;
}

/* ---- a registry that trickles ---- */

/* Answers every connection with a 200 that declares 1000 bytes and sends one byte every 50 ms:
 * never silent long enough for the stall timeout, far below any useful rate. */
struct trickler {
    int fd;
    uint16_t port;
    pthread_t thread;
    volatile bool stop;
};

static void *trickle(void *arg)
{
    struct trickler *t = arg;
    while (!t->stop) {
        int c = accept(t->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[4096];
        (void)!read(c, req, sizeof req);
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                   "Content-Length: 1000\r\n\r\n";
        ssize_t w = send(c, head, sizeof head - 1, MSG_NOSIGNAL);
        for (int i = 0; w > 0 && i < 1000 && !t->stop; i++) {
            usleep(50 * 1000);
            w = send(c, "x", 1, MSG_NOSIGNAL);
        }
        close(c);
    }
    return NULL;
}

static void test_trickle_deadline(void **state)
{
    (void)state;
    struct trickler t = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(t.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(t.fd, 8), 0);
    assert_int_equal(getsockname(t.fd, (struct sockaddr *)&a, &al), 0);
    t.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&t.thread, NULL, trickle, &t), 0);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", t.port);
    /* the deadline of a 1000-byte blob: 300 ms + 1000 B at 10 kB/s = 400 ms per attempt */
    struct cl_image_endpoint ep = {.host = host, .repository = "demo/app", .insecure = true};
    struct cl_image_registry_opts o = {
        .retries = 1, .retry_delay_ms = 5, .deadline_base_ms = 300, .min_rate = 10000};
    struct cl_err e = {0};
    struct cl_image_registry *c = cl_image_registry_new(&ep, &o, &e);
    assert_non_null(c);
    struct cl_image_desc desc = {.size = 1000};
    assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, "y", 1, &desc.digest, NULL), 0);
    cl_bytes *b = NULL;
    /* Without the deadline the 1000 bytes would arrive after 50 s and fail the digest check
     * (EVERIFY); with it, each attempt times out. */
    assert_int_equal(cl_image_registry_blob_mem(c, &desc, 1000, &b, &e), CL_EIO);
    assert_null(b);
    assert_non_null(strstr(e.msg, "imed out")); /* curl: "Operation timed out after ..." */
    cl_image_registry_free(c);
    t.stop = true;
    shutdown(t.fd, SHUT_RDWR);
    close(t.fd);
    pthread_join(t.thread, NULL);
}

/* ---- registry client ---- */

#define MT_M "application/vnd.oci.image.manifest.v1+json"

static void test_manifests_and_auth(void **state)
{
    (void)state;
    static const struct {
        enum auth_mode auth;
        const char *user, *pass;
        int rc;
    } cases[] = {
        {AUTH_NONE, NULL, NULL, 0},           {AUTH_BASIC, "alice", "s3cret", 0},
        {AUTH_BASIC, NULL, NULL, CL_EDENIED}, {AUTH_BASIC, "alice", "wrong", CL_EDENIED},
        {AUTH_BEARER, NULL, NULL, 0},         {AUTH_BEARER, "alice", "s3cret", 0},
    };
    const char *body = "{\"schemaVersion\":2}";
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct fakereg *r = reg_start(cases[i].auth);
        struct cl_image_digest d = put_manifest(r, "v1", MT_M, body);
        struct cl_image_registry *c = client(r, cases[i].user, cases[i].pass, 1);
        cl_bytes *b = NULL;
        size_t len = 0;
        cl_str *ct = NULL;
        struct cl_image_digest got;
        struct cl_err e = {0};
        int rc = cl_image_registry_manifest(c, "v1", &b, &len, &ct, &got, &e);
        if (rc != cases[i].rc)
            fail_msg("auth case %zu: %d (%s)", i, rc, e.msg);
        if (rc == 0) {
            assert_int_equal(len, strlen(body));
            assert_string_equal(ct, MT_M);
            assert_true(cl_image_digest_eq(&got, &d));
            free(b);
            free(ct);
            /* by digest, and again: a bearer token is fetched once */
            assert_int_equal(cl_image_registry_manifest(c, d.str, &b, &len, &ct, &got, &e), 0);
            free(b);
            free(ct);
            if (cases[i].auth == AUTH_BEARER)
                assert_int_equal(r->token_requests, 1);
        }
        cl_image_registry_free(c);
        reg_stop(r);
    }
}

static void test_manifest_refusals(void **state)
{
    (void)state;
    struct fakereg *r = reg_start(AUTH_NONE);
    const char *body = "{\"schemaVersion\":2}";
    struct cl_image_digest d = put_manifest(r, "v1", MT_M, body);
    struct cl_image_registry *c = client(r, NULL, NULL, 1);
    cl_bytes *b = NULL;
    size_t len = 0;
    cl_str *ct = NULL;
    struct cl_image_digest got;
    struct cl_err e = {0};
    /* a tag that does not exist */
    assert_int_equal(cl_image_registry_manifest(c, "nope", &b, &len, &ct, &got, &e), CL_ENOTFOUND);
    /* the registry serves other bytes under a digest */
    char key[256];
    snprintf(key, sizeof key, "manifests/%s", d.str);
    put(r, key, MT_M, "{\"schemaVersion\":2 }", 20);
    assert_int_equal(cl_image_registry_manifest(c, d.str, &b, &len, &ct, &got, &e), CL_EVERIFY);
    /* a Docker-Content-Digest that is not the body's */
    r->bad_dcd = true;
    assert_int_equal(cl_image_registry_manifest(c, "v1", &b, &len, &ct, &got, &e), CL_EVERIFY);
    r->bad_dcd = false;
    /* a malformed digest reference */
    assert_int_equal(cl_image_registry_manifest(c, "sha256:xyz", &b, &len, &ct, &got, &e),
                     CL_EPARSE);
    /* larger than the cap */
    char *huge = malloc(CL_IMAGE_MAX_MANIFEST + 10);
    memset(huge, ' ', CL_IMAGE_MAX_MANIFEST + 9);
    huge[CL_IMAGE_MAX_MANIFEST + 9] = 0;
    put_manifest(r, "huge", MT_M, huge);
    free(huge);
    assert_int_equal(cl_image_registry_manifest(c, "huge", &b, &len, &ct, &got, &e), CL_ELIMIT);
    cl_image_registry_free(c);
    reg_stop(r);
}

static void test_blobs(void **state)
{
    (void)state;
    struct fakereg *r = reg_start(AUTH_BEARER);
    size_t n = 300000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    struct cl_image_desc desc = {.size = n};
    desc.digest = put_blob(r, data, n);
    struct cl_image_registry *c = client(r, NULL, NULL, 3);
    struct cl_err e = {0};
    /* into memory */
    cl_bytes *b = NULL;
    assert_int_equal(cl_image_registry_blob_mem(c, &desc, n, &b, &e), 0);
    assert_memory_equal(b, data, n);
    free(b);
    assert_int_equal(cl_image_registry_blob_mem(c, &desc, n - 1, &b, &e), CL_ELIMIT);
    struct cl_image_desc smaller = desc;
    smaller.size = n - 1;
    assert_int_equal(cl_image_registry_blob_mem(c, &smaller, n, &b, &e), CL_EVERIFY);
    /* into files */
    char *dir = tu_tmpdir("blobs");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b1", NULL, NULL, NULL, &e), 0);
    size_t len = 0;
    b = tu_read(dir, "b1", &len);
    assert_int_equal(len, n);
    assert_memory_equal(b, data, n);
    free(b);
    assert_false(tu_exists(dir, "b1.partial"));
    /* resume: half of it already there */
    char *pp = cl_strdupf("%s/b2.partial", dir);
    assert_int_equal(cl_file_write_atomic(pp, data, n / 2, 0600, NULL), 0);
    int ranged = r->ranged_requests;
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b2", NULL, NULL, NULL, &e), 0);
    assert_int_equal(r->ranged_requests, ranged + 1);
    b = tu_read(dir, "b2", &len);
    assert_memory_equal(b, data, n);
    free(b);
    /* resume against a server that ignores Range: starts over */
    assert_int_equal(cl_file_write_atomic(pp, data, n / 3, 0600, NULL), 0);
    r->ignore_range = true;
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b2", NULL, NULL, NULL, &e), 0);
    r->ignore_range = false;
    /* a partial file that is wrong where it overlaps: the digest catches it, the partial goes */
    uint8_t *wrong = malloc(n / 2);
    memcpy(wrong, data, n / 2);
    wrong[10] ^= 1;
    assert_int_equal(cl_file_write_atomic(pp, wrong, n / 2, 0600, NULL), 0);
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b2", NULL, NULL, NULL, &e),
                     CL_EVERIFY);
    assert_false(tu_exists(dir, "b2.partial"));
    free(wrong);
    /* retries: two 500s then success; with no retry left it fails */
    r->fail_blobs = 2;
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b3", NULL, NULL, NULL, &e), 0);
    struct cl_image_registry *c1 = client(r, NULL, NULL, 1);
    r->fail_blobs = 5;
    assert_int_equal(cl_image_registry_blob_file(c1, &desc, dfd, "b4", NULL, NULL, NULL, &e),
                     CL_EIO);
    r->fail_blobs = 0;
    cl_image_registry_free(c1);
    /* a changed blob: EVERIFY, nothing left behind */
    char key[256];
    snprintf(key, sizeof key, "blobs/%s", desc.digest.str);
    data[1000] ^= 0xff;
    put(r, key, "application/octet-stream", data, n);
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b5", NULL, NULL, NULL, &e),
                     CL_EVERIFY);
    assert_false(tu_exists(dir, "b5"));
    assert_false(tu_exists(dir, "b5.partial"));
    /* a longer blob than declared: ELIMIT, nothing left behind */
    uint8_t *longer = malloc(n + 100);
    memcpy(longer, data, n);
    put(r, key, "application/octet-stream", longer, n + 100);
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b6", NULL, NULL, NULL, &e),
                     CL_ELIMIT);
    assert_false(tu_exists(dir, "b6.partial"));
    free(longer);
    /* a blob that is not there */
    struct cl_image_desc missing = desc;
    assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, "x", 1, &missing.digest, NULL), 0);
    assert_int_equal(cl_image_registry_blob_file(c, &missing, dfd, "b7", NULL, NULL, NULL, &e),
                     CL_ENOTFOUND);
    /* the ocicrypt HMAC: right and wrong */
    data[1000] ^= 0xff;
    put(r, key, "application/octet-stream", data, n);
    struct cl_secret *k = cl_secret_from("0123456789abcdef0123456789abcdef", 32);
    uint8_t mac[32];
    unsigned ml = 0;
    assert_non_null(HMAC(EVP_sha256(), k->data, 32, data, n, mac, &ml));
    struct cl_image_blob_mac m = {.key = k, .expect = mac};
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b8", &m, NULL, NULL, &e), 0);
    mac[0] ^= 1;
    assert_int_equal(cl_image_registry_blob_file(c, &desc, dfd, "b9", &m, NULL, NULL, &e),
                     CL_EVERIFY);
    assert_string_equal(e.stage, "hmac");
    assert_false(tu_exists(dir, "b9"));
    assert_false(tu_exists(dir, "b9.partial"));
    cl_secret_free(k);
    free(pp);
    close(dfd);
    tu_rmdir(dir);
    cl_image_registry_free(c);
    free(data);
    reg_stop(r);
}

/* ---- whole pulls ---- */

struct image {
    struct cl_image_digest manifest, config, layers[2];
};

/* Two layers (the second removes a file of the first), pushed under tag. enc_jwk: encrypt
 * the second layer for this JWK (ECDH-ES+A256KW). bad_diff: a wrong diff_id. */
static struct image push_image(struct fakereg *r, const char *tag, const json_t *enc_jwk,
                               bool bad_diff)
{
    struct image img;
    struct tarb t1 = {0}, t2 = {0};
    tb_dir(&t1, "etc");
    tb_file(&t1, "etc/hello", "hello\n");
    tb_file(&t1, "etc/gone", "x\n");
    tb_entry(&t1, "bin/sh", '2', 0777, NULL, 0, "/bin/busybox");
    tb_end(&t1);
    tb_file(&t2, "etc/.wh.gone", "");
    tb_file(&t2, "etc/new", "new\n");
    tb_end(&t2);
    struct tarb *ts[2] = {&t1, &t2};
    char layers[2][4096];
    char diffs[2][CL_IMAGE_DIGEST_STR];
    for (int i = 0; i < 2; i++) {
        struct cl_image_digest diff;
        assert_int_equal(cl_image_digest_of(CL_HASH_SHA256, ts[i]->buf, ts[i]->len, &diff, NULL),
                         0);
        snprintf(diffs[i], sizeof diffs[i], "%s",
                 bad_diff && i == 1
                     ? "sha256:"
                       "1111111111111111111111111111111111111111111111111111111111111111"
                     : diff.str);
        size_t glen = 0;
        cl_bytes *gz = tu_gzip(ts[i]->buf, ts[i]->len, &glen);
        if (i == 1 && enc_jwk) {
            struct cl_image_layer_key k = {0};
            cl_bytes *ct = NULL;
            assert_int_equal(cl_image_encrypt_buf(gz, glen, &k, &ct, NULL), 0);
            struct cl_secret *priv = cl_image_layer_key_privopts(&k, NULL);
            json_t *jwe = cl_jwe_encrypt(enc_jwk, priv->data, priv->len, NULL);
            char *jt = json_dumps(jwe, JSON_COMPACT);
            cl_str *j64 = cl_b64_encode(jt, strlen(jt), CL_B64_STD);
            cl_str *pub = cl_image_layer_key_pubopts(&k, NULL);
            cl_str *p64 = cl_b64_encode(pub, strlen(pub), CL_B64_STD);
            img.layers[i] = put_blob(r, ct, glen);
            snprintf(layers[i], sizeof layers[i],
                     "{\"mediaType\":\"application/"
                     "vnd.oci.image.layer.v1.tar+gzip+encrypted\",\"digest\":\"%s\","
                     "\"size\":%zu,\"annotations\":{\"" CL_IMAGE_ANN_ENC_JWE
                     "\":\"%s\",\"" CL_IMAGE_ANN_ENC_PUBOPTS "\":\"%s\"}}",
                     img.layers[i].str, glen, j64, p64);
            free(ct);
            free(jt);
            free(j64);
            free(pub);
            free(p64);
            json_decref(jwe);
            cl_secret_free(priv);
            cl_image_layer_key_clear(&k);
        } else {
            img.layers[i] = put_blob(r, gz, glen);
            snprintf(layers[i], sizeof layers[i],
                     "{\"mediaType\":\"application/"
                     "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%zu}",
                     img.layers[i].str, glen);
        }
        free(gz);
        free(ts[i]->buf);
    }
    char *cfg = cl_strdupf(
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
        diffs[0], diffs[1]);
    img.config = put_blob(r, cfg, strlen(cfg));
    char *man =
        cl_strdupf("{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"config\":{\"mediaType\":"
                   "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
                   "\"layers\":[%s,%s]}",
                   img.config.str, strlen(cfg), layers[0], layers[1]);
    img.manifest = put_manifest(r, tag, MT_M, man);
    free(cfg);
    free(man);
    return img;
}

static struct cl_image_policy *policy(const char *doc)
{
    struct cl_image_policy *p = cl_image_policy_parse(doc, strlen(doc), NULL);
    assert_non_null(p);
    return p;
}

static int pull(struct fakereg *r, const char *tag, const char *dir, enum cl_image_mode mode,
                const struct cl_image_policy *p, const struct cl_image_decrypt *dc,
                struct cl_image_pull_result *res, struct cl_err *e)
{
    struct cl_image_regconf *rc = cl_image_regconf_parse("", 0, NULL);
    assert_int_equal(cl_image_regconf_add_insecure(rc, r->host, NULL), 0);
    char *ref = cl_strdupf("%s/%s:%s", r->host, r->repo, tag);
    struct cl_image_pull_opts o = {
        .mode = mode,
        .policy = p,
        .regconf = rc,
        .decrypt = dc,
        .registry = {.retries = 1, .retry_delay_ms = 5},
        .same_owner = geteuid() == 0,
    };
    memset(res, 0, sizeof *res);
    int ret = cl_image_pull(ref, dir, &o, res, e);
    free(ref);
    cl_image_regconf_free(rc);
    return ret;
}

static void test_pull_layered(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* overlay whiteouts are 0:0 character devices */
    struct fakereg *r = reg_start(AUTH_BEARER);
    struct image img = push_image(r, "v1", NULL, false);
    char *dir = tu_tmpdir("store");
    struct cl_image_policy *accept =
        policy("{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}");
    struct cl_image_policy *reject = policy("{\"default\":[{\"type\":\"reject\"}]}");
    struct cl_image_pull_result res;
    struct cl_err e = {0};
    if (pull(r, "v1", dir, CL_IMAGE_LAYERED, accept, NULL, &res, &e) < 0)
        fail_msg("pull: %s", e.msg);
    assert_true(cl_image_digest_eq(&res.manifest_digest, &img.manifest));
    assert_int_equal(res.nlayers, 2);
    assert_int_equal(res.layers_cached, 0);
    assert_non_null(strstr(res.lowerdir, ":"));
    assert_non_null(strstr(res.config_json, "\"Cmd\""));
    char *mdir = cl_strdupf("images/sha256/%s/image.json", img.manifest.hex);
    assert_true(tu_exists(dir, mdir));
    free(mdir);
    cl_image_pull_result_clear(&res);
    /* pulled again: both layers from the store, no blob fetched, the policy asked again */
    int blobs = r->blob_requests;
    assert_int_equal(pull(r, "v1", dir, CL_IMAGE_LAYERED, accept, NULL, &res, &e), 0);
    assert_int_equal(res.layers_cached, 2);
    assert_int_equal(r->blob_requests, blobs + 1); /* the config only */
    cl_image_pull_result_clear(&res);
    assert_int_equal(pull(r, "v1", dir, CL_IMAGE_LAYERED, reject, NULL, &res, &e), CL_EDENIED);
    /* a wrong diff_id: the layer is not stored */
    push_image(r, "bad", NULL, true);
    assert_int_equal(pull(r, "bad", dir, CL_IMAGE_LAYERED, accept, NULL, &res, &e), CL_EVERIFY);
    assert_string_equal(e.stage, "diff_id");
    assert_false(tu_exists(
        dir, "layers/sha256/1111111111111111111111111111111111111111111111111111111111111111"));
    cl_image_policy_free(accept);
    cl_image_policy_free(reject);
    tu_rmdir(dir);
    reg_stop(r);
}

static void test_pull_flat(void **state)
{
    (void)state;
    struct fakereg *r = reg_start(AUTH_NONE);
    struct image img = push_image(r, "v1", NULL, false);
    char *base = tu_tmpdir("flat");
    char *dir = cl_strdupf("%s/rootfs", base);
    struct cl_image_policy *accept =
        policy("{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}");
    struct cl_image_pull_result res;
    struct cl_err e = {0};
    if (pull(r, "v1", dir, CL_IMAGE_FLAT, accept, NULL, &res, &e) < 0)
        fail_msg("pull: %s", e.msg);
    assert_true(tu_exists(dir, "etc/hello"));
    assert_true(tu_exists(dir, "etc/new"));
    assert_false(tu_exists(dir, "etc/gone"));
    assert_null(res.lowerdir);
    cl_image_pull_result_clear(&res);
    /* the work folder is gone; the target must be empty for the next pull */
    assert_false(tu_exists(base, ".rootfs.pull"));
    assert_int_equal(pull(r, "v1", dir, CL_IMAGE_FLAT, accept, NULL, &res, &e), CL_EEXISTS);
    /* a changed layer blob: EVERIFY and no rootfs */
    char *dir2 = cl_strdupf("%s/rootfs2", base);
    char key[256];
    snprintf(key, sizeof key, "blobs/%s", img.layers[1].str);
    put(r, key, "application/octet-stream", "tampered", 8);
    assert_int_equal(pull(r, "v1", dir2, CL_IMAGE_FLAT, accept, NULL, &res, &e), CL_EVERIFY);
    assert_false(tu_exists(base, "rootfs2"));
    assert_false(tu_exists(base, ".rootfs2.pull/rootfs"));
    /* no policy: denied before anything is fetched */
    int m = r->manifest_requests;
    assert_int_equal(pull(r, "v1", dir2, CL_IMAGE_FLAT, NULL, NULL, &res, &e), CL_EDENIED);
    assert_int_equal(r->manifest_requests, m);
    /* an image that does not exist */
    assert_int_equal(pull(r, "missing", dir2, CL_IMAGE_FLAT, accept, NULL, &res, &e), CL_ENOTFOUND);
    cl_image_policy_free(accept);
    free(dir);
    free(dir2);
    tu_rmdir(base);
    reg_stop(r);
}

static void test_pull_encrypted(void **state)
{
    (void)state;
    struct fakereg *r = reg_start(AUTH_NONE);
    cl_pkey *k = cl_pkey_generate("P-256", NULL), *other = cl_pkey_generate("P-256", NULL);
    json_t *jwk = cl_jwk_from_pkey(k, false, "ECDH-ES+A256KW", NULL);
    push_image(r, "enc", jwk, false);
    char *base = tu_tmpdir("enc");
    char *dir = cl_strdupf("%s/rootfs", base);
    struct cl_image_policy *accept =
        policy("{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}");
    cl_pkey *mine[] = {k}, *theirs[] = {other};
    struct cl_image_decrypt dc = {.jwe_keys = mine, .njwe_keys = 1};
    struct cl_image_pull_result res;
    struct cl_err e = {0};
    if (pull(r, "enc", dir, CL_IMAGE_FLAT, accept, &dc, &res, &e) < 0)
        fail_msg("pull: %s", e.msg);
    assert_true(tu_exists(dir, "etc/new"));
    cl_image_pull_result_clear(&res);
    tu_rmdir(dir);
    dir = cl_strdupf("%s/rootfs", base);
    /* twins: another key, no key; refused before any layer byte is fetched */
    int blobs = r->blob_requests;
    dc.jwe_keys = theirs;
    assert_int_equal(pull(r, "enc", dir, CL_IMAGE_FLAT, accept, &dc, &res, &e), CL_EVERIFY);
    assert_int_equal(r->blob_requests, blobs + 1); /* the config */
    assert_int_equal(pull(r, "enc", dir, CL_IMAGE_FLAT, accept, NULL, &res, &e), CL_EVERIFY);
    assert_false(tu_exists(base, "rootfs"));
    cl_image_policy_free(accept);
    json_decref(jwk);
    cl_auto_cl_pkey(&k);
    cl_auto_cl_pkey(&other);
    free(dir);
    tu_rmdir(base);
    reg_stop(r);
}

static void test_pull_index(void **state)
{
    (void)state;
    struct fakereg *r = reg_start(AUTH_NONE);
    struct image img = push_image(r, NULL, NULL, false);
    const char *os, *arch, *variant;
    cl_image_platform(&os, &arch, &variant);
    char *idx = cl_strdupf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.oci.image.index.v1+json\",\"manifests\":["
        "{\"mediaType\":\"" MT_M "\",\"digest\":\"sha256:"
        "2222222222222222222222222222222222222222222222222222222222222222"
        "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}},"
        "{\"mediaType\":\"" MT_M "\",\"digest\":\"%s\",\"size\":10,\"platform\":{\"os\":\"%s\","
        "\"architecture\":\"%s\"}}]}",
        img.manifest.str, os, arch);
    struct cl_image_digest id =
        put_manifest(r, "multi", "application/vnd.oci.image.index.v1+json", idx);
    char *base = tu_tmpdir("idx");
    char *dir = cl_strdupf("%s/rootfs", base);
    struct cl_image_policy *accept =
        policy("{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}");
    struct cl_image_pull_result res;
    struct cl_err e = {0};
    if (pull(r, "multi", dir, CL_IMAGE_FLAT, accept, NULL, &res, &e) < 0)
        fail_msg("pull: %s", e.msg);
    assert_true(res.from_index);
    assert_true(cl_image_digest_eq(&res.index_digest, &id));
    assert_true(cl_image_digest_eq(&res.manifest_digest, &img.manifest));
    cl_image_pull_result_clear(&res);
    cl_image_policy_free(accept);
    free(idx);
    free(dir);
    tu_rmdir(base);
    reg_stop(r);
}

int main(void)
{
    if (!getenv("TEST_VERBOSE"))
        cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifests_and_auth),
        cmocka_unit_test(test_manifest_refusals),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_trickle_deadline),
        cmocka_unit_test(test_pull_layered),
        cmocka_unit_test(test_pull_flat),
        cmocka_unit_test(test_pull_encrypted),
        cmocka_unit_test(test_pull_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
