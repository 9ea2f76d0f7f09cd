/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOML reader tests, table-driven: the documents Cloister reads (kbs-config.toml shapes,
 * init-data with TOML and Rego inside multi-line strings) and the corners of TOML 1.0 each
 * map to an expected JSON text; every rejection branch of the parser has a case that checks
 * the code and that the message names the line and the fault. Then the limits (size, depth,
 * key parts), hostile shapes that would be quadratic in a careless parser, the tagged form,
 * and file loading.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "toml/toml.h"

static void drop(json_t **v)
{
    json_decref(*v);
}
#define AUTO_JSON __attribute__((cleanup(drop))) json_t

/* A string literal and its length, so that cases may hold NUL bytes. */
#define TXT(s) s, sizeof(s) - 1

/* ---- documents that parse ---- */

struct good {
    const char *name;
    const char *text;
    size_t len;
    const char *json; /* expected value of cl_toml_parse */
};

static const struct good good_cases[] = {
    {"empty", TXT(""), "{}"},
    {"only comments and blanks", TXT("# hello\n\n   \t\n# bye"), "{}"},
    {"bom",
     TXT("\xEF\xBB\xBF"
         "a = 1\n"),
     "{\"a\": 1}"},
    {"crlf", TXT("a = 1\r\nb = 'x'\r\n"), "{\"a\": 1, \"b\": \"x\"}"},
    {"no final newline", TXT("a = true"), "{\"a\": true}"},

    /* kbs-config.toml as Cloister's KBS reads it */
    {"kbs http_server",
     TXT("[http_server]\nsockets = [\"127.0.0.1:8080\"]\ninsecure_http = true\n"),
     "{\"http_server\": {\"sockets\": [\"127.0.0.1:8080\"], \"insecure_http\": true}}"},
    {"kbs plugins (array of tables)",
     TXT("[[plugins]]\nname = \"resource\"\ntype = \"LocalFs\"\n"
         "dir_path = \"/opt/confidential-containers/kbs/repository\"\n\n"
         "[[plugins]]\nname = \"sample\"\nitem = \"value1\"\n"),
     "{\"plugins\": [{\"name\": \"resource\", \"type\": \"LocalFs\","
     " \"dir_path\": \"/opt/confidential-containers/kbs/repository\"},"
     " {\"name\": \"sample\", \"item\": \"value1\"}]}"},
    {"kbs admin personas",
     TXT("[admin]\ninsecure_api = false\n\n[[admin.personas]]\nid = \"alice\"\n"
         "public_key_path = \"/etc/kbs/alice.pub\"\n\n[[admin.personas]]\nid = \"bob\"\n"
         "public_key_path = \"/etc/kbs/bob.pub\"\n"),
     "{\"admin\": {\"insecure_api\": false, \"personas\": ["
     "{\"id\": \"alice\", \"public_key_path\": \"/etc/kbs/alice.pub\"},"
     " {\"id\": \"bob\", \"public_key_path\": \"/etc/kbs/bob.pub\"}]}}"},
    {"kbs nested attestation service",
     TXT("[attestation_token]\ninsecure_key = true\n\n"
         "[attestation_service]\ntype = \"coco_as_builtin\"\n"
         "work_dir = \"/opt/confidential-containers/attestation-service\"\n\n"
         "  [attestation_service.attestation_token_broker]\n  type = \"Ear\"\n  duration_min = "
         "5\n\n"
         "  [attestation_service.rvps_config]\n  type = \"BuiltIn\"\n\n"
         "    [attestation_service.rvps_config.storage]\n    type = \"LocalFs\"\n"),
     "{\"attestation_token\": {\"insecure_key\": true}, \"attestation_service\": {"
     "\"type\": \"coco_as_builtin\", \"work_dir\": "
     "\"/opt/confidential-containers/attestation-service\","
     " \"attestation_token_broker\": {\"type\": \"Ear\", \"duration_min\": 5},"
     " \"rvps_config\": {\"type\": \"BuiltIn\", \"storage\": {\"type\": \"LocalFs\"}}}}"},
    {"kbs policy engine inline table",
     TXT("[policy_engine]\npolicy_path = \"/opa/confidential-containers/kbs/policy.rego\"\n"
         "limits = { max_body = 1048576, ttl_s = 300 }\n"),
     "{\"policy_engine\": {\"policy_path\": \"/opa/confidential-containers/kbs/policy.rego\","
     " \"limits\": {\"max_body\": 1048576, \"ttl_s\": 300}}}"},
    {"aa.toml token configs",
     TXT("[token_configs]\n[token_configs.coco_as]\nurl = 'http://127.0.0.1:8080'\n\n"
         "[token_configs.kbs]\nurl = 'http://127.0.0.1:8080'\ncert = \"\"\"\n-----BEGIN "
         "CERTIFICATE-----\n"
         "MIIB\n-----END CERTIFICATE-----\n\"\"\"\n"),
     "{\"token_configs\": {\"coco_as\": {\"url\": \"http://127.0.0.1:8080\"},"
     " \"kbs\": {\"url\": \"http://127.0.0.1:8080\","
     " \"cert\": \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}}}"},
    {"cdh.toml",
     TXT("socket = 'unix:///run/confidential-containers/cdh.sock'\ncredentials = []\n\n"
         "[kbc]\nname = 'cc_kbc'\nurl = 'http://1.2.3.4:8080'\n"),
     "{\"socket\": \"unix:///run/confidential-containers/cdh.sock\", \"credentials\": [],"
     " \"kbc\": {\"name\": \"cc_kbc\", \"url\": \"http://1.2.3.4:8080\"}}"},

    /* keys */
    {"dotted keys", TXT("a.b.c = 1\na.b.d = 2\na . e = 3\n"),
     "{\"a\": {\"b\": {\"c\": 1, \"d\": 2}, \"e\": 3}}"},
    {"quoted keys", TXT("\"a.b\" = 1\n'c d' = 2\n\"\" = 3\n\"\\u00e9\" = 4\n"),
     "{\"a.b\": 1, \"c d\": 2, \"\": 3, \"\\u00e9\": 4}"},
    {"numeric-looking keys", TXT("1234 = 1\n3.14 = 2\n"), "{\"1234\": 1, \"3\": {\"14\": 2}}"},
    {"implicit then explicit table", TXT("[a.b.c]\nx = 1\n[a]\ny = 2\n"),
     "{\"a\": {\"b\": {\"c\": {\"x\": 1}}, \"y\": 2}}"},
    {"sub-table under dotted-key table",
     TXT("[fruit]\napple.color = 'red'\n[fruit.apple.texture]\nsmooth = true\n"),
     "{\"fruit\": {\"apple\": {\"color\": \"red\", \"texture\": {\"smooth\": true}}}}"},
    {"header into last array element", TXT("[[a]]\nx = 1\n[[a]]\n[a.b]\ny = 2\n"),
     "{\"a\": [{\"x\": 1}, {\"b\": {\"y\": 2}}]}"},
    {"dotted keys through an implicit table", TXT("[a.b.c]\nx = 1\n[a]\nb.d = 1\n"),
     "{\"a\": {\"b\": {\"c\": {\"x\": 1}, \"d\": 1}}}"},
    {"blanks at the end", TXT("a = 1\n   \t"), "{\"a\": 1}"},
    {"inline table with dotted keys", TXT("t = { a.b = 1, a.c = 2 }\n"),
     "{\"t\": {\"a\": {\"b\": 1, \"c\": 2}}}"},

    /* strings */
    {"basic escapes", TXT("s = \"\\b\\t\\n\\f\\r\\\"\\\\ \\u00E9 \\U0001F600\"\n"),
     "{\"s\": \"\\b\\t\\n\\f\\r\\\"\\\\ \\u00e9 \\ud83d\\ude00\"}"},
    {"literal keeps backslashes", TXT("s = 'C:\\Users\\n'\n"), "{\"s\": \"C:\\\\Users\\\\n\"}"},
    {"multi-line trims first newline", TXT("s = \"\"\"\nab\ncd\"\"\"\n"), "{\"s\": \"ab\\ncd\"}"},
    {"multi-line line-ending backslash", TXT("s = \"\"\"one \\\n     two \\   \n\n  three\"\"\"\n"),
     "{\"s\": \"one two three\"}"},
    {"multi-line quotes before close", TXT("s = \"\"\"a\"\"\"\"\"\nt = '''b'''''\n"),
     "{\"s\": \"a\\\"\\\"\", \"t\": \"b''\"}"},
    {"multi-line crlf becomes lf",
     TXT("s = '''\r\na\r\nb'''\r\nt = \"\"\"x\\\r\n  y\r\n\"\"\"\r\n"),
     "{\"s\": \"a\\nb\", \"t\": \"xy\\n\"}"},
    {"multi-line escapes", TXT("s = \"\"\"a\\tb\\u20AC\\\"\"\"\"\n"),
     "{\"s\": \"a\\tb\\u20ac\\\"\"}"},
    {"raw non-ascii", TXT("e = \"\xF0\x9F\x98\x80 \xE2\x82\xAC \xC3\xA9\"\n"),
     "{\"e\": \"\\ud83d\\ude00 \\u20ac \\u00e9\"}"},
    {"tab in strings", TXT("s = \"a\tb\"\nt = 'c\td'\n"), "{\"s\": \"a\\tb\", \"t\": \"c\\td\"}"},

    /* numbers */
    {"integers",
     TXT("a = +99\nb = -17\nc = 0\nd = 1_000_000\ne = 0xDEAD_beef\nf = 0o755\ng = 0b1101\nh = "
         "-0\n"),
     "{\"a\": 99, \"b\": -17, \"c\": 0, \"d\": 1000000, \"e\": 3735928559, \"f\": 493, \"g\": 13, "
     "\"h\": 0}"},
    {"int64 extremes",
     TXT("max = 9223372036854775807\nmin = -9223372036854775808\nhex = 0x7FFFFFFFFFFFFFFF\n"),
     "{\"max\": 9223372036854775807, \"min\": -9223372036854775808, \"hex\": 9223372036854775807}"},
    {"floats", TXT("a = 1.5\nb = -2e3\nc = 6.626e-34\nd = 1_000.000_1\ne = 5E+2\nf = 0.0\n"),
     "{\"a\": 1.5, \"b\": -2000.0, \"c\": 6.626e-34, \"d\": 1000.0001, \"e\": 500.0, \"f\": 0.0}"},
    {"inf and nan become strings", TXT("a = inf\nb = +inf\nc = -inf\nd = nan\ne = -nan\n"),
     "{\"a\": \"inf\", \"b\": \"inf\", \"c\": \"-inf\", \"d\": \"nan\", \"e\": \"nan\"}"},

    /* date-times become RFC 3339 strings */
    {"offset date-times",
     TXT("a = 1979-05-27T07:32:00Z\nb = 1979-05-27 00:32:00.999999-07:00\nc = "
         "1979-05-27t07:32:00z\n"),
     "{\"a\": \"1979-05-27T07:32:00Z\", \"b\": \"1979-05-27T00:32:00.999999-07:00\","
     " \"c\": \"1979-05-27T07:32:00Z\"}"},
    {"local kinds",
     TXT("a = 1979-05-27T07:32:00\nb = 1979-05-27\nc = 07:32:00.5\nd = 2000-02-29\ne = 23:59:60\n"),
     "{\"a\": \"1979-05-27T07:32:00\", \"b\": \"1979-05-27\", \"c\": \"07:32:00.5\", \"d\": "
     "\"2000-02-29\","
     " \"e\": \"23:59:60\"}"},
    {"date then comment", TXT("d = 1979-05-27 # a date\n"), "{\"d\": \"1979-05-27\"}"},

    /* arrays */
    {"arrays over lines with comments",
     TXT("a = [\n  1, # one\n  2,\n  # none\n  3,\n]\nb = [ [1, 2], ['x'], [], {k = 'v'} ]\n"),
     "{\"a\": [1, 2, 3], \"b\": [[1, 2], [\"x\"], [], {\"k\": \"v\"}]}"},
    {"mixed types", TXT("a = [1, 'two', 3.0, true, 1979-05-27]\n"),
     "{\"a\": [1, \"two\", 3.0, true, \"1979-05-27\"]}"},
};

