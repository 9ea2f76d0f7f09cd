#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
set -eu
D=$(cd "$(dirname "$0")" && pwd)
BUILD=${CLOISTER_BUILD:-$D/../../../build}
T=$(mktemp -d /tmp/cloister-regress.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
echo '[]' > "$T/ta.json"
rc=0
"$BUILD/src/cmd/cloister" as verify --tee cca --evidence "$D/token.cbor" --cca-ta-store "$T/ta.json" \
    > "$T/out" 2> "$T/err" || rc=$?
[ "$rc" = 3 ] || { echo "FAIL: exit $rc, wanted 3: $(cat "$T/err")"; exit 1; }
grep -q "stage 'parse'.*not UTF-8" "$T/err" || { echo "FAIL: $(cat "$T/err")"; exit 1; }
echo PASS
