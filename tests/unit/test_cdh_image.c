/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hub's image pull service without a registry: the [image] table of cdh.toml (upstream's
 * example config, an inline [image.registry_config] turned back into registries.conf TOML
 * that src/image accepts and resolves, one case per rejection) and the checks PullImage makes
 * before any byte is fetched (bundle path, image reference, no policy = deny). The pull
 * itself runs against a docker-registry in tests/integration/agent-run.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cdh/cdh.h"
#include "image/image.h"
#include "image/image_parts.h"

static void test_example_config(void **state)
{
    (void)state;
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    char path[512];
    snprintf(path, sizeof path, "%s/guest-components/confidential-data-hub/example.config.toml",
             v ? v : "");
    struct stat st;
    if (!v || stat(path, &st) != 0)
        skip();
    struct cl_cdh_config cfg;
    struct cl_err err = {0};
    assert_int_equal(cl_cdh_config_load(path, &cfg, &err), 0);
    const struct cl_cdh_image_config *im = &cfg.image;
    assert_int_equal(im->max_concurrent, 3);
    assert_non_null(im->registry_config);
    assert_null(strstr(im->registry_config, "work_dir"));
    assert_string_equal(im->sigstore_config_uri, "kbs:///default/sigstore-config/test");
    assert_string_equal(im->policy_uri, "kbs:///default/security-policy/test");
    assert_string_equal(im->auth_uri, "kbs:///default/credential/test");
    assert_string_equal(im->registry_config_uri, "kbs:///default/registry-configuration/test");
    /* upstream's example puts work_dir and extra_root_certificates after a
     * [[image.registry_config.registry.mirror]] header: TOML makes them keys of that mirror,
     * where upstream's serde drops them, and so does the hub (with a warning) */
    assert_null(im->work_dir);
    assert_int_equal(im->ncerts, 0);
    assert_string_equal(im->https_proxy, "http://127.0.0.1:5432");
    assert_string_equal(im->http_proxy, "http://127.0.0.1:5432");
    assert_string_equal(im->no_proxy, "192.168.0.1,localhost");
    /* the inline registry table comes back as TOML that src/image reads and applies */
    assert_non_null(im->registry_config);
    struct cl_image_regconf *rc =
        cl_image_regconf_parse(im->registry_config, strlen(im->registry_config), &err);
    assert_non_null(rc);
    struct cl_image_ref ref;
    struct cl_image_endpoint eps[8];
    size_t n = 0;
    assert_int_equal(cl_image_ref_parse("example.com/banned/app:1", &ref, &err), 0);
    assert_int_equal(cl_image_regconf_resolve(rc, &ref, eps, &n, &err), CL_EDENIED);
    cl_image_ref_clear(&ref);
    assert_int_equal(cl_image_ref_parse("example.com/foo/app:1", &ref, &err), 0);
    assert_int_equal(cl_image_regconf_resolve(rc, &ref, eps, &n, &err), 0);
    assert_int_equal(n, 3); /* two mirrors, then the remapped location */
    assert_string_equal(eps[0].host, "example-mirror-0.local");
    assert_true(eps[1].insecure);
    assert_string_equal(eps[2].host, "internal-registry-for-example.com");
    assert_string_equal(eps[2].repository, "bar/app");
    for (size_t i = 0; i < n; i++)
        cl_image_endpoint_clear(&eps[i]);
    cl_image_ref_clear(&ref);
    cl_image_regconf_free(rc);
    cl_cdh_config_clear(&cfg);
}

static void test_inline(void **state)
{
    (void)state;
    const char *toml = "[image]\n"
                       "image_security_policy = '{\"default\":[{\"type\":\"reject\"}]}'\n"
                       "max_concurrent_layer_downloads_per_image = 16\n"
                       "[image.registry_config]\n"
                       "[[image.registry_config.registry]]\n"
                       "location = \"127.0.0.1:5000\"\n"
                       "insecure = true\n"
                       "[[image.registry_config.registry]]\n"
                       "prefix = \"q.io/a\\\"b\"\n"
                       "blocked = true\n";
    struct cl_cdh_config cfg;
    struct cl_err err = {0};
    assert_int_equal(cl_cdh_config_parse(toml, strlen(toml), &cfg, &err), 0);
    assert_int_equal(cfg.image.max_concurrent, 16);
    assert_non_null(strstr(cfg.image.policy, "reject"));
    assert_null(cfg.image.policy_uri);
    struct cl_image_regconf *rc =
        cl_image_regconf_parse(cfg.image.registry_config, strlen(cfg.image.registry_config), &err);
    assert_non_null(rc);
    cl_image_regconf_free(rc);
    cl_cdh_config_clear(&cfg);
    /* no [image]: defaults */
    assert_int_equal(cl_cdh_config_parse("", 0, &cfg, &err), 0);
    assert_int_equal(cfg.image.max_concurrent, 3);
    assert_null(cfg.image.registry_config);
    cl_cdh_config_clear(&cfg);
}

static void test_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "image = 1\n",
        "[image]\nmax_concurrent_layer_downloads_per_image = 0\n",
        "[image]\nmax_concurrent_layer_downloads_per_image = 17\n",
        "[image]\nmax_concurrent_layer_downloads_per_image = \"3\"\n",
        "[image]\nwork_dir = 5\n",
        "[image]\nimage_security_policy_uri = true\n",
        "[image]\nextra_root_certificates = \"pem\"\n",
        "[image]\nextra_root_certificates = [1]\n",
        "[image]\nimage_pull_proxy = \"x\"\n",
        "[image.image_pull_proxy]\nhttps_proxy = 1\n",
        "[image]\nregistry_config = \"x\"\n",
        "[image.registry_config]\nunqualified-search-registries = [[1]]\n",
        "[image.registry_config]\nunqualified-search-registries = 1.5\n",
        "[image.registry_config]\n[image.registry_config.registry]\nlocation = \"x\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cl_cdh_config cfg;
        struct cl_err err = {0};
        int rc = cl_cdh_config_parse(bad[i], strlen(bad[i]), &cfg, &err);
        if (rc == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err.msg[0] != 0);
        cl_cdh_config_clear(&cfg);
    }
}

static void test_pull_checks(void **state)
{
    (void)state;
    struct cl_cdh_config cfg;
    struct cl_err err = {0};
    const char *toml = "[kbc]\nname = \"offline_fs_kbc\"\noffline_files = []\n";
    assert_int_equal(cl_cdh_config_parse(toml, strlen(toml), &cfg, &err), 0);
    struct cl_cdh *cdh = cl_cdh_new(&cfg, &err);
    assert_non_null(cdh);
    cl_str *digest = NULL;
    const char *bundles[] = {"", "relative/b", "/run/../etc", "/run/./b", "/a/b/.."};
    for (size_t i = 0; i < sizeof bundles / sizeof bundles[0]; i++)
        assert_int_equal(cl_cdh_pull_image(cdh, "busybox", bundles[i], &digest, &err), CL_EINVAL);
    assert_int_equal(cl_cdh_pull_image(cdh, "", "/run/b", &digest, &err), CL_EINVAL);
    assert_int_equal(cl_cdh_pull_image(cdh, NULL, "/run/b", &digest, &err), CL_EINVAL);
    /* no image security policy: every pull is refused, before the network */
    assert_int_equal(
        cl_cdh_pull_image(cdh, "127.0.0.1:1/x:1", "/tmp/cl-cdh-image-b", &digest, &err),
        CL_EDENIED);
    assert_non_null(strstr(err.msg, "no image security policy"));
    assert_null(digest);
    cl_cdh_free(cdh);
    cl_cdh_config_clear(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_pull_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
