/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the Rego engine: values and ordering, parsing (each rejection with its
 * position), evaluation semantics, error codes (conflicts, strict builtin errors), limits,
 * extension builtins, JSON Patch and concurrent evaluation.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "rego/rego.h"
#include "json/json.h"

/* ---- values ---- */

static void test_values(void **state)
{
    (void)state;
    struct cl_rv *a = cl_rv_int(1), *b = cl_rv_float(1.0), *c = cl_rv_float(1.5),
                 *s = cl_rv_strz("a");
    assert_true(cl_rv_equal(a, b));
    assert_true(cl_rv_compare(a, c) < 0);
    assert_true(cl_rv_compare(c, s) < 0); /* number < string */
    assert_true(cl_rv_compare(cl_rv_null(), cl_rv_bool(false)) < 0);
    struct cl_rv *set = cl_rv_set();
    cl_rv_set_add(set, cl_rv_int(3));
    cl_rv_set_add(set, cl_rv_int(1));
    assert_false(cl_rv_set_add(set, cl_rv_float(3.0)));
    assert_int_equal(cl_rv_len(set), 2);
    assert_true(cl_rv_set_has(set, a));
    struct cl_rv *obj = cl_rv_object();
    cl_rv_obj_put(obj, cl_rv_int(2), cl_rv_strz("two")); /* non-string key */
    cl_rv_obj_put_str(obj, "k", cl_rv_bool(true));
    assert_non_null(cl_rv_obj_get_str(obj, "k"));
    char *txt = cl_rv_dump(obj);
    assert_string_equal(txt, "{2: \"two\", \"k\": true}");
    free(txt);
    assert_int_equal(cl_rv_hash(a), cl_rv_hash(b));
    cl_rv_decref(a);
    cl_rv_decref(b);
    cl_rv_decref(c);
    cl_rv_decref(s);
    cl_rv_decref(set);
    cl_rv_decref(obj);
}

/* ---- parse errors: one per rejection branch ---- */

struct bad_module {
    const char *text;
    const char *want; /* substring of the message */
};

static const struct bad_module bad_modules[] = {
    {"p := 1\n", "expected package declaration"},
    {"package\n", "expected a name"},
    {"package a\np := \"abc\n", "non-terminated string"},
    {"package a\np := `abc\n", "non-terminated raw string"},
    {"package a\np := \"\\q\"\n", "invalid escape sequence"},
    {"package a\np := \"\\u12\"\n", "invalid unicode escape"},
    {"package a\np := 1 ! 2\n", "illegal token"},
    {"package a\np := @\n", "illegal character"},
    {"package a\np { true }\n", "`if` keyword is required"},
    {"package a\np if { }\n", "found empty body"},
    {"package a\np if { x := [1, 2 }\n", "expected ']'"},
    {"package a\np if { f(1 }\n", "expected ')'"},
    {"package a\ndefault p\n", "default rule must have a value"},
    {"package a\ndefault p := 1 if { true }\n", "default rules cannot have a body"},
    {"package a\np contains 1 if true else := 2\n",
     "else keyword cannot be used on multi-value rules"},
    {"package a\np if { every 1 in [1] { true } }\n", "expected variable after every"},
    {"package a\np if { every x [1] { true } }\n", "expected 'in' in every"},
    {"package a\np if { x := 1 with input as }\n", "unexpected '}'"},
    {"package a\np if { some 1 }\n", "expected variable in some declaration"},
    {"package a\np if { x := 1 y := 2 }\n", "expected a new line or ';'"},
    {"package a\n1 := 2\n", "expected rule name"},
    {"package a\np := set(1)\n", "set() takes no arguments"},
    {"package a\nimport data.x as\n", "expected alias name"},
    {"package a\np if { not some x }\n", "unexpected expression after not"},
    {"package a\np := 1 2\n", "after rule"},
    {"package a\n# METADATA\n# title: [\np := 1\n", "yaml:"},
    {"package a\n# METADATA\n# - x\np := 1\n", "METADATA block must be a YAML mapping"},
    {"package a.\n", "unexpected eof token: expected ident"},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_modules / sizeof bad_modules[0]; i++) {
        struct cl_rego *e = cl_rego_new(NULL);
        struct cl_err err = {0};
        int rc = cl_rego_add_module(e, "m.rego", bad_modules[i].text, strlen(bad_modules[i].text),
                                    false, &err);
        if (rc != CL_EPARSE || !strstr(err.msg, bad_modules[i].want) ||
            !strstr(err.msg, "m.rego:") || !strstr(err.msg, ": rego_parse_error: "))
            fail_msg("case %zu (%s): rc %d msg %s", i, bad_modules[i].want, rc, err.msg);
        cl_rego_free(e);
    }
}

static void test_parse_depth_limit(void **state)
{
    (void)state;
    size_t n = 5000;
    char *text = malloc(n * 2 + 32);
    strcpy(text, "package a\np := ");
    size_t o = strlen(text);
    for (size_t i = 0; i < n; i++)
        text[o++] = '[';
    for (size_t i = 0; i < n; i++)
        text[o++] = ']';
    text[o] = 0;
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "deep.rego", text, o, false, &err), CL_EPARSE);
    assert_non_null(strstr(err.msg, "nesting too deep"));
    cl_rego_free(e);
    free(text);
}

/* ---- evaluation ---- */

struct eval_case {
    const char *module;
    const char *query;
    const char *input; /* JSON or NULL */
    const char *want;  /* JSON of the first expression value, "undefined", or "error:<code>" */
    bool strict;
};

