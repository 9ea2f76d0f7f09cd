/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signature policy: parsing (one refusal per branch), scope lookup, identity rules, payload
 * checks, GPG simple signing (a key made here with gpgme, and upstream's signature vector
 * when $CLOISTER_VECTORS has it), cosign keys (P-256, P-384, RSA, Ed25519), registries.d
 * merging (upstream's merge vectors), and whole policy evaluations with fake signature
 * sources: every accepting case has its refusing twin.
 */
#include <gpgme.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_image_util.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H64B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const char *vectors_dir(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    return v;
}

static cl_bytes *vector(const char *rel, size_t *len)
{
    const char *v = vectors_dir();
    if (!v)
        return NULL;
    char *p = cl_strdupf("%s/guest-components/%s", v, rel);
    cl_bytes *b = cl_file_read(p, 1u << 20, len, NULL);
    free(p);
    return b;
}

/* ---- parsing ---- */

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        int rc;
    } cases[] = {
        {"{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}", 0},
        {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"q.io\":[{\"type\":"
         "\"signedBy\",\"keyType\":"
         "\"GPGKeys\",\"keyPaths\":[\"/a\",\"/"
         "b\"],\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"a\","
         "\"signedPrefix\":\"b\"}}],\"r.io\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"eA==\","
         "\"signedIdentity\":"
         "{\"type\":\"matchRepository\"}}]}}}",
         0},
        {"", CL_EPARSE},
        {"[]", CL_EPARSE},
        {"{}", CL_EPARSE},                                              /* no default */
        {"{\"default\":[],\"x\":1}", CL_EPARSE},                        /* unknown top member */
        {"{\"default\":{}}", CL_EPARSE},                                /* not an array */
        {"{\"default\":[]}", CL_EPARSE},                                /* empty list */
        {"{\"default\":[1]}", CL_EPARSE},                               /* not an object */
        {"{\"default\":[{}]}", CL_EPARSE},                              /* no type */
        {"{\"default\":[{\"type\":\"maybe\"}]}", CL_EPARSE},            /* unknown type */
        {"{\"default\":[{\"type\":\"reject\",\"why\":1}]}", CL_EPARSE}, /* unknown member */
        {"{\"default\":[{\"type\":\"signedBy\",\"keyPath\":\"/k\"}]}",
         CL_EUNSUPPORTED}, /* no keyType */
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"X509Certificates\",\"keyPath\":\"/"
         "k\"}]}",
         CL_EUNSUPPORTED},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\"}]}", CL_EPARSE}, /* no key */
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"keyData\":\"eA==\"}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[]}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[1]}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"\"}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":1}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{\"type\":\"guess\"}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{\"type\":\"matchExact\",\"x\":1}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{\"type\":\"exactReference\"}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{\"type\":\"exactReference\",\"dockerReference\":\"BAD REF\"}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{\"type\":\"exactRepository\"}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/"
         "k\",\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"a\"}}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"fulcio\":{}}]}",
         CL_EUNSUPPORTED},
        {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"rekorPublicKeyPath\":\"/"
         "r\"}]}",
         CL_EUNSUPPORTED},
        {"{\"default\":[{\"type\":\"sigstoreSigned\"}]}", CL_EPARSE},
        {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"keyType\":\"GPGKeys\"}]}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"reject\"}],\"transports\":1}", CL_EPARSE},
        {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":1}}", CL_EPARSE},
        {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"q.io\":{}}}}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"q.io\":[]}}}",
         CL_EPARSE},
        {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"dir\":{\"\":[{\"type\":\"nope\"}]}"
         "}}",
         CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_err e = {0};
        struct cl_image_policy *p = cl_image_policy_parse(cases[i].doc, strlen(cases[i].doc), &e);
        int rc = p ? 0 : e.code;
        if (rc != cases[i].rc)
            fail_msg("policy case %zu: %d (%s), wanted %d: %s", i, rc, e.msg, cases[i].rc,
                     cases[i].doc);
        cl_image_policy_free(p);
    }
    size_t big = CL_IMAGE_MAX_POLICY + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    struct cl_err e = {0};
    assert_null(cl_image_policy_parse(huge, big, &e));
    assert_int_equal(e.code, CL_ELIMIT);
    free(huge);
}

