#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every bad input of the KBS issue, each answered with the right status and a clear detail,
# none changing the store. Tokens are minted independently with openssl (tests/integration/jwt.py).
. "$(dirname "$0")/lib.sh"

make_admin_key
# A known token signer, so that tokens can be forged, expired and tampered with by the test.
openssl ecparam -name prime256v1 -genkey -noout -out "$T/as.sec1" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$T/as.sec1" -out "$T/as.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/evil.sec1" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$T/evil.sec1" -out "$T/evil.key"
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "
[attestation_service.attestation_token_broker.signer]
key_path = \"$T/as.key\""
sed -i 's/^timeout = 5/timeout = 5\nsession_timeout_s = 10/' "$T/kbs.toml"
sed -i 's/^insecure_http = true/insecure_http = true\npayload_request_size = 1/' "$T/kbs.toml"
start_kbs "$T/kbs.toml"

printf 'top secret' > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" || fail "set-resource"
snapshot() { (cd "$T" && find store resources -type f -print0 | sort -z | xargs -0 sha256sum) > "$T/$1"; }
snapshot before

auth() { # auth BODY → status; cookie jar $T/jar, challenge $T/body
    curl -sS -c "$T/jar" -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" "$URL/kbs/v0/auth"
}
good_auth='{"version":"0.4.0","tee":"sample","extra-params":""}'

# ---- /auth ----
expect_status 401 "$(auth '{"version":"0.3.0","tee":"sample","extra-params":""}')" "protocol version 0.3.0"
grep -q 'Version Mismatch' "$T/body" || fail "version error lacks detail"
expect_status 401 "$(auth '{"version":"0.4.0-rc1","tee":"sample","extra-params":""}')" "pre-release version"
expect_status 200 "$(auth '{"version":"0.4.0+build.7","tee":"sample","extra-params":""}')" "build metadata ignored"
expect_status 401 "$(auth '{"version":"0.4.0","tee":"nosuchtee","extra-params":""}')" "unknown TEE"
grep -q 'unknown TEE' "$T/body" || fail "unknown TEE error lacks detail"
expect_status 401 "$(auth '{"version":"0.4.0","tee":"hygondcu","extra-params":""}')" "TEE without a verifier in this build"
expect_status 401 "$(auth '{"version":"0.4.0","tee":"sample"')" "malformed JSON"
grep -q 'SerdeError' "$T/body" || fail "malformed JSON is not a SerdeError"
deep=$(python3 -c 'print("{\"version\":\"0.4.0\",\"tee\":\"sample\",\"extra-params\":" + "["*100 + "]"*100 + "}")')
expect_status 401 "$(auth "$deep")" "deeply nested JSON"
grep -q 'nesting' "$T/body" || fail "deep JSON error does not name the nesting limit"
head -c 1100000 /dev/zero | tr '\0' 'a' > "$T/big"
st=$(curl -sS -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$T/big" "$URL/kbs/v0/auth")
expect_status 413 "$st" "body over payload_request_size (1 MiB)"
st=$(curl -sS -o "$T/body" -w '%{http_code}' -X GET "$URL/kbs/v0/auth")
expect_status 404 "$st" "GET /kbs/v0/auth falls through to plugin lookup"
grep -q 'PluginNotFound' "$T/body" || fail "expected PluginNotFound"

# ---- /attest ----
mkattest() { # mkattest NONCE_OVERRIDE BIND(yes|no) → $T/attest.json, key in $T/tee.jwk
    python3 - "$T/body" "$T/attest.json" "$1" "$2" <<'PY'
import base64, hashlib, json, sys
nonce = json.load(open(sys.argv[1]))["nonce"] if sys.argv[3] == "-" else sys.argv[3]
jwk = {"alg": "ECDH-ES+A256KW", "crv": "P-256", "kty": "EC",
       "x": "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis", "y": "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}
rd = {"tee-pubkey": jwk, "nonce": nonce, "additional-evidence": ""}
if sys.argv[4] == "no":   # bind a different key than the one sent
    rd["tee-pubkey"] = dict(jwk, x="A" + jwk["x"][1:])
d = hashlib.sha384(json.dumps(rd, sort_keys=True, separators=(",", ":")).encode()).digest()
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": {"svn": "1", "report_data": base64.b64encode(d).decode()},
                            "additional_evidence": ""}}, open(sys.argv[2], "w"))