static const struct eval_case eval_cases[] = {
    {"package t\np := 1", "data.t.p", NULL, "1", false},
    {"package t\np if false", "data.t.p", NULL, "undefined", false},
    {"package t\ndefault p := false\np if input.x == 1", "data.t.p", "{\"x\": 2}", "false", false},
    {"package t\np contains x if some x in [3, 1, 2]", "data.t.p", NULL, "[1,2,3]", false},
    {"package t\np[k] := v if some k, v in {\"a\": 1}", "data.t.p", NULL, "{\"a\":1}", false},
    {"package t\na.b[c].d := 1 if c := \"x\"", "data.t.a", NULL, "{\"b\":{\"x\":{\"d\":1}}}",
     false},
    {"package t\nf(x) := y if y := x * 2\np := f(21)", "data.t.p", NULL, "42", false},
    {"package t\nf(1) := \"one\"\nf(x) := \"other\" if x != 1\np := [f(1), f(2)]", "data.t.p", NULL,
     "[\"one\",\"other\"]", false},
    {"package t\np := 1 if false else := 2", "data.t.p", NULL, "2", false},
    {"package t\np if every x in [1, 2] { x > 0 }", "data.t.p", NULL, "true", false},
    {"package t\np if not input.deny", "data.t.p", "{}", "true", false},
    {"package t\np := count({x | x := [1, 1, 2][_]})", "data.t.p", NULL, "2", false},
    {"package t\np := {k: v | some k, v in {\"a\": 1, \"b\": 2}; v > 1}", "data.t.p", NULL,
     "{\"b\":2}", false},
    {"package t\np if { input.x == 7 with input.x as 7 }", "data.t.p", NULL, "true", false},
    {"package t\nq := 1\np if { q == 5 with data.t.q as 5 }", "data.t.p", NULL, "true", false},
    {"package t\np := 9223372036854775807 + 1 > 9223372036854775807", "data.t.p", NULL, "true",
     false},
    {"package t\np := 1 / 4", "data.t.p", NULL, "0.25", false},
    {"package t\np := sprintf(\"%d\", [9223372036854775807 + 1])", "data.t.p", NULL,
     "\"9223372036854775808\"", false},
    {"package t\np := sprintf(\"%v\", [-9223372036854775808 - 1])", "data.t.p", NULL,
     "\"-9223372036854775809\"", false},
    {"package t\np := sprintf(\"%v\", [123456789123456789 * 1000000000000])", "data.t.p", NULL,
     "\"123456789123456789000000000000\"", false},
    {"package t\np := (100000000000000000000 - 99999999999999999999) + 0", "data.t.p", NULL, "1",
     false},
    {"package t\np := 28857836529306024611913 > 28857836529306024611912", "data.t.p", NULL, "true",
     false},
    {"package t\np := 18446744073709551616 == 18446744073709551616.0", "data.t.p", NULL, "true",
     false},
    {"package t\np := {18446744073709551616, 18446744073709551616.0, 1.0, 1}", "data.t.p", NULL,
     "[1,1.8446744073709552e19]", false},
    {"package t\np := sprintf(\"%v\", [[2e308, -2e308]])", "data.t.p", NULL, "\"[2e308, -2e308]\"",
     false},
    {"package t\np := 7 % 3", "data.t.p", NULL, "1", false},
    {"package t\np := {1, 2} | {3}", "data.t.p", NULL, "[1,2,3]", false},
    {"package t\np := {1, 2} - {2}", "data.t.p", NULL, "[1]", false},
    {"package t\np := sprintf(\"%s-%d\", [\"a\", 5])", "data.t.p", NULL, "\"a-5\"", false},
    {"package t\np := regex.match(\"^a+$\", \"aaa\")", "data.t.p", NULL, "true", false},
    {"package t\np := regex.match(\"(a)(b)(c)\", \"xabcx\")", "data.t.p", NULL, "true", false},
    {"package t\np := regex.match(\"(a)(b)(c)\", \"xabx\")", "data.t.p", NULL, "false", false},
    {"package t\np := regex.match(\"(a)\\\\1\", \"aa\")", "data.t.p", NULL,
     "error:eval_builtin_error", true},
    {"package t\np := regex.match(\"(a)\\\\1\", \"aa\")", "data.t.p", NULL, "undefined", false},
    {"package t\np := regex.match(\"^(a+)+$\", \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\")",
     "data.t.p", NULL, "error:eval_builtin_error", true},
    {"package t\np := replace(\"abcabc\", \"bc\", \"-\")", "data.t.p", NULL, "\"a-a-\"", false},
    {"package t\np := replace(\"abc\", \"x\", \"-\")", "data.t.p", NULL, "\"abc\"", false},
    {"package t\np := 1 / 0", "data.t.p", NULL, "error:eval_builtin_error", true},
    /* language corners the conformance suite exercises, kept here as regressions */
    {"package t\np := $\"{$\"{1}\"}-{[1, \"a\"]}-{input.x with input.x as 3}\"", "data.t.p", NULL,
     "\"1-[1, \\\"a\\\"]-3\"", false},
    {"package t\np := $\"a\\{b}\"", "data.t.p", NULL, "\"a{b}\"", false},
    {"package t\np if { else.foo == 1; with.bar == 2 }\nelse.foo := 1\nwith.bar := 2", "data.t.p",
     NULL, "true", false},
    {"package t\np := [x, y] if {\"x\": x, \"y\": 2} = {\"x\": 1, \"y\": y}", "data.t.p", NULL,
     "[1,2]", false},
    {"package t\np := [x, y] if [x, 1] = [2, y]", "data.t.p", NULL, "[2,1]", false},
    {"package t\ndefault f(_) := 7\nf(1) := 1\np := [f(1), f(2)]", "data.t.p", NULL, "[1,7]",
     false},
    {"package t\nxs := {\"a\", \"b\"}\np := x if { y := {x | xs[x]}; x := count(y) }", "data.t.p",
     NULL, "2", false},
    {"package t\nf(x) := 1 if {x: 1 | true}\np := f(\"k\")", "data.t.p", NULL, "1", false},
    {"package t\nq[7] := 8 if false\np := q", "data.t.p", NULL, "{}", false},
    {"package t\np := x if { some x; x == input.xs[x] }", "data.t.p", "{\"xs\": [2, 1, 0]}", "1",
     false},
    {"package t\nr contains [1, 2]\nr contains [3, 4]\np := [x | r[[1, x]]]", "data.t.p", NULL,
     "[2]", false},
    {"package t\np := count({rand.intn(\"k\", 1000) | numbers.range(1, 20)[_]})", "data.t.p", NULL,
     "1", false},
    {"package t\np := http.send({\"method\": \"get\"})", "data.t.p", NULL, "error:eval_type_error",
     true},
    {"package t\np := http.send({\"method\": \"get\", \"url\": \"http://x\"})", "data.t.p", NULL,
     "error:eval_builtin_error", true},
    {"package t\np := x if { x := 5 with http.send as 5 }", "data.t.p", NULL, "5", false},
    {"package t\np := opa.runtime()", "data.t.p", NULL, "{}", false},
    {"package t\np := count(\"\\u00e9\\u00e9x\")", "data.t.p", NULL, "3", false},
    {"package t\np if { print(1 / 0) }", "data.t.p", NULL, "true", true},
    {"package t\np := rego.parse_module(\"x.rego\", \"package a.b\\nq := "
     "1\")[\"package\"].path[2].value",
     "data.t.p", NULL, "\"b\"", false},
    {"package t\np := rego.parse_module(\"x.rego\", \"package a.\")", "data.t.p", NULL,
     "error:eval_builtin_error", true},
    {"package t\n# METADATA\n# title: T\n# authors:\n# - Jane Doe <j@x.org>\np := "
     "rego.metadata.rule()",
     "data.t.p", NULL,
     "{\"authors\":[{\"email\":\"j@x.org\",\"name\":\"Jane "
     "Doe\"}],\"scope\":\"rule\",\"title\":\"T\"}",
     false},
    {"# METADATA\n# description: D\npackage t\np := rego.metadata.chain()", "data.t.p", NULL,
     "[{\"path\":[\"t\",\"p\"]},{\"annotations\":{\"description\":\"D\",\"scope\":\"package\"},"
     "\"path\":[\"t\"]}]",
     false},
    {"package t\n# no metadata here\np := rego.metadata.rule()", "data.t.p", NULL, "{}", false},
    {"package t\np := count(1)", "data.t.p", NULL, "error:eval_type_error", true},
    {"package t\np := 1\np := 2", "data.t.p", NULL, "error:eval_conflict_error", false},
    {"package t\nf(_) := 1\nf(_) := 2\np := f(0)", "data.t.p", NULL, "error:eval_conflict_error",
     false},
    {"package t\np := {\"a\": x | x := [1, 2][_]}", "data.t.p", NULL, "error:eval_conflict_error",
     false},
    {"package t\np if q\nq if p", "data.t.p", NULL, "error:rego_recursion_error", false},
    /* numbers as OPA has them: big integers exact for % and /, huge decimals compared exactly */
    {"package t\np := 12345678901234567890 % 7", "data.t.p", NULL, "1", false},
    {"package t\np := 12345678901234567891 % 7", "data.t.p", NULL, "2", false},
    {"package t\np := -12345678901234567890 % 7", "data.t.p", NULL, "-1", false},
    {"package t\np := 12345678901234567890 / 2 == 6172839450617283945", "data.t.p", NULL, "true",
     false},
    {"package t\np := 12345678901234567890 % 0", "data.t.p", NULL, "error:eval_builtin_error",
     true},
    {"package t\np := 12345678901234567890 % 1.5", "data.t.p", NULL, "error:eval_builtin_error",
     true},
    {"package t\np := 1e400 == 2e400", "data.t.p", NULL, "false", false},
    {"package t\np := 1e400 == 10e399", "data.t.p", NULL, "true", false},
    {"package t\np := 1e400 - 1e400", "data.t.p", NULL, "0", false},
    {"package t\np := [1e400 < 2e400, -1e400 < -2e400, 1e400 > 1e308, -1e400 < 0]", "data.t.p",
     NULL, "[true,false,true,true]", false},
    {"package t\np := count({1e400, 10e399, 2e400})", "data.t.p", NULL, "2", false},
    {"package t\np := (2e400 - 1e400) == 1e400", "data.t.p", NULL, "true", false},
    {"package t\np := (1e400 * 0) + 1", "data.t.p", NULL, "1", false},
    {"package t\np := 28857836529306024611913.0 == 28857836529306024611913", "data.t.p", NULL,
     "true", false},
    {"package t\np := 28857836529306024611913.0 == 28857836529306024611912", "data.t.p", NULL,
     "false", false},
    {"package t\np := count({28857836529306024611913.0, 28857836529306024611913})", "data.t.p",
     NULL, "1", false},
    {"package t\np := 3.14159265358979323846 > 3.14159265358979323845", "data.t.p", NULL, "true",
     false},
    {"package t\np := sprintf(\"%v\", [3.14159265358979323846 * 2])", "data.t.p", NULL,
     "\"6.28318530717958647692\"", false},
    /* recursion is a compile-time error, found whether or not the query reaches it */
    {"package t\nf(x) := y if y := f(x + 1)\np := f(0)", "data.t.p", NULL,
     "error:rego_recursion_error", false},
    {"package t\nf(x) := g(x)\ng(x) := f(x)\np := 1", "data.t.p", NULL,
     "error:rego_recursion_error", false},
    {"package t\nf(x) := g(x)\ng(x) := x + 1\np := f(1)", "data.t.p", NULL, "2", false},
    {"package t\np := count(data.t)", "data.t.p", NULL, "error:rego_recursion_error", false},
    {"package t\np := count(data.t.q)\nq := [1, 2]", "data.t.p", NULL, "2", false},
    {"package t\np := [x | x := data.t[_].v]\na.v := 1", "data.t.p", NULL,
     "error:rego_recursion_error", false},
    {"package t\np := [x | x := data.t[_].v]", "data.t.p", NULL, "error:rego_recursion_error",
     false},
    {"package t\np := [x | x := data.t.a[_].v]\nb.v := 1", "data.t.p", NULL, "[]", false},
    {"package t\np := data[2]", "data.t.p", NULL, "undefined", false},
    /* one path, one kind of document */
    {"package t\ns contains 1\ns := {2}", "data.t.s", NULL, "error:rego_type_error", false},
    {"package t\ns contains 1\ns contains 2", "data.t.s", NULL, "[1,2]", false},
    {"package t\na.b contains 1\na.b.c := 2", "data.t.a", NULL, "error:rego_type_error", false},
    {"package t\na.b contains 1\na.c := 2", "data.t.a", NULL, "{\"b\":[1],\"c\":2}", false},
    {"package t\np := 1\np[x] := 2 if x := \"a\"", "data.t.p", NULL, "error:rego_type_error",
     false},
    {"package t\np.b := 1\np[x] := 2 if x := \"a\"", "data.t.p", NULL, "{\"a\":2,\"b\":1}", false},
    {"package t\nf(x) := 1\nf := 2", "data.t.f", NULL, "error:rego_type_error", false},
    {"package t\na.b := 1\na.b.c := 2", "data.t.a", NULL, "error:rego_type_error", false},
    /* keywords as the first part of a rule reference */
    {"package t\nnot.foo := 1\np := data.t[\"not\"].foo", "data.t.p", NULL, "1", false},
    {"package t\np := 1 if true\nin.foo contains 3\nq := data.t[\"in\"].foo", "data.t.q", NULL,
     "[3]", false},
    {"package t\np := 1 if true\nin.foo contains 3", "data.t.p", NULL, "1", false},
    {"package t\np := 1\nif.f(x) := x + 1\nq := data.t[\"if\"].f(2)", "data.t.q", NULL, "3", false},
    {"package t\nsome.y := 2\np if { some.y == 2 }", "data.t.p", NULL, "true", false},
    {"package t\nevery.x := 3\np if every.x == 3", "data.t.p", NULL, "true", false},
    {"package t\ncontains.z := 4\np := contains.z", "data.t.p", NULL, "4", false},
    {"package t\np if { some x in [1]; x == 1; every y in [1] { y > 0 }; not false }", "data.t.p",
     NULL, "true", false},
    {"package t\np if { 1 in [1] }", "data.t.p", NULL, "true", false},
    {"package t\np if { not.foo }\nnot.foo := false", "data.t.p", NULL, "undefined", false},
    /* ref heads with variables and set leaves merge with ground ones */
    {"package t\np[q].r contains s if { q := \"b\"; s := \"bar\" }\np.b.r contains \"foo\"",
     "data.t.p", NULL, "{\"b\":{\"r\":[\"bar\",\"foo\"]}}", false},
    {"package t\np[q].r contains s if { q := \"c\"; s := \"bar\" }\np.b.r contains \"foo\"",
     "data.t.p", NULL, "{\"b\":{\"r\":[\"foo\"]},\"c\":{\"r\":[\"bar\"]}}", false},
    {"package t\np if { x > 1 }", "data.t.p", NULL, "error:rego_unsafe_var_error", false},
    {"package t\np := nope(1)", "data.t.p", NULL, "error:rego_type_error", false},
    {"package t\np if { x := 1; x := 2 }", "data.t.p", NULL, "error:rego_compile_error", false},
    {"package t\np := $\"a{1 + 1}b\"", "data.t.p", NULL, "\"a2b\"", false},
    {"package t\np := object.get({\"a\": {\"b\": 1}}, [\"a\", \"b\"], 0)", "data.t.p", NULL, "1",
     false},
    {"package t\np := json.marshal({\"a\": [1]})", "data.t.p", NULL, "\"{\\\"a\\\":[1]}\"", false},
    {"package t\np := base64.decode(\"aGk=\")", "data.t.p", NULL, "\"hi\"", false},
    {"package t\np := glob.match(\"*.com\", [\".\"], \"a.com\")", "data.t.p", NULL, "true", false},
    {"package t\np := [x | walk({\"a\": 1}, [[\"a\"], x])]", "data.t.p", NULL, "[1]", false},
};

