/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/toml/cfg.c, the table-driven configuration reader: each row type read and
 * bounded, every refusal named by dotted path and file:line and counted, the effective
 * configuration (defaults, secrets redacted) and the --check file checks. Each accepted form
 * has a refused twin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toml/cfg.h"
#include "toml/toml.h"

struct demo {
    char *name, *pass, *level, *file;
    bool on;
    unsigned port;
    size_t bytes;
    char *list[3];
    size_t nlist;
    char **nt;
    int seen; /* calls of the FUNC row */
};

static int fn_row(struct cl_cfg *c, const json_t *v, const char *path, void *base,
                  struct cl_err *err)
{
    ((struct demo *)base)->seen++;
    return json_is_integer(v) ? 0 : cl_err_set(err, CL_EINVAL, "t: '%s' must be an integer", path);
}

static json_t *fn_show(const void *base)
{
    return json_integer(((const struct demo *)base)->seen);
}

#define D struct demo
static const char *const levels[] = {"info", "warn", NULL};
static const struct cl_cfg_field sub_rows[] = {
    CL_CFG_E("level", D, level, levels, "is not info or warn", "info"),
    CL_CFG_AN("nt", D, nt, 2, 0),
    CL_CFG_END_ROW,
};
static const struct cl_cfg_field rows[] = {
    CL_CFG_S("name", D, name, CL_CFG_REQUIRED, NULL),
    CL_CFG_S("pass", D, pass, CL_CFG_SECRET, NULL),
    CL_CFG_S("file", D, file, CL_CFG_FILE | CL_CFG_URI, NULL),
    CL_CFG_B("on", D, on),
    CL_CFG_I("port", D, port, 1, 65535, 8080),
    CL_CFG_IS("mib", D, bytes, 1, 64, 2, 1024 * 1024),
    CL_CFG_A("list", D, list, nlist, 3, CL_CFG_URI_PIN),
    CL_CFG_T("sub", sub_rows),
    CL_CFG_F("fn", fn_row, fn_show),
    CL_CFG_NO("vault", "no vault here"),
    CL_CFG_IGN("old", "kept for compatibility"),
    CL_CFG_K("other"),
    CL_CFG_END_ROW,
};

static void demo_clear(struct demo *d)
{
    free(d->name);
    free(d->pass);
    free(d->level);
    free(d->file);
    for (size_t i = 0; i < d->nlist; i++)
        free(d->list[i]);
    for (size_t i = 0; d->nt && d->nt[i]; i++)
        free(d->nt[i]);
    free(d->nt);
    memset(d, 0, sizeof *d);
}

static int read_text(const char *t, struct demo *d, struct cl_err *e)
{
    memset(d, 0, sizeof *d);
    memset(e, 0, sizeof *e);
    json_t *doc = cl_toml_parse(t, strlen(t), e);
    if (!doc)
        return e->code;
    struct cl_cfg c;
    cl_cfg_begin(&c, "t", "d.toml", t, strlen(t));
    int rc = cl_cfg_finish(&c, cl_cfg_read(&c, doc, "", rows, d, e), e);
    json_decref(doc);
    return rc;
}

