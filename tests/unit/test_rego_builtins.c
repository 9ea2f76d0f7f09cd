/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the Rego builtins outside the engine core (builtins_misc.c, builtins_time.c,
 * builtins_net.c, builtins_crypto.c, builtins_jwt.c, builtins_yaml.c): one table per family,
 * each row an expression evaluated with strict builtin errors and its expected JSON value,
 * "undefined", or the expected error (code and a substring of the message). The clock of
 * every evaluation is pinned so that time.now_ns is reproducible.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"
#include "rego/rego.h"

#define NOW_NS INT64_C(1670006453141828752) /* 2022-12-02T18:40:53.141828752Z */

struct bcase {
    const char *expr; /* a Rego expression: the query */
    const char *want; /* JSON of the value (sets as sorted arrays), "undefined", or NULL */
    const char *err;  /* when want is NULL: "code: text" that the error message contains */
};

/* Evaluates expr; returns a new JSON text of its value, "undefined", or "ERROR: msg". */
static char *eval_expr(struct cl_rego *e, const char *expr, const json_t *input)
{
    struct cl_rego_eval_opts o = {.strict_builtin_errors = true, .now_ns = NOW_NS};
    struct cl_err err = {0};
    struct cl_rv *rows = NULL;
    char *q = cl_strdupf("x := (%s)", expr);
    int rc = cl_rego_eval_query_rv(e, q, input, &o, &rows, &err);
    free(q);
    if (rc < 0)
        return cl_strdupf("ERROR: %s", err.msg);
    char *out;
    if (rows->u.arr.len == 0) {
        out = cl_strdupf("undefined");
    } else {
        const struct cl_rv *b = cl_rv_obj_get_str(rows->u.arr.items[0], "bindings");
        json_t *j = cl_rv_to_json(cl_rv_obj_get_str(b, "x"));
        out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        json_decref(j);
    }
    cl_rv_decref(rows);
    return out;
}

/* Equal as Rego values (1 == 1.0), after turning both sides into JSON values. */
static bool same_json(const char *got, const char *want)
{
    struct cl_err err = {0};
    json_t *a = cl_json_parse(got, strlen(got), 64, &err), *b = cl_json_parse(want, strlen(want), 64, &err);
    bool eq = false;
    if (a && b) {
        struct cl_rv *x = cl_rv_from_json(a), *y = cl_rv_from_json(b);
        eq = cl_rv_equal(x, y);
        cl_rv_decref(x);
        cl_rv_decref(y);
    }
    json_decref(a);
    json_decref(b);
    return eq;
}

static void run_cases(const struct bcase *cases, size_t n)
{
    struct cl_rego *e = cl_rego_new(NULL);
    assert_non_null(e);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char *got = eval_expr(e, cases[i].expr, NULL);
        bool ok;
        if (!cases[i].want)
            ok = strncmp(got, "ERROR: ", 7) == 0 && strstr(got, cases[i].err) != NULL;
        else if (!strcmp(cases[i].want, "undefined"))
            ok = !strcmp(got, "undefined");
        else
            ok = strncmp(got, "ERROR: ", 7) != 0 && strcmp(got, "undefined") != 0 && same_json(got, cases[i].want);
        if (!ok) {
            print_message("case %zu: %s\n  want %s%s\n  got  %s\n", i, cases[i].expr,
                          cases[i].want ? cases[i].want : "error ", cases[i].want ? "" : cases[i].err, got);
            failed++;
        }
        free(got);
    }
    cl_rego_free(e);
    assert_int_equal(failed, 0);
}

#define RUN(table) run_cases(table, sizeof(table) / sizeof((table)[0]))

/* ---- units ---- */