static void test_eval(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof eval_cases / sizeof eval_cases[0]; i++) {
        const struct eval_case *tc = &eval_cases[i];
        struct cl_rego_opts o = {.strict_builtin_errors = tc->strict};
        struct cl_rego *e = cl_rego_new(&o);
        struct cl_err err = {0};
        int rc = cl_rego_add_module(e, "t.rego", tc->module, strlen(tc->module), false, &err);
        json_t *in = tc->input ? json_loads(tc->input, 0, NULL) : NULL;
        json_t *v = rc == 0 ? cl_rego_eval_ref(e, tc->query, in, &err) : NULL;
        char got[600];
        char code[64];
        if (v) {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
            snprintf(got, sizeof got, "%s", s);
            free(s);
        } else if (err.code) {
            snprintf(got, sizeof got, "error:%s", cl_rego_err_code(&err, code, sizeof code));
        } else {
            snprintf(got, sizeof got, "undefined");
        }
        json_t *wj = json_loads(tc->want, JSON_DECODE_ANY, NULL);
        bool ok = wj && v ? json_equal(wj, v) : strcmp(got, tc->want) == 0;
        if (wj && v && !ok && json_is_number(wj) && json_is_number(v))
            ok = json_number_value(wj) == json_number_value(v);
        if (!ok)
            fail_msg("case %zu (%s): want %s got %s (%s)", i, tc->module, tc->want, got, err.msg);
        json_decref(wj);
        json_decref(v);
        json_decref(in);
        cl_rego_free(e);
    }
}