static void test_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const struct good *c = &good_cases[i];
        struct cl_err err = {0};
        AUTO_JSON *have = cl_toml_parse(c->text, c->len, &err);
        if (!have)
            fail_msg("%s: refused: %s", c->name, err.msg);
        json_error_t je;
        AUTO_JSON *want = json_loads(c->json, 0, &je);
        if (!want)
            fail_msg("%s: bad expected JSON: %s", c->name, je.text);
        if (!json_equal(want, have)) {
            char *d = json_dumps(have, JSON_COMPACT);
            fail_msg("%s: got %s", c->name, d ? d : "?");
        }
    }
}

/* -0.0 keeps its sign (json_equal would not tell). */
static void test_negative_zero(void **state)
{
    (void)state;
    struct cl_err err = {0};
    AUTO_JSON *v = cl_toml_parse(TXT("z = -0.0\n"), &err);
    assert_non_null(v);
    json_t *z = json_object_get(v, "z");
    assert_true(json_is_real(z));
    assert_true(signbit(json_real_value(z)));
}

/* ---- init-data: TOML and Rego carried in multi-line strings ---- */

static const char init_data[] =
    "algorithm = \"sha384\"\n"
    "version = \"0.1.0\"\n"
    "\n"
    "[data]\n"
    "\"aa.toml\" = '''\n"
    "[token_configs]\n"
    "[token_configs.kbs]\n"
    "url = 'http://10.0.0.1:8080'\n"
    "'''\n"
    "\n"
    "\"cdh.toml\" = '''\n"
    "socket = 'unix:///run/confidential-containers/cdh.sock'\n"
    "credentials = []\n"
    "[kbc]\n"
    "name = 'cc_kbc'\n"
    "url = \"http://10.0.0.1:8080\"\n"
    "'''\n"
    "\n"
    "\"policy.rego\" = '''\n"
    "package agent_policy\n"
    "\n"
    "import future.keywords.in\n"
    "\n"
    "default CreateContainerRequest := false\n"
    "default ExecProcessRequest := false\n"
    "\n"
    "CreateContainerRequest if {\n"
    "    every s in input.OCI.Process.Args { regex.match(\"^[a-z/\\\\-]+$\", s) }\n"
    "}\n"
    "'''\n";

