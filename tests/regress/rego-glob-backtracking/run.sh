#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

A60=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
eval_x() { # $1 expression, then extra options: prints the value of x (or the error)
    printf 'package t\n\nx := %s\n' "$1" >"$T/p.rego"
    shift
    timeout 20 "$CLI" policy eval "$@" -d "$T/p.rego" -f values data.t.x 2>&1
}

for pat in '*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b' '**a**a**a**a**a**a**a**a**a**a**a**a**b' \
    '{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}{*a,*a}b'; do
    rc=0
    out=$(eval_x "glob.match(\"$pat\", [], \"$A60\")" --strict) || rc=$?
    [ $rc -ne 124 ] || fail "glob.match(\"$pat\") still runs away"
    case $out in
    *"pattern too costly to match"*) ;;
    *) fail "glob.match(\"$pat\") gave: $out" ;;
    esac
done
out=$(eval_x 'glob.match("*.example.com", ["."], "api.example.com")') || fail "plain match: exit $?"
[ "$out" = true ] || fail "*.example.com gave: $out"
out=$(eval_x 'glob.match("*a*a*b", [], "aaaaaaaaaaaaaaaaaaaab")') || fail "stars: exit $?"
[ "$out" = true ] || fail "*a*a*b gave: $out"
out=$(eval_x 'glob.match("{x,y}*", [], "zzz")') || fail "braces: exit $?"
[ "$out" = false ] || fail "{x,y}* gave: $out"
echo PASS
