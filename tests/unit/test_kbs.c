/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/kbs: configuration, resource path grammar, protocol messages, sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "kbs/kbs_internal.h"

static void test_config_defaults_and_names(void **state)
{
    (void)state;
    const char *t =
        "[http_server]\nsockets = [\"127.0.0.1:1234\", \"[::1]:1235\"]\ninsecure_http = true\n"
        "payload_request_size = 3\n[attestation_service]\ntype = \"coco_as_builtin\"\ntimeout = 7\n"
        "allow_sample_tee_insecure = true\n[attestation_service.attestation_token_broker]\n"
        "duration_min = 9\n[attestation_token]\ninsecure_header_jwk = true\n"
        "extra_teekey_paths = [\"/x\"]\n[admin]\ntype = \"InsecureAllowAll\"\n"
        "[storage_backend]\nstorage_type = \"Memory\"\n[[plugins]]\nname = \"resource\"\n"
        "type = \"LocalFs\"\ndir_path = \"/tmp/x\"\n";
    struct cl_kbs_config c;
    struct cl_err e = {0};
    assert_int_equal(cl_kbs_config_parse(t, strlen(t), &c, &e), 0);
    assert_int_equal(c.nsockets, 2);
    assert_string_equal(c.sockets[1], "[::1]:1235");
    assert_int_equal(c.payload_max, 3u * 1024 * 1024);
    assert_int_equal(c.session_timeout_min, 7);
    assert_int_equal(c.token_duration_min, 9);
    assert_true(c.allow_sample_tee_insecure);
    assert_true(c.insecure_header_jwk);
    assert_int_equal(c.nextra_teekey_paths, 1);
    assert_int_equal(c.admin_mode, CL_KBS_ADMIN_ALLOW_ALL_INSECURE);
    assert_string_equal(c.resource_dir, "/tmp/x");
    cl_kbs_config_clear(&c);
    /* empty config: HTTPS without key material is refused */
    assert_int_equal(cl_kbs_config_parse("", 0, &c, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "private_key"));
    const char *plain = "[http_server]\ninsecure_http = true\n";
    assert_int_equal(cl_kbs_config_parse(plain, strlen(plain), &c, &e), 0);
    assert_string_equal(c.sockets[0], "127.0.0.1:8080");
    assert_int_equal(c.admin_mode, CL_KBS_ADMIN_DENY_ALL);
    assert_false(c.allow_sample_tee_insecure);
    assert_int_equal(c.session_timeout_min, 5);
    cl_kbs_config_clear(&c);
}

/* The CCA and CSV verifier settings reach the verifier configuration; cca/csv have verifiers. */
static void test_config_cca_csv(void **state)
{
    (void)state;
    const char *t =
        "[http_server]\ninsecure_http = true\n[attestation_service.verifier_config.cca_verifier]\n"
        "ta_store = \"/etc/cca/ta.json\"\nrv_store = \"/etc/cca/rv.json\"\n"
        "[attestation_service.verifier_config.csv_verifier]\ncert_dir = \"/var/lib/hygon\"\n";
    struct cl_kbs_config c;
    struct cl_err e = {0};
    assert_int_equal(cl_kbs_config_parse(t, strlen(t), &c, &e), 0);
    assert_string_equal(c.tee.cca_ta_store, "/etc/cca/ta.json");
    assert_string_equal(c.tee.cca_rv_store, "/etc/cca/rv.json");
    assert_string_equal(c.tee.csv_cert_dir, "/var/lib/hygon");
    cl_kbs_config_clear(&c);
    const char *bad =
        "[http_server]\ninsecure_http = true\n[attestation_service.verifier_config.cca_verifier]\n"
        "ta_store = 3\n";
    assert_int_equal(cl_kbs_config_parse(bad, strlen(bad), &c, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "cca_verifier.ta_store"));
    assert_non_null(cl_tee_verifier_find("cca"));
    assert_non_null(cl_tee_verifier_find("csv"));
}