static void test_init_data(void **state)
{
    (void)state;
    struct cl_err err = {0};
    AUTO_JSON *doc = cl_toml_parse(init_data, sizeof init_data - 1, &err);
    if (!doc)
        fail_msg("init-data refused: %s", err.msg);
    assert_string_equal(json_string_value(json_object_get(doc, "algorithm")), "sha384");
    assert_string_equal(json_string_value(json_object_get(doc, "version")), "0.1.0");
    json_t *data = json_object_get(doc, "data");
    assert_true(json_is_object(data));
    assert_int_equal(json_object_size(data), 3);

    /* the Rego text arrives byte for byte, backslashes and quotes included */
    const char *rego = json_string_value(json_object_get(data, "policy.rego"));
    assert_non_null(rego);
    assert_non_null(strstr(rego, "package agent_policy\n"));
    assert_non_null(strstr(rego, "regex.match(\"^[a-z/\\\\-]+$\", s)"));
    assert_string_equal(rego + strlen(rego) - 2, "}\n");

    /* the TOML inside parses in its turn */
    const char *aa = json_string_value(json_object_get(data, "aa.toml"));
    assert_non_null(aa);
    AUTO_JSON *aa_doc = cl_toml_parse(aa, strlen(aa), &err);
    assert_non_null(aa_doc);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(aa_doc, "token_configs"), "kbs"), "url")),
        "http://10.0.0.1:8080");
    const char *cdh = json_string_value(json_object_get(data, "cdh.toml"));
    AUTO_JSON *cdh_doc = cl_toml_parse(cdh, strlen(cdh), &err);
    assert_non_null(cdh_doc);
    assert_string_equal(json_string_value(json_object_get(json_object_get(cdh_doc, "kbc"), "name")),
                        "cc_kbc");

    /* a basic multi-line string with line-ending backslashes */
    static const char joined[] =
        "[data]\n\"note\" = \"\"\"\\\n   first \\\n   second\\\n   \"\"\"\n";
    AUTO_JSON *j = cl_toml_parse(joined, sizeof joined - 1, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "note")),
                        "first second");
}

