#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
built "$CLI"
need python3

nested() { # $1 depth: a policy unmarshalling $1 nested flow sequences
    python3 -c "import sys; n=int(sys.argv[1]); print('package t\nx := yaml.unmarshal(\"' + '['*n + ']'*n + '\")')" "$1" >"$T/p.rego"
}
for n in 513 514 200000; do
    nested $n
    rc=0
    start=$(date +%s%N)
    out=$(timeout 20 "$CLI" policy eval --strict -d "$T/p.rego" -f values 'count(json.marshal(data.t.x))' 2>&1) || rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    [ $rc -ne 124 ] && [ $ms -lt 5000 ] || fail "depth $n took ${ms} ms"
    case $n:$out in
    513:1026) ;;
    514:*"exceeded max depth of 512"* | 200000:*"exceeded max depth of 512"*) ;;
    *) fail "depth $n gave: $(printf '%.200s' "$out")" ;;
    esac
    echo "ok - depth $n (${ms} ms)"
done
echo PASS