static void test_upstream_policy(void **state)
{
    (void)state;
    size_t len = 0;
    cl_bytes *doc = vector("image-rs/test_data/signature/policy.json", &len);
    if (!doc)
        skip();
    struct cl_err e = {0};
    struct cl_image_policy *p = cl_image_policy_parse((const char *)doc, len, &e);
    if (!p)
        fail_msg("upstream policy.json: %s", e.msg);
    static const struct {
        const char *ref, *scope;
    } scopes[] = {
        {"example.com/playground/app:1", "example.com/playground"},
        {"example.com/hardened", "example.com/hardened"},
        {"registry.access.redhat.com/ubi:8", "registry.access.redhat.com"},
        {"other.access.redhat.com/x", "*.access.redhat.com"},
        {"a.b.redhat.com/x", "*.redhat.com"},
        {"example.com/other", "*.com"},
        {"quay.io/x", "default"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(scopes); i++) {
        struct cl_image_ref r;
        assert_int_equal(cl_image_ref_parse(scopes[i].ref, &r, NULL), 0);
        const char *name = NULL;
        assert_non_null(cl_image_policy_scope(p, &r, &name));
        if (strcmp(name, scopes[i].scope) != 0)
            fail_msg("%s: scope %s, wanted %s", scopes[i].ref, name, scopes[i].scope);
        cl_image_ref_clear(&r);
    }
    cl_image_policy_free(p);
    free(doc);
}

static void test_scopes(void **state)
{
    (void)state;
    const char *doc = "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{"
                      "\"q.io/ns/app:1\":[{\"type\":\"insecureAcceptAnything\"}],"
                      "\"q.io/ns/app\":[{\"type\":\"insecureAcceptAnything\"}],"
                      "\"q.io/ns\":[{\"type\":\"insecureAcceptAnything\"}],"
                      "\"q.io\":[{\"type\":\"insecureAcceptAnything\"}],"
                      "\"*.example.org\":[{\"type\":\"insecureAcceptAnything\"}],"
                      "\"docker.io/library\":[{\"type\":\"insecureAcceptAnything\"}],"
                      "\"\":[{\"type\":\"insecureAcceptAnything\"}]}}}";
    struct cl_image_policy *p = cl_image_policy_parse(doc, strlen(doc), NULL);
    assert_non_null(p);
    static const struct {
        const char *ref, *scope;
    } cases[] = {
        {"q.io/ns/app:1", "q.io/ns/app:1"},
        {"q.io/ns/app:2", "q.io/ns/app"},
        {"q.io/ns/app@sha256:" H64, "q.io/ns/app"},
        {"q.io/ns/other", "q.io/ns"},
        {"q.io/else", "q.io"},
        {"a.b.example.org:5000/x", "*.example.org"},
        {"busybox", "docker.io/library"},
        {"unlisted.net/x", "\"\""},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_ref r;
        assert_int_equal(cl_image_ref_parse(cases[i].ref, &r, NULL), 0);
        const char *name = NULL;
        cl_image_policy_scope(p, &r, &name);
        if (strcmp(name, cases[i].scope) != 0)
            fail_msg("%s: scope %s, wanted %s", cases[i].ref, name, cases[i].scope);
        cl_image_ref_clear(&r);
    }
    cl_image_policy_free(p);
}

/* ---- payloads and identities ---- */

static cl_str *payload(const char *type, const char *digest, const char *ident)
{
    return cl_strdupf(
        "{\"critical\":{\"type\":\"%s\",\"image\":{\"docker-manifest-digest\":\"%s\"},"
        "\"identity\":{\"docker-reference\":\"%s\"}},\"optional\":{\"creator\":\"test\"}}",
        type, digest, ident);
}

static void test_payload(void **state)
{
    (void)state;
    struct cl_image_digest md, idx;
    assert_int_equal(cl_image_digest_parse("sha256:" H64, &md, NULL, NULL), 0);
    assert_int_equal(cl_image_digest_parse("sha256:" H64B, &idx, NULL, NULL), 0);
    static const char *const T = "atomic container signature";
    static const struct {
        const char *img;     /* the image being pulled */
        const char *sig_ref; /* identity in the signature */
        const char *digest;  /* digest in the signature */
        const char *sid;     /* signedIdentity JSON or NULL */
        int rc;
    } cases[] = {
        {"q.io/a:1", "q.io/a:1", "sha256:" H64, NULL, 0},
        {"q.io/a:1", "q.io/a:2", "sha256:" H64, NULL, CL_EVERIFY},  /* tag differs */
        {"q.io/a@sha256:" H64, "q.io/a:9", "sha256:" H64, NULL, 0}, /* by digest: repo only */
        {"q.io/a:1", "q.io/b:1", "sha256:" H64, NULL, CL_EVERIFY},
        {"q.io/a:1", "q.io/a:1", "sha256:" H64B, NULL, 0}, /* the index digest */
        {"q.io/a:1", "q.io/a:1",
         "sha256:"
         "1111111111111111111111111111111111111111111111111111111111111111",
         NULL, CL_EVERIFY},
        {"q.io/a:1", "q.io/a:1", "sha256:bad", NULL, CL_EVERIFY},
        {"q.io/a:1", "NOT A REF", "sha256:" H64, NULL, CL_EVERIFY},
        {"q.io/a:1", "q.io/a:1", "sha256:" H64, "{\"type\":\"matchExact\"}", 0},
        {"q.io/a@sha256:" H64, "q.io/a:1", "sha256:" H64, "{\"type\":\"matchExact\"}", CL_EVERIFY},
        {"q.io/a:1", "q.io/a:7", "sha256:" H64, "{\"type\":\"matchRepository\"}", 0},
        {"q.io/a:1", "q.io/b:1", "sha256:" H64, "{\"type\":\"matchRepository\"}", CL_EVERIFY},
        {"q.io/a:1", "r.io/x:y", "sha256:" H64,
         "{\"type\":\"exactReference\",\"dockerReference\":\"r.io/x:y\"}", 0},
        {"q.io/a:1", "r.io/x:z", "sha256:" H64,
         "{\"type\":\"exactReference\",\"dockerReference\":\"r.io/x:y\"}", CL_EVERIFY},
        {"q.io/a:1", "r.io/x:z", "sha256:" H64,
         "{\"type\":\"exactRepository\",\"dockerRepository\":\"r.io/x\"}", 0},
        {"q.io/a:1", "r.io/y:z", "sha256:" H64,
         "{\"type\":\"exactRepository\",\"dockerRepository\":\"r.io/x\"}", CL_EVERIFY},
        {"mirror.io/ns/a:1", "q.io/ns/a:1", "sha256:" H64,
         "{\"type\":\"remapIdentity\",\"prefix\":\"mirror.io/ns\",\"signedPrefix\":\"q.io/ns\"}",
         0},
        {"mirror.io/ns/a:1", "mirror.io/ns/a:1", "sha256:" H64,
         "{\"type\":\"remapIdentity\",\"prefix\":\"mirror.io/ns\",\"signedPrefix\":\"q.io/ns\"}",
         CL_EVERIFY},
        {"busybox", "docker.io/library/busybox:latest", "sha256:" H64, NULL, 0}, /* normalised */
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_ref r;
        assert_int_equal(cl_image_ref_parse(cases[i].img, &r, NULL), 0);
        struct cl_image_sigsrc src = {.ref = &r, .manifest_digest = &md, .index_digest = &idx};
        cl_str *pl = payload(T, cases[i].digest, cases[i].sig_ref);
        json_t *sid = cases[i].sid ? json_loads(cases[i].sid, 0, NULL) : NULL;
        struct cl_err e = {0};
        int rc = cl_image_sig_payload_check((const uint8_t *)pl, strlen(pl), T, &src, sid,
                                            "matchRepoDigestOrExact", &e);
        if (rc != cases[i].rc)
            fail_msg("payload case %zu (%s vs %s): %d (%s)", i, cases[i].img, cases[i].sig_ref, rc,
                     e.msg);
        json_decref(sid);
        free(pl);
        cl_image_ref_clear(&r);
    }
    /* malformed payloads */
    struct cl_image_ref r;
    assert_int_equal(cl_image_ref_parse("q.io/a:1", &r, NULL), 0);
    struct cl_image_sigsrc src = {.ref = &r, .manifest_digest = &md};
    static const char *const bad[] = {
        "not json",
        "{}",
        "{\"critical\":{\"type\":\"atomic container "
        "signature\",\"image\":{},\"identity\":{\"docker-reference\":\"q.io/a:1\"}}}",
        "{\"critical\":{\"type\":\"cosign container image "
        "signature\",\"image\":{\"docker-manifest-digest\":\"sha256:" H64
        "\"},\"identity\":{\"docker-reference\":\"q.io/a:1\"}}}",
        "{\"critical\":{\"type\":\"atomic container "
        "signature\",\"image\":{\"docker-manifest-digest\":\"sha256:" H64
        "\"},\"identity\":{\"docker-reference\":\"q.io/a:1\"},\"extra\":1}}",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err e = {0};
        assert_int_equal(cl_image_sig_payload_check((const uint8_t *)bad[i], strlen(bad[i]), T,
                                                    &src, NULL, "matchRepoDigestOrExact", &e),
                         CL_EVERIFY);
    }
    cl_image_ref_clear(&r);
}

/* ---- cosign ---- */

static cl_str *sign_b64(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t sl = 0;
    assert_int_equal(EVP_DigestSignInit(c, NULL, md, NULL, k), 1);
    assert_int_equal(EVP_DigestSign(c, NULL, &sl, msg, len), 1);
    uint8_t *sig = malloc(sl);
    assert_int_equal(EVP_DigestSign(c, sig, &sl, msg, len), 1);
    EVP_MD_CTX_free(c);
    cl_str *b = cl_b64_encode(sig, sl, CL_B64_STD);
    free(sig);
    return b;
}

static void test_cosign(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        const EVP_MD *(*md)(void);
    } kinds[] = {
        {"P-256", EVP_sha256}, {"P-384", EVP_sha384}, {"RSA-2048", EVP_sha256}, {"Ed25519", NULL}};
    const char *msg = "{\"critical\":{}}";
    for (size_t i = 0; i < CL_ARRAY_LEN(kinds); i++) {
        cl_pkey *k = cl_pkey_generate(kinds[i].kind, NULL);
        cl_pkey *other = cl_pkey_generate(kinds[i].kind, NULL);
        assert_non_null(k);
        cl_str *pem = cl_pkey_to_pem(k, false, NULL);
        cl_str *opem = cl_pkey_to_pem(other, false, NULL);
        cl_str *sig = sign_b64(k, kinds[i].md ? kinds[i].md() : NULL, msg, strlen(msg));
        struct cl_err e = {0};
        assert_int_equal(
            cl_image_cosign_verify(pem, strlen(pem), (const uint8_t *)msg, strlen(msg), sig, &e),
            0);
        /* twins: another key, a changed payload, a broken signature, garbage key */
        assert_int_equal(
            cl_image_cosign_verify(opem, strlen(opem), (const uint8_t *)msg, strlen(msg), sig, &e),
            CL_EVERIFY);
        assert_int_equal(
            cl_image_cosign_verify(pem, strlen(pem), (const uint8_t *)"{}", 2, sig, &e),
            CL_EVERIFY);
        sig[5] = sig[5] == 'A' ? 'B' : 'A';
        assert_int_equal(
            cl_image_cosign_verify(pem, strlen(pem), (const uint8_t *)msg, strlen(msg), sig, &e),
            CL_EVERIFY);
        assert_true(cl_image_cosign_verify("junk", 4, (const uint8_t *)msg, strlen(msg), sig, &e) <
                    0);
        assert_true(cl_image_cosign_verify(pem, strlen(pem), (const uint8_t *)msg, strlen(msg),
                                           "!!!", &e) < 0);
        free(sig);
        free(pem);
        free(opem);
        cl_auto_cl_pkey(&k);
        cl_auto_cl_pkey(&other);
    }
}