/* ---- one case per rejection ---- */

struct bad {
    const char *name;
    const char *text;
    size_t len;
    int code;
    unsigned line; /* 0: the message carries no line (checked before parsing) */
    const char *msg;
};

static const struct bad bad_cases[] = {
    /* input as a whole */
    {"invalid utf-8", TXT("a = 1\nb = \"\xC3\x28\"\n"), CL_EPARSE, 2, "invalid UTF-8"},
    {"overlong utf-8", TXT("a = \"\xC0\xAF\"\n"), CL_EPARSE, 1, "invalid UTF-8"},
    {"surrogate utf-8", TXT("# \xED\xA0\x80\n"), CL_EPARSE, 1, "invalid UTF-8"},
    {"truncated utf-8", TXT("a = 1 # \xE2\x82"), CL_EPARSE, 1, "invalid UTF-8"},

    /* lines and comments */
    {"comment control char", TXT("a = 1\n# bell \x07\n"), CL_EPARSE, 2,
     "control character U+0007 in a comment"},
    {"comment del", TXT("# \x7F\n"), CL_EPARSE, 1, "control character U+007F in a comment"},
    {"comment bare cr", TXT("# x\ry\n"), CL_EPARSE, 1,
     "carriage return without line feed in a comment"},
    {"bare cr after value", TXT("a = 1\rb = 2\n"), CL_EPARSE, 1,
     "carriage return without line feed"},
    {"junk after value", TXT("a = 1\nb = 2 3\n"), CL_EPARSE, 2,
     "expected a newline after a key/value pair"},
    {"junk after header", TXT("[a] b = 1\n"), CL_EPARSE, 1,
     "expected a newline after a table header"},

    /* keys */
    {"missing key", TXT("a = 1\n= 2\n"), CL_EPARSE, 2, "expected a key, found '='"},
    {"empty dotted part", TXT("a..b = 1\n"), CL_EPARSE, 1, "expected a key, found '.'"},
    {"missing equals", TXT("a = 1\nb 2\n"), CL_EPARSE, 2, "expected '=' after a key"},
    {"multi-line key", TXT("\"\"\"k\"\"\" = 1\n"), CL_EPARSE, 1,
     "a key cannot be a multi-line string"},
    {"nul in key", TXT("\"a\\u0000b\" = 1\n"), CL_EPARSE, 1, "(NUL) is not supported"},
    {"duplicate key", TXT("a = 1\nb = 2\na = 3\n"), CL_EPARSE, 3, "key 'a' is defined twice"},
    {"duplicate quoted key", TXT("a = 1\n\"a\" = 2\n"), CL_EPARSE, 2, "key 'a' is defined twice"},
    {"dotted into value", TXT("a = 1\na.b = 2\n"), CL_EPARSE, 2, "key 'a' already holds a value"},
    {"dotted into inline table", TXT("a = {b = 1}\na.c = 2\n"), CL_EPARSE, 2,
     "cannot add keys to inline table 'a'"},
    {"dotted into header table", TXT("[a.b]\nx = 1\n[a]\nb.y = 2\n"), CL_EPARSE, 4,
     "table 'b' is already defined; dotted keys cannot extend it"},
    {"header over table crossed by dotted keys", TXT("[a.b.c]\n[a]\nb.d = 1\n[a.b]\n"), CL_EPARSE,
     4, "table 'b' is defined twice"},
    {"dotted table from earlier section", TXT("a.b = 1\n[x]\n[a]\n"), CL_EPARSE, 3,
     "table 'a' is defined twice"},

    /* headers */
    {"header not closed", TXT("[a\nb = 1\n"), CL_EPARSE, 1,
     "expected ']' to close the table header"},
    {"array header not closed", TXT("[[a]\n"), CL_EPARSE, 1,
     "expected ']]' to close the table header"},
    {"header at end of input", TXT("a = 1\n["), CL_EPARSE, 2, "expected a key, found end of input"},
    {"header twice", TXT("[a]\n[b]\n[a]\n"), CL_EPARSE, 3, "table 'a' is defined twice"},
    {"header over value", TXT("a = 1\n[a]\n"), CL_EPARSE, 2, "table 'a' is already a value"},
    {"header over array of tables", TXT("[[a]]\n[a]\n"), CL_EPARSE, 2,
     "table 'a' is an array of tables"},
    {"header over static array", TXT("a = []\n[a]\n"), CL_EPARSE, 2,
     "table 'a' is already an array"},
    {"header over inline table", TXT("a = {}\n[a]\n"), CL_EPARSE, 2,
     "table 'a' is an inline table"},
    {"header through value", TXT("a = 1\n[a.b]\n"), CL_EPARSE, 2,
     "key 'a' is a value, a header cannot add to it"},
    {"header through inline table", TXT("a = {b = {}}\n[a.b.c]\n"), CL_EPARSE, 2,
     "key 'a' is an inline table, a header cannot add to it"},
    {"header through static array", TXT("a = [{}]\n[a.b]\n"), CL_EPARSE, 2,
     "key 'a' is an array, a header cannot add to it"},
    {"array of tables over value", TXT("a = 1\n[[a]]\n"), CL_EPARSE, 2,
     "array of tables 'a': the key is already a value"},
    {"array of tables over table", TXT("[a]\n[[a]]\n"), CL_EPARSE, 2,
     "array of tables 'a': the key is already a table"},
    {"append to static array", TXT("a = [1]\n[[a]]\n"), CL_EPARSE, 2,
     "a static array, which cannot be extended"},

    /* values */
    {"missing value", TXT("a =\n"), CL_EPARSE, 1, "expected a value, found a newline"},
    {"missing value at end", TXT("a = "), CL_EPARSE, 1, "expected a value, found end of input"},
    {"bad bare value", TXT("a = yes\n"), CL_EPARSE, 1, "invalid value 'yes'"},
    {"non-ascii value", TXT("a = \xC3\xA9\n"), CL_EPARSE, 1, "expected a value, found byte 0xC3"},
    {"bad boolean", TXT("a = True\n"), CL_EPARSE, 1, "invalid value 'True'"},
    {"array missing comma", TXT("a = [1 2]\n"), CL_EPARSE, 1,
     "expected ',' or ']' in an array, found '2'"},
    {"array unterminated", TXT("x = 0\na = [1, 2"), CL_EPARSE, 2, "unterminated array"},
    {"array bad comment", TXT("a = [ # \x01\n]\n"), CL_EPARSE, 1,
     "control character U+0001 in a comment"},
    {"inline trailing comma", TXT("a = {b = 1,}\n"), CL_EPARSE, 1,
     "trailing comma in an inline table"},
    {"inline unterminated", TXT("a = {b = 1"), CL_EPARSE, 1, "unterminated inline table"},
    {"inline over lines", TXT("a = {b = 1\n}\n"), CL_EPARSE, 1,
     "an inline table must be on one line"},
    {"inline missing comma", TXT("a = {b = 1 c = 2}\n"), CL_EPARSE, 1,
     "expected ',' or '}' in an inline table"},
    {"inline duplicate", TXT("a = {b = 1, b = 2}\n"), CL_EPARSE, 1, "key 'b' is defined twice"},

    /* strings */
    {"string unterminated", TXT("a = \"abc"), CL_EPARSE, 1, "unterminated string"},
    {"literal unterminated", TXT("a = 'abc"), CL_EPARSE, 1, "unterminated literal string"},
    {"string over lines", TXT("a = \"ab\ncd\"\n"), CL_EPARSE, 1,
     "newline inside a single-line string"},
    {"string control char", TXT("a = \"a\x1b\"\n"), CL_EPARSE, 1,
     "control character U+001B in string"},
    {"literal control char", TXT("a = 'a\x7f'\n"), CL_EPARSE, 1,
     "control character U+007F in literal string"},
    {"string nul byte", TXT("a = \"a\0b\"\n"), CL_EPARSE, 1, "control character U+0000 in string"},
    {"bad escape", TXT("a = \"\\q\"\n"), CL_EPARSE, 1, "invalid escape: backslash followed by 'q'"},
    {"backslash at end", TXT("a = \"\\"), CL_EPARSE, 1, "input ends after a backslash"},
    {"short unicode escape", TXT("a = \"\\u12\"\n"), CL_EPARSE, 1, "escape \\u needs 4 hex digits"},
    {"surrogate escape", TXT("a = \"\\uD800\"\n"), CL_EPARSE, 1,
     "escape \\uD800 is not a Unicode scalar value"},
    {"escape beyond unicode", TXT("a = \"\\U00110000\"\n"), CL_EPARSE, 1,
     "is not a Unicode scalar value"},
    {"nul escape", TXT("a = \"x\\u0000\"\n"), CL_EPARSE, 1,
     "escape \\u0000 (NUL) is not supported"},
    {"multi-line bad escape", TXT("a = \"\"\"\n\\q\"\"\"\n"), CL_EPARSE, 2,
     "invalid escape: backslash followed by 'q'"},
    {"multi-line unterminated", TXT("a = 1\nb = \"\"\"abc\n"), CL_EPARSE, 2,
     "unterminated multi-line string"},
    {"multi-line literal unterminated", TXT("b = '''abc''\n"), CL_EPARSE, 1,
     "unterminated multi-line literal string"},
    {"multi-line six quotes", TXT("a = \"\"\"x\"\"\"\"\"\"\n"), CL_EPARSE, 1,
     "too many quotes closing a multi-line string"},
    {"multi-line bare cr", TXT("a = '''x\ry'''\n"), CL_EPARSE, 1,
     "carriage return without line feed in multi-line"},
    {"multi-line control char", TXT("a = \"\"\"\n\x08\"\"\"\n"), CL_EPARSE, 2,
     "control character U+0008 in multi-line string"},
    {"multi-line blank after backslash", TXT("a = \"\"\"x\\  y\"\"\"\n"), CL_EPARSE, 1,
     "a backslash followed by blanks must end the line"},

    /* integers */
    {"leading zero", TXT("a = 012\n"), CL_EPARSE, 1, "integer '012' has a leading zero"},
    {"double underscore", TXT("a = 1__2\n"), CL_EPARSE, 1, "invalid value '1__2'"},
    {"trailing underscore", TXT("a = 12_\n"), CL_EPARSE, 1, "invalid value '12_'"},
    {"integer overflow", TXT("a = 9223372036854775808\n"), CL_EPARSE, 1, "does not fit in 64 bits"},
    {"integer underflow", TXT("a = -9223372036854775809\n"), CL_EPARSE, 1,
     "does not fit in 64 bits"},
    {"hex overflow", TXT("a = 0x8000000000000000\n"), CL_EPARSE, 1, "does not fit in 64 bits"},
    {"signed hex", TXT("a = -0x1\n"), CL_EPARSE, 1, "cannot have a sign"},
    {"bad octal digit", TXT("a = 0o8\n"), CL_EPARSE, 1, "invalid integer '0o8'"},
    {"capital hex prefix", TXT("a = 0X1\n"), CL_EPARSE, 1, "invalid value '0X1'"},

    /* floats */
    {"float trailing dot", TXT("a = 1.\n"), CL_EPARSE, 1, "invalid float '1.'"},
    {"float leading dot", TXT("a = .5\n"), CL_EPARSE, 1, "invalid value '.5'"},
    {"float bad exponent", TXT("a = 1e\n"), CL_EPARSE, 1, "invalid float '1e'"},
    {"float without integer part", TXT("a = -.5\n"), CL_EPARSE, 1, "invalid float '-.5'"},
    {"float leading zero", TXT("a = 01.5\n"), CL_EPARSE, 1, "float '01.5' has a leading zero"},
    {"float out of range", TXT("a = 1e999\n"), CL_EPARSE, 1, "float '1e999' is out of range"},
    {"capital inf", TXT("a = Inf\n"), CL_EPARSE, 1, "invalid value 'Inf'"},

    /* date-times */
    {"date bad shape", TXT("a = 1979-5-27\n"), CL_EPARSE, 1, "invalid date '1979-5-27'"},
    {"date letter", TXT("a = 1979-0a-27\n"), CL_EPARSE, 1, "invalid date '1979-0a-27'"},
    {"feb 29 off leap year", TXT("a = 1900-02-29\n"), CL_EPARSE, 1,
     "date '1900-02-29' is not in the calendar"},
    {"month 13", TXT("a = 2024-13-01\n"), CL_EPARSE, 1, "is not in the calendar"},
    {"april 31", TXT("a = 2024-04-31T00:00:00Z\n"), CL_EPARSE, 1, "is not in the calendar"},
    {"hour 24", TXT("a = 2024-01-01T24:00:00\n"), CL_EPARSE, 1, "invalid date-time"},
    {"second 61", TXT("a = 2024-01-01 00:00:61\n"), CL_EPARSE, 1, "invalid date-time"},
    {"no seconds", TXT("a = 2024-01-01T10:00Z\n"), CL_EPARSE, 1, "invalid date-time"},
    {"junk after z", TXT("a = 2024-01-01T10:00:00Zx\n"), CL_EPARSE, 1, "invalid date-time"},
    {"offset hour 24", TXT("a = 2024-01-01T10:00:00+24:00\n"), CL_EPARSE, 1, "invalid date-time"},
    {"empty fraction", TXT("a = 2024-01-01T10:00:00.Z\n"), CL_EPARSE, 1, "invalid date-time"},
    {"time bad", TXT("a = 10:61:00\n"), CL_EPARSE, 1, "invalid time '10:61:00'"},
    {"time trailing", TXT("a = 10:00:00Z\n"), CL_EPARSE, 1, "invalid time '10:00:00Z'"},
};

