/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/kbs/jwks.c without the network: JWKS text (keys with a kid, bounded),
 * file sources, and that nothing is fetched unless the process allows it. https fetching,
 * discovery and the reload on an unknown kid: tests/integration/kbs-jwks-https.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kbs/jwks.h"

#define KEY                                                                                        \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":"                                       \
    "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":"                                       \
    "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"

static int add(const char *text, json_t *all, struct cl_err *e)
{
    return cl_kbs_jwks_add("t", text, strlen(text), all, e);
}

static void test_jwks_text(void **state)
{
    (void)state;
    struct cl_err e = {0};
    json_t *all = json_array();
    assert_int_equal(add("{\"keys\":[" KEY "]}", all, &e), 0);
    assert_int_equal(json_array_size(all), 1);
    /* twins: no kid, not a JWKS, a broken key, too many keys */
    assert_int_equal(add("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
                         "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":"
                         "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
                         all, &e),
                     CL_EPARSE);
    assert_non_null(strstr(e.msg, "no string 'kid'"));
    assert_int_equal(add("{\"keys\":{}}", all, &e), CL_EPARSE);
    assert_non_null(strstr(e.msg, "is not a JWKS"));
    assert_true(add("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":\"AA\","
                    "\"y\":\"AA\"}]}",
                    all, &e) < 0);
    char big[(CL_KBS_JWKS_MAX_KEYS + 2) * (sizeof KEY + 1) + 32];
    int o = snprintf(big, sizeof big, "{\"keys\":[");
    for (int i = 0; i <= CL_KBS_JWKS_MAX_KEYS; i++)
        o += snprintf(big + o, sizeof big - (size_t)o, "%s%s", i ? "," : "", KEY);
    snprintf(big + o, sizeof big - (size_t)o, "]}");
    assert_int_equal(add(big, all, &e), CL_ELIMIT);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
}

static void test_sources(void **state)
{
    (void)state;
    char path[] = "/tmp/cl-jwks-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "{\"keys\":[" KEY "]}";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct cl_err e = {0};
    json_t *all = json_array();
    char uri[64];
    snprintf(uri, sizeof uri, "file://%s", path);
    assert_int_equal(cl_kbs_jwks_source("t", uri, all, &e), 0);
    assert_int_equal(cl_kbs_jwks_source("t", path, all, &e), 0);
    assert_int_equal(json_array_size(all), 2);
    unlink(path);
    /* twins: a missing file; https while this process fetches nothing; plain http */
    assert_true(cl_kbs_jwks_source("t", path, all, &e) < 0);
    assert_int_equal(cl_kbs_jwks_source("t", "https://127.0.0.1:9/jwks", all, &e), CL_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "fetches no keys over the network"));
    cl_kbs_jwks_allow_fetch(true);
    assert_int_equal(cl_kbs_jwks_source("t", "http://127.0.0.1:9/jwks", all, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "is not https://"));
    cl_kbs_jwks_allow_fetch(false);
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks_text),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