/* ---- GPG ---- */

struct gpgkey {
    char *home;
    cl_bytes *pub;
    size_t publen;
};

static void gpg_make(struct gpgkey *g)
{
    gpgme_check_version(NULL);
    g->home = tu_tmpdir("gnupg");
    chmod(g->home, 0700);
    gpgme_ctx_t ctx;
    assert_int_equal(gpgme_new(&ctx), 0);
    assert_int_equal(gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, g->home), 0);
    gpgme_error_t ge =
        gpgme_op_createkey(ctx, "Cloister Test <test@example.com>", "ed25519", 0, 0, NULL,
                           GPGME_CREATE_SIGN | GPGME_CREATE_NOPASSWD | GPGME_CREATE_NOEXPIRE);
    if (ge)
        fail_msg("gpg createkey: %s", gpgme_strerror(ge));
    gpgme_data_t out;
    assert_int_equal(gpgme_data_new(&out), 0);
    gpgme_set_armor(ctx, 1);
    assert_int_equal(gpgme_op_export(ctx, NULL, 0, out), 0);
    size_t n = 0;
    char *mem = gpgme_data_release_and_get_mem(out, &n);
    g->pub = malloc(n + 1);
    memcpy(g->pub, mem, n);
    g->pub[n] = 0;
    g->publen = n;
    gpgme_free(mem);
    gpgme_release(ctx);
}