static const struct bcase units_cases[] = {
    {"units.parse(\"1K\")", "1000", NULL},
    {"units.parse(\"1k\")", "1000", NULL},
    {"units.parse(\"1Ki\")", "1024", NULL},
    {"units.parse(\"1ki\")", "1024", NULL},
    {"units.parse(\"1KI\")", "1024", NULL},
    {"units.parse(\"500m\")", "0.5", NULL},
    {"units.parse(\"1M\")", "1000000", NULL},
    {"units.parse(\"1Mi\")", "1048576", NULL},
    {"units.parse(\"2G\")", "2000000000", NULL},
    {"units.parse(\"1Ti\")", "1099511627776", NULL},
    {"units.parse(\"1P\")", "1000000000000000", NULL},
    {"units.parse(\"1Ei\")", "1152921504606846976", NULL},
    {"units.parse(\"9E\")", "9000000000000000000", NULL},
    {"units.parse(\"10E\")", "1e19", NULL},
    {"units.parse(\"0.0005K\")", "0.5", NULL},
    {"units.parse(\"0.0000005M\")", "0.5", NULL},
    {"units.parse(\"1.5\")", "1.5", NULL},
    {"units.parse(\".5\")", "0.5", NULL},
    {"units.parse(\"5.\")", "5", NULL},
    {"units.parse(\"-2K\")", "-2000", NULL},
    {"units.parse(\"1e3\")", "1000", NULL},
    {"units.parse(\"1E3\")", "1000", NULL},
    {"units.parse(\"1e-3\")", "0.001", NULL},
    {"units.parse(\"1m\")", "0.001", NULL},
    {"units.parse(\"1000m\")", "1", NULL},
    {"units.parse(\"0.123456789012m\")", "0.0001234568", NULL},
    {"units.parse(\"0.00000000004\")", "0", NULL},
    {"units.parse(\"0.99999999999\")", "1", NULL},
    {"units.parse(\"\\\"10\\\"K\")", "10000", NULL},
    {"units.parse(\"1E\")", "1000000000000000000", NULL},
    {"units.parse(\"\")", NULL, "eval_builtin_error: units.parse: units.parse: no amount provided"},
    {"units.parse(\"K\")", NULL, "no amount provided"},
    {"units.parse(\"1 K\")", NULL, "spaces not allowed in resource strings"},
    {"units.parse(\"1Q\")", NULL, "units.parse: unit Q not recognized"},
    {"units.parse(\"1mB\")", NULL, "unit mb not recognized"},
    {"units.parse(\"1.2.3\")", NULL, "could not parse amount to a number"},
    {"units.parse(\"1-2\")", NULL, "could not parse amount to a number"},
    {"units.parse(\"1e1234567\")", NULL, "exponent too large"},
    {"units.parse(\"1e999\")", NULL, "number too large"},
    {"units.parse(1)", NULL, "eval_type_error: units.parse: operand 1 must be string but got number"},
    {"units.parse_bytes(\"1KB\")", "1000", NULL},
    {"units.parse_bytes(\"1kib\")", "1024", NULL},
    {"units.parse_bytes(\"1Ki\")", "1024", NULL},
    {"units.parse_bytes(\"1m\")", "1000000", NULL},
    {"units.parse_bytes(\"4.1Mi\")", "4299161", NULL},
    {"units.parse_bytes(\"128Gi\")", "137438953472", NULL},
    {"units.parse_bytes(\"1.5\")", "1", NULL},
    {"units.parse_bytes(\"-1.5k\")", "-1500", NULL},
    {"units.parse_bytes(\"1EiB\")", "1152921504606846976", NULL},
    {"units.parse_bytes(\"16EiB\")", "1.8446744073709552e19", NULL},
    {"units.parse_bytes(\"1e3kb\")", "1000000", NULL},
    {"units.parse_bytes(\"\")", NULL, "units.parse_bytes: no byte amount provided"},
    {"units.parse_bytes(\"GB\")", NULL, "no byte amount provided"},
    {"units.parse_bytes(\"0.0.0\")", NULL, "could not parse byte amount to a number"},
    {"units.parse_bytes(\" 327MiB \")", NULL, "spaces not allowed in resource strings"},
    {"units.parse_bytes(\"1xb\")", NULL, "byte unit xb not recognized"},
    {"units.parse_bytes(\"1e9999999\")", NULL, "exponent too large"},
    {"units.parse_bytes(\"1e99999\")", NULL, "number too large"},
    {"units.parse_bytes([])", NULL, "eval_type_error: units.parse_bytes: operand 1 must be string but got array"},
};

static void test_units(void **state)
{
    (void)state;
    RUN(units_cases);
}

/* ---- semver, uuid ---- */

