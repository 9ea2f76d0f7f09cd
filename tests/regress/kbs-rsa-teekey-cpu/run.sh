#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# An /attest whose TEE public key carries RSA-8192 private members is answered at once (the
# members are checked by arithmetic, not by primality tests), a key whose members do not fit
# is refused, and cloister-kbs stays up. rsa8192-private.jwk.json is a test key made for this
# check only.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"

auth() { curl -sS -c "$T/jar" -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"version":"0.4.0","tee":"sample","extra-params":""}' "$URL/kbs/v0/auth"; }
attest() { # attest TWEAK: POSTs /attest with the key (TWEAK: none|dp|d); prints "status seconds"
    python3 - "$T/body" "$HERE/rsa8192-private.jwk.json" "$1" >"$T/attest.json" <<'PY'
import json, sys
nonce = json.load(open(sys.argv[1]))["nonce"]
jwk = json.load(open(sys.argv[2]))
if sys.argv[3] != "none":  # change the last character of one private member
    v = jwk[sys.argv[3]]
    jwk[sys.argv[3]] = v[:-1] + ("A" if v[-1] != "A" else "B")
print(json.dumps({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
                  "tee-evidence": {"primary_evidence": {"svn": "1", "report_data": ""},
                                   "additional_evidence": ""}}))
PY
    curl -sS -H "Cookie: kbs-session-id=$(awk '$6 == "kbs-session-id" {print $7}' "$T/jar" | tail -1)" \
        -o "$T/body" -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
        --data @"$T/attest.json" "$URL/kbs/v0/attest"
}
for tweak in none dp d; do
    expect_status 200 "$(auth)" "auth"
    set -- $(attest $tweak)
    kill -0 "$KBS_PID" || fail "cloister-kbs died on the RSA-8192 key ($tweak)"
    # before the fix: 4.4 s of primality tests per request (release build)
    awk -v t="$2" 'BEGIN { exit !(t < 1.5) }' || fail "attest with the RSA-8192 key ($tweak) took $2 s"
    case $tweak:$1 in
    none:401) grep -q "tee-pubkey" "$T/body" && fail "the valid key was refused: $(head -c 300 "$T/body")"
        ok "valid RSA-8192 private members accepted in $2 s (then the evidence is refused)" ;;
    dp:401 | d:401) grep -q "RSA private members do not match" "$T/body" ||
        fail "tampered '$tweak' gave: $(head -c 300 "$T/body")"
        ok "tampered '$tweak' refused in $2 s" ;;
    *) fail "attest ($tweak): status $1 ($(head -c 300 "$T/body"))" ;;
    esac
done
echo PASS
