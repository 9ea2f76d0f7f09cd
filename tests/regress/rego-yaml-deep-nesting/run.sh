#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
set -eu
SRC=${CLOISTER_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
BUILD=${CLOISTER_BUILD:-$SRC/build}
CLI=$BUILD/src/cmd/cloister
[ -x "$CLI" ] || { echo "FAIL: $CLI not built"; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed"; exit 77; }
T=$(mktemp -d /tmp/cloister-regress.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

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
