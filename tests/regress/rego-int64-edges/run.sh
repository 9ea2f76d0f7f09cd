#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

eval_x() { # $1 expression, then extra options: prints the value of x (or the error)
    printf 'package t\n\nx := %s\n' "$1" >"$T/p.rego"
    shift
    timeout 20 "$CLI" policy eval "$@" -d "$T/p.rego" -f values data.t.x 2>&1
}
expect() { # $1 expression, $2 expected output (exact, or *glob*), then extra options
    e=$1 want=$2
    shift 2
    rc=0
    out=$(eval_x "$e" "$@") || rc=$?
    [ $rc -lt 124 ] || fail "$e: exit $rc ($out)"
    flat=$(printf '%s' "$out" | tr -d ' \n') # arrays print on several lines
    case $want in
    \**) case $out in $want) echo "ok - $e"; return ;; esac ;;
    *) [ "$out" != "$want" ] && [ "$flat" != "$want" ] || { echo "ok - $e"; return; } ;;
    esac
    fail "$e gave: $(printf '%.300s' "$out")"
}

expect 'format_int(1e308, 10)' '*outside the 64-bit integer range*' --strict
expect 'format_int(-1e19, 16)' '*outside the 64-bit integer range*' --strict
expect 'format_int(1e999, 2)' '*outside the 64-bit integer range*' --strict
expect 'format_int(123456789012345678901234567890, 10)' '"123456789012345678901234567890"'
expect 'format_int(-9223372036854775808, 16)' '"-8000000000000000"'
expect 'format_int(-3.9, 10)' '"-3"'
expect 'numbers.range(-9223372036854775808, 9223372036854775807)' '*memory limit exceeded*'
expect 'numbers.range(9223372036854775807, -9223372036854775808)' '*memory limit exceeded*'
expect 'numbers.range_step(-9223372036854775808, 9223372036854775807, 9223372036854775807)' \
    '[-9223372036854775808,-1,9223372036854775806]'
expect 'numbers.range(9223372036854775805, 9223372036854775807)' \
    '[9223372036854775805,9223372036854775806,9223372036854775807]'
expect 'rand.intn("x", -9223372036854775808) >= 0' 'true'
echo PASS