static void check_bad(const struct bad *c, bool tagged)
{
    struct cl_err err = {0};
    AUTO_JSON *v =
        tagged ? cl_toml_parse_tagged(c->text, c->len, &err) : cl_toml_parse(c->text, c->len, &err);
    if (v)
        fail_msg("%s: accepted", c->name);
    if (err.code != c->code)
        fail_msg("%s: code %s, want %s (%s)", c->name, cl_err_name(err.code), cl_err_name(c->code),
                 err.msg);
    if (c->line) {
        char want[32];
        snprintf(want, sizeof want, "line %u, column ", c->line);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("%s: message does not start with '%s': %s", c->name, want, err.msg);
    }
    if (!strstr(err.msg, c->msg))
        fail_msg("%s: message lacks '%s': %s", c->name, c->msg, err.msg);
    assert_string_equal(err.stage, "toml");
}

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        check_bad(&bad_cases[i], false);
        /* the tagged form refuses the same text, except U+0000 which it allows */
        if (!strstr(bad_cases[i].msg, "(NUL)"))
            check_bad(&bad_cases[i], true);
    }
}

/* The column counts characters, not bytes. */
static void test_error_column(void **state)
{
    (void)state;
    struct cl_err err = {0};
    static const char text[] = "a = 1\n\"\xC3\xA9t\xC3\xA9\" = 1\n\"\xC3\xA9t\xC3\xA9\" = 2\n";
    assert_null(cl_toml_parse(text, sizeof text - 1, &err));
    assert_int_equal(err.code, CL_EPARSE);
    assert_non_null(strstr(err.msg, "line 3, column 1: key '\xC3\xA9t\xC3\xA9' is defined twice"));
    assert_null(cl_toml_parse(TXT("\"\xC3\xA9\xC3\xA9\" = tru\n"), &err));
    assert_non_null(strstr(err.msg, "line 1, column 8: invalid value 'tru'"));
    /* a long key is cut at 64 bytes, on a character boundary */
    char text2[512], key[128] = "x";
    for (int i = 0; i < 50; i++)
        strcat(key, "\xC3\xA9");
    snprintf(text2, sizeof text2, "\"%s\" = 1\n\"%s\" = 2\n", key, key);
    assert_null(cl_toml_parse(text2, strlen(text2), &err));
    key[63] = '\0';
    char want[256];
    snprintf(want, sizeof want, "line 2, column 1: key '%s...' is defined twice", key);
    assert_string_equal(err.msg, want);
}