static void test_query_bindings(void **state)
{
    (void)state;
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    json_t *res = NULL;
    assert_int_equal(cl_rego_eval_query(e, "x := [1, 2][_]; x > 1", NULL, &res, &err), 0);
    assert_int_equal(json_array_size(res), 1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(json_array_get(res, 0), "bindings"), "x")),
                     2);
    json_decref(res);
    assert_int_equal(cl_rego_eval_query(e, "x := ", NULL, &res, &err), CL_EPARSE);
    cl_rego_free(e);
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    (void)state;
    struct {
        const char *module;
        struct cl_rego_opts o;
    } cases[] = {
        {"package t\np := count([x | x := numbers.range(1, 100000)[_]])", {.max_steps = 1000}},
        {"package t\np := numbers.range(1, 100000000)", {.max_memory = 1 << 20}},
        {NULL, {.max_depth = 64}}, /* a chain of 100 rules, built below */
        {"package t\np := concat(\"\", [x | x := numbers.range(1, 200000)[_]; y := sprintf(\"%d\", "
         "[x])])",
         {.max_memory = 1 << 20}},
    };
    char chain[4096] = "package t\np := q0\n";
    for (int i = 0; i < 100; i++)
        snprintf(chain + strlen(chain), sizeof chain - strlen(chain), "q%d := q%d\n", i, i + 1);
    snprintf(chain + strlen(chain), sizeof chain - strlen(chain), "q100 := 1\n");
    cases[2].module = chain;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cl_rego *e = cl_rego_new(&cases[i].o);
        struct cl_err err = {0};
        assert_int_equal(
            cl_rego_add_module(e, "t.rego", cases[i].module, strlen(cases[i].module), false, &err),
            0);
        json_t *v = cl_rego_eval_ref(e, "data.t.p", NULL, &err);
        if (v || err.code != CL_ELIMIT)
            fail_msg("limit case %zu: code %d msg %s", i, err.code, err.msg);
        cl_rego_free(e);
    }
}

/* ---- extension builtins ---- */

static int ext_double(struct cl_rego_bctx *ctx, struct cl_rv *const *args, struct cl_rv **out)
{
    int *calls = cl_rego_bi_user(ctx);
    (*calls)++;
    int64_t v;
    if (cl_rego_bi_want_int(ctx, args, 0, &v) < 0)
        return -1;
    *out = cl_rv_int(v * 2);
    return 0;
}

static void test_extension(void **state)
{
    (void)state;
    int calls = 0;
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(
        cl_rego_register_builtin(e, "query_reference_value", 1, ext_double, &calls, &err), 0);
    assert_int_equal(
        cl_rego_register_builtin(e, "query_reference_value", 1, ext_double, &calls, &err),
        CL_EEXISTS);
    const char *m = "package t\np := query_reference_value(21)";
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    json_t *v = cl_rego_eval_ref(e, "data.t.p", NULL, &err);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), 42);
    assert_int_equal(calls, 1);
    json_decref(v);
    cl_rego_free(e);
}

/* ---- v0 syntax ---- */

static void test_v0(void **state)
{
    (void)state;
    const char *m =
        "package t\nimport future.keywords.in\np[x] { x := [1, 2][_] }\nq = y { y := count(p) }\n"
        "r { contains(\"abc\", \"b\") }\n";
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), true, &err), 0);
    json_t *v = cl_rego_eval_ref(e, "data.t.q", NULL, &err);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), 2);
    json_decref(v);
    v = cl_rego_eval_ref(e, "data.t.r", NULL, &err);
    assert_true(json_is_true(v));
    json_decref(v);
    cl_rego_free(e);
}

/* ---- JSON Patch ---- */

struct patch_case {
    const char *doc, *patch, *want; /* want NULL: must fail */
};

static const struct patch_case patch_cases[] = {
    {"{\"pstate\":{}}", "[{\"op\":\"add\",\"path\":\"/pstate/a\",\"value\":1}]",
     "{\"pstate\":{\"a\":1}}"},
    {"{\"pstate\":{\"a\":1}}", "[{\"op\":\"remove\",\"path\":\"/pstate/a\"}]", "{\"pstate\":{}}"},
    {"{\"pstate\":{}}", "[{\"op\":\"remove\",\"path\":\"/pstate/a\"}]", NULL},
    {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":2}]", "{\"a\":2}"},
    {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":2}]", NULL},
    {"{\"a\":[1,3]}", "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":2}]", "{\"a\":[1,2,3]}"},
    {"{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":2}]", "{\"a\":[1,2]}"},
    {"{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":2}]", NULL},
    {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]", "{\"a\":1}"},
    {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]", NULL},
    {"{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"b\":1}"},
    {"{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"a\":1,\"b\":1}"},
    {"{\"a~b\":1}", "[{\"op\":\"remove\",\"path\":\"/a~0b\"}]", "{}"},
    {"{}", "[{\"op\":\"bogus\",\"path\":\"/a\"}]", NULL},
    {"{}", "[{\"op\":\"add\"}]", NULL},
    {"{}", "{}", NULL},
};