static const struct bcase semver_uuid_cases[] = {
    {"semver.is_valid(\"1.0.0\")", "true", NULL},
    {"semver.is_valid(\"v1.0.0\")", "true", NULL},
    {"semver.is_valid(\"1.0.0-rc.1+build.5\")", "true", NULL},
    {"semver.is_valid(\"1.0.0+\")", "true", NULL},
    {"semver.is_valid(\"1.0\")", "false", NULL},
    {"semver.is_valid(\"1.0.0.0\")", "false", NULL},
    {"semver.is_valid(\"1.a.0\")", "false", NULL},
    {"semver.is_valid(\"1.0.0-rc..1\")", "false", NULL},
    {"semver.is_valid(\"1.0.0+b_1\")", "false", NULL},
    {"semver.is_valid(\"99999999999999999999.0.0\")", "false", NULL},
    {"semver.is_valid(1)", "false", NULL},
    {"semver.compare(\"1.0.0\", \"2.0.0\")", "-1", NULL},
    {"semver.compare(\"2.0.0\", \"1.0.0\")", "1", NULL},
    {"semver.compare(\"1.2.3\", \"1.2.3+meta\")", "0", NULL},
    {"semver.compare(\"1.0.0-alpha\", \"1.0.0\")", "-1", NULL},
    {"semver.compare(\"1.0.0\", \"1.0.0-alpha\")", "1", NULL},
    {"semver.compare(\"1.0.0-alpha\", \"1.0.0-alpha.1\")", "-1", NULL},
    {"semver.compare(\"1.0.0-alpha.1\", \"1.0.0-alpha.beta\")", "-1", NULL},
    {"semver.compare(\"1.0.0-beta.11\", \"1.0.0-beta.2\")", "1", NULL},
    {"semver.compare(\"1.0.0-rc.1\", \"1.0.0-beta\")", "1", NULL},
    {"semver.compare(\"1.0.0-01\", \"1.0.0-1\")", "0", NULL},
    {"semver.compare(\"1.10.0\", \"1.9.0\")", "1", NULL},
    {"semver.compare(\"1.0.0\", \"1\")", NULL, "semver.compare: operand 2: string \"1\" is not a valid SemVer"},
    {"semver.compare(\"x\", \"1.0.0\")", NULL, "operand 1: string \"x\" is not a valid SemVer"},
    {"semver.compare(1, \"1.0.0\")", NULL, "eval_type_error: semver.compare: operand 1 must be string but got number"},
    {"uuid.parse(\"00000000-0000-4000-8000-000000000000\")", "{\"variant\":\"RFC4122\",\"version\":4}", NULL},
    {"uuid.parse(\"{00000000-0000-4000-C000-000000000000}\")", "{\"variant\":\"Microsoft\",\"version\":4}", NULL},
    {"uuid.parse(\"urn:uuid:00000000-0000-4000-e000-000000000000\")", "{\"variant\":\"Future\",\"version\":4}", NULL},
    {"uuid.parse(\"00000000000040000000000000000000\")", "{\"variant\":\"Reserved\",\"version\":4}", NULL},
    {"uuid.parse(\"c6de7d0c-3a55-11ee-be56-0242ac120002\")",
     "{\"clocksequence\":15958,\"nodeid\":\"local:unicast:0242ac120002\",\"time\":1691985057816500400,"
     "\"variant\":\"RFC4122\",\"version\":1}",
     NULL},
    {"uuid.parse(\"000003e8-3a55-21ee-be01-0342ac120002\")",
     "{\"clocksequence\":15873,\"domain\":\"Group\",\"id\":1000,\"nodeid\":\"local:multicast:0342ac120002\","
     "\"time\":1691984724169623200,\"variant\":\"RFC4122\",\"version\":2}",
     NULL},
    {"uuid.parse(\"00000000-0000-4000-8000-00000000000\")", "undefined", NULL},
    {"uuid.parse(\"00000000x0000-4000-8000-000000000000\")", "undefined", NULL},
    {"uuid.parse(\"g0000000-0000-4000-8000-000000000000\")", "undefined", NULL},
    {"uuid.parse(1)", NULL, "eval_type_error: uuid.parse: operand 1 must be string but got number"},
    {"uuid.rfc4122(\"a\") == uuid.rfc4122(\"a\")", "true", NULL},
    {"uuid.rfc4122(\"a\") != uuid.rfc4122(\"b\")", "true", NULL},
    {"regex.match(\"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$\", uuid.rfc4122(\"x\"))", "true",
     NULL},
    {"uuid.parse(uuid.rfc4122(\"k\"))", "{\"variant\":\"RFC4122\",\"version\":4}", NULL},
    {"uuid.rfc4122(1)", NULL, "eval_type_error: uuid.rfc4122: operand 1 must be string but got number"},
};

static void test_semver_uuid(void **state)
{
    (void)state;
    RUN(semver_uuid_cases);
}

/* ---- graph ---- */

static const struct bcase graph_cases[] = {
    {"graph.reachable({\"a\": {\"b\"}, \"b\": {\"c\"}, \"c\": {\"a\"}}, {\"a\"})", "[\"a\",\"b\",\"c\"]", NULL},
    {"graph.reachable({\"a\": [\"b\"], \"b\": [], \"c\": [\"a\"]}, [\"a\"])", "[\"a\",\"b\"]", NULL},
    {"graph.reachable({\"a\": null}, [\"a\"])", "[\"a\"]", NULL},
    {"graph.reachable({\"a\": [\"x\"]}, [\"a\", \"z\"])", "[\"a\"]", NULL},
    {"graph.reachable({}, set())", "[]", NULL},
    {"graph.reachable(1, [1])", NULL, "eval_type_error: graph.reachable: operand 1 must be object but got number"},
    {"graph.reachable({}, \"a\")", NULL, "eval_type_error: graph.reachable: operand 2 must be {array, set} but got string"},
    {"graph.reachable_paths({}, {\"a\"})", "[]", NULL},
    {"graph.reachable_paths({\"a\": {\"b\"}, \"b\": {\"c\"}, \"c\": {\"a\"}}, {\"a\"})", "[[\"a\",\"b\",\"c\"]]", NULL},
    {"graph.reachable_paths({\"a\": [\"b\", \"c\"], \"b\": [\"c\"], \"c\": []}, {\"a\"})",
     "[[\"a\",\"b\",\"c\"],[\"a\",\"c\"]]", NULL},
    {"graph.reachable_paths({\"a\": [\"b\"], \"b\": [\"nonexistent\"]}, {\"a\", \"b\"})", "[[\"a\",\"b\"],[\"b\"]]", NULL},
    {"graph.reachable_paths({\"a\": null}, [\"a\"])", "[[\"a\"]]", NULL},
    {"graph.reachable_paths({\"a\": {\"b\", \"c\"}, \"b\": {\"d\"}, \"c\": {\"d\"}, \"d\": set(), \"e\": {\"f\"}, "
     "\"f\": {\"e\"}, \"x\": {\"x\"}}, {\"b\", \"e\"})",
     "[[\"b\",\"d\"],[\"e\",\"f\"]]", NULL},
    {"graph.reachable_paths({\"x\": {\"x\"}}, [\"x\"])", "[[\"x\"]]", NULL},
    {"graph.reachable_paths(1, [1])", NULL, "eval_type_error: graph.reachable_paths: operand 1 must be object"},
    {"graph.reachable_paths({\"a\": []}, \"a\")", NULL, "operand 2 must be {array, set} but got string"},
    /* a complete graph of 12 nodes has more simple paths than the step cap allows */
    {"graph.reachable_paths({i: [j | some j in numbers.range(0, 11); j != i] | some i in numbers.range(0, 11)}, [0])",
     NULL, "eval_builtin_error: graph.reachable_paths: too many paths"},
};