static cl_bytes *gpg_sign(const struct gpgkey *g, const char *text, size_t *len)
{
    gpgme_ctx_t ctx;
    assert_int_equal(gpgme_new(&ctx), 0);
    assert_int_equal(gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, g->home), 0);
    gpgme_data_t in, out;
    assert_int_equal(gpgme_data_new_from_mem(&in, text, strlen(text), 0), 0);
    assert_int_equal(gpgme_data_new(&out), 0);
    gpgme_error_t ge = gpgme_op_sign(ctx, in, out, GPGME_SIG_MODE_NORMAL);
    if (ge)
        fail_msg("gpg sign: %s", gpgme_strerror(ge));
    size_t n = 0;
    char *mem = gpgme_data_release_and_get_mem(out, &n);
    cl_bytes *b = malloc(n);
    memcpy(b, mem, n);
    *len = n;
    gpgme_free(mem);
    gpgme_data_release(in);
    gpgme_release(ctx);
    return b;
}

static void gpg_free(struct gpgkey *g)
{
    /* the agent of this throw-away home goes with it */
    char *cmd = cl_strdupf("gpgconf --homedir '%s' --kill all >/dev/null 2>&1", g->home);
    if (system(cmd) != 0)
        print_message("gpgconf --kill failed (ignored)\n");
    free(cmd);
    tu_rmdir(g->home);
    free(g->pub);
}

/* ---- policy evaluation with fake signature sources ---- */

