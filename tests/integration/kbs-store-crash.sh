#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The store survives kill -9 mid-write: while resources of 4 MiB are being rewritten through
# the admin API, cloister-kbs is killed with SIGKILL; after a restart every resource is whole
# (exactly one of the versions written, never a mix) and is still released.
. "$(dirname "$0")/lib.sh"

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
sed -i 's/^insecure_http = true/insecure_http = true\npayload_request_size = 8/' "$T/kbs.toml"
start_kbs "$T/kbs.toml"
head -c 4194304 /dev/urandom > "$T/v1"
head -c 4194304 /dev/urandom > "$T/v2"
TOKEN=$(admin_token)
st=$(http POST /kbs/v0/resource/crash/blob/big --data-binary @"$T/v1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream')
expect_status 200 "$st" "initial upload"

for round in 1 2 3 4 5; do
    ( i=0; while [ $i -lt 50 ]; do
        curl -s -o /dev/null -X POST --data-binary @"$T/v$((i % 2 + 1))" -H "Authorization: Bearer $TOKEN" \
            "$URL/kbs/v0/resource/crash/blob/big" || true
        i=$((i + 1)); done ) &
    writer=$!
    sleep "0.$(( (round * 37) % 9 + 1 ))"
    kill -9 "$KBS_PID"
    wait "$KBS_PID" 2>/dev/null || true
    kill "$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    start_kbs "$T/kbs.toml"
    "$CLI_BIN" kbs get-resource --url "$URL" --path crash/blob/big > "$T/got" || fail "round $round: resource unreadable after kill -9"
    if cmp -s "$T/got" "$T/v1" || cmp -s "$T/got" "$T/v2"; then
        ok "round $round: after kill -9 the resource is one whole version"
    else
        fail "round $round: resource is torn ($(wc -c < "$T/got") bytes)"
    fi
done
echo PASS