static void test_json_patch(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof patch_cases / sizeof patch_cases[0]; i++) {
        json_t *doc = json_loads(patch_cases[i].doc, 0, NULL),
               *patch = json_loads(patch_cases[i].patch, 0, NULL);
        struct cl_err err = {0};
        int rc = cl_rego_json_patch(&doc, patch, &err);
        if (patch_cases[i].want) {
            json_t *w = json_loads(patch_cases[i].want, 0, NULL);
            if (rc != 0 || !json_equal(w, doc))
                fail_msg("patch case %zu: rc %d %s", i, rc, err.msg);
            json_decref(w);
        } else if (rc == 0) {
            fail_msg("patch case %zu: expected failure", i);
        }
        json_decref(doc);
        json_decref(patch);
    }
}

/* ---- threads: one compiled engine, concurrent evaluations ---- */

static void *worker(void *arg)
{
    struct cl_rego *e = arg;
    for (int i = 0; i < 200; i++) {
        struct cl_err err = {0};
        json_t *in = json_pack("{s:i}", "n", i);
        json_t *v = cl_rego_eval_ref(e, "data.t.p", in, &err);
        if (!v || json_integer_value(v) != i * 2 + 3)
            return (void *)1;
        json_decref(v);
        json_decref(in);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    const char *m = "package t\nk := {\"a\": 3}\np := input.n * 2 + k.a";
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    assert_int_equal(cl_rego_compile(e, &err), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, e), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    cl_rego_free(e);
}

/* ---- print() ---- */

static void collect_print(void *ctx, const char *file, int line, const char *msg)
{
    (void)file;
    (void)line;
    char *buf = ctx;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s|", msg);
}

static void test_print(void **state)
{
    (void)state;
    char got[256] = "";
    struct cl_rego_opts o = {.print = collect_print, .print_ctx = got};
    struct cl_rego *e = cl_rego_new(&o);
    const char *m = "package t\np if {\n  print(\"x\", 1, [2], input.nope)\n  every v in [1, 2] { "
                    "print(v) }\n}";
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    json_t *v = cl_rego_eval_ref(e, "data.t.p", NULL, &err);
    assert_true(json_is_true(v));
    json_decref(v);
    assert_string_equal(got, "x 1 [2] <undefined>|1|2|");
    cl_rego_free(e);
    /* without a listener the calls are dropped: the same policy gives the same decision */
    e = cl_rego_new(NULL);
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    v = cl_rego_eval_ref(e, "data.t.p", NULL, &err);
    assert_true(json_is_true(v));
    json_decref(v);
    cl_rego_free(e);
}

/* A compile that failed leaves the engine failing the same way: compiling or preparing again
 * answers the error again (it once looped forever on rules linked by the first attempt). */
static void test_compile_again_after_failure(void **state)
{
    (void)state;
    static const char *const mods[] = {
        /* fails while the rule tree is built, after rules were linked */
        "package t\np if true\np if false\ndefault r := 1\ndefault r := 2\n",
        /* fails after the tree, while names are resolved */
        "package t\np if true\np if false\nr := x\n",
    };
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        struct cl_rego *e = cl_rego_new(NULL);
        struct cl_err err = {0};
        assert_int_equal(cl_rego_add_module(e, "t.rego", mods[i], strlen(mods[i]), false, &err), 0);
        for (int round = 0; round < 3; round++) {
            cl_err_clear(&err);
            assert_true(cl_rego_compile(e, &err) < 0);
            assert_non_null(strstr(err.msg, "rego_"));
            cl_err_clear(&err);
            struct cl_rego_query *q = cl_rego_prepare(e, "data.t.p", &err);
            assert_null(q);
            assert_true(err.code < 0);
        }
        cl_rego_free(e);
    }
    /* the twin: a good module compiles and prepares, again and again */
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    const char *good = "package t\np if true\np if false\n";
    assert_int_equal(cl_rego_add_module(e, "t.rego", good, strlen(good), false, &err), 0);
    for (int round = 0; round < 3; round++) {
        struct cl_rego_query *q = cl_rego_prepare(e, "data.t.p", &err);
        assert_non_null(q);
        cl_rego_query_free(q);
    }
    cl_rego_free(e);
}

