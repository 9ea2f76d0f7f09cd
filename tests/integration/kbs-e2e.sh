#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# End to end: cloister-kbs on loopback; a secret stored through the admin API is fetched by
# (1) Cloister's own client for every TEE key kind and (2) an independent client built from
# curl + python3 (JCS + SHA-384) + the jose CLI, which opens the JWE itself.
. "$(dirname "$0")/lib.sh"

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"

head -c 48 /dev/urandom | base64 > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" \
    || fail "set-resource"
ok "secret stored through the admin API"

for kind in P-256 P-521 RSA RSA1_5; do
    "$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one --key "$kind" > "$T/got.$kind" \
        || fail "get-resource with a $kind TEE key"
    cmp -s "$T/secret" "$T/got.$kind" || fail "$kind: fetched secret differs"
    ok "handshake + JWE ($kind) returns the stored secret"
done

# Not found: a valid path that holds nothing → 401 PluginInternalError (trustee's status).
if "$CLI_BIN" kbs get-resource --url "$URL" --path default/key/none > /dev/null 2> "$T/err"; then
    fail "a missing resource was returned"
fi
grep -q "not found" "$T/err" || fail "missing resource error does not say 'not found': $(cat "$T/err")"
ok "missing resource refused with a clear error"

# ---- independent client: curl + python3 + jose ----
if command -v jose >/dev/null 2>&1; then
    jose jwk gen -i '{"kty":"EC","crv":"P-256"}' -o "$T/tee.jwk"
    jose jwk pub -i "$T/tee.jwk" -o "$T/tee.pub.jwk"
    st=$(curl -sS -c "$T/jar" -o "$T/chal" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"version":"0.4.0","tee":"sample","extra-params":{"supported-hash-algorithms":["sha384"]}}' "$URL/kbs/v0/auth")
    expect_status 200 "$st" "independent client: auth"
    grep -q 'kbs-session-id' "$T/jar" || fail "no kbs-session-id cookie"
    python3 - "$T/chal" "$T/tee.pub.jwk" "$T/attest.json" <<'PY'
