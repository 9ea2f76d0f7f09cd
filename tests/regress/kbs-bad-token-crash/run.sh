#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
for tok in a.b.c eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.AAAA \
    "eyJhbGciOiJFUzI1NiIsImp3ayI6eyJrdHkiOiJFQyJ9fQ.eyJleHAiOjF9.AAAA" "" "...."; do
    st=$(http GET /kbs/v0/resource/a/b/c -H "Authorization: Bearer $tok")
    expect_status 401 "$st" "token '$tok'"
    kill -0 "$KBS_PID" || fail "cloister-kbs died on token '$tok'"
done
echo PASS