static void test_config_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text, *names;
    } bad[] = {
        {"[http_server]\nsockets = \"x\"\ninsecure_http = true\n", "http_server.sockets"},
        {"[http_server]\nsockets = [1]\ninsecure_http = true\n", "http_server.sockets[0]"},
        {"[http_server]\ninsecure_http = \"yes\"\n", "http_server.insecure_http"},
        {"[http_server]\ninsecure_http = true\npayload_request_size = 0\n", "payload_request_size"},
        {"[http_server]\ninsecure_http = true\npayload_request_size = 65\n",
         "payload_request_size"},
        {"http_server = 3\n", "http_server"},
        {"[http_server]\ninsecure_http = true\n[attestation_service]\ntype = \"coco_as_grpc\"\n",
         "attestation_service.type"},
        {"[http_server]\ninsecure_http = true\n[attestation_service]\ntimeout = -1\n",
         "attestation_service.timeout"},
        {"[http_server]\ninsecure_http = true\n[admin]\ntype = \"Whatever\"\n", "admin.type"},
        {"[http_server]\ninsecure_http = true\n[[admin.personas]]\nid = \"x\"\n",
         "admin.personas[0]"},
        {"[http_server]\ninsecure_http = true\n[[admin.personas]]\nid = \"x\"\npublic_key_path = "
         "\"/nonexistent\"\n",
         "public_key_path"},
        {"plugins = 1\n[http_server]\ninsecure_http = true\n", "plugins"},
        {"[http_server]\ninsecure_http = true\n[[plugins]]\nname = 1\n", "plugins[0]"},
        {"[http_server\n", "line 1"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_kbs_config c;
        struct cl_err e = {0};
        int rc = cl_kbs_config_parse(bad[i].text, strlen(bad[i].text), &c, &e);
        if (rc == 0)
            fail_msg("config %zu accepted", i);
        if (!strstr(e.msg, bad[i].names))
            fail_msg("config %zu: error '%s' does not name '%s'", i, e.msg, bad[i].names);
    }
}

static void test_resource_paths(void **state)
{
    (void)state;
    static const char *const good[] = {"a/b/c", "default/key/one", "A-1/b_2/c.3", "a/b/c..d",
                                       "a/b/-x"};
    static const char *const bad[] = {"",       "a/b",    "a/b/c/d",  "../b/c",       "a/../c",
                                      "a/b/..", ".a/b/c", "a/.b/c",   "a//c",         "a/b/",
                                      "/a/b/c", "a/b/c ", "a/b/c%2F", "a/b/\xc3\xa9", "a/b/c\n"};
    for (size_t i = 0; i < CL_ARRAY_LEN(good); i++)
        assert_true(cl_kbs_resource_path_valid(good[i]));
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++)
        if (cl_kbs_resource_path_valid(bad[i]))
            fail_msg("path '%s' accepted", bad[i]);
    char longseg[300];
    memset(longseg, 'a', sizeof longseg);
    memcpy(longseg, "a/b/", 4);
    longseg[sizeof longseg - 1] = 0;
    assert_false(cl_kbs_resource_path_valid(longseg));
}

static void test_request_parse(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int code;
    } cases[] = {
        {"{\"version\":\"0.4.0\",\"tee\":\"sample\",\"extra-params\":\"\"}", 0},
        {"{\"version\":\"0.4.0+meta\",\"tee\":\"tdx\"}", 0},
        {"{\"version\":\"0.4.0-rc1\",\"tee\":\"sample\"}", CL_EUNSUPPORTED},
        {"{\"version\":\"0.4\",\"tee\":\"sample\"}", CL_EUNSUPPORTED},
        {"{\"version\":\"0.4.0+\",\"tee\":\"sample\"}", CL_EUNSUPPORTED},
        {"{\"version\":\"0.3.0\",\"tee\":\"sample\"}", CL_EUNSUPPORTED},
        {"{\"version\":\"0.4.0\",\"tee\":\"SAMPLE\"}", CL_EPARSE},
        {"{\"version\":\"0.4.0\"}", CL_ENOTFOUND},
        {"{\"version\":4,\"tee\":\"sample\"}", CL_EPARSE},
        {"[]", CL_EPARSE},
        {"", CL_EPARSE},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_kbs_request r;
        struct cl_err e = {0};
        int rc =
            cl_kbs_request_parse((const uint8_t *)cases[i].body, strlen(cases[i].body), &r, &e);
        if (rc != cases[i].code)
            fail_msg("request %zu: rc %d want %d (%s)", i, rc, cases[i].code, e.msg);
    }
}