static void test_graph(void **state)
{
    (void)state;
    RUN(graph_cases);
}

/* ---- time ---- */

static const struct bcase time_cases[] = {
    {"time.now_ns()", "1670006453141828752", NULL},
    {"time.parse_ns(\"2006-01-02T15:04:05Z07:00\", \"2017-06-02T19:00:00-07:00\")", "1496455200000000000", NULL},
    {"time.parse_ns(\"RFC822Z\", \"02 Jun 17 19:00 -0700\")", "1496455200000000000", NULL},
    {"time.parse_ns(\"01/02 03:04:05PM '06 -0700\", \"06/02 07:00:00PM '17 -0700\")", "1496455200000000000", NULL},
    {"time.parse_ns(\"2006-01-02\", \"2020-02-29\")", "1582934400000000000", NULL},
    {"time.parse_ns(\"Jan _2 2006 15:04:05.000\", \"Feb  3 2013 10:00:00.123\")", "1359885600123000000", NULL},
    {"time.parse_ns(\"Monday, January 2 2006 3PM MST\", \"tuesday, march 3 2020 4PM PST\")", "1583251200000000000", NULL},
    {"time.parse_ns(\"2006-01-02 15:04 MST\", \"2020-01-01 00:00 GMT+2\")", "1577829600000000000", NULL},
    {"time.parse_ns(\"2006-01-02 15:04 MST\", \"2020-01-01 00:00 UTC\")", "1577836800000000000", NULL},
    {"time.parse_ns(\"2006-002\", \"2020-060\")", "1582934400000000000", NULL},
    {"time.parse_ns(\"2006-01-02T15:04:05Z07:00\", \"2020-01-01T00:00:00.5Z\")", "1577836800500000000", NULL},
    {"time.parse_ns(\"2006-01-02 15:04:05.999\", \"2020-01-01 00:00:00\")", "1577836800000000000", NULL},
    {"time.parse_ns(\"2006-01-02 15:04:05,000\", \"2020-01-01 00:00:00,250\")", "1577836800250000000", NULL},
    {"time.parse_ns(\"3:04pm\", \"12:30am\")", NULL, "time outside of valid range"},
    {"time.parse_ns(\"2006 3:04pm\", \"2000 12:30am\")", "946686600000000000", NULL},
    {"time.parse_ns(\"2006 3:04PM\", \"2000 12:30PM\")", "946729800000000000", NULL},
    {"time.parse_ns(\"2006-01-02\", \"2020-02-30\")", NULL,
     "time.parse_ns: parsing time \"2020-02-30\": day out of range"},
    {"time.parse_ns(\"2006-01-02\", \"2020-13-01\")", NULL, "parsing time \"2020-13-01\": month out of range"},
    {"time.parse_ns(\"2006-01-02\", \"2020-01-01x\")", NULL, "parsing time \"2020-01-01x\": extra text: \"x\""},
    {"time.parse_ns(\"2006-01-02\", \"20-01-01\")", NULL,
     "parsing time \"20-01-01\" as \"2006-01-02\": cannot parse \"20-01-01\" as \"2006\""},
    {"time.parse_ns(\"2006/01/02\", \"2006-01-02\")", NULL,
     "parsing time \"2006-01-02\" as \"2006/01/02\": cannot parse \"-01-02\" as \"/\""},
    {"time.parse_ns(\"15:04\", \"25:00\")", NULL, "hour out of range"},
    {"time.parse_ns(\"2006-01-02T15:04:05Z07:00\", \"1677-09-21T00:12:43.145224191-00:00\")", NULL,
     "eval_builtin_error: time.parse_ns: time outside of valid range"},
    {"time.parse_ns(1, \"x\")", NULL, "eval_type_error: time.parse_ns: operand 1 must be string but got number"},
    {"time.parse_ns(\"x\", 1)", NULL, "eval_type_error: time.parse_ns: operand 2 must be string but got number"},
    {"time.parse_rfc3339_ns(\"1970-01-01T00:00:00-00:00\")", "0", NULL},
    {"time.parse_rfc3339_ns(\"1677-09-21T00:12:43.145224192-00:00\")", "-9223372036854775808", NULL},
    {"time.parse_rfc3339_ns(\"2262-04-11T23:47:16.854775807-00:00\")", "9223372036854775807", NULL},
    {"time.parse_rfc3339_ns(\"2262-04-11T23:47:16.854775808-00:00\")", NULL, "time outside of valid range"},
    {"time.parse_rfc3339_ns(\"2017-06-02\")", NULL, "cannot parse \"\" as \"T\""},
    {"time.parse_rfc3339_ns(\"2017-06-02T19:00:00+25:00\")", NULL, "time zone offset hour out of range"},
    {"time.parse_duration_ns(\"100ms\")", "100000000", NULL},
    {"time.parse_duration_ns(\"1h30m\")", "5400000000000", NULL},
    {"time.parse_duration_ns(\"-1.5h\")", "-5400000000000", NULL},
    {"time.parse_duration_ns(\"1\xc2\xb5s\")", "1000", NULL},
    {"time.parse_duration_ns(\"0\")", "0", NULL},
    {"time.parse_duration_ns(\".5s\")", "500000000", NULL},
    {"time.parse_duration_ns(\"2562047h47m16.854775807s\")", "9223372036854775807", NULL},
    {"time.parse_duration_ns(\"-2562047h47m16.854775808s\")", "-9223372036854775808", NULL},
    {"time.parse_duration_ns(\"2562047h47m16.854775808s\")", NULL, "time: invalid duration \"2562047h47m16.854775808s\""},
    {"time.parse_duration_ns(\"\")", NULL, "time.parse_duration_ns: time: invalid duration \"\""},
    {"time.parse_duration_ns(\"1\")", NULL, "time: missing unit in duration \"1\""},
    {"time.parse_duration_ns(\"1d\")", NULL, "time: unknown unit \"d\" in duration \"1d\""},
    {"time.parse_duration_ns(\".s\")", NULL, "time: invalid duration \".s\""},
    {"time.parse_duration_ns(\"x1s\")", NULL, "time: invalid duration"},
    {"time.date(1517814000000000000)", "[2018,2,5]", NULL},
    {"time.date([1517814000000000000, \"America/Los_Angeles\"])", "[2018,2,4]", NULL},
    {"time.date([1517832000000000000, \"\"])", "[2018,2,5]", NULL},
    {"time.date(-1)", "[1969,12,31]", NULL},
    {"time.date([1, \"Mars/Olympus\"])", NULL, "eval_builtin_error: time.date: unknown time zone Mars/Olympus"},
    {"time.date([1, \"../../etc/passwd\"])", NULL, "time: invalid location name"},
    {"time.date([1, \"/etc/passwd\"])", NULL, "time: invalid location name"},
    {"time.date([])", NULL,
     "eval_type_error: time.date: operand 1 must be either number (ns) or [number (ns), string (tz)] but got array"},
    {"time.date(\"x\")", NULL, "operand 1 must be either number (ns) or [number (ns), string (tz)] but got string"},
    {"time.date([\"x\"])", NULL, "eval_type_error: time.date: operand 1 must be number but got string"},
    {"time.date([1, 2])", NULL, "eval_type_error: time.date: operand 1 must be string but got number"},
    {"time.date(1.5)", NULL, "eval_builtin_error: time.date: timestamp too big"},
    {"time.clock(1517832000000000000)", "[12,0,0]", NULL},
    {"time.clock([1517832000000000000, \"America/New_York\"])", "[7,0,0]", NULL},
    {"time.clock([1720000000000000000, \"America/New_York\"])", "[5,46,40]", NULL},
    {"time.clock([4102444800000000000, \"America/New_York\"])", "[19,0,0]", NULL},
    {"time.clock([4118083200000000000, \"America/New_York\"])", "[20,0,0]", NULL},
    {"time.clock([4118083200000000000, \"Australia/Sydney\"])", "[10,0,0]", NULL},
    {"time.clock([1, \"Local\"])", "[0,0,0]", NULL},
    {"time.clock([0, \"Etc/GMT+3\"])", "[21,0,0]", NULL},
    {"time.weekday(1517918400000000000)", "\"Tuesday\"", NULL},
    {"time.weekday([1518350400000000000, \"Asia/Tokyo\"])", "\"Sunday\"", NULL},
    {"time.weekday(1582977600000000000000)", NULL, "timestamp too big"},
    {"time.add_date(1585852421593912000, 3, 9, 12)", "1705257221593912000", NULL},
    {"time.add_date(1585852421593912000, -1, -1, -1)", "1551465221593912000", NULL},
    {"time.add_date(1580515200000000000, 0, 1, 0)", "1583020800000000000", NULL},
    {"time.add_date(1580428800000000000, 0, 1, 0)", "1583107200000000000", NULL},
    {"time.add_date([1583650800000000000, \"America/New_York\"], 0, 0, 1)", "1583737200000000000", NULL},
    {"time.add_date(0, 2262, 1, 1)", NULL, "time.add_date: time outside of valid range"},
    {"time.add_date(-9223372036854775808, 0, 0, -1)", NULL, "time outside of valid range"},
    {"time.add_date(0, 9223372036854775807, 0, 0)", NULL, "time outside of valid range"},
    {"time.add_date(0, 1000000000000, -12000000000000, 0)", "0", NULL},
    {"time.add_date(0, 0, -9223372036854775807 - 1, 0)", NULL, "time outside of valid range"},
    {"time.add_date(0, 0, 0, -9223372036854775807 - 1)", NULL, "time outside of valid range"},
    {"time.add_date(0, 0, 0, 9223372036854775807)", NULL, "time outside of valid range"},
    {"time.add_date(0, 1.5, 0, 0)", NULL, "operand 2 must be an integer"},
    {"time.add_date(0, \"1\", 0, 0)", NULL, "eval_type_error: time.add_date: operand 2 must be number but got string"},
    {"time.diff(time.parse_ns(\"2006-01-02\", \"2020-02-02\"), time.parse_ns(\"2006-01-02\", \"2020-03-01\"))",
     "[0,0,28,0,0,0]", NULL},
    {"time.diff(time.parse_ns(\"2006-01-02\", \"2021-03-01\"), time.parse_ns(\"2006-01-02\", \"2021-02-02\"))",
     "[0,0,27,0,0,0]", NULL},
    {"time.diff(time.parse_ns(\"2006-01-02\", \"2004-02-29\"), time.parse_ns(\"2006-01-02\", \"2005-03-01\"))",
     "[1,0,1,0,0,0]", NULL},
    {"time.diff([0, \"UTC\"], [3661000000000, \"Asia/Shanghai\"])", "[0,0,0,1,1,1]", NULL},
    {"time.diff(0, \"x\")", NULL, "eval_type_error: time.diff: operand 1 must be either number (ns)"},
    {"time.format(1670006453141828752)", "\"2022-12-02T18:40:53.141828752Z\"", NULL},
    {"time.format([1670006453141828752, \"Asia/Kolkata\"])", "\"2022-12-03T00:10:53.141828752+05:30\"", NULL},
    {"time.format([1670006453141828752, \"Asia/Kolkata\", \"Mon Jan 02 15:04:05 -0700 2006\"])",
     "\"Sat Dec 03 00:10:53 +0530 2022\"", NULL},
    {"time.format([1670006453141828752, \"Asia/Kolkata\", \"RFC1123Z\"])", "\"Sat, 03 Dec 2022 00:10:53 +0530\"", NULL},
    {"time.format([1670006453141828752, \"America/New_York\", \"RFC1123\"])", "\"Fri, 02 Dec 2022 13:40:53 EST\"", NULL},
    {"time.format([1670006453141828752, \"UTC\", \"Monday January _2 3:4:5 PM pm .000 ,999999 __2 002 06 Z07 -07:00:00\"])",
     "\"Friday December  2 6:40:53 PM pm .141 ,141828 336 336 22 Z +00:00:00\"", NULL},
    {"time.format([1000000000, \"\", \"2006-01-02T15:04:05.999999999Z07:00 .000000000 .99\"])",
     "\"1970-01-01T00:00:01Z .000000000 \"", NULL},
    {"time.format([1670006453141828752, \"Etc/GMT+3\", \"MST -0700 Z0700 -07\"])", "\"-03 -0300 -0300 -03\"", NULL},
    {"time.format(1582977600 * 10e12)", NULL, "eval_builtin_error: time.format: timestamp too big"},
    {"time.format([1, \"UTC\", 5])", NULL, "eval_type_error: time.format: operand 1 must be string but got number"},
};