struct fake {
    cl_bytes *simple[4];
    size_t simple_len[4];
    size_t nsimple;
    const struct cl_image_digest *simple_for; /* signatures exist only for this digest */
    cl_str *cosign_payload;
    cl_str *cosign_sig;
    int fail_rc;
};

static int fake_simple(void *ctx, const struct cl_image_digest *d, cl_bytes ***sigs, size_t **lens,
                       size_t *n, struct cl_err *err)
{
    struct fake *f = ctx;
    if (f->fail_rc)
        return cl_err_set(err, f->fail_rc, "fake failure");
    *n = 0;
    *sigs = calloc(4, sizeof **sigs);
    *lens = calloc(4, sizeof **lens);
    if (f->simple_for && !cl_image_digest_eq(d, f->simple_for))
        return 0;
    for (size_t i = 0; i < f->nsimple; i++) {
        (*sigs)[i] = malloc(f->simple_len[i]);
        memcpy((*sigs)[i], f->simple[i], f->simple_len[i]);
        (*lens)[i] = f->simple_len[i];
    }
    *n = f->nsimple;
    return 0;
}

static int fake_cosign(void *ctx, const struct cl_image_digest *d, cl_bytes ***payloads,
                       size_t **lens, cl_str ***sigs, size_t *n, struct cl_err *err)
{
    (void)d;
    (void)err;
    struct fake *f = ctx;
    *n = 0;
    *payloads = calloc(1, sizeof **payloads);
    *lens = calloc(1, sizeof **lens);
    *sigs = calloc(1, sizeof **sigs);
    if (!f->cosign_payload)
        return 0;
    (*payloads)[0] = (cl_bytes *)strdup(f->cosign_payload);
    (*lens)[0] = strlen(f->cosign_payload);
    (*sigs)[0] = strdup(f->cosign_sig);
    *n = 1;
    return 0;
}

static int eval_policy(const char *doc, const char *img, const struct cl_image_digest *md,
                       const struct cl_image_digest *idx, struct fake *f, struct cl_err *e)
{
    struct cl_image_policy *p = cl_image_policy_parse(doc, strlen(doc), e);
    if (!p)
        fail_msg("policy: %s", e->msg);
    struct cl_image_ref r;
    assert_int_equal(cl_image_ref_parse(img, &r, NULL), 0);
    struct cl_image_sigsrc src = {.ref = &r,
                                  .manifest_digest = md,
                                  .index_digest = idx,
                                  .simple_sigs = fake_simple,
                                  .cosign_sigs = fake_cosign,
                                  .ctx = f};
    int rc = cl_image_policy_check(p, &src, e);
    cl_image_ref_clear(&r);
    cl_image_policy_free(p);
    return rc;
}