#define JWK                                                                                        \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\","                                \
    "\"x\":\"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis\",\"y\":\"y77t-"                          \
    "RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE\"}"

static void test_attestation_parse(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int code;
        const char *names;
    } cases[] = {
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":" JWK
         "},\"tee-evidence\":{\"primary_evidence\":{},"
         "\"additional_evidence\":\"\"}}",
         0, NULL},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":" JWK
         "},\"tee-evidence\":{\"primary_evidence\":{},"
         "\"additional_evidence\":\"{\\\"sampledevice\\\":{}}\"}}",
         0, NULL},
        {"{\"tee-evidence\":{}}", CL_ENOTFOUND, "runtime-data"},
        {"{\"runtime-data\":{\"tee-pubkey\":" JWK "},\"tee-evidence\":{}}", CL_ENOTFOUND, "nonce"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":" JWK "},\"tee-evidence\":{}}",
         CL_EPARSE, "primary_evidence"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":" JWK
         "},\"tee-evidence\":{\"primary_evidence\":{},"
         "\"additional_evidence\":{}}}",
         CL_EPARSE, "additional_evidence"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":" JWK
         "},\"tee-evidence\":{\"primary_evidence\":{},"
         "\"additional_evidence\":\"[1]\"}}",
         CL_EPARSE, "additional_evidence"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":" JWK
         "},\"tee-evidence\":{\"primary_evidence\":{}},"
         "\"init-data\":{\"format\":\"json\",\"body\":\"{}\"}}",
         CL_EUNSUPPORTED, "initdata format"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-384\","
         "\"alg\":\"ECDH-ES+A256KW\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{}}}",
         CL_EUNSUPPORTED, "P-384"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\","
         "\"n\":\"AQAB\",\"e\":\"AQAB\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{}}}",
         CL_EUNSUPPORTED, "RSA-OAEP"},
        {"{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\","
         "\"alg\":\"ECDH-ES+A256KW\","
         "\"x\":\"AAAA\",\"y\":\"AAAA\"}},\"tee-evidence\":{\"primary_evidence\":{}}}",
         -1, "tee-pubkey"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_kbs_attestation a;
        struct cl_err e = {0};
        int rc =
            cl_kbs_attestation_parse((const uint8_t *)cases[i].body, strlen(cases[i].body), &a, &e);
        if (cases[i].code == -1 ? rc == 0 : rc != cases[i].code)
            fail_msg("attestation %zu: rc %d want %d (%s)", i, rc, cases[i].code, e.msg);
        if (cases[i].names && !strstr(e.msg, cases[i].names))
            fail_msg("attestation %zu: '%s' does not name '%s'", i, e.msg, cases[i].names);
        if (rc == 0) {
            struct cl_as_item items[CL_AS_MAX_ITEMS];
            size_t n = cl_kbs_attestation_items(&a, "sample", items);
            assert_int_equal(n, a.devices ? 2 : 1);
            assert_non_null(json_object_get(a.rd_primary, "additional-evidence"));
            assert_null(json_object_get(a.rd_device, "additional-evidence"));
            cl_kbs_attestation_clear(&a);
        }
    }
}

/* Sessions in a shared store: max_sessions counts the unexpired sessions each replica created
 * (two replicas = two sessions tables on one store). */