PY
}
# the cookie is sent by hand: curl itself drops a cookie whose Expires has passed
attest() { curl -sS -H "Cookie: kbs-session-id=$(awk '$6 == "kbs-session-id" {print $7}' "$T/jar" | tail -1)" -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' --data @"$T/attest.json" "$URL/kbs/v0/attest"; }

expect_status 200 "$(auth "$good_auth")" "auth"
cp "$T/body" "$T/chal1"; cp "$T/jar" "$T/jar1"
mkattest - yes
st=$(curl -sS -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' --data @"$T/attest.json" "$URL/kbs/v0/attest")
expect_status 401 "$st" "attest without a session cookie"
st=$(curl -sS -o "$T/body" -w '%{http_code}' -H 'Cookie: kbs-session-id=0123456789abcdef0123456789abcdef' \
    -H 'Content-Type: application/json' --data @"$T/attest.json" "$URL/kbs/v0/attest")
expect_status 401 "$st" "attest with an unknown session"
mkattest "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" yes
expect_status 401 "$(attest)" "attest with a wrong nonce"
grep -q 'nonce' "$T/body" || fail "wrong nonce error does not say nonce"
cp "$T/chal1" "$T/body"; mkattest - no
expect_status 401 "$(attest)" "report data that does not bind the TEE key"
grep -q "stage 'bind'" "$T/body" || fail "binding failure does not name the stage: $(cat "$T/body")"
# reused nonce: a fresh session, evidence for the old challenge
expect_status 200 "$(auth "$good_auth")" "second auth"
cp "$T/chal1" "$T/body"; mkattest - yes
expect_status 401 "$(attest)" "a nonce of another session (replay)"
# expired session (session_timeout_s = 10)
expect_status 200 "$(auth "$good_auth")" "third auth"
mkattest - yes
sleep 11
expect_status 401 "$(attest)" "attest on an expired session"
grep -q 'expired' "$T/body" || fail "expired session error lacks detail"
# unsupported TEE key
expect_status 200 "$(auth "$good_auth")" "auth for bad key"
python3 - "$T/body" "$T/attest.json" <<'PY'
import json, sys
n = json.load(open(sys.argv[1]))["nonce"]
json.dump({"runtime-data": {"nonce": n, "tee-pubkey": {"kty": "EC", "crv": "P-384", "alg": "ECDH-ES+A256KW", "x": "a", "y": "b"}},
           "tee-evidence": {"primary_evidence": {}, "additional_evidence": ""}}, open(sys.argv[2], "w"))
PY
expect_status 401 "$(attest)" "TEE key on an unsupported curve"
# a valid attestation to get a real token
expect_status 200 "$(auth "$good_auth")" "auth (good)"
mkattest - yes
expect_status 200 "$(attest)" "attest (good)"
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/body")

# ---- resource paths ----
for p in '../key/one' 'default/../one' 'default/key' 'default/key/one/extra' '.hidden/key/one' 'default/.key/one' \
         'default/key/o%20ne' 'default/key/on$e' 'default//one' 'default/key/'; do
    st=$(curl -sS --path-as-is -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/kbs/v0/resource/$p")
    case "$st" in 404|401) ;; *) fail "resource path '$p' answered $st" ;; esac
    grep -q 'https://github.com/confidential-containers/kbs/errors/' "$T/body" || fail "path '$p': no ErrorInformation"
    ok "resource path '$p' refused ($st)"
done

# ---- tokens ----
st=$(http GET /kbs/v0/resource/default/key/one); expect_status 401 "$st" "resource without any token"
grep -q TokenNotFound "$T/body" || fail "expected TokenNotFound"
st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $TOKEN"); expect_status 200 "$st" "resource with the real token"
tampered=$(python3 -c 'import sys; t=sys.argv[1].split("."); p=t[1]; t[1]=("B" if p[5]!="B" else "C").join([p[:5],p[6:]]); print(".".join(t))' "$TOKEN")
st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $tampered"); expect_status 401 "$st" "tampered token payload"
grep -q TokenVerifierError "$T/body" || fail "expected TokenVerifierError"
HDR=$(python3 -c 'import sys,json,base64; h=sys.argv[1].split(".")[0]; h+="="*(-len(h)%4); print(base64.urlsafe_b64decode(h).decode())' "$TOKEN")
PAY=$(python3 -c 'import sys,json,base64; p=sys.argv[1].split(".")[1]; p+="="*(-len(p)%4); print(base64.urlsafe_b64decode(p).decode())' "$TOKEN")
EXPIRED=$(python3 -c 'import sys,json; d=json.loads(sys.argv[1]); d["exp"]=d["iat"]-3600; print(json.dumps(d))' "$PAY")
tok=$(python3 "$(dirname "$0")/jwt.py" "$T/as.key" "$HDR" "$PAY")
st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $tok"); expect_status 200 "$st" "token re-signed by the AS key (control)"
tok=$(python3 "$(dirname "$0")/jwt.py" "$T/as.key" "$HDR" "$EXPIRED")
st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $tok"); expect_status 401 "$st" "expired token"
grep -q expired "$T/body" || fail "expired token error lacks detail"
EVILHDR=$(python3 -c 'import sys,json,subprocess,base64
pub=subprocess.run(["openssl","ec","-in",sys.argv[2],"-pubout","-outform","DER"],capture_output=True).stdout[-64:]
b=lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
h=json.loads(sys.argv[1]); h["jwk"]={"kty":"EC","crv":"P-256","alg":"ES256","x":b(pub[:32]),"y":b(pub[32:])}; print(json.dumps(h))' "$HDR" "$T/evil.key")
tok=$(python3 "$(dirname "$0")/jwt.py" "$T/evil.key" "$EVILHDR" "$PAY")
st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $tok"); expect_status 401 "$st" "token signed by an unknown key"
grep -q 'does not trust' "$T/body" || fail "unknown-key error lacks detail"
tok=$(python3 "$(dirname "$0")/jwt.py" "$T/evil.key" "$HDR" "$PAY")
st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $tok"); expect_status 401 "$st" "token claiming the AS key, signed by another"

# ---- admin ----
st=$(http POST /kbs/v0/resource/default/key/one --data-binary x); expect_status 401 "$st" "admin upload without a token"
grep -q AdminAuthAccess "$T/body" || fail "expected AdminAuthAccess"
openssl genpkey -algorithm ed25519 -out "$T/other.key" 2>/dev/null
bad=$("$CLI_BIN" kbs admin-token --admin-key "$T/other.key")
st=$(http POST /kbs/v0/resource/default/key/one --data-binary x -H "Authorization: Bearer $bad"); expect_status 401 "$st" "admin upload with a token of an unknown key"
st=$(http DELETE /kbs/v0/resource/default/key/one -H "Authorization: Bearer $bad"); expect_status 401 "$st" "admin delete with a wrong token"
st=$(http POST /kbs/v0/reference-value -d '{"version":"0.1.0","type":"sample","payload":"e30="}' -H "Authorization: Bearer $bad")
expect_status 401 "$st" "reference value with a wrong token"
good=$(admin_token)
st=$(http POST /kbs/v0/resource/default/..%2Fkey/one --data-binary x -H "Authorization: Bearer $good"); expect_status 404 "$st" "admin upload to an escaping path"
st=$(http POST /kbs/v0/reference-value -d '{"version":"0.1.0","type":"sample","payload":"not base64!"}' -H "Authorization: Bearer $good")
expect_status 401 "$st" "reference value payload that is not base64"
st=$(http POST /kbs/v0/reference-value -d '{"version":"0.1.0","type":"sample","payload":"bm90IGpzb24="}' -H "Authorization: Bearer $good")
expect_status 401 "$st" "reference value payload that is not JSON"
st=$(http POST /kbs/v0/resource-policy -d '{"policy":"cGFja2FnZSA"}' -H "Authorization: Bearer $good")
expect_status 401 "$st" "malformed resource policy (Rego 'package ' alone)"
st=$(http POST /kbs/v0/resource-policy -d '{"policy":"cGFja2FnZSA="}' -H "Authorization: Bearer $good")
expect_status 401 "$st" "resource policy in padded base64 (trustee wants base64url without padding)"
snapshot after
cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after"; fail "refused requests changed the store"; }
ok "the store is byte-for-byte as before every refused request"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" || fail "resource after the abuse"
cmp -s "$T/got" "$T/secret" || fail "resource changed"
ok "resource intact and still released"
kill -0 "$KBS_PID" || fail "cloister-kbs died"
echo PASS
