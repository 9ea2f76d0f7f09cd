#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

# eval QUERY-EXPR: prints the value of `x` in the values format, under a 10 s limit
eval_x() {
    printf 'package t\n\nx := %s\n' "$1" >"$T/p.rego"
    timeout 10 "$CLI" policy eval -d "$T/p.rego" -f values data.t.x 2>&1
}

out=$(eval_x 'sprintf("%0000000001197843046d", [1])') || fail "huge width: exit $? ($out)"
[ "$out" = '"%!(NOVERB)"' ] || fail "huge width gave: $(printf '%.200s' "$out")"
out=$(eval_x 'sprintf("a%.99999999fb", [1.5])') || fail "huge precision: exit $? ($out)"
[ "$out" = '"a%!(NOVERB)"' ] || fail "huge precision gave: $(printf '%.200s' "$out")"
# the largest width Go still accepts (9999999) is charged to the memory cap before printing
out=$(eval_x 'count(sprintf("%9999999d", [1]))') || fail "10 MB width: exit $? ($out)"
[ "$out" = 9999999 ] || fail "10 MB width gave: $(printf '%.200s' "$out")"
out=$(eval_x 'sprintf("%5d|%-4s|%.2f", [42, "ab", 3.14159])') || fail "plain: exit $?"
[ "$out" = '"   42|ab  |3.14"' ] || fail "plain formats gave: $out"
echo PASS
