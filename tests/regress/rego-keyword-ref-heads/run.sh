#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

expect() { # $1 module body (after `package t`), $2 query, $3 expected compact value
    printf 'package t\n%s\n' "$1" >"$T/p.rego"
    out=$(timeout 20 "$CLI" policy eval -d "$T/p.rego" -f values "$2" 2>&1 | tr -d ' \n') || true
    [ "$out" = "$3" ] || fail "$1 / $2: got $out, want $3"
    echo "ok - $2 over: $(printf '%s' "$1" | tr '\n' ';')"
}

expect 'not.foo := 1' 'data.t["not"].foo' '1'
expect 'p := 1 if true
in.foo contains 3' 'data.t["in"].foo' '[3]'
expect 'p := 1 if true
in.foo contains 3' 'data.t.p' '1'
expect 'p := 1
if.f(x) := x + 1' 'data.t["if"].f(2)' '3'
expect 'some.y := 2
p if { some.y == 2 }' 'data.t.p' 'true'
expect 'every.x := 3
p if every.x == 3' 'data.t.p' 'true'
# twins: the keywords keep their meaning where they are keywords
expect 'p if { some x in [1]; x == 1; every y in [1] { y > 0 }; not false }' 'data.t.p' 'true'
expect 'p if { 1 in[1] }' 'data.t.p' 'true'
expect 'p := 1 if { false }
q := 2' 'data.t.q' '2'
echo PASS
