#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

mkdir -p "$T/tests" "$T/bundle/x/y"
cat >"$T/tests/p.rego" <<'R'
package p
allow if input.user == "alice"
R
cat >"$T/tests/p_test.rego" <<'R'
package p
test_alice if allow with input as {"user": "alice"}
test_bob_denied if not allow with input as {"user": "bob"}
todo_test_later if false
R
out=$("$CLI" policy test "$T/tests") || fail "opa tests: $out"
case $out in *"PASS: 2/3"*"SKIPPED: 1/3"*) ok "policy test runs _test.rego files" ;; *) fail "$out" ;; esac
printf 'package p\ntest_wrong if allow with input as {"user": "bob"}\n' >"$T/tests/q_test.rego"
rc=0
out=$("$CLI" policy test "$T/tests") || rc=$?
[ $rc -eq 2 ] || fail "a failing test must exit 2, got $rc"
case $out in *"data.p.test_wrong: FAIL"*) ok "a failing test is named, exit 2" ;; *) fail "$out" ;; esac

printf '{"a": 1}' >"$T/bundle/x/y/data.json"
printf 'package q\nv := data.x.y.a\n' >"$T/bundle/q.rego"
out=$("$CLI" policy eval --bundle "$T/bundle" -f values data.q.v)
[ "$out" = 1 ] || fail "bundle data path: $out"
ok "--bundle places data.json by directory"

out=$(printf '{"user": "al\377"}' | "$CLI" policy eval --stdin-input -d "$T/tests/p.rego" -f values 'input.user')
[ "$out" = '"al�"' ] || fail "stdin input with invalid UTF-8: $out"
ok "--stdin-input, invalid UTF-8 read as U+FFFD"

out=$("$CLI" policy eval -d "$T/tests/p.rego" -f bindings 'x := [1, 2][_]' | tr -d ' \n')
[ "$out" = '{"x":1}{"x":2}' ] || fail "-f bindings: $out"
ok "-f bindings"
out=$("$CLI" policy eval -d "$T/tests/p.rego" -f pretty 'x := 1; y := "b"')
case $out in *"| x | y   |"*"| 1 | \"b\" |"*) ok "-f pretty table" ;; *) fail "-f pretty: $out" ;; esac

rc=0
out=$("$CLI" policy eval --strict-builtin-errors --v0-compatible -d "$T/tests/p.rego" 'x := 1 / 0') || rc=$?
case $out in *eval_builtin_error*) ok "--strict-builtin-errors" ;; *) fail "strict: $out" ;; esac
[ $rc -ne 0 ] || fail "strict error must fail"
out=$("$CLI" policy eval -d "$T/tests/p.rego" -f values 'x := 1 / 0')
[ -z "$out" ] || fail "non-strict division by zero must be undefined: $out"

# refusals
rc=0; "$CLI" policy eval -f yaml 'x := 1' >/dev/null 2>&1 || rc=$?; [ $rc -eq 2 ] || fail "-f yaml accepted"
rc=0; echo '{}' | "$CLI" policy eval -I -i "$T/x.json" 'x := 1' >/dev/null 2>&1 || rc=$?; [ $rc -eq 2 ] || fail "-I with -i accepted"
rc=0; "$CLI" policy eval --max-input-depth 5000 'x := 1' >/dev/null 2>&1 || rc=$?; [ $rc -eq 2 ] || fail "depth 5000 accepted"
ok "refusals: bad format, both inputs, depth out of range"

deep=$(python3 -c 'print("[" * 1500 + "]" * 1500)')
rc=0; printf '%s' "$deep" | "$CLI" policy eval -I -f values 'count(input)' >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "1500 levels pass the default 1000"
out=$(printf '%s' "$deep" | "$CLI" policy eval -I --max-input-depth 2000 -f values 'count(input)')
[ "$out" = 1 ] || fail "--max-input-depth 2000: $out"
ok "input depth: default 1000, --max-input-depth 2000"
echo PASS