/* ---- limits ---- */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + ul * n, tail, tl + 1);
    *len = hl + ul * n + tl;
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    struct cl_err err = {0};
    size_t len;

    assert_null(cl_toml_parse(NULL, 0, &err));
    assert_int_equal(err.code, CL_EINVAL);

    /* size: the cap itself is fine, one byte more is not */
    char *big = malloc(CL_TOML_MAX_INPUT + 1);
    assert_non_null(big);
    memset(big, '\n', CL_TOML_MAX_INPUT + 1);
    json_t *v = cl_toml_parse(big, CL_TOML_MAX_INPUT, &err);
    assert_non_null(v);
    json_decref(v);
    assert_null(cl_toml_parse(big, CL_TOML_MAX_INPUT + 1, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    free(big);

    /* depth: root table (1) + 63 arrays is the deepest accepted */
    CL_AUTO(cl_str) *ok_arrays = repeat("a = ", "[", CL_TOML_MAX_DEPTH - 1, "", &len);
    CL_AUTO(cl_str) *ok_text = NULL;
    {
        size_t n2;
        CL_AUTO(cl_str) *closing = repeat("", "]", CL_TOML_MAX_DEPTH - 1, "\n", &n2);
        ok_text = cl_strdupf("%s%s", ok_arrays, closing);
    }
    v = cl_toml_parse(ok_text, strlen(ok_text), &err);
    if (!v)
        fail_msg("63 nested arrays refused: %s", err.msg);
    json_decref(v);
    CL_AUTO(cl_str) *deep = repeat("a = ", "[", CL_TOML_MAX_DEPTH, "", &len);
    assert_null(cl_toml_parse(deep, len, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    assert_non_null(strstr(err.msg, "nested deeper than 64"));
    /* a million brackets stop at the cap, not at the stack's end */
    CL_AUTO(cl_str) *deeper = repeat("a = ", "[", 1000000, "", &len);
    assert_null(cl_toml_parse(deeper, len, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    CL_AUTO(cl_str) *deep_inline = repeat("a = ", "{b = ", 200, "", &len);
    assert_null(cl_toml_parse(deep_inline, len, &err));
    assert_int_equal(err.code, CL_ELIMIT);

    /* depth through headers and dotted keys */
    CL_AUTO(cl_str) *hdr_ok = repeat("[a", ".a", CL_TOML_MAX_DEPTH - 2, "]\n", &len);
    v = cl_toml_parse(hdr_ok, len, &err);
    if (!v)
        fail_msg("63-part header refused: %s", err.msg);
    json_decref(v);
    CL_AUTO(cl_str) *hdr_deep = repeat("[a", ".a", CL_TOML_MAX_DEPTH - 1, "]\n", &len);
    assert_null(cl_toml_parse(hdr_deep, len, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    CL_AUTO(cl_str) *mixed =
        repeat("[a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a]\nb", ".b", 40,
               " = 1\n", &len);
    assert_null(cl_toml_parse(mixed, len, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    assert_non_null(strstr(err.msg, "line 2,"));

    /* key parts */
    CL_AUTO(cl_str) *parts = repeat("a", ".a", CL_TOML_MAX_DEPTH, " = 1\n", &len);
    assert_null(cl_toml_parse(parts, len, &err));
    assert_int_equal(err.code, CL_ELIMIT);
    assert_non_null(strstr(err.msg, "key with more than 64 dotted parts"));
}

/* Shapes that cost quadratic time in a careless parser; each is near the size cap and must
 * finish quickly (the budget is generous for sanitizer builds). */
static void test_hostile_shapes(void **state)
{
    (void)state;
    struct {
        const char *name, *head, *unit, *tail;
        size_t n;
        bool ok;
    } cases[] = {
        {"many array-of-table elements", "", "[[a.b.c]]\nx = 1\n", "", 200000, true},
        {"long array", "a = [", "1,", "]\n", 1500000, true},
        {"quote runs in a multi-line string", "a = \"\"\"", "\"\"x", "\"\"\"\n", 1000000, true},
        {"many backslash newlines", "a = \"\"\"", "\\\n  ", "\"\"\"\n", 800000, true},
        {"long comment", "#", "xxxxxxxx", "\n", 500000, true},
        {"long key", "\"", "kkkkkkkk", "\" = 1\n", 500000, true},
        {"error at the end of a long document", "", "# comment\n", "a = 1\na = 2\n", 400000, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        CL_AUTO(cl_str) *text =
            repeat(cases[i].head, cases[i].unit, cases[i].n, cases[i].tail, &len);
        assert_true(len <= CL_TOML_MAX_INPUT);
        struct cl_err err = {0};
        time_t t0 = time(NULL);
        json_t *v = cl_toml_parse(text, len, &err);
        time_t dt = time(NULL) - t0;
        if (cases[i].ok && !v)
            fail_msg("%s: refused: %s", cases[i].name, err.msg);
        if (!cases[i].ok && v)
            fail_msg("%s: accepted", cases[i].name);
        json_decref(v);
        if (dt > 20)
            fail_msg("%s: took %lds", cases[i].name, (long)dt);
    }
}

/* Many distinct keys under one long dotted prefix, and many tables made by headers: every
 * step is a hash lookup, so this stays linear. */
static void test_many_keys(void **state)
{
    (void)state;
    static const char prefix[] = "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z";
    size_t cap = CL_TOML_MAX_INPUT, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    unsigned n = 0;
    for (; len + 128 < cap / 2; n++)
        len += (size_t)snprintf(text + len, cap - len, "%s.k%u = %u\n", prefix, n, n);
    for (unsigned i = 0; len + 128 < cap; i++)
        len += (size_t)snprintf(text + len, cap - len, "[t.u%u]\nv = %u\n", i, i);
    struct cl_err err = {0};
    time_t t0 = time(NULL);
    json_t *v = cl_toml_parse(text, len, &err);
    time_t dt = time(NULL) - t0;
    free(text);
    if (!v)
        fail_msg("refused: %s", err.msg);
    json_t *z = json_object_get(v, "a");
    for (const char *c = "bcdefghijklmnopqrstuvwxyz"; *c; c++) {
        char k[2] = {*c, 0};
        z = json_object_get(z, k);
    }
    assert_int_equal(json_object_size(z), n);
    json_decref(v);
    if (dt > 20)
        fail_msg("took %lds", (long)dt);
}

/* ---- the tagged form ---- */

static void test_tagged(void **state)
{
    (void)state;
    static const char text[] = "s = \"x\\u0000y\"\ni = -0\nf = 0.1\nb = false\nn = -nan\n"
                               "odt = 1979-05-27 07:32:00+01:00\nldt = 1979-05-27T07:32:00.25\n"
                               "ld = 1979-05-27\nlt = 07:32:00\nt = {type = 'x'}\na = [1]\n";
    struct cl_err err = {0};
    AUTO_JSON *v = cl_toml_parse_tagged(text, sizeof text - 1, &err);
    if (!v)
        fail_msg("tagged refused: %s", err.msg);
    static const char *const want[][3] = {
        {"i", "integer", "0"},
        {"f", "float", "0.1"},
        {"b", "bool", "false"},
        {"n", "float", "nan"},
        {"odt", "datetime", "1979-05-27T07:32:00+01:00"},
        {"ldt", "datetime-local", "1979-05-27T07:32:00.25"},
        {"ld", "date-local", "1979-05-27"},
        {"lt", "time-local", "07:32:00"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *s = json_object_get(v, want[i][0]);
        assert_string_equal(json_string_value(json_object_get(s, "type")), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(s, "value")), want[i][2]);
    }
    json_t *s = json_object_get(json_object_get(v, "s"), "value");
    assert_int_equal(json_string_length(s), 3);
    assert_memory_equal(json_string_value(s), "x\0y", 3);
    /* a table with a "type" key stays a table of tagged values */
    json_t *t = json_object_get(json_object_get(v, "t"), "type");
    assert_string_equal(json_string_value(json_object_get(t, "type")), "string");
    assert_true(json_is_array(json_object_get(v, "a")));
    /* a tagged scalar is still a value: dotted keys cannot enter it */
    assert_null(cl_toml_parse_tagged(TXT("a = 1\na.type = 2\n"), &err));
    assert_non_null(strstr(err.msg, "key 'a' already holds a value"));
}

/* ---- files ---- */

static void test_load_file(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    CL_AUTO(cl_str) *path = cl_strdupf("%s/cl-toml-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "[http_server]\nsockets = [\"0.0.0.0:8080\"]\n[http_server]\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct cl_err err = {0};
    assert_null(cl_toml_load_file(path, &err));
    assert_int_equal(err.code, CL_EPARSE);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "line 3, column 1: table 'http_server' is defined twice"));

    assert_int_equal(truncate(path, (off_t)(sizeof text - 1 - strlen("[http_server]\n"))), 0);
    AUTO_JSON *v = cl_toml_load_file(path, &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(v, "http_server"), "sockets"), 0)),
                        "0.0.0.0:8080");
    unlink(path);
    assert_null(cl_toml_load_file(path, &err));
    assert_int_equal(err.code, CL_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),           cmocka_unit_test(test_negative_zero),
        cmocka_unit_test(test_init_data),      cmocka_unit_test(test_bad),
        cmocka_unit_test(test_error_column),   cmocka_unit_test(test_limits),
        cmocka_unit_test(test_hostile_shapes), cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_tagged),         cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