static void test_policy_gpg(void **state)
{
    (void)state;
    struct gpgkey g = {0}, other = {0};
    gpg_make(&g);
    gpg_make(&other);
    struct cl_image_digest md, idx;
    assert_int_equal(cl_image_digest_parse("sha256:" H64, &md, NULL, NULL), 0);
    assert_int_equal(cl_image_digest_parse("sha256:" H64B, &idx, NULL, NULL), 0);
    cl_str *b64 = cl_b64_encode(g.pub, g.publen, CL_B64_STD);
    cl_str *doc = cl_strdupf(
        "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"q.io\":[{\"type\":"
        "\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"%s\"}]}}}",
        b64);
    cl_str *good = payload("atomic container signature", "sha256:" H64, "q.io/app:1");
    cl_str *wrongdigest = payload("atomic container signature", "sha256:" H64B, "q.io/app:1");
    cl_str *wrongident = payload("atomic container signature", "sha256:" H64, "q.io/other:1");
    struct cl_err e = {0};

    /* accepted: a good signature */
    struct fake f = {.nsimple = 1};
    f.simple[0] = gpg_sign(&g, good, &f.simple_len[0]);
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &f, &e), 0);
    /* the payload alone through cl_image_gpg_verify */
    cl_bytes *pl = NULL;
    size_t plen = 0;
    assert_int_equal(
        cl_image_gpg_verify(g.pub, g.publen, f.simple[0], f.simple_len[0], &pl, &plen, &e), 0);
    assert_int_equal(plen, strlen(good));
    assert_memory_equal(pl, good, plen);
    free(pl);
    /* twin: signed by a key the policy does not name */
    struct fake fo = {.nsimple = 1};
    fo.simple[0] = gpg_sign(&other, good, &fo.simple_len[0]);
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &fo, &e), CL_EVERIFY);
    assert_non_null(strstr(e.msg, "not one of the policy's keys"));
    /* twin: no signature at all */
    struct fake none = {0};
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &none, &e), CL_EDENIED);
    assert_non_null(strstr(e.msg, "no signature exists"));
    /* twin: signature for another manifest */
    struct fake fd = {.nsimple = 1};
    fd.simple[0] = gpg_sign(&g, wrongdigest, &fd.simple_len[0]);
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &fd, &e), CL_EVERIFY);
    /* ... that is the index digest: accepted when the image came from that index */
    fd.simple_for = NULL;
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, &idx, &fd, &e), 0);
    /* twin: signature for another image */
    struct fake fi = {.nsimple = 1};
    fi.simple[0] = gpg_sign(&g, wrongident, &fi.simple_len[0]);
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &fi, &e), CL_EVERIFY);
    /* twin: a flipped byte in the signature */
    struct fake ft = {.nsimple = 1};
    ft.simple[0] = gpg_sign(&g, good, &ft.simple_len[0]);
    ft.simple[0][ft.simple_len[0] - 5] ^= 1;
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &ft, &e), CL_EVERIFY);
    /* one bad and one good signature: the good one suffices */
    struct fake two = {.nsimple = 2};
    two.simple[0] = gpg_sign(&other, good, &two.simple_len[0]);
    two.simple[1] = gpg_sign(&g, good, &two.simple_len[1]);
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &two, &e), 0);
    /* the source failing is an error, not a pass */
    struct fake ferr = {.fail_rc = CL_EIO};
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &ferr, &e), CL_EIO);
    /* unscoped images fall to the default: reject */
    assert_int_equal(eval_policy(doc, "r.io/app:1", &md, NULL, &f, &e), CL_EDENIED);
    /* garbage key data */
    cl_bytes *junkpl = NULL;
    assert_true(cl_image_gpg_verify((const uint8_t *)"junk", 4, f.simple[0], f.simple_len[0],
                                    &junkpl, &plen, &e) < 0);
    assert_true(
        cl_image_gpg_verify(g.pub, g.publen, (const uint8_t *)"junk", 4, &junkpl, &plen, &e) < 0);
    /* a key file through keyPath */
    char *kf = cl_strdupf("%s/key.asc", g.home);
    assert_int_equal(cl_file_write_atomic(kf, g.pub, g.publen, 0600, NULL), 0);
    cl_str *doc2 = cl_strdupf(
        "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[\"%s\"]}]}",
        kf);
    assert_int_equal(eval_policy(doc2, "q.io/app:1", &md, NULL, &f, &e), 0);
    cl_str *doc3 = cl_strdupf("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\","
                              "\"keyPath\":\"%s.missing\"}]}",
                              kf);
    assert_int_equal(eval_policy(doc3, "q.io/app:1", &md, NULL, &f, &e), CL_ENOTFOUND);
    /* kbs:// without a resource fetcher is refused */
    const char *doc4 = "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":"
                       "\"kbs:///a/b/c\"}]}";
    assert_int_equal(eval_policy(doc4, "q.io/app:1", &md, NULL, &f, &e), CL_EINVAL);
    free(doc2);
    free(doc3);
    free(kf);
    struct fake *all[] = {&f, &fo, &fd, &fi, &ft, &two};
    for (size_t i = 0; i < CL_ARRAY_LEN(all); i++)
        for (size_t k = 0; k < all[i]->nsimple; k++)
            free(all[i]->simple[k]);
    free(good);
    free(wrongdigest);
    free(wrongident);
    free(doc);
    free(b64);
    gpg_free(&g);
    gpg_free(&other);
}

static void test_upstream_gpg(void **state)
{
    (void)state;
    size_t klen = 0, slen = 0;
    cl_bytes *ring = vector("image-rs/test_data/signature/pubring.gpg", &klen);
    cl_bytes *sig = vector("image-rs/test_data/signature/signatures/signature-1", &slen);
    if (!ring || !sig) {
        free(ring);
        free(sig);
        skip();
    }
    cl_bytes *pl = NULL;
    size_t plen = 0;
    struct cl_err e = {0};
    if (cl_image_gpg_verify(ring, klen, sig, slen, &pl, &plen, &e) < 0)
        fail_msg("upstream signature-1: %s", e.msg);
    assert_non_null(strstr((char *)pl, "quay.io/ali_os_security/alpine:latest"));
    assert_non_null(strstr(
        (char *)pl, "sha256:69704ef328d05a9f806b6b8502915e6a0a4faa4d72018dc42343f511490daf8a"));
    free(pl);
    sig[slen / 2] ^= 0x40;
    assert_true(cl_image_gpg_verify(ring, klen, sig, slen, &pl, &plen, &e) < 0);
    free(ring);
    free(sig);
}

