#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"

# ASan reserves terabytes of address space: the limit only applies to the plain build
case $(ldd "$CLI" 2>/dev/null) in *libasan*) LIMIT=unlimited ;; *) LIMIT=2000000 ;; esac
A64=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
nest() { # $1 depth, $2 innermost argument: f(f(...f($2)...))
    s=$2
    i=0
    while [ $i -lt "$1" ]; do s="f($s)"; i=$((i + 1)); done
    printf '%s' "$s"
}
run() { # $1 function body, $2 expression: prints "<exit status> <output>"
    printf 'package t\n\nf(s) := %s\n\ng(s) := concat("", [s, s])\n\nx := count(%s)\n' "$1" "$2" >"$T/p.rego"
    rc=0
    out=$( (ulimit -v $LIMIT; timeout 60 "$CLI" policy eval -d "$T/p.rego" -f values data.t.x) 2>&1) || rc=$?
    printf '%s %s' "$rc" "$out"
}
refused() { # $1 body, $2 expression
    got=$(run "$1" "$2")
    case $got in
    "8 "*"evaluation memory limit exceeded"*) echo "ok - refused: f(s) := $1; count($(printf '%.50s' "$2")...)" ;;
    *) fail "f(s) := $1; count($(printf '%.50s' "$2")...) gave: $(printf '%.300s' "$got")" ;;
    esac
}
accepted() { # $1 body, $2 expression, $3 expected count
    got=$(run "$1" "$2")
    [ "$got" = "0 $3" ] || fail "f(s) := $1 gave: $(printf '%.300s' "$got") (want $3)"
    echo "ok - accepted: f(s) := $1"
}

refused 'array.concat(s, s)' "$(nest 32 '["a"]')"
# one call is enough: 1024 matches times an 8 MB replacement (few matches, so that the
# sanitizer build's checked memmem stays fast); g doubles a string
A1000=$(nest 10 '"a"' | sed 's/f(/g(/g')
B10M=$(nest 23 '"b"' | sed 's/f(/g(/g')
refused 's' "replace($A1000, \"a\", $B10M)"
refused 's' "strings.replace_n({\"a\": $B10M}, $A1000)"
refused 's' "strings.replace_n({\"\": $B10M}, $A1000)"
refused 'hex.encode(hex.encode(hex.encode(hex.encode(s))))' "$(nest 9 '"a"')"
refused 'base64.encode(base64.encode(base64.encode(base64.encode(s))))' "$(nest 24 '"a"')"
refused 'json.marshal([s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s])' \
    "$(nest 7 '"a"')"
accepted 'array.concat(s, s)' "$(nest 10 '["a"]')" 1024
accepted "replace(s, \"b\", \"$A64\")" "$(nest 3 '"abc"')" 66
accepted 'hex.encode(s)' "$(nest 10 '"a"')" 1024
accepted 'json.marshal([s, s])' "$(nest 5 '"a"')" 1489
echo PASS
