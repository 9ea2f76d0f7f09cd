#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# [attestation_token] trusted_jwk_sets: a token whose header names a "kid" (Intel TA style)
# is verified with that key of a local JWKS file; the resource is released sealed to the
# token's tee-pubkey. Tokens and keys are made independently (openssl, python cryptography,
# tests/integration/jwt.py). Twins: an unknown kid, a token signed by another key under the
# same kid, an expired token, a flipped signature byte — all refused; a plain-http JWKS
# is refused by name at --check.
. "$(dirname "$0")/lib.sh"
python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"

openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/as.key" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
python3 - "$T/as.key" "$T/jwks.json" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
k = load_pem_private_key(open(sys.argv[1], "rb").read(), None).public_key().public_numbers()
b = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
json.dump({"keys": [{"kty": "EC", "crv": "P-256", "kid": "as-1", "x": b(k.x), "y": b(k.y)}]}, open(sys.argv[2], "w"))
PY
# a TEE key (P-256, ECDH-ES+A256KW) to put in the token
teekey=$(python3 -c '
import base64, json
from cryptography.hazmat.primitives.asymmetric import ec
k = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
b = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
print(json.dumps({"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": b(k.x), "y": b(k.y)}))')
cp "$SRC/policies/resource/allow_all.rego" "$T/policy.rego"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "[policy_engine]
policy_path = \"$T/policy.rego\"
[attestation_token]
trusted_jwk_sets = [\"file://$T/jwks.json\"]"
"$KBS_BIN" -c "$T/kbs.toml" --check > "$T/eff.json" 2> "$T/err" || fail "--check: $(cat "$T/err")"
grep -q "file://$T/jwks.json" "$T/eff.json" || fail "trusted_jwk_sets not in the effective configuration"
start_kbs "$T/kbs.toml"
printf 'ita secret' > "$T/v"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path r/k/v --file "$T/v" || fail "set"
now=$(date +%s)
tok() { python3 "$SRC/tests/integration/jwt.py" "$1" "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"$2\"}" \
    "{\"exp\":$3,\"iat\":$now,\"tee-pubkey\":$teekey}"; }
good=$(tok "$T/as.key" as-1 $((now + 300)))
expect_status 200 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $good")" \
    "token with kid as-1 verified by the trusted JWKS"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "ciphertext" in d and "encrypted_key" in d' \
    "$T/body" || fail "the release is not a JWE: $(head -c 200 "$T/body")"
ok "the resource is released as a JWE sealed to the token's tee-pubkey"
expect_status 401 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/as.key" as-2 $((now + 300)))")" \
    "unknown kid"
grep -q "in no attestation_token.trusted_jwk_sets" "$T/body" || fail "kid refusal not explained: $(cat "$T/body")"
expect_status 401 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/other.key" as-1 $((now + 300)))")" \
    "another key under the trusted kid"
expect_status 401 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/as.key" as-1 $((now - 600)))")" \
    "expired token"
sig=${good##*.}
[ "$(printf %s "$sig" | cut -c1)" = A ] && flip=B || flip=A
expect_status 401 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer ${good%.*}.$flip${sig#?}")" \
    "flipped signature byte"
stop_kbs

# a plain-http JWKS source is refused by name (https sources: kbs-jwks-https.sh)
write_config "$T/kbs2.toml" "$(free_port)" "[attestation_token]
trusted_jwk_sets = [\"http://portal.example\"]"
rc=0; "$KBS_BIN" -c "$T/kbs2.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ $rc = 2 ] || fail "http JWKS: exit $rc"
grep -q 'attestation_token.trusted_jwk_sets\[0\] = "http://portal.example": plain http is not trusted' "$T/err" ||
    fail "http JWKS not named: $(cat "$T/err")"
ok "an http:// trusted_jwk_sets entry is refused by name"