static void test_policy_sigstore(void **state)
{
    (void)state;
    cl_pkey *k = cl_pkey_generate("P-256", NULL);
    cl_pkey *other = cl_pkey_generate("P-256", NULL);
    cl_str *pem = cl_pkey_to_pem(k, false, NULL);
    cl_str *b64 = cl_b64_encode(pem, strlen(pem), CL_B64_STD);
    struct cl_image_digest md;
    assert_int_equal(cl_image_digest_parse("sha256:" H64, &md, NULL, NULL), 0);
    cl_str *doc =
        cl_strdupf("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"%s\"}]}", b64);
    cl_str *pl = payload("cosign container image signature", "sha256:" H64, "q.io/app:other-tag");
    struct fake f = {.cosign_payload = pl};
    f.cosign_sig = sign_b64(k, EVP_sha256(), pl, strlen(pl));
    struct cl_err e = {0};
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &f, &e),
                     0); /* matchRepository by default */
    /* keyData as raw PEM text (image-rs reads it so) */
    json_t *raw = json_pack("{s:[{s:s,s:s}]}", "default", "type", "sigstoreSigned", "keyData", pem);
    char *rawdoc = json_dumps(raw, 0);
    assert_int_equal(eval_policy(rawdoc, "q.io/app:1", &md, NULL, &f, &e), 0);
    /* twins: another key, another repository, no signature, a simple-signing payload type */
    struct fake fo = {.cosign_payload = pl};
    fo.cosign_sig = sign_b64(other, EVP_sha256(), pl, strlen(pl));
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &fo, &e), CL_EVERIFY);
    assert_int_equal(eval_policy(doc, "q.io/else:1", &md, NULL, &f, &e), CL_EVERIFY);
    struct fake none = {0};
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &none, &e), CL_EDENIED);
    cl_str *pl2 = payload("atomic container signature", "sha256:" H64, "q.io/app:1");
    struct fake ft = {.cosign_payload = pl2};
    ft.cosign_sig = sign_b64(k, EVP_sha256(), pl2, strlen(pl2));
    assert_int_equal(eval_policy(doc, "q.io/app:1", &md, NULL, &ft, &e), CL_EVERIFY);
    /* all requirements must pass: accept-anything plus reject is a reject */
    const char *both =
        "{\"default\":[{\"type\":\"insecureAcceptAnything\"},{\"type\":\"reject\"}]}";
    assert_int_equal(eval_policy(both, "q.io/app:1", &md, NULL, &f, &e), CL_EDENIED);
    /* no policy at all denies */
    struct cl_image_ref r;
    assert_int_equal(cl_image_ref_parse("q.io/app:1", &r, NULL), 0);
    struct cl_image_sigsrc src = {.ref = &r, .manifest_digest = &md};
    assert_int_equal(cl_image_policy_check(NULL, &src, &e), CL_EDENIED);
    /* a signedBy requirement with no way to fetch signatures denies */
    const char *gpgdoc =
        "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"eA==\"}]}";
    struct cl_image_policy *p = cl_image_policy_parse(gpgdoc, strlen(gpgdoc), NULL);
    assert_int_equal(cl_image_policy_check(p, &src, &e), CL_EDENIED);
    cl_image_policy_free(p);
    cl_image_ref_clear(&r);
    json_decref(raw);
    free(rawdoc);
    free(pl);
    free(pl2);
    free(f.cosign_sig);
    free(fo.cosign_sig);
    free(ft.cosign_sig);
    free(doc);
    free(b64);
    free(pem);
    cl_auto_cl_pkey(&k);
    cl_auto_cl_pkey(&other);
}

/* ---- registries.d ---- */