static void test_sessions_shared(void **state)
{
    (void)state;
    struct cl_err e = {0};
    struct cl_store *db = cl_store_open("Memory", NULL, &e);
    assert_non_null(db);
    struct cl_kbs_sessions a, b;
    assert_int_equal(cl_kbs_sessions_init(&a, 2, 1), 0);
    assert_int_equal(cl_kbs_sessions_init(&b, 2, 1), 0);
    a.shared = b.shared = db;
    char id[4][KBS_SESSION_ID_LEN + 1], nonce[KBS_NONCE_B64_LEN + 1];
    int64_t exp;
    assert_int_equal(cl_kbs_session_create(&a, "sample", id[0], nonce, &exp, &e), 0);
    assert_int_equal(cl_kbs_session_create(&a, "sample", id[1], nonce, &exp, &e), 0);
    assert_int_equal(cl_kbs_session_create(&a, "sample", id[2], nonce, &exp, &e), CL_ELIMIT);
    assert_non_null(strstr(e.msg, "per replica"));
    /* the other replica has its own budget, and sees replica a's sessions */
    assert_int_equal(cl_kbs_session_create(&b, "sample", id[2], nonce, &exp, &e), 0);
    struct cl_kbs_session got;
    assert_int_equal(cl_kbs_session_get(&b, id[0], &got, &e), 0);
    free(got.token);
    sleep(2); /* lifetime 1 s: replica a has room again */
    assert_int_equal(cl_kbs_session_create(&a, "sample", id[3], nonce, &exp, &e), 0);
    cl_kbs_sessions_destroy(&a);
    cl_kbs_sessions_destroy(&b);
    cl_store_close(db);
}

static void test_sessions(void **state)
{
    (void)state;
    struct cl_kbs_sessions s;
    assert_int_equal(cl_kbs_sessions_init(&s, 3, 1), 0);
    char id[4][KBS_SESSION_ID_LEN + 1], nonce[KBS_NONCE_B64_LEN + 1];
    int64_t exp;
    struct cl_err e = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cl_kbs_session_create(&s, "sample", id[i], nonce, &exp, &e), 0);
        assert_int_equal(strlen(id[i]), 32);
        assert_int_equal(strlen(nonce), 44);
    }
    assert_int_equal(cl_kbs_session_create(&s, "sample", id[3], nonce, &exp, &e),
                     CL_ELIMIT); /* full, none expired */
    struct cl_kbs_session got;
    assert_int_equal(cl_kbs_session_get(&s, id[0], &got, &e), 0);
    assert_null(got.token);
    assert_string_equal(got.tee, "sample");
    /* a challenge is used once: a token only after a claim, a second claim refused */
    assert_int_equal(cl_kbs_session_set_token(&s, id[0], "tok", &e), CL_EEXISTS);
    assert_int_equal(cl_kbs_session_claim(&s, id[0], &e), 0);
    assert_int_equal(cl_kbs_session_claim(&s, id[0], &e), CL_EEXISTS);
    assert_int_equal(cl_kbs_session_set_token(&s, id[0], "tok", &e), 0);
    assert_int_equal(cl_kbs_session_set_token(&s, id[0], "tok2", &e), CL_EEXISTS);
    assert_int_equal(cl_kbs_session_get(&s, id[0], &got, &e), 0);
    assert_string_equal(got.token, "tok");
    assert_int_equal(got.state, KBS_SESSION_ATTESTED);
    free(got.token);
    assert_int_equal(cl_kbs_session_get(&s, "0123456789abcdef0123456789abcdef", &got, &e),
                     CL_ENOTFOUND);
    assert_int_equal(cl_kbs_session_get(&s, "short", &got, &e), CL_ENOTFOUND);
    sleep(2); /* lifetime 1 s */
    assert_int_equal(cl_kbs_session_get(&s, id[1], &got, &e), CL_EEXPIRED);
    assert_int_equal(cl_kbs_session_get(&s, id[1], &got, &e), CL_ENOTFOUND); /* removed on read */
    assert_int_equal(cl_kbs_session_create(&s, "sample", id[3], nonce, &exp, &e),
                     0);                            /* room again */
    assert_int_equal(cl_kbs_sessions_purge(&s), 2); /* id[0] and id[2] had expired */
    assert_int_equal(cl_kbs_session_get(&s, id[3], &got, &e), 0);
    free(got.token);
    cl_kbs_sessions_destroy(&s);
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_and_names),
        cmocka_unit_test(test_config_rejects),
        cmocka_unit_test(test_config_cca_csv),
        cmocka_unit_test(test_resource_paths),
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_attestation_parse),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_sessions_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
