#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

expect() { # $1 module body (after `package t`), $2 expected output (glob)
    printf 'package t\n%s\n' "$1" >"$T/t.rego"
    out=$(timeout 20 "$CLI" policy eval -d "$T/t.rego" -f values data.t 2>&1 | tr -d '\n') || true
    case $out in $2) echo "ok - $(printf '%s' "$1" | tr '\n' ';')" ;; *) fail "$1: got $out" ;; esac
}

expect 's contains 1
s := {2}' "*t.rego:2:1: rego_type_error: conflicting rules data.t.s found*"
expect 'a.b contains 1
a.b.c := 2' "*t.rego:2:1: rego_type_error: rule data.t.a.b conflicts with \[data.t.a.b.c\]*"
expect 'f(x) := f(x + 1)' "*rego_recursion_error: rule data.t.f is recursive: data.t.f -> data.t.f*"
expect 'p if q
q if r
r if p
x := 1' "*t.rego:2:1: rego_recursion_error: rule data.t.p is recursive: data.t.p -> data.t.q -> data.t.r -> data.t.p*"
expect 'p := 1
p := 2' "*t.rego:3: eval_conflict_error: complete rules must not produce multiple outputs*"
# twins: one kind per path is fine, and functions calling other functions are not recursion
expect 's contains 1
s contains 2' '*"s": \[*1,*2*\]*'
expect 'a.b contains 1
a.c := 2' '*"c": 2*'
expect 'f(x) := g(x)
g(x) := x + 1
p := f(1)' '*"p": 2*'
echo PASS