/* Text: policy literals must be UTF-8; input documents are repaired as OPA reads them. */
static void test_text(void **state)
{
    (void)state;
    static const struct {
        const char *module, *want; /* JSON of data.t.p, or "parse:<substring>" */
    } cases[] = {
        {"package t\np := \"a\xff"
         "b\"",
         "parse:invalid UTF-8 in string"},
        {"package t\np := `a\xc3\x28`", "parse:invalid UTF-8 in string"},
        {"package t\np := \"\xed\xa0\x80\"",
         "parse:invalid UTF-8 in string"}, /* an encoded surrogate */
        {"package t\np := $\"a\xc0\xaf"
         "b\"",
         "parse:invalid UTF-8 in string"}, /* overlong '/' */
        {"package t\np := \"a\xc3\xa9"
         "b\"",
         "\"a\xc3\xa9"
         "b\""},
        {"package t\np := \"\\ud800\"", "\"\xef\xbf\xbd\""},
        {"package t\np := \"x\\udc00y\"", "\"x\xef\xbf\xbdy\""},
        {"package t\np := \"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cl_rego *e = cl_rego_new(NULL);
        struct cl_err err = {0};
        int rc =
            cl_rego_add_module(e, "t.rego", cases[i].module, strlen(cases[i].module), false, &err);
        if (strncmp(cases[i].want, "parse:", 6) == 0) {
            if (rc != CL_EPARSE || !strstr(err.msg, cases[i].want + 6))
                fail_msg("case %zu: want %s, got %d %s", i, cases[i].want, rc, err.msg);
        } else {
            assert_int_equal(rc, 0);
            json_t *v = cl_rego_eval_ref(e, "data.t.p", NULL, &err);
            json_t *w = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
            if (!v || !w || !json_equal(v, w))
                fail_msg("case %zu: want %s (%s)", i, cases[i].want, err.msg);
            json_decref(v);
            json_decref(w);
        }
        cl_rego_free(e);
    }
    /* input documents: bad bytes and lone surrogates become U+FFFD, good text is untouched */
    static const struct {
        const char *in, *want;
    } docs[] = {
        {"{\"a\": \"x\xffy\"}", "x\xef\xbf\xbdy"},
        {"{\"a\": \"\xc3\"}", "\xef\xbf\xbd"},
        {"{\"a\": \"\\ud800z\"}", "\xef\xbf\xbdz"},
        {"{\"a\": \"\\\\ud800\"}", "\\ud800"}, /* an escaped backslash, not an escape */
        {"{\"a\": \"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80"},
        {"{\"a\": \"\xc3\xa9\"}", "\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct cl_err err = {0};
        json_t *j = cl_rego_json_parse(docs[i].in, strlen(docs[i].in), 0, &err);
        if (!j || !json_string_value(json_object_get(j, "a")) ||
            strcmp(json_string_value(json_object_get(j, "a")), docs[i].want) != 0)
            fail_msg("doc %zu: %s", i, err.msg);
        json_decref(j);
    }
    /* depth: OPA reads deeper documents than 128 levels; the cap is the caller's to move */
    size_t n = 1500;
    char *deep = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        deep[i] = '[';
        deep[n + i] = ']';
    }
    deep[2 * n] = 0;
    struct cl_err err = {0};
    json_t *j = cl_rego_json_parse(deep, 2 * n, 0, &err);
    assert_null(j);
    assert_int_equal(err.code, CL_ELIMIT);
    j = cl_rego_json_parse(deep, 400, 0,
                           &err); /* 400 levels, unbalanced: a parse error, not a limit */
    assert_null(j);
    assert_int_equal(err.code, CL_EPARSE);
    j = cl_rego_json_parse(deep, 2 * n, 2000, &err);
    assert_non_null(j);
    struct cl_rego *e = cl_rego_new(NULL);
    const char *m = "package t\np := count(input)";
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    json_t *v = cl_rego_eval_ref(e, "data.t.p", j, &err);
    assert_int_equal(json_integer_value(v), 1);
    json_decref(v);
    cl_rego_free(e);
    json_decref(j);
    assert_null(cl_rego_json_parse(deep, 2 * n, 5000, &err));
    assert_int_equal(err.code, CL_EINVAL);
    free(deep);
}

/* Compile- and run-time errors name the policy file and line that caused them. */
static void test_error_locations(void **state)
{
    (void)state;
    static const struct {
        const char *module, *want;
    } cases[] = {
        {"package t\np := 1\np := 2\n",
         "t.rego:3: eval_conflict_error: complete rules must not produce multiple outputs"},
        {"package t\nf(_) := 1\nf(_) := 2\np := f(0)\n",
         "t.rego:3: eval_conflict_error: functions must not produce multiple outputs"},
        {"package t\np[k] := 1 if k := \"a\"\np[k] := 2 if k := \"a\"\n", "t.rego:"},
        {"package t\n\np if q\nq if p\n", "t.rego:3:1: rego_recursion_error: rule data.t.p is "
                                          "recursive: data.t.p -> data.t.q -> data.t.p"},
        {"package t\ns contains 1\ns := {2}\n",
         "t.rego:2:1: rego_type_error: conflicting rules data.t.s found"},
        {"package t\na.b contains 1\na.b.c := 2\n",
         "t.rego:2:1: rego_type_error: rule data.t.a.b conflicts with [data.t.a.b.c]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cl_rego *e = cl_rego_new(NULL);
        struct cl_err err = {0};
        assert_int_equal(
            cl_rego_add_module(e, "t.rego", cases[i].module, strlen(cases[i].module), false, &err),
            0);
        json_t *v = cl_rego_eval_ref(e, "data.t", NULL, &err);
        if (v || !strstr(err.msg, cases[i].want) || strstr(err.msg, "query:"))
            fail_msg("case %zu: want %s, got %s", i, cases[i].want, err.msg);
        cl_rego_free(e);
    }
}

/* Lazy prints: values gathered into a sink, text rendered only when asked. */
static void test_print_lazy(void **state)
{
    (void)state;
    struct cl_rego_prints *ps = cl_rego_prints_new();
    struct cl_rego_opts o = {.prints = ps};
    struct cl_rego *e = cl_rego_new(&o);
    const char *m = "package t\ndefault allow := false\nallow if {\n  print(\"spec:\", input.spec, "
                    "data.d, input.nope)\n"
                    "  every v in [1, 2] { print(v) }\n  input.spec.ok\n}";
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    json_t *d = json_pack("{s:{s:s}}", "d", "k", "\u00e9t\u00e9");
    assert_int_equal(cl_rego_set_data(e, d, &err), 0);
    json_decref(d);
    json_t *in = json_pack("{s:{s:b, s:[i,i]}}", "spec", "ok", 0, "xs", 1, 2);
    json_t *v = cl_rego_eval_ref(e, "data.t.allow", in, &err);
    json_decref(in); /* the sink keeps its own references: the input can go */
    assert_true(json_is_false(v));
    json_decref(v);
    assert_int_equal(cl_rego_prints_count(ps), 3);
    const char *file = NULL;
    int line = 0;
    char *l0 = cl_rego_prints_line(ps, 0, &file, &line);
    assert_string_equal(
        l0, "spec: {\"ok\": false, \"xs\": [1, 2]} {\"k\": \"\u00e9t\u00e9\"} <undefined>");
    assert_string_equal(file, "t.rego");
    assert_int_equal(line, 4);
    free(l0);
    assert_null(cl_rego_prints_line(ps, 3, NULL, NULL));
    bool cut = true;
    char *all = cl_rego_prints_text(ps, " | ", 0, &cut);
    assert_false(cut);
    assert_non_null(strstr(all, "<undefined> | 1 | 2"));
    free(all);
    /* a cap cuts at a character boundary, never inside the two bytes of an e-acute */
    all = cl_rego_prints_text(ps, " ", 45, &cut);
    assert_true(cut);
    assert_int_equal(strlen(all), 44);
    free(all);
    /* replacing the data document drops the engine-wide sink's references into it */
    assert_int_equal(cl_rego_set_data(e, NULL, &err), 0);
    assert_int_equal(cl_rego_prints_count(ps), 0);
    cl_rego_free(e);

    /* twin: an engine that neither listens nor keeps prints strips them; a per-call sink then
     * sees nothing, with keep_prints it sees every call */
    for (int keep = 0; keep < 2; keep++) {
        struct cl_rego_opts o2 = {.keep_prints = keep};
        e = cl_rego_new(&o2);
        const char *m2 = "package t\np if { print(\"a\"); print(\"b\", 1) }";
        assert_int_equal(cl_rego_add_module(e, "t.rego", m2, strlen(m2), false, &err), 0);
        struct cl_rego_query *q = cl_rego_prepare(e, "data.t.p", &err);
        assert_non_null(q);
        struct cl_rego_eval_opts eo = {.prints = ps};
        json_t *rows = NULL;
        assert_int_equal(cl_rego_query_eval_rows(q, NULL, &eo, &rows, &err), 0);
        assert_int_equal(json_array_size(rows), 1);
        json_decref(rows);
        assert_int_equal(cl_rego_prints_count(ps), keep ? 2 : 0);
        char *t = cl_rego_prints_text(ps, "\n", 0, NULL);
        assert_string_equal(t, keep ? "a\nb 1" : "");
        free(t);
        cl_rego_prints_reset(ps);
        cl_rego_query_free(q);
        cl_rego_free(e);
    }

    /* a policy that prints without end is capped: the calls beyond are counted, not kept */
    e = cl_rego_new(&o);
    const char *m3 = "package t\np if { every i in numbers.range(1, 5000) { print(i) } }";
    assert_int_equal(cl_rego_add_module(e, "t.rego", m3, strlen(m3), false, &err), 0);
    v = cl_rego_eval_ref(e, "data.t.p", NULL, &err);
    assert_true(json_is_true(v));
    json_decref(v);
    assert_int_equal(cl_rego_prints_count(ps), CL_REGO_MAX_PRINTS);
    assert_int_equal(cl_rego_prints_dropped(ps), 5000 - CL_REGO_MAX_PRINTS);
    char *t = cl_rego_prints_text(ps, " ", 0, &cut);
    assert_true(cut);
    free(t);
    cl_rego_free(e); /* resets the engine-wide sink */
    assert_int_equal(cl_rego_prints_count(ps), 0);
    cl_rego_prints_free(ps);
}

/* ---- prepared queries and data overlays ---- */

static const char *kbs_policy = "package policy\n"
                                "default allow := false\n"
                                "allow if {\n"
                                "  data.plugin == \"resource\"\n"
                                "  data[\"resource-path\"][0] == input.repo\n"
                                "  data.settings.open == true\n"
                                "}\n"
                                "base := data.fixed\n";

/* Input converted as references reach it (eval.c lazy_input) against input converted whole
 * before the evaluation (input_value): the same rows, or the same error, for references that
 * stop at every kind of key, iterate, take input whole, replace parts of it with `with`. */
static void test_lazy_input(void **state)
{
    (void)state;
    static const char module[] =
        "package t\n"
        "import rego.v1\n"
        "f(x) := x.a\n"
        "a_b := input.a.b\n"
        "a0b := input.arr[0].b\n"
        "keys := {k | input.a[k]}\n"
        "whole := input\n"
        "eq if input == {\"a\": {\"b\": 1, \"c\": [1, 2]}, \"arr\": [{\"b\": \"x\"}], \"n\": 2}\n"
        "pair := [input.a, input.n]\n"
        "with_a := x if { x := pair with input.a as 5 }\n"
        "with_path := x if { x := input.a with input.a.b as 7 }\n"
        "via_fn := f(input)\n"
        "counted := count(input.arr)\n"
        "all_pos if every x in input.a.c { x > 0 }\n"
        "spaced := input[\"a b\"][\"é\"]\n"
        "num_key := input.o[\"1\"]\n"
        "num_idx := input.o[1]\n"
        "dyn contains v if { some k; v := input[k] }\n"
        "got := object.get(input, [\"a\", \"b\"], 0)\n"
        "deep := input.a.b.c.d\n"
        "walked := count([p | walk(input, [p, _])])\n";
    static const char *const queries[] = {
        "data.t.a_b",          "data.t.a0b",    "data.t.keys",
        "data.t.whole",        "data.t.eq",     "data.t.with_a",
        "data.t.with_path",    "data.t.via_fn", "data.t.counted",
        "data.t.all_pos",      "data.t.spaced", "data.t.num_key",
        "data.t.num_idx",      "data.t.dyn",    "data.t.got",
        "data.t.deep",         "data.t.walked", "x := input.a; y := input.a.b",
        "input.n + input.a.b",
    };
    static const char *const inputs[] = {
        "{\"a\": {\"b\": 1, \"c\": [1, 2]}, \"arr\": [{\"b\": \"x\"}], \"n\": 2}",
        "{\"a\": {\"b\": {\"c\": {\"d\": null}}, \"c\": [-1]}, \"arr\": [], \"n\": 1.5}",
        "{\"a\": [1, 2], \"arr\": {\"0\": {\"b\": 1}}}",
        "{\"a b\": {\"é\": true}, \"o\": {\"1\": \"one\"}}",
        "[1, {\"a\": 2}]",
        "{\"a\": {}, \"b\": 9, \"arr\": [{}], \"n\": 0}",
        "\"text\"",
        "42",
        "null",
        "{}",
        NULL,
    };
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    if (cl_rego_add_module(e, "t.rego", module, strlen(module), false, &err) != 0)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < CL_ARRAY_LEN(inputs); i++) {
        CL_AUTO(json_t) *in = inputs[i] ? json_loads(inputs[i], JSON_DECODE_ANY, NULL) : NULL;
        assert_true(!inputs[i] || in);
        struct cl_rv *whole = in ? cl_rv_from_json(in) : NULL;
        for (size_t q = 0; q < CL_ARRAY_LEN(queries); q++) {
            struct cl_rv *lazy_rows = NULL, *eager_rows = NULL;
            struct cl_err le = {0}, ee = {0};
            int lrc = cl_rego_eval_query_rv(e, queries[q], in, NULL, &lazy_rows, &le);
            struct cl_rego_eval_opts o = {.input_value = whole};
            int erc = cl_rego_eval_query_rv(e, queries[q], whole ? NULL : in, &o, &eager_rows, &ee);
            if (lrc != erc || (lrc == 0 && !cl_rv_equal(lazy_rows, eager_rows)))
                fail_msg("input %zu, %s: lazy %d (%s), whole %d (%s)", i, queries[q], lrc, le.msg,
                         erc, ee.msg);
            cl_rv_decref(lazy_rows);
            cl_rv_decref(eager_rows);
        }
        cl_rv_decref(whole);
    }
    /* the input's size is not the evaluation's: a large input under a small memory cap */
    struct cl_rego_opts small = {.max_memory = 1 << 20};
    struct cl_rego *e2 = cl_rego_new(&small);
    static const char m2[] =
        "package t\nn := count([x | some x in input.xs; x != \"\"])\nfirst := input.xs[0]\n";
    assert_int_equal(cl_rego_add_module(e2, "t.rego", m2, strlen(m2), false, &err), 0);
    CL_AUTO(json_t) *big = json_pack("{s:[]}", "xs");
    for (int k = 0; k < 40000; k++)
        json_array_append_new(json_object_get(big, "xs"), json_string("0123456789abcdef"));
    CL_AUTO(json_t) *n = cl_rego_eval_ref(e2, "data.t.n", big, &err);
    assert_non_null(n);
    assert_int_equal(json_integer_value(n), 40000);
    CL_AUTO(json_t) *first = cl_rego_eval_ref(e2, "data.t.first", big, &err);
    assert_string_equal(json_string_value(first), "0123456789abcdef");
    cl_rego_free(e2);
    cl_rego_free(e);
}

static void test_prepared(void **state)
{
    (void)state;
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "p.rego", kbs_policy, strlen(kbs_policy), false, &err),
                     0);
    json_t *data =
        json_pack("{s:s, s:{s:b}, s:i}", "plugin", "none", "settings", "open", 0, "fixed", 7);
    assert_int_equal(cl_rego_set_data(e, data, &err), 0);
    json_decref(data);
    struct cl_rego_query *q = cl_rego_prepare(e, "data.policy.allow", &err);
    assert_non_null(q);
    json_t *in = json_pack("{s:s}", "repo", "default");
    struct {
        const char *overlay; /* JSON or NULL */
        bool allow;
    } cases[] = {
        {NULL, false},
        {"{\"plugin\": \"resource\", \"resource-path\": [\"default\"], \"settings\": {\"open\": "
         "true}}",
         true},
        {"{\"plugin\": \"resource\", \"resource-path\": [\"other\"], \"settings\": {\"open\": "
         "true}}",
         false},
        {"{\"plugin\": \"resource\", \"resource-path\": [\"default\"]}",
         false}, /* settings from base */
        {"{}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ov = cases[i].overlay ? json_loads(cases[i].overlay, 0, NULL) : NULL;
        json_t *v = cl_rego_query_eval(q, in, ov, &err);
        if (!json_is_boolean(v) || json_is_true(v) != cases[i].allow)
            fail_msg("overlay case %zu: want %d (%s)", i, cases[i].allow, err.msg);
        json_decref(v);
        json_decref(ov);
    }
    /* the overlay is for one evaluation only: the base document is unchanged */
    json_t *base = cl_rego_eval_ref(e, "data.policy.base", NULL, &err);
    assert_int_equal(json_integer_value(base), 7);
    json_decref(base);
    json_t *d = cl_rego_get_data(e);
    assert_string_equal(json_string_value(json_object_get(d, "plugin")), "none");
    json_decref(d);
    /* rows shape and options */
    json_t *rows = NULL;
    json_t *ov = json_pack("{s:i}", "fixed", 9);
    struct cl_rego_eval_opts o = {.data_overlay = ov};
    struct cl_rego_query *q2 = cl_rego_prepare(e, "x := data.policy.base", &err);
    assert_non_null(q2);
    assert_int_equal(cl_rego_query_eval_rows(q2, NULL, &o, &rows, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(rows, 0), "bindings"), "x")),
                     9);
    json_decref(rows);
    json_decref(ov);
    /* a non-object overlay is refused */
    json_t *bad = json_integer(1);
    assert_null(cl_rego_query_eval(q, in, bad, &err));
    assert_int_equal(err.code, CL_EINVAL);
    struct cl_rv *badv = cl_rv_int(1);
    struct cl_rego_eval_opts ob = {.data_overlay_value = badv};
    struct cl_rv *rv = NULL;
    assert_int_equal(cl_rego_query_eval_rv(q, in, &ob, &rv, &err), CL_EINVAL);
    cl_rv_decref(badv);
    json_decref(bad);
    /* undefined: NULL without an error */
    struct cl_rego_query *q3 = cl_rego_prepare(e, "data.policy.nothing", &err);
    assert_non_null(q3);
    assert_null(cl_rego_query_eval(q3, in, NULL, &err));
    assert_int_equal(err.code, 0);
    /* bad queries are refused when prepared */
    assert_null(cl_rego_prepare(e, "data.policy.allow ==", &err));
    assert_int_equal(err.code, CL_EPARSE);
    assert_null(cl_rego_prepare(e, "nope(1)", &err));
    assert_non_null(strstr(err.msg, "rego_type_error"));
    assert_null(cl_rego_prepare(e, NULL, &err));
    cl_rego_query_free(q3);
    cl_rego_query_free(q2);
    cl_rego_query_free(q);
    json_decref(in);
    cl_rego_free(e);
}

