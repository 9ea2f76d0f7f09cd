/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/kbs/config.c: every key honoured or refused by its dotted path and line,
 * TLS profiles as GnuTLS priorities, trustee's admin form, the effective configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kbs/kbs.h"

#define PLAIN "[http_server]\ninsecure_http = true\n"

static int parse(const char *t, struct cl_kbs_config *c, struct cl_err *e)
{
    memset(e, 0, sizeof *e);
    return cl_kbs_config_parse_named(t, strlen(t), "k.toml", c, e);
}

/* One case per refusal: the text, and what the message must contain (path and line). */
static void test_refusals_name_key_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {PLAIN "tls_profle = \"modern\"\n", "k.toml:3: 'http_server.tls_profle' is not a key"},
        {PLAIN "[attestation_token]\ninsecure_key_x = true\n",
         "k.toml:4: 'attestation_token.insecure_key_x'"},
        {PLAIN "[attestation_token]\ntrusted_jwk_sets = [\"http://x\"]\n",
         "k.toml:4: attestation_token.trusted_jwk_sets[0] = \"http://x\": plain http is not "
         "trusted"},
        {PLAIN "[attestation_service]\ntype = \"coco_as_grpc\"\nas_addr = \"x\"\n",
         "k.toml:4: attestation_service.type = \"coco_as_grpc\" is not supported"},
        {PLAIN "[attestation_service.rvps_config]\ntype = \"GrpcRemote\"\n",
         "k.toml:4: attestation_service.rvps_config.type"},
        {PLAIN "[attestation_service.rvps_config]\nstorage = { type = \"LocalFs\" }\n",
         "k.toml:4: 'attestation_service.rvps_config.storage' is not supported"},
        {PLAIN "[attestation_service.attestation_token_broker]\nverbose_token = false\n",
         "verbose_token = false"},
        {PLAIN "[attestation_service.attestation_token_broker.signer]\ncert_url = \"https://x\"\n",
         "signer.cert_url"},
        {PLAIN "[[plugins]]\nname = \"resource\"\n[[plugins]]\nname = \"nebula-ca\"\n",
         "k.toml:6: plugins[1].name = \"nebula-ca\""},
        {PLAIN "[[plugins]]\nname = \"resource\"\nstorage_backend_type = \"Vault\"\n",
         "k.toml:5: plugins[0].storage_backend_type = \"Vault\" is not supported"},
        {PLAIN "tls_profile = \"paranoid\"\n", "http_server.tls_profile = \"paranoid\""},
        {PLAIN "tls_min_version = \"1.1\"\n", "http_server.tls_min_version = \"1.1\""},
        {PLAIN "tls_min_version = \"1.3\"\ntls_max_version = \"1.2\"\n", "above tls_max_version"},
        {PLAIN "tls_ciphers = \"AES256-SHA\"\n", "suite \"AES256-SHA\""},
        {PLAIN "tls_groups = \"X25519MLKEM768:X25519\"\n", "group \"X25519MLKEM768\""},
        {PLAIN "[policy_engine]\npolicy = \"x\"\n", "k.toml:4: 'policy_engine.policy'"},
        {PLAIN "[admin]\nauthorization_mode = \"Open\"\n", "admin.authorization_mode = \"Open\""},
        {PLAIN "[admin]\nauthorization_mode = "
               "\"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\n"
               "identity_providers = [{ jwk_set_uri = \"https://idp\" }]\n",
         "identity_providers[0].jwk_set_uri' is not supported"},
        {PLAIN "[admin]\nauthorization_mode = "
               "\"AuthenticatedAuthorization\"\n[admin.authorization.regex_acl]\n"
               "acls = [{ role = \"a\", allowed_endpoints = \"^/kbs/.*$\", extra = 1 }]\n",
         "acls[0].extra"},
        {"unknown_top = 1\n" PLAIN, "k.toml:1: 'unknown_top'"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_kbs_config c;
        struct cl_err e;
        int rc = parse(bad[i].text, &c, &e);
        if (rc != CL_EINVAL)
            fail_msg("case %zu: rc %d, wanted EINVAL", i, rc);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("case %zu: '%s' does not contain '%s'", i, e.msg, bad[i].msg);
    }
}

