#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CSV verifier reached through the KBS protocol: cloister-kbs on loopback with a CSV
# certificate folder holding trustee's Hygon root key. `/kbs/v0/auth` accepts "tee": "csv";
# trustee's csv_evidence.json (taken without report data, and whose chip HSK/CEK are not in the
# vectors) cannot be bound to a fresh nonce, so `/kbs/v0/attest` refuses it with 401 and the KBS
# log names the stage (bind). The signatures of the same evidence are checked in
# tests/unit/test_tee_csv.c at the recorded report data.
. "$(dirname "$0")/lib.sh"

V=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-$SRC/../shared/vectors}}/trustee
[ -f "$V/deps/verifier/test_data/csv_evidence.json" ] || skip "trustee vectors not found"

mkdir -p "$T/csv"
ln -s "$V/deps/verifier/src/csv/hrk.cert" "$T/csv/hrk.cert"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "
[attestation_service.verifier_config.csv_verifier]
cert_dir = \"$T/csv\""
start_kbs "$T/kbs.toml"

st=$(curl -sS -c "$T/jar" -o "$T/chal" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"version":"0.4.0","tee":"csv","extra-params":""}' "$URL/kbs/v0/auth")
expect_status 200 "$st" "auth with tee csv"
python3 - "$T/chal" "$V/deps/verifier/test_data/csv_evidence.json" "$T/attest.json" <<'PY' || fail "client"
import json, sys
nonce = json.load(open(sys.argv[1]))["nonce"]
ev = json.load(open(sys.argv[2]))
jwk = {"alg": "ECDH-ES+A256KW", "crv": "P-256", "kty": "EC",
       "x": "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis", "y": "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": ev, "additional_evidence": ""}}, open(sys.argv[3], "w"))
PY
st=$(curl -sS -b "$T/jar" -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data @"$T/attest.json" "$URL/kbs/v0/attest")
expect_status 401 "$st" "attest with evidence not bound to this session"
grep -q "bind" "$T/kbs.log" || fail "the KBS log does not name the bind stage"
ok "csv through the KBS protocol: refused at bind"
