#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
echo '[]' > "$T/ta.json"
rc=0
"$BUILD/src/cmd/cloister" as verify --tee cca --evidence "$HERE/token.cbor" --cca-ta-store "$T/ta.json" \
    > "$T/out" 2> "$T/err" || rc=$?
[ "$rc" = 3 ] || fail "exit $rc, wanted 3: $(cat "$T/err")"
grep -q "stage 'parse'.*not UTF-8" "$T/err" || fail "$(cat "$T/err")"
echo PASS