static void test_time(void **state)
{
    (void)state;
    RUN(time_cases);
}

/* ---- net ---- */

static const struct bcase net_cases[] = {
    {"net.cidr_contains(\"10.0.0.0/8\", \"10.1.2.3\")", "true", NULL},
    {"net.cidr_contains(\"10.0.0.0/8\", \"11.1.2.3\")", "false", NULL},
    {"net.cidr_contains(\"10.0.0.0/8\", \"10.1.0.0/16\")", "true", NULL},
    {"net.cidr_contains(\"10.0.0.0/16\", \"10.0.0.0/8\")", "false", NULL},
    {"net.cidr_contains(\"10.0.0.0/8\", \"::ffff:10.1.2.3\")", "true", NULL},
    {"net.cidr_contains(\"::ffff:0:0/96\", \"1.2.3.4\")", "true", NULL},
    {"net.cidr_contains(\"2001:db8::/32\", \"2001:db8:1::1\")", "true", NULL},
    {"net.cidr_contains(\"2001:db8::/32\", \"2001:db9::1\")", "false", NULL},
    {"net.cidr_contains(\"2001:db8::/32\", \"10.0.0.1\")", "false", NULL},
    {"net.cidr_contains(\"0.0.0.0/0\", \"255.255.255.255/32\")", "true", NULL},
    {"net.cidr_contains(\"10.0.0.0/8\", \"010.0.0.1\")", NULL,
     "eval_builtin_error: net.cidr_contains: not a valid textual representation of an IP address or CIDR: 010.0.0.1"},
    {"net.cidr_contains(\"10.0.0.0/8\", \"fe80::1%eth0\")", NULL, "not a valid textual representation"},
    {"net.cidr_contains(\"10.0.0.0\", \"10.0.0.1\")", NULL, "eval_builtin_error: net.cidr_contains: invalid CIDR address: 10.0.0.0"},
    {"net.cidr_contains(\"10.0.0.0/33\", \"10.0.0.1\")", NULL, "invalid CIDR address: 10.0.0.0/33"},
    {"net.cidr_contains(\"10.0.0.0/8x\", \"10.0.0.1\")", NULL, "invalid CIDR address"},
    {"net.cidr_contains(1, \"10.0.0.1\")", NULL, "eval_type_error: net.cidr_contains: operand 1 must be string but got number"},
    {"net.cidr_contains(\"10.0.0.0/8\", 1)", NULL, "eval_type_error: net.cidr_contains: operand 1 must be string but got number"},
    {"net.cidr_intersects(\"10.0.0.0/8\", \"10.2.0.0/16\")", "true", NULL},
    {"net.cidr_intersects(\"10.2.0.0/16\", \"10.0.0.0/8\")", "true", NULL},
    {"net.cidr_intersects(\"10.0.0.0/16\", \"10.1.0.0/16\")", "false", NULL},
    {"net.cidr_intersects(\"fd00::/8\", \"fd12::/16\")", "true", NULL},
    {"net.cidr_intersects(\"10.0.0.0/8\", \"x\")", NULL, "invalid CIDR address: x"},
    {"net.cidr_is_valid(\"10.0.0.0/8\")", "true", NULL},
    {"net.cidr_is_valid(\"10.0.0.0/08\")", "true", NULL},
    {"net.cidr_is_valid(\"::/0\")", "true", NULL},
    {"net.cidr_is_valid(\"::ffff:1.2.3.4/128\")", "true", NULL},
    {"net.cidr_is_valid(\"1::2::3/64\")", "false", NULL},
    {"net.cidr_is_valid(\"1:2:3:4:5:6:7:8:9/64\")", "false", NULL},
    {"net.cidr_is_valid(\"1:2:3:4:5:6:7::8/64\")", "false", NULL},
    {"net.cidr_is_valid(\"12345::/64\")", "false", NULL},
    {"net.cidr_is_valid(\"1:2:3:4:5:6:1.2.3.4/64\")", "true", NULL},
    {"net.cidr_is_valid(\"1:2:3:4:5:1.2.3.4/64\")", "false", NULL},
    {"net.cidr_is_valid(\"1.2.3/8\")", "false", NULL},
    {"net.cidr_is_valid(\"1.2.3.4.5/8\")", "false", NULL},
    {"net.cidr_is_valid(\"256.2.3.4/8\")", "false", NULL},
    {"net.cidr_is_valid(\"1.2.3.4/\")", "false", NULL},
    {"net.cidr_is_valid(\"1.2.3.4/-1\")", "false", NULL},
    {"net.cidr_is_valid(\"1.2.3.4/99999999\")", "false", NULL},
    {"net.cidr_is_valid(\"::1/129\")", "false", NULL},
    {"net.cidr_is_valid(\"fe80::1%eth0/64\")", "false", NULL},
    {"net.cidr_is_valid(1)", "false", NULL},
    {"net.cidr_expand(\"192.168.1.1/30\")", "[\"192.168.1.0\",\"192.168.1.1\",\"192.168.1.2\",\"192.168.1.3\"]", NULL},
    {"net.cidr_expand(\"255.255.255.255/31\")", "[\"255.255.255.254\",\"255.255.255.255\"]", NULL},
    {"net.cidr_expand(\"2001:db8::/127\")", "[\"2001:db8::\",\"2001:db8::1\"]", NULL},
    {"net.cidr_expand(\"::ffff:1.2.3.4/127\")", "[\"1.2.3.4\",\"1.2.3.5\"]", NULL},
    {"net.cidr_expand(\"10.0.0.0/32\")", "[\"10.0.0.0\"]", NULL},
    {"net.cidr_expand(\"192.168.1.1/33\")", NULL, "eval_builtin_error: net.cidr_expand: invalid CIDR address: 192.168.1.1/33"},
    {"net.cidr_expand(\"0.0.0.0/0\")", NULL, "eval_limit_error: net.cidr_expand: evaluation memory limit exceeded"},
    {"net.cidr_expand(\"::/64\")", NULL, "eval_limit_error"},
    {"net.cidr_expand(1)", NULL, "eval_type_error: net.cidr_expand: operand 1 must be string but got number"},
    {"net.cidr_contains_matches(\"1.1.1.0/24\", \"1.1.1.1\")", "[[\"1.1.1.0/24\",\"1.1.1.1\"]]", NULL},
    {"net.cidr_contains_matches([\"1.1.2.0/24\", \"1.1.1.0/24\"], [\"1.1.1.1\", \"1.1.2.1\"])", "[[0,1],[1,0]]", NULL},
    {"net.cidr_contains_matches([[\"1.1.2.0/24\", 1], \"1.1.1.0/24\"], {\"a\": \"1.1.1.1\"})", "[[1,\"a\"]]", NULL},
    {"net.cidr_contains_matches({[\"1.1.1.0/24\", \"x\"]}, \"1.1.1.7\")", "[[[\"1.1.1.0/24\",\"x\"],\"1.1.1.7\"]]", NULL},
    {"net.cidr_contains_matches(1, \"1.1.1.1\")", "[]", NULL},
    {"net.cidr_contains_matches([\"1.1.1.0/24\"], [\"1.1.1.1\", 1])", NULL,
     "eval_builtin_error: net.cidr_contains_matches: operand 2: element must be string or non-empty array"},
    {"net.cidr_contains_matches([[]], [\"1.1.1.1\"])", NULL, "operand 1: element must be string or non-empty array"},
    {"net.cidr_contains_matches([\"x\"], [\"1.1.1.1\"])", NULL, "net.cidr_contains_matches: invalid CIDR address: x"},
    {"net.cidr_contains_matches([[1]], [\"1.1.1.1\"])", NULL,
     "eval_type_error: net.cidr_contains_matches: operand 1 must be string but got number"},
    {"net.cidr_merge([\"192.0.128.0/24\", \"192.0.129.0/24\"])", "[\"192.0.128.0/23\"]", NULL},
    {"net.cidr_merge([\"192.0.2.112/30\", \"192.0.2.116/31\", \"192.0.2.118/31\"])", "[\"192.0.2.112/29\"]", NULL},
    {"net.cidr_merge([\"192.0.2.112/31\", \"192.0.2.116/31\", \"192.0.2.118/31\"])", "[\"192.0.2.112/31\",\"192.0.2.116/30\"]",
     NULL},
    {"net.cidr_merge([\"192.0.2.112\"])", "[\"192.0.2.112/24\"]", NULL},
    {"net.cidr_merge([\"10.1.2.3\", \"10.1.2.3\"])", "[\"10.0.0.0/8\"]", NULL},
    {"net.cidr_merge([\"130.1.2.3\"])", "[\"130.1.2.3/16\"]", NULL},
    {"net.cidr_merge([\"192.0.2.112\", \"192.0.2.116/31\"])", "[\"192.0.2.0/24\"]", NULL},
    {"net.cidr_merge([\"10.0.0.1/32\", \"10.0.0.2/32\"])", "[\"10.0.0.1/32\",\"10.0.0.2/32\"]", NULL},
    {"net.cidr_merge([\"10.0.0.1/32\", \"10.0.0.2/31\", \"10.0.0.4/32\"])", "[\"10.0.0.1/32\",\"10.0.0.2/31\",\"10.0.0.4/32\"]",
     NULL},
    {"net.cidr_merge([\"10.0.0.0/32\", \"10.0.0.1/32\", \"10.0.0.2/32\"])", "[\"10.0.0.0/31\",\"10.0.0.2/32\"]", NULL},
    {"net.cidr_merge([\"0.0.0.0/32\", \"0.0.0.1/32\"])", "[\"0.0.0.0/31\"]", NULL},
    {"net.cidr_merge([\"255.255.255.254/32\", \"255.255.255.255/32\"])", "[\"255.255.255.254/31\"]", NULL},
    {"net.cidr_merge([\"::/1\", \"8000::/1\"])", "[\"::/0\"]", NULL},
    {"net.cidr_merge([\"2001:db8::/33\", \"2001:db8:8000::/33\", \"fe80::/120\", \"10.0.0.0/8\"])",
     "[\"10.0.0.0/8\",\"2001:db8::/32\",\"fe80::/120\"]", NULL},
    {"net.cidr_merge(set())", "[]", NULL},
    {"net.cidr_merge([\"2601:600::1\"])", NULL, "eval_builtin_error: net.cidr_merge: IPv6 invalid: needs prefix length"},
    {"net.cidr_merge([\"foo\"])", NULL, "net.cidr_merge: invalid CIDR address: foo"},
    {"net.cidr_merge([1])", NULL, "eval_builtin_error: net.cidr_merge: element must be string"},
    {"net.cidr_merge(\"10.0.0.0/8\")", NULL, "eval_builtin_error: net.cidr_merge: operand must be an array"},
};

static void test_net(void **state)
{
    (void)state;
    RUN(net_cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_semver_uuid),
        cmocka_unit_test(test_graph),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
