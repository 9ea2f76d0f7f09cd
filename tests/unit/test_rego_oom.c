/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation failure in the Rego engine: the Nth allocation of a whole load-compile-evaluate
 * cycle is made to fail, for every N the cycle reaches. Each time the evaluation either ends
 * with CL_ENOMEM (nothing crashes, nothing leaks: the ASan build checks) or, when the failure
 * fell outside it, gives the right answer; failures while loading are retried and the engine
 * answers right. Then every allocation from the Nth on fails: the evaluation is abandoned with
 * CL_ENOMEM and the process carries on.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON() __lsan_enable()
#else
#define LSAN_OFF() ((void)0)
#define LSAN_ON() ((void)0)
#endif

#include "rego/rego.h"
#include "rego/sbuf.h"
#include "json/json.h"

/* Touches the value kinds, comprehensions, rule caches, and builtins that allocate through
 * several paths (sprintf, regex cache, JSON, sets, sorting, strings). */
static const char policy[] = "package p\n"
                             "import rego.v1\n"
                             "names contains n if { some c in input.containers; n := c.name }\n"
                             "tags := {k: v | some k, v in input.labels}\n"
                             "msg := sprintf(\"%s has %d containers\", [input.pod, count(names)])\n"
                             "ok if regex.match(`^web-[0-9]+$`, input.pod)\n"
                             "sorted := sort([n | some n in names])\n"
                             "doc := json.marshal({\"names\": sorted, \"tags\": tags})\n"
                             "allow := {\"ok\": ok, \"msg\": upper(msg), \"doc\": doc, "
                             "\"parts\": split(input.pod, \"-\")}\n";
static const char input_text[] =
    "{\"pod\": \"web-42\", \"labels\": {\"app\": \"web\", \"tier\": \"front\"},"
    " \"containers\": [{\"name\": \"b\"}, {\"name\": \"a\"}, {\"name\": \"pause\"}]}";
static const char want[] = "{\"ok\": true, \"msg\": \"WEB-42 HAS 3 CONTAINERS\","
                           " \"doc\": \"{\\\"names\\\":[\\\"a\\\",\\\"b\\\",\\\"pause\\\"],"
                           "\\\"tags\\\":{\\\"app\\\":\\\"web\\\",\\\"tier\\\":\\\"front\\\"}}\","
                           " \"parts\": [\"web\", \"42\"]}";

/* When the hook is armed. */
enum phase { AT_EVAL, AT_LOAD };

/* One cycle with the nth allocation failing (and every later one with rest) from the phase
 * on; *reached: the cycle made that many. Returns the evaluation's code (0 with the right
 * answer, or CL_ENOMEM). */
static int cycle(enum phase at, uint64_t nth, bool rest, bool *reached)
{
    struct cl_err err = {0};
    json_t *input = json_loads(input_text, 0, NULL);
    json_t *expect = json_loads(want, 0, NULL);
    assert_non_null(input);
    assert_non_null(expect);
    cl_rg_fail_count = 0;
    if (at == AT_LOAD) {
        cl_rg_fail_nth = nth;
        cl_rg_fail_rest = rest;
    }
    struct cl_rego *e = cl_rego_new(NULL);
    assert_non_null(e);
    int rc = cl_rego_add_module(e, "p.rego", policy, strlen(policy), false, &err);
    assert_int_equal(rc, 0);
    struct cl_rego_query *q = cl_rego_prepare(e, "data.p.allow", &err);
    assert_non_null(q);
    if (at == AT_LOAD) {
        *reached = cl_rg_fail_count > 0; /* else loading made fewer than nth: disarmed */
        cl_rg_fail_nth = 0;
    } else {
        cl_rg_fail_nth = nth;
        cl_rg_fail_rest = rest;
    }
    json_t *v = cl_rego_query_eval(q, input, NULL, &err);
    if (at == AT_EVAL)
        *reached = cl_rg_fail_count > 0;
    cl_rg_fail_nth = 0;
    cl_rg_fail_rest = false;
    if (v) {
        assert_int_equal(err.code, 0);
        assert_true(json_equal(v, expect));
        json_decref(v);
    } else {
        assert_int_equal(err.code, CL_ENOMEM);
        assert_non_null(strstr(err.msg, "out of memory"));
    }
    int code = err.code;
    /* the engine is still usable once memory is back */
    cl_err_clear(&err);
    v = cl_rego_query_eval(q, input, NULL, &err);
    assert_non_null(v);
    assert_true(json_equal(v, expect));
    json_decref(v);
    cl_rego_query_free(q);
    cl_rego_free(e);
    json_decref(input);
    json_decref(expect);
    return code;
}

static void test_fail_each_allocation(void **state)
{
    (void)state;
    uint64_t n;
    for (n = 1;; n++) {
        bool reached;
        int code = cycle(AT_EVAL, n, false, &reached);
        if (!reached) { /* past the evaluation's last allocation: the answer, unharmed */
            assert_int_equal(code, 0);
            break;
        }
        assert_int_equal(code, CL_ENOMEM); /* every failure inside the evaluation is an error */
    }
    print_message("evaluation: %llu allocations, each failed once\n", (unsigned long long)n - 1);
    assert_true(n > 20);
}

static void test_fail_each_allocation_of_load(void **state)
{
    (void)state;
    /* failures while parsing and compiling are retried (nothing there can be abandoned half
     * way without harm to the engine): the engine comes out whole and answers right */
    uint64_t n;
    for (n = 1;; n++) {
        bool reached;
        int code = cycle(AT_LOAD, n, false, &reached);
        assert_int_equal(code, 0);
        if (!reached)
            break;
    }
    print_message("load: %llu allocations, each failed once\n", (unsigned long long)n - 1);
    assert_true(n > 100);
}

static void test_fail_everything_after(void **state)
{
    (void)state;
    /* every allocation from the nth on fails, retries included: the evaluation is abandoned
     * through its recovery point (what it had allocated is not reclaimed, hence LSan off) */
    uint64_t n;
    for (n = 1;; n += 3) {
        bool reached;
        LSAN_OFF();
        int code = cycle(AT_EVAL, n, true, &reached);
        LSAN_ON();
        if (!reached) {
            assert_int_equal(code, 0);
            break;
        }
        assert_int_equal(code, CL_ENOMEM);
    }
    assert_true(n > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_each_allocation),
        cmocka_unit_test(test_fail_each_allocation_of_load),
        cmocka_unit_test(test_fail_everything_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
