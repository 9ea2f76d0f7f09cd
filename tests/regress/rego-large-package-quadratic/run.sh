#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

gen() { # $1 package, $2 count, $3 rule template with N for the index
    awk -v pkg="$1" -v n="$2" -v tpl="$3" 'BEGIN { print "package " pkg; for (i = 0; i < n; i++) { r = tpl; gsub(/N/, i, r); print r } }'
}
gen t 20000 'pN := 1 if { some x; data.u[x] }' >"$T/t.rego"
gen u 20000 'qN := 1' >"$T/u.rego"
out=$(timeout 60 "$CLI" policy eval -d "$T/t.rego" -d "$T/u.rego" -f values data.t.p7) || fail "40000 rules: exit $? ($out)"
[ "$out" = 1 ] || fail "40000 rules: $out"
echo "ok - 40000 rules compile and evaluate"

# twin: the same size with a cycle through the big package is still refused
printf 'r := 1 if data.t.p0\n' >>"$T/u.rego"
out=$(timeout 60 "$CLI" policy eval -d "$T/t.rego" -d "$T/u.rego" -f values data.t.p7 2>&1) && fail "cycle accepted: $out"
case $out in *rego_recursion_error*) echo "ok - a cycle among 40000 rules is found" ;; *) fail "cycle: $out" ;; esac

gen t 3000 'pN := 1 if { some x; data.u[x].y }' >"$T/t.rego"
gen u 3000 'qN.z := 1' >"$T/u.rego"
out=$(timeout 60 "$CLI" policy eval -d "$T/t.rego" -d "$T/u.rego" -f values data.t.p7 2>&1) || fail "variable keys: $out"
[ -z "$out" ] || fail "data.t.p7 should be undefined: $out"
echo "ok - 3000 references with a variable key before a constant"
echo PASS