/* Every error is reported, and counted. */
static void test_refusals_counted(void **state)
{
    (void)state;
    struct cl_kbs_config c;
    struct cl_err e;
    assert_int_equal(parse(PLAIN "a = 1\nb = 2\n[admin]\nc = 3\n", &c, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "3 keys refused"));
}

static void test_tls_priorities(void **state)
{
    (void)state;
    static const struct {
        const char *settings, *want, *absent;
    } cases[] = {
        {"", "+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM", NULL},
        {"tls_profile = \"modern\"\n", "-VERS-ALL:+VERS-TLS1.3", "TLS1.2"},
        {"tls_profile = \"old\"\n", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", "CIPHER-ALL"},
        {"tls_profile = \"intermediate\"\ntls_min_version = \"1.3\"\n", "+VERS-TLS1.3", "TLS1.2"},
        {"tls_profile = \"custom\"\ntls_max_version = \"1.2\"\n", "+VERS-TLS1.2", "TLS1.3"},
        {"tls_profile = \"custom\"\ntls_min_version = \"1.3\"\n"
         "tls_ciphers = \"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\"\ntls_groups = "
         "\"X25519:secp384r1\"\n",
         "-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP384R1",
         "AES-128"},
        {"tls_ciphers = \"ECDHE-RSA-AES256-GCM-SHA384\"\n", "+AES-256-GCM:-KX-ALL:+ECDHE-RSA",
         "ECDHE-ECDSA"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        char text[512];
        snprintf(text, sizeof text, PLAIN "%s", cases[i].settings);
        struct cl_kbs_config c;
        struct cl_err e;
        if (parse(text, &c, &e) != 0)
            fail_msg("case %zu refused: %s", i, e.msg);
        if (!strstr(c.tls_priorities, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, c.tls_priorities, cases[i].want);
        if (cases[i].absent && strstr(c.tls_priorities, cases[i].absent))
            fail_msg("case %zu: '%s' holds '%s'", i, c.tls_priorities, cases[i].absent);
        cl_kbs_config_clear(&c);
    }
}

static void test_admin_authenticated_and_effective(void **state)
{
    (void)state;
    char dir[] = "/tmp/kbscfg.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char key[64], text[1024];
    snprintf(key, sizeof key, "%s/k.pem", dir);
    FILE *f = fopen(key, "w");
    assert_non_null(f);
    /* an Ed25519 public key */
    fputs(
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAVmj1xrxcIJi1w+OPnP+fvo96pxUo1YX8dgdFwvlxDk8=\n"
        "-----END PUBLIC KEY-----\n",
        f);
    fclose(f);
    snprintf(text, sizeof text,
             PLAIN "[admin]\nauthorization_mode = "
                   "\"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\n"
                   "identity_providers = [{ issuer = \"iss\", audience = \"\", public_key_uri = "
                   "\"file://%s\" }]\n"
                   "[admin.authorization.regex_acl]\nacls = [{ role = \"admin\", allowed_endpoints "
                   "= \"^/kbs/.+$\" }]\n"
                   "[policy_engine]\npolicy_path = "
                   "\"/etc/p.rego\"\n[attestation_token]\ninsecure_key = true\n",
             key);
    struct cl_kbs_config c;
    struct cl_err e;
    if (parse(text, &c, &e) != 0)
        fail_msg("refused: %s", e.msg);
    assert_int_equal(c.admin_mode, CL_KBS_ADMIN_BEARER_JWT);
    assert_int_equal(c.nidps, 1);
    assert_string_equal(c.idps[0].issuer, "iss");
    assert_null(c.idps[0].audience); /* "" = not checked */
    assert_non_null(c.idps[0].key);
    assert_int_equal(c.nacls, 1);
    assert_string_equal(c.policy_path, "/etc/p.rego");
    assert_true(c.insecure_header_jwk);
    json_t *eff = cl_kbs_config_effective(&c);
    assert_non_null(eff);
    assert_string_equal(json_string_value(cl_json_pointer(eff, "/admin/authorization_mode")),
                        "AuthenticatedAuthorization");
    assert_string_equal(json_string_value(cl_json_pointer(eff, "/policy_engine/policy_path")),
                        "/etc/p.rego");
    assert_string_equal(json_string_value(cl_json_pointer(eff, "/http_server/tls_profile")),
                        "intermediate");
    json_decref(eff);
    cl_kbs_config_clear(&c);
    /* twin: the ACL pattern must be anchored as trustee requires */
    snprintf(text, sizeof text,
             PLAIN "[admin]\nauthorization_mode = "
                   "\"AuthenticatedAuthorization\"\n[admin.authorization.regex_acl]\n"
                   "acls = [{ role = \"admin\", allowed_endpoints = \"/kbs/.+\" }]\n");
    assert_int_equal(parse(text, &c, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "must start with ^/kbs"));
    /* twin: a key over plain http is refused by name (https: kbs-jwks-https.sh) */
    snprintf(text, sizeof text,
             PLAIN "[admin]\nauthorization_mode = "
                   "\"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\n"
                   "identity_providers = [{ public_key_uri = \"http://idp/key.pem\" }]\n");
    assert_int_equal(parse(text, &c, &e), CL_EINVAL);
    assert_non_null(
        strstr(e.msg, "public_key_uri = \"http://idp/key.pem\": plain http is not trusted"));
    unlink(key);
    rmdir(dir);
}

/* rediss://'s files come from the environment; a certificate without its key (or the
 * reverse) is refused by name, an empty value is unset. */
static void test_redis_tls_env(void **state)
{
    (void)state;
    struct cl_kbs_config c;
    struct cl_err e;
    static const char text[] =
        PLAIN "[storage_backend]\nstorage_type = \"Redis\"\n"
              "[storage_backend.backends.redis]\nurl = \"rediss://r:6380\"\n";
    setenv("CLOISTER_REDIS_CA_FILE", "/etc/ca.pem", 1);
    setenv("CLOISTER_REDIS_CERT_FILE", "/etc/c.pem", 1);
    setenv("CLOISTER_REDIS_KEY_FILE", "/etc/c.key", 1);
    if (parse(text, &c, &e) != 0)
        fail_msg("refused: %s", e.msg);
    assert_string_equal(c.redis_url, "rediss://r:6380");
    assert_string_equal(c.redis_ca_file, "/etc/ca.pem");
    assert_string_equal(c.redis_cert_file, "/etc/c.pem");
    assert_string_equal(c.redis_key_file, "/etc/c.key");
    cl_kbs_config_clear(&c);
    /* twins: one of the pair alone */
    setenv("CLOISTER_REDIS_KEY_FILE", "", 1);
    assert_int_equal(parse(text, &c, &e), CL_EINVAL);
    assert_non_null(
        strstr(e.msg, "CLOISTER_REDIS_CERT_FILE is set without CLOISTER_REDIS_KEY_FILE"));
    unsetenv("CLOISTER_REDIS_CERT_FILE");
    setenv("CLOISTER_REDIS_KEY_FILE", "/etc/c.key", 1);
    assert_int_equal(parse(text, &c, &e), CL_EINVAL);
    assert_non_null(
        strstr(e.msg, "CLOISTER_REDIS_KEY_FILE is set without CLOISTER_REDIS_CERT_FILE"));
    /* the CA alone is enough (no client certificate) */
    unsetenv("CLOISTER_REDIS_KEY_FILE");
    if (parse(text, &c, &e) != 0)
        fail_msg("refused: %s", e.msg);
    assert_null(c.redis_cert_file);
    cl_kbs_config_clear(&c);
    unsetenv("CLOISTER_REDIS_CA_FILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals_name_key_and_line),
        cmocka_unit_test(test_refusals_counted),
        cmocka_unit_test(test_tls_priorities),
        cmocka_unit_test(test_admin_authenticated_and_effective),
        cmocka_unit_test(test_redis_tls_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