struct pworker {
    struct cl_rego_query *q;
    int id;
};

static void *prepared_worker(void *arg)
{
    struct pworker *w = arg;
    for (int i = 0; i < 300; i++) {
        struct cl_err err = {0};
        json_t *in = json_pack("{s:i}", "n", i);
        json_t *ov = json_pack("{s:i}", "k", w->id);
        json_t *v = cl_rego_query_eval(w->q, in, ov, &err);
        /* the query's constants ({"a": 3}, the array) are shared by every thread */
        bool ok = v && json_integer_value(v) == i * 2 + 3 + w->id + 6;
        json_decref(v);
        json_decref(in);
        json_decref(ov);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

static void test_prepared_threads(void **state)
{
    (void)state;
    const char *m = "package t\nk := {\"a\": 3}\np := input.n * 2 + k.a + data.k";
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    struct cl_rego_query *q = cl_rego_prepare(e, "data.t.p + sum([1, 2, 3])", &err);
    assert_non_null(q);
    pthread_t th[4];
    struct pworker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct pworker){q, i};
        assert_int_equal(pthread_create(&th[i], NULL, prepared_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    cl_rego_query_free(q);
    cl_rego_free(e);
}

/* regex.match on short-lived threads: each thread's compiled patterns, match context and match
 * block are released when it ends (LeakSanitizer in the ASan build sees any left behind). */
static void *regex_worker(void *arg)
{
    struct cl_rego_query *q = arg;
    json_t *in = json_pack("{s:s}", "s", "web-42");
    struct cl_err err = {0};
    json_t *v = cl_rego_query_eval(q, in, NULL, &err);
    bool ok = json_is_true(v);
    json_decref(v);
    json_decref(in);
    return ok ? NULL : (void *)1;
}

static void test_regex_thread_caches(void **state)
{
    (void)state;
    const char *m = "package t\nimport rego.v1\n"
                    "p if { regex.match(`^web-[0-9]+$`, input.s); count(regex.find_n(`[0-9]`, "
                    "input.s, -1)) == 2; not regex.match(`^x`, input.s) }";
    struct cl_rego *e = cl_rego_new(NULL);
    struct cl_err err = {0};
    assert_int_equal(cl_rego_add_module(e, "t.rego", m, strlen(m), false, &err), 0);
    struct cl_rego_query *q = cl_rego_prepare(e, "data.t.p", &err);
    assert_non_null(q);
    /* one round first: the process-wide allocations (key, JIT allocator) are made once */
    size_t before = 0;
    for (int round = 0; round < 33; round++) {
        if (round == 1)
            before = mallinfo2().uordblks;
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&th[i], NULL, regex_worker, q), 0);
        for (int i = 0; i < 2; i++) {
            void *r;
            pthread_join(th[i], &r);
            assert_null(r);
        }
    }
    /* 64 threads ended: what they cached is gone (several KiB each when kept; the count is
     * zero under ASan, which replaces malloc: LeakSanitizer checks there) */
    size_t after = mallinfo2().uordblks;
    print_message("heap in use after 64 regex threads: %+lld bytes\n",
                  (long long)after - (long long)before);
    assert_true(after < before + 16384);
    cl_rego_query_free(q);
    cl_rego_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_depth_limit),
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_query_bindings),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_extension),
        cmocka_unit_test(test_v0),
        cmocka_unit_test(test_json_patch),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_prepared),
        cmocka_unit_test(test_lazy_input),
        cmocka_unit_test(test_prepared_threads),
        cmocka_unit_test(test_regex_thread_caches),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_print_lazy),
        cmocka_unit_test(test_error_locations),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_compile_again_after_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