import base64, hashlib, json, sys
chal = json.load(open(sys.argv[1]))
assert chal["extra-params"] == "", chal
nonce = chal["nonce"]
assert len(base64.b64decode(nonce, validate=True)) == 32
jwk = json.load(open(sys.argv[2]))
jwk = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
jwk["alg"] = "ECDH-ES+A256KW"
rd = {"tee-pubkey": jwk, "nonce": nonce, "additional-evidence": ""}
# JCS for string-only objects: sorted keys, no whitespace, no ASCII escaping
canon = json.dumps(rd, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
digest = hashlib.sha384(canon.encode()).digest()
ev = {"svn": "1", "report_data": base64.b64encode(digest).decode()}
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": ev, "additional_evidence": ""}}, open(sys.argv[3], "w"))
PY
    st=$(curl -sS -b "$T/jar" -o "$T/tok" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data @"$T/attest.json" "$URL/kbs/v0/attest")
    expect_status 200 "$st" "independent client: attest"
    python3 - "$T/tok" <<'PY'
import base64, json, sys
tok = json.load(open(sys.argv[1]))["token"]
h, p, s = tok.split(".")
pad = lambda x: x + "=" * (-len(x) % 4)
hdr = json.loads(base64.urlsafe_b64decode(pad(h)))
body = json.loads(base64.urlsafe_b64decode(pad(p)))
assert hdr["alg"] == "ES256" and hdr["jwk"]["crv"] == "P-256", hdr
assert len(base64.urlsafe_b64decode(pad(s))) == 64
assert body["eat_profile"] == "tag:github.com,2024:confidential-containers/Trustee"
cpu = body["submods"]["cpu0"]
assert cpu["ear.status"] in ("none", "affirming", "warning", "contraindicated")
assert set(cpu["ear.trustworthiness-vector"]) == {"instance-identity", "configuration", "executables",
    "file-system", "hardware", "runtime-opaque", "storage-opaque", "sourced-data"}
ev = cpu["ear.veraison.annotated-evidence"]
assert ev["runtime_data_claims"]["tee-pubkey"]["crv"] == "P-256"
assert ev["sample"]["launch_digest"] == "abcde"
assert body["exp"] > body["iat"]
PY
    ok "EAR token shape (ES256 header jwk, submods.cpu0, trust vector, runtime_data_claims)"
    # the token verifies with jose against the key in its own header
    python3 -c 'import json,sys,base64; t=json.load(open(sys.argv[1]))["token"]; h=t.split(".")[0]; h+="="*(-len(h)%4); print(json.dumps(json.loads(base64.urlsafe_b64decode(h))["jwk"]))' "$T/tok" > "$T/as.jwk"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"], end="")' "$T/tok" > "$T/tok.jws"
    jose jws ver -i "$T/tok.jws" -k "$T/as.jwk" || fail "jose could not verify the EAR token"
    ok "jose verifies the EAR token signature"
    st=$(http GET /kbs/v0/resource/default/key/one -b "$T/jar")
    expect_status 200 "$st" "independent client: resource"
    python3 - "$T/body" <<'PY'
import base64, json, sys
jwe = json.load(open(sys.argv[1]))
assert set(jwe) == {"protected", "encrypted_key", "iv", "ciphertext", "tag"}, jwe.keys()
pad = lambda x: x + "=" * (-len(x) % 4)
raw = base64.urlsafe_b64decode(pad(jwe["protected"])).decode()
# byte-exact header: alg, enc, then epk with crv, kty, x, y; compact
assert raw.startswith('{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"'), raw
assert " " not in raw
assert len(base64.urlsafe_b64decode(pad(jwe["iv"]))) == 12
assert len(base64.urlsafe_b64decode(pad(jwe["tag"]))) == 16
PY
    ok "JWE protected header is byte-exact"
    jose jwe dec -i "$T/body" -k "$T/tee.jwk" -O "$T/got.jose" || fail "jose could not open the JWE"
    cmp -s "$T/secret" "$T/got.jose" || fail "jose-decrypted secret differs"
    ok "jose opens the JWE with the TEE key and gets the secret"
    # tamper twin: flip one character of the ciphertext → jose must refuse
    python3 - "$T/body" "$T/tampered" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
c = j["ciphertext"]
j["ciphertext"] = ("A" if c[0] != "A" else "B") + c[1:]
json.dump(j, open(sys.argv[2], "w"))
PY
    if jose jwe dec -i "$T/tampered" -k "$T/tee.jwk" -O "$T/x" 2>/dev/null; then fail "tampered JWE opened"; fi
    ok "tampered JWE refused by jose"
    # the attested session returns the same token again (trustee behaviour)
    st=$(curl -sS -b "$T/jar" -o "$T/tok2" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data @"$T/attest.json" "$URL/kbs/v0/attest")
    expect_status 200 "$st" "attest again on an attested session"
    cmp -s "$T/tok" "$T/tok2" || fail "re-attest did not return the cached token"
    # Bearer token path (passport style) works without the cookie
    TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/tok")
    st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $TOKEN")
    expect_status 200 "$st" "resource with Authorization: Bearer <EAR>"
else
    echo "# jose CLI absent: independent client part skipped"
fi

# metrics and health
st=$(http GET /metrics); expect_status 200 "$st" "metrics"
grep -q '^kbs_resource_releases_total [1-9]' "$T/body" || fail "metrics do not count releases"
grep -q 'kbs_attestations_total{result="success"}' "$T/body" || fail "metrics lack attestations"
grep -Eq '127\.0\.0\.1:[0-9]+ GET /kbs/v0/resource/default/key/one => 200 \(server\.c:[0-9]+\)' "$T/kbs.log" \
    || fail "reply log line 'peer METHOD path => status (file.c:LINE)' missing"
ok "every reply is logged with the file:line that chose the status"
echo "PASS"