/* A PKCS#11 URI's pin-value is not shown by --check; the rest of the URI is. */
static void test_uri_pin_redacted(void **state)
{
    (void)state;
    struct demo d;
    struct cl_err e;
    const char *text =
        "name = \"n\"\nlist = [\"pkcs11:token=t;object=k?module-path=/m.so&pin-value="
        "1234\", \"pkcs11:token=t?pin-value=98&pin-value=76\", \"plain?x=1\"]\n";
    if (read_text(text, &d, &e) != 0)
        fail_msg("%s", e.msg);
    json_t *eff = cl_cfg_effective(rows, &d);
    char *txt = json_dumps(eff, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(
        strstr(txt, "\"pkcs11:token=t;object=k?module-path=/m.so&pin-value=<redacted>\""));
    assert_non_null(strstr(txt, "\"pkcs11:token=t?pin-value=<redacted>&pin-value=<redacted>\""));
    assert_non_null(strstr(txt, "\"plain?x=1\""));
    assert_null(strstr(txt, "1234"));
    assert_null(strstr(txt, "98"));
    assert_null(strstr(txt, "76"));
    free(txt);
    json_decref(eff);
    demo_clear(&d);
}

static void test_rows_read(void **state)
{
    (void)state;
    struct demo d;
    struct cl_err e;
    const char *ok = "name = \"n\"\npass = \"s3cret\"\non = true\nport = 443\nmib = 3\n"
                     "list = [\"a\", \"b\"]\nfn = 1\nvault = []\nold = 1\nother = 2\n"
                     "[sub]\nlevel = \"warn\"\nnt = [\"x\"]\n";
    if (read_text(ok, &d, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(d.name, "n");
    assert_true(d.on);
    assert_int_equal(d.port, 443);
    assert_int_equal(d.bytes, 3u * 1024 * 1024);
    assert_int_equal(d.nlist, 2);
    assert_string_equal(d.list[1], "b");
    assert_string_equal(d.level, "warn");
    assert_string_equal(d.nt[0], "x");
    assert_null(d.nt[1]);
    assert_int_equal(d.seen, 1);
    json_t *eff = cl_cfg_effective(rows, &d);
    char *txt = json_dumps(eff, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(strstr(txt, "\"pass\":\"<redacted>\""));
    assert_null(strstr(txt, "s3cret"));
    assert_non_null(strstr(txt, "\"mib\":3"));
    assert_non_null(strstr(txt, "\"fn\":1"));
    assert_null(strstr(txt, "vault"));
    assert_null(strstr(txt, "other"));
    free(txt);
    json_decref(eff);
    demo_clear(&d);
    /* defaults shown when unset */
    assert_int_equal(read_text("name = \"n\"\n", &d, &e), 0);
    eff = cl_cfg_effective(rows, &d);
    txt = json_dumps(eff, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(strstr(txt, "\"port\":8080"));
    assert_non_null(strstr(txt, "\"mib\":2"));
    assert_non_null(strstr(txt, "\"level\":\"info\""));
    assert_non_null(strstr(txt, "\"pass\":null"));
    free(txt);
    json_decref(eff);
    demo_clear(&d);
}

/* The twins: each one refused, the message naming the key (and its line for refusals). */
static void test_rows_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int code;
        const char *msg;
    } bad[] = {
        {"port = 1\n", CL_EINVAL, "'name' is missing"},
        {"name = 1\n", CL_EINVAL, "'name' must be a string"},
        {"name = \"n\"\non = 1\n", CL_EINVAL, "'on' must be true or false"},
        {"name = \"n\"\nport = 0\n", CL_EINVAL, "'port' must be an integer in 1..65535"},
        {"name = \"n\"\nport = 65536\n", CL_EINVAL, "'port' must be an integer in 1..65535"},
        {"name = \"n\"\nmib = 65\n", CL_EINVAL, "'mib' must be an integer in 1..64"},
        {"name = \"n\"\nlist = [\"a\", \"b\", \"c\", \"d\"]\n", CL_ELIMIT, "at most 3 strings"},
        {"name = \"n\"\nlist = [1]\n", CL_EINVAL, "list[0] must be a string"},
        {"name = \"n\"\nsub = 1\n", CL_EINVAL, "'sub' must be a table"},
        {"name = \"n\"\nfn = \"x\"\n", CL_EINVAL, "'fn' must be an integer"},
        {"name = \"n\"\n[sub]\nnt = [\"a\", \"b\", \"c\"]\n", CL_ELIMIT, "'sub.nt'"},
        {"name = \"n\"\nnaem = 1\n", CL_EINVAL, "d.toml:2: 'naem' is not a key Cloister supports"},
        {"name = \"n\"\n\n[sub]\nlevl = 1\n", CL_EINVAL, "d.toml:4: 'sub.levl' is not a key"},
        {"name = \"n\"\n[sub]\nlevel = \"debug\"\n", CL_EINVAL,
         "d.toml:3: sub.level = \"debug\" is not info or warn"},
        {"name = \"n\"\nvault = [\"v\"]\n", CL_EINVAL,
         "d.toml:2: 'vault' is not supported: no vault here"},
        {"a = 1\nb = 2\nname = \"n\"\n", CL_EINVAL, "2 keys refused, the first: t: d.toml:1: 'a'"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct demo d;
        struct cl_err e;
        int rc = read_text(bad[i].text, &d, &e);
        if (rc != bad[i].code || !strstr(e.msg, bad[i].msg))
            fail_msg("case %zu: rc %d '%s', wanted %d '%s'", i, rc, e.msg, bad[i].code, bad[i].msg);
        demo_clear(&d);
    }
}

/* A refusal and a later hard error: the refusal is what the caller sees. */
static void test_refusal_first(void **state)
{
    (void)state;
    struct demo d;
    struct cl_err e;
    assert_int_equal(read_text("zz = 1\nname = \"n\"\nport = 0\n", &d, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "'zz' is not a key"));
    demo_clear(&d);
}

static void test_check_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/cl-cfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char present[64], absent[64], uri[80];
    snprintf(present, sizeof present, "%s/present", dir);
    snprintf(absent, sizeof absent, "%s/absent", dir);
    assert_int_equal(cl_file_write_atomic(present, "x", 1, 0600, NULL), 0);
    struct demo d = {0};
    struct cl_err e = {0};
    d.file = present;
    assert_int_equal(cl_cfg_check_files("t", rows, &d, "", 1024, NULL, &e), 0);
    snprintf(uri, sizeof uri, "file://%s", present);
    d.file = uri;
    assert_int_equal(cl_cfg_check_files("t", rows, &d, "", 1024, NULL, &e), 0);
    d.file = "kbs:///a/b/c"; /* fetched later, not a file */
    assert_int_equal(cl_cfg_check_files("t", rows, &d, "", 1024, NULL, &e), 0);
    d.file = absent; /* the twin */
    assert_int_equal(cl_cfg_check_files("t", rows, &d, "", 1024, NULL, &e), CL_ENOTFOUND);
    assert_non_null(strstr(e.msg, "t: 'file'"));
    snprintf(uri, sizeof uri, "file://%s", absent);
    d.file = uri;
    assert_int_equal(cl_cfg_check_files("t", rows, &d, "", 1024, NULL, &e), CL_ENOTFOUND);
    unlink(present);
    rmdir(dir);
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_read),    cmocka_unit_test(test_uri_pin_redacted),
        cmocka_unit_test(test_rows_refused), cmocka_unit_test(test_refusal_first),
        cmocka_unit_test(test_check_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