static void test_lookaside(void **state)
{
    (void)state;
    const char *y = "default-docker:\n  lookaside: file:///def\n"
                    "docker:\n  q.io:\n    lookaside: https://sigs.q.io/base\n    "
                    "use-sigstore-attachments: true\n"
                    "  q.io/team/app:\n    sigstore: file:///old-name\n"
                    "  r.io:\n    use-sigstore-attachments: true\n";
    struct cl_err e = {0};
    struct cl_image_lookaside *l = cl_image_lookaside_parse(y, strlen(y), &e);
    if (!l)
        fail_msg("lookaside: %s", e.msg);
    static const struct {
        const char *ref, *url;
        bool sigstore;
    } cases[] = {
        {"q.io/x", "https://sigs.q.io/base", true},
        {"q.io/team/app:1", "file:///old-name", true},
        {"r.io/x", "file:///def", true},
        {"s.io/x", "file:///def", false},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_ref r;
        assert_int_equal(cl_image_ref_parse(cases[i].ref, &r, NULL), 0);
        bool ss = false;
        cl_str *u = cl_image_lookaside_url(l, &r, &ss);
        assert_string_equal(u, cases[i].url);
        assert_int_equal(ss, cases[i].sigstore);
        free(u);
        cl_image_ref_clear(&r);
    }
    cl_image_lookaside_free(l);
    static const char *const bad[] = {
        "docker: [1]\n",
        "other: 1\n",
        "docker:\n  q.io:\n    lookaside: [a]\n",
        "docker:\n  q.io:\n    use-sigstore-attachments: maybe\n",
        "docker:\n  q.io:\n    wat: x\n",
        "default-docker: 1\n",
        "- a\n",
        "docker:\n  q.io: {lookaside: a}\n  q.io: {lookaside: b}\n",
        "a: &x [*x]\n",
        "docker: {\n",
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_image_lookaside *x = cl_image_lookaside_parse(bad[i], strlen(bad[i]), &e);
        if (x)
            fail_msg("lookaside accepted: %s", bad[i]);
    }
    /* an alias bomb stops at the visit cap */
    const char *bomb =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, "
        "*c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, "
        "*e]\n";
    assert_null(cl_image_lookaside_parse(bomb, strlen(bomb), &e));
    assert_int_equal(e.code, CL_ELIMIT);
    /* files in a folder; two different definitions of one namespace are refused */
    char *d = tu_tmpdir("regd");
    char *f1 = cl_strdupf("%s/a.yaml", d), *f2 = cl_strdupf("%s/b.yaml", d),
         *f3 = cl_strdupf("%s/c.txt", d);
    const char *a = "docker:\n  q.io:\n    lookaside: file:///one\n";
    const char *b = "docker:\n  q.io:\n    lookaside: file:///two\n";
    assert_int_equal(cl_file_write_atomic(f1, a, strlen(a), 0644, NULL), 0);
    assert_int_equal(cl_file_write_atomic(f3, "ignored: [", 10, 0644, NULL), 0);
    l = cl_image_lookaside_load(d, &e);
    assert_non_null(l);
    cl_image_lookaside_free(l);
    assert_int_equal(cl_file_write_atomic(f2, b, strlen(b), 0644, NULL), 0);
    assert_null(cl_image_lookaside_load(d, &e));
    l = cl_image_lookaside_load("/nonexistent/registries.d", &e);
    assert_non_null(l); /* no configuration at all */
    cl_image_lookaside_free(l);
    free(f1);
    free(f2);
    free(f3);
    tu_rmdir(d);
}

static void test_upstream_lookaside_merge(void **state)
{
    (void)state;
    const char *v = vectors_dir();
    char *probe =
        v ? cl_strdupf("%s/guest-components/image-rs/test_data/signature/sigstore_config", v)
          : NULL;
    struct stat st;
    if (!probe || stat(probe, &st) != 0) {
        free(probe);
        skip();
    }
    for (int n = 1; n <= 3; n++) {
        char *dir = cl_strdupf("%s/test_case_%d", probe, n);
        char *res =
            cl_strdupf("image-rs/test_data/signature/sigstore_config/merged_result/res%d.yaml", n);
        struct cl_err e = {0};
        struct cl_image_lookaside *merged = cl_image_lookaside_load(dir, &e);
        if (!merged)
            fail_msg("test_case_%d: %s", n, e.msg);
        size_t len = 0;
        cl_bytes *want_txt = vector(res, &len);
        assert_non_null(want_txt);
        struct cl_image_lookaside *want = cl_image_lookaside_parse((const char *)want_txt, len, &e);
        assert_non_null(want);
        json_t *a = cl_image_lookaside_json(merged), *b = cl_image_lookaside_json(want);
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
        cl_image_lookaside_free(merged);
        cl_image_lookaside_free(want);
        free(want_txt);
        free(dir);
        free(res);
    }
    /* get_base_url: per-namespace URLs with the default-docker fallback */
    size_t len = 0;
    cl_bytes *txt =
        vector("image-rs/test_data/signature/sigstore_config/get_base_url/res.yaml", &len);
    struct cl_image_lookaside *l = cl_image_lookaside_parse((const char *)txt, len, NULL);
    assert_non_null(l);
    static const struct {
        const char *ref, *url;
    } cases[] = {{"example1.com/a", "file:///var/lib/containers/sigstore"},
                 {"example2.com/a/b", "file:///var/lib/containers/sigstore"},
                 {"example3.com/a", "file:///default/sigstore"}};
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_image_ref r;
        assert_int_equal(cl_image_ref_parse(cases[i].ref, &r, NULL), 0);
        bool ss;
        cl_str *u = cl_image_lookaside_url(l, &r, &ss);
        assert_string_equal(u, cases[i].url);
        free(u);
        cl_image_ref_clear(&r);
    }
    cl_image_lookaside_free(l);
    free(txt);
    free(probe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_upstream_policy),
        cmocka_unit_test(test_scopes),       cmocka_unit_test(test_payload),
        cmocka_unit_test(test_cosign),       cmocka_unit_test(test_policy_gpg),
        cmocka_unit_test(test_upstream_gpg), cmocka_unit_test(test_policy_sigstore),
        cmocka_unit_test(test_lookaside),    cmocka_unit_test(test_upstream_lookaside_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
